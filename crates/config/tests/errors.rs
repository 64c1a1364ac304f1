//! Every validation rule refuses a bad value with `file:line: key: problem`, and a file with
//! several problems reports them all.

use causerie_config::{Config, ConfigError};

const ORIGIN: &str = "causerie.toml";

/// The error lines for `text`, which must be refused.
fn errors(text: &str) -> Vec<String> {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(config) => panic!("accepted:\n{text}\nas {config:?}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

/// `text` is refused with exactly one problem, which starts with `expected`.
#[track_caller]
fn refused(text: &str, expected: &str) -> String {
    let found = errors(text);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    assert!(
        found[0].starts_with(expected),
        "expected a line starting with\n  {expected}\ngot\n  {}",
        found[0]
    );
    found[0].clone()
}

#[track_caller]
fn accepted(text: &str) -> Config {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(config) => config,
        Err(e) => panic!("refused:\n{text}\n{e}"),
    }
}

// [server]

#[test]
fn domains_must_not_be_empty() {
    refused(
        "[server]\ndomains = []\n",
        "causerie.toml:2: server.domains: at least one hosted domain",
    );
}

#[test]
fn domains_must_be_lowercase_dns_names() {
    refused(
        "[server]\n\ndomains = [\"localhost\", \"Example.com\"]\n",
        "causerie.toml:3: server.domains[1]: `Example.com` must be written in lowercase",
    );
    refused(
        "[server]\ndomains = [\"chat_room.example\"]\n",
        "causerie.toml:2: server.domains[0]: `chat_room.example` contains `_`",
    );
    refused(
        "[server]\ndomains = [\"192.0.2.1\"]\n",
        "causerie.toml:2: server.domains[0]: `192.0.2.1` is an IP address",
    );
    let config = accepted("[server]\ndomains = [\"bücher.example\", \"xn--bcher-kva.example\"]\n");
    assert_eq!(config.server.domains.len(), 2);
}

#[test]
fn domains_must_not_repeat() {
    refused(
        "[server]\ndomains = [\n  \"example.com\",\n  \"example.com\",\n]\n",
        "causerie.toml:4: server.domains[1]: `example.com` is already listed as server.domains[0]",
    );
}

#[test]
fn without_self_signed_every_domain_needs_a_certificate() {
    refused(
        "[server]\ndomains = [\"example.com\"]\n[tls]\nself_signed_for_missing = false\n",
        "causerie.toml:2: server.domains[0]: no [[tls.certificates]] block covers `example.com`",
    );
    accepted(
        "[server]\ndomains = [\"chat.example.com\"]\n\
         [tls]\nself_signed_for_missing = false\n\
         [[tls.certificates]]\ndomain = \"*.example.com\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
    );
}

#[test]
fn data_dir_must_not_be_empty() {
    refused(
        "[server]\ndata_dir = \"\"\n",
        "causerie.toml:2: server.data_dir: must not be empty",
    );
}

#[test]
fn shutdown_grace_is_bounded() {
    refused(
        "[server]\nshutdown_grace_secs = 7200\n",
        "causerie.toml:2: server.shutdown_grace_secs: must be at most 3600 (got 7200)",
    );
}

// [database]

#[test]
fn database_url_must_be_supported_and_is_not_echoed() {
    refused(
        "[database]\nurl = \"\"\n",
        "causerie.toml:2: database.url: must not be empty",
    );
    let line = refused(
        "[database]\nurl = \"mysql://causerie:hunter2@db/causerie\"\n",
        "causerie.toml:2: database.url: unsupported database URL scheme `mysql`",
    );
    assert!(!line.contains("hunter2"), "the password leaked: {line}");
    accepted("[database]\nurl = \"postgresql://db.example/causerie\"\n");
    accepted("[database]\nurl = \"sqlite:///var/lib/causerie/db.sqlite?mode=rwc\"\n");
}

#[test]
fn database_pool_is_bounded() {
    refused(
        "[database]\nmax_connections = 0\n",
        "causerie.toml:2: database.max_connections: must be at least 1 (got 0)",
    );
    refused(
        "[database]\nconnect_timeout_secs = 0\n",
        "causerie.toml:2: database.connect_timeout_secs: must be at least 1 (got 0)",
    );
}

// [tls]

#[test]
fn min_version_is_1_2_or_1_3() {
    refused(
        "[tls]\nmin_version = \"1.1\"\n",
        "causerie.toml:2: tls.min_version: must be \"1.2\" or \"1.3\" (got \"1.1\")",
    );
    assert_eq!(
        accepted("[tls]\nmin_version = \"1.3\"\n").tls.min_version,
        "1.3"
    );
}

#[test]
fn certificate_domain_must_be_hosted() {
    refused(
        "[server]\ndomains = [\"example.com\"]\n\n\
         [[tls.certificates]]\ncert = \"c.pem\"\ndomain = \"example.org\"\nkey = \"k.pem\"\n",
        "causerie.toml:6: tls.certificates[0].domain: `example.org` is not a hosted domain",
    );
    refused(
        "[server]\ndomains = [\"example.com\"]\n\n\
         [[tls.certificates]]\ndomain = \"*.example.com\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        "causerie.toml:5: tls.certificates[0].domain: `*.example.com` covers none of the hosted",
    );
    refused(
        "[[tls.certificates]]\ndomain = \"*.com\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        "causerie.toml:2: tls.certificates[0].domain: wildcard `*.com` is too broad",
    );
}

#[test]
fn certificate_entries_need_every_key() {
    // A key missing from an entry is reported at the entry's header.
    refused(
        "[server]\ndomains = [\"example.com\"]\n\n\
         [[tls.certificates]]\ndomain = \"example.com\"\nkey = \"k.pem\"\n",
        "causerie.toml:4: tls.certificates[0].cert: missing",
    );
    refused(
        "[[tls.certificates]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        "causerie.toml:1: tls.certificates[0].domain: missing",
    );
}

#[test]
fn certificate_domains_do_not_repeat() {
    refused(
        "[server]\ndomains = [\"example.com\"]\n\
         [[tls.certificates]]\ndomain = \"example.com\"\ncert = \"a.pem\"\nkey = \"a.key\"\n\
         [[tls.certificates]]\ndomain = \"example.com\"\ncert = \"b.pem\"\nkey = \"b.key\"\n",
        "causerie.toml:8: tls.certificates[1].domain: `example.com` already has a certificate",
    );
}

#[test]
fn certificates_may_be_inline_tables() {
    let config = accepted(
        "[server]\ndomains = [\"example.com\"]\n[tls]\n\
         certificates = [{ domain = \"example.com\", cert = \"c.pem\", key = \"k.pem\" }]\n",
    );
    assert_eq!(config.tls.certificates.len(), 1);
    assert_eq!(config.tls.certificates[0].key.to_str(), Some("k.pem"));
}

// [c2s]

#[test]
fn listen_addresses_are_socket_addresses() {
    refused(
        "[c2s]\nstarttls_listen = [\"0.0.0.0:5222\", \"localhost:5222\"]\n",
        "causerie.toml:2: c2s.starttls_listen[1]: `localhost:5222` is not a socket address",
    );
    refused(
        "[c2s]\ndirect_tls_listen = [\"::5223\"]\n",
        "causerie.toml:2: c2s.direct_tls_listen[0]: `::5223` is not a socket address",
    );
    let config = accepted(
        "[c2s]\nstarttls_listen = [\"0.0.0.0:5222\", \"[::1]:5222\"]\ndirect_tls_listen = []\n",
    );
    assert_eq!(config.c2s.starttls_listen.len(), 2);
}

#[test]
fn at_least_one_listener() {
    refused(
        "[c2s]\nstarttls_listen = []\ndirect_tls_listen = []\n",
        "causerie.toml:2: c2s.starttls_listen: no client listener",
    );
}

#[test]
fn a_listen_address_is_used_once() {
    refused(
        "[c2s]\nstarttls_listen = [\"127.0.0.1:5222\"]\ndirect_tls_listen = [\"127.0.0.1:5222\"]\n",
        "causerie.toml:3: c2s.direct_tls_listen[0]: `127.0.0.1:5222` is already used by \
         c2s.starttls_listen[0]",
    );
}

#[test]
fn port_zero_may_repeat() {
    let config = accepted(
        "[c2s]\nstarttls_listen = [\"127.0.0.1:0\"]\ndirect_tls_listen = [\"127.0.0.1:0\"]\n",
    );
    assert_eq!(config.c2s.direct_tls_listen, ["127.0.0.1:0"]);
}

#[test]
fn unencrypted_c2s_only_on_loopback() {
    refused(
        "[c2s]\nrequire_encryption = false\n",
        "causerie.toml:2: c2s.require_encryption: false is only allowed when every c2s address \
         is a loopback address, but c2s.starttls_listen[0] is [::]:5222",
    );
    let config = accepted(
        "[c2s]\nrequire_encryption = false\nstarttls_listen = [\"127.0.0.1:0\"]\n\
         direct_tls_listen = [\"[::1]:0\"]\n",
    );
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("require_encryption"))
    );
}

