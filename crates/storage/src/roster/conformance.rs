//! Conformance checks for [`RosterStore`](super::RosterStore): each function checks one
//! behaviour on its own fresh domain and returns what went wrong.

use super::{MAX_LABEL_BYTES, PendingSubscription, RosterItem, Subscription};
use crate::conformance::{create_account, invalid_input, not_found, ok, unique_domain};
use crate::{MAX_JID_BYTES, Storage};

/// An item with every field chosen by the caller's arguments.
pub fn sample_item(jid: &str, subscription: Subscription, groups: &[&str]) -> RosterItem {
    RosterItem {
        jid: jid.to_owned(),
        name: Some(format!("Name of {jid}")),
        subscription,
        pending_out: matches!(subscription, Subscription::None | Subscription::From),
        pending_in: matches!(subscription, Subscription::None | Subscription::To),
        approved: subscription == Subscription::To,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn pending(contact: &str, text: &str) -> PendingSubscription {
    PendingSubscription {
        contact: contact.to_owned(),
        stanza: format!(
            "<presence from='{contact}' type='subscribe'><status>{text}</status></presence>"
        ),
    }
}

async fn expect_version(
    storage: &Storage,
    username: &str,
    domain: &str,
    expected: u64,
) -> Result<(), String> {
    let v = ok("version", storage.roster.version(username, domain).await)?;
    ensure!(v == expected, "version() = {v}, expected {expected}");
    let (_, v) = ok("roster", storage.roster.roster(username, domain).await)?;
    ensure!(
        v == expected,
        "roster() carries version {v}, expected {expected}"
    );
    Ok(())
}

async fn put(
    storage: &Storage,
    username: &str,
    domain: &str,
    item: &RosterItem,
) -> Result<u64, String> {
    ok(
        "put_item",
        storage.roster.put_item(username, domain, item).await,
    )
}

/// Items come back field for field, every subscription value and flag combination included,
/// ordered by contact JID byte by byte; counts and single-item reads agree.
pub async fn items_round_trip(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-items");
    create_account(storage, "juliet", &domain).await?;
    let (items, version) = ok("roster", storage.roster.roster("juliet", &domain).await)?;
    ensure!(
        items.is_empty() && version == 0,
        "a new account's roster is ({items:?}, {version}), expected ([], 0)"
    );
    let n = ok(
        "count_items",
        storage.roster.count_items("juliet", &domain).await,
    )?;
    ensure!(n == 0, "count_items of a new account = {n}");

    let mut unnamed = sample_item("élodie@example.net", Subscription::From, &[]);
    unnamed.name = None;
    let mut all_flags = sample_item("Zed@example.net", Subscription::None, &["Friends"]);
    all_flags.approved = true;
    let items = vec![
        sample_item(
            "romeo@example.net",
            Subscription::Both,
            &["Friends", "Verona"],
        ),
        sample_item("nurse@example.net", Subscription::To, &["Household"]),
        unnamed,
        all_flags,
        sample_item("example.net", Subscription::None, &[]),
        sample_item(
            "alice@example.net/resource",
            Subscription::Both,
            &["Friends"],
        ),
    ];
    for item in &items {
        put(storage, "juliet", &domain, item).await?;
    }
    for item in &items {
        let got = ok(
            "item",
            storage.roster.item("juliet", &domain, &item.jid).await,
        )?;
        ensure!(
            got.as_ref() == Some(item),
            "item({}) = {got:?}, stored {item:?}",
            item.jid
        );
    }
    let got = ok(
        "item",
        storage
            .roster
            .item("juliet", &domain, "ZED@example.net")
            .await,
    )?;
    ensure!(got.is_none(), "item lookup ignores case: {got:?}");

    let mut want = items.clone();
    want.sort_by(|a, b| a.jid.as_bytes().cmp(b.jid.as_bytes()));
    let (got, _) = ok("roster", storage.roster.roster("juliet", &domain).await)?;
    ensure!(
        got == want,
        "roster() = {got:?}\nexpected, ordered by JID bytes: {want:?}"
    );
    let n = ok(
        "count_items",
        storage.roster.count_items("juliet", &domain).await,
    )?;
    ensure!(n == 6, "count_items = {n}, expected 6");
    Ok(())
}

/// Putting an item for a contact already on the roster replaces every field and the groups.
pub async fn put_replaces(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-replace");
    create_account(storage, "romeo", &domain).await?;
    let first = sample_item("juliet@example.net", Subscription::None, &["A", "B", "C"]);
    put(storage, "romeo", &domain, &first).await?;
    let second = RosterItem {
        jid: first.jid.clone(),
        name: None,
        subscription: Subscription::Both,
        pending_out: false,
        pending_in: false,
        approved: false,
        groups: vec!["C".to_owned(), "D".to_owned()],
    };
    put(storage, "romeo", &domain, &second).await?;
    let got = ok(
        "item",
        storage.roster.item("romeo", &domain, &first.jid).await,
    )?;
    ensure!(
        got.as_ref() == Some(&second),
        "after replacement item() = {got:?}"
    );
    let mut third = second.clone();
    third.groups.clear();
    third.name = Some("J".to_owned());
    put(storage, "romeo", &domain, &third).await?;
    let (items, _) = ok("roster", storage.roster.roster("romeo", &domain).await)?;
    ensure!(
        items == [third],
        "after second replacement roster() = {items:?}"
    );
    let n = ok(
        "count_items",
        storage.roster.count_items("romeo", &domain).await,
    )?;
    ensure!(n == 1, "count_items = {n}, expected 1");
    Ok(())
}

/// Every put (even of an unchanged item) and every removal of an item increases the version;
/// removing a contact not on the roster returns `None` and leaves the version alone.
pub async fn version_grows(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-version");
    create_account(storage, "benvolio", &domain).await?;
    let a = sample_item("a@example.net", Subscription::Both, &["G"]);
    let b = sample_item("b@example.net", Subscription::To, &[]);
    let mut last = 0;
    for (step, item) in [&a, &b, &a, &a].into_iter().enumerate() {
        let v = put(storage, "benvolio", &domain, item).await?;
        ensure!(v > last, "put #{step} returned version {v} after {last}");
        expect_version(storage, "benvolio", &domain, v).await?;
        last = v;
    }
    let none = ok(
        "remove_item of an absent contact",
        storage
            .roster
            .remove_item("benvolio", &domain, "c@example.net")
            .await,
    )?;
    ensure!(
        none.is_none(),
        "removing an absent contact returned {none:?}"
    );
    expect_version(storage, "benvolio", &domain, last).await?;

    let removed = ok(
        "remove_item",
        storage
            .roster
            .remove_item("benvolio", &domain, &a.jid)
            .await,
    )?;
    let Some(v) = removed else {
        return Err("removing an item returned None".into());
    };
    ensure!(v > last, "removal returned version {v} after {last}");
    expect_version(storage, "benvolio", &domain, v).await?;
    last = v;
    let again = ok(
        "second remove_item",
        storage
            .roster
            .remove_item("benvolio", &domain, &a.jid)
            .await,
    )?;
    ensure!(again.is_none(), "second removal returned {again:?}");
    let gone = ok(
        "item",
        storage.roster.item("benvolio", &domain, &a.jid).await,
    )?;
    ensure!(gone.is_none(), "removed item is still there: {gone:?}");

    // Emptying the roster keeps the version: RFC 6121 §2.6 compares it with the client's.
    let removed = ok(
        "remove_item",
        storage
            .roster
            .remove_item("benvolio", &domain, &b.jid)
            .await,
    )?;
    ensure!(
        removed.is_some_and(|v| v > last),
        "removing the last item returned {removed:?} after {last}"
    );
    let (items, v) = ok("roster", storage.roster.roster("benvolio", &domain).await)?;
    ensure!(
        items.is_empty() && Some(v) == removed,
        "emptied roster reads ({items:?}, {v}), expected ([], {removed:?})"
    );

    // Pending requests are not roster items: they leave the version alone.
    ok(
        "add_pending_in",
        storage
            .roster
            .add_pending_in("benvolio", &domain, &pending("x@example.net", "hi"))
            .await,
    )?;
    ok(
        "remove_pending_in",
        storage
            .roster
            .remove_pending_in("benvolio", &domain, "x@example.net")
            .await,
    )?;
    expect_version(storage, "benvolio", &domain, v).await
}

/// Groups keep the order given (not sorted), lose repeats (first place kept), and any text
/// round-trips, including separators a delimited encoding might use; many groups too.
pub async fn groups_order_and_duplicates(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-groups");
    create_account(storage, "mercutio", &domain).await?;
    let given = [
        "Zeta",
        "alpha",
        "Zeta",
        "",
        "Ünïcode ✓",
        "alpha",
        "a,b",
        "a;b",
        "a|b",
        "a\nb",
        " ",
        "'\"<&>",
        "Beta",
        "\u{1f}",
    ];
    let stored = [
        "Zeta",
        "alpha",
        "",
        "Ünïcode ✓",
        "a,b",
        "a;b",
        "a|b",
        "a\nb",
        " ",
        "'\"<&>",
        "Beta",
        "\u{1f}",
    ];
    put(
        storage,
        "mercutio",
        &domain,
        &sample_item("a@example.net", Subscription::Both, &given),
    )
    .await?;
    // A second item with the same groups in another order: groups belong to their item.
    let reversed: Vec<&str> = stored.iter().rev().copied().collect();
    put(
        storage,
        "mercutio",
        &domain,
        &sample_item("b@example.net", Subscription::To, &reversed),
    )
    .await?;
    let (items, _) = ok("roster", storage.roster.roster("mercutio", &domain).await)?;
    let groups: Vec<Vec<String>> = items.iter().map(|i| i.groups.clone()).collect();
    ensure!(
        groups.len() == 2 && groups[0] == stored && groups[1] == reversed,
        "groups read back as {groups:?}\nexpected {stored:?} and {reversed:?}"
    );

    let many: Vec<String> = (0..600)
        .map(|i| format!("g{:03}", (i * 7919) % 1000))
        .collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let item = sample_item("c@example.net", Subscription::None, &many_refs);
    put(storage, "mercutio", &domain, &item).await?;
    let got = ok(
        "item",
        storage
            .roster
            .item("mercutio", &domain, "c@example.net")
            .await,
    )?;
    ensure!(
        got.as_ref().map(|i| &i.groups) == Some(&many),
        "600 groups did not come back in order"
    );
    Ok(())
}

/// Pending requests: oldest first, one per contact, a repeated request replacing the stanza in
/// place, removal saying whether there was one; stanzas come back byte for byte.
pub async fn pending_requests(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-pending");
    create_account(storage, "tybalt", &domain).await?;
    let list = |storage: &Storage| {
        let domain = domain.clone();
        let storage = storage.clone();
        async move {
            ok(
                "pending_in",
                storage.roster.pending_in("tybalt", &domain).await,
            )
        }
    };
    ensure!(
        list(storage).await?.is_empty(),
        "a new account has pending requests"
    );
    let (a, b, c) = (
        pending("zz@example.net", "first"),
        pending("bb@example.net", "élan\n<x/> 'q' \"d\""),
        pending("aa@example.net", "third"),
    );
    for p in [&a, &b, &c] {
        ok(
            "add_pending_in",
            storage.roster.add_pending_in("tybalt", &domain, p).await,
        )?;
    }
    let got = list(storage).await?;
    ensure!(
        got == [a.clone(), b.clone(), c.clone()],
        "pending_in = {got:?}, expected arrival order"
    );

    let b2 = pending("bb@example.net", "asked again");
    ok(
        "add_pending_in (repeat)",
        storage.roster.add_pending_in("tybalt", &domain, &b2).await,
    )?;
    let got = list(storage).await?;
    ensure!(
        got == [a.clone(), b2.clone(), c.clone()],
        "after a repeated request pending_in = {got:?}"
    );

    let removed = ok(
        "remove_pending_in",
        storage
            .roster
            .remove_pending_in("tybalt", &domain, "bb@example.net")
            .await,
    )?;
    ensure!(
        removed,
        "remove_pending_in of a pending request returned false"
    );
    let again = ok(
        "remove_pending_in again",
        storage
            .roster
            .remove_pending_in("tybalt", &domain, "bb@example.net")
            .await,
    )?;
    ensure!(!again, "second remove_pending_in returned true");
    let case = ok(
        "remove_pending_in with other case",
        storage
            .roster
            .remove_pending_in("tybalt", &domain, "ZZ@example.net")
            .await,
    )?;
    ensure!(!case, "remove_pending_in ignores case");
    ok(
        "add_pending_in",
        storage.roster.add_pending_in("tybalt", &domain, &b).await,
    )?;
    let got = list(storage).await?;
    ensure!(
        got == [a, c, b],
        "a request added after removal is not last: {got:?}"
    );
    let items = ok(
        "count_items",
        storage.roster.count_items("tybalt", &domain).await,
    )?;
    ensure!(items == 0, "pending requests show as {items} roster items");
    Ok(())
}

/// Reads of an unknown account answer as for an empty roster; writes fail with `NotFound`
/// and create nothing.
pub async fn unknown_account(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-unknown");
    let (items, version) = ok("roster", storage.roster.roster("ghost", &domain).await)?;
    ensure!(
        items.is_empty() && version == 0,
        "unknown account's roster = ({items:?}, {version})"
    );
    let item = ok(
        "item",
        storage.roster.item("ghost", &domain, "a@example.net").await,
    )?;
    ensure!(item.is_none(), "unknown account has item {item:?}");
    let v = ok("version", storage.roster.version("ghost", &domain).await)?;
    ensure!(v == 0, "unknown account's version = {v}");
    let n = ok(
        "count_items",
        storage.roster.count_items("ghost", &domain).await,
    )?;
    ensure!(n == 0, "unknown account's count = {n}");
    let p = ok(
        "pending_in",
        storage.roster.pending_in("ghost", &domain).await,
    )?;
    ensure!(p.is_empty(), "unknown account's pending requests = {p:?}");

    let item = sample_item("a@example.net", Subscription::Both, &["G"]);
    not_found(
        "put_item",
        storage.roster.put_item("ghost", &domain, &item).await,
    )?;
    not_found(
        "remove_item",
        storage
            .roster
            .remove_item("ghost", &domain, &item.jid)
            .await,
    )?;
    not_found(
        "add_pending_in",
        storage
            .roster
            .add_pending_in("ghost", &domain, &pending("a@example.net", "x"))
            .await,
    )?;
    not_found(
        "remove_pending_in",
        storage
            .roster
            .remove_pending_in("ghost", &domain, "a@example.net")
            .await,
    )?;
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("ghost", &domain).await
        )?,
        "a roster write created the account"
    );
    create_account(storage, "ghost", &domain).await?;
    let v = ok("version", storage.roster.version("ghost", &domain).await)?;
    ensure!(v == 0, "refused writes left version {v}");
    let p = ok(
        "pending_in",
        storage.roster.pending_in("ghost", &domain).await,
    )?;
    ensure!(p.is_empty(), "refused writes left pending requests {p:?}");
    Ok(())
}

