//! XEP-0133 Service Administration over real TLS: the accounts of `admin.admins` see and run
//! the administration commands (XEP-0050) from their sessions; they act through the same
//! registry as the admin API, so every change is in the audit log with the administrator as
//! actor; nobody else sees or runs them.

mod im;

use causerie_testkit::client::{Client, ClientError};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use im::*;

const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
const NS_DATA: &str = "jabber:x:data";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const ADMIN: &str = "http://jabber.org/protocol/admin";

/// Every command the server offers to administrators.
const NODES: [&str; 11] = [
    "add-user",
    "delete-user",
    "disable-user",
    "reenable-user",
    "end-user-session",
    "change-user-password",
    "get-online-users-list",
    "get-online-users",
    "get-online-users-num",
    "get-registered-users-num",
    "announce",
];

fn node(name: &str) -> String {
    format!("{ADMIN}#{name}")
}

/// A server where `boss` is the administrator, with these other accounts.
async fn admin_server(users: &[&str]) -> TestServer {
    let mut all = vec!["boss"];
    all.extend_from_slice(users);
    server_with(&all, |c| c.admin.admins = vec![bare("boss")]).await
}

/// `<command/>` for `name`, with `action` and `sessionid` when given, carrying `form`.
fn command(
    name: &str,
    action: Option<&str>,
    sessionid: Option<&str>,
    form: Option<Element>,
) -> Element {
    let mut c = Element::new("command", NS_COMMANDS).with_attr("node", node(name));
    if let Some(a) = action {
        c.set_attr("action", a);
    }
    if let Some(id) = sessionid {
        c.set_attr("sessionid", id);
    }
    if let Some(f) = form {
        c.push_child(f);
    }
    c
}

/// A submitted form of the profile.
fn submit(fields: &[(&str, &[&str])]) -> Element {
    let mut x = Element::new("x", NS_DATA)
        .with_attr("type", "submit")
        .with_child(
            Element::new("field", NS_DATA)
                .with_attr("var", "FORM_TYPE")
                .with_attr("type", "hidden")
                .with_child(Element::new("value", NS_DATA).with_text(ADMIN)),
        );
    for (var, values) in fields {
        let mut f = Element::new("field", NS_DATA).with_attr("var", *var);
        for v in *values {
            f.push_child(Element::new("value", NS_DATA).with_text(*v));
        }
        x.push_child(f);
    }
    x
}

/// The `<command/>` of a result.
fn answer_of(iq: &Element) -> Element {
    assert_eq!(iq.attr("type"), Some("result"), "{}", iq.to_xml());
    iq.get_child("command", NS_COMMANDS)
        .cloned()
        .unwrap_or_else(|| panic!("no <command/>: {}", iq.to_xml()))
}

/// Sends `<command action="execute"/>` for `name`; returns the answering IQ.
async fn execute(c: &mut Client, name: &str) -> Element {
    iq(
        c,
        "set",
        Some("localhost"),
        command(name, Some("execute"), None, None),
    )
    .await
}

/// Completes the waiting command `id` of `name` with these fields; returns the answering IQ.
async fn complete(c: &mut Client, name: &str, id: &str, fields: &[(&str, &[&str])]) -> Element {
    iq(
        c,
        "set",
        Some("localhost"),
        command(name, Some("complete"), Some(id), Some(submit(fields))),
    )
    .await
}

/// Cancels the waiting command `id` of `name`; returns the answering IQ.
async fn cancel(c: &mut Client, name: &str, id: &str) -> Element {
    iq(
        c,
        "set",
        Some("localhost"),
        command(name, Some("cancel"), Some(id), None),
    )
    .await
}

/// Checks that `r` is an error with this condition.
fn assert_error(r: &Element, condition: &str) {
    assert_eq!(
        error_condition(r).as_deref(),
        Some(condition),
        "{}",
        r.to_xml()
    );
}

/// Executes `name` and returns its session id, after checking that the answer is its form.
async fn start(c: &mut Client, name: &str) -> String {
    let r = execute(c, name).await;
    let cmd = answer_of(&r);
    assert_eq!(cmd.attr("status"), Some("executing"), "{}", r.to_xml());
    let form = cmd.get_child("x", NS_DATA).expect("a form");
    assert_eq!(form.attr("type"), Some("form"));
    let form_type = form
        .children()
        .find(|f| f.attr("var") == Some("FORM_TYPE"))
        .expect("FORM_TYPE");
    assert_eq!(form_type.attr("type"), Some("hidden"));
    assert_eq!(
        form_type.get_child("value", NS_DATA).map(Element::text),
        Some(ADMIN.to_owned())
    );
    cmd.attr("sessionid").expect("sessionid").to_owned()
}

