//! Markdown and Mermaid text for the catalog: code spans, free text, tables, fences, times,
//! file names and the lineage diagram. Everything a user wrote (names, descriptions, SQL)
//! goes through one of these before it reaches a page.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write;

use crate::governance::lineage::{Edge, Node};

/// `s` as an inline code span (names, types, SQL): a backtick run longer than any inside
/// it, newlines as spaces.
pub fn code(s: &str) -> String {
    let s = s.replace("\r\n", " ").replace(['\n', '\r'], " ");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    // A span starting or ending with a backtick (or empty) needs a space of padding.
    if s.is_empty() || s.starts_with('`') || s.ends_with('`') {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

/// Free text (descriptions, paths): HTML and backslashes made literal; newlines kept
/// ([`table`] turns them into `<br>` inside cells).
pub fn text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A description, or an italic *undocumented* when there is none (or only blanks).
pub fn description(d: Option<&str>) -> String {
    match d.map(str::trim) {
        Some(d) if !d.is_empty() => text(d),
        _ => "*undocumented*".to_string(),
    }
}

/// Whether a description documents anything.
pub fn documented(d: Option<&str>) -> bool {
    d.is_some_and(|d| !d.trim().is_empty())
}

/// One table cell: pipes escaped, line breaks as `<br>`.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

/// Appends a GitHub-flavoured Markdown table (cells already rendered with [`code`],
/// [`text`] or links; they are escaped for the table here).
pub fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// A fenced code block whose fence no line of `body` can close.
pub fn fence(out: &mut String, lang: &str, body: &str) {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{ticks}{lang}\n{}\n{ticks}\n", body.trim_end());
}

/// Microseconds since the epoch as ISO 8601 UTC (`2024-01-31T00:00:00Z`).
pub fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{micros} µs since the epoch"))
}

/// A file-name-safe form of `name`: `[A-Za-z0-9_.-]` kept, anything else `_` (never empty,
/// never `.` or `..`).
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        format!("_{s}")
    } else {
        s
    }
}

/// FNV-1a: a hash that is the same on every run and platform.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The file stem of every name: the name itself when it is safe and no other name's file
/// would be the same on a case-insensitive file system; otherwise the sanitized name
/// followed by a hash of the original, so distinct names never share a page.
pub fn file_stems<'a>(names: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, String> {
    let names: BTreeSet<&String> = names.into_iter().collect();
    // Safe names keep their name unless another safe name differs from it only in case.
    let mut folded: BTreeMap<String, usize> = BTreeMap::new();
    for n in names.iter().filter(|n| sanitize(n) == n.as_str()) {
        *folded.entry(n.to_ascii_lowercase()).or_default() += 1;
    }
    let mut used = HashSet::new();
    names
        .into_iter()
        .map(|n| {
            let safe = sanitize(n);
            let base = if safe == *n && folded[&safe.to_ascii_lowercase()] == 1 {
                safe
            } else {
                format!("{safe}-{:08x}", stable_hash(n) as u32)
            };
            // Only a name that looks like another's hashed stem gets here twice.
            let mut stem = base.clone();
            let mut k = 2;
            while !used.insert(stem.to_ascii_lowercase()) {
                stem = format!("{base}-{k}");
                k += 1;
            }
            (n.clone(), stem)
        })
        .collect()
}

/// A Mermaid node id: `kind:name@version` with every non-alphanumeric as `_`.
fn mermaid_id(node: &Node) -> String {
    node.id()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A node's label, escaped for a quoted Mermaid label.
fn mermaid_label(node: &Node) -> String {
    let name = match node.version {
        Some(v) => format!("{}@{v}", node.name),
        None => node.name.clone(),
    };
    let label = format!("{}: {name}", node.kind.replace('_', " "));
    label
        .replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace("\r\n", " ")
        .replace(['\n', '\r'], " ")
}

/// A ```` ```mermaid ```` flowchart of `edges`, with the `focus` nodes (the page's object)
/// drawn bold. Ids are unique even when two node ids sanitize alike.
pub fn mermaid(out: &mut String, edges: &BTreeSet<Edge>, focus: &[Node]) {
    let mut nodes: BTreeSet<&Node> = focus.iter().collect();
    for e in edges {
        nodes.insert(&e.from);
        nodes.insert(&e.to);
    }
    let mut used = HashSet::new();
    let mut ids: BTreeMap<&Node, String> = BTreeMap::new();
    for n in &nodes {
        let base = mermaid_id(n);
        let mut id = base.clone();
        let mut k = 2;
        while !used.insert(id.clone()) {
            id = format!("{base}_{k}");
            k += 1;
        }
        ids.insert(n, id);
    }
    out.push_str("```mermaid\nflowchart LR\n");
    for n in &nodes {
        let _ = writeln!(out, "    {}[\"{}\"]", ids[n], mermaid_label(n));
    }
    // Edges that differ only in time (two exports to one place) are drawn once.
    let mut drawn = HashSet::new();
    for e in edges {
        if drawn.insert((&e.from, &e.to, e.relation)) {
            let _ = writeln!(
                out,
                "    {} -->|{}| {}",
                ids[&e.from], e.relation, ids[&e.to]
            );
        }
    }
    if !focus.is_empty() {
        let focused: BTreeSet<&str> = focus.iter().map(|n| ids[n].as_str()).collect();
        let focused: Vec<&str> = focused.into_iter().collect();
        out.push_str("    classDef focus stroke-width:3px\n");
        let _ = writeln!(out, "    class {} focus", focused.join(","));
    }
    out.push_str("```\n\n");
}
