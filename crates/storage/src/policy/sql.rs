//! [`PolicyStore`] on SQLite and PostgreSQL.
//!
//! Tables (created by `m0004_policy`, described in the [module documentation](super)):
//! `policy_versions`, `policy_categories` and `policy_receipts`.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, DeriveIden, QueryResult, SqlErr};
use std::collections::BTreeMap;

use super::{
    NewPolicyVersion, NewReceipt, PolicyStore, PolicyVersion, ReceiptFilter, StoredReceipt,
    already_published, check_link, validate_receipt, validate_version,
};
use crate::StoreError;
use crate::sql::{SqlDb, SqlKind, get, sql_limit, storable};

#[derive(DeriveIden, Clone, Copy)]
enum PolicyVersions {
    Table,
    Seq,
    Hash,
    Domain,
    Title,
    Text,
    Format,
    EffectiveAt,
    PublishedAt,
    PublishedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum PolicyCategories {
    Table,
    Seq,
    Position,
    Category,
}

#[derive(DeriveIden, Clone, Copy)]
enum PolicyReceipts {
    Table,
    Seq,
    Username,
    Domain,
    Resource,
    PolicyHash,
    Method,
    AcceptedAt,
    RemoteAddr,
    Client,
    PrevHash,
    Hash,
    Signature,
}

const VERSION_COLUMNS: [PolicyVersions; 9] = [
    PolicyVersions::Seq,
    PolicyVersions::Hash,
    PolicyVersions::Domain,
    PolicyVersions::Title,
    PolicyVersions::Text,
    PolicyVersions::Format,
    PolicyVersions::EffectiveAt,
    PolicyVersions::PublishedAt,
    PolicyVersions::PublishedBy,
];

const RECEIPT_COLUMNS: [PolicyReceipts; 12] = [
    PolicyReceipts::Seq,
    PolicyReceipts::Username,
    PolicyReceipts::Domain,
    PolicyReceipts::Resource,
    PolicyReceipts::PolicyHash,
    PolicyReceipts::Method,
    PolicyReceipts::AcceptedAt,
    PolicyReceipts::RemoteAddr,
    PolicyReceipts::Client,
    PolicyReceipts::PrevHash,
    PolicyReceipts::Hash,
    PolicyReceipts::Signature,
];

/// Key of the PostgreSQL advisory lock that serializes publications ("policy" in ASCII).
const PUBLISH_LOCK: i64 = 0x706f_6c69_6379;
/// Key of the PostgreSQL advisory lock that serializes receipt appends ("receipt" in ASCII).
const RECEIPT_LOCK: i64 = 0x72_6563_6569_7074;

pub(crate) struct SqlPolicyStore {
    db: SqlDb,
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

impl SqlPolicyStore {
    pub(crate) fn new(db: SqlDb) -> SqlPolicyStore {
        SqlPolicyStore { db }
    }

    /// On PostgreSQL, takes the transaction-scoped advisory lock `key`, held until commit or
    /// rollback. The check that follows (is this hash taken, which seq is last) then reads
    /// what the previous holder committed: under READ COMMITTED each statement sees every
    /// transaction committed before it started, and the previous holder released the lock only
    /// after its commit. SQLite needs nothing: `begin_write` already serializes writers.
    async fn lock(
        &self,
        txn: &DatabaseTransaction,
        key: i64,
        what: &str,
    ) -> Result<(), StoreError> {
        if self.db.kind == SqlKind::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({key})"))
                .await
                .map_err(|e| self.db.error(what, &e))?;
        }
        Ok(())
    }

    fn version_select() -> SelectStatement {
        Query::select()
            .columns(VERSION_COLUMNS)
            .from(PolicyVersions::Table)
            .to_owned()
    }

