//! Wiring of the `causerie` server: configuration to running listeners, and back down on shutdown.
//!
//! Owns: the data folder (created 0700), the server secret (0600), the certificate store (configured
//! certificates, or a self-signed one per hosted domain kept under `data/tls/`), the storage handle,
//! the core with its modules, the client listeners, and graceful shutdown. Holds no protocol logic.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use causerie_c2s::{AuthLimiter, C2sServer, C2sSettings};
use causerie_config::Config;
use causerie_core::{Core, CoreBuilder};
use causerie_sasl::Mechanism;
use causerie_storage::{Storage, StorageOptions};
use causerie_stream::TlsSetup;
use causerie_tls::{ALPN_XMPP_CLIENT, CertStore, TlsAcceptor};
use causerie_xml::Limits;

mod admin;
pub mod federation;
pub mod metrics;
pub mod portable;
pub mod users;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Storage(#[from] causerie_storage::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] causerie_tls::TlsError),
    #[error(
        "no certificate for hosted domain {0}: configure one under [[tls.certificates]] or set tls.self_signed_for_missing = true"
    )]
    MissingCertificate(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server secret {path}: {reason}")]
    Secret { path: String, reason: String },
    #[error("federation: {0}")]
    Federation(String),
    #[error(
        "the account {0} exists, but its name is the policy address (policy.localpart): remove or rename the account, or choose another policy.localpart"
    )]
    PolicyAddressTaken(String),
    #[error("compliance rules {file}:\n  {problems}")]
    Rules { file: String, problems: String },
    #[error("compliance.seal_key: {0}")]
    SealKey(String),
    #[error("{0}")]
    Admin(#[from] causerie_http::HttpError),
    #[error("compliance.alert_webhook: {0}")]
    Webhook(String),
    #[error("{0}")]
    Reload(String),
}

