//! `time_bucket(ts, width [, origin])`: the start of the fixed-width bucket containing `ts`.
//!
//! Feature windows and reports group events into buckets ('1h', '1 day', '15m'); this function
//! is the one definition of "the bucket of t". It works on the raw values of the input type
//! (any timestamp unit, with or without time zone, and dates), so it never changes a value's
//! type and never rounds through another unit.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, make_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, FieldRef, Int64Type, IntervalUnit, TimeUnit,
};
use datafusion::common::{ScalarValue, exec_err, internal_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};
use datafusion_macros::user_doc;

use crate::arguments::check_arity;
use crate::duration::{
    NANOS_PER_DAY, NANOS_PER_MICRO, NANOS_PER_MILLI, NANOS_PER_SECOND, duration_from_scalar,
};

const NAME: &str = "time_bucket";
const USAGE: &str = "ts, width [, origin]";

/// `time_bucket(ts, width [, origin])`.
#[user_doc(
    doc_section(label = "FStore Time Functions"),
    description = "Returns the start of the fixed-width time bucket that contains `ts`. Buckets \
         are `width` long and aligned to `origin`, by default the Unix epoch (1970-01-01 00:00:00 \
         UTC): bucket = origin + floor((ts - origin) / width) * width. For widths that divide a \
         day ('15m', '1h', '6 hours', '1 day') this is the same grid as DuckDB's and TimescaleDB's \
         default origin (2000-01-03); for multi-day widths it is not: '1 week' buckets start on \
         Thursdays (1970-01-01 was a Thursday), pass origin = '2000-01-03' for weeks starting on \
         Monday. The result has the type of `ts` (same timestamp unit and time zone; a DATE gives \
         a DATE). Time-zone-aware timestamps are bucketed on their UTC instant, so '1 day' buckets \
         start at 00:00 UTC. `width` must be a whole number of the input's unit (whole days for a \
         DATE). Month-based widths ('1 month', INTERVAL '1 year') are an error: they have no fixed \
         width. NULL `ts`, `width` or `origin` gives NULL.",
    syntax_example = "time_bucket(ts, width [, origin])",
    sql_example = r#"```sql
