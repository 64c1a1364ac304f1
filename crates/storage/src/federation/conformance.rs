//! Conformance checks for [`FederationStore`](super::FederationStore): each function checks one
//! behaviour on domains of its own and returns what went wrong.
//!
//! The partner list and its revision are shared by everything on the database, so the checks
//! only look at their own domains and only expect the revision to have moved at least as far as
//! their own changes moved it: they hold while other runs change the list at the same time.

use super::{MAX_DOMAIN_BYTES, MAX_NOTE_BYTES, Partner, PartnerRule};
use crate::Storage;
use crate::conformance::{invalid_input, ok, unique_domain};

/// The entries for these domains, in the order `partners` gave them.
async fn entries(storage: &Storage, domains: &[&str]) -> Result<Vec<Partner>, String> {
    let all = ok("partners", storage.federation.partners().await)?;
    Ok(all
        .into_iter()
        .filter(|p| domains.contains(&p.domain.as_str()))
        .collect())
}

async fn revision(storage: &Storage) -> Result<i64, String> {
    ok("revision", storage.federation.revision().await)
}

fn partner(domain: &str, rule: PartnerRule, note: Option<&str>, updated_at: i64) -> Partner {
    Partner {
        domain: domain.to_owned(),
        rule,
        note: note.map(str::to_owned),
        updated_at,
    }
}

/// Entries round-trip; setting a domain again replaces its rule, note and time; removing
/// reports whether there was an entry.
pub async fn set_replace_remove(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("fed-set");
    let (a, b) = (format!("a.{base}"), format!("b.{base}"));
    let fed = &storage.federation;
    ok(
        "set_partner",
        fed.set_partner(
            &b,
            PartnerRule::Deny,
            Some("spam, ticket #12\nsecond line"),
            100,
        )
        .await,
    )?;
    ok(
        "set_partner",
        fed.set_partner(&a, PartnerRule::Allow, None, 101).await,
    )?;
    let got = entries(storage, &[&a, &b]).await?;
    let expected = vec![
        partner(&a, PartnerRule::Allow, None, 101),
        partner(
            &b,
            PartnerRule::Deny,
            Some("spam, ticket #12\nsecond line"),
            100,
        ),
    ];
    ensure!(got == expected, "partners = {got:?}, expected {expected:?}");

    ok(
        "set_partner (replace)",
        fed.set_partner(&a, PartnerRule::Deny, Some("changed «mind»"), 200)
            .await,
    )?;
    ok(
        "set_partner (replace, no note)",
        fed.set_partner(&b, PartnerRule::Allow, None, 201).await,
    )?;
    let got = entries(storage, &[&a, &b]).await?;
    let expected = vec![
        partner(&a, PartnerRule::Deny, Some("changed «mind»"), 200),
        partner(&b, PartnerRule::Allow, None, 201),
    ];
    ensure!(
        got == expected,
        "after replacing: partners = {got:?}, expected {expected:?}"
    );

    ensure!(
        ok("remove_partner", fed.remove_partner(&a).await)?,
        "remove_partner of an entry returned false"
    );
    ensure!(
        !ok("remove_partner again", fed.remove_partner(&a).await)?,
        "remove_partner of a removed entry returned true"
    );
    ensure!(
        !ok(
            "remove_partner (never set)",
            fed.remove_partner(&format!("never.{base}")).await
        )?,
        "remove_partner of an unknown domain returned true"
    );
    ensure!(
        !ok(
            "remove_partner (U+0000)",
            fed.remove_partner(&format!("nul\0.{base}")).await
        )?,
        "remove_partner of a domain with U+0000 returned true"
    );
    let got = entries(storage, &[&a, &b]).await?;
    ensure!(
        got == [partner(&b, PartnerRule::Allow, None, 201)],
        "after removing: partners = {got:?}"
    );
    ok("remove_partner", fed.remove_partner(&b).await)?;
    Ok(())
}

