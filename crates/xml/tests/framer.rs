//! The framer against RFC 6120 §4 (stream framing) and §11 (restricted XML).

use causerie_xml::{
    Element, FEED_PIECE, Framer, FramerEvent, Limits, NS_STREAMS, NS_XML, Node, XmlError,
};

const HEADER: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' \
    xml:lang='en'>";

/// Feeds everything, then drains: the events, and the error that stopped them if any.
fn run_with(limits: Limits, input: &[u8]) -> (Vec<FramerEvent>, Option<XmlError>) {
    let mut framer = Framer::new(limits);
    framer.feed(input);
    drain(&mut framer)
}

fn run(input: &[u8]) -> (Vec<FramerEvent>, Option<XmlError>) {
    run_with(Limits::default(), input)
}

fn drain(framer: &mut Framer) -> (Vec<FramerEvent>, Option<XmlError>) {
    let mut events = Vec::new();
    loop {
        match framer.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

/// The error a stream with this content (after a valid header) produces.
fn error_in_stream(content: &str) -> XmlError {
    let input = format!("{HEADER}{content}");
    match run(input.as_bytes()) {
        (_, Some(e)) => e,
        (events, None) => panic!("no error for {content:?}, got {events:?}"),
    }
}

fn elements_in_stream(content: &str) -> Vec<Element> {
    let input = format!("{HEADER}{content}");
    let (events, err) = run(input.as_bytes());
    assert_eq!(err, None, "unexpected error for {content:?}");
    events
        .into_iter()
        .filter_map(|e| match e {
            FramerEvent::Element(el) => Some(el),
            _ => None,
        })
        .collect()
}

fn one_element(content: &str) -> Element {
    let mut elements = elements_in_stream(content);
    assert_eq!(elements.len(), 1, "expected one element in {content:?}");
    elements.remove(0)
}

#[test]
fn header_without_declaration() {
    let (events, err) = run(HEADER.as_bytes());
    assert_eq!(err, None);
    let [FramerEvent::StreamOpen(header)] = events.as_slice() else {
        panic!("expected only the header: {events:?}");
    };
    assert_eq!(header.prefix.as_deref(), Some("stream"));
    assert_eq!(header.name, "stream");
    assert_eq!(header.ns, NS_STREAMS);
    assert_eq!(header.default_ns.as_deref(), Some("jabber:client"));
    assert_eq!(
        header.attrs,
        vec![
            ("to".to_owned(), "example.com".to_owned()),
            ("version".to_owned(), "1.0".to_owned()),
            ("xml:lang".to_owned(), "en".to_owned()),
        ]
    );
    assert_eq!(header.attr("to"), Some("example.com"));
    assert_eq!(header.attr("xml:lang"), Some("en"));
    assert_eq!(header.attr("from"), None);
}

#[test]
fn header_with_declaration() {
    for decl in [
        "<?xml version='1.0'?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>\r\n  ",
    ] {
        let input = format!("{decl}{HEADER}<presence/>");
        let (events, err) = run(input.as_bytes());
        assert_eq!(err, None, "{decl}");
        assert_eq!(events.len(), 2, "{decl}");
        assert!(matches!(events[0], FramerEvent::StreamOpen(_)));
    }
}

#[test]
fn byte_order_mark_is_accepted_only_first() {
    let input = format!("\u{FEFF}<?xml version='1.0'?>{HEADER}");
    assert_eq!(run(input.as_bytes()).1, None);
    let input = format!(" \u{FEFF}{HEADER}");
    assert!(run(input.as_bytes()).1.is_some());
    // UTF-16 (RFC 6120 §11.6).
    let err = run(b"\xFE\xFF\x00<").1.unwrap();
    assert_eq!(err.stream_condition(), "unsupported-encoding");
    let err = run(b"\x00<\x00s").1.unwrap();
    assert_eq!(err.stream_condition(), "unsupported-encoding");
}

#[test]
fn declaration_rules() {
    let cases: &[(&str, &str)] = &[
        ("<?xml version='1.1'?>", "restricted-xml"),
        (
            "<?xml version='1.0' encoding='ISO-8859-1'?>",
            "unsupported-encoding",
        ),
        (
            "<?xml version='1.0' encoding='UTF-16'?>",
            "unsupported-encoding",
        ),
        ("<?xml version='1.0' standalone='no'?>", "restricted-xml"),
        ("<?xml encoding='UTF-8'?>", "not-well-formed"),
        ("<?xml version='1.0'encoding='UTF-8'?>", "not-well-formed"),
        (
            "<?xml version='1.0' standalone='yes' encoding='UTF-8'?>",
            "not-well-formed",
        ),
        ("<?xml version='x'?>", "not-well-formed"),
        ("<?xml version=1.0?>", "not-well-formed"),
        // Not at the very start: a processing instruction (RFC 6120 §11.1).
        (" <?xml version='1.0'?>", "restricted-xml"),
        ("<?xml-stylesheet href='a'?>", "restricted-xml"),
    ];
    for (decl, condition) in cases {
        let input = format!("{decl}{HEADER}");
        let err = run(input.as_bytes())
            .1
            .unwrap_or_else(|| panic!("{decl} accepted"));
        assert_eq!(err.stream_condition(), *condition, "{decl}: {err}");
    }
    // A second declaration after the header.
    let err = error_in_stream("<?xml version='1.0'?>");
    assert_eq!(err, XmlError::ProcessingInstruction);
}

#[test]
fn stanzas_keepalives_and_close() {
    let input = format!(
        "{HEADER}\n <message to='a@b'><body>hi</body></message> \r\n\t \
         <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>  </stream:stream>\n"
    );
    let (events, err) = run(input.as_bytes());
    assert_eq!(err, None);
    assert_eq!(events.len(), 4);
    let FramerEvent::Element(message) = &events[1] else {
        panic!("{events:?}")
    };
    assert!(message.is("message", "jabber:client"));
    assert_eq!(message.attr("to"), Some("a@b"));
    assert_eq!(
        message.get_child("body", "jabber:client").unwrap().text(),
        "hi"
    );
    let FramerEvent::Element(iq) = &events[2] else {
        panic!("{events:?}")
    };
    assert!(iq.has_child("ping", "urn:xmpp:ping"));
    assert_eq!(events[3], FramerEvent::StreamClose);
}

#[test]
fn empty_stream_header_opens_and_closes() {
    let input = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>";
    let (events, err) = run(input.as_bytes());
    assert_eq!(err, None);
    assert!(matches!(events[0], FramerEvent::StreamOpen(_)));
    assert_eq!(events[1], FramerEvent::StreamClose);
    assert_eq!(events.len(), 2);
}

#[test]
fn stream_end_must_match_and_end_the_document() {
    let err = error_in_stream("</stream:foo>");
    assert!(matches!(err, XmlError::MismatchedEndTag { .. }), "{err}");
    let err = error_in_stream("</stream:stream><message/>");
    assert_eq!(err, XmlError::ContentAfterClose);
    let (events, err) = run(format!("{HEADER}</stream:stream \n>  ").as_bytes());
    assert_eq!(err, None);
    assert_eq!(events.last(), Some(&FramerEvent::StreamClose));
}

#[test]
fn header_must_be_the_streams_element() {
    let err = run(b"<stream:stream xmlns:stream='urn:other'>").1.unwrap();
    assert_eq!(err.stream_condition(), "invalid-namespace");
    let err = run(b"<stream xmlns='jabber:client'>").1.unwrap();
    assert_eq!(err.stream_condition(), "invalid-namespace");
    let err = run(b"<stream:stream>").1.unwrap();
    assert_eq!(err, XmlError::UndeclaredPrefix("stream".into()));
    let err = run(b"hello").1.unwrap();
    assert_eq!(err.stream_condition(), "not-well-formed");
    // The header prefix need not be `stream`, and the end tag repeats whatever it is.
    let input = "<s:stream xmlns:s='http://etherx.jabber.org/streams'><s:features/></s:stream>";
    let (events, err) = run(input.as_bytes());
    assert_eq!(err, None);
    let FramerEvent::Element(features) = &events[1] else {
        panic!()
    };
    assert!(features.is("features", NS_STREAMS));
    assert_eq!(events[2], FramerEvent::StreamClose);
}

#[test]
fn text_between_top_level_elements_is_refused() {
    for content in ["hello", "<a/>x", "&amp;", "<![CDATA[x]]>"] {
        let err = error_in_stream(content);
        assert_eq!(err, XmlError::TextAtStreamLevel, "{content}");
        assert_eq!(err.stream_condition(), "invalid-xml");
    }
}

/// A stream exercising everything the boundary finder must not be fooled by.
fn tricky_stream() -> String {
    format!(
        "<?xml version='1.0'?>{HEADER}\
         <message to='a@b/c' id=\"x'>y\"><body>a &lt; b &amp;&#x1F600; c&gt;</body>\
         <x xmlns='urn:x' a='&apos;&quot;'><![CDATA[<not> a ]] tag ]>]]>tail</x></message>\n\
         <iq type='set' id='2'><query xmlns='jabber:iq:roster'><item jid='été@例え.jp' \
         name='> quoted'/></query></iq>\
         <presence/>\
         <r xmlns='urn:xmpp:sm:3'></r>\
         </stream:stream>"
    )
}

#[test]
fn split_at_every_byte_boundary() {
    let input = tricky_stream();
    let bytes = input.as_bytes();
    let (whole, err) = run(bytes);
    assert_eq!(err, None);
    assert_eq!(whole.len(), 6);
    for split in 0..=bytes.len() {
        let mut framer = Framer::new(Limits::default());
        framer.feed(&bytes[..split]);
        let (mut events, err) = drain(&mut framer);
        assert_eq!(err, None, "split at {split}");
        framer.feed(&bytes[split..]);
        let (rest, err) = drain(&mut framer);
        assert_eq!(err, None, "split at {split}");
        events.extend(rest);
        assert_eq!(events, whole, "split at {split}");
    }
    // One byte at a time, draining after each.
    let mut framer = Framer::new(Limits::default());
    let mut events = Vec::new();
    for b in bytes {
        framer.feed(std::slice::from_ref(b));
        let (more, err) = drain(&mut framer);
        assert_eq!(err, None);
        events.extend(more);
    }
    assert_eq!(events, whole);
}

#[test]
fn element_content_is_decoded() {
    let input = tricky_stream();
    let (events, _) = run(input.as_bytes());
    let FramerEvent::Element(message) = &events[1] else {
        panic!()
    };
    assert_eq!(message.attr("id"), Some("x'>y"));
    let body = message.get_child("body", "jabber:client").unwrap();
    assert_eq!(body.text(), "a < b &\u{1F600} c>");
    let x = message.get_child("x", "urn:x").unwrap();
    assert_eq!(x.attr("a"), Some("'\""));
    assert_eq!(x.text(), "<not> a ]] tag ]>tail");
    assert_eq!(x.nodes().len(), 1, "CDATA and text merge into one node");
    let FramerEvent::Element(iq) = &events[2] else {
        panic!()
    };
    let item = iq
        .get_child("query", "jabber:iq:roster")
        .and_then(|q| q.get_child("item", "jabber:iq:roster"))
        .unwrap();
    assert_eq!(item.attr("jid"), Some("été@例え.jp"));
    assert_eq!(item.attr("name"), Some("> quoted"));
}

#[test]
fn line_ends_and_attribute_whitespace_are_normalized() {
    let el =
        one_element("<m a='x\ty\r\nz' b='&#9;&#10;&#13;'>l1\r\nl2\rl3<![CDATA[\r\n]]>&#13;</m>");
    assert_eq!(el.attr("a"), Some("x y z"));
    assert_eq!(el.attr("b"), Some("\t\n\r"));
    assert_eq!(el.text(), "l1\nl2\nl3\n\r");
}

#[test]
fn whitespace_text_inside_elements_is_kept() {
    let el = one_element("<m>\n  <body> </body>\n</m>");
    assert_eq!(el.nodes().len(), 3);
    assert!(matches!(&el.nodes()[0], Node::Text(t) if t == "\n  "));
    assert_eq!(el.get_child("body", "jabber:client").unwrap().text(), " ");
}

#[test]
fn namespaces_default_prefixed_and_redeclared() {
    let el = one_element(
        "<message><body>x</body>\
         <a xmlns='urn:a'><b/><c xmlns='urn:c'><d/></c><e xmlns=''/></a>\
         <p:f xmlns:p='urn:p'><p:g/><h/><p:i xmlns:p='urn:q'/></p:f>\
         <stream:error/></message>",
    );
    assert!(el.is("message", "jabber:client"));
    assert!(el.has_child("body", "jabber:client"));
    let a = el.get_child("a", "urn:a").unwrap();
    assert!(a.has_child("b", "urn:a"));
    assert!(a.get_child("c", "urn:c").unwrap().has_child("d", "urn:c"));
    assert!(a.has_child("e", ""));
    let f = el.get_child("f", "urn:p").unwrap();
    assert!(f.has_child("g", "urn:p"));
    assert!(f.has_child("h", "jabber:client"));
    assert!(f.has_child("i", "urn:q"));
    assert!(el.has_child("error", NS_STREAMS));
    // Declarations are not attributes.
    assert_eq!(a.attrs().count(), 0);
    assert_eq!(f.attrs().count(), 0);
}

#[test]
fn prefixes_declared_on_the_header_are_in_scope() {
    let input = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        xmlns:db='jabber:server:dialback'><db:result from='a' to='b'>key</db:result>";
    let (events, err) = run(input.as_bytes());
    assert_eq!(err, None);
    let FramerEvent::Element(result) = &events[1] else {
        panic!()
    };
    assert!(result.is("result", "jabber:server:dialback"));
    assert_eq!(result.text(), "key");
}

#[test]
fn attribute_names_and_prefixes() {
    let el = one_element("<m xml:lang='fr' xmlns:x='urn:x' x:a='1' a='2'/>");
    assert_eq!(el.attr("xml:lang"), Some("fr"));
    assert_eq!(el.attr("x:a"), Some("1"));
    assert_eq!(el.attr("a"), Some("2"));
    assert_eq!(el.attr_ns("x:a"), Some("urn:x"));
    assert_eq!(el.attr_ns("xml:lang"), Some(NS_XML));
    assert_eq!(el.attrs().count(), 3);
    assert_eq!(el.prefixes().collect::<Vec<_>>(), [("x", "urn:x")]);
}

#[test]
fn namespace_errors() {
    let cases: &[(&str, &str)] = &[
        ("<x:m/>", "bad-namespace-prefix"),
        ("<m x:a='1'/>", "bad-namespace-prefix"),
        ("<m><x:n/></m>", "bad-namespace-prefix"),
        ("<m xmlns:x='urn:x'/><x:n/>", "bad-namespace-prefix"),
        ("<m xmlns:x=''/>", "bad-namespace-prefix"),
        ("<m xmlns:xmlns='urn:x'/>", "bad-namespace-prefix"),
        ("<xmlns:m/>", "bad-namespace-prefix"),
        ("<m xmlns:xml='urn:x'/>", "invalid-namespace"),
        (
            "<m xmlns:x='http://www.w3.org/XML/1998/namespace'/>",
            "invalid-namespace",
        ),
        (
            "<m xmlns='http://www.w3.org/2000/xmlns/'/>",
            "invalid-namespace",
        ),
        (
            "<m xmlns:a='urn:x' xmlns:b='urn:x' a:z='1' b:z='2'/>",
            "not-well-formed",
        ),
        ("<m:n:o/>", "not-well-formed"),
        ("<m :a='1'/>", "not-well-formed"),
    ];
    for (content, condition) in cases {
        let err = error_in_stream(content);
        assert_eq!(err.stream_condition(), *condition, "{content}: {err}");
    }
    // Declaring `xml` to its own namespace is allowed.
    one_element("<m xmlns:xml='http://www.w3.org/XML/1998/namespace'/>");
}

#[test]
fn syntax_errors() {
    for content in [
        "<a></b>",
        "<a><b></a></b>",
        "<a b='1'c='2'/>",
        "<a b=1/>",
        "<a b/>",
        "<a b='1' b='2'/>",
        "<a b='<'/>",
        "<a>]]></a>",
        "<a>&</a>",
        "<a>& b;</a>",
        "<a b='&'/>",
        "<1a/>",
        "< a/>",
        "<a/ >",
        "<a <b/>",
        "<a></a x>",
        "<a></ a>",
        "<>",
        "<a></a b='1'>",
        "<a><!x></a>",
        "<a><![CDAT[x]]></a>",
    ] {
        let input = format!("{HEADER}{content}<z/>");
        let (_, err) = run(input.as_bytes());
        let err = err.unwrap_or_else(|| panic!("accepted {content:?}"));
        assert_eq!(
            err.stream_condition(),
            "not-well-formed",
            "{content}: {err}"
        );
    }
}

#[test]
fn restricted_xml_is_refused() {
    let cases: &[(&str, XmlError)] = &[
        ("<!-- hi -->", XmlError::Comment),
        ("<a><!-- hi --></a>", XmlError::Comment),
        ("<?php x?>", XmlError::ProcessingInstruction),
        ("<a><?php x?></a>", XmlError::ProcessingInstruction),
        ("<a><!DOCTYPE a></a>", XmlError::Doctype),
        ("<a>&xxe;</a>", XmlError::UndefinedEntity("xxe".into())),
        ("<a b='&nbsp;'/>", XmlError::UndefinedEntity("nbsp".into())),
    ];
    for (content, expected) in cases {
        let err = error_in_stream(content);
        assert_eq!(&err, expected, "{content}");
        assert_eq!(err.stream_condition(), "restricted-xml");
    }
    for prolog in [
        "<!DOCTYPE stream>",
        "<!-- c -->",
        "<?xml version='1.0'?><!DOCTYPE x SYSTEM 'file:///etc/passwd'>",
    ] {
        let input = format!("{prolog}{HEADER}");
        let err = run(input.as_bytes()).1.unwrap();
        assert_eq!(err.stream_condition(), "restricted-xml", "{prolog}");
    }
}

#[test]
fn entity_bombs_are_refused_on_sight() {
    let mut laughs =
        String::from("<?xml version='1.0'?>\n<!DOCTYPE lolz [\n <!ENTITY lol 'lol'>\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            " <!ENTITY lol{i} '{}'>\n",
            format!("&{prev};").repeat(10)
        ));
    }
    laughs.push_str("]>\n<lolz>&lol9;</lolz>");
    let mut framer = Framer::new(Limits::default());
    let mut fed = 0;
    let mut refused = None;
    for chunk in laughs.as_bytes().chunks(16) {
        framer.feed(chunk);
        fed += chunk.len();
        if let Err(e) = framer.next_event() {
            refused = Some(e);
            break;
        }
    }
    assert_eq!(refused, Some(XmlError::Doctype));
    // Refused within the first few bytes of `<!DOCTYPE`, nothing of it kept.
    assert!(
        fed <= "<?xml version='1.0'?>\n<!DOCTYPE".len() + 16,
        "fed {fed}"
    );
    assert_eq!(framer.buffered(), 0);
    assert!(framer.capacity() <= 1024);

    // An external entity inside the stream: a DTD is refused wherever it appears.
    let err =
        error_in_stream("<!DOCTYPE x [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]><x>&xxe;</x>");
    assert_eq!(err, XmlError::Doctype);
}

