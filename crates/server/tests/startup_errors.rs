//! What the `causerie` binary prints when it cannot start: one line that names the cause once,
//! and a failure exit status.

use std::process::{Command, Stdio};

fn start(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("causerie.toml");
    let config = config.replace("DATA", &dir.path().join("data").display().to_string());
    std::fs::write(&path, config).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_causerie"))
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn last_line(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or("")
}

#[test]
fn a_taken_port_is_named_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let (code, stderr) = start(&format!(
        "[server]\ndomains = [\"localhost\"]\ndata_dir = \"DATA\"\n\
         [c2s]\nstarttls_listen = [\"{addr}\"]\ndirect_tls_listen = []\n\
         [s2s]\nlisten = []\ndirect_tls_listen = []\n[http]\nlisten = []\n"
    ));
    assert_eq!(code, Some(1), "{stderr}");
    let line = last_line(&stderr);
    assert!(
        line.starts_with("causerie: start-up failed: cannot listen on"),
        "{stderr}"
    );
    assert!(line.contains(&addr.to_string()), "{line}");
    assert_eq!(line.matches("in use").count(), 1, "{line}");
}

#[test]
fn an_unreachable_database_is_named_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (code, stderr) = start(&format!(
        "[server]\ndomains = [\"localhost\"]\ndata_dir = \"DATA\"\n\
         [database]\nurl = \"postgres://nobody@127.0.0.1:{port}/x\"\n\
         [c2s]\nstarttls_listen = [\"127.0.0.1:0\"]\ndirect_tls_listen = []\n\
         [s2s]\nlisten = []\ndirect_tls_listen = []\n[http]\nlisten = []\n"
    ));
    assert_eq!(code, Some(1), "{stderr}");
    let line = last_line(&stderr);
    assert!(
        line.starts_with("causerie: start-up failed: database:"),
        "{stderr}"
    );
    assert_eq!(line.matches("refused").count(), 1, "{line}");
}
