//! Usage policies and their acceptance receipts: the published versions of the terms an account
//! accepts (kept forever, so that any receipt can be checked against the exact text it names),
//! and the receipts themselves, kept as one hash chain in which each receipt names the hash of
//! the one before it.
//!
//! The store keeps what the caller computed: it checks the shape of hashes (64 lowercase hex
//! digits) but never recomputes a SHA-256 digest nor verifies a signature; it guarantees only
//! that the chain grows one position at a time, each receipt linked to the previous one.
//!
//! SQL schema (created by `m0004_policy`), for tools and tests that read or edit rows directly:
//!
//! - `policy_versions (seq, hash, domain, title, text, format, effective_at, published_at,
//!   published_by)`: one row per version, keyed by `seq`; `domain` is `NULL` for a version that
//!   applies to every hosted domain; unique index `policy_versions_hash_domain` on
//!   `(hash, domain)` (the `NULL` scope's uniqueness is checked by the store, under its lock).
//! - `policy_categories (seq, position, category)`: the categories of a version, one row each,
//!   keyed by `(seq, position)` (position 0, 1, … in the order given), referencing
//!   `policy_versions (seq)` with `ON DELETE CASCADE`. A separate table rather than JSON text:
//!   no encoder is needed, and each category is a plain column that SQL can read and edit.
//! - `policy_receipts (seq, username, domain, resource, policy_hash, method, accepted_at,
//!   remote_addr, client, prev_hash, hash, signature)`: one row per receipt, keyed by `seq` (the
//!   chain position); indexed on `(username, domain)` (`policy_receipts_account`) and on
//!   `policy_hash` (`policy_receipts_policy_hash`). No foreign key: receipts outlive accounts.
//!
//! Timestamps are Unix seconds (`BIGINT`); `remote_addr` and `client` are `NULL` when unknown.

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Length of every hash the store keeps: SHA-256 as lowercase hexadecimal.
pub const HASH_HEX_LEN: usize = 64;
/// The `prev_hash` of the first receipt of the chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest title of a version.
pub const MAX_TITLE_BYTES: usize = 1023;
/// Longest text of a version (1 MiB).
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Longest category name.
pub const MAX_CATEGORY_BYTES: usize = 255;
/// Most categories on one version.
pub const MAX_CATEGORIES: usize = 100;
/// Longest signature of a receipt.
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// Longest value of every other text field (domains, names, method, addresses): RFC 7622
/// allows 1023 bytes for each part of a JID.
pub const MAX_FIELD_BYTES: usize = 1023;
/// The formats a version's text can be in.
pub const FORMATS: [&str; 2] = ["markdown", "text"];
/// How many receipts [`PolicyStore::receipts`] returns when the filter sets no limit.
pub const DEFAULT_RECEIPT_LIMIT: u64 = 1000;

/// A version to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicyVersion {
    /// SHA-256 of the policy file, 64 lowercase hex digits (computed by the caller).
    pub hash: String,
    pub title: String,
    pub text: String,
    /// `"markdown"` or `"text"` (see [`FORMATS`]).
    pub format: String,
    /// When the version takes effect (Unix seconds).
    pub effective_at: i64,
    /// What the policy covers, in the order given; kept as given (duplicates included).
    pub categories: Vec<String>,
    /// The hosted domain it applies to; `None` for every hosted domain.
    pub domain: Option<String>,
    /// Unix seconds.
    pub published_at: i64,
    /// Who published it: `"causeriectl:root"`.
    pub published_by: String,
}

/// A published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// 1, 2, … in publication order, over every domain.
    pub seq: i64,
    pub hash: String,
    pub title: String,
    pub text: String,
    pub format: String,
    pub effective_at: i64,
    pub categories: Vec<String>,
    pub domain: Option<String>,
    pub published_at: i64,
    pub published_by: String,
}

impl PolicyVersion {
    pub(crate) fn new(seq: i64, v: &NewPolicyVersion) -> PolicyVersion {
        PolicyVersion {
            seq,
            hash: v.hash.clone(),
            title: v.title.clone(),
            text: v.text.clone(),
            format: v.format.clone(),
            effective_at: v.effective_at,
            categories: v.categories.clone(),
            domain: v.domain.clone(),
            published_at: v.published_at,
            published_by: v.published_by.clone(),
        }
    }
}