#[test]
fn c2s_timeouts_and_queue_are_bounded() {
    refused(
        "[c2s]\nhandshake_timeout_secs = 0\n",
        "causerie.toml:2: c2s.handshake_timeout_secs: must be at least 1 (got 0)",
    );
    refused(
        "[c2s]\nidle_timeout_secs = 100000\n",
        "causerie.toml:2: c2s.idle_timeout_secs: must be at most 86400 (got 100000)",
    );
    refused(
        "[c2s]\n\n\n\n\n\n\n\n\n\n\nsend_queue_len = 0\n",
        "causerie.toml:12: c2s.send_queue_len: must be at least 1 (got 0)",
    );
}

// [s2s]

#[test]
fn a_full_federation_file_parses() {
    let config = accepted(
        "[server]\ndomains = [\"example.com\"]\n\
         [s2s]\nlisten = [\"[::]:5269\"]\ndirect_tls_listen = [\"[::]:5270\"]\n\
         connect_timeout_secs = 20\nhandshake_timeout_secs = 40\nidle_timeout_secs = 900\n\
         queue_len = 500\ndialback = false\nrequire_valid_certificates = true\n\
         use_system_roots = false\nca_file = \"/etc/causerie/s2s-ca.pem\"\nbidi = false\n\
         resolver = [\"127.0.0.53:53\", \"[2001:db8::53]:5353\"]\nmax_stanza_bytes = 65536\n\
         [federation]\nmode = \"denylist\"\nreload_secs = 60\n\
         deny = [\"Spam.Example.\", \"abuse.example\"]\naudit_streams = false\n\
         [[federation.partners]]\ndomain = \"Partner.Example\"\nroute = \"10.0.0.5:5269\"\n\
         direct_tls = true\nca = \"/etc/causerie/partner-ca.pem\"\n\
         fingerprints = [\n  \"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\",\n  \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\",\n]\n\
         [[federation.partners]]\ndomain = \"v6.example\"\nroute = \"[2001:db8::5]:5270\"\n\
         [[federation.partners]]\ndomain = \"named.example\"\nroute = \"xmpp.named.example:5269\"\n\
         [[federation.partners]]\ndomain = \"lab.example\"\ninsecure = true\n",
    );
    let s2s = &config.s2s;
    assert_eq!(s2s.listen, ["[::]:5269"]);
    assert_eq!(s2s.direct_tls_listen, ["[::]:5270"]);
    assert_eq!(
        (
            s2s.connect_timeout_secs,
            s2s.handshake_timeout_secs,
            s2s.idle_timeout_secs
        ),
        (20, 40, 900)
    );
    assert_eq!((s2s.queue_len, s2s.max_stanza_bytes), (500, 65_536));
    assert!(!s2s.dialback && s2s.require_valid_certificates && !s2s.use_system_roots && !s2s.bidi);
    assert_eq!(
        s2s.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/causerie/s2s-ca.pem"))
    );
    assert_eq!(s2s.resolver.len(), 2);
    let federation = &config.federation;
    assert_eq!(federation.mode, "denylist");
    assert_eq!(federation.reload_secs, 60);
    assert!(!federation.audit_streams);
    // Domains are prepared like a JID's domainpart: lowercase, no final dot.
    assert_eq!(federation.deny, ["spam.example", "abuse.example"]);
    let partners = &federation.partners;
    assert_eq!(partners.len(), 4);
    assert_eq!(partners[0].domain, "partner.example");
    assert_eq!(partners[0].route.as_deref(), Some("10.0.0.5:5269"));
    assert!(partners[0].direct_tls && partners[0].is_pinned());
    // Fingerprints are stored in lowercase without colons.
    assert_eq!(
        partners[0].fingerprints,
        [
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ]
    );
    assert!(!partners[1].direct_tls && !partners[1].is_pinned() && !partners[1].insecure);
    assert!(partners[3].insecure && partners[3].route.is_none());
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn s2s_defaults() {
    let config = accepted("");
    assert_eq!(config.s2s.listen, ["[::]:5269"]);
    assert_eq!(config.s2s.direct_tls_listen, ["[::]:5270"]);
    assert_eq!(config.s2s.connect_timeout_secs, 15);
    assert_eq!(config.s2s.handshake_timeout_secs, 30);
    assert_eq!(config.s2s.idle_timeout_secs, 600);
    assert_eq!(config.s2s.queue_len, 1000);
    assert!(config.s2s.dialback && !config.s2s.require_valid_certificates);
    assert!(config.s2s.use_system_roots && config.s2s.bidi);
    assert_eq!(config.s2s.ca_file, None);
    assert!(config.s2s.resolver.is_empty());
    assert_eq!(config.s2s.max_stanza_bytes, 262_144);
    assert_eq!(config.federation.mode, "allowlist");
    assert_eq!(config.federation.reload_secs, 5);
    assert!(config.federation.deny.is_empty() && config.federation.partners.is_empty());
    assert!(config.federation.audit_streams);
    // Without listeners, the server still connects out.
    let config = accepted("[s2s]\nlisten = []\ndirect_tls_listen = []\n");
    assert!(config.s2s.listen.is_empty());
}

#[test]
fn s2s_listen_addresses_are_socket_addresses() {
    refused(
        "[s2s]\nlisten = [\"xmpp.example:5269\"]\n",
        "causerie.toml:2: s2s.listen[0]: `xmpp.example:5269` is not a socket address; write \
         IP:PORT, such as \"0.0.0.0:5269\"",
    );
    refused(
        "[s2s]\ndirect_tls_listen = [\"[::]:5270\", \"5270\"]\n",
        "causerie.toml:2: s2s.direct_tls_listen[1]: `5270` is not a socket address",
    );
}

#[test]
fn s2s_and_c2s_listeners_do_not_share_an_address() {
    refused(
        "[s2s]\nlisten = [\"[::]:5269\", \"[::]:5269\"]\n",
        "causerie.toml:2: s2s.listen[1]: `[::]:5269` is already used by s2s.listen[0]",
    );
    refused(
        "[c2s]\nstarttls_listen = [\"127.0.0.1:5222\"]\n\
         [s2s]\ndirect_tls_listen = [\"127.0.0.1:5222\"]\n",
        "causerie.toml:4: s2s.direct_tls_listen[0]: `127.0.0.1:5222` is already used by \
         c2s.starttls_listen[0]",
    );
    let config = accepted(
        "[c2s]\nstarttls_listen = [\"127.0.0.1:0\"]\ndirect_tls_listen = [\"127.0.0.1:0\"]\n\
         [s2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls_listen = [\"127.0.0.1:0\"]\n",
    );
    assert_eq!(config.s2s.direct_tls_listen, ["127.0.0.1:0"]);
}

#[test]
fn s2s_numbers_are_bounded() {
    let cases = [
        ("connect_timeout_secs = 0", "must be at least 1 (got 0)"),
        (
            "connect_timeout_secs = 301",
            "must be at most 300 (got 301)",
        ),
        ("handshake_timeout_secs = 0", "must be at least 1 (got 0)"),
        (
            "handshake_timeout_secs = 601",
            "must be at most 600 (got 601)",
        ),
        ("idle_timeout_secs = 9", "must be at least 10 (got 9)"),
        (
            "idle_timeout_secs = 86401",
            "must be at most 86400 (got 86401)",
        ),
        ("queue_len = 0", "must be at least 1 (got 0)"),
        ("queue_len = 100001", "must be at most 100000 (got 100001)"),
        (
            "max_stanza_bytes = 9999",
            "must be at least 10000 (got 9999)",
        ),
        (
            "max_stanza_bytes = 16777217",
            "must be at most 16777216 (got 16777217)",
        ),
    ];
    for (line, message) in cases {
        let key = line.split(' ').next().unwrap_or_default();
        refused(
            &format!("[s2s]\n{line}\n"),
            &format!("causerie.toml:2: s2s.{key}: {message}"),
        );
    }
}

#[test]
fn s2s_ca_file_must_not_be_empty() {
    refused(
        "[s2s]\nca_file = \"\"\n",
        "causerie.toml:2: s2s.ca_file: must not be empty",
    );
    refused(
        "[s2s]\nca_file = 3\n",
        "causerie.toml:2: s2s.ca_file: expected a path (a string), found an integer",
    );
}

#[test]
fn resolvers_are_socket_addresses() {
    refused(
        "[s2s]\nresolver = [\"127.0.0.53\"]\n",
        "causerie.toml:2: s2s.resolver[0]: `127.0.0.53` is not a socket address",
    );
    refused(
        "[s2s]\nresolver = [\"ns.example:53\"]\n",
        "causerie.toml:2: s2s.resolver[0]: `ns.example:53` is not a socket address",
    );
    refused(
        "[s2s]\nresolver = [\"127.0.0.53:0\"]\n",
        "causerie.toml:2: s2s.resolver[0]: `127.0.0.53:0`: port 0",
    );
    refused(
        "[s2s]\nresolver = [\"127.0.0.53:53\", \"127.0.0.53:53\"]\n",
        "causerie.toml:2: s2s.resolver[1]: `127.0.0.53:53` is already listed as s2s.resolver[0]",
    );
}

// [federation]

#[test]
fn federation_mode_is_one_of_three() {
    refused(
        "[federation]\nmode = \"closed\"\n",
        "causerie.toml:2: federation.mode: must be \"allowlist\", \"denylist\" or \"open\" \
         (got \"closed\")",
    );
    for mode in ["allowlist", "denylist", "open"] {
        let config = accepted(&format!("[federation]\nmode = \"{mode}\"\n"));
        assert_eq!(config.federation.mode, mode);
    }
}

#[test]
fn federation_reload_is_bounded() {
    refused(
        "[federation]\nreload_secs = 0\n",
        "causerie.toml:2: federation.reload_secs: must be at least 1 (got 0)",
    );
    refused(
        "[federation]\nreload_secs = 3601\n",
        "causerie.toml:2: federation.reload_secs: must be at most 3600 (got 3601)",
    );
}

#[test]
fn denied_domains_are_domains_listed_once() {
    refused(
        "[federation]\ndeny = [\"bad domain.example\"]\n",
        "causerie.toml:2: federation.deny[0]: `bad domain.example` contains",
    );
    refused(
        "[federation]\ndeny = [\n  \"spam.example\",\n  \"SPAM.example\",\n]\n",
        "causerie.toml:4: federation.deny[1]: `spam.example` is already listed as \
         federation.deny[0]",
    );
    refused(
        "[federation]\ndeny = [\"192.0.2.1\"]\n",
        "causerie.toml:2: federation.deny[0]: `192.0.2.1` is an IP address",
    );
}

#[test]
fn partners_need_a_valid_domain() {
    refused(
        "[[federation.partners]]\nroute = \"10.0.0.5:5269\"\n",
        "causerie.toml:1: federation.partners[0].domain: missing: every \
         [[federation.partners]] block needs a domain",
    );
    refused(
        "[[federation.partners]]\n\ndomain = \"under_score.example\"\n",
        "causerie.toml:3: federation.partners[0].domain: `under_score.example` contains `_`",
    );
    refused(
        "[[federation.partners]]\ndomain = \"localhost\"\n",
        "causerie.toml:2: federation.partners[0].domain: `localhost` is hosted here",
    );
    // A value of the wrong type is left out, so the entry lacks its domain too.
    assert_eq!(
        errors("[[federation.partners]]\ndomain = 5\n"),
        [
            "causerie.toml:2: federation.partners[0].domain: expected a string, found an integer",
            "causerie.toml:2: federation.partners[0].domain: missing: every \
             [[federation.partners]] block needs a domain",
        ]
    );
}

#[test]
fn partner_domains_do_not_repeat() {
    refused(
        "[[federation.partners]]\ndomain = \"partner.example\"\n\
         [[federation.partners]]\ndomain = \"Partner.example.\"\n",
        "causerie.toml:4: federation.partners[1].domain: `partner.example` already has a block \
         in federation.partners[0]",
    );
}

#[test]
fn a_partner_cannot_be_denied() {
    refused(
        "[federation]\ndeny = [\"partner.example\"]\n\
         [[federation.partners]]\ndomain = \"partner.example\"\n",
        "causerie.toml:4: federation.partners[0].domain: `partner.example` is also denied \
         (federation.deny[0])",
    );
}

#[test]
fn routes_are_host_and_port() {
    let cases = [
        ("10.0.0.5", "`10.0.0.5` has no port"),
        ("10.0.0.5:0", "the port must be 1 to 65535 (got 0)"),
        ("10.0.0.5:65536", "the port must be 1 to 65535 (got 65536)"),
        (
            "10.0.0.5:99999999999999999999",
            "`99999999999999999999` is not a port number",
        ),
        ("10.0.0.5:-1", "`-1` is not a port number"),
        ("xmpp.example:", "`` is not a port number"),
        (
            "2001:db8::5:5269",
            "`2001:db8::5:5269`: an IPv6 address must be written in brackets",
        ),
        ("[2001:db8::5]", "`[2001:db8::5]` is not HOST:PORT"),
        (
            "[xmpp.example]:5269",
            "`xmpp.example` is not an IPv6 address",
        ),
        (
            "Xmpp.example:5269",
            "`Xmpp.example` must be written in lowercase",
        ),
        (":5269", "must not be empty"),
        ("", "must not be empty; leave the key out"),
    ];
    for (route, message) in cases {
        refused(
            &format!("[[federation.partners]]\ndomain = \"p.example\"\nroute = \"{route}\"\n"),
            &format!("causerie.toml:3: federation.partners[0].route: {message}"),
        );
    }
    for route in [
        "10.0.0.5:5269",
        "xmpp.p.example:1",
        "[::1]:65535",
        "localhost:5269",
    ] {
        let config = accepted(&format!(
            "[[federation.partners]]\ndomain = \"p.example\"\nroute = \"{route}\"\n"
        ));
        assert_eq!(config.federation.partners[0].route.as_deref(), Some(route));
    }
}

#[test]
fn direct_tls_needs_a_route() {
    refused(
        "[[federation.partners]]\ndomain = \"p.example\"\ndirect_tls = true\n",
        "causerie.toml:3: federation.partners[0].direct_tls: only applies to a static route",
    );
}

#[test]
fn fingerprints_are_sha256_in_hex() {
    let partner = "[[federation.partners]]\ndomain = \"p.example\"\n";
    refused(
        &format!("{partner}fingerprints = [\"{}\"]\n", "ab".repeat(31)),
        "causerie.toml:3: federation.partners[0].fingerprints[0]: has 62 hex digits; a SHA-256 \
         fingerprint has 64",
    );
    refused(
        &format!(
            "{partner}fingerprints = [\"{}\"]\n",
            "ab:".repeat(20).trim_end_matches(':')
        ),
        "causerie.toml:3: federation.partners[0].fingerprints[0]: has 40 hex digits (this looks \
         like a SHA-1 fingerprint)",
    );
    refused(
        &format!("{partner}fingerprints = [\"{}zz\"]\n", "ab".repeat(31)),
        "causerie.toml:3: federation.partners[0].fingerprints[0]: contains `z`",
    );
    refused(
        &format!(
            "{partner}fingerprints = [\n  \"{}\",\n  \"{}\",\n]\n",
            "ab".repeat(32),
            "AB".repeat(32)
        ),
        "causerie.toml:5: federation.partners[0].fingerprints[1]: the same fingerprint as \
         federation.partners[0].fingerprints[0]",
    );
    refused(
        &format!("{partner}fingerprints = \"{}\"\n", "ab".repeat(32)),
        "causerie.toml:3: federation.partners[0].fingerprints: expected an array of strings",
    );
}

#[test]
fn partner_ca_must_not_be_empty() {
    refused(
        "[[federation.partners]]\ndomain = \"p.example\"\nca = \"\"\n",
        "causerie.toml:3: federation.partners[0].ca: must not be empty",
    );
}

#[test]
fn insecure_contradicts_a_pin() {
    refused(
        "[[federation.partners]]\ndomain = \"p.example\"\nca = \"ca.pem\"\ninsecure = true\n",
        "causerie.toml:4: federation.partners[0].insecure: true accepts the partner without \
         checking its certificate, which contradicts the pin in ca;",
    );
    refused(
        &format!(
            "[[federation.partners]]\ndomain = \"p.example\"\ninsecure = true\n\
             fingerprints = [\"{}\"]\n",
            "0f".repeat(32)
        ),
        "causerie.toml:3: federation.partners[0].insecure: true accepts the partner without \
         checking its certificate, which contradicts the pin in fingerprints;",
    );
}

#[test]
fn partners_may_be_inline_tables_and_unknown_keys_are_named() {
    let config =
        accepted("[federation]\npartners = [{ domain = \"p.example\", route = \"[::1]:5269\" }]\n");
    assert_eq!(config.federation.partners[0].domain, "p.example");
    refused(
        "[[federation.partners]]\ndomain = \"p.example\"\nfingerprint = []\n",
        "causerie.toml:3: federation.partners[0].fingerprint: unknown key (did you mean \
         `federation.partners[0].fingerprints`?)",
    );
    refused(
        "[federation]\npartner = []\n",
        "causerie.toml:2: federation.partner: unknown key (did you mean `federation.partners`?)",
    );
    // A key of an entry written at the top is not taken for another table's key.
    refused(
        "domain = \"p.example\"\n",
        "causerie.toml:1: domain: unknown key",
    );
}

#[test]
fn federation_warnings() {
    let config = accepted("[federation]\nmode = \"open\"\n");
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("federation is open to every domain"));
    let config = accepted(
        "[[federation.partners]]\ndomain = \"a.example\"\n\
         [[federation.partners]]\ndomain = \"b.example\"\ninsecure = true\n",
    );
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("federation.partners[1] (b.example) is insecure"),
        "{warnings:?}"
    );
    assert!(
        accepted("[federation]\nmode = \"denylist\"\n")
            .warnings()
            .is_empty()
    );
}

