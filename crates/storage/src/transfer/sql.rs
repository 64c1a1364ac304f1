//! [`TransferStore`] on SQLite and PostgreSQL: the tables of `m0001_users` and `m0002_im`, read in
//! one snapshot and written in one transaction.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Order, Query, SimpleExpr};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DeriveIden, IsolationLevel, TransactionOptions,
    TransactionTrait, Value,
};

use super::{
    AccountRecord, ExistingAccounts, ImportOutcome, Progress, TransferStore, TransferredMessage,
    imported_roster_version, validate_records,
};
use crate::StoreError;
use crate::roster::sql::{RosterGroups, RosterItems, RosterPendingIn, RosterVersions};
use crate::roster::{PendingSubscription, RosterItem, Subscription};
use crate::sql::{SqlDb, SqlKind, get, storable, unsigned};
use crate::users::{StoredCredential, account, now_unix};

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Username,
    Domain,
    CreatedAt,
}

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

#[derive(DeriveIden, Clone, Copy)]
enum OfflineMessages {
    Table,
    Id,
    UserId,
    Stanza,
    StoredAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AccountData {
    Table,
    UserId,
    Key,
    Value,
}

/// Rows per multi-row `INSERT`; the widest row has 7 parameters, far below both engines' limits.
const ROW_BATCH: usize = 128;

pub(crate) struct SqlTransferStore {
    db: SqlDb,
}

impl SqlTransferStore {
    pub(crate) fn new(db: SqlDb) -> SqlTransferStore {
        SqlTransferStore { db }
    }

    /// The id of the account, read inside `conn`; with `lock`, its row is locked on PostgreSQL
    /// until the transaction ends (SQLite's write transaction already excludes other writers).
    async fn find(
        &self,
        conn: &impl ConnectionTrait,
        username: &str,
        domain: &str,
        lock: bool,
    ) -> Result<Option<i64>, StoreError> {
        if !storable(username) || !storable(domain) {
            return Ok(None);
        }
        let mut select = Query::select()
            .column(Users::Id)
            .from(Users::Table)
            .and_where(Expr::col(Users::Domain).eq(domain))
            .and_where(Expr::col(Users::Username).eq(username))
            .to_owned();
        if lock {
            select.lock(LockType::Update);
        }
        let row = conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("find account", &e))?;
        row.map(|row| get(&self.db, &row, "id")).transpose()
    }

