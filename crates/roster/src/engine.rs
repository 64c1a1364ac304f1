//! Where roster and presence work runs: a fixed set of worker tasks ("shards"), each owning the
//! accounts whose bare JID hashes to it.
//!
//! Everything that reads or changes one account's roster or presence state runs on that account's
//! shard, in the order it was queued: roster gets and sets, the account's own presence, and every
//! stanza addressed to the account by a contact, local or remote. Two local accounts talk to each
//! other the way two servers would (RFC 6121 §3, §4): the sender's shard does the "user's server"
//! half of a rule and queues the stanza to the contact's shard, which does the "contact's server"
//! half. So the order in which one account sends things to another is the order in which they
//! are applied, no state is shared between shards, and no lock is held across a storage call.
//!
//! Each shard keeps, for the accounts that have sessions, the roster (so a presence broadcast
//! does not wait on the database) and per session the last broadcast presence and the entities
//! that got directed presence.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use causerie_core::{Core, Event, OutStanza, SessionHandle, flags};
use causerie_jid::{BareJid, FullJid, Jid};
use causerie_stanza::{PresenceType, StanzaError, ns};
use causerie_storage::Storage;
use causerie_storage::roster::{PendingSubscription, RosterItem, Subscription};
use causerie_xml::Element;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::RosterError;
use crate::items::{self, RosterChange};
use crate::shared::{self, Directory};
use crate::state::{self, SubKind, SubState};

/// Number of worker tasks. Accounts are spread over them by a hash of the bare JID.
pub const SHARDS: usize = 16;
/// Most jobs that stanzas from clients and remote servers may have waiting on one shard; past
/// that, new ones are refused with `resource-constraint` (follow-up work that jobs already
/// admitted create is never refused, so that the two halves of a rule are never split).
pub const SHARD_QUEUE_LIMIT: usize = 8192;

pub(crate) type IqReply = oneshot::Sender<Result<Option<Element>, StanzaError>>;

/// One unit of work for a shard.
pub(crate) enum Job {
    /// Presence from a bound session of a local account (already checked: known type, valid `to`).
    FromSession {
        session: SessionHandle,
        stanza: Element,
        ptype: PresenceType,
        to: Option<Jid>,
    },
    /// Presence addressed to a local account by anyone else.
    Inbound {
        to: Jid,
        from: Jid,
        ptype: PresenceType,
        stanza: Element,
    },
    /// Presence probes (RFC 6121 §4.3) from `prober` to local accounts of this shard. The answers
    /// go to `reply_to`; `quiet` skips the "unavailable" answer for accounts without sessions
    /// (probes the server makes for a local session's initial presence, whose client assumes
    /// unavailable anyway).
    Probe {
        contacts: Vec<BareJid>,
        prober: BareJid,
        reply_to: Jid,
        quiet: bool,
    },
    /// A presence broadcast for local contacts of this shard: one shared stanza.
    Deliver {
        recipients: Vec<BareJid>,
        out: Arc<OutStanza>,
    },
    RosterGet {
        owner: BareJid,
        ver: Option<String>,
        reply: IqReply,
    },
    RosterSet {
        owner: BareJid,
        change: RosterChange,
        reply: IqReply,
    },
    /// The session is gone (RFC 6121 §4.5.3 for an abrupt end).
    Ended { session: SessionHandle },
    /// The shared groups changed from `old` to `new` in a way that may concern `owner`, a local
    /// member with sessions: its interested resources get roster pushes, and presence starts or
    /// stops flowing with the contacts the groups added or took away.
    SharedChanged {
        owner: BareJid,
        old: Arc<Directory>,
        new: Arc<Directory>,
    },
}

pub(crate) fn shard_of(bare: &BareJid) -> usize {
    let mut h = DefaultHasher::new();
    bare.as_str().hash(&mut h);
    (h.finish() as usize) % SHARDS
}

struct ShardQueue {
    tx: mpsc::UnboundedSender<Job>,
    queued: AtomicUsize,
}

/// A job that could not be queued, and why.
pub(crate) struct Refused {
    pub(crate) error: RosterError,
    pub(crate) job: Box<Job>,
}

/// State and queues shared by the module's entry points and its workers.
pub(crate) struct Inner {
    pub(crate) storage: Storage,
    pub(crate) max_items: usize,
    pub(crate) max_directed: usize,
    shards: Vec<ShardQueue>,
    receivers: Mutex<Vec<mpsc::UnboundedReceiver<Job>>>,
    started: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    next_push: AtomicU64,
    /// The shared roster groups in force, replaced whole by [`Inner::reload_shared`].
    shared: RwLock<Arc<Directory>>,
    /// Reloads of the shared groups run one at a time, so that each one's changes are worked
    /// out against the directory the previous one left.
    reloading: tokio::sync::Mutex<()>,
}

impl Inner {
    pub(crate) fn new(storage: Storage, max_items: usize, max_directed: usize) -> Inner {
        let mut shards = Vec::with_capacity(SHARDS);
        let mut receivers = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            let (tx, rx) = mpsc::unbounded_channel();
            shards.push(ShardQueue {
                tx,
                queued: AtomicUsize::new(0),
            });
            receivers.push(rx);
        }
        Inner {
            storage,
            max_items,
            max_directed,
            shards,
            receivers: Mutex::new(receivers),
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            next_push: AtomicU64::new(1),
            shared: RwLock::new(Arc::new(Directory::default())),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The shared groups in force now.
    pub(crate) fn shared(&self) -> Arc<Directory> {
        self.shared
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the shared groups from the store and puts them in force; the local members they
    /// concern who have sessions now are told on their shards ([`Job::SharedChanged`]). Those
    /// without sessions see the groups at their next login.
    pub(crate) async fn reload_shared(
        self: &Arc<Self>,
        core: &Arc<Core>,
    ) -> Result<(), RosterError> {
        let _one_at_a_time = self.reloading.lock().await;
        let groups = self.storage.groups.groups().await?;
        let new = Arc::new(Directory::from_groups(groups));
        let old = std::mem::replace(
            &mut *self.shared.write().unwrap_or_else(|e| e.into_inner()),
            new.clone(),
        );
        for owner in Directory::changed_members(&old, &new) {
            if owner.node().is_none() || !core.is_local_domain(owner.domain()) {
                continue;
            }
            if !core.registry.with_resources(&owner, |l| !l.is_empty()) {
                continue;
            }
            let job = Job::SharedChanged {
                owner,
                old: old.clone(),
                new: new.clone(),
            };
            self.enqueue(core, job, false)?;
        }
        Ok(())
    }

    /// Starts the workers on the current runtime, once.
    fn ensure_started(self: &Arc<Self>, core: &Arc<Core>) -> Result<(), RosterError> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut receivers = self.receivers.lock().unwrap_or_else(|e| e.into_inner());
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| RosterError::NotRunning)?;
        for (i, rx) in receivers.drain(..).enumerate() {
            handle.spawn(run_shard(i, Arc::downgrade(core), Arc::downgrade(self), rx));
        }
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    fn shard_for(job: &Job) -> usize {
        match job {
            Job::FromSession { session, .. } | Job::Ended { session } => {
                shard_of(&session.jid().to_bare())
            }
            Job::Inbound { to, .. } => shard_of(&to.to_bare()),
            Job::RosterGet { owner, .. }
            | Job::RosterSet { owner, .. }
            | Job::SharedChanged { owner, .. } => shard_of(owner),
            // Batches are built per shard, so the first entry names it.
            Job::Probe { contacts, .. } => contacts.first().map_or(0, shard_of),
            Job::Deliver { recipients, .. } => recipients.first().map_or(0, shard_of),
        }
    }

    /// Queues a job. `admission` applies the queue limit (work caused by input from outside);
    /// follow-up work and session ends are always taken.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        core: &Arc<Core>,
        job: Job,
        admission: bool,
    ) -> Result<(), RosterError> {
        self.push_job(core, job, admission).map_err(|r| r.error)
    }

