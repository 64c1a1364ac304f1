//! RFC 6120 §4 (streams), §4.9 (stream errors), §5.4.3.3 (STARTTLS pipelining) and §11 (restricted
//! XML, limits) against the running server.

mod common;

use std::time::Duration;

use causerie_stanza::StreamError;
use causerie_testkit::client::{Client, Negotiation};
use causerie_testkit::harness::TestServer;
use common::*;

/// Reads until the server closes; returns the stream error condition if one came.
async fn closing_condition(n: &mut Negotiation) -> Option<String> {
    loop {
        match n.recv_event().await {
            Ok(causerie_xml::FramerEvent::Element(el))
                if el.is("error", "http://etherx.jabber.org/streams") =>
            {
                return StreamError::from_element(&el).map(|e| e.condition.name().to_owned());
            }
            Ok(causerie_xml::FramerEvent::StreamClose) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn bound_raw(s: &TestServer) -> Client {
    Client::login(&s.client("alice", "wonderland"))
        .await
        .expect("login")
}

#[tokio::test]
async fn malformed_xml_gets_not_well_formed_and_close() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut c = bound_raw(&s).await;
    c.send_raw(b"<message to='bob@localhost'><body>x</bodyy></message>")
        .await
        .expect("send");
    let e = c.recv(T).await.expect_err("closed");
    assert_eq!(stream_error(&e), Some("not-well-formed"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn malformed_header_before_anything_else() {
    let s = server_with_users(&[]).await;
    let mut n = Negotiation::connect_raw(&s.client("a", "b"))
        .await
        .expect("connect");
    n.send_raw(b"<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><<>").await.expect("send");
    assert_eq!(
        closing_condition(&mut n).await.as_deref(),
        Some("not-well-formed")
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_stream_namespace_is_invalid_namespace() {
    let s = server_with_users(&[]).await;
    let mut n = Negotiation::connect_raw(&s.client("a", "b"))
        .await
        .expect("connect");
    n.send_raw(b"<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='urn:wrong' version='1.0'>").await.expect("send");
    assert_eq!(
        closing_condition(&mut n).await.as_deref(),
        Some("invalid-namespace")
    );
    s.stop().await;
}

#[tokio::test]
async fn oversized_stanza_gets_policy_violation() {
    let s = TestServer::start_with(|c| c.limits.max_stanza_bytes = 20_000)
        .await
        .expect("start");
    s.add_user("alice", "wonderland").await.expect("user");
    let mut c = bound_raw(&s).await;
    let big = format!(
        "<message to='bob@localhost'><body>{}</body></message>",
        "x".repeat(30_000)
    );
    // The server may close before it has read everything; a write error then is expected.
    let _ = c.send_raw(big.as_bytes()).await;
    let e = c.recv(T).await.expect_err("closed");
    assert_eq!(stream_error(&e), Some("policy-violation"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn a_stanza_that_never_ends_is_cut_at_the_limit() {
    let s = TestServer::start_with(|c| c.limits.max_stanza_bytes = 20_000)
        .await
        .expect("start");
    s.add_user("alice", "wonderland").await.expect("user");
    let mut c = bound_raw(&s).await;
    c.send_raw(b"<message to='bob@localhost'><body>")
        .await
        .expect("send");
    let chunk = vec![b'y'; 4096];
    let mut sent = 0;
    let mut cut = false;
    while sent < 1_000_000 {
        if c.send_raw(&chunk).await.is_err() {
            cut = true;
            break;
        }
        sent += chunk.len();
        if sent > 40_000 {
            break;
        }
    }
    let e = c.recv(T).await.expect_err("closed");
    assert_eq!(
        stream_error(&e),
        Some("policy-violation"),
        "{e} (cut while writing: {cut})"
    );
    s.stop().await;
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test]
async fn entity_bomb_is_refused_without_memory_growth() {
    let s = server_with_users(&[]).await;
    let before = rss_kib();
    let mut n = Negotiation::connect_raw(&s.client("a", "b"))
        .await
        .expect("connect");
    let mut bomb = String::from("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        bomb.push_str(&format!(
            "<!ENTITY lol{i} '{}'>",
            format!("&{prev};").repeat(10)
        ));
    }
    bomb.push_str("]><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>&lol9;");
    let _ = n.send_raw(bomb.as_bytes()).await;
    assert_eq!(
        closing_condition(&mut n).await.as_deref(),
        Some("restricted-xml")
    );
    if let (Some(a), Some(b)) = (before, rss_kib()) {
        // Expanded, the bomb is 3 GB; refused on sight, the process barely moves.
        assert!(
            b.saturating_sub(a) < 64 * 1024,
            "RSS grew from {a} KiB to {b} KiB"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn entity_references_inside_a_session_are_refused() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut c = bound_raw(&s).await;
    c.send_raw(b"<message to='bob@localhost'><body>&xxe;</body></message>")
        .await
        .expect("send");
    let e = c.recv(T).await.expect_err("closed");
    let cond = stream_error(&e).unwrap_or("none").to_owned();
    assert!(cond == "restricted-xml" || cond == "not-well-formed", "{e}");
    s.stop().await;
}

#[tokio::test]
async fn comments_and_processing_instructions_are_restricted() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    for bad in [&b"<!-- hi -->"[..], b"<?php echo 1; ?>"] {
        let mut c = bound_raw(&s).await;
        c.send_raw(bad).await.expect("send");
        let e = c.recv(T).await.expect_err("closed");
        assert_eq!(stream_error(&e), Some("restricted-xml"), "{e}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_header_is_timed_out() {
    let s = TestServer::start_with(|c| c.c2s.handshake_timeout_secs = 1)
        .await
        .expect("start");
    let mut n = Negotiation::connect_raw(&s.client("a", "b"))
        .await
        .expect("connect");
    n.send_raw(b"<stream:stream to='localhost' xmlns='jabber:client'")
        .await
        .expect("send");
    n.set_timeout(Duration::from_secs(10));
    assert_eq!(
        closing_condition(&mut n).await.as_deref(),
        Some("connection-timeout")
    );
    s.stop().await;
}

#[tokio::test]
async fn bytes_pipelined_after_starttls_are_refused() {
    let s = server_with_users(&[]).await;
    let mut n = Negotiation::connect(&s.client("a", "b"))
        .await
        .expect("connect");
    n.header().await.expect("header");
    n.features().await.expect("features");
    n.send_raw(
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='get' id='injected'/>",
    )
    .await
    .expect("send");
    let answer = n.recv().await.expect("an answer");
    assert!(
        answer.is("failure", "urn:ietf:params:xml:ns:xmpp-tls"),
        "expected <failure/>, got {}",
        answer.to_xml()
    );
    assert!(
        n.recv().await.is_err(),
        "the stream is closed after <failure/>"
    );
    s.stop().await;
}

#[tokio::test]
async fn whitespace_keepalives_are_accepted() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut c = bound_raw(&s).await;
    c.send_raw(b" \n \t ").await.expect("send");
    c.send(
        &causerie_xml::Element::new("iq", NS_CLIENT)
            .with_attr("type", "get")
            .with_attr("id", "p1")
            .with_attr("to", "localhost")
            .with_child(causerie_xml::Element::new("ping", "urn:xmpp:ping")),
    )
    .await
    .expect("ping");
    let r = c
        .recv_matching(T, |e| e.attr("id") == Some("p1"))
        .await
        .expect("pong");
    assert_eq!(r.attr("type"), Some("result"));
    s.stop().await;
}

#[tokio::test]
async fn clean_close_both_ways() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let c = bound_raw(&s).await;
    c.close()
        .await
        .expect("the server answers </stream:stream>");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_streams_with_system_shutdown() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut c = bound_raw(&s).await;
    let stop = tokio::spawn(s.stop());
    let e = c.recv(T).await.expect_err("closed by shutdown");
    assert_eq!(stream_error(&e), Some("system-shutdown"), "{e}");
    stop.await.expect("stopped");
}

#[tokio::test]
async fn secrets_are_created_on_first_start_readable_by_the_owner_only_and_kept() {
    let s = TestServer::start().await.expect("start");
    let data = s.config.server.data_dir.clone();
    let read = |name: &str| std::fs::read(data.join(name)).expect(name);
    let (secret, receipt_key) = (read("server.secret"), read("policy.key"));
    assert_eq!((secret.len(), receipt_key.len()), (32, 32));
    #[cfg(unix)]
    for name in ["server.secret", "policy.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join(name))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let s = s.restart().await.expect("restart");
    assert_eq!(read("server.secret"), secret);
    assert_eq!(read("policy.key"), receipt_key);
    s.stop().await;
}
