//! [`TransferStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::{
    AccountRecord, ExistingAccounts, ImportOutcome, Progress, TransferStore, TransferredMessage,
    imported_roster_version, validate_records,
};
use crate::StoreError;
use crate::memory::{Account, MemoryDb, key};
use crate::offline::OfflineMessage;
use crate::users::{account, now_unix};

pub(crate) struct MemoryTransferStore {
    db: Arc<MemoryDb>,
}

impl MemoryTransferStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryTransferStore {
        MemoryTransferStore { db }
    }
}

#[async_trait]
impl TransferStore for MemoryTransferStore {
    async fn export_account(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let state = self.db.lock();
        Ok(state.account(username, domain).map(|a| AccountRecord {
            username: username.to_owned(),
            domain: domain.to_owned(),
            credentials: a.credentials.values().cloned().collect(),
            roster: a.roster.items.values().cloned().collect(),
            pending_in: a.roster.pending_in.clone(),
            offline: a
                .offline
                .iter()
                .map(|m| TransferredMessage {
                    stanza: m.stanza.clone(),
                    stored_at: m.stored_at,
                })
                .collect(),
            data: a.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }))
    }

    async fn import_accounts(
        &self,
        records: &[AccountRecord],
        existing: ExistingAccounts,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportOutcome, StoreError> {
        let records = validate_records(records)?;
        let mut state = self.db.lock();
        // Every decision is taken before the first change, so that a refusal changes nothing.
        let mut outcome = ImportOutcome::default();
        let mut writes = Vec::with_capacity(records.len());
        let mut messages: usize = 0;
        for record in &records {
            let exists = state.account(&record.username, &record.domain).is_some();
            match (exists, existing) {
                (false, _) => outcome.created += 1,
                (true, ExistingAccounts::Refuse) => {
                    return Err(StoreError::AlreadyExists(account(
                        &record.username,
                        &record.domain,
                    )));
                }
                (true, ExistingAccounts::Skip) => {
                    outcome
                        .skipped
                        .push(account(&record.username, &record.domain));
                    continue;
                }
                (true, ExistingAccounts::Replace) => outcome.replaced += 1,
            }
            messages = messages.saturating_add(record.offline.len());
            writes.push(record);
        }
        let last_id = i64::try_from(messages)
            .ok()
            .and_then(|n| state.last_offline_id.checked_add(n))
            .ok_or_else(|| StoreError::Backend("offline message ids are exhausted".to_owned()))?;

        let created_at = now_unix();
        let mut next_id = state.last_offline_id;
        for (done, record) in writes.into_iter().enumerate() {
            let previous = state
                .accounts
                .remove(&key(&record.username, &record.domain))
                .map_or(0, |a| a.roster.version);
            let credentials: BTreeMap<_, _> = record
                .credentials
                .iter()
                .map(|c| (c.hash.clone(), c.clone()))
                .collect();
            let mut new = Account::new(created_at, credentials);
            new.roster.items = record
                .roster
                .iter()
                .map(|item| (item.jid.clone(), item.clone()))
                .collect();
            if !record.roster.is_empty() || previous > 0 {
                new.roster.version = imported_roster_version(previous);
            }
            new.roster.pending_in = record.pending_in.clone();
            new.offline = record
                .offline
                .iter()
                .map(|m| {
                    next_id += 1;
                    OfflineMessage {
                        id: next_id,
                        stanza: m.stanza.clone(),
                        stored_at: m.stored_at,
                    }
                })
                .collect::<VecDeque<_>>();
            new.data = record.data.iter().cloned().collect();
            state
                .accounts
                .insert(key(&record.username, &record.domain), new);
            if let Some(report) = progress {
                report(done + 1, records.len());
            }
        }
        state.last_offline_id = last_id;
        Ok(outcome)
    }
}
