//! Built-in detectors of sensitive data, which check what they find: a number is reported as a
//! payment card only if its Luhn digit is right, as an IBAN only if its length is the one
//! registered for its country and its ISO 7064 MOD 97-10 check holds.
//!
//! Each detector scans the original message once (linear time) and returns byte ranges of it,
//! in order and not overlapping. The structures they look for are ASCII, so the ranges fall on
//! character boundaries.
//!
//! - [`payment_cards`]: ISO/IEC 7812 card numbers, 13 to 19 digits, written in one block or in
//!   groups of at least three digits separated by single spaces or hyphens (`4111 1111 1111
//!   1111`, `3782 822463 10005`, `4222 222 222 222`). Groups of one or two digits are how phone
//!   numbers, dates and ISBNs are written, not cards, and are not read as cards. A number that
//!   is part of a longer one (more digits, a decimal point or comma, ASCII letters or `_` glued
//!   to it) is not a card; nor is one that starts with 0 or repeats one digit.
//! - [`ibans`]: ISO 13616 account numbers, compact (`GB82WEST12345698765432`) or in the print
//!   form with single spaces after every fourth character (`GB82 WEST 1234 5698 7654 32`), in
//!   either case.
//! - [`emails`]: RFC 5322 `addr-spec` in its dot-atom form, as people write addresses: a local
//!   part of at most 64 bytes, a domain of at least two labels with a TLD of two or more letters.
//!   Letters beyond ASCII are accepted (RFC 6531, internationalized domains). Chat addresses
//!   (JIDs) have the same shape and are found too.
//! - [`links`]: `http`, `https` and `ftp` URLs, `www.` host names, and `xmpp:` URIs (RFC 5122),
//!   without the punctuation that ends the sentence around them.

use std::ops::Range;

/// The shortest and longest card numbers (ISO/IEC 7812-1).
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;
/// The fewest ASCII digits a text holds when it holds a card number.
pub const MIN_CARD_DIGITS: usize = *CARD_DIGITS.start();

/// A regular expression that matches in every text where [`payment_cards`] finds a card (and
/// in many others): [`MIN_CARD_DIGITS`] digits in a row, with at most one space or hyphen
/// between two of them. For a screen that looks for many things in one pass
/// ([`screen`](super::screen)).
pub const CARD_SHAPE: &str = "[0-9](?:[ -]?[0-9]){12}";

/// Like [`CARD_SHAPE`], for [`ibans`]: two letters and two digits, then at least eleven more
/// letters or digits, each maybe after one space: [`MIN_IBAN_CHARS`] characters in all.
pub const IBAN_SHAPE: &str = "[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11}";

/// Like [`CARD_SHAPE`], for [`emails`]: the at sign.
pub const EMAIL_SHAPE: &str = "@";

/// Like [`CARD_SHAPE`], for [`links`]: how each kind of link starts, in any case.
pub const LINK_SHAPE: &str = r"(?i-u:https?://|ftp://|xmpp:|www\.)";

/// What quick looks at a text's bytes tell of what the detectors could find in it: each
/// `may_hold_*` is a necessary condition of its detector finding anything, so a text for which
/// it is false is not scanned. The looks are vectorized byte searches and counts, except the
/// IBAN one, done only when asked.
#[derive(Debug, Clone)]
pub struct Clues<'a> {
    text: &'a [u8],
    /// Counted when first asked for: the address and link looks do not need it.
    digits: std::cell::OnceCell<usize>,
}

