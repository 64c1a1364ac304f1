//! RFC 6121 §2: roster get, set and remove, pushes to interested resources, versioning (§2.6),
//! the checks on a roster set, and the roster size limit.

mod common;

use causerie_core::flags;
use causerie_roster::RosterConfig;
use causerie_roster::state::SubState;
use common::*;

fn st(name: &str) -> SubState {
    SubState::from_rfc_name(name).expect("state name")
}

fn set_item(id: &str, item: &str) -> String {
    format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>")
}

#[tokio::test]
async fn get_returns_the_roster_with_its_version() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.connect("juliet@example.com/balcony");
    assert!(!j.handle.info.flag(flags::ROSTER_REQUESTED));
    env.send(
        &j,
        "<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    let got = j.take();
    let res = iq_result(&got, "g1").expect("result");
    assert_eq!(res.attr("type"), Some("result"));
    assert_eq!(res.attr("to"), Some("juliet@example.com/balcony"));
    let q = res.get_child("query", ROSTER).expect("query");
    assert_eq!(q.attr("ver"), Some("0"));
    assert_eq!(q.children().count(), 0);
    assert!(
        j.handle.info.flag(flags::ROSTER_REQUESTED),
        "§2.1.6: the session is now interested"
    );
}

#[tokio::test]
async fn set_pushes_to_interested_resources_only() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut a = env.connect("juliet@example.com/balcony");
    let mut b = env.connect("juliet@example.com/chamber");
    env.send(
        &a,
        "<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    a.take();

    env.send(
        &b,
        &set_item("s1", "<item jid='nurse@example.com' name='Nurse'><group>Servants</group><group>Friends</group></item>"),
    )
    .await;
    let got_b = b.take();
    assert_eq!(
        iq_result(&got_b, "s1").and_then(|e| e.attr("type")),
        Some("result")
    );
    assert!(
        pushes(&got_b).is_empty(),
        "b never asked for the roster: {got_b:?}"
    );
    let got_a = a.take();
    let p = pushes(&got_a);
    assert_eq!(p.len(), 1, "{got_a:?}");
    assert_eq!(p[0].attr("jid"), Some("nurse@example.com"));
    assert_eq!(p[0].attr("name"), Some("Nurse"));
    assert_eq!(p[0].attr("subscription"), Some("none"));
    let groups: Vec<String> = p[0].children().map(|g| g.text()).collect();
    assert_eq!(groups, ["Servants", "Friends"]);
    let push_iq = got_a.iter().find(|e| e.name() == "iq").expect("push");
    assert_eq!(push_iq.attr("to"), Some("juliet@example.com/balcony"));
    assert!(
        push_iq.attr("from").is_none(),
        "§2.1.6: a push comes from the account itself"
    );

    // b asks, gets the item, and is interested from then on.
    env.send(
        &b,
        "<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    let got_b = b.take();
    let q = iq_result(&got_b, "g2")
        .and_then(|r| r.get_child("query", ROSTER))
        .expect("query");
    assert_eq!(q.children().count(), 1);
    // An update with other groups replaces name and groups; both resources get the push.
    env.send(
        &a,
        &set_item(
            "s2",
            "<item jid='nurse@example.com'><group>Household</group></item>",
        ),
    )
    .await;
    for c in [&mut a, &mut b] {
        let p = pushes(&c.take());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].attr("name"), None);
        assert_eq!(
            p[0].children().map(|g| g.text()).collect::<Vec<_>>(),
            ["Household"]
        );
    }
    let item = env
        .item("juliet", "nurse@example.com")
        .await
        .expect("stored");
    assert_eq!(item.groups, ["Household"]);
    assert_eq!(item.name, None);
}

