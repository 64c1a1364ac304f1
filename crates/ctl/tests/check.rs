//! `causeriectl check` as an administrator runs it: the real binary on a configuration in a
//! temporary folder, with a small DNS server on loopback for the DNS checks and an in-process
//! server for the ports it holds. Exit code 0 without failures, 1 with one, 3 when the
//! configuration cannot be loaded.

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use support::{DAY, Env, certificate, chmod, entry, json, out, said, with_status, write};

/// One finding of a `--json` report by its check name.
fn finding<'a>(report: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    report
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no check {check} in {report}"))
}

#[test]
fn a_good_setup_passes_and_the_json_has_its_shape() {
    let env = Env::new(&["localhost"], "", "");
    assert!(env.ctl(&["cert", "generate"]).status.success());
    let o = env.ctl(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let text = out(&o);
    for group in [
        "config",
        "certificates",
        "dns",
        "ports",
        "database",
        "permissions",
    ] {
        assert!(text.lines().any(|l| l == group), "{group}: {text}");
    }
    assert!(text.contains("0 failures"), "{text}");

    let o = env.ctl(&["check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let report = json(&o);
    let findings = report.as_array().expect("an array");
    assert!(findings.len() >= 8, "{report}");
    for f in findings {
        let object = f.as_object().expect("objects");
        for key in object.keys() {
            assert!(
                ["group", "check", "status", "message", "hint"].contains(&key.as_str()),
                "{key} in {f}"
            );
        }
        assert!(f["group"].is_string() && f["check"].is_string() && f["message"].is_string());
        assert!(
            ["ok", "warn", "skip"].contains(&f["status"].as_str().unwrap_or_default()),
            "{f}"
        );
        // A hint comes with what should change, never with what is fine.
        let calm = f["status"] == "ok" || f["status"] == "skip";
        assert_eq!(calm, f.get("hint").is_none(), "{f}");
    }
    assert_eq!(finding(&report, "dns localhost")["status"], "skip");
    assert_eq!(finding(&report, "certificate localhost")["status"], "ok");
    assert_eq!(
        finding(&report, "port c2s.starttls_listen[0]")["status"],
        "ok"
    );
    assert_eq!(finding(&report, "database")["status"], "ok");
}

#[test]
fn an_unloadable_configuration_reports_every_problem_and_exits_3() {
    let env = Env::new(&["localhost"], "", "");
    std::fs::write(
        &env.config,
        "[server]\ndomains = [\"Bad Domain\"]\n[c2s]\nsend_queue_len = 0\n",
    )
    .expect("config");
    let o = env.ctl(&["check", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", said(&o));
    let report = json(&o);
    let failures = with_status(&report, "fail");
    assert_eq!(failures.len(), 2, "{report}");
    assert_eq!(failures[0].0, "server.domains[0]");
    assert!(
        failures[0].1.contains("causerie.toml:2: server.domains[0]"),
        "{report}"
    );
    assert_eq!(failures[1].0, "c2s.send_queue_len");

    let o = support::run_ctl(&env.path("absent.toml"), &["check"]);
    assert_eq!(o.status.code(), Some(3), "{}", said(&o));
    assert!(out(&o).contains("fail  config: "), "{}", said(&o));
}

#[test]
fn risky_settings_are_warnings() {
    let env = Env::new(
        &["localhost"],
        "auth.allow_plain = true\nc2s.require_encryption = false\n",
        "",
    );
    let o = env.ctl(&["check", "config", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let warnings = with_status(&json(&o), "warn");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].1.starts_with("c2s.require_encryption is false"));
    assert!(warnings[1].1.starts_with("auth.allow_plain is true"));
}

/// A configuration whose domain uses the certificate and key given, from configured files.
fn with_certificate(domain: &str, cert_pem: &str, key_pem: &str) -> Env {
    let env = Env::new(&[domain], "", "");
    let cert = env.path("pki/server.crt");
    let key = env.path("pki/server.key");
    write(&cert, cert_pem);
    write(&key, key_pem);
    chmod(&key, 0o600);
    env.write_config(&[domain], "", &entry(domain, &cert, &key));
    env
}

/// (check, message) pairs of one status.
type Findings = Vec<(String, String)>;

/// The exit code, the failures and the warnings of `check certificates` on `env`.
fn certificate_finding(env: &Env, domain: &str) -> (Option<i32>, Findings, Findings) {
    let o = env.ctl(&["check", "certificates", "--json"]);
    let report = json(&o);
    let _ = finding(&report, &format!("certificate {domain}"));
    (
        o.status.code(),
        with_status(&report, "fail"),
        with_status(&report, "warn"),
    )
}

#[test]
fn an_expired_certificate_fails_and_one_ending_soon_warns() {
    let (c, k) = certificate(&["localhost"], -90 * DAY as i64, -(DAY as i64));
    let env = with_certificate("localhost", &c, &k);
    let (code, failures, _) = certificate_finding(&env, "localhost");
    assert_eq!(code, Some(1));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].1.starts_with("it expired on "), "{failures:?}");

    // Half a day more, so that the whole days left do not depend on the test's speed.
    let (c, k) = certificate(&["localhost"], -(DAY as i64), (10 * DAY + DAY / 2) as i64);
    let env = with_certificate("localhost", &c, &k);
    let (code, failures, warnings) = certificate_finding(&env, "localhost");
    assert_eq!(code, Some(0));
    assert!(failures.is_empty(), "{failures:?}");
    assert!(warnings[0].1.starts_with("it expires on "), "{warnings:?}");
    assert!(warnings[0].1.ends_with("in 10 days"), "{warnings:?}");
}

#[test]
fn a_certificate_for_another_domain_or_with_another_key_fails() {
    let (c, k) = certificate(&["other.example.org"], -(DAY as i64), 90 * DAY as i64);
    let env = with_certificate("chat.example.test", &c, &k);
    let (code, failures, warnings) = certificate_finding(&env, "chat.example.test");
    assert_eq!(code, Some(1));
    assert_eq!(
        failures,
        vec![(
            "certificate chat.example.test".to_owned(),
            "it does not name chat.example.test (it names other.example.org)".to_owned()
        )]
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.1.starts_with("it is self-signed"))
    );

    // A wildcard one label up covers the domain.
    let (c, k) = certificate(&["*.example.test"], -(DAY as i64), 90 * DAY as i64);
    let env = with_certificate("chat.example.test", &c, &k);
    assert_eq!(certificate_finding(&env, "chat.example.test").0, Some(0));

    let (c, _) = certificate(&["localhost"], -(DAY as i64), 90 * DAY as i64);
    let (_, other_key) = certificate(&["localhost"], -(DAY as i64), 90 * DAY as i64);
    let env = with_certificate("localhost", &c, &other_key);
    let (code, failures, _) = certificate_finding(&env, "localhost");
    assert_eq!(code, Some(1));
    assert_eq!(
        failures[0].1,
        "the private key does not belong to the certificate"
    );

    let env = with_certificate("localhost", "not a certificate", "nor a key");
    let (code, failures, _) = certificate_finding(&env, "localhost");
    assert_eq!(code, Some(1));
    assert!(
        failures[0].1.contains("no PEM certificate found"),
        "{failures:?}"
    );
}

#[test]
fn a_port_taken_by_another_program_fails() {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = squatter.local_addr().expect("addr");
    // It accepts and hangs up at once, as a program that is not an XMPP server may.
    let stop = Arc::new(AtomicBool::new(false));
    squatter.set_nonblocking(true).expect("nonblocking");
    let accepting = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match squatter.accept() {
                    Ok((conn, _)) => drop(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    };
    let env = Env::new(&["localhost"], "", "");
    let text = std::fs::read_to_string(&env.config).expect("config");
    let replaced = text
        .lines()
        .map(|l| {
            if l.starts_with("c2s.starttls_listen") {
                format!("c2s.starttls_listen = [\"{addr}\"]")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&env.config, replaced).expect("config");
    let started = Instant::now();
    let o = env.ctl(&["check", "ports", "--json"]);
    stop.store(true, Ordering::Relaxed);
    let _ = accepting.join();
    assert_eq!(o.status.code(), Some(1), "{}", said(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
    let report = json(&o);
    let taken = finding(&report, "port c2s.starttls_listen[0]");
    assert_eq!(taken["status"], "fail", "{report}");
    let message = taken["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{addr} is in use by another program")),
        "{message}"
    );
    assert!(
        message.contains("does not answer with an XMPP stream"),
        "{message}"
    );
    assert_eq!(finding(&report, "port s2s.listen[0]")["status"], "ok");
}

#[test]
fn ports_held_by_the_running_server_pass() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(causerie_testkit::harness::TestServer::start())
        .expect("server starts");
    let running = server.running.as_ref().expect("running");
    let env = Env::new(&["localhost"], "", "");
    let list = |addrs: &[SocketAddr]| {
        addrs
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    std::fs::write(
        &env.config,
        format!(
            "server.domains = [\"localhost\"]\nserver.data_dir = {:?}\nadmin.socket = {:?}\n\
             c2s.starttls_listen = [{}]\nc2s.direct_tls_listen = [{}]\n\
             s2s.listen = [{}]\ns2s.direct_tls_listen = [{}]\nhttp.listen = [{}]\n",
            server.config.server.data_dir.display().to_string(),
            running.admin_socket.display().to_string(),
            list(&running.starttls_addrs),
            list(&running.direct_tls_addrs),
            list(&running.s2s_addrs),
            list(&running.s2s_direct_tls_addrs),
            list(&running.http_addrs),
        ),
    )
    .expect("config");
    let o = env.ctl(&["check", "ports", "permissions", "certificates", "--json"]);
    let report = json(&o);
    assert_eq!(o.status.code(), Some(0), "{report}");
    for key in [
        "c2s.starttls_listen[0]",
        "c2s.direct_tls_listen[0]",
        "s2s.listen[0]",
        "s2s.direct_tls_listen[0]",
        "http.listen[0]",
    ] {
        let f = finding(&report, &format!("port {key}"));
        assert_eq!(f["status"], "ok", "{f}");
        assert!(
            f["message"]
                .as_str()
                .unwrap_or_default()
                .contains("in use by the running server"),
            "{f}"
        );
    }
    let socket = format!("admin socket {}", running.admin_socket.display());
    assert_eq!(finding(&report, &socket)["message"], "mode 0600");
    assert!(with_status(&report, "fail").is_empty(), "{report}");
    rt.block_on(server.stop());
}

#[test]
fn a_bad_database_fails() {
    for (url, needle) in [
        ("sqlite:///nonexistent-folder/causerie.db", "cannot be used"),
        (
            "postgres://causerie@127.0.0.1:1/causerie",
            "cannot connect to PostgreSQL",
        ),
    ] {
        let env = Env::new(
            &["localhost"],
            &format!("database.url = {url:?}\ndatabase.connect_timeout_secs = 2\n"),
            "",
        );
        let o = env.ctl(&["check", "database", "--json"]);
        assert_eq!(o.status.code(), Some(1), "{url}: {}", said(&o));
        let report = json(&o);
        let f = finding(&report, "database");
        assert_eq!(f["status"], "fail", "{f}");
        assert!(
            f["message"].as_str().unwrap_or_default().contains(needle),
            "{f}"
        );
        assert!(f["hint"].is_string(), "{f}");
    }
}

#[test]
fn the_database_reports_its_schema() {
    let env = Env::new(&["localhost"], "", "");
    // Any command that opens the database migrates it.
    let o = env.ctl(&["federation", "list"]);
    assert!(o.status.success(), "{}", said(&o));
    let o = env.ctl(&["check", "database", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let report = json(&o);
    let message = finding(&report, "database")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with("sqlite: answers; schema current (m0"),
        "{message}"
    );
}

#[test]
fn secret_files_readable_by_others_fail() {
    let env = Env::new(&["localhost"], "", "");
    assert!(env.ctl(&["cert", "generate"]).status.success());
    let secret = env.data().join("server.secret");
    write(&secret, "0123456789abcdef0123456789abcdef");
    chmod(&secret, 0o644);
    let policy_key = env.data().join("policy.key");
    write(&policy_key, "key");
    chmod(&policy_key, 0o640);
    chmod(&env.data().join("tls/localhost.key"), 0o640);
    chmod(&env.data(), 0o755);
    let o = env.ctl(&["check", "permissions", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", said(&o));
    let report = json(&o);
    let status = |check: String| finding(&report, &check)["status"].clone();
    assert_eq!(
        status(format!("server secret {}", secret.display())),
        "fail"
    );
    // The server refuses a receipt key its group can read; a TLS key so is only a warning.
    assert_eq!(
        status(format!("policy receipt key {}", policy_key.display())),
        "fail"
    );
    assert_eq!(
        status(format!(
            "TLS key of localhost {}",
            env.data().join("tls/localhost.key").display()
        )),
        "warn"
    );
    assert_eq!(status(format!("folder {}", env.data().display())), "warn");
}

type Zone = Vec<((String, RecordType), Vec<RData>)>;

/// An authoritative DNS server for `zone` on 127.0.0.1 until `stop` is set; names it does not
/// know are NXDOMAIN.
fn dns_server(zone: Zone, stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let Some(question) = query.queries.first() else {
                continue;
            };
            let owner = question.name().to_ascii().to_ascii_lowercase();
            let mut response = Message::response(query.metadata.id, OpCode::Query);
            response.metadata.authoritative = true;
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(question.clone());
            let known = zone.iter().any(|((name, _), _)| *name == owner);
            match zone
                .iter()
                .find(|((name, kind), _)| *name == owner && *kind == question.query_type())
            {
                Some((_, data)) => {
                    for rdata in data {
                        response.add_answer(Record::from_rdata(
                            question.name().clone(),
                            300,
                            rdata.clone(),
                        ));
                    }
                }
                None if known => {}
                None => response.metadata.response_code = ResponseCode::NXDomain,
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    (addr, thread)
}

#[test]
fn dns_records_are_found_or_named_for_adding() {
    let (c, k) = certificate(&["example.test"], -(DAY as i64), 90 * DAY as i64);
    let env = with_certificate("example.test", &c, &k);
    let port = |line: &str| -> u16 {
        let text = std::fs::read_to_string(&env.config).expect("config");
        text.lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim_end_matches("\"]").parse().ok())
            .expect("port")
    };
    let client_port = port("c2s.starttls_listen");
    let target = Name::from_ascii("xmpp.example.test.").expect("name");
    let zone: Zone = vec![
        (
            ("_xmpp-client._tcp.example.test.".into(), RecordType::SRV),
            vec![RData::SRV(SRV::new(0, 5, client_port, target))],
        ),
        (
            ("example.test.".into(), RecordType::A),
            vec![RData::A(A(Ipv4Addr::new(192, 0, 2, 10)))],
        ),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let (dns, thread) = dns_server(zone, stop.clone());
    // The same file, now asking the test's DNS server.
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(&env.config, format!("s2s.resolver = [\"{dns}\"]\n{text}")).expect("config");
    let o = env.ctl(&["check", "dns", "--json"]);
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let report = json(&o);
    let client = finding(&report, "srv _xmpp-client._tcp.example.test");
    assert_eq!(client["status"], "ok", "{client}");
    assert_eq!(
        client["message"],
        format!("0 5 {client_port} xmpp.example.test")
    );
    let server = finding(&report, "srv _xmpp-server._tcp.example.test");
    assert_eq!(server["status"], "warn", "{server}");
    assert_eq!(server["message"], "no record");
    let s2s_port = port("s2s.listen");
    assert_eq!(
        server["hint"],
        format!(
            "add `_xmpp-server._tcp.example.test. 3600 IN SRV 0 5 {s2s_port} example.test.` \
             (the target needs an A/AAAA record)"
        )
    );
    assert_eq!(
        finding(&report, "address example.test")["message"],
        "192.0.2.10"
    );
}

#[test]
fn a_silent_dns_server_is_a_warning_within_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let env = Env::new(
        &["example.test"],
        &format!("s2s.resolver = [\"{addr}\"]\n"),
        "",
    );
    let started = Instant::now();
    let o = env.ctl(&["check", "dns", "--dns-timeout", "1", "--json"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let report = json(&o);
    let f = finding(&report, "dns example.test");
    assert_eq!(f["status"], "warn", "{f}");
    assert_eq!(f["message"], "no answer within 1 s");
    drop(silent);
}
