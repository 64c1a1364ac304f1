//! The router: where each stanza goes, per `docs/stanza-routing.md` (RFC 6120 §10, RFC 6121 §8).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use causerie_jid::{BareJid, FullJid, Jid};
use causerie_stanza::{
    IqType, MessageType, PresenceType, StanzaError, StanzaErrorCondition as Cond, StanzaKind,
    StreamError,
};
use causerie_xml::Element;

use crate::module::{
    Command, Event, Identity, IqRequest, IqTarget, ModuleRegistry, OfflineOutcome, StageContext,
    Verdict,
};
use crate::session::{OutStanza, SessionHandle};

/// Where a stanza entered the server.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A bound client session.
    Session(SessionHandle),
    /// An authenticated server-to-server stream for this remote domain.
    Remote { domain: String },
    /// The server itself (modules, announcements, errors it generates).
    Server,
}

impl Origin {
    pub fn session(&self) -> Option<&SessionHandle> {
        match self {
            Origin::Session(s) => Some(s),
            _ => None,
        }
    }
}

/// Delivery to domains the server does not host. Federation replaces the default, which bounces.
pub trait RemoteRoute: Send + Sync {
    fn route(&self, core: &Arc<Core>, stanza: Element);

    /// Whether federation with `domain` is allowed now (a partner, or a domain an open policy
    /// lets in). Without federation, none is.
    fn allows(&self, _domain: &str) -> bool {
        false
    }
}

struct NoFederation;

impl RemoteRoute for NoFederation {
    fn route(&self, core: &Arc<Core>, stanza: Element) {
        core.bounce(
            &stanza,
            StanzaError::new(Cond::RemoteServerNotFound).with_text("federation is not enabled"),
        );
    }
}

/// Builds the [`Core`] from the hosted domains and the registered modules.
pub struct CoreBuilder {
    hosts: Vec<String>,
    modules: ModuleRegistry,
    max_sessions_per_user: usize,
}

impl CoreBuilder {
    pub fn new(hosts: impl IntoIterator<Item = String>) -> Self {
        CoreBuilder {
            hosts: hosts.into_iter().collect(),
            modules: ModuleRegistry::new(),
            max_sessions_per_user: 32,
        }
    }

    pub fn modules(&mut self) -> &mut ModuleRegistry {
        &mut self.modules
    }

    pub fn max_sessions_per_user(mut self, n: usize) -> Self {
        self.max_sessions_per_user = n.max(1);
        self
    }

    pub fn build(mut self) -> Arc<Core> {
        self.modules.stages.sort_by_key(|(p, _)| *p);
        let mut hosts = self.hosts;
        hosts.sort_unstable();
        hosts.dedup();
        Arc::new(Core {
            hosts: hosts.into_boxed_slice(),
            registry: crate::registry::Registry::new(),
            modules: self.modules,
            remote: RwLock::new(Arc::new(NoFederation)),
            max_sessions_per_user: self.max_sessions_per_user,
            stream_features: OnceLock::new(),
            stanzas_in: AtomicU64::new(0),
        })
    }
}

/// The shared hub: hosted domains, sessions, modules and the routing rules.
pub struct Core {
    /// Sorted. A server hosts a few domains: a binary search of them is quicker than hashing
    /// the name, and this is asked for every stanza routed.
    hosts: Box<[String]>,
    pub registry: crate::registry::Registry,
    modules: ModuleRegistry,
    remote: RwLock<Arc<dyn RemoteRoute>>,
    pub max_sessions_per_user: usize,
    stream_features: OnceLock<Vec<Element>>,
    /// Stanzas handed to [`Core::process`] since start (clients and remote servers).
    stanzas_in: AtomicU64,
}

