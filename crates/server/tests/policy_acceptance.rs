//! Usage-policy acceptance end to end over STARTTLS (xeps/policy-acceptance.md): the stream
//! feature, the restricted state, the three ways to accept, declining, the time limit, new
//! versions, every-session mode, receipts and the chain.

mod common;

use std::time::Duration;

use causerie_policy::{PolicyDocument, SignedReceipt, verify_chain};
use causerie_storage::{PolicyVersion, ReceiptFilter};
use causerie_testkit::client::{Client, ClientConfig, ClientError, Negotiation};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use common::{NS_CLIENT, T, chat, stanza_error_condition, stream_error};

const NS: &str = "urn:causerie:policy:0";
const NS_DATA: &str = "jabber:x:data";
const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
const NODE: &str = "urn:causerie:policy:0#accept";
const SHORT: Duration = Duration::from_millis(400);

fn policy_file(title: &str, effective: &str) -> String {
    format!(
        "+++\ntitle = \"{title}\"\neffective = \"{effective}\"\ncategories = [\"message archiving\", \"keyword alerts\"]\n+++\nWork use only.\n\nMessages are archived.\n"
    )
}

/// Publishes a policy file for every domain, as `causeriectl policy publish` does.
async fn publish(s: &TestServer, title: &str) -> PolicyVersion {
    publish_at(s, title, "2020-01-01").await
}

async fn publish_at(s: &TestServer, title: &str, effective: &str) -> PolicyVersion {
    let doc = PolicyDocument::parse(policy_file(title, effective).as_bytes()).expect("valid file");
    publish_doc(s, &doc, None).await
}

async fn publish_doc(s: &TestServer, doc: &PolicyDocument, domain: Option<&str>) -> PolicyVersion {
    s.storage()
        .policy
        .publish(&causerie_policy::rows::new_version(
            doc,
            domain.map(str::to_owned),
            1,
            "test",
        ))
        .await
        .expect("published")
}

async fn server(users: &[&str], f: impl FnOnce(&mut causerie_config::Config)) -> TestServer {
    let s = TestServer::start_with(f).await.expect("server starts");
    for u in users {
        s.add_user(u, "secret").await.expect("user added");
    }
    s
}

fn cfg(s: &TestServer, user: &str, resource: &str) -> ClientConfig {
    let mut c = s.client(user, "secret");
    c.resource = Some(resource.into());
    c
}

/// Logs in over STARTTLS and returns the client with the features offered for binding.
async fn login_with_features(c: &ClientConfig) -> (Client, Element) {
    let mut n = Negotiation::connect(c).await.expect("connect");
    n.header().await.expect("header");
    n.features().await.expect("features");
    n.starttls().await.expect("starttls");
    n.header().await.expect("header");
    n.features().await.expect("features");
    let mech = n.choose_mechanism().expect("mechanism");
    n.auth(&mech).await.expect("auth");
    n.restart().await.expect("restart");
    n.header().await.expect("header");
    let features = n.features().await.expect("features").element;
    let jid = n.bind(c.resource.as_deref()).await.expect("bind");
    (n.into_client(jid), features)
}

/// A restricted login: the version query and the prompt arrive; the query is answered.
async fn restricted(c: &ClientConfig, client_name: &str) -> (Client, Element) {
    let (mut cl, features) = login_with_features(c).await;
    let policy = features
        .get_child("policy", NS)
        .expect("policy stream feature");
    assert_eq!(policy.attr("required"), Some("true"));
    let query = cl
        .recv_matching(T, |e| {
            e.name() == "iq" && e.has_child("query", "jabber:iq:version")
        })
        .await
        .expect("software version query");
    cl.send(
        &Element::new("iq", NS_CLIENT)
            .with_attr("type", "result")
            .with_attr("id", query.attr("id").unwrap())
            .with_attr("to", query.attr("from").unwrap())
            .with_child(
                Element::new("query", "jabber:iq:version")
                    .with_child(Element::new("name", "jabber:iq:version").with_text(client_name))
                    .with_child(Element::new("version", "jabber:iq:version").with_text("1.0")),
            ),
    )
    .await
    .unwrap();
    let prompt = next_from_policy(&mut cl).await;
    (cl, prompt)
}

