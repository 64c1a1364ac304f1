//! Conformance checks for [`PolicyStore`](super::PolicyStore): each function checks one
//! behaviour on hashes, domains and accounts of its own and returns what went wrong.
//!
//! The versions and the receipt chain are shared by everything on the database, so the checks
//! look only at their own records, append at whatever the end of the chain is when they come
//! (trying again when another writer took the position first), and use effective times of
//! their own (around the current time in nanoseconds) where versions for every domain compete.
//! The first receipt's rule ([`super::GENESIS_HASH`], seq 1) is checked when the chain is
//! empty, as on every fresh database the test suites open.

use std::collections::BTreeSet;

use super::{
    DEFAULT_RECEIPT_LIMIT, GENESIS_HASH, MAX_CATEGORIES, MAX_CATEGORY_BYTES, MAX_FIELD_BYTES,
    MAX_SIGNATURE_BYTES, MAX_TEXT_BYTES, MAX_TITLE_BYTES, NewPolicyVersion, NewReceipt,
    PolicyVersion, ReceiptFilter, StoredReceipt,
};
use crate::conformance::{create_account, invalid_input, ok, unique_domain};
use crate::{Storage, StoreError};

/// A hash (64 lowercase hex digits) no other check, run or process has used.
fn unique_hash() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:032x}{:016x}{n:016x}", std::process::id())
}

/// Now in nanoseconds: effective times that no earlier run used and later runs pass.
fn time_base() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    i64::try_from(nanos).unwrap_or(i64::MAX / 2)
}

fn version(domain: Option<&str>, effective_at: i64) -> NewPolicyVersion {
    NewPolicyVersion {
        hash: unique_hash(),
        title: "Terms of service".to_owned(),
        text: "# Terms\n\nBe nice.\n".to_owned(),
        format: "markdown".to_owned(),
        effective_at,
        categories: vec!["tos".to_owned(), "privacy".to_owned()],
        domain: domain.map(str::to_owned),
        published_at: 1_700_000_000,
        published_by: "causeriectl:root".to_owned(),
    }
}

fn receipt(username: &str, domain: &str, policy_hash: &str, accepted_at: i64) -> NewReceipt {
    NewReceipt {
        seq: 0,
        username: username.to_owned(),
        domain: domain.to_owned(),
        resource: "phone".to_owned(),
        policy_hash: policy_hash.to_owned(),
        method: "xmpp".to_owned(),
        accepted_at,
        remote_addr: Some("192.0.2.7:50000".to_owned()),
        client: Some("Conversations 2.16".to_owned()),
        prev_hash: GENESIS_HASH.to_owned(),
        hash: unique_hash(),
        signature: "c2lnbmF0dXJl".to_owned(),
    }
}

async fn publish(storage: &Storage, v: &NewPolicyVersion) -> Result<PolicyVersion, String> {
    ok("publish", storage.policy.publish(v).await)
}

async fn last(storage: &Storage) -> Result<Option<StoredReceipt>, String> {
    ok("last_receipt", storage.policy.last_receipt().await)
}

/// Appends `r` at the current end of the chain (its seq and prev_hash set from the last
/// receipt, a hash of its own), trying again when another writer took the position first.
async fn append_next(storage: &Storage, r: &NewReceipt) -> Result<StoredReceipt, String> {
    for _ in 0..1000 {
        let mut next = r.clone();
        next.hash = unique_hash();
        match last(storage).await? {
            Some(l) => {
                next.seq = l.seq + 1;
                next.prev_hash = l.hash;
            }
            None => {
                next.seq = 1;
                next.prev_hash = GENESIS_HASH.to_owned();
            }
        }
        match storage.policy.append_receipt(&next).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict(_)) => tokio::task::yield_now().await,
            Err(e) => return Err(format!("append_receipt failed: {e}")),
        }
    }
    Err("append_receipt kept conflicting 1000 times".to_owned())
}

fn conflict<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) -> Result<(), String> {
    match result {
        Err(StoreError::Conflict(message)) if !message.is_empty() => Ok(()),
        other => Err(format!("{what}: expected Conflict, got {other:?}")),
    }
}

