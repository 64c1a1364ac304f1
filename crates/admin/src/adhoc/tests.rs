//! The commands against a core built in process and the in-memory store: forms, session ids,
//! what each command does through the registry, and what the audit log keeps.

use std::sync::Arc;

use causerie_config::Config;
use causerie_core::{BindOutcome, CoreBuilder, Origin, Outbound, SessionHandle};
use causerie_jid::{FullJid, Jid};
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond, StreamErrorCondition};
use causerie_storage::{AuditFilter, Storage};
use serde_json::json;
use tokio::sync::mpsc::Receiver;

use super::form::NS_DATA;
use super::*;
use crate::Live;

const DOMAIN: &str = "localhost";

struct Fixture {
    core: Arc<Core>,
    storage: Storage,
    admin: Arc<ServiceAdmin>,
    registry: Arc<Registry>,
    ctx: Arc<Context>,
}

struct Session {
    handle: SessionHandle,
    inbox: Receiver<Outbound>,
}

fn config() -> Config {
    let mut c = Config::default();
    c.server.domains = vec![DOMAIN.into()];
    c.auth.scram_iterations = 4096;
    c.admin.admins = vec!["boss@localhost".into()];
    c
}

impl Fixture {
    async fn new() -> Fixture {
        let admin = Arc::new(ServiceAdmin::new([
            BareJid::parse("boss@localhost").expect("jid")
        ]));
        let mut builder = CoreBuilder::new([DOMAIN.to_owned()]);
        builder.modules().add_module(admin.clone());
        let core = builder.build();
        let storage = Storage::memory();
        let live = Arc::new(Live::new(core.clone(), None));
        let ctx = Arc::new(Context::live(storage.clone(), config(), live));
        let registry = Arc::new(Registry::standard());
        admin.attach(registry.clone(), &ctx);
        let f = Fixture {
            core,
            storage,
            admin,
            registry,
            ctx,
        };
        for user in ["boss", "alice", "bob"] {
            f.add(&format!("{user}@localhost")).await;
        }
        f
    }

    async fn add(&self, jid: &str) {
        let op = Actor::new("unix:test", None, Permission::Admin);
        self.registry
            .execute(
                &self.ctx,
                &op,
                "user.add",
                json!({"jid": jid, "password": "pw"}),
            )
            .await
            .expect("account added");
    }

    fn bind(&self, id: u64, jid: &str) -> Session {
        let (handle, inbox) = SessionHandle::new(id, FullJid::parse(jid).expect("jid"), None, 16);
        assert!(matches!(
            self.core.registry.bind(handle.clone(), 8),
            BindOutcome::Bound
        ));
        Session { handle, inbox }
    }

    /// Sends `payload` (a `<command/>`) for `node` from `from`'s session.
    async fn run(
        &self,
        from: &Session,
        node: Node,
        payload: Element,
    ) -> Result<Element, StanzaError> {
        let origin = Origin::Session(from.handle.clone());
        self.run_as(&origin, node, payload).await
    }

    async fn run_as(
        &self,
        origin: &Origin,
        node: Node,
        payload: Element,
    ) -> Result<Element, StanzaError> {
        let from: Jid = match origin {
            Origin::Session(s) => s.jid().clone().into(),
            _ => Jid::parse("boss@localhost/desk").expect("jid"),
        };
        let iq = Element::new("iq", "jabber:client")
            .with_attr("type", "set")
            .with_attr("id", "c1")
            .with_child(payload.clone());
        let cmd = self.core.command(&node.uri()).expect("registered").clone();
        cmd.execute(IqRequest {
            core: &self.core,
            origin,
            from,
            to: Jid::parse(DOMAIN).expect("jid"),
            iq_type: IqType::Set,
            stanza: &iq,
            payload: &payload,
        })
        .await
    }

    /// Sends `execute` for `node` from `from`'s session.
    async fn execute(&self, from: &Session, node: Node) -> Result<Element, StanzaError> {
        self.run(from, node, execute(node)).await
    }

