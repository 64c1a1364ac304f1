//! The sans-IO stream framer: bytes in, stream events out.

use std::collections::VecDeque;

use crate::element::Element;
use crate::error::clip;
use crate::lexer::{Frame, FrameKind, Lexer};
use crate::parse::{self, NsCache, ParseScratch, StreamScope};
use crate::{NS_STREAMS, XmlError};

/// Limits applied while framing, all counted on raw bytes before anything is parsed.
///
/// Exceeding one is a `policy-violation` stream error (RFC 6120 §4.9.3.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element, in bytes from its `<` to its last `>` (default 262 144).
    pub max_stanza_bytes: usize,
    /// Deepest nesting, counting the top-level element as 1 (the stream element is not
    /// counted; default 32).
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations included (default 64).
    pub max_attributes: usize,
    /// Largest stream header, counting the XML declaration and whitespace before the header
    /// (default 4096).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_stanza_bytes: 262_144,
            max_depth: 32,
            max_attributes: 64,
            max_header_bytes: 4096,
        }
    }
}

/// The stream's opening tag (RFC 6120 §4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// The prefix the element was written with (`Some("stream")` for `<stream:stream>`).
    pub prefix: Option<String>,
    /// The local name (`stream`).
    pub name: String,
    /// The element's namespace (always [`NS_STREAMS`]: the framer refuses other headers).
    pub ns: String,
    /// The declared default namespace: the content namespace such as `jabber:client`.
    pub default_ns: Option<String>,
    /// The attributes other than namespace declarations, as (qualified name, value), in
    /// document order: `to`, `from`, `id`, `version`, `xml:lang`…
    pub attrs: Vec<(String, String)>,
}

impl StreamHeader {
    /// The value of the attribute with this qualified name (`"xml:lang"` for the language).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the framer found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramerEvent {
    /// The stream header (after the optional XML declaration).
    StreamOpen(StreamHeader),
    /// One complete child of the stream element: a stanza, `<stream:features/>`, `<starttls/>`…
    Element(Element),
    /// The stream's end tag (or the end of an empty-element stream header).
    StreamClose,
}

/// Input is taken in pieces of this size, each scanned before the next is buffered, so that a
/// limit is noticed with at most this much more than the limit in memory.
pub const FEED_PIECE: usize = 8 * 1024;
/// Capacity the buffer falls back to when it is idle after a large element.
const IDLE_CAPACITY: usize = 1024;
/// Smallest allocation when the buffer has to grow.
const MIN_GROWTH: usize = 256;
/// Idle capacity above which the buffer is given back without being asked.
const SHRINK_ABOVE: usize = 32 * 1024;

/// Sans-IO framer for one XMPP stream (RFC 6120 §4): feed it bytes as they arrive, take events.
///
/// Frame first, decode later: [`feed`](Self::feed) runs a byte-level boundary finder that
/// applies the limits and refuses comments, processing instructions and DTDs on sight;
/// [`next_event`](Self::next_event) parses each complete top-level element once, with the
/// namespace declarations of the stream header in scope.
///
/// An error is final: the framer keeps returning it until [`reset`](Self::reset).
pub struct Framer {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes before this offset have been handed out or skipped.
    head: usize,
    lexer: Lexer,
    /// Complete frames not yet parsed, in stream order.
    frames: VecDeque<Frame>,
    error: Option<XmlError>,
    scope: StreamScope,
    /// The stream header's qualified name, repeated by the closing tag.
    header_qname: String,
    cache: NsCache,
    scratch: ParseScratch,
}

