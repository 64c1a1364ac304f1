//! Wiring of federation: the `[s2s]` and `[federation]` sections to a running [`S2s`], the
//! partner list kept in the database (reloaded while running), and stream audit records.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use causerie_config::Config;
use causerie_core::Core;
use causerie_s2s::{
    AuditSink, FederationPolicy, HickoryResolver, Mode, PartnerSettings, Resolve, S2s, S2sParts,
    S2sSettings, StaticResolver, StreamAudit, Target,
};
use causerie_storage::audit::NewAuditEvent;
use causerie_storage::federation::PartnerRule;
use causerie_storage::{AuditStore, FederationStore, Storage};
use causerie_tls::CertStore;
use causerie_tls::s2s::{PeerTrust, Pin, SYSTEM_CA_BUNDLE, load_roots};
use causerie_xml::Limits;
use tokio::sync::watch;

use crate::StartError;

/// Builds federation from the configuration; the caller starts the listeners.
pub(crate) async fn build(
    config: &Config,
    core: &Arc<Core>,
    certs: Arc<CertStore>,
    storage: &Storage,
    server_secret: [u8; 32],
    shutdown: watch::Receiver<bool>,
) -> Result<Arc<S2s>, StartError> {
    let base = static_policy(config)?;
    let policy = match managed_entries(storage.federation.as_ref()).await {
        Ok(entries) => base.with_managed(entries),
        Err(e) => return Err(StartError::Federation(format!("partner list: {e}"))),
    };
    let mut anchors: Vec<(&Path, bool)> = Vec::new();
    if config.s2s.use_system_roots {
        anchors.push((Path::new(SYSTEM_CA_BUNDLE), true));
    }
    if let Some(ca) = &config.s2s.ca_file {
        anchors.push((ca.as_path(), false));
    }
    let trust = PeerTrust::new(load_roots(&anchors)?);
    let s2s = S2s::new(
        core.clone(),
        S2sParts {
            settings: settings(config),
            certs,
            trust,
            resolver: resolver(config),
            policy,
            audit: Arc::new(StoreAudit {
                store: storage.audit.clone(),
                enabled: config.federation.audit_streams,
            }),
            server_secret,
            shutdown: shutdown.clone(),
        },
    )?;
    s2s.install();
    tokio::spawn(reload(
        s2s.clone(),
        base,
        storage.federation.clone(),
        Duration::from_secs(config.federation.reload_secs.max(1)),
        shutdown,
    ));
    Ok(s2s)
}

fn settings(config: &Config) -> S2sSettings {
    let s = &config.s2s;
    S2sSettings {
        connect_timeout: Duration::from_secs(s.connect_timeout_secs),
        handshake_timeout: Duration::from_secs(s.handshake_timeout_secs),
        idle_timeout: Duration::from_secs(s.idle_timeout_secs),
        queue_len: s.queue_len,
        dialback: s.dialback,
        require_valid_certificates: s.require_valid_certificates,
        bidi: s.bidi,
        limits: Limits {
            max_stanza_bytes: s.max_stanza_bytes,
            max_depth: config.limits.max_depth,
            max_attributes: config.limits.max_attributes,
            ..Limits::default()
        },
        tls13_only: config.tls.min_version == "1.3",
    }
}

fn resolver(config: &Config) -> Arc<dyn Resolve> {
    let (made, servers) = HickoryResolver::configured(&config.s2s.resolver);
    let made = match made {
        Ok(r) if config.s2s.dane => r.with_dane(&servers),
        other => other,
    };
    match made {
        Ok(r) => Arc::new(r),
        Err(e) => {
            // Without DNS only static routes work; say so once instead of failing every stanza.
            tracing::warn!(error = %e, "no DNS resolver for federation; only configured routes will work");
            Arc::new(StaticResolver::new())
        }
    }
}

