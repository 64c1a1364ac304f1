//! Preparation and enforcement of each JID part (RFC 7622 §3.2–§3.4).
//!
//! Every function here returns the canonical form of its part, so that two JIDs compare
//! equal exactly when their canonical strings are equal. The pure-ASCII fast paths give
//! the same answers as the full PRECIS / IDNA processing (a property test checks this);
//! they exist because almost every JID on the wire is ASCII and parsing happens for
//! every routed stanza.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use precis_core::profile::{PrecisFastInvocation, stabilize};
use precis_profiles::{OpaqueString, UsernameCaseMapped};

use crate::error::{JidError, JidPart};
use crate::legacy;

/// RFC 7622 §3.2–§3.4: each part is at most 1023 octets once prepared.
pub const MAX_PART_LEN: usize = 1023;

/// Raw input longer than this is refused before any Unicode processing. Preparation can
/// shrink a string (width mapping turns 3 octets into 1, NFC composes sequences), but by
/// less than a factor of four, so no part that would be valid is lost; the bound keeps
/// the work per part small whatever a peer sends.
const MAX_RAW_PART_LEN: usize = 4 * 1024;

/// RFC 7622 §3.3.1: characters the localpart must not contain even though the
/// IdentifierClass allows them.
const LOCALPART_FORBIDDEN: [char; 8] = ['"', '&', '\'', '/', ':', '<', '>', '@'];

/// A DNS label is at most 63 octets in its ASCII (A-label) form (RFC 5890 §2.3.2.1).
const MAX_LABEL_LEN: usize = 63;

/// Prepares and enforces a localpart: the PRECIS UsernameCaseMapped profile (RFC 8265
/// §3.3) applied until stable (RFC 8264 §7), then the extra prohibitions of RFC 7622
/// §3.3.1, then the 1023-octet limit.
pub fn prepare_localpart(s: &str) -> Result<String, JidError> {
    localpart(s).map(Cow::into_owned)
}

/// Prepares and enforces a resourcepart: the PRECIS OpaqueString profile (RFC 8265 §4.2)
/// applied until stable, then the 1023-octet limit (RFC 7622 §3.4).
pub fn prepare_resourcepart(s: &str) -> Result<String, JidError> {
    resourcepart(s).map(Cow::into_owned)
}

/// Prepares a domainpart (RFC 7622 §3.2): one trailing dot is stripped; an IPv4 address
/// or a bracketed IPv6 address is kept as written; anything else must be an IDNA2008
/// domain name and is converted to its U-label form (A-labels decoded, lower case, NFC).
pub fn prepare_domain(s: &str) -> Result<String, JidError> {
    domainpart(s).map(Cow::into_owned)
}

pub(crate) fn localpart(input: &str) -> Result<Cow<'_, str>, JidError> {
    const PART: JidPart = JidPart::Localpart;
    check_raw(PART, input)?;
    let prepared = match ascii_localpart(input) {
        Some(fast) => fast,
        None => {
            let out = precis_localpart(input)?;
            legacy::log_if_different(PART, input, &out);
            out
        }
    };
    if let Some(c) = prepared.chars().find(|c| LOCALPART_FORBIDDEN.contains(c)) {
        return Err(JidError::ForbiddenLocalpartChar(c));
    }
    check_prepared(PART, prepared)
}

pub(crate) fn resourcepart(input: &str) -> Result<Cow<'_, str>, JidError> {
    const PART: JidPart = JidPart::Resourcepart;
    check_raw(PART, input)?;
    let prepared = if is_ascii_resourcepart(input) {
        Cow::Borrowed(input)
    } else {
        let out = precis_resourcepart(input)?;
        legacy::log_if_different(PART, input, &out);
        out
    };
    check_prepared(PART, prepared)
}

/// RFC 8264 §9.11: printable ASCII is PVALID in the IdentifierClass; width mapping, NFC
/// and the bidi rule do nothing to it, so only the case mapping is left. `None` when the
/// input needs the full profile.
fn ascii_localpart(input: &str) -> Option<Cow<'_, str>> {
    if !input.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    Some(if input.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(input.to_ascii_lowercase())
    } else {
        Cow::Borrowed(input)
    })
}

