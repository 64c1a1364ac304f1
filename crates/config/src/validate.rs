//! The rules a configuration must satisfy before the server starts. Each problem names the key
//! (with array positions) so that the parser can add the line it came from.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::keys::{self, Kind};
use crate::parse::out_of_range;
use crate::{
    Config, FEDERATION_MODES, HttpUrl, Problem, SCRAM_MECHANISMS, SEAL_KEY_PREFIX,
    normalize_fingerprint,
};

/// Unix socket paths must fit `sockaddr_un.sun_path` (108 bytes on Linux) with its NUL.
const MAX_SOCKET_PATH_BYTES: usize = 107;

/// DNS limits (RFC 1035 §2.3.4): 63 octets per label, 253 for a name written without the
/// final dot.
const MAX_LABEL_LEN: usize = 63;
const MAX_DOMAIN_LEN: usize = 253;

pub(crate) fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    ranges(config, &mut problems);
    server(config, &mut problems);
    database(config, &mut problems);
    tls(config, &mut problems);
    c2s(config, &mut problems);
    listeners(config, &mut problems);
    auth(config, &mut problems);
    s2s(config, &mut problems);
    federation(config, &mut problems);
    policy(config, &mut problems);
    compliance(config, &mut problems);
    log(config, &mut problems);
    admin(config, &mut problems);
    problems
}

pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if !config.c2s.require_encryption {
        out.push(
            "c2s.require_encryption is false: clients may log in without TLS, \
             sending credentials and messages in the clear; never do this outside tests"
                .to_owned(),
        );
    }
    if config.auth.allow_plain {
        out.push(
            "auth.allow_plain is true: clients using PLAIN send their password to the server \
             (inside TLS); prefer clients that do SCRAM"
                .to_owned(),
        );
    }
    for (key, value) in [
        ("im.max_vcard_bytes", config.im.max_vcard_bytes),
        ("im.max_private_bytes", config.im.max_private_bytes),
    ] {
        // The document travels inside one stanza, so the stanza limit is the real bound.
        if value > config.limits.max_stanza_bytes {
            out.push(format!(
                "{key} ({value}) is larger than limits.max_stanza_bytes ({}): \
                 documents that large cannot be sent in a stanza",
                config.limits.max_stanza_bytes
            ));
        }
    }
    if config.federation.mode == "open" {
        out.push(
            "federation.mode is \"open\": federation is open to every domain not in \
             federation.deny; prefer \"allowlist\" with [[federation.partners]]"
                .to_owned(),
        );
    }
    for (i, partner) in config.federation.partners.iter().enumerate() {
        if partner.insecure {
            out.push(format!(
                "federation.partners[{i}] ({}) is insecure: it is accepted without a valid \
                 certificate and without TLS; never do this outside tests",
                partner.domain
            ));
        }
    }
    if let Some(url) = config.compliance.alert_webhook.as_deref()
        && let Ok(url) = HttpUrl::parse(url)
        && !url.https
    {
        let token = config.compliance.alert_webhook_token_file.is_some()
            || config.compliance.alert_webhook_token_env.is_some();
        out.push(format!(
            "compliance.alert_webhook is plain http ({}): alerts{} cross the network \
             unencrypted; prefer https",
            url.origin(),
            if token { " and the bearer token" } else { "" }
        ));
    }
    if let Some(listen) = &config.admin.listen
        && let Ok(address) = listen.parse::<SocketAddr>()
        && !address.ip().is_loopback()
    {
        out.push(format!(
            "admin.listen ({listen}) is not a loopback address: bearer tokens, passwords and \
             the administrators' data cross the network in clear HTTP; keep it on loopback or \
             behind a TLS proxy"
        ));
    }
    for listen in &config.http.listen {
        if listen
            .parse::<SocketAddr>()
            .is_ok_and(|address| !address.ip().is_loopback())
        {
            out.push(format!(
                "http.listen ({listen}) is not a loopback address: /metrics and /health are \
                 served to anyone who reaches it, without authentication"
            ));
        }
    }
    if config.tls.self_signed_for_missing {
        for domain in &config.server.domains {
            let covered = config
                .tls
                .certificates
                .iter()
                .any(|c| covers(&c.domain, domain));
            if !covered && domain != "localhost" {
                out.push(format!(
                    "no certificate for {domain}: a self-signed one is used, which clients \
                     and other servers will not trust; add a [[tls.certificates]] block"
                ));
            }
        }
    }
    out
}

