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
