//! Window lengths written the way people write them: `'30 days'`, `'30d'`, `'1h'`, `'30m'`,
//! `'15s'`, `'2 weeks'`, `'1 day 12 hours'`, `'1.5h'`, `'250ms'`.
//!
//! Units: `w`/`week(s)`, `d`/`day(s)`, `h`/`hr(s)`/`hour(s)`, `m`/`min(s)`/`minute(s)`,
//! `s`/`sec(s)`/`second(s)`, `ms`/`millisecond(s)`, `us`/`µs`/`microsecond(s)`,
//! `ns`/`nanosecond(s)`, case-insensitive. `m` is minutes (months have no fixed length and are
//! not accepted). A bare number is seconds. Parsing is exact: the value is computed in whole
//! nanoseconds, never through floating point.

use std::time::Duration;

use datafusion::common::plan_err;
use datafusion::error::Result;

const NS: [(&[&str], u128); 8] = [
    (
        &["w", "wk", "wks", "week", "weeks"],
        7 * 86_400 * 1_000_000_000,
    ),
    (&["d", "day", "days"], 86_400 * 1_000_000_000),
    (&["h", "hr", "hrs", "hour", "hours"], 3_600 * 1_000_000_000),
    (
        &["m", "min", "mins", "minute", "minutes"],
        60 * 1_000_000_000,
    ),
    (&["s", "sec", "secs", "second", "seconds"], 1_000_000_000),
    (
        &["ms", "msec", "msecs", "millisecond", "milliseconds"],
        1_000_000,
    ),
    (
        &["us", "µs", "usec", "usecs", "microsecond", "microseconds"],
        1_000,
    ),
    (&["ns", "nsec", "nsecs", "nanosecond", "nanoseconds"], 1),
];

fn unit_ns(unit: &str) -> Option<u128> {
    let u = unit.to_lowercase();
    NS.iter()
        .find(|(names, _)| names.contains(&u.as_str()))
        .map(|(_, ns)| *ns)
}

fn invalid<T>(s: &str, why: &str) -> Result<T> {
    plan_err!(
        "invalid duration '{s}': {why}; expected a number and a unit such as '30 days', '30d', '1h', '30m', '15s' or '2 weeks'"
    )
}

/// Parses a window length such as `'30 days'`, `'30d'`, `'1h'`, `'30m'`, `'15s'` or
/// `'2 weeks'`; several terms add up (`'1 day 12 hours'`, `'1h30m'`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let text = s.trim();
    if text.is_empty() {
        return invalid(s, "it is empty");
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        // A number: digits with an optional fraction.
        let num_len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() {
            return invalid(s, &format!("expected a number at '{rest}'"));
        }
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| !c.is_alphabetic())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let ns = if unit.is_empty() {
            if !rest.is_empty() {
                return invalid(s, &format!("expected a unit after '{number}'"));
            }
            1_000_000_000
        } else {
            match unit_ns(unit) {
                Some(ns) => ns,
                None => return invalid(s, &format!("unknown unit '{unit}'")),
            }
        };
        total = match scaled(number, ns).and_then(|v| total.checked_add(v)) {
            Some(t) => t,
            None => return invalid(s, &format!("'{number}' is not a valid amount")),
        };
        // Allow "1 day, 12 hours" and "1 day and 12 hours".
        rest = rest.trim_start_matches(',').trim_start();
        if let Some(r) = rest.strip_prefix("and ") {
            rest = r.trim_start();
        }
    }
    let secs = total / 1_000_000_000;
    if secs > u64::MAX as u128 {
        return invalid(s, "it is too long");
    }
    Ok(Duration::new(secs as u64, (total % 1_000_000_000) as u32))
}

/// `number × unit_ns`, exactly, for `number` = digits with an optional fraction; `None` when
/// the number is malformed, overflows, or has more precision than a nanosecond.
fn scaled(number: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut v = int_v.checked_mul(unit_ns)?;
    if !frac.is_empty() {
        let digits = frac.len() as u32;
        if digits > 30 {
            return None;
        }
        let f: u128 = frac.parse().ok()?;
        let scale = 10u128.pow(digits);
        let part = f.checked_mul(unit_ns)?;
        if part % scale != 0 {
            return None;
        }
        v = v.checked_add(part / scale)?;
    }
    Some(v)
}

/// The shortest exact spelling of a duration in one unit, days at most: `30d`, `14d`, `90m`,
/// `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    for (names, unit) in NS.into_iter().skip(1) {
        if ns.is_multiple_of(unit) {
            return format!("{}{}", ns / unit, names[0]);
        }
    }
    format!("{ns}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).unwrap().as_secs()
    }

    #[test]
    fn the_documented_spellings_parse() {
        assert_eq!(secs("30 days"), 30 * 86_400);
        assert_eq!(secs("30d"), 30 * 86_400);
        assert_eq!(secs("1h"), 3_600);
        assert_eq!(secs("30m"), 1_800);
        assert_eq!(secs("15s"), 15);
        assert_eq!(secs("2 weeks"), 14 * 86_400);
        assert_eq!(secs(" 1 Day "), 86_400);
        assert_eq!(secs("1 day 12 hours"), 129_600);
        assert_eq!(secs("1h30m"), 5_400);
        assert_eq!(secs("1 day, 2 hours"), 93_600);
        assert_eq!(secs("45"), 45);
    }

    #[test]
    fn fractions_and_small_units_are_exact() {
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3us").unwrap(), Duration::from_micros(3));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0d").unwrap(), Duration::ZERO);
    }

    #[test]
    fn malformed_durations_are_rejected_with_the_reason() {
        for bad in [
            "",
            "days",
            "30 parsecs",
            "-5d",
            "1.2.3h",
            "1 month",
            "0.1ns",
            "5 d x",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
        let err = parse_duration("30 parsecs").unwrap_err().to_string();
        assert!(err.contains("unknown unit 'parsecs'"), "{err}");
    }

    #[test]
    fn formatting_picks_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86_400)), "14d");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for s in ["30d", "14d", "90m", "1500ms", "7ns"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
