//! Feature groups: from a `CREATE FEATURE GROUP` statement to a validated definition, and from
//! a definition to the logical plan that computes the group's rows.
//!
//! A group's rows are one per source event: entity keys, event time, CREATED (if any), and
//! the features — source columns, per-row expressions, and windowed aggregates over the
//! entity's events in (t − w, t] at the event's own time t — followed by fitted
//! transformations. The plan is
//!
//! ```text
//! Projection (output columns, transformations)
//!   [Window: target_encode(…) OVER (ORDER BY time)]     only for target encodings
//!     FeatureWindow (per-entity sliding windows)        only when the group has windows
//!       Projection (keys, time, created, columns, expressions, window inputs)
//!         source (table, view or query)
//! ```
//!
//! The feature group is registered as a view over this plan, so DataFusion optimises it with
//! the query that reads it: projections prune source columns; filters on entity keys go down
//! to the source; filters on time go down widened by the longest window (see `node`), so a
//! time range prunes Parquet row groups without changing any window's value.
//!
//! Validation happens here, at definition time, against the source's schema: unknown columns,
//! a non-temporal TIMESTAMP, duplicate names, unsupported aggregates or types are errors that
//! name the offending column.

pub mod at;
pub mod catalog;
pub mod codec;
pub mod exec;
pub mod export;
pub mod node;
pub mod sets;
pub mod statements;
pub mod training;
pub mod transform;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use datafusion::common::{DFSchema, TableReference};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, col, ident};

use crate::error::FStoreError;
use crate::features::statements::{CreateFeatureGroup, FeatureDefinition, SourceClause};
use crate::registry::{
    Feature, FeatureGroup, FeatureKind, FeatureSource, WindowLength, quote_ident,
};

/// Parses a duration (`'30 days'`, `'30d'`, `'1h'`, `'2 weeks'`) into microseconds.
pub fn duration_micros(text: &str, what: &str) -> Result<WindowLength> {
    let nanos = fstore_udfs::duration::parse_duration(text)
        .map_err(|e| FStoreError::invalid(format!("{what}: {}", crate::error::user_message(&e))))?;
    let micros = nanos / 1000;
    if micros <= 0 {
        return Err(FStoreError::invalid(format!(
            "{what}: '{text}' is shorter than a microsecond"
        ))
        .into());
    }
    Ok(WindowLength {
        text: text.to_string(),
        micros,
    })
}

/// The source's schema, planned through the session (a relation or a query).
async fn source_schema(
    source: &FeatureSource,
    state: &SessionState,
    group: &str,
) -> Result<Arc<DFSchema>> {
    let sql = format!("SELECT * FROM {}", source.as_from());
    let plan = state.create_logical_plan(&sql).await.map_err(|e| {
        FStoreError::new(
            crate::error::ErrorKind::of(&e),
            format!(
                "feature group '{group}': cannot read its source: {}",
                crate::error::user_message(&e)
            ),
        )
    })?;
    Ok(Arc::clone(plan.schema()))
}

fn column_type(schema: &DFSchema, column: &str, group: &str, role: &str) -> Result<DataType> {
    schema
        .fields()
        .iter()
        .find(|f| f.name() == column)
        .map(|f| f.data_type().clone())
        .ok_or_else(|| {
            let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            FStoreError::invalid(format!(
                "feature group '{group}': unknown {role} column '{column}' (the source has: {})",
                available.join(", ")
            ))
            .into()
        })
}

/// The type of a per-row SQL expression over the source.
async fn expression_type(
    source: &FeatureSource,
    sql: &str,
    state: &SessionState,
    group: &str,
    feature: &str,
) -> Result<DataType> {
    let q = format!("SELECT {sql} AS __e FROM {}", source.as_from());
    let plan = state.create_logical_plan(&q).await.map_err(|e| {
        FStoreError::invalid(format!(
            "feature group '{group}': feature '{feature}' = {sql}: {}",
            crate::error::user_message(&e)
        ))
    })?;
    Ok(plan.schema().field(0).data_type().clone())
}

/// The output type of a window aggregate over `input`, or why it cannot be computed. `agg` is
/// a [`WindowFeature`](node::WindowFeature) aggregate name.
pub fn window_output_type(
    agg: &str,
    input: Option<&DataType>,
) -> std::result::Result<DataType, String> {
    crate::window::feature_type(window_agg(agg)?, input)
}

