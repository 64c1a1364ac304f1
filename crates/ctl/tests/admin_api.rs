//! `causeriectl` against a running server: the admin API on its Unix socket (mode 0600), the
//! audit record of every change with who and from where, the offline fallback once the server
//! is gone, kicks that close the victim's stream with the reason, and the TCP listener's bearer
//! tokens. The server runs in-process; `causeriectl` is the real binary.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use causerie_testkit::client::{Client, ClientError};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;

const T: Duration = Duration::from_secs(10);

/// A server on a multi-threaded runtime, and a configuration file for `causeriectl` that
/// names the same data folder.
struct Live {
    rt: tokio::runtime::Runtime,
    server: Option<TestServer>,
    /// A stopped server, kept for its data folder.
    stopped: Option<TestServer>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Live {
    fn start(adjust: impl FnOnce(&mut causerie_config::Config)) -> Live {
        let rt = runtime();
        let server = rt
            .block_on(TestServer::start_with(adjust))
            .expect("server starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("causerie.toml");
        write_config(&config, &server.config);
        Live {
            rt,
            server: Some(server),
            stopped: None,
            config,
            _dir: dir,
        }
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("running")
    }

    fn ctl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_ctl(&self.config, args, stdin)
    }

    /// Shuts the server down as SIGTERM does; its data folder stays.
    fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            if let Some(running) = s.running.take() {
                self.rt.block_on(running.shutdown());
            }
            self.stopped = Some(s);
        }
    }
}

fn write_config(path: &Path, server: &causerie_config::Config) {
    let mut text = format!(
        "[server]\ndomains = [\"localhost\"]\ndata_dir = {:?}\n",
        server.server.data_dir.display().to_string()
    );
    if let Some(socket) = &server.admin.socket {
        text.push_str(&format!(
            "\n[admin]\nsocket = {:?}\n",
            socket.display().to_string()
        ));
    }
    std::fs::write(path, text).expect("config");
}

fn run_ctl(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_causeriectl"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("USER", "ops");
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

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        out(o),
        err(o)
    );
    assert!(
        !err(o).contains("not running"),
        "went offline while the server runs: {}",
        err(o)
    );
    out(o)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The audit log's events (through the command, as an administrator reads them).
fn audit(l: &Live) -> Vec<serde_json::Value> {
    let o = l.ctl(&["audit", "list", "--json", "--limit", "1000"], None);
    assert!(o.status.success(), "{}", err(&o));
    json(&out(&o)).as_array().expect("array").clone()
}

/// What an audit event records, as (action, subject, outcome).
fn action_subject_outcome(e: &serde_json::Value) -> (&str, &str, &str) {
    (
        e["action"].as_str().unwrap_or(""),
        e["subject"].as_str().unwrap_or(""),
        e["outcome"].as_str().unwrap_or(""),
    )
}