/// The list comes in byte order of the domain, whatever the database's locale: `B…` before
/// `a…` before `z…` before `é…`.
pub async fn listing_in_byte_order(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("fed-order");
    let names: Vec<String> = ["z", "é", "a", "B", "a-b", "a0"]
        .iter()
        .map(|p| format!("{p}.{base}"))
        .collect();
    for (i, name) in names.iter().enumerate() {
        ok(
            "set_partner",
            storage
                .federation
                .set_partner(name, PartnerRule::Allow, None, i as i64)
                .await,
        )?;
    }
    let all = ok("partners", storage.federation.partners().await)?;
    ensure!(
        all.windows(2)
            .all(|w| w[0].domain.as_bytes() < w[1].domain.as_bytes()),
        "partners are not in strictly increasing byte order of the domain"
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let got: Vec<String> = entries(storage, &refs)
        .await?
        .into_iter()
        .map(|p| p.domain)
        .collect();
    let mut expected = names.clone();
    expected.sort();
    ensure!(got == expected, "partners = {got:?}, expected {expected:?}");
    for name in &names {
        ok(
            "remove_partner",
            storage.federation.remove_partner(name).await,
        )?;
    }
    Ok(())
}

/// Every change moves the revision forward, replacing an entry with the same values included;
/// the revision never goes back.
pub async fn revision_moves_forward(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("fed-revision");
    let fed = &storage.federation;
    let start = revision(storage).await?;
    ensure!(start >= 0, "revision {start} is negative");
    ok(
        "set_partner",
        fed.set_partner(&domain, PartnerRule::Allow, None, 1).await,
    )?;
    let after_set = revision(storage).await?;
    ensure!(
        after_set > start,
        "revision {after_set} after set_partner, was {start}"
    );
    ok(
        "set_partner (same values)",
        fed.set_partner(&domain, PartnerRule::Allow, None, 1).await,
    )?;
    let after_same = revision(storage).await?;
    ensure!(
        after_same > after_set,
        "revision {after_same} after setting the same entry again, was {after_set}"
    );
    ensure!(
        ok("remove_partner", fed.remove_partner(&domain).await)?,
        "remove_partner returned false"
    );
    let after_remove = revision(storage).await?;
    ensure!(
        after_remove > after_same,
        "revision {after_remove} after remove_partner, was {after_same}"
    );
    ok("remove_partner (gone)", fed.remove_partner(&domain).await)?;
    let after_nothing = revision(storage).await?;
    ensure!(
        after_nothing >= after_remove,
        "revision went back from {after_remove} to {after_nothing}"
    );
    Ok(())
}

/// Changes made at the same moment each move the revision: after `n` concurrent changes it has
/// moved by at least `n`, and every entry is there.
pub async fn concurrent_changes_each_count(storage: &Storage) -> Result<(), String> {
    const N: usize = 24;
    let base = unique_domain("fed-concurrent");
    let names: Vec<String> = (0..N).map(|i| format!("d{i:02}.{base}")).collect();
    let start = revision(storage).await?;
    // Every change waits until all are ready, so that they really overlap.
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = tokio::task::JoinSet::new();
    for name in &names {
        let store = storage.federation.clone();
        let name = name.clone();
        let ready = ready.clone();
        tasks.spawn(async move {
            ready.wait().await;
            store
                .set_partner(&name, PartnerRule::Deny, Some("concurrent"), 7)
                .await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| format!("set_partner task: {e}"))?;
        ok("concurrent set_partner", result)?;
    }
    let end = revision(storage).await?;
    ensure!(
        end - start >= N as i64,
        "revision moved by {} for {N} concurrent changes",
        end - start
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let got = entries(storage, &refs).await?;
    ensure!(
        got.len() == N,
        "{} of {N} concurrently set entries listed",
        got.len()
    );
    for name in &names {
        ok(
            "remove_partner",
            storage.federation.remove_partner(name).await,
        )?;
    }
    let after = revision(storage).await?;
    ensure!(
        after - end >= N as i64,
        "revision moved by {} for {N} removals",
        after - end
    );
    Ok(())
}

/// A domain or note the store cannot hold is refused with `InvalidInput` and nothing is
/// written; the limits themselves are accepted.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("fed-invalid");
    let fed = &storage.federation;
    let long_domain = format!("{}.{base}", "x".repeat(MAX_DOMAIN_BYTES));
    let nul_domain = format!("a\0b.{base}");
    for (what, bad) in [
        ("an empty domain", ""),
        ("an oversized domain", long_domain.as_str()),
        ("a domain with U+0000", nul_domain.as_str()),
    ] {
        invalid_input(
            &format!("set_partner with {what}"),
            fed.set_partner(bad, PartnerRule::Allow, None, 1).await,
        )?;
    }
    let long_note = "n".repeat(MAX_NOTE_BYTES + 1);
    for (what, bad) in [
        ("an oversized note", long_note.as_str()),
        ("a note with U+0000", "a\0b"),
    ] {
        invalid_input(
            &format!("set_partner with {what}"),
            fed.set_partner(&base, PartnerRule::Deny, Some(bad), 1)
                .await,
        )?;
    }
    let got = entries(storage, &[&base, &long_domain]).await?;
    ensure!(got.is_empty(), "a refused set_partner wrote {got:?}");

    // Exactly at the limits: a 1023-byte domain (multi-byte characters counted in bytes) and
    // a 1023-byte note.
    let mut longest = format!(".{base}");
    while longest.len() + 'é'.len_utf8() <= MAX_DOMAIN_BYTES {
        longest.insert(0, 'é');
    }
    while longest.len() < MAX_DOMAIN_BYTES {
        longest.insert(0, 'x');
    }
    let note = "é".repeat(MAX_NOTE_BYTES / 2) + "n";
    ok(
        "set_partner at the limits",
        fed.set_partner(&longest, PartnerRule::Allow, Some(&note), 3)
            .await,
    )?;
    let got = entries(storage, &[&longest]).await?;
    ensure!(
        got == [partner(&longest, PartnerRule::Allow, Some(&note), 3)],
        "entry at the limits came back as {got:?}"
    );
    ok("remove_partner", fed.remove_partner(&longest).await)?;
    Ok(())
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("federation::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        set_replace_remove,
        listing_in_byte_order,
        revision_moves_forward,
        concurrent_changes_each_count,
        invalid_input_refused,
    );
    failures
}
