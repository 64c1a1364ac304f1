//! causerie-config: the typed configuration of the Causerie server, read from one TOML file
//! (`causerie.toml`).
//!
//! This crate owns the configuration structs and their defaults (no file at all is a working
//! setup: domain `localhost`, SQLite under `./data/`, a self-signed certificate made on first
//! start), the checks that refuse a bad file before anything starts (every problem reported at
//! once as `file:line: key: problem`), and the key reference ([`keys::KEYS`]) from which both
//! `causerie.example.toml` and `docs/configuration.md` are generated, so the documentation cannot
//! drift from the structs. It knows nothing of the runtime: it opens no socket, certificate or
//! database, and it logs nothing; the server acts on the values (and prints [`Config::warnings`]).
//!
//! Spec references for the bounds it enforces: RFC 6120 §13.12 (a server must accept stanzas of
//! at least 10000 bytes), RFC 4422 §3.1 (SASL mechanism names), RFC 5802 / RFC 7677 (SCRAM
//! iteration counts), RFC 5890 (A-labels and U-labels of internationalised domain names),
//! XEP-0368 (direct TLS listeners), XEP-0160 / RFC 6121 §8.5.2.2.1 (offline message quota),
//! XEP-0054 and XEP-0049 (per-account document sizes), XEP-0199 (server-to-client pings),
//! RFC 6120 §5 and XEP-0368 (server-to-server listeners and static routes), XEP-0220 (server
//! dialback), XEP-0288 (bidirectional server-to-server streams), RFC 7622 §3.2 (remote domains
//! prepared like a JID's domainpart).

mod error;
mod generate;
pub mod http_url;
pub mod keys;
mod parse;
mod validate;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Problem};
pub use generate::{example_toml, reference_markdown};
pub use http_url::HttpUrl;

/// The file read from the working directory when no `--config PATH` is given.
pub const DEFAULT_PATH: &str = "causerie.toml";

/// A configuration file larger than this is refused before parsing: a real one is a few
/// kilobytes, and the whole file is held in memory while it is checked.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The whole configuration, one field per TOML table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub tls: TlsConfig,
    pub c2s: C2sConfig,
    pub auth: AuthConfig,
    pub s2s: S2sConfig,
    pub federation: FederationConfig,
    pub limits: LimitsConfig,
    pub im: ImConfig,
    pub policy: PolicyConfig,
    pub compliance: ComplianceConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub http: HttpConfig,
}

/// `[server]`: what the server hosts and where it keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub domains: Vec<String>,
    pub data_dir: PathBuf,
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            domains: vec!["localhost".to_owned()],
            data_dir: PathBuf::from("data"),
            shutdown_grace_secs: 10,
        }
    }
}

/// `[database]`: SQLite under `data_dir` unless `url` says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 16,
            connect_timeout_secs: 10,
        }
    }
}

/// `[tls]`: certificates and protocol versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub certificates: Vec<CertificateConfig>,
    pub min_version: String,
    pub self_signed_for_missing: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificates: Vec::new(),
            min_version: "1.2".to_owned(),
            self_signed_for_missing: true,
        }
    }
}

