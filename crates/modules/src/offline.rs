//! XEP-0160 Best Practices for Handling Offline Messages: `chat` and `normal` messages to an
//! account with no available resource are stored, stamped with a XEP-0203 `<delay/>`, and handed
//! to the first session of the account that sends initial presence with a non-negative priority.
//!
//! - Not stored (XEP-0160 §4, XEP-0334): messages with nothing but chat states, and messages
//!   marked `<no-store xmlns='urn:xmpp:hints'/>`; they are dropped without an error.
//! - Refused with `<service-unavailable/>` (XEP-0160 §3, RFC 6121 §8.5.2.2.1): messages for an
//!   account that does not exist, for an account whose storage holds its quota (the text says so),
//!   and messages from an address the account blocks (XEP-0191 §3.3, so that the sender cannot
//!   tell a blocking account from an offline one).
//! - Messages are in the database, so they survive restarts. Delivery lists them in order, hands
//!   them to the session, and removes only those the session's inbox accepted: a session that goes
//!   away midway leaves the rest stored. One delivery runs per account at a time, so two sessions
//!   becoming available together do not both receive the same messages.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use causerie_core::{
    Core, Event, EventListener, IqTarget, Module, ModuleRegistry, OfflineOutcome, OfflineSink,
    OutStanza, SessionHandle,
};
use causerie_jid::BareJid;
use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::{BlockingStore, OfflineStore, Storage, StoreError};
use causerie_xml::Element;

use crate::common::{datetime, jid_match, parse_stored, store_error};

pub const FEATURE: &str = "msgoffline";
pub const NS_DELAY: &str = "urn:xmpp:delay";
const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
const NS_HINTS: &str = "urn:xmpp:hints";

/// Messages read from storage at a time.
const PAGE: u64 = 100;
/// Messages handed to a session before pausing. A session's inbox is bounded and a full one
/// disconnects the client; the pause lets the session's writer drain what was queued.
const BURST: usize = 32;
const BURST_PAUSE: Duration = Duration::from_millis(10);

struct State {
    store: Arc<dyn OfflineStore>,
    blocking: Arc<dyn BlockingStore>,
    quota: u64,
    /// Accounts whose stored messages are being delivered, and whether more arrived meanwhile (a
    /// message stored while the account was becoming available must not wait for the next login).
    delivering: Mutex<HashMap<BareJid, bool>>,
}

pub struct OfflineMessages {
    state: Arc<State>,
}

impl OfflineMessages {
    pub fn new(storage: &Storage, quota: u64) -> Self {
        OfflineMessages {
            state: Arc::new(State {
                store: storage.offline.clone(),
                blocking: storage.blocking.clone(),
                quota,
                delivering: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// Whether a message carries something worth keeping (XEP-0160 §4: chat states alone are not;
/// XEP-0334 §4.3: `<no-store/>` asks for no storage at all).
fn worth_storing(msg: &Element) -> bool {
    if msg.has_child("no-store", NS_HINTS) {
        return false;
    }
    let content_ns = msg.ns();
    msg.children()
        .any(|c| c.ns() != NS_CHATSTATES && !c.is("thread", content_ns))
}

fn unavailable(text: &str) -> OfflineOutcome {
    OfflineOutcome::Bounce(StanzaError::new(Cond::ServiceUnavailable).with_text(text))
}

impl State {
    async fn blocklist(&self, account: &BareJid) -> HashSet<String> {
        let Some(user) = account.node() else {
            return HashSet::new();
        };
        match self.blocking.blocklist(user, account.domain()).await {
            Ok(list) => list.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, jid = %account, "cannot read the blocklist for offline messages");
                HashSet::new()
            }
        }
    }

    /// Hands the stored messages to `session` while it stays available, or, when it was just
    /// `released` from a restriction (it may not have sent presence), while it stays connected.
    async fn deliver(&self, session: &SessionHandle, released: bool) {
        let account = session.jid().to_bare();
        let Some(user) = account.node() else { return };
        let domain = account.domain();
        let blocked = self.blocklist(&account).await;
        let mut last_id = i64::MIN;
        let mut handed = 0usize;
        loop {
            let page = match self.store.list(user, domain, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, jid = %account, "cannot list offline messages");
                    return;
                }
            };
            if page.is_empty() {
                return;
            }
            let mut done = Vec::with_capacity(page.len());
            let mut stopped = false;
            for m in &page {
                // Ids only grow; seeing an old one again means the removal below did not happen.
                if m.id <= last_id {
                    stopped = true;
                    break;
                }
                last_id = m.id;
                let Some(el) = parse_stored(&m.stanza) else {
                    // It can never be delivered; keeping it would block the queue forever.
                    done.push(m.id);
                    continue;
                };
                let from_blocked = causerie_stanza::from_jid(&el)
                    .ok()
                    .flatten()
                    .is_some_and(|from| jid_match::blocked(&blocked, &from));
                if !from_blocked {
                    let gone = if released {
                        session.is_closed()
                    } else {
                        !session.info.is_available()
                    };
                    if gone || session.deliver_stanza(&OutStanza::new(el)).is_err() {
                        stopped = true;
                        break;
                    }
                    handed += 1;
                    if handed.is_multiple_of(BURST) {
                        tokio::time::sleep(BURST_PAUSE).await;
                    }
                }
                done.push(m.id);
            }
            if !done.is_empty()
                && let Err(e) = self.store.remove(user, domain, &done).await
            {
                // They were handed over; they come again at the next login, which beats losing them.
                tracing::warn!(error = %e, jid = %account, "cannot remove delivered offline messages");
                return;
            }
            if stopped {
                return;
            }
        }
    }
}

/// Releases the account's delivery slot however the delivery ends.
struct Delivering {
    state: Arc<State>,
    account: BareJid,
}

impl Drop for Delivering {
    fn drop(&mut self) {
        self.state
            .delivering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.account);
    }
}

