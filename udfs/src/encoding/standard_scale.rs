//! `standard_scale(x, mean, std)`: z-score with given (stored, fitted) parameters.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::scaling;
use crate::docs;

const NAME: &str = "standard_scale";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::ENCODING,
        "Standard-scales `x` with the given parameters: (x - mean) / std, as Float64. When `std` \
         is 0 the result is 0.0 (a constant feature carries no signal; no division by zero). \
         NULL in any argument gives NULL. To fit mean and std over a window partition instead, \
         use `standard_scale_window(x) OVER (...)` (DataFusion resolves a name to a scalar \
         function before it looks for a window function, so the window form needs its own name).",
        "standard_scale(x, mean, std)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT standard_scale(7, 5, 2);\n\
         1.0\n\
         ```",
    )
    .with_argument("x", "The value to scale (numeric).")
    .with_argument("mean", "The fitted mean.")
    .with_argument("std", "The fitted standard deviation.")
    .with_related_udf("min_max_scale")
    .build()
});

/// `standard_scale(x, mean, std)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StandardScale {
    signature: Signature,
}

impl Default for StandardScale {
    fn default() -> Self {
        Self::new()
    }
}

impl StandardScale {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[
                DataType::Float64,
                DataType::Float64,
                DataType::Float64,
            ]]),
        }
    }
}

impl ScalarUDFImpl for StandardScale {
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
        crate::arguments::check_numbers(NAME, &["x", "mean", "std"], arg_types)?;
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        scaling::invoke_three(&args.args, args.number_rows, scaling::standard)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{floats, invoke};
    use datafusion::arrow::array::Float64Array;
    use datafusion::common::ScalarValue;
    use std::sync::Arc;

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
        let out = invoke(&StandardScale::new(), vec![x, c(Some(5.0)), c(Some(2.0))]).unwrap();
        assert_eq!(floats(&out), vec![Some(1.0), None, Some(-1.0)]);
    }

    #[test]
    fn zero_std_gives_zero_and_null_gives_null() {
        let out = invoke(
            &StandardScale::new(),
            vec![c(Some(7.0)), c(Some(5.0)), c(Some(0.0))],
        )
        .unwrap();
        assert_eq!(floats(&out), vec![Some(0.0)]);
        let out = invoke(
            &StandardScale::new(),
            vec![c(Some(7.0)), c(None), c(Some(1.0))],
        )
        .unwrap();
        assert_eq!(floats(&out), vec![None]);
    }

    #[test]
    fn needs_three_numbers() {
        let e = StandardScale::new()
            .return_type(&[DataType::Float64, DataType::Float64])
            .unwrap_err();
        assert_eq!(
            e.strip_backtrace(),
            "Error during planning: standard_scale(x, mean, std) takes 3 arguments, got 2"
        );
        let e = StandardScale::new()
            .return_type(&[DataType::Utf8, DataType::Float64, DataType::Float64])
            .unwrap_err();
        assert!(
            e.to_string().contains("x must be a number, got Utf8"),
            "{e}"
        );
    }
}
