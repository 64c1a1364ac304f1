//! A bound client session: one task that selects on the socket, the inbox and its timers.

use std::sync::Arc;
use std::time::Duration;

use causerie_core::metrics::{self, Stream};
use causerie_core::{Origin, OutStanza, Outbound, SessionHandle};
use causerie_stanza::{StanzaKind, StreamError, StreamErrorCondition as SE, ns};
use causerie_stream::{ReadError, XmlStream};
use causerie_xml::{Element, FramerEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::listener::C2sServer;

/// Most queued stanzas written in one batch before the socket is read again.
const WRITE_BATCH: usize = 64;
/// A peer that does not take our bytes for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    server: Arc<C2sServer>,
    mut stream: XmlStream,
    handle: SessionHandle,
    mut inbox: mpsc::Receiver<Outbound>,
    domain: String,
) {
    let jid = handle.jid().clone();
    tracing::info!(jid = %jid, session = handle.id(), peer = %stream.peer(), "session bound");
    server.core.session_bound(&handle);
    stream.shrink_buffers();
    let origin = Origin::Session(handle.clone());
    let mut shutdown = server.shutdown.clone();
    let idle = server.settings.idle_timeout;
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);

    let close: Option<StreamError> = loop {
        tokio::select! {
            biased;
            _ = handle.info.kill.notified() => {
                break Some(StreamError::new(SE::PolicyViolation).with_text("the client does not read fast enough"));
            }
            out = inbox.recv() => match out {
                Some(Outbound::Stanza(s)) => {
                    queue(&mut stream, &s);
                    // Take what else is waiting so that one flush carries a burst.
                    let mut closing = None;
                    for _ in 0..WRITE_BATCH {
                        match inbox.try_recv() {
                            Ok(Outbound::Stanza(s)) => queue(&mut stream, &s),
                            Ok(Outbound::Close(e)) => { closing = Some(*e); break; }
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = stream.flush_within(WRITE_TIMEOUT).await {
                        tracing::debug!(jid = %jid, error = %e, "write failed");
                        break None;
                    }
                    if let Some(e) = closing { break Some(e); }
                }
                Some(Outbound::Close(e)) => break Some(*e),
                None => break None,
            },
            ev = stream.read_event() => {
                idle_timer.as_mut().reset(Instant::now() + idle);
                match ev {
                    Ok(FramerEvent::Element(el)) => {
                        // Boxed for the same reason as negotiation: routing futures are deep, and the
                        // session task would otherwise carry their size while idle.
                        if let Err(e) = Box::pin(handle_element(&server, &origin, &handle, el)).await {
                            break Some(e);
                        }
                    }
                    Ok(FramerEvent::StreamClose) => {
                        // Unbound first, so that nothing more is routed here (it goes offline or to
                        // other resources instead); then RFC 6120 §4.4: answer with our own close
                        // after what is pending.
                        server.core.session_ended(&handle);
                        flush_inbox(&mut stream, &mut inbox);
                        stream.close(None, &domain).await;
                        tracing::info!(jid = %jid, session = handle.id(), "session closed by client");
                        return;
                    }
                    Ok(FramerEvent::StreamOpen(_)) => {
                        break Some(StreamError::new(SE::NotWellFormed).with_text("unexpected stream header"));
                    }
                    Err(ReadError::Stream(e)) => break Some(e),
                    Err(ReadError::Eof | ReadError::Io(_)) => {
                        server.core.session_ended(&handle);
                        tracing::info!(jid = %jid, session = handle.id(), "connection lost");
                        return;
                    }
                }
            }
            _ = &mut idle_timer => {
                break Some(StreamError::new(SE::ConnectionTimeout).with_text("no traffic for too long"));
            }
            _ = shutdown.changed() => {
                flush_inbox(&mut stream, &mut inbox);
                break Some(StreamError::new(SE::SystemShutdown).with_text("the server is shutting down"));
            }
        }
    };
    // Unbind first, so nothing new is queued for a session that is going away; what was queued
    // before still goes out ahead of the close.
    server.core.session_ended(&handle);
    flush_inbox(&mut stream, &mut inbox);
    if let Some(e) = &close {
        tracing::info!(jid = %jid, session = handle.id(), error = %e, "closing session");
    }
    stream.close(close.as_ref(), &domain).await;
}

/// Queues whatever the inbox still holds, so a clean close loses nothing already routed here.
fn flush_inbox(stream: &mut XmlStream, inbox: &mut mpsc::Receiver<Outbound>) {
    while let Ok(Outbound::Stanza(s)) = inbox.try_recv() {
        queue(stream, &s);
    }
}

/// Queues a routed stanza's bytes for the writer, counting it by kind.
fn queue(stream: &mut XmlStream, s: &OutStanza) {
    if let Some(kind) = s.kind {
        metrics::stanza_sent(Stream::C2s, kind);
    }
    stream.queue_bytes(s.bytes());
}

/// One element from a bound client.
async fn handle_element(
    server: &Arc<C2sServer>,
    origin: &Origin,
    handle: &SessionHandle,
    mut el: Element,
) -> Result<(), StreamError> {
    let Some(kind) = StanzaKind::of(&el) else {
        if el.ns() == ns::CLIENT {
            return Err(StreamError::new(SE::UnsupportedStanzaType)
                .with_text(format!("<{}/> is not a stanza", el.name())));
        }
        // Stream-level elements of extensions (XEP-0352 `<active/>`, …), answered on this stream.
        if let Some(reply) = server.core.handle_nonza(handle, &el)? {
            handle
                .deliver(causerie_core::Outbound::Stanza(
                    causerie_core::OutStanza::new(reply),
                ))
                .map_err(|_| {
                    StreamError::new(SE::PolicyViolation)
                        .with_text("the client does not read fast enough")
                })?;
        }
        return Ok(());
    };
    metrics::stanza_received(Stream::C2s, kind);
    if el.ns() != ns::CLIENT {
        return Err(StreamError::new(SE::InvalidNamespace));
    }
    // RFC 6120 §8.1.2.1: the server stamps the full JID of the session, whatever the client wrote.
    el.set_attr("from", handle.jid().as_str());
    if kind == StanzaKind::Iq && is_session_establishment(&el, handle) {
        let reply = causerie_stanza::iq_result(&el);
        server
            .core
            .send_local_or_remote(with_from_domain(reply, handle));
        return Ok(());
    }
    server.core.process(origin, el).await
}

/// The RFC 3921 `<session/>` request, answered with success for older clients.
fn is_session_establishment(iq: &Element, handle: &SessionHandle) -> bool {
    iq.attr("type") == Some("set")
        && iq.has_child("session", ns::SESSION)
        && iq.attr("to").is_none_or(|t| t == handle.jid().domain())
}

fn with_from_domain(mut reply: Element, handle: &SessionHandle) -> Element {
    reply.set_attr("from", handle.jid().domain());
    reply
}
