//! A fitted category list (`ARRAY['a', 'b', …]`) and the position of values in it, shared by
//! `one_hot` and `label_encode` so both agree on what "the same category" means.
//!
//! Values are compared in Arrow's row format after coercing the value and the list to one
//! type, so any comparable type works (strings of every flavour, integers, dates, …) and a
//! value matches a category exactly when SQL `=` would say so. The list must be a constant
//! without NULLs or duplicates: it is the fitted state of an encoder, not data.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;

/// The type values and categories are compared in: their comparison type, as for SQL `=`.
pub(crate) fn common_type(value: &DataType, list: &DataType) -> Option<DataType> {
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
pub(crate) fn check_types(name: &str, arg_types: &[DataType]) -> Result<()> {
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
pub(crate) struct Categories {
    value_type: DataType,
    converter: RowConverter,
    positions: HashMap<Box<[u8]>, i32>,
    len: usize,
}

impl Categories {
    /// Reads the category list argument; it must be a constant. Values will be compared in
    /// `value_type` (see [`common_type`]).
    pub(crate) fn from_argument(
        name: &str,
        arg: &ColumnarValue,
        value_type: &DataType,
    ) -> Result<Self> {
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
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The 0-based position of each value; `None` for NULL and unknown values.
    pub(crate) fn positions(&self, values: &ArrayRef) -> Result<Vec<Option<i32>>> {
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
