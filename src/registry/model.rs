//! What the registry records: definitions, change records, and the state they fold into.
//!
//! The state is a pure function of the change log: [`RegistryState::apply`] is the only way
//! state changes, whether a record was just committed here, written by another process, or
//! replayed at start-up. [`RegistryState::check`] validates a change against the state before
//! it is committed, so a record in the log always applies cleanly.

use std::collections::BTreeMap;

use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

use super::access::{Grant, Role};
use super::feature_group::{FeatureGroup, Transformation};
use super::feature_set::{EXPORTS_KEPT, ExportRecord, FeatureSetVersion, parse_set_ref};
use super::monitor::{Alert, AlertChannel, Claim, Monitor, MonitorRun, Notifications};
use super::online::{MaterializationRun, OnlineConfig, RUNS_KEPT};
use super::quality::{DriftBaseline, FeatureExpectations};
use super::relation::{DataFile, ExternalTable, ManagedTable, Relation, RelationKind, View};
use crate::error::FStoreError;

/// One committed change: the unit of the append-only log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChangeRecord {
    /// Position in the log, 1-based, no gaps.
    pub seq: u64,
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub committed_at: i64,
    /// Who made the change.
    pub principal: String,
    /// The statement that made it, as SQL.
    pub statement: String,
    pub change: Change,
}

/// A change to the catalog of definitions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// `CREATE [OR REPLACE] EXTERNAL TABLE`: data stays where it is.
    CreateExternalTable(ExternalTable),
    /// `CREATE TABLE … [AS …]`: data written as Parquet into the warehouse.
    CreateTable(ManagedTable),
    /// `INSERT INTO` a managed table: new data files. `table_created` identifies the table
    /// (its creating record), so files never land in a table re-created meanwhile.
    AppendFiles {
        table: String,
        table_created: u64,
        files: Vec<DataFile>,
    },
    /// `CREATE [OR REPLACE] VIEW`.
    CreateView(View),
    /// `DROP TABLE` / `DROP VIEW`.
    Drop {
        name: String,
        relation: RelationKind,
    },
    /// A login for the Flight SQL server (password stored as an argon2 PHC hash, never in
    /// clear, and never in the history's statement text).
    CreateUser(User),
    /// `CREATE [OR REPLACE] FEATURE GROUP`.
    CreateFeatureGroup { group: FeatureGroup, replace: bool },
    /// `DROP FEATURE GROUP`.
    DropFeatureGroup { name: String },
    /// `ALTER FEATURE GROUP … ADD TRANSFORMATION` (with its fitted parameters and the group's
    /// new output schema).
    AddTransformation {
        group: String,
        transformation: Transformation,
        schema: Schema,
    },
    /// `COMMENT ON FEATURE group.feature IS …` (None clears it).
    CommentOnFeature {
        group: String,
        feature: String,
        comment: Option<String>,
    },
    /// `CREATE FEATURE SET`: a new version of the named set (its `version` and `created_at`
    /// are assigned when the record is applied, from the log's order).
    CreateFeatureSet(FeatureSetVersion),
    /// `CREATE EXPECTATION ON FEATURE group.feature (…)`: adds or replaces the named
    /// expectations of the feature.
    CreateExpectation(FeatureExpectations),
    /// `DROP EXPECTATION ON FEATURE group.feature [(name, …)]`: the named ones, or all when
    /// `names` is empty.
    DropExpectation {
        group: String,
        feature: String,
        names: Vec<String>,
    },
    /// `SET DRIFT BASELINE FOR FEATURE SET …`: replaces the baseline of that set version.
    SetDriftBaseline(DriftBaseline),
    /// `ALTER FEATURE SET … SET ONLINE (…)`: adds or replaces the set's online config.
    SetOnline(OnlineConfig),
    /// `ALTER FEATURE SET … SET OFFLINE`.
    SetOffline { set: String },
    /// A materialization run finished (successfully or not).
    Materialized(MaterializationRun),
    /// `EXPORT FEATURE SET` wrote a set version's data.
    Exported(ExportRecord),
    /// `ALTER USER name PASSWORD '…'`: a new hash; the user's earlier tokens stop working.
    AlterUserPassword { name: String, password_hash: String },
    /// `DROP USER name`: the user, their grants and their tokens go.
    DropUser { name: String },
    /// `CREATE ROLE name`.
    CreateRole(Role),
    /// `DROP ROLE name`: the role, its grants and its memberships go.
    DropRole { name: String },
    /// `GRANT role TO user`.
    GrantRole { role: String, user: String },
    /// `REVOKE role FROM user`.
    RevokeRole { role: String, user: String },
    /// `GRANT privilege ON object TO grantee`.
    Grant(Grant),
    /// `REVOKE privilege ON object FROM grantee`.
    Revoke(Grant),
    /// `CREATE [OR REPLACE] ALERT CHANNEL`.
    CreateAlertChannel {
        channel: AlertChannel,
        replace: bool,
    },
    /// `DROP ALERT CHANNEL`.
    DropAlertChannel { name: String },
    /// `CREATE [OR REPLACE] MONITOR`.
    CreateMonitor { monitor: Monitor, replace: bool },
    /// `DROP MONITOR`.
    DropMonitor { name: String },
    /// `ALTER MONITOR … PAUSE | RESUME`.
    AlterMonitor { name: String, paused: bool },
    /// A server takes the run of a scheduled job due at `due` (µs): commits only if no
    /// claim of the job is as recent, so each period runs once across servers.
    ClaimRun {
        job: String,
        due: i64,
        server: String,
    },
    /// A monitor run finished: its metric values (alerts open and resolve when applied).
    MonitorRan(MonitorRun),
    /// A server takes attempt `attempt` of a notification's delivery to a channel.
    DeliveryAttempt {
        notification: String,
        channel: String,
        attempt: u32,
        server: String,
    },
    /// The outcome of a delivery attempt.
    DeliveryResult {
        notification: String,
        channel: String,
        attempt: u32,
        ok: bool,
        http_status: Option<u16>,
        error: Option<String>,
    },
}

