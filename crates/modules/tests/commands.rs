//! Ad-hoc commands (XEP-0050) and extended disco information (XEP-0128) in a core built in
//! process, with commands and forms registered by a test module the way other crates do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use causerie_core::{
    COMMANDS_NS, Command, Core, CoreBuilder, IqRequest, IqTarget, Module, ModuleRegistry, Origin,
    Outbound, SessionHandle,
};
use causerie_jid::{FullJid, Jid};
use causerie_modules::{ImOptions, caps::Caps, register_defaults, register_im};
use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond, ns};
use causerie_storage::{NewUser, Storage};
use causerie_xml::Element;
use tokio::sync::mpsc::Receiver;

const DOMAIN: &str = "example.com";
const DATA: &str = "jabber:x:data";
const ECHO: &str = "urn:test:echo";
const ADMIN: &str = "urn:test:admin";
const STRICT: &str = "urn:test:strict";

/// Answers at once, telling who ran it with which action.
struct Echo;

#[async_trait]
impl Command for Echo {
    async fn execute(&self, req: IqRequest<'_>) -> Result<Element, StanzaError> {
        let action = req.payload.attr("action").unwrap_or("execute");
        Ok(Element::new("command", COMMANDS_NS)
            .with_attr("node", ECHO)
            .with_attr("sessionid", "echo-1")
            .with_attr("status", "completed")
            .with_child(
                Element::new("note", COMMANDS_NS)
                    .with_attr("type", "info")
                    .with_text(format!("{} {action}", req.from)),
            ))
    }
}

/// Only Juliet may see or run it; counts its runs.
#[derive(Default)]
struct JulietOnly {
    runs: AtomicUsize,
}

#[async_trait]
impl Command for JulietOnly {
    fn allowed(&self, core: &Core, requester: &Jid) -> bool {
        core.is_local_domain(requester.domain()) && requester.node() == Some("juliet")
    }

    async fn execute(&self, _req: IqRequest<'_>) -> Result<Element, StanzaError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        Ok(Element::new("command", COMMANDS_NS)
            .with_attr("node", ADMIN)
            .with_attr("status", "completed"))
    }
}

/// Refuses any session it did not start, as a multi-stage command does (XEP-0050 §4.4).
struct Strict;

#[async_trait]
impl Command for Strict {
    async fn execute(&self, req: IqRequest<'_>) -> Result<Element, StanzaError> {
        match req.payload.attr("sessionid") {
            None => Ok(Element::new("command", COMMANDS_NS)
                .with_attr("node", STRICT)
                .with_attr("sessionid", "strict-1")
                .with_attr("status", "executing")),
            Some(_) => Err(StanzaError::new(Cond::BadRequest)
                .with_app(Element::new("bad-sessionid", COMMANDS_NS))),
        }
    }
}

fn field(var: &str, kind: Option<&str>, values: &[&str]) -> Element {
    let mut f = Element::new("field", DATA).with_attr("var", var);
    if let Some(kind) = kind {
        f.set_attr("type", kind);
    }
    for v in values {
        f.push_child(Element::new("value", DATA).with_text(*v));
    }
    f
}

fn form(form_type: Option<&str>, fields: &[(&str, &[&str])]) -> Element {
    let mut x = Element::new("x", DATA).with_attr("type", "result");
    if let Some(t) = form_type {
        x.push_child(field("FORM_TYPE", Some("hidden"), &[t]));
    }
    for (var, values) in fields {
        x.push_child(field(var, None, values));
    }
    x
}

/// What a module such as the usage policy registers: commands and an extended form.
struct TestModule {
    juliet_only: Arc<JulietOnly>,
    forms: Vec<Element>,
}

impl TestModule {
    fn new(forms: Vec<Element>) -> Arc<Self> {
        Arc::new(TestModule {
            juliet_only: Arc::default(),
            forms,
        })
    }
}

impl Module for TestModule {
    fn name(&self) -> &'static str {
        "test-commands"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.command(ECHO, "Echo", Arc::new(Echo));
        reg.command(ADMIN, "Juliet only", self.juliet_only.clone());
        reg.command(STRICT, "Strict", Arc::new(Strict));
        for f in &self.forms {
            reg.disco_form(f.clone());
        }
    }
}

