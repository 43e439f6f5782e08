//! Grammar of the monitoring statements (docs/sql-reference.md, "Monitoring and alerts"):
//!
//! ```sql
//! CREATE [OR REPLACE] ALERT CHANNEL name TYPE slack WEBHOOK 'https://hooks.slack.com/…'
//!   [HEADERS ('name' = 'value', …)] [RATE n]
//! CREATE [OR REPLACE] ALERT CHANNEL name TYPE webhook URL '…' [HEADERS (…)] [RATE n]
//! DROP ALERT CHANNEL [IF EXISTS] name
//! TEST ALERT CHANNEL name
//! CREATE [OR REPLACE] MONITOR name ON FEATURE SET s [VERSION n] | ON FEATURE GROUP g
//!   EVERY 'interval' [WINDOW 'interval' | SINCE LAST RUN]
//!   METRICS (metric [, metric …]) [ALERT TO channel [, channel …]] [RENOTIFY EVERY 'interval']
//!   metric := name [( [group.]feature [, 'method'] )] (> | >= | < | <=) (number | 'interval')
//! RUN MONITOR name [AS OF 'timestamp']
//! ALTER MONITOR name PAUSE | RESUME
//! DROP MONITOR [IF EXISTS] name
//! ```
//!
//! This module parses and runs them; names, metrics and intervals are checked when the
//! statement runs (`monitor::define`), so a wrong metric is an error about the metric.

use datafusion::error::Result;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::exec::{SqlSession, StatementResult};
use super::feature_group::Words;
use super::parser::expected;
use crate::error::FStoreError;
use crate::monitor::statements::{
    CreateChannel, CreateMonitor, MetricArg, MetricSpec, MonitorStatement, Threshold, WindowSpec,
};
use crate::principal::Principal;
use crate::registry::{Change, ObjectKind, ObjectRef, Privilege};

/// The leading words of each statement, and whether `OR REPLACE` may follow `CREATE`.
pub const FORMS: &[&[&str]] = &[
    &["CREATE", "ALERT", "CHANNEL"],
    &["CREATE", "OR", "REPLACE", "ALERT", "CHANNEL"],
    &["DROP", "ALERT", "CHANNEL"],
    &["TEST", "ALERT", "CHANNEL"],
    &["CREATE", "MONITOR"],
    &["CREATE", "OR", "REPLACE", "MONITOR"],
    &["DROP", "MONITOR"],
    &["ALTER", "MONITOR"],
    &["RUN", "MONITOR"],
];

/// After the leading words `form` (one of [`FORMS`]).
pub fn parse(w: &mut Words, form: &[&str]) -> Result<MonitorStatement> {
    let replace = form.contains(&"REPLACE");
    Ok(match (form[0], *form.last().unwrap_or(&"")) {
        ("CREATE", "CHANNEL") => MonitorStatement::CreateChannel(parse_channel(w, replace)?),
        ("DROP", "CHANNEL") => {
            let if_exists = w.accept_seq(&["IF", "EXISTS"]);
            let name = w.ident("an alert channel name")?;
            MonitorStatement::DropChannel { name, if_exists }
        }
        ("TEST", _) => MonitorStatement::TestChannel {
            name: w.ident("an alert channel name")?,
        },
        ("CREATE", _) => MonitorStatement::CreateMonitor(parse_monitor(w, replace)?),
        ("DROP", _) => {
            let if_exists = w.accept_seq(&["IF", "EXISTS"]);
            let name = w.ident("a monitor name")?;
            MonitorStatement::DropMonitor { name, if_exists }
        }
        ("ALTER", _) => {
            let name = w.ident("a monitor name")?;
            let paused = if w.accept("PAUSE") {
                true
            } else if w.accept("RESUME") {
                false
            } else {
                return Err(expected("PAUSE or RESUME", w.parser.peek_token_ref()));
            };
            MonitorStatement::AlterMonitor { name, paused }
        }
        _ => {
            let name = w.ident("a monitor name")?;
            let as_of = if w.accept_seq(&["AS", "OF"]) {
                Some(w.string("a timestamp ('2024-03-01T00:00:00')")?)
            } else {
                None
            };
            MonitorStatement::RunMonitor { name, as_of }
        }
    })
}