#[test]
fn federation_rules_apply_to_configs_built_in_code() {
    let mut config = Config::default();
    config
        .federation
        .partners
        .push(causerie_config::PartnerConfig {
            domain: "Partner.example".to_owned(),
            fingerprints: vec!["AB".repeat(32)],
            ..Default::default()
        });
    let problems = config.validate().err().unwrap_or_default();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "federation.partners[0].domain: `Partner.example` must be written in lowercase \
             (`partner.example`)",
            &format!(
                "federation.partners[0].fingerprints[0]: must be stored normalized, as `{}`",
                "ab".repeat(32)
            ),
        ]
    );
}

// [auth]
// [auth]

#[test]
fn mechanisms_are_known_scram_names() {
    refused(
        "[auth]\nmechanisms = [\"SCRAM-SHA-256\", \"PLAIN\"]\n",
        "causerie.toml:2: auth.mechanisms[1]: PLAIN is not listed in auth.mechanisms; set \
         auth.allow_plain = true",
    );
    refused(
        "[auth]\nmechanisms = [\"scram-sha-256\"]\n",
        "causerie.toml:2: auth.mechanisms[0]: unknown mechanism `scram-sha-256` (did you mean \
         `SCRAM-SHA-256`?)",
    );
    refused(
        "[auth]\nmechanisms = [\"DIGEST-MD5\"]\n",
        "causerie.toml:2: auth.mechanisms[0]: unknown mechanism `DIGEST-MD5`; known: \
         SCRAM-SHA-512-PLUS,",
    );
    refused(
        "[auth]\nmechanisms = [\"SCRAM-SHA-1\", \"SCRAM-SHA-1\"]\n",
        "causerie.toml:2: auth.mechanisms[1]: `SCRAM-SHA-1` is already listed",
    );
}

