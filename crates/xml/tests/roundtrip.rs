//! parse(serialize(x)) == x over generated element trees, through `Element::parse` and through
//! the framer.

use causerie_xml::{Element, Framer, FramerEvent, Limits, NS_STREAMS, escape_attr};
use proptest::prelude::*;

const CONTENT_NS: &str = "jabber:client";

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,6}",
        1 => "[a-z]{1,3}[é中ß·][a-z0-9]{0,2}",
    ]
}

fn namespace() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        CONTENT_NS,
        CONTENT_NS,
        "urn:a",
        "urn:b:c",
        "",
        NS_STREAMS,
        "http://example.com/x?a=1&b='2'\"<>",
    ])
}

/// Text and attribute values with every character that needs escaping or normalization.
fn chars() -> impl Strategy<Value = String> {
    "[a-z <>&\"'\t\r\n\\]é\u{1F600}\u{FFFD}]{0,12}"
}

/// A qualified attribute name and the prefix binding it needs.
type AttrName = (String, Option<(&'static str, &'static str)>);

fn attr_name() -> impl Strategy<Value = AttrName> {
    prop_oneof![
        // `xmlns` would be a declaration, not an attribute.
        3 => name().prop_filter("declaration", |n| n != "xmlns").prop_map(|n| (n, None)),
        1 => Just(("xml:lang".to_owned(), None)),
        1 => name().prop_map(|n| (format!("p:{n}"), Some(("p", "urn:p")))),
        1 => name().prop_map(|n| (format!("q:{n}"), Some(("q", "urn:a")))),
        1 => name().prop_map(|n| (format!("stream:{n}"), Some(("stream", "urn:s")))),
    ]
}

#[derive(Debug, Clone)]
enum Child {
    Element(Element),
    Text(String),
}

fn build(name: String, ns: &str, attrs: Vec<(AttrName, String)>, children: Vec<Child>) -> Element {
    let mut e = Element::new(name, ns);
    let mut seen_local: Vec<(Option<&str>, String)> = Vec::new();
    for ((qname, binding), value) in attrs {
        // Skip duplicates by qualified name and by expanded name.
        let local = qname
            .split_once(':')
            .map_or(qname.as_str(), |(_, l)| l)
            .to_owned();
        let key = (binding.map(|b| b.1), local);
        if e.attr(&qname).is_some() || (key.0.is_some() && seen_local.contains(&key)) {
            continue;
        }
        seen_local.push(key);
        if let Some((prefix, uri)) = binding
            && e.prefixes().all(|(p, _)| p != prefix)
        {
            e.declare_prefix(prefix, uri);
        }
        e.set_attr(qname, value);
    }
    for child in children {
        match child {
            Child::Element(c) => e.push_child(c),
            Child::Text(t) => e.push_text(t),
        }
    }
    e
}

fn element() -> impl Strategy<Value = Element> {
    let attrs = || prop::collection::vec((attr_name(), chars()), 0..4);
    let leaf = (name(), namespace(), attrs(), prop::option::of(chars())).prop_map(
        |(name, ns, attrs, text)| {
            build(name, ns, attrs, text.map(Child::Text).into_iter().collect())
        },
    );
    leaf.prop_recursive(4, 32, 5, move |inner| {
        (
            name(),
            namespace(),
            attrs(),
            prop::collection::vec(
                prop_oneof![
                    2 => inner.prop_map(Child::Element),
                    1 => chars().prop_map(Child::Text),
                ],
                0..5,
            ),
        )
            .prop_map(|(name, ns, attrs, children)| build(name, ns, attrs, children))
    })
}

fn frame_all(input: &[u8]) -> Vec<Element> {
    let mut framer = Framer::new(Limits::default());
    framer.feed(input);
    let mut out = Vec::new();
    loop {
        match framer.next_event() {
            Ok(Some(FramerEvent::Element(e))) => out.push(e),
            Ok(Some(_)) => {}
            Ok(None) => return out,
            Err(e) => panic!(
                "framer refused its own output: {e}\n{}",
                String::from_utf8_lossy(input)
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_of_serialized_is_identity(e in element()) {
        let mut out = Vec::new();
        e.write_to(&mut out, CONTENT_NS);
        let back = Element::parse(&out, CONTENT_NS);
        prop_assert_eq!(back.as_ref(), Ok(&e), "{}", String::from_utf8_lossy(&out));

        let standalone = e.to_xml();
        prop_assert_eq!(Element::parse(standalone.as_bytes(), ""), Ok(e));
    }

    #[test]
    fn framer_reads_serialized_stanzas(elements in prop::collection::vec(element(), 1..4)) {
        let mut input = format!(
            "<stream:stream xmlns='{CONTENT_NS}' xmlns:stream='{NS_STREAMS}'>"
        ).into_bytes();
        for e in &elements {
            e.write_to(&mut input, CONTENT_NS);
            input.extend_from_slice(b"\n");
        }
        prop_assert_eq!(frame_all(&input), elements);
    }
}

#[test]
fn header_attributes_round_trip_through_escape_attr() {
    let value = "a'b\"c<d>e&f\tg\nh\ri";
    let mut input = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='".to_vec();
    escape_attr(value, &mut input);
    input.extend_from_slice(b"'>");
    let mut framer = Framer::new(Limits::default());
    framer.feed(&input);
    let Ok(Some(FramerEvent::StreamOpen(header))) = framer.next_event() else {
        panic!("header refused")
    };
    assert_eq!(header.attr("id"), Some(value));
}

#[test]
fn prefixed_attributes_keep_their_bindings() {
    let e = Element::parse(
        b"<m xmlns:p='urn:p'><n p:a='1'><o xmlns:p='urn:other' p:a='2'/></n></m>",
        CONTENT_NS,
    )
    .unwrap();
    let mut out = Vec::new();
    e.write_to(&mut out, CONTENT_NS);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<m><n xmlns:p='urn:p' p:a='1'><o xmlns:p='urn:other' p:a='2'/></n></m>"
    );
    assert_eq!(Element::parse(&out, CONTENT_NS), Ok(e));
}
