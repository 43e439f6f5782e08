//! `EXPORT FEATURE SET name [VERSION n] TO 'path' [FORMAT parquet]
//! [FOR ENTITIES 'table' TIMESTAMP 'column']` (docs/sql-reference.md).
//!
//! - With `FOR ENTITIES`: one file, the point-in-time training set of the version over that
//!   entity table (`training_set('name@n', table, column)`), at `<path>/<name>_v<n>.parquet`
//!   (or at `path` itself when it ends in `.parquet`).
//! - Without: one file per feature group of the version, `<path>/<name>_v<n>/<group>.parquet`,
//!   holding the group's entity keys, timestamp (and CREATED) and the set's features of that
//!   group, one row per event, computed from the definitions the version pinned.
//!
//! Files are written through object_store (local directories, `s3://` with the configured
//! endpoint and credentials) as a stream: batches go to the Parquet writer as the query
//! produces them, and the writer uploads in parts, so memory stays bounded whatever the size.
//! A file appears under its name only when complete (a multipart upload is completed, a local
//! file renamed, at the end); a failed export leaves no file that looks complete. Each file
//! carries `fstore.feature_set`, `fstore.version`, `fstore.features` and `fstore.definition`
//! (the version as JSON) in its Parquet key-value metadata. Progress is reported through
//! [`Engine::progress`] (the CLI's progress line).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_schema::{DataType, Field, Schema};
use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;

use crate::engine::Engine;
use crate::error::{FStoreError, invalid};
use crate::features::statements::ExportFeatureSet;
use crate::registry::FeatureSetVersion;

/// Where the files go: the store and a path (a directory, or a `.parquet` file).
struct Target {
    store_url: ObjectStoreUrl,
    /// How messages name the location (`s3://bucket/prefix`, `file:///dir`).
    display: String,
    path: Path,
    is_file: bool,
}

fn target(path: &str) -> Result<Target> {
    let url = if path.contains("://") {
        url::Url::parse(path).map_err(|e| {
            invalid(format!(
                "EXPORT FEATURE SET: invalid location '{path}': {e}"
            ))
        })?
    } else {
        let abs = std::path::absolute(path)
            .map_err(|e| invalid(format!("EXPORT FEATURE SET: invalid path '{path}': {e}")))?;
        url::Url::from_file_path(&abs)
            .map_err(|_| invalid(format!("EXPORT FEATURE SET: invalid path '{path}'")))?
    };
    if !matches!(url.scheme(), "file" | "s3") {
        return Err(invalid(format!(
            "EXPORT FEATURE SET: unsupported location '{path}': use a local path or s3://bucket/prefix"
        )));
    }
    let store_url = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
    let object_path = Path::from_url_path(url.path()).map_err(|e| {
        invalid(format!(
            "EXPORT FEATURE SET: invalid location '{path}': {e}"
        ))
    })?;
    let is_file = url.path().ends_with(".parquet");
    Ok(Target {
        store_url,
        display: url.to_string().trim_end_matches('/').to_string(),
        path: object_path,
        is_file,
    })
}

