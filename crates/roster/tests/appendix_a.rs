//! RFC 6121 Appendix A, row by row, through the whole module: a local account
//! (juliet@example.com, online with one interested and available resource) and a contact on
//! another server (romeo@remote.example), so that what the account's server routes is seen at the
//! remote route and what it delivers is seen at the session.
//!
//! A.2: the account sends the stanza (routed or not, new state, roster push when the item the
//! client sees changes). A.3: the contact sends it (delivered or not, new state, push, and the
//! answers the server gives on the account's behalf).

mod common;

use causerie_roster::state::SubState;
use common::*;

const CONTACT: &str = "romeo@remote.example";
const USER_FULL: &str = "juliet@example.com/balcony";

fn st(name: &str) -> SubState {
    SubState::from_rfc_name(name).expect("state name")
}

fn after_state(before: SubState, after: &str) -> SubState {
    if after == "no state change" {
        before
    } else {
        st(after)
    }
}

/// What a roster item shows the client: subscription and ask.
fn visible(s: SubState) -> (&'static str, bool) {
    (s.subscription.name(), s.pending_out)
}

async fn setup(before: SubState) -> (Env, Client) {
    let env = Env::new().await;
    env.user("juliet").await;
    env.set_state("juliet", CONTACT, before, false).await;
    let j = env.online(USER_FULL).await;
    env.remote_take();
    (env, j)
}

fn check_push(got: &[causerie_xml::Element], before: SubState, after: SubState) {
    let p = pushes(got);
    if visible(before) == visible(after) {
        assert!(p.is_empty(), "no push expected, got {p:?}");
    } else {
        assert_eq!(p.len(), 1, "one push expected: {got:?}");
        assert_eq!(p[0].attr("jid"), Some(CONTACT));
        assert_eq!(p[0].attr("subscription"), Some(after.subscription.name()));
        assert_eq!(p[0].attr("ask"), after.pending_out.then_some("subscribe"));
        assert!(
            push_version(got).is_some(),
            "pushes carry the roster version"
        );
    }
}

async fn outbound_row(kind: &str, before: &str, route: bool, after: &str) {
    let before = st(before);
    let after = after_state(before, after);
    let (env, mut j) = setup(before).await;
    env.send(
        &j,
        &format!("<presence type='{kind}' to='{CONTACT}/somewhere'/>"),
    )
    .await;
    let routed = env.remote_take();
    let got = j.take();

    assert_eq!(
        env.state("juliet", CONTACT).await,
        after,
        "state after {kind}"
    );
    let mine: Vec<_> = routed
        .iter()
        .filter(|e| e.attr("type") == Some(kind))
        .collect();
    if route {
        assert_eq!(mine.len(), 1, "{kind} routed once: {routed:?}");
        // Stamped with the bare JIDs of both parties (§3.1.2 and the like).
        assert_eq!(mine[0].attr("from"), Some("juliet@example.com"));
        assert_eq!(mine[0].attr("to"), Some(CONTACT));
    } else {
        assert!(mine.is_empty(), "{kind} must not be routed: {routed:?}");
    }
    if kind == "subscribed" && !route && !before.has_from() {
        // §3.4: approving before being asked records a pre-approval, which the client sees.
        let p = pushes(&got);
        assert_eq!(p.len(), 1, "{got:?}");
        assert_eq!(p[0].attr("approved"), Some("true"));
        assert_eq!(p[0].attr("subscription"), Some(after.subscription.name()));
        assert!(env.item("juliet", CONTACT).await.expect("item").approved);
    } else {
        check_push(&got, before, after);
    }
    if !after.pending_in {
        assert!(
            env.pending("juliet").await.is_empty(),
            "an answered request is forgotten"
        );
    }
    match kind {
        // §3.1.5: the new subscriber gets the current presence, after the approval.
        "subscribed" if route => {
            let pos_sub = routed
                .iter()
                .position(|e| e.attr("type") == Some("subscribed"))
                .expect("routed");
            let pos_pres = routed
                .iter()
                .position(|e| {
                    is_presence(e, None)
                        && e.attr("from") == Some(USER_FULL)
                        && e.attr("to") == Some(CONTACT)
                })
                .expect("current presence sent to the new subscriber");
            assert!(pos_sub < pos_pres);
        }
        // §3.2.2: a cancelled subscriber first gets unavailable presence.
        "unsubscribed" if before.has_from() => {
            let pos_un = routed
                .iter()
                .position(|e| {
                    is_presence(e, Some("unavailable")) && e.attr("from") == Some(USER_FULL)
                })
                .expect("unavailable sent before the cancellation");
            let pos_cancel = routed
                .iter()
                .position(|e| e.attr("type") == Some("unsubscribed"))
                .expect("routed");
            assert!(pos_un < pos_cancel);
        }
        _ => assert!(
            routed.iter().all(|e| e.attr("type") == Some(kind)),
            "nothing else leaves: {routed:?}"
        ),
    }
}