/// Removing the account removes its items, groups, version and pending requests; a new account
/// of the same name starts empty at version 0; a neighbour keeps everything.
pub async fn removal_cascades(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-cascade");
    for user in ["paris", "friar"] {
        create_account(storage, user, &domain).await?;
        put(
            storage,
            user,
            &domain,
            &sample_item("a@example.net", Subscription::Both, &["G1", "G2"]),
        )
        .await?;
        ok(
            "add_pending_in",
            storage
                .roster
                .add_pending_in(user, &domain, &pending("b@example.net", "hello"))
                .await,
        )?;
    }
    let neighbour = ok("roster", storage.roster.roster("friar", &domain).await)?;
    ok(
        "remove_user",
        storage.users.remove_user("paris", &domain).await,
    )?;
    let (items, version) = ok("roster", storage.roster.roster("paris", &domain).await)?;
    ensure!(
        items.is_empty() && version == 0,
        "removed account's roster = ({items:?}, {version})"
    );
    create_account(storage, "paris", &domain).await?;
    let (items, version) = ok("roster", storage.roster.roster("paris", &domain).await)?;
    ensure!(
        items.is_empty() && version == 0,
        "re-created account inherited ({items:?}, {version})"
    );
    let p = ok(
        "pending_in",
        storage.roster.pending_in("paris", &domain).await,
    )?;
    ensure!(
        p.is_empty(),
        "re-created account inherited pending requests {p:?}"
    );
    let n = ok(
        "count_items",
        storage.roster.count_items("paris", &domain).await,
    )?;
    ensure!(n == 0, "re-created account counts {n} items");
    let still = ok("roster", storage.roster.roster("friar", &domain).await)?;
    ensure!(still == neighbour, "neighbour's roster changed: {still:?}");
    let p = ok(
        "pending_in",
        storage.roster.pending_in("friar", &domain).await,
    )?;
    ensure!(p.len() == 1, "neighbour's pending requests: {p:?}");
    Ok(())
}

