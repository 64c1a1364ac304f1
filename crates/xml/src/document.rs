//! Whole XML documents read from files (data exports, not streams), with the line on which each
//! element starts, so that whoever interprets the tree can say where a problem is.
//!
//! The same XML rules as for stanzas apply (XML 1.0 well-formedness, Namespaces in XML 1.0,
//! `Char` and UTF-8 only, the five predefined entities and character references only, no DTD),
//! except the ones RFC 6120 §11.1 adds for streams alone: a document may start with an XML
//! declaration and a byte order mark and may contain comments, which are skipped. Processing
//! instructions and document type declarations are refused (a DTD could define entities).

use std::fmt;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::chars::{check_raw_chars, is_ws, push_normalized, push_reference};
use crate::element::Element;
use crate::parse::{self, AttrScratch, NsCache, NsStack, StreamScope, map_quick_xml, with_text};
use crate::{Limits, XmlError};

/// Bounds on a document: its size, its nesting and the attributes of one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Largest document, in bytes (default 512 MiB).
    pub max_bytes: usize,
    /// Deepest nesting, the root counting as 1 (default 64).
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations included (default 64).
    pub max_attributes: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits {
            max_bytes: 512 * 1024 * 1024,
            max_depth: 64,
            max_attributes: 64,
        }
    }
}

/// Why a document was refused, and the line (from 1) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    pub line: u32,
    pub error: XmlError,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl std::error::Error for DocumentError {}

/// A parsed document: its root element, and the start line of every element.
#[derive(Debug, Clone)]
pub struct Document {
    root: Element,
    /// Per element in document order (pre-order): the line of its start tag.
    lines: Vec<u32>,
    /// Per element in document order: how many elements its subtree holds, itself included.
    sizes: Vec<u32>,
}

/// An element of a [`Document`] with its position. Dereferences to the [`Element`].
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    doc: &'a Document,
    element: &'a Element,
    index: usize,
}

impl<'a> Located<'a> {
    /// The element itself (with all its descendants).
    pub fn element(&self) -> &'a Element {
        self.element
    }

    /// The line (from 1) on which the element's start tag begins.
    pub fn line(&self) -> u32 {
        self.doc.lines.get(self.index).copied().unwrap_or(0)
    }

    /// The child elements, each with its position.
    pub fn children(&self) -> impl Iterator<Item = Located<'a>> + 'a {
        let doc = self.doc;
        let mut next = self.index + 1;
        self.element.children().map(move |child| {
            let located = Located {
                doc,
                element: child,
                index: next,
            };
            next += doc.sizes.get(next).map_or(1, |&n| n as usize);
            located
        })
    }
}

impl std::ops::Deref for Located<'_> {
    type Target = Element;

    fn deref(&self) -> &Element {
        self.element
    }
}

impl Document {
    /// Parses a complete document held in memory.
    pub fn parse(bytes: &[u8], limits: &DocumentLimits) -> Result<Document, DocumentError> {
        if bytes.len() > limits.max_bytes {
            return Err(DocumentError {
                line: 1,
                error: XmlError::StanzaTooLarge {
                    limit: limits.max_bytes,
                },
            });
        }
        // A UTF-8 byte order mark (XML 1.0 §4.3.3) holds no line break: lines stay right.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut lines = LineCounter::new(bytes);
        if let Err(error) = std::str::from_utf8(bytes) {
            return Err(DocumentError {
                line: lines.at(error.valid_up_to()),
                error: XmlError::InvalidUtf8,
            });
        }
        if let Err(error) = check_raw_chars(bytes) {
            return Err(DocumentError {
                line: lines.at(first_bad_char(bytes)),
                error,
            });
        }
        Builder::new(bytes, limits).run(&mut lines)
    }

    /// The root element with its position.
    pub fn root(&self) -> Located<'_> {
        Located {
            doc: self,
            element: &self.root,
            index: 0,
        }
    }

    /// The root element, dropping the positions.
    pub fn into_root(self) -> Element {
        self.root
    }
}

/// Line numbers of byte offsets, counted forward from the last offset asked for.
struct LineCounter<'b> {
    bytes: &'b [u8],
    offset: usize,
    line: u32,
}

impl<'b> LineCounter<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn at(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.bytes.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        let newlines = memchr::memchr_iter(b'\n', &self.bytes[self.offset..offset]).count();
        self.line = self
            .line
            .saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
        self.offset = offset;
        self.line
    }
}

/// Offset of the first character that [`check_raw_chars`] refuses (for the error's line).
fn first_bad_char(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    text.char_indices()
        .find(|&(_, c)| {
            let c = u32::from(c);
            !matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        })
        .map_or(0, |(i, _)| i)
}

struct Builder<'b> {
    bytes: &'b [u8],
    limits: Limits,
    cache: NsCache,
    scratch: AttrScratch,
    /// Open elements with their pre-order index.
    stack: Vec<(Element, usize)>,
    lines: Vec<u32>,
    sizes: Vec<u32>,
}

