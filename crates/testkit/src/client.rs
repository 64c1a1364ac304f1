//! A scripted XMPP client over real TCP and TLS, for protocol tests and the load tool.
//!
//! [`Client::login`] runs the whole client negotiation of RFC 6120: stream header (§4.2),
//! STARTTLS (§5) or TLS from the first byte (XEP-0368), SASL (§6, with SCRAM from RFC 5802 /
//! RFC 7677 and PLAIN from RFC 4616), the stream restart, resource binding (§7) and, only when a
//! server still requires it, the legacy session establishment of RFC 3921 §3. The result is a
//! [`Client`] that sends and receives top-level elements.
//!
//! [`Negotiation`] exposes each of those steps separately, plus raw bytes in and out at any
//! point, so that tests can drive a server into the corners the specifications describe:
//! malformed XML, data pipelined after `<starttls/>`, a forced SASL mechanism or channel-binding
//! flag, a bind request with a chosen resource.
//!
//! Channel binding for SCRAM-*-PLUS (RFC 5056) uses either `tls-exporter` (RFC 9266: 32 bytes
//! exported with the label "EXPORTER-Channel-Binding" and no context, defined for TLS 1.3 only) or
//! `tls-server-end-point` (RFC 5929 §4.1: a hash of the server's leaf certificate). The server's
//! supported types are read from the XEP-0440 `<sasl-channel-binding/>` stream feature.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use causerie_sasl::client::{ClientChannelBinding, ScramClient};
use causerie_sasl::{ChannelBindingType, Hash, Mechanism};
use causerie_xml::{Element, Framer, FramerEvent, Limits, NS_STREAMS, StreamHeader, XmlError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// `jabber:client`, the default namespace of a client stream (RFC 6120 §4.8.3).
pub const NS_CLIENT: &str = "jabber:client";
/// RFC 6120 §5.4: STARTTLS elements.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 6120 §6.4: SASL elements.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 §7: resource binding.
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 §3: legacy session establishment.
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// RFC 6120 §4.9.3: stream error conditions.
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 §8.3.3: stanza error conditions.
pub const NS_STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0440: SASL channel-binding type capability.
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";

/// How long [`Client::login`] waits for each answer of the server during negotiation.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`Client::close`] waits for the server's `</stream:stream>`.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// RFC 9266 §2: the label of the tls-exporter channel binding, 32 bytes, no context.
const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
const TLS_EXPORTER_LEN: usize = 32;
/// Size of one socket read; the framer holds whatever a read brings until elements complete.
const READ_CHUNK: usize = 16 * 1024;

/// How the connection gets its TLS layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP, then STARTTLS (RFC 6120 §5); the server must offer it.
    StartTls,
    /// TLS from the first byte (XEP-0368), with ALPN `xmpp-client`.
    DirectTls,
    /// No TLS at all (for tests of servers that must refuse such clients).
    None,
}

/// Which server certificates the client accepts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Any certificate, whoever issued it and whatever name it carries; handshake signatures are
    /// still checked. For tests and benchmarks against throwaway servers only.
    AnyCertificate,
    /// Certificates that chain to one of these roots and match the configured domain.
    Roots(Vec<CertificateDer<'static>>),
}

/// Everything needed to log in.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub addr: SocketAddr,
    /// The server's domain: the stream's `to`, the TLS server name, the JID's domain.
    pub domain: String,
    /// The localpart of the JID, used as the SASL authentication identity.
    pub username: String,
    pub password: String,
    /// The resource to request at bind time; `None` lets the server choose.
    pub resource: Option<String>,
    pub tls: TlsMode,
    pub trust: Trust,
    /// A SASL mechanism name such as "SCRAM-SHA-256-PLUS"; `None` takes the best one offered.
    pub mechanism: Option<String>,
    /// The channel-binding type for a -PLUS mechanism; `None` chooses from what the server
    /// advertises (XEP-0440) and what the TLS version allows.
    pub cb_type: Option<ChannelBindingType>,
}

impl ClientConfig {
    /// A configuration with STARTTLS, any certificate accepted, the best mechanism, and a
    /// resource chosen by the server.
    pub fn new(addr: SocketAddr, domain: &str, username: &str, password: &str) -> ClientConfig {
        ClientConfig {
            addr,
            domain: domain.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            resource: None,
            tls: TlsMode::StartTls,
            trust: Trust::AnyCertificate,
            mechanism: None,
            cb_type: None,
        }
    }