    /// Executes `node`, which answers with its form; returns the answer and its session id.
    async fn open(&self, from: &Session, node: Node) -> (Element, String) {
        let answer = self.execute(from, node).await.expect("form");
        let id = answer.attr("sessionid").expect("sessionid").to_owned();
        (answer, id)
    }

    /// Starts `node` and returns its session id, checking the answer is the form.
    async fn start(&self, from: &Session, node: Node) -> String {
        let (answer, id) = self.open(from, node).await;
        assert_eq!(
            answer.attr("status"),
            Some("executing"),
            "{}",
            answer.to_xml()
        );
        id
    }

    /// Completes the waiting command `id` of `node` with these fields.
    async fn submit(
        &self,
        from: &Session,
        node: Node,
        id: &str,
        fields: &[(&str, &[&str])],
    ) -> Result<Element, StanzaError> {
        self.run(from, node, complete(node, id, fields)).await
    }

    /// Sends `action` (none: the default) for the waiting command `id` of `node`, without a form.
    async fn act(
        &self,
        from: &Session,
        node: Node,
        id: &str,
        action: Option<&str>,
    ) -> Result<Element, StanzaError> {
        self.run(from, node, with_action(node, id, action)).await
    }

    async fn audit(&self) -> Vec<causerie_storage::AuditEvent> {
        self.storage
            .audit
            .list(&AuditFilter::default())
            .await
            .expect("audit")
            .into_iter()
            .filter(|e| e.actor.starts_with("xmpp:"))
            .collect()
    }
}

fn execute(node: Node) -> Element {
    Element::new("command", COMMANDS_NS)
        .with_attr("node", node.uri())
        .with_attr("action", "execute")
}

fn with_action(node: Node, id: &str, action: Option<&str>) -> Element {
    let mut c = Element::new("command", COMMANDS_NS)
        .with_attr("node", node.uri())
        .with_attr("sessionid", id);
    if let Some(a) = action {
        c.set_attr("action", a);
    }
    c
}

fn submission(fields: &[(&str, &[&str])]) -> Element {
    let mut x = Element::new("x", NS_DATA)
        .with_attr("type", "submit")
        .with_child(form::values("FORM_TYPE", "hidden", "", [NS_ADMIN]));
    for (var, vals) in fields {
        x.push_child(form::values(var, "text-single", var, vals.iter()));
    }
    x
}

/// Completes `id` with these fields.
fn complete(node: Node, id: &str, fields: &[(&str, &[&str])]) -> Element {
    with_action(node, id, Some("complete")).with_child(submission(fields))
}

fn note(answer: &Element) -> (String, String) {
    let n = answer.get_child("note", COMMANDS_NS).expect("a note");
    (n.attr("type").unwrap_or_default().to_owned(), n.text())
}

fn app_condition(e: &StanzaError) -> Option<&str> {
    e.app.as_ref().map(|a| a.name())
}