/// The evaluator's aggregate for a [`WindowFeature`](node::WindowFeature) aggregate name.
pub fn window_agg(agg: &str) -> std::result::Result<crate::window::WindowAgg, String> {
    if agg == "count_star" {
        return Ok(crate::window::WindowAgg::CountStar);
    }
    crate::window::WindowAgg::from_name(agg).ok_or_else(|| format!("unsupported aggregate '{agg}'"))
}

/// Resolves and validates `CREATE FEATURE GROUP` against the catalog.
pub async fn define(stmt: &CreateFeatureGroup, state: &SessionState) -> Result<FeatureGroup> {
    let group = stmt.name.as_str();
    let invalid = |msg: String| -> datafusion::error::DataFusionError {
        FStoreError::invalid(format!("feature group '{group}': {msg}")).into()
    };
    let source = match &stmt.source {
        SourceClause::Relation(name) => FeatureSource::Relation { name: name.clone() },
        SourceClause::Query(sql) => FeatureSource::Query { sql: sql.clone() },
    };
    let schema = source_schema(&source, state, group).await?;
    let mut fields = Vec::new();
    let mut taken = HashSet::new();
    for key in &stmt.entity {
        let t = column_type(&schema, key, group, "ENTITY")?;
        if !taken.insert(key.clone()) {
            return Err(invalid(format!("entity column '{key}' is listed twice")));
        }
        fields.push(Field::new(key, t, true));
    }
    let ts = column_type(&schema, &stmt.timestamp, group, "TIMESTAMP")?;
    if !matches!(
        ts,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    ) {
        return Err(invalid(format!(
            "TIMESTAMP column '{}' is {ts}, not a timestamp or date",
            stmt.timestamp
        )));
    }
    if !taken.insert(stmt.timestamp.clone()) {
        return Err(invalid(format!(
            "'{}' cannot be both an entity key and the TIMESTAMP",
            stmt.timestamp
        )));
    }
    fields.push(Field::new(&stmt.timestamp, ts, true));
    if let Some(c) = &stmt.created {
        let t = column_type(&schema, c, group, "CREATED")?;
        if !taken.insert(c.clone()) {
            return Err(invalid(format!(
                "CREATED column '{c}' is already an entity key or the TIMESTAMP"
            )));
        }
        fields.push(Field::new(c, t, true));
    }

    let clauses: Vec<(String, FeatureDefinition)> = match &stmt.features {
        Some(list) => list
            .iter()
            .map(|f| (f.name.clone(), f.definition.clone()))
            .collect(),
        None => schema
            .fields()
            .iter()
            .filter(|f| !taken.contains(f.name()))
            .map(|f| (f.name().clone(), FeatureDefinition::Column))
            .collect(),
    };
    if clauses.is_empty() {
        return Err(invalid("it has no features".to_string()));
    }
    let mut features = Vec::new();
    for (name, def) in clauses {
        if !taken.insert(name.clone()) {
            return Err(invalid(format!("duplicate feature name '{name}'")));
        }
        let (kind, data_type) = match def {
            FeatureDefinition::Column => {
                let t = column_type(&schema, &name, group, "feature")?;
                (
                    FeatureKind::Column {
                        column: name.clone(),
                    },
                    t,
                )
            }
            FeatureDefinition::Expression(sql) => {
                let t = expression_type(&source, &sql, state, group, &name).await?;
                (FeatureKind::Expression { sql }, t)
            }
            FeatureDefinition::Window { agg, input, window } => {
                let window = duration_micros(
                    &window,
                    &format!("feature group '{group}': feature '{name}' WINDOW"),
                )?;
                let input_type = match &input {
                    Some(sql) => Some(expression_type(&source, sql, state, group, &name).await?),
                    None => None,
                };
                let t = window_output_type(&agg, input_type.as_ref())
                    .map_err(|m| invalid(format!("feature '{name}': {m}")))?;
                (FeatureKind::Window { agg, input, window }, t)
            }
        };
        fields.push(Field::new(&name, data_type, true));
        features.push(Feature {
            name,
            kind,
            description: None,
        });
    }
    let ttl = match &stmt.options.ttl {
        Some(t) => Some(duration_micros(
            t,
            &format!("feature group '{group}': TTL"),
        )?),
        None => None,
    };
    Ok(FeatureGroup {
        name: stmt.name.clone(),
        entity: stmt.entity.clone(),
        timestamp: stmt.timestamp.clone(),
        created: stmt.created.clone(),
        source,
        features,
        transformations: vec![],
        ttl,
        description: stmt.options.description.clone(),
        tags: stmt.options.tags.clone(),
        owner: stmt.options.owner.clone(),
        schema: Schema::new(fields),
    })
}

