//! Character-level rules: XML 1.0 `Char`, `Name`/`NCName`, end-of-line and attribute-value
//! normalization, and the only references RFC 6120 §11.1 leaves: the five predefined entities and
//! character references.

use std::borrow::Cow;

use crate::XmlError;
use crate::error::clip;

/// XML 1.0 §2.2 `Char`.
pub(crate) fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Checks raw (undecoded) bytes for characters outside `Char`: C0 controls other than tab, LF
/// and CR, and U+FFFE/U+FFFF. Surrogates and values above U+10FFFF cannot appear in valid UTF-8,
/// which is checked separately. One pass over the whole frame covers names, attribute values,
/// text and CDATA alike (RFC 6120 §11.5 / XML 1.0 §2.2).
pub(crate) fn check_raw_chars(bytes: &[u8]) -> Result<(), XmlError> {
    // Eight bytes at a time: words without any byte below 0x20 (nearly all of them) are
    // cleared by a few word operations; only the others are looked at byte by byte.
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if has_byte_below(load_word(word), 0x20) {
            check_controls(word)?;
        }
    }
    check_controls(words.remainder())?;
    for i in memchr::memchr_iter(0xEF, bytes) {
        // U+FFFE is EF BF BE, U+FFFF is EF BF BF.
        if bytes.get(i + 1) == Some(&0xBF) {
            match bytes.get(i + 2) {
                Some(0xBE) => return Err(XmlError::InvalidChar(0xFFFE)),
                Some(0xBF) => return Err(XmlError::InvalidChar(0xFFFF)),
                _ => {}
            }
        }
    }
    Ok(())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as one word (the byte order does not matter to the tests below).
#[inline]
pub(crate) fn load_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// Whether any byte of `word` is below `n` (`n` at most 0x80). Exact as a yes/no answer.
#[inline]
pub(crate) fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0
}

/// Whether any byte of `word` equals `b`. Exact as a yes/no answer.
#[inline]
pub(crate) fn has_byte(word: u64, b: u8) -> bool {
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

fn check_controls(bytes: &[u8]) -> Result<(), XmlError> {
    match bytes
        .iter()
        .find(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    {
        Some(&b) => Err(XmlError::InvalidChar(u32::from(b))),
        None => Ok(()),
    }
}

/// XML whitespace (`S`, XML 1.0 §2.3).
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// ASCII byte classes for names: 1 = may start an NCName, 2 = may continue one.
static NAME_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = 1 | 2;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            t[b] = 2;
        }
        b += 1;
    }
    t
};

/// Namespaces in XML §3 `NCName`: an XML `Name` without colons.
pub(crate) fn is_ncname(s: &str) -> bool {
    let bytes = s.as_bytes();
    // Fast path for the ASCII names that make up nearly all XMPP traffic.
    let mut ascii = true;
    let mut ok = !bytes.is_empty();
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x80 {
            ascii = false;
            break;
        }
        let need = if i == 0 { 1 } else { 2 };
        ok &= NAME_CLASS[b as usize] & need != 0;
    }
    if ascii {
        return ok;
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_start_char(c) => chars.all(is_name_char),
        _ => false,
    }
}

/// Splits a Namespaces in XML `QName` into (prefix, local part), refusing anything else.
pub(crate) fn split_qname(qname: &str) -> Result<(Option<&str>, &str), XmlError> {
    let colon = qname.bytes().position(|b| b == b':');
    match colon {
        None if is_ncname(qname) => Ok((None, qname)),
        Some(colon) if is_ncname(&qname[..colon]) && is_ncname(&qname[colon + 1..]) => {
            Ok((Some(&qname[..colon]), &qname[colon + 1..]))
        }
        _ => Err(XmlError::InvalidName(clip(qname))),
    }
}