#[test]
fn some_mechanism_must_remain() {
    refused(
        "[auth]\nmechanisms = []\n",
        "causerie.toml:2: auth.mechanisms: no way to log in",
    );
    let config = accepted("[auth]\nmechanisms = []\nallow_plain = true\n");
    assert!(config.auth.allow_plain);
}

#[test]
fn scram_iterations_are_bounded() {
    refused(
        "[auth]\nscram_iterations = 1000\n",
        "causerie.toml:2: auth.scram_iterations: must be at least 4096 (got 1000)",
    );
    refused(
        "[auth]\nscram_iterations = 2_000_000\n",
        "causerie.toml:2: auth.scram_iterations: must be at most 1000000 (got 2000000)",
    );
    // Larger than the field's type: still a range error, not an overflow.
    refused(
        "[auth]\nscram_iterations = 5_000_000_000\n",
        "causerie.toml:2: auth.scram_iterations: must be at most 1000000 (got 5000000000)",
    );
}

#[test]
fn failure_throttling_is_bounded() {
    refused(
        "[auth]\nmax_failures_per_account = 0\n",
        "causerie.toml:2: auth.max_failures_per_account: must be at least 1 (got 0)",
    );
    refused(
        "[auth]\nmax_failures_per_ip = 0\n",
        "causerie.toml:2: auth.max_failures_per_ip: must be at least 1 (got 0)",
    );
    refused(
        "[auth]\nfailure_window_secs = 0\n",
        "causerie.toml:2: auth.failure_window_secs: must be at least 1 (got 0)",
    );
}