> SELECT time_bucket(TIMESTAMP '2024-03-05 10:47:12', '15m') AS bucket;
+---------------------+
| bucket              |
+---------------------+
| 2024-03-05T10:45:00 |
+---------------------+
> SELECT time_bucket(DATE '2024-03-05', '1 week', DATE '2000-01-03') AS week;
+------------+
| week       |
+------------+
| 2024-03-04 |
+------------+
```"#,
    argument(
        name = "ts",
        description = "A timestamp (any unit, with or without time zone) or a date."
    ),
    argument(
        name = "width",
        description = "The bucket width: a duration string ('30 days', '30d', '1h', '15m', '15s', \
         '1 hour', '2 weeks', '1h 30m') or a day/time INTERVAL."
    ),
    argument(
        name = "origin",
        description = "Optional. A timestamp or date that starts a bucket; default 1970-01-01 \
         00:00:00 UTC."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimeBucket {
    signature: Signature,
}

impl Default for TimeBucket {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeBucket {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[
                &[
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    DataType::Utf8,
                ],
                &[
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    DataType::Interval(IntervalUnit::MonthDayNano),
                ],
                &[DataType::Date32, DataType::Utf8],
                &[
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    DataType::Utf8,
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                ],
            ]),
        }
    }
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    )
}

fn is_width_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Interval(_)
            | DataType::Null
    )
}

/// Nanoseconds in one unit of the raw value of `t`, and the unit's name for errors.
fn unit_of(t: &DataType) -> Result<(i64, &'static str)> {
    Ok(match t {
        DataType::Timestamp(TimeUnit::Second, _) => (NANOS_PER_SECOND, "seconds"),
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => {
            (NANOS_PER_MILLI, "milliseconds")
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => (NANOS_PER_MICRO, "microseconds"),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => (1, "nanoseconds"),
        DataType::Date32 => (NANOS_PER_DAY, "days"),
        other => return internal_err!("{NAME}: unexpected input type {other}"),
    })
}

/// A width (in nanoseconds) in units of `t`.
fn width_in_units(width_nanos: i64, t: &DataType) -> Result<i64> {
    let (unit, unit_name) = unit_of(t)?;
    if width_nanos % unit != 0 {
        return exec_err!(
            "{NAME}: the width must be a whole number of {unit_name} for a {t} input"
        );
    }
    Ok(width_nanos / unit)
}

/// The raw value of a timestamp or date scalar (in units of its own type).
fn raw_value(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(v, _)
        | ScalarValue::TimestampMillisecond(v, _)
        | ScalarValue::TimestampMicrosecond(v, _)
        | ScalarValue::TimestampNanosecond(v, _)
        | ScalarValue::Date64(v) => *v,
        ScalarValue::Date32(v) => v.map(i64::from),
        _ => None,
    }
}

/// The start of the bucket of `ts`, all in units of the input type.
fn bucket(ts: i64, width: i64, origin: i64) -> Option<i64> {
    let offset = ts as i128 - origin as i128;
    let start = offset.div_euclid(width as i128) * width as i128 + origin as i128;
    i64::try_from(start).ok()
}

/// One argument that is either the same for every row or given per row.
enum PerRow<T> {
    Same(Option<T>),
    Each(Vec<Option<T>>),
}

impl<T: Copy> PerRow<T> {
    fn get(&self, i: usize) -> Option<T> {
        match self {
            PerRow::Same(v) => *v,
            PerRow::Each(v) => v[i],
        }
    }
}

impl ScalarUDFImpl for TimeBucket {
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
        check_arity(NAME, USAGE, arg_types.len(), 2, 3)?;
        let ts = &arg_types[0];
        if !is_temporal(ts) {
            return plan_err!("{NAME}: ts must be a timestamp or a date, got {ts}");
        }
        let width = &arg_types[1];
        if !is_width_type(width) {
            return plan_err!(
                "{NAME}: width must be a duration string (such as '1 hour') or an INTERVAL, got {width}"
            );
        }
        if let Some(origin) = arg_types.get(2)
            && !(is_temporal(origin)
                || origin.is_null()
                || matches!(
                    origin,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ))
        {
            return plan_err!("{NAME}: origin must be a timestamp or a date, got {origin}");
        }
        Ok(ts.clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = self.return_type(&types)?;
        // A constant width is checked while planning, not at the first row.
        if let Some(Some(width)) = args.scalar_arguments.get(1)
            && let Some(nanos) = duration_from_scalar(width)
                .or_else(|e| plan_err!("{NAME}: {}", crate::arguments::message(&e)))?
        {
            width_in_units(nanos, &t)
                .or_else(|e| plan_err!("{}", crate::arguments::message(&e)))?;
        }
        Ok(Arc::new(Field::new(self.name(), t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let t = args.arg_fields[0].data_type().clone();
        let rows = args.number_rows;
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));

        let width = match &args.args[1] {
            ColumnarValue::Scalar(w) => PerRow::Same(
                duration_from_scalar(w)
                    .map_err(|e| e.context(NAME))?
                    .map(|n| width_in_units(n, &t))
                    .transpose()?,
            ),
            ColumnarValue::Array(a) => PerRow::Each(
                (0..a.len())
                    .map(|i| {
                        duration_from_scalar(&ScalarValue::try_from_array(a, i)?)
                            .map_err(|e| e.context(NAME))?
                            .map(|n| width_in_units(n, &t))
                            .transpose()
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        // The origin is read in the unit and time zone of `ts`.
        let origin = match args.args.get(2) {
            None => PerRow::Same(Some(0)),
            Some(ColumnarValue::Scalar(o)) => PerRow::Same(raw_value(&o.cast_to(&t)?)),
            Some(ColumnarValue::Array(a)) => {
                let a = cast(a, &t)?;
                PerRow::Each(
                    (0..a.len())
                        .map(|i| Ok(raw_value(&ScalarValue::try_from_array(&a, i)?)))
                        .collect::<Result<_>>()?,
                )
            }
        };

        let ts = args.args[0].to_array(if all_scalar { 1 } else { rows })?;
        let raw: Vec<Option<i64>> = match &t {
            DataType::Date32 => ts
                .as_primitive::<Date32Type>()
                .iter()
                .map(|v| v.map(i64::from))
                .collect(),
            DataType::Date64 => ts.as_primitive::<Date64Type>().iter().collect(),
            DataType::Timestamp(..) => {
                // Every timestamp unit is an i64 underneath.
                let data = ts.to_data().into_builder().data_type(DataType::Int64);
                let ints = make_array(data.build()?);
                ints.as_primitive::<Int64Type>().iter().collect()
            }
            other => return internal_err!("{NAME}: unexpected input type {other}"),
        };

        let mut out = Vec::with_capacity(raw.len());
        for (i, v) in raw.into_iter().enumerate() {
            let value = match (v, width.get(i), origin.get(i)) {
                (Some(v), Some(w), Some(o)) => Some(bucket(v, w, o).ok_or_else(|| {
                    datafusion::common::exec_datafusion_err!(
                        "{NAME}: the bucket of {v} is out of range for {t}"
                    )
                })?),
                _ => None,
            };
            out.push(value);
        }

        let result: ArrayRef = if t == DataType::Date32 {
            let days = out
                .into_iter()
                .map(|v| v.map(i32::try_from).transpose())
                .collect::<std::result::Result<Int32Array, _>>()
                .map_err(|_| {
                    datafusion::common::exec_datafusion_err!("{NAME}: date out of range")
                })?;
            make_array(days.into_data().into_builder().data_type(t).build()?)
        } else {
            let ints = Int64Array::from(out);
            make_array(ints.into_data().into_builder().data_type(t).build()?)
        };
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(result))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Date32Array, TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    fn invoke(args: Vec<ColumnarValue>) -> Result<ColumnarValue> {
        crate::test_support::invoke(&TimeBucket::new(), args)
    }

    fn width(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_string())))
    }

    const T0: i64 = 1_709_635_632; // 2024-03-05T10:47:12Z

    #[test]
    fn buckets_timestamps_to_the_epoch_grid() {
        let ts = TimestampSecondArray::from(vec![Some(T0), None, Some(-1)]);
        let out = invoke(vec![ColumnarValue::Array(Arc::new(ts)), width("15m")]).unwrap();
        let ColumnarValue::Array(out) = out else {
            panic!("expected an array")
        };
        let out = out.as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>();
        assert_eq!(out.value(0), T0 - T0 % 900);
        assert!(out.is_null(1));
        // Before the epoch, buckets still start on the grid (floor, not truncation).
        assert_eq!(out.value(2), -900);
    }

    #[test]
    fn keeps_the_unit_and_time_zone() {
        let ts = TimestampMicrosecondArray::from(vec![T0 * 1_000_000 + 123])
            .with_timezone("America/New_York");
        let t = ts.data_type().clone();
        let out = invoke(vec![ColumnarValue::Array(Arc::new(ts)), width("1 day")]).unwrap();
        assert_eq!(out.data_type(), t);
        let ColumnarValue::Array(out) = out else {
            panic!("expected an array")
        };
        let v = out
            .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
            .value(0);
        assert_eq!(v, (T0 - T0 % 86_400) * 1_000_000);
    }

    #[test]
    fn intervals_and_strings_give_the_same_buckets() {
        let ts = || {
            ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
                Some(T0 * 1_000_000_000),
                None,
            ))
        };
        let a = invoke(vec![ts(), width("1h")]).unwrap();
        let b = invoke(vec![
            ts(),
            ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(0, 0, 3_600_000_000_000),
            ))),
        ])
        .unwrap();
        let (ColumnarValue::Scalar(a), ColumnarValue::Scalar(b)) = (a, b) else {
            panic!("scalar in, scalar out")
        };
        assert_eq!(a, b);
        assert_eq!(
            a,
            ScalarValue::TimestampNanosecond(Some((T0 - T0 % 3600) * 1_000_000_000), None)
        );
    }

    #[test]
    fn month_intervals_are_an_error() {
        let e = invoke(vec![
            ColumnarValue::Scalar(ScalarValue::TimestampSecond(Some(T0), None)),
            ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(1, 0, 0),
            ))),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("no fixed length"), "{e}");
    }

    #[test]
    fn dates_bucket_to_dates_with_an_origin() {
        // 2024-03-05 is day 19787 (a Tuesday); 2000-01-03 (a Monday) is day 10959.
        let dates = Date32Array::from(vec![19787]);
        let out = invoke(vec![
            ColumnarValue::Array(Arc::new(dates.clone())),
            width("1 week"),
            ColumnarValue::Scalar(ScalarValue::Date32(Some(10959))),
        ])
        .unwrap();
        let ColumnarValue::Array(out) = out else {
            panic!("expected an array")
        };
        assert_eq!(out.as_primitive::<Date32Type>().value(0), 19786);
        // Without an origin, weeks start on Thursdays (1970-01-01).
        let out = invoke(vec![ColumnarValue::Array(Arc::new(dates)), width("1w")]).unwrap();
        let ColumnarValue::Array(out) = out else {
            panic!("expected an array")
        };
        assert_eq!(out.as_primitive::<Date32Type>().value(0), 19782);
    }

    #[test]
    fn widths_finer_than_the_unit_are_an_error() {
        let e = invoke(vec![
            ColumnarValue::Scalar(ScalarValue::Date32(Some(19787))),
            width("1h"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("whole number of days"), "{e}");
        let ts = TimestampNanosecondArray::from(vec![1]);
        assert!(invoke(vec![ColumnarValue::Array(Arc::new(ts)), width("1ns")]).is_ok());
    }

    #[test]
    fn wrong_arguments_are_reported_while_planning() {
        let f = TimeBucket::new();
        assert_eq!(
            f.return_type(&[DataType::Int64, DataType::Utf8])
                .unwrap_err()
                .strip_backtrace(),
            "Error during planning: time_bucket: ts must be a timestamp or a date, got Int64"
        );
        assert!(f.return_type(&[DataType::Date32]).is_err());
        assert!(f.documentation().is_some());
    }
}
