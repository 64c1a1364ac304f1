//! The usage-policy gate (xeps/policy-acceptance.md): a module of the core that holds every
//! session of an account with a pending acceptance in a restricted state until the account
//! accepts the version in force, and records each acceptance as a signed receipt in the chain.
//!
//! - At the features step after SASL it offers the `<policy/>` stream feature when something is
//!   pending (§4.2); when the session binds it decides whether the session is restricted
//!   (§5.3.1), asks the client for its software version (XEP-0092, §5.10), sends the prompt from
//!   the policy address (§6.1) and arms the time limit (§4.10).
//! - As the first stage after the presence flood limit it refuses what a restricted session may
//!   not send (§4.3) with `policy-violation` and `<acceptance-required/>`. Presence is not
//!   refused but held: the latest one is replayed when the session is released, so that the
//!   client's contacts see it without the user setting a status again.
//! - The router treats a restricted session as absent for everybody but the server
//!   (`flags::RESTRICTED`), so messages to the account go to its other sessions or offline, and
//!   are delivered to the session that accepts right after its answer (§5.4).
//! - Three ways to accept, recorded the same way: the IQs of the extension (`iq.rs`), the policy
//!   address (`chat.rs`: typed replies and submitted forms) and the ad-hoc command
//!   (`command.rs`). `accept.rs` checks the version, writes the receipt (one database write) and
//!   releases the sessions.
//! - Modes: an account accepts each version once (default), or every session accepts again.
//!
//! Unrestricted sessions cost one flag test per stanza, plus, for a message, a comparison of its
//! `to` with the policy address.

mod accept;
mod chat;
mod command;
mod iq;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use causerie_core::{
    Core, Event, EventListener, IqTarget, Module, ModuleRegistry, Origin, OutStanza, SessionHandle,
    SessionHook, Stage, StageContext, Verdict, flags,
};
use causerie_jid::{BareJid, Jid};
use causerie_stanza::{
    IqType, MessageType, PresenceType, StanzaError, StanzaErrorCondition as Cond, StanzaKind,
    StreamError, StreamErrorCondition as SE, ns,
};
use causerie_storage::{PolicyStore, PolicyVersion, Storage};
use causerie_xml::Element;
use tokio::time::Instant;

use crate::keys::ServerKey;

/// Runs right after the presence flood limit (5) and before every other stage.
pub const STAGE_PRIORITY: i32 = 7;
/// Longest client name a receipt records, in bytes.
const MAX_CLIENT_BYTES: usize = 255;

/// Whether an account accepts a version once or every session accepts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    EverySession,
}

/// The gate's settings; the server maps `[policy]` onto them.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Hold sessions with a pending acceptance. When false nothing is held, and the IQs, the
    /// policy address and the command still answer.
    pub enabled: bool,
    pub mode: Mode,
    /// A restricted session that has not answered within this time is closed.
    pub timeout: Duration,
    /// Localpart of the policy address of every hosted domain.
    pub localpart: String,
    /// Messages one session may send to the policy address per minute.
    pub messages_per_minute: u32,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            enabled: true,
            mode: Mode::Once,
            timeout: Duration::from_secs(900),
            localpart: "policy".to_owned(),
            messages_per_minute: 20,
        }
    }
}

/// What to do once a given IQ answer has been queued to its session.
#[derive(Debug)]
pub(crate) enum AfterAnswer {
    /// Release the session (it accepted): presence replayed, offline messages delivered.
    Release,
    /// Close the session (it declined).
    Close(StreamError),
}

/// What the gate keeps for a session it restricted, or that talked to the policy address.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// The version this session was last prompted with (§5.7.2).
    pub prompted: Option<String>,
    /// Name and version from XEP-0092, else the XEP-0115 node of a held presence (§5.10).
    pub client: Option<String>,
    pub caps_node: Option<String>,
    /// The latest presence the session sent while restricted.
    pub held: Option<Element>,
    /// The id of the software version query sent to the session.
    pub version_query: Option<String>,
    /// The running instance of the ad-hoc command.
    pub command: Option<String>,
    /// Work due when the answer with this IQ id is queued.
    pub after_answer: Option<(String, AfterAnswer)>,
    /// Allowance of messages to the policy address: tokens left and when it was counted.
    pub allowance: Option<(f64, Instant)>,
    /// The time limit of a restricted session.
    pub timer: Option<tokio::task::AbortHandle>,
}