// [limits]

#[test]
fn limits_are_bounded() {
    let cases = [
        (
            "max_stanza_bytes = 9999",
            "must be at least 10000 (got 9999)",
        ),
        (
            "max_stanza_bytes = 16_777_217",
            "must be at most 16777216 (got 16777217)",
        ),
        ("max_depth = 3", "must be at least 4 (got 3)"),
        ("max_depth = 257", "must be at most 256 (got 257)"),
        ("max_attributes = 7", "must be at least 8 (got 7)"),
        ("max_attributes = 1025", "must be at most 1024 (got 1025)"),
        ("max_sessions_per_user = 0", "must be at least 1 (got 0)"),
    ];
    for (line, message) in cases {
        let key = line.split(' ').next().unwrap_or_default();
        refused(
            &format!("[limits]\n{line}\n"),
            &format!("causerie.toml:2: limits.{key}: {message}"),
        );
    }
    let config = accepted("[limits]\nmax_stanza_bytes = 10_000\nmax_depth = 256\n");
    assert_eq!(config.limits.max_stanza_bytes, 10_000);
}

// [log]

#[test]
fn log_level_is_a_filter() {
    refused(
        "[log]\nlevel = \"verbose\"\n",
        "causerie.toml:2: log.level: `verbose`: unknown level `verbose`",
    );
    refused(
        "[log]\nlevel = \"\"\n",
        "causerie.toml:2: log.level: must not be empty",
    );
    refused(
        "[log]\nlevel = \"info,causerie c2s=debug\"\n",
        "causerie.toml:2: log.level: `causerie c2s=debug`: the target must be a module path",
    );
    accepted("[log]\nlevel = \"warn,causerie_c2s=debug,causerie_core::router=trace\"\n");
}

