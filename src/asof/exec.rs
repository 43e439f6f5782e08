//! `AsOfJoinExec`: the AS-OF join operator.
//!
//! Distribution: both inputs are hash-partitioned on the keys (declared as a co-partitioned
//! requirement, so DataFusion inserts the repartitions and every partition holds whole keys);
//! without keys both inputs are one partition. Each partition runs on its own task, so a
//! query uses every core.
//!
//! Per partition: the right side is read to the end and indexed ([`super::index`]): grouped by
//! key, sorted by time, ties resolved. Its batches stay as they arrived and are accounted to
//! DataFusion's memory pool; when a partition's right side does not fit, the query fails with
//! "resources exhausted" (the operator does not spill: the right side of a feature join is the
//! feature table, and more partitions or more memory are the remedy). The left side then
//! streams through, batch by batch, in its own order — no sort and no buffering, whatever its
//! order: each left row finds its match with a binary search in its key's times. Output
//! columns are the left batch's own columns plus the right columns gathered with `interleave`;
//! output batches are at most `batch_size` rows.
//!
//! Why no required input ordering: the index needs the right side grouped by key, which a
//! counting sort does in linear time, and per-key sorts that are linear on sorted input; a
//! declared (key, time) ordering would make DataFusion add a full sort of the right side, and
//! of the left side, which the binary search does not need.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    ExecutionPlanProperties, InputDistributionRequirements, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream, apply_expression_roots,
};
use futures::{StreamExt, TryStreamExt};

use super::index::{IndexBuilder, RightIndex};
use super::keys::KeyGroups;
use super::time::{TimePlan, created_values};
use super::{AsOfKind, AsOfOp, LookBack};

pub type PhysicalExprRef = Arc<dyn PhysicalExpr>;

/// The AS-OF join operator (see the module documentation).
#[derive(Debug, Clone)]
pub struct AsOfJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    left_time: PhysicalExprRef,
    right_time: PhysicalExprRef,
    op: AsOfOp,
    created: Option<PhysicalExprRef>,
    lookback: Option<LookBack>,
    kind: AsOfKind,
    time: TimePlan,
    max_difference: Option<i64>,
    schema: SchemaRef,
    cache: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl AsOfJoinExec {
    /// A join of `left` and `right`; expressions are bound to their input's schema.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
        left_time: PhysicalExprRef,
        right_time: PhysicalExprRef,
        op: AsOfOp,
        created: Option<PhysicalExprRef>,
        lookback: Option<LookBack>,
        kind: AsOfKind,
    ) -> Result<Self> {
        let (ls, rs) = (left.schema(), right.schema());
        for (l, r) in &on {
            let (lt, rt) = (l.data_type(&ls)?, r.data_type(&rs)?);
            if lt != rt {
                return Err(DataFusionError::Internal(format!(
                    "AsOfJoinExec keys must have equal types, got {lt} and {rt}"
                )));
            }
        }
        let time = TimePlan::new(&left_time.data_type(&ls)?, &right_time.data_type(&rs)?)?;
        let max_difference = lookback
            .as_ref()
            .map(|lb| time.max_difference(lb))
            .transpose()?;
        let mut fields: Vec<Field> = ls.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(rs.fields().iter().map(|f| {
            let f = f.as_ref().clone();
            if kind == AsOfKind::Left {
                f.with_nullable(true)
            } else {
                f
            }
        }));
        let schema = Arc::new(Schema::new_with_metadata(fields, ls.metadata().clone()));
        let cache = Arc::new(Self::properties_for(&left, &right, &schema));
        Ok(Self {
            left,
            right,
            on,
            left_time,
            right_time,
            op,
            created,
            lookback,
            kind,
            time,
            max_difference,
            schema,
            cache,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn properties_for(
        left: &Arc<dyn ExecutionPlan>,
        right: &Arc<dyn ExecutionPlan>,
        schema: &SchemaRef,
    ) -> PlanProperties {
        // Output partition i is left partition i (left columns keep their positions, so the
        // left side's partitioning describes the output too).
        let boundedness = if left.boundedness().is_unbounded() || right.boundedness().is_unbounded()
        {
            Boundedness::Unbounded {
                requires_infinite_memory: right.boundedness().is_unbounded(),
            }
        } else {
            Boundedness::Bounded
        };
        PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(schema)),
            left.output_partitioning().clone(),
            EmissionType::Incremental,
            boundedness,
        )
    }

    pub fn left(&self) -> &Arc<dyn ExecutionPlan> {
        &self.left
    }
    pub fn right(&self) -> &Arc<dyn ExecutionPlan> {
        &self.right
    }
    pub fn on(&self) -> &[(PhysicalExprRef, PhysicalExprRef)] {
        &self.on
    }
    pub fn left_time(&self) -> &PhysicalExprRef {
        &self.left_time
    }
    pub fn right_time(&self) -> &PhysicalExprRef {
        &self.right_time
    }
    pub fn op(&self) -> AsOfOp {
        self.op
    }
    pub fn created(&self) -> Option<&PhysicalExprRef> {
        self.created.as_ref()
    }
    pub fn lookback(&self) -> Option<&LookBack> {
        self.lookback.as_ref()
    }
    pub fn kind(&self) -> AsOfKind {
        self.kind
    }
}

