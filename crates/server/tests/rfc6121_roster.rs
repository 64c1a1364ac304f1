//! RFC 6121 §2 over the wire: roster get, set, update and remove, pushes to interested resources
//! (§2.1.6), versioning (§2.6), error cases (§2.1.5, §2.3.3, §2.5.3), the configured roster size
//! limit, and a roster that survives a server restart.

mod im;

use causerie_xml::Element;
use im::*;

/// A push that arrived either before the answer to the set (collected) or after it.
async fn push_among(
    c: &mut causerie_testkit::client::Client,
    before: Vec<Element>,
    jid: &str,
) -> Element {
    match before.into_iter().find(|e| is_push_for(e, jid)) {
        Some(p) => {
            ack(c, &p).await;
            p
        }
        None => expect_push(c, jid).await,
    }
}

fn push_ver(push: &Element) -> String {
    push.get_child("query", NS_ROSTER)
        .and_then(|q| q.attr("ver"))
        .unwrap_or_else(|| panic!("push without ver: {}", push.to_xml()))
        .to_owned()
}

#[tokio::test]
async fn set_update_and_remove_are_pushed_to_every_interested_resource() {
    let s = server(&["alice", "bob"]).await;
    let mut one = login(&s, "alice", "one").await;
    let mut two = login(&s, "alice", "two").await;
    // Never asks for the roster, so it is not an interested resource (§2.1.6).
    let mut three = login(&s, "alice", "three").await;

    let q = roster_get(&mut one).await;
    assert_eq!(q.children().count(), 0, "a new account's roster is empty");
    assert!(
        q.attr("ver").is_some(),
        "§2.6.3: the answer carries a version"
    );
    roster_get(&mut two).await;

    // §2.3: add.
    let bob = bare("bob");
    let (before, r) = iq_collect(
        &mut one,
        "set",
        None,
        roster_query().with_child(roster_item(&bob, Some("Bob"), &["Friends"])),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    assert_eq!(r.children().count(), 0, "§2.3.2: the result is empty");
    let p1 = push_among(&mut one, before, &bob).await;
    let p2 = expect_push(&mut two, &bob).await;
    for (p, c) in [(&p1, &one), (&p2, &two)] {
        assert_eq!(p.attr("to"), Some(c.jid()), "a push names the resource");
        assert!(
            p.attr("from").is_none_or(|f| f == bare("alice")),
            "a push comes from the account itself: {}",
            p.to_xml()
        );
        let i = pushed_item(p);
        assert_eq!(i.attr("name"), Some("Bob"));
        assert_eq!(sub_state(&i), ("none".into(), None, false));
        assert_eq!(groups(&i), vec!["Friends".to_string()]);
    }
    let v1 = push_ver(&p1);
    assert_eq!(v1, push_ver(&p2), "one change, one version");
    let stray = ping_drain(&mut three).await;
    assert!(
        !stray.iter().any(|e| is_push_for(e, &bob)),
        "a resource that never asked for the roster got a push: {}",
        xml_list(&stray)
    );

    // §2.4: update, atomically: the new name and groups replace the old ones.
    let (before, r) = iq_collect(
        &mut two,
        "set",
        None,
        roster_query().with_child(roster_item(&bob, Some("Bobby"), &["Work", "Chess"])),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let p2 = push_among(&mut two, before, &bob).await;
    let p1 = expect_push(&mut one, &bob).await;
    let i = pushed_item(&p1);
    assert_eq!(i.attr("name"), Some("Bobby"));
    let mut g = groups(&i);
    g.sort();
    assert_eq!(g, vec!["Chess".to_string(), "Work".to_string()]);
    let v2 = push_ver(&p1);
    assert_eq!(v2, push_ver(&p2));
    assert_ne!(v1, v2, "§2.6: every change gets a new version");

    let q = roster_get(&mut one).await;
    assert_eq!(
        q.attr("ver"),
        Some(v2.as_str()),
        "the roster is at the last pushed version"
    );
    let i = item(&q, &bob).expect("bob is in the roster");
    assert_eq!(i.attr("name"), Some("Bobby"));
    assert_eq!(q.children().count(), 1);

    // §2.5: remove.
    let (before, r) = iq_collect(
        &mut one,
        "set",
        None,
        roster_query().with_child(
            Element::new("item", NS_ROSTER)
                .with_attr("jid", bob.as_str())
                .with_attr("subscription", "remove"),
        ),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    let p1 = push_among(&mut one, before, &bob).await;
    let p2 = expect_push(&mut two, &bob).await;
    for p in [&p1, &p2] {
        assert_eq!(pushed_item(p).attr("subscription"), Some("remove"));
    }
    let v3 = push_ver(&p1);
    assert!(v3 != v1 && v3 != v2);
    let q = roster_get(&mut two).await;
    assert!(item(&q, &bob).is_none(), "removed: {}", q.to_xml());

    // §2.5.3: removing what is not there.
    let r = roster_set(
        &mut one,
        Element::new("item", NS_ROSTER)
            .with_attr("jid", bob.as_str())
            .with_attr("subscription", "remove"),
    )
    .await;
    assert_eq!(error_condition(&r).as_deref(), Some("item-not-found"));
    s.stop().await;
}

#[tokio::test]
async fn versioning_answers_empty_when_the_client_is_current() {
    let s = server(&["alice"]).await;
    let (mut alice, features) = login_with_features(&s, "alice", "one").await;
    assert!(
        features.has_child("ver", "urn:xmpp:features:rosterver"),
        "§2.6.1: versioning is announced: {}",
        features.to_xml()
    );
    // §2.6.2: an empty ver asks for the whole roster and a version.
    let r = iq_ok(&mut alice, "get", None, roster_query().with_attr("ver", "")).await;
    let v0 = r
        .get_child("query", NS_ROSTER)
        .and_then(|q| q.attr("ver"))
        .expect("a version")
        .to_owned();
    // §2.6.3: nothing changed, so an empty result.
    let r = iq_ok(
        &mut alice,
        "get",
        None,
        roster_query().with_attr("ver", v0.as_str()),
    )
    .await;
    assert_eq!(r.children().count(), 0, "{}", r.to_xml());

    let r = roster_set(&mut alice, roster_item("carol@localhost", None, &[])).await;
    assert_eq!(r.attr("type"), Some("result"));
    // With the old version the client gets the changes, here as the full roster.
    let r = iq_ok(
        &mut alice,
        "get",
        None,
        roster_query().with_attr("ver", v0.as_str()),
    )
    .await;
    let q = r.get_child("query", NS_ROSTER).expect("roster sent again");
    let v1 = q.attr("ver").expect("new version").to_owned();
    assert_ne!(v0, v1);
    assert!(item(q, "carol@localhost").is_some());
    let r = iq_ok(
        &mut alice,
        "get",
        None,
        roster_query().with_attr("ver", v1.as_str()),
    )
    .await;
    assert_eq!(r.children().count(), 0, "{}", r.to_xml());
    s.stop().await;
}

#[tokio::test]
async fn malformed_roster_sets_are_refused_and_change_nothing() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = login(&s, "alice", "one").await;
    let long_name = "n".repeat(5000);
    let cases: Vec<(&str, Element, &str)> = vec![
        (
            "two items (§2.3.3)",
            roster_query()
                .with_child(roster_item("a@localhost", None, &[]))
                .with_child(roster_item("b@localhost", None, &[])),
            "bad-request",
        ),
        ("no item", roster_query(), "bad-request"),
        (
            "an item without jid",
            roster_query().with_child(Element::new("item", NS_ROSTER)),
            "bad-request",
        ),
        (
            "an invalid jid",
            roster_query().with_child(roster_item("bad@@localhost", None, &[])),
            "bad-request",
        ),
        (
            "duplicate groups (§2.3.3)",
            roster_query().with_child(roster_item("a@localhost", None, &["G", "G"])),
            "bad-request",
        ),
        (
            "an unknown subscription value",
            roster_query().with_child(
                roster_item("a@localhost", None, &[]).with_attr("subscription", "maybe"),
            ),
            "bad-request",
        ),
        (
            "the owner's own JID",
            roster_query().with_child(roster_item(&bare("alice"), None, &[])),
            "bad-request",
        ),
        (
            "a name past the server's limit (§2.3.3)",
            roster_query().with_child(roster_item("a@localhost", Some(&long_name), &[])),
            "not-acceptable",
        ),
        (
            "a group name past the server's limit (§2.3.3)",
            roster_query().with_child(roster_item("a@localhost", None, &[&long_name])),
            "not-acceptable",
        ),
    ];
    for (what, query, condition) in cases {
        let r = iq(&mut alice, "set", None, query).await;
        assert_eq!(r.attr("type"), Some("error"), "{what}: {}", r.to_xml());
        assert_eq!(
            error_condition(&r).as_deref(),
            Some(condition),
            "{what}: {}",
            r.to_xml()
        );
        if condition == "bad-request" {
            assert_eq!(error_type(&r).as_deref(), Some("modify"), "{what}");
        }
    }
    // §2.1.5: a roster set addressed to another account is forbidden.
    let r = iq(
        &mut alice,
        "set",
        Some(&bare("bob")),
        roster_query().with_child(roster_item("a@localhost", None, &[])),
    )
    .await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));
    let r = iq(&mut alice, "get", Some(&bare("bob")), roster_query()).await;
    assert_eq!(error_condition(&r).as_deref(), Some("forbidden"));

    let q = roster_get(&mut alice).await;
    assert_eq!(q.children().count(), 0, "nothing was added: {}", q.to_xml());

    // §2.1.2.5: in a roster set, a subscription value other than "remove" is ignored.
    let r = roster_set(
        &mut alice,
        roster_item(&bare("bob"), None, &[]).with_attr("subscription", "both"),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    assert_eq!(
        state_in_roster(&mut alice, &bare("bob")).await,
        Some(("none".into(), None, false)),
        "a client cannot grant itself a subscription"
    );
    s.stop().await;
}

/// RFC 6121 §2.3.3: "The server MUST return a <not-acceptable/> stanza error to the client if
/// the roster set contains any of the following violations: [...] The XML character data of the
/// <group/> element is of zero length".
#[tokio::test]
async fn an_empty_group_name_is_not_acceptable() {
    let s = server(&["alice"]).await;
    let mut alice = login(&s, "alice", "one").await;
    let r = roster_set(&mut alice, roster_item("a@localhost", None, &[""])).await;
    assert_eq!(r.attr("type"), Some("error"), "{}", r.to_xml());
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("not-acceptable"),
        "{}",
        r.to_xml()
    );
    s.stop().await;
}

