//! The compliance engine as a module of the core: a pipeline stage that evaluates every message
//! against the rules in force and carries out their actions, a task that writes evidence in
//! order, and a task that reloads the rules file when it changes.
//!
//! Order of the actions on one message: the rules are evaluated on the message as received;
//! `capture` keeps it exactly so (before any masking); `mask` replaces the matched text before
//! delivery, so every copy made later (offline storage, carbons, archives) is masked; `block`,
//! `quarantine` and `terminate` stop it (a terminated sender's stream ends with
//! `<policy-violation/>`); `warn` explains to the sender, `alert` tells the security officers
//! (an XMPP message and an audit record), `log` writes a log line. Nothing else of a message is
//! kept: the conversation context (the last messages of the same pair of users) lives in memory
//! only and enters evidence only with a captured message.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use causerie_core::{Core, Drain, Module, ModuleRegistry, Origin, Stage, StageContext, Verdict};
use causerie_jid::{BareJid, Jid};
use causerie_stanza::{
    MessageType, StanzaError, StanzaErrorCondition as Cond, StreamError, StreamErrorCondition as SE,
};
use causerie_storage::{AuditStore, EvidenceStore, NewAuditEvent, Storage, StoreError, UserStore};
use causerie_xml::Element;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::engine::{Hit, PeerClass, RuleSet, Side, View, mask};
use super::evidence::{self, EvidenceFields};
use super::lock;
use super::report;
use super::review::{self, Reviews};
use super::rules::{self, Action, Path, Rule, RuleError};
use super::seal::{self, OfficerPublic};
use super::webhook::{AlertEvent, Webhook, WebhookOptions, WebhookStats};
use crate::gate::wire::from_policy_address;
use crate::keys::ServerKey;

/// Runs after the usage-policy gate (7), before blocking (20) and everything that copies a
/// message.
pub const STAGE_PRIORITY: i32 = 15;
/// The namespace of the application condition of a blocked message.
pub const NS: &str = "urn:causerie:compliance:0";
const NS_OOB: &str = "jabber:x:oob";
/// Conversations whose recent messages are kept for context, at most.
const MAX_CONVERSATIONS: usize = 10_000;

/// The engine's settings; the server maps `[compliance]` onto them.
#[derive(Debug, Clone)]
pub struct ComplianceOptions {
    pub enabled: bool,
    pub rules_file: PathBuf,
    /// How often the rules file is checked for changes.
    pub reload_interval: Duration,
    /// Bare JIDs of the security officers who receive alerts.
    pub officers: Vec<String>,
    /// Names the `project` detector looks for.
    pub project_names: Vec<String>,
    /// Messages of the same conversation kept with a captured one.
    pub context_messages: usize,
    /// Localpart of the address that writes to users (the usage-policy address).
    pub policy_localpart: String,
    /// The compliance officer's key: when set, every evidence payload is stored sealed to it
    /// ([`seal`](super::seal)), and only the officer's secret key reads it.
    pub seal_to: Option<OfficerPublic>,
    /// Where alerts are also posted as JSON ([`webhook`](super::webhook)).
    pub alert_webhook: Option<WebhookOptions>,
}

/// Reads and compiles a rules file; a missing file is an empty set.
pub fn load(path: &std::path::Path, projects: &[String]) -> Result<RuleSet, Vec<RuleError>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            vec![RuleError {
                rule: String::new(),
                field: String::new(),
                reason: format!("{}: not UTF-8 text", path.display()),
                line: None,
            }]
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RuleSet::empty()),
        Err(e) => {
            return Err(vec![RuleError {
                rule: String::new(),
                field: String::new(),
                reason: format!("{}: {e}", path.display()),
                line: None,
            }]);
        }
    };
    RuleSet::compile(rules::parse(&text)?, projects)
}

/// The last messages of a pair of users, and when the last one passed.
type Conversation = (Instant, VecDeque<Remembered>);

/// A message kept for the context of evidence: its addresses, type, id and first body. Only
/// what a reader of the evidence needs is copied, into buffers reused from the message it
/// replaces; it is written as XML only when evidence asks for it, which is rare.
#[derive(Default)]
struct Remembered {
    from: String,
    to: String,
    kind: String,
    id: String,
    body: String,
}

impl Remembered {
    fn fill(&mut self, stanza: &Element) {
        for (field, name) in [
            (&mut self.from, "from"),
            (&mut self.to, "to"),
            (&mut self.kind, "type"),
            (&mut self.id, "id"),
        ] {
            field.clear();
            field.push_str(stanza.attr(name).unwrap_or(""));
        }
        self.body.clear();
        if let Some(b) = stanza.get_child("body", stanza.ns()) {
            self.body.push_str(&b.text_ref());
        }
    }

