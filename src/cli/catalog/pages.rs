//! The catalog's index and feature-group pages, and what every page shares (the set pages
//! are in `set_page.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::markdown::{code, description, documented, fence, mermaid, table, text};
use crate::governance::lineage::{Edge, Node, walk};
use crate::registry::{
    Encoder, FeatureGroup, FeatureKind, FeatureSource, ObjectKind, ObjectRef, RegistryState,
    Relation, Versioned, WindowLength,
};

/// What every page needs: the registry, its lineage graph and the file of every page.
pub struct Context<'a> {
    pub state: &'a RegistryState,
    pub edges: Vec<Edge>,
    /// File stems by feature-group name.
    pub groups: BTreeMap<String, String>,
    /// File stems by feature-set name.
    pub sets: BTreeMap<String, String>,
}

impl Context<'_> {
    /// A link to a group's page from a page `up` levels below the catalog root; a dropped
    /// group (still pinned by a set) has no page.
    pub(super) fn group_link(&self, name: &str, up: &str) -> String {
        match self.groups.get(name) {
            Some(stem) => format!("[{}]({up}groups/{stem}.md)", code(name)),
            None => format!("{} (dropped)", code(name)),
        }
    }

    pub(super) fn set_link(&self, name: &str, up: &str) -> String {
        match self.sets.get(name) {
            Some(stem) => format!("[{}]({up}sets/{stem}.md)", code(name)),
            None => code(name),
        }
    }

    /// The lineage edges upstream and downstream of `object`.
    pub(super) fn lineage(&self, object: &str) -> BTreeSet<Edge> {
        walk(&self.edges, object, true)
            .into_iter()
            .chain(walk(&self.edges, object, false))
            .map(|(_, e)| e)
            .collect()
    }
}

pub(super) fn row(cells: impl IntoIterator<Item = String>) -> Vec<String> {
    cells.into_iter().collect()
}

pub(super) fn codes(items: &[String]) -> String {
    items.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
}

pub(super) fn owner(recorded: Option<&str>, declared: Option<&str>) -> String {
    let recorded = recorded.map_or_else(|| "*unknown*".to_string(), code);
    match declared {
        Some(d) if !d.trim().is_empty() => format!("{recorded} (declared: {})", text(d)),
        _ => recorded,
    }
}

pub(super) fn type_of(group: &FeatureGroup, column: &str) -> String {
    group
        .schema
        .field_with_name(column)
        .map(|f| code(&f.data_type().to_string()))
        .unwrap_or_else(|_| "—".to_string())
}

pub(super) fn window(w: &Option<WindowLength>) -> String {
    w.as_ref()
        .map_or_else(|| "—".to_string(), |w| text(&w.text))
}

/// The description of `group.feature`: the group's current one when it still has the
/// feature, else the pinned definition's; a transformation's output is described by its
/// encoder (it takes no comment).
pub(super) fn feature_description(
    state: &RegistryState,
    pinned: Option<&FeatureGroup>,
    group: &str,
    feature: &str,
) -> String {
    let current = state.feature_groups.get(group).map(|g| &g.def);
    let defs = || current.into_iter().chain(pinned);
    if let Some(f) = defs().find_map(|g| g.feature(feature)) {
        return description(f.description.as_deref());
    }
    match defs().find_map(|g| g.transformations.iter().find(|t| t.output == feature)) {
        Some(t) => format!("{} of {}", code(t.encoder.name()), code(&t.feature)),
        None => description(None),
    }
}

pub(super) fn expectations_text(
    state: &RegistryState,
    group: &str,
    feature: &str,
) -> Vec<(String, String)> {
    state
        .expectations
        .get(&format!("{group}.{feature}"))
        .map(|e| {
            e.expectations
                .iter()
                .map(|x| (x.name().to_string(), x.expected_text()))
                .collect()
        })
        .unwrap_or_default()
}

fn categories(c: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = c
        .iter()
        .take(SHOWN)
        .map(|c| code(c))
        .collect::<Vec<_>>()
        .join(", ");
    if c.len() > SHOWN {
        let _ = write!(s, ", … ({} in all)", c.len());
    }
    s
}

