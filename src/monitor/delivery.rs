//! Delivery of notifications to alert channels.
//!
//! Every pending delivery (a notification × a channel) is attempted by one server at a time:
//! the attempt is claimed in the registry first (`Change::DeliveryAttempt`, conditional on
//! the attempt number), the message POSTed with a timeout, and the outcome recorded
//! (`Change::DeliveryResult`). A failed attempt is retried after 1, 2, 4, … seconds (at most
//! [`MAX_BACKOFF_SECS`]) until the message is 24 hours old; an attempt whose server died
//! before recording its outcome is taken over after [`LEASE_MICROS`]. Each channel sends at
//! most its `RATE` messages per second. Attempts run in background tasks, so a channel that
//! is slow or down delays no monitor, no other channel and no query.
//!
//! Payloads:
//! - **Slack** (incoming webhook): `text` (the one-line summary, shown in notifications) and
//!   `blocks` (a header, the monitor, target, metric, feature, value against the threshold,
//!   the window, the run, and the query that reproduces the value).
//! - **Webhook**: FStore's alert document, JSON (docs/sql-reference.md): `version`,
//!   `idempotency_key` (the notification id — the same on every attempt; also sent as the
//!   `Idempotency-Key` header), `event` (`opened`, `reminder`, `resolved`, `test`), `summary`,
//!   `monitor`, `target`, `metric`, `feature`, `value`, `operator`, `threshold`, `status`,
//!   `window_start`, `window_end`, `run`, `note`, `query`, `sent_at`, `attempt`.

use std::sync::Arc;
use std::time::Duration;

use arrow_schema::{DataType, Field, Schema};
use datafusion::arrow::array::{BooleanArray, RecordBatch, StringArray, UInt64Array};
use datafusion::error::Result;
use serde_json::{Value, json};

use super::MonitorService;
use crate::engine::Engine;
use crate::principal::Principal;
use crate::registry::{
    AlertChannel, Change, ChannelKind, DeliveryState, MetricResult, Notification, now_micros,
};

/// The time limit of one HTTP request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
pub const MAX_BACKOFF_SECS: i64 = 300;
/// An attempt without an outcome this long is taken over (its server died).
pub const LEASE_MICROS: i64 = 30_000_000;

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub elapsed: Duration,
}

fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn number(v: Option<f64>) -> String {
    match v {
        None => "none".into(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    }
}

/// The one-line summary of a notification.
pub fn summary(n: &Notification) -> String {
    let r = &n.result;
    let what = if r.feature.is_empty() {
        r.metric.clone()
    } else {
        format!("{} of {}", r.metric, r.feature)
    };
    let head = match n.kind {
        crate::registry::NotificationKind::Opened => "FStore alert",
        crate::registry::NotificationKind::Reminder => "FStore alert (still open)",
        crate::registry::NotificationKind::Resolved => "FStore alert resolved",
    };
    format!(
        "{head}: monitor {} on {}: {what} is {} (threshold {} {})",
        n.monitor,
        n.target,
        number(r.value),
        r.op.as_str(),
        number(Some(r.threshold))
    )
}

fn window_text(n: &Notification) -> String {
    match n.window_start {
        Some(s) => format!("{} to {}", time(s), time(n.as_of)),
        None => format!("up to {}", time(n.as_of)),
    }
}

/// Slack's incoming-webhook payload for a notification.
pub fn slack_payload(n: &Notification) -> Value {
    let r = &n.result;
    let field = |label: &str, value: String| json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")});
    let mut fields = vec![
        field("Monitor", n.monitor.clone()),
        field("Target", n.target.clone()),
        field("Metric", r.metric.clone()),
    ];
    if !r.feature.is_empty() {
        fields.push(field("Feature", r.feature.clone()));
    }
    fields.push(field(
        "Value",
        format!(
            "{} (threshold {} {})",
            number(r.value),
            r.op.as_str(),
            number(Some(r.threshold))
        ),
    ));
    fields.push(field("Window", window_text(n)));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("{} — {}", match n.kind {
            crate::registry::NotificationKind::Opened => "Alert opened",
            crate::registry::NotificationKind::Reminder => "Alert still open",
            crate::registry::NotificationKind::Resolved => "Alert resolved",
        }, n.monitor)}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(note) = &r.note {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Note*\n{note}")}}));
    }
    if let Some(q) = &r.query {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Reproduce*\n```{q}```")}}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("run {} · notification {}", n.run, n.id)}]}));
    json!({"text": summary(n), "blocks": blocks})
}

/// FStore's webhook alert document.
pub fn webhook_payload(n: &Notification, attempt: u32) -> Value {
    let r: &MetricResult = &n.result;
    json!({
        "version": "1",
        "idempotency_key": n.id,
        "event": n.kind.as_str(),
        "summary": summary(n),
        "monitor": n.monitor,
        "target": n.target,
        "metric": r.metric,
        "feature": r.feature,
        "value": r.value,
        "operator": r.op.as_str(),
        "threshold": r.threshold,
        "status": r.status.as_str(),
        "window_start": n.window_start.map(time),
        "window_end": time(n.as_of),
        "run": n.run,
        "note": r.note,
        "query": r.query,
        "sent_at": time(now_micros()),
        "attempt": attempt,
    })
}

/// When the next attempt of a delivery is due (µs).
fn next_attempt(n: &Notification, attempts: &[crate::registry::Attempt]) -> i64 {
    match attempts.last() {
        None => n.created_at,
        Some(a) if a.ok.is_none() => a.at + LEASE_MICROS,
        Some(a) => {
            let k = attempts.len().min(20) as u32;
            let backoff = 2i64.saturating_pow(k - 1).min(MAX_BACKOFF_SECS);
            a.finished.unwrap_or(a.at) + backoff * 1_000_000
        }
    }
}

impl MonitorService {
    /// POSTs `body` to a channel.
    async fn send(&self, channel: &AlertChannel, body: &Value, key: &str) -> Outcome {
        let started = std::time::Instant::now();
        let mut request = self
            .client
            .post(&channel.url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if channel.kind == ChannelKind::Webhook {
            request = request.header("idempotency-key", key);
        }
        for (k, v) in &channel.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                Outcome {
                    ok: status.is_success(),
                    http_status: Some(status.as_u16()),
                    error: (!status.is_success()).then(|| format!("HTTP {status}")),
                    elapsed: started.elapsed(),
                }
            }
            // Without the URL: it is a secret. With the causes (connection refused, …).
            Err(e) => Outcome {
                ok: false,
                http_status: None,
                error: Some({
                    let e = e.without_url();
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    text
                }),
                elapsed: started.elapsed(),
            },
        }
    }

    /// `TEST ALERT CHANNEL`: sends a test message now (not recorded).
    pub async fn test_channel(&self, channel: &AlertChannel) -> Outcome {
        let text = format!("FStore test message to alert channel '{}'", channel.name);
        let body = match channel.kind {
            ChannelKind::Slack => {
                json!({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
            }
            ChannelKind::Webhook => json!({
                "version": "1",
                "idempotency_key": format!("test-{}", uuid::Uuid::new_v4()),
                "event": "test",
                "summary": text,
                "sent_at": time(now_micros()),
            }),
        };
        let key = body["idempotency_key"]
            .as_str()
            .unwrap_or("test")
            .to_string();
        self.send(channel, &body, &key).await
    }

    /// Starts an attempt for every delivery that is due (see the module docs).
    pub fn deliver(self: &Arc<Self>, engine: &Arc<Engine>) {
        let state = engine.registry().state();
        let now = now_micros();
        let mut pending: Vec<&Notification> = state
            .notifications
            .values()
            .filter(|n| n.is_pending())
            .collect();
        pending.sort_by_key(|n| n.created_at);
        for n in pending {
            for d in &n.deliveries {
                if !matches!(d.state, DeliveryState::Pending | DeliveryState::Sending) {
                    continue;
                }
                let key = (n.id.clone(), d.channel.clone());
                if self
                    .sending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&key)
                    || now < next_attempt(n, &d.attempts)
                {
                    continue;
                }
                let Some(channel) = state.alert_channels.get(&d.channel).cloned() else {
                    continue;
                };
                {
                    let mut gates = self.next_send.lock().unwrap_or_else(|p| p.into_inner());
                    let gate = gates.entry(channel.name.clone()).or_insert(0);
                    if now < *gate {
                        continue;
                    }
                    *gate = now + (1e6 / channel.rate_per_second) as i64;
                }
                self.sending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone());
                let attempt = d.attempts.len() as u32 + 1;
                let service = Arc::clone(self);
                let engine = Arc::clone(engine);
                let notification = n.clone();
                tokio::spawn(async move {
                    service
                        .attempt(&engine, &notification, &channel, attempt)
                        .await;
                    service
                        .sending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                });
            }
        }
    }

    async fn attempt(
        &self,
        engine: &Engine,
        n: &Notification,
        channel: &AlertChannel,
        attempt: u32,
    ) {
        let principal = Principal::trusted("alerts");
        let claim = Change::DeliveryAttempt {
            notification: n.id.clone(),
            channel: channel.name.clone(),
            attempt,
            server: self.server.clone(),
        };
        let statement = format!(
            "-- deliver notification {} to {} (attempt {attempt})",
            n.id, channel.name
        );
        if let Err(e) = engine
            .registry()
            .commit(&principal, &statement, claim)
            .await
        {
            tracing::debug!(error = %e, "alert delivery: attempt taken elsewhere");
            return;
        }
        let body = match channel.kind {
            ChannelKind::Slack => slack_payload(n),
            ChannelKind::Webhook => webhook_payload(n, attempt),
        };
        let outcome = self.send(channel, &body, &n.id).await;
        if !outcome.ok {
            tracing::warn!(
                channel = %channel.name,
                notification = %n.id,
                attempt,
                error = outcome.error.as_deref().unwrap_or(""),
                "alert not delivered; will retry"
            );
        }
        let result = Change::DeliveryResult {
            notification: n.id.clone(),
            channel: channel.name.clone(),
            attempt,
            ok: outcome.ok,
            http_status: outcome.http_status,
            error: outcome.error,
        };
        if let Err(e) = engine
            .registry()
            .commit(&principal, &statement, result)
            .await
        {
            tracing::warn!(error = %e, "alert delivery: outcome not recorded");
        }
    }
}

/// `TEST ALERT CHANNEL`'s result row.
pub fn test_batch(channel: &AlertChannel, o: &Outcome) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("channel", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("delivered", DataType::Boolean, false),
        Field::new("http_status", DataType::UInt64, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("elapsed_ms", DataType::UInt64, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![channel.name.clone()])),
            Arc::new(StringArray::from(vec![channel.kind.as_str()])),
            Arc::new(BooleanArray::from(vec![o.ok])),
            Arc::new(UInt64Array::from(vec![o.http_status.map(u64::from)])),
            Arc::new(StringArray::from(vec![o.error.clone()])),
            Arc::new(UInt64Array::from(vec![o.elapsed.as_millis() as u64])),
        ],
    )?)
}
