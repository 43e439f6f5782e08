//! Encoding a value against fitted categories (`ARRAY['a', 'b', …]`): `one_hot(value,
//! categories)` gives a one-hot vector, `label_encode(value, categories)` the 0-based position.
//! One implementation ([`EncodeCategory`]) over [`CategoryEncoding`], so both functions agree
//! on what "the same category" means and differ only in how a position is written out.
//!
//! Values are compared in Arrow's row format after coercing the value and the list to one
//! type, so any comparable type works (strings of every flavour, integers, dates, …) and a
//! value matches a category exactly when SQL `=` would say so. The list must be a constant
//! without NULLs or duplicates: it is the fitted state of an encoder, not data.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int8Array, Int32Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, exec_err, internal_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};
use datafusion_macros::user_doc;

use crate::arguments::check_arity;

/// How a value's position among the categories is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CategoryEncoding {
    /// `one_hot`: a `List<Int8>` as long as the categories, 1 at the position, all zeros for
    /// NULL or unknown values.
    OneHot,
    /// `label_encode`: the 0-based position as Int32, NULL for NULL or unknown values.
    Label,
}

impl CategoryEncoding {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            CategoryEncoding::OneHot => "one_hot",
            CategoryEncoding::Label => "label_encode",
        }
    }

    fn return_type(self) -> DataType {
        match self {
            CategoryEncoding::OneHot => DataType::List(one_hot_item()),
            CategoryEncoding::Label => DataType::Int32,
        }
    }

    /// The encoding of each row, from its position among `k` categories.
    fn encode(self, positions: Vec<Option<i32>>, k: usize) -> Result<ArrayRef> {
        Ok(match self {
            CategoryEncoding::OneHot => {
                let mut bits = vec![0i8; positions.len() * k];
                for (row, position) in positions.iter().enumerate() {
                    if let Some(p) = position {
                        bits[row * k + *p as usize] = 1;
                    }
                }
                Arc::new(ListArray::try_new(
                    one_hot_item(),
                    OffsetBuffer::from_lengths(std::iter::repeat_n(k, positions.len())),
                    Arc::new(Int8Array::from(bits)),
                    None,
                )?)
            }
            CategoryEncoding::Label => Arc::new(Int32Array::from(positions)),
        })
    }

    fn documentation(self) -> Option<&'static Documentation> {
        match self {
            CategoryEncoding::OneHot => OneHotDoc.doc(),
            CategoryEncoding::Label => LabelEncodeDoc.doc(),
        }
    }
}

fn one_hot_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int8, true))
}

// `#[user_doc]` documents the type it is attached to; `EncodeCategory` serves two functions,
// so each function's documentation is attached to a type of its own.

#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "One-hot encodes `value` over the fitted `categories`: a list of Int8 as long as \
         `categories`, with 1 at the position of the category equal to `value` and 0 elsewhere. A \
         NULL or unknown value gives all zeros (never NULL), so the vector always has the same \
         length. `categories` must be a constant array without NULLs or duplicates; values are \
         compared as SQL `=` compares them, after coercing value and categories to one type.",
    syntax_example = "one_hot(value, categories)",
    sql_example = r#"```sql
> SELECT one_hot('gold', ARRAY['bronze', 'silver', 'gold']) AS v;
+-----------+
| v         |
+-----------+
| [0, 0, 1] |
+-----------+
```"#,
    argument(
        name = "value",
        description = "The value to encode (any comparable type)."
    ),
    argument(
        name = "categories",
        description = "The fitted categories, a constant array such as ARRAY['a', 'b', 'c']."
    ),
    related_udf(name = "label_encode")
)]
struct OneHotDoc;

#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Label-encodes `value` over the fitted `categories`: the 0-based position \
         (Int32) of the category equal to `value`, like scikit-learn's LabelEncoder (SQL's \
         array_position is 1-based; this is not). NULL for a NULL or unknown value. `categories` \
         must be a constant array without NULLs or duplicates; values are compared as SQL `=` \
         compares them.",
    syntax_example = "label_encode(value, categories)",
    sql_example = r#"```sql
> SELECT label_encode('gold', ARRAY['bronze', 'silver', 'gold']) AS code;
+------+
| code |
+------+
| 2    |
+------+
```"#,
    argument(
        name = "value",
        description = "The value to encode (any comparable type)."
    ),
    argument(
        name = "categories",
        description = "The fitted categories, a constant array such as ARRAY['a', 'b', 'c']."
    ),
    related_udf(name = "one_hot")
)]
struct LabelEncodeDoc;

/// `one_hot(value, categories)` and `label_encode(value, categories)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EncodeCategory {
    encoding: CategoryEncoding,
    signature: Signature,
}

impl EncodeCategory {
    pub fn new(encoding: CategoryEncoding) -> Self {
        Self {
            encoding,
            signature: crate::arguments::signature(&[&[
                DataType::Utf8,
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            ]]),
        }
    }
}

impl ScalarUDFImpl for EncodeCategory {
    fn name(&self) -> &str {
        self.encoding.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let name = self.name();
        check_arity(name, "value, categories", arg_types.len(), 2, 2)?;
        check_types(name, arg_types)?;
        Ok(self.encoding.return_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let value_type = common_type(
            args.arg_fields[0].data_type(),
            args.arg_fields[1].data_type(),
        )
        .ok_or_else(|| internal_datafusion_err!("{name}: types checked while planning"))?;
        let categories = Categories::from_argument(name, &args.args[1], &value_type)?;
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let encoded = self
            .encoding
            .encode(categories.positions(&values)?, categories.len())?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &encoded, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(encoded))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.encoding.documentation()
    }
}