impl Core {
    #[inline]
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.hosts
            .binary_search_by(|h| h.as_str().cmp(domain))
            .is_ok()
    }

    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(String::as_str)
    }

    /// Whether federation with `domain` is allowed now ([`RemoteRoute::allows`]).
    pub fn federation_allows(&self, domain: &str) -> bool {
        self.remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .allows(domain)
    }

    pub fn set_remote_route(&self, route: Arc<dyn RemoteRoute>) {
        *self.remote.write().unwrap_or_else(|e| e.into_inner()) = route;
    }

    pub fn module_names(&self) -> &[&'static str] {
        &self.modules.modules
    }

    /// Disco features for the server (`IqTarget::Server`) or for accounts (`IqTarget::Account`), sorted.
    pub fn features(&self, target: IqTarget) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .modules
            .features
            .iter()
            .filter(|(t, _)| *t == target || *t == IqTarget::Both)
            .map(|(_, f)| f.as_str())
            .chain(
                self.modules
                    .features_when
                    .iter()
                    .filter(|(t, _, when)| (*t == target || *t == IqTarget::Both) && when(self))
                    .map(|(_, f, _)| f.as_str()),
            )
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn identities(&self) -> &[Identity] {
        &self.modules.identities
    }

    /// The ad-hoc commands (XEP-0050) as `(node, name, handler)`, in registration order.
    pub fn commands(&self) -> impl Iterator<Item = (&str, &str, &Arc<dyn Command>)> {
        self.modules
            .commands
            .iter()
            .map(|c| (c.node.as_str(), c.name.as_str(), &c.handler))
    }

    /// The ad-hoc command registered under `node`.
    pub fn command(&self, node: &str) -> Option<&Arc<dyn Command>> {
        self.modules
            .commands
            .iter()
            .find(|c| c.node == node)
            .map(|c| &c.handler)
    }

    /// The extended information forms of the server's disco#info (XEP-0128), in registration order.
    pub fn disco_forms(&self) -> &[Element] {
        &self.modules.disco_forms
    }

    /// Stanzas received from clients and remote servers since start, for the statistics
    /// administrators read (a rate is two readings apart).
    pub fn stanzas_processed(&self) -> u64 {
        self.stanzas_in.load(Ordering::Relaxed)
    }

    /// Hands a message to the offline storage (XEP-0160) as the router does for an account with
    /// no available resource. Without an offline module the outcome is a `service-unavailable`
    /// bounce, which is not sent: the caller decides what to do with it.
    pub async fn store_offline(self: &Arc<Self>, to: &BareJid, stanza: &Element) -> OfflineOutcome {
        match &self.modules.offline {
            Some(sink) => sink.store(self, to, stanza).await,
            None => OfflineOutcome::Bounce(
                StanzaError::new(Cond::ServiceUnavailable)
                    .with_text("offline messages are not stored on this server"),
            ),
        }
    }

    /// Lets every module finish its queued work (shutdown, after the sessions have closed).
    pub async fn drain(&self) {
        for d in &self.modules.drains {
            d.drain().await;
        }
    }

    /// Reloads the data of `topic` in every module that keeps it ([`crate::Reload`]), one after
    /// the other; returns how many did. The first failure stops and is returned, naming the topic.
    pub async fn reload(self: &Arc<Self>, topic: &str) -> Result<usize, String> {
        let mut n = 0;
        for r in self.modules.reloads.iter().filter(|r| r.topic() == topic) {
            r.reload(self)
                .await
                .map_err(|e| format!("reloading {topic}: {e}"))?;
            n += 1;
        }
        Ok(n)
    }

    /// Reloads every topic (at start, and on SIGHUP); the failures, one line each.
    pub async fn reload_all(self: &Arc<Self>) -> Result<(), String> {
        let mut failures = Vec::new();
        for r in &self.modules.reloads {
            if let Err(e) = r.reload(self).await {
                failures.push(format!("reloading {}: {e}", r.topic()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Stream features modules offer after authentication, computed once.
    pub fn stream_features(&self) -> &[Element] {
        self.stream_features.get_or_init(|| {
            self.modules
                .stream_features
                .iter()
                .filter_map(|p| p(self))
                .collect()
        })
    }

    /// A non-stanza element from a bound client. `Err` closes the stream; unknown elements get
    /// `<unsupported-stanza-type/>` (RFC 6120 §4.9.3.24).
    pub fn handle_nonza(
        self: &Arc<Self>,
        session: &SessionHandle,
        el: &Element,
    ) -> Result<Option<Element>, StreamError> {
        match self
            .modules
            .nonzas
            .get(&(el.ns().to_owned(), el.name().to_owned()))
        {
            Some(h) => h.handle(self, session, el),
            None => Err(StreamError::new(
                causerie_stanza::StreamErrorCondition::UnsupportedStanzaType,
            )
            .with_text(format!(
                "<{}/> in {} is not supported here",
                el.name(),
                el.ns()
            ))),
        }
    }

    pub fn emit(self: &Arc<Self>, event: Event<'_>) {
        for l in &self.modules.listeners {
            l.on_event(self, &event);
        }
    }

    /// Stream features that depend on the authenticated account, from the session hooks.
    pub async fn account_features(self: &Arc<Self>, account: &BareJid) -> Vec<Element> {
        let mut out = Vec::new();
        for h in &self.modules.session_hooks {
            out.extend(h.account_features(self, account).await);
        }
        out
    }

    /// A session was bound and is about to start: the session hooks see it first.
    pub async fn session_binding(self: &Arc<Self>, s: &SessionHandle) {
        for h in &self.modules.session_hooks {
            h.binding(self, s).await;
        }
    }

    /// A session finished binding.
    pub fn session_bound(self: &Arc<Self>, s: &SessionHandle) {
        self.emit(Event::SessionBound(s));
    }

    /// A session ended, cleanly or not: its other resources learn it is gone (RFC 6121 §4.5.2).
    pub fn session_ended(self: &Arc<Self>, s: &SessionHandle) {
        self.registry.unbind(s.jid(), s.id());
        if s.info.is_available() {
            s.info.set_presence(false, 0);
            let unavailable = Element::new("presence", causerie_stanza::ns::CLIENT)
                .with_attr("from", s.jid().as_str())
                .with_attr("type", "unavailable");
            self.broadcast_to_own_resources(&s.jid().to_bare(), unavailable, None);
        }
        self.emit(Event::SessionEnded(s));
    }

    /// Runs the inbound pipeline, then routes. `Err` asks the origin's stream to close with that error.
    pub async fn process(
        self: &Arc<Self>,
        origin: &Origin,
        mut stanza: Element,
    ) -> Result<(), StreamError> {
        self.stanzas_in.fetch_add(1, Ordering::Relaxed);
        if !self.modules.stages.is_empty() {
            let ctx = StageContext { core: self, origin };
            for (_, stage) in &self.modules.stages {
                match stage.inbound(&ctx, &mut stanza) {
                    Verdict::Pass => {}
                    Verdict::Handled => return Ok(()),
                    Verdict::Reject(err) => {
                        self.bounce(&stanza, err);
                        return Ok(());
                    }
                    Verdict::Terminate(e) => return Err(e),
                }
            }
        }
        self.route(origin, stanza).await;
        Ok(())
    }

    /// Routes a stanza whose `from` is already trustworthy.
    pub async fn route(self: &Arc<Self>, origin: &Origin, stanza: Element) {
        let Some(kind) = StanzaKind::of(&stanza) else {
            return;
        };
        let to = match causerie_stanza::to_jid(&stanza) {
            Ok(to) => to,
            Err(err) => return self.bounce(&stanza, err),
        };
        let from = causerie_stanza::from_jid(&stanza).ok().flatten();
        let to = match to {
            Some(to) => to,
            None => {
                // RFC 6120 §10.3: no `to` means the sender's own account.
                let Some(from) = from else { return };
                match kind {
                    StanzaKind::Iq => {
                        return self
                            .dispatch_iq(origin, stanza, from.to_bare().into(), IqTarget::Account)
                            .await;
                    }
                    StanzaKind::Presence => return self.own_presence(origin, stanza),
                    StanzaKind::Message => Jid::from(from.to_bare()),
                }
            }
        };
        if !self.is_local_domain(to.domain()) {
            let remote = self
                .remote
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return remote.route(self, stanza);
        }
        if to.node().is_none() {
            return self.to_server(origin, stanza, kind, to).await;
        }
        match to.clone().try_into_full() {
            Ok(full) => self.to_full(origin, stanza, kind, full).await,
            Err(bare) => self.to_bare(origin, stanza, kind, bare.to_bare()).await,
        }
    }

    async fn to_server(
        self: &Arc<Self>,
        origin: &Origin,
        stanza: Element,
        kind: StanzaKind,
        to: Jid,
    ) {
        match kind {
            StanzaKind::Iq if to.resource().is_none() => {
                self.dispatch_iq(origin, stanza, to, IqTarget::Server).await
            }
            StanzaKind::Iq | StanzaKind::Message => {
                self.bounce(&stanza, StanzaError::new(Cond::ServiceUnavailable));
            }
            // Presence to the server itself carries nothing the server acts on yet.
            StanzaKind::Presence => {}
        }
    }

    async fn to_full(
        self: &Arc<Self>,
        origin: &Origin,
        stanza: Element,
        kind: StanzaKind,
        to: FullJid,
    ) {
        // A restricted session is not there for anybody but the server (`flags::RESTRICTED`).
        let session = self.registry.get(&to).filter(|s| {
            !s.info.flag(crate::session::flags::RESTRICTED) || matches!(origin, Origin::Server)
        });
        if let Some(session) = session {
            let out = OutStanza::new(stanza);
            self.deliver(&session, &out);
            if kind == StanzaKind::Message {
                self.after_delivery(&to.to_bare(), std::slice::from_ref(&session), &out);
            }
            return;
        }
        match kind {
            // RFC 6121 §8.5.3.2.1: a message to an unavailable resource is handled as if to the bare JID,
            // except groupchat (error) and headline (dropped).
            StanzaKind::Message => match MessageType::of(&stanza) {
                MessageType::Normal | MessageType::Chat => {
                    self.to_bare(origin, stanza, kind, to.to_bare()).await
                }
                MessageType::Groupchat => {
                    self.bounce(&stanza, StanzaError::new(Cond::ServiceUnavailable))
                }
                MessageType::Headline | MessageType::Error => {}
            },
            StanzaKind::Iq => self.bounce(&stanza, StanzaError::new(Cond::ServiceUnavailable)),
            // RFC 6121 §4.6.3 (directed presence to an unavailable resource) and §3 (subscription
            // stanzas are for the bare JID): without a session there is nothing to deliver to.
            StanzaKind::Presence => {}
        }
    }

    async fn to_bare(
        self: &Arc<Self>,
        origin: &Origin,
        stanza: Element,
        kind: StanzaKind,
        to: BareJid,
    ) {
        match kind {
            StanzaKind::Iq => {
                self.dispatch_iq(origin, stanza, to.into(), IqTarget::Account)
                    .await
            }
            StanzaKind::Message => self.message_to_bare(stanza, &to).await,
            StanzaKind::Presence => {
                // Directed presence to a bare JID goes to every available resource (RFC 6121 §4.6).
                match PresenceType::of(&stanza) {
                    None => {
                        return self.bounce(
                            &stanza,
                            StanzaError::new(Cond::BadRequest).with_text("unknown presence type"),
                        );
                    }
                    // Probes are for the server to answer, never for clients (RFC 6121 §4.3).
                    Some(PresenceType::Probe) => return,
                    Some(_) => {}
                }
                let out = OutStanza::new(stanza);
                self.registry.with_resources(&to, |list| {
                    for s in list.iter().filter(|s| s.info.is_available()) {
                        self.deliver(s, &out);
                    }
                });
            }
        }
    }

    /// RFC 6121 §8.5.2.1: chat and normal go to the available resources of highest non-negative
    /// priority (all of them on a tie), headline to every non-negative one; groupchat is an error.
    async fn message_to_bare(self: &Arc<Self>, stanza: Element, to: &BareJid) {
        let mtype = MessageType::of(&stanza);
        if mtype == MessageType::Groupchat {
            return self.bounce(&stanza, StanzaError::new(Cond::ServiceUnavailable));
        }
        let out = OutStanza::new(stanza);
        let recipients: Vec<SessionHandle> = self.registry.with_resources(to, |list| {
            let candidates = list
                .iter()
                .filter(|s| s.info.is_available() && s.info.priority() >= 0);
            let top = match mtype {
                MessageType::Headline => None,
                _ => candidates.clone().map(|s| s.info.priority()).max(),
            };
            candidates
                .filter(|s| top.is_none_or(|p| s.info.priority() == p))
                .cloned()
                .collect()
        });
        if !recipients.is_empty() {
            for s in &recipients {
                self.deliver(s, &out);
            }
            self.after_delivery(to, &recipients, &out);
            return;
        }
        if !matches!(mtype, MessageType::Chat | MessageType::Normal) {
            return;
        }
        // RFC 6121 §8.5.2.2.1: stored for later (XEP-0160) or the sender learns it was not delivered.
        let outcome = match &self.modules.offline {
            Some(sink) => sink.store(self, to, &out.element).await,
            None => OfflineOutcome::Bounce(
                StanzaError::new(Cond::ServiceUnavailable)
                    .with_text("the recipient is not available"),
            ),
        };
        if let OfflineOutcome::Bounce(err) = outcome {
            self.bounce(&out.element, err);
        }
    }

    fn after_delivery(
        self: &Arc<Self>,
        to: &BareJid,
        recipients: &[SessionHandle],
        out: &Arc<OutStanza>,
    ) {
        for (_, stage) in &self.modules.stages {
            stage.delivered(self, to, recipients, out);
        }
    }

    /// Presence without `to` from a client: availability and priority, then to the user's own
    /// available resources (RFC 6121 §4.2.2, §4.4.2, §4.5.2).
    fn own_presence(self: &Arc<Self>, origin: &Origin, stanza: Element) {
        let Some(session) = origin.session() else {
            return;
        };
        let available = match PresenceType::of(&stanza) {
            Some(PresenceType::Available) => true,
            Some(PresenceType::Unavailable) => false,
            // Subscription management without a `to` is meaningless; probes are the server's business.
            Some(_) => return,
            None => {
                return self.bounce(
                    &stanza,
                    StanzaError::new(Cond::BadRequest).with_text("unknown presence type"),
                );
            }
        };
        let priority = stanza
            .get_child("priority", stanza.ns())
            .and_then(|p| p.text().trim().parse::<i8>().ok())
            .unwrap_or(0);
        session.info.set_presence(available, priority);
        let initial = available
            && !session
                .info
                .set_flag(crate::session::flags::INITIAL_PRESENCE_SENT, true);
        self.broadcast_to_own_resources(&session.jid().to_bare(), stanza, None);
        if initial {
            self.emit(Event::SessionAvailable(session));
        }
    }

    fn broadcast_to_own_resources(
        self: &Arc<Self>,
        bare: &BareJid,
        stanza: Element,
        except: Option<u64>,
    ) {
        let out = OutStanza::new(stanza);
        self.registry.with_resources(bare, |list| {
            for s in list.iter().filter(|s| {
                s.info.is_available() || s.jid().as_str() == out.element.attr("from").unwrap_or("")
            }) {
                if Some(s.id()) != except {
                    self.deliver(s, &out);
                }
            }
        });
    }

    /// Hands a stanza to a local session, through the outbound filters.
    pub fn deliver(&self, session: &SessionHandle, out: &Arc<OutStanza>) {
        for (_, stage) in &self.modules.stages {
            if !stage.outbound(self, session, out) {
                return;
            }
        }
        let _ = session.deliver_stanza(out);
    }

    /// Sends an IQ to the handler registered for its payload, and the answer back.
    async fn dispatch_iq(
        self: &Arc<Self>,
        origin: &Origin,
        stanza: Element,
        to: Jid,
        target: IqTarget,
    ) {
        let Some(iq_type) = stanza.attr("type").and_then(IqType::parse) else {
            return self.bounce(
                &stanza,
                StanzaError::new(Cond::BadRequest).with_text("missing or unknown IQ type"),
            );
        };
        if !iq_type.is_request() {
            // A response addressed to the server or an account with nobody waiting for it: drop it.
            return;
        }
        if stanza.attr("id").is_none() {
            return self.bounce(
                &stanza,
                StanzaError::new(Cond::BadRequest).with_text("an IQ needs an id"),
            );
        }
        let payload = match causerie_stanza::iq_payload(&stanza) {
            Ok(p) => p,
            Err(e) => return self.bounce(&stanza, e),
        };
        let Some(handler) = self.modules.find_iq(iq_type, payload, target) else {
            return self.bounce(&stanza, StanzaError::new(Cond::ServiceUnavailable));
        };
        let Some(from) = causerie_stanza::from_jid(&stanza).ok().flatten() else {
            return;
        };
        let req = IqRequest {
            core: self,
            origin,
            from,
            to: to.clone(),
            iq_type,
            stanza: &stanza,
            payload,
        };
        match handler.handle(req).await {
            Ok(payload) => {
                let mut reply = causerie_stanza::iq_result(&stanza);
                // The answer comes from the entity that was addressed, even when `to` was absent.
                reply.set_attr("from", to.as_str());
                if let Some(p) = payload {
                    reply.push_child(p);
                }
                self.send_local_or_remote(reply);
            }
            Err(err) => self.bounce(&stanza, err),
        }
    }

    /// Answers `stanza` with a stanza error, unless it is an error itself (RFC 6120 §8.3.1).
    pub fn bounce(self: &Arc<Self>, stanza: &Element, err: StanzaError) {
        if causerie_stanza::is_error(stanza) || stanza.attr("from").is_none() {
            return;
        }
        if stanza.name() == "iq"
            && !stanza
                .attr("type")
                .and_then(IqType::parse)
                .is_some_and(IqType::is_request)
        {
            return;
        }
        crate::metrics::stanza_error(err.condition);
        let mut reply = causerie_stanza::error_reply(stanza, &err);
        if reply.attr("from").is_none() {
            // No `to` means the sender's own account answered.
            if let Some(Ok(j)) = stanza.attr("from").map(Jid::parse) {
                reply.set_attr("from", j.to_bare().as_str());
            }
        }
        self.send_local_or_remote(reply);
    }

    /// Delivers a stanza the server generated: to a local full JID directly, elsewhere through routing.
    pub fn send_local_or_remote(self: &Arc<Self>, stanza: Element) {
        let Ok(Some(to)) = causerie_stanza::to_jid(&stanza) else {
            return;
        };
        if self.is_local_domain(to.domain()) {
            if let Ok(full) = to.clone().try_into_full() {
                if let Some(s) = self.registry.get(&full) {
                    self.deliver(&s, &OutStanza::new(stanza));
                }
                return;
            }
            if to.node().is_some() {
                self.message_or_presence_to_bare_once(stanza, &to.to_bare());
            }
            return;
        }
        let remote = self
            .remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        remote.route(self, stanza);
    }

    /// Server-generated stanzas to a bare JID: to all available resources, never bounced (no loops).
    fn message_or_presence_to_bare_once(self: &Arc<Self>, stanza: Element, to: &BareJid) {
        let out = OutStanza::new(stanza);
        self.registry.with_resources(to, |list| {
            for s in list.iter().filter(|s| s.info.is_available()) {
                self.deliver(s, &out);
            }
        });
    }
}
