//! causerie-storage owns everything the server keeps on disk: one store trait per feature, a
//! sea-orm backend for SQLite and PostgreSQL with explicit, ordered migrations, an in-memory
//! backend with the same behaviour for unit tests, and one conformance suite ([`conformance`])
//! that every backend must pass. The stores:
//!
//! - [`UserStore`]: accounts, their SCRAM credentials (RFC 5802 §3) and their locks;
//! - [`RosterStore`]: rosters (RFC 6121 §2) with their versions (§2.6) and the inbound
//!   subscription requests still waiting for an answer (§3.1.3);
//! - [`OfflineStore`]: messages kept for accounts without an available resource (XEP-0160),
//!   in arrival order, under a per-account quota;
//! - [`AccountDataStore`]: small per-account documents by key: the vCard (XEP-0054), private
//!   XML (XEP-0049), the last logout (XEP-0012);
//! - [`BlockingStore`]: blocklists (XEP-0191);
//! - [`FederationStore`]: the federation partner list (which remote domains may talk to this
//!   server, RFC 6120 §13.1) with a revision that a running server polls to reload it;
//! - [`AuditStore`]: the append-only audit log of administrative actions and server-to-server
//!   stream decisions;
//! - [`PolicyStore`]: the published versions of the usage policy, kept forever, and the hash
//!   chain of the receipts of their acceptance, which outlive the accounts that gave them;
//! - [`EvidenceStore`]: the hash chain of compliance evidence (the messages that matched a
//!   rule), with legal holds, the review of quarantined messages, and retention that purges
//!   payloads but never a record;
//! - [`GroupStore`]: shared roster groups, whose members see each other in their rosters;
//! - [`TransferStore`]: whole accounts in and out at once (an import of many accounts in one
//!   transaction, an export read in one snapshot), for moving between servers.
//!
//! The archive comes next.
//!
//! It knows nothing of the protocol: names and JIDs arrive already prepared (RFC 7622 §3.2.1,
//! §3.3.1), stanzas arrive serialized and leave as they came, and credentials arrive already
//! derived; it never sees a password, and its error messages never carry one, nor the password
//! of a connection string.
//!
//! Every per-account record belongs to an account: writes for an account that does not exist
//! fail with [`StoreError::NotFound`], and removing an account removes everything stored for
//! it (`ON DELETE CASCADE` on the SQL backends, one shared state on the in-memory one).
//!
//! Layout: a feature is one folder (`roster/`: the trait and its types in `mod.rs`, then
//! `memory.rs`, `sql.rs` and `conformance.rs`), its tables in a migration
//! (`migrations/m0001_users.rs`, `migrations/m0002_im.rs` for the four instant-messaging
//! stores, `migrations/m0003_federation_audit.rs` for the server-wide records,
//! `migrations/m0004_policy.rs` for policies and receipts, `migrations/m0005_evidence.rs` for
//! compliance evidence, `migrations/m0006_review_lock.rs` for the review of quarantined
//! messages and account locks, `migrations/m0007_groups.rs` for shared roster groups) and one
//! field of [`Storage`].

use std::sync::Arc;

/// In the conformance checks: ends the check with a message unless the condition holds.
/// Defined before the modules so that every feature's `conformance.rs` can use it.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

pub mod account_data;
pub mod audit;
pub mod blocking;
mod error;
pub mod evidence;
pub mod federation;
pub mod groups;
mod memory;
mod metrics;
mod migrations;
pub mod offline;
pub mod policy;
pub mod roster;
mod sql;
pub mod transfer;
pub mod users;
mod validate;

pub use account_data::AccountDataStore;
pub use audit::{AuditEvent, AuditFilter, AuditStore, NewAuditEvent};
pub use blocking::BlockingStore;
pub use error::StoreError;
pub use evidence::{EvidenceFilter, EvidenceStore, NewEvidence, StoredEvidence};
pub use federation::{FederationStore, Partner, PartnerRule};
pub use groups::{GroupStore, NewGroup, SharedGroup};
pub use offline::{OfflineMessage, OfflineStore};
pub use policy::{
    NewPolicyVersion, NewReceipt, PolicyStore, PolicyVersion, ReceiptFilter, StoredReceipt,
};
pub use roster::{PendingSubscription, RosterItem, RosterStore, Subscription};
pub use transfer::{
    AccountRecord, ExistingAccounts, ImportOutcome, TransferStore, TransferredMessage,
};
pub use users::{AccountLock, LockChange, NewUser, StoredCredential, UserInfo, UserStore};

/// Upper bound on a JID the stores accept (a roster contact, a blocked JID): RFC 7622 §3.2,
/// §3.3 and §3.4 allow 1023 bytes for each of the three parts, plus the `@` and the `/`.
pub const MAX_JID_BYTES: usize = 3 * 1023 + 2;

