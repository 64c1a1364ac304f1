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

/// The namespace of XEP-0050 Ad-Hoc Commands: of the `<command/>` element, of the server's disco
/// feature, and the well-known disco node under which the commands are listed (XEP-0050 §2.2).
pub const COMMANDS_NS: &str = "http://jabber.org/protocol/commands";

/// An ad-hoc command the server offers on its own JID (XEP-0050), registered under a disco node
/// with [`ModuleRegistry::command`]. The commands module checks the node, [`Command::allowed`] and
/// the `action` attribute before calling [`Command::execute`]; service discovery lists the command
/// only to requesters it is allowed for.
#[async_trait]
pub trait Command: Send + Sync {
    /// Whether `requester` (the full JID as stamped by the server) may see and run the command.
    fn allowed(&self, _core: &Core, _requester: &Jid) -> bool {
        true
    }

    /// Runs one stage of the command. `req.payload` is the requester's
    /// `<command xmlns='http://jabber.org/protocol/commands'/>`, whose `action` is absent or one of
    /// the five XEP-0050 §4.1 actions. The answer is the `<command/>` element of the result: the
    /// handler owns the whole exchange, so it echoes `node`, creates and checks `sessionid`, sets
    /// `status`, offers `<actions/>` and keeps whatever state a multi-stage command needs
    /// (XEP-0050 §2.4). Errors go back to the requester as they are, e.g. `bad-request` with
    /// `<bad-sessionid/>` (XEP-0050 §4.4).
    async fn execute(&self, req: IqRequest<'_>) -> Result<Element, StanzaError>;
}

/// Something that happened to a session, for modules that keep per-session state.
#[derive(Debug)]
pub enum Event<'a> {
    SessionBound(&'a SessionHandle),
    /// The session sent initial presence (RFC 6121 §4.2): offline messages are due now.
    SessionAvailable(&'a SessionHandle),
    SessionEnded(&'a SessionHandle),
    /// A session that a stage held back ([`crate::flags::RESTRICTED`]) was released: messages
    /// kept offline for the account are due to it now, whether or not it sent presence.
    SessionReleased(&'a SessionHandle),
}

pub trait EventListener: Send + Sync {
    fn on_event(&self, core: &Arc<Core>, event: &Event<'_>);
}

/// Takes part in opening a client session: adds stream features that depend on the account, and
/// sees each session before it is handed to its task (so that it can set flags such as
/// [`crate::flags::RESTRICTED`] before the first stanza is read).
#[async_trait]
pub trait SessionHook: Send + Sync {
    /// After authentication, when the features for binding are offered: extra features for this
    /// account (RFC 6120 §4.3.2).
    async fn account_features(&self, _core: &Arc<Core>, _account: &BareJid) -> Vec<Element> {
        Vec::new()
    }

    /// The session was bound and is about to start; nothing it sends has been read yet. Stanzas
    /// delivered to it here are written after the bind result.
    async fn binding(&self, core: &Arc<Core>, session: &SessionHandle);
}

/// Data a module keeps in memory from the database and reads again on request, so that what an
/// administrator changes there (shared roster groups, …) takes effect without a restart: the
/// admin operations ask for it after a change, the server at start and on SIGHUP.
#[async_trait]
pub trait Reload: Send + Sync {
    /// The name the data is reloaded by (`"shared-groups"`); see [`Core::reload`].
    fn topic(&self) -> &'static str;

    /// Reads the data again and applies what changed. The error says what could not be read;
    /// the data in force stays as it was.
    async fn reload(&self, core: &Arc<Core>) -> Result<(), String>;
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

/// Whether a feature registered with [`ModuleRegistry::feature_when`] is announced.
type FeatureCondition = fn(&Core) -> bool;

/// An ad-hoc command with the disco node and the label it is listed under (XEP-0050 §2.2).
pub(crate) struct RegisteredCommand {
    pub(crate) node: String,
    pub(crate) name: String,
    pub(crate) handler: Arc<dyn Command>,
}

/// The namespace of XEP-0004 data forms.
const DATA_FORMS_NS: &str = "jabber:x:data";

/// The value of a form's hidden `FORM_TYPE` field (XEP-0068), which names an extended disco
/// form (XEP-0128) and orders it for the capabilities hash (XEP-0115 §5.4).
fn hidden_form_type(form: &Element) -> Option<String> {
    form.children()
        .find(|f| f.is("field", DATA_FORMS_NS) && f.attr("var") == Some("FORM_TYPE"))
        .filter(|f| f.attr("type") == Some("hidden"))
        .and_then(|f| f.get_child("value", DATA_FORMS_NS))
        .map(Element::text)
}

/// Where modules put what they provide. Built once, read-only afterwards.
#[derive(Default)]
pub struct ModuleRegistry {
    pub(crate) iq: HashMap<IqKey, IqHandlers>,
    pub(crate) features: Vec<(IqTarget, String)>,
    pub(crate) features_when: Vec<(IqTarget, String, FeatureCondition)>,
    pub(crate) identities: Vec<Identity>,
    pub(crate) commands: Vec<RegisteredCommand>,
    pub(crate) disco_forms: Vec<Element>,
    pub(crate) stages: Vec<(i32, Arc<dyn Stage>)>,
    pub(crate) listeners: Vec<Arc<dyn EventListener>>,
    pub(crate) modules: Vec<&'static str>,
    pub(crate) nonzas: HashMap<(String, String), Arc<dyn NonzaHandler>>,
    pub(crate) stream_features: Vec<FeatureProvider>,
    pub(crate) offline: Option<Arc<dyn OfflineSink>>,
    pub(crate) drains: Vec<Arc<dyn Drain>>,
    pub(crate) session_hooks: Vec<Arc<dyn SessionHook>>,
    pub(crate) reloads: Vec<Arc<dyn Reload>>,
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

    /// A disco feature announced only while `when` holds for the built core, for features that
    /// depend on what other modules registered (e.g. ad-hoc commands only if there is a command).
    pub fn feature_when(&mut self, target: IqTarget, var: &str, when: FeatureCondition) {
        self.features_when.push((target, var.to_owned(), when));
    }

    /// Offers an ad-hoc command (XEP-0050) under `node` of the server's JID, listed as `name`.
    /// Commands are listed in registration order; a second command on the same node replaces the
    /// first.
    pub fn command(&mut self, node: &str, name: &str, handler: Arc<dyn Command>) {
        let cmd = RegisteredCommand {
            node: node.to_owned(),
            name: name.to_owned(),
            handler,
        };
        match self.commands.iter_mut().find(|c| c.node == node) {
            Some(old) => {
                tracing::warn!(
                    node,
                    "a second ad-hoc command replaces the first on this node"
                );
                *old = cmd;
            }
            None => self.commands.push(cmd),
        }
    }

    /// Adds an extended information form to the server's disco#info (XEP-0128): a `jabber:x:data`
    /// form of type `result` with a hidden `FORM_TYPE` field (XEP-0068). Without that field the
    /// form is not added (XEP-0115 §5.4 would ignore it); a second form of the same `FORM_TYPE`
    /// replaces the first, since two of them make the capabilities hash invalid (XEP-0115 §5.4).
    pub fn disco_form(&mut self, form: Element) {
        let Some(form_type) = hidden_form_type(&form) else {
            tracing::warn!("an extended disco form without a hidden FORM_TYPE is ignored");
            return;
        };
        match self
            .disco_forms
            .iter_mut()
            .find(|f| hidden_form_type(f).as_deref() == Some(form_type.as_str()))
        {
            Some(old) => {
                tracing::warn!(%form_type, "a second extended disco form replaces the first");
                *old = form;
            }
            None => self.disco_forms.push(form),
        }
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

    /// Joins the opening of client sessions.
    pub fn session_hook(&mut self, hook: Arc<dyn SessionHook>) {
        self.session_hooks.push(hook);
    }

    /// Registers work to finish at shutdown, after the sessions are closed and before storage is.
    pub fn drain(&mut self, d: Arc<dyn Drain>) {
        self.drains.push(d);
    }

    /// Registers data the module reads again when [`Core::reload`] is asked for its topic.
    pub fn reload(&mut self, r: Arc<dyn Reload>) {
        self.reloads.push(r);
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
