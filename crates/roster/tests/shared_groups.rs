//! Shared roster groups: members see each other (local and remote) with `subscription='both'`
//! and the group's label, presence flows as if subscribed both ways, group changes are pushed
//! with a new version and start or stop presence, own items merge with shared ones and shared
//! items stay when removed.

mod common;

use causerie_roster::shared::TOPIC;
use causerie_roster::state::SubState;
use causerie_storage::NewGroup;
use causerie_xml::Element;
use common::*;

const REMOTE: &str = "mercutio@verona.example";

fn st(name: &str) -> SubState {
    SubState::from_rfc_name(name).expect("state name")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Creates a group with these members and has the roster read the groups again, as the admin
/// operation does on the running server.
async fn group(env: &Env, name: &str, display: Option<&str>, members: &[&str]) {
    env.storage
        .groups
        .create_group(&NewGroup {
            name: name.into(),
            display_name: display.map(Into::into),
            description: None,
            created_at: 0,
        })
        .await
        .expect("create group");
    add(env, name, members).await;
}

async fn add(env: &Env, name: &str, members: &[&str]) {
    env.storage
        .groups
        .add_members(name, &strings(members))
        .await
        .expect("add members");
    reload(env).await;
}

async fn remove(env: &Env, name: &str, members: &[&str]) {
    env.storage
        .groups
        .remove_members(name, &strings(members))
        .await
        .expect("remove members");
    reload(env).await;
}

async fn reload(env: &Env) {
    assert_eq!(env.core.reload(TOPIC).await, Ok(1));
    env.settle().await;
}

/// The roster as the client gets it: the `<query/>` of the result to a get with `ver`.
async fn roster(env: &Env, c: &mut Client, ver: Option<&str>) -> Option<Element> {
    c.take();
    let ver = ver.map(|v| format!(" ver='{v}'")).unwrap_or_default();
    env.send(
        c,
        &format!("<iq type='get' id='get'><query xmlns='jabber:iq:roster'{ver}/></iq>"),
    )
    .await;
    let got = c.take();
    let res = iq_result(&got, "get").expect("roster result");
    assert_eq!(res.attr("type"), Some("result"), "{}", res.to_xml());
    res.get_child("query", ROSTER).cloned()
}

/// `(jid, subscription, ask, groups)` of each item.
fn items(q: &Element) -> Vec<(String, String, Option<String>, Vec<String>)> {
    q.children()
        .map(|i| {
            (
                i.attr("jid").unwrap_or_default().to_owned(),
                i.attr("subscription").unwrap_or_default().to_owned(),
                i.attr("ask").map(str::to_owned),
                i.children().map(|g| g.text()).collect(),
            )
        })
        .collect()
}

fn item(jid: &str, sub: &str, groups: &[&str]) -> (String, String, Option<String>, Vec<String>) {
    (jid.into(), sub.into(), None, strings(groups))
}

async fn accounts(env: &Env, names: &[&str]) {
    for n in names {
        env.user(n).await;
    }
}

#[tokio::test]
async fn members_see_each_other_local_and_remote_and_others_see_nothing() {
    let env = Env::new().await;
    accounts(&env, &["juliet", "romeo", "nurse"]).await;
    group(
        &env,
        "house",
        Some("House"),
        &["juliet@example.com", "romeo@example.com", REMOTE],
    )
    .await;
    group(
        &env,
        "lovers",
        None,
        &["juliet@example.com", "romeo@example.com"],
    )
    .await;

    let mut j = env.connect("juliet@example.com/balcony");
    let q = roster(&env, &mut j, None).await.expect("a roster");
    assert_eq!(
        items(&q),
        [
            item(REMOTE, "both", &["House"]),
            item("romeo@example.com", "both", &["House", "lovers"]),
        ]
    );
    let ver = q.attr("ver").expect("ver").to_owned();
    assert!(ver.starts_with("0-"), "{ver}");
    // §2.6.3: the client's copy is current.
    assert!(roster(&env, &mut j, Some(&ver)).await.is_none());
    // Nothing is stored in the roster itself.
    assert!(env.item("juliet", "romeo@example.com").await.is_none());

    let mut n = env.connect("nurse@example.com/kitchen");
    let q = roster(&env, &mut n, None).await.expect("a roster");
    assert_eq!(q.children().count(), 0, "not a member: {}", q.to_xml());
    assert_eq!(q.attr("ver"), Some("0"));
}

#[tokio::test]
async fn presence_flows_between_members_as_if_subscribed() {
    let env = Env::new().await;
    accounts(&env, &["juliet", "romeo", "nurse"]).await;
    group(
        &env,
        "house",
        None,
        &["juliet@example.com", "romeo@example.com", REMOTE],
    )
    .await;
    let mut j = env.online("juliet@example.com/balcony").await;
    let mut n = env.online("nurse@example.com/kitchen").await;
    env.remote_take();

    // Initial presence: broadcast to the members and probes for theirs (RFC 6121 §4.2.2).
    let mut r = env.connect("romeo@example.com/garden");
    env.send(&r, "<presence><status>here</status></presence>")
        .await;
    assert_eq!(
        presences(&j.take(), None, "romeo@example.com/garden").len(),
        1
    );
    let got = r.take();
    assert_eq!(
        presences(&got, None, "juliet@example.com/balcony").len(),
        1,
        "juliet's presence answers romeo's probe: {got:?}"
    );
    let out = env.remote_take();
    assert!(
        out.iter().any(|e| is_presence(e, None)
            && e.attr("to") == Some(REMOTE)
            && e.attr("from") == Some("romeo@example.com/garden")),
        "the remote member gets the broadcast: {out:?}"
    );
    assert!(
        out.iter().any(|e| is_presence(e, Some("probe"))
            && e.attr("to") == Some(REMOTE)
            && e.attr("from") == Some("romeo@example.com")),
        "and is probed: {out:?}"
    );
    assert!(n.take().is_empty(), "the nurse is no member");

    // A probe from the remote member is answered (§4.3.2), one from anyone else is not.
    env.remote_sends(
        "verona.example",
        &format!("<presence type='probe' from='{REMOTE}' to='juliet@example.com'/>"),
    )
    .await;
    let out = env.remote_take();
    assert_eq!(
        presences(&out, None, "juliet@example.com/balcony").len(),
        1,
        "{out:?}"
    );
    env.remote_sends(
        "verona.example",
        "<presence type='probe' from='tybalt@verona.example' to='juliet@example.com'/>",
    )
    .await;
    let out = env.remote_take();
    assert!(
        presences(&out, None, "juliet@example.com/balcony").is_empty()
            && presences(&out, Some("unsubscribed"), "juliet@example.com").len() == 1,
        "{out:?}"
    );

    // Directed presence to a member is not tracked as directed: it is a subscriber.
    env.send(&r, "<presence type='unavailable'/>").await;
    assert_eq!(
        presences(&j.take(), Some("unavailable"), "romeo@example.com/garden").len(),
        1
    );
    assert!(
        env.remote_take()
            .iter()
            .any(|e| is_presence(e, Some("unavailable")) && e.attr("to") == Some(REMOTE))
    );
    // A session that ends abruptly is seen going too.
    env.send(&r, "<presence/>").await;
    j.take();
    env.end(&r).await;
    assert_eq!(
        presences(&j.take(), Some("unavailable"), "romeo@example.com/garden").len(),
        1
    );
}

#[tokio::test]
async fn changes_are_pushed_with_a_new_version_and_move_presence() {
    let env = Env::new().await;
    accounts(&env, &["juliet", "romeo"]).await;
    group(&env, "house", Some("House"), &["juliet@example.com"]).await;
    let mut j = env.online("juliet@example.com/balcony").await;
    let mut r = env.online("romeo@example.com/garden").await;
    let v0 = roster(&env, &mut j, None)
        .await
        .and_then(|q| q.attr("ver").map(str::to_owned))
        .expect("ver");
    j.take();
    env.remote_take();

    add(&env, "house", &["romeo@example.com", REMOTE]).await;
    let got = j.take();
    let mut pushed: Vec<(String, String, Vec<String>)> = pushes(&got)
        .iter()
        .map(|i| {
            (
                i.attr("jid").unwrap_or_default().to_owned(),
                i.attr("subscription").unwrap_or_default().to_owned(),
                i.children().map(|g| g.text()).collect(),
            )
        })
        .collect();
    pushed.sort();
    assert_eq!(
        pushed,
        [
            (REMOTE.to_owned(), "both".to_owned(), strings(&["House"])),
            (
                "romeo@example.com".to_owned(),
                "both".to_owned(),
                strings(&["House"])
            ),
        ]
    );
    let v1 = push_version(&got).expect("version");
    assert_ne!(
        v1, v0,
        "RFC 6121 §2.6: a change of the groups is a new version"
    );
    assert_eq!(
        presences(&got, None, "romeo@example.com/garden").len(),
        1,
        "romeo's presence reaches the member he joined: {got:?}"
    );
    let got = r.take();
    assert_eq!(pushes(&got).len(), 2, "{got:?}");
    assert_eq!(presences(&got, None, "juliet@example.com/balcony").len(), 1);
    let out = env.remote_take();
    for (kind, from) in [
        (None, "juliet@example.com/balcony"),
        (Some("probe"), "juliet@example.com"),
    ] {
        assert!(
            out.iter().any(|e| is_presence(e, kind)
                && e.attr("from") == Some(from)
                && e.attr("to") == Some(REMOTE)),
            "{kind:?} from {from}: {out:?}"
        );
    }
    // The current version is current; the old one gets the whole roster.
    assert!(roster(&env, &mut j, Some(&v1)).await.is_none());
    assert_eq!(
        roster(&env, &mut j, Some(&v0))
            .await
            .map(|q| q.children().count()),
        Some(2)
    );

    remove(&env, "house", &["romeo@example.com", REMOTE]).await;
    let got = j.take();
    let removed: Vec<(String, String)> = pushes(&got)
        .iter()
        .map(|i| {
            (
                i.attr("jid").unwrap_or_default().to_owned(),
                i.attr("subscription").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(removed.len(), 2, "{got:?}");
    assert!(removed.iter().all(|(_, s)| s == "remove"), "{removed:?}");
    assert_ne!(push_version(&got), Some(v1.clone()));
    assert_eq!(
        presences(&got, Some("unavailable"), "romeo@example.com/garden").len(),
        1,
        "{got:?}"
    );
    assert_eq!(
        presences(&got, Some("unavailable"), REMOTE).len(),
        1,
        "the remote member is shown gone: {got:?}"
    );
    let got = r.take();
    assert_eq!(
        presences(&got, Some("unavailable"), "juliet@example.com/balcony").len(),
        1
    );
    assert!(
        env.remote_take()
            .iter()
            .any(|e| is_presence(e, Some("unavailable"))
                && e.attr("to") == Some(REMOTE)
                && e.attr("from") == Some("juliet@example.com/balcony"))
    );
    // Back to no shared contact: the plain stored version again.
    let q = roster(&env, &mut j, None).await.expect("roster");
    assert_eq!(q.attr("ver"), Some("0"));
    assert_eq!(q.children().count(), 0);
}

#[tokio::test]
async fn own_items_merge_and_shared_items_stay() {
    let env = Env::new().await;
    accounts(&env, &["juliet", "romeo", "benvolio"]).await;
    // A real subscription both ways, and a name and group of juliet's own.
    env.set_state("juliet", "romeo@example.com", st("Both"), false)
        .await;
    env.set_state("romeo", "juliet@example.com", st("Both"), false)
        .await;
    // A pending request to the remote member: the shared item hides it.
    env.set_state("juliet", REMOTE, st("None + Pending Out"), false)
        .await;
    env.send(
        &env.connect("juliet@example.com/setup"),
        "<iq type='set' id='s0'><query xmlns='jabber:iq:roster'><item jid='romeo@example.com' name='Romeo'><group>Friends</group><group>House</group></item></query></iq>",
    )
    .await;
    group(
        &env,
        "house",
        Some("House"),
        &[
            "juliet@example.com",
            "romeo@example.com",
            "benvolio@example.com",
            REMOTE,
        ],
    )
    .await;
    let mut j = env.online("juliet@example.com/balcony").await;
    let mut r = env.online("romeo@example.com/garden").await;
    let q = roster(&env, &mut j, None).await.expect("roster");
    let romeo = q
        .children()
        .find(|i| i.attr("jid") == Some("romeo@example.com"))
        .expect("romeo");
    assert_eq!(romeo.attr("name"), Some("Romeo"), "the own name stays");
    assert_eq!(
        items(&q),
        [
            item("benvolio@example.com", "both", &["House"]),
            item(REMOTE, "both", &["House"]),
            item("romeo@example.com", "both", &["Friends", "House"]),
        ],
        "groups united, subscription both, no ask"
    );

    // Removing the merged item ends juliet's own part (and the real subscriptions); the shared
    // item stays, and so does presence.
    j.take();
    r.take();
    env.send(
        &j,
        "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='romeo@example.com' subscription='remove'/></query></iq>",
    )
    .await;
    let got = j.take();
    assert_eq!(
        iq_result(&got, "rm").and_then(|e| e.attr("type")),
        Some("result")
    );
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("subscription"), Some("both"));
    assert_eq!(p[0].attr("name"), None);
    assert!(env.item("juliet", "romeo@example.com").await.is_none());
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("None"));
    let got = r.take();
    assert!(
        presences(&got, Some("unavailable"), "juliet@example.com/balcony").is_empty(),
        "still in one group, still seen: {got:?}"
    );
    assert!(
        pushes(&got).is_empty(),
        "romeo's view (both, through the group) did not change: {got:?}"
    );

    // A shared-only item cannot go either: the result, and the item shown again.
    env.send(
        &j,
        "<iq type='set' id='rm2'><query xmlns='jabber:iq:roster'><item jid='benvolio@example.com' subscription='remove'/></query></iq>",
    )
    .await;
    let got = j.take();
    assert_eq!(
        iq_result(&got, "rm2").and_then(|e| e.attr("type")),
        Some("result")
    );
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(
        (p[0].attr("jid"), p[0].attr("subscription")),
        (Some("benvolio@example.com"), Some("both"))
    );

    // Naming a shared contact makes an own item, merged in the push.
    env.send(
        &j,
        "<iq type='set' id='nm'><query xmlns='jabber:iq:roster'><item jid='romeo@example.com' name='R.'><group>Friends</group></item></query></iq>",
    )
    .await;
    let got = j.take();
    let p = pushes(&got);
    assert_eq!(p.len(), 1, "{got:?}");
    assert_eq!(p[0].attr("name"), Some("R."));
    assert_eq!(p[0].attr("subscription"), Some("both"));
    let groups: Vec<String> = p[0].children().map(|g| g.text()).collect();
    assert_eq!(groups, ["Friends", "House"]);

    // Out of the group, what remains is juliet's own item, as stored.
    remove(&env, "house", &["juliet@example.com"]).await;
    let got = j.take();
    let p = pushes(&got);
    let romeo = p
        .iter()
        .find(|i| i.attr("jid") == Some("romeo@example.com"))
        .expect("romeo pushed");
    assert_eq!(romeo.attr("subscription"), Some("none"));
    assert_eq!(romeo.attr("name"), Some("R."));
    let mercutio = p
        .iter()
        .find(|i| i.attr("jid") == Some(REMOTE))
        .expect("mercutio pushed");
    assert_eq!(
        (mercutio.attr("subscription"), mercutio.attr("ask")),
        (Some("none"), Some("subscribe")),
        "the pending request shows again"
    );
    let benvolio = p
        .iter()
        .find(|i| i.attr("jid") == Some("benvolio@example.com"))
        .expect("benvolio pushed");
    assert_eq!(benvolio.attr("subscription"), Some("remove"));
}

#[tokio::test]
async fn subscription_stanzas_between_members_keep_presence_flowing() {
    let env = Env::new().await;
    accounts(&env, &["juliet", "romeo"]).await;
    env.set_state("juliet", "romeo@example.com", st("Both"), false)
        .await;
    env.set_state("romeo", "juliet@example.com", st("Both"), false)
        .await;
    group(
        &env,
        "house",
        None,
        &["juliet@example.com", "romeo@example.com"],
    )
    .await;
    let mut j = env.online("juliet@example.com/balcony").await;
    let mut r = env.online("romeo@example.com/garden").await;
    j.take();
    // Romeo cancels juliet's subscription to him and unsubscribes from her: the stored states
    // follow RFC 6121, but neither is told the other went away (§3.2.2, §3.3.3) while the
    // group joins them.
    env.send(
        &r,
        "<presence type='unsubscribed' to='juliet@example.com'/>",
    )
    .await;
    env.send(&r, "<presence type='unsubscribe' to='juliet@example.com'/>")
        .await;
    assert_eq!(env.state("romeo", "juliet@example.com").await, st("None"));
    assert_eq!(env.state("juliet", "romeo@example.com").await, st("None"));
    let got = j.take();
    assert!(
        presences(&got, Some("unavailable"), "romeo@example.com/garden").is_empty(),
        "{got:?}"
    );
    let got = r.take();
    assert!(
        presences(&got, Some("unavailable"), "juliet@example.com/balcony").is_empty(),
        "{got:?}"
    );
    // And presence still flows both ways.
    env.send(&r, "<presence><status>back</status></presence>")
        .await;
    assert_eq!(
        presences(&j.take(), None, "romeo@example.com/garden").len(),
        1
    );
}