#[tokio::test]
async fn the_configured_roster_size_is_enforced() {
    let s = server_with(&["alice", "bob"], |c| c.im.max_roster_items = 3).await;
    let mut alice = available(&s, "alice", "one").await;
    for n in 1..=3 {
        let r = roster_set(
            &mut alice,
            roster_item(&format!("c{n}@localhost"), None, &[]),
        )
        .await;
        assert_eq!(r.attr("type"), Some("result"), "item {n}: {}", r.to_xml());
    }
    let r = roster_set(&mut alice, roster_item("c4@localhost", None, &[])).await;
    assert_eq!(
        error_condition(&r).as_deref(),
        Some("resource-constraint"),
        "{}",
        r.to_xml()
    );
    assert!(
        error_text(&r).is_some_and(|t| t.contains('3')),
        "{}",
        r.to_xml()
    );
    // Changing an existing item adds nothing, so it still works.
    let r = roster_set(&mut alice, roster_item("c2@localhost", Some("Two"), &["G"])).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
    // A subscription request, which would add the contact, is refused the same way.
    alice
        .send(&typed_presence("subscribe", &bare("bob")).with_attr("id", "sub-full"))
        .await
        .expect("send");
    let e = expect(&mut alice, "the refusal", |e| {
        e.name() == "presence" && e.attr("type") == Some("error")
    })
    .await;
    assert_eq!(
        error_condition(&e).as_deref(),
        Some("resource-constraint"),
        "{}",
        e.to_xml()
    );
    let q = roster_get(&mut alice).await;
    assert_eq!(q.children().count(), 3, "{}", q.to_xml());
    assert!(item(&q, &bare("bob")).is_none());
    s.stop().await;
}

