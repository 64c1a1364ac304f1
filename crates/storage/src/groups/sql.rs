//! [`GroupStore`] on SQLite and PostgreSQL.
//!
//! Tables (created by `m0007_groups`): `shared_groups (id, name, display_name, description,
//! created_at)`, unique on the name, and `shared_group_members (group_id, member)` keyed by both,
//! referencing its group with `ON DELETE CASCADE`.

use std::collections::HashSet;

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DeriveIden, QueryResult};

use super::{
    GroupStore, NewGroup, SharedGroup, distinct_lookups, distinct_members, validate_group,
};
use crate::StoreError;
use crate::sql::{SqlDb, get, storable};

#[derive(DeriveIden, Clone, Copy)]
enum SharedGroups {
    Table,
    Id,
    Name,
    DisplayName,
    Description,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SharedGroupMembers {
    Table,
    GroupId,
    Member,
}

/// Members per multi-row `INSERT` (2 parameters each) or per `DELETE … IN (…)`.
const MEMBER_BATCH: usize = 256;

fn no_group(name: &str) -> StoreError {
    StoreError::NotFound(format!("group {name}"))
}

pub(crate) struct SqlGroupStore {
    db: SqlDb,
}

impl SqlGroupStore {
    pub(crate) fn new(db: SqlDb) -> SqlGroupStore {
        SqlGroupStore { db }
    }

    /// Groups joined with their members, one row per membership (or one row of NULLs for a
    /// group without members), ordered by name then member: one statement, so a group and its
    /// members come from one snapshot on both engines.
    fn listing() -> SelectStatement {
        Query::select()
            .columns([
                (SharedGroups::Table, SharedGroups::Name),
                (SharedGroups::Table, SharedGroups::DisplayName),
                (SharedGroups::Table, SharedGroups::Description),
                (SharedGroups::Table, SharedGroups::CreatedAt),
            ])
            .column((SharedGroupMembers::Table, SharedGroupMembers::Member))
            .from(SharedGroups::Table)
            .left_join(
                SharedGroupMembers::Table,
                Expr::col((SharedGroupMembers::Table, SharedGroupMembers::GroupId))
                    .equals((SharedGroups::Table, SharedGroups::Id)),
            )
            .order_by((SharedGroups::Table, SharedGroups::Name), Order::Asc)
            .order_by(
                (SharedGroupMembers::Table, SharedGroupMembers::Member),
                Order::Asc,
            )
            .to_owned()
    }

    fn fold(&self, rows: &[QueryResult]) -> Result<Vec<SharedGroup>, StoreError> {
        let mut groups: Vec<SharedGroup> = Vec::new();
        for row in rows {
            let name: String = get(&self.db, row, "name")?;
            let member: Option<String> = get(&self.db, row, "member")?;
            match groups.last_mut() {
                Some(g) if g.name == name => g.members.extend(member),
                _ => groups.push(SharedGroup {
                    name,
                    display_name: get(&self.db, row, "display_name")?,
                    description: get(&self.db, row, "description")?,
                    created_at: get(&self.db, row, "created_at")?,
                    members: member.into_iter().collect(),
                }),
            }
        }
        Ok(groups)
    }

    /// The id of the group, read in `txn` with its row locked on PostgreSQL (`FOR NO KEY
    /// UPDATE`), so that the group cannot be removed while its members change; SQLite's write
    /// transactions are serialized already.
    async fn group_id(&self, txn: &DatabaseTransaction, name: &str) -> Result<i64, StoreError> {
        if !storable(name) {
            return Err(no_group(name));
        }
        let mut select = Query::select()
            .column(SharedGroups::Id)
            .from(SharedGroups::Table)
            .and_where(Expr::col(SharedGroups::Name).eq(name))
            .to_owned();
        select.lock(LockType::NoKeyUpdate);
        match txn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("find group", &e))?
        {
            Some(row) => get(&self.db, &row, "id"),
            None => Err(no_group(name)),
        }
    }

    /// The members of the returned rows, for picking out of the caller's list in its order
    /// (`RETURNING` order is unspecified).
    fn returned(&self, rows: &[QueryResult]) -> Result<HashSet<String>, StoreError> {
        rows.iter().map(|r| get(&self.db, r, "member")).collect()
    }
}

