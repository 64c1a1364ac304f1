//! The registry's promises, on the in-memory store and a core without listeners.

use std::sync::Arc;

use causerie_config::Config;
use causerie_core::{CoreBuilder, Outbound, SessionHandle};
use causerie_jid::FullJid;
use causerie_stanza::StreamErrorCondition;
use causerie_storage::{AuditFilter, Storage};
use serde_json::json;
use tokio::sync::mpsc;

use crate::ops::announce::Announced;
use crate::ops::sessions::{Kicked, SessionEntry, SessionListing};
use crate::ops::stats::ServerStats;
use crate::ops::users::{UserDetails, UserEntry};
use crate::{Actor, Context, ErrorKind, Live, Permission, Registry};

fn config() -> Config {
    let mut c = Config::default();
    c.server.domains = vec!["localhost".into(), "corp.example".into()];
    // Fast derivation: the tests check the plumbing, not PBKDF2.
    c.auth.scram_iterations = 4096;
    c
}

fn admin() -> Actor {
    Actor::new("unix:ops", Some("unix:pid=42".into()), Permission::Admin)
}

async fn audit(storage: &Storage) -> Vec<causerie_storage::AuditEvent> {
    storage
        .audit
        .list(&AuditFilter::default())
        .await
        .expect("audit")
}

#[tokio::test]
async fn accounts_round_trip_and_every_change_is_audited() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let ctx = Context::offline(storage.clone(), config());
    let me = admin();
    let out = reg
        .execute(
            &ctx,
            &me,
            "user.add",
            json!({"jid": "Alice@localhost", "password": "s3cret"}),
        )
        .await
        .expect("add");
    assert_eq!(out, r#"{"jid":"alice@localhost"}"#);
    let e = reg
        .execute(
            &ctx,
            &me,
            "user.add",
            json!({"jid": "alice@localhost", "password": "x"}),
        )
        .await
        .expect_err("twice");
    assert_eq!(e.kind, ErrorKind::Exists);
    reg.execute(
        &ctx,
        &me,
        "user.passwd",
        json!({"jid": "alice@localhost", "password": "n3w"}),
    )
    .await
    .expect("passwd");
    let list: Vec<UserEntry> = serde_json::from_str(
        &reg.execute(&ctx, &me, "user.list", json!(null))
            .await
            .expect("list"),
    )
    .expect("decode");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].jid, "alice@localhost");
    let shown: UserDetails = serde_json::from_str(
        &reg.execute(&ctx, &me, "user.show", json!({"jid": "alice@localhost"}))
            .await
            .expect("show"),
    )
    .expect("decode");
    assert_eq!(shown.credentials.len(), 3, "{shown:?}");
    assert!(shown.credentials.iter().all(|c| c.iterations >= 4096));
    assert_eq!(shown.sessions, None, "no server, no session list");
    assert!(shown.created.ends_with('Z'));
    reg.execute(&ctx, &me, "user.remove", json!({"jid": "alice@localhost"}))
        .await
        .expect("remove");
    let e = reg
        .execute(&ctx, &me, "user.show", json!({"jid": "alice@localhost"}))
        .await
        .expect_err("gone");
    assert_eq!(e.kind, ErrorKind::NotFound);

    let events = audit(&storage).await;
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("user.add", "Alice@localhost", "ok"),
            ("user.add", "alice@localhost", "refused"),
            ("user.passwd", "alice@localhost", "ok"),
            ("user.remove", "alice@localhost", "ok"),
        ],
        "reads are not audited"
    );
    for e in &events {
        assert_eq!(e.actor, "unix:ops");
        assert_eq!(e.remote_addr.as_deref(), Some("unix:pid=42"));
        assert!(e.at > 1_600_000_000);
        for secret in ["s3cret", "n3w"] {
            assert!(!e.detail.contains(secret), "{e:?}");
        }
    }
    assert!(
        events[1].detail.contains("already exists"),
        "{:?}",
        events[1]
    );
}