impl<'a> Clues<'a> {
    pub fn of(text: &'a str) -> Clues<'a> {
        Clues {
            text: text.as_bytes(),
            digits: std::cell::OnceCell::new(),
        }
    }

    /// The ASCII digits of the text, counted per block of at most 255 bytes in a byte-wide
    /// sum, which the compiler turns into vector compares and adds: no branch per byte.
    fn digits(&self) -> usize {
        *self.digits.get_or_init(|| {
            self.text
                .chunks(255)
                .map(|block| {
                    let n: u8 = block.iter().map(|&b| u8::from(is_digit(b))).sum();
                    usize::from(n)
                })
                .sum()
        })
    }

    pub fn may_hold_card(&self) -> bool {
        self.digits() >= MIN_CARD_DIGITS
    }

    /// Long enough, and somewhere two ASCII letters followed by two digits: how every IBAN
    /// starts.
    pub fn may_hold_iban(&self) -> bool {
        let t = self.text;
        if t.len() < MIN_IBAN_CHARS || self.digits() < 2 {
            return false;
        }
        // The four bytes of every window side by side, combined without branches in blocks of
        // fixed size that the compiler turns into vector operations; the answer is read once
        // per block.
        const BLOCK: usize = 32;
        let shape = |w: u8, x: u8, y: u8, z: u8| {
            u8::from(is_letter(w) & is_letter(x) & is_digit(y) & is_digit(z))
        };
        let n = t.len() - 3;
        if n < BLOCK {
            return (0..n).any(|i| shape(t[i], t[i + 1], t[i + 2], t[i + 3]) != 0);
        }
        // Blocks from the start, and one more ending at the end (overlapping the one before
        // it): looking at a window twice does not change the answer.
        let block = |at: usize| {
            let (a, b, c, d) = (
                &t[at..at + BLOCK],
                &t[at + 1..at + 1 + BLOCK],
                &t[at + 2..at + 2 + BLOCK],
                &t[at + 3..at + 3 + BLOCK],
            );
            let mut found = 0u8;
            for i in 0..BLOCK {
                found |= shape(a[i], b[i], c[i], d[i]);
            }
            found != 0
        };
        (0..n - BLOCK).step_by(BLOCK).any(block) || block(n - BLOCK)
    }

    pub fn may_hold_email(&self) -> bool {
        memchr::memchr(b'@', self.text).is_some()
    }

    /// A colon (a scheme) or `www.`.
    pub fn may_hold_link(&self) -> bool {
        memchr::memchr(b':', self.text).is_some()
            || memchr::memchr_iter(b'.', self.text)
                .any(|i| i >= 3 && self.text[i - 3..i].eq_ignore_ascii_case(b"www"))
    }
}

/// An ASCII digit, without a branch.
#[inline(always)]
pub(super) fn is_digit(b: u8) -> bool {
    b.wrapping_sub(b'0') < 10
}

/// An ASCII letter of either case, without a branch.
#[inline(always)]
pub(super) fn is_letter(b: u8) -> bool {
    (b | 0x20).wrapping_sub(b'a') < 26
}

/// Card numbers: see the module documentation.
pub fn payment_cards(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // The longest run of digit groups joined by single separators from here.
        let start = i;
        let mut digits = [0u8; 19];
        let mut count = 0;
        let mut groups = 0;
        let mut short_group = false;
        let mut j = i;
        loop {
            let group = j;
            while j < b.len() && b[j].is_ascii_digit() {
                if let Some(slot) = digits.get_mut(count) {
                    *slot = b[j] - b'0';
                }
                count += 1;
                j += 1;
            }
            groups += 1;
            short_group |= j - group < 3;
            if j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        i = j;
        if !CARD_DIGITS.contains(&count) || (groups > 1 && short_group) {
            continue;
        }
        let glued = |at: usize, beyond: Option<usize>| {
            matches!(b[at], b'_')
                || b[at].is_ascii_alphabetic()
                || (matches!(b[at], b'.' | b',')
                    && beyond.is_some_and(|k| b.get(k).is_some_and(u8::is_ascii_digit)))
        };
        if (start > 0 && glued(start - 1, start.checked_sub(2)))
            || (j < b.len() && glued(j, Some(j + 1)))
        {
            continue;
        }
        let digits = &digits[..count];
        if digits[0] == 0 || digits.iter().all(|&d| d == digits[0]) || !luhn(digits) {
            continue;
        }
        found.push(start..j);
    }
    found
}

/// The Luhn check (ISO/IEC 7812-1 Annex B): doubling every second digit from the right, the
/// digits of the sum add up to a multiple of 10.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 1, d * 2) {
                (false, _) => d,
                (true, twice) if twice > 9 => twice - 9,
                (true, twice) => twice,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The IBAN length of each country in the ISO 13616 registry (SWIFT as registration
/// authority), sorted by country code. Territories that use another country's code (the Åland
/// Islands FI, Jersey and Guernsey GB, the French overseas departments FR…) need no entry.
#[rustfmt::skip]
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20), (b"BE", 16),
    (b"BG", 22), (b"BH", 22), (b"BI", 27), (b"BR", 29), (b"BY", 28), (b"CH", 21), (b"CR", 22),
    (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DJ", 27), (b"DK", 18), (b"DO", 28), (b"EE", 20),
    (b"EG", 29), (b"ES", 24), (b"FI", 18), (b"FK", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22),
    (b"GE", 22), (b"GI", 23), (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HN", 28), (b"HR", 21),
    (b"HU", 28), (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30),
    (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20), (b"LU", 20),
    (b"LV", 21), (b"LY", 25), (b"MC", 27), (b"MD", 24), (b"ME", 22), (b"MK", 19), (b"MN", 20),
    (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NI", 28), (b"NL", 18), (b"NO", 15), (b"OM", 23),
    (b"PK", 24), (b"PL", 28), (b"PS", 29), (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22),
    (b"RU", 33), (b"SA", 24), (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19), (b"SK", 24),
    (b"SM", 27), (b"SO", 23), (b"ST", 25), (b"SV", 28), (b"TL", 23), (b"TN", 24), (b"TR", 26),
    (b"UA", 29), (b"VA", 22), (b"VG", 24), (b"XK", 20), (b"YE", 30),
];

/// The longest IBAN the standard allows.
const MAX_IBAN: usize = 34;
/// The shortest IBAN in the registry (Norway), in characters without spaces.
pub const MIN_IBAN_CHARS: usize = 15;

/// IBANs: see the module documentation.
pub fn ibans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic()
            && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
            && b.get(i + 2).is_some_and(u8::is_ascii_digit)
            && b.get(i + 3).is_some_and(u8::is_ascii_digit)
            && !alphanumeric_before(text, i)
            && let Some(end) = iban_at(b, i)
            && !alphanumeric_at(text, end)
        {
            found.push(i..end);
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Where the IBAN that starts at `i` ends, if one does.
fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    let country = [
        b[i].to_ascii_uppercase(),
        b.get(i + 1)?.to_ascii_uppercase(),
    ];
    let index = IBAN_LENGTHS
        .binary_search_by_key(&&country, |(c, _)| *c)
        .ok()?;
    let len = IBAN_LENGTHS[index].1;
    let check = [*b.get(i + 2)?, *b.get(i + 3)?];
    if !check.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // ISO 13616-1: check digits run from 02 to 98.
    if !(2..=98).contains(&((check[0] - b'0') * 10 + (check[1] - b'0'))) {
        return None;
    }
    let mut chars = [0u8; MAX_IBAN];
    chars[..2].copy_from_slice(&country);
    chars[2..4].copy_from_slice(&check);
    let mut n = 4;
    let mut j = i + 4;
    let grouped = b.get(j) == Some(&b' ');
    while n < len {
        if grouped && n % 4 == 0 {
            if b.get(j) != Some(&b' ') {
                return None;
            }
            j += 1;
        }
        let c = *b.get(j)?;
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        chars[n] = c.to_ascii_uppercase();
        n += 1;
        j += 1;
    }
    mod97(&chars[..len]).then_some(j)
}

/// ISO 7064 MOD 97-10 as ISO 13616 applies it: the country code and check digits moved to the
/// end, letters read as 10 to 35, the number's remainder modulo 97 must be 1.
fn mod97(iban: &[u8]) -> bool {
    let (head, bban) = iban.split_at(4);
    let remainder = bban.iter().chain(head).fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    });
    remainder == 1
}

fn alphanumeric_before(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
}

fn alphanumeric_at(text: &str, at: usize) -> bool {
    text[at..].chars().next().is_some_and(char::is_alphanumeric)
}

/// The longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL: usize = 64;
/// The longest domain and label (RFC 1035 §2.3.4, as RFC 5321 §4.5.3.1.2 counts it).
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

/// E-mail addresses: see the module documentation.
pub fn emails(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    for (at, _) in text.match_indices('@') {
        if at < from {
            continue;
        }
        // RFC 5322 §3.2.3 atext and dots, leftwards; then without the punctuation that opens
        // a quotation or a sentence, since an address that starts with it is rare.
        let left = &text[from..at];
        let start = from
            + left
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_local(c))
                .last()
                .map_or(left.len(), |(i, _)| i);
        if text[..start].ends_with('@') {
            continue;
        }
        let Some(local_start) = text[start..at]
            .find(char::is_alphanumeric)
            .map(|i| start + i)
        else {
            continue;
        };
        let local = &text[local_start..at];
        if local.len() > MAX_LOCAL || local.ends_with('.') || local.contains("..") {
            continue;
        }
        let right = &text[at + 1..];
        let run = right
            .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
            .unwrap_or(right.len());
        if right[run..].starts_with('@') {
            continue;
        }
        let domain = right[..run].trim_end_matches('.');
        if !is_domain(domain, |tld| {
            tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic)
        }) {
            continue;
        }
        let end = at + 1 + domain.len();
        found.push(local_start..end);
        from = end;
    }
    found
}

