//! The authorization point of the statement executor: every front runs statements through
//! [`SqlSession`], so what is checked here is checked for the CLI, the `.slt` suite and Flight
//! SQL alike, plain or prepared. Three kinds of checks:
//!
//! - **Privileges** (see `registry::access` for the rules). What a query reads is derived from
//!   its text ([`SqlSession::reads_of`]): the tables, views and feature groups it names (CTE
//!   names excluded), and the objects its table functions read from their arguments
//!   (`training_set` every group and set of its list and its entity table, `validate` and
//!   `check_drift` their feature set, `online_features` its set for `READ ONLINE`, the
//!   sources of `select_features`, `feature_correlation`, `temporal_split`,
//!   `window_features[_at]` — a source given as query text is checked like a query). Views
//!   and feature groups run with their definer's rights: reading one needs `SELECT` on it,
//!   not on what it reads. The reads of a prepared statement are derived once and checked
//!   again at every execution, against the privileges of that moment. Writes are checked on
//!   the plan ([`SqlSession::check_plan`]) and FStore statements by kind
//!   ([`SqlSession::authorize`]): creating needs `CREATE`, replacing, altering, dropping and
//!   inserting need ownership.
//! - **The sandbox** (see `crate::sandbox`) on every location a statement names.
//! - **Server-wide state**: `SET`/`RESET` and SQL-level `PREPARE`/`EXECUTE` (whose names are
//!   shared by every session) are for administrators.
//!
//! A denied statement is `PERMISSION_DENIED`, names the privilege and the object, and writes
//! nothing (every check runs before anything is written).

use std::ops::ControlFlow;

use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, ObjectName, TableFactor, Value, Visit, Visitor,
};

use super::exec::SqlSession;
use super::settings::Scope;
use super::{FStoreStatement, ParsedStatement};
use crate::engine::{CATALOG, USER_SCHEMA};
use crate::error::FStoreError;
use crate::principal::Principal;
use crate::registry::{ObjectKind, ObjectRef, Privilege, RegistryState};
use crate::sandbox::{self, Access};

/// How deep query texts given to table functions are followed.
const MAX_SOURCE_DEPTH: usize = 4;

/// What a statement reads: checked against the principal's privileges at each execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reads(pub Vec<(Privilege, ObjectRef)>);

impl Reads {
    /// The objects read, as `kind:name[@version]` (for the audit log).
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(_, o)| o.label()).collect()
    }

    fn add(&mut self, privilege: Privilege, object: ObjectRef) {
        if !self.0.iter().any(|(p, o)| *p == privilege && *o == object) {
            self.0.push((privilege, object));
        }
    }
}

