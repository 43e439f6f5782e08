//! What users see of feature groups as data: `SHOW FEATURE GROUPS`, `DESCRIBE FEATURE GROUP`,
//! and the system tables `fstore.feature_groups` and `fstore.features` (every feature with its
//! group, type, definition, description, tags and owner — the governance view).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{
    ArrayRef, Int64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder, UInt64Array,
};
use datafusion::error::Result;

use crate::providers::system::SystemTable;
use crate::registry::{Encoder, FeatureGroup, FeatureKind, FeatureSource, RegistryState};

fn source_text(s: &FeatureSource) -> String {
    match s {
        FeatureSource::Relation { name } => name.clone(),
        FeatureSource::Query { sql } => format!("({sql})"),
    }
}

fn strings<I: IntoIterator<Item = Option<String>>>(values: I) -> ArrayRef {
    Arc::new(StringArray::from(values.into_iter().collect::<Vec<_>>()))
}

fn tags_array<'a>(groups: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for tags in groups {
        for t in tags {
            b.values().append_value(t);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn tags_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// `SHOW FEATURE GROUPS`.
pub fn show_feature_groups(state: &RegistryState) -> Result<RecordBatch> {
    let groups: Vec<&FeatureGroup> = state.feature_groups.values().map(|g| &g.def).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("entity", DataType::Utf8, false),
        Field::new("timestamp_column", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("features", DataType::UInt64, false),
        Field::new("ttl", DataType::Utf8, true),
        Field::new("owner", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        strings(groups.iter().map(|g| Some(g.name.clone()))),
        strings(groups.iter().map(|g| Some(g.entity.join(", ")))),
        strings(groups.iter().map(|g| Some(g.timestamp.clone()))),
        strings(groups.iter().map(|g| Some(source_text(&g.source)))),
        Arc::new(UInt64Array::from_iter_values(
            groups.iter().map(|g| g.feature_names().len() as u64),
        )),
        strings(
            groups
                .iter()
                .map(|g| g.ttl.as_ref().map(|t| t.text.clone())),
        ),
        strings(groups.iter().map(|g| g.owner.clone())),
        strings(groups.iter().map(|g| g.description.clone())),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// One row per output column of a group: its role, type, definition, description.
struct ColumnRow {
    name: String,
    role: &'static str,
    data_type: String,
    definition: Option<String>,
    window: Option<String>,
    description: Option<String>,
}

fn column_rows(g: &FeatureGroup) -> Vec<ColumnRow> {
    let type_of = |n: &str| {
        g.schema
            .field_with_name(n)
            .map(|f| f.data_type().to_string())
            .unwrap_or_default()
    };
    let mut rows = Vec::new();
    for k in &g.entity {
        rows.push(ColumnRow {
            name: k.clone(),
            role: "entity",
            data_type: type_of(k),
            definition: None,
            window: None,
            description: None,
        });
    }
    rows.push(ColumnRow {
        name: g.timestamp.clone(),
        role: "timestamp",
        data_type: type_of(&g.timestamp),
        definition: None,
        window: None,
        description: None,
    });
    if let Some(c) = &g.created {
        rows.push(ColumnRow {
            name: c.clone(),
            role: "created",
            data_type: type_of(c),
            definition: None,
            window: None,
            description: None,
        });
    }
    for f in &g.features {
        let window = match &f.kind {
            FeatureKind::Window { window, .. } => Some(window.text.clone()),
            _ => None,
        };
        rows.push(ColumnRow {
            name: f.name.clone(),
            role: "feature",
            data_type: type_of(&f.name),
            definition: Some(f.kind.to_sql()),
            window,
            description: f.description.clone(),
        });
    }
    for t in &g.transformations {
        let params = match &t.encoder {
            Encoder::TargetEncoding { target, smoothing } => {
                format!("target => {target}, smoothing => {smoothing}")
            }
            Encoder::OneHot { categories } | Encoder::Label { categories } => {
                format!("{} categories", categories.len())
            }
            Encoder::Frequency { categories, .. } => format!("{} categories", categories.len()),
            Encoder::Hash { buckets } => format!("buckets => {buckets}"),
            Encoder::Standard { mean, std } => format!("mean => {mean}, std => {std}"),
            Encoder::MinMax { min, max } => format!("min => {min}, max => {max}"),
        };
        rows.push(ColumnRow {
            name: t.output.clone(),
            role: "transformation",
            data_type: type_of(&t.output),
            definition: Some(format!("{}({}; {params})", t.encoder.name(), t.feature)),
            window: None,
            description: None,
        });
    }
    rows
}

/// `DESCRIBE FEATURE GROUP g`.
pub fn describe_feature_group(g: &FeatureGroup) -> Result<RecordBatch> {
    let rows = column_rows(g);
    let schema = Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("definition", DataType::Utf8, true),
        Field::new("window", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(rows.iter().map(|r| Some(r.name.clone()))),
            strings(rows.iter().map(|r| Some(r.role.to_string()))),
            strings(rows.iter().map(|r| Some(r.data_type.clone()))),
            strings(rows.iter().map(|r| r.definition.clone())),
            strings(rows.iter().map(|r| r.window.clone())),
            strings(rows.iter().map(|r| r.description.clone())),
        ],
    )?)
}

/// `fstore.feature_groups`.
#[derive(Debug)]
pub struct FeatureGroupsTable;

impl SystemTable for FeatureGroupsTable {
    fn name(&self) -> &'static str {
        "feature_groups"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("entity", DataType::Utf8, false),
            Field::new("timestamp_column", DataType::Utf8, false),
            Field::new("created_column", DataType::Utf8, true),
            Field::new("source", DataType::Utf8, false),
            Field::new("features", DataType::Int64, false),
            Field::new("ttl", DataType::Utf8, true),
            Field::new("description", DataType::Utf8, true),
            Field::new("tags", tags_type(), false),
            Field::new("owner", DataType::Utf8, true),
            Field::new("version", DataType::UInt64, false),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let groups: Vec<_> = state.feature_groups.values().collect();
        let mut features = Int64Builder::new();
        for g in &groups {
            features.append_value(g.def.feature_names().len() as i64);
        }
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                strings(groups.iter().map(|g| Some(g.def.name.clone()))),
                strings(groups.iter().map(|g| Some(g.def.entity.join(", ")))),
                strings(groups.iter().map(|g| Some(g.def.timestamp.clone()))),
                strings(groups.iter().map(|g| g.def.created.clone())),
                strings(groups.iter().map(|g| Some(source_text(&g.def.source)))),
                Arc::new(features.finish()),
                strings(
                    groups
                        .iter()
                        .map(|g| g.def.ttl.as_ref().map(|t| t.text.clone())),
                ),
                strings(groups.iter().map(|g| g.def.description.clone())),
                tags_array(groups.iter().map(|g| g.def.tags.as_slice())),
                strings(groups.iter().map(|g| g.def.owner.clone())),
                Arc::new(UInt64Array::from_iter_values(
                    groups.iter().map(|g| g.version),
                )),
            ],
        )?)
    }
}

