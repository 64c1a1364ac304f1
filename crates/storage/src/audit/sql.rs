//! [`AuditStore`] on SQLite and PostgreSQL.
//!
//! Table (created by `m0003_federation_audit`): `audit_events (id, at, actor, action, subject,
//! outcome, detail, remote_addr)`, the autoincrement id giving the append order, indexed on
//! `(action, at)` and on `subject`.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DeriveIden};

use super::{
    AuditEvent, AuditFilter, AuditStore, NewAuditEvent, prefix_upper_bound, validate_event,
};
use crate::StoreError;
use crate::sql::{SqlDb, SqlKind, get, sql_limit, storable};

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    Action,
    Subject,
    Outcome,
    Detail,
    RemoteAddr,
}

/// Key of the PostgreSQL advisory lock that serializes appends ("audit" in ASCII).
const APPEND_LOCK: i64 = 0x61_7564_6974;

pub(crate) struct SqlAuditStore {
    db: SqlDb,
}

impl SqlAuditStore {
    pub(crate) fn new(db: SqlDb) -> SqlAuditStore {
        SqlAuditStore { db }
    }
}

#[async_trait]
impl AuditStore for SqlAuditStore {
    async fn append(&self, ev: &NewAuditEvent) -> Result<i64, StoreError> {
        validate_event(ev)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            if self.db.kind == SqlKind::Postgres {
                // A sequence hands out ids at insert time, not at commit: without the lock an
                // event could become visible after one with a larger id, and a reader paging
                // with `after_id` would skip it. Held until commit or rollback. SQLite
                // serializes write transactions already.
                txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"))
                    .await
                    .map_err(|e| self.db.error("lock audit log", &e))?;
            }
            let mut insert = Query::insert();
            insert
                .into_table(AuditEvents::Table)
                .columns([
                    AuditEvents::At,
                    AuditEvents::Actor,
                    AuditEvents::Action,
                    AuditEvents::Subject,
                    AuditEvents::Outcome,
                    AuditEvents::Detail,
                    AuditEvents::RemoteAddr,
                ])
                .values([
                    ev.at.into(),
                    ev.actor.as_str().into(),
                    ev.action.as_str().into(),
                    ev.subject.as_str().into(),
                    ev.outcome.as_str().into(),
                    ev.detail.as_str().into(),
                    ev.remote_addr.clone().into(),
                ])
                .map_err(|e| StoreError::Backend(format!("build audit insert: {e}")))?
                .returning_col(AuditEvents::Id);
            let row = txn
                .query_one(&insert)
                .await
                .map_err(|e| self.db.error("append audit event", &e))?
                .ok_or_else(|| StoreError::Backend("audit insert returned no id".into()))?;
            get(&self.db, &row, "id")
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = filter.effective_limit();
        let texts = [filter.action_prefix.as_deref(), filter.subject.as_deref()];
        if limit == 0 || texts.into_iter().flatten().any(|t| !storable(t)) {
            return Ok(Vec::new());
        }
        let mut select = Query::select();
        select
            .columns([
                AuditEvents::Id,
                AuditEvents::At,
                AuditEvents::Actor,
                AuditEvents::Action,
                AuditEvents::Subject,
                AuditEvents::Outcome,
                AuditEvents::Detail,
                AuditEvents::RemoteAddr,
            ])
            .from(AuditEvents::Table);
        if let Some(since) = filter.since {
            select.and_where(Expr::col(AuditEvents::At).gte(since));
        }
        if let Some(until) = filter.until {
            select.and_where(Expr::col(AuditEvents::At).lte(until));
        }
        if let Some(prefix) = filter.action_prefix.as_deref() {
            // A range on the byte-ordered column rather than LIKE: SQLite's LIKE ignores ASCII
            // case, treats `%` and `_` in the prefix as wildcards, and a range can use the
            // `(action, at)` index on both engines.
            select.and_where(Expr::col(AuditEvents::Action).gte(prefix));
            if let Some(bound) = prefix_upper_bound(prefix) {
                select.and_where(Expr::col(AuditEvents::Action).lt(bound));
            }
        }
        if let Some(subject) = filter.subject.as_deref() {
            select.and_where(Expr::col(AuditEvents::Subject).eq(subject));
        }
        if let Some(after) = filter.after_id {
            select.and_where(Expr::col(AuditEvents::Id).gt(after));
        }
        select
            .order_by(AuditEvents::Id, Order::Asc)
            .limit(sql_limit(limit));
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list audit events", &e))?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    id: get(&self.db, row, "id")?,
                    at: get(&self.db, row, "at")?,
                    actor: get(&self.db, row, "actor")?,
                    action: get(&self.db, row, "action")?,
                    subject: get(&self.db, row, "subject")?,
                    outcome: get(&self.db, row, "outcome")?,
                    detail: get(&self.db, row, "detail")?,
                    remote_addr: get(&self.db, row, "remote_addr")?,
                })
            })
            .collect()
    }
}