impl DisplayAs for AsOfJoinExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let on: Vec<String> = self.on.iter().map(|(l, r)| format!("({l}, {r})")).collect();
        match t {
            DisplayFormatType::TreeRender => {
                writeln!(f, "type={}", self.kind.as_str())?;
                writeln!(f, "on=[{}]", on.join(", "))?;
                write!(
                    f,
                    "match={} {} {}",
                    self.left_time, self.op, self.right_time
                )
            }
            _ => {
                write!(
                    f,
                    "AsOfJoinExec: type={}, on=[{}], match={} {} {}",
                    self.kind.as_str(),
                    on.join(", "),
                    self.left_time,
                    self.op,
                    self.right_time
                )?;
                if let Some(c) = &self.created {
                    write!(f, ", created={c}")?;
                }
                if let Some(lb) = &self.lookback {
                    write!(f, ", lookback={lb}")?;
                }
                Ok(())
            }
        }
    }
}

impl ExecutionPlan for AsOfJoinExec {
    fn name(&self) -> &str {
        "AsOfJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        self.input_distribution_requirements().into_per_child()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        if self.on.is_empty() {
            return InputDistributionRequirements::new(vec![
                Distribution::SinglePartition,
                Distribution::SinglePartition,
            ]);
        }
        let (l, r): (Vec<PhysicalExprRef>, Vec<PhysicalExprRef>) = self
            .on
            .iter()
            .map(|(l, r)| (Arc::clone(l), Arc::clone(r)))
            .unzip();
        InputDistributionRequirements::co_partitioned(vec![
            Distribution::KeyPartitioned(l),
            Distribution::KeyPartitioned(r),
        ])
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let keys = self.on.iter().flat_map(|(l, r)| [l, r]);
        let times = [&self.left_time, &self.right_time];
        apply_expression_roots(keys.chain(times).chain(self.created.iter()), f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [left, right]: [Arc<dyn ExecutionPlan>; 2] = children.try_into().map_err(|_| {
            DataFusionError::Internal("AsOfJoinExec takes two children".to_string())
        })?;
        let mut new = AsOfJoinExec {
            left,
            right,
            metrics: ExecutionPlanMetricsSet::new(),
            ..(*self).clone()
        };
        if options.children_properties == ChildrenPropertiesMode::Recompute {
            new.cache = Arc::new(Self::properties_for(&new.left, &new.right, &new.schema));
        }
        Ok(Arc::new(new))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        self.replace_children(children, options)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (lp, rp) = (
            self.left.output_partitioning().partition_count(),
            self.right.output_partitioning().partition_count(),
        );
        if lp != rp {
            return Err(DataFusionError::Internal(format!(
                "AsOfJoinExec needs co-partitioned inputs, got {lp} and {rp} partitions"
            )));
        }
        let reservation = MemoryConsumer::new(format!("AsOfJoinExec[{partition}]"))
            .register(context.memory_pool());
        let build = Build {
            right: self.right.execute(partition, Arc::clone(&context))?,
            keys: self.on.iter().map(|(_, r)| Arc::clone(r)).collect(),
            time: Arc::clone(&self.right_time),
            plan: self.time.clone(),
            created: self.created.clone(),
            schema: self.right.schema(),
            partition,
        };
        let output_metrics = BaselineMetrics::new(&self.metrics, partition);
        let probe = Arc::new(Probe {
            keys: self.on.iter().map(|(l, _)| Arc::clone(l)).collect(),
            time: Arc::clone(&self.left_time),
            plan: self.time.clone(),
            op: self.op,
            max_difference: self.max_difference,
            kind: self.kind,
            schema: Arc::clone(&self.schema),
            batch_size: context.session_config().batch_size(),
            metrics: output_metrics.clone(),
        });
        let left = self.left.execute(partition, context)?;
        let stream = futures::stream::once(async move {
            let (index, reservation) = build.run(reservation).await?;
            let index = Arc::new(index);
            let joined = left
                .map(move |batch| {
                    // The reservation lives as long as the index it accounts for.
                    let _held = &reservation;
                    let batch = batch?;
                    let timer = probe.metrics.elapsed_compute().timer();
                    let out = probe.join(&batch, &index);
                    timer.done();
                    out
                })
                .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
                .try_flatten();
            Ok::<_, DataFusionError>(joined)
        })
        .try_flatten();
        let stream = stream.inspect_ok(move |b| output_metrics.record_output(b.num_rows()));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// Reads and indexes one partition's right side.
struct Build {
    right: SendableRecordBatchStream,
    keys: Vec<PhysicalExprRef>,
    time: PhysicalExprRef,
    plan: TimePlan,
    created: Option<PhysicalExprRef>,
    schema: SchemaRef,
    partition: usize,
}

fn evaluate(expr: &PhysicalExprRef, batch: &RecordBatch) -> Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

impl Build {
    async fn run(
        mut self,
        mut reservation: MemoryReservation,
    ) -> Result<(RightIndex, MemoryReservation)> {
        let key_types = self
            .keys
            .iter()
            .map(|k| k.data_type(&self.schema))
            .collect::<Result<Vec<_>>>()?;
        let mut builder = IndexBuilder::new(KeyGroups::new(&key_types)?, self.created.is_some());
        let mut held = 0usize;
        while let Some(batch) = self.right.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch_bytes = batch.get_array_memory_size();
            let keys = self
                .keys
                .iter()
                .map(|k| evaluate(k, &batch))
                .collect::<Result<Vec<_>>>()?;
            let time = self.plan.right.normalize(&evaluate(&self.time, &batch)?)?;
            let created = match &self.created {
                Some(c) => Some(created_values(&evaluate(c, &batch)?)?),
                None => None,
            };
            builder.push(batch, &keys, &time, created.as_ref())?;
            held += batch_bytes;
            self.grow(&mut reservation, held + builder.overhead_bytes())?;
        }
        let index = builder.finish(&self.schema)?;
        self.grow(&mut reservation, held + index.overhead_bytes())?;
        Ok((index, reservation))
    }

    fn grow(&self, reservation: &mut MemoryReservation, total: usize) -> Result<()> {
        let current = reservation.size();
        if total <= current {
            reservation.shrink(current - total);
            return Ok(());
        }
        reservation.try_grow(total - current).map_err(|e| {
            let detail = crate::error::user_message(&e);
            let detail = detail
                .strip_prefix("resources exhausted: ")
                .unwrap_or(&detail);
            DataFusionError::ResourcesExhausted(format!(
                "ASOF JOIN: the right side of partition {} does not fit in the memory limit ({} MiB held; the AS-OF join does not spill: raise the memory limit or target_partitions, or filter the right side): {detail}",
                self.partition,
                current >> 20
            ))
        })
    }
}

/// Joins left batches against a partition's index.
struct Probe {
    keys: Vec<PhysicalExprRef>,
    time: PhysicalExprRef,
    plan: TimePlan,
    op: AsOfOp,
    max_difference: Option<i64>,
    kind: AsOfKind,
    schema: SchemaRef,
    batch_size: usize,
    metrics: BaselineMetrics,
}

impl Probe {
    fn join(&self, batch: &RecordBatch, index: &RightIndex) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        let n = batch.num_rows();
        let step = self.batch_size.max(1);
        let mut offset = 0;
        while offset < n {
            let len = step.min(n - offset);
            let part = batch.slice(offset, len);
            if let Some(b) = self.join_slice(&part, index)? {
                out.push(b);
            }
            offset += len;
        }
        Ok(out)
    }

    fn join_slice(&self, batch: &RecordBatch, index: &RightIndex) -> Result<Option<RecordBatch>> {
        let keys = self
            .keys
            .iter()
            .map(|k| evaluate(k, batch))
            .collect::<Result<Vec<_>>>()?;
        let time = self.plan.left.normalize(&evaluate(&self.time, batch)?)?;
        let matches = index.probe(&keys, &time, self.op, self.max_difference)?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        match self.kind {
            AsOfKind::Left => {
                columns.extend(batch.columns().iter().cloned());
                columns.extend(index.take(&matches)?);
            }
            AsOfKind::Inner => {
                let rows: UInt32Array = matches
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| m.map(|_| i as u32))
                    .collect();
                if rows.is_empty() {
                    return Ok(None);
                }
                let found: Vec<Option<u32>> = matches.into_iter().filter(|m| m.is_some()).collect();
                for c in batch.columns() {
                    columns.push(take(c.as_ref(), &rows, None)?);
                }
                columns.extend(index.take(&found)?);
            }
        }
        Ok(Some(RecordBatch::try_new(
            Arc::clone(&self.schema),
            columns,
        )?))
    }
}
