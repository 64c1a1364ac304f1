//! [`UserStore`] on SQLite and PostgreSQL.
//!
//! Tables (created by `m0001_users`): `users (id, username, domain, created_at)` with a unique
//! index on `(domain, username)`, and `user_credentials (user_id, hash, salt, iterations,
//! stored_key, server_key)` keyed by `(user_id, hash)`, referencing `users` with
//! `ON DELETE CASCADE`. `m0006_review_lock` adds the lock to `users`: `locked_at` (`NULL` when
//! the account is not locked), `locked_until` (`NULL` for a lock until lifted), `lock_reason`
//! and `locked_by`.

use async_trait::async_trait;
use sea_orm::sea_query::{
    Expr, ExprTrait, Func, LockType, OnConflict, Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DeriveIden, QueryResult, Value};
use std::collections::HashMap;

use super::{
    AccountLock, LockChange, NewUser, StoredCredential, UserInfo, UserStore, account, now_unix,
    validate_batch, validate_credentials, validate_lock, validate_name, validate_new_user,
};
use crate::StoreError;
use crate::sql::{SqlDb, get, storable};

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Username,
    Domain,
    CreatedAt,
    LockedAt,
    LockedUntil,
    LockReason,
    LockedBy,
}

/// The lock columns of `users`, in the order [`SqlUserStore::lock_of`] reads them.
const LOCK_COLUMNS: [Users; 4] = [
    Users::LockedAt,
    Users::LockedUntil,
    Users::LockReason,
    Users::LockedBy,
];

#[derive(DeriveIden, Clone, Copy)]
enum UserCredentials {
    Table,
    UserId,
    Hash,
    Salt,
    Iterations,
    StoredKey,
    ServerKey,
}

/// Accounts per multi-row `INSERT` (3 parameters each). Every full batch has the same SQL text,
/// so the driver prepares it once per connection and reuses it from its statement cache; only
/// the last, shorter batch of an import is prepared separately. Both engines accept far more
/// parameters per statement than this (SQLite 32766, PostgreSQL 65535).
const USER_BATCH: usize = 256;
/// Credentials per multi-row `INSERT` (6 parameters each).
const CREDENTIAL_BATCH: usize = 256;

pub(crate) struct SqlUserStore {
    db: SqlDb,
}

impl SqlUserStore {
    pub(crate) fn new(db: SqlDb) -> SqlUserStore {
        SqlUserStore { db }
    }

    fn account_id_query(username: &str, domain: &str) -> SelectStatement {
        Query::select()
            .column(Users::Id)
            .from(Users::Table)
            .and_where(Expr::col(Users::Domain).eq(domain))
            .and_where(Expr::col(Users::Username).eq(username))
            .to_owned()
    }

    /// The lock in a row that has the [`LOCK_COLUMNS`].
    fn lock_of(&self, row: &QueryResult) -> Result<Option<AccountLock>, StoreError> {
        let Some(locked_at) = get::<Option<i64>>(&self.db, row, "locked_at")? else {
            return Ok(None);
        };
        Ok(Some(AccountLock {
            locked_at,
            until: get(&self.db, row, "locked_until")?,
            reason: get::<Option<String>>(&self.db, row, "lock_reason")?.unwrap_or_default(),
            locked_by: get::<Option<String>>(&self.db, row, "locked_by")?.unwrap_or_default(),
        }))
    }

    /// Writes the lock columns of the account `id` (all `NULL` for `None`).
    async fn write_lock(
        &self,
        conn: &impl ConnectionTrait,
        id: i64,
        lock: Option<&AccountLock>,
    ) -> Result<(), StoreError> {
        let mut update = Query::update();
        update
            .table(Users::Table)
            .value(Users::LockedAt, lock.map(|l| l.locked_at))
            .value(Users::LockedUntil, lock.and_then(|l| l.until))
            .value(Users::LockReason, lock.map(|l| l.reason.clone()))
            .value(Users::LockedBy, lock.map(|l| l.locked_by.clone()))
            .and_where(Expr::col(Users::Id).eq(id));
        conn.execute(&update)
            .await
            .map_err(|e| self.db.error("write account lock", &e))?;
        Ok(())
    }