    fn version_row(
        &self,
        row: &QueryResult,
        categories: Vec<String>,
    ) -> Result<PolicyVersion, StoreError> {
        Ok(PolicyVersion {
            seq: get(&self.db, row, "seq")?,
            hash: get(&self.db, row, "hash")?,
            title: get(&self.db, row, "title")?,
            text: get(&self.db, row, "text")?,
            format: get(&self.db, row, "format")?,
            effective_at: get(&self.db, row, "effective_at")?,
            categories,
            domain: get(&self.db, row, "domain")?,
            published_at: get(&self.db, row, "published_at")?,
            published_by: get(&self.db, row, "published_by")?,
        })
    }

    /// The categories of the versions `seq` names (every version when `None`), by seq, each in
    /// its stored order.
    async fn categories(&self, seq: Option<i64>) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
        let mut select = Query::select();
        select
            .columns([PolicyCategories::Seq, PolicyCategories::Category])
            .from(PolicyCategories::Table);
        if let Some(seq) = seq {
            select.and_where(Expr::col(PolicyCategories::Seq).eq(seq));
        }
        select
            .order_by(PolicyCategories::Seq, Order::Asc)
            .order_by(PolicyCategories::Position, Order::Asc);
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("read policy categories", &e))?;
        let mut by_seq: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for row in &rows {
            let seq: i64 = get(&self.db, row, "seq")?;
            by_seq
                .entry(seq)
                .or_default()
                .push(get(&self.db, row, "category")?);
        }
        Ok(by_seq)
    }

    /// The one version `select` finds (it must ask for at most one row), with its categories.
    async fn one_version(
        &self,
        select: &SelectStatement,
    ) -> Result<Option<PolicyVersion>, StoreError> {
        let Some(row) = self
            .db
            .conn
            .query_one(select)
            .await
            .map_err(|e| self.db.error("read policy version", &e))?
        else {
            return Ok(None);
        };
        let seq: i64 = get(&self.db, &row, "seq")?;
        let categories = self
            .categories(Some(seq))
            .await?
            .remove(&seq)
            .unwrap_or_default();
        self.version_row(&row, categories).map(Some)
    }

    fn receipt_row(&self, row: &QueryResult) -> Result<StoredReceipt, StoreError> {
        Ok(StoredReceipt {
            seq: get(&self.db, row, "seq")?,
            username: get(&self.db, row, "username")?,
            domain: get(&self.db, row, "domain")?,
            resource: get(&self.db, row, "resource")?,
            policy_hash: get(&self.db, row, "policy_hash")?,
            method: get(&self.db, row, "method")?,
            accepted_at: get(&self.db, row, "accepted_at")?,
            remote_addr: get(&self.db, row, "remote_addr")?,
            client: get(&self.db, row, "client")?,
            prev_hash: get(&self.db, row, "prev_hash")?,
            hash: get(&self.db, row, "hash")?,
            signature: get(&self.db, row, "signature")?,
        })
    }

    fn receipt_select() -> SelectStatement {
        Query::select()
            .columns(RECEIPT_COLUMNS)
            .from(PolicyReceipts::Table)
            .to_owned()
    }

    /// The receipt with the greatest seq, read through `conn`.
    async fn last_in(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        let select = Self::receipt_select()
            .order_by(PolicyReceipts::Seq, Order::Desc)
            .limit(1)
            .to_owned();
        conn.query_one(&select)
            .await
            .map_err(|e| self.db.error("read last receipt", &e))?
            .map(|row| self.receipt_row(&row))
            .transpose()
    }

    async fn insert_version(
        &self,
        txn: &DatabaseTransaction,
        v: &NewPolicyVersion,
    ) -> Result<PolicyVersion, StoreError> {
        let mut taken = Query::select();
        taken
            .column(PolicyVersions::Seq)
            .from(PolicyVersions::Table)
            .and_where(Expr::col(PolicyVersions::Hash).eq(v.hash.as_str()))
            .limit(1);
        match &v.domain {
            Some(domain) => taken.and_where(Expr::col(PolicyVersions::Domain).eq(domain.as_str())),
            None => taken.and_where(Expr::col(PolicyVersions::Domain).is_null()),
        };
        if txn
            .query_one(&taken)
            .await
            .map_err(|e| self.db.error("check policy version", &e))?
            .is_some()
        {
            return Err(already_published(v));
        }
        let last = Query::select()
            .expr_as(Func::max(Expr::col(PolicyVersions::Seq)), "last")
            .from(PolicyVersions::Table)
            .to_owned();
        let last: Option<i64> = match txn
            .query_one(&last)
            .await
            .map_err(|e| self.db.error("read last policy version", &e))?
        {
            Some(row) => get(&self.db, &row, "last")?,
            None => None,
        };
        let seq = last
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("policy version numbers are exhausted".into()))?;

        let mut insert = Query::insert();
        insert
            .into_table(PolicyVersions::Table)
            .columns(VERSION_COLUMNS)
            .values([
                seq.into(),
                v.hash.as_str().into(),
                v.domain.clone().into(),
                v.title.as_str().into(),
                v.text.as_str().into(),
                v.format.as_str().into(),
                v.effective_at.into(),
                v.published_at.into(),
                v.published_by.as_str().into(),
            ])
            .map_err(|e| StoreError::Backend(format!("build policy version insert: {e}")))?;
        txn.execute(&insert).await.map_err(|e| {
            // Only reachable when a writer bypassed the lock: the unique index still holds.
            if is_unique_violation(&e) {
                already_published(v)
            } else {
                self.db.error("insert policy version", &e)
            }
        })?;

        if !v.categories.is_empty() {
            let mut insert = Query::insert();
            insert.into_table(PolicyCategories::Table).columns([
                PolicyCategories::Seq,
                PolicyCategories::Position,
                PolicyCategories::Category,
            ]);
            for (position, category) in (0i64..).zip(&v.categories) {
                insert
                    .values([seq.into(), position.into(), category.as_str().into()])
                    .map_err(|e| StoreError::Backend(format!("build category insert: {e}")))?;
            }
            txn.execute(&insert)
                .await
                .map_err(|e| self.db.error("insert policy categories", &e))?;
        }
        Ok(PolicyVersion::new(seq, v))
    }

    async fn insert_receipt(
        &self,
        txn: &DatabaseTransaction,
        r: &NewReceipt,
    ) -> Result<StoredReceipt, StoreError> {
        let last = self.last_in(txn).await?;
        check_link(last.as_ref().map(|l| (l.seq, l.hash.as_str())), r)?;
        let mut insert = Query::insert();
        insert
            .into_table(PolicyReceipts::Table)
            .columns(RECEIPT_COLUMNS)
            .values([
                r.seq.into(),
                r.username.as_str().into(),
                r.domain.as_str().into(),
                r.resource.as_str().into(),
                r.policy_hash.as_str().into(),
                r.method.as_str().into(),
                r.accepted_at.into(),
                r.remote_addr.clone().into(),
                r.client.clone().into(),
                r.prev_hash.as_str().into(),
                r.hash.as_str().into(),
                r.signature.as_str().into(),
            ])
            .map_err(|e| StoreError::Backend(format!("build receipt insert: {e}")))?;
        txn.execute(&insert).await.map_err(|e| {
            // The primary key on seq: a writer that bypassed the lock took the position first.
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("receipt seq {} was taken by another writer", r.seq))
            } else {
                self.db.error("append receipt", &e)
            }
        })?;
        Ok(StoredReceipt::from(r))
    }
}

