//! The test client against a small scripted XMPP server on loopback, over real TCP and TLS:
//! STARTTLS and direct TLS, SCRAM with both channel-binding types (checked by the server side
//! of causerie-sasl against data computed from the server's own TLS connection), certificate
//! trust, stream errors, message exchange and stream close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use causerie_sasl::client::ClientChannelBinding;
use causerie_sasl::{
    ChannelBindingType, ChannelBindings, Hash, Mechanism, ScramCredentials, ServerContext,
    ServerSession, Step,
};
use causerie_testkit::certs::{KeyKind, TestCa};
use causerie_testkit::client::{
    Client, ClientConfig, ClientError, NS_CLIENT, Negotiation, TlsMode, Trust,
};
use causerie_xml::{Element, Framer, FramerEvent, Limits};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "correct horse";

/// How the scripted server behaves.
#[derive(Clone)]
struct Script {
    direct_tls: bool,
    tls12_only: bool,
    mechanisms: Vec<Mechanism>,
    /// XEP-0440 announcement; `None` leaves the feature out.
    cb_types: Option<Vec<ChannelBindingType>>,
    /// Bytes sent right after `<proceed/>`, in plaintext (a broken server).
    after_proceed: Option<&'static [u8]>,
    /// Sent instead of the post-authentication features.
    stream_error_after_auth: Option<&'static str>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            direct_tls: false,
            tls12_only: false,
            mechanisms: vec![
                Mechanism::Scram {
                    hash: Hash::Sha256,
                    plus: true,
                },
                Mechanism::Scram {
                    hash: Hash::Sha256,
                    plus: false,
                },
                Mechanism::Plain,
            ],
            cb_types: Some(vec![
                ChannelBindingType::TlsExporter,
                ChannelBindingType::TlsServerEndPoint,
            ]),
            after_proceed: None,
            stream_error_after_auth: None,
        }
    }
}

/// What the server saw: the mechanism and the client's GS2 header.
#[derive(Debug)]
struct Seen {
    mechanism: String,
    gs2_flag: String,
}

struct Peer<S> {
    io: S,
    framer: Framer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    fn new(io: S) -> Self {
        Peer {
            io,
            framer: Framer::new(Limits::default()),
        }
    }

    async fn event(&mut self) -> anyhow::Result<FramerEvent> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(ev) = self.framer.next_event()? {
                return Ok(ev);
            }
            let n = tokio::time::timeout(WAIT, self.io.read(&mut buf)).await??;
            anyhow::ensure!(n > 0, "client disconnected");
            self.framer.feed(&buf[..n]);
        }
    }

    async fn element(&mut self) -> anyhow::Result<Element> {
        match self.event().await? {
            FramerEvent::Element(el) => Ok(el),
            other => anyhow::bail!("expected an element, got {other:?}"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads the client's header and answers with ours and `features`.
    async fn open(&mut self, features: &str) -> anyhow::Result<()> {
        match self.event().await? {
            FramerEvent::StreamOpen(h) => anyhow::ensure!(h.attr("to") == Some("localhost")),
            other => anyhow::bail!("expected a stream header, got {other:?}"),
        }
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' \
             version='1.0'><stream:features>{features}</stream:features>"
        );
        self.send(header.as_bytes()).await
    }
}

struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    leaf: CertificateDer<'static>,
}

fn server_tls(ca: &TestCa, tls12_only: bool, direct: bool) -> Tls {
    let (chain, key) = ca.issue(&["localhost"]);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain PEM");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider);
    let builder = if tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .expect("protocol versions");
    let mut config = builder
        .with_no_client_auth()
        .with_single_cert(certs.clone(), key)
        .expect("server certificate");
    if direct {
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    }
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        leaf: certs[0].clone(),
    }
}

