//! The review of quarantined messages carried out, and account locks.
//!
//! - `evidence` gains `held_stanza` (the quarantined message as received, kept apart from the
//!   payload, which may be sealed, so that the server can deliver it once released; emptied
//!   once the decision is carried out), `review_reason` (why the reviewer decided) and
//!   `handled_at` (when the server delivered the released message or told the sender of the
//!   rejection). Decisions taken before this migration are marked carried out at their
//!   decision time: nothing was held for them, so there is nothing left to deliver.
//! - `users` gains a lock: `locked_at` (`NULL` for an account that is not locked),
//!   `locked_until` (`NULL` for a lock that holds until lifted), `lock_reason` and `locked_by`.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_review_lock"
    }
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Review,
    ReviewedAt,
    HeldStanza,
    ReviewReason,
    HandledAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    LockedAt,
    LockedUntil,
    LockReason,
    LockedBy,
}

fn nullable_text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}

fn nullable_integer(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

/// One column added to `table`: SQLite adds one per statement.
async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: ColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            Evidence::Table,
            nullable_text(Evidence::HeldStanza),
        )
        .await?;
        add(
            manager,
            Evidence::Table,
            nullable_text(Evidence::ReviewReason),
        )
        .await?;
        add(
            manager,
            Evidence::Table,
            nullable_integer(Evidence::HandledAt),
        )
        .await?;
        manager
            .execute(
                Query::update()
                    .table(Evidence::Table)
                    .value(Evidence::HandledAt, Expr::col(Evidence::ReviewedAt))
                    .and_where(Expr::col(Evidence::Review).is_in(["released", "rejected"]))
                    .to_owned(),
            )
            .await?;
        // The decisions the server has yet to carry out: a few rows among all the decided ones.
        manager
            .create_index(
                Index::create()
                    .name("evidence_review_handled")
                    .table(Evidence::Table)
                    .col(Evidence::Review)
                    .col(Evidence::HandledAt)
                    .to_owned(),
            )
            .await?;
        add(manager, Users::Table, nullable_integer(Users::LockedAt)).await?;
        add(manager, Users::Table, nullable_integer(Users::LockedUntil)).await?;
        add(manager, Users::Table, nullable_text(Users::LockReason)).await?;
        add(manager, Users::Table, nullable_text(Users::LockedBy)).await
    }
}