/// Runs `name` to completion with these fields; returns the completed `<command/>`.
async fn run(c: &mut Client, name: &str, fields: &[(&str, &[&str])]) -> Element {
    let id = start(c, name).await;
    let r = complete(c, name, &id, fields).await;
    let cmd = answer_of(&r);
    assert_eq!(
        (cmd.attr("status"), cmd.attr("sessionid")),
        (Some("completed"), Some(id.as_str())),
        "{}",
        r.to_xml()
    );
    cmd
}

fn note(cmd: &Element) -> (String, String) {
    let n = cmd
        .get_child("note", NS_COMMANDS)
        .unwrap_or_else(|| panic!("no note: {}", cmd.to_xml()));
    (n.attr("type").unwrap_or_default().to_owned(), n.text())
}

fn result_values(cmd: &Element, var: &str) -> Vec<String> {
    cmd.get_child("x", NS_DATA)
        .and_then(|x| x.children().find(|f| f.attr("var") == Some(var)))
        .map(|f| f.children().map(Element::text).collect())
        .unwrap_or_else(|| panic!("no {var} in {}", cmd.to_xml()))
}

/// The nodes of the server's command list as `c` sees it.
async fn listed(c: &mut Client) -> Vec<String> {
    let r = iq_ok(
        c,
        "get",
        Some("localhost"),
        Element::new("query", NS_DISCO_ITEMS).with_attr("node", NS_COMMANDS),
    )
    .await;
    r.get_child("query", NS_DISCO_ITEMS)
        .expect("query")
        .children()
        .filter_map(|i| i.attr("node").map(str::to_owned))
        .collect()
}

/// The SASL condition a login is refused with, or `None` when it succeeds.
async fn login_refusal(s: &TestServer, user: &str, password: &str) -> Option<String> {
    match Client::login(&s.client(user, password)).await {
        Ok(c) => {
            let _ = c.close().await;
            None
        }
        Err(ClientError::SaslFailure { condition, .. }) => Some(condition),
        Err(e) => panic!("login of {user}: {e}"),
    }
}

/// Reads until the stream ends; returns how.
async fn stream_end(c: &mut Client) -> ClientError {
    loop {
        match c.recv(T).await {
            Ok(_) => continue,
            Err(e) => return e,
        }
    }
}

async fn audit(s: &TestServer) -> Vec<causerie_storage::AuditEvent> {
    s.storage()
        .audit
        .list(&causerie_storage::AuditFilter::default())
        .await
        .expect("audit log")
        .into_iter()
        .filter(|e| e.actor == "xmpp:boss@localhost")
        .collect()
}