#[test]
fn characters_must_be_xml_chars() {
    let cases: &[(&str, XmlError)] = &[
        ("<a>&#0;</a>", XmlError::InvalidChar(0)),
        ("<a>&#x1;</a>", XmlError::InvalidChar(1)),
        ("<a b='&#xD800;'/>", XmlError::InvalidChar(0xD800)),
        ("<a>&#xFFFF;</a>", XmlError::InvalidChar(0xFFFF)),
        ("<a>&#x110000;</a>", XmlError::InvalidChar(0x110000)),
        ("<a>\u{1}</a>", XmlError::InvalidChar(1)),
        ("<a b='\u{1F}'/>", XmlError::InvalidChar(0x1F)),
        ("<a>\u{FFFE}</a>", XmlError::InvalidChar(0xFFFE)),
        ("<a><![CDATA[\u{0}]]></a>", XmlError::InvalidChar(0)),
        ("<a>&#;</a>", XmlError::BadCharRef),
        ("<a>&#x;</a>", XmlError::BadCharRef),
        ("<a>&#12a;</a>", XmlError::BadCharRef),
    ];
    for (content, expected) in cases {
        assert_eq!(&error_in_stream(content), expected, "{content:?}");
    }
    assert_eq!(
        error_in_stream("<a>&#0;</a>").stream_condition(),
        "not-well-formed"
    );
    // Allowed edge characters.
    let el = one_element(
        "<a>&#x9;&#xA;&#xD;&#x20;&#xD7FF;&#xE000;&#xFFFD;&#x10000;&#x10FFFF;\u{FFFD}</a>",
    );
    assert_eq!(
        el.text(),
        "\t\n\r \u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}\u{FFFD}"
    );
}