/// Name of the hidden column holding the input of the i-th window feature.
fn window_input_column(i: usize) -> String {
    format!("__fstore_window_input_{i}")
}

/// The hidden column holding the window input expression `sql`: one per distinct expression,
/// added to `select` the first time it is seen.
fn window_input(sql: &str, inputs: &mut Vec<(String, String)>, select: &mut Vec<String>) -> String {
    if let Some((_, c)) = inputs.iter().find(|(s, _)| s == sql) {
        return c.clone();
    }
    let c = window_input_column(inputs.len());
    select.push(format!("{sql} AS {}", quote_ident(&c)));
    inputs.push((sql.to_string(), c.clone()));
    c
}

/// The logical plan of a feature group's rows (see the module header).
pub async fn plan(group: &FeatureGroup, state: &SessionState) -> Result<LogicalPlan> {
    // 1. The source, projected to what the group needs.
    let mut select: Vec<String> = group.entity.iter().map(|k| quote_ident(k)).collect();
    select.push(quote_ident(&group.timestamp));
    if let Some(c) = &group.created {
        select.push(quote_ident(c));
    }
    let mut specs = Vec::new();
    // One hidden column per distinct window input expression.
    let mut inputs: Vec<(String, String)> = Vec::new();
    for f in &group.features {
        match &f.kind {
            FeatureKind::Column { column } => select.push(format!(
                "{} AS {}",
                quote_ident(column),
                quote_ident(&f.name)
            )),
            FeatureKind::Expression { sql } => {
                select.push(format!("{sql} AS {}", quote_ident(&f.name)))
            }
            FeatureKind::Window { agg, input, window } => {
                let input_col = input
                    .as_ref()
                    .map(|sql| window_input(sql, &mut inputs, &mut select));
                specs.push(node::WindowFeature {
                    agg: agg.clone(),
                    input: input_col,
                    window_micros: window.micros,
                    output: f.name.clone(),
                });
            }
        }
    }
    // Transformations may read a target column that is not a feature.
    for t in &group.transformations {
        if let crate::registry::Encoder::TargetEncoding { target, .. } = &t.encoder
            && !select.iter().any(|s| s == &quote_ident(target))
            && group.schema.field_with_name(target).is_err()
        {
            select.push(format!(
                "{} AS {}",
                quote_ident(target),
                quote_ident(&transform::target_column(target))
            ));
        }
    }
    let sql = format!(
        "SELECT {} FROM {}",
        select.join(", "),
        group.source.as_from()
    );
    let mut plan = state.create_logical_plan(&sql).await.map_err(|e| {
        FStoreError::new(
            crate::error::ErrorKind::of(&e),
            format!(
                "feature group '{}': {}",
                group.name,
                crate::error::user_message(&e)
            ),
        )
    })?;

    // 2. Windowed aggregates, per entity.
    if !specs.is_empty() {
        plan = node::FeatureWindowNode::plan(plan, group, specs)?;
    }

    // 3. Transformations that need the event order (target encoding) run as a window.
    let mut builder = LogicalPlanBuilder::from(plan);
    let windows = transform::window_exprs(group, state)?;
    if !windows.is_empty() {
        builder = builder.window(windows)?;
    }

    // 4. The output columns in order, with the other transformations.
    let mut out: Vec<Expr> = Vec::new();
    for f in group.schema.fields() {
        if let Some(t) = group.transformations.iter().find(|t| &t.output == f.name()) {
            out.push(transform::output_expr(t, group, state)?.alias(f.name()));
        } else {
            out.push(col(datafusion::common::Column::new_unqualified(f.name())));
        }
    }
    builder
        .project(out)?
        .alias(TableReference::bare(group.name.clone()))?
        .build()
}

/// A feature's column as an expression (unqualified).
pub fn feature_col(name: &str) -> Expr {
    ident(name)
}

/// Whether a feature of `group` is a window feature.
pub fn is_window_feature(group: &FeatureGroup, name: &str) -> bool {
    group
        .feature(name)
        .is_some_and(|f| matches!(f.kind, FeatureKind::Window { .. }))
}