    /// Queues a job for a stanza from outside, giving the job back when it is refused.
    pub(crate) fn enqueue_checked(
        self: &Arc<Self>,
        core: &Arc<Core>,
        job: Job,
    ) -> Result<(), Refused> {
        self.push_job(core, job, true)
    }

    fn push_job(
        self: &Arc<Self>,
        core: &Arc<Core>,
        job: Job,
        admission: bool,
    ) -> Result<(), Refused> {
        if let Err(error) = self.ensure_started(core) {
            return Err(Refused {
                error,
                job: Box::new(job),
            });
        }
        let i = Self::shard_for(&job);
        let shard = &self.shards[i];
        if admission && shard.queued.load(Ordering::Acquire) >= SHARD_QUEUE_LIMIT {
            return Err(Refused {
                error: RosterError::Busy,
                job: Box::new(job),
            });
        }
        shard.queued.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(job)) = shard.tx.send(job) {
            shard.queued.fetch_sub(1, Ordering::AcqRel);
            self.finish_one();
            return Err(Refused {
                error: RosterError::NotRunning,
                job: Box::new(job),
            });
        }
        Ok(())
    }

    fn finish_one(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no job is queued or running.
    pub(crate) async fn settle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    fn push_id(&self) -> String {
        format!(
            "roster-push-{}",
            self.next_push.fetch_add(1, Ordering::Relaxed)
        )
    }
}

async fn run_shard(
    index: usize,
    core: Weak<Core>,
    inner: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut shard = Shard::default();
    while let Some(job) = rx.recv().await {
        let (Some(core), Some(inner)) = (core.upgrade(), inner.upgrade()) else {
            break;
        };
        let cx = Ctx { core, inner };
        shard.run(&cx, job).await;
        cx.inner.shards[index].queued.fetch_sub(1, Ordering::AcqRel);
        cx.inner.finish_one();
    }
}

struct Ctx {
    core: Arc<Core>,
    inner: Arc<Inner>,
}

/// A roster held while its owner has sessions.
struct CachedRoster {
    version: u64,
    items: BTreeMap<String, RosterItem>,
}

/// What a shard remembers of one session.
struct SessionPresence {
    jid: FullJid,
    /// The last broadcast available presence (RFC 6121 §4.3.2 answers probes with it); `None`
    /// while the session is unavailable.
    last: Option<Element>,
    /// Entities that got directed available presence and are not subscribed to the account
    /// (RFC 6121 §4.6.3: they get unavailable presence when the session goes away).
    directed: HashSet<Jid>,
}

/// A state change for one contact (see `Shard::save_state`).
struct StateChange<'a> {
    contact: &'a BareJid,
    /// The contact's item as it is now, if there is one.
    item: Option<RosterItem>,
    new: SubState,
    /// A new value for the pre-approval flag, or `None` to keep it.
    approved: Option<bool>,
    /// Whether to add the contact when it has no item.
    create: bool,
}

#[derive(Default)]
struct UserState {
    roster: Option<CachedRoster>,
    sessions: HashMap<u64, SessionPresence>,
}

#[derive(Default)]
struct Shard {
    users: HashMap<BareJid, UserState>,
}

fn account_parts(bare: &BareJid) -> Result<(&str, &str), RosterError> {
    match bare.node() {
        Some(node) => Ok((node, bare.domain())),
        None => Err(RosterError::NotAnAccount(bare.to_string())),
    }
}

/// A presence stanza the server generates on an account's behalf.
fn presence(kind: &str, from: &str, to: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", kind)
}

fn subscribers(roster: &CachedRoster) -> Vec<BareJid> {
    roster
        .items
        .values()
        .filter(|i| state::visible(i).has_from())
        .filter_map(|i| BareJid::parse(&i.jid).ok())
        .collect()
}

/// `list` and the shared-group contacts it lacks.
fn with_shared(mut list: Vec<BareJid>, shared: &[BareJid]) -> Vec<BareJid> {
    if shared.is_empty() {
        return list;
    }
    let have: HashSet<BareJid> = list.iter().cloned().collect();
    list.extend(shared.iter().filter(|j| !have.contains(*j)).cloned());
    list
}

/// The version the owner's interested resources are told with a push: the stored version of
/// its items and what its shared groups show it ([`shared::version`]).
fn versioned(dir: &Directory, owner: &BareJid, stored: u64) -> String {
    if dir.is_empty() {
        return stored.to_string();
    }
    shared::version(stored, &dir.contacts_of(owner))
}

fn publishers(roster: &CachedRoster) -> Vec<BareJid> {
    roster
        .items
        .values()
        .filter(|i| state::visible(i).has_to())
        .filter_map(|i| BareJid::parse(&i.jid).ok())
        .collect()
}

/// The stanza without its content: what an error reply needs (addresses, id, type).
fn addressing(stanza: &Element) -> Element {
    let mut shell = Element::new(stanza.name(), stanza.ns());
    for (k, v) in stanza.attrs() {
        shell.set_attr(k, v);
    }
    shell
}

