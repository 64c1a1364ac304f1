//! Compliance evidence: the records of messages that matched a compliance rule, kept as one hash
//! chain in which each record names the hash of the one before it, each signed by the server.
//!
//! The store keeps what the caller computed: it checks the shape of hashes (64 lowercase hex
//! digits) but never recomputes a SHA-256 digest (not even `payload_hash` over the payload) nor
//! verifies a signature; it guarantees only that the chain grows one position at a time, each
//! record linked to the previous one.
//!
//! A record is written once. Afterwards only these change, so a record's hash must not cover
//! them: the legal hold, the review of a quarantined message (`pending` → `released` or
//! `rejected`, once, with who, when and why), the held copy of that message, emptied once the
//! decision is carried out (`handled_at`), and the payload, which retention purges to `NULL`
//! (recording when) while every other column stays, so the chain, which covers `payload_hash`,
//! can still be verified. Nothing removes a record.
//!
//! The held copy is the quarantined stanza as received, kept apart from the payload: the
//! payload may be sealed to the compliance officer's key, which the server does not have, and
//! the server must still deliver a released message. A decision is carried out once: the
//! server claims it ([`EvidenceStore::claim_decision`]), which marks it handled and empties the
//! held copy in one step, and only then delivers or tells the sender.
//!
//! SQL schema (created by `m0005_evidence`), for tools and tests that read or edit rows directly:
//!
//! - `evidence (seq, created_at, rule_id, category, actions, username, domain, resource, peer,
//!   direction, remote_addr, client, sealed, payload, payload_hash, prev_hash, hash, signature,
//!   purged_at, legal_hold, review, reviewed_by, reviewed_at)`: one row per record, keyed by
//!   `seq` (the chain position). `sealed` and `legal_hold` are booleans (`0`/`1` on SQLite);
//!   `payload` is `NULL` once purged, `purged_at` the time of the purge (else `NULL`);
//!   `remote_addr` and `client` are `NULL` when unknown; `review` is `NULL` for a record that
//!   was never held for review, else `pending`, `released` or `rejected`, with `reviewed_by`
//!   and `reviewed_at` set by the decision. Indexed on `(username, domain)`
//!   (`evidence_account`), on `created_at` (`evidence_created_at`, for time ranges and
//!   retention) and on `review` (`evidence_review`, for the queue of pending reviews). No
//!   foreign key: evidence outlives the account.
//! - Added by `m0006_review_lock`: `held_stanza` (the held copy, `NULL` when there is none or
//!   once the decision was carried out), `review_reason` (the reviewer's reason, `NULL` when
//!   none was given) and `handled_at` (when the decision was carried out, `NULL` before),
//!   indexed with `review` (`evidence_review_handled`, for the decisions to carry out).
//!
//! Timestamps are Unix seconds (`BIGINT`).

use async_trait::async_trait;

use crate::{MAX_JID_BYTES, StoreError, validate};

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Hashes have the shape of the receipt chain's: SHA-256 as 64 lowercase hex digits, and the
/// first record's `prev_hash` is the same all-zero [`GENESIS_HASH`].
pub use crate::policy::{GENESIS_HASH, HASH_HEX_LEN, is_hash};

/// Longest payload (4 MiB): the JSON text of the record, or the base64 of its sealed box.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Longest signature of a record.
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// Longest value of every other text field but the peer and the reviewer (rule, category,
/// actions, names, addresses): RFC 7622 allows 1023 bytes for each part of a JID.
pub const MAX_FIELD_BYTES: usize = 1023;
/// The directions a record can have: a message the account sent, one it received, or one it
/// reported.
pub const DIRECTIONS: [&str; 3] = ["outgoing", "incoming", "report"];
/// The review state of a quarantined message waiting for a decision.
pub const REVIEW_PENDING: &str = "pending";
/// The decision that lets a quarantined message go on.
pub const REVIEW_RELEASED: &str = "released";
/// The decision that stops a quarantined message for good.
pub const REVIEW_REJECTED: &str = "rejected";
/// Longest reason of a review decision.
pub const MAX_REVIEW_REASON_BYTES: usize = 1024;
/// How many records [`EvidenceStore::list`] returns when the filter sets no limit. Smaller than
/// the other stores' listings: each record may carry up to [`MAX_PAYLOAD_BYTES`].
pub const DEFAULT_EVIDENCE_LIMIT: u64 = 100;