/// A running server.
pub struct Running {
    pub core: Arc<Core>,
    pub storage: Storage,
    pub c2s: Arc<C2sServer>,
    /// Bound addresses of the STARTTLS listeners, in configuration order.
    pub starttls_addrs: Vec<SocketAddr>,
    /// Bound addresses of the direct TLS listeners.
    pub direct_tls_addrs: Vec<SocketAddr>,
    /// Federation, and the bound addresses of its STARTTLS and direct TLS listeners.
    pub s2s: Arc<causerie_s2s::S2s>,
    pub s2s_addrs: Vec<SocketAddr>,
    pub s2s_direct_tls_addrs: Vec<SocketAddr>,
    /// The admin API's Unix socket, and its TCP address when `admin.listen` is set.
    pub admin_socket: std::path::PathBuf,
    pub admin_tcp_addr: Option<SocketAddr>,
    admin_api: causerie_http::AdminApi,
    /// Bound addresses of the public HTTP listener (`/metrics`, `/health`); empty without one.
    pub http_addrs: Vec<SocketAddr>,
    public_http: Option<causerie_http::PublicServer>,
    /// The compliance engine (its rules, and the alert webhook's counters).
    pub compliance: Arc<causerie_policy::compliance::Compliance>,
    /// The context of administrative operations. The XEP-0133 commands hold it weakly (it
    /// holds the core, which holds them); this keeps it until the server is stopped.
    _admin_context: Arc<causerie_admin::Context>,
    shutdown_tx: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl Running {
    /// Stops accepting, closes every stream with `<system-shutdown/>` after what is queued for it, waits
    /// for the connections to finish (at most the grace period), then closes the database.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        // Administrative requests in progress finish while the core and the database are
        // still there; no new one is accepted.
        self.admin_api.shutdown(self.grace).await;
        if let Some(public) = self.public_http {
            public.shutdown(self.grace).await;
        }
        let _ = self.shutdown_tx.send(true);
        for l in &self.listeners {
            l.abort();
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        while self.c2s.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.s2s
            .wait_closed(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        if self.c2s.connections() > 0 {
            tracing::warn!(
                open = self.c2s.connections(),
                "grace period over, dropping remaining connections"
            );
        }
        // Queued roster and presence work (subscription changes of the last stanzas) is written
        // before the database closes.
        if tokio::time::timeout(self.grace, self.core.drain())
            .await
            .is_err()
        {
            tracing::warn!("modules did not finish their queued work within the grace period");
        }
        self.storage.close().await;
        tracing::info!("stopped");
    }
}

/// Starts everything the configuration describes.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let data_dir = &config.server.data_dir;
    create_private_dir(data_dir)?;
    // First: a second server on the same data folder stops here, before it touches anything.
    let admin_bound =
        causerie_http::admin::bind(&causerie_http::AdminOptions::from_config(config)).await?;
    // The metrics recorder goes in before anything is counted (the database's statements too).
    let public_bound = metrics::bind(config).await?;
    let secret = load_or_create_secret(&data_dir.join("server.secret"))?;
    // The key that signs usage-policy acceptance receipts; `causeriectl policy key` shows it.
    let receipt_key =
        causerie_policy::keys::load_or_create(&data_dir.join("policy.key")).map_err(|e| {
            StartError::Secret {
                path: data_dir.join("policy.key").display().to_string(),
                reason: e.to_string(),
            }
        })?;
    tracing::info!(fingerprint = %receipt_key.fingerprint(), "policy receipt key ready");

    let certs = Arc::new(load_certificates(config)?);
    let tls_cfg = causerie_tls::server_config(
        certs.clone(),
        config.tls.min_version == "1.3",
        &[ALPN_XMPP_CLIENT],
    )?;
    let tls = TlsSetup {
        acceptor: TlsAcceptor::from(tls_cfg),
        certs: certs.clone(),
    };

    let url = config.database_url();
    let storage = Storage::open(
        &url,
        &StorageOptions {
            max_connections: config.database.max_connections,
            connect_timeout_secs: config.database.connect_timeout_secs,
        },
    )
    .await?;
    tracing::info!(backend = storage.backend(), "storage ready");

    // The policy address is a part of the server; an account of that name would be shadowed.
    for domain in &config.server.domains {
        if storage
            .users
            .user_exists(&config.policy.localpart, domain)
            .await?
        {
            return Err(StartError::PolicyAddressTaken(format!(
                "{}@{domain}",
                config.policy.localpart
            )));
        }
    }

    let mut builder = CoreBuilder::new(config.server.domains.iter().cloned())
        .max_sessions_per_user(config.limits.max_sessions_per_user);
    causerie_modules::register_defaults(builder.modules(), &storage);
    causerie_modules::register_im(builder.modules(), &storage, &im_options(config));
    builder
        .modules()
        .add_module(causerie_roster::Roster::with_config(
            storage.clone(),
            causerie_roster::RosterConfig {
                max_items: config.im.max_roster_items,
                max_directed_per_session: config.im.max_directed_presences,
            },
        ));
    builder
        .modules()
        .add_module(Arc::new(causerie_policy::PolicyGate::new(
            &storage,
            receipt_key.clone(),
            gate_options(config),
        )));
    let compliance = causerie_policy::compliance::Compliance::new(
        &storage,
        receipt_key,
        compliance_options(config)?,
    )
    .map_err(|problems| StartError::Rules {
        file: config.rules_file().display().to_string(),
        problems: problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  "),
    })?;
    let compliance = Arc::new(compliance);
    builder.modules().add_module(compliance.clone());
    // XEP-0133: the administrators' commands, attached to the admin API's context below.
    let service_admin = Arc::new(causerie_admin::adhoc::ServiceAdmin::new(admin_accounts(
        config,
    )));
    builder.modules().add_module(service_admin.clone());
    let core = builder.build();
    // What modules keep in memory from the database (the shared roster groups) is read before
    // the first session.
    core.reload_all().await.map_err(StartError::Reload)?;
    // Released quarantined messages are delivered, rejected ones answered, by this server.
    compliance.start_reviews(&core);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let settings = c2s_settings(config);
    let limiter = AuthLimiter::new(
        config.auth.max_failures_per_account,
        config.auth.max_failures_per_ip,
        Duration::from_secs(config.auth.failure_window_secs),
    );
    let s2s =
        federation::build(config, &core, certs, &storage, secret, shutdown_rx.clone()).await?;
    let c2s = C2sServer::new(
        core.clone(),
        storage.users.clone(),
        tls,
        settings,
        limiter,
        secret,
        shutdown_rx,
    );

    let mut listeners = Vec::new();
    // Aborted at shutdown with the listeners: a purge cut short is done again the next time.
    if config.compliance.retention_days > 0 {
        listeners.push(tokio::spawn(purge_evidence_daily(
            storage.clone(),
            config.compliance.retention_days,
        )));
    }
    let mut starttls_addrs = Vec::new();
    for (listener, _) in bind_all(
        &config.c2s.starttls_listen,
        "client STARTTLS",
        &mut starttls_addrs,
    )
    .await?
    {
        listeners.push(tokio::spawn(causerie_c2s::serve(
            c2s.clone(),
            listener,
            false,
        )));
    }
    let mut direct_tls_addrs = Vec::new();
    for (listener, _) in bind_all(
        &config.c2s.direct_tls_listen,
        "client direct TLS",
        &mut direct_tls_addrs,
    )
    .await?
    {
        listeners.push(tokio::spawn(causerie_c2s::serve(
            c2s.clone(),
            listener,
            true,
        )));
    }
    let mut s2s_addrs = Vec::new();
    for (listener, _) in bind_all(
        &config.s2s.listen,
        "server-to-server STARTTLS",
        &mut s2s_addrs,
    )
    .await?
    {
        listeners.push(tokio::spawn(causerie_s2s::serve(
            s2s.clone(),
            listener,
            false,
        )));
    }
    let mut s2s_direct_tls_addrs = Vec::new();
    for (listener, _) in bind_all(
        &config.s2s.direct_tls_listen,
        "server-to-server direct TLS",
        &mut s2s_direct_tls_addrs,
    )
    .await?
    {
        listeners.push(tokio::spawn(causerie_s2s::serve(
            s2s.clone(),
            listener,
            true,
        )));
    }
    let (admin_api, sampler, admin_context) = admin::serve(
        admin_bound,
        config,
        &storage,
        &core,
        (&c2s, &s2s),
        &service_admin,
    );
    listeners.push(sampler);
    let public_http = public_bound.map(|bound| {
        let live = metrics::Live {
            core: core.clone(),
            c2s: c2s.clone(),
            s2s: s2s.clone(),
            compliance: compliance.clone(),
        };
        metrics::serve(bound, &storage, live)
    });
    tracing::info!(domains = ?config.server.domains, mode = %config.federation.mode, "causerie started");
    Ok(Running {
        core,
        storage,
        c2s,
        starttls_addrs,
        direct_tls_addrs,
        s2s,
        s2s_addrs,
        s2s_direct_tls_addrs,
        admin_socket: admin_api.socket_path().to_path_buf(),
        admin_tcp_addr: admin_api.tcp_addr(),
        admin_api,
        http_addrs: metrics::addrs(public_http.as_ref()),
        public_http,
        compliance,
        _admin_context: admin_context,
        shutdown_tx,
        listeners,
        grace: Duration::from_secs(config.server.shutdown_grace_secs),
    })
}

/// Binds every address of one listener kind; the bound addresses are appended to `bound`.
async fn bind_all(
    addrs: &[String],
    what: &str,
    bound: &mut Vec<SocketAddr>,
) -> Result<Vec<(TcpListener, SocketAddr)>, StartError> {
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let err = |source| StartError::Listen {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(addr.as_str()).await.map_err(err)?;
        let local = listener.local_addr().map_err(err)?;
        tracing::info!(addr = %local, "{what} listener ready");
        bound.push(local);
        out.push((listener, local));
    }
    Ok(out)
}

fn im_options(config: &Config) -> causerie_modules::ImOptions {
    let im = &config.im;
    causerie_modules::ImOptions {
        offline_quota: im.offline_quota,
        max_vcard_bytes: im.max_vcard_bytes,
        max_private_bytes: im.max_private_bytes,
        max_blocklist_items: im.max_blocklist_items,
        csi_max_held_presences: im.csi_max_held_presences,
        presence_burst: im.presence_burst,
        presence_per_minute: im.presence_per_minute,
        hide_version: im.hide_version,
        version_show_os: im.version_show_os,
        server_ping_interval: (im.server_ping_interval_secs > 0)
            .then(|| Duration::from_secs(im.server_ping_interval_secs)),
    }
}

/// `admin.admins`, checked by the configuration's validation, as bare JIDs.
fn admin_accounts(config: &Config) -> Vec<causerie_jid::BareJid> {
    config
        .admin
        .admins
        .iter()
        .filter_map(|a| causerie_jid::BareJid::parse(a).ok())
        .collect()
}

fn gate_options(config: &Config) -> causerie_policy::GateOptions {
    let p = &config.policy;
    causerie_policy::GateOptions {
        enabled: p.enabled,
        mode: if p.mode == "every-session" {
            causerie_policy::Mode::EverySession
        } else {
            causerie_policy::Mode::Once
        },
        timeout: Duration::from_secs(p.timeout_secs),
        localpart: p.localpart.clone(),
        messages_per_minute: p.messages_per_minute,
    }
}

fn compliance_options(
    config: &Config,
) -> Result<causerie_policy::compliance::ComplianceOptions, StartError> {
    let c = &config.compliance;
    let seal_to = c
        .seal_key
        .as_deref()
        .map(causerie_policy::compliance::seal::OfficerPublic::parse)
        .transpose()
        .map_err(|e| StartError::SealKey(e.to_string()))?;
    if let Some(key) = &seal_to {
        tracing::info!(fingerprint = %key.fingerprint(), "evidence is sealed to the compliance officer's key");
    }
    Ok(causerie_policy::compliance::ComplianceOptions {
        enabled: c.enabled,
        rules_file: config.rules_file(),
        reload_interval: Duration::from_secs(c.reload_secs),
        officers: c
            .officers
            .iter()
            .map(|o| {
                causerie_jid::BareJid::parse(o)
                    .map(|j| j.to_string())
                    .unwrap_or_else(|_| o.clone())
            })
            .collect(),
        project_names: c.project_names.clone(),
        context_messages: c.context_messages,
        policy_localpart: config.policy.localpart.clone(),
        seal_to,
        alert_webhook: c
            .alert_webhook
            .as_deref()
            .map(|url| webhook_options(c, url))
            .transpose()?,
    })
}

/// The alert webhook: the URL checked again, the trust anchors of `https` and the token read.
fn webhook_options(
    c: &causerie_config::ComplianceConfig,
    url: &str,
) -> Result<causerie_policy::compliance::webhook::WebhookOptions, StartError> {
    use causerie_policy::compliance::webhook::{BearerToken, Endpoint, WebhookOptions};
    let url = causerie_config::HttpUrl::parse(url).map_err(StartError::Webhook)?;
    let tls = if url.https {
        let cfg = causerie_tls::https::client_config_with(c.alert_webhook_ca_file.as_deref())
            .map_err(|e| StartError::Webhook(format!("trust anchors: {e}")))?;
        Some(cfg)
    } else {
        None
    };
    let token = match (&c.alert_webhook_token_file, &c.alert_webhook_token_env) {
        (Some(path), _) => Some(BearerToken::from_file(path)),
        (None, Some(name)) => Some(BearerToken::from_env(name)),
        (None, None) => None,
    }
    .transpose()
    .map_err(|e| StartError::Webhook(format!("token: {e}")))?;
    Ok(WebhookOptions {
        endpoint: Endpoint {
            host: url.host.clone(),
            port: url.port,
            authority: url.authority(),
            target: url.target.clone(),
            tls,
        },
        token,
        timeout: Duration::from_secs(c.alert_webhook_timeout_secs),
        retries: c.alert_webhook_retries,
        first_retry: Duration::from_secs(1),
        queue: c.alert_webhook_queue,
        include_text: c.alert_webhook_include_text,
    })
}

/// How often evidence past `compliance.retention_days` is purged.
const RETENTION_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// Retention: at start and then daily, empties the payloads of evidence older than `days` days
/// (the store keeps those on legal hold or pending review), and records each run in the audit
/// log, failures too.
async fn purge_evidence_daily(storage: Storage, days: u32) {
    let mut every = tokio::time::interval(RETENTION_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        purge_evidence(&storage, days).await;
    }
}

async fn purge_evidence(storage: &Storage, days: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let before = now.saturating_sub(i64::from(days) * 86_400);
    let (outcome, detail) = match storage.evidence.purge(before, now).await {
        Ok(n) => {
            tracing::info!(
                purged = n,
                retention_days = days,
                "evidence retention applied"
            );
            (
                "ok",
                format!(
                    "{n} evidence payload(s) created before {} purged (retention {days} days)",
                    causerie_policy::rfc3339::format(before)
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot purge expired evidence; trying again tomorrow");
            ("failed", format!("retention {days} days: {e}"))
        }
    };
    let event = causerie_storage::NewAuditEvent {
        at: now,
        actor: "compliance".to_owned(),
        action: "compliance.evidence.purge".to_owned(),
        subject: String::new(),
        outcome: outcome.to_owned(),
        detail,
        remote_addr: None,
    };
    if let Err(e) = storage.audit.append(&event).await {
        tracing::warn!(error = %e, "cannot write an audit record");
    }
}

fn c2s_settings(config: &Config) -> C2sSettings {
    let mechanisms: Vec<Mechanism> = config
        .auth
        .mechanisms
        .iter()
        .filter_map(|m| Mechanism::parse(m))
        .collect();
    C2sSettings {
        require_encryption: config.c2s.require_encryption,
        mechanisms,
        allow_plain: config.auth.allow_plain,
        handshake_timeout: Duration::from_secs(config.c2s.handshake_timeout_secs),
        idle_timeout: Duration::from_secs(config.c2s.idle_timeout_secs),
        send_queue_len: config.c2s.send_queue_len,
        limits: Limits {
            max_stanza_bytes: config.limits.max_stanza_bytes,
            max_depth: config.limits.max_depth,
            max_attributes: config.limits.max_attributes,
            ..Limits::default()
        },
        max_auth_attempts_per_stream: 3,
        scram_iterations: config.auth.scram_iterations,
    }
}

fn load_certificates(config: &Config) -> Result<CertStore, StartError> {
    let mut store = CertStore::new();
    for c in &config.tls.certificates {
        store.load(&c.domain, &c.cert, &c.key)?;
        tracing::info!(domain = %c.domain, cert = %c.cert.display(), "certificate loaded");
    }
    for domain in &config.server.domains {
        let covered = store.contains(domain)
            || domain
                .split_once('.')
                .is_some_and(|(_, parent)| store.contains(&format!("*.{parent}")));
        if covered {
            continue;
        }
        if !config.tls.self_signed_for_missing {
            return Err(StartError::MissingCertificate(domain.clone()));
        }
        let (cert, key, created) =
            causerie_tls::ensure_self_signed(&config.server.data_dir, domain)?;
        if created {
            tracing::warn!(domain = %domain, cert = %cert.display(), "generated a self-signed certificate; clients will not trust it unless told to");
        }
        store.load(domain, &cert, &key)?;
    }
    Ok(store)
}

fn create_private_dir(path: &Path) -> Result<(), StartError> {
    let err = |source| StartError::DataDir {
        path: path.display().to_string(),
        source,
    };
    if !path.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(path).map_err(err)?;
    }
    Ok(())
}

/// The 32-byte server secret (fake SASL salts, and the dialback secret derived from it), created once
/// with mode 0600.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], StartError> {
    let err = |reason: String| StartError::Secret {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .as_slice()
            .try_into()
            .map_err(|_| err(format!("expected 32 bytes, found {}", bytes.len()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut s = [0u8; 32];
            getrandom::fill(&mut s).map_err(|e| err(e.to_string()))?;
            causerie_tls::write_private(path, &s).map_err(|e| err(e.to_string()))?;
            Ok(s)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Sets up logging from the `[log]` section (RUST_LOG overrides the level).
pub fn init_logging(level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // The migration framework and the SQL driver log every step at info; their warnings are enough
    // unless the configured level names them.
    let directives = if level.contains("sea_orm") || level.contains("sqlx") {
        level.to_owned()
    } else {
        format!("{level},sea_orm_migration=warn,sqlx=warn")
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&directives))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