/// Pool settings for the SQL backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// Most connections the pool opens (at least 1 is used).
    pub max_connections: u32,
    /// How long to wait for a connection, in seconds (at least 1 is used). On SQLite it is also
    /// how long a writer waits for another connection's (or process's) write lock.
    pub connect_timeout_secs: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            max_connections: 16,
            connect_timeout_secs: 10,
        }
    }
}

#[derive(Clone)]
enum Backend {
    Memory,
    Sql(sql::SqlDb),
}

/// Handles to every store of one database. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct Storage {
    pub users: Arc<dyn UserStore>,
    pub roster: Arc<dyn RosterStore>,
    pub offline: Arc<dyn OfflineStore>,
    pub account_data: Arc<dyn AccountDataStore>,
    pub blocking: Arc<dyn BlockingStore>,
    pub federation: Arc<dyn FederationStore>,
    pub audit: Arc<dyn AuditStore>,
    pub policy: Arc<dyn PolicyStore>,
    pub evidence: Arc<dyn EvidenceStore>,
    pub transfer: Arc<dyn TransferStore>,
    pub groups: Arc<dyn GroupStore>,
    backend: Backend,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens the database at `url` and applies pending migrations.
    ///
    /// - `sqlite:PATH` or `sqlite://PATH` (relative to the working folder; `sqlite:///abs/path`
    ///   for an absolute one). The file is created when missing unless the URL says otherwise
    ///   (`?mode=rw`, `?mode=ro`); its folder must exist. Opened with WAL journaling,
    ///   `synchronous=NORMAL`, foreign keys enforced and a busy timeout, so the server and the
    ///   command-line tool can use the same file at once.
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, with the usual libpq-style query
    ///   parameters (`sslmode`, …). A schema other than `public` is chosen with
    ///   `?options[search_path]=NAME`.
    pub async fn open(url: &str, options: &StorageOptions) -> Result<Storage, StoreError> {
        let (db, _applied) = sql::open(url, options).await?;
        Ok(Storage::from_sql(db))
    }

    /// A fresh, empty in-memory backend with the same behaviour as the SQL ones.
    pub fn memory() -> Storage {
        // One shared state, as one database: the stores see the same accounts, and removing an
        // account removes what every store kept for it.
        let db = Arc::new(memory::MemoryDb::default());
        Storage {
            users: Arc::new(users::memory::MemoryUserStore::new(db.clone())),
            roster: Arc::new(roster::memory::MemoryRosterStore::new(db.clone())),
            offline: Arc::new(offline::memory::MemoryOfflineStore::new(db.clone())),
            account_data: Arc::new(account_data::memory::MemoryAccountDataStore::new(
                db.clone(),
            )),
            blocking: Arc::new(blocking::memory::MemoryBlockingStore::new(db.clone())),
            federation: Arc::new(federation::memory::MemoryFederationStore::new(db.clone())),
            audit: Arc::new(audit::memory::MemoryAuditStore::new(db.clone())),
            policy: Arc::new(policy::memory::MemoryPolicyStore::new(db.clone())),
            evidence: Arc::new(evidence::memory::MemoryEvidenceStore::new(db.clone())),
            transfer: Arc::new(transfer::memory::MemoryTransferStore::new(db.clone())),
            groups: Arc::new(groups::memory::MemoryGroupStore::new(db)),
            backend: Backend::Memory,
        }
    }

    fn from_sql(db: sql::SqlDb) -> Storage {
        Storage {
            users: Arc::new(users::sql::SqlUserStore::new(db.clone())),
            roster: Arc::new(roster::sql::SqlRosterStore::new(db.clone())),
            offline: Arc::new(offline::sql::SqlOfflineStore::new(db.clone())),
            account_data: Arc::new(account_data::sql::SqlAccountDataStore::new(db.clone())),
            blocking: Arc::new(blocking::sql::SqlBlockingStore::new(db.clone())),
            federation: Arc::new(federation::sql::SqlFederationStore::new(db.clone())),
            audit: Arc::new(audit::sql::SqlAuditStore::new(db.clone())),
            policy: Arc::new(policy::sql::SqlPolicyStore::new(db.clone())),
            evidence: Arc::new(evidence::sql::SqlEvidenceStore::new(db.clone())),
            transfer: Arc::new(transfer::sql::SqlTransferStore::new(db.clone())),
            groups: Arc::new(groups::sql::SqlGroupStore::new(db.clone())),
            backend: Backend::Sql(db),
        }
    }

    /// Whether the database answers now: one round trip on a pooled connection (the in-memory
    /// backend always answers). Health checks call it; give it a timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory => Ok(()),
            Backend::Sql(db) => db.conn.ping().await.map_err(|e| db.error("ping", &e)),
        }
    }

    /// `"sqlite"`, `"postgres"` or `"memory"`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Memory => "memory",
            Backend::Sql(db) => db.kind.name(),
        }
    }

    /// Closes the pool (every clone of this handle shares it): waits for connections in use to
    /// be returned, then closes them; later calls on any store fail with
    /// [`StoreError::Backend`]. Nothing to do for the in-memory backend.
    pub async fn close(&self) {
        if let Backend::Sql(db) = &self.backend {
            sql::close(db).await;
        }
    }
}

