//! Conformance checks for [`OfflineStore`](super::OfflineStore): each function checks one
//! behaviour on its own fresh domain and returns what went wrong.

use super::OfflineMessage;
use crate::conformance::{create_account, invalid_input, not_found, ok, unique_domain};
use crate::{Storage, StoreError};

/// A stanza that names its number, with markup, quotes and non-ASCII text.
pub fn sample_stanza(n: usize) -> String {
    format!(
        "<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat' \
         id='m{n}'><body>Message n°{n} — \"quoted\" &amp; 'single'\nsecond line</body>\
         <delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/></message>"
    )
}

async fn push(
    storage: &Storage,
    username: &str,
    domain: &str,
    n: usize,
    quota: u64,
) -> Result<bool, String> {
    ok(
        "push",
        storage
            .offline
            .push(
                username,
                domain,
                &sample_stanza(n),
                1_000_000 + n as i64,
                quota,
            )
            .await,
    )
}

async fn list_all(
    storage: &Storage,
    username: &str,
    domain: &str,
) -> Result<Vec<OfflineMessage>, String> {
    ok(
        "list",
        storage.offline.list(username, domain, u64::MAX).await,
    )
}

fn numbers(messages: &[OfflineMessage]) -> Vec<i64> {
    messages.iter().map(|m| m.stored_at - 1_000_000).collect()
}

/// Messages come back in arrival order with increasing ids and every byte of the stanza and
/// the timestamp; `list` honours its limit and removes nothing; `count` agrees.
pub async fn push_and_list_in_order(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("offline-order");
    create_account(storage, "juliet", &domain).await?;
    ensure!(
        list_all(storage, "juliet", &domain).await?.is_empty(),
        "a new account has offline messages"
    );
    for n in 0..5 {
        ensure!(
            push(storage, "juliet", &domain, n, 100).await?,
            "push #{n} under the quota was refused"
        );
    }
    let all = list_all(storage, "juliet", &domain).await?;
    ensure!(
        all.len() == 5,
        "list returned {} messages, expected 5",
        all.len()
    );
    for (n, m) in all.iter().enumerate() {
        ensure!(
            m.stanza == sample_stanza(n) && m.stored_at == 1_000_000 + n as i64,
            "message #{n} read back as {m:?}"
        );
    }
    ensure!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "ids are not increasing: {:?}",
        all.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    let first = ok("list(3)", storage.offline.list("juliet", &domain, 3).await)?;
    ensure!(first == all[..3], "list(3) = {:?}", numbers(&first));
    let none = ok("list(0)", storage.offline.list("juliet", &domain, 0).await)?;
    ensure!(none.is_empty(), "list(0) returned {} messages", none.len());
    let n = ok("count", storage.offline.count("juliet", &domain).await)?;
    ensure!(n == 5, "count after listing = {n}, expected 5");
    // A big stanza (the caller's limit is the only one) round-trips whole.
    let big = format!("<message><body>{}</body></message>", "é".repeat(128 * 1024));
    ok(
        "push of a big stanza",
        storage.offline.push("juliet", &domain, &big, 7, 100).await,
    )?;
    let all = list_all(storage, "juliet", &domain).await?;
    ensure!(
        all.last().map(|m| (&m.stanza, m.stored_at)) == Some((&big, 7)),
        "the big stanza did not come back whole"
    );
    Ok(())
}