    fn to_xml(&self) -> String {
        let mut m = Element::new("message", causerie_stanza::ns::CLIENT);
        for (name, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("type", &self.kind),
            ("id", &self.id),
        ] {
            if !value.is_empty() {
                m.set_attr(name, value.as_str());
            }
        }
        m.push_child(
            Element::new("body", causerie_stanza::ns::CLIENT).with_text(self.body.as_str()),
        );
        m.to_xml()
    }
}

/// A record waiting to be chained, signed and stored.
struct Draft {
    fields: EvidenceFields,
    payload: String,
    /// Told the record's sequence number once it is stored (for the alert webhook).
    stored: Option<oneshot::Sender<i64>>,
    /// The quarantined message as received: the record is then pending review and keeps it
    /// (unsealed) for delivery once released.
    held: Option<String>,
}

struct Inner {
    opts: ComplianceOptions,
    rules: RwLock<Arc<RuleSet>>,
    /// The rules file as last read: modification time and length.
    stamp: Mutex<Option<(SystemTime, u64)>>,
    audit: Arc<dyn AuditStore>,
    evidence: mpsc::UnboundedSender<Draft>,
    /// Drafts not yet stored, and a wake-up when that count reaches zero.
    pending: AtomicUsize,
    idle: Notify,
    /// Per (user, rule id): when the rule fired for the user, for escalation.
    fired: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
    /// Per sender: when their recent messages were sent, for `rate` rules.
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Per pair of users: the last messages, serialized, for the context of evidence.
    context: Mutex<HashMap<(String, String), Conversation>>,
    /// Alerts also posted over HTTP.
    webhook: Option<Webhook>,
    /// Where `terminate` with `lock_minutes` locks accounts.
    users: Arc<dyn UserStore>,
    /// The review decisions the server carries out.
    reviews: Arc<Reviews>,
}

/// The compliance module. Create it inside the Tokio runtime (it starts its writer task).
pub struct Compliance {
    inner: Arc<Inner>,
}

impl Compliance {
    /// Loads the rules; `Err` lists every problem of the file, which is refused whole.
    pub fn new(
        storage: &Storage,
        key: ServerKey,
        opts: ComplianceOptions,
    ) -> Result<Compliance, Vec<RuleError>> {
        let set = if opts.enabled {
            load(&opts.rules_file, &opts.project_names)?
        } else {
            RuleSet::empty()
        };
        let stamp = file_stamp(&opts.rules_file);
        let (tx, rx) = mpsc::unbounded_channel();
        let webhook = match &opts.alert_webhook {
            Some(w) if opts.enabled => {
                let mut w = w.clone();
                // Sealed evidence means that only the officer's key reads messages.
                w.include_text &= opts.seal_to.is_none();
                Some(Webhook::start(w))
            }
            _ => None,
        };
        let reviews = Arc::new(Reviews::new(storage, opts.policy_localpart.clone()));
        let inner = Arc::new(Inner {
            opts,
            rules: RwLock::new(Arc::new(set)),
            stamp: Mutex::new(stamp),
            audit: storage.audit.clone(),
            evidence: tx,
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            fired: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
            context: Mutex::new(HashMap::new()),
            webhook,
            users: storage.users.clone(),
            reviews,
        });
        tokio::spawn(write_evidence(
            Arc::downgrade(&inner),
            rx,
            storage.evidence.clone(),
            key,
            inner.opts.seal_to,
        ));
        if inner.opts.enabled {
            tokio::spawn(watch_rules(Arc::downgrade(&inner)));
        }
        Ok(Compliance { inner })
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.inner.rules()
    }

    /// Reads the rules file again now; the rules in force stay when it is invalid.
    pub fn reload(&self) -> Result<usize, Vec<RuleError>> {
        self.inner.reload()
    }

    /// What the alert webhook did so far; `None` without one.
    pub fn webhook_stats(&self) -> Option<WebhookStats> {
        self.inner.webhook.as_ref().map(Webhook::stats)
    }
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Inner {
    fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn reload(&self) -> Result<usize, Vec<RuleError>> {
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = file_stamp(&self.opts.rules_file);
        let outcome = load(&self.opts.rules_file, &self.opts.project_names);
        let (result, outcome_word, detail) = match outcome {
            Ok(set) => {
                let n = set.rules().len();
                *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                tracing::info!(rules = n, file = %self.opts.rules_file.display(), "compliance rules loaded");
                (Ok(n), "ok", format!("{n} rules in force"))
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(file = %self.opts.rules_file.display(), "compliance rules refused, the previous ones stay in force: {p}");
                }
                let detail = problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                (Err(problems), "refused", detail)
            }
        };
        self.audit_event("compliance.rules.reload", "", outcome_word, detail);
        result
    }

