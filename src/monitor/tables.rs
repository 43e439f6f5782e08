//! The monitoring system tables — `fstore.alert_channels` (secrets masked),
//! `fstore.monitors`, `fstore.monitor_runs` (one row per metric value of every kept run),
//! `fstore.alerts`, `fstore.alert_deliveries` (one row per attempt) — and the table function
//! `monitor_history('name')`, a monitor's values as a time series.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;

use crate::engine::Setup;
use crate::providers::system::{SystemTable, utc_micros};
use crate::registry::{
    DeliveryState, MetricStatus, MonitorRun, MonitorTarget, MonitorWindow, Registry, RegistryState,
    monitor_due, now_micros,
};

/// A cell of a row-built table.
enum Cell {
    S(Option<String>),
    U(Option<u64>),
    F(Option<f64>),
    T(Option<i64>),
    B(Option<bool>),
}

fn s(v: impl Into<String>) -> Cell {
    Cell::S(Some(v.into()))
}

/// A table's columns: (name, type, nullable); the type decides which cells it takes.
fn batch(columns: &[(&str, DataType, bool)], rows: Vec<Vec<Cell>>) -> Result<RecordBatch> {
    let schema = schema_of(columns);
    let mut arrays: Vec<ArrayRef> = vec![];
    for (i, (_, t, _)) in columns.iter().enumerate() {
        let cells = rows.iter().map(|r| &r[i]);
        let array: ArrayRef = match t {
            DataType::Utf8 => Arc::new(StringArray::from_iter(
                cells.map(|c| if let Cell::S(v) = c { v.clone() } else { None }),
            )),
            DataType::UInt64 => Arc::new(UInt64Array::from_iter(
                cells.map(|c| if let Cell::U(v) = c { *v } else { None }),
            )),
            DataType::Float64 => Arc::new(Float64Array::from_iter(
                cells.map(|c| if let Cell::F(v) = c { *v } else { None }),
            )),
            DataType::Boolean => Arc::new(BooleanArray::from_iter(
                cells.map(|c| if let Cell::B(v) = c { *v } else { None }),
            )),
            _ => Arc::new(
                TimestampMicrosecondArray::from_iter(
                    cells.map(|c| if let Cell::T(v) = c { *v } else { None }),
                )
                .with_timezone("UTC"),
            ),
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

fn schema_of(columns: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
            .collect::<Vec<_>>(),
    ))
}

macro_rules! system_table {
    ($ty:ident, $name:literal, $columns:ident, $rows:ident) => {
        #[derive(Debug)]
        struct $ty;
        impl SystemTable for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn schema(&self) -> SchemaRef {
                schema_of(&$columns())
            }
            fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
                batch(&$columns(), $rows(state))
            }
        }
    };
}

fn channel_columns() -> Vec<(&'static str, DataType, bool)> {
    vec![
        ("name", DataType::Utf8, false),
        ("type", DataType::Utf8, false),
        ("url", DataType::Utf8, false),
        ("headers", DataType::Utf8, true),
        ("rate_per_second", DataType::Float64, false),
        ("owner", DataType::Utf8, false),
        ("created_at", utc_micros(), false),
    ]
}

fn channel_rows(state: &RegistryState) -> Vec<Vec<Cell>> {
    state
        .alert_channels
        .values()
        .map(|c| {
            let headers: Vec<String> = c.headers.iter().map(|(k, _)| format!("{k}: ***")).collect();
            vec![
                s(&c.name),
                s(c.kind.as_str()),
                s(c.masked_url()),
                Cell::S((!headers.is_empty()).then(|| headers.join(", "))),
                Cell::F(Some(c.rate_per_second)),
                s(&c.owner),
                Cell::T(Some(c.created_at)),
            ]
        })
        .collect()
}

system_table!(
    ChannelsTable,
    "alert_channels",
    channel_columns,
    channel_rows
);