/// A user who can log in to the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub name: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    pub admin: bool,
    /// Roles the user is a member of.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The sequence number of the last change of the user's credentials (creation or a new
    /// password): tokens carry it, and a token issued before it no longer authenticates.
    #[serde(default)]
    pub credentials: u64,
}

/// A relation and the sequence number of the last change to it (its version).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Versioned<T> {
    pub version: u64,
    /// Sequence number of the record that created it.
    pub created: u64,
    pub def: T,
}

/// One line of `fstore.history`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    pub seq: u64,
    pub committed_at: i64,
    pub principal: String,
    /// e.g. `CREATE TABLE`, `INSERT`, `DROP VIEW`.
    pub action: String,
    pub object_kind: String,
    pub object_name: String,
    pub statement: String,
}

/// The catalog of definitions after applying the log up to `seq`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RegistryState {
    pub seq: u64,
    pub relations: BTreeMap<String, Versioned<Relation>>,
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub feature_groups: BTreeMap<String, Versioned<FeatureGroup>>,
    /// Every version of every feature set, oldest first.
    #[serde(default)]
    pub feature_sets: BTreeMap<String, Vec<FeatureSetVersion>>,
    /// Expectations by `group.feature`.
    #[serde(default)]
    pub expectations: BTreeMap<String, FeatureExpectations>,
    /// Drift baselines by `set@version`.
    #[serde(default)]
    pub baselines: BTreeMap<String, DriftBaseline>,
    /// Online feature sets by name.
    #[serde(default)]
    pub online: BTreeMap<String, OnlineConfig>,
    /// The latest materialization runs per set, oldest first (at most [`RUNS_KEPT`]).
    #[serde(default)]
    pub materializations: BTreeMap<String, Vec<MaterializationRun>>,
    /// Roles by name (the built-in `admin` role is implicit).
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Granted privileges, in grant order, without duplicates.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The owner (creator) of each table, view, feature group and feature set, by
    /// [`ObjectRef::owner_key`].
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// The latest exports, oldest first (at most [`EXPORTS_KEPT`]).
    #[serde(default)]
    pub exports: Vec<ExportRecord>,
    /// Alert channels by name.
    #[serde(default)]
    pub alert_channels: BTreeMap<String, AlertChannel>,
    /// Monitors by name.
    #[serde(default)]
    pub monitors: BTreeMap<String, Monitor>,
    /// The latest runs per monitor, oldest first.
    #[serde(default)]
    pub monitor_runs: BTreeMap<String, Vec<MonitorRun>>,
    /// Alerts by [`super::monitor::alert_key`] (open ones, and the last resolved one).
    #[serde(default)]
    pub alerts: BTreeMap<String, Alert>,
    /// Notifications by id (pending ones and the newest finished ones).
    #[serde(default)]
    pub notifications: Notifications,
    /// The latest claim of each scheduled job.
    #[serde(default)]
    pub claims: BTreeMap<String, Claim>,
    pub history: Vec<HistoryEntry>,
}

