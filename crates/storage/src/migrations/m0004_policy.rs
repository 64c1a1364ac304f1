//! Usage policies: the published versions with their categories, and the chain of acceptance
//! receipts. Receipts reference no account: they are evidence, and outlive the account.

use sea_orm::{DbBackend, DeriveIden};
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_policy"
    }
}

#[derive(DeriveIden)]
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

#[derive(DeriveIden)]
enum PolicyCategories {
    Table,
    Seq,
    Position,
    Category,
}

#[derive(DeriveIden)]
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

/// A text column compared byte by byte (see `m0001_users`): hashes, domains and usernames are
/// looked up by equality, which must not depend on the PostgreSQL server's locale.
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

fn integer(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The seq is handed out by the store (last + 1 under its lock), not by a sequence: a
        // sequence would leave gaps where a publication was refused.
        manager
            .create_table(
                Table::create()
                    .table(PolicyVersions::Table)
                    .col(integer(PolicyVersions::Seq).primary_key())
                    .col(exact_text(manager, PolicyVersions::Hash, false))
                    .col(exact_text(manager, PolicyVersions::Domain, true))
                    .col(plain_text(PolicyVersions::Title))
                    .col(plain_text(PolicyVersions::Text))
                    .col(plain_text(PolicyVersions::Format))
                    .col(integer(PolicyVersions::EffectiveAt))
                    .col(integer(PolicyVersions::PublishedAt))
                    .col(plain_text(PolicyVersions::PublishedBy))
                    .to_owned(),
            )
            .await?;
        // One file per domain scope. Both engines treat NULLs as distinct in a unique index, so
        // the scope of every domain (NULL) is checked by the store under its lock; the index
        // also serves the lookup by hash.
        manager
            .create_index(
                Index::create()
                    .name("policy_versions_hash_domain")
                    .table(PolicyVersions::Table)
                    .col(PolicyVersions::Hash)
                    .col(PolicyVersions::Domain)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PolicyCategories::Table)
                    .col(integer(PolicyCategories::Seq))
                    .col(integer(PolicyCategories::Position))
                    .col(plain_text(PolicyCategories::Category))
                    .primary_key(
                        Index::create()
                            .col(PolicyCategories::Seq)
                            .col(PolicyCategories::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("policy_categories_version")
                            .from(PolicyCategories::Table, PolicyCategories::Seq)
                            .to(PolicyVersions::Table, PolicyVersions::Seq)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The seq is the chain position, chosen by the caller; the primary key lets only one
        // receipt take each position.
        manager
            .create_table(
                Table::create()
                    .table(PolicyReceipts::Table)
                    .col(integer(PolicyReceipts::Seq).primary_key())
                    .col(exact_text(manager, PolicyReceipts::Username, false))
                    .col(exact_text(manager, PolicyReceipts::Domain, false))
                    .col(plain_text(PolicyReceipts::Resource))
                    .col(exact_text(manager, PolicyReceipts::PolicyHash, false))
                    .col(plain_text(PolicyReceipts::Method))
                    .col(integer(PolicyReceipts::AcceptedAt))
                    .col(ColumnDef::new(PolicyReceipts::RemoteAddr).text().null())
                    .col(ColumnDef::new(PolicyReceipts::Client).text().null())
                    .col(plain_text(PolicyReceipts::PrevHash))
                    .col(plain_text(PolicyReceipts::Hash))
                    .col(plain_text(PolicyReceipts::Signature))
                    .to_owned(),
            )
            .await?;
        // An account's receipts (listing, latest acceptance).
        manager
            .create_index(
                Index::create()
                    .name("policy_receipts_account")
                    .table(PolicyReceipts::Table)
                    .col(PolicyReceipts::Username)
                    .col(PolicyReceipts::Domain)
                    .to_owned(),
            )
            .await?;
        // Who accepted a given version.
        manager
            .create_index(
                Index::create()
                    .name("policy_receipts_policy_hash")
                    .table(PolicyReceipts::Table)
                    .col(PolicyReceipts::PolicyHash)
                    .to_owned(),
            )
            .await
    }
}
