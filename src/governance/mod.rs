//! Governance: who may do what, seen as data. The rules live with the registry
//! (`registry::access`), the statements in `sql::access`, the one authorization point in
//! `sql::authorize`; this area contributes the system tables that show them:
//!
//! - `fstore.users`: every login (name, whether it administers the server, its roles) — never
//!   a password hash;
//! - `fstore.roles`: every role and its members (the built-in `admin` role included);
//! - `fstore.grants`: every granted privilege, and every object's owner (privilege `OWNER`).

pub mod audit;
pub mod lineage;
pub mod openlineage;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use datafusion::error::Result;

use crate::engine::{EngineExtension, Setup};
use crate::providers::system::SystemTable;
use crate::registry::{ADMIN_ROLE, RegistryState};

/// Registers the governance system tables and `lineage`, and sends OpenLineage events.
#[derive(Default)]
pub struct GovernanceExtension {
    emitter: std::sync::OnceLock<Option<openlineage::Emitter>>,
}

#[async_trait]
impl EngineExtension for GovernanceExtension {
    fn name(&self) -> &'static str {
        "governance"
    }
    async fn register(&self, setup: &mut Setup<'_>) -> Result<()> {
        let seq = setup.registry.state().seq;
        let _ = self
            .emitter
            .set(openlineage::Emitter::new(&setup.config.lineage, seq));
        let audit = Arc::new(audit::AuditLog::new(
            setup.warehouse.clone(),
            setup.config.audit.retention_days,
        ));
        audit.start();
        setup.system.register_provider(
            "audit",
            Arc::new(audit::AuditTable::new(setup.warehouse.clone())),
        );
        setup.provide(audit);
        setup.system.register(Arc::new(UsersTable));
        setup.system.register(Arc::new(RolesTable));
        setup.system.register(Arc::new(GrantsTable));
        setup.ctx.register_udtf(
            "lineage",
            Arc::new(lineage::LineageFunction {
                registry: Arc::clone(setup.registry),
            }),
        );
        Ok(())
    }
    async fn sync(&self, _engine: &crate::engine::Engine, state: &RegistryState) -> Result<()> {
        if let Some(Some(e)) = self.emitter.get() {
            e.sync(state);
        }
        Ok(())
    }
}

fn strings<I: IntoIterator<Item = Option<String>>>(values: I) -> ArrayRef {
    Arc::new(values.into_iter().collect::<StringArray>())
}

/// `fstore.users`.
#[derive(Debug)]
pub struct UsersTable;

impl SystemTable for UsersTable {
    fn name(&self) -> &'static str {
        "users"
    }
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("admin", DataType::Boolean, false),
            Field::new("roles", DataType::Utf8, false),
        ]))
    }
    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let users: Vec<_> = state.users.values().collect();
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                strings(users.iter().map(|u| Some(u.name.clone()))),
                Arc::new(
                    users
                        .iter()
                        .map(|u| Some(state.is_admin(&u.name)))
                        .collect::<BooleanArray>(),
                ),
                strings(users.iter().map(|u| Some(u.roles.join(", ")))),
            ],
        )?)
    }
}

/// `fstore.roles`.
#[derive(Debug)]
pub struct RolesTable;

impl SystemTable for RolesTable {
    fn name(&self) -> &'static str {
        "roles"
    }
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("built_in", DataType::Boolean, false),
            Field::new("members", DataType::Utf8, false),
        ]))
    }
    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let mut roles: Vec<(String, bool)> = vec![(ADMIN_ROLE.to_string(), true)];
        roles.extend(state.roles.keys().map(|r| (r.clone(), false)));
        let members = |role: &str| {
            state
                .users
                .values()
                .filter(|u| u.roles.iter().any(|r| r == role))
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                strings(roles.iter().map(|r| Some(r.0.clone()))),
                Arc::new(roles.iter().map(|r| Some(r.1)).collect::<BooleanArray>()),
                strings(roles.iter().map(|r| Some(members(&r.0)))),
            ],
        )?)
    }
}

/// grantee, privilege, object kind, object name, version.
type GrantRow = (String, String, Option<String>, Option<String>, Option<u64>);

/// `fstore.grants`.
#[derive(Debug)]
pub struct GrantsTable;

impl SystemTable for GrantsTable {
    fn name(&self) -> &'static str {
        "grants"
    }
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("grantee", DataType::Utf8, false),
            Field::new("privilege", DataType::Utf8, false),
            Field::new("object_kind", DataType::Utf8, true),
            Field::new("object_name", DataType::Utf8, true),
            Field::new("version", DataType::UInt64, true),
        ]))
    }
    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let mut rows: Vec<GrantRow> = state
            .owners
            .iter()
            .filter_map(|(key, owner)| {
                let (kind, name) = key.split_once(':')?;
                Some((
                    owner.clone(),
                    "OWNER".to_string(),
                    Some(kind.to_string()),
                    Some(name.to_string()),
                    None,
                ))
            })
            .collect();
        rows.extend(state.grants.iter().map(|g| {
            (
                g.grantee.clone(),
                g.privilege.as_sql().to_string(),
                g.object.as_ref().map(|o| o.kind.as_str().to_string()),
                g.object.as_ref().map(|o| o.name.clone()),
                g.object.as_ref().and_then(|o| o.version),
            )
        }));
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                strings(rows.iter().map(|r| Some(r.0.clone()))),
                strings(rows.iter().map(|r| Some(r.1.clone()))),
                strings(rows.iter().map(|r| r.2.clone())),
                strings(rows.iter().map(|r| r.3.clone())),
                Arc::new(rows.iter().map(|r| r.4).collect::<UInt64Array>()),
            ],
        )?)
    }
}