    /// The bare JID `username@domain`.
    pub fn bare_jid(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("XML from the server: {0}")]
    Xml(#[from] XmlError),
    #[error("no answer from the server in time")]
    Timeout,
    /// The server closed the stream with `</stream:stream>`.
    #[error("the server closed the stream")]
    Closed,
    /// The TCP connection ended without `</stream:stream>`.
    #[error("the connection ended without a stream close")]
    Disconnected,
    /// RFC 6120 §4.9: the server sent `<stream:error/>`.
    #[error("stream error <{condition}/>{}", fmt_text(.text))]
    StreamError {
        condition: String,
        text: Option<String>,
    },
    /// RFC 6120 §5.4.2.2: the server answered `<starttls/>` with `<failure/>`.
    #[error("the server refused STARTTLS")]
    StartTlsFailure,
    /// RFC 6120 §6.4.5: the server answered the SASL exchange with `<failure/>`.
    #[error("SASL failure <{condition}/>{}", fmt_text(.text))]
    SaslFailure {
        condition: String,
        text: Option<String>,
    },
    /// The SCRAM exchange itself failed on the client side (bad server signature, malformed
    /// server message…).
    #[error("SCRAM: {0}")]
    Scram(causerie_sasl::client::ClientError),
    /// RFC 6120 §8.3: an IQ of ours got a stanza error.
    #[error("stanza error <{condition}/>{}", fmt_text(.text))]
    StanzaError {
        condition: String,
        text: Option<String>,
    },
    /// The server did something the protocol does not allow at this point.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The configuration cannot work with what the server offers.
    #[error("configuration: {0}")]
    Config(String),
}

fn fmt_text(text: &Option<String>) -> String {
    match text {
        Some(t) => format!(" ({t})"),
        None => String::new(),
    }
}

impl From<causerie_sasl::client::ClientError> for ClientError {
    fn from(e: causerie_sasl::client::ClientError) -> Self {
        ClientError::Scram(e)
    }
}

/// The stream features a server announced (RFC 6120 §4.3.2), with the parts this client reads.
#[derive(Debug, Clone)]
pub struct Features {
    /// `Some(required)` when STARTTLS is offered.
    pub starttls: Option<bool>,
    /// SASL mechanism names, in the server's order.
    pub mechanisms: Vec<String>,
    /// XEP-0440 channel-binding types, when the server announces them.
    pub channel_bindings: Option<Vec<String>>,
    /// Resource binding is offered.
    pub bind: bool,
    /// `Some(optional)` when the legacy session feature is offered.
    pub session: Option<bool>,
    /// The whole `<stream:features/>` element.
    pub element: Element,
}

impl Features {
    /// Reads the features this client understands out of `<stream:features/>`.
    pub fn parse(element: Element) -> Features {
        let starttls = element
            .get_child("starttls", NS_TLS)
            .map(|s| s.get_child("required", NS_TLS).is_some());
        let mechanisms = element
            .get_child("mechanisms", NS_SASL)
            .map(|m| {
                m.children()
                    .filter(|c| c.is("mechanism", NS_SASL))
                    .map(|c| c.text().trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let channel_bindings = element
            .get_child("sasl-channel-binding", NS_SASL_CB)
            .map(|cb| {
                cb.children()
                    .filter(|c| c.is("channel-binding", NS_SASL_CB))
                    .filter_map(|c| c.attr("type").map(str::to_string))
                    .collect()
            });
        let bind = element.get_child("bind", NS_BIND).is_some();
        let session = element
            .get_child("session", NS_SESSION)
            .map(|s| s.get_child("optional", NS_SESSION).is_some());
        Features {
            starttls,
            mechanisms,
            channel_bindings,
            bind,
            session,
            element,
        }
    }

    /// Whether `name` is among the offered SASL mechanisms.
    pub fn offers(&self, name: &str) -> bool {
        self.mechanisms.iter().any(|m| m == name)
    }
}

/// What the TLS layer of a connection can bind SASL to.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: Option<rustls::ProtocolVersion>,
    /// RFC 9266 tls-exporter data; `None` below TLS 1.3 where it is not defined.
    pub exporter: Option<Vec<u8>>,
    /// RFC 5929 tls-server-end-point data.
    pub server_end_point: Option<Vec<u8>>,
}

impl TlsInfo {
    fn from_connection(conn: &rustls::ClientConnection) -> TlsInfo {
        let version = conn.protocol_version();
        // RFC 9266 §3: tls-exporter must not be used with TLS below 1.3 without extended master
        // secret; this client simply offers it on TLS 1.3 only.
        let exporter = if version == Some(rustls::ProtocolVersion::TLSv1_3) {
            conn.export_keying_material([0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
                .ok()
                .map(|b| b.to_vec())
        } else {
            None
        };
        let server_end_point = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| tls_server_end_point(leaf.as_ref()));
        TlsInfo {
            version,
            exporter,
            server_end_point,
        }
    }

    /// The channel-binding data of type `cb_type`, if this connection has it.
    pub fn binding(&self, cb_type: ChannelBindingType) -> Option<&[u8]> {
        match cb_type {
            ChannelBindingType::TlsExporter => self.exporter.as_deref(),
            ChannelBindingType::TlsServerEndPoint => self.server_end_point.as_deref(),
        }
    }
}

/// RFC 5929 §4.1: the hash of the certificate, with the hash of its signature algorithm, except
/// that MD5 and SHA-1 (and algorithms without a hash of their own, such as Ed25519) use SHA-256.
pub fn tls_server_end_point(cert_der: &[u8]) -> Vec<u8> {
    match signature_hash(cert_der) {
        SignatureHash::Sha384 => sha2::Sha384::digest(cert_der).to_vec(),
        SignatureHash::Sha512 => sha2::Sha512::digest(cert_der).to_vec(),
        SignatureHash::Sha256 => sha2::Sha256::digest(cert_der).to_vec(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SignatureHash {
    Sha256,
    Sha384,
    Sha512,
}

// Object identifiers of signature algorithms hashed with SHA-384 or SHA-512, DER content bytes.
const OID_SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];

fn signature_hash(cert_der: &[u8]) -> SignatureHash {
    match signature_algorithm_oid(cert_der) {
        Some(oid) if oid == OID_SHA384_WITH_RSA || oid == OID_ECDSA_WITH_SHA384 => {
            SignatureHash::Sha384
        }
        Some(oid) if oid == OID_SHA512_WITH_RSA || oid == OID_ECDSA_WITH_SHA512 => {
            SignatureHash::Sha512
        }
        _ => SignatureHash::Sha256,
    }
}

/// RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature };
/// returns the OID inside signatureAlgorithm.
fn signature_algorithm_oid(cert_der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = der_tlv(cert_der)? else {
        return None;
    };
    let (0x30, _tbs, after_tbs) = der_tlv(cert)? else {
        return None;
    };
    let (0x30, algorithm, _) = der_tlv(after_tbs)? else {
        return None;
    };
    let (0x06, oid, _) = der_tlv(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// One DER tag-length-value at the start of `input`: (tag, contents, remaining input).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// Accepts any server certificate but still verifies the handshake signatures with it, so the
/// TLS layer itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn rustls_config(cfg: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match &cfg.trust {
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
        Trust::Roots(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for root in roots {
                store.add(root.clone())?;
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
    };
    if cfg.tls == TlsMode::DirectTls {
        // XEP-0368 §3: direct TLS connections announce the protocol with ALPN.
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    }
    Ok(config)
}

async fn tls_handshake(
    tcp: TcpStream,
    cfg: &ClientConfig,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, TlsInfo), ClientError> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(rustls_config(cfg)?));
    let name = ServerName::try_from(cfg.domain.clone())
        .map_err(|e| ClientError::Config(format!("domain {:?}: {e}", cfg.domain)))?;
    let stream = tokio::time::timeout(NEGOTIATION_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| ClientError::Timeout)??;
    let info = TlsInfo::from_connection(stream.get_ref().1);
    Ok((stream, info))
}

/// The byte stream under the XML stream: TCP, later TLS over the same TCP connection.
enum Transport {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while STARTTLS moves the TCP stream into TLS.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "transport detached")
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }
}

/// The reading side: socket bytes into the framer, events out.
struct Incoming<R> {
    io: R,
    framer: Framer,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> Incoming<R> {
    fn new(io: R) -> Self {
        Incoming {
            io,
            framer: Framer::new(Limits::default()),
            buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The next framer event before `deadline`. Cancel-safe: the only await is a socket read,
    /// and bytes already read stay in the framer.
    async fn next_event(&mut self, deadline: Instant) -> Result<FramerEvent, ClientError> {
        loop {
            if let Some(event) = self.framer.next_event()? {
                return Ok(event);
            }
            let n = tokio::time::timeout_at(deadline, self.io.read(&mut self.buf))
                .await
                .map_err(|_| ClientError::Timeout)??;
            if n == 0 {
                return Err(ClientError::Disconnected);
            }
            self.framer.feed(&self.buf[..n]);
        }
    }

    /// The next top-level element before `deadline`; a stream error or close becomes an error.
    async fn next_element(&mut self, deadline: Instant) -> Result<Element, ClientError> {
        match self.next_event(deadline).await? {
            FramerEvent::Element(el) => check_stream_error(el),
            FramerEvent::StreamClose => Err(ClientError::Closed),
            FramerEvent::StreamOpen(_) => Err(ClientError::Protocol(
                "a second stream header without a stream restart".into(),
            )),
        }
    }

    async fn next_matching(
        &mut self,
        deadline: Instant,
        pred: impl Fn(&Element) -> bool,
    ) -> Result<Element, ClientError> {
        loop {
            let el = self.next_element(deadline).await?;
            if pred(&el) {
                return Ok(el);
            }
        }
    }
}

/// RFC 6120 §4.9.2: `<stream:error>` holds one condition element and an optional `<text/>`.
fn check_stream_error(el: Element) -> Result<Element, ClientError> {
    if el.is("error", NS_STREAMS) {
        let (condition, text) = error_condition(&el, NS_STREAM_ERRORS);
        return Err(ClientError::StreamError { condition, text });
    }
    Ok(el)
}

/// The defined condition and text of an error element whose children live in `ns`.
fn error_condition(el: &Element, ns: &str) -> (String, Option<String>) {
    let condition = el
        .children()
        .find(|c| c.ns() == ns && c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| "undefined-condition".to_string());
    let text = el.get_child("text", ns).map(|t| t.text().to_string());
    (condition, text)
}

async fn write_bytes<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8]) -> Result<(), ClientError> {
    io.write_all(bytes).await?;
    // TLS buffers records until flushed.
    io.flush().await?;
    Ok(())
}

fn serialize(el: &Element, out: &mut Vec<u8>) {
    out.clear();
    el.write_to(out, NS_CLIENT);
}

/// RFC 6120 §4.7: the client's stream header. `from` is the bare JID once TLS protects the
/// stream (§4.7.1).
fn stream_header(domain: &str, from: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"<?xml version='1.0'?><stream:stream to='");
    causerie_xml::escape_attr(domain, &mut out);
    if let Some(from) = from {
        out.extend_from_slice(b"' from='");
        causerie_xml::escape_attr(from, &mut out);
    }
    out.extend_from_slice(
        b"' version='1.0' xml:lang='en' xmlns='jabber:client' \
          xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    out
}

/// The mechanisms this client can run, best first: SCRAM with channel binding, SCRAM by hash
/// strength, then PLAIN (only over TLS unless asked for by name).
const PREFERENCE: &[&str] = &[
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
];

/// Picks the best offered mechanism this client can complete on this connection.
fn choose_mechanism(
    features: &Features,
    tls: Option<&TlsInfo>,
    cb_type: Option<ChannelBindingType>,
) -> Option<&'static str> {
    PREFERENCE.iter().copied().find(|name| {
        if !features.offers(name) {
            return false;
        }
        if name.ends_with("-PLUS") {
            return tls.is_some_and(|t| choose_binding(features, t, cb_type).is_some());
        }
        if *name == "PLAIN" {
            return tls.is_some();
        }
        true
    })
}

/// The channel-binding type to use for a -PLUS mechanism: the configured one, or the first of
/// tls-exporter (RFC 9266 makes it the TLS 1.3 default) and tls-server-end-point that this
/// connection has data for and the server announces (XEP-0440; without the announcement, both
/// are candidates).
fn choose_binding(
    features: &Features,
    tls: &TlsInfo,
    configured: Option<ChannelBindingType>,
) -> Option<ChannelBindingType> {
    let announced = |t: ChannelBindingType| match &features.channel_bindings {
        Some(list) => list.iter().any(|n| n == t.name()),
        None => true,
    };
    match configured {
        Some(t) => tls.binding(t).is_some().then_some(t),
        None => [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ]
        .into_iter()
        .find(|t| tls.binding(*t).is_some() && announced(*t)),
    }
}

/// The connection during negotiation, one step at a time.
///
/// `connect` sends the first stream header; then `header`, `features`, `starttls` (which ends
/// with a new stream header on the TLS layer), `auth`, `restart`, `bind`, and `into_client`.
/// `send_raw`, `send`, `recv` and `recv_event` work at any step.
pub struct Negotiation {
    cfg: ClientConfig,
    incoming: Incoming<Transport>,
    out: Vec<u8>,
    tls: Option<TlsInfo>,
    features: Option<Features>,
    authenticated: bool,
    timeout: Duration,
    next_id: u64,
    downgrade_protection: bool,
}

impl Negotiation {
    /// Opens TCP (and TLS for [`TlsMode::DirectTls`]) and sends the stream header.
    pub async fn connect(cfg: &ClientConfig) -> Result<Negotiation, ClientError> {
        let mut n = Negotiation::connect_raw(cfg).await?;
        n.open_stream().await?;
        Ok(n)
    }

    /// Opens TCP (and TLS for [`TlsMode::DirectTls`]) and sends nothing, for tests that write
    /// their own stream header.
    pub async fn connect_raw(cfg: &ClientConfig) -> Result<Negotiation, ClientError> {
        let tcp = tokio::time::timeout(NEGOTIATION_TIMEOUT, TcpStream::connect(cfg.addr))
            .await
            .map_err(|_| ClientError::Timeout)??;
        tcp.set_nodelay(true)?;
        let (transport, tls) = if cfg.tls == TlsMode::DirectTls {
            let (stream, info) = tls_handshake(tcp, cfg).await?;
            (Transport::Tls(Box::new(stream)), Some(info))
        } else {
            (Transport::Tcp(tcp), None)
        };
        Ok(Negotiation {
            cfg: cfg.clone(),
            incoming: Incoming::new(transport),
            out: Vec::with_capacity(1024),
            tls,
            features: None,
            authenticated: false,
            timeout: NEGOTIATION_TIMEOUT,
            next_id: 1,
            downgrade_protection: false,
        })
    }

    /// How long each receiving step waits (default [`NEGOTIATION_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// XEP-0474: make SCRAM check the server's downgrade-protection hash against the
    /// mechanisms and channel-binding types announced on this stream; a missing or different
    /// hash then fails the exchange. Off by default, since many servers do not send it.
    /// Mechanism names this client does not know are not part of the expected list.
    pub fn set_downgrade_protection(&mut self, on: bool) {
        self.downgrade_protection = on;
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The TLS layer's details, once there is one.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The features received last.
    pub fn last_features(&self) -> Option<&Features> {
        self.features.as_ref()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Sends the stream header (RFC 6120 §4.7).
    pub async fn open_stream(&mut self) -> Result<(), ClientError> {
        let from = if self.tls.is_some() {
            Some(self.cfg.bare_jid())
        } else {
            None
        };
        let header = stream_header(&self.cfg.domain, from.as_deref());
        self.send_raw(&header).await
    }

    /// Writes bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        write_bytes(&mut self.incoming.io, bytes).await
    }

    /// Writes one element, in the `jabber:client` default namespace.
    pub async fn send(&mut self, el: &Element) -> Result<(), ClientError> {
        serialize(el, &mut self.out);
        write_bytes(&mut self.incoming.io, &self.out).await
    }

    /// The next framer event, whatever it is.
    pub async fn recv_event(&mut self) -> Result<FramerEvent, ClientError> {
        let deadline = self.deadline();
        self.incoming.next_event(deadline).await
    }

    /// The next top-level element; a stream error or close becomes an error.
    pub async fn recv(&mut self) -> Result<Element, ClientError> {
        let deadline = self.deadline();
        self.incoming.next_element(deadline).await
    }

    /// The server's stream header.
    pub async fn header(&mut self) -> Result<StreamHeader, ClientError> {
        match self.recv_event().await? {
            FramerEvent::StreamOpen(header) => Ok(header),
            FramerEvent::Element(el) => {
                check_stream_error(el)?;
                Err(ClientError::Protocol(
                    "an element before the stream header".into(),
                ))
            }
            FramerEvent::StreamClose => Err(ClientError::Closed),
        }
    }

    /// The server's `<stream:features/>`.
    pub async fn features(&mut self) -> Result<Features, ClientError> {
        let el = self.recv().await?;
        if !el.is("features", NS_STREAMS) {
            return Err(ClientError::Protocol(format!(
                "expected stream features, got <{}/>",
                el.name()
            )));
        }
        let features = Features::parse(el);
        self.features = Some(features.clone());
        Ok(features)
    }

    /// RFC 6120 §5.4.2: `<starttls/>`, `<proceed/>`, TLS handshake, new stream header.
    pub async fn starttls(&mut self) -> Result<(), ClientError> {
        self.send_raw(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let answer = self.recv().await?;
        if answer.is("failure", NS_TLS) {
            return Err(ClientError::StartTlsFailure);
        }
        if !answer.is("proceed", NS_TLS) {
            return Err(ClientError::Protocol(format!(
                "expected <proceed/>, got <{}/>",
                answer.name()
            )));
        }
        // RFC 6120 §5.4.3.3: nothing may follow <proceed/> in plaintext; bytes that did would
        // otherwise be fed to the TLS layer or silently lost.
        if self.incoming.framer.buffered() > 0 {
            return Err(ClientError::Protocol(
                "plaintext data after <proceed/>".into(),
            ));
        }
        self.upgrade_tls().await
    }

    /// The TLS handshake over the current TCP stream and a new stream header (RFC 6120
    /// §5.4.3.3), for tests that sent `<starttls/>` and read `<proceed/>` themselves.
    pub async fn upgrade_tls(&mut self) -> Result<(), ClientError> {
        let tcp = match std::mem::replace(&mut self.incoming.io, Transport::Detached) {
            Transport::Tcp(tcp) => tcp,
            other => {
                self.incoming.io = other;
                return Err(ClientError::Protocol("TLS is already in place".into()));
            }
        };
        let (stream, info) = tls_handshake(tcp, &self.cfg).await?;
        self.incoming.io = Transport::Tls(Box::new(stream));
        self.tls = Some(info);
        self.incoming.framer.reset();
        self.features = None;
        self.open_stream().await
    }

    /// The mechanism [`Client::login`] would choose: the configured one, or the best offered.
    pub fn choose_mechanism(&self) -> Result<String, ClientError> {
        if let Some(m) = &self.cfg.mechanism {
            return Ok(m.clone());
        }
        let features = self
            .features
            .as_ref()
            .ok_or_else(|| ClientError::Protocol("no stream features received yet".into()))?;
        choose_mechanism(features, self.tls.as_ref(), self.cfg.cb_type)
            .map(str::to_string)
            .ok_or_else(|| {
                ClientError::Config(format!(
                    "no usable SASL mechanism among {:?}",
                    features.mechanisms
                ))
            })
    }

    /// SASL authentication with `mechanism` (RFC 6120 §6.4). For SCRAM, the channel-binding
    /// flag follows RFC 5802 §6: `p` for -PLUS; `y` when TLS is in place but the server offers
    /// no -PLUS mechanism; `n` otherwise.
    pub async fn auth(&mut self, mechanism: &str) -> Result<(), ClientError> {
        let binding = self.default_binding(mechanism)?;
        self.auth_with(mechanism, binding).await
    }

    fn default_binding(&self, mechanism: &str) -> Result<ClientChannelBinding, ClientError> {
        let plus = mechanism.ends_with("-PLUS");
        let Some(tls) = self.tls.as_ref() else {
            if plus {
                return Err(ClientError::Config(format!(
                    "{mechanism} needs TLS for channel binding"
                )));
            }
            return Ok(ClientChannelBinding::None);
        };
        let empty = Features::parse(Element::new("features", NS_STREAMS));
        let features = self.features.as_ref().unwrap_or(&empty);
        if plus {
            let cb_type = choose_binding(features, tls, self.cfg.cb_type).ok_or_else(|| {
                ClientError::Config(format!(
                    "no channel-binding type in common for {mechanism} (server announces {:?})",
                    features.channel_bindings
                ))
            })?;
            let data = tls.binding(cb_type).map(<[u8]>::to_vec).unwrap_or_default();
            return Ok(ClientChannelBinding::Use { cb_type, data });
        }
        if features.mechanisms.iter().any(|m| m.ends_with("-PLUS")) {
            Ok(ClientChannelBinding::None)
        } else {
            Ok(ClientChannelBinding::SupportedNotUsed)
        }
    }

    /// SASL authentication with `mechanism` and an explicit SCRAM channel-binding choice
    /// (ignored by PLAIN and EXTERNAL).
    pub async fn auth_with(
        &mut self,
        mechanism: &str,
        binding: ClientChannelBinding,
    ) -> Result<(), ClientError> {
        let parsed = Mechanism::parse(mechanism);
        match parsed {
            Some(Mechanism::Scram { hash, .. }) => self.auth_scram(mechanism, hash, binding).await,
            Some(Mechanism::Plain) => {
                let initial = causerie_sasl::client::plain_initial_response(
                    None,
                    &self.cfg.username,
                    &self.cfg.password,
                );
                self.send_auth(mechanism, &initial).await?;
                self.expect_success(None).await
            }
            Some(Mechanism::External) => {
                // RFC 6120 §6.4.2: an empty initial response is sent as "=".
                self.send_auth(mechanism, b"").await?;
                self.expect_success(None).await
            }
            None => Err(ClientError::Config(format!(
                "SASL mechanism {mechanism} is not supported by this client"
            ))),
        }
    }

    async fn auth_scram(
        &mut self,
        mechanism: &str,
        hash: Hash,
        binding: ClientChannelBinding,
    ) -> Result<(), ClientError> {
        let mut scram = ScramClient::new(hash, &self.cfg.username, &self.cfg.password, binding);
        if self.downgrade_protection {
            let features = self.features.as_ref().ok_or_else(|| {
                ClientError::Protocol("downgrade protection needs the stream features".into())
            })?;
            let offered = features
                .mechanisms
                .iter()
                .filter_map(|m| Mechanism::parse(m))
                .collect();
            let cb_types = features
                .channel_bindings
                .iter()
                .flatten()
                .filter_map(|t| ChannelBindingType::parse(t))
                .collect();
            scram = scram.with_downgrade_protection(offered, cb_types);
        }
        let first = scram.client_first();
        self.send_auth(mechanism, &first).await?;
        let server_first = match self.recv_sasl().await? {
            SaslAnswer::Challenge(data) => data,
            SaslAnswer::Success(_) => {
                return Err(ClientError::Protocol(
                    "SASL success before the SCRAM exchange completed".into(),
                ));
            }
        };
        let client_final = scram.handle_server_first(&server_first)?;
        self.send_sasl("response", &client_final).await?;
        self.expect_success(Some(scram)).await
    }

    /// Waits for `<success/>`; for SCRAM, checks the server's signature, which RFC 6120 §6.4.6
    /// lets the server send either in `<success/>` or in a last `<challenge/>`.
    async fn expect_success(&mut self, scram: Option<ScramClient>) -> Result<(), ClientError> {
        match self.recv_sasl().await? {
            SaslAnswer::Success(data) => {
                if let Some(scram) = scram {
                    if data.is_empty() {
                        return Err(ClientError::Protocol(
                            "SASL success without the SCRAM server signature".into(),
                        ));
                    }
                    scram.handle_server_final(&data)?;
                }
            }
            SaslAnswer::Challenge(data) => {
                let Some(scram) = scram else {
                    return Err(ClientError::Protocol("unexpected SASL challenge".into()));
                };
                scram.handle_server_final(&data)?;
                self.send_sasl("response", b"").await?;
                match self.recv_sasl().await? {
                    SaslAnswer::Success(_) => {}
                    SaslAnswer::Challenge(_) => {
                        return Err(ClientError::Protocol(
                            "a SASL challenge after the SCRAM server signature".into(),
                        ));
                    }
                }
            }
        }
        self.authenticated = true;
        self.features = None;
        Ok(())
    }

    async fn send_auth(&mut self, mechanism: &str, initial: &[u8]) -> Result<(), ClientError> {
        let mut out = Vec::with_capacity(128 + initial.len() * 4 / 3);
        out.extend_from_slice(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='");
        causerie_xml::escape_attr(mechanism, &mut out);
        out.extend_from_slice(b"'>");
        push_sasl_data(initial, &mut out);
        out.extend_from_slice(b"</auth>");
        self.send_raw(&out).await
    }

    async fn send_sasl(&mut self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        let mut out = Vec::with_capacity(128 + data.len() * 4 / 3);
        out.extend_from_slice(b"<");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b" xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
        if !data.is_empty() {
            out.extend_from_slice(BASE64.encode(data).as_bytes());
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b">");
        self.send_raw(&out).await
    }

    async fn recv_sasl(&mut self) -> Result<SaslAnswer, ClientError> {
        let el = self.recv().await?;
        if el.is("failure", NS_SASL) {
            let (condition, text) = error_condition(&el, NS_SASL);
            return Err(ClientError::SaslFailure { condition, text });
        }
        let decode = |el: &Element| -> Result<Vec<u8>, ClientError> {
            let text = el.text();
            let text = text.trim();
            // RFC 6120 §6.4.6: "=" stands for empty additional data.
            if text.is_empty() || text == "=" {
                return Ok(Vec::new());
            }
            BASE64
                .decode(text)
                .map_err(|e| ClientError::Protocol(format!("SASL data is not base64: {e}")))
        };
        if el.is("challenge", NS_SASL) {
            return Ok(SaslAnswer::Challenge(decode(&el)?));
        }
        if el.is("success", NS_SASL) {
            return Ok(SaslAnswer::Success(decode(&el)?));
        }
        Err(ClientError::Protocol(format!(
            "expected a SASL answer, got <{}/>",
            el.name()
        )))
    }

    /// Stream restart (RFC 6120 §4.3.3): the parser starts over and a new header goes out.
    pub async fn restart(&mut self) -> Result<(), ClientError> {
        self.incoming.framer.reset();
        self.features = None;
        self.open_stream().await
    }

    fn new_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.next_id);
        self.next_id += 1;
        id
    }

    /// Resource binding (RFC 6120 §7.5/§7.6); returns the full JID the server bound.
    pub async fn bind(&mut self, resource: Option<&str>) -> Result<String, ClientError> {
        let mut bind = Element::new("bind", NS_BIND);
        if let Some(r) = resource {
            bind = bind.with_child(Element::new("resource", NS_BIND).with_text(r));
        }
        let id = self.new_id("bind");
        let iq = Element::new("iq", NS_CLIENT)
            .with_attr("type", "set")
            .with_attr("id", &id)
            .with_child(bind);
        let result = self.iq(&iq, &id).await?;
        let jid = result
            .get_child("bind", NS_BIND)
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(|j| j.text().trim().to_string())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| ClientError::Protocol("bind result without a <jid/>".into()))?;
        Ok(jid)
    }

    /// RFC 3921 §3: the legacy session request, for servers that still require it.
    pub async fn session(&mut self) -> Result<(), ClientError> {
        let id = self.new_id("session");
        let iq = Element::new("iq", NS_CLIENT)
            .with_attr("type", "set")
            .with_attr("id", &id)
            .with_child(Element::new("session", NS_SESSION));
        self.iq(&iq, &id).await.map(|_| ())
    }

    /// Sends an IQ and waits for its answer, skipping anything else; an error answer becomes
    /// [`ClientError::StanzaError`].
    async fn iq(&mut self, iq: &Element, id: &str) -> Result<Element, ClientError> {
        self.send(iq).await?;
        let deadline = self.deadline();
        let answer = self
            .incoming
            .next_matching(deadline, |el| {
                el.is("iq", NS_CLIENT) && el.attr("id") == Some(id)
            })
            .await?;
        check_iq_result(answer)
    }

    /// The negotiated session as a [`Client`] with the JID returned by [`Negotiation::bind`].
    pub fn into_client(self, jid: String) -> Client {
        let (rd, wr) = tokio::io::split(self.incoming.io);
        Client {
            reader: ClientReader {
                incoming: Incoming {
                    io: rd,
                    framer: self.incoming.framer,
                    buf: self.incoming.buf,
                },
            },
            writer: ClientWriter {
                io: wr,
                out: self.out,
            },
            jid,
        }
    }

    /// The whole negotiation of [`Client::login`], on a connection opened with `connect`.
    pub async fn negotiate(mut self) -> Result<Client, ClientError> {
        self.header().await?;
        let mut features = self.features().await?;
        if self.cfg.tls == TlsMode::StartTls {
            if features.starttls.is_none() {
                return Err(ClientError::Protocol(
                    "the server does not offer STARTTLS".into(),
                ));
            }
            self.starttls().await?;
            self.header().await?;
            features = self.features().await?;
        }
        if features.mechanisms.is_empty() {
            return Err(ClientError::Protocol(
                "the server offers no SASL mechanism".into(),
            ));
        }
        let mechanism = self.choose_mechanism()?;
        self.auth(&mechanism).await?;
        self.restart().await?;
        self.header().await?;
        let features = self.features().await?;
        if !features.bind {
            return Err(ClientError::Protocol(
                "the server does not offer resource binding".into(),
            ));
        }
        let resource = self.cfg.resource.clone();
        let jid = self.bind(resource.as_deref()).await?;
        // RFC 6121 Appendix E: the session feature is a no-op; send it only when a server marks
        // it mandatory.
        if features.session == Some(false) {
            self.session().await?;
        }
        Ok(self.into_client(jid))
    }
}

enum SaslAnswer {
    Challenge(Vec<u8>),
    Success(Vec<u8>),
}

/// RFC 6120 §6.4.2: SASL data in base64, "=" for an empty initial response.
fn push_sasl_data(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        out.push(b'=');
    } else {
        out.extend_from_slice(BASE64.encode(data).as_bytes());
    }
}

fn check_iq_result(answer: Element) -> Result<Element, ClientError> {
    match answer.attr("type") {
        Some("result") => Ok(answer),
        Some("error") => {
            let (condition, text) = answer
                .get_child("error", NS_CLIENT)
                .map(|e| error_condition(e, NS_STANZA_ERRORS))
                .unwrap_or_else(|| ("undefined-condition".to_string(), None));
            Err(ClientError::StanzaError { condition, text })
        }
        other => Err(ClientError::Protocol(format!(
            "IQ answer of type {other:?}"
        ))),
    }
}

/// A logged-in session with a bound resource.
pub struct Client {
    reader: ClientReader,
    writer: ClientWriter,
    jid: String,
}

impl Client {
    /// Connects and runs the whole negotiation (see the module documentation).
    pub async fn login(cfg: &ClientConfig) -> Result<Client, ClientError> {
        Negotiation::connect(cfg).await?.negotiate().await
    }

    /// The bound full JID.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    pub async fn send(&mut self, el: &Element) -> Result<(), ClientError> {
        self.writer.send(el).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.send_raw(bytes).await
    }

    /// The next top-level element within `timeout`. Cancel-safe.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Element, ClientError> {
        self.reader.recv(timeout).await
    }

