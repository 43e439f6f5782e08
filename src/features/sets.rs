//! Feature sets: resolving `CREATE FEATURE SET` into a version (features expanded, group
//! definitions pinned), and what users see of sets: `SHOW FEATURE SETS`,
//! `DESCRIBE FEATURE SET`, `feature_set_versions(name)` and the `fstore.lineage` system table
//! (set version → feature → group (pinned version) → source).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{
    ArrayRef, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
    UInt64Array,
};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;

use crate::args::{at_most, identify_call, literal};
use crate::error::FStoreError;
use crate::features::statements::{CreateFeatureSet, FeatureList};
use crate::providers::system::{SystemTable, utc_micros};
use crate::registry::{
    FeatureRef, FeatureSetVersion, FeatureSource, PinnedGroup, Registry, RegistryState,
};

/// Resolves `CREATE FEATURE SET` against the registry (and runs `FEATURES FROM (query)`).
pub async fn resolve(
    stmt: &CreateFeatureSet,
    state: &RegistryState,
    session: &SessionState,
    principal: &str,
) -> Result<FeatureSetVersion> {
    let set = stmt.name.as_str();
    let listed: Vec<(Option<String>, String)> = match &stmt.features {
        FeatureList::Listed(l) => l
            .iter()
            .map(|(g, f)| (Some(g.clone()), f.clone()))
            .collect(),
        FeatureList::Query(sql) => features_from_query(sql, session, set).await?,
    };
    let mut features: Vec<FeatureRef> = Vec::new();
    for (group, feature) in listed {
        let group = match group {
            Some(g) => g,
            None => {
                // A bare feature name must belong to exactly one group.
                let owners: Vec<&str> = state
                    .feature_groups
                    .values()
                    .filter(|g| g.def.feature_names().contains(&feature.as_str()))
                    .map(|g| g.def.name.as_str())
                    .collect();
                match owners.as_slice() {
                    [one] => one.to_string(),
                    [] => {
                        return Err(FStoreError::not_found(format!(
                            "feature set '{set}': no feature group has a feature '{feature}'"
                        ))
                        .into());
                    }
                    many => {
                        return Err(FStoreError::invalid(format!(
                            "feature set '{set}': feature '{feature}' is ambiguous (in {}); write group.feature",
                            many.join(", ")
                        ))
                        .into());
                    }
                }
            }
        };
        let g = state
            .group(&group)
            .map_err(|e| FStoreError::new(e.kind, format!("feature set '{set}': {}", e.message)))?;
        let names: Vec<String> = if feature == "*" {
            g.feature_names().iter().map(|s| s.to_string()).collect()
        } else if g.feature_names().contains(&feature.as_str()) {
            vec![feature.clone()]
        } else {
            return Err(FStoreError::not_found(format!(
                "feature set '{set}': feature '{feature}' not found in feature group '{group}' (it has: {})",
                g.feature_names().join(", ")
            ))
            .into());
        };
        for f in names {
            let r = FeatureRef {
                group: group.clone(),
                feature: f,
            };
            if !features.contains(&r) {
                features.push(r);
            }
        }
    }
    if features.is_empty() {
        return Err(FStoreError::invalid(format!("feature set '{set}' has no features")).into());
    }
    let mut groups = BTreeMap::new();
    for f in &features {
        if let Some(g) = state.feature_groups.get(&f.group) {
            groups
                .entry(f.group.clone())
                .or_insert_with(|| PinnedGroup {
                    version: g.version,
                    def: g.def.clone(),
                });
        }
    }
    Ok(FeatureSetVersion {
        name: stmt.name.clone(),
        version: 0,
        features,
        groups,
        author: stmt
            .metadata
            .get("author")
            .cloned()
            .unwrap_or_else(|| principal.to_string()),
        metadata: stmt.metadata.clone(),
        tags: stmt.tags.clone(),
        description: stmt.description.clone(),
        created_at: 0,
    })
}