/// One `[[tls.certificates]]` entry: a certificate chain and its private key for one domain
/// (or a wildcard covering hosted domains).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificateConfig {
    pub domain: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[c2s]`: client-to-server listeners and session limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sConfig {
    pub starttls_listen: Vec<String>,
    pub direct_tls_listen: Vec<String>,
    pub require_encryption: bool,
    pub handshake_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub send_queue_len: usize,
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            starttls_listen: vec!["[::]:5222".to_owned()],
            direct_tls_listen: vec!["[::]:5223".to_owned()],
            require_encryption: true,
            handshake_timeout_secs: 30,
            idle_timeout_secs: 600,
            send_queue_len: 1024,
        }
    }
}

/// `[auth]`: SASL mechanisms offered to clients and brute-force throttling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mechanisms: Vec<String>,
    pub allow_plain: bool,
    pub scram_iterations: u32,
    pub max_failures_per_account: u32,
    pub max_failures_per_ip: u32,
    pub failure_window_secs: u64,
}

/// The SCRAM mechanisms the server implements, strongest first; this is also the default list
/// of `auth.mechanisms`. The `-PLUS` variants bind the exchange to the TLS channel (RFC 5802 §6).
pub const SCRAM_MECHANISMS: [&str; 6] = [
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
];

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mechanisms: SCRAM_MECHANISMS.iter().map(|m| (*m).to_owned()).collect(),
            allow_plain: false,
            scram_iterations: 4096,
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            failure_window_secs: 300,
        }
    }
}

/// `[s2s]`: server-to-server listeners, stream setup and the trust placed in peer servers'
/// certificates (RFC 6120, XEP-0368, XEP-0220, XEP-0288).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S2sConfig {
    pub listen: Vec<String>,
    pub direct_tls_listen: Vec<String>,
    pub connect_timeout_secs: u64,
    pub handshake_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub queue_len: usize,
    pub dialback: bool,
    pub require_valid_certificates: bool,
    pub use_system_roots: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub bidi: bool,
    pub dane: bool,
    pub resolver: Vec<String>,
    pub max_stanza_bytes: usize,
}

impl Default for S2sConfig {
    fn default() -> Self {
        S2sConfig {
            listen: vec!["[::]:5269".to_owned()],
            direct_tls_listen: vec!["[::]:5270".to_owned()],
            connect_timeout_secs: 15,
            handshake_timeout_secs: 30,
            idle_timeout_secs: 600,
            queue_len: 1000,
            dialback: true,
            require_valid_certificates: false,
            use_system_roots: true,
            ca_file: None,
            bidi: true,
            dane: false,
            resolver: Vec::new(),
            max_stanza_bytes: 262_144,
        }
    }
}

/// The values of `federation.mode`: which remote domains the server exchanges stanzas with.
pub const FEDERATION_MODES: [&str; 3] = ["allowlist", "denylist", "open"];

/// `[federation]`: which remote domains this server federates with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// One of [`FEDERATION_MODES`].
    pub mode: String,
    pub reload_secs: u64,
    /// Domains refused in every mode, prepared like [`PartnerConfig::domain`].
    #[serde(deserialize_with = "prepared_domains")]
    pub deny: Vec<String>,
    pub audit_streams: bool,
    pub partners: Vec<PartnerConfig>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            mode: "allowlist".to_owned(),
            reload_secs: 5,
            deny: Vec::new(),
            audit_streams: true,
            partners: Vec::new(),
        }
    }
}

/// One `[[federation.partners]]` entry: a remote domain this server federates with, and how
/// to reach and authenticate it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartnerConfig {
    /// Lowercased, without a final dot (RFC 7622 §3.2) when read from a file.
    #[serde(deserialize_with = "prepared_domain")]
    pub domain: String,
    /// A static route, `host:port` or `[IPv6]:port`, used instead of DNS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub direct_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// SHA-256 of the partner's leaf certificate: 64 lowercase hex digits, no colons, when
    /// read from a file.
    #[serde(deserialize_with = "normalized_fingerprints")]
    pub fingerprints: Vec<String>,
    pub insecure: bool,
}

impl PartnerConfig {
    /// Whether the partner's certificate is pinned (by CA or fingerprint); dialback is then
    /// refused for it.
    pub fn is_pinned(&self) -> bool {
        self.ca.is_some() || !self.fingerprints.is_empty()
    }
}

/// The preparation applied to a remote domain read from the file: RFC 7622 §3.2 maps a
/// domainpart to lowercase and drops one final dot. The result is still checked by
/// validation, which also refuses unprepared values in configurations built in code.
pub fn prepare_remote_domain(domain: &str) -> String {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    domain.to_lowercase()
}

/// A certificate fingerprint as stored: hex digits in lowercase, without the colons that
/// tools such as `openssl x509 -fingerprint` put between bytes. Whether 64 hex digits remain
/// is checked by validation.
pub fn normalize_fingerprint(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn prepared_domain<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|s| prepare_remote_domain(&s))
}

fn prepared_domains<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d).map(|v| v.iter().map(|s| prepare_remote_domain(s)).collect())
}

fn normalized_fingerprints<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d).map(|v| v.iter().map(|s| normalize_fingerprint(s)).collect())
}

/// `[limits]`: bounds on what one client may make the server hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_stanza_bytes: usize,
    pub max_depth: usize,
    pub max_attributes: usize,
    pub max_sessions_per_user: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_stanza_bytes: 262_144,
            max_depth: 32,
            max_attributes: 64,
            max_sessions_per_user: 32,
        }
    }
}

/// `[policy]`: the usage policy every account must accept before using the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub enabled: bool,
    pub mode: String,
    pub timeout_secs: u64,
    pub localpart: String,
    pub messages_per_minute: u32,
}

/// How an officer's public key starts (`compliance.seal_key`); the policy crate owns the format.
pub const SEAL_KEY_PREFIX: &str = "causerie-officer-v1:";

/// The values of `policy.mode`.
pub const POLICY_MODES: [&str; 2] = ["once", "every-session"];

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            enabled: true,
            mode: "once".to_owned(),
            timeout_secs: 900,
            localpart: "policy".to_owned(),
            messages_per_minute: 20,
        }
    }
}

/// `[compliance]`: the rules that scan messages, and what they keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<PathBuf>,
    pub reload_secs: u64,
    pub officers: Vec<String>,
    pub project_names: Vec<String>,
    pub context_messages: usize,
    /// The compliance officer's public key (`causerie-officer-v1:BASE64`, from `causeriectl
    /// evidence keygen`); evidence is sealed to it when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_key: Option<String>,
    /// Days an evidence payload is kept; 0 keeps it forever.
    pub retention_days: u32,
    /// Where every alert is also posted as JSON (`http://` or `https://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_webhook: Option<String>,
    /// A file holding the bearer token sent with each post.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_webhook_token_file: Option<PathBuf>,
    /// The name of an environment variable holding the bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_webhook_token_env: Option<String>,
    /// Trust anchors for an `https` webhook, besides the system's CA bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_webhook_ca_file: Option<PathBuf>,
    pub alert_webhook_timeout_secs: u64,
    pub alert_webhook_retries: u32,
    pub alert_webhook_queue: usize,
    /// Whether posts carry the message text (refused with `seal_key`).
    pub alert_webhook_include_text: bool,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            enabled: true,
            rules_file: None,
            reload_secs: 5,
            officers: Vec::new(),
            project_names: Vec::new(),
            context_messages: 5,
            seal_key: None,
            retention_days: 0,
            alert_webhook: None,
            alert_webhook_token_file: None,
            alert_webhook_token_env: None,
            alert_webhook_ca_file: None,
            alert_webhook_timeout_secs: 10,
            alert_webhook_retries: 3,
            alert_webhook_queue: 1000,
            alert_webhook_include_text: false,
        }
    }
}