async fn next_from_policy(c: &mut Client) -> Element {
    c.recv_matching(T, |e| {
        e.name() == "message" && e.attr("from").is_some_and(|f| f.starts_with("policy@"))
    })
    .await
    .expect("a message from the policy address")
}

fn body(m: &Element) -> String {
    m.get_child("body", NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

fn iq(kind: &str, id: &str, to: Option<&str>, payload: Element) -> Element {
    let mut e = Element::new("iq", NS_CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id)
        .with_child(payload);
    if let Some(to) = to {
        e.set_attr("to", to);
    }
    e
}

async fn answer(c: &mut Client, id: &str) -> Element {
    c.recv_matching(T, |e| e.name() == "iq" && e.attr("id") == Some(id))
        .await
        .expect("IQ answer")
}

fn receipt_of(el: &Element) -> SignedReceipt {
    let r = el.get_child("receipt", NS).expect("receipt");
    let jid = r.get_child("jid", NS).unwrap().text();
    let (user, rest) = jid.split_once('@').unwrap();
    let (domain, resource) = rest.split_once('/').unwrap_or((rest, ""));
    SignedReceipt {
        fields: causerie_policy::ReceiptFields {
            seq: r.attr("seq").unwrap().parse().unwrap(),
            username: user.into(),
            domain: domain.into(),
            resource: resource.into(),
            policy_hash: r.attr("version").unwrap().into(),
            method: r.attr("method").unwrap().into(),
            accepted_at: causerie_policy::rfc3339::parse(r.attr("accepted").unwrap()).unwrap(),
            remote_addr: r.get_child("address", NS).map(|a| a.text()),
            client: r.get_child("client", NS).map(|a| a.text()),
            prev_hash: r.attr("prev").unwrap().into(),
        },
        hash: r.attr("hash").unwrap().into(),
        signature: r.get_child("signature", NS).unwrap().text(),
    }
}

/// The receipt key the server publishes in its disco#info (XEP-0128).
async fn published_key(c: &mut Client) -> [u8; 32] {
    c.send(&iq(
        "get",
        "disco",
        Some("localhost"),
        Element::new("query", "http://jabber.org/protocol/disco#info"),
    ))
    .await
    .unwrap();
    let a = answer(c, "disco").await;
    let q = a
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert!(
        q.children().any(|f| f.attr("var") == Some(NS)),
        "feature listed"
    );
    let x = q
        .children()
        .find(|x| {
            x.is("x", NS_DATA)
                && x.children().any(|f| {
                    f.attr("var") == Some("FORM_TYPE")
                        && f.get_child("value", NS_DATA)
                            .is_some_and(|v| v.text() == NS)
                })
        })
        .expect("extended form");
    let hex = x
        .children()
        .find(|f| f.attr("var") == Some("policy-receipt-key"))
        .and_then(|f| f.get_child("value", NS_DATA))
        .unwrap()
        .text();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

async fn stored_chain(s: &TestServer) -> Vec<SignedReceipt> {
    s.storage()
        .policy
        .receipts(&ReceiptFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(SignedReceipt::from)
        .collect()
}

async fn expect_stream_error(c: &mut Client, condition: &str) -> Option<String> {
    loop {
        match c.recv(Duration::from_secs(20)).await {
            Ok(_) => continue,
            Err(e) => {
                assert_eq!(stream_error(&e), Some(condition), "{e}");
                return match e {
                    ClientError::StreamError { text, .. } => text,
                    _ => None,
                };
            }
        }
    }
}

/// Accepts through the IQ of the extension and checks the answer.
async fn accept_by_iq(c: &mut Client, version: &str) -> Element {
    c.send(&iq(
        "set",
        "accept",
        Some("localhost"),
        Element::new("accept", NS).with_attr("version", version),
    ))
    .await
    .unwrap();
    let a = answer(c, "accept").await;
    assert_eq!(a.attr("type"), Some("result"), "{a:?}");
    a
}

#[tokio::test]
async fn extension_restricts_then_accepts_with_a_signed_receipt() {
    let s = server(&["alice", "bob"], |_| {}).await;
    let v = publish(&s, "Rules").await;
    // Bob accepted already; his session is not restricted.
    let (mut bob, _) = restricted(&cfg(&s, "bob", "desk"), "BobClient").await;
    accept_by_iq(&mut bob, &v.hash).await;
    bob.send_initial_presence(T).await.expect("bob available");

    let (mut alice, features) = login_with_features(&cfg(&s, "alice", "laptop")).await;
    let f = features.get_child("policy", NS).expect("stream feature");
    assert_eq!(f.attr("version"), Some(v.hash.as_str()));
    assert_eq!(f.attr("short"), Some(&v.hash[..4]));
    let prompt = next_from_policy(&mut alice).await;
    assert!(body(&prompt).ends_with(&format!(
        "Reply ACCEPT {} to accept, or DECLINE.",
        &v.hash[..4]
    )));
    assert!(body(&prompt).contains("- keyword alerts"));

    // Outbound refused with policy-violation, type auth, naming the version.
    alice.send(&chat("bob@localhost", "hi")).await.unwrap();
    let err = alice
        .recv_matching(T, |e| {
            e.name() == "message" && e.attr("type") == Some("error")
        })
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&err).as_deref(),
        Some("policy-violation")
    );
    let e = err.get_child("error", NS_CLIENT).unwrap();
    assert_eq!(e.attr("type"), Some("auth"));
    assert_eq!(
        e.get_child("acceptance-required", NS)
            .and_then(|a| a.attr("version")),
        Some(v.hash.as_str())
    );
    let text = e
        .get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas")
        .unwrap()
        .text();
    assert!(
        text.contains(&format!("ACCEPT {}", &v.hash[..4])) && text.contains("policy@localhost"),
        "{text}"
    );
    // An IQ to another account is refused the same way; ping and roster get are allowed.
    alice
        .send(&iq(
            "get",
            "vc",
            Some("bob@localhost"),
            Element::new("vCard", "vcard-temp"),
        ))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut alice, "vc").await).as_deref(),
        Some("policy-violation")
    );
    alice
        .send(&iq(
            "get",
            "ping",
            Some("localhost"),
            Element::new("ping", "urn:xmpp:ping"),
        ))
        .await
        .unwrap();
    assert_eq!(
        answer(&mut alice, "ping").await.attr("type"),
        Some("result")
    );
    alice
        .send(&iq(
            "get",
            "roster",
            None,
            Element::new("query", "jabber:iq:roster"),
        ))
        .await
        .unwrap();
    assert_eq!(
        answer(&mut alice, "roster").await.attr("type"),
        Some("result")
    );

    // Presence is held: nobody sees it, not even the sender.
    alice
        .send(&Element::new("presence", NS_CLIENT))
        .await
        .unwrap();
    assert!(
        alice
            .recv_matching(SHORT, |e| e.name() == "presence")
            .await
            .is_err()
    );
    // Messages to her bare and full JID are kept offline, not delivered to the held session.
    bob.send(&chat("alice@localhost", "one")).await.unwrap();
    bob.send(&chat("alice@localhost/laptop", "two"))
        .await
        .unwrap();
    assert!(
        alice
            .recv_matching(SHORT, |e| e.name() == "message"
                && e.attr("from").is_some_and(|f| f.starts_with("bob@")))
            .await
            .is_err()
    );
    // An IQ to her full JID: as if she were not connected.
    bob.send(&iq(
        "get",
        "v2",
        Some(alice.jid()),
        Element::new("query", "jabber:iq:version"),
    ))
    .await
    .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut bob, "v2").await).as_deref(),
        Some("service-unavailable")
    );

    // Reading the policy.
    alice
        .send(&iq(
            "get",
            "p",
            Some("localhost"),
            Element::new("policy", NS),
        ))
        .await
        .unwrap();
    let p = answer(&mut alice, "p").await;
    let pol = p.get_child("policy", NS).unwrap();
    assert_eq!(pol.attr("version"), Some(v.hash.as_str()));
    assert_eq!(
        pol.get_child("text", NS).unwrap().text(),
        "Work use only.\n\nMessages are archived.\n"
    );
    assert_eq!(
        pol.get_child("categories", NS).unwrap().children().count(),
        2
    );

    // Wrong inputs: a malformed version, a version never published.
    alice
        .send(&iq(
            "set",
            "bad",
            Some("localhost"),
            Element::new("accept", NS).with_attr("version", "92cc"),
        ))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut alice, "bad").await).as_deref(),
        Some("bad-request")
    );
    alice
        .send(&iq(
            "set",
            "nf",
            None,
            Element::new("accept", NS).with_attr("version", "0".repeat(64)),
        ))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut alice, "nf").await).as_deref(),
        Some("item-not-found")
    );

    let key = published_key(&mut alice).await;
    let result = accept_by_iq(&mut alice, &v.hash).await;
    let receipt = receipt_of(&result);
    assert!(receipt.verify(&key), "receipt signed by the published key");
    assert_eq!(receipt.fields.method, "extension");
    assert_eq!(receipt.fields.resource, "laptop");
    assert_eq!(
        receipt.fields.client.as_deref(),
        None,
        "alice did not answer the version query"
    );
    assert_eq!(receipt.fields.remote_addr.as_deref(), Some("127.0.0.1"));
    // Right after the result: her held presence takes effect and the kept messages arrive.
    let mut got = Vec::new();
    let mut presence = false;
    while got.len() < 2 || !presence {
        let e = alice
            .recv_matching(T, |e| {
                (e.name() == "message" && e.attr("from").is_some_and(|f| f.starts_with("bob@")))
                    || (e.name() == "presence" && e.attr("from") == Some("alice@localhost/laptop"))
            })
            .await
            .expect("kept messages and held presence");
        if e.name() == "presence" {
            presence = true;
        } else {
            got.push(body(&e));
        }
    }
    got.sort();
    assert_eq!(got, ["one", "two"]);
    // Now she can talk.
    alice
        .send(&chat("bob@localhost", "hello bob"))
        .await
        .unwrap();
    let m = bob
        .recv_matching(T, |e| e.name() == "message")
        .await
        .unwrap();
    assert_eq!(body(&m), "hello bob");
    // Accepting again: nothing to accept.
    alice
        .send(&iq(
            "set",
            "again",
            None,
            Element::new("accept", NS).with_attr("version", v.hash.as_str()),
        ))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut alice, "again").await).as_deref(),
        Some("unexpected-request")
    );
    // Her receipts, and the whole chain checks out.
    alice
        .send(&iq("get", "r", None, Element::new("receipts", NS)))
        .await
        .unwrap();
    let list = answer(&mut alice, "r").await;
    let list = list.get_child("receipts", NS).unwrap();
    assert_eq!(list.children().count(), 1);
    let chain = stored_chain(&s).await;
    assert_eq!(chain.len(), 2);
    assert!(verify_chain(&chain, &key, None).ok());
    assert_eq!(chain[0].fields.client.as_deref(), Some("BobClient 1.0"));
}