#[test]
fn invalid_utf8_is_unsupported_encoding() {
    for bad in [
        &b"<a>\xFF</a>"[..],
        b"<a b='\xC3'/>",
        b"<a>\xED\xA0\x80</a>",
        b"<a>\xC0\xAF</a>",
        b"<\xE9/>",
    ] {
        let mut input = HEADER.as_bytes().to_vec();
        input.extend_from_slice(bad);
        let err = run(&input).1.unwrap();
        assert_eq!(err, XmlError::InvalidUtf8, "{bad:?}");
        assert_eq!(err.stream_condition(), "unsupported-encoding");
    }
    let err = run(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='\xFF'>")
        .1
        .unwrap();
    assert_eq!(err, XmlError::InvalidUtf8);
}

#[test]
fn stanza_size_is_limited_before_the_element_completes() {
    const TOTAL: usize = 10 * 1024 * 1024;
    let limits = Limits::default();
    let slack = 2 * FEED_PIECE;
    for chunk_len in [1000, 4096, 100_000] {
        let mut framer = Framer::new(limits);
        framer.feed(HEADER.as_bytes());
        assert!(matches!(
            framer.next_event(),
            Ok(Some(FramerEvent::StreamOpen(_)))
        ));
        let opening = b"<message><body>";
        framer.feed(opening);
        let chunk = vec![b'a'; chunk_len];
        let mut fed = opening.len();
        let mut refused_at = None;
        // Feed all 10 MiB of an element that never ends, draining after every read as a
        // connection's reader would.
        while fed < TOTAL {
            framer.feed(&chunk);
            fed += chunk_len;
            assert!(
                framer.buffered() <= limits.max_stanza_bytes + slack,
                "buffered {} after {fed}",
                framer.buffered()
            );
            assert!(framer.capacity() <= limits.max_stanza_bytes + slack);
            match framer.next_event() {
                Ok(None) => assert!(refused_at.is_none(), "error forgotten after {fed}"),
                Err(e) => {
                    assert_eq!(
                        e,
                        XmlError::StanzaTooLarge {
                            limit: limits.max_stanza_bytes
                        }
                    );
                    assert_eq!(e.stream_condition(), "policy-violation");
                    refused_at.get_or_insert(fed);
                }
                Ok(Some(event)) => panic!("unexpected {event:?}"),
            }
        }
        // Refused with the read that took the element past the limit.
        let refused_at = refused_at.expect("never refused");
        assert!(
            refused_at > limits.max_stanza_bytes,
            "refused at {refused_at}"
        );
        assert!(
            refused_at <= limits.max_stanza_bytes + chunk_len,
            "refused at {refused_at}"
        );
        assert_eq!(framer.buffered(), 0);
    }
}

#[test]
fn stanza_size_counts_the_whole_element_only() {
    let limits = Limits {
        max_stanza_bytes: 100,
        ..Limits::default()
    };
    let exact = format!("<m>{}</m>", "x".repeat(100 - 7));
    assert_eq!(exact.len(), 100);
    let input = format!("{HEADER}{exact}{}{exact}", " ".repeat(5000));
    let (events, err) = run_with(limits, input.as_bytes());
    assert_eq!(err, None);
    assert_eq!(events.len(), 3);
    let over = format!("<m>{}</m>", "x".repeat(100 - 6));
    let input = format!("{HEADER}{exact}{over}");
    let (events, err) = run_with(limits, input.as_bytes());
    assert_eq!(events.len(), 2, "elements before the error are delivered");
    assert_eq!(err, Some(XmlError::StanzaTooLarge { limit: 100 }));
}

#[test]
fn depth_is_limited() {
    let limits = Limits::default();
    let nested = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    assert_eq!(elements_in_stream(&nested(32)).len(), 1);
    assert_eq!(
        error_in_stream(&nested(33)),
        XmlError::TooDeep { limit: 32 }
    );
    let empty_at_33 = format!("{}<b/>{}", "<a>".repeat(32), "</a>".repeat(32));
    assert_eq!(
        error_in_stream(&empty_at_33),
        XmlError::TooDeep { limit: 32 }
    );
    // Refused while still open.
    let mut framer = Framer::new(limits);
    framer.feed(HEADER.as_bytes());
    framer.feed("<a>".repeat(33).as_bytes());
    let (_, err) = drain(&mut framer);
    assert_eq!(err, Some(XmlError::TooDeep { limit: 32 }));
}

#[test]
fn attributes_are_limited() {
    let with_attrs = |n: usize| {
        let attrs: String = (0..n).map(|i| format!(" a{i}='{i}'")).collect();
        format!("<m{attrs}/>")
    };
    assert_eq!(one_element(&with_attrs(64)).attrs().count(), 64);
    assert_eq!(
        error_in_stream(&with_attrs(65)),
        XmlError::TooManyAttributes { limit: 64 }
    );
    // Namespace declarations count, and the count is checked before the tag ends.
    let mut framer = Framer::new(Limits::default());
    framer.feed(HEADER.as_bytes());
    let decls: String = (0..65).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
    framer.feed(format!("<m{decls}").as_bytes());
    let (_, err) = drain(&mut framer);
    assert_eq!(err, Some(XmlError::TooManyAttributes { limit: 64 }));
}

#[test]
fn header_size_is_limited_before_it_completes() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='");
    framer.feed(&[b'a'; 5000]);
    let err = framer.next_event().unwrap_err();
    assert_eq!(err, XmlError::HeaderTooLarge { limit: 4096 });
    assert_eq!(err.stream_condition(), "policy-violation");
    // Whitespace before the header counts too.
    let input = format!("{}{HEADER}", " ".repeat(5000));
    assert_eq!(
        run(input.as_bytes()).1,
        Some(XmlError::HeaderTooLarge { limit: 4096 })
    );
}

