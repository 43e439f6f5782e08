//! Materialization: a feature set's latest feature vector per entity at a time T, computed
//! with the training-set plan (so online and offline values agree exactly for the same T).
//!
//! The spine is every entity with at least one source event at or before T, with T as its
//! timestamp; [`FEATURE_TS`] is the entity's latest source event time at or before T (over
//! every group of the set). Per-event features come from the AS-OF join (latest row at or
//! before T within the group's TTL), window features are evaluated over (T − w, T], and
//! fitted transformations use their stored parameters — exactly what
//! `training_set('set@v', entities, ts)` returns for a row of that entity at T.
//!
//! A set served online has one entity key: all of its groups must share their entity key
//! columns (a set mixing customer and product features is two online sets).

use std::sync::Arc;

use arrow_schema::{DataType, TimeUnit};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};

use super::{FEATURE_TS, MATERIALIZED_AT};
use crate::error::FStoreError;
use crate::features::training::{GroupRequest, counted_outputs, plan_over_spine, resolve_list};
use crate::registry::{FeatureGroup, FeatureSetVersion, RegistryState, quote_ident};

/// The spine's time column (dropped from the output).
const AS_OF: &str = "__online_as_of";
/// A source row's time in the spine's union.
const EVENT_TS: &str = "__online_ts";

/// The type of [`FEATURE_TS`].
pub fn feature_ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// The type of [`MATERIALIZED_AT`].
pub fn materialized_at_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The groups of a set version and their common entity key.
/// The feature columns of a set's online rows that are 0, not NULL, for an entity the store
/// does not hold (counts; see `counted_outputs`).
pub(crate) fn zero_when_missing(groups: &[GroupRequest], keys: &[String]) -> Vec<String> {
    let mut spine: Vec<String> = keys.to_vec();
    spine.extend([FEATURE_TS.to_string(), AS_OF.to_string()]);
    counted_outputs(groups, &spine)
}

pub(crate) fn set_groups(
    state: &RegistryState,
    set: &FeatureSetVersion,
) -> Result<(Vec<GroupRequest>, Vec<String>)> {
    let groups = resolve_list(state, &format!("{}@{}", set.name, set.version))?;
    let Some(first) = groups.first() else {
        return Err(
            FStoreError::invalid(format!("feature set '{}' has no features", set.name)).into(),
        );
    };
    let keys = first.def.entity.clone();
    let sorted = |k: &[String]| {
        let mut k = k.to_vec();
        k.sort();
        k
    };
    for g in &groups[1..] {
        if sorted(&g.def.entity) != sorted(&keys) {
            return Err(FStoreError::invalid(format!(
                "feature set '{}' cannot be served online: its groups have different entity keys ('{}' has ({}), '{}' has ({})); serve one set per entity",
                set.name,
                first.def.name,
                keys.join(", "),
                g.def.name,
                g.def.entity.join(", ")
            ))
            .into());
        }
    }
    Ok((groups, keys))
}

/// Keys and event time of one group's source rows.
async fn source_keys(
    state: &SessionState,
    def: &FeatureGroup,
    keys: &[String],
) -> Result<LogicalPlan> {
    let select: Vec<String> = keys
        .iter()
        .map(|k| quote_ident(k))
        .chain(std::iter::once(format!(
            "CAST({} AS TIMESTAMP) AS {EVENT_TS}",
            quote_ident(&def.timestamp)
        )))
        .collect();
    let sql = format!("SELECT {} FROM {}", select.join(", "), def.source.as_from());
    state.create_logical_plan(&sql).await.map_err(|e| {
        FStoreError::new(
            crate::error::ErrorKind::of(&e),
            format!(
                "feature group '{}': cannot read its source: {}",
                def.name,
                crate::error::user_message(&e)
            ),
        )
        .into()
    })
}

/// The materialization plan of `set` at `as_of` (µs since the epoch): one row per entity,
/// columns: the key columns, the features (named as in a training set), [`FEATURE_TS`],
/// [`MATERIALIZED_AT`] (= `materialized_at`).
pub async fn plan(
    session: &SessionState,
    state: &RegistryState,
    set: &FeatureSetVersion,
    as_of: i64,
    materialized_at: i64,
) -> Result<LogicalPlan> {
    plan_for(session, state, set, as_of, materialized_at, None).await
}

