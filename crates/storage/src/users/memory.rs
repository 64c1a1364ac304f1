//! [`UserStore`] in process memory, for unit tests of the layers above.

use async_trait::async_trait;
use std::sync::Arc;

use super::{
    AccountLock, LockChange, NewUser, StoredCredential, UserInfo, UserStore, account, now_unix,
    validate_batch, validate_credentials, validate_lock, validate_name, validate_new_user,
};
use crate::StoreError;
use crate::memory::{Account, MemoryDb, key};

pub(crate) struct MemoryUserStore {
    db: Arc<MemoryDb>,
}

impl MemoryUserStore {
    pub(crate) fn new(db: Arc<MemoryDb>) -> MemoryUserStore {
        MemoryUserStore { db }
    }
}

fn new_account(user: &NewUser, created_at: i64) -> Account {
    Account::new(
        created_at,
        user.credentials
            .iter()
            .map(|c| (c.hash.clone(), c.clone()))
            .collect(),
    )
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError> {
        validate_new_user(user)?;
        let mut state = self.db.lock();
        let accounts = &mut state.accounts;
        let k = key(&user.username, &user.domain);
        if accounts.contains_key(&k) {
            return Err(StoreError::AlreadyExists(account(
                &user.username,
                &user.domain,
            )));
        }
        accounts.insert(k, new_account(user, now_unix()));
        Ok(())
    }

    async fn import_users(&self, users: &[NewUser]) -> Result<usize, StoreError> {
        validate_batch(users)?;
        let mut state = self.db.lock();
        let accounts = &mut state.accounts;
        // Check everything before the first insert: all or nothing.
        if let Some(taken) = users
            .iter()
            .find(|u| accounts.contains_key(&key(&u.username, &u.domain)))
        {
            return Err(StoreError::AlreadyExists(account(
                &taken.username,
                &taken.domain,
            )));
        }
        let created_at = now_unix();
        for user in users {
            accounts.insert(
                key(&user.username, &user.domain),
                new_account(user, created_at),
            );
        }
        Ok(users.len())
    }

    async fn credential(
        &self,
        username: &str,
        domain: &str,
        hash: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .and_then(|a| a.credentials.get(hash).cloned()))
    }

    async fn set_credentials(
        &self,
        username: &str,
        domain: &str,
        creds: &[StoredCredential],
    ) -> Result<(), StoreError> {
        validate_name(username, domain)?;
        validate_credentials(username, domain, creds)?;
        let mut state = self.db.lock();
        let accounts = &mut state.accounts;
        let Some(existing) = accounts.get_mut(&key(username, domain)) else {
            return Err(StoreError::NotFound(account(username, domain)));
        };
        existing.credentials = creds.iter().map(|c| (c.hash.clone(), c.clone())).collect();
        Ok(())
    }

    async fn remove_user(&self, username: &str, domain: &str) -> Result<(), StoreError> {
        // Everything stored for the account lives inside it and goes with it.
        match self.db.lock().accounts.remove(&key(username, domain)) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(account(username, domain))),
        }
    }

    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserInfo>, StoreError> {
        Ok(self
            .db
            .lock()
            .accounts
            .iter()
            .filter(|((d, _), _)| domain.is_none_or(|want| want == d))
            .map(|((d, u), a)| UserInfo {
                username: u.clone(),
                domain: d.clone(),
                created_at: a.created_at,
                lock: a.lock.clone(),
            })
            .collect())
    }

    async fn user_exists(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        Ok(self.db.lock().account(username, domain).is_some())
    }

    async fn count_users(&self, domain: Option<&str>) -> Result<u64, StoreError> {
        let state = self.db.lock();
        let accounts = &state.accounts;
        let n = match domain {
            None => accounts.len(),
            Some(want) => accounts.keys().filter(|(d, _)| d == want).count(),
        };
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn lock_user(
        &self,
        username: &str,
        domain: &str,
        lock: &AccountLock,
        change: LockChange,
    ) -> Result<AccountLock, StoreError> {
        validate_name(username, domain)?;
        validate_lock(lock)?;
        let mut state = self.db.lock();
        let existing = state.account_mut(username, domain)?;
        if change == LockChange::KeepLonger
            && let Some(current) = &existing.lock
            && current.outlasts(lock, lock.locked_at)
        {
            return Ok(current.clone());
        }
        existing.lock = Some(lock.clone());
        Ok(lock.clone())
    }

    async fn unlock_user(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        validate_name(username, domain)?;
        let mut state = self.db.lock();
        Ok(state.account_mut(username, domain)?.lock.take().is_some())
    }

    async fn user_lock(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountLock>, StoreError> {
        Ok(self
            .db
            .lock()
            .account(username, domain)
            .and_then(|a| a.lock.clone()))
    }
}