/// RFC 8265 §3.3 UsernameCaseMapped, applied until the output is stable (RFC 8264 §7).
fn precis_localpart(input: &str) -> Result<Cow<'_, str>, JidError> {
    stabilize(input, |s: &str| {
        <UsernameCaseMapped as PrecisFastInvocation>::enforce(s)
    })
    .map_err(|e| precis_error(JidPart::Localpart, &e))
}

/// RFC 8264 §9.11/§9.14: printable ASCII and the space are PVALID in the FreeformClass,
/// and OpaqueString maps none of them, so such input is already prepared.
fn is_ascii_resourcepart(input: &str) -> bool {
    input.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// RFC 8265 §4.2 OpaqueString, applied until the output is stable (RFC 8264 §7).
fn precis_resourcepart(input: &str) -> Result<Cow<'_, str>, JidError> {
    stabilize(input, |s: &str| {
        <OpaqueString as PrecisFastInvocation>::enforce(s)
    })
    .map_err(|e| precis_error(JidPart::Resourcepart, &e))
}

pub(crate) fn domainpart(input: &str) -> Result<Cow<'_, str>, JidError> {
    const PART: JidPart = JidPart::Domainpart;
    // RFC 7622 §3.2: a final label separator is stripped before the JID is used.
    let s = input.strip_suffix('.').unwrap_or(input);
    check_raw(PART, s)?;

    // RFC 7622 §3.2: an IP literal (RFC 3986 IP-literal or IPv4address) is kept as is.
    if let Some(inner) = s.strip_prefix('[') {
        let addr = inner.strip_suffix(']').ok_or(JidError::InvalidIpLiteral)?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| JidError::InvalidIpLiteral)?;
        return check_prepared(PART, Cow::Borrowed(s));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return check_prepared(PART, Cow::Borrowed(s));
    }

    let prepared = match ascii_domain(s) {
        Some(result) => result?,
        None => {
            let out = idna_domain(s)?;
            if !s.is_ascii() {
                legacy::log_if_different(PART, s, &out);
            }
            Cow::Owned(out)
        }
    };
    check_prepared(PART, prepared)
}

/// The common case: an ASCII host name made of letter-digit-hyphen labels. Returns `None`
/// when the full IDNA processing is needed (non-ASCII input, or a label with hyphens in
/// the third and fourth positions, such as an A-label `xn--…`).
fn ascii_domain(s: &str) -> Option<Result<Cow<'_, str>, JidError>> {
    if !s.is_ascii() {
        return None;
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Some(Err(JidError::InvalidDomain("empty label")));
        }
        if label.len() > MAX_LABEL_LEN {
            return Some(Err(JidError::InvalidDomain("label longer than 63 octets")));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            // UTS #46 with the STD3 rules (RFC 5890 LDH labels) refuses every other
            // ASCII character.
            return Some(Err(JidError::InvalidDomain(
                "only letters, digits and hyphens are allowed",
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(Err(JidError::InvalidDomain(
                "a label starts or ends with a hyphen",
            )));
        }
        if label.get(2..4) == Some("--") {
            return None;
        }
    }
    Some(Ok(if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }))
}

/// Full IDNA2008 processing through UTS #46 (non-transitional): the ToASCII pass
/// validates every label and gives the A-label lengths to check; the ToUnicode pass on
/// its output yields the U-label form RFC 7622 §3.2.1 asks for (A-labels converted,
/// case mapped, NFC).
fn idna_domain(s: &str) -> Result<String, JidError> {
    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            s.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Check,
            DnsLength::Ignore,
        )
        .map_err(|_| JidError::InvalidDomain("refused by IDNA2008 (UTS #46) processing"))?;
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(JidError::InvalidDomain("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(JidError::InvalidDomain("label longer than 63 octets"));
        }
    }
    let (unicode, result) = uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::STD3, Hyphens::Check);
    result.map_err(|_| JidError::InvalidDomain("refused by IDNA2008 (UTS #46) processing"))?;
    Ok(unicode.into_owned())
}

fn check_raw(part: JidPart, s: &str) -> Result<(), JidError> {
    if s.is_empty() {
        return Err(JidError::Empty(part));
    }
    if s.len() > MAX_RAW_PART_LEN {
        return Err(JidError::TooLong(part));
    }
    Ok(())
}