#[tokio::test]
async fn versioning_answers_empty_when_current() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(&j, &set_item("s1", "<item jid='nurse@example.com'/>"))
        .await;
    env.send(
        &j,
        "<iq type='get' id='g1'><query xmlns='jabber:iq:roster' ver=''/></iq>",
    )
    .await;
    let got = j.take();
    let ver = iq_result(&got, "g1")
        .and_then(|r| r.get_child("query", ROSTER))
        .and_then(|q| q.attr("ver"))
        .expect("ver")
        .to_owned();

    // §2.6.3: the client's copy is current: an empty result.
    env.send(
        &j,
        &format!("<iq type='get' id='g2'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>"),
    )
    .await;
    let got = j.take();
    let res = iq_result(&got, "g2").expect("result");
    assert_eq!(res.attr("type"), Some("result"));
    assert_eq!(res.children().count(), 0);

    // A change: the push carries the new version, and a get with the old one gets everything.
    env.send(&j, &set_item("s2", "<item jid='romeo@example.net'/>"))
        .await;
    let got = j.take();
    let new_ver = push_version(&got).expect("push version");
    assert_ne!(new_ver, ver);
    env.send(
        &j,
        &format!("<iq type='get' id='g3'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>"),
    )
    .await;
    let got = j.take();
    let q = iq_result(&got, "g3")
        .and_then(|r| r.get_child("query", ROSTER))
        .expect("full roster");
    assert_eq!(q.attr("ver"), Some(new_ver.as_str()));
    assert_eq!(q.children().count(), 2);
}

#[tokio::test]
async fn remove_ends_the_subscriptions() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.set_state("juliet", "romeo@remote.example", st("Both"), false)
        .await;
    env.set_state(
        "juliet",
        "mercutio@remote.example",
        st("None + Pending Out"),
        false,
    )
    .await;
    env.set_state(
        "juliet",
        "benvolio@remote.example",
        st("None + Pending In"),
        false,
    )
    .await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.remote_take();

    env.send(
        &j,
        &set_item(
            "r1",
            "<item jid='romeo@remote.example' subscription='remove'/>",
        ),
    )
    .await;
    let got = j.take();
    assert_eq!(
        iq_result(&got, "r1").and_then(|e| e.attr("type")),
        Some("result")
    );
    let p = pushes(&got);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].attr("subscription"), Some("remove"));
    assert_eq!(env.item("juliet", "romeo@remote.example").await, None);
    // §2.5.2: unsubscribe and unsubscribed, and the contact learns the account is unavailable.
    let routed = env.remote_take();
    let kinds: Vec<Option<&str>> = routed.iter().map(|e| e.attr("type")).collect();
    assert_eq!(
        kinds,
        [
            Some("unsubscribe"),
            Some("unavailable"),
            Some("unsubscribed")
        ],
        "{routed:?}"
    );
    assert!(
        routed
            .iter()
            .all(|e| e.attr("to") == Some("romeo@remote.example"))
    );

    env.send(
        &j,
        &set_item(
            "r2",
            "<item jid='mercutio@remote.example' subscription='remove'/>",
        ),
    )
    .await;
    let routed = env.remote_take();
    assert_eq!(
        routed.iter().map(|e| e.attr("type")).collect::<Vec<_>>(),
        [Some("unsubscribe")]
    );

    env.send(
        &j,
        &set_item(
            "r3",
            "<item jid='benvolio@remote.example' subscription='remove'/>",
        ),
    )
    .await;
    let routed = env.remote_take();
    assert_eq!(
        routed.iter().map(|e| e.attr("type")).collect::<Vec<_>>(),
        [Some("unsubscribed")]
    );
    assert!(env.pending("juliet").await.is_empty());

    // §2.5.3: removing what is not there.
    j.take();
    env.send(
        &j,
        &set_item(
            "r4",
            "<item jid='tybalt@remote.example' subscription='remove'/>",
        ),
    )
    .await;
    let got = j.take();
    let err = iq_result(&got, "r4").expect("answer");
    assert_eq!(err.attr("type"), Some("error"));
    assert_eq!(error_condition(err).as_deref(), Some("item-not-found"));
    assert!(env.remote_take().is_empty());
}