/// A record to append, as a link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    /// The chain position: the last record's `seq` + 1, or 1 for the first.
    pub seq: i64,
    /// When the message matched (Unix seconds).
    pub created_at: i64,
    /// The rule that matched.
    pub rule_id: String,
    /// The rule's category.
    pub category: String,
    /// What the rule did, as the caller spells it: `"block,alert"`.
    pub actions: String,
    /// The hosted account the message belongs to.
    pub username: String,
    pub domain: String,
    /// The account's resource; may be empty.
    pub resource: String,
    /// The other party's JID; may be empty.
    pub peer: String,
    /// One of [`DIRECTIONS`].
    pub direction: String,
    pub remote_addr: Option<String>,
    /// The client software, when it said.
    pub client: Option<String>,
    /// Whether the payload is encrypted to the compliance officer's key.
    pub sealed: bool,
    /// The record's content: JSON text, or the base64 of the sealed box.
    pub payload: String,
    /// SHA-256 of the payload (64 lowercase hex digits), computed by the caller.
    pub payload_hash: String,
    /// `None`, or [`REVIEW_PENDING`] for a message held until a reviewer decides.
    pub review: Option<String>,
    /// The held message (the stanza as received), for a record pending review only: what the
    /// server delivers once a reviewer releases it.
    pub held: Option<String>,
    /// The last record's `hash`, or [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// This record's hash (64 lowercase hex digits), computed by the caller.
    pub hash: String,
    /// The server's signature over the record, in the caller's encoding.
    pub signature: String,
}

/// A stored record: what was appended, and what changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvidence {
    pub seq: i64,
    pub created_at: i64,
    pub rule_id: String,
    pub category: String,
    pub actions: String,
    pub username: String,
    pub domain: String,
    pub resource: String,
    pub peer: String,
    pub direction: String,
    pub remote_addr: Option<String>,
    pub client: Option<String>,
    pub sealed: bool,
    /// `None` once purged.
    pub payload: Option<String>,
    pub payload_hash: String,
    pub prev_hash: String,
    pub hash: String,
    pub signature: String,
    /// When the payload was purged (the `now` of [`EvidenceStore::purge`]).
    pub purged_at: Option<i64>,
    /// Whether the record is kept from purges.
    pub legal_hold: bool,
    /// `None` for a record never held for review; else [`REVIEW_PENDING`], [`REVIEW_RELEASED`]
    /// or [`REVIEW_REJECTED`].
    pub review: Option<String>,
    /// Who decided the review.
    pub reviewed_by: Option<String>,
    /// When the review was decided (Unix seconds).
    pub reviewed_at: Option<i64>,
    /// Why, as the reviewer wrote it.
    pub review_reason: Option<String>,
    /// The held message, until the decision is carried out.
    pub held: Option<String>,
    /// When the decision was carried out: the released message delivered, or the sender told
    /// of the rejection (Unix seconds).
    pub handled_at: Option<i64>,
}

impl From<&NewEvidence> for StoredEvidence {
    fn from(e: &NewEvidence) -> StoredEvidence {
        StoredEvidence {
            seq: e.seq,
            created_at: e.created_at,
            rule_id: e.rule_id.clone(),
            category: e.category.clone(),
            actions: e.actions.clone(),
            username: e.username.clone(),
            domain: e.domain.clone(),
            resource: e.resource.clone(),
            peer: e.peer.clone(),
            direction: e.direction.clone(),
            remote_addr: e.remote_addr.clone(),
            client: e.client.clone(),
            sealed: e.sealed,
            payload: Some(e.payload.clone()),
            payload_hash: e.payload_hash.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
            signature: e.signature.clone(),
            purged_at: None,
            legal_hold: false,
            review: e.review.clone(),
            reviewed_by: None,
            reviewed_at: None,
            review_reason: None,
            held: e.held.clone(),
            handled_at: None,
        }
    }
}

impl StoredEvidence {
    /// Whether the record passes every condition of `filter` but the limit.
    pub(crate) fn matches(&self, filter: &EvidenceFilter) -> bool {
        filter
            .username
            .as_deref()
            .is_none_or(|u| self.username == u)
            && filter.domain.as_deref().is_none_or(|d| self.domain == d)
            && filter.rule_id.as_deref().is_none_or(|r| self.rule_id == r)
            && filter.since.is_none_or(|since| self.created_at >= since)
            && filter.until.is_none_or(|until| self.created_at <= until)
            && filter.after_seq.is_none_or(|after| self.seq > after)
            && filter
                .review
                .as_deref()
                .is_none_or(|r| self.review.as_deref() == Some(r))
    }

