//! Feature selection (docs/sql-reference.md) as table functions:
//!
//! - `feature_correlation(source [, method])` → `feature_a, feature_b, correlation`: Pearson
//!   (default) or Spearman correlation of every pair of numeric features (see `correlation`).
//! - `select_features(source, target, method [, k])` → `feature, score, rank`: the k best
//!   features by `mutual_info`, `correlation`, `chi2` or `variance` (see `select`).
//!
//! `source` is a table, a view, a feature group — whose features come from the registry, so
//! entity keys, timestamp and CREATED are never scored — or a query text (any argument with
//! whitespace), see `source`.
//!
//! How a call runs: the table function checks its constant arguments and returns a
//! [`SelectionTable`]; planning its scan resolves the source through the session and checks
//! the columns (unknown table, unknown target, no usable features fail here, before anything
//! is read); executing it streams the source once through a [`SelectionExec`], which keeps
//! per-method state (sums for Pearson, variance and chi2; the values for Spearman and for
//! k-NN mutual information) and emits the result.
//!
//! These functions only read: they never write the registry or any table.

pub(crate) mod codec;
mod correlation;
pub(crate) mod exec;
mod knn;
mod moments;
mod mutual_info;
mod rank;
mod select;
pub(crate) mod source;

use std::sync::Arc;

use arrow_schema::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Float64Type;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;

use crate::engine::codec::{CallCodec, CodecSession};
use crate::engine::{EngineExtension, Setup};
use crate::error::{ErrorKind, fail};
use crate::registry::Registry;
use exec::{Analysis, SelectionExec};
use source::{Source, SourceArg};

/// Registers `feature_correlation` and `select_features`.
pub struct SelectionExtension;

#[async_trait::async_trait]
impl EngineExtension for SelectionExtension {
    fn name(&self) -> &'static str {
        "feature-selection"
    }
    fn logical_codec(&self, session: &CodecSession) -> Option<Arc<dyn LogicalExtensionCodec>> {
        Some(Arc::new(CallCodec::new(
            session,
            "selection",
            codec::call_of,
        )))
    }
    fn physical_codec(&self, _: &CodecSession) -> Option<Arc<dyn PhysicalExtensionCodec>> {
        Some(Arc::new(codec::SelectionPhysicalCodec))
    }
    async fn register(&self, setup: &mut Setup<'_>) -> Result<()> {
        let (ctx, registry) = (setup.ctx, setup.registry);
        ctx.register_udtf(
            correlation::FUNCTION,
            Arc::new(correlation::FeatureCorrelation::new(Arc::clone(registry))),
        );
        ctx.register_udtf(
            select::FUNCTION,
            Arc::new(select::SelectFeatures::new(Arc::clone(registry))),
        );
        Ok(())
    }
}

/// One call of a selection function, with its arguments checked.
pub(crate) trait Selection: std::fmt::Debug + Send + Sync {
    fn function(&self) -> &'static str;
    fn source(&self) -> &SourceArg;
    /// A column the analysis needs that a feature group's source may hold though the group
    /// does not (`select_features`' target: a label of the group's events).
    fn label(&self) -> Option<&str> {
        None
    }
    /// From the resolved source: the columns to read (indexes in the source's schema, in the
    /// order the analysis expects them) and the analysis over them.
    fn prepare(&self, source: &Source) -> Result<(Vec<usize>, Arc<dyn Analysis>)>;
}

/// What a selection function returns: a table whose scan plans the source and whose rows are
/// the analysis' result.
#[derive(Debug)]
pub(crate) struct SelectionTable {
    schema: SchemaRef,
    registry: Arc<Registry>,
    selection: Arc<dyn Selection>,
    /// The call's arguments (what the codec carries).
    args: Vec<Expr>,
}

impl SelectionTable {
    pub fn new(
        schema: SchemaRef,
        registry: Arc<Registry>,
        selection: Arc<dyn Selection>,
        args: &[Expr],
    ) -> Self {
        Self {
            schema,
            registry,
            selection,
            args: args.to_vec(),
        }
    }

    /// The function called and its arguments.
    pub fn call(&self) -> (&'static str, &[Expr]) {
        (self.selection.function(), &self.args)
    }
}

#[async_trait]
impl TableProvider for SelectionTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let function = self.selection.function();
        let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
            return fail(
                ErrorKind::Internal,
                format!("{function}: planned outside a SessionState"),
            );
        };
        let source = source::resolve_with_label(
            self.selection.source(),
            state,
            &self.registry,
            function,
            self.selection.label(),
        )
        .await?;
        let (columns, analysis) = self.selection.prepare(&source)?;
        let input = state
            .create_physical_plan(&source.project(&columns)?)
            .await?;
        Ok(Arc::new(SelectionExec::try_new(
            input,
            analysis,
            Arc::clone(&self.schema),
            projection.cloned(),
        )?))
    }
}

/// Whether a column takes part in numeric statistics: integers, floats, decimals, and
/// booleans (as 0 and 1).
pub(crate) fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Boolean
}

/// A numeric column as Float64 (booleans as 0/1; NULLs stay NULL).
pub(crate) fn as_f64(array: &ArrayRef) -> Result<Float64Array> {
    let cast = if *array.data_type() == DataType::Float64 {
        Arc::clone(array)
    } else {
        cast(array, &DataType::Float64)?
    };
    Ok(cast.as_primitive::<Float64Type>().clone())
}
