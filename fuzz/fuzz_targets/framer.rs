//! Feeds arbitrary bytes to the stream framer in arbitrary chunks. Every element it accepts
//! must serialize to XML that parses back to an equal element, and feeding the same bytes in
//! one piece must give the same events as feeding them in chunks.

#![no_main]

use causerie_xml::{Element, Framer, FramerEvent, Limits, XmlError};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    to='example.com' version='1.0'>";

/// Small limits so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_stanza_bytes: 4096,
    max_depth: 8,
    max_attributes: 8,
    max_header_bytes: 512,
};

fn run(input: &[u8], chunks: &mut dyn FnMut() -> usize) -> (Vec<FramerEvent>, Option<XmlError>) {
    let mut framer = Framer::new(LIMITS);
    let mut events = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let n = chunks().clamp(1, rest.len());
        framer.feed(&rest[..n]);
        rest = &rest[n..];
        loop {
            match framer.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
        // Nothing is held beyond one element at its limit plus one feed piece, apart from
        // complete elements that this loop has just drained.
        assert!(framer.buffered() <= LIMITS.max_stanza_bytes + 2 * causerie_xml::FEED_PIECE);
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(data.len() + HEADER.len());
    if flags & 1 == 1 {
        input.extend_from_slice(HEADER);
    }
    input.extend_from_slice(data);

    // Chunk sizes from a small xorshift generator seeded by the flags byte.
    let mut state = u32::from(flags) | 0x9E37_0000;
    let max_chunk = 1 + usize::from(flags >> 1);
    let mut chunks = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        1 + (state as usize) % max_chunk
    };
    let (events, error) = run(&input, &mut chunks);
    let whole = run(&input, &mut || usize::MAX);
    assert_eq!(
        (&events, &error),
        (&whole.0, &whole.1),
        "chunking changed the result"
    );
    if let Some(e) = &error {
        // Every error maps to a stream error condition.
        assert!(!e.stream_condition().is_empty());
    }

    let mut default_ns = String::new();
    let relaxed = Limits {
        max_stanza_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_attributes: usize::MAX,
        max_header_bytes: usize::MAX,
    };
    for event in &events {
        match event {
            FramerEvent::StreamOpen(header) => {
                default_ns = header.default_ns.clone().unwrap_or_default();
            }
            FramerEvent::Element(element) => {
                let mut out = Vec::new();
                element.write_to(&mut out, &default_ns);
                let back = Element::parse_with_limits(&out, &default_ns, &relaxed);
                assert_eq!(
                    back.as_ref(),
                    Ok(element),
                    "re-parse of {:?}",
                    String::from_utf8_lossy(&out)
                );
            }
            FramerEvent::StreamClose => {}
        }
    }
});