impl RegistryState {
    /// Checks that `change` can be applied to this state.
    pub fn check(&self, change: &Change) -> Result<(), FStoreError> {
        match change {
            Change::CreateFeatureGroup { group, replace } => {
                if let Some(r) = self.relations.get(&group.name) {
                    return Err(FStoreError::already_exists(format!(
                        "{} '{}' already exists",
                        r.def.kind().as_str(),
                        group.name
                    )));
                }
                if self.feature_groups.contains_key(&group.name) && !replace {
                    return Err(FStoreError::already_exists(format!(
                        "feature group '{}' already exists",
                        group.name
                    )));
                }
                Ok(())
            }
            // Feature-set versions pin the definitions they read, so dropping a group
            // leaves them working.
            Change::DropFeatureGroup { name } => self.group(name).map(|_| ()),
            Change::CreateFeatureSet(set) => {
                if set.features.is_empty() {
                    return Err(FStoreError::invalid(format!(
                        "feature set '{}' has no features",
                        set.name
                    )));
                }
                if self.relations.contains_key(&set.name)
                    || self.feature_groups.contains_key(&set.name)
                {
                    return Err(FStoreError::already_exists(format!(
                        "'{}' is already a table, view or feature group",
                        set.name
                    )));
                }
                Ok(())
            }
            Change::AddTransformation {
                group,
                transformation,
                ..
            } => {
                let g = self.group(group)?;
                if g.feature(&transformation.feature).is_none() {
                    return Err(FStoreError::not_found(format!(
                        "feature '{}' not found in feature group '{group}'",
                        transformation.feature
                    )));
                }
                if g.schema.field_with_name(&transformation.output).is_ok() {
                    return Err(FStoreError::already_exists(format!(
                        "feature group '{group}' already has a column '{}'",
                        transformation.output
                    )));
                }
                Ok(())
            }
            Change::CommentOnFeature { group, feature, .. } => {
                let g = self.group(group)?;
                if !g.feature_names().contains(&feature.as_str()) {
                    return Err(FStoreError::not_found(format!(
                        "feature '{feature}' not found in feature group '{group}'"
                    )));
                }
                Ok(())
            }
            Change::CreateExpectation(e) => {
                let g = self.group(&e.group)?;
                if !g.feature_names().contains(&e.feature.as_str()) {
                    return Err(FStoreError::not_found(format!(
                        "feature '{}' not found in feature group '{}'",
                        e.feature, e.group
                    )));
                }
                super::quality::check_expectations(g, &e.feature, &e.expectations)
            }
            Change::DropExpectation {
                group,
                feature,
                names,
            } => {
                let key = format!("{group}.{feature}");
                let Some(existing) = self.expectations.get(&key) else {
                    return Err(FStoreError::not_found(format!(
                        "feature '{key}' has no expectations"
                    )));
                };
                for n in names {
                    if !existing.expectations.iter().any(|e| e.name() == n) {
                        return Err(FStoreError::not_found(format!(
                            "feature '{key}' has no expectation '{n}'"
                        )));
                    }
                }
                Ok(())
            }
            Change::SetDriftBaseline(b) => {
                self.feature_set(&format!("{}@{}", b.set, b.version))?;
                Ok(())
            }
            Change::SetOnline(c) => {
                self.feature_set(&format!("{}@{}", c.set, c.version))?;
                Ok(())
            }
            Change::SetOffline { set } => {
                if self.online.contains_key(set) {
                    Ok(())
                } else {
                    Err(FStoreError::not_found(format!(
                        "feature set '{set}' is not online"
                    )))
                }
            }
            // A run is a fact: it is recorded even if the set went offline meanwhile.
            Change::Materialized(_) => Ok(()),
            Change::Exported(e) => self
                .feature_set(&format!("{}@{}", e.set, e.version))
                .map(|_| ()),
            Change::CreateExternalTable(t) => {
                self.check_create(&t.name, t.replace, RelationKind::Table)
            }
            Change::CreateTable(t) => self.check_create(&t.name, t.replace, RelationKind::Table),
            Change::CreateView(v) => self.check_create(&v.name, v.replace, RelationKind::View),
            Change::AppendFiles {
                table,
                table_created,
                ..
            } => match self.relations.get(table) {
                Some(r) if matches!(r.def, Relation::Managed(_)) && r.created == *table_created => {
                    Ok(())
                }
                Some(r) if matches!(r.def, Relation::Managed(_)) => Err(FStoreError::new(
                    crate::error::ErrorKind::Conflict,
                    format!(
                        "table '{table}' was dropped and re-created while rows were being inserted"
                    ),
                )),
                Some(_) => Err(FStoreError::invalid(format!(
                    "cannot insert into '{table}': it is not a table managed by FStore"
                ))),
                None => Err(FStoreError::not_found(format!("table '{table}' not found"))),
            },
            Change::CreateUser(_)
            | Change::AlterUserPassword { .. }
            | Change::DropUser { .. }
            | Change::CreateRole(_)
            | Change::DropRole { .. }
            | Change::GrantRole { .. }
            | Change::RevokeRole { .. }
            | Change::Grant(_)
            | Change::Revoke(_) => self.check_access(change),
            Change::Drop { name, relation } => match self.relations.get(name) {
                Some(r) if r.def.kind() == *relation => {
                    if let Some(g) = self
                        .feature_groups
                        .values()
                        .find(|g| g.def.source.relation() == Some(name.as_str()))
                    {
                        return Err(FStoreError::invalid(format!(
                            "cannot drop {} '{name}': feature group '{}' reads it (drop the feature group first)",
                            relation.as_str(),
                            g.def.name
                        )));
                    }
                    Ok(())
                }
                Some(r) => Err(FStoreError::invalid(format!(
                    "'{name}' is a {}, not a {}",
                    r.def.kind().as_str(),
                    relation.as_str()
                ))),
                None => Err(FStoreError::not_found(format!(
                    "{} '{name}' not found",
                    relation.as_str()
                ))),
            },
            _ => self.check_monitoring(change),
        }
    }

