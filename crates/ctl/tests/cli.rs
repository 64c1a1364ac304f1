//! `causeriectl user …` as an administrator runs it: the real binary, a configuration file, SQLite.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

fn ctl(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_causeriectl"));
    cmd.arg("--config").arg(&env.config).args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(mut sin) = child.stdin.take() {
        let _ = sin.write_all(stdin.unwrap_or("").as_bytes());
    }
    child.wait_with_output().expect("wait")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn add_list_passwd_remove() {
    let e = env();
    let o = ctl(&e, &["user", "add", "Alice@localhost"], Some("s3cret\n"));
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("alice@localhost"));
    let o = ctl(&e, &["user", "add", "alice@localhost"], Some("again\n"));
    assert_eq!(o.status.code(), Some(1), "duplicate: {}", err(&o));
    assert!(err(&o).contains("already exists"), "{}", err(&o));
    let o = ctl(&e, &["user", "add", "bob@corp.example"], Some("pw\n"));
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl(&e, &["user", "list"], None);
    assert_eq!(out(&o), "bob@corp.example\nalice@localhost\n");
    let o = ctl(
        &e,
        &["user", "list", "--domain", "localhost", "--json"],
        None,
    );
    assert!(
        out(&o).starts_with("[{\"jid\":\"alice@localhost\",\"created_at\":"),
        "{}",
        out(&o)
    );
    let o = ctl(&e, &["user", "passwd", "alice@localhost"], Some("n3w\n"));
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl(&e, &["user", "passwd", "ghost@localhost"], Some("n3w\n"));
    assert_eq!(o.status.code(), Some(1));
    let o = ctl(&e, &["user", "remove", "alice@localhost"], None);
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl(&e, &["user", "remove", "alice@localhost"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no such user"), "{}", err(&o));
}

#[test]
fn bad_input_gets_clear_errors_and_code_2() {
    let e = env();
    for (args, stdin, needle) in [
        (
            &["user", "add", "not a jid@localhost"][..],
            "pw\n",
            "invalid JID",
        ),
        (
            &["user", "add", "alice@elsewhere.example"],
            "pw\n",
            "not a hosted domain",
        ),
        (&["user", "add", "localhost"], "pw\n", "local part"),
        (&["user", "add", "carol@localhost"], "\n", "empty"),
        (
            &["user", "add", "Policy@localhost"],
            "pw\n",
            "usage-policy address",
        ),
    ] {
        let o = ctl(&e, args, Some(stdin));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(needle), "{args:?}: {}", err(&o));
    }
    let o = ctl(&e, &["user", "list"], None);
    assert_eq!(out(&o), "", "nothing was created");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn import_is_all_or_nothing() {
    let e = env();
    let bad = write(
        e.dir.path(),
        "bad.csv",
        "jid,password\na@localhost,x\nb@localhost\nc@localhost,z\n",
    );
    let o = ctl(&e, &["user", "import", bad.to_str().expect("utf8")], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("bad.csv:3:"), "{}", err(&o));
    assert_eq!(out(&ctl(&e, &["user", "list"], None)), "");

    let o = ctl(&e, &["user", "add", "c@localhost"], Some("pw\n"));
    assert!(o.status.success());
    let clash = write(e.dir.path(), "clash.csv", "a@localhost,x\nc@localhost,z\n");
    let o = ctl(&e, &["user", "import", clash.to_str().expect("utf8")], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(
        out(&ctl(&e, &["user", "list"], None)),
        "c@localhost\n",
        "nothing half-imported"
    );

    let mut csv = String::from("jid,password\n");
    for i in 0..300 {
        csv.push_str(&format!("user{i}@localhost,pw{i}\n"));
    }
    let good = write(e.dir.path(), "good.csv", &csv);
    let o = ctl(&e, &["user", "import", good.to_str().expect("utf8")], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&ctl(&e, &["user", "list"], None)).lines().count(), 301);
}

#[test]
fn bad_config_is_refused_with_the_line() {
    let e = env();
    std::fs::write(
        &e.config,
        "[server]\ndomains = [\"localhost\"]\n\n[c2s]\nsend_queue_len = 0\n",
    )
    .expect("write");
    let o = ctl(&e, &["user", "list"], None);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        err(&o).contains(":5:") && err(&o).contains("c2s.send_queue_len"),
        "{}",
        err(&o)
    );
}

// ---- federation and audit ----------------------------------------------------------------

/// `ctl` with `USER` set (or removed) in the child's environment.
fn ctl_as(env: &Env, user: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_causeriectl"));
    cmd.arg("--config").arg(&env.config).args(args);
    match user {
        Some(u) => cmd.env("USER", u),
        None => cmd.env_remove("USER"),
    };
    cmd.stdin(Stdio::null()).output().expect("run causeriectl")
}

/// The database `env()`'s configuration points at (the default SQLite file in the data folder).
fn storage(env: &Env) -> causerie_storage::Storage {
    let data = env.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let url = format!("sqlite:{}", data.join("causerie.db").display());
    block_on(causerie_storage::Storage::open(
        &url,
        &causerie_storage::StorageOptions::default(),
    ))
    .expect("open the database")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// RFC 3339 in UTC, computed by counting days year by year and month by month: a second
/// path to the result, to check the command's own calendar arithmetic.
fn rfc3339(secs: i64) -> String {
    let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let (mut days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        month + 1,
        days + 1,
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

#[test]
fn federation_allow_deny_remove_list() {
    let e = env();
    let o = ctl_as(
        &e,
        Some("tester"),
        &["federation", "allow", "Example.ORG.", "--note", "ticket #4"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("allowed example.org"), "{}", out(&o));
    assert!(out(&o).contains("within a few seconds"), "{}", out(&o));
    // An A-label is stored in its U-label form, as in a JID.
    let o = ctl_as(
        &e,
        Some("tester"),
        &["federation", "deny", "XN--BCHER-KVA.example"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("denied bücher.example"), "{}", out(&o));
    let o = ctl_as(
        &e,
        Some("tester"),
        &["federation", "allow", "aaa.example", "--note", "two\nlines"],
    );
    assert!(o.status.success(), "{}", err(&o));

    let o = ctl(&e, &["federation", "list"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "aaa.example allow two\\nlines\nbücher.example deny\nexample.org allow ticket #4\n"
    );
    let o = ctl(&e, &["federation", "list", "--json"], None);
    let list = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)));
    let items = list.array();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].get("domain").str(), "aaa.example");
    assert_eq!(items[0].get("note").str(), "two\nlines");
    assert_eq!(items[1].get("domain").str(), "bücher.example");
    assert_eq!(items[1].get("rule").str(), "deny");
    assert!(items[1].get("note").is_null());
    assert_eq!(items[2].get("rule").str(), "allow");
    let updated = items[1].get("updated_at").num();
    assert!(
        (updated - now() as f64).abs() < 600.0,
        "updated_at {updated}"
    );
    assert_eq!(items[1].get("updated").str(), rfc3339(updated as i64));

    // Deny replaces allow, and the note goes with the old entry.
    let o = ctl_as(&e, Some("tester"), &["federation", "deny", "example.org"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl_as(&e, Some("tester"), &["federation", "remove", "aaa.example"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("removed aaa.example"), "{}", out(&o));
    assert_eq!(
        out(&ctl(&e, &["federation", "list"], None)),
        "bücher.example deny\nexample.org deny\n"
    );

    // Removing what is not there is refused with code 1, and not recorded.
    let o = ctl_as(&e, Some("tester"), &["federation", "remove", "aaa.example"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("not in the partner list"), "{}", err(&o));

    // Each change is in the audit log, in order, with the actor and the note.
    let st = storage(&e);
    let events = block_on(st.audit.list(&causerie_storage::AuditFilter::default())).expect("list");
    block_on(st.close());
    let got: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|ev| {
            (
                ev.actor.as_str(),
                ev.action.as_str(),
                ev.subject.as_str(),
                ev.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "causeriectl:tester",
                "federation.allow",
                "example.org",
                "ok"
            ),
            (
                "causeriectl:tester",
                "federation.deny",
                "bücher.example",
                "ok"
            ),
            (
                "causeriectl:tester",
                "federation.allow",
                "aaa.example",
                "ok"
            ),
            ("causeriectl:tester", "federation.deny", "example.org", "ok"),
            (
                "causeriectl:tester",
                "federation.remove",
                "aaa.example",
                "ok"
            ),
        ]
    );
    assert!(
        events[0].detail.contains("note: ticket #4"),
        "{:?}",
        events[0]
    );
    assert!(
        events[3].detail.contains("was allow (note: ticket #4)"),
        "{:?}",
        events[3]
    );
    assert!(events[4].detail.contains("two\nlines"), "{:?}", events[4]);
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert!(events.iter().all(|ev| (ev.at - now()).abs() < 600));
}

#[test]
fn federation_bad_input_is_refused_with_code_2() {
    let e = env();
    let long_note = "n".repeat(2000);
    for args in [
        &["federation", "allow", "not a domain"][..],
        &["federation", "deny", "exa_mple.org"],
        &["federation", "allow", ""],
        &["federation", "remove", "-bad-.example"],
        &["federation", "allow", "ok.example", "--note", &long_note],
        &["federation", "allow"],
        &["federation", "frobnicate", "ok.example"],
        &["audit", "list", "--since", "last tuesday"],
        &["audit", "list", "--since", "2025-02-30"],
        &["audit", "list", "--limit", "-3"],
    ] {
        let o = ctl(&e, args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(!err(&o).is_empty(), "{args:?}: no message");
    }
    let o = ctl(&e, &["federation", "allow", "not a domain"], None);
    assert!(err(&o).contains("not a valid domain"), "{}", err(&o));
    let o = ctl(&e, &["audit", "list", "--since", "last tuesday"], None);
    assert!(err(&o).contains("RFC 3339"), "{}", err(&o));
    assert_eq!(out(&ctl(&e, &["federation", "list"], None)), "");
    assert_eq!(
        out(&ctl(&e, &["audit", "list"], None)),
        "",
        "nothing recorded"
    );
}

#[test]
fn actor_without_user_is_plain_causeriectl() {
    let e = env();
    let o = ctl_as(&e, None, &["federation", "deny", "spam.example"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl(&e, &["audit", "list", "--json"], None);
    let events = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)));
    assert_eq!(events.array().len(), 1);
    assert_eq!(events.array()[0].get("actor").str(), "causeriectl");
}

fn s2s_event(
    at: i64,
    action: &str,
    subject: &str,
    detail: &str,
) -> causerie_storage::NewAuditEvent {
    causerie_storage::NewAuditEvent {
        at,
        actor: "s2s".into(),
        action: action.into(),
        subject: subject.into(),
        outcome: if action.ends_with(".refused") {
            "refused"
        } else {
            "ok"
        }
        .into(),
        detail: detail.into(),
        remote_addr: Some("127.0.0.1:40000".into()),
    }
}

#[test]
fn federation_status_reads_the_audit_log() {
    let e = env();
    let o = ctl_as(&e, Some("ops"), &["federation", "allow", "partner.example"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl_as(&e, Some("ops"), &["federation", "deny", "quiet.example"]);
    assert!(o.status.success(), "{}", err(&o));
    let t = now();
    let st = storage(&e);
    for ev in [
        s2s_event(
            t - 3 * 86_400,
            "s2s.inbound.refused",
            "partner.example",
            "old refusal",
        ),
        s2s_event(t - 600, "s2s.inbound.accepted", "partner.example", ""),
        s2s_event(
            t - 300,
            "s2s.inbound.refused",
            "partner.example",
            "dialback key invalid",
        ),
        s2s_event(t - 200, "s2s.outbound.accepted", "partner.example", ""),
        s2s_event(
            t - 2 * 86_400,
            "s2s.inbound.refused",
            "stranger.example",
            "not allowed",
        ),
        s2s_event(
            t - 100,
            "s2s.inbound.refused",
            "stranger.example",
            "not in the\npartner list",
        ),
        s2s_event(
            t - 50,
            "s2s.inbound.refused",
            "stranger.example",
            "not allowed",
        ),
        // Not an s2s event: does not make a domain appear.
        s2s_event(t - 10, "c2s.login.refused", "elsewhere.example", "x"),
    ] {
        block_on(st.audit.append(&ev)).expect("append");
    }
    block_on(st.close());

    let time = rfc3339;
    let o = ctl(&e, &["federation", "status"], None);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "partner.example allow last-accepted={} last-refused={} refused-24h=1 \
             refusal: dialback key invalid",
            time(t - 200),
            time(t - 300)
        )
    );
    assert_eq!(
        lines[1],
        "quiet.example deny last-accepted=- last-refused=- refused-24h=0"
    );
    assert!(
        lines[2].starts_with("stranger.example - last-accepted=- last-refused=")
            && lines[2].ends_with(" refused-24h=2 refusal: not allowed"),
        "{}",
        lines[2]
    );

    let o = ctl(&e, &["federation", "status", "--json"], None);
    let status = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)));
    let items = status.array();
    assert_eq!(items.len(), 3);
    let partner = &items[0];
    assert_eq!(partner.get("domain").str(), "partner.example");
    assert_eq!(partner.get("rule").str(), "allow");
    assert_eq!(partner.get("refused_last_24h").num(), 1.0);
    assert_eq!(
        partner.get("last_accepted").get("at").num(),
        (t - 200) as f64
    );
    assert_eq!(
        partner.get("last_accepted").get("action").str(),
        "s2s.outbound.accepted"
    );
    let refused = partner.get("last_refused");
    assert_eq!(refused.get("at").num(), (t - 300) as f64);
    assert_eq!(refused.get("detail").str(), "dialback key invalid");
    assert_eq!(refused.get("remote_addr").str(), "127.0.0.1:40000");
    assert!(items[1].get("last_accepted").is_null());
    assert!(items[1].get("last_refused").is_null());
    assert!(items[2].get("rule").is_null());
    assert_eq!(items[2].get("refused_last_24h").num(), 2.0);
    assert_eq!(
        items[2].get("last_refused").get("at").num(),
        (t - 50) as f64
    );
}

#[test]
fn audit_list_filters() {
    let e = env();
    let t = now();
    let st = storage(&e);
    for ev in [
        s2s_event(t - 7200, "s2s.inbound.accepted", "a.example", "first"),
        s2s_event(t - 3600, "s2s.inbound.refused", "b.example", "tab\there"),
        s2s_event(t - 60, "s2s.outbound.accepted", "a.example", ""),
    ] {
        block_on(st.audit.append(&ev)).expect("append");
    }
    block_on(st.close());
    let o = ctl_as(
        &e,
        Some("ops"),
        &["federation", "deny", "b.example", "--note", "noisy"],
    );
    assert!(o.status.success(), "{}", err(&o));

    let o = ctl(&e, &["audit", "list"], None);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let fields: Vec<&str> = lines[1].splitn(6, ' ').collect();
    assert_eq!(
        &fields[1..],
        [
            "s2s",
            "s2s.inbound.refused",
            "b.example",
            "refused",
            "tab\\there"
        ]
    );
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "{}",
        fields[0]
    );
    assert!(
        lines[3].contains(" causeriectl:ops federation.deny b.example ok note: noisy"),
        "{}",
        lines[3]
    );

    let count = |args: &[&str]| {
        let mut all = vec!["audit", "list", "--json"];
        all.extend_from_slice(args);
        let o = ctl(&e, &all, None);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        Json::parse(&out(&o))
            .unwrap_or_else(|e| panic!("{e}: {}", out(&o)))
            .array()
            .iter()
            .map(|ev| ev.get("id").num() as i64)
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&[]), [1, 2, 3, 4]);
    assert_eq!(count(&["--action", "s2s."]), [1, 2, 3]);
    assert_eq!(count(&["--action", "s2s.inbound."]), [1, 2]);
    assert_eq!(count(&["--action", "federation."]), [4]);
    assert_eq!(count(&["--action", "S2S."]), Vec::<i64>::new());
    assert_eq!(count(&["--subject", "a.example"]), [1, 3]);
    assert_eq!(count(&["--subject", "b.example", "--action", "s2s."]), [2]);
    assert_eq!(count(&["--since", &(t - 3600).to_string()]), [2, 3, 4]);
    assert_eq!(count(&["--since", &rfc3339(t - 60)]), [3, 4]);
    assert_eq!(count(&["--since", &rfc3339(t - 59)]), [4]);
    assert_eq!(count(&["--limit", "2"]), [1, 2]);
    assert_eq!(count(&["--limit", "0"]), Vec::<i64>::new());

    let o = ctl(&e, &["audit", "list", "--limit", "2"], None);
    assert!(err(&o).contains("first 2"), "{}", err(&o));
    let o = ctl(
        &e,
        &["audit", "list", "--json", "--subject", "b.example"],
        None,
    );
    let events = Json::parse(&out(&o)).expect("json");
    let first = &events.array()[0];
    assert_eq!(first.get("detail").str(), "tab\there");
    assert_eq!(first.get("remote_addr").str(), "127.0.0.1:40000");
    assert_eq!(first.get("at").num(), (t - 3600) as f64);
    let last = &events.array()[1];
    assert!(last.get("remote_addr").is_null());
    assert_eq!(last.get("actor").str(), "causeriectl:ops");
}

