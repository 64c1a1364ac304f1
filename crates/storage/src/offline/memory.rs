//! [`OfflineStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Arc;

use super::{OfflineMessage, OfflineStore, validate_stanza};
use crate::StoreError;
use crate::memory::MemoryDb;

pub(crate) struct MemoryOfflineStore {
    db: Arc<MemoryDb>,
}

impl MemoryOfflineStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryOfflineStore {
        MemoryOfflineStore { db }
    }
}

#[async_trait]
impl OfflineStore for MemoryOfflineStore {
    async fn push(
        &self,
        username: &str,
        domain: &str,
        stanza: &str,
        stored_at: i64,
        quota: u64,
    ) -> Result<bool, StoreError> {
        validate_stanza(stanza)?;
        let mut state = self.db.lock();
        let next_id = state
            .last_offline_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("offline message ids are exhausted".to_owned()))?;
        let queue = &mut state.account_mut(username, domain)?.offline;
        if u64::try_from(queue.len()).unwrap_or(u64::MAX) >= quota {
            return Ok(false);
        }
        queue.push_back(OfflineMessage {
            id: next_id,
            stanza: stanza.to_owned(),
            stored_at,
        });
        state.last_offline_id = next_id;
        Ok(true)
    }

    async fn list(
        &self,
        username: &str,
        domain: &str,
        limit: u64,
    ) -> Result<Vec<OfflineMessage>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .map_or_else(Vec::new, |a| {
                a.offline.iter().take(limit).cloned().collect()
            }))
    }

    async fn remove(&self, username: &str, domain: &str, ids: &[i64]) -> Result<(), StoreError> {
        let mut state = self.db.lock();
        let queue = &mut state.account_mut(username, domain)?.offline;
        if ids.is_empty() {
            return Ok(());
        }
        let ids: HashSet<i64> = ids.iter().copied().collect();
        queue.retain(|m| !ids.contains(&m.id));
        Ok(())
    }

    async fn count(&self, username: &str, domain: &str) -> Result<u64, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .map_or(0, |a| u64::try_from(a.offline.len()).unwrap_or(u64::MAX)))
    }
}