/// One file to write: where, and the rows.
struct Output {
    path: Path,
    display: String,
    plan: LogicalPlan,
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Plans the files of an export.
async fn outputs(
    engine: &Engine,
    e: &ExportFeatureSet,
    set: &FeatureSetVersion,
    t: &Target,
) -> Result<Vec<Output>> {
    let state = engine.state();
    let base = format!("{}_v{}", set.name, set.version);
    let child = |name: &str| -> (Path, String) {
        (t.path.clone().join(name), format!("{}/{name}", t.display))
    };
    if let Some((entities, ts)) = &e.entities {
        let sql = format!(
            "SELECT * FROM training_set({}, {}, {})",
            sql_string(&format!("{}@{}", set.name, set.version)),
            sql_string(entities),
            sql_string(ts)
        );
        let plan = state.create_logical_plan(&sql).await?;
        let (path, display) = if t.is_file {
            (t.path.clone(), t.display.clone())
        } else {
            child(&format!("{base}.parquet"))
        };
        return Ok(vec![Output {
            path,
            display,
            plan,
        }]);
    }
    if t.is_file && set.groups.len() > 1 {
        return Err(invalid(format!(
            "EXPORT FEATURE SET {}: its features come from {} feature groups, one file each; give a directory, or FOR ENTITIES to export one training set",
            set.name,
            set.groups.len()
        )));
    }
    let mut out = Vec::new();
    for (name, pinned) in &set.groups {
        let def = &pinned.def;
        let features: Vec<&str> = set
            .features
            .iter()
            .filter(|f| &f.group == name)
            .map(|f| f.feature.as_str())
            .collect();
        let plan = super::plan(def, &state).await?;
        let mut columns: Vec<&str> = def.entity.iter().map(String::as_str).collect();
        columns.push(&def.timestamp);
        if let Some(c) = &def.created {
            columns.push(c);
        }
        columns.extend(features);
        let select: Vec<Expr> = columns
            .iter()
            .map(|c| datafusion::prelude::ident(*c))
            .collect();
        let plan = LogicalPlanBuilder::from(plan).project(select)?.build()?;
        let (path, display) = if t.is_file {
            (t.path.clone(), t.display.clone())
        } else {
            let p = t
                .path
                .clone()
                .join(base.as_str())
                .join(format!("{name}.parquet"));
            (p, format!("{}/{base}/{name}.parquet", t.display))
        };
        out.push(Output {
            path,
            display,
            plan,
        });
    }
    Ok(out)
}

/// Runs an export; returns one row per file written (file, rows, bytes).
/// Exports a set version; returns the summary rows (file, rows, bytes) and what the registry
/// records of it.
pub async fn export(
    engine: &Engine,
    e: &ExportFeatureSet,
) -> Result<(RecordBatch, crate::registry::ExportRecord)> {
    let set = engine.registry().state().feature_set(&e.reference)?.clone();
    let t = target(&e.path)?;
    let state = engine.state();
    let store = state
        .runtime_env()
        .object_store(&t.store_url)
        .map_err(|err| {
            FStoreError::unavailable(format!(
                "EXPORT FEATURE SET: cannot reach {}: {}",
                t.display,
                crate::error::user_message(&err)
            ))
        })?;
    let definition = serde_json::to_string(&set)
        .map_err(|err| FStoreError::new(crate::error::ErrorKind::Internal, err.to_string()))?;
    let features = set
        .features
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let metadata = vec![
        KeyValue::new("fstore.feature_set".to_string(), set.name.clone()),
        KeyValue::new("fstore.version".to_string(), set.version.to_string()),
        KeyValue::new("fstore.features".to_string(), features),
        KeyValue::new("fstore.definition".to_string(), definition),
    ];
    let mut files = Vec::new();
    for out in outputs(engine, e, &set, &t).await? {
        let df = DataFrame::new(state.clone(), out.plan);
        let mut stream = df.execute_stream().await?;
        // The keys go into the Arrow schema too, so readers that only look there (pyarrow's
        // schema.metadata) see them.
        let schema_metadata = metadata
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
            .collect();
        // View types become their plain forms: every Parquet reader understands those.
        let fields: Vec<Field> = stream
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let t = match f.data_type() {
                    DataType::Utf8View => DataType::Utf8,
                    DataType::BinaryView => DataType::Binary,
                    t => t.clone(),
                };
                f.as_ref().clone().with_data_type(t)
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, schema_metadata));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(metadata.clone()))
            .build();
        let upload = BufWriter::new(Arc::clone(&store), out.path.clone());
        let mut writer = AsyncArrowWriter::try_new(upload, Arc::clone(&schema), Some(props))?;
        let mut rows = 0u64;
        let mut last = Instant::now();
        engine.progress(&format!("exporting to {}", out.display));
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).await?;
            if last.elapsed() >= Duration::from_millis(500) {
                last = Instant::now();
                engine.progress(&format!(
                    "exporting to {}: {rows} rows, {:.1} MB",
                    out.display,
                    writer.bytes_written() as f64 / 1e6
                ));
            }
        }
        writer.close().await.map_err(|err| {
            FStoreError::unavailable(format!(
                "EXPORT FEATURE SET: writing {} failed: {err}",
                out.display
            ))
        })?;
        let bytes = store
            .head(&out.path)
            .await
            .map(|m| m.size)
            .unwrap_or_default();
        engine.progress(&format!(
            "exported {rows} rows ({:.1} MB) to {}",
            bytes as f64 / 1e6,
            out.display
        ));
        files.push((out.display, rows, bytes));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]));
    let summary = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| f.0.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.1))),
            Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.2))),
        ],
    )?;
    let record = crate::registry::ExportRecord {
        set: set.name.clone(),
        version: set.version,
        path: e.path.clone(),
        rows: files.iter().map(|f| f.1).sum(),
        files: files.into_iter().map(|f| f.0).collect(),
        at: 0,
    };
    Ok((summary, record))
}
