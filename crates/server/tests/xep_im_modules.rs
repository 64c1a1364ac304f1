//! The instant-messaging extensions over the wire, as a client sees them: message carbons
//! (XEP-0280), blocking (XEP-0191), client state indication (XEP-0352), vCards (XEP-0054),
//! private XML storage (XEP-0049), software version (XEP-0092), entity time (XEP-0202), last
//! activity (XEP-0012), server-to-client pings (XEP-0199), and service discovery (XEP-0030) with
//! the server's entity capabilities (XEP-0115).

mod im;

use base64::Engine as _;
use causerie_testkit::client::Client;
use causerie_xml::Element;
use im::*;
use sha1::Digest as _;

const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_BLOCKING: &str = "urn:xmpp:blocking";
const NS_BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";
const NS_CSI: &str = "urn:xmpp:csi:0";
const NS_VCARD: &str = "vcard-temp";
const NS_PRIVATE: &str = "jabber:iq:private";
const NS_VERSION: &str = "jabber:iq:version";
const NS_TIME: &str = "urn:xmpp:time";
const NS_LAST: &str = "jabber:iq:last";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_CAPS: &str = "http://jabber.org/protocol/caps";

fn count(els: &[Element], pred: impl Fn(&Element) -> bool) -> usize {
    els.iter().filter(|e| pred(e)).count()
}

/// The message forwarded inside a carbon of `direction` (`sent` or `received`).
fn carbon_payload<'a>(el: &'a Element, direction: &str) -> Option<&'a Element> {
    el.get_child(direction, NS_CARBONS)?
        .get_child("forwarded", NS_FORWARD)?
        .get_child("message", NS_CLIENT)
}

fn is_carbon(el: &Element, direction: &str, body: &str) -> bool {
    el.name() == "message"
        && carbon_payload(el, direction).is_some_and(|m| body_of(m).as_deref() == Some(body))
}

async fn enable_carbons(c: &mut Client) {
    iq_ok(c, "set", None, Element::new("enable", NS_CARBONS)).await;
}

#[tokio::test]
async fn carbons_copy_sent_and_received_messages_to_the_other_resources() {
    let s = server(&["alice", "bob"]).await;
    let mut one = available(&s, "alice", "one").await;
    let mut two = available(&s, "alice", "two").await;
    // Never enables carbons.
    let mut three = available(&s, "alice", "three").await;
    let mut bob = available(&s, "bob", "desk").await;
    enable_carbons(&mut one).await;
    enable_carbons(&mut two).await;
    let (one_full, two_full, bob_full) = (
        one.jid().to_owned(),
        two.jid().to_owned(),
        bob.jid().to_owned(),
    );

    // §5: what one resource sends is copied to the others as <sent/>.
    one.send(&chat(&bare("bob"), "from-one"))
        .await
        .expect("send");
    expect(&mut bob, "the message", |e| {
        is_message_with_body(e, "from-one")
    })
    .await;
    let c = expect(&mut two, "the sent carbon", |e| {
        is_carbon(e, "sent", "from-one")
    })
    .await;
    assert_eq!(
        c.attr("from"),
        Some(bare("alice").as_str()),
        "§5: from the bare JID"
    );
    assert_eq!(c.attr("to"), Some(two_full.as_str()));
    let inner = carbon_payload(&c, "sent").expect("forwarded message");
    assert_eq!(inner.attr("from"), Some(one_full.as_str()));
    assert_eq!(inner.attr("to"), Some(bare("bob").as_str()));
    let got = ping_drain(&mut one).await;
    assert_eq!(
        count(&got, |e| is_carbon(e, "sent", "from-one")),
        0,
        "not to the sender"
    );
    let got = ping_drain(&mut three).await;
    assert_eq!(
        count(&got, |e| e.has_child("sent", NS_CARBONS)),
        0,
        "not without enabling"
    );

    // §6: what one resource receives is copied to the others as <received/>.
    bob.send(&chat(&one_full, "to-one")).await.expect("send");
    expect(&mut one, "the message", |e| {
        is_message_with_body(e, "to-one")
    })
    .await;
    let c = expect(&mut two, "the received carbon", |e| {
        is_carbon(e, "received", "to-one")
    })
    .await;
    let inner = carbon_payload(&c, "received").expect("forwarded message");
    assert_eq!(inner.attr("from"), Some(bob_full.as_str()));
    assert_eq!(inner.attr("to"), Some(one_full.as_str()));

    // §7: <private/> messages are not copied.
    let private = chat(&bare("bob"), "secret").with_child(Element::new("private", NS_CARBONS));
    one.send(&private).await.expect("send");
    expect(&mut bob, "the message", |e| {
        is_message_with_body(e, "secret")
    })
    .await;
    ping_drain(&mut one).await;
    let got = ping_drain(&mut two).await;
    assert_eq!(
        count(&got, |e| is_carbon(e, "sent", "secret")),
        0,
        "{}",
        xml_list(&got)
    );

    // §4: disabling stops the copies.
    iq_ok(&mut two, "set", None, Element::new("disable", NS_CARBONS)).await;
    one.send(&chat(&bare("bob"), "after-disable"))
        .await
        .expect("send");
    expect(&mut bob, "the message", |e| {
        is_message_with_body(e, "after-disable")
    })
    .await;
    ping_drain(&mut one).await;
    let got = ping_drain(&mut two).await;
    assert_eq!(
        count(&got, |e| e.has_child("sent", NS_CARBONS)),
        0,
        "{}",
        xml_list(&got)
    );
    s.stop().await;
}