/// Rows of `FEATURES FROM (query)`: `feature` (as `group.feature`, `group:feature` or a bare
/// name) and optionally `feature_group`.
async fn features_from_query(
    sql: &str,
    session: &SessionState,
    set: &str,
) -> Result<Vec<(Option<String>, String)>> {
    let plan = session.create_logical_plan(sql).await?;
    let batches = datafusion::dataframe::DataFrame::new(session.clone(), plan)
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let schema = b.schema();
        let Ok(fi) = schema.index_of("feature") else {
            return Err(FStoreError::invalid(format!(
                "feature set '{set}': FEATURES FROM (query) needs a column named 'feature'"
            ))
            .into());
        };
        let gi = schema.index_of("feature_group").ok();
        for r in 0..b.num_rows() {
            let text = |i: usize| -> Result<Option<String>> {
                Ok(match ScalarValue::try_from_array(b.column(i), r)? {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                        v
                    }
                    other if other.is_null() => None,
                    other => Some(other.to_string()),
                })
            };
            let Some(feature) = text(fi)? else { continue };
            let group = match gi {
                Some(gi) => text(gi)?,
                None => None,
            };
            match (group, feature.split_once(['.', ':'])) {
                (Some(g), _) => out.push((Some(g), feature)),
                (None, Some((g, f))) => out.push((Some(g.to_string()), f.to_string())),
                (None, None) => out.push((None, feature)),
            }
        }
    }
    Ok(out)
}

fn strings<I: IntoIterator<Item = Option<String>>>(values: I) -> ArrayRef {
    Arc::new(StringArray::from(values.into_iter().collect::<Vec<_>>()))
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

fn lists<'a>(rows: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for v in row {
            b.values().append_value(v);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn metadata_text(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

/// `SHOW FEATURE SETS`: one row per set, describing its latest version.
pub fn show_feature_sets(state: &RegistryState) -> Result<RecordBatch> {
    let latest: Vec<&FeatureSetVersion> = state
        .feature_sets
        .values()
        .filter_map(|v| v.last())
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("version", DataType::UInt64, false),
        Field::new("features", DataType::UInt64, false),
        Field::new("author", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(latest.iter().map(|s| Some(s.name.clone()))),
            Arc::new(UInt64Array::from_iter_values(
                latest.iter().map(|s| s.version),
            )),
            Arc::new(UInt64Array::from_iter_values(
                latest.iter().map(|s| s.features.len() as u64),
            )),
            strings(latest.iter().map(|s| Some(s.author.clone()))),
            strings(latest.iter().map(|s| s.description.clone())),
        ],
    )?)
}

/// `DESCRIBE FEATURE SET`: one row per feature, with its pinned group's definition.
pub fn describe_feature_set(set: &FeatureSetVersion, latest: u64) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("feature_group", DataType::Utf8, false),
        Field::new("group_version", DataType::UInt64, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("definition", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        // The version described and the set's own metadata, the same on every row (its
        // creation time is in `feature_set_versions`).
        Field::new("set_version", DataType::UInt64, false),
        Field::new("latest_version", DataType::UInt64, false),
        Field::new("author", DataType::Utf8, false),
        Field::new("set_description", DataType::Utf8, true),
        Field::new("tags", list_type(), false),
        Field::new("metadata", DataType::Utf8, false),
    ]));
    let mut rows = Vec::new();
    for f in &set.features {
        let pinned = set.groups.get(&f.group);
        let def = pinned.map(|p| &p.def);
        let data_type = def
            .and_then(|g| g.schema.field_with_name(&f.feature).ok())
            .map(|fd| fd.data_type().to_string())
            .unwrap_or_default();
        let feature = def.and_then(|g| g.feature(&f.feature));
        let definition = match feature {
            Some(feat) => Some(feat.kind.to_sql()),
            None => def
                .and_then(|g| g.transformations.iter().find(|t| t.output == f.feature))
                .map(|t| format!("{}({})", t.encoder.name(), t.feature)),
        };
        rows.push((
            f.feature.clone(),
            f.group.clone(),
            pinned.map(|p| p.version).unwrap_or(0),
            data_type,
            definition,
            feature.and_then(|x| x.description.clone()),
        ));
    }
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(rows.iter().map(|r| Some(r.0.clone()))),
            strings(rows.iter().map(|r| Some(r.1.clone()))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.2))),
            strings(rows.iter().map(|r| Some(r.3.clone()))),
            strings(rows.iter().map(|r| r.4.clone())),
            strings(rows.iter().map(|r| r.5.clone())),
            Arc::new(UInt64Array::from_value(set.version, rows.len())),
            Arc::new(UInt64Array::from_value(latest, rows.len())),
            strings(rows.iter().map(|_| Some(set.author.clone()))),
            strings(rows.iter().map(|_| set.description.clone())),
            lists(rows.iter().map(|_| set.tags.as_slice())),
            strings(rows.iter().map(|_| Some(metadata_text(&set.metadata)))),
        ],
    )?)
}