#[tokio::test]
async fn the_roster_and_its_version_survive_a_restart() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = available(&s, "alice", "one").await;
    let mut bob = available(&s, "bob", "one").await;
    befriend(&mut alice, &mut bob).await;
    let r = roster_set(
        &mut alice,
        roster_item(&bare("bob"), Some("Bob"), &["Friends", "Chess"]),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"));
    let r = roster_set(
        &mut alice,
        roster_item("carol@localhost", Some("Carol"), &[]),
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"));
    let before = roster_get(&mut alice).await;
    let ver = before.attr("ver").expect("ver").to_owned();
    alice.close().await.expect("close");
    bob.close().await.expect("close");

    let s = s.restart().await.expect("restart");
    let mut alice = login(&s, "alice", "again").await;
    let after = roster_get(&mut alice).await;
    assert_eq!(
        after.attr("ver"),
        Some(ver.as_str()),
        "same version after a restart"
    );
    let b = item(&after, &bare("bob")).expect("bob kept");
    assert_eq!(b.attr("name"), Some("Bob"));
    assert_eq!(sub_state(b), ("both".into(), None, false));
    let mut g = groups(b);
    g.sort();
    assert_eq!(g, vec!["Chess".to_string(), "Friends".to_string()]);
    let c = item(&after, "carol@localhost").expect("carol kept");
    assert_eq!(c.attr("name"), Some("Carol"));
    assert_eq!(sub_state(c), ("none".into(), None, false));
    assert_eq!(after.children().count(), 2);
    // A client that cached the roster before the restart is told it is current.
    let r = iq_ok(
        &mut alice,
        "get",
        None,
        roster_query().with_attr("ver", ver.as_str()),
    )
    .await;
    assert_eq!(r.children().count(), 0, "{}", r.to_xml());
    s.stop().await;
}
