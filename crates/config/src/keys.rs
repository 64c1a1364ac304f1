//! The key reference: one entry per configuration key, beside the structs it describes.
//!
//! This table is the single source for the parser's type checks and suggestions, the numeric
//! bounds enforced by validation, `causerie.example.toml` and `docs/configuration.md`. A unit
//! test walks the serialized structs and fails when a field has no entry here or an entry no
//! field.

use crate::Config;

/// A table of the file (`[server]`), or the array of tables `[[tls.certificates]]`.
#[derive(Debug, Clone, Copy)]
pub struct SectionDoc {
    /// Dotted path of the table.
    pub path: &'static str,
    /// `true` for an array of tables (`[[…]]`).
    pub array: bool,
    pub description: &'static str,
}

/// One key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// Dotted path; keys inside `[[tls.certificates]]` are written `tls.certificates.domain`.
    pub path: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// A value shown (commented out) in the example file for keys that have no default.
    pub example: Option<&'static str>,
    /// One paragraph, no line breaks: it becomes a comment and a Markdown table cell.
    pub description: &'static str,
}

/// The TOML type of a key, and for integers the accepted range.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// A non-negative integer within `min..=max`; `get` reads the field from a config.
    Int {
        min: u64,
        max: u64,
        get: fn(&Config) -> u64,
    },
    Str,
    /// A file system path, written as a string.
    Path,
    StrList,
    /// An array of tables, described by the section of the same path.
    Tables,
}

impl Kind {
    /// The type as the reference documentation names it.
    pub fn label(&self) -> String {
        match self {
            Kind::Bool => "boolean".to_owned(),
            Kind::Int { min, max, .. } => format!("integer, {min} to {max}"),
            Kind::Str => "string".to_owned(),
            Kind::Path => "path".to_owned(),
            Kind::StrList => "array of strings".to_owned(),
            Kind::Tables => "array of tables".to_owned(),
        }
    }
}

/// Where a key's default comes from.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// The value in `Config::default()`.
    Builtin,
    /// An optional key; when absent, this (described in words) applies.
    Unset(&'static str),
    /// Every entry of its array of tables must set it.
    Required,
}

