//! Compliance evidence: the chain of records of messages that matched a rule. Records reference
//! no account: they are evidence, and outlive the account.

use sea_orm::{DbBackend, DeriveIden};
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_evidence"
    }
}

#[derive(DeriveIden)]
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
}

/// A text column compared byte by byte (see `m0001_users`): names, rule ids and review states
/// are looked up by equality, which must not depend on the PostgreSQL server's locale.
fn exact_text(manager: &SchemaManager, name: impl IntoIden, nullable: bool) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    col.text();
    if nullable {
        col.null();
    } else {
        col.not_null();
    }
    if manager.get_database_backend() == DbBackend::Postgres {
        col.extra("COLLATE \"C\"");
    }
    col
}

fn plain_text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

fn nullable_text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}

fn integer(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

fn nullable_integer(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

fn flag(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The seq is the chain position, chosen by the caller; the primary key lets only one
        // record take each position. The payload is nullable: retention empties it and keeps
        // the row.
        manager
            .create_table(
                Table::create()
                    .table(Evidence::Table)
                    .col(integer(Evidence::Seq).primary_key())
                    .col(integer(Evidence::CreatedAt))
                    .col(exact_text(manager, Evidence::RuleId, false))
                    .col(plain_text(Evidence::Category))
                    .col(plain_text(Evidence::Actions))
                    .col(exact_text(manager, Evidence::Username, false))
                    .col(exact_text(manager, Evidence::Domain, false))
                    .col(plain_text(Evidence::Resource))
                    .col(plain_text(Evidence::Peer))
                    .col(plain_text(Evidence::Direction))
                    .col(nullable_text(Evidence::RemoteAddr))
                    .col(nullable_text(Evidence::Client))
                    .col(flag(Evidence::Sealed))
                    .col(nullable_text(Evidence::Payload))
                    .col(plain_text(Evidence::PayloadHash))
                    .col(plain_text(Evidence::PrevHash))
                    .col(plain_text(Evidence::Hash))
                    .col(plain_text(Evidence::Signature))
                    .col(nullable_integer(Evidence::PurgedAt))
                    .col(flag(Evidence::LegalHold))
                    .col(exact_text(manager, Evidence::Review, true))
                    .col(nullable_text(Evidence::ReviewedBy))
                    .col(nullable_integer(Evidence::ReviewedAt))
                    .to_owned(),
            )
            .await?;
        // An account's records.
        manager
            .create_index(
                Index::create()
                    .name("evidence_account")
                    .table(Evidence::Table)
                    .col(Evidence::Username)
                    .col(Evidence::Domain)
                    .to_owned(),
            )
            .await?;
        // Time ranges, and the records a retention purge looks at.
        manager
            .create_index(
                Index::create()
                    .name("evidence_created_at")
                    .table(Evidence::Table)
                    .col(Evidence::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // The queue of quarantined messages waiting for a reviewer.
        manager
            .create_index(
                Index::create()
                    .name("evidence_review")
                    .table(Evidence::Table)
                    .col(Evidence::Review)
                    .to_owned(),
            )
            .await
    }
}
