//! [`EvidenceStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::sync::Arc;

use super::{
    EvidenceFilter, EvidenceStore, NewEvidence, REVIEW_PENDING, StoredEvidence, check_link,
    no_record, not_pending, validate_evidence, validate_review,
};
use crate::StoreError;
use crate::memory::{MemoryDb, State};

pub(crate) struct MemoryEvidenceStore {
    db: Arc<MemoryDb>,
}

impl MemoryEvidenceStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryEvidenceStore {
        MemoryEvidenceStore { db }
    }
}

/// The index of the record at `seq` in the chain (seqs increase along it).
fn position(state: &State, seq: i64) -> Option<usize> {
    state.evidence.binary_search_by_key(&seq, |e| e.seq).ok()
}

#[async_trait]
impl EvidenceStore for MemoryEvidenceStore {
    async fn append(&self, e: &NewEvidence) -> Result<StoredEvidence, StoreError> {
        validate_evidence(e)?;
        let mut state = self.db.lock();
        check_link(state.evidence.last().map(|l| (l.seq, l.hash.as_str())), e)?;
        let stored = StoredEvidence::from(e);
        state.evidence.push(stored.clone());
        Ok(stored)
    }

    async fn last(&self) -> Result<Option<StoredEvidence>, StoreError> {
        Ok(self.db.lock().evidence.last().cloned())
    }

    async fn get(&self, seq: i64) -> Result<Option<StoredEvidence>, StoreError> {
        let state = self.db.lock();
        Ok(position(&state, seq).map(|i| state.evidence[i].clone()))
    }

    async fn list(&self, f: &EvidenceFilter) -> Result<Vec<StoredEvidence>, StoreError> {
        let limit = usize::try_from(f.effective_limit()).unwrap_or(usize::MAX);
        let state = self.db.lock();
        let start = f.after_seq.map_or(0, |after| {
            state.evidence.partition_point(|e| e.seq <= after)
        });
        Ok(state.evidence[start..]
            .iter()
            .filter(|e| e.matches(f))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn set_legal_hold(&self, seq: i64, hold: bool) -> Result<bool, StoreError> {
        let mut state = self.db.lock();
        let Some(i) = position(&state, seq) else {
            return Ok(false);
        };
        state.evidence[i].legal_hold = hold;
        Ok(true)
    }

    async fn set_review(
        &self,
        seq: i64,
        state: &str,
        by: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<StoredEvidence, StoreError> {
        validate_review(state, by, reason)?;
        let mut db = self.db.lock();
        let i = position(&db, seq).ok_or_else(|| no_record(seq))?;
        let record = &mut db.evidence[i];
        if record.review.as_deref() != Some(REVIEW_PENDING) {
            return Err(not_pending(seq, record.review.as_deref()));
        }
        record.review = Some(state.to_owned());
        record.reviewed_by = Some(by.to_owned());
        record.reviewed_at = Some(at);
        record.review_reason = reason.map(str::to_owned);
        Ok(record.clone())
    }

    async fn unhandled_decisions(&self, limit: u64) -> Result<Vec<StoredEvidence>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .db
            .lock()
            .evidence
            .iter()
            .filter(|e| e.awaiting_handling())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn claim_decision(
        &self,
        seq: i64,
        at: i64,
    ) -> Result<Option<StoredEvidence>, StoreError> {
        let mut db = self.db.lock();
        let i = position(&db, seq).ok_or_else(|| no_record(seq))?;
        let record = &mut db.evidence[i];
        if !record.awaiting_handling() {
            return Ok(None);
        }
        record.handled_at = Some(at);
        let claimed = StoredEvidence {
            held: record.held.take(),
            ..record.clone()
        };
        Ok(Some(claimed))
    }

    async fn purge(&self, before: i64, now: i64) -> Result<u64, StoreError> {
        let mut state = self.db.lock();
        let mut purged = 0;
        for record in state.evidence.iter_mut().filter(|e| e.purgeable(before)) {
            record.payload = None;
            record.purged_at = Some(now);
            purged += 1;
        }
        Ok(purged)
    }
}
