//! Metrics and health on the public HTTP listener (`[http]`, docs/metrics.md): the process's
//! recorder and the description of every metric, installed before anything is counted; the
//! gauges read from the live server at each scrape (sessions, streams, queues).
//!
//! Counters and histograms are recorded where things happen, by the crates that own them
//! (`causerie_core::metrics`, and the `metrics` modules of `c2s`, `s2s`, `policy` and
//! `storage`); this module only names and describes them. With `http.listen` empty, no
//! recorder is installed and every one of those calls does nothing.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use causerie_c2s::C2sServer;
use causerie_config::Config;
use causerie_core::Core;
use causerie_http::{BoundPublic, PublicContext, PublicOptions, PublicServer};
use causerie_policy::compliance::Compliance;
use causerie_s2s::{Direction, S2s};
use causerie_storage::Storage;
use metrics::Unit;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::StartError;

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the server exposes: name, kind, unit, help text. docs/metrics.md lists the
/// same names with their labels (a test checks it).
pub const METRICS: &[(&str, Kind, Option<Unit>, &str)] = &[
    (
        "causerie_build_info",
        Kind::Gauge,
        None,
        "Always 1; the label `version` is the server's version.",
    ),
    (
        "causerie_c2s_connections",
        Kind::Gauge,
        None,
        "Client connections open now, authenticated or not.",
    ),
    (
        "causerie_c2s_sessions",
        Kind::Gauge,
        None,
        "Bound client sessions now, by state: `authenticated`, or `restricted` until the usage policy is accepted.",
    ),
    (
        "causerie_c2s_outbound_queued",
        Kind::Gauge,
        None,
        "Stanzas waiting in the outbound queues of client sessions now.",
    ),
    (
        "causerie_logins_total",
        Kind::Counter,
        None,
        "SASL exchanges on client streams, by mechanism and result.",
    ),
    (
        "causerie_stanzas_received_total",
        Kind::Counter,
        None,
        "Stanzas read from streams, by stream (c2s, s2s) and kind (message, presence, iq).",
    ),
    (
        "causerie_stanzas_sent_total",
        Kind::Counter,
        None,
        "Stanzas written to streams, by stream (c2s, s2s) and kind (message, presence, iq).",
    ),
    (
        "causerie_stanza_errors_total",
        Kind::Counter,
        None,
        "Stanza errors the server generated in answer to stanzas, by condition (RFC 6120 8.3.3).",
    ),
    (
        "causerie_s2s_connections",
        Kind::Gauge,
        None,
        "Server-to-server connections open now, authenticated or not.",
    ),
    (
        "causerie_s2s_streams",
        Kind::Gauge,
        None,
        "Server-to-server streams now, by direction and state: `established` (authenticated), or `connecting` (stanzas queued for a domain with no established stream yet).",
    ),
    (
        "causerie_s2s_outbound_queued",
        Kind::Gauge,
        None,
        "Stanzas waiting in the outbound queues to remote domains now.",
    ),
    (
        "causerie_s2s_stream_authentications_total",
        Kind::Counter,
        None,
        "Authentication decisions on server-to-server streams, by direction and result (accepted, refused).",
    ),
    (
        "causerie_policy_gate_events_total",
        Kind::Counter,
        None,
        "Usage-policy gate events: sessions restricted, versions accepted and declined, sessions closed on timeout.",
    ),
    (
        "causerie_compliance_actions_total",
        Kind::Counter,
        None,
        "Actions carried out by compliance rule matches, by action.",
    ),
    (
        "causerie_compliance_evidence_records_total",
        Kind::Counter,
        None,
        "Compliance evidence records written.",
    ),
    (
        "causerie_compliance_evidence_pending",
        Kind::Gauge,
        None,
        "Compliance evidence records queued and not written yet.",
    ),
    (
        "causerie_compliance_webhook_alerts_total",
        Kind::Counter,
        None,
        "Alerts of the compliance webhook, by result: posted, failed, dropped (queue full).",
    ),
    (
        "causerie_storage_query_duration_seconds",
        Kind::Histogram,
        Some(Unit::Seconds),
        "Duration of SQL statements, by store and operation.",
    ),
    (
        "causerie_storage_query_errors_total",
        Kind::Counter,
        None,
        "SQL statements that failed, by store and operation.",
    ),
];

/// The recorder installed and the listeners bound; `None` without `http.listen`.
pub(crate) struct Bound {
    listeners: BoundPublic,
    metrics: PrometheusHandle,
    started: Instant,
}