impl Config {
    /// The rules file: `compliance.rules_file`, or `rules.toml` in the data folder.
    pub fn rules_file(&self) -> PathBuf {
        self.compliance
            .rules_file
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("rules.toml"))
    }
}

/// `[im]`: instant-messaging features (offline messages, vCards, private storage, rosters,
/// presence, blocking, client state indication, software version, server pings) and the
/// per-account and per-session bounds they keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImConfig {
    pub offline_quota: u64,
    pub max_vcard_bytes: usize,
    pub max_private_bytes: usize,
    pub max_roster_items: usize,
    pub max_directed_presences: usize,
    pub max_blocklist_items: usize,
    pub csi_max_held_presences: usize,
    pub presence_burst: u32,
    pub presence_per_minute: u32,
    pub hide_version: bool,
    pub version_show_os: bool,
    pub server_ping_interval_secs: u64,
}

impl Default for ImConfig {
    fn default() -> Self {
        ImConfig {
            offline_quota: 1000,
            max_vcard_bytes: 65_536,
            max_private_bytes: 65_536,
            max_roster_items: 2000,
            max_directed_presences: 100,
            max_blocklist_items: 1000,
            csi_max_held_presences: 500,
            presence_burst: 200,
            presence_per_minute: 120,
            hide_version: false,
            version_show_os: false,
            server_ping_interval_secs: 300,
        }
    }
}

/// `[log]`: what the server writes to standard error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: "text".to_owned(),
        }
    }
}

/// `[admin]`: the administration API, on a local socket and optionally on TCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// `IP:PORT` of the TCP listener of the admin API; none when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The bearer tokens accepted on `listen`, one `NAME TOKEN [PERMISSION]` line each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Connections served at once, socket and TCP together.
    pub max_connections: usize,
    /// Accounts of this server (bare JIDs) that may run the XEP-0133 service administration
    /// commands from their XMPP sessions, with the `admin` permission.
    pub admins: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: None,
            listen: None,
            token_file: None,
            max_request_bytes: 16 * 1024 * 1024,
            max_connections: 32,
            admins: Vec::new(),
        }
    }
}

