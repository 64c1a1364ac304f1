//! The compliance engine end to end over STARTTLS: every condition and action of the rules
//! file, evidence with its context and its chain, hot reload.

mod common;

use std::path::Path;
use std::time::Duration;

use causerie_policy::compliance::evidence::{SignedEvidence, payload_intact};
use causerie_policy::{ChainProblem, verify_links};
use causerie_storage::EvidenceFilter;
use causerie_testkit::client::{Client, ClientError};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;
use common::{NS_CLIENT, T, chat, online, stanza_error_condition, stream_error};

const SHORT: Duration = Duration::from_millis(400);
const NS: &str = "urn:causerie:compliance:0";

/// A server whose rules file holds `rules`, with carol as security officer.
async fn server(rules: &str, f: impl FnOnce(&mut causerie_config::Config)) -> TestServer {
    let rules = rules.to_owned();
    let s = TestServer::start_with(move |c| {
        std::fs::create_dir_all(&c.server.data_dir).unwrap();
        std::fs::write(c.server.data_dir.join("rules.toml"), rules).unwrap();
        c.compliance.officers = vec!["carol@localhost".into()];
        c.compliance.project_names = vec!["Project Falcon".into()];
        c.compliance.reload_secs = 1;
        f(c);
    })
    .await
    .expect("server starts");
    for u in ["alice", "bob", "carol"] {
        s.add_user(u, "secret").await.unwrap();
    }
    s
}

fn rule(id: &str, extra: &str, actions: &str) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\ndescription = \"Rule {id}\"\ncategory = \"category {id}\"\n{extra}\nactions = {actions}\n\n"
    )
}