impl<'b> Builder<'b> {
    fn new(bytes: &'b [u8], limits: &DocumentLimits) -> Self {
        Builder {
            bytes,
            limits: Limits {
                max_stanza_bytes: limits.max_bytes,
                max_depth: limits.max_depth,
                max_attributes: limits.max_attributes,
                ..Limits::default()
            },
            cache: NsCache::default(),
            scratch: AttrScratch::default(),
            stack: Vec::new(),
            lines: Vec::new(),
            sizes: Vec::new(),
        }
    }

    fn run(mut self, lines: &mut LineCounter<'_>) -> Result<Document, DocumentError> {
        let scope = StreamScope::empty();
        let mut ns = NsStack::new(&scope);
        let mut reader = Reader::from_reader(self.bytes);
        let mut root: Option<Element> = None;
        let mut first = true;
        loop {
            let start = position(reader.buffer_position());
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    return Err(DocumentError {
                        line: lines.at(position(reader.error_position())),
                        error: map_quick_xml(e),
                    });
                }
            };
            let at_start = std::mem::replace(&mut first, false);
            let fail = |lines: &mut LineCounter<'_>, error: XmlError| DocumentError {
                line: lines.at(start),
                error,
            };
            match event {
                Event::Start(_) | Event::Empty(_) if root.is_some() => {
                    return Err(fail(
                        lines,
                        XmlError::NotWellFormed("a second element after the root"),
                    ));
                }
                Event::Start(tag) => {
                    let element = self.open(&tag, &mut ns, start, lines)?;
                    let index = self.lines.len() - 1;
                    self.stack.push((element, index));
                }
                Event::Empty(tag) => {
                    let element = self.open(&tag, &mut ns, start, lines)?;
                    ns.pop();
                    let index = self.lines.len() - 1;
                    self.close(element, index, &mut root);
                }
                Event::End(_) => {
                    ns.pop();
                    let Some((element, index)) = self.stack.pop() else {
                        return Err(fail(
                            lines,
                            XmlError::NotWellFormed("end tag without start tag"),
                        ));
                    };
                    self.close(element, index, &mut root);
                }
                Event::Text(t) => {
                    let raw: &str = &t;
                    match self.stack.last_mut() {
                        Some((current, _)) => {
                            if memchr::memmem::find(raw.as_bytes(), b"]]>").is_some() {
                                return Err(fail(
                                    lines,
                                    XmlError::NotWellFormed("']]>' in character data"),
                                ));
                            }
                            if !raw.is_empty() {
                                with_text(current, |t| push_normalized(raw, t));
                            }
                        }
                        None if raw.bytes().all(is_ws) => {}
                        None => {
                            return Err(fail(
                                lines,
                                XmlError::NotWellFormed("text outside the root element"),
                            ));
                        }
                    }
                }
                Event::CData(c) => {
                    let Some((current, _)) = self.stack.last_mut() else {
                        return Err(fail(
                            lines,
                            XmlError::NotWellFormed("CDATA outside the root element"),
                        ));
                    };
                    let raw: &str = &c;
                    if !raw.is_empty() {
                        with_text(current, |t| push_normalized(raw, t));
                    }
                }
                Event::GeneralRef(r) => {
                    let Some((current, _)) = self.stack.last_mut() else {
                        return Err(fail(
                            lines,
                            XmlError::NotWellFormed("reference outside the root element"),
                        ));
                    };
                    with_text(current, |t| push_reference(&r, t)).map_err(|e| fail(lines, e))?;
                }
                Event::Comment(_) => {}
                Event::Decl(_) if at_start => {
                    let end = position(reader.buffer_position());
                    parse::check_decl(&self.bytes[start..end]).map_err(|e| fail(lines, e))?;
                }
                Event::Decl(_) | Event::PI(_) => {
                    return Err(fail(lines, XmlError::ProcessingInstruction));
                }
                Event::DocType(_) => return Err(fail(lines, XmlError::Doctype)),
                Event::Eof => break,
            }
        }
        if !self.stack.is_empty() {
            return Err(DocumentError {
                line: lines.at(self.bytes.len()),
                error: XmlError::NotWellFormed("unclosed element at the end of the document"),
            });
        }
        let Some(root) = root else {
            return Err(DocumentError {
                line: lines.at(self.bytes.len()),
                error: XmlError::NotWellFormed("no root element"),
            });
        };
        Ok(Document {
            root,
            lines: self.lines,
            sizes: self.sizes,
        })
    }

    /// Opens an element: depth checked, name and attributes resolved, position recorded.
    fn open(
        &mut self,
        tag: &quick_xml::events::BytesStart<'_>,
        ns: &mut NsStack<'_>,
        start: usize,
        lines: &mut LineCounter<'_>,
    ) -> Result<Element, DocumentError> {
        let line = lines.at(start);
        if self.stack.len() >= self.limits.max_depth {
            return Err(DocumentError {
                line,
                error: XmlError::TooDeep {
                    limit: self.limits.max_depth,
                },
            });
        }
        let element =
            parse::open_element(tag, ns, &self.limits, &mut self.cache, &mut self.scratch)
                .map_err(|error| DocumentError { line, error })?;
        self.lines.push(line);
        self.sizes.push(1);
        Ok(element)
    }

    /// Closes the element with pre-order `index`: its subtree size recorded, attached to its
    /// parent (or made the root).
    fn close(&mut self, element: Element, index: usize, root: &mut Option<Element>) {
        let size = self.lines.len() - index;
        if let Some(slot) = self.sizes.get_mut(index) {
            *slot = u32::try_from(size).unwrap_or(u32::MAX);
        }
        match self.stack.last_mut() {
            Some((parent, _)) => parent.push_child(element),
            None => *root = Some(element),
        }
    }
}

