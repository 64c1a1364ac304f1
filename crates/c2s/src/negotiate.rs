//! Negotiation of a client stream (RFC 6120 §4.3): header, features, STARTTLS, SASL, bind.

use std::net::SocketAddr;
use std::sync::Arc;

use causerie_core::{BindOutcome, SessionHandle};
use causerie_jid::{FullJid, prepare_resourcepart};
use causerie_stanza::{
    StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition as SE, ns,
};
use causerie_stream::{Io, ReadError, XmlStream, check_header};
use causerie_xml::{Element, FramerEvent};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::auth::{AuthOutcome, authenticate};
use crate::listener::C2sServer;

/// How far the stream has come.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Before TLS (only reachable on the STARTTLS port).
    Plain,
    /// Encrypted, not authenticated.
    Secured,
    /// Authenticated as this localpart, not bound yet.
    Authenticated(String),
}

/// Failed SASL attempts on one stream.
#[derive(Default)]
struct Failures {
    attempts: u32,
    credentials: u32,
}

/// Why negotiation ended without a session.
pub(crate) enum Ended {
    /// Already closed (or the peer went away).
    Closed,
}

pub(crate) async fn run_connection(
    server: Arc<C2sServer>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) {
    let limits = server.settings.limits;
    let deadline = Instant::now() + server.settings.handshake_timeout;
    let stream = if direct_tls {
        match tokio::time::timeout_at(
            deadline,
            XmlStream::accept_tls(tcp, &server.tls.acceptor, peer, limits, ns::CLIENT),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "direct TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "direct TLS handshake timed out");
                return;
            }
        }
    } else {
        XmlStream::new(Io::Plain(tcp), peer, limits, ns::CLIENT)
    };
    let phase = if direct_tls {
        Phase::Secured
    } else {
        Phase::Plain
    };
    // Boxed: negotiation state is large and short-lived; left inline it would make every idle
    // session's task as large as the biggest negotiation step.
    match Box::pin(negotiate(&server, stream, phase, deadline)).await {
        Ok((stream, handle, inbox, domain)) => {
            crate::session::run(server, stream, handle, inbox, domain).await;
        }
        Err(Ended::Closed) => {}
    }
}

type Negotiated = (
    XmlStream,
    SessionHandle,
    tokio::sync::mpsc::Receiver<causerie_core::Outbound>,
    String,
);

async fn negotiate(
    server: &Arc<C2sServer>,
    mut stream: XmlStream,
    mut phase: Phase,
    deadline: Instant,
) -> Result<Negotiated, Ended> {
    let mut domain = server.default_domain();
    let mut auth_failures = Failures::default();
    'restart: loop {
        // Each (re)started stream begins with the client's header (RFC 6120 §4.3.3).
        let header = match read(&mut stream, deadline, &domain).await? {
            FramerEvent::StreamOpen(h) => h,
            _ => {
                return fail(
                    &mut stream,
                    &domain,
                    StreamError::new(SE::NotWellFormed).with_text("expected a stream header"),
                )
                .await;
            }
        };
        if let Err(e) = check_header(&header, ns::CLIENT) {
            return fail(&mut stream, &domain, e).await;
        }
        match header.attr("to").map(causerie_jid::prepare_domain) {
            Some(Ok(d)) if server.core.is_local_domain(&d) => domain = d,
            Some(_) | None => {
                let e = StreamError::new(SE::HostUnknown)
                    .with_text("this server does not host that domain");
                return fail(&mut stream, &domain, e).await;
            }
        }
        let id = crate::random_id();
        // RFC 6120 §4.7.2: echo the initiator's `from` as `to` only when it is a JID.
        let client_from = header
            .attr("from")
            .and_then(|f| causerie_jid::Jid::parse(f).ok())
            .map(|j| j.to_string());
        stream.queue_header(&domain, client_from.as_deref(), &id);
        let mut offered = features(server, &stream, &phase);
        if let Phase::Authenticated(user) = &phase
            && let Ok(account) = causerie_jid::BareJid::new(Some(user), &domain)
        {
            for extra in server.core.account_features(&account).await {
                offered.push_child(extra);
            }
        }
        stream.queue(&offered);
        flush(&mut stream, &domain).await?;

        loop {
            let el = match read(&mut stream, deadline, &domain).await? {
                FramerEvent::Element(el) => el,
                FramerEvent::StreamClose => {
                    stream.close(None, &domain).await;
                    return Err(Ended::Closed);
                }
                FramerEvent::StreamOpen(_) => {
                    return fail(
                        &mut stream,
                        &domain,
                        StreamError::new(SE::NotWellFormed).with_text("unexpected stream header"),
                    )
                    .await;
                }
            };
            match &phase {
                Phase::Plain if el.is("starttls", ns::TLS) => {
                    stream = starttls(server, stream, &domain).await?;
                    phase = Phase::Secured;
                    continue 'restart;
                }
                Phase::Plain if server.settings.require_encryption => {
                    // RFC 6120 §5.3.1: with TLS required, anything else before it is refused.
                    let e = StreamError::new(SE::PolicyViolation).with_text("STARTTLS is required");
                    return fail(&mut stream, &domain, e).await;
                }
                // Unencrypted c2s exists only for loopback tests; the mechanisms offered there
                // exclude PLAIN and -PLUS.
                Phase::Plain | Phase::Secured if el.is("auth", ns::SASL) => {
                    let outcome = authenticate(server, &mut stream, &el, &domain, deadline).await;
                    crate::metrics::login(&el, &outcome);
                    match outcome? {
                        AuthOutcome::Success(user) => {
                            phase = Phase::Authenticated(user);
                            stream.restart();
                            continue 'restart;
                        }
                        AuthOutcome::Failed { credentials } => {
                            auth_failed(
                                server,
                                &mut stream,
                                &domain,
                                &mut auth_failures,
                                credentials,
                            )
                            .await?
                        }
                    }
                }
                Phase::Plain | Phase::Secured => {
                    // RFC 6120 §6.4.1 / §8.1.1: nothing but SASL before authentication.
                    let e = StreamError::new(SE::NotAuthorized).with_text("authenticate first");
                    return fail(&mut stream, &domain, e).await;
                }
                Phase::Authenticated(user) => {
                    if !(el.is("iq", ns::CLIENT) && el.has_child("bind", ns::BIND)) {
                        // RFC 6120 §7.1: no stanzas before a resource is bound.
                        let e =
                            StreamError::new(SE::NotAuthorized).with_text("bind a resource first");
                        return fail(&mut stream, &domain, e).await;
                    }
                    match bind(server, &el, user, &domain, stream.peer()) {
                        Ok((handle, inbox, reply)) => {
                            stream.queue(&reply);
                            flush(&mut stream, &domain).await?;
                            // Before the first stanza is read: a hook may restrict the session.
                            server.core.session_binding(&handle).await;
                            return Ok((stream, handle, inbox, domain));
                        }
                        Err(reply) => {
                            stream.queue(&reply);
                            flush(&mut stream, &domain).await?;
                        }
                    }
                }
            }
        }
    }
}