fn block_items(name: &str, jids: &[&str]) -> Element {
    let mut el = Element::new(name, NS_BLOCKING);
    for j in jids {
        el.push_child(Element::new("item", NS_BLOCKING).with_attr("jid", *j));
    }
    el
}

fn is_blocking_push(el: &Element, name: &str) -> bool {
    el.name() == "iq" && el.attr("type") == Some("set") && el.has_child(name, NS_BLOCKING)
}

/// Everything that reached `c` from `from` (any resource) among `els`.
fn from_account(els: &[Element], account: &str) -> usize {
    count(els, |e| {
        e.attr("from").is_some_and(|f| bare_of(f) == account)
    })
}

#[tokio::test]
async fn a_blocked_contact_gets_nothing_and_learns_nothing() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;
    befriend(&mut alice, &mut bob).await;
    let alice_full = alice.jid().to_owned();

    let r = iq_ok(
        &mut alice,
        "get",
        None,
        Element::new("blocklist", NS_BLOCKING),
    )
    .await;
    let list = r.get_child("blocklist", NS_BLOCKING).expect("blocklist");
    assert_eq!(list.children().count(), 0);

    // §3.3: the block, its push, and the contact sees the user go offline.
    let (before, r) = iq_collect(&mut alice, "set", None, block_items("block", &[&bob_b])).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    seen_or_expect(&mut alice, &before, "the block push", |e| {
        is_blocking_push(e, "block")
    })
    .await;
    expect(&mut bob, "unavailable", |e| {
        is_presence(e, &alice_full, Some("unavailable"))
    })
    .await;

    // The user's presence no longer reaches the contact.
    broadcast(&mut alice, presence_with_status("hidden-from-bob")).await;
    settle(&mut alice).await;
    let got = settle(&mut bob).await;
    assert_eq!(from_account(&got, &alice_b), 0, "{}", xml_list(&got));

    // Messages and IQ requests from the contact bounce as if the user were offline; the user
    // sees nothing of them.
    bob.send(&chat(&alice_b, "are-you-there"))
        .await
        .expect("send");
    let e = expect(&mut bob, "the bounce", |e| {
        e.name() == "message" && e.attr("type") == Some("error")
    })
    .await;
    assert_eq!(error_condition(&e).as_deref(), Some("service-unavailable"));
    let r = iq(
        &mut bob,
        "get",
        Some(&alice_full),
        Element::new("query", NS_VERSION),
    )
    .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    // The contact's presence does not reach the user either.
    broadcast(&mut bob, presence_with_status("bob-says-hi")).await;
    settle(&mut bob).await;
    let got = settle(&mut alice).await;
    assert_eq!(from_account(&got, &bob_b), 0, "{}", xml_list(&got));

    // The user cannot write to the blocked contact.
    alice.send(&chat(&bob_b, "hello?")).await.expect("send");
    let e = expect(&mut alice, "the refusal", |e| {
        e.name() == "message" && e.attr("type") == Some("error")
    })
    .await;
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("not-acceptable"),
        "{}",
        e.to_xml()
    );
    assert_eq!(error_type(&e).as_deref(), Some("cancel"));
    let err = e.children().find(|c| c.name() == "error").expect("error");
    assert!(
        err.has_child("blocked", NS_BLOCKING_ERRORS),
        "{}",
        e.to_xml()
    );
    let got = ping_drain(&mut bob).await;
    assert_eq!(from_account(&got, &alice_b), 0, "{}", xml_list(&got));

    let r = iq_ok(
        &mut alice,
        "get",
        None,
        Element::new("blocklist", NS_BLOCKING),
    )
    .await;
    let list = r.get_child("blocklist", NS_BLOCKING).expect("blocklist");
    let jids: Vec<&str> = list.children().filter_map(|i| i.attr("jid")).collect();
    assert_eq!(jids, vec![bob_b.as_str()]);

    // §3.4: unblocking restores communication.
    let (before, r) = iq_collect(&mut alice, "set", None, block_items("unblock", &[&bob_b])).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    seen_or_expect(&mut alice, &before, "the unblock push", |e| {
        is_blocking_push(e, "unblock")
    })
    .await;
    bob.send(&chat(&alice_b, "back-again")).await.expect("send");
    expect(&mut alice, "the message", |e| {
        is_message_with_body(e, "back-again")
    })
    .await;
    s.stop().await;
}