/// Integer bounds come from the key reference, so the documented and enforced ranges are one.
fn ranges(config: &Config, problems: &mut Vec<Problem>) {
    for key in keys::KEYS {
        if let Kind::Int { min, max, get } = key.kind
            && let Some(message) = out_of_range(i128::from(get(config)), min, max)
        {
            problems.push(Problem::at(key.path, message));
        }
    }
}

fn server(config: &Config, problems: &mut Vec<Problem>) {
    let server = &config.server;
    if server.domains.is_empty() {
        problems.push(Problem::at(
            "server.domains",
            "at least one hosted domain is needed (the default is [\"localhost\"])",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, domain) in server.domains.iter().enumerate() {
        let key = format!("server.domains[{i}]");
        if let Err(message) = check_domain(domain) {
            problems.push(Problem::at(key, message));
            continue;
        }
        if let Some(first) = seen.insert(domain, i) {
            problems.push(Problem::at(
                key,
                format!("`{domain}` is already listed as server.domains[{first}]"),
            ));
            continue;
        }
        let has_certificate = config
            .tls
            .certificates
            .iter()
            .any(|c| covers(&c.domain, domain));
        if !has_certificate && !config.tls.self_signed_for_missing {
            problems.push(Problem::at(
                key,
                format!(
                    "no [[tls.certificates]] block covers `{domain}`; add one, or set \
                     tls.self_signed_for_missing = true"
                ),
            ));
        }
    }
    if server.data_dir.as_os_str().is_empty() {
        problems.push(Problem::at(
            "server.data_dir",
            "must not be empty (use \".\" for the working directory)",
        ));
    }
}

fn database(config: &Config, problems: &mut Vec<Problem>) {
    let Some(url) = &config.database.url else {
        return;
    };
    if url.is_empty() {
        problems.push(Problem::at(
            "database.url",
            "must not be empty; leave the key out to use SQLite under server.data_dir",
        ));
        return;
    }
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if !supported.iter().any(|prefix| url.starts_with(prefix)) {
        // Only the scheme is quoted back: the rest of a URL may hold a password, and this
        // message ends up in logs.
        let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
        problems.push(Problem::at(
            "database.url",
            format!("unsupported database URL scheme `{scheme}`; use postgres://… or sqlite://…"),
        ));
    }
}

fn tls(config: &Config, problems: &mut Vec<Problem>) {
    let tls = &config.tls;
    if tls.min_version != "1.2" && tls.min_version != "1.3" {
        problems.push(Problem::at(
            "tls.min_version",
            format!("must be \"1.2\" or \"1.3\" (got \"{}\")", tls.min_version),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, certificate) in tls.certificates.iter().enumerate() {
        let prefix = format!("tls.certificates[{i}]");
        let domain = certificate.domain.as_str();
        if domain.is_empty() {
            problems.push(Problem::at(
                format!("{prefix}.domain"),
                "missing: every [[tls.certificates]] block needs domain, cert and key",
            ));
        } else if let Err(message) = check_certificate_domain(domain) {
            problems.push(Problem::at(format!("{prefix}.domain"), message));
        } else if let Some(first) = seen.insert(domain, i) {
            problems.push(Problem::at(
                format!("{prefix}.domain"),
                format!("`{domain}` already has a certificate in tls.certificates[{first}]"),
            ));
        } else if !config.server.domains.iter().any(|d| covers(domain, d)) {
            let message = if domain.starts_with("*.") {
                format!("`{domain}` covers none of the hosted domains (server.domains)")
            } else {
                format!("`{domain}` is not a hosted domain (server.domains)")
            };
            problems.push(Problem::at(format!("{prefix}.domain"), message));
        }
        for (name, path) in [("cert", &certificate.cert), ("key", &certificate.key)] {
            if path.as_os_str().is_empty() {
                problems.push(Problem::at(
                    format!("{prefix}.{name}"),
                    "missing: every [[tls.certificates]] block needs domain, cert and key",
                ));
            }
        }
    }
}

fn c2s(config: &Config, problems: &mut Vec<Problem>) {
    let c2s = &config.c2s;
    if c2s.starttls_listen.is_empty() && c2s.direct_tls_listen.is_empty() {
        problems.push(Problem::at(
            "c2s.starttls_listen",
            "no client listener: c2s.starttls_listen and c2s.direct_tls_listen are both empty",
        ));
    }
    // Addresses that do not parse are reported by `listeners`.
    let lists = [
        ("c2s.starttls_listen", &c2s.starttls_listen),
        ("c2s.direct_tls_listen", &c2s.direct_tls_listen),
    ];
    let not_loopback = lists.iter().find_map(|(name, list)| {
        list.iter().enumerate().find_map(|(i, text)| {
            let address = text.parse::<SocketAddr>().ok()?;
            (!address.ip().is_loopback()).then(|| (format!("{name}[{i}]"), address))
        })
    });
    if !c2s.require_encryption
        && let Some((key, address)) = not_loopback
    {
        problems.push(Problem::at(
            "c2s.require_encryption",
            format!(
                "false is only allowed when every c2s address is a loopback address, \
                 but {key} is {address}"
            ),
        ));
    }
}

/// Every listen address, client and server ones together: each must be an `IP:PORT`, and
/// none may be bound twice.
fn listeners(config: &Config, problems: &mut Vec<Problem>) {
    let lists = [
        ("c2s.starttls_listen", &config.c2s.starttls_listen, 5222),
        ("c2s.direct_tls_listen", &config.c2s.direct_tls_listen, 5223),
        ("s2s.listen", &config.s2s.listen, 5269),
        ("s2s.direct_tls_listen", &config.s2s.direct_tls_listen, 5270),
        ("http.listen", &config.http.listen, 5280),
    ];
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    for (name, list, port) in lists {
        for (i, text) in list.iter().enumerate() {
            let key = format!("{name}[{i}]");
            let Ok(address) = text.parse::<SocketAddr>() else {
                problems.push(Problem::at(
                    key,
                    format!(
                        "`{text}` is not a socket address; write IP:PORT, such as \
                         \"0.0.0.0:{port}\" or \"[::]:{port}\" (host names are not accepted)"
                    ),
                ));
                continue;
            };
            // Port 0 asks the system for a free port at each bind, so it never collides
            // (tests listen on 127.0.0.1:0 for every kind of listener).
            let first = seen.get(&address).filter(|_| address.port() != 0);
            if let Some(first) = first {
                problems.push(Problem::at(
                    key,
                    format!("`{text}` is already used by {first}"),
                ));
                continue;
            }
            seen.insert(address, key);
        }
    }
}

fn auth(config: &Config, problems: &mut Vec<Problem>) {
    let auth = &config.auth;
    if auth.mechanisms.is_empty() && !auth.allow_plain {
        problems.push(Problem::at(
            "auth.mechanisms",
            "no way to log in: list at least one mechanism, or set auth.allow_plain = true",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, mechanism) in auth.mechanisms.iter().enumerate() {
        let key = format!("auth.mechanisms[{i}]");
        if mechanism.eq_ignore_ascii_case("PLAIN") {
            problems.push(Problem::at(
                key,
                "PLAIN is not listed in auth.mechanisms; set auth.allow_plain = true to offer it",
            ));
        } else if !SCRAM_MECHANISMS.contains(&mechanism.as_str()) {
            // RFC 4422 §3.1: mechanism names are upper case.
            let upper = mechanism.to_ascii_uppercase();
            let message = if SCRAM_MECHANISMS.contains(&upper.as_str()) {
                format!("unknown mechanism `{mechanism}` (did you mean `{upper}`?)")
            } else {
                format!(
                    "unknown mechanism `{mechanism}`; known: {}",
                    SCRAM_MECHANISMS.join(", ")
                )
            };
            problems.push(Problem::at(key, message));
        } else if let Some(first) = seen.insert(mechanism, i) {
            problems.push(Problem::at(
                key,
                format!("`{mechanism}` is already listed as auth.mechanisms[{first}]"),
            ));
        }
    }
}

fn s2s(config: &Config, problems: &mut Vec<Problem>) {
    let s2s = &config.s2s;
    if s2s
        .ca_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        problems.push(Problem::at(
            "s2s.ca_file",
            "must not be empty; leave the key out to trust only the system's CA bundle",
        ));
    }
    let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
    for (i, text) in s2s.resolver.iter().enumerate() {
        let key = format!("s2s.resolver[{i}]");
        match text.parse::<SocketAddr>() {
            Err(_) => problems.push(Problem::at(
                key,
                format!(
                    "`{text}` is not a socket address; write the DNS server as IP:PORT, \
                     such as \"127.0.0.53:53\" or \"[2001:db8::53]:53\""
                ),
            )),
            Ok(address) if address.port() == 0 => problems.push(Problem::at(
                key,
                format!("`{text}`: port 0 is not a DNS server's port (usually 53)"),
            )),
            Ok(address) => {
                if let Some(first) = seen.insert(address, i) {
                    problems.push(Problem::at(
                        key,
                        format!("`{text}` is already listed as s2s.resolver[{first}]"),
                    ));
                }
            }
        }
    }
}

fn policy(config: &Config, problems: &mut Vec<Problem>) {
    let policy = &config.policy;
    if !crate::POLICY_MODES.contains(&policy.mode.as_str()) {
        problems.push(Problem::at(
            "policy.mode",
            format!(
                "must be \"once\" or \"every-session\" (got \"{}\")",
                policy.mode
            ),
        ));
    }
    let localpart_ok = causerie_jid::prepare_localpart(&policy.localpart)
        .is_ok_and(|prepared| prepared == policy.localpart);
    if !localpart_ok {
        problems.push(Problem::at(
            "policy.localpart",
            format!(
                "`{}` is not a valid localpart in its prepared form (lowercase, no `@`, `/` or spaces)",
                policy.localpart
            ),
        ));
    }
}

fn compliance(config: &Config, problems: &mut Vec<Problem>) {
    for (i, officer) in config.compliance.officers.iter().enumerate() {
        let key = format!("compliance.officers[{i}]");
        match causerie_jid::BareJid::parse(officer) {
            Ok(j)
                if j.node().is_some() && config.server.domains.iter().any(|d| d == j.domain()) => {}
            Ok(_) => problems.push(Problem::at(
                key,
                format!("`{officer}` is not an account of a hosted domain (server.domains)"),
            )),
            Err(e) => problems.push(Problem::at(key, format!("`{officer}`: {e}"))),
        }
    }
    for (i, name) in config.compliance.project_names.iter().enumerate() {
        if name.trim().is_empty() {
            problems.push(Problem::at(
                format!("compliance.project_names[{i}]"),
                "an empty name would match everything",
            ));
        }
    }
    if let Some(key) = &config.compliance.seal_key
        && let Err(why) = check_seal_key(key)
    {
        problems.push(Problem::at("compliance.seal_key", why));
    }
    alert_webhook(config, problems);
}

/// The webhook's URL, where its token comes from, and what the other webhook keys need.
fn alert_webhook(config: &Config, problems: &mut Vec<Problem>) {
    let c = &config.compliance;
    if let Some(url) = &c.alert_webhook
        && let Err(why) = HttpUrl::parse(url)
    {
        problems.push(Problem::at("compliance.alert_webhook", why));
    }
    let set: Vec<&str> = [
        (
            "alert_webhook_token_file",
            c.alert_webhook_token_file.is_some(),
        ),
        (
            "alert_webhook_token_env",
            c.alert_webhook_token_env.is_some(),
        ),
        ("alert_webhook_ca_file", c.alert_webhook_ca_file.is_some()),
        ("alert_webhook_include_text", c.alert_webhook_include_text),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if c.alert_webhook.is_none() {
        for name in set {
            problems.push(Problem::at(
                format!("compliance.{name}"),
                "has no effect without compliance.alert_webhook",
            ));
        }
        return;
    }
    for (name, path) in [
        ("alert_webhook_token_file", &c.alert_webhook_token_file),
        ("alert_webhook_ca_file", &c.alert_webhook_ca_file),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            problems.push(Problem::at(
                format!("compliance.{name}"),
                "must not be empty",
            ));
        }
    }
    if c.alert_webhook_token_file.is_some() && c.alert_webhook_token_env.is_some() {
        problems.push(Problem::at(
            "compliance.alert_webhook_token_env",
            "set the token either from a file (alert_webhook_token_file) or from the environment, not both",
        ));
    }
    if let Some(name) = &c.alert_webhook_token_env
        && (name.is_empty() || name.contains(['=', '\0']))
    {
        problems.push(Problem::at(
            "compliance.alert_webhook_token_env",
            format!(
                "`{}` is not the name of an environment variable",
                name.escape_default()
            ),
        ));
    }
    if c.alert_webhook_include_text && c.seal_key.is_some() {
        problems.push(Problem::at(
            "compliance.alert_webhook_include_text",
            "contradicts compliance.seal_key: evidence is sealed so that only the officer's key reads messages, and the webhook would send them in the clear; remove one or the other",
        ));
    }
}

/// The shape of an officer's public key: the prefix, then the padded standard base64 (RFC 4648
/// §4) of 32 bytes. Whether the bytes are a usable X25519 key is checked by the server, which
/// owns the format.
fn check_seal_key(key: &str) -> Result<(), String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let expected = || {
        format!(
            "expected `{SEAL_KEY_PREFIX}` followed by 44 base64 characters, as `causeriectl \
             evidence keygen` prints it"
        )
    };
    let Some(b64) = key.trim().strip_prefix(SEAL_KEY_PREFIX) else {
        return Err(expected());
    };
    // 32 bytes: 43 characters carrying 258 bits, the last 2 of them zero, and one `=`.
    let b = b64.as_bytes();
    let digits: Option<Vec<usize>> = b.get(..43).and_then(|d| {
        d.iter()
            .map(|c| ALPHABET.iter().position(|a| a == c))
            .collect()
    });
    match digits {
        Some(d) if b.len() == 44 && b[43] == b'=' && d[42] & 0b11 == 0 => Ok(()),
        _ => Err(expected()),
    }
}

fn federation(config: &Config, problems: &mut Vec<Problem>) {
    let federation = &config.federation;
    if !FEDERATION_MODES.contains(&federation.mode.as_str()) {
        problems.push(Problem::at(
            "federation.mode",
            format!(
                "must be \"allowlist\", \"denylist\" or \"open\" (got \"{}\")",
                federation.mode
            ),
        ));
    }
    let mut denied: HashMap<&str, usize> = HashMap::new();
    for (i, domain) in federation.deny.iter().enumerate() {
        let key = format!("federation.deny[{i}]");
        if let Err(message) = check_domain(domain) {
            problems.push(Problem::at(key, message));
        } else if let Some(first) = denied.insert(domain, i) {
            problems.push(Problem::at(
                key,
                format!("`{domain}` is already listed as federation.deny[{first}]"),
            ));
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, partner) in federation.partners.iter().enumerate() {
        let prefix = format!("federation.partners[{i}]");
        let domain = partner.domain.as_str();
        let domain_key = format!("{prefix}.domain");
        if domain.is_empty() {
            problems.push(Problem::at(
                domain_key,
                "missing: every [[federation.partners]] block needs a domain",
            ));
        } else if let Err(message) = check_domain(domain) {
            problems.push(Problem::at(domain_key, message));
        } else if let Some(first) = seen.insert(domain, i) {
            problems.push(Problem::at(
                domain_key,
                format!("`{domain}` already has a block in federation.partners[{first}]"),
            ));
        } else if config.server.domains.iter().any(|d| d == domain) {
            problems.push(Problem::at(
                domain_key,
                format!("`{domain}` is hosted here (server.domains), not a remote domain"),
            ));
        } else if let Some(j) = denied.get(domain) {
            problems.push(Problem::at(
                domain_key,
                format!(
                    "`{domain}` is also denied (federation.deny[{j}]); a domain is either a \
                     partner or denied"
                ),
            ));
        }
        match partner.route.as_deref() {
            Some("") => problems.push(Problem::at(
                format!("{prefix}.route"),
                "must not be empty; leave the key out to find the partner's servers through DNS",
            )),
            Some(route) => {
                if let Err(message) = check_route(route) {
                    problems.push(Problem::at(format!("{prefix}.route"), message));
                }
            }
            None if partner.direct_tls => problems.push(Problem::at(
                format!("{prefix}.direct_tls"),
                "only applies to a static route: set route as well, or leave direct_tls out",
            )),
            None => {}
        }
        if partner
            .ca
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(Problem::at(
                format!("{prefix}.ca"),
                "must not be empty; leave the key out to check the certificate against the \
                 usual trust anchors",
            ));
        }
        let mut fingerprints: HashMap<&str, usize> = HashMap::new();
        for (j, fingerprint) in partner.fingerprints.iter().enumerate() {
            let key = format!("{prefix}.fingerprints[{j}]");
            if let Err(message) = check_fingerprint(fingerprint) {
                problems.push(Problem::at(key, message));
            } else if let Some(first) = fingerprints.insert(fingerprint, j) {
                problems.push(Problem::at(
                    key,
                    format!("the same fingerprint as {prefix}.fingerprints[{first}]"),
                ));
            }
        }
        if partner.insecure && partner.is_pinned() {
            let pins = match (partner.ca.is_some(), partner.fingerprints.is_empty()) {
                (true, false) => "ca and fingerprints",
                (true, true) => "ca",
                (false, _) => "fingerprints",
            };
            problems.push(Problem::at(
                format!("{prefix}.insecure"),
                format!(
                    "true accepts the partner without checking its certificate, which \
                     contradicts the pin in {pins}; remove one or the other"
                ),
            ));
        }
    }
}

/// A static route: `HOST:PORT`, the host a DNS name, an IPv4 address or an IPv6 address in
/// brackets, the port 1 to 65535.
fn check_route(route: &str) -> Result<(), String> {
    const FORM: &str = "write HOST:PORT, such as \"xmpp.partner.example:5269\", \
                        \"192.0.2.5:5269\" or \"[2001:db8::5]:5269\"";
    let (host, port) = match route.strip_prefix('[') {
        Some(rest) => {
            let Some((ip, port)) = rest.split_once("]:") else {
                return Err(format!("`{route}` is not HOST:PORT; {FORM}"));
            };
            if ip.parse::<Ipv6Addr>().is_err() {
                return Err(format!("`{ip}` is not an IPv6 address; {FORM}"));
            }
            (None, port)
        }
        None => {
            let Some((host, port)) = route.rsplit_once(':') else {
                return Err(format!("`{route}` has no port; {FORM}"));
            };
            if host.contains(':') {
                return Err(format!(
                    "`{route}`: an IPv6 address must be written in brackets, as in \
                     \"[2001:db8::5]:5269\""
                ));
            }
            (Some(host), port)
        }
    };
    let number = if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    {
        port.parse::<u32>().ok()
    } else {
        None
    };
    match number {
        Some(1..=65_535) => {}
        Some(n) => return Err(format!("the port must be 1 to 65535 (got {n})")),
        None => return Err(format!("`{port}` is not a port number; {FORM}")),
    }
    match host {
        Some(host) if host.parse::<Ipv4Addr>().is_err() => check_domain(host),
        _ => Ok(()),
    }
}

/// A SHA-256 fingerprint as stored: 64 lowercase hex digits (colons are removed when the file
/// is read, see [`normalize_fingerprint`]).
fn check_fingerprint(fingerprint: &str) -> Result<(), String> {
    let normalized = normalize_fingerprint(fingerprint);
    if let Some(bad) = normalized.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "contains `{}`; a fingerprint is hex digits, with or without colons",
            bad.escape_default()
        ));
    }
    let digits = normalized.len();
    if digits != 64 {
        let hint = if digits == 40 {
            " (this looks like a SHA-1 fingerprint)"
        } else {
            ""
        };
        return Err(format!(
            "has {digits} hex digits{hint}; a SHA-256 fingerprint has 64"
        ));
    }
    if normalized != fingerprint {
        // Only reachable from configurations built in code: the file's are normalized.
        return Err(format!("must be stored normalized, as `{normalized}`"));
    }
    Ok(())
}

fn log(config: &Config, problems: &mut Vec<Problem>) {
    if let Err(message) = check_log_filter(&config.log.level) {
        problems.push(Problem::at("log.level", message));
    }
    match config.log.format.as_str() {
        "text" => {}
        "json" => problems.push(Problem::at(
            "log.format",
            "\"json\" is not available in this version; use \"text\"",
        )),
        other => problems.push(Problem::at(
            "log.format",
            format!("must be \"text\" (got \"{other}\")"),
        )),
    }
}

fn admin(config: &Config, problems: &mut Vec<Problem>) {
    let admin = &config.admin;
    for (i, jid) in admin.admins.iter().enumerate() {
        if let Err(why) = hosted_account(config, jid) {
            problems.push(Problem::at(format!("admin.admins[{i}]"), why));
        }
    }
    if let Some(listen) = &admin.listen
        && listen.parse::<SocketAddr>().is_err()
    {
        problems.push(Problem::at(
            "admin.listen",
            format!(
                "`{listen}` is not a socket address; write IP:PORT, such as \"127.0.0.1:5281\" \
                 (host names are not accepted)"
            ),
        ));
    }
    if admin
        .token_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        problems.push(Problem::at("admin.token_file", "must not be empty"));
    } else if admin.listen.is_some() && admin.token_file.is_none() {
        problems.push(Problem::at(
            "admin.listen",
            "the TCP listener needs admin.token_file, the bearer tokens it accepts",
        ));
    }
    if config
        .admin
        .socket
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        problems.push(Problem::at(
            "admin.socket",
            "must not be empty; leave the key out to use admin.sock under server.data_dir",
        ));
        return;
    }
    let socket = config.admin_socket();
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH_BYTES {
        // Blame the key that made the path: the socket itself, or the data directory when
        // the socket is left at its default place.
        let key = if config.admin.socket.is_some() {
            "admin.socket"
        } else {
            "server.data_dir"
        };
        problems.push(Problem::at(
            key,
            format!(
                "the admin socket path `{}` is {len} bytes long; Unix socket paths are \
                 limited to {MAX_SOCKET_PATH_BYTES} (set admin.socket to a shorter path)",
                socket.display()
            ),
        ));
    }
}

