//! Dates and times as XEP-0082 writes them (`CCYY-MM-DDThh:mm:ssZ`, the RFC 3339 profile that
//! XEP-0202 `<utc/>` and XEP-0203 `stamp` use), computed from the system clock without a date
//! library: the conversion from days since 1970-01-01 to a proleptic Gregorian date is a few lines
//! of integer arithmetic.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the clock is set before it.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The proleptic Gregorian date `(year, month, day)` of a day counted from 1970-01-01.
///
/// Days are first shifted so that the count starts on 0000-03-01: putting February last in the
/// year makes the leap day the last day of a year, so months have fixed offsets. The 400-year
/// cycle (146 097 days) repeats exactly, which handles the century rules.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March … 11 = February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// `CCYY-MM-DDThh:mm:ssZ` for seconds since the Unix epoch (XEP-0082 §3.3 DateTime, in UTC).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_across_leap_rules() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000 is a leap year (divisible by 400), 2100 is not (divisible by 100).
        assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_from_days(951_868_800 / 86_400), (2000, 3, 1));
        assert_eq!(civil_from_days(1_709_164_800 / 86_400), (2024, 2, 29));
        assert_eq!(civil_from_days(4_107_542_399 / 86_400), (2100, 2, 28));
        assert_eq!(civil_from_days(4_107_542_399 / 86_400 + 1), (2100, 3, 1));
        assert_eq!(civil_from_days(68_256_000 / 86_400), (1972, 3, 1));
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Over a whole 400-year cycle and then some, each day is the successor of the one before.
        let (mut y, mut m, mut d) = civil_from_days(-1);
        for days in 0..(146_097 + 1000) {
            let next = civil_from_days(days);
            let month_len = match m {
                4 | 6 | 9 | 11 => 30,
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                _ => 31,
            };
            let expected = if d < month_len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, expected, "day {days}");
            (y, m, d) = next;
        }
    }

    #[test]
    fn formats_as_xep_0082_datetime() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }
}
