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
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement, WriteOp};
use datafusion::sql::parser::Statement as DFStatement;
use object_store::ObjectStoreExt;
use tracing::warn;

use super::authorize::Reads;
use super::relations::count_of;
use super::settings::Scope;
use super::{FStoreStatement, ParsedStatement};
use crate::engine::Engine;
use crate::error::{ErrorKind, FStoreError};
use crate::principal::Principal;
use crate::registry::{Change, RelationKind};

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
#[derive(Clone)]
pub struct SqlSession<'e> {
    pub(super) engine: &'e Engine,
    pub(super) scope: Scope,
}

impl<'e> SqlSession<'e> {
    /// The embedded engine's executor (one user: `SET` changes the engine's context).
    pub fn new(engine: &'e Engine) -> Self {
        Self {
            engine,
            scope: Scope::Engine,
        }
    }

    /// An executor for a statement of a server session (see [`super::settings`]).
    pub fn in_scope(engine: &'e Engine, scope: Scope) -> Self {
        Self { engine, scope }
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

    /// Runs one statement (and records it in the audit log).
    pub async fn execute(
        &self,
        stmt: &ParsedStatement,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let audit = self.audit_start();
        let reads = match &stmt.statement {
            FStoreStatement::DataFusion(s) => self.reads_of(s),
            _ => Ok(Reads::default()),
        };
        let (result, mut objects) = match reads {
            Ok(reads) => (
                self.execute_unaudited(stmt, principal, &reads).await,
                reads.names(),
            ),
            Err(e) => (Err(e), vec![]),
        };
        objects.extend(super::audit::target_of(&stmt.statement));
        self.audit_statement(audit, principal, stmt.sql(), objects, &result);
        result
    }

    async fn execute_unaudited(
        &self,
        stmt: &ParsedStatement,
        principal: &Principal,
        reads: &Reads,
    ) -> Result<StatementResult> {
        self.refresh().await?;
        self.authorize(stmt, principal)?;
        match &stmt.statement {
            FStoreStatement::ShowFeatureGroups => self.rows(
                crate::features::catalog::show_feature_groups(&self.visible_state(principal))?,
            ),
            FStoreStatement::ShowFeatureSets => self.rows(
                crate::features::sets::show_feature_sets(&self.visible_state(principal))?,
            ),
            FStoreStatement::Access(a) => self.run_access(a, principal).await,
            FStoreStatement::Monitor(m) => self.run_monitoring(m, stmt.sql(), principal).await,
            FStoreStatement::CreateFeatureSet(c) => {
                let state = self.registry().state();
                let version =
                    crate::features::sets::resolve(c, &state, &self.state(), &principal.name)
                        .await?;
                // A set exposes its groups' rows: its creator must be able to read them.
                for g in version.groups.keys() {
                    let group = crate::registry::ObjectRef::new(
                        crate::registry::ObjectKind::FeatureGroup,
                        g,
                    );
                    self.require(principal, crate::registry::Privilege::Select, Some(&group))?;
                }
                self.registry()
                    .commit(principal, stmt.sql(), Change::CreateFeatureSet(version))
                    .await?;
                self.sync().await?;
                self.done(None)
            }
            FStoreStatement::ExportFeatureSet(e) => {
                self.check_location(&e.path, crate::sandbox::Access::Write, principal)?;
                if let Some((entities, _)) = &e.entities {
                    self.check_source(entities, principal)?;
                }
                let (summary, record) = crate::features::export::export(self, e).await?;
                // Recorded for lineage once the files are written.
                self.registry()
                    .commit(principal, stmt.sql(), Change::Exported(record))
                    .await?;
                self.sync().await?;
                self.rows(summary)
            }
            FStoreStatement::DescribeFeatureSet { reference } => {
                // `authorize` checked SELECT on the version it names.
                let state = self.registry().state();
                let set = state.feature_set(reference)?;
                let latest = state.feature_set(&set.name)?.version;
                self.rows(crate::features::sets::describe_feature_set(set, latest)?)
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
                // Before planning: table functions do work (and answer) while planned.
                self.check_reads(reads, principal)?;
                let plan = self.plan_datafusion(df_stmt).await?;
                self.run_plan(plan, stmt.sql(), principal, reads).await
            }
        }
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
    pub(super) fn missing_relation(
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
        reads: &Reads,
    ) -> Result<StatementResult> {
        let audit = self.audit_start();
        let result = self.run_plan(plan, text, principal, reads).await;
        self.audit_statement(audit, principal, text, reads.names(), &result);
        result
    }

    async fn run_plan(
        &self,
        plan: LogicalPlan,
        text: &str,
        principal: &Principal,
        reads: &Reads,
    ) -> Result<StatementResult> {
        // A session's own temporary table: no registry object, nothing to authorize.
        if let LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) = &plan
            && let Some(result) = self.drop_temporary(&cmd.name)
        {
            return result;
        }
        self.check_reads(reads, principal)?;
        self.check_plan(&plan, principal)?;
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
            LogicalPlan::Statement(Statement::SetVariable(s)) if !self.sets_engine(&s.variable) => {
                self.set_in_session(&s.variable, Some(&s.value))
            }
            LogicalPlan::Statement(Statement::ResetVariable(s)) if !self.sets_engine(&s.variable) => {
                self.set_in_session(&s.variable, None)
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
                    return self.rows(super::lookup::run(self, &direct, &[vec![]], &schema).await?);
                }
                let df = match plan {
                    // The session's settings: DataFusion's context would run the plan with
                    // the server's.
                    plan if self.has_own_settings()
                        && !matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) =>
                    {
                        DataFrame::new(self.state(), plan)
                    }
                    plan => self.ctx().execute_logical_plan(plan).await?,
                };
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

    pub(super) async fn create_feature_group(
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
        // A group exposes its source's rows: its creator must be able to read them.
        match &group.source {
            crate::registry::FeatureSource::Relation { name } => {
                self.check_source(name, principal)?
            }
            crate::registry::FeatureSource::Query { sql } => self.check_source(sql, principal)?,
        }
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

    pub(super) async fn add_transformation(
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

    pub(super) async fn alter_feature_set(
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

    pub(super) fn done(&self, affected: Option<u64>) -> Result<StatementResult> {
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

    pub(super) fn rows(&self, batch: RecordBatch) -> Result<StatementResult> {
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
