//! `stats`: what the running server is doing now.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::context::{S2sQueue, S2sStream};
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(Stats);
}

/// `stats` takes no arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// The client side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientStats {
    /// Open client connections, bound or still negotiating.
    pub connections: usize,
    /// Bound sessions, those that sent available presence, and the accounts they belong to.
    pub sessions: usize,
    pub available: usize,
    pub accounts_online: usize,
    /// Stanzas waiting in the sessions' outbound queues: all together and the longest one.
    pub queued: usize,
    pub max_queued: usize,
    /// Sessions being disconnected because their queue filled up.
    pub overloaded: usize,
}

/// Federation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationStats {
    /// Open server-to-server connections, authenticated or not.
    pub connections: usize,
    /// Authenticated streams.
    pub streams: Vec<S2sStream>,
    /// Outbound queues and the stanzas in them, all together.
    pub queues: Vec<S2sQueue>,
    pub queued: usize,
}

/// The result of `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    pub uptime_secs: u64,
    /// Stanzas received from clients and servers since start, and per second over the last
    /// 10 and 60 seconds.
    pub stanzas_total: u64,
    pub stanzas_per_sec_10s: f64,
    pub stanzas_per_sec_60s: f64,
    pub c2s: ClientStats,
    /// `None` when the server runs without federation.
    pub s2s: Option<FederationStats>,
    /// Accounts in the database.
    pub accounts: u64,
}

/// `stats`.
pub struct Stats;

#[async_trait]
impl Operation for Stats {
    type Args = NoArgs;
    type Output = ServerStats;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "stats",
            "sessions, stanzas per second, server-to-server streams, queue depths",
            false,
            true,
            Permission::Read,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        _args: NoArgs,
    ) -> Result<Done<ServerStats>, AdminError> {
        let live = ctx.require_live("stats")?;
        let sessions = live.core.registry.all();
        let mut accounts = HashSet::new();
        let (mut available, mut queued, mut max_queued, mut overloaded) = (0, 0, 0, 0);
        for s in &sessions {
            accounts.insert(s.jid().to_bare());
            if s.info.is_available() {
                available += 1;
            }
            if s.info.is_overloaded() {
                overloaded += 1;
            }
            let q = s.queued();
            queued += q;
            max_queued = max_queued.max(q);
        }
        let probe = live.probe.as_ref();
        let s2s = probe.map(|p| {
            let queues = p.s2s_queues();
            FederationStats {
                connections: p.s2s_connections(),
                streams: p.s2s_streams(),
                queued: queues.iter().map(|q| q.queued).sum(),
                queues,
            }
        });
        let round = |r: f64| (r * 100.0).round() / 100.0;
        Ok(Done::new(
            ServerStats {
                uptime_secs: live.uptime().as_secs(),
                stanzas_total: live.core.stanzas_processed(),
                stanzas_per_sec_10s: round(live.stanza_rate(Duration::from_secs(10))),
                stanzas_per_sec_60s: round(live.stanza_rate(Duration::from_secs(60))),
                c2s: ClientStats {
                    connections: probe.map_or(sessions.len(), |p| p.c2s_connections()),
                    sessions: sessions.len(),
                    available,
                    accounts_online: accounts.len(),
                    queued,
                    max_queued,
                    overloaded,
                },
                s2s,
                accounts: ctx.storage.users.count_users(None).await?,
            },
            "",
        ))
    }
}
