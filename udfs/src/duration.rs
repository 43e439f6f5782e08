//! Durations as people write them — `'30 days'`, `'30d'`, `'1h'`, `'15s'`, `'1 hour 30 minutes'`,
//! `'2 weeks'` — and SQL INTERVALs, as exact, positive nanosecond counts.
//!
//! One parser for every place FStore reads a length of time: `time_bucket` widths, `WINDOW
//! '30 days'` in feature groups, TTLs, schedules. It must never guess: a month or a year has no
//! fixed length, so month-based durations are an error rather than "30 days"; a day is always
//! exactly 24 hours (no daylight-saving adjustment).
//!
//! Grammar (case-insensitive, whitespace between terms optional):
//!
//! ```text
//! duration := term+                       -- terms add up: '1h 30m', '1 day 12 hours'
//! term     := number [' '] unit
//! number   := digits ['.' digits]         -- '1.5h' = 90 minutes; must be a whole nanosecond
//! unit     := ns | nanosecond[s] | nsec[s]
//!           | us | µs | microsecond[s] | usec[s]
//!           | ms | millisecond[s] | msec[s]
//!           | s | sec[s] | second[s]
//!           | m | min[s] | minute[s]
//!           | h | hr[s] | hour[s]
//!           | d | day[s]
//!           | w | wk[s] | week[s]
//! ```

use datafusion::arrow::datatypes::{IntervalDayTime, IntervalMonthDayNano};
use datafusion::common::ScalarValue;
use datafusion::common::{exec_datafusion_err, exec_err};
use datafusion::error::Result;

pub const NANOS_PER_MICRO: i64 = 1_000;
pub const NANOS_PER_MILLI: i64 = 1_000_000;
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
pub const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;
pub const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;
pub const NANOS_PER_WEEK: i64 = 7 * NANOS_PER_DAY;

/// Parses a duration string into a positive number of nanoseconds.
///
/// ```
/// use fstore_udfs::duration::{parse_duration, NANOS_PER_DAY, NANOS_PER_MINUTE};
/// assert_eq!(parse_duration("30 days").unwrap(), 30 * NANOS_PER_DAY);
/// assert_eq!(parse_duration("1h 30m").unwrap(), 90 * NANOS_PER_MINUTE);
/// assert!(parse_duration("1 month").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<i64> {
    let fail = |why: &str| exec_err!("invalid duration '{text}': {why}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return fail("expected a number and a unit, such as '30 days' or '1h'");
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits_end];
        if number.is_empty() {
            return if rest.starts_with('-') {
                fail("a duration must be positive")
            } else {
                fail("expected a number and a unit, such as '30 days' or '1h'")
            };
        }
        if number.matches('.').count() > 1 || number == "." {
            return fail(&format!("'{number}' is not a number"));
        }
        rest = rest[digits_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = rest[unit_end..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if unit.is_empty() {
            return fail(&format!("'{number}' has no unit (use s, m, h, d, w, ...)"));
        }
        let unit_nanos = match unit_nanos(unit) {
            Ok(Some(nanos)) => nanos,
            Ok(None) => {
                return fail(&format!(
                    "unknown unit '{unit}' (use ns, us, ms, s, m, h, d or w, or their long names)"
                ));
            }
            Err(reason) => return fail(reason),
        };
        let nanos = scale(number, unit_nanos).ok_or_else(|| {
            exec_datafusion_err!(
                "invalid duration '{text}': '{number} {unit}' is not a whole number of nanoseconds"
            )
        })?;
        total += nanos;
        if total > i64::MAX as i128 {
            return fail("too long (more than 292 years)");
        }
    }
    if total == 0 {
        return fail("a duration must be positive");
    }
    Ok(total as i64)
}

/// Nanoseconds in one `unit`; `Ok(None)` for an unknown unit, the reason for month-based units.
fn unit_nanos(unit: &str) -> std::result::Result<Option<i64>, &'static str> {
    let unit = unit.to_lowercase();
    let nanos = match unit.as_str() {
        "ns" | "nanosecond" | "nanoseconds" | "nsec" | "nsecs" => 1,
        "us" | "µs" | "microsecond" | "microseconds" | "usec" | "usecs" => NANOS_PER_MICRO,
        "ms" | "millisecond" | "milliseconds" | "msec" | "msecs" => NANOS_PER_MILLI,
        "s" | "sec" | "secs" | "second" | "seconds" => NANOS_PER_SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => NANOS_PER_MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => NANOS_PER_HOUR,
        "d" | "day" | "days" => NANOS_PER_DAY,
        "w" | "wk" | "wks" | "week" | "weeks" => NANOS_PER_WEEK,
        "mon" | "mons" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years" => {
            return Err(
                "months and years have no fixed length; use days or weeks (e.g. '30 days')",
            );
        }
        _ => return Ok(None),
    };
    Ok(Some(nanos))
}

/// `number` (digits with an optional fraction) times `unit_nanos`, if it is a whole number of
/// nanoseconds that fits.
fn scale(number: &str, unit_nanos: i64) -> Option<i128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos as i128)?;
    if !fraction.is_empty() {
        if fraction.len() > 18 {
            return None;
        }
        let digits: i128 = fraction.parse().ok()?;
        let denominator = 10i128.pow(fraction.len() as u32);
        let numerator = digits * unit_nanos as i128;
        if numerator % denominator != 0 {
            return None;
        }
        nanos = nanos.checked_add(numerator / denominator)?;
    }
    Some(nanos)
}