/// The type values and categories are compared in: their comparison type, as for SQL `=`.
fn common_type(value: &DataType, list: &DataType) -> Option<DataType> {
    let element = list_element(list)?;
    if value.is_null() {
        Some(element)
    } else if element.is_null() {
        Some(value.clone())
    } else {
        comparison_coercion(value, &element)
    }
}

/// The element type of a list type.
fn list_element(t: &DataType) -> Option<DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Some(f.data_type().clone())
        }
        _ => None,
    }
}

/// Checks `(value, categories)` argument types.
fn check_types(name: &str, arg_types: &[DataType]) -> Result<()> {
    let [value, list] = arg_types else {
        return plan_err!(
            "{name}(value, categories) takes 2 arguments, got {}",
            arg_types.len()
        );
    };
    match list_element(list) {
        Some(_) if common_type(value, list).is_some() => Ok(()),
        Some(element) => plan_err!(
            "{name}: the categories ({element}) cannot be compared with the value ({value})"
        ),
        None => plan_err!(
            "{name}: categories must be an array of the fitted categories, such as ARRAY['a', 'b'], got {list}"
        ),
    }
}

/// The fitted categories and a lookup from a value's row encoding to its position.
struct Categories {
    value_type: DataType,
    converter: RowConverter,
    positions: HashMap<Box<[u8]>, i32>,
    len: usize,
}

impl Categories {
    /// Reads the category list argument; it must be a constant. Values will be compared in
    /// `value_type` (see [`common_type`]).
    fn from_argument(name: &str, arg: &ColumnarValue, value_type: &DataType) -> Result<Self> {
        let ColumnarValue::Scalar(list) = arg else {
            return exec_err!(
                "{name}: categories must be a constant array such as ARRAY['a', 'b'], not a column"
            );
        };
        let values: ArrayRef = match list {
            ScalarValue::List(l) if !l.is_null(0) => l.value(0),
            ScalarValue::LargeList(l) if !l.is_null(0) => l.value(0),
            ScalarValue::FixedSizeList(l) if !l.is_null(0) => l.value(0),
            ScalarValue::List(_)
            | ScalarValue::LargeList(_)
            | ScalarValue::FixedSizeList(_)
            | ScalarValue::Null => {
                return exec_err!("{name}: categories must not be NULL");
            }
            other => {
                return exec_err!(
                    "{name}: categories must be an array, got {}",
                    other.data_type()
                );
            }
        };
        let values = if values.data_type() == value_type {
            values
        } else {
            cast(&values, value_type)?
        };
        let converter = RowConverter::new(vec![SortField::new(value_type.clone())])?;
        let rows = converter.convert_columns(std::slice::from_ref(&values))?;
        let mut positions = HashMap::with_capacity(values.len());
        for i in 0..values.len() {
            if values.is_null(i) {
                return exec_err!("{name}: categories must not contain NULL");
            }
            let key: Box<[u8]> = rows.row(i).as_ref().into();
            if positions.insert(key, i as i32).is_some() {
                let shown = match ScalarValue::try_from_array(&values, i)? {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::LargeUtf8(Some(s))
                    | ScalarValue::Utf8View(Some(s)) => format!("'{s}'"),
                    other => other.to_string(),
                };
                return exec_err!("{name}: category {shown} appears more than once");
            }
        }
        Ok(Self {
            value_type: value_type.clone(),
            converter,
            positions,
            len: values.len(),
        })
    }

    /// The number of categories.
    fn len(&self) -> usize {
        self.len
    }

    /// The 0-based position of each value; `None` for NULL and unknown values.
    fn positions(&self, values: &ArrayRef) -> Result<Vec<Option<i32>>> {
        let values = &cast(values, &self.value_type)?;
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(values))?;
        Ok((0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    None
                } else {
                    self.positions.get(rows.row(i).as_ref()).copied()
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{invoke, list_of_strings, strings};
    use datafusion::arrow::array::AsArray;

    mod one_hot {
        use super::*;
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
                &EncodeCategory::new(CategoryEncoding::OneHot),
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
                &EncodeCategory::new(CategoryEncoding::OneHot),
                vec![strings(&[Some("a")]), list_of_strings(&["a", "a"])],
            )
            .unwrap_err();
            assert!(e.to_string().contains("appears more than once"), "{e}");
        }

        #[test]
        fn wrong_argument_types_are_reported() {
            let e = EncodeCategory::new(CategoryEncoding::OneHot)
                .return_type(&[DataType::Utf8, DataType::Utf8])
                .unwrap_err();
            assert!(e.to_string().contains("categories must be an array"), "{e}");
        }
    }

    mod label_encode {
        use super::*;
        use datafusion::arrow::datatypes::Int32Type;

        #[test]
        fn gives_zero_based_positions_and_null_for_unknown() {
            let out = invoke(
                &EncodeCategory::new(CategoryEncoding::Label),
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
                &EncodeCategory::new(CategoryEncoding::Label),
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
}
