//! The boundary finder that runs below the parser.
//!
//! It looks at each byte once, keeps its state between calls, and only knows enough XML to find
//! where the XML declaration, the stream header, each top-level element and the stream's end tag
//! begin and end: tags (with quoted attribute values, which may contain `>`), CDATA sections
//! (which may contain `<`), and text. Everything RFC 6120 §11.1 forbids and that can be told from
//! its first bytes (comments, processing instructions, DOCTYPE) is refused here, before any of it
//! is buffered; so are the limits, counted on the raw bytes of an element that may never end.
//! Everything else (names, attribute syntax, references, characters, namespaces) is checked by
//! the parser on the complete frame.

use std::collections::VecDeque;

use crate::chars::is_ws;
use crate::{Limits, XmlError};

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// `<?xml ...?>`
    Decl,
    /// `<stream:stream ...>`, or `<stream:stream .../>` when `empty`.
    Header { empty: bool },
    /// One complete child of the stream element.
    Element,
    /// `</stream:stream>`
    Close,
}

/// A byte range of the framer's buffer holding one complete construct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: FrameKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Before the stream header: byte order mark, XML declaration (first bytes only), whitespace.
    Prolog,
    /// Inside `<?xml`, looking for `?>`.
    Decl,
    /// Inside the stream header's start tag.
    HeaderTag { quote: u8, attrs: usize },
    /// Directly inside the stream element, between top-level elements.
    Stream,
    /// Inside a start tag of a top-level element or a descendant.
    StartTag { quote: u8, attrs: usize },
    /// Character data inside a top-level element.
    Text,
    /// Inside an end tag below the stream element.
    EndTag,
    /// Inside a CDATA section whose content starts at this offset.
    CData { content_start: usize },
    /// Inside the stream's end tag.
    CloseTag,
    /// After the stream's end tag (or an empty stream header).
    Closed,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
const CDATA_OPEN: &[u8] = b"<![CDATA[";

#[derive(Debug, Clone)]
pub(crate) struct Lexer {
    mode: Mode,
    /// Next byte to look at.
    pos: usize,
    /// Where the construct being scanned began (its `<`).
    frame_start: usize,
    /// Open elements in the current top-level element, the top-level element itself included.
    depth: usize,
    /// Bytes spent on the prolog and the stream header since the last reset.
    header_used: usize,
    /// Nothing but maybe a byte order mark has been seen: an XML declaration may still come.
    at_start: bool,
}

impl Lexer {
    pub(crate) fn new() -> Self {
        Self {
            mode: Mode::Prolog,
            pos: 0,
            frame_start: 0,
            depth: 0,
            header_used: 0,
            at_start: true,
        }
    }

    /// The first buffered byte that is part of something not yet framed: the start of the
    /// construct being scanned, or the scan position between constructs (whitespace before it
    /// has been skipped and is not worth keeping).
    pub(crate) fn pending_start(&self) -> usize {
        match self.mode {
            Mode::Prolog | Mode::Stream | Mode::Closed => self.pos,
            _ => self.frame_start,
        }
    }

    /// Adjusts offsets after the framer removed `by` bytes from the front of its buffer.
    pub(crate) fn shift(&mut self, by: usize) {
        self.pos -= by;
        self.frame_start = self.frame_start.saturating_sub(by);
        if let Mode::CData { content_start } = &mut self.mode {
            *content_start -= by;
        }
    }

    /// Scans `buf` from where the last call stopped, appending every completed frame.
    pub(crate) fn run(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        frames: &mut VecDeque<Frame>,
    ) -> Result<(), XmlError> {
        self.scan(buf, limits, frames)?;
        // The construct still open at the end of the input counts against its limit now, so an
        // element that never ends is refused once it passes the limit, not when memory runs out.
        match self.mode {
            Mode::Prolog => self.check_header(0, limits),
            Mode::Decl | Mode::HeaderTag { .. } => {
                self.check_header(self.pos - self.frame_start, limits)
            }
            Mode::StartTag { .. }
            | Mode::Text
            | Mode::EndTag
            | Mode::CData { .. }
            | Mode::CloseTag => self.check_stanza(self.pos - self.frame_start, limits),
            Mode::Stream | Mode::Closed => Ok(()),
        }
    }

