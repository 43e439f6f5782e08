//! Two samples of Float64 collected by an aggregate, for the statistics that need every value
//! sorted (KS, PSI, AUC).
//!
//! The partial state of a group is its two samples as two `List<Float64>` values, so partial
//! aggregates on several partitions merge by concatenation; the statistic is computed once, on
//! the merged samples, in `evaluate`. Memory is 8 bytes per value, reported to DataFusion's
//! memory pool through `size()`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Accumulator;
use datafusion::logical_expr::utils::format_state_name;

use crate::arguments::{to_f64, to_labels};

/// The two samples of one group.
#[derive(Debug, Default)]
pub(crate) struct TwoSamples {
    pub(crate) first: Vec<f64>,
    pub(crate) second: Vec<f64>,
}

impl TwoSamples {
    /// Sorts both samples; `false` if either holds a NaN (the statistic is then NaN).
    pub(crate) fn sort(&mut self) -> bool {
        if self.first.iter().chain(&self.second).any(|v| v.is_nan()) {
            return false;
        }
        self.first.sort_unstable_by(f64::total_cmp);
        self.second.sort_unstable_by(f64::total_cmp);
        true
    }
}

/// How the rows of a batch become the two samples.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Split {
    /// `f(a, b)`: the non-NULL values of `a` are the first sample, those of `b` the second.
    Columns,
    /// `f(score, label)`: scores of rows labelled 1/true are the first sample, 0/false the
    /// second; rows with a NULL score or label are skipped.
    ByLabel(&'static str),
}

/// The state fields: two lists of Float64.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    ["first", "second"]
        .iter()
        .map(|s| {
            Arc::new(Field::new_list(
                format_state_name(name, s),
                Field::new_list_field(DataType::Float64, true),
                true,
            ))
        })
        .collect()
}

fn list_of(values: &[f64]) -> ScalarValue {
    ScalarValue::List(Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::from_lengths([values.len()]),
        Arc::new(Float64Array::from(values.to_vec())),
        None,
    )))
}

fn extend_from_list(sample: &mut Vec<f64>, state: &ArrayRef) {
    let lists = state.as_list::<i32>();
    for i in 0..lists.len() {
        if lists.is_valid(i) {
            let values = lists.value(i);
            sample.extend(values.as_primitive::<Float64Type>().iter().flatten());
        }
    }
}

/// An accumulator that collects two samples and computes a statistic from them.
#[derive(Debug)]
pub(crate) struct SampleAccumulator {
    samples: TwoSamples,
    split: Split,
    finish: fn(&mut TwoSamples) -> Result<Option<f64>>,
}

impl SampleAccumulator {
    pub(crate) fn new(split: Split, finish: fn(&mut TwoSamples) -> Result<Option<f64>>) -> Self {
        Self {
            samples: TwoSamples::default(),
            split,
            finish,
        }
    }
}

impl Accumulator for SampleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let first = to_f64(&values[0])?;
        match self.split {
            Split::Columns => {
                let second = to_f64(&values[1])?;
                self.samples.first.extend(first.iter().flatten());
                self.samples.second.extend(second.iter().flatten());
            }
            Split::ByLabel(name) => {
                let labels = to_labels(name, &values[1])?;
                for (score, label) in first.iter().zip(labels.iter()) {
                    match (score, label) {
                        (Some(s), Some(true)) => self.samples.first.push(s),
                        (Some(s), Some(false)) => self.samples.second.push(s),
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64((self.finish)(&mut self.samples)?))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + (self.samples.first.capacity() + self.samples.second.capacity()) * size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            list_of(&self.samples.first),
            list_of(&self.samples.second),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        extend_from_list(&mut self.samples.first, &states[0]);
        extend_from_list(&mut self.samples.second, &states[1]);
        Ok(())
    }
}
