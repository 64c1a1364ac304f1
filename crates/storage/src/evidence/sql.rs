//! [`EvidenceStore`] on SQLite and PostgreSQL.
//!
//! Table (created by `m0005_evidence`, with columns added by `m0006_review_lock`, described in
//! the [module documentation](super)): `evidence`.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, DeriveIden, QueryResult, SqlErr};

use super::{
    EvidenceFilter, EvidenceStore, NewEvidence, REVIEW_PENDING, REVIEW_REJECTED, REVIEW_RELEASED,
    StoredEvidence, check_link, no_record, not_pending, validate_evidence, validate_review,
};
use crate::StoreError;
use crate::sql::{SqlDb, SqlKind, get, sql_limit, storable};

#[derive(DeriveIden, Clone, Copy)]
enum Evidence {
    Table,
    Seq,
    CreatedAt,
    RuleId,
    Category,
    Actions,
    Username,
    Domain,
    Resource,
    Peer,
    Direction,
    RemoteAddr,
    Client,
    Sealed,
    Payload,
    PayloadHash,
    PrevHash,
    Hash,
    Signature,
    PurgedAt,
    LegalHold,
    Review,
    ReviewedBy,
    ReviewedAt,
    ReviewReason,
    HeldStanza,
    HandledAt,
}

const COLUMNS: [Evidence; 26] = [
    Evidence::Seq,
    Evidence::CreatedAt,
    Evidence::RuleId,
    Evidence::Category,
    Evidence::Actions,
    Evidence::Username,
    Evidence::Domain,
    Evidence::Resource,
    Evidence::Peer,
    Evidence::Direction,
    Evidence::RemoteAddr,
    Evidence::Client,
    Evidence::Sealed,
    Evidence::Payload,
    Evidence::PayloadHash,
    Evidence::PrevHash,
    Evidence::Hash,
    Evidence::Signature,
    Evidence::PurgedAt,
    Evidence::LegalHold,
    Evidence::Review,
    Evidence::ReviewedBy,
    Evidence::ReviewedAt,
    Evidence::ReviewReason,
    Evidence::HeldStanza,
    Evidence::HandledAt,
];

/// Key of the PostgreSQL advisory lock that serializes appends ("evidence" in ASCII).
const APPEND_LOCK: i64 = 0x6576_6964_656e_6365;

pub(crate) struct SqlEvidenceStore {
    db: SqlDb,
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

impl SqlEvidenceStore {
    pub(crate) fn new(db: SqlDb) -> SqlEvidenceStore {
        SqlEvidenceStore { db }
    }

    fn select() -> SelectStatement {
        Query::select()
            .columns(COLUMNS)
            .from(Evidence::Table)
            .to_owned()
    }

    fn row(&self, row: &QueryResult) -> Result<StoredEvidence, StoreError> {
        Ok(StoredEvidence {
            seq: get(&self.db, row, "seq")?,
            created_at: get(&self.db, row, "created_at")?,
            rule_id: get(&self.db, row, "rule_id")?,
            category: get(&self.db, row, "category")?,
            actions: get(&self.db, row, "actions")?,
            username: get(&self.db, row, "username")?,
            domain: get(&self.db, row, "domain")?,
            resource: get(&self.db, row, "resource")?,
            peer: get(&self.db, row, "peer")?,
            direction: get(&self.db, row, "direction")?,
            remote_addr: get(&self.db, row, "remote_addr")?,
            client: get(&self.db, row, "client")?,
            sealed: get(&self.db, row, "sealed")?,
            payload: get(&self.db, row, "payload")?,
            payload_hash: get(&self.db, row, "payload_hash")?,
            prev_hash: get(&self.db, row, "prev_hash")?,
            hash: get(&self.db, row, "hash")?,
            signature: get(&self.db, row, "signature")?,
            purged_at: get(&self.db, row, "purged_at")?,
            legal_hold: get(&self.db, row, "legal_hold")?,
            review: get(&self.db, row, "review")?,
            reviewed_by: get(&self.db, row, "reviewed_by")?,
            reviewed_at: get(&self.db, row, "reviewed_at")?,
            review_reason: get(&self.db, row, "review_reason")?,
            held: get(&self.db, row, "held_stanza")?,
            handled_at: get(&self.db, row, "handled_at")?,
        })
    }

    /// The record at `seq`, read through `conn`.
    async fn get_in(
        &self,
        conn: &impl ConnectionTrait,
        seq: i64,
    ) -> Result<Option<StoredEvidence>, StoreError> {
        let select = Self::select()
            .and_where(Expr::col(Evidence::Seq).eq(seq))
            .to_owned();
        conn.query_one(&select)
            .await
            .map_err(|e| self.db.error("read evidence record", &e))?
            .map(|row| self.row(&row))
            .transpose()
    }

    /// Seq and hash of the last record, read inside the append transaction: the link check
    /// needs nothing else, and the payload may be megabytes.
    async fn last_link(
        &self,
        txn: &DatabaseTransaction,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let select = Query::select()
            .columns([Evidence::Seq, Evidence::Hash])
            .from(Evidence::Table)
            .order_by(Evidence::Seq, Order::Desc)
            .limit(1)
            .to_owned();
        match txn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read last evidence record", &e))?
        {
            Some(row) => Ok(Some((
                get(&self.db, &row, "seq")?,
                get(&self.db, &row, "hash")?,
            ))),
            None => Ok(None),
        }
    }

