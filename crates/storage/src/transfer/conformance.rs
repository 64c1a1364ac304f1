//! Conformance checks for [`TransferStore`](super::TransferStore): each function checks one
//! behaviour on its own fresh domain and returns what went wrong.

use super::{AccountRecord, ExistingAccounts, ImportOutcome, TransferredMessage};
use crate::conformance::{create_account, invalid_input, ok, unique_domain};
use crate::roster::{PendingSubscription, RosterItem, Subscription};
use crate::users::StoredCredential;
use crate::{Storage, StoreError};

fn credential(hash: &str, fill: u8) -> StoredCredential {
    StoredCredential {
        hash: hash.to_owned(),
        salt: vec![fill; 16],
        iterations: 4096,
        stored_key: vec![fill.wrapping_add(1); 32],
        server_key: vec![fill.wrapping_add(2); 32],
    }
}

fn item(jid: &str, subscription: Subscription, groups: &[&str]) -> RosterItem {
    RosterItem {
        jid: jid.to_owned(),
        name: Some(format!("Name of {jid}")),
        subscription,
        pending_out: subscription == Subscription::None,
        pending_in: subscription == Subscription::To,
        approved: subscription == Subscription::From,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// A record with something in every part.
fn full_record(username: &str, domain: &str) -> AccountRecord {
    AccountRecord {
        username: username.to_owned(),
        domain: domain.to_owned(),
        credentials: vec![credential("SHA-1", 1), credential("SHA-256", 7)],
        roster: vec![
            item(
                "benvolio@example.net",
                Subscription::Both,
                &["Friends", "Verona"],
            ),
            item("nurse@example.org", Subscription::To, &[]),
            item("tybalt@example.com", Subscription::None, &["Foes"]),
        ],
        pending_in: vec![
            PendingSubscription {
                contact: "paris@example.com".to_owned(),
                stanza: "<presence from='paris@example.com' type='subscribe'/>".to_owned(),
            },
            PendingSubscription {
                contact: "mercutio@example.net".to_owned(),
                stanza: "<presence from='mercutio@example.net' type='subscribe'/>".to_owned(),
            },
        ],
        offline: vec![
            TransferredMessage {
                stanza: "<message xmlns='jabber:client'><body>first é</body></message>".into(),
                stored_at: 1_700_000_000,
            },
            TransferredMessage {
                stanza: "<message xmlns='jabber:client'><body>second</body></message>".into(),
                stored_at: 1_600_000_000,
            },
        ],
        data: vec![
            (
                "private:storage:bookmarks".to_owned(),
                "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>"
                    .to_owned(),
            ),
            (
                "vcard".to_owned(),
                "<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>".to_owned(),
            ),
        ],
    }
}

async fn export(storage: &Storage, username: &str, domain: &str) -> Result<AccountRecord, String> {
    ok(
        "export_account",
        storage.transfer.export_account(username, domain).await,
    )?
    .ok_or_else(|| format!("export_account({username}@{domain}) found nothing"))
}

/// What an import wrote is read back whole by an export, and by every per-feature store: the
/// credentials, the roster with its groups in order and a version above 0, the requests and the
/// offline messages in order, the documents.
pub async fn import_then_export(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("transfer");
    let record = full_record("juliet", &domain);
    let outcome = ok(
        "import_accounts",
        storage
            .transfer
            .import_accounts(
                std::slice::from_ref(&record),
                ExistingAccounts::Refuse,
                None,
            )
            .await,
    )?;
    ensure!(
        outcome
            == ImportOutcome {
                created: 1,
                ..ImportOutcome::default()
            },
        "outcome {outcome:?}"
    );
    let back = export(storage, "juliet", &domain).await?;
    ensure!(
        back == record,
        "exported record differs from the imported one:\n  {back:?}\n  {record:?}"
    );
    let cred = ok(
        "credential",
        storage.users.credential("juliet", &domain, "SHA-256").await,
    )?;
    ensure!(
        cred.as_ref() == Some(&record.credentials[1]),
        "SHA-256 credential not as imported"
    );
    let (items, version) = ok("roster", storage.roster.roster("juliet", &domain).await)?;
    ensure!(items == record.roster, "roster differs: {items:?}");
    ensure!(version > 0, "imported roster has version 0");
    let pending = ok(
        "pending_in",
        storage.roster.pending_in("juliet", &domain).await,
    )?;
    ensure!(
        pending == record.pending_in,
        "pending requests differ: {pending:?}"
    );
    let offline = ok(
        "offline list",
        storage.offline.list("juliet", &domain, 10).await,
    )?;
    let stanzas: Vec<(&str, i64)> = offline
        .iter()
        .map(|m| (m.stanza.as_str(), m.stored_at))
        .collect();
    let expected: Vec<(&str, i64)> = record
        .offline
        .iter()
        .map(|m| (m.stanza.as_str(), m.stored_at))
        .collect();
    ensure!(stanzas == expected, "offline messages differ: {stanzas:?}");
    let vcard = ok(
        "account data",
        storage.account_data.get("juliet", &domain, "vcard").await,
    )?;
    ensure!(
        vcard.as_deref() == Some(record.data[1].1.as_str()),
        "vCard differs: {vcard:?}"
    );
    // The imported account is an ordinary one: later changes go through the usual stores.
    let next = ok(
        "put_item after import",
        storage
            .roster
            .put_item(
                "juliet",
                &domain,
                &item("romeo@example.net", Subscription::Both, &[]),
            )
            .await,
    )?;
    ensure!(next > version, "roster version did not grow after import");
    ok(
        "offline push after import",
        storage
            .offline
            .push("juliet", &domain, "<message/>", 1, 10)
            .await,
    )?;
    let all = ok(
        "offline list",
        storage.offline.list("juliet", &domain, 10).await,
    )?;
    ensure!(
        all.len() == 3 && all[2].stanza == "<message/>",
        "a message pushed after the import is not last"
    );
    ensure!(
        ok(
            "export of a missing account",
            storage.transfer.export_account("nobody", &domain).await
        )?
        .is_none(),
        "export of a missing account found something"
    );
    Ok(())
}

/// An account exported from the usual stores comes back as they hold it.
pub async fn export_reads_every_store(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("transfer");
    create_account(storage, "romeo", &domain).await?;
    create_account(storage, "empty", &domain).await?;
    ok(
        "set_credentials",
        storage
            .users
            .set_credentials("romeo", &domain, &[credential("SHA-512", 3)])
            .await,
    )?;
    let contact = item("juliet@example.com", Subscription::Both, &["b", "a"]);
    ok(
        "put_item",
        storage.roster.put_item("romeo", &domain, &contact).await,
    )?;
    ok(
        "push",
        storage
            .offline
            .push("romeo", &domain, "<message><body>x</body></message>", 5, 10)
            .await,
    )?;
    ok(
        "put",
        storage
            .account_data
            .put("romeo", &domain, "last", "42")
            .await,
    )?;
    let record = export(storage, "romeo", &domain).await?;
    ensure!(
        record.credentials == [credential("SHA-512", 3)],
        "credentials {:?}",
        record.credentials
    );
    ensure!(record.roster == [contact], "roster {:?}", record.roster);
    ensure!(
        record.offline
            == [TransferredMessage {
                stanza: "<message><body>x</body></message>".into(),
                stored_at: 5
            }],
        "offline {:?}",
        record.offline
    );
    ensure!(
        record.data == [("last".to_owned(), "42".to_owned())],
        "data {:?}",
        record.data
    );
    let empty = export(storage, "empty", &domain).await?;
    ensure!(
        empty
            == AccountRecord {
                username: "empty".into(),
                domain: domain.clone(),
                ..AccountRecord::default()
            },
        "an account with nothing exported as {empty:?}"
    );
    Ok(())
}

/// Existing accounts: refused (nothing written, not even the new accounts of the batch),
/// skipped (left as they were, the others created) or replaced (old data gone, the roster
/// version above the old one).
pub async fn existing_accounts(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("transfer");
    create_account(storage, "romeo", &domain).await?;
    ok(
        "push",
        storage
            .offline
            .push("romeo", &domain, "<message>old</message>", 1, 10)
            .await,
    )?;
    for _ in 0..3 {
        ok(
            "put_item",
            storage
                .roster
                .put_item(
                    "romeo",
                    &domain,
                    &item("old@example.com", Subscription::None, &[]),
                )
                .await,
        )?;
    }
    let old_version = ok("version", storage.roster.version("romeo", &domain).await)?;
    let batch = [full_record("new", &domain), full_record("romeo", &domain)];

    match storage
        .transfer
        .import_accounts(&batch, ExistingAccounts::Refuse, None)
        .await
    {
        Err(StoreError::AlreadyExists(what)) => {
            ensure!(what == format!("romeo@{domain}"), "refusal names {what}")
        }
        other => return Err(format!("Refuse: expected AlreadyExists, got {other:?}")),
    }
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("new", &domain).await
        )?,
        "a refused import created an account"
    );

    let outcome = ok(
        "import (skip)",
        storage
            .transfer
            .import_accounts(&batch, ExistingAccounts::Skip, None)
            .await,
    )?;
    ensure!(
        outcome
            == ImportOutcome {
                created: 1,
                replaced: 0,
                skipped: vec![format!("romeo@{domain}")],
            },
        "skip outcome {outcome:?}"
    );
    let kept = ok(
        "offline list",
        storage.offline.list("romeo", &domain, 10).await,
    )?;
    ensure!(
        kept.len() == 1 && kept[0].stanza == "<message>old</message>",
        "a skipped account was changed"
    );
    ensure!(
        ok(
            "user_exists",
            storage.users.user_exists("new", &domain).await
        )?,
        "skip did not create the new account"
    );

    let outcome = ok(
        "import (replace)",
        storage
            .transfer
            .import_accounts(&batch[1..], ExistingAccounts::Replace, None)
            .await,
    )?;
    ensure!(
        outcome
            == ImportOutcome {
                created: 0,
                replaced: 1,
                skipped: Vec::new(),
            },
        "replace outcome {outcome:?}"
    );
    let back = export(storage, "romeo", &domain).await?;
    ensure!(
        back == batch[1],
        "replaced account differs from the record: {back:?}"
    );
    let new_version = ok("version", storage.roster.version("romeo", &domain).await)?;
    ensure!(
        new_version > old_version,
        "replaced roster version {new_version} not above {old_version}"
    );
    Ok(())
}