/// `fstore.features`: every feature of every group.
#[derive(Debug)]
pub struct FeaturesTable;

impl SystemTable for FeaturesTable {
    fn name(&self) -> &'static str {
        "features"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("feature_group", DataType::Utf8, false),
            Field::new("feature", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("data_type", DataType::Utf8, false),
            Field::new("definition", DataType::Utf8, true),
            Field::new("window", DataType::Utf8, true),
            Field::new("description", DataType::Utf8, true),
            Field::new("tags", tags_type(), false),
            Field::new("owner", DataType::Utf8, true),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let mut rows = Vec::new();
        for g in state.feature_groups.values() {
            for r in column_rows(&g.def) {
                if matches!(r.role, "feature" | "transformation") {
                    rows.push((&g.def, r));
                }
            }
        }
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                strings(rows.iter().map(|(g, _)| Some(g.name.clone()))),
                strings(rows.iter().map(|(_, r)| Some(r.name.clone()))),
                strings(rows.iter().map(|(g, r)| {
                    Some(
                        match g.feature(&r.name).map(|f| &f.kind) {
                            Some(FeatureKind::Column { .. }) => "column",
                            Some(FeatureKind::Expression { .. }) => "expression",
                            Some(FeatureKind::Window { .. }) => "window",
                            None => "transformation",
                        }
                        .to_string(),
                    )
                })),
                strings(rows.iter().map(|(_, r)| Some(r.data_type.clone()))),
                strings(rows.iter().map(|(_, r)| r.definition.clone())),
                strings(rows.iter().map(|(_, r)| r.window.clone())),
                strings(rows.iter().map(|(_, r)| r.description.clone())),
                tags_array(rows.iter().map(|(g, _)| g.tags.as_slice())),
                strings(rows.iter().map(|(g, _)| g.owner.clone())),
            ],
        )?)
    }
}
