//! Shared roster groups: `shared_groups` (one row per group, its name unique) and
//! `shared_group_members` (one row per membership). Members are JIDs, local or not, so they do
//! not reference `users`: a membership is the administrator's record and outlives the account.

use sea_orm::{DbBackend, DeriveIden};
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_groups"
    }
}

#[derive(DeriveIden)]
enum SharedGroups {
    Table,
    Id,
    Name,
    DisplayName,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SharedGroupMembers {
    Table,
    GroupId,
    Member,
}

/// A text column compared byte by byte (see `m0001_users`): names and JIDs are keys, and their
/// order must not depend on the PostgreSQL server's locale.
fn exact_text(manager: &SchemaManager, name: impl IntoIden) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    col.text().not_null();
    if manager.get_database_backend() == DbBackend::Postgres {
        col.extra("COLLATE \"C\"");
    }
    col
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SharedGroups::Table)
                    .col(
                        ColumnDef::new(SharedGroups::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(exact_text(manager, SharedGroups::Name))
                    .col(ColumnDef::new(SharedGroups::DisplayName).text().null())
                    .col(ColumnDef::new(SharedGroups::Description).text().null())
                    .col(
                        ColumnDef::new(SharedGroups::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("shared_groups_name")
                    .table(SharedGroups::Table)
                    .col(SharedGroups::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SharedGroupMembers::Table)
                    .col(
                        ColumnDef::new(SharedGroupMembers::GroupId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(exact_text(manager, SharedGroupMembers::Member))
                    .primary_key(
                        Index::create()
                            .col(SharedGroupMembers::GroupId)
                            .col(SharedGroupMembers::Member),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("shared_group_members_group")
                            .from(SharedGroupMembers::Table, SharedGroupMembers::GroupId)
                            .to(SharedGroups::Table, SharedGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}
