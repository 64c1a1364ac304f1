//! RFC 6121 §4: initial presence, probes, broadcasts, unavailable presence, directed presence
//! and its cleanup, presence to a full JID, priority, and a contact on another server.

mod common;

use std::sync::atomic::Ordering;

use causerie_roster::RosterConfig;
use causerie_roster::state::SubState;
use common::*;

fn st(name: &str) -> SubState {
    SubState::from_rfc_name(name).expect("state name")
}

/// Puts the two local accounts in matching states: `a_sees_b` is b's state in a's roster.
async fn pair(env: &Env, a: &str, b: &str, a_sees_b: &str) {
    let s = st(a_sees_b);
    let mirror = match a_sees_b {
        "Both" => "Both",
        "To" => "From",
        "From" => "To",
        _ => "None",
    };
    env.set_state(a, &format!("{b}@example.com"), s, false)
        .await;
    env.set_state(b, &format!("{a}@example.com"), st(mirror), false)
        .await;
}

/// juliet: Both with romeo, From with nurse (nurse gets juliet's presence), To with benvolio
/// (juliet gets benvolio's presence). All three contacts are online.
async fn verona() -> (Env, Client, Client, Client) {
    let env = Env::new().await;
    for u in ["juliet", "romeo", "nurse", "benvolio", "mercutio"] {
        env.user(u).await;
    }
    pair(&env, "juliet", "romeo", "Both").await;
    pair(&env, "juliet", "nurse", "From").await;
    pair(&env, "juliet", "benvolio", "To").await;
    let r = env.online("romeo@example.com/garden").await;
    let n = env.online("nurse@example.com/kitchen").await;
    let b = env.online("benvolio@example.com/street").await;
    (env, r, n, b)
}

#[tokio::test]
async fn initial_presence_is_broadcast_and_contacts_are_probed() {
    let (env, mut r, mut n, mut b) = verona().await;
    let mut chamber = env.online("juliet@example.com/chamber").await;
    let before = env.available_events.count.load(Ordering::SeqCst);
    r.take();
    n.take();
    b.take();

    let mut j = env.connect("juliet@example.com/balcony");
    env.send(
        &j,
        "<presence><show>chat</show><status>here</status></presence>",
    )
    .await;
    assert!(j.handle.info.is_available());

    // §4.2.2: to the contacts subscribed to juliet, and to all of juliet's resources, the sender too.
    for (who, c) in [("romeo", &mut r), ("nurse", &mut n)] {
        let got = c.take();
        let p = presences(&got, None, "juliet@example.com/balcony");
        assert_eq!(p.len(), 1, "{who}: {got:?}");
        assert!(
            p[0].children()
                .any(|c| c.name() == "status" && c.text() == "here")
        );
    }
    assert!(
        presences(&b.take(), None, "juliet@example.com/balcony").is_empty(),
        "benvolio is not subscribed"
    );
    assert_eq!(
        presences(&chamber.take(), None, "juliet@example.com/balcony").len(),
        1
    );
    let got = j.take();
    assert_eq!(
        presences(&got, None, "juliet@example.com/balcony").len(),
        1,
        "the sender gets its own presence"
    );
    // §4.3: the contacts juliet is subscribed to answer with their current presence; the new
    // resource also learns about juliet's other resource.
    assert_eq!(
        presences(&got, None, "romeo@example.com/garden").len(),
        1,
        "{got:?}"
    );
    assert_eq!(
        presences(&got, None, "benvolio@example.com/street").len(),
        1,
        "{got:?}"
    );
    assert!(
        presences(&got, None, "nurse@example.com/kitchen").is_empty(),
        "juliet is not subscribed to nurse"
    );
    assert_eq!(
        presences(&got, None, "juliet@example.com/chamber").len(),
        1,
        "{got:?}"
    );
    assert!(env.remote_take().is_empty());
    // The offline-message module learns that the session is available.
    assert_eq!(
        env.available_events.count.load(Ordering::SeqCst),
        before + 1
    );

    // §4.4: later presence goes to the same people, without new probes.
    env.send(&j, "<presence><show>away</show></presence>").await;
    assert_eq!(
        presences(&r.take(), None, "juliet@example.com/balcony").len(),
        1
    );
    assert_eq!(
        presences(&n.take(), None, "juliet@example.com/balcony").len(),
        1
    );
    assert!(b.take().is_empty());
    let got = j.take();
    assert_eq!(got.len(), 1, "only its own presence back: {got:?}");
    assert_eq!(
        env.available_events.count.load(Ordering::SeqCst),
        before + 1
    );
}

