//! Presence floods (RFC 6120 §13.13): refused past the burst, disconnected when they go on.

mod common;

use causerie_testkit::client::Client;
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use common::*;

#[tokio::test]
async fn presence_flood_is_refused_then_disconnected() {
    let s = TestServer::start_with(|c| {
        c.im.presence_burst = 5;
        c.im.presence_per_minute = 1;
    })
    .await
    .expect("start");
    s.add_user("alice", "wonderland").await.expect("user");
    let mut c = Client::login(&s.client("alice", "wonderland"))
        .await
        .expect("login");
    for i in 0..5 {
        let p = Element::new("presence", NS_CLIENT)
            .with_child(Element::new("status", NS_CLIENT).with_text(format!("s{i}")));
        c.send(&p).await.expect("send");
    }
    // The sixth is over the allowance.
    c.send(&Element::new("presence", NS_CLIENT).with_attr("id", "over"))
        .await
        .expect("send");
    let e = c
        .recv_matching(T, |e| e.attr("id") == Some("over"))
        .await
        .expect("error");
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(
        stanza_error_condition(&e).as_deref(),
        Some("policy-violation")
    );
    // Going on: the stream is closed.
    for _ in 0..10 {
        if c.send(&Element::new("presence", NS_CLIENT)).await.is_err() {
            break;
        }
    }
    let closed = loop {
        match c.recv(T).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(stream_error(&closed), Some("policy-violation"), "{closed}");
    // Messages were never limited: a fresh session of the same user works.
    let mut again = Client::login(&s.client("alice", "wonderland"))
        .await
        .expect("login again");
    again
        .send(
            &Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", "p")
                .with_attr("to", "localhost")
                .with_child(Element::new("ping", "urn:xmpp:ping")),
        )
        .await
        .expect("ping");
    again
        .recv_matching(T, |e| e.attr("id") == Some("p"))
        .await
        .expect("pong");
    s.stop().await;
}