fn terms_form() -> Element {
    form(
        Some("urn:test:terms"),
        &[("version", &["3"]), ("url", &["https://example.com/terms"])],
    )
}

/// The default and instant-messaging modules, with `extra` registered after them, or before
/// them when `first` is set.
async fn build(extra: Option<Arc<TestModule>>, first: bool) -> Arc<Core> {
    let storage = Storage::memory();
    for user in ["juliet", "romeo"] {
        storage
            .users
            .create_user(&NewUser {
                username: user.into(),
                domain: DOMAIN.into(),
                credentials: vec![],
            })
            .await
            .expect("create user");
    }
    let mut builder = CoreBuilder::new([DOMAIN.to_owned()]);
    if let (Some(m), true) = (&extra, first) {
        builder.modules().add_module(m.clone());
    }
    register_defaults(builder.modules(), &storage);
    register_im(builder.modules(), &storage, &ImOptions::default());
    if let (Some(m), false) = (&extra, first) {
        builder.modules().add_module(m.clone());
    }
    builder.build()
}

struct Client {
    core: Arc<Core>,
    handle: SessionHandle,
    rx: Receiver<Outbound>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn connect(core: &Arc<Core>, jid: &str) -> Client {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) as u64;
    let (handle, rx) = SessionHandle::new(id, FullJid::parse(jid).expect("jid"), None, 64);
    assert!(matches!(
        core.registry.bind(handle.clone(), 10),
        causerie_core::BindOutcome::Bound
    ));
    core.session_bound(&handle);
    Client {
        core: core.clone(),
        handle,
        rx,
    }
}

impl Client {
    /// Sends an IQ to the server and returns the one answer.
    async fn ask(&mut self, kind: &str, payload: Element) -> Element {
        self.ask_to(DOMAIN, kind, payload).await
    }

    async fn ask_to(&mut self, to: &str, kind: &str, payload: Element) -> Element {
        let el = Element::new("iq", ns::CLIENT)
            .with_attr("type", kind)
            .with_attr("id", "q1")
            .with_attr("to", to)
            .with_attr("from", self.handle.jid().as_str())
            .with_child(payload);
        self.core
            .process(&Origin::Session(self.handle.clone()), el)
            .await
            .expect("no stream error");
        let mut out = Vec::new();
        while let Ok(o) = self.rx.try_recv() {
            if let Outbound::Stanza(s) = o {
                out.push(s.element.clone());
            }
        }
        assert_eq!(
            out.len(),
            1,
            "{:?}",
            out.iter().map(Element::to_xml).collect::<Vec<_>>()
        );
        out.remove(0)
    }

    async fn info(&mut self, node: Option<&str>) -> Element {
        self.ask("get", query(ns::DISCO_INFO, node)).await
    }

    async fn items(&mut self, node: Option<&str>) -> Element {
        self.ask("get", query(ns::DISCO_ITEMS, node)).await
    }

    async fn run(&mut self, node: Option<&str>, attrs: &[(&str, &str)]) -> Element {
        let mut c = Element::new("command", COMMANDS_NS);
        if let Some(node) = node {
            c.set_attr("node", node);
        }
        for (k, v) in attrs {
            c.set_attr(*k, *v);
        }
        self.ask("set", c).await
    }
}

fn query(ns: &str, node: Option<&str>) -> Element {
    let mut q = Element::new("query", ns);
    if let Some(node) = node {
        q.set_attr("node", node);
    }
    q
}

fn payload(reply: &Element) -> &Element {
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    reply.children().next().expect("a payload")
}

