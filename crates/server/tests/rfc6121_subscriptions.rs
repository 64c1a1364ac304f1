//! RFC 6121 §3 over the wire between two local accounts: the subscription handshake (§3.1), denial
//! and cancellation (§3.2), unsubscribing (§3.3), pre-approval (§3.4), and requests kept for a
//! contact who is offline, delivered at each later login until answered, across a restart too.

mod im;

use causerie_testkit::client::Client;
use causerie_xml::Element;
use im::*;

fn state(s: &str, ask: bool, approved: bool) -> (String, Option<String>, bool) {
    (s.to_owned(), ask.then(|| "subscribe".to_owned()), approved)
}

/// The state shown by a push about `jid`.
async fn pushed_state(c: &mut Client, jid: &str) -> (String, Option<String>, bool) {
    sub_state(&pushed_item(&expect_push(c, jid).await))
}

/// Subscription presence of `kind` from `from` among `els`.
fn count_presence(els: &[Element], from: &str, kind: Option<&str>) -> usize {
    els.iter().filter(|e| is_presence(e, from, kind)).count()
}

#[tokio::test]
async fn full_handshake_in_both_directions() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    let mut bob = available(&s, "bob", "work").await;
    settle(&mut alice).await;
    settle(&mut bob).await;

    // §3.1.1–3.1.3: the request.
    alice
        .send(&typed_presence("subscribe", &bob_b).with_attr("id", "sub1"))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("none", true, false)
    );
    let req = expect(&mut bob, "the request", |e| {
        is_presence(e, &alice_b, Some("subscribe"))
    })
    .await;
    assert_eq!(
        req.attr("to"),
        Some(bob_b.as_str()),
        "stamped with bare JIDs"
    );
    // §3.1.3: the contact is not added to the roster before the user decides.
    assert_eq!(state_in_roster(&mut bob, &alice_b).await, None);

    // §3.1.4–3.1.6: the approval.
    bob.send(&typed_presence("subscribed", &alice_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut bob, &alice_b).await,
        state("from", false, false)
    );
    let (got, _) = collect_until(&mut alice, |e| is_presence(e, &bob_b, Some("subscribed"))).await;
    let mut got = got;
    got.extend(settle(&mut bob).await);
    got.extend(settle(&mut alice).await);
    let push = got
        .iter()
        .find(|e| is_push_for(e, &bob_b))
        .expect("alice's roster push");
    assert_eq!(sub_state(&pushed_item(push)), state("to", false, false));
    // §3.1.5: the new subscriber receives the contact's current presence.
    assert_eq!(
        count_presence(&got, bob.jid(), None),
        1,
        "bob's presence: {}",
        xml_list(&got)
    );

    // The other direction.
    bob.send(&typed_presence("subscribe", &alice_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut bob, &alice_b).await,
        state("from", true, false)
    );
    expect(&mut alice, "the request", |e| {
        is_presence(e, &bob_b, Some("subscribe"))
    })
    .await;
    alice
        .send(&typed_presence("subscribed", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("both", false, false)
    );
    let alice_full = alice.jid().to_owned();
    let got = expect_all(
        &mut bob,
        &[
            &|e| is_push_for(e, &alice_b),
            &|e| is_presence(e, &alice_b, Some("subscribed")),
            &|e| is_presence(e, &alice_full, None),
        ],
    )
    .await;
    assert_eq!(
        sub_state(&pushed_item(&got[0])),
        state("both", false, false)
    );

    assert_eq!(
        state_in_roster(&mut alice, &bob_b).await,
        Some(state("both", false, false))
    );
    assert_eq!(
        state_in_roster(&mut bob, &alice_b).await,
        Some(state("both", false, false))
    );
    s.stop().await;
}

