//! [`AccountDataStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::sync::Arc;

use super::{AccountDataStore, validate_key, validate_value};
use crate::StoreError;
use crate::memory::MemoryDb;

pub(crate) struct MemoryAccountDataStore {
    db: Arc<MemoryDb>,
}

impl MemoryAccountDataStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryAccountDataStore {
        MemoryAccountDataStore { db }
    }
}

#[async_trait]
impl AccountDataStore for MemoryAccountDataStore {
    async fn get(
        &self,
        username: &str,
        domain: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .and_then(|a| a.data.get(key).cloned()))
    }

    async fn put(
        &self,
        username: &str,
        domain: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        validate_key(key)?;
        validate_value(value)?;
        let mut state = self.db.lock();
        state
            .account_mut(username, domain)?
            .data
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn delete(&self, username: &str, domain: &str, key: &str) -> Result<bool, StoreError> {
        let mut state = self.db.lock();
        Ok(state
            .account_mut(username, domain)?
            .data
            .remove(key)
            .is_some())
    }
}
