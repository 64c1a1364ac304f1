//! The operations, one file per area. Each has typed arguments (a JSON object, unknown fields
//! refused) and a typed result, both public so that clients decode what they receive.

pub mod announce;
pub mod audit;
pub mod groups;
pub mod locks;
pub mod sessions;
pub mod stats;
pub mod users;

use crate::{AdminError, Registry};

/// Adds every operation of this crate.
pub fn register_all(reg: &mut Registry) {
    users::register(reg);
    locks::register(reg);
    sessions::register(reg);
    announce::register(reg);
    audit::register(reg);
    stats::register(reg);
    groups::register(reg);
}

/// Refuses text that cannot travel in XML (XML 1.0 §2.2 `Char`: controls other than tab,
/// line feed and carriage return; U+FFFE and U+FFFF) or that is longer than `max` bytes.
pub(crate) fn check_text(what: &str, text: &str, max: usize) -> Result<(), AdminError> {
    if text.len() > max {
        return Err(AdminError::bad_input(format!(
            "the {what} is longer than {max} bytes"
        )));
    }
    if let Some(c) = text.chars().find(|&c| {
        matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
    }) {
        return Err(AdminError::bad_input(format!(
            "the {what} contains U+{:04X}, which XML cannot carry",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Unix seconds as an RFC 3339 date-time in UTC (`2025-05-01T12:00:00Z`).
pub fn time(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Days since 1970-01-01 to a proleptic Gregorian date, counting in 400-year eras of
    // 146 097 days that start on 1 March, so that the leap day ends a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(time(1_746_100_800), "2025-05-01T12:00:00Z");
        assert_eq!(time(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(time(-1), "1969-12-31T23:59:59Z");
        // Day by day across four centuries, against a count of month lengths.
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
        for day in 0..146_097i64 {
            assert_eq!(time(day * 86_400)[..10], format!("{y:04}-{m:02}-{d:02}"));
            let len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
    }

    #[test]
    fn text_is_checked_for_xml_and_length() {
        assert!(check_text("reason", "maintenance\tat 22:00\n", 100).is_ok());
        let e = check_text("reason", "bell\u{7}", 100).expect_err("control");
        assert!(e.message.contains("U+0007"), "{}", e.message);
        assert!(check_text("reason", "\u{fffe}", 100).is_err());
        assert!(check_text("reason", "abc", 2).is_err());
    }
}