/// XEP-0191 §3.4: "When the user unblocks communications with the contact, the user's server
/// MUST send the user's current presence information to the contact (but only if the contact is
/// allowed to receive presence notifications from the user…)".
#[tokio::test]
async fn unblocking_sends_the_current_presence_to_a_subscribed_contact() {
    let s = server(&["alice", "bob"]).await;
    let bob_b = bare("bob");
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;
    befriend(&mut alice, &mut bob).await;
    let alice_full = alice.jid().to_owned();
    iq_ok(&mut alice, "set", None, block_items("block", &[&bob_b])).await;
    expect(&mut bob, "unavailable", |e| {
        is_presence(e, &alice_full, Some("unavailable"))
    })
    .await;
    broadcast(&mut alice, presence_with_status("while-blocked")).await;
    iq_ok(&mut alice, "set", None, block_items("unblock", &[&bob_b])).await;
    settle(&mut alice).await;
    let got = settle(&mut bob).await;
    let p = seen_or_expect(&mut bob, &got, "alice's current presence", |e| {
        is_presence(e, &alice_full, None)
    })
    .await;
    assert_eq!(status_of(&p).as_deref(), Some("while-blocked"));
    s.stop().await;
}

/// XEP-0191 §3.3: unavailable presence goes to the blocked contact "only if the contact is allowed
/// to receive presence notifications from the user"; anyone else would learn the user's
/// resources from it.
#[tokio::test]
async fn blocking_a_non_subscriber_sends_it_nothing() {
    let s = server(&["alice", "carol"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut carol = available(&s, "carol", "desk").await;
    iq_ok(
        &mut alice,
        "set",
        None,
        block_items("block", &[&bare("carol")]),
    )
    .await;
    // The block's side effects are sent before its answer, so they are queued for carol by now.
    let got = ping_drain(&mut carol).await;
    assert_eq!(from_account(&got, &bare("alice")), 0, "{}", xml_list(&got));
    s.stop().await;
}

/// Blocking and unblocking someone changes nothing about their subscription request: XEP-0191
/// touches delivery only, and RFC 6121 §3.2 lets only the user deny a request.
#[tokio::test]
async fn unblocking_leaves_a_pending_subscription_request_pending() {
    let s = server(&["alice", "carol"]).await;
    let (alice_b, carol_b) = (bare("alice"), bare("carol"));
    let mut alice = available(&s, "alice", "one").await;
    let mut carol = available(&s, "carol", "desk").await;
    settle(&mut carol).await;
    carol
        .send(&typed_presence("subscribe", &alice_b))
        .await
        .expect("send");
    expect(&mut alice, "carol's request", |e| {
        is_presence(e, &carol_b, Some("subscribe"))
    })
    .await;
    iq_ok(&mut alice, "set", None, block_items("block", &[&carol_b])).await;
    iq_ok(&mut alice, "set", None, block_items("unblock", &[&carol_b])).await;
    settle(&mut alice).await;
    let got = settle(&mut carol).await;
    assert_eq!(
        count(&got, |e| is_presence(e, &alice_b, Some("unsubscribed"))),
        0,
        "carol is told her request was denied: {}",
        xml_list(&got)
    );
    let q = roster_get(&mut carol).await;
    let i = item(&q, &alice_b).expect("alice in carol's roster");
    assert_eq!(
        sub_state(i),
        ("none".into(), Some("subscribe".into()), false)
    );
    s.stop().await;
}

#[tokio::test]
async fn client_state_indication_holds_presence_but_not_messages() {
    let s = server(&["alice", "bob", "carol"]).await;
    let (mut bob, features) = login_with_features(&s, "bob", "phone").await;
    assert!(features.has_child("csi", NS_CSI), "{}", features.to_xml());
    broadcast(&mut bob, presence()).await;
    let mut alice = available(&s, "alice", "one").await;
    befriend(&mut alice, &mut bob).await;
    let alice_full = alice.jid().to_owned();

    // §5: the client says it is inactive; no answer is expected, the ping proves it was taken.
    bob.send(&Element::new("inactive", NS_CSI))
        .await
        .expect("send");
    ping_drain(&mut bob).await;
    broadcast(&mut alice, presence_with_status("s1")).await;
    broadcast(&mut alice, presence_with_status("s2")).await;
    settle(&mut alice).await;
    let got = settle(&mut bob).await;
    assert_eq!(
        count(&got, |e| is_presence(e, &alice_full, None)),
        0,
        "held while inactive: {}",
        xml_list(&got)
    );
    // Messages and subscription requests are not held.
    alice
        .send(&chat(&bare("bob"), "urgent"))
        .await
        .expect("send");
    ping_drain(&mut alice).await;
    let got = ping_drain(&mut bob).await;
    assert_eq!(
        count(&got, |e| is_message_with_body(e, "urgent")),
        1,
        "{}",
        xml_list(&got)
    );
    let mut carol = available(&s, "carol", "desk").await;
    carol
        .send(&typed_presence("subscribe", &bare("bob")))
        .await
        .expect("send");
    expect(&mut bob, "carol's request", |e| {
        is_presence(e, &bare("carol"), Some("subscribe"))
    })
    .await;

    // Active again: the held presence arrives, only the latest per contact.
    bob.send(&Element::new("active", NS_CSI))
        .await
        .expect("send");
    let got = ping_drain(&mut bob).await;
    let held: Vec<&Element> = got
        .iter()
        .filter(|e| is_presence(e, &alice_full, None))
        .collect();
    assert_eq!(held.len(), 1, "{}", xml_list(&got));
    assert_eq!(status_of(held[0]).as_deref(), Some("s2"));
    // And presence flows at once again.
    broadcast(&mut alice, presence_with_status("s3")).await;
    expect(&mut bob, "live presence", |e| {
        status_of(e).as_deref() == Some("s3")
    })
    .await;
    s.stop().await;
}

fn vcard(full_name: &str, photo_bytes: usize) -> Element {
    let mut v = Element::new("vCard", NS_VCARD)
        .with_child(Element::new("FN", NS_VCARD).with_text(full_name))
        .with_child(Element::new("NICKNAME", NS_VCARD).with_text("al"));
    if photo_bytes > 0 {
        v.push_child(
            Element::new("PHOTO", NS_VCARD)
                .with_child(Element::new("TYPE", NS_VCARD).with_text("image/png"))
                .with_child(Element::new("BINVAL", NS_VCARD).with_text("A".repeat(photo_bytes))),
        );
    }
    v
}

fn full_name(answer: &Element) -> Option<String> {
    answer
        .get_child("vCard", NS_VCARD)?
        .get_child("FN", NS_VCARD)
        .map(|f| f.text())
}

#[tokio::test]
async fn vcards_are_published_read_and_bounded() {
    let s = server_with(&["alice", "bob", "carol"], |c| c.im.max_vcard_bytes = 2048).await;
    let alice_b = bare("alice");
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;

    // XEP-0054 §3.1: the owner's own, empty before anything is published.
    let r = iq_ok(&mut alice, "get", None, Element::new("vCard", NS_VCARD)).await;
    let v = r.get_child("vCard", NS_VCARD).expect("vCard");
    assert_eq!(v.children().count(), 0, "{}", r.to_xml());
    // §3.2: publish, then read back by the owner and by someone else (§3.3: answered by the
    // server, from the bare JID).
    iq_ok(&mut alice, "set", None, vcard("Alice Liddell", 0)).await;
    let r = iq_ok(&mut alice, "get", None, Element::new("vCard", NS_VCARD)).await;
    assert_eq!(full_name(&r).as_deref(), Some("Alice Liddell"));
    let r = iq_ok(
        &mut bob,
        "get",
        Some(&alice_b),
        Element::new("vCard", NS_VCARD),
    )
    .await;
    assert_eq!(r.attr("from"), Some(alice_b.as_str()));
    assert_eq!(full_name(&r).as_deref(), Some("Alice Liddell"));
    // Only the owner may change it.
    let r = iq(&mut bob, "set", Some(&alice_b), vcard("Mallory", 0)).await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("forbidden"),
        "{}",
        r.to_xml()
    );
    // Someone with no vCard.
    let r = iq(
        &mut bob,
        "get",
        Some(&bare("carol")),
        Element::new("vCard", NS_VCARD),
    )
    .await;
    assert_eq!(r.attr("type"), Some("error"), "{}", r.to_xml());

    // Past the configured size: refused with a reason, and the stored one stays.
    let r = iq(&mut alice, "set", None, vcard("Alice Big", 4000)).await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{}",
        r.to_xml()
    );
    assert!(
        error_text(&r).is_some_and(|t| t.contains("2048")),
        "{}",
        r.to_xml()
    );
    let r = iq_ok(
        &mut bob,
        "get",
        Some(&alice_b),
        Element::new("vCard", NS_VCARD),
    )
    .await;
    assert_eq!(full_name(&r).as_deref(), Some("Alice Liddell"));
    s.stop().await;
}

