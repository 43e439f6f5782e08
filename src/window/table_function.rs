//! SQL access to the evaluator for tests and benchmarks (the feature-group statements call
//! the operators directly):
//!
//! ```sql
//! SELECT * FROM window_features('tx', 'customer_id', 'transaction_date',
//!     'mean(amount) 30 days AS m30', 'count(*) 30 days AS c30', 'count(amount) 7d AS c7');
//! SELECT * FROM window_features_at('tx', 'customer_id', 'transaction_date',
//!     'spine', 'customer_id', 'ts', 'sum(amount) 30d AS s30');
//! ```
//!
//! Tables are named (a table or view of the session); composite keys are comma-separated
//! (`'a, b'`). Only the columns the query needs are read from the source. Spine keys whose
//! type differs from the events' key type are cast to it.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, TableReference, plan_err};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use futures::FutureExt;

use super::at_exec::{WindowAtExec, plan_at};
use super::feature_exec::{FeatureWindowExec, plan_features};
use super::spec::{WindowSpec, find_column};
use crate::args::{identify_call, literal};
use crate::engine::codec::{CallCodec, CodecSession};
use crate::engine::{EngineExtension, Setup};

/// Registers `window_features` and `window_features_at`.
pub struct WindowExtension;

#[async_trait::async_trait]
impl EngineExtension for WindowExtension {
    fn name(&self) -> &'static str {
        "window"
    }
    fn logical_codec(&self, session: &CodecSession) -> Option<Arc<dyn LogicalExtensionCodec>> {
        Some(Arc::new(CallCodec::new(
            session,
            "window",
            super::codec::call_of,
        )))
    }
    fn physical_codec(&self, _: &CodecSession) -> Option<Arc<dyn PhysicalExtensionCodec>> {
        Some(Arc::new(super::codec::WindowPhysicalCodec))
    }
    async fn register(&self, setup: &mut Setup<'_>) -> Result<()> {
        register_table_functions(setup.ctx);
        Ok(())
    }
}

/// Registers `window_features` and `window_features_at` on any session (tests, benches).
pub fn register_table_functions(ctx: &SessionContext) {
    ctx.register_udtf(FEATURES, Arc::new(WindowFeaturesFn));
    ctx.register_udtf(FEATURES_AT, Arc::new(WindowFeaturesAtFn));
}

pub(super) const FEATURES: &str = "window_features";
pub(super) const FEATURES_AT: &str = "window_features_at";

fn string_arg(args: &[Expr], i: usize, function: &str, name: &str) -> Result<String> {
    match literal(args, i, function, name)? {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s))) => Ok(s.clone()),
        Some(other) => plan_err!(
            "{function}: argument {} ({name}) must be a string, got {other}",
            i + 1
        ),
        None => plan_err!("{function}: missing argument {} ({name})", i + 1),
    }
}

fn key_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

fn specs_from(args: &[Expr], first: usize, function: &str) -> Result<Vec<WindowSpec>> {
    (first..args.len())
        .map(|i| {
            let text = string_arg(args, i, function, "feature")?;
            WindowSpec::parse(&text).map_err(|e| {
                datafusion::error::DataFusionError::Plan(format!(
                    "{function}: {}",
                    crate::error::user_message(&e)
                ))
            })
        })
        .collect()
}

/// The provider of a table or view named `name` in `session`.
fn table(session: &dyn Session, name: &str, function: &str) -> Result<Arc<dyn TableProvider>> {
    let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
        return plan_err!("{function}: tables can only be resolved in a full session");
    };
    let reference = TableReference::parse_str(name);
    let schema = state.schema_for_ref(reference.clone())?;
    match schema.table(reference.table()).now_or_never() {
        Some(Ok(Some(t))) => Ok(t),
        Some(Err(e)) => Err(e),
        Some(Ok(None)) => plan_err!("{function}: table '{name}' not found"),
        None => plan_err!("{function}: table '{name}' cannot be resolved while planning"),
    }
}

