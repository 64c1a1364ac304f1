//! RFC 6121 §3 end to end: both parties local (each side's server rules run, in order), requests
//! to accounts that do not exist, pre-approval (§3.4), and requests kept for the next login.

mod common;

use causerie_roster::state::SubState;
use common::*;

fn st(name: &str) -> SubState {
    SubState::from_rfc_name(name).expect("state name")
}

async fn two_users() -> (Env, Client, Client) {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    let j = env.online("juliet@example.com/balcony").await;
    let r = env.online("romeo@example.com/garden").await;
    (env, j, r)
}

#[tokio::test]
async fn request_and_approval_between_local_accounts() {
    let (env, mut j, mut r) = two_users().await;
    env.send(
        &j,
        "<presence type='subscribe' to='romeo@example.com'><status>hi</status></presence>",
    )
    .await;

    // The user's side (§3.1.2): item added as none + ask, pushed.
    let got = j.take();
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("subscription"), Some("none"));
    assert_eq!(p[0].attr("ask"), Some("subscribe"));
    assert_eq!(
        env.state("juliet", "romeo@example.com").await,
        st("None + Pending Out")
    );
    // The contact's side (§3.1.3): delivered from the bare JID, with its content; not in the roster.
    let got = r.take();
    let req = presences(&got, Some("subscribe"), "juliet@example.com");
    assert_eq!(req.len(), 1, "{got:?}");
    assert!(
        req[0]
            .children()
            .any(|c| c.name() == "status" && c.text() == "hi")
    );
    assert!(pushes(&got).is_empty());
    assert_eq!(env.item("romeo", "juliet@example.com").await, None);
    assert_eq!(env.pending("romeo").await, ["juliet@example.com"]);

    // §3.1.5: romeo approves.
    env.send(&r, "<presence type='subscribed' to='juliet@example.com'/>")
        .await;
    let got = r.take();
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("subscription"), Some("from"));
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("From"));
    assert!(env.pending("romeo").await.is_empty());
    // §3.1.6: juliet learns of it, and gets romeo's presence.
    let got = j.take();
    assert_eq!(
        presences(&got, Some("subscribed"), "romeo@example.com").len(),
        1,
        "{got:?}"
    );
    let p = pushes(&got);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].attr("subscription"), Some("to"));
    assert_eq!(p[0].attr("ask"), None);
    assert_eq!(
        presences(&got, None, "romeo@example.com/garden").len(),
        1,
        "{got:?}"
    );
    // The approval is applied before the presence that follows it.
    let pos_sub = got
        .iter()
        .position(|e| e.attr("type") == Some("subscribed"))
        .expect("subscribed");
    let pos_pres = got
        .iter()
        .position(|e| is_presence(e, None))
        .expect("presence");
    assert!(pos_sub < pos_pres);
    assert_eq!(env.state("juliet", "romeo@example.com").await, st("To"));

    // And the other way round: mutual subscription.
    env.send(&r, "<presence type='subscribe' to='juliet@example.com'/>")
        .await;
    assert_eq!(
        env.state("romeo", "juliet@example.com").await,
        st("From + Pending Out")
    );
    assert_eq!(
        env.state("juliet", "romeo@example.com").await,
        st("To + Pending In")
    );
    assert_eq!(
        presences(&j.take(), Some("subscribe"), "romeo@example.com").len(),
        1
    );
    r.take();
    env.send(&j, "<presence type='subscribed' to='romeo@example.com'/>")
        .await;
    assert_eq!(env.state("juliet", "romeo@example.com").await, st("Both"));
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("Both"));
    let got = r.take();
    assert_eq!(
        presences(&got, None, "juliet@example.com/balcony").len(),
        1,
        "{got:?}"
    );
}

async fn mutual() -> (Env, Client, Client) {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    env.set_state("juliet", "romeo@example.com", st("Both"), false)
        .await;
    env.set_state("romeo", "juliet@example.com", st("Both"), false)
        .await;
    let j = env.online("juliet@example.com/balcony").await;
    let r = env.online("romeo@example.com/garden").await;
    (env, j, r)
}

#[tokio::test]
async fn unsubscribing_makes_the_contact_unavailable() {
    let (env, mut j, mut r) = mutual().await;
    j.take();
    env.send(&j, "<presence type='unsubscribe' to='romeo@example.com'/>")
        .await;
    assert_eq!(env.state("juliet", "romeo@example.com").await, st("From"));
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("To"));
    let got = r.take();
    assert_eq!(
        presences(&got, Some("unsubscribe"), "juliet@example.com").len(),
        1,
        "{got:?}"
    );
    assert_eq!(pushes(&got)[0].attr("subscription"), Some("to"));
    // §3.3.3: romeo's server tells juliet that romeo is unavailable.
    let got = j.take();
    assert_eq!(
        presences(&got, Some("unavailable"), "romeo@example.com/garden").len(),
        1,
        "{got:?}"
    );
    assert_eq!(pushes(&got)[0].attr("subscription"), Some("from"));
}

