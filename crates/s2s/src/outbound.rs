//! Outgoing streams (RFC 6120 §4–§6 as the initiating entity): find the peer, connect, STARTTLS
//! or direct TLS, authenticate with SASL EXTERNAL or dialback, then carry the queued stanzas.
//! The same negotiation opens the short connections that ask an authoritative server to verify a
//! dialback key (XEP-0220 §2.1.3).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use causerie_core::OutStanza;
use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond, ns};
use causerie_stream::{Io, XmlStream, check_header};
use causerie_xml::{Element, FramerEvent};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::conn::{
    self, Failure, HEADER_EXTRA, NS_BIDI, NS_BIDI_FEATURE, NS_DIALBACK, NS_DIALBACK_FEATURE,
};
use crate::resolve::{ResolveError, Target};
use crate::server::{AuthMethod, Direction, S2s, StreamInfo};

/// Why no stream could be set up.
#[derive(Debug)]
pub(crate) struct SetupError {
    pub condition: Cond,
    pub reason: String,
}

impl SetupError {
    fn not_found(reason: impl Into<String>) -> Self {
        SetupError {
            condition: Cond::RemoteServerNotFound,
            reason: reason.into(),
        }
    }

    fn timeout() -> Self {
        SetupError {
            condition: Cond::RemoteServerTimeout,
            reason: "the remote server could not be reached in time".to_owned(),
        }
    }

    fn stanza_error(&self) -> StanzaError {
        StanzaError::new(self.condition).with_text(self.reason.clone())
    }
}

/// What a connection is opened for.
enum Purpose {
    /// An authenticated stream for our stanzas.
    Stanzas,
    /// One `<db:verify/>` question to the authoritative server of the remote domain.
    Verify(Element),
}

/// The result of a negotiation.
enum Negotiated {
    Stream {
        stream: Box<XmlStream>,
        method: AuthMethod,
        bidi: bool,
    },
    Verified(bool),
}

/// Serves one link of the pool: set up, then carry stanzas until idle, closed or shut down.
pub(crate) async fn run(
    s2s: Arc<S2s>,
    local: String,
    remote: String,
    mut rx: mpsc::Receiver<Arc<OutStanza>>,
    generation: u64,
) {
    let _guard = s2s.connection_opened();
    let setup = Box::pin(establish(&s2s, &local, &remote, Purpose::Stanzas)).await;
    let (stream, method, bidi) = match setup {
        Ok(Negotiated::Stream {
            stream,
            method,
            bidi,
        }) => (*stream, method, bidi),
        Ok(Negotiated::Verified(_)) => return,
        Err(e) => {
            s2s.audit_stream(
                Direction::Outbound,
                &local,
                &remote,
                Err(e.reason.clone()),
                None,
            );
            s2s.retire_link(&local, &remote, generation, &mut rx, Some(e.stanza_error()));
            return;
        }
    };
    let peer = stream.peer();
    s2s.audit_stream(Direction::Outbound, &local, &remote, Ok(method), Some(peer));
    let id = s2s.next_id();
    s2s.stream_up(
        id,
        StreamInfo {
            direction: Direction::Outbound,
            local: local.clone(),
            remote: remote.clone(),
            method: method.as_str(),
            bidi,
            peer,
        },
    );
    let mut authorized = conn::Authorized::default();
    if bidi {
        // XEP-0288 §3: the receiving server may send its stanzas back over this stream; we dialled
        // the peer ourselves, so it speaks for the domain we asked for.
        authorized.insert(&remote, &local);
    }
    crate::link::serve(
        &s2s,
        stream,
        crate::link::Role::Outbound { authorized },
        &local,
        Some(&mut rx),
    )
    .await;
    s2s.stream_down(id);
    s2s.retire_link(&local, &remote, generation, &mut rx, None);
}