#[tokio::test]
async fn refusals_come_before_the_work_and_are_audited_for_changes() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let ctx = Context::offline(storage.clone(), config());
    let reader = Actor::new(
        "token:monitor",
        Some("127.0.0.1:5000".into()),
        Permission::Read,
    );
    let e = reg
        .execute(
            &ctx,
            &reader,
            "user.add",
            json!({"jid": "bob@localhost", "password": "pw"}),
        )
        .await
        .expect_err("read only");
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(e.message.contains("admin permission"), "{}", e.message);
    // A refused read is not a change: nothing to audit.
    let e = reg
        .execute(&ctx, &reader, "audit.list", json!({}))
        .await
        .expect_err("audit is for admins");
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(
        reg.execute(&ctx, &reader, "user.list", json!({}))
            .await
            .is_ok()
    );

    let me = admin();
    for (name, args, kind) in [
        (
            "user.add",
            json!({"jid": "bob@localhost"}),
            ErrorKind::BadInput,
        ),
        (
            "user.add",
            json!({"jid": "bob@localhost", "password": "pw", "admin": true}),
            ErrorKind::BadInput,
        ),
        (
            "user.add",
            json!({"jid": "bob@elsewhere.example", "password": "pw"}),
            ErrorKind::BadInput,
        ),
        (
            "user.add",
            json!({"jid": "bob@localhost", "password": ""}),
            ErrorKind::BadInput,
        ),
        (
            "user.add",
            json!({"jid": "policy@localhost", "password": "pw"}),
            ErrorKind::BadInput,
        ),
        (
            "user.remove",
            json!({"jid": "ghost@localhost"}),
            ErrorKind::NotFound,
        ),
        (
            "session.kick",
            json!({"jid": "bob@localhost"}),
            ErrorKind::Unavailable,
        ),
        ("announce", json!({"text": "hello"}), ErrorKind::Unavailable),
        ("no.such.op", json!({}), ErrorKind::NotFound),
    ] {
        let e = reg
            .execute(&ctx, &me, name, args.clone())
            .await
            .expect_err(name);
        assert_eq!(e.kind, kind, "{name} {args}: {}", e.message);
    }
    for name in ["session.list", "session.show", "stats"] {
        let e = reg
            .execute(&ctx, &me, name, json!({}))
            .await
            .expect_err(name);
        assert_eq!(e.kind, ErrorKind::Unavailable, "{name}");
        assert!(e.message.contains("running server"), "{}", e.message);
    }
    let events = audit(&storage).await;
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("token:monitor", "user.add", "refused"),
            ("unix:ops", "user.add", "refused"),
            ("unix:ops", "user.add", "refused"),
            ("unix:ops", "user.add", "refused"),
            ("unix:ops", "user.add", "refused"),
            ("unix:ops", "user.add", "refused"),
            ("unix:ops", "user.remove", "refused"),
            ("unix:ops", "announce", "refused"),
        ],
        "{events:#?}"
    );
    assert_eq!(events[0].remote_addr.as_deref(), Some("127.0.0.1:5000"));
    assert!(
        storage
            .users
            .list_users(None)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn import_is_all_or_nothing_and_names_the_line() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let ctx = Context::offline(storage.clone(), config());
    let me = admin();
    let e = reg
        .execute(
            &ctx,
            &me,
            "user.import",
            json!({"file": "a.csv", "csv": "a@localhost,x\nb@localhost\n"}),
        )
        .await
        .expect_err("bad line");
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert_eq!(e.message, "a.csv:2: expected `jid,password`");
    let out = reg
        .execute(
            &ctx,
            &me,
            "user.import",
            json!({"file": "a.csv", "csv": "jid,password\na@localhost,x\nb@corp.example,y,z\n"}),
        )
        .await
        .expect("import");
    assert_eq!(out, r#"{"imported":2}"#);
    let events = audit(&storage).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1].detail,
        "2 account(s) created: a@localhost b@corp.example"
    );
    assert!(
        !events[1].detail.contains(",y"),
        "no password in the audit log"
    );
}