#[test]
fn log_format_is_text() {
    refused(
        "[log]\nformat = \"json\"\n",
        "causerie.toml:2: log.format: \"json\" is not available in this version",
    );
    refused(
        "[log]\nformat = \"xml\"\n",
        "causerie.toml:2: log.format: must be \"text\" (got \"xml\")",
    );
}

// [admin]

#[test]
fn admin_socket_must_fit_a_unix_socket_path() {
    refused(
        "[admin]\nsocket = \"\"\n",
        "causerie.toml:2: admin.socket: must not be empty",
    );
    let long = format!("/{}/admin.sock", "d".repeat(100));
    refused(
        &format!("[admin]\nsocket = \"{long}\"\n"),
        "causerie.toml:2: admin.socket: the admin socket path",
    );
    // At its default place, the socket path grows with the data directory.
    refused(
        &format!("[server]\ndata_dir = \"/{}\"\n", "d".repeat(100)),
        "causerie.toml:2: server.data_dir: the admin socket path",
    );
}

#[test]
fn admin_tcp_listener_needs_an_address_and_tokens() {
    refused(
        "[admin]\nlisten = \"localhost:5281\"\ntoken_file = \"t\"\n",
        "causerie.toml:2: admin.listen: `localhost:5281` is not a socket address",
    );
    refused(
        "[admin]\nlisten = \"127.0.0.1:5281\"\n",
        "causerie.toml:2: admin.listen: the TCP listener needs admin.token_file",
    );
    refused(
        "[admin]\ntoken_file = \"\"\n",
        "causerie.toml:2: admin.token_file: must not be empty",
    );
    refused(
        "[admin]\nmax_connections = 0\n",
        "causerie.toml:2: admin.max_connections",
    );
    let config = accepted(
        "[admin]\nlisten = \"0.0.0.0:5281\"\ntoken_file = \"/etc/causerie/admin.tokens\"\n",
    );
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.starts_with("admin.listen (0.0.0.0:5281) is not a loopback address")),
        "{:?}",
        config.warnings()
    );
}