/// A receipt to append: one account's acceptance of one version, as a link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// The chain position: the last receipt's `seq` + 1, or 1 for the first.
    pub seq: i64,
    pub username: String,
    pub domain: String,
    /// The resource of the session that accepted; may be empty (accepted outside a session).
    pub resource: String,
    /// The [`PolicyVersion::hash`] accepted.
    pub policy_hash: String,
    /// How the acceptance was given (a protocol name, `"causeriectl"`).
    pub method: String,
    /// Unix seconds.
    pub accepted_at: i64,
    pub remote_addr: Option<String>,
    /// The client software, when it said.
    pub client: Option<String>,
    /// The last receipt's `hash`, or [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// This receipt's hash (64 lowercase hex digits), computed by the caller.
    pub hash: String,
    /// The server's signature over the receipt, in the caller's encoding.
    pub signature: String,
}

/// A stored receipt: exactly what was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub seq: i64,
    pub username: String,
    pub domain: String,
    pub resource: String,
    pub policy_hash: String,
    pub method: String,
    pub accepted_at: i64,
    pub remote_addr: Option<String>,
    pub client: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    pub signature: String,
}

impl From<&NewReceipt> for StoredReceipt {
    fn from(r: &NewReceipt) -> StoredReceipt {
        StoredReceipt {
            seq: r.seq,
            username: r.username.clone(),
            domain: r.domain.clone(),
            resource: r.resource.clone(),
            policy_hash: r.policy_hash.clone(),
            method: r.method.clone(),
            accepted_at: r.accepted_at,
            remote_addr: r.remote_addr.clone(),
            client: r.client.clone(),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
            signature: r.signature.clone(),
        }
    }
}

impl StoredReceipt {
    /// Whether the receipt passes every condition of `filter` but the limit.
    pub(crate) fn matches(&self, filter: &ReceiptFilter) -> bool {
        filter
            .username
            .as_deref()
            .is_none_or(|u| self.username == u)
            && filter.domain.as_deref().is_none_or(|d| self.domain == d)
            && filter.since.is_none_or(|since| self.accepted_at >= since)
            && filter.after_seq.is_none_or(|after| self.seq > after)
    }
}

/// Which receipts [`PolicyStore::receipts`] returns; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct ReceiptFilter {
    /// Receipts of accounts with exactly this username.
    pub username: Option<String>,
    /// Receipts of accounts of exactly this domain.
    pub domain: Option<String>,
    /// Receipts accepted at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Receipts with a greater seq: pass the last seq seen to read the next page.
    pub after_seq: Option<i64>,
    /// At most this many receipts; [`DEFAULT_RECEIPT_LIMIT`] when unset.
    pub limit: Option<u64>,
}

impl ReceiptFilter {
    pub(crate) fn effective_limit(&self) -> u64 {
        self.limit.unwrap_or(DEFAULT_RECEIPT_LIMIT)
    }
}

