//! Conformance checks for [`EvidenceStore`](super::EvidenceStore): each function checks one
//! behaviour on domains and accounts of its own and returns what went wrong.
//!
//! The chain is shared by everything on the database, so the checks look only at their own
//! records and append at whatever the end of the chain is when they come (trying again when
//! another writer took the position first). The first record's rule ([`super::GENESIS_HASH`],
//! seq 1) is checked when the chain is empty, as on every fresh database the test suites open.
//!
//! A purge reaches every record of the database, so the checks that expect a payload to stay
//! create their records at [`LATER`], a time no purge here reaches, and the purge check tells
//! its own purges from others' by `purged_at`: each of its purges passes a `now` of its own.

use std::collections::BTreeSet;

use super::{
    DEFAULT_EVIDENCE_LIMIT, DIRECTIONS, EvidenceFilter, GENESIS_HASH, MAX_FIELD_BYTES,
    MAX_PAYLOAD_BYTES, MAX_REVIEW_REASON_BYTES, MAX_SIGNATURE_BYTES, NewEvidence, REVIEW_PENDING,
    REVIEW_REJECTED, REVIEW_RELEASED, StoredEvidence,
};
use crate::conformance::{create_account, invalid_input, not_found, ok, unique_domain};
use crate::{MAX_JID_BYTES, Storage, StoreError};

/// The creation time of records that must keep their payload: past any `before` the purge
/// check passes (those are around the current time in nanoseconds, below 2^61 until 2043).
pub const LATER: i64 = 1 << 62;

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

/// Now in nanoseconds, strictly greater than every earlier value this process got: times that
/// no earlier run used.
fn unique_time() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let now = i64::try_from(nanos).unwrap_or(LATER / 2);
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(previous + 1)
}

fn evidence(username: &str, domain: &str, created_at: i64) -> NewEvidence {
    NewEvidence {
        seq: 0,
        created_at,
        rule_id: "no-card-numbers".to_owned(),
        category: "pci".to_owned(),
        actions: "block,alert".to_owned(),
        username: username.to_owned(),
        domain: domain.to_owned(),
        resource: "phone".to_owned(),
        peer: "tybalt@capulet.example/sword".to_owned(),
        direction: "outgoing".to_owned(),
        remote_addr: Some("192.0.2.7:50000".to_owned()),
        client: Some("Conversations 2.16".to_owned()),
        sealed: false,
        payload: r#"{"body":"4111 1111 1111 1111","id":"m1"}"#.to_owned(),
        payload_hash: unique_hash(),
        review: None,
        held: None,
        prev_hash: GENESIS_HASH.to_owned(),
        hash: unique_hash(),
        signature: "c2lnbmF0dXJl".to_owned(),
    }
}

async fn last(storage: &Storage) -> Result<Option<StoredEvidence>, String> {
    ok("last", storage.evidence.last().await)
}

async fn get(storage: &Storage, seq: i64) -> Result<Option<StoredEvidence>, String> {
    ok("get", storage.evidence.get(seq).await)
}

/// Appends `e` at the current end of the chain (its seq and prev_hash set from the last
/// record, a hash of its own), trying again when another writer took the position first.
async fn append_next(storage: &Storage, e: &NewEvidence) -> Result<StoredEvidence, String> {
    for _ in 0..1000 {
        let mut next = e.clone();
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
        match storage.evidence.append(&next).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict(_)) => tokio::task::yield_now().await,
            Err(err) => return Err(format!("append failed: {err}")),
        }
    }
    Err("append kept conflicting 1000 times".to_owned())
}

/// What `append_next(spec)` must have stored: `spec` at the position and with the hashes the
/// store reported.
fn expected(spec: &NewEvidence, stored: &StoredEvidence) -> StoredEvidence {
    let mut want = StoredEvidence::from(spec);
    want.seq = stored.seq;
    want.prev_hash = stored.prev_hash.clone();
    want.hash = stored.hash.clone();
    want
}

fn conflict<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) -> Result<(), String> {
    match result {
        Err(StoreError::Conflict(message)) if !message.is_empty() => Ok(()),
        other => Err(format!("{what}: expected Conflict, got {other:?}")),
    }
}

async fn list(storage: &Storage, f: EvidenceFilter) -> Result<Vec<StoredEvidence>, String> {
    ok("list", storage.evidence.list(&f).await)
}

fn of_domain(domain: &str) -> EvidenceFilter {
    EvidenceFilter {
        domain: Some(domain.to_owned()),
        limit: Some(u64::MAX),
        ..EvidenceFilter::default()
    }
}

fn seqs(list: &[StoredEvidence]) -> Vec<i64> {
    list.iter().map(|e| e.seq).collect()
}