/// The part of the policy the configuration file gives: mode, partners with routes and pins, deny.
pub(crate) fn static_policy(config: &Config) -> Result<FederationPolicy, StartError> {
    let fed = &config.federation;
    let mode = Mode::parse(&fed.mode)
        .ok_or_else(|| StartError::Federation(format!("unknown federation.mode {}", fed.mode)))?;
    let mut partners = HashMap::new();
    for p in &fed.partners {
        let route = match &p.route {
            Some(r) => Some(parse_route(r, p.direct_tls).ok_or_else(|| {
                StartError::Federation(format!("{}: route {r} is not host:port", p.domain))
            })?),
            None => None,
        };
        let roots = match &p.ca {
            Some(path) => Some(Arc::new(load_roots(&[(path.as_path(), false)])?)),
            None => None,
        };
        let fingerprints = p
            .fingerprints
            .iter()
            .map(|f| {
                decode_fingerprint(f).ok_or_else(|| {
                    StartError::Federation(format!(
                        "{}: fingerprint {f} is not SHA-256 hex",
                        p.domain
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        partners.insert(
            p.domain.clone(),
            PartnerSettings {
                route,
                pin: Pin {
                    roots,
                    fingerprints,
                },
                insecure: p.insecure,
            },
        );
    }
    Ok(FederationPolicy::new(
        mode,
        partners,
        fed.deny.iter().cloned(),
    ))
}

/// `host:port` or `[v6]:port`.
fn parse_route(route: &str, direct_tls: bool) -> Option<Target> {
    let (host, port) = route.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| Target {
        host: host.to_owned(),
        port,
        direct_tls,
    })
}

fn decode_fingerprint(hex: &str) -> Option<[u8; 32]> {
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Whether federation with `domain` is allowed, as the running server decides it from the
/// configuration and the partner list in the database (for `causeriectl rules test`).
pub async fn allows(
    config: &Config,
    store: &dyn FederationStore,
    domain: &str,
) -> Result<bool, String> {
    let base = static_policy(config).map_err(|e| e.to_string())?;
    let entries = managed_entries(store).await.map_err(|e| e.to_string())?;
    Ok(base.with_managed(entries).decide(domain).is_allowed())
}

async fn managed_entries(
    store: &dyn FederationStore,
) -> Result<Vec<(String, bool)>, causerie_storage::StoreError> {
    Ok(store
        .partners()
        .await?
        .into_iter()
        .map(|p| (p.domain, p.rule == PartnerRule::Allow))
        .collect())
}

/// Re-reads the partner list whenever its revision changes (`causeriectl federation …`).
async fn reload(
    s2s: Arc<S2s>,
    base: FederationPolicy,
    store: Arc<dyn FederationStore>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seen = store.revision().await.ok();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let revision = match store.revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the federation partner list revision");
                continue;
            }
        };
        if Some(revision) == seen {
            continue;
        }
        match managed_entries(store.as_ref()).await {
            Ok(entries) => {
                tracing::info!(entries = entries.len(), "federation partner list reloaded");
                s2s.set_policy(base.with_managed(entries));
                seen = Some(revision);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the federation partner list"),
        }
    }
}

/// Writes stream audit records to the audit store, off the stream's task.
struct StoreAudit {
    store: Arc<dyn AuditStore>,
    enabled: bool,
}

impl AuditSink for StoreAudit {
    fn record(&self, ev: StreamAudit) {
        if !self.enabled {
            return;
        }
        let (outcome, detail) = match &ev.outcome {
            Ok(method) => ("ok", format!("authenticated by {}", method.as_str())),
            Err(why) => ("refused", why.clone()),
        };
        let action = format!(
            "s2s.{}.{}",
            ev.direction.as_str(),
            if ev.outcome.is_ok() {
                "accepted"
            } else {
                "refused"
            }
        );
        let event = NewAuditEvent {
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            actor: "s2s".to_owned(),
            action,
            subject: ev.remote.clone(),
            outcome: outcome.to_owned(),
            detail: format!("local {}: {detail}", ev.local),
            remote_addr: ev.peer.map(|p| p.to_string()),
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.append(&event).await {
                tracing::warn!(error = %e, "cannot write an audit record");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_fingerprints() {
        assert_eq!(
            parse_route("10.0.0.5:5269", false),
            Some(Target {
                host: "10.0.0.5".into(),
                port: 5269,
                direct_tls: false
            })
        );
        assert_eq!(
            parse_route("[::1]:5270", true).map(|t| (t.host, t.direct_tls)),
            Some(("::1".into(), true))
        );
        assert_eq!(parse_route("nohost", false), None);
        assert_eq!(parse_route("h:0", false), None);
        let hex = "ab".repeat(32);
        assert_eq!(decode_fingerprint(&hex), Some([0xab; 32]));
        assert_eq!(decode_fingerprint("ab:cd"), None);
    }
}