/// The defined condition of an error reply, and its application-specific condition if any.
fn error(reply: &Element) -> (String, Option<(String, String)>) {
    assert_eq!(reply.attr("type"), Some("error"), "{}", reply.to_xml());
    let err = reply.get_child("error", ns::CLIENT).expect("<error/>");
    let defined = err
        .children()
        .find(|c| c.ns() == ns::STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .expect("a defined condition");
    let app = err
        .children()
        .find(|c| c.ns() != ns::STANZAS)
        .map(|c| (c.ns().to_owned(), c.name().to_owned()));
    (defined, app)
}

fn features(q: &Element) -> Vec<&str> {
    q.children()
        .filter(|c| c.is("feature", ns::DISCO_INFO))
        .filter_map(|c| c.attr("var"))
        .collect()
}

fn identities(q: &Element) -> Vec<(&str, &str, Option<&str>)> {
    q.children()
        .filter(|c| c.is("identity", ns::DISCO_INFO))
        .map(|c| {
            (
                c.attr("category").unwrap_or_default(),
                c.attr("type").unwrap_or_default(),
                c.attr("name"),
            )
        })
        .collect()
}

fn forms(q: &Element) -> Vec<Element> {
    q.children().filter(|c| c.is("x", DATA)).cloned().collect()
}

fn caps_ver(core: &Core) -> String {
    Caps::element(core).attr("ver").expect("ver").to_owned()
}

#[tokio::test]
async fn commands_are_listed_to_those_allowed_in_registration_order() {
    let core = build(Some(TestModule::new(vec![])), false).await;
    let mut juliet = connect(&core, "juliet@example.com/balcony");
    let mut romeo = connect(&core, "romeo@example.com/orchard");

    let reply = juliet.items(Some(COMMANDS_NS)).await;
    let q = payload(&reply);
    assert_eq!(q.attr("node"), Some(COMMANDS_NS));
    let items: Vec<(Option<&str>, Option<&str>, Option<&str>)> = q
        .children()
        .map(|i| {
            assert!(i.is("item", ns::DISCO_ITEMS));
            (i.attr("jid"), i.attr("node"), i.attr("name"))
        })
        .collect();
    assert_eq!(
        items,
        [
            (Some(DOMAIN), Some(ECHO), Some("Echo")),
            (Some(DOMAIN), Some(ADMIN), Some("Juliet only")),
            (Some(DOMAIN), Some(STRICT), Some("Strict")),
        ]
    );

    // Romeo is not shown the command he may not run.
    let reply = romeo.items(Some(COMMANDS_NS)).await;
    let nodes: Vec<&str> = payload(&reply)
        .children()
        .filter_map(|i| i.attr("node"))
        .collect();
    assert_eq!(nodes, [ECHO, STRICT]);

    // The core's view agrees, in the same order.
    let nodes: Vec<&str> = core.commands().map(|(node, _, _)| node).collect();
    assert_eq!(nodes, [ECHO, ADMIN, STRICT]);
    assert!(core.command(ADMIN).is_some() && core.command("urn:test:none").is_none());
}

#[tokio::test]
async fn disco_info_of_command_nodes() {
    let core = build(Some(TestModule::new(vec![])), false).await;
    let mut juliet = connect(&core, "juliet@example.com/balcony");
    let mut romeo = connect(&core, "romeo@example.com/orchard");

    let reply = romeo.info(Some(ECHO)).await;
    let q = payload(&reply);
    assert_eq!(q.attr("node"), Some(ECHO));
    assert_eq!(
        identities(q),
        [("automation", "command-node", Some("Echo"))]
    );
    assert_eq!(features(q), [COMMANDS_NS, DATA]);

    let reply = juliet.info(Some(ADMIN)).await;
    assert_eq!(
        identities(payload(&reply)),
        [("automation", "command-node", Some("Juliet only"))]
    );
    // XEP-0050 §2.2: a command the requester may not run is forbidden to it.
    assert_eq!(error(&romeo.info(Some(ADMIN)).await).0, "forbidden");
    assert_eq!(
        error(&romeo.info(Some("urn:test:none")).await).0,
        "item-not-found"
    );

    // The list node itself.
    let reply = romeo.info(Some(COMMANDS_NS)).await;
    let q = payload(&reply);
    assert_eq!(q.attr("node"), Some(COMMANDS_NS));
    assert_eq!(identities(q), [("automation", "command-list", None)]);

    // A command node has no items.
    let reply = romeo.items(Some(ECHO)).await;
    assert_eq!(payload(&reply).children().count(), 0);
}

#[tokio::test]
async fn commands_run_with_every_action() {
    let module = TestModule::new(vec![]);
    let core = build(Some(module.clone()), false).await;
    let mut romeo = connect(&core, "romeo@example.com/orchard");

    for (attrs, action) in [
        (&[][..], "execute"),
        (&[("action", "execute")][..], "execute"),
        (&[("action", "cancel")][..], "cancel"),
        (&[("action", "next")][..], "next"),
        (&[("action", "prev")][..], "prev"),
        (&[("action", "complete")][..], "complete"),
    ] {
        let reply = romeo.run(Some(ECHO), attrs).await;
        let c = payload(&reply);
        assert!(c.is("command", COMMANDS_NS), "{}", c.to_xml());
        assert_eq!(
            (c.attr("node"), c.attr("status"), c.attr("sessionid")),
            (Some(ECHO), Some("completed"), Some("echo-1"))
        );
        let note = c.get_child("note", COMMANDS_NS).expect("note").text();
        assert_eq!(note, format!("romeo@example.com/orchard {action}"));
    }

    // The command's own errors reach the requester unchanged.
    let reply = romeo.run(Some(STRICT), &[]).await;
    assert_eq!(payload(&reply).attr("status"), Some("executing"));
    let reply = romeo
        .run(Some(STRICT), &[("sessionid", "forged"), ("action", "next")])
        .await;
    assert_eq!(
        error(&reply),
        (
            "bad-request".to_owned(),
            Some((COMMANDS_NS.to_owned(), "bad-sessionid".to_owned()))
        )
    );

    // Juliet may run hers.
    let mut juliet = connect(&core, "juliet@example.com/balcony");
    let reply = juliet.run(Some(ADMIN), &[]).await;
    assert_eq!(payload(&reply).attr("status"), Some("completed"));
    assert_eq!(module.juliet_only.runs.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn bad_requests_never_reach_a_command() {
    let module = TestModule::new(vec![]);
    let core = build(Some(module.clone()), false).await;
    let mut juliet = connect(&core, "juliet@example.com/balcony");
    let mut romeo = connect(&core, "romeo@example.com/orchard");

    // No node: XEP-0050 §4.1 makes it required.
    assert_eq!(
        error(&romeo.run(None, &[]).await),
        ("bad-request".into(), None)
    );
    // XEP-0050 §4.4: an unknown node.
    assert_eq!(
        error(&romeo.run(Some("urn:test:none"), &[]).await),
        ("item-not-found".into(), None)
    );
    // An action XEP-0050 does not define.
    assert_eq!(
        error(&juliet.run(Some(ADMIN), &[("action", "approve")]).await),
        (
            "bad-request".into(),
            Some((COMMANDS_NS.into(), "malformed-action".into()))
        )
    );
    // Not allowed: forbidden, whatever the action, and the command never runs.
    for attrs in [&[][..], &[("action", "approve")][..]] {
        let reply = romeo.run(Some(ADMIN), attrs).await;
        assert_eq!(error(&reply), ("forbidden".into(), None));
        let err = reply.get_child("error", ns::CLIENT).expect("error");
        assert_eq!(err.attr("type"), Some("cancel"));
    }
    assert_eq!(module.juliet_only.runs.load(Ordering::Relaxed), 0);
    // Commands are run with `set` only.
    let reply = romeo
        .ask(
            "get",
            Element::new("command", COMMANDS_NS).with_attr("node", ECHO),
        )
        .await;
    assert_eq!(error(&reply).0, "service-unavailable");
}

#[tokio::test]
async fn the_feature_is_announced_only_with_commands() {
    let with_after = build(Some(TestModule::new(vec![])), false).await;
    let with_before = build(Some(TestModule::new(vec![])), true).await;
    let without = build(None, false).await;
    for core in [&with_after, &with_before] {
        assert!(core.features(IqTarget::Server).contains(&COMMANDS_NS));
        let mut romeo = connect(core, "romeo@example.com/orchard");
        let reply = romeo.info(None).await;
        assert!(features(payload(&reply)).contains(&COMMANDS_NS));
        let reply = romeo.run(Some(ECHO), &[]).await;
        assert_eq!(payload(&reply).attr("status"), Some("completed"));
    }
    assert!(!without.features(IqTarget::Server).contains(&COMMANDS_NS));
    assert!(!without.features(IqTarget::Account).contains(&COMMANDS_NS));
    let mut romeo = connect(&without, "romeo@example.com/orchard");
    let reply = romeo.info(None).await;
    assert!(!features(payload(&reply)).contains(&COMMANDS_NS));
    assert_eq!(
        error(&romeo.items(Some(COMMANDS_NS)).await).0,
        "item-not-found"
    );
    assert_eq!(
        error(&romeo.info(Some(COMMANDS_NS)).await).0,
        "item-not-found"
    );
    assert_eq!(error(&romeo.run(Some(ECHO), &[]).await).0, "item-not-found");
    // The feature changes what the server hashes.
    assert_ne!(caps_ver(&with_after), caps_ver(&without));
}

#[tokio::test]
async fn extended_forms_follow_the_features_and_count_in_the_caps_hash() {
    let other = form(Some("urn:test:another"), &[("a", &["1"])]);
    let with_form = build(
        Some(TestModule::new(vec![terms_form(), other.clone()])),
        false,
    )
    .await;
    let without_form = build(Some(TestModule::new(vec![])), false).await;
    let mut romeo = connect(&with_form, "romeo@example.com/orchard");

    let reply = romeo.info(None).await;
    let q = payload(&reply);
    assert_eq!(forms(q), [terms_form(), other]);
    // XEP-0128: after the identities and features.
    let kinds: Vec<&str> = q.children().map(Element::name).collect();
    let first_form = kinds.iter().position(|k| *k == "x").expect("a form");
    assert!(kinds[first_form..].iter().all(|k| *k == "x"), "{kinds:?}");

    // The announced ver covers the forms, and the answer on `node#ver` is the same one.
    let ver = caps_ver(&with_form);
    assert_ne!(ver, caps_ver(&without_form));
    let ids: Vec<causerie_core::Identity> = identities(q)
        .into_iter()
        .map(|(category, kind, name)| causerie_core::Identity {
            category: category.into(),
            kind: kind.into(),
            name: name.map(Into::into),
        })
        .collect();
    assert_eq!(Caps::verification_string(&ids, features(q), &forms(q)), ver);
    assert_ne!(Caps::verification_string(&ids, features(q), &[]), ver);
    let node = format!(
        "{}#{ver}",
        Caps::element(&with_form).attr("node").expect("node")
    );
    let reply = romeo.info(Some(&node)).await;
    let on_node = payload(&reply);
    assert_eq!(on_node.attr("node"), Some(node.as_str()));
    assert_eq!(
        on_node.children().collect::<Vec<_>>(),
        q.children().collect::<Vec<_>>()
    );

    // Forms belong to the server: an account's information has none.
    let juliet_info = romeo
        .ask_to(
            "juliet@example.com",
            "get",
            Element::new("query", ns::DISCO_INFO),
        )
        .await;
    let juliet_q = payload(&juliet_info);
    assert_eq!(identities(juliet_q), [("account", "registered", None)]);
    assert!(forms(juliet_q).is_empty());
}

#[tokio::test]
async fn forms_without_form_type_are_dropped_and_a_form_type_is_kept_once() {
    let newer = form(Some("urn:test:terms"), &[("version", &["4"])]);
    let untyped = form(None, &[("version", &["5"])]);
    let core = build(
        Some(TestModule::new(vec![terms_form(), untyped, newer.clone()])),
        false,
    )
    .await;
    assert_eq!(core.disco_forms(), std::slice::from_ref(&newer));
    let mut romeo = connect(&core, "romeo@example.com/orchard");
    let reply = romeo.info(None).await;
    assert_eq!(forms(payload(&reply)), [newer]);
}