/// The stored form of a pending request: serialized relative to its own namespace, so it can be
/// read back as a `jabber:client` stanza whatever stream it came in on.
fn serialize(stanza: &Element) -> String {
    let mut out = Vec::with_capacity(128);
    stanza.write_to(&mut out, stanza.ns());
    String::from_utf8_lossy(&out).into_owned()
}

impl Shard {
    async fn run(&mut self, cx: &Ctx, job: Job) {
        match job {
            Job::FromSession {
                session,
                stanza,
                ptype,
                to,
            } => {
                let owner = session.jid().to_bare();
                // A session that is gone (or replaced) while this waited cannot become available
                // again; its unavailable presence (with the client's last status) and its
                // subscription stanzas still count.
                let bound = cx
                    .core
                    .registry
                    .get(session.jid())
                    .is_some_and(|s| s.id() == session.id());
                if bound || ptype != PresenceType::Available {
                    let shell = addressing(&stanza);
                    if let Err(e) = self.session_presence(cx, &session, stanza, ptype, to).await {
                        if !matches!(
                            e,
                            RosterError::RosterFull { .. } | RosterError::TooManyDirected { .. }
                        ) {
                            tracing::warn!(jid = %session.jid(), error = %e, "presence from a session failed");
                        }
                        cx.core.bounce(&shell, e.to_stanza_error());
                    }
                }
                self.tidy(cx, &owner);
            }
            Job::Inbound {
                to,
                from,
                ptype,
                stanza,
            } => {
                let owner = to.to_bare();
                if let Err(e) = self.inbound(cx, &to, &from, ptype, stanza).await {
                    tracing::warn!(to = %to, from = %from, error = %e, "inbound presence failed");
                }
                self.tidy(cx, &owner);
            }
            Job::Probe {
                contacts,
                prober,
                reply_to,
                quiet,
            } => {
                for contact in contacts {
                    if let Err(e) = self.probe(cx, &contact, &prober, &reply_to, quiet).await {
                        tracing::warn!(to = %contact, from = %prober, error = %e, "presence probe failed");
                    }
                    self.tidy(cx, &contact);
                }
            }
            Job::Deliver { recipients, out } => {
                for r in &recipients {
                    deliver_to_available(cx, r, &out);
                }
            }
            Job::RosterGet { owner, ver, reply } => {
                let res = self.roster_get(cx, &owner, ver).await.map_err(|e| {
                    tracing::warn!(jid = %owner, error = %e, "roster get failed");
                    e.to_stanza_error()
                });
                let _ = reply.send(res);
                self.tidy(cx, &owner);
            }
            Job::RosterSet {
                owner,
                change,
                reply,
            } => {
                let res = self
                    .roster_set(cx, &owner, change)
                    .await
                    .map(|()| None)
                    .map_err(|e| {
                        if !matches!(e, RosterError::RosterFull { .. }) {
                            tracing::warn!(jid = %owner, error = %e, "roster set failed");
                        }
                        e.to_stanza_error()
                    });
                let _ = reply.send(res);
                self.tidy(cx, &owner);
            }
            Job::Ended { session } => {
                let owner = session.jid().to_bare();
                if let Err(e) = self.ended(cx, &session).await {
                    tracing::warn!(jid = %session.jid(), error = %e, "presence cleanup after session end failed");
                }
                self.tidy(cx, &owner);
            }
            Job::SharedChanged { owner, old, new } => {
                if let Err(e) = self.shared_changed(cx, &owner, &old, &new).await {
                    tracing::warn!(jid = %owner, error = %e, "applying a shared group change failed");
                }
                self.tidy(cx, &owner);
            }
        }
    }

    /// Forgets an account that has no session left here (its roster is read again when needed).
    fn tidy(&mut self, cx: &Ctx, owner: &BareJid) {
        let online = cx.core.registry.with_resources(owner, |l| !l.is_empty());
        if !online && self.users.get(owner).is_some_and(|u| u.sessions.is_empty()) {
            self.users.remove(owner);
        }
    }

    // ----- roster storage, through the cache -----

    async fn load(&mut self, cx: &Ctx, owner: &BareJid) -> Result<&mut CachedRoster, RosterError> {
        if self.users.get(owner).is_none_or(|u| u.roster.is_none()) {
            let (node, domain) = account_parts(owner)?;
            let (list, version) = cx.inner.storage.roster.roster(node, domain).await?;
            let items = list.into_iter().map(|i| (i.jid.clone(), i)).collect();
            self.users.entry(owner.clone()).or_default().roster =
                Some(CachedRoster { version, items });
        }
        self.users
            .get_mut(owner)
            .and_then(|u| u.roster.as_mut())
            .ok_or(RosterError::NotRunning)
    }

    async fn put(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        item: RosterItem,
    ) -> Result<u64, RosterError> {
        let (node, domain) = account_parts(owner)?;
        let version = cx
            .inner
            .storage
            .roster
            .put_item(node, domain, &item)
            .await?;
        if let Some(r) = self.users.get_mut(owner).and_then(|u| u.roster.as_mut()) {
            r.version = version;
            r.items.insert(item.jid.clone(), item);
        }
        Ok(version)
    }

    async fn remove(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        contact: &str,
    ) -> Result<Option<u64>, RosterError> {
        let (node, domain) = account_parts(owner)?;
        let version = cx
            .inner
            .storage
            .roster
            .remove_item(node, domain, contact)
            .await?;
        if let Some(r) = self.users.get_mut(owner).and_then(|u| u.roster.as_mut()) {
            r.items.remove(contact);
            if let Some(v) = version {
                r.version = v;
            }
        }
        Ok(version)
    }

    async fn has_pending(
        &self,
        cx: &Ctx,
        owner: &BareJid,
        contact: &BareJid,
    ) -> Result<bool, RosterError> {
        let (node, domain) = account_parts(owner)?;
        let list = cx.inner.storage.roster.pending_in(node, domain).await?;
        Ok(list.iter().any(|p| p.contact == contact.as_str()))
    }

    async fn drop_pending(
        &self,
        cx: &Ctx,
        owner: &BareJid,
        contact: &BareJid,
    ) -> Result<(), RosterError> {
        let (node, domain) = account_parts(owner)?;
        cx.inner
            .storage
            .roster
            .remove_pending_in(node, domain, contact.as_str())
            .await?;
        Ok(())
    }

