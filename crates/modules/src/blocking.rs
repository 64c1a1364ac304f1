//! XEP-0191 Blocking Command: an account's blocklist (get, block, unblock one, several or all),
//! pushed to the account's resources that asked for it (§3.3, §3.4), and enforced on every stanza
//! without I/O: the blocklists of accounts with sessions are kept in memory, loaded when the first
//! session binds and dropped when the last one ends.
//!
//! Enforcement (§3.3): a stanza from the user to a blocked address is refused with
//! `<not-acceptable/>` and the `<blocked xmlns='urn:xmpp:blocking:errors'/>` condition; from a
//! blocked address to the user, presence is dropped silently, messages and IQ requests get
//! `<service-unavailable/>` (so the user looks offline) and IQ responses are dropped. Stanzas the
//! server itself hands to a session (presence broadcasts…) pass the same check on delivery.
//! Addresses match as §6 says (see `common::jid_match`).
//!
//! When a blocklist is first loaded the account is briefly unprotected: binding does not wait for
//! modules, so stanzas that arrive in the few milliseconds before the load completes pass.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use causerie_core::{
    Core, Event, EventListener, IqHandler, IqRequest, IqTarget, Module, ModuleRegistry, Origin,
    OutStanza, SessionHandle, Stage, StageContext, Verdict,
};
use causerie_jid::{BareJid, Jid};
use causerie_stanza::{
    ErrorType, IqType, StanzaError, StanzaErrorCondition as Cond, StanzaKind, ns,
};
use causerie_storage::{BlockingStore, Storage};
use causerie_xml::Element;

use crate::common::{jid_match, store_error};

pub const NS: &str = "urn:xmpp:blocking";
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

/// Runs early, so that nothing else (carbons, archives) sees a stanza that is refused.
pub const STAGE_PRIORITY: i32 = 20;

const SHARDS: usize = 16;

type Shard = RwLock<HashMap<BareJid, Arc<Cached>>>;

/// One account's cached blocklist.
#[derive(Default)]
struct Cached {
    state: RwLock<CachedState>,
    /// Serializes reloads, so that the last one to finish read the latest stored list.
    reload: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CachedState {
    jids: Arc<HashSet<String>>,
    /// Dropped from the cache; a reload still in flight must not count it again.
    removed: bool,
}

struct State {
    store: Arc<dyn BlockingStore>,
    /// Read to tell which contacts receive the user's presence (RFC 6121 §3: `from` or `both`).
    roster: Arc<dyn causerie_storage::RosterStore>,
    max_items: usize,
    cache: Box<[Shard]>,
    /// Cached accounts whose blocklist is not empty; when 0, stanzas are not even parsed.
    nonempty: AtomicUsize,
    /// Sessions that asked for the blocklist and so get pushes (§3.3), by session id.
    interested: Mutex<HashSet<u64>>,
    next_push: AtomicU64,
}

pub struct Blocking {
    state: Arc<State>,
}

impl Blocking {
    pub fn new(storage: &Storage, max_items: usize) -> Self {
        Blocking {
            state: Arc::new(State {
                store: storage.blocking.clone(),
                roster: storage.roster.clone(),
                max_items,
                cache: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
                nonempty: AtomicUsize::new(0),
                interested: Mutex::new(HashSet::new()),
                next_push: AtomicU64::new(0),
            }),
        }
    }
}

impl State {
    /// Whether `contact` is subscribed to the presence of the account `user@domain`.
    async fn receives_presence(&self, user: &str, domain: &str, contact: &Jid) -> bool {
        match self
            .roster
            .item(user, domain, contact.to_bare().as_str())
            .await
        {
            Ok(Some(item)) => matches!(
                item.subscription,
                causerie_storage::Subscription::From | causerie_storage::Subscription::Both
            ),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the roster for a blocking change");
                false
            }
        }
    }

    fn shard(&self, account: &BareJid) -> &Shard {
        let mut h = DefaultHasher::new();
        account.hash(&mut h);
        &self.cache[(h.finish() as usize) % SHARDS]
    }

    fn cached(&self, account: &BareJid) -> Option<Arc<Cached>> {
        self.shard(account)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .cloned()
    }

