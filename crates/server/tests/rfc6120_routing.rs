//! RFC 6120 §8 and §10, RFC 6121 §8: stanzas between sessions of hosted users.

mod common;

use causerie_testkit::client::Client;
use causerie_xml::Element;
use common::*;

#[tokio::test]
async fn two_users_exchange_messages_over_tls() {
    let s = server_with_users(&[("alice", "wonderland"), ("bob", "builder")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let mut bob = online(&s, "bob", "builder", "phone").await;
    alice
        .send(&chat("bob@localhost", "hello-bob"))
        .await
        .expect("send");
    let m = bob
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("bob receives");
    assert_eq!(m.attr("from"), Some("alice@localhost/laptop"));
    assert_eq!(
        m.get_child("body", NS_CLIENT).map(|b| b.text()).as_deref(),
        Some("hello-bob")
    );
    bob.send(&chat("alice@localhost/laptop", "hello-alice"))
        .await
        .expect("send");
    let m = alice
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("alice receives");
    assert_eq!(m.attr("from"), Some("bob@localhost/phone"));
    assert_eq!(
        m.get_child("body", NS_CLIENT).map(|b| b.text()).as_deref(),
        Some("hello-alice")
    );
    alice.close().await.expect("close");
    bob.close().await.expect("close");
    s.stop().await;
}

#[tokio::test]
async fn spoofed_from_is_rewritten_to_the_session_jid() {
    let s = server_with_users(&[("alice", "wonderland"), ("bob", "builder")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let mut bob = online(&s, "bob", "builder", "phone").await;
    let spoof = chat("bob@localhost", "spoof").with_attr("from", "ceo@localhost/desk");
    alice.send(&spoof).await.expect("send");
    let m = bob
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("delivered");
    assert_eq!(m.attr("from"), Some("alice@localhost/laptop"));
    s.stop().await;
}

#[tokio::test]
async fn bare_jid_goes_to_the_highest_priority_resources() {
    let s = server_with_users(&[("alice", "wonderland"), ("bob", "builder")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let mut bob_low = online(&s, "bob", "builder", "low").await;
    let mut bob_high = Client::login(&{
        let mut c = s.client("bob", "builder");
        c.resource = Some("high".into());
        c
    })
    .await
    .expect("login");
    bob_high
        .send(
            &Element::new("presence", NS_CLIENT)
                .with_child(Element::new("priority", NS_CLIENT).with_text("5")),
        )
        .await
        .expect("presence");
    bob_high
        .recv_matching(T, |e| {
            e.name() == "presence" && e.attr("from") == Some("bob@localhost/high")
        })
        .await
        .expect("own presence");
    bob_low
        .recv_matching(T, |e| {
            e.name() == "presence" && e.attr("from") == Some("bob@localhost/high")
        })
        .await
        .expect("sibling presence");
    alice
        .send(&chat("bob@localhost", "to-top"))
        .await
        .expect("send");
    let m = bob_high
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("high gets it");
    assert_eq!(
        m.get_child("body", NS_CLIENT).map(|b| b.text()).as_deref(),
        Some("to-top")
    );
    // The lower-priority resource must not get it: a ping round trip proves its queue is drained.
    bob_low
        .send(
            &Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", "p")
                .with_attr("to", "localhost")
                .with_child(Element::new("ping", "urn:xmpp:ping")),
        )
        .await
        .expect("ping");
    let next = bob_low
        .recv_matching(T, |e| e.name() != "presence")
        .await
        .expect("next");
    assert_eq!(
        next.name(),
        "iq",
        "low-priority resource got {}",
        next.to_xml()
    );
    s.stop().await;
}

#[tokio::test]
async fn message_to_unknown_user_bounces_service_unavailable() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    alice
        .send(&chat("nobody@localhost", "anyone"))
        .await
        .expect("send");
    let e = alice
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("error");
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("from"), Some("nobody@localhost"));
    assert_eq!(
        stanza_error_condition(&e).as_deref(),
        Some("service-unavailable")
    );
    s.stop().await;
}

#[tokio::test]
async fn iq_to_unknown_resource_gets_service_unavailable() {
    let s = server_with_users(&[("alice", "wonderland"), ("bob", "builder")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let iq = Element::new("iq", NS_CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "v1")
        .with_attr("to", "bob@localhost/nowhere")
        .with_child(Element::new("query", "jabber:iq:version"));
    alice.send(&iq).await.expect("send");
    let r = alice
        .recv_matching(T, |e| e.attr("id") == Some("v1"))
        .await
        .expect("answer");
    assert_eq!(r.attr("type"), Some("error"));
    assert_eq!(
        stanza_error_condition(&r).as_deref(),
        Some("service-unavailable")
    );
    s.stop().await;
}

#[tokio::test]
async fn iq_between_full_jids_is_routed_and_answered() {
    let s = server_with_users(&[("alice", "wonderland"), ("bob", "builder")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let mut bob = online(&s, "bob", "builder", "phone").await;
    let iq = Element::new("iq", NS_CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "v2")
        .with_attr("to", "bob@localhost/phone")
        .with_child(Element::new("query", "jabber:iq:version"));
    alice.send(&iq).await.expect("send");
    let got = bob
        .recv_matching(T, |e| e.attr("id") == Some("v2"))
        .await
        .expect("bob gets the IQ");
    assert_eq!(got.attr("from"), Some("alice@localhost/laptop"));
    let answer = Element::new("iq", NS_CLIENT)
        .with_attr("type", "result")
        .with_attr("id", "v2")
        .with_attr("to", "alice@localhost/laptop")
        .with_child(
            Element::new("query", "jabber:iq:version")
                .with_child(Element::new("name", "jabber:iq:version").with_text("test")),
        );
    bob.send(&answer).await.expect("answer");
    let r = alice
        .recv_matching(T, |e| e.attr("id") == Some("v2"))
        .await
        .expect("alice gets the result");
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.attr("from"), Some("bob@localhost/phone"));
    s.stop().await;
}

#[tokio::test]
async fn server_answers_ping_and_disco_and_refuses_unknown_iqs() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let ask = |id: &str, ns: &str, name: &str| {
        Element::new("iq", NS_CLIENT)
            .with_attr("type", "get")
            .with_attr("id", id)
            .with_attr("to", "localhost")
            .with_child(Element::new(name, ns))
    };
    alice
        .send(&ask("p", "urn:xmpp:ping", "ping"))
        .await
        .expect("send");
    let r = alice
        .recv_matching(T, |e| e.attr("id") == Some("p"))
        .await
        .expect("pong");
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.attr("from"), Some("localhost"));
    alice
        .send(&ask("d", "http://jabber.org/protocol/disco#info", "query"))
        .await
        .expect("send");
    let r = alice
        .recv_matching(T, |e| e.attr("id") == Some("d"))
        .await
        .expect("disco");
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    assert!(q.children().any(|c| c.name() == "identity"
        && c.attr("category") == Some("server")
        && c.attr("type") == Some("im")));
    assert!(
        q.children()
            .any(|c| c.name() == "feature" && c.attr("var") == Some("urn:xmpp:ping"))
    );
    alice
        .send(&ask("u", "urn:example:unknown", "query"))
        .await
        .expect("send");
    let r = alice
        .recv_matching(T, |e| e.attr("id") == Some("u"))
        .await
        .expect("error");
    assert_eq!(
        stanza_error_condition(&r).as_deref(),
        Some("service-unavailable")
    );
    s.stop().await;
}

#[tokio::test]
async fn malformed_to_gets_jid_malformed() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    alice
        .send(&chat("bad@@localhost", "x"))
        .await
        .expect("send");
    let r = alice
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("error");
    assert_eq!(stanza_error_condition(&r).as_deref(), Some("jid-malformed"));
    s.stop().await;
}

#[tokio::test]
async fn disconnect_sends_unavailable_to_own_resources() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut a1 = online(&s, "alice", "wonderland", "one").await;
    let a2 = online(&s, "alice", "wonderland", "two").await;
    a1.recv_matching(T, |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/two")
    })
    .await
    .expect("two available");
    drop(a2); // abrupt: no </stream:stream>
    let p = a1
        .recv_matching(T, |e| {
            e.name() == "presence" && e.attr("type") == Some("unavailable")
        })
        .await
        .expect("unavailable");
    assert_eq!(p.attr("from"), Some("alice@localhost/two"));
    s.stop().await;
}

#[tokio::test]
async fn remote_domains_are_refused_while_federation_is_closed() {
    // No partner configured: federation is closed, and the sender learns it at once.
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    alice
        .send(&chat("someone@partner.example", "hi"))
        .await
        .expect("send");
    let r = alice
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("error");
    assert_eq!(stanza_error_condition(&r).as_deref(), Some("not-allowed"));
    assert_eq!(r.attr("from"), Some("someone@partner.example"));
    s.stop().await;
}

#[tokio::test]
async fn virtual_hosts_each_with_their_certificate_route_to_each_other() {
    use causerie_testkit::client::Trust;
    let s = causerie_testkit::harness::TestServer::start_with(|c| {
        c.server.domains = vec!["localhost".into(), "corp.example".into()]
    })
    .await
    .expect("start");
    s.add_user("alice", "wonderland").await.expect("alice");
    s.add_account("bob@corp.example", "builder")
        .await
        .expect("bob");
    let mut alice = online(&s, "alice", "wonderland", "laptop").await;
    let mut cfg = s.client("bob", "builder");
    cfg.domain = "corp.example".into();
    cfg.resource = Some("desk".into());
    // The generated certificate of corp.example is its own self-signed one.
    let pem =
        std::fs::read(s.config.server.data_dir.join("tls/corp.example.crt")).expect("corp cert");
    let cert = rustls_pki_types::pem::PemObject::from_pem_slice(&pem).expect("pem");
    cfg.trust = Trust::Roots(vec![cert]);
    let mut bob = Client::login(&cfg)
        .await
        .expect("bob logs in to corp.example");
    assert_eq!(bob.jid(), "bob@corp.example/desk");
    bob.send(&Element::new("presence", NS_CLIENT))
        .await
        .expect("presence");
    bob.recv_matching(T, |e| e.name() == "presence")
        .await
        .expect("own presence");
    alice
        .send(&chat("bob@corp.example", "cross-domain"))
        .await
        .expect("send");
    let m = bob
        .recv_matching(T, |e| e.name() == "message")
        .await
        .expect("delivered");
    assert_eq!(m.attr("from"), Some("alice@localhost/laptop"));
    s.stop().await;
}