    fn audit_event(&self, action: &str, subject: &str, outcome: &str, detail: String) {
        let event = NewAuditEvent {
            at: now_secs(),
            actor: "compliance".to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            outcome: outcome.to_owned(),
            detail,
            remote_addr: None,
        };
        let store = self.audit.clone();
        tokio::spawn(async move {
            if let Err(e) = store.append(&event).await {
                tracing::warn!(error = %e, "cannot write an audit record");
            }
        });
    }

    fn queue_evidence(&self, draft: Draft) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        crate::metrics::evidence_queued();
        if self.evidence.send(draft).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            tracing::error!("the evidence writer has stopped; a record was not kept");
        }
    }

    /// Whether the sender went over a rate, counting this message.
    fn over_rate(&self, sender: &str, rate: rules::Rate, now: Instant, longest: Duration) -> bool {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let times = sent.entry(sender.to_owned()).or_default();
        let window = Duration::from_secs(u64::from(rate.per_secs));
        // Counted once per message: the last entry is this message's when several rate rules
        // look at it.
        if times.back() != Some(&now) {
            times.push_back(now);
        }
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > longest)
        {
            times.pop_front();
        }
        let recent = times
            .iter()
            .filter(|t| now.duration_since(**t) <= window)
            .count();
        recent > rate.messages as usize
    }

    /// The actions for this hit, escalated by how often the rule fired for this user, and that
    /// count (within the longest escalation window; 0 for a rule without escalation).
    fn actions_for(&self, rule: &Rule, subject: &str, now: Instant) -> (Vec<Action>, usize) {
        if rule.escalate.is_empty() {
            return (rule.actions.clone(), 0);
        }
        let longest = rule
            .escalate
            .iter()
            .map(|s| Duration::from_secs(u64::from(s.within_secs)))
            .max()
            .unwrap_or_default();
        let mut fired = self.fired.lock().unwrap_or_else(|e| e.into_inner());
        let times = fired
            .entry((subject.to_owned(), rule.id.clone()))
            .or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > longest)
        {
            times.pop_front();
        }
        let mut actions = rule.actions.clone();
        for step in &rule.escalate {
            let window = Duration::from_secs(u64::from(step.within_secs));
            let count = times
                .iter()
                .filter(|t| now.duration_since(**t) <= window)
                .count();
            if count >= step.after as usize {
                actions = step.actions.clone();
            }
        }
        (actions, times.len())
    }

    fn remember(&self, a: &str, b: &str, stanza: &Element) {
        let k = self.opts.context_messages;
        if k == 0 {
            return;
        }
        let key = if a <= b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        };
        let now = Instant::now();
        let mut ctx = self.context.lock().unwrap_or_else(|e| e.into_inner());
        if ctx.len() >= MAX_CONVERSATIONS && !ctx.contains_key(&key) {
            // Forget the quietest tenth.
            let mut ages: Vec<Instant> = ctx.values().map(|(t, _)| *t).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 10];
            ctx.retain(|_, (t, _)| *t > cut);
        }
        let (t, list) = ctx.entry(key).or_insert_with(|| (now, VecDeque::new()));
        *t = now;
        // The oldest message's buffers are reused for the newest once the conversation holds k.
        let mut kept = if list.len() >= k {
            list.pop_front().unwrap_or_default()
        } else {
            Remembered::default()
        };
        kept.fill(stanza);
        list.push_back(kept);
        while list.len() > k {
            list.pop_front();
        }
    }

    fn context_of(&self, a: &str, b: &str) -> Vec<String> {
        let key = if a <= b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        };
        self.context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .map(|(_, l)| l.iter().map(Remembered::to_xml).collect())
            .unwrap_or_default()
    }
}

