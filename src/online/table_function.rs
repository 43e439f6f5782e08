//! `online_features(set, key…)` and `online_features(set) WHERE key = … | key IN (…)`:
//! point lookups in the online store (docs/sql-reference.md).
//!
//! - With keys as arguments: one row per key given, in that order; an entity that is not in
//!   the online copy gets NULL features (and NULL `_feature_ts`, `_materialized_at`). A set
//!   with a composite key takes its key values in groups (`'a', 1, 'b', 2`).
//! - Without: the set is a table of entities whose key filters (`=`, `IN`, `OR` of
//!   equalities, on every key column) are pushed down to the store as lookups; the rows of
//!   entities that exist come back. A query that does not restrict every key column is an
//!   error: lookups never scan.
//! - Columns: the key columns, the features (named as in a training set), `_feature_ts`,
//!   `_materialized_at`.
//! - `cache_ttl`: when the online copy is older than the set's cache TTL (relative to its
//!   materialization), its features are returned as NULL — the row keeps `_feature_ts` and
//!   `_materialized_at`, which give its age — and a refresh is requested from the scheduler.

use std::sync::Arc;

use arrow_schema::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use crate::args::{identify_call, literal};
use crate::error::{FStoreError, invalid};
use crate::features::training::{plan_now, session_state};
use crate::online::key::scalar_text;
use crate::online::service::{OnlineService, not_online};
use crate::online::{EntityKey, FEATURE_TS, MATERIALIZED_AT};
use crate::registry::Registry;
use crate::registry::now_micros;

/// The table function's SQL name.
pub const F: &str = "online_features";
/// Most keys one lookup may ask for (a composite key's combinations included).
pub const MAX_KEYS: usize = 100_000;

/// The table function.
#[derive(Debug)]
pub struct OnlineFeatures {
    pub registry: Arc<Registry>,
    pub service: Arc<OnlineService>,
}

/// What a lookup needs to know about an online set.
#[derive(Debug, Clone)]
pub struct OnlineTarget {
    pub set: String,
    pub version: u64,
    pub key_columns: Vec<String>,
    pub cache_ttl: Option<i64>,
    /// Output schema (before projection).
    pub schema: SchemaRef,
    /// Feature columns that are 0, not NULL, for an entity the store does not hold (counts:
    /// what a training set gives for an entity without events).
    pub zero_when_missing: Vec<String>,
}

impl OnlineFeatures {
    /// The target of `set` (its online config, and the schema of its version).
    pub fn target(&self, set: &str, session: &dyn Session) -> Result<OnlineTarget> {
        let state = self.registry.state();
        let Some(config) = state.online.get(set) else {
            if let Err(e) = state.feature_set(set) {
                return Err(FStoreError::new(e.kind, format!("{F}: {}", e.message)).into());
            }
            return Err(not_online(set).into());
        };
        let (schema, keys, zeros) = match self.service.cached_shape(set, config.version) {
            Some(shape) => shape,
            None => {
                let fs = state.feature_set(&format!("{}@{}", config.set, config.version))?;
                let (groups, keys) = crate::online::materialize::set_groups(&state, fs)?;
                let zeros = crate::online::materialize::zero_when_missing(&groups, &keys);
                let session = session_state(session, F)?;
                let plan = plan_now(
                    F,
                    crate::online::materialize::plan(session, &state, fs, 0, 0),
                )?;
                let s = crate::online::materialize::schema_of(&plan);
                self.service.cache_shape(
                    set,
                    config.version,
                    (Arc::clone(&s), keys.clone(), zeros.clone()),
                );
                (s, keys, zeros)
            }
        };
        Ok(OnlineTarget {
            set: set.to_string(),
            version: config.version,
            key_columns: keys,
            cache_ttl: config.cache_ttl.as_ref().map(|t| t.micros),
            schema,
            zero_when_missing: zeros,
        })
    }
}

