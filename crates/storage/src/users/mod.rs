//! Accounts and their SCRAM credentials.
//!
//! Only the values a SCRAM server needs are kept (RFC 5802 §2.2 and §3: salt, iteration count,
//! `StoredKey`, `ServerKey`), one set per hash function, so a password never reaches storage.
//! Names are stored exactly as given: the caller prepares them per RFC 7622 first (§3.3.1 for
//! the localpart, §3.2.1 for the domainpart),
//! and two names that differ in any byte are two accounts.
//!
//! An account can be locked ([`AccountLock`]): for a time or until the lock is lifted. The store
//! keeps the lock as set; whether it still holds is the caller's to decide
//! ([`AccountLock::holds_at`]), so an expired lock stays visible until it is lifted or replaced.

use async_trait::async_trait;
use std::collections::HashSet;

use crate::StoreError;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// RFC 7622 §3.2 and §3.3: a domainpart and a localpart are each 1 to 1023 bytes.
pub const MAX_NAME_BYTES: usize = 1023;
/// Upper bound on a hash function name such as `SHA-256` (it is part of a SASL mechanism name,
/// and RFC 4422 §3.1 limits those to 20 characters).
pub const MAX_HASH_NAME_BYTES: usize = 32;
/// Upper bound on a salt, a `StoredKey` or a `ServerKey`. SHA-512 output is 64 bytes; salts are
/// usually 16 to 32 bytes. The bound stops a caller bug from writing arbitrary blobs.
pub const MAX_CREDENTIAL_BLOB_BYTES: usize = 1024;
/// Upper bound on the credential sets one account may hold (one per hash function).
pub const MAX_CREDENTIALS_PER_USER: usize = 16;

/// The SCRAM verifier of one account for one hash function (RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The hash function, as it appears in the mechanism name: `SHA-1`, `SHA-256`, `SHA-512`.
    pub hash: String,
    /// The salt handed to the client in the server-first-message.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

// Hand-written so that a verifier never lands in a log line by way of `{:?}`.
impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// An account to create, with its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The prepared localpart.
    pub username: String,
    /// The prepared domainpart of a domain this server hosts.
    pub domain: String,
    /// Zero or more verifiers, at most one per hash function.
    pub credentials: Vec<StoredCredential>,
}

/// An existing account, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub domain: String,
    /// When the account was created, in seconds since the Unix epoch.
    pub created_at: i64,
    /// The lock set on the account, if any, whether or not it still holds.
    pub lock: Option<AccountLock>,
}

/// Longest reason of a lock.
pub const MAX_LOCK_REASON_BYTES: usize = 1024;
/// Longest name of who set a lock (an account, `compliance`, `causeriectl:USER`).
pub const MAX_LOCKED_BY_BYTES: usize = 1024;

/// A lock on an account: while it holds, the account cannot log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLock {
    /// When the lock was set (Unix seconds).
    pub locked_at: i64,
    /// When it ends (Unix seconds, exclusive); `None` for a lock that holds until it is lifted.
    pub until: Option<i64>,
    /// Why, as whoever set it wrote it; may be empty.
    pub reason: String,
    /// Who set it: `compliance`, `causeriectl:USER`…
    pub locked_by: String,
}

impl AccountLock {
    /// Whether the lock still holds at `now` (Unix seconds).
    pub fn holds_at(&self, now: i64) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// Whether this lock, holding at `now`, ends no sooner than `other` would.
    pub(crate) fn outlasts(&self, other: &AccountLock, now: i64) -> bool {
        self.holds_at(now)
            && match (self.until, other.until) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(mine), Some(theirs)) => mine >= theirs,
            }
    }
}

/// How [`UserStore::lock_user`] treats a lock already on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockChange {
    /// The new lock replaces it, longer or not (an administrator's decision).
    Replace,
    /// The new lock replaces it unless it still holds and ends no sooner (a lock the server sets
    /// by itself never shortens one an administrator set).
    KeepLonger,
}

