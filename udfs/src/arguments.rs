//! Argument checks shared by every function, so arity and type errors read the same everywhere.
//!
//! Every function has the same kind of [`signature`]: DataFusion passes the arguments as they
//! are (`coerce_types` is the identity) and the function casts what it needs itself (numbers to
//! Float64, labels to booleans, …). Validation happens in `return_type`, because DataFusion
//! wraps errors raised during coercion in "user-defined coercion failed with: Error during
//! planning: …", while an error from `return_type` reaches the user as written here.

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Signature, TypeSignature, Volatility};

/// The signature of every FStore function: user-defined (identity) coercion, plus example
/// argument types. The examples are never used to coerce — the identity always matches first
/// — but they are what `SHOW FUNCTIONS` and `information_schema.parameters` list: a purely
/// user-defined signature has no example types, and DataFusion then shows no row at all.
pub(crate) fn signature(examples: &[&[DataType]]) -> Signature {
    let mut signatures = vec![TypeSignature::UserDefined];
    signatures.extend(
        examples
            .iter()
            .map(|types| TypeSignature::Exact(types.to_vec())),
    );
    Signature::one_of(signatures, Volatility::Immutable)
}

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

/// Requires a numeric argument.
pub(crate) fn require_numeric(name: &str, arg: &str, t: &DataType) -> Result<()> {
    if is_numeric(t) {
        Ok(())
    } else {
        plan_err!("{name}: {arg} must be a number, got {t}")
    }
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
        t if t.is_unsigned_integer() => {
            let ints = cast(array, &DataType::UInt64)?;
            let ints = ints.as_primitive::<UInt64Type>();
            if let Some(bad) = ints.iter().flatten().find(|v| *v > 1) {
                return exec_err!("{name}: label must be 0 or 1 (or a boolean), found {bad}");
            }
            Ok(ints.iter().map(|v| v.map(|v| v == 1)).collect())
        }
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