#[tokio::test]
async fn announce_to_all_offline_stores_a_delayed_message_per_account() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let mut cfg = config();
    cfg.im.offline_quota = 1;
    let ctx = Context::offline(storage.clone(), cfg);
    let me = admin();
    for jid in ["a@localhost", "b@corp.example"] {
        reg.execute(&ctx, &me, "user.add", json!({"jid": jid, "password": "pw"}))
            .await
            .expect("add");
    }
    let args = json!({"text": "Mail is down; use this chat.", "subject": "Outage", "to": "all"});
    let out: Announced = serde_json::from_str(
        &reg.execute(&ctx, &me, "announce", args.clone())
            .await
            .expect("announce"),
    )
    .expect("decode");
    assert_eq!((out.sessions, out.stored_offline, out.failed), (0, 2, 0));
    let kept = storage
        .offline
        .list("a", "localhost", 10)
        .await
        .expect("list");
    assert_eq!(kept.len(), 1);
    let xml = &kept[0].stanza;
    for needle in [
        "from='localhost'",
        "to='a@localhost'",
        "type='normal'",
        "<subject>Outage</subject>",
        "<body>Mail is down; use this chat.</body>",
        "urn:xmpp:delay",
    ] {
        assert!(xml.contains(needle), "{needle} in {xml}");
    }
    // The quota of one message is used: the second announcement cannot be kept.
    let out: Announced = serde_json::from_str(
        &reg.execute(&ctx, &me, "announce", args)
            .await
            .expect("announce"),
    )
    .expect("decode");
    assert_eq!((out.stored_offline, out.failed), (0, 2));
    assert!(out.failures[0].contains("full"), "{:?}", out.failures);
    let e = reg
        .execute(
            &ctx,
            &me,
            "announce",
            json!({"text": "bell\u{7}", "to": "all"}),
        )
        .await
        .expect_err("control character");
    assert_eq!(e.kind, ErrorKind::BadInput);
    let e = reg
        .execute(&ctx, &me, "announce", json!({"text": "  ", "to": "all"}))
        .await
        .expect_err("empty");
    assert_eq!(e.kind, ErrorKind::BadInput);
}

/// A core with bound sessions whose inboxes the test reads.
struct LiveServer {
    ctx: Context,
    storage: Storage,
    inboxes: Vec<(SessionHandle, mpsc::Receiver<Outbound>)>,
}

fn live_server(sessions: &[(&str, bool)]) -> LiveServer {
    let core = CoreBuilder::new(["localhost".to_owned()]).build();
    let mut inboxes = Vec::new();
    for (i, (jid, available)) in sessions.iter().enumerate() {
        let (h, rx) = SessionHandle::new(
            i as u64 + 1,
            FullJid::parse(jid).expect("jid"),
            Some("127.0.0.1:40000".parse().expect("addr")),
            8,
        );
        h.info.set_presence(*available, 0);
        assert!(matches!(
            core.registry.bind(h.clone(), 8),
            causerie_core::BindOutcome::Bound
        ));
        inboxes.push((h, rx));
    }
    let storage = Storage::memory();
    let live = Arc::new(Live::new(core, None));
    LiveServer {
        ctx: Context::live(storage.clone(), config(), live),
        storage,
        inboxes,
    }
}

fn next(rx: &mut mpsc::Receiver<Outbound>) -> Option<Outbound> {
    rx.try_recv().ok()
}

