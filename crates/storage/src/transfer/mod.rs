//! Whole accounts in and out at once, for moving between servers (XEP-0227 exports and imports):
//! an account with its credentials, roster, pending subscription requests, offline messages and
//! per-account documents, read in one consistent snapshot and written in one transaction.
//!
//! The per-feature stores change one thing at a time; an import must instead write many
//! accounts and everything they own together, or nothing at all, and decide what to do with
//! accounts that already exist, atomically with the writes. That is this store.

use async_trait::async_trait;
use std::collections::HashSet;

use crate::StoreError;
use crate::account_data::{validate_key, validate_value};
use crate::offline::validate_stanza;
use crate::roster::{PendingSubscription, RosterItem, stored_item, validate_pending};
use crate::users::{NewUser, StoredCredential, account, validate_new_user};

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// A message kept for an account that had no available resource, as exported or imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferredMessage {
    /// The stanza, serialized as the offline store keeps it.
    pub stanza: String,
    /// Unix seconds when it was stored.
    pub stored_at: i64,
}

/// One account and everything a move between servers carries for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountRecord {
    /// The prepared localpart.
    pub username: String,
    /// The prepared domainpart.
    pub domain: String,
    /// SCRAM verifiers, at most one per hash function; none for an account that cannot log in
    /// until a password is set.
    pub credentials: Vec<StoredCredential>,
    /// Roster items, each contact once.
    pub roster: Vec<RosterItem>,
    /// Subscription requests waiting for an answer, oldest first, each contact once.
    pub pending_in: Vec<PendingSubscription>,
    /// Offline messages, oldest first.
    pub offline: Vec<TransferredMessage>,
    /// Per-account documents by key (`vcard`, `private:` + namespace, …), each key once.
    pub data: Vec<(String, String)>,
}

/// What [`TransferStore::import_accounts`] does with an account that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingAccounts {
    /// Nothing is written: the import fails with [`StoreError::AlreadyExists`] naming the first
    /// such account in input order.
    Refuse,
    /// The existing account is left as it is and the record is not written.
    Skip,
    /// The existing account and everything stored for it are removed, then the record is
    /// written in their place.
    Replace,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Accounts that did not exist and were created.
    pub created: usize,
    /// Accounts that existed and were replaced.
    pub replaced: usize,
    /// Accounts that existed and were left alone, as `user@domain`, in input order.
    pub skipped: Vec<String>,
}

/// Called during an import with (records handled so far, records in all).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

/// Whole-account reads and writes. Every backend implements the same observable behaviour,
/// checked by [`crate::conformance::transfer`].
#[async_trait]
pub trait TransferStore: Send + Sync {
    /// Everything kept for the account, read at one point in time; `None` when it does not
    /// exist. Roster items come ordered by contact, documents by key (both byte order).
    async fn export_account(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountRecord>, StoreError>;

    /// Writes every record in one transaction: all of them or, on any error, nothing.
    ///
    /// Every record is checked before anything is written, with the rules of the per-feature
    /// stores ([`StoreError::InvalidInput`]); an account appearing twice in `records` is
    /// [`StoreError::AlreadyExists`]. Accounts that exist already are handled per `existing`.
    /// Offline messages are written whatever the offline quota: it limits what arrives later.
    /// A roster that has items gets a new version, larger than any the account had.
    async fn import_accounts(
        &self,
        records: &[AccountRecord],
        existing: ExistingAccounts,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportOutcome, StoreError>;
}

/// Checks every record as the per-feature stores would, and returns them as they will be
/// stored (roster groups without duplicates).
pub(crate) fn validate_records(
    records: &[AccountRecord],
) -> Result<Vec<AccountRecord>, StoreError> {
    let mut accounts = HashSet::with_capacity(records.len());
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let who = account(&record.username, &record.domain);
        validate_new_user(&NewUser {
            username: record.username.clone(),
            domain: record.domain.clone(),
            credentials: record.credentials.clone(),
        })?;
        if !accounts.insert((record.domain.as_str(), record.username.as_str())) {
            return Err(StoreError::AlreadyExists(who));
        }
        let mut contacts = HashSet::with_capacity(record.roster.len());
        let mut roster = Vec::with_capacity(record.roster.len());
        for item in &record.roster {
            if !contacts.insert(item.jid.as_str()) {
                return Err(StoreError::InvalidInput(format!(
                    "{} twice in the roster of {who}",
                    item.jid
                )));
            }
            roster.push(stored_item(item)?);
        }
        let mut requesters = HashSet::with_capacity(record.pending_in.len());
        for p in &record.pending_in {
            validate_pending(p)?;
            if !requesters.insert(p.contact.as_str()) {
                return Err(StoreError::InvalidInput(format!(
                    "two subscription requests from {} to {who}",
                    p.contact
                )));
            }
        }
        for m in &record.offline {
            validate_stanza(&m.stanza)?;
        }
        let mut keys = HashSet::with_capacity(record.data.len());
        for (key, value) in &record.data {
            validate_key(key)?;
            validate_value(value)?;
            if !keys.insert(key.as_str()) {
                return Err(StoreError::InvalidInput(format!(
                    "account data key {key:?} twice for {who}"
                )));
            }
        }
        out.push(AccountRecord {
            roster,
            ..record.clone()
        });
    }
    Ok(out)
}

/// The version an imported roster starts at: the current time in seconds, far above the small
/// counters that rosters usually reach, so that a version a client cached before the move (from
/// this server or another that also counts) does not match the imported roster by chance and
/// the client gets the whole roster (RFC 6121 §2.6).
pub(crate) fn imported_roster_version(previous: u64) -> u64 {
    let now = u64::try_from(crate::users::now_unix()).unwrap_or(0);
    now.max(previous.saturating_add(1)).max(1)
}
