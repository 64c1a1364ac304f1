//! [`AuditStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::sync::Arc;

use super::{AuditEvent, AuditFilter, AuditStore, NewAuditEvent, validate_event};
use crate::StoreError;
use crate::memory::MemoryDb;

pub(crate) struct MemoryAuditStore {
    db: Arc<MemoryDb>,
}

impl MemoryAuditStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryAuditStore {
        MemoryAuditStore { db }
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn append(&self, ev: &NewAuditEvent) -> Result<i64, StoreError> {
        validate_event(ev)?;
        let mut state = self.db.lock();
        let id = state
            .last_audit_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("audit event ids are exhausted".to_owned()))?;
        state.audit.push(AuditEvent::new(id, ev));
        state.last_audit_id = id;
        Ok(id)
    }

    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = usize::try_from(filter.effective_limit()).unwrap_or(usize::MAX);
        let state = self.db.lock();
        // Ids increase along the log: start past `after_id` without looking at what precedes.
        let start = filter
            .after_id
            .map_or(0, |after| state.audit.partition_point(|e| e.id <= after));
        Ok(state.audit[start..]
            .iter()
            .filter(|e| e.matches(filter))
            .take(limit)
            .cloned()
            .collect())
    }
}