#[tokio::test]
async fn chat_fallback_accepts_and_answers_my_policy() {
    let s = server(&["alice", "bob"], |_| {}).await;
    let v = publish(&s, "Chat rules").await;
    let (mut alice, prompt) = restricted(&cfg(&s, "alice", "phone"), "Conversations").await;
    assert!(
        prompt.get_child("x", NS_DATA).is_some(),
        "form embedded in the prompt"
    );
    let code = &v.hash[..4];

    alice.send(&chat("policy@localhost", "ok")).await.unwrap();
    let reply = body(&next_from_policy(&mut alice).await);
    assert!(
        reply.starts_with("This address only understands"),
        "{reply}"
    );
    assert!(reply.ends_with(&format!("Reply ACCEPT {code} to accept, or DECLINE.")));
    let wrong = if code == "0000" { "ffff" } else { "0000" };
    alice
        .send(&chat("policy@localhost", &format!("accept {wrong}")))
        .await
        .unwrap();
    let reply = body(&next_from_policy(&mut alice).await);
    assert!(
        reply.starts_with(&format!("{wrong} is not the code")),
        "{reply}"
    );
    alice
        .send(&chat("policy@localhost", "my policy"))
        .await
        .unwrap();
    let reply = body(&next_from_policy(&mut alice).await);
    assert!(
        reply.contains("You have not accepted any version")
            && reply.contains("is waiting for your acceptance"),
        "{reply}"
    );

    alice
        .send(&chat(
            "policy@localhost",
            &format!("  Accept {}  ", code.to_uppercase()),
        ))
        .await
        .unwrap();
    let confirm = next_from_policy(&mut alice).await;
    assert!(
        body(&confirm).starts_with("Accepted: Chat rules, version"),
        "{}",
        body(&confirm)
    );
    let receipt = receipt_of(&confirm);
    assert_eq!(receipt.fields.method, "chat");
    assert_eq!(receipt.fields.client.as_deref(), Some("Conversations 1.0"));

    alice
        .send(&chat("policy@localhost", "MY POLICY"))
        .await
        .unwrap();
    let reply = body(&next_from_policy(&mut alice).await);
    assert!(
        reply.contains(&format!("You accepted version {code} (Chat rules)"))
            && reply.contains("from phone, by chat"),
        "{reply}"
    );
    assert!(reply.contains("Nothing is waiting"), "{reply}");
    // The session is free.
    alice.send(&chat("bob@localhost", "free")).await.unwrap();
    assert!(
        alice
            .recv_matching(SHORT, |e| e.attr("type") == Some("error"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn form_in_the_chat_message_accepts() {
    let s = server(&["alice"], |_| {}).await;
    let v = publish(&s, "Form rules").await;
    let (mut alice, prompt) = restricted(&cfg(&s, "alice", "gajim"), "Gajim").await;
    let mut x = prompt.get_child("x", NS_DATA).unwrap().clone();
    x.set_attr("type", "submit");
    // Without an answer: told, and nothing changes.
    let mut msg = Element::new("message", NS_CLIENT)
        .with_attr("to", "policy@localhost")
        .with_attr("type", "chat");
    msg.push_child(x.clone());
    alice.send(&msg).await.unwrap();
    assert!(body(&next_from_policy(&mut alice).await).starts_with("The form did not say"));
    for f in x.children_mut() {
        if f.attr("var") == Some("accept") {
            f.push_child(Element::new("value", NS_DATA).with_text("1"));
        }
    }
    let mut msg = Element::new("message", NS_CLIENT).with_attr("to", "policy@localhost");
    msg.push_child(x);
    alice.send(&msg).await.unwrap();
    let confirm = next_from_policy(&mut alice).await;
    let r = receipt_of(&confirm);
    assert_eq!(
        (r.fields.method.as_str(), r.fields.policy_hash.as_str()),
        ("chat", v.hash.as_str())
    );
}

#[tokio::test]
async fn adhoc_command_accepts() {
    let s = server(&["alice"], |_| {}).await;
    let v = publish(&s, "Command rules").await;
    let (mut alice, _) = restricted(&cfg(&s, "alice", "psi"), "Psi").await;
    alice
        .send(&iq(
            "get",
            "items",
            Some("localhost"),
            Element::new("query", "http://jabber.org/protocol/disco#items")
                .with_attr("node", NS_COMMANDS),
        ))
        .await
        .unwrap();
    let items = answer(&mut alice, "items").await;
    let q = items
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap();
    assert!(
        q.children().any(|i| i.attr("node") == Some(NODE)
            && i.attr("name") == Some("Review and accept the usage policy")),
        "{items:?}"
    );

    alice
        .send(&iq(
            "set",
            "c1",
            Some("localhost"),
            Element::new("command", NS_COMMANDS)
                .with_attr("node", NODE)
                .with_attr("action", "execute"),
        ))
        .await
        .unwrap();
    let first = answer(&mut alice, "c1").await;
    let cmd = first.get_child("command", NS_COMMANDS).expect("command");
    assert_eq!(cmd.attr("status"), Some("executing"));
    let sid = cmd.attr("sessionid").unwrap().to_owned();
    let mut x = cmd.get_child("x", NS_DATA).unwrap().clone();
    x.set_attr("type", "submit");
    for f in x.children_mut() {
        if f.attr("var") == Some("accept") {
            f.push_child(Element::new("value", NS_DATA).with_text("true"));
        }
    }
    // An unknown session id is refused.
    alice
        .send(&iq(
            "set",
            "c0",
            Some("localhost"),
            Element::new("command", NS_COMMANDS)
                .with_attr("node", NODE)
                .with_attr("sessionid", "nope")
                .with_child(x.clone()),
        ))
        .await
        .unwrap();
    let bad = answer(&mut alice, "c0").await;
    assert_eq!(stanza_error_condition(&bad).as_deref(), Some("bad-request"));
    assert!(
        bad.get_child("error", NS_CLIENT)
            .unwrap()
            .get_child("bad-sessionid", NS_COMMANDS)
            .is_some()
    );

    alice
        .send(&iq(
            "set",
            "c2",
            Some("localhost"),
            Element::new("command", NS_COMMANDS)
                .with_attr("node", NODE)
                .with_attr("sessionid", sid.as_str())
                .with_attr("action", "complete")
                .with_child(x),
        ))
        .await
        .unwrap();
    let done = answer(&mut alice, "c2").await;
    let cmd = done.get_child("command", NS_COMMANDS).expect("command");
    assert_eq!(cmd.attr("status"), Some("completed"));
    let r = receipt_of(cmd);
    assert_eq!(
        (r.fields.method.as_str(), r.fields.policy_hash.as_str()),
        ("adhoc", v.hash.as_str())
    );
    alice
        .send(&chat("alice@localhost", "note to self"))
        .await
        .unwrap();
    assert!(
        alice
            .recv_matching(SHORT, |e| e.attr("type") == Some("error"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn declining_closes_the_session() {
    let s = server(&["alice"], |_| {}).await;
    let v = publish(&s, "Decline me").await;
    let (mut a, _) = restricted(&cfg(&s, "alice", "one"), "X").await;
    a.send(&iq(
        "set",
        "d",
        Some("localhost"),
        Element::new("decline", NS).with_attr("version", v.hash.as_str()),
    ))
    .await
    .unwrap();
    assert_eq!(answer(&mut a, "d").await.attr("type"), Some("result"));
    let text = expect_stream_error(&mut a, "policy-violation").await;
    assert_eq!(text.as_deref(), Some("The usage policy was declined."));

    let (mut b, _) = restricted(&cfg(&s, "alice", "two"), "X").await;
    b.send(&chat("policy@localhost", "decline")).await.unwrap();
    assert!(body(&next_from_policy(&mut b).await).starts_with("You declined"));
    expect_stream_error(&mut b, "policy-violation").await;
    assert!(
        stored_chain(&s).await.is_empty(),
        "a decline writes no receipt"
    );
}

#[tokio::test]
async fn time_limit_closes_a_session_that_does_not_answer() {
    let s = server(&["alice"], |c| c.policy.timeout_secs = 5).await;
    publish(&s, "Hurry").await;
    let (mut a, _) = restricted(&cfg(&s, "alice", "slow"), "X").await;
    let text = expect_stream_error(&mut a, "policy-violation")
        .await
        .unwrap_or_default();
    assert!(text.contains("not accepted in time"), "{text}");
}

#[tokio::test]
async fn acceptance_releases_every_restricted_session_of_the_account() {
    let s = server(&["alice"], |_| {}).await;
    let v = publish(&s, "Everywhere").await;
    let (mut one, _) = restricted(&cfg(&s, "alice", "one"), "X").await;
    let (mut two, _) = restricted(&cfg(&s, "alice", "two"), "X").await;
    two.send(&Element::new("presence", NS_CLIENT))
        .await
        .unwrap();
    accept_by_iq(&mut one, &v.hash).await;
    let told = next_from_policy(&mut two).await;
    assert!(
        body(&told).contains("accepted from another session (one)"),
        "{}",
        body(&told)
    );
    assert!(told.get_child("receipt", NS).is_some());
    two.recv_matching(T, |e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/two")
    })
    .await
    .expect("two's held presence processed");
    two.send(&chat("alice@localhost/one", "hi one"))
        .await
        .unwrap();
    assert!(
        two.recv_matching(SHORT, |e| e.attr("type") == Some("error"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_new_version_gates_again_and_old_answers_are_refused() {
    let s = server(&["alice"], |_| {}).await;
    let v1 = publish_at(&s, "First", "2020-01-01").await;
    let (mut a, _) = restricted(&cfg(&s, "alice", "a"), "X").await;
    accept_by_iq(&mut a, &v1.hash).await;
    // Logged in again: nothing to accept.
    let (mut again, features) = login_with_features(&cfg(&s, "alice", "b")).await;
    assert!(features.get_child("policy", NS).is_none());
    again.send(&chat("alice@localhost", "fine")).await.unwrap();
    assert!(
        again
            .recv_matching(SHORT, |e| e.attr("type") == Some("error"))
            .await
            .is_err()
    );

    let v2 = publish_at(&s, "Second", "2021-01-01").await;
    // Sessions already bound keep running; a new one is restricted.
    again
        .send(&chat("alice@localhost", "still fine"))
        .await
        .unwrap();
    assert!(
        again
            .recv_matching(SHORT, |e| e.attr("type") == Some("error"))
            .await
            .is_err()
    );
    let (mut c, prompt) = restricted(&cfg(&s, "alice", "c"), "X").await;
    assert!(body(&prompt).contains("Second"));
    c.send(&iq(
        "set",
        "old",
        None,
        Element::new("accept", NS).with_attr("version", v1.hash.as_str()),
    ))
    .await
    .unwrap();
    let err = answer(&mut c, "old").await;
    assert_eq!(stanza_error_condition(&err).as_deref(), Some("conflict"));
    assert_eq!(
        err.get_child("error", NS_CLIENT)
            .unwrap()
            .get_child("current-version", NS)
            .and_then(|e| e.attr("version")),
        Some(v2.hash.as_str())
    );
    accept_by_iq(&mut c, &v2.hash).await;
    assert_eq!(stored_chain(&s).await.len(), 2);
}

#[tokio::test]
async fn every_session_mode_asks_each_session() {
    let s = server(&["alice"], |c| c.policy.mode = "every-session".into()).await;
    let v = publish(&s, "Each time").await;
    for resource in ["a", "b"] {
        let (mut c, _) = restricted(&cfg(&s, "alice", resource), "X").await;
        accept_by_iq(&mut c, &v.hash).await;
        c.close().await.unwrap();
    }
    let chain = stored_chain(&s).await;
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].fields.prev_hash, chain[0].hash);
}

#[tokio::test]
async fn tampering_with_a_stored_receipt_is_detected() {
    let s = server(&["alice"], |_| {}).await;
    let v = publish(&s, "Evidence").await;
    let (mut a, _) = restricted(&cfg(&s, "alice", "a"), "X").await;
    let key = published_key(&mut a).await;
    accept_by_iq(&mut a, &v.hash).await;
    let mut chain = stored_chain(&s).await;
    assert!(verify_chain(&chain, &key, None).ok());
    chain[0].fields.resource = "elsewhere".into();
    let report = verify_chain(&chain, &key, None);
    assert!(!report.ok(), "an edited receipt is reported");
}

#[tokio::test]
async fn no_policy_no_gate_and_the_policy_address_is_reserved() {
    let s = server(&["alice"], |_| {}).await;
    let (mut a, features) = login_with_features(&cfg(&s, "alice", "a")).await;
    assert!(features.get_child("policy", NS).is_none());
    a.send(&chat("policy@localhost", "my policy"))
        .await
        .unwrap();
    let reply = body(&next_from_policy(&mut a).await);
    assert!(reply.contains("Nothing is waiting"), "{reply}");
    a.send(&iq("get", "p", None, Element::new("policy", NS)))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut a, "p").await).as_deref(),
        Some("item-not-found")
    );
    s.add_user("policy", "secret").await.unwrap();
    drop(a);
    let mut s = s;
    s.running.take().expect("running").shutdown().await;
    let err = causerie_server::start(&s.config)
        .await
        .err()
        .expect("refuses to start");
    assert!(err.to_string().contains("policy@localhost"), "{err}");
}

#[tokio::test]
async fn a_domain_of_its_own_gets_its_own_policy() {
    let s = server(&["alice"], |c| {
        c.server.domains = vec!["localhost".into(), "corp.test".into()];
    })
    .await;
    s.add_account("dave@corp.test", "secret").await.unwrap();
    let all = publish(&s, "For everyone").await;
    let doc = PolicyDocument::parse(policy_file("Corp only", "2020-01-01").as_bytes()).unwrap();
    publish_doc(&s, &doc, Some("corp.test")).await;

    let (_alice, prompt) = restricted(&cfg(&s, "alice", "a"), "X").await;
    assert!(body(&prompt).contains("For everyone"));
    let mut dave_cfg = ClientConfig::new(s.starttls_addr(), "corp.test", "dave", "secret");
    dave_cfg.trust = causerie_testkit::client::Trust::AnyCertificate;
    dave_cfg.resource = Some("d".into());
    let (mut dave, prompt) = restricted(&dave_cfg, "X").await;
    assert!(body(&prompt).contains("Corp only"), "{}", body(&prompt));
    assert_eq!(prompt.attr("from"), Some("policy@corp.test"));
    // The version for every domain is not the one in force here.
    dave.send(&iq(
        "set",
        "x",
        Some("corp.test"),
        Element::new("accept", NS).with_attr("version", all.hash.as_str()),
    ))
    .await
    .unwrap();
    assert_eq!(
        stanza_error_condition(&answer(&mut dave, "x").await).as_deref(),
        Some("conflict")
    );
    // A policy address of another domain does not talk with him.
    dave.send(&chat("policy@localhost", "my policy"))
        .await
        .unwrap();
    let err = dave
        .recv_matching(T, |e| e.attr("type") == Some("error"))
        .await
        .unwrap();
    assert_eq!(
        stanza_error_condition(&err).as_deref(),
        Some("service-unavailable")
    );
    dave.send(&iq(
        "set",
        "y",
        Some("corp.test"),
        Element::new("accept", NS).with_attr("version", doc.hash()),
    ))
    .await
    .unwrap();
    assert_eq!(answer(&mut dave, "y").await.attr("type"), Some("result"));
}