fn encoder_parameters(e: &Encoder) -> String {
    match e {
        Encoder::TargetEncoding { target, smoothing } => {
            format!("target {}, smoothing {smoothing}", code(target))
        }
        Encoder::OneHot { categories: c } | Encoder::Label { categories: c } => {
            format!("categories {}", categories(c))
        }
        Encoder::Frequency { categories: c, .. } => format!("categories {}", categories(c)),
        Encoder::Hash { buckets } => format!("{buckets} buckets"),
        Encoder::Standard { mean, std } => format!("mean {mean}, std {std}"),
        Encoder::MinMax { min, max } => format!("min {min}, max {max}"),
    }
}

/// `README.md`: every group and set, the counts, and the undocumented features.
pub fn index(cx: &Context, undocumented: &[(String, String)]) -> String {
    let state = cx.state;
    let mut out = String::from("# Feature catalog\n\n");
    let _ = writeln!(
        out,
        "Generated by `fstore catalog` from the registry at sequence {}.\n",
        state.seq
    );
    let features: usize = state
        .feature_groups
        .values()
        .map(|g| g.def.feature_names().len())
        .sum();
    let versions: usize = state.feature_sets.values().map(Vec::len).sum();
    table(
        &mut out,
        &["", "count"],
        &[
            row([
                "feature groups".into(),
                state.feature_groups.len().to_string(),
            ]),
            row([
                "feature sets".into(),
                format!("{} ({versions} versions)", state.feature_sets.len()),
            ]),
            row(["features".into(), features.to_string()]),
            row([
                "undocumented features".into(),
                undocumented.len().to_string(),
            ]),
        ],
    );

    out.push_str("## Feature groups\n\n");
    if state.feature_groups.is_empty() {
        out.push_str("No feature groups.\n\n");
    } else {
        let rows: Vec<Vec<String>> = state
            .feature_groups
            .iter()
            .map(|(name, g)| {
                let missing = undocumented
                    .iter()
                    .filter(|(group, _)| group == name)
                    .count();
                let owner_ref = ObjectRef::new(ObjectKind::FeatureGroup, name);
                row([
                    cx.group_link(name, ""),
                    codes(&g.def.entity),
                    g.def.feature_names().len().to_string(),
                    missing.to_string(),
                    owner(state.owner_of(&owner_ref), g.def.owner.as_deref()),
                    description(g.def.description.as_deref()),
                ])
            })
            .collect();
        table(
            &mut out,
            &[
                "group",
                "entity",
                "features",
                "undocumented",
                "owner",
                "description",
            ],
            &rows,
        );
    }

    out.push_str("## Feature sets\n\n");
    if state.feature_sets.is_empty() {
        out.push_str("No feature sets.\n\n");
    } else {
        let rows: Vec<Vec<String>> = state
            .feature_sets
            .iter()
            .filter_map(|(name, versions)| {
                let latest = versions.last()?;
                let online = state.online.get(name).map_or_else(
                    || "offline".to_string(),
                    |c| format!("version {}", c.version),
                );
                let owner_ref = ObjectRef::new(ObjectKind::FeatureSet, name);
                Some(row([
                    cx.set_link(name, ""),
                    latest.version.to_string(),
                    latest.features.len().to_string(),
                    online,
                    owner(state.owner_of(&owner_ref), None),
                    description(latest.description.as_deref()),
                ]))
            })
            .collect();
        table(
            &mut out,
            &[
                "set",
                "latest version",
                "features",
                "online",
                "owner",
                "description",
            ],
            &rows,
        );
    }

    out.push_str("## Undocumented features\n\n");
    if undocumented.is_empty() {
        out.push_str("Every feature is documented.\n");
    } else {
        out.push_str("Features with no description (`COMMENT ON FEATURE group.feature IS '…'` documents one):\n\n");
        for (group, feature) in undocumented {
            let stem = &cx.groups[group];
            let _ = writeln!(
                out,
                "- [{}](groups/{stem}.md)",
                code(&format!("{group}.{feature}"))
            );
        }
    }
    out
}

