//! The two scalers, [`Scaler::Standard`] and [`Scaler::MinMax`], each as a scalar function
//! with given (stored, fitted) parameters — `standard_scale(x, mean, std)`,
//! `min_max_scale(x, min, max)` — and as a window function that fits its parameters over the
//! window partition — `standard_scale_window(x) OVER (…)`, `min_max_scale_window(x) OVER (…)`.
//!
//! One scalar implementation ([`Scale`]) and one window implementation ([`ScaleWindow`]) serve
//! both scalers, and all four functions call the same formula, so a value scaled offline with
//! fitted parameters equals the value scaled online with the stored ones.
//!
//! The window forms have names of their own because DataFusion resolves a function name to a
//! scalar UDF before it looks at the OVER clause: a window UDF registered under the scalar's
//! name would never be called (see the test `a_scalar_function_shadows_a_window_function_of_
//! the_same_name` below).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, PartitionEvaluator, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    WindowUDFImpl,
};
use datafusion_macros::user_doc;

use crate::arguments::{check_numbers, to_f64};

/// A scaler: how its two parameters are fitted and how a value is scaled with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scaler {
    /// Z-score: `(x - mean) / std`, std the population standard deviation.
    Standard,
    /// `(x - min) / (max - min)`.
    MinMax,
}

impl Scaler {
    /// The scalar function's name.
    pub fn name(self) -> &'static str {
        match self {
            Scaler::Standard => "standard_scale",
            Scaler::MinMax => "min_max_scale",
        }
    }

    /// The window function's name.
    pub fn window_name(self) -> &'static str {
        match self {
            Scaler::Standard => "standard_scale_window",
            Scaler::MinMax => "min_max_scale_window",
        }
    }

    /// The scalar function's arguments: the value and the two parameters.
    fn arguments(self) -> [&'static str; 3] {
        match self {
            Scaler::Standard => ["x", "mean", "std"],
            Scaler::MinMax => ["x", "min", "max"],
        }
    }

    /// The formula `f(x, a, b)` with the parameters `a`, `b`.
    fn formula(self) -> fn(f64, f64, f64) -> f64 {
        match self {
            Scaler::Standard => standard,
            Scaler::MinMax => min_max,
        }
    }

    /// Fits the parameters on the non-NULL values; `None` if there are none.
    fn fit(self) -> fn(&Float64Array) -> Option<(f64, f64)> {
        match self {
            Scaler::Standard => fit_standard,
            Scaler::MinMax => fit_min_max,
        }
    }

    fn documentation(self) -> Option<&'static Documentation> {
        match self {
            Scaler::Standard => StandardScaleDoc.doc(),
            Scaler::MinMax => MinMaxScaleDoc.doc(),
        }
    }

    fn window_documentation(self) -> Option<&'static Documentation> {
        match self {
            Scaler::Standard => StandardScaleWindowDoc.doc(),
            Scaler::MinMax => MinMaxScaleWindowDoc.doc(),
        }
    }
}

// `#[user_doc]` documents the type it is attached to; `Scale` and `ScaleWindow` serve two
// functions each, so each function's documentation is attached to a type of its own.

#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Standard-scales `x` with the given parameters: (x - mean) / std, as Float64. \
         When `std` is 0 the result is 0.0 (a constant feature carries no signal; no division by \
         zero). NULL in any argument gives NULL. To fit mean and std over a window partition \
         instead, use `standard_scale_window(x) OVER (...)` (DataFusion resolves a name to a \
         scalar function before it looks for a window function, so the window form needs its own \
         name).",
    syntax_example = "standard_scale(x, mean, std)",
    sql_example = r#"```sql
> SELECT standard_scale(7, 5, 2) AS z;
+-----+
| z   |
+-----+
| 1.0 |
+-----+
```"#,
    argument(name = "x", description = "The value to scale (numeric)."),
    argument(name = "mean", description = "The fitted mean."),
    argument(name = "std", description = "The fitted standard deviation."),
    related_udf(name = "min_max_scale"),
    related_udf(name = "standard_scale_window")
)]
struct StandardScaleDoc;

#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Min-max-scales `x` with the given parameters: (x - min) / (max - min), as \
         Float64 (values outside [min, max] fall outside [0, 1]; they are not clipped). When `max` \
         equals `min` the result is 0.0 (a constant feature). NULL in any argument gives NULL. To \
         fit min and max over a window partition instead, use `min_max_scale_window(x) OVER \
         (...)`.",
    syntax_example = "min_max_scale(x, min, max)",
    sql_example = r#"```sql
