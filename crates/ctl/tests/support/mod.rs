//! What the `check` and `cert` tests share: a configuration in a temporary folder, the real
//! binary, and certificates with chosen names and validity.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

pub const DAY: u64 = 86_400;

/// A temporary folder with a configuration file; the data folder is `DIR/data`.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// `domains` hosted; the XMPP listeners on free loopback ports, no HTTP listener (nothing
    /// of the machine's own ports is probed). `root` holds more `key = value` lines for the top
    /// of the file (dotted keys such as `s2s.resolver = [...]`), `tables` more tables for its
    /// end (`[[tls.certificates]]` blocks).
    pub fn new(domains: &[&str], root: &str, tables: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("causerie.toml");
        let env = Env { dir, config };
        env.write_config(domains, root, tables);
        env
    }

    pub fn write_config(&self, domains: &[&str], root: &str, tables: &str) {
        let list = |items: Vec<String>| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ports = free_ports(4);
        let port = |i: usize| vec![format!("127.0.0.1:{}", ports[i])];
        let text = format!(
            "server.domains = [{}]\nserver.data_dir = {:?}\n\
             c2s.starttls_listen = [{}]\nc2s.direct_tls_listen = [{}]\n\
             s2s.listen = [{}]\ns2s.direct_tls_listen = [{}]\nhttp.listen = []\n{root}\n{tables}\n",
            list(domains.iter().map(|d| d.to_string()).collect()),
            self.data().display().to_string(),
            list(port(0)),
            list(port(1)),
            list(port(2)),
            list(port(3)),
        );
        std::fs::write(&self.config, text).expect("config");
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        run_ctl(&self.config, args)
    }
}

pub fn run_ctl(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_causeriectl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run causeriectl")
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything the command said, for assertion messages.
pub fn said(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        out(o),
        err(o)
    )
}

/// `n` different loopback ports nothing listens on now (all are held until all are known, so
/// that none comes twice).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("folder");
    }
    std::fs::write(path, text).expect("write");
}

/// A self-signed certificate for `names`, valid from `now + from` to `now + until` (seconds,
/// negative for the past): (PEM certificate, PEM key).
pub fn certificate(names: &[&str], from: i64, until: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = at(from).into();
    params.not_after = at(until).into();
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn at(offset: i64) -> SystemTime {
    let now = SystemTime::now();
    let delta = Duration::from_secs(offset.unsigned_abs());
    if offset < 0 { now - delta } else { now + delta }
}

/// A `[[tls.certificates]]` block.
pub fn entry(domain: &str, cert: &Path, key: &Path) -> String {
    format!(
        "[[tls.certificates]]\ndomain = {domain:?}\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// The mode bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The checks of a `--json` report with the given status, as (check, message) pairs.
pub fn with_status(report: &serde_json::Value, status: &str) -> Vec<(String, String)> {
    report
        .as_array()
        .expect("an array")
        .iter()
        .filter(|f| f["status"] == status)
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_owned(),
                f["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", said(o)))
}