/// Integer fields are at most `u64`; `usize` fits on every platform the server supports.
fn widen(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The tables, in file order.
pub static SECTIONS: &[SectionDoc] = &[
    SectionDoc {
        path: "server",
        array: false,
        description: "What the server hosts and where it keeps its own files.",
    },
    SectionDoc {
        path: "database",
        array: false,
        description: "Where accounts, rosters and messages are stored. With no settings: an SQLite file under `server.data_dir`, created on first start.",
    },
    SectionDoc {
        path: "tls",
        array: false,
        description: "TLS certificates and protocol versions.",
    },
    SectionDoc {
        path: "tls.certificates",
        array: true,
        description: "One `[[tls.certificates]]` block per certificate. A relative path is taken from the working directory.",
    },
    SectionDoc {
        path: "c2s",
        array: false,
        description: "Client connections (RFC 6120).",
    },
    SectionDoc {
        path: "auth",
        array: false,
        description: "Client authentication (SASL, RFC 6120 §6) and the throttling of failed attempts.",
    },
    SectionDoc {
        path: "s2s",
        array: false,
        description: "Connections with other servers (federation, RFC 6120): listeners, timeouts, the queue of stanzas waiting for a stream, and which certificates of peer servers are trusted. Which domains may federate at all is set in `[federation]`.",
    },
    SectionDoc {
        path: "federation",
        array: false,
        description: "Which remote domains this server exchanges stanzas with. Partners can also be added and removed while the server runs, with `causeriectl federation`; those are kept in the database and read again every `reload_secs`.",
    },
    SectionDoc {
        path: "federation.partners",
        array: true,
        description: "One `[[federation.partners]]` block per remote domain that needs one: every allowed domain in `allowlist` mode, and in any mode a domain reached by a static route or whose certificate is pinned. A relative path is taken from the working directory.",
    },
    SectionDoc {
        path: "limits",
        array: false,
        description: "Bounds on what one client can make the server hold in memory.",
    },
    SectionDoc {
        path: "im",
        array: false,
        description: "Instant-messaging features: offline messages (XEP-0160), vCards (XEP-0054), private XML storage (XEP-0049), rosters and presence (RFC 6121), blocking (XEP-0191), client state indication (XEP-0352), software version (XEP-0092) and server-to-client pings (XEP-0199), with the bounds they keep per account and per session.",
    },
    SectionDoc {
        path: "policy",
        array: false,
        description: "The usage policy (`causeriectl policy publish`): while a version is in force that an account has not accepted, its sessions are restricted to reading and accepting it (xeps/policy-acceptance.md).",
    },
    SectionDoc {
        path: "compliance",
        array: false,
        description: "The compliance engine: rules (in their own file, reloaded when it changes; `causeriectl rules`) that scan messages and can log, capture evidence, warn, mask, block, end the session, hold for review and alert the security officers (docs/compliance.md).",
    },
    SectionDoc {
        path: "log",
        array: false,
        description: "What the server logs.",
    },
    SectionDoc {
        path: "admin",
        array: false,
        description: "The admin API (HTTP and JSON, described in docs/admin-api.md): always on a Unix socket under the data folder, used by `causeriectl`; optionally on a TCP address for other tools, with bearer tokens.",
    },
    SectionDoc {
        path: "http",
        array: false,
        description: "The public HTTP listener: Prometheus metrics at `/metrics` (docs/metrics.md) and a health check at `/health`, for monitoring and load balancers. Plain HTTP without authentication: anyone who reaches the address reads the server's counters (never a JID or a message).",
    },
];

/// Every key, in file order within its table.
pub static KEYS: &[KeyDoc] = &[
    // [server]
    KeyDoc {
        path: "server.domains",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Domains this server hosts: the part after `@` in its users' addresses. Each is `localhost` or a DNS name in lowercase ASCII letters, digits, hyphens and dots; an internationalised name may be written in Unicode (U-label, `bücher.example`) or in its `xn--` form. A domain needs a certificate from `[[tls.certificates]]` unless `tls.self_signed_for_missing` is true.",
    },
    KeyDoc {
        path: "server.data_dir",
        kind: Kind::Path,
        default: DefaultValue::Builtin,
        example: None,
        description: "Directory for the server's own files: the SQLite database (unless `database.url` is set), generated secrets, self-signed certificates and the admin socket. Created on first start. A relative path is taken from the working directory.",
    },
    KeyDoc {
        path: "server.shutdown_grace_secs",
        kind: Kind::Int {
            min: 0,
            max: 3600,
            get: |c| c.server.shutdown_grace_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "On shutdown, seconds that sessions get to close cleanly before their connections are cut.",
    },
    // [database]
    KeyDoc {
        path: "database.url",
        kind: Kind::Str,
        default: DefaultValue::Unset("SQLite file `causerie.db` under `server.data_dir`"),
        example: Some("\"postgres://causerie:secret@localhost/causerie\""),
        description: "Database to use: `postgres://USER:PASSWORD@HOST/NAME` for PostgreSQL, or `sqlite://PATH?mode=rwc` for an SQLite file elsewhere. If the URL holds a password, make the file readable by the server only.",
    },
    KeyDoc {
        path: "database.max_connections",
        kind: Kind::Int {
            min: 1,
            max: 1000,
            get: |c| u64::from(c.database.max_connections),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most connections the database pool keeps open. SQLite uses at most 4 whatever this says: it runs one writer at a time, and each connection keeps its own page cache.",
    },
    KeyDoc {
        path: "database.connect_timeout_secs",
        kind: Kind::Int {
            min: 1,
            max: 600,
            get: |c| c.database.connect_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Seconds to wait for a database connection before giving up.",
    },
    // [tls]
    KeyDoc {
        path: "tls.certificates",
        kind: Kind::Tables,
        default: DefaultValue::Builtin,
        example: None,
        description: "Certificates for the hosted domains, one `[[tls.certificates]]` block each (keys below).",
    },
    KeyDoc {
        path: "tls.min_version",
        kind: Kind::Str,
        default: DefaultValue::Builtin,
        example: None,
        description: "Oldest TLS version accepted: `\"1.2\"` or `\"1.3\"`.",
    },
    KeyDoc {
        path: "tls.self_signed_for_missing",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "For a hosted domain that no `[[tls.certificates]]` block covers, generate a self-signed certificate and keep it under `server.data_dir`. Clients and other servers do not trust such a certificate: this is meant for `localhost` and tests. When false, every hosted domain must have a certificate.",
    },
    // [[tls.certificates]]
    KeyDoc {
        path: "tls.certificates.domain",
        kind: Kind::Str,
        default: DefaultValue::Required,
        example: Some("\"example.com\""),
        description: "Domain the certificate is for: a hosted domain, or a wildcard such as `*.example.com` covering hosted domains one label below it.",
    },
    KeyDoc {
        path: "tls.certificates.cert",
        kind: Kind::Path,
        default: DefaultValue::Required,
        example: Some("\"/etc/causerie/tls/example.com/fullchain.pem\""),
        description: "PEM file with the certificate chain, the domain's certificate first.",
    },
    KeyDoc {
        path: "tls.certificates.key",
        kind: Kind::Path,
        default: DefaultValue::Required,
        example: Some("\"/etc/causerie/tls/example.com/privkey.pem\""),
        description: "PEM file with the private key (PKCS#8, RSA or SEC1). Keep it readable by the server only.",
    },
    // [c2s]
    KeyDoc {
        path: "c2s.starttls_listen",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Addresses where clients connect and then start TLS with STARTTLS (RFC 6120 §5), each `IP:PORT`: `\"[::]:5222\"` for every interface (IPv4 too, on most systems), `\"0.0.0.0:5222\"` for every IPv4 interface, `\"127.0.0.1:5222\"` for loopback only. Host names are not accepted.",
    },
    KeyDoc {
        path: "c2s.direct_tls_listen",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Addresses where clients start with TLS right away (XEP-0368), in the same form. At least one of the two lists must be non-empty; an address may appear only once over both, except with port 0, which takes a free port at each start.",
    },
    KeyDoc {
        path: "c2s.require_encryption",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Refuse clients that do not encrypt their stream. False is only for tests: it is accepted only when every c2s address is a loopback address, and the server warns loudly at start.",
    },
    KeyDoc {
        path: "c2s.handshake_timeout_secs",
        kind: Kind::Int {
            min: 1,
            max: 3600,
            get: |c| c.c2s.handshake_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "A client that has not finished stream negotiation (TLS, authentication, resource binding) within this many seconds is disconnected with a `connection-timeout` stream error.",
    },
    KeyDoc {
        path: "c2s.idle_timeout_secs",
        kind: Kind::Int {
            min: 1,
            max: 86_400,
            get: |c| c.c2s.idle_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "A connection on which no byte at all arrives for this many seconds is closed with a `connection-timeout` stream error. Clients stay connected by sending whitespace or XEP-0199 pings.",
    },
    KeyDoc {
        path: "c2s.send_queue_len",
        kind: Kind::Int {
            min: 1,
            max: 1_048_576,
            get: |c| widen(c.c2s.send_queue_len),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Stanzas that may wait to be sent to one session. A client that reads too slowly to keep the queue from filling is disconnected, so that it cannot make the server's memory grow.",
    },
    // [auth]
    KeyDoc {
        path: "auth.mechanisms",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "SASL mechanisms offered to clients, in order of preference, chosen from SCRAM-SHA-512-PLUS, SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-512, SCRAM-SHA-256 and SCRAM-SHA-1. The `-PLUS` variants bind authentication to the TLS channel. PLAIN is not listed here: see `allow_plain`.",
    },
    KeyDoc {
        path: "auth.allow_plain",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Also offer PLAIN, where the client sends its password itself. It is only ever offered inside TLS. Enable it only for clients that cannot do SCRAM.",
    },
    KeyDoc {
        path: "auth.scram_iterations",
        kind: Kind::Int {
            min: 4096,
            max: 1_000_000,
            get: |c| u64::from(c.auth.scram_iterations),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "PBKDF2 iteration count for newly stored SCRAM credentials (RFC 7677 asks for at least 4096). More iterations slow down guessing passwords from a stolen database, and every login as well. Stored credentials keep their count until the password changes.",
    },
    KeyDoc {
        path: "auth.max_failures_per_account",
        kind: Kind::Int {
            min: 1,
            max: 1000,
            get: |c| u64::from(c.auth.max_failures_per_account),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Failed authentications allowed for one account within `failure_window_secs`; after that, attempts for the account are refused until the window has passed.",
    },
    KeyDoc {
        path: "auth.max_failures_per_ip",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| u64::from(c.auth.max_failures_per_ip),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Failed authentications allowed from one IP address within `failure_window_secs`; after that, attempts from the address are refused until the window has passed.",
    },
    KeyDoc {
        path: "auth.failure_window_secs",
        kind: Kind::Int {
            min: 1,
            max: 86_400,
            get: |c| c.auth.failure_window_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Length in seconds of the window over which failed authentications are counted.",
    },
    // [s2s]
    KeyDoc {
        path: "s2s.listen",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Addresses where other servers connect and then start TLS with STARTTLS (RFC 6120 §5), each `IP:PORT` as in `c2s.starttls_listen`. Empty: no such listener (this server can still connect out).",
    },
    KeyDoc {
        path: "s2s.direct_tls_listen",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Addresses where other servers start with TLS right away (XEP-0368), in the same form. Empty: no such listener. An address may appear only once over the c2s and s2s lists, except with port 0.",
    },
    KeyDoc {
        path: "s2s.connect_timeout_secs",
        kind: Kind::Int {
            min: 1,
            max: 300,
            get: |c| c.s2s.connect_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Seconds allowed to set up an outgoing stream to another server: DNS lookups, TCP connection, TLS and authentication. Stanzas waiting for the stream are then bounced to their senders with a `remote-server-timeout` error.",
    },
    KeyDoc {
        path: "s2s.handshake_timeout_secs",
        kind: Kind::Int {
            min: 1,
            max: 600,
            get: |c| c.s2s.handshake_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "An incoming stream from another server that is not authenticated within this many seconds is closed with a `connection-timeout` stream error.",
    },
    KeyDoc {
        path: "s2s.idle_timeout_secs",
        kind: Kind::Int {
            min: 10,
            max: 86_400,
            get: |c| c.s2s.idle_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "A server-to-server stream with no traffic in either direction for this many seconds is closed; a new one is opened when a stanza needs it.",
    },
    KeyDoc {
        path: "s2s.queue_len",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| widen(c.s2s.queue_len),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Stanzas held for one remote domain while its stream is being set up. Further stanzas are bounced to their senders with a `resource-constraint` error.",
    },
    KeyDoc {
        path: "s2s.dialback",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Accept and use server dialback (XEP-0220), which checks a peer through DNS, when the peer's certificate does not validate. Never used for a partner whose certificate is pinned.",
    },
    KeyDoc {
        path: "s2s.require_valid_certificates",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Refuse peer servers whose certificate does not validate, even when dialback would succeed (what other servers call secure authentication).",
    },
    KeyDoc {
        path: "s2s.use_system_roots",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Trust the system's CA bundle (`/etc/ssl/certs/ca-certificates.crt`) for peer servers' certificates.",
    },
    KeyDoc {
        path: "s2s.ca_file",
        kind: Kind::Path,
        default: DefaultValue::Unset("no trust anchors besides the system ones"),
        example: Some("\"/etc/causerie/s2s-ca.pem\""),
        description: "PEM file with more CA certificates trusted for every peer server's certificate.",
    },
    KeyDoc {
        path: "s2s.bidi",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Offer and use bidirectional server-to-server streams (XEP-0288), so that one TCP connection carries stanzas both ways.",
    },
    KeyDoc {
        path: "s2s.dane",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "DANE (RFC 7673): look up the TLSA records of each server found through DNS, validated with DNSSEC from the root trust anchor; when there are some, the peer's certificate must match one of them (it then counts as valid whatever its issuer), and a peer that matches none is not used. Needs name servers that pass DNSSEC records on. Static routes are not checked this way.",
    },
    KeyDoc {
        path: "s2s.resolver",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "DNS servers used for the SRV and address lookups of remote domains, each `IP:PORT` such as `\"127.0.0.53:53\"`. Empty: the system's resolver configuration.",
    },
    KeyDoc {
        path: "s2s.max_stanza_bytes",
        kind: Kind::Int {
            min: 10_000,
            max: 16_777_216,
            get: |c| widen(c.s2s.max_stanza_bytes),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Largest stanza accepted from another server, in bytes of XML as received (RFC 6120 §13.12 requires at least 10000). A server that sends a larger one gets a `policy-violation` stream error.",
    },
    // [federation]
    KeyDoc {
        path: "federation.mode",
        kind: Kind::Str,
        default: DefaultValue::Builtin,
        example: None,
        description: "`\"allowlist\"`: federate only with the partners (with none, federation is closed); `\"denylist\"`: with every domain except those in `deny`; `\"open\"`: with every domain except those in `deny`, and the server warns at start.",
    },
    KeyDoc {
        path: "federation.reload_secs",
        kind: Kind::Int {
            min: 1,
            max: 3600,
            get: |c| c.federation.reload_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "How often, in seconds, the running server reads again the partners kept in the database (changed with `causeriectl federation`).",
    },
    KeyDoc {
        path: "federation.deny",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Domains refused in every mode, written like `server.domains` (upper case and a final dot are removed). A domain cannot be both denied and a partner.",
    },
    KeyDoc {
        path: "federation.audit_streams",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Record every accepted and refused server-to-server stream in the audit log.",
    },
    KeyDoc {
        path: "federation.partners",
        kind: Kind::Tables,
        default: DefaultValue::Builtin,
        example: None,
        description: "Remote domains listed here, one `[[federation.partners]]` block each (keys below).",
    },
    // [[federation.partners]]
    KeyDoc {
        path: "federation.partners.domain",
        kind: Kind::Str,
        default: DefaultValue::Required,
        example: Some("\"partner.example\""),
        description: "The remote domain, written like `server.domains` (upper case and a final dot are removed). Each domain has one block at most, and a hosted domain none.",
    },
    KeyDoc {
        path: "federation.partners.route",
        kind: Kind::Str,
        default: DefaultValue::Unset("the domain's servers are found through DNS (SRV records)"),
        example: Some("\"xmpp.partner.example:5269\""),
        description: "A static route used instead of DNS: `HOST:PORT`, where the host is a DNS name or an IP address, an IPv6 address written in brackets (`\"[2001:db8::5]:5269\"`).",
    },
    KeyDoc {
        path: "federation.partners.direct_tls",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "The static route expects TLS right away (XEP-0368) instead of STARTTLS. Only with `route`.",
    },
    KeyDoc {
        path: "federation.partners.ca",
        kind: Kind::Path,
        default: DefaultValue::Unset(
            "certificates are checked against `s2s.use_system_roots` and `s2s.ca_file`",
        ),
        example: Some("\"/etc/causerie/partners/partner.example-ca.pem\""),
        description: "Pin: PEM file with the CA certificates the partner's certificate must chain to. Dialback is refused for a pinned partner.",
    },
    KeyDoc {
        path: "federation.partners.fingerprints",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: Some(
            "[\"4f:1c:6a:09:7e:22:d3:b8:90:5a:ee:13:c7:44:08:f1:2d:9b:6e:a0:35:c8:71:fe:0b:64:d9:2a:83:57:1e:cc\"]",
        ),
        description: "Pin: SHA-256 fingerprints of the partner's own (leaf) certificate, any of which is accepted: 64 hex digits, with or without colons between bytes, as printed by `openssl x509 -noout -fingerprint -sha256`. With `ca` too, a certificate matching either pin is accepted. Dialback is refused for a pinned partner.",
    },
    KeyDoc {
        path: "federation.partners.insecure",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "For tests only: accept this partner without a valid certificate, and even without TLS. Cannot be combined with `ca` or `fingerprints`; the server warns at start.",
    },
    // [limits]
    KeyDoc {
        path: "limits.max_stanza_bytes",
        kind: Kind::Int {
            min: 10_000,
            max: 16_777_216,
            get: |c| widen(c.limits.max_stanza_bytes),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Largest stanza a client may send, in bytes of XML as received. RFC 6120 §13.12 requires accepting at least 10000. A client that sends a larger one gets a `policy-violation` stream error.",
    },
    KeyDoc {
        path: "limits.max_depth",
        kind: Kind::Int {
            min: 4,
            max: 256,
            get: |c| widen(c.limits.max_depth),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Deepest nesting of XML elements allowed in a stanza.",
    },
    KeyDoc {
        path: "limits.max_attributes",
        kind: Kind::Int {
            min: 8,
            max: 1024,
            get: |c| widen(c.limits.max_attributes),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most attributes allowed on one XML element.",
    },
    KeyDoc {
        path: "limits.max_sessions_per_user",
        kind: Kind::Int {
            min: 1,
            max: 1024,
            get: |c| widen(c.limits.max_sessions_per_user),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most sessions (connected resources) one account may have at once; binding one more fails with `resource-constraint` (RFC 6120 §7.6.2.1).",
    },
    // [im]
    KeyDoc {
        path: "im.offline_quota",
        kind: Kind::Int {
            min: 0,
            max: 100_000,
            get: |c| c.im.offline_quota,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most messages kept for one account while it has no available resource (XEP-0160). When the store is full, senders get a `service-unavailable` error saying so (RFC 6121 §8.5.2.2.1). 0 keeps no offline messages at all.",
    },
    KeyDoc {
        path: "im.max_vcard_bytes",
        kind: Kind::Int {
            min: 1024,
            max: 4_194_304,
            get: |c| widen(c.im.max_vcard_bytes),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Largest vCard (XEP-0054) an account may publish, in bytes of serialized XML, photo included. A larger one is refused with `not-acceptable`. Keep it below `limits.max_stanza_bytes`, or nobody can send a vCard that large.",
    },
    KeyDoc {
        path: "im.max_private_bytes",
        kind: Kind::Int {
            min: 1024,
            max: 4_194_304,
            get: |c| widen(c.im.max_private_bytes),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Largest document an account may keep under one namespace of private XML storage (XEP-0049, used by clients for bookmarks and settings), in bytes of serialized XML. A larger one is refused with `not-acceptable`.",
    },
    KeyDoc {
        path: "im.max_roster_items",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| widen(c.im.max_roster_items),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most contacts one account's roster may hold (RFC 6121 §2); adding more is refused.",
    },
    KeyDoc {
        path: "im.max_directed_presences",
        kind: Kind::Int {
            min: 1,
            max: 10_000,
            get: |c| widen(c.im.max_directed_presences),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most entities outside its roster one session may send directed presence to (RFC 6121 §4.6); the server remembers them to tell them when the session goes offline.",
    },
    KeyDoc {
        path: "im.max_blocklist_items",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| widen(c.im.max_blocklist_items),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Most addresses one account may block (XEP-0191). Blocking more is refused with `policy-violation`. The blocklists of connected accounts are kept in memory.",
    },
    KeyDoc {
        path: "im.csi_max_held_presences",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| widen(c.im.csi_max_held_presences),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "While a client says it is inactive (XEP-0352), the presence updates it would receive are held back, the latest one per contact, and sent when it becomes active. This bounds how many contacts' updates are held for one session; when one more arrives, the held ones are sent at once.",
    },
    KeyDoc {
        path: "im.presence_burst",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| u64::from(c.im.presence_burst),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Presence stanzas one session may send in a burst (joining many group chats at login sends one each). Past it, and until the rate below refills the allowance, presence gets a `policy-violation` error; a session that keeps flooding at twice the burst is disconnected with the `<policy-violation/>` stream error.",
    },
    KeyDoc {
        path: "im.presence_per_minute",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| u64::from(c.im.presence_per_minute),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Rate at which a session's presence allowance refills, in stanzas per minute.",
    },
    KeyDoc {
        path: "im.hide_version",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Do not answer software version queries (XEP-0092): the server then neither names its software nor its version, and such queries get `service-unavailable`.",
    },
    KeyDoc {
        path: "im.version_show_os",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Also name the operating system in software version answers (XEP-0092). Ignored when `hide_version` is true.",
    },
    KeyDoc {
        path: "im.server_ping_interval_secs",
        kind: Kind::Int {
            min: 0,
            max: 86_400,
            get: |c| c.im.server_ping_interval_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Every this many seconds the server pings each client session (XEP-0199); a session that has not answered by the next round is closed with a `connection-timeout` stream error. 0 turns server pings off.",
    },
    // [policy]
    KeyDoc {
        path: "policy.enabled",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Hold every session whose account has not accepted the usage policy in force until it accepts. With no version published nothing is held. `false` turns the gate off: nobody is asked, published versions stay readable, and receipts are kept.",
    },
    KeyDoc {
        path: "policy.mode",
        kind: Kind::Str,
        default: DefaultValue::Builtin,
        example: None,
        description: "`\"once\"`: an account accepts each version once, and its later sessions are not held. `\"every-session\"`: every new session must accept the version in force again, and each acceptance writes a receipt.",
    },
    KeyDoc {
        path: "policy.timeout_secs",
        kind: Kind::Int {
            min: 5,
            max: 86_400,
            get: |c| c.policy.timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "A held session that has neither accepted nor declined after this many seconds is closed with the `<policy-violation/>` stream error. Leave readers of a long text enough time.",
    },
    KeyDoc {
        path: "policy.localpart",
        kind: Kind::Str,
        default: DefaultValue::Builtin,
        example: None,
        description: "Localpart of the policy address of each hosted domain (`policy@DOMAIN`), which sends the policy as a chat message and understands the replies `ACCEPT code`, `DECLINE` and `MY POLICY`. No account may have this name: the server refuses to start when one does.",
    },
    KeyDoc {
        path: "policy.messages_per_minute",
        kind: Kind::Int {
            min: 1,
            max: 10_000,
            get: |c| u64::from(c.policy.messages_per_minute),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Messages one session may send to the policy address per minute; past it they are dropped without a reply, so that two automatic responders cannot answer each other forever.",
    },
    // [compliance]
    KeyDoc {
        path: "compliance.enabled",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Apply the rules of the rules file to messages. `false` applies none (the file is not read).",
    },
    KeyDoc {
        path: "compliance.rules_file",
        kind: Kind::Path,
        default: DefaultValue::Unset("`rules.toml` in `server.data_dir`"),
        example: Some("\"/etc/causerie/rules.toml\""),
        description: "The rules (format in docs/compliance.md). A missing file means no rules. A file with an error keeps the server from starting; later, a change with an error is refused whole and the rules in force stay.",
    },
    KeyDoc {
        path: "compliance.reload_secs",
        kind: Kind::Int {
            min: 1,
            max: 3600,
            get: |c| c.compliance.reload_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "How often the rules file is checked for changes, and the review decisions on quarantined messages (`causeriectl review release|reject`) are looked for and carried out, in seconds. Decisions are also carried out at start.",
    },
    KeyDoc {
        path: "compliance.officers",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Accounts of this server (bare JIDs) that receive the alerts of rules with the `alert` action, as chat messages from the policy address.",
    },
    KeyDoc {
        path: "compliance.project_names",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Confidential project names that the `project` detector finds in messages (case, accents and spacing ignored, whole words).",
    },
    KeyDoc {
        path: "compliance.context_messages",
        kind: Kind::Int {
            min: 0,
            max: 50,
            get: |c| widen(c.compliance.context_messages),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "How many earlier messages of the same conversation are kept, in memory only, and stored with captured evidence for context.",
    },
    KeyDoc {
        path: "compliance.seal_key",
        kind: Kind::Str,
        default: DefaultValue::Unset(
            "evidence is stored readable by whoever can read the database",
        ),
        example: Some("\"causerie-officer-v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\""),
        description: "The compliance officer's public key, as `causeriectl evidence keygen` prints it. When set, every evidence payload (the offending stanza, its context, what matched) is stored sealed to it (X25519, HKDF-SHA256, ChaCha20-Poly1305), and only the officer's secret key file reads it (`causeriectl evidence show --key FILE`); the chain and its signatures stay checkable without it. The server refuses to start with a key that does not parse.",
    },
    KeyDoc {
        path: "compliance.retention_days",
        kind: Kind::Int {
            min: 0,
            max: 36_500,
            get: |c| u64::from(c.compliance.retention_days),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Days an evidence payload is kept. Once a day (and at start) the server empties the payload of older records, except those on legal hold (`causeriectl evidence hold`) or pending review; the record itself, its hash and signature stay, so the chain still verifies. Each purge is written to the audit log. 0 keeps payloads forever: the default, because a purge cannot be undone and the period the law requires depends on the country and the trade, so it is the operator's to choose.",
    },
    KeyDoc {
        path: "compliance.alert_webhook",
        kind: Kind::Str,
        default: DefaultValue::Unset("alerts go to the officers and the audit log only"),
        example: Some("\"https://siem.example/hooks/causerie\""),
        description: "An `https://` (or, on a trusted network, `http://`) URL to which every alert and every user report is also posted as JSON (fields in docs/compliance.md), from a background queue that never holds up messages: a post that fails with a 5xx status, 408, 429, a timeout or a connection error is tried again (`alert_webhook_retries`); a full queue drops new alerts with a warning. Credentials in the URL and fragments are refused; logs show only the scheme, host and port.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_token_file",
        kind: Kind::Path,
        default: DefaultValue::Unset(
            "no `Authorization` header, unless `alert_webhook_token_env` is set",
        ),
        example: Some("\"/etc/causerie/webhook.token\""),
        description: "A file holding a bearer token, sent as `Authorization: Bearer TOKEN` with each post (RFC 6750). Read once at start; leading and trailing white space is ignored. Make the file readable by the server only. The token is never logged. Cannot be combined with `alert_webhook_token_env`.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_token_env",
        kind: Kind::Str,
        default: DefaultValue::Unset(
            "no `Authorization` header, unless `alert_webhook_token_file` is set",
        ),
        example: Some("\"CAUSERIE_WEBHOOK_TOKEN\""),
        description: "The name of an environment variable holding the bearer token, as an alternative to `alert_webhook_token_file`. The server refuses to start when the variable is not set.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_ca_file",
        kind: Kind::Path,
        default: DefaultValue::Unset(
            "only the system's CA bundle (`/etc/ssl/certs/ca-certificates.crt`)",
        ),
        example: Some("\"/etc/causerie/siem-ca.pem\""),
        description: "PEM certificates of the authorities trusted for an `https` webhook's certificate, besides the system's CA bundle: for a receiver with a certificate from a company CA.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_timeout_secs",
        kind: Kind::Int {
            min: 1,
            max: 120,
            get: |c| c.compliance.alert_webhook_timeout_secs,
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Seconds one attempt to post an alert may take, connection, TLS and the response's status line included.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_retries",
        kind: Kind::Int {
            min: 0,
            max: 10,
            get: |c| u64::from(c.compliance.alert_webhook_retries),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "How many times a failed post is tried again, after 1, 2, 4… seconds (at most 60). Only failures that may pass are retried: a connection error, a timeout, a 5xx status, 408 or 429. After the last attempt the alert is given up with a warning in the log; the officers' chat message and the audit record do not depend on it.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_queue",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            get: |c| widen(c.compliance.alert_webhook_queue),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Alerts waiting to be posted, at most. When the receiver is slower than the alerts come, new alerts are dropped from the webhook (and counted in a warning in the log) rather than held in memory or allowed to slow messages down.",
    },
    KeyDoc {
        path: "compliance.alert_webhook_include_text",
        kind: Kind::Bool,
        default: DefaultValue::Builtin,
        example: None,
        description: "Include the text of the offending message (its bodies as received, and what the rule found in them) in each post; for a report, the reporter's text. Off by default: the receiver sees who, when, which rule and what was done, and the officer reads the message in the evidence. Refused together with `seal_key`, since sealed evidence means that only the officer's key reads messages.",
    },
    // [log]
    KeyDoc {
        path: "log.level",
        kind: Kind::Str,
        default: DefaultValue::Builtin,
        example: None,
        description: "What to log, as a filter: a level (`error`, `warn`, `info`, `debug`, `trace` or `off`), or comma-separated items that are a level or `target=level`, such as `\"info,causerie_c2s=debug\"`.",
    },
    KeyDoc {
        path: "log.format",
        kind: Kind::Str,
        default: DefaultValue::Builtin,
        example: None,
        description: "Format of log lines. Only `\"text\"`, one human-readable line per event, is available at present.",
    },
    // [admin]
    KeyDoc {
        path: "admin.socket",
        kind: Kind::Path,
        default: DefaultValue::Unset("`admin.sock` under `server.data_dir`"),
        example: Some("\"/run/causerie/admin.sock\""),
        description: "Unix socket of the admin API. Whoever can connect to it administers the server: keep its directory private. The path may be at most 107 bytes long.",
    },
    KeyDoc {
        path: "admin.listen",
        kind: Kind::Str,
        default: DefaultValue::Unset("no TCP listener: the admin API is on the Unix socket only"),
        example: Some("\"127.0.0.1:5281\""),
        description: "`IP:PORT` on which the admin API also listens, over plain HTTP, for tools that cannot use the socket; every request needs `Authorization: Bearer TOKEN` with a token of `admin.token_file`. Tokens and passwords cross this connection in clear: keep it on loopback, or behind a TLS proxy on a private network. Needs `admin.token_file`.",
    },
    KeyDoc {
        path: "admin.token_file",
        kind: Kind::Path,
        default: DefaultValue::Unset("no tokens: required when `admin.listen` is set"),
        example: Some("\"/etc/causerie/admin.tokens\""),
        description: "The bearer tokens of the TCP listener: one `NAME TOKEN [PERMISSION]` line per token (`#` starts a comment), the name recorded in the audit log as `token:NAME`, the token at least 32 characters without white space or `sha256:` and its digest in hex (as `causeriectl token add` writes it), the permission `read`, `operate` or `admin` (the default; see docs/admin-api.md). The file must not be readable by group or others. Read at start and again whenever it changes, so a token is revoked by removing its line.",
    },
    KeyDoc {
        path: "admin.max_request_bytes",
        kind: Kind::Int {
            min: 1024,
            max: 1 << 30,
            get: |c| widen(c.admin.max_request_bytes),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Largest request body the admin API reads, in bytes; a larger one is refused with 413. An account import sends its whole CSV file in one request.",
    },
    KeyDoc {
        path: "admin.max_connections",
        kind: Kind::Int {
            min: 1,
            max: 1024,
            get: |c| widen(c.admin.max_connections),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Connections to the admin API served at once, socket and TCP together; further ones are closed at once until one ends.",
    },
    KeyDoc {
        path: "admin.admins",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Accounts of this server (bare JIDs, such as `\"boss@example.com\"`) that may run the service administration commands (XEP-0133 ad-hoc commands: add, delete, disable and re-enable accounts, change passwords, end sessions, list online users, announce; docs/admin-api.md) from their own XMPP sessions, with the `admin` permission. Only they see the commands; every change they make is in the audit log as `xmpp:JID`. Read at start. Empty: nobody administers the server over XMPP.",
    },
    // [http]
    KeyDoc {
        path: "http.listen",
        kind: Kind::StrList,
        default: DefaultValue::Builtin,
        example: None,
        description: "Addresses of the public HTTP listener, each `IP:PORT` (`\"[::1]:5280\"` for IPv6). The default serves the local machine only. Any address is accepted, with a warning when it is not a loopback one: the metrics and the health check are then open to the network without authentication; prefer a private interface, a firewall, or a reverse proxy that restricts `/metrics`. Empty: no listener, and no metrics are recorded at all.",
    },
    KeyDoc {
        path: "http.max_connections",
        kind: Kind::Int {
            min: 1,
            max: 4096,
            get: |c| widen(c.http.max_connections),
        },
        default: DefaultValue::Builtin,
        example: None,
        description: "Connections to the public HTTP listener served at once, over all its addresses; further ones are closed at once until one ends.",
    },
];

/// The entry for a dotted path with array positions removed (`tls.certificates.domain`).
pub fn key(path: &str) -> Option<&'static KeyDoc> {
    KEYS.iter().find(|k| k.path == path)
}

/// The section with this path.
pub fn section(path: &str) -> Option<&'static SectionDoc> {
    SECTIONS.iter().find(|s| s.path == path)
}

/// The keys directly inside table `section`, in file order.
pub fn keys_of(section: &str) -> impl Iterator<Item = &'static KeyDoc> + '_ {
    KEYS.iter().filter(move |k| {
        k.path
            .strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|name| !name.contains('.'))
    })
}

/// Whether a key is inside an array of tables (`tls.certificates.domain`).
pub fn in_array_section(path: &str) -> bool {
    path.rsplit_once('.')
        .and_then(|(parent, _)| section(parent))
        .is_some_and(|s| s.array)
}

/// The last component of a dotted path.
pub fn name_of(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;
    use crate::{
        AdminConfig, AuthConfig, C2sConfig, CertificateConfig, ComplianceConfig, DatabaseConfig,
        FederationConfig, HttpConfig, ImConfig, LimitsConfig, LogConfig, PartnerConfig,
        PolicyConfig, S2sConfig, ServerConfig, TlsConfig,
    };

    /// Every field set, optional ones included, and written without `..Default::default()`
    /// so that a new field does not compile until it is added here (and then to `KEYS`).
    fn populated() -> Config {
        Config {
            server: ServerConfig {
                domains: vec!["example.com".to_owned()],
                data_dir: PathBuf::from("/var/lib/causerie"),
                shutdown_grace_secs: 5,
            },
            database: DatabaseConfig {
                url: Some("postgres://db.example/causerie".to_owned()),
                max_connections: 4,
                connect_timeout_secs: 3,
            },
            tls: TlsConfig {
                certificates: vec![CertificateConfig {
                    domain: "example.com".to_owned(),
                    cert: PathBuf::from("/etc/causerie/cert.pem"),
                    key: PathBuf::from("/etc/causerie/key.pem"),
                }],
                min_version: "1.3".to_owned(),
                self_signed_for_missing: false,
            },
            c2s: C2sConfig {
                starttls_listen: vec!["0.0.0.0:5222".to_owned()],
                direct_tls_listen: vec![],
                require_encryption: true,
                handshake_timeout_secs: 20,
                idle_timeout_secs: 300,
                send_queue_len: 64,
            },
            auth: AuthConfig {
                mechanisms: vec!["SCRAM-SHA-256".to_owned()],
                allow_plain: true,
                scram_iterations: 10_000,
                max_failures_per_account: 3,
                max_failures_per_ip: 9,
                failure_window_secs: 60,
            },
            s2s: S2sConfig {
                listen: vec!["0.0.0.0:5269".to_owned()],
                direct_tls_listen: vec![],
                connect_timeout_secs: 10,
                handshake_timeout_secs: 20,
                idle_timeout_secs: 120,
                queue_len: 50,
                dialback: false,
                require_valid_certificates: true,
                use_system_roots: false,
                ca_file: Some(PathBuf::from("/etc/causerie/s2s-ca.pem")),
                bidi: false,
                dane: true,
                resolver: vec!["127.0.0.53:53".to_owned()],
                max_stanza_bytes: 100_000,
            },
            federation: FederationConfig {
                mode: "denylist".to_owned(),
                reload_secs: 30,
                deny: vec!["spam.example".to_owned()],
                audit_streams: false,
                partners: vec![PartnerConfig {
                    domain: "partner.example".to_owned(),
                    route: Some("10.0.0.5:5269".to_owned()),
                    direct_tls: true,
                    ca: Some(PathBuf::from("/etc/causerie/partner-ca.pem")),
                    fingerprints: vec!["ab".repeat(32)],
                    insecure: false,
                }],
            },
            limits: LimitsConfig {
                max_stanza_bytes: 65_536,
                max_depth: 16,
                max_attributes: 32,
                max_sessions_per_user: 8,
            },
            im: ImConfig {
                offline_quota: 50,
                max_vcard_bytes: 8192,
                max_private_bytes: 4096,
                max_roster_items: 300,
                max_directed_presences: 20,
                max_blocklist_items: 50,
                csi_max_held_presences: 40,
                presence_burst: 30,
                presence_per_minute: 20,
                hide_version: true,
                version_show_os: true,
                server_ping_interval_secs: 60,
            },
            policy: PolicyConfig {
                enabled: false,
                mode: "every-session".to_owned(),
                timeout_secs: 120,
                localpart: "terms".to_owned(),
                messages_per_minute: 5,
            },
            compliance: ComplianceConfig {
                enabled: false,
                rules_file: Some(PathBuf::from("/etc/causerie/rules.toml")),
                reload_secs: 30,
                officers: vec!["security@example.com".to_owned()],
                project_names: vec!["Falcon".to_owned()],
                context_messages: 3,
                seal_key: Some(format!("causerie-officer-v1:{}=", "A".repeat(43))),
                retention_days: 365,
                alert_webhook: Some("https://siem.example/hook".to_owned()),
                alert_webhook_token_file: Some(PathBuf::from("/etc/causerie/webhook.token")),
                alert_webhook_token_env: Some("CAUSERIE_WEBHOOK_TOKEN".to_owned()),
                alert_webhook_ca_file: Some(PathBuf::from("/etc/causerie/siem-ca.pem")),
                alert_webhook_timeout_secs: 5,
                alert_webhook_retries: 2,
                alert_webhook_queue: 100,
                alert_webhook_include_text: true,
            },
            log: LogConfig {
                level: "debug".to_owned(),
                format: "text".to_owned(),
            },
            admin: AdminConfig {
                socket: Some(PathBuf::from("/run/causerie/admin.sock")),
                listen: Some("127.0.0.1:5281".to_owned()),
                token_file: Some(PathBuf::from("/etc/causerie/admin.tokens")),
                max_request_bytes: 1 << 20,
                max_connections: 8,
                admins: vec!["boss@example.com".to_owned()],
            },
            http: HttpConfig {
                listen: vec!["127.0.0.1:9280".to_owned()],
                max_connections: 16,
            },
        }
    }

    /// Leaf paths of a serialized config, array-of-table entries folded into their path,
    /// with the TOML value found there.
    fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
        for (name, value) in table {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                toml::Value::Table(inner) if prefix.is_empty() => leaves(inner, &path, out),
                toml::Value::Array(items) if items.first().is_some_and(toml::Value::is_table) => {
                    out.push((path.clone(), value.clone()));
                    for item in items {
                        if let toml::Value::Table(inner) = item {
                            leaves(inner, &path, out);
                        }
                    }
                }
                _ => out.push((path, value.clone())),
            }
        }
    }

    fn populated_leaves() -> Vec<(String, toml::Value)> {
        let table = toml::Table::try_from(populated()).expect("the config serializes");
        let mut out = Vec::new();
        leaves(&table, "", &mut out);
        out
    }

    #[test]
    fn every_field_has_a_key_entry_and_every_entry_a_field() {
        let fields: BTreeSet<String> = populated_leaves().into_iter().map(|(p, _)| p).collect();
        let documented: BTreeSet<String> = KEYS.iter().map(|k| k.path.to_owned()).collect();
        let undocumented: Vec<_> = fields.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&fields).collect();
        assert!(
            undocumented.is_empty(),
            "fields without a KEYS entry: {undocumented:?}"
        );
        assert!(stale.is_empty(), "KEYS entries without a field: {stale:?}");
        assert_eq!(KEYS.len(), documented.len(), "a key is documented twice");
    }

    #[test]
    fn kinds_match_the_serialized_types() {
        for (path, value) in populated_leaves() {
            let doc = key(&path).expect("documented (checked by the test above)");
            let fits = match doc.kind {
                Kind::Bool => value.is_bool(),
                Kind::Int { .. } => value.is_integer(),
                Kind::Str | Kind::Path => value.is_str(),
                Kind::StrList => value
                    .as_array()
                    .is_some_and(|items| items.iter().all(toml::Value::is_str)),
                Kind::Tables => value
                    .as_array()
                    .is_some_and(|items| items.iter().all(toml::Value::is_table)),
            };
            assert!(fits, "{path}: {value:?} is not a {:?}", doc.kind);
        }
    }

    #[test]
    fn every_key_belongs_to_a_section_and_sections_are_in_order() {
        for key in KEYS {
            let (section_path, _) = key.path.rsplit_once('.').expect("keys are in tables");
            assert!(section(section_path).is_some(), "{}", key.path);
        }
        let in_keys_order: Vec<&str> = KEYS
            .iter()
            .filter_map(|k| k.path.rsplit_once('.').map(|(s, _)| s))
            .fold(Vec::new(), |mut seen, s| {
                if !seen.contains(&s) {
                    seen.push(s);
                }
                seen
            });
        let sections: Vec<&str> = SECTIONS.iter().map(|s| s.path).collect();
        assert_eq!(in_keys_order, sections);
    }

    #[test]
    fn defaults_examples_and_ranges_are_consistent() {
        let defaults = Config::default();
        for key in KEYS {
            match key.default {
                // In an array of tables, whose sample block the example file shows, a key
                // with a default may have a more telling example value.
                DefaultValue::Builtin if in_array_section(key.path) => {}
                DefaultValue::Builtin => assert!(key.example.is_none(), "{}", key.path),
                DefaultValue::Unset(_) | DefaultValue::Required => {
                    assert!(key.example.is_some(), "{} needs an example", key.path)
                }
            }
            if let Kind::Int { min, max, get } = key.kind {
                assert!(min <= max, "{}", key.path);
                let value = get(&defaults);
                assert!((min..=max).contains(&value), "{} default", key.path);
                // No range may let through a value its field cannot hold (checked before
                // serde sees it), nor one TOML cannot write.
                assert!(max <= u64::from(u32::MAX), "{}", key.path);
            }
        }
    }

    #[test]
    fn integer_getters_read_their_own_field() {
        for key in KEYS {
            let Kind::Int { min, max, get } = key.kind else {
                continue;
            };
            // A value different from the default, within the bounds.
            let default = get(&Config::default());
            let value = if default == max { min } else { max };
            let (section, name) = key.path.rsplit_once('.').expect("in a table");
            let text = format!("[{section}]\n{name} = {value}\n");
            let config = Config::from_toml_str(&text, "test");
            let config = match config {
                Ok(config) => config,
                // A bound may be invalid together with the other defaults; the getter is
                // still checked through a config built without validation.
                Err(_) => toml::from_str::<Config>(&text).expect("the value deserializes"),
            };
            assert_eq!(get(&config), value, "{} getter", key.path);
        }
    }
}