fn check_prepared(part: JidPart, s: Cow<'_, str>) -> Result<Cow<'_, str>, JidError> {
    if s.is_empty() {
        return Err(JidError::Empty(part));
    }
    if s.len() > MAX_PART_LEN {
        return Err(JidError::TooLong(part));
    }
    Ok(s)
}

fn precis_error(part: JidPart, e: &precis_core::Error) -> JidError {
    JidError::Precis {
        part,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localpart_is_case_mapped_not_case_folded() {
        assert_eq!(prepare_localpart("Juliet").unwrap(), "juliet");
        // RFC 7622 §3.5 examples 6/7: ß is not folded to "ss".
        assert_eq!(prepare_localpart("Fußball").unwrap(), "fußball");
        // Case mapping is per character (toLowerCase without the final-sigma context).
        assert_eq!(prepare_localpart("ΣΑΣ").unwrap(), "σασ");
        assert_eq!(prepare_localpart("Σ").unwrap(), "σ");
        assert_eq!(prepare_localpart("ς").unwrap(), "ς");
    }

    #[test]
    fn localpart_width_mapping() {
        // Fullwidth Latin letters map to their ASCII counterparts (RFC 8265 §3.3.2 rule 1),
        // then case mapping applies.
        assert_eq!(prepare_localpart("ＪＵＬＩＥＴ").unwrap(), "juliet");
        // A fullwidth commercial at becomes '@', which the localpart forbids.
        assert_eq!(
            prepare_localpart("a＠b"),
            Err(JidError::ForbiddenLocalpartChar('@'))
        );
    }

    #[test]
    fn localpart_forbidden_characters() {
        for c in LOCALPART_FORBIDDEN {
            let s = format!("a{c}b");
            assert_eq!(
                prepare_localpart(&s),
                Err(JidError::ForbiddenLocalpartChar(c)),
                "{s}"
            );
        }
        // Other ASCII punctuation is fine.
        assert_eq!(prepare_localpart("a.b+c_d\\20").unwrap(), "a.b+c_d\\20");
    }

    #[test]
    fn localpart_refuses_compatibility_and_symbols() {
        assert!(matches!(
            prepare_localpart("ﬁle"),
            Err(JidError::Precis {
                part: JidPart::Localpart,
                ..
            })
        ));
        assert!(matches!(
            prepare_localpart("a b"),
            Err(JidError::Precis { .. })
        ));
        assert!(matches!(
            prepare_localpart("ab\u{7}"),
            Err(JidError::Precis { .. })
        ));
    }

    #[test]
    fn localpart_nfc() {
        // "e" + COMBINING ACUTE ACCENT composes to é.
        assert_eq!(prepare_localpart("Cafe\u{301}").unwrap(), "café");
    }

    #[test]
    fn resourcepart_keeps_case_and_spaces() {
        assert_eq!(prepare_resourcepart("Balcony").unwrap(), "Balcony");
        assert_eq!(prepare_resourcepart("foo bar").unwrap(), "foo bar");
        assert_eq!(prepare_resourcepart("♚").unwrap(), "♚");
        // A non-ASCII space maps to U+0020 (RFC 8265 §4.2.2 rule 1).
        assert_eq!(prepare_resourcepart("a\u{3000}b").unwrap(), "a b");
        // The resourcepart does no width mapping.
        assert_eq!(prepare_resourcepart("ＡＢ").unwrap(), "ＡＢ");
        // NFC.
        assert_eq!(prepare_resourcepart("e\u{301}").unwrap(), "é");
        assert!(prepare_resourcepart("a\u{1}").is_err());
        assert_eq!(
            prepare_resourcepart(""),
            Err(JidError::Empty(JidPart::Resourcepart))
        );
    }

    #[test]
    fn domain_forms() {
        assert_eq!(prepare_domain("Example.COM").unwrap(), "example.com");
        assert_eq!(prepare_domain("example.com.").unwrap(), "example.com");
        assert!(prepare_domain("example.com..").is_err());
        assert_eq!(
            prepare_domain("."),
            Err(JidError::Empty(JidPart::Domainpart))
        );
        assert_eq!(prepare_domain("localhost").unwrap(), "localhost");
        assert_eq!(
            prepare_domain("xn--mnchen-3ya.example").unwrap(),
            "münchen.example"
        );
        assert_eq!(
            prepare_domain("MÜNCHEN.example").unwrap(),
            "münchen.example"
        );
        // Fullwidth letters and the ideographic full stop map per UTS #46.
        assert_eq!(prepare_domain("ｅｘａｍｐｌｅ.com").unwrap(), "example.com");
        assert_eq!(prepare_domain("192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(prepare_domain("[2001:DB8::1]").unwrap(), "[2001:DB8::1]");
        assert_eq!(
            prepare_domain("[2001:db8::zz]"),
            Err(JidError::InvalidIpLiteral)
        );
        assert_eq!(prepare_domain("[::1"), Err(JidError::InvalidIpLiteral));
    }

    #[test]
    fn domain_refusals() {
        for bad in [
            "exa mple.com",
            "a_b.example",
            "-a.example",
            "a-.example",
            "a..b",
            "ab--cd.example",
            "xn--zz.example",
            "user@host",
            "ex/ample",
            "例え\u{200d}.jp",
        ] {
            assert!(prepare_domain(bad).is_err(), "{bad}");
        }
        let long_label = "a".repeat(64);
        assert!(prepare_domain(&format!("{long_label}.example")).is_err());
        let ok_label = "a".repeat(63);
        assert!(prepare_domain(&format!("{ok_label}.example")).is_ok());
    }

    proptest::proptest! {
        /// The ASCII fast paths must agree with the full PRECIS and IDNA processing.
        #[test]
        fn ascii_fast_paths_agree_with_full_processing(s in "[ -~]{1,24}") {
            if let Some(fast) = ascii_localpart(&s) {
                proptest::prop_assert_eq!(Ok(fast), precis_localpart(&s));
            }
            if is_ascii_resourcepart(&s) {
                proptest::prop_assert_eq!(Ok(Cow::Borrowed(s.as_str())), precis_resourcepart(&s));
            }
        }

        #[test]
        fn ascii_domain_fast_path_agrees_with_idna(s in "[a-zA-Z0-9_ .\\-]{1,24}") {
            match ascii_domain(&s) {
                Some(Ok(fast)) => proptest::prop_assert_eq!(Ok(fast.into_owned()), idna_domain(&s)),
                Some(Err(_)) => proptest::prop_assert!(idna_domain(&s).is_err(), "{}", s),
                None => {}
            }
        }

        #[test]
        fn ascii_domain_labels_agree_with_idna(s in "([a-zA-Z0-9\\-]{1,6}\\.){0,3}[a-zA-Z0-9\\-]{1,6}") {
            match ascii_domain(&s) {
                Some(Ok(fast)) => proptest::prop_assert_eq!(Ok(fast.into_owned()), idna_domain(&s)),
                Some(Err(_)) => proptest::prop_assert!(idna_domain(&s).is_err(), "{}", s),
                None => {}
            }
        }
    }

    #[test]
    fn lengths_are_counted_in_octets() {
        assert!(prepare_localpart(&"a".repeat(1023)).is_ok());
        assert_eq!(
            prepare_localpart(&"a".repeat(1024)),
            Err(JidError::TooLong(JidPart::Localpart))
        );
        // 600 characters, 1200 octets.
        assert_eq!(
            prepare_localpart(&"π".repeat(600)),
            Err(JidError::TooLong(JidPart::Localpart))
        );
        assert!(prepare_resourcepart(&"r".repeat(1023)).is_ok());
        assert_eq!(
            prepare_resourcepart(&"r".repeat(1024)),
            Err(JidError::TooLong(JidPart::Resourcepart))
        );
        // A huge raw input is refused before any Unicode work.
        assert_eq!(
            prepare_resourcepart(&"é".repeat(10_000)),
            Err(JidError::TooLong(JidPart::Resourcepart))
        );
        // Fullwidth input shrinks under width mapping: 1023 fullwidth letters are 3069
        // octets raw but 1023 once prepared.
        assert_eq!(
            prepare_localpart(&"ａ".repeat(1023)).unwrap(),
            "a".repeat(1023)
        );
    }
}