    async fn read_account(
        &self,
        conn: &impl ConnectionTrait,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let Some(id) = self.find(conn, username, domain, false).await? else {
            return Ok(None);
        };
        let mut record = AccountRecord {
            username: username.to_owned(),
            domain: domain.to_owned(),
            ..AccountRecord::default()
        };

        let select = Query::select()
            .columns([
                UserCredentials::Hash,
                UserCredentials::Salt,
                UserCredentials::Iterations,
                UserCredentials::StoredKey,
                UserCredentials::ServerKey,
            ])
            .from(UserCredentials::Table)
            .and_where(Expr::col(UserCredentials::UserId).eq(id))
            .order_by(UserCredentials::Hash, Order::Asc)
            .to_owned();
        for row in self.all(conn, &select, "read credentials").await? {
            let iterations: i64 = get(&self.db, &row, "iterations")?;
            record.credentials.push(StoredCredential {
                hash: get(&self.db, &row, "hash")?,
                salt: get(&self.db, &row, "salt")?,
                iterations: u32::try_from(iterations).map_err(|_| {
                    StoreError::Backend(format!(
                        "stored iteration count of {} is out of range",
                        account(username, domain)
                    ))
                })?,
                stored_key: get(&self.db, &row, "stored_key")?,
                server_key: get(&self.db, &row, "server_key")?,
            });
        }

        let select = Query::select()
            .columns([
                RosterItems::Contact,
                RosterItems::Name,
                RosterItems::Subscription,
                RosterItems::PendingOut,
                RosterItems::PendingIn,
                RosterItems::Approved,
            ])
            .from(RosterItems::Table)
            .and_where(Expr::col(RosterItems::UserId).eq(id))
            .order_by(RosterItems::Contact, Order::Asc)
            .to_owned();
        for row in self.all(conn, &select, "read roster").await? {
            let contact: String = get(&self.db, &row, "contact")?;
            let subscription: String = get(&self.db, &row, "subscription")?;
            let subscription = Subscription::parse(&subscription).ok_or_else(|| {
                StoreError::Backend(format!(
                    "stored subscription '{subscription}' of {contact} in the roster of {} is \
                     not none, to, from or both",
                    account(username, domain)
                ))
            })?;
            record.roster.push(RosterItem {
                jid: contact,
                name: get(&self.db, &row, "name")?,
                subscription,
                pending_out: get(&self.db, &row, "pending_out")?,
                pending_in: get(&self.db, &row, "pending_in")?,
                approved: get(&self.db, &row, "approved")?,
                groups: Vec::new(),
            });
        }
        let select = Query::select()
            .columns([RosterGroups::Contact, RosterGroups::Name])
            .from(RosterGroups::Table)
            .and_where(Expr::col(RosterGroups::UserId).eq(id))
            .order_by(RosterGroups::Contact, Order::Asc)
            .order_by(RosterGroups::Position, Order::Asc)
            .to_owned();
        // Both lists are in contact order: one pass attaches the groups.
        let mut items = record.roster.iter_mut().peekable();
        for row in self.all(conn, &select, "read roster groups").await? {
            let contact: String = get(&self.db, &row, "contact")?;
            let name: String = get(&self.db, &row, "name")?;
            while items.peek().is_some_and(|item| item.jid != contact) {
                items.next();
            }
            if let Some(item) = items.peek_mut() {
                item.groups.push(name);
            }
        }

        let select = Query::select()
            .columns([RosterPendingIn::Contact, RosterPendingIn::Stanza])
            .from(RosterPendingIn::Table)
            .and_where(Expr::col(RosterPendingIn::UserId).eq(id))
            .order_by(RosterPendingIn::Id, Order::Asc)
            .to_owned();
        for row in self
            .all(conn, &select, "read subscription requests")
            .await?
        {
            record.pending_in.push(PendingSubscription {
                contact: get(&self.db, &row, "contact")?,
                stanza: get(&self.db, &row, "stanza")?,
            });
        }

        let select = Query::select()
            .columns([OfflineMessages::Stanza, OfflineMessages::StoredAt])
            .from(OfflineMessages::Table)
            .and_where(Expr::col(OfflineMessages::UserId).eq(id))
            .order_by(OfflineMessages::Id, Order::Asc)
            .to_owned();
        for row in self.all(conn, &select, "read offline messages").await? {
            record.offline.push(TransferredMessage {
                stanza: get(&self.db, &row, "stanza")?,
                stored_at: get(&self.db, &row, "stored_at")?,
            });
        }

        let select = Query::select()
            .columns([AccountData::Key, AccountData::Value])
            .from(AccountData::Table)
            .and_where(Expr::col(AccountData::UserId).eq(id))
            .order_by(AccountData::Key, Order::Asc)
            .to_owned();
        for row in self.all(conn, &select, "read account data").await? {
            record
                .data
                .push((get(&self.db, &row, "key")?, get(&self.db, &row, "value")?));
        }
        Ok(Some(record))
    }