fn result_values(answer: &Element, var: &str) -> Vec<String> {
    let x = answer.get_child("x", NS_DATA).expect("a result form");
    assert_eq!(x.attr("type"), Some("result"));
    x.children()
        .find(|f| f.attr("var") == Some(var))
        .map(|f| f.children().map(Element::text).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn only_sessions_of_administrators_may_run_them() {
    let f = Fixture::new().await;
    let is_admin = |j: &str| f.admin.is_admin(&f.core, &Jid::parse(j).expect("jid"));
    assert!(is_admin("boss@localhost/desk"));
    assert!(
        is_admin("Boss@localhost/phone"),
        "compared in prepared form"
    );
    assert!(!is_admin("boss@localhost"), "a session has a resource");
    assert!(!is_admin("alice@localhost/desk"));
    assert!(!is_admin("boss@elsewhere.example/desk"));
    assert!(!is_admin("localhost"));
    // Anything but a local session is refused even if the commands module let it through.
    for origin in [
        Origin::Server,
        Origin::Remote {
            domain: "elsewhere.example".into(),
        },
    ] {
        let e = f
            .run_as(&origin, Node::AddUser, execute(Node::AddUser))
            .await
            .expect_err("refused");
        assert_eq!(e.condition, Cond::Forbidden);
    }
}

#[tokio::test]
async fn add_user_asks_for_the_form_then_creates_the_account_and_audits_it() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");
    let (answer, id) = f.open(&boss, Node::AddUser).await;
    assert_eq!(answer.attr("node"), Some(Node::AddUser.uri().as_str()));
    assert!(id.starts_with("add-user:"), "{id}");
    let actions = answer.get_child("actions", COMMANDS_NS).expect("actions");
    assert_eq!(actions.attr("execute"), Some("complete"));
    let x = answer.get_child("x", NS_DATA).expect("form");
    assert_eq!(x.attr("type"), Some("form"));
    let fields: Vec<(&str, &str, bool)> = x
        .children()
        .filter(|c| c.name() == "field")
        .map(|c| {
            (
                c.attr("var").unwrap_or_default(),
                c.attr("type").unwrap_or_default(),
                c.has_child("required", NS_DATA),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("FORM_TYPE", "hidden", false),
            ("accountjid", "jid-single", true),
            ("password", "text-private", true),
            ("password-verify", "text-private", false),
        ]
    );

    // The form for carol, with the password repeated as given.
    let carol = |verify: &'static [&'static str]| -> [(&str, &[&str]); 3] {
        [
            ("accountjid", &["carol@localhost"]),
            ("password", &["s3cret"]),
            ("password-verify", verify),
        ]
    };

    // A mistake in the form can be corrected: the command keeps waiting.
    let e = f
        .submit(&boss, Node::AddUser, &id, &carol(&["s3cre7"]))
        .await
        .expect_err("passwords differ");
    assert_eq!(
        (e.condition, app_condition(&e)),
        (Cond::BadRequest, Some("bad-payload"))
    );
    let done = f
        .submit(&boss, Node::AddUser, &id, &carol(&["s3cret"]))
        .await
        .expect("completed");
    assert_eq!(done.attr("status"), Some("completed"));
    assert_eq!(done.attr("sessionid"), Some(id.as_str()));
    assert_eq!(
        note(&done),
        ("info".to_owned(), "carol@localhost was added.".to_owned())
    );
    assert!(
        f.storage
            .users
            .user_exists("carol", DOMAIN)
            .await
            .expect("store")
    );

    // Finished: the id is gone.
    let e = f
        .submit(
            &boss,
            Node::AddUser,
            &id,
            &[("accountjid", &["dave@localhost"])],
        )
        .await
        .expect_err("finished");
    assert_eq!(app_condition(&e), Some("bad-sessionid"));

    let events = f.audit().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(
        (
            ev.actor.as_str(),
            ev.action.as_str(),
            ev.subject.as_str(),
            ev.outcome.as_str(),
            ev.remote_addr.as_deref()
        ),
        (
            "xmpp:boss@localhost",
            "user.add",
            "carol@localhost",
            "ok",
            Some("boss@localhost/desk")
        )
    );
    assert!(!ev.detail.contains("s3cret"), "no password in the log");
}

#[tokio::test]
async fn operation_errors_become_stanza_errors() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");

    let id = f.start(&boss, Node::AddUser).await;
    let taken = [
        ("accountjid", &["alice@localhost"][..]),
        ("password", &["x"]),
    ];
    let e = f
        .submit(&boss, Node::AddUser, &id, &taken)
        .await
        .expect_err("exists");
    assert_eq!(e.condition, Cond::Conflict);
    assert!(
        e.text
            .as_deref()
            .is_some_and(|t| t.contains("alice@localhost")),
        "{e:?}"
    );
    // Not something the form can fix: the command ended.
    let e = f
        .submit(&boss, Node::AddUser, &id, &taken)
        .await
        .expect_err("ended");
    assert_eq!(app_condition(&e), Some("bad-sessionid"));

    let id = f.start(&boss, Node::ChangeUserPassword).await;
    let e = f
        .submit(
            &boss,
            Node::ChangeUserPassword,
            &id,
            &[("accountjid", &["nobody@localhost"]), ("password", &["x"])],
        )
        .await
        .expect_err("no such account");
    assert_eq!(e.condition, Cond::ItemNotFound);

    // Bad input may be corrected and sent again.
    let id = f.start(&boss, Node::ChangeUserPassword).await;
    for (fields, condition) in [
        (
            vec![
                ("accountjid", &["alice@localhost"][..]),
                ("password", &[""]),
            ],
            Cond::BadRequest,
        ),
        (
            vec![
                ("accountjid", &["alice@elsewhere.example"][..]),
                ("password", &["x"]),
            ],
            Cond::BadRequest,
        ),
        (vec![("password", &["x"][..])], Cond::BadRequest),
    ] {
        let e = f
            .submit(&boss, Node::ChangeUserPassword, &id, &fields)
            .await
            .expect_err("refused");
        assert_eq!(e.condition, condition, "{fields:?}: {e:?}");
    }
    let done = f
        .submit(
            &boss,
            Node::ChangeUserPassword,
            &id,
            &[("accountjid", &["alice@localhost"]), ("password", &["new"])],
        )
        .await
        .expect("changed");
    assert_eq!(
        note(&done).1,
        "The password of alice@localhost was changed."
    );

    let outcomes: Vec<(String, String)> = f
        .audit()
        .await
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect();
    let expected = [
        ("user.add", "refused"),
        ("user.passwd", "refused"),
        ("user.passwd", "refused"),
        ("user.passwd", "refused"),
        ("user.passwd", "ok"),
    ];
    assert_eq!(
        outcomes
            .iter()
            .map(|(a, o)| (a.as_str(), o.as_str()))
            .collect::<Vec<_>>(),
        expected,
        "a form without accountjid never reaches the registry"
    );
}

