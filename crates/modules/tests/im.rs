//! The instant-messaging modules in a core built in process: stanzas go in through
//! `Core::process` as a session would hand them over, and come out of the sessions' inboxes.

use std::sync::Arc;
use std::time::Duration;

use causerie_core::{Core, CoreBuilder, Event, IqTarget, Origin, Outbound, SessionHandle, flags};
use causerie_jid::FullJid;
use causerie_modules::{
    ImOptions, caps::Caps, register_defaults, register_im, server_ping::ServerPing,
};
use causerie_stanza::{StreamErrorCondition, ns};
use causerie_storage::{NewUser, Storage};
use causerie_xml::Element;
use tokio::sync::mpsc::Receiver;

const DOMAIN: &str = "example.com";

struct Env {
    core: Arc<Core>,
    storage: Storage,
}

fn build(storage: &Storage, opts: &ImOptions) -> Arc<Core> {
    let mut builder = CoreBuilder::new([DOMAIN.to_owned()]);
    register_defaults(builder.modules(), storage);
    register_im(builder.modules(), storage, opts);
    builder.build()
}

async fn env_with(opts: ImOptions) -> Env {
    let storage = Storage::memory();
    for user in ["juliet", "romeo", "nurse"] {
        storage
            .users
            .create_user(&NewUser {
                username: user.into(),
                domain: DOMAIN.into(),
                credentials: vec![],
            })
            .await
            .expect("create user");
    }
    Env {
        core: build(&storage, &opts),
        storage,
    }
}

async fn env() -> Env {
    env_with(ImOptions::default()).await
}

struct Client {
    handle: SessionHandle,
    rx: Receiver<Outbound>,
}

impl Client {
    fn jid(&self) -> &str {
        self.handle.jid().as_str()
    }

    /// Everything queued so far, stanzas only.
    fn take(&mut self) -> Vec<Element> {
        let mut out = Vec::new();
        while let Ok(o) = self.rx.try_recv() {
            if let Outbound::Stanza(s) = o {
                out.push(s.element.clone());
            }
        }
        out
    }

    /// The one stanza queued so far.
    fn one(&mut self) -> Element {
        let mut all = self.take();
        assert_eq!(
            all.len(),
            1,
            "expected one stanza, got {:?}",
            all.iter().map(Element::to_xml).collect::<Vec<_>>()
        );
        all.remove(0)
    }