#[test]
fn federation_and_audit_have_help() {
    let e = env();
    for (args, needle) in [
        (&["federation", "--help"][..], "partner list"),
        (&["federation", "allow", "--help"], "--note"),
        (&["federation", "deny", "--help"], "--note"),
        (&["federation", "remove", "--help"], "exit code 1"),
        (&["federation", "list", "--help"], "--json"),
        (&["federation", "status", "--help"], "24 hours"),
        (&["audit", "--help"], "audit log"),
        (&["audit", "list", "--help"], "--since"),
    ] {
        let o = ctl(&e, args, None);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        assert!(out(&o).contains(needle), "{args:?}: {}", out(&o));
    }
}

#[test]
fn unusable_database_is_code_3() {
    let e = env();
    // The data folder is a file: the database cannot be created.
    std::fs::write(e.dir.path().join("data"), "not a folder").expect("write");
    for args in [
        &["federation", "list"][..],
        &["federation", "allow", "ok.example"],
        &["audit", "list"],
    ] {
        let o = ctl(&e, args, None);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", err(&o));
    }
}

/// A strict JSON reader (RFC 8259) for checking the `--json` outputs: anything that is not
/// exactly one well-formed value is an error.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing data at byte {}", p.i));
        }
        Ok(v)
    }
    fn array(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(fields) => {
                let mut found = fields.iter().filter(|(k, _)| k == key);
                let v = &found
                    .next()
                    .unwrap_or_else(|| panic!("no {key} in {self:?}"))
                    .1;
                assert!(found.next().is_none(), "{key} twice in {self:?}");
                v
            }
            other => panic!("not an object: {other:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }
    fn is_null(&self) -> bool {
        *self == Json::Null
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.b[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return Err(format!("expected ':' at byte {}", self.i));
                    }
                    fields.push((key, self.value()?));
                    self.ws();
                    if self.eat("}") {
                        return Ok(Json::Obj(fields));
                    }
                    if !self.eat(",") {
                        return Err(format!("expected ',' or '}}' at byte {}", self.i));
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Ok(Json::Arr(items));
                    }
                    if !self.eat(",") {
                        return Err(format!("expected ',' or ']' at byte {}", self.i));
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("unexpected input at byte {}", self.i)),
        }
    }
    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        self.eat("-");
        let digits = |p: &mut Self| {
            let s = p.i;
            while matches!(p.b.get(p.i), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return Err(format!("bad number at byte {start}"));
        }
        if self.eat(".") && digits(self) == 0 {
            return Err(format!("bad fraction at byte {start}"));
        }
        if self.eat("e") || self.eat("E") {
            let _ = self.eat("+") || self.eat("-");
            if digits(self) == 0 {
                return Err(format!("bad exponent at byte {start}"));
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
        text.parse()
            .map(Json::Num)
            .map_err(|e| format!("{text}: {e}"))
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad \\u escape at byte {}", self.i))?;
        self.i += 4;
        Ok(h)
    }
    fn string(&mut self) -> Result<String, String> {
        if !self.eat("\"") {
            return Err(format!("expected a string at byte {}", self.i));
        }
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let Some(&esc) = self.b.get(self.i) else {
                        return Err("unterminated escape".into());
                    };
                    self.i += 1;
                    let ch = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.eat("\\u") {
                                    return Err("lone surrogate".into());
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("bad surrogate pair".into());
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or("bad code point")?
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                c if c < 0x20 => return Err(format!("raw control character at byte {}", self.i)),
                c => out.push(c),
            }
        }
    }
}

#[test]
fn the_json_reader_is_strict() {
    assert_eq!(
        Json::parse(" [1, -2.5e3, \"a\\u00e9\\ud83d\\ude00\", null, true, {\"k\": []}] "),
        Ok(Json::Arr(vec![
            Json::Num(1.0),
            Json::Num(-2500.0),
            Json::Str("aé😀".into()),
            Json::Null,
            Json::Bool(true),
            Json::Obj(vec![("k".into(), Json::Arr(vec![]))]),
        ]))
    );
    for bad in [
        "",
        "[1,]",
        "{\"a\" 1}",
        "[01]",
        "\"a\nb\"",
        "[1] x",
        "{a:1}",
        "\"\\x\"",
        "[.5]",
    ] {
        assert!(Json::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn federation_list_shows_the_configuration_file_under_the_database() {
    let e = env();
    let mut text = std::fs::read_to_string(&e.config).expect("config");
    text.push_str(
        "\n[federation]\ndeny = [\"bad.example\"]\n\n[[federation.partners]]\ndomain = \"partner.example\"\n\n[[federation.partners]]\ndomain = \"later-denied.example\"\n",
    );
    std::fs::write(&e.config, text).expect("config");
    let o = ctl(&e, &["federation", "deny", "later-denied.example"], None);
    assert!(o.status.success(), "{}", err(&o));
    let o = ctl(&e, &["federation", "list"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "bad.example deny from the configuration file\nlater-denied.example deny\npartner.example allow from the configuration file\n"
    );
    let o = ctl(&e, &["federation", "status", "--json"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("partner.example"), "{}", out(&o));
}

// ---- policy ------------------------------------------------------------------------------

use causerie_policy::{PolicyDocument, ReceiptFields, ServerKey, SignedReceipt};
use sea_orm::ConnectionTrait;

fn policy_file(title: &str, effective: &str, extra: &str, body: &str) -> String {
    format!(
        "+++\ntitle = \"{title}\"\neffective = \"{effective}\"\ncategories = [\"keyword alerts\", \
         \"file transfers\"]\n{extra}+++\n{body}"
    )
}

fn publish(e: &Env, name: &str, text: &str) -> Output {
    let path = write(e.dir.path(), name, text);
    ctl_as(
        e,
        Some("tester"),
        &["policy", "publish", path.to_str().expect("utf8")],
    )
}

fn hash_of(text: &str) -> String {
    PolicyDocument::parse(text.as_bytes())
        .expect("a valid policy file")
        .hash()
        .to_owned()
}

#[test]
fn policy_publish_show_list() {
    let e = env();
    let v1 = policy_file("Acceptable use", "2025-03-01", "", "# Rules\n\nBe nice.\n");
    let h1 = hash_of(&v1);
    let o = publish(&e, "v1.md", &v1);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "published version 1 {h1} (code {}), effective 2025-03-01T00:00:00Z, for every \
             domain\n",
            &h1[..4]
        )
    );
    // The same file again: refused, nothing written.
    let o = publish(&e, "v1-again.md", &v1);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("already published as version 1"),
        "{}",
        err(&o)
    );
    // A version for corp.example only, in force, and a later one for every domain, not yet.
    let corp = policy_file(
        "Corp rules",
        "2025-04-01T08:00:00+02:00",
        "format = \"text\"\ndomain = \"Corp.Example\"\n",
        "Corp text.\n",
    );
    let h2 = hash_of(&corp);
    let o = ctl_as(
        &e,
        Some("tester"),
        &[
            "policy",
            "publish",
            write(e.dir.path(), "corp.txt", &corp)
                .to_str()
                .expect("utf8"),
            "--by",
            "legal team",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).ends_with("effective 2025-04-01T06:00:00Z, for corp.example\n"),
        "{}",
        out(&o)
    );
    let future = policy_file("Next year", "2999-01-01", "", "Later.\n");
    let h3 = hash_of(&future);
    assert!(publish(&e, "v3.md", &future).status.success());

    let o = ctl(&e, &["policy", "list"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "1 {} 2025-03-01T00:00:00Z * Acceptable use *current* (localhost)\n\
             2 {} 2025-04-01T06:00:00Z corp.example Corp rules *current*\n\
             3 {} 2999-01-01T00:00:00Z * Next year\n",
            &h1[..12],
            &h2[..12],
            &h3[..12]
        )
    );
    let o = ctl(&e, &["policy", "list", "--json"], None);
    let list = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)));
    let items = list.array();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].get("hash").str(), h1);
    assert!(items[0].get("domain").is_null());
    assert_eq!(items[0].get("current_for").array().len(), 1);
    assert_eq!(items[1].get("domain").str(), "corp.example");
    assert_eq!(items[1].get("format").str(), "text");
    assert_eq!(items[1].get("published_by").str(), "legal team");
    assert_eq!(items[2].get("current_for").array().len(), 0);
    assert_eq!(items[2].get("effective_at").num(), 32_472_144_000.0);
    assert_eq!(items[2].get("effective").str(), "2999-01-01T00:00:00Z");

    // Default: the version in force for the first hosted domain (localhost).
    let o = ctl(&e, &["policy", "show"], None);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.starts_with("title: Acceptable use\n"), "{text}");
    assert!(
        text.contains(&format!("version: 1 {h1} (code {})\n", &h1[..4])),
        "{text}"
    );
    assert!(text.contains("effective: 2025-03-01T00:00:00Z\n"), "{text}");
    assert!(text.contains("domain: every domain\n"), "{text}");
    assert!(
        text.contains("categories: keyword alerts, file transfers\n"),
        "{text}"
    );
    assert!(text.contains("format: markdown\n"), "{text}");
    assert!(text.ends_with("\n# Rules\n\nBe nice.\n"), "{text}");
    // By number, full hash, prefix (any case): the same version.
    for sel in ["2", h2.as_str(), &h2[..6], &h2[..5].to_uppercase()] {
        let o = ctl(&e, &["policy", "show", sel, "--json"], None);
        assert!(o.status.success(), "{sel}: {}", err(&o));
        let v = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)));
        assert_eq!(v.get("seq").num(), 2.0, "{sel}");
        assert_eq!(v.get("hash").str(), h2);
        assert_eq!(v.get("code").str(), &h2[..4]);
        assert_eq!(v.get("text").str(), "Corp text.\n");
        assert_eq!(v.get("effective").str(), "2025-04-01T06:00:00Z");
        assert_eq!(v.get("categories").array().len(), 2);
    }
    // Unknown: code 1; not a version at all: code 2.
    for sel in ["9", "00000000"] {
        let o = ctl(&e, &["policy", "show", sel], None);
        assert_eq!(o.status.code(), Some(1), "{sel}: {}", err(&o));
        assert!(err(&o).contains("no policy version"), "{}", err(&o));
    }
    for sel in ["abc", "not-hex!", &"a".repeat(65)] {
        let o = ctl(&e, &["policy", "show", sel], None);
        assert_eq!(o.status.code(), Some(2), "{sel}: {}", err(&o));
    }

    // Each publication is in the audit log, under the version's hash.
    let st = storage(&e);
    let events = block_on(st.audit.list(&causerie_storage::AuditFilter::default())).expect("list");
    block_on(st.close());
    let got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|ev| (ev.actor.as_str(), ev.action.as_str(), ev.subject.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("causeriectl:tester", "policy.publish", h1.as_str()),
            ("causeriectl:tester", "policy.publish", h2.as_str()),
            ("causeriectl:tester", "policy.publish", h3.as_str()),
        ]
    );
    assert!(events[1].detail.contains("legal team"), "{:?}", events[1]);
}

