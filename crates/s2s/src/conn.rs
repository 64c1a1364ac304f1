//! What incoming and outgoing streams share: namespaces, reading with a deadline, stanzas
//! received from a peer (checked, then handed to the core), and writing queued stanzas.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use causerie_core::metrics::{self, Stream};
use causerie_core::{Origin, OutStanza};
use causerie_stanza::{StanzaKind, StreamError, StreamErrorCondition as SE, ns};
use causerie_stream::{ReadError, XmlStream};
use causerie_xml::{Element, FramerEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::policy::Decision;
use crate::server::S2s;

/// Server dialback (XEP-0220).
pub const NS_DIALBACK: &str = "jabber:server:dialback";
/// The stream feature announcing dialback (XEP-0220 §2.1.1).
pub const NS_DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
/// Bidirectional streams (XEP-0288): the feature, and the request.
pub const NS_BIDI_FEATURE: &str = "urn:xmpp:features:bidi";
pub const NS_BIDI: &str = "urn:xmpp:bidi";
/// Declared on every s2s stream header so that peers may use the `db:` prefix.
pub const HEADER_EXTRA: &str = " xmlns:db='jabber:server:dialback'";

/// Most stanzas written in one batch before the socket is read again.
const WRITE_BATCH: usize = 64;
/// A peer that does not take our bytes for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a stream could not go on.
#[derive(Debug)]
pub enum Failure {
    /// The transport ended or failed; nothing more can be sent.
    Gone(String),
    /// The stream is to be closed with this error.
    Stream(StreamError),
    /// The negotiation deadline passed.
    Timeout,
}

impl Failure {
    pub fn describe(&self) -> String {
        match self {
            Failure::Gone(why) => why.clone(),
            Failure::Stream(e) => e.to_string(),
            Failure::Timeout => "timed out".to_owned(),
        }
    }
}

/// Reads the next event before `deadline`.
pub async fn read_until(stream: &mut XmlStream, deadline: Instant) -> Result<FramerEvent, Failure> {
    match tokio::time::timeout_at(deadline, stream.read_event()).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Ok(ev)) => Ok(ev),
        Ok(Err(ReadError::Stream(e))) => Err(Failure::Stream(e)),
        Ok(Err(ReadError::Eof)) => Err(Failure::Gone("connection closed by peer".to_owned())),
        Ok(Err(ReadError::Io(e))) => Err(Failure::Gone(e.to_string())),
    }
}

/// Reads the next element, treating a stream error or close from the peer as the end.
pub async fn read_element(stream: &mut XmlStream, deadline: Instant) -> Result<Element, Failure> {
    match read_until(stream, deadline).await? {
        FramerEvent::Element(el) if el.is("error", ns::STREAMS) => {
            let text = StreamError::from_element(&el)
                .map(|e| e.to_string())
                .unwrap_or_else(|| "stream error".to_owned());
            Err(Failure::Gone(format!("peer sent a stream error: {text}")))
        }
        FramerEvent::Element(el) => Ok(el),
        FramerEvent::StreamClose => Err(Failure::Gone("peer closed the stream".to_owned())),
        FramerEvent::StreamOpen(_) => Err(Failure::Stream(
            StreamError::new(SE::NotWellFormed).with_text("unexpected stream header"),
        )),
    }
}

pub async fn flush(stream: &mut XmlStream) -> Result<(), Failure> {
    stream
        .flush_within(WRITE_TIMEOUT)
        .await
        .map_err(|e| Failure::Gone(e.to_string()))
}

/// Writes one queued stanza and whatever else is waiting, in one flush.
pub async fn write_queued(
    stream: &mut XmlStream,
    first: Arc<OutStanza>,
    rx: &mut mpsc::Receiver<Arc<OutStanza>>,
) -> Result<(), Failure> {
    queue(stream, &first);
    for _ in 0..WRITE_BATCH {
        match rx.try_recv() {
            Ok(s) => queue(stream, &s),
            Err(_) => break,
        }
    }
    flush(stream).await
}

/// Queues a routed stanza's bytes for the writer, counting it by kind.
fn queue(stream: &mut XmlStream, s: &OutStanza) {
    if let Some(kind) = s.kind {
        metrics::stanza_sent(Stream::S2s, kind);
    }
    stream.queue_bytes(s.bytes());
}

/// The (remote, local) domain pairs a stream may carry stanzas for.
#[derive(Debug, Default)]
pub struct Authorized {
    pairs: HashSet<(String, String)>,
}

impl Authorized {
    pub fn insert(&mut self, remote: &str, local: &str) {
        self.pairs.insert((remote.to_owned(), local.to_owned()));
    }

