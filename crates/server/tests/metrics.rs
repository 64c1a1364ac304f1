//! The public HTTP listener end to end: `/metrics` in the Prometheus text format moves with real
//! traffic (sessions, logins, stanzas in and out, errors, storage latency), every metric is
//! described and documented in docs/metrics.md, and `/health` reports the database: 200 while
//! it answers, 503 once it is gone.
//!
//! The metrics recorder is process-wide: counters are compared before and after, and only the
//! gauges sampled from this test's own server are compared exactly. Every server of this
//! process has a public listener, so the recorder is in place before anything is counted.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use causerie_server::metrics::METRICS;
use causerie_testkit::client::{Client, ClientError};
use causerie_xml::Element;
use common::{NS_CLIENT, T, chat, online, server_with_users, stanza_error_condition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP/1.1 answer: status, header block, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One request on a new connection, read until the server closes it.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn scrape(addr: SocketAddr) -> String {
    let a = request(addr, "GET", "/metrics").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    a.body
}

/// The sum of the samples of `name` whose labels include every pair of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let pairs: Vec<(&str, &str)> = rest
                .split(',')
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            labels
                .iter()
                .all(|want| pairs.contains(want))
                .then(|| v.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// The metric names a scrape declares with `# TYPE`.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Scrapes until `check` holds (sessions end asynchronously), at most a few seconds.
async fn eventually(addr: SocketAddr, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + T;
    loop {
        let text = scrape(addr).await;
        if check(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_logins_stanzas_and_sessions() {
    let s = server_with_users(&[("alice", "alice-pw"), ("bob", "bob-pw")]).await;
    let addr = s
        .http_addr()
        .expect("the test server has a public listener");
    let ip = addr.ip();
    assert!(ip.is_loopback(), "{addr}");

    let before = scrape(addr).await;
    let received = |t: &str, kind| {
        value(
            t,
            "causerie_stanzas_received_total",
            &[("stream", "c2s"), ("kind", kind)],
        )
    };
    let sent = |t: &str, kind| {
        value(
            t,
            "causerie_stanzas_sent_total",
            &[("stream", "c2s"), ("kind", kind)],
        )
    };
    let logins = |t: &str, result| value(t, "causerie_logins_total", &[("result", result)]);
    assert_eq!(
        value(
            &before,
            "causerie_c2s_sessions",
            &[("state", "authenticated")]
        ),
        0.0
    );
    assert_eq!(
        value(&before, "causerie_c2s_sessions", &[("state", "restricted")]),
        0.0
    );

    let mut alice = online(&s, "alice", "alice-pw", "phone").await;
    let mut bob = online(&s, "bob", "bob-pw", "laptop").await;
    alice
        .send(&chat(&format!("bob@{}", s.domain()), "hello"))
        .await
        .expect("send");
    let got = bob
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("bob gets the message");
    assert_eq!(
        got.get_child("body", NS_CLIENT).map(|b| b.text()),
        Some("hello".into())
    );
    // An IQ nobody handles: the server answers service-unavailable (RFC 6120 §8.4).
    let iq = Element::new("iq", NS_CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "unknown-1")
        .with_attr("to", s.domain())
        .with_child(Element::new("query", "urn:example:nothing-handles-this"));
    alice.send(&iq).await.expect("send iq");
    let err = alice
        .recv_matching(T, |e| e.name() == "iq" && e.attr("id") == Some("unknown-1"))
        .await
        .expect("an error answer");
    assert_eq!(
        stanza_error_condition(&err).as_deref(),
        Some("service-unavailable")
    );
    // A wrong password.
    let wrong = Client::login(&s.client("bob", "not-the-password")).await;
    assert!(
        matches!(wrong, Err(ClientError::SaslFailure { .. })),
        "{:?}",
        wrong.err()
    );

    let during = scrape(addr).await;
    assert_eq!(
        value(
            &during,
            "causerie_c2s_sessions",
            &[("state", "authenticated")]
        ),
        2.0,
        "{during}"
    );
    assert_eq!(
        value(&during, "causerie_c2s_sessions", &[("state", "restricted")]),
        0.0
    );
    assert!(value(&during, "causerie_c2s_connections", &[]) >= 2.0);
    assert!(logins(&during, "success") - logins(&before, "success") >= 2.0);
    assert!(logins(&during, "bad_credentials") - logins(&before, "bad_credentials") >= 1.0);
    // Two initial presences, one chat message, one IQ from the clients.
    assert!(received(&during, "message") - received(&before, "message") >= 1.0);
    assert!(received(&during, "presence") - received(&before, "presence") >= 2.0);
    assert!(received(&during, "iq") - received(&before, "iq") >= 1.0);
    // The message to bob, the presences echoed back, the IQ error to alice.
    assert!(sent(&during, "message") - sent(&before, "message") >= 1.0);
    assert!(sent(&during, "presence") - sent(&before, "presence") >= 2.0);
    assert!(sent(&during, "iq") - sent(&before, "iq") >= 1.0);
    let unavailable = [("condition", "service-unavailable")];
    assert!(
        value(&during, "causerie_stanza_errors_total", &unavailable)
            - value(&before, "causerie_stanza_errors_total", &unavailable)
            >= 1.0
    );
    // Logins read the accounts: SQL statements on the users' tables, timed.
    let users_select = [("store", "users"), ("operation", "select")];
    assert!(
        value(
            &during,
            "causerie_storage_query_duration_seconds_count",
            &users_select
        ) > value(
            &before,
            "causerie_storage_query_duration_seconds_count",
            &users_select
        ),
        "{during}"
    );
    assert!(
        during.contains("causerie_storage_query_duration_seconds_bucket{"),
        "latency is a histogram with buckets: {during}"
    );
    assert_eq!(value(&during, "causerie_s2s_connections", &[]), 0.0);
    assert_eq!(
        value(
            &during,
            "causerie_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Every metric exposed is described, and described metrics have help text.
    let described: BTreeSet<&str> = METRICS.iter().map(|(n, ..)| *n).collect();
    for family in families(&during) {
        assert!(
            described.contains(family.as_str()),
            "{family} is exposed but not in causerie_server::metrics::METRICS"
        );
        assert!(
            during.contains(&format!("# HELP {family} ")),
            "{family} has no help text"
        );
    }

    alice.close().await.expect("alice leaves");
    let after = eventually(addr, |t| {
        value(t, "causerie_c2s_sessions", &[("state", "authenticated")]) == 1.0
    })
    .await;
    assert_eq!(
        value(
            &after,
            "causerie_c2s_sessions",
            &[("state", "authenticated")]
        ),
        1.0,
        "{after}"
    );

    let health = request(addr, "GET", "/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("JSON");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["database"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["uptime"].is_u64(), "{json}");

    assert_eq!(request(addr, "GET", "/nothing-here").await.status, 404);
    assert_eq!(request(addr, "POST", "/metrics").await.status, 405);

    bob.close().await.expect("bob leaves");
    s.stop().await;
    // The listener is gone with the server.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_when_the_database_is_gone() {
    let s = server_with_users(&[]).await;
    let addr = s.http_addr().expect("listener");
    assert_eq!(request(addr, "GET", "/health").await.status, 200);
    s.storage().close().await;
    let health = request(addr, "GET", "/health").await;
    assert_eq!(health.status, 503, "{}", health.body);
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("JSON");
    assert_eq!(json["status"], "error");
    assert_eq!(json["database"], "error");
    s.stop().await;
}

#[test]
fn every_metric_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .expect("docs/metrics.md");
    for (name, ..) in METRICS {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} is not in docs/metrics.md"
        );
    }
}
