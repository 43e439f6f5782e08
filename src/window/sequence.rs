//! `RowSequenceExec`: numbers rows in input order, so that `last` breaks ties on time the
//! same way on every run.
//!
//! "The last event in input order" survives neither a hash repartition (which interleaves
//! the input partitions in arrival order) nor a sort (DataFusion's sorts are not stable).
//! This node, placed directly on the window operator's input (below any repartition), adds
//! `__fstore_seq` = (input partition << 40) | (row number within the partition): input order
//! is partition-major, which for file scans is file order. The window operators sort ties by
//! it and never output it. It is added only when a `last` feature exists.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, SortOptions};
use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::equivalence::ProjectionMapping;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    LexOrdering, OrderingRequirements, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    ExecutionPlanProperties, PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::StreamExt;

/// `context` for the input of the numbering: file scans below it read exactly their own file
/// groups. (DataFusion lets an idle partition's scan take files from a sibling's group at run
/// time, "work stealing"; which partition reads which rows would then depend on timing, and
/// so would every tie `last` breaks.)
fn without_work_stealing(context: &Arc<TaskContext>) -> Arc<TaskContext> {
    if !context
        .session_config()
        .options()
        .execution
        .enable_file_stream_work_stealing
    {
        return Arc::clone(context);
    }
    let mut config = context.session_config().clone();
    config
        .options_mut()
        .execution
        .enable_file_stream_work_stealing = false;
    Arc::new(TaskContext::new(
        context.task_id(),
        context.session_id(),
        config,
        context.scalar_functions().clone(),
        context.higher_order_functions().clone(),
        context.aggregate_functions().clone(),
        context.window_functions().clone(),
        context.runtime_env(),
    ))
}

/// The name of the tie-break column.
pub const SEQ_COLUMN: &str = "__fstore_seq";

/// Adds [`SEQ_COLUMN`] to its input. See the module documentation.
#[derive(Debug)]
pub struct RowSequenceExec {
    input: Arc<dyn ExecutionPlan>,
    /// When set, rows are numbered in this order: the input is required to be one partition
    /// sorted by it (the optimizer adds the sort), e.g. a feature group's CREATED column.
    order: Option<LexOrdering>,
    cache: Arc<PlanProperties>,
}

impl RowSequenceExec {
    pub fn try_new(input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        Self::try_new_ordered(input, None)
    }

    /// Numbers rows in `order` (see the field's documentation).
    pub fn try_new_ordered(
        input: Arc<dyn ExecutionPlan>,
        order: Option<LexOrdering>,
    ) -> Result<Self> {
        let in_schema = input.schema();
        let mut fields: Vec<_> = in_schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(SEQ_COLUMN, DataType::UInt64, false)));
        let schema: SchemaRef = Arc::new(Schema::new_with_metadata(
            fields,
            in_schema.metadata().clone(),
        ));
        let indices: Vec<usize> = (0..in_schema.fields().len()).collect();
        let mapping = ProjectionMapping::from_indices(&indices, &in_schema)?;
        let in_eq = input.equivalence_properties();
        let mut eq = in_eq.project(&mapping, Arc::clone(&schema));
        // Rows are numbered in the order they come, so every input ordering extended by the
        // number still holds, and the number alone orders each partition.
        let seq: Arc<dyn PhysicalExpr> = Arc::new(Column::new(SEQ_COLUMN, indices.len()));
        let seq_asc = PhysicalSortExpr::new(seq, SortOptions::default());
        let mut orderings: Vec<Vec<PhysicalSortExpr>> = in_eq
            .oeq_class()
            .iter()
            .map(|o| {
                let mut v: Vec<PhysicalSortExpr> = o.iter().cloned().collect();
                v.push(seq_asc.clone());
                v
            })
            .collect();
        orderings.push(vec![seq_asc]);
        eq.add_orderings(orderings);
        let cache = PlanProperties::new(
            eq,
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Ok(Self {
            input,
            order,
            cache: Arc::new(cache),
        })
    }

    /// The order rows are numbered in, when not input order.
    pub fn order(&self) -> Option<&LexOrdering> {
        self.order.as_ref()
    }
}

impl DisplayAs for RowSequenceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RowSequenceExec: {SEQ_COLUMN}")?;
        if let Some(order) = &self.order {
            write!(f, " in order {order}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for RowSequenceExec {
    fn name(&self) -> &str {
        "RowSequenceExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        match &self.order {
            Some(_) => vec![Distribution::SinglePartition],
            None => vec![Distribution::UnspecifiedDistribution],
        }
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![self.order.clone().map(OrderingRequirements::from)]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // A round-robin repartition below this node would make the numbering arbitrary.
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!(
                "{}: expected 1 child plan(s), got {}",
                "RowSequenceExec",
                children.len()
            );
        }
        Ok(Arc::new(Self::try_new_ordered(
            children.swap_remove(0),
            self.order.clone(),
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
        let schema = self.schema();
        let out_schema = Arc::clone(&schema);
        let base = (partition as u64) << 40;
        let mut next = 0u64;
        let stream = self
            .input
            .execute(partition, without_work_stealing(&context))?
            .map(move |batch| {
                let batch = batch?;
                let n = batch.num_rows() as u64;
                let seq = UInt64Array::from_iter_values((next..next + n).map(|i| base | i));
                next += n;
                let mut columns = batch.columns().to_vec();
                columns.push(Arc::new(seq));
                Ok(RecordBatch::try_new(Arc::clone(&out_schema), columns)?)
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