/// One bad record, or one account twice, and nothing of the batch is written.
pub async fn all_or_nothing(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("transfer");
    let good = full_record("good", &domain);
    let mut bad = full_record("bad", &domain);
    bad.roster.push(item("", Subscription::Both, &[]));
    invalid_input(
        "import with an empty roster JID",
        storage
            .transfer
            .import_accounts(&[good.clone(), bad], ExistingAccounts::Replace, None)
            .await,
    )?;
    let mut twice = full_record("bad", &domain);
    twice.roster.push(twice.roster[0].clone());
    invalid_input(
        "import with a contact twice",
        storage
            .transfer
            .import_accounts(&[good.clone(), twice], ExistingAccounts::Replace, None)
            .await,
    )?;
    let mut nul = full_record("bad", &domain);
    nul.offline[1].stanza.push('\0');
    invalid_input(
        "import with U+0000 in a message",
        storage
            .transfer
            .import_accounts(&[good.clone(), nul], ExistingAccounts::Replace, None)
            .await,
    )?;
    match storage
        .transfer
        .import_accounts(&[good.clone(), good], ExistingAccounts::Replace, None)
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => {
            return Err(format!(
                "an account twice: expected AlreadyExists, got {other:?}"
            ));
        }
    }
    let count = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(count == 0, "{count} account(s) written by refused imports");
    Ok(())
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("transfer::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        import_then_export,
        export_reads_every_store,
        existing_accounts,
        all_or_nothing,
    );
    failures
}