/// An account of a hosted domain written as a bare JID (`user@domain`, no resource).
fn hosted_account(config: &Config, jid: &str) -> Result<(), String> {
    match causerie_jid::BareJid::parse(jid) {
        Ok(j) if j.node().is_some() && config.server.domains.iter().any(|d| d == j.domain()) => {
            Ok(())
        }
        Ok(_) => Err(format!(
            "`{jid}` is not an account of a hosted domain (server.domains)"
        )),
        Err(e) => Err(format!("`{jid}`: {e} (write a bare JID, user@domain)")),
    }
}

/// A hosted domain: `localhost` or a DNS name, lowercase, in A-label or U-label form
/// (RFC 5890 §2.3.2.1). Full IDNA checks belong to JID parsing; this catches the mistakes
/// people make in a config file.
pub(crate) fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if domain.parse::<IpAddr>().is_ok()
        || domain
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .is_some_and(|d| d.parse::<IpAddr>().is_ok())
    {
        return Err(format!(
            "`{domain}` is an IP address; a hosted domain must be a DNS name or localhost"
        ));
    }
    if domain.ends_with('.') && domain.len() > 1 {
        return Err(format!(
            "`{domain}` ends with a dot; write `{}`",
            domain.trim_end_matches('.')
        ));
    }
    if domain.chars().any(|c| c.is_uppercase()) {
        return Err(format!(
            "`{domain}` must be written in lowercase (`{}`)",
            domain.to_lowercase()
        ));
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(format!(
            "is {} bytes long; a domain name has at most {MAX_DOMAIN_LEN}",
            domain.len()
        ));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(format!(
                "`{domain}` has an empty label (two dots in a row?)"
            ));
        }
        if label.chars().count() > MAX_LABEL_LEN {
            return Err(format!(
                "`{domain}` has a label longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{domain}`: a label cannot start or end with a hyphen"
            ));
        }
        let allowed = |c: char| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || (!c.is_ascii() && c.is_alphanumeric())
        };
        if let Some(bad) = label.chars().find(|c| !allowed(*c)) {
            return Err(format!(
                "`{domain}` contains `{}`; a domain has only letters, digits, hyphens and dots",
                bad.escape_default()
            ));
        }
    }
    Ok(())
}