#[tokio::test]
async fn cancelling_a_subscription_sends_unavailable_first() {
    let (env, mut j, mut r) = mutual().await;
    r.take();
    env.send(&j, "<presence type='unsubscribed' to='romeo@example.com'/>")
        .await;
    assert_eq!(env.state("juliet", "romeo@example.com").await, st("To"));
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("From"));
    let got = r.take();
    let un = got.iter().position(|e| {
        is_presence(e, Some("unavailable")) && e.attr("from") == Some("juliet@example.com/balcony")
    });
    let cancel = got.iter().position(|e| {
        is_presence(e, Some("unsubscribed")) && e.attr("from") == Some("juliet@example.com")
    });
    assert!(
        un.expect("unavailable") < cancel.expect("unsubscribed"),
        "{got:?}"
    );
    assert_eq!(pushes(&got)[0].attr("subscription"), Some("from"));
    assert_eq!(pushes(&j.take())[0].attr("subscription"), Some("to"));
}

#[tokio::test]
async fn request_to_a_missing_local_account_is_refused() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.send(&j, "<presence type='subscribe' to='nobody@example.com'/>")
        .await;
    let got = j.take();
    // §3.1.3: "unsubscribed" comes back, and the pending request is gone from the roster.
    assert_eq!(
        presences(&got, Some("unsubscribed"), "nobody@example.com").len(),
        1,
        "{got:?}"
    );
    let p = pushes(&got);
    assert_eq!(p.len(), 2, "{got:?}");
    assert_eq!(p[0].attr("ask"), Some("subscribe"));
    assert_eq!(p[1].attr("ask"), None);
    assert_eq!(env.state("juliet", "nobody@example.com").await, st("None"));
}

#[tokio::test]
async fn request_from_remote_to_a_missing_account_is_refused() {
    let env = Env::new().await;
    env.remote_sends(
        "remote.example",
        "<presence type='subscribe' from='romeo@remote.example' to='nobody@example.com'/>",
    )
    .await;
    let routed = env.remote_take();
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert!(is_presence(&routed[0], Some("unsubscribed")));
    assert_eq!(routed[0].attr("from"), Some("nobody@example.com"));
    assert_eq!(routed[0].attr("to"), Some("romeo@remote.example"));
    // Other types to a missing account are dropped without an answer.
    env.remote_sends(
        "remote.example",
        "<presence type='unsubscribe' from='romeo@remote.example' to='nobody@example.com'/>",
    )
    .await;
    assert!(env.remote_take().is_empty());
}

#[tokio::test]
async fn pre_approval_answers_the_request_at_once() {
    let (env, mut j, mut r) = two_users().await;
    // §3.4.1: romeo approves before juliet asks.
    env.send(&r, "<presence type='subscribed' to='juliet@example.com'/>")
        .await;
    let got = r.take();
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("subscription"), Some("none"));
    assert_eq!(p[0].attr("approved"), Some("true"));
    assert!(j.take().is_empty(), "a pre-approval is not routed");

    // §3.4.2: juliet's request is approved by romeo's server without asking romeo.
    env.send(&j, "<presence type='subscribe' to='romeo@example.com'/>")
        .await;
    let got = r.take();
    assert!(
        presences(&got, Some("subscribe"), "juliet@example.com").is_empty(),
        "{got:?}"
    );
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("subscription"), Some("from"));
    assert_eq!(p[0].attr("approved"), None);
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("From"));
    assert!(
        !env.item("romeo", "juliet@example.com")
            .await
            .expect("item")
            .approved
    );
    let got = j.take();
    assert_eq!(
        presences(&got, Some("subscribed"), "romeo@example.com").len(),
        1,
        "{got:?}"
    );
    assert_eq!(
        presences(&got, None, "romeo@example.com/garden").len(),
        1,
        "{got:?}"
    );
    assert_eq!(env.state("juliet", "romeo@example.com").await, st("To"));
}

#[tokio::test]
async fn pre_approval_can_be_cancelled() {
    let (env, mut j, mut r) = two_users().await;
    env.send(&r, "<presence type='subscribed' to='juliet@example.com'/>")
        .await;
    r.take();
    env.send(
        &r,
        "<presence type='unsubscribed' to='juliet@example.com'/>",
    )
    .await;
    let got = r.take();
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("approved"), None);
    assert!(
        j.take().is_empty(),
        "cancelling a pre-approval is not routed"
    );
    env.send(&j, "<presence type='subscribe' to='romeo@example.com'/>")
        .await;
    assert_eq!(
        presences(&r.take(), Some("subscribe"), "juliet@example.com").len(),
        1
    );
    assert_eq!(
        env.state("romeo", "juliet@example.com").await,
        st("None + Pending In")
    );
}