#[test]
fn every_command_goes_through_the_socket_and_falls_back_offline_when_it_is_gone() {
    let mut l = Live::start(|_| {});
    let socket = l.server().admin_socket().to_path_buf();
    let meta = std::fs::symlink_metadata(&socket).expect("socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");

    assert_eq!(
        ok(&l.ctl(&["user", "add", "Alice@localhost"], Some("s3cret\n"))),
        "created alice@localhost\n"
    );
    let o = l.ctl(&["user", "add", "alice@localhost"], Some("again\n"));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("already exists"), "{}", err(&o));
    // Checked before the password is asked for: nothing reaches the server.
    let o = l.ctl(&["user", "add", "bob@elsewhere.example"], Some("pw\n"));
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("not a hosted domain"), "{}", err(&o));
    let csv = l._dir.path().join("users.csv");
    std::fs::write(&csv, "jid,password\ncarol@localhost,c\ndave@localhost,d\n").expect("csv");
    let imported = json(&ok(&l.ctl(
        &["user", "import", csv.to_str().expect("utf8"), "--json"],
        None,
    )));
    assert_eq!(imported["imported"], 2);
    ok(&l.ctl(&["user", "passwd", "carol@localhost"], Some("n3w\n")));
    assert_eq!(
        ok(&l.ctl(&["user", "list"], None)),
        "alice@localhost\ncarol@localhost\ndave@localhost\n"
    );
    let list = json(&ok(&l.ctl(&["user", "list", "--json"], None)));
    assert_eq!(list[0]["jid"], "alice@localhost");
    let shown = json(&ok(
        &l.ctl(&["user", "show", "alice@localhost", "--json"], None)
    ));
    assert_eq!(
        shown["sessions"],
        serde_json::json!([]),
        "live: sessions known"
    );
    assert_eq!(shown["credentials"].as_array().map(Vec::len), Some(3));
    let text = ok(&l.ctl(&["user", "show", "alice@localhost"], None));
    assert!(text.contains("sessions: none"), "{text}");
    ok(&l.ctl(&["user", "remove", "dave@localhost"], None));
    let o = l.ctl(&["user", "show", "dave@localhost"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));

    let stats = json(&ok(&l.ctl(&["stats", "--json"], None)));
    assert_eq!(stats["accounts"], 2);
    assert_eq!(stats["c2s"]["sessions"], 0);
    assert!(stats["s2s"].is_object(), "{stats}");
    assert!(ok(&l.ctl(&["stats"], None)).contains("stanzas:"));
    assert_eq!(ok(&l.ctl(&["session", "list"], None)), "");
    let o = l.ctl(&["session", "show", "alice@localhost/x"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let o = l.ctl(&["session", "kick", "alice@localhost"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let announced = json(&ok(
        &l.ctl(&["announce", "--all", "Mail is down", "--json"], None)
    ));
    assert_eq!(announced["stored_offline"], 2, "{announced}");

    // Who did what, from where: the peer's Unix user and process, through the socket.
    let events = audit(&l);
    let mine: Vec<(&str, &str, &str)> = events.iter().map(action_subject_outcome).collect();
    assert_eq!(
        mine,
        [
            ("user.add", "Alice@localhost", "ok"),
            ("user.add", "alice@localhost", "refused"),
            ("user.import", csv.to_str().expect("utf8"), "ok"),
            ("user.passwd", "carol@localhost", "ok"),
            ("user.remove", "dave@localhost", "ok"),
            ("session.kick", "alice@localhost", "refused"),
            ("announce", "all", "ok"),
        ]
    );
    for e in &events {
        // The Unix user running the command, as the kernel tells the server.
        assert!(
            e["actor"]
                .as_str()
                .is_some_and(|a| a.len() > 5 && a.starts_with("unix:")),
            "{e}"
        );
        assert!(
            e["remote_addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("unix:pid=")),
            "{e}"
        );
        assert!(!e["detail"].as_str().unwrap_or("").contains("s3cret"));
    }

    // The server stops: the socket goes, reads and account changes run offline and say so,
    // what needs the server says that.
    l.stop();
    assert!(!socket.exists(), "the socket is removed at shutdown");
    let o = l.ctl(&["user", "list"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "alice@localhost\ncarol@localhost\n");
    assert!(
        err(&o).contains("the server is not running") && err(&o).contains("offline"),
        "{}",
        err(&o)
    );
    let o = l.ctl(&["user", "add", "erin@localhost"], Some("pw\n"));
    assert!(o.status.success(), "{}", err(&o));
    for args in [
        &["session", "list"][..],
        &["session", "kick", "alice@localhost"],
        &["stats"],
        &["announce", "hello"],
    ] {
        let o = l.ctl(args, None);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("needs the running server"),
            "{args:?}: {}",
            err(&o)
        );
    }
    let o = l.ctl(&["announce", "--all", "Still down"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("stored for 3 offline user(s)"),
        "{}",
        out(&o)
    );
    let o = l.ctl(
        &["--offline", "user", "show", "erin@localhost", "--json"],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(json(&out(&o))["sessions"].is_null());
    assert!(
        !err(&o).contains("not running"),
        "--offline does not ask: {}",
        err(&o)
    );
    // Offline changes are audited with the command's own actor.
    let o = l.ctl(&["audit", "list", "--json", "--action", "user.add"], None);
    let last = json(&out(&o))
        .as_array()
        .and_then(|a| a.last().cloned())
        .expect("event");
    assert_eq!(last["actor"], "causeriectl:ops");
    assert_eq!(last["subject"], "erin@localhost");
    assert!(last["remote_addr"].is_null());
}

#[test]
fn kick_closes_the_stream_with_the_reason_and_announcements_arrive() {
    let l = Live::start(|_| {});
    l.rt.block_on(l.server().add_user("bob", "pw"))
        .expect("account");
    let mut bob =
        l.rt.block_on(async {
            let mut c = Client::login(&l.server().client("bob", "pw")).await?;
            c.send_initial_presence(T).await?;
            Ok::<_, ClientError>(c)
        })
        .expect("bob logs in");
    let full = bob.jid().to_owned();

    let listing = ok(&l.ctl(&["session", "list"], None));
    assert!(
        listing.starts_with(&format!("{full} 127.0.0.1:")),
        "{listing}"
    );
    assert!(listing.contains("available(0)"), "{listing}");
    let shown = json(&ok(&l.ctl(&["session", "show", &full, "--json"], None)));
    assert_eq!(shown["jid"], full.as_str());
    assert_eq!(shown["available"], true);
    let stats = json(&ok(&l.ctl(&["stats", "--json"], None)));
    assert_eq!(stats["c2s"]["sessions"], 1);
    assert_eq!(stats["c2s"]["connections"], 1);
    assert!(
        stats["stanzas_total"].as_u64().is_some_and(|n| n >= 1),
        "{stats}"
    );

    let announced = json(&ok(&l.ctl(
        &[
            "announce",
            "Fire drill at 3",
            "--subject",
            "Drill",
            "--json",
        ],
        None,
    )));
    assert_eq!(announced["sessions"], 1);
    let msg: Element =
        l.rt.block_on(bob.recv_matching(T, |el| el.name() == "message"))
            .expect("the announcement");
    assert_eq!(msg.attr("type"), Some("headline"));
    assert_eq!(msg.attr("from"), Some("localhost"));
    assert!(msg.to_xml().contains("Fire drill at 3"), "{}", msg.to_xml());

    let o = l.ctl(
        &[
            "session",
            "kick",
            "bob@localhost",
            "--reason",
            "maintenance at 22:00",
        ],
        None,
    );
    assert_eq!(ok(&o), format!("disconnected {full}\n"));
    let end = l.rt.block_on(async {
        loop {
            match bob.recv(T).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        }
    });
    match end {
        ClientError::StreamError { condition, text } => {
            assert_eq!(condition, "policy-violation");
            assert_eq!(text.as_deref(), Some("maintenance at 22:00"));
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
    let kicks: Vec<serde_json::Value> = audit(&l)
        .into_iter()
        .filter(|e| e["action"] == "session.kick")
        .collect();
    assert_eq!(kicks.len(), 1);
    assert_eq!(kicks[0]["subject"], "bob@localhost");
    assert!(
        kicks[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("maintenance at 22:00")),
        "{}",
        kicks[0]
    );
}

/// One HTTP/1.1 request over TCP; the status and the body.
fn http(addr: std::net::SocketAddr, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(T)).expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

const DEPLOY: &str = "deploy-0123456789abcdef0123456789abcdef";
const MONITOR: &str = "monitor-0123456789abcdef0123456789abcdef";

#[test]
fn bearer_tokens_on_tcp_are_checked_and_refusals_audited() {
    let tokens = tempfile::tempdir().expect("dir");
    let file = tokens.path().join("admin.tokens");
    std::fs::write(
        &file,
        format!("# the deploy pipeline\ndeploy {DEPLOY}\nmonitor {MONITOR} read\n"),
    )
    .expect("tokens");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let l = Live::start(|c| {
        c.admin.listen = Some("127.0.0.1:0".into());
        c.admin.token_file = Some(file.clone());
    });
    let addr = l.server().admin_tcp_addr().expect("TCP listener");

    let (status, body) = http(addr, "/v1/ops/user.list", Some("not-the-token"), "{}");
    assert_eq!(status, 401, "{body}");
    assert_eq!(json(&body)["error"]["kind"], "unauthorized");
    let (status, _) = http(addr, "/v1/ops/user.list", None, "{}");
    assert_eq!(status, 401);
    let (status, body) = http(addr, "/v1/ops/user.list", Some(MONITOR), "");
    assert_eq!((status, body.as_str()), (200, "[]"));
    let add = r#"{"jid":"zoe@localhost","password":"pw"}"#;
    let (status, body) = http(addr, "/v1/ops/user.add", Some(MONITOR), add);
    assert_eq!(status, 403, "{body}");
    let (status, body) = http(addr, "/v1/ops/user.add", Some(DEPLOY), add);
    assert_eq!((status, body.as_str()), (200, r#"{"jid":"zoe@localhost"}"#));
    let (status, body) = http(addr, "/v1/ops/user.add", Some(DEPLOY), "{not json");
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(addr, "/v1/ops/no.such", Some(DEPLOY), "{}");
    assert_eq!(status, 404);

    let events = audit(&l);
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("anonymous", "admin.auth", "refused"),
            ("anonymous", "admin.auth", "refused"),
            ("token:monitor", "user.add", "refused"),
            ("token:deploy", "user.add", "ok"),
        ]
    );
    assert_eq!(events[0]["detail"], "wrong bearer token");
    assert_eq!(events[1]["detail"], "missing bearer token");
    for e in &events {
        assert!(
            e["remote_addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{e}"
        );
    }
}

/// `causeriectl` with extra environment variables (a bearer token); a password on stdin.
fn run_ctl_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_causeriectl"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("USER", "ops");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(mut sin) = child.stdin.take() {
        let _ = sin.write_all(b"s3cret\n");
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn tokens_made_by_the_command_work_over_tcp_until_revoked() {
    let tokens = tempfile::tempdir().expect("dir");
    let file = tokens.path().join("admin.tokens");
    std::fs::write(&file, format!("deploy {DEPLOY}\n")).expect("tokens");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let l = Live::start(|c| {
        c.admin.listen = Some("127.0.0.1:0".into());
        c.admin.token_file = Some(file.clone());
    });
    let addr = l.server().admin_tcp_addr().expect("TCP listener");
    let config = std::fs::read_to_string(&l.config).expect("config");
    let config = if config.contains("[admin]") {
        config.replace(
            "[admin]\n",
            &format!("[admin]\ntoken_file = {:?}\n", file.display().to_string()),
        )
    } else {
        format!(
            "{config}\n[admin]\ntoken_file = {:?}\n",
            file.display().to_string()
        )
    };
    std::fs::write(&l.config, config).expect("config");

    let made = json(&ok(&l.ctl(
        &["token", "add", "ci", "--permission", "operate", "--json"],
        None,
    )));
    assert_eq!(made["name"], "ci");
    assert_eq!(made["permission"], "operate");
    let token = made["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 64);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(
        !text.contains(&token),
        "the file holds the token itself: {text}"
    );
    assert!(text.contains(DEPLOY), "the other line was lost: {text}");
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let twice = l.ctl(&["token", "add", "ci"], None);
    assert_eq!(twice.status.code(), Some(1), "{}", err(&twice));
    let listed = json(&ok(&l.ctl(&["token", "list", "--json"], None)));
    assert_eq!(
        listed,
        serde_json::json!([
            {"name": "deploy", "permission": "admin"},
            {"name": "ci", "permission": "operate"}
        ])
    );

    let api = format!("http://{addr}");
    let with = |t: &str, args: &[&str]| {
        let mut all = vec!["--api", api.as_str()];
        all.extend_from_slice(args);
        run_ctl_env(&l.config, &all, &[("CAUSERIE_ADMIN_TOKEN", t)])
    };
    // Read and operate are granted; creating an account needs admin.
    let listed = with(&token, &["user", "list", "--json"]);
    assert_eq!(json(&ok(&listed)), serde_json::json!([]));
    let add = with(&token, &["user", "add", "zoe@localhost"]);
    assert_eq!(add.status.code(), Some(5), "{}", err(&add));
    let add = with(DEPLOY, &["user", "add", "zoe@localhost", "--json"]);
    assert_eq!(json(&ok(&add))["jid"], "zoe@localhost");
    let wrong = with(&"x".repeat(64), &["user", "list"]);
    assert_eq!(wrong.status.code(), Some(5), "{}", err(&wrong));
    let none = run_ctl_env(&l.config, &["--api", &api, "user", "list"], &[]);
    assert_eq!(none.status.code(), Some(2), "{}", err(&none));
    assert!(
        err(&none).contains("CAUSERIE_ADMIN_TOKEN"),
        "{}",
        err(&none)
    );

    ok(&l.ctl(&["token", "remove", "ci"], None));
    let revoked = with(&token, &["user", "list"]);
    assert_eq!(revoked.status.code(), Some(5), "{}", err(&revoked));
    let gone = l.ctl(&["token", "remove", "ci"], None);
    assert_eq!(gone.status.code(), Some(1));

    let changes: Vec<(String, String, String)> = audit(&l)
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("token."))
        })
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (f("actor"), f("action"), f("subject"))
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "causeriectl:ops".into(),
                "token.add".into(),
                "token:ci".into()
            ),
            (
                "causeriectl:ops".into(),
                "token.remove".into(),
                "token:ci".into()
            ),
        ]
    );

    // Nothing listens: exit code 4, and no offline fallback for a remote server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let down = run_ctl_env(
        &l.config,
        &["--api", &format!("http://127.0.0.1:{port}"), "user", "list"],
        &[("CAUSERIE_ADMIN_TOKEN", DEPLOY)],
    );
    assert_eq!(down.status.code(), Some(4), "{}", err(&down));
    assert!(!err(&down).contains("offline"), "{}", err(&down));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    // What a server killed without shutdown leaves: a socket nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(data.join("admin.sock")).expect("bind"));
    let first = rt
        .block_on(TestServer::start_with(|c| c.server.data_dir = data.clone()))
        .expect("a stale socket does not stop the start");
    let second = rt.block_on(causerie_server::start(&first.config));
    match second {
        Err(e) => assert!(e.to_string().contains("another server is running"), "{e}"),
        Ok(_) => panic!("two servers on one admin socket"),
    }
    assert!(
        data.join("admin.sock").exists(),
        "the refused start left the socket alone"
    );
    rt.block_on(first.stop());
}

/// Runs `causeriectl` as the `nobody` user.
fn ctl_as_nobody(config: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_causeriectl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn other_users_are_kept_out_by_the_socket_mode_and_by_the_server() {
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if uid.ok() != Some(0) {
        eprintln!("NOT CHECKED: running a client as another user needs root");
        return;
    }
    // A socket in a folder every user may enter, so that only the socket's own mode and the
    // server's check of the peer stand in the way.
    let open = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = open.path().join("admin.sock");
    let l = Live::start(|c| c.admin.socket = Some(socket.clone()));
    let config = open.path().join("ctl.toml");
    write_config(&config, &l.server().config);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let o = ctl_as_nobody(&config, &["user", "list"]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(err(&o).contains("permission denied"), "{}", err(&o));
    // Someone loosened the mode: the server still refuses, and says so in the audit log.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let o = ctl_as_nobody(&config, &["user", "list"]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(
        err(&o).contains("may not use the admin socket"),
        "{}",
        err(&o)
    );
    let events = audit(&l);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "admin.auth");
    assert_eq!(events[0]["outcome"], "refused");
    assert_eq!(events[0]["actor"], "unix:nobody");
}

#[test]
fn audit_export_writes_json_lines_and_csv() {
    let l = Live::start(|_| {});
    for i in 0..3 {
        ok(&l.ctl(&["user", "add", &format!("u{i}@localhost")], Some("pw\n")));
    }
    let lines = ok(&l.ctl(&["audit", "export"], None));
    let events: Vec<serde_json::Value> = lines.lines().map(json).collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["subject"], "u2@localhost");
    let file = l._dir.path().join("audit.csv");
    ok(&l.ctl(
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--action",
            "user.",
            "-o",
            file.to_str().expect("utf8"),
        ],
        None,
    ));
    let csv = std::fs::read_to_string(&file).expect("csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "id,time,actor,action,subject,outcome,detail,remote_addr"
    );
    assert_eq!(rows.len(), 4);
    assert!(
        rows[1].contains(",user.add,u0@localhost,ok,account created,unix:pid="),
        "{}",
        rows[1]
    );
    for (args, needle) in [
        (&["session", "--help"][..], "Needs the running server"),
        (&["session", "kick", "--help"], "--reason"),
        (&["announce", "--help"], "--all"),
        (&["stats", "--help"], "--json"),
        (&["audit", "export", "--help"], "csv"),
        (&["user", "show", "--help"], "--json"),
    ] {
        let o = l.ctl(args, None);
        assert!(o.status.success(), "{args:?}");
        assert!(out(&o).contains(needle), "{args:?}: {}", out(&o));
    }
}

