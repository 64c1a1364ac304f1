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
