//! Messages kept for accounts that had no available resource (XEP-0160), in arrival order, with
//! a per-account quota.

use async_trait::async_trait;

use crate::StoreError;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Increasing in arrival order within an account.
    pub id: i64,
    /// The stanza as routed (with its `from` and any XEP-0203 `<delay/>` the caller added), serialized.
    pub stanza: String,
    /// Unix seconds when it was stored.
    pub stored_at: i64,
}

/// Offline messages. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::offline`].
///
/// Reads of an account that does not exist answer as for an empty queue; every write to one
/// fails with [`StoreError::NotFound`]. Removing the account removes its messages. Ids are never
/// reused, so a late `remove` of an id already removed cannot hit a newer message.
#[async_trait]
pub trait OfflineStore: Send + Sync {
    /// Appends a message unless the account already holds `quota` messages: `Ok(false)` then, and
    /// nothing is written. `NotFound` if the account does not exist.
    ///
    /// The quota check and the insert are one atomic step: concurrent pushes to one account
    /// never leave more than `quota` messages. `InvalidInput` when the stanza contains U+0000;
    /// its size is the caller's limit to enforce.
    async fn push(
        &self,
        username: &str,
        domain: &str,
        stanza: &str,
        stored_at: i64,
        quota: u64,
    ) -> Result<bool, StoreError>;
    /// The stored messages in arrival order, at most `limit`, without removing them.
    async fn list(
        &self,
        username: &str,
        domain: &str,
        limit: u64,
    ) -> Result<Vec<OfflineMessage>, StoreError>;
    /// Removes these messages (after they were handed to a session); unknown ids, and ids of
    /// another account's messages, are ignored. `NotFound` if the account does not exist.
    async fn remove(&self, username: &str, domain: &str, ids: &[i64]) -> Result<(), StoreError>;
    async fn count(&self, username: &str, domain: &str) -> Result<u64, StoreError>;
}

pub(crate) fn validate_stanza(stanza: &str) -> Result<(), StoreError> {
    crate::validate::text("offline message", stanza, None)
}