/// A reader offset as an index into the input (which is in memory, hence fits).
fn position(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, DocumentError> {
        Document::parse(text.as_bytes(), &DocumentLimits::default())
    }

    #[test]
    fn lines_follow_every_element() {
        let doc = parse(
            "<?xml version='1.0' encoding='UTF-8'?>\n\
             <!-- exported -->\n\
             <a xmlns='urn:a'>\n  <b>\n    <c/>\n  </b>\n  <d x='1'><e/></d>\n</a>\n",
        )
        .expect("valid");
        let root = doc.root();
        assert_eq!(root.line(), 3);
        assert!(root.is("a", "urn:a"));
        let children: Vec<_> = root.children().collect();
        assert_eq!(children.len(), 2);
        assert_eq!((children[0].name(), children[0].line()), ("b", 4));
        assert_eq!(children[0].children().next().map(|c| c.line()), Some(5));
        assert_eq!((children[1].name(), children[1].line()), ("d", 7));
        assert_eq!(children[1].attr("x"), Some("1"));
        let e = children[1].children().next().expect("e");
        assert_eq!((e.name(), e.ns(), e.line()), ("e", "urn:a", 7));
    }

    #[test]
    fn errors_name_their_line() {
        let e = parse("<a>\n<b>\n</c>\n</a>").expect_err("mismatched");
        assert_eq!(e.line, 3, "{e}");
        let e = parse("<a>\n\n<b x='1' x='2'/></a>").expect_err("duplicate attribute");
        assert_eq!(e.line, 3, "{e}");
        let e = parse("<a>\n<b>&bogus;</b></a>").expect_err("entity");
        assert_eq!(e.line, 2, "{e}");
        assert!(matches!(e.error, XmlError::UndefinedEntity(_)), "{e}");
        let e = parse("<a>\n\n\n<b>\u{1}</b></a>").expect_err("control character");
        assert_eq!(e.line, 4, "{e}");
        let e = parse("<a>\n<b>").expect_err("unclosed");
        assert_eq!(e.line, 2, "{e}");
        let e = parse("<!DOCTYPE a [<!ENTITY x 'y'>]><a/>").expect_err("doctype");
        assert_eq!(e.error, XmlError::Doctype);
        let e = parse("<a/>\n<a/>").expect_err("two roots");
        assert_eq!(e.line, 2, "{e}");
        let e = parse("<a><?pi x?></a>").expect_err("pi");
        assert_eq!(e.error, XmlError::ProcessingInstruction);
        let e = parse("<a>\n<p:b/></a>").expect_err("undeclared prefix");
        assert_eq!(e.line, 2, "{e}");
        assert!(parse("").is_err());
        let bytes = b"<a>\n\xff</a>";
        let e = Document::parse(bytes, &DocumentLimits::default()).expect_err("not UTF-8");
        assert_eq!((e.line, e.error), (2, XmlError::InvalidUtf8));
    }

    #[test]
    fn limits_hold() {
        let limits = DocumentLimits {
            max_bytes: 10,
            ..DocumentLimits::default()
        };
        assert!(Document::parse(b"<a>0123456789</a>", &limits).is_err());
        let limits = DocumentLimits {
            max_depth: 2,
            ..DocumentLimits::default()
        };
        assert!(Document::parse(b"<a><b/></a>", &limits).is_ok());
        let e = Document::parse(b"<a><b>\n<c/></b></a>", &limits).expect_err("too deep");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn text_references_and_bom() {
        let doc = Document::parse(
            "\u{feff}<a>x &amp; &#x41;<![CDATA[<y>]]>\r\nz</a>".as_bytes(),
            &DocumentLimits::default(),
        )
        .expect("valid");
        assert_eq!(doc.root().text(), "x & A<y>\nz");
        assert_eq!(doc.into_root().name(), "a");
    }
}