    /// Whether `account`'s cached blocklist covers `jid`.
    fn blocks(&self, account: &BareJid, jid: &Jid) -> bool {
        let Some(cached) = self.cached(account) else {
            return false;
        };
        let jids = cached
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .jids
            .clone();
        jid_match::blocked(&jids, jid)
    }

    fn replace(&self, cached: &Cached, jids: HashSet<String>) {
        let mut state = cached.state.write().unwrap_or_else(|e| e.into_inner());
        if state.removed {
            return;
        }
        match (state.jids.is_empty(), jids.is_empty()) {
            (true, false) => {
                self.nonempty.fetch_add(1, Ordering::AcqRel);
            }
            (false, true) => {
                self.nonempty.fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
        }
        state.jids = Arc::new(jids);
    }

    /// Reads the stored blocklist into the cache, if the account is cached.
    async fn reload(&self, account: &BareJid) {
        let Some(cached) = self.cached(account) else {
            return;
        };
        let Some(user) = account.node() else { return };
        let _serial = cached.reload.lock().await;
        match self.store.blocklist(user, account.domain()).await {
            Ok(list) => self.replace(&cached, list.into_iter().collect()),
            Err(e) => tracing::warn!(error = %e, jid = %account, "cannot load the blocklist"),
        }
    }

    fn drop_cached(&self, core: &Core, account: &BareJid) {
        let mut shard = self
            .shard(account)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // Checked under the shard lock: a session binding now either is already in the registry
        // (keep the cache) or will find no entry and load a fresh one.
        if !core
            .registry
            .with_resources(account, <[SessionHandle]>::is_empty)
        {
            return;
        }
        if let Some(cached) = shard.remove(account) {
            let mut state = cached.state.write().unwrap_or_else(|e| e.into_inner());
            state.removed = true;
            if !state.jids.is_empty() {
                self.nonempty.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn push(&self, core: &Core, account: &BareJid, payload: &Element) {
        let sessions = core.registry.resources(account);
        let interested: Vec<SessionHandle> = {
            let set = self.interested.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .into_iter()
                .filter(|s| set.contains(&s.id()))
                .collect()
        };
        for s in interested {
            let n = self.next_push.fetch_add(1, Ordering::Relaxed);
            let iq = Element::new("iq", ns::CLIENT)
                .with_attr("to", s.jid().as_str())
                .with_attr("type", "set")
                .with_attr("id", format!("blocking-push-{n:x}"))
                .with_child(payload.clone());
            core.deliver(&s, &OutStanza::new(iq));
        }
    }
}

/// The `jid`s of a command's `<item/>`s, prepared (RFC 7622) so that they compare as stored.
/// `Err` says what is wrong, for a `bad-request` (§3.3: "other standard stanza errors apply").
fn items(payload: &Element) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for item in payload.children().filter(|c| c.is("item", NS)) {
        let raw = item
            .attr("jid")
            .ok_or_else(|| "an item needs a jid".to_owned())?;
        let jid = Jid::parse(raw).map_err(|e| format!("'{raw}' is not a valid JID: {e}"))?;
        if seen.insert(jid.as_str().to_owned()) {
            out.push(jid.as_str().to_owned());
        }
    }
    Ok(out)
}

fn bad_items(text: String) -> StanzaError {
    StanzaError::new(Cond::BadRequest).with_text(text)
}

fn item_list(name: &str, jids: &[String]) -> Element {
    let mut el = Element::new(name, NS);
    for j in jids {
        el.push_child(Element::new("item", NS).with_attr("jid", j.as_str()));
    }
    el
}

impl Module for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(
            IqType::Get,
            NS,
            "blocklist",
            IqTarget::Account,
            self.clone(),
        );
        reg.iq(IqType::Set, NS, "block", IqTarget::Account, self.clone());
        reg.iq(IqType::Set, NS, "unblock", IqTarget::Account, self.clone());
        reg.feature(IqTarget::Server, NS);
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.listener(self);
    }
}

#[async_trait]
impl IqHandler for Blocking {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let st = &self.state;
        let account = req.to.to_bare();
        // §3: commands are sent without `to`, handled for the sender's own account only.
        if req.from.to_bare() != account {
            return Err(StanzaError::new(Cond::Forbidden));
        }
        let Some(user) = account.node() else {
            return Err(StanzaError::new(Cond::Forbidden));
        };
        let domain = account.domain();
        match req.payload.name() {
            "blocklist" => {
                if let Some(s) = req.origin.session() {
                    st.interested
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(s.id());
                }
                let list = st
                    .store
                    .blocklist(user, domain)
                    .await
                    .map_err(|e| store_error("reading a blocklist", &e))?;
                Ok(Some(item_list("blocklist", &list)))
            }
            "block" => {
                let jids = items(req.payload).map_err(bad_items)?;
                if jids.is_empty() {
                    // §3.3: a block without items is a bad request.
                    return Err(StanzaError::new(Cond::BadRequest)
                        .with_text("name at least one JID to block"));
                }
                let current = st
                    .store
                    .blocklist(user, domain)
                    .await
                    .map_err(|e| store_error("reading a blocklist", &e))?;
                let known: HashSet<&str> = current.iter().map(String::as_str).collect();
                let added: Vec<String> = jids
                    .iter()
                    .filter(|j| !known.contains(j.as_str()))
                    .cloned()
                    .collect();
                if current.len().saturating_add(added.len()) > st.max_items {
                    return Err(StanzaError::new(Cond::PolicyViolation).with_text(format!(
                        "a blocklist may hold at most {} entries",
                        st.max_items
                    )));
                }
                st.store
                    .block(user, domain, &jids)
                    .await
                    .map_err(|e| store_error("storing a blocklist", &e))?;
                // §3.3: the newly blocked contacts see the user go offline. Sent before the cache
                // changes, while the delivery check still lets the user's stanzas reach them.
                let available: Vec<SessionHandle> =
                    req.core.registry.with_resources(&account, |l| {
                        l.iter()
                            .filter(|s| s.info.is_available())
                            .cloned()
                            .collect()
                    });
                for contact in added
                    .iter()
                    .filter_map(|j| Jid::parse(j).ok())
                    .filter(|j| j.node().is_some())
                {
                    // Only contacts that were receiving the user's presence learn anything; a
                    // stranger must not even see the user's resources.
                    if !st.receives_presence(user, domain, &contact).await {
                        continue;
                    }
                    for s in &available {
                        req.core.send_local_or_remote(
                            Element::new("presence", ns::CLIENT)
                                .with_attr("from", s.jid().as_str())
                                .with_attr("to", contact.as_str())
                                .with_attr("type", "unavailable"),
                        );
                    }
                }
                st.reload(&account).await;
                st.push(req.core, &account, &item_list("block", &jids));
                Ok(None)
            }
            _ => {
                // §3.4 and §3.5: items unblock those, no items unblock everyone.
                let jids = items(req.payload).map_err(bad_items)?;
                let unblocked = if jids.is_empty() {
                    st.store
                        .blocklist(user, domain)
                        .await
                        .map_err(|e| store_error("reading a blocklist", &e))?
                } else {
                    jids.clone()
                };
                st.store
                    .unblock(user, domain, &jids)
                    .await
                    .map_err(|e| store_error("storing a blocklist", &e))?;
                st.reload(&account).await;
                st.push(req.core, &account, &item_list("unblock", &jids));
                // §3.4: contacts entitled to the user's presence get it again. Presence belongs to
                // the roster module; a probe on such a contact's behalf makes it answer with the
                // user's current presence.
                for contact in unblocked
                    .iter()
                    .filter_map(|j| Jid::parse(j).ok())
                    .filter(|j| j.node().is_some())
                {
                    // A probe from a contact that is not subscribed would be answered with
                    // `unsubscribed` and cancel a pending request; such contacts get nothing.
                    if !st.receives_presence(user, domain, &contact).await {
                        continue;
                    }
                    let probe = Element::new("presence", ns::CLIENT)
                        .with_attr("from", contact.to_bare().as_str())
                        .with_attr("to", account.as_str())
                        .with_attr("type", "probe");
                    let _ = req.core.process(&Origin::Server, probe).await;
                }
                Ok(None)
            }
        }
    }
}

