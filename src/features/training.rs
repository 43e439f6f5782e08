//! Point-in-time training sets: `training_set(feature_list, entities, timestamp_column
//! [, start, end])` and `temporal_split(table, test_size, timestamp_column)` (docs/sql-reference.md).
//!
//! A training set is a plan over the *spine* (the entity table: one row per example, with the
//! groups' entity key columns and a timestamp t):
//!
//! - per feature group, its non-window features (plain columns, expressions, fitted
//!   transformations) come from an AS-OF join of the spine with the group's rows: the latest
//!   row of the same entity at or before t (ties on time broken by the group's CREATED
//!   column), no older than the group's TTL — so no value is ever later than its example;
//! - its window features are evaluated at exactly t (the window (t − w, t]) by
//!   [`WindowAtNode`] — not taken from the entity's last event before t, whose window ended
//!   earlier. The TTL does not apply to them: a window is its own bound on staleness (a
//!   window with no events gives 0 counts and NULL means).
//!
//! Every spine row is kept once (duplicates included, entities without features get NULLs).
//! Output: the spine's columns, then the features in the order listed, each named by its
//! feature name — or `group__feature` when that name is also a spine column or the name of
//! another listed feature.
//!
//! The feature list is a comma-separated list of `group:*` (every feature of the group),
//! `group:feature`, and feature-set names (`name` = latest version, `name@2`): a feature set
//! reads the group definitions pinned by its version, so it keeps producing the same values
//! after its groups change. A bare group name stands for `group:*`.

use std::sync::Arc;

use arrow_schema::DataType;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Column, ScalarValue, TableReference};
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};
use futures::FutureExt;

use super::at::WindowAtNode;
use crate::args::at_most;
use crate::args::{required_string, string_arg};
use crate::asof::logical::AsOfJoin;
use crate::asof::{AsOfKind, AsOfOp, LookBack};
use crate::error::{FStoreError, invalid};
use crate::registry::{FeatureGroup, Registry, RegistryState, quote_ident};

const TRAINING_SET: &str = "training_set";
const TEMPORAL_SPLIT: &str = "temporal_split";
const SPINE: &str = "__spine";

/// One feature group of a request and the features read from it.
#[derive(Debug)]
pub(crate) struct GroupRequest {
    pub(crate) def: FeatureGroup,
    /// Where the definition comes from, for messages: `feature set 'x' version 2` or None.
    pinned_by: Option<String>,
    pub(crate) features: Vec<String>,
}

/// Resolves a feature list against the registry.
pub(crate) fn resolve_list(state: &RegistryState, list: &str) -> Result<Vec<GroupRequest>> {
    let f = TRAINING_SET;
    let items: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(invalid(format!(
            "{f}: the feature list is empty; list 'group:*', 'group:feature' or a feature set name"
        )));
    }
    let mut groups: Vec<GroupRequest> = Vec::new();
    let mut add = |def: &FeatureGroup, pinned_by: Option<String>, names: Vec<String>| match groups
        .iter_mut()
        .find(|g| g.def.name == def.name)
    {
        Some(g) if g.def != *def => Err(invalid(format!(
            "{f}: feature group '{}' is listed with two different definitions ({} and {}); list it once",
            def.name,
            g.pinned_by.as_deref().unwrap_or("the current one"),
            pinned_by.as_deref().unwrap_or("the current one"),
        ))),
        Some(g) => {
            for n in names {
                if !g.features.contains(&n) {
                    g.features.push(n);
                }
            }
            Ok(())
        }
        None => {
            groups.push(GroupRequest {
                def: def.clone(),
                pinned_by,
                features: names,
            });
            Ok(())
        }
    };
    for item in items {
        let split = item.split_once(':');
        if let Some((group, feature)) = split {
            let (group, feature) = (group.trim(), feature.trim());
            let def = state.group(group).map_err(|e| {
                FStoreError::new(e.kind, format!("{f}: {} (in '{item}')", e.message))
            })?;
            let all: Vec<String> = def.feature_names().into_iter().map(String::from).collect();
            let names = if feature == "*" {
                all
            } else if all.iter().any(|n| n == feature) {
                vec![feature.to_string()]
            } else {
                return Err(FStoreError::not_found(format!(
                    "{f}: feature group '{group}' has no feature '{feature}'; its features: {}",
                    all.join(", ")
                ))
                .into());
            };
            add(def, None, names)?;
        } else if let Ok(set) = state.feature_set(item) {
            let by = format!("feature set '{}' version {}", set.name, set.version);
            for r in &set.features {
                let Some(pinned) = set.groups.get(&r.group) else {
                    return Err(FStoreError::new(
                        crate::error::ErrorKind::Internal,
                        format!("{by} does not pin group '{}'", r.group),
                    )
                    .into());
                };
                add(&pinned.def, Some(by.clone()), vec![r.feature.clone()])?;
            }
        } else if let Ok(def) = state.group(item) {
            let all = def.feature_names().into_iter().map(String::from).collect();
            add(def, None, all)?;
        } else {
            // A versioned reference to a set that exists gets the set's own message.
            if item.contains('@')
                && let Err(e) = state.feature_set(item)
            {
                return Err(FStoreError::new(e.kind, format!("{f}: {}", e.message)).into());
            }
            return Err(FStoreError::not_found(format!(
                "{f}: '{item}' is neither a feature set nor a feature group; list features as 'group:feature' or 'group:*'"
            ))
            .into());
        }
    }
    Ok(groups)
}

