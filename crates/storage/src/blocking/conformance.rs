//! Conformance checks for [`BlockingStore`](super::BlockingStore): each function checks one
//! behaviour on its own fresh domain and returns what went wrong.

use crate::conformance::{create_account, invalid_input, not_found, ok, unique_domain};
use crate::{MAX_JID_BYTES, Storage};

fn jids(list: &[&str]) -> Vec<String> {
    list.iter().map(|j| (*j).to_owned()).collect()
}

async fn expect_list(
    storage: &Storage,
    username: &str,
    domain: &str,
    expected: &[&str],
) -> Result<(), String> {
    let got = ok(
        "blocklist",
        storage.blocking.blocklist(username, domain).await,
    )?;
    ensure!(
        got == expected,
        "blocklist = {got:?}, expected {expected:?}"
    );
    Ok(())
}

/// JIDs of every form are listed in the order they were blocked, each once, however often
/// they are blocked again; JIDs are compared byte by byte.
pub async fn block_in_order_without_duplicates(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("block-order");
    create_account(storage, "juliet", &domain).await?;
    create_account(storage, "romeo", &domain).await?;
    expect_list(storage, "juliet", &domain, &[]).await?;
    ok(
        "block",
        storage
            .blocking
            .block(
                "juliet",
                &domain,
                &jids(&[
                    "tybalt@example.net",
                    "example.org",
                    "nurse@example.net/phone",
                ]),
            )
            .await,
    )?;
    ok(
        "block (repeats)",
        storage
            .blocking
            .block(
                "juliet",
                &domain,
                &jids(&[
                    "example.org",
                    "Tybalt@example.net",
                    "zed@example.net",
                    "zed@example.net",
                    "élodie@example.net",
                    "tybalt@example.net",
                ]),
            )
            .await,
    )?;
    ok(
        "block(nothing)",
        storage.blocking.block("juliet", &domain, &[]).await,
    )?;
    expect_list(
        storage,
        "juliet",
        &domain,
        &[
            "tybalt@example.net",
            "example.org",
            "nurse@example.net/phone",
            "Tybalt@example.net",
            "zed@example.net",
            "élodie@example.net",
        ],
    )
    .await?;
    expect_list(storage, "romeo", &domain, &[]).await?;

    // More JIDs than one statement takes, in an order that is not sorted.
    let many: Vec<String> = (0..700)
        .map(|i| format!("u{:04}@example.com", (i * 7919) % 10_000))
        .collect();
    ok(
        "block (700)",
        storage.blocking.block("romeo", &domain, &many).await,
    )?;
    let got = ok(
        "blocklist",
        storage.blocking.blocklist("romeo", &domain).await,
    )?;
    ensure!(got == many, "700 blocked JIDs did not come back in order");
    Ok(())
}

/// Unblocking removes the named JIDs and ignores others; a JID blocked again goes to the end;
/// an empty unblock removes everything.
pub async fn unblock_some_and_all(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("block-unblock");
    create_account(storage, "benvolio", &domain).await?;
    create_account(storage, "mercutio", &domain).await?;
    let all = [
        "a@example.net",
        "b@example.net",
        "c@example.net",
        "d.example",
    ];
    for user in ["benvolio", "mercutio"] {
        ok(
            "block",
            storage.blocking.block(user, &domain, &jids(&all)).await,
        )?;
    }
    ok(
        "unblock",
        storage
            .blocking
            .unblock(
                "benvolio",
                &domain,
                &jids(&[
                    "b@example.net",
                    "B@example.net",
                    "never@example.net",
                    "b@example.net",
                ]),
            )
            .await,
    )?;
    expect_list(
        storage,
        "benvolio",
        &domain,
        &["a@example.net", "c@example.net", "d.example"],
    )
    .await?;
    ok(
        "block again",
        storage
            .blocking
            .block("benvolio", &domain, &jids(&["b@example.net"]))
            .await,
    )?;
    expect_list(
        storage,
        "benvolio",
        &domain,
        &[
            "a@example.net",
            "c@example.net",
            "d.example",
            "b@example.net",
        ],
    )
    .await?;
    ok(
        "unblock all",
        storage.blocking.unblock("benvolio", &domain, &[]).await,
    )?;
    expect_list(storage, "benvolio", &domain, &[]).await?;
    ok(
        "unblock all of an empty list",
        storage.blocking.unblock("benvolio", &domain, &[]).await,
    )?;
    expect_list(storage, "mercutio", &domain, &all).await?;

    let many: Vec<String> = (0..600).map(|i| format!("u{i}@example.com")).collect();
    ok(
        "block (600)",
        storage.blocking.block("mercutio", &domain, &many).await,
    )?;
    ok(
        "unblock (600)",
        storage.blocking.unblock("mercutio", &domain, &many).await,
    )?;
    expect_list(storage, "mercutio", &domain, &all).await
}

/// Reads of an unknown account find an empty list; writes fail with `NotFound`.
pub async fn unknown_account(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("block-unknown");
    expect_list(storage, "ghost", &domain, &[]).await?;
    let some = jids(&["a@example.net"]);
    not_found(
        "block",
        storage.blocking.block("ghost", &domain, &some).await,
    )?;
    not_found(
        "unblock",
        storage.blocking.unblock("ghost", &domain, &some).await,
    )?;
    not_found(
        "unblock all",
        storage.blocking.unblock("ghost", &domain, &[]).await,
    )?;
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("ghost", &domain).await
        )?,
        "a block created the account"
    );
    Ok(())
}

/// Removing the account removes its blocklist; a new account of the same name starts empty.
pub async fn removal_cascades(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("block-cascade");
    for user in ["paris", "friar"] {
        create_account(storage, user, &domain).await?;
        ok(
            "block",
            storage
                .blocking
                .block(user, &domain, &jids(&["a@example.net"]))
                .await,
        )?;
    }
    ok(
        "remove_user",
        storage.users.remove_user("paris", &domain).await,
    )?;
    expect_list(storage, "paris", &domain, &[]).await?;
    create_account(storage, "paris", &domain).await?;
    expect_list(storage, "paris", &domain, &[]).await?;
    expect_list(storage, "friar", &domain, &["a@example.net"]).await
}

/// A JID the store cannot hold makes the whole call fail with `InvalidInput`, writing nothing.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("block-invalid");
    create_account(storage, "balthasar", &domain).await?;
    ok(
        "block",
        storage
            .blocking
            .block("balthasar", &domain, &jids(&["a@example.net"]))
            .await,
    )?;
    let long = "x".repeat(MAX_JID_BYTES + 1);
    for (what, bad) in [
        ("an empty JID", ""),
        ("an oversized JID", long.as_str()),
        ("U+0000", "b\0@example.net"),
    ] {
        invalid_input(
            &format!("block with {what}"),
            storage
                .blocking
                .block("balthasar", &domain, &jids(&["new@example.net", bad]))
                .await,
        )?;
        invalid_input(
            &format!("unblock with {what}"),
            storage
                .blocking
                .unblock("balthasar", &domain, &jids(&["a@example.net", bad]))
                .await,
        )?;
    }
    expect_list(storage, "balthasar", &domain, &["a@example.net"]).await
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("blocking::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        block_in_order_without_duplicates,
        unblock_some_and_all,
        unknown_account,
        removal_cascades,
        invalid_input_refused,
    );
    failures
}