async fn inbound_row(kind: &str, before: &str, deliver: bool, after: &str) {
    let before = st(before);
    let after = after_state(before, after);
    let (env, mut j) = setup(before).await;
    env.remote_sends(
        "remote.example",
        &format!("<presence type='{kind}' from='{CONTACT}/phone' to='juliet@example.com'/>"),
    )
    .await;
    let routed = env.remote_take();
    let got = j.take();

    assert_eq!(
        env.state("juliet", CONTACT).await,
        after,
        "state after inbound {kind}"
    );
    let delivered = presences(&got, Some(kind), CONTACT);
    assert_eq!(
        delivered.len(),
        usize::from(deliver),
        "delivery of {kind}: {got:?}"
    );
    check_push(&got, before, after);
    if !after.pending_in {
        assert!(
            env.pending("juliet").await.is_empty(),
            "a withdrawn request is forgotten"
        );
    }
    let auto: Vec<_> = routed
        .iter()
        .filter(|e| e.attr("type") == Some("subscribed"))
        .collect();
    if kind == "subscribe" && before.has_from() {
        // A.3.1: the server answers for an already subscribed contact.
        assert_eq!(auto.len(), 1, "auto-reply: {routed:?}");
        assert_eq!(auto[0].attr("from"), Some("juliet@example.com"));
        assert_eq!(auto[0].attr("to"), Some(CONTACT));
    } else {
        assert!(auto.is_empty(), "no auto-reply: {routed:?}");
    }
    let unavailable = presences(&routed, Some("unavailable"), USER_FULL);
    if kind == "unsubscribe" && before.has_from() {
        // §3.3.3: the former subscriber learns the account is unavailable.
        assert_eq!(unavailable.len(), 1, "{routed:?}");
        assert_eq!(unavailable[0].attr("to"), Some(CONTACT));
    } else {
        assert!(unavailable.is_empty(), "{routed:?}");
    }
    if kind == "subscribe" && deliver {
        assert_eq!(
            env.pending("juliet").await,
            vec![CONTACT.to_owned()],
            "the request is kept for the next login"
        );
    }
}

macro_rules! rows {
    ($f:ident, $kind:literal: $($name:ident: $before:literal => $flag:literal, $after:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $f($kind, $before, $flag, $after).await;
            }
        )*
    };
}

// A.2.1 Subscribe (outbound): always routed.
rows!(outbound_row, "subscribe":
    a2_1_subscribe_none: "None" => true, "None + Pending Out";
    a2_1_subscribe_none_pending_out: "None + Pending Out" => true, "no state change";
    a2_1_subscribe_none_pending_in: "None + Pending In" => true, "None + Pending Out+In";
    a2_1_subscribe_none_pending_out_in: "None + Pending Out+In" => true, "no state change";
    a2_1_subscribe_to: "To" => true, "no state change";
    a2_1_subscribe_to_pending_in: "To + Pending In" => true, "no state change";
    a2_1_subscribe_from: "From" => true, "From + Pending Out";
    a2_1_subscribe_from_pending_out: "From + Pending Out" => true, "no state change";
    a2_1_subscribe_both: "Both" => true, "no state change";
);

// A.2.2 Unsubscribe (outbound): always routed.
rows!(outbound_row, "unsubscribe":
    a2_2_unsubscribe_none: "None" => true, "no state change";
    a2_2_unsubscribe_none_pending_out: "None + Pending Out" => true, "None";
    a2_2_unsubscribe_none_pending_in: "None + Pending In" => true, "no state change";
    a2_2_unsubscribe_none_pending_out_in: "None + Pending Out+In" => true, "None + Pending In";
    a2_2_unsubscribe_to: "To" => true, "None";
    a2_2_unsubscribe_to_pending_in: "To + Pending In" => true, "None + Pending In";
    a2_2_unsubscribe_from: "From" => true, "no state change";
    a2_2_unsubscribe_from_pending_out: "From + Pending Out" => true, "From";
    a2_2_unsubscribe_both: "Both" => true, "From";
);

