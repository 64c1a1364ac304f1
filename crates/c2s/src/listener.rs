//! Accepting client connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use causerie_core::Core;
use causerie_sasl::Mechanism;
use causerie_storage::UserStore;
use causerie_stream::TlsSetup;
use causerie_xml::Limits;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::limiter::AuthLimiter;

/// What the client listeners need from the configuration.
#[derive(Debug, Clone)]
pub struct C2sSettings {
    /// Refuse to authenticate before TLS (RFC 6120 §5.3.1: `<required/>` in the STARTTLS feature).
    pub require_encryption: bool,
    /// SCRAM mechanisms offered, in order of preference.
    pub mechanisms: Vec<Mechanism>,
    /// Offer PLAIN (over TLS only).
    pub allow_plain: bool,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_queue_len: usize,
    pub limits: Limits,
    pub max_auth_attempts_per_stream: u32,
    /// PBKDF2 iterations of new credentials; unknown accounts are answered with the same count.
    pub scram_iterations: u32,
}

impl Default for C2sSettings {
    fn default() -> Self {
        use causerie_sasl::Hash;
        let scram = |hash, plus| Mechanism::Scram { hash, plus };
        C2sSettings {
            require_encryption: true,
            mechanisms: vec![
                scram(Hash::Sha512, true),
                scram(Hash::Sha256, true),
                scram(Hash::Sha1, true),
                scram(Hash::Sha512, false),
                scram(Hash::Sha256, false),
                scram(Hash::Sha1, false),
            ],
            allow_plain: false,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            send_queue_len: 1024,
            limits: Limits::default(),
            max_auth_attempts_per_stream: 3,
            scram_iterations: 4096,
        }
    }
}

/// Everything the client connections share.
pub struct C2sServer {
    pub core: Arc<Core>,
    pub users: Arc<dyn UserStore>,
    pub tls: TlsSetup,
    pub settings: C2sSettings,
    pub limiter: AuthLimiter,
    /// Makes the fake salts of unknown accounts stable across connections (no user enumeration).
    pub sasl_secret: [u8; 32],
    pub shutdown: watch::Receiver<bool>,
    next_session: AtomicU64,
    connections: AtomicUsize,
}

impl C2sServer {
    pub fn new(
        core: Arc<Core>,
        users: Arc<dyn UserStore>,
        tls: TlsSetup,
        settings: C2sSettings,
        limiter: AuthLimiter,
        sasl_secret: [u8; 32],
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(C2sServer {
            core,
            users,
            tls,
            settings,
            limiter,
            sasl_secret,
            shutdown,
            next_session: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
        })
    }

    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Open client connections, negotiated or not.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The domain a stream names when it has not said one yet.
    pub(crate) fn default_domain(&self) -> String {
        self.core.hosts().next().unwrap_or("localhost").to_owned()
    }
}

/// Accepts connections until shutdown. `direct_tls` selects XEP-0368 (TLS before any XML).
pub async fn serve(server: Arc<C2sServer>, listener: TcpListener, direct_tls: bool) {
    let mut shutdown = server.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let server = server.clone();
                    server.connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        crate::negotiate::run_connection(server.clone(), tcp, peer, direct_tls).await;
                        server.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}