#[test]
fn admins_are_accounts_of_hosted_domains() {
    refused(
        "[admin]\nadmins = [\"boss@localhost\", \"boss@elsewhere.example\"]\n",
        "causerie.toml:2: admin.admins[1]: `boss@elsewhere.example` is not an account of a hosted domain",
    );
    refused(
        "[admin]\nadmins = [\"localhost\"]\n",
        "causerie.toml:2: admin.admins[0]: `localhost` is not an account of a hosted domain",
    );
    refused(
        "[admin]\nadmins = [\"boss@localhost/desk\"]\n",
        "causerie.toml:2: admin.admins[0]: `boss@localhost/desk`:",
    );
    refused(
        "[admin]\nadmins = [\"@localhost\"]\n",
        "causerie.toml:2: admin.admins[0]: `@localhost`:",
    );
    let config = accepted("[admin]\nadmins = [\"boss@localhost\", \"Deputy@localhost\"]\n");
    assert_eq!(config.admin.admins, ["boss@localhost", "Deputy@localhost"]);
}

// Keys and types

#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    refused(
        "[c2s]\nstarttls_listen = [\"[::]:5222\"]\n\n\n\n\nliste = [\"[::]:5223\"]\n",
        "causerie.toml:7: c2s.liste: unknown key (did you mean `c2s.starttls_listen`?)",
    );
    refused(
        "[c2ss]\nsend_queue_len = 5\n",
        "causerie.toml:1: c2ss: unknown table (did you mean `c2s`?)",
    );
    refused(
        "domains = [\"example.com\"]\n",
        "causerie.toml:1: domains: unknown key (did you mean `server.domains`?)",
    );
    refused(
        "[server]\nmax_connections = 5\n",
        "causerie.toml:2: server.max_connections: unknown key (did you mean \
         `database.max_connections`?)",
    );
    let found = errors("[[tls.certificates]]\ndomian = \"localhost\"\ncert = \"c\"\nkey = \"k\"\n");
    assert_eq!(
        found,
        [
            "causerie.toml:1: tls.certificates[0].domain: missing: every [[tls.certificates]] \
             block needs domain, cert and key",
            "causerie.toml:2: tls.certificates[0].domian: unknown key (did you mean \
             `tls.certificates[0].domain`?)",
        ]
    );
    refused(
        "[server]\nweather = 1\n",
        "causerie.toml:2: server.weather: unknown key",
    );
}

#[test]
fn type_errors_keep_their_line() {
    refused(
        "[c2s]\n\nsend_queue_len = \"big\"\n",
        "causerie.toml:3: c2s.send_queue_len: expected an integer, found a string",
    );
    refused(
        "[c2s]\nsend_queue_len = -1\n",
        "causerie.toml:2: c2s.send_queue_len: must be at least 1 (got -1)",
    );
    refused(
        "[server]\nshutdown_grace_secs = 1.5\n",
        "causerie.toml:2: server.shutdown_grace_secs: expected an integer, found a float",
    );
    refused(
        "[server]\ndomains = \"example.com\"\n",
        "causerie.toml:2: server.domains: expected an array of strings, found a string \
         (write [\"example.com\"])",
    );
    refused(
        "[server]\ndomains = [\n  \"example.com\",\n  42,\n]\n",
        "causerie.toml:4: server.domains[1]: expected a string, found an integer",
    );
    refused(
        "server = 3\n",
        "causerie.toml:1: server: expected a table, found an integer",
    );
    refused(
        "[tls]\ncertificates = [\"example.com\"]\n",
        "causerie.toml:2: tls.certificates[0]: expected a table, found a string",
    );
    refused(
        "[auth]\nallow_plain = \"yes\"\n",
        "causerie.toml:2: auth.allow_plain: expected a boolean (true or false), found a string",
    );
}

#[test]
fn syntax_errors_have_their_line() {
    let found = errors("[server]\ndomains = [\"localhost\"\n\n[c2s]\n");
    assert!(
        found.iter().all(|l| l.starts_with("causerie.toml:")),
        "{found:#?}"
    );
    assert!(found[0].contains("invalid TOML"), "{found:#?}");
    let found = errors("[server]\ndata_dir = \"a\"\ndata_dir = \"b\"\n");
    assert!(
        found[0].starts_with("causerie.toml:3: invalid TOML"),
        "{found:#?}"
    );
}

