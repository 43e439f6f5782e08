//! Runs parsed statements.
//!
//! Statements that define things (`CREATE EXTERNAL TABLE`, `CREATE TABLE [AS]`, `INSERT`
//! into a managed table, `CREATE VIEW`, `DROP`) are validated, their data (if any) written
//! and made durable, and then committed to the registry as one change record; only then does
//! the statement return. Everything else is planned and executed by DataFusion unchanged.
//! Before each statement the engine picks up changes committed by other processes.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::common::{DFSchema, TableReference};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    CreateExternalTable, CreateMemoryTable, CreateView, DdlStatement, DmlStatement, LogicalPlan,
    WriteOp,
};
use datafusion::sql::parser::Statement as DFStatement;
use object_store::ObjectStoreExt;
use tracing::warn;

use super::{FStoreStatement, ParsedStatement};
use crate::engine::Engine;
use crate::engine::catalog::{resolved_locations, user_relation_name, view_from_plan};
use crate::error::{ErrorKind, FStoreError};
use crate::principal::Principal;
use crate::registry::{
    Change, DataFile, ExternalTable, ManagedTable, Relation, RelationKind, View,
};

/// Whether a statement produced rows to show or was a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    /// A query: its rows are the answer.
    Query,
    /// A command (DDL, DML); its DataFrame holds a `count` of affected rows when that makes
    /// sense, otherwise no rows.
    Command,
}

/// The result of one statement. Queries are lazy: nothing runs until the DataFrame is
/// collected or streamed.
#[derive(Debug)]
pub struct StatementResult {
    pub kind: ResultKind,
    pub df: DataFrame,
    /// Rows written or affected, for commands that write.
    pub affected: Option<u64>,
}

/// The statement executor: the SQL front bound to an engine. Every front runs statements
/// through it (the CLI, the `.slt` suite, Flight SQL), so a statement has one path; it is
/// where per-session settings and the one authorization point belong. It borrows the engine
/// and costs nothing to make per request.
#[derive(Clone, Copy)]
pub struct SqlSession<'e> {
    engine: &'e Engine,
}

impl<'e> SqlSession<'e> {
    pub fn new(engine: &'e Engine) -> Self {
        Self { engine }
    }
}

impl std::ops::Deref for SqlSession<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        self.engine
    }
}

