//! RFC 3339 §5.6 timestamps, just enough for policy documents and receipts: a `full-date`
//! (taken as midnight UTC) or a `date-time` with `Z` or a numeric offset, read into and written
//! from unix seconds. Seconds fractions are accepted and dropped; a leap second (`:60`, §5.7)
//! counts as the first second of the next minute, as POSIX time does.

/// Why a timestamp was refused; the text completes "the date ...".
pub type TimestampError = &'static str;

/// Reads an RFC 3339 `full-date` or `date-time` into unix seconds (UTC).
pub fn parse(text: &str) -> Result<i64, TimestampError> {
    let b = text.as_bytes();
    if b.len() < 10 {
        return Err("is too short for YYYY-MM-DD");
    }
    let year = digits(b, 0, 4).ok_or("must start with a four-digit year")?;
    if b[4] != b'-' || b[7] != b'-' {
        return Err("must be written YYYY-MM-DD");
    }
    let month = digits(b, 5, 2).ok_or("has a month that is not two digits")?;
    let day = digits(b, 8, 2).ok_or("has a day that is not two digits")?;
    if !(1..=12).contains(&month) {
        return Err("has a month outside 01-12");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("has a day that does not exist in its month");
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Ok(days * 86_400);
    }

    // RFC 3339 §5.6 NOTE: "T" may be lowercase, or a space for readability.
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err("must separate date and time with T");
    }
    if b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return Err("must give the time as HH:MM:SS");
    }
    let hour = digits(b, 11, 2).ok_or("has an hour that is not two digits")?;
    let minute = digits(b, 14, 2).ok_or("has minutes that are not two digits")?;
    let second = digits(b, 17, 2).ok_or("has seconds that are not two digits")?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err("has a time of day out of range");
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err("has a decimal point without digits after the seconds");
        }
    }
    let offset_seconds = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2).ok_or("has an offset hour that is not two digits")?;
            let om = digits(b, i + 4, 2).ok_or("has offset minutes that are not two digits")?;
            if oh > 23 || om > 59 {
                return Err("has an offset out of range");
            }
            let magnitude = oh * 3600 + om * 60;
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        None => return Err("has no UTC offset: add Z for UTC"),
        Some(_) => return Err("must end with Z or an offset like +02:00"),
    };
    // The local time minus its offset is UTC.
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds)
}

/// Writes unix seconds as an RFC 3339 `date-time` in UTC, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Proleptic Gregorian calendar, counted in 400-year eras of 146 097 days with the year starting
// in March so that the leap day falls at its end.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
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
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse("1970-01-01"), Ok(0));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        // `date -u -d 2025-03-01T12:34:56Z +%s`
        assert_eq!(parse("2025-03-01T12:34:56Z"), Ok(1_740_832_496));
        assert_eq!(parse("2000-02-29"), Ok(951_782_400));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Ok(-1));
        assert_eq!(parse("2024-12-31"), Ok(1_735_603_200));
    }

    #[test]
    fn offsets_fractions_and_separators() {
        let utc = parse("2025-03-01T12:34:56Z").unwrap();
        assert_eq!(parse("2025-03-01T14:34:56+02:00"), Ok(utc));
        assert_eq!(parse("2025-03-01T07:04:56-05:30"), Ok(utc));
        assert_eq!(parse("2025-03-01 12:34:56.999z"), Ok(utc));
        assert_eq!(parse("2025-03-01t12:34:56.5+00:00"), Ok(utc));
        assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "2025",
            "2025/03/01",
            "2025-13-01",
            "2025-00-10",
            "2025-02-29",
            "2024-04-31",
            "2025-03-01T12:34:56",
            "2025-03-01T12:34Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T12:34:56.Z",
            "2025-03-01T12:34:56+2:00",
            "2025-03-01T12:34:56+02:00x",
            "2025-03-01X12:34:56Z",
            "2025-03-01T12:34:56ZZ",
            "2025-3-01",
            "+025-03-01",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_second_round_trips(t in -62_135_596_800i64..253_402_300_800) {
            proptest::prop_assert_eq!(parse(&format(t)), Ok(t));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[0-9TZtz:+. -]{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn extreme_seconds_format_without_panic(t in proptest::num::i64::ANY) {
            let _ = format(t);
        }
    }

    #[test]
    fn format_round_trips() {
        for t in [
            0,
            -1,
            951_782_400,
            1_740_832_496,
            253_402_300_799,
            -62_135_596_800,
        ] {
            assert_eq!(parse(&format(t)), Ok(t), "{}", format(t));
        }
        assert_eq!(format(1_740_832_496), "2025-03-01T12:34:56Z");
        assert_eq!(format(-62_135_596_800), "0001-01-01T00:00:00Z");
        // Every day for a few centuries, across 1900 (not leap) and 2000 (leap).
        let mut t = parse("1899-01-01").unwrap();
        while t < parse("2101-01-01").unwrap() {
            assert_eq!(parse(&format(t)[..10]), Ok(t));
            t += 86_400;
        }
    }
}
