//! Server metrics in Prometheus text format, served at `GET /metrics` on `--metrics-addr`.
//!
//! Counters are atomics updated on the request path (a few nanoseconds each); the exposition
//! is rendered only when scraped. The HTTP endpoint is a minimal HTTP/1.1 responder on a
//! plain TCP listener: it serves one text page, so it needs no web framework.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// A request's RPC and Flight SQL command (empty for RPCs without one), exported as one
/// `method` label: `do_get_statement`, `get_flight_info_tables`, `handshake`.
pub type Method = (&'static str, &'static str);

struct Label(Method);

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            (rpc, "") => f.write_str(rpc),
            (rpc, command) => write!(f, "{rpc}_{command}"),
        }
    }
}

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by RPC method.
    requests: Mutex<BTreeMap<Method, u64>>,
    /// Failed requests by RPC method and gRPC code.
    errors: Mutex<BTreeMap<(Method, &'static str), u64>>,
    latency: Mutex<BTreeMap<Method, std::sync::Arc<Histogram>>>,
    /// Queries currently streaming results.
    pub active_queries: AtomicI64,
    /// Rows and bytes streamed to clients.
    pub rows_sent: AtomicU64,
    pub queries_rejected: AtomicU64,
    pub queries_cancelled: AtomicU64,
    pub queries_timed_out: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, method: Method, elapsed: Duration, error: Option<tonic::Code>) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(method)
            .or_default() += 1;
        if let Some(code) = error {
            *self
                .errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((method, code_name(code)))
                .or_default() += 1;
        }
        let h = {
            let mut map = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            std::sync::Arc::clone(map.entry(method).or_default())
        };
        h.observe(elapsed);
    }

    /// The exposition text. `memory_reserved` is the engine's memory pool usage.
    pub fn render(&self, memory_reserved: usize) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP fstore_requests_total Flight SQL requests by method."
        );
        let _ = writeln!(out, "# TYPE fstore_requests_total counter");
        for (m, n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let m = Label(*m);
            let _ = writeln!(out, "fstore_requests_total{{method=\"{m}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP fstore_request_errors_total Failed requests by method and gRPC code."
        );
        let _ = writeln!(out, "# TYPE fstore_request_errors_total counter");
        for ((m, c), n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let m = Label(*m);
            let _ = writeln!(
                out,
                "fstore_request_errors_total{{method=\"{m}\",code=\"{c}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP fstore_request_duration_seconds Request latency by method."
        );
        let _ = writeln!(out, "# TYPE fstore_request_duration_seconds histogram");
        for (m, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let m = Label(*m);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "fstore_request_duration_seconds_bucket{{method=\"{m}\",le=\"{b}\"}} {}",
                    h.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "fstore_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "fstore_request_duration_seconds_sum{{method=\"{m}\"}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "fstore_request_duration_seconds_count{{method=\"{m}\"}} {count}"
            );
        }
        let gauges: [(&str, &str, i64); 7] = [
            (
                "fstore_active_queries",
                "Queries currently streaming results.",
                self.active_queries.load(Ordering::Relaxed),
            ),
            (
                "fstore_memory_reserved_bytes",
                "Memory reserved in the query memory pool.",
                memory_reserved as i64,
            ),
            (
                "fstore_rows_sent_total",
                "Rows streamed to clients.",
                self.rows_sent.load(Ordering::Relaxed) as i64,
            ),
            (
                "fstore_queries_rejected_total",
                "Queries rejected by the concurrency limit.",
                self.queries_rejected.load(Ordering::Relaxed) as i64,
            ),
            (
                "fstore_queries_cancelled_total",
                "Queries cancelled by clients.",
                self.queries_cancelled.load(Ordering::Relaxed) as i64,
            ),
            (
                "fstore_queries_timed_out_total",
                "Queries stopped by their time limit (fstore.query_timeout).",
                self.queries_timed_out.load(Ordering::Relaxed) as i64,
            ),
            (
                "fstore_online_direct_lookups_total",
                "Online lookups answered from the store without planning a query.",
                crate::sql::lookup::direct_lookups() as i64,
            ),
        ];
        for (name, help, v) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// A label value, escaped for the exposition format.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The monitors' latest values as gauges (from the registry: the same on every server of a
/// warehouse): `fstore_monitor_value{monitor,metric,feature}` and
/// `fstore_monitor_status{monitor,metric,feature}` (0 ok, 1 alert, 2 no data, 3 error), and
/// `fstore_monitor_open_alerts{monitor}`.
pub fn monitor_gauges(state: &crate::registry::RegistryState) -> String {
    use crate::registry::MetricStatus;
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP fstore_monitor_value The latest value of each monitor metric.\n# TYPE fstore_monitor_value gauge"
    );
    let mut status = String::new();
    let _ = writeln!(
        status,
        "# HELP fstore_monitor_status The latest status of each monitor metric: 0 ok, 1 alert, 2 no data, 3 error.\n# TYPE fstore_monitor_status gauge"
    );
    for (name, runs) in &state.monitor_runs {
        let Some(run) = runs.last() else { continue };
        for r in &run.results {
            let labels = format!(
                "monitor=\"{}\",metric=\"{}\",feature=\"{}\"",
                label_value(name),
                label_value(&r.metric),
                label_value(&r.feature)
            );
            if let Some(v) = r.value {
                let _ = writeln!(out, "fstore_monitor_value{{{labels}}} {v}");
            }
            let code = match r.status {
                MetricStatus::Ok => 0,
                MetricStatus::Alert => 1,
                MetricStatus::NoData => 2,
                MetricStatus::Error => 3,
            };
            let _ = writeln!(status, "fstore_monitor_status{{{labels}}} {code}");
        }
    }
    out.push_str(&status);
    let _ = writeln!(
        out,
        "# HELP fstore_monitor_run_failed 1 when a monitor's latest run failed as a whole (see fstore.monitor_runs).\n# TYPE fstore_monitor_run_failed gauge"
    );
    for (name, runs) in &state.monitor_runs {
        if let Some(run) = runs.last() {
            let _ = writeln!(
                out,
                "fstore_monitor_run_failed{{monitor=\"{}\"}} {}",
                label_value(name),
                u8::from(run.error.is_some())
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP fstore_monitor_open_alerts Open alerts per monitor.\n# TYPE fstore_monitor_open_alerts gauge"
    );
    for name in state.monitors.keys() {
        let open = state
            .alerts
            .values()
            .filter(|a| &a.monitor == name && a.state == crate::registry::AlertState::Open)
            .count();
        let _ = writeln!(
            out,
            "fstore_monitor_open_alerts{{monitor=\"{}\"}} {open}",
            label_value(name)
        );
    }
    out
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` until the listener fails.
pub async fn serve(listener: TcpListener, render: impl Fn() -> String + Send + Sync + 'static) {
    let render = std::sync::Arc::new(render);
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let render = std::sync::Arc::clone(&render);
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /metrics") {
                ("200 OK", render())
            } else {
                ("404 Not Found", "not found: try /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