#[test]
fn policy_show_without_a_version_in_force_is_code_1() {
    let e = env();
    let o = ctl(&e, &["policy", "show"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("localhost"), "{}", err(&o));
    assert!(
        publish(&e, "f.md", &policy_file("Later", "2999-01-01", "", "x\n"))
            .status
            .success()
    );
    let o = ctl(&e, &["policy", "show"], None);
    assert_eq!(o.status.code(), Some(1), "not yet in force: {}", out(&o));
}

#[test]
fn policy_publish_refuses_bad_files_with_code_2() {
    let e = env();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.md", vec![], "empty"),
        (
            "latin1.md",
            b"+++\ntitle = \"Caf\xe9\"\n+++\nx\n".to_vec(),
            "UTF-8",
        ),
        (
            "nofence.md",
            b"title = \"x\"\nBe nice.\n".to_vec(),
            "line 1",
        ),
        (
            "badtoml.md",
            b"+++\ntitle = \"x\"\neffective = \"2025-02-30\"\ncategories = []\n+++\nx\n".to_vec(),
            "line 3",
        ),
        (
            "nobody.md",
            policy_file("x", "2025-01-01", "", "\n  \n").into_bytes(),
            "empty",
        ),
        (
            "elsewhere.md",
            policy_file("x", "2025-01-01", "domain = \"other.example\"\n", "x\n").into_bytes(),
            "not a hosted domain",
        ),
    ];
    for (name, bytes, needle) in &cases {
        let path = e.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let o = ctl(
            &e,
            &["policy", "publish", path.to_str().expect("utf8")],
            None,
        );
        assert_eq!(o.status.code(), Some(2), "{name}: {}", err(&o));
        assert!(err(&o).contains(needle), "{name}: {}", err(&o));
        assert!(err(&o).contains(name), "{name}: {}", err(&o));
    }
    let missing = e.dir.path().join("missing.md");
    let o = ctl(
        &e,
        &["policy", "publish", missing.to_str().expect("utf8")],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("cannot read"), "{}", err(&o));
    let good = write(
        e.dir.path(),
        "good.md",
        &policy_file("x", "2025-01-01", "", "x\n"),
    );
    let o = ctl(
        &e,
        &[
            "policy",
            "publish",
            good.to_str().expect("utf8"),
            "--by",
            "",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert_eq!(
        out(&ctl(&e, &["policy", "list"], None)),
        "",
        "nothing written"
    );
    assert_eq!(
        out(&ctl(&e, &["audit", "list"], None)),
        "",
        "nothing recorded"
    );
}

#[test]
fn policy_show_lists_the_versions_an_ambiguous_prefix_names() {
    let e = env();
    // Two files whose hashes share their first four digits (a birthday search: ~300 tries).
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let (a, b) = (0..200_000)
        .find_map(|i| {
            let text = policy_file("Terms", "2025-01-01", "", &format!("Version {i}.\n"));
            let h = hash_of(&text);
            seen.insert(h[..4].to_owned(), text.clone())
                .map(|other| (other, text))
        })
        .expect("a shared prefix");
    let (ha, hb) = (hash_of(&a), hash_of(&b));
    assert!(publish(&e, "a.md", &a).status.success());
    assert!(publish(&e, "b.md", &b).status.success());
    let o = ctl(&e, &["policy", "show", &ha[..4]], None);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("several versions"), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("1 {ha}")) && err(&o).contains(&format!("2 {hb}")),
        "{}",
        err(&o)
    );
    assert_eq!(out(&o), "");
    // A longer prefix that tells them apart shows one.
    let n = (4..64)
        .find(|&n| ha[..n] != hb[..n])
        .expect("different hashes");
    let o = ctl(&e, &["policy", "show", &hb[..n], "--json"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(Json::parse(&out(&o)).expect("json").get("hash").str(), hb);
}

/// The key the server and `policy key` use: DATA_DIR/policy.key.
fn server_key(e: &Env) -> ServerKey {
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    causerie_policy::load_or_create(&data.join("policy.key")).expect("key")
}

/// Signs and appends receipts as the server does, one per `(username, domain, resource,
/// policy_hash, accepted_at)`; returns them.
fn append_receipts(
    e: &Env,
    key: &ServerKey,
    accepts: &[(&str, &str, &str, &str, i64)],
) -> Vec<SignedReceipt> {
    let st = storage(e);
    let mut last: Option<SignedReceipt> = block_on(st.policy.last_receipt())
        .expect("last")
        .map(SignedReceipt::from);
    let mut out = Vec::new();
    for (i, (user, domain, resource, policy, at)) in accepts.iter().enumerate() {
        let (seq, prev_hash) = causerie_policy::next_link(last.as_ref());
        let r = causerie_policy::sign(
            ReceiptFields {
                seq,
                username: (*user).into(),
                domain: (*domain).into(),
                resource: (*resource).into(),
                policy_hash: (*policy).into(),
                method: ["extension", "chat", "adhoc"][i % 3].into(),
                accepted_at: *at,
                remote_addr: (i % 2 == 0).then(|| format!("192.0.2.{}:5222", i % 250)),
                client: (i % 3 != 2).then(|| "Gajim 1.8, \"nightly\"".to_owned()),
                prev_hash,
            },
            key,
        );
        block_on(
            st.policy
                .append_receipt(&causerie_policy::rows::new_receipt(&r)),
        )
        .expect("append");
        out.push(r.clone());
        last = Some(r);
    }
    block_on(st.close());
    out
}

/// Runs SQL statements straight on the database file, as someone editing it by hand would.
fn raw_sql(e: &Env, statements: &[String]) {
    let url = format!(
        "sqlite:{}",
        e.dir.path().join("data").join("causerie.db").display()
    );
    block_on(async {
        let db = sea_orm::Database::connect(url.as_str())
            .await
            .expect("connect");
        for s in statements {
            db.execute_unprepared(s)
                .await
                .unwrap_or_else(|err| panic!("{s}: {err}"));
        }
        db.close().await.expect("close");
    });
}

/// Five receipts of one account, signed with the data folder's key.
fn five_receipts(e: &Env) -> Vec<SignedReceipt> {
    let key = server_key(e);
    let policy = "ab".repeat(32);
    let t = 1_740_787_200;
    let accepts: Vec<(&str, &str, &str, &str, i64)> = (0..5)
        .map(|i| ("alice", "localhost", "laptop", policy.as_str(), t + i * 60))
        .collect();
    append_receipts(e, &key, &accepts)
}

#[test]
fn policy_key_is_created_once_and_verify_needs_it() {
    let e = env();
    let o = ctl(&e, &["policy", "verify"], None);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("no receipt key yet"), "{}", err(&o));
    let key_file = e.dir.path().join("data").join("policy.key");
    assert!(!key_file.exists(), "verify must not create a key");

    let o = ctl(&e, &["policy", "key"], None);
    assert!(o.status.success(), "{}", err(&o));
    let first = out(&o);
    let key = causerie_policy::load_or_create(&key_file).expect("the key file");
    assert!(
        first.contains(&format!("public key: {}\n", key.public_key_hex())),
        "{first}"
    );
    assert!(
        first.contains(&format!("fingerprint: {}\n", key.fingerprint())),
        "{first}"
    );
    assert_eq!(out(&ctl(&e, &["policy", "key"], None)), first, "same key");

    let o = ctl(&e, &["policy", "verify"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with("0 receipts, chain intact, signatures valid\n"),
        "{}",
        out(&o)
    );
}

#[test]
fn policy_verify_passes_an_intact_chain_and_keeps_a_checkpoint() {
    let e = env();
    let receipts = five_receipts(&e);
    let o = ctl(&e, &["policy", "verify"], None);
    assert!(o.status.success(), "{}", err(&o));
    let last = format!("5:{}", receipts[4].hash);
    assert_eq!(
        out(&o).lines().collect::<Vec<_>>(),
        [
            "5 receipts, chain intact, signatures valid".to_owned(),
            format!("last receipt: {last} (keep it elsewhere; check with --checkpoint)"),
        ]
    );
    let o = ctl(&e, &["policy", "verify", "--checkpoint", &last], None);
    assert!(o.status.success(), "{}", out(&o));
    let o = ctl(
        &e,
        &[
            "policy",
            "verify",
            "--checkpoint",
            &format!("3:{}", receipts[2].hash),
        ],
        None,
    );
    assert!(o.status.success(), "an earlier checkpoint: {}", out(&o));
    for bad in ["5", "5:abc", "x:y", "0:"] {
        let o = ctl(&e, &["policy", "verify", "--checkpoint", bad], None);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", err(&o));
    }

    // The last receipt removed: a valid shorter chain, but not the checkpoint's.
    raw_sql(
        &e,
        &["DELETE FROM policy_receipts WHERE seq = 5".to_owned()],
    );
    let o = ctl(&e, &["policy", "verify"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).starts_with("4 receipts, chain intact"),
        "{}",
        out(&o)
    );
    let o = ctl(&e, &["policy", "verify", "--checkpoint", &last], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("end at seq 4 but the checkpoint is at seq 5"),
        "{}",
        out(&o)
    );
}

#[test]
fn policy_verify_reports_an_edited_receipt() {
    let e = env();
    five_receipts(&e);
    raw_sql(
        &e,
        &["UPDATE policy_receipts SET resource = 'elsewhere' WHERE seq = 2".to_owned()],
    );
    let o = ctl(&e, &["policy", "verify"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert_eq!(
        out(&o),
        "row 2 (seq 2): its fields do not match its hash (edited after signing)\n"
    );
    assert!(err(&o).contains("1 problem"), "{}", err(&o));
}

#[test]
fn policy_verify_reports_a_deleted_middle_receipt() {
    let e = env();
    five_receipts(&e);
    raw_sql(
        &e,
        &["DELETE FROM policy_receipts WHERE seq = 3".to_owned()],
    );
    let o = ctl(&e, &["policy", "verify"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("row 3 (seq 4): it does not follow the row before it"),
        "{text}"
    );
    assert!(text.contains("row 3: seq 4 where 3 was expected"), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("row 3")),
        "only the row after the gap: {text}"
    );
}

#[test]
fn policy_verify_reports_an_inserted_receipt() {
    let e = env();
    let receipts = five_receipts(&e);
    // Make room at seq 3 (through a free range, as the seq column is the key), then insert a
    // receipt that links to receipt 2 and is hashed right, but signed with another key.
    let forger = ServerKey::from_secret_bytes(&[7; 32]);
    let forged = causerie_policy::sign(
        ReceiptFields {
            seq: 3,
            username: "mallory".into(),
            domain: "localhost".into(),
            resource: String::new(),
            policy_hash: "ab".repeat(32),
            method: "chat".into(),
            accepted_at: receipts[1].fields.accepted_at + 1,
            remote_addr: None,
            client: None,
            prev_hash: receipts[1].hash.clone(),
        },
        &forger,
    );
    raw_sql(
        &e,
        &[
            "UPDATE policy_receipts SET seq = seq + 1000 WHERE seq >= 3".to_owned(),
            "UPDATE policy_receipts SET seq = seq - 999 WHERE seq >= 1000".to_owned(),
            format!(
                "INSERT INTO policy_receipts (seq, username, domain, resource, policy_hash, \
                 method, accepted_at, remote_addr, client, prev_hash, hash, signature) VALUES \
                 (3, 'mallory', 'localhost', '', '{}', 'chat', {}, NULL, NULL, '{}', '{}', '{}')",
                forged.fields.policy_hash,
                forged.fields.accepted_at,
                forged.fields.prev_hash,
                forged.hash,
                forged.signature
            ),
        ],
    );
    let o = ctl(&e, &["policy", "verify"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("row 3 (seq 3): the signature is not the server key's"),
        "{text}"
    );
    assert!(
        !text.contains("row 3 (seq 3): its fields"),
        "the forged row's hash is right: {text}"
    );
    assert!(
        text.contains("row 4 (seq 4): it does not follow the row before it"),
        "{text}"
    );
    assert!(
        !text.contains("row 1 ") && !text.contains("row 2 "),
        "rows before the insertion are fine: {text}"
    );
    assert!(err(&o).contains("6 receipts"), "{}", err(&o));
}

#[test]
fn policy_acceptances_page_filter_and_export() {
    let e = env();
    let key = server_key(&e);
    let policy = "cd".repeat(32);
    let t = 1_740_787_200;
    let names: Vec<String> = (0..1005).map(|i| format!("user{}", i % 7)).collect();
    let accepts: Vec<(&str, &str, &str, &str, i64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.as_str(),
                if i % 2 == 0 {
                    "localhost"
                } else {
                    "corp.example"
                },
                if i % 5 == 0 { "" } else { "phone" },
                policy.as_str(),
                t + i as i64,
            )
        })
        .collect();
    let receipts = append_receipts(&e, &key, &accepts);

    let o = ctl(&e, &["policy", "acceptances"], None);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1005, "more than one page");
    assert_eq!(
        lines[0],
        format!(
            "1 {} user0@localhost {policy} extension 192.0.2.0:5222 Gajim 1.8, \"nightly\"",
            rfc3339(t)
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "2 {} user1@corp.example/phone {policy} chat - Gajim 1.8, \"nightly\"",
            rfc3339(t + 1)
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "3 {} user2@localhost/phone {policy} adhoc 192.0.2.2:5222 -",
            rfc3339(t + 2)
        )
    );
    assert!(lines[1004].starts_with("1005 "), "{}", lines[1004]);

    let o = ctl(&e, &["policy", "acceptances", "--csv"], None);
    assert!(o.status.success(), "{}", err(&o));
    let csv = out(&o);
    let rows: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(rows.len(), 1007, "header, 1005 rows, final empty piece");
    assert_eq!(
        rows[0],
        "seq,time,jid,policy_hash,method,remote_addr,client"
    );
    assert_eq!(
        rows[1],
        format!(
            "1,{},user0@localhost,{policy},extension,192.0.2.0:5222,\"Gajim 1.8, \"\"nightly\"\"\"",
            rfc3339(t)
        )
    );
    assert_eq!(
        rows[3],
        format!(
            "3,{},user2@localhost/phone,{policy},adhoc,192.0.2.2:5222,",
            rfc3339(t + 2)
        )
    );

    let o = ctl(&e, &["policy", "acceptances", "--json"], None);
    assert!(o.status.success(), "{}", err(&o));
    let list = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}"));
    let items = list.array();
    assert_eq!(items.len(), 1005);
    assert_eq!(items[1].get("jid").str(), "user1@corp.example/phone");
    assert_eq!(items[1].get("resource").str(), "phone");
    assert!(items[1].get("remote_addr").is_null());
    assert_eq!(items[0].get("client").str(), "Gajim 1.8, \"nightly\"");
    assert_eq!(items[1004].get("seq").num(), 1005.0);
    assert_eq!(items[7].get("time").str(), rfc3339(t + 7));

    // user3@corp.example: i % 7 == 3 and i odd.
    let o = ctl(
        &e,
        &[
            "policy",
            "acceptances",
            "--json",
            "--user",
            "User3@Corp.Example",
        ],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    let seqs: Vec<i64> = Json::parse(&out(&o))
        .expect("json")
        .array()
        .iter()
        .map(|r| r.get("seq").num() as i64)
        .collect();
    let expected: Vec<i64> = (0..1005)
        .filter(|i| i % 7 == 3 && i % 2 == 1)
        .map(|i| i + 1)
        .collect();
    assert_eq!(seqs, expected);
    let o = ctl(
        &e,
        &["policy", "acceptances", "--since", &rfc3339(t + 1000)],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    let seqs: Vec<String> = out(&o)
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(seqs, ["1001", "1002", "1003", "1004", "1005"]);
    assert_eq!(receipts.len(), 1005);

    for args in [
        &["policy", "acceptances", "--user", "not a jid"][..],
        &["policy", "acceptances", "--user", "localhost"],
        &["policy", "acceptances", "--since", "last week"],
        &["policy", "acceptances", "--json", "--csv"],
    ] {
        let o = ctl(&e, args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
}

#[test]
fn policy_status_names_who_has_not_accepted() {
    let e = env();
    let st = storage(&e);
    for (user, domain) in [
        ("alice", "localhost"),
        ("bob", "localhost"),
        ("carol", "localhost"),
        ("dave", "corp.example"),
    ] {
        block_on(st.users.create_user(&causerie_storage::NewUser {
            username: user.into(),
            domain: domain.into(),
            credentials: vec![],
        }))
        .expect("create");
    }
    block_on(st.close());
    let o = ctl(&e, &["policy", "status"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "localhost: no policy version in force\ncorp.example: no policy version in force\n"
    );

    let old = policy_file("Old", "2024-01-01", "", "old\n");
    let new = policy_file("New", "2025-01-01", "", "new\n");
    let (h_old, h_new) = (hash_of(&old), hash_of(&new));
    assert!(publish(&e, "old.md", &old).status.success());
    assert!(publish(&e, "new.md", &new).status.success());
    let key = server_key(&e);
    append_receipts(
        &e,
        &key,
        &[
            ("alice", "localhost", "laptop", &h_new, now() - 60),
            // An older version does not count, nor does the same name on another domain.
            ("bob", "localhost", "", &h_old, now() - 50),
            ("carol", "corp.example", "", &h_new, now() - 40),
            ("dave", "corp.example", "", &h_new, now() - 30),
        ],
    );
    let o = ctl(&e, &["policy", "status"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "localhost: 2 of 3 accounts have not accepted version 2 {} (code {}): \
             bob@localhost, carol@localhost\n\
             corp.example: 0 of 1 accounts have not accepted version 2 {} (code {})\n",
            &h_new[..12],
            &h_new[..4],
            &h_new[..12],
            &h_new[..4]
        )
    );
    let o = ctl(&e, &["policy", "status", "--json"], None);
    let items = Json::parse(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)));
    let items = items.array();
    assert_eq!(items[0].get("domain").str(), "localhost");
    assert_eq!(items[0].get("version").get("hash").str(), h_new);
    assert_eq!(items[0].get("accounts").num(), 3.0);
    let pending: Vec<&str> = items[0]
        .get("not_accepted")
        .array()
        .iter()
        .map(Json::str)
        .collect();
    assert_eq!(pending, ["bob@localhost", "carol@localhost"]);
    assert_eq!(items[1].get("not_accepted").array().len(), 0);
}

#[test]
fn policy_has_help() {
    let e = env();
    for (args, needle) in [
        (&["policy", "--help"][..], "policy.key"),
        (&["policy", "publish", "--help"], "--by"),
        (&["policy", "show", "--help"], "prefix"),
        (&["policy", "list", "--help"], "*current*"),
        (&["policy", "key", "--help"], "DATA_DIR/policy.key"),
        (&["policy", "acceptances", "--help"], "--csv"),
        (&["policy", "status", "--help"], "not accepted"),
        (&["policy", "verify", "--help"], "--checkpoint"),
    ] {
        let o = ctl(&e, args, None);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        assert!(out(&o).contains(needle), "{args:?}: {}", out(&o));
    }
}