> SELECT min_max_scale(7.5, 5, 10) AS scaled;
+--------+
| scaled |
+--------+
| 0.5    |
+--------+
```"#,
    argument(name = "x", description = "The value to scale (numeric)."),
    argument(name = "min", description = "The fitted minimum."),
    argument(name = "max", description = "The fitted maximum."),
    related_udf(name = "standard_scale"),
    related_udf(name = "min_max_scale_window")
)]
struct MinMaxScaleDoc;

#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Window function: standard-scales `x` with the mean and the population standard \
         deviation (ddof = 0, as scikit-learn's StandardScaler) of the non-NULL `x` of the whole \
         window partition: (x - mean) / std, as Float64. ORDER BY and the window frame are \
         ignored: the fit always covers the partition. std = 0 gives 0.0; NULL x gives NULL and is \
         not part of the fit. Same formula as `standard_scale(x, mean, std)`, which is the form to \
         use with stored parameters (the window form has its own name because DataFusion resolves \
         a name to a scalar function before it considers OVER).",
    syntax_example = "standard_scale_window(x) OVER ([PARTITION BY ...])",
    sql_example = r#"```sql
> SELECT x, standard_scale_window(x) OVER () AS z FROM (VALUES (1.0), (3.0)) t(x) ORDER BY x;
+-----+------+
| x   | z    |
+-----+------+
| 1.0 | -1.0 |
| 3.0 | 1.0  |
+-----+------+
```"#,
    argument(name = "x", description = "The value to scale (numeric)."),
    related_udf(name = "min_max_scale_window"),
    related_udf(name = "standard_scale")
)]
struct StandardScaleWindowDoc;

#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Window function: min-max-scales `x` with the minimum and maximum of the \
         non-NULL `x` of the whole window partition: (x - min) / (max - min), as Float64, so the \
         partition maps onto [0, 1]. ORDER BY and the window frame are ignored: the fit always \
         covers the partition. max = min gives 0.0; NULL x gives NULL and is not part of the fit; \
         a NaN in the partition makes every result NaN. Same formula as `min_max_scale(x, min, \
         max)`.",
    syntax_example = "min_max_scale_window(x) OVER ([PARTITION BY ...])",
    sql_example = r#"```sql
> SELECT x, min_max_scale_window(x) OVER () AS scaled
> FROM (VALUES (1.0), (2.0), (5.0)) t(x) ORDER BY x;
+-----+--------+
| x   | scaled |
+-----+--------+
| 1.0 | 0.0    |
| 2.0 | 0.25   |
| 5.0 | 1.0    |
+-----+--------+
```"#,
    argument(name = "x", description = "The value to scale (numeric)."),
    related_udf(name = "standard_scale_window"),
    related_udf(name = "min_max_scale")
)]
struct MinMaxScaleWindowDoc;

/// `(x - mean) / std`; 0.0 when `std` is 0 (every value equals the mean).
fn standard(x: f64, mean: f64, std: f64) -> f64 {
    if std == 0.0 { 0.0 } else { (x - mean) / std }
}

/// `(x - min) / (max - min)`; 0.0 when `max` equals `min` (a constant feature).
fn min_max(x: f64, min: f64, max: f64) -> f64 {
    if max == min {
        0.0
    } else {
        (x - min) / (max - min)
    }
}

/// Mean and population standard deviation (ddof = 0) of the non-NULL values; `None` if there
/// are none. Two passes, so large offsets do not cancel.
fn fit_standard(x: &Float64Array) -> Option<(f64, f64)> {
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
fn fit_min_max(x: &Float64Array) -> Option<(f64, f64)> {
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

/// `standard_scale(x, mean, std)` and `min_max_scale(x, min, max)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Scale {
    scaler: Scaler,
    signature: Signature,
}

impl Scale {
    pub fn new(scaler: Scaler) -> Self {
        Self {
            scaler,
            signature: crate::arguments::signature(&[&[
                DataType::Float64,
                DataType::Float64,
                DataType::Float64,
            ]]),
        }
    }
}