    /// The next top-level element for which `pred` holds, skipping the others. Cancel-safe, but
    /// elements skipped before a cancellation are gone.
    pub async fn recv_matching(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Result<Element, ClientError> {
        self.reader.recv_matching(timeout, pred).await
    }

    /// Sends initial presence and waits until the server reflects it back (RFC 6121 §4.2.2: the
    /// server broadcasts it to all the user's available resources, the sender included). Once
    /// it returns, the server treats the session as available, so messages to the bare JID
    /// reach it. Anything else received meanwhile is skipped.
    pub async fn send_initial_presence(&mut self, timeout: Duration) -> Result<(), ClientError> {
        self.writer
            .send(&Element::new("presence", NS_CLIENT))
            .await?;
        let jid = self.jid.clone();
        self.reader
            .recv_matching(timeout, |el| {
                el.is("presence", NS_CLIENT)
                    && el.attr("from") == Some(jid.as_str())
                    && el.attr("type").is_none()
            })
            .await
            .map(|_| ())
    }

    /// Sends `</stream:stream>` and waits for the server's (RFC 6120 §4.4), skipping stanzas
    /// still in flight, then closes TLS and TCP.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.writer.send_raw(b"</stream:stream>").await?;
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let outcome = loop {
            match self.reader.incoming.next_event(deadline).await {
                Ok(FramerEvent::StreamClose) | Err(ClientError::Disconnected) => break Ok(()),
                Ok(FramerEvent::Element(el)) => {
                    if let Err(e) = check_stream_error(el) {
                        break Err(e);
                    }
                }
                Ok(FramerEvent::StreamOpen(_)) => {
                    break Err(ClientError::Protocol(
                        "a stream header while closing".into(),
                    ));
                }
                Err(e) => break Err(e),
            }
        };
        // The peer may already have dropped TCP after its close tag; that is not a failure.
        let _ = self.writer.io.shutdown().await;
        outcome
    }