    /// The next stanza, waiting for spawned tasks to produce it.
    async fn next(&mut self) -> Element {
        match tokio::time::timeout(Duration::from_secs(10), self.rx.recv()).await {
            Ok(Some(Outbound::Stanza(s))) => s.element.clone(),
            Ok(Some(Outbound::Close(e))) => panic!("session closed: {e}"),
            Ok(None) => panic!("inbox closed"),
            Err(_) => panic!("nothing arrived"),
        }
    }
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn connect_with_queue(env: &Env, jid: &str, queue: usize) -> Client {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (handle, rx) = SessionHandle::new(id, FullJid::parse(jid).expect("jid"), None, queue);
    assert!(matches!(
        env.core.registry.bind(handle.clone(), 10),
        causerie_core::BindOutcome::Bound
    ));
    env.core.session_bound(&handle);
    Client { handle, rx }
}

fn connect(env: &Env, jid: &str) -> Client {
    connect_with_queue(env, jid, 64)
}

/// Connected and available (the roster module normally records initial presence).
fn online(env: &Env, jid: &str, priority: i8) -> Client {
    let c = connect(env, jid);
    c.handle.info.set_presence(true, priority);
    c
}

async fn send(env: &Env, from: &Client, mut el: Element) {
    el.set_attr("from", from.jid());
    env.core
        .process(&Origin::Session(from.handle.clone()), el)
        .await
        .expect("no stream error");
}

/// Lets spawned tasks (blocklist loads, logout records, offline delivery) run.
async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

fn iq(kind: &str, to: Option<&str>, payload: Element) -> Element {
    let mut el = Element::new("iq", ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("id", "q1")
        .with_child(payload);
    if let Some(to) = to {
        el.set_attr("to", to);
    }
    el
}

fn message(to: &str, body: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_child(Element::new("body", ns::CLIENT).with_text(body))
}

fn body(el: &Element) -> String {
    el.get_child("body", el.ns())
        .map(|b| b.text())
        .unwrap_or_default()
}

fn error_condition(el: &Element) -> Option<String> {
    assert_eq!(el.attr("type"), Some("error"), "{}", el.to_xml());
    let err = el.get_child("error", ns::CLIENT)?;
    err.children()
        .find(|c| c.ns() == ns::STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

fn result_payload(el: &Element) -> Option<&Element> {
    assert_eq!(el.attr("type"), Some("result"), "{}", el.to_xml());
    el.children().next()
}

// --- XEP-0092 -------------------------------------------------------------------------------

fn version_query() -> Element {
    iq(
        "get",
        Some(DOMAIN),
        Element::new("query", "jabber:iq:version"),
    )
}

#[tokio::test]
async fn version_names_the_server() {
    let env = env().await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    send(&env, &j, version_query()).await;
    let reply = j.one();
    let q = result_payload(&reply).expect("query");
    assert_eq!(
        q.get_child("name", "jabber:iq:version")
            .map(|e| e.text())
            .as_deref(),
        Some("Causerie")
    );
    assert_eq!(
        q.get_child("version", "jabber:iq:version")
            .map(|e| e.text())
            .as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(!q.has_child("os", "jabber:iq:version"));
    assert!(
        env.core
            .features(IqTarget::Server)
            .contains(&"jabber:iq:version")
    );
}

#[tokio::test]
async fn version_shows_os_only_when_enabled_and_can_be_hidden() {
    let env = env_with(ImOptions {
        version_show_os: true,
        ..ImOptions::default()
    })
    .await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    send(&env, &j, version_query()).await;
    let reply = j.one();
    assert!(
        result_payload(&reply)
            .expect("query")
            .has_child("os", "jabber:iq:version")
    );

    let env = env_with(ImOptions {
        hide_version: true,
        ..ImOptions::default()
    })
    .await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    send(&env, &j, version_query()).await;
    assert_eq!(
        error_condition(&j.one()).as_deref(),
        Some("service-unavailable")
    );
    assert!(
        !env.core
            .features(IqTarget::Server)
            .contains(&"jabber:iq:version")
    );
}

// --- XEP-0202 -------------------------------------------------------------------------------

#[tokio::test]
async fn time_is_utc_in_xep_0082_form() {
    let env = env().await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    send(
        &env,
        &j,
        iq("get", Some(DOMAIN), Element::new("time", "urn:xmpp:time")),
    )
    .await;
    let reply = j.one();
    let t = result_payload(&reply).expect("time");
    assert_eq!(
        t.get_child("tzo", "urn:xmpp:time")
            .map(|e| e.text())
            .as_deref(),
        Some("Z")
    );
    let utc = t
        .get_child("utc", "urn:xmpp:time")
        .map(|e| e.text())
        .unwrap_or_default();
    let b = utc.as_bytes();
    assert_eq!(b.len(), 20, "{utc}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{utc}"),
            10 => assert_eq!(*c, b'T', "{utc}"),
            13 | 16 => assert_eq!(*c, b':', "{utc}"),
            19 => assert_eq!(*c, b'Z', "{utc}"),
            _ => assert!(c.is_ascii_digit(), "{utc}"),
        }
    }
}

// --- XEP-0012 -------------------------------------------------------------------------------

fn last_query(to: Option<&str>) -> Element {
    iq("get", to, Element::new("query", "jabber:iq:last"))
}

fn seconds(reply: &Element) -> u64 {
    result_payload(reply)
        .and_then(|q| q.attr("seconds"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seconds in {}", reply.to_xml()))
}

#[tokio::test]
async fn last_activity_uptime_online_and_logout() {
    let env = env().await;
    let mut j = online(&env, "juliet@example.com/balcony", 0);
    send(&env, &j, last_query(Some(DOMAIN))).await;
    let _uptime = seconds(&j.one());

    // Owner, with an available resource: 0.
    send(&env, &j, last_query(None)).await;
    assert_eq!(seconds(&j.one()), 0);

    // Someone else: forbidden, online or not.
    let mut r = connect(&env, "romeo@example.com/orchard");
    send(&env, &r, last_query(Some("juliet@example.com"))).await;
    assert_eq!(error_condition(&r.one()).as_deref(), Some("forbidden"));

    // Never logged out and not available: nothing to tell.
    send(&env, &r, last_query(None)).await;
    assert_eq!(error_condition(&r.one()).as_deref(), Some("item-not-found"));

    // The last session ends: the logout time is recorded.
    env.core.session_ended(&j.handle);
    settle().await;
    let stored = env
        .storage
        .account_data
        .get("juliet", DOMAIN, "last")
        .await
        .expect("read");
    assert!(stored.is_some_and(|v| v.parse::<i64>().is_ok()));
    let mut j2 = connect(&env, "juliet@example.com/chamber");
    send(&env, &j2, last_query(None)).await;
    let _since_logout = seconds(&j2.one());
    // An account with another session left does not record a logout.
    let r2 = connect(&env, "romeo@example.com/garden");
    env.core.session_ended(&r2.handle);
    settle().await;
    assert_eq!(
        env.storage
            .account_data
            .get("romeo", DOMAIN, "last")
            .await
            .expect("read"),
        None
    );
    drop(r);
}

// --- XEP-0054 -------------------------------------------------------------------------------

fn vcard(fn_text: &str) -> Element {
    Element::new("vCard", "vcard-temp")
        .with_child(Element::new("FN", "vcard-temp").with_text(fn_text))
        .with_child(Element::new("NICKNAME", "vcard-temp").with_text("jc"))
}

#[tokio::test]
async fn vcard_set_get_and_errors() {
    let env = env_with(ImOptions {
        max_vcard_bytes: 2000,
        ..ImOptions::default()
    })
    .await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    let mut r = connect(&env, "romeo@example.com/orchard");

    // Own, none yet: an empty vCard (§3.1).
    send(
        &env,
        &j,
        iq("get", None, Element::new("vCard", "vcard-temp")),
    )
    .await;
    let reply = j.one();
    let card = result_payload(&reply).expect("vCard");
    assert!(card.is("vCard", "vcard-temp") && card.children().next().is_none());

    // Someone else's, none: an error, the same as for an account that does not exist (§3.3).
    send(
        &env,
        &r,
        iq(
            "get",
            Some("juliet@example.com"),
            Element::new("vCard", "vcard-temp"),
        ),
    )
    .await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );
    send(
        &env,
        &r,
        iq(
            "get",
            Some("nobody@example.com"),
            Element::new("vCard", "vcard-temp"),
        ),
    )
    .await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );

    send(&env, &j, iq("set", None, vcard("Juliet Capulet"))).await;
    assert_eq!(j.one().attr("type"), Some("result"));
    send(
        &env,
        &j,
        iq("get", None, Element::new("vCard", "vcard-temp")),
    )
    .await;
    assert_eq!(result_payload(&j.one()), Some(&vcard("Juliet Capulet")));
    send(
        &env,
        &r,
        iq(
            "get",
            Some("juliet@example.com"),
            Element::new("vCard", "vcard-temp"),
        ),
    )
    .await;
    let reply = r.one();
    assert_eq!(reply.attr("from"), Some("juliet@example.com"));
    assert_eq!(result_payload(&reply), Some(&vcard("Juliet Capulet")));

    // Only the owner writes.
    send(
        &env,
        &r,
        iq("set", Some("juliet@example.com"), vcard("Romeo was here")),
    )
    .await;
    assert_eq!(error_condition(&r.one()).as_deref(), Some("forbidden"));

    // Too large.
    send(&env, &j, iq("set", None, vcard(&"x".repeat(3000)))).await;
    assert_eq!(error_condition(&j.one()).as_deref(), Some("not-acceptable"));
    send(
        &env,
        &j,
        iq("get", None, Element::new("vCard", "vcard-temp")),
    )
    .await;
    assert_eq!(result_payload(&j.one()), Some(&vcard("Juliet Capulet")));
}

// --- XEP-0049 -------------------------------------------------------------------------------

fn private(children: Vec<Element>) -> Element {
    let mut q = Element::new("query", "jabber:iq:private");
    for c in children {
        q.push_child(c);
    }
    q
}

#[tokio::test]
async fn private_storage_per_namespace() {
    let env = env_with(ImOptions {
        max_private_bytes: 1500,
        ..ImOptions::default()
    })
    .await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    let mut r = connect(&env, "romeo@example.com/orchard");
    let bookmarks = Element::new("storage", "storage:bookmarks").with_child(
        Element::new("conference", "storage:bookmarks").with_attr("jid", "room@muc.example.com"),
    );
    let prefs = Element::new("prefs", "urn:example:prefs")
        .with_child(Element::new("theme", "urn:example:prefs").with_text("dark"));

    send(
        &env,
        &j,
        iq("set", None, private(vec![bookmarks.clone(), prefs.clone()])),
    )
    .await;
    assert_eq!(j.one().attr("type"), Some("result"));
    send(
        &env,
        &j,
        iq(
            "get",
            None,
            private(vec![Element::new("storage", "storage:bookmarks")]),
        ),
    )
    .await;
    assert_eq!(
        result_payload(&j.one()),
        Some(&private(vec![bookmarks.clone()]))
    );
    send(
        &env,
        &j,
        iq(
            "get",
            None,
            private(vec![Element::new("prefs", "urn:example:prefs")]),
        ),
    )
    .await;
    assert_eq!(result_payload(&j.one()), Some(&private(vec![prefs])));

    // Nothing stored: the element asked for, empty.
    send(
        &env,
        &j,
        iq(
            "get",
            None,
            private(vec![Element::new("other", "urn:example:none")]),
        ),
    )
    .await;
    assert_eq!(
        result_payload(&j.one()),
        Some(&private(vec![Element::new("other", "urn:example:none")]))
    );

    // Errors.
    for reserved in [ns::CLIENT, ns::SERVER, "jabber:iq:private"] {
        send(
            &env,
            &j,
            iq("set", None, private(vec![Element::new("x", reserved)])),
        )
        .await;
        assert_eq!(
            error_condition(&j.one()).as_deref(),
            Some("not-acceptable"),
            "{reserved}"
        );
    }
    send(&env, &j, iq("get", None, private(vec![]))).await;
    assert_eq!(error_condition(&j.one()).as_deref(), Some("not-acceptable"));
    send(
        &env,
        &j,
        iq(
            "get",
            None,
            private(vec![Element::new("a", "urn:a"), Element::new("b", "urn:b")]),
        ),
    )
    .await;
    assert_eq!(error_condition(&j.one()).as_deref(), Some("bad-request"));
    send(
        &env,
        &j,
        iq(
            "set",
            None,
            private(vec![
                Element::new("big", "urn:big").with_text("y".repeat(2000)),
            ]),
        ),
    )
    .await;
    assert_eq!(error_condition(&j.one()).as_deref(), Some("not-acceptable"));
    send(
        &env,
        &r,
        iq(
            "get",
            Some("juliet@example.com"),
            private(vec![Element::new("storage", "storage:bookmarks")]),
        ),
    )
    .await;
    assert_eq!(error_condition(&r.one()).as_deref(), Some("forbidden"));
    send(
        &env,
        &r,
        iq("set", Some("juliet@example.com"), private(vec![bookmarks])),
    )
    .await;
    assert_eq!(error_condition(&r.one()).as_deref(), Some("forbidden"));
}

// --- XEP-0191 -------------------------------------------------------------------------------

const BLOCKING: &str = "urn:xmpp:blocking";

fn block(jids: &[&str]) -> Element {
    items("block", jids)
}

fn unblock(jids: &[&str]) -> Element {
    items("unblock", jids)
}

fn items(name: &str, jids: &[&str]) -> Element {
    let mut el = Element::new(name, BLOCKING);
    for j in jids {
        el.push_child(Element::new("item", BLOCKING).with_attr("jid", *j));
    }
    el
}

fn listed(el: &Element) -> Vec<String> {
    el.children()
        .filter_map(|i| i.attr("jid"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn blocklist_commands_and_pushes() {
    let env = env().await;
    let mut j1 = online(&env, "juliet@example.com/balcony", 0);
    let mut j2 = online(&env, "juliet@example.com/chamber", 0);
    settle().await;

    send(
        &env,
        &j1,
        iq("get", None, Element::new("blocklist", BLOCKING)),
    )
    .await;
    assert!(listed(result_payload(&j1.one()).expect("blocklist")).is_empty());

    send(&env, &j1, iq("set", None, block(&[]))).await;
    assert_eq!(error_condition(&j1.one()).as_deref(), Some("bad-request"));
    send(&env, &j1, iq("set", None, block(&["not a jid@@"]))).await;
    assert_eq!(error_condition(&j1.one()).as_deref(), Some("bad-request"));
    send(
        &env,
        &j1,
        iq(
            "set",
            None,
            Element::new("block", BLOCKING).with_child(Element::new("item", BLOCKING)),
        ),
    )
    .await;
    assert_eq!(error_condition(&j1.one()).as_deref(), Some("bad-request"));

    // Only the session that asked for the blocklist gets pushes.
    send(
        &env,
        &j2,
        iq("set", None, block(&["Iago@Example.com", "evil.example"])),
    )
    .await;
    let got = j1.take();
    assert_eq!(got.len(), 1, "{got:?}");
    let push = got[0].get_child("block", BLOCKING).expect("block push");
    assert_eq!(got[0].attr("type"), Some("set"));
    assert_eq!(listed(push), ["iago@example.com", "evil.example"]);
    let got = j2.take();
    assert_eq!(got.len(), 1, "only the result: {got:?}");
    assert_eq!(got[0].attr("type"), Some("result"));

    send(
        &env,
        &j1,
        iq("get", None, Element::new("blocklist", BLOCKING)),
    )
    .await;
    assert_eq!(
        listed(result_payload(&j1.one()).expect("blocklist")),
        ["iago@example.com", "evil.example"]
    );

    send(&env, &j2, iq("set", None, unblock(&["evil.example"]))).await;
    assert_eq!(j2.one().attr("type"), Some("result"));
    assert_eq!(
        listed(
            j1.one()
                .get_child("unblock", BLOCKING)
                .expect("unblock push")
        ),
        ["evil.example"]
    );

    // Unblock all: an empty push.
    send(&env, &j2, iq("set", None, unblock(&[]))).await;
    assert_eq!(j2.one().attr("type"), Some("result"));
    let push = j1.one();
    assert!(
        push.get_child("unblock", BLOCKING)
            .is_some_and(|u| u.children().next().is_none())
    );
    assert!(
        env.storage
            .blocking
            .blocklist("juliet", DOMAIN)
            .await
            .expect("read")
            .is_empty()
    );

    // Someone else's blocklist is not theirs to change.
    send(
        &env,
        &j1,
        iq("set", Some("romeo@example.com"), block(&["x@y"])),
    )
    .await;
    assert_eq!(error_condition(&j1.one()).as_deref(), Some("forbidden"));
}

#[tokio::test]
async fn blocklist_has_a_size_limit() {
    let env = env_with(ImOptions {
        max_blocklist_items: 2,
        ..ImOptions::default()
    })
    .await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    send(
        &env,
        &j,
        iq("set", None, block(&["a@x.example", "b@x.example"])),
    )
    .await;
    assert_eq!(j.one().attr("type"), Some("result"));
    send(&env, &j, iq("set", None, block(&["a@x.example"]))).await;
    assert_eq!(j.one().attr("type"), Some("result"));
    send(&env, &j, iq("set", None, block(&["c@x.example"]))).await;
    assert_eq!(
        error_condition(&j.one()).as_deref(),
        Some("policy-violation")
    );
}

#[tokio::test]
async fn blocked_contact_reaches_nothing_until_unblocked() {
    let env = env().await;
    let mut j = online(&env, "juliet@example.com/balcony", 0);
    let mut r = online(&env, "romeo@example.com/orchard", 0);
    settle().await;
    // romeo receives juliet's presence (RFC 6121 `both`), so blocking him is visible to him.
    env.storage
        .roster
        .put_item(
            "juliet",
            "example.com",
            &causerie_storage::RosterItem {
                jid: "romeo@example.com".into(),
                name: None,
                subscription: causerie_storage::Subscription::Both,
                pending_out: false,
                pending_in: false,
                approved: false,
                groups: vec![],
            },
        )
        .await
        .expect("roster item");

    send(&env, &j, iq("set", None, block(&["romeo@example.com"]))).await;
    assert_eq!(j.one().attr("type"), Some("result"));
    // §3.3: the blocked contact sees the user go offline.
    let p = r.one();
    assert_eq!(
        (p.name(), p.attr("type"), p.attr("from")),
        (
            "presence",
            Some("unavailable"),
            Some("juliet@example.com/balcony")
        )
    );

    // Messages: an error to the sender, nothing to the user.
    send(&env, &r, message("juliet@example.com", "hello?")).await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );
    send(&env, &r, message("juliet@example.com/balcony", "hello?")).await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );
    // Presence: nothing at all, not even an error.
    send(
        &env,
        &r,
        Element::new("presence", ns::CLIENT).with_attr("to", "juliet@example.com"),
    )
    .await;
    send(
        &env,
        &r,
        Element::new("presence", ns::CLIENT)
            .with_attr("to", "juliet@example.com")
            .with_attr("type", "subscribe"),
    )
    .await;
    assert!(r.take().is_empty());
    // Presence the server hands over on the contact's behalf is filtered on delivery too.
    env.core.send_local_or_remote(
        Element::new("presence", ns::CLIENT)
            .with_attr("from", "romeo@example.com/orchard")
            .with_attr("to", "juliet@example.com/balcony"),
    );
    // IQ requests: service-unavailable; responses: dropped.
    send(
        &env,
        &r,
        iq(
            "get",
            Some("juliet@example.com"),
            Element::new("vCard", "vcard-temp"),
        ),
    )
    .await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );
    send(
        &env,
        &r,
        iq(
            "get",
            Some("juliet@example.com/balcony"),
            Element::new("query", "jabber:iq:version"),
        ),
    )
    .await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );
    send(
        &env,
        &r,
        Element::new("iq", ns::CLIENT)
            .with_attr("type", "result")
            .with_attr("id", "x")
            .with_attr("to", "juliet@example.com/balcony"),
    )
    .await;
    assert!(r.take().is_empty());
    assert!(
        j.take().is_empty(),
        "the user got something from a blocked contact"
    );

    // The user writing to the blocked contact: not-acceptable with <blocked/>.
    send(&env, &j, message("romeo@example.com", "go away")).await;
    let err = j.one();
    assert_eq!(error_condition(&err).as_deref(), Some("not-acceptable"));
    let e = err.get_child("error", ns::CLIENT).expect("error");
    assert!(e.has_child("blocked", "urn:xmpp:blocking:errors"));
    assert_eq!(e.attr("type"), Some("cancel"));
    assert!(r.take().is_empty());
    // The server and the user's own account stay reachable.
    send(
        &env,
        &j,
        iq("get", Some(DOMAIN), Element::new("ping", ns::PING)),
    )
    .await;
    assert_eq!(j.one().attr("type"), Some("result"));

    // Unblocked: everything flows again.
    send(&env, &j, iq("set", None, unblock(&["romeo@example.com"]))).await;
    assert_eq!(j.one().attr("type"), Some("result"));
    send(&env, &r, message("juliet@example.com", "better?")).await;
    assert_eq!(body(&j.one()), "better?");
    send(
        &env,
        &r,
        Element::new("presence", ns::CLIENT).with_attr("to", "juliet@example.com"),
    )
    .await;
    assert_eq!(j.one().name(), "presence");
    send(&env, &j, message("romeo@example.com", "yes")).await;
    assert_eq!(body(&r.one()), "yes");
}

#[tokio::test]
async fn stored_blocklist_applies_from_login_and_covers_domains() {
    let env = env().await;
    env.storage
        .blocking
        .block(
            "juliet",
            DOMAIN,
            &["example.com/bot".to_owned(), "spam.example".to_owned()],
        )
        .await
        .expect("block");
    let mut j = online(&env, "juliet@example.com/balcony", 0);
    let mut r = online(&env, "romeo@example.com/orchard", 0);
    settle().await;

    env.core.send_local_or_remote(
        message("juliet@example.com/balcony", "from a subdomain")
            .with_attr("from", "x@news.spam.example/r"),
    );
    env.core.send_local_or_remote(
        message("juliet@example.com/balcony", "from the bot").with_attr("from", "example.com/bot"),
    );
    assert!(j.take().is_empty());
    send(&env, &r, message("juliet@example.com", "not blocked")).await;
    assert_eq!(body(&j.one()), "not blocked");

    // Once the last session ends the cache goes, and a message waits offline, unless blocked.
    env.core.session_ended(&j.handle);
    send(&env, &r, message("juliet@example.com", "later")).await;
    assert!(r.take().is_empty());
    env.core
        .process(
            &Origin::Remote {
                domain: "spam.example".into(),
            },
            message("juliet@example.com", "spam").with_attr("from", "a@spam.example/x"),
        )
        .await
        .expect("processed");
    assert_eq!(
        env.storage
            .offline
            .count("juliet", DOMAIN)
            .await
            .expect("count"),
        1
    );
}

// --- XEP-0280 -------------------------------------------------------------------------------

const CARBONS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";

fn carbon_inner<'a>(el: &'a Element, direction: &str) -> &'a Element {
    el.get_child(direction, CARBONS)
        .and_then(|d| d.get_child("forwarded", FORWARD))
        .and_then(|f| f.get_child("message", ns::CLIENT))
        .unwrap_or_else(|| panic!("no {direction} carbon in {}", el.to_xml()))
}

