//! Argument checks shared by every function, so arity and type errors read the same everywhere.
//!
//! Functions take `Signature::user_defined` and validate in `return_type` (not in
//! `coerce_types`): DataFusion wraps errors raised during coercion in "user-defined coercion
//! failed with: Error during planning: …", while an error from `return_type` reaches the user
//! as written here.

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};

/// Checks the number of arguments of `name(usage)`.
pub(crate) fn check_arity(
    name: &str,
    usage: &str,
    got: usize,
    min: usize,
    max: usize,
) -> Result<()> {
    if (min..=max).contains(&got) {
        return Ok(());
    }
    let expected = match (min, max) {
        (1, 1) => "1 argument".to_string(),
        (a, b) if a == b => format!("{a} arguments"),
        (a, b) if b == a + 1 => format!("{a} or {b} arguments"),
        (a, b) => format!("{a} to {b} arguments"),
    };
    plan_err!("{name}({usage}) takes {expected}, got {got}")
}

/// Integers, floats, decimals, and NULL (an untyped NULL literal).
pub(crate) fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || t.is_null()
}

/// The type a numeric argument is computed in: Float64 for numbers, unchanged otherwise (so
/// that `return_type` can name the wrong type).
pub(crate) fn float_or_unchanged(t: &DataType) -> DataType {
    if is_numeric(t) {
        DataType::Float64
    } else {
        t.clone()
    }
}

/// Requires a numeric argument.
pub(crate) fn require_numeric(name: &str, arg: &str, t: &DataType) -> Result<()> {
    if is_numeric(t) {
        Ok(())
    } else {
        plan_err!("{name}: {arg} must be a number, got {t}")
    }
}

/// Coercion of numeric arguments to Float64.
pub(crate) fn coerce_floats(arg_types: &[DataType]) -> Vec<DataType> {
    arg_types.iter().map(float_or_unchanged).collect()
}

/// Checks `name(usage)`: `count` numeric arguments named `names`.
pub(crate) fn check_numbers(name: &str, names: &[&str], arg_types: &[DataType]) -> Result<()> {
    check_arity(
        name,
        &names.join(", "),
        arg_types.len(),
        names.len(),
        names.len(),
    )?;
    for (t, arg) in arg_types.iter().zip(names) {
        require_numeric(name, arg, t)?;
    }
    Ok(())
}

/// Labels are booleans or the integers 0 and 1.
pub(crate) fn is_label_type(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Boolean | DataType::Null)
}

/// The type a label argument is computed in.
pub(crate) fn label_or_unchanged(t: &DataType) -> DataType {
    if t.is_integer() {
        DataType::Int64
    } else if t.is_null() {
        DataType::Boolean
    } else {
        t.clone()
    }
}

/// Requires a label argument (boolean or integer 0/1).
pub(crate) fn require_label(name: &str, t: &DataType) -> Result<()> {
    if is_label_type(t) {
        Ok(())
    } else {
        plan_err!("{name}: label must be a boolean or an integer 0/1, got {t}")
    }
}

/// A numeric column as Float64.
pub(crate) fn to_f64(array: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// A label column (boolean or integers) as booleans; any integer other than 0 and 1 is an error.
pub(crate) fn to_labels(name: &str, array: &ArrayRef) -> Result<BooleanArray> {
    match array.data_type() {
        DataType::Boolean => Ok(array.as_boolean().clone()),
        DataType::Null => Ok(BooleanArray::new_null(array.len())),
        t if t.is_integer() => {
            let ints = cast(array, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            if let Some(bad) = ints.iter().flatten().find(|v| *v != 0 && *v != 1) {
                return exec_err!("{name}: label must be 0 or 1 (or a boolean), found {bad}");
            }
            Ok(ints.iter().map(|v| v.map(|v| v == 1)).collect())
        }
        t => exec_err!("{name}: label must be a boolean or an integer 0/1, got {t}"),
    }
}

/// What a user reads of an error: the message without DataFusion's "Execution error: " prefix.
pub(crate) fn message(e: &DataFusionError) -> String {
    match e {
        DataFusionError::Execution(m) | DataFusionError::Plan(m) => m.clone(),
        DataFusionError::Context(c, inner) => format!("{c}: {}", message(inner)),
        other => other.strip_backtrace(),
    }
}
