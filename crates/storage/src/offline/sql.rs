//! [`OfflineStore`] on SQLite and PostgreSQL.
//!
//! Table (created by `m0002_im`): `offline_messages (id, user_id, stanza, stored_at)`, the
//! autoincrement id giving the arrival order, indexed on `(user_id, id)`, referencing `users`
//! with `ON DELETE CASCADE`.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query};
use sea_orm::{ConnectionTrait, DeriveIden};

use super::{OfflineMessage, OfflineStore, validate_stanza};
use crate::StoreError;
use crate::sql::{SqlDb, account_id_query, get, sql_limit, unsigned};

#[derive(DeriveIden, Clone, Copy)]
enum OfflineMessages {
    Table,
    Id,
    UserId,
    Stanza,
    StoredAt,
}

/// Ids per `DELETE … WHERE id IN (…)`.
const REMOVE_BATCH: usize = 256;

pub(crate) struct SqlOfflineStore {
    db: SqlDb,
}

impl SqlOfflineStore {
    pub(crate) fn new(db: SqlDb) -> SqlOfflineStore {
        SqlOfflineStore { db }
    }
}

#[async_trait]
impl OfflineStore for SqlOfflineStore {
    async fn push(
        &self,
        username: &str,
        domain: &str,
        stanza: &str,
        stored_at: i64,
        quota: u64,
    ) -> Result<bool, StoreError> {
        validate_stanza(stanza)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            // The account row stays locked until commit, so concurrent pushes to one account
            // count and insert one after the other and never pass the quota together.
            let user_id = self.db.account_id(&txn, username, domain, true).await?;
            if quota == 0 {
                return Ok(false);
            }
            let count = Query::select()
                .expr_as(Func::count(Expr::col(OfflineMessages::Id)), "n")
                .from(OfflineMessages::Table)
                .and_where(Expr::col(OfflineMessages::UserId).eq(user_id))
                .to_owned();
            let held = match txn
                .query_one(&count)
                .await
                .map_err(|e| self.db.error("count offline messages", &e))?
            {
                Some(row) => unsigned(get(&self.db, &row, "n")?),
                None => 0,
            };
            if held >= quota {
                return Ok(false);
            }
            let mut insert = Query::insert();
            insert
                .into_table(OfflineMessages::Table)
                .columns([
                    OfflineMessages::UserId,
                    OfflineMessages::Stanza,
                    OfflineMessages::StoredAt,
                ])
                .values([user_id.into(), stanza.into(), stored_at.into()])
                .map_err(|e| StoreError::Backend(format!("build offline message insert: {e}")))?;
            txn.execute(&insert)
                .await
                .map_err(|e| self.db.error("store offline message", &e))?;
            Ok(true)
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn list(
        &self,
        username: &str,
        domain: &str,
        limit: u64,
    ) -> Result<Vec<OfflineMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let select = Query::select()
            .columns([
                OfflineMessages::Id,
                OfflineMessages::Stanza,
                OfflineMessages::StoredAt,
            ])
            .from(OfflineMessages::Table)
            .and_where(
                Expr::col(OfflineMessages::UserId).in_subquery(account_id_query(username, domain)),
            )
            .order_by(OfflineMessages::Id, Order::Asc)
            .limit(sql_limit(limit))
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list offline messages", &e))?;
        rows.iter()
            .map(|row| {
                Ok(OfflineMessage {
                    id: get(&self.db, row, "id")?,
                    stanza: get(&self.db, row, "stanza")?,
                    stored_at: get(&self.db, row, "stored_at")?,
                })
            })
            .collect()
    }

    async fn remove(&self, username: &str, domain: &str, ids: &[i64]) -> Result<(), StoreError> {
        if ids.len() <= REMOVE_BATCH {
            // The common case, one statement: the messages a session was just handed.
            if !ids.is_empty() {
                let delete = Query::delete()
                    .from_table(OfflineMessages::Table)
                    .and_where(
                        Expr::col(OfflineMessages::UserId)
                            .in_subquery(account_id_query(username, domain)),
                    )
                    .and_where(Expr::col(OfflineMessages::Id).is_in(ids.iter().copied()))
                    .to_owned();
                let removed = self
                    .db
                    .conn
                    .execute(&delete)
                    .await
                    .map_err(|e| self.db.error("remove offline messages", &e))?
                    .rows_affected();
                if removed > 0 {
                    return Ok(());
                }
            }
            return self.db.require_account(username, domain).await;
        }
        let txn = self.db.begin_write().await?;
        let result = async {
            let user_id = self.db.account_id(&txn, username, domain, false).await?;
            for chunk in ids.chunks(REMOVE_BATCH) {
                let delete = Query::delete()
                    .from_table(OfflineMessages::Table)
                    .and_where(Expr::col(OfflineMessages::UserId).eq(user_id))
                    .and_where(Expr::col(OfflineMessages::Id).is_in(chunk.iter().copied()))
                    .to_owned();
                txn.execute(&delete)
                    .await
                    .map_err(|e| self.db.error("remove offline messages", &e))?;
            }
            Ok(())
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn count(&self, username: &str, domain: &str) -> Result<u64, StoreError> {
        let select = Query::select()
            .expr_as(Func::count(Expr::col(OfflineMessages::Id)), "n")
            .from(OfflineMessages::Table)
            .and_where(
                Expr::col(OfflineMessages::UserId).in_subquery(account_id_query(username, domain)),
            )
            .to_owned();
        let row = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("count offline messages", &e))?;
        match row {
            Some(row) => Ok(unsigned(get(&self.db, &row, "n")?)),
            None => Ok(0),
        }
    }
}