    /// The contact's item, if any, and its Appendix A state. A request from a contact that is not
    /// in the roster is known only from the pending requests (RFC 6121 §3.1.3: the contact is not
    /// added to the roster before the user decides).
    async fn contact(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        contact: &BareJid,
    ) -> Result<(Option<RosterItem>, SubState), RosterError> {
        let item = self
            .load(cx, owner)
            .await?
            .items
            .get(contact.as_str())
            .cloned();
        match item {
            Some(i) => {
                let s = state::visible(&i);
                Ok((Some(i), s))
            }
            None => {
                let pending = self.has_pending(cx, owner, contact).await?;
                Ok((None, SubState::new(Subscription::None, false, pending)))
            }
        }
    }

    /// A new item for `contact`, if the roster has room for it.
    async fn new_item(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        contact: &BareJid,
    ) -> Result<RosterItem, RosterError> {
        let max = cx.inner.max_items;
        if self.load(cx, owner).await?.items.len() >= max {
            return Err(RosterError::RosterFull { max });
        }
        let pending_in = self.has_pending(cx, owner, contact).await?;
        Ok(RosterItem {
            jid: contact.to_string(),
            name: None,
            subscription: Subscription::None,
            pending_out: false,
            pending_in,
            approved: false,
            groups: Vec::new(),
        })
    }

    /// Stores the item with a new state and pushes it when what the client sees changed.
    async fn save_state(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        change: StateChange<'_>,
    ) -> Result<(), RosterError> {
        let StateChange {
            contact,
            item,
            new,
            approved,
            create,
        } = change;
        let mut item = match item {
            Some(i) => i,
            None if create => self.new_item(cx, owner, contact).await?,
            // Without an item only a pending request from the contact is recorded, and that is
            // kept with the pending requests.
            None => return Ok(()),
        };
        let before = item.clone();
        item.subscription = new.subscription;
        item.pending_out = new.pending_out;
        item.pending_in = new.pending_in;
        if let Some(a) = approved {
            item.approved = a;
        }
        if new.has_from() {
            // A pre-approval is used up once the contact is subscribed (§3.4).
            item.approved = false;
        }
        if item == before {
            return Ok(());
        }
        // What the client sees is the item merged with the shared groups': a change hidden by
        // them (a subscription under a shared `both`) is stored without a push.
        let dir = cx.inner.shared();
        let labels = dir.labels_between(owner, contact);
        let shown = shared::merged_or_own(&item, contact, &labels);
        let visible_change = items::item_element(&shown)
            != items::item_element(&shared::merged_or_own(&before, contact, &labels));
        let version = self.put(cx, owner, item).await?;
        if visible_change {
            push(
                cx,
                owner,
                &versioned(&dir, owner, version),
                items::item_element(&shown),
            );
        }
        Ok(())
    }

    // ----- presence from a local session -----

    async fn session_presence(
        &mut self,
        cx: &Ctx,
        session: &SessionHandle,
        stanza: Element,
        ptype: PresenceType,
        to: Option<Jid>,
    ) -> Result<(), RosterError> {
        let owner = session.jid().to_bare();
        // Presence to the account's own bare JID is the same as presence without `to`.
        let to = to.filter(|t| !(t.is_bare() && t.to_bare() == owner));
        let Some(to) = to else {
            return match ptype {
                PresenceType::Available | PresenceType::Unavailable => {
                    self.own_presence(cx, session, stanza, ptype).await
                }
                // Subscription management with oneself, probes of oneself and errors without an
                // addressee carry nothing to act on.
                _ => Ok(()),
            };
        };
        if let Some(kind) = SubKind::of(ptype) {
            if to.to_bare() == owner {
                return Ok(());
            }
            return self
                .outbound_subscription(cx, &owner, to.to_bare(), kind, stanza)
                .await;
        }
        match ptype {
            PresenceType::Probe => {
                let contact = to.to_bare();
                if cx.core.is_local_domain(contact.domain()) {
                    if contact.node().is_some() {
                        let job = Job::Probe {
                            contacts: vec![contact],
                            prober: owner,
                            reply_to: session.jid().clone().into(),
                            quiet: false,
                        };
                        cx.inner.enqueue(&cx.core, job, false)?;
                    }
                } else {
                    // RFC 6121 §4.3.1: probes carry the account's bare JID.
                    send(cx, presence("probe", owner.as_str(), contact.as_str()));
                }
                Ok(())
            }
            PresenceType::Available | PresenceType::Unavailable => {
                self.directed(cx, session, &owner, to, stanza, ptype).await
            }
            // Errors go where they are addressed, and are never answered (RFC 6120 §8.3.1).
            _ => {
                send(cx, stanza);
                Ok(())
            }
        }
    }

