//! `FeatureWindowExec`: the window features of every event at its own timestamp.
//!
//! Per output partition: buffer the partition's events ([`EventTable`]), number entities,
//! order rows by entity, then for each entity gather its events in time order and sweep them
//! once ([`Sweep`]), a tie group (events at the same time) at a time, since all of them are in
//! each other's windows. Output is produced lazily, `batch_size` rows at a time, entity by
//! entity (time order within an entity); rows with a NULL key or NULL time come last, with
//! NULL features.

use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::row::RowConverter;
use datafusion::common::plan_err;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{Distribution, EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream, apply_expression_roots,
};
use futures::{StreamExt, TryStreamExt};

use super::partition::{EventBatch, EventTable, GroupOrder, KeyGroups, reserve, unpack};
use super::plan::{Side, check_bounded, output_partitioning, with_sequence};
use super::spec::{Layout, TimeScale, WindowSpec, extend_schema, resolve};
use super::state::{Sweep, output_kind};
use super::values::{GroupEvents, OutputColumn, row_converter};

const NAME: &str = "FeatureWindowExec";

/// Per-event window features: output = every input column + one column per spec (or the
/// columns chosen by [`FeatureWindowExec::with_projection`]).
#[derive(Debug, Clone)]
pub struct FeatureWindowExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<String>,
    time: String,
    specs: Vec<WindowSpec>,
    projection: Option<Vec<usize>>,
    sources: Vec<Source>,
    retained: Vec<usize>,
    side: Side,
    layout: Arc<Layout>,
    key_exprs: Vec<Arc<dyn PhysicalExpr>>,
    cache: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl FeatureWindowExec {
    /// Window features `specs` of `input`'s events per entity `keys` over event time `time`.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<String>,
        time: String,
        specs: Vec<WindowSpec>,
    ) -> Result<Self> {
        let needs_seq = specs.iter().any(|s| s.agg == super::spec::WindowAgg::Last);
        let input = with_sequence(input, needs_seq)?;
        Self::build(input, keys, time, specs, None)
    }

    /// Outputs only the columns `projection` (indices into the full output: input columns,
    /// then features) in that order. Input columns left out are not kept while the
    /// partition is buffered, which is what makes `SELECT feature, …` cheap.
    pub fn with_projection(self, projection: Option<Vec<usize>>) -> Result<Self> {
        Self::build(self.input, self.keys, self.time, self.specs, projection)
    }

    /// The projection set by [`FeatureWindowExec::with_projection`].
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }

    fn build(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<String>,
        time: String,
        specs: Vec<WindowSpec>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        check_bounded(NAME, &input)?;
        let schema = input.schema();
        let FeaturePlan {
            side,
            layout,
            schema: out_schema,
        } = plan_features(NAME, &schema, &keys, &time, &specs)?;
        let width = out_schema.fields().len();
        let chosen: Vec<usize> = projection.clone().unwrap_or_else(|| (0..width).collect());
        if let Some(bad) = chosen.iter().find(|&&i| i >= width) {
            return plan_err!("{NAME}: projection index {bad} is out of range ({width} columns)");
        }
        let mut retained: Vec<usize> = Vec::new();
        let sources = chosen
            .iter()
            .map(|&i| {
                if i < side.visible {
                    retained.push(i);
                    Source::Input(retained.len() - 1)
                } else {
                    Source::Feature(i - side.visible)
                }
            })
            .collect();
        let out_schema = Arc::new(out_schema.project(&chosen)?);
        let partitioning = project_partitioning(
            &output_partitioning(input.output_partitioning(), side.visible),
            &chosen,
        );
        let cache = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&out_schema)),
            partitioning,
            EmissionType::Final,
            input.boundedness(),
        );
        let key_exprs = side.key_exprs(&schema);
        Ok(Self {
            input,
            keys,
            time,
            specs,
            projection,
            sources,
            retained,
            side,
            layout: Arc::new(layout),
            key_exprs,
            cache: Arc::new(cache),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
    pub fn time(&self) -> &str {
        &self.time
    }
    pub fn specs(&self) -> &[WindowSpec] {
        &self.specs
    }
}

impl DisplayAs for FeatureWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let specs: Vec<String> = self.specs.iter().map(|s| s.to_string()).collect();
        write!(
            f,
            "{NAME}: keys=[{}], time={}, features=[{}]",
            self.keys.join(", "),
            self.time,
            specs.join(", ")
        )
    }
}