#[tokio::test]
async fn session_ids_belong_to_their_session_and_command() {
    let f = Fixture::new().await;
    let desk = f.bind(1, "boss@localhost/desk");
    let phone = f.bind(2, "boss@localhost/phone");
    let id = f.start(&desk, Node::DeleteUser).await;
    let fields = [("accountjids", &["alice@localhost"][..])];
    for (who, node) in [(&phone, Node::DeleteUser), (&desk, Node::DisableUser)] {
        let e = f
            .submit(who, node, &id, &fields)
            .await
            .expect_err("not theirs");
        assert_eq!(
            (e.condition, app_condition(&e)),
            (Cond::BadRequest, Some("bad-sessionid"))
        );
    }
    let e = f
        .submit(&desk, Node::DeleteUser, "delete-user:0-0", &fields)
        .await
        .expect_err("unknown");
    assert_eq!(app_condition(&e), Some("bad-sessionid"));
    // Still waiting for the session that started it.
    let done = f
        .submit(&desk, Node::DeleteUser, &id, &fields)
        .await
        .expect("deleted");
    assert_eq!(note(&done).0, "info");
}

#[tokio::test(start_paused = true)]
async fn waiting_commands_expire_and_are_bounded() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");
    let old = f.start(&boss, Node::Announce).await;
    tokio::time::advance(SESSION_TIMEOUT + Duration::from_secs(1)).await;
    let e = f
        .act(&boss, Node::Announce, &old, Some("cancel"))
        .await
        .expect_err("expired");
    assert_eq!(app_condition(&e), Some("bad-sessionid"));

    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..=MAX_PENDING_PER_ADMIN {
            ids.push(f.start(&boss, Node::Announce).await);
        }
        ids
    };
    let e = f
        .act(&boss, Node::Announce, &ids[0], Some("cancel"))
        .await
        .expect_err("pushed out by the newest");
    assert_eq!(app_condition(&e), Some("bad-sessionid"));
    for id in &ids[1..] {
        let c = f
            .act(&boss, Node::Announce, id, Some("cancel"))
            .await
            .expect("still waiting");
        assert_eq!(c.attr("status"), Some("canceled"));
    }
    let total: usize = f.admin.pending().values().map(VecDeque::len).sum();
    assert_eq!(total, 0);
}