#[tokio::test]
async fn sessions_are_listed_shown_and_kicked_with_the_reason() {
    let reg = Registry::standard();
    let mut s = live_server(&[
        ("bob@localhost/phone", true),
        ("alice@localhost/desk", true),
        ("alice@localhost/laptop", false),
    ]);
    let me = admin();
    let listing: SessionListing = serde_json::from_str(
        &reg.execute(&s.ctx, &me, "session.list", json!({}))
            .await
            .expect("list"),
    )
    .expect("decode");
    let jids: Vec<&str> = listing.sessions.iter().map(|e| e.jid.as_str()).collect();
    assert_eq!(
        jids,
        [
            "alice@localhost/desk",
            "alice@localhost/laptop",
            "bob@localhost/phone"
        ]
    );
    let listing: SessionListing = serde_json::from_str(
        &reg.execute(
            &s.ctx,
            &me,
            "session.list",
            json!({"filter": "alice@localhost", "limit": 1}),
        )
        .await
        .expect("list"),
    )
    .expect("decode");
    assert_eq!((listing.total, listing.sessions.len()), (2, 1));
    let shown: SessionEntry = serde_json::from_str(
        &reg.execute(
            &s.ctx,
            &me,
            "session.show",
            json!({"jid": "bob@localhost/phone"}),
        )
        .await
        .expect("show"),
    )
    .expect("decode");
    assert_eq!(shown.peer.as_deref(), Some("127.0.0.1:40000"));
    assert!(shown.available);
    let e = reg
        .execute(&s.ctx, &me, "session.show", json!({"jid": "bob@localhost"}))
        .await
        .expect_err("bare");
    assert_eq!(e.kind, ErrorKind::BadInput);

    let kicked: Kicked = serde_json::from_str(
        &reg.execute(
            &s.ctx,
            &me,
            "session.kick",
            json!({"jid": "alice@localhost", "reason": "security update"}),
        )
        .await
        .expect("kick"),
    )
    .expect("decode");
    assert_eq!(
        kicked.closed,
        ["alice@localhost/desk", "alice@localhost/laptop"]
    );
    for (h, rx) in &mut s.inboxes {
        match (h.jid().as_str(), next(rx)) {
            ("bob@localhost/phone", got) => assert!(got.is_none(), "bob untouched"),
            (_, Some(Outbound::Close(e))) => {
                assert_eq!(e.condition, StreamErrorCondition::PolicyViolation);
                assert_eq!(e.text.as_deref(), Some("security update"));
            }
            (jid, other) => panic!("{jid}: {other:?}"),
        }
    }
    let e = reg
        .execute(
            &s.ctx,
            &me,
            "session.kick",
            json!({"jid": "carol@localhost"}),
        )
        .await
        .expect_err("nobody");
    assert_eq!(e.kind, ErrorKind::NotFound);
    let operator = Actor::new("token:desk", None, Permission::Operate);
    reg.execute(
        &s.ctx,
        &operator,
        "session.kick",
        json!({"jid": "bob@localhost/phone"}),
    )
    .await
    .expect("operators may kick");
    match next(&mut s.inboxes[0].1) {
        Some(Outbound::Close(e)) => {
            assert_eq!(
                e.text.as_deref(),
                Some(crate::ops::sessions::DEFAULT_REASON)
            )
        }
        other => panic!("{other:?}"),
    }
    let events = audit(&s.storage).await;
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("session.kick", "alice@localhost", "ok"),
            ("session.kick", "carol@localhost", "refused"),
            ("session.kick", "bob@localhost/phone", "ok"),
        ]
    );
    assert!(events[0].detail.contains("security update"));
}

