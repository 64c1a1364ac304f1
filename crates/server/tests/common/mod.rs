//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::time::Duration;

use causerie_testkit::client::{Client, ClientError};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;

pub const T: Duration = Duration::from_secs(5);
pub const NS_CLIENT: &str = "jabber:client";

pub async fn server_with_users(users: &[(&str, &str)]) -> TestServer {
    let s = TestServer::start().await.expect("server starts");
    for (u, p) in users {
        s.add_user(u, p).await.expect("user added");
    }
    s
}

/// Logs in and sends initial presence, so that messages to the bare JID reach this session.
pub async fn online(s: &TestServer, user: &str, password: &str, resource: &str) -> Client {
    let mut cfg = s.client(user, password);
    cfg.resource = Some(resource.into());
    let mut c = Client::login(&cfg).await.expect("login");
    c.send(&Element::new("presence", NS_CLIENT))
        .await
        .expect("presence");
    // Our own presence comes back (RFC 6121 §4.2.2).
    let own = c
        .recv_matching(T, |e| e.name() == "presence")
        .await
        .expect("own presence");
    assert_eq!(own.attr("from"), Some(c.jid()));
    c
}

pub fn chat(to: &str, body: &str) -> Element {
    Element::new("message", NS_CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", format!("m-{body}"))
        .with_child(Element::new("body", NS_CLIENT).with_text(body))
}

pub fn stanza_error_condition(el: &Element) -> Option<String> {
    let err = el.children().find(|c| c.name() == "error")?;
    err.children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_owned())
}

pub fn stream_error(e: &ClientError) -> Option<&str> {
    match e {
        ClientError::StreamError { condition, .. } => Some(condition.as_str()),
        _ => None,
    }
}
