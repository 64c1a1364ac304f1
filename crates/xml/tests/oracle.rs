//! rxml as an oracle: for generated and mutated streams, the framer and rxml (a restricted-XML
//! parser written for XMPP) must make the same accept/reject decision.
//!
//! Cases where the two differ on purpose, and which are therefore excluded:
//! - limits (`policy-violation`): rxml has none of ours, we have none of its;
//! - character data directly inside the stream element: well-formed XML, which rxml accepts,
//!   but not a valid XMPP stream (RFC 6120 §4.7), which the framer refuses as `invalid-xml`;
//! - a header that is not `{http://etherx.jabber.org/streams}stream` (RFC 6120 §4.8.1),
//!   well-formed for rxml;
//! - a UTF-8 byte order mark at the start, which XML 1.0 §4.3.3 allows and the framer accepts;
//! - `standalone` written in another case than `yes`, which rxml accepts although XML 1.0 §2.9
//!   spells the value in lower case only.
//!
//! And a few where rxml 0.14 departs from XML 1.0 (see `known_rxml_deviation`): it accepts a
//! repeated namespace declaration, refuses a lone CR inside an attribute value, refuses
//! whitespace before the root element when there is no XML declaration, reads a CR in the
//! XML declaration's version as if it were not there, and lacks U+FDF0..U+FFFD in names.

use causerie_xml::{Framer, FramerEvent, Limits, XmlError};
use proptest::prelude::*;
use rxml::Parse;

const HEADER: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xmlns:p='urn:hdr'>";
const CLOSE: &str = "</stream:stream>";

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Reject,
    /// A deliberate difference: not compared.
    Excluded,
}

fn framer_verdict(doc: &[u8]) -> (Verdict, Option<XmlError>) {
    if doc.starts_with(b"\xEF\xBB\xBF") {
        return (Verdict::Excluded, None);
    }
    let mut framer = Framer::new(Limits::default());
    framer.feed(doc);
    let mut closed = false;
    loop {
        match framer.next_event() {
            Ok(Some(FramerEvent::StreamClose)) => closed = true,
            Ok(Some(_)) => {}
            // Without the stream's end tag the document is incomplete.
            Ok(None) if closed => return (Verdict::Accept, None),
            Ok(None) => return (Verdict::Reject, None),
            Err(e) => {
                let excluded = e.is_limit()
                    || matches!(
                        e,
                        XmlError::TextAtStreamLevel | XmlError::InvalidStreamHeader { .. }
                    )
                    || (matches!(e, XmlError::NotWellFormed("malformed standalone value"))
                        && String::from_utf8_lossy(doc)
                            .to_ascii_lowercase()
                            .contains("'yes'"));
                let verdict = if excluded {
                    Verdict::Excluded
                } else {
                    Verdict::Reject
                };
                return (verdict, Some(e));
            }
        }
    }
}

fn rxml_verdict(doc: &[u8]) -> Verdict {
    let mut parser = rxml::Parser::new();
    let mut input = doc;
    loop {
        match parser.parse(&mut input, true) {
            Ok(Some(_)) => continue,
            Ok(None) => return Verdict::Accept,
            Err(_) => return Verdict::Reject,
        }
    }
}

/// Documents on which rxml 0.14 departs from XML 1.0 and the framer follows the standard.
fn known_rxml_deviation(doc: &[u8], ours: &Option<XmlError>) -> bool {
    // XML 1.0 §3.1 (Unique Att Spec) covers namespace declarations too; rxml accepts a
    // repeated `xmlns` or `xmlns:p`.
    if let Some(XmlError::DuplicateAttribute(name)) = ours
        && (name == "xmlns" || name.starts_with("xmlns:"))
    {
        return true;
    }
    // XML 1.0 §2.8: `prolog ::= XMLDecl? Misc*`, so whitespace may precede the root element
    // without a declaration; rxml requires `<` or `<?xml` first.
    if ours.is_none() && doc.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return true;
    }
    // XML 1.0 (Fifth Edition) §2.3 allows U+FDF0..U+FFFD in names; rxml's tables lack them.
    if ours.is_none()
        && String::from_utf8_lossy(doc)
            .chars()
            .any(|c| ('\u{FDF0}'..='\u{FFFC}').contains(&c))
    {
        return true;
    }
    // rxml takes `version='1.0\r'` for version 1.0; the framer reads the value as written.
    if doc.starts_with(b"<?xml") {
        let decl_end = doc.windows(2).position(|w| w == b"?>").unwrap_or(doc.len());
        if doc[..decl_end].contains(&b'\r') {
            return true;
        }
    }
    // A CR not followed by LF is a line end (XML 1.0 §2.11), which attribute-value
    // normalization turns into a space (§3.3.3); rxml refuses it inside attribute values,
    // and after the root element when it is the document's last byte.
    // The same happens to a CR at the very end of the document.
    ours.is_none()
        && (doc.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') || doc.ends_with(b"\r"))
}

