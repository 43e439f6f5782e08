//! Lineage, end to end, as a graph derived from the registry: files → external tables;
//! tables and views → the tables and views their statements read (`CREATE TABLE … AS`,
//! `INSERT … SELECT`, `CREATE VIEW`); sources → feature groups; feature-group versions →
//! the feature-set versions that pin them; set versions → exports (location, time) and the
//! online store (materializations).
//!
//! `lineage('object' [, 'upstream' | 'downstream'])` walks it from an object (a relation,
//! `group`, `set` or `set@n`): every edge reachable, with its depth. The feature catalog
//! (`fstore catalog`) draws it.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::scalar::ScalarValue;

use crate::error::FStoreError;
use crate::registry::{FeatureSource, Registry, RegistryState, Relation, RunStatus};

/// A node of the lineage graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// `file`, `table`, `view`, `feature_group`, `feature_set`, `export` or `online`.
    pub kind: &'static str,
    pub name: String,
    /// The version (registry sequence of a group's definition, a set's version number).
    pub version: Option<u64>,
}

impl Node {
    fn new(kind: &'static str, name: impl Into<String>, version: Option<u64>) -> Self {
        Self {
            kind,
            name: name.into(),
            version,
        }
    }

    /// `kind:name[@version]`, how the graph names it.
    pub fn id(&self) -> String {
        match self.version {
            Some(v) => format!("{}:{}@{v}", self.kind, self.name),
            None => format!("{}:{}", self.kind, self.name),
        }
    }
}

/// One edge: `from` feeds `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    pub from: Node,
    pub to: Node,
    /// What makes the edge: `location`, `reads`, `source`, `pins`, `export`, `materialize`.
    pub relation: &'static str,
    /// When it happened (exports, materializations; µs).
    pub at: Option<i64>,
}

/// The relations a SQL text reads (empty when it does not parse).
fn reads(sql: &str) -> Vec<String> {
    let Ok(statements) = datafusion::sql::parser::DFParser::parse_sql(sql) else {
        return vec![];
    };
    let mut out = BTreeSet::new();
    for s in &statements {
        if let Ok((relations, _)) = datafusion::sql::resolve::resolve_table_references(s, true) {
            out.extend(relations.iter().map(|r| r.table().to_string()));
        }
    }
    out.into_iter().collect()
}

/// The node a relation name stands for now (a table, view or feature group).
fn relation_node(state: &RegistryState, name: &str) -> Node {
    match state.relations.get(name).map(|r| &r.def) {
        Some(Relation::View(_)) => Node::new("view", name, None),
        Some(_) => Node::new("table", name, None),
        None if state.feature_groups.contains_key(name) => Node::new("feature_group", name, None),
        None => Node::new("table", name, None),
    }
}

/// Every edge of the registry's lineage graph, sorted.
pub fn graph(state: &RegistryState) -> Vec<Edge> {
    let mut edges = BTreeSet::new();
    let mut edge = |from: Node, to: Node, relation: &'static str, at: Option<i64>| {
        edges.insert(Edge {
            from,
            to,
            relation,
            at,
        });
    };
    for (name, r) in &state.relations {
        match &r.def {
            Relation::External(t) => {
                for l in &t.locations {
                    edge(
                        Node::new("file", l.clone(), None),
                        Node::new("table", name, None),
                        "location",
                        None,
                    );
                }
            }
            Relation::View(v) => {
                for read in reads(&v.sql) {
                    edge(
                        relation_node(state, &read),
                        Node::new("view", name, None),
                        "reads",
                        None,
                    );
                }
            }
            Relation::Managed(_) => {}
        }
    }
    // Managed tables: what their CREATE TABLE … AS and INSERT … SELECT statements read.
    for h in &state.history {
        let current = matches!(
            state.relations.get(&h.object_name).map(|r| &r.def),
            Some(Relation::Managed(_))
        );
        if current && (h.action == "CREATE TABLE" || h.action == "INSERT") {
            for read in reads(&h.statement) {
                if read != h.object_name {
                    edge(
                        relation_node(state, &read),
                        Node::new("table", &h.object_name, None),
                        "reads",
                        None,
                    );
                }
            }
        }
    }
    let group_edges =
        |name: &str,
         version: u64,
         source: &FeatureSource,
         edge: &mut dyn FnMut(Node, Node, &'static str, Option<i64>)| {
            let to = Node::new("feature_group", name, Some(version));
            let read = match source {
                FeatureSource::Relation { name } => vec![name.clone()],
                FeatureSource::Query { sql } => reads(sql),
            };
            for r in read {
                edge(relation_node(state, &r), to.clone(), "source", None);
            }
        };
    for (name, g) in &state.feature_groups {
        group_edges(name, g.version, &g.def.source, &mut edge);
    }
    for versions in state.feature_sets.values() {
        for v in versions {
            let set = Node::new("feature_set", &v.name, Some(v.version));
            for (group, pinned) in &v.groups {
                group_edges(group, pinned.version, &pinned.def.source, &mut edge);
                edge(
                    Node::new("feature_group", group, Some(pinned.version)),
                    set.clone(),
                    "pins",
                    None,
                );
            }
        }
    }
    for e in &state.exports {
        edge(
            Node::new("feature_set", &e.set, Some(e.version)),
            Node::new("export", e.path.clone(), None),
            "export",
            Some(e.at),
        );
    }
    for runs in state.materializations.values() {
        // The latest successful run of each version.
        let mut latest = std::collections::BTreeMap::new();
        for r in runs.iter().filter(|r| r.status == RunStatus::Succeeded) {
            latest.insert(r.version, r.finished);
        }
        for (version, at) in latest {
            let set = runs[0].set.clone();
            edge(
                Node::new("feature_set", &set, Some(version)),
                Node::new("online", &set, Some(version)),
                "materialize",
                Some(at),
            );
        }
    }
    edges.into_iter().collect()
}

