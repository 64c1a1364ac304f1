//! The connection engine: an XML stream over TCP or TLS, read one top-level element at a time.
//!
//! Owns: the transport (plain TCP, STARTTLS upgrade, direct TLS), the framer fed from the socket, the
//! outgoing buffer, stream headers and the stream-level error close (RFC 6120 §4.2–§4.4, §4.9, §5).
//! A connection is served by a single task: the framer is sans-IO, so reading is cancel-safe and the
//! task can `select!` between the socket, its inbox and its timers without a second reader task.
//! Knows nothing of routing, accounts or what the elements mean.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use causerie_stanza::{StreamError, StreamErrorCondition, ns};
use causerie_tls::{CertStore, TlsAcceptor};
use causerie_xml::{Element, Framer, FramerEvent, Limits, StreamHeader, XmlError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Bytes read per poll. The buffer is on the stack of one poll only, never in the task's state, so an
/// idle session does not carry it.
const READ_CHUNK: usize = 8192;
/// An outgoing buffer above this is released after a flush, so a burst does not pin memory in a
/// session that then goes idle.
const KEEP_OUT_CAPACITY: usize = 512;

/// The transport under the XML stream.
pub enum Io {
    Plain(TcpStream),
    /// TLS where this side is the server (every listener).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS where this side is the client (outgoing server-to-server streams).
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, data),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Io::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Io::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why reading from a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the TCP connection (or TLS close_notify) without closing the stream.
    #[error("connection closed by peer")]
    Eof,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the XML rules; the stream is to be closed with this error.
    #[error("{0}")]
    Stream(StreamError),
}

/// Maps a framer error to its stream error (RFC 6120 §4.9.3).
pub fn stream_error_for(e: &XmlError) -> StreamError {
    let cond = StreamErrorCondition::parse(e.stream_condition())
        .unwrap_or(StreamErrorCondition::NotWellFormed);
    StreamError::new(cond).with_text(e.to_string())
}

/// An XML stream on one connection.
pub struct XmlStream {
    io: Io,
    framer: Framer,
    limits: Limits,
    out: Vec<u8>,
    peer: SocketAddr,
    /// The default namespace this side declares (`jabber:client` or `jabber:server`).
    content_ns: &'static str,
    header_sent: bool,
    closed: bool,
    /// Extra namespace declarations written on our stream header (`xmlns:db='…'` on s2s).
    header_extra: &'static str,
}

impl XmlStream {
    pub fn new(io: Io, peer: SocketAddr, limits: Limits, content_ns: &'static str) -> Self {
        XmlStream {
            io,
            framer: Framer::new(limits),
            limits,
            out: Vec::new(),
            peer,
            content_ns,
            header_sent: false,
            closed: false,
            header_extra: "",
        }
    }

    /// Extra namespace declarations for our stream headers, written verbatim (for example
    /// ` xmlns:db='jabber:server:dialback'` on server-to-server streams, XEP-0220 §2.1).
    pub fn with_header_extra(mut self, extra: &'static str) -> Self {
        self.header_extra = extra;
        self
    }

