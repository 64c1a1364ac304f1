//! Blocklists (XEP-0191): the JIDs (bare, full or domain) an account blocks.

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Blocklists. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::blocking`].
///
/// JIDs are stored as given (the caller prepares them) and compared byte by byte. Reads of an
/// account that does not exist find an empty list; every write to one fails with
/// [`StoreError::NotFound`]. Removing the account removes its blocklist.
#[async_trait]
pub trait BlockingStore: Send + Sync {
    /// The blocked JIDs, in the order they were added.
    async fn blocklist(&self, username: &str, domain: &str) -> Result<Vec<String>, StoreError>;
    /// Adds JIDs (those already blocked are kept once). `NotFound` if the account does not exist.
    ///
    /// New JIDs go to the end in the order given, a JID named twice in `jids` counting once.
    /// `InvalidInput`, and nothing is written, when a JID is empty, longer than
    /// [`crate::MAX_JID_BYTES`] or contains U+0000.
    async fn block(&self, username: &str, domain: &str, jids: &[String]) -> Result<(), StoreError>;
    /// Removes these JIDs; an empty slice removes all (XEP-0191 §3.4). JIDs not on the list are
    /// ignored. `NotFound` if the account does not exist.
    async fn unblock(
        &self,
        username: &str,
        domain: &str,
        jids: &[String],
    ) -> Result<(), StoreError>;
}

/// Checks `jids` and returns them without repeats, first occurrence kept.
pub(crate) fn distinct_jids(jids: &[String]) -> Result<Vec<&str>, StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(jids.len());
    let mut out = Vec::with_capacity(jids.len());
    for jid in jids {
        validate::jid("blocked JID", jid)?;
        if seen.insert(jid.as_str()) {
            out.push(jid.as_str());
        }
    }
    Ok(out)
}