#[tokio::test]
async fn announcements_reach_sessions_now_and_accounts_later() {
    let reg = Registry::standard();
    let mut s = live_server(&[
        ("alice@localhost/desk", true),
        ("bob@localhost/phone", false),
    ]);
    let me = admin();
    let out: Announced = serde_json::from_str(
        &reg.execute(&s.ctx, &me, "announce", json!({"text": "Fire drill at 3"}))
            .await
            .expect("announce"),
    )
    .expect("decode");
    assert_eq!((out.sessions, out.users_online), (2, 2));
    for (h, rx) in &mut s.inboxes {
        let Some(Outbound::Stanza(st)) = next(rx) else {
            panic!("{} got nothing", h.jid());
        };
        assert_eq!(st.element.attr("type"), Some("headline"));
        assert_eq!(st.element.attr("to"), Some(h.jid().as_str()));
        assert_eq!(st.element.attr("from"), Some("localhost"));
    }
    // To all: the available session now; bob (bound, not available) and carol (offline)
    // through offline storage, which this core does not have.
    for jid in ["alice@localhost", "bob@localhost", "carol@localhost"] {
        reg.execute(
            &s.ctx,
            &me,
            "user.add",
            json!({"jid": jid, "password": "pw"}),
        )
        .await
        .expect("add");
    }
    let out: Announced = serde_json::from_str(
        &reg.execute(
            &s.ctx,
            &me,
            "announce",
            json!({"text": "Back to normal", "to": "all"}),
        )
        .await
        .expect("announce"),
    )
    .expect("decode");
    assert_eq!(
        (
            out.sessions,
            out.users_online,
            out.stored_offline,
            out.failed
        ),
        (1, 1, 0, 2)
    );
    assert!(
        out.failures[0].starts_with("bob@localhost: "),
        "{:?}",
        out.failures
    );
    assert!(matches!(
        next(&mut s.inboxes[0].1),
        Some(Outbound::Stanza(_))
    ));
    assert!(next(&mut s.inboxes[1].1).is_none());

    let stats: ServerStats = serde_json::from_str(
        &reg.execute(&s.ctx, &me, "stats", json!({}))
            .await
            .expect("stats"),
    )
    .expect("decode");
    assert_eq!(
        (
            stats.c2s.sessions,
            stats.c2s.available,
            stats.c2s.accounts_online
        ),
        (2, 1, 2)
    );
    assert_eq!(stats.accounts, 3);
    assert!(stats.s2s.is_none());

    // Removing an account closes its sessions.
    reg.execute(
        &s.ctx,
        &me,
        "user.remove",
        json!({"jid": "alice@localhost"}),
    )
    .await
    .expect("remove");
    match next(&mut s.inboxes[0].1) {
        Some(Outbound::Close(e)) => assert_eq!(e.condition, StreamErrorCondition::NotAuthorized),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn audit_pages_follow_after_id() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let ctx = Context::offline(storage.clone(), config());
    let me = admin();
    for i in 0..5 {
        let _ = reg
            .execute(
                &ctx,
                &me,
                "user.remove",
                json!({"jid": format!("u{i}@localhost")}),
            )
            .await;
    }
    let page = |after: Option<i64>| {
        let reg = &reg;
        let ctx = &ctx;
        let me = &me;
        async move {
            let out = reg
                .execute(
                    ctx,
                    me,
                    "audit.list",
                    json!({"limit": 2, "after_id": after}),
                )
                .await
                .expect("list");
            serde_json::from_str::<Vec<crate::ops::audit::AuditEntry>>(&out).expect("decode")
        }
    };
    let first = page(None).await;
    let second = page(Some(first[1].id)).await;
    assert_eq!(first.len(), 2);
    assert_eq!(second[0].subject, "u2@localhost");
    assert!(first[0].time.ends_with('Z'));
    let e = reg
        .execute(&ctx, &me, "audit.list", json!({"limit": 1_000_000}))
        .await
        .expect_err("too many");
    assert_eq!(e.kind, ErrorKind::BadInput);
}

#[test]
fn the_catalogue_says_what_each_operation_needs() {
    let reg = Registry::standard();
    let names: Vec<String> = reg.list().into_iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        [
            "announce",
            "audit.list",
            "group.add",
            "group.create",
            "group.list",
            "group.remove",
            "group.remove-member",
            "group.show",
            "session.kick",
            "session.list",
            "session.show",
            "stats",
            "user.add",
            "user.import",
            "user.list",
            "user.lock",
            "user.passwd",
            "user.remove",
            "user.show",
            "user.unlock",
        ]
    );
    for info in reg.list() {
        let changes = matches!(
            info.name.as_str(),
            "announce"
                | "group.add"
                | "group.create"
                | "group.remove"
                | "group.remove-member"
                | "session.kick"
                | "user.add"
                | "user.import"
                | "user.lock"
                | "user.passwd"
                | "user.remove"
                | "user.unlock"
        );
        assert_eq!(info.mutates, changes, "{}", info.name);
        assert_eq!(
            info.needs_server,
            info.name.starts_with("session.") || info.name == "stats",
            "{}",
            info.name
        );
        if info.mutates {
            assert!(info.permission >= Permission::Operate, "{}", info.name);
        }
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_removed_account_leaves_its_groups() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let ctx = Context::offline(storage.clone(), config());
    let me = admin();
    reg.execute(
        &ctx,
        &me,
        "user.add",
        json!({"jid": "alice@localhost", "password": "pw"}),
    )
    .await
    .expect("account");
    for group in ["staff", "board", "empty"] {
        reg.execute(&ctx, &me, "group.create", json!({"name": group}))
            .await
            .expect("create");
    }
    for (group, members) in [
        (
            "staff",
            json!(["alice@localhost", "romeo@montague.example"]),
        ),
        ("board", json!(["alice@localhost"])),
    ] {
        reg.execute(
            &ctx,
            &me,
            "group.add",
            json!({"name": group, "members": members}),
        )
        .await
        .expect("add");
    }
    let removed: crate::ops::users::Removed = serde_json::from_str(
        &reg.execute(&ctx, &me, "user.remove", json!({"jid": "alice@localhost"}))
            .await
            .expect("remove"),
    )
    .expect("decode");
    assert_eq!(removed.groups_left, ["board", "staff"]);
    let members: Vec<(String, Vec<String>)> = storage
        .groups
        .groups()
        .await
        .expect("groups")
        .into_iter()
        .map(|g| (g.name, g.members))
        .collect();
    assert_eq!(
        members,
        [
            ("board".to_owned(), vec![]),
            ("empty".to_owned(), vec![]),
            (
                "staff".to_owned(),
                vec!["romeo@montague.example".to_owned()]
            ),
        ]
    );
    let audit = storage
        .audit
        .list(&AuditFilter::default())
        .await
        .expect("audit");
    let removal = audit
        .iter()
        .find(|e| e.action == "user.remove")
        .expect("audited");
    assert!(
        removal.detail.contains("left group(s) board, staff"),
        "{}",
        removal.detail
    );
}

#[tokio::test]
async fn shared_groups_are_created_filled_shown_and_audited() {
    let reg = Registry::standard();
    let storage = Storage::memory();
    let ctx = Context::offline(storage.clone(), config());
    let me = admin();
    for user in ["alice", "bob"] {
        reg.execute(
            &ctx,
            &me,
            "user.add",
            json!({"jid": format!("{user}@localhost"), "password": "pw"}),
        )
        .await
        .expect("account");
    }
    let out: serde_json::Value = serde_json::from_str(
        &reg.execute(
            &ctx,
            &me,
            "group.create",
            json!({"name": " staff ", "display_name": "Staff", "description": "Everyone"}),
        )
        .await
        .expect("create"),
    )
    .expect("json");
    assert_eq!(out, json!({"name": "staff", "applied_now": false}));
    let e = reg
        .execute(&ctx, &me, "group.create", json!({"name": "staff"}))
        .await
        .expect_err("twice");
    assert_eq!(e.kind, ErrorKind::Exists);

    let added: serde_json::Value = serde_json::from_str(
        &reg.execute(
            &ctx,
            &me,
            "group.add",
            json!({"name": "staff", "members": ["Alice@localhost", "bob@localhost", "romeo@Montague.example", "alice@localhost"]}),
        )
        .await
        .expect("add"),
    )
    .expect("json");
    assert_eq!(
        strings(&added["changed"]),
        ["alice@localhost", "bob@localhost", "romeo@montague.example"],
        "prepared, each once, in the order given"
    );
    assert!(strings(&added["unchanged"]).is_empty());
    assert_eq!(added["applied_now"], false, "offline: at the next start");
    let again: serde_json::Value = serde_json::from_str(
        &reg.execute(
            &ctx,
            &me,
            "group.add",
            json!({"name": "staff", "members": ["bob@localhost"]}),
        )
        .await
        .expect("add again"),
    )
    .expect("json");
    assert!(strings(&again["changed"]).is_empty());
    assert_eq!(strings(&again["unchanged"]), ["bob@localhost"]);

    let shown: crate::ops::groups::GroupDetails = serde_json::from_str(
        &reg.execute(&ctx, &me, "group.show", json!({"name": "staff"}))
            .await
            .expect("show"),
    )
    .expect("decode");
    assert_eq!(shown.label, "Staff");
    assert_eq!(shown.description.as_deref(), Some("Everyone"));
    let members: Vec<(&str, bool, Option<bool>)> = shown
        .members
        .iter()
        .map(|m| (m.jid.as_str(), m.local, m.account))
        .collect();
    assert_eq!(
        members,
        [
            ("alice@localhost", true, Some(true)),
            ("bob@localhost", true, Some(true)),
            ("romeo@montague.example", false, None),
        ]
    );
    // An account gone some other way than user.remove (which also ends its memberships,
    // `a_removed_account_leaves_its_groups`) is shown as a member without its account.
    storage
        .users
        .remove_user("bob", "localhost")
        .await
        .expect("remove account");
    let shown: crate::ops::groups::GroupDetails = serde_json::from_str(
        &reg.execute(&ctx, &me, "group.show", json!({"name": "staff"}))
            .await
            .expect("show"),
    )
    .expect("decode");
    assert_eq!(shown.members[1].account, Some(false));

    let removed: serde_json::Value = serde_json::from_str(
        &reg.execute(
            &ctx,
            &me,
            "group.remove-member",
            json!({"name": "staff", "members": ["BOB@localhost", "nobody@localhost"]}),
        )
        .await
        .expect("remove member"),
    )
    .expect("json");
    assert_eq!(strings(&removed["changed"]), ["bob@localhost"]);
    assert_eq!(strings(&removed["unchanged"]), ["nobody@localhost"]);

    let list: Vec<crate::ops::groups::GroupEntry> = serde_json::from_str(
        &reg.execute(&ctx, &me, "group.list", json!({}))
            .await
            .expect("list"),
    )
    .expect("decode");
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), list[0].members), ("staff", 2));
    assert!(list[0].created.ends_with('Z'));

    for (name, args, kind) in [
        ("group.create", json!({"name": "  "}), ErrorKind::BadInput),
        (
            "group.create",
            json!({"name": "x", "display_name": ""}),
            ErrorKind::BadInput,
        ),
        (
            "group.create",
            json!({"name": "bell\u{7}"}),
            ErrorKind::BadInput,
        ),
        (
            "group.add",
            json!({"name": "nope", "members": ["alice@localhost"]}),
            ErrorKind::NotFound,
        ),
        (
            "group.add",
            json!({"name": "staff", "members": []}),
            ErrorKind::BadInput,
        ),
        (
            "group.add",
            json!({"name": "staff", "members": ["localhost"]}),
            ErrorKind::BadInput,
        ),
        (
            "group.add",
            json!({"name": "staff", "members": ["alice@localhost/phone"]}),
            ErrorKind::BadInput,
        ),
        (
            "group.add",
            json!({"name": "staff", "members": ["ghost@localhost"]}),
            ErrorKind::NotFound,
        ),
        ("group.show", json!({"name": "nope"}), ErrorKind::NotFound),
        ("group.remove", json!({"name": "nope"}), ErrorKind::NotFound),
    ] {
        let e = reg
            .execute(&ctx, &me, name, args.clone())
            .await
            .expect_err("refused");
        assert_eq!(e.kind, kind, "{name} {args}: {}", e.message);
    }
    let reader = Actor::new("token:monitor", None, Permission::Read);
    assert!(
        reg.execute(&ctx, &reader, "group.list", json!({}))
            .await
            .is_ok()
    );
    let e = reg
        .execute(&ctx, &reader, "group.create", json!({"name": "x"}))
        .await
        .expect_err("read only");
    assert_eq!(e.kind, ErrorKind::Forbidden);

    reg.execute(&ctx, &me, "group.remove", json!({"name": "staff"}))
        .await
        .expect("remove group");
    assert!(storage.groups.groups().await.expect("groups").is_empty());

    let groups: Vec<(String, String, String)> = audit(&storage)
        .await
        .into_iter()
        .filter(|e| e.action.starts_with("group."))
        .map(|e| (e.action, e.subject, e.outcome))
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("group.create", " staff ", "ok"),
        ("group.create", "staff", "refused"),
        ("group.add", "staff", "ok"),
        ("group.add", "staff", "ok"),
        ("group.remove-member", "staff", "ok"),
        ("group.create", "  ", "refused"),
        ("group.create", "x", "refused"),
        ("group.create", "bell\u{7}", "refused"),
        ("group.add", "nope", "refused"),
        ("group.add", "staff", "refused"),
        ("group.add", "staff", "refused"),
        ("group.add", "staff", "refused"),
        ("group.add", "staff", "refused"),
        ("group.remove", "nope", "refused"),
        ("group.create", "", "refused"),
        ("group.remove", "staff", "ok"),
    ]
    .iter()
    .map(|(a, s, o)| (a.to_string(), s.to_string(), o.to_string()))
    .collect();
    assert_eq!(groups, expected);
}