    async fn insert(
        &self,
        txn: &DatabaseTransaction,
        e: &NewEvidence,
    ) -> Result<StoredEvidence, StoreError> {
        if self.db.kind == SqlKind::Postgres {
            // Held until commit or rollback: the last record read next is the one the
            // previous holder committed (READ COMMITTED sees every commit before the
            // statement). SQLite needs nothing: `begin_write` already serializes writers.
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"))
                .await
                .map_err(|err| self.db.error("lock evidence chain", &err))?;
        }
        let last = self.last_link(txn).await?;
        check_link(last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), e)?;
        let stored = StoredEvidence::from(e);
        let mut insert = Query::insert();
        insert
            .into_table(Evidence::Table)
            .columns(COLUMNS)
            .values([
                stored.seq.into(),
                stored.created_at.into(),
                stored.rule_id.as_str().into(),
                stored.category.as_str().into(),
                stored.actions.as_str().into(),
                stored.username.as_str().into(),
                stored.domain.as_str().into(),
                stored.resource.as_str().into(),
                stored.peer.as_str().into(),
                stored.direction.as_str().into(),
                stored.remote_addr.clone().into(),
                stored.client.clone().into(),
                stored.sealed.into(),
                stored.payload.clone().into(),
                stored.payload_hash.as_str().into(),
                stored.prev_hash.as_str().into(),
                stored.hash.as_str().into(),
                stored.signature.as_str().into(),
                stored.purged_at.into(),
                stored.legal_hold.into(),
                stored.review.clone().into(),
                stored.reviewed_by.clone().into(),
                stored.reviewed_at.into(),
                stored.review_reason.clone().into(),
                stored.held.clone().into(),
                stored.handled_at.into(),
            ])
            .map_err(|err| StoreError::Backend(format!("build evidence insert: {err}")))?;
        txn.execute(&insert).await.map_err(|err| {
            // The primary key on seq: a writer that bypassed the lock took the position first.
            if is_unique_violation(&err) {
                StoreError::Conflict(format!(
                    "evidence seq {} was taken by another writer",
                    e.seq
                ))
            } else {
                self.db.error("append evidence record", &err)
            }
        })?;
        Ok(stored)
    }

    async fn decide(
        &self,
        txn: &DatabaseTransaction,
        seq: i64,
        state: &str,
        by: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<StoredEvidence, StoreError> {
        // One conditional update decides: of two reviewers racing, the second one's update
        // waits for the first (PostgreSQL's row lock, SQLite's write lock) and then matches
        // nothing. The read after it only tells why.
        let mut update = Query::update();
        update
            .table(Evidence::Table)
            .value(Evidence::Review, state)
            .value(Evidence::ReviewedBy, by)
            .value(Evidence::ReviewedAt, at)
            .value(Evidence::ReviewReason, reason.map(str::to_owned))
            .and_where(Expr::col(Evidence::Seq).eq(seq))
            .and_where(Expr::col(Evidence::Review).eq(REVIEW_PENDING));
        let decided = txn
            .execute(&update)
            .await
            .map_err(|e| self.db.error("decide evidence review", &e))?
            .rows_affected();
        match self.get_in(txn, seq).await? {
            None => Err(no_record(seq)),
            Some(record) if decided == 0 => Err(not_pending(seq, record.review.as_deref())),
            Some(record) => Ok(record),
        }
    }

    /// The condition of a decided review not carried out yet.
    fn awaiting_handling() -> sea_orm::sea_query::SimpleExpr {
        Expr::col(Evidence::Review)
            .is_in([REVIEW_RELEASED, REVIEW_REJECTED])
            .and(Expr::col(Evidence::HandledAt).is_null())
    }

    async fn claim(
        &self,
        txn: &DatabaseTransaction,
        seq: i64,
        at: i64,
    ) -> Result<Option<StoredEvidence>, StoreError> {
        // FOR UPDATE on PostgreSQL: the record read is the one the update below changes, not
        // one a decision or another claimer is changing meanwhile. SQLite's BEGIN IMMEDIATE
        // already serializes writers.
        let select = Self::select()
            .and_where(Expr::col(Evidence::Seq).eq(seq))
            .lock(LockType::Update)
            .to_owned();
        let Some(before) = txn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read evidence record", &e))?
            .map(|row| self.row(&row))
            .transpose()?
        else {
            return Err(no_record(seq));
        };
        // The conditional update makes the claim: a record already handled matches nothing.
        let mut update = Query::update();
        update
            .table(Evidence::Table)
            .value(Evidence::HandledAt, at)
            .value(Evidence::HeldStanza, Option::<String>::None)
            .and_where(Expr::col(Evidence::Seq).eq(seq))
            .and_where(Self::awaiting_handling());
        let claimed = txn
            .execute(&update)
            .await
            .map_err(|e| self.db.error("claim evidence review decision", &e))?
            .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        Ok(Some(StoredEvidence {
            handled_at: Some(at),
            ..before
        }))
    }
}

#[async_trait]
impl EvidenceStore for SqlEvidenceStore {
    async fn append(&self, e: &NewEvidence) -> Result<StoredEvidence, StoreError> {
        validate_evidence(e)?;
        let txn = self.db.begin_write().await?;
        let result = self.insert(&txn, e).await;
        self.db.finish(txn, result).await
    }

