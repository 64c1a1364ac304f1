//! [`BlockingStore`] on SQLite and PostgreSQL.
//!
//! Table (created by `m0002_im`): `blocklist (id, user_id, jid)`, unique on `(user_id, jid)`,
//! the autoincrement id giving the order in which JIDs were blocked, referencing `users` with
//! `ON DELETE CASCADE`.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DeriveIden};

use super::{BlockingStore, distinct_jids};
use crate::StoreError;
use crate::sql::{SqlDb, account_id_query, get};

#[derive(DeriveIden, Clone, Copy)]
enum Blocklist {
    Table,
    Id,
    UserId,
    Jid,
}

/// JIDs per multi-row `INSERT` (2 parameters each) or per `DELETE … IN (…)`.
const JID_BATCH: usize = 256;

pub(crate) struct SqlBlockingStore {
    db: SqlDb,
}

impl SqlBlockingStore {
    pub(crate) fn new(db: SqlDb) -> SqlBlockingStore {
        SqlBlockingStore { db }
    }
}

#[async_trait]
impl BlockingStore for SqlBlockingStore {
    async fn blocklist(&self, username: &str, domain: &str) -> Result<Vec<String>, StoreError> {
        let select = Query::select()
            .column(Blocklist::Jid)
            .from(Blocklist::Table)
            .and_where(Expr::col(Blocklist::UserId).in_subquery(account_id_query(username, domain)))
            .order_by(Blocklist::Id, Order::Asc)
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("read blocklist", &e))?;
        rows.iter().map(|row| get(&self.db, row, "jid")).collect()
    }

    async fn block(&self, username: &str, domain: &str, jids: &[String]) -> Result<(), StoreError> {
        let jids = distinct_jids(jids)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            let user_id = self.db.account_id(&txn, username, domain, false).await?;
            for chunk in jids.chunks(JID_BATCH) {
                let mut insert = Query::insert();
                insert
                    .into_table(Blocklist::Table)
                    .columns([Blocklist::UserId, Blocklist::Jid]);
                for jid in chunk {
                    insert
                        .values([user_id.into(), (*jid).into()])
                        .map_err(|e| StoreError::Backend(format!("build blocklist insert: {e}")))?;
                }
                // Rows are numbered in the order of the VALUES list; one already blocked keeps
                // its row, and its place.
                insert.on_conflict(
                    OnConflict::columns([Blocklist::UserId, Blocklist::Jid])
                        .do_nothing()
                        .to_owned(),
                );
                txn.execute(&insert)
                    .await
                    .map_err(|e| self.db.error("store blocklist", &e))?;
            }
            Ok(())
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn unblock(
        &self,
        username: &str,
        domain: &str,
        jids: &[String],
    ) -> Result<(), StoreError> {
        let jids = distinct_jids(jids)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            let user_id = self.db.account_id(&txn, username, domain, false).await?;
            if jids.is_empty() {
                // XEP-0191 §3.4: an unblock without items empties the list.
                let delete = Query::delete()
                    .from_table(Blocklist::Table)
                    .and_where(Expr::col(Blocklist::UserId).eq(user_id))
                    .to_owned();
                txn.execute(&delete)
                    .await
                    .map_err(|e| self.db.error("clear blocklist", &e))?;
            }
            for chunk in jids.chunks(JID_BATCH) {
                let delete = Query::delete()
                    .from_table(Blocklist::Table)
                    .and_where(Expr::col(Blocklist::UserId).eq(user_id))
                    .and_where(Expr::col(Blocklist::Jid).is_in(chunk.iter().copied()))
                    .to_owned();
                txn.execute(&delete)
                    .await
                    .map_err(|e| self.db.error("remove from blocklist", &e))?;
            }
            Ok(())
        }
        .await;
        self.db.finish(txn, result).await
    }
}