#[tokio::test]
async fn cancel_and_the_actions_of_a_one_stage_command() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");
    let node = Node::DisableUser;

    let id = f.start(&boss, node).await;
    for action in ["next", "prev"] {
        let e = f
            .act(&boss, node, &id, Some(action))
            .await
            .expect_err("one stage");
        assert_eq!(app_condition(&e), Some("bad-action"), "{action}");
    }
    // No form: nothing to complete with, still waiting.
    let e = f.act(&boss, node, &id, None).await.expect_err("no form");
    assert_eq!(app_condition(&e), Some("bad-payload"));
    let c = f
        .act(&boss, node, &id, Some("cancel"))
        .await
        .expect("canceled");
    assert_eq!(
        (c.attr("status"), c.attr("sessionid")),
        (Some("canceled"), Some(id.as_str()))
    );
    let e = f
        .act(&boss, node, &id, Some("cancel"))
        .await
        .expect_err("gone");
    assert_eq!(app_condition(&e), Some("bad-sessionid"));

    // A form of type cancel ends it too (XEP-0004 §3.1).
    let id = f.start(&boss, node).await;
    let cancel = with_action(node, &id, None)
        .with_child(Element::new("x", NS_DATA).with_attr("type", "cancel"));
    let c = f.run(&boss, node, cancel).await.expect("canceled");
    assert_eq!(c.attr("status"), Some("canceled"));

    // Only execute starts a command.
    let e = f
        .run(
            &boss,
            node,
            Element::new("command", COMMANDS_NS)
                .with_attr("node", node.uri())
                .with_attr("action", "complete"),
        )
        .await
        .expect_err("no session");
    assert_eq!(app_condition(&e), Some("bad-action"));
    assert!(f.audit().await.is_empty(), "nothing ran");
}