#[tokio::test]
async fn carbons_copy_sent_and_received_messages() {
    let env = env().await;
    let mut j1 = online(&env, "juliet@example.com/balcony", 1);
    let mut j2 = online(&env, "juliet@example.com/chamber", 0);
    let mut j3 = online(&env, "juliet@example.com/phone", 0);
    let mut r = online(&env, "romeo@example.com/orchard", 0);
    for c in [&j1, &j2] {
        send(&env, c, iq("set", None, Element::new("enable", CARBONS))).await;
    }
    assert_eq!(j1.one().attr("type"), Some("result"));
    assert_eq!(j2.one().attr("type"), Some("result"));
    assert!(j2.handle.info.flag(flags::CARBONS) && !j3.handle.info.flag(flags::CARBONS));
    assert!(env.core.features(IqTarget::Server).contains(&CARBONS));

    // Received: to the bare JID, the top-priority resource gets it, the other enabled one a copy.
    send(&env, &r, message("juliet@example.com", "hi")).await;
    assert_eq!(body(&j1.one()), "hi");
    let c = j2.one();
    assert_eq!(
        (c.attr("from"), c.attr("to")),
        (
            Some("juliet@example.com"),
            Some("juliet@example.com/chamber")
        )
    );
    let inner = carbon_inner(&c, "received");
    assert_eq!(
        (inner.attr("from"), body(inner).as_str()),
        (Some("romeo@example.com/orchard"), "hi")
    );
    assert!(j3.take().is_empty());

    // To a full JID: the other enabled resources get a copy.
    send(&env, &r, message("juliet@example.com/chamber", "psst")).await;
    assert_eq!(body(&j2.one()), "psst");
    assert_eq!(body(carbon_inner(&j1.one(), "received")), "psst");

    // Sent: the sender's other enabled resources get a copy, the sender none.
    send(&env, &j1, message("romeo@example.com", "hello")).await;
    assert_eq!(body(&r.one()), "hello");
    let c = j2.one();
    let inner = carbon_inner(&c, "sent");
    assert_eq!(
        (inner.attr("from"), inner.attr("to")),
        (
            Some("juliet@example.com/balcony"),
            Some("romeo@example.com")
        )
    );
    assert!(j1.take().is_empty() && j3.take().is_empty());

    // <private/> and <no-copy/>: no copies either way.
    for (marker, marker_ns) in [("private", CARBONS), ("no-copy", "urn:xmpp:hints")] {
        send(
            &env,
            &j1,
            message("romeo@example.com", "secret").with_child(Element::new(marker, marker_ns)),
        )
        .await;
        assert_eq!(body(&r.one()), "secret");
        send(
            &env,
            &r,
            message("juliet@example.com", "secret too").with_child(Element::new(marker, marker_ns)),
        )
        .await;
        assert_eq!(body(&j1.one()), "secret too");
        assert!(j2.take().is_empty(), "{marker}");
    }
    // Neither headlines nor carbons themselves are copied.
    send(
        &env,
        &r,
        message("juliet@example.com/balcony", "news").with_attr("type", "headline"),
    )
    .await;
    assert_eq!(body(&j1.one()), "news");
    let mut carbon = message("romeo@example.com", "");
    carbon.push_child(Element::new("sent", CARBONS));
    send(&env, &j1, carbon).await;
    assert!(j2.take().is_empty());
    r.take();

    // Disabled: no more copies.
    send(&env, &j2, iq("set", None, Element::new("disable", CARBONS))).await;
    assert_eq!(j2.one().attr("type"), Some("result"));
    send(&env, &r, message("juliet@example.com", "again")).await;
    assert_eq!(body(&j1.one()), "again");
    assert!(j2.take().is_empty());
}