async fn receipts(storage: &Storage, f: ReceiptFilter) -> Result<Vec<StoredReceipt>, String> {
    ok("receipts", storage.policy.receipts(&f).await)
}

fn of_account(username: &str, domain: &str) -> ReceiptFilter {
    ReceiptFilter {
        username: Some(username.to_owned()),
        domain: Some(domain.to_owned()),
        ..ReceiptFilter::default()
    }
}

fn seqs(list: &[StoredReceipt]) -> Vec<i64> {
    list.iter().map(|r| r.seq).collect()
}

/// Versions come back whole (categories in order, duplicates kept, the limits themselves
/// accepted), numbered 1, 2, … in publication order without gaps, and are found by hash (byte
/// for byte: an upper-case hash finds nothing).
pub async fn publish_and_read(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-publish");
    let before = ok("versions", storage.policy.versions().await)?;
    let mut big = version(None, 5);
    big.title = "t".repeat(MAX_TITLE_BYTES);
    big.text = "é".repeat(MAX_TEXT_BYTES / 2);
    big.format = "text".to_owned();
    big.categories = (0..MAX_CATEGORIES)
        .map(|i| format!("{i:0>width$}", width = MAX_CATEGORY_BYTES))
        .rev()
        .collect();
    big.domain = Some("d".repeat(MAX_FIELD_BYTES));
    big.published_by = "p".repeat(MAX_FIELD_BYTES);
    let mut bare = version(Some(&domain), -5);
    bare.categories = Vec::new();
    bare.title = "Conditions d’utilisation «v2»".to_owned();
    let mut repeated = version(Some(&domain), 7);
    repeated.categories = vec!["b".into(), "a".into(), "b".into()];
    let sent = [version(Some(&domain), 1_700_000_000), big, bare, repeated];
    let mut published = Vec::new();
    for v in &sent {
        let got = publish(storage, v).await?;
        ensure!(
            got == PolicyVersion::new(got.seq, v),
            "publish returned {got:?} for {v:?}"
        );
        published.push(got);
    }
    ensure!(
        published.windows(2).all(|w| w[0].seq < w[1].seq),
        "seqs {:?} do not increase in publication order",
        published.iter().map(|v| v.seq).collect::<Vec<_>>()
    );
    ensure!(
        before.iter().all(|b| b.seq < published[0].seq),
        "a new version got a seq not above the earlier ones"
    );
    let all = ok("versions", storage.policy.versions().await)?;
    let numbers: Vec<i64> = all.iter().map(|v| v.seq).collect();
    let expected: Vec<i64> = (1..).take(all.len()).collect();
    ensure!(
        numbers == expected,
        "versions are numbered {numbers:?}, expected 1, 2, … without gaps"
    );
    for v in &published {
        ensure!(all.contains(v), "versions() lacks {}", v.seq);
        let found = ok(
            "version_by_hash",
            storage.policy.version_by_hash(&v.hash).await,
        )?;
        ensure!(
            found.as_ref() == Some(v),
            "version_by_hash({}) = {found:?}",
            v.hash
        );
    }
    for missing in [
        unique_hash(),
        published[0].hash.to_uppercase(),
        format!("{}\0", &published[0].hash[1..]),
        String::new(),
    ] {
        let found = ok(
            "version_by_hash",
            storage.policy.version_by_hash(&missing).await,
        )?;
        ensure!(found.is_none(), "version_by_hash({missing:?}) = {found:?}");
    }
    Ok(())
}

/// A hash is published once per scope: again for the same domain (or again for every domain)
/// is `AlreadyExists` and writes nothing, for another domain (byte-wise) or for every domain it
/// is a new version; by hash, the first published is found.
pub async fn same_hash_once_per_scope(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-scope");
    let first = version(Some(&domain), 0);
    let hash = first.hash.clone();
    let with = |domain: Option<String>| NewPolicyVersion {
        domain,
        title: "another title".to_owned(),
        ..first.clone()
    };
    let a = publish(storage, &first).await?;
    match storage.policy.publish(&with(Some(domain.clone()))).await {
        Err(StoreError::AlreadyExists(message)) => {
            ensure!(message.contains(&hash), "message {message:?} names no hash")
        }
        other => return Err(format!("same hash, same domain: {other:?}")),
    }
    let b = publish(storage, &with(Some(domain.to_uppercase()))).await?;
    let c = publish(storage, &with(None)).await?;
    match storage.policy.publish(&with(None)).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => return Err(format!("same hash for every domain twice: {other:?}")),
    }
    let stored: Vec<PolicyVersion> = ok("versions", storage.policy.versions().await)?
        .into_iter()
        .filter(|v| v.hash == hash)
        .collect();
    ensure!(
        stored == [a.clone(), b, c],
        "versions with the hash: {stored:?}"
    );
    let found = ok(
        "version_by_hash",
        storage.policy.version_by_hash(&hash).await,
    )?;
    ensure!(found == Some(a), "version_by_hash found {found:?}");
    Ok(())
}

