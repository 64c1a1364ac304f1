//! Accounts and their SCRAM credentials.

use sea_orm::{DbBackend, DeriveIden};
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_users"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Domain,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserCredentials {
    Table,
    UserId,
    Hash,
    Salt,
    Iterations,
    StoredKey,
    ServerKey,
}

/// A text column compared byte by byte. SQLite's default collation (BINARY) already does that;
/// PostgreSQL's default follows the database locale, which would make the listing order and
/// the meaning of the unique key depend on how the server was installed.
fn name_column(manager: &SchemaManager, name: impl IntoIden) -> ColumnDef {
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
                    .table(Users::Table)
                    // AUTOINCREMENT on SQLite: an id is never reused, so nothing keyed by a
                    // removed account's id can ever point at a new account.
                    .col(
                        ColumnDef::new(Users::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(name_column(manager, Users::Username))
                    .col(name_column(manager, Users::Domain))
                    .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // Domain first: it serves both the account lookup and the per-domain listing.
        manager
            .create_index(
                Index::create()
                    .name("users_domain_username")
                    .table(Users::Table)
                    .col(Users::Domain)
                    .col(Users::Username)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserCredentials::Table)
                    .col(
                        ColumnDef::new(UserCredentials::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(UserCredentials::Hash).text().not_null())
                    .col(ColumnDef::new(UserCredentials::Salt).blob().not_null())
                    // u32 iteration counts do not fit a signed 32-bit column.
                    .col(
                        ColumnDef::new(UserCredentials::Iterations)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(UserCredentials::StoredKey).blob().not_null())
                    .col(ColumnDef::new(UserCredentials::ServerKey).blob().not_null())
                    .primary_key(
                        Index::create()
                            .col(UserCredentials::UserId)
                            .col(UserCredentials::Hash),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("user_credentials_user")
                            .from(UserCredentials::Table, UserCredentials::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}
