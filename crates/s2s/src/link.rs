//! An authenticated stream at work: one task that writes the stanzas queued for the peer, reads
//! what the peer sends, and closes the stream when it has been idle, on shutdown or on error.

use std::sync::Arc;

use causerie_core::OutStanza;
use causerie_stanza::{StanzaKind, StreamError, StreamErrorCondition as SE, ns};
use causerie_stream::{ReadError, XmlStream};
use causerie_xml::{Element, FramerEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::conn::{self, Authorized, Failure};
use crate::inbound::Inbound;
use crate::server::S2s;

/// Which side of the stream we are.
pub(crate) enum Role {
    /// We opened it. Only a bidirectional stream (XEP-0288) carries stanzas back to us.
    Outbound { authorized: Authorized },
    /// The peer opened it; more domain pairs may be authenticated on it later (dialback).
    Inbound(Box<Inbound>),
}

impl Role {
    fn authorized(&self) -> &Authorized {
        match self {
            Role::Outbound { authorized } => authorized,
            Role::Inbound(i) => &i.authorized,
        }
    }
}

/// Runs the stream until it ends. `rx` is the queue of stanzas for the peer, when the stream is a
/// route for our stanzas (outgoing streams, and incoming bidirectional ones).
pub(crate) async fn serve(
    s2s: &Arc<S2s>,
    mut stream: XmlStream,
    mut role: Role,
    local: &str,
    mut rx: Option<&mut mpsc::Receiver<Arc<OutStanza>>>,
) {
    stream.shrink_buffers();
    let idle = s2s.settings.idle_timeout;
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut shutdown = s2s.shutdown.clone();
    let close: Option<StreamError> = loop {
        tokio::select! {
            biased;
            out = async {
                match rx.as_deref_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match out {
                Some(first) => {
                    idle_timer.as_mut().reset(Instant::now() + idle);
                    let Some(rx) = rx.as_deref_mut() else { break None };
                    if let Err(f) = conn::write_queued(&mut stream, first, rx).await {
                        tracing::debug!(peer = %stream.peer(), reason = %f.describe(), "s2s write failed");
                        return;
                    }
                }
                // The pool dropped this route (the domain is no longer allowed).
                None => break Some(StreamError::new(SE::PolicyViolation).with_text("federation with this domain has ended")),
            },
            ev = stream.read_event() => {
                idle_timer.as_mut().reset(Instant::now() + idle);
                match ev {
                    Ok(FramerEvent::Element(el)) => {
                        match Box::pin(handle(s2s, &mut stream, &mut role, el)).await {
                            Ok(()) => {}
                            Err(Failure::Stream(e)) => break Some(e),
                            Err(Failure::Gone(why)) => {
                                tracing::debug!(peer = %stream.peer(), reason = %why, "s2s stream ended");
                                break None;
                            }
                            Err(Failure::Timeout) => break None,
                        }
                    }
                    Ok(FramerEvent::StreamClose) => break None,
                    Ok(FramerEvent::StreamOpen(_)) => {
                        break Some(StreamError::new(SE::NotWellFormed).with_text("unexpected stream header"));
                    }
                    Err(ReadError::Stream(e)) => break Some(e),
                    Err(ReadError::Eof | ReadError::Io(_)) => return,
                }
            }
            _ = &mut idle_timer => {
                tracing::debug!(peer = %stream.peer(), "closing idle s2s stream");
                break None;
            }
            _ = shutdown.changed() => {
                break Some(StreamError::new(SE::SystemShutdown).with_text("the server is shutting down"));
            }
        }
    };
    if let Some(e) = &close {
        tracing::info!(peer = %stream.peer(), error = %e, "closing s2s stream");
    }
    stream.close(close.as_ref(), local).await;
}

/// One element from the peer on an authenticated stream.
async fn handle(
    s2s: &Arc<S2s>,
    stream: &mut XmlStream,
    role: &mut Role,
    el: Element,
) -> Result<(), Failure> {
    if el.is("error", ns::STREAMS) {
        let text = StreamError::from_element(&el)
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Err(Failure::Gone(format!("peer sent a stream error: {text}")));
    }
    if StanzaKind::of(&el).is_some() {
        return conn::receive_stanza(s2s, role.authorized(), el)
            .await
            .map_err(Failure::Stream);
    }
    match role {
        Role::Inbound(inbound) => inbound.handle_control(s2s, stream, el).await,
        // Nothing but stanzas is expected from the peer on a stream we opened.
        Role::Outbound { .. } => Ok(()),
    }
}