    /// Whether the review was decided and the decision is not carried out yet.
    pub(crate) fn awaiting_handling(&self) -> bool {
        matches!(
            self.review.as_deref(),
            Some(REVIEW_RELEASED | REVIEW_REJECTED)
        ) && self.handled_at.is_none()
    }

    /// Whether [`EvidenceStore::purge`] with this `before` empties the record's payload.
    pub(crate) fn purgeable(&self, before: i64) -> bool {
        self.created_at < before
            && !self.legal_hold
            && self.review.as_deref() != Some(REVIEW_PENDING)
            && self.purged_at.is_none()
    }
}

/// Which records [`EvidenceStore::list`] returns; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct EvidenceFilter {
    /// Records of accounts with exactly this username.
    pub username: Option<String>,
    /// Records of accounts of exactly this domain.
    pub domain: Option<String>,
    /// Records of exactly this rule.
    pub rule_id: Option<String>,
    /// Records created at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Records created at or before this time (Unix seconds).
    pub until: Option<i64>,
    /// Records with a greater seq: pass the last seq seen to read the next page.
    pub after_seq: Option<i64>,
    /// Records in exactly this review state (`"pending"` for the queue of quarantined
    /// messages).
    pub review: Option<String>,
    /// At most this many records; [`DEFAULT_EVIDENCE_LIMIT`] when unset.
    pub limit: Option<u64>,
}

impl EvidenceFilter {
    pub(crate) fn effective_limit(&self) -> u64 {
        self.limit.unwrap_or(DEFAULT_EVIDENCE_LIMIT)
    }
}

/// The evidence chain. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::evidence`].
///
/// Nothing in the trait removes a record or changes what the chain covers. Text is stored as
/// given and compared byte by byte.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Appends a record at the end of the chain, atomically, with no legal hold and the review
    /// state it names.
    ///
    /// `Conflict`, and nothing is written, unless `e.seq` is the last record's seq + 1 (1 when
    /// there is none) and `e.prev_hash` is the last record's hash ([`GENESIS_HASH`] when there
    /// is none): of two appenders racing for one position, exactly one wins. The account need
    /// not exist: evidence outlives accounts. `InvalidInput`, checked first, when a hash
    /// (`payload_hash`, `prev_hash`, `hash`) is not 64 lowercase hex digits; the rule id,
    /// category, actions, username or domain is empty or longer than [`MAX_FIELD_BYTES`]; the
    /// resource, remote address or client is longer than [`MAX_FIELD_BYTES`]; the peer is
    /// longer than [`MAX_JID_BYTES`]; the direction is not one of [`DIRECTIONS`]; the payload
    /// is empty or longer than [`MAX_PAYLOAD_BYTES`]; the review is set to anything but
    /// [`REVIEW_PENDING`]; the signature is empty or longer than [`MAX_SIGNATURE_BYTES`]; or a
    /// text contains U+0000.
    async fn append(&self, e: &NewEvidence) -> Result<StoredEvidence, StoreError>;
    /// The record at the end of the chain, if any.
    async fn last(&self) -> Result<Option<StoredEvidence>, StoreError>;
    /// The record at position `seq`, if any.
    async fn get(&self, seq: i64) -> Result<Option<StoredEvidence>, StoreError>;
    /// The records matching `f`, by seq ascending, at most its limit.
    async fn list(&self, f: &EvidenceFilter) -> Result<Vec<StoredEvidence>, StoreError>;
    /// Puts the record on legal hold (`true`) or lifts it (`false`); `Ok(false)` when there is
    /// no record at `seq`. Setting the hold it already has is no error, and the hold of a
    /// purged record can still be set (its payload stays purged).
    async fn set_legal_hold(&self, seq: i64, hold: bool) -> Result<bool, StoreError>;
    /// Decides the review of a quarantined message: moves a record in [`REVIEW_PENDING`] to
    /// `state` ([`REVIEW_RELEASED`] or [`REVIEW_REJECTED`]), recording who decided, when and
    /// why, and returns the record as it is now. A review is decided once; the held copy stays
    /// until the decision is carried out ([`EvidenceStore::claim_decision`]).
    ///
    /// `InvalidInput`, checked first, when `state` is neither decision, `by` is empty, longer
    /// than [`MAX_JID_BYTES`] or contains U+0000, or `reason` is longer than
    /// [`MAX_REVIEW_REASON_BYTES`] or contains U+0000. `NotFound` when there is no record at
    /// `seq`. `Conflict`, and nothing is written, when the record is not pending: it was never
    /// held for review, or its review was already decided (by another reviewer racing for it:
    /// exactly one decision wins).
    async fn set_review(
        &self,
        seq: i64,
        state: &str,
        by: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<StoredEvidence, StoreError>;
    /// The decided reviews not carried out yet (decided, `handled_at` unset), by seq
    /// ascending, at most `limit`.
    async fn unhandled_decisions(&self, limit: u64) -> Result<Vec<StoredEvidence>, StoreError>;
    /// Claims a decided review to carry it out: atomically sets `handled_at` to `at` and empties
    /// the held copy, and returns the record as it was claimed (with `handled_at` set and the
    /// held copy still in it). Of callers racing for one record exactly one gets it; the others,
    /// and every caller for a record that is not decided or already carried out, get
    /// `Ok(None)` and nothing is written. `NotFound` when there is no record at `seq`.
    async fn claim_decision(&self, seq: i64, at: i64)
    -> Result<Option<StoredEvidence>, StoreError>;
    /// Retention: empties the payload of every record created before `before` (strictly) that
    /// is not on legal hold, not pending review and not purged yet, setting its `purged_at` to
    /// `now` and keeping every other column; returns how many records it purged. Atomic: a
    /// record put on hold or under review concurrently is either purged before or kept.
    async fn purge(&self, before: i64, now: i64) -> Result<u64, StoreError>;
}

