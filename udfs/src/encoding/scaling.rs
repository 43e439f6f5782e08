//! The two scalers, written once: `standard_scale` / `min_max_scale` (parameters given) and
//! their window forms (parameters fitted over the window partition) call the same formulas,
//! so a value scaled offline with fitted parameters equals the value scaled online with the
//! stored ones.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, PartitionEvaluator};

use crate::arguments::to_f64;

/// `(x - mean) / std`; 0.0 when `std` is 0 (every value equals the mean).
pub(crate) fn standard(x: f64, mean: f64, std: f64) -> f64 {
    if std == 0.0 { 0.0 } else { (x - mean) / std }
}

/// `(x - min) / (max - min)`; 0.0 when `max` equals `min` (a constant feature).
pub(crate) fn min_max(x: f64, min: f64, max: f64) -> f64 {
    if max == min {
        0.0
    } else {
        (x - min) / (max - min)
    }
}

/// Applies `f(x, a, b)` row by row to three Float64 arguments; NULL in, NULL out.
pub(crate) fn invoke_three(
    args: &[ColumnarValue],
    rows: usize,
    f: fn(f64, f64, f64) -> f64,
) -> Result<ColumnarValue> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let n = if all_scalar { 1 } else { rows };
    let cols = args
        .iter()
        .map(|a| to_f64(&a.to_array(n)?))
        .collect::<Result<Vec<_>>>()?;
    let out: Float64Array = (0..n)
        .map(|i| {
            (cols[0].is_valid(i) && cols[1].is_valid(i) && cols[2].is_valid(i))
                .then(|| f(cols[0].value(i), cols[1].value(i), cols[2].value(i)))
        })
        .collect();
    let out: ArrayRef = Arc::new(out);
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// Mean and population standard deviation (ddof = 0) of the non-NULL values; `None` if there
/// are none. Two passes, so large offsets do not cancel.
pub(crate) fn fit_standard(x: &Float64Array) -> Option<(f64, f64)> {
    let n = x.len() - x.null_count();
    if n == 0 {
        return None;
    }
    let mean = x.iter().flatten().sum::<f64>() / n as f64;
    let var = x
        .iter()
        .flatten()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>()
        / n as f64;
    Some((mean, var.sqrt()))
}

/// Minimum and maximum of the non-NULL values; `None` if there are none. NaN propagates.
pub(crate) fn fit_min_max(x: &Float64Array) -> Option<(f64, f64)> {
    let mut seen = false;
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in x.iter().flatten() {
        if v.is_nan() {
            return Some((f64::NAN, f64::NAN));
        }
        seen = true;
        min = min.min(v);
        max = max.max(v);
    }
    seen.then_some((min, max))
}

/// Scales every value of a partition with parameters fitted on it.
pub(crate) fn scale_partition(
    x: &Float64Array,
    params: Option<(f64, f64)>,
    f: fn(f64, f64, f64) -> f64,
) -> ArrayRef {
    let out: Float64Array = match params {
        None => Float64Array::new_null(x.len()),
        Some((a, b)) => x.iter().map(|v| v.map(|v| f(v, a, b))).collect(),
    };
    Arc::new(out)
}

/// The window forms: fit the parameters over the whole partition, then scale each row.
#[derive(Debug)]
pub(crate) struct FitAndScale {
    pub(crate) fit: fn(&Float64Array) -> Option<(f64, f64)>,
    pub(crate) scale: fn(f64, f64, f64) -> f64,
}

impl PartitionEvaluator for FitAndScale {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let x = to_f64(&values[0])?;
        Ok(scale_partition(&x, (self.fit)(&x), self.scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_features_scale_to_zero() {
        assert_eq!(standard(5.0, 5.0, 0.0), 0.0);
        assert_eq!(min_max(5.0, 5.0, 5.0), 0.0);
        assert_eq!(standard(7.0, 5.0, 2.0), 1.0);
        assert_eq!(min_max(7.5, 5.0, 10.0), 0.5);
    }

    #[test]
    fn fits_use_the_population_standard_deviation() {
        let x = Float64Array::from(vec![Some(1.0), None, Some(3.0)]);
        assert_eq!(fit_standard(&x), Some((2.0, 1.0)));
        assert_eq!(fit_min_max(&x), Some((1.0, 3.0)));
        assert_eq!(fit_standard(&Float64Array::from(vec![None::<f64>])), None);
        let nan = fit_min_max(&Float64Array::from(vec![1.0, f64::NAN, 3.0])).unwrap();
        assert!(nan.0.is_nan() && nan.1.is_nan());
    }
}
