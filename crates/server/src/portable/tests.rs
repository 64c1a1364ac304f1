use std::sync::Mutex;

use causerie_sasl::client::{ClientChannelBinding, ScramClient};
use causerie_sasl::{
    ChannelBindings, Hash, Mechanism, ScramCredentials, ServerContext, ServerSession, Step,
};
use causerie_storage::{ExistingAccounts, PendingSubscription, RosterItem, Storage, Subscription};

use super::*;

const DOMAIN: &str = "example.com";
const ITERATIONS: u32 = 4096;

fn options() -> ReadOptions {
    let mut o = ReadOptions::new(vec![DOMAIN.to_owned(), "example.net".to_owned()]);
    o.reserved_localpart = Some("policy".to_owned());
    o.now = 1_700_000_000;
    o
}

fn import_options(existing: ExistingAccounts) -> ImportOptions {
    ImportOptions {
        existing,
        iterations: ITERATIONS,
        dry_run: false,
    }
}

fn no_progress(_: ImportProgress) {}

/// A full SCRAM exchange (RFC 5802) between the client library and the server mechanism, with
/// the credentials the store holds: whether `password` logs `user` in with `hash`.
async fn scram_login(storage: &Storage, user: &str, password: &str, hash: Hash) -> bool {
    let stored = storage
        .users
        .credential(user, DOMAIN, hash.name())
        .await
        .expect("credential lookup");
    let creds = stored.map(|c| ScramCredentials {
        hash,
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    });
    let mechanism = Mechanism::parse(&format!("SCRAM-{}", hash.name())).expect("mechanism");
    let ctx = ServerContext {
        offered: vec![mechanism],
        channel_bindings: ChannelBindings::default(),
        offered_cb_types: Vec::new(),
        secret: [9; 32],
    };
    let mut server = ServerSession::new(mechanism, ctx);
    let mut client = ScramClient::new(hash, user, password, ClientChannelBinding::None);
    let mut step = server.step(&client.client_first());
    loop {
        match step {
            Ok(Step::NeedCredentials { .. }) => step = server.provide_credentials(creds.clone()),
            Ok(Step::Challenge(data)) => {
                let Ok(answer) = client.handle_server_first(&data) else {
                    return false;
                };
                step = server.step(&answer);
            }
            Ok(Step::Success {
                additional_data, ..
            }) => {
                return client
                    .handle_server_final(&additional_data.unwrap_or_default())
                    .is_ok();
            }
            Err(_) => return false,
        }
    }
}