/// Asks the authoritative server of `originating` whether `key` is the key it generated for the
/// stream `stream_id` it opened to `receiving` (us). `Ok(valid)`, or `Err` if it could not be asked.
pub(crate) async fn verify_dialback(
    s2s: &Arc<S2s>,
    receiving: &str,
    originating: &str,
    stream_id: &str,
    key: &str,
) -> Result<bool, String> {
    let question = conn::dialback_element("verify", receiving, originating, Some(stream_id), None)
        .with_text(key);
    match Box::pin(establish(
        s2s,
        receiving,
        originating,
        Purpose::Verify(question),
    ))
    .await
    {
        Ok(Negotiated::Verified(valid)) => Ok(valid),
        Ok(Negotiated::Stream { .. }) => Err("unexpected negotiation result".to_owned()),
        Err(e) => Err(e.reason),
    }
}

/// Finds the peer and negotiates with the first candidate that works, within the set-up time.
async fn establish(
    s2s: &Arc<S2s>,
    local: &str,
    remote: &str,
    purpose: Purpose,
) -> Result<Negotiated, SetupError> {
    let deadline = Instant::now() + s2s.settings.connect_timeout;
    let policy = s2s.policy();
    let static_route = policy.partner(remote).and_then(|p| p.route.clone());
    let from_dns = static_route.is_none();
    let targets = match static_route {
        Some(route) => vec![route],
        None => match tokio::time::timeout_at(deadline, s2s.resolver().resolve(remote)).await {
            Err(_) => return Err(SetupError::timeout()),
            Ok(Err(ResolveError::Timeout)) => return Err(SetupError::timeout()),
            Ok(Err(e)) => return Err(SetupError::not_found(format!("{remote}: {e}"))),
            Ok(Ok(t)) => t,
        },
    };
    let mut last = format!("{remote}: no address to try");
    for target in targets {
        let addr = format!("{}:{}", target.host, target.port);
        let tcp = match tokio::time::timeout_at(
            deadline,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        {
            Err(_) => return Err(SetupError::timeout()),
            Ok(Err(e)) => {
                tracing::debug!(remote, %addr, error = %e, "s2s connect failed");
                last = format!("{remote} ({addr}): {e}");
                continue;
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        let peer = tcp
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], target.port)));
        let found = Found {
            target: &target,
            from_dns,
        };
        match Box::pin(negotiate(
            s2s, tcp, peer, found, local, remote, &purpose, deadline,
        ))
        .await
        {
            Ok(n) => return Ok(n),
            Err(Failure::Timeout) => return Err(SetupError::timeout()),
            Err(f) => {
                tracing::debug!(remote, %addr, reason = %f.describe(), "s2s negotiation failed");
                last = format!("{remote} ({addr}): {}", f.describe());
            }
        }
    }
    Err(SetupError::not_found(last))
}

/// A connection candidate and where it came from: DANE applies to targets found in DNS only
/// (RFC 7673 §3), not to routes an administrator configured.
struct Found<'a> {
    target: &'a Target,
    from_dns: bool,
}

fn refuse(why: impl Into<String>) -> Failure {
    Failure::Gone(why.into())
}