/// Counts the reloads of the shared groups a running server is asked for.
#[derive(Default)]
struct GroupReloads(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl causerie_core::Reload for GroupReloads {
    fn topic(&self) -> &'static str {
        causerie_storage::groups::RELOAD_TOPIC
    }

    async fn reload(&self, _core: &Arc<causerie_core::Core>) -> Result<(), String> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

struct ReloadModule(Arc<GroupReloads>);

impl causerie_core::Module for ReloadModule {
    fn name(&self) -> &'static str {
        "reload-counter"
    }

    fn register(self: Arc<Self>, reg: &mut causerie_core::ModuleRegistry) {
        reg.reload(self.0.clone());
    }
}

#[tokio::test]
async fn group_changes_reload_the_running_server() {
    let reloads = Arc::new(GroupReloads::default());
    let mut builder = CoreBuilder::new(["localhost".to_owned()]);
    builder
        .modules()
        .add_module(Arc::new(ReloadModule(reloads.clone())));
    let core = builder.build();
    let storage = Storage::memory();
    let ctx = Context::live(storage.clone(), config(), Arc::new(Live::new(core, None)));
    let reg = Registry::standard();
    let me = admin();
    let count = || reloads.0.load(std::sync::atomic::Ordering::SeqCst);
    reg.execute(
        &ctx,
        &me,
        "user.add",
        json!({"jid": "alice@localhost", "password": "pw"}),
    )
    .await
    .expect("account");
    let out = reg
        .execute(&ctx, &me, "group.create", json!({"name": "staff"}))
        .await
        .expect("create");
    assert_eq!(out, r#"{"name":"staff","applied_now":true}"#);
    assert_eq!(count(), 0, "an empty group changes no roster");
    let add = json!({"name": "staff", "members": ["alice@localhost", "juliet@capulet.example"]});
    let out: serde_json::Value = serde_json::from_str(
        &reg.execute(&ctx, &me, "group.add", add.clone())
            .await
            .expect("add"),
    )
    .expect("json");
    assert_eq!(out["applied_now"], true);
    assert_eq!(count(), 1);
    reg.execute(&ctx, &me, "group.add", add)
        .await
        .expect("add again");
    assert_eq!(count(), 1, "nothing changed, nothing to reload");
    reg.execute(
        &ctx,
        &me,
        "group.remove-member",
        json!({"name": "staff", "members": ["juliet@capulet.example"]}),
    )
    .await
    .expect("remove member");
    assert_eq!(count(), 2);
    reg.execute(&ctx, &me, "group.remove", json!({"name": "staff"}))
        .await
        .expect("remove");
    assert_eq!(count(), 3);
}