/// Policy versions and acceptance receipts. Every backend implements the same observable
/// behaviour, checked by [`crate::conformance::policy`].
///
/// Nothing in the trait changes or removes a version or a receipt. Text is stored as given and
/// compared byte by byte.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Publishes a version, giving it the next seq (1 for the first).
    ///
    /// `AlreadyExists`, and nothing is written, when the same hash was already published for
    /// the same domain (`None`, every domain, is a scope of its own). `InvalidInput`, and
    /// nothing is written, when the hash is not 64 lowercase hex digits, the title is empty or
    /// longer than [`MAX_TITLE_BYTES`], the text is empty or longer than [`MAX_TEXT_BYTES`], the
    /// format is not one of [`FORMATS`], there are more than [`MAX_CATEGORIES`] categories or
    /// one is empty or longer than [`MAX_CATEGORY_BYTES`], the domain is empty or longer than
    /// [`MAX_FIELD_BYTES`], `published_by` is empty or longer than [`MAX_FIELD_BYTES`], or a
    /// text contains U+0000.
    async fn publish(&self, v: &NewPolicyVersion) -> Result<PolicyVersion, StoreError>;
    /// Every version, by seq.
    async fn versions(&self) -> Result<Vec<PolicyVersion>, StoreError>;
    /// The version with this hash; when the same file was published for several domains, the
    /// first published (smallest seq).
    async fn version_by_hash(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError>;
    /// The version in force for `domain` at `now`: among the versions published for `domain`
    /// if one of them has `effective_at <= now`, else among those for every domain (`None`),
    /// the one with the greatest `effective_at <= now`, ties broken by the greatest seq.
    /// `None` when there is none.
    async fn current(&self, domain: &str, now: i64) -> Result<Option<PolicyVersion>, StoreError>;
    /// Appends a receipt at the end of the chain, atomically.
    ///
    /// `Conflict`, and nothing is written, unless `r.seq` is the last receipt's seq + 1 (1
    /// when there is none) and `r.prev_hash` is the last receipt's hash ([`GENESIS_HASH`] when
    /// there is none): of two appenders racing for one position, exactly one wins. The account
    /// need not exist: receipts outlive accounts. `InvalidInput`, checked first, when a hash
    /// (`policy_hash`, `prev_hash`, `hash`) is not 64 lowercase hex digits, the username,
    /// domain or method is empty, the signature is empty or longer than
    /// [`MAX_SIGNATURE_BYTES`], another field is longer than [`MAX_FIELD_BYTES`], or a text
    /// contains U+0000.
    async fn append_receipt(&self, r: &NewReceipt) -> Result<StoredReceipt, StoreError>;
    /// The receipt at the end of the chain, if any.
    async fn last_receipt(&self) -> Result<Option<StoredReceipt>, StoreError>;
    /// The receipts matching `f`, by seq ascending, at most its limit.
    async fn receipts(&self, f: &ReceiptFilter) -> Result<Vec<StoredReceipt>, StoreError>;
    /// The latest receipt (greatest seq) of this account for this policy hash, if any.
    async fn acceptance(
        &self,
        username: &str,
        domain: &str,
        policy_hash: &str,
    ) -> Result<Option<StoredReceipt>, StoreError>;
}

