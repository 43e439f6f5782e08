//! `fstore.drift_baselines`.

use super::*;

/// `fstore.drift_baselines`: one row per feature of every stored baseline.
#[derive(Debug)]
pub struct DriftBaselinesTable;

impl SystemTable for DriftBaselinesTable {
    fn name(&self) -> &'static str {
        "drift_baselines"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("feature_set", DataType::Utf8, false),
            Field::new("set_version", DataType::UInt64, false),
            Field::new("window_from", DataType::Utf8, false),
            Field::new("window_to", DataType::Utf8, false),
            Field::new("feature", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("rows", DataType::UInt64, false),
            Field::new("nulls", DataType::UInt64, false),
            Field::new("distinct_values", DataType::UInt64, false),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let rows: Vec<(&DriftBaseline, &BaselineFeature)> = state
            .baselines
            .values()
            .flat_map(|b| b.features.iter().map(move |f| (b, f)))
            .collect();
        let kind = |f: &BaselineFeature| match &f.sketch {
            BaselineSketch::Numeric { .. } => "numeric",
            BaselineSketch::Categorical { .. } => "categorical",
        };
        let distinct = |f: &BaselineFeature| match &f.sketch {
            BaselineSketch::Numeric { distinct, .. } => *distinct,
            BaselineSketch::Categorical { counts } => counts.len() as u64,
        };
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.set.as_str()),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.0.version),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.from.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.to.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter()
                        .map(|r| format!("{}.{}", r.1.group, r.1.feature)),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| kind(r.1)),
                )),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1.rows))),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.1.nulls),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| distinct(r.1)),
                )),
            ],
        )?)
    }
}
