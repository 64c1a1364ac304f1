//! Turns one complete frame into an [`Element`] (or the stream header) with quick-xml, adding
//! what quick-xml leaves to its user: strict attribute syntax, names, references, characters,
//! end-of-line handling and Namespaces in XML 1.0.

use std::sync::Arc;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::chars::{
    check_raw_chars, decode_attr, is_ncname, is_ws, push_normalized, push_reference, split_qname,
};
use crate::element::{Element, Node};
use crate::error::clip;
use crate::{Limits, NS_XML, NS_XMLNS, StreamHeader, XmlError};

/// Namespace bindings declared on the stream header, in scope for every top-level element.
#[derive(Debug, Clone)]
pub(crate) struct StreamScope {
    pub default_ns: Arc<str>,
    pub prefixes: Vec<(String, Arc<str>)>,
}

impl StreamScope {
    pub(crate) fn empty() -> Self {
        Self {
            default_ns: Arc::from(""),
            prefixes: Vec::new(),
        }
    }
}

/// A few recently used namespace URIs, so that the `xmlns='…'` of common payloads does not cost
/// an allocation per stanza. Bounded: replacement is round-robin.
#[derive(Debug, Default, Clone)]
pub(crate) struct NsCache {
    entries: Vec<Arc<str>>,
    next: usize,
}

const NS_CACHE_SIZE: usize = 16;

impl NsCache {
    pub(crate) fn get(&mut self, uri: &str) -> Arc<str> {
        if let Some(hit) = self.entries.iter().find(|e| &***e == uri) {
            return hit.clone();
        }
        let arc: Arc<str> = Arc::from(uri);
        if self.entries.len() < NS_CACHE_SIZE {
            self.entries.push(arc.clone());
        } else {
            self.entries[self.next] = arc.clone();
            self.next = (self.next + 1) % NS_CACHE_SIZE;
        }
        arc
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.next = 0;
    }
}

/// One attribute as written: byte ranges into the tag's attribute text.
#[derive(Debug, Clone, Copy)]
struct AttrSpan {
    name: (usize, usize),
    value: (usize, usize),
}

/// Parses `S Name Eq AttValue` repeated, then optional whitespace (XML 1.0 §3.1), stricter than
/// quick-xml's attribute iterator, which accepts attributes that touch.
fn parse_attr_spans(raw: &str, limits: &Limits, out: &mut Vec<AttrSpan>) -> Result<(), XmlError> {
    out.clear();
    let b = raw.as_bytes();
    let len = b.len();
    let mut i = 0;
    loop {
        let ws_start = i;
        while i < len && is_ws(b[i]) {
            i += 1;
        }
        if i == len {
            return Ok(());
        }
        if i == ws_start {
            return Err(XmlError::NotWellFormed(
                "attributes must be separated by whitespace",
            ));
        }
        let name_start = i;
        while i < len && !is_ws(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let name = (name_start, i);
        while i < len && is_ws(b[i]) {
            i += 1;
        }
        if i == len || b[i] != b'=' {
            return Err(XmlError::NotWellFormed("attribute without a value"));
        }
        i += 1;
        while i < len && is_ws(b[i]) {
            i += 1;
        }
        let quote = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(XmlError::NotWellFormed("attribute value must be quoted")),
        };
        i += 1;
        let Some(close) = memchr::memchr(quote, &b[i..]) else {
            return Err(XmlError::NotWellFormed("unterminated attribute value"));
        };
        out.push(AttrSpan {
            name,
            value: (i, i + close),
        });
        if out.len() > limits.max_attributes {
            return Err(XmlError::TooManyAttributes {
                limit: limits.max_attributes,
            });
        }
        i += close + 1;
    }
}

/// Most namespace declarations in scope at once within one top-level element. Stanzas use a
/// handful; the bound keeps prefix resolution cheap on hostile input.
pub(crate) const MAX_DECLARATIONS_IN_SCOPE: usize = 128;