    /// A feature-set version: `name` (the latest) or `name@version`.
    pub fn feature_set(&self, reference: &str) -> Result<&FeatureSetVersion, FStoreError> {
        let (name, version) = parse_set_ref(reference);
        let versions = self
            .feature_sets
            .get(name)
            .ok_or_else(|| FStoreError::not_found(format!("feature set '{name}' not found")))?;
        match version {
            None => versions.last(),
            Some(v) => versions.iter().find(|s| s.version == v),
        }
        .ok_or_else(|| {
            FStoreError::not_found(format!(
                "feature set '{name}' has no version {} (versions 1 to {})",
                version.unwrap_or(0),
                versions.len()
            ))
        })
    }

    /// The feature group called `name`, or NotFound.
    pub fn group(&self, name: &str) -> Result<&FeatureGroup, FStoreError> {
        self.feature_groups
            .get(name)
            .map(|g| &g.def)
            .ok_or_else(|| FStoreError::not_found(format!("feature group '{name}' not found")))
    }

    fn check_create(
        &self,
        name: &str,
        replace: bool,
        kind: RelationKind,
    ) -> Result<(), FStoreError> {
        if self.feature_groups.contains_key(name) {
            return Err(FStoreError::already_exists(format!(
                "feature group '{name}' already exists"
            )));
        }
        match self.relations.get(name) {
            None => Ok(()),
            Some(existing) if replace && existing.def.kind() == kind => Ok(()),
            Some(existing) => Err(FStoreError::already_exists(format!(
                "{} '{name}' already exists",
                existing.def.kind().as_str()
            ))),
        }
    }

