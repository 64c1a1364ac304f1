//! [`BlockingStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Arc;

use super::{BlockingStore, distinct_jids};
use crate::StoreError;
use crate::memory::MemoryDb;

pub(crate) struct MemoryBlockingStore {
    db: Arc<MemoryDb>,
}

impl MemoryBlockingStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryBlockingStore {
        MemoryBlockingStore { db }
    }
}

#[async_trait]
impl BlockingStore for MemoryBlockingStore {
    async fn blocklist(&self, username: &str, domain: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .map_or_else(Vec::new, |a| a.blocklist.clone()))
    }

    async fn block(&self, username: &str, domain: &str, jids: &[String]) -> Result<(), StoreError> {
        let jids = distinct_jids(jids)?;
        let mut state = self.db.lock();
        let list = &mut state.account_mut(username, domain)?.blocklist;
        let present: HashSet<String> = list.iter().cloned().collect();
        list.extend(
            jids.into_iter()
                .filter(|j| !present.contains(*j))
                .map(str::to_owned),
        );
        Ok(())
    }

    async fn unblock(
        &self,
        username: &str,
        domain: &str,
        jids: &[String],
    ) -> Result<(), StoreError> {
        let jids = distinct_jids(jids)?;
        let mut state = self.db.lock();
        let list = &mut state.account_mut(username, domain)?.blocklist;
        if jids.is_empty() {
            list.clear();
        } else {
            let gone: HashSet<&str> = jids.into_iter().collect();
            list.retain(|j| !gone.contains(j.as_str()));
        }
        Ok(())
    }
}