impl SessionState {
    fn client_name(&self) -> Option<String> {
        self.client.clone().or_else(|| self.caps_node.clone())
    }
}

pub(crate) struct Inner {
    pub store: Arc<dyn PolicyStore>,
    pub key: Arc<ServerKey>,
    /// SHA-256 of the public key, 64 hex digits: the `key` of receipts.
    pub fingerprint: String,
    pub opts: GateOptions,
    pub sessions: Mutex<HashMap<u64, SessionState>>,
    /// Receipts are appended one at a time (§5.2.4).
    pub append: tokio::sync::Mutex<()>,
    /// The core, for work the delivery filter starts (it is handed only `&Core`).
    pub core: OnceLock<Weak<Core>>,
}

impl Inner {
    pub fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    pub fn with_state<R>(&self, session: u64, f: impl FnOnce(&mut SessionState) -> R) -> R {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(session).or_default())
    }

    pub fn policy_jid(&self, domain: &str) -> String {
        format!("{}@{domain}", self.opts.localpart)
    }

    /// The version in force for the account's domain and whether the account (or, in
    /// every-session mode, a new session) must accept it.
    pub async fn pending(&self, account: &BareJid) -> Result<Option<PolicyVersion>, ()> {
        let domain = account.domain();
        let current = self.store.current(domain, Self::now()).await.map_err(|e| {
            tracing::warn!(error = %e, domain, "cannot read the usage policy in force");
        })?;
        let Some(v) = current else { return Ok(None) };
        if self.opts.mode == Mode::EverySession {
            return Ok(Some(v));
        }
        let user = account.node().unwrap_or_default();
        let accepted = self
            .store
            .acceptance(user, domain, &v.hash)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, jid = %account, "cannot read policy receipts");
            })?;
        Ok(accepted.is_none().then_some(v))
    }

    /// Every receipt of an account, oldest first (one per version at most in `once` mode, so
    /// the list stays short).
    pub async fn account_receipts(
        &self,
        account: &BareJid,
    ) -> Result<Vec<causerie_storage::StoredReceipt>, causerie_storage::StoreError> {
        self.store
            .receipts(&causerie_storage::ReceiptFilter {
                username: account.node().map(str::to_owned),
                domain: Some(account.domain().to_owned()),
                limit: Some(u64::MAX / 2),
                ..Default::default()
            })
            .await
    }

    /// What this session must accept: in every-session mode only a restricted session has
    /// something pending, otherwise the account's pending version.
    pub async fn pending_for(&self, session: &SessionHandle) -> Result<Option<PolicyVersion>, ()> {
        if self.opts.mode == Mode::EverySession && !session.info.flag(flags::RESTRICTED) {
            return Ok(None);
        }
        self.pending(&session.jid().to_bare()).await
    }

    /// A message from the policy address to one session.
    pub fn tell(&self, core: &Core, session: &SessionHandle, body: &str, extra: Vec<Element>) {
        let mut msg = wire::from_policy_address(
            &self.opts.localpart,
            session.jid().domain(),
            session.jid().as_str(),
            body,
        )
        .with_attr("id", format!("policy-{}", random_hex()));
        for e in extra {
            msg.push_child(e);
        }
        core.deliver(session, &OutStanza::new(msg));
    }

    /// Sends the prompt of `v` to a session and remembers that it was prompted with it.
    pub fn prompt(&self, core: &Core, session: &SessionHandle, v: &PolicyVersion) {
        let restricted = session.info.flag(flags::RESTRICTED);
        self.with_state(session.id(), |st| st.prompted = Some(v.hash.clone()));
        self.tell(
            core,
            session,
            &wire::prompt_body(v, restricted),
            vec![wire::form(v, wire::FormUse::Message)],
        );
    }

    /// Restricts a session that just bound with `v` pending.
    fn restrict(
        self: &Arc<Self>,
        core: &Arc<Core>,
        session: &SessionHandle,
        v: Option<&PolicyVersion>,
    ) {
        crate::metrics::gate(crate::metrics::GateEvent::Restricted);
        session.info.set_flag(flags::RESTRICTED, true);
        let query_id = format!("policy-version-{}", random_hex());
        let timer = {
            let session = session.clone();
            let timeout = self.opts.timeout;
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if session.info.flag(flags::RESTRICTED) {
                    crate::metrics::gate(crate::metrics::GateEvent::TimedOut);
                    tracing::info!(jid = %session.jid(), "usage policy not accepted in time, closing the session");
                    session.close(StreamError::new(SE::PolicyViolation).with_text(
                        "The usage policy was not accepted in time; log in again to accept it.",
                    ));
                }
            })
            .abort_handle()
        };
        self.with_state(session.id(), |st| {
            st.version_query = Some(query_id.clone());
            st.timer = Some(timer);
        });
        // §5.10: the client names itself, if it answers before the acceptance.
        let query = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", query_id)
            .with_attr("from", session.jid().domain())
            .with_attr("to", session.jid().as_str())
            .with_child(Element::new("query", wire::NS_VERSION));
        core.deliver(session, &OutStanza::new(query));
        match v {
            Some(v) => self.prompt(core, session, v),
            None => self.tell(
                core,
                session,
                "The usage policy cannot be read right now, and it must be accepted before this \
                 service can be used. Reply MY POLICY in a moment to try again.",
                Vec::new(),
            ),
        }
    }

    /// The error text and element for a refused stanza of a restricted session.
    fn refusal(&self, session: &SessionHandle) -> StanzaError {
        let prompted = self.with_state(session.id(), |st| st.prompted.clone());
        let domain = session.jid().domain();
        match prompted {
            Some(hash) => wire::acceptance_required(
                &hash,
                wire::how_to_accept(wire::short(&hash), &self.policy_jid(domain), domain),
            ),
            None => StanzaError::new(Cond::PolicyViolation)
                .with_type(causerie_stanza::ErrorType::Auth)
                .with_text(format!(
                    "Accept the usage policy first: write MY POLICY to {}.",
                    self.policy_jid(domain)
                )),
        }
    }

    /// Whether `to` is the policy address of a hosted domain; that domain when it is. A
    /// prefix test first, so that other messages cost one comparison.
    fn policy_domain(&self, core: &Core, to: &str) -> Option<String> {
        let lp = self.opts.localpart.as_bytes();
        let b = to.as_bytes();
        if b.len() <= lp.len() || b[lp.len()] != b'@' || !b[..lp.len()].eq_ignore_ascii_case(lp) {
            return None;
        }
        let jid = Jid::parse(to).ok()?;
        (jid.node() == Some(self.opts.localpart.as_str()) && core.is_local_domain(jid.domain()))
            .then(|| jid.domain().to_owned())
    }
}

