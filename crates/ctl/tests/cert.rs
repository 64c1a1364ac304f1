//! `causeriectl cert generate|import|list` as an administrator runs them: the real binary on a
//! configuration in a temporary folder. Bad input is refused with exit code 2 and changes
//! nothing; what is written is where the server takes each domain's certificate from.

mod support;

use support::{DAY, Env, certificate, entry, err, json, mode, out, said, write};

fn read(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[test]
fn generate_writes_where_the_server_looks_then_check_passes() {
    let env = Env::new(&["localhost", "chat.example.test"], "", "");
    let o = env.ctl(&["cert", "generate"]);
    assert!(o.status.success(), "{}", said(&o));
    let tls = env.data().join("tls");
    for domain in ["localhost", "chat.example.test"] {
        let cert = tls.join(format!("{domain}.crt"));
        let key = tls.join(format!("{domain}.key"));
        assert_eq!(mode(&key), 0o600, "{domain} key");
        assert_eq!(mode(&cert), 0o644, "{domain} certificate");
        assert!(
            out(&o).contains(&cert.display().to_string()),
            "{}",
            said(&o)
        );
    }
    assert!(err(&o).contains("next time it starts"), "{}", said(&o));

    let o = env.ctl(&["check", "certificates", "permissions", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let report = json(&o);
    assert!(support::with_status(&report, "fail").is_empty(), "{report}");
    let warnings = support::with_status(&report, "warn");
    // Self-signed is fine for localhost, worth a warning for a real domain.
    assert_eq!(
        warnings,
        vec![(
            "certificate chat.example.test".to_owned(),
            "it is self-signed: clients and federation peers refuse it unless told to trust it"
                .to_owned()
        )]
    );

    let list = env.ctl(&["cert", "list", "--json"]);
    assert!(list.status.success(), "{}", said(&list));
    let rows = json(&list);
    assert_eq!(rows[1]["domain"], "chat.example.test");
    assert_eq!(rows[1]["self_signed"], true);
    assert_eq!(rows[1]["configured"], false);
    assert_eq!(
        rows[1]["names"],
        serde_json::json!(["chat.example.test", "*.chat.example.test"])
    );
}

#[test]
fn generate_refuses_to_overwrite_without_force() {
    let env = Env::new(&["localhost"], "", "");
    assert!(env.ctl(&["cert", "generate"]).status.success());
    let cert = env.data().join("tls/localhost.crt");
    let first = read(&cert);
    let o = env.ctl(&["cert", "generate"]);
    assert_eq!(o.status.code(), Some(1), "{}", said(&o));
    assert!(err(&o).contains("refusing to overwrite"), "{}", said(&o));
    assert_eq!(read(&cert), first, "unchanged");
    let o = env.ctl(&["cert", "generate", "--force", "--days", "10"]);
    assert!(o.status.success(), "{}", said(&o));
    assert_ne!(read(&cert), first, "replaced");
    let rows = json(&env.ctl(&["cert", "list", "--json"]));
    let until = rows[0]["not_after"].as_str().unwrap_or_default().to_owned();
    let in_ten_days = causerie_policy::rfc3339::format(unix_now() + 10 * DAY as i64);
    // Same day, give or take the minute the test takes.
    assert_eq!(until[..10], in_ten_days[..10], "{until}");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn generate_into_a_folder_for_any_domain_and_checks_its_arguments() {
    let env = Env::new(&["localhost"], "", "");
    let dir = env.path("out");
    let o = env.ctl(&[
        "cert",
        "generate",
        "--domain",
        "Partner.Example",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", said(&o));
    let pem = read(&dir.join("partner.example.crt")).expect("certificate");
    let chain = causerie_tls::inspect::parse_chain(pem.as_bytes()).expect("chain");
    let info = causerie_tls::inspect::CertInfo::from_der(&chain[0]).expect("info");
    assert!(info.covers("partner.example") && info.covers("muc.partner.example"));
    assert_eq!(mode(&dir.join("partner.example.key")), 0o600);
    assert!(
        !env.data().join("tls").exists(),
        "nothing where the server looks"
    );

    for (args, needle) in [
        (
            &["cert", "generate", "--domain", "elsewhere.example"][..],
            "not a hosted domain",
        ),
        (&["cert", "generate", "--days", "0"], "invalid value"),
        (
            &["cert", "generate", "--domain", "bad domain"],
            "not a domain",
        ),
    ] {
        let o = env.ctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", said(&o));
        assert!(err(&o).contains(needle), "{args:?}: {}", said(&o));
    }
    assert!(!env.data().join("tls").exists(), "nothing written");
}

/// A configuration whose domain takes its certificate from `[[tls.certificates]]` files that
/// do not exist yet.
fn configured(
    env_domains: &[&str],
    entry_domain: &str,
) -> (Env, std::path::PathBuf, std::path::PathBuf) {
    let env = Env::new(env_domains, "", "");
    let cert = env.path("pki/server.crt");
    let key = env.path("pki/server.key");
    env.write_config(env_domains, "", &entry(entry_domain, &cert, &key));
    (env, cert, key)
}

#[test]
fn import_installs_a_ca_certificate_atomically_with_a_private_key() {
    let (env, cert, key) = configured(&["localhost", "chat.example.test"], "chat.example.test");
    let ca = causerie_testkit::certs::test_ca();
    let (leaf, leaf_key) = ca.issue(&["chat.example.test"]);
    // One file with the chain and the key, as some tools write them.
    let combined = env.path("incoming/combined.pem");
    write(&combined, &format!("{leaf}{}{leaf_key}", ca.cert_pem()));
    let path = combined.to_str().expect("utf-8");
    let o = env.ctl(&["cert", "import", path, path]);
    assert!(o.status.success(), "{}", said(&o));
    assert!(
        out(&o).contains("chat.example.test: installed"),
        "{}",
        said(&o)
    );
    assert_eq!(mode(&key), 0o600);
    let installed = read(&cert).expect("certificate");
    assert!(
        !installed.contains("PRIVATE KEY"),
        "the key stays out of the certificate file"
    );
    assert_eq!(
        installed.matches("BEGIN CERTIFICATE").count(),
        2,
        "the chain is kept"
    );
    // Only the domain the certificate names was installed; no stray temporary files.
    assert!(!env.data().join("tls/localhost.crt").exists());
    let entries: Vec<_> = std::fs::read_dir(env.path("pki"))
        .expect("folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");

    let rows = json(&env.ctl(&["cert", "list", "--json"]));
    assert_eq!(rows[1]["configured"], true);
    assert_eq!(rows[1]["self_signed"], false);
    assert_eq!(rows[1]["problem"], serde_json::Value::Null);
    let o = env.ctl(&["check", "certificates"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
}

#[test]
fn a_key_of_another_certificate_is_refused_and_nothing_is_written() {
    let (env, cert, key) = configured(&["chat.example.test"], "chat.example.test");
    let (good, _) = certificate(&["chat.example.test"], -(DAY as i64), 90 * DAY as i64);
    let (_, other_key) = certificate(&["chat.example.test"], -(DAY as i64), 90 * DAY as i64);
    let cert_in = env.path("in/cert.pem");
    let key_in = env.path("in/key.pem");
    write(&cert_in, &good);
    write(&key_in, &other_key);
    let o = env.ctl(&[
        "cert",
        "import",
        cert_in.to_str().expect("utf-8"),
        key_in.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(
        err(&o).contains("the private key does not belong to the certificate"),
        "{}",
        said(&o)
    );
    assert!(err(&o).contains("nothing was installed"), "{}", said(&o));
    assert!(!cert.exists() && !key.exists());
    assert!(!env.path("pki").exists(), "not even the folder");
}

type Case<'a> = (&'a str, (String, String), Vec<&'a str>, &'a str);

#[test]
fn bad_certificates_are_refused_with_the_reason_and_old_files_stay() {
    let (env, cert, key) = configured(&["chat.example.test", "localhost"], "chat.example.test");
    // What is installed now must survive every refused import.
    let (old_cert, old_key) = certificate(&["chat.example.test"], -(DAY as i64), 90 * DAY as i64);
    write(&cert, &old_cert);
    write(&key, &old_key);
    // (what, (certificate, key), extra arguments, what the refusal says)
    let cases: Vec<Case> = vec![
        (
            "expired",
            certificate(&["chat.example.test"], -90 * DAY as i64, -(DAY as i64)),
            vec![],
            "expired on",
        ),
        (
            "not yet valid",
            certificate(&["chat.example.test"], 10 * DAY as i64, 90 * DAY as i64),
            vec![],
            "not valid before",
        ),
        (
            "other domain",
            certificate(&["other.example.org"], -(DAY as i64), 90 * DAY as i64),
            vec![],
            "names none of the hosted domains",
        ),
        (
            "asked for a domain it does not name",
            certificate(&["chat.example.test"], -(DAY as i64), 90 * DAY as i64),
            vec!["--domain", "localhost"],
            "it does not name localhost",
        ),
        (
            "not hosted",
            certificate(&["chat.example.test"], -(DAY as i64), 90 * DAY as i64),
            vec!["--domain", "elsewhere.example"],
            "not a hosted domain",
        ),
        (
            "not PEM",
            ("hello".to_owned(), "world".to_owned()),
            vec![],
            "no PEM certificate found",
        ),
    ];
    for (what, (c, k), extra, needle) in cases {
        let cert_in = env.path("in/cert.pem");
        let key_in = env.path("in/key.pem");
        write(&cert_in, &c);
        write(&key_in, &k);
        let mut args = vec![
            "cert",
            "import",
            cert_in.to_str().expect("utf-8"),
            key_in.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        let o = env.ctl(&args);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", said(&o));
        assert!(err(&o).contains(needle), "{what}: {}", said(&o));
        assert_eq!(read(&cert).as_deref(), Some(old_cert.as_str()), "{what}");
        assert_eq!(read(&key).as_deref(), Some(old_key.as_str()), "{what}");
    }
    let o = env.ctl(&[
        "cert",
        "import",
        "/nonexistent/cert.pem",
        "/nonexistent/key.pem",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(err(&o).contains("/nonexistent/cert.pem"), "{}", said(&o));
}

#[test]
fn a_certificate_ending_soon_is_installed_with_a_warning() {
    let (env, cert, _) = configured(&["chat.example.test"], "chat.example.test");
    let (c, k) = certificate(&["chat.example.test"], -(DAY as i64), 5 * DAY as i64);
    let cert_in = env.path("in/cert.pem");
    let key_in = env.path("in/key.pem");
    write(&cert_in, &c);
    write(&key_in, &k);
    let o = env.ctl(&[
        "cert",
        "import",
        cert_in.to_str().expect("utf-8"),
        key_in.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", said(&o));
    assert!(
        err(&o).contains("warning: chat.example.test: it expires on"),
        "{}",
        said(&o)
    );
    assert!(cert.exists());
}