fn parse_channel(w: &mut Words, replace: bool) -> Result<CreateChannel> {
    let name = w.ident("an alert channel name")?;
    w.expect("TYPE")?;
    let kind = w.ident("a channel type (slack, webhook)")?;
    if !(w.accept("WEBHOOK") || w.accept("URL")) {
        return Err(expected("WEBHOOK or URL", w.parser.peek_token_ref()));
    }
    let url = w.string("the URL ('https://…')")?;
    let mut headers = vec![];
    let mut rate = None;
    loop {
        if w.accept("HEADERS") {
            w.expect_token(Token::LParen, "(")?;
            loop {
                let key = w.string("a header name ('Authorization')")?;
                w.expect_token(Token::Eq, "=")?;
                let value = w.string("a header value")?;
                headers.push((key, value));
                if !w.parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            w.expect_token(Token::RParen, "',' or ')'")?;
        } else if w.accept("RATE") {
            rate = Some(number(w, "messages per second")?);
        } else {
            break;
        }
    }
    Ok(CreateChannel {
        name,
        replace,
        kind,
        url,
        headers,
        rate,
    })
}

fn number(w: &mut Words, what: &str) -> Result<String> {
    let t = w.parser.peek_token_ref().clone();
    let negative = matches!(t.token, Token::Minus);
    if negative {
        w.parser.next_token();
    }
    let t = w.parser.peek_token_ref().clone();
    match &t.token {
        Token::Number(n, _) => {
            w.parser.next_token();
            Ok(if negative { format!("-{n}") } else { n.clone() })
        }
        _ => Err(expected(what, &t)),
    }
}

fn parse_monitor(w: &mut Words, replace: bool) -> Result<CreateMonitor> {
    let name = w.ident("a monitor name")?;
    w.expect("ON")?;
    w.expect("FEATURE")?;
    let (on_set, target) = if w.accept("SET") {
        (true, super::feature_set::parse_describe(w)?)
    } else if w.accept("GROUP") {
        (false, w.ident("a feature group name")?)
    } else {
        return Err(expected("SET or GROUP", w.parser.peek_token_ref()));
    };
    w.expect("EVERY")?;
    let every = w.string("an interval ('1 hour')")?;
    let mut window = WindowSpec::All;
    let mut metrics = vec![];
    let mut channels = vec![];
    let mut renotify = None;
    loop {
        if w.accept("WINDOW") {
            window = WindowSpec::Last(w.string("an interval ('1 hour')")?);
        } else if w.accept_seq(&["SINCE", "LAST", "RUN"]) {
            window = WindowSpec::SinceLastRun;
        } else if w.accept("METRICS") {
            w.expect_token(Token::LParen, "(")?;
            loop {
                metrics.push(parse_metric(w)?);
                if !w.parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            w.expect_token(Token::RParen, "',' or ')'")?;
        } else if w.accept_seq(&["ALERT", "TO"]) {
            channels.push(w.ident("an alert channel name")?);
            while w.parser.consume_token(&Token::Comma) {
                channels.push(w.ident("an alert channel name")?);
            }
        } else if w.accept_seq(&["RENOTIFY", "EVERY"]) {
            renotify = Some(w.string("an interval ('6 hours')")?);
        } else {
            break;
        }
    }
    if metrics.is_empty() {
        return Err(expected("METRICS (…)", w.parser.peek_token_ref()));
    }
    Ok(CreateMonitor {
        name,
        replace,
        on_set,
        target,
        every,
        window,
        metrics,
        channels,
        renotify,
    })
}

fn parse_metric(w: &mut Words) -> Result<MetricSpec> {
    let name = w.ident("a metric (missing_values, drift, psi, freshness, row_count, expectations_failed, online_staleness)")?;
    let mut args = vec![];
    if w.parser.consume_token(&Token::LParen) {
        loop {
            let t = w.parser.peek_token_ref().clone();
            match &t.token {
                Token::SingleQuotedString(s) => {
                    w.parser.next_token();
                    args.push(MetricArg::Text(s.clone()));
                }
                Token::Word(_) => args.push(MetricArg::Feature(w.dotted("a feature")?.join("."))),
                _ => return Err(expected("a feature or a quoted method", &t)),
            }
            if !w.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        w.expect_token(Token::RParen, "',' or ')'")?;
    }
    let t = w.parser.next_token();
    let op = match &t.token {
        Token::Gt => ">",
        Token::GtEq => ">=",
        Token::Lt => "<",
        Token::LtEq => "<=",
        _ => return Err(expected("a comparison (>, >=, <, <=)", &t)),
    }
    .to_string();
    let t = w.parser.peek_token_ref().clone();
    let threshold = match &t.token {
        Token::SingleQuotedString(s) => {
            w.parser.next_token();
            Threshold::Text(s.clone())
        }
        _ => Threshold::Number(number(w, "a number or a quoted interval")?),
    };
    Ok(MetricSpec {
        name,
        args,
        op,
        threshold,
    })
}

impl SqlSession<'_> {
    /// Who may run a monitoring statement: alert channels hold secrets and reach outside,
    /// so they are for administrators; a monitor needs `CREATE` and `SELECT` on what it
    /// watches, and its owner (or an administrator) alters, runs and drops it.
    pub(super) fn authorize_monitoring(
        &self,
        stmt: &MonitorStatement,
        principal: &Principal,
    ) -> Result<()> {
        if self.is_admin(principal) {
            return Ok(());
        }
        let state = self.registry().state();
        match stmt {
            MonitorStatement::CreateChannel(_)
            | MonitorStatement::DropChannel { .. }
            | MonitorStatement::TestChannel { .. } => Err(FStoreError::permission_denied(format!(
                "permission denied: {stmt} needs an administrator (alert channels hold secrets); '{principal}' is not one"
            ))
            .into()),
            MonitorStatement::CreateMonitor(c) => {
                if let Some(m) = state.monitors.get(&c.name)
                    && m.owner != principal.name
                {
                    return Err(FStoreError::permission_denied(format!(
                        "permission denied: replacing monitor {} needs its owner ({}) or an administrator; '{principal}' is neither",
                        c.name, m.owner
                    ))
                    .into());
                }
                self.require(principal, Privilege::Create, None)?;
                let object = if c.on_set {
                    let v = state.feature_set(&c.target)?;
                    ObjectRef::set_version(&v.name, v.version)
                } else {
                    ObjectRef::new(ObjectKind::FeatureGroup, &c.target)
                };
                self.require(principal, Privilege::Select, Some(&object))
            }
            MonitorStatement::DropMonitor { name, .. }
            | MonitorStatement::AlterMonitor { name, .. }
            | MonitorStatement::RunMonitor { name, .. } => {
                let Some(m) = state.monitors.get(name) else {
                    return Ok(());
                };
                if m.owner != principal.name {
                    return Err(FStoreError::permission_denied(format!(
                        "permission denied: {stmt} needs the monitor's owner ({}) or an administrator; '{principal}' is neither",
                        m.owner
                    ))
                    .into());
                }
                // A run reads the target: its owner must still be allowed to.
                if matches!(stmt, MonitorStatement::RunMonitor { .. }) {
                    let object = match &m.target {
                        crate::registry::MonitorTarget::FeatureSet { name, version } => {
                            let reference = match version {
                                Some(v) => format!("{name}@{v}"),
                                None => name.clone(),
                            };
                            let v = state.feature_set(&reference)?;
                            ObjectRef::set_version(&v.name, v.version)
                        }
                        crate::registry::MonitorTarget::FeatureGroup { name } => {
                            ObjectRef::new(ObjectKind::FeatureGroup, name)
                        }
                    };
                    self.require(principal, Privilege::Select, Some(&object))?;
                }
                Ok(())
            }
        }
    }

    /// Runs a monitoring statement.
    pub(super) async fn run_monitoring(
        &self,
        stmt: &MonitorStatement,
        sql: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        use crate::monitor as m;
        let state = self.registry().state();
        let change = match stmt {
            MonitorStatement::CreateChannel(c) => Change::CreateAlertChannel {
                channel: m::define::channel(c)?,
                replace: c.replace,
            },
            MonitorStatement::DropChannel { name, if_exists } => {
                if *if_exists && !state.alert_channels.contains_key(name) {
                    return self.done(None);
                }
                Change::DropAlertChannel { name: name.clone() }
            }
            MonitorStatement::TestChannel { name } => {
                let channel = state.channel(name)?.clone();
                let outcome = m::service_of(self)?.test_channel(&channel).await;
                return self.rows(m::delivery::test_batch(&channel, &outcome)?);
            }
            MonitorStatement::CreateMonitor(c) => Change::CreateMonitor {
                monitor: m::define::monitor(c, &state)?,
                replace: c.replace,
            },
            MonitorStatement::DropMonitor { name, if_exists } => {
                if *if_exists && !state.monitors.contains_key(name) {
                    return self.done(None);
                }
                Change::DropMonitor { name: name.clone() }
            }
            MonitorStatement::AlterMonitor { name, paused } => Change::AlterMonitor {
                name: name.clone(),
                paused: *paused,
            },
            MonitorStatement::RunMonitor { name, as_of } => {
                let as_of = as_of
                    .as_deref()
                    .map(crate::online::service::parse_time)
                    .transpose()?;
                let run = m::service_of(self)?
                    .run(self, principal, name, as_of, "run")
                    .await?;
                return self.rows(m::tables::run_batch(&run)?);
            }
        };
        self.registry().commit(principal, sql, change).await?;
        self.sync().await?;
        self.done(None)
    }
}