    /// Accepts a direct TLS connection (XEP-0368).
    pub async fn accept_tls(
        tcp: TcpStream,
        acceptor: &TlsAcceptor,
        peer: SocketAddr,
        limits: Limits,
        content_ns: &'static str,
    ) -> io::Result<Self> {
        let tls = acceptor.accept(tcp).await?;
        Ok(XmlStream::new(
            Io::Tls(Box::new(tls)),
            peer,
            limits,
            content_ns,
        ))
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_) | Io::TlsClient(_))
    }

    /// The certificate chain the peer presented during the TLS handshake (leaf first), if any.
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        match &self.io {
            Io::Tls(s) => s.get_ref().1.peer_certificates(),
            Io::TlsClient(s) => s.get_ref().1.peer_certificates(),
            Io::Plain(_) => None,
        }
    }

    pub fn tls_connection(&self) -> Option<&tokio_rustls::rustls::ServerConnection> {
        match &self.io {
            Io::Tls(s) => Some(s.get_ref().1),
            Io::Plain(_) | Io::TlsClient(_) => None,
        }
    }

    /// The SNI name the client asked for, if any.
    pub fn sni(&self) -> Option<&str> {
        self.tls_connection().and_then(|c| c.server_name())
    }

    /// `(tls-exporter, tls-server-end-point)` channel-binding data of this connection.
    pub fn channel_bindings(&self, certs: &CertStore) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let Some(conn) = self.tls_connection() else {
            return (None, None);
        };
        let exporter = causerie_tls::tls_exporter(conn);
        let end_point = certs
            .lookup(conn.server_name())
            .map(|c| c.server_end_point.clone());
        (exporter, end_point)
    }

    /// Bytes received and not yet consumed by the framer.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// Reads until the framer yields an event. Cancel-safe: the only await is the socket read, and
    /// everything read is in the framer before the next await.
    pub async fn read_event(&mut self) -> Result<FramerEvent, ReadError> {
        loop {
            match self.framer.next_event() {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Stream(stream_error_for(&e))),
            }
            let n = self.read_some().await?;
            if n == 0 {
                return Err(ReadError::Eof);
            }
        }
    }

    /// Releases buffer capacity kept from earlier traffic (a session going idle after negotiation).
    pub fn shrink_buffers(&mut self) {
        self.framer.release();
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    /// Reads what is available into the framer; the number of bytes, 0 at end of stream.
    async fn read_some(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| {
            // Not zeroed: both transports only append what they read (`ReadBuf::put_slice`,
            // the socket's read), and zeroing 8 KiB on every poll showed as a tenth of the
            // work per message.
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut rb = ReadBuf::uninit(&mut buf);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    self.framer.feed(rb.filled());
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Forgets the stream state before a restart (after STARTTLS or SASL success, RFC 6120 §4.3.3).
    pub fn restart(&mut self) {
        self.framer.reset();
        self.header_sent = false;
        self.framer.shrink();
    }

    /// Queues our stream header as the receiving entity (RFC 6120 §4.7). `to` echoes the initiator's
    /// `from` when it gave one.
    pub fn queue_header(&mut self, from: &str, to: Option<&str>, id: &str) {
        self.write_header(from, to, Some(id));
    }

    /// Queues our stream header as the initiating entity: no `id`, which the receiver chooses.
    pub fn queue_initiator_header(&mut self, from: &str, to: &str) {
        self.write_header(from, Some(to), None);
    }

    fn write_header(&mut self, from: &str, to: Option<&str>, id: Option<&str>) {
        let out = &mut self.out;
        out.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='");
        out.extend_from_slice(self.content_ns.as_bytes());
        out.extend_from_slice(b"' xmlns:stream='http://etherx.jabber.org/streams'");
        out.extend_from_slice(self.header_extra.as_bytes());
        out.extend_from_slice(b" version='1.0' xml:lang='en'");
        if let Some(id) = id {
            out.extend_from_slice(b" id='");
            causerie_xml::escape_attr(id, out);
            out.push(b'\'');
        }
        out.extend_from_slice(b" from='");
        causerie_xml::escape_attr(from, out);
        if let Some(to) = to {
            out.extend_from_slice(b"' to='");
            causerie_xml::escape_attr(to, out);
        }
        out.extend_from_slice(b"'>");
        self.header_sent = true;
    }

    pub fn header_sent(&self) -> bool {
        self.header_sent
    }

    /// Queues an element written in this stream's default namespace.
    pub fn queue(&mut self, el: &Element) {
        el.write_to(&mut self.out, self.content_ns);
    }

    /// Queues bytes already serialized (shared by several recipients).
    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
            if self.out.capacity() > KEEP_OUT_CAPACITY {
                self.out = Vec::new();
            }
        }
        self.io.flush().await
    }

    /// Flushes, bounded in time so that a peer that stops reading cannot hold the task forever.
    pub async fn flush_within(&mut self, limit: Duration) -> io::Result<()> {
        match tokio::time::timeout(limit, self.flush()).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer is not reading",
            )),
        }
    }

    /// Closes the stream: the error if any, `</stream:stream>`, then the transport (RFC 6120 §4.4).
    /// If no header was sent yet, one is sent first so the peer can parse the error (§4.9.1.2).
    pub async fn close(&mut self, err: Option<&StreamError>, local_domain: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        if !self.header_sent {
            self.queue_header(local_domain, None, &"0".repeat(8));
        }
        if let Some(e) = err {
            self.queue(&e.to_element());
        }
        self.out.extend_from_slice(b"</stream:stream>");
        let _ = self.flush_within(Duration::from_secs(5)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.shutdown()).await;
    }

    /// Upgrades a plain stream to TLS after `<proceed/>` (RFC 6120 §5.4.3.3). Bytes pipelined after
    /// `<starttls/>` are refused before this is called, so nothing read in plaintext reaches TLS.
    pub async fn starttls(self, acceptor: &TlsAcceptor) -> Result<XmlStream, io::Error> {
        let XmlStream {
            io,
            limits,
            peer,
            content_ns,
            header_extra,
            ..
        } = self;
        let Io::Plain(tcp) = io else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stream is already encrypted",
            ));
        };
        let tls = acceptor.accept(tcp).await?;
        Ok(
            XmlStream::new(Io::Tls(Box::new(tls)), peer, limits, content_ns)
                .with_header_extra(header_extra),
        )
    }
}