/// Whether `node` is the object `name` (`set@n` names one version; a bare name every one).
fn is(node: &Node, name: &str) -> bool {
    match name.rsplit_once('@') {
        Some((n, v)) if node.kind == "feature_set" => {
            node.name == n && v.parse::<u64>().ok() == node.version
        }
        _ => {
            node.name == name
                && matches!(
                    node.kind,
                    "table" | "view" | "feature_group" | "feature_set"
                )
        }
    }
}

/// The edges reachable from `object`, upstream (what feeds it) or downstream (what it
/// feeds), breadth first, with their depth (1 = adjacent).
pub fn walk(edges: &[Edge], object: &str, upstream: bool) -> Vec<(u64, Edge)> {
    let mut out = vec![];
    let mut seen_nodes: HashSet<Node> = HashSet::new();
    let mut seen_edges: HashSet<&Edge> = HashSet::new();
    let mut queue: VecDeque<(Node, u64)> = VecDeque::new();
    for e in edges {
        for n in [&e.from, &e.to] {
            if is(n, object) && seen_nodes.insert(n.clone()) {
                queue.push_back((n.clone(), 0));
            }
        }
    }
    while let Some((node, depth)) = queue.pop_front() {
        for e in edges {
            // A group's versions are one object: follow the unversioned name too.
            let (near, far) = if upstream {
                (&e.to, &e.from)
            } else {
                (&e.from, &e.to)
            };
            let matches = near == &node
                || (node.kind == "feature_group"
                    && near.kind == "feature_group"
                    && near.name == node.name
                    && node.version.is_none());
            if matches && seen_edges.insert(e) {
                out.push((depth + 1, e.clone()));
                if seen_nodes.insert(far.clone()) {
                    queue.push_back((far.clone(), depth + 1));
                }
            }
        }
    }
    out
}

/// `lineage('object' [, 'upstream' | 'downstream'])`.
#[derive(Debug)]
pub struct LineageFunction {
    pub registry: Arc<Registry>,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("depth", DataType::UInt64, false),
        Field::new("from_kind", DataType::Utf8, false),
        Field::new("from_name", DataType::Utf8, false),
        Field::new("from_version", DataType::UInt64, true),
        Field::new("relation", DataType::Utf8, false),
        Field::new("to_kind", DataType::Utf8, false),
        Field::new("to_name", DataType::Utf8, false),
        Field::new("to_version", DataType::UInt64, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

fn string_arg(args: &[Expr], i: usize) -> Result<Option<String>> {
    match args.get(i) {
        None => Ok(None),
        Some(Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        )) => Ok(Some(s.clone())),
        Some(other) => Err(FStoreError::invalid(format!(
            "lineage(object [, direction]): arguments are strings, not {other}"
        ))
        .into()),
    }
}

impl TableFunctionImpl for LineageFunction {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if args.is_empty() || args.len() > 2 {
            return Err(FStoreError::invalid(
                "lineage(object [, 'upstream' | 'downstream']) takes one or two arguments",
            )
            .into());
        }
        let object = string_arg(args, 0)?.unwrap_or_default();
        let upstream = match string_arg(args, 1)?
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("upstream") => true,
            Some("downstream") => false,
            Some(other) => {
                return Err(FStoreError::invalid(format!(
                    "lineage: direction '{other}' is neither 'upstream' nor 'downstream'"
                ))
                .into());
            }
        };
        let state = self.registry.state();
        let edges = graph(&state);
        if !edges
            .iter()
            .any(|e| is(&e.from, &object) || is(&e.to, &object))
            && !state.relations.contains_key(&object)
            && !state.feature_groups.contains_key(&object)
            && state.feature_set(&object).is_err()
        {
            return Err(FStoreError::not_found(format!(
                "lineage: no table, view, feature group or feature set '{object}'"
            ))
            .into());
        }
        let rows = walk(&edges, &object, upstream);
        let s = |f: &dyn Fn(&Edge) -> String| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|(_, e)| Some(f(e)))
                    .collect::<StringArray>(),
            )
        };
        let v = |f: &dyn Fn(&Edge) -> Option<u64>| -> ArrayRef {
            Arc::new(rows.iter().map(|(_, e)| f(e)).collect::<UInt64Array>())
        };
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(rows.iter().map(|(d, _)| Some(*d)).collect::<UInt64Array>()),
                s(&|e| e.from.kind.to_string()),
                s(&|e| e.from.name.clone()),
                v(&|e| e.from.version),
                s(&|e| e.relation.to_string()),
                s(&|e| e.to.kind.to_string()),
                s(&|e| e.to.name.clone()),
                v(&|e| e.to.version),
                Arc::new(
                    rows.iter()
                        .map(|(_, e)| e.at)
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC"),
                ),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema(), vec![vec![batch]])?))
    }
}
