//! Reading table-function arguments: they must be constants, and a wrong one gets an error
//! naming the function, the argument and what was expected.

use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

use crate::error::FStoreError;

/// The constant value of an argument, after folding casts of literals.
pub fn literal<'a>(
    args: &'a [Expr],
    i: usize,
    function: &str,
    name: &str,
) -> Result<Option<&'a ScalarValue>> {
    match args.get(i) {
        None => Ok(None),
        Some(e) => match strip(e) {
            Expr::Literal(v, _) => Ok(Some(v)),
            other => Err(FStoreError::invalid(format!(
                "{function}: argument {} ({name}) must be a constant, got {other}",
                i + 1
            ))
            .into()),
        },
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        Expr::Alias(a) => strip(&a.expr),
        other => other,
    }
}

/// A non-negative integer argument; `default` when absent.
pub fn u64_arg(
    args: &[Expr],
    i: usize,
    function: &str,
    name: &str,
    default: Option<u64>,
) -> Result<u64> {
    let invalid = |got: String| -> datafusion::error::DataFusionError {
        FStoreError::invalid(format!(
            "{function}: argument {} ({name}) must be a non-negative integer, got {got}",
            i + 1
        ))
        .into()
    };
    match literal(args, i, function, name)? {
        None => default.ok_or_else(|| {
            FStoreError::invalid(format!("{function}: missing argument {} ({name})", i + 1)).into()
        }),
        Some(v) if v.is_null() => Err(invalid("NULL".into())),
        Some(v) => {
            let n = match v {
                ScalarValue::Int8(Some(n)) => *n as i64,
                ScalarValue::Int16(Some(n)) => *n as i64,
                ScalarValue::Int32(Some(n)) => *n as i64,
                ScalarValue::Int64(Some(n)) => *n,
                ScalarValue::UInt8(Some(n)) => *n as i64,
                ScalarValue::UInt16(Some(n)) => *n as i64,
                ScalarValue::UInt32(Some(n)) => *n as i64,
                ScalarValue::UInt64(Some(n)) => return Ok(*n),
                other => return Err(invalid(format!("{other} ({})", other.data_type()))),
            };
            u64::try_from(n).map_err(|_| invalid(n.to_string()))
        }
    }
}

/// Tags a table function's schema with the call that produced it.
///
/// DataFusion names every table-function scan `f()` whatever its arguments, and `TableScan`
/// equality ignores the provider, so optimizer rules (common-subexpression elimination) merge
/// `f(1)` and `f(2)` in one query. Scans with different schema metadata are never equal, so
/// every FStore table function tags its schema with its arguments.
///
/// The call is the tag's key, not only its value: when two calls meet in one query (`f(1)
/// CROSS JOIN f(2)`), their schemas' metadata is merged, and two values under one key would
/// be resolved differently by the logical and the physical planner (an internal error).
/// Distinct keys merge the same way in both.
pub fn identify_call(
    schema: &arrow_schema::Schema,
    function: &str,
    args: &[Expr],
) -> arrow_schema::SchemaRef {
    let call = format!(
        "{function}({})",
        args.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut metadata = schema.metadata().clone();
    metadata.insert(format!("fstore.table_function.{call}"), call);
    std::sync::Arc::new(schema.clone().with_metadata(metadata))
}

/// Fails when more than `max` arguments were given.
pub fn at_most(args: &[Expr], max: usize, function: &str, signature: &str) -> Result<()> {
    if args.len() > max {
        return Err(FStoreError::invalid(format!(
            "{function}: too many arguments ({}); usage: {function}({signature})",
            args.len()
        ))
        .into());
    }
    Ok(())
}

/// A string argument; None when it is absent or NULL.
pub fn string_arg(args: &[Expr], i: usize, function: &str, name: &str) -> Result<Option<String>> {
    match literal(args, i, function, name)? {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s))) => Ok(Some(s.clone())),
        Some(other) => Err(FStoreError::invalid(format!(
            "{function}: argument {} ({name}) must be a string, got {other} ({})",
            i + 1,
            other.data_type()
        ))
        .into()),
    }
}

/// A required string argument.
pub fn required_string(args: &[Expr], i: usize, function: &str, name: &str) -> Result<String> {
    string_arg(args, i, function, name)?.ok_or_else(|| {
        FStoreError::invalid(format!("{function}: missing argument {} ({name})", i + 1)).into()
    })
}
