//! Times of an AS-OF join as `i64` in one common unit.
//!
//! The two sides of the time condition may have different types: timestamps of different
//! units and time zones, dates, timestamps and dates mixed, or integers. Each side is converted
//! to `i64` in the finer of the two units (timestamps are instants whatever their zone; a date
//! is midnight UTC), with an error on overflow rather than a wrong answer. The look-back bound
//! is converted once, to the largest allowed difference in that unit.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::kernels::numeric::mul;
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;

use super::LookBack;
use crate::error::FStoreError;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// What a time column's values count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeKind {
    /// Integers: no unit, comparable only with integers.
    Integer,
    /// Dates and timestamps: an instant, counted in units of this many nanoseconds.
    Temporal { unit_nanos: i64 },
}

fn kind_of(t: &DataType) -> Option<TimeKind> {
    let unit = |u: &TimeUnit| match u {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    match t {
        t if t.is_integer() => Some(TimeKind::Integer),
        DataType::Date32 => Some(TimeKind::Temporal {
            unit_nanos: NANOS_PER_DAY,
        }),
        DataType::Date64 => Some(TimeKind::Temporal {
            unit_nanos: 1_000_000,
        }),
        DataType::Timestamp(u, _) => Some(TimeKind::Temporal {
            unit_nanos: unit(u),
        }),
        _ => None,
    }
}

/// How to turn one side's time column into the common unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSide {
    data_type: DataType,
    multiplier: i64,
}

impl TimeSide {
    /// The column's values as `i64` in the common unit; NULL stays NULL.
    pub fn normalize(&self, array: &ArrayRef) -> Result<Int64Array> {
        if array.data_type() != &self.data_type {
            return Err(FStoreError::new(
                crate::error::ErrorKind::Internal,
                format!(
                    "AS-OF time column is {}, planned as {}",
                    array.data_type(),
                    self.data_type
                ),
            )
            .into());
        }
        let as_int = match array.data_type() {
            DataType::Date32 => cast_with_options(
                &cast_with_options(array, &DataType::Int32, &STRICT)?,
                &DataType::Int64,
                &STRICT,
            )?,
            _ => cast_with_options(array, &DataType::Int64, &STRICT)?,
        };
        let as_int: ArrayRef = if self.multiplier == 1 {
            as_int
        } else {
            mul(&as_int, &Int64Array::new_scalar(self.multiplier)).map_err(|e| {
                FStoreError::invalid(format!(
                    "ASOF JOIN: a time of type {} does not fit the common unit of the two sides: {e}",
                    self.data_type
                ))
            })?
        };
        Ok(as_int.as_primitive::<Int64Type>().clone())
    }
}

const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

/// The plan for comparing the two times of an AS-OF join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePlan {
    pub left: TimeSide,
    pub right: TimeSide,
    /// Nanoseconds per unit of the common unit (1 for integers).
    unit_nanos: i64,
    integer: bool,
}

impl TimePlan {
    /// Checks that the two time types can be compared, and how.
    pub fn new(left: &DataType, right: &DataType) -> Result<TimePlan> {
        let incompatible = || {
            FStoreError::invalid(format!(
                "ASOF JOIN cannot compare a time of type {left} with one of type {right}: both must be timestamps or dates, or both integers"
            ))
        };
        let (Some(lk), Some(rk)) = (kind_of(left), kind_of(right)) else {
            return Err(incompatible().into());
        };
        match (lk, rk) {
            (TimeKind::Integer, TimeKind::Integer) => Ok(TimePlan {
                left: TimeSide {
                    data_type: left.clone(),
                    multiplier: 1,
                },
                right: TimeSide {
                    data_type: right.clone(),
                    multiplier: 1,
                },
                unit_nanos: 1,
                integer: true,
            }),
            (TimeKind::Temporal { unit_nanos: lu }, TimeKind::Temporal { unit_nanos: ru }) => {
                let common = lu.min(ru);
                Ok(TimePlan {
                    left: TimeSide {
                        data_type: left.clone(),
                        multiplier: lu / common,
                    },
                    right: TimeSide {
                        data_type: right.clone(),
                        multiplier: ru / common,
                    },
                    unit_nanos: common,
                    integer: false,
                })
            }
            _ => Err(incompatible().into()),
        }
    }