#[tokio::test]
async fn unsubscribing_and_cancelling_end_each_direction() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    let mut bob = available(&s, "bob", "work").await;
    befriend(&mut alice, &mut bob).await;

    // §3.3: alice stops receiving bob's presence.
    alice
        .send(&typed_presence("unsubscribe", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("from", false, false)
    );
    let got = expect_all(
        &mut bob,
        &[&|e| is_push_for(e, &alice_b), &|e| {
            is_presence(e, &alice_b, Some("unsubscribe"))
        }],
    )
    .await;
    assert_eq!(sub_state(&pushed_item(&got[0])), state("to", false, false));
    assert_eq!(got[1].attr("to"), Some(bob_b.as_str()));
    // §3.3.3: bob's server tells alice that bob's resources are unavailable to her now.
    expect(&mut alice, "bob unavailable", |e| {
        is_presence(e, bob.jid(), Some("unavailable"))
    })
    .await;
    // bob's updates no longer reach alice; alice's still reach bob.
    broadcast(&mut bob, presence_with_status("bob-later")).await;
    broadcast(&mut alice, presence_with_status("alice-still")).await;
    let got = settle_all(&mut [&mut bob, &mut alice]).await;
    assert!(
        !got[1]
            .iter()
            .any(|e| status_of(e).as_deref() == Some("bob-later")),
        "{}",
        xml_list(&got[1])
    );
    seen_or_expect(&mut bob, &got[0], "alice's update", |e| {
        status_of(e).as_deref() == Some("alice-still")
    })
    .await;

    // §3.2: alice cancels bob's subscription to her.
    alice
        .send(&typed_presence("unsubscribed", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("none", false, false)
    );
    // §3.2.2: while still subscribed, bob learns alice is unavailable, then the cancellation.
    let (mut before, _) =
        collect_until(&mut bob, |e| is_presence(e, &alice_b, Some("unsubscribed"))).await;
    assert_eq!(
        count_presence(&before, alice.jid(), Some("unavailable")),
        1,
        "{}",
        xml_list(&before)
    );
    before.extend(settle(&mut bob).await);
    let push = before
        .iter()
        .find(|e| is_push_for(e, &alice_b))
        .unwrap_or_else(|| panic!("bob's roster push: {}", xml_list(&before)));
    assert_eq!(sub_state(&pushed_item(push)), state("none", false, false));
    broadcast(&mut alice, presence_with_status("alice-gone")).await;
    let got = settle_all(&mut [&mut alice, &mut bob]).await;
    assert!(
        !got[1]
            .iter()
            .any(|e| status_of(e).as_deref() == Some("alice-gone")),
        "{}",
        xml_list(&got[1])
    );
    s.stop().await;
}

#[tokio::test]
async fn a_denied_request_leaves_nothing_pending() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    let mut bob = available(&s, "bob", "work").await;
    settle(&mut alice).await;
    alice
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    expect(&mut bob, "the request", |e| {
        is_presence(e, &alice_b, Some("subscribe"))
    })
    .await;
    // §3.2.1: "unsubscribed" in answer to a request denies it.
    bob.send(&typed_presence("unsubscribed", &alice_b))
        .await
        .expect("send");
    expect(&mut alice, "the denial", |e| {
        is_presence(e, &bob_b, Some("unsubscribed"))
    })
    .await;
    settle(&mut alice).await;
    assert_eq!(
        state_in_roster(&mut alice, &bob_b).await,
        Some(state("none", false, false)),
        "the request is no longer pending"
    );
    assert_eq!(state_in_roster(&mut bob, &alice_b).await, None);
    bob.close().await.expect("close");
    // The denied request is not delivered again.
    let mut bob = available(&s, "bob", "again").await;
    let got = settle(&mut bob).await;
    assert_eq!(
        count_presence(&got, &alice_b, Some("subscribe")),
        0,
        "{}",
        xml_list(&got)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_withdrawn_request_is_not_delivered_later() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    settle(&mut alice).await;
    alice
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("none", true, false)
    );
    // A.2.3: "unsubscribe" withdraws the pending request.
    alice
        .send(&typed_presence("unsubscribe", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("none", false, false)
    );
    settle(&mut alice).await;
    let mut bob = available(&s, "bob", "work").await;
    let got = settle(&mut bob).await;
    assert_eq!(
        count_presence(&got, &alice_b, Some("subscribe")),
        0,
        "{}",
        xml_list(&got)
    );
    assert_eq!(state_in_roster(&mut bob, &alice_b).await, None);
    s.stop().await;
}

#[tokio::test]
async fn pre_approval_approves_the_request_when_it_comes() {
    let s = server(&["alice", "bob", "carol"]).await;
    let (alice_b, bob_b, carol_b) = (bare("alice"), bare("bob"), bare("carol"));
    let (mut bob, features) = login_with_features(&s, "bob", "work").await;
    assert!(
        features.has_child("sub", "urn:xmpp:features:pre-approval"),
        "§3.4.1: pre-approval is announced: {}",
        features.to_xml()
    );
    broadcast(&mut bob, presence()).await;
    let mut alice = available(&s, "alice", "home").await;
    settle(&mut bob).await;
    settle(&mut alice).await;

    // §3.4.1: approving before any request.
    bob.send(&typed_presence("subscribed", &alice_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut bob, &alice_b).await,
        state("none", false, true)
    );
    let got = settle_all(&mut [&mut bob, &mut alice]).await;
    assert_eq!(
        count_presence(&got[1], &bob_b, Some("subscribed")),
        0,
        "a pre-approval is not routed: {}",
        xml_list(&got[1])
    );

    // §3.4.2: the request is approved by bob's server; bob is not asked.
    alice
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    expect(&mut alice, "the approval", |e| {
        is_presence(e, &bob_b, Some("subscribed"))
    })
    .await;
    expect(&mut alice, "bob's presence", |e| {
        is_presence(e, bob.jid(), None)
    })
    .await;
    let got = settle_all(&mut [&mut alice, &mut bob]).await;
    assert_eq!(
        count_presence(&got[1], &alice_b, Some("subscribe")),
        0,
        "{}",
        xml_list(&got[1])
    );
    assert_eq!(
        state_in_roster(&mut bob, &alice_b).await,
        Some(state("from", false, false)),
        "the pre-approval is used up"
    );
    assert_eq!(
        state_in_roster(&mut alice, &bob_b).await,
        Some(state("to", false, false))
    );

    // §3.2.1 / §3.4: "unsubscribed" cancels a pre-approval, so carol's request reaches bob.
    bob.send(&typed_presence("subscribed", &carol_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut bob, &carol_b).await,
        state("none", false, true)
    );
    bob.send(&typed_presence("unsubscribed", &carol_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut bob, &carol_b).await,
        state("none", false, false)
    );
    settle(&mut bob).await;
    let mut carol = available(&s, "carol", "desk").await;
    carol
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    expect(&mut bob, "carol's request", |e| {
        is_presence(e, &carol_b, Some("subscribe"))
    })
    .await;
    let got = settle(&mut carol).await;
    assert_eq!(
        count_presence(&got, &bob_b, Some("subscribed")),
        0,
        "{}",
        xml_list(&got)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_pending_request_is_delivered_at_each_login_until_answered() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    settle(&mut alice).await;
    // bob has no session at all.
    alice
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("none", true, false)
    );
    settle(&mut alice).await;

    for round in 0..2 {
        let mut bob = available(&s, "bob", &format!("round{round}")).await;
        let got = settle(&mut bob).await;
        assert_eq!(
            count_presence(&got, &alice_b, Some("subscribe")),
            1,
            "login {round}: {}",
            xml_list(&got)
        );
        bob.close().await.expect("close");
    }

    // A session that does not send presence is not available and gets no request.
    let mut quiet = login(&s, "bob", "quiet").await;
    let got = settle(&mut quiet).await;
    assert_eq!(
        count_presence(&got, &alice_b, Some("subscribe")),
        0,
        "{}",
        xml_list(&got)
    );
    quiet.close().await.expect("close");

    let mut bob = available(&s, "bob", "answering").await;
    expect(&mut bob, "the request", |e| {
        is_presence(e, &alice_b, Some("subscribe"))
    })
    .await;
    bob.send(&typed_presence("subscribed", &alice_b))
        .await
        .expect("send");
    expect(&mut alice, "the approval", |e| {
        is_presence(e, &bob_b, Some("subscribed"))
    })
    .await;
    bob.close().await.expect("close");
    let mut bob = available(&s, "bob", "after").await;
    let got = settle(&mut bob).await;
    assert_eq!(
        count_presence(&got, &alice_b, Some("subscribe")),
        0,
        "{}",
        xml_list(&got)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_pending_request_survives_a_restart() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    settle(&mut alice).await;
    alice
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut alice, &bob_b).await,
        state("none", true, false)
    );
    settle(&mut alice).await;
    // bob's queue has taken the request once a roster get of bob's is answered.
    let mut peek = login(&s, "bob", "peek").await;
    settle(&mut peek).await;
    peek.close().await.expect("close");
    alice.close().await.expect("close");

    let s = s.restart().await.expect("restart");
    let mut bob = available(&s, "bob", "work").await;
    let req = expect(&mut bob, "the request kept over the restart", |e| {
        is_presence(e, &alice_b, Some("subscribe"))
    })
    .await;
    assert_eq!(req.attr("to"), Some(bob_b.as_str()));
    settle(&mut bob).await;
    bob.send(&typed_presence("subscribed", &alice_b))
        .await
        .expect("send");
    assert_eq!(
        pushed_state(&mut bob, &alice_b).await,
        state("from", false, false)
    );
    settle(&mut bob).await;
    // alice was offline when bob approved; her roster has it, and her login brings bob's presence
    // (§4.2: probes of the contacts she is subscribed to).
    let mut alice = login(&s, "alice", "home").await;
    assert_eq!(
        state_in_roster(&mut alice, &bob_b).await,
        Some(state("to", false, false))
    );
    let got = broadcast(&mut alice, presence()).await;
    if count_presence(&got, bob.jid(), None) == 0 {
        expect(&mut alice, "bob's presence", |e| {
            is_presence(e, bob.jid(), None)
        })
        .await;
    }
    s.stop().await;
}