fn is_local(c: char) -> bool {
    c.is_alphanumeric() || ".!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// At least two labels of letters, digits and inner hyphens, within the DNS limits, the last
/// one accepted by `tld`.
fn is_domain(domain: &str, tld: impl Fn(&str) -> bool) -> bool {
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty()
            || label.len() > MAX_LABEL
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && domain.len() <= MAX_DOMAIN && tld(last)
}

/// Links: see the module documentation. The string is the link as written, with `http://`
/// put before a `www.` host name.
pub fn links(text: &str) -> Vec<(Range<usize>, String)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i].to_ascii_lowercase(), b'h' | b'f' | b'w' | b'x')
            && may_start_link(text, i)
            && let Some((end, www)) = link_at(text, i)
        {
            let url = &text[i..end];
            found.push((
                i..end,
                if www {
                    format!("http://{url}")
                } else {
                    url.to_owned()
                },
            ));
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Whether a link may start at `i`: not in the middle of a word, a host name, an address or
/// another link.
fn may_start_link(text: &str, i: usize) -> bool {
    text[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || "@.-_/+:#%~=&?".contains(c)))
}

/// Where the link that starts at `i` ends, and whether it is a bare `www.` host name.
fn link_at(text: &str, i: usize) -> Option<(usize, bool)> {
    let rest = &text[i..];
    let has_prefix = |p: &str| {
        rest.get(..p.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(p))
    };
    let (body, www) = if let Some(scheme) = ["http://", "https://", "ftp://"]
        .into_iter()
        .find(|p| has_prefix(p))
    {
        // RFC 3986 §3.2.2: a host name, an IPv4 address or a bracketed IP literal.
        let first = rest[scheme.len()..].chars().next()?;
        if !(first.is_alphanumeric() || first == '[') {
            return None;
        }
        (i + scheme.len(), false)
    } else if has_prefix("xmpp:") {
        // RFC 5122 §2.2: `xmpp:node@domain`, or with an authority `xmpp://…`.
        let first = rest[5..].trim_start_matches('/').chars().next()?;
        if !first.is_alphanumeric() {
            return None;
        }
        (i + 5, false)
    } else if has_prefix("www.") {
        let after = &rest[4..];
        let run = after
            .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
            .unwrap_or(after.len());
        let host = after[..run].trim_end_matches('.');
        let tld = |t: &str| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic);
        if !is_domain(host, tld) {
            return None;
        }
        (i + 4, true)
    } else {
        return None;
    };
    // Everything up to white space or a character that cannot be in a link as people paste
    // it (RFC 3986 Appendix C: `<>"` delimit links in text).
    let len = text[body..]
        .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        .unwrap_or(text.len() - body);
    let mut end = body + len;
    // Sentence punctuation after the link is not part of it; a closing bracket is, when the
    // link opened it (`…/wiki/Rust_(language)`).
    let brackets = [('(', ')'), ('[', ']'), ('{', '}')];
    let mut balance = brackets.map(|(open, close)| {
        let part = &text[body..end];
        part.matches(open).count() as isize - part.matches(close).count() as isize
    });
    while let Some(c) = text[body..end].chars().next_back() {
        let trailing = match brackets.iter().position(|&(_, close)| close == c) {
            Some(k) if balance[k] < 0 => {
                balance[k] += 1;
                true
            }
            Some(_) => false,
            None => ".,;:!?'*…。、，！？：；»”’」』》〉".contains(c),
        };
        if !trailing {
            break;
        }
        end -= c.len_utf8();
    }
    Some((end, www))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The text of each range.
    fn texts<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &text[r.clone()]).collect()
    }

    /// What a detector found, each piece checked against the detector's shape for screens.
    fn shaped<'a>(text: &'a str, shape: &str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        let shape = regex::Regex::new(shape).unwrap();
        let found = texts(text, ranges);
        for piece in &found {
            assert!(
                shape.is_match(piece),
                "{piece:?} does not have the shape {shape}"
            );
        }
        found
    }

    fn cards(text: &str) -> Vec<&str> {
        shaped(text, CARD_SHAPE, &payment_cards(text))
    }

    #[test]
    fn valid_card_numbers() {
        for number in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "4012888888881881",
            "30569309025904",
            "3530111333300000",
            "4222222222222",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "3782 822463 10005",
            "4222 222 222 222",
            "6222 0200 0000 0000 000",
        ] {
            let text = format!("card: {number}, thanks");
            assert_eq!(cards(&text), vec![number], "{number}");
        }
        assert_eq!(cards("4111111111111111"), vec!["4111111111111111"]);
        assert_eq!(cards("(4111111111111111)."), vec!["4111111111111111"]);
        assert_eq!(cards("卡号4111111111111111。"), vec!["4111111111111111"]);
        assert_eq!(
            cards("4111111111111111 and 5555-5555-5555-4444"),
            vec!["4111111111111111", "5555-5555-5555-4444"]
        );
    }

    #[test]
    fn invalid_card_numbers() {
        for text in [
            "4111111111111112", // one digit changed
            "4111 1111 1111 1112",
            "378282246310006",
            "411111111111",         // 12 digits
            "41111111111111111111", // 20 digits
            "14111111111111111",    // in a longer run of digits
            "41111111111111110",
            "4111 1111 1111 1111 1", // a longer grouped run
            "0000000000000000",      // Luhn holds, but no card
            "0000 0000 0000 0000",
            "41 11 11 11 11 11 11 11", // groups of two: not a card
            "4111  1111  1111  1111",  // double spaces split the number
            "4111 - 1111 - 1111 - 1111",
            "978-3-16-148410-0",  // an ISBN
            "3.4111111111111111", // decimals
            "4111111111111111,5",
            "x4111111111111111", // glued to an identifier
            "4111111111111111_x",
            "0411111111111111", // no card starts with 0
        ] {
            assert_eq!(cards(text), Vec::<&str>::new(), "{text}");
        }
        // A number of one repeated digit is refused even when Luhn holds.
        assert!(luhn(&[8; 16]));
        assert_eq!(
            cards("8888888888888888 8888-8888-8888-8888"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn luhn_matches_its_definition() {
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
        assert!(luhn(&[0]));
        assert!(luhn(&[1, 8]));
    }

    fn digits_to_string(digits: &[u8]) -> String {
        digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// A card number with a right Luhn digit and a grouping of three to six digits.
    fn card() -> impl Strategy<Value = (Vec<u8>, Vec<usize>, char)> {
        (
            CARD_DIGITS,
            prop::collection::vec(3usize..=6, 7),
            prop::sample::select(vec!['\0', ' ', '-']),
        )
            .prop_flat_map(|(len, sizes, sep)| {
                (1u8..=9, prop::collection::vec(0u8..=9, len - 2)).prop_map(
                    move |(first, middle)| {
                        let mut digits = vec![first];
                        digits.extend(middle);
                        let check = (0..=9).find(|&c| {
                            let mut all = digits.clone();
                            all.push(c);
                            luhn(&all)
                        });
                        digits.push(check.unwrap_or(0));
                        // Group sizes until the number is used up; a short tail joins the last group.
                        let mut groups = Vec::new();
                        let mut left = len;
                        for &size in &sizes {
                            if left < size + 3 {
                                break;
                            }
                            groups.push(size);
                            left -= size;
                        }
                        groups.push(left);
                        (digits, groups, sep)
                    },
                )
            })
    }

    fn written(digits: &[u8], groups: &[usize], sep: char) -> String {
        if sep == '\0' {
            return digits_to_string(digits);
        }
        let mut out = String::new();
        let mut at = 0;
        for (k, &size) in groups.iter().enumerate() {
            if k > 0 {
                out.push(sep);
            }
            out.push_str(&digits_to_string(&digits[at..at + size]));
            at += size;
        }
        out
    }

    proptest! {
        #[test]
        fn every_valid_card_is_found((digits, groups, sep) in card(), before in "[ a-z(]{0,3}") {
            prop_assume!(digits.iter().any(|&d| d != digits[0]));
            let number = written(&digits, &groups, sep);
            let before = if before.ends_with(|c: char| c.is_ascii_alphabetic()) {
                format!("{before} ")
            } else {
                before
            };
            let text = format!("{before}{number}. ok");
            prop_assert_eq!(payment_cards(&text), vec![before.len()..before.len() + number.len()]);
            prop_assert!(CARD_SHAPE_RE.is_match(&text));
        }

        #[test]
        fn a_changed_digit_is_never_a_card(
            (digits, groups, sep) in card(), at in any::<prop::sample::Index>(), by in 1u8..=9,
        ) {
            let mut changed = digits.clone();
            let k = at.index(changed.len());
            changed[k] = (changed[k] + by) % 10;
            prop_assert!(payment_cards(&written(&changed, &groups, sep)).is_empty());
        }

        #[test]
        fn a_card_in_a_longer_number_is_not_found(
            (digits, groups, sep) in card(), extra in 0u8..=9, after in any::<bool>(),
        ) {
            let number = written(&digits, &groups, sep);
            let text = if after { format!("{number}{extra}") } else { format!("{extra}{number}") };
            let offset = usize::from(!after);
            prop_assert!(!payment_cards(&text).contains(&(offset..offset + number.len())));
        }
    }

    fn ibans_in(text: &str) -> Vec<&str> {
        shaped(text, IBAN_SHAPE, &ibans(text))
    }

    #[test]
    fn valid_ibans() {
        for iban in [
            "GB82 WEST 1234 5698 7654 32",
            "DE89 3704 0044 0532 0130 00",
            "FR14 2004 1010 0505 0001 3M02 606",
            "GB82WEST12345698765432",
            "gb82 west 1234 5698 7654 32",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "CH9300762011623852957",
            "ES9121000418450200051332",
            "IT60X0542811101000000123456",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
            "LC55HEMM000100010012001200023015",
            "RU0304452522540817810538091310419",
        ] {
            let text = format!("IBAN: {iban}. Thanks");
            assert_eq!(ibans_in(&text), vec![iban], "{iban}");
        }
        assert_eq!(
            ibans_in("(GB82WEST12345698765432) et DE89 3704 0044 0532 0130 00 12 €"),
            vec!["GB82WEST12345698765432", "DE89 3704 0044 0532 0130 00"]
        );
    }

    #[test]
    fn invalid_ibans() {
        for text in [
            "GB82 WEST 1234 5698 7654 33",  // one digit changed
            "GB82 WEST 1234 5698 7654 3",   // too short for GB
            "GB82 WEST 1234 5698 7654 321", // too long for GB
            "GB82WEST123456987654321",
            "DE89 3704 0044 0532 0130 00X",
            "XGB82WEST12345698765432", // inside a longer token
            "éGB82WEST12345698765432",
            "GB82  WEST 1234 5698 7654 32", // two spaces
            "GB82 WES T123 4569 8765 432",  // spaces not after every fourth character
            "B82 WEST 1234 5698 7654 32",
            "XX82WEST12345698765432", // no such country
            "GB00WEST12345698765432", // check digits out of range
        ] {
            assert_eq!(ibans_in(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn the_iban_table_is_sorted_and_plausible() {
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(IBAN_LENGTHS.iter().all(|(c, len)| {
            c.iter().all(u8::is_ascii_uppercase) && (15..=MAX_IBAN).contains(len)
        }));
    }

    /// An IBAN for `country` with the given BBAN characters, its check digits computed.
    fn make_iban(country: &[u8; 2], bban: &[u8]) -> Vec<u8> {
        let mut iban = country.to_vec();
        iban.extend_from_slice(b"00");
        iban.extend_from_slice(bban);
        // The check digits make the remainder 1: 98 minus the remainder with 00.
        let mut remainder = 0u32;
        for &c in bban.iter().chain(country.iter()).chain(b"00") {
            remainder = if c.is_ascii_digit() {
                (remainder * 10 + u32::from(c - b'0')) % 97
            } else {
                (remainder * 100 + u32::from(c - b'A') + 10) % 97
            };
        }
        let check = 98 - remainder;
        iban[2] = b'0' + (check / 10) as u8;
        iban[3] = b'0' + (check % 10) as u8;
        iban
    }

    fn any_iban() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(IBAN_LENGTHS).prop_flat_map(|(country, len)| {
            prop::collection::vec(
                prop::sample::select(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec()),
                len - 4,
            )
            .prop_map(move |bban| make_iban(country, &bban))
        })
    }

    fn print_form(iban: &[u8]) -> String {
        let groups: Vec<&str> = iban
            .chunks(4)
            .map(|g| std::str::from_utf8(g).unwrap_or(""))
            .collect();
        groups.join(" ")
    }

    proptest! {
        #[test]
        fn every_valid_iban_is_found(iban in any_iban(), grouped in any::<bool>(), lower in any::<bool>()) {
            let mut written = if grouped { print_form(&iban) } else { String::from_utf8(iban).unwrap() };
            if lower {
                written = written.to_lowercase();
            }
            let text = format!("pay to {written}, thanks");
            prop_assert_eq!(ibans(&text), vec![7..7 + written.len()]);
            prop_assert!(IBAN_SHAPE_RE.is_match(&text));
        }

        #[test]
        fn a_changed_character_is_never_an_iban(
            iban in any_iban(), at in any::<prop::sample::Index>(), by in 1u8..=25, grouped in any::<bool>(),
        ) {
            let mut changed = iban.clone();
            // Not the country code: another country's shorter length could cut the number
            // where its own check happens to hold.
            let k = 2 + at.index(changed.len() - 2);
            // Digits for digits and letters for letters: MOD 97-10 catches every such change.
            changed[k] = if changed[k].is_ascii_digit() {
                b'0' + (changed[k] - b'0' + by % 9 + 1) % 10
            } else {
                b'A' + (changed[k] - b'A' + by) % 26
            };
            let written = if grouped { print_form(&changed) } else { String::from_utf8(changed).unwrap() };
            prop_assert!(ibans(&written).is_empty());
        }
    }

    fn emails_in(text: &str) -> Vec<&str> {
        shaped(text, EMAIL_SHAPE, &emails(text))
    }

    #[test]
    fn valid_emails() {
        assert_eq!(
            emails_in("Write to john.doe@example.com, or first+tag@mail.example.co.uk."),
            vec!["john.doe@example.com", "first+tag@mail.example.co.uk"]
        );
        assert_eq!(emails_in("<mailto:x@y.org>"), vec!["x@y.org"]);
        assert_eq!(emails_in("'alice@example.net'"), vec!["alice@example.net"]);
        assert_eq!(
            emails_in("(o'brien@example.ie)"),
            vec!["o'brien@example.ie"]
        );
        assert_eq!(
            emails_in("josé.garcía@correo.es"),
            vec!["josé.garcía@correo.es"]
        );
        assert_eq!(emails_in("пример@почта.рф"), vec!["пример@почта.рф"]);
        assert_eq!(
            emails_in("a_b-c@x-y.io; d@e.fr"),
            vec!["a_b-c@x-y.io", "d@e.fr"]
        );
        assert_eq!(
            emails_in("...john@example.com..."),
            vec!["john@example.com"]
        );
    }

    #[test]
    fn invalid_emails() {
        for text in [
            "john@localhost",
            "john@example.c",
            "john@example.c0m",
            "john..doe@example.com",
            "john.@example.com",
            "@example.com",
            "john@",
            "john@-example.com",
            "john@example-.com",
            "john@example..com",
            "a@b@example.com",
            "john@example.com@other.org",
            "...@example.com",
            "an @ sign",
        ] {
            assert_eq!(emails_in(text), Vec::<&str>::new(), "{text}");
        }
        let long = format!("{}@example.com", "x".repeat(MAX_LOCAL + 1));
        assert_eq!(emails_in(&long), Vec::<&str>::new());
    }

    fn links_in(text: &str) -> Vec<(&str, String)> {
        let found = links(text);
        let ranges: Vec<Range<usize>> = found.iter().map(|(r, _)| r.clone()).collect();
        shaped(text, LINK_SHAPE, &ranges)
            .into_iter()
            .zip(found.into_iter().map(|(_, url)| url))
            .collect()
    }

    #[test]
    fn links_without_sentence_punctuation() {
        let text = "See https://example.com/a?b=c#d, http://x.org. (ftp://files.example.net/pub) \
                    or HTTPS://EXAMPLE.COM/ !";
        let found = links_in(text);
        assert_eq!(
            found.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![
                "https://example.com/a?b=c#d",
                "http://x.org",
                "ftp://files.example.net/pub",
                "HTTPS://EXAMPLE.COM/"
            ]
        );
        assert!(found.iter().all(|(t, url)| t == url));
        assert_eq!(
            links_in("Visit www.example.co.uk/page; or xmpp:room@conference.example.com?join!"),
            vec![
                (
                    "www.example.co.uk/page",
                    "http://www.example.co.uk/page".to_string()
                ),
                (
                    "xmpp:room@conference.example.com?join",
                    "xmpp:room@conference.example.com?join".to_string()
                ),
            ]
        );
    }

    #[test]
    fn brackets_and_quotes() {
        let only = |text: &str| {
            links_in(text)
                .into_iter()
                .map(|(t, _)| t.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            only("https://en.wikipedia.org/wiki/Rust_(programming_language)."),
            vec!["https://en.wikipedia.org/wiki/Rust_(programming_language)"]
        );
        assert_eq!(
            only("[docs](https://docs.example.org/x)"),
            vec!["https://docs.example.org/x"]
        );
        assert_eq!(
            only("<https://example.com/x>"),
            vec!["https://example.com/x"]
        );
        assert_eq!(only("\"https://example.com\""), vec!["https://example.com"]);
        assert_eq!(
            only("'https://example.com/it's'"),
            vec!["https://example.com/it's"]
        );
        assert_eq!(
            only("链接：https://例子.中国/路径。"),
            vec!["https://例子.中国/路径"]
        );
        assert_eq!(
            only("http://[2001:db8::1]:8080/x"),
            vec!["http://[2001:db8::1]:8080/x"]
        );
        assert_eq!(
            only("xmpp://guest@example.com/support@example.com?message"),
            vec!["xmpp://guest@example.com/support@example.com?message"]
        );
    }

    #[test]
    fn not_links() {
        for text in [
            "http://",
            "http:// example.com",
            "https://.",
            "xhttp://example.com",
            "git+https://example.com",
            "www.",
            "www.example",
            "awww.example.com",
            "mail john@www.example.com",
            "xmpp:",
            "the xmpp: scheme",
            "xmpp:?join",
            "ftp:/example.com",
        ] {
            assert_eq!(links_in(text), vec![], "{text}");
        }
    }

    fn sensitive_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("4111 1111 1111 1111".to_string()),
            Just("GB82 WEST 1234 5698 7654 32".to_string()),
            Just("a@b.co".to_string()),
            Just("https://x.org/(a)".to_string()),
            Just("www.x.io".to_string()),
            Just("xmpp:".to_string()),
            "[0-9 .,@:/()-]{0,6}",
            "[a-zA-Z]{0,4}",
            "\\PC{0,3}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn ranges_are_ordered_disjoint_and_on_boundaries(text in sensitive_text()) {
            let mut all = vec![payment_cards(&text), ibans(&text), emails(&text)];
            all.push(links(&text).into_iter().map(|(r, _)| r).collect());
            for ranges in all {
                let mut previous = 0;
                for r in ranges {
                    prop_assert!(previous <= r.start && r.start < r.end && r.end <= text.len());
                    prop_assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
                    previous = r.end;
                }
            }
        }
    }

    /// Texts made of the pieces the detectors look for, glued in any order.
    fn cluttered() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("4111 1111 1111 1111".to_owned()),
                Just("GB82 WEST 1234 5698 7654 32".to_owned()),
                Just("gb82west12345698765432".to_owned()),
                Just("ann@example.org".to_owned()),
                Just("https://example.org/x".to_owned()),
                Just("WWW.example.org".to_owned()),
                Just("xmpp:bob@example.org".to_owned()),
                "[a-zA-Z0-9@:./ -]{0,12}",
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn the_iban_look_agrees_with_one_window_at_a_time(
            text in "[a-z ]{0,100}([A-Za-z]{2}[0-9]{2}|[a-z][0-9]{3}|)[a-z ]{0,100}[0-9]{0,2}"
        ) {
            let b = text.as_bytes();
            let expected = b.iter().filter(|c| c.is_ascii_digit()).count() >= 2
                && b.len() >= MIN_IBAN_CHARS
                && b.windows(4).any(|w| {
                    w[0].is_ascii_alphabetic() && w[1].is_ascii_alphabetic()
                        && w[2].is_ascii_digit() && w[3].is_ascii_digit()
                });
            prop_assert_eq!(Clues::of(&text).may_hold_iban(), expected, "{:?}", text);
        }

        #[test]
        fn digits_are_counted_over_long_texts(text in "[0-9a ]{0,600}") {
            let digits = text.bytes().filter(u8::is_ascii_digit).count();
            prop_assert_eq!(Clues::of(&text).may_hold_card(), digits >= MIN_CARD_DIGITS);
            let all = "7".repeat(text.len());
            prop_assert_eq!(Clues::of(&all).digits(), text.len());
        }

        #[test]
        fn clues_never_hide_what_a_detector_finds(text in cluttered()) {
            let clues = Clues::of(&text);
            prop_assert!(payment_cards(&text).is_empty() || clues.may_hold_card(), "card in {text:?}");
            prop_assert!(ibans(&text).is_empty() || clues.may_hold_iban(), "IBAN in {text:?}");
            let shape = |s: &str| regex::Regex::new(s).unwrap().is_match(&text);
            prop_assert!(payment_cards(&text).is_empty() || shape(CARD_SHAPE), "card in {text:?}");
            prop_assert!(ibans(&text).is_empty() || shape(IBAN_SHAPE), "IBAN in {text:?}");
            prop_assert!(emails(&text).is_empty() || shape(EMAIL_SHAPE), "address in {text:?}");
            prop_assert!(links(&text).is_empty() || shape(LINK_SHAPE), "link in {text:?}");
            prop_assert!(emails(&text).is_empty() || clues.may_hold_email(), "address in {text:?}");
            prop_assert!(links(&text).is_empty() || clues.may_hold_link(), "link in {text:?}");
        }
    }

    static CARD_SHAPE_RE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(CARD_SHAPE).unwrap());
    static IBAN_SHAPE_RE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(IBAN_SHAPE).unwrap());

    #[test]
    fn plain_chat_has_no_clues() {
        let chat = "Hi, can we move the standup to half past ten tomorrow? Room 12 at 9.";
        let c = Clues::of(chat);
        assert!(
            !c.may_hold_card() && !c.may_hold_iban() && !c.may_hold_email() && !c.may_hold_link()
        );
        assert!(!CARD_SHAPE_RE.is_match(chat) && !IBAN_SHAPE_RE.is_match(chat));
        // Shorter than a card, or an IBAN's start without enough after it.
        assert!(!CARD_SHAPE_RE.is_match("call 0612 345 678 or 17 1732712345"));
        assert!(!IBAN_SHAPE_RE.is_match("FR76 3000 6000"));
        assert!(Clues::of("see www.example.org").may_hold_link());
        assert!(Clues::of("FR76 3000 6000 0112 3456 7890 189").may_hold_iban());
    }
}