/// Resolves the body of a reference (between `&` and `;`) and appends it to `out`.
pub(crate) fn push_reference(body: &str, out: &mut String) -> Result<(), XmlError> {
    let c = match body {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            if let Some(num) = body.strip_prefix('#') {
                char_ref(num)?
            } else if is_ncname(body) || body.split_once(':').is_some() {
                // A syntactically plausible name: the peer tried a DTD-defined entity.
                return Err(XmlError::UndefinedEntity(clip(body)));
            } else {
                return Err(XmlError::NotWellFormed("malformed entity reference"));
            }
        }
    };
    out.push(c);
    Ok(())
}

/// XML 1.0 §4.1 `CharRef` body after `&#`: decimal digits or `x` and hex digits.
fn char_ref(num: &str) -> Result<char, XmlError> {
    let (digits, radix) = match num.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (num, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return Err(XmlError::BadCharRef);
    }
    // Leading zeros are legal, so parse without a digit limit but with overflow checks.
    let mut value: u32 = 0;
    for b in digits.bytes() {
        let d = (b as char).to_digit(radix).ok_or(XmlError::BadCharRef)?;
        value = value
            .checked_mul(radix)
            .and_then(|v| v.checked_add(d))
            .ok_or(XmlError::InvalidChar(u32::MAX))?;
    }
    if !is_xml_char(value) {
        return Err(XmlError::InvalidChar(value));
    }
    char::from_u32(value).ok_or(XmlError::InvalidChar(value))
}

