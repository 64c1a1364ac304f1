//! The examples of RFC 7622 §3.5, and further Unicode cases.

use causerie_jid::{BareJid, FullJid, Jid, JidError, JidPart};

fn parts(s: &str) -> (Option<String>, String, Option<String>) {
    let j = Jid::parse(s).unwrap_or_else(|e| panic!("{s:?} should be valid: {e}"));
    (
        j.node().map(str::to_owned),
        j.domain().to_owned(),
        j.resource().map(str::to_owned),
    )
}

fn p(
    node: Option<&str>,
    domain: &str,
    resource: Option<&str>,
) -> (Option<String>, String, Option<String>) {
    (
        node.map(str::to_owned),
        domain.to_owned(),
        resource.map(str::to_owned),
    )
}

/// RFC 7622 §3.5.1, examples 1–15.
#[test]
fn rfc7622_valid_examples() {
    let cases: [(&str, Option<&str>, &str, Option<&str>); 15] = [
        ("juliet@example.com", Some("juliet"), "example.com", None),
        (
            "juliet@example.com/foo",
            Some("juliet"),
            "example.com",
            Some("foo"),
        ),
        (
            "juliet@example.com/foo bar",
            Some("juliet"),
            "example.com",
            Some("foo bar"),
        ),
        (
            "juliet@example.com/foo@bar",
            Some("juliet"),
            "example.com",
            Some("foo@bar"),
        ),
        (
            "foo\\20bar@example.com",
            Some("foo\\20bar"),
            "example.com",
            None,
        ),
        (
            "fussball@example.com",
            Some("fussball"),
            "example.com",
            None,
        ),
        (
            "fu\u{df}ball@example.com",
            Some("fu\u{df}ball"),
            "example.com",
            None,
        ),
        ("\u{3c0}@example.com", Some("\u{3c0}"), "example.com", None),
        // Capital sigma is mapped to small sigma.
        (
            "\u{3a3}@example.com/foo",
            Some("\u{3c3}"),
            "example.com",
            Some("foo"),
        ),
        (
            "\u{3c3}@example.com/foo",
            Some("\u{3c3}"),
            "example.com",
            Some("foo"),
        ),
        // Final sigma stays final sigma.
        (
            "\u{3c2}@example.com/foo",
            Some("\u{3c2}"),
            "example.com",
            Some("foo"),
        ),
        (
            "king@example.com/\u{265a}",
            Some("king"),
            "example.com",
            Some("\u{265a}"),
        ),
        ("example.com", None, "example.com", None),
        ("example.com/foobar", None, "example.com", Some("foobar")),
        (
            "a.example.com/b@example.net",
            None,
            "a.example.com",
            Some("b@example.net"),
        ),
    ];
    for (input, node, domain, resource) in cases {
        assert_eq!(parts(input), p(node, domain, resource), "{input}");
    }
    // Examples 6 and 7 are different JIDs (case mapping, not case folding).
    assert_ne!(
        Jid::parse("fussball@example.com").unwrap(),
        Jid::parse("fu\u{df}ball@example.com").unwrap()
    );
    // Examples 9 and 10 are the same JID, 11 is another.
    assert_eq!(
        Jid::parse("\u{3a3}@example.com/foo").unwrap(),
        Jid::parse("\u{3c3}@example.com/foo").unwrap()
    );
    assert_ne!(
        Jid::parse("\u{3c2}@example.com/foo").unwrap(),
        Jid::parse("\u{3c3}@example.com/foo").unwrap()
    );
}