// A.2.3 Subscribed (outbound): routed only as the answer to a pending request. (Without one it
// is a pre-approval, tested in subscriptions.rs; here the item shows no change to the
// subscription.)
rows!(outbound_row, "subscribed":
    a2_3_subscribed_none: "None" => false, "no state change";
    a2_3_subscribed_none_pending_out: "None + Pending Out" => false, "no state change";
    a2_3_subscribed_none_pending_in: "None + Pending In" => true, "From";
    a2_3_subscribed_none_pending_out_in: "None + Pending Out+In" => true, "From + Pending Out";
    a2_3_subscribed_to: "To" => false, "no state change";
    a2_3_subscribed_to_pending_in: "To + Pending In" => true, "Both";
    a2_3_subscribed_from: "From" => false, "no state change";
    a2_3_subscribed_from_pending_out: "From + Pending Out" => false, "no state change";
    a2_3_subscribed_both: "Both" => false, "no state change";
);

// A.2.4 Unsubscribed (outbound).
rows!(outbound_row, "unsubscribed":
    a2_4_unsubscribed_none: "None" => false, "no state change";
    a2_4_unsubscribed_none_pending_out: "None + Pending Out" => false, "no state change";
    a2_4_unsubscribed_none_pending_in: "None + Pending In" => true, "None";
    a2_4_unsubscribed_none_pending_out_in: "None + Pending Out+In" => true, "None + Pending Out";
    a2_4_unsubscribed_to: "To" => false, "no state change";
    a2_4_unsubscribed_to_pending_in: "To + Pending In" => true, "To";
    a2_4_unsubscribed_from: "From" => true, "None";
    a2_4_unsubscribed_from_pending_out: "From + Pending Out" => true, "None + Pending Out";
    a2_4_unsubscribed_both: "Both" => true, "To";
);

// A.3.1 Subscribe (inbound).
rows!(inbound_row, "subscribe":
    a3_1_subscribe_none: "None" => true, "None + Pending In";
    a3_1_subscribe_none_pending_out: "None + Pending Out" => true, "None + Pending Out+In";
    a3_1_subscribe_none_pending_in: "None + Pending In" => false, "no state change";
    a3_1_subscribe_none_pending_out_in: "None + Pending Out+In" => false, "no state change";
    a3_1_subscribe_to: "To" => true, "To + Pending In";
    a3_1_subscribe_to_pending_in: "To + Pending In" => false, "no state change";
    a3_1_subscribe_from: "From" => false, "no state change";
    a3_1_subscribe_from_pending_out: "From + Pending Out" => false, "no state change";
    a3_1_subscribe_both: "Both" => false, "no state change";
);

// A.3.2 Unsubscribe (inbound).
rows!(inbound_row, "unsubscribe":
    a3_2_unsubscribe_none: "None" => false, "no state change";
    a3_2_unsubscribe_none_pending_out: "None + Pending Out" => false, "no state change";
    a3_2_unsubscribe_none_pending_in: "None + Pending In" => true, "None";
    a3_2_unsubscribe_none_pending_out_in: "None + Pending Out+In" => true, "None + Pending Out";
    a3_2_unsubscribe_to: "To" => false, "no state change";
    a3_2_unsubscribe_to_pending_in: "To + Pending In" => true, "To";
    a3_2_unsubscribe_from: "From" => true, "None";
    a3_2_unsubscribe_from_pending_out: "From + Pending Out" => true, "None + Pending Out";
    a3_2_unsubscribe_both: "Both" => true, "To";
);

// A.3.3 Subscribed (inbound).
rows!(inbound_row, "subscribed":
    a3_3_subscribed_none: "None" => false, "no state change";
    a3_3_subscribed_none_pending_out: "None + Pending Out" => true, "To";
    a3_3_subscribed_none_pending_in: "None + Pending In" => false, "no state change";
    a3_3_subscribed_none_pending_out_in: "None + Pending Out+In" => true, "To + Pending In";
    a3_3_subscribed_to: "To" => false, "no state change";
    a3_3_subscribed_to_pending_in: "To + Pending In" => false, "no state change";
    a3_3_subscribed_from: "From" => false, "no state change";
    a3_3_subscribed_from_pending_out: "From + Pending Out" => true, "Both";
    a3_3_subscribed_both: "Both" => false, "no state change";
);

// A.3.4 Unsubscribed (inbound).
rows!(inbound_row, "unsubscribed":
    a3_4_unsubscribed_none: "None" => false, "no state change";
    a3_4_unsubscribed_none_pending_out: "None + Pending Out" => true, "None";
    a3_4_unsubscribed_none_pending_in: "None + Pending In" => false, "no state change";
    a3_4_unsubscribed_none_pending_out_in: "None + Pending Out+In" => true, "None + Pending In";
    a3_4_unsubscribed_to: "To" => true, "None";
    a3_4_unsubscribed_to_pending_in: "To + Pending In" => true, "None + Pending In";
    a3_4_unsubscribed_from: "From" => false, "no state change";
    a3_4_unsubscribed_from_pending_out: "From + Pending Out" => true, "From";
    a3_4_unsubscribed_both: "Both" => true, "From";
);
