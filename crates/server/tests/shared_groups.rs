//! Shared roster groups over the wire (docs/groups.md): the groups are changed through the admin
//! operations on the running server, as `causeriectl group …` does, and clients see the result
//! over TLS: members in each other's rosters with `subscription='both'` and the group's display
//! name, presence without any subscription, pushes when the groups change, nothing for others,
//! and own items merged with shared ones.

mod im;

use std::sync::Arc;

use causerie_admin::{Actor, Context, Live, Permission, Registry};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use im::*;
use serde_json::{Value, json};

/// Runs an admin operation against the running server, as its admin API does.
async fn op(s: &TestServer, name: &str, args: Value) -> Value {
    let live = Arc::new(Live::new(s.core().clone(), None));
    let ctx = Context::live(s.storage().clone(), s.config.clone(), live);
    let actor = Actor::new("test", None, Permission::Admin);
    let out = Registry::standard()
        .execute(&ctx, &actor, name, args)
        .await
        .unwrap_or_else(|e| panic!("{name}: {}", e.message));
    serde_json::from_str(&out).expect("JSON result")
}

async fn staff(s: &TestServer, members: &[&str]) {
    op(
        s,
        "group.create",
        json!({"name": "staff", "display_name": "Staff"}),
    )
    .await;
    if !members.is_empty() {
        let members: Vec<String> = members.iter().map(|m| bare(m)).collect();
        let done = op(s, "group.add", json!({"name": "staff", "members": members})).await;
        assert_eq!(done["applied_now"], true, "{done}");
    }
}

fn presence_from(el: &Element, from: &str, kind: Option<&str>) -> bool {
    is_presence(el, from, kind)
}

