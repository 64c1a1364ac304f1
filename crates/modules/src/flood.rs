//! Presence flood protection: a token bucket per client session for the presence stanzas it sends
//! (RFC 6120 §13.13 asks servers to guard against floods; RFC 6121 §4 presence is the stanza a
//! client can make the server fan out to every contact, so it is the one that is limited here).
//!
//! A session may send `burst` presence stanzas at once; the allowance refills at `per_minute`.
//! Past it, presence is refused with `<policy-violation/>` (type `wait`); a session that goes on
//! sending as many refused stanzas again is disconnected with the `<policy-violation/>` stream
//! error. Messages and IQs are not counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use causerie_core::{
    Core, Event, EventListener, Module, ModuleRegistry, Origin, Stage, StageContext, Verdict,
};
use causerie_stanza::{
    ErrorType, StanzaError, StanzaErrorCondition, StanzaKind, StreamError, StreamErrorCondition,
};
use causerie_xml::Element;

/// Runs before every other stage: a refused flood costs nothing further.
pub const STAGE_PRIORITY: i32 = 5;

struct Bucket {
    tokens: f64,
    last: Instant,
    /// Stanzas refused since the allowance last ran out.
    refused: u32,
}

pub struct PresenceFlood {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

impl PresenceFlood {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        PresenceFlood {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for session `id` at `now`: `Ok` when allowed, `Err(refused so far)`.
    fn take(&self, id: u64, now: Instant) -> Result<(), u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(id).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            refused: 0,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.refused = 0;
            Ok(())
        } else {
            b.refused = b.refused.saturating_add(1);
            Err(b.refused)
        }
    }
}

impl Module for PresenceFlood {
    fn name(&self) -> &'static str {
        "presence-flood"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.listener(self);
    }
}

impl Stage for PresenceFlood {
    fn name(&self) -> &'static str {
        "presence-flood"
    }

    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        let Origin::Session(session) = ctx.origin else {
            return Verdict::Pass;
        };
        if StanzaKind::of(stanza) != Some(StanzaKind::Presence) {
            return Verdict::Pass;
        }
        match self.take(session.id(), Instant::now()) {
            Ok(()) => Verdict::Pass,
            Err(refused) if f64::from(refused) > self.burst => {
                tracing::warn!(jid = %session.jid(), "presence flood, disconnecting");
                Verdict::Terminate(
                    StreamError::new(StreamErrorCondition::PolicyViolation)
                        .with_text("too many presence stanzas"),
                )
            }
            Err(_) => Verdict::Reject(
                StanzaError::new(StanzaErrorCondition::PolicyViolation)
                    .with_type(ErrorType::Wait)
                    .with_text("too many presence updates; wait before sending more"),
            ),
        }
    }
}

impl EventListener for PresenceFlood {
    fn on_event(&self, _core: &Arc<Core>, event: &Event<'_>) {
        if let Event::SessionEnded(s) = event {
            self.buckets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&s.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let f = PresenceFlood::new(3, 60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(f.take(1, t0).is_ok());
        }
        assert_eq!(f.take(1, t0), Err(1));
        assert_eq!(f.take(1, t0), Err(2));
        // Another session has its own allowance.
        assert!(f.take(2, t0).is_ok());
        // One per second at 60 per minute.
        assert!(f.take(1, t0 + Duration::from_millis(1100)).is_ok());
        assert!(f.take(1, t0 + Duration::from_millis(1200)).is_err());
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(f.take(1, later).is_ok());
        }
        assert!(f.take(1, later).is_err());
    }
}
