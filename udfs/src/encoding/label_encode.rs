//! `label_encode(value, ARRAY['a', 'b', …])`: the position of a value among fitted categories.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, internal_datafusion_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::categories::{self, Categories};
use crate::arguments::check_arity;
use crate::docs;

const NAME: &str = "label_encode";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::ENCODING,
        "Label-encodes `value` over the fitted `categories`: the 0-based position (Int32) of the \
         category equal to `value`, like scikit-learn's LabelEncoder (SQL's array_position is \
         1-based; this is not). NULL for a NULL or unknown value. `categories` must be a constant \
         array without NULLs or duplicates; values are compared as SQL `=` compares them.",
        "label_encode(value, categories)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT label_encode('gold', ARRAY['bronze', 'silver', 'gold']);\n\
         2\n\
         ```",
    )
    .with_argument("value", "The value to encode (any comparable type).")
    .with_argument(
        "categories",
        "The fitted categories, a constant array such as ARRAY['a', 'b', 'c'].",
    )
    .with_related_udf("one_hot")
    .build()
});

/// `label_encode(value, categories)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LabelEncode {
    signature: Signature,
}

impl Default for LabelEncode {
    fn default() -> Self {
        Self::new()
    }
}

impl LabelEncode {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[
                DataType::Utf8,
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            ]]),
        }
    }
}

impl ScalarUDFImpl for LabelEncode {
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
        check_arity(NAME, "value, categories", arg_types.len(), 2, 2)?;
        categories::check_types(NAME, arg_types)?;
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let value_type = categories::common_type(
            args.arg_fields[0].data_type(),
            args.arg_fields[1].data_type(),
        )
        .ok_or_else(|| internal_datafusion_err!("{NAME}: types checked while planning"))?;
        let categories = Categories::from_argument(NAME, &args.args[1], &value_type)?;
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let codes: ArrayRef = Arc::new(Int32Array::from(categories.positions(&values)?));
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &codes, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(codes))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{invoke, list_of_strings, strings};
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn gives_zero_based_positions_and_null_for_unknown() {
        let out = invoke(
            &LabelEncode::new(),
            vec![
                strings(&[Some("gold"), Some("bronze"), Some("iron"), None]),
                list_of_strings(&["bronze", "silver", "gold"]),
            ],
        )
        .unwrap();
        let ColumnarValue::Array(a) = out else {
            panic!("expected an array")
        };
        let codes: Vec<Option<i32>> = a.as_primitive::<Int32Type>().iter().collect();
        assert_eq!(codes, vec![Some(2), Some(0), None, None]);
    }

    #[test]
    fn a_constant_value_gives_a_constant() {
        let out = invoke(
            &LabelEncode::new(),
            vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("silver".into()))),
                list_of_strings(&["bronze", "silver"]),
            ],
        )
        .unwrap();
        let ColumnarValue::Scalar(v) = out else {
            panic!("expected a scalar")
        };
        assert_eq!(v, ScalarValue::Int32(Some(1)));
    }
}
