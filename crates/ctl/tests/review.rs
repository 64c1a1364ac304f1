//! `causeriectl review …` and `causeriectl user lock|unlock` as a compliance officer and an
//! administrator run them with the server stopped: the real binary, a configuration file,
//! SQLite, quarantined messages stored as the server's evidence writer stores them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use causerie_policy::compliance::evidence::{
    EvidenceFields, new_row, next_link, payload_hash, sign,
};
use causerie_storage::{AuditEvent, AuditFilter, StoredEvidence};
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("causerie.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[server]\ndomains = [\"localhost\", \"corp.example\"]\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .expect("config");
    Env { dir, config }
}

/// `causeriectl` run by the account `officer`, with `stdin` on its standard input.
fn ctl_in(env: &Env, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_causeriectl"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env("USER", "officer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run causeriectl");
    if let Some(mut sin) = child.stdin.take() {
        let _ = sin.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait")
}

fn ctl(env: &Env, args: &[&str]) -> Output {
    ctl_in(env, args, "")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn storage(e: &Env) -> causerie_storage::Storage {
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    block_on(causerie_storage::Storage::open(
        &format!("sqlite:{}", data.join("causerie.db").display()),
        &causerie_storage::StorageOptions::default(),
    ))
    .expect("open the database")
}

/// Stores records as the server does: a quarantined message (`held`) pending review with its
/// held copy, or a captured one.
fn append(e: &Env, records: &[(&str, &str, bool)]) -> Vec<StoredEvidence> {
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let key = causerie_policy::load_or_create(&data.join("policy.key")).expect("key");
    let st = storage(e);
    let mut last = block_on(st.evidence.last()).expect("last");
    let mut stored = Vec::new();
    for (user, body, held) in records {
        let stanza = format!(
            "<message xmlns='jabber:client' from='{user}@corp.example/laptop' \
             to='bob@partner.example' type='chat' id='m1'><body>{body}</body></message>"
        );
        let payload =
            serde_json::json!({ "stanza": stanza, "outcome": "it is held for review" }).to_string();
        let (seq, prev_hash) = next_link(last.as_ref());
        let signed = sign(
            EvidenceFields {
                seq,
                created_at: 1_740_787_200 + seq,
                rule_id: "hold".into(),
                category: "merger talk".into(),
                actions: if *held { "quarantine" } else { "capture" }.into(),
                username: (*user).into(),
                domain: "corp.example".into(),
                resource: "laptop".into(),
                peer: "bob@partner.example".into(),
                direction: "outgoing".into(),
                remote_addr: None,
                client: None,
                sealed: false,
                payload_hash: payload_hash(&payload),
                prev_hash,
            },
            &key,
        );
        let mut row = new_row(&signed, payload, held.then(|| "pending".to_owned()));
        row.held = held.then_some(stanza);
        let r = block_on(st.evidence.append(&row)).expect("append");
        stored.push(r.clone());
        last = Some(r);
    }
    block_on(st.close());
    stored
}

fn record(e: &Env, seq: i64) -> StoredEvidence {
    let st = storage(e);
    let r = block_on(st.evidence.get(seq))
        .expect("get")
        .expect("record");
    block_on(st.close());
    r
}

fn audit(e: &Env, prefix: &str) -> Vec<AuditEvent> {
    let st = storage(e);
    let events = block_on(st.audit.list(&AuditFilter {
        action_prefix: Some(prefix.to_owned()),
        ..AuditFilter::default()
    }))
    .expect("audit list");
    block_on(st.close());
    events
}

#[test]
fn the_queue_is_listed_shown_and_decided_once_with_every_step_audited() {
    let e = env();
    append(
        &e,
        &[
            ("alice", "the merger", true),
            ("carol", "just captured", false),
            ("dave", "merger numbers", true),
            ("erin", "merger date", true),
        ],
    );

    let o = ctl(&e, &["review", "list"]);
    assert!(o.status.success(), "{}", err(&o));
    let lines: Vec<String> = out(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("1 2025-03-01T00:00:01Z hold alice@corp.example/laptop outgoing bob@partner.example pending"), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("carol")), "{lines:?}");
    assert!(
        !out(&o).contains("merger"),
        "the list shows no message text"
    );

    let o = ctl(&e, &["review", "show", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("review: pending"), "{text}");
    assert!(
        text.contains(
            "held message:\n<message xmlns='jabber:client' from='alice@corp.example/laptop'"
        ) && text.contains("<body>the merger</body>"),
        "{text}"
    );
    let o = ctl(&e, &["review", "show", "2"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a captured record is not under review"
    );
    assert!(err(&o).contains("never held for review"), "{}", err(&o));
    let o = ctl(&e, &["review", "show", "9"]);
    assert_eq!(o.status.code(), Some(1));

    let o = ctl(
        &e,
        &[
            "review",
            "release",
            "1",
            "--reason",
            "no inside information",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o)
            .contains("record 1 released: the running server delivers it to bob@partner.example"),
        "{}",
        out(&o)
    );
    let r = record(&e, 1);
    assert_eq!(r.review.as_deref(), Some("released"));
    assert_eq!(r.reviewed_by.as_deref(), Some("causeriectl:officer"));
    assert_eq!(r.review_reason.as_deref(), Some("no inside information"));
    assert!(r.held.is_some(), "kept until the server delivers it");
    assert_eq!(r.handled_at, None);
    // Decided once.
    let o = ctl(&e, &["review", "reject", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("already released"), "{}", err(&o));
    let o = ctl(&e, &["review", "release", "2"]);
    assert_eq!(o.status.code(), Some(1));
    let o = ctl(&e, &["review", "reject", "3"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(record(&e, 3).review.as_deref(), Some("rejected"));

    // The pending queue has one message left; --all shows the decisions, not yet carried out.
    let o = ctl(&e, &["review", "list"]);
    assert_eq!(out(&o).lines().count(), 1, "{}", out(&o));
    assert!(out(&o).starts_with("4 "), "{}", out(&o));
    let o = ctl(&e, &["review", "list", "--all", "--json"]);
    let all: Value = serde_json::from_str(&out(&o)).expect("JSON");
    let states: Vec<(i64, &str, bool)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_i64().unwrap(),
                r["review"].as_str().unwrap(),
                r["handled_at"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (1, "released", true),
            (3, "rejected", true),
            (4, "pending", true)
        ]
    );
    let o = ctl(&e, &["review", "list", "--all"]);
    assert!(
        out(&o).contains("released,waiting for the server"),
        "{}",
        out(&o)
    );
    let o = ctl(&e, &["review", "list", "--user", "erin@corp.example"]);
    assert_eq!(out(&o).lines().count(), 1);

    let events = audit(&e, "compliance.review.");
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("compliance.review.list", ""),
            ("compliance.review.read", "1"),
            ("compliance.review.release", "1"),
            ("compliance.review.reject", "3"),
            ("compliance.review.list", ""),
            ("compliance.review.list", ""),
            ("compliance.review.list", ""),
            ("compliance.review.list", ""),
        ]
    );
    assert!(events.iter().all(|e| e.actor == "causeriectl:officer"));
    assert!(
        events[2].detail.contains("no inside information"),
        "{:?}",
        events[2]
    );
    assert!(
        events[0].detail.contains("3 message(s) pending review"),
        "{:?}",
        events[0]
    );
}

#[test]
fn bad_review_input_is_refused_with_code_2() {
    let e = env();
    for args in [
        vec!["review", "show", "0"],
        vec!["review", "release", "-3"],
        vec!["review", "list", "--user", "not a jid"],
        vec!["review", "list", "--since", "yesterday"],
    ] {
        let o = ctl(&e, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
    let long = "r".repeat(2000);
    let o = ctl(&e, &["review", "reject", "1", "--reason", &long]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let o = ctl(&e, &["review", "--help"]);
    assert!(o.status.success());
    for word in ["list", "show", "release", "reject"] {
        assert!(out(&o).contains(word), "{}", out(&o));
    }
}

#[test]
fn users_are_locked_and_unlocked_with_the_server_stopped() {
    let e = env();
    for user in ["alice@localhost", "bob@localhost"] {
        let o = ctl_in(&e, &["--offline", "user", "add", user], "s3cret\n");
        assert!(o.status.success(), "{}", err(&o));
    }
    let o = ctl(
        &e,
        &[
            "--offline",
            "user",
            "lock",
            "alice@localhost",
            "--minutes",
            "30",
            "--reason",
            "lost laptop",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with("alice@localhost locked until ") && out(&o).contains("lost laptop"),
        "{}",
        out(&o)
    );
    let st = storage(&e);
    let lock = block_on(st.users.user_lock("alice", "localhost"))
        .unwrap()
        .expect("locked");
    block_on(st.close());
    assert_eq!(lock.reason, "lost laptop");
    assert_eq!(lock.locked_by, "causeriectl:officer");
    assert_eq!(lock.until.map(|u| u - lock.locked_at), Some(1800));

    let o = ctl(&e, &["--offline", "user", "list"]);
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("alice@localhost (locked until ") && lines[0].contains("lost laptop"),
        "{text}"
    );
    assert_eq!(lines[1], "bob@localhost");
    let o = ctl(&e, &["--offline", "user", "show", "alice@localhost"]);
    assert!(out(&o).contains("lock: locked until "), "{}", out(&o));
    let o = ctl(&e, &["--offline", "user", "show", "bob@localhost"]);
    assert!(out(&o).contains("lock: none"), "{}", out(&o));
    let o = ctl(&e, &["--offline", "user", "list", "--json"]);
    let list: Value = serde_json::from_str(&out(&o)).expect("JSON");
    assert_eq!(list[0]["lock"]["holds"], true);
    assert!(list[1].get("lock").is_none(), "{list}");

    // Until unlocked.
    let o = ctl(
        &e,
        &["--offline", "user", "lock", "bob@localhost", "--json"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let done: Value = serde_json::from_str(&out(&o)).expect("JSON");
    assert!(done["lock"]["until"].is_null(), "{done}");

    for args in [
        vec![
            "--offline",
            "user",
            "lock",
            "alice@localhost",
            "--minutes",
            "0",
        ],
        vec!["--offline", "user", "lock", "alice@nowhere.example"],
        vec![
            "--offline",
            "user",
            "lock",
            "alice@localhost",
            "--minutes",
            "x",
        ],
    ] {
        let o = ctl(&e, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
    let o = ctl(&e, &["--offline", "user", "lock", "ghost@localhost"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));

    let o = ctl(&e, &["--offline", "user", "unlock", "alice@localhost"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "alice@localhost unlocked\n");
    let o = ctl(&e, &["--offline", "user", "unlock", "alice@localhost"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "alice@localhost was not locked\n");
    let st = storage(&e);
    assert_eq!(
        block_on(st.users.user_lock("alice", "localhost")).unwrap(),
        None
    );
    block_on(st.close());

    let events: Vec<(String, String, String)> = audit(&e, "user.")
        .into_iter()
        .filter(|e| e.action.contains("lock"))
        .map(|e| (e.action, e.subject, e.outcome))
        .collect();
    let ok = |a: &str, s: &str| (a.to_owned(), s.to_owned(), "ok".to_owned());
    assert_eq!(
        events,
        [
            ok("user.lock", "alice@localhost"),
            ok("user.lock", "bob@localhost"),
            (
                "user.lock".to_owned(),
                "alice@localhost".to_owned(),
                "refused".to_owned()
            ),
            (
                "user.lock".to_owned(),
                "alice@nowhere.example".to_owned(),
                "refused".to_owned()
            ),
            (
                "user.lock".to_owned(),
                "ghost@localhost".to_owned(),
                "refused".to_owned()
            ),
            ok("user.unlock", "alice@localhost"),
            ok("user.unlock", "alice@localhost"),
        ]
    );
}
