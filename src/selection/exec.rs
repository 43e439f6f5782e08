//! `SelectionExec`: the operator that reads its input to the end, computes a statistic over
//! every row (an [`Analysis`]) and emits the result as one batch.
//!
//! The input is the source's plan, reduced to the columns the analysis needs, so EXPLAIN shows
//! what is read and DataFusion optimises the read (projection into Parquet, partitioned scans
//! merged in parallel). What an analysis keeps between batches is charged to the memory pool,
//! so a selection over too much data fails with "resources exhausted" instead of exhausting
//! the machine.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    InputDistributionRequirements, Partitioning, PhysicalExpr, PlanProperties,
    ReplaceChildrenOptions, SendableRecordBatchStream, execute_stream,
};
use futures::StreamExt;

use crate::error::{ErrorKind, fail};

/// A statistic over all rows of an input (`Any`, so that codecs can find their analyses).
pub trait Analysis: Any + fmt::Debug + Send + Sync {
    /// One line for EXPLAIN.
    fn describe(&self) -> String;
    /// A fresh accumulator for one execution.
    fn start(&self) -> Result<Box<dyn Accumulate>>;
}

/// The running state of an [`Analysis`].
pub trait Accumulate: Send {
    /// Adds a batch of the input. Returns how many bytes it now keeps beyond what it kept
    /// before (charged to the memory pool).
    fn update(&mut self, batch: &RecordBatch) -> Result<usize>;
    /// The result, in `schema`.
    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch>;
}

/// Runs an [`Analysis`] over its input; one output partition, one batch.
#[derive(Debug)]
pub struct SelectionExec {
    input: Arc<dyn ExecutionPlan>,
    analysis: Arc<dyn Analysis>,
    /// The analysis' result schema, before `projection`.
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl SelectionExec {
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        analysis: Arc<dyn Analysis>,
        schema: SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let output = match &projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => Arc::clone(&schema),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Self {
            input,
            analysis,
            schema,
            projection,
            properties,
        })
    }

    pub fn analysis(&self) -> &Arc<dyn Analysis> {
        &self.analysis
    }

    /// The analysis' result schema, before the projection.
    pub fn result_schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }
}

impl DisplayAs for SelectionExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SelectionExec: {}", self.analysis.describe())
    }
}

impl ExecutionPlan for SelectionExec {
    fn name(&self) -> &str {
        "SelectionExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::new(vec![Distribution::SinglePartition])
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
            return fail(
                ErrorKind::Internal,
                format!("SelectionExec has one input, got {}", children.len()),
            );
        }
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            analysis: Arc::clone(&self.analysis),
            schema: Arc::clone(&self.schema),
            projection: self.projection.clone(),
            properties: Arc::clone(&self.properties),
        }))
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
        if partition != 0 {
            return fail(
                ErrorKind::Internal,
                format!("SelectionExec has one partition, asked for {partition}"),
            );
        }
        // Merges the input's partitions when the optimizer did not (it normally has).
        let mut input = execute_stream(Arc::clone(&self.input), Arc::clone(&context))?;
        let mut accumulate = self.analysis.start()?;
        let reservation =
            MemoryConsumer::new(format!("SelectionExec[{}]", self.analysis.describe()))
                .register(context.memory_pool());
        let schema = Arc::clone(&self.schema);
        let projection = self.projection.clone();
        let result = async move {
            while let Some(batch) = input.next().await {
                let kept = accumulate.update(&batch?)?;
                reservation.try_grow(kept)?;
            }
            let batch = accumulate.finish(schema)?;
            drop(reservation);
            Ok(match projection {
                Some(p) => batch.project(&p)?,
                None => batch,
            })
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::once(result),
        )))
    }
}
