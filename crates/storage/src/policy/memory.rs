//! [`PolicyStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::sync::Arc;

use super::{
    NewPolicyVersion, NewReceipt, PolicyStore, PolicyVersion, ReceiptFilter, StoredReceipt,
    already_published, check_link, pick_current, validate_receipt, validate_version,
};
use crate::StoreError;
use crate::memory::MemoryDb;

pub(crate) struct MemoryPolicyStore {
    db: Arc<MemoryDb>,
}

impl MemoryPolicyStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryPolicyStore {
        MemoryPolicyStore { db }
    }
}

#[async_trait]
impl PolicyStore for MemoryPolicyStore {
    async fn publish(&self, v: &NewPolicyVersion) -> Result<PolicyVersion, StoreError> {
        validate_version(v)?;
        let mut state = self.db.lock();
        if state
            .policy_versions
            .iter()
            .any(|p| p.hash == v.hash && p.domain == v.domain)
        {
            return Err(already_published(v));
        }
        let seq = state
            .policy_versions
            .last()
            .map_or(Some(1), |p| p.seq.checked_add(1))
            .ok_or_else(|| StoreError::Backend("policy version numbers are exhausted".into()))?;
        let version = PolicyVersion::new(seq, v);
        state.policy_versions.push(version.clone());
        Ok(version)
    }

    async fn versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        Ok(self.db.lock().policy_versions.clone())
    }

    async fn version_by_hash(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError> {
        Ok(self
            .db
            .lock()
            .policy_versions
            .iter()
            .find(|p| p.hash == hash)
            .cloned())
    }

    async fn current(&self, domain: &str, now: i64) -> Result<Option<PolicyVersion>, StoreError> {
        let state = self.db.lock();
        Ok(pick_current(&state.policy_versions, domain, now).cloned())
    }

    async fn append_receipt(&self, r: &NewReceipt) -> Result<StoredReceipt, StoreError> {
        validate_receipt(r)?;
        let mut state = self.db.lock();
        check_link(state.receipts.last().map(|l| (l.seq, l.hash.as_str())), r)?;
        let stored = StoredReceipt::from(r);
        state.receipts.push(stored.clone());
        Ok(stored)
    }

    async fn last_receipt(&self) -> Result<Option<StoredReceipt>, StoreError> {
        Ok(self.db.lock().receipts.last().cloned())
    }

    async fn receipts(&self, f: &ReceiptFilter) -> Result<Vec<StoredReceipt>, StoreError> {
        let limit = usize::try_from(f.effective_limit()).unwrap_or(usize::MAX);
        let state = self.db.lock();
        // Seqs increase along the chain: start past `after_seq` without looking at what precedes.
        let start = f.after_seq.map_or(0, |after| {
            state.receipts.partition_point(|r| r.seq <= after)
        });
        Ok(state.receipts[start..]
            .iter()
            .filter(|r| r.matches(f))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn acceptance(
        &self,
        username: &str,
        domain: &str,
        policy_hash: &str,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        Ok(self
            .db
            .lock()
            .receipts
            .iter()
            .rev()
            .find(|r| r.username == username && r.domain == domain && r.policy_hash == policy_hash)
            .cloned())
    }
}
