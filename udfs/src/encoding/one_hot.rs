//! `one_hot(value, ARRAY['a', 'b', …])`: a one-hot vector over fitted categories.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Int8Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, internal_datafusion_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::categories::{self, Categories};
use crate::arguments::check_arity;
use crate::docs;

const NAME: &str = "one_hot";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::ENCODING,
        "One-hot encodes `value` over the fitted `categories`: a list of Int8 as long as \
         `categories`, with 1 at the position of the category equal to `value` and 0 elsewhere. \
         A NULL or unknown value gives all zeros (never NULL), so the vector always has the \
         same length. `categories` must be a constant array without NULLs or duplicates; values \
         are compared as SQL `=` compares them, after coercing value and categories to one type.",
        "one_hot(value, categories)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT one_hot('gold', ARRAY['bronze', 'silver', 'gold']);\n\
         [0, 0, 1]\n\
         ```",
    )
    .with_argument("value", "The value to encode (any comparable type).")
    .with_argument(
        "categories",
        "The fitted categories, a constant array such as ARRAY['a', 'b', 'c'].",
    )
    .with_related_udf("label_encode")
    .build()
});

/// `one_hot(value, categories)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OneHot {
    signature: Signature,
}

impl Default for OneHot {
    fn default() -> Self {
        Self::new()
    }
}

impl OneHot {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[
                DataType::Utf8,
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            ]]),
        }
    }
}

fn item_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int8, true))
}

impl ScalarUDFImpl for OneHot {
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
        Ok(DataType::List(item_field()))
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
        let positions = categories.positions(&values)?;
        let k = categories.len();
        let mut bits = vec![0i8; positions.len() * k];
        for (row, position) in positions.iter().enumerate() {
            if let Some(p) = position {
                bits[row * k + *p as usize] = 1;
            }
        }
        let list: ArrayRef = Arc::new(ListArray::try_new(
            item_field(),
            OffsetBuffer::from_lengths(std::iter::repeat_n(k, positions.len())),
            Arc::new(Int8Array::from(bits)),
            None,
        )?);
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &list, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(list))
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
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int8Type;

    fn rows(out: ColumnarValue) -> Vec<Vec<i8>> {
        let ColumnarValue::Array(a) = out else {
            panic!("expected an array")
        };
        let list = a.as_list::<i32>();
        (0..list.len())
            .map(|i| list.value(i).as_primitive::<Int8Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn marks_the_matching_category() {
        let out = invoke(
            &OneHot::new(),
            vec![
                strings(&[Some("gold"), Some("bronze"), Some("iron"), None]),
                list_of_strings(&["bronze", "silver", "gold"]),
            ],
        )
        .unwrap();
        assert_eq!(
            rows(out),
            vec![vec![0, 0, 1], vec![1, 0, 0], vec![0, 0, 0], vec![0, 0, 0]]
        );
    }

    #[test]
    fn duplicate_or_null_categories_are_an_error() {
        let e = invoke(
            &OneHot::new(),
            vec![strings(&[Some("a")]), list_of_strings(&["a", "a"])],
        )
        .unwrap_err();
        assert!(e.to_string().contains("appears more than once"), "{e}");
    }

    #[test]
    fn wrong_argument_types_are_reported() {
        let e = OneHot::new()
            .return_type(&[DataType::Utf8, DataType::Utf8])
            .unwrap_err();
        assert!(e.to_string().contains("categories must be an array"), "{e}");
    }
}