#[tokio::test]
async fn private_storage_keeps_documents_per_namespace_for_their_owner_only() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;
    let ns_prefs = "urn:example:prefs";
    let doc = Element::new("prefs", ns_prefs)
        .with_child(Element::new("color", ns_prefs).with_text("blue"));
    iq_ok(
        &mut alice,
        "set",
        None,
        Element::new("query", NS_PRIVATE).with_child(doc),
    )
    .await;
    let r = iq_ok(
        &mut alice,
        "get",
        None,
        Element::new("query", NS_PRIVATE).with_child(Element::new("prefs", ns_prefs)),
    )
    .await;
    let color = r
        .get_child("query", NS_PRIVATE)
        .and_then(|q| q.get_child("prefs", ns_prefs))
        .and_then(|p| p.get_child("color", ns_prefs))
        .map(|c| c.text());
    assert_eq!(color.as_deref(), Some("blue"), "{}", r.to_xml());
    // Nothing stored under another namespace: the element comes back empty.
    let r = iq_ok(
        &mut alice,
        "get",
        None,
        Element::new("query", NS_PRIVATE).with_child(Element::new("other", "urn:example:other")),
    )
    .await;
    let other = r
        .get_child("query", NS_PRIVATE)
        .and_then(|q| q.get_child("other", "urn:example:other"))
        .expect("empty element");
    assert_eq!(other.children().count(), 0);
    // XEP-0049 §2.3: another user's data is off limits; reserved namespaces are refused.
    let r = iq(
        &mut bob,
        "get",
        Some(&bare("alice")),
        Element::new("query", NS_PRIVATE).with_child(Element::new("prefs", ns_prefs)),
    )
    .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("forbidden"),
        "{}",
        r.to_xml()
    );
    let r = iq(
        &mut alice,
        "set",
        None,
        Element::new("query", NS_PRIVATE).with_child(Element::new("x", NS_CLIENT)),
    )
    .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{}",
        r.to_xml()
    );
    s.stop().await;
}