/// The stream features for the current phase (RFC 6120 §4.3.2).
fn features(server: &C2sServer, stream: &XmlStream, phase: &Phase) -> Element {
    let mut f = Element::new("features", ns::STREAMS);
    match phase {
        Phase::Plain => {
            let mut tls = Element::new("starttls", ns::TLS);
            if server.settings.require_encryption {
                tls.push_child(Element::new("required", ns::TLS));
            } else {
                f.push_child(crate::auth::mechanisms_element(server, stream));
            }
            f.nodes_mut().insert(0, causerie_xml::Node::Element(tls));
        }
        Phase::Secured => {
            f.push_child(crate::auth::mechanisms_element(server, stream));
            if let Some(cb) = crate::auth::channel_binding_element(server, stream) {
                f.push_child(cb);
            }
        }
        Phase::Authenticated(_) => {
            f.push_child(Element::new("bind", ns::BIND));
            // Session establishment (RFC 3921 §3) is obsolete; it is still advertised, as optional, for
            // older clients that send it anyway.
            f.push_child(
                Element::new("session", ns::SESSION)
                    .with_child(Element::new("optional", ns::SESSION)),
            );
            for extra in server.core.stream_features() {
                f.push_child(extra.clone());
            }
        }
    }
    f
}

async fn starttls(
    server: &C2sServer,
    mut stream: XmlStream,
    domain: &str,
) -> Result<XmlStream, Ended> {
    if stream.buffered() > 0 {
        // Bytes sent after <starttls/> and before <proceed/> would otherwise be taken as if they came
        // through TLS (the classic STARTTLS command injection); RFC 6120 §5.4.3.3 gives <failure/>.
        stream.queue(&Element::new("failure", ns::TLS));
        stream.close(None, domain).await;
        return Err(Ended::Closed);
    }
    stream.queue(&Element::new("proceed", ns::TLS));
    flush(&mut stream, domain).await?;
    let peer = stream.peer();
    match tokio::time::timeout(
        server.settings.handshake_timeout,
        stream.starttls(&server.tls.acceptor),
    )
    .await
    {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "STARTTLS handshake failed");
            Err(Ended::Closed)
        }
        Err(_) => {
            tracing::debug!(%peer, "STARTTLS handshake timed out");
            Err(Ended::Closed)
        }
    }
}

/// Attempts of any kind allowed on one stream, so that a client cannot loop forever; clients walk
/// through mechanisms and channel-binding types they cannot use before finding one that works.
const MAX_SASL_ATTEMPTS: u32 = 12;

