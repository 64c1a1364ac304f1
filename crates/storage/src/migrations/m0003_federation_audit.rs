//! Server-wide records: the federation partner list with its revision counter, and the
//! append-only audit log.

use sea_orm::{DbBackend, DeriveIden};
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_federation_audit"
    }
}

#[derive(DeriveIden)]
enum FederationPartners {
    Table,
    Domain,
    Rule,
    Note,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FederationRevision {
    Table,
    Id,
    Revision,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    Action,
    Subject,
    Outcome,
    Detail,
    RemoteAddr,
}

/// A text column compared byte by byte (see `m0001_users`): domains are a key, actions are
/// matched by prefix range and subjects by equality, and neither must depend on the PostgreSQL
/// server's locale.
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
                    .table(FederationPartners::Table)
                    .col(exact_text(manager, FederationPartners::Domain))
                    .col(ColumnDef::new(FederationPartners::Rule).text().not_null())
                    .col(ColumnDef::new(FederationPartners::Note).text().null())
                    .col(
                        ColumnDef::new(FederationPartners::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(FederationPartners::Domain))
                    .to_owned(),
            )
            .await?;
        // One row (id 1), created by the first change; no row reads as revision 0. Every
        // change of the partner list moves it forward in the same transaction.
        manager
            .create_table(
                Table::create()
                    .table(FederationRevision::Table)
                    .col(
                        ColumnDef::new(FederationRevision::Id)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(FederationRevision::Revision)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Append order is the id (AUTOINCREMENT on SQLite: never reused).
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditEvents::At).big_integer().not_null())
                    .col(ColumnDef::new(AuditEvents::Actor).text().not_null())
                    .col(exact_text(manager, AuditEvents::Action))
                    .col(exact_text(manager, AuditEvents::Subject))
                    .col(ColumnDef::new(AuditEvents::Outcome).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Detail).text().not_null())
                    .col(ColumnDef::new(AuditEvents::RemoteAddr).text().null())
                    .to_owned(),
            )
            .await?;
        // Listing by action prefix (`s2s.`) over a time range.
        manager
            .create_index(
                Index::create()
                    .name("audit_events_action_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Action)
                    .col(AuditEvents::At)
                    .to_owned(),
            )
            .await?;
        // Everything about one domain or JID.
        manager
            .create_index(
                Index::create()
                    .name("audit_events_subject")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Subject)
                    .to_owned(),
            )
            .await
    }
}
