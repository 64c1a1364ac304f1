//! XEP-0352 Client State Indication: a client says `<inactive/>` when nobody looks at it and
//! `<active/>` when someone does. While a session is inactive its presence updates are held back,
//! only the latest per sender kept, and delivered in order when it becomes active again; messages,
//! IQs and presence subscription requests always go through at once (§5 leaves the choice of what
//! to delay to the server; presence is the bulk of what a sleeping client does not need).
//!
//! The number of senders held per session is bounded: when one more arrives, what is held is
//! delivered first, so nothing is lost and memory stays flat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use causerie_core::{
    Core, Event, EventListener, Module, ModuleRegistry, NonzaHandler, OutStanza, SessionHandle,
    Stage, StageContext, Verdict, flags,
};
use causerie_stanza::{PresenceType, StanzaKind, StreamError};
use causerie_xml::Element;

pub const NS: &str = "urn:xmpp:csi:0";

/// Last of the delivery filters: what it holds has passed every other one.
pub const STAGE_PRIORITY: i32 = 10_000;

#[derive(Default)]
struct Held {
    next: u64,
    /// Sender (the `from` as written) → (arrival order, latest presence).
    by_sender: HashMap<String, (u64, Arc<OutStanza>)>,
}

impl Held {
    fn drain_in_order(&mut self) -> Vec<Arc<OutStanza>> {
        let mut all: Vec<(u64, Arc<OutStanza>)> = self.by_sender.drain().map(|(_, v)| v).collect();
        all.sort_unstable_by_key(|(n, _)| *n);
        all.into_iter().map(|(_, s)| s).collect()
    }
}

pub struct ClientState {
    max_held: usize,
    /// Held presence by session id; only inactive sessions with something held have an entry.
    /// One lock, also taken to switch a session's state, so that a presence is never delivered
    /// ahead of an older one from the same sender that is being flushed.
    held: Mutex<HashMap<u64, Held>>,
}

impl ClientState {
    pub fn new(max_held: usize) -> Self {
        ClientState {
            max_held: max_held.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn set_active(&self, session: &SessionHandle) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut h) = held.remove(&session.id()) {
            // Straight to the session: these passed the other filters when they were held.
            for s in h.drain_in_order() {
                let _ = session.deliver_stanza(&s);
            }
        }
        // Cleared last, under the lock: a presence racing with the flush waits for it.
        session.info.set_flag(flags::CSI_INACTIVE, false);
    }

    fn set_inactive(&self, session: &SessionHandle) {
        let _held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        session.info.set_flag(flags::CSI_INACTIVE, true);
    }
}

/// Only availability changes are held; subscription requests and errors need the user.
fn holdable(stanza: &OutStanza) -> bool {
    stanza.kind == Some(StanzaKind::Presence)
        && matches!(
            PresenceType::of(&stanza.element),
            Some(PresenceType::Available | PresenceType::Unavailable)
        )
}

impl Module for ClientState {
    fn name(&self) -> &'static str {
        "csi"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.stream_feature(Arc::new(|_core: &Core| Some(Element::new("csi", NS))));
        reg.nonza(NS, "active", self.clone());
        reg.nonza(NS, "inactive", self.clone());
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.listener(self);
    }
}

impl NonzaHandler for ClientState {
    fn handle(
        &self,
        _core: &Arc<Core>,
        session: &SessionHandle,
        el: &Element,
    ) -> Result<Option<Element>, StreamError> {
        // §4: no answer either way.
        if el.name() == "active" {
            self.set_active(session);
        } else {
            self.set_inactive(session);
        }
        Ok(None)
    }
}

impl Stage for ClientState {
    fn name(&self) -> &'static str {
        "csi"
    }

    fn inbound(&self, _ctx: &StageContext<'_>, _stanza: &mut Element) -> Verdict {
        Verdict::Pass
    }

    fn outbound(&self, _core: &Core, to: &SessionHandle, stanza: &Arc<OutStanza>) -> bool {
        if !to.info.flag(flags::CSI_INACTIVE) || !holdable(stanza) {
            return true;
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // Checked again under the lock: the session may have become active meanwhile.
        if !to.info.flag(flags::CSI_INACTIVE) {
            return true;
        }
        let h = held.entry(to.id()).or_default();
        let sender = stanza.element.attr("from").unwrap_or("").to_owned();
        if !h.by_sender.contains_key(&sender) && h.by_sender.len() >= self.max_held {
            for s in h.drain_in_order() {
                let _ = to.deliver_stanza(&s);
            }
        }
        let n = h.next;
        h.next += 1;
        h.by_sender.insert(sender, (n, stanza.clone()));
        false
    }
}

impl EventListener for ClientState {
    fn on_event(&self, _core: &Arc<Core>, event: &Event<'_>) {
        if let Event::SessionEnded(s) = event {
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&s.id());
        }
    }
}