fn mechanisms_feature(script: &Script) -> String {
    let mut out = String::from("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
    for m in &script.mechanisms {
        out.push_str(&format!("<mechanism>{}</mechanism>", m.name()));
    }
    out.push_str("</mechanisms>");
    if let Some(types) = &script.cb_types {
        out.push_str("<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>");
        for t in types {
            out.push_str(&format!("<channel-binding type='{}'/>", t.name()));
        }
        out.push_str("</sasl-channel-binding>");
    }
    out
}

/// Serves one client: TLS, SASL with causerie-sasl's server side, bind, then echoes each
/// message body back to its sender until the client closes the stream.
async fn serve(tcp: TcpStream, ca: Arc<TestCa>, script: Script) -> anyhow::Result<Seen> {
    let tls = server_tls(&ca, script.tls12_only, script.direct_tls);
    let stream = if script.direct_tls {
        tls.acceptor.accept(tcp).await?
    } else {
        let mut plain = Peer::new(tcp);
        plain
            .open("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
            .await?;
        let el = plain.element().await?;
        anyhow::ensure!(el.name() == "starttls", "expected <starttls/>");
        let mut proceed = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_vec();
        if let Some(extra) = script.after_proceed {
            proceed.extend_from_slice(extra);
        }
        plain.send(&proceed).await?;
        if script.after_proceed.is_some() {
            // The client must give up; wait for it to go.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(WAIT, plain.io.read_to_end(&mut rest)).await;
            anyhow::bail!("client did not hang up");
        }
        tls.acceptor.accept(plain.io).await?
    };
    let conn = stream.get_ref().1;
    let exporter = conn
        .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        .ok()
        .map(|b| b.to_vec());
    let bindings = ChannelBindings {
        tls_exporter: if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
            exporter
        } else {
            None
        },
        // The test CA signs with ECDSA P-256 and SHA-256 (RFC 5929 §4.1).
        tls_server_end_point: Some(sha2::Sha256::digest(tls.leaf.as_ref()).to_vec()),
    };
    let mut peer = Peer::new(stream);
    peer.open(&mechanisms_feature(&script)).await?;

    let auth = peer.element().await?;
    anyhow::ensure!(auth.name() == "auth", "expected <auth/>");
    let mechanism_name = auth.attr("mechanism").unwrap_or_default().to_string();
    let initial = BASE64.decode(auth.text().trim())?;
    let gs2_flag = String::from_utf8_lossy(&initial)
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let seen = Seen {
        mechanism: mechanism_name.clone(),
        gs2_flag,
    };
    let ctx = ServerContext {
        offered: script.mechanisms.clone(),
        channel_bindings: bindings,
        offered_cb_types: script.cb_types.clone().unwrap_or_default(),
        secret: [7; 32],
    };
    let mechanism = Mechanism::parse(&mechanism_name)
        .ok_or_else(|| anyhow::anyhow!("unknown mechanism {mechanism_name}"))?;
    let mut session = ServerSession::new(mechanism, ctx);
    let mut step = session.step(&initial);
    let outcome = loop {
        match step {
            Ok(Step::NeedCredentials { username, hash, .. }) => {
                let creds = (username == "alice")
                    .then(|| ScramCredentials::derive(hash, PASSWORD, 4096))
                    .transpose()?;
                step = session.provide_credentials(creds);
            }
            Ok(Step::Challenge(data)) => {
                let challenge = format!(
                    "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
                    BASE64.encode(data)
                );
                peer.send(challenge.as_bytes()).await?;
                let response = peer.element().await?;
                step = session.step(&BASE64.decode(response.text().trim())?);
            }
            Ok(Step::Success {
                additional_data, ..
            }) => break Ok(additional_data.unwrap_or_default()),
            Err(failure) => break Err(failure),
        }
    };
    match outcome {
        Ok(data) => {
            let success = format!(
                "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
                BASE64.encode(data)
            );
            peer.send(success.as_bytes()).await?;
        }
        Err(failure) => {
            let xml = format!(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{}/></failure>",
                failure.condition()
            );
            peer.send(xml.as_bytes()).await?;
            return Ok(seen);
        }
    }

    peer.framer.reset();
    if let Some(condition) = script.stream_error_after_auth {
        let _ = peer.event().await?;
        let xml = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s2' \
             version='1.0'><stream:error><{condition} \
             xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text \
             xmlns='urn:ietf:params:xml:ns:xmpp-streams'>scripted</text></stream:error>\
             </stream:stream>"
        );
        peer.send(xml.as_bytes()).await?;
        return Ok(seen);
    }
    peer.open("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")
        .await?;
    let bind = peer.element().await?;
    let id = bind.attr("id").unwrap_or_default().to_string();
    let resource = bind
        .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
        .and_then(|b| b.get_child("resource", "urn:ietf:params:xml:ns:xmpp-bind"))
        .map(|r| r.text())
        .unwrap_or_else(|| "generated".to_string());
    let result = format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>alice@localhost/{resource}</jid></bind></iq>"
    );
    peer.send(result.as_bytes()).await?;

    loop {
        match peer.event().await? {
            FramerEvent::Element(el) if el.is("presence", NS_CLIENT) => {
                // RFC 6121 §4.2.2: initial presence comes back to the sender.
                let echo = format!("<presence from='alice@localhost/{resource}'/>");
                peer.send(echo.as_bytes()).await?;
            }
            FramerEvent::Element(el) if el.is("message", NS_CLIENT) => {
                let body = el
                    .get_child("body", NS_CLIENT)
                    .map(|b| b.text())
                    .unwrap_or_default();
                let echo = Element::new("message", NS_CLIENT)
                    .with_attr("from", "echo@localhost")
                    .with_child(Element::new("body", NS_CLIENT).with_text(body));
                let mut out = Vec::new();
                // An unrelated stanza first, which recv_matching must skip.
                out.extend_from_slice(b"<presence from='bob@localhost/x'/>");
                echo.write_to(&mut out, NS_CLIENT);
                peer.send(&out).await?;
            }
            FramerEvent::Element(_) => {}
            FramerEvent::StreamClose => {
                peer.send(b"</stream:stream>").await?;
                peer.io.shutdown().await?;
                return Ok(seen);
            }
            FramerEvent::StreamOpen(_) => anyhow::bail!("unexpected stream header"),
        }
    }
}

