//! Incoming streams (RFC 6120 §4–§6 as the receiving entity): STARTTLS or direct TLS, then SASL
//! EXTERNAL for a peer whose certificate proves its domain, or dialback (XEP-0220) checked with
//! the peer's authoritative server; and the dialback verification questions other servers ask us.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use causerie_stanza::{StreamError, StreamErrorCondition as SE, ns};
use causerie_stream::{Io, XmlStream, check_header};
use causerie_xml::{Element, FramerEvent};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::conn::{
    self, Authorized, Failure, HEADER_EXTRA, NS_BIDI, NS_BIDI_FEATURE, NS_DIALBACK,
    NS_DIALBACK_FEATURE,
};
use crate::policy::Decision;
use crate::server::{AuthMethod, Direction, S2s, StreamInfo};

/// Accepts connections until shutdown. `direct_tls` selects XEP-0368 (TLS before any XML).
pub async fn serve(s2s: Arc<S2s>, listener: TcpListener, direct_tls: bool) {
    let mut shutdown = s2s.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let s2s = s2s.clone();
                    tokio::spawn(async move {
                        Box::pin(run(s2s, tcp, peer, direct_tls)).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "s2s accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// The state of one incoming stream.
pub(crate) struct Inbound {
    pub(crate) authorized: Authorized,
    /// The id we gave the current stream (the key dialback keys are bound to).
    stream_id: String,
    /// The domain the peer named in its header, if any.
    header_from: Option<String>,
    bidi_requested: bool,
    peer: SocketAddr,
    /// Ids under which authenticated pairs are listed in [`S2s::streams`].
    listed: Vec<u64>,
}

async fn run(s2s: Arc<S2s>, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let _guard = s2s.connection_opened();
    let deadline = Instant::now() + s2s.settings.handshake_timeout;
    let limits = s2s.settings.limits;
    let stream = if direct_tls {
        match tokio::time::timeout_at(
            deadline,
            XmlStream::accept_tls(tcp, &s2s.acceptor, peer, limits, ns::SERVER),
        )
        .await
        {
            Ok(Ok(s)) => s,
            _ => {
                tracing::debug!(%peer, "s2s direct TLS handshake failed");
                return;
            }
        }
    } else {
        XmlStream::new(Io::Plain(tcp), peer, limits, ns::SERVER)
    }
    .with_header_extra(HEADER_EXTRA);
    let mut inbound = Inbound {
        authorized: Authorized::default(),
        stream_id: String::new(),
        header_from: None,
        bidi_requested: false,
        peer,
        listed: Vec::new(),
    };
    let fallback = s2s.core.hosts().next().unwrap_or("localhost").to_owned();
    let (stream, local) = match negotiate(&s2s, stream, &mut inbound, deadline, &fallback).await {
        Some(done) => done,
        None => {
            for id in &inbound.listed {
                s2s.stream_down(*id);
            }
            return;
        }
    };
    // XEP-0288: an authenticated bidirectional stream also carries our stanzas to the peer.
    let mut bidi_route = None;
    if inbound.bidi_requested
        && s2s.settings.bidi
        && let Some(remote) = inbound.authorized.first_remote().map(str::to_owned)
        && let Some((rx, generation)) = s2s.adopt_bidi(&local, &remote)
    {
        bidi_route = Some((remote, rx, generation));
    }
    let listed = std::mem::take(&mut inbound.listed);
    crate::link::serve(
        &s2s,
        stream,
        crate::link::Role::Inbound(Box::new(inbound)),
        &local,
        bidi_route.as_mut().map(|(_, rx, _)| rx),
    )
    .await;
    for id in listed {
        s2s.stream_down(id);
    }
    if let Some((remote, mut rx, generation)) = bidi_route {
        s2s.retire_link(&local, &remote, generation, &mut rx, None);
    }
}

async fn fail(stream: &mut XmlStream, local: &str, e: StreamError) -> Option<(XmlStream, String)> {
    tracing::debug!(peer = %stream.peer(), error = %e, "refusing s2s stream");
    stream.close(Some(&e), local).await;
    None
}

/// Runs the stream until a remote domain is authenticated. `None` when it ended before that.
async fn negotiate(
    s2s: &Arc<S2s>,
    mut stream: XmlStream,
    st: &mut Inbound,
    deadline: Instant,
    fallback: &str,
) -> Option<(XmlStream, String)> {
    let mut local = fallback.to_owned();
    let mut after_sasl = false;
    'restart: loop {
        let header = match conn::read_until(&mut stream, deadline).await {
            Ok(FramerEvent::StreamOpen(h)) => h,
            Ok(_) => {
                let e = StreamError::new(SE::NotWellFormed).with_text("expected a stream header");
                return fail(&mut stream, &local, e).await;
            }
            Err(Failure::Stream(e)) => return fail(&mut stream, &local, e).await,
            Err(Failure::Timeout) => {
                let e = StreamError::new(SE::ConnectionTimeout);
                return fail(&mut stream, &local, e).await;
            }
            Err(Failure::Gone(_)) => return None,
        };
        if let Err(e) = check_header(&header, ns::SERVER) {
            return fail(&mut stream, &local, e).await;
        }
        match header.attr("to").and_then(conn::prepare_domain) {
            Some(d) if s2s.core.is_local_domain(&d) => local = d,
            _ => {
                let e = StreamError::new(SE::HostUnknown)
                    .with_text("this server does not host that domain");
                return fail(&mut stream, &local, e).await;
            }
        }
        st.header_from = header.attr("from").and_then(conn::prepare_domain);
        if let Some(from) = &st.header_from
            && let Decision::Refused(why) = s2s.policy().decide(from)
        {
            s2s.audit_stream(
                Direction::Inbound,
                &local,
                from,
                Err(why.to_owned()),
                Some(st.peer),
            );
            let e = StreamError::new(SE::PolicyViolation).with_text(why);
            return fail(&mut stream, &local, e).await;
        }
        st.stream_id = conn::random_id();
        stream.queue_header(&local, st.header_from.as_deref(), &st.stream_id);
        stream.queue(&features(s2s, &stream, st, after_sasl));
        if conn::flush(&mut stream).await.is_err() {
            return None;
        }
        if after_sasl {
            return Some((stream, local));
        }
        loop {
            let el = match conn::read_element(&mut stream, deadline).await {
                Ok(el) => el,
                Err(Failure::Stream(e)) => return fail(&mut stream, &local, e).await,
                Err(Failure::Timeout) => {
                    let e = StreamError::new(SE::ConnectionTimeout)
                        .with_text("not authenticated in time");
                    return fail(&mut stream, &local, e).await;
                }
                Err(Failure::Gone(_)) => {
                    stream.close(None, &local).await;
                    return None;
                }
            };
            if el.is("starttls", ns::TLS) {
                if stream.is_tls() {
                    let e = StreamError::new(SE::PolicyViolation).with_text("TLS is already on");
                    return fail(&mut stream, &local, e).await;
                }
                stream.queue(&Element::new("proceed", ns::TLS));
                if conn::flush(&mut stream).await.is_err() {
                    return None;
                }
                if stream.has_buffered_input() {
                    let e = StreamError::new(SE::PolicyViolation)
                        .with_text("data pipelined after <starttls/>");
                    return fail(&mut stream, &local, e).await;
                }
                match tokio::time::timeout_at(deadline, stream.starttls(&s2s.acceptor)).await {
                    Ok(Ok(s)) => stream = s,
                    _ => return None,
                }
                continue 'restart;
            }
            let insecure = st
                .header_from
                .as_deref()
                .is_some_and(|d| s2s.policy().is_insecure(d));
            if !stream.is_tls() && !insecure {
                let e = StreamError::new(SE::PolicyViolation)
                    .with_text("TLS is required between servers");
                return fail(&mut stream, &local, e).await;
            }
            if el.is("auth", ns::SASL) {
                if st.sasl_external(s2s, &mut stream, &local, &el).await {
                    if conn::flush(&mut stream).await.is_err() {
                        return None;
                    }
                    after_sasl = true;
                    stream.restart();
                    continue 'restart;
                }
                if conn::flush(&mut stream).await.is_err() {
                    return None;
                }
                continue;
            }
            if causerie_stanza::StanzaKind::of(&el).is_some() {
                let e = StreamError::new(SE::NotAuthorized)
                    .with_text("authenticate before sending stanzas");
                return fail(&mut stream, &local, e).await;
            }
            match st.handle_control(s2s, &mut stream, el).await {
                Ok(()) => {}
                Err(Failure::Stream(e)) => return fail(&mut stream, &local, e).await,
                Err(_) => {
                    stream.close(None, &local).await;
                    return None;
                }
            }
            if !st.authorized.is_empty() {
                return Some((stream, local));
            }
        }
    }
}

/// The features of an incoming stream (RFC 6120 §4.3.2).
fn features(s2s: &S2s, stream: &XmlStream, st: &Inbound, after_sasl: bool) -> Element {
    let mut f = Element::new("features", ns::STREAMS);
    if after_sasl {
        return f;
    }
    if !stream.is_tls() {
        return f.with_child(
            Element::new("starttls", ns::TLS).with_child(Element::new("required", ns::TLS)),
        );
    }
    // XEP-0178 §2: EXTERNAL is offered only when the certificate proves the announced domain.
    if let Some(from) = &st.header_from {
        let policy = s2s.policy();
        if s2s
            .trust
            .check(stream.peer_certificates(), from, policy.pin(from))
            .is_ok()
        {
            f.push_child(
                Element::new("mechanisms", ns::SASL)
                    .with_child(Element::new("mechanism", ns::SASL).with_text("EXTERNAL")),
            );
        }
    }
    if s2s.settings.dialback {
        f.push_child(
            Element::new("dialback", NS_DIALBACK_FEATURE)
                .with_child(Element::new("errors", NS_DIALBACK_FEATURE)),
        );
    }
    if s2s.settings.bidi {
        f.push_child(Element::new("bidi", NS_BIDI_FEATURE));
    }
    f
}

fn sasl_failure(condition: &str, text: &str) -> Element {
    Element::new("failure", ns::SASL)
        .with_child(Element::new(condition, ns::SASL))
        .with_child(
            Element::new("text", ns::SASL)
                .with_attr("xml:lang", "en")
                .with_text(text),
        )
}

impl Inbound {
    /// SASL EXTERNAL (RFC 6120 §6.4, XEP-0178). Queues the answer; `true` on success.
    async fn sasl_external(
        &mut self,
        s2s: &Arc<S2s>,
        stream: &mut XmlStream,
        local: &str,
        auth: &Element,
    ) -> bool {
        if auth.attr("mechanism") != Some("EXTERNAL") {
            stream.queue(&sasl_failure(
                "invalid-mechanism",
                "only EXTERNAL is offered between servers",
            ));
            return false;
        }
        let text = auth.text();
        let text = text.trim();
        let claimed = if text.is_empty() || text == "=" {
            self.header_from.clone()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| conn::prepare_domain(&s))
        };
        let Some(domain) = claimed else {
            stream.queue(&sasl_failure(
                "invalid-authzid",
                "no domain to authenticate",
            ));
            return false;
        };
        if self.header_from.as_ref().is_some_and(|f| *f != domain) {
            stream.queue(&sasl_failure(
                "invalid-authzid",
                "the authorization identity differs from the stream's 'from'",
            ));
            return false;
        }
        let policy = s2s.policy();
        if let Decision::Refused(why) = policy.decide(&domain) {
            s2s.audit_stream(
                Direction::Inbound,
                local,
                &domain,
                Err(why.to_owned()),
                Some(self.peer),
            );
            stream.queue(&sasl_failure("not-authorized", why));
            return false;
        }
        if let Err(problem) =
            s2s.trust
                .check(stream.peer_certificates(), &domain, policy.pin(&domain))
        {
            s2s.audit_stream(
                Direction::Inbound,
                local,
                &domain,
                Err(format!("SASL EXTERNAL: {problem}")),
                Some(self.peer),
            );
            stream.queue(&sasl_failure("not-authorized", &problem.to_string()));
            return false;
        }
        stream.queue(&Element::new("success", ns::SASL));
        self.authenticated(s2s, local, &domain, AuthMethod::SaslExternal);
        true
    }

    fn authenticated(&mut self, s2s: &S2s, local: &str, remote: &str, method: AuthMethod) {
        self.authorized.insert(remote, local);
        s2s.audit_stream(
            Direction::Inbound,
            local,
            remote,
            Ok(method),
            Some(self.peer),
        );
        let id = s2s.next_id();
        s2s.stream_up(
            id,
            StreamInfo {
                direction: Direction::Inbound,
                local: local.to_owned(),
                remote: remote.to_owned(),
                method: method.as_str(),
                bidi: self.bidi_requested,
                peer: self.peer,
            },
        );
        self.listed.push(id);
    }

    /// Elements other than stanzas: dialback requests and answers, the XEP-0288 request.
    pub(crate) async fn handle_control(
        &mut self,
        s2s: &Arc<S2s>,
        stream: &mut XmlStream,
        el: Element,
    ) -> Result<(), Failure> {
        if el.is("bidi", NS_BIDI) {
            self.bidi_requested = true;
            return Ok(());
        }
        if el.is("verify", NS_DIALBACK) && el.attr("type").is_none() {
            conn::queue_dialback(stream, &answer_verify(s2s, &el));
            return conn::flush(stream).await;
        }
        if el.is("result", NS_DIALBACK) && el.attr("type").is_none() {
            let answer = Box::pin(self.dialback_result(s2s, stream, &el)).await;
            conn::queue_dialback(stream, &answer);
            return conn::flush(stream).await;
        }
        Err(Failure::Stream(
            StreamError::new(SE::UnsupportedStanzaType)
                .with_text(format!("<{}/> is not expected here", el.name())),
        ))
    }

    /// A `<db:result/>` request (XEP-0220 §2.1.2): the peer asks to be accepted for a domain.
    async fn dialback_result(
        &mut self,
        s2s: &Arc<S2s>,
        stream: &XmlStream,
        el: &Element,
    ) -> Element {
        let raw_from = el.attr("from").unwrap_or("");
        let raw_to = el.attr("to").unwrap_or("");
        let (Some(remote), Some(local)) =
            (conn::prepare_domain(raw_from), conn::prepare_domain(raw_to))
        else {
            return conn::dialback_error(
                "result",
                raw_to,
                raw_from,
                "bad-request",
                "'from' and 'to' must be domains",
            );
        };
        if !s2s.core.is_local_domain(&local) {
            return conn::dialback_error(
                "result",
                &local,
                &remote,
                "item-not-found",
                "this server does not host that domain",
            );
        }
        let refuse = |this: &Self, condition: &str, why: String| {
            s2s.audit_stream(
                Direction::Inbound,
                &local,
                &remote,
                Err(why.clone()),
                Some(this.peer),
            );
            conn::dialback_error("result", &local, &remote, condition, &why)
        };
        if !s2s.settings.dialback {
            return refuse(self, "not-allowed", "dialback is disabled here".to_owned());
        }
        let policy = s2s.policy();
        if let Decision::Refused(why) = policy.decide(&remote) {
            return refuse(self, "not-allowed", why.to_owned());
        }
        let insecure = policy.is_insecure(&remote);
        let pin = policy.pin(&remote);
        let cert = s2s.trust.check(stream.peer_certificates(), &remote, pin);
        if let Err(problem) = &cert {
            if pin.is_some() {
                return refuse(self, "not-authorized", format!("pinned partner: {problem}"));
            }
            if s2s.settings.require_valid_certificates && !insecure {
                return refuse(self, "not-authorized", problem.to_string());
            }
        }
        let key = el.text();
        let method = if cert.is_ok() {
            // XEP-0344 §2.4: the certificate already proves the domain.
            AuthMethod::DialbackCertificate
        } else {
            match crate::outbound::verify_dialback(
                s2s,
                &local,
                &remote,
                &self.stream_id,
                key.trim(),
            )
            .await
            {
                Ok(true) => AuthMethod::Dialback,
                Ok(false) => {
                    s2s.audit_stream(
                        Direction::Inbound,
                        &local,
                        &remote,
                        Err("dialback key invalid".to_owned()),
                        Some(self.peer),
                    );
                    return conn::dialback_element(
                        "result",
                        &local,
                        &remote,
                        None,
                        Some("invalid"),
                    );
                }
                Err(why) => {
                    return refuse(
                        self,
                        "remote-server-not-found",
                        format!("could not verify the dialback key: {why}"),
                    );
                }
            }
        };
        self.authenticated(s2s, &local, &remote, method);
        conn::dialback_element("result", &local, &remote, None, Some("valid"))
    }
}

/// Answers a `<db:verify/>` question (XEP-0220 §2.1.3) about a key we generated.
fn answer_verify(s2s: &S2s, el: &Element) -> Element {
    let receiving = el.attr("from").unwrap_or("");
    let originating = el.attr("to").unwrap_or("");
    let id = el.attr("id").unwrap_or("");
    let valid = s2s.core.is_local_domain(originating)
        && !id.is_empty()
        && crate::verify_key(&s2s.dialback_secret, receiving, originating, id, &el.text());
    conn::dialback_element(
        "verify",
        originating,
        receiving,
        Some(id),
        Some(if valid { "valid" } else { "invalid" }),
    )
}