fn hash(what: &str, value: &str) -> Result<(), StoreError> {
    if is_hash(value) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "{what} must be {HASH_HEX_LEN} lowercase hex digits"
        )))
    }
}

/// A text of 1 to `max` bytes without U+0000.
fn required(what: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::InvalidInput(format!("empty {what}")));
    }
    validate::text(what, value, Some(max))
}

/// Checks a record before the chain is looked at.
pub(crate) fn validate_evidence(e: &NewEvidence) -> Result<(), StoreError> {
    required("evidence rule id", &e.rule_id, MAX_FIELD_BYTES)?;
    required("evidence category", &e.category, MAX_FIELD_BYTES)?;
    required("evidence actions", &e.actions, MAX_FIELD_BYTES)?;
    required("evidence username", &e.username, MAX_FIELD_BYTES)?;
    required("evidence domain", &e.domain, MAX_FIELD_BYTES)?;
    validate::text("evidence resource", &e.resource, Some(MAX_FIELD_BYTES))?;
    validate::text("evidence peer", &e.peer, Some(MAX_JID_BYTES))?;
    if !DIRECTIONS.contains(&e.direction.as_str()) {
        return Err(StoreError::InvalidInput(format!(
            "evidence direction must be one of {}",
            DIRECTIONS.join(", ")
        )));
    }
    if let Some(addr) = &e.remote_addr {
        validate::text("evidence remote address", addr, Some(MAX_FIELD_BYTES))?;
    }
    if let Some(client) = &e.client {
        validate::text("evidence client", client, Some(MAX_FIELD_BYTES))?;
    }
    required("evidence payload", &e.payload, MAX_PAYLOAD_BYTES)?;
    hash("evidence payload hash", &e.payload_hash)?;
    if let Some(review) = &e.review
        && review != REVIEW_PENDING
    {
        return Err(StoreError::InvalidInput(format!(
            "a new evidence record's review must be {REVIEW_PENDING} or none"
        )));
    }
    if let Some(held) = &e.held {
        if e.review.is_none() {
            return Err(StoreError::InvalidInput(
                "only a record pending review holds a message".to_owned(),
            ));
        }
        required("evidence held message", held, MAX_PAYLOAD_BYTES)?;
    }
    hash("evidence prev_hash", &e.prev_hash)?;
    hash("evidence hash", &e.hash)?;
    required("evidence signature", &e.signature, MAX_SIGNATURE_BYTES)
}

/// Checks a review decision before anything is looked at.
pub(crate) fn validate_review(
    state: &str,
    by: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    if state != REVIEW_RELEASED && state != REVIEW_REJECTED {
        return Err(StoreError::InvalidInput(format!(
            "a review decision must be {REVIEW_RELEASED} or {REVIEW_REJECTED}"
        )));
    }
    required("reviewer", by, MAX_JID_BYTES)?;
    if let Some(reason) = reason {
        validate::text("review reason", reason, Some(MAX_REVIEW_REASON_BYTES))?;
    }
    Ok(())
}

/// The error for deciding the review of a record that is not pending (`review` is its state).
pub(crate) fn not_pending(seq: i64, review: Option<&str>) -> StoreError {
    StoreError::Conflict(match review {
        None => format!("evidence record {seq} was never held for review"),
        Some(state) => format!("the review of evidence record {seq} is already {state}"),
    })
}

