//! `recall_at(score, label, threshold)`: the recall of the rule `score >= threshold`.

use std::sync::LazyLock;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature,
};

use super::confusion::{self, COUNTERS, FALSE_NEGATIVE, TRUE_POSITIVE};
use super::counts::{self, CountingAccumulator, CountingGroups};
use crate::docs;

const NAME: &str = "recall_at";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::STATISTICS,
        "Aggregate: recall (true positive rate) of the classifier that predicts positive when \
         `score >= threshold` (compared as SQL compares them), over the rows of the group: \
         TP / (TP + FN), as Float64. Labels are 0/1 integers or booleans (any other integer is an \
         error); rows with a NULL score, label or threshold are skipped. NULL when no row is \
         labelled positive. Runs as a grouped (vectorised) aggregate, for many groups.",
        "recall_at(score, label, threshold)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT segment, recall_at(prediction, converted, 0.5) FROM scored GROUP BY segment;\n\
         ```",
    )
    .with_argument("score", "The model's score (numeric).")
    .with_argument("label", "The true class: 0/1 or a boolean.")
    .with_argument(
        "threshold",
        "Rows with score >= threshold are predicted positive.",
    )
    .with_related_udf("precision_at")
    .with_related_udf("auc")
    .build()
});

fn classify(values: &[ArrayRef]) -> Result<Vec<u8>> {
    confusion::classify(NAME, values)
}

fn finish(c: &[u64; 3]) -> Option<f64> {
    let positives = c[TRUE_POSITIVE] + c[FALSE_NEGATIVE];
    (positives > 0).then(|| c[TRUE_POSITIVE] as f64 / positives as f64)
}

/// `recall_at(score, label, threshold)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RecallAt {
    signature: Signature,
}

impl Default for RecallAt {
    fn default() -> Self {
        Self::new()
    }
}

impl RecallAt {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[
                &[DataType::Float64, DataType::Int64, DataType::Float64],
                &[DataType::Float64, DataType::Boolean, DataType::Float64],
            ]),
        }
    }
}

impl AggregateUDFImpl for RecallAt {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        confusion::check(NAME, arg_types)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CountingAccumulator::<3>::new(classify, finish)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(counts::state_fields(args.name, &COUNTERS))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CountingGroups::<3>::new(classify, finish)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::partial_then_final;
    use datafusion::arrow::array::{Float64Array, Int64Array};
    use datafusion::common::ScalarValue;
    use std::sync::Arc;

    fn rows(score: Vec<Option<f64>>, label: Vec<Option<i64>>, t: f64) -> Vec<ArrayRef> {
        let n = score.len();
        vec![
            Arc::new(Float64Array::from(score)),
            Arc::new(Int64Array::from(label)),
            Arc::new(Float64Array::from(vec![t; n])),
        ]
    }

    #[test]
    fn counts_found_positives() {
        let make =
            || Box::new(CountingAccumulator::<3>::new(classify, finish)) as Box<dyn Accumulator>;
        // Positives: 0.9 (found), 0.1 (missed), 0.7 (found); the NULL score is skipped.
        let out = partial_then_final(
            make,
            vec![
                rows(
                    vec![Some(0.9), Some(0.5), Some(0.1)],
                    vec![Some(1), Some(0), Some(1)],
                    0.5,
                ),
                rows(
                    vec![Some(0.7), None, Some(0.2)],
                    vec![Some(1), Some(1), Some(0)],
                    0.5,
                ),
            ],
        )
        .unwrap();
        assert_eq!(out, ScalarValue::Float64(Some(2.0 / 3.0)));
    }

    #[test]
    fn no_positive_label_is_null() {
        let mut acc = CountingAccumulator::<3>::new(classify, finish);
        acc.update_batch(&rows(vec![Some(0.9)], vec![Some(0)], 0.5))
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
    }
}
