//! `auc(score, label)`: the area under the ROC curve, with ties counted as half.
//!
//! Model quality computed where the scores and labels already are, per group and without
//! exporting them: from the two sorted samples (positives' and negatives' scores) by one merge,
//! exact in integers, so it equals scikit-learn's `roc_auc_score`, ties included.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Documentation, Signature};
use datafusion_macros::user_doc;

use super::samples::{self, SampleAccumulator, Split, TwoSamples};
use crate::arguments::{check_arity, require_label, require_numeric};

const NAME: &str = "auc";

/// AUC of sorted positive and negative scores without NaN, by one merge: every positive
/// counts the negatives below it, plus half of those equal to it.
pub(crate) fn auc_of_sorted(positives: &[f64], negatives: &[f64]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    // Twice the Mann–Whitney U: exact in integers.
    let mut twice_u: u128 = 0;
    let (mut below, mut i) = (0usize, 0usize);
    while i < positives.len() {
        let v = positives[i];
        let mut same_pos = 0;
        while i < positives.len() && positives[i] == v {
            same_pos += 1;
            i += 1;
        }
        while below < negatives.len() && negatives[below] < v {
            below += 1;
        }
        let mut equal = 0;
        while below + equal < negatives.len() && negatives[below + equal] == v {
            equal += 1;
        }
        twice_u += same_pos as u128 * (2 * below + equal) as u128;
    }
    Some(twice_u as f64 / 2.0 / (positives.len() as f64 * negatives.len() as f64))
}

fn finish(samples: &mut TwoSamples) -> Result<Option<f64>> {
    if samples.first.is_empty() || samples.second.is_empty() {
        return Ok(None);
    }
    if !samples.sort() {
        return Ok(Some(f64::NAN));
    }
    Ok(auc_of_sorted(&samples.first, &samples.second))
}

/// `auc(score, label)`.
#[user_doc(
    doc_section(label = "FStore Statistics Functions"),
    description = "Aggregate: the area under the ROC curve of `score` for the binary `label` over \
         the rows of the group: the probability that a random positive scores higher than a random \
         negative, ties counting one half — the Mann–Whitney U statistic with midranks, (R+ - \
         n+(n+ + 1)/2) / (n+ · n-), R+ the sum of the midranks of the positives' scores. Equals \
         sklearn.metrics.roc_auc_score. Labels are 0/1 integers or booleans (any other integer is \
         an error); rows with a NULL score or label are skipped. NULL when only one class is \
         present (or no rows); NaN if a score is NaN. Sort-based: O(n log n).",
    syntax_example = "auc(score, label)",
    sql_example = r#"```sql
> SELECT model, auc(score, label) AS auc
> FROM (VALUES ('a', 0.9, 1), ('a', 0.8, 0), ('a', 0.7, 1), ('a', 0.1, 0),
>              ('b', 0.4, 1), ('b', 0.4, 0)) scored(model, score, label)
> GROUP BY model ORDER BY model;
+-------+------+
| model | auc  |
+-------+------+
| a     | 0.75 |
| b     | 0.5  |
+-------+------+
```"#,
    argument(
        name = "score",
        description = "The model's score (numeric; higher means more likely positive)."
    ),
    argument(name = "label", description = "The true class: 0/1 or a boolean."),
    related_udf(name = "precision_at"),
    related_udf(name = "recall_at")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Auc {
    signature: Signature,
}

impl Default for Auc {
    fn default() -> Self {
        Self::new()
    }
}

impl Auc {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[
                &[DataType::Float64, DataType::Int64],
                &[DataType::Float64, DataType::Boolean],
            ]),
        }
    }
}

impl AggregateUDFImpl for Auc {
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
        check_arity(NAME, "score, label", arg_types.len(), 2, 2)?;
        require_numeric(NAME, "score", &arg_types[0])?;
        require_label(NAME, &arg_types[1])?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SampleAccumulator::new(
            Split::ByLabel(NAME),
            finish,
        )))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(samples::state_fields(args.name))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_random_and_inverted_rankings() {
        assert_eq!(auc_of_sorted(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auc_of_sorted(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(auc_of_sorted(&[1.0, 2.0], &[1.0, 2.0]), Some(0.5));
    }

    #[test]
    fn ties_count_half() {
        // Midranks: 0.2 → 1, 0.5 → 2.5, 0.8 → 4.5; R+ = 7, U = 7 - 3 = 4, AUC = 4 / 6.
        let got = auc_of_sorted(&[0.5, 0.8], &[0.2, 0.5, 0.8]).unwrap();
        assert!((got - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn one_class_has_no_auc() {
        assert_eq!(auc_of_sorted(&[1.0], &[]), None);
    }
}