#[tokio::test]
async fn a_local_contact_without_sessions_is_probed_quietly() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    pair(&env, "juliet", "romeo", "Both").await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(&j, "<presence/>").await;
    let got = j.take();
    assert_eq!(got.len(), 1, "own presence only: {got:?}");
}

#[tokio::test]
async fn unavailable_is_broadcast_and_ends_directed_presence() {
    let (env, mut r, mut n, _b) = verona().await;
    let mut m = env.online("mercutio@example.com/square").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    r.take();
    n.take();
    // Directed presence to someone not subscribed to juliet (§4.6.2), and to a subscriber.
    env.send(
        &j,
        "<presence to='mercutio@example.com'><status>psst</status></presence>",
    )
    .await;
    env.send(
        &j,
        "<presence to='romeo@example.com'><status>psst</status></presence>",
    )
    .await;
    let got = m.take();
    let p = presences(&got, None, "juliet@example.com/balcony");
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("to"), Some("mercutio@example.com"));
    assert_eq!(
        presences(&r.take(), None, "juliet@example.com/balcony").len(),
        1
    );

    env.send(
        &j,
        "<presence type='unavailable'><status>bye</status></presence>",
    )
    .await;
    assert!(!j.handle.info.is_available());
    // §4.5.2: subscribers and the sender; §4.6.3: the directed-presence target too.
    let got = r.take();
    assert_eq!(
        presences(&got, Some("unavailable"), "juliet@example.com/balcony").len(),
        1,
        "romeo once: {got:?}"
    );
    assert_eq!(
        presences(&n.take(), Some("unavailable"), "juliet@example.com/balcony").len(),
        1
    );
    assert_eq!(
        presences(&m.take(), Some("unavailable"), "juliet@example.com/balcony").len(),
        1
    );
    assert_eq!(
        presences(&j.take(), Some("unavailable"), "juliet@example.com/balcony").len(),
        1
    );

    // The session is unavailable now: broadcasts skip it, and ending it notifies nobody again.
    env.send(&r, "<presence><show>dnd</show></presence>").await;
    assert!(j.take().is_empty());
    r.take();
    env.end(&j).await;
    assert!(r.take().is_empty());
    assert!(m.take().is_empty());
}

#[tokio::test]
async fn abrupt_disconnect_notifies_subscribers_and_directed_targets() {
    let (env, mut r, mut n, mut b) = verona().await;
    let mut m = env.online("mercutio@example.com/square").await;
    let mut chamber = env.online("juliet@example.com/chamber").await;
    let j = env.online("juliet@example.com/balcony").await;
    env.send(&j, "<presence to='mercutio@example.com/square'/>")
        .await;
    env.send(&j, "<presence to='room@conference.remote.example/juliet'/>")
        .await;
    for c in [&mut r, &mut n, &mut b, &mut m, &mut chamber] {
        c.take();
    }
    env.remote_take();

    env.end(&j).await;
    assert_eq!(
        presences(&r.take(), Some("unavailable"), "juliet@example.com/balcony").len(),
        1
    );
    assert_eq!(
        presences(&n.take(), Some("unavailable"), "juliet@example.com/balcony").len(),
        1
    );
    assert!(b.take().is_empty());
    let got = m.take();
    let un = presences(&got, Some("unavailable"), "juliet@example.com/balcony");
    assert_eq!(un.len(), 1, "{got:?}");
    assert_eq!(un[0].attr("to"), Some("mercutio@example.com/square"));
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert!(is_presence(&routed[0], Some("unavailable")));
    assert_eq!(
        routed[0].attr("to"),
        Some("room@conference.remote.example/juliet")
    );
    // The core tells juliet's other resource itself; the module adds nothing there.
    assert_eq!(
        presences(
            &chamber.take(),
            Some("unavailable"),
            "juliet@example.com/balcony"
        )
        .len(),
        1
    );

    // A session that never sent presence leaves without a word to the contacts.
    let quiet = env.connect("juliet@example.com/attic");
    env.end(&quiet).await;
    assert!(r.take().is_empty());
    assert!(n.take().is_empty());
}

