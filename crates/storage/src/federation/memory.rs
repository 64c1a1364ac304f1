//! [`FederationStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::sync::Arc;

use super::{FederationStore, Partner, PartnerRule, validate_entry};
use crate::StoreError;
use crate::memory::{MemoryDb, State};

pub(crate) struct MemoryFederationStore {
    db: Arc<MemoryDb>,
}

impl MemoryFederationStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryFederationStore {
        MemoryFederationStore { db }
    }
}

fn bump(state: &mut State) -> Result<(), StoreError> {
    state.federation_revision = state
        .federation_revision
        .checked_add(1)
        .ok_or_else(|| StoreError::Backend("federation revisions are exhausted".to_owned()))?;
    Ok(())
}

#[async_trait]
impl FederationStore for MemoryFederationStore {
    async fn set_partner(
        &self,
        domain: &str,
        rule: PartnerRule,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        validate_entry(domain, note)?;
        let mut state = self.db.lock();
        bump(&mut state)?;
        state.partners.insert(
            domain.to_owned(),
            Partner {
                domain: domain.to_owned(),
                rule,
                note: note.map(str::to_owned),
                updated_at: now,
            },
        );
        Ok(())
    }

    async fn remove_partner(&self, domain: &str) -> Result<bool, StoreError> {
        let mut state = self.db.lock();
        if !state.partners.contains_key(domain) {
            return Ok(false);
        }
        bump(&mut state)?;
        state.partners.remove(domain);
        Ok(true)
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        Ok(self.db.lock().partners.values().cloned().collect())
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        Ok(self.db.lock().federation_revision)
    }
}
