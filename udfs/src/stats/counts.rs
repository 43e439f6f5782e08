//! Aggregates that are a ratio of row counts (`null_fraction`, `precision_at`, `recall_at`):
//! one `Accumulator` and one `GroupsAccumulator` for all of them.
//!
//! Each function classifies the rows of a batch into up to `K` counters (a bit mask per row)
//! and turns the final counters into its value. The grouped form keeps one `[u64; K]` per
//! group — the layout DataFusion's hash aggregation needs to run on millions of groups — and
//! its partial state is `K` UInt64 columns, merged by addition.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// Which counters each row of a batch increments (bit k = counter k).
pub(crate) type Classify = fn(&[ArrayRef]) -> Result<Vec<u8>>;
/// The value of the aggregate from its counters; `None` is NULL.
pub(crate) type Finish<const K: usize> = fn(&[u64; K]) -> Option<f64>;

/// The state fields: one UInt64 column per counter.
pub(crate) fn state_fields(name: &str, counters: &[&str]) -> Vec<FieldRef> {
    counters
        .iter()
        .map(|c| {
            Arc::new(Field::new(
                format_state_name(name, c),
                DataType::UInt64,
                true,
            ))
        })
        .collect()
}

fn add_mask<const K: usize>(counts: &mut [u64; K], mask: u8) {
    for (k, c) in counts.iter_mut().enumerate() {
        *c += u64::from((mask >> k) & 1);
    }
}

/// The single-group form (no GROUP BY, and window frames).
#[derive(Debug)]
pub(crate) struct CountingAccumulator<const K: usize> {
    counts: [u64; K],
    classify: Classify,
    finish: Finish<K>,
}

impl<const K: usize> CountingAccumulator<K> {
    pub(crate) fn new(classify: Classify, finish: Finish<K>) -> Self {
        Self {
            counts: [0; K],
            classify,
            finish,
        }
    }
}

impl<const K: usize> Accumulator for CountingAccumulator<K> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for mask in (self.classify)(values)? {
            add_mask(&mut self.counts, mask);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for mask in (self.classify)(values)? {
            for (k, c) in self.counts.iter_mut().enumerate() {
                *c -= u64::from((mask >> k) & 1);
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64((self.finish)(&self.counts)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self
            .counts
            .iter()
            .map(|c| ScalarValue::UInt64(Some(*c)))
            .collect())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for (c, state) in self.counts.iter_mut().zip(states) {
            *c += state
                .as_primitive::<UInt64Type>()
                .iter()
                .flatten()
                .sum::<u64>();
        }
        Ok(())
    }
}

/// The grouped form.
pub(crate) struct CountingGroups<const K: usize> {
    counts: Vec<[u64; K]>,
    classify: Classify,
    finish: Finish<K>,
}

impl<const K: usize> CountingGroups<K> {
    pub(crate) fn new(classify: Classify, finish: Finish<K>) -> Self {
        Self {
            counts: Vec::new(),
            classify,
            finish,
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<[u64; K]> {
        emit_to.take_needed(&mut self.counts)
    }
}

fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

impl<const K: usize> GroupsAccumulator for CountingGroups<K> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_num_groups, [0; K]);
        let masks = (self.classify)(values)?;
        for (row, (&group, mask)) in group_indices.iter().zip(masks).enumerate() {
            if passes(opt_filter, row) {
                add_mask(&mut self.counts[group], mask);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let finish = self.finish;
        let values: Float64Array = self.take(emit_to).iter().map(finish).collect();
        Ok(Arc::new(values))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let taken = self.take(emit_to);
        Ok((0..K)
            .map(|k| {
                Arc::new(UInt64Array::from_iter_values(taken.iter().map(|c| c[k]))) as ArrayRef
            })
            .collect())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_num_groups, [0; K]);
        for (k, state) in values.iter().enumerate().take(K) {
            let state = state.as_primitive::<UInt64Type>();
            for (row, &group) in group_indices.iter().enumerate() {
                if state.is_valid(row) {
                    self.counts[group][k] += state.value(row);
                }
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let masks = (self.classify)(values)?;
        Ok((0..K)
            .map(|k| {
                let column = masks.iter().enumerate().map(|(row, mask)| {
                    if passes(opt_filter, row) {
                        u64::from((mask >> k) & 1)
                    } else {
                        0
                    }
                });
                Arc::new(UInt64Array::from_iter_values(column)) as ArrayRef
            })
            .collect())
    }

    fn size(&self) -> usize {
        self.counts.capacity() * size_of::<[u64; K]>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counter 0: non-NULL rows, counter 1: every row.
    fn classify(values: &[ArrayRef]) -> Result<Vec<u8>> {
        Ok((0..values[0].len())
            .map(|i| 0b10 | u8::from(values[0].is_valid(i)))
            .collect())
    }

    fn finish(c: &[u64; 2]) -> Option<f64> {
        (c[1] > 0).then(|| c[0] as f64 / c[1] as f64)
    }

    #[test]
    fn groups_merge_and_emit_in_order() {
        let values: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(vec![
            Some(1),
            None,
            Some(3),
            None,
        ]))];
        let mut partial = CountingGroups::<2>::new(classify, finish);
        partial
            .update_batch(&values, &[0, 0, 1, 2], None, 3)
            .unwrap();
        let state = partial.state(EmitTo::All).unwrap();
        let mut total = CountingGroups::<2>::new(classify, finish);
        total.merge_batch(&state, &[1, 0, 2], 3).unwrap();
        total.merge_batch(&state, &[1, 0, 2], 3).unwrap();
        let first = total.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(
            first
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0),
            1.0
        );
        let rest = total.evaluate(EmitTo::All).unwrap();
        let rest: Vec<_> = rest
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .collect();
        assert_eq!(rest, vec![Some(0.5), Some(0.0)]);
    }

    #[test]
    fn filtered_rows_do_not_count() {
        let values: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(vec![Some(1), None]))];
        let filter = BooleanArray::from(vec![Some(false), None]);
        let mut g = CountingGroups::<2>::new(classify, finish);
        g.update_batch(&values, &[0, 0], Some(&filter), 1).unwrap();
        assert!(g.evaluate(EmitTo::All).unwrap().is_null(0));
        let state = g.convert_to_state(&values, Some(&filter)).unwrap();
        assert_eq!(
            state[1].as_primitive::<UInt64Type>().values().to_vec(),
            vec![0, 0]
        );
    }
}