fn columns_of(provider_schema: &Schema, names: &[&str], what: &str) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| find_column(what, provider_schema, n))
        .collect()
}

/// Reads `source` with the columns of `projection` (indices of `schema`, the function's
/// output, of which the first `n_source` are the source's own) plus `required`.
async fn scan_source(
    state: &dyn Session,
    source: &Arc<dyn TableProvider>,
    projection: Option<&Vec<usize>>,
    required: &[usize],
) -> Result<Arc<dyn ExecutionPlan>> {
    let n_source = source.schema().fields().len();
    let mut needed: BTreeSet<usize> = match projection {
        Some(p) => p.iter().copied().filter(|&i| i < n_source).collect(),
        None => (0..n_source).collect(),
    };
    needed.extend(required.iter().copied());
    let needed: Vec<usize> = needed.into_iter().collect();
    source.scan(state, Some(&needed), &[], None).await
}

/// The final projection onto the provider's (projected) schema, by column name.
fn project_output(
    plan: Arc<dyn ExecutionPlan>,
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let indices: Vec<usize> = match projection {
        Some(p) => p.clone(),
        None => (0..schema.fields().len()).collect(),
    };
    let projected = Arc::new(schema.project(&indices)?);
    let plan_schema = plan.schema();
    let exprs = indices
        .iter()
        .map(|&i| {
            let name = schema.field(i).name();
            let idx = plan_schema.index_of(name)?;
            Ok((
                Arc::new(Column::new(name, idx)) as Arc<dyn PhysicalExpr>,
                name.clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(ProjectionExec::try_new_with_schema_metadata(
        exprs, plan, &projected,
    )?))
}

/// `window_features(table, keys, time_column, feature [, feature …])`
#[derive(Debug)]
struct WindowFeaturesFn;

impl TableFunctionImpl for WindowFeaturesFn {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let f = FEATURES;
        if exprs.len() < 4 {
            return plan_err!(
                "{f}: expected (table, keys, time_column, feature [, feature …]), got {} argument(s)",
                exprs.len()
            );
        }
        let name = string_arg(exprs, 0, f, "table")?;
        let keys = key_list(&string_arg(exprs, 1, f, "keys")?);
        let time = string_arg(exprs, 2, f, "time_column")?;
        let specs = specs_from(exprs, 3, f)?;
        let source = table(args.session(), &name, f)?;
        let plan = plan_features(f, &source.schema(), &keys, &time, &specs)?;
        Ok(Arc::new(WindowFeaturesTable {
            schema: identify_call(&plan.schema, f, exprs),
            args: exprs.to_vec(),
            source,
            keys,
            time,
            specs,
        }))
    }
}

#[derive(Debug)]
pub(super) struct WindowFeaturesTable {
    /// The call's arguments (what the codec carries).
    pub(super) args: Vec<Expr>,
    source: Arc<dyn TableProvider>,
    keys: Vec<String>,
    time: String,
    specs: Vec<WindowSpec>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for WindowFeaturesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let src = self.source.schema();
        let mut names: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        names.push(&self.time);
        names.extend(self.specs.iter().filter_map(|s| s.input.as_deref()));
        let required = columns_of(&src, &names, FEATURES)?;
        let input = scan_source(state, &self.source, projection, &required).await?;
        let exec = FeatureWindowExec::try_new(
            input,
            self.keys.clone(),
            self.time.clone(),
            self.specs.clone(),
        )?;
        // Only the columns the query reads leave the operator (and are kept while buffering).
        let full = exec.schema();
        let wanted = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let chosen = wanted
            .iter()
            .map(|&i| full.index_of(self.schema.field(i).name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let exec = exec.with_projection(Some(chosen))?;
        project_output(Arc::new(exec), &self.schema, projection)
    }
}

/// `window_features_at(events, keys, time, spine, spine_keys, spine_time, feature [, …])`
#[derive(Debug)]
struct WindowFeaturesAtFn;

impl TableFunctionImpl for WindowFeaturesAtFn {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let f = FEATURES_AT;
        if exprs.len() < 7 {
            return plan_err!(
                "{f}: expected (events, keys, time, spine, spine_keys, spine_time, feature [, feature …]), got {} argument(s)",
                exprs.len()
            );
        }
        let events = string_arg(exprs, 0, f, "events")?;
        let keys = key_list(&string_arg(exprs, 1, f, "keys")?);
        let time = string_arg(exprs, 2, f, "time")?;
        let spine = string_arg(exprs, 3, f, "spine")?;
        let spine_keys = key_list(&string_arg(exprs, 4, f, "spine_keys")?);
        let spine_time = string_arg(exprs, 5, f, "spine_time")?;
        let specs = specs_from(exprs, 6, f)?;
        let events = table(args.session(), &events, f)?;
        let spine = table(args.session(), &spine, f)?;
        let plan = plan_at(
            f,
            &events.schema(),
            &spine.schema(),
            (&keys, &time),
            (&spine_keys, &spine_time),
            &specs,
            false,
        )?;
        Ok(Arc::new(WindowFeaturesAtTable {
            schema: identify_call(&plan.schema, f, exprs),
            args: exprs.to_vec(),
            events,
            spine,
            keys,
            time,
            spine_keys,
            spine_time,
            specs,
        }))
    }
}

#[derive(Debug)]
pub(super) struct WindowFeaturesAtTable {
    /// The call's arguments (what the codec carries).
    pub(super) args: Vec<Expr>,
    events: Arc<dyn TableProvider>,
    spine: Arc<dyn TableProvider>,
    keys: Vec<String>,
    time: String,
    spine_keys: Vec<String>,
    spine_time: String,
    specs: Vec<WindowSpec>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for WindowFeaturesAtTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let ev_schema = self.events.schema();
        let mut names: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        names.push(&self.time);
        names.extend(self.specs.iter().filter_map(|s| s.input.as_deref()));
        let required = columns_of(&ev_schema, &names, FEATURES_AT)?;
        let events = self.events.scan(state, Some(&required), &[], None).await?;

        let sp_schema = self.spine.schema();
        let mut sp_names: Vec<&str> = self.spine_keys.iter().map(String::as_str).collect();
        sp_names.push(&self.spine_time);
        let sp_required = columns_of(&sp_schema, &sp_names, FEATURES_AT)?;
        let mut spine = scan_source(state, &self.spine, projection, &sp_required).await?;

        // Spine keys of another type than the events' are cast, as extra hidden columns.
        let ev_plan_schema = events.schema();
        let sp_plan_schema = spine.schema();
        let mut spine_keys = self.spine_keys.clone();
        let mut casts = Vec::new();
        for (i, (ek, sk)) in self.keys.iter().zip(&self.spine_keys).enumerate() {
            let et = ev_plan_schema
                .field(find_column(FEATURES_AT, &ev_plan_schema, ek)?)
                .data_type();
            let si = find_column(FEATURES_AT, &sp_plan_schema, sk)?;
            if sp_plan_schema.field(si).data_type() != et {
                let name = format!("__fstore_key_{i}");
                let col = Arc::new(Column::new(sp_plan_schema.field(si).name(), si));
                casts.push((
                    Arc::new(CastExpr::new(col, et.clone(), None)) as Arc<dyn PhysicalExpr>,
                    name.clone(),
                ));
                spine_keys[i] = name;
            }
        }
        if !casts.is_empty() {
            let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = sp_plan_schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    (
                        Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>,
                        f.name().clone(),
                    )
                })
                .collect();
            exprs.extend(casts);
            spine = Arc::new(ProjectionExec::try_new(exprs, spine)?);
        }
        let exec = WindowAtExec::try_new(
            events,
            self.keys.clone(),
            self.time.clone(),
            spine,
            spine_keys,
            self.spine_time.clone(),
            self.specs.clone(),
        )?;
        project_output(Arc::new(exec), &self.schema, projection)
    }
}