impl ScalarUDFImpl for Scale {
    fn name(&self) -> &str {
        self.scaler.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_numbers(self.name(), &self.scaler.arguments(), arg_types)?;
        Ok(DataType::Float64)
    }

    /// Applies the formula row by row to the three arguments as Float64; NULL in, NULL out.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.scaler.formula();
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let cols = args
            .args
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

    fn documentation(&self) -> Option<&Documentation> {
        self.scaler.documentation()
    }
}

/// `standard_scale_window(x) OVER (...)` and `min_max_scale_window(x) OVER (...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScaleWindow {
    scaler: Scaler,
    signature: Signature,
}

impl ScaleWindow {
    pub fn new(scaler: Scaler) -> Self {
        Self {
            scaler,
            signature: crate::arguments::signature(&[&[DataType::Float64]]),
        }
    }
}

impl WindowUDFImpl for ScaleWindow {
    fn name(&self) -> &str {
        self.scaler.window_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = field_args
            .input_fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        check_numbers(self.name(), &["x"], &types)?;
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(FitAndScale(self.scaler)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.scaler.window_documentation()
    }
}

/// Fits the parameters over the whole partition, then scales each row (NULL stays NULL; a
/// partition without a non-NULL value is all NULL).
#[derive(Debug)]
struct FitAndScale(Scaler);

impl PartitionEvaluator for FitAndScale {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let x = to_f64(&values[0])?;
        let f = self.0.formula();
        let out: Float64Array = match self.0.fit()(&x) {
            None => Float64Array::new_null(x.len()),
            Some((a, b)) => x.iter().map(|v| v.map(|v| f(v, a, b))).collect(),
        };
        Ok(Arc::new(out))
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

    #[test]
    fn the_scalers_are_different_functions() {
        let (standard, min_max) = (Scale::new(Scaler::Standard), Scale::new(Scaler::MinMax));
        assert_ne!(standard, min_max);
        assert_eq!(
            (standard.name(), min_max.name()),
            ("standard_scale", "min_max_scale")
        );
        let (standard, min_max) = (
            ScaleWindow::new(Scaler::Standard),
            ScaleWindow::new(Scaler::MinMax),
        );
        assert_ne!(standard, min_max);
        assert_eq!(
            (standard.name(), min_max.name()),
            ("standard_scale_window", "min_max_scale_window")
        );
    }

    mod standard_scale {
        use super::*;
        use crate::test_support::{floats, invoke};

        fn c(v: Option<f64>) -> ColumnarValue {
            ColumnarValue::Scalar(ScalarValue::Float64(v))
        }

        #[test]
        fn scales_by_mean_and_std() {
            let x = ColumnarValue::Array(Arc::new(Float64Array::from(vec![
                Some(7.0),
                None,
                Some(3.0),
            ])));
            let out = invoke(
                &Scale::new(Scaler::Standard),
                vec![x, c(Some(5.0)), c(Some(2.0))],
            )
            .unwrap();
            assert_eq!(floats(&out), vec![Some(1.0), None, Some(-1.0)]);
        }

        #[test]
        fn zero_std_gives_zero_and_null_gives_null() {
            let out = invoke(
                &Scale::new(Scaler::Standard),
                vec![c(Some(7.0)), c(Some(5.0)), c(Some(0.0))],
            )
            .unwrap();
            assert_eq!(floats(&out), vec![Some(0.0)]);
            let out = invoke(
                &Scale::new(Scaler::Standard),
                vec![c(Some(7.0)), c(None), c(Some(1.0))],
            )
            .unwrap();
            assert_eq!(floats(&out), vec![None]);
        }

        #[test]
        fn needs_three_numbers() {
            let e = Scale::new(Scaler::Standard)
                .return_type(&[DataType::Float64, DataType::Float64])
                .unwrap_err();
            assert_eq!(
                e.strip_backtrace(),
                "Error during planning: standard_scale(x, mean, std) takes 3 arguments, got 2"
            );
            let e = Scale::new(Scaler::Standard)
                .return_type(&[DataType::Utf8, DataType::Float64, DataType::Float64])
                .unwrap_err();
            assert!(
                e.to_string().contains("x must be a number, got Utf8"),
                "{e}"
            );
        }
    }

    mod min_max_scale {
        use super::*;
        use crate::test_support::{floats, invoke};

