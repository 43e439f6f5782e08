//! `WindowAtExec`: window features at arbitrary times — one output row per spine row, with
//! the features of the spine row's entity over `(t − w, t]` at the spine row's own time t.
//!
//! Per output partition (both inputs hash-partitioned by their keys, co-partitioned):
//! 1. buffer the spine partition and number its entities;
//! 2. stream the events, keeping only those of entities the spine asks about that can fall
//!    in one of their windows: after the entity's earliest spine time minus the longest
//!    window, and no later than its latest spine time (a spine over a short period of a long
//!    history buffers little);
//! 3. per entity: gather its events in time order, visit its spine rows in time order,
//!    sweeping the window forward to each ([`Sweep`]);
//! 4. emit the spine rows in spine order, features attached.
//!
//! Order guarantee: each output partition holds the spine rows of its keys in the spine's
//! own order. The spine is numbered by a [`super::RowSequenceExec`] below the repartition
//! (partition-major, so file order for file scans and insertion order for memory tables),
//! and rows are emitted by that number: zero-copy when they arrived in order (a spine read
//! as one partition), by an interleave otherwise. NULL keys or NULL times get NULL features
//! (counts included); entities without events get 0 counts and NULL values.

use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::compute::{can_cast_types, interleave, take};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::common::plan_err;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::{Distribution, EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream, apply_expression_roots,
};
use futures::{StreamExt, TryStreamExt};

use super::feature_exec::{converters, new_outputs};
use super::partition::{
    EventBatch, EventTable, KeyGroups, NO_GROUP, counting_sort, pack, reserve, unpack,
};
use super::plan::{Side, check_bounded, output_partitioning, with_sequence};
use super::spec::{Layout, TimeScale, WindowAgg, WindowSpec, extend_schema, resolve};
use super::state::Sweep;
use super::values::{GroupEvents, normalize_time};

mod emit;

use emit::spine_order;

const NAME: &str = "WindowAtExec";

/// Spine evaluation: output = every spine column + one column per spec, one row per spine
/// row, in spine order within each output partition (see the module documentation).
#[derive(Debug, Clone)]
pub struct WindowAtExec {
    events: Arc<dyn ExecutionPlan>,
    spine: Arc<dyn ExecutionPlan>,
    event_keys: Vec<String>,
    event_time: String,
    spine_keys: Vec<String>,
    spine_time: String,
    specs: Vec<WindowSpec>,
    ev_side: Side,
    sp_side: Side,
    scale: TimeScale,
    layout: Arc<Layout>,
    ev_key_exprs: Vec<Arc<dyn PhysicalExpr>>,
    sp_key_exprs: Vec<Arc<dyn PhysicalExpr>>,
    cache: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl WindowAtExec {
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        events: Arc<dyn ExecutionPlan>,
        event_keys: Vec<String>,
        event_time: String,
        spine: Arc<dyn ExecutionPlan>,
        spine_keys: Vec<String>,
        spine_time: String,
        specs: Vec<WindowSpec>,
    ) -> Result<Self> {
        let needs_seq = specs.iter().any(|s| s.agg == WindowAgg::Last);
        let events = with_sequence(events, needs_seq)?;
        // The spine is numbered too: output follows the spine's own order.
        let spine = with_sequence(spine, true)?;
        Self::build(
            events, event_keys, event_time, spine, spine_keys, spine_time, specs,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        events: Arc<dyn ExecutionPlan>,
        event_keys: Vec<String>,
        event_time: String,
        spine: Arc<dyn ExecutionPlan>,
        spine_keys: Vec<String>,
        spine_time: String,
        specs: Vec<WindowSpec>,
    ) -> Result<Self> {
        check_bounded(NAME, &events)?;
        check_bounded(NAME, &spine)?;
        let ev_schema = events.schema();
        let sp_schema = spine.schema();
        let AtPlan {
            ev_side,
            sp_side,
            scale,
            layout,
            schema: out_schema,
        } = plan_at(
            NAME,
            &ev_schema,
            &sp_schema,
            (&event_keys, &event_time),
            (&spine_keys, &spine_time),
            &specs,
            true,
        )?;
        let cache = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&out_schema)),
            output_partitioning(spine.output_partitioning(), sp_side.visible),
            EmissionType::Final,
            spine.boundedness(),
        );
        let ev_key_exprs = ev_side.key_exprs(&ev_schema);
        let sp_key_exprs = sp_side.key_exprs(&sp_schema);
        Ok(Self {
            events,
            spine,
            event_keys,
            event_time,
            spine_keys,
            spine_time,
            specs,
            ev_side,
            sp_side,
            scale,
            layout: Arc::new(layout),
            ev_key_exprs,
            sp_key_exprs,
            cache: Arc::new(cache),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn events(&self) -> &Arc<dyn ExecutionPlan> {
        &self.events
    }
    pub fn spine(&self) -> &Arc<dyn ExecutionPlan> {
        &self.spine
    }
    pub fn specs(&self) -> &[WindowSpec] {
        &self.specs
    }
    /// The events' key columns and time column.
    pub fn event_columns(&self) -> (&[String], &str) {
        (&self.event_keys, &self.event_time)
    }
    /// The spine's key columns and time column.
    pub fn spine_columns(&self) -> (&[String], &str) {
        (&self.spine_keys, &self.spine_time)
    }
}

impl DisplayAs for WindowAtExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let specs: Vec<String> = self.specs.iter().map(|s| s.to_string()).collect();
        write!(
            f,
            "{NAME}: events=[{}] @ {}, spine=[{}] @ {}, features=[{}]",
            self.event_keys.join(", "),
            self.event_time,
            self.spine_keys.join(", "),
            self.spine_time,
            specs.join(", ")
        )
    }
}

