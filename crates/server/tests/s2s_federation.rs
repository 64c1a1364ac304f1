//! Federation between in-process servers on distinct loopback addresses (RFC 6120 §4–§6 between
//! servers, RFC 6121 across domains): SASL EXTERNAL with certificates from a test CA, dialback
//! when the certificates are self-signed, the partner allowlist (static and changed at run time),
//! spoofed senders, unreachable partners and idle streams; the usage-policy gate and the
//! compliance rules (outgoing to external peers, incoming from a partner, evidence of a remote
//! message) on messages that cross the federation.

mod im;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use causerie_config::{CertificateConfig, Config, PartnerConfig};
use causerie_storage::audit::AuditFilter;
use causerie_storage::federation::PartnerRule;
use causerie_testkit::certs::{TestCa, test_ca};
use causerie_testkit::client::{Client, ClientConfig};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use im::{
    NS_CLIENT, T, collect_until, error_condition, expect, is_presence, password, typed_presence,
};

/// Reserves a port on `ip` for a server started later (the listener is closed at once).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How a test server proves its domain.
#[derive(Clone, Copy, PartialEq)]
enum Certs {
    /// A certificate from the shared test CA, which every server trusts.
    FromCa,
    /// The generated self-signed certificate: only dialback can authenticate it.
    SelfSigned,
}

struct Node {
    domain: &'static str,
    ip: &'static str,
    port: u16,
    /// The XEP-0368 direct TLS listener.
    direct_port: u16,
}

impl Node {
    fn new(domain: &'static str, ip: &'static str) -> Node {
        Node {
            domain,
            ip,
            port: free_port(ip),
            direct_port: free_port(ip),
        }
    }

    /// A partner entry that reaches this node over direct TLS (XEP-0368).
    fn partner_direct(&self) -> PartnerConfig {
        PartnerConfig {
            route: Some(format!("{}:{}", self.ip, self.direct_port)),
            direct_tls: true,
            ..self.partner()
        }
    }

    fn route(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn partner(&self) -> PartnerConfig {
        PartnerConfig {
            domain: self.domain.to_owned(),
            route: Some(self.route()),
            ..PartnerConfig::default()
        }
    }
}

async fn start(
    node: &Node,
    ca: &TestCa,
    certs: Certs,
    partners: Vec<PartnerConfig>,
    users: &[&str],
    f: impl FnOnce(&mut Config),
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("ca");
    let (cert, key) = ca.issue(&[node.domain]);
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert).expect("cert");
    std::fs::write(&key_path, key).expect("key");
    let s = TestServer::start_with(|c| {
        c.server.domains = vec![node.domain.to_owned()];
        c.s2s.listen = vec![node.route()];
        c.s2s.direct_tls_listen = vec![format!("{}:{}", node.ip, node.direct_port)];
        c.s2s.ca_file = Some(ca_path);
        c.s2s.connect_timeout_secs = 5;
        c.federation.partners = partners;
        c.federation.reload_secs = 1;
        if certs == Certs::FromCa {
            c.tls.certificates = vec![CertificateConfig {
                domain: node.domain.to_owned(),
                cert: cert_path,
                key: key_path,
            }];
        }
        f(c);
    })
    .await
    .expect("server starts");
    // The certificate files are read at start; the folder may go.
    drop(dir);
    for u in users {
        s.add_user(u, &password(u)).await.expect("account");
    }
    s
}

/// a.test (with alice) and b.test (with bob), partners of each other, on two addresses.
async fn pair(
    ips: (&'static str, &'static str),
    certs: (Certs, Certs),
    fa: impl FnOnce(&mut Config),
    fb: impl FnOnce(&mut Config),
) -> (TestServer, TestServer) {
    let ca = test_ca();
    let (na, nb) = (Node::new("a.test", ips.0), Node::new("b.test", ips.1));
    let a = start(&na, &ca, certs.0, vec![nb.partner()], &["alice"], fa).await;
    let b = start(&nb, &ca, certs.1, vec![na.partner()], &["bob"], fb).await;
    (a, b)
}

fn client(s: &TestServer, user: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new(s.starttls_addr(), s.domain(), user, &password(user));
    cfg.resource = Some("res".into());
    cfg
}

async fn online(s: &TestServer, user: &str) -> Client {
    let mut c = Client::login(&client(s, user)).await.expect("login");
    c.send(&Element::new("presence", NS_CLIENT))
        .await
        .expect("presence");
    expect(&mut c, "own presence", |e| e.name() == "presence").await;
    c
}