/// In-scope namespace declarations while one frame is parsed; falls back to the stream's.
pub(crate) struct NsStack<'s> {
    stream: &'s StreamScope,
    /// (prefix, URI); the empty prefix is the default namespace.
    decls: Vec<(String, Arc<str>)>,
    /// `decls.len()` when each open element started.
    marks: Vec<usize>,
}

impl<'s> NsStack<'s> {
    pub(crate) fn new(stream: &'s StreamScope) -> Self {
        Self {
            stream,
            decls: Vec::new(),
            marks: Vec::new(),
        }
    }

    fn default_ns(&self) -> Arc<str> {
        match self.decls.iter().rev().find(|(p, _)| p.is_empty()) {
            Some((_, uri)) => uri.clone(),
            None => self.stream.default_ns.clone(),
        }
    }

    fn prefix(&self, prefix: &str) -> Option<&Arc<str>> {
        self.decls
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .or_else(|| self.stream.prefixes.iter().rev().find(|(p, _)| p == prefix))
            .map(|(_, uri)| uri)
    }

    pub(crate) fn pop(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.decls.truncate(mark);
        }
    }
}

/// Attribute scratch space reused across elements.
#[derive(Debug, Default)]
pub(crate) struct AttrScratch {
    spans: Vec<AttrSpan>,
    /// (namespace URI, local name range) of prefixed attributes, for the expanded-name check.
    expanded: Vec<(Arc<str>, (usize, usize))>,
}

/// Opens one element: declarations pushed on `ns`, name and attributes resolved.
pub(crate) fn open_element(
    start: &BytesStart<'_>,
    ns: &mut NsStack<'_>,
    limits: &Limits,
    cache: &mut NsCache,
    scratch: &mut AttrScratch,
) -> Result<Element, XmlError> {
    let qname = start.name();
    let qname: &str = qname.as_ref();
    let raw = start.attributes_raw();
    parse_attr_spans(raw, limits, &mut scratch.spans)?;
    let spans = &scratch.spans;

    ns.marks.push(ns.decls.len());
    // Declarations first: they apply to the element's own name and attributes (Namespaces in
    // XML §6.1).
    let mut plain = 0;
    for (idx, span) in spans.iter().enumerate() {
        let name = &raw[span.name.0..span.name.1];
        for earlier in &spans[..idx] {
            if &raw[earlier.name.0..earlier.name.1] == name {
                return Err(XmlError::DuplicateAttribute(clip(name)));
            }
        }
        let prefix = if name == "xmlns" {
            ""
        } else if let Some(p) = name.strip_prefix("xmlns:") {
            if !is_ncname(p) {
                return Err(XmlError::InvalidName(clip(name)));
            }
            p
        } else {
            plain += 1;
            continue;
        };
        let value = decode_attr(&raw[span.value.0..span.value.1])?;
        check_declaration(prefix, &value)?;
        // Resolution scans the declarations in scope; keep that scan short.
        if ns.decls.len() >= MAX_DECLARATIONS_IN_SCOPE {
            return Err(XmlError::TooManyNamespaceDeclarations {
                limit: MAX_DECLARATIONS_IN_SCOPE,
            });
        }
        ns.decls.push((prefix.to_owned(), cache.get(&value)));
    }

    let (prefix, local) = split_qname(qname)?;
    let elem_ns = match prefix {
        None => ns.default_ns(),
        Some("xml") => cache.get(NS_XML),
        // Namespaces in XML §3: element names must not have the prefix xmlns.
        Some("xmlns") => return Err(XmlError::BadPrefixDeclaration("xmlns".into())),
        Some(p) => ns
            .prefix(p)
            .cloned()
            .ok_or_else(|| XmlError::UndeclaredPrefix(clip(p)))?,
    };
    let mut element = Element::with_shared_ns(local.to_owned(), elem_ns);
    if plain == 0 {
        return Ok(element);
    }
    element.attrs.reserve_exact(plain);
    scratch.expanded.clear();
    for span in spans {
        let name = &raw[span.name.0..span.name.1];
        if name == "xmlns" || name.starts_with("xmlns:") {
            continue;
        }
        let (prefix, local) = split_qname(name)?;
        if let Some(p) = prefix {
            let uri = if p == "xml" {
                cache.get(NS_XML)
            } else {
                let uri = ns
                    .prefix(p)
                    .cloned()
                    .ok_or_else(|| XmlError::UndeclaredPrefix(clip(p)))?;
                if !element.prefixes.iter().any(|(known, _)| known == p) {
                    element.prefixes.push((p.to_owned(), uri.to_string()));
                }
                uri
            };
            // Namespaces in XML §6.3: no two attributes with the same expanded name.
            let local_range = (span.name.1 - local.len(), span.name.1);
            for (other_uri, other) in &scratch.expanded {
                if *other_uri == uri && &raw[other.0..other.1] == local {
                    return Err(XmlError::DuplicateAttribute(clip(name)));
                }
            }
            scratch.expanded.push((uri, local_range));
        }
        let value = decode_attr(&raw[span.value.0..span.value.1])?;
        element.attrs.push((name.to_owned(), value.into_owned()));
    }
    Ok(element)
}

