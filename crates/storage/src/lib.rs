//! causerie-storage owns everything the server keeps on disk: one store trait per feature
//! ([`UserStore`] now; rosters, offline messages, the archive, policy, evidence and audit records
//! next), a sea-orm backend for SQLite and PostgreSQL with explicit, ordered migrations, an
//! in-memory backend with the same behaviour for unit tests, and one conformance suite
//! ([`conformance`]) that every backend must pass.
//!
//! It knows nothing of the protocol: names arrive already prepared (RFC 7622 §3.2.1, §3.3.1)
//! and credentials arrive already derived (the SCRAM verifier of RFC 5802 §3); it never sees a
//! password, and its error messages never carry one, nor the password of a connection string.
//!
//! Layout: a feature is one folder (`users/`: the trait and its types in `mod.rs`, then
//! `memory.rs`, `sql.rs` and `conformance.rs`), one migration (`migrations/m0001_users.rs`) and
//! one field of [`Storage`].

use std::sync::Arc;

mod error;
mod migrations;
mod sql;
pub mod users;

pub use error::StoreError;
pub use users::{NewUser, StoredCredential, UserInfo, UserStore};

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
        Storage {
            users: Arc::new(users::memory::MemoryUserStore::default()),
            backend: Backend::Memory,
        }
    }

    fn from_sql(db: sql::SqlDb) -> Storage {
        Storage {
            users: Arc::new(users::sql::SqlUserStore::new(db.clone())),
            backend: Backend::Sql(db),
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

/// The behaviour every backend must show, as checks runnable against any [`Storage`].
///
/// Each check creates its own accounts under fresh, unique domain names, so the suite can run
/// repeatedly, and concurrently, against a shared database.
pub mod conformance {
    pub use crate::users::conformance as users;

    use crate::Storage;

    /// Runs every check; on failure the error lists each failed check with its reason.
    pub async fn run_all(storage: &Storage) -> Result<(), String> {
        let failures = users::run_all(storage).await;
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