    /// RFC 6121 §4.2 (initial presence), §4.4 (later presence) and §4.5 (unavailable presence).
    async fn own_presence(
        &mut self,
        cx: &Ctx,
        session: &SessionHandle,
        mut stanza: Element,
        ptype: PresenceType,
    ) -> Result<(), RosterError> {
        let owner = session.jid().to_bare();
        let full = session.jid().clone();
        stanza.remove_attr("to");
        let available = ptype == PresenceType::Available;
        // RFC 6121 §4.7.2.3: an integer from -128 to +127, zero when absent.
        let priority = stanza
            .get_child("priority", stanza.ns())
            .and_then(|p| p.text().trim().parse::<i8>().ok())
            .unwrap_or(0);
        let user = self.users.entry(owner.clone()).or_default();
        let entry = user
            .sessions
            .entry(session.id())
            .or_insert_with(|| SessionPresence {
                jid: full.clone(),
                last: None,
                directed: HashSet::new(),
            });
        let was_available = entry.last.is_some();
        entry.last = available.then(|| stanza.clone());
        let directed: Vec<Jid> = if available {
            Vec::new()
        } else {
            entry.directed.drain().collect()
        };
        session
            .info
            .set_presence(available, if available { priority } else { 0 });
        if available {
            session.info.set_flag(flags::INITIAL_PRESENCE_SENT, true);
        }

        let out = OutStanza::new(stanza);
        // §4.2.2, §4.4.2, §4.5.2: the account's own available resources, the sender included.
        cx.core.registry.with_resources(&owner, |list| {
            for s in list
                .iter()
                .filter(|s| s.info.is_available() || s.id() == session.id())
            {
                cx.core.deliver(s, &out);
            }
        });

        let roster = self.load(cx, &owner).await?;
        // Members of the account's shared groups count as subscribed both ways.
        let shared_contacts = cx.inner.shared().contact_jids(&owner);
        let subs = with_shared(subscribers(roster), &shared_contacts);
        let pubs = if available && !was_available {
            with_shared(publishers(roster), &shared_contacts)
        } else {
            Vec::new()
        };
        if available || was_available {
            broadcast(cx, &out, &subs);
        }
        // §4.6.3: whoever got directed presence learns that the session is gone.
        for target in directed {
            send(cx, presence("unavailable", full.as_str(), target.as_str()));
        }
        if !available || was_available {
            return Ok(());
        }

        // Initial presence (§4.2.2, §4.3.1): probe the contacts the account is subscribed to.
        let mut local: HashMap<usize, Vec<BareJid>> = HashMap::new();
        for c in pubs {
            if cx.core.is_local_domain(c.domain()) {
                if c.node().is_some() {
                    local.entry(shard_of(&c)).or_default().push(c);
                }
            } else {
                send(cx, presence("probe", owner.as_str(), c.as_str()));
            }
        }
        for (_, contacts) in local {
            let job = Job::Probe {
                contacts,
                prober: owner.clone(),
                reply_to: full.clone().into(),
                quiet: true,
            };
            cx.inner.enqueue(&cx.core, job, false)?;
        }
        // The new resource learns about the account's other available resources.
        if let Some(user) = self.users.get(&owner) {
            for (id, other) in &user.sessions {
                if *id == session.id() {
                    continue;
                }
                if let Some(last) = &other.last {
                    let mut p = last.clone();
                    p.set_attr("to", full.as_str());
                    cx.core.deliver(session, &OutStanza::new(p));
                }
            }
        }
        // §3.1.3: requests nobody answered yet are delivered again each time the account
        // becomes available.
        let (node, domain) = account_parts(&owner)?;
        for p in cx.inner.storage.roster.pending_in(node, domain).await? {
            match Element::parse(p.stanza.as_bytes(), ns::CLIENT) {
                Ok(el) => cx.core.deliver(session, &OutStanza::new(el)),
                Err(e) => {
                    tracing::warn!(jid = %owner, contact = %p.contact, error = %e, "unreadable pending subscription request")
                }
            }
        }
        cx.core.emit(Event::SessionAvailable(session));
        Ok(())
    }

    /// RFC 6121 §4.6: presence addressed to one entity.
    async fn directed(
        &mut self,
        cx: &Ctx,
        session: &SessionHandle,
        owner: &BareJid,
        to: Jid,
        stanza: Element,
        ptype: PresenceType,
    ) -> Result<(), RosterError> {
        if to.to_bare() == *owner {
            // Another resource of the same account: no subscription is involved.
            send(cx, stanza);
            return Ok(());
        }
        if to.node().is_none() && cx.core.is_local_domain(to.domain()) {
            // Presence to a hosted domain itself carries nothing the server acts on.
            return Ok(());
        }
        let subscribed = self
            .load(cx, owner)
            .await?
            .items
            .get(to.to_bare().as_str())
            .is_some_and(|i| state::visible(i).has_from())
            || cx.inner.shared().shares(owner, &to.to_bare());
        if !subscribed {
            let max = cx.inner.max_directed;
            let user = self.users.entry(owner.clone()).or_default();
            let entry = user
                .sessions
                .entry(session.id())
                .or_insert_with(|| SessionPresence {
                    jid: session.jid().clone(),
                    last: None,
                    directed: HashSet::new(),
                });
            if ptype == PresenceType::Available {
                if !entry.directed.contains(&to) && entry.directed.len() >= max {
                    return Err(RosterError::TooManyDirected { max });
                }
                entry.directed.insert(to);
            } else {
                entry.directed.remove(&to);
            }
        }
        send(cx, stanza);
        Ok(())
    }

    /// RFC 6121 §3 from the user's side: Appendix A.2, plus pre-approval (§3.4).
    async fn outbound_subscription(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        contact: BareJid,
        kind: SubKind,
        mut stanza: Element,
    ) -> Result<(), RosterError> {
        let (item, s) = self.contact(cx, owner, &contact).await?;
        let approved = item.as_ref().is_some_and(|i| i.approved);
        let rule = state::outbound(kind, s);
        match kind {
            SubKind::Subscribed if !rule.route => {
                // §3.4.1: approving before being asked is a pre-approval, unless the contact is
                // subscribed already.
                if !s.has_from() && !approved {
                    self.save_state(
                        cx,
                        owner,
                        StateChange {
                            contact: &contact,
                            item,
                            new: s,
                            approved: Some(true),
                            create: true,
                        },
                    )
                    .await?;
                }
                return Ok(());
            }
            SubKind::Unsubscribed if !rule.route => {
                // §3.2.2 / §3.4: "unsubscribed" without a request or subscription to end cancels a
                // pre-approval.
                if approved {
                    self.save_state(
                        cx,
                        owner,
                        StateChange {
                            contact: &contact,
                            item,
                            new: s,
                            approved: Some(false),
                            create: false,
                        },
                    )
                    .await?;
                }
                return Ok(());
            }
            _ => {}
        }
        // §3.1.2, §3.2.2, §3.3.2, §3.1.5: the stanza leaves stamped with the bare JIDs.
        stanza.set_attr("from", owner.as_str());
        stanza.set_attr("to", contact.as_str());
        if kind == SubKind::Unsubscribed
            && s.has_from()
            && !cx.inner.shared().shares(owner, &contact)
        {
            // §3.2.2: the contact learns the account is unavailable while it is still subscribed
            // (not when a shared group keeps it seeing the account's presence).
            for last in self.available_presences(owner) {
                send(
                    cx,
                    presence("unavailable", last.0.as_str(), contact.as_str()),
                );
            }
        }
        if let Some(new) = rule.new {
            // §3.1.2: subscribing to a contact that is not in the roster adds it.
            let create = matches!(kind, SubKind::Subscribe | SubKind::Subscribed);
            self.save_state(
                cx,
                owner,
                StateChange {
                    contact: &contact,
                    item,
                    new,
                    approved: None,
                    create,
                },
            )
            .await?;
            if s.pending_in && !new.pending_in {
                self.drop_pending(cx, owner, &contact).await?;
            }
        }
        send(cx, stanza);
        if kind == SubKind::Subscribed {
            // §3.1.5: the new subscriber gets the account's current presence.
            for (jid, last) in self.available_presences(owner) {
                let mut p = last;
                p.set_attr("from", jid.as_str());
                p.set_attr("to", contact.as_str());
                send(cx, p);
            }
        }
        Ok(())
    }