/// Accounts and credentials. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::users`].
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates one account with its credentials, atomically.
    /// [`StoreError::AlreadyExists`] when `(username, domain)` is taken.
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError>;

    /// Creates all `users` in one transaction and returns how many were created. Nothing is
    /// written when any of them exists already or appears twice in `users`; the error
    /// ([`StoreError::AlreadyExists`]) names the first such account in input order.
    async fn import_users(&self, users: &[NewUser]) -> Result<usize, StoreError>;

    /// The verifier of `username@domain` for `hash`, or `None` when the account or that hash
    /// is absent. This is on the login path: one indexed lookup.
    async fn credential(
        &self,
        username: &str,
        domain: &str,
        hash: &str,
    ) -> Result<Option<StoredCredential>, StoreError>;

    /// Replaces every credential of the account with `creds`, atomically.
    /// [`StoreError::NotFound`] when the account does not exist.
    async fn set_credentials(
        &self,
        username: &str,
        domain: &str,
        creds: &[StoredCredential],
    ) -> Result<(), StoreError>;

    /// Removes the account and everything stored for it (credentials now; every per-user table
    /// later, through `ON DELETE CASCADE`). [`StoreError::NotFound`] when absent.
    async fn remove_user(&self, username: &str, domain: &str) -> Result<(), StoreError>;

    /// Every account, or those of one domain, ordered by domain then username, both compared
    /// byte by byte (the same order on every backend).
    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserInfo>, StoreError>;

    /// Whether the account exists.
    async fn user_exists(&self, username: &str, domain: &str) -> Result<bool, StoreError>;

    /// How many accounts exist, in total or in one domain.
    async fn count_users(&self, domain: Option<&str>) -> Result<u64, StoreError>;

    /// Locks the account, atomically, and returns the lock in force afterwards: `lock`, or with
    /// [`LockChange::KeepLonger`] the one already there when it holds at `lock.locked_at` and ends
    /// no sooner. [`StoreError::NotFound`] when the account does not exist;
    /// [`StoreError::InvalidInput`], checked first, when the reason is longer than
    /// [`MAX_LOCK_REASON_BYTES`], `locked_by` is empty or longer than [`MAX_LOCKED_BY_BYTES`],
    /// a text contains U+0000, or `until` is not after `locked_at`.
    async fn lock_user(
        &self,
        username: &str,
        domain: &str,
        lock: &AccountLock,
        change: LockChange,
    ) -> Result<AccountLock, StoreError>;

    /// Lifts the account's lock; `Ok(true)` when there was one (holding or expired), `Ok(false)`
    /// when there was none. [`StoreError::NotFound`] when the account does not exist.
    async fn unlock_user(&self, username: &str, domain: &str) -> Result<bool, StoreError>;

    /// The lock set on the account, holding or expired; `None` when there is none or the
    /// account does not exist. On the login path: one indexed lookup.
    async fn user_lock(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountLock>, StoreError>;
}

/// How an account is named in error messages.
pub(crate) fn account(username: &str, domain: &str) -> String {
    format!("{username}@{domain}")
}

