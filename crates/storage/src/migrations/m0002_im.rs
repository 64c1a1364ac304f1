//! What instant messaging keeps per account: rosters with their versions and pending inbound
//! subscription requests (RFC 6121), offline messages (XEP-0160), small documents by key
//! (vCard, private XML, last activity) and blocklists (XEP-0191).

use sea_orm::{DbBackend, DeriveIden};
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_im"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum RosterItems {
    Table,
    UserId,
    Contact,
    Name,
    Subscription,
    PendingOut,
    PendingIn,
    Approved,
}

#[derive(DeriveIden)]
enum RosterGroups {
    Table,
    UserId,
    Contact,
    Position,
    Name,
}

#[derive(DeriveIden)]
enum RosterVersions {
    Table,
    UserId,
    Version,
}

#[derive(DeriveIden)]
enum RosterPendingIn {
    Table,
    Id,
    UserId,
    Contact,
    Stanza,
}

#[derive(DeriveIden)]
enum OfflineMessages {
    Table,
    Id,
    UserId,
    Stanza,
    StoredAt,
}

#[derive(DeriveIden)]
enum AccountData {
    Table,
    UserId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum Blocklist {
    Table,
    Id,
    UserId,
    Jid,
}

/// A text column compared byte by byte (see `m0001_users`): JIDs and keys are part of unique
/// keys, and their meaning must not depend on the PostgreSQL server's locale.
fn exact_text(manager: &SchemaManager, name: impl IntoIden) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    col.text().not_null();
    if manager.get_database_backend() == DbBackend::Postgres {
        col.extra("COLLATE \"C\"");
    }
    col
}

fn user_id(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

/// An ever-growing key that gives the insertion order. AUTOINCREMENT on SQLite: an id is never
/// reused, so a late removal by id cannot hit a newer row.
fn serial(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

/// The account a row belongs to; removing the account removes the row.
fn owner(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // RFC 6121 §2.1.2: one item per contact; the subscription state of Appendix A is split
        // into the `subscription` attribute and three flags.
        manager
            .create_table(
                Table::create()
                    .table(RosterItems::Table)
                    .col(user_id(RosterItems::UserId))
                    .col(exact_text(manager, RosterItems::Contact))
                    .col(ColumnDef::new(RosterItems::Name).text().null())
                    .col(ColumnDef::new(RosterItems::Subscription).text().not_null())
                    .col(ColumnDef::new(RosterItems::PendingOut).boolean().not_null())
                    .col(ColumnDef::new(RosterItems::PendingIn).boolean().not_null())
                    .col(ColumnDef::new(RosterItems::Approved).boolean().not_null())
                    .primary_key(
                        Index::create()
                            .col(RosterItems::UserId)
                            .col(RosterItems::Contact),
                    )
                    .foreign_key(&mut owner(
                        "roster_items_user",
                        RosterItems::Table,
                        RosterItems::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        // Groups in their own rows, numbered from 0 in the order given, so that any name
        // round-trips with its place. They go with their item and with their account.
        manager
            .create_table(
                Table::create()
                    .table(RosterGroups::Table)
                    .col(user_id(RosterGroups::UserId))
                    .col(exact_text(manager, RosterGroups::Contact))
                    .col(ColumnDef::new(RosterGroups::Position).integer().not_null())
                    .col(ColumnDef::new(RosterGroups::Name).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(RosterGroups::UserId)
                            .col(RosterGroups::Contact)
                            .col(RosterGroups::Position),
                    )
                    .foreign_key(&mut owner(
                        "roster_groups_user",
                        RosterGroups::Table,
                        RosterGroups::UserId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("roster_groups_item")
                            .from(
                                RosterGroups::Table,
                                (RosterGroups::UserId, RosterGroups::Contact),
                            )
                            .to(
                                RosterItems::Table,
                                (RosterItems::UserId, RosterItems::Contact),
                            )
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // RFC 6121 §2.6: one counter per account, created by the first change; no row reads
        // as version 0.
        manager
            .create_table(
                Table::create()
                    .table(RosterVersions::Table)
                    .col(user_id(RosterVersions::UserId).primary_key())
                    .col(
                        ColumnDef::new(RosterVersions::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(&mut owner(
                        "roster_versions_user",
                        RosterVersions::Table,
                        RosterVersions::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        // RFC 6121 §3.1.3: unanswered requests, one per contact, in arrival order (the id).
        manager
            .create_table(
                Table::create()
                    .table(RosterPendingIn::Table)
                    .col(serial(RosterPendingIn::Id))
                    .col(user_id(RosterPendingIn::UserId))
                    .col(exact_text(manager, RosterPendingIn::Contact))
                    .col(ColumnDef::new(RosterPendingIn::Stanza).text().not_null())
                    .foreign_key(&mut owner(
                        "roster_pending_in_user",
                        RosterPendingIn::Table,
                        RosterPendingIn::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("roster_pending_in_user_contact")
                    .table(RosterPendingIn::Table)
                    .col(RosterPendingIn::UserId)
                    .col(RosterPendingIn::Contact)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // XEP-0160: arrival order is the id; (user, id) serves the ordered listing, the count
        // and the cascade.
        manager
            .create_table(
                Table::create()
                    .table(OfflineMessages::Table)
                    .col(serial(OfflineMessages::Id))
                    .col(user_id(OfflineMessages::UserId))
                    .col(ColumnDef::new(OfflineMessages::Stanza).text().not_null())
                    .col(
                        ColumnDef::new(OfflineMessages::StoredAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(&mut owner(
                        "offline_messages_user",
                        OfflineMessages::Table,
                        OfflineMessages::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("offline_messages_user_id")
                    .table(OfflineMessages::Table)
                    .col(OfflineMessages::UserId)
                    .col(OfflineMessages::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountData::Table)
                    .col(user_id(AccountData::UserId))
                    .col(exact_text(manager, AccountData::Key))
                    .col(ColumnDef::new(AccountData::Value).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(AccountData::UserId)
                            .col(AccountData::Key),
                    )
                    .foreign_key(&mut owner(
                        "account_data_user",
                        AccountData::Table,
                        AccountData::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        // XEP-0191: each JID once per account, in the order blocked (the id).
        manager
            .create_table(
                Table::create()
                    .table(Blocklist::Table)
                    .col(serial(Blocklist::Id))
                    .col(user_id(Blocklist::UserId))
                    .col(exact_text(manager, Blocklist::Jid))
                    .foreign_key(&mut owner(
                        "blocklist_user",
                        Blocklist::Table,
                        Blocklist::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("blocklist_user_jid")
                    .table(Blocklist::Table)
                    .col(Blocklist::UserId)
                    .col(Blocklist::Jid)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