/// Chains, signs and stores drafts one at a time, in the order they were queued. A failed write
/// is tried again: evidence is not dropped while the server runs.
async fn write_evidence(
    inner: std::sync::Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Draft>,
    store: Arc<dyn EvidenceStore>,
    key: ServerKey,
    seal_to: Option<OfficerPublic>,
) {
    let mut last = None;
    let mut known = false;
    while let Some(draft) = rx.recv().await {
        let mut draft = match &seal_to {
            Some(to) => sealed(draft, to).await,
            None => draft,
        };
        let mut delay = Duration::from_millis(50);
        loop {
            if !known {
                match store.last().await {
                    Ok(l) => {
                        last = l;
                        known = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the end of the evidence chain; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let (seq, prev_hash) = evidence::next_link(last.as_ref());
            let mut fields = draft.fields.clone();
            fields.seq = seq;
            fields.prev_hash = prev_hash;
            let signed = evidence::sign(fields, &key);
            // One record per quarantined message holds it, and that one is pending review.
            let review = draft.held.is_some().then(|| "pending".to_owned());
            let mut row = evidence::new_row(&signed, draft.payload.clone(), review);
            row.held = draft.held.clone();
            match store.append(&row).await {
                Ok(stored) => {
                    crate::metrics::evidence_written();
                    tracing::info!(seq = stored.seq, rule = %stored.rule_id, "evidence recorded");
                    if let Some(tell) = draft.stored.take() {
                        // The alert may have been dropped from a full queue already.
                        let _ = tell.send(stored.seq);
                    }
                    last = Some(stored);
                    break;
                }
                Err(StoreError::Conflict(_)) => known = false,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot store evidence; retrying");
                    known = false;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Some(inner) = inner.upgrade()
            && inner.pending.fetch_sub(1, Ordering::AcqRel) == 1
        {
            inner.idle.notify_waiters();
        }
    }
}

/// The draft with its payload sealed to the officer's key; the record then signs the hash of
/// the sealed text, so the chain can be checked without the officer's key. Sealing fails only
/// when the system's random source does, and is tried again: evidence is neither dropped nor
/// stored unsealed.
async fn sealed(mut draft: Draft, to: &OfficerPublic) -> Draft {
    let mut delay = Duration::from_millis(50);
    loop {
        match seal::seal(draft.payload.as_bytes(), to) {
            Ok(text) => {
                draft.fields.sealed = true;
                draft.fields.payload_hash = evidence::payload_hash(&text);
                draft.payload = text;
                return draft;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot seal an evidence record; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Reloads the rules when the file's time or size changes.
async fn watch_rules(inner: std::sync::Weak<Inner>) {
    loop {
        let interval = match inner.upgrade() {
            Some(i) => i.opts.reload_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        let now = file_stamp(&inner.opts.rules_file);
        let changed = *inner.stamp.lock().unwrap_or_else(|e| e.into_inner()) != now;
        if changed {
            let _ = inner.reload();
        }
    }
}

impl Module for Compliance {
    fn name(&self) -> &'static str {
        "compliance"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        if self.inner.opts.enabled {
            reg.feature(causerie_core::IqTarget::Server, report::NS_REPORTING);
        }
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.drain(self);
    }
}

#[async_trait]
impl Drain for Compliance {
    async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // A release carried out now would reach sessions that are closing.
        self.inner.reviews.stop(deadline).await;
        while self.inner.pending.load(Ordering::Acquire) > 0 {
            let notified = self.inner.idle.notified();
            if self.inner.pending.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    pending = self.inner.pending.load(Ordering::Acquire),
                    "evidence records still unwritten at shutdown"
                );
                break;
            }
        }
        // After the evidence: queued alerts wait for their records' numbers.
        if let Some(hook) = &self.inner.webhook {
            hook.flush(deadline).await;
        }
    }
}

/// A message's parties as the stage needs them.
struct Parties {
    sender: BareJid,
    sender_full: Jid,
    recipient: BareJid,
}

/// The namespace of a stanza's children, without a copy for the usual two.
fn content_ns(stanza: &Element) -> Cow<'static, str> {
    match stanza.ns() {
        causerie_stanza::ns::CLIENT => Cow::Borrowed(causerie_stanza::ns::CLIENT),
        causerie_stanza::ns::SERVER => Cow::Borrowed(causerie_stanza::ns::SERVER),
        other => Cow::Owned(other.to_owned()),
    }
}

/// The sender and the recipient. A local session's `from` was stamped with its own address by
/// the router (RFC 6120 §8.1.2.1), which is taken as it is rather than parsed again.
fn parties(origin: &Origin, stanza: &Element) -> Option<Parties> {
    let stamped = stanza.attr("from")?;
    let from = match origin.session() {
        Some(s) if s.jid().as_str() == stamped => Jid::from(s.jid().clone()),
        _ => Jid::parse(stamped).ok()?,
    };
    let to = match stanza.attr("to") {
        Some(t) => Jid::parse(t).ok()?,
        None => from.to_bare().into(),
    };
    Some(Parties {
        sender: from.to_bare(),
        sender_full: from,
        recipient: to.to_bare(),
    })
}

impl Stage for Compliance {
    fn name(&self) -> &'static str {
        "compliance"
    }

    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        if stanza.name() == "iq" {
            // XEP-0377: reports ride on block requests, which the blocking module then handles.
            if let Some(session) = ctx.origin.session()
                && self.inner.opts.enabled
            {
                for r in report::from_block(stanza) {
                    self.record_report(ctx.core, session, r, stanza);
                }
            }
            return Verdict::Pass;
        }
        if stanza.name() != "message" {
            return Verdict::Pass;
        }
        if let Some(session) = ctx.origin.session()
            && self.inner.opts.enabled
            && self.to_policy_address(session, stanza)
        {
            // Only `REPORT …` gets here; the usage-policy gate answers everything else.
            let body = stanza
                .get_child("body", stanza.ns())
                .map(Element::text)
                .unwrap_or_default();
            let reply = match report::from_chat(&body) {
                Ok(r) => {
                    let who = r.reported.to_string();
                    self.record_report(ctx.core, session, r, stanza);
                    format!("Your report about {who} was recorded for the security officers.")
                }
                Err(why) => why.to_owned(),
            };
            self.tell(ctx.core, session, &reply);
            return Verdict::Handled;
        }
        let set = self.inner.rules();
        if set.is_empty() {
            // No rules, but reports still want the context of the conversation.
            if self.inner.opts.enabled
                && self.inner.opts.context_messages > 0
                && stanza.get_child("body", stanza.ns()).is_some()
                && MessageType::of(stanza) != MessageType::Error
                && let Some(p) = parties(ctx.origin, stanza)
            {
                self.inner
                    .remember(p.sender.as_str(), p.recipient.as_str(), stanza);
            }
            return Verdict::Pass;
        }
        let mtype = MessageType::of(stanza);
        if mtype == MessageType::Error {
            return Verdict::Pass;
        }
        self.evaluate(ctx, stanza, &set, mtype)
    }
}

impl Compliance {
    /// Applies the rules to a message that is not an error. Only a message with a body or a
    /// file offered out of band (XEP-0066) is looked at.
    fn evaluate(
        &self,
        ctx: &StageContext<'_>,
        stanza: &mut Element,
        set: &RuleSet,
        mtype: MessageType,
    ) -> Verdict {
        let cns = content_ns(stanza);
        // The bodies' texts and the offered files' URLs, in one pass over the children. A
        // message has one body and no file, most of the time: that takes no allocation.
        let mut first_body = None;
        let mut more_bodies = Vec::new();
        let mut offers = false;
        let mut file_urls = Vec::new();
        for c in stanza.children() {
            if c.is("body", &cns) {
                let text = c.text_ref();
                match first_body {
                    None => first_body = Some(text),
                    Some(_) => more_bodies.push(text),
                }
            } else if c.is("x", NS_OOB) {
                offers = true;
                if let Some(url) = c.get_child("url", NS_OOB) {
                    file_urls.push(url.text_ref());
                }
            }
        }
        if first_body.is_none() && !offers {
            return Verdict::Pass;
        }
        let Some(p) = parties(ctx.origin, stanza) else {
            return Verdict::Pass;
        };
        let core = ctx.core;
        let class = |domain: &str| {
            let local = core.is_local_domain(domain);
            PeerClass {
                local,
                // Meaningless for a local domain: not asked.
                allowed: !local && core.federation_allows(domain),
            }
        };
        // A client of this server writes from one of its domains.
        let sender_class = if ctx.origin.session().is_some() {
            PeerClass {
                local: true,
                allowed: false,
            }
        } else {
            class(p.sender.domain())
        };
        let recipient_class = class(p.recipient.domain());
        let path = if mtype == MessageType::Groupchat {
            Path::Groupchat
        } else if sender_class.local && recipient_class.local {
            Path::Chat
        } else {
            Path::Federation
        };
        let one_body: [&str; 1];
        let all_bodies: Vec<&str>;
        let bodies: &[&str] = match &first_body {
            None => &[],
            Some(first) if more_bodies.is_empty() => {
                one_body = [first];
                &one_body
            }
            Some(first) => {
                all_bodies = std::iter::once(&**first)
                    .chain(more_bodies.iter().map(|b| &**b))
                    .collect();
                &all_bodies
            }
        };
        let files: Vec<&str> = file_urls.iter().map(|f| &**f).collect();
        let view = View {
            sender: p.sender.as_str(),
            recipient: p.recipient.as_str(),
            path,
            sender_class,
            recipient_class,
            bodies,
            files: &files,
        };
        let mut hits = set.evaluate(&view);
        // Most messages match nothing: the clock is read only for those that do.
        let now = (!hits.is_empty()).then(Instant::now);
        if let Some(now) = now {
            let longest_rate = set.longest_rate();
            hits.retain(|h| match set.rules()[h.rule].rate {
                None => true,
                Some(rate) => self
                    .inner
                    .over_rate(p.sender.as_str(), rate, now, longest_rate),
            });
        }
        let Some(now) = now.filter(|_| !hits.is_empty()) else {
            self.inner
                .remember(p.sender.as_str(), p.recipient.as_str(), stanza);
            return Verdict::Pass;
        };
        // The texts as received, kept for the evidence: masking below changes the stanza.
        let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
        let mut counts = Vec::with_capacity(hits.len());
        let decided: Vec<(&Hit, &Rule, Vec<Action>)> = hits
            .iter()
            .map(|h| {
                let rule = &set.rules()[h.rule];
                let subject = match h.side {
                    Side::Outgoing => p.sender.as_str(),
                    Side::Incoming => p.recipient.as_str(),
                };
                let (actions, count) = self.inner.actions_for(rule, subject, now);
                counts.push(count);
                (h, rule, actions)
            })
            .collect();
        let any = |a: Action| decided.iter().any(|(_, _, acts)| acts.contains(&a));
        let session = ctx.origin.session();
        let terminate = any(Action::Terminate) && session.is_some();
        let stopped = any(Action::Block) || any(Action::Quarantine) || terminate;
        let received = stanza.clone();

        if any(Action::Mask) && !stopped {
            let mut per_body: HashMap<usize, Vec<std::ops::Range<usize>>> = HashMap::new();
            for (h, _, acts) in &decided {
                if acts.contains(&Action::Mask) {
                    for f in &h.found {
                        if let Some(b) = f.body {
                            per_body.entry(b).or_default().push(f.range.clone());
                        }
                    }
                }
            }
            let mut index = 0;
            for child in stanza.children_mut() {
                if child.is("body", &cns) {
                    if let Some(ranges) = per_body.get(&index) {
                        let masked = mask(&bodies[index], ranges);
                        child.nodes_mut().clear();
                        child.push_text(masked);
                    }
                    index += 1;
                }
            }
        }

        // The one record that holds a quarantined message (several rules may quarantine it).
        let holder = decided
            .iter()
            .position(|(_, _, acts)| acts.contains(&Action::Quarantine));
        let lock = if terminate {
            self.inner.lock_minutes(&decided, &p, now)
        } else {
            None
        };
        let locked;
        let outcome = if terminate {
            match lock {
                Some(m) => {
                    locked = format!(
                        "the session was ended and the account locked for {}",
                        lock::duration_words(m)
                    );
                    locked.as_str()
                }
                None => "the session was ended",
            }
        } else if any(Action::Quarantine) {
            "it is held for review"
        } else if any(Action::Block) {
            "it was not delivered"
        } else if any(Action::Mask) {
            "it was delivered with the matched text masked"
        } else {
            "it was delivered"
        };

        for (i, (h, rule, acts)) in decided.iter().enumerate() {
            // How often the rule fired for this user lately, shown to the officer (escalation).
            let repeats = match counts[i] {
                n if n > 1 => {
                    format!(" (it fired {n} times for this user within its escalation window)")
                }
                _ => String::new(),
            };
            let (subject, peer) = match h.side {
                Side::Outgoing => (&p.sender, p.recipient.as_str()),
                Side::Incoming => (&p.recipient, p.sender.as_str()),
            };
            let names: Vec<&str> = acts.iter().map(|a| a.name()).collect();
            crate::metrics::compliance_actions(acts);
            if acts.contains(&Action::Log) {
                tracing::info!(rule = %rule.id, user = %subject, peer, actions = %names.join(","), "compliance rule matched");
            }
            // The webhook's alert names the evidence record of the same message.
            let mut evidence_seq = None;
            if acts.contains(&Action::Capture) || acts.contains(&Action::Quarantine) {
                let (resource, remote_addr) = match (h.side, session) {
                    (Side::Outgoing, Some(s)) => (
                        s.jid().resource().to_owned(),
                        s.info.peer.map(|a| a.ip().to_canonical().to_string()),
                    ),
                    _ => (String::new(), None),
                };
                let found: Vec<serde_json::Value> = h
                    .found
                    .iter()
                    .map(|f| {
                        let text = f
                            .body
                            .and_then(|b| bodies.get(b))
                            .and_then(|b| b.get(f.range.clone()))
                            .unwrap_or_default();
                        serde_json::json!({ "what": f.what, "text": text })
                    })
                    .collect();
                let payload = serde_json::json!({
                    "stanza": received.to_xml(),
                    "context": self.inner.context_of(p.sender.as_str(), p.recipient.as_str()),
                    "found": found,
                    "rule": { "id": rule.id, "description": rule.description,
                              "category": rule.category, "severity": rule.severity.name() },
                    "from": p.sender_full.as_str(),
                    "to": received.attr("to").unwrap_or_default(),
                    "outcome": outcome,
                    "times_in_window": counts[i],
                })
                .to_string();
                self.inner.queue_evidence(Draft {
                    fields: EvidenceFields {
                        seq: 0,
                        created_at: now_secs(),
                        rule_id: rule.id.clone(),
                        category: rule.category.clone(),
                        actions: names.join(","),
                        username: subject.node().unwrap_or_default().to_owned(),
                        domain: subject.domain().to_owned(),
                        resource,
                        peer: peer.to_owned(),
                        direction: match h.side {
                            Side::Outgoing => "outgoing",
                            Side::Incoming => "incoming",
                        }
                        .to_owned(),
                        remote_addr,
                        client: None,
                        sealed: false,
                        payload_hash: evidence::payload_hash(&payload),
                        prev_hash: String::new(),
                    },
                    payload,
                    held: (holder == Some(i)).then(|| received.to_xml()),
                    stored: (acts.contains(&Action::Alert) && self.inner.webhook.is_some()).then(
                        || {
                            let (tell, seq) = oneshot::channel();
                            evidence_seq = Some(seq);
                            tell
                        },
                    ),
                });
            }
            if acts.contains(&Action::Alert) {
                self.alert(
                    core,
                    rule,
                    subject.as_str(),
                    peer,
                    &names,
                    &format!("{outcome}{repeats}"),
                );
                if let Some(hook) = &self.inner.webhook {
                    let event = AlertEvent::for_hit(
                        rule,
                        h,
                        p.sender.as_str(),
                        p.recipient.as_str(),
                        &names,
                        outcome,
                        counts[i],
                    );
                    let event = if hook.include_text() {
                        event.with_text(&bodies, h)
                    } else {
                        event
                    };
                    hook.post(event, evidence_seq);
                }
            }
            if acts.contains(&Action::Warn)
                && h.side == Side::Outgoing
                && let Some(s) = session
            {
                let text = format!(
                    "Your message to {} matched the company rule \"{}\" ({}): {outcome}.",
                    p.recipient, rule.description, rule.category
                );
                let warn = from_policy_address(
                    &self.inner.opts.policy_localpart,
                    s.jid().domain(),
                    s.jid().as_str(),
                    &text,
                );
                core.deliver(s, &causerie_core::OutStanza::new(warn));
            }
        }

        let first = |a: Action| {
            decided
                .iter()
                .find(|(_, _, acts)| acts.contains(&a))
                .map(|(_, r, _)| *r)
        };
        if terminate && let Some(rule) = first(Action::Terminate) {
            let mut text = format!(
                "Your session was ended by the company rule \"{}\" ({}).",
                rule.description, rule.category
            );
            if let (Some(minutes), Some(s)) = (lock, session) {
                text.push_str(&format!(
                    " Your account is locked for {}.",
                    lock::duration_words(minutes)
                ));
                self.inner
                    .lock_account(core, s.jid().to_bare(), minutes, rule);
            }
            return Verdict::Terminate(StreamError::new(SE::PolicyViolation).with_text(text));
        }
        if let Some(rule) = first(Action::Quarantine) {
            if let Some(s) = session {
                self.tell(
                    core,
                    s,
                    &format!(
                        "Your message to {} is held for review under the company rule \"{}\" ({}); it will be delivered if a reviewer releases it.",
                        p.recipient, rule.description, rule.category
                    ),
                );
            }
            return Verdict::Handled;
        }
        if let Some(rule) = first(Action::Block).or_else(|| first(Action::Terminate)) {
            return Verdict::Reject(
                StanzaError::new(Cond::PolicyViolation)
                    .with_text(format!(
                        "Not delivered: {} ({}).",
                        rule.description, rule.category
                    ))
                    .with_app(
                        Element::new("blocked", NS)
                            .with_attr("rule", rule.id.as_str())
                            .with_attr("category", rule.category.as_str()),
                    ),
            );
        }
        self.inner
            .remember(p.sender.as_str(), p.recipient.as_str(), stanza);
        Verdict::Pass
    }

    /// Tells the security officers at once (a message from the policy address of their domain)
    /// and writes an audit record.
    fn alert(
        &self,
        core: &Arc<Core>,
        rule: &Rule,
        user: &str,
        peer: &str,
        actions: &[&str],
        outcome: &str,
    ) {
        self.notify_officers(
            core,
            &format!(
                "Compliance alert: rule {} ({}, {}) matched a message of {user} with {peer}: {outcome}. Actions: {}.",
                rule.id,
                rule.severity.name(),
                rule.category,
                actions.join(", ")
            ),
        );
        self.inner.audit_event(
            "compliance.alert",
            user,
            "ok",
            format!(
                "rule {} ({}): {outcome}; peer {peer}; actions {}",
                rule.id,
                rule.category,
                actions.join(",")
            ),
        );
    }

    fn notify_officers(&self, core: &Arc<Core>, text: &str) {
        for officer in &self.inner.opts.officers {
            let Some(domain) = officer.rsplit_once('@').map(|(_, d)| d) else {
                continue;
            };
            let msg = from_policy_address(
                &self.inner.opts.policy_localpart,
                domain,
                officer.as_str(),
                text,
            );
            let core = core.clone();
            tokio::spawn(async move { core.route(&Origin::Server, msg).await });
        }
    }

    /// A message from the policy address to the session.
    fn tell(&self, core: &Core, session: &causerie_core::SessionHandle, text: &str) {
        let msg = from_policy_address(
            &self.inner.opts.policy_localpart,
            session.jid().domain(),
            session.jid().as_str(),
            text,
        );
        core.deliver(session, &causerie_core::OutStanza::new(msg));
    }

    fn to_policy_address(&self, session: &causerie_core::SessionHandle, stanza: &Element) -> bool {
        let lp = &self.inner.opts.policy_localpart;
        stanza.attr("to").is_some_and(|to| {
            to.len() > lp.len()
                && to.as_bytes()[..lp.len()].eq_ignore_ascii_case(lp.as_bytes())
                && Jid::parse(to).is_ok_and(|j| {
                    j.node() == Some(lp.as_str()) && j.domain() == session.jid().domain()
                })
        })
    }

    /// A user's report: evidence (direction `report`), the officers told, an audit record.
    fn record_report(
        &self,
        core: &Arc<Core>,
        session: &causerie_core::SessionHandle,
        r: report::Report,
        stanza: &Element,
    ) {
        let reporter = session.jid().to_bare();
        let payload = serde_json::json!({
            "stanza": stanza.to_xml(),
            "reason": r.reason,
            "text": r.text,
            "messages": r.messages,
            "context": self.inner.context_of(reporter.as_str(), r.reported.as_str()),
            "from": session.jid().as_str(),
        })
        .to_string();
        let actions = if self.inner.opts.officers.is_empty() {
            "capture"
        } else {
            "capture,alert"
        };
        let mut evidence_seq = None;
        self.inner.queue_evidence(Draft {
            fields: EvidenceFields {
                seq: 0,
                created_at: now_secs(),
                rule_id: "user-report".to_owned(),
                category: "report by a user".to_owned(),
                actions: actions.to_owned(),
                username: reporter.node().unwrap_or_default().to_owned(),
                domain: reporter.domain().to_owned(),
                resource: session.jid().resource().to_owned(),
                peer: r.reported.to_string(),
                direction: "report".to_owned(),
                remote_addr: session.info.peer.map(|a| a.ip().to_canonical().to_string()),
                client: None,
                sealed: false,
                payload_hash: evidence::payload_hash(&payload),
                prev_hash: String::new(),
            },
            payload,
            held: None,
            stored: self.inner.webhook.is_some().then(|| {
                let (tell, seq) = oneshot::channel();
                evidence_seq = Some(seq);
                tell
            }),
        });
        if let Some(hook) = &self.inner.webhook {
            let actions: Vec<&str> = actions.split(',').collect();
            let mut event =
                AlertEvent::for_report(reporter.as_str(), r.reported.as_str(), &r.reason, &actions);
            if hook.include_text() {
                event.text = r.text.clone().map(|t| vec![t]);
            }
            hook.post(event, evidence_seq);
        }
        let what = r
            .text
            .as_deref()
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        self.notify_officers(
            core,
            &format!(
                "Report: {reporter} reported {} ({}){what}",
                r.reported, r.reason
            ),
        );
        self.inner.audit_event(
            "compliance.report",
            reporter.as_str(),
            "ok",
            format!("reported {} ({})", r.reported, r.reason),
        );
    }
}

/// Quarantine review and account locks.
impl Compliance {
    /// Starts carrying out the review decisions of quarantined messages on `core`: now, then
    /// every `compliance.reload_secs`, until the module or the core is gone or the module is
    /// drained.
    pub fn start_reviews(&self, core: &Arc<Core>) {
        tokio::spawn(review::poll(
            Arc::downgrade(&self.inner.reviews),
            Arc::downgrade(core),
            self.inner.opts.reload_interval,
        ));
    }
}

impl Inner {
    /// How long the rules of `decided` that end the session lock the account: the longest
    /// `lock_minutes` of the action lists applied (the escalation step each rule reached, by
    /// the counts [`Inner::actions_for`] kept), `None` for no lock.
    fn lock_minutes(
        &self,
        decided: &[(&Hit, &Rule, Vec<Action>)],
        p: &Parties,
        now: Instant,
    ) -> Option<u32> {
        let fired = self.fired.lock().unwrap_or_else(|e| e.into_inner());
        decided
            .iter()
            .filter(|(_, _, acts)| acts.contains(&Action::Terminate))
            .filter_map(|(h, rule, _)| {
                let subject = match h.side {
                    Side::Outgoing => p.sender.as_str(),
                    Side::Incoming => p.recipient.as_str(),
                };
                let times = fired.get(&(subject.to_owned(), rule.id.clone()));
                let step = rule.step_reached(|within| {
                    let window = Duration::from_secs(u64::from(within));
                    times.map_or(0, |t| {
                        t.iter()
                            .filter(|at| now.duration_since(**at) <= window)
                            .count()
                    })
                });
                rule.lock_for(step)
            })
            .max()
    }

    /// Locks `account` for `minutes` in the background and ends its sessions
    /// ([`lock::lock_account`]).
    fn lock_account(&self, core: &Arc<Core>, account: BareJid, minutes: u32, rule: &Rule) {
        tokio::spawn(lock::lock_account(
            core.clone(),
            self.users.clone(),
            self.audit.clone(),
            account,
            minutes,
            now_secs(),
            lock::Cause {
                rule_id: rule.id.clone(),
                category: rule.category.clone(),
                description: rule.description.clone(),
            },
        ));
    }
}