/// Checks shared by every backend, so that they all refuse the same inputs.
pub(crate) fn validate_name(username: &str, domain: &str) -> Result<(), StoreError> {
    for (what, value) in [("username", username), ("domain", domain)] {
        if value.is_empty() {
            return Err(StoreError::InvalidInput(format!("empty {what}")));
        }
        if value.len() > MAX_NAME_BYTES {
            return Err(StoreError::InvalidInput(format!(
                "{what} longer than {MAX_NAME_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

pub(crate) fn validate_credentials(
    username: &str,
    domain: &str,
    creds: &[StoredCredential],
) -> Result<(), StoreError> {
    if creds.len() > MAX_CREDENTIALS_PER_USER {
        return Err(StoreError::InvalidInput(format!(
            "more than {MAX_CREDENTIALS_PER_USER} credentials for {}",
            account(username, domain)
        )));
    }
    let mut seen = HashSet::with_capacity(creds.len());
    for cred in creds {
        if cred.hash.is_empty() || cred.hash.len() > MAX_HASH_NAME_BYTES {
            return Err(StoreError::InvalidInput(format!(
                "credential hash name of {} must be 1 to {MAX_HASH_NAME_BYTES} bytes",
                account(username, domain)
            )));
        }
        if !seen.insert(cred.hash.as_str()) {
            return Err(StoreError::InvalidInput(format!(
                "two {} credentials for {}",
                cred.hash,
                account(username, domain)
            )));
        }
        for (what, blob) in [
            ("salt", &cred.salt),
            ("stored key", &cred.stored_key),
            ("server key", &cred.server_key),
        ] {
            if blob.len() > MAX_CREDENTIAL_BLOB_BYTES {
                return Err(StoreError::InvalidInput(format!(
                    "{} {what} of {} longer than {MAX_CREDENTIAL_BLOB_BYTES} bytes",
                    cred.hash,
                    account(username, domain)
                )));
            }
        }
    }
    Ok(())
}

/// Checks a lock before anything is looked at.
pub(crate) fn validate_lock(lock: &AccountLock) -> Result<(), StoreError> {
    crate::validate::text("lock reason", &lock.reason, Some(MAX_LOCK_REASON_BYTES))?;
    if lock.locked_by.is_empty() {
        return Err(StoreError::InvalidInput("empty locked_by".to_owned()));
    }
    crate::validate::text("locked_by", &lock.locked_by, Some(MAX_LOCKED_BY_BYTES))?;
    if lock.until.is_some_and(|until| until <= lock.locked_at) {
        return Err(StoreError::InvalidInput(
            "a lock must end after it is set".to_owned(),
        ));
    }
    Ok(())
}

pub(crate) fn validate_new_user(user: &NewUser) -> Result<(), StoreError> {
    validate_name(&user.username, &user.domain)?;
    validate_credentials(&user.username, &user.domain, &user.credentials)
}

/// Validates a batch and finds the first account that appears twice in it.
pub(crate) fn validate_batch(users: &[NewUser]) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(users.len());
    for user in users {
        validate_new_user(user)?;
        if !seen.insert((user.domain.as_str(), user.username.as_str())) {
            return Err(StoreError::AlreadyExists(account(
                &user.username,
                &user.domain,
            )));
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch; a clock before 1970 counts as the epoch.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(hash: &str) -> StoredCredential {
        StoredCredential {
            hash: hash.into(),
            salt: vec![1; 16],
            iterations: 4096,
            stored_key: vec![2; 32],
            server_key: vec![3; 32],
        }
    }

    #[test]
    fn debug_hides_key_material() {
        let text = format!("{:?}", cred("SHA-256"));
        assert!(text.contains("SHA-256"));
        assert!(!text.contains("stored_key"));
        assert!(!text.contains("salt"));
    }

    #[test]
    fn duplicate_hash_is_refused() {
        let err = validate_credentials("a", "b", &[cred("SHA-1"), cred("SHA-1")]).unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }

    #[test]
    fn names_are_bounded() {
        assert!(validate_name("", "example.com").is_err());
        assert!(validate_name("a", "").is_err());
        assert!(validate_name(&"a".repeat(MAX_NAME_BYTES), "example.com").is_ok());
        assert!(validate_name(&"a".repeat(MAX_NAME_BYTES + 1), "example.com").is_err());
    }

    #[test]
    fn blobs_are_bounded() {
        let mut c = cred("SHA-512");
        c.salt = vec![0; MAX_CREDENTIAL_BLOB_BYTES + 1];
        assert!(validate_credentials("a", "b", &[c]).is_err());
        let too_many: Vec<_> = (0..=MAX_CREDENTIALS_PER_USER)
            .map(|i| cred(&format!("H{i}")))
            .collect();
        assert!(validate_credentials("a", "b", &too_many).is_err());
    }

    #[test]
    fn batch_duplicate_is_named() {
        let u = |n: &str| NewUser {
            username: n.into(),
            domain: "example.com".into(),
            credentials: vec![],
        };
        let err = validate_batch(&[u("a"), u("b"), u("a")]).unwrap_err();
        assert_eq!(err, StoreError::AlreadyExists("a@example.com".into()));
    }
}