    async fn all(
        &self,
        conn: &impl ConnectionTrait,
        select: &sea_orm::sea_query::SelectStatement,
        action: &str,
    ) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
        conn.query_all(select)
            .await
            .map_err(|e| self.db.error(action, &e))
    }

    /// Inserts `rows` into `table` in batches, in order.
    async fn insert_rows<const N: usize>(
        &self,
        txn: &DatabaseTransaction,
        table: impl sea_orm::sea_query::IntoTableRef + Clone,
        columns: [impl sea_orm::sea_query::IntoIden + Clone; N],
        rows: Vec<[SimpleExpr; N]>,
        action: &str,
    ) -> Result<(), StoreError> {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut insert = Query::insert();
            insert.into_table(table.clone()).columns(columns.clone());
            for row in rows.by_ref().take(ROW_BATCH) {
                insert
                    .values(row)
                    .map_err(|e| StoreError::Backend(format!("build insert ({action}): {e}")))?;
            }
            txn.execute(&insert)
                .await
                .map_err(|e| self.db.error(action, &e))?;
        }
        Ok(())
    }

    /// Writes one account and everything it owns; `NotFound`-free: the account is created here.
    async fn write_account(
        &self,
        txn: &DatabaseTransaction,
        record: &AccountRecord,
        previous_version: u64,
    ) -> Result<(), StoreError> {
        let mut insert = Query::insert();
        insert
            .into_table(Users::Table)
            .columns([Users::Username, Users::Domain, Users::CreatedAt])
            .values([
                record.username.as_str().into(),
                record.domain.as_str().into(),
                now_unix().into(),
            ])
            .map_err(|e| StoreError::Backend(format!("build account insert: {e}")))?
            // A concurrent creation of the same account is reported as such, not as a driver
            // error (PostgreSQL would otherwise abort the transaction with a unique violation).
            .on_conflict(
                OnConflict::columns([Users::Domain, Users::Username])
                    .do_nothing()
                    .to_owned(),
            )
            .returning_col(Users::Id);
        let Some(row) = txn
            .query_one(&insert)
            .await
            .map_err(|e| self.db.error("insert account", &e))?
        else {
            return Err(StoreError::AlreadyExists(account(
                &record.username,
                &record.domain,
            )));
        };
        let id: i64 = get(&self.db, &row, "id")?;

        let rows = record
            .credentials
            .iter()
            .map(|c| {
                [
                    id.into(),
                    c.hash.as_str().into(),
                    Value::from(c.salt.clone()).into(),
                    i64::from(c.iterations).into(),
                    Value::from(c.stored_key.clone()).into(),
                    Value::from(c.server_key.clone()).into(),
                ]
            })
            .collect();
        self.insert_rows(
            txn,
            UserCredentials::Table,
            [
                UserCredentials::UserId,
                UserCredentials::Hash,
                UserCredentials::Salt,
                UserCredentials::Iterations,
                UserCredentials::StoredKey,
                UserCredentials::ServerKey,
            ],
            rows,
            "insert credentials",
        )
        .await?;

        let rows = record
            .roster
            .iter()
            .map(|item| {
                [
                    id.into(),
                    item.jid.as_str().into(),
                    Value::from(item.name.clone()).into(),
                    item.subscription.name().into(),
                    item.pending_out.into(),
                    item.pending_in.into(),
                    item.approved.into(),
                ]
            })
            .collect();
        self.insert_rows(
            txn,
            RosterItems::Table,
            [
                RosterItems::UserId,
                RosterItems::Contact,
                RosterItems::Name,
                RosterItems::Subscription,
                RosterItems::PendingOut,
                RosterItems::PendingIn,
                RosterItems::Approved,
            ],
            rows,
            "insert roster items",
        )
        .await?;
        let mut rows = Vec::new();
        for item in &record.roster {
            for (position, group) in item.groups.iter().enumerate() {
                let position = i32::try_from(position)
                    .map_err(|_| StoreError::InvalidInput("too many roster groups".into()))?;
                rows.push([
                    id.into(),
                    item.jid.as_str().into(),
                    position.into(),
                    group.as_str().into(),
                ]);
            }
        }
        self.insert_rows(
            txn,
            RosterGroups::Table,
            [
                RosterGroups::UserId,
                RosterGroups::Contact,
                RosterGroups::Position,
                RosterGroups::Name,
            ],
            rows,
            "insert roster groups",
        )
        .await?;
        if !record.roster.is_empty() || previous_version > 0 {
            let version = i64::try_from(imported_roster_version(previous_version))
                .map_err(|_| StoreError::Backend("roster version out of range".into()))?;
            self.insert_rows(
                txn,
                RosterVersions::Table,
                [RosterVersions::UserId, RosterVersions::Version],
                vec![[id.into(), version.into()]],
                "insert roster version",
            )
            .await?;
        }

        // One row per statement where the autoincrement id is the order, so that the order
        // never depends on how an engine numbers the rows of one multi-row insert.
        for p in &record.pending_in {
            self.insert_rows(
                txn,
                RosterPendingIn::Table,
                [
                    RosterPendingIn::UserId,
                    RosterPendingIn::Contact,
                    RosterPendingIn::Stanza,
                ],
                vec![[
                    id.into(),
                    p.contact.as_str().into(),
                    p.stanza.as_str().into(),
                ]],
                "insert subscription request",
            )
            .await?;
        }
        for m in &record.offline {
            self.insert_rows(
                txn,
                OfflineMessages::Table,
                [
                    OfflineMessages::UserId,
                    OfflineMessages::Stanza,
                    OfflineMessages::StoredAt,
                ],
                vec![[id.into(), m.stanza.as_str().into(), m.stored_at.into()]],
                "insert offline message",
            )
            .await?;
        }

        let rows = record
            .data
            .iter()
            .map(|(key, value)| [id.into(), key.as_str().into(), value.as_str().into()])
            .collect();
        self.insert_rows(
            txn,
            AccountData::Table,
            [AccountData::UserId, AccountData::Key, AccountData::Value],
            rows,
            "insert account data",
        )
        .await
    }

    async fn import_in(
        &self,
        txn: &DatabaseTransaction,
        records: &[AccountRecord],
        existing: ExistingAccounts,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportOutcome, StoreError> {
        let mut outcome = ImportOutcome::default();
        for (done, record) in records.iter().enumerate() {
            let found = self
                .find(txn, &record.username, &record.domain, true)
                .await?;
            let mut previous_version = 0;
            match (found, existing) {
                (None, _) => outcome.created += 1,
                (Some(_), ExistingAccounts::Refuse) => {
                    return Err(StoreError::AlreadyExists(account(
                        &record.username,
                        &record.domain,
                    )));
                }
                (Some(_), ExistingAccounts::Skip) => {
                    outcome
                        .skipped
                        .push(account(&record.username, &record.domain));
                    if let Some(report) = progress {
                        report(done + 1, records.len());
                    }
                    continue;
                }
                (Some(id), ExistingAccounts::Replace) => {
                    let select = Query::select()
                        .column(RosterVersions::Version)
                        .from(RosterVersions::Table)
                        .and_where(Expr::col(RosterVersions::UserId).eq(id))
                        .to_owned();
                    if let Some(row) = txn
                        .query_one(&select)
                        .await
                        .map_err(|e| self.db.error("read roster version", &e))?
                    {
                        previous_version = unsigned(get(&self.db, &row, "version")?);
                    }
                    // Everything the account owns goes with it (ON DELETE CASCADE).
                    let delete = Query::delete()
                        .from_table(Users::Table)
                        .and_where(Expr::col(Users::Id).eq(id))
                        .to_owned();
                    txn.execute(&delete)
                        .await
                        .map_err(|e| self.db.error("remove replaced account", &e))?;
                    outcome.replaced += 1;
                }
            }
            self.write_account(txn, record, previous_version).await?;
            if let Some(report) = progress {
                report(done + 1, records.len());
            }
        }
        Ok(outcome)
    }
}

#[async_trait]
impl TransferStore for SqlTransferStore {
    async fn export_account(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        // One snapshot for all the reads: a read transaction on SQLite (WAL), REPEATABLE READ on
        // PostgreSQL, where READ COMMITTED would give each statement a snapshot of its own.
        let options = match self.db.kind {
            SqlKind::Postgres => TransactionOptions {
                isolation_level: Some(IsolationLevel::RepeatableRead),
                ..TransactionOptions::default()
            },
            SqlKind::Sqlite => TransactionOptions::default(),
        };
        let txn = self
            .db
            .conn
            .begin_with_options(options)
            .await
            .map_err(|e| self.db.error("begin transaction", &e))?;
        let result = self.read_account(&txn, username, domain).await;
        self.db.finish(txn, result).await
    }

    async fn import_accounts(
        &self,
        records: &[AccountRecord],
        existing: ExistingAccounts,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportOutcome, StoreError> {
        let records = validate_records(records)?;
        if records.is_empty() {
            return Ok(ImportOutcome::default());
        }
        let txn = self.db.begin_write().await?;
        let result = self.import_in(&txn, &records, existing, progress).await;
        self.db.finish(txn, result).await
    }
}