// --- XEP-0352 -------------------------------------------------------------------------------

const CSI: &str = "urn:xmpp:csi:0";

fn presence_from(from: &str, to: &str, status: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_child(Element::new("status", ns::CLIENT).with_text(status))
}

fn status(el: &Element) -> String {
    el.get_child("status", ns::CLIENT)
        .map(|s| s.text())
        .unwrap_or_default()
}

#[tokio::test]
async fn csi_holds_presence_while_inactive() {
    let env = env().await;
    assert!(env.core.stream_features().iter().any(|f| f.is("csi", CSI)));
    let mut j = online(&env, "juliet@example.com/balcony", 0);
    let r = online(&env, "romeo@example.com/orchard", 0);

    assert_eq!(
        env.core
            .handle_nonza(&j.handle, &Element::new("inactive", CSI)),
        Ok(None)
    );
    assert!(j.handle.info.flag(flags::CSI_INACTIVE));
    let to = "juliet@example.com/balcony";
    env.core
        .send_local_or_remote(presence_from("romeo@example.com/orchard", to, "r1"));
    env.core
        .send_local_or_remote(presence_from("nurse@example.com/kitchen", to, "n1"));
    env.core
        .send_local_or_remote(presence_from("romeo@example.com/orchard", to, "r2"));
    // Subscription requests, messages and IQs are not held.
    env.core.send_local_or_remote(
        presence_from("romeo@example.com", to, "").with_attr("type", "subscribe"),
    );
    send(&env, &r, message(to, "still there?")).await;
    let now = j.take();
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now[0].attr("type"), Some("subscribe"));
    assert_eq!(body(&now[1]), "still there?");

    assert_eq!(
        env.core
            .handle_nonza(&j.handle, &Element::new("active", CSI)),
        Ok(None)
    );
    assert!(!j.handle.info.flag(flags::CSI_INACTIVE));
    let flushed: Vec<String> = j.take().iter().map(status).collect();
    // Only the latest per sender, in the order they were held.
    assert_eq!(flushed, ["n1", "r2"]);
    env.core
        .send_local_or_remote(presence_from("romeo@example.com/orchard", to, "r3"));
    assert_eq!(status(&j.one()), "r3");
}