/// The output name of every requested feature, per group (see the module header).
fn output_names(groups: &[GroupRequest], spine_columns: &[String]) -> Vec<Vec<String>> {
    let count = |name: &str| {
        groups
            .iter()
            .flat_map(|g| g.features.iter())
            .filter(|f| f.as_str() == name)
            .count()
    };
    groups
        .iter()
        .map(|g| {
            g.features
                .iter()
                .map(|f| {
                    if count(f) > 1 || spine_columns.iter().any(|c| c == f) {
                        format!("{}__{f}", g.def.name)
                    } else {
                        f.clone()
                    }
                })
                .collect()
        })
        .collect()
}

/// The output names of the requested features that count (`count`, `count(*)`,
/// `count_distinct` windows): for an entity without events they are 0, not NULL, wherever the
/// value comes from (a training set, or the online store for an entity it does not hold).
pub(crate) fn counted_outputs(groups: &[GroupRequest], spine_columns: &[String]) -> Vec<String> {
    let names = output_names(groups, spine_columns);
    let mut out = Vec::new();
    for (g, names) in groups.iter().zip(names) {
        for (f, name) in g.features.iter().zip(names) {
            let counts = g.def.features.iter().any(|d| {
                &d.name == f
                    && matches!(&d.kind, crate::registry::FeatureKind::Window { agg, .. }
                        if matches!(agg.as_str(), "count" | "count_star" | "count_distinct"))
            });
            if counts {
                out.push(name);
            }
        }
    }
    out
}

/// The spine's columns, unqualified, as expressions of a plan whose spine part is qualified
/// by [`SPINE`].
fn spine_col(name: &str) -> Expr {
    Expr::Column(Column::new(Some(TableReference::bare(SPINE)), name))
}

/// A string bound (start/end) of `function` as a value of a time column's type.
pub(crate) fn time_bound(
    function: &str,
    text: &str,
    data_type: &DataType,
    what: &str,
) -> Result<Expr> {
    let value = ScalarValue::Utf8(Some(text.to_string()));
    value.cast_to(data_type).map_err(|_| {
        invalid(format!(
            "{function}: {what} '{text}' is not a valid {data_type} (write e.g. '2024-01-01' or '2024-01-01T12:00:00')"
        ))
    })?;
    Ok(cast(lit(value), data_type.clone()))
}