/// Values the store cannot hold are refused with `InvalidInput`, and nothing changes.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("roster-invalid");
    create_account(storage, "balthasar", &domain).await?;
    let good = sample_item("a@example.net", Subscription::Both, &["G"]);
    let v = put(storage, "balthasar", &domain, &good).await?;
    let mut bad = Vec::new();
    let mut item = good.clone();
    item.jid = String::new();
    bad.push(("empty JID", item));
    let mut item = good.clone();
    item.jid = "a".repeat(MAX_JID_BYTES + 1);
    bad.push(("oversized JID", item));
    let mut item = good.clone();
    item.name = Some("n".repeat(MAX_LABEL_BYTES + 1));
    bad.push(("oversized name", item));
    let mut item = good.clone();
    item.groups = vec!["ok".to_owned(), "g".repeat(MAX_LABEL_BYTES + 1)];
    bad.push(("oversized group", item));
    let mut item = good.clone();
    item.groups = vec!["a\0b".to_owned()];
    bad.push(("U+0000 in a group", item));
    for (what, item) in &bad {
        invalid_input(
            &format!("put_item with {what}"),
            storage.roster.put_item("balthasar", &domain, item).await,
        )?;
    }
    invalid_input(
        "add_pending_in with U+0000",
        storage
            .roster
            .add_pending_in(
                "balthasar",
                &domain,
                &PendingSubscription {
                    contact: "b@example.net".into(),
                    stanza: "<presence\0/>".into(),
                },
            )
            .await,
    )?;
    invalid_input(
        "add_pending_in with an empty contact",
        storage
            .roster
            .add_pending_in("balthasar", &domain, &pending("", "x"))
            .await,
    )?;
    expect_version(storage, "balthasar", &domain, v).await?;
    let (items, _) = ok("roster", storage.roster.roster("balthasar", &domain).await)?;
    ensure!(
        items == [good],
        "refused puts changed the roster: {items:?}"
    );
    let p = ok(
        "pending_in",
        storage.roster.pending_in("balthasar", &domain).await,
    )?;
    ensure!(p.is_empty(), "refused requests were stored: {p:?}");
    // A lookup by a value that cannot be stored finds nothing rather than failing.
    let none = ok(
        "item with U+0000",
        storage.roster.item("balthasar", &domain, "a\0b").await,
    )?;
    ensure!(none.is_none(), "lookup with U+0000 found {none:?}");
    let none = ok(
        "remove_item with U+0000",
        storage
            .roster
            .remove_item("balthasar", &domain, "a\0b")
            .await,
    )?;
    ensure!(none.is_none(), "removal with U+0000 returned {none:?}");
    Ok(())
}