/// Shows sizes and state only: buffered bytes may hold credentials (SASL PLAIN) and message
/// bodies, which must not reach logs.
impl std::fmt::Debug for Framer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framer")
            .field("limits", &self.limits)
            .field("buffered", &self.buffered())
            .field("capacity", &self.buf.capacity())
            .field("frames", &self.frames.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Framer {
    /// A framer that expects a stream header first. It allocates nothing until fed.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            head: 0,
            lexer: Lexer::new(),
            frames: VecDeque::new(),
            error: None,
            scope: StreamScope::empty(),
            header_qname: String::new(),
            cache: NsCache::default(),
            scratch: ParseScratch::default(),
        }
    }

    /// The limits this framer enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends bytes read from the peer. Errors surface from [`next_event`](Self::next_event)
    /// after the events that preceded them; bytes fed after an error are dropped.
    ///
    /// Bytes are scanned as they are taken, in pieces of [`FEED_PIECE`], so an element that
    /// passes a limit is cut off at once. Complete elements wait in the buffer until
    /// `next_event` takes them: feed what one socket read returned, then drain.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.error.is_none() {
            let n = data.len().min(FEED_PIECE);
            self.make_room(n);
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.scan();
        }
    }

    fn scan(&mut self) {
        if let Err(e) = self.lexer.run(&self.buf, &self.limits, &mut self.frames) {
            // Keep what was complete before the error; drop the offending bytes at once.
            let keep = self.frames.back().map_or(self.head, |f| f.end);
            self.buf.truncate(keep);
            self.error = Some(e);
            return;
        }
        self.drop_idle();
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<FramerEvent>, XmlError> {
        loop {
            let Some(frame) = self.frames.pop_front() else {
                if let Some(e) = &self.error {
                    return Err(e.clone());
                }
                self.drop_idle();
                if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
                    self.buf.shrink_to(IDLE_CAPACITY);
                }
                return Ok(None);
            };
            self.head = frame.end;
            match self.parse_frame(frame) {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => continue,
                Err(e) => {
                    self.fail(e.clone());
                    return Err(e);
                }
            }
        }
    }

    fn parse_frame(&mut self, frame: Frame) -> Result<Option<FramerEvent>, XmlError> {
        let bytes = &self.buf[frame.start..frame.end];
        match frame.kind {
            FrameKind::Decl => {
                parse::check_decl(bytes)?;
                Ok(None)
            }
            FrameKind::Header { empty } => {
                let parsed = parse::parse_header(bytes, &self.limits, &mut self.cache)?;
                // RFC 6120 §4.8.1: the stream element's namespace is the streams namespace.
                if parsed.header.name != "stream" || parsed.header.ns != NS_STREAMS {
                    return Err(XmlError::InvalidStreamHeader {
                        name: clip(&parsed.header.name),
                        ns: clip(&parsed.header.ns),
                    });
                }
                self.scope = parsed.scope;
                self.header_qname = parsed.qname;
                if empty {
                    // `<stream:stream …/>` opens and closes the stream at once.
                    self.frames.push_front(Frame {
                        kind: FrameKind::Close,
                        start: frame.end,
                        end: frame.end,
                    });
                }
                Ok(Some(FramerEvent::StreamOpen(parsed.header)))
            }
            FrameKind::Element => {
                let element = parse::parse_element(
                    bytes,
                    &self.scope,
                    &self.limits,
                    &mut self.cache,
                    &mut self.scratch,
                )?;
                Ok(Some(FramerEvent::Element(element)))
            }
            FrameKind::Close => {
                if frame.start != frame.end {
                    parse::check_close(bytes, &self.header_qname)?;
                }
                Ok(Some(FramerEvent::StreamClose))
            }
        }
    }

    /// Forgets the stream entirely, buffered bytes included, and expects a new stream header:
    /// the stream restart after STARTTLS or SASL (RFC 6120 §5.3.3, §6.4.6).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.lexer = Lexer::new();
        self.frames.clear();
        self.error = None;
        self.scope = StreamScope::empty();
        self.header_qname.clear();
        self.cache.clear();
        if self.buf.capacity() > SHRINK_ABOVE {
            self.buf.shrink_to(IDLE_CAPACITY);
        }
    }

    /// Starts a new stream on the bytes already received and not yet returned as events: a
    /// stream restart where the peer may have sent the new header right behind the element
    /// that caused the restart. Everything else is forgotten as by [`reset`](Self::reset).
    ///
    /// Never use this after STARTTLS: bytes received before the TLS handshake must not be read
    /// as part of the encrypted stream (RFC 6120 §5.4.3.3).
    pub fn restart(&mut self) {
        self.head = self.buffered_start().min(self.buf.len());
        self.compact();
        let pending = std::mem::take(&mut self.buf);
        self.reset();
        // Scanned again from the start, exactly as if the bytes had just arrived.
        self.feed(&pending);
    }

    fn buffered_start(&self) -> usize {
        self.frames
            .front()
            .map_or_else(|| self.lexer.pending_start(), |f| f.start)
            .max(self.head)
    }

    /// Bytes received but not yet returned as events, not counting whitespace between
    /// top-level elements. After `<starttls/>` this must be 0: RFC 6120 §5.4.3.3 forbids
    /// carrying plaintext bytes into the TLS layer.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.buffered_start())
    }

    /// Current capacity of the byte buffer (for memory accounting and tests).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives memory back: drops consumed bytes and shrinks the buffer to what it holds (but keeps
    /// up to 1 KiB, so the next small stanza needs no allocation).
    pub fn shrink(&mut self) {
        self.compact();
        self.buf.shrink_to(IDLE_CAPACITY.max(self.buf.len()));
        self.frames.shrink_to(4);
        self.scratch = ParseScratch::default();
    }

    /// Gives all memory back when nothing is buffered (a connection going idle); otherwise like
    /// [`Framer::shrink`].
    pub fn release(&mut self) {
        self.compact();
        if self.buf.is_empty() {
            self.buf = Vec::new();
            self.frames = Default::default();
            self.scratch = ParseScratch::default();
        } else {
            self.shrink();
        }
    }

    fn fail(&mut self, e: XmlError) {
        self.error = Some(e);
        self.frames.clear();
        self.buf.clear();
        self.head = 0;
    }

    /// With no complete frame waiting, everything before the lexer's pending construct (already
    /// delivered frames, skipped whitespace) can go.
    fn drop_idle(&mut self) {
        if !self.frames.is_empty() {
            return;
        }
        self.head = self.head.max(self.lexer.pending_start());
        if self.head >= self.buf.len() {
            self.lexer.shift(self.buf.len());
            self.buf.clear();
            self.head = 0;
        }
    }

    /// Makes room for `n` more bytes, moving unconsumed bytes to the front instead of growing
    /// the buffer when that suffices.
    fn make_room(&mut self, n: usize) {
        if self.head > 0 && self.buf.len() + n > self.buf.capacity() {
            self.compact();
        }
        let needed = self.buf.len() + n;
        let capacity = self.buf.capacity();
        if needed <= capacity {
            return;
        }
        // Grow by doubling, but while one element could still fit, never past what the stanza
        // limit can require: an element that never ends then holds at most the limit plus two
        // pieces, not twice the limit.
        let ceiling = self
            .limits
            .max_stanza_bytes
            .max(self.limits.max_header_bytes)
            .saturating_add(2 * FEED_PIECE);
        let doubled = capacity.saturating_mul(2).max(MIN_GROWTH);
        let target = if needed <= ceiling {
            doubled.min(ceiling).max(needed)
        } else {
            doubled.max(needed)
        };
        self.buf.reserve_exact(target - self.buf.len());
    }

    fn compact(&mut self) {
        if self.head == 0 {
            return;
        }
        let by = self.head;
        self.buf.drain(..by);
        self.lexer.shift(by);
        for frame in &mut self.frames {
            frame.start -= by;
            frame.end -= by;
        }
        self.head = 0;
    }
}