    async fn last(&self) -> Result<Option<StoredEvidence>, StoreError> {
        let select = Self::select()
            .order_by(Evidence::Seq, Order::Desc)
            .limit(1)
            .to_owned();
        self.db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read last evidence record", &e))?
            .map(|row| self.row(&row))
            .transpose()
    }

    async fn get(&self, seq: i64) -> Result<Option<StoredEvidence>, StoreError> {
        self.get_in(&self.db.conn, seq).await
    }

    async fn list(&self, f: &EvidenceFilter) -> Result<Vec<StoredEvidence>, StoreError> {
        let limit = f.effective_limit();
        let texts = [
            f.username.as_deref(),
            f.domain.as_deref(),
            f.rule_id.as_deref(),
            f.review.as_deref(),
        ];
        if limit == 0 || texts.into_iter().flatten().any(|t| !storable(t)) {
            return Ok(Vec::new());
        }
        let mut select = Self::select();
        if let Some(username) = f.username.as_deref() {
            select.and_where(Expr::col(Evidence::Username).eq(username));
        }
        if let Some(domain) = f.domain.as_deref() {
            select.and_where(Expr::col(Evidence::Domain).eq(domain));
        }
        if let Some(rule_id) = f.rule_id.as_deref() {
            select.and_where(Expr::col(Evidence::RuleId).eq(rule_id));
        }
        if let Some(since) = f.since {
            select.and_where(Expr::col(Evidence::CreatedAt).gte(since));
        }
        if let Some(until) = f.until {
            select.and_where(Expr::col(Evidence::CreatedAt).lte(until));
        }
        if let Some(after) = f.after_seq {
            select.and_where(Expr::col(Evidence::Seq).gt(after));
        }
        if let Some(review) = f.review.as_deref() {
            select.and_where(Expr::col(Evidence::Review).eq(review));
        }
        select
            .order_by(Evidence::Seq, Order::Asc)
            .limit(sql_limit(limit));
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list evidence", &e))?;
        rows.iter().map(|row| self.row(row)).collect()
    }

    async fn set_legal_hold(&self, seq: i64, hold: bool) -> Result<bool, StoreError> {
        let mut update = Query::update();
        update
            .table(Evidence::Table)
            .value(Evidence::LegalHold, hold)
            .and_where(Expr::col(Evidence::Seq).eq(seq));
        // Both engines count the rows the condition matched, changed or not.
        let matched = self
            .db
            .conn
            .execute(&update)
            .await
            .map_err(|e| self.db.error("set evidence legal hold", &e))?
            .rows_affected();
        Ok(matched > 0)
    }

    async fn set_review(
        &self,
        seq: i64,
        state: &str,
        by: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<StoredEvidence, StoreError> {
        validate_review(state, by, reason)?;
        let txn = self.db.begin_write().await?;
        let result = self.decide(&txn, seq, state, by, at, reason).await;
        self.db.finish(txn, result).await
    }

    async fn unhandled_decisions(&self, limit: u64) -> Result<Vec<StoredEvidence>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let select = Self::select()
            .and_where(Self::awaiting_handling())
            .order_by(Evidence::Seq, Order::Asc)
            .limit(sql_limit(limit))
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list evidence review decisions", &e))?;
        rows.iter().map(|row| self.row(row)).collect()
    }

    async fn claim_decision(
        &self,
        seq: i64,
        at: i64,
    ) -> Result<Option<StoredEvidence>, StoreError> {
        let txn = self.db.begin_write().await?;
        let result = self.claim(&txn, seq, at).await;
        self.db.finish(txn, result).await
    }

    async fn purge(&self, before: i64, now: i64) -> Result<u64, StoreError> {
        // One statement: a record put on hold or under review meanwhile is either purged
        // before that change or seen with it (PostgreSQL re-checks the condition on a row
        // changed by a concurrent transaction before updating it).
        let mut update = Query::update();
        update
            .table(Evidence::Table)
            .value(Evidence::Payload, Option::<String>::None)
            .value(Evidence::PurgedAt, now)
            .and_where(Expr::col(Evidence::CreatedAt).lt(before))
            .and_where(Expr::col(Evidence::LegalHold).eq(false))
            .and_where(
                Expr::col(Evidence::Review)
                    .is_null()
                    .or(Expr::col(Evidence::Review).ne(REVIEW_PENDING)),
            )
            .and_where(Expr::col(Evidence::PurgedAt).is_null());
        Ok(self
            .db
            .conn
            .execute(&update)
            .await
            .map_err(|e| self.db.error("purge evidence payloads", &e))?
            .rows_affected())
    }
}