/// Negotiates one connection as the initiating entity.
#[allow(clippy::too_many_arguments)]
async fn negotiate(
    s2s: &Arc<S2s>,
    tcp: TcpStream,
    peer: SocketAddr,
    found: Found<'_>,
    local: &str,
    remote: &str,
    purpose: &Purpose,
    deadline: Instant,
) -> Result<Negotiated, Failure> {
    let target = found.target;
    let policy = s2s.policy();
    let insecure = policy.is_insecure(remote);
    let pin = policy.pin(remote).cloned();
    let connector = s2s
        .connectors
        .get(local)
        .ok_or_else(|| refuse(format!("{local} is not hosted here")))?;
    let server_name = ServerName::try_from(remote.to_owned())
        .map_err(|_| refuse(format!("{remote} is not a valid TLS server name")))?;
    let mut stream = XmlStream::new(Io::Plain(tcp), peer, s2s.settings.limits, ns::SERVER)
        .with_header_extra(HEADER_EXTRA);
    if target.direct_tls {
        stream = stream
            .connect_tls(connector, server_name.clone())
            .await
            .map_err(|e| refuse(format!("TLS: {e}")))?;
    }
    let mut certificate_checked = false;
    let mut authenticated: Option<AuthMethod> = None;
    let mut bidi = false;
    let mut sasl_tried = false;
    loop {
        stream.queue_initiator_header(local, remote);
        conn::flush(&mut stream).await?;
        let header = match conn::read_until(&mut stream, deadline).await? {
            FramerEvent::StreamOpen(h) => h,
            _ => return Err(refuse("the peer did not open a stream")),
        };
        check_header(&header, ns::SERVER).map_err(Failure::Stream)?;
        let stream_id = header.attr("id").map(str::to_owned);
        let features = conn::read_element(&mut stream, deadline).await?;
        if !features.is("features", ns::STREAMS) {
            return Err(refuse("the peer sent no stream features"));
        }
        if !stream.is_tls() {
            if features.has_child("starttls", ns::TLS) {
                stream.queue(&Element::new("starttls", ns::TLS));
                conn::flush(&mut stream).await?;
                let answer = conn::read_element(&mut stream, deadline).await?;
                if !answer.is("proceed", ns::TLS) {
                    return Err(refuse("the peer refused STARTTLS"));
                }
                if stream.has_buffered_input() {
                    return Err(refuse("the peer sent data after <proceed/>"));
                }
                stream = stream
                    .connect_tls(connector, server_name.clone())
                    .await
                    .map_err(|e| refuse(format!("TLS: {e}")))?;
                continue;
            }
            if !insecure {
                return Err(refuse("the peer does not offer TLS, which is required"));
            }
        }
        if stream.is_tls() && !certificate_checked {
            certificate_checked = true;
            let dane = if found.from_dns {
                let records = tokio::time::timeout_at(
                    deadline,
                    s2s.resolver().tlsa(&target.host, target.port),
                )
                .await
                .unwrap_or_default();
                dane_verdict(s2s, &stream, &records, remote)?
            } else {
                false
            };
            if dane && pin.is_none() {
                tracing::debug!(remote, host = %target.host, "peer certificate matches its TLSA records");
            } else if let Err(problem) =
                s2s.trust
                    .check(stream.peer_certificates(), remote, pin.as_ref())
            {
                if pin.is_some() {
                    return Err(refuse(format!("pinned partner: {problem}")));
                }
                if s2s.settings.require_valid_certificates && !insecure {
                    return Err(refuse(problem.to_string()));
                }
                tracing::debug!(remote, %problem, "peer certificate does not validate");
            }
        }
        if let Purpose::Verify(question) = purpose {
            return ask_verify(&mut stream, question, local, deadline).await;
        }
        if let Some(method) = authenticated {
            return Ok(Negotiated::Stream {
                stream: Box::new(stream),
                method,
                bidi,
            });
        }
        if s2s.settings.bidi && !bidi && features.has_child("bidi", NS_BIDI_FEATURE) {
            stream.queue(&Element::new("bidi", NS_BIDI));
            bidi = true;
        }
        let offers_external = features
            .get_child("mechanisms", ns::SASL)
            .is_some_and(|m| m.children().any(|c| c.text().trim() == "EXTERNAL"));
        if offers_external && !sasl_tried {
            sasl_tried = true;
            // XEP-0178 §3: the authorization identity is our domain.
            let authzid = base64::engine::general_purpose::STANDARD.encode(local);
            stream.queue(
                &Element::new("auth", ns::SASL)
                    .with_attr("mechanism", "EXTERNAL")
                    .with_text(authzid),
            );
            conn::flush(&mut stream).await?;
            let answer = conn::read_element(&mut stream, deadline).await?;
            if answer.is("success", ns::SASL) {
                authenticated = Some(AuthMethod::SaslExternal);
                // RFC 6120 §6.4.6: a new stream after SASL success.
                stream.restart();
                continue;
            }
            tracing::debug!(remote, "SASL EXTERNAL refused, trying dialback");
        }
        let offers_dialback = features.has_child("dialback", NS_DIALBACK_FEATURE);
        if s2s.settings.dialback && offers_dialback && pin.is_none() {
            let id = stream_id.ok_or_else(|| refuse("the peer gave no stream id"))?;
            let key = crate::dialback_key(&s2s.dialback_secret, remote, local, &id);
            let request =
                conn::dialback_element("result", local, remote, None, None).with_text(key);
            conn::queue_dialback(&mut stream, &request);
            conn::flush(&mut stream).await?;
            return await_dialback(stream, local, remote, bidi, deadline).await;
        }
        return Err(refuse(if sasl_tried {
            "SASL EXTERNAL failed and dialback is not available".to_owned()
        } else {
            "no authentication method in common with the peer".to_owned()
        }));
    }
}

