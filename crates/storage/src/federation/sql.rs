//! [`FederationStore`] on SQLite and PostgreSQL.
//!
//! Tables (created by `m0003_federation_audit`): `federation_partners (domain, rule, note,
//! updated_at)` keyed by the domain, and `federation_revision (id, revision)`, one row (id 1)
//! whose counter every change moves forward in its own transaction.

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DeriveIden};

use super::{FederationStore, Partner, PartnerRule, validate_entry};
use crate::StoreError;
use crate::sql::{SqlDb, get, storable};

#[derive(DeriveIden, Clone, Copy)]
enum FederationPartners {
    Table,
    Domain,
    Rule,
    Note,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum FederationRevision {
    Table,
    Id,
    Revision,
}

/// The id of the counter's one row.
const REVISION_ROW: i64 = 1;

pub(crate) struct SqlFederationStore {
    db: SqlDb,
}

impl SqlFederationStore {
    pub(crate) fn new(db: SqlDb) -> SqlFederationStore {
        SqlFederationStore { db }
    }

    /// Adds one to the revision (creating the row at 1). Done first in each writing
    /// transaction: on PostgreSQL the row lock it takes queues writers of the list behind each
    /// other until commit, so revisions are handed out in commit order; SQLite's write
    /// transactions are serialized already.
    async fn bump_revision(&self, txn: &DatabaseTransaction) -> Result<(), StoreError> {
        let mut insert = Query::insert();
        insert
            .into_table(FederationRevision::Table)
            .columns([FederationRevision::Id, FederationRevision::Revision])
            .values([REVISION_ROW.into(), 1i64.into()])
            .map_err(|e| StoreError::Backend(format!("build revision update: {e}")))?
            .on_conflict(
                OnConflict::column(FederationRevision::Id)
                    .value(
                        FederationRevision::Revision,
                        Expr::col((FederationRevision::Table, FederationRevision::Revision))
                            .add(1i64),
                    )
                    .to_owned(),
            );
        txn.execute(&insert)
            .await
            .map_err(|e| self.db.error("update federation revision", &e))?;
        Ok(())
    }
}

#[async_trait]
impl FederationStore for SqlFederationStore {
    async fn set_partner(
        &self,
        domain: &str,
        rule: PartnerRule,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        validate_entry(domain, note)?;
        let txn = self.db.begin_write().await?;
        let result = async {
            self.bump_revision(&txn).await?;
            let mut upsert = Query::insert();
            upsert
                .into_table(FederationPartners::Table)
                .columns([
                    FederationPartners::Domain,
                    FederationPartners::Rule,
                    FederationPartners::Note,
                    FederationPartners::UpdatedAt,
                ])
                .values([
                    domain.into(),
                    rule.as_str().into(),
                    note.map(str::to_owned).into(),
                    now.into(),
                ])
                .map_err(|e| StoreError::Backend(format!("build partner upsert: {e}")))?
                .on_conflict(
                    OnConflict::column(FederationPartners::Domain)
                        .update_columns([
                            FederationPartners::Rule,
                            FederationPartners::Note,
                            FederationPartners::UpdatedAt,
                        ])
                        .to_owned(),
                );
            txn.execute(&upsert)
                .await
                .map_err(|e| self.db.error("store federation partner", &e))?;
            Ok(())
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn remove_partner(&self, domain: &str) -> Result<bool, StoreError> {
        if !storable(domain) {
            return Ok(false);
        }
        let txn = self.db.begin_write().await?;
        let result = async {
            let delete = Query::delete()
                .from_table(FederationPartners::Table)
                .and_where(Expr::col(FederationPartners::Domain).eq(domain))
                .to_owned();
            let removed = txn
                .execute(&delete)
                .await
                .map_err(|e| self.db.error("remove federation partner", &e))?
                .rows_affected();
            if removed == 0 {
                return Ok(false);
            }
            self.bump_revision(&txn).await?;
            Ok(true)
        }
        .await;
        self.db.finish(txn, result).await
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        let select = Query::select()
            .columns([
                FederationPartners::Domain,
                FederationPartners::Rule,
                FederationPartners::Note,
                FederationPartners::UpdatedAt,
            ])
            .from(FederationPartners::Table)
            .order_by(FederationPartners::Domain, Order::Asc)
            .to_owned();
        let rows = self
            .db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| self.db.error("list federation partners", &e))?;
        rows.iter()
            .map(|row| {
                let rule: String = get(&self.db, row, "rule")?;
                Ok(Partner {
                    domain: get(&self.db, row, "domain")?,
                    rule: PartnerRule::parse(&rule).ok_or_else(|| {
                        StoreError::Backend(format!("unknown partner rule '{rule}' in database"))
                    })?,
                    note: get(&self.db, row, "note")?,
                    updated_at: get(&self.db, row, "updated_at")?,
                })
            })
            .collect()
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        let select = Query::select()
            .column(FederationRevision::Revision)
            .from(FederationRevision::Table)
            .and_where(Expr::col(FederationRevision::Id).eq(REVISION_ROW))
            .to_owned();
        match self
            .db
            .conn
            .query_one(&select)
            .await
            .map_err(|e| self.db.error("read federation revision", &e))?
        {
            Some(row) => get(&self.db, &row, "revision"),
            None => Ok(0),
        }
    }
}