#[tokio::test]
async fn version_time_and_last_activity() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;

    let r = iq_ok(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("query", NS_VERSION),
    )
    .await;
    let q = r.get_child("query", NS_VERSION).expect("query");
    assert_eq!(
        q.get_child("name", NS_VERSION).map(|n| n.text()).as_deref(),
        Some("Causerie")
    );
    assert!(
        q.get_child("version", NS_VERSION)
            .is_some_and(|v| !v.text().is_empty())
    );
    assert!(
        q.get_child("os", NS_VERSION).is_none(),
        "the OS is hidden by default"
    );

    let before = unix_now();
    let r = iq_ok(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("time", NS_TIME),
    )
    .await;
    let t = r.get_child("time", NS_TIME).expect("time");
    assert_eq!(
        t.get_child("tzo", NS_TIME).map(|z| z.text()).as_deref(),
        Some("Z")
    );
    let utc = t
        .get_child("utc", NS_TIME)
        .and_then(|u| parse_stamp(&u.text()))
        .unwrap_or_else(|| panic!("utc: {}", r.to_xml()));
    assert!(utc >= before - 1 && utc <= unix_now() + 1, "{}", r.to_xml());

    // XEP-0012 §5: the server's uptime; §3: an available account reports 0 to its owner, and
    // others are not told.
    let r = iq_ok(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("query", NS_LAST),
    )
    .await;
    assert!(
        r.get_child("query", NS_LAST)
            .and_then(|q| q.attr("seconds"))
            .is_some_and(|s| s.parse::<u64>().is_ok()),
        "{}",
        r.to_xml()
    );
    let r = iq_ok(
        &mut alice,
        "get",
        Some(&bare("alice")),
        Element::new("query", NS_LAST),
    )
    .await;
    assert_eq!(
        r.get_child("query", NS_LAST)
            .and_then(|q| q.attr("seconds")),
        Some("0")
    );
    let r = iq(
        &mut bob,
        "get",
        Some(&bare("alice")),
        Element::new("query", NS_LAST),
    )
    .await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("forbidden"),
        "{}",
        r.to_xml()
    );
    s.stop().await;

    // The operator may hide the version altogether.
    let s = server_with(&["alice"], |c| c.im.hide_version = true).await;
    let mut alice = available(&s, "alice", "one").await;
    let r = iq(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("query", NS_VERSION),
    )
    .await;
    assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    s.stop().await;
}