/// The version in force: the domain's own versions when one is in effect, else those for every
/// domain; the latest `effective_at <= now`, ties to the latest published; domains compared
/// byte-wise; `None` before any version takes effect.
pub async fn current_version_rules(storage: &Storage) -> Result<(), String> {
    let base = time_base();
    let d = unique_domain("policy-current-d");
    let e = unique_domain("policy-current-e");
    let f = unique_domain("policy-current-f");
    let mut p = Vec::new();
    for (domain, at) in [
        (None, 10),     // 0: g1
        (None, 20),     // 1: g2
        (None, 20),     // 2: g3, ties with g2 and is published later
        (None, 1000),   // 3: g4, in the future for most of the checks
        (Some(&d), 30), // 4: d1
        (Some(&d), 15), // 5: d2, published later but effective earlier
        (Some(&d), 30), // 6: d3, ties with d1 and is published later
        (Some(&e), 5),  // 7: e1
    ] {
        p.push(publish(storage, &version(domain.map(String::as_str), base + at)).await?);
    }
    let seq = |i: usize| Some(p[i].seq);
    let upper = d.to_uppercase();
    let cases: [(&str, &str, i64, Option<i64>); 14] = [
        (
            "own not yet in effect, every domain's",
            &d,
            base + 10,
            seq(0),
        ),
        ("own not yet in effect", &d, base + 14, seq(0)),
        ("own in effect", &d, base + 15, seq(5)),
        (
            "own over a later one for every domain",
            &d,
            base + 25,
            seq(5),
        ),
        ("own tie to the later published", &d, base + 30, seq(6)),
        (
            "own over a future one for every domain",
            &d,
            base + 5000,
            seq(6),
        ),
        ("another domain's own", &e, base + 20, seq(7)),
        ("no own: every domain's, tie", &f, base + 20, seq(2)),
        ("no own: every domain's", &f, base + 19, seq(0)),
        ("no own: before the future one", &f, base + 999, seq(2)),
        ("no own: the future one", &f, base + 1000, seq(3)),
        ("domain in another case", &upper, base + 30, seq(2)),
        ("a domain with U+0000", "a\0b", base + 20, seq(2)),
        ("a domain of nothing", "", base + 20, seq(2)),
    ];
    for (what, domain, now, expected) in cases {
        let got = ok("current", storage.policy.current(domain, now).await)?;
        let got_seq = got.as_ref().map(|v| v.seq);
        ensure!(
            got_seq == expected,
            "{what}: current({domain:?}, base + {}) is seq {got_seq:?}, expected {expected:?}",
            now - base
        );
        if let Some(v) = got {
            ensure!(
                p.contains(&v),
                "{what}: current returned {v:?}, not what was published"
            );
        }
    }
    let none = ok("current", storage.policy.current(&f, i64::MIN).await)?;
    ensure!(none.is_none(), "current before every version: {none:?}");
    Ok(())
}