#[test]
fn reset_restarts_the_stream() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(
        format!("<?xml version='1.0'?>{HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .as_bytes(),
    );
    let (events, err) = drain(&mut framer);
    assert_eq!(err, None);
    assert_eq!(events.len(), 2);
    framer.reset();
    assert_eq!(framer.buffered(), 0);
    // A new header, with a new declaration and a different default namespace.
    framer.feed(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
          xmlns:stream='http://etherx.jabber.org/streams'><message/>",
    );
    let (events, err) = drain(&mut framer);
    assert_eq!(err, None);
    let FramerEvent::StreamOpen(header) = &events[0] else {
        panic!()
    };
    assert_eq!(header.default_ns.as_deref(), Some("jabber:server"));
    let FramerEvent::Element(message) = &events[1] else {
        panic!()
    };
    assert!(message.is("message", "jabber:server"));
    // Reset also clears an error.
    framer.feed(b"<!-- x -->");
    assert!(framer.next_event().is_err());
    framer.reset();
    framer.feed(HEADER.as_bytes());
    assert!(matches!(
        framer.next_event(),
        Ok(Some(FramerEvent::StreamOpen(_)))
    ));
}

#[test]
fn buffered_reports_pipelined_bytes() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(HEADER.as_bytes());
    assert!(matches!(
        framer.next_event(),
        Ok(Some(FramerEvent::StreamOpen(_)))
    ));
    let pipelined = "<message to='x'><body>sneaky</body></message><presence";
    framer
        .feed(format!("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{pipelined}").as_bytes());
    let Ok(Some(FramerEvent::Element(starttls))) = framer.next_event() else {
        panic!()
    };
    assert!(starttls.is("starttls", "urn:ietf:params:xml:ns:xmpp-tls"));
    assert_eq!(framer.buffered(), pipelined.len());

    // Whitespace after `<starttls/>` is not content.
    let mut framer = Framer::new(Limits::default());
    framer.feed(
        format!("{HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\r\n ").as_bytes(),
    );
    let (events, _) = drain(&mut framer);
    assert_eq!(events.len(), 2);
    assert_eq!(framer.buffered(), 0);
    // A partial tag is content.
    framer.feed(b"<");
    assert_eq!(framer.next_event(), Ok(None));
    assert_eq!(framer.buffered(), 1);
}

