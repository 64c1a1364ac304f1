//! [`RosterStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{PendingSubscription, RosterItem, RosterStore, stored_item, validate_pending};
use crate::StoreError;
use crate::memory::MemoryDb;
use crate::users::account;

/// One account's roster, kept inside its account record.
#[derive(Default)]
pub(crate) struct AccountRoster {
    /// Keyed by contact JID: the `BTreeMap` order is the byte order `roster` promises.
    pub(crate) items: BTreeMap<String, RosterItem>,
    pub(crate) version: u64,
    /// Oldest first, one per contact.
    pub(crate) pending_in: Vec<PendingSubscription>,
}

impl AccountRoster {
    fn bump(&mut self, username: &str, domain: &str) -> Result<u64, StoreError> {
        // The SQL backends keep the version in a signed 64-bit column; stop at the same bound.
        let next = self
            .version
            .checked_add(1)
            .filter(|v| i64::try_from(*v).is_ok())
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "roster version of {} is exhausted",
                    account(username, domain)
                ))
            })?;
        self.version = next;
        Ok(next)
    }
}

pub(crate) struct MemoryRosterStore {
    db: Arc<MemoryDb>,
}

impl MemoryRosterStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryRosterStore {
        MemoryRosterStore { db }
    }
}

#[async_trait]
impl RosterStore for MemoryRosterStore {
    async fn roster(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<(Vec<RosterItem>, u64), StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .map_or((Vec::new(), 0), |a| {
                (a.roster.items.values().cloned().collect(), a.roster.version)
            }))
    }

    async fn item(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .and_then(|a| a.roster.items.get(contact).cloned()))
    }

    async fn put_item(
        &self,
        username: &str,
        domain: &str,
        item: &RosterItem,
    ) -> Result<u64, StoreError> {
        let item = stored_item(item)?;
        let mut state = self.db.lock();
        let roster = &mut state.account_mut(username, domain)?.roster;
        let version = roster.bump(username, domain)?;
        roster.items.insert(item.jid.clone(), item);
        Ok(version)
    }

    async fn remove_item(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<Option<u64>, StoreError> {
        let mut state = self.db.lock();
        let roster = &mut state.account_mut(username, domain)?.roster;
        if !roster.items.contains_key(contact) {
            return Ok(None);
        }
        let version = roster.bump(username, domain)?;
        roster.items.remove(contact);
        Ok(Some(version))
    }

    async fn version(&self, username: &str, domain: &str) -> Result<u64, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .map_or(0, |a| a.roster.version))
    }

    async fn count_items(&self, username: &str, domain: &str) -> Result<u64, StoreError> {
        Ok(self.db.lock().account(username, domain).map_or(0, |a| {
            u64::try_from(a.roster.items.len()).unwrap_or(u64::MAX)
        }))
    }

    async fn pending_in(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Vec<PendingSubscription>, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .map_or_else(Vec::new, |a| a.roster.pending_in.clone()))
    }

    async fn add_pending_in(
        &self,
        username: &str,
        domain: &str,
        p: &PendingSubscription,
    ) -> Result<(), StoreError> {
        validate_pending(p)?;
        let mut state = self.db.lock();
        let pending = &mut state.account_mut(username, domain)?.roster.pending_in;
        match pending.iter_mut().find(|q| q.contact == p.contact) {
            Some(existing) => existing.stanza.clone_from(&p.stanza),
            None => pending.push(p.clone()),
        }
        Ok(())
    }

    async fn remove_pending_in(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.db.lock();
        let pending = &mut state.account_mut(username, domain)?.roster.pending_in;
        match pending.iter().position(|q| q.contact == contact) {
            Some(index) => {
                pending.remove(index);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