impl SqlSession<'_> {
    /// Whether `principal` administers this server: trusted, or an admin in the registry.
    pub fn is_admin(&self, principal: &Principal) -> bool {
        principal.trusted || self.registry().state().is_admin(&principal.name)
    }

    /// Checks that `principal` may `access` `location` (the sandbox).
    pub fn check_location(
        &self,
        location: &str,
        access: Access,
        principal: &Principal,
    ) -> Result<()> {
        sandbox::check(
            location,
            access,
            self.is_admin(principal),
            self.config(),
            self.warehouse().url(),
        )
    }

    /// `PERMISSION_DENIED` unless `principal` holds `privilege` on `object` (`None`: the
    /// global privilege).
    pub fn require(
        &self,
        principal: &Principal,
        privilege: Privilege,
        object: Option<&ObjectRef>,
    ) -> Result<()> {
        require_in(&self.registry().state(), principal, privilege, object)
    }

    /// `PERMISSION_DENIED` unless `principal` owns `object` (or administers the server).
    pub fn require_owner(
        &self,
        principal: &Principal,
        object: &ObjectRef,
        what: &str,
    ) -> Result<()> {
        let state = self.registry().state();
        if principal.trusted || state.owns(&principal.name, object) {
            return Ok(());
        }
        Err(FStoreError::permission_denied(format!(
            "permission denied: {what} {object} needs its owner ({}) or an administrator; '{principal}' is neither",
            state.owner_of(object).unwrap_or("unknown")
        ))
        .into())
    }

    /// Checks every read of a statement (against one snapshot of the registry).
    pub fn check_reads(&self, reads: &Reads, principal: &Principal) -> Result<()> {
        if reads.0.is_empty() || principal.trusted {
            return Ok(());
        }
        let state = self.registry().state();
        for (privilege, object) in &reads.0 {
            require_in(&state, principal, *privilege, Some(object))?;
        }
        Ok(())
    }

    /// Checks an online lookup answered without a plan (`sql::lookup`): `READ ONLINE` on the
    /// set version it reads.
    pub fn check_lookup(
        &self,
        lookup: &super::lookup::DirectLookup,
        principal: &Principal,
    ) -> Result<()> {
        if principal.trusted {
            return Ok(());
        }
        let target = &lookup.target;
        let set = ObjectRef::set_version(&target.set, target.version);
        self.require(principal, Privilege::ReadOnline, Some(&set))
    }

    /// What a DataFusion statement reads (see the module documentation).
    pub fn reads_of(&self, stmt: &DFStatement) -> Result<Reads> {
        let mut reads = Reads::default();
        let state = self.registry().state();
        self.collect_reads(stmt, &state, &mut reads, 0)?;
        Ok(reads)
    }

    fn collect_reads(
        &self,
        stmt: &DFStatement,
        state: &RegistryState,
        reads: &mut Reads,
        depth: usize,
    ) -> Result<()> {
        let session = self.state();
        let functions = session.table_functions();
        for r in session.resolve_table_references(stmt)? {
            let function = matches!(&r, TableReference::Bare { table } if functions.contains_key(table.as_ref()));
            // The session's own temporary table shadows a warehouse table of its name.
            let temporary =
                matches!(&r, TableReference::Bare { table } if self.is_temporary(table));
            if !function
                && !temporary
                && let Some(o) = object_of(state, &r)
            {
                reads.add(Privilege::Select, o);
            }
            // The audit log (everyone's statements) and the monitoring results (values of
            // every monitored set) are for administrators, or whom they grant them to.
            if let Some(table) = restricted_system_table(&r) {
                reads.add(
                    Privilege::Select,
                    ObjectRef::new(ObjectKind::Table, format!("fstore.{table}")),
                );
            }
        }
        let mut calls = Calls::default();
        match stmt {
            DFStatement::Statement(s) => {
                let _ = s.visit(&mut calls);
            }
            DFStatement::CopyTo(c) => {
                if let CopyToSource::Query(q) = &c.source {
                    let _ = q.visit(&mut calls);
                }
            }
            DFStatement::Explain(e) => {
                return self.collect_reads(&e.statement, state, reads, depth);
            }
            DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
        }
        for (name, args) in calls.0 {
            self.function_reads(&name, &args, state, reads, depth)?;
        }
        Ok(())
    }

    /// The reads of one table-function call, from its literal arguments.
    fn function_reads(
        &self,
        name: &str,
        args: &[Option<String>],
        state: &RegistryState,
        reads: &mut Reads,
        depth: usize,
    ) -> Result<()> {
        let arg = |i: usize| args.get(i).cloned().flatten();
        let set = |reads: &mut Reads, privilege: Privilege, reference: Option<String>| {
            if let Some(r) = reference
                && let Ok(v) = state.feature_set(&r)
            {
                reads.add(privilege, ObjectRef::set_version(&v.name, v.version));
            }
        };
        let mut sources = vec![];
        match name {
            "training_set" => {
                for item in arg(0).iter().flat_map(|l| l.split(',')) {
                    let item = item.trim();
                    let group = item.split_once(':').map_or(item, |(g, _)| g).trim();
                    if state.feature_groups.contains_key(group) {
                        reads.add(
                            Privilege::Select,
                            ObjectRef::new(ObjectKind::FeatureGroup, group),
                        );
                    } else {
                        set(reads, Privilege::Select, Some(item.to_string()));
                    }
                }
                sources.push(arg(1));
            }
            "validate" | "feature_set_versions" => set(reads, Privilege::Select, arg(0)),
            "check_drift" => {
                set(reads, Privilege::Select, arg(0));
                sources.push(arg(1));
            }
            "online_features" => set(reads, Privilege::ReadOnline, arg(0)),
            // A monitor's values are its target's data.
            "monitor_history" => {
                if let Some(m) = arg(0).and_then(|n| state.monitors.get(&n).cloned()) {
                    match m.target {
                        crate::registry::MonitorTarget::FeatureSet { name, version } => set(
                            reads,
                            Privilege::Select,
                            Some(match version {
                                Some(v) => format!("{name}@{v}"),
                                None => name,
                            }),
                        ),
                        crate::registry::MonitorTarget::FeatureGroup { name } => reads.add(
                            Privilege::Select,
                            ObjectRef::new(ObjectKind::FeatureGroup, name),
                        ),
                    }
                }
            }
            // Lineage shows what feeds an object: reading it needs SELECT on the object.
            "lineage" => match arg(0) {
                Some(o) if state.relations.contains_key(&o) => {
                    reads.add(Privilege::Select, ObjectRef::new(ObjectKind::Table, o))
                }
                Some(o) if state.feature_groups.contains_key(&o) => reads.add(
                    Privilege::Select,
                    ObjectRef::new(ObjectKind::FeatureGroup, o),
                ),
                o => set(reads, Privilege::Select, o),
            },
            "temporal_split" | "select_features" | "feature_correlation" | "window_features" => {
                sources.push(arg(0))
            }
            "window_features_at" => {
                sources.push(arg(0));
                sources.push(arg(3));
            }
            _ => {}
        }
        for source in sources.into_iter().flatten() {
            self.source_reads(&source, state, reads, depth + 1)?;
        }
        Ok(())
    }

    /// Checks that `principal` may read a source given as a relation name or a query text
    /// (a feature group's source, an export's entity table).
    pub fn check_source(&self, source: &str, principal: &Principal) -> Result<()> {
        if self.is_admin(principal) {
            return Ok(());
        }
        let mut reads = Reads::default();
        self.source_reads(source, &self.registry().state(), &mut reads, 1)?;
        self.check_reads(&reads, principal)
    }

    /// The reads of a table function's source: a relation name, or a query text.
    fn source_reads(
        &self,
        source: &str,
        state: &RegistryState,
        reads: &mut Reads,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_SOURCE_DEPTH {
            return Err(FStoreError::invalid(
                "query texts nested too deeply in table-function arguments",
            )
            .into());
        }
        // Exactly what the table functions plan (a name is quoted, so case is kept).
        let sql = crate::features::training::relation_or_query(source);
        // A source that does not parse is reported by the function itself when it plans.
        let Ok(statements) = super::FStoreParser::parse_sql(&sql) else {
            return Ok(());
        };
        for s in statements {
            match &s.statement {
                FStoreStatement::DataFusion(stmt) => {
                    self.collect_reads(stmt, state, reads, depth)?
                }
                _ => {
                    return Err(FStoreError::invalid(
                        "a table function's source is a relation name or a query",
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Checks what a plan does: every location it writes (`COPY … TO`, anywhere in the
    /// plan, e.g. under `EXPLAIN ANALYZE`), the objects it creates, replaces, drops or
    /// writes to, and settings it changes.
    pub fn check_plan(&self, plan: &LogicalPlan, principal: &Principal) -> Result<()> {
        let mut result = Ok(());
        plan.apply(|node| {
            result = self.check_node(node, principal);
            Ok(match result {
                Ok(()) => TreeNodeRecursion::Continue,
                Err(_) => TreeNodeRecursion::Stop,
            })
        })?;
        result
    }

    fn check_node(&self, node: &LogicalPlan, principal: &Principal) -> Result<()> {
        let admin_only = |what: &str| -> Result<()> {
            if self.is_admin(principal) {
                Ok(())
            } else {
                Err(FStoreError::permission_denied(format!(
                    "{what}: only an administrator may run it"
                ))
                .into())
            }
        };
        // The registry is read only for the nodes that create something (not for every node
        // of every query plan).
        let create_or_replace = |name: &str| -> Result<()> {
            let existing = ObjectRef::new(ObjectKind::Table, name);
            if self.registry().state().relations.contains_key(name) {
                self.require_owner(principal, &existing, "replacing")
            } else {
                self.require(principal, Privilege::Create, None)
            }
        };
        match node {
            LogicalPlan::Copy(copy) => {
                self.check_location(&copy.output_url, Access::Write, principal)
            }
            LogicalPlan::Statement(Statement::SetVariable(s)) => {
                self.check_setting(&s.variable, Some(&s.value), principal)
            }
            LogicalPlan::Statement(Statement::ResetVariable(s)) => {
                self.check_setting(&s.variable, None, principal)
            }
            LogicalPlan::Statement(
                Statement::Prepare(_) | Statement::Execute(_) | Statement::Deallocate(_),
            ) => admin_only(
                "SQL PREPARE/EXECUTE/DEALLOCATE name statements every session shares (use your client's prepared statements)",
            ),
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(c)) => {
                // The sandbox first: naming a server path is the graver mistake.
                for location in &c.locations {
                    self.check_location(location, Access::Read, principal)?;
                }
                create_or_replace(c.name.table())
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(c)) => {
                create_or_replace(c.name.table())
            }
            LogicalPlan::Ddl(DdlStatement::CreateView(c)) => create_or_replace(c.name.table()),
            LogicalPlan::Ddl(DdlStatement::DropTable(d)) => {
                self.owner_of_relation(&d.name, principal, "dropping")
            }
            LogicalPlan::Ddl(DdlStatement::DropView(d)) => {
                self.owner_of_relation(&d.name, principal, "dropping")
            }
            LogicalPlan::Dml(dml) => {
                self.owner_of_relation(&dml.table_name, principal, "writing to")
            }
            _ => Ok(()),
        }
    }

    /// Who may `SET` (or `RESET`, when `value` is None) `key` (see [`super::settings`]).
    fn check_setting(&self, key: &str, value: Option<&str>, principal: &Principal) -> Result<()> {
        if self.is_admin(principal) {
            return Ok(());
        }
        let denied = |what: &str| -> Result<()> {
            Err(FStoreError::permission_denied(format!(
                "SET {key}: {what}; only an administrator may change it"
            ))
            .into())
        };
        if key.starts_with(super::settings::RUNTIME_PREFIX) {
            return denied("it is a server setting (memory, disk, caches) every session shares");
        }
        match self.scope() {
            Scope::Engine => denied("it changes the settings of the embedded engine"),
            Scope::Session(_) | Scope::Sessionless => super::settings::check_user_setting(
                key,
                value,
                self.ctx().copied_config().options(),
            ),
        }
    }

    fn owner_of_relation(
        &self,
        name: &TableReference,
        principal: &Principal,
        what: &str,
    ) -> Result<()> {
        let state = self.registry().state();
        match object_of(&state, name) {
            Some(o) => self.require_owner(principal, &o, what),
            None => Ok(()),
        }
    }

    /// Checks an FStore statement (one that DataFusion does not plan) before it runs.
    /// Statements whose objects are resolved while they run (`CREATE FEATURE GROUP`'s source,
    /// `CREATE FEATURE SET`'s groups) are checked again there, before anything is written.
    pub fn authorize(&self, stmt: &ParsedStatement, principal: &Principal) -> Result<()> {
        if principal.trusted {
            return Ok(());
        }
        let state = self.registry().state();
        let group = |name: &str| ObjectRef::new(ObjectKind::FeatureGroup, name);
        let set = |reference: &str| {
            let (name, _) = crate::registry::parse_set_ref(reference);
            ObjectRef::new(ObjectKind::FeatureSet, name)
        };
        let set_version = |reference: &str| {
            state
                .feature_set(reference)
                .map(|v| ObjectRef::set_version(&v.name, v.version))
        };
        match &stmt.statement {
            FStoreStatement::Monitor(m) => self.authorize_monitoring(m, principal),
            FStoreStatement::CreateFeatureGroup(c) => {
                if state.feature_groups.contains_key(&c.name) && !c.if_not_exists {
                    self.require_owner(principal, &group(&c.name), "replacing")
                } else {
                    self.require(principal, Privilege::Create, None)
                }
            }
            FStoreStatement::CreateFeatureSet(c) => {
                if state.feature_sets.contains_key(&c.name) {
                    self.require_owner(principal, &set(&c.name), "a new version of")
                } else {
                    self.require(principal, Privilege::Create, None)
                }
            }
            FStoreStatement::AddTransformation(a) => {
                self.require_owner(principal, &group(&a.group), "altering")
            }
            FStoreStatement::DropFeatureGroup { name, .. }
                if state.feature_groups.contains_key(name) =>
            {
                self.require_owner(principal, &group(name), "dropping")
            }
            FStoreStatement::CommentOnFeature { group: g, .. } => {
                self.require_owner(principal, &group(g), "commenting on")
            }
            FStoreStatement::CreateExpectation(c) => {
                let (g, _) = crate::quality::resolve_feature(&state, &c.feature)?;
                self.require_owner(principal, &group(&g), "adding expectations to")
            }
            FStoreStatement::DropExpectation(d) => {
                let (g, _) = crate::quality::resolve_feature(&state, &d.feature)?;
                self.require_owner(principal, &group(&g), "dropping expectations of")
            }
            FStoreStatement::SetDriftBaseline(b) => {
                self.require_owner(principal, &set(&b.set), "setting the drift baseline of")
            }
            FStoreStatement::AlterFeatureSet(a) => {
                self.require_owner(principal, &set(a.name()), "altering")
            }
            FStoreStatement::RefreshOnline(r) => {
                self.require_owner(principal, &set(&r.name), "refreshing")
            }
            FStoreStatement::ExportFeatureSet(e) => self.require(
                principal,
                Privilege::Export,
                Some(&set_version(&e.reference)?),
            ),
            FStoreStatement::DescribeFeatureSet { reference } => {
                self.require(principal, Privilege::Select, Some(&set_version(reference)?))
            }
            FStoreStatement::DescribeFeatureGroup { name } => {
                state.group(name)?;
                self.require(principal, Privilege::Select, Some(&group(name)))
            }
            _ => Ok(()),
        }
    }

    /// The feature groups and sets `principal` may see in listings (`SHOW FEATURE GROUPS`,
    /// `SHOW FEATURE SETS`): a state holding only those (and nothing else: what listings
    /// read), copied only for non-administrators.
    pub fn visible_state(&self, principal: &Principal) -> std::sync::Arc<RegistryState> {
        let state = self.registry().state();
        if principal.trusted || state.is_admin(&principal.name) {
            return state;
        }
        let user = principal.name.as_str();
        let may = |privilege, o: &ObjectRef| state.allows(user, privilege, Some(o));
        let feature_groups = state
            .feature_groups
            .iter()
            .filter(|(n, _)| {
                may(
                    Privilege::Select,
                    &ObjectRef::new(ObjectKind::FeatureGroup, *n),
                )
            })
            .map(|(n, g)| (n.clone(), g.clone()))
            .collect();
        let feature_sets = state
            .feature_sets
            .iter()
            .map(|(name, versions)| {
                let visible = versions.iter().filter(|v| {
                    let o = ObjectRef::set_version(name, v.version);
                    may(Privilege::Select, &o) || may(Privilege::ReadOnline, &o)
                });
                (name.clone(), visible.cloned().collect::<Vec<_>>())
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        std::sync::Arc::new(RegistryState {
            feature_groups,
            feature_sets,
            ..RegistryState::default()
        })
    }

    /// What `principal` may see in metadata listings: a test of relation and feature-group
    /// names, against one snapshot of the registry.
    pub fn visible_names(&self, principal: &Principal) -> impl Fn(&str) -> bool + Send + Sync {
        let state = self.registry().state();
        let admin = principal.trusted || state.is_admin(&principal.name);
        let user = principal.name.clone();
        move |name| {
            admin
                || object_of(&state, &TableReference::bare(name))
                    .is_none_or(|o| state.allows(&user, Privilege::Select, Some(&o)))
        }
    }
}

/// `PERMISSION_DENIED` unless `principal` holds `privilege` on `object` in `state`.
fn require_in(
    state: &RegistryState,
    principal: &Principal,
    privilege: Privilege,
    object: Option<&ObjectRef>,
) -> Result<()> {
    if principal.trusted || state.allows(&principal.name, privilege, object) {
        return Ok(());
    }
    Err(FStoreError::permission_denied(match object {
        Some(o) => format!(
            "permission denied: '{principal}' lacks {} on {o}",
            privilege.as_sql()
        ),
        None => format!(
            "permission denied: '{principal}' lacks the {} privilege",
            privilege.as_sql()
        ),
    })
    .into())
}

/// The registry object a table reference names, if it names one in the user schema.
fn object_of(state: &RegistryState, r: &TableReference) -> Option<ObjectRef> {
    let in_user_schema = match r {
        TableReference::Bare { .. } => true,
        TableReference::Partial { schema, .. } => schema.as_ref() == USER_SCHEMA,
        TableReference::Full {
            catalog, schema, ..
        } => catalog.as_ref() == CATALOG && schema.as_ref() == USER_SCHEMA,
    };
    if !in_user_schema {
        return None;
    }
    let name = r.table();
    if state.relations.contains_key(name) {
        Some(ObjectRef::new(ObjectKind::Table, name))
    } else if state.feature_groups.contains_key(name) {
        Some(ObjectRef::new(ObjectKind::FeatureGroup, name))
    } else {
        None
    }
}

/// System tables only administrators read (unless granted): `fstore.audit` and the
/// monitoring results (`monitor_history('name')` is checked against the monitor's target).
const RESTRICTED_SYSTEM_TABLES: &[&str] = &["audit", "monitor_runs", "alerts", "alert_deliveries"];

/// The restricted system table a reference names, if any.
fn restricted_system_table(r: &TableReference) -> Option<&'static str> {
    let table = RESTRICTED_SYSTEM_TABLES.iter().find(|t| **t == r.table())?;
    let system = match r {
        TableReference::Bare { .. } => false,
        TableReference::Partial { schema, .. } => schema.as_ref() == crate::engine::SYSTEM_SCHEMA,
        TableReference::Full {
            catalog, schema, ..
        } => catalog.as_ref() == CATALOG && schema.as_ref() == crate::engine::SYSTEM_SCHEMA,
    };
    system.then_some(*table)
}

/// Table-function calls in a statement, with their string-literal arguments.
#[derive(Default)]
struct Calls(Vec<(String, Vec<Option<String>>)>);

impl Visitor for Calls {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let (name, args): (&ObjectName, &[FunctionArg]) = match factor {
            TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => (name, &args.args),
            TableFactor::Function { name, args, .. } => (name, args),
            _ => return ControlFlow::Continue(()),
        };
        let name = name.to_string().to_ascii_lowercase();
        let args = args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        self.0.push((name, args));
        ControlFlow::Continue(())
    }
}