/// The chain grows one link at a time: the first receipt is seq 1 after [`GENESIS_HASH`]; each
/// later one is the last seq + 1 and names the last hash; anything else (a replayed or skipped
/// seq, a wrong prev_hash) is `Conflict` and writes nothing. The account need not exist.
pub async fn append_links_to_the_last(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-chain");
    let policy = unique_hash();
    let template = receipt("romeo", &domain, &policy, 100);
    let policy_store = &storage.policy;
    if last(storage).await?.is_none() {
        let first = |seq: i64, prev: &str| NewReceipt {
            seq,
            prev_hash: prev.to_owned(),
            ..template.clone()
        };
        let other = unique_hash();
        conflict(
            "first receipt at seq 2",
            policy_store.append_receipt(&first(2, GENESIS_HASH)).await,
        )?;
        conflict(
            "first receipt at seq 0",
            policy_store.append_receipt(&first(0, GENESIS_HASH)).await,
        )?;
        conflict(
            "first receipt after a hash that is not the genesis",
            policy_store.append_receipt(&first(1, &other)).await,
        )?;
        let genesis = first(1, GENESIS_HASH);
        let stored = ok(
            "append_receipt",
            policy_store.append_receipt(&genesis).await,
        )?;
        ensure!(
            stored == StoredReceipt::from(&genesis),
            "append returned {stored:?}"
        );
        let l = last(storage).await?;
        ensure!(l == Some(stored), "last_receipt after the first: {l:?}");
    }
    let end = append_next(storage, &template).await?;
    let next = |seq: i64, prev: &str| NewReceipt {
        seq,
        prev_hash: prev.to_owned(),
        hash: unique_hash(),
        ..template.clone()
    };
    conflict(
        "a replayed seq",
        policy_store
            .append_receipt(&next(end.seq, &end.prev_hash))
            .await,
    )?;
    conflict(
        "the last seq again after the last hash",
        policy_store.append_receipt(&next(end.seq, &end.hash)).await,
    )?;
    conflict(
        "a skipped seq",
        policy_store
            .append_receipt(&next(end.seq + 1_000_000, &end.hash))
            .await,
    )?;
    conflict(
        "a prev_hash that is not the last hash",
        policy_store
            .append_receipt(&next(end.seq + 1, &end.prev_hash))
            .await,
    )?;
    conflict(
        "the genesis hash in the middle of the chain",
        policy_store
            .append_receipt(&next(end.seq + 1, GENESIS_HASH))
            .await,
    )?;
    let good = next(end.seq + 1, &end.hash);
    let stored = match policy_store.append_receipt(&good).await {
        Ok(stored) => stored,
        // Another run appended in between: the chain still grows one link at a time.
        Err(StoreError::Conflict(_)) => append_next(storage, &good).await?,
        Err(e) => return Err(format!("append_receipt failed: {e}")),
    };
    let mine = receipts(storage, of_account("romeo", &domain)).await?;
    let stored_all: Vec<StoredReceipt> =
        mine.iter().filter(|r| r.seq >= end.seq).cloned().collect();
    ensure!(
        stored_all == [end.clone(), stored.clone()],
        "after the refused appends the account has {mine:?}"
    );
    ensure!(
        stored.seq > end.seq && stored.prev_hash != end.prev_hash,
        "appended {stored:?} after {end:?}"
    );
    Ok(())
}