    /// The last presence of each available session of the account known to this shard.
    fn available_presences(&self, owner: &BareJid) -> Vec<(FullJid, Element)> {
        let Some(user) = self.users.get(owner) else {
            return Vec::new();
        };
        let mut v: Vec<(FullJid, Element)> = user
            .sessions
            .values()
            .filter_map(|s| s.last.as_ref().map(|l| (s.jid.clone(), l.clone())))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    // ----- stanzas addressed to a local account -----

    async fn inbound(
        &mut self,
        cx: &Ctx,
        to: &Jid,
        from: &Jid,
        ptype: PresenceType,
        mut stanza: Element,
    ) -> Result<(), RosterError> {
        let owner = to.to_bare();
        match ptype {
            PresenceType::Available | PresenceType::Unavailable | PresenceType::Error => {
                // RFC 6121 §4.4.3, §4.5.3, §4.6.3: to every available resource, or to the one
                // addressed (RFC 6121 §8.5.3.2.1: nothing if that resource is gone).
                let out = OutStanza::new(stanza);
                match to.clone().try_into_full() {
                    Ok(full) => {
                        if let Some(s) = cx.core.registry.get(&full) {
                            cx.core.deliver(&s, &out);
                        }
                    }
                    Err(_) => deliver_to_available(cx, &owner, &out),
                }
                Ok(())
            }
            PresenceType::Probe => self.probe(cx, &owner, &from.to_bare(), from, false).await,
            _ => {
                let Some(kind) = SubKind::of(ptype) else {
                    return Ok(());
                };
                let contact = from.to_bare();
                if contact == owner {
                    return Ok(());
                }
                // Subscription stanzas are between bare JIDs (RFC 6121 §3; §8.5.3.2.1 for a full
                // `to`).
                stanza.set_attr("from", contact.as_str());
                stanza.set_attr("to", owner.as_str());
                self.inbound_subscription(cx, &owner, contact, kind, stanza)
                    .await
            }
        }
    }

    /// RFC 6121 §3 from the contact's side: Appendix A.3, plus pre-approval (§3.4).
    async fn inbound_subscription(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        contact: BareJid,
        kind: SubKind,
        stanza: Element,
    ) -> Result<(), RosterError> {
        let (node, domain) = account_parts(owner)?;
        if !cx.inner.storage.users.user_exists(node, domain).await? {
            // §3.1.3: a request to an account that does not exist is answered with
            // "unsubscribed"; the other types are dropped.
            if kind == SubKind::Subscribe {
                send(
                    cx,
                    presence("unsubscribed", owner.as_str(), contact.as_str()),
                );
            }
            return Ok(());
        }
        let (item, s) = self.contact(cx, owner, &contact).await?;
        let approved = item.as_ref().is_some_and(|i| i.approved);
        if kind == SubKind::Subscribe && approved && !s.has_from() && !s.pending_in {
            // §3.4.2: a pre-approved request is approved by the server at once.
            let new = SubState::new(
                if s.has_to() {
                    Subscription::Both
                } else {
                    Subscription::From
                },
                s.pending_out,
                false,
            );
            self.save_state(
                cx,
                owner,
                StateChange {
                    contact: &contact,
                    item,
                    new,
                    approved: Some(false),
                    create: false,
                },
            )
            .await?;
            send(cx, presence("subscribed", owner.as_str(), contact.as_str()));
            for (jid, last) in self.available_presences(owner) {
                let mut p = last;
                p.set_attr("from", jid.as_str());
                p.set_attr("to", contact.as_str());
                send(cx, p);
            }
            return Ok(());
        }
        let rule = state::inbound(kind, s);
        if let Some(new) = rule.new {
            self.save_state(
                cx,
                owner,
                StateChange {
                    contact: &contact,
                    item,
                    new,
                    approved: None,
                    create: false,
                },
            )
            .await?;
            if kind == SubKind::Subscribe && new.pending_in {
                self.keep_pending(cx, owner, &contact, &stanza).await?;
            }
            if s.pending_in && !new.pending_in {
                self.drop_pending(cx, owner, &contact).await?;
            }
        }
        if rule.deliver {
            let out = OutStanza::new(stanza);
            match kind {
                // §3.1.3: requests go to the available resources (and wait for the others).
                SubKind::Subscribe => deliver_to_available(cx, owner, &out),
                // §3.1.6, §3.2.3, §3.3.3: the other notifications go to the interested ones.
                _ => deliver_to_interested(cx, owner, &out),
            }
        }
        if kind == SubKind::Unsubscribe
            && s.has_from()
            && !cx.inner.shared().shares(owner, &contact)
        {
            // §3.3.3: the former subscriber learns the account is unavailable (unless a shared
            // group keeps it seeing the account's presence).
            for (jid, _) in self.available_presences(owner) {
                send(cx, presence("unavailable", jid.as_str(), contact.as_str()));
            }
        }
        if let Some(reply) = rule.auto_reply {
            send(cx, presence(reply.name(), owner.as_str(), contact.as_str()));
        }
        Ok(())
    }

    /// Keeps a request for the next time the account becomes available (§3.1.3). The number of
    /// requests kept is bounded by the roster size limit; past it, requests are still delivered
    /// to the available resources but not kept.
    async fn keep_pending(
        &self,
        cx: &Ctx,
        owner: &BareJid,
        contact: &BareJid,
        stanza: &Element,
    ) -> Result<(), RosterError> {
        let (node, domain) = account_parts(owner)?;
        let store = &cx.inner.storage.roster;
        if store.pending_in(node, domain).await?.len() >= cx.inner.max_items {
            tracing::warn!(jid = %owner, contact = %contact, "too many pending subscription requests, not keeping this one");
            return Ok(());
        }
        let p = PendingSubscription {
            contact: contact.to_string(),
            stanza: serialize(stanza),
        };
        store.add_pending_in(node, domain, &p).await?;
        Ok(())
    }

    /// RFC 6121 §4.3.2: a probe of `owner` by `prober`.
    async fn probe(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        prober: &BareJid,
        reply_to: &Jid,
        quiet: bool,
    ) -> Result<(), RosterError> {
        if owner == prober {
            return Ok(());
        }
        let (node, domain) = account_parts(owner)?;
        let exists = cx.inner.storage.users.user_exists(node, domain).await?;
        let subscribed = exists
            && (self
                .load(cx, owner)
                .await?
                .items
                .get(prober.as_str())
                .is_some_and(|i| state::visible(i).has_from())
                || cx.inner.shared().shares(owner, prober));
        if !subscribed {
            // The prober's server thinks it is subscribed and is not: "unsubscribed" lets it
            // correct its roster (§4.3.2, as for a cancelled subscription in §3.2).
            send(
                cx,
                presence("unsubscribed", owner.as_str(), prober.as_str()),
            );
            return Ok(());
        }
        let presences = self.available_presences(owner);
        if presences.is_empty() {
            if !quiet {
                send(
                    cx,
                    presence("unavailable", owner.as_str(), reply_to.as_str()),
                );
            }
            return Ok(());
        }
        for (jid, last) in presences {
            let mut p = last;
            p.set_attr("from", jid.as_str());
            p.set_attr("to", reply_to.as_str());
            send(cx, p);
        }
        Ok(())
    }

    // ----- jabber:iq:roster -----

    /// RFC 6121 §2.1.3 and §2.6.3: the roster, or an empty result when the client's copy is
    /// current.
    async fn roster_get(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        ver: Option<String>,
    ) -> Result<Option<Element>, RosterError> {
        let shared_contacts = cx.inner.shared().contacts_of(owner);
        let roster = self.load(cx, owner).await?;
        let version = shared::version(roster.version, &shared_contacts);
        if ver.as_deref() == Some(version.as_str()) {
            return Ok(None);
        }
        // The own items and those of the shared groups, merged where both name a contact, in
        // JID order.
        let mut shown: BTreeMap<&str, Element> = BTreeMap::new();
        for (jid, item) in &roster.items {
            let el = match shared_contacts.get(jid) {
                Some((contact, labels)) => {
                    items::item_element(&shared::merged(Some(item), contact, labels))
                }
                None => items::item_element(item),
            };
            shown.insert(jid, el);
        }
        for (jid, (contact, labels)) in &shared_contacts {
            if !roster.items.contains_key(jid) {
                shown.insert(
                    jid,
                    items::item_element(&shared::merged(None, contact, labels)),
                );
            }
        }
        Ok(Some(items::query(&version, shown.into_values())))
    }

    /// RFC 6121 §2.3 (add), §2.4 (update), §2.5 (remove).
    async fn roster_set(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        change: RosterChange,
    ) -> Result<(), RosterError> {
        match change {
            RosterChange::Update { jid, name, groups } => {
                let existing = self.load(cx, owner).await?.items.get(jid.as_str()).cloned();
                let mut item = match existing {
                    Some(i) => i,
                    None => self.new_item(cx, owner, &jid).await?,
                };
                item.name = name;
                item.groups = groups;
                let version = self.put(cx, owner, item.clone()).await?;
                let dir = cx.inner.shared();
                let labels = dir.labels_between(owner, &jid);
                let shown = shared::merged_or_own(&item, &jid, &labels);
                push(
                    cx,
                    owner,
                    &versioned(&dir, owner, version),
                    items::item_element(&shown),
                );
                Ok(())
            }
            RosterChange::Remove { jid } => {
                let dir = cx.inner.shared();
                let labels = dir.labels_between(owner, &jid);
                let roster = self.load(cx, owner).await?;
                let Some(item) = roster.items.get(jid.as_str()).cloned() else {
                    if labels.is_empty() {
                        return Err(RosterError::NotInRoster);
                    }
                    // An item of a shared group stays, as ejabberd's shared roster keeps it:
                    // the interested resources are shown it again.
                    let version = versioned(&dir, owner, roster.version);
                    let shown = shared::merged(None, &jid, &labels);
                    push(cx, owner, &version, items::item_element(&shown));
                    return Ok(());
                };
                let s = state::visible(&item);
                if let Some(version) = self.remove(cx, owner, jid.as_str()).await? {
                    // The account's own part goes; what a shared group shows stays.
                    let el = if labels.is_empty() {
                        items::removed_element(jid.as_str())
                    } else {
                        items::item_element(&shared::merged(None, &jid, &labels))
                    };
                    push(cx, owner, &versioned(&dir, owner, version), el);
                }
                // §2.5.2: the subscriptions end with the item, in both directions.
                if s.has_to() || s.pending_out {
                    send(cx, presence("unsubscribe", owner.as_str(), jid.as_str()));
                }
                if s.has_from() && labels.is_empty() {
                    for (full, _) in self.available_presences(owner) {
                        send(cx, presence("unavailable", full.as_str(), jid.as_str()));
                    }
                }
                if s.has_from() || s.pending_in {
                    send(cx, presence("unsubscribed", owner.as_str(), jid.as_str()));
                }
                if s.pending_in {
                    self.drop_pending(cx, owner, &jid).await?;
                }
                Ok(())
            }
        }
    }

    /// The shared groups changed from `old` to `new`: for each contact they add, take away or
    /// label differently for `owner`, a roster push of the item as it is now (RFC 6121 §2.1.6;
    /// `subscription='remove'` when nothing is left of it), with the version of the new state.
    /// Presence then starts or stops flowing as it does when a subscription is approved
    /// (§3.1.5) or cancelled (§3.2.2, §3.3.3), in the directions the account's own item does not
    /// already cover. A local contact does the same from its side on its own shard; for a remote
    /// one, this side also probes it (§4.3.1) or tells the account it is gone.
    async fn shared_changed(
        &mut self,
        cx: &Ctx,
        owner: &BareJid,
        old: &Directory,
        new: &Directory,
    ) -> Result<(), RosterError> {
        if !cx.core.registry.with_resources(owner, |l| !l.is_empty()) {
            // It sees the groups in force at its next login.
            return Ok(());
        }
        let before = old.contacts_of(owner);
        let after = new.contacts_of(owner);
        let changed: Vec<(BareJid, bool, Option<shared::Labels>)> = before
            .iter()
            .filter(|(jid, (_, labels))| after.get(*jid).is_none_or(|(_, l)| l != labels))
            .map(|(jid, (contact, _))| {
                (
                    contact.clone(),
                    true,
                    after.get(jid).map(|(_, l)| l.clone()),
                )
            })
            .chain(
                after
                    .iter()
                    .filter(|(jid, _)| !before.contains_key(*jid))
                    .map(|(_, (contact, labels))| (contact.clone(), false, Some(labels.clone()))),
            )
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let presences = self.available_presences(owner);
        let roster = self.load(cx, owner).await?;
        let version = shared::version(roster.version, &after);
        let own: HashMap<String, RosterItem> = changed
            .iter()
            .filter_map(|(c, _, _)| {
                roster
                    .items
                    .get(c.as_str())
                    .map(|i| (c.to_string(), i.clone()))
            })
            .collect();
        for (contact, was_shared, labels) in changed {
            let mine = own.get(contact.as_str());
            let el = match (&labels, mine) {
                (Some(labels), _) => items::item_element(&shared::merged(mine, &contact, labels)),
                (None, Some(item)) => items::item_element(item),
                (None, None) => items::removed_element(contact.as_str()),
            };
            push(cx, owner, &version, el);
            let s = mine.map_or(SubState::NONE, state::visible);
            let remote = !cx.core.is_local_domain(contact.domain());
            match (was_shared, labels.is_some()) {
                (false, true) => {
                    if !s.has_from() {
                        for (full, last) in &presences {
                            let mut p = last.clone();
                            p.set_attr("from", full.as_str());
                            p.set_attr("to", contact.as_str());
                            send(cx, p);
                        }
                    }
                    if remote && !s.has_to() && !presences.is_empty() {
                        send(cx, presence("probe", owner.as_str(), contact.as_str()));
                    }
                }
                (true, false) => {
                    if !s.has_from() {
                        for (full, _) in &presences {
                            send(cx, presence("unavailable", full.as_str(), contact.as_str()));
                        }
                    }
                    if remote && !s.has_to() {
                        let gone = Element::new("presence", ns::CLIENT)
                            .with_attr("from", contact.as_str())
                            .with_attr("to", owner.as_str())
                            .with_attr("type", "unavailable");
                        deliver_to_available(cx, owner, &OutStanza::new(gone));
                    }
                }
                // Only the labels changed.
                _ => {}
            }
        }
        Ok(())
    }

    /// RFC 6121 §4.5.3 / §4.6.3: a session ended without (or after) unavailable presence.
    async fn ended(&mut self, cx: &Ctx, session: &SessionHandle) -> Result<(), RosterError> {
        let owner = session.jid().to_bare();
        let Some(user) = self.users.get_mut(&owner) else {
            return Ok(());
        };
        let Some(gone) = user.sessions.remove(&session.id()) else {
            return Ok(());
        };
        // A session that replaced this one under the same resource speaks for it now.
        let replaced = user
            .sessions
            .values()
            .any(|s| s.jid == gone.jid && s.last.is_some());
        for target in &gone.directed {
            send(
                cx,
                presence("unavailable", gone.jid.as_str(), target.as_str()),
            );
        }
        if gone.last.is_some() && !replaced {
            let p = Element::new("presence", ns::CLIENT)
                .with_attr("from", gone.jid.as_str())
                .with_attr("type", "unavailable");
            let shared_contacts = cx.inner.shared().contact_jids(&owner);
            let subs = with_shared(subscribers(self.load(cx, &owner).await?), &shared_contacts);
            broadcast(cx, &OutStanza::new(p), &subs);
        }
        Ok(())
    }
}

/// Sends a stanza the module produced to its `to`: a local account through that account's shard
/// (so it is applied in order with everything else sent to it), anything else through the core.
fn send(cx: &Ctx, stanza: Element) {
    let to = match causerie_stanza::to_jid(&stanza) {
        Ok(Some(to)) => to,
        _ => return,
    };
    if !cx.core.is_local_domain(to.domain()) {
        cx.core.send_local_or_remote(stanza);
        return;
    }
    if to.node().is_none() {
        // Presence to a hosted domain itself carries nothing the server acts on.
        return;
    }
    let (Ok(Some(from)), Some(ptype)) = (
        causerie_stanza::from_jid(&stanza),
        PresenceType::of(&stanza),
    ) else {
        return;
    };
    if let Err(e) = cx.inner.enqueue(
        &cx.core,
        Job::Inbound {
            to,
            from,
            ptype,
            stanza,
        },
        false,
    ) {
        tracing::warn!(error = %e, "could not queue presence for a local account");
    }
}

/// A presence broadcast: local contacts share one stanza (without `to`), grouped per shard;
/// remote contacts each get a copy addressed to them.
fn broadcast(cx: &Ctx, out: &Arc<OutStanza>, contacts: &[BareJid]) {
    let mut local: HashMap<usize, Vec<BareJid>> = HashMap::new();
    for c in contacts {
        if cx.core.is_local_domain(c.domain()) {
            if c.node().is_some() {
                local.entry(shard_of(c)).or_default().push(c.clone());
            }
        } else {
            let mut el = out.element.clone();
            el.set_attr("to", c.as_str());
            cx.core.send_local_or_remote(el);
        }
    }
    for (_, recipients) in local {
        if let Err(e) = cx.inner.enqueue(
            &cx.core,
            Job::Deliver {
                recipients,
                out: out.clone(),
            },
            false,
        ) {
            tracing::warn!(error = %e, "could not queue a presence broadcast");
        }
    }
}

fn deliver_to_available(cx: &Ctx, owner: &BareJid, out: &Arc<OutStanza>) {
    cx.core.registry.with_resources(owner, |list| {
        for s in list.iter().filter(|s| s.info.is_available()) {
            cx.core.deliver(s, out);
        }
    });
}

/// RFC 6121 §3.1.6, §3.2.3, §3.3.3: subscription notifications go to the interested resources
/// (§2.1.6: those that asked for the roster), and to the available ones so that no client that
/// shows presence misses them.
fn deliver_to_interested(cx: &Ctx, owner: &BareJid, out: &Arc<OutStanza>) {
    cx.core.registry.with_resources(owner, |list| {
        for s in list
            .iter()
            .filter(|s| s.info.flag(flags::ROSTER_REQUESTED) || s.info.is_available())
        {
            cx.core.deliver(s, out);
        }
    });
}

/// RFC 6121 §2.1.6: a roster push to every interested resource, with the new version (§2.6).
fn push(cx: &Ctx, owner: &BareJid, version: &str, item: Element) {
    let query = items::query(version, [item]);
    cx.core.registry.with_resources(owner, |list| {
        for s in list.iter().filter(|s| s.info.flag(flags::ROSTER_REQUESTED)) {
            let iq = Element::new("iq", ns::CLIENT)
                .with_attr("type", "set")
                .with_attr("id", cx.inner.push_id())
                .with_attr("to", s.jid().as_str())
                .with_child(query.clone());
            cx.core.deliver(s, &OutStanza::new(iq));
        }
    });
}
