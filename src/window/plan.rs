//! Planning-time pieces both operators share: resolving key and time columns, the
//! distribution they require, and the properties of what they output.

use std::sync::Arc;

use arrow_schema::{Field, Schema};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::Boundedness;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use super::sequence::{RowSequenceExec, SEQ_COLUMN};
use super::spec::{TimeKind, find_column, time_kind};

/// The key and time columns of one input, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Side {
    pub keys: Vec<usize>,
    pub time: usize,
    pub time_kind: TimeKind,
    /// Columns visible to users (the tie-break column, when present, comes after them).
    pub visible: usize,
    pub seq: Option<usize>,
}

impl Side {
    pub fn resolve(what: &str, schema: &Schema, keys: &[String], time: &str) -> Result<Self> {
        if keys.is_empty() {
            return plan_err!("{what}: at least one key column is required");
        }
        let (visible, seq) = match schema.fields().last() {
            Some(f) if f.name() == SEQ_COLUMN => {
                (schema.fields().len() - 1, Some(schema.fields().len() - 1))
            }
            _ => (schema.fields().len(), None),
        };
        let mut key_idx = Vec::with_capacity(keys.len());
        for k in keys {
            let i = find_column(what, schema, k)?;
            if key_idx.contains(&i) {
                return plan_err!("{what}: key column '{k}' is listed twice");
            }
            key_idx.push(i);
        }
        let t = find_column(what, schema, time)?;
        if key_idx.contains(&t) {
            return plan_err!("{what}: '{time}' cannot be both a key and the time column");
        }
        let time_kind = time_kind(what, schema.field(t).name(), schema.field(t).data_type())?;
        Ok(Self {
            keys: key_idx,
            time: t,
            time_kind,
            visible,
            seq,
        })
    }

    pub fn key_exprs(&self, schema: &Schema) -> Vec<Arc<dyn PhysicalExpr>> {
        self.keys
            .iter()
            .map(|&i| Arc::new(Column::new(schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
            .collect()
    }

    pub fn key_fields(&self, schema: &Schema) -> Vec<Field> {
        self.keys
            .iter()
            .map(|&i| schema.field(i).as_ref().clone().with_nullable(true))
            .collect()
    }
}

/// Wraps `input` in a [`RowSequenceExec`] when `last` needs a stable tie-break and it is not
/// there yet.
pub(crate) fn with_sequence(
    input: Arc<dyn ExecutionPlan>,
    needed: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    let has = input
        .schema()
        .fields()
        .last()
        .is_some_and(|f| f.name() == SEQ_COLUMN);
    if needed && !has {
        Ok(Arc::new(RowSequenceExec::try_new(input)?))
    } else {
        Ok(input)
    }
}

/// The output partitioning: the child's, when it only refers to columns the output keeps at
/// the same positions (the first `visible`); otherwise just the partition count.
pub(crate) fn output_partitioning(child: &Partitioning, visible: usize) -> Partitioning {
    match child {
        Partitioning::Hash(exprs, n) => {
            let kept = exprs.iter().all(|e| {
                e.downcast_ref::<Column>()
                    .is_some_and(|c| c.index() < visible)
            });
            if kept {
                child.clone()
            } else {
                Partitioning::UnknownPartitioning(*n)
            }
        }
        other => Partitioning::UnknownPartitioning(other.partition_count()),
    }
}

/// Window operators need all of an entity's events before they can answer: unbounded
/// inputs are refused at planning time.
pub(crate) fn check_bounded(what: &str, input: &Arc<dyn ExecutionPlan>) -> Result<()> {
    if !matches!(input.boundedness(), Boundedness::Bounded) {
        return plan_err!("{what}: unbounded (streaming) inputs are not supported");
    }
    Ok(())
}