#[test]
fn buffer_shrinks_back_after_a_large_stanza() {
    let mut framer = Framer::new(Limits::default());
    assert_eq!(framer.capacity(), 0);
    framer.feed(HEADER.as_bytes());
    let big = format!("<message><body>{}</body></message>", "x".repeat(200_000));
    framer.feed(big.as_bytes());
    let (events, err) = drain(&mut framer);
    assert_eq!(err, None);
    assert_eq!(events.len(), 2);
    assert!(framer.capacity() <= 1024, "capacity {}", framer.capacity());
    framer.feed(b"<presence/>");
    assert_eq!(drain(&mut framer).0.len(), 1);
    framer.shrink();
    assert!(framer.capacity() <= 1024);
}

#[test]
fn keepalives_do_not_accumulate() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(HEADER.as_bytes());
    drain(&mut framer);
    for _ in 0..10_000 {
        framer.feed(b" ");
        assert_eq!(framer.next_event(), Ok(None));
    }
    assert_eq!(framer.buffered(), 0);
    assert!(framer.capacity() <= 1024);
}

#[test]
fn errors_are_final_and_come_after_earlier_events() {
    let input = format!("{HEADER}<a/><b/><!-- c --><d/>");
    let mut framer = Framer::new(Limits::default());
    framer.feed(input.as_bytes());
    let (events, err) = drain(&mut framer);
    assert_eq!(events.len(), 3);
    assert_eq!(err, Some(XmlError::Comment));
    assert_eq!(framer.next_event(), Err(XmlError::Comment));
    framer.feed(b"<e/>");
    assert_eq!(framer.next_event(), Err(XmlError::Comment));
}

