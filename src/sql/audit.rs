//! What the executor tells the audit log (see `governance::audit`): each statement's
//! principal, peer, text, objects, outcome and duration, recorded where statements run —
//! [`SqlSession::execute`], [`SqlSession::execute_plan`] and the plan-free online lookups
//! ([`SqlSession::lookup`]).

use datafusion::error::Result;

use super::FStoreStatement;
use super::exec::SqlSession;
use crate::principal::Principal;
use crate::registry::{ObjectKind, ObjectRef};

/// The object an FStore statement acts on, as `kind:name` (for the audit log).
pub fn target_of(stmt: &FStoreStatement) -> Option<String> {
    let group = |n: &str| Some(ObjectRef::new(ObjectKind::FeatureGroup, n).label());
    let set = |n: &str| Some(ObjectRef::new(ObjectKind::FeatureSet, n).label());
    match stmt {
        FStoreStatement::CreateFeatureGroup(c) => group(&c.name),
        FStoreStatement::AddTransformation(a) => group(&a.group),
        FStoreStatement::DropFeatureGroup { name, .. }
        | FStoreStatement::DescribeFeatureGroup { name } => group(name),
        FStoreStatement::CommentOnFeature { group: g, .. } => group(g),
        FStoreStatement::CreateFeatureSet(c) => set(&c.name),
        FStoreStatement::ExportFeatureSet(e) => set(&e.reference),
        FStoreStatement::DescribeFeatureSet { reference } => set(reference),
        FStoreStatement::SetDriftBaseline(b) => set(&b.set),
        FStoreStatement::AlterFeatureSet(a) => set(a.name()),
        FStoreStatement::RefreshOnline(r) => set(&r.name),
        FStoreStatement::CreateExpectation(c) => Some(format!("feature:{}", c.feature.join("."))),
        FStoreStatement::DropExpectation(d) => Some(format!("feature:{}", d.feature.join("."))),
        FStoreStatement::Monitor(m) => {
            let (kind, name) = m.object();
            Some(format!("{kind}:{name}"))
        }
        _ => None,
    }
}

/// When a statement started, for [`SqlSession::audit_end`].
pub struct AuditStart {
    time: i64,
    started: std::time::Instant,
}

impl SqlSession<'_> {
    pub fn audit_start(&self) -> AuditStart {
        AuditStart {
            time: chrono::Utc::now().timestamp_micros(),
            started: std::time::Instant::now(),
        }
    }

    /// Records a statement in the audit log (see `governance::audit`): `kind` names what
    /// it was (`query`, `command`, `lookup`; `statement` when it failed), `error` why it failed.
    pub fn audit_end(
        &self,
        start: AuditStart,
        principal: &Principal,
        text: &str,
        objects: Vec<String>,
        kind: &'static str,
        error: Option<&datafusion::error::DataFusionError>,
    ) {
        let Some(log) = self.service::<crate::governance::audit::AuditLog>() else {
            return;
        };
        let (outcome, error) = match error {
            None => ("ok", None),
            Some(e)
                if crate::error::ErrorKind::of(e) == crate::error::ErrorKind::PermissionDenied =>
            {
                ("denied", Some(crate::error::user_message(e)))
            }
            Some(e) => ("error", Some(crate::error::user_message(e))),
        };
        log.record(crate::governance::audit::AuditRecord {
            time: start.time,
            principal: principal.name.clone(),
            peer: principal.peer.clone(),
            statement: text.to_string(),
            kind,
            objects,
            outcome,
            error,
            duration_us: start.started.elapsed().as_micros() as u64,
        });
    }

    /// Audits the result of a statement run by the executor.
    pub fn audit_statement(
        &self,
        start: AuditStart,
        principal: &Principal,
        text: &str,
        objects: Vec<String>,
        result: &Result<super::StatementResult>,
    ) {
        let kind = match result {
            Ok(r) if r.kind == super::ResultKind::Query => "query",
            Ok(_) => "command",
            Err(_) => "statement",
        };
        self.audit_end(start, principal, text, objects, kind, result.as_ref().err());
    }

    /// Checks the reads of a statement being prepared (before it is planned: planning a table
    /// function does work). A denial is audited here; an allowed statement is audited when
    /// it executes (so the allowed case costs nothing more than the check).
    pub fn check_prepare(
        &self,
        text: &str,
        reads: &super::Reads,
        principal: &Principal,
    ) -> Result<()> {
        let result = self.check_reads(reads, principal);
        if let Err(e) = &result {
            let start = self.audit_start();
            self.audit_end(start, principal, text, reads.names(), "statement", Some(e));
        }
        result
    }

    /// An online lookup answered without a plan (`sql::lookup`): checked, run and audited.
    pub async fn lookup(
        &self,
        text: &str,
        lookup: &super::lookup::DirectLookup,
        rows: &[Vec<datafusion::scalar::ScalarValue>],
        schema: &arrow_schema::SchemaRef,
        principal: &Principal,
    ) -> Result<datafusion::arrow::array::RecordBatch> {
        let start = self.audit_start();
        let result = match self.check_lookup(lookup, principal) {
            Ok(()) => super::lookup::run(self, lookup, rows, schema).await,
            Err(e) => Err(e),
        };
        let target = &lookup.target;
        let objects = vec![ObjectRef::set_version(&target.set, target.version).label()];
        self.audit_end(
            start,
            principal,
            text,
            objects,
            // As before: a failed lookup is a failed `statement`.
            if result.is_ok() {
                "lookup"
            } else {
                "statement"
            },
            result.as_ref().err(),
        );
        result
    }
}