fn item(jid: &str, subscription: Subscription, groups: &[&str]) -> RosterItem {
    RosterItem {
        jid: jid.to_owned(),
        name: Some(format!("{jid} <&> \"é\"")),
        subscription,
        pending_out: subscription == Subscription::None,
        pending_in: false,
        approved: subscription == Subscription::To,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// A server store with two accounts and something in every exported part.
async fn populated() -> Storage {
    let storage = Storage::memory();
    let juliet = causerie_jid::BareJid::parse("juliet@example.com").expect("jid");
    let romeo = causerie_jid::BareJid::parse("romeo@example.com").expect("jid");
    crate::users::add(
        storage.users.as_ref(),
        &juliet,
        "Juliet's p@ss ü",
        ITERATIONS,
    )
    .await
    .expect("add juliet");
    crate::users::add(storage.users.as_ref(), &romeo, "romeo-secret", ITERATIONS)
        .await
        .expect("add romeo");
    for it in [
        item(
            "romeo@example.com",
            Subscription::Both,
            &["Lovers", "Verona"],
        ),
        item("nurse@example.net", Subscription::To, &[]),
        item("tybalt@example.org", Subscription::None, &["Foes"]),
    ] {
        storage
            .roster
            .put_item("juliet", DOMAIN, &it)
            .await
            .expect("put item");
    }
    storage
        .roster
        .add_pending_in(
            "juliet",
            DOMAIN,
            &PendingSubscription {
                contact: "paris@example.org".into(),
                stanza: "<presence from='paris@example.org' to='juliet@example.com' type='subscribe'><status>Please</status></presence>".into(),
            },
        )
        .await
        .expect("pending");
    for (body, at) in [
        ("Wherefore art thou? <&>", 1_600_000_000),
        ("Second", 1_600_000_100),
    ] {
        let stanza = Element::new("message", NS_CLIENT)
            .with_attr("from", "romeo@example.com/balcony")
            .with_attr("to", "juliet@example.com")
            .with_attr("type", "chat")
            .with_child(Element::new("body", NS_CLIENT).with_text(body))
            .with_child(
                Element::new("delay", NS_DELAY)
                    .with_attr("from", DOMAIN)
                    .with_attr("stamp", causerie_policy::rfc3339::format(at))
                    .with_text("Offline Storage"),
            );
        storage
            .offline
            .push("juliet", DOMAIN, &stanza.to_xml(), at, 100)
            .await
            .expect("offline");
    }
    storage
        .account_data
        .put(
            "juliet",
            DOMAIN,
            "vcard",
            "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>Jules</NICKNAME></vCard>",
        )
        .await
        .expect("vcard");
    storage
        .account_data
        .put(
            "juliet",
            DOMAIN,
            "private:storage:bookmarks",
            "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='balcony@muc.example.com' autojoin='true'/></storage></query>",
        )
        .await
        .expect("private");
    storage
        .account_data
        .put("juliet", DOMAIN, "last", "1700000000 gone")
        .await
        .expect("last");
    storage
}

use causerie_xml::Element;

async fn export_to_string(storage: &Storage, domains: &[&str]) -> (String, ExportReport) {
    let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
    let mut out = Vec::new();
    let report = export(storage, &domains, &mut out, &|_| {})
        .await
        .expect("export");
    (String::from_utf8(out).expect("UTF-8"), report)
}

#[tokio::test]
async fn round_trip_keeps_logins_rosters_offline_and_private_data() {
    let source = populated().await;
    let (xml, report) = export_to_string(&source, &[DOMAIN]).await;
    assert_eq!(report.users, 2);
    assert_eq!(report.roster_items, 3);
    assert_eq!(report.offline_messages, 2);
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert!(
        !xml.contains("password"),
        "an export never carries a password:\n{xml}"
    );
    assert!(
        xml.contains("<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>"),
        "{xml}"
    );

    let plan = read_document("export.xml", xml.as_bytes(), &options()).expect("read back");
    assert_eq!(plan.accounts.len(), 2);
    assert!(plan.ignored.is_empty(), "{:?}", plan.ignored);
    assert!(plan.without_credentials().is_empty());
    let target = Storage::memory();
    let progress = Mutex::new(Vec::new());
    let report = import(
        &target,
        plan,
        &import_options(ExistingAccounts::Refuse),
        &|p| progress.lock().unwrap().push(p),
    )
    .await
    .expect("import");
    assert_eq!((report.created, report.replaced, report.derived), (2, 0, 0));
    assert_eq!(
        progress.lock().unwrap().last(),
        Some(&ImportProgress::Writing { done: 2, total: 2 })
    );

    for hash in Hash::ALL {
        assert!(
            scram_login(&target, "juliet", "Juliet's p@ss ü", hash).await,
            "{hash:?}"
        );
        assert!(
            scram_login(&target, "romeo", "romeo-secret", hash).await,
            "{hash:?}"
        );
        assert!(
            !scram_login(&target, "juliet", "romeo-secret", hash).await,
            "{hash:?}"
        );
    }
    for user in ["juliet", "romeo"] {
        let before = source
            .transfer
            .export_account(user, DOMAIN)
            .await
            .unwrap()
            .unwrap();
        let after = target
            .transfer
            .export_account(user, DOMAIN)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.credentials, before.credentials, "{user}: credentials");
        assert_eq!(after.roster, before.roster, "{user}: roster");
        assert_eq!(after.offline, before.offline, "{user}: offline messages");
        let data: Vec<_> = before
            .data
            .iter()
            .filter(|(k, _)| k != "last")
            .cloned()
            .collect();
        assert_eq!(after.data, data, "{user}: documents");
    }
    let pending = target.roster.pending_in("juliet", DOMAIN).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].contact, "paris@example.org");
    let stanza = Element::parse(pending[0].stanza.as_bytes(), NS_CLIENT).expect("stored request");
    assert_eq!(stanza.attr("type"), Some("subscribe"));
    assert_eq!(stanza.attr("from"), Some("paris@example.org"));
    assert_eq!(
        stanza.get_child("status", NS_CLIENT).map(|s| s.text()),
        Some("Please".to_owned())
    );

    // The second export of the imported server is the same document.
    let (again, _) = export_to_string(&target, &[DOMAIN]).await;
    assert_eq!(again, xml);
}

