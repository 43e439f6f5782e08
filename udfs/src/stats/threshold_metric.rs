//! Classifier quality at a threshold, as aggregates: `precision_at(score, label, threshold)`
//! and `recall_at(score, label, threshold)`, with "predicted positive" meaning
//! `score >= threshold` exactly as SQL compares the two.
//!
//! Both count the same confusion counts of the rule — true positives, false positives, false
//! negatives (true negatives are needed by neither) — and divide two of them; one
//! implementation ([`AtThreshold`]) over [`ThresholdMetric`] picks the division. The counting
//! itself (single-group and grouped accumulators) is `counts.rs`.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::kernels::cmp::gt_eq;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature,
};
use datafusion_macros::user_doc;

use super::counts::{self, Classify, CountingAccumulator, CountingGroups, Finish};
use crate::arguments::{check_arity, require_label, require_numeric, to_f64, to_labels};

const TRUE_POSITIVE: usize = 0;
const FALSE_POSITIVE: usize = 1;
const FALSE_NEGATIVE: usize = 2;
/// The counters, in bit order.
const COUNTERS: [&str; 3] = ["true_positives", "false_positives", "false_negatives"];

const PRECISION_AT: &str = "precision_at";
const RECALL_AT: &str = "recall_at";

/// A classifier metric computed from the confusion counts at a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThresholdMetric {
    /// `precision_at`: TP / (TP + FP); NULL when no row is predicted positive.
    Precision,
    /// `recall_at`: TP / (TP + FN); NULL when no row is labelled positive.
    Recall,
}

impl ThresholdMetric {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            ThresholdMetric::Precision => PRECISION_AT,
            ThresholdMetric::Recall => RECALL_AT,
        }
    }

    /// Classifies each row into the confusion counters (the name is in label errors).
    fn classify(self) -> Classify {
        match self {
            ThresholdMetric::Precision => |values| classify(PRECISION_AT, values),
            ThresholdMetric::Recall => |values| classify(RECALL_AT, values),
        }
    }

    /// The metric from the confusion counts.
    fn finish(self) -> Finish<3> {
        match self {
            ThresholdMetric::Precision => |c| {
                let predicted = c[TRUE_POSITIVE] + c[FALSE_POSITIVE];
                (predicted > 0).then(|| c[TRUE_POSITIVE] as f64 / predicted as f64)
            },
            ThresholdMetric::Recall => |c| {
                let positives = c[TRUE_POSITIVE] + c[FALSE_NEGATIVE];
                (positives > 0).then(|| c[TRUE_POSITIVE] as f64 / positives as f64)
            },
        }
    }

    fn accumulator(self) -> CountingAccumulator<3> {
        CountingAccumulator::<3>::new(self.classify(), self.finish())
    }

    fn documentation(self) -> Option<&'static Documentation> {
        match self {
            ThresholdMetric::Precision => PrecisionAtDoc.doc(),
            ThresholdMetric::Recall => RecallAtDoc.doc(),
        }
    }
}

/// Checks `(score, label, threshold)`.
fn check(name: &str, arg_types: &[DataType]) -> Result<()> {
    check_arity(name, "score, label, threshold", arg_types.len(), 3, 3)?;
    require_numeric(name, "score", &arg_types[0])?;
    require_label(name, &arg_types[1])?;
    require_numeric(name, "threshold", &arg_types[2])
}

/// Classifies each row; rows with a NULL score, label or threshold count nowhere.
fn classify(name: &str, values: &[ArrayRef]) -> Result<Vec<u8>> {
    let score = to_f64(&values[0])?;
    let label = to_labels(name, &values[1])?;
    let threshold = to_f64(&values[2])?;
    let predicted = gt_eq(&score, &threshold)?;
    Ok((0..score.len())
        .map(|i| {
            if predicted.is_null(i) || label.is_null(i) {
                return 0;
            }
            match (predicted.value(i), label.value(i)) {
                (true, true) => 1 << TRUE_POSITIVE,
                (true, false) => 1 << FALSE_POSITIVE,
                (false, true) => 1 << FALSE_NEGATIVE,
                (false, false) => 0,
            }
        })
        .collect())
}

// `#[user_doc]` documents the type it is attached to; `AtThreshold` serves two functions, so
// each function's documentation is attached to a type of its own.

#[user_doc(
    doc_section(label = "FStore Statistics Functions"),
    description = "Aggregate: precision of the classifier that predicts positive when `score >= \
         threshold` (compared as SQL compares them), over the rows of the group: TP / (TP + FP), \
         as Float64. Labels are 0/1 integers or booleans (any other integer is an error); rows \
         with a NULL score, label or threshold are skipped. NULL when no row is predicted \
         positive. Runs as a grouped (vectorised) aggregate, for many groups.",
    syntax_example = "precision_at(score, label, threshold)",
    sql_example = r#"```sql