#[tokio::test]
async fn csi_held_presence_is_bounded() {
    let env = env_with(ImOptions {
        csi_max_held_presences: 2,
        ..ImOptions::default()
    })
    .await;
    let mut j = online(&env, "juliet@example.com/balcony", 0);
    env.core
        .handle_nonza(&j.handle, &Element::new("inactive", CSI))
        .expect("inactive");
    let to = "juliet@example.com/balcony";
    for (i, from) in ["a@x.example/1", "b@x.example/1", "c@x.example/1"]
        .iter()
        .enumerate()
    {
        env.core
            .send_local_or_remote(presence_from(from, to, &format!("s{i}")));
    }
    // The third sender did not fit: what was held went out, the new one is held.
    assert_eq!(
        j.take().iter().map(status).collect::<Vec<_>>(),
        ["s0", "s1"]
    );
    env.core
        .handle_nonza(&j.handle, &Element::new("active", CSI))
        .expect("active");
    assert_eq!(j.take().iter().map(status).collect::<Vec<_>>(), ["s2"]);
}

// --- XEP-0160 -------------------------------------------------------------------------------

fn delay_stamp(el: &Element) -> Option<(String, String)> {
    let d = el.get_child("delay", "urn:xmpp:delay")?;
    Some((d.attr("from")?.to_owned(), d.attr("stamp")?.to_owned()))
}

