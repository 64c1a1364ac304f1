//! Times as the commands print and read them: RFC 3339 in UTC (`2025-05-01T12:00:00Z`), or
//! plain Unix seconds. The calendar arithmetic is `causerie_policy::rfc3339`'s, shared with
//! policy documents and receipts.

use std::time::{SystemTime, UNIX_EPOCH};

use causerie_policy::rfc3339;

/// Seconds since the Unix epoch; 0 if the clock is set before it.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DDThh:mm:ssZ` (RFC 3339 §5.6, UTC) for Unix seconds.
pub(crate) fn format_utc(secs: i64) -> String {
    rfc3339::format(secs)
}

/// Unix seconds from what an administrator types: an integer (Unix seconds), an RFC 3339
/// date-time (`2025-05-01T12:00:00Z`, `2025-05-01 14:00:00.5+02:00`; fractions of a second are
/// dropped, a leap second counts as the first second of the next minute) or a full date
/// (`2025-05-01`, midnight UTC).
pub(crate) fn parse_time(input: &str) -> Result<i64, String> {
    let s = input.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('-') {
        return s
            .parse::<i64>()
            .map_err(|_| format!("'{input}' is not a time: Unix seconds out of range"));
    }
    rfc3339::parse(s).map_err(|why| {
        format!(
            "'{input}' is not a time: the date {why} (expected Unix seconds, an RFC 3339 \
             date-time such as 2025-05-01T12:00:00Z, or a date such as 2025-05-01)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_746_100_800), "2025-05-01T12:00:00Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for secs in [0, 1, 951_782_400, 1_746_100_800, 4_102_444_799, -86_401] {
            assert_eq!(parse_time(&format_utc(secs)), Ok(secs), "{secs}");
        }
    }

    #[test]
    fn parses_offsets_fractions_dates_and_unix_seconds() {
        assert_eq!(parse_time("1746100800"), Ok(1_746_100_800));
        assert_eq!(parse_time("2025-05-01"), Ok(1_746_057_600));
        assert_eq!(parse_time("2025-05-01T14:00:00+02:00"), Ok(1_746_100_800));
        assert_eq!(
            parse_time("2025-05-01 09:30:00.25-02:30"),
            Ok(1_746_100_800)
        );
        assert_eq!(parse_time("2025-05-01t12:00:00z"), Ok(1_746_100_800));
        assert_eq!(
            parse_time("2016-12-31T23:59:60Z"),
            parse_time("2017-01-01T00:00:00Z")
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-02-29",
            "2025-05-01T24:00:00Z",
            "2025-05-01T12:00:00",
            "2025-05-01T12:00Z",
            "2025-05-01T12:00:00.Z",
            "2025-05-01T12:00:00+2:00",
            "2025-05-01T12:00:00+02:60",
            "2025-5-1",
            "99999999999999999999",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} accepted");
        }
    }
}
