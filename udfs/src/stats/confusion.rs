//! The confusion counts shared by `precision_at` and `recall_at`: each row is a true positive,
//! false positive, false negative (or a true negative, which neither needs), with "predicted
//! positive" meaning `score >= threshold` exactly as SQL compares the two.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::kernels::cmp::gt_eq;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;

use crate::arguments::{check_arity, require_label, require_numeric, to_f64, to_labels};

pub(crate) const TRUE_POSITIVE: usize = 0;
pub(crate) const FALSE_POSITIVE: usize = 1;
pub(crate) const FALSE_NEGATIVE: usize = 2;
/// The counters, in bit order.
pub(crate) const COUNTERS: [&str; 3] = ["true_positives", "false_positives", "false_negatives"];

pub(crate) const USAGE: &str = "score, label, threshold";

/// Checks `(score, label, threshold)`.
pub(crate) fn check(name: &str, arg_types: &[DataType]) -> Result<()> {
    check_arity(name, USAGE, arg_types.len(), 3, 3)?;
    require_numeric(name, "score", &arg_types[0])?;
    require_label(name, &arg_types[1])?;
    require_numeric(name, "threshold", &arg_types[2])
}

/// Classifies each row; rows with a NULL score, label or threshold count nowhere.
pub(crate) fn classify(name: &str, values: &[ArrayRef]) -> Result<Vec<u8>> {
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