/// Concurrent puts to one roster all succeed with distinct versions; readers running alongside
/// always see a version that goes with exactly the items they see.
pub async fn concurrent_writes_and_consistent_reads(storage: &Storage) -> Result<(), String> {
    const WRITERS: usize = 8;
    const SEQUENTIAL: usize = 24;
    let domain = unique_domain("roster-race");
    create_account(storage, "lady", &domain).await?;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let storage = storage.clone();
        let domain = domain.clone();
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let item = sample_item(&format!("w{i}@example.net"), Subscription::Both, &["G"]);
            storage.roster.put_item("lady", &domain, &item).await
        });
    }
    let mut versions = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| format!("writer task: {e}"))?;
        versions.push(ok("concurrent put_item", result)?);
    }
    versions.sort_unstable();
    versions.dedup();
    ensure!(
        versions.len() == WRITERS,
        "concurrent puts returned repeated versions: {versions:?}"
    );
    let last = versions.last().copied().unwrap_or(0);
    expect_version(storage, "lady", &domain, last).await?;

    // One writer adds items s00, s01, … while readers take snapshots: a snapshot holding the
    // first k of them must carry the version the k-th put returned.
    let writer = {
        let storage = storage.clone();
        let domain = domain.clone();
        tokio::spawn(async move {
            let mut after = Vec::with_capacity(SEQUENTIAL);
            for k in 0..SEQUENTIAL {
                let item = sample_item(&format!("s{k:02}@example.net"), Subscription::To, &[]);
                after.push(storage.roster.put_item("lady", &domain, &item).await?);
            }
            Ok::<_, crate::StoreError>(after)
        })
    };
    let mut snapshots = Vec::new();
    while !writer.is_finished() {
        snapshots.push(ok("roster", storage.roster.roster("lady", &domain).await)?);
        tokio::task::yield_now().await;
    }
    let after = ok(
        "sequential put_item",
        writer.await.map_err(|e| format!("writer task: {e}"))?,
    )?;
    snapshots.push(ok("roster", storage.roster.roster("lady", &domain).await)?);
    for (items, version) in &snapshots {
        let sequential: Vec<&str> = items
            .iter()
            .filter(|i| i.jid.starts_with('s'))
            .map(|i| i.jid.as_str())
            .collect();
        let k = sequential.len();
        let prefix: Vec<String> = (0..k).map(|j| format!("s{j:02}@example.net")).collect();
        ensure!(
            sequential == prefix,
            "a snapshot holds {sequential:?}, not the first {k} sequential items"
        );
        let expected = if k == 0 { last } else { after[k - 1] };
        ensure!(
            *version == expected,
            "a snapshot with {k} of the sequential items carries version {version}, \
             expected {expected}"
        );
        ensure!(
            items.len() == WRITERS + k,
            "a snapshot holds {} items, expected {}",
            items.len(),
            WRITERS + k
        );
    }
    Ok(())
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("roster::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        items_round_trip,
        put_replaces,
        version_grows,
        groups_order_and_duplicates,
        pending_requests,
        unknown_account,
        removal_cascades,
        invalid_input_refused,
        concurrent_writes_and_consistent_reads,
    );
    failures
}