/// [`plan`] for the entities of `only` (a plan of distinct key columns) when given.
pub async fn plan_for(
    session: &SessionState,
    state: &RegistryState,
    set: &FeatureSetVersion,
    as_of: i64,
    materialized_at: i64,
    only: Option<LogicalPlan>,
) -> Result<LogicalPlan> {
    let (groups, keys) = set_groups(state, set)?;
    let t = ScalarValue::TimestampMicrosecond(Some(as_of), None);
    // 1. The spine: every entity with an event at or before T.
    let mut union: Option<LogicalPlanBuilder> = None;
    for g in &groups {
        let rows = source_keys(session, &g.def, &keys).await?;
        union = Some(match union {
            None => LogicalPlanBuilder::from(rows),
            Some(b) => b.union(rows)?,
        });
    }
    let union = union.expect("a set has groups").build()?;
    let mut not_null = col(Column::new_unqualified(EVENT_TS)).lt_eq(lit(t.clone()));
    for k in &keys {
        not_null = not_null.and(col(Column::new_unqualified(k)).is_not_null());
    }
    let key_cols: Vec<Expr> = keys
        .iter()
        .map(|k| col(Column::new_unqualified(k)))
        .collect();
    let time_type = groups[0]
        .def
        .schema
        .field_with_name(&groups[0].def.timestamp)
        .map(|f| f.data_type().clone())
        .unwrap_or_else(|_| feature_ts_type());
    let spine = LogicalPlanBuilder::from(union)
        .filter(not_null)?
        .aggregate(
            key_cols.clone(),
            vec![max(col(Column::new_unqualified(EVENT_TS))).alias(FEATURE_TS)],
        )?
        .project(
            key_cols
                .iter()
                .cloned()
                .chain([
                    col(Column::new_unqualified(FEATURE_TS)),
                    cast(lit(t), time_type).alias(AS_OF),
                ])
                .collect::<Vec<_>>(),
        )?
        .build()?;
    let spine = match only {
        None => spine,
        Some(only) => {
            let on: Vec<Expr> = keys
                .iter()
                .map(|k| {
                    col(Column::new(Some("__spine0"), k)).eq(col(Column::new(Some("__only"), k)))
                })
                .collect();
            LogicalPlanBuilder::from(spine)
                .alias("__spine0")?
                .join_on(
                    LogicalPlanBuilder::from(only).alias("__only")?.build()?,
                    datafusion::logical_expr::JoinType::LeftSemi,
                    on,
                )?
                .build()?
        }
    };
    // 2. The training-set plan over that spine.
    let training = plan_over_spine(session, &groups, spine, AS_OF, None, None).await?;
    // 3. Keys, features, then the two bookkeeping columns.
    let at = ScalarValue::TimestampMicrosecond(Some(materialized_at), Some("UTC".into()));
    let mut select: Vec<Expr> = Vec::new();
    for (q, f) in training.schema().iter() {
        if f.name() == AS_OF || f.name() == FEATURE_TS {
            continue;
        }
        select.push(Expr::Column(Column::from((q, f))));
    }
    select
        .push(cast(col(Column::new_unqualified(FEATURE_TS)), feature_ts_type()).alias(FEATURE_TS));
    select.push(lit(at).alias(MATERIALIZED_AT));
    LogicalPlanBuilder::from(training).project(select)?.build()
}

/// The online schema of a materialization plan: its columns, all nullable (a lookup of a
/// missing entity gives NULLs in every column).
pub fn schema_of(plan: &LogicalPlan) -> arrow_schema::SchemaRef {
    let fields: Vec<arrow_schema::Field> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(arrow_schema::Schema::new(fields))
}

/// The entities an incremental refresh from `previous_as_of` to `as_of` recomputes (see
/// [`super::incremental`]): distinct key columns of the rows of `new_files` (per source
/// table, warehouse URLs) and of the events in the moving boundaries.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn affected_keys(
    ctx: &datafusion::prelude::SessionContext,
    session: &SessionState,
    groups: &[GroupRequest],
    keys: &[String],
    new_files: &[(String, Vec<String>)],
    lengths: &[i64],
    previous_as_of: i64,
    as_of: i64,
) -> Result<LogicalPlan> {
    let ts = |v: i64| lit(ScalarValue::TimestampMicrosecond(Some(v), None));
    let event = || col(Column::new_unqualified(EVENT_TS));
    let mut in_boundary = event().gt(ts(previous_as_of)).and(event().lt_eq(ts(as_of)));
    for l in lengths {
        in_boundary = in_boundary.or(event()
            .gt(ts(previous_as_of - l - 1))
            .and(event().lt_eq(ts(as_of - l))));
    }
    let key_cols: Vec<Expr> = keys
        .iter()
        .map(|k| col(Column::new_unqualified(k)))
        .collect();
    let mut parts: Vec<LogicalPlan> = Vec::new();
    for g in groups {
        let rows = source_keys(session, &g.def, keys).await?;
        parts.push(
            LogicalPlanBuilder::from(rows)
                .filter(in_boundary.clone())?
                .project(key_cols.clone())?
                .build()?,
        );
    }
    for (_, urls) in new_files {
        if urls.is_empty() {
            continue;
        }
        let df = ctx
            .read_parquet(
                urls.clone(),
                datafusion::prelude::ParquetReadOptions::default(),
            )
            .await?;
        let plan = df.into_unoptimized_plan();
        let select: Vec<Expr> = keys
            .iter()
            .map(|k| datafusion::prelude::ident(k).alias(k))
            .collect();
        parts.push(LogicalPlanBuilder::from(plan).project(select)?.build()?);
    }
    let mut b = LogicalPlanBuilder::from(parts.remove(0));
    for p in parts {
        b = b.union(p)?;
    }
    b.distinct()?.build()
}
