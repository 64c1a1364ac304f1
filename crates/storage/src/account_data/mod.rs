//! Small per-account documents kept by key: the vCard (XEP-0054, key `vcard`), private XML storage
//! (XEP-0049, key `private:` + namespace), the last logout (XEP-0012, key `last`), and whatever
//! later modules need. Values are opaque text (serialized XML or short strings) with a size limit
//! chosen by the caller.

use async_trait::async_trait;

use crate::StoreError;

#[async_trait]
pub trait AccountDataStore: Send + Sync {
    async fn get(&self, username: &str, domain: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Inserts or replaces. `NotFound` if the account does not exist.
    async fn put(&self, username: &str, domain: &str, key: &str, value: &str) -> Result<(), StoreError>;
    /// Whether there was a value.
    async fn delete(&self, username: &str, domain: &str, key: &str) -> Result<bool, StoreError>;
}