/// The length of an INTERVAL in nanoseconds. Month-based intervals have no fixed length and
/// are an error; a day counts as exactly 24 hours.
pub fn interval_duration(interval: IntervalMonthDayNano) -> Result<i64> {
    if interval.months != 0 {
        return exec_err!(
            "an interval with months or years has no fixed length; use days or weeks (e.g. INTERVAL '30 days')"
        );
    }
    let total = interval.days as i128 * NANOS_PER_DAY as i128 + interval.nanoseconds as i128;
    if total <= 0 {
        return exec_err!("a duration must be positive");
    }
    i64::try_from(total)
        .map_err(|_| exec_datafusion_err!("interval too long (more than 292 years)"))
}

/// The duration held by a SQL value: a string in the grammar above or an INTERVAL.
/// `Ok(None)` for NULL; an error for other types.
pub fn duration_from_scalar(value: &ScalarValue) -> Result<Option<i64>> {
    match value {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
            s.as_deref().map(parse_duration).transpose()
        }
        ScalarValue::IntervalMonthDayNano(v) => v.map(interval_duration).transpose(),
        ScalarValue::IntervalDayTime(v) => v
            .map(|IntervalDayTime { days, milliseconds }| {
                interval_duration(IntervalMonthDayNano::new(
                    0,
                    days,
                    milliseconds as i64 * NANOS_PER_MILLI,
                ))
            })
            .transpose(),
        ScalarValue::IntervalYearMonth(v) => v
            .map(|months| interval_duration(IntervalMonthDayNano::new(months, 0, 0)))
            .transpose(),
        ScalarValue::Null => Ok(None),
        other => exec_err!(
            "a duration must be a string such as '30 days' or an INTERVAL, got {}",
            other.data_type()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> i64 {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse_duration(s).unwrap_err().strip_backtrace()
    }

    #[test]
    fn short_and_long_unit_names_mean_the_same() {
        assert_eq!(ok("30 days"), 30 * NANOS_PER_DAY);
        assert_eq!(ok("30d"), 30 * NANOS_PER_DAY);
        assert_eq!(ok("1h"), NANOS_PER_HOUR);
        assert_eq!(ok("1 hour"), NANOS_PER_HOUR);
        assert_eq!(ok("30m"), 30 * NANOS_PER_MINUTE);
        assert_eq!(ok("15s"), 15 * NANOS_PER_SECOND);
        assert_eq!(ok("2 weeks"), 14 * NANOS_PER_DAY);
        assert_eq!(ok("250ms"), 250 * NANOS_PER_MILLI);
        assert_eq!(ok("5us"), 5 * NANOS_PER_MICRO);
        assert_eq!(ok("5µs"), 5 * NANOS_PER_MICRO);
        assert_eq!(ok("7ns"), 7);
        assert_eq!(ok("  1 DAY "), NANOS_PER_DAY);
        assert_eq!(ok("3 Minutes"), 3 * NANOS_PER_MINUTE);
    }

    #[test]
    fn terms_add_up() {
        assert_eq!(ok("1h 30m"), 90 * NANOS_PER_MINUTE);
        assert_eq!(ok("1h30m"), 90 * NANOS_PER_MINUTE);
        assert_eq!(ok("1 day, 12 hours"), 36 * NANOS_PER_HOUR);
    }

    #[test]
    fn fractions_must_be_whole_nanoseconds() {
        assert_eq!(ok("1.5h"), 90 * NANOS_PER_MINUTE);
        assert_eq!(ok("0.5 s"), 500 * NANOS_PER_MILLI);
        assert_eq!(ok(".25d"), 6 * NANOS_PER_HOUR);
        assert!(err("0.5ns").contains("not a whole number of nanoseconds"));
        assert!(err("1.2.3h").contains("'1.2.3' is not a number"));
        assert!(err(".h").contains("'.' is not a number"));
    }

    #[test]
    fn months_and_years_are_refused() {
        assert!(err("1 month").contains("months and years have no fixed length"));
        assert!(err("2y").contains("months and years have no fixed length"));
        let e = interval_duration(IntervalMonthDayNano::new(1, 0, 0)).unwrap_err();
        assert!(e.to_string().contains("no fixed length"));
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        assert_eq!(
            err(""),
            "Execution error: invalid duration '': expected a number and a unit, such as '30 days' or '1h'"
        );
        assert!(err("abc").contains("expected a number and a unit"));
        assert!(err("30").contains("'30' has no unit"));
        assert!(err("30 fortnights").contains("unknown unit 'fortnights'"));
        assert!(err("0s").contains("must be positive"));
        assert!(err("-1h").contains("must be positive"));
        assert!(err("300000 weeks").contains("too long"));
    }

    #[test]
    fn intervals_and_strings_are_both_durations() {
        assert_eq!(
            duration_from_scalar(&ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(0, 1, NANOS_PER_HOUR)
            )))
            .unwrap(),
            Some(25 * NANOS_PER_HOUR)
        );
        assert_eq!(
            duration_from_scalar(&ScalarValue::IntervalDayTime(Some(IntervalDayTime::new(
                2, 500
            ))))
            .unwrap(),
            Some(2 * NANOS_PER_DAY + 500 * NANOS_PER_MILLI)
        );
        assert_eq!(
            duration_from_scalar(&ScalarValue::Utf8(Some("1w".into()))).unwrap(),
            Some(NANOS_PER_WEEK)
        );
        assert_eq!(
            duration_from_scalar(&ScalarValue::Utf8(None)).unwrap(),
            None
        );
        assert!(duration_from_scalar(&ScalarValue::IntervalYearMonth(Some(12))).is_err());
        assert!(duration_from_scalar(&ScalarValue::Int64(Some(3))).is_err());
    }
}