/// RFC 7622 §3.5.2, examples 16–23 (example 18 is discussed separately below).
#[test]
fn rfc7622_invalid_examples() {
    // 16: quotation marks are forbidden in the localpart (§3.3.1).
    assert_eq!(
        Jid::parse("\"juliet\"@example.com"),
        Err(JidError::ForbiddenLocalpartChar('"'))
    );
    // 17: the space is not in the IdentifierClass.
    assert!(matches!(
        Jid::parse("foo bar@example.com"),
        Err(JidError::Precis {
            part: JidPart::Localpart,
            ..
        })
    ));
    // 19: empty localpart (and empty resourcepart).
    assert!(matches!(
        Jid::parse("@example.com/"),
        Err(JidError::Empty(_))
    ));
    assert_eq!(
        Jid::parse("@example.com"),
        Err(JidError::Empty(JidPart::Localpart))
    );
    assert_eq!(
        Jid::parse("juliet@example.com/"),
        Err(JidError::Empty(JidPart::Resourcepart))
    );
    // 20: ROMAN NUMERAL FOUR has a compatibility decomposition.
    assert!(matches!(
        Jid::parse("henry\u{2163}@example.com"),
        Err(JidError::Precis {
            part: JidPart::Localpart,
            ..
        })
    ));
    // 21: BLACK CHESS KING is a symbol, not allowed in the localpart.
    assert!(matches!(
        Jid::parse("\u{265a}@example.com"),
        Err(JidError::Precis {
            part: JidPart::Localpart,
            ..
        })
    ));
    // 22 and 23: empty domainpart.
    assert_eq!(
        Jid::parse("juliet@"),
        Err(JidError::Empty(JidPart::Domainpart))
    );
    assert_eq!(
        Jid::parse("/foobar"),
        Err(JidError::Empty(JidPart::Domainpart))
    );
}

/// Example 18 (`juliet@example.com/ foo`) is listed as invalid for its leading space, but
/// the OpaqueString profile the resourcepart uses allows spaces anywhere; this crate
/// accepts it (see the crate documentation) and keeps the space.
#[test]
fn rfc7622_example_18_is_accepted_with_its_space() {
    let j = Jid::parse("juliet@example.com/ foo").unwrap();
    assert_eq!(j.resource(), Some(" foo"));
    assert_ne!(j, Jid::parse("juliet@example.com/foo").unwrap());
}

#[test]
fn split_order() {
    // §3.1: the first '/' ends the domainpart; later '/' and '@' belong to the resource.
    assert_eq!(
        parts("juliet@example.com/foo/bar@baz"),
        p(Some("juliet"), "example.com", Some("foo/bar@baz"))
    );
    // An '@' after the first '/' does not make a localpart.
    assert_eq!(
        parts("example.com/a@b"),
        p(None, "example.com", Some("a@b"))
    );
    // Two '@' before the '/': the second one lands in the domainpart, which refuses it.
    assert!(matches!(
        Jid::parse("user@host@example.com"),
        Err(JidError::InvalidDomain(_))
    ));
    assert_eq!(Jid::parse(""), Err(JidError::Empty(JidPart::Domainpart)));
    assert!(Jid::parse("@").is_err());
    assert!(Jid::parse("/").is_err());
}

#[test]
fn case_of_each_part() {
    let j = Jid::parse("Juliet@Example.COM/Balcony").unwrap();
    assert_eq!(j.as_str(), "juliet@example.com/Balcony");
    assert_eq!(j, Jid::parse("JULIET@EXAMPLE.COM/Balcony").unwrap());
    assert_ne!(j, Jid::parse("juliet@example.com/balcony").unwrap());
}

