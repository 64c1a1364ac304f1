//! XEP-0227 files written by real servers on this project's machines, imported as they are:
//!
//! - `fixtures/xep0227/prosody-0.12.3/`: Prosody 0.12.3 (Debian's package), data put in through
//!   its client protocol by `tests/interop/slixmpp/portable_seed.py`, then exported with its
//!   own migrator (`prosody-migrator`, internal store to `xep0227`): one file per user, SCRAM-SHA-1
//!   keys, the pending request as an unqualified `<presence/>` inheriting the PIE namespace.
//! - `fixtures/xep0227/ejabberd-23.01/`: ejabberd 23.01 (Debian's package) with
//!   `auth_password_format: scram`, filled with `ejabberdctl register`, `add_rosteritem`,
//!   `send_message` and `set_vcard`, then `ejabberdctl export_piefxis`: a main file including a
//!   host file (XInclude), salt and keys base64-encoded twice, an offline message.
//!
//! The passwords are the ones those scripts set.

use std::path::{Path, PathBuf};

use causerie_sasl::{Hash, ScramCredentials};
use causerie_server::portable::{self, ImportOptions, ImportProgress, ReadOptions, read_files};
use causerie_storage::{ExistingAccounts, Storage, Subscription};

fn fixture(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xep0227")
        .join(dir)
}

async fn import_into_fresh(paths: &[PathBuf]) -> Storage {
    let plan = read_files(paths, &ReadOptions::new(vec!["pie.test".to_owned()])).expect("read");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let storage = Storage::memory();
    let options = ImportOptions {
        existing: ExistingAccounts::Refuse,
        iterations: 4096,
        dry_run: false,
    };
    let report = portable::import(&storage, plan, &options, &|_: ImportProgress| {})
        .await
        .expect("import");
    assert_eq!(
        report.derived, 0,
        "these servers export keys, not passwords"
    );
    assert!(report.without_credentials.is_empty());
    storage
}

/// Whether `password` matches the SHA-1 keys stored for `user` (as PLAIN checks it; the SCRAM
/// exchange itself is checked by the unit tests and the interop suite).
async fn password_matches(storage: &Storage, user: &str, password: &str) -> bool {
    let c = storage
        .users
        .credential(user, "pie.test", "SHA-1")
        .await
        .expect("lookup")
        .expect("SHA-1 credentials");
    ScramCredentials {
        hash: Hash::Sha1,
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    }
    .verify_password(password)
}

#[tokio::test]
async fn prosody_migrator_export_imports_with_logins_roster_vcard_and_bookmarks() {
    let dir = fixture("prosody-0.12.3");
    let paths: Vec<PathBuf> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| dir.join(format!("{u}@pie.test.xml")))
        .collect();
    let storage = import_into_fresh(&paths).await;
    for user in ["alice", "bob", "carol"] {
        assert!(
            password_matches(&storage, user, &format!("{user}-Prosody-pw")).await,
            "{user}"
        );
        assert!(!password_matches(&storage, user, "wrong").await, "{user}");
    }
    let c = storage
        .users
        .credential("alice", "pie.test", "SHA-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.iterations, 10000);

    let (items, _) = storage.roster.roster("alice", "pie.test").await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].jid, "bob@pie.test");
    assert_eq!(items[0].subscription, Subscription::Both);
    assert_eq!(items[0].name.as_deref(), Some("Bob (from Prosody) & co"));
    assert_eq!(items[0].groups, ["Wörk", "Friends"]);
    assert_eq!(items[1].jid, "carol@pie.test");
    assert!(items[1].pending_out);
    let pending = storage
        .roster
        .pending_in("carol", "pie.test")
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].contact, "alice@pie.test");

    let vcard = storage
        .account_data
        .get("alice", "pie.test", "vcard")
        .await
        .unwrap()
        .expect("vCard");
    assert!(
        vcard.contains("<FN>Alice Liddell &lt;portable&gt;</FN>"),
        "{vcard}"
    );
    let bookmarks = storage
        .account_data
        .get("alice", "pie.test", "private:storage:bookmarks")
        .await
        .unwrap()
        .expect("bookmarks");
    assert!(
        bookmarks.contains("tea-party@conference.example.org"),
        "{bookmarks}"
    );
}

#[tokio::test]
async fn ejabberd_export_piefxis_imports_through_xinclude() {
    let main = fixture("ejabberd-23.01").join("20261127-062404.xml");
    let storage = import_into_fresh(&[main]).await;
    assert!(password_matches(&storage, "dave", "dave-ejabberd-pw").await);
    assert!(password_matches(&storage, "erin", "erin-ejabberd-pw").await);
    assert!(!password_matches(&storage, "dave", "erin-ejabberd-pw").await);

    let (items, _) = storage.roster.roster("dave", "pie.test").await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0].jid.as_str(),
            items[0].subscription,
            items[0].name.as_deref()
        ),
        ("erin@pie.test", Subscription::Both, Some("Erin E."))
    );
    assert_eq!(items[0].groups, ["Colleagues"]);

    let offline = storage.offline.list("dave", "pie.test", 10).await.unwrap();
    assert_eq!(offline.len(), 1);
    assert!(
        offline[0]
            .stanza
            .contains("<body>Hello while you were away</body>")
    );
    // The stamp ejabberd wrote (2026-11-27T06:24:02.213486Z), to the second.
    assert_eq!(offline[0].stored_at, 1_795_760_642);
    let vcard = storage
        .account_data
        .get("dave", "pie.test", "vcard")
        .await
        .unwrap()
        .expect("vCard");
    assert!(vcard.contains("<FN>Dave Ejabberd</FN>"), "{vcard}");
}
