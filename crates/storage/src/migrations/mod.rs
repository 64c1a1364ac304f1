//! The schema, as explicit migrations applied in order.
//!
//! Each migration is frozen once released: it names its tables and columns with its own
//! identifiers, never with the ones the stores use, so that later changes to a store cannot
//! rewrite history. A new store adds one file here (`m000N_name.rs`) and one line to
//! [`Migrator::migrations`]. Every migration uses the schema builder only, so the same code
//! produces SQLite and PostgreSQL DDL; where the two must differ (collation) it asks the
//! backend.
//!
//! Tables holding per-user data reference `users.id` with `ON DELETE CASCADE`, so removing an
//! account removes everything stored for it in the same statement. Policy acceptance receipts
//! (`m0004_policy`) and compliance evidence (`m0005_evidence`) are the exception: they are
//! evidence and outlive the account. `m0006_review_lock` adds columns to existing tables: the
//! review of quarantined messages carried out, and account locks. `m0007_groups` adds shared
//! roster groups, server-wide records whose members are addresses, not accounts.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m0001_users;
mod m0002_im;
mod m0003_federation_audit;
mod m0004_policy;
mod m0005_evidence;
mod m0006_review_lock;
mod m0007_groups;

pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_users::Migration),
            Box::new(m0002_im::Migration),
            Box::new(m0003_federation_audit::Migration),
            Box::new(m0004_policy::Migration),
            Box::new(m0005_evidence::Migration),
            Box::new(m0006_review_lock::Migration),
            Box::new(m0007_groups::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_ordered() {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "migrations must be listed in name order");
        for (i, name) in names.iter().enumerate() {
            assert!(
                name.starts_with(&format!("m{:04}_", i + 1)),
                "{name} is not numbered {}",
                i + 1
            );
        }
    }
}
