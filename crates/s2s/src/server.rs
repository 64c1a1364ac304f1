//! The federation service: shared state, the pool of outgoing streams, and the route the core
//! calls for every stanza to a domain this server does not host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use causerie_core::{Core, OutStanza, RemoteRoute};
use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond};
use causerie_tls::CertStore;
use causerie_tls::s2s::PeerTrust;
use causerie_xml::{Element, Limits};
use tokio::sync::{mpsc, watch};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::policy::{Decision, FederationPolicy};
use crate::resolve::Resolve;

/// Tunables of federation, from the `[s2s]` configuration section.
#[derive(Debug, Clone)]
pub struct S2sSettings {
    /// Time to set up an outgoing stream: DNS, TCP, TLS and authentication together.
    pub connect_timeout: Duration,
    /// An incoming stream must authenticate a domain within this.
    pub handshake_timeout: Duration,
    /// A stream without traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Stanzas held per remote domain while its stream is being set up.
    pub queue_len: usize,
    /// Use and accept server dialback (XEP-0220).
    pub dialback: bool,
    /// Refuse peers whose certificate does not validate, even with dialback.
    pub require_valid_certificates: bool,
    /// Offer and use bidirectional streams (XEP-0288).
    pub bidi: bool,
    pub limits: Limits,
    pub tls13_only: bool,
}

impl Default for S2sSettings {
    fn default() -> Self {
        S2sSettings {
            connect_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            queue_len: 1000,
            dialback: true,
            require_valid_certificates: false,
            bidi: true,
            limits: Limits::default(),
            tls13_only: false,
        }
    }
}

/// Which way a stream was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// How a remote domain proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// SASL EXTERNAL with a certificate valid for the domain (RFC 6120 §6, XEP-0178).
    SaslExternal,
    /// Server dialback (XEP-0220), verified with the authoritative server.
    Dialback,
    /// Dialback answered at once because the TLS certificate already proves the domain (XEP-0344).
    DialbackCertificate,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::SaslExternal => "sasl-external",
            AuthMethod::Dialback => "dialback",
            AuthMethod::DialbackCertificate => "dialback-certificate",
        }
    }
}

/// One accepted or refused stream, for the audit log.
#[derive(Debug, Clone)]
pub struct StreamAudit {
    pub direction: Direction,
    pub local: String,
    pub remote: String,
    /// `Ok(method)` when the remote domain was authenticated, `Err(reason)` when refused.
    pub outcome: Result<AuthMethod, String>,
    pub peer: Option<SocketAddr>,
}

/// Where stream audit records go (the audit store, in the server).
pub trait AuditSink: Send + Sync {
    fn record(&self, event: StreamAudit);
}

/// Discards audit records (tests that do not look at them).
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _event: StreamAudit) {}
}

/// A stream that carries our stanzas to one remote domain.
pub(crate) struct Link {
    pub(crate) tx: mpsc::Sender<Arc<OutStanza>>,
    pub(crate) generation: u64,
}

/// A live authenticated stream, as listed by [`S2s::streams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub direction: Direction,
    pub local: String,
    pub remote: String,
    pub method: &'static str,
    pub bidi: bool,
    pub peer: SocketAddr,
}

/// Everything federation shares: the core, TLS, trust, DNS, the policy and the pool.
pub struct S2s {
    pub(crate) core: Arc<Core>,
    pub(crate) settings: S2sSettings,
    /// The secret dialback keys are derived from (XEP-0185).
    pub(crate) dialback_secret: [u8; 32],
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connectors: HashMap<String, TlsConnector>,
    pub(crate) trust: PeerTrust,
    resolver: RwLock<Arc<dyn Resolve>>,
    policy: RwLock<Arc<FederationPolicy>>,
    pool: Mutex<HashMap<(String, String), Link>>,
    live: Mutex<HashMap<u64, StreamInfo>>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) shutdown: watch::Receiver<bool>,
    next_id: AtomicU64,
    connections: AtomicUsize,
}