/// Installs the recorder (before anything is counted: handles taken earlier stay inert) and
/// binds the listeners.
pub(crate) async fn bind(config: &Config) -> Result<Option<Bound>, StartError> {
    if config.http.listen.is_empty() {
        return Ok(None);
    }
    let started = Instant::now();
    let metrics = causerie_http::public::install_recorder();
    describe();
    let listeners = causerie_http::public::bind(&PublicOptions::from_config(config)).await?;
    Ok(Some(Bound {
        listeners,
        metrics,
        started,
    }))
}

fn describe() {
    for (name, kind, unit, help) in METRICS {
        match (kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(*name, *u, *help),
            (Kind::Counter, None) => metrics::describe_counter!(*name, *help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(*name, *u, *help),
            (Kind::Gauge, None) => metrics::describe_gauge!(*name, *help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(*name, *u, *help),
            (Kind::Histogram, None) => metrics::describe_histogram!(*name, *help),
        }
    }
}

/// The live server the gauges are read from.
pub(crate) struct Live {
    pub core: Arc<Core>,
    pub c2s: Arc<C2sServer>,
    pub s2s: Arc<S2s>,
    pub compliance: Arc<Compliance>,
}

/// Serves `/metrics` and `/health`.
pub(crate) fn serve(bound: Bound, storage: &Storage, live: Live) -> PublicServer {
    let live = Arc::new(live);
    bound.listeners.serve(PublicContext {
        metrics: bound.metrics,
        sample: Arc::new(move || sample(&live)),
        storage: storage.clone(),
        started: bound.started,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Precision is not an issue for counts: gauges are `f64`, exact up to 2^53.
fn count(n: usize) -> f64 {
    n as f64
}

/// Sets the gauges that are states rather than events. Runs at each scrape, off the stanza
/// path: one pass over the session registry and the federation tables.
fn sample(live: &Live) {
    metrics::gauge!("causerie_c2s_connections").set(count(live.c2s.connections()));
    let sessions = live.core.registry.all();
    let restricted = sessions
        .iter()
        .filter(|s| s.info.flag(causerie_core::flags::RESTRICTED))
        .count();
    let queued: usize = sessions.iter().map(|s| s.queued()).sum();
    metrics::gauge!("causerie_c2s_sessions", "state" => "authenticated")
        .set(count(sessions.len() - restricted));
    metrics::gauge!("causerie_c2s_sessions", "state" => "restricted").set(count(restricted));
    metrics::gauge!("causerie_c2s_outbound_queued").set(count(queued));

    metrics::gauge!("causerie_s2s_connections").set(count(live.s2s.connections()));
    let streams = live.s2s.streams();
    let mut established = [0usize; 2];
    // The (local, remote) pairs a stream carries our stanzas for: outbound ones, and incoming
    // bidirectional ones (XEP-0288).
    let mut carried: HashSet<(&str, &str)> = HashSet::new();
    for s in &streams {
        established[usize::from(s.direction == Direction::Outbound)] += 1;
        if s.direction == Direction::Outbound || s.bidi {
            carried.insert((s.local.as_str(), s.remote.as_str()));
        }
    }
    let queues = live.s2s.queue_depths();
    let connecting = queues
        .iter()
        .filter(|(local, remote, _)| !carried.contains(&(local.as_str(), remote.as_str())))
        .count();
    for (direction, n) in [
        (Direction::Inbound, established[0]),
        (Direction::Outbound, established[1]),
    ] {
        metrics::gauge!("causerie_s2s_streams", "direction" => direction.as_str(), "state" => "established")
            .set(count(n));
    }
    metrics::gauge!("causerie_s2s_streams", "direction" => "outbound", "state" => "connecting")
        .set(count(connecting));
    let queued: usize = queues.iter().map(|(_, _, n)| n).sum();
    metrics::gauge!("causerie_s2s_outbound_queued").set(count(queued));

    if let Some(stats) = live.compliance.webhook_stats() {
        for (result, n) in [
            ("posted", stats.posted),
            ("failed", stats.failed),
            ("dropped", stats.dropped),
        ] {
            metrics::counter!("causerie_compliance_webhook_alerts_total", "result" => result)
                .absolute(n);
        }
    }
}

/// The bound addresses, for the caller to report.
pub(crate) fn addrs(server: Option<&PublicServer>) -> Vec<SocketAddr> {
    server.map(|s| s.addrs().to_vec()).unwrap_or_default()
}