impl XmlStream {
    /// Connects TLS as the client: after `<proceed/>` on a plain stream, or at once for direct TLS.
    pub async fn connect_tls(
        self,
        connector: &tokio_rustls::TlsConnector,
        server_name: rustls_pki_types::ServerName<'static>,
    ) -> Result<XmlStream, io::Error> {
        let XmlStream {
            io,
            limits,
            peer,
            content_ns,
            header_extra,
            ..
        } = self;
        let Io::Plain(tcp) = io else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stream is already encrypted",
            ));
        };
        let tls = connector.connect(server_name, tcp).await?;
        Ok(
            XmlStream::new(Io::TlsClient(Box::new(tls)), peer, limits, content_ns)
                .with_header_extra(header_extra),
        )
    }

    /// Whether the framer holds bytes the peer sent after the element just read (bytes pipelined
    /// after `<proceed/>` or `<starttls/>` must not be carried over into TLS).
    pub fn has_buffered_input(&self) -> bool {
        self.framer.buffered() > 0
    }
}

/// `n` random bytes from the OS, hex-encoded: stream ids (RFC 6120 §4.7.3), generated resources.
/// If the OS generator fails (nothing a connection can fix), the clock stands in, so ids still tell
/// streams apart; callers never use them as secrets.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()];
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks an initiating stream header (RFC 6120 §4.7, §4.8, §4.9.3): stream namespace and name, the
/// default namespace this listener serves, and a version 1.x.
pub fn check_header(h: &StreamHeader, content_ns: &str) -> Result<(), StreamError> {
    if h.ns != ns::STREAMS || h.name != "stream" {
        return Err(StreamError::new(StreamErrorCondition::InvalidNamespace)
            .with_text("expected a stream:stream element"));
    }
    if h.prefix.is_some() && h.default_ns.as_deref() != Some(content_ns) {
        return Err(StreamError::new(StreamErrorCondition::InvalidNamespace)
            .with_text(format!("the default namespace must be {content_ns}")));
    }
    match h.attr("version") {
        Some(v) if v.split('.').next().and_then(|m| m.parse::<u32>().ok()) == Some(1) => Ok(()),
        Some(v)
            if v.split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .is_some_and(|m| m > 1) =>
        {
            Err(StreamError::new(StreamErrorCondition::UnsupportedVersion)
                .with_text("only version 1.0 is supported"))
        }
        _ => Err(StreamError::new(StreamErrorCondition::UnsupportedVersion)
            .with_text("version='1.0' is required")),
    }
}

/// Shared pieces a listener needs to run TLS.
#[derive(Clone)]
pub struct TlsSetup {
    pub acceptor: TlsAcceptor,
    pub certs: Arc<CertStore>,
}
