//! The public listener (`[http]`): Prometheus metrics and a health check, in plain HTTP on the
//! addresses of `http.listen` (loopback by default).
//!
//! - `GET /metrics`: every metric in the Prometheus text exposition format, version 0.0.4
//!   (names and labels in docs/metrics.md). Gauges read from the server's state (sessions,
//!   streams, queues) are sampled by the server's callback just before rendering; counters and
//!   histograms are recorded where things happen, through the `metrics` facade.
//! - `GET /health`: `200` with `{"status":"ok","uptime":SECONDS,"version":V,"database":"ok"}`
//!   when the database answers within [`DATABASE_TIMEOUT`], else `503` with `"status":"error"`
//!   and `"database":"error"`.
//!
//! Neither needs authentication and neither shows a JID, an address or a message: whoever
//! reaches the listener sees only counts. The recorder behind `/metrics` is process-wide and
//! installed once ([`install_recorder`]); without a public listener none is installed and the
//! facade's calls do nothing.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use causerie_config::Config;
use causerie_storage::Storage;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::HttpError;
use crate::serve::{self, ConnectionLimit};

/// How long `/health` waits for the database before it reports it as failing.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often histogram samples are folded into their buckets when nobody scrapes; a scrape
/// does it too. Between two, the samples wait in memory.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Bucket upper bounds, in seconds, of every histogram whose name ends in `_seconds`: from a
/// fraction of a millisecond (an SQLite read from the page cache) to seconds (a pool that
/// waits, a PostgreSQL server far away).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The content type of the text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The public listener's settings, from `[http]`.
#[derive(Debug, Clone)]
pub struct PublicOptions {
    pub listen: Vec<String>,
    pub max_connections: usize,
}

impl PublicOptions {
    pub fn from_config(config: &Config) -> Self {
        PublicOptions {
            listen: config.http.listen.clone(),
            max_connections: config.http.max_connections,
        }
    }
}

/// Installs the process's metrics recorder the first time, and returns its handle. A process
/// has one recorder for its whole life: later calls (a second server in the same test process)
/// get the same handle. Also starts the thread that folds histogram samples into buckets every
/// [`UPKEEP_INTERVAL`], so memory stays bounded when nobody scrapes.
pub fn install_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // The bounds are a non-empty constant: the call fails only for an empty list.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "latency buckets refused; histograms are summaries");
                    PrometheusBuilder::new()
                });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics shows none of its metrics");
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded at each scrape only");
            }
            handle
        })
        .clone()
}

/// Listeners bound, not yet served (bound early so that a busy port stops the start before
/// anything else is set up).
pub struct BoundPublic {
    listeners: Vec<(TcpListener, SocketAddr)>,
    opts: PublicOptions,
}

/// Binds every address of `http.listen`.
pub async fn bind(opts: &PublicOptions) -> Result<BoundPublic, HttpError> {
    let mut listeners = Vec::with_capacity(opts.listen.len());
    for addr in &opts.listen {
        let err = |source| HttpError::PublicListen {
            addr: addr.clone(),
            source,
        };
        let l = TcpListener::bind(addr.as_str()).await.map_err(err)?;
        let local = l.local_addr().map_err(err)?;
        tracing::info!(addr = %local, "metrics and health listening on HTTP");
        listeners.push((l, local));
    }
    Ok(BoundPublic {
        listeners,
        opts: opts.clone(),
    })
}

/// What the handlers read from the running server.
pub struct PublicContext {
    /// The process's recorder ([`install_recorder`]).
    pub metrics: PrometheusHandle,
    /// Sets the gauges read from the server's state; called before each rendering.
    pub sample: Arc<dyn Fn() + Send + Sync>,
    /// The database `/health` checks.
    pub storage: Storage,
    /// When the server started, for the uptime.
    pub started: Instant,
    /// The server's version, as `/health` and `causerie_build_info` show it.
    pub version: &'static str,
}

impl BoundPublic {
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|(_, a)| *a).collect()
    }

    /// Starts serving.
    pub fn serve(self, ctx: PublicContext) -> PublicServer {
        metrics::gauge!("causerie_build_info", "version" => ctx.version).set(1.0);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let limit = ConnectionLimit::new(self.opts.max_connections);
        let addrs = self.addrs();
        let router = router(Arc::new(ctx));
        let tasks = self
            .listeners
            .into_iter()
            .map(|(l, _)| {
                tokio::spawn(serve::tcp(
                    "HTTP",
                    l,
                    router.clone(),
                    limit.clone(),
                    shutdown_rx.clone(),
                ))
            })
            .collect();
        PublicServer {
            shutdown_tx,
            tasks,
            limit,
            addrs,
        }
    }
}

/// The running public listener.
pub struct PublicServer {
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    limit: ConnectionLimit,
    addrs: Vec<SocketAddr>,
}

impl PublicServer {
    /// The bound addresses, in the order of `http.listen`.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting and lets the requests in progress finish (at most `grace`).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if !self.limit.wait_idle(grace).await {
            tracing::warn!(
                "metrics or health requests still running at the end of the grace period"
            );
        }
    }
}

fn router(ctx: Arc<PublicContext>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /health\n",
            )
        })
        .with_state(ctx)
}

async fn metrics_text(State(ctx): State<Arc<PublicContext>>) -> Response {
    (ctx.sample)();
    let mut r = (StatusCode::OK, ctx.metrics.render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    r
}

async fn health(State(ctx): State<Arc<PublicContext>>) -> Response {
    let database = match tokio::time::timeout(DATABASE_TIMEOUT, ctx.storage.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            false
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = DATABASE_TIMEOUT.as_millis() as u64,
                "health check: the database did not answer in time"
            );
            false
        }
    };
    let (status, word) = if database {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "error")
    };
    let body = serde_json::json!({
        "status": word,
        "uptime": ctx.started.elapsed().as_secs(),
        "version": ctx.version,
        "database": word,
    });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A load balancer must see the state of now, not a cached answer.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
