//! `fstore catalog --out DIR`: a browsable Markdown catalog of the registry's feature groups
//! and feature sets, for a team to publish as its documentation.
//!
//! ```text
//! DIR/README.md          the index: every group and set, counts, undocumented features
//! DIR/groups/<name>.md   one page per feature group
//! DIR/sets/<name>.md     one page per feature set (every version)
//! ```
//!
//! The pages are a pure function of the registry state: two runs on the same registry write
//! the same bytes. The catalog owns `README.md`, `groups/` and `sets/` in `DIR`: it rewrites
//! them, removes the pages (`*.md`) of groups and sets that no longer exist, and leaves every
//! other file alone.

mod markdown;
mod pages;
mod set_page;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::governance::lineage;
use crate::registry::RegistryState;
use markdown::{documented, file_stems};

/// What a catalog holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSummary {
    pub groups: usize,
    pub sets: usize,
    pub undocumented: usize,
}

impl std::fmt::Display for CatalogSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} feature groups, {} feature sets, {} undocumented features",
            self.groups, self.sets, self.undocumented
        )
    }
}

/// Every feature (`group`, `feature`) of the current groups whose description is missing
/// or blank, sorted. Transformation outputs are not listed: they take no comment.
pub fn undocumented(state: &RegistryState) -> Vec<(String, String)> {
    let mut out = BTreeSet::new();
    for (name, g) in &state.feature_groups {
        for f in &g.def.features {
            if !documented(f.description.as_deref()) {
                out.insert((name.clone(), f.name.clone()));
            }
        }
    }
    out.into_iter().collect()
}

/// The catalog's files (paths relative to its directory, with `/`) and their contents.
pub fn render(state: &RegistryState) -> (BTreeMap<String, String>, CatalogSummary) {
    let cx = pages::Context {
        state,
        edges: lineage::graph(state),
        groups: file_stems(state.feature_groups.keys()),
        sets: file_stems(state.feature_sets.keys()),
    };
    let undocumented = undocumented(state);
    let mut files = BTreeMap::new();
    files.insert("README.md".to_string(), pages::index(&cx, &undocumented));
    for (name, g) in &state.feature_groups {
        files.insert(
            format!("groups/{}.md", cx.groups[name]),
            pages::group_page(&cx, name, g),
        );
    }
    for (name, versions) in &state.feature_sets {
        files.insert(
            format!("sets/{}.md", cx.sets[name]),
            set_page::set_page(&cx, name, versions),
        );
    }
    let summary = CatalogSummary {
        groups: state.feature_groups.len(),
        sets: state.feature_sets.len(),
        undocumented: undocumented.len(),
    };
    (files, summary)
}

/// Writes the catalog of `state` into `dir` (created if missing). Files whose content is
/// unchanged are not rewritten; stale pages in `groups/` and `sets/` are removed.
pub fn write_catalog(state: &RegistryState, dir: &Path) -> Result<CatalogSummary, String> {
    let (files, summary) = render(state);
    for sub in ["", "groups", "sets"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d)
            .map_err(|e| format!("cannot create directory {}: {e}", d.display()))?;
    }
    for (rel, body) in &files {
        let path = dir.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == body.as_bytes()) {
            continue;
        }
        std::fs::write(&path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for sub in ["groups", "sets"] {
        let d = dir.join(sub);
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let is_page =
                file_name.ends_with(".md") && entry.file_type().is_ok_and(|t| t.is_file());
            if is_page && !files.contains_key(&format!("{sub}/{file_name}")) {
                std::fs::remove_file(entry.path()).map_err(|e| {
                    format!("cannot remove stale page {}: {e}", entry.path().display())
                })?;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
