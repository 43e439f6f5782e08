//! What the selection functions read: their first argument names a table, a view or a feature
//! group, or is a query text (an argument containing whitespace is SQL). Resolving it needs the
//! catalog, so it happens when the scan is planned; the arguments themselves are checked when
//! the function is called.
//!
//! For a feature group the candidate features are the group's features as the registry lists
//! them (never its entity keys, timestamp or CREATED column); for anything else, every column.

use std::sync::Arc;

use arrow_schema::{Field, Schema};
use datafusion::common::{Column, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use crate::args::required_string;
use crate::engine::{CATALOG, USER_SCHEMA};
use crate::error::{ErrorKind, FStoreError, user_message};
use crate::registry::{Feature, FeatureGroup, FeatureKind, Registry, quote_ident};

/// The first argument of a selection function.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceArg {
    /// A table, view or feature group name (`name`, `schema.name`, `"Quoted"`).
    Relation(String),
    /// A query text.
    Query(String),
}

impl SourceArg {
    pub fn parse(args: &[Expr], function: &str) -> Result<SourceArg> {
        let text = required_string(args, 0, function, "table")?;
        let text = text.trim();
        if text.is_empty() {
            return Err(FStoreError::invalid(format!(
                "{function}: argument 1 (table) is empty; give a table, view or feature group name, or a query"
            ))
            .into());
        }
        Ok(if text.contains(char::is_whitespace) {
            SourceArg::Query(text.to_string())
        } else {
            SourceArg::Relation(text.to_string())
        })
    }

    /// How messages name the source: `'customer_behavior'` or `the query`.
    pub fn label(&self) -> String {
        match self {
            SourceArg::Relation(name) => format!("'{name}'"),
            SourceArg::Query(_) => "the query".to_string(),
        }
    }
}

/// A resolved source: its plan, and which of its columns may be features.
#[derive(Debug)]
pub struct Source {
    pub plan: LogicalPlan,
    /// Indexes (in the plan's schema) of the candidate feature columns, in column order.
    pub candidates: Vec<usize>,
    /// The feature group the source is, when it is one.
    pub group: Option<String>,
}

impl Source {
    /// The index of `name` among the plan's columns: an exact match, else the only
    /// case-insensitive one.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        let fields = self.plan.schema().fields();
        fields.iter().position(|f| f.name() == name).or_else(|| {
            let mut matches = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
            match (matches.next(), matches.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        })
    }

    /// The column names of the plan, for messages.
    pub fn column_names(&self) -> String {
        self.plan
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The plan reduced to the given columns, in that order.
    pub fn project(&self, columns: &[usize]) -> Result<LogicalPlan> {
        let schema = self.plan.schema();
        let exprs: Vec<Expr> = columns
            .iter()
            .map(|&i| Expr::Column(Column::from(schema.qualified_field(i))))
            .collect();
        LogicalPlanBuilder::from(self.plan.clone())
            .project(exprs)?
            .build()
    }
}

/// Plans the source named by `arg`.
pub async fn resolve(
    arg: &SourceArg,
    state: &SessionState,
    registry: &Registry,
    function: &str,
) -> Result<Source> {
    resolve_with_label(arg, state, registry, function, None).await
}

/// [`resolve`], with `label` carried along when `arg` is a feature group that lacks it but
/// whose source has it: the group's rows are its source's events, so a label of the events
/// (`conversion` of `customer_behavior`'s transactions) is that column of the same rows. It is
/// never a candidate feature.
pub async fn resolve_with_label(
    arg: &SourceArg,
    state: &SessionState,
    registry: &Registry,
    function: &str,
    label: Option<&str>,
) -> Result<Source> {
    match arg {
        SourceArg::Relation(name) => {
            let missing = || -> datafusion::error::DataFusionError {
                FStoreError::not_found(format!(
                    "{function}: unknown table, view or feature group '{name}'"
                ))
                .into()
            };
            let reference = TableReference::parse_str(name);
            let schema = state
                .schema_for_ref(reference.clone())
                .map_err(|_| missing())?;
            let provider = schema.table(reference.table()).await?.ok_or_else(missing)?;
            let mut plan =
                LogicalPlanBuilder::scan(reference.clone(), provider_as_source(provider), None)?
                    .build()?;
            let resolved = reference.clone().resolve(CATALOG, USER_SCHEMA);
            let group = (*resolved.catalog == *CATALOG && *resolved.schema == *USER_SCHEMA)
                .then(|| {
                    registry
                        .state()
                        .feature_groups
                        .get(&*resolved.table)
                        .cloned()
                })
                .flatten();
            if let (Some(group), Some(label)) = (&group, label)
                && !has_column(&plan, label)
                && let Some(def) = with_source_column(&group.def, label, state).await
            {
                plan = crate::features::plan(&def, state).await?;
            }
            let fields = plan.schema().fields();
            let group_name = group.as_ref().map(|g| g.def.name.clone());
            let candidates = match group {
                Some(group) => {
                    let features = group.def.feature_names();
                    (0..fields.len())
                        .filter(|&i| features.contains(&fields[i].name().as_str()))
                        .collect()
                }
                None => (0..fields.len()).collect(),
            };
            Ok(Source {
                plan,
                candidates,
                group: group_name,
            })
        }
        SourceArg::Query(sql) => {
            let plan = state.create_logical_plan(sql).await.map_err(|e| {
                FStoreError::new(
                    ErrorKind::of(&e),
                    format!("{function}: the query fails: {}", user_message(&e)),
                )
            })?;
            if !is_query(&plan) {
                return Err(FStoreError::invalid(format!(
                    "{function}: argument 1 must be a table, view or feature group name, or a query (SELECT …)"
                ))
                .into());
            }
            let candidates = (0..plan.schema().fields().len()).collect();
            Ok(Source {
                plan,
                candidates,
                group: None,
            })
        }
    }
}

fn has_column(plan: &LogicalPlan, name: &str) -> bool {
    plan.schema()
        .fields()
        .iter()
        .any(|f| f.name().eq_ignore_ascii_case(name))
}

/// `group` with `column` of its source as one more (pass-through) output column, when the
/// source has that column.
async fn with_source_column(
    group: &FeatureGroup,
    column: &str,
    state: &SessionState,
) -> Option<FeatureGroup> {
    let sql = format!(
        "SELECT {} FROM {}",
        quote_ident(column),
        group.source.as_from()
    );
    let probe = state.create_logical_plan(&sql).await.ok()?;
    let field = probe.schema().field(0);
    let mut def = group.clone();
    def.features.push(Feature {
        name: field.name().clone(),
        kind: FeatureKind::Column {
            column: column.to_string(),
        },
        description: None,
    });
    let mut fields: Vec<_> = def.schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(
        field.name(),
        field.data_type().clone(),
        true,
    )));
    def.schema = Schema::new_with_metadata(fields, def.schema.metadata().clone());
    Some(def)
}

/// Whether a plan returns rows (rather than defining or changing something).
fn is_query(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::DescribeTable(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
    )
}