#[tokio::test]
async fn members_see_each_other_and_presence_flows_without_subscription() {
    let s = server(&["alice", "bob", "carol"]).await;
    staff(&s, &["alice", "bob"]).await;

    let mut alice = available(&s, "alice", "desk").await;
    let q = roster_get(&mut alice).await;
    assert_eq!(q.children().count(), 1, "{}", q.to_xml());
    let bob_item = item(&q, &bare("bob")).expect("bob is in alice's roster");
    assert_eq!(sub_state(bob_item), ("both".into(), None, false));
    assert_eq!(groups(bob_item), ["Staff"]);
    // Nothing was written to alice's roster: the groups are an overlay.
    let stored = s
        .storage()
        .roster
        .roster("alice", "localhost")
        .await
        .expect("store");
    assert!(stored.0.is_empty(), "{stored:?}");

    let mut carol = available(&s, "carol", "desk").await;
    let q = roster_get(&mut carol).await;
    assert_eq!(q.children().count(), 0, "not a member: {}", q.to_xml());

    // Bob comes online: alice sees him, he sees her (his probe answered), without any
    // subscription between them.
    let mut bob = login(&s, "bob", "phone").await;
    let before = broadcast(&mut bob, presence_with_status("on my way")).await;
    let from_alice = seen_or_expect(&mut bob, &before, "alice's presence", |e| {
        presence_from(e, alice.jid(), None)
    })
    .await;
    assert_eq!(from_alice.attr("to"), Some(bob.jid()));
    let from_bob = expect(&mut alice, "bob's presence", |e| {
        presence_from(e, "bob@localhost/phone", None)
    })
    .await;
    assert_eq!(status_of(&from_bob).as_deref(), Some("on my way"));

    // Carol, in no group, saw neither.
    let seen = settle_all(&mut [&mut bob, &mut alice, &mut carol]).await;
    assert!(
        !seen[2].iter().any(|e| e.name() == "presence"),
        "carol got presence: {}",
        xml_list(&seen[2])
    );

    // Going offline reaches the other member too (RFC 6121 §4.5.2).
    bob.send(&presence().with_attr("type", "unavailable"))
        .await
        .expect("unavailable");
    expect(&mut alice, "bob's unavailable presence", |e| {
        presence_from(e, "bob@localhost/phone", Some("unavailable"))
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn adding_and_removing_a_member_is_pushed_to_online_members() {
    let s = server(&["alice", "bob"]).await;
    staff(&s, &["alice"]).await;
    let mut alice = available(&s, "alice", "desk").await;
    let mut bob = available(&s, "bob", "phone").await;
    let v0 = roster_get(&mut alice)
        .await
        .attr("ver")
        .expect("ver")
        .to_owned();
    roster_get(&mut bob).await;

    op(
        &s,
        "group.add",
        json!({"name": "staff", "members": ["bob@localhost"]}),
    )
    .await;
    let push = expect_push(&mut alice, &bare("bob")).await;
    let pushed = pushed_item(&push);
    assert_eq!(sub_state(&pushed), ("both".into(), None, false));
    assert_eq!(groups(&pushed), ["Staff"]);
    let v1 = push
        .get_child("query", NS_ROSTER)
        .and_then(|q| q.attr("ver"))
        .expect("ver")
        .to_owned();
    assert_ne!(
        v0, v1,
        "RFC 6121 §2.6: the group change is a new roster version"
    );
    let push = expect_push(&mut bob, &bare("alice")).await;
    assert_eq!(groups(&pushed_item(&push)), ["Staff"]);
    // Presence starts flowing both ways at once.
    expect(&mut alice, "bob's presence", |e| {
        presence_from(e, "bob@localhost/phone", None)
    })
    .await;
    expect(&mut bob, "alice's presence", |e| {
        presence_from(e, "alice@localhost/desk", None)
    })
    .await;
    let q = roster_get(&mut alice).await;
    assert_eq!(q.attr("ver"), Some(v1.as_str()));

    op(
        &s,
        "group.remove-member",
        json!({"name": "staff", "members": ["bob@localhost"]}),
    )
    .await;
    let push = expect_push(&mut alice, &bare("bob")).await;
    assert_eq!(pushed_item(&push).attr("subscription"), Some("remove"));
    let push = expect_push(&mut bob, &bare("alice")).await;
    assert_eq!(pushed_item(&push).attr("subscription"), Some("remove"));
    expect(&mut alice, "bob gone", |e| {
        presence_from(e, "bob@localhost/phone", Some("unavailable"))
    })
    .await;
    expect(&mut bob, "alice gone", |e| {
        presence_from(e, "alice@localhost/desk", Some("unavailable"))
    })
    .await;
    let q = roster_get(&mut alice).await;
    assert_eq!(q.children().count(), 0, "{}", q.to_xml());
    assert_eq!(
        q.attr("ver"),
        Some(v0.as_str()),
        "back to the stored version"
    );
    s.stop().await;
}

#[tokio::test]
async fn own_items_merge_with_shared_ones_and_shared_items_stay() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "desk").await;
    let r = roster_set(
        &mut alice,
        roster_item(&bare("bob"), Some("Bobby"), &["Friends"]),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    staff(&s, &["alice", "bob"]).await;

    let q = roster_get(&mut alice).await;
    let b = item(&q, &bare("bob")).expect("bob");
    assert_eq!(b.attr("name"), Some("Bobby"));
    assert_eq!(groups(b), ["Friends", "Staff"]);
    assert_eq!(sub_state(b), ("both".into(), None, false));
    assert_eq!(q.children().count(), 1, "one item, merged: {}", q.to_xml());

    // The client removes it: its own part goes, the shared item stays and is pushed again.
    let (before, r) = iq_collect(
        &mut alice,
        "set",
        None,
        roster_query().with_child(
            Element::new("item", NS_ROSTER)
                .with_attr("jid", bare("bob"))
                .with_attr("subscription", "remove"),
        ),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let push = match before.iter().find(|e| is_push_for(e, &bare("bob"))) {
        Some(p) => {
            ack(&mut alice, p).await;
            p.clone()
        }
        None => expect_push(&mut alice, &bare("bob")).await,
    };
    let pushed = pushed_item(&push);
    assert_eq!(pushed.attr("subscription"), Some("both"));
    assert_eq!(pushed.attr("name"), None);
    assert_eq!(groups(&pushed), ["Staff"]);
    let q = roster_get(&mut alice).await;
    assert_eq!(
        item(&q, &bare("bob")).map(groups),
        Some(vec!["Staff".to_string()])
    );
    s.stop().await;
}