fn versions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("version", DataType::UInt64, false),
        Field::new("created_at", utc_micros(), false),
        Field::new("author", DataType::Utf8, false),
        Field::new("features", list_type(), false),
        Field::new("metadata", DataType::Utf8, false),
        Field::new("tags", list_type(), false),
        Field::new("description", DataType::Utf8, true),
    ]))
}

fn versions_batch(schema: SchemaRef, versions: &[&FeatureSetVersion]) -> Result<RecordBatch> {
    let features: Vec<Vec<String>> = versions
        .iter()
        .map(|v| v.features.iter().map(|f| f.to_string()).collect())
        .collect();
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(versions.iter().map(|v| Some(v.name.clone()))),
            Arc::new(UInt64Array::from_iter_values(
                versions.iter().map(|v| v.version),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(versions.iter().map(|v| v.created_at))
                    .with_timezone("UTC"),
            ),
            strings(versions.iter().map(|v| Some(v.author.clone()))),
            lists(features.iter().map(|f| f.as_slice())),
            strings(versions.iter().map(|v| Some(metadata_text(&v.metadata)))),
            lists(versions.iter().map(|v| v.tags.as_slice())),
            strings(versions.iter().map(|v| v.description.clone())),
        ],
    )?)
}

/// `feature_set_versions(name)`: every version of a set (a name without versions is an
/// error; a name with `%` lists the versions of every matching set).
#[derive(Debug)]
pub struct FeatureSetVersions {
    pub registry: Arc<Registry>,
}

impl TableFunctionImpl for FeatureSetVersions {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let f = "feature_set_versions";
        let exprs = args.exprs();
        at_most(exprs, 1, f, "name")?;
        let name = match literal(exprs, 0, f, "name")? {
            Some(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => s.clone(),
            _ => {
                return Err(FStoreError::invalid(format!(
                    "{f}: argument 1 (name) must be a string"
                ))
                .into());
            }
        };
        let state = self.registry.state();
        let versions: Vec<&FeatureSetVersion> = if name.contains('%') {
            let pattern = name.replace('%', "");
            state
                .feature_sets
                .iter()
                .filter(|(n, _)| n.contains(&pattern))
                .flat_map(|(_, v)| v.iter())
                .collect()
        } else {
            state
                .feature_sets
                .get(&name)
                .ok_or_else(|| FStoreError::not_found(format!("feature set '{name}' not found")))?
                .iter()
                .collect()
        };
        let schema = identify_call(&versions_schema(), f, exprs);
        let batch = versions_batch(Arc::clone(&schema), &versions)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// `fstore.lineage`: feature set version → feature → feature group (pinned version) → source.
#[derive(Debug)]
pub struct LineageTable;

impl SystemTable for LineageTable {
    fn name(&self) -> &'static str {
        "lineage"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("feature_set", DataType::Utf8, false),
            Field::new("set_version", DataType::UInt64, false),
            Field::new("feature", DataType::Utf8, false),
            Field::new("feature_group", DataType::Utf8, false),
            Field::new("group_version", DataType::UInt64, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("source_kind", DataType::Utf8, false),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let mut rows = Vec::new();
        for v in state.feature_sets.values().flatten() {
            for f in &v.features {
                let pinned = v.groups.get(&f.group);
                let (source, kind) = match pinned.map(|p| &p.def.source) {
                    Some(FeatureSource::Relation { name }) => (name.clone(), "relation"),
                    Some(FeatureSource::Query { sql }) => (sql.clone(), "query"),
                    None => (String::new(), "unknown"),
                };
                rows.push((
                    v.name.clone(),
                    v.version,
                    f.feature.clone(),
                    f.group.clone(),
                    pinned.map(|p| p.version).unwrap_or(0),
                    source,
                    kind,
                ));
            }
        }
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                strings(rows.iter().map(|r| Some(r.0.clone()))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
                strings(rows.iter().map(|r| Some(r.2.clone()))),
                strings(rows.iter().map(|r| Some(r.3.clone()))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.4))),
                strings(rows.iter().map(|r| Some(r.5.clone()))),
                strings(rows.iter().map(|r| Some(r.6.to_string()))),
            ],
        )?)
    }
}

/// `fstore.feature_sets`: every version of every set.
#[derive(Debug)]
pub struct FeatureSetsTable;

impl SystemTable for FeatureSetsTable {
    fn name(&self) -> &'static str {
        "feature_sets"
    }
    fn schema(&self) -> SchemaRef {
        versions_schema()
    }
    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let versions: Vec<&FeatureSetVersion> = state.feature_sets.values().flatten().collect();
        versions_batch(self.schema(), &versions)
    }
}