impl ExecutionPlan for FeatureWindowExec {
    fn name(&self) -> &str {
        NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    #[allow(deprecated)]
    fn try_swapping_with_projection(
        &self,
        projection: &datafusion::physical_plan::projection::ProjectionExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        // A projection that only selects columns (keeping their names) is absorbed: the
        // columns it drops are then neither output nor buffered (a feature group queried for
        // some of its features keeps only those, as `with_projection` does).
        let schema = self.schema();
        let current: Vec<usize> = match &self.projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let mut chosen = Vec::with_capacity(projection.expr().len());
        for e in projection.expr() {
            let Some(c) = e.expr.downcast_ref::<Column>() else {
                return Ok(None);
            };
            if c.index() >= current.len() || e.alias != *schema.field(c.index()).name() {
                return Ok(None);
            }
            chosen.push(current[c.index()]);
        }
        Ok(Some(Arc::new(self.clone().with_projection(Some(chosen))?)))
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        self.input_distribution_requirements().into_per_child()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::new(vec![Distribution::KeyPartitioned(
            self.key_exprs.clone(),
        )])
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(self.key_exprs.iter(), f)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!(
                "{}: expected 1 child plan(s), got {}",
                NAME,
                children.len()
            );
        }
        Ok(Arc::new(Self::build(
            children.swap_remove(0),
            self.keys.clone(),
            self.time.clone(),
            self.specs.clone(),
            self.projection.clone(),
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
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let reservation =
            MemoryConsumer::new(format!("{NAME}[{partition}]")).register(context.memory_pool());
        let needed = (0..self.specs.len())
            .map(|i| {
                self.sources
                    .iter()
                    .any(|s| matches!(s, Source::Feature(f) if *f == i))
            })
            .collect();
        let job = Job {
            schema: self.schema(),
            needed,
            sources: self.sources.clone(),
            retained: self.retained.clone(),
            side: self.side.clone(),
            key_fields: self.side.key_fields(&self.input.schema()),
            layout: Arc::clone(&self.layout),
            batch_size: context.session_config().batch_size().max(1),
            metrics: BaselineMetrics::new(&self.metrics, partition),
            reservation,
        };
        let stream = futures::stream::once(job.ingest(input))
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

/// What the operator resolves from its input schema; the table function checks its
/// arguments with the same code.
pub(crate) struct FeaturePlan {
    pub side: Side,
    pub layout: Layout,
    pub schema: SchemaRef,
}

pub(crate) fn plan_features(
    what: &str,
    schema: &arrow_schema::Schema,
    keys: &[String],
    time: &str,
    specs: &[WindowSpec],
) -> Result<FeaturePlan> {
    let side = Side::resolve(what, schema, keys, time)?;
    let scale = TimeScale::of(&[side.time_kind]);
    let reserved: Vec<&str> = schema
        .fields()
        .iter()
        .take(side.visible)
        .map(|f| f.name().as_str())
        .collect();
    let layout = resolve(what, schema, specs, &scale, &reserved)?;
    let schema = extend_schema(schema, side.visible, layout.fields());
    Ok(FeaturePlan {
        side,
        layout,
        schema,
    })
}

/// Where an output column comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A kept input column (index into the kept columns).
    Input(usize),
    /// A feature (index into the specs).
    Feature(usize),
}

/// `partitioning` after keeping the columns `chosen`: hash expressions are renumbered, or the
/// partitioning is reduced to its count when a hashed column is dropped.
fn project_partitioning(partitioning: &Partitioning, chosen: &[usize]) -> Partitioning {
    if let Partitioning::Hash(exprs, n) = partitioning {
        let mapped: Option<Vec<Arc<dyn PhysicalExpr>>> = exprs
            .iter()
            .map(|e| {
                let c = e.downcast_ref::<Column>()?;
                let pos = chosen.iter().position(|&i| i == c.index())?;
                Some(Arc::new(Column::new(c.name(), pos)) as Arc<dyn PhysicalExpr>)
            })
            .collect();
        return match mapped {
            Some(m) => Partitioning::Hash(m, *n),
            None => Partitioning::UnknownPartitioning(*n),
        };
    }
    partitioning.clone()
}

struct Job {
    schema: SchemaRef,
    sources: Vec<Source>,
    /// Per spec: whether the output has it.
    needed: Vec<bool>,
    retained: Vec<usize>,
    side: Side,
    key_fields: Vec<arrow_schema::Field>,
    layout: Arc<Layout>,
    batch_size: usize,
    metrics: BaselineMetrics,
    reservation: MemoryReservation,
}

pub(crate) fn converters(layout: &Layout) -> Result<Vec<Option<Arc<RowConverter>>>> {
    layout
        .columns
        .iter()
        .map(|c| {
            (c.kind == super::spec::ValueKind::Rows)
                .then(|| row_converter(&c.data_type))
                .transpose()
        })
        .collect()
}

impl Job {
    /// Buffers the partition, then returns the emitter of its output.
    async fn ingest(self, mut input: SendableRecordBatchStream) -> Result<Emitter> {
        let converters = converters(&self.layout)?;
        let mut groups = KeyGroups::new(self.key_fields.clone())?;
        let mut table = EventTable::default();
        let mut originals: Vec<RecordBatch> = Vec::new();
        let mut gids = Vec::new();
        let mut groups_size = 0;
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let _timer = self.metrics.elapsed_compute().timer();
            let kept = batch.project(&self.retained)?;
            reserve(
                &self.reservation,
                kept.get_array_memory_size() + batch.num_rows() * 8,
                NAME,
                table.rows,
            )?;
            let keys: Vec<ArrayRef> = self
                .side
                .keys
                .iter()
                .map(|&i| Arc::clone(batch.column(i)))
                .collect();
            groups.intern(&keys, &mut gids)?;
            let ev = EventBatch::try_new(
                &batch,
                &self.layout,
                &converters,
                self.side.time,
                1,
                self.side.seq,
                std::mem::take(&mut gids),
            )?;
            let new_size = groups.size();
            reserve(
                &self.reservation,
                ev.extra_size() + new_size.saturating_sub(groups_size),
                NAME,
                table.rows,
            )?;
            groups_size = groups_size.max(new_size);
            table.push(ev);
            originals.push(kept);
        }
        let timer = self.metrics.elapsed_compute().clone();
        let _timer = timer.timer();
        let n_groups = groups.len();
        drop(groups);
        reserve(&self.reservation, table.rows * 8, NAME, table.rows)?;
        let order = table.group_order(n_groups);
        let scratch = self.reservation.new_empty();
        let kinds = self.layout.columns.iter().map(|c| c.kind);
        let out = new_outputs(&self.layout, &converters)?;
        Ok(Emitter {
            ev: GroupEvents::new(kinds),
            sweep: Sweep::new(&self.layout),
            refs: Vec::new(),
            keyed: Vec::new(),
            next_group: 0,
            pos: 0,
            orphan: 0,
            take: Vec::new(),
            out,
            converters,
            table,
            originals,
            order,
            scratch,
            job: self,
            failed: false,
        })
    }
}

pub(crate) fn new_outputs(
    layout: &Layout,
    converters: &[Option<Arc<RowConverter>>],
) -> Result<Vec<OutputColumn>> {
    layout
        .specs
        .iter()
        .map(|s| {
            let col = s.column.map(|c| &layout.columns[c]);
            let kind = output_kind(s.agg, col.map(|c| c.kind), col.map(|c| &c.data_type));
            OutputColumn::new(
                kind,
                s.column.and_then(|c| converters[c].as_ref()),
                col.map(|c| &c.data_type),
            )
        })
        .collect()
}

/// Produces the output of one partition, `batch_size` rows at a time.
struct Emitter {
    job: Job,
    table: EventTable,
    originals: Vec<RecordBatch>,
    order: GroupOrder,
    converters: Vec<Option<Arc<RowConverter>>>,
    ev: GroupEvents,
    sweep: Sweep,
    refs: Vec<u64>,
    keyed: Vec<(i64, u64, u64)>,
    /// The next entity to load; `pos` is the next event of the loaded one.
    next_group: usize,
    pos: usize,
    orphan: usize,
    take: Vec<(usize, usize)>,
    out: Vec<OutputColumn>,
    scratch: MemoryReservation,
    failed: bool,
}

impl Emitter {
    fn step(&mut self) -> Result<Option<RecordBatch>> {
        let size = self.job.batch_size;
        loop {
            if self.take.len() >= size {
                return self.flush().map(Some);
            }
            let room = size - self.take.len();
            if self.pos < self.ev.len() {
                // The next tie group: every event at this time is in the window.
                let t = self.ev.times[self.pos];
                let mut end = self.pos;
                while end < self.ev.len() && self.ev.times[end] == t {
                    end += 1;
                }
                let end = end.min(self.pos + room);
                self.sweep.advance_to(t, &self.ev);
                let k = end - self.pos;
                for (i, out) in self.out.iter_mut().enumerate() {
                    if self.job.needed[i] {
                        self.sweep.read(i, &self.ev, out, k)?;
                    }
                }
                self.take
                    .extend(self.refs[self.pos..end].iter().map(|&x| unpack(x)));
                self.pos = end;
                continue;
            }
            if self.next_group < self.order.groups() {
                let rows = self.order.group(self.next_group);
                self.next_group += 1;
                self.table
                    .gather(rows, &mut self.ev, &mut self.refs, &mut self.keyed);
                self.sweep.reset();
                self.pos = 0;
                let held = self.ev.size() + self.refs.capacity() * 8 + self.keyed.capacity() * 24;
                self.scratch.try_resize(held + self.sweep.size())?;
                continue;
            }
            if self.orphan < self.order.orphans.len() {
                let k = room.min(self.order.orphans.len() - self.orphan);
                for out in &mut self.out {
                    out.push_null(k);
                }
                let rows = &self.order.orphans[self.orphan..self.orphan + k];
                self.take.extend(rows.iter().map(|&x| unpack(x)));
                self.orphan += k;
                continue;
            }
            if self.take.is_empty() {
                return Ok(None);
            }
            return self.flush().map(Some);
        }
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        let fresh = new_outputs(&self.job.layout, &self.converters)?;
        let mut features: Vec<Option<ArrayRef>> = vec![None; self.out.len()];
        for (i, out) in std::mem::replace(&mut self.out, fresh)
            .into_iter()
            .enumerate()
        {
            if self
                .job
                .sources
                .iter()
                .any(|s| matches!(s, Source::Feature(f) if *f == i))
            {
                features[i] = Some(out.finish(self.job.layout.specs[i].field.data_type())?);
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.job.sources.len());
        let mut arrays: Vec<&dyn Array> = Vec::with_capacity(self.originals.len());
        for source in &self.job.sources {
            match *source {
                Source::Input(c) => {
                    arrays.clear();
                    arrays.extend(self.originals.iter().map(|b| b.column(c).as_ref()));
                    columns.push(interleave(&arrays, &self.take)?);
                }
                Source::Feature(i) => match &features[i] {
                    Some(a) => columns.push(Arc::clone(a)),
                    None => {
                        return datafusion::common::internal_err!("{NAME}: feature {i} missing");
                    }
                },
            }
        }
        // Row count given explicitly: a projection may keep no column at all (count(*)).
        let options = RecordBatchOptions::new().with_row_count(Some(self.take.len()));
        self.take.clear();
        let batch =
            RecordBatch::try_new_with_options(Arc::clone(&self.job.schema), columns, &options)?;
        self.job.metrics.record_output(batch.num_rows());
        Ok(batch)
    }
}

impl Iterator for Emitter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let timer = self.job.metrics.elapsed_compute().clone();
        let _t = timer.timer();
        match self.step() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.job.metrics.done();
                None
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
