//! The module API: how a feature joins the server. A module registers IQ handlers, disco features and
//! identities, pipeline stages and event listeners into a [`ModuleRegistry`] once at start; the core then
//! dispatches to them. A module never imports another module.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use causerie_jid::{BareJid, Jid};
use causerie_stanza::{IqType, StanzaError, StreamError};
use causerie_xml::Element;

use crate::router::{Core, Origin};
use crate::session::{OutStanza, SessionHandle};

/// What a pipeline stage decides about a stanza.
#[derive(Debug)]
pub enum Verdict {
    /// Go on to the next stage, then to the router.
    Pass,
    /// The stage consumed the stanza (answered it, queued it, dropped it on purpose).
    Handled,
    /// Refuse it: the sender gets this stanza error (unless the stanza is itself an error).
    Reject(StanzaError),
    /// Refuse it and close the sender's stream with this error.
    Terminate(StreamError),
}

/// What a stage can see of where the stanza comes from.
pub struct StageContext<'a> {
    pub core: &'a Arc<Core>,
    pub origin: &'a Origin,
}

/// A step of the inbound pipeline (policy gate, compliance rules, filters…), and optionally a filter
/// on delivery to a local session (blocking, client state indication…).
pub trait Stage: Send + Sync {
    fn name(&self) -> &'static str;

    /// Runs on every stanza a session or a remote server sends, after `from` is stamped, before routing.
    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict;

    /// Runs before a stanza is queued to a local session; `false` drops it for that session (the
    /// stage may have kept it to deliver later, e.g. presence held back for an inactive client).
    fn outbound(&self, _core: &Core, _to: &SessionHandle, _stanza: &Arc<OutStanza>) -> bool {
        true
    }

    /// Runs after a message addressed to a local account was queued to `recipients` (one or more of
    /// its sessions), e.g. to send carbon copies to the others.
    fn delivered(
        &self,
        _core: &Arc<Core>,
        _to: &BareJid,
        _recipients: &[SessionHandle],
        _stanza: &Arc<OutStanza>,
    ) {
    }
}

/// A top-level element on a bound client stream that is not a stanza (XEP-0352 `<active/>`, …).
/// `Ok(Some(el))` is written back to that session; `Err` closes its stream.
pub trait NonzaHandler: Send + Sync {
    fn handle(
        &self,
        core: &Arc<Core>,
        session: &SessionHandle,
        el: &Element,
    ) -> Result<Option<Element>, StreamError>;
}

/// What became of a message that no session of an existing or non-existing local account could take.
#[derive(Debug)]
pub enum OfflineOutcome {
    /// Kept for later delivery (XEP-0160).
    Stored,
    /// Refused: the sender gets this error (no such user, quota full…).
    Bounce(StanzaError),
}

/// Storage of messages for accounts that have no available resource (XEP-0160).
#[async_trait]
pub trait OfflineSink: Send + Sync {
    async fn store(&self, core: &Arc<Core>, to: &BareJid, stanza: &Element) -> OfflineOutcome;
}

/// Work a module must finish before the server closes its storage (queued writes, …).
#[async_trait]
pub trait Drain: Send + Sync {
    async fn drain(&self);
}

/// Produces a stream feature offered to clients after authentication (before bind), e.g. XEP-0352
/// `<csi/>` or XEP-0115 `<c/>`. Called once, after every module has registered.
pub type FeatureProvider = Arc<dyn Fn(&Core) -> Option<Element> + Send + Sync>;

/// Whom an IQ handler answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqTarget {
    /// IQs addressed to a hosted domain.
    Server,
    /// IQs addressed to a local account's bare JID, or with no `to` (RFC 6120 §10.3.3: handled by the
    /// server on behalf of the sender's account).
    Account,
    Both,
}

impl IqTarget {
    fn covers(self, other: IqTarget) -> bool {
        self == IqTarget::Both || self == other
    }
}

/// An IQ request handed to a handler.
pub struct IqRequest<'a> {
    pub core: &'a Arc<Core>,
    pub origin: &'a Origin,
    /// The requester, as stamped by the server.
    pub from: Jid,
    /// The addressed entity: a domain or a bare JID (the sender's own when `to` was absent).
    pub to: Jid,
    pub iq_type: IqType,
    pub stanza: &'a Element,
    pub payload: &'a Element,
}

/// Answers one kind of IQ. `Ok(Some(payload))` becomes the result's child, `Ok(None)` an empty result.
#[async_trait]
pub trait IqHandler: Send + Sync {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError>;
}