/// The policy module. Register it with [`ModuleRegistry::add_module`].
pub struct PolicyGate {
    inner: Arc<Inner>,
}

impl PolicyGate {
    pub fn new(storage: &Storage, key: ServerKey, opts: GateOptions) -> PolicyGate {
        PolicyGate {
            inner: Arc::new(Inner {
                store: storage.policy.clone(),
                fingerprint: key.key_id(),
                key: Arc::new(key),
                opts,
                sessions: Mutex::new(HashMap::new()),
                append: tokio::sync::Mutex::new(()),
                core: OnceLock::new(),
            }),
        }
    }

    /// Sessions the gate keeps state for (restricted ones and those that used the policy
    /// address), for tests.
    pub fn tracked_sessions(&self) -> usize {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl Module for PolicyGate {
    fn name(&self) -> &'static str {
        "policy"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.feature(IqTarget::Server, wire::NS);
        let mut form = Element::new("x", wire::NS_DATA).with_attr("type", "result");
        for (var, value) in [
            ("FORM_TYPE", wire::NS.to_owned()),
            (wire::KEY_FIELD, self.inner.key.public_key_hex()),
        ] {
            let mut field = Element::new("field", wire::NS_DATA).with_attr("var", var);
            if var == "FORM_TYPE" {
                field.set_attr("type", "hidden");
            }
            form.push_child(
                field.with_child(Element::new("value", wire::NS_DATA).with_text(value)),
            );
        }
        reg.disco_form(form);
        iq::register(&self.inner, reg);
        reg.command(
            wire::COMMAND_NODE,
            wire::COMMAND_NAME,
            Arc::new(command::AcceptCommand::new(self.inner.clone())),
        );
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.session_hook(self.clone());
        reg.listener(self);
    }
}

#[async_trait]
impl SessionHook for PolicyGate {
    async fn account_features(&self, _core: &Arc<Core>, account: &BareJid) -> Vec<Element> {
        if !self.inner.opts.enabled {
            return Vec::new();
        }
        match self.inner.pending(account).await {
            Ok(Some(v)) => vec![wire::feature(&v)],
            Ok(None) | Err(()) => Vec::new(),
        }
    }