/// `groups/<name>.md`.
pub fn group_page(cx: &Context, name: &str, g: &Versioned<FeatureGroup>) -> String {
    let state = cx.state;
    let def = &g.def;
    let mut out = String::new();
    let _ = writeln!(out, "# Feature group {}\n", code(name));
    if documented(def.description.as_deref()) {
        let _ = writeln!(out, "{}\n", description(def.description.as_deref()));
    }
    out.push_str("[Catalog index](../README.md)\n\n");
    let mut props = vec![
        row([
            "owner".into(),
            owner(
                state.owner_of(&ObjectRef::new(ObjectKind::FeatureGroup, name)),
                def.owner.as_deref(),
            ),
        ]),
        row([
            "version".into(),
            format!(
                "{} (registry sequence; created at {})",
                g.version, g.created
            ),
        ]),
        row(["entity keys".into(), codes(&def.entity)]),
        row(["timestamp".into(), code(&def.timestamp)]),
    ];
    if let Some(c) = &def.created {
        props.push(row(["created column".into(), code(c)]));
    }
    props.push(row(["ttl".into(), window(&def.ttl)]));
    if !def.tags.is_empty() {
        props.push(row(["tags".into(), codes(&def.tags)]));
    }
    table(&mut out, &["property", "value"], &props);

    out.push_str("## Source\n\n");
    match &def.source {
        FeatureSource::Relation { name: source } => {
            let what = match state.relations.get(source).map(|r| &r.def) {
                Some(Relation::View(_)) => "view".to_string(),
                Some(_) => "table".to_string(),
                None if state.feature_groups.contains_key(source) => {
                    format!("feature group {}", cx.group_link(source, "../"))
                }
                None => "relation (no longer in the registry)".to_string(),
            };
            if what.starts_with("feature group") {
                let _ = writeln!(out, "Reads {what}.\n");
            } else {
                let _ = writeln!(out, "Reads {what} {}.\n", code(source));
            }
        }
        FeatureSource::Query { sql } => {
            out.push_str("Reads the query:\n\n");
            fence(&mut out, "sql", sql);
        }
    }

    out.push_str("## Features\n\n");
    let rows: Vec<Vec<String>> = def
        .features
        .iter()
        .map(|f| {
            let kind = match &f.kind {
                FeatureKind::Column { .. } => "column".to_string(),
                FeatureKind::Expression { .. } => "expression".to_string(),
                FeatureKind::Window { window, .. } => format!("window ({})", text(&window.text)),
            };
            row([
                code(&f.name),
                type_of(def, &f.name),
                kind,
                code(&f.kind.to_sql()),
                description(f.description.as_deref()),
            ])
        })
        .collect();
    table(
        &mut out,
        &["feature", "type", "kind", "definition", "description"],
        &rows,
    );

    if !def.transformations.is_empty() {
        out.push_str("## Transformations\n\n");
        let rows: Vec<Vec<String>> = def
            .transformations
            .iter()
            .map(|t| {
                row([
                    code(&t.output),
                    type_of(def, &t.output),
                    code(&t.feature),
                    code(t.encoder.name()),
                    encoder_parameters(&t.encoder),
                ])
            })
            .collect();
        table(
            &mut out,
            &["output", "type", "reads", "encoder", "fitted parameters"],
            &rows,
        );
    }

    out.push_str("## Expectations\n\n");
    let rows: Vec<Vec<String>> = def
        .feature_names()
        .into_iter()
        .flat_map(|f| {
            expectations_text(state, name, f)
                .into_iter()
                .map(move |(e, expected)| row([code(f), code(&e), code(&expected)]))
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No expectations.\n\n");
    } else {
        table(&mut out, &["feature", "expectation", "expected"], &rows);
    }

    out.push_str("## Used by feature sets\n\n");
    let mut rows = vec![];
    for (set, versions) in &state.feature_sets {
        for v in versions {
            let Some(pinned) = v.groups.get(name) else {
                continue;
            };
            let features: Vec<String> = v
                .features
                .iter()
                .filter(|f| f.group == name)
                .map(|f| f.feature.clone())
                .collect();
            let definition = if pinned.version == g.version {
                format!("{} (current)", pinned.version)
            } else {
                format!("{} (an earlier definition)", pinned.version)
            };
            rows.push(row([
                cx.set_link(set, "../"),
                v.version.to_string(),
                definition,
                codes(&features),
            ]));
        }
    }
    if rows.is_empty() {
        out.push_str("No feature set uses this group.\n\n");
    } else {
        table(
            &mut out,
            &["set", "version", "pinned definition", "features"],
            &rows,
        );
    }

    out.push_str("## Lineage\n\n");
    let focus = [Node {
        kind: "feature_group",
        name: name.to_string(),
        version: Some(g.version),
    }];
    mermaid(&mut out, &cx.lineage(name), &focus);
    out
}
