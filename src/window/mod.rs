//! Windowed aggregates per entity over event time, exact at any timestamp.
//!
//! The value of a window feature at time t for an entity is the aggregate over that entity's
//! events with event time in the half-open window **(t − w, t]**: an event exactly at t − w
//! is out, every event at t (ties included) is in. Two operators, one machinery:
//!
//! - [`FeatureWindowExec`] — per event: every event row gets the features at its own time
//!   (`SELECT * FROM feature_group`). Output: every input column, then one column per spec.
//! - [`WindowAtExec`] — at arbitrary times: for each row (entity, t) of a *spine* (training
//!   set rows: duplicates, times before any event, entities without events are all fine),
//!   the features at exactly t — not at the entity's last event before t. Output: every
//!   spine column, then one column per spec, one row per spine row.
//!
//! ```ignore
//! use fstore::window::{FeatureWindowExec, WindowAgg, WindowSpec};
//! let specs = vec![WindowSpec::new(WindowAgg::Mean, Some("amount"), parse_duration("30 days")?, "amount_mean_30d")];
//! let plan = FeatureWindowExec::try_new(input, vec!["customer_id".into()], "transaction_date".into(), specs)?;
//! ```
//!
//! # Approach
//!
//! DataFusion's `RANGE` window sorts every partition and re-evaluates frames; at 10M rows it
//! exhausts memory. Here each operator requires its input(s) hash-partitioned by the keys
//! (DataFusion inserts the repartition; all `target_partitions` cores work), and per
//! partition:
//!
//! 1. buffers the events, normalising each batch once (time to i64 in a common unit, values
//!    to f64 / i64 / i128 / row bytes) and numbering entities with DataFusion's `GroupValues`
//!    hash table (`partition.rs`);
//! 2. orders rows by entity with a counting sort (8 bytes moved per row, not the row), then
//!    per entity by time — a check, not a sort, when events already arrive in time order;
//! 3. sweeps each entity once (`state.rs`): the upper edge adds events as it passes them;
//!    each distinct window length has its own lower edge evicting events as it passes them;
//!    aggregates are updated incrementally (exact integer sums, compensated float sums that
//!    are periodically rebuilt, monotonic deques for min/max, multiplicity maps for
//!    count_distinct). Cost: one pass over the events (+ the spine) after the counting sort.
//!
//! Memory: the partition's input batches (only the columns the output keeps, see
//! [`FeatureWindowExec::with_projection`]) plus ~12 bytes per row, accounted to DataFusion's
//! memory pool (a partition that does not fit fails with "resources exhausted", naming the
//! operator), plus the largest entity's gathered events. Output is produced lazily in
//! batches of the session's `batch_size` (per-event output: entity by entity, time order
//! within each entity, then rows with a NULL key or time; spine output: see [`WindowAtExec`]).
//! Skewed keys cost one entity's sort and sweep, no more.
//!
//! # Semantics
//!
//! - Output types: mean, stddev → Float64; sum → Int64 for integer input (an overflow is an
//!   error), Float64 for floats, Decimal128(38, s) for Decimal128(p, s); count, count(*),
//!   count_distinct → Int64, 0 for an empty window; min, max, last → the input type. An empty
//!   window (or only NULL values) gives NULL for the others; stddev (sample) of one value is
//!   NULL. Rows with a NULL key (any key column) or a NULL time get NULL features, counts
//!   included; NULL-key events are nobody's events.
//! - `last`: the latest event in the window with a non-NULL value; among events at the same
//!   time, the last in input order — input order is made explicit by [`RowSequenceExec`],
//!   which the operators add below the repartition when a `last` feature exists: the
//!   partition-major order of the plan below it, i.e. file order for file scans (DataFusion
//!   splits files into ranges in order; note that it may re-split an in-memory table's
//!   partitions by batch size, `repartition_file_scans`).
//! - Floats: NaN sorts above every number for min/max; sums and means propagate NaN/±inf
//!   while such a value is in the window; count_distinct treats -0.0 as 0.0 and all NaNs as
//!   one value.
//! - Keys: any number of columns of any hashable type. For [`WindowAtExec`] the spine keys
//!   must have the events' key types (the table function casts them).
//! - Time: Timestamp of any unit, with or without time zone (instants are compared, so
//!   zones do not matter), Date32, Date64, or integers. Windows are converted to the time
//!   column's unit (for `WindowAtExec`, the finer of the two time columns' units; the other
//!   is scaled exactly), rounded up to whole units — exact, since times are whole units. An
//!   integer time column counts seconds: `'30 days'` is 2,592,000 units, `'15s'` is 15.
//! - Decimal sums stay exact (i128); means and stddevs of decimals are Float64.
//!
//! Parameters are plain data (column names, [`WindowSpec`]s with [`WindowAgg`] and
//! `Duration`), which `codec` carries (datafusion-proto codecs of the three operators and of
//! the table functions' providers, contributed to the engine's composed codecs).
//!
//! This module never plans SQL by itself: feature-group statements build these operators;
//! `window_features` / `window_features_at` ([`table_function`]) exist for tests and
//! benchmarks.

mod at_exec;
mod codec;
pub mod duration;
mod feature_exec;
mod partition;
mod plan;
mod sequence;
mod spec;
mod state;
pub mod table_function;
mod values;

pub use at_exec::WindowAtExec;
pub use duration::{format_duration, parse_duration};
pub use feature_exec::FeatureWindowExec;
pub use sequence::{RowSequenceExec, SEQ_COLUMN};
pub use spec::{WindowAgg, WindowSpec, feature_type};
pub use table_function::{WindowExtension, register_table_functions};
