//! The in-memory backend's one state, shared by all its stores the way the tables of one
//! database are: every per-account record lives inside the account it belongs to, so removing
//! an account removes everything stored for it, as `ON DELETE CASCADE` does on the SQL backends,
//! and a write for an account that does not exist finds nowhere to go (`NotFound`), as the
//! foreign keys make it on the SQL backends. Server-wide records (the federation partner list,
//! the audit log, policy versions and acceptance receipts, compliance evidence, shared roster
//! groups) sit beside the accounts; receipts and evidence are not part of any account and outlive
//! it, as on the SQL backends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::audit::AuditEvent;
use crate::evidence::StoredEvidence;
use crate::federation::Partner;
use crate::offline::OfflineMessage;
use crate::policy::{PolicyVersion, StoredReceipt};
use crate::users::{AccountLock, StoredCredential, account};
use crate::{StoreError, roster};

/// One account and everything stored for it.
pub(crate) struct Account {
    pub(crate) created_at: i64,
    /// Keyed by hash name, mirroring the `(user, hash)` key of the SQL schema.
    pub(crate) credentials: BTreeMap<String, StoredCredential>,
    pub(crate) roster: roster::memory::AccountRoster,
    /// Oldest first.
    pub(crate) offline: VecDeque<OfflineMessage>,
    /// Keyed like the `(user, key)` primary key of the SQL schema.
    pub(crate) data: BTreeMap<String, String>,
    /// In the order the JIDs were added, each once.
    pub(crate) blocklist: Vec<String>,
    pub(crate) lock: Option<AccountLock>,
}

impl Account {
    pub(crate) fn new(created_at: i64, credentials: BTreeMap<String, StoredCredential>) -> Account {
        Account {
            created_at,
            credentials,
            roster: roster::memory::AccountRoster::default(),
            offline: VecDeque::new(),
            data: BTreeMap::new(),
            blocklist: Vec::new(),
            lock: None,
        }
    }
}

/// Keyed by `(domain, username)`: the `BTreeMap` order is the byte order `list_users` promises.
pub(crate) type Accounts = BTreeMap<(String, String), Account>;

pub(crate) struct State {
    pub(crate) accounts: Accounts,
    /// The last offline message id handed out. Ids are never reused, even across accounts,
    /// like the SQL backends' autoincrement key.
    pub(crate) last_offline_id: i64,
    /// The federation partner list, keyed by domain: the `BTreeMap` order is the byte order
    /// `partners` promises.
    pub(crate) partners: BTreeMap<String, Partner>,
    /// Moved forward by every change of `partners`, like the SQL backends' counter row.
    pub(crate) federation_revision: i64,
    /// The audit log, oldest first; ids increase along it.
    pub(crate) audit: Vec<AuditEvent>,
    /// The last audit event id handed out.
    pub(crate) last_audit_id: i64,
    /// Published policy versions, by seq (1, 2, …).
    pub(crate) policy_versions: Vec<PolicyVersion>,
    /// The receipt chain, by seq (1, 2, …).
    pub(crate) receipts: Vec<StoredReceipt>,
    /// The evidence chain, by seq (1, 2, …).
    pub(crate) evidence: Vec<StoredEvidence>,
    /// Shared roster groups by name: the `BTreeMap` order is the byte order `groups` promises.
    pub(crate) shared_groups: BTreeMap<String, crate::groups::memory::MemoryGroup>,
}

impl State {
    pub(crate) fn account(&self, username: &str, domain: &str) -> Option<&Account> {
        self.accounts.get(&key(username, domain))
    }

    /// The account a write goes to; `NotFound` when it does not exist.
    pub(crate) fn account_mut(
        &mut self,
        username: &str,
        domain: &str,
    ) -> Result<&mut Account, StoreError> {
        self.accounts
            .get_mut(&key(username, domain))
            .ok_or_else(|| StoreError::NotFound(account(username, domain)))
    }
}

pub(crate) fn key(username: &str, domain: &str) -> (String, String) {
    (domain.to_owned(), username.to_owned())
}

pub(crate) struct MemoryDb {
    state: Mutex<State>,
}

impl Default for MemoryDb {
    fn default() -> Self {
        MemoryDb {
            state: Mutex::new(State {
                accounts: Accounts::new(),
                last_offline_id: 0,
                partners: BTreeMap::new(),
                federation_revision: 0,
                audit: Vec::new(),
                last_audit_id: 0,
                policy_versions: Vec::new(),
                receipts: Vec::new(),
                evidence: Vec::new(),
                shared_groups: BTreeMap::new(),
            }),
        }
    }
}

impl MemoryDb {
    /// No code path panics while holding the lock, and every store validates its input before
    /// changing anything, so even if one ever did the state would be consistent: a poisoned
    /// lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