#[tokio::test]
async fn requests_to_missing_or_subscribed_accounts_are_answered_by_the_server() {
    let s = server(&["alice", "bob"]).await;
    let (alice_b, bob_b) = (bare("alice"), bare("bob"));
    let mut alice = available(&s, "alice", "home").await;
    let mut bob = available(&s, "bob", "work").await;
    settle(&mut alice).await;

    // §3.1.3: no such account.
    let ghost = bare("ghost");
    alice
        .send(&typed_presence("subscribe", &ghost))
        .await
        .expect("send");
    expect(&mut alice, "unsubscribed from the server", |e| {
        is_presence(e, &ghost, Some("unsubscribed"))
    })
    .await;
    settle(&mut alice).await;
    assert_eq!(
        state_in_roster(&mut alice, &ghost).await,
        Some(state("none", false, false))
    );

    // A.3.1: asking again while already subscribed is answered by bob's server, not bob; and
    // since alice's request is not pending, her server ignores that answer (§3.1.6).
    subscribe_approved(&mut alice, &mut bob).await;
    settle_all(&mut [&mut alice, &mut bob]).await;
    alice
        .send(&typed_presence("subscribe", &bob_b))
        .await
        .expect("send");
    let mut got = settle_all(&mut [&mut alice, &mut bob]).await;
    got.push(settle(&mut alice).await);
    assert_eq!(
        count_presence(&got[1], &alice_b, Some("subscribe")),
        0,
        "bob is not asked again: {}",
        xml_list(&got[1])
    );
    assert!(
        !got[0].iter().chain(&got[2]).any(|e| is_push_for(e, &bob_b)),
        "alice's roster does not change"
    );
    assert_eq!(
        state_in_roster(&mut alice, &bob_b).await,
        Some(state("to", false, false))
    );
    s.stop().await;
}