impl SqlSession<'_> {
    /// Parses a SQL text into statements (nothing runs).
    pub fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>> {
        let max_depth = self.config().max_expression_depth;
        super::limits::check_size(sql)?;
        // FStore's parser, with every ASOF JOIN rewritten into SQL DataFusion can plan.
        let statements = crate::sql::asof::parse_sql(sql)?;
        for s in &statements {
            super::limits::check_depth(sql, s, max_depth)?;
        }
        Ok(statements)
    }

    /// Parses and runs every statement of `sql` in order. Commands take effect as they run;
    /// query results are returned unexecuted.
    pub async fn run_sql(&self, sql: &str, principal: &Principal) -> Result<Vec<StatementResult>> {
        let mut out = Vec::new();
        for stmt in self.parse(sql)? {
            out.push(self.execute(&stmt, principal).await?);
        }
        Ok(out)
    }

    /// Runs one statement.
    pub async fn execute(
        &self,
        stmt: &ParsedStatement,
        principal: &Principal,
    ) -> Result<StatementResult> {
        self.refresh().await?;
        match &stmt.statement {
            FStoreStatement::ShowFeatureGroups => self.rows(
                crate::features::catalog::show_feature_groups(&self.registry().state())?,
            ),
            FStoreStatement::ShowFeatureSets => self.rows(
                crate::features::sets::show_feature_sets(&self.registry().state())?,
            ),
            FStoreStatement::CreateFeatureSet(c) => {
                let state = self.registry().state();
                let version =
                    crate::features::sets::resolve(c, &state, &self.state(), &principal.name)
                        .await?;
                self.registry()
                    .commit(principal, stmt.sql(), Change::CreateFeatureSet(version))
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            FStoreStatement::ExportFeatureSet(e) => {
                let summary = crate::features::export::export(self, e).await?;
                self.rows(summary)
            }
            FStoreStatement::DescribeFeatureSet { reference } => {
                let state = self.registry().state();
                self.rows(crate::features::sets::describe_feature_set(
                    state.feature_set(reference)?,
                )?)
            }
            FStoreStatement::CreateFeatureGroup(c) => {
                self.create_feature_group(c, stmt.sql(), principal).await
            }
            FStoreStatement::AddTransformation(a) => {
                self.add_transformation(a, stmt.sql(), principal).await
            }
            FStoreStatement::DropFeatureGroup { name, if_exists } => {
                if *if_exists && !self.registry().state().feature_groups.contains_key(name) {
                    return self.done(None);
                }
                self.registry()
                    .commit(
                        principal,
                        stmt.sql(),
                        Change::DropFeatureGroup { name: name.clone() },
                    )
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            FStoreStatement::DescribeFeatureGroup { name } => {
                let state = self.registry().state();
                self.rows(crate::features::catalog::describe_feature_group(
                    state.group(name)?,
                )?)
            }
            FStoreStatement::CommentOnFeature {
                group,
                feature,
                comment,
            } => {
                let change = Change::CommentOnFeature {
                    group: group.clone(),
                    feature: feature.clone(),
                    comment: comment.clone(),
                };
                self.registry()
                    .commit(principal, stmt.sql(), change)
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            FStoreStatement::CreateExpectation(c) => {
                let state = self.registry().state();
                let (group, feature) = crate::quality::resolve_feature(&state, &c.feature)?;
                let expectations = crate::quality::expectations_of(&c.expectations)?;
                let change = Change::CreateExpectation(crate::registry::FeatureExpectations {
                    group,
                    feature,
                    expectations,
                });
                self.registry()
                    .commit(principal, stmt.sql(), change)
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            FStoreStatement::DropExpectation(d) => {
                let state = self.registry().state();
                let (group, feature) = crate::quality::resolve_feature(&state, &d.feature)?;
                for n in &d.names {
                    if !crate::registry::EXPECTATION_NAMES.contains(&n.as_str()) {
                        return Err(FStoreError::invalid(format!(
                            "unknown expectation '{n}'; expectations: {}",
                            crate::registry::EXPECTATION_NAMES.join(", ")
                        ))
                        .into());
                    }
                }
                if d.if_exists
                    && !state
                        .expectations
                        .contains_key(&format!("{group}.{feature}"))
                {
                    return self.done(None);
                }
                let change = Change::DropExpectation {
                    group,
                    feature,
                    names: d.names.clone(),
                };
                self.registry()
                    .commit(principal, stmt.sql(), change)
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            FStoreStatement::SetDriftBaseline(b) => {
                let state = self.registry().state();
                let set = state.feature_set(&b.set)?;
                let session = self.state();
                let baseline = crate::quality::drift::compute_baseline(
                    b,
                    set,
                    &session,
                    |dir, plan| async move {
                        let (files, rows) = self.write_data_file(&dir, plan).await?;
                        let file = files.into_iter().next().ok_or_else(|| {
                            FStoreError::new(ErrorKind::Internal, "baseline file not written")
                        })?;
                        Ok((file.path, rows))
                    },
                )
                .await?;
                let key = format!("{}@{}", baseline.set, baseline.version);
                let previous = state.baselines.get(&key).cloned();
                self.registry()
                    .commit(principal, stmt.sql(), Change::SetDriftBaseline(baseline))
                    .await?;
                self.sync().await?;
                // The replaced baseline's files are garbage now (best effort, like tables).
                for f in previous.iter().flat_map(|b| &b.features) {
                    if let crate::registry::BaselineSketch::Numeric { path, .. } = &f.sketch
                        && let Err(e) = self
                            .warehouse()
                            .store()
                            .delete(&self.warehouse().path(path))
                            .await
                    {
                        warn!(file = %path, error = %e, "could not delete a replaced baseline file");
                    }
                }
                self.done(None)
            }
            FStoreStatement::AlterFeatureSet(a) => {
                self.alter_feature_set(a, stmt.sql(), principal).await
            }
            FStoreStatement::RefreshOnline(r) => {
                let as_of = r
                    .as_of
                    .as_deref()
                    .map(crate::online::service::parse_time)
                    .transpose()?;
                let run = crate::online::service_of(self)?
                    .refresh(self, principal, &r.name, as_of, "refresh")
                    .await?;
                self.rows(crate::online::service::run_batch(&run)?)
            }
            FStoreStatement::DataFusion(df_stmt) => {
                self.execute_datafusion(df_stmt, stmt.sql(), principal)
                    .await
            }
        }
    }

    async fn execute_datafusion(
        &self,
        stmt: &DFStatement,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let plan = self.plan_datafusion(stmt).await?;
        self.execute_plan(plan, text, principal).await
    }

    /// Plans a DataFusion statement without running it (placeholders stay unbound).
    pub async fn plan_datafusion(&self, stmt: &DFStatement) -> Result<LogicalPlan> {
        let state = self.state();
        match state.statement_to_plan(stmt.clone()).await {
            Ok(plan) => Ok(plan),
            Err(e) => Err(self.missing_relation(&state, stmt).unwrap_or(e)),
        }
    }

    /// When a query or insert failed to plan, the relation it names that the catalog does
    /// not hold, as a NotFound error (the catalog, not the planner's wording, says so).
    fn missing_relation(
        &self,
        state: &datafusion::execution::SessionState,
        stmt: &DFStatement,
    ) -> Option<datafusion::error::DataFusionError> {
        use datafusion::sql::sqlparser::ast::Statement as Sql;
        let DFStatement::Statement(sql) = stmt else {
            return None;
        };
        if !matches!(
            sql.as_ref(),
            Sql::Query(_) | Sql::Insert(_) | Sql::Explain { .. }
        ) {
            return None;
        }
        let references = state.resolve_table_references(stmt).ok()?;
        // The references include table functions' names (`training_set(…)` is no table).
        let functions = state.table_functions();
        let missing = references.into_iter().find(|r| {
            let function = matches!(r, TableReference::Bare { table } if functions.contains_key(table.as_ref()));
            !function && !self.ctx().table_exist(r.clone()).unwrap_or(true)
        })?;
        let options = &state.config_options().catalog;
        let name = missing.resolve(&options.default_catalog, &options.default_schema);
        Some(FStoreError::not_found(format!("table '{name}' not found")).into())
    }

    /// Runs a planned statement (e.g. a prepared statement after binding its parameters):
    /// commands take effect now, queries are returned unexecuted. `text` is the statement's
    /// SQL, recorded in the registry history by commands.
    pub async fn execute_plan(
        &self,
        plan: LogicalPlan,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        match plan {
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
                self.create_external_table(*cmd, text, principal).await
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
                self.create_table(cmd, text, principal).await
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(cmd)) => {
                self.create_view(cmd, text, principal).await
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
                self.drop_relation(&cmd.name, RelationKind::Table, cmd.if_exists, text, principal)
                    .await
            }
            LogicalPlan::Ddl(DdlStatement::DropView(cmd)) => {
                self.drop_relation(&cmd.name, RelationKind::View, cmd.if_exists, text, principal)
                    .await
            }
            LogicalPlan::Ddl(
                DdlStatement::CreateCatalog(_)
                | DdlStatement::CreateCatalogSchema(_)
                | DdlStatement::DropCatalogSchema(_),
            ) => Err(FStoreError::unimplemented(format!(
                "FStore has one catalog ({}) whose user schema is '{}'; catalogs and schemas cannot be created or dropped",
                crate::engine::CATALOG,
                crate::engine::USER_SCHEMA
            ))
            .into()),
            LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)) && self.is_managed(&dml) => {
                self.insert(dml, text, principal).await
            }
            plan => {
                let kind = if is_command(&plan) {
                    ResultKind::Command
                } else {
                    ResultKind::Query
                };
                if kind == ResultKind::Query
                    && let Some(direct) = super::lookup::recognize(&plan)
                {
                    // One point lookup of an online feature set: answered from the store,
                    // the same way for every front (see `sql::lookup`).
                    let schema = Arc::new(plan.schema().as_arrow().clone());
                    return self.rows(super::lookup::run(self, &direct, &[], &schema).await?);
                }
                let df = self.ctx().execute_logical_plan(plan).await?;
                if kind == ResultKind::Command {
                    // Commands take effect when they are executed, not when they are fetched.
                    let batches = df.collect().await?;
                    let counted = batches.first().is_some_and(|b| {
                        b.num_columns() == 1 && b.schema().field(0).name() == "count"
                    });
                    return self.done(counted.then(|| count_of(&batches)));
                }
                Ok(StatementResult {
                    kind,
                    df,
                    affected: None,
                })
            }
        }
    }

    async fn create_feature_group(
        &self,
        c: &crate::features::statements::CreateFeatureGroup,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let state = self.registry().state();
        if let Some(r) = state.relations.get(&c.name) {
            return Err(FStoreError::already_exists(format!(
                "{} '{}' already exists",
                r.def.kind().as_str(),
                c.name
            ))
            .into());
        }
        if state.feature_groups.contains_key(&c.name) {
            if c.if_not_exists {
                return self.done(None);
            }
            if !c.or_replace {
                return Err(FStoreError::already_exists(format!(
                    "feature group '{}' already exists",
                    c.name
                ))
                .into());
            }
        }
        let session = self.state();
        let group = crate::features::define(c, &session).await?;
        // The whole plan must build now, not at the first query.
        crate::features::plan(&group, &session).await?;
        let change = Change::CreateFeatureGroup {
            group,
            replace: c.or_replace,
        };
        self.registry().commit(principal, text, change).await?;
        self.sync().await?;
        self.done(None)
    }

    async fn add_transformation(
        &self,
        a: &crate::features::statements::AddTransformation,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let group = self.registry().state().group(&a.group)?.clone();
        let session = self.state();
        let transformation = crate::features::transform::fit(a, &group, &session).await?;
        if group.schema.field_with_name(&transformation.output).is_ok() {
            return Err(FStoreError::already_exists(format!(
                "feature group '{}' already has a column '{}'",
                group.name, transformation.output
            ))
            .into());
        }
        // The new output schema is what the group's plan produces with the transformation.
        let mut next = group.clone();
        next.transformations.push(transformation.clone());
        let mut fields: Vec<arrow_schema::FieldRef> =
            next.schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            &transformation.output,
            DataType::Null,
            true,
        )));
        next.schema = Schema::new(fields);
        let plan = crate::features::plan(&next, &session).await?;
        let schema = plan.schema().as_arrow().clone();
        let schema = Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        let change = Change::AddTransformation {
            group: group.name.clone(),
            transformation,
            schema,
        };
        self.registry().commit(principal, text, change).await?;
        self.sync().await?;
        self.done(None)
    }

    async fn create_external_table(
        &self,
        mut cmd: CreateExternalTable,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = user_relation_name(&cmd.name)?;
        if cmd.temporary {
            return Err(FStoreError::unimplemented("temporary tables are not supported").into());
        }
        if self.exists_for_create(
            &name,
            cmd.if_not_exists,
            cmd.or_replace,
            RelationKind::Table,
        )? {
            return self.done(None);
        }
        cmd.locations = cmd
            .locations
            .iter()
            .map(|l| absolute_location(l))
            .collect::<Result<_>>()?;
        let declared_columns = !cmd.schema.fields().is_empty();
        let state = self.state();
        let factory = state
            .table_factories()
            .get(&cmd.file_type.to_uppercase())
            .ok_or_else(|| {
                FStoreError::invalid(format!(
                    "unsupported format '{}': use PARQUET, CSV, JSON or ARROW",
                    cmd.file_type
                ))
            })?;
        let provider = factory.create(&state, &cmd).await?;
        let schema = provider.schema();
        if schema.fields().is_empty() && !declared_columns {
            return Err(FStoreError::not_found(format!(
                "no {} files found at LOCATION '{}'",
                cmd.file_type,
                cmd.locations.join("', '")
            ))
            .into());
        }
        let locations = resolved_locations(&provider).unwrap_or_else(|| cmd.locations.clone());
        let change = Change::CreateExternalTable(ExternalTable {
            name,
            sql: text.to_string(),
            locations,
            schema: (*schema).clone(),
            replace: cmd.or_replace,
        });
        self.registry().commit(principal, text, change).await?;
        self.sync().await?;
        self.done(None)
    }

    async fn create_table(
        &self,
        cmd: CreateMemoryTable,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = user_relation_name(&cmd.name)?;
        if cmd.temporary {
            return Err(FStoreError::unimplemented("temporary tables are not supported").into());
        }
        if self.exists_for_create(
            &name,
            cmd.if_not_exists,
            cmd.or_replace,
            RelationKind::Table,
        )? {
            return self.done(Some(0));
        }
        let input = Arc::unwrap_or_clone(cmd.input);
        ensure_unique_columns(input.schema())?;
        let mut schema = input.schema().as_arrow().clone();
        // Planning tags (e.g. which table function produced the rows) are not table metadata.
        schema.metadata.retain(|k, _| !k.starts_with("fstore."));
        let dir = format!("tables/{}-{}", directory_slug(&name), short_id());
        let (files, rows) = self.write_data_file(&dir, input).await?;
        let previous = self
            .registry()
            .state()
            .relations
            .get(&name)
            .map(|r| r.def.clone());
        let change = Change::CreateTable(ManagedTable {
            name,
            schema,
            dir,
            files,
            replace: cmd.or_replace,
        });
        self.registry().commit(principal, text, change).await?;
        self.sync().await?;
        if let Some(old) = previous {
            self.delete_data(&old).await;
        }
        self.done(Some(rows))
    }

    async fn create_view(
        &self,
        cmd: CreateView,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = user_relation_name(&cmd.name)?;
        if cmd.temporary {
            return Err(FStoreError::unimplemented("temporary views are not supported").into());
        }
        self.exists_for_create(&name, false, cmd.or_replace, RelationKind::View)?;
        ensure_unique_columns(cmd.input.schema())?;
        let sql = cmd.definition.clone().unwrap_or_else(|| text.to_string());
        let replace = cmd.or_replace;
        // Validates the plan exactly as a restart will rebuild it.
        view_from_plan(LogicalPlan::Ddl(DdlStatement::CreateView(cmd)), &name)?;
        let change = Change::CreateView(View { name, sql, replace });
        self.registry().commit(principal, text, change).await?;
        self.sync().await?;
        self.done(None)
    }

    async fn drop_relation(
        &self,
        table: &datafusion::common::TableReference,
        kind: RelationKind,
        if_exists: bool,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = user_relation_name(table)?;
        let state = self.registry().state();
        let Some(existing) = state.relations.get(&name) else {
            if if_exists {
                return self.done(None);
            }
            return Err(
                FStoreError::not_found(format!("{} '{name}' not found", kind.as_str())).into(),
            );
        };
        let old = existing.def.clone();
        self.registry()
            .commit(
                principal,
                text,
                Change::Drop {
                    name,
                    relation: kind,
                },
            )
            .await?;
        self.sync().await?;
        self.delete_data(&old).await;
        self.done(None)
    }

    async fn insert(
        &self,
        dml: DmlStatement,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = user_relation_name(&dml.table_name)?;
        let WriteOp::Insert(op) = dml.op else {
            return Err(FStoreError::new(ErrorKind::Internal, "not an insert").into());
        };
        if op != InsertOp::Append {
            return Err(FStoreError::unimplemented(format!(
                "{} is not supported; use INSERT INTO or CREATE OR REPLACE TABLE",
                op.to_string().to_uppercase()
            ))
            .into());
        }
        self.append_to_managed(&name, Arc::unwrap_or_clone(dml.input), text, principal)
            .await
    }

    /// `CREATE [OR REPLACE] TABLE name AS <plan>` for a plan built by code (e.g. a bulk
    /// ingest over Flight SQL). Streams the plan's rows into the warehouse.
    pub async fn create_table_from_plan(
        &self,
        name: &str,
        plan: LogicalPlan,
        or_replace: bool,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        self.refresh().await?;
        let cmd = CreateMemoryTable {
            name: datafusion::common::TableReference::bare(name),
            constraints: Default::default(),
            input: Arc::new(plan),
            if_not_exists: false,
            or_replace,
            column_defaults: vec![],
            temporary: false,
        };
        self.create_table(cmd, text, principal).await
    }

    /// `INSERT INTO name <plan>` for a plan built by code: columns are matched by name and
    /// cast to the table's types; a column the table lacks is an error.
    pub async fn insert_plan(
        &self,
        name: &str,
        plan: LogicalPlan,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        self.refresh().await?;
        let state = self.registry().state();
        let Some(Relation::Managed(table)) = state.relations.get(name).map(|r| &r.def) else {
            return Err(FStoreError::not_found(format!("table '{name}' not found")).into());
        };
        let input_schema = plan.schema().clone();
        for f in input_schema.fields() {
            if table.schema.field_with_name(f.name()).is_err() {
                return Err(FStoreError::invalid(format!(
                    "table '{name}' has no column '{}'",
                    f.name()
                ))
                .into());
            }
        }
        let exprs = table
            .schema
            .fields()
            .iter()
            .map(|f| {
                let e = if input_schema.has_column_with_unqualified_name(f.name()) {
                    datafusion::prelude::cast(
                        datafusion::prelude::ident(f.name()),
                        f.data_type().clone(),
                    )
                } else {
                    datafusion::prelude::cast(
                        datafusion::prelude::lit(datafusion::common::ScalarValue::Null),
                        f.data_type().clone(),
                    )
                };
                e.alias(f.name())
            })
            .collect::<Vec<_>>();
        let projected = datafusion::logical_expr::LogicalPlanBuilder::from(plan)
            .project(exprs)?
            .build()?;
        self.append_to_managed(name, projected, text, principal)
            .await
    }

    async fn append_to_managed(
        &self,
        name: &str,
        input: LogicalPlan,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = name.to_string();
        let state = self.registry().state();
        let Some(Relation::Managed(table)) = state.relations.get(&name).map(|r| &r.def) else {
            return Err(FStoreError::not_found(format!("table '{name}' not found")).into());
        };
        let table_created = state.relations[&name].created;
        let (files, rows) = self.write_data_file(&table.dir, input).await?;
        if !files.is_empty() {
            let change = Change::AppendFiles {
                table: name,
                table_created,
                files,
            };
            self.registry().commit(principal, text, change).await?;
            self.sync().await?;
        }
        self.done(Some(rows))
    }

    fn is_managed(&self, dml: &DmlStatement) -> bool {
        let Ok(name) = user_relation_name(&dml.table_name) else {
            return false;
        };
        matches!(
            self.registry().state().relations.get(&name).map(|r| &r.def),
            Some(Relation::Managed(_))
        )
    }

    /// Returns true when the statement is a no-op (`IF NOT EXISTS` on an existing name), and
    /// fails when the name is taken and the statement may not replace it.
    fn exists_for_create(
        &self,
        name: &str,
        if_not_exists: bool,
        or_replace: bool,
        kind: RelationKind,
    ) -> Result<bool> {
        let state = self.registry().state();
        let Some(existing) = state.relations.get(name) else {
            return Ok(false);
        };
        if if_not_exists && !or_replace {
            return Ok(true);
        }
        if or_replace && existing.def.kind() == kind {
            return Ok(false);
        }
        Err(FStoreError::already_exists(format!(
            "{} '{name}' already exists",
            existing.def.kind().as_str()
        ))
        .into())
    }

    /// Writes the result of `plan` as one Parquet file under `dir` and makes it durable.
    /// Returns the file (none when the result is empty) and the number of rows.
    pub(crate) async fn write_data_file(
        &self,
        dir: &str,
        plan: LogicalPlan,
    ) -> Result<(Vec<DataFile>, u64)> {
        let rel = format!("{dir}/part-{}.parquet", uuid::Uuid::new_v4());
        let url = self.warehouse().url_of(&rel);
        let df = DataFrame::new(self.state(), plan);
        let written = df
            .write_parquet(
                &url,
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await?;
        let rows = count_of(&written);
        let path = self.warehouse().path(&rel);
        match self.warehouse().store().head(&path).await {
            Ok(meta) => {
                self.warehouse().sync(&rel)?;
                Ok((
                    vec![DataFile {
                        path: rel,
                        size: meta.size,
                        rows,
                    }],
                    rows,
                ))
            }
            Err(object_store::Error::NotFound { .. }) if rows == 0 => Ok((vec![], 0)),
            Err(e) => Err(FStoreError::unavailable(format!(
                "cannot write {url}: {}",
                crate::warehouse::describe_store_error(&e)
            ))
            .into()),
        }
    }

    /// Deletes the data files of a managed table that is no longer defined (best effort: a
    /// leftover file is garbage, never visible data).
    async fn delete_data(&self, old: &Relation) {
        let Relation::Managed(t) = old else {
            return;
        };
        for f in &t.files {
            if let Err(e) = self
                .warehouse()
                .store()
                .delete(&self.warehouse().path(&f.path))
                .await
            {
                warn!(file = %f.path, error = %e, "could not delete data file of dropped table");
            }
        }
    }

    async fn alter_feature_set(
        &self,
        a: &crate::online::statements::AlterFeatureSet,
        sql: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        use crate::online::statements::AlterFeatureSet;
        let state = self.registry().state();
        match a {
            AlterFeatureSet::SetOnline { reference, options } => {
                let set = state.feature_set(reference)?;
                crate::online::materialize::set_groups(&state, set)?;
                let mut config = crate::registry::OnlineConfig {
                    set: set.name.clone(),
                    version: set.version,
                    update_frequency: None,
                    cache_ttl: None,
                    since: 0,
                };
                for (key, value) in options {
                    let length = if value.is_empty() {
                        None
                    } else {
                        Some(crate::features::duration_micros(value, key)?)
                    };
                    match key.as_str() {
                        "update_frequency" => {
                            // Every run is a registry record: a schedule faster than this
                            // would flood the log (and no refresh can keep up with it).
                            if let Some(l) = &length
                                && l.micros < MIN_UPDATE_FREQUENCY_MICROS
                            {
                                return Err(FStoreError::invalid(format!(
                                    "update_frequency '{value}' is shorter than the minimum of 1 second"
                                ))
                                .into());
                            }
                            config.update_frequency = length
                        }
                        "cache_ttl" => config.cache_ttl = length,
                        other => {
                            return Err(FStoreError::invalid(format!(
                                "ALTER FEATURE SET … SET ONLINE: unknown option '{other}'; options: update_frequency, cache_ttl"
                            ))
                            .into());
                        }
                    }
                }
                self.registry()
                    .commit(principal, sql, Change::SetOnline(config))
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            AlterFeatureSet::SetOffline { name } => {
                self.registry()
                    .commit(principal, sql, Change::SetOffline { set: name.clone() })
                    .await?;
                self.sync().await?;
                if let Err(e) = crate::online::service_of(self)?.store().remove(name).await {
                    warn!(set = %name, error = %e, "could not remove the online copy of a set taken offline");
                }
                self.done(None)
            }
        }
    }

    fn done(&self, affected: Option<u64>) -> Result<StatementResult> {
        let df = match affected {
            Some(n) => self.ctx().read_batch(count_batch(n))?,
            None => self.ctx().read_empty()?,
        };
        Ok(StatementResult {
            kind: ResultKind::Command,
            df,
            affected,
        })
    }

    fn rows(&self, batch: RecordBatch) -> Result<StatementResult> {
        Ok(StatementResult {
            kind: ResultKind::Query,
            df: self.ctx().read_batch(batch)?,
            affected: None,
        })
    }
}

/// The shortest `update_frequency` of an online feature set.
const MIN_UPDATE_FREQUENCY_MICROS: i64 = 1_000_000;

/// Whether a plan is a command (it acts when executed) rather than a query (it returns rows).
pub fn is_command(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
    )
}