    async fn binding(&self, core: &Arc<Core>, session: &SessionHandle) {
        let _ = self.inner.core.set(Arc::downgrade(core));
        if !self.inner.opts.enabled {
            return;
        }
        let account = session.jid().to_bare();
        match self.inner.pending(&account).await {
            Ok(None) => {}
            Ok(Some(v)) => {
                tracing::info!(jid = %session.jid(), version = wire::short(&v.hash), "session restricted until the usage policy is accepted");
                self.inner.restrict(core, session, Some(&v));
            }
            // The policy cannot be read: the session is held rather than let through.
            Err(()) => self.inner.restrict(core, session, None),
        }
    }
}

impl EventListener for PolicyGate {
    fn on_event(&self, _core: &Arc<Core>, event: &Event<'_>) {
        if let Event::SessionEnded(s) = event {
            let gone = self
                .inner
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&s.id());
            if let Some(timer) = gone.and_then(|st| st.timer) {
                timer.abort();
            }
        }
    }
}

impl Stage for PolicyGate {
    fn name(&self) -> &'static str {
        "policy"
    }

    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        let session = match ctx.origin {
            Origin::Session(s) => s,
            Origin::Remote { .. } => return self.remote_stanza(ctx.core, stanza),
            Origin::Server => return Verdict::Pass,
        };
        if stanza.name() == "message"
            && let Some(to) = stanza.attr("to")
            && let Some(domain) = self.inner.policy_domain(ctx.core, to)
        {
            return chat::inbound(&self.inner, ctx.core, session, &domain, stanza);
        }
        if !session.info.flag(flags::RESTRICTED) {
            return Verdict::Pass;
        }
        self.restricted(session, stanza)
    }

    fn outbound(&self, _core: &Core, to: &SessionHandle, stanza: &Arc<OutStanza>) -> bool {
        if !to.info.flag(flags::RESTRICTED) || stanza.kind != Some(StanzaKind::Iq) {
            return true;
        }
        let Some(id) = stanza.element.attr("id") else {
            return true;
        };
        let due = self.inner.with_state(to.id(), |st| match &st.after_answer {
            Some((want, _)) if want == id => st.after_answer.take().map(|(_, a)| a),
            _ => None,
        });
        let Some(due) = due else { return true };
        // The answer goes out first, then what it announced.
        match due {
            AfterAnswer::Close(err) => {
                let _ = to.deliver_stanza(stanza);
                to.close(err);
            }
            AfterAnswer::Release => {
                // Lifted before the answer leaves, so that whatever the client sends once it
                // has the answer is not refused.
                let held = accept::lift(&self.inner, to);
                let _ = to.deliver_stanza(stanza);
                if let (Some(held), Some(core)) =
                    (held, self.inner.core.get().and_then(Weak::upgrade))
                {
                    let session = to.clone();
                    tokio::spawn(async move { accept::after_release(&core, &session, held).await });
                }
            }
        }
        false
    }
}

impl PolicyGate {
    /// Stanzas from other servers: only the policy address concerns the gate (§5.6.2).
    fn remote_stanza(&self, core: &Arc<Core>, stanza: &Element) -> Verdict {
        if stanza.name() == "message"
            && stanza
                .attr("to")
                .is_some_and(|to| self.inner.policy_domain(core, to).is_some())
        {
            if causerie_stanza::is_error(stanza) {
                return Verdict::Handled;
            }
            return Verdict::Reject(StanzaError::new(Cond::ServiceUnavailable));
        }
        Verdict::Pass
    }

