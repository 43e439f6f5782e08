//! `min_max_scale_window(x) OVER (…)`: min-max scaling with min and max fitted over the partition.
//!
//! Named apart from the scalar `min_max_scale` for the reason given in
//! `standard_scale_window.rs`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};

use super::scaling::{self, FitAndScale};
use crate::docs;

const NAME: &str = "min_max_scale_window";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::ENCODING,
        "Window function: min-max-scales `x` with the minimum and maximum of the non-NULL `x` of \
         the whole window partition: (x - min) / (max - min), as Float64, so the partition maps \
         onto [0, 1]. ORDER BY and the window frame are ignored: the fit always covers the \
         partition. max = min gives 0.0; NULL x gives NULL and is not part of the fit; a NaN in \
         the partition makes every result NaN. Same formula as `min_max_scale(x, min, max)`.",
        "min_max_scale_window(x) OVER ([PARTITION BY ...])",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT x, min_max_scale_window(x) OVER () FROM (VALUES (1.0), (2.0), (5.0)) t(x);\n\
         1.0  0.0\n\
         2.0  0.25\n\
         5.0  1.0\n\
         ```",
    )
    .with_argument("x", "The value to scale (numeric).")
    .with_related_udf("standard_scale_window")
    .build()
});

/// `min_max_scale_window(x) OVER (...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinMaxScaleWindow {
    signature: Signature,
}

impl Default for MinMaxScaleWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl MinMaxScaleWindow {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Float64]]),
        }
    }
}

impl WindowUDFImpl for MinMaxScaleWindow {
    fn name(&self) -> &str {
        NAME
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
        crate::arguments::check_numbers(NAME, &["x"], &types)?;
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
        Ok(Box::new(FitAndScale {
            fit: scaling::fit_min_max,
            scale: scaling::min_max,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array};
    use datafusion::arrow::datatypes::Float64Type;

    #[test]
    fn fits_over_the_partition() {
        let mut e = MinMaxScaleWindow::new()
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