#[test]
fn unicode_localparts() {
    // Width mapping: fullwidth letters become ASCII, then case mapping applies.
    assert_eq!(
        parts("ＪＵＬＩＥＴ@example.com"),
        p(Some("juliet"), "example.com", None)
    );
    assert_eq!(
        Jid::parse("ＪＵＬＩＥＴ@example.com").unwrap(),
        Jid::parse("juliet@example.com").unwrap()
    );
    // A fullwidth solidus in the localpart maps to '/', which is forbidden there.
    assert_eq!(
        Jid::parse("a／b@example.com"),
        Err(JidError::ForbiddenLocalpartChar('/'))
    );
    // Case mapping beyond ASCII.
    assert_eq!(
        parts("ÉLODIE@example.com"),
        p(Some("élodie"), "example.com", None)
    );
    assert_eq!(
        parts("ДМИТРИЙ@example.com"),
        p(Some("дмитрий"), "example.com", None)
    );
    // NFC: decomposed input composes.
    assert_eq!(
        Jid::parse("e\u{301}lodie@example.com").unwrap(),
        Jid::parse("élodie@example.com").unwrap()
    );
    // Non-Latin scripts are fine.
    assert_eq!(
        parts("山田@example.jp"),
        p(Some("山田"), "example.jp", None)
    );
    // A ligature has a compatibility decomposition and is refused.
    assert!(Jid::parse("\u{fb01}le@example.com").is_err());
    // Right-to-left localpart: the bidi rule accepts an all-RTL string...
    assert!(Jid::parse("\u{5e9}\u{5dc}\u{5d5}\u{5dd}@example.com").is_ok());
    // ...and refuses one that starts with a European number and mixes in RTL.
    assert!(Jid::parse("1\u{5e9}@example.com").is_err());
}

#[test]
fn unicode_resourceparts() {
    // The resource keeps case and width; non-ASCII spaces become ASCII spaces.
    assert_eq!(
        parts("a@example.com/ＡＢ\u{a0}c"),
        p(Some("a"), "example.com", Some("ＡＢ c"))
    );
    assert_eq!(
        parts("a@example.com/🍺"),
        p(Some("a"), "example.com", Some("🍺"))
    );
    assert!(Jid::parse("a@example.com/x\u{0}y").is_err());
    assert!(Jid::parse("a@example.com/x\u{7f}y").is_err());
}

#[test]
fn domainparts() {
    assert_eq!(
        parts("juliet@example.com."),
        p(Some("juliet"), "example.com", None)
    );
    assert_eq!(
        Jid::parse("juliet@example.com.").unwrap(),
        Jid::parse("juliet@example.com").unwrap()
    );
    assert_eq!(
        parts("juliet@xn--mnchen-3ya.example/r"),
        p(Some("juliet"), "münchen.example", Some("r"))
    );
    assert_eq!(
        Jid::parse("juliet@MÜNCHEN.example").unwrap(),
        Jid::parse("juliet@xn--mnchen-3ya.example").unwrap()
    );
    assert_eq!(
        parts("juliet@[2002:4559:1FE2::4559:1FE2]/res"),
        p(Some("juliet"), "[2002:4559:1FE2::4559:1FE2]", Some("res"))
    );
    assert_eq!(
        parts("juliet@123.123.123.123/res"),
        p(Some("juliet"), "123.123.123.123", Some("res"))
    );
    assert_eq!(
        parts("user@CaSe-InSeNsItIvE"),
        p(Some("user"), "case-insensitive", None)
    );
    assert!(Jid::parse("juliet@exa mple.com").is_err());
    assert!(Jid::parse("juliet@[not-v6]").is_err());
    assert!(Jid::parse("juliet@-example.com").is_err());
    assert!(Jid::parse("juliet@example..com").is_err());
}

#[test]
fn typed_parsing() {
    assert!(BareJid::parse("juliet@example.com").is_ok());
    assert_eq!(
        BareJid::parse("juliet@example.com/r"),
        Err(JidError::UnexpectedResource)
    );
    assert!(FullJid::parse("juliet@example.com/r").is_ok());
    assert_eq!(
        FullJid::parse("juliet@example.com"),
        Err(JidError::MissingResource)
    );
    // Errors in the parts take precedence over the kind check.
    assert_eq!(
        FullJid::parse("juliet@example.com/"),
        Err(JidError::Empty(JidPart::Resourcepart))
    );
}

#[test]
fn errors_name_the_part() {
    let e = Jid::parse("a@b/").unwrap_err();
    assert_eq!(e.to_string(), "the resourcepart is empty");
    let e = Jid::parse("foo bar@example.com").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the localpart is refused by its PRECIS profile"),
        "{e}"
    );
}
