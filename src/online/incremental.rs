//! Incremental refresh: when only new rows arrived in a set's sources since its last
//! materialization, only the entities whose features can have changed are recomputed and
//! merged into the previous snapshot.
//!
//! It applies when every group of the set reads a table managed by FStore (whose files the
//! registry lists: rows only arrive as new files, and a re-created table is a new table),
//! no group has fitted transformations (a running encoder reads other entities' rows), the
//! previous run of the same version is the snapshot being served (embedded store), and time
//! does not go back. Otherwise the refresh is full.
//!
//! The entities recomputed (a superset of those that changed between T′ and T):
//! - every entity with a row in a new file (new events, late ones included);
//! - every entity with an event in (T′, T] (it enters the AS-OF value and the windows);
//! - every entity with an event in (T′ − L, T − L] for each window length and TTL L (it
//!   leaves a window, or its last value expires).
//!
//! Every other entity's vector at T equals its vector at T′.

use crate::features::training::GroupRequest;
use crate::registry::{
    DataFile, MaterializationRun, RegistryState, Relation, RunStatus, SourceMark,
};

/// The source marks of `groups`, or None when one reads anything but a managed table or
/// has a fitted transformation (such sets are always refreshed in full).
pub(crate) fn source_marks(
    state: &RegistryState,
    groups: &[GroupRequest],
) -> Option<Vec<SourceMark>> {
    let mut marks: Vec<SourceMark> = Vec::new();
    for g in groups {
        if !g.def.transformations.is_empty() {
            return None;
        }
        let name = g.def.source.relation()?;
        let rel = state.relations.get(name)?;
        let Relation::Managed(t) = &rel.def else {
            return None;
        };
        if !marks.iter().any(|m| m.relation == name) {
            marks.push(SourceMark {
                relation: name.to_string(),
                created: rel.created,
                files: t.files.len(),
            });
        }
    }
    Some(marks)
}

/// The new files of each source since `previous`, when an incremental refresh at `as_of`
/// is possible.
pub fn new_files(
    state: &RegistryState,
    previous: &MaterializationRun,
    marks: &[SourceMark],
    as_of: i64,
) -> Option<Vec<(String, Vec<DataFile>)>> {
    if previous.status != RunStatus::Succeeded || as_of < previous.as_of {
        return None;
    }
    if previous.sources.len() != marks.len() {
        return None;
    }
    let mut out = Vec::new();
    for m in marks {
        let before = previous.sources.iter().find(|p| p.relation == m.relation)?;
        if before.created != m.created || before.files > m.files {
            return None;
        }
        let Relation::Managed(t) = &state.relations.get(&m.relation)?.def else {
            return None;
        };
        out.push((m.relation.clone(), t.files[before.files..].to_vec()));
    }
    Some(out)
}

/// The lengths (µs) whose boundaries move with time: window lengths and TTLs.
pub(crate) fn lengths(groups: &[GroupRequest]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for g in groups {
        for f in &g.def.features {
            if let crate::registry::FeatureKind::Window { window, .. } = &f.kind {
                out.push(window.micros);
            }
        }
        if let Some(t) = &g.def.ttl {
            out.push(t.micros);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