#[test]
fn parse_errors_are_final_too() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(format!("{HEADER}<a></b><c/>").as_bytes());
    let (_, err) = drain(&mut framer);
    assert!(matches!(err, Some(XmlError::MismatchedEndTag { .. })));
    assert!(framer.next_event().is_err());
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn element_parse_standalone() {
    let el = Element::parse(
        b"  <message to='a'><stream:error/><x xmlns='urn:x'/></message>\n",
        "jabber:client",
    )
    .unwrap();
    assert!(el.is("message", "jabber:client"));
    assert!(el.has_child("error", NS_STREAMS));
    assert!(el.has_child("x", "urn:x"));
    assert!(Element::parse(b"<a/><b/>", "").is_err());
    assert!(Element::parse(b"<a>", "").is_err());
    assert!(Element::parse(b"", "").is_err());
    assert!(Element::parse(b"text", "").is_err());
    assert_eq!(Element::parse(b"<!--x--><a/>", ""), Err(XmlError::Comment));
    assert_eq!(
        Element::parse(b"<!DOCTYPE a><a/>", ""),
        Err(XmlError::Doctype)
    );
    let limits = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    assert_eq!(
        Element::parse_with_limits(b"<a><b><c/></b></a>", "", &limits),
        Err(XmlError::TooDeep { limit: 2 })
    );
}