/// Something that happened to a session, for modules that keep per-session state.
#[derive(Debug)]
pub enum Event<'a> {
    SessionBound(&'a SessionHandle),
    /// The session sent initial presence (RFC 6121 §4.2): offline messages are due now.
    SessionAvailable(&'a SessionHandle),
    SessionEnded(&'a SessionHandle),
}

pub trait EventListener: Send + Sync {
    fn on_event(&self, core: &Arc<Core>, event: &Event<'_>);
}

/// A service discovery identity (XEP-0030 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub category: String,
    pub kind: String,
    pub name: Option<String>,
}

/// A feature of the server.
pub trait Module: Send + Sync {
    fn name(&self) -> &'static str;
    fn register(self: Arc<Self>, reg: &mut ModuleRegistry);
}

type IqKey = (IqType, String, String);
/// Handlers for one IQ key, each with the addresses it answers for.
type IqHandlers = Vec<(IqTarget, Arc<dyn IqHandler>)>;

/// Where modules put what they provide. Built once, read-only afterwards.
#[derive(Default)]
pub struct ModuleRegistry {
    pub(crate) iq: HashMap<IqKey, IqHandlers>,
    pub(crate) features: Vec<(IqTarget, String)>,
    pub(crate) identities: Vec<Identity>,
    pub(crate) stages: Vec<(i32, Arc<dyn Stage>)>,
    pub(crate) listeners: Vec<Arc<dyn EventListener>>,
    pub(crate) modules: Vec<&'static str>,
    pub(crate) nonzas: HashMap<(String, String), Arc<dyn NonzaHandler>>,
    pub(crate) stream_features: Vec<FeatureProvider>,
    pub(crate) offline: Option<Arc<dyn OfflineSink>>,
    pub(crate) drains: Vec<Arc<dyn Drain>>,
}

impl ModuleRegistry {
    pub fn new() -> Self {
        ModuleRegistry::default()
    }

    pub fn add_module<M: Module + 'static>(&mut self, module: Arc<M>) {
        self.modules.push(module.name());
        module.register(self);
    }

    /// Registers a handler for IQs of `iq_type` whose payload is `<name xmlns=ns>`.
    pub fn iq(
        &mut self,
        iq_type: IqType,
        ns: &str,
        name: &str,
        target: IqTarget,
        handler: Arc<dyn IqHandler>,
    ) {
        self.iq
            .entry((iq_type, ns.to_owned(), name.to_owned()))
            .or_default()
            .push((target, handler));
    }

    pub fn feature(&mut self, target: IqTarget, var: &str) {
        if !self.features.iter().any(|(t, v)| *t == target && v == var) {
            self.features.push((target, var.to_owned()));
        }
    }

    pub fn identity(&mut self, category: &str, kind: &str, name: Option<&str>) {
        self.identities.push(Identity {
            category: category.into(),
            kind: kind.into(),
            name: name.map(Into::into),
        });
    }

    /// Adds a pipeline stage. Lower priorities run first.
    pub fn stage(&mut self, priority: i32, stage: Arc<dyn Stage>) {
        self.stages.push((priority, stage));
    }

    pub fn listener(&mut self, listener: Arc<dyn EventListener>) {
        self.listeners.push(listener);
    }

    /// Handles `<name xmlns=ns/>` top-level elements on bound client streams.
    pub fn nonza(&mut self, ns: &str, name: &str, handler: Arc<dyn NonzaHandler>) {
        self.nonzas
            .insert((ns.to_owned(), name.to_owned()), handler);
    }

    /// Adds a stream feature offered after authentication.
    pub fn stream_feature(&mut self, provider: FeatureProvider) {
        self.stream_features.push(provider);
    }

    /// Registers work to finish at shutdown, after the sessions are closed and before storage is.
    pub fn drain(&mut self, d: Arc<dyn Drain>) {
        self.drains.push(d);
    }

    /// Sets where undeliverable chat and normal messages go. One sink per server.
    pub fn offline(&mut self, sink: Arc<dyn OfflineSink>) {
        self.offline = Some(sink);
    }

    pub(crate) fn find_iq(
        &self,
        iq_type: IqType,
        payload: &Element,
        target: IqTarget,
    ) -> Option<Arc<dyn IqHandler>> {
        // The key is built from borrowed parts only on this lookup; IQs to the server are rare next to
        // messages, so the allocation does not matter on the hot path.
        let key = (iq_type, payload.ns().to_owned(), payload.name().to_owned());
        self.iq
            .get(&key)?
            .iter()
            .find(|(t, _)| t.covers(target))
            .map(|(_, h)| h.clone())
    }
}