#[tokio::test]
async fn directed_presence_is_bounded_per_session() {
    let env = Env::with_config(RosterConfig {
        max_directed_per_session: 2,
        ..RosterConfig::default()
    })
    .await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.send(&j, "<presence to='a@remote.example'/>").await;
    env.send(&j, "<presence to='b@remote.example'/>").await;
    env.send(
        &j,
        "<presence to='a@remote.example'><show>away</show></presence>",
    )
    .await;
    assert!(j.take().is_empty());
    env.send(&j, "<presence to='c@remote.example'/>").await;
    let got = j.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(is_presence(&got[0], Some("error")));
    assert_eq!(
        error_condition(&got[0]).as_deref(),
        Some("resource-constraint")
    );
    // Directed unavailable frees a place.
    env.send(&j, "<presence type='unavailable' to='a@remote.example'/>")
        .await;
    env.send(&j, "<presence to='c@remote.example'/>").await;
    assert!(j.take().is_empty());
    let routed: Vec<_> = env
        .remote_take()
        .iter()
        .map(|e| {
            (
                e.attr("to").map(str::to_owned),
                e.attr("type").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        routed,
        [
            (Some("a@remote.example".into()), None),
            (Some("b@remote.example".into()), None),
            (Some("a@remote.example".into()), None),
            (Some("a@remote.example".into()), Some("unavailable".into())),
            (Some("c@remote.example".into()), None),
        ]
    );
}

#[tokio::test]
async fn presence_to_a_full_jid_reaches_that_session_only() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    let mut garden = env.online("romeo@example.com/garden").await;
    let mut orchard = env.online("romeo@example.com/orchard").await;
    garden.take();
    let j = env.online("juliet@example.com/balcony").await;

    env.send(
        &j,
        "<presence to='romeo@example.com/orchard'><status>only you</status></presence>",
    )
    .await;
    assert!(garden.take().is_empty());
    assert_eq!(
        presences(&orchard.take(), None, "juliet@example.com/balcony").len(),
        1
    );
    // To the bare JID: every available resource (§4.6.2).
    env.send(&j, "<presence to='romeo@example.com'/>").await;
    assert_eq!(
        presences(&garden.take(), None, "juliet@example.com/balcony").len(),
        1
    );
    assert_eq!(
        presences(&orchard.take(), None, "juliet@example.com/balcony").len(),
        1
    );
    // To a resource that is not there: dropped without an error (RFC 6121 §8.5.3.2.1).
    let mut j = j;
    env.send(&j, "<presence to='romeo@example.com/nowhere'/>")
        .await;
    assert!(j.take().is_empty());
    assert!(garden.take().is_empty());
    assert!(orchard.take().is_empty());
}

#[tokio::test]
async fn priority_is_recorded_and_used_for_messages() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    let mut garden = env.connect("romeo@example.com/garden");
    let mut orchard = env.connect("romeo@example.com/orchard");
    env.send(&garden, "<presence><priority>5</priority></presence>")
        .await;
    env.send(&orchard, "<presence><priority>1</priority></presence>")
        .await;
    assert_eq!(garden.handle.info.priority(), 5);
    assert_eq!(orchard.handle.info.priority(), 1);
    garden.take();
    orchard.take();
    let j = env.online("juliet@example.com/balcony").await;
    env.send(
        &j,
        "<message type='chat' to='romeo@example.com'><body>hi</body></message>",
    )
    .await;
    assert_eq!(
        garden
            .take()
            .iter()
            .filter(|e| e.name() == "message")
            .count(),
        1
    );
    assert!(orchard.take().is_empty());
    // A later presence changes it; a negative one takes the session out of bare-JID delivery.
    env.send(&orchard, "<presence><priority>10</priority></presence>")
        .await;
    env.send(&garden, "<presence><priority>-1</priority></presence>")
        .await;
    assert_eq!(garden.handle.info.priority(), -1);
    garden.take();
    orchard.take();
    env.send(
        &j,
        "<message type='chat' to='romeo@example.com'><body>again</body></message>",
    )
    .await;
    assert!(garden.take().is_empty());
    assert_eq!(
        orchard
            .take()
            .iter()
            .filter(|e| e.name() == "message")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_contact_on_another_server() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.set_state("juliet", "romeo@remote.example", st("Both"), false)
        .await;
    env.set_state("juliet", "tybalt@remote.example", st("From"), false)
        .await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(
        &j,
        "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    env.send(&j, "<presence><status>hi</status></presence>")
        .await;
    j.take();

    // §4.2.2 and §4.3.1: the broadcast and a probe leave for the other server.
    let routed = env.remote_take();
    let probes: Vec<_> = routed
        .iter()
        .filter(|e| is_presence(e, Some("probe")))
        .collect();
    assert_eq!(probes.len(), 1, "{routed:?}");
    assert_eq!(probes[0].attr("from"), Some("juliet@example.com"));
    assert_eq!(probes[0].attr("to"), Some("romeo@remote.example"));
    let mut to: Vec<&str> = presences(&routed, None, "juliet@example.com/balcony")
        .iter()
        .filter_map(|e| e.attr("to"))
        .collect();
    to.sort_unstable();
    assert_eq!(to, ["romeo@remote.example", "tybalt@remote.example"]);

    // The remote contact's presence arrives for juliet.
    env.remote_sends("remote.example", "<presence from='romeo@remote.example/phone' to='juliet@example.com'><show>away</show></presence>").await;
    let got = j.take();
    assert_eq!(
        presences(&got, None, "romeo@remote.example/phone").len(),
        1,
        "{got:?}"
    );

    // §4.3.2: a probe from a subscriber gets the current presence of each available resource.
    env.remote_sends(
        "remote.example",
        "<presence type='probe' from='romeo@remote.example' to='juliet@example.com'/>",
    )
    .await;
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert!(is_presence(&routed[0], None));
    assert_eq!(routed[0].attr("from"), Some("juliet@example.com/balcony"));
    assert_eq!(routed[0].attr("to"), Some("romeo@remote.example"));
    assert!(
        routed[0]
            .children()
            .any(|c| c.name() == "status" && c.text() == "hi")
    );
    // From someone not subscribed: "unsubscribed".
    env.remote_sends(
        "remote.example",
        "<presence type='probe' from='eve@remote.example' to='juliet@example.com'/>",
    )
    .await;
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1);
    assert!(is_presence(&routed[0], Some("unsubscribed")));
    assert_eq!(routed[0].attr("to"), Some("eve@remote.example"));
    // When juliet has no available resource: "unavailable".
    env.send(&j, "<presence type='unavailable'/>").await;
    env.remote_take();
    env.remote_sends(
        "remote.example",
        "<presence type='probe' from='romeo@remote.example' to='juliet@example.com'/>",
    )
    .await;
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1);
    assert!(is_presence(&routed[0], Some("unavailable")));
    assert_eq!(routed[0].attr("from"), Some("juliet@example.com"));
}