#[test]
fn restart_keeps_a_pipelined_header() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(
        format!(
            "{HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>\
             <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             to='example.com' version='1.0'><iq type='set' id='b'/>"
        )
        .as_bytes(),
    );
    assert!(matches!(
        framer.next_event(),
        Ok(Some(FramerEvent::StreamOpen(_)))
    ));
    let Ok(Some(FramerEvent::Element(auth))) = framer.next_event() else {
        panic!()
    };
    assert_eq!(auth.text(), "AA==");
    assert!(framer.buffered() > 0);
    framer.restart();
    let (events, err) = drain(&mut framer);
    assert_eq!(err, None);
    assert!(matches!(events[0], FramerEvent::StreamOpen(_)));
    let FramerEvent::Element(iq) = &events[1] else {
        panic!()
    };
    assert_eq!(iq.attr("id"), Some("b"));
    assert_eq!(framer.buffered(), 0);
    // With nothing pending, restart is a reset.
    framer.restart();
    framer.feed(b"<?xml version='1.0'?>");
    assert_eq!(framer.next_event(), Ok(None));
}

#[test]
fn namespace_declarations_in_scope_are_bounded() {
    let decls = |n: usize| -> String {
        (0..n)
            .map(|i| format!("<e{i} xmlns:p{i}='urn:{i}'>"))
            .collect::<String>()
    };
    let closes = |n: usize| -> String { (0..n).rev().map(|i| format!("</e{i}>")).collect() };
    // 30 levels of 4 declarations each: within the bound.
    let wide: String = (0..30)
        .map(|i| format!("<e{i} xmlns:a='u' xmlns:b='u' xmlns:c='u' xmlns:d='u'>"))
        .collect();
    let input = format!("{wide}<a:x/>{}", closes(30));
    assert!(one_element(&input).children().next().is_some());
    let input = format!("{}{}", decls(20), closes(20));
    one_element(&input);
    let many: String = (0..30)
        .map(|i| {
            let attrs: String = (0..5).map(|j| format!(" xmlns:q{j}='u'")).collect();
            format!("<e{i}{attrs}>")
        })
        .collect();
    let err = error_in_stream(&format!("{many}{}", closes(30)));
    assert_eq!(err, XmlError::TooManyNamespaceDeclarations { limit: 128 });
    assert_eq!(err.stream_condition(), "policy-violation");
}

#[test]
fn debug_output_shows_no_buffered_content() {
    let mut framer = Framer::new(Limits::default());
    framer.feed(format!("{HEADER}<auth mechanism='PLAIN'>c2VjcmV0").as_bytes());
    let _ = drain(&mut framer);
    let shown = format!("{framer:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(shown.contains("buffered"));
}

#[test]
fn peer_strings_in_errors_are_clipped() {
    let long = "p".repeat(10_000);
    let err = error_in_stream(&format!("<{long}:a/>"));
    let XmlError::UndeclaredPrefix(prefix) = &err else {
        panic!("{err:?}")
    };
    assert!(prefix.chars().count() <= 65);
    assert!(err.to_string().len() < 200);
}