/// The quota is exact: `quota` messages are accepted, the next is refused and not stored,
/// a removal makes room again, and a quota at or below the current count refuses.
pub async fn quota_is_exact(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("offline-quota");
    create_account(storage, "romeo", &domain).await?;
    ensure!(
        !push(storage, "romeo", &domain, 0, 0).await?,
        "a push with quota 0 was accepted"
    );
    for n in 1..=3 {
        ensure!(
            push(storage, "romeo", &domain, n, 3).await?,
            "push #{n} of 3 was refused"
        );
    }
    ensure!(
        !push(storage, "romeo", &domain, 4, 3).await?,
        "the 4th push with quota 3 was accepted"
    );
    let all = list_all(storage, "romeo", &domain).await?;
    ensure!(
        numbers(&all) == [1, 2, 3],
        "after a refused push the queue is {:?}",
        numbers(&all)
    );
    ensure!(
        !push(storage, "romeo", &domain, 5, 2).await?,
        "a push with a quota below the count was accepted"
    );
    ok(
        "remove",
        storage.offline.remove("romeo", &domain, &[all[0].id]).await,
    )?;
    ensure!(
        push(storage, "romeo", &domain, 6, 3).await?,
        "a push after a removal made room was refused"
    );
    ensure!(
        !push(storage, "romeo", &domain, 7, 3).await?,
        "the quota was passed after a removal"
    );
    let all = list_all(storage, "romeo", &domain).await?;
    ensure!(
        numbers(&all) == [2, 3, 6],
        "queue is {:?}, expected [2, 3, 6]",
        numbers(&all)
    );
    Ok(())
}

/// Pushes racing each other on one account never leave more than the quota, and exactly the
/// quota is reached.
pub async fn concurrent_pushes_respect_quota(storage: &Storage) -> Result<(), String> {
    const PUSHES: usize = 32;
    const QUOTA: u64 = 10;
    let domain = unique_domain("offline-race");
    create_account(storage, "mercutio", &domain).await?;
    // Every push waits until all are ready, so that they really overlap.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(PUSHES));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..PUSHES {
        let storage = storage.clone();
        let domain = domain.clone();
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            storage
                .offline
                .push("mercutio", &domain, &sample_stanza(n), n as i64, QUOTA)
                .await
        });
    }
    let mut accepted = 0u64;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| format!("push task: {e}"))?;
        if ok("concurrent push", result)? {
            accepted += 1;
        }
    }
    let n = ok("count", storage.offline.count("mercutio", &domain).await)?;
    ensure!(
        accepted == QUOTA && n == QUOTA,
        "{PUSHES} concurrent pushes with quota {QUOTA}: {accepted} accepted, {n} stored"
    );
    Ok(())
}

/// `remove` takes out exactly the listed messages of this account: unknown ids, ids of
/// another account's messages and repeated ids are ignored; long id lists work; ids are never
/// handed out again.
pub async fn remove_by_id(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("offline-remove");
    for user in ["benvolio", "tybalt"] {
        create_account(storage, user, &domain).await?;
        for n in 0..6 {
            push(storage, user, &domain, n, 1000).await?;
        }
    }
    let mine = list_all(storage, "benvolio", &domain).await?;
    let theirs = list_all(storage, "tybalt", &domain).await?;
    let max_id = mine.iter().chain(&theirs).map(|m| m.id).max().unwrap_or(0);
    ok(
        "remove(nothing)",
        storage.offline.remove("benvolio", &domain, &[]).await,
    )?;
    let ids = [
        mine[1].id,
        mine[4].id,
        mine[1].id,
        theirs[0].id,
        theirs[2].id,
        max_id + 1_000_000,
        -1,
    ];
    ok(
        "remove",
        storage.offline.remove("benvolio", &domain, &ids).await,
    )?;
    let left = list_all(storage, "benvolio", &domain).await?;
    ensure!(
        numbers(&left) == [0, 2, 3, 5],
        "after removal the queue is {:?}",
        numbers(&left)
    );
    let untouched = list_all(storage, "tybalt", &domain).await?;
    ensure!(
        untouched == theirs,
        "another account's messages were removed"
    );
    ok(
        "remove of unknown ids only",
        storage
            .offline
            .remove("tybalt", &domain, &[max_id + 7])
            .await,
    )?;

    // Remove the newest messages of both accounts, then push: the new id is above every id
    // handed out so far, not the highest id left plus one.
    for (user, newest) in [("benvolio", mine[5].id), ("tybalt", theirs[5].id)] {
        ok(
            "remove newest",
            storage.offline.remove(user, &domain, &[newest]).await,
        )?;
    }
    push(storage, "benvolio", &domain, 9, 1000).await?;
    let left = list_all(storage, "benvolio", &domain).await?;
    let newest = left.last().map_or(0, |m| m.id);
    ensure!(
        newest > max_id,
        "a new message got id {newest}, not above the {max_id} handed out before"
    );

    // More ids than one statement takes.
    for n in 100..700 {
        push(storage, "tybalt", &domain, n, 10_000).await?;
    }
    let all = list_all(storage, "tybalt", &domain).await?;
    let mut ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    ids.extend((1..300).map(|i| max_id + 2_000_000 + i));
    ok(
        "remove of every id and 299 unknown ones",
        storage.offline.remove("tybalt", &domain, &ids).await,
    )?;
    let n = ok("count", storage.offline.count("tybalt", &domain).await)?;
    ensure!(n == 0, "{n} messages left after removing every id");
    Ok(())
}