impl Module for OfflineMessages {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        if self.state.quota > 0 {
            reg.feature(IqTarget::Server, FEATURE);
        }
        reg.offline(self.clone());
        reg.listener(self);
    }
}

#[async_trait]
impl OfflineSink for OfflineMessages {
    async fn store(&self, core: &Arc<Core>, to: &BareJid, stanza: &Element) -> OfflineOutcome {
        let st = &self.state;
        if !worth_storing(stanza) {
            return OfflineOutcome::Stored;
        }
        let Some(user) = to.node() else {
            return unavailable("no such user");
        };
        if st.quota == 0 {
            return unavailable("offline messages are not stored on this server");
        }
        if let Ok(Some(from)) = causerie_stanza::from_jid(stanza)
            && jid_match::blocked(&st.blocklist(to).await, &from)
        {
            return OfflineOutcome::Bounce(StanzaError::new(Cond::ServiceUnavailable));
        }
        let now = datetime::unix_now();
        let mut kept = stanza.clone();
        // XEP-0203 §4 / XEP-0160 §3: who delayed it and since when.
        kept.push_child(
            Element::new("delay", NS_DELAY)
                .with_attr("from", to.domain())
                .with_attr("stamp", datetime::format_utc(now))
                .with_text("Offline Storage"),
        );
        match st
            .store
            .push(user, to.domain(), &kept.to_xml(), now, st.quota)
            .await
        {
            Ok(true) => {
                // The account may have become available while this was being written: its
                // delivery then ran before the message existed.
                let now_available = core.registry.with_resources(to, |list| {
                    list.iter()
                        .filter(|s| s.info.is_available() && s.info.priority() >= 0)
                        .max_by_key(|s| s.info.priority())
                        .cloned()
                });
                if let Some(session) = now_available {
                    self.start_delivery(&session, false);
                }
                OfflineOutcome::Stored
            }
            Ok(false) => unavailable("the recipient's offline message storage is full"),
            // RFC 6121 §8.5.2.2.1 / §8.5.1: no such account.
            Err(StoreError::NotFound(_)) => {
                OfflineOutcome::Bounce(StanzaError::new(Cond::ServiceUnavailable))
            }
            Err(e) => OfflineOutcome::Bounce(store_error("storing an offline message", &e)),
        }
    }
}

impl OfflineMessages {
    /// Delivers the account's stored messages to `session`, unless a delivery for the account is
    /// running; that one then goes round once more.
    fn start_delivery(&self, session: &SessionHandle, released: bool) {
        let account = session.jid().to_bare();
        {
            let mut running = self
                .state
                .delivering
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(again) = running.get_mut(&account) {
                *again = true;
                return;
            }
            running.insert(account.clone(), false);
        }
        let guard = Delivering {
            state: self.state.clone(),
            account,
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(jid = %session.jid(), "no runtime to deliver offline messages on");
            return;
        };
        let session = session.clone();
        rt.spawn(async move {
            loop {
                guard.state.deliver(&session, released).await;
                let mut running = guard
                    .state
                    .delivering
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match running.get_mut(&guard.account) {
                    Some(again) if *again => *again = false,
                    _ => break,
                }
            }
            drop(guard);
        });
    }
}

impl EventListener for OfflineMessages {
    fn on_event(&self, _core: &Arc<Core>, event: &Event<'_>) {
        match event {
            // XEP-0160 §3: delivered when the user sends presence with a non-negative priority.
            Event::SessionAvailable(session) if session.info.priority() >= 0 => {
                self.start_delivery(session, false)
            }
            // Kept while the account was held back (usage policy): due to the released session.
            Event::SessionReleased(session) => self.start_delivery(session, true),
            _ => {}
        }
    }
}