    /// Separate halves, so one task can wait for stanzas while another sends.
    pub fn split(self) -> (ClientReader, ClientWriter) {
        (self.reader, self.writer)
    }

    /// Puts the halves of [`Client::split`] back together.
    pub fn unsplit(reader: ClientReader, writer: ClientWriter, jid: String) -> Client {
        Client {
            reader,
            writer,
            jid,
        }
    }
}

/// The receiving half of a [`Client`].
pub struct ClientReader {
    incoming: Incoming<ReadHalf<Transport>>,
}

impl ClientReader {
    /// The next top-level element within `timeout`. Cancel-safe.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Element, ClientError> {
        self.incoming.next_element(Instant::now() + timeout).await
    }

    /// The next top-level element for which `pred` holds, skipping the others.
    pub async fn recv_matching(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Result<Element, ClientError> {
        self.incoming
            .next_matching(Instant::now() + timeout, pred)
            .await
    }
}

/// The sending half of a [`Client`].
pub struct ClientWriter {
    io: WriteHalf<Transport>,
    out: Vec<u8>,
}

impl ClientWriter {
    pub async fn send(&mut self, el: &Element) -> Result<(), ClientError> {
        serialize(el, &mut self.out);
        write_bytes(&mut self.io, &self.out).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        write_bytes(&mut self.io, bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{KeyKind, TestCa, self_signed_with, test_ca};
    use rustls_pki_types::pem::PemObject;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("PEM certificate")
            .to_vec()
    }

    #[test]
    fn server_end_point_hash_follows_the_signature_algorithm() {
        // RFC 5929 §4.1: SHA-256 for SHA-256 signatures and for algorithms without their own
        // hash (Ed25519), the signature's hash otherwise.
        let p256 = der(&test_ca().issue(&["a.test"]).0);
        assert_eq!(signature_hash(&p256), SignatureHash::Sha256);
        assert_eq!(
            tls_server_end_point(&p256),
            sha2::Sha256::digest(&p256).to_vec()
        );

        let p384 = der(&TestCa::new(KeyKind::EcdsaP384).issue(&["a.test"]).0);
        assert_eq!(signature_hash(&p384), SignatureHash::Sha384);
        assert_eq!(
            tls_server_end_point(&p384),
            sha2::Sha384::digest(&p384).to_vec()
        );

        let ed = der(&self_signed_with(&["a.test"], KeyKind::Ed25519).0);
        assert_eq!(signature_hash(&ed), SignatureHash::Sha256);
    }

    #[test]
    fn der_reader_refuses_truncated_input() {
        let cert = der(&test_ca().issue(&["a.test"]).0);
        assert!(signature_algorithm_oid(&cert).is_some());
        for cut in [0, 1, 2, 10, cert.len() / 2] {
            assert_eq!(signature_algorithm_oid(&cert[..cut]), None, "cut at {cut}");
        }
        assert_eq!(der_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der_tlv(&[0x30, 0x80]), None);
        assert_eq!(
            der_tlv(&[0x04, 0x81, 0x01, 0xaa]),
            Some((0x04, &[0xaa][..], &[][..]))
        );
    }

    fn features(mechs: &[&str], cb: Option<&[&str]>) -> Features {
        let mut mechanisms = Element::new("mechanisms", NS_SASL);
        for m in mechs {
            mechanisms = mechanisms.with_child(Element::new("mechanism", NS_SASL).with_text(*m));
        }
        let mut el = Element::new("features", NS_STREAMS)
            .with_child(mechanisms)
            .with_child(Element::new("bind", NS_BIND))
            .with_child(
                Element::new("session", NS_SESSION)
                    .with_child(Element::new("optional", NS_SESSION)),
            );
        if let Some(types) = cb {
            let mut list = Element::new("sasl-channel-binding", NS_SASL_CB);
            for t in types {
                list = list
                    .with_child(Element::new("channel-binding", NS_SASL_CB).with_attr("type", *t));
            }
            el = el.with_child(list);
        }
        Features::parse(el)
    }

    fn tls13() -> TlsInfo {
        TlsInfo {
            version: Some(rustls::ProtocolVersion::TLSv1_3),
            exporter: Some(vec![1; 32]),
            server_end_point: Some(vec![2; 32]),
        }
    }

    fn tls12() -> TlsInfo {
        TlsInfo {
            version: Some(rustls::ProtocolVersion::TLSv1_2),
            exporter: None,
            server_end_point: Some(vec![2; 32]),
        }
    }

    #[test]
    fn features_are_read() {
        let f = features(&["SCRAM-SHA-1", "PLAIN"], Some(&["tls-exporter"]));
        assert_eq!(f.mechanisms, ["SCRAM-SHA-1", "PLAIN"]);
        assert_eq!(
            f.channel_bindings.as_deref(),
            Some(&["tls-exporter".to_string()][..])
        );
        assert!(f.bind);
        assert_eq!(f.session, Some(true));
        assert_eq!(f.starttls, None);
        let tls = Features::parse(Element::new("features", NS_STREAMS).with_child(
            Element::new("starttls", NS_TLS).with_child(Element::new("required", NS_TLS)),
        ));
        assert_eq!(tls.starttls, Some(true));
        assert!(tls.mechanisms.is_empty());
        assert!(!tls.bind);
    }

    #[test]
    fn best_mechanism_prefers_channel_binding_and_stronger_hashes() {
        let all = [
            "PLAIN",
            "SCRAM-SHA-1",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-256-PLUS",
        ];
        let f = features(&all, None);
        assert_eq!(
            choose_mechanism(&f, Some(&tls13()), None),
            Some("SCRAM-SHA-256-PLUS")
        );
        // Without TLS there is neither channel binding nor PLAIN.
        assert_eq!(choose_mechanism(&f, None, None), Some("SCRAM-SHA-256"));
        let plain_only = features(&["PLAIN"], None);
        assert_eq!(choose_mechanism(&plain_only, None, None), None);
        assert_eq!(
            choose_mechanism(&plain_only, Some(&tls13()), None),
            Some("PLAIN")
        );
    }

    #[test]
    fn channel_binding_type_follows_the_announcement_and_tls_version() {
        let none_announced = features(&["SCRAM-SHA-256-PLUS"], None);
        assert_eq!(
            choose_binding(&none_announced, &tls13(), None),
            Some(ChannelBindingType::TlsExporter)
        );
        // tls-exporter is not defined below TLS 1.3.
        assert_eq!(
            choose_binding(&none_announced, &tls12(), None),
            Some(ChannelBindingType::TlsServerEndPoint)
        );
        let endpoint_only = features(&["SCRAM-SHA-256-PLUS"], Some(&["tls-server-end-point"]));
        assert_eq!(
            choose_binding(&endpoint_only, &tls13(), None),
            Some(ChannelBindingType::TlsServerEndPoint)
        );
        let unique_only = features(
            &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
            Some(&["tls-unique"]),
        );
        assert_eq!(choose_binding(&unique_only, &tls13(), None), None);
        assert_eq!(
            choose_mechanism(&unique_only, Some(&tls13()), None),
            Some("SCRAM-SHA-256")
        );
        assert_eq!(
            choose_binding(
                &none_announced,
                &tls12(),
                Some(ChannelBindingType::TlsExporter)
            ),
            None
        );
    }

    #[test]
    fn stream_and_stanza_errors_are_decoded() {
        let err = Element::new("error", NS_STREAMS)
            .with_child(Element::new("host-unknown", NS_STREAM_ERRORS))
            .with_child(Element::new("text", NS_STREAM_ERRORS).with_text("no such host"));
        match check_stream_error(err) {
            Err(ClientError::StreamError { condition, text }) => {
                assert_eq!(condition, "host-unknown");
                assert_eq!(text.as_deref(), Some("no such host"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let iq = Element::new("iq", NS_CLIENT)
            .with_attr("type", "error")
            .with_attr("id", "x")
            .with_child(
                Element::new("error", NS_CLIENT)
                    .with_attr("type", "cancel")
                    .with_child(Element::new("conflict", NS_STANZA_ERRORS)),
            );
        match check_iq_result(iq) {
            Err(ClientError::StanzaError { condition, text }) => {
                assert_eq!(condition, "conflict");
                assert_eq!(text, None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn stream_header_escapes_attributes() {
        let header = stream_header("exa'mple.test", Some("a&b@exa'mple.test"));
        let header = String::from_utf8(header).expect("UTF-8");
        assert!(header.contains("to='exa&apos;mple.test'"), "{header}");
        assert!(
            header.contains("from='a&amp;b@exa&apos;mple.test'"),
            "{header}"
        );
        let mut framer = Framer::new(Limits::default());
        framer.feed(header.as_bytes());
        match framer.next_event() {
            Ok(Some(FramerEvent::StreamOpen(h))) => {
                assert_eq!(h.attr("to"), Some("exa'mple.test"));
                assert_eq!(h.attr("version"), Some("1.0"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