/// Reads of an unknown account find nothing; writes fail with `NotFound`.
pub async fn unknown_account(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("offline-unknown");
    not_found(
        "push",
        storage
            .offline
            .push("ghost", &domain, &sample_stanza(0), 0, 100)
            .await,
    )?;
    not_found(
        "remove",
        storage.offline.remove("ghost", &domain, &[1, 2]).await,
    )?;
    not_found(
        "remove(nothing)",
        storage.offline.remove("ghost", &domain, &[]).await,
    )?;
    let listed = ok("list", storage.offline.list("ghost", &domain, 10).await)?;
    ensure!(listed.is_empty(), "unknown account lists {listed:?}");
    let n = ok("count", storage.offline.count("ghost", &domain).await)?;
    ensure!(n == 0, "unknown account counts {n}");
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("ghost", &domain).await
        )?,
        "a push created the account"
    );
    Ok(())
}

/// Removing the account removes its messages; a new account of the same name starts empty.
pub async fn removal_cascades(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("offline-cascade");
    for user in ["paris", "friar"] {
        create_account(storage, user, &domain).await?;
        for n in 0..3 {
            push(storage, user, &domain, n, 100).await?;
        }
    }
    ok(
        "remove_user",
        storage.users.remove_user("paris", &domain).await,
    )?;
    let n = ok("count", storage.offline.count("paris", &domain).await)?;
    ensure!(n == 0, "removed account still counts {n} messages");
    create_account(storage, "paris", &domain).await?;
    let listed = list_all(storage, "paris", &domain).await?;
    ensure!(
        listed.is_empty(),
        "re-created account inherited {} messages",
        listed.len()
    );
    ensure!(
        push(storage, "paris", &domain, 0, 1).await?,
        "re-created account's quota counts the old messages"
    );
    let n = ok("count", storage.offline.count("friar", &domain).await)?;
    ensure!(n == 3, "neighbour counts {n} messages, expected 3");
    Ok(())
}

/// A stanza the store cannot hold is refused with `InvalidInput` before the quota is looked
/// at, and nothing is stored.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("offline-invalid");
    create_account(storage, "balthasar", &domain).await?;
    invalid_input(
        "push with U+0000",
        storage
            .offline
            .push("balthasar", &domain, "<message>\0</message>", 0, 100)
            .await,
    )?;
    let n = ok("count", storage.offline.count("balthasar", &domain).await)?;
    ensure!(n == 0, "a refused push stored {n} messages");
    match storage
        .offline
        .push("balthasar", &domain, &sample_stanza(0), 0, 100)
        .await
    {
        Ok(true) => Ok(()),
        Err(StoreError::InvalidInput(e)) => Err(format!("a valid stanza was refused: {e}")),
        other => Err(format!("push after a refused one: {other:?}")),
    }
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("offline::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        push_and_list_in_order,
        quota_is_exact,
        concurrent_pushes_respect_quota,
        remove_by_id,
        unknown_account,
        removal_cascades,
        invalid_input_refused,
    );
    failures
}