impl TableFunctionImpl for OnlineFeatures {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let set = match literal(exprs, 0, F, "feature_set")? {
            Some(ScalarValue::Utf8(Some(s)))
            | Some(ScalarValue::LargeUtf8(Some(s)))
            | Some(ScalarValue::Utf8View(Some(s))) => s.clone(),
            _ => {
                return Err(invalid(format!(
                    "{F}: argument 1 must be the feature set's name, as a string; usage: {F}('set' [, key, …])"
                )));
            }
        };
        let target = self.target(&set, args.session())?;
        let fixed = if exprs.len() > 1 {
            let n = target.key_columns.len();
            let values: Vec<ScalarValue> = (1..exprs.len())
                .map(|i| {
                    literal(exprs, i, F, "key").map(|v| v.cloned().unwrap_or(ScalarValue::Null))
                })
                .collect::<Result<_>>()?;
            if !values.len().is_multiple_of(n) {
                return Err(invalid(format!(
                    "{F}: '{set}' has a key of {n} columns ({}); give its values in groups of {n}, got {} values",
                    target.key_columns.join(", "),
                    values.len()
                )));
            }
            if values.len() / n > MAX_KEYS {
                return Err(invalid(format!(
                    "{F}: more than {MAX_KEYS} keys in one lookup"
                )));
            }
            for (i, v) in values.iter().enumerate() {
                check_key_type(&target, &target.key_columns[i % n], v)?;
            }
            Some(
                values
                    .chunks(n)
                    .map(|c| EntityKey::from_scalars(c).unwrap_or(EntityKey(vec![])))
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        let schema = identify_call(&target.schema, F, exprs);
        Ok(Arc::new(OnlineFeaturesTable {
            target,
            schema,
            fixed,
            service: Arc::clone(&self.service),
            args: exprs.to_vec(),
        }))
    }
}

/// The provider of one `online_features` call.
#[derive(Debug)]
pub struct OnlineFeaturesTable {
    pub target: OnlineTarget,
    schema: SchemaRef,
    /// Keys given as arguments.
    pub fixed: Option<Vec<EntityKey>>,
    service: Arc<OnlineService>,
    /// The call's arguments (what the codec carries).
    pub(super) args: Vec<Expr>,
}

/// The key column an expression's side names, and the literal values it compares with.
fn key_filter(e: &Expr, keys: &[String]) -> Option<(usize, Vec<ScalarValue>)> {
    let column_index = |e: &Expr| match e {
        Expr::Column(c) => keys.iter().position(|k| *k == c.name),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Eq => {
            match (left.as_ref(), right.as_ref()) {
                (c, Expr::Literal(v, _)) | (Expr::Literal(v, _), c) => {
                    column_index(c).map(|i| (i, vec![v.clone()]))
                }
                _ => None,
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Or => {
            let (i, mut a) = key_filter(left, keys)?;
            let (j, b) = key_filter(right, keys)?;
            (i == j).then(|| {
                a.extend(b);
                (i, a)
            })
        }
        Expr::InList(l) if !l.negated => {
            let i = column_index(&l.expr)?;
            let values = l
                .list
                .iter()
                .map(|v| match v {
                    Expr::Literal(v, _) => Some(v.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some((i, values))
        }
        _ => None,
    }
}

/// A key given as an argument must be a value of its key column's type, exactly: `'abc'` or
/// `5.5` for an integer key would match nothing, silently. NULL matches nothing, as in SQL.
fn check_key_type(target: &OnlineTarget, column: &str, v: &ScalarValue) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    let field = target.schema.field_with_name(column)?;
    let to = field.data_type();
    let options = datafusion::arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let exact = v.cast_to_with_options(to, &options).ok().filter(|c| {
        // A number must come back unchanged (5.5 is no integer key); text need only parse.
        !v.data_type().is_numeric() || c.cast_to(&v.data_type()).ok().as_ref() == Some(v)
    });
    if exact.is_none() {
        return Err(invalid(format!(
            "{F}('{}'): key {v} is not a value of key column {column} ({to})",
            target.set
        )));
    }
    Ok(())
}

/// The type `key` is cast to where `filter` compares it (`CAST(key AS t) = …`, `… IN (…)`).
fn cast_key(filter: &Expr, key: &str) -> Option<DataType> {
    let cast_of = |e: &Expr| match e {
        Expr::Cast(c) if matches!(c.expr.as_ref(), Expr::Column(col) if col.name == key) => {
            Some(c.field.data_type().clone())
        }
        Expr::TryCast(c) if matches!(c.expr.as_ref(), Expr::Column(col) if col.name == key) => {
            Some(c.field.data_type().clone())
        }
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Eq => {
            cast_of(left).or_else(|| cast_of(right))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Or => {
            cast_key(left, key).or_else(|| cast_key(right, key))
        }
        Expr::InList(l) if !l.negated => cast_of(&l.expr),
        _ => None,
    }
}

/// The keys asked for by `filters` (every key column restricted), or an error.
pub fn keys_of_filters(target: &OnlineTarget, filters: &[Expr]) -> Result<Vec<EntityKey>> {
    let n = target.key_columns.len();
    let mut per_column: Vec<Option<Vec<ScalarValue>>> = vec![None; n];
    for f in filters {
        if let Some((i, values)) = key_filter(f, &target.key_columns) {
            per_column[i] = Some(match per_column[i].take() {
                // Two filters on one column: both hold.
                Some(prev) => prev
                    .into_iter()
                    .filter(|v| values.iter().any(|w| scalar_text(w) == scalar_text(v)))
                    .collect(),
                None => values,
            });
        }
    }
    let mut columns = Vec::with_capacity(n);
    for (i, c) in per_column.into_iter().enumerate() {
        match c {
            Some(v) => columns.push(v),
            None if let Some(e) = filters
                .iter()
                .find_map(|f| cast_key(f, &target.key_columns[i])) =>
            {
                // `k IN (5, 6)` over a string key is planned as CAST(k AS BIGINT) IN (5, 6): a
                // comparison no exact lookup can answer ('05' would match). Say so.
                let field = target.schema.field_with_name(&target.key_columns[i])?;
                return Err(invalid(format!(
                    "{F}('{}'): key column {} is {} but is compared as {e}; compare it with values of its own type (e.g. {} IN ('5', '6') for a string key)",
                    target.set,
                    field.name(),
                    field.data_type(),
                    field.name()
                )));
            }
            None => {
                return Err(invalid(format!(
                    "{F}('{}'): lookups need the entity key: add WHERE {} = … or {} IN (…) (an online set is never scanned; its key: {})",
                    target.set,
                    target.key_columns[i],
                    target.key_columns[i],
                    target.key_columns.join(", ")
                )));
            }
        }
    }
    let total: usize = columns.iter().map(Vec::len).product();
    if total > MAX_KEYS {
        return Err(invalid(format!(
            "{F}: more than {MAX_KEYS} keys in one lookup"
        )));
    }
    // Every combination, without NULLs (they match nothing) and without repeats.
    let mut keys: Vec<Vec<ScalarValue>> = vec![vec![]];
    for values in &columns {
        let mut next = Vec::with_capacity(keys.len() * values.len());
        for k in &keys {
            for v in values {
                let mut k = k.clone();
                k.push(v.clone());
                next.push(k);
            }
        }
        keys = next;
    }
    let mut seen = std::collections::HashSet::new();
    Ok(keys
        .iter()
        .filter_map(|k| EntityKey::from_scalars(k))
        .filter(|k| seen.insert(k.clone()))
        .collect())
}

#[async_trait]
impl TableProvider for OnlineFeaturesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::View
    }
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.fixed.is_none() && key_filter(f, &self.target.key_columns).is_some() {
                    TableProviderFilterPushDown::Exact
                } else if self.fixed.is_none()
                    && self
                        .target
                        .key_columns
                        .iter()
                        .any(|k| cast_key(f, k).is_some())
                {
                    // Seen by `scan`, which explains why no lookup answers it.
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (keys, keep_missing) = match &self.fixed {
            Some(k) => (k.clone(), true),
            None => (keys_of_filters(&self.target, filters)?, false),
        };
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        Ok(Arc::new(OnlineLookupExec::new(
            self.target.clone(),
            schema,
            keys,
            keep_missing,
            projection.cloned(),
            Arc::clone(&self.service),
        )))
    }
}

/// Looks keys up and shapes the rows (see the module header); `projection` indexes the
/// target's schema, and `schema` is the result's (the projected target schema).
pub async fn lookup(
    service: &OnlineService,
    target: &OnlineTarget,
    keys: &[EntityKey],
    keep_missing: bool,
    projection: Option<&[usize]>,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let found = match service.embedded() {
        Some(e) => e.lookup_now(&target.set, keys),
        None => service.store().lookup(&target.set, keys).await?,
    };
    shape(
        service,
        target,
        keys,
        found,
        keep_missing,
        projection,
        schema,
    )
}

fn shape(
    service: &OnlineService,
    target: &OnlineTarget,
    keys: &[EntityKey],
    found: Option<crate::online::Lookup>,
    keep_missing: bool,
    projection: Option<&[usize]>,
    out_schema: &SchemaRef,
) -> Result<RecordBatch> {
    let schema = &target.schema;
    let n = keys.len();
    let (batch, hit, materialized_at) = match found {
        Some(l) => (Some(l.batch), l.found, Some(l.info.materialized_at)),
        None => (None, vec![false; n], None),
    };
    let stale = match (target.cache_ttl, materialized_at) {
        (Some(ttl), Some(at)) => now_micros() - at > ttl,
        _ => false,
    };
    if stale && !service.is_pending(&target.set) {
        service.request_refresh(&target.set);
    }
    let wanted: Vec<usize> = match projection {
        Some(p) => p.to_vec(),
        None => (0..schema.fields().len()).collect(),
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(wanted.len());
    for &i in &wanted {
        let field = schema.field(i);
        let name = field.name();
        let key_index = target.key_columns.iter().position(|k| k == name);
        let from_store = batch
            .as_ref()
            .and_then(|b| b.column_by_name(name).cloned())
            .map(|a| {
                if a.data_type() == field.data_type() {
                    Ok(a)
                } else {
                    cast(&a, field.data_type())
                }
            })
            .transpose()?;
        let mut array = from_store.unwrap_or_else(|| new_null_array(field.data_type(), n));
        if stale && key_index.is_none() && name != FEATURE_TS && name != MATERIALIZED_AT {
            array = new_null_array(field.data_type(), n);
        }
        if key_index.is_none()
            && keep_missing
            && materialized_at.is_some()
            && hit.iter().any(|h| !h)
            && target.zero_when_missing.iter().any(|z| z == name)
        {
            // A count of an entity without events is 0, as in a training set.
            let zero = ScalarValue::new_zero(field.data_type())?.to_array_of_size(n)?;
            let mask: BooleanArray = hit.iter().map(|h| Some(*h)).collect();
            array = datafusion::arrow::compute::kernels::zip::zip(&mask, &array, &zero)?;
        }
        if let Some(k) = key_index
            && keep_missing
            && hit.iter().any(|h| !h)
        {
            // The keys asked for, as the key column's type.
            let text: StringArray = keys.iter().map(|key| key.0.get(k).cloned()).collect();
            let requested = cast(&text, field.data_type())?;
            let mask: BooleanArray = hit.iter().map(|h| Some(*h)).collect();
            array = datafusion::arrow::compute::kernels::zip::zip(&mask, &array, &requested)?;
        }
        columns.push(array);
    }
    let out = RecordBatch::try_new_with_options(
        Arc::clone(out_schema),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
    )?;
    if keep_missing || hit.iter().all(|h| *h) {
        return Ok(out);
    }
    let mask: BooleanArray = hit.iter().map(|h| Some(*h)).collect();
    Ok(filter_record_batch(&out, &mask)?)
}

/// Executes one lookup.
#[derive(Debug)]
pub(super) struct OnlineLookupExec {
    properties: Arc<PlanProperties>,
    pub(super) target: OnlineTarget,
    pub(super) keys: Arc<Vec<EntityKey>>,
    pub(super) keep_missing: bool,
    pub(super) projection: Option<Vec<usize>>,
    /// The output: the `projection` of the provider's schema.
    pub(super) schema: SchemaRef,
    service: Arc<OnlineService>,
}

impl OnlineLookupExec {
    /// Looks `keys` up in `target` (`keep_missing`: a row for every key asked for, found or
    /// not), outputting the `projection` of the target's columns as `schema`.
    pub(super) fn new(
        target: OnlineTarget,
        schema: SchemaRef,
        keys: Vec<EntityKey>,
        keep_missing: bool,
        projection: Option<Vec<usize>>,
        service: Arc<OnlineService>,
    ) -> Self {
        Self {
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(Arc::clone(&schema)),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Final,
                Boundedness::Bounded,
            )),
            target,
            keys: Arc::new(keys),
            keep_missing,
            projection,
            schema,
            service,
        }
    }
}

impl DisplayAs for OnlineLookupExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "OnlineLookupExec: set={}@{}, keys={}",
            self.target.set,
            self.target.version,
            self.keys.len()
        )
    }
}

impl ExecutionPlan for OnlineLookupExec {
    fn name(&self) -> &str {
        "OnlineLookupExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }
    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let service = Arc::clone(&self.service);
        let target = self.target.clone();
        let keys = Arc::clone(&self.keys);
        let keep = self.keep_missing;
        let projection = self.projection.clone();
        let schema = Arc::clone(&self.schema);
        let fut = async move {
            lookup(
                &service,
                &target,
                &keys,
                keep,
                projection.as_deref(),
                &schema,
            )
            .await
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::once(fut),
        )))
    }
}