/// Starts the scripted server for one connection.
async fn start(script: Script) -> (SocketAddr, Arc<TestCa>, JoinHandle<anyhow::Result<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let ca = Arc::new(TestCa::new(KeyKind::EcdsaP256));
    let server_ca = ca.clone();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        serve(tcp, server_ca, script).await
    });
    (addr, ca, handle)
}

fn config(addr: SocketAddr, ca: &TestCa, tls: TlsMode) -> ClientConfig {
    let mut cfg = ClientConfig::new(addr, "localhost", "alice", PASSWORD);
    cfg.tls = tls;
    cfg.trust = Trust::Roots(vec![ca.cert_der()]);
    cfg.resource = Some("desk".into());
    cfg
}

async fn finish(handle: JoinHandle<anyhow::Result<Seen>>) -> Seen {
    handle.await.expect("server task").expect("server script")
}

#[tokio::test]
async fn best_mechanism_binds_to_tls_exporter_and_messages_flow() {
    let (addr, ca, server) = start(Script::default()).await;
    let mut client = Client::login(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("login");
    assert_eq!(client.jid(), "alice@localhost/desk");
    client
        .send_initial_presence(WAIT)
        .await
        .expect("presence reflected");
    let message = Element::new("message", NS_CLIENT)
        .with_attr("to", "echo@localhost")
        .with_child(Element::new("body", NS_CLIENT).with_text("hello <&>"));
    client.send(&message).await.expect("send");
    let echo = client
        .recv_matching(WAIT, |el| el.is("message", NS_CLIENT))
        .await
        .expect("echo");
    assert_eq!(
        echo.get_child("body", NS_CLIENT).map(|b| b.text()),
        Some("hello <&>".to_string())
    );
    client.close().await.expect("clean close");
    let seen = finish(server).await;
    assert_eq!(seen.mechanism, "SCRAM-SHA-256-PLUS");
    assert_eq!(seen.gs2_flag, "p=tls-exporter");
}

#[tokio::test]
async fn tls_server_end_point_binding_is_accepted() {
    let (addr, ca, server) = start(Script::default()).await;
    let mut cfg = config(addr, &ca, TlsMode::StartTls);
    cfg.cb_type = Some(ChannelBindingType::TlsServerEndPoint);
    let client = Client::login(&cfg).await.expect("login");
    client.close().await.expect("clean close");
    let seen = finish(server).await;
    assert_eq!(seen.gs2_flag, "p=tls-server-end-point");
}

#[tokio::test]
async fn announced_binding_types_and_tls_version_decide_the_binding() {
    // Only tls-server-end-point announced (XEP-0440).
    let script = Script {
        cb_types: Some(vec![ChannelBindingType::TlsServerEndPoint]),
        ..Script::default()
    };
    let (addr, ca, server) = start(script).await;
    let client = Client::login(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("login");
    client.close().await.expect("close");
    assert_eq!(finish(server).await.gs2_flag, "p=tls-server-end-point");

    // TLS 1.2: tls-exporter is not defined (RFC 9266), so although both types are announced
    // the client binds to the certificate.
    let script = Script {
        tls12_only: true,
        ..Script::default()
    };
    let (addr, ca, server) = start(script).await;
    let client = Client::login(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("login");
    client.close().await.expect("close");
    assert_eq!(finish(server).await.gs2_flag, "p=tls-server-end-point");
}

#[tokio::test]
async fn direct_tls_with_plain_and_downgrade_flag() {
    // Direct TLS, PLAIN forced.
    let script = Script {
        direct_tls: true,
        ..Script::default()
    };
    let (addr, ca, server) = start(script).await;
    let mut cfg = config(addr, &ca, TlsMode::DirectTls);
    cfg.mechanism = Some("PLAIN".into());
    let client = Client::login(&cfg).await.expect("login");
    client.close().await.expect("close");
    assert_eq!(finish(server).await.mechanism, "PLAIN");

    // Without -PLUS on offer, a TLS client says "y" (RFC 5802 §6) and the server accepts.
    let script = Script {
        mechanisms: vec![Mechanism::Scram {
            hash: Hash::Sha256,
            plus: false,
        }],
        cb_types: None,
        ..Script::default()
    };
    let (addr, ca, server) = start(script).await;
    let client = Client::login(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("login");
    client.close().await.expect("close");
    let seen = finish(server).await;
    assert_eq!(seen.mechanism, "SCRAM-SHA-256");
    assert_eq!(seen.gs2_flag, "y");
}

#[tokio::test]
async fn downgrade_is_detected_by_the_server() {
    // "y" while the server offers -PLUS is a downgrade (RFC 5802 §6): authentication fails.
    let (addr, ca, server) = start(Script::default()).await;
    let mut n = Negotiation::connect(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("connect");
    n.header().await.expect("header");
    n.features().await.expect("features");
    n.starttls().await.expect("starttls");
    n.header().await.expect("header");
    n.features().await.expect("features");
    match n
        .auth_with("SCRAM-SHA-256", ClientChannelBinding::SupportedNotUsed)
        .await
    {
        Err(ClientError::SaslFailure { .. }) => {}
        other => panic!("expected a SASL failure, got {other:?}"),
    }
    assert_eq!(finish(server).await.gs2_flag, "y");
}

#[tokio::test]
async fn xep_0474_hash_is_verified_when_asked() {
    let (addr, ca, server) = start(Script::default()).await;
    let mut n = Negotiation::connect(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("connect");
    n.set_downgrade_protection(true);
    n.header().await.expect("header");
    n.features().await.expect("features");
    n.starttls().await.expect("starttls");
    n.header().await.expect("header");
    n.features().await.expect("features");
    let mechanism = n.choose_mechanism().expect("mechanism");
    n.auth(&mechanism).await.expect("auth with a matching hash");
    n.restart().await.expect("restart");
    n.header().await.expect("header");
    let features = n.features().await.expect("features");
    assert!(features.bind);
    let jid = n.bind(Some("r1")).await.expect("bind");
    n.into_client(jid).close().await.expect("close");
    finish(server).await;
}

#[tokio::test]
async fn wrong_password_is_a_sasl_failure() {
    let (addr, ca, server) = start(Script::default()).await;
    let mut cfg = config(addr, &ca, TlsMode::StartTls);
    cfg.password = "wrong".into();
    match Client::login(&cfg).await {
        Err(ClientError::SaslFailure { condition, .. }) => assert_eq!(condition, "not-authorized"),
        Err(e) => panic!("expected not-authorized, got {e}"),
        Ok(_) => panic!("a wrong password logged in"),
    }
    finish(server).await;
}

#[tokio::test]
async fn untrusted_certificate_fails_the_handshake() {
    let (addr, _ca, server) = start(Script::default()).await;
    let other = TestCa::new(KeyKind::EcdsaP256);
    match Client::login(&config(addr, &other, TlsMode::StartTls)).await {
        Err(ClientError::Io(_) | ClientError::Tls(_)) => {}
        Err(e) => panic!("expected a TLS failure, got {e}"),
        Ok(_) => panic!("an untrusted certificate was accepted"),
    }
    assert!(server.await.expect("server task").is_err());
}

#[tokio::test]
async fn plaintext_after_proceed_is_refused() {
    let script = Script {
        after_proceed: Some(b"<message/>"),
        ..Script::default()
    };
    let (addr, ca, server) = start(script).await;
    match Client::login(&config(addr, &ca, TlsMode::StartTls)).await {
        Err(ClientError::Protocol(text)) => assert!(text.contains("proceed"), "{text}"),
        Err(e) => panic!("expected a protocol error, got {e}"),
        Ok(_) => panic!("login succeeded over a broken STARTTLS"),
    }
    assert!(server.await.expect("server task").is_err());
}

#[tokio::test]
async fn stream_error_is_reported_with_its_condition() {
    let script = Script {
        stream_error_after_auth: Some("policy-violation"),
        ..Script::default()
    };
    let (addr, ca, server) = start(script).await;
    match Client::login(&config(addr, &ca, TlsMode::StartTls)).await {
        Err(ClientError::StreamError { condition, text }) => {
            assert_eq!(condition, "policy-violation");
            assert_eq!(text.as_deref(), Some("scripted"));
        }
        Err(e) => panic!("expected a stream error, got {e}"),
        Ok(_) => panic!("login succeeded despite the stream error"),
    }
    finish(server).await;
}

#[tokio::test]
async fn recv_times_out_and_raw_bytes_go_out_unchanged() {
    let (addr, ca, server) = start(Script::default()).await;
    let mut client = Client::login(&config(addr, &ca, TlsMode::StartTls))
        .await
        .expect("login");
    match client.recv(Duration::from_millis(50)).await {
        Err(ClientError::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    client
        .send_raw(b"<message to='echo@localhost'><body>raw</body></message>")
        .await
        .expect("raw send");
    let echo = client
        .recv_matching(WAIT, |el| el.is("message", NS_CLIENT))
        .await
        .expect("echo after a timed-out recv");
    assert_eq!(
        echo.get_child("body", NS_CLIENT).map(|b| b.text()),
        Some("raw".to_string())
    );
    client.close().await.expect("close");
    finish(server).await;
}
