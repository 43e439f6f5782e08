//! `fstore.materializations` (every recorded run, newest last) and `fstore.online_sets`
//! (the online feature sets, their schedule and latest run).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::error::Result;

use crate::providers::system::{SystemTable, utc_micros};
use crate::registry::{MaterializationRun, RegistryState};

fn times(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// `fstore.materializations`
#[derive(Debug)]
pub struct MaterializationsTable;

impl SystemTable for MaterializationsTable {
    fn name(&self) -> &'static str {
        "materializations"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("feature_set", DataType::Utf8, false),
            Field::new("version", DataType::UInt64, false),
            Field::new("trigger", DataType::Utf8, false),
            Field::new("mode", DataType::Utf8, false),
            Field::new("store", DataType::Utf8, false),
            Field::new("as_of", utc_micros(), false),
            Field::new("started", utc_micros(), false),
            Field::new("finished", utc_micros(), false),
            Field::new("rows", DataType::UInt64, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, true),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let mut runs: Vec<&MaterializationRun> =
            state.materializations.values().flatten().collect();
        runs.sort_by_key(|r| (r.started, r.set.clone()));
        let columns: Vec<ArrayRef> = vec![
            strings(runs.iter().map(|r| Some(r.set.as_str()))),
            Arc::new(UInt64Array::from_iter_values(
                runs.iter().map(|r| r.version),
            )),
            strings(runs.iter().map(|r| Some(r.trigger.as_str()))),
            strings(runs.iter().map(|r| Some(r.mode.as_str()))),
            strings(runs.iter().map(|r| Some(r.store.as_str()))),
            times(runs.iter().map(|r| Some(r.as_of))),
            times(runs.iter().map(|r| Some(r.started))),
            times(runs.iter().map(|r| Some(r.finished))),
            Arc::new(UInt64Array::from_iter_values(runs.iter().map(|r| r.rows))),
            strings(runs.iter().map(|r| Some(r.status.as_str()))),
            strings(runs.iter().map(|r| r.error.as_deref())),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

/// `fstore.online_sets`
#[derive(Debug)]
pub struct OnlineSetsTable;

impl SystemTable for OnlineSetsTable {
    fn name(&self) -> &'static str {
        "online_sets"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("feature_set", DataType::Utf8, false),
            Field::new("version", DataType::UInt64, false),
            Field::new("update_frequency", DataType::Utf8, true),
            Field::new("cache_ttl", DataType::Utf8, true),
            Field::new("online_since", utc_micros(), false),
            Field::new("last_run", utc_micros(), true),
            Field::new("last_status", DataType::Utf8, true),
            Field::new("last_success", utc_micros(), true),
            Field::new("rows", DataType::UInt64, true),
            Field::new("next_run", utc_micros(), true),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let sets: Vec<_> = state.online.values().collect();
        let last = |s: &str| state.materializations.get(s).and_then(|r| r.last());
        let success = |s: &str| {
            state.materializations.get(s).and_then(|r| {
                r.iter()
                    .rev()
                    .find(|r| r.status == crate::registry::RunStatus::Succeeded)
            })
        };
        let columns: Vec<ArrayRef> = vec![
            strings(sets.iter().map(|c| Some(c.set.as_str()))),
            Arc::new(UInt64Array::from_iter_values(
                sets.iter().map(|c| c.version),
            )),
            strings(
                sets.iter()
                    .map(|c| c.update_frequency.as_ref().map(|f| f.text.as_str())),
            ),
            strings(
                sets.iter()
                    .map(|c| c.cache_ttl.as_ref().map(|f| f.text.as_str())),
            ),
            times(sets.iter().map(|c| Some(c.since))),
            times(sets.iter().map(|c| last(&c.set).map(|r| r.started))),
            strings(sets.iter().map(|c| last(&c.set).map(|r| r.status.as_str()))),
            times(sets.iter().map(|c| success(&c.set).map(|r| r.finished))),
            Arc::new(UInt64Array::from_iter(
                sets.iter().map(|c| success(&c.set).map(|r| r.rows)),
            )),
            times(sets.iter().map(|c| crate::registry::next_run(state, c))),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}
