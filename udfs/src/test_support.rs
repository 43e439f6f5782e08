//! Helpers for the unit tests: calling a function the way DataFusion does after planning, so
//! a unit test exercises the same path as SQL without building a `SessionContext`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::{Accumulator, ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};

/// Calls a scalar function on `args`, as DataFusion does after planning.
pub(crate) fn invoke(f: &dyn ScalarUDFImpl, args: Vec<ColumnarValue>) -> Result<ColumnarValue> {
    let arg_fields: Vec<FieldRef> = args
        .iter()
        .enumerate()
        .map(|(i, a)| Arc::new(Field::new(format!("a{i}"), a.data_type(), true)))
        .collect();
    let types: Vec<DataType> = arg_fields.iter().map(|f| f.data_type().clone()).collect();
    let number_rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let return_field = Arc::new(Field::new("out", f.return_type(&types)?, true));
    f.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows,
        return_field,
        config_options: Arc::new(ConfigOptions::default()),
    })
}

/// A string column.
pub(crate) fn strings(values: &[Option<&str>]) -> ColumnarValue {
    ColumnarValue::Array(Arc::new(StringArray::from(values.to_vec())))
}

/// A constant `ARRAY['a', …]`.
pub(crate) fn list_of_strings(values: &[&str]) -> ColumnarValue {
    let values: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    ColumnarValue::Scalar(ScalarValue::List(Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
        values,
        None,
    ))))
}

/// A column as a `Vec<Option<f64>>`.
pub(crate) fn floats(out: &ColumnarValue) -> Vec<Option<f64>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    match out {
        ColumnarValue::Array(a) => a.as_primitive::<Float64Type>().iter().collect(),
        ColumnarValue::Scalar(ScalarValue::Float64(v)) => vec![*v],
        other => panic!("not a Float64 result: {other:?}"),
    }
}

/// Runs an aggregate the way a multi-partition plan does: one partial accumulator per element
/// of `parts`, their states merged into a final accumulator, which is evaluated.
pub(crate) fn partial_then_final(
    make: impl Fn() -> Box<dyn Accumulator>,
    parts: Vec<Vec<ArrayRef>>,
) -> Result<ScalarValue> {
    let mut total = make();
    for part in parts {
        let mut partial = make();
        partial.update_batch(&part)?;
        let state = partial
            .state()?
            .iter()
            .map(ScalarValue::to_array)
            .collect::<Result<Vec<_>>>()?;
        total.merge_batch(&state)?;
    }
    total.evaluate()
}
