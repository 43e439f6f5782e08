//! `min_max_scale(x, min, max)`: min-max scaling with given (stored, fitted) parameters.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::scaling;
use crate::docs;

const NAME: &str = "min_max_scale";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::ENCODING,
        "Min-max-scales `x` with the given parameters: (x - min) / (max - min), as Float64 (values \
         outside [min, max] fall outside [0, 1]; they are not clipped). When `max` equals `min` \
         the result is 0.0 (a constant feature). NULL in any argument gives NULL. To fit min and \
         max over a window partition instead, use `min_max_scale_window(x) OVER (...)`.",
        "min_max_scale(x, min, max)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT min_max_scale(7.5, 5, 10);\n\
         0.5\n\
         ```",
    )
    .with_argument("x", "The value to scale (numeric).")
    .with_argument("min", "The fitted minimum.")
    .with_argument("max", "The fitted maximum.")
    .with_related_udf("standard_scale")
    .build()
});

/// `min_max_scale(x, min, max)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinMaxScale {
    signature: Signature,
}

impl Default for MinMaxScale {
    fn default() -> Self {
        Self::new()
    }
}

impl MinMaxScale {
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

impl ScalarUDFImpl for MinMaxScale {
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
        crate::arguments::check_numbers(NAME, &["x", "min", "max"], arg_types)?;
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        scaling::invoke_three(&args.args, args.number_rows, scaling::min_max)
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
    fn scales_into_the_unit_interval() {
        let x = ColumnarValue::Array(Arc::new(Float64Array::from(vec![
            Some(5.0),
            Some(7.5),
            None,
            Some(12.5),
        ])));
        let out = invoke(&MinMaxScale::new(), vec![x, c(Some(5.0)), c(Some(10.0))]).unwrap();
        assert_eq!(floats(&out), vec![Some(0.0), Some(0.5), None, Some(1.5)]);
    }

    #[test]
    fn equal_min_and_max_give_zero() {
        let out = invoke(
            &MinMaxScale::new(),
            vec![c(Some(3.0)), c(Some(1.0)), c(Some(1.0))],
        )
        .unwrap();
        assert_eq!(floats(&out), vec![Some(0.0)]);
    }
}
