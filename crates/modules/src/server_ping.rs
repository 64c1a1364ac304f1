//! XEP-0199 XMPP Ping, server to client (§3): every interval the server pings each client session;
//! a session that has not answered the previous round's ping by the next round is closed with a
//! `<connection-timeout/>` stream error (RFC 6120 §4.9.3.4). Any answer counts, an error included
//! (§3.2: a client that does not support pings still proves it is there).
//!
//! One task serves the whole server, started when the first session binds, holding only a weak
//! reference to the core; the outstanding ping of each session is one map entry, so an idle
//! session costs no timer of its own.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use causerie_core::{
    Core, Event, EventListener, Module, ModuleRegistry, OutStanza, Stage, StageContext, Verdict,
};
use causerie_stanza::{IqType, StreamError, StreamErrorCondition, ns};
use causerie_xml::Element;

/// First, so that answers to the server's pings go no further.
pub const STAGE_PRIORITY: i32 = 10;

struct State {
    interval: Duration,
    /// Session id → id of its unanswered ping.
    pending: Mutex<HashMap<u64, String>>,
    next_id: AtomicU64,
    started: AtomicBool,
}

pub struct ServerPing {
    state: Arc<State>,
}

impl ServerPing {
    /// `interval` is floored at one second.
    pub fn new(interval: Duration) -> Self {
        ServerPing {
            state: Arc::new(State {
                interval: interval.max(Duration::from_secs(1)),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                started: AtomicBool::new(false),
            }),
        }
    }

    /// One round: closes the sessions that left the previous ping unanswered and pings the
    /// others. The periodic task calls this; it is public so that a round can be driven directly.
    pub fn round(&self, core: &Core) {
        self.state.round(core);
    }

    /// How many sessions have a ping outstanding.
    pub fn outstanding(&self) -> usize {
        self.state
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl State {
    fn round(&self, core: &Core) {
        let sessions = core.registry.all();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let live: HashSet<u64> = sessions.iter().map(|s| s.id()).collect();
        pending.retain(|id, _| live.contains(id));
        for s in sessions {
            if pending.remove(&s.id()).is_some() {
                tracing::debug!(jid = %s.jid(), session = s.id(), "no answer to the server's ping, closing");
                s.close(
                    StreamError::new(StreamErrorCondition::ConnectionTimeout)
                        .with_text("no answer to ping"),
                );
                continue;
            }
            let id = format!(
                "s2c-ping-{:x}",
                self.next_id.fetch_add(1, Ordering::Relaxed)
            );
            let ping = Element::new("iq", ns::CLIENT)
                .with_attr("from", s.jid().domain())
                .with_attr("to", s.jid().as_str())
                .with_attr("type", "get")
                .with_attr("id", id.as_str())
                .with_child(Element::new("ping", ns::PING));
            // Straight to the session: a protocol-level probe that no delivery filter concerns.
            if s.deliver_stanza(&OutStanza::new(ping)).is_ok() {
                pending.insert(s.id(), id);
            }
        }
    }

    async fn run(self: Arc<Self>, core: Weak<Core>) {
        let start = tokio::time::Instant::now() + self.interval;
        let mut ticks = tokio::time::interval_at(start, self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(core) = core.upgrade() else { return };
            self.round(&core);
        }
    }
}

impl Module for ServerPing {
    fn name(&self) -> &'static str {
        "server_ping"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.listener(self);
    }
}

impl Stage for ServerPing {
    fn name(&self) -> &'static str {
        "server_ping"
    }

    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        let Some(session) = ctx.origin.session() else {
            return Verdict::Pass;
        };
        if stanza.name() != "iq"
            || !matches!(
                stanza.attr("type").and_then(IqType::parse),
                Some(IqType::Result | IqType::Error)
            )
        {
            return Verdict::Pass;
        }
        let Some(id) = stanza.attr("id") else {
            return Verdict::Pass;
        };
        let mut pending = self.state.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.get(&session.id()).is_some_and(|p| p == id) {
            pending.remove(&session.id());
            return Verdict::Handled;
        }
        Verdict::Pass
    }
}

impl EventListener for ServerPing {
    fn on_event(&self, core: &Arc<Core>, event: &Event<'_>) {
        match event {
            Event::SessionBound(_) => {
                if self.state.started.swap(true, Ordering::AcqRel) {
                    return;
                }
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(self.state.clone().run(Arc::downgrade(core)));
                    }
                    Err(_) => {
                        self.state.started.store(false, Ordering::Release);
                        tracing::warn!("no runtime to run server pings on");
                    }
                }
            }
            Event::SessionEnded(s) => {
                self.state
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&s.id());
            }
            Event::SessionAvailable(_) | Event::SessionReleased(_) => {}
        }
    }
}