fn monitor_columns() -> Vec<(&'static str, DataType, bool)> {
    vec![
        ("name", DataType::Utf8, false),
        ("target_kind", DataType::Utf8, false),
        ("target", DataType::Utf8, false),
        ("version", DataType::UInt64, true),
        ("every", DataType::Utf8, false),
        ("window", DataType::Utf8, false),
        ("metrics", DataType::Utf8, false),
        ("channels", DataType::Utf8, false),
        ("renotify_every", DataType::Utf8, true),
        ("paused", DataType::Boolean, false),
        ("owner", DataType::Utf8, false),
        ("created_at", utc_micros(), false),
        ("last_run", utc_micros(), true),
        ("last_status", DataType::Utf8, true),
        ("next_run", utc_micros(), true),
        ("open_alerts", DataType::UInt64, false),
    ]
}

/// The worst status of a run (`error` when the run failed).
pub fn run_status(run: &MonitorRun) -> &'static str {
    if run.error.is_some() {
        return "error";
    }
    let rank = |s: MetricStatus| match s {
        MetricStatus::Alert => 3,
        MetricStatus::Error => 2,
        MetricStatus::NoData => 1,
        MetricStatus::Ok => 0,
    };
    run.results
        .iter()
        .map(|r| r.status)
        .max_by_key(|s| rank(*s))
        .map(|s| s.as_str())
        .unwrap_or("ok")
}

fn monitor_rows(state: &RegistryState) -> Vec<Vec<Cell>> {
    let now = now_micros();
    state
        .monitors
        .values()
        .map(|m| {
            let (kind, target, version) = match &m.target {
                MonitorTarget::FeatureSet { name, version } => ("feature_set", name, *version),
                MonitorTarget::FeatureGroup { name } => ("feature_group", name, None),
            };
            let window = match &m.window {
                MonitorWindow::All => "all rows".to_string(),
                MonitorWindow::Last { length } => length.text.clone(),
                MonitorWindow::SinceLastRun => "since last run".to_string(),
            };
            let last = state.monitor_runs.get(&m.name).and_then(|r| r.last());
            // When it is due: the past due time while a run is owed, else the next point of
            // its grid.
            let next = (!m.paused).then(|| {
                monitor_due(state, m, now)
                    .or_else(|| monitor_due(state, m, now + m.every.micros))
                    .unwrap_or(now)
            });
            let open = state
                .alerts
                .values()
                .filter(|a| a.monitor == m.name && a.state == crate::registry::AlertState::Open)
                .count();
            vec![
                s(&m.name),
                s(kind),
                s(target),
                Cell::U(version),
                s(&m.every.text),
                s(window),
                s(m.metrics
                    .iter()
                    .map(|x| x.to_sql())
                    .collect::<Vec<_>>()
                    .join(", ")),
                s(m.channels.join(", ")),
                Cell::S(m.renotify.as_ref().map(|r| r.text.clone())),
                Cell::B(Some(m.paused)),
                s(&m.owner),
                Cell::T(Some(m.created_at)),
                Cell::T(last.map(|r| r.as_of)),
                Cell::S(last.map(|r| run_status(r).to_string())),
                Cell::T(next),
                Cell::U(Some(open as u64)),
            ]
        })
        .collect()
}

system_table!(MonitorsTable, "monitors", monitor_columns, monitor_rows);

fn run_columns() -> Vec<(&'static str, DataType, bool)> {
    vec![
        ("monitor", DataType::Utf8, false),
        ("run", DataType::UInt64, false),
        ("trigger", DataType::Utf8, false),
        ("target", DataType::Utf8, false),
        ("as_of", utc_micros(), false),
        ("window_start", utc_micros(), true),
        ("started", utc_micros(), false),
        ("finished", utc_micros(), false),
        ("rows", DataType::UInt64, false),
        ("metric", DataType::Utf8, true),
        ("feature", DataType::Utf8, true),
        ("value", DataType::Float64, true),
        ("operator", DataType::Utf8, true),
        ("threshold", DataType::Float64, true),
        ("status", DataType::Utf8, false),
        ("note", DataType::Utf8, true),
        ("query", DataType::Utf8, true),
        ("server", DataType::Utf8, false),
    ]
}