/// The error for a record that is not there.
pub(crate) fn no_record(seq: i64) -> StoreError {
    StoreError::NotFound(format!("evidence record {seq}"))
}

/// Whether `e` is the next link after `last` (seq and hash of the last record, `None` for an
/// empty chain); `Conflict` saying what was expected otherwise.
pub(crate) fn check_link(last: Option<(i64, &str)>, e: &NewEvidence) -> Result<(), StoreError> {
    let (expected_seq, expected_prev) = match last {
        None => (1, GENESIS_HASH),
        Some((seq, hash)) => (
            seq.checked_add(1).ok_or_else(|| {
                StoreError::Conflict("the evidence chain has no position left".to_owned())
            })?,
            hash,
        ),
    };
    if e.seq != expected_seq {
        return Err(StoreError::Conflict(format!(
            "evidence seq {} is not the next position of the chain: expected {expected_seq}",
            e.seq
        )));
    }
    if e.prev_hash != expected_prev {
        return Err(StoreError::Conflict(format!(
            "evidence record {} names prev_hash {}, but the last record's hash is \
             {expected_prev}",
            e.seq, e.prev_hash
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> NewEvidence {
        NewEvidence {
            seq: 1,
            created_at: 0,
            rule_id: "r".into(),
            category: "c".into(),
            actions: "block".into(),
            username: "u".into(),
            domain: "d".into(),
            resource: String::new(),
            peer: String::new(),
            direction: "outgoing".into(),
            remote_addr: None,
            client: None,
            sealed: false,
            payload: "{}".into(),
            payload_hash: "3".repeat(64),
            review: None,
            held: None,
            prev_hash: GENESIS_HASH.into(),
            hash: "1".repeat(64),
            signature: "s".into(),
        }
    }

    #[test]
    fn links_follow_the_last_record() {
        let mut e = record();
        assert_eq!(check_link(None, &e), Ok(()));
        e.seq = 2;
        assert!(matches!(check_link(None, &e), Err(StoreError::Conflict(_))));
        let last = "2".repeat(64);
        assert!(matches!(
            check_link(Some((1, &last)), &e),
            Err(StoreError::Conflict(_))
        ));
        e.prev_hash = last.clone();
        assert_eq!(check_link(Some((1, &last)), &e), Ok(()));
        e.seq = i64::MIN;
        assert!(matches!(
            check_link(Some((i64::MAX, &last)), &e),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn only_pending_is_a_starting_review_and_only_decisions_end_it() {
        let mut e = record();
        assert_eq!(validate_evidence(&e), Ok(()));
        e.review = Some(REVIEW_PENDING.into());
        assert_eq!(validate_evidence(&e), Ok(()));
        e.held = Some("<message/>".into());
        assert_eq!(validate_evidence(&e), Ok(()));
        for held in ["", "a\0b"] {
            e.held = Some(held.into());
            assert!(validate_evidence(&e).is_err(), "{held:?}");
        }
        for state in [REVIEW_RELEASED, REVIEW_REJECTED, "", "Pending"] {
            e.review = Some(state.into());
            assert!(validate_evidence(&e).is_err(), "{state}");
        }
        e.review = None;
        e.held = Some("<message/>".into());
        assert!(
            validate_evidence(&e).is_err(),
            "a held message without a review"
        );
        assert_eq!(validate_review(REVIEW_RELEASED, "officer", None), Ok(()));
        assert_eq!(
            validate_review(REVIEW_REJECTED, "officer", Some("phishing")),
            Ok(())
        );
        assert!(validate_review(REVIEW_PENDING, "officer", None).is_err());
        assert!(validate_review(REVIEW_RELEASED, "", None).is_err());
        let long = "r".repeat(MAX_REVIEW_REASON_BYTES + 1);
        assert!(validate_review(REVIEW_RELEASED, "officer", Some(&long)).is_err());
    }

    #[test]
    fn purge_skips_held_pending_recent_and_purged_records() {
        let mut s = StoredEvidence::from(&record());
        s.created_at = 10;
        assert!(s.purgeable(11));
        assert!(!s.purgeable(10));
        s.legal_hold = true;
        assert!(!s.purgeable(11));
        s.legal_hold = false;
        s.review = Some(REVIEW_PENDING.into());
        assert!(!s.purgeable(11));
        s.review = Some(REVIEW_REJECTED.into());
        assert!(s.purgeable(11));
        s.purged_at = Some(5);
        assert!(!s.purgeable(11));
    }
}