#[tokio::test]
async fn only_administrators_see_and_run_the_commands() {
    let s = admin_server(&["alice"]).await;
    let mut boss = login(&s, "boss", "desk").await;
    let mut alice = login(&s, "alice", "a").await;

    let seen = listed(&mut boss).await;
    for name in NODES {
        assert!(seen.contains(&node(name)), "{name} in {seen:?}");
    }
    let seen = listed(&mut alice).await;
    assert!(
        !seen.iter().any(|n| n.starts_with(ADMIN)),
        "alice sees {seen:?}"
    );

    for name in ["add-user", "get-online-users-num"] {
        assert_error(&execute(&mut alice, name).await, "forbidden");
    }
    let r = iq(
        &mut alice,
        "get",
        Some("localhost"),
        Element::new("query", NS_DISCO_INFO).with_attr("node", node("add-user")),
    )
    .await;
    assert_error(&r, "forbidden");
    let r = iq_ok(
        &mut boss,
        "get",
        Some("localhost"),
        Element::new("query", NS_DISCO_INFO).with_attr("node", node("add-user")),
    )
    .await;
    let identity = r
        .get_child("query", NS_DISCO_INFO)
        .and_then(|q| q.get_child("identity", NS_DISCO_INFO))
        .expect("identity");
    assert_eq!(identity.attr("name"), Some("Add User"));
    assert!(audit(&s).await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn an_added_user_logs_in_and_a_changed_password_applies() {
    let s = admin_server(&[]).await;
    let mut boss = login(&s, "boss", "desk").await;

    let done = run(
        &mut boss,
        "add-user",
        &[
            ("accountjid", &["carol@localhost"]),
            ("password", &["carol-first"]),
            ("password-verify", &["carol-first"]),
        ],
    )
    .await;
    assert_eq!(
        note(&done),
        ("info".to_owned(), "carol@localhost was added.".to_owned())
    );
    let carol = Client::login(&s.client("carol", "carol-first"))
        .await
        .expect("carol logs in");
    carol.close().await.expect("closed");

    let done = run(
        &mut boss,
        "change-user-password",
        &[
            ("accountjid", &["carol@localhost"]),
            ("password", &["carol-second"]),
        ],
    )
    .await;
    assert_eq!(note(&done).0, "info");
    assert_eq!(
        login_refusal(&s, "carol", "carol-first").await.as_deref(),
        Some("not-authorized")
    );
    assert_eq!(login_refusal(&s, "carol", "carol-second").await, None);

    // Adding the same account again is a conflict (XEP-0133 §5).
    let id = start(&mut boss, "add-user").await;
    let r = complete(
        &mut boss,
        "add-user",
        &id,
        &[("accountjid", &["carol@localhost"]), ("password", &["x"])],
    )
    .await;
    assert_error(&r, "conflict");

    let events = audit(&s).await;
    let seen: Vec<(&str, &str, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.subject.as_str(),
                e.outcome.as_str(),
                e.remote_addr.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "user.add",
                "carol@localhost",
                "ok",
                Some("boss@localhost/desk")
            ),
            (
                "user.passwd",
                "carol@localhost",
                "ok",
                Some("boss@localhost/desk")
            ),
            (
                "user.add",
                "carol@localhost",
                "refused",
                Some("boss@localhost/desk")
            ),
        ]
    );
    assert!(
        events.iter().all(|e| !e.detail.contains("carol-")),
        "no password in the audit log: {events:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn disabling_ends_sessions_and_refuses_logins_until_reenabled() {
    let s = admin_server(&["bob"]).await;
    let mut boss = login(&s, "boss", "desk").await;
    let mut bob = login(&s, "bob", "home").await;

    let done = run(
        &mut boss,
        "disable-user",
        &[("accountjids", &["bob@localhost"])],
    )
    .await;
    assert_eq!(
        note(&done),
        (
            "info".to_owned(),
            "bob@localhost was disabled; 1 session(s) ended.".to_owned()
        )
    );
    let end = stream_end(&mut bob).await;
    assert!(is_stream_error(&end, "policy-violation"), "{end}");
    assert_eq!(
        login_refusal(&s, "bob", &password("bob")).await.as_deref(),
        Some("account-disabled")
    );

    let done = run(
        &mut boss,
        "reenable-user",
        &[("accountjids", &["bob@localhost"])],
    )
    .await;
    assert_eq!(
        note(&done),
        (
            "info".to_owned(),
            "bob@localhost was re-enabled.".to_owned()
        )
    );
    assert_eq!(login_refusal(&s, "bob", &password("bob")).await, None);

    let actions: Vec<(String, String)> = audit(&s)
        .await
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect();
    assert_eq!(
        actions,
        [
            ("user.lock".to_owned(), "ok".to_owned()),
            ("user.unlock".to_owned(), "ok".to_owned())
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn deleting_removes_the_account_and_ends_its_sessions() {
    let s = admin_server(&["alice", "bob"]).await;
    let mut boss = login(&s, "boss", "desk").await;
    let mut alice = login(&s, "alice", "a").await;
    let mut bob = login(&s, "bob", "b").await;

    // Ending sessions keeps the account.
    let done = run(
        &mut boss,
        "end-user-session",
        &[("accountjids", &["bob@localhost"])],
    )
    .await;
    assert_eq!(
        note(&done),
        ("info".to_owned(), "Ended bob@localhost/b.".to_owned())
    );
    let end = stream_end(&mut bob).await;
    assert!(is_stream_error(&end, "policy-violation"), "{end}");
    assert_eq!(login_refusal(&s, "bob", &password("bob")).await, None);

    let done = run(
        &mut boss,
        "delete-user",
        &[("accountjids", &["alice@localhost", "nobody@localhost"])],
    )
    .await;
    let (kind, text) = note(&done);
    assert_eq!(kind, "warn", "{text}");
    assert!(
        text.starts_with("alice@localhost was deleted; 1 session(s) ended.\nnobody@localhost: "),
        "{text}"
    );
    let end = stream_end(&mut alice).await;
    assert!(is_stream_error(&end, "not-authorized"), "{end}");
    assert_eq!(
        login_refusal(&s, "alice", &password("alice"))
            .await
            .as_deref(),
        Some("not-authorized")
    );
    assert!(
        !s.storage()
            .users
            .user_exists("alice", "localhost")
            .await
            .expect("store")
    );
    s.stop().await;
}

#[tokio::test]
async fn online_users_are_listed_and_counted_and_reached_by_announcements() {
    let s = admin_server(&["alice", "bob", "carol"]).await;
    let mut boss = login(&s, "boss", "desk").await;
    let mut alice = login(&s, "alice", "a").await;
    alice.send(&presence()).await.expect("presence");
    let mut bob = login(&s, "bob", "b").await;
    bob.send(&presence()).await.expect("presence");
    // Pings as barriers: their presence was handled.
    ping_drain(&mut alice).await;
    ping_drain(&mut bob).await;

    for name in ["get-online-users-list", "get-online-users"] {
        let done = run(&mut boss, name, &[("max_items", &["25"])]).await;
        assert_eq!(
            result_values(&done, "onlineuserjids"),
            ["alice@localhost", "bob@localhost", "boss@localhost"],
            "{name}"
        );
    }
    let done = answer_of(&execute(&mut boss, "get-online-users-num").await);
    assert_eq!(done.attr("status"), Some("completed"));
    assert_eq!(result_values(&done, "onlineusersnum"), ["3"]);
    let r = execute(&mut boss, "get-registered-users-num").await;
    assert_eq!(result_values(&answer_of(&r), "registeredusersnum"), ["4"]);

    let done = run(
        &mut boss,
        "announce",
        &[
            ("subject", &["Maintenance"]),
            ("announcement", &["Down at 22:00.", "Back by 23:00."]),
        ],
    )
    .await;
    assert_eq!(
        note(&done).1,
        "The announcement was sent to 3 session(s) of 3 user(s)."
    );
    for c in [&mut alice, &mut bob] {
        let m = expect(c, "the announcement", |e| {
            e.name() == "message" && e.attr("type") == Some("headline")
        })
        .await;
        assert_eq!(m.attr("from"), Some("localhost"));
        assert_eq!(
            m.get_child("subject", NS_CLIENT)
                .map(Element::text)
                .as_deref(),
            Some("Maintenance")
        );
        assert_eq!(
            body_of(&m).as_deref(),
            Some("Down at 22:00.\nBack by 23:00.")
        );
    }
    let actions: Vec<String> = audit(&s).await.into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["announce"], "listings are not changes");
    s.stop().await;
}

#[tokio::test]
async fn cancelled_and_unknown_sessions() {
    let s = admin_server(&[]).await;
    let mut boss = login(&s, "boss", "desk").await;
    let mut phone = login(&s, "boss", "phone").await;

    let id = start(&mut boss, "add-user").await;
    // Another session of the same administrator cannot take it over.
    assert_bad_sessionid(&cancel(&mut phone, "add-user", &id).await);
    let cmd = answer_of(&cancel(&mut boss, "add-user", &id).await);
    assert_eq!(
        (cmd.attr("status"), cmd.attr("sessionid")),
        (Some("canceled"), Some(id.as_str()))
    );
    // Cancelled: completing it now is refused, and nothing was created.
    let r = complete(
        &mut boss,
        "add-user",
        &id,
        &[("accountjid", &["eve@localhost"]), ("password", &["x"])],
    )
    .await;
    assert_bad_sessionid(&r);
    let r = iq(
        &mut boss,
        "set",
        Some("localhost"),
        command("delete-user", Some("complete"), Some("made-up"), None),
    )
    .await;
    assert_bad_sessionid(&r);
    assert!(
        !s.storage()
            .users
            .user_exists("eve", "localhost")
            .await
            .expect("store")
    );
    assert!(audit(&s).await.is_empty());
    s.stop().await;
}

/// XEP-0050 §4.6: `bad-request` with `<bad-sessionid/>`.
fn assert_bad_sessionid(r: &Element) {
    assert_error(r, "bad-request");
    let app = r
        .get_child("error", NS_CLIENT)
        .and_then(|e| e.get_child("bad-sessionid", NS_COMMANDS));
    assert!(app.is_some(), "{}", r.to_xml());
}