#[tokio::test]
async fn malformed_sets_are_refused() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(
        &j,
        "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    j.take();
    let long = "x".repeat(2000);
    let cases: Vec<(String, &str)> = vec![
        (
            "<item jid='a@example.net'/><item jid='b@example.net'/>".into(),
            "bad-request",
        ),
        (
            "<item jid='a@example.net'><group>G</group><group>G</group></item>".into(),
            "bad-request",
        ),
        (
            "<item jid='a@example.net'><group></group></item>".into(),
            "not-acceptable",
        ),
        (
            "<item jid='a@example.net' subscription='bogus'/>".into(),
            "bad-request",
        ),
        ("<item jid='a@@example.net'/>".into(), "bad-request"),
        ("<item jid='a@example.net/res'/>".into(), "bad-request"),
        ("<item/>".into(), "bad-request"),
        ("<item jid='juliet@example.com'/>".into(), "bad-request"),
        (
            format!("<item jid='a@example.net' name='{long}'/>"),
            "not-acceptable",
        ),
        (
            format!("<item jid='a@example.net'><group>{long}</group></item>"),
            "not-acceptable",
        ),
    ];
    for (i, (item, want)) in cases.iter().enumerate() {
        let id = format!("m{i}");
        env.send(&j, &set_item(&id, item)).await;
        let got = j.take();
        let answer = iq_result(&got, &id).unwrap_or_else(|| panic!("no answer to {item}"));
        assert_eq!(answer.attr("type"), Some("error"), "{item}");
        assert_eq!(error_condition(answer).as_deref(), Some(*want), "{item}");
        assert!(pushes(&got).is_empty(), "{item}");
    }
    assert_eq!(
        env.storage
            .roster
            .count_items("juliet", "example.com")
            .await
            .expect("store"),
        0
    );
}

#[tokio::test]
async fn the_roster_has_a_size_limit() {
    let env = Env::with_config(RosterConfig {
        max_items: 2,
        ..RosterConfig::default()
    })
    .await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.send(&j, &set_item("a", "<item jid='a@example.net'/>"))
        .await;
    env.send(&j, &set_item("b", "<item jid='b@example.net'/>"))
        .await;
    j.take();
    env.send(&j, &set_item("c", "<item jid='c@example.net'/>"))
        .await;
    let got = j.take();
    let err = iq_result(&got, "c").expect("answer");
    assert_eq!(err.attr("type"), Some("error"));
    assert_eq!(error_condition(err).as_deref(), Some("resource-constraint"));
    assert!(pushes(&got).is_empty());
    // Changing an item that is there still works.
    env.send(&j, &set_item("a2", "<item jid='a@example.net' name='A'/>"))
        .await;
    assert_eq!(
        iq_result(&j.take(), "a2").and_then(|e| e.attr("type")),
        Some("result")
    );
    // Subscribing or pre-approving would add an item too.
    env.send(&j, "<presence type='subscribe' to='c@example.net'/>")
        .await;
    env.send(&j, "<presence type='subscribed' to='d@example.net'/>")
        .await;
    let got = j.take();
    let errors: Vec<_> = got
        .iter()
        .filter(|e| is_presence(e, Some("error")))
        .collect();
    assert_eq!(errors.len(), 2, "{got:?}");
    assert!(
        errors
            .iter()
            .all(|e| error_condition(e).as_deref() == Some("resource-constraint"))
    );
    assert!(
        env.remote_take().is_empty(),
        "nothing routed for a refused subscription"
    );
    assert_eq!(
        env.storage
            .roster
            .count_items("juliet", "example.com")
            .await
            .expect("store"),
        2
    );
}

#[tokio::test]
async fn another_accounts_roster_is_forbidden() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(
        &j,
        "<iq type='get' id='x' to='romeo@example.com'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    let got = j.take();
    let err = iq_result(&got, "x").expect("answer");
    assert_eq!(error_condition(err).as_deref(), Some("forbidden"));
    env.remote_sends("remote.example", "<iq type='set' id='y' from='eve@remote.example/x' to='juliet@example.com'><query xmlns='jabber:iq:roster'><item jid='eve@remote.example'/></query></iq>").await;
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1);
    assert_eq!(error_condition(&routed[0]).as_deref(), Some("forbidden"));
    assert_eq!(env.item("juliet", "eve@remote.example").await, None);
}

#[tokio::test]
async fn versioning_and_pre_approval_are_announced() {
    let env = Env::new().await;
    let features: Vec<(String, String)> = env
        .core
        .stream_features()
        .iter()
        .map(|f| (f.name().to_owned(), f.ns().to_owned()))
        .collect();
    assert!(
        features.contains(&("ver".into(), "urn:xmpp:features:rosterver".into())),
        "{features:?}"
    );
    assert!(
        features.contains(&("sub".into(), "urn:xmpp:features:pre-approval".into())),
        "{features:?}"
    );
}