#[test]
fn a_bad_array_element_does_not_shift_the_lines_of_the_others() {
    // The integer is left out, so the invalid domain becomes element 0 of the built list;
    // its line must still be its own.
    let found = errors("[server]\ndomains = [\n  1,\n  \"Bad.example\",\n]\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("causerie.toml:3: server.domains[0]: expected a string"));
    assert!(found[1].starts_with("causerie.toml:4: server.domains[0]: `Bad.example`"));
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = "\
[server]
domains = [\"Example.com\"]
weather = \"sunny\"

[c2s]
send_queue_len = 0
handshake_timeout_secs = \"soon\"

[auth]
scram_iterations = 10
mechanisms = [\"PLAIN\"]
";
    let found = errors(text);
    let prefixes = [
        "causerie.toml:2: server.domains[0]:",
        "causerie.toml:3: server.weather: unknown key",
        "causerie.toml:6: c2s.send_queue_len:",
        "causerie.toml:7: c2s.handshake_timeout_secs: expected an integer",
        "causerie.toml:10: auth.scram_iterations:",
        "causerie.toml:11: auth.mechanisms[0]: PLAIN",
    ];
    assert_eq!(found.len(), prefixes.len(), "{found:#?}");
    for (line, prefix) in found.iter().zip(prefixes) {
        assert!(line.starts_with(prefix), "{line} vs {prefix}");
    }
}

#[test]
fn a_problem_with_a_default_value_has_no_line() {
    // The domain at fault is the default `localhost`, which is not in the file.
    let text = "[tls]\nself_signed_for_missing = false\n";
    refused(
        text,
        "causerie.toml: server.domains[0]: no [[tls.certificates]] block covers `localhost`",
    );
    let err = Config::from_toml_str(text, ORIGIN);
    let problems = err.as_ref().err().map(ConfigError::problems).unwrap_or(&[]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, None);
    assert_eq!(problems[0].key.as_deref(), Some("server.domains[0]"));
}

#[test]
fn validate_checks_configs_built_in_code() {
    let mut config = Config::default();
    config.limits.max_depth = 1;
    config.c2s.send_queue_len = 0;
    let problems = config.validate().err().unwrap_or_default();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "c2s.send_queue_len: must be at least 1 (got 0)",
            "limits.max_depth: must be at least 4 (got 1)",
        ]
    );
}

#[test]
fn dotted_keys_and_inline_tables_are_the_same_keys() {
    let config = accepted("c2s.send_queue_len = 8\nlimits = { max_depth = 8 }\n");
    assert_eq!(config.c2s.send_queue_len, 8);
    assert_eq!(config.limits.max_depth, 8);
    refused(
        "c2s.send_queue_len = 0\n",
        "causerie.toml:1: c2s.send_queue_len: must be at least 1 (got 0)",
    );
}

// [compliance] alert webhook

#[test]
fn alert_webhook_is_an_http_or_https_url() {
    let config = accepted(
        "[compliance]\nalert_webhook = \"https://siem.example:8443/hook?src=xmpp\"\n\
         alert_webhook_token_file = \"/etc/causerie/webhook.token\"\n",
    );
    assert_eq!(
        config.compliance.alert_webhook.as_deref(),
        Some("https://siem.example:8443/hook?src=xmpp")
    );
    refused(
        "[compliance]\n\nalert_webhook = \"siem.example/hook\"\n",
        "causerie.toml:3: compliance.alert_webhook: `siem.example/hook` is not an absolute URL",
    );
    refused(
        "[compliance]\nalert_webhook = \"ftp://siem.example/\"\n",
        "causerie.toml:2: compliance.alert_webhook: the scheme `ftp` is not supported",
    );
    refused(
        "[compliance]\nalert_webhook = \"https://u:p@siem.example/\"\n",
        "causerie.toml:2: compliance.alert_webhook: must not hold credentials",
    );
}

#[test]
fn alert_webhook_options_need_the_webhook() {
    refused(
        "[compliance]\nalert_webhook_token_env = \"TOKEN\"\n",
        "causerie.toml:2: compliance.alert_webhook_token_env: has no effect without compliance.alert_webhook",
    );
    refused(
        "[compliance]\nalert_webhook = \"https://siem.example/\"\n\
         alert_webhook_token_file = \"/t\"\nalert_webhook_token_env = \"TOKEN\"\n",
        "causerie.toml:4: compliance.alert_webhook_token_env: set the token either from a file",
    );
    refused(
        "[compliance]\nalert_webhook = \"https://siem.example/\"\nalert_webhook_token_env = \"A=B\"\n",
        "causerie.toml:3: compliance.alert_webhook_token_env: `A=B` is not the name",
    );
    refused(
        "[compliance]\nalert_webhook = \"https://siem.example/\"\nalert_webhook_retries = 11\n",
        "causerie.toml:3: compliance.alert_webhook_retries:",
    );
    refused(
        "[compliance]\nalert_webhook = \"https://siem.example/\"\nalert_webhook_queue = 0\n",
        "causerie.toml:3: compliance.alert_webhook_queue:",
    );
}

#[test]
fn alert_webhook_text_contradicts_sealed_evidence() {
    let key = format!("causerie-officer-v1:{}=", "A".repeat(43));
    refused(
        &format!(
            "[compliance]\nseal_key = \"{key}\"\nalert_webhook = \"https://siem.example/\"\n\
             alert_webhook_include_text = true\n"
        ),
        "causerie.toml:4: compliance.alert_webhook_include_text: contradicts compliance.seal_key",
    );
    let config = accepted(
        "[compliance]\nalert_webhook = \"http://10.0.0.5:8080/hook\"\nalert_webhook_include_text = true\n",
    );
    let warnings = config.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("plain http (http://10.0.0.5:8080)")),
        "{warnings:?}"
    );
}
