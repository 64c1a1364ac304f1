//! The alert webhook end to end: a receiver on loopback (plain HTTP, or HTTPS with a certificate
//! from a company CA) gets each alert as JSON with the bearer token; a 500 is retried; an
//! unreachable or stalled receiver never holds up messages.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use causerie_policy::compliance::webhook::WebhookStats;
use causerie_storage::EvidenceFilter;
use causerie_testkit::client::Client;
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use common::{NS_CLIENT, T, chat, online, stanza_error_condition};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const TOKEN: &str = "hook-token.0123456789abcdef";

/// One request the receiver got.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// An HTTP receiver on loopback answering with `statuses` in turn (the last one repeats).
struct Receiver {
    addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Request>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(statuses: &[u16], tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, requests) = mpsc::unbounded_channel();
        let statuses = statuses.to_vec();
        let task = tokio::spawn(async move {
            for n in 0.. {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let status = statuses[n.min(statuses.len() - 1)];
                let served = match &tls {
                    None => serve(tcp, status).await,
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => serve(stream, status).await,
                        Err(_) => None,
                    },
                };
                if let Some(r) = served {
                    let _ = tx.send(r);
                }
            }
        });
        Receiver {
            addr,
            requests,
            task,
        }
    }

    async fn next(&mut self) -> Request {
        tokio::time::timeout(T, self.requests.recv())
            .await
            .expect("a request in time")
            .expect("the receiver runs")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head, then `Content-Length` bytes of body) and answers `status`.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, status: u16) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body) = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8(buf[..end].to_vec()).ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        break (head, buf[end + 4..end + 4 + len].to_vec());
    };
    let answer =
        format!("HTTP/1.1 {status} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    s.write_all(answer.as_bytes()).await.ok()?;
    s.flush().await.ok()?;
    let _ = s.shutdown().await;
    Some(Request { head, body })
}

fn rule(id: &str, extra: &str, actions: &str) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\ndescription = \"Rule {id}\"\ncategory = \"category {id}\"\n{extra}\nactions = {actions}\n\n"
    )
}

/// A server with `rules`, carol as officer, alerts posted to `url`.
async fn server(
    rules: &str,
    url: &str,
    f: impl FnOnce(&mut causerie_config::Config),
) -> TestServer {
    let rules = rules.to_owned();
    let url = url.to_owned();
    let s = TestServer::start_with(move |c| {
        std::fs::create_dir_all(&c.server.data_dir).unwrap();
        std::fs::write(c.server.data_dir.join("rules.toml"), rules).unwrap();
        c.compliance.officers = vec!["carol@localhost".into()];
        c.compliance.alert_webhook = Some(url);
        f(c);
    })
    .await
    .expect("server starts");
    for u in ["alice", "bob", "carol"] {
        s.add_user(u, "secret").await.unwrap();
    }
    s
}

fn stats(s: &TestServer) -> WebhookStats {
    s.running
        .as_ref()
        .expect("running")
        .compliance
        .webhook_stats()
        .expect("a webhook is configured")
}

