//! Window lengths: parsed by FStore's one duration parser ([`fstore_udfs::duration`], the
//! grammar every length of time in FStore uses: `'30 days'`, `'30d'`, `'1h'`, `'1 day 12
//! hours'`, `'1.5h'`, `'250ms'`), and written back in their shortest exact spelling.
//!
//! A bare number is an error, not seconds: `'30'` is more likely to mean 30 days than 30
//! seconds, so the unit must be written.

use std::time::Duration;

use datafusion::error::Result;

use crate::error::{invalid, user_message};

/// Parses a positive window length such as `'30 days'`, `'30d'`, `'1h'`, `'30m'`, `'15s'` or
/// `'2 weeks'`; several terms add up (`'1 day 12 hours'`, `'1h30m'`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let nanos = fstore_udfs::duration::parse_duration(s).map_err(|e| invalid(user_message(&e)))?;
    Ok(Duration::from_nanos(nanos as u64))
}

/// The shortest exact spelling of a duration in one unit, days at most: `30d`, `14d`, `90m`,
/// `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    use fstore_udfs::duration::{
        NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MICRO, NANOS_PER_MILLI, NANOS_PER_MINUTE,
        NANOS_PER_SECOND,
    };
    let units = [
        ("d", NANOS_PER_DAY),
        ("h", NANOS_PER_HOUR),
        ("m", NANOS_PER_MINUTE),
        ("s", NANOS_PER_SECOND),
        ("ms", NANOS_PER_MILLI),
        ("us", NANOS_PER_MICRO),
    ];
    for (name, unit) in units {
        if ns.is_multiple_of(unit as u128) {
            return format!("{}{name}", ns / unit as u128);
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
    }

    #[test]
    fn fractions_and_small_units_are_exact() {
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3us").unwrap(), Duration::from_micros(3));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
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
            "45",
            "0d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(
                crate::error::ErrorKind::of(&err),
                crate::error::ErrorKind::InvalidArgument
            );
            let err = err.to_string();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
        let err = parse_duration("30 parsecs").unwrap_err().to_string();
        assert!(err.contains("unknown unit 'parsecs'"), "{err}");
        let err = parse_duration("45").unwrap_err().to_string();
        assert!(err.contains("'45' has no unit"), "{err}");
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