#[tokio::test]
async fn becoming_available_again_probes_again() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.set_state("juliet", "romeo@remote.example", st("To"), false)
        .await;
    let j = env.online("juliet@example.com/balcony").await;
    assert_eq!(
        env.remote_take()
            .iter()
            .filter(|e| is_presence(e, Some("probe")))
            .count(),
        1
    );
    let events = env.available_events.count.load(Ordering::SeqCst);
    env.send(&j, "<presence type='unavailable'/>").await;
    env.send(&j, "<presence/>").await;
    assert_eq!(
        env.remote_take()
            .iter()
            .filter(|e| is_presence(e, Some("probe")))
            .count(),
        1
    );
    assert_eq!(
        env.available_events.count.load(Ordering::SeqCst),
        events + 1
    );
}

#[tokio::test]
async fn presence_to_the_own_bare_jid_is_a_broadcast() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.set_state("juliet", "romeo@remote.example", st("From"), false)
        .await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(&j, "<presence to='juliet@example.com'/>").await;
    assert!(j.handle.info.is_available());
    let routed = env.remote_take();
    assert_eq!(
        presences(&routed, None, "juliet@example.com/balcony").len(),
        1,
        "{routed:?}"
    );
    assert_eq!(
        presences(&j.take(), None, "juliet@example.com/balcony").len(),
        1
    );
}

