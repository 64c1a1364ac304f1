//! [`AccountDataStore`] on SQLite and PostgreSQL.
//!
//! Table (created by `m0002_im`): `account_data (user_id, key, value)` keyed by
//! `(user_id, key)`, referencing `users` with `ON DELETE CASCADE`.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DeriveIden};

use super::{AccountDataStore, validate_key, validate_value};
use crate::StoreError;
use crate::sql::{SqlDb, account_id_query, get, storable};
use crate::users::account;

#[derive(DeriveIden, Clone, Copy)]
enum AccountData {
    Table,
    UserId,
    Key,
    Value,
}

pub(crate) struct SqlAccountDataStore {
    db: SqlDb,
}

impl SqlAccountDataStore {
    pub(crate) fn new(db: SqlDb) -> SqlAccountDataStore {
        SqlAccountDataStore { db }
    }
}

#[async_trait]
impl AccountDataStore for SqlAccountDataStore {
    async fn get(
        &self,
        username: &str,
        domain: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        if !storable(key) {
            return Ok(None);
        }
        let select = Query::select()
            .column(AccountData::Value)
            .from(AccountData::Table)
            .and_where(
                Expr::col(AccountData::UserId).in_subquery(account_id_query(username, domain)),
            )
            .and_where(Expr::col(AccountData::Key).eq(key))
            .to_owned();
        let row = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read account data", &e))?;
        row.map(|row| get(&self.db, &row, "value")).transpose()
    }

    async fn put(
        &self,
        username: &str,
        domain: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        validate_key(key)?;
        validate_value(value)?;
        // One statement: `INSERT … SELECT users.id, …` writes nothing when the account does
        // not exist, and the upsert replaces atomically on both engines.
        let source = account_id_query(username, domain)
            .expr(Expr::val(key))
            .expr(Expr::val(value))
            .to_owned();
        let mut insert = Query::insert();
        insert
            .into_table(AccountData::Table)
            .columns([AccountData::UserId, AccountData::Key, AccountData::Value])
            .select_from(source)
            .map_err(|e| StoreError::Backend(format!("build account data insert: {e}")))?
            .on_conflict(
                OnConflict::columns([AccountData::UserId, AccountData::Key])
                    .update_column(AccountData::Value)
                    .to_owned(),
            );
        let written = self
            .db
            .conn
            .execute(&insert)
            .await
            .map_err(|e| self.db.error("store account data", &e))?
            .rows_affected();
        if written == 0 {
            return Err(StoreError::NotFound(account(username, domain)));
        }
        Ok(())
    }

    async fn delete(&self, username: &str, domain: &str, key: &str) -> Result<bool, StoreError> {
        if storable(key) {
            let delete = Query::delete()
                .from_table(AccountData::Table)
                .and_where(
                    Expr::col(AccountData::UserId).in_subquery(account_id_query(username, domain)),
                )
                .and_where(Expr::col(AccountData::Key).eq(key))
                .to_owned();
            let removed = self
                .db
                .conn
                .execute(&delete)
                .await
                .map_err(|e| self.db.error("delete account data", &e))?
                .rows_affected();
            if removed > 0 {
                return Ok(true);
            }
        }
        self.db.require_account(username, domain).await?;
        Ok(false)
    }
}
