//! RFC 6121 §4 and §8.5 over the wire: initial presence and probes (§4.2, §4.3), broadcasts to
//! subscribers and own resources (§4.4), unavailable presence on logout, clean or not (§4.5),
//! directed presence and its cleanup (§4.6), message delivery by priority (§8.5.2.1.1) and
//! presence to a full JID (§8.5.3).

mod im;

use causerie_testkit::client::Client;
use causerie_xml::Element;
use im::*;

fn count(els: &[Element], pred: impl Fn(&Element) -> bool) -> usize {
    els.iter().filter(|e| pred(e)).count()
}

#[tokio::test]
async fn initial_presence_is_broadcast_and_brings_the_contacts_current_presence() {
    let s = server(&["alice", "bob", "carol"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;
    let mut carol = available(&s, "carol", "desk").await;
    befriend(&mut alice, &mut bob).await;
    befriend(&mut alice, &mut carol).await;
    // carol goes away: alice's next login finds her offline.
    carol.close().await.expect("close");
    expect(&mut alice, "carol unavailable", |e| {
        e.name() == "presence" && e.attr("type") == Some("unavailable")
    })
    .await;
    broadcast(&mut bob, presence_with_status("bob-busy")).await;
    expect(&mut alice, "bob's update", |e| {
        status_of(e).as_deref() == Some("bob-busy")
    })
    .await;

    // A second resource of alice's logs in (§4.2.2, §4.3.2).
    let mut two = login(&s, "alice", "two").await;
    let mut got = broadcast(&mut two, presence_with_status("alice-two")).await;
    got.extend(settle(&mut two).await);
    let bob_full = bob.jid().to_owned();
    // The probe of bob is answered with his last presence, status included.
    let from_bob: Vec<&Element> = got
        .iter()
        .filter(|e| is_presence(e, &bob_full, None))
        .collect();
    let from_bob: Vec<Element> = if from_bob.is_empty() {
        vec![
            expect(&mut two, "bob's presence", |e| {
                is_presence(e, &bob_full, None)
            })
            .await,
        ]
    } else {
        from_bob.into_iter().cloned().collect()
    };
    assert_eq!(from_bob.len(), 1, "{}", xml_list(&got));
    assert_eq!(status_of(&from_bob[0]).as_deref(), Some("bob-busy"));
    // The account's other available resource is reported to the new one.
    let one_full = alice.jid().to_owned();
    assert!(
        got.iter().any(|e| is_presence(e, &one_full, None)),
        "{}",
        xml_list(&got)
    );
    // Offline contacts are simply absent.
    assert_eq!(
        count(&got, |e| e
            .attr("from")
            .is_some_and(|f| f.starts_with("carol@"))),
        0,
        "{}",
        xml_list(&got)
    );
    // Subscribers and the account's other resources see the new resource's initial presence.
    let two_full = two.jid().to_owned();
    let p = expect(&mut bob, "alice/two's initial presence", |e| {
        is_presence(e, &two_full, None)
    })
    .await;
    assert_eq!(status_of(&p).as_deref(), Some("alice-two"));
    expect(&mut alice, "own resource's presence", |e| {
        is_presence(e, &two_full, None)
    })
    .await;

    // A probe from a subscriber is answered with the current presence of each resource.
    bob.send(&typed_presence("probe", &bare("alice")))
        .await
        .expect("probe");
    let got = expect_all(
        &mut bob,
        &[&|e| is_presence(e, &one_full, None), &|e| {
            is_presence(e, &two_full, None)
        }],
    )
    .await;
    assert_eq!(status_of(&got[1]).as_deref(), Some("alice-two"));
    s.stop().await;
}

#[tokio::test]
async fn updates_reach_subscribers_and_own_resources_only() {
    let s = server(&["alice", "bob", "carol"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut two = available(&s, "alice", "two").await;
    let mut bob = available(&s, "bob", "desk").await;
    let mut carol = available(&s, "carol", "desk").await;
    befriend(&mut alice, &mut bob).await;
    // carol has alice in her roster without any subscription.
    let r = roster_set(&mut carol, roster_item(&bare("alice"), Some("Alice"), &[])).await;
    assert_eq!(r.attr("type"), Some("result"));

    broadcast(&mut alice, presence_with_status("away-for-lunch")).await;
    let is_update =
        |e: &Element| e.name() == "presence" && status_of(e).as_deref() == Some("away-for-lunch");
    let p = expect(&mut bob, "the update", is_update).await;
    assert_eq!(p.attr("from"), Some(alice.jid()));
    expect(&mut two, "the update on the other resource", is_update).await;
    settle(&mut alice).await;
    let got = settle(&mut carol).await;
    assert_eq!(count(&got, is_update), 0, "{}", xml_list(&got));
    s.stop().await;
}

#[tokio::test]
async fn directed_presence_is_cleaned_up_when_the_session_goes() {
    let s = server(&["alice", "carol"]).await;
    let carol_b = bare("carol");
    let mut carol = available(&s, "carol", "desk").await;
    settle(&mut carol).await;

    // §4.6.3: explicit unavailable presence reaches those who got directed presence.
    let mut alice = available(&s, "alice", "one").await;
    let alice_full = alice.jid().to_owned();
    alice
        .send(&presence_with_status("hello-carol").with_attr("to", carol_b.as_str()))
        .await
        .expect("directed");
    let p = expect(&mut carol, "directed presence", |e| {
        is_presence(e, &alice_full, None)
    })
    .await;
    assert_eq!(status_of(&p).as_deref(), Some("hello-carol"));
    broadcast(&mut alice, presence().with_attr("type", "unavailable")).await;
    expect(&mut carol, "unavailable after directed presence", |e| {
        is_presence(e, &alice_full, Some("unavailable"))
    })
    .await;

    // Directed unavailable presence takes the entity off the list: one unavailable, not two.
    broadcast(&mut alice, presence()).await;
    alice
        .send(&presence().with_attr("to", carol_b.as_str()))
        .await
        .expect("directed");
    expect(&mut carol, "directed presence", |e| {
        is_presence(e, &alice_full, None)
    })
    .await;
    alice
        .send(&typed_presence("unavailable", &carol_b))
        .await
        .expect("directed unavailable");
    broadcast(&mut alice, presence().with_attr("type", "unavailable")).await;
    settle(&mut alice).await;
    let got = settle(&mut carol).await;
    assert_eq!(
        count(&got, |e| is_presence(e, &alice_full, Some("unavailable"))),
        1,
        "{}",
        xml_list(&got)
    );

    // §4.6.3 for a session that just disappears.
    let mut gone = available(&s, "alice", "flaky").await;
    let gone_full = gone.jid().to_owned();
    gone.send(&presence().with_attr("to", carol_b.as_str()))
        .await
        .expect("directed");
    expect(&mut carol, "directed presence", |e| {
        is_presence(e, &gone_full, None)
    })
    .await;
    drop(gone);
    expect(
        &mut carol,
        "unavailable after the connection dropped",
        |e| is_presence(e, &gone_full, Some("unavailable")),
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn contacts_learn_of_clean_and_abrupt_logouts() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "desk").await;
    befriend(&mut alice, &mut bob).await;

    // §4.5.2: unavailable presence is broadcast as sent, status included.
    let alice_full = alice.jid().to_owned();
    alice
        .send(&presence_with_status("bye").with_attr("type", "unavailable"))
        .await
        .expect("unavailable");
    let p = expect(&mut bob, "unavailable", |e| {
        is_presence(e, &alice_full, Some("unavailable"))
    })
    .await;
    assert_eq!(status_of(&p).as_deref(), Some("bye"));
    alice.close().await.expect("close");

    // Stream closed without unavailable presence (§4.5.3).
    let clean = available(&s, "alice", "clean").await;
    let clean_full = clean.jid().to_owned();
    expect(&mut bob, "available", |e| is_presence(e, &clean_full, None)).await;
    clean.close().await.expect("close");
    expect(&mut bob, "unavailable after a clean close", |e| {
        is_presence(e, &clean_full, Some("unavailable"))
    })
    .await;

    // TCP gone without a stream close (§4.5.3).
    let abrupt = available(&s, "alice", "abrupt").await;
    let abrupt_full = abrupt.jid().to_owned();
    expect(&mut bob, "available", |e| {
        is_presence(e, &abrupt_full, None)
    })
    .await;
    drop(abrupt);
    expect(&mut bob, "unavailable after the connection dropped", |e| {
        is_presence(e, &abrupt_full, Some("unavailable"))
    })
    .await;
    s.stop().await;
}

/// Messages `c` received among `els` with this body.
fn got_body(els: &[Element], body: &str) -> usize {
    count(els, |e| is_message_with_body(e, body))
}

/// Sends a chat to bob's bare JID and returns, for each of bob's sessions, how many copies it got.
async fn deliveries(alice: &mut Client, bobs: &mut [&mut Client], body: &str) -> Vec<usize> {
    alice.send(&chat(&bare("bob"), body)).await.expect("send");
    // Routed once alice's next ping is answered; queued ahead of each session's own ping answer.
    ping_drain(alice).await;
    let mut out = Vec::new();
    for b in bobs.iter_mut() {
        out.push(got_body(&ping_drain(b).await, body));
    }
    out
}

#[tokio::test]
async fn bare_jid_messages_go_to_the_highest_non_negative_priority() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut high = available_with(&s, "bob", "high", presence_with_priority(5)).await;
    let mut low = available_with(&s, "bob", "low", presence_with_priority(1)).await;
    let mut neg = available_with(&s, "bob", "neg", presence_with_priority(-1)).await;

    assert_eq!(
        deliveries(&mut alice, &mut [&mut high, &mut low, &mut neg], "top-only").await,
        vec![1, 0, 0]
    );

    // §8.5.2.1.1: resources that share the highest priority all get it.
    let mut high2 = available_with(&s, "bob", "high2", presence_with_priority(5)).await;
    assert_eq!(
        deliveries(
            &mut alice,
            &mut [&mut high, &mut high2, &mut low, &mut neg],
            "tie"
        )
        .await,
        vec![1, 1, 0, 0]
    );

    // Lowering a priority with a presence update moves delivery.
    broadcast(&mut high, presence_with_priority(0)).await;
    broadcast(&mut high2, presence_with_priority(0)).await;
    assert_eq!(
        deliveries(
            &mut alice,
            &mut [&mut high, &mut high2, &mut low, &mut neg],
            "to-low"
        )
        .await,
        vec![0, 0, 1, 0]
    );

    // Only a negative-priority resource left: it never gets bare-JID messages (§4.7.2.3).
    high.close().await.expect("close");
    high2.close().await.expect("close");
    low.close().await.expect("close");
    ping_drain(&mut neg).await;
    assert_eq!(
        deliveries(&mut alice, &mut [&mut neg], "nobody-positive").await,
        vec![0]
    );
    // …but a message to its full JID reaches it.
    let neg_full = neg.jid().to_owned();
    alice.send(&chat(&neg_full, "direct")).await.expect("send");
    expect(&mut neg, "message to the full JID", |e| {
        is_message_with_body(e, "direct")
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn presence_to_a_full_jid_reaches_that_resource_only() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut one = available(&s, "bob", "one").await;
    let mut two = available(&s, "bob", "two").await;
    let alice_full = alice.jid().to_owned();
    let two_full = two.jid().to_owned();
    alice
        .send(&presence_with_status("just-you").with_attr("to", two_full.as_str()))
        .await
        .expect("directed");
    let p = expect(&mut two, "presence to the full JID", |e| {
        is_presence(e, &alice_full, None)
    })
    .await;
    assert_eq!(status_of(&p).as_deref(), Some("just-you"));
    assert_eq!(p.attr("to"), Some(two_full.as_str()));
    // §8.5.3.2.1: to a resource that does not exist, nothing is delivered anywhere.
    alice
        .send(&presence_with_status("nobody").with_attr("to", "bob@localhost/absent"))
        .await
        .expect("directed");
    settle(&mut alice).await;
    let got_one = settle(&mut one).await;
    let got_two = settle(&mut two).await;
    assert_eq!(
        count(&got_one, |e| e.attr("from") == Some(alice_full.as_str())),
        0,
        "{}",
        xml_list(&got_one)
    );
    assert_eq!(
        count(&got_two, |e| status_of(e).as_deref() == Some("nobody")),
        0,
        "{}",
        xml_list(&got_two)
    );
    s.stop().await;
}