#[tokio::test]
async fn the_server_pings_clients_and_drops_those_that_do_not_answer() {
    let s = server_with(&["alice", "bob"], |c| c.im.server_ping_interval_secs = 1).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "silent").await;
    let is_ping = |e: &Element| {
        e.name() == "iq" && e.attr("type") == Some("get") && e.has_child("ping", NS_PING)
    };
    // XEP-0199 §3: alice answers every ping and stays connected over several rounds.
    for _ in 0..3 {
        let p = expect(&mut alice, "a ping from the server", is_ping).await;
        assert_eq!(p.attr("from"), Some("localhost"), "{}", p.to_xml());
        ack(&mut alice, &p).await;
    }
    // bob never answers: its stream ends with <connection-timeout/>.
    let end = loop {
        match bob.recv(T).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(is_stream_error(&end, "connection-timeout"), "{end}");
    ping_drain(&mut alice).await;
    s.stop().await;
}

/// XEP-0115 §5.1: the verification string of a disco#info answer, computed here from the answer
/// itself (identities by category/type/lang, then features, then the extended forms of §5.4:
/// sorted by FORM_TYPE, each written as its FORM_TYPE then its other fields sorted by var, each
/// var followed by its sorted values).
fn caps_ver(info: &Element) -> String {
    const NS_DATA: &str = "jabber:x:data";
    let mut ids: Vec<String> = info
        .children()
        .filter(|c| c.is("identity", NS_DISCO_INFO))
        .map(|i| {
            format!(
                "{}/{}/{}/{}",
                i.attr("category").unwrap_or(""),
                i.attr("type").unwrap_or(""),
                i.attr("xml:lang").unwrap_or(""),
                i.attr("name").unwrap_or("")
            )
        })
        .collect();
    ids.sort();
    let mut features: Vec<&str> = info
        .children()
        .filter(|c| c.is("feature", NS_DISCO_INFO))
        .filter_map(|f| f.attr("var"))
        .collect();
    features.sort_unstable();
    let mut s = String::new();
    for i in ids {
        s.push_str(&i);
        s.push('<');
    }
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    let values = |f: &Element| -> Vec<String> {
        let mut v: Vec<String> = f
            .children()
            .filter(|v| v.is("value", NS_DATA))
            .map(Element::text)
            .collect();
        v.sort();
        v
    };
    let mut forms: Vec<(String, String)> = info
        .children()
        .filter(|c| c.is("x", NS_DATA))
        .map(|x| {
            let form_type = x
                .children()
                .find(|f| f.attr("var") == Some("FORM_TYPE"))
                .map(|f| values(f).concat())
                .unwrap_or_default();
            let mut fields: Vec<(&str, Vec<String>)> = x
                .children()
                .filter(|f| f.is("field", NS_DATA))
                .filter_map(|f| Some((f.attr("var")?, values(f))))
                .filter(|(var, _)| *var != "FORM_TYPE")
                .collect();
            fields.sort();
            let mut text = format!("{form_type}<");
            for (var, vals) in fields {
                text.push_str(var);
                text.push('<');
                for v in vals {
                    text.push_str(&v);
                    text.push('<');
                }
            }
            (form_type, text)
        })
        .collect();
    forms.sort();
    for (_, text) in forms {
        s.push_str(&text);
    }
    base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(s.as_bytes()))
}

