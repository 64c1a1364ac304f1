//! Blocklists (XEP-0191): the JIDs (bare, full or domain) an account blocks.

use async_trait::async_trait;

use crate::StoreError;

#[async_trait]
pub trait BlockingStore: Send + Sync {
    /// The blocked JIDs, in the order they were added.
    async fn blocklist(&self, username: &str, domain: &str) -> Result<Vec<String>, StoreError>;
    /// Adds JIDs (those already blocked are kept once). `NotFound` if the account does not exist.
    async fn block(&self, username: &str, domain: &str, jids: &[String]) -> Result<(), StoreError>;
    /// Removes these JIDs; an empty slice removes all (XEP-0191 §3.4).
    async fn unblock(&self, username: &str, domain: &str, jids: &[String]) -> Result<(), StoreError>;
}
