//! causerie-xml owns the XML layer of XMPP: the sans-IO stream framer that turns bytes into the
//! stream header, one [`Element`] per top-level element, and the stream's end; the element tree;
//! and the serializer. It knows nothing of sockets, sessions, TLS or stanza semantics.
//!
//! It implements RFC 6120 §4 (the stream as one XML document whose children are framed one by
//! one, §4.7 header, §4.8 namespaces) and §11 (restricted XML: no comments, processing
//! instructions, DTDs or entities other than the predefined ones, §11.1; namespace
//! well-formedness, §11.2; UTF-8 only and XML 1.0 `Char` only, §11.5–§11.6), with XML 1.0
//! (Fifth Edition) and Namespaces in XML 1.0 (Third Edition) for everything those sections
//! defer to. Every buffer that input can grow is bounded by [`Limits`], counted on raw bytes
//! below the parser so that an element that never ends is refused once it passes its limit.
//! Parsing of complete frames is done by quick-xml; this crate adds the checks that quick-xml
//! leaves to its users.

mod chars;
mod document;
mod element;
mod error;
mod framer;
mod lexer;
mod parse;
mod write;

pub use document::{Document, DocumentError, DocumentLimits, Located};
pub use element::{Element, Node};
pub use error::XmlError;
pub use framer::{FEED_PIECE, Framer, FramerEvent, Limits, StreamHeader};
pub use write::{escape_attr, escape_text};

/// The streams namespace (RFC 6120 §4.8.1), bound to the `stream` prefix by stream headers.
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// The namespace of the predeclared `xml` prefix (Namespaces in XML 1.0 §3).
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` declarations, which nothing may be bound to.
pub const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

impl Element {
    /// Parses one element (surrounding whitespace allowed) with default [`Limits`], as stored or
    /// as produced by [`Element::write_to`]: unprefixed names resolve to `default_ns`, and the
    /// `stream` prefix is bound to [`NS_STREAMS`] as a stream header would bind it.
    pub fn parse(xml: &[u8], default_ns: &str) -> Result<Element, XmlError> {
        Self::parse_with_limits(xml, default_ns, &Limits::default())
    }

    /// [`Element::parse`] with explicit limits. The whole input counts against
    /// `max_stanza_bytes`.
    pub fn parse_with_limits(
        xml: &[u8],
        default_ns: &str,
        limits: &Limits,
    ) -> Result<Element, XmlError> {
        if xml.len() > limits.max_stanza_bytes {
            return Err(XmlError::StanzaTooLarge {
                limit: limits.max_stanza_bytes,
            });
        }
        let scope = parse::StreamScope {
            default_ns: default_ns.into(),
            prefixes: vec![("stream".to_owned(), NS_STREAMS.into())],
        };
        parse::parse_element(
            xml,
            &scope,
            limits,
            &mut parse::NsCache::default(),
            &mut parse::ParseScratch::default(),
        )
    }
}