/// Whether `value` is a hash as the store keeps them: 64 lowercase hex digits.
pub fn is_hash(value: &str) -> bool {
    value.len() == HASH_HEX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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

/// Checks a version before it is written.
pub(crate) fn validate_version(v: &NewPolicyVersion) -> Result<(), StoreError> {
    hash("policy hash", &v.hash)?;
    required("policy title", &v.title, MAX_TITLE_BYTES)?;
    required("policy text", &v.text, MAX_TEXT_BYTES)?;
    if !FORMATS.contains(&v.format.as_str()) {
        return Err(StoreError::InvalidInput(format!(
            "policy format must be one of {}",
            FORMATS.join(", ")
        )));
    }
    if v.categories.len() > MAX_CATEGORIES {
        return Err(StoreError::InvalidInput(format!(
            "more than {MAX_CATEGORIES} policy categories"
        )));
    }
    for category in &v.categories {
        required("policy category", category, MAX_CATEGORY_BYTES)?;
    }
    if let Some(domain) = &v.domain {
        required("policy domain", domain, MAX_FIELD_BYTES)?;
    }
    required("policy publisher", &v.published_by, MAX_FIELD_BYTES)
}

/// Checks a receipt before the chain is looked at.
pub(crate) fn validate_receipt(r: &NewReceipt) -> Result<(), StoreError> {
    required("receipt username", &r.username, MAX_FIELD_BYTES)?;
    required("receipt domain", &r.domain, MAX_FIELD_BYTES)?;
    validate::text("receipt resource", &r.resource, Some(MAX_FIELD_BYTES))?;
    hash("receipt policy hash", &r.policy_hash)?;
    required("receipt method", &r.method, MAX_FIELD_BYTES)?;
    if let Some(addr) = &r.remote_addr {
        validate::text("receipt remote address", addr, Some(MAX_FIELD_BYTES))?;
    }
    if let Some(client) = &r.client {
        validate::text("receipt client", client, Some(MAX_FIELD_BYTES))?;
    }
    hash("receipt prev_hash", &r.prev_hash)?;
    hash("receipt hash", &r.hash)?;
    required("receipt signature", &r.signature, MAX_SIGNATURE_BYTES)
}

/// How a version's scope is named in error messages.
pub(crate) fn scope(domain: Option<&str>) -> String {
    domain.map_or_else(|| "every domain".to_owned(), |d| format!("domain {d}"))
}

/// The error for publishing a hash already published in the same scope.
pub(crate) fn already_published(v: &NewPolicyVersion) -> StoreError {
    StoreError::AlreadyExists(format!(
        "policy version {} for {}",
        v.hash,
        scope(v.domain.as_deref())
    ))
}

/// Whether `r` is the next link after `last` (seq and hash of the last receipt, `None` for an
/// empty chain); `Conflict` saying what was expected otherwise.
pub(crate) fn check_link(last: Option<(i64, &str)>, r: &NewReceipt) -> Result<(), StoreError> {
    let (expected_seq, expected_prev) = match last {
        None => (1, GENESIS_HASH),
        Some((seq, hash)) => (
            seq.checked_add(1).ok_or_else(|| {
                StoreError::Conflict("the receipt chain has no position left".to_owned())
            })?,
            hash,
        ),
    };
    if r.seq != expected_seq {
        return Err(StoreError::Conflict(format!(
            "receipt seq {} is not the next position of the chain: expected {expected_seq}",
            r.seq
        )));
    }
    if r.prev_hash != expected_prev {
        return Err(StoreError::Conflict(format!(
            "receipt {} names prev_hash {}, but the last receipt's hash is {expected_prev}",
            r.seq, r.prev_hash
        )));
    }
    Ok(())
}

/// Picks the version in force among `versions` (see [`PolicyStore::current`]).
pub(crate) fn pick_current<'a>(
    versions: impl IntoIterator<Item = &'a PolicyVersion>,
    domain: &str,
    now: i64,
) -> Option<&'a PolicyVersion> {
    let mut own: Option<&PolicyVersion> = None;
    let mut every: Option<&PolicyVersion> = None;
    for v in versions {
        if v.effective_at > now {
            continue;
        }
        let slot = match v.domain.as_deref() {
            None => &mut every,
            Some(d) if d == domain => &mut own,
            Some(_) => continue,
        };
        if slot.is_none_or(|best| (v.effective_at, v.seq) > (best.effective_at, best.seq)) {
            *slot = Some(v);
        }
    }
    own.or(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_lowercase_hex_of_64_digits() {
        assert!(is_hash(GENESIS_HASH));
        assert!(is_hash(&"0123456789abcdef".repeat(4)));
        assert!(!is_hash(&"0123456789ABCDEF".repeat(4)));
        assert!(!is_hash(&"a".repeat(63)));
        assert!(!is_hash(&"a".repeat(65)));
        assert!(!is_hash(&format!("{}g", "a".repeat(63))));
        assert!(!is_hash(""));
    }

    #[test]
    fn links_follow_the_last_receipt() {
        let mut r = NewReceipt {
            seq: 1,
            username: "u".into(),
            domain: "d".into(),
            resource: String::new(),
            policy_hash: GENESIS_HASH.into(),
            method: "m".into(),
            accepted_at: 0,
            remote_addr: None,
            client: None,
            prev_hash: GENESIS_HASH.into(),
            hash: "1".repeat(64),
            signature: "s".into(),
        };
        assert_eq!(check_link(None, &r), Ok(()));
        r.seq = 2;
        assert!(matches!(check_link(None, &r), Err(StoreError::Conflict(_))));
        let last = "2".repeat(64);
        assert!(matches!(
            check_link(Some((1, &last)), &r),
            Err(StoreError::Conflict(_))
        ));
        r.prev_hash = last.clone();
        assert_eq!(check_link(Some((1, &last)), &r), Ok(()));
        r.seq = i64::MIN;
        assert!(matches!(
            check_link(Some((i64::MAX, &last)), &r),
            Err(StoreError::Conflict(_))
        ));
    }
}