/// The logical plan of a training set.
async fn plan_training_set(
    state: &SessionState,
    groups: &[GroupRequest],
    entities: &str,
    time: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<LogicalPlan> {
    let f = TRAINING_SET;
    // 1. The spine.
    let sql = relation_or_query(entities);
    let spine = state.create_logical_plan(&sql).await.map_err(|e| {
        FStoreError::new(
            crate::error::ErrorKind::of(&e),
            format!(
                "{f}: cannot read the entity table: {}",
                crate::error::user_message(&e)
            ),
        )
    })?;
    plan_over_spine(state, groups, spine, time, start, end).await
}

/// The logical plan of a training set over a planned spine (see [`plan_training_set`]).
pub(crate) async fn plan_over_spine(
    state: &SessionState,
    groups: &[GroupRequest],
    spine: LogicalPlan,
    time: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<LogicalPlan> {
    let f = TRAINING_SET;
    let spine_columns: Vec<String> = spine
        .schema()
        .fields()
        .iter()
        .map(|c| c.name().clone())
        .collect();
    let Ok(time_field) = spine.schema().field_with_unqualified_name(time) else {
        return Err(invalid(format!(
            "{f}: the entity table has no column '{time}' (the timestamp column); its columns: {}",
            spine_columns.join(", ")
        )));
    };
    let time_type = time_field.data_type().clone();
    if !matches!(
        time_type,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    ) {
        return Err(invalid(format!(
            "{f}: the timestamp column '{time}' is {time_type}, not a timestamp or date"
        )));
    }
    // Unqualified spine columns under one qualifier.
    let unqualified: Vec<Expr> = spine
        .schema()
        .iter()
        .map(|(q, field)| Expr::Column(Column::from((q, field))).alias(field.name()))
        .collect();
    let mut builder = LogicalPlanBuilder::from(spine)
        .project(unqualified)?
        .alias(SPINE)?;
    if let Some(s) = start {
        builder = builder.filter(spine_col(time).gt_eq(time_bound(f, s, &time_type, "start")?))?;
    }
    if let Some(e) = end {
        builder = builder.filter(spine_col(time).lt(time_bound(f, e, &time_type, "end")?))?;
    }
    let mut plan = builder.build()?;

    // 2. Each group: AS-OF join for per-event features, WindowAt for window features.
    let names = output_names(groups, &spine_columns);
    let mut outputs: Vec<String> = Vec::new();
    for (gi, (g, out)) in groups.iter().zip(&names).enumerate() {
        let def = &g.def;
        let label = match &g.pinned_by {
            Some(by) => format!("feature group '{}' ({by})", def.name),
            None => format!("feature group '{}'", def.name),
        };
        for k in &def.entity {
            if !spine_columns.contains(k) {
                return Err(invalid(format!(
                    "{f}: the entity table has no column '{k}', the entity key of {label}; its columns: {}",
                    spine_columns.join(", ")
                )));
            }
        }
        let output_of = |name: &str| -> String {
            let i = g.features.iter().position(|n| n == name).expect("listed");
            out[i].clone()
        };
        let (windows, others): (Vec<&String>, Vec<&String>) = g
            .features
            .iter()
            .partition(|n| super::is_window_feature(def, n));

        if !others.is_empty() {
            let rows_def = super::without_windows(def);
            let rows = super::plan(&rows_def, state).await?;
            let rs = rows.schema().clone();
            let field = |name: &str| -> Result<Expr> {
                let (q, fld) = rs.qualified_field_with_unqualified_name(name)?;
                Ok(Expr::Column(Column::from((q, fld))))
            };
            let hidden = |what: &str| format!("__fs{gi}_{what}");
            let mut select = Vec::new();
            for (i, k) in def.entity.iter().enumerate() {
                select.push(field(k)?.alias(hidden(&format!("k{i}"))));
            }
            select.push(field(&def.timestamp)?.alias(hidden("t")));
            if let Some(c) = &def.created {
                select.push(field(c)?.alias(hidden("c")));
            }
            for n in &others {
                select.push(field(n)?.alias(output_of(n)));
            }
            let right = LogicalPlanBuilder::from(rows).project(select)?.build()?;
            let on = def
                .entity
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        spine_col(k),
                        col(Column::new_unqualified(hidden(&format!("k{i}")))),
                    )
                })
                .collect();
            let lookback = def.ttl.as_ref().map(|t| LookBack {
                bound: ScalarValue::DurationMicrosecond(Some(t.micros)),
                inclusive: true,
            });
            let join = AsOfJoin::try_new(
                Arc::new(plan),
                Arc::new(right),
                on,
                spine_col(time),
                col(Column::new_unqualified(hidden("t"))),
                AsOfOp::GtEq,
                def.created
                    .as_ref()
                    .map(|_| col(Column::new_unqualified(hidden("c")))),
                lookback,
                AsOfKind::Left,
            )
            .map_err(|e| invalid(format!("{f}: {label}: {}", crate::error::user_message(&e))))?;
            let joined = LogicalPlan::Extension(datafusion::logical_expr::Extension {
                node: Arc::new(join),
            });
            // Drop the hidden columns.
            let keep: Vec<Expr> = joined
                .schema()
                .iter()
                .filter(|(_, fld)| !fld.name().starts_with("__fs"))
                .map(|(q, fld)| Expr::Column(Column::from((q, fld))))
                .collect();
            plan = LogicalPlanBuilder::from(joined).project(keep)?.build()?;
        }

        if !windows.is_empty() {
            let names: Vec<String> = windows.iter().map(|s| s.to_string()).collect();
            let (events, features) =
                super::window_events(def, &names, |n| output_of(n), state).await?;
            // Event keys take the spine keys' types.
            let es = events.schema().clone();
            let ps = plan.schema().clone();
            let mut select = Vec::new();
            for (q, fld) in es.iter() {
                let e = Expr::Column(Column::from((q, fld)));
                let spine_type = def
                    .entity
                    .contains(fld.name())
                    .then(|| ps.field_with_unqualified_name(fld.name()).ok())
                    .flatten()
                    .map(|sf| sf.data_type().clone());
                select.push(match spine_type {
                    Some(t) if &t != fld.data_type() => cast(e, t).alias(fld.name()),
                    _ => e.alias(fld.name()),
                });
            }
            let events = LogicalPlanBuilder::from(events).project(select)?.build()?;
            let node = WindowAtNode::try_new(
                plan,
                events,
                def.entity.clone(),
                time.to_string(),
                def.entity.clone(),
                def.timestamp.clone(),
                def.created.clone(),
                features,
            )
            .map_err(|e| invalid(format!("{f}: {label}: {}", crate::error::user_message(&e))))?;
            plan = node.into_plan();
        }
        outputs.extend(out.iter().cloned());
    }

    // 3. Spine columns, then the features in the order listed.
    let ps = plan.schema().clone();
    let mut select: Vec<Expr> = spine_columns
        .iter()
        .map(|c| spine_col(c).alias(c))
        .collect();
    let mut by_listing: Vec<(usize, usize, &String)> = Vec::new();
    for (gi, out) in names.iter().enumerate() {
        for (fi, o) in out.iter().enumerate() {
            by_listing.push((gi, fi, o));
        }
    }
    for (_, _, o) in by_listing {
        let (q, fld) = ps.qualified_field_with_unqualified_name(o)?;
        select.push(Expr::Column(Column::from((q, fld))).alias(o.as_str()));
    }
    LogicalPlanBuilder::from(plan).project(select)?.build()
}