impl Stage for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        let st = &self.state;
        if st.nonempty.load(Ordering::Acquire) == 0 {
            return Verdict::Pass;
        }
        let Some(kind) = StanzaKind::of(stanza) else {
            return Verdict::Pass;
        };
        let Ok(Some(from)) = causerie_stanza::from_jid(stanza) else {
            return Verdict::Pass;
        };
        // A malformed `to` is the router's to refuse; no `to` is the sender's own account.
        let Ok(Some(to)) = causerie_stanza::to_jid(stanza) else {
            return Verdict::Pass;
        };
        let response = is_response(stanza, kind);
        let sender = from.to_bare();

        // The user addresses someone they block (§3.3, last rule).
        if ctx.origin.session().is_some()
            && !is_self_or_server(ctx.core, &sender, &to)
            && st.blocks(&sender, &to)
        {
            if response {
                return Verdict::Handled;
            }
            return Verdict::Reject(
                StanzaError::new(Cond::NotAcceptable)
                    .with_type(ErrorType::Cancel)
                    .with_app(Element::new("blocked", NS_ERRORS)),
            );
        }

        // Someone the addressed user blocks writes to them (§3.3, the three rules for inbound
        // stanzas).
        if to.node().is_some() && ctx.core.is_local_domain(to.domain()) {
            let owner = to.to_bare();
            if !is_self_or_server(ctx.core, &owner, &from) && st.blocks(&owner, &from) {
                return match kind {
                    StanzaKind::Presence => Verdict::Handled,
                    _ if response => Verdict::Handled,
                    _ => Verdict::Reject(StanzaError::new(Cond::ServiceUnavailable)),
                };
            }
        }
        Verdict::Pass
    }

    fn outbound(&self, core: &Core, to: &SessionHandle, stanza: &Arc<OutStanza>) -> bool {
        let st = &self.state;
        if st.nonempty.load(Ordering::Acquire) == 0 || stanza.kind.is_none() {
            return true;
        }
        // Errors reaching a session were generated by the server (blocked contacts' own errors
        // are stopped on the way in), such as the refusal of the user's stanza to a blocked JID.
        if causerie_stanza::is_error(&stanza.element) {
            return true;
        }
        let Some(Ok(from)) = stanza.element.attr("from").map(Jid::parse) else {
            return true;
        };
        let owner = to.jid().to_bare();
        if is_self_or_server(core, &owner, &from) {
            return true;
        }
        if st.blocks(&owner, &from) {
            return false;
        }
        // A local sender that blocks this user sends it nothing either (presence broadcasts).
        let sender = from.to_bare();
        !(from.node().is_some()
            && core.is_local_domain(from.domain())
            && st.blocks(&sender, &Jid::from(to.jid().clone())))
    }
}