/// One row per metric value of `runs` (a failed run: one row with its error).
fn rows_of_runs<'a>(runs: impl Iterator<Item = &'a MonitorRun>) -> Vec<Vec<Cell>> {
    let mut out = vec![];
    for run in runs {
        let head = |out: &mut Vec<Vec<Cell>>, tail: Vec<Cell>| {
            let mut row = vec![
                s(&run.monitor),
                Cell::U(Some(run.run)),
                s(&run.trigger),
                s(&run.target),
                Cell::T(Some(run.as_of)),
                Cell::T(run.window_start),
                Cell::T(Some(run.started)),
                Cell::T(Some(run.finished)),
                Cell::U(Some(run.rows)),
            ];
            row.extend(tail);
            row.push(s(&run.server));
            out.push(row);
        };
        if let Some(e) = &run.error {
            head(
                &mut out,
                vec![
                    Cell::S(None),
                    Cell::S(None),
                    Cell::F(None),
                    Cell::S(None),
                    Cell::F(None),
                    s("error"),
                    s(e),
                    Cell::S(None),
                ],
            );
        }
        for r in &run.results {
            head(
                &mut out,
                vec![
                    s(&r.metric),
                    Cell::S((!r.feature.is_empty()).then(|| r.feature.clone())),
                    Cell::F(r.value),
                    s(r.op.as_str()),
                    Cell::F(Some(r.threshold)),
                    s(r.status.as_str()),
                    Cell::S(r.note.clone()),
                    Cell::S(r.query.clone()),
                ],
            );
        }
    }
    out
}

fn run_rows(state: &RegistryState) -> Vec<Vec<Cell>> {
    let mut runs: Vec<&MonitorRun> = state.monitor_runs.values().flatten().collect();
    runs.sort_by_key(|r| r.run);
    rows_of_runs(runs.into_iter())
}

system_table!(RunsTable, "monitor_runs", run_columns, run_rows);

/// `RUN MONITOR`'s result: the run's rows of `fstore.monitor_runs`.
pub fn run_batch(run: &MonitorRun) -> Result<RecordBatch> {
    batch(&run_columns(), rows_of_runs(std::iter::once(run)))
}

fn alert_columns() -> Vec<(&'static str, DataType, bool)> {
    vec![
        ("monitor", DataType::Utf8, false),
        ("metric", DataType::Utf8, false),
        ("feature", DataType::Utf8, true),
        ("state", DataType::Utf8, false),
        ("value", DataType::Float64, true),
        ("operator", DataType::Utf8, false),
        ("threshold", DataType::Float64, false),
        ("opened_at", utc_micros(), false),
        ("resolved_at", utc_micros(), true),
        ("opened_run", DataType::UInt64, false),
        ("last_run", DataType::UInt64, false),
        ("last_notified", utc_micros(), false),
        ("notifications", DataType::UInt64, false),
    ]
}

fn alert_rows(state: &RegistryState) -> Vec<Vec<Cell>> {
    let mut alerts: Vec<_> = state.alerts.values().collect();
    alerts.sort_by_key(|a| a.opened_at);
    alerts
        .into_iter()
        .map(|a| {
            vec![
                s(&a.monitor),
                s(&a.metric),
                Cell::S((!a.feature.is_empty()).then(|| a.feature.clone())),
                s(match a.state {
                    crate::registry::AlertState::Open => "open",
                    crate::registry::AlertState::Resolved => "resolved",
                }),
                Cell::F(a.value),
                s(a.op.as_str()),
                Cell::F(Some(a.threshold)),
                Cell::T(Some(a.opened_at)),
                Cell::T(a.resolved_at),
                Cell::U(Some(a.opened_run)),
                Cell::U(Some(a.last_run)),
                Cell::T(Some(a.last_notified)),
                Cell::U(Some(a.notifications as u64)),
            ]
        })
        .collect()
}

system_table!(AlertsTable, "alerts", alert_columns, alert_rows);

fn delivery_columns() -> Vec<(&'static str, DataType, bool)> {
    vec![
        ("notification", DataType::Utf8, false),
        ("event", DataType::Utf8, false),
        ("monitor", DataType::Utf8, false),
        ("metric", DataType::Utf8, false),
        ("feature", DataType::Utf8, true),
        ("channel", DataType::Utf8, false),
        ("state", DataType::Utf8, false),
        ("created_at", utc_micros(), false),
        ("attempt", DataType::UInt64, true),
        ("server", DataType::Utf8, true),
        ("attempted_at", utc_micros(), true),
        ("ok", DataType::Boolean, true),
        ("http_status", DataType::UInt64, true),
        ("error", DataType::Utf8, true),
    ]
}