/// What [`S2s::new`] needs besides the core.
pub struct S2sParts {
    pub settings: S2sSettings,
    pub certs: Arc<CertStore>,
    pub trust: PeerTrust,
    pub resolver: Arc<dyn Resolve>,
    pub policy: FederationPolicy,
    pub audit: Arc<dyn AuditSink>,
    /// The server secret; the dialback secret is derived from it.
    pub server_secret: [u8; 32],
    pub shutdown: watch::Receiver<bool>,
}

impl S2s {
    pub fn new(core: Arc<Core>, parts: S2sParts) -> Result<Arc<S2s>, causerie_tls::TlsError> {
        let server_cfg =
            causerie_tls::s2s::s2s_server_config(parts.certs.clone(), parts.settings.tls13_only)?;
        let mut connectors = HashMap::new();
        for host in core.hosts() {
            let cfg = causerie_tls::s2s::s2s_client_config(
                &parts.certs,
                host,
                parts.settings.tls13_only,
            )?;
            connectors.insert(host.to_owned(), TlsConnector::from(cfg));
        }
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"causerie dialback secret\0");
        h.update(parts.server_secret);
        Ok(Arc::new(S2s {
            core,
            settings: parts.settings,
            dialback_secret: h.finalize().into(),
            acceptor: TlsAcceptor::from(server_cfg),
            connectors,
            trust: parts.trust,
            resolver: RwLock::new(parts.resolver),
            policy: RwLock::new(Arc::new(parts.policy)),
            pool: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            audit: parts.audit,
            shutdown: parts.shutdown,
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
        }))
    }

    /// Makes this the core's route to remote domains.
    pub fn install(self: &Arc<Self>) {
        self.core.set_remote_route(Arc::new(Route(self.clone())));
    }

    /// How remote domains are found (DNS, or a table in tests).
    pub fn resolver(&self) -> Arc<dyn Resolve> {
        self.resolver
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the resolver; streams already open are not affected.
    pub fn set_resolver(&self, resolver: Arc<dyn Resolve>) {
        *self.resolver.write().unwrap_or_else(|e| e.into_inner()) = resolver;
    }

    pub fn policy(&self) -> Arc<FederationPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the policy. Streams with domains that are no longer allowed are closed.
    pub fn set_policy(&self, policy: FederationPolicy) {
        let policy = Arc::new(policy);
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy.clone();
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.retain(|(_, remote), _| policy.decide(remote).is_allowed());
    }

    /// Open server-to-server connections, authenticated or not.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Authenticated streams now open.
    pub fn streams(&self) -> Vec<StreamInfo> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<StreamInfo> = live.values().cloned().collect();
        v.sort_by(|a, b| (&a.remote, a.direction.as_str()).cmp(&(&b.remote, b.direction.as_str())));
        v
    }

    /// Stanzas waiting in each outbound queue (one per local and remote domain pair, kept
    /// while a stream is set up and while it runs), as `(local, remote, queued)`, by domain.
    pub fn queue_depths(&self) -> Vec<(String, String, usize)> {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, String, usize)> = pool
            .iter()
            .map(|((local, remote), link)| {
                let queued = link.tx.max_capacity().saturating_sub(link.tx.capacity());
                (local.clone(), remote.clone(), queued)
            })
            .collect();
        v.sort();
        v
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn connection_opened(&self) -> ConnectionGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self)
    }

    pub(crate) fn stream_up(&self, id: u64, info: StreamInfo) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info);
    }

    pub(crate) fn stream_down(&self, id: u64) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn audit_stream(
        &self,
        direction: Direction,
        local: &str,
        remote: &str,
        outcome: Result<AuthMethod, String>,
        peer: Option<SocketAddr>,
    ) {
        crate::metrics::stream_authentication(direction, outcome.is_ok());
        match &outcome {
            Ok(m) => {
                tracing::info!(direction = direction.as_str(), local, remote, method = m.as_str(), peer = ?peer, "s2s stream authenticated")
            }
            Err(why) => {
                tracing::warn!(direction = direction.as_str(), local, remote, reason = %why, peer = ?peer, "s2s stream refused")
            }
        }
        self.audit.record(StreamAudit {
            direction,
            local: local.to_owned(),
            remote: remote.to_owned(),
            outcome,
            peer,
        });
    }

    /// Sends a stanza to a remote domain: through its stream if one is up, else queued while a
    /// stream is set up.
    pub fn send(self: &Arc<Self>, stanza: Element) {
        let Some((local, remote)) = addressing(&stanza) else {
            return;
        };
        if let Decision::Refused(why) = self.policy().decide(&remote) {
            tracing::warn!(from = stanza.attr("from").unwrap_or(""), to = %remote, reason = why, "stanza to a domain federation does not allow");
            self.core.bounce(
                &stanza,
                StanzaError::new(Cond::NotAllowed).with_text(format!("{remote}: {why}")),
            );
            return;
        }
        if !self.connectors.contains_key(&local) {
            return self
                .core
                .bounce(&stanza, StanzaError::new(Cond::RemoteServerNotFound));
        }
        let out = OutStanza::new(stanza);
        let key = (local, remote);
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = pool.get(&key) {
            match link.tx.try_send(out) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(out)) => {
                    drop(pool);
                    return self.core.bounce(
                        &out.element,
                        StanzaError::new(Cond::ResourceConstraint)
                            .with_text("too many stanzas waiting for this domain"),
                    );
                }
                Err(mpsc::error::TrySendError::Closed(o)) => {
                    pool.remove(&key);
                    return self.open_link(pool, key, o);
                }
            }
        }
        self.open_link(pool, key, out);
    }

    fn open_link(
        self: &Arc<Self>,
        mut pool: std::sync::MutexGuard<'_, HashMap<(String, String), Link>>,
        key: (String, String),
        first: Arc<OutStanza>,
    ) {
        let (tx, rx) = mpsc::channel(self.settings.queue_len.max(1));
        let _ = tx.try_send(first);
        let generation = self.next_id();
        pool.insert(key.clone(), Link { tx, generation });
        drop(pool);
        let s2s = self.clone();
        tokio::spawn(async move {
            crate::outbound::run(s2s, key.0, key.1, rx, generation).await;
        });
    }

    /// Makes an authenticated incoming bidirectional stream (XEP-0288) the route for its pair,
    /// unless a stream is already there. Returns the receiver to serve, if it became the route.
    pub(crate) fn adopt_bidi(
        &self,
        local: &str,
        remote: &str,
    ) -> Option<(mpsc::Receiver<Arc<OutStanza>>, u64)> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let key = (local.to_owned(), remote.to_owned());
        if pool.get(&key).is_some_and(|l| !l.tx.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::channel(self.settings.queue_len.max(1));
        let generation = self.next_id();
        pool.insert(key, Link { tx, generation });
        Some((rx, generation))
    }

    /// Removes a link from the pool if it is still the one registered, then sends on what was
    /// still queued for it (through a new stream, or bounced).
    pub(crate) fn retire_link(
        self: &Arc<Self>,
        local: &str,
        remote: &str,
        generation: u64,
        rx: &mut mpsc::Receiver<Arc<OutStanza>>,
        failure: Option<StanzaError>,
    ) {
        {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let key = (local.to_owned(), remote.to_owned());
            if pool.get(&key).is_some_and(|l| l.generation == generation) {
                pool.remove(&key);
            }
        }
        rx.close();
        while let Ok(out) = rx.try_recv() {
            let stanza = Arc::try_unwrap(out)
                .map(|o| o.element)
                .unwrap_or_else(|o| o.element.clone());
            match &failure {
                Some(err) => self.core.bounce(&stanza, err.clone()),
                None => self.send(stanza),
            }
        }
    }

    /// Closes every stream and waits (at most `grace`) for them to finish.
    pub async fn wait_closed(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) struct ConnectionGuard<'a>(&'a S2s);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The (local, remote) domains of a stanza leaving for another server.
fn addressing(stanza: &Element) -> Option<(String, String)> {
    let to = causerie_stanza::to_jid(stanza).ok().flatten()?;
    let from = causerie_stanza::from_jid(stanza).ok().flatten()?;
    Some((from.domain().to_owned(), to.domain().to_owned()))
}

/// The core's [`RemoteRoute`], backed by federation.
struct Route(Arc<S2s>);

impl RemoteRoute for Route {
    fn route(&self, _core: &Arc<Core>, stanza: Element) {
        self.0.send(stanza);
    }

    fn allows(&self, domain: &str) -> bool {
        self.0.policy().decide(domain).is_allowed()
    }
}
