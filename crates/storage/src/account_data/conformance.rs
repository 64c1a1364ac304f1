//! Conformance checks for [`AccountDataStore`](super::AccountDataStore): each function checks
//! one behaviour on its own fresh domain and returns what went wrong.

use super::MAX_KEY_BYTES;
use crate::Storage;
use crate::conformance::{create_account, invalid_input, not_found, ok, unique_domain};

async fn expect_value(
    storage: &Storage,
    username: &str,
    domain: &str,
    key: &str,
    expected: Option<&str>,
) -> Result<(), String> {
    let got = ok("get", storage.account_data.get(username, domain, key).await)?;
    ensure!(
        got.as_deref() == expected,
        "get({key:?}) = {:?}, expected {expected:?}",
        got.map(|v| v.chars().take(80).collect::<String>())
    );
    Ok(())
}

/// A value is read back byte for byte, replaced by a later put, and gone after a delete that
/// says it found it; a second delete finds nothing. Keys are exact and per account.
pub async fn put_get_replace_delete(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("data");
    create_account(storage, "juliet", &domain).await?;
    create_account(storage, "romeo", &domain).await?;
    let vcard =
        "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NOTE>\"é\" &amp; \n</NOTE></vCard>";
    expect_value(storage, "juliet", &domain, "vcard", None).await?;
    ok(
        "put",
        storage
            .account_data
            .put("juliet", &domain, "vcard", vcard)
            .await,
    )?;
    expect_value(storage, "juliet", &domain, "vcard", Some(vcard)).await?;
    for (key, other) in [
        ("VCard", "juliet"),
        ("vcard ", "juliet"),
        ("vcard", "romeo"),
    ] {
        expect_value(storage, other, &domain, key, None).await?;
    }

    ok(
        "put (replace)",
        storage
            .account_data
            .put("juliet", &domain, "vcard", "<vCard/>")
            .await,
    )?;
    expect_value(storage, "juliet", &domain, "vcard", Some("<vCard/>")).await?;
    ok(
        "put (empty value)",
        storage
            .account_data
            .put("juliet", &domain, "last", "")
            .await,
    )?;
    expect_value(storage, "juliet", &domain, "last", Some("")).await?;
    let big = format!(
        "<query xmlns='jabber:iq:private'>{}</query>",
        "ü".repeat(200_000)
    );
    let key = "private:storage:bookmarks";
    ok(
        "put (big value)",
        storage.account_data.put("juliet", &domain, key, &big).await,
    )?;
    expect_value(storage, "juliet", &domain, key, Some(&big)).await?;
    ok(
        "put (other account)",
        storage
            .account_data
            .put("romeo", &domain, "vcard", "<vCard>R</vCard>")
            .await,
    )?;

    let found = ok(
        "delete",
        storage
            .account_data
            .delete("juliet", &domain, "vcard")
            .await,
    )?;
    ensure!(found, "delete of a stored value returned false");
    expect_value(storage, "juliet", &domain, "vcard", None).await?;
    let again = ok(
        "second delete",
        storage
            .account_data
            .delete("juliet", &domain, "vcard")
            .await,
    )?;
    ensure!(!again, "second delete returned true");
    let never = ok(
        "delete of a key never stored",
        storage
            .account_data
            .delete("juliet", &domain, "nothing")
            .await,
    )?;
    ensure!(!never, "delete of a key never stored returned true");
    expect_value(storage, "juliet", &domain, "last", Some("")).await?;
    expect_value(storage, "romeo", &domain, "vcard", Some("<vCard>R</vCard>")).await?;
    let key = "k".repeat(MAX_KEY_BYTES);
    ok(
        "put (longest key)",
        storage.account_data.put("juliet", &domain, &key, "v").await,
    )?;
    expect_value(storage, "juliet", &domain, &key, Some("v")).await
}

/// Reads of an unknown account find nothing; writes fail with `NotFound`.
pub async fn unknown_account(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("data-unknown");
    expect_value(storage, "ghost", &domain, "vcard", None).await?;
    not_found(
        "put",
        storage
            .account_data
            .put("ghost", &domain, "vcard", "<vCard/>")
            .await,
    )?;
    not_found(
        "delete",
        storage.account_data.delete("ghost", &domain, "vcard").await,
    )?;
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("ghost", &domain).await
        )?,
        "a put created the account"
    );
    Ok(())
}

/// Removing the account removes its values; a new account of the same name starts empty.
pub async fn removal_cascades(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("data-cascade");
    for user in ["paris", "friar"] {
        create_account(storage, user, &domain).await?;
        ok(
            "put",
            storage
                .account_data
                .put(user, &domain, "vcard", "<vCard/>")
                .await,
        )?;
    }
    ok(
        "remove_user",
        storage.users.remove_user("paris", &domain).await,
    )?;
    expect_value(storage, "paris", &domain, "vcard", None).await?;
    create_account(storage, "paris", &domain).await?;
    expect_value(storage, "paris", &domain, "vcard", None).await?;
    expect_value(storage, "friar", &domain, "vcard", Some("<vCard/>")).await
}

/// Keys and values the store cannot hold are refused with `InvalidInput`; nothing changes.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("data-invalid");
    create_account(storage, "balthasar", &domain).await?;
    ok(
        "put",
        storage
            .account_data
            .put("balthasar", &domain, "k", "old")
            .await,
    )?;
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    for (what, key, value) in [
        ("an empty key", "", "v"),
        ("an oversized key", long.as_str(), "v"),
        ("U+0000 in the key", "k\0", "v"),
        ("U+0000 in the value", "k", "new\0"),
    ] {
        invalid_input(
            &format!("put with {what}"),
            storage
                .account_data
                .put("balthasar", &domain, key, value)
                .await,
        )?;
    }
    expect_value(storage, "balthasar", &domain, "k", Some("old")).await?;
    expect_value(storage, "balthasar", &domain, "k\0", None).await?;
    let found = ok(
        "delete with U+0000",
        storage
            .account_data
            .delete("balthasar", &domain, "k\0")
            .await,
    )?;
    ensure!(!found, "delete with U+0000 found something");
    Ok(())
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("account_data::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        put_get_replace_delete,
        unknown_account,
        removal_cascades,
        invalid_input_refused,
    );
    failures
}