fn body(m: &Element) -> String {
    m.get_child("body", NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

/// The next error answer, with the rule its `<blocked/>` names.
async fn refused(c: &mut Client) -> (String, Option<String>) {
    let e = c
        .recv_matching(T, |e| e.attr("type") == Some("error"))
        .await
        .expect("an error answer");
    let rule = e
        .get_child("error", NS_CLIENT)
        .and_then(|x| x.get_child("blocked", NS))
        .and_then(|b| b.attr("rule"))
        .map(str::to_owned);
    (stanza_error_condition(&e).unwrap_or_default(), rule)
}

async fn from_policy(c: &mut Client) -> Element {
    c.recv_matching(T, |e| {
        e.name() == "message" && e.attr("from") == Some("policy@localhost")
    })
    .await
    .expect("a message from the policy address")
}

async fn received(c: &mut Client) -> Option<Element> {
    c.recv_matching(SHORT, |e| {
        e.name() == "message" && e.attr("from").is_some_and(|f| f.starts_with("alice@"))
    })
    .await
    .ok()
}

async fn evidence(s: &TestServer, want: usize) -> Vec<causerie_storage::StoredEvidence> {
    for _ in 0..50 {
        let list = s
            .storage()
            .evidence
            .list(&EvidenceFilter::default())
            .await
            .unwrap();
        if list.len() >= want {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{want} evidence records expected");
}

fn receipt_key(s: &TestServer) -> [u8; 32] {
    causerie_policy::keys::load_or_create(&s.config.server.data_dir.join("policy.key"))
        .unwrap()
        .public_key()
}

#[tokio::test]
async fn each_condition_blocks_what_it_finds_and_nothing_else() {
    let rules = [
        rule("kw", "keywords = [\"top secret\"]", "[\"block\"]"),
        rule("re", "patterns = ['\\bACME-\\d{4}\\b']", "[\"block\"]"),
        rule("card", "detectors = [\"payment-card\"]", "[\"block\"]"),
        rule("iban", "detectors = [\"iban\"]", "[\"block\"]"),
        rule("mail", "detectors = [\"email\"]", "[\"block\"]"),
        rule("proj", "detectors = [\"project\"]", "[\"block\"]"),
        rule(
            "link",
            "links = true\nusers = [\"bob@localhost\"]",
            "[\"block\"]",
        ),
        rule("file", "files = true", "[\"block\"]"),
        rule("far", "peers = \"not-allowed\"", "[\"block\"]"),
        rule(
            "flood",
            "rate = { messages = 3, per_secs = 60 }\nusers = [\"carol@localhost\"]",
            "[\"block\"]",
        ),
    ]
    .concat();
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    for (text, id) in [
        ("this is TOP  Secret", "kw"),
        ("see ACME-1234", "re"),
        ("card 4111 1111 1111 1111", "card"),
        ("pay to DE89 3704 0044 0532 0130 00", "iban"),
        ("write to someone@example.com", "mail"),
        ("news on project falcon", "proj"),
    ] {
        alice.send(&chat("bob@localhost", text)).await.unwrap();
        assert_eq!(
            refused(&mut alice).await,
            ("policy-violation".into(), Some(id.into())),
            "{text}"
        );
    }
    // Links: only bob is in scope.
    alice
        .send(&chat("bob@localhost", "https://example.com/x"))
        .await
        .unwrap();
    assert_eq!(
        body(&received(&mut bob).await.expect("alice is not in scope")),
        "https://example.com/x"
    );
    bob.send(&chat("alice@localhost", "see https://example.com/x."))
        .await
        .unwrap();
    assert_eq!(refused(&mut bob).await.1.as_deref(), Some("link"));
    // A file offered out of band (XEP-0066).
    let mut oob = chat("bob@localhost", "a file");
    oob.push_child(Element::new("x", "jabber:x:oob").with_child(
        Element::new("url", "jabber:x:oob").with_text("https://files.example/report.pdf"),
    ));
    alice.send(&oob).await.unwrap();
    assert_eq!(refused(&mut alice).await.1.as_deref(), Some("file"));
    // A domain federation does not allow.
    alice
        .send(&chat("someone@elsewhere.example", "hello"))
        .await
        .unwrap();
    assert_eq!(refused(&mut alice).await.1.as_deref(), Some("far"));
    // Flooding: carol's fourth message in a minute.
    let mut carol = online(&s, "carol", "secret", "c").await;
    for i in 0..3 {
        carol
            .send(&chat("bob@localhost", &format!("n{i}")))
            .await
            .unwrap();
    }
    carol.send(&chat("bob@localhost", "n3")).await.unwrap();
    assert_eq!(refused(&mut carol).await.1.as_deref(), Some("flood"));
    // Ordinary text passes, chat states and all.
    alice
        .send(&chat("bob@localhost", "lunch at noon? secret recipe"))
        .await
        .unwrap();
    assert_eq!(
        body(&received(&mut bob).await.expect("delivered")),
        "lunch at noon? secret recipe"
    );
    s.stop().await;
}

/// A keyword list too long for the first look to hold whole (it holds the first words), over
/// the whole path: phrases in any case, spacing or accents are blocked, their first words alone
/// or inside other words are not.
#[tokio::test]
async fn a_long_keyword_list_blocks_its_phrases_and_nothing_else() {
    let mut phrases: Vec<String> = (0..300).map(|i| format!("\"filler phrase {i}\"")).collect();
    phrases.extend(["\"insider trading\"".to_owned(), "\"#leak\"".to_owned()]);
    let rules = [
        rule(
            "long",
            &format!("keywords = [{}]", phrases.join(", ")),
            "[\"block\"]",
        ),
        rule("re", "patterns = ['\\bACME-\\d{4}\\b']", "[\"block\"]"),
    ]
    .concat();
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    for text in [
        "the INSIDER trading desk",
        "an Insider  trading tip",
        "ïnsider trading again",
        "see #LEAK now",
        "filler phrase 299.",
    ] {
        alice.send(&chat("bob@localhost", text)).await.unwrap();
        assert_eq!(
            refused(&mut alice).await,
            ("policy-violation".into(), Some("long".into())),
            "{text}"
        );
    }
    for text in [
        "insiders trading cards",
        "the insider's view",
        "an outsider trading",
        "leak #leaky",
        "filler phrase 3000",
    ] {
        alice.send(&chat("bob@localhost", text)).await.unwrap();
        assert_eq!(
            body(&received(&mut bob).await.expect("delivered")),
            text,
            "{text}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn a_groupchat_message_is_on_the_groupchat_path_only() {
    let rules = rule(
        "rooms",
        "paths = [\"groupchat\"]\nkeywords = [\"room secret\"]",
        "[\"block\"]",
    );
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    let mut groupchat = chat("bob@localhost", "the room secret is out");
    groupchat.set_attr("type", "groupchat");
    alice.send(&groupchat).await.unwrap();
    assert_eq!(
        refused(&mut alice).await,
        ("policy-violation".to_owned(), Some("rooms".to_owned()))
    );
    // The same text in a chat message is not on the rule's path.
    alice
        .send(&chat("bob@localhost", "the room secret is out"))
        .await
        .unwrap();
    let got = received(&mut bob)
        .await
        .expect("a chat message goes through");
    assert_eq!(body(&got), "the room secret is out");
    s.stop().await;
}

#[tokio::test]
async fn mask_warn_and_incoming_rules() {
    let rules = [
        rule(
            "mask-cards",
            "detectors = [\"payment-card\"]\nseverity = \"high\"",
            "[\"mask\", \"warn\"]",
        ),
        rule(
            "bob-in",
            "direction = \"incoming\"\nusers = [\"bob@localhost\"]\nkeywords = [\"poker\"]",
            "[\"block\"]",
        ),
    ]
    .concat();
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice
        .send(&chat("bob@localhost", "my card is 4111111111111111, ok?"))
        .await
        .unwrap();
    let got = received(&mut bob).await.expect("delivered masked");
    assert_eq!(body(&got), "my card is ****************, ok?");
    let warn = from_policy(&mut alice).await;
    assert!(
        body(&warn).contains("Rule mask-cards") && body(&warn).contains("masked"),
        "{}",
        body(&warn)
    );
    // Masked everywhere: the copy kept offline for carol is masked too.
    alice
        .send(&chat("carol@localhost", "card 5555 5555 5555 4444"))
        .await
        .unwrap();
    let mut carol = Client::login(&s.client("carol", "secret")).await.unwrap();
    carol
        .send(&Element::new("presence", NS_CLIENT))
        .await
        .unwrap();
    let offline = carol
        .recv_matching(T, |e| {
            e.name() == "message" && e.attr("from").is_some_and(|f| f.starts_with("alice@"))
        })
        .await
        .unwrap();
    assert_eq!(body(&offline), "card *******************");
    // Incoming: bob's rule refuses what is sent to him, not what he sends.
    alice
        .send(&chat("bob@localhost", "poker tonight?"))
        .await
        .unwrap();
    assert_eq!(refused(&mut alice).await.1.as_deref(), Some("bob-in"));
    bob.send(&chat("alice@localhost", "poker tonight!"))
        .await
        .unwrap();
    alice
        .recv_matching(T, |e| e.name() == "message" && body(e) == "poker tonight!")
        .await
        .expect("outgoing from bob is not in the rule");
    s.stop().await;
}

#[tokio::test]
async fn terminate_alerts_the_officer_and_ends_the_session() {
    let rules = rule(
        "leak",
        "keywords = [\"customer list\"]\nseverity = \"critical\"",
        "[\"capture\", \"terminate\", \"alert\"]",
    );
    let s = server(&rules, |_| {}).await;
    let mut carol = online(&s, "carol", "secret", "desk").await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice.send(&chat("bob@localhost", "hi bob")).await.unwrap();
    received(&mut bob).await.expect("context message");
    alice
        .send(&chat("bob@localhost", "here is the Customer List"))
        .await
        .unwrap();
    let end = loop {
        match alice.recv(T).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(stream_error(&end), Some("policy-violation"), "{end}");
    if let ClientError::StreamError { text, .. } = &end {
        assert!(
            text.as_deref().unwrap_or_default().contains("Rule leak"),
            "{text:?}"
        );
    }
    assert!(received(&mut bob).await.is_none(), "not delivered");
    let alert = from_policy(&mut carol).await;
    let text = body(&alert);
    assert!(
        text.starts_with("Compliance alert: rule leak (critical"),
        "{text}"
    );
    assert!(
        text.contains("alice@localhost") && text.contains("bob@localhost"),
        "{text}"
    );
    // The evidence: the message as received, the context, signed and chained.
    let list = evidence(&s, 1).await;
    let r = &list[0];
    assert_eq!(
        (r.rule_id.as_str(), r.username.as_str(), r.resource.as_str()),
        ("leak", "alice", "a")
    );
    assert_eq!(r.actions, "capture,terminate,alert");
    assert_eq!(r.remote_addr.as_deref(), Some("127.0.0.1"));
    let payload: serde_json::Value = serde_json::from_str(r.payload.as_deref().unwrap()).unwrap();
    assert!(
        payload["stanza"]
            .as_str()
            .unwrap()
            .contains("here is the Customer List")
    );
    assert!(
        payload["context"][0].as_str().unwrap().contains("hi bob"),
        "{payload}"
    );
    assert_eq!(payload["found"][0]["text"], "Customer List");
    assert_eq!(payload_intact(r), Some(true));
    let signed: Vec<SignedEvidence> = list.iter().map(SignedEvidence::from).collect();
    assert!(verify_links(&signed, &receipt_key(&s), None).ok());
    // The audit log has the alert.
    let audit = s
        .storage()
        .audit
        .list(&causerie_storage::AuditFilter {
            action_prefix: Some("compliance.alert".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].subject, "alice@localhost");
    s.stop().await;
}

#[tokio::test]
async fn escalation_warns_then_blocks_then_terminates() {
    let rules = rule(
        "gossip",
        "keywords = [\"rumour\"]\nescalate = [{ after = 2, within_secs = 60, actions = [\"block\"] }, { after = 3, within_secs = 60, actions = [\"terminate\", \"alert\"] }]",
        "[\"warn\"]",
    );
    let s = server(&rules, |_| {}).await;
    let mut carol = online(&s, "carol", "secret", "desk").await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice
        .send(&chat("bob@localhost", "a rumour"))
        .await
        .unwrap();
    from_policy(&mut alice).await;
    assert!(
        received(&mut bob).await.is_some(),
        "first time: warned, delivered"
    );
    alice
        .send(&chat("bob@localhost", "another rumour"))
        .await
        .unwrap();
    assert_eq!(refused(&mut alice).await.1.as_deref(), Some("gossip"));
    alice
        .send(&chat("bob@localhost", "rumour again"))
        .await
        .unwrap();
    let end = loop {
        match alice.recv(T).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(stream_error(&end), Some("policy-violation"));
    // The officer sees the counter that escalated it.
    let alert = body(&from_policy(&mut carol).await);
    assert!(alert.contains("it fired 3 times for this user"), "{alert}");
    s.stop().await;
}

#[tokio::test]
async fn rules_reload_when_the_file_changes_and_a_bad_file_changes_nothing() {
    let s = server(&rule("a", "keywords = [\"alpha\"]", "[\"block\"]"), |_| {}).await;
    let file = s.config.server.data_dir.join("rules.toml");
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice.send(&chat("bob@localhost", "alpha")).await.unwrap();
    assert_eq!(refused(&mut alice).await.1.as_deref(), Some("a"));

    write_rules(&file, &rule("b", "keywords = [\"beta\"]", "[\"block\"]"));
    wait_for(&mut alice, "beta", Some("b")).await;
    alice.send(&chat("bob@localhost", "alpha")).await.unwrap();
    assert!(received(&mut bob).await.is_some(), "rule a is gone");

    // An invalid file is refused whole: rule b stays in force.
    write_rules(
        &file,
        &format!(
            "{}{}",
            rule("c", "keywords = [\"gamma\"]", "[\"block\"]"),
            rule("d", "", "[\"explode\"]")
        ),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    alice.send(&chat("bob@localhost", "beta")).await.unwrap();
    assert_eq!(refused(&mut alice).await.1.as_deref(), Some("b"));
    alice.send(&chat("bob@localhost", "gamma")).await.unwrap();
    assert!(
        received(&mut bob).await.is_some(),
        "the refused file added nothing"
    );
    let audit = s
        .storage()
        .audit
        .list(&causerie_storage::AuditFilter {
            action_prefix: Some("compliance.rules.reload".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.outcome == "refused"
            && e.detail
                .contains("rule d, actions: unknown action `explode`")),
        "{audit:?}"
    );
    s.stop().await;
}

fn write_rules(file: &Path, text: &str) {
    // Through a rename, as `causeriectl rules` writes it.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Sends `text` until the rule `rule` refuses it (the reload is polled every second).
async fn wait_for(alice: &mut Client, text: &str, rule: Option<&str>) {
    for _ in 0..20 {
        alice.send(&chat("bob@localhost", text)).await.unwrap();
        if let Ok(e) = alice
            .recv_matching(SHORT, |e| e.attr("type") == Some("error"))
            .await
        {
            let got = e
                .get_child("error", NS_CLIENT)
                .and_then(|x| x.get_child("blocked", NS))
                .and_then(|b| b.attr("rule"));
            if got == rule {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("rule {rule:?} never applied to {text:?}");
}

#[tokio::test]
async fn a_bad_rules_file_keeps_the_server_from_starting() {
    let result = TestServer::start_with(|c| {
        std::fs::create_dir_all(&c.server.data_dir).unwrap();
        std::fs::write(
            c.server.data_dir.join("rules.toml"),
            rule("x", "patterns = ['(unclosed']", "[\"block\"]"),
        )
        .unwrap();
    })
    .await;
    let err = result.err().expect("refused").to_string();
    assert!(err.contains("rule x, patterns"), "{err}");
}

#[tokio::test]
async fn an_edited_evidence_record_is_detected() {
    let s = server(
        &rule("cap", "keywords = [\"invoice\"]", "[\"capture\"]"),
        |_| {},
    )
    .await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    for i in 0..3 {
        alice
            .send(&chat("bob@localhost", &format!("invoice {i}")))
            .await
            .unwrap();
        received(&mut bob).await.expect("capture alone delivers");
    }
    let list = evidence(&s, 3).await;
    let key = receipt_key(&s);
    let mut signed: Vec<SignedEvidence> = list.iter().map(SignedEvidence::from).collect();
    assert!(verify_links(&signed, &key, None).ok());
    signed[1].fields.peer = "mallory@localhost".into();
    assert_eq!(
        verify_links(&signed, &key, None).problems,
        [ChainProblem::Edited {
            position: 2,
            seq: 2
        }]
    );
    // A payload changed in place no longer matches the hash its record signed.
    let mut edited = list[0].clone();
    edited.payload = Some(edited.payload.unwrap().replace("invoice 0", "invoice 9"));
    assert_eq!(payload_intact(&edited), Some(false));
    s.stop().await;
}

#[tokio::test]
async fn users_report_with_xep_0377_or_a_chat_command() {
    let s = server("", |_| {}).await;
    let mut carol = online(&s, "carol", "secret", "desk").await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    bob.send(&chat("alice@localhost", "buy cheap watches"))
        .await
        .unwrap();
    alice
        .recv_matching(T, |e| {
            e.name() == "message" && body(e) == "buy cheap watches"
        })
        .await
        .unwrap();
    // XEP-0377: a report inside a block request; the block itself still happens.
    let block = Element::new("iq", NS_CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "blk")
        .with_child(
            Element::new("block", "urn:xmpp:blocking").with_child(
                Element::new("item", "urn:xmpp:blocking")
                    .with_attr("jid", "bob@localhost")
                    .with_child(
                        Element::new("report", "urn:xmpp:reporting:1")
                            .with_attr("reason", "urn:xmpp:reporting:spam")
                            .with_child(
                                Element::new("text", "urn:xmpp:reporting:1")
                                    .with_text("watches again"),
                            ),
                    ),
            ),
        );
    alice.send(&block).await.unwrap();
    let answer = alice
        .recv_matching(T, |e| e.attr("id") == Some("blk"))
        .await
        .unwrap();
    assert_eq!(answer.attr("type"), Some("result"));
    let alert = from_policy(&mut carol).await;
    assert_eq!(
        body(&alert),
        "Report: alice@localhost reported bob@localhost (spam): watches again"
    );
    // The chat command, from a client without XEP-0377.
    bob.send(&chat(
        "policy@localhost",
        "REPORT alice@localhost she blocked me",
    ))
    .await
    .unwrap();
    let reply = from_policy(&mut bob).await;
    assert_eq!(
        body(&reply),
        "Your report about alice@localhost was recorded for the security officers."
    );
    bob.send(&chat("policy@localhost", "report")).await.unwrap();
    assert!(body(&from_policy(&mut bob).await).starts_with("Write REPORT followed by"));
    let list = evidence(&s, 2).await;
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|r| r.direction == "report" && r.rule_id == "user-report")
    );
    assert_eq!(
        (list[0].username.as_str(), list[0].peer.as_str()),
        ("alice", "bob@localhost")
    );
    let payload: serde_json::Value =
        serde_json::from_str(list[0].payload.as_deref().unwrap()).unwrap();
    assert!(
        payload["context"][0]
            .as_str()
            .unwrap()
            .contains("buy cheap watches"),
        "{payload}"
    );
    assert_eq!(payload["reason"], "spam");
    assert_eq!(
        (list[1].username.as_str(), list[1].peer.as_str()),
        ("bob", "alice@localhost")
    );
    s.stop().await;
}

#[tokio::test]
async fn sealed_evidence_opens_only_with_the_officers_key() {
    use causerie_policy::compliance::seal::{OfficerKey, open};
    let officer = OfficerKey::generate().unwrap();
    let public = officer.public().to_string();
    let s = server(
        &rule("cap", "keywords = [\"invoice\"]", "[\"capture\"]"),
        move |c| c.compliance.seal_key = Some(public),
    )
    .await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    alice
        .send(&chat("bob@localhost", "invoice 42 attached"))
        .await
        .unwrap();
    received(&mut bob).await.expect("capture alone delivers");
    let list = evidence(&s, 1).await;
    let r = &list[0];
    assert!(r.sealed);
    let payload = r.payload.clone().expect("a payload");
    assert!(!payload.contains("invoice 42"), "{payload}");
    // The record signs the sealed text: the chain is checked without the officer's key.
    assert_eq!(payload_intact(r), Some(true));
    let signed: Vec<SignedEvidence> = list.iter().map(SignedEvidence::from).collect();
    assert!(verify_links(&signed, &receipt_key(&s), None).ok());
    let opened = String::from_utf8(open(&payload, &officer).expect("opens")).unwrap();
    assert!(opened.contains("invoice 42 attached"), "{opened}");
    assert!(opened.contains("\"stanza\""), "{opened}");
    assert!(open(&payload, &OfficerKey::generate().unwrap()).is_err());
    s.stop().await;
}

#[tokio::test]
async fn a_seal_key_that_is_not_a_usable_key_keeps_the_server_from_starting() {
    // The right shape, but the all-zero point, of low order: every box would be readable.
    let zero = format!("causerie-officer-v1:{}=", "A".repeat(43));
    let result = TestServer::start_with(move |c| c.compliance.seal_key = Some(zero)).await;
    let err = result.err().expect("refused").to_string();
    assert!(
        err.contains("compliance.seal_key") && err.contains("low-order"),
        "{err}"
    );
}

#[tokio::test]
async fn retention_purges_old_payloads_at_start_but_not_held_ones() {
    use causerie_policy::compliance::evidence::{
        EvidenceFields, new_row, next_link, payload_hash, sign,
    };
    let s = server("", |c| c.compliance.retention_days = 30).await;
    let key = causerie_policy::keys::load_or_create(&s.config.server.data_dir.join("policy.key"))
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let store = s.storage().evidence.clone();
    for age_days in [40, 35, 31, 1] {
        let last = store.last().await.unwrap();
        let (seq, prev_hash) = next_link(last.as_ref());
        let payload = format!("{{\"stanza\":\"<message>{age_days} days old</message>\"}}");
        let signed = sign(
            EvidenceFields {
                seq,
                created_at: now - age_days * 86_400,
                rule_id: "cap".into(),
                category: "c".into(),
                actions: "capture".into(),
                username: "alice".into(),
                domain: "localhost".into(),
                resource: "a".into(),
                peer: "bob@localhost".into(),
                direction: "outgoing".into(),
                remote_addr: None,
                client: None,
                sealed: false,
                payload_hash: payload_hash(&payload),
                prev_hash,
            },
            &key,
        );
        store
            .append(&new_row(&signed, payload, None))
            .await
            .unwrap();
    }
    assert!(store.set_legal_hold(2, true).await.unwrap());
    // The purge runs again at start.
    let s = s.restart().await.expect("restarts");
    let mut events = Vec::new();
    for _ in 0..50 {
        events = s
            .storage()
            .audit
            .list(&causerie_storage::AuditFilter {
                action_prefix: Some("compliance.evidence.purge".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if events.iter().any(|e| e.detail.starts_with("2 ")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events
            .iter()
            .any(|e| e.detail.starts_with("2 ") && e.actor == "compliance"),
        "{events:?}"
    );
    let list = s
        .storage()
        .evidence
        .list(&EvidenceFilter::default())
        .await
        .unwrap();
    let purged: Vec<bool> = list.iter().map(|r| r.payload.is_none()).collect();
    assert_eq!(
        purged,
        [true, false, true, false],
        "the held record is kept"
    );
    let signed: Vec<SignedEvidence> = list.iter().map(SignedEvidence::from).collect();
    assert!(verify_links(&signed, &receipt_key(&s), None).ok());
    s.stop().await;
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The messages from alice that reach `c` within `wait`.
async fn all_from_alice(c: &mut Client, wait: Duration) -> Vec<Element> {
    let mut got = Vec::new();
    while let Ok(m) = c
        .recv_matching(wait, |e| {
            e.name() == "message" && e.attr("from").is_some_and(|f| f.starts_with("alice@"))
        })
        .await
    {
        got.push(m);
    }
    got
}

/// Sends a message that the `hold` rule quarantines, checks what alice is told, and returns
/// its record, pending review with the message held.
async fn quarantined(s: &TestServer, alice: &mut Client, text: &str, want: usize) -> i64 {
    alice.send(&chat("bob@localhost", text)).await.unwrap();
    let notice = body(&from_policy(alice).await);
    assert!(
        notice.contains("is held for review") && notice.contains("Rule hold"),
        "{notice}"
    );
    let list = evidence(s, want).await;
    let r = list.last().unwrap();
    assert_eq!(r.review.as_deref(), Some("pending"));
    assert!(
        r.held.as_deref().is_some_and(|h| h.contains(text)),
        "{:?}",
        r.held
    );
    r.seq
}

/// The record once the server has carried out its decision.
async fn handled(s: &TestServer, seq: i64) -> causerie_storage::StoredEvidence {
    for _ in 0..100 {
        let r = s.storage().evidence.get(seq).await.unwrap().unwrap();
        if r.handled_at.is_some() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the decision on record {seq} was not carried out");
}

fn delay_stamp(m: &Element) -> Option<String> {
    m.get_child("delay", "urn:xmpp:delay")
        .and_then(|d| d.attr("stamp"))
        .map(str::to_owned)
}

#[tokio::test]
async fn a_released_message_is_delivered_once_by_the_running_server() {
    let rules = rule("hold", "keywords = [\"merger\"]", "[\"quarantine\"]");
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    let seq = quarantined(&s, &mut alice, "about the merger", 1).await;
    assert!(received(&mut bob).await.is_none(), "held, not delivered");
    // Nothing happens until someone decides.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(received(&mut bob).await.is_none());

    s.storage()
        .evidence
        .set_review(seq, "released", "officer", unix_now(), Some("fine"))
        .await
        .unwrap();
    let got = all_from_alice(&mut bob, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "delivered once: {got:?}");
    assert_eq!(body(&got[0]), "about the merger");
    assert_eq!(got[0].attr("from"), Some("alice@localhost/a"));
    assert_eq!(got[0].attr("id"), Some("m-about the merger"));
    assert!(delay_stamp(&got[0]).is_some(), "{}", got[0].to_xml());
    let told = body(&from_policy(&mut alice).await);
    assert!(
        told.contains("was released by a reviewer and delivered"),
        "{told}"
    );
    let r = handled(&s, seq).await;
    assert_eq!(r.held, None, "the held copy is gone once delivered");
    assert_eq!(r.review_reason.as_deref(), Some("fine"));
    let audit = s
        .storage()
        .audit
        .list(&causerie_storage::AuditFilter {
            action_prefix: Some("compliance.review.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].action.as_str(), audit[0].outcome.as_str()),
        ("compliance.review.deliver", "ok")
    );

    // A restart does not deliver it again.
    drop(bob);
    let s = s.restart().await.expect("restarts");
    let mut bob = online(&s, "bob", "secret", "b").await;
    let again = all_from_alice(&mut bob, Duration::from_secs(3)).await;
    assert!(
        again.is_empty(),
        "delivered again after a restart: {again:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_release_decided_while_the_server_does_not_poll_is_delivered_at_the_next_start() {
    let rules = rule("hold", "keywords = [\"merger\"]", "[\"quarantine\"]");
    // The server looks for decisions at start, then only an hour later.
    let s = server(&rules, |c| c.compliance.reload_secs = 3600).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let seq = quarantined(&s, &mut alice, "the merger is on", 1).await;
    s.storage()
        .evidence
        .set_review(seq, "released", "causeriectl:officer", unix_now(), None)
        .await
        .unwrap();
    drop(alice);
    let s = s.restart().await.expect("restarts");
    let r = handled(&s, seq).await;
    assert_eq!(r.held, None);
    // Bob was offline: the message waits for him, once.
    let mut bob = online(&s, "bob", "secret", "b").await;
    let got = all_from_alice(&mut bob, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(body(&got[0]), "the merger is on");
    drop(bob);
    let s = s.restart().await.expect("restarts again");
    let mut bob = online(&s, "bob", "secret", "b").await;
    let again = all_from_alice(&mut bob, Duration::from_secs(2)).await;
    assert!(again.is_empty(), "delivered twice: {again:?}");
    // Alice hears of the release when she comes back.
    let mut alice = online(&s, "alice", "secret", "a").await;
    let told = body(&from_policy(&mut alice).await);
    assert!(told.contains("released by a reviewer"), "{told}");
    s.stop().await;
}

#[tokio::test]
async fn a_rejected_message_is_not_delivered_and_the_sender_is_told() {
    let rules = rule("hold", "keywords = [\"merger\"]", "[\"quarantine\"]");
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut bob = online(&s, "bob", "secret", "b").await;
    let seq = quarantined(&s, &mut alice, "merger numbers", 1).await;
    s.storage()
        .evidence
        .set_review(seq, "rejected", "officer", unix_now(), Some("insider"))
        .await
        .unwrap();
    let told = body(&from_policy(&mut alice).await);
    assert!(
        told.contains("to bob@localhost")
            && told.contains("was not delivered: a reviewer rejected it")
            && told.contains("hold"),
        "{told}"
    );
    assert!(
        !told.contains("insider"),
        "the reviewer's reason stays with the officers: {told}"
    );
    let r = handled(&s, seq).await;
    assert_eq!(r.held, None);
    assert_eq!(r.review.as_deref(), Some("rejected"));
    let got = all_from_alice(&mut bob, Duration::from_secs(2)).await;
    assert!(got.is_empty(), "a rejected message reached bob: {got:?}");
    let audit = s
        .storage()
        .audit
        .list(&causerie_storage::AuditFilter {
            action_prefix: Some("compliance.review.notify".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].subject, seq.to_string());
    s.stop().await;
}

#[tokio::test]
async fn a_message_two_rules_quarantine_is_held_once() {
    let rules = [
        rule("hold", "keywords = [\"merger\"]", "[\"quarantine\"]"),
        rule(
            "hold2",
            "keywords = [\"secret\"]",
            "[\"quarantine\", \"alert\"]",
        ),
    ]
    .concat();
    let s = server(&rules, |_| {}).await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    alice
        .send(&chat("bob@localhost", "secret merger"))
        .await
        .unwrap();
    from_policy(&mut alice).await;
    let list = evidence(&s, 2).await;
    let pending: Vec<i64> = list
        .iter()
        .filter(|r| r.review.is_some())
        .map(|r| r.seq)
        .collect();
    assert_eq!(pending.len(), 1, "{list:?}");
    assert_eq!(list.iter().filter(|r| r.held.is_some()).count(), 1);
    s.stop().await;
}

async fn wait_locked(s: &TestServer, user: &str) -> causerie_storage::AccountLock {
    for _ in 0..100 {
        if let Some(l) = s
            .storage()
            .users
            .user_lock(user, "localhost")
            .await
            .unwrap()
        {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{user} was not locked");
}

async fn login_refusal(s: &TestServer, user: &str, password: &str) -> Option<(String, String)> {
    match Client::login(&s.client(user, password)).await {
        Ok(c) => {
            let _ = c.close().await;
            None
        }
        Err(ClientError::SaslFailure { condition, text }) => {
            Some((condition, text.unwrap_or_default()))
        }
        Err(e) => panic!("login of {user}: {e}"),
    }
}

#[tokio::test]
async fn terminate_with_a_lock_refuses_logins_until_unlocked_or_expired() {
    let rules = rule(
        "leak",
        "keywords = [\"customer list\"]\nlock_minutes = 30",
        "[\"terminate\", \"alert\"]",
    );
    let s = server(&rules, |_| {}).await;
    let mut carol = online(&s, "carol", "secret", "desk").await;
    let mut alice = online(&s, "alice", "secret", "a").await;
    let mut alice_phone = online(&s, "alice", "secret", "phone").await;
    let before = unix_now();
    alice
        .send(&chat("bob@localhost", "the customer list"))
        .await
        .unwrap();
    let end = loop {
        match alice.recv(T).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(stream_error(&end), Some("policy-violation"), "{end}");
    if let ClientError::StreamError { text, .. } = &end {
        let text = text.as_deref().unwrap_or_default();
        assert!(
            text.contains("Rule leak") && text.contains("locked for 30 minutes"),
            "{text}"
        );
    }
    // Her other session ends too.
    let other = loop {
        match alice_phone.recv(T).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(stream_error(&other), Some("policy-violation"), "{other}");
    let lock = wait_locked(&s, "alice").await;
    assert_eq!(lock.locked_by, "compliance");
    let until = lock.until.expect("a timed lock");
    assert!(
        (before + 1800..=unix_now() + 1800).contains(&until),
        "{lock:?}"
    );
    assert!(lock.reason.contains("leak"), "{lock:?}");
    // The officer's alert and the audit log say so.
    let alert = body(&from_policy(&mut carol).await);
    assert!(alert.contains("locked for 30 minutes"), "{alert}");
    // The record is written after the sessions are closed, so it may come after the alert.
    let mut audit = Vec::new();
    for _ in 0..100 {
        audit = s
            .storage()
            .audit
            .list(&causerie_storage::AuditFilter {
                action_prefix: Some("compliance.lock".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if !audit.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].subject, "alice@localhost");
    assert!(audit[0].detail.contains("30 minutes"), "{audit:?}");

    // The next login is refused with <account-disabled/>, but only with the right password.
    let (condition, text) = login_refusal(&s, "alice", "secret")
        .await
        .expect("refused while locked");
    assert_eq!(condition, "account-disabled");
    assert!(text.contains("locked for 30 more minutes"), "{text}");
    assert_eq!(
        login_refusal(&s, "alice", "wrong").await.map(|r| r.0),
        Some("not-authorized".to_owned())
    );
    assert_eq!(login_refusal(&s, "bob", "secret").await, None);

    // Unlocked: she logs in again.
    assert!(
        s.storage()
            .users
            .unlock_user("alice", "localhost")
            .await
            .unwrap()
    );
    assert_eq!(login_refusal(&s, "alice", "secret").await, None);

    // A lock that ends in a moment: refused, then accepted once it has ended.
    let now = unix_now();
    s.storage()
        .users
        .lock_user(
            "alice",
            "localhost",
            &causerie_storage::AccountLock {
                locked_at: now,
                until: Some(now + 2),
                reason: "short".into(),
                locked_by: "compliance".into(),
            },
            causerie_storage::LockChange::Replace,
        )
        .await
        .unwrap();
    assert_eq!(
        login_refusal(&s, "alice", "secret").await.map(|r| r.0),
        Some("account-disabled".to_owned())
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(login_refusal(&s, "alice", "secret").await, None);
    s.stop().await;
}