    fn check_header(&self, open: usize, limits: &Limits) -> Result<(), XmlError> {
        if self.header_used + open > limits.max_header_bytes {
            return Err(XmlError::HeaderTooLarge {
                limit: limits.max_header_bytes,
            });
        }
        Ok(())
    }

    fn check_stanza(&self, len: usize, limits: &Limits) -> Result<(), XmlError> {
        if len > limits.max_stanza_bytes {
            return Err(XmlError::StanzaTooLarge {
                limit: limits.max_stanza_bytes,
            });
        }
        Ok(())
    }

    fn skip_ws(&mut self, buf: &[u8]) -> usize {
        let start = self.pos;
        while self.pos < buf.len() && is_ws(buf[self.pos]) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Refuses what `<!` followed by `third` opens where no CDATA section may start.
    fn bang_error(third: u8) -> XmlError {
        match third {
            b'-' => XmlError::Comment,
            b'D' => XmlError::Doctype,
            _ => XmlError::NotWellFormed("markup declaration"),
        }
    }

    fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        frames: &mut VecDeque<Frame>,
    ) -> Result<(), XmlError> {
        let len = buf.len();
        loop {
            match self.mode {
                Mode::Prolog => {
                    // Only the very first bytes of a stream can be a byte order mark.
                    if self.header_used == 0 && self.pos < len {
                        match buf[self.pos] {
                            // XML 1.0 §4.3.3: UTF-8 may start with a byte order mark.
                            0xEF => {
                                let avail = (len - self.pos).min(BOM.len());
                                if buf[self.pos..self.pos + avail] == BOM[..avail] {
                                    if avail < BOM.len() {
                                        return Ok(());
                                    }
                                    self.pos += BOM.len();
                                    self.header_used += BOM.len();
                                }
                            }
                            // UTF-16 byte order marks, or a UTF-16/32 `<` (RFC 6120 §11.6).
                            0xFE | 0xFF | 0x00 => {
                                return Err(XmlError::UnsupportedEncoding(
                                    "UTF-16 or UTF-32".into(),
                                ));
                            }
                            _ => {}
                        }
                    }
                    let skipped = self.skip_ws(buf);
                    self.header_used += skipped;
                    if skipped > 0 {
                        self.at_start = false;
                    }
                    if self.pos == len {
                        return Ok(());
                    }
                    if buf[self.pos] != b'<' {
                        return Err(XmlError::NotWellFormed("text before the stream header"));
                    }
                    if len - self.pos < 2 {
                        return Ok(());
                    }
                    match buf[self.pos + 1] {
                        b'?' => {
                            if !self.at_start {
                                return Err(XmlError::ProcessingInstruction);
                            }
                            // `<?xml` and whitespace: the XML declaration (XML 1.0 §2.8).
                            if len - self.pos < 6 {
                                return Ok(());
                            }
                            if &buf[self.pos..self.pos + 5] != b"<?xml" || !is_ws(buf[self.pos + 5])
                            {
                                return Err(XmlError::ProcessingInstruction);
                            }
                            self.frame_start = self.pos;
                            self.pos += 6;
                            self.mode = Mode::Decl;
                        }
                        b'!' => {
                            if len - self.pos < 3 {
                                return Ok(());
                            }
                            return Err(Self::bang_error(buf[self.pos + 2]));
                        }
                        b'/' => {
                            return Err(XmlError::NotWellFormed(
                                "end tag before the stream header",
                            ));
                        }
                        b if can_start_name(b) => {
                            self.frame_start = self.pos;
                            self.pos += 1;
                            self.mode = Mode::HeaderTag { quote: 0, attrs: 0 };
                        }
                        _ => return Err(XmlError::NotWellFormed("'<' not followed by a name")),
                    }
                    self.at_start = false;
                }
                Mode::Decl => {
                    let Some(end) = find_decl_end(buf, self.pos) else {
                        self.pos = len;
                        return Ok(());
                    };
                    let frame_len = end - self.frame_start;
                    self.check_header(frame_len, limits)?;
                    self.header_used += frame_len;
                    frames.push_back(Frame {
                        kind: FrameKind::Decl,
                        start: self.frame_start,
                        end,
                    });
                    self.pos = end;
                    self.mode = Mode::Prolog;
                }
                Mode::HeaderTag {
                    mut quote,
                    mut attrs,
                } => {
                    let found = self.scan_tag(buf, &mut quote, &mut attrs, limits);
                    self.mode = Mode::HeaderTag { quote, attrs };
                    let Some(gt) = found? else {
                        return Ok(());
                    };
                    let end = gt + 1;
                    let frame_len = end - self.frame_start;
                    self.check_header(frame_len, limits)?;
                    self.header_used += frame_len;
                    let empty = buf[gt - 1] == b'/';
                    frames.push_back(Frame {
                        kind: FrameKind::Header { empty },
                        start: self.frame_start,
                        end,
                    });
                    self.mode = if empty { Mode::Closed } else { Mode::Stream };
                }
                Mode::Stream => {
                    self.skip_ws(buf);
                    if self.pos == len {
                        return Ok(());
                    }
                    if buf[self.pos] != b'<' {
                        return Err(XmlError::TextAtStreamLevel);
                    }
                    if len - self.pos < 2 {
                        return Ok(());
                    }
                    self.frame_start = self.pos;
                    match buf[self.pos + 1] {
                        b'/' => {
                            self.pos += 2;
                            self.mode = Mode::CloseTag;
                        }
                        b'?' => return Err(XmlError::ProcessingInstruction),
                        b'!' => {
                            if len - self.pos < 3 {
                                return Ok(());
                            }
                            return Err(match buf[self.pos + 2] {
                                b'[' => XmlError::TextAtStreamLevel,
                                other => Self::bang_error(other),
                            });
                        }
                        b if can_start_name(b) => {
                            self.pos += 1;
                            self.depth = 0;
                            self.mode = Mode::StartTag { quote: 0, attrs: 0 };
                        }
                        _ => return Err(XmlError::NotWellFormed("'<' not followed by a name")),
                    }
                }
                Mode::StartTag {
                    mut quote,
                    mut attrs,
                } => {
                    let found = self.scan_tag(buf, &mut quote, &mut attrs, limits);
                    self.mode = Mode::StartTag { quote, attrs };
                    let Some(gt) = found? else {
                        return Ok(());
                    };
                    if self.depth + 1 > limits.max_depth {
                        return Err(XmlError::TooDeep {
                            limit: limits.max_depth,
                        });
                    }
                    if buf[gt - 1] == b'/' {
                        // An empty-element tag opens and closes at once.
                        if self.depth == 0 {
                            self.complete_element(limits, frames)?;
                        } else {
                            self.mode = Mode::Text;
                        }
                    } else {
                        self.depth += 1;
                        self.mode = Mode::Text;
                    }
                }
                Mode::Text => {
                    let Some(lt) = memchr::memchr(b'<', &buf[self.pos..]) else {
                        self.pos = len;
                        return Ok(());
                    };
                    self.pos += lt;
                    if len - self.pos < 2 {
                        return Ok(());
                    }
                    match buf[self.pos + 1] {
                        b'/' => {
                            self.pos += 2;
                            self.mode = Mode::EndTag;
                        }
                        b'?' => return Err(XmlError::ProcessingInstruction),
                        b'!' => {
                            let avail = (len - self.pos).min(CDATA_OPEN.len());
                            if buf[self.pos..self.pos + avail] != CDATA_OPEN[..avail] {
                                // `<!` + at least one byte that is not `[`, or `<![` + not CDATA.
                                return Err(Self::bang_error(buf[self.pos + 2]));
                            }
                            if avail < CDATA_OPEN.len() {
                                return Ok(());
                            }
                            self.pos += CDATA_OPEN.len();
                            self.mode = Mode::CData {
                                content_start: self.pos,
                            };
                        }
                        b if can_start_name(b) => {
                            self.pos += 1;
                            self.mode = Mode::StartTag { quote: 0, attrs: 0 };
                        }
                        _ => return Err(XmlError::NotWellFormed("'<' not followed by a name")),
                    }
                }
                Mode::EndTag => {
                    let Some(i) = memchr::memchr2(b'>', b'<', &buf[self.pos..]) else {
                        self.pos = len;
                        return Ok(());
                    };
                    let at = self.pos + i;
                    if buf[at] == b'<' {
                        return Err(XmlError::NotWellFormed("'<' inside an end tag"));
                    }
                    self.pos = at + 1;
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.complete_element(limits, frames)?;
                    } else {
                        self.mode = Mode::Text;
                    }
                }
                Mode::CData { content_start } => {
                    // `]]>` ends the section; look for `>` and check the two bytes before it.
                    loop {
                        let Some(i) = memchr::memchr(b'>', &buf[self.pos..]) else {
                            self.pos = len;
                            return Ok(());
                        };
                        let gt = self.pos + i;
                        self.pos = gt + 1;
                        if gt >= content_start + 2 && &buf[gt - 2..gt] == b"]]" {
                            self.mode = Mode::Text;
                            break;
                        }
                    }
                }
                Mode::CloseTag => {
                    let Some(i) = memchr::memchr2(b'>', b'<', &buf[self.pos..]) else {
                        self.pos = len;
                        return Ok(());
                    };
                    let at = self.pos + i;
                    if buf[at] == b'<' {
                        return Err(XmlError::NotWellFormed("'<' inside an end tag"));
                    }
                    self.pos = at + 1;
                    frames.push_back(Frame {
                        kind: FrameKind::Close,
                        start: self.frame_start,
                        end: self.pos,
                    });
                    self.mode = Mode::Closed;
                }
                Mode::Closed => {
                    self.skip_ws(buf);
                    if self.pos == len {
                        return Ok(());
                    }
                    return Err(XmlError::ContentAfterClose);
                }
            }
        }
    }

    fn complete_element(
        &mut self,
        limits: &Limits,
        frames: &mut VecDeque<Frame>,
    ) -> Result<(), XmlError> {
        self.check_stanza(self.pos - self.frame_start, limits)?;
        frames.push_back(Frame {
            kind: FrameKind::Element,
            start: self.frame_start,
            end: self.pos,
        });
        self.mode = Mode::Stream;
        Ok(())
    }

    /// Scans a start tag up to its closing `>` (returned), skipping quoted attribute values and
    /// counting them as attributes.
    fn scan_tag(
        &mut self,
        buf: &[u8],
        quote: &mut u8,
        attrs: &mut usize,
        limits: &Limits,
    ) -> Result<Option<usize>, XmlError> {
        let len = buf.len();
        while self.pos < len {
            if *quote != 0 {
                match memchr::memchr(*quote, &buf[self.pos..]) {
                    Some(i) => {
                        self.pos += i + 1;
                        *quote = 0;
                        continue;
                    }
                    None => {
                        self.pos = len;
                        return Ok(None);
                    }
                }
            }
            let b = buf[self.pos];
            match b {
                b'>' => {
                    let gt = self.pos;
                    self.pos += 1;
                    return Ok(Some(gt));
                }
                b'"' | b'\'' => {
                    *quote = b;
                    *attrs += 1;
                    if *attrs > limits.max_attributes {
                        return Err(XmlError::TooManyAttributes {
                            limit: limits.max_attributes,
                        });
                    }
                }
                b'<' => return Err(XmlError::NotWellFormed("'<' inside a tag")),
                // Outside quotes, `/` only appears in `/>`; anything else would leave the
                // element open and the error unseen until much later.
                b'/' => match buf.get(self.pos + 1) {
                    None => return Ok(None),
                    Some(b'>') => {}
                    Some(_) => return Err(XmlError::NotWellFormed("'/' inside a tag")),
                },
                _ => {}
            }
            self.pos += 1;
        }
        Ok(None)
    }
}

/// Whether `b` can be the first byte of an XML `Name` (XML 1.0 §2.3); non-ASCII bytes are
/// left to the parser's exact check.
fn can_start_name(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

/// The end (one past `?>`) of an XML declaration whose scan resumes at `from`.
fn find_decl_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'>', &buf[at..]) {
        let gt = at + i;
        if buf[gt - 1] == b'?' {
            return Some(gt + 1);
        }
        at = gt + 1;
    }
    None
}