/// Namespaces in XML 1.0 §3 constraints on one declaration (`prefix` empty for `xmlns=`).
fn check_declaration(prefix: &str, uri: &str) -> Result<(), XmlError> {
    match prefix {
        "xmlns" => Err(XmlError::BadPrefixDeclaration("xmlns".into())),
        "xml" if uri != NS_XML => Err(XmlError::ReservedNamespace(clip(uri))),
        "xml" => Ok(()),
        _ if uri == NS_XML || uri == NS_XMLNS => Err(XmlError::ReservedNamespace(clip(uri))),
        // Namespaces in XML 1.0 has no undeclaring of prefixes (that is 1.1).
        p if uri.is_empty() && !p.is_empty() => Err(XmlError::BadPrefixDeclaration(clip(p))),
        _ => Ok(()),
    }
}

pub(crate) fn map_quick_xml(err: quick_xml::Error) -> XmlError {
    use quick_xml::errors::IllFormedError;
    match err {
        quick_xml::Error::Encoding(_) => XmlError::InvalidUtf8,
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            XmlError::MismatchedEndTag {
                expected: clip(&expected),
                found: clip(&found),
            }
        }
        quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => {
            XmlError::NotWellFormed("unterminated reference")
        }
        quick_xml::Error::IllFormed(_) => XmlError::NotWellFormed("ill-formed markup"),
        quick_xml::Error::InvalidAttr(_) => XmlError::NotWellFormed("malformed attribute"),
        _ => XmlError::NotWellFormed("syntax error"),
    }
}

fn frame_str(frame: &[u8]) -> Result<&str, XmlError> {
    let text = std::str::from_utf8(frame).map_err(|_| XmlError::InvalidUtf8)?;
    check_raw_chars(frame)?;
    Ok(text)
}

/// A reader over a frame whose characters have been checked. UTF-8 is left to quick-xml,
/// which validates every byte it hands out (each event is converted with `str::from_utf8`),
/// so checking the frame first would do that work twice.
fn frame_reader(frame: &[u8]) -> Result<Reader<&[u8]>, XmlError> {
    check_raw_chars(frame)?;
    Ok(Reader::from_reader(frame))
}

/// Runs `f` on the element's trailing text node, creating one only if `f` leaves text in it.
pub(crate) fn with_text<R>(element: &mut Element, f: impl FnOnce(&mut String) -> R) -> R {
    match element.nodes.last_mut() {
        Some(Node::Text(t)) => f(t),
        _ => {
            let mut text = String::new();
            let r = f(&mut text);
            if !text.is_empty() {
                element.nodes.push(Node::Text(text));
            }
            r
        }
    }
}

