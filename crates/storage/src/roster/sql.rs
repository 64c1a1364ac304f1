//! [`RosterStore`] on SQLite and PostgreSQL.
//!
//! Tables (created by `m0002_im`), each referencing `users` with `ON DELETE CASCADE`:
//! - `roster_items (user_id, contact, name, subscription, pending_out, pending_in, approved)`
//!   keyed by `(user_id, contact)`;
//! - `roster_groups (user_id, contact, position, name)` keyed by `(user_id, contact,
//!   position)`, also referencing its item with `ON DELETE CASCADE`;
//! - `roster_versions (user_id, version)`, one row per account once its roster changed;
//! - `roster_pending_in (id, user_id, contact, stanza)`, unique on `(user_id, contact)`, the
//!   autoincrement id giving the arrival order.

use async_trait::async_trait;
use sea_orm::sea_query::{
    Expr, ExprTrait, Func, InsertStatement, OnConflict, Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DeriveIden, QueryResult, Value};

use super::{
    PendingSubscription, RosterItem, RosterStore, Subscription, stored_item, validate_pending,
};
use crate::StoreError;
use crate::sql::{SqlDb, Users, account_id_query, get, storable, unsigned};
use crate::users::account;

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RosterItems {
    Table,
    UserId,
    Contact,
    Name,
    Subscription,
    PendingOut,
    PendingIn,
    Approved,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RosterGroups {
    Table,
    UserId,
    Contact,
    Position,
    Name,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RosterVersions {
    Table,
    UserId,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RosterPendingIn {
    Table,
    Id,
    UserId,
    Contact,
    Stanza,
}

/// Group rows per multi-row `INSERT` (4 parameters each).
const GROUP_BATCH: usize = 256;

pub(crate) struct SqlRosterStore {
    db: SqlDb,
}

impl SqlRosterStore {
    pub(crate) fn new(db: SqlDb) -> SqlRosterStore {
        SqlRosterStore { db }
    }

    /// The account row joined with its items and their groups, one row per group (or per
    /// item without groups, or one row of NULLs for an account without items), ordered by
    /// contact then group position, each row carrying the roster version. One statement, so
    /// items and version come from one snapshot on both engines.
    fn items_query(username: &str, domain: &str) -> SelectStatement {
        let version = Query::select()
            .column((RosterVersions::Table, RosterVersions::Version))
            .from(RosterVersions::Table)
            .and_where(
                Expr::col((RosterVersions::Table, RosterVersions::UserId))
                    .equals((Users::Table, Users::Id)),
            )
            .to_owned();
        Query::select()
            .expr_as(Expr::from(version), "version")
            .columns([
                (RosterItems::Table, RosterItems::Contact),
                (RosterItems::Table, RosterItems::Name),
                (RosterItems::Table, RosterItems::Subscription),
                (RosterItems::Table, RosterItems::PendingOut),
                (RosterItems::Table, RosterItems::PendingIn),
                (RosterItems::Table, RosterItems::Approved),
            ])
            .expr_as(
                Expr::col((RosterGroups::Table, RosterGroups::Name)),
                "group_name",
            )
            .from(Users::Table)
            .left_join(
                RosterItems::Table,
                Expr::col((RosterItems::Table, RosterItems::UserId))
                    .equals((Users::Table, Users::Id)),
            )
            .left_join(
                RosterGroups::Table,
                Expr::col((RosterGroups::Table, RosterGroups::UserId))
                    .equals((RosterItems::Table, RosterItems::UserId))
                    .and(
                        Expr::col((RosterGroups::Table, RosterGroups::Contact))
                            .equals((RosterItems::Table, RosterItems::Contact)),
                    ),
            )
            .and_where(Expr::col((Users::Table, Users::Domain)).eq(domain))
            .and_where(Expr::col((Users::Table, Users::Username)).eq(username))
            .order_by((RosterItems::Table, RosterItems::Contact), Order::Asc)
            .order_by((RosterGroups::Table, RosterGroups::Position), Order::Asc)
            .to_owned()
    }

    /// Folds the rows of [`items_query`](Self::items_query) into items and the version;
    /// `None` when there was no row (no such account).
    fn fold_items(
        &self,
        username: &str,
        domain: &str,
        rows: &[QueryResult],
    ) -> Result<Option<(Vec<RosterItem>, u64)>, StoreError> {
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let version: Option<i64> = get(&self.db, first, "version")?;
        let mut items: Vec<RosterItem> = Vec::new();
        for row in rows {
            let Some(contact) = get::<Option<String>>(&self.db, row, "contact")? else {
                // The account's own row when it has no item.
                continue;
            };
            let group: Option<String> = get(&self.db, row, "group_name")?;
            match items.last_mut() {
                Some(item) if item.jid == contact => item.groups.extend(group),
                _ => {
                    let subscription: String = get(&self.db, row, "subscription")?;
                    let subscription = Subscription::parse(&subscription).ok_or_else(|| {
                        StoreError::Backend(format!(
                            "stored subscription '{subscription}' of {contact} in the roster \
                             of {} is not none, to, from or both",
                            account(username, domain)
                        ))
                    })?;
                    items.push(RosterItem {
                        jid: contact,
                        name: get(&self.db, row, "name")?,
                        subscription,
                        pending_out: get(&self.db, row, "pending_out")?,
                        pending_in: get(&self.db, row, "pending_in")?,
                        approved: get(&self.db, row, "approved")?,
                        groups: group.into_iter().collect(),
                    });
                }
            }
        }
        Ok(Some((items, version.map_or(0, unsigned))))
    }

    /// Adds one to the account's roster version (creating the counter at 1) and returns it.
    async fn bump_version(
        &self,
        txn: &DatabaseTransaction,
        user_id: i64,
    ) -> Result<u64, StoreError> {
        let mut insert = Query::insert();
        insert
            .into_table(RosterVersions::Table)
            .columns([RosterVersions::UserId, RosterVersions::Version])
            .values([user_id.into(), 1i64.into()])
            .map_err(|e| StoreError::Backend(format!("build version update: {e}")))?
            .on_conflict(
                OnConflict::column(RosterVersions::UserId)
                    .value(
                        RosterVersions::Version,
                        Expr::col((RosterVersions::Table, RosterVersions::Version)).add(1i64),
                    )
                    .to_owned(),
            )
            .returning_col(RosterVersions::Version);
        let row = txn
            .query_one(&insert)
            .await
            .map_err(|e| self.db.error("update roster version", &e))?
            .ok_or_else(|| StoreError::Backend("roster version update returned nothing".into()))?;
        Ok(unsigned(get(&self.db, &row, "version")?))
    }

    async fn write_item(
        &self,
        txn: &DatabaseTransaction,
        user_id: i64,
        item: &RosterItem,
    ) -> Result<(), StoreError> {
        let mut upsert = Query::insert();
        upsert
            .into_table(RosterItems::Table)
            .columns([
                RosterItems::UserId,
                RosterItems::Contact,
                RosterItems::Name,
                RosterItems::Subscription,
                RosterItems::PendingOut,
                RosterItems::PendingIn,
                RosterItems::Approved,
            ])
            .values([
                user_id.into(),
                item.jid.as_str().into(),
                Value::from(item.name.clone()).into(),
                item.subscription.name().into(),
                item.pending_out.into(),
                item.pending_in.into(),
                item.approved.into(),
            ])
            .map_err(|e| StoreError::Backend(format!("build roster item insert: {e}")))?
            .on_conflict(
                OnConflict::columns([RosterItems::UserId, RosterItems::Contact])
                    .update_columns([
                        RosterItems::Name,
                        RosterItems::Subscription,
                        RosterItems::PendingOut,
                        RosterItems::PendingIn,
                        RosterItems::Approved,
                    ])
                    .to_owned(),
            );
        txn.execute(&upsert)
            .await
            .map_err(|e| self.db.error("store roster item", &e))?;

        let delete = Query::delete()
            .from_table(RosterGroups::Table)
            .and_where(Expr::col(RosterGroups::UserId).eq(user_id))
            .and_where(Expr::col(RosterGroups::Contact).eq(item.jid.as_str()))
            .to_owned();
        txn.execute(&delete)
            .await
            .map_err(|e| self.db.error("replace roster groups", &e))?;

        let numbered: Vec<(i32, &String)> = item
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                i32::try_from(i)
                    .map(|i| (i, g))
                    .map_err(|_| StoreError::InvalidInput("too many roster groups".into()))
            })
            .collect::<Result<_, _>>()?;
        for chunk in numbered.chunks(GROUP_BATCH) {
            let mut insert = Query::insert();
            insert.into_table(RosterGroups::Table).columns([
                RosterGroups::UserId,
                RosterGroups::Contact,
                RosterGroups::Position,
                RosterGroups::Name,
            ]);
            for (position, name) in chunk {
                insert
                    .values([
                        user_id.into(),
                        item.jid.as_str().into(),
                        (*position).into(),
                        name.as_str().into(),
                    ])
                    .map_err(|e| StoreError::Backend(format!("build roster group insert: {e}")))?;
            }
            txn.execute(&insert)
                .await
                .map_err(|e| self.db.error("store roster groups", &e))?;
        }
        Ok(())
    }

    /// `INSERT … SELECT users.id, … FROM users WHERE …`: a row for the named account in one
    /// statement, or no row when the account does not exist.
    fn pending_upsert(
        username: &str,
        domain: &str,
        p: &PendingSubscription,
    ) -> Result<InsertStatement, StoreError> {
        let source = account_id_query(username, domain)
            .expr(Expr::val(p.contact.as_str()))
            .expr(Expr::val(p.stanza.as_str()))
            .to_owned();
        let mut insert = Query::insert();
        insert
            .into_table(RosterPendingIn::Table)
            .columns([
                RosterPendingIn::UserId,
                RosterPendingIn::Contact,
                RosterPendingIn::Stanza,
            ])
            .select_from(source)
            .map_err(|e| StoreError::Backend(format!("build subscription request insert: {e}")))?
            // The id, hence the place in the order, stays that of the first request.
            .on_conflict(
                OnConflict::columns([RosterPendingIn::UserId, RosterPendingIn::Contact])
                    .update_column(RosterPendingIn::Stanza)
                    .to_owned(),
            );
        Ok(insert)
    }
}

#[async_trait]
impl RosterStore for SqlRosterStore {
    async fn roster(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<(Vec<RosterItem>, u64), StoreError> {
        let rows = self
            .db
            .conn
            .query_all(&Self::items_query(username, domain))
            .await
            .map_err(|e| self.db.error("read roster", &e))?;
        Ok(self
            .fold_items(username, domain, &rows)?
            .unwrap_or_default())
    }

    async fn item(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError> {
        if !storable(contact) {
            return Ok(None);
        }
        let select = Self::items_query(username, domain)
            .and_where(Expr::col((RosterItems::Table, RosterItems::Contact)).eq(contact))
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("read roster item", &e))?;
        Ok(self
            .fold_items(username, domain, &rows)?
            .and_then(|(items, _)| items.into_iter().next()))
    }

    async fn put_item(
        &self,
        username: &str,
        domain: &str,
        item: &RosterItem,
    ) -> Result<u64, StoreError> {
        let item = stored_item(item)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            // Locked: puts and removals of one roster run one after the other, each bumping
            // the version it read.
            let user_id = self.db.account_id(&txn, username, domain, true).await?;
            self.write_item(&txn, user_id, &item).await?;
            self.bump_version(&txn, user_id).await
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn remove_item(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_write().await?;
        let result = async {
            let user_id = self.db.account_id(&txn, username, domain, true).await?;
            if !storable(contact) {
                return Ok(None);
            }
            // Its groups go with it (roster_groups_item cascades).
            let delete = Query::delete()
                .from_table(RosterItems::Table)
                .and_where(Expr::col(RosterItems::UserId).eq(user_id))
                .and_where(Expr::col(RosterItems::Contact).eq(contact))
                .to_owned();
            let removed = txn
                .execute(&delete)
                .await
                .map_err(|e| self.db.error("remove roster item", &e))?
                .rows_affected();
            if removed == 0 {
                return Ok(None);
            }
            self.bump_version(&txn, user_id).await.map(Some)
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn version(&self, username: &str, domain: &str) -> Result<u64, StoreError> {
        let select = Query::select()
            .column(RosterVersions::Version)
            .from(RosterVersions::Table)
            .and_where(
                Expr::col(RosterVersions::UserId).in_subquery(account_id_query(username, domain)),
            )
            .to_owned();
        let row = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read roster version", &e))?;
        match row {
            Some(row) => Ok(unsigned(get(&self.db, &row, "version")?)),
            None => Ok(0),
        }
    }

    async fn count_items(&self, username: &str, domain: &str) -> Result<u64, StoreError> {
        let select = Query::select()
            .expr_as(Func::count(Expr::col(RosterItems::Contact)), "n")
            .from(RosterItems::Table)
            .and_where(
                Expr::col(RosterItems::UserId).in_subquery(account_id_query(username, domain)),
            )
            .to_owned();
        let row = self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("count roster items", &e))?;
        match row {
            Some(row) => Ok(unsigned(get(&self.db, &row, "n")?)),
            None => Ok(0),
        }
    }

    async fn pending_in(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Vec<PendingSubscription>, StoreError> {
        let select = Query::select()
            .columns([RosterPendingIn::Contact, RosterPendingIn::Stanza])
            .from(RosterPendingIn::Table)
            .and_where(
                Expr::col(RosterPendingIn::UserId).in_subquery(account_id_query(username, domain)),
            )
            .order_by(RosterPendingIn::Id, Order::Asc)
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("read subscription requests", &e))?;
        rows.iter()
            .map(|row| {
                Ok(PendingSubscription {
                    contact: get(&self.db, row, "contact")?,
                    stanza: get(&self.db, row, "stanza")?,
                })
            })
            .collect()
    }

    async fn add_pending_in(
        &self,
        username: &str,
        domain: &str,
        p: &PendingSubscription,
    ) -> Result<(), StoreError> {
        validate_pending(p)?;
        let insert = Self::pending_upsert(username, domain, p)?;
        let written = self
            .db
            .conn
            .execute(&insert)
            .await
            .map_err(|e| self.db.error("store subscription request", &e))?
            .rows_affected();
        if written == 0 {
            return Err(StoreError::NotFound(account(username, domain)));
        }
        Ok(())
    }

    async fn remove_pending_in(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<bool, StoreError> {
        if storable(contact) {
            let delete = Query::delete()
                .from_table(RosterPendingIn::Table)
                .and_where(
                    Expr::col(RosterPendingIn::UserId)
                        .in_subquery(account_id_query(username, domain)),
                )
                .and_where(Expr::col(RosterPendingIn::Contact).eq(contact))
                .to_owned();
            let removed = self
                .db
                .conn
                .execute(&delete)
                .await
                .map_err(|e| self.db.error("remove subscription request", &e))?
                .rows_affected();
            if removed > 0 {
                return Ok(true);
            }
        }
        self.db.require_account(username, domain).await?;
        Ok(false)
    }
}