/// IQ results and errors, and stanzas of type error: never answered with an error.
fn is_response(stanza: &Element, kind: StanzaKind) -> bool {
    if causerie_stanza::is_error(stanza) {
        return true;
    }
    kind == StanzaKind::Iq
        && !stanza
            .attr("type")
            .and_then(IqType::parse)
            .is_some_and(IqType::is_request)
}

/// The user's own addresses and the server's own domains are never blocked: a user who blocks
/// their own domain still reaches the server, and the server still reaches them.
fn is_self_or_server(core: &Core, account: &BareJid, other: &Jid) -> bool {
    other.to_bare() == *account
        || (other.node().is_none()
            && other.resource().is_none()
            && core.is_local_domain(other.domain()))
}

impl EventListener for Blocking {
    fn on_event(&self, core: &Arc<Core>, event: &Event<'_>) {
        let st = &self.state;
        match event {
            Event::SessionBound(s) => {
                let account = s.jid().to_bare();
                let created = {
                    let mut shard = st
                        .shard(&account)
                        .write()
                        .unwrap_or_else(|e| e.into_inner());
                    match shard.get(&account) {
                        Some(_) => false,
                        None => {
                            shard.insert(account.clone(), Arc::new(Cached::default()));
                            true
                        }
                    }
                };
                if created {
                    match tokio::runtime::Handle::try_current() {
                        Ok(rt) => {
                            let st = self.state.clone();
                            rt.spawn(async move { st.reload(&account).await });
                        }
                        Err(_) => {
                            tracing::warn!(jid = %account, "no runtime to load the blocklist on")
                        }
                    }
                }
            }
            Event::SessionEnded(s) => {
                st.interested
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&s.id());
                st.drop_cached(core, &s.jid().to_bare());
            }
            Event::SessionAvailable(_) | Event::SessionReleased(_) => {}
        }
    }
}
