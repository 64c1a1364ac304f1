//! The federation partner list: per remote domain, whether server-to-server traffic with it is
//! allowed or denied (RFC 6120 §13.1 leaves the choice of peers to local policy), with a
//! revision number that tells a running server when to reload it.

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Longest domain the store accepts: RFC 7622 §3.2 allows 1023 bytes for a domainpart.
pub const MAX_DOMAIN_BYTES: usize = 1023;
/// Longest note on an entry.
pub const MAX_NOTE_BYTES: usize = 1023;

/// What the partner list says about a remote domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerRule {
    Allow,
    Deny,
}

impl PartnerRule {
    /// The stored form: `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerRule::Allow => "allow",
            PartnerRule::Deny => "deny",
        }
    }

    /// The rule whose [`as_str`](PartnerRule::as_str) is `s`, if any.
    pub fn parse(s: &str) -> Option<PartnerRule> {
        match s {
            "allow" => Some(PartnerRule::Allow),
            "deny" => Some(PartnerRule::Deny),
            _ => None,
        }
    }
}

impl std::fmt::Display for PartnerRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the partner list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// The remote domain, as prepared by the caller (lower case, IDNA U-label form).
    pub domain: String,
    pub rule: PartnerRule,
    /// Free text from the administrator (why, who asked, a ticket).
    pub note: Option<String>,
    /// Unix seconds of the last [`set_partner`](FederationStore::set_partner) for the domain.
    pub updated_at: i64,
}

/// The partner list. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::federation`].
///
/// Domains are stored as given (the caller prepares them, RFC 7622 §3.2) and compared byte by
/// byte. The list is shared by every process on the database: the server polls
/// [`revision`](FederationStore::revision) and reloads when it moved, so that a change made by
/// the command-line tool while the server runs takes effect without a restart.
#[async_trait]
pub trait FederationStore: Send + Sync {
    /// Sets (inserts or replaces) the rule and note for a domain, stamped `now` (Unix seconds),
    /// and moves the revision forward in the same transaction.
    ///
    /// `InvalidInput`, and nothing is written, when the domain is empty, longer than
    /// [`MAX_DOMAIN_BYTES`] or contains U+0000, or the note is longer than [`MAX_NOTE_BYTES`]
    /// or contains U+0000.
    async fn set_partner(
        &self,
        domain: &str,
        rule: PartnerRule,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Removes a domain's entry and moves the revision forward; `Ok(false)`, and the revision
    /// left as it was, when there was none.
    async fn remove_partner(&self, domain: &str) -> Result<bool, StoreError>;
    /// Every entry, ordered by domain (byte order).
    async fn partners(&self) -> Result<Vec<Partner>, StoreError>;
    /// A number that strictly increases with every change of the list (and only then), kept in
    /// the database so that changes made by another process are seen; 0 before the first one.
    ///
    /// A reload reads the revision first, then [`partners`](FederationStore::partners): a
    /// change committed between the two shows as a newer revision at the next poll.
    async fn revision(&self) -> Result<i64, StoreError>;
}

/// Checks what `set_partner` is about to write.
pub(crate) fn validate_entry(domain: &str, note: Option<&str>) -> Result<(), StoreError> {
    validate_domain(domain)?;
    if let Some(note) = note {
        validate::text("partner note", note, Some(MAX_NOTE_BYTES))?;
    }
    Ok(())
}

pub(crate) fn validate_domain(domain: &str) -> Result<(), StoreError> {
    if domain.is_empty() {
        return Err(StoreError::InvalidInput("empty partner domain".to_owned()));
    }
    validate::text("partner domain", domain, Some(MAX_DOMAIN_BYTES))
}