    /// The largest allowed `later - earlier`, in the common unit, for a look-back bound.
    pub fn max_difference(&self, lookback: &LookBack) -> Result<i64> {
        let wrong = |why: &str| -> datafusion::error::DataFusionError {
            FStoreError::invalid(format!(
                "ASOF JOIN look-back bound {} {why}",
                lookback.bound
            ))
            .into()
        };
        let day_dates = !self.integer && self.unit_nanos == NANOS_PER_DAY;
        // The bound in nanoseconds (or in plain units for integer times).
        let bound: i128 = match &lookback.bound {
            b if b.is_null() => return Err(wrong("is NULL")),
            ScalarValue::IntervalMonthDayNano(Some(v)) if !self.integer => {
                if v.months != 0 {
                    return Err(wrong(
                        "counts months or years, whose length varies: use days",
                    ));
                }
                v.days as i128 * NANOS_PER_DAY as i128 + v.nanoseconds as i128
            }
            ScalarValue::IntervalDayTime(Some(v)) if !self.integer => {
                v.days as i128 * NANOS_PER_DAY as i128 + v.milliseconds as i128 * 1_000_000
            }
            ScalarValue::IntervalYearMonth(Some(_)) if !self.integer => {
                return Err(wrong(
                    "counts months or years, whose length varies: use days",
                ));
            }
            ScalarValue::DurationSecond(Some(v)) if !self.integer => *v as i128 * 1_000_000_000,
            ScalarValue::DurationMillisecond(Some(v)) if !self.integer => *v as i128 * 1_000_000,
            ScalarValue::DurationMicrosecond(Some(v)) if !self.integer => *v as i128 * 1_000,
            ScalarValue::DurationNanosecond(Some(v)) if !self.integer => *v as i128,
            b if b.data_type().is_integer() && (self.integer || day_dates) => {
                let v = match b.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(Some(v)) => v as i128,
                    _ => return Err(wrong("is not an integer")),
                };
                if day_dates {
                    v * NANOS_PER_DAY as i128
                } else {
                    v
                }
            }
            _ if self.integer => {
                return Err(wrong("must be an integer for integer times"));
            }
            _ => {
                return Err(wrong(
                    "must be an interval such as INTERVAL '7 days' (or, for dates, a number of days)",
                ));
            }
        };
        let unit = self.unit_nanos as i128;
        let max = if lookback.inclusive {
            bound.div_euclid(unit)
        } else {
            // diff * unit < bound  ⇔  diff <= ceil(bound / unit) - 1
            -((-bound).div_euclid(unit)) - 1
        };
        Ok(max.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

/// The CREATED column as `i64`, comparable within the column (NULL stays NULL).
pub fn created_values(array: &ArrayRef) -> Result<Int64Array> {
    let t = array.data_type();
    check_created_type(t)?;
    let plan = TimePlan::new(t, t)?;
    plan.left.normalize(array)
}

/// Checks the type of a CREATED column at planning time.
pub fn check_created_type(t: &DataType) -> Result<()> {
    if kind_of(t).is_none() {
        return Err(FStoreError::invalid(format!(
            "ASOF JOIN CREATED column must be a timestamp, date or integer, not {t}"
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, TimestampMillisecondArray, TimestampSecondArray};
    use datafusion::arrow::datatypes::IntervalMonthDayNano;
    use std::sync::Arc;

    #[test]
    fn timestamps_of_different_units_and_zones_meet_in_the_finer_unit() {
        let l = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
        let r = DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into()));
        let p = TimePlan::new(&l, &r).unwrap();
        let ls: ArrayRef =
            Arc::new(TimestampSecondArray::from(vec![Some(10), None]).with_timezone("UTC"));
        let rs: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![10_000]).with_timezone("+02:00"));
        let ln = p.left.normalize(&ls).unwrap();
        assert_eq!(ln.value(0), 10_000);
        assert!(ln.is_null(1));
        assert_eq!(p.right.normalize(&rs).unwrap().value(0), 10_000);
    }

    #[test]
    fn dates_are_midnight() {
        let p = TimePlan::new(
            &DataType::Date32,
            &DataType::Timestamp(TimeUnit::Second, None),
        )
        .unwrap();
        let d: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        assert_eq!(p.left.normalize(&d).unwrap().value(0), 86_400);
    }

    #[test]
    fn integers_do_not_mix_with_timestamps() {
        let e = TimePlan::new(
            &DataType::Int64,
            &DataType::Timestamp(TimeUnit::Second, None),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot compare"), "{e}");
    }

    #[test]
    fn look_back_bounds_become_the_largest_difference() {
        let p = TimePlan::new(
            &DataType::Timestamp(TimeUnit::Second, None),
            &DataType::Timestamp(TimeUnit::Second, None),
        )
        .unwrap();
        let day = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 1, 0)));
        let lb = |inclusive| LookBack {
            bound: day.clone(),
            inclusive,
        };
        assert_eq!(p.max_difference(&lb(true)).unwrap(), 86_400);
        assert_eq!(p.max_difference(&lb(false)).unwrap(), 86_399);
        let half =
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 0, 1_500_000_000)));
        let lb = |inclusive| LookBack {
            bound: half.clone(),
            inclusive,
        };
        assert_eq!(p.max_difference(&lb(true)).unwrap(), 1);
        assert_eq!(p.max_difference(&lb(false)).unwrap(), 1);
        let month = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 0, 0)));
        assert!(
            p.max_difference(&LookBack {
                bound: month,
                inclusive: true
            })
            .is_err()
        );
    }

    #[test]
    fn integer_bounds_for_integer_times() {
        let p = TimePlan::new(&DataType::Int32, &DataType::Int64).unwrap();
        let lb = LookBack {
            bound: ScalarValue::Int64(Some(5)),
            inclusive: false,
        };
        assert_eq!(p.max_difference(&lb).unwrap(), 4);
    }
}
