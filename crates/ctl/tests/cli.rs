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
