//! Statements on relations: external tables, managed tables (their Parquet files are
//! written and made durable before the registry records them), views, `INSERT` and `DROP`.
//! Each is committed to the registry as one change record before it returns.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::common::DFSchema;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    CreateExternalTable, CreateMemoryTable, CreateView, DdlStatement, DmlStatement, LogicalPlan,
    WriteOp,
};
use object_store::ObjectStoreExt;
use tracing::warn;

use crate::engine::catalog::{resolved_locations, user_relation_name, view_from_plan};
use crate::error::{ErrorKind, FStoreError};
use crate::principal::Principal;
use crate::registry::{
    Change, DataFile, ExternalTable, ManagedTable, Relation, RelationKind, View,
};

use super::exec::{SqlSession, StatementResult};

impl SqlSession<'_> {
    pub(super) async fn create_external_table(
        &self,
        mut cmd: CreateExternalTable,
        text: &str,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let name = user_relation_name(&cmd.name)?;
        if cmd.temporary {
            return Err(FStoreError::unimplemented("temporary tables are not supported").into());
        }
        for location in &cmd.locations {
            self.check_location(location, crate::sandbox::Access::Read, principal)?;
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

    pub(super) async fn create_table(
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

    pub(super) async fn create_view(
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

    pub(super) async fn drop_relation(
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

    pub(super) async fn insert(
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

    pub(super) async fn append_to_managed(
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

    pub(super) fn is_managed(&self, dml: &DmlStatement) -> bool {
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
    pub(super) fn exists_for_create(
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
    pub(super) async fn delete_data(&self, old: &Relation) {
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
}

pub(super) fn count_of(batches: &[RecordBatch]) -> u64 {
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
