//! Times as the commands print and read them: RFC 3339 in UTC (`2025-05-01T12:00:00Z`), or
//! plain Unix seconds. Integer arithmetic on the proleptic Gregorian calendar, no date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the clock is set before it.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Days from 1970-01-01 to `(year, month, day)`. Counting years from March puts the leap day
/// at the end of a year, and the 400-year cycle (146 097 days) repeats exactly.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` (RFC 3339 §5.6, UTC) for Unix seconds.
pub(crate) fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    )
}

/// Unix seconds from what an administrator types: an integer (Unix seconds), an RFC 3339
/// date-time (`2025-05-01T12:00:00Z`, `2025-05-01 14:00:00.5+02:00`; fractions of a second are
/// dropped, a leap second counts as the second before it) or a full date (`2025-05-01`,
/// midnight UTC).
pub(crate) fn parse_time(input: &str) -> Result<i64, String> {
    let s = input.trim();
    let bad = || {
        format!(
            "'{input}' is not a time: expected Unix seconds, an RFC 3339 date-time such as \
             2025-05-01T12:00:00Z, or a date such as 2025-05-01"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('-') {
        return s.parse::<i64>().map_err(|_| bad());
    }
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    // RFC 3339 §5.6 full-date.
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (year, month, day) = match (digits(0..4), digits(5..7), digits(8..10)) {
        (Some(y), Some(m), Some(d)) => (i64::from(y), m, d),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("'{input}': no such date"));
    }
    let date = days_from_civil(year, month, day) * 86_400;
    if b.len() == 10 {
        return Ok(date);
    }
    // "T" (either case) or, as §5.6 allows, a space; then partial-time and time-offset.
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 20 || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (hour, minute, second) = match (digits(11..13), digits(14..16), digits(17..19)) {
        (Some(h), Some(m), Some(s)) => (h, m, s),
        _ => return Err(bad()),
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("'{input}': no such time of day"));
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        rest = &frac[n..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            let two = |hi: u8, lo: u8| i64::from(hi - b'0') * 10 + i64::from(lo - b'0');
            let (hh, mm) = (two(*h1, *h2), two(*m1, *m2));
            if hh > 23 || mm > 59 {
                return Err(bad());
            }
            let secs = hh * 3600 + mm * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return Err(bad()),
    };
    let of_day = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(59));
    Ok(date + of_day - offset)
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
        for days in -800_000..800_000i64 {
            if days % 997 == 0 {
                let (y, m, d) = civil_from_days(days);
                assert_eq!(days_from_civil(y, m, d), days);
            }
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
            parse_time("2016-12-31T23:59:59Z")
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