/// The one-row `count` result of statements that write rows.
pub fn count_batch(n: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(vec![n]))])
        .expect("count batch matches its schema")
}

fn count_of(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .flat_map(|a| a.iter().flatten())
        .sum()
}

fn ensure_unique_columns(schema: &DFSchema) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name()) {
            return Err(FStoreError::invalid(format!(
                "column '{}' appears more than once; give each column a distinct name (AS …)",
                f.name()
            ))
            .into());
        }
    }
    Ok(())
}

/// Local paths are stored absolute, so that a restart from another directory reads the same
/// files. A local path that does not exist is an error now, not an empty table later.
fn absolute_location(loc: &str) -> Result<String> {
    if loc.contains("://") {
        return Ok(loc.to_string());
    }
    let abs = std::path::absolute(loc)
        .map_err(|e| FStoreError::invalid(format!("invalid LOCATION '{loc}': {e}")))?;
    let glob_free = abs
        .ancestors()
        .find(|p| !p.to_string_lossy().contains(['*', '?', '[']))
        .unwrap_or(&abs);
    if !glob_free.exists() {
        return Err(FStoreError::not_found(format!(
            "LOCATION '{loc}' does not exist ({})",
            glob_free.display()
        ))
        .into());
    }
    let mut s = abs.to_string_lossy().to_string();
    if loc.ends_with('/') && !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

/// A managed table's data directory name: the table's name reduced to letters, digits and
/// `_` (at most 64 of them), so that no name (`../x`, `a/b`, `%2e%2e`) reaches outside
/// `tables/`. The directory is recorded in the registry; it need not spell the name.
fn directory_slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if slug.is_empty() { "t".into() } else { slug }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