/// Applies pending migrations to the database at `url` (same URL forms as [`Storage::open`])
/// and returns the names of the migrations applied now, in order; empty when the schema was
/// already current.
pub async fn migrate(url: &str) -> Result<Vec<String>, StoreError> {
    let options = StorageOptions {
        max_connections: 1,
        ..StorageOptions::default()
    };
    let (db, applied) = sql::open(url, &options).await?;
    sql::close(&db).await;
    Ok(applied)
}

/// A database's schema as this version of Causerie sees it, read without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// The migrations recorded as applied, in order.
    pub applied: Vec<String>,
    /// The migrations this version has and the database lacks; the server applies them when it
    /// starts.
    pub pending: Vec<String>,
    /// Applied migrations this version does not know: a newer version used the database.
    pub unknown: Vec<String>,
    /// The name of the newest migration this version has.
    pub latest: String,
}

/// Connects to the database at `url` (same URL forms as [`Storage::open`]), checks that it
/// answers, and reads which migrations it has, applying none. Unlike [`Storage::open`] it never
/// creates an SQLite file: a missing one is an error.
pub async fn schema_status(
    url: &str,
    options: &StorageOptions,
) -> Result<SchemaStatus, StoreError> {
    sql::schema_status(url, options).await
}

/// The behaviour every backend must show, as checks runnable against any [`Storage`].
///
/// Each check creates its own accounts under fresh, unique domain names, so the suite can run
/// repeatedly, and concurrently, against a shared database.
pub mod conformance {
    pub use crate::account_data::conformance as account_data;
    pub use crate::audit::conformance as audit;
    pub use crate::blocking::conformance as blocking;
    pub use crate::evidence::conformance as evidence;
    pub use crate::federation::conformance as federation;
    pub use crate::groups::conformance as groups;
    pub use crate::offline::conformance as offline;
    pub use crate::policy::conformance as policy;
    pub use crate::roster::conformance as roster;
    pub use crate::transfer::conformance as transfer;
    pub use crate::users::conformance as users;

    use crate::{NewUser, Storage, StoreError};

    /// Runs every check; on failure the error lists each failed check with its reason.
    pub async fn run_all(storage: &Storage) -> Result<(), String> {
        let mut failures = users::run_all(storage).await;
        failures.extend(roster::run_all(storage).await);
        failures.extend(offline::run_all(storage).await);
        failures.extend(account_data::run_all(storage).await);
        failures.extend(blocking::run_all(storage).await);
        failures.extend(federation::run_all(storage).await);
        failures.extend(audit::run_all(storage).await);
        failures.extend(policy::run_all(storage).await);
        failures.extend(evidence::run_all(storage).await);
        failures.extend(transfer::run_all(storage).await);
        failures.extend(groups::run_all(storage).await);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} conformance check(s) failed on {}:\n  {}",
                failures.len(),
                storage.backend(),
                failures.join("\n  ")
            ))
        }
    }

    /// A store call that must succeed.
    pub(crate) fn ok<T>(what: &str, result: Result<T, StoreError>) -> Result<T, String> {
        result.map_err(|e| format!("{what} failed: {e}"))
    }

    pub(crate) fn not_found<T: std::fmt::Debug>(
        what: &str,
        result: Result<T, StoreError>,
    ) -> Result<(), String> {
        match result {
            Err(StoreError::NotFound(_)) => Ok(()),
            other => Err(format!("{what}: expected NotFound, got {other:?}")),
        }
    }

    pub(crate) fn invalid_input<T: std::fmt::Debug>(
        what: &str,
        result: Result<T, StoreError>,
    ) -> Result<(), String> {
        match result {
            Err(StoreError::InvalidInput(_)) => Ok(()),
            other => Err(format!("{what}: expected InvalidInput, got {other:?}")),
        }
    }

    /// Creates an account without credentials.
    pub(crate) async fn create_account(
        storage: &Storage,
        username: &str,
        domain: &str,
    ) -> Result<(), String> {
        ok(
            "create_user",
            storage
                .users
                .create_user(&NewUser {
                    username: username.to_owned(),
                    domain: domain.to_owned(),
                    credentials: Vec::new(),
                })
                .await,
        )
    }

    /// A domain name no other check, run or process has used.
    pub(crate) fn unique_domain(tag: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            "{tag}-{}-{nanos:x}-{n}.conformance.test",
            std::process::id()
        )
    }
}