/// A roster get from `c`; the `<query/>` of the answer, after the pushes that came before it
/// were acknowledged.
fn roster_of(l: &Live, c: &mut Client) -> Element {
    l.rt.block_on(async {
        let get = Element::new("iq", "jabber:client")
            .with_attr("type", "get")
            .with_attr("id", "roster")
            .with_child(Element::new("query", "jabber:iq:roster"));
        c.send(&get).await?;
        let answer = c
            .recv_matching(T, |e| e.name() == "iq" && e.attr("id") == Some("roster"))
            .await?;
        Ok::<_, ClientError>(answer)
    })
    .expect("roster answer")
    .get_child("query", "jabber:iq:roster")
    .cloned()
    .expect("query")
}

fn roster_jids(q: &Element) -> Vec<String> {
    q.children()
        .filter_map(|i| i.attr("jid").map(str::to_owned))
        .collect()
}

#[test]
fn groups_are_managed_through_the_server_and_offline() {
    let mut l = Live::start(|_| {});
    for user in ["alice", "bob", "carol"] {
        l.rt.block_on(l.server().add_user(user, "pw"))
            .expect("account");
    }
    assert_eq!(
        ok(&l.ctl(
            &["group", "create", "staff", "--display-name", "Staff"],
            None
        )),
        "created group staff\n"
    );
    let o = l.ctl(&["group", "create", "staff"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("already exists"), "{}", err(&o));

    let mut alice =
        l.rt.block_on(async {
            let mut c = Client::login(&l.server().client("alice", "pw")).await?;
            c.send_initial_presence(T).await?;
            Ok::<_, ClientError>(c)
        })
        .expect("alice logs in");
    assert!(roster_jids(&roster_of(&l, &mut alice)).is_empty());

    let o = l.ctl(
        &["group", "add", "staff", "alice@localhost", "Bob@localhost"],
        None,
    );
    assert_eq!(ok(&o), "added alice@localhost\nadded bob@localhost\n");
    assert!(err(&o).is_empty(), "applied at once: {}", err(&o));
    // The running server pushed bob into alice's roster at once.
    let push =
        l.rt.block_on(alice.recv_matching(T, |e| {
            e.name() == "iq"
                && e.attr("type") == Some("set")
                && e.to_xml().contains("bob@localhost")
        }))
        .expect("roster push");
    let pushed = push
        .get_child("query", "jabber:iq:roster")
        .and_then(|q| q.children().next())
        .expect("item");
    assert_eq!(pushed.attr("subscription"), Some("both"));
    assert!(pushed.to_xml().contains(">Staff<"), "{}", pushed.to_xml());

    let o = l.ctl(&["group", "add", "staff", "ghost@localhost"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("no account ghost@localhost"),
        "{}",
        err(&o)
    );
    let o = l.ctl(&["group", "add", "staff", "alice@localhost/phone"], None);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let o = l.ctl(&["group", "add", "nope", "alice@localhost"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(
        ok(&l.ctl(&["group", "add", "staff", "alice@localhost"], None)),
        "already a member: alice@localhost\n"
    );
    assert_eq!(
        ok(&l.ctl(&["group", "list"], None)),
        "staff: 2 member(s), shown as \"Staff\"\n"
    );
    let list = json(&ok(&l.ctl(&["group", "list", "--json"], None)));
    assert_eq!(list[0]["members"], 2);
    assert_eq!(list[0]["display_name"], "Staff");
    let shown = json(&ok(&l.ctl(&["group", "show", "staff", "--json"], None)));
    assert_eq!(shown["label"], "Staff");
    assert_eq!(shown["members"][1]["jid"], "bob@localhost");
    assert_eq!(shown["members"][1]["account"], true);
    let text = ok(&l.ctl(&["group", "show", "staff"], None));
    assert!(
        text.contains("shown as: Staff\n") && text.contains("  alice@localhost\n"),
        "{text}"
    );
    let o = l.ctl(&["group", "show", "nope"], None);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));

    let events = audit(&l);
    let changes: Vec<(&str, &str, &str)> = events
        .iter()
        .map(action_subject_outcome)
        .filter(|(action, _, _)| action.starts_with("group."))
        .collect();
    assert_eq!(
        changes,
        [
            ("group.create", "staff", "ok"),
            ("group.create", "staff", "refused"),
            ("group.add", "staff", "ok"),
            ("group.add", "staff", "refused"),
            ("group.add", "staff", "refused"),
            ("group.add", "nope", "refused"),
            ("group.add", "staff", "ok"),
        ]
    );

    // Without the server: the changes go to the database and take effect at the next start.
    l.rt.block_on(alice.close()).ok();
    l.stop();
    let o = l.ctl(&["group", "add", "staff", "carol@localhost"], None);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "added carol@localhost\n");
    assert!(
        err(&o).contains("offline") && err(&o).contains("next start or SIGHUP"),
        "{}",
        err(&o)
    );
    let o = l.ctl(
        &[
            "group",
            "remove-member",
            "staff",
            "bob@localhost",
            "dave@localhost",
        ],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "removed bob@localhost\nnot a member: dave@localhost\n"
    );
    let stopped = l.stopped.take().expect("stopped server");
    l.server = Some(l.rt.block_on(stopped.restart()).expect("restart"));
    let mut alice =
        l.rt.block_on(Client::login(&l.server().client("alice", "pw")))
            .expect("alice logs in again");
    assert_eq!(
        roster_jids(&roster_of(&l, &mut alice)),
        ["carol@localhost"],
        "the server read the offline changes at start"
    );
    assert_eq!(
        ok(&l.ctl(&["group", "remove", "staff"], None)),
        "removed group staff\n"
    );
    assert!(ok(&l.ctl(&["group", "list"], None)).is_empty());
}