#[tokio::test]
async fn disco_lists_the_features_and_caps_in_stream_features_match_it() {
    let s = server(&["alice"]).await;
    let (mut alice, features) = login_with_features(&s, "alice", "one").await;
    let c = features
        .get_child("c", NS_CAPS)
        .unwrap_or_else(|| panic!("no caps in {}", features.to_xml()));
    assert_eq!(c.attr("hash"), Some("sha-1"));
    let node = c.attr("node").expect("node").to_owned();
    let ver = c.attr("ver").expect("ver").to_owned();

    let r = iq_ok(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("query", NS_DISCO_INFO),
    )
    .await;
    let info = r.get_child("query", NS_DISCO_INFO).expect("query");
    assert!(info.children().any(|i| i.is("identity", NS_DISCO_INFO)
        && i.attr("category") == Some("server")
        && i.attr("type") == Some("im")));
    let vars: Vec<&str> = info.children().filter_map(|f| f.attr("var")).collect();
    for f in [
        NS_DISCO_INFO,
        NS_PING,
        NS_CARBONS,
        NS_BLOCKING,
        NS_VCARD,
        NS_VERSION,
        NS_TIME,
        NS_LAST,
        "msgoffline",
        NS_CAPS,
    ] {
        assert!(
            vars.contains(&f),
            "feature {f} missing from {}",
            info.to_xml()
        );
    }
    assert_eq!(
        caps_ver(info),
        ver,
        "the announced ver is the hash of disco#info"
    );

    // §6.2: the node#ver query gives the same information, naming the node.
    let r = iq_ok(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("query", NS_DISCO_INFO).with_attr("node", format!("{node}#{ver}")),
    )
    .await;
    let by_node = r.get_child("query", NS_DISCO_INFO).expect("query");
    assert_eq!(by_node.attr("node"), Some(format!("{node}#{ver}").as_str()));
    assert_eq!(caps_ver(by_node), ver);

    // An account answers for itself as a registered account.
    let r = iq_ok(
        &mut alice,
        "get",
        Some(&bare("alice")),
        Element::new("query", NS_DISCO_INFO),
    )
    .await;
    let acct = r.get_child("query", NS_DISCO_INFO).expect("query");
    assert!(
        acct.children()
            .any(|i| i.attr("category") == Some("account") && i.attr("type") == Some("registered"))
    );
    s.stop().await;
}
