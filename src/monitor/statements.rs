//! The monitoring statements as parsed (`sql::monitor` parses them; [`super::define`] turns
//! them into registry definitions).

/// A metric as written: `name[(args)] op threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    /// Feature names (`[group.]feature`, joined with '.') and quoted strings (methods), in
    /// order.
    pub args: Vec<MetricArg>,
    pub op: String,
    pub threshold: Threshold,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricArg {
    Feature(String),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Number(String),
    /// A quoted value (a duration: `'2 hours'`).
    Text(String),
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Number(n) => f.write_str(n),
            Threshold::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
        }
    }
}

/// `WINDOW '…' | SINCE LAST RUN` (absent: every row up to the run's time).
#[derive(Debug, Clone, PartialEq)]
pub enum WindowSpec {
    All,
    Last(String),
    SinceLastRun,
}

/// `CREATE [OR REPLACE] MONITOR …`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateMonitor {
    pub name: String,
    pub replace: bool,
    /// `FEATURE SET name[@n]` (true) or `FEATURE GROUP name` (false).
    pub on_set: bool,
    pub target: String,
    pub every: String,
    pub window: WindowSpec,
    pub metrics: Vec<MetricSpec>,
    pub channels: Vec<String>,
    pub renotify: Option<String>,
}

/// `CREATE [OR REPLACE] ALERT CHANNEL …`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateChannel {
    pub name: String,
    pub replace: bool,
    pub kind: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub rate: Option<String>,
}

/// A monitoring statement.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorStatement {
    CreateChannel(CreateChannel),
    DropChannel { name: String, if_exists: bool },
    TestChannel { name: String },
    CreateMonitor(CreateMonitor),
    DropMonitor { name: String, if_exists: bool },
    AlterMonitor { name: String, paused: bool },
    RunMonitor { name: String, as_of: Option<String> },
}

impl MonitorStatement {
    /// The name of the object it is about.
    pub fn object(&self) -> (&'static str, &str) {
        match self {
            MonitorStatement::CreateChannel(c) => ("alert_channel", &c.name),
            MonitorStatement::DropChannel { name, .. } | MonitorStatement::TestChannel { name } => {
                ("alert_channel", name)
            }
            MonitorStatement::CreateMonitor(c) => ("monitor", &c.name),
            MonitorStatement::DropMonitor { name, .. }
            | MonitorStatement::AlterMonitor { name, .. }
            | MonitorStatement::RunMonitor { name, .. } => ("monitor", name),
        }
    }
}

/// Secrets (channel URLs and header values) never appear: this is the text the registry's
/// history, the audit log and error messages show.
impl std::fmt::Display for MonitorStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorStatement::CreateChannel(c) => {
                write!(
                    f,
                    "CREATE {}ALERT CHANNEL {} TYPE {} {} '***'",
                    if c.replace { "OR REPLACE " } else { "" },
                    c.name,
                    c.kind,
                    if c.kind.eq_ignore_ascii_case("slack") {
                        "WEBHOOK"
                    } else {
                        "URL"
                    }
                )?;
                if !c.headers.is_empty() {
                    let names: Vec<String> = c
                        .headers
                        .iter()
                        .map(|(k, _)| format!("'{k}' = '***'"))
                        .collect();
                    write!(f, " HEADERS ({})", names.join(", "))?;
                }
                if let Some(r) = &c.rate {
                    write!(f, " RATE {r}")?;
                }
                Ok(())
            }
            MonitorStatement::DropChannel { name, .. } => write!(f, "DROP ALERT CHANNEL {name}"),
            MonitorStatement::TestChannel { name } => write!(f, "TEST ALERT CHANNEL {name}"),
            MonitorStatement::CreateMonitor(c) => write!(f, "CREATE MONITOR {}", c.name),
            MonitorStatement::DropMonitor { name, .. } => write!(f, "DROP MONITOR {name}"),
            MonitorStatement::AlterMonitor { name, paused } => write!(
                f,
                "ALTER MONITOR {name} {}",
                if *paused { "PAUSE" } else { "RESUME" }
            ),
            MonitorStatement::RunMonitor { name, .. } => write!(f, "RUN MONITOR {name}"),
        }
    }
}