/// Receipts come back whole (the limits themselves accepted, optional fields absent or set) and
/// each condition of the filter narrows the listing: account, domain, `since` (included),
/// `after_seq`, the limit; names compare byte-wise.
pub async fn receipts_round_trip_and_filters(storage: &Storage) -> Result<(), String> {
    let d = unique_domain("policy-filter");
    let e = format!("other.{d}");
    let policy = unique_hash();
    let long_name = "n".repeat(MAX_FIELD_BYTES);
    let mut plain = receipt("juliet", &d, &policy, 100);
    plain.resource = String::new();
    plain.remote_addr = None;
    plain.client = None;
    let mut full = receipt("juliet", &d, &policy, 300);
    full.resource = "r".repeat(MAX_FIELD_BYTES);
    full.method = "m".repeat(MAX_FIELD_BYTES);
    full.remote_addr = Some("a".repeat(MAX_FIELD_BYTES));
    full.client = Some("Gajim «nightly» ✓".to_owned());
    full.signature = "s".repeat(MAX_SIGNATURE_BYTES);
    let specs = [
        plain,                                      // 0
        receipt("nurse", &d, &policy, 200),         // 1
        full,                                       // 2
        receipt("juliet", &e, &policy, 400),        // 3
        receipt(&long_name, &d, &policy, 500),      // 4
        receipt("juliet", &d, &unique_hash(), 600), // 5
    ];
    let mut r = Vec::new();
    for spec in &specs {
        let stored = append_next(storage, spec).await?;
        let mut expected = StoredReceipt::from(spec);
        expected.seq = stored.seq;
        expected.prev_hash = stored.prev_hash.clone();
        expected.hash = stored.hash.clone();
        ensure!(
            stored == expected,
            "append returned {stored:?} for {spec:?}"
        );
        r.push(stored);
    }
    let by = |username: Option<&str>, domain: Option<&str>| ReceiptFilter {
        username: username.map(str::to_owned),
        domain: domain.map(str::to_owned),
        ..ReceiptFilter::default()
    };
    let cases: Vec<(&str, ReceiptFilter, Vec<usize>)> = vec![
        ("account", by(Some("juliet"), Some(&d)), vec![0, 2, 5]),
        ("domain", by(None, Some(&d)), vec![0, 1, 2, 4, 5]),
        ("other domain", by(None, Some(&e)), vec![3]),
        ("long username", by(Some(&long_name), Some(&d)), vec![4]),
        (
            "since (included)",
            ReceiptFilter {
                since: Some(300),
                ..by(None, Some(&d))
            },
            vec![2, 4, 5],
        ),
        (
            "after_seq and limit",
            ReceiptFilter {
                after_seq: Some(r[0].seq),
                limit: Some(2),
                ..by(None, Some(&d))
            },
            vec![1, 2],
        ),
        (
            "limit 0",
            ReceiptFilter {
                limit: Some(0),
                ..by(None, Some(&d))
            },
            vec![],
        ),
        (
            "username in another case",
            by(Some("Juliet"), Some(&d)),
            vec![],
        ),
        (
            "domain in another case",
            by(None, Some(&d.to_uppercase())),
            vec![],
        ),
        (
            "U+0000 in the username",
            by(Some("juliet\0"), Some(&d)),
            vec![],
        ),
        (
            "U+0000 in the domain",
            by(None, Some(&format!("{d}\0"))),
            vec![],
        ),
    ];
    for (what, filter, expected) in cases {
        let got = receipts(storage, filter).await?;
        let want: Vec<StoredReceipt> = expected.iter().map(|&i| r[i].clone()).collect();
        ensure!(
            got == want,
            "{what}: seqs {:?}, expected {:?}",
            seqs(&got),
            seqs(&want)
        );
    }
    Ok(())
}

/// Without a limit at most [`DEFAULT_RECEIPT_LIMIT`] receipts come back, the first ones by seq;
/// paging with `after_seq` returns the rest.
pub async fn default_limit_and_paging(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-many");
    let policy = unique_hash();
    let total = usize::try_from(DEFAULT_RECEIPT_LIMIT).unwrap_or(1000) + 5;
    let mut appended = Vec::with_capacity(total);
    for i in 0..total {
        let r = receipt("benvolio", &domain, &policy, i as i64);
        appended.push(append_next(storage, &r).await?.seq);
    }
    let filter = of_account("benvolio", &domain);
    let first = receipts(storage, filter.clone()).await?;
    ensure!(
        first.len() as u64 == DEFAULT_RECEIPT_LIMIT,
        "{} receipts listed without a limit, expected {DEFAULT_RECEIPT_LIMIT}",
        first.len()
    );
    let mut seen = seqs(&first);
    let rest = receipts(
        storage,
        ReceiptFilter {
            after_seq: seen.last().copied(),
            limit: Some(u64::MAX),
            ..filter
        },
    )
    .await?;
    seen.extend(seqs(&rest));
    ensure!(
        seen == appended,
        "paging listed {} receipts in the order {}, {} appended",
        seen.len(),
        if seen.windows(2).all(|w| w[0] < w[1]) {
            "of seq"
        } else {
            "not of seq"
        },
        appended.len()
    );
    Ok(())
}