/// DANE (RFC 7673 §5): `Ok(true)` when validated TLSA records exist and one matches the peer's
/// chain, `Ok(false)` when DANE does not apply, and a failure when records exist but none
/// matches: the target is then not used (RFC 6698 §4), whatever the certificate's issuer.
fn dane_verdict(
    s2s: &S2s,
    stream: &XmlStream,
    records: &[causerie_tls::dane::Tlsa],
    remote: &str,
) -> Result<bool, Failure> {
    if records.is_empty() {
        return Ok(false);
    }
    let chain = stream.peer_certificates().unwrap_or(&[]);
    match causerie_tls::dane::check(chain, records, remote, s2s.trust.roots()) {
        Ok(()) => Ok(true),
        Err(causerie_tls::s2s::CertProblem::Missing) => Ok(false),
        Err(problem) => Err(refuse(format!("DANE: {problem}"))),
    }
}

/// Waits for the answer to our `<db:result/>` (XEP-0220 §2.1.4).
async fn await_dialback(
    mut stream: XmlStream,
    local: &str,
    remote: &str,
    bidi: bool,
    deadline: Instant,
) -> Result<Negotiated, Failure> {
    loop {
        let el = conn::read_element(&mut stream, deadline).await?;
        if !el.is("result", NS_DIALBACK)
            || el.attr("from") != Some(remote)
            || el.attr("to") != Some(local)
        {
            continue;
        }
        return match el.attr("type") {
            Some("valid") => Ok(Negotiated::Stream {
                stream: Box::new(stream),
                method: AuthMethod::Dialback,
                bidi,
            }),
            Some("invalid") => Err(refuse("dialback: the peer found our key invalid")),
            _ => Err(refuse(format!("dialback refused: {}", describe_error(&el)))),
        };
    }
}

/// Sends a `<db:verify/>` and reads its answer (XEP-0220 §2.1.3, §2.1.4).
async fn ask_verify(
    stream: &mut XmlStream,
    question: &Element,
    local: &str,
    deadline: Instant,
) -> Result<Negotiated, Failure> {
    conn::queue_dialback(stream, question);
    conn::flush(stream).await?;
    loop {
        let el = conn::read_element(stream, deadline).await?;
        if el.is("verify", NS_DIALBACK) && el.attr("id") == question.attr("id") {
            let verdict = match el.attr("type") {
                Some("valid") => Ok(Negotiated::Verified(true)),
                Some("invalid") => Ok(Negotiated::Verified(false)),
                _ => Err(refuse(format!(
                    "the authoritative server could not answer: {}",
                    describe_error(&el)
                ))),
            };
            stream.close(None, local).await;
            return verdict;
        }
    }
}

/// The condition and text of a dialback error answer.
fn describe_error(el: &Element) -> String {
    let Some(err) = el.children().find(|c| c.name() == "error") else {
        return "no reason given".to_owned();
    };
    let condition = err
        .children()
        .find(|c| c.ns() == ns::STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| "error".to_owned());
    match err.get_child("text", ns::STANZAS) {
        Some(t) => format!("{condition}: {}", t.text()),
        None => condition,
    }
}