fn check(doc: &[u8]) -> Result<(), TestCaseError> {
    let (ours, err) = framer_verdict(doc);
    if ours == Verdict::Excluded {
        return Ok(());
    }
    let theirs = rxml_verdict(doc);
    if ours != theirs && known_rxml_deviation(doc, &err) {
        return Ok(());
    }
    prop_assert_eq!(
        &ours,
        &theirs,
        "framer error: {:?}\ndocument: {:?}",
        err,
        String::from_utf8_lossy(doc)
    );
    Ok(())
}

#[derive(Debug, Clone)]
enum Tree {
    Text(&'static str),
    Element {
        name: &'static str,
        attrs: Vec<&'static str>,
        children: Vec<Tree>,
        self_closing: bool,
    },
}

impl Tree {
    fn render(&self, out: &mut String) {
        match self {
            Tree::Text(t) => out.push_str(t),
            Tree::Element {
                name,
                attrs,
                children,
                self_closing,
            } => {
                out.push('<');
                out.push_str(name);
                for a in attrs {
                    out.push_str(a);
                }
                if children.is_empty() && *self_closing {
                    out.push_str("/>");
                    return;
                }
                out.push('>');
                for c in children {
                    c.render(out);
                }
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    let text = prop::sample::select(vec![
        "hello",
        " ",
        "\n",
        "&amp;",
        "&lt;",
        "&gt;",
        "&quot;",
        "&apos;",
        "&#x41;",
        "&#65;",
        "&#x1F600;",
        "<![CDATA[x<y&z]]>",
        "<![CDATA[]]>",
        "é中",
        "\r\n",
        "a]b",
        "]]",
        "x>y",
    ])
    .prop_map(Tree::Text);
    let name = prop::sample::select(vec![
        "a", "b", "message", "body", "x.y-z", "é", "p:c", "p:d", "q:e", "_u",
    ]);
    let attr = prop::sample::select(vec![
        " id='1'",
        " type=\"chat\"",
        " xmlns='urn:x'",
        " xmlns=''",
        " xmlns:p='urn:p'",
        " xmlns:p=\"urn:p2\"",
        " p:attr='v'",
        " xml:lang='en'",
        " v='&amp;&#x9;&lt;'",
        " w = 'spaced'",
        " x='a>b'",
        " y=\"it's\"",
        "\n\tz='tab'",
    ]);
    let leaf = prop_oneof![
        2 => text.clone(),
        1 => (name.clone(), prop::collection::vec(attr.clone(), 0..3), any::<bool>()).prop_map(
            |(name, attrs, self_closing)| Tree::Element {
                name,
                attrs,
                children: Vec::new(),
                self_closing,
            }
        ),
    ];
    leaf.prop_recursive(4, 24, 4, move |inner| {
        (
            name.clone(),
            prop::collection::vec(attr.clone(), 0..3),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(name, attrs, children)| Tree::Element {
                name,
                attrs,
                children,
                self_closing: false,
            })
    })
}

fn top_level() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            tree().prop_filter("top-level elements only", |t| {
                matches!(t, Tree::Element { .. })
            }),
            prop::sample::select(vec!["", " ", "\n", "\r\n\t "]),
        ),
        0..4,
    )
    .prop_map(|items| {
        let mut out = String::new();
        for (t, ws) in items {
            t.render(&mut out);
            out.push_str(ws);
        }
        out
    })
}

fn document() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            "",
            "<?xml version='1.0'?>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        ]),
        top_level(),
    )
        .prop_map(|(decl, body)| format!("{decl}{HEADER}{body}{CLOSE}").into_bytes())
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, &'static [u8]),
    Delete(usize, usize),
    Replace(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let snippet = prop::sample::select(vec![
        &b"<"[..],
        b">",
        b"&",
        b";",
        b"&amp;",
        b"&foo;",
        b"&#0;",
        b"&#x41;",
        b"&#xD800;",
        b"<!--",
        b"-->",
        b"<?",
        b"?>",
        b"<?xml version='1.0'?>",
        b"<![CDATA[",
        b"]]>",
        b"<!DOCTYPE x>",
        b"'",
        b"\"",
        b"=",
        b" ",
        b"/",
        b"xmlns:p='urn:p' ",
        b" xmlns:p=''",
        b" xmlns:xml='urn:x'",
        b"p:",
        b":",
        b"\x01",
        b"\xEF\xBF\xBE",
        b"\xFF",
        b"\xC3",
        b"\r",
        b"</a>",
        b"<a>",
        b"<b/>",
        b"x",
        "é".as_bytes(),
    ]);
    prop_oneof![
        3 => (any::<usize>(), snippet).prop_map(|(at, s)| Mutation::Insert(at, s)),
        2 => (any::<usize>(), 1usize..4).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let len = doc.len();
    match *m {
        Mutation::Insert(at, s) => {
            let at = at % (len + 1);
            doc.splice(at..at, s.iter().copied());
        }
        Mutation::Delete(at, n) if len > 0 => {
            let at = at % len;
            let end = (at + n).min(len);
            doc.drain(at..end);
        }
        Mutation::Replace(at, b) if len > 0 => {
            let at = at % len;
            doc[at] = b;
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn generated_streams_agree(doc in document()) {
        check(&doc)?;
    }

    #[test]
    fn mutated_streams_agree(
        doc in document(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut doc = doc;
        for m in &mutations {
            apply(&mut doc, m);
        }
        check(&doc)?;
    }
}

/// Hand-picked documents for the rules the two must agree on, so that a regression names
/// the rule.
#[test]
fn known_cases_agree() {
    let bodies: &[&str] = &[
        "<a/>",
        "<a><!-- c --></a>",
        "<a><?pi x?></a>",
        "<a>&foo;</a>",
        "<a>&#0;</a>",
        "<a>&#xFFFE;</a>",
        "<a>\u{1}</a>",
        "<p:a/>",
        "<a xmlns:p=''/>",
        "<a xmlns:xml='urn:x'/>",
        "<a xmlns:p='urn:p' xmlns:q='urn:p' p:x='1' q:x='2'/>",
        "<a b='1' b='2'/>",
        "<a b='1'c='2'/>",
        "<a b='<'/>",
        "<a>]]></a>",
        "<a><![CDATA[<x>]]></a>",
        "<a></b>",
        "<a:b:c/>",
        "<a xml:lang='en'/>",
        "<a xmlns='' />",
    ];
    for body in bodies {
        let doc = format!("{HEADER}{body}{CLOSE}");
        let (ours, err) = framer_verdict(doc.as_bytes());
        let theirs = rxml_verdict(doc.as_bytes());
        assert_eq!(ours, theirs, "{body}: {err:?}");
    }
    for prolog in [
        "<?xml version='1.1'?>",
        "<?xml version='1.0' encoding='latin1'?>",
        "<?xml version='1.0' standalone='no'?>",
        "<!DOCTYPE stream>",
        " <?xml version='1.0'?>",
    ] {
        let doc = format!("{prolog}{HEADER}{CLOSE}");
        let (ours, err) = framer_verdict(doc.as_bytes());
        assert_eq!(ours, Verdict::Reject, "{prolog}: {err:?}");
        assert_eq!(rxml_verdict(doc.as_bytes()), Verdict::Reject, "{prolog}");
    }
}