    /// Applies a committed record. Records must arrive in sequence.
    pub fn apply(&mut self, rec: &ChangeRecord) -> Result<(), FStoreError> {
        if rec.seq != self.seq + 1 {
            return Err(FStoreError::new(
                crate::error::ErrorKind::Internal,
                format!(
                    "registry record {} applied at sequence {}",
                    rec.seq, self.seq
                ),
            ));
        }
        self.track_owners(rec);
        let (action, kind, name) = match &rec.change {
            Change::CreateExternalTable(t) => {
                self.put(&t.name, rec.seq, Relation::External(t.clone()));
                ("CREATE EXTERNAL TABLE", "table", t.name.clone())
            }
            Change::CreateTable(t) => {
                self.put(&t.name, rec.seq, Relation::Managed(t.clone()));
                ("CREATE TABLE", "table", t.name.clone())
            }
            Change::CreateView(v) => {
                self.put(&v.name, rec.seq, Relation::View(v.clone()));
                ("CREATE VIEW", "view", v.name.clone())
            }
            Change::AppendFiles { table, files, .. } => {
                if let Some(entry) = self.relations.get_mut(table)
                    && let Relation::Managed(m) = &mut entry.def
                {
                    m.files.extend(files.iter().cloned());
                    entry.version = rec.seq;
                }
                ("INSERT", "table", table.clone())
            }
            Change::CreateUser(_)
            | Change::AlterUserPassword { .. }
            | Change::DropUser { .. }
            | Change::CreateRole(_)
            | Change::DropRole { .. }
            | Change::GrantRole { .. }
            | Change::RevokeRole { .. }
            | Change::Grant(_)
            | Change::Revoke(_) => self.apply_access(rec),
            Change::CreateFeatureSet(set) => {
                let versions = self.feature_sets.entry(set.name.clone()).or_default();
                let mut v = set.clone();
                v.version = versions.len() as u64 + 1;
                v.created_at = rec.committed_at;
                versions.push(v);
                (
                    "CREATE FEATURE SET",
                    "feature_set",
                    format!("{}@{}", set.name, versions.len()),
                )
            }
            Change::CreateFeatureGroup { group, .. } => {
                // Expectations of features the new definition no longer has go with them.
                let names = group.feature_names();
                self.expectations
                    .retain(|_, e| e.group != group.name || names.contains(&e.feature.as_str()));
                self.feature_groups.insert(
                    group.name.clone(),
                    Versioned {
                        version: rec.seq,
                        created: rec.seq,
                        def: group.clone(),
                    },
                );
                ("CREATE FEATURE GROUP", "feature_group", group.name.clone())
            }
            Change::DropFeatureGroup { name } => {
                self.feature_groups.remove(name);
                self.expectations.retain(|_, e| e.group != *name);
                ("DROP FEATURE GROUP", "feature_group", name.clone())
            }
            Change::AddTransformation {
                group,
                transformation,
                schema,
            } => {
                if let Some(g) = self.feature_groups.get_mut(group) {
                    g.def.transformations.push(transformation.clone());
                    g.def.schema = schema.clone();
                    g.version = rec.seq;
                }
                ("ALTER FEATURE GROUP", "feature_group", group.clone())
            }
            Change::CommentOnFeature {
                group,
                feature,
                comment,
            } => {
                if let Some(g) = self.feature_groups.get_mut(group) {
                    if let Some(f) = g.def.features.iter_mut().find(|f| &f.name == feature) {
                        f.description = comment.clone();
                    }
                    g.version = rec.seq;
                }
                (
                    "COMMENT ON FEATURE",
                    "feature",
                    format!("{group}.{feature}"),
                )
            }
            Change::CreateExpectation(e) => {
                let key = format!("{}.{}", e.group, e.feature);
                self.expectations
                    .entry(key.clone())
                    .or_insert_with(|| FeatureExpectations {
                        group: e.group.clone(),
                        feature: e.feature.clone(),
                        expectations: vec![],
                    })
                    .merge(&e.expectations);
                ("CREATE EXPECTATION", "feature", key)
            }
            Change::DropExpectation {
                group,
                feature,
                names,
            } => {
                let key = format!("{group}.{feature}");
                if let Some(e) = self.expectations.get_mut(&key) {
                    if names.is_empty() {
                        e.expectations.clear();
                    } else {
                        e.expectations
                            .retain(|x| !names.iter().any(|n| n == x.name()));
                    }
                    if e.expectations.is_empty() {
                        self.expectations.remove(&key);
                    }
                }
                ("DROP EXPECTATION", "feature", key)
            }
            Change::SetOnline(c) => {
                let mut c = c.clone();
                c.since = rec.committed_at;
                self.online.insert(c.set.clone(), c.clone());
                (
                    "SET ONLINE",
                    "feature_set",
                    format!("{}@{}", c.set, c.version),
                )
            }
            Change::SetOffline { set } => {
                self.online.remove(set);
                ("SET OFFLINE", "feature_set", set.clone())
            }
            Change::Materialized(run) => {
                let runs = self.materializations.entry(run.set.clone()).or_default();
                runs.push(run.clone());
                if runs.len() > RUNS_KEPT {
                    runs.drain(..runs.len() - RUNS_KEPT);
                }
                (
                    "MATERIALIZE",
                    "feature_set",
                    format!("{}@{}", run.set, run.version),
                )
            }
            Change::Exported(e) => {
                let mut e = e.clone();
                e.at = rec.committed_at;
                let name = format!("{}@{} TO {}", e.set, e.version, e.path);
                self.exports.push(e);
                if self.exports.len() > EXPORTS_KEPT {
                    self.exports.drain(..self.exports.len() - EXPORTS_KEPT);
                }
                ("EXPORT", "feature_set", name)
            }
            Change::SetDriftBaseline(b) => {
                let key = format!("{}@{}", b.set, b.version);
                self.baselines.insert(key.clone(), b.clone());
                ("SET DRIFT BASELINE", "feature_set", key)
            }
            Change::Drop { name, relation } => {
                self.relations.remove(name);
                (
                    match relation {
                        RelationKind::Table => "DROP TABLE",
                        RelationKind::View => "DROP VIEW",
                    },
                    relation.as_str(),
                    name.clone(),
                )
            }
            _ => self.apply_monitoring(rec),
        };
        self.history.push(HistoryEntry {
            seq: rec.seq,
            committed_at: rec.committed_at,
            principal: rec.principal.clone(),
            action: action.to_string(),
            object_kind: kind.to_string(),
            object_name: name,
            statement: rec.statement.clone(),
        });
        self.seq = rec.seq;
        Ok(())
    }

    fn put(&mut self, name: &str, seq: u64, def: Relation) {
        self.relations.insert(
            name.to_string(),
            Versioned {
                version: seq,
                created: seq,
                def,
            },
        );
    }
}