fn delivery_rows(state: &RegistryState) -> Vec<Vec<Cell>> {
    let mut ns: Vec<_> = state.notifications.values().collect();
    ns.sort_by_key(|n| n.created_at);
    let mut out = vec![];
    for n in ns {
        for d in &n.deliveries {
            let head = || {
                vec![
                    s(&n.id),
                    s(n.kind.as_str()),
                    s(&n.monitor),
                    s(&n.result.metric),
                    Cell::S((!n.result.feature.is_empty()).then(|| n.result.feature.clone())),
                    s(&d.channel),
                    s(match d.state {
                        DeliveryState::Pending => "pending",
                        DeliveryState::Sending => "sending",
                        DeliveryState::Delivered => "delivered",
                        DeliveryState::Failed => "failed",
                    }),
                    Cell::T(Some(n.created_at)),
                ]
            };
            if d.attempts.is_empty() {
                let mut row = head();
                row.extend([
                    Cell::U(None),
                    Cell::S(None),
                    Cell::T(None),
                    Cell::B(None),
                    Cell::U(None),
                    Cell::S(None),
                ]);
                out.push(row);
            }
            for a in &d.attempts {
                let mut row = head();
                row.extend([
                    Cell::U(Some(a.attempt as u64)),
                    s(&a.server),
                    Cell::T(Some(a.at)),
                    Cell::B(a.ok),
                    Cell::U(a.http_status.map(u64::from)),
                    Cell::S(a.error.clone()),
                ]);
                out.push(row);
            }
        }
    }
    out
}

system_table!(
    DeliveriesTable,
    "alert_deliveries",
    delivery_columns,
    delivery_rows
);

/// `monitor_history('name')`: run, as_of, metric, feature, value, threshold, status — one
/// row per metric value of every kept run, oldest first.
#[derive(Debug)]
pub struct MonitorHistory {
    registry: Arc<Registry>,
}

pub const HISTORY: &str = "monitor_history";

impl TableFunctionImpl for MonitorHistory {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        crate::args::at_most(exprs, 1, HISTORY, "monitor")?;
        let name = crate::args::required_string(exprs, 0, HISTORY, "monitor")?;
        let state = self.registry.state();
        state.monitor(&name).map_err(|e| {
            crate::error::FStoreError::new(e.kind, format!("{HISTORY}: {}", e.message))
        })?;
        let columns = vec![
            ("run", DataType::UInt64, false),
            ("as_of", utc_micros(), false),
            ("metric", DataType::Utf8, true),
            ("feature", DataType::Utf8, true),
            ("value", DataType::Float64, true),
            ("threshold", DataType::Float64, true),
            ("status", DataType::Utf8, false),
        ];
        let mut rows = vec![];
        for run in state.monitor_runs.get(&name).into_iter().flatten() {
            if let Some(e) = &run.error {
                let _ = e;
                rows.push(vec![
                    Cell::U(Some(run.run)),
                    Cell::T(Some(run.as_of)),
                    Cell::S(None),
                    Cell::S(None),
                    Cell::F(None),
                    Cell::F(None),
                    s("error"),
                ]);
            }
            for r in &run.results {
                rows.push(vec![
                    Cell::U(Some(run.run)),
                    Cell::T(Some(run.as_of)),
                    s(&r.metric),
                    Cell::S((!r.feature.is_empty()).then(|| r.feature.clone())),
                    Cell::F(r.value),
                    Cell::F(Some(r.threshold)),
                    s(r.status.as_str()),
                ]);
            }
        }
        let b = batch(&columns, rows)?;
        Ok(Arc::new(MemTable::try_new(b.schema(), vec![vec![b]])?))
    }
}

/// Registers the tables and `monitor_history`.
pub fn register(setup: &mut Setup<'_>) {
    setup.system.register(Arc::new(ChannelsTable));
    setup.system.register(Arc::new(MonitorsTable));
    setup.system.register(Arc::new(RunsTable));
    setup.system.register(Arc::new(AlertsTable));
    setup.system.register(Arc::new(DeliveriesTable));
    setup.ctx.register_udtf(
        HISTORY,
        Arc::new(MonitorHistory {
            registry: Arc::clone(setup.registry),
        }),
    );
}