#[tokio::test]
async fn offline_messages_are_stored_then_delivered_in_order_once() {
    let env = env().await;
    let mut r = online(&env, "romeo@example.com/orchard", 0);
    // More than one delivery burst, so that two deliveries would overlap if both ran.
    let texts: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    for text in &texts {
        send(&env, &r, message("juliet@example.com", text)).await;
    }
    // Chat states alone are not kept, and not refused either.
    send(
        &env,
        &r,
        Element::new("message", ns::CLIENT)
            .with_attr("to", "juliet@example.com")
            .with_attr("type", "chat")
            .with_child(Element::new(
                "composing",
                "http://jabber.org/protocol/chatstates",
            )),
    )
    .await;
    assert!(r.take().is_empty());
    assert_eq!(
        env.storage
            .offline
            .count("juliet", DOMAIN)
            .await
            .expect("count"),
        40
    );
    assert!(env.core.features(IqTarget::Server).contains(&"msgoffline"));

    // Two sessions become available at once: the messages go to one of them, once.
    let mut j1 = online(&env, "juliet@example.com/balcony", 0);
    let mut j2 = online(&env, "juliet@example.com/chamber", 0);
    env.core.emit(Event::SessionAvailable(&j1.handle));
    env.core.emit(Event::SessionAvailable(&j2.handle));
    let mut got = Vec::new();
    for _ in 0..40 {
        got.push(j1.next().await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle().await;
    assert!(j1.take().is_empty());
    assert!(j2.take().is_empty());
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), texts);
    for m in &got {
        assert_eq!(m.attr("from"), Some("romeo@example.com/orchard"));
        let (from, stamp) = delay_stamp(m).expect("delay");
        assert_eq!(from, DOMAIN);
        assert!(stamp.ends_with('Z') && stamp.len() == 20, "{stamp}");
    }
    assert_eq!(
        env.storage
            .offline
            .count("juliet", DOMAIN)
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn offline_quota_and_unknown_accounts() {
    let env = env_with(ImOptions {
        offline_quota: 2,
        ..ImOptions::default()
    })
    .await;
    let mut r = online(&env, "romeo@example.com/orchard", 0);
    send(&env, &r, message("juliet@example.com", "1")).await;
    send(&env, &r, message("juliet@example.com", "2")).await;
    assert!(r.take().is_empty());
    send(&env, &r, message("juliet@example.com", "3")).await;
    let err = r.one();
    assert_eq!(
        error_condition(&err).as_deref(),
        Some("service-unavailable")
    );
    let text = err
        .get_child("error", ns::CLIENT)
        .and_then(|e| e.get_child("text", ns::STANZAS))
        .map(|t| t.text());
    assert!(text.is_some_and(|t| t.contains("full")));

    send(&env, &r, message("nobody@example.com", "hello?")).await;
    assert_eq!(
        error_condition(&r.one()).as_deref(),
        Some("service-unavailable")
    );
    // Headlines are never stored nor bounced.
    send(
        &env,
        &r,
        message("juliet@example.com", "news").with_attr("type", "headline"),
    )
    .await;
    assert!(r.take().is_empty());
    assert_eq!(
        env.storage
            .offline
            .count("juliet", DOMAIN)
            .await
            .expect("count"),
        2
    );
}

#[tokio::test]
async fn offline_messages_survive_a_restart_and_a_failed_delivery() {
    let env = env().await;
    let r = online(&env, "romeo@example.com/orchard", 0);
    for text in ["a", "b", "c", "d"] {
        send(&env, &r, message("juliet@example.com", text)).await;
    }
    drop(r);
    // A new server on the same database.
    let core = build(&env.storage, &ImOptions::default());
    drop(env.core);
    let env = Env {
        core,
        storage: env.storage,
    };

    // An inbox of two: the third message does not fit, and stays stored with the fourth.
    let mut small = connect_with_queue(&env, "juliet@example.com/watch", 2);
    small.handle.info.set_presence(true, 0);
    env.core.emit(Event::SessionAvailable(&small.handle));
    settle().await;
    assert_eq!(
        small.take().iter().map(body).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        env.storage
            .offline
            .count("juliet", DOMAIN)
            .await
            .expect("count"),
        2
    );
    env.core.session_ended(&small.handle);

    // Negative priority: nothing delivered (XEP-0160 §3).
    let mut neg = online(&env, "juliet@example.com/hidden", -1);
    env.core.emit(Event::SessionAvailable(&neg.handle));
    settle().await;
    assert!(neg.take().is_empty());

    let mut j = online(&env, "juliet@example.com/balcony", 0);
    env.core.emit(Event::SessionAvailable(&j.handle));
    assert_eq!(body(&j.next().await), "c");
    assert_eq!(body(&j.next().await), "d");
    settle().await;
    assert_eq!(
        env.storage
            .offline
            .count("juliet", DOMAIN)
            .await
            .expect("count"),
        0
    );
}

// --- XEP-0199 server to client ---------------------------------------------------------------

#[tokio::test]
async fn server_pings_close_silent_sessions() {
    let storage = Storage::memory();
    let ping = Arc::new(ServerPing::new(Duration::from_secs(60)));
    let mut builder = CoreBuilder::new([DOMAIN.to_owned()]);
    register_defaults(builder.modules(), &storage);
    builder.modules().add_module(ping.clone());
    let env = Env {
        core: builder.build(),
        storage,
    };
    let mut j = connect(&env, "juliet@example.com/balcony");
    let mut r = connect(&env, "romeo@example.com/orchard");

    ping.round(&env.core);
    assert_eq!(ping.outstanding(), 2);
    let p = j.one();
    assert!(p.has_child("ping", ns::PING));
    assert_eq!(
        (p.attr("type"), p.attr("from")),
        (Some("get"), Some(DOMAIN))
    );
    r.one();
    // Juliet answers (an error counts too); the answer goes no further.
    let answer = Element::new("iq", ns::CLIENT)
        .with_attr("type", "error")
        .with_attr("to", DOMAIN)
        .with_attr("id", p.attr("id").unwrap_or_default());
    send(&env, &j, answer).await;
    assert_eq!(ping.outstanding(), 1);
    assert!(j.take().is_empty());

    // Next round: Romeo, silent, is closed; Juliet is pinged again.
    ping.round(&env.core);
    assert!(j.one().has_child("ping", ns::PING));
    match r.rx.try_recv() {
        Ok(Outbound::Close(e)) => assert_eq!(e.condition, StreamErrorCondition::ConnectionTimeout),
        other => panic!("expected a close, got {other:?}"),
    }
    env.core.session_ended(&r.handle);
    assert_eq!(ping.outstanding(), 1);
}

#[tokio::test(start_paused = true)]
async fn server_pings_run_periodically() {
    let env = env_with(ImOptions {
        server_ping_interval: Some(Duration::from_secs(300)),
        ..ImOptions::default()
    })
    .await;
    let mut j = connect(&env, "juliet@example.com/balcony");
    settle().await;
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(j.take().is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(j.next().await.has_child("ping", ns::PING));
    // No answer: closed at the next round.
    tokio::time::sleep(Duration::from_secs(300)).await;
    match tokio::time::timeout(Duration::from_secs(1), j.rx.recv()).await {
        Ok(Some(Outbound::Close(e))) => {
            assert_eq!(e.condition, StreamErrorCondition::ConnectionTimeout)
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

// --- XEP-0115 -------------------------------------------------------------------------------

#[tokio::test]
async fn caps_stream_feature_and_node_queries() {
    let env = env().await;
    // XEP-0115 §5.2, the simple example.
    let example = [causerie_core::Identity {
        category: "client".into(),
        kind: "pc".into(),
        name: Some("Exodus 0.9.1".into()),
    }];
    assert_eq!(
        Caps::verification_string(
            &example,
            [
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
                "http://jabber.org/protocol/caps",
            ],
            &[]
        ),
        "QgayPKawpkPSDYmwT/WM94uAlu0="
    );

    let c = env
        .core
        .stream_features()
        .iter()
        .find(|f| f.is("c", "http://jabber.org/protocol/caps"))
        .expect("caps feature");
    let ver = c.attr("ver").expect("ver").to_owned();
    assert_eq!(
        ver,
        Caps::verification_string(
            env.core.identities(),
            env.core.features(IqTarget::Server),
            env.core.disco_forms()
        )
    );
    assert_eq!(c.attr("hash"), Some("sha-1"));
    let node = format!("{}#{ver}", c.attr("node").expect("node"));

    let mut j = connect(&env, "juliet@example.com/balcony");
    send(
        &env,
        &j,
        iq("get", Some(DOMAIN), Element::new("query", ns::DISCO_INFO)),
    )
    .await;
    let plain = j.one();
    send(
        &env,
        &j,
        iq(
            "get",
            Some(DOMAIN),
            Element::new("query", ns::DISCO_INFO).with_attr("node", node.as_str()),
        ),
    )
    .await;
    let reply = j.one();
    let q = result_payload(&reply).expect("query");
    assert_eq!(q.attr("node"), Some(node.as_str()));
    let plain_q = result_payload(&plain).expect("query");
    assert_eq!(
        q.children().collect::<Vec<_>>(),
        plain_q.children().collect::<Vec<_>>()
    );
    // The answer hashes to the announced ver.
    let identities: Vec<causerie_core::Identity> = q
        .children()
        .filter(|c| c.name() == "identity")
        .map(|c| causerie_core::Identity {
            category: c.attr("category").unwrap_or_default().into(),
            kind: c.attr("type").unwrap_or_default().into(),
            name: c.attr("name").map(Into::into),
        })
        .collect();
    let features: Vec<&str> = q
        .children()
        .filter(|c| c.name() == "feature")
        .filter_map(|c| c.attr("var"))
        .collect();
    let forms: Vec<Element> = q
        .children()
        .filter(|c| c.is("x", "jabber:x:data"))
        .cloned()
        .collect();
    assert_eq!(
        Caps::verification_string(&identities, features, &forms),
        ver
    );

    send(
        &env,
        &j,
        iq(
            "get",
            Some(DOMAIN),
            Element::new("query", ns::DISCO_INFO)
                .with_attr("node", "https://causerie.invalid#wrong"),
        ),
    )
    .await;
    assert_eq!(error_condition(&j.one()).as_deref(), Some("item-not-found"));
}