/// `SELECT * FROM name` for a relation name, the text itself for a query.
pub(crate) fn relation_or_query(text: &str) -> String {
    let t = text.trim();
    if t.contains(char::is_whitespace) {
        t.to_string()
    } else if t.contains('.') || t.starts_with('"') {
        format!("SELECT * FROM {t}")
    } else {
        format!("SELECT * FROM {}", quote_ident(t))
    }
}

pub(crate) fn session_state<'a>(session: &'a dyn Session, f: &str) -> Result<&'a SessionState> {
    session
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| invalid(format!("{f}: needs a full FStore session")))
}

/// Runs planning that only touches in-memory catalogs (FStore's catalog resolves tables
/// without I/O), from a synchronous table-function call.
pub(crate) fn plan_now<T>(f: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    fut.now_or_never().unwrap_or_else(|| {
        Err(invalid(format!(
            "{f}: a relation it reads cannot be resolved while planning"
        )))
    })
}

/// `training_set(feature_list, entities, timestamp_column [, start, end])`.
#[derive(Debug)]
pub struct TrainingSet {
    pub registry: Arc<Registry>,
}

impl TableFunctionImpl for TrainingSet {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let f = TRAINING_SET;
        let exprs = args.exprs();
        let usage = "feature_list, entities, timestamp_column [, start, end]";
        at_most(exprs, 5, f, usage)?;
        let list = required_string(exprs, 0, f, "feature_list")?;
        let entities = required_string(exprs, 1, f, "entities")?;
        let time = required_string(exprs, 2, f, "timestamp_column")?;
        let start = string_arg(exprs, 3, f, "start")?;
        let end = string_arg(exprs, 4, f, "end")?;
        let state = session_state(args.session(), f)?;
        let groups = resolve_list(&self.registry.state(), &list)?;
        let plan = plan_now(
            f,
            plan_training_set(
                state,
                &groups,
                &entities,
                &time,
                start.as_deref(),
                end.as_deref(),
            ),
        )?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// `temporal_split(table, test_size, timestamp_column)`: the table with a `split` column,
/// `'test'` for the latest `test_size` fraction of rows by time and `'train'` for the rest.
///
/// The cut is a time: rows at the cut time all go to `test`, so no timestamp is in both
/// splits and no `train` row is later than any `test` row (`test` may hold slightly more
/// than the fraction when rows tie at the cut). `test` gets round(test_size × n) rows of the
/// n rows with a time, plus ties; rows whose time is NULL get a NULL split.
#[derive(Debug)]
pub struct TemporalSplit;

impl TableFunctionImpl for TemporalSplit {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let f = TEMPORAL_SPLIT;
        let exprs = args.exprs();
        at_most(exprs, 3, f, "table, test_size, timestamp_column")?;
        let table = required_string(exprs, 0, f, "table")?;
        let test_size = match crate::args::literal(exprs, 1, f, "test_size")? {
            Some(v) if !v.is_null() => match v.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(x))) => x,
                _ => {
                    return Err(invalid(format!(
                        "{f}: argument 2 (test_size) must be a number between 0 and 1, got {v}"
                    )));
                }
            },
            _ => return Err(invalid(format!("{f}: missing argument 2 (test_size)"))),
        };
        if !(0.0..=1.0).contains(&test_size) {
            return Err(invalid(format!(
                "{f}: test_size must be between 0 and 1, got {test_size}"
            )));
        }
        let time = required_string(exprs, 2, f, "timestamp_column")?;
        let state = session_state(args.session(), f)?;
        let source = relation_or_query(&table);
        let t = quote_ident(&time);
        let sql = format!(
            "WITH __t AS ({source}),
             __cut AS (
               SELECT min({t}) AS __cut FROM (
                 SELECT {t}, row_number() OVER (ORDER BY {t} DESC) AS __rn, count(*) OVER () AS __n
                 FROM __t WHERE {t} IS NOT NULL)
               WHERE __rn <= round(__n * {test_size}))
             SELECT __t.*, CASE WHEN __t.{t} IS NULL THEN NULL
                                WHEN __t.{t} >= __cut.__cut THEN 'test' ELSE 'train' END AS split
             FROM __t CROSS JOIN __cut"
        );
        let plan = plan_now(f, async {
            let plan = state.create_logical_plan(&sql).await.map_err(|e| {
                FStoreError::new(
                    crate::error::ErrorKind::of(&e),
                    format!("{f}: {}", crate::error::user_message(&e)),
                )
            })?;
            Ok(plan)
        })?;
        if plan
            .schema()
            .fields()
            .iter()
            .filter(|c| c.name() == "split")
            .count()
            > 1
        {
            return Err(invalid(format!(
                "{f}: the table already has a column named 'split'"
            )));
        }
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}