#[tokio::test]
async fn pending_requests_are_delivered_at_each_login_until_answered() {
    let env = Env::new().await;
    env.user("juliet").await;
    env.user("romeo").await;
    let j = env.online("juliet@example.com/balcony").await;
    env.send(
        &j,
        "<presence type='subscribe' to='romeo@example.com'><status>please</status></presence>",
    )
    .await;

    for _ in 0..2 {
        let mut r = env.connect("romeo@example.com/garden");
        env.send(&r, "<presence/>").await;
        let got = r.take();
        let req = presences(&got, Some("subscribe"), "juliet@example.com");
        assert_eq!(req.len(), 1, "{got:?}");
        assert_eq!(req[0].attr("to"), Some("romeo@example.com"));
        assert!(
            req[0]
                .children()
                .any(|c| c.name() == "status" && c.text() == "please")
        );
        // Later presence does not repeat it.
        env.send(&r, "<presence><show>away</show></presence>").await;
        assert!(presences(&r.take(), Some("subscribe"), "juliet@example.com").is_empty());
        env.end(&r).await;
    }

    let mut r = env.connect("romeo@example.com/garden");
    env.send(&r, "<presence/>").await;
    r.take();
    env.send(&r, "<presence type='subscribed' to='juliet@example.com'/>")
        .await;
    env.end(&r).await;
    let mut r = env.connect("romeo@example.com/garden");
    env.send(&r, "<presence/>").await;
    assert!(presences(&r.take(), Some("subscribe"), "juliet@example.com").is_empty());
}

#[tokio::test]
async fn request_from_a_contact_not_in_the_roster_then_added_and_approved() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.remote_sends(
        "remote.example",
        "<presence type='subscribe' from='romeo@remote.example' to='juliet@example.com'/>",
    )
    .await;
    assert_eq!(
        presences(&j.take(), Some("subscribe"), "romeo@remote.example").len(),
        1
    );
    assert_eq!(env.item("juliet", "romeo@remote.example").await, None);

    // Adding the contact keeps the request pending on the new item.
    env.send(&j, "<iq type='set' id='a1'><query xmlns='jabber:iq:roster'><item jid='romeo@remote.example' name='Romeo'/></query></iq>").await;
    assert_eq!(
        env.state("juliet", "romeo@remote.example").await,
        st("None + Pending In")
    );
    j.take();
    env.send(
        &j,
        "<presence type='subscribed' to='romeo@remote.example'/>",
    )
    .await;
    assert_eq!(
        env.state("juliet", "romeo@remote.example").await,
        st("From")
    );
    let item = env
        .item("juliet", "romeo@remote.example")
        .await
        .expect("item");
    assert_eq!(item.name.as_deref(), Some("Romeo"));
    let routed = env.remote_take();
    assert!(
        routed.iter().any(|e| is_presence(e, Some("subscribed"))),
        "{routed:?}"
    );
    assert!(
        routed
            .iter()
            .any(|e| is_presence(e, None) && e.attr("from") == Some("juliet@example.com/balcony"))
    );
}

#[tokio::test]
async fn approving_a_request_from_a_contact_not_in_the_roster_adds_it() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.remote_sends(
        "remote.example",
        "<presence type='subscribe' from='romeo@remote.example' to='juliet@example.com'/>",
    )
    .await;
    j.take();
    env.send(
        &j,
        "<presence type='subscribed' to='romeo@remote.example'/>",
    )
    .await;
    let p = pushes(&j.take());
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].attr("subscription"), Some("from"));
    assert_eq!(
        env.state("juliet", "romeo@remote.example").await,
        st("From")
    );
    assert!(env.pending("juliet").await.is_empty());
}

#[tokio::test]
async fn withdrawn_request_from_a_contact_not_in_the_roster_is_forgotten() {
    let env = Env::new().await;
    env.user("juliet").await;
    let mut j = env.online("juliet@example.com/balcony").await;
    env.remote_sends(
        "remote.example",
        "<presence type='subscribe' from='romeo@remote.example' to='juliet@example.com'/>",
    )
    .await;
    j.take();
    env.remote_sends(
        "remote.example",
        "<presence type='unsubscribe' from='romeo@remote.example' to='juliet@example.com'/>",
    )
    .await;
    assert_eq!(
        presences(&j.take(), Some("unsubscribe"), "romeo@remote.example").len(),
        1
    );
    assert!(env.pending("juliet").await.is_empty());
    assert_eq!(env.item("juliet", "romeo@remote.example").await, None);
}