#[tokio::test]
async fn presence_errors_are_delivered_and_never_answered() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.remote_sends(
        "remote.example",
        "<presence type='error' from='romeo@remote.example' to='juliet@example.com/balcony'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
    )
    .await;
    assert_eq!(
        presences(&j.take(), Some("error"), "romeo@remote.example").len(),
        1
    );
    assert!(env.remote_take().is_empty());
    env.send(&j, "<presence type='error' to='romeo@remote.example'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>").await;
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1);
    assert!(j.take().is_empty());
    // An error to an account that is not online, or does not exist, is dropped.
    env.remote_sends(
        "remote.example",
        "<presence type='error' from='romeo@remote.example' to='nobody@example.com'/>",
    )
    .await;
    assert!(env.remote_take().is_empty());
}

#[tokio::test]
async fn unknown_presence_types_are_refused() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.connect("juliet@example.com/balcony");
    env.send(&j, "<presence type='bogus'/>").await;
    let got = j.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(error_condition(&got[0]).as_deref(), Some("bad-request"));
    assert!(!j.handle.info.is_available());
}

#[tokio::test]
async fn a_probe_from_a_local_client_is_answered() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    env.user("nurse").await;
    pair(&env, "juliet", "romeo", "Both").await;
    let _r = env.online("romeo@example.com/garden").await;
    let _n = env.online("nurse@example.com/kitchen").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.send(&j, "<presence type='probe' to='romeo@example.com'/>")
        .await;
    assert_eq!(
        presences(&j.take(), None, "romeo@example.com/garden").len(),
        1
    );
    // Not subscribed to nurse: "unsubscribed", and no presence.
    env.send(&j, "<presence type='probe' to='nurse@example.com'/>")
        .await;
    let got = j.take();
    assert!(presences(&got, None, "nurse@example.com/kitchen").is_empty());
    assert!(env.remote_take().is_empty());
}

#[tokio::test]
async fn last_words_before_a_disconnect_are_kept() {
    let (env, mut r, _n, _b) = verona().await;
    let j = env.online("juliet@example.com/balcony").await;
    r.take();
    // The client says goodbye and closes at once: the session ends before the module gets to
    // the stanza (the test runtime runs the workers only when the test waits).
    let mut bye = parse("<presence type='unavailable'><status>bye</status></presence>");
    bye.set_attr("from", j.jid());
    env.core
        .process(&causerie_core::Origin::Session(j.handle.clone()), bye)
        .await
        .expect("processed");
    env.core.session_ended(&j.handle);
    env.settle().await;
    let got = r.take();
    let un = presences(&got, Some("unavailable"), "juliet@example.com/balcony");
    assert_eq!(un.len(), 1, "exactly one unavailable: {got:?}");
    assert!(
        un[0]
            .children()
            .any(|c| c.name() == "status" && c.text() == "bye")
    );

    // Available presence from a session that is already gone does not bring it back.
    let k = env.connect("juliet@example.com/attic");
    let mut hello = parse("<presence/>");
    hello.set_attr("from", k.jid());
    env.core
        .process(&causerie_core::Origin::Session(k.handle.clone()), hello)
        .await
        .expect("processed");
    env.core.session_ended(&k.handle);
    env.settle().await;
    assert!(r.take().is_empty());
    assert!(!k.handle.info.is_available());
}
