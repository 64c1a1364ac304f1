//! XEP-0160 offline messages over the wire: messages to an account without an available resource
//! are kept with a XEP-0203 delay stamp, handed over in order at the next initial presence, once,
//! across a server restart too; a full store refuses more with an error that says so.

mod im;

use causerie_testkit::client::Client;
use causerie_xml::Element;
use im::*;

const NS_DELAY: &str = "urn:xmpp:delay";

#[test]
fn stamps_parse() {
    assert_eq!(parse_stamp("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_stamp("2023-11-14T22:13:20Z"), Some(1_700_000_000));
    assert_eq!(parse_stamp("2024-02-29T12:00:00.123Z"), Some(1_709_208_000));
    assert_eq!(parse_stamp("2024-02-29 12:00:00"), None);
}

/// The `<delay/>` of an offline message: from the server, with a stamp between `after` and now.
fn check_delay(m: &Element, after: i64) {
    let d = m
        .get_child("delay", NS_DELAY)
        .unwrap_or_else(|| panic!("no XEP-0203 delay: {}", m.to_xml()));
    assert_eq!(d.attr("from"), Some("localhost"), "{}", m.to_xml());
    let stamp = d
        .attr("stamp")
        .and_then(parse_stamp)
        .unwrap_or_else(|| panic!("bad stamp: {}", m.to_xml()));
    assert!(
        stamp >= after - 1 && stamp <= unix_now() + 1,
        "stamp {stamp} outside [{after}, now]: {}",
        m.to_xml()
    );
}

/// Sends chats with these bodies to `to` and waits until they are routed (stored, here).
async fn send_all(alice: &mut Client, to: &str, bodies: &[&str]) -> Vec<Element> {
    for b in bodies {
        alice.send(&chat(to, b)).await.expect("send");
    }
    ping_drain(alice).await
}

/// The next `n` messages, in arrival order.
async fn messages(c: &mut Client, n: usize) -> Vec<Element> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(expect(c, "an offline message", |e| e.name() == "message").await);
    }
    out
}

#[tokio::test]
async fn messages_are_kept_stamped_and_handed_over_in_order_once() {
    let s = server(&["alice", "bob"]).await;
    let started = unix_now();
    let mut alice = available(&s, "alice", "one").await;
    let errors = send_all(&mut alice, &bare("bob"), &["first", "second"]).await;
    // RFC 6121 §8.5.2.2.1: to an unavailable resource, a message is handled as for the bare JID.
    let more = send_all(&mut alice, "bob@localhost/gone", &["third"]).await;
    let errors: Vec<Element> = errors.into_iter().chain(more).collect();
    assert!(
        !errors.iter().any(|e| e.attr("type") == Some("error")),
        "stored messages are not bounced: {}",
        xml_list(&errors)
    );

    // Logged in but not available yet: nothing is handed over (XEP-0160 §3).
    let mut bob = login(&s, "bob", "phone").await;
    let got = ping_drain(&mut bob).await;
    assert!(
        !got.iter().any(|e| e.name() == "message"),
        "{}",
        xml_list(&got)
    );
    bob.send(&presence()).await.expect("initial presence");
    let got = messages(&mut bob, 3).await;
    let bodies: Vec<String> = got.iter().filter_map(body_of).collect();
    assert_eq!(bodies, vec!["first", "second", "third"]);
    for m in &got {
        assert_eq!(m.attr("from"), Some(alice.jid()), "{}", m.to_xml());
        assert_eq!(m.attr("type"), Some("chat"));
        check_delay(m, started);
    }
    // Unavailable first, so that the next message is certainly stored rather than routed to a
    // session that is closing.
    broadcast(&mut bob, presence().with_attr("type", "unavailable")).await;
    bob.close().await.expect("close");

    // Delivered once: at the next login only what arrived since is handed over (in order, so a
    // message kept twice would come first).
    send_all(&mut alice, &bare("bob"), &["fourth"]).await;
    let mut bob = available(&s, "bob", "tablet").await;
    let next = expect(&mut bob, "the new offline message", |e| {
        e.name() == "message"
    })
    .await;
    assert_eq!(body_of(&next).as_deref(), Some("fourth"));

    // Available again: messages go straight to the session, without a delay stamp.
    alice.send(&chat(&bare("bob"), "live")).await.expect("send");
    let live = expect(&mut bob, "live message", |e| e.name() == "message").await;
    assert_eq!(body_of(&live).as_deref(), Some("live"));
    assert!(
        live.get_child("delay", NS_DELAY).is_none(),
        "{}",
        live.to_xml()
    );
    s.stop().await;
}

#[tokio::test]
async fn messages_kept_offline_survive_a_restart() {
    let s = server(&["alice", "bob"]).await;
    let started = unix_now();
    let mut alice = available(&s, "alice", "one").await;
    let alice_full = alice.jid().to_owned();
    send_all(
        &mut alice,
        &bare("bob"),
        &["before-restart-1", "before-restart-2"],
    )
    .await;
    alice.close().await.expect("close");

    let s = s.restart().await.expect("restart");
    let mut bob = available(&s, "bob", "phone").await;
    let got = messages(&mut bob, 2).await;
    let bodies: Vec<String> = got.iter().filter_map(body_of).collect();
    assert_eq!(bodies, vec!["before-restart-1", "before-restart-2"]);
    for m in &got {
        assert_eq!(m.attr("from"), Some(alice_full.as_str()));
        check_delay(m, started);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_full_store_refuses_with_a_reason() {
    let s = server_with(&["alice", "bob"], |c| c.im.offline_quota = 2).await;
    let mut alice = available(&s, "alice", "one").await;
    let before = send_all(&mut alice, &bare("bob"), &["q1", "q2"]).await;
    assert!(
        !before.iter().any(|e| e.attr("type") == Some("error")),
        "{}",
        xml_list(&before)
    );
    let over = chat(&bare("bob"), "q3");
    let over_id = over.attr("id").map(str::to_owned);
    alice.send(&over).await.expect("send");
    let e = expect(&mut alice, "the refusal", |e| {
        e.name() == "message" && e.attr("type") == Some("error")
    })
    .await;
    assert_eq!(e.attr("id").map(str::to_owned), over_id);
    assert_eq!(e.attr("from"), Some(bare("bob").as_str()));
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("service-unavailable"),
        "{}",
        e.to_xml()
    );
    let text = error_text(&e).unwrap_or_default();
    assert!(text.contains("full"), "the error says why: {}", e.to_xml());

    let mut bob = available(&s, "bob", "phone").await;
    let got = messages(&mut bob, 2).await;
    let bodies: Vec<String> = got.iter().filter_map(body_of).collect();
    assert_eq!(bodies, vec!["q1", "q2"]);
    s.stop().await;
}