    pub fn contains(&self, remote: &str, local: &str) -> bool {
        self.pairs.iter().any(|(r, l)| r == remote && l == local)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Whether the stream authenticated `remote` for any local domain.
    pub fn has_remote(&self, remote: &str) -> bool {
        self.pairs.iter().any(|(r, _)| r == remote)
    }

    pub fn first_remote(&self) -> Option<&str> {
        self.pairs.iter().next().map(|(r, _)| r.as_str())
    }
}

/// A stanza received from a peer server (RFC 6120 §4.9.3.9, §8.1.1.2, §8.1.2.2): it must carry
/// `from` and `to`, come from a domain this stream authenticated, to a domain this server hosts,
/// and federation with the sender must still be allowed. Then it is moved to the namespace local
/// sessions use and handed to the core.
pub async fn receive_stanza(
    s2s: &Arc<S2s>,
    authorized: &Authorized,
    mut el: Element,
) -> Result<(), StreamError> {
    if let Some(kind) = StanzaKind::of(&el) {
        metrics::stanza_received(Stream::S2s, kind);
    }
    if el.ns() != ns::SERVER {
        return Err(StreamError::new(SE::InvalidNamespace)
            .with_text("stanzas between servers are in the jabber:server namespace"));
    }
    let from = match causerie_stanza::from_jid(&el) {
        Ok(Some(j)) => j,
        _ => {
            return Err(StreamError::new(SE::ImproperAddressing)
                .with_text("a stanza between servers needs a valid 'from'"));
        }
    };
    let to = match causerie_stanza::to_jid(&el) {
        Ok(Some(j)) => j,
        _ => {
            return Err(StreamError::new(SE::ImproperAddressing)
                .with_text("a stanza between servers needs a valid 'to'"));
        }
    };
    if !s2s.core.is_local_domain(to.domain()) {
        return Err(StreamError::new(SE::HostUnknown)
            .with_text(format!("{} is not hosted here", to.domain())));
    }
    if !authorized.has_remote(from.domain()) {
        tracing::warn!(from = %from, to = %to, "stanza from a domain the stream did not authenticate");
        return Err(StreamError::new(SE::InvalidFrom).with_text(format!(
            "this stream is not authenticated for {}",
            from.domain()
        )));
    }
    if !authorized.contains(from.domain(), to.domain()) {
        // Authenticated towards another of our domains (RFC 6120 §4.7.2: a stream serves the
        // domain pair it was opened for).
        return Err(StreamError::new(SE::ImproperAddressing).with_text(format!(
            "this stream is authenticated for {} to another domain than {}",
            from.domain(),
            to.domain()
        )));
    }
    if let Decision::Refused(why) = s2s.policy().decide(from.domain()) {
        tracing::warn!(from = %from, to = %to, reason = why, "stanza from a domain federation does not allow");
        return Err(StreamError::new(SE::PolicyViolation).with_text(why));
    }
    el.rename_ns(ns::SERVER, ns::CLIENT);
    let origin = Origin::Remote {
        domain: from.domain().to_owned(),
    };
    s2s.core.process(&origin, el).await
}

/// A `<db:result/>` or `<db:verify/>` answer.
pub fn dialback_element(
    name: &str,
    from: &str,
    to: &str,
    id: Option<&str>,
    kind: Option<&str>,
) -> Element {
    let mut el = Element::new(name, NS_DIALBACK)
        .with_attr("from", from)
        .with_attr("to", to);
    if let Some(id) = id {
        el.set_attr("id", id);
    }
    if let Some(kind) = kind {
        el.set_attr("type", kind);
    }
    el
}

/// Queues a dialback element with the `db:` prefix bound on our stream header. XEP-0220 writes
/// them so, and some servers match the prefixed name rather than the namespace.
pub fn queue_dialback(stream: &mut XmlStream, el: &Element) {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"<db:");
    out.extend_from_slice(el.name().as_bytes());
    for (k, v) in el.attrs() {
        out.push(b' ');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"='");
        causerie_xml::escape_attr(v, &mut out);
        out.push(b'\'');
    }
    if el.nodes().is_empty() {
        out.extend_from_slice(b"/>");
    } else {
        out.push(b'>');
        for node in el.nodes() {
            match node {
                causerie_xml::Node::Text(t) => causerie_xml::escape_text(t, &mut out),
                causerie_xml::Node::Element(c) => c.write_to(&mut out, ns::SERVER),
            }
        }
        out.extend_from_slice(b"</db:");
        out.extend_from_slice(el.name().as_bytes());
        out.push(b'>');
    }
    stream.queue_bytes(&out);
}

/// A dialback error answer (XEP-0220 §2.4) with a stanza error condition.
pub fn dialback_error(name: &str, from: &str, to: &str, condition: &str, text: &str) -> Element {
    let err = Element::new("error", ns::SERVER)
        .with_attr("type", "cancel")
        .with_child(Element::new(condition, ns::STANZAS))
        .with_child(
            Element::new("text", ns::STANZAS)
                .with_attr("xml:lang", "en")
                .with_text(text),
        );
    dialback_element(name, from, to, None, Some("error")).with_child(err)
}

/// A random stream id: 128 bits, since dialback keys are bound to it (XEP-0185 §4).
pub fn random_id() -> String {
    causerie_stream::random_hex(16)
}

/// Prepares a domain named by a peer, as a JID domainpart.
pub fn prepare_domain(d: &str) -> Option<String> {
    causerie_jid::prepare_domain(d).ok()
}
