//! The attribute syntax shared by SCRAM messages (RFC 5802 §7).

/// The value of `segment` if it is the attribute `name` (`name=value`).
pub(crate) fn value_of(segment: &str, name: u8) -> Option<&str> {
    let (n, value) = split_attr(segment)?;
    (n == name).then_some(value)
}

/// Splits an `attr-val` (`ALPHA "=" value`) into its name and value.
pub(crate) fn split_attr(segment: &str) -> Option<(u8, &str)> {
    let bytes = segment.as_bytes();
    let name = *bytes.first()?;
    if !name.is_ascii_alphabetic() || bytes.get(1) != Some(&b'=') {
        return None;
    }
    segment.get(2..).map(|v| (name, v))
}

/// Whether `segment` is a syntactically valid extension attribute: `attr-val` with a
/// non-empty value (RFC 5802 §7 `value = 1*value-char`).
pub(crate) fn is_extension(segment: &str) -> bool {
    matches!(split_attr(segment), Some((_, v)) if !v.is_empty())
}

/// RFC 5802 §7 `saslname`: one or more characters, where '=' only appears in the
/// escapes "=2C" (for ',') and "=3D" (for '='). `None` when the escaping is wrong.
pub(crate) fn unescape_saslname(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(rest.get(..pos)?);
        let escape = rest.get(pos..pos + 3)?;
        match escape {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = rest.get(pos + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// The inverse of [`unescape_saslname`].
pub(crate) fn escape_saslname(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// RFC 5802 §7 `c-nonce`/`nonce`: printable ASCII except ',', at least one character.
pub(crate) fn is_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// RFC 5802 §7 `cb-name`: letters, digits, '.' and '-'.
pub(crate) fn is_cb_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escaping() {
        assert_eq!(unescape_saslname("user").as_deref(), Some("user"));
        assert_eq!(unescape_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_saslname("=3D=2C").as_deref(), Some("=,"));
        assert_eq!(unescape_saslname(""), None);
        assert_eq!(unescape_saslname("a=b"), None);
        assert_eq!(unescape_saslname("a=2"), None);
        assert_eq!(unescape_saslname("a=2c"), None);
        assert_eq!(unescape_saslname("a="), None);
        assert_eq!(unescape_saslname("é=2Cé").as_deref(), Some("é,é"));
        // A multi-byte character right after '=' must not cause a slicing panic.
        assert_eq!(unescape_saslname("=éé"), None);
        assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(
            unescape_saslname(&escape_saslname("x=,y")).as_deref(),
            Some("x=,y")
        );
    }

    #[test]
    fn attributes() {
        assert_eq!(split_attr("r=abc"), Some((b'r', "abc")));
        assert_eq!(split_attr("r="), Some((b'r', "")));
        assert_eq!(split_attr("1=abc"), None);
        assert_eq!(split_attr("rr=abc"), None);
        assert_eq!(split_attr(""), None);
        assert_eq!(split_attr("é=x"), None);
        assert_eq!(value_of("s=QSX=", b's'), Some("QSX="));
        assert_eq!(value_of("s=QSX=", b'i'), None);
        assert!(is_extension("x=1"));
        assert!(!is_extension("x="));
        assert!(is_nonce("fyko+d2lbbFgONRv9qkxdawL"));
        assert!(!is_nonce(""));
        assert!(!is_nonce("a b"));
        assert!(!is_nonce("a,b"));
        assert!(!is_nonce("é"));
        assert!(is_cb_name("tls-server-end-point"));
        assert!(!is_cb_name("tls_unique"));
    }
}