/// Decodes an attribute value as written between its quotes: references resolved, and
/// XML 1.0 §3.3.3 normalization (each literal tab, CR, LF or CR LF becomes one space; characters
/// from references are kept as they are). Raw characters were already checked by
/// [`check_raw_chars`].
pub(crate) fn decode_attr(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    let bytes = raw.as_bytes();
    let needs_work = bytes
        .iter()
        .any(|&b| matches!(b, b'&' | b'<' | b'\t' | b'\n' | b'\r'));
    if !needs_work {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest
        .bytes()
        .position(|b| matches!(b, b'&' | b'<' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'<' => return Err(XmlError::NotWellFormed("'<' in an attribute value")),
            b'&' => {
                let after = &rest[i + 1..];
                let end = after
                    .find(';')
                    .ok_or(XmlError::NotWellFormed("unterminated reference"))?;
                push_reference(&after[..end], &mut out)?;
                rest = &after[end + 1..];
                continue;
            }
            b'\r' => {
                out.push(' ');
                // CR LF is one line end (XML 1.0 §2.11), hence one space.
                let skip = if rest.as_bytes().get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
                continue;
            }
            _ => out.push(' '),
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Appends character data (text between markup, or a CDATA section's content) to `out` with
/// XML 1.0 §2.11 end-of-line handling: CR LF and lone CR become LF.
pub(crate) fn push_normalized(raw: &str, out: &mut String) {
    if memchr::memchr(b'\r', raw.as_bytes()).is_none() {
        out.push_str(raw);
        return;
    }
    let mut rest = raw;
    while let Some(i) = rest.find('\r') {
        out.push_str(&rest[..i]);
        out.push('\n');
        let skip = if rest.as_bytes().get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[i + skip..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncname_rules() {
        assert!(is_ncname("message"));
        assert!(is_ncname("_x-1.2"));
        assert!(is_ncname("été"));
        assert!(!is_ncname(""));
        assert!(!is_ncname("1a"));
        assert!(!is_ncname("-a"));
        assert!(!is_ncname("a:b"));
        assert!(!is_ncname("a b"));
        assert!(!is_ncname("a\u{B7}\u{37E}"));
        assert!(is_ncname("a\u{B7}"));
    }

    #[test]
    fn qname_rules() {
        assert_eq!(split_qname("a").unwrap(), (None, "a"));
        assert_eq!(split_qname("p:a").unwrap(), (Some("p"), "a"));
        assert!(split_qname(":a").is_err());
        assert!(split_qname("a:").is_err());
        assert!(split_qname("a:b:c").is_err());
    }

    #[test]
    fn references() {
        let mut s = String::new();
        for r in [
            "lt", "gt", "amp", "quot", "apos", "#65", "#x42", "#x00043", "#x1F600",
        ] {
            push_reference(r, &mut s).unwrap();
        }
        assert_eq!(s, "<>&\"'ABC\u{1F600}");
        assert_eq!(push_reference("#0", &mut s), Err(XmlError::InvalidChar(0)));
        assert_eq!(push_reference("#x1", &mut s), Err(XmlError::InvalidChar(1)));
        assert_eq!(
            push_reference("#xD800", &mut s),
            Err(XmlError::InvalidChar(0xD800))
        );
        assert_eq!(
            push_reference("#xFFFE", &mut s),
            Err(XmlError::InvalidChar(0xFFFE))
        );
        assert_eq!(
            push_reference("#x110000", &mut s),
            Err(XmlError::InvalidChar(0x110000))
        );
        assert!(push_reference("#99999999999999999999", &mut s).is_err());
        assert_eq!(push_reference("#", &mut s), Err(XmlError::BadCharRef));
        assert_eq!(push_reference("#X41", &mut s), Err(XmlError::BadCharRef));
        assert_eq!(push_reference("#x", &mut s), Err(XmlError::BadCharRef));
        assert_eq!(
            push_reference("xxe", &mut s),
            Err(XmlError::UndefinedEntity("xxe".into()))
        );
        assert!(matches!(
            push_reference("", &mut s),
            Err(XmlError::NotWellFormed(_))
        ));
    }

    #[test]
    fn attribute_normalization() {
        assert!(matches!(
            decode_attr("plain").unwrap(),
            Cow::Borrowed("plain")
        ));
        assert_eq!(decode_attr("a\tb\nc\r\nd\re").unwrap(), "a b c d e");
        assert_eq!(decode_attr("a&#9;b&#xA;c&#13;").unwrap(), "a\tb\nc\r");
        assert_eq!(decode_attr("&lt;&amp;&gt;").unwrap(), "<&>");
        assert!(decode_attr("a<b").is_err());
        assert!(decode_attr("a&b").is_err());
    }

    #[test]
    fn end_of_line_normalization() {
        let mut s = String::new();
        push_normalized("a\r\nb\rc\n", &mut s);
        assert_eq!(s, "a\nb\nc\n");
    }

    #[test]
    fn word_tests_match_byte_tests() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[pos] = b;
                let word = load_word(&bytes);
                assert_eq!(has_byte_below(word, 0x20), b < 0x20, "{b} at {pos}");
                assert_eq!(has_byte(word, b'&'), b == b'&', "{b} at {pos}");
                assert_eq!(has_byte(word, 0xEF), b == 0xEF, "{b} at {pos}");
            }
        }
        // Neighbouring bytes do not disturb each other.
        let word = load_word(&[0x00, 0xFF, 0x20, 0x1F, 0x80, 0x7F, 0x21, 0xEE]);
        assert!(has_byte_below(word, 0x20));
        assert!(!has_byte(word, 0xEF));
        assert!(has_byte(word, 0xEE));
    }

    #[test]
    fn raw_char_check() {
        assert!(check_raw_chars("ok\t\r\n é \u{FFFD}".as_bytes()).is_ok());
        assert_eq!(check_raw_chars(b"a\x01"), Err(XmlError::InvalidChar(1)));
        assert_eq!(check_raw_chars(b"\x00"), Err(XmlError::InvalidChar(0)));
        assert_eq!(
            check_raw_chars("\u{FFFF}".as_bytes()),
            Err(XmlError::InvalidChar(0xFFFF))
        );
        assert_eq!(
            check_raw_chars(&[0xEF, 0xBF, 0xBE]),
            Err(XmlError::InvalidChar(0xFFFE))
        );
    }
}