/// Appenders racing for one position: exactly one wins, the others get `Conflict`, and the
/// last receipt is the winner's.
pub async fn concurrent_appends_one_winner(storage: &Storage) -> Result<(), String> {
    const RACERS: usize = 6;
    let domain = unique_domain("policy-race");
    let policy = unique_hash();
    for _ in 0..20 {
        let end = last(storage).await?;
        let (seq, prev) = end.as_ref().map_or((1, GENESIS_HASH.to_owned()), |l| {
            (l.seq + 1, l.hash.clone())
        });
        let ready = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..RACERS {
            let storage = storage.clone();
            let ready = ready.clone();
            let r = NewReceipt {
                seq,
                prev_hash: prev.clone(),
                ..receipt(&format!("racer{i}"), &domain, &policy, 1)
            };
            tasks.spawn(async move {
                ready.wait().await;
                storage.policy.append_receipt(&r).await
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.map_err(|e| format!("append task: {e}"))? {
                Ok(stored) => winners.push(stored),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(format!("append_receipt failed: {e}")),
            }
        }
        ensure!(
            winners.len() <= 1,
            "{} appenders won position {seq}",
            winners.len()
        );
        let now_last = last(storage).await?;
        if let Some(winner) = winners.pop() {
            let at = receipts(
                storage,
                ReceiptFilter {
                    after_seq: Some(seq - 1),
                    limit: Some(1),
                    ..ReceiptFilter::default()
                },
            )
            .await?;
            ensure!(at == [winner], "position {seq} holds {at:?}");
            return Ok(());
        }
        // Nobody won: only acceptable when another run took the position.
        ensure!(
            now_last.as_ref().map(|l| l.seq) >= Some(seq),
            "no appender won position {seq} of a chain that did not move"
        );
    }
    Err("another writer took every position raced for".to_owned())
}

/// Many writers appending at once leave one chain: seqs 1, 2, … without gaps, each receipt
/// naming the hash of the one before (the first [`GENESIS_HASH`]), every append there once.
pub async fn concurrent_chain_stays_linked(storage: &Storage) -> Result<(), String> {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let domain = unique_domain("policy-linked");
    let policy = unique_hash();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let storage = storage.clone();
        let r = receipt(&format!("writer{w}"), &domain, &policy, 1);
        writers.spawn(async move {
            let mut mine = Vec::with_capacity(EACH);
            for _ in 0..EACH {
                mine.push(append_next(&storage, &r).await?.seq);
            }
            Ok::<_, String>(mine)
        });
    }
    let mut appended = BTreeSet::new();
    while let Some(joined) = writers.join_next().await {
        appended.extend(joined.map_err(|e| format!("writer: {e}"))??);
    }
    ensure!(
        appended.len() == WRITERS * EACH,
        "{} distinct seqs for {} appends",
        appended.len(),
        WRITERS * EACH
    );
    let mine: BTreeSet<i64> = seqs(
        &receipts(
            storage,
            ReceiptFilter {
                domain: Some(domain.clone()),
                ..ReceiptFilter::default()
            },
        )
        .await?,
    )
    .into_iter()
    .collect();
    ensure!(
        mine == appended,
        "the domain lists {mine:?}, appended {appended:?}"
    );
    let mut prev: Option<StoredReceipt> = None;
    loop {
        let page = receipts(
            storage,
            ReceiptFilter {
                after_seq: prev.as_ref().map(|p| p.seq),
                ..ReceiptFilter::default()
            },
        )
        .await?;
        if page.is_empty() {
            break;
        }
        for r in page {
            let (seq, hash) = prev
                .as_ref()
                .map_or((1, GENESIS_HASH), |p| (p.seq + 1, p.hash.as_str()));
            ensure!(
                r.seq == seq && r.prev_hash == hash,
                "receipt {} (prev_hash {}) does not follow seq {} with hash {hash}",
                r.seq,
                r.prev_hash,
                seq - 1
            );
            prev = Some(r);
        }
    }
    Ok(())
}

/// The acceptance of a version is the account's latest receipt for that hash; other hashes,
/// accounts, or names in another case find nothing.
pub async fn acceptance_is_latest(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-accept");
    let (h1, h2, h3) = (unique_hash(), unique_hash(), unique_hash());
    let early = append_next(storage, &receipt("mercutio", &domain, &h1, 10)).await?;
    let other = append_next(storage, &receipt("mercutio", &domain, &h2, 20)).await?;
    // Accepted again later, with an earlier clock: the seq, not the time, decides.
    let late = append_next(storage, &receipt("mercutio", &domain, &h1, 5)).await?;
    let _ = append_next(storage, &receipt("tybalt", &domain, &h3, 30)).await?;
    let cases: [(&str, &str, &str, &str, Option<&StoredReceipt>); 7] = [
        ("accepted twice", "mercutio", &domain, &h1, Some(&late)),
        ("accepted once", "mercutio", &domain, &h2, Some(&other)),
        ("another account's hash", "mercutio", &domain, &h3, None),
        ("another account", "tybalt", &domain, &h1, None),
        ("username in another case", "Mercutio", &domain, &h1, None),
        (
            "hash in another case",
            "mercutio",
            &domain,
            &h1.to_uppercase(),
            None,
        ),
        ("U+0000 in the username", "mercutio\0", &domain, &h1, None),
    ];
    for (what, username, domain, hash, expected) in cases {
        let got = ok(
            "acceptance",
            storage.policy.acceptance(username, domain, hash).await,
        )?;
        ensure!(
            got.as_ref() == expected,
            "{what}: acceptance is {got:?}, expected {expected:?}"
        );
    }
    ensure!(early.seq < late.seq, "seqs {} and {}", early.seq, late.seq);
    Ok(())
}

/// Receipts are evidence: removing the account leaves them, and the account need never have
/// existed.
pub async fn receipts_outlive_accounts(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-outlive");
    let policy = unique_hash();
    create_account(storage, "lady", &domain).await?;
    let kept = append_next(storage, &receipt("lady", &domain, &policy, 1)).await?;
    ok(
        "remove_user",
        storage.users.remove_user("lady", &domain).await,
    )?;
    let listed = receipts(storage, of_account("lady", &domain)).await?;
    ensure!(
        listed == [kept.clone()],
        "after removal the account lists {listed:?}"
    );
    let accepted = ok(
        "acceptance",
        storage.policy.acceptance("lady", &domain, &policy).await,
    )?;
    ensure!(
        accepted == Some(kept),
        "acceptance after removal: {accepted:?}"
    );
    let ghost = append_next(storage, &receipt("never", &domain, &policy, 2)).await?;
    let listed = receipts(storage, of_account("never", &domain)).await?;
    ensure!(
        listed == [ghost],
        "a receipt of no account lists {listed:?}"
    );
    Ok(())
}

/// A version or receipt the store cannot hold is refused with `InvalidInput` (before the chain
/// is looked at) and nothing is written.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("policy-invalid");
    let good = version(Some(&domain), 0);
    let long = "x".repeat(MAX_FIELD_BYTES + 1);
    let with = |f: &dyn Fn(&mut NewPolicyVersion)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let versions: Vec<(&str, NewPolicyVersion)> = vec![
        (
            "an upper-case hash",
            with(&|v| v.hash = v.hash.to_uppercase()),
        ),
        ("a short hash", with(&|v| v.hash.truncate(63))),
        ("a long hash", with(&|v| v.hash.push('0'))),
        (
            "a hash that is not hex",
            with(&|v| v.hash.replace_range(..1, "g")),
        ),
        ("an empty title", with(&|v| v.title.clear())),
        (
            "an oversized title",
            with(&|v| v.title = "t".repeat(MAX_TITLE_BYTES + 1)),
        ),
        ("an empty text", with(&|v| v.text.clear())),
        (
            "an oversized text",
            with(&|v| v.text = "t".repeat(MAX_TEXT_BYTES + 1)),
        ),
        ("format html", with(&|v| v.format = "html".into())),
        ("format Markdown", with(&|v| v.format = "Markdown".into())),
        ("an empty format", with(&|v| v.format.clear())),
        (
            "too many categories",
            with(&|v| v.categories = vec!["c".into(); MAX_CATEGORIES + 1]),
        ),
        (
            "an empty category",
            with(&|v| v.categories.push(String::new())),
        ),
        (
            "an oversized category",
            with(&|v| v.categories.push("c".repeat(MAX_CATEGORY_BYTES + 1))),
        ),
        ("an empty domain", with(&|v| v.domain = Some(String::new()))),
        (
            "an oversized domain",
            with(&|v| v.domain = Some(long.clone())),
        ),
        ("an empty publisher", with(&|v| v.published_by.clear())),
        (
            "an oversized publisher",
            with(&|v| v.published_by = long.clone()),
        ),
        ("U+0000 in the title", with(&|v| v.title.push('\0'))),
        ("U+0000 in the text", with(&|v| v.text.push('\0'))),
        (
            "U+0000 in a category",
            with(&|v| v.categories.push("a\0".into())),
        ),
        (
            "U+0000 in the domain",
            with(&|v| v.domain = Some(format!("{domain}\0"))),
        ),
        (
            "U+0000 in the publisher",
            with(&|v| v.published_by.push('\0')),
        ),
    ];
    for (what, v) in &versions {
        invalid_input(
            &format!("publish with {what}"),
            storage.policy.publish(v).await,
        )?;
    }
    let written: Vec<PolicyVersion> = ok("versions", storage.policy.versions().await)?
        .into_iter()
        .filter(|v| v.hash.eq_ignore_ascii_case(&good.hash))
        .collect();
    ensure!(written.is_empty(), "a refused publish wrote {written:?}");

    // Seq 0 after the genesis hash is never the next link: only validation can answer first.
    let good = NewReceipt {
        seq: 0,
        ..receipt("paris", &domain, &unique_hash(), 1)
    };
    let with = |f: &dyn Fn(&mut NewReceipt)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    let receipts_cases: Vec<(&str, NewReceipt)> = vec![
        ("an empty username", with(&|r| r.username.clear())),
        (
            "an oversized username",
            with(&|r| r.username = long.clone()),
        ),
        ("an empty domain", with(&|r| r.domain.clear())),
        ("an oversized domain", with(&|r| r.domain = long.clone())),
        (
            "an oversized resource",
            with(&|r| r.resource = long.clone()),
        ),
        (
            "an upper-case policy hash",
            with(&|r| r.policy_hash = r.policy_hash.to_uppercase()),
        ),
        ("an empty policy hash", with(&|r| r.policy_hash.clear())),
        ("an empty method", with(&|r| r.method.clear())),
        ("an oversized method", with(&|r| r.method = long.clone())),
        (
            "an oversized remote address",
            with(&|r| r.remote_addr = Some(long.clone())),
        ),
        (
            "an oversized client",
            with(&|r| r.client = Some(long.clone())),
        ),
        ("a short prev_hash", with(&|r| r.prev_hash.truncate(10))),
        (
            "an upper-case hash",
            with(&|r| r.hash = r.hash.to_uppercase()),
        ),
        ("an empty hash", with(&|r| r.hash.clear())),
        ("an empty signature", with(&|r| r.signature.clear())),
        (
            "an oversized signature",
            with(&|r| r.signature = "s".repeat(MAX_SIGNATURE_BYTES + 1)),
        ),
        ("U+0000 in the username", with(&|r| r.username.push('\0'))),
        ("U+0000 in the resource", with(&|r| r.resource.push('\0'))),
        ("U+0000 in the method", with(&|r| r.method.push('\0'))),
        (
            "U+0000 in the client",
            with(&|r| r.client = Some("a\0".into())),
        ),
        ("U+0000 in the signature", with(&|r| r.signature.push('\0'))),
    ];
    for (what, r) in &receipts_cases {
        invalid_input(
            &format!("append_receipt with {what}"),
            storage.policy.append_receipt(r).await,
        )?;
    }
    let written = receipts(
        storage,
        ReceiptFilter {
            domain: Some(domain.clone()),
            ..ReceiptFilter::default()
        },
    )
    .await?;
    ensure!(written.is_empty(), "a refused append wrote {written:?}");
    Ok(())
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("policy::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    // The chain check first: on a fresh database it is the one that sees the chain empty.
    run!(
        append_links_to_the_last,
        publish_and_read,
        same_hash_once_per_scope,
        current_version_rules,
        receipts_round_trip_and_filters,
        default_limit_and_paging,
        concurrent_appends_one_winner,
        concurrent_chain_stays_linked,
        acceptance_is_latest,
        receipts_outlive_accounts,
        invalid_input_refused,
    );
    failures
}