impl ExecutionPlan for WindowAtExec {
    fn name(&self) -> &str {
        NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    #[allow(deprecated)]
    fn required_input_distribution(&self) -> Vec<Distribution> {
        self.input_distribution_requirements().into_per_child()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::co_partitioned(vec![
            Distribution::KeyPartitioned(self.ev_key_exprs.clone()),
            Distribution::KeyPartitioned(self.sp_key_exprs.clone()),
        ])
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.events, &self.spine]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(self.ev_key_exprs.iter().chain(&self.sp_key_exprs), f)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 2 {
            return datafusion::common::internal_err!(
                "{}: expected 2 child plan(s), got {}",
                NAME,
                children.len()
            );
        }
        let spine = children.swap_remove(1);
        let events = children.swap_remove(0);
        Ok(Arc::new(Self::build(
            events,
            self.event_keys.clone(),
            self.event_time.clone(),
            spine,
            self.spine_keys.clone(),
            self.spine_time.clone(),
            self.specs.clone(),
        )?))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let events = self.events.execute(partition, Arc::clone(&context))?;
        let spine = self.spine.execute(partition, Arc::clone(&context))?;
        let reservation =
            MemoryConsumer::new(format!("{NAME}[{partition}]")).register(context.memory_pool());
        let job = AtJob {
            schema: self.schema(),
            ev_side: self.ev_side.clone(),
            sp_side: self.sp_side.clone(),
            ev_factor: self.scale.factor(self.ev_side.time_kind),
            sp_factor: self.scale.factor(self.sp_side.time_kind),
            key_fields: self.ev_side.key_fields(&self.events.schema()),
            layout: Arc::clone(&self.layout),
            batch_size: context.session_config().batch_size().max(1),
            metrics: BaselineMetrics::new(&self.metrics, partition),
            reservation,
        };
        let stream = futures::stream::once(job.run(events, spine))
            .map_ok(futures::stream::iter)
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// What the operator resolves from its inputs' schemas; the table function checks its
/// arguments with the same code (allowing spine keys it will cast: `exact_keys = false`).
pub(crate) struct AtPlan {
    pub ev_side: Side,
    pub sp_side: Side,
    pub scale: TimeScale,
    pub layout: Layout,
    pub schema: SchemaRef,
}

pub(crate) fn plan_at(
    what: &str,
    ev_schema: &arrow_schema::Schema,
    sp_schema: &arrow_schema::Schema,
    (event_keys, event_time): (&[String], &str),
    (spine_keys, spine_time): (&[String], &str),
    specs: &[WindowSpec],
    exact_keys: bool,
) -> Result<AtPlan> {
    let ev_side = Side::resolve(what, ev_schema, event_keys, event_time)?;
    let sp_side = Side::resolve(what, sp_schema, spine_keys, spine_time)?;
    if event_keys.len() != spine_keys.len() {
        return plan_err!(
            "{what}: the events have {} key column(s) but the spine has {}",
            event_keys.len(),
            spine_keys.len()
        );
    }
    for (i, (e, s)) in ev_side.keys.iter().zip(&sp_side.keys).enumerate() {
        let (et, st) = (
            ev_schema.field(*e).data_type(),
            sp_schema.field(*s).data_type(),
        );
        let ok = et == st || (!exact_keys && can_cast_types(st, et));
        if !ok {
            return plan_err!(
                "{what}: spine key '{}' is {st} but event key '{}' is {et}; cast one of them so the types match",
                spine_keys[i],
                event_keys[i]
            );
        }
    }
    if ev_side.time_kind.integer != sp_side.time_kind.integer {
        return plan_err!(
            "{what}: event time '{event_time}' ({}) and spine time '{spine_time}' ({}) cannot be compared: integer times need integer spine times",
            ev_schema.field(ev_side.time).data_type(),
            sp_schema.field(sp_side.time).data_type()
        );
    }
    let scale = TimeScale::of(&[ev_side.time_kind, sp_side.time_kind]);
    let reserved: Vec<&str> = sp_schema
        .fields()
        .iter()
        .take(sp_side.visible)
        .map(|f| f.name().as_str())
        .collect();
    let layout = resolve(what, ev_schema, specs, &scale, &reserved)?;
    let schema = extend_schema(sp_schema, sp_side.visible, layout.fields());
    Ok(AtPlan {
        ev_side,
        sp_side,
        scale,
        layout,
        schema,
    })
}

struct AtJob {
    schema: SchemaRef,
    ev_side: Side,
    sp_side: Side,
    ev_factor: i64,
    sp_factor: i64,
    key_fields: Vec<arrow_schema::Field>,
    layout: Arc<Layout>,
    batch_size: usize,
    metrics: BaselineMetrics,
    reservation: MemoryReservation,
}

struct SpineBatch {
    batch: RecordBatch,
    times: ScalarBuffer<i64>,
    gids: Vec<u32>,
    seq: Option<ScalarBuffer<u64>>,
}

impl AtJob {
    async fn run(
        self,
        mut events: SendableRecordBatchStream,
        mut spine: SendableRecordBatchStream,
    ) -> Result<AtEmitter> {
        let converters = converters(&self.layout)?;
        let mut groups = KeyGroups::new(self.key_fields.clone())?;
        let timer = self.metrics.elapsed_compute().clone();

        // 1. The spine partition, numbered by entity.
        let mut spine_batches: Vec<SpineBatch> = Vec::new();
        let mut spine_rows = 0;
        while let Some(batch) = spine.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let _t = timer.timer();
            reserve(
                &self.reservation,
                batch.get_array_memory_size(),
                NAME,
                spine_rows,
            )?;
            let keys: Vec<ArrayRef> = self
                .sp_side
                .keys
                .iter()
                .map(|&i| Arc::clone(batch.column(i)))
                .collect();
            let mut gids = Vec::new();
            groups.intern(&keys, &mut gids)?;
            let (times, nulls) = normalize_time(batch.column(self.sp_side.time), self.sp_factor)?;
            if let Some(n) = nulls {
                for i in (0..n.len()).filter(|&i| n.is_null(i)) {
                    gids[i] = NO_GROUP;
                }
            }
            reserve(&self.reservation, gids.len() * 12, NAME, spine_rows)?;
            spine_rows += batch.num_rows();
            let seq = self.sp_side.seq.map(|i| {
                batch
                    .column(i)
                    .as_primitive::<UInt64Type>()
                    .values()
                    .clone()
            });
            spine_batches.push(SpineBatch {
                batch,
                times,
                gids,
                seq,
            });
        }
        // Per entity, the events that can be in some spine row's window: time in
        // (earliest spine time - longest window, latest spine time].
        let n_groups = groups.len();
        let longest = self.layout.windows.iter().copied().max().unwrap_or(0);
        let mut latest = vec![i64::MIN; n_groups];
        let mut oldest = vec![i64::MAX; n_groups];
        for sb in &spine_batches {
            for (r, &g) in sb.gids.iter().enumerate() {
                if g != NO_GROUP {
                    let t = sb.times[r];
                    latest[g as usize] = latest[g as usize].max(t);
                    oldest[g as usize] = oldest[g as usize].min(t);
                }
            }
        }
        for o in &mut oldest {
            *o = o.saturating_sub(longest);
        }

        // 2. The events of those entities that can be in a window.
        let mut table = EventTable::default();
        let mut gids = Vec::new();
        let mut groups_size = groups.size();
        let values_of = |batch: &RecordBatch| -> Vec<ArrayRef> {
            self.layout
                .columns
                .iter()
                .map(|c| Arc::clone(batch.column(c.index)))
                .collect()
        };
        while let Some(batch) = events.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 || n_groups == 0 {
                continue;
            }
            let _t = timer.timer();
            let keys: Vec<ArrayRef> = self
                .ev_side
                .keys
                .iter()
                .map(|&i| Arc::clone(batch.column(i)))
                .collect();
            groups.intern(&keys, &mut gids)?;
            let time_col = batch.column(self.ev_side.time);
            let (times, nulls) = normalize_time(time_col, self.ev_factor)?;
            let keep: Vec<u32> = (0..batch.num_rows())
                .filter(|&r| {
                    let g = gids[r];
                    g != NO_GROUP
                        && (g as usize) < n_groups
                        && nulls.as_ref().is_none_or(|n| n.is_valid(r))
                        && times[r] <= latest[g as usize]
                        && times[r] > oldest[g as usize]
                })
                .map(|r| r as u32)
                .collect();
            let new_size = groups.size();
            reserve(
                &self.reservation,
                new_size.saturating_sub(groups_size),
                NAME,
                table.rows,
            )?;
            groups_size = groups_size.max(new_size);
            if keep.is_empty() {
                continue;
            }
            let seq = self.ev_side.seq.map(|i| batch.column(i));
            let ev = if keep.len() == batch.num_rows() {
                EventBatch::from_columns(
                    time_col,
                    self.ev_factor,
                    &values_of(&batch),
                    &self.layout,
                    &converters,
                    seq,
                    std::mem::take(&mut gids),
                )?
            } else {
                let idx = UInt32Array::from(keep);
                let pick = |a: &ArrayRef| take(a.as_ref(), &idx, None);
                let values = values_of(&batch)
                    .iter()
                    .map(pick)
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let seq = seq.map(pick).transpose()?;
                let kept_gids = idx.values().iter().map(|&r| gids[r as usize]).collect();
                EventBatch::from_columns(
                    &pick(time_col)?,
                    self.ev_factor,
                    &values,
                    &self.layout,
                    &converters,
                    seq.as_ref(),
                    kept_gids,
                )?
            };
            let held = ev.time.len() * 8
                + ev.extra_size()
                + ev.values.len() * ev.time.len() * 9
                + ev.seq.as_ref().map_or(0, |s| s.len() * 8);
            reserve(&self.reservation, held, NAME, table.rows)?;
            table.push(ev);
        }
        drop(groups);

        // 3. Per entity: sweep its events, visiting its spine rows in time order.
        let _t = timer.timer();
        reserve(
            &self.reservation,
            table.rows * 8 + spine_rows * (12 + 16 * self.layout.specs.len()),
            NAME,
            table.rows,
        )?;
        let ev_order = table.group_order(n_groups);
        let sp_order = counting_sort(spine_batches.iter().map(|s| s.gids.as_slice()), n_groups);
        let mut offsets = Vec::with_capacity(spine_batches.len());
        let mut acc = 0usize;
        for sb in &spine_batches {
            offsets.push(acc);
            acc += sb.batch.num_rows();
        }
        let mut out = new_outputs(&self.layout, &converters)?;
        let mut visit = vec![0u32; spine_rows];
        let mut visited = 0u32;
        let mut ev = GroupEvents::new(self.layout.columns.iter().map(|c| c.kind));
        let mut sweep = Sweep::new(&self.layout);
        let (mut refs, mut keyed, mut at) = (Vec::new(), Vec::new(), Vec::new());
        let scratch = self.reservation.new_empty();
        for g in 0..n_groups {
            table.gather(ev_order.group(g), &mut ev, &mut refs, &mut keyed);
            scratch.try_resize(ev.size() + refs.capacity() * 8 + keyed.capacity() * 24)?;
            sweep.reset();
            at.clear();
            at.extend(sp_order.group(g).iter().map(|&x| {
                let (b, r) = unpack(x);
                (spine_batches[b].times[r], x)
            }));
            at.sort_unstable();
            for &(t, x) in &at {
                sweep.advance_to(t, &ev);
                for (i, o) in out.iter_mut().enumerate() {
                    sweep.read(i, &ev, o, 1)?;
                }
                let (b, r) = unpack(x);
                visit[offsets[b] + r] = visited;
                visited += 1;
            }
        }
        for &x in &sp_order.orphans {
            for o in &mut out {
                o.push_null(1);
            }
            let (b, r) = unpack(x);
            visit[offsets[b] + r] = visited;
            visited += 1;
        }
        drop(table);
        drop(scratch);
        let results = out
            .into_iter()
            .zip(&self.layout.specs)
            .map(|(o, s)| o.finish(s.field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        let order = spine_order(&spine_batches);
        let spine_batches = spine_batches
            .into_iter()
            .map(|s| s.batch)
            .collect::<Vec<_>>();
        Ok(AtEmitter {
            job: self,
            spine: spine_batches,
            order,
            done: 0,
            offsets,
            visit,
            results,
            next: 0,
            row: 0,
        })
    }
}

/// Emits the spine rows in spine order with their features.
struct AtEmitter {
    job: AtJob,
    spine: Vec<RecordBatch>,
    order: Option<Vec<u64>>,
    /// Rows emitted so far (with `order`).
    done: usize,
    offsets: Vec<usize>,
    visit: Vec<u32>,
    results: Vec<ArrayRef>,
    next: usize,
    row: usize,
}