    /// §4.3: what a restricted session may send.
    fn restricted(&self, session: &SessionHandle, stanza: &Element) -> Verdict {
        let domain = session.jid().domain();
        let to = stanza.attr("to");
        let to_server = to.is_none_or(|t| {
            Jid::parse(t)
                .is_ok_and(|j| j.node().is_none() && j.resource().is_none() && j.domain() == domain)
        });
        match StanzaKind::of(stanza) {
            Some(StanzaKind::Iq) => {
                let Some(iq_type) = stanza.attr("type").and_then(IqType::parse) else {
                    return Verdict::Reject(self.inner.refusal(session));
                };
                if !iq_type.is_request() {
                    if !to_server {
                        return Verdict::Handled;
                    }
                    return self.answer_to_server(session, stanza, iq_type);
                }
                let Some(payload) = stanza.children().next() else {
                    return Verdict::Reject(self.inner.refusal(session));
                };
                let to_own_account = to.is_none_or(|t| {
                    Jid::parse(t).is_ok_and(|j| {
                        j.resource().is_none() && j.to_bare() == session.jid().to_bare()
                    })
                });
                let allowed = (to_server
                    && (payload.ns() == wire::NS
                        || (iq_type == IqType::Set
                            && payload.is("command", wire::NS_COMMANDS)
                            && payload.attr("node") == Some(wire::COMMAND_NODE))
                        || (iq_type == IqType::Get
                            && (payload.is("query", ns::DISCO_INFO)
                                || payload.is("query", ns::DISCO_ITEMS))
                            && to.is_some())
                        || (iq_type == IqType::Get && payload.is("ping", ns::PING))))
                    || (to_own_account
                        && iq_type == IqType::Get
                        && payload.is("query", wire::NS_ROSTER));
                if allowed {
                    Verdict::Pass
                } else {
                    Verdict::Reject(self.inner.refusal(session))
                }
            }
            Some(StanzaKind::Presence) => {
                let own = to.is_none();
                match PresenceType::of(stanza) {
                    Some(PresenceType::Available) if own => {
                        let node = stanza
                            .get_child("c", wire::NS_CAPS)
                            .and_then(|c| c.attr("node"))
                            .map(|n| truncate(n, MAX_CLIENT_BYTES));
                        let held = stanza.clone();
                        self.inner.with_state(session.id(), |st| {
                            if node.is_some() {
                                st.caps_node = node;
                            }
                            st.held = Some(held);
                        });
                        Verdict::Handled
                    }
                    Some(PresenceType::Unavailable) if own => {
                        self.inner.with_state(session.id(), |st| st.held = None);
                        Verdict::Handled
                    }
                    Some(PresenceType::Error) => Verdict::Handled,
                    _ => Verdict::Reject(self.inner.refusal(session)),
                }
            }
            Some(StanzaKind::Message) => {
                if MessageType::of(stanza) == MessageType::Error {
                    Verdict::Handled
                } else {
                    Verdict::Reject(self.inner.refusal(session))
                }
            }
            None => Verdict::Pass,
        }
    }

    /// An IQ result or error a restricted session sends to the server: the answer to the
    /// software version query is the gate's; others (pings) go on.
    fn answer_to_server(
        &self,
        session: &SessionHandle,
        stanza: &Element,
        iq_type: IqType,
    ) -> Verdict {
        let id = stanza.attr("id").unwrap_or_default();
        let ours = self.inner.with_state(session.id(), |st| {
            if st.version_query.as_deref() != Some(id) {
                return false;
            }
            st.version_query = None;
            if iq_type == IqType::Result
                && let Some(q) = stanza.get_child("query", wire::NS_VERSION)
            {
                let part = |name: &str| {
                    q.get_child(name, wire::NS_VERSION)
                        .map(|e| e.text().trim().to_owned())
                        .filter(|t| !t.is_empty())
                };
                st.client = match (part("name"), part("version")) {
                    (Some(n), Some(v)) => Some(truncate(&format!("{n} {v}"), MAX_CLIENT_BYTES)),
                    (Some(n), None) => Some(truncate(&n, MAX_CLIENT_BYTES)),
                    _ => None,
                };
            }
            true
        });
        if ours {
            Verdict::Handled
        } else {
            Verdict::Pass
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary, control characters dropped.
fn truncate(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// The IP address of a session as a receipt records it (§5.10.4).
pub(crate) fn address(peer: Option<SocketAddr>) -> Option<String> {
    peer.map(|p| p.ip().to_canonical().to_string())
}

pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        let n = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b.copy_from_slice(&n.to_le_bytes()[..6]);
    }
    crate::hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_whole_characters_and_drops_controls() {
        assert_eq!(truncate("Gajim\n1.9", 100), "Gajim1.9");
        assert_eq!(truncate("ééé", 5), "éé");
    }

    #[test]
    fn addresses_as_receipts_record_them() {
        let v4: SocketAddr = "[::ffff:203.0.113.25]:5222".parse().unwrap();
        assert_eq!(address(Some(v4)).as_deref(), Some("203.0.113.25"));
        let v6: SocketAddr = "[2001:db8:0:0::7]:5222".parse().unwrap();
        assert_eq!(address(Some(v6)).as_deref(), Some("2001:db8::7"));
        assert_eq!(address(None), None);
    }
}