/// `[http]`: the public HTTP listener (`/metrics`, `/health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `IP:PORT` addresses; empty: no listener.
    pub listen: Vec<String>,
    /// Connections served at once over all the addresses.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec!["127.0.0.1:5280".to_owned()],
            max_connections: 64,
        }
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`. Every problem found is in the error,
    /// each with the file name, the line (when the key is in the file) and the key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |error: std::io::Error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        let origin = path.display().to_string();
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ConfigError::Invalid {
                origin,
                problems: vec![Problem {
                    line: None,
                    key: None,
                    message: format!(
                        "the file is larger than {MAX_FILE_BYTES} bytes; \
                         is this really a configuration file?"
                    ),
                }],
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let line = parse::line_of(e.as_bytes(), offset);
            ConfigError::Invalid {
                origin: origin.clone(),
                problems: vec![Problem {
                    line: Some(line),
                    key: None,
                    message: "the file is not valid UTF-8 (TOML files must be)".to_owned(),
                }],
            }
        })?;
        Config::from_toml_str(&text, &origin)
    }

    /// Parses and validates TOML text. `origin` names the text in error messages (usually the
    /// file's path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let parsed = parse::parse(text);
        let mut problems = parsed.problems;
        if let Some(config) = parsed.config {
            if let Err(found) = config.validate() {
                problems.extend(
                    found
                        .into_iter()
                        .map(|p| parsed.spans.attach_line(p, text.as_bytes())),
                );
            }
            if problems.is_empty() {
                return Ok(config);
            }
        }
        error::sort_problems(&mut problems);
        Err(ConfigError::Invalid {
            origin: origin.to_owned(),
            problems,
        })
    }

    /// Finds and loads the configuration the way the server does: `explicit` (from
    /// `--config PATH`) if given, else `./causerie.toml` if it exists, else the defaults.
    /// Returns the path that was read, if any.
    pub fn discover(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => {
                let path = PathBuf::from(DEFAULT_PATH);
                match path.try_exists() {
                    Ok(true) => path,
                    Ok(false) => {
                        let config = Config::default();
                        config.validate().map_err(|problems| ConfigError::Invalid {
                            origin: "built-in defaults".to_owned(),
                            problems,
                        })?;
                        return Ok((config, None));
                    }
                    Err(error) => return Err(ConfigError::Read { path, error }),
                }
            }
        };
        let config = Config::load(&path)?;
        Ok((config, Some(path)))
    }

    /// Checks every rule on an already built configuration. The problems carry keys but no
    /// line numbers; [`Config::from_toml_str`] adds those from the file.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let problems = validate::check(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Things that are allowed but deserve a loud warning at start (the server logs them).
    pub fn warnings(&self) -> Vec<String> {
        validate::warnings(self)
    }

    /// The database to connect to: `database.url`, or an SQLite file `causerie.db` under
    /// `server.data_dir`, created if missing.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => {
                let file = self.server.data_dir.join("causerie.db");
                format!("sqlite://{}?mode=rwc", sqlite_path_escape(&file))
            }
        }
    }

    /// The admin socket path: `admin.socket`, or `admin.sock` under `server.data_dir`.
    pub fn admin_socket(&self) -> PathBuf {
        match &self.admin.socket {
            Some(path) => path.clone(),
            None => self.server.data_dir.join("admin.sock"),
        }
    }
}

/// The SQLite URL's path is percent-decoded by the driver, and `?` would start the query
/// string, so those characters (and `%` itself) are escaped.
fn sqlite_path_escape(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    #[test]
    fn default_config_validates() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn empty_file_is_the_default_config() {
        assert_eq!(
            Config::from_toml_str("", "causerie.toml").ok(),
            Some(Config::default())
        );
    }

    #[test]
    fn database_url_defaults_to_sqlite_under_data_dir() {
        let mut config = Config::default();
        assert_eq!(config.database_url(), "sqlite://data/causerie.db?mode=rwc");
        config.server.data_dir = PathBuf::from("/var/lib/cause?rie#1%");
        assert_eq!(
            config.database_url(),
            "sqlite:///var/lib/cause%3Frie%231%25/causerie.db?mode=rwc"
        );
        config.database.url = Some("postgres://db.example/causerie".to_owned());
        assert_eq!(config.database_url(), "postgres://db.example/causerie");
    }

    #[test]
    fn admin_socket_defaults_to_data_dir() {
        let mut config = Config::default();
        assert_eq!(config.admin_socket(), PathBuf::from("data/admin.sock"));
        config.admin.socket = Some(PathBuf::from("/run/causerie/admin.sock"));
        assert_eq!(
            config.admin_socket(),
            PathBuf::from("/run/causerie/admin.sock")
        );
    }

    #[test]
    fn load_reports_a_missing_file_with_its_path() {
        let dir = tempdir();
        let dir = dir.path();
        let path = dir.join("absent.toml");
        let err = Config::load(&path).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn load_reads_and_validates_a_file() {
        let dir = tempdir();
        let dir = dir.path();
        let path = dir.join("causerie.toml");
        let write = std::fs::write(&path, "[server]\ndomains = [\"example.com\"]\n");
        assert!(write.is_ok());
        let config = Config::load(&path);
        assert_eq!(
            config.ok().map(|c| c.server.domains),
            Some(vec!["example.com".to_owned()])
        );

        let write = std::fs::write(&path, "[server]\n\ndomains = [\"Example.com\"]\n");
        assert!(write.is_ok());
        let err = Config::load(&path).err().map(|e| e.to_string());
        let expected_prefix = format!("{}:3: server.domains[0]: ", path.display());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with(&expected_prefix)),
            "{err:?}"
        );
    }

    #[test]
    fn load_refuses_non_utf8_with_its_line() {
        let dir = tempdir();
        let dir = dir.path();
        let path = dir.join("causerie.toml");
        assert!(std::fs::write(&path, b"[server]\ndata_dir = \"\xff\"\n").is_ok());
        let err = Config::load(&path).err().map(|e| e.to_string());
        let expected = format!("{}:2: the file is not valid UTF-8", path.display());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with(&expected)),
            "{err:?}"
        );
    }

    #[test]
    fn load_refuses_huge_files() {
        let dir = tempdir();
        let dir = dir.path();
        let path = dir.join("causerie.toml");
        let big = "# padding\n".repeat((MAX_FILE_BYTES / 10 + 1) as usize);
        assert!(std::fs::write(&path, big).is_ok());
        let err = Config::load(&path).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("larger than")),
            "{err:?}"
        );
    }

    #[test]
    fn discover_reads_the_explicit_file_or_falls_back_to_defaults() {
        let dir = tempdir();
        let path = dir.path().join("custom.toml");
        assert!(std::fs::write(&path, "[limits]\nmax_depth = 10\n").is_ok());
        let found = Config::discover(Some(&path)).ok();
        assert_eq!(
            found.as_ref().map(|(c, p)| (c.limits.max_depth, p.clone())),
            Some((10, Some(path.clone())))
        );
        // An explicit file that does not exist is an error, never a silent fallback.
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            Config::discover(Some(&missing)),
            Err(ConfigError::Read { .. })
        ));
        // Tests run in the crate's directory, which has no causerie.toml.
        assert!(!Path::new(DEFAULT_PATH).exists());
        assert_eq!(Config::discover(None).ok(), Some((Config::default(), None)));
    }

    #[test]
    fn warnings_name_risky_settings() {
        assert_eq!(Config::default().warnings(), Vec::<String>::new());
        let mut config = Config::default();
        config.server.domains = vec!["example.com".to_owned(), "localhost".to_owned()];
        config.auth.allow_plain = true;
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("auth.allow_plain"));
        assert!(warnings[1].starts_with("no certificate for example.com"));
        config.tls.certificates.push(CertificateConfig {
            domain: "example.com".to_owned(),
            cert: PathBuf::from("c.pem"),
            key: PathBuf::from("k.pem"),
        });
        assert_eq!(config.warnings().len(), 1);
    }

    #[test]
    fn documents_larger_than_a_stanza_are_warned_about() {
        let mut config = Config::default();
        config.limits.max_stanza_bytes = 100_000;
        config.im.max_private_bytes = 300_000;
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("im.max_private_bytes (300000)"));
    }
}
