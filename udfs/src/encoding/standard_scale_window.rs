//! `standard_scale_window(x) OVER (…)`: z-scores with mean and std fitted over the partition.
//!
//! Named apart from the scalar `standard_scale` because DataFusion resolves a function name to
//! a scalar UDF before it looks at the OVER clause: a window UDF registered under the same name
//! would never be called (see the test at the end of this file).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};

use super::scaling::{self, FitAndScale};
use crate::docs;

const NAME: &str = "standard_scale_window";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::ENCODING,
        "Window function: standard-scales `x` with the mean and the population standard \
         deviation (ddof = 0, as scikit-learn's StandardScaler) of the non-NULL `x` of the whole \
         window partition: (x - mean) / std, as Float64. ORDER BY and the window frame are \
         ignored: the fit always covers the partition. std = 0 gives 0.0; NULL x gives NULL and \
         is not part of the fit. Same formula as `standard_scale(x, mean, std)`, which is the \
         form to use with stored parameters (the window form has its own name because DataFusion \
         resolves a name to a scalar function before it considers OVER).",
        "standard_scale_window(x) OVER ([PARTITION BY ...])",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT x, standard_scale_window(x) OVER () FROM (VALUES (1.0), (3.0)) t(x);\n\
         1.0  -1.0\n\
         3.0   1.0\n\
         ```",
    )
    .with_argument("x", "The value to scale (numeric).")
    .with_related_udf("min_max_scale_window")
    .build()
});

/// `standard_scale_window(x) OVER (...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StandardScaleWindow {
    signature: Signature,
}

impl Default for StandardScaleWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl StandardScaleWindow {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Float64]]),
        }
    }
}

impl WindowUDFImpl for StandardScaleWindow {
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
            fit: scaling::fit_standard,
            scale: scaling::standard,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::StandardScale;
    use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array};
    use datafusion::arrow::datatypes::Float64Type;
    use datafusion::logical_expr::{ScalarUDF, WindowUDF};
    use datafusion::prelude::SessionContext;

    #[test]
    fn fits_over_the_partition() {
        let mut e = StandardScaleWindow::new()
            .partition_evaluator(PartitionEvaluatorArgs::default())
            .unwrap();
        let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
        let out = e.evaluate_all(&[x], 3).unwrap();
        let out: Vec<_> = out.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(out, vec![Some(-1.0), None, Some(1.0)]);
    }

    /// Why the window form has its own name: with a scalar `standard_scale` registered, DataFusion
    /// plans `standard_scale(x) OVER ()` as the scalar function (and rejects it for having one
    /// argument) even when a window function of the same name exists.
    #[tokio::test]
    async fn a_scalar_function_shadows_a_window_function_of_the_same_name() {
        #[derive(Debug, PartialEq, Eq, Hash)]
        struct Renamed(StandardScaleWindow);
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
        ctx.register_udwf(WindowUDF::new_from_impl(
            Renamed(StandardScaleWindow::new()),
        ));
        let sql = "SELECT standard_scale(x) OVER () FROM (VALUES (1.0), (3.0)) t(x)";
        // Alone, the window function works …
        assert!(ctx.sql(sql).await.unwrap().collect().await.is_ok());
        // … but once the scalar function exists, the name means the scalar function.
        ctx.register_udf(ScalarUDF::new_from_impl(StandardScale::new()));
        let e = ctx.sql(sql).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("standard_scale(x, mean, std) takes 3 arguments, got 1"),
            "{e}"
        );
    }
}