/// Every record of the database, page by page.
async fn everything(storage: &Storage) -> Result<Vec<StoredEvidence>, String> {
    let mut all: Vec<StoredEvidence> = Vec::new();
    loop {
        let page = list(
            storage,
            EvidenceFilter {
                after_seq: all.last().map(|e| e.seq),
                ..EvidenceFilter::default()
            },
        )
        .await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}

/// The chain grows one link at a time: the first record is seq 1 after [`GENESIS_HASH`]; each
/// later one is the last seq + 1 and names the last hash; anything else (a replayed or skipped
/// seq, a wrong prev_hash) is `Conflict` and writes nothing. The account need not exist.
pub async fn append_links_to_the_last(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-chain");
    let template = evidence("romeo", &domain, LATER);
    let store = &storage.evidence;
    if last(storage).await?.is_none() {
        let first = |seq: i64, prev: &str| NewEvidence {
            seq,
            prev_hash: prev.to_owned(),
            ..template.clone()
        };
        conflict(
            "first record at seq 2",
            store.append(&first(2, GENESIS_HASH)).await,
        )?;
        conflict(
            "first record at seq 0",
            store.append(&first(0, GENESIS_HASH)).await,
        )?;
        conflict(
            "first record after a hash that is not the genesis",
            store.append(&first(1, &unique_hash())).await,
        )?;
        let genesis = first(1, GENESIS_HASH);
        let stored = ok("append", store.append(&genesis).await)?;
        ensure!(
            stored == StoredEvidence::from(&genesis),
            "append returned {stored:?}"
        );
        let l = last(storage).await?;
        ensure!(l.as_ref() == Some(&stored), "last after the first: {l:?}");
        let at_one = get(storage, 1).await?;
        ensure!(at_one == Some(stored), "get(1) after the first: {at_one:?}");
    }
    let end = append_next(storage, &template).await?;
    let next = |seq: i64, prev: &str| NewEvidence {
        seq,
        prev_hash: prev.to_owned(),
        hash: unique_hash(),
        ..template.clone()
    };
    conflict(
        "a replayed seq",
        store.append(&next(end.seq, &end.prev_hash)).await,
    )?;
    conflict(
        "the last seq again after the last hash",
        store.append(&next(end.seq, &end.hash)).await,
    )?;
    conflict(
        "a skipped seq",
        store.append(&next(end.seq + 1_000_000, &end.hash)).await,
    )?;
    conflict(
        "a prev_hash that is not the last hash",
        store.append(&next(end.seq + 1, &end.prev_hash)).await,
    )?;
    conflict(
        "the genesis hash in the middle of the chain",
        store.append(&next(end.seq + 1, GENESIS_HASH)).await,
    )?;
    let good = next(end.seq + 1, &end.hash);
    let stored = match store.append(&good).await {
        Ok(stored) => stored,
        // Another run appended in between: the chain still grows one link at a time.
        Err(StoreError::Conflict(_)) => append_next(storage, &good).await?,
        Err(e) => return Err(format!("append failed: {e}")),
    };
    let mine = list(storage, of_domain(&domain)).await?;
    let after_end: Vec<StoredEvidence> =
        mine.iter().filter(|e| e.seq >= end.seq).cloned().collect();
    ensure!(
        after_end == [end.clone(), stored.clone()],
        "after the refused appends the domain has seqs {:?}",
        seqs(&mine)
    );
    ensure!(
        stored.seq > end.seq && stored.prev_hash != end.prev_hash,
        "appended {stored:?} after {end:?}"
    );
    Ok(())
}

/// Records come back whole, from `append`, `get` and `list` (every direction, sealed or not,
/// optional fields absent or set, a pending review, the limits themselves accepted); `get` of
/// a position with no record is `None`.
pub async fn round_trip_and_get(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-round-trip");
    let mut plain = evidence("juliet", &domain, LATER);
    plain.resource = String::new();
    plain.peer = String::new();
    plain.remote_addr = None;
    plain.client = None;
    plain.direction = "report".to_owned();
    let mut full = evidence("juliet", &domain, i64::MAX);
    full.rule_id = "r".repeat(MAX_FIELD_BYTES);
    full.category = "c".repeat(MAX_FIELD_BYTES);
    full.actions = "a".repeat(MAX_FIELD_BYTES);
    full.resource = "é".repeat(MAX_FIELD_BYTES / 2);
    full.peer = "p".repeat(MAX_JID_BYTES);
    full.remote_addr = Some("[2001:db8::7]:5222".to_owned());
    full.client = Some("Gajim «nightly» ✓".to_owned());
    full.signature = "s".repeat(MAX_SIGNATURE_BYTES);
    let mut sealed = evidence(&"n".repeat(MAX_FIELD_BYTES), &domain, LATER + 1);
    sealed.sealed = true;
    sealed.payload = "bm90IHJlYWxseSBhIHNlYWxlZCBib3g=".to_owned();
    sealed.direction = "incoming".to_owned();
    sealed.review = Some(REVIEW_PENDING.to_owned());
    sealed.held = Some(
        "<message xmlns='jabber:client' to='tybalt@capulet.example'><body>«à bientôt» \u{1F600}</body></message>"
            .to_owned(),
    );
    let specs = [plain, full, sealed];
    let mut directions = BTreeSet::new();
    let mut stored_all = Vec::new();
    for spec in &specs {
        let stored = append_next(storage, spec).await?;
        let want = expected(spec, &stored);
        ensure!(stored == want, "append returned {stored:?} for {spec:?}");
        let got = get(storage, stored.seq).await?;
        ensure!(
            got.as_ref() == Some(&want),
            "get({}) = {got:?}, expected {want:?}",
            stored.seq
        );
        directions.insert(stored.direction.clone());
        stored_all.push(stored);
    }
    ensure!(
        directions
            == DIRECTIONS
                .iter()
                .map(|d| (*d).to_owned())
                .collect::<BTreeSet<String>>(),
        "not every direction was tried: {directions:?}"
    );
    let listed = list(storage, of_domain(&domain)).await?;
    ensure!(
        listed == stored_all,
        "the domain lists {listed:?}, appended {stored_all:?}"
    );
    let end = last(storage).await?.map(|l| l.seq);
    ensure!(
        end >= stored_all.last().map(|e| e.seq),
        "last is seq {end:?}, before the records just appended"
    );
    for missing in [0, -1, i64::MIN, i64::MAX] {
        let got = get(storage, missing).await?;
        ensure!(got.is_none(), "get({missing}) = {got:?}");
    }
    Ok(())
}

/// Each condition of the filter narrows the listing: account, domain, rule, `since` and
/// `until` (both included), `after_seq`, review state, the limit; names compare byte-wise.
pub async fn filters(storage: &Storage) -> Result<(), String> {
    let d = unique_domain("evidence-filter");
    let e = format!("other.{d}");
    let with_rule = |mut ev: NewEvidence, rule: &str| {
        ev.rule_id = rule.to_owned();
        ev
    };
    let mut pending = evidence("juliet", &d, LATER + 400);
    pending.review = Some(REVIEW_PENDING.to_owned());
    let specs = [
        evidence("juliet", &d, LATER + 100),                 // 0
        evidence("nurse", &d, LATER + 200),                  // 1
        with_rule(evidence("juliet", &d, LATER + 300), "x"), // 2
        evidence("juliet", &e, LATER + 300),                 // 3
        pending,                                             // 4
        with_rule(evidence("nurse", &d, LATER + 500), "x"),  // 5
    ];
    let mut r = Vec::new();
    for spec in &specs {
        r.push(append_next(storage, spec).await?);
    }
    let by = |username: Option<&str>, domain: Option<&str>| EvidenceFilter {
        username: username.map(str::to_owned),
        domain: domain.map(str::to_owned),
        ..EvidenceFilter::default()
    };
    let in_d = || by(None, Some(&d));
    let cases: Vec<(&str, EvidenceFilter, Vec<usize>)> = vec![
        ("account", by(Some("juliet"), Some(&d)), vec![0, 2, 4]),
        ("domain", in_d(), vec![0, 1, 2, 4, 5]),
        ("other domain", by(None, Some(&e)), vec![3]),
        (
            "rule",
            EvidenceFilter {
                rule_id: Some("x".to_owned()),
                ..in_d()
            },
            vec![2, 5],
        ),
        (
            "since (included)",
            EvidenceFilter {
                since: Some(LATER + 300),
                ..in_d()
            },
            vec![2, 4, 5],
        ),
        (
            "until (included)",
            EvidenceFilter {
                until: Some(LATER + 200),
                ..in_d()
            },
            vec![0, 1],
        ),
        (
            "since and until",
            EvidenceFilter {
                since: Some(LATER + 200),
                until: Some(LATER + 400),
                ..in_d()
            },
            vec![1, 2, 4],
        ),
        (
            "pending review",
            EvidenceFilter {
                review: Some(REVIEW_PENDING.to_owned()),
                ..in_d()
            },
            vec![4],
        ),
        (
            "a review state no record has",
            EvidenceFilter {
                review: Some(REVIEW_RELEASED.to_owned()),
                ..in_d()
            },
            vec![],
        ),
        (
            "after_seq and limit",
            EvidenceFilter {
                after_seq: Some(r[0].seq),
                limit: Some(2),
                ..in_d()
            },
            vec![1, 2],
        ),
        (
            "limit 0",
            EvidenceFilter {
                limit: Some(0),
                ..in_d()
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
            "rule in another case",
            EvidenceFilter {
                rule_id: Some("X".to_owned()),
                ..in_d()
            },
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
        (
            "U+0000 in the rule",
            EvidenceFilter {
                rule_id: Some("x\0".to_owned()),
                ..in_d()
            },
            vec![],
        ),
        (
            "U+0000 in the review",
            EvidenceFilter {
                review: Some("pending\0".to_owned()),
                ..in_d()
            },
            vec![],
        ),
    ];
    for (what, filter, expected) in cases {
        let got = list(storage, filter).await?;
        let want: Vec<StoredEvidence> = expected.iter().map(|&i| r[i].clone()).collect();
        ensure!(
            got == want,
            "{what}: seqs {:?}, expected {:?}",
            seqs(&got),
            seqs(&want)
        );
    }
    Ok(())
}

/// Without a limit at most [`DEFAULT_EVIDENCE_LIMIT`] records come back, the first ones by
/// seq; paging with `after_seq` returns the rest.
pub async fn default_limit_and_paging(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-many");
    let total = usize::try_from(DEFAULT_EVIDENCE_LIMIT).unwrap_or(100) + 5;
    let mut appended = Vec::with_capacity(total);
    for i in 0..total {
        let e = evidence("benvolio", &domain, LATER + i as i64);
        appended.push(append_next(storage, &e).await?.seq);
    }
    let filter = EvidenceFilter {
        domain: Some(domain.clone()),
        ..EvidenceFilter::default()
    };
    let first = list(storage, filter.clone()).await?;
    ensure!(
        first.len() as u64 == DEFAULT_EVIDENCE_LIMIT,
        "{} records listed without a limit, expected {DEFAULT_EVIDENCE_LIMIT}",
        first.len()
    );
    let mut seen = seqs(&first);
    let rest = list(
        storage,
        EvidenceFilter {
            after_seq: seen.last().copied(),
            limit: Some(u64::MAX),
            ..filter
        },
    )
    .await?;
    seen.extend(seqs(&rest));
    ensure!(
        seen == appended,
        "paging listed {} records in the order {}, {} appended",
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

/// Payloads of [`MAX_PAYLOAD_BYTES`] (multi-byte text, a sealed box's base64) are kept byte for
/// byte and listed together; one byte more is `InvalidInput`.
pub async fn large_payloads(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-large");
    let mut text = evidence("lady", &domain, LATER);
    text.payload = format!(
        "{{\"body\":\"x{}\"}}",
        "é".repeat((MAX_PAYLOAD_BYTES - 12) / 2)
    );
    let mut box_ = evidence("lady", &domain, LATER);
    box_.sealed = true;
    box_.payload = "QUJD".repeat(MAX_PAYLOAD_BYTES / 4);
    let mut mixed = evidence("lady", &domain, LATER);
    mixed.payload = (0..MAX_PAYLOAD_BYTES)
        .map(|i| char::from(b' ' + (i % 95) as u8))
        .collect();
    let mut stored = Vec::new();
    for spec in [&text, &box_, &mixed] {
        ensure!(
            spec.payload.len() == MAX_PAYLOAD_BYTES,
            "the check built a payload of {} bytes",
            spec.payload.len()
        );
        let got = append_next(storage, spec).await?;
        let want = expected(spec, &got);
        ensure!(
            got == want,
            "append of a {} byte payload returned another record",
            spec.payload.len()
        );
        let read = get(storage, got.seq).await?;
        ensure!(
            read.as_ref() == Some(&want),
            "get({}) did not return the {} byte payload as appended",
            got.seq,
            spec.payload.len()
        );
        stored.push(want);
    }
    let listed = list(storage, of_domain(&domain)).await?;
    ensure!(
        listed == stored,
        "the domain lists seqs {:?} (payload sizes {:?})",
        seqs(&listed),
        listed
            .iter()
            .map(|e| e.payload.as_ref().map(String::len))
            .collect::<Vec<_>>()
    );
    let mut over = evidence("lady", &domain, LATER);
    over.payload = "x".repeat(MAX_PAYLOAD_BYTES + 1);
    invalid_input(
        "append of an oversized payload",
        storage.evidence.append(&over).await,
    )?;
    let after = list(storage, of_domain(&domain)).await?;
    ensure!(
        seqs(&after) == seqs(&stored),
        "an oversized payload was written"
    );
    Ok(())
}

/// A legal hold is set and lifted on one record, changing nothing else; `false` for a position
/// with no record.
pub async fn legal_hold(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-hold");
    let a = append_next(storage, &evidence("capulet", &domain, LATER)).await?;
    let b = append_next(storage, &evidence("capulet", &domain, LATER)).await?;
    for (hold, what) in [(true, "put"), (true, "put again"), (false, "lifted")] {
        let found = ok(
            "set_legal_hold",
            storage.evidence.set_legal_hold(a.seq, hold).await,
        )?;
        ensure!(found, "set_legal_hold({}, {hold}) found nothing", a.seq);
        let got = get(storage, a.seq).await?;
        let want = StoredEvidence {
            legal_hold: hold,
            ..a.clone()
        };
        ensure!(
            got.as_ref() == Some(&want),
            "hold {what}: the record reads {got:?}"
        );
        let other = get(storage, b.seq).await?;
        ensure!(
            other.as_ref() == Some(&b),
            "hold {what} on {} changed {}: {other:?}",
            a.seq,
            b.seq
        );
    }
    for missing in [0, -1, i64::MAX] {
        let found = ok(
            "set_legal_hold",
            storage.evidence.set_legal_hold(missing, true).await,
        )?;
        ensure!(!found, "set_legal_hold({missing}) found a record");
    }
    Ok(())
}

/// A pending review is decided once: `released` or `rejected` with who, when and why; deciding it
/// again, or deciding a record never held for review, is `Conflict` and changes nothing; a
/// position with no record is `NotFound`; a state other than the two decisions or an empty
/// reviewer is `InvalidInput`, even for a missing record. Reviewers racing for one record:
/// exactly one wins.
pub async fn review_moves_only_pending(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-review");
    let held = |created_at: i64| NewEvidence {
        review: Some(REVIEW_PENDING.to_owned()),
        ..evidence("paris", &domain, created_at)
    };
    let released = append_next(storage, &held(LATER)).await?;
    let rejected = append_next(storage, &held(LATER)).await?;
    let also = append_next(storage, &held(LATER)).await?;
    let never = append_next(storage, &evidence("paris", &domain, LATER)).await?;
    let store = &storage.evidence;
    let why = "r".repeat(MAX_REVIEW_REASON_BYTES);
    for (record, state, by, at, reason) in [
        (
            &released,
            REVIEW_RELEASED,
            "officer@montague.example",
            7,
            Some("a misunderstanding « ✓ »"),
        ),
        (&rejected, REVIEW_REJECTED, "causeriectl:root", -3, None),
        (&also, REVIEW_REJECTED, "officer", 8, Some(why.as_str())),
    ] {
        let got = ok(
            "set_review",
            store.set_review(record.seq, state, by, at, reason).await,
        )?;
        let want = StoredEvidence {
            review: Some(state.to_owned()),
            reviewed_by: Some(by.to_owned()),
            reviewed_at: Some(at),
            review_reason: reason.map(str::to_owned),
            ..record.clone()
        };
        ensure!(got == want, "set_review({state}) returned {got:?}");
        let read = get(storage, record.seq).await?;
        ensure!(
            read == Some(want.clone()),
            "after {state} get reads {read:?}"
        );
        for again in [REVIEW_RELEASED, REVIEW_REJECTED] {
            conflict(
                &format!("{again} after {state}"),
                store
                    .set_review(record.seq, again, "another", 9, Some("again"))
                    .await,
            )?;
        }
        let read = get(storage, record.seq).await?;
        ensure!(
            read == Some(want),
            "a refused second decision changed the record: {read:?}"
        );
    }
    conflict(
        "a decision on a record never held for review",
        store
            .set_review(never.seq, REVIEW_RELEASED, "officer", 1, None)
            .await,
    )?;
    let read = get(storage, never.seq).await?;
    ensure!(
        read.as_ref() == Some(&never),
        "a refused decision changed the record: {read:?}"
    );
    for missing in [0, -1, i64::MAX] {
        not_found(
            &format!("set_review({missing})"),
            store
                .set_review(missing, REVIEW_RELEASED, "officer", 1, None)
                .await,
        )?;
    }
    let reviewer = "r".repeat(MAX_JID_BYTES + 1);
    let long_reason = "r".repeat(MAX_REVIEW_REASON_BYTES + 1);
    for (what, state, by, reason) in [
        ("pending", REVIEW_PENDING, "officer", None),
        ("an unknown state", "approved", "officer", None),
        ("a state in another case", "Released", "officer", None),
        ("an empty state", "", "officer", None),
        ("an empty reviewer", REVIEW_RELEASED, "", None),
        (
            "an oversized reviewer",
            REVIEW_RELEASED,
            reviewer.as_str(),
            None,
        ),
        ("U+0000 in the reviewer", REVIEW_REJECTED, "officer\0", None),
        (
            "an oversized reason",
            REVIEW_RELEASED,
            "officer",
            Some(long_reason.as_str()),
        ),
        (
            "U+0000 in the reason",
            REVIEW_REJECTED,
            "officer",
            Some("a\0"),
        ),
    ] {
        for seq in [never.seq, 0] {
            invalid_input(
                &format!("set_review({seq}) with {what}"),
                store.set_review(seq, state, by, 1, reason).await,
            )?;
        }
    }

    const REVIEWERS: usize = 6;
    let raced = append_next(storage, &held(LATER)).await?;
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(REVIEWERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..REVIEWERS {
        let storage = storage.clone();
        let ready = ready.clone();
        let seq = raced.seq;
        tasks.spawn(async move {
            ready.wait().await;
            let state = if i % 2 == 0 {
                REVIEW_RELEASED
            } else {
                REVIEW_REJECTED
            };
            storage
                .evidence
                .set_review(seq, state, &format!("officer{i}"), i as i64, None)
                .await
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| format!("review task: {e}"))? {
            Ok(record) => winners.push(record),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(format!("set_review failed: {e}")),
        }
    }
    ensure!(
        winners.len() == 1,
        "{} reviewers won record {}",
        winners.len(),
        raced.seq
    );
    let read = get(storage, raced.seq).await?;
    ensure!(
        read.as_ref() == winners.first(),
        "the record reads {read:?}, the winner got {winners:?}"
    );
    Ok(())
}

/// The decided reviews not carried out yet are listed in seq order until claimed; a claim
/// returns the record with the held message and `handled_at`, and leaves it stored with the
/// held message emptied; a claim is made once (racing claimers: exactly one gets it); pending,
/// never-held and missing records are not claimed (`None`, `NotFound`).
pub async fn decisions_are_carried_out_once(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-carry-out");
    let store = &storage.evidence;
    let held = |body: &str| NewEvidence {
        review: Some(REVIEW_PENDING.to_owned()),
        held: Some(format!(
            "<message xmlns='jabber:client' from='nurse@{domain}/r' to='romeo@montague.example' \
             type='chat'><body>{body}</body></message>"
        )),
        ..evidence("nurse", &domain, LATER)
    };
    let released = append_next(storage, &held("to be released ✓")).await?;
    let rejected = append_next(storage, &held("to be rejected")).await?;
    let raced = append_next(storage, &held("raced for")).await?;
    let pending = append_next(storage, &held("still pending")).await?;
    let never = append_next(storage, &evidence("nurse", &domain, LATER)).await?;
    let mine = |list: Vec<StoredEvidence>| -> Vec<StoredEvidence> {
        list.into_iter().filter(|e| e.domain == domain).collect()
    };
    let unhandled = |limit: u64| async move {
        ok(
            "unhandled_decisions",
            storage.evidence.unhandled_decisions(limit).await,
        )
    };
    ensure!(
        mine(unhandled(u64::MAX).await?).is_empty(),
        "records pending review are listed as decided"
    );
    for record in [&released, &pending, &never] {
        let claimed = ok("claim_decision", store.claim_decision(record.seq, 1).await)?;
        ensure!(
            claimed.is_none(),
            "an undecided record {} was claimed: {claimed:?}",
            record.seq
        );
        let read = get(storage, record.seq).await?;
        ensure!(
            read.as_ref() == Some(record),
            "a refused claim changed record {}: {read:?}",
            record.seq
        );
    }
    for missing in [0, -1, i64::MAX] {
        not_found(
            &format!("claim_decision({missing})"),
            store.claim_decision(missing, 1).await,
        )?;
    }
    let mut decided = Vec::new();
    for (record, state) in [
        (&released, REVIEW_RELEASED),
        (&rejected, REVIEW_REJECTED),
        (&raced, REVIEW_RELEASED),
    ] {
        decided.push(ok(
            "set_review",
            store
                .set_review(record.seq, state, "officer", 5, Some("seen"))
                .await,
        )?);
    }
    let listed = mine(unhandled(u64::MAX).await?);
    ensure!(
        listed == decided,
        "the decisions to carry out are {:?}, expected {:?}",
        seqs(&listed),
        seqs(&decided)
    );
    ensure!(
        decided
            .iter()
            .all(|d| d.held.is_some() && d.handled_at.is_none()),
        "a decision emptied the held message or set handled_at: {decided:?}"
    );
    let all = unhandled(u64::MAX).await?;
    ensure!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "the decisions are not in seq order: {:?}",
        seqs(&all)
    );
    let one = unhandled(1).await?;
    ensure!(one.len() == 1, "a limit of 1 listed {}", one.len());
    ensure!(
        unhandled(0).await?.is_empty(),
        "a limit of 0 listed records"
    );

    for (record, at) in [(&decided[0], 100), (&decided[1], -100)] {
        let claimed = ok("claim_decision", store.claim_decision(record.seq, at).await)?;
        let want = StoredEvidence {
            handled_at: Some(at),
            ..record.clone()
        };
        ensure!(
            claimed.as_ref() == Some(&want),
            "claim of {} returned {claimed:?}, expected {want:?}",
            record.seq
        );
        let stored = StoredEvidence { held: None, ..want };
        let read = get(storage, record.seq).await?;
        ensure!(
            read.as_ref() == Some(&stored),
            "after its claim record {} reads {read:?}",
            record.seq
        );
        let again = ok(
            "claim_decision",
            store.claim_decision(record.seq, at + 1).await,
        )?;
        ensure!(again.is_none(), "record {} was claimed twice", record.seq);
        let read = get(storage, record.seq).await?;
        ensure!(
            read.as_ref() == Some(&stored),
            "a second claim changed record {}: {read:?}",
            record.seq
        );
    }
    let left = mine(unhandled(u64::MAX).await?);
    ensure!(
        seqs(&left) == [raced.seq],
        "after two claims the decisions to carry out are {:?}",
        seqs(&left)
    );

    const CLAIMERS: usize = 6;
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CLAIMERS {
        let storage = storage.clone();
        let ready = ready.clone();
        let seq = raced.seq;
        tasks.spawn(async move {
            ready.wait().await;
            storage.evidence.claim_decision(seq, 200 + i as i64).await
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| format!("claim task: {e}"))? {
            Ok(Some(record)) => winners.push(record),
            Ok(None) => {}
            Err(e) => return Err(format!("claim_decision failed: {e}")),
        }
    }
    ensure!(
        winners.len() == 1,
        "{} claimers got record {}",
        winners.len(),
        raced.seq
    );
    ensure!(
        winners[0].held == decided[2].held,
        "the winning claim carries {:?}",
        winners[0].held
    );
    let read = get(storage, raced.seq).await?;
    ensure!(
        read.as_ref()
            .is_some_and(|r| r.held.is_none() && r.handled_at == winners[0].handled_at),
        "after the race the record reads {read:?}"
    );
    ensure!(
        mine(unhandled(u64::MAX).await?).is_empty(),
        "claimed decisions are still listed"
    );
    Ok(())
}

/// Purges with `before` and `now`, and checks the count it returns: exactly the records of the
/// database that carry its `now` (unique to the call) as `purged_at`.
async fn purge(storage: &Storage, before: i64, now: i64) -> Result<u64, String> {
    let n = ok("purge", storage.evidence.purge(before, now).await)?;
    let by_it = everything(storage)
        .await?
        .into_iter()
        .filter(|e| e.purged_at == Some(now))
        .count();
    ensure!(
        n == by_it as u64,
        "purge returned {n}, but {by_it} records carry its time"
    );
    Ok(n)
}

/// `e` without what a purge changes.
fn unpurged(e: &StoredEvidence) -> StoredEvidence {
    StoredEvidence {
        payload: None,
        purged_at: None,
        ..e.clone()
    }
}

/// Checks the records `r` after the purge with `now`: those at `purged` are purged, whoever
/// purged them, with nothing else changed; those at `kept` were not purged by it, and are
/// unchanged unless another run's purge with a later bound took them.
async fn check_purged(
    storage: &Storage,
    what: &str,
    r: &[StoredEvidence],
    purged: &[usize],
    kept: &[usize],
    now: i64,
) -> Result<(), String> {
    for &i in purged {
        let Some(got) = get(storage, r[i].seq).await? else {
            return Err(format!("{what}: record {i} is gone"));
        };
        ensure!(
            got.payload.is_none() && got.purged_at.is_some(),
            "{what}: record {i} was not purged: {got:?}"
        );
        ensure!(
            unpurged(&got) == unpurged(&r[i]),
            "{what}: purging record {i} changed more than the payload: {got:?}"
        );
    }
    for &i in kept {
        let Some(got) = get(storage, r[i].seq).await? else {
            return Err(format!("{what}: record {i} is gone"));
        };
        ensure!(
            got.purged_at != Some(now),
            "{what}: record {i} was purged: {got:?}"
        );
        ensure!(
            got.purged_at.is_some() || got == r[i],
            "{what}: record {i} changed: {got:?}"
        );
    }
    Ok(())
}

/// Retention: a purge empties the payload of the records created before its bound (strictly)
/// that are neither on legal hold nor pending review, once, setting `purged_at` and keeping
/// every other column; it returns how many records it purged. A record kept for its hold or
/// its review is purged by a later purge once the hold is lifted or the review decided.
pub async fn purge_respects_hold_and_review(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-purge");
    let before = unique_time();
    let mut pending = evidence("montague", &domain, before - 8);
    pending.review = Some(REVIEW_PENDING.to_owned());
    let mut decided = evidence("montague", &domain, before - 7);
    decided.review = Some(REVIEW_PENDING.to_owned());
    let mut sealed = evidence("montague", &domain, before - 6);
    sealed.sealed = true;
    let specs = [
        evidence("montague", &domain, before - 10), // 0: purged
        evidence("montague", &domain, before - 9),  // 1: held, kept
        pending,                                    // 2: pending, kept
        decided,                                    // 3: released, purged
        sealed,                                     // 4: purged
        evidence("montague", &domain, before),      // 5: at the bound, kept
        evidence("montague", &domain, before + 10), // 6: later, kept
    ];
    let mut r = Vec::new();
    for spec in &specs {
        r.push(append_next(storage, spec).await?);
    }
    let store = &storage.evidence;
    ensure!(
        ok("set_legal_hold", store.set_legal_hold(r[1].seq, true).await)?,
        "set_legal_hold found no record {}",
        r[1].seq
    );
    r[1].legal_hold = true;
    r[3] = ok(
        "set_review",
        store
            .set_review(r[3].seq, REVIEW_RELEASED, "officer", before - 1, None)
            .await,
    )?;

    let first = unique_time();
    let n = purge(storage, before, first).await?;
    ensure!(n >= 1, "the first purge purged nothing");
    check_purged(storage, "first purge", &r, &[0, 3, 4], &[1, 2, 5, 6], first).await?;
    for i in [1, 2] {
        ensure!(
            get(storage, r[i].seq).await?.as_ref() == Some(&r[i]),
            "first purge: record {i} on hold or pending review changed"
        );
    }

    // Nothing of this check is left to purge: the purged ones stay purged at their first time.
    let again = unique_time();
    purge(storage, before, again).await?;
    check_purged(
        storage,
        "second purge",
        &r,
        &[0, 3, 4],
        &[1, 2, 5, 6],
        again,
    )
    .await?;
    for i in [0, 3, 4] {
        let at = get(storage, r[i].seq).await?.and_then(|e| e.purged_at);
        ensure!(
            at != Some(again),
            "second purge: record {i} was purged again"
        );
    }

    // A hold lifted and a review decided: the next purge takes them.
    ensure!(
        ok(
            "set_legal_hold",
            store.set_legal_hold(r[1].seq, false).await
        )?,
        "set_legal_hold found no record {}",
        r[1].seq
    );
    r[1].legal_hold = false;
    r[2] = ok(
        "set_review",
        store
            .set_review(r[2].seq, REVIEW_REJECTED, "officer", before, None)
            .await,
    )?;
    let third = unique_time();
    purge(storage, before, third).await?;
    check_purged(
        storage,
        "after hold and review",
        &r,
        &[0, 1, 2, 3, 4],
        &[5, 6],
        third,
    )
    .await?;

    // A purged record can still be put on hold; its payload stays purged.
    ensure!(
        ok("set_legal_hold", store.set_legal_hold(r[0].seq, true).await)?,
        "set_legal_hold found no purged record {}",
        r[0].seq
    );
    let got = get(storage, r[0].seq).await?;
    ensure!(
        got.as_ref()
            .is_some_and(|e| e.legal_hold && e.payload.is_none() && e.purged_at.is_some()),
        "a purged record put on hold reads {got:?}"
    );
    // Every record is still listed.
    let listed = seqs(&list(storage, of_domain(&domain)).await?);
    ensure!(
        listed == seqs(&r),
        "after the purges the domain lists {listed:?}, appended {:?}",
        seqs(&r)
    );
    Ok(())
}

/// Appenders racing for one position: exactly one wins, the others get `Conflict`, and the
/// position holds the winner's record.
pub async fn concurrent_appends_one_winner(storage: &Storage) -> Result<(), String> {
    const RACERS: usize = 6;
    let domain = unique_domain("evidence-race");
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
            let e = NewEvidence {
                seq,
                prev_hash: prev.clone(),
                ..evidence(&format!("racer{i}"), &domain, LATER)
            };
            tasks.spawn(async move {
                ready.wait().await;
                storage.evidence.append(&e).await
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.map_err(|e| format!("append task: {e}"))? {
                Ok(stored) => winners.push(stored),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(format!("append failed: {e}")),
            }
        }
        ensure!(
            winners.len() <= 1,
            "{} appenders won position {seq}",
            winners.len()
        );
        if let Some(winner) = winners.pop() {
            let at = get(storage, seq).await?;
            ensure!(at.as_ref() == Some(&winner), "position {seq} holds {at:?}");
            return Ok(());
        }
        // Nobody won: only acceptable when another run took the position.
        let now_last = last(storage).await?;
        ensure!(
            now_last.as_ref().map(|l| l.seq) >= Some(seq),
            "no appender won position {seq} of a chain that did not move"
        );
    }
    Err("another writer took every position raced for".to_owned())
}

/// Many writers appending at once leave one chain: seqs 1, 2, … without gaps, each record
/// naming the hash of the one before (the first [`GENESIS_HASH`]), every append there once.
pub async fn concurrent_chain_stays_linked(storage: &Storage) -> Result<(), String> {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let domain = unique_domain("evidence-linked");
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let storage = storage.clone();
        let e = evidence(&format!("writer{w}"), &domain, LATER);
        writers.spawn(async move {
            let mut mine = Vec::with_capacity(EACH);
            for _ in 0..EACH {
                mine.push(append_next(&storage, &e).await?.seq);
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
    let mine: BTreeSet<i64> = seqs(&list(storage, of_domain(&domain)).await?)
        .into_iter()
        .collect();
    ensure!(
        mine == appended,
        "the domain lists {mine:?}, appended {appended:?}"
    );
    let mut prev: Option<(i64, String)> = None;
    for e in everything(storage).await? {
        let (seq, hash) = prev
            .as_ref()
            .map_or((1, GENESIS_HASH), |(s, h)| (s + 1, h.as_str()));
        ensure!(
            e.seq == seq && e.prev_hash == hash,
            "record {} (prev_hash {}) does not follow seq {} with hash {hash}",
            e.seq,
            e.prev_hash,
            seq - 1
        );
        prev = Some((e.seq, e.hash));
    }
    Ok(())
}

/// Records are evidence: removing the account leaves them, and the account need never have
/// existed.
pub async fn evidence_outlives_accounts(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-outlive");
    create_account(storage, "mercutio", &domain).await?;
    let kept = append_next(storage, &evidence("mercutio", &domain, LATER)).await?;
    ok(
        "remove_user",
        storage.users.remove_user("mercutio", &domain).await,
    )?;
    let account = |username: &str| EvidenceFilter {
        username: Some(username.to_owned()),
        ..of_domain(&domain)
    };
    let listed = list(storage, account("mercutio")).await?;
    ensure!(
        listed == [kept],
        "after removal the account lists {listed:?}"
    );
    let ghost = append_next(storage, &evidence("never", &domain, LATER)).await?;
    let listed = list(storage, account("never")).await?;
    ensure!(listed == [ghost], "a record of no account lists {listed:?}");
    Ok(())
}

/// A record the store cannot hold is refused with `InvalidInput` (before the chain is looked
/// at) and nothing is written.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("evidence-invalid");
    // Seq 0 after the genesis hash is never the next link: only validation can answer first.
    let good = evidence("paris", &domain, LATER);
    let long = "x".repeat(MAX_FIELD_BYTES + 1);
    let with = |f: &dyn Fn(&mut NewEvidence)| {
        let mut e = good.clone();
        f(&mut e);
        e
    };
    let cases: Vec<(&str, NewEvidence)> = vec![
        ("an empty rule id", with(&|e| e.rule_id.clear())),
        ("an oversized rule id", with(&|e| e.rule_id = long.clone())),
        ("U+0000 in the rule id", with(&|e| e.rule_id.push('\0'))),
        ("an empty category", with(&|e| e.category.clear())),
        (
            "an oversized category",
            with(&|e| e.category = long.clone()),
        ),
        ("empty actions", with(&|e| e.actions.clear())),
        ("oversized actions", with(&|e| e.actions = long.clone())),
        ("U+0000 in the actions", with(&|e| e.actions.push('\0'))),
        ("an empty username", with(&|e| e.username.clear())),
        (
            "an oversized username",
            with(&|e| e.username = long.clone()),
        ),
        ("U+0000 in the username", with(&|e| e.username.push('\0'))),
        ("an empty domain", with(&|e| e.domain.clear())),
        ("an oversized domain", with(&|e| e.domain = long.clone())),
        (
            "an oversized resource",
            with(&|e| e.resource = long.clone()),
        ),
        ("U+0000 in the resource", with(&|e| e.resource.push('\0'))),
        (
            "an oversized peer",
            with(&|e| e.peer = "p".repeat(MAX_JID_BYTES + 1)),
        ),
        ("U+0000 in the peer", with(&|e| e.peer.push('\0'))),
        ("an empty direction", with(&|e| e.direction.clear())),
        (
            "a direction in another case",
            with(&|e| e.direction = "Outgoing".into()),
        ),
        (
            "an unknown direction",
            with(&|e| e.direction = "sideways".into()),
        ),
        (
            "an oversized remote address",
            with(&|e| e.remote_addr = Some(long.clone())),
        ),
        (
            "U+0000 in the remote address",
            with(&|e| e.remote_addr = Some("a\0".into())),
        ),
        (
            "an oversized client",
            with(&|e| e.client = Some(long.clone())),
        ),
        (
            "U+0000 in the client",
            with(&|e| e.client = Some("a\0".into())),
        ),
        ("an empty payload", with(&|e| e.payload.clear())),
        ("U+0000 in the payload", with(&|e| e.payload.push('\0'))),
        (
            "an upper-case payload hash",
            with(&|e| e.payload_hash = e.payload_hash.to_uppercase()),
        ),
        (
            "a short payload hash",
            with(&|e| e.payload_hash.truncate(63)),
        ),
        ("an empty payload hash", with(&|e| e.payload_hash.clear())),
        (
            "a new record already released",
            with(&|e| e.review = Some(REVIEW_RELEASED.into())),
        ),
        (
            "a new record already rejected",
            with(&|e| e.review = Some(REVIEW_REJECTED.into())),
        ),
        ("an empty review", with(&|e| e.review = Some(String::new()))),
        (
            "a review in another case",
            with(&|e| e.review = Some("Pending".into())),
        ),
        (
            "a held message without a review",
            with(&|e| e.held = Some("<message/>".into())),
        ),
        (
            "an empty held message",
            with(&|e| {
                e.review = Some(REVIEW_PENDING.into());
                e.held = Some(String::new());
            }),
        ),
        (
            "an oversized held message",
            with(&|e| {
                e.review = Some(REVIEW_PENDING.into());
                e.held = Some("x".repeat(MAX_PAYLOAD_BYTES + 1));
            }),
        ),
        (
            "U+0000 in the held message",
            with(&|e| {
                e.review = Some(REVIEW_PENDING.into());
                e.held = Some("<message>\0</message>".into());
            }),
        ),
        ("a short prev_hash", with(&|e| e.prev_hash.truncate(10))),
        (
            "a prev_hash that is not hex",
            with(&|e| e.prev_hash.replace_range(..1, "g")),
        ),
        (
            "an upper-case hash",
            with(&|e| e.hash = e.hash.to_uppercase()),
        ),
        ("a long hash", with(&|e| e.hash.push('0'))),
        ("an empty hash", with(&|e| e.hash.clear())),
        ("an empty signature", with(&|e| e.signature.clear())),
        (
            "an oversized signature",
            with(&|e| e.signature = "s".repeat(MAX_SIGNATURE_BYTES + 1)),
        ),
        ("U+0000 in the signature", with(&|e| e.signature.push('\0'))),
    ];
    for (what, e) in &cases {
        invalid_input(
            &format!("append with {what}"),
            storage.evidence.append(e).await,
        )?;
    }
    let written = list(storage, of_domain(&domain)).await?;
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
                    failures.push(format!("evidence::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    // The chain check first: on a fresh database it is the one that sees the chain empty.
    run!(
        append_links_to_the_last,
        round_trip_and_get,
        filters,
        default_limit_and_paging,
        large_payloads,
        legal_hold,
        review_moves_only_pending,
        decisions_are_carried_out_once,
        purge_respects_hold_and_review,
        concurrent_appends_one_winner,
        concurrent_chain_stays_linked,
        evidence_outlives_accounts,
        invalid_input_refused,
    );
    failures
}