/// Parses exactly one element (with optional surrounding whitespace) from `frame`.
pub(crate) fn parse_element(
    frame: &[u8],
    stream: &StreamScope,
    limits: &Limits,
    cache: &mut NsCache,
    scratch: &mut ParseScratch,
) -> Result<Element, XmlError> {
    let mut ns = NsStack {
        stream,
        decls: std::mem::take(&mut scratch.decls),
        marks: std::mem::take(&mut scratch.marks),
    };
    let mut stack = std::mem::take(&mut scratch.stack);
    let result = parse_tree(
        frame,
        &mut ns,
        &mut stack,
        limits,
        cache,
        &mut scratch.attrs,
    );
    ns.decls.clear();
    ns.marks.clear();
    stack.clear();
    scratch.decls = ns.decls;
    scratch.marks = ns.marks;
    scratch.stack = stack;
    result
}

/// Buffers reused from one frame to the next, so that parsing a stanza allocates only the tree.
#[derive(Debug, Default)]
pub(crate) struct ParseScratch {
    decls: Vec<(String, Arc<str>)>,
    marks: Vec<usize>,
    stack: Vec<Element>,
    attrs: AttrScratch,
}

fn parse_tree(
    frame: &[u8],
    ns: &mut NsStack<'_>,
    stack: &mut Vec<Element>,
    limits: &Limits,
    cache: &mut NsCache,
    scratch: &mut AttrScratch,
) -> Result<Element, XmlError> {
    let mut reader = frame_reader(frame)?;
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(map_quick_xml)?;
        if root.is_some() && !matches!(event, Event::Eof) {
            if let Event::Text(t) = &event
                && t.bytes().all(is_ws)
            {
                continue;
            }
            return Err(XmlError::NotWellFormed("content after the element"));
        }
        match event {
            Event::Start(start) => {
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep {
                        limit: limits.max_depth,
                    });
                }
                let element = open_element(&start, ns, limits, cache, scratch)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep {
                        limit: limits.max_depth,
                    });
                }
                let element = open_element(&start, ns, limits, cache, scratch)?;
                ns.pop();
                match stack.last_mut() {
                    Some(parent) => parent.push_child(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                // quick-xml has checked that the end tag matches the open element.
                ns.pop();
                let Some(element) = stack.pop() else {
                    return Err(XmlError::NotWellFormed("end tag without start tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.push_child(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let raw: &str = &t;
                let Some(current) = stack.last_mut() else {
                    if raw.bytes().all(is_ws) {
                        continue;
                    }
                    return Err(XmlError::NotWellFormed("text outside the element"));
                };
                if raw.is_empty() {
                    continue;
                }
                // XML 1.0 §2.4: `]]>` may not appear literally in character data.
                if memchr::memmem::find(raw.as_bytes(), b"]]>").is_some() {
                    return Err(XmlError::NotWellFormed("']]>' in character data"));
                }
                with_text(current, |t| push_normalized(raw, t));
            }
            Event::CData(c) => {
                let Some(current) = stack.last_mut() else {
                    return Err(XmlError::NotWellFormed("CDATA outside the element"));
                };
                let raw: &str = &c;
                if !raw.is_empty() {
                    with_text(current, |t| push_normalized(raw, t));
                }
            }
            Event::GeneralRef(r) => {
                let Some(current) = stack.last_mut() else {
                    return Err(XmlError::NotWellFormed("reference outside the element"));
                };
                with_text(current, |t| push_reference(&r, t))?;
            }
            Event::Comment(_) => return Err(XmlError::Comment),
            Event::PI(_) | Event::Decl(_) => return Err(XmlError::ProcessingInstruction),
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::NotWellFormed("unclosed element"));
    }
    root.ok_or(XmlError::NotWellFormed("no element"))
}

/// The stream header and the namespace scope it opens.
pub(crate) struct ParsedHeader {
    pub header: StreamHeader,
    pub scope: StreamScope,
    /// The header's qualified name, which the stream's end tag must repeat.
    pub qname: String,
}

/// Parses the stream header's start tag (`<stream:stream …>` or `<stream:stream …/>`).
pub(crate) fn parse_header(
    frame: &[u8],
    limits: &Limits,
    cache: &mut NsCache,
) -> Result<ParsedHeader, XmlError> {
    let text = frame_str(frame)?;
    let mut reader = Reader::from_str(text);
    let start = match reader.read_event().map_err(map_quick_xml)? {
        Event::Start(s) | Event::Empty(s) => s,
        _ => return Err(XmlError::NotWellFormed("expected the stream header")),
    };
    let empty_scope = StreamScope::empty();
    let mut ns = NsStack::new(&empty_scope);
    let mut scratch = AttrScratch::default();
    let element = open_element(&start, &mut ns, limits, cache, &mut scratch)?;
    let qname = start.name().as_ref().to_owned();
    let prefix = qname.split_once(':').map(|(p, _)| p.to_owned());
    let default_decl = ns.decls.iter().rev().find(|(p, _)| p.is_empty());
    let default_ns = default_decl.map(|(_, uri)| uri.to_string());
    let scope = StreamScope {
        default_ns: default_decl
            .map(|(_, uri)| uri.clone())
            .unwrap_or_else(|| Arc::from("")),
        prefixes: ns
            .decls
            .iter()
            .filter(|(p, _)| !p.is_empty())
            .cloned()
            .collect(),
    };
    let Element {
        name,
        ns: elem_ns,
        attrs,
        ..
    } = element;
    let header = StreamHeader {
        prefix,
        name,
        ns: elem_ns.to_string(),
        default_ns,
        attrs,
    };
    Ok(ParsedHeader {
        header,
        scope,
        qname,
    })
}

/// Checks an XML declaration (XML 1.0 §2.8) with the restrictions RFC 6120 §11 implies:
/// version 1.0, UTF-8 only (§11.6), and `standalone` only as `yes` (no external markup).
pub(crate) fn check_decl(frame: &[u8]) -> Result<(), XmlError> {
    let text = frame_str(frame)?;
    let body = text
        .strip_prefix("<?xml")
        .and_then(|r| r.strip_suffix("?>"))
        .ok_or(XmlError::NotWellFormed("malformed XML declaration"))?;
    let limits = Limits::default();
    let mut spans = Vec::new();
    parse_attr_spans(body, &limits, &mut spans)?;
    let mut expected = ["version", "encoding", "standalone"].iter();
    let mut saw_version = false;
    for span in &spans {
        let name = &body[span.name.0..span.name.1];
        let value = &body[span.value.0..span.value.1];
        // The pseudo-attributes must come in this order, each at most once.
        if !expected.any(|&e| e == name) {
            return Err(XmlError::NotWellFormed("malformed XML declaration"));
        }
        match name {
            "version" => {
                saw_version = true;
                let minor = value.strip_prefix("1.").unwrap_or("");
                if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(XmlError::NotWellFormed("malformed XML version"));
                }
                if minor != "0" {
                    return Err(XmlError::UnsupportedDeclaration(
                        "XML version other than 1.0",
                    ));
                }
            }
            "encoding" => {
                let well_formed = value
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !well_formed {
                    return Err(XmlError::NotWellFormed("malformed encoding name"));
                }
                if !value.eq_ignore_ascii_case("utf-8") {
                    return Err(XmlError::UnsupportedEncoding(
                        value.chars().take(40).collect(),
                    ));
                }
            }
            _ => match value {
                "yes" => {}
                "no" => return Err(XmlError::UnsupportedDeclaration("standalone='no'")),
                _ => return Err(XmlError::NotWellFormed("malformed standalone value")),
            },
        }
    }
    if !saw_version {
        return Err(XmlError::NotWellFormed("XML declaration without version"));
    }
    Ok(())
}

/// Checks that the stream's end tag names the header's element.
pub(crate) fn check_close(frame: &[u8], header_qname: &str) -> Result<(), XmlError> {
    let inner = frame
        .strip_prefix(b"</")
        .and_then(|r| r.strip_suffix(b">"))
        .ok_or(XmlError::NotWellFormed("malformed end tag"))?;
    let name_len = inner.iter().rposition(|&b| !is_ws(b)).map_or(0, |p| p + 1);
    let name = &inner[..name_len];
    if name != header_qname.as_bytes() {
        return Err(XmlError::MismatchedEndTag {
            expected: clip(header_qname),
            found: clip(&String::from_utf8_lossy(name)),
        });
    }
    Ok(())
}