> SELECT segment, precision_at(score, label, 0.5) AS precision
> FROM (VALUES ('a', 0.9, 1), ('a', 0.8, 0), ('a', 0.7, 1), ('a', 0.1, 0),
>              ('b', 0.6, 1), ('b', 0.3, 1)) t(segment, score, label)
> GROUP BY segment ORDER BY segment;
+---------+--------------------+
| segment | precision          |
+---------+--------------------+
| a       | 0.6666666666666666 |
| b       | 1.0                |
+---------+--------------------+
```"#,
    argument(name = "score", description = "The model's score (numeric)."),
    argument(name = "label", description = "The true class: 0/1 or a boolean."),
    argument(
        name = "threshold",
        description = "Rows with score >= threshold are predicted positive."
    ),
    related_udf(name = "recall_at"),
    related_udf(name = "auc")
)]
struct PrecisionAtDoc;

#[user_doc(
    doc_section(label = "FStore Statistics Functions"),
    description = "Aggregate: recall (true positive rate) of the classifier that predicts positive \
         when `score >= threshold` (compared as SQL compares them), over the rows of the group: TP \
         / (TP + FN), as Float64. Labels are 0/1 integers or booleans (any other integer is an \
         error); rows with a NULL score, label or threshold are skipped. NULL when no row is \
         labelled positive. Runs as a grouped (vectorised) aggregate, for many groups.",
    syntax_example = "recall_at(score, label, threshold)",
    sql_example = r#"```sql
> SELECT segment, recall_at(score, label, 0.5) AS recall
> FROM (VALUES ('a', 0.9, 1), ('a', 0.8, 0), ('a', 0.7, 1), ('a', 0.1, 0),
>              ('b', 0.6, 1), ('b', 0.3, 1)) t(segment, score, label)
> GROUP BY segment ORDER BY segment;
+---------+--------+
| segment | recall |
+---------+--------+
| a       | 1.0    |
| b       | 0.5    |
+---------+--------+
```"#,
    argument(name = "score", description = "The model's score (numeric)."),
    argument(name = "label", description = "The true class: 0/1 or a boolean."),
    argument(
        name = "threshold",
        description = "Rows with score >= threshold are predicted positive."
    ),
    related_udf(name = "precision_at"),
    related_udf(name = "auc")
)]
struct RecallAtDoc;

/// `precision_at(score, label, threshold)` and `recall_at(score, label, threshold)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AtThreshold {
    metric: ThresholdMetric,
    signature: Signature,
}

impl AtThreshold {
    pub fn new(metric: ThresholdMetric) -> Self {
        Self {
            metric,
            signature: crate::arguments::signature(&[
                &[DataType::Float64, DataType::Int64, DataType::Float64],
                &[DataType::Float64, DataType::Boolean, DataType::Float64],
            ]),
        }
    }
}

impl AggregateUDFImpl for AtThreshold {
    fn name(&self) -> &str {
        self.metric.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check(self.name(), arg_types)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(self.metric.accumulator()))
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
        Ok(Box::new(CountingGroups::<3>::new(
            self.metric.classify(),
            self.metric.finish(),
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.metric.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::partial_then_final;
    use datafusion::arrow::array::{BooleanArray, Float64Array, Int64Array};
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

    /// The same rows for both metrics: predicted positive are 0.9 (1), 0.5 (0, equal to the
    /// threshold) and 0.7 (1); the positives are 0.9 (found), 0.1 (missed) and 0.7 (found);
    /// the NULL score is skipped.
    fn over_two_partials(metric: ThresholdMetric) -> ScalarValue {
        let make = || Box::new(metric.accumulator()) as Box<dyn Accumulator>;
        partial_then_final(
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
        .unwrap()
    }

    mod precision_at {
        use super::*;

        #[test]
        fn counts_predicted_positives_at_the_threshold() {
            let out = over_two_partials(ThresholdMetric::Precision);
            assert_eq!(out, ScalarValue::Float64(Some(2.0 / 3.0)));
        }

        #[test]
        fn no_predicted_positive_is_null_and_labels_must_be_binary() {
            let mut acc = ThresholdMetric::Precision.accumulator();
            acc.update_batch(&rows(vec![Some(0.1)], vec![Some(1)], 0.5))
                .unwrap();
            assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
            let e = acc
                .update_batch(&rows(vec![Some(0.1)], vec![Some(2)], 0.5))
                .unwrap_err();
            assert!(e.to_string().contains("label must be 0 or 1"), "{e}");
            let booleans: Vec<ArrayRef> = vec![
                Arc::new(Float64Array::from(vec![0.9])),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(Float64Array::from(vec![0.5])),
            ];
            acc.update_batch(&booleans).unwrap();
            assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(1.0)));
        }
    }

    mod recall_at {
        use super::*;

        #[test]
        fn counts_found_positives() {
            let out = over_two_partials(ThresholdMetric::Recall);
            assert_eq!(out, ScalarValue::Float64(Some(2.0 / 3.0)));
        }

        #[test]
        fn no_positive_label_is_null() {
            let mut acc = ThresholdMetric::Recall.accumulator();
            acc.update_batch(&rows(vec![Some(0.9)], vec![Some(0)], 0.5))
                .unwrap();
            assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
        }
    }

    #[test]
    fn label_errors_name_the_function() {
        for metric in [ThresholdMetric::Precision, ThresholdMetric::Recall] {
            let e = metric
                .accumulator()
                .update_batch(&rows(vec![Some(0.1)], vec![Some(2)], 0.5))
                .unwrap_err();
            assert!(
                e.to_string().starts_with(&format!(
                    "Execution error: {}: label must be 0 or 1",
                    metric.name()
                )),
                "{e}"
            );
        }
        assert_ne!(
            AtThreshold::new(ThresholdMetric::Precision),
            AtThreshold::new(ThresholdMetric::Recall)
        );
    }
}
