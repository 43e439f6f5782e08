//! The catalog's feature-set pages: every version, online serving, drift baselines, exports.

use std::fmt::Write;

use super::markdown::{code, description, documented, iso, mermaid, table, text};
use super::pages::{
    Context, codes, expectations_text, feature_description, owner, row, type_of, window,
};
use crate::governance::lineage::Node;
use crate::registry::{BaselineSketch, FeatureSetVersion, ObjectKind, ObjectRef};

/// Materialization runs listed on a set page (newest first).
const RUNS_SHOWN: usize = 10;

/// `sets/<name>.md`.
pub fn set_page(cx: &Context, name: &str, versions: &[FeatureSetVersion]) -> String {
    let state = cx.state;
    let mut out = String::new();
    let _ = writeln!(out, "# Feature set {}\n", code(name));
    let latest = versions.last();
    if let Some(d) = latest
        .and_then(|v| v.description.as_deref())
        .filter(|d| documented(Some(d)))
    {
        let _ = writeln!(out, "{}\n", description(Some(d)));
    }
    out.push_str("[Catalog index](../README.md)\n\n");
    let owner_ref = ObjectRef::new(ObjectKind::FeatureSet, name);
    table(
        &mut out,
        &["property", "value"],
        &[
            row(["owner".into(), owner(state.owner_of(&owner_ref), None)]),
            row(["versions".into(), versions.len().to_string()]),
            row([
                "latest version".into(),
                latest.map_or_else(|| "—".into(), |v| v.version.to_string()),
            ]),
        ],
    );

    out.push_str("## Online serving\n\n");
    match state.online.get(name) {
        Some(c) => table(
            &mut out,
            &["property", "value"],
            &[
                row(["status".into(), format!("online, version {}", c.version)]),
                row(["online since".into(), iso(c.since)]),
                row(["update frequency".into(), window(&c.update_frequency)]),
                row(["cache ttl".into(), window(&c.cache_ttl)]),
            ],
        ),
        None => out.push_str("Offline: the set is not served online.\n\n"),
    }
    let runs = state
        .materializations
        .get(name)
        .map_or(&[][..], Vec::as_slice);
    if !runs.is_empty() {
        let _ = writeln!(
            out,
            "Latest materializations (newest first, at most {RUNS_SHOWN}):\n"
        );
        let rows: Vec<Vec<String>> = runs
            .iter()
            .rev()
            .take(RUNS_SHOWN)
            .map(|r| {
                row([
                    iso(r.finished),
                    r.version.to_string(),
                    text(&r.trigger),
                    text(&r.mode),
                    iso(r.as_of),
                    r.rows.to_string(),
                    r.status.as_str().to_string(),
                    text(&r.store),
                    r.error.as_deref().map_or_else(String::new, text),
                ])
            })
            .collect();
        table(
            &mut out,
            &[
                "finished", "version", "trigger", "mode", "as of", "rows", "status", "store",
                "error",
            ],
            &rows,
        );
    }

    out.push_str("## Versions\n\n");
    for v in versions.iter().rev() {
        version_section(cx, &mut out, v);
    }

    out.push_str("## Lineage\n\n");
    let focus: Vec<Node> = versions
        .iter()
        .map(|v| Node {
            kind: "feature_set",
            name: name.to_string(),
            version: Some(v.version),
        })
        .collect();
    mermaid(&mut out, &cx.lineage(name), &focus);
    out
}

/// One version of a set: its properties, features, metadata, drift baseline and exports.
fn version_section(cx: &Context, out: &mut String, v: &FeatureSetVersion) {
    let state = cx.state;
    let _ = writeln!(out, "### Version {}\n", v.version);
    let mut props = vec![
        row(["created".into(), iso(v.created_at)]),
        row(["author".into(), code(&v.author)]),
        row(["description".into(), description(v.description.as_deref())]),
    ];
    if !v.tags.is_empty() {
        props.push(row(["tags".into(), codes(&v.tags)]));
    }
    let pins: Vec<String> = v
        .groups
        .iter()
        .map(|(g, p)| format!("{} (definition {})", cx.group_link(g, "../"), p.version))
        .collect();
    props.push(row(["feature groups".into(), pins.join(", ")]));
    table(out, &["property", "value"], &props);

    let rows: Vec<Vec<String>> = v
        .features
        .iter()
        .map(|f| {
            let pinned = v.groups.get(&f.group).map(|p| &p.def);
            let expectations: Vec<String> = expectations_text(state, &f.group, &f.feature)
                .into_iter()
                .map(|(n, e)| code(&format!("{n} {e}")))
                .collect();
            row([
                code(&f.feature),
                cx.group_link(&f.group, "../"),
                pinned.map_or_else(|| "—".into(), |g| type_of(g, &f.feature)),
                expectations.join(", "),
                feature_description(state, pinned, &f.group, &f.feature),
            ])
        })
        .collect();
    table(
        out,
        &["feature", "group", "type", "expectations", "description"],
        &rows,
    );

    if !v.metadata.is_empty() {
        let rows: Vec<Vec<String>> = v
            .metadata
            .iter()
            .map(|(k, val)| row([code(k), text(val)]))
            .collect();
        table(out, &["metadata", "value"], &rows);
    }

    match state.baselines.get(&format!("{}@{}", v.name, v.version)) {
        Some(b) => {
            let _ = writeln!(
                out,
                "Drift baseline: from {} to {} (events in [{}, {})).\n",
                code(&b.from),
                code(&b.to),
                iso(b.start_micros),
                iso(b.end_micros)
            );
            let rows: Vec<Vec<String>> = b
                .features
                .iter()
                .map(|f| {
                    let sketch = match &f.sketch {
                        BaselineSketch::Numeric { distinct, .. } => {
                            format!("numeric, {distinct} distinct values")
                        }
                        BaselineSketch::Categorical { counts } => {
                            format!("categorical, {} categories", counts.len())
                        }
                    };
                    row([
                        code(&format!("{}.{}", f.group, f.feature)),
                        f.rows.to_string(),
                        f.nulls.to_string(),
                        sketch,
                    ])
                })
                .collect();
            table(out, &["feature", "rows", "nulls", "distribution"], &rows);
        }
        None => out.push_str("No drift baseline.\n\n"),
    }

    let rows: Vec<Vec<String>> = state
        .exports
        .iter()
        .rev()
        .filter(|e| e.set == v.name && e.version == v.version)
        .map(|e| {
            row([
                iso(e.at),
                text(&e.path),
                e.rows.to_string(),
                e.files.len().to_string(),
            ])
        })
        .collect();
    if rows.is_empty() {
        out.push_str("Never exported.\n\n");
    } else {
        out.push_str("Exports (newest first):\n\n");
        table(out, &["at", "location", "rows", "files"], &rows);
    }
}