fn chat(to: &str, body: &str) -> Element {
    Element::new("message", NS_CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", format!("m-{body}"))
        .with_child(Element::new("body", NS_CLIENT).with_text(body))
}

fn body(el: &Element) -> Option<String> {
    el.get_child("body", NS_CLIENT).map(|b| b.text())
}

async fn expect_body(c: &mut Client, from: &str, text: &str) -> Element {
    let text = text.to_owned();
    let from = from.to_owned();
    expect(c, &format!("message {text}"), move |e| {
        e.name() == "message"
            && e.attr("from") == Some(from.as_str())
            && body(e).as_deref() == Some(text.as_str())
    })
    .await
}

/// `me` subscribes to `other`, who approves; `me` then sees the contact online.
async fn subscribe(me: &mut Client, my_bare: &str, other: &mut Client, other_bare: &str) {
    me.send(&typed_presence("subscribe", other_bare))
        .await
        .expect("subscribe");
    expect(other, "the subscription request", |e| {
        is_presence(e, my_bare, Some("subscribe"))
    })
    .await;
    other
        .send(&typed_presence("subscribed", my_bare))
        .await
        .expect("approve");
    expect(me, "the approval", |e| {
        is_presence(e, other_bare, Some("subscribed"))
    })
    .await;
    // RFC 6121 §3.1.5/§3.1.6: the contact's current presence follows the approval.
    let other_full = other.jid().to_owned();
    expect(me, "the contact's presence", |e| {
        e.name() == "presence"
            && e.attr("from") == Some(other_full.as_str())
            && e.attr("type").is_none()
    })
    .await;
}

/// Both users subscribe to each other across the domains, see each other online, and chat.
async fn converse(a: &TestServer, b: &TestServer, alice: &mut Client, bob: &mut Client) {
    let alice_bare = format!("alice@{}", a.domain());
    let bob_bare = format!("bob@{}", b.domain());
    subscribe(alice, &alice_bare, bob, &bob_bare).await;
    subscribe(bob, &bob_bare, alice, &alice_bare).await;
    alice
        .send(&chat(&bob_bare, "hello bob"))
        .await
        .expect("send");
    let got = expect_body(bob, alice.jid(), "hello bob").await;
    // Addressed as the sender wrote it; the namespace is the client's again on this side.
    assert_eq!(got.attr("to"), Some(bob_bare.as_str()), "{}", got.to_xml());
    assert_eq!(got.ns(), NS_CLIENT);
    bob.send(&chat(alice.jid(), "hello alice"))
        .await
        .expect("send");
    expect_body(alice, bob.jid(), "hello alice").await;
}

fn methods(s: &TestServer) -> Vec<(String, &'static str, &'static str, bool)> {
    s.s2s()
        .streams()
        .into_iter()
        .map(|i| (i.remote, i.direction.as_str(), i.method, i.bidi))
        .collect()
}

async fn audit_actions(s: &TestServer, subject: &str) -> Vec<String> {
    // Audit records are written off the stream's task; give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.storage()
        .audit
        .list(&AuditFilter {
            subject: Some(subject.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.detail))
        .collect()
}

#[tokio::test]
async fn sasl_external_with_certificates_from_a_trusted_ca() {
    let (a, b) = pair(
        ("127.0.0.2", "127.0.0.3"),
        (Certs::FromCa, Certs::FromCa),
        |_| {},
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    converse(&a, &b, &mut alice, &mut bob).await;
    // XEP-0288: the first stream, opened by a.test, carries both directions.
    assert_eq!(
        methods(&a),
        vec![("b.test".to_owned(), "outbound", "sasl-external", true)]
    );
    assert_eq!(
        methods(&b),
        vec![("a.test".to_owned(), "inbound", "sasl-external", true)]
    );
    let audit = audit_actions(&a, "b.test").await;
    assert!(
        audit.iter().any(|l| l.starts_with("s2s.outbound.accepted")),
        "{audit:?}"
    );
    let audit = audit_actions(&b, "a.test").await;
    assert!(
        audit.iter().any(|l| l.starts_with("s2s.inbound.accepted")),
        "{audit:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn one_stream_each_way_without_bidi() {
    let no_bidi = |c: &mut Config| c.s2s.bidi = false;
    let (a, b) = pair(
        ("127.0.0.16", "127.0.0.17"),
        (Certs::FromCa, Certs::FromCa),
        no_bidi,
        no_bidi,
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    converse(&a, &b, &mut alice, &mut bob).await;
    assert_eq!(
        methods(&a),
        vec![
            ("b.test".to_owned(), "inbound", "sasl-external", false),
            ("b.test".to_owned(), "outbound", "sasl-external", false),
        ]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn dialback_when_certificates_do_not_validate() {
    let (a, b) = pair(
        ("127.0.0.4", "127.0.0.5"),
        (Certs::SelfSigned, Certs::SelfSigned),
        |_| {},
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    converse(&a, &b, &mut alice, &mut bob).await;
    assert_eq!(
        methods(&b),
        vec![("a.test".to_owned(), "inbound", "dialback", true)]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn valid_certificates_can_be_required() {
    let (a, b) = pair(
        ("127.0.0.6", "127.0.0.7"),
        (Certs::SelfSigned, Certs::FromCa),
        |_| {},
        |c| c.s2s.require_valid_certificates = true,
    )
    .await;
    let mut alice = online(&a, "alice").await;
    alice
        .send(&chat("bob@b.test", "refused"))
        .await
        .expect("send");
    expect_error(&mut alice, "remote-server-not-found").await;
    let audit = audit_actions(&b, "a.test").await;
    assert!(
        audit.iter().any(|l| l.starts_with("s2s.inbound.refused")),
        "{audit:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn allowlist_refuses_a_third_domain_until_an_admin_allows_it() {
    let ca = test_ca();
    let (na, nc) = (
        Node::new("a.test", "127.0.0.8"),
        Node::new("c.test", "127.0.0.9"),
    );
    // a.test has no partner at all: closed. c.test lists a.test.
    let a = start(&na, &ca, Certs::FromCa, vec![], &["alice"], |_| {}).await;
    let c = start(
        &nc,
        &ca,
        Certs::FromCa,
        vec![na.partner()],
        &["carol"],
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut carol = online(&c, "carol").await;

    // Outgoing: refused at once, locally, with not-allowed.
    alice
        .send(&chat("carol@c.test", "out"))
        .await
        .expect("send");
    expect_error(&mut alice, "not-allowed").await;

    // Incoming: c.test's stream is refused by a.test; carol learns the message did not go.
    carol.send(&chat("alice@a.test", "in")).await.expect("send");
    expect_error(&mut carol, "remote-server-not-found").await;
    let audit = audit_actions(&a, "c.test").await;
    assert!(
        audit.iter().any(|l| l.starts_with("s2s.inbound.refused")),
        "{audit:?}"
    );

    // The admin allows c.test (what `causeriectl federation allow` writes); no restart. The route
    // comes from DNS then, which the test does not have, so a.test is reached from c.test's side.
    a.storage()
        .federation
        .set_partner("c.test", PartnerRule::Allow, Some("pilot"), 0)
        .await
        .expect("allow");
    let deadline = Instant::now() + T;
    loop {
        if a.s2s().policy().decide("c.test").is_allowed() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the partner list was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    carol
        .send(&chat("alice@a.test", "now allowed"))
        .await
        .expect("send");
    expect_body(&mut alice, carol.jid(), "now allowed").await;

    // Denied again: the stream is closed and new stanzas are refused.
    a.storage()
        .federation
        .set_partner("c.test", PartnerRule::Deny, None, 0)
        .await
        .expect("deny");
    let deadline = Instant::now() + T;
    while a.s2s().policy().decide("c.test").is_allowed() {
        assert!(
            Instant::now() < deadline,
            "the partner list was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice
        .send(&chat("carol@c.test", "denied"))
        .await
        .expect("send");
    expect_error(&mut alice, "not-allowed").await;
    a.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn unreachable_partners_bounce_with_the_right_error_in_time() {
    let ca = test_ca();
    let na = Node::new("a.test", "127.0.0.10");
    // Nothing listens on this port: connection refused.
    let closed = Node::new("closed.test", "127.0.0.11");
    // This one accepts TCP (the backlog) and never says a word: the set-up times out.
    let silent_listener = std::net::TcpListener::bind("127.0.0.12:0").expect("bind");
    let silent_addr: SocketAddr = silent_listener.local_addr().expect("addr");
    let silent = PartnerConfig {
        domain: "silent.test".to_owned(),
        route: Some(silent_addr.to_string()),
        ..PartnerConfig::default()
    };
    let a = start(
        &na,
        &ca,
        Certs::FromCa,
        vec![closed.partner(), silent],
        &["alice"],
        |c| {
            c.s2s.connect_timeout_secs = 2;
        },
    )
    .await;
    let mut alice = online(&a, "alice").await;

    let t0 = Instant::now();
    alice
        .send(&chat("x@closed.test", "refused"))
        .await
        .expect("send");
    expect_error(&mut alice, "remote-server-not-found").await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

    let t0 = Instant::now();
    for i in 0..3 {
        alice
            .send(&chat("y@silent.test", &format!("wait{i}")))
            .await
            .expect("send");
    }
    for _ in 0..3 {
        expect_error(&mut alice, "remote-server-timeout").await;
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(silent_listener);
    a.stop().await;
}

#[tokio::test]
async fn idle_streams_close_and_reopen_on_demand() {
    let short = |c: &mut Config| c.s2s.idle_timeout_secs = 10;
    let (a, b) = pair(
        ("127.0.0.13", "127.0.0.14"),
        (Certs::FromCa, Certs::FromCa),
        short,
        short,
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    alice
        .send(&chat("bob@b.test/res", "one"))
        .await
        .expect("send");
    expect_body(&mut bob, alice.jid(), "one").await;
    assert!(!a.s2s().streams().is_empty());
    // Keep the client sessions alive meanwhile (their own idle limit is longer).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.s2s().streams().is_empty() {
        assert!(Instant::now() < deadline, "the idle stream stayed open");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    alice
        .send(&chat("bob@b.test/res", "two"))
        .await
        .expect("send");
    expect_body(&mut bob, alice.jid(), "two").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_stream_may_only_carry_the_domain_it_authenticated() {
    let ca = test_ca();
    let na = Node::new("a.test", "127.0.0.15");
    let spoofer = PartnerConfig {
        domain: "b.test".to_owned(),
        ..PartnerConfig::default()
    };
    let a = start(&na, &ca, Certs::FromCa, vec![spoofer], &["alice"], |_| {}).await;
    let mut alice = online(&a, "alice").await;
    let (cert, key) = ca.issue(&["b.test"]);
    let mut peer = raw::RawPeer::connect(a.s2s_addr(), "b.test", "a.test", &ca, &cert, &key).await;
    let features = peer.external().await;
    assert!(features.contains("EXTERNAL"), "{features}");
    // Authenticated as b.test: a stanza from b.test goes through...
    peer.send("<message from='bob@b.test/x' to='alice@a.test/res' type='chat'><body>legit</body></message>").await;
    expect_body(&mut alice, "bob@b.test/x", "legit").await;
    // ...one claiming to be from c.test closes the stream with invalid-from.
    peer.send("<message from='eve@c.test/x' to='alice@a.test/res' type='chat'><body>spoof</body></message>").await;
    let end = peer.read_until_error().await;
    assert!(end.contains("invalid-from"), "{end}");
    // Nothing of it reached alice.
    alice
        .send(
            &Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", "p")
                .with_child(Element::new("ping", "urn:xmpp:ping")),
        )
        .await
        .expect("ping");
    let (before, _) = collect_until(&mut alice, |e| e.attr("id") == Some("p")).await;
    assert!(before.iter().all(|e| body(e).as_deref() != Some("spoof")));
    a.stop().await;
}

/// A hand-driven peer server, for what a well-behaved one would never send.
mod raw {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use causerie_testkit::certs::TestCa;
    use causerie_xml::{Framer, FramerEvent, Limits};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;

    pub struct RawPeer {
        tls: TlsStream<TcpStream>,
        framer: Framer,
        from: String,
        to: String,
    }

    fn header(from: &str, to: &str) -> String {
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='{from}' to='{to}'>"
        )
    }

    async fn read_plain(tcp: &mut TcpStream, framer: &mut Framer, until: &str) -> String {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        loop {
            while let Ok(Some(ev)) = framer.next_event() {
                if let FramerEvent::Element(el) = ev {
                    let xml = el.to_xml();
                    seen.push_str(&xml);
                    if xml.contains(until) {
                        return seen;
                    }
                }
            }
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed; saw {seen}");
            framer.feed(&buf[..n]);
        }
    }

    impl RawPeer {
        pub async fn connect(
            addr: SocketAddr,
            from: &str,
            to: &str,
            ca: &TestCa,
            cert: &str,
            key: &str,
        ) -> RawPeer {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            let mut framer = Framer::new(Limits::default());
            tcp.write_all(header(from, to).as_bytes())
                .await
                .expect("write");
            read_plain(&mut tcp, &mut framer, "starttls").await;
            tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await
                .expect("write");
            read_plain(&mut tcp, &mut framer, "proceed").await;
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.cert_der()).expect("root");
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("chain");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            let cfg = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .expect("client cert");
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let tls = connector
                .connect(ServerName::try_from(to.to_owned()).expect("name"), tcp)
                .await
                .expect("tls");
            RawPeer {
                tls,
                framer: Framer::new(Limits::default()),
                from: from.to_owned(),
                to: to.to_owned(),
            }
        }

        async fn read(&mut self, until: &str) -> String {
            let mut seen = String::new();
            let mut buf = [0u8; 4096];
            loop {
                while let Ok(Some(ev)) = self.framer.next_event() {
                    match ev {
                        FramerEvent::Element(el) => {
                            let xml = el.to_xml();
                            seen.push_str(&xml);
                            if xml.contains(until) {
                                return seen;
                            }
                        }
                        FramerEvent::StreamClose => return seen,
                        FramerEvent::StreamOpen(_) => {}
                    }
                }
                let n = self.tls.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return seen;
                }
                self.framer.feed(&buf[..n]);
            }
        }

        /// Opens the encrypted stream and authenticates with SASL EXTERNAL; returns the features.
        pub async fn external(&mut self) -> String {
            let h = header(&self.from, &self.to);
            self.send(&h).await;
            let features = self.read("features").await;
            self.send(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
            )
            .await;
            let answer = self.read("success").await;
            assert!(answer.contains("success"), "{answer}");
            self.framer = Framer::new(Limits::default());
            self.send(&h).await;
            self.read("features").await;
            features
        }

        pub async fn send(&mut self, xml: &str) {
            self.tls.write_all(xml.as_bytes()).await.expect("write");
            self.tls.flush().await.expect("flush");
        }

        pub async fn read_until_error(&mut self) -> String {
            tokio::time::timeout(super::T, self.read("error"))
                .await
                .expect("an answer in time")
        }
    }
}

#[tokio::test]
async fn direct_tls_routes_and_messages_for_offline_users() {
    let ca = test_ca();
    let (na, nb) = (
        Node::new("a.test", "127.0.0.18"),
        Node::new("b.test", "127.0.0.19"),
    );
    let a = start(
        &na,
        &ca,
        Certs::FromCa,
        vec![nb.partner_direct()],
        &["alice"],
        |_| {},
    )
    .await;
    let b = start(
        &nb,
        &ca,
        Certs::FromCa,
        vec![na.partner()],
        &["bob"],
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    // bob is not online: the message is kept for him on his server (XEP-0160) and delivered when
    // he comes (RFC 6121 §8.5.2.2.1), whichever server it came from.
    alice
        .send(&chat("bob@b.test", "while away"))
        .await
        .expect("send");
    let deadline = Instant::now() + T;
    while a.s2s().streams().is_empty() {
        assert!(Instant::now() < deadline, "no stream to b.test");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing bounced back to alice.
    alice
        .send(
            &Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", "p1")
                .with_child(Element::new("ping", "urn:xmpp:ping")),
        )
        .await
        .expect("ping");
    let (before, _) = collect_until(&mut alice, |e| e.attr("id") == Some("p1")).await;
    assert!(
        before.iter().all(|e| e.attr("type") != Some("error")),
        "{:?}",
        before.iter().map(Element::to_xml).collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bob = online(&b, "bob").await;
    expect_body(&mut bob, alice.jid(), "while away").await;
    let streams = a.s2s().streams();
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(
        streams[0].peer.port(),
        nb.direct_port,
        "the direct TLS route was used"
    );
    a.stop().await;
    b.stop().await;
}

/// A partner whose certificate is self-signed, trusted by its pinned fingerprint alone.
async fn pinned_pair(
    ips: (&'static str, &'static str),
    fingerprint: impl FnOnce(&str) -> String,
) -> (TestServer, TestServer) {
    let ca = test_ca();
    let (na, nb) = (Node::new("a.test", ips.0), Node::new("b.test", ips.1));
    let no_bidi = |c: &mut Config| c.s2s.bidi = false;
    let b = start(
        &nb,
        &ca,
        Certs::SelfSigned,
        vec![na.partner()],
        &["bob"],
        no_bidi,
    )
    .await;
    let pem = std::fs::read_to_string(b.certificate_path()).expect("b's certificate");
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|d: rustls_pki_types::CertificateDer<'static>| d)
        .expect("der");
    let hex: String = sha256_hex(der.as_ref());
    let pinned = PartnerConfig {
        fingerprints: vec![fingerprint(&hex)],
        ..nb.partner()
    };
    let a = start(&na, &ca, Certs::FromCa, vec![pinned], &["alice"], no_bidi).await;
    (a, b)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_pinned_fingerprint_authenticates_a_self_signed_partner() {
    let (a, b) = pinned_pair(("127.0.0.20", "127.0.0.21"), |hex| hex.to_owned()).await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    // b.test opens the stream: a.test checks b's client certificate against the pin and offers
    // SASL EXTERNAL.
    bob.send(&chat("alice@a.test/res", "pinned"))
        .await
        .expect("send");
    expect_body(&mut alice, bob.jid(), "pinned").await;
    assert_eq!(
        methods(&a),
        vec![("b.test".to_owned(), "inbound", "sasl-external", false)]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_wrong_pin_is_refused_without_falling_back_to_dialback() {
    let (a, b) = pinned_pair(("127.0.0.22", "127.0.0.23"), |_| "ab".repeat(32)).await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    bob.send(&chat("alice@a.test/res", "pinned"))
        .await
        .expect("send");
    expect_error(&mut bob, "remote-server-not-found").await;
    let audit = audit_actions(&a, "b.test").await;
    assert!(
        audit
            .iter()
            .any(|l| l.starts_with("s2s.inbound.refused") && l.contains("pinned")),
        "{audit:?}"
    );
    // And a.test will not talk to it either: b's certificate does not match the pin.
    alice
        .send(&chat("bob@b.test/res", "no"))
        .await
        .expect("send");
    let err = expect_error(&mut alice, "remote-server-not-found").await;
    assert!(error_text_of(&err).contains("pinned"), "{}", err.to_xml());
    a.stop().await;
    b.stop().await;
}

/// Waits for the error answering a stanza and checks its condition.
async fn expect_error(c: &mut Client, condition: &str) -> Element {
    let err = expect(c, "the error answer", |e| e.attr("type") == Some("error")).await;
    assert_eq!(
        error_condition(&err).as_deref(),
        Some(condition),
        "{}",
        err.to_xml()
    );
    err
}

fn error_text_of(el: &Element) -> String {
    el.children()
        .find(|c| c.name() == "error")
        .and_then(|e| e.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas"))
        .map(|t| t.text())
        .unwrap_or_default()
}

#[tokio::test]
async fn probes_and_errors_cross_the_federation() {
    let (a, b) = pair(
        ("127.0.0.24", "127.0.0.25"),
        (Certs::FromCa, Certs::FromCa),
        |_| {},
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    converse(&a, &b, &mut alice, &mut bob).await;

    // RFC 6121 §4.3: alice comes back; her server probes bob's, which answers with his presence.
    alice.close().await.expect("close");
    expect(&mut bob, "alice's unavailable presence", |e| {
        e.name() == "presence" && e.attr("type") == Some("unavailable")
    })
    .await;
    let mut alice = Client::login(&client(&a, "alice")).await.expect("login");
    alice
        .send(&Element::new("presence", NS_CLIENT))
        .await
        .expect("presence");
    let bob_full = bob.jid().to_owned();
    expect(&mut alice, "bob's presence, answering the probe", |e| {
        e.name() == "presence"
            && e.attr("from") == Some(bob_full.as_str())
            && e.attr("type").is_none()
    })
    .await;
    let alice_full = alice.jid().to_owned();
    expect(&mut bob, "alice's presence again", |e| {
        e.name() == "presence"
            && e.attr("from") == Some(alice_full.as_str())
            && e.attr("type").is_none()
    })
    .await;

    // RFC 6120 §8.3: an error from the other server comes back to the sender.
    alice
        .send(
            &Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", "v1")
                .with_attr("to", "nobody@b.test/x")
                .with_child(Element::new("query", "jabber:iq:version")),
        )
        .await
        .expect("send");
    let err = expect(&mut alice, "the error from b.test", |e| {
        e.attr("id") == Some("v1")
    })
    .await;
    assert_eq!(err.attr("type"), Some("error"), "{}", err.to_xml());
    assert_eq!(err.attr("from"), Some("nobody@b.test/x"));
    assert_eq!(
        error_condition(&err).as_deref(),
        Some("service-unavailable"),
        "{}",
        err.to_xml()
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn malformed_xml_from_a_peer_ends_its_stream_with_a_stream_error() {
    let ca = test_ca();
    let na = Node::new("a.test", "127.0.0.26");
    let peer = PartnerConfig {
        domain: "b.test".to_owned(),
        ..PartnerConfig::default()
    };
    let a = start(&na, &ca, Certs::FromCa, vec![peer], &["alice"], |_| {}).await;
    let (cert, key) = ca.issue(&["b.test"]);
    let mut peer = raw::RawPeer::connect(a.s2s_addr(), "b.test", "a.test", &ca, &cert, &key).await;
    peer.external().await;
    peer.send("<message from='bob@b.test/x' to='alice@a.test'><body>a < b</body></message>")
        .await;
    let end = peer.read_until_error().await;
    assert!(end.contains("not-well-formed"), "{end}");
    // The server is fine: a well-behaved peer still gets in.
    let mut again = raw::RawPeer::connect(a.s2s_addr(), "b.test", "a.test", &ca, &cert, &key).await;
    assert!(again.external().await.contains("EXTERNAL"));
    a.stop().await;
}

/// a.test requires valid certificates and finds b.test through its resolver, which also answers
/// b's TLSA record (as DNSSEC would have validated it). b's certificate is self-signed.
async fn dane_pair(
    ips: (&'static str, &'static str),
    record: impl FnOnce(&str) -> String,
) -> (TestServer, TestServer) {
    let ca = test_ca();
    let (na, nb) = (Node::new("a.test", ips.0), Node::new("b.test", ips.1));
    let b = start(
        &nb,
        &ca,
        Certs::SelfSigned,
        vec![na.partner()],
        &["bob"],
        |_| {},
    )
    .await;
    let found_in_dns = PartnerConfig {
        domain: "b.test".to_owned(),
        ..PartnerConfig::default()
    };
    let a = start(
        &na,
        &ca,
        Certs::FromCa,
        vec![found_in_dns],
        &["alice"],
        |c| {
            c.s2s.require_valid_certificates = true;
        },
    )
    .await;
    let pem = std::fs::read_to_string(b.certificate_path()).expect("b's certificate");
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).expect("der");
    let tlsa = causerie_tls::dane::Tlsa::parse(&record(&sha256_hex(der.as_ref()))).expect("record");
    let resolver = causerie_s2s::StaticResolver::new()
        .with(
            "b.test",
            vec![causerie_s2s::Target {
                host: nb.ip.to_owned(),
                port: nb.port,
                direct_tls: false,
            }],
        )
        .with_tlsa(nb.ip, nb.port, vec![tlsa]);
    a.s2s().set_resolver(std::sync::Arc::new(resolver));
    (a, b)
}

#[tokio::test]
async fn a_matching_tlsa_record_validates_a_self_signed_peer() {
    let (a, b) = dane_pair(("127.0.0.27", "127.0.0.28"), |hash| format!("3 0 1 {hash}")).await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    alice
        .send(&chat("bob@b.test/res", "dane"))
        .await
        .expect("send");
    expect_body(&mut bob, alice.jid(), "dane").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_tlsa_record_that_matches_nothing_refuses_the_peer() {
    let (a, b) = dane_pair(("127.0.0.29", "127.0.0.30"), |_| {
        format!("3 0 1 {}", "00".repeat(32))
    })
    .await;
    let mut alice = online(&a, "alice").await;
    alice
        .send(&chat("bob@b.test/res", "dane"))
        .await
        .expect("send");
    let err = expect_error(&mut alice, "remote-server-not-found").await;
    assert!(error_text_of(&err).contains("DANE"), "{}", err.to_xml());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_insecure_test_partner_needs_no_valid_certificate() {
    let ca = test_ca();
    let (na, nb) = (
        Node::new("a.test", "127.0.0.31"),
        Node::new("b.test", "127.0.0.32"),
    );
    let no_bidi = |c: &mut Config| c.s2s.bidi = false;
    let b = start(
        &nb,
        &ca,
        Certs::SelfSigned,
        vec![na.partner()],
        &["bob"],
        no_bidi,
    )
    .await;
    let insecure = PartnerConfig {
        insecure: true,
        ..nb.partner()
    };
    let a = start(&na, &ca, Certs::FromCa, vec![insecure], &["alice"], |c| {
        c.s2s.require_valid_certificates = true;
        c.s2s.bidi = false;
    })
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    // Both directions: a.test accepts b's self-signed certificate on its outgoing stream, and
    // b's dialback on the incoming one, although it requires valid certificates from others.
    alice
        .send(&chat("bob@b.test/res", "to b"))
        .await
        .expect("send");
    expect_body(&mut bob, alice.jid(), "to b").await;
    bob.send(&chat("alice@a.test/res", "to a"))
        .await
        .expect("send");
    expect_body(&mut alice, bob.jid(), "to a").await;
    let streams = methods(&a);
    assert!(
        streams.contains(&("b.test".to_owned(), "inbound", "dialback", false)),
        "{streams:?}"
    );
    a.stop().await;
    b.stop().await;
}

/// The usage-policy gate across federation: a restricted session cannot reach the partner, the
/// policy address answers no remote sender, and a message from the partner to the held session
/// waits until it accepts.
#[tokio::test]
async fn the_usage_policy_holds_federated_traffic_until_accepted() {
    let (a, b) = pair(
        ("127.0.0.33", "127.0.0.34"),
        (Certs::FromCa, Certs::FromCa),
        |_| {},
        |_| {},
    )
    .await;
    let doc = causerie_policy::PolicyDocument::parse(
        b"+++\ntitle = \"a.test rules\"\neffective = \"2020-01-01\"\ncategories = []\n+++\nBe nice.\n",
    )
    .unwrap();
    a.storage()
        .policy
        .publish(&causerie_policy::rows::new_version(&doc, None, 1, "test"))
        .await
        .unwrap();
    let mut bob = online(&b, "bob").await;
    let mut alice = Client::login(&client(&a, "alice")).await.expect("login");
    let prompt = expect(&mut alice, "the prompt", |e| {
        e.name() == "message" && e.attr("from") == Some("policy@a.test")
    })
    .await;
    assert!(body(&prompt).unwrap_or_default().contains("a.test rules"));
    alice.send(&chat("bob@b.test", "too early")).await.unwrap();
    expect_error(&mut alice, "policy-violation").await;
    // The remote side gets no answer from the policy address.
    bob.send(&chat("policy@a.test", "ACCEPT 0000"))
        .await
        .unwrap();
    expect_error(&mut bob, "service-unavailable").await;
    // Bob writes to alice while she is held: kept, then delivered once she accepts.
    bob.send(&chat("alice@a.test/res", "waiting for you"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    alice
        .send(&chat(
            "policy@a.test",
            &format!("accept {}", doc.short_code()),
        ))
        .await
        .unwrap();
    expect(&mut alice, "the confirmation", |e| {
        body(e).is_some_and(|b| b.starts_with("Accepted:"))
    })
    .await;
    expect_body(&mut alice, "bob@b.test/res", "waiting for you").await;
    alice
        .send(&chat("bob@b.test", "hello from a"))
        .await
        .unwrap();
    expect_body(&mut bob, "alice@a.test/res", "hello from a").await;
    a.stop().await;
    b.stop().await;
}

/// Writes `rules` as the compliance rules file of the server being configured.
fn with_rules(rules: &'static str) -> impl FnOnce(&mut Config) {
    move |c| {
        std::fs::create_dir_all(&c.server.data_dir).expect("data folder");
        std::fs::write(c.server.data_dir.join("rules.toml"), rules).expect("rules file");
    }
}

/// The `<blocked/>` rule of an error answer.
fn blocked_rule(el: &Element) -> Option<String> {
    el.get_child("error", NS_CLIENT)
        .and_then(|e| e.get_child("blocked", "urn:causerie:compliance:0"))
        .and_then(|b| b.attr("rule"))
        .map(str::to_owned)
}

/// Compliance across federation, outgoing: a rule for external peers stops what a local user
/// sends to the partner (the error comes back to the sender, nothing reaches the partner), and
/// leaves messages between local users alone.
#[tokio::test]
async fn an_outgoing_rule_for_external_peers_blocks_what_leaves_for_a_partner() {
    let ca = test_ca();
    let (na, nb) = (
        Node::new("a.test", "127.0.0.41"),
        Node::new("b.test", "127.0.0.42"),
    );
    let a = start(
        &na,
        &ca,
        Certs::FromCa,
        vec![nb.partner()],
        &["alice", "dave"],
        with_rules(
            "[[rule]]\nid = \"outside\"\ndescription = \"Confidential matters stay inside\"\n\
             category = \"leaks\"\npeers = \"external\"\nkeywords = [\"confidential\"]\n\
             actions = [\"block\"]\n",
        ),
    )
    .await;
    let b = start(
        &nb,
        &ca,
        Certs::FromCa,
        vec![na.partner()],
        &["bob"],
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut dave = online(&a, "dave").await;
    let mut bob = online(&b, "bob").await;
    alice
        .send(&chat("bob@b.test", "the confidential plan"))
        .await
        .expect("send");
    let err = expect_error(&mut alice, "policy-violation").await;
    assert_eq!(
        blocked_rule(&err).as_deref(),
        Some("outside"),
        "{}",
        err.to_xml()
    );
    assert!(
        error_text_of(&err).contains("Confidential matters stay inside"),
        "{}",
        err.to_xml()
    );
    // The next message crosses; nothing came before it (s2s keeps the order of a stream).
    alice
        .send(&chat("bob@b.test", "lunch?"))
        .await
        .expect("send");
    let (before, _) = collect_until(&mut bob, |e| {
        e.name() == "message" && body(e).as_deref() == Some("lunch?")
    })
    .await;
    assert!(
        before
            .iter()
            .all(|e| body(e).is_none_or(|t| !t.contains("confidential"))),
        "the blocked message arrived: {:?}",
        before.iter().map(Element::to_xml).collect::<Vec<_>>()
    );
    // Between two accounts of a.test the rule does not apply.
    alice
        .send(&chat("dave@a.test", "the confidential plan"))
        .await
        .expect("send");
    expect_body(&mut dave, "alice@a.test/res", "the confidential plan").await;
    a.stop().await;
    b.stop().await;
}

/// Compliance across federation, incoming: messages from the partner reach the stage as remote
/// stanzas; a mask rule masks them before the local user gets them, and a block rule answers
/// the remote sender with the error over federation.
#[tokio::test]
async fn an_incoming_rule_masks_or_blocks_what_a_remote_sender_writes() {
    let (a, b) = pair(
        ("127.0.0.43", "127.0.0.44"),
        (Certs::FromCa, Certs::FromCa),
        with_rules(
            "[[rule]]\nid = \"in-cards\"\ndescription = \"No card numbers\"\n\
             category = \"payment data\"\ndirection = \"incoming\"\npeers = \"partner\"\n\
             paths = [\"federation\"]\ndetectors = [\"payment-card\"]\nactions = [\"mask\"]\n\n\
             [[rule]]\nid = \"in-games\"\ndescription = \"No gambling\"\n\
             category = \"conduct\"\ndirection = \"incoming\"\nkeywords = [\"poker\"]\n\
             actions = [\"block\"]\n",
        ),
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    bob.send(&chat(
        "alice@a.test",
        "my card: 4111 1111 1111 1111, thanks",
    ))
    .await
    .expect("send");
    expect_body(
        &mut alice,
        "bob@b.test/res",
        "my card: *******************, thanks",
    )
    .await;
    bob.send(&chat("alice@a.test", "poker tonight?"))
        .await
        .expect("send");
    let err = expect_error(&mut bob, "policy-violation").await;
    assert_eq!(err.attr("from"), Some("alice@a.test"), "{}", err.to_xml());
    assert!(
        error_text_of(&err).contains("No gambling"),
        "{}",
        err.to_xml()
    );
    // Alice's own messages to bob are outside both rules.
    alice
        .send(&chat("bob@b.test", "poker and 4111 1111 1111 1111"))
        .await
        .expect("send");
    expect_body(
        &mut bob,
        "alice@a.test/res",
        "poker and 4111 1111 1111 1111",
    )
    .await;
    bob.send(&chat("alice@a.test", "after"))
        .await
        .expect("send");
    let (before, _) = collect_until(&mut alice, |e| {
        e.name() == "message" && body(e).as_deref() == Some("after")
    })
    .await;
    assert!(
        before
            .iter()
            .all(|e| body(e).is_none_or(|t| !t.contains("poker"))),
        "the blocked message arrived"
    );
    a.stop().await;
    b.stop().await;
}

/// Compliance across federation, evidence: a captured incoming message from the partner is
/// stored as it arrived, for the local recipient, with the remote sender as the peer, in a
/// record whose signature and chain verify.
#[tokio::test]
async fn a_captured_remote_message_is_verifiable_evidence_naming_the_remote_peer() {
    use causerie_policy::compliance::evidence::{SignedEvidence, payload_intact};
    let (a, b) = pair(
        ("127.0.0.45", "127.0.0.46"),
        (Certs::FromCa, Certs::FromCa),
        with_rules(
            "[[rule]]\nid = \"in-invoices\"\ndescription = \"Invoices are kept\"\n\
             category = \"finance\"\ndirection = \"incoming\"\nkeywords = [\"invoice\"]\n\
             actions = [\"capture\"]\n",
        ),
        |_| {},
    )
    .await;
    let mut alice = online(&a, "alice").await;
    let mut bob = online(&b, "bob").await;
    bob.send(&chat("alice@a.test", "hello alice"))
        .await
        .expect("send");
    expect_body(&mut alice, "bob@b.test/res", "hello alice").await;
    bob.send(&chat("alice@a.test", "invoice 42 is attached"))
        .await
        .expect("send");
    expect_body(&mut alice, "bob@b.test/res", "invoice 42 is attached").await;
    let list = {
        let mut list = Vec::new();
        for _ in 0..50 {
            list = a
                .storage()
                .evidence
                .list(&causerie_storage::EvidenceFilter::default())
                .await
                .expect("evidence");
            if !list.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        list
    };
    assert_eq!(list.len(), 1, "one record");
    let r = &list[0];
    assert_eq!(
        (
            r.rule_id.as_str(),
            r.username.as_str(),
            r.domain.as_str(),
            r.peer.as_str(),
            r.direction.as_str(),
            r.actions.as_str(),
        ),
        (
            "in-invoices",
            "alice",
            "a.test",
            "bob@b.test",
            "incoming",
            "capture"
        )
    );
    // No session of this server sent it: no resource or address of the user.
    assert_eq!((r.resource.as_str(), r.remote_addr.as_deref()), ("", None));
    let payload: serde_json::Value =
        serde_json::from_str(r.payload.as_deref().expect("a payload")).expect("JSON");
    assert_eq!(payload["from"], "bob@b.test/res");
    assert_eq!(payload["to"], "alice@a.test");
    assert!(
        payload["stanza"]
            .as_str()
            .is_some_and(|s| s.contains("invoice 42 is attached")),
        "{payload}"
    );
    assert!(
        payload["context"][0]
            .as_str()
            .is_some_and(|s| s.contains("hello alice")),
        "{payload}"
    );
    assert_eq!(payload_intact(r), Some(true));
    let key = causerie_policy::keys::load_or_create(&a.config.server.data_dir.join("policy.key"))
        .expect("the server key")
        .public_key();
    let signed: Vec<SignedEvidence> = list.iter().map(SignedEvidence::from).collect();
    assert!(causerie_policy::verify_links(&signed, &key, None).ok());
    // b.test keeps nothing: the rule is a.test's.
    let elsewhere = b
        .storage()
        .evidence
        .list(&causerie_storage::EvidenceFilter::default())
        .await
        .expect("evidence");
    assert!(elsewhere.is_empty());
    a.stop().await;
    b.stop().await;
}