#[async_trait]
impl GroupStore for SqlGroupStore {
    async fn create_group(&self, group: &NewGroup) -> Result<(), StoreError> {
        validate_group(group)?;
        let mut insert = Query::insert();
        insert
            .into_table(SharedGroups::Table)
            .columns([
                SharedGroups::Name,
                SharedGroups::DisplayName,
                SharedGroups::Description,
                SharedGroups::CreatedAt,
            ])
            .values([
                group.name.as_str().into(),
                group.display_name.clone().into(),
                group.description.clone().into(),
                group.created_at.into(),
            ])
            .map_err(|e| StoreError::Backend(format!("build group insert: {e}")))?
            // A taken name is skipped rather than failing the statement, and told by the count.
            .on_conflict(
                OnConflict::column(SharedGroups::Name)
                    .do_nothing()
                    .to_owned(),
            );
        let written = self
            .db
            .conn
            .execute(&insert)
            .await
            .map_err(|e| self.db.error("create group", &e))?
            .rows_affected();
        if written == 0 {
            return Err(StoreError::AlreadyExists(format!("group {}", group.name)));
        }
        Ok(())
    }

    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        if !storable(name) {
            return Ok(false);
        }
        // Its memberships go with it (shared_group_members_group cascades).
        let delete = Query::delete()
            .from_table(SharedGroups::Table)
            .and_where(Expr::col(SharedGroups::Name).eq(name))
            .to_owned();
        let removed = self
            .db
            .conn
            .execute(&delete)
            .await
            .map_err(|e| self.db.error("remove group", &e))?
            .rows_affected();
        Ok(removed > 0)
    }

    async fn add_members(&self, name: &str, members: &[String]) -> Result<Vec<String>, StoreError> {
        let members = distinct_members(members)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            let group_id = self.group_id(&txn, name).await?;
            let mut added = HashSet::new();
            for chunk in members.chunks(MEMBER_BATCH) {
                let mut insert = Query::insert();
                insert
                    .into_table(SharedGroupMembers::Table)
                    .columns([SharedGroupMembers::GroupId, SharedGroupMembers::Member]);
                for m in chunk {
                    insert
                        .values([group_id.into(), m.as_str().into()])
                        .map_err(|e| StoreError::Backend(format!("build member insert: {e}")))?;
                }
                // Members already there are skipped; what comes back is what was added.
                insert
                    .on_conflict(
                        OnConflict::columns([
                            SharedGroupMembers::GroupId,
                            SharedGroupMembers::Member,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .returning_col(SharedGroupMembers::Member);
                let rows = txn
                    .query_all(&insert)
                    .await
                    .map_err(|e| self.db.error("add group members", &e))?;
                added.extend(self.returned(&rows)?);
            }
            Ok(added)
        }
        .await;
        let added = self.db.finish(txn, result).await?;
        Ok(members.into_iter().filter(|m| added.contains(m)).collect())
    }

    async fn remove_members(
        &self,
        name: &str,
        members: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let members = distinct_lookups(members);
        let txn = self.db.begin_write().await?;
        let result = async {
            let group_id = self.group_id(&txn, name).await?;
            let mut removed = HashSet::new();
            for chunk in members.chunks(MEMBER_BATCH) {
                let delete = Query::delete()
                    .from_table(SharedGroupMembers::Table)
                    .and_where(Expr::col(SharedGroupMembers::GroupId).eq(group_id))
                    .and_where(
                        Expr::col(SharedGroupMembers::Member)
                            .is_in(chunk.iter().map(String::as_str)),
                    )
                    .returning_col(SharedGroupMembers::Member)
                    .to_owned();
                let rows = txn
                    .query_all(&delete)
                    .await
                    .map_err(|e| self.db.error("remove group members", &e))?;
                removed.extend(self.returned(&rows)?);
            }
            Ok(removed)
        }
        .await;
        let removed = self.db.finish(txn, result).await?;
        Ok(members
            .into_iter()
            .filter(|m| removed.contains(m))
            .collect())
    }

    async fn groups(&self) -> Result<Vec<SharedGroup>, StoreError> {
        let rows = self
            .db
            .conn
            .query_all(&Self::listing())
            .await
            .map_err(|e| self.db.error("list groups", &e))?;
        self.fold(&rows)
    }

    async fn group(&self, name: &str) -> Result<Option<SharedGroup>, StoreError> {
        if !storable(name) {
            return Ok(None);
        }
        let select = Self::listing()
            .and_where(Expr::col((SharedGroups::Table, SharedGroups::Name)).eq(name))
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("read group", &e))?;
        Ok(self.fold(&rows)?.into_iter().next())
    }
}