#[async_trait]
impl PolicyStore for SqlPolicyStore {
    async fn publish(&self, v: &NewPolicyVersion) -> Result<PolicyVersion, StoreError> {
        validate_version(v)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            self.lock(&txn, PUBLISH_LOCK, "lock policy versions")
                .await?;
            self.insert_version(&txn, v).await
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        // Versions first, categories second: a version's categories are committed with it and
        // never change, so every version read has all its categories in the second read (one
        // published in between only adds categories that are not asked for).
        let mut select = Self::version_select();
        select.order_by(PolicyVersions::Seq, Order::Asc);
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list policy versions", &e))?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut categories = self.categories(None).await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = get(&self.db, row, "seq")?;
                self.version_row(row, categories.remove(&seq).unwrap_or_default())
            })
            .collect()
    }

    async fn version_by_hash(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError> {
        if !storable(hash) {
            return Ok(None);
        }
        let select = Self::version_select()
            .and_where(Expr::col(PolicyVersions::Hash).eq(hash))
            .order_by(PolicyVersions::Seq, Order::Asc)
            .limit(1)
            .to_owned();
        self.one_version(&select).await
    }

    async fn current(&self, domain: &str, now: i64) -> Result<Option<PolicyVersion>, StoreError> {
        let mut select = Self::version_select();
        select.and_where(Expr::col(PolicyVersions::EffectiveAt).lte(now));
        if storable(domain) {
            select.and_where(
                Expr::col(PolicyVersions::Domain)
                    .eq(domain)
                    .or(Expr::col(PolicyVersions::Domain).is_null()),
            );
        } else {
            // No version can name such a domain: only those for every domain apply.
            select.and_where(Expr::col(PolicyVersions::Domain).is_null());
        }
        // The domain's own versions first (`IS NULL` is false for them, and false sorts first
        // on both engines), then the latest to take effect, then the latest published.
        select
            .order_by_expr(Expr::col(PolicyVersions::Domain).is_null(), Order::Asc)
            .order_by(PolicyVersions::EffectiveAt, Order::Desc)
            .order_by(PolicyVersions::Seq, Order::Desc)
            .limit(1);
        self.one_version(&select).await
    }

    async fn append_receipt(&self, r: &NewReceipt) -> Result<StoredReceipt, StoreError> {
        validate_receipt(r)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            self.lock(&txn, RECEIPT_LOCK, "lock receipt chain").await?;
            self.insert_receipt(&txn, r).await
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn last_receipt(&self) -> Result<Option<StoredReceipt>, StoreError> {
        self.last_in(&self.db.conn).await
    }

    async fn receipts(&self, f: &ReceiptFilter) -> Result<Vec<StoredReceipt>, StoreError> {
        let limit = f.effective_limit();
        let texts = [f.username.as_deref(), f.domain.as_deref()];
        if limit == 0 || texts.into_iter().flatten().any(|t| !storable(t)) {
            return Ok(Vec::new());
        }
        let mut select = Self::receipt_select();
        if let Some(username) = f.username.as_deref() {
            select.and_where(Expr::col(PolicyReceipts::Username).eq(username));
        }
        if let Some(domain) = f.domain.as_deref() {
            select.and_where(Expr::col(PolicyReceipts::Domain).eq(domain));
        }
        if let Some(since) = f.since {
            select.and_where(Expr::col(PolicyReceipts::AcceptedAt).gte(since));
        }
        if let Some(after) = f.after_seq {
            select.and_where(Expr::col(PolicyReceipts::Seq).gt(after));
        }
        select
            .order_by(PolicyReceipts::Seq, Order::Asc)
            .limit(sql_limit(limit));
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list receipts", &e))?;
        rows.iter().map(|row| self.receipt_row(row)).collect()
    }

    async fn acceptance(
        &self,
        username: &str,
        domain: &str,
        policy_hash: &str,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        if [username, domain, policy_hash].iter().any(|t| !storable(t)) {
            return Ok(None);
        }
        let select = Self::receipt_select()
            .and_where(Expr::col(PolicyReceipts::Username).eq(username))
            .and_where(Expr::col(PolicyReceipts::Domain).eq(domain))
            .and_where(Expr::col(PolicyReceipts::PolicyHash).eq(policy_hash))
            .order_by(PolicyReceipts::Seq, Order::Desc)
            .limit(1)
            .to_owned();
        self.db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read acceptance", &e))?
            .map(|row| self.receipt_row(&row))
            .transpose()
    }
}
