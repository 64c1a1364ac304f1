//! Small per-account documents kept by key: the vCard (XEP-0054, key `vcard`), private XML storage
//! (XEP-0049, key `private:` + namespace), the last logout (XEP-0012, key `last`), and whatever
//! later modules need. Values are opaque text (serialized XML or short strings) with a size limit
//! chosen by the caller.

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Upper bound on a key. Keys are chosen by the server's modules; a private XML key carries a
/// namespace, which is a URI of any length in principle and a short one in practice.
pub const MAX_KEY_BYTES: usize = 1023;

/// Per-account documents. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::account_data`].
///
/// Keys are compared byte by byte. Reads of an account that does not exist find nothing; every
/// write to one fails with [`StoreError::NotFound`]. Removing the account removes its documents.
#[async_trait]
pub trait AccountDataStore: Send + Sync {
    async fn get(
        &self,
        username: &str,
        domain: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Inserts or replaces. `NotFound` if the account does not exist; `InvalidInput` for an empty
    /// key, a key longer than [`MAX_KEY_BYTES`], or a key or value containing U+0000.
    async fn put(
        &self,
        username: &str,
        domain: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError>;
    /// Whether there was a value. `NotFound` if the account does not exist.
    async fn delete(&self, username: &str, domain: &str, key: &str) -> Result<bool, StoreError>;
}

pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidInput("empty account data key".into()));
    }
    validate::text("account data key", key, Some(MAX_KEY_BYTES))
}

pub(crate) fn validate_value(value: &str) -> Result<(), StoreError> {
    validate::text("account data value", value, None)
}