#[tokio::test]
async fn account_batches_report_each_account() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");
    let mut bob = f.bind(2, "bob@localhost/home");

    // Disable: the lock holds until lifted, bob's session ends.
    let id = f.start(&boss, Node::DisableUser).await;
    let done = f
        .submit(
            &boss,
            Node::DisableUser,
            &id,
            &[("accountjids", &["bob@localhost"])],
        )
        .await
        .expect("disabled");
    assert_eq!(
        note(&done),
        (
            "info".to_owned(),
            "bob@localhost was disabled; 1 session(s) ended.".to_owned()
        )
    );
    assert!(matches!(
        bob.inbox.try_recv(),
        Ok(Outbound::Close(e)) if e.condition == StreamErrorCondition::PolicyViolation
    ));
    let lock = f
        .storage
        .users
        .user_lock("bob", DOMAIN)
        .await
        .expect("store")
        .expect("locked");
    assert_eq!(
        (lock.until, lock.locked_by.as_str(), lock.reason.as_str()),
        (None, "xmpp:boss@localhost", DISABLE_REASON)
    );

    // Re-enable, one value per line in a single value as some clients send a jid-multi.
    let id = f.start(&boss, Node::ReenableUser).await;
    let done = f
        .submit(
            &boss,
            Node::ReenableUser,
            &id,
            &[(
                "accountjids",
                &["bob@localhost\nalice@localhost", "bob@localhost"],
            )],
        )
        .await
        .expect("re-enabled");
    assert_eq!(
        note(&done),
        (
            "info".to_owned(),
            "bob@localhost was re-enabled.\nalice@localhost was not disabled.".to_owned()
        )
    );
    assert_eq!(
        f.storage
            .users
            .user_lock("bob", DOMAIN)
            .await
            .expect("store"),
        None
    );

    // Delete: some succeed, some fail, each on its own line.
    let id = f.start(&boss, Node::DeleteUser).await;
    let done = f
        .submit(
            &boss,
            Node::DeleteUser,
            &id,
            &[(
                "accountjids",
                &["alice@localhost", "nobody@localhost", "bob@localhost/home"],
            )],
        )
        .await
        .expect("completed");
    let (kind, text) = note(&done);
    assert_eq!(kind, "warn", "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "alice@localhost was deleted.");
    assert!(lines[1].starts_with("nobody@localhost: "), "{text}");
    assert!(lines[2].starts_with("bob@localhost/home: "), "{text}");
    assert!(
        !f.storage
            .users
            .user_exists("alice", DOMAIN)
            .await
            .expect("store")
    );
    assert!(
        f.storage
            .users
            .user_exists("bob", DOMAIN)
            .await
            .expect("store")
    );

    // None succeeded: an error note.
    let id = f.start(&boss, Node::EndUserSession).await;
    let done = f
        .submit(
            &boss,
            Node::EndUserSession,
            &id,
            &[("accountjids", &["alice@localhost"])],
        )
        .await
        .expect("completed");
    assert_eq!(note(&done).0, "error");

    // Nothing named, or too much: the form is refused.
    let id = f.start(&boss, Node::DeleteUser).await;
    let many: Vec<String> = (0..=MAX_TARGETS)
        .map(|i| format!("u{i}@localhost"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for fields in [
        vec![],
        vec![("accountjids", &[" "][..])],
        vec![("accountjids", &many[..])],
    ] {
        let e = f
            .submit(&boss, Node::DeleteUser, &id, &fields)
            .await
            .expect_err("refused");
        assert_eq!(app_condition(&e), Some("bad-payload"));
    }

    let actions: Vec<(String, String, String)> = f
        .audit()
        .await
        .into_iter()
        .map(|e| (e.action, e.subject, e.outcome))
        .collect();
    let actions: Vec<(&str, &str, &str)> = actions
        .iter()
        .map(|(a, s, o)| (a.as_str(), s.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user.lock", "bob@localhost", "ok"),
            ("user.unlock", "bob@localhost", "ok"),
            ("user.unlock", "alice@localhost", "ok"),
            ("user.remove", "alice@localhost", "ok"),
            ("user.remove", "nobody@localhost", "refused"),
            ("user.remove", "bob@localhost/home", "refused"),
            ("session.kick", "alice@localhost", "refused"),
        ]
    );
}

#[tokio::test]
async fn counts_and_the_list_of_online_users() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");
    let _phone = f.bind(2, "boss@localhost/phone");
    let _bob = f.bind(3, "bob@localhost/home");
    let _alice = f.bind(4, "alice@localhost/a");

    // No form: the answer comes at once.
    let done = f
        .execute(&boss, Node::GetOnlineUsersNum)
        .await
        .expect("count");
    assert_eq!(done.attr("status"), Some("completed"));
    assert!(done.attr("sessionid").is_some());
    assert_eq!(result_values(&done, "onlineusersnum"), ["3"]);
    let done = f
        .execute(&boss, Node::GetRegisteredUsersNum)
        .await
        .expect("count");
    assert_eq!(result_values(&done, "registeredusersnum"), ["3"]);

    for node in [Node::GetOnlineUsersList, Node::GetOnlineUsers] {
        let (answer, id) = f.open(&boss, node).await;
        let x = answer.get_child("x", NS_DATA).expect("form");
        let options: Vec<String> = x
            .children()
            .find(|c| c.attr("var") == Some("max_items"))
            .expect("max_items")
            .children()
            .filter_map(|o| o.get_child("value", NS_DATA).map(Element::text))
            .collect();
        assert_eq!(options, ["25", "50", "75", "100", "150", "200", "none"]);
        let done = f
            .submit(&boss, node, &id, &[("max_items", &["none"])])
            .await
            .expect("list");
        assert_eq!(
            result_values(&done, "onlineuserjids"),
            ["alice@localhost", "bob@localhost", "boss@localhost"]
        );
        assert!(done.get_child("note", COMMANDS_NS).is_none());
    }

    let id = f.start(&boss, Node::GetOnlineUsersList).await;
    let e = f
        .submit(
            &boss,
            Node::GetOnlineUsersList,
            &id,
            &[("max_items", &["0"])],
        )
        .await
        .expect_err("not a count");
    assert_eq!(app_condition(&e), Some("bad-payload"));
    let done = f
        .submit(
            &boss,
            Node::GetOnlineUsersList,
            &id,
            &[("max_items", &["2"])],
        )
        .await
        .expect("list");
    assert_eq!(
        result_values(&done, "onlineuserjids"),
        ["alice@localhost", "bob@localhost"]
    );
    assert_eq!(note(&done).0, "warn");
    assert!(f.audit().await.is_empty(), "reading is not audited");
}

#[tokio::test]
async fn a_request_with_the_filled_form_runs_at_once_and_announces() {
    let f = Fixture::new().await;
    let boss = f.bind(1, "boss@localhost/desk");
    let mut alice = f.bind(2, "alice@localhost/a");
    let payload = execute(Node::Announce).with_child(submission(&[
        ("subject", &["Maintenance"]),
        ("announcement", &["Down at 22:00.", "Back at 23:00."]),
    ]));
    let done = f.run(&boss, Node::Announce, payload).await.expect("sent");
    assert_eq!(done.attr("status"), Some("completed"));
    assert_eq!(
        note(&done).1,
        "The announcement was sent to 2 session(s) of 2 user(s)."
    );
    let Ok(Outbound::Stanza(m)) = alice.inbox.try_recv() else {
        panic!("alice got the announcement");
    };
    let m = &m.element;
    assert_eq!(
        (m.attr("type"), m.attr("from")),
        (Some("headline"), Some(DOMAIN))
    );
    assert_eq!(
        m.get_child("subject", "jabber:client").map(Element::text),
        Some("Maintenance".to_owned())
    );
    assert_eq!(
        m.get_child("body", "jabber:client").map(Element::text),
        Some("Down at 22:00.\nBack at 23:00.".to_owned())
    );
    let events = f.audit().await;
    assert_eq!((events.len(), events[0].action.as_str()), (1, "announce"));
}

#[tokio::test]
async fn without_the_running_server_the_commands_say_so() {
    let admin = Arc::new(ServiceAdmin::new([
        BareJid::parse("boss@localhost").expect("jid")
    ]));
    let mut builder = CoreBuilder::new([DOMAIN.to_owned()]);
    builder.modules().add_module(admin.clone());
    let core = builder.build();
    let (handle, _inbox) = SessionHandle::new(
        1,
        FullJid::parse("boss@localhost/desk").expect("jid"),
        None,
        4,
    );
    let payload = execute(Node::GetOnlineUsersNum);
    let iq = Element::new("iq", "jabber:client").with_child(payload.clone());
    let cmd = core
        .command(&Node::GetOnlineUsersNum.uri())
        .expect("registered")
        .clone();
    let e = cmd
        .execute(IqRequest {
            core: &core,
            origin: &Origin::Session(handle.clone()),
            from: handle.jid().clone().into(),
            to: Jid::parse(DOMAIN).expect("jid"),
            iq_type: IqType::Set,
            stanza: &iq,
            payload: &payload,
        })
        .await
        .expect_err("not attached");
    assert_eq!(e.condition, Cond::ServiceUnavailable);
    let listed: Vec<&str> = core.commands().map(|(node, _, _)| node).collect();
    assert_eq!(listed.len(), Node::ALL.len());
}