    /// Id and lock of the account, read inside `txn` (locking the row on PostgreSQL);
    /// `NotFound` when it does not exist.
    async fn lock_row(
        &self,
        txn: &DatabaseTransaction,
        username: &str,
        domain: &str,
    ) -> Result<(i64, Option<AccountLock>), StoreError> {
        // FOR UPDATE on PostgreSQL: two lock changes of one account run one after the other,
        // so that `KeepLonger` compares with what the other one wrote. SQLite's BEGIN IMMEDIATE
        // already serializes writers.
        let select = Self::account_id_query(username, domain)
            .columns(LOCK_COLUMNS)
            .lock(LockType::Update)
            .to_owned();
        let Some(row) = txn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("find account", &e))?
        else {
            return Err(StoreError::NotFound(account(username, domain)));
        };
        Ok((get(&self.db, &row, "id")?, self.lock_of(&row)?))
    }

    /// Inserts `users` (already validated, no duplicates among them) and their credentials
    /// inside `txn`. Stops at the first batch in which an account already existed and names it;
    /// the caller rolls back.
    async fn insert_users(
        &self,
        txn: &DatabaseTransaction,
        users: &[NewUser],
    ) -> Result<(), StoreError> {
        let created_at = now_unix();
        let mut pending_credentials: Vec<(i64, &StoredCredential)> = Vec::new();
        for chunk in users.chunks(USER_BATCH) {
            let mut insert = Query::insert();
            insert.into_table(Users::Table).columns([
                Users::Username,
                Users::Domain,
                Users::CreatedAt,
            ]);
            for user in chunk {
                insert
                    .values([
                        user.username.as_str().into(),
                        user.domain.as_str().into(),
                        created_at.into(),
                    ])
                    .map_err(|e| StoreError::Backend(format!("build account insert: {e}")))?;
            }
            // Rows that collide with an existing account are skipped rather than failing the
            // statement: PostgreSQL would otherwise abort the whole transaction, and comparing
            // what came back tells which account was taken.
            insert
                .on_conflict(
                    OnConflict::columns([Users::Domain, Users::Username])
                        .do_nothing()
                        .to_owned(),
                )
                .returning(Query::returning().columns([Users::Id, Users::Domain, Users::Username]));
            let rows = txn
                .query_all(&insert)
                .await
                .map_err(|e| self.db.error("insert accounts", &e))?;

            // RETURNING order is unspecified on SQLite, so match rows by name.
            let mut ids: HashMap<(String, String), i64> = HashMap::with_capacity(rows.len());
            for row in &rows {
                let id: i64 = get(&self.db, row, "id")?;
                let domain: String = get(&self.db, row, "domain")?;
                let username: String = get(&self.db, row, "username")?;
                ids.insert((domain, username), id);
            }
            for user in chunk {
                let Some(&id) = ids.get(&(user.domain.clone(), user.username.clone())) else {
                    return Err(StoreError::AlreadyExists(account(
                        &user.username,
                        &user.domain,
                    )));
                };
                pending_credentials.extend(user.credentials.iter().map(|c| (id, c)));
            }
            // Flush full credential batches as they fill, keeping memory flat on big imports.
            if pending_credentials.len() >= CREDENTIAL_BATCH {
                let full = pending_credentials.len() - pending_credentials.len() % CREDENTIAL_BATCH;
                self.insert_credentials(txn, &pending_credentials[..full])
                    .await?;
                pending_credentials.drain(..full);
            }
        }
        self.insert_credentials(txn, &pending_credentials).await
    }

    async fn insert_credentials(
        &self,
        txn: &DatabaseTransaction,
        credentials: &[(i64, &StoredCredential)],
    ) -> Result<(), StoreError> {
        for chunk in credentials.chunks(CREDENTIAL_BATCH) {
            let mut insert = Query::insert();
            insert.into_table(UserCredentials::Table).columns([
                UserCredentials::UserId,
                UserCredentials::Hash,
                UserCredentials::Salt,
                UserCredentials::Iterations,
                UserCredentials::StoredKey,
                UserCredentials::ServerKey,
            ]);
            for (user_id, cred) in chunk {
                insert
                    .values([
                        (*user_id).into(),
                        cred.hash.as_str().into(),
                        Value::from(cred.salt.clone()).into(),
                        i64::from(cred.iterations).into(),
                        Value::from(cred.stored_key.clone()).into(),
                        Value::from(cred.server_key.clone()).into(),
                    ])
                    .map_err(|e| StoreError::Backend(format!("build credential insert: {e}")))?;
            }
            txn.execute(&insert)
                .await
                .map_err(|e| self.db.error("insert credentials", &e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl UserStore for SqlUserStore {
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError> {
        validate_new_user(user)?;
        let txn = self.db.begin_write().await?;
        let result = self.insert_users(&txn, std::slice::from_ref(user)).await;
        self.db.finish(txn, result).await
    }

    async fn import_users(&self, users: &[NewUser]) -> Result<usize, StoreError> {
        validate_batch(users)?;
        if users.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().await?;
        let result = self.insert_users(&txn, users).await;
        self.db.finish(txn, result).await?;
        Ok(users.len())
    }

    async fn credential(
        &self,
        username: &str,
        domain: &str,
        hash: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        // One statement: the unique (domain, username) index finds the account, the
        // (user_id, hash) primary key finds the credential.
        let select = Query::select()
            .columns([
                (UserCredentials::Table, UserCredentials::Salt),
                (UserCredentials::Table, UserCredentials::Iterations),
                (UserCredentials::Table, UserCredentials::StoredKey),
                (UserCredentials::Table, UserCredentials::ServerKey),
            ])
            .from(UserCredentials::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id))
                    .equals((UserCredentials::Table, UserCredentials::UserId)),
            )
            .and_where(Expr::col((Users::Table, Users::Domain)).eq(domain))
            .and_where(Expr::col((Users::Table, Users::Username)).eq(username))
            .and_where(Expr::col((UserCredentials::Table, UserCredentials::Hash)).eq(hash))
            .to_owned();
        let Some(row) = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read credential", &e))?
        else {
            return Ok(None);
        };
        let iterations: i64 = get(&self.db, &row, "iterations")?;
        let iterations = u32::try_from(iterations).map_err(|_| {
            StoreError::Backend(format!(
                "stored iteration count of {} is out of range",
                account(username, domain)
            ))
        })?;
        Ok(Some(StoredCredential {
            hash: hash.to_owned(),
            salt: get(&self.db, &row, "salt")?,
            iterations,
            stored_key: get(&self.db, &row, "stored_key")?,
            server_key: get(&self.db, &row, "server_key")?,
        }))
    }

    async fn set_credentials(
        &self,
        username: &str,
        domain: &str,
        creds: &[StoredCredential],
    ) -> Result<(), StoreError> {
        validate_name(username, domain)?;
        validate_credentials(username, domain, creds)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            // FOR UPDATE on PostgreSQL: two concurrent replacements of the same account run one
            // after the other instead of both deleting, then colliding on insert. SQLite has no
            // row locks and needs none: BEGIN IMMEDIATE already serializes writers.
            let select = Self::account_id_query(username, domain)
                .lock(LockType::Update)
                .to_owned();
            let Some(row) = txn
                .query_one(&select)
                .await
                .map_err(|e| self.db.error("find account", &e))?
            else {
                return Err(StoreError::NotFound(account(username, domain)));
            };
            let id: i64 = get(&self.db, &row, "id")?;
            let delete = Query::delete()
                .from_table(UserCredentials::Table)
                .and_where(Expr::col(UserCredentials::UserId).eq(id))
                .to_owned();
            txn.execute(&delete)
                .await
                .map_err(|e| self.db.error("delete credentials", &e))?;
            let rows: Vec<(i64, &StoredCredential)> = creds.iter().map(|c| (id, c)).collect();
            self.insert_credentials(&txn, &rows).await
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn remove_user(&self, username: &str, domain: &str) -> Result<(), StoreError> {
        // Credentials (and every other per-user row) go with it by ON DELETE CASCADE.
        let delete = Query::delete()
            .from_table(Users::Table)
            .and_where(Expr::col(Users::Domain).eq(domain))
            .and_where(Expr::col(Users::Username).eq(username))
            .to_owned();
        let result = self
            .db
            .conn
            .execute(&delete)
            .await
            .map_err(|e| self.db.error("remove account", &e))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(account(username, domain)));
        }
        Ok(())
    }

    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserInfo>, StoreError> {
        let mut select = Query::select();
        select
            .columns([Users::Username, Users::Domain, Users::CreatedAt])
            .columns(LOCK_COLUMNS)
            .from(Users::Table)
            .order_by(Users::Domain, Order::Asc)
            .order_by(Users::Username, Order::Asc);
        if let Some(domain) = domain {
            select.and_where(Expr::col(Users::Domain).eq(domain));
        }
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list accounts", &e))?;
        rows.iter()
            .map(|row| {
                Ok(UserInfo {
                    username: get(&self.db, row, "username")?,
                    domain: get(&self.db, row, "domain")?,
                    created_at: get(&self.db, row, "created_at")?,
                    lock: self.lock_of(row)?,
                })
            })
            .collect()
    }

    async fn user_exists(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        let select = Self::account_id_query(username, domain);
        let row = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("find account", &e))?;
        Ok(row.is_some())
    }

    async fn count_users(&self, domain: Option<&str>) -> Result<u64, StoreError> {
        let mut select = Query::select();
        select
            .expr_as(Func::count(Expr::col(Users::Id)), "n")
            .from(Users::Table);
        if let Some(domain) = domain {
            select.and_where(Expr::col(Users::Domain).eq(domain));
        }
        let row = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("count accounts", &e))?;
        let n: i64 = match row {
            Some(row) => get(&self.db, &row, "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
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
        let txn = self.db.begin_write().await?;
        let result = async {
            let (id, current) = self.lock_row(&txn, username, domain).await?;
            if change == LockChange::KeepLonger
                && let Some(current) = current
                && current.outlasts(lock, lock.locked_at)
            {
                return Ok(current);
            }
            self.write_lock(&txn, id, Some(lock)).await?;
            Ok(lock.clone())
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn unlock_user(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        validate_name(username, domain)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            let (id, current) = self.lock_row(&txn, username, domain).await?;
            if current.is_none() {
                return Ok(false);
            }
            self.write_lock(&txn, id, None).await?;
            Ok(true)
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn user_lock(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountLock>, StoreError> {
        if !storable(username) || !storable(domain) {
            return Ok(None);
        }
        let select = Query::select()
            .columns(LOCK_COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::Domain).eq(domain))
            .and_where(Expr::col(Users::Username).eq(username))
            .to_owned();
        match self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read account lock", &e))?
        {
            Some(row) => self.lock_of(&row),
            None => Ok(None),
        }
    }
}