async fn auth_failed(
    server: &C2sServer,
    stream: &mut XmlStream,
    domain: &str,
    failures: &mut Failures,
    credentials: bool,
) -> Result<(), Ended> {
    failures.attempts += 1;
    if credentials {
        failures.credentials += 1;
    }
    if failures.credentials >= server.settings.max_auth_attempts_per_stream
        || failures.attempts >= MAX_SASL_ATTEMPTS
    {
        // RFC 6120 §6.4.5: the server may close after a number of retries.
        let e = StreamError::new(SE::PolicyViolation)
            .with_text("too many failed authentication attempts");
        return fail(stream, domain, e).await;
    }
    Ok(())
}

/// Binds a resource (RFC 6120 §7). On success: the session handle, its inbox and the IQ result.
fn bind(
    server: &C2sServer,
    iq: &Element,
    user: &str,
    domain: &str,
    peer: SocketAddr,
) -> Result<
    (
        SessionHandle,
        tokio::sync::mpsc::Receiver<causerie_core::Outbound>,
        Element,
    ),
    Element,
> {
    let err = |e: StanzaError| causerie_stanza::error_reply(iq, &e);
    if iq.attr("type") != Some("set") || iq.attr("id").is_none() {
        return Err(err(StanzaError::new(StanzaErrorCondition::BadRequest)
            .with_text("bind is an IQ set with an id")));
    }
    let requested = iq
        .get_child("bind", ns::BIND)
        .and_then(|b| b.get_child("resource", ns::BIND))
        .map(|r| r.text())
        .filter(|r| !r.trim().is_empty());
    let resource = match requested {
        Some(r) => match prepare_resourcepart(r.trim()) {
            Ok(r) => r,
            Err(_) => {
                return Err(err(StanzaError::new(StanzaErrorCondition::BadRequest)
                    .with_text("invalid resource")));
            }
        },
        None => crate::random_id(),
    };
    let jid = match FullJid::new(Some(user), domain, &resource) {
        Ok(j) => j,
        Err(_) => {
            return Err(err(
                StanzaError::new(StanzaErrorCondition::BadRequest).with_text("invalid resource")
            ));
        }
    };
    let (handle, inbox) = SessionHandle::new(
        server.next_session_id(),
        jid.clone(),
        Some(peer),
        server.settings.send_queue_len,
    );
    match server
        .core
        .registry
        .bind(handle.clone(), server.core.max_sessions_per_user)
    {
        BindOutcome::Bound => {}
        BindOutcome::Replaced(old) => {
            // RFC 6120 §7.7.2.2: the newer session wins; the older one is told why it goes.
            tracing::info!(jid = %jid, "resource conflict, closing the older session");
            // Its own task ends it; unbinding by session id leaves the new entry in place.
            old.close(
                StreamError::new(SE::Conflict)
                    .with_text("replaced by a new session with the same resource"),
            );
        }
        BindOutcome::TooManySessions => {
            return Err(err(StanzaError::new(
                StanzaErrorCondition::ResourceConstraint,
            )
            .with_text("too many sessions for this account")));
        }
    }
    let mut reply = causerie_stanza::iq_result(iq);
    reply.remove_attr("from");
    reply.remove_attr("to");
    reply.push_child(
        Element::new("bind", ns::BIND)
            .with_child(Element::new("jid", ns::BIND).with_text(jid.as_str())),
    );
    Ok((handle, inbox, reply))
}

/// Reads the next event before the negotiation deadline, closing the stream on any failure.
async fn read(
    stream: &mut XmlStream,
    deadline: Instant,
    domain: &str,
) -> Result<FramerEvent, Ended> {
    match tokio::time::timeout_at(deadline, stream.read_event()).await {
        Ok(Ok(ev)) => Ok(ev),
        Ok(Err(ReadError::Stream(e))) => fail(stream, domain, e).await,
        Ok(Err(ReadError::Eof | ReadError::Io(_))) => Err(Ended::Closed),
        Err(_) => {
            let e = StreamError::new(SE::ConnectionTimeout)
                .with_text("stream negotiation took too long");
            fail(stream, domain, e).await
        }
    }
}

pub(crate) async fn flush(stream: &mut XmlStream, _domain: &str) -> Result<(), Ended> {
    match stream
        .flush_within(std::time::Duration::from_secs(30))
        .await
    {
        Ok(()) => Ok(()),
        Err(_) => Err(Ended::Closed),
    }
}

pub(crate) async fn fail<T>(
    stream: &mut XmlStream,
    domain: &str,
    e: StreamError,
) -> Result<T, Ended> {
    tracing::debug!(peer = %stream.peer(), error = %e, "closing client stream");
    stream.close(Some(&e), domain).await;
    Err(Ended::Closed)
}