/// `group` without its window features, for reading its other features per event cheaply.
/// A group whose transformations read a window feature is returned whole.
pub fn without_windows(group: &FeatureGroup) -> FeatureGroup {
    if group
        .transformations
        .iter()
        .any(|t| is_window_feature(group, &t.feature))
    {
        return group.clone();
    }
    let mut g = group.clone();
    g.features
        .retain(|f| !matches!(f.kind, FeatureKind::Window { .. }));
    let fields: Vec<Field> = group
        .schema
        .fields()
        .iter()
        .filter(|f| !is_window_feature(group, f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    g.schema = Schema::new_with_metadata(fields, group.schema.metadata().clone());
    g
}

/// The events a group's window features `names` read — `SELECT keys, timestamp, [created],
/// inputs FROM source` — and the features over them, named by `output(name)`.
pub async fn window_events(
    group: &FeatureGroup,
    names: &[String],
    output: impl Fn(&str) -> String,
    state: &SessionState,
) -> Result<(LogicalPlan, Vec<node::WindowFeature>)> {
    let mut select: Vec<String> = group.entity.iter().map(|k| quote_ident(k)).collect();
    select.push(quote_ident(&group.timestamp));
    if let Some(c) = &group.created {
        select.push(quote_ident(c));
    }
    let mut inputs: Vec<(String, String)> = Vec::new();
    let mut features = Vec::new();
    for name in names {
        let Some(Feature {
            kind: FeatureKind::Window { agg, input, window },
            ..
        }) = group.feature(name)
        else {
            return Err(FStoreError::new(
                crate::error::ErrorKind::Internal,
                format!("'{name}' is not a window feature of '{}'", group.name),
            )
            .into());
        };
        let input_col = input
            .as_ref()
            .map(|sql| window_input(sql, &mut inputs, &mut select));
        features.push(node::WindowFeature {
            agg: agg.clone(),
            input: input_col,
            window_micros: window.micros,
            output: output(name),
        });
    }
    let sql = format!(
        "SELECT {} FROM {}",
        select.join(", "),
        group.source.as_from()
    );
    let plan = state.create_logical_plan(&sql).await.map_err(|e| {
        FStoreError::new(
            crate::error::ErrorKind::of(&e),
            format!(
                "feature group '{}': {}",
                group.name,
                crate::error::user_message(&e)
            ),
        )
    })?;
    Ok((plan, features))
}

/// Feature groups and sets as an engine extension: their system tables, the table functions
/// `training_set`, `temporal_split` and `feature_set_versions`, the optimizer rule for their
/// time filters, the planner of their window nodes, and how the catalog plans a group.
pub struct FeaturesExtension;

/// Plans feature groups for the catalog ([`plan`]).
#[derive(Debug)]
struct GroupPlanner;

#[async_trait::async_trait]
impl crate::engine::catalog::FeatureGroupPlanner for GroupPlanner {
    async fn plan(&self, group: &FeatureGroup, session: &SessionState) -> Result<LogicalPlan> {
        plan(group, session).await
    }
}

#[async_trait::async_trait]
impl crate::engine::EngineExtension for FeaturesExtension {
    fn name(&self) -> &'static str {
        "feature-groups"
    }
    fn configure(
        &self,
        builder: datafusion::execution::session_state::SessionStateBuilder,
    ) -> Result<datafusion::execution::session_state::SessionStateBuilder> {
        Ok(builder.with_optimizer_rule(Arc::new(node::TimeBoundsRule)))
    }
    fn extension_planners(
        &self,
    ) -> Vec<Arc<dyn datafusion::physical_planner::ExtensionPlanner + Send + Sync>> {
        vec![Arc::new(exec::FeatureWindowPlanner)]
    }
    fn logical_codec(
        &self,
        _: &crate::engine::codec::CodecSession,
    ) -> Option<Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec>> {
        Some(Arc::new(codec::FeaturesLogicalCodec))
    }
    async fn register(&self, setup: &mut crate::engine::Setup<'_>) -> Result<()> {
        let registry = setup.registry;
        setup.system.register(Arc::new(catalog::FeatureGroupsTable));
        setup.system.register(Arc::new(catalog::FeaturesTable));
        setup.system.register(Arc::new(sets::LineageTable));
        setup.system.register(Arc::new(sets::FeatureSetsTable));
        setup.ctx.register_udtf(
            "feature_set_versions",
            Arc::new(sets::FeatureSetVersions {
                registry: Arc::clone(registry),
            }),
        );
        setup.ctx.register_udtf(
            "training_set",
            Arc::new(training::TrainingSet {
                registry: Arc::clone(registry),
            }),
        );
        setup
            .ctx
            .register_udtf("temporal_split", Arc::new(training::TemporalSplit));
        setup
            .catalog
            .set_feature_group_planner(Arc::new(GroupPlanner));
        Ok(())
    }
}