        fn c(v: Option<f64>) -> ColumnarValue {
            ColumnarValue::Scalar(ScalarValue::Float64(v))
        }

        #[test]
        fn scales_into_the_unit_interval() {
            let x = ColumnarValue::Array(Arc::new(Float64Array::from(vec![
                Some(5.0),
                Some(7.5),
                None,
                Some(12.5),
            ])));
            let out = invoke(
                &Scale::new(Scaler::MinMax),
                vec![x, c(Some(5.0)), c(Some(10.0))],
            )
            .unwrap();
            assert_eq!(floats(&out), vec![Some(0.0), Some(0.5), None, Some(1.5)]);
        }

        #[test]
        fn equal_min_and_max_give_zero() {
            let out = invoke(
                &Scale::new(Scaler::MinMax),
                vec![c(Some(3.0)), c(Some(1.0)), c(Some(1.0))],
            )
            .unwrap();
            assert_eq!(floats(&out), vec![Some(0.0)]);
        }
    }

    mod standard_scale_window {
        use super::*;
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Float64Type;
        use datafusion::logical_expr::{ScalarUDF, WindowUDF};
        use datafusion::prelude::SessionContext;

        #[test]
        fn fits_over_the_partition() {
            let mut e = ScaleWindow::new(Scaler::Standard)
                .partition_evaluator(PartitionEvaluatorArgs::default())
                .unwrap();
            let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
            let out = e.evaluate_all(&[x], 3).unwrap();
            let out: Vec<_> = out.as_primitive::<Float64Type>().iter().collect();
            assert_eq!(out, vec![Some(-1.0), None, Some(1.0)]);
        }

        /// Why the window form has its own name: with a scalar `standard_scale` registered,
        /// DataFusion plans `standard_scale(x) OVER ()` as the scalar function (and rejects it
        /// for having one argument) even when a window function of the same name exists.
        #[tokio::test]
        async fn a_scalar_function_shadows_a_window_function_of_the_same_name() {
            #[derive(Debug, PartialEq, Eq, Hash)]
            struct Renamed(ScaleWindow);
            impl WindowUDFImpl for Renamed {
                fn name(&self) -> &str {
                    "standard_scale"
                }
                fn signature(&self) -> &Signature {
                    self.0.signature()
                }
                fn coerce_types(&self, t: &[DataType]) -> Result<Vec<DataType>> {
                    self.0.coerce_types(t)
                }
                fn field(&self, a: WindowUDFFieldArgs) -> Result<FieldRef> {
                    self.0.field(a)
                }
                fn partition_evaluator(
                    &self,
                    a: PartitionEvaluatorArgs,
                ) -> Result<Box<dyn PartitionEvaluator>> {
                    self.0.partition_evaluator(a)
                }
            }
            let ctx = SessionContext::new();
            ctx.register_udwf(WindowUDF::new_from_impl(Renamed(ScaleWindow::new(
                Scaler::Standard,
            ))));
            let sql = "SELECT standard_scale(x) OVER () FROM (VALUES (1.0), (3.0)) t(x)";
            // Alone, the window function works …
            assert!(ctx.sql(sql).await.unwrap().collect().await.is_ok());
            // … but once the scalar function exists, the name means the scalar function.
            ctx.register_udf(ScalarUDF::new_from_impl(Scale::new(Scaler::Standard)));
            let e = ctx.sql(sql).await.unwrap_err();
            assert!(
                e.to_string()
                    .contains("standard_scale(x, mean, std) takes 3 arguments, got 1"),
                "{e}"
            );
        }
    }

    mod min_max_scale_window {
        use super::*;
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Float64Type;

        #[test]
        fn fits_over_the_partition() {
            let mut e = ScaleWindow::new(Scaler::MinMax)
                .partition_evaluator(PartitionEvaluatorArgs::default())
                .unwrap();
            let x: ArrayRef = Arc::new(Float64Array::from(vec![
                Some(1.0),
                None,
                Some(2.0),
                Some(5.0),
            ]));
            let out = e.evaluate_all(&[x], 4).unwrap();
            let out: Vec<_> = out.as_primitive::<Float64Type>().iter().collect();
            assert_eq!(out, vec![Some(0.0), None, Some(0.25), Some(1.0)]);
        }
    }
}
