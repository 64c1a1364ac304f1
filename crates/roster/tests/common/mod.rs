//! An in-process server for the roster tests: a core with the roster module on a memory store,
//! sessions made by hand, and a remote route that records what would leave for other servers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use causerie_core::{
    Core, CoreBuilder, Event, EventListener, Module, ModuleRegistry, Origin, Outbound, RemoteRoute,
    SessionHandle,
};
use causerie_jid::FullJid;
use causerie_roster::state::SubState;
use causerie_roster::{Roster, RosterConfig};
use causerie_stanza::ns;
use causerie_storage::roster::{PendingSubscription, RosterItem, Subscription};
use causerie_storage::{NewUser, Storage};
use causerie_xml::Element;
use tokio::sync::mpsc;

pub const ROSTER: &str = "jabber:iq:roster";

/// Records stanzas routed to other servers.
#[derive(Default)]
pub struct RecordingRemote {
    pub sent: Mutex<Vec<Element>>,
}

impl RemoteRoute for RecordingRemote {
    fn route(&self, _core: &Arc<Core>, stanza: Element) {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stanza);
    }
}

/// Counts `SessionAvailable` events.
#[derive(Default)]
pub struct AvailableCounter {
    pub count: AtomicUsize,
}

impl EventListener for AvailableCounter {
    fn on_event(&self, _core: &Arc<Core>, event: &Event<'_>) {
        if matches!(event, Event::SessionAvailable(_)) {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct CounterModule(Arc<AvailableCounter>);

impl Module for CounterModule {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.listener(self.0.clone());
    }
}

pub struct Env {
    pub core: Arc<Core>,
    pub roster: Arc<Roster>,
    pub storage: Storage,
    pub remote: Arc<RecordingRemote>,
    pub available_events: Arc<AvailableCounter>,
    next_id: AtomicU64,
}

pub struct Client {
    pub handle: SessionHandle,
    rx: mpsc::Receiver<Outbound>,
}

impl Client {
    pub fn jid(&self) -> &str {
        self.handle.jid().as_str()
    }

    /// Everything queued to the session so far.
    pub fn take(&mut self) -> Vec<Element> {
        let mut out = Vec::new();
        while let Ok(o) = self.rx.try_recv() {
            if let Outbound::Stanza(s) = o {
                out.push(s.element.clone());
            }
        }
        out
    }
}

pub fn parse(xml: &str) -> Element {
    Element::parse(xml.as_bytes(), ns::CLIENT).expect("test XML")
}

impl Env {
    pub async fn new() -> Env {
        Env::with_config(RosterConfig::default()).await
    }

    pub async fn with_config(config: RosterConfig) -> Env {
        let storage = Storage::memory();
        let roster = Roster::with_config(storage.clone(), config);
        let available_events = Arc::new(AvailableCounter::default());
        let mut builder = CoreBuilder::new(["example.com".to_owned()]);
        builder.modules().add_module(roster.clone());
        builder
            .modules()
            .add_module(Arc::new(CounterModule(available_events.clone())));
        let core = builder.build();
        let remote = Arc::new(RecordingRemote::default());
        core.set_remote_route(remote.clone());
        Env {
            core,
            roster,
            storage,
            remote,
            available_events,
            next_id: AtomicU64::new(1),
        }
    }

    pub async fn user(&self, name: &str) {
        self.storage
            .users
            .create_user(&NewUser {
                username: name.into(),
                domain: "example.com".into(),
                credentials: vec![],
            })
            .await
            .expect("create user");
    }

    /// Binds a session for `full` (e.g. "juliet@example.com/balcony").
    pub fn connect(&self, full: &str) -> Client {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (handle, rx) = SessionHandle::new(id, FullJid::parse(full).expect("jid"), None, 256);
        assert!(matches!(
            self.core.registry.bind(handle.clone(), 10),
            causerie_core::BindOutcome::Bound
        ));
        self.core.session_bound(&handle);
        Client { handle, rx }
    }

    /// Sends `xml` from the session as the client listener would (with `from` stamped), then
    /// waits until the module is done with everything it caused.
    pub async fn send(&self, c: &Client, xml: &str) {
        let mut el = parse(xml);
        el.set_attr("from", c.jid());
        self.core
            .process(&Origin::Session(c.handle.clone()), el)
            .await
            .expect("not terminated");
        self.settle().await;
    }

    /// A stanza from another server.
    pub async fn remote_sends(&self, domain: &str, xml: &str) {
        let mut el = parse(xml);
        // Stanzas on server-to-server streams are in jabber:server.
        el = retag(el, ns::SERVER);
        self.core
            .process(
                &Origin::Remote {
                    domain: domain.into(),
                },
                el,
            )
            .await
            .expect("not terminated");
        self.settle().await;
    }

    pub async fn settle(&self) {
        self.roster.settle().await;
    }

    /// A session that asked for its roster and sent initial presence; what it received is drained.
    pub async fn online(&self, full: &str) -> Client {
        let mut c = self.connect(full);
        self.send(
            &c,
            "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
        )
        .await;
        self.send(&c, "<presence/>").await;
        c.take();
        c
    }

    pub async fn end(&self, c: &Client) {
        self.core.session_ended(&c.handle);
        self.settle().await;
    }

    pub fn remote_take(&self) -> Vec<Element> {
        std::mem::take(&mut *self.remote.sent.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub async fn item(&self, owner: &str, contact: &str) -> Option<RosterItem> {
        self.storage
            .roster
            .item(owner, "example.com", contact)
            .await
            .expect("store")
    }

    /// The Appendix A state of `contact` for local account `owner`, counting a pending request
    /// kept without a roster item.
    pub async fn state(&self, owner: &str, contact: &str) -> SubState {
        let pending = self.pending(owner).await.iter().any(|p| p == contact);
        match self.item(owner, contact).await {
            Some(i) => SubState::new(i.subscription, i.pending_out, i.pending_in),
            None => SubState::new(Subscription::None, false, pending),
        }
    }

    pub async fn pending(&self, owner: &str) -> Vec<String> {
        self.storage
            .roster
            .pending_in(owner, "example.com")
            .await
            .expect("store")
            .into_iter()
            .map(|p| p.contact)
            .collect()
    }

    /// Puts `contact` in `owner`'s roster in state `s` (and keeps a request when it is pending in).
    pub async fn set_state(&self, owner: &str, contact: &str, s: SubState, approved: bool) {
        let item = RosterItem {
            jid: contact.into(),
            name: None,
            subscription: s.subscription,
            pending_out: s.pending_out,
            pending_in: s.pending_in,
            approved,
            groups: vec![],
        };
        self.storage
            .roster
            .put_item(owner, "example.com", &item)
            .await
            .expect("store");
        if s.pending_in {
            let p = PendingSubscription {
                contact: contact.into(),
                stanza: format!(
                    "<presence type='subscribe' from='{contact}' to='{owner}@example.com'/>"
                ),
            };
            self.storage
                .roster
                .add_pending_in(owner, "example.com", &p)
                .await
                .expect("store");
        }
    }
}

/// The element with its namespace (and that of its same-namespace children) changed.
pub fn retag(el: Element, to_ns: &str) -> Element {
    let from_ns = el.ns().to_owned();
    let mut out = Element::new(el.name(), to_ns);
    for (k, v) in el.attrs() {
        out.set_attr(k, v);
    }
    for node in el.nodes() {
        match node {
            causerie_xml::Node::Element(c) if c.ns() == from_ns => {
                out.push_child(retag(c.clone(), to_ns))
            }
            causerie_xml::Node::Element(c) => out.push_child(c.clone()),
            causerie_xml::Node::Text(t) => out.push_text(t.clone()),
        }
    }
    out
}

pub fn is_presence(el: &Element, kind: Option<&str>) -> bool {
    el.name() == "presence" && el.attr("type") == kind
}

/// Presence stanzas of `kind` (None: available) from `from`.
pub fn presences<'a>(els: &'a [Element], kind: Option<&str>, from: &str) -> Vec<&'a Element> {
    els.iter()
        .filter(|e| is_presence(e, kind) && e.attr("from") == Some(from))
        .collect()
}

/// The `<item/>`s of the roster pushes among `els`.
pub fn pushes(els: &[Element]) -> Vec<Element> {
    els.iter()
        .filter(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .filter_map(|e| e.get_child("query", ROSTER))
        .filter_map(|q| q.get_child("item", ROSTER).cloned())
        .collect()
}

/// The version carried by the first roster push.
pub fn push_version(els: &[Element]) -> Option<String> {
    els.iter()
        .filter(|e| e.name() == "iq" && e.attr("type") == Some("set"))
        .filter_map(|e| e.get_child("query", ROSTER))
        .find_map(|q| q.attr("ver").map(str::to_owned))
}

pub fn iq_result<'a>(els: &'a [Element], id: &str) -> Option<&'a Element> {
    els.iter()
        .find(|e| e.name() == "iq" && e.attr("id") == Some(id))
}

pub fn error_condition(el: &Element) -> Option<String> {
    let err = el.children().find(|c| c.name() == "error")?;
    err.children()
        .find(|c| c.ns() == ns::STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}