/// A certificate's domain: a domain as above, or `*.` followed by one.
fn check_certificate_domain(domain: &str) -> Result<(), String> {
    match domain.strip_prefix("*.") {
        Some(base) => check_domain(base)
            .map_err(|m| format!("wildcard `{domain}`: {m}"))
            .and_then(|()| {
                if base.contains('.') {
                    Ok(())
                } else {
                    Err(format!("wildcard `{domain}` is too broad"))
                }
            }),
        None => check_domain(domain),
    }
}

/// Does a certificate name cover a hosted domain? A wildcard matches exactly one label
/// (RFC 6125 §6.4.3: `*.example.com` covers `chat.example.com`, not `example.com` nor
/// `a.b.example.com`).
pub(crate) fn covers(certificate_domain: &str, domain: &str) -> bool {
    match certificate_domain.strip_prefix("*.") {
        Some(base) => domain
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
        None => certificate_domain == domain,
    }
}

/// A subset of tracing's filter syntax: comma-separated `level` or `target=level` items.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let level_ok = |level: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level));
    let items: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        return Err("must not be empty (for example \"info\")".to_owned());
    }
    for item in items {
        let (target, level) = match item.split_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, item),
        };
        if let Some(target) = target {
            let target_ok = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if !target_ok {
                return Err(format!(
                    "`{item}`: the target must be a module path such as causerie_c2s"
                ));
            }
        }
        if !level_ok(level) {
            return Err(format!(
                "`{item}`: unknown level `{level}`; use one of {}",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        for good in [
            "localhost",
            "example.com",
            "chat-1.example.org",
            "bücher.example",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(check_domain(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Example.com",
            "example.com.",
            "a..b",
            "-a.example",
            "a-.example",
            "under_score.example",
            "sp ace.example",
            "127.0.0.1",
            "[::1]",
            "user@example.com",
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(check_domain(&long_label).is_err());
        let long_name = ["abcdefghij"; 26].join(".");
        assert!(check_domain(&long_name).is_err());
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("example.com", "example.com"));
        assert!(covers("*.example.com", "chat.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("example.com", "chat.example.com"));
        assert!(check_certificate_domain("*.example.com").is_ok());
        assert!(check_certificate_domain("*.com").is_err());
        assert!(check_certificate_domain("*.*.example.com").is_err());
    }

    #[test]
    fn log_filters() {
        for good in [
            "info",
            "WARN",
            "info,causerie_c2s=debug",
            "causerie_core::router=trace, warn",
            "off",
        ] {
            assert_eq!(check_log_filter(good), Ok(()), "{good}");
        }
        for bad in ["", " , ", "verbose", "info,=debug", "a b=info", "x=loud"] {
            assert!(check_log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seal_keys_have_the_prefix_and_32_bytes_of_base64() {
        // 32 bytes 0x00..0x1f in standard base64.
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let good = format!("{SEAL_KEY_PREFIX}{b64}");
        assert_eq!(check_seal_key(&good), Ok(()));
        assert_eq!(check_seal_key(&format!(" {good}\n")), Ok(()));
        for bad in [
            String::new(),
            b64.to_owned(),
            format!("causerie-officer-secret-v1:{b64}"),
            format!("{SEAL_KEY_PREFIX}{}", &b64[..43]),
            format!("{SEAL_KEY_PREFIX}{b64}="),
            format!("{SEAL_KEY_PREFIX}AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A"),
            format!("{SEAL_KEY_PREFIX}AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-="),
            // The last digit carries bits past the 32nd byte.
            format!("{SEAL_KEY_PREFIX}AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="),
        ] {
            assert!(check_seal_key(&bad).is_err(), "{bad:?} accepted");
        }
        let mut config = Config::default();
        config.compliance.seal_key = Some("causerie-officer-v1:short".to_owned());
        assert!(
            check(&config)
                .iter()
                .any(|p| p.to_string().contains("compliance.seal_key"))
        );
        config.compliance.seal_key = Some(good);
        assert!(check(&config).is_empty());
    }
}