/// SCRAM-SHA-1 keys for `password`, as Prosody would write them (its salt, its count).
fn prosody_keys(password: &str) -> ScramCredentials {
    ScramCredentials::derive_with_salt(Hash::Sha1, password, b"0123456789abcdef", 10000)
        .expect("derive")
}

fn prosody_style(user: &str, keys: &ScramCredentials) -> String {
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='{user}'>\
         <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
         <server-key>{}</server-key><stored-key>{}</stored-key><iter-count>10000</iter-count>\
         <salt>{}</salt></scram-credentials>\
         <query xmlns='jabber:iq:roster' version='3'><item jid='bob@example.net' subscription='from' ask='subscribe'>\
         <group>Work</group></item><item subscription='none' jid='carol@example.org'/></query>\
         <presence xmlns='jabber:client' from='carol@example.org' type='subscribe'/>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'/>\
         </user></host></server-data>",
        B64.encode(&keys.server_key),
        B64.encode(&keys.stored_key),
        B64.encode(&keys.salt),
    )
}

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

#[tokio::test]
async fn scram_keys_are_imported_as_they_are() {
    let keys = prosody_keys("alice-pw");
    let xml = prosody_style("Alice", &keys);
    let plan = read_document("alice@example.com.xml", xml.as_bytes(), &options()).expect("read");
    assert_eq!(
        plan.ignored
            .get("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>"),
        Some(&1)
    );
    let storage = Storage::memory();
    let report = import(
        &storage,
        plan,
        &import_options(ExistingAccounts::Refuse),
        &no_progress,
    )
    .await
    .expect("import");
    assert_eq!((report.created, report.derived), (1, 0));
    // The name is prepared (RFC 7622 §3.3.1): the account is alice.
    let stored = storage
        .users
        .credential("alice", DOMAIN, "SHA-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.iterations, 10000);
    assert_eq!(stored.stored_key, keys.stored_key);
    assert!(scram_login(&storage, "alice", "alice-pw", Hash::Sha1).await);
    assert!(!scram_login(&storage, "alice", "alice-PW", Hash::Sha1).await);
    // Only SHA-1 keys came: the other mechanisms have nothing to check against.
    assert!(!scram_login(&storage, "alice", "alice-pw", Hash::Sha256).await);
    let (items, version) = storage.roster.roster("alice", DOMAIN).await.unwrap();
    assert!(version > 0);
    assert_eq!(items.len(), 2);
    assert_eq!(
        (
            items[0].jid.as_str(),
            items[0].subscription,
            items[0].pending_out,
            items[0].groups.clone()
        ),
        (
            "bob@example.net",
            Subscription::From,
            true,
            vec!["Work".to_owned()]
        )
    );
    assert_eq!(
        (
            items[1].jid.as_str(),
            items[1].subscription,
            items[1].pending_in
        ),
        ("carol@example.org", Subscription::None, true)
    );
    let pending = storage.roster.pending_in("alice", DOMAIN).await.unwrap();
    assert_eq!(pending.len(), 1);
}

#[tokio::test]
async fn plaintext_passwords_become_keys_and_are_not_kept() {
    let xml = "<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'>\
               <host jid='example.com'>\
               <user name='plain' password='pl4in-text'/>\
               <user name='both' password='both-pw'>\
                 <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
                   <iter-count>4096</iter-count><salt>c2FsdA==</salt>\
                   <server-key>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</server-key>\
                   <stored-key>AAAAAAAAAAAAAAAAAAAAAAAAAAA=</stored-key>\
                 </scram-credentials>\
               </user>\
               <user name='nothing'/>\
               <user name='weird'>\
                 <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-224'/>\
               </user>\
               </host></server-data>";
    let plan = read_document("old.xml", xml.as_bytes(), &options()).expect("read");
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(
        plan.warnings[0].contains("SCRAM-SHA-224"),
        "{:?}",
        plan.warnings
    );
    let without: Vec<String> = plan.without_credentials().iter().map(|a| a.jid()).collect();
    assert_eq!(without, ["nothing@example.com", "weird@example.com"]);
    assert!(
        !format!("{plan:?}").contains("pl4in-text"),
        "a password in a debug dump"
    );
    let storage = Storage::memory();
    let report = import(
        &storage,
        plan,
        &import_options(ExistingAccounts::Refuse),
        &no_progress,
    )
    .await
    .expect("import");
    assert_eq!((report.created, report.derived), (4, 2));
    assert_eq!(report.without_credentials.len(), 2);
    assert_eq!(report.without_credentials[0].1.line, 1);
    for hash in Hash::ALL {
        assert!(
            scram_login(&storage, "plain", "pl4in-text", hash).await,
            "{hash:?}"
        );
        assert!(!scram_login(&storage, "nothing", "", hash).await);
    }
    // The file's SHA-1 keys win over the password; the other hashes come from the password.
    assert!(!scram_login(&storage, "both", "both-pw", Hash::Sha1).await);
    assert!(scram_login(&storage, "both", "both-pw", Hash::Sha256).await);
    let record = storage
        .transfer
        .export_account("plain", DOMAIN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.credentials.len(), 3);
    for c in &record.credentials {
        assert!(c.iterations >= ITERATIONS);
        for blob in [&c.salt, &c.stored_key, &c.server_key] {
            assert!(!blob.windows(10).any(|w| w == b"pl4in-text"));
        }
    }
    assert!(storage.users.user_exists("nothing", DOMAIN).await.unwrap());
}

fn refused(xml: &str) -> Vec<String> {
    match read_document("bad.xml", xml.as_bytes(), &options()) {
        Err(PortableError::Invalid(problems)) => problems.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn malformed_files_are_refused_with_line_and_reason() {
    let bad_xml = "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='example.com'>\n<user name='a'>\n</host>\n</server-data>";
    let p = refused(bad_xml);
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("bad.xml:4: not well-formed XML"), "{p:?}");

    let unknown_host = "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='elsewhere.example'>\n<user name='a'/></host></server-data>";
    let p = refused(unknown_host);
    assert!(
        p[0].starts_with("bad.xml:2: unknown host 'elsewhere.example'"),
        "{p:?}"
    );

    let duplicate = "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'>\n<user name='a'/>\n<user name='b'/>\n<user name='A'/>\n</host></server-data>";
    let p = refused(duplicate);
    assert_eq!(
        p,
        ["bad.xml:4: duplicate user a@example.com (also at bad.xml:2)"]
    );

    let bad_base64 = "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='a'>\n\
        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\n\
        <iter-count>4096</iter-count>\n<salt>c2FsdA==</salt>\n\
        <server-key>not*base64</server-key>\n\
        <stored-key>AAAA</stored-key>\n\
        </scram-credentials></user></host></server-data>";
    let p = refused(bad_base64);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("bad.xml:5: server-key is not valid base64"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("bad.xml:6: stored-key is 3 bytes long, but a SCRAM-SHA-1 key has 20"),
        "{p:?}"
    );

    let several = "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'>\n\
        <user name='policy'/>\n\
        <user name='x'><query xmlns='jabber:iq:roster'>\n<item jid='a@b/c'/>\n<item jid='d@e' subscription='remove'/>\n<item jid='f@g' ask='unsubscribe'/></query>\n\
        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>0</iter-count></scram-credentials>\n\
        <offline-messages><message xmlns='jabber:client'><delay xmlns='urn:xmpp:delay' stamp='yesterday'/></message></offline-messages></user>\n\
        <user/>\n\
        </host><host jid='bad@host@x'/></server-data>";
    let p = refused(several);
    let expected = [
        "bad.xml:2: policy@example.com is the usage-policy address",
        "bad.xml:4: roster item jid 'a@b/c' is not a bare JID",
        "bad.xml:5: roster item subscription 'remove'",
        "bad.xml:6: roster item ask 'unsubscribe'",
        "bad.xml:7: iter-count '0' is not a positive integer",
        "bad.xml:7: SCRAM-SHA-256 credentials without salt, server-key, stored-key",
        "bad.xml:8: delay stamp 'yesterday' is not a date-time",
        "bad.xml:9: <user/> without 'name'",
        "bad.xml:10: host jid 'bad@host@x' is not a JID",
    ];
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expected) {
        assert!(
            got.starts_with(want),
            "{got:?} does not start with {want:?}"
        );
    }

    let not_pie = "<roster xmlns='jabber:iq:roster'/>";
    assert!(refused(not_pie)[0].contains("not XEP-0227's <server-data"));
    let include_in_memory = "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='h.xml'/></server-data>";
    assert!(refused(include_in_memory)[0].contains("XInclude is only supported in files"));
}

#[tokio::test]
async fn a_refused_file_imports_nothing() {
    // The bad user comes last: the good ones before it must not be written either.
    let xml = "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'>\
               <user name='good' password='pw-one'/><user name='fine' password='pw-two'/>\
               <user name='bad'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
               <iter-count>1</iter-count><salt>%%%</salt></scram-credentials></user>\
               </host></server-data>";
    let storage = Storage::memory();
    assert!(read_document("bad.xml", xml.as_bytes(), &options()).is_err());
    assert_eq!(storage.users.count_users(None).await.unwrap(), 0);
}

#[tokio::test]
async fn existing_accounts_are_refused_skipped_or_replaced() {
    let storage = populated().await;
    let xml = "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'>\n\
               <user name='juliet' password='new-pw'><vCard xmlns='vcard-temp'><FN>J.</FN></vCard></user>\n\
               <user name='mercutio' password='merc-pw'/>\n\
               </host></server-data>";
    let plan = || read_document("in.xml", xml.as_bytes(), &options()).expect("read");

    let err = import(
        &storage,
        plan(),
        &import_options(ExistingAccounts::Refuse),
        &no_progress,
    )
    .await
    .expect_err("juliet exists");
    let text = err.to_string();
    assert!(text.contains("juliet@example.com (in.xml:2)"), "{text}");
    assert!(
        text.contains("--skip-existing") && text.contains("--replace"),
        "{text}"
    );
    assert!(!storage.users.user_exists("mercutio", DOMAIN).await.unwrap());

    let dry = ImportOptions {
        dry_run: true,
        ..import_options(ExistingAccounts::Skip)
    };
    let report = import(&storage, plan(), &dry, &no_progress)
        .await
        .expect("dry run");
    assert_eq!((report.created, report.skipped.len()), (1, 1));
    assert!(!storage.users.user_exists("mercutio", DOMAIN).await.unwrap());

    let report = import(
        &storage,
        plan(),
        &import_options(ExistingAccounts::Skip),
        &no_progress,
    )
    .await
    .expect("skip");
    assert_eq!((report.created, report.replaced), (1, 0));
    assert_eq!(report.skipped, ["juliet@example.com"]);
    assert!(scram_login(&storage, "juliet", "Juliet's p@ss ü", Hash::Sha256).await);
    assert!(scram_login(&storage, "mercutio", "merc-pw", Hash::Sha256).await);

    let report = import(
        &storage,
        read_document(
            "in.xml",
            xml.replace("<user name='mercutio' password='merc-pw'/>", "")
                .as_bytes(),
            &options(),
        )
        .expect("read"),
        &import_options(ExistingAccounts::Replace),
        &no_progress,
    )
    .await
    .expect("replace");
    assert_eq!((report.created, report.replaced), (0, 1));
    assert!(scram_login(&storage, "juliet", "new-pw", Hash::Sha1).await);
    assert!(!scram_login(&storage, "juliet", "Juliet's p@ss ü", Hash::Sha1).await);
    // Replaced whole: the old roster and messages went with the old account.
    assert_eq!(
        storage.roster.count_items("juliet", DOMAIN).await.unwrap(),
        0
    );
    assert_eq!(storage.offline.count("juliet", DOMAIN).await.unwrap(), 0);
    let vcard = storage
        .account_data
        .get("juliet", DOMAIN, "vcard")
        .await
        .unwrap();
    assert_eq!(
        vcard.as_deref(),
        Some("<vCard xmlns='vcard-temp'><FN>J.</FN></vCard>")
    );
}

#[test]
fn xinclude_is_followed_relative_to_the_including_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let main = dir.path().join("main.xml");
    std::fs::create_dir(dir.path().join("example.com")).expect("mkdir");
    std::fs::write(
        &main,
        "<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0' \
         xmlns:xi='http://www.w3.org/2001/XInclude'>\n<xi:include href='example.com.xml'/>\n</server-data>\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("example.com.xml"),
        "<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='example.com'>\n\
         <xi:include href='example.com/juliet.xml'/>\n<xi:include href='example.com/romeo.xml'/>\n</host>",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("example.com/juliet.xml"),
        "<user xmlns='urn:xmpp:pie:0' name='juliet' password='j-pw'/>",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("example.com/romeo.xml"),
        "<user xmlns='urn:xmpp:pie:0' name='romeo' password='r-pw'>\n<query xmlns='jabber:iq:roster'>\n<item jid='juliet@example.com' subscription='bogus'/></query></user>",
    )
    .expect("write");
    let err = read_files(std::slice::from_ref(&main), &options()).expect_err("bad subscription");
    let text = err.to_string();
    assert!(
        text.contains("example.com/romeo.xml:3: roster item subscription 'bogus'"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("example.com/romeo.xml"),
        "<user xmlns='urn:xmpp:pie:0' name='romeo' password='r-pw'/>",
    )
    .expect("write");
    let plan = read_files(std::slice::from_ref(&main), &options()).expect("read");
    let jids: Vec<String> = plan.accounts.iter().map(PlannedAccount::jid).collect();
    assert_eq!(jids, ["juliet@example.com", "romeo@example.com"]);

    std::fs::remove_file(dir.path().join("example.com/romeo.xml")).expect("rm");
    let text = read_files(std::slice::from_ref(&main), &options())
        .expect_err("missing include")
        .to_string();
    assert!(text.contains("example.com.xml:3: cannot read"), "{text}");
}

#[tokio::test]
async fn several_files_merge_and_duplicates_across_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = prosody_keys("pw");
    let a = dir.path().join("alice@example.com.xml");
    let b = dir.path().join("bob@example.com.xml");
    std::fs::write(&a, prosody_style("alice", &keys)).expect("write");
    std::fs::write(&b, prosody_style("bob", &keys)).expect("write");
    let plan = read_files(&[a.clone(), b], &options()).expect("read");
    assert_eq!(plan.accounts.len(), 2);
    let text = read_files(&[a.clone(), a], &options())
        .expect_err("twice")
        .to_string();
    assert!(
        text.contains("duplicate user alice@example.com (also at"),
        "{text}"
    );
}