async fn wait_stats(s: &TestServer, what: &str, done: impl Fn(&WebhookStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = stats(s);
        if done(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn body(m: &Element) -> String {
    m.get_child("body", NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

/// The token in a file only the server's user may read.
fn token_file(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("webhook.token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test]
async fn an_alert_is_posted_as_json_with_the_token_and_without_the_text() {
    let mut hook = Receiver::start(&[200], None).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path());
    let url = format!("http://{}/siem/hook?source=causerie", hook.addr);
    let s = server(
        &rule(
            "leak",
            "keywords = [\"customer list\"]\nseverity = \"critical\"",
            "[\"capture\", \"block\", \"alert\"]",
        ),
        &url,
        |c| c.compliance.alert_webhook_token_file = Some(token),
    )
    .await;
    let mut carol = online(&s, "carol", "secret", "desk").await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    alice
        .send(&chat("bob@localhost", "here is the Customer List, 4 pages"))
        .await
        .unwrap();
    let e = alice
        .recv_matching(T, |e| e.attr("type") == Some("error"))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&e).as_deref(),
        Some("policy-violation")
    );

    let r = hook.next().await;
    assert_eq!(r.request_line(), "POST /siem/hook?source=causerie HTTP/1.1");
    assert_eq!(r.header("host"), Some(hook.addr.to_string().as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let json = r.json();
    assert_eq!(json["event"], "alert");
    assert_eq!(json["rule"]["id"], "leak");
    assert_eq!(json["rule"]["category"], "category leak");
    assert_eq!(json["rule"]["severity"], "critical");
    assert_eq!(json["user"], "alice@localhost");
    assert_eq!(json["peer"], "bob@localhost");
    assert_eq!(json["direction"], "outgoing");
    assert_eq!(
        json["actions"],
        serde_json::json!(["capture", "block", "alert"])
    );
    assert_eq!(json["outcome"], "it was not delivered");
    assert_eq!(json["count"], 0);
    let unix = json["unix_time"].as_i64().expect("unix_time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - unix).abs() < 60, "{json}");
    assert!(
        json["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
    // The evidence record of the same message.
    let records = s
        .storage()
        .evidence
        .list(&EvidenceFilter::default())
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        json["evidence_seq"].as_i64(),
        Some(records[0].seq),
        "{json}"
    );
    // No message text: neither a field nor anywhere in the body.
    assert!(
        json.get("text").is_none() && json.get("found").is_none(),
        "{json}"
    );
    let raw = String::from_utf8_lossy(&r.body).to_lowercase();
    assert!(!raw.contains("customer list"), "{raw}");
    // The officer's chat message and the audit record do not depend on the webhook.
    let alert = carol
        .recv_matching(T, |e| {
            e.name() == "message" && e.attr("from") == Some("policy@localhost")
        })
        .await
        .unwrap();
    assert!(body(&alert).starts_with("Compliance alert: rule leak"));
    wait_stats(&s, "posted", |st| st.posted == 1).await;
    assert_eq!(
        stats(&s),
        WebhookStats {
            posted: 1,
            failed: 0,
            dropped: 0
        }
    );
    s.stop().await;
}

#[tokio::test]
async fn the_text_is_posted_when_asked_over_https_with_a_company_ca() {
    let ca = causerie_testkit::certs::test_ca();
    let (cert, key) = ca.issue(&["localhost"]);
    let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
        rustls_pki_types::pem::PemObject::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key: rustls_pki_types::PrivateKeyDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let mut hook = Receiver::start(
        &[204],
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("company-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let url = format!("https://localhost:{}/hook", hook.addr.port());
    let s = server(
        &rule(
            "cards",
            "detectors = [\"payment-card\"]",
            "[\"mask\", \"alert\"]",
        ),
        &url,
        |c| {
            c.compliance.alert_webhook_ca_file = Some(ca_file);
            c.compliance.alert_webhook_include_text = true;
        },
    )
    .await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice
        .send(&chat("bob@localhost", "card 4111 1111 1111 1111 ok"))
        .await
        .unwrap();
    let got = bob
        .recv_matching(T, |e| e.name() == "message")
        .await
        .unwrap();
    assert_eq!(body(&got), "card ******************* ok");
    let r = hook.next().await;
    assert_eq!(
        r.header("host"),
        Some(format!("localhost:{}", hook.addr.port()).as_str())
    );
    assert!(r.header("authorization").is_none());
    let json = r.json();
    assert_eq!(json["rule"]["id"], "cards");
    assert_eq!(json["actions"], serde_json::json!(["mask", "alert"]));
    // Not captured: no evidence record to name.
    assert!(json["evidence_seq"].is_null(), "{json}");
    // The text as received, before masking.
    assert_eq!(
        json["text"],
        serde_json::json!(["card 4111 1111 1111 1111 ok"])
    );
    assert_eq!(json["found"][0]["text"], "4111 1111 1111 1111");
    assert_eq!(json["found"][0]["what"], "payment card number");
    wait_stats(&s, "posted", |st| st.posted == 1).await;
    s.stop().await;
}

#[tokio::test]
async fn a_server_error_is_retried_until_the_receiver_accepts() {
    let mut hook = Receiver::start(&[500, 200], None).await;
    let s = server(
        &rule("kw", "keywords = [\"rumour\"]", "[\"alert\"]"),
        &format!("http://{}/hook", hook.addr),
        |c| c.compliance.alert_webhook_retries = 2,
    )
    .await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice
        .send(&chat("bob@localhost", "a rumour about the merger"))
        .await
        .unwrap();
    bob.recv_matching(T, |e| e.name() == "message")
        .await
        .expect("alert alone delivers");
    let first = hook.next().await;
    let second = hook.next().await;
    assert_eq!(first.body, second.body, "the same alert is sent again");
    assert_eq!(second.json()["rule"]["id"], "kw");
    wait_stats(&s, "posted after a retry", |st| st.posted == 1).await;
    assert_eq!(stats(&s).failed, 0);
    s.stop().await;
}

#[tokio::test]
async fn an_unreachable_webhook_never_holds_up_messages() {
    // Nothing listens on this port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s = server(
        &rule("kw", "keywords = [\"rumour\"]", "[\"capture\", \"alert\"]"),
        &format!("http://{closed}/hook"),
        |c| c.compliance.alert_webhook_retries = 1,
    )
    .await;
    let mut carol = online(&s, "carol", "secret", "desk").await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    let started = Instant::now();
    for i in 0..3 {
        let text = format!("rumour number {i}");
        alice.send(&chat("bob@localhost", &text)).await.unwrap();
        let got = bob
            .recv_matching(T, |e| e.name() == "message")
            .await
            .expect("delivered");
        assert_eq!(body(&got), text);
        carol
            .recv_matching(T, |e| {
                e.name() == "message" && e.attr("from") == Some("policy@localhost")
            })
            .await
            .expect("the officer is alerted");
    }
    // Three messages through while each post waits a second before its retry.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Each alert is tried twice, then given up.
    wait_stats(&s, "given up", |st| st.failed == 3).await;
    assert_eq!(stats(&s).posted, 0);
    let records = s
        .storage()
        .evidence
        .list(&EvidenceFilter::default())
        .await
        .unwrap();
    assert_eq!(records.len(), 3, "evidence does not depend on the webhook");
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_webhook_fills_its_queue_and_drops_without_blocking() {
    // Accepted by the kernel, never answered: each post waits for its timeout.
    let stalled = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = server(
        &rule("kw", "keywords = [\"rumour\"]", "[\"alert\"]"),
        &format!("http://{}/hook", stalled.local_addr().unwrap()),
        |c| {
            c.compliance.alert_webhook_queue = 1;
            c.compliance.alert_webhook_retries = 0;
            c.compliance.alert_webhook_timeout_secs = 2;
        },
    )
    .await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob: Client = online(&s, "bob", "secret", "b").await;
    let started = Instant::now();
    for i in 0..6 {
        alice
            .send(&chat("bob@localhost", &format!("rumour {i}")))
            .await
            .unwrap();
    }
    for i in 0..6 {
        let got = bob
            .recv_matching(T, |e| e.name() == "message")
            .await
            .expect("delivered");
        assert_eq!(body(&got), format!("rumour {i}"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // One alert in the air, one in the queue, the others dropped and counted.
    let now = stats(&s);
    assert!(now.dropped >= 4, "{now:?}");
    wait_stats(&s, "all accounted for", |st| st.failed + st.dropped == 6).await;
    drop(stalled);
    s.stop().await;
}
