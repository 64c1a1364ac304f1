//! The sea-orm backend: opening SQLite and PostgreSQL pools, running migrations, and the
//! helpers every SQL store shares.

use sea_orm::sea_query::{Expr, LockType, Order, Query, SelectStatement};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, ConnectOptions as _};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, DeriveIden, QueryResult,
    SqliteTransactionMode, TransactionOptions, TransactionTrait, TryGetable,
};
use sea_orm_migration::{MigratorTrait, SchemaManager};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Secrets, redacted_url};
use crate::migrations::Migrator;
use crate::{SchemaStatus, StorageOptions, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlKind {
    Sqlite,
    Postgres,
}

impl SqlKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SqlKind::Sqlite => "sqlite",
            SqlKind::Postgres => "postgres",
        }
    }
}

/// A pool plus what the stores need to report errors without leaking the URL's secrets.
#[derive(Clone)]
pub(crate) struct SqlDb {
    pub(crate) conn: DatabaseConnection,
    pub(crate) kind: SqlKind,
    secrets: Arc<Secrets>,
}

impl SqlDb {
    /// A driver error as a [`StoreError::Backend`] saying what was attempted.
    pub(crate) fn error(&self, action: &str, err: &DbErr) -> StoreError {
        let message = self.secrets.redact(&format!("{action}: {err}"));
        tracing::debug!(backend = self.kind.name(), error = %message, "storage error");
        StoreError::Backend(message)
    }

    /// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock
    /// is taken up front, so a concurrent writer (another pool on the same file, e.g. the
    /// command-line tool next to the server) makes it wait up to the busy timeout instead of
    /// failing at its first write with `SQLITE_BUSY`, which a deferred transaction that has
    /// already read cannot wait out.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        self.conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(|e| self.error("begin transaction", &e))
    }

    /// Commits when `result` is `Ok`, rolls back otherwise.
    pub(crate) async fn finish<T>(
        &self,
        txn: DatabaseTransaction,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(value) => {
                txn.commit()
                    .await
                    .map_err(|e| self.error("commit transaction", &e))?;
                Ok(value)
            }
            Err(err) => {
                if let Err(rollback) = txn.rollback().await {
                    // The original error is the one worth returning; the connection is
                    // discarded by the pool when its rollback failed.
                    tracing::warn!(
                        backend = self.kind.name(),
                        error = %self.secrets.redact(&rollback.to_string()),
                        "rollback failed"
                    );
                }
                Err(err)
            }
        }
    }
}

/// The columns of `users` that the per-account stores use to find an account.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Users {
    Table,
    Id,
    Username,
    Domain,
}

/// `SELECT id FROM users WHERE domain = ? AND username = ?`, one lookup in the unique
/// `(domain, username)` index; usable as a subquery.
pub(crate) fn account_id_query(username: &str, domain: &str) -> SelectStatement {
    // Imported here only: at module level its `max`/`min` would shadow `Ord`'s.
    use sea_orm::sea_query::ExprTrait;
    Query::select()
        .column((Users::Table, Users::Id))
        .from(Users::Table)
        .and_where(Expr::col((Users::Table, Users::Domain)).eq(domain))
        .and_where(Expr::col((Users::Table, Users::Username)).eq(username))
        .to_owned()
}

/// One column of a result row, as a [`StoreError::Backend`] naming the column on failure.
pub(crate) fn get<T: TryGetable>(
    db: &SqlDb,
    row: &QueryResult,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get("", column)
        .map_err(|e| db.error(&format!("read column {column}"), &e))
}

/// Whether a lookup value can be in the database at all. Every store refuses U+0000 on write
/// (PostgreSQL `text` cannot hold it), so a lookup by such a value finds nothing without asking;
/// asking PostgreSQL would fail with an encoding error instead.
pub(crate) fn storable(value: &str) -> bool {
    !value.contains('\0')
}

/// A count or a stored number that the schema keeps signed, as the unsigned value the stores
/// hand out (negative values cannot be written and read as 0).
pub(crate) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A limit handed to SQL: the drivers bind signed 64-bit integers.
pub(crate) fn sql_limit(limit: u64) -> u64 {
    limit.min(i64::MAX.unsigned_abs())
}

impl SqlDb {
    /// The id of the account a write goes to, read inside `conn` (usually the write
    /// transaction); [`StoreError::NotFound`] when there is none.
    ///
    /// With `lock`, PostgreSQL locks the account row `FOR NO KEY UPDATE` until the transaction
    /// ends: writers of one account's data queue behind each other (what a quota check or a
    /// version bump needs), the account cannot be removed halfway, and inserts elsewhere that
    /// only check the foreign key (`FOR KEY SHARE`) are not held up. SQLite needs no row lock:
    /// [`begin_write`](SqlDb::begin_write) already serializes writers.
    pub(crate) async fn account_id(
        &self,
        conn: &impl ConnectionTrait,
        username: &str,
        domain: &str,
        lock: bool,
    ) -> Result<i64, StoreError> {
        let mut select = account_id_query(username, domain);
        if lock {
            select.lock(LockType::NoKeyUpdate);
        }
        match conn
            .query_one(&select)
            .await
            .map_err(|e| self.error("find account", &e))?
        {
            Some(row) => get(self, &row, "id"),
            None => Err(StoreError::NotFound(crate::users::account(
                username, domain,
            ))),
        }
    }

    /// Whether the account exists: tells a removal that matched nothing on an existing account
    /// (`Ok(false)`, `Ok(None)`) from one on a missing account (`NotFound`).
    pub(crate) async fn require_account(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<(), StoreError> {
        self.account_id(&self.conn, username, domain, false)
            .await
            .map(|_| ())
    }
}

/// Opens the pool for `url` and applies pending migrations; returns the pool and the names of
/// the migrations applied now.
pub(crate) async fn open(
    url: &str,
    options: &StorageOptions,
) -> Result<(SqlDb, Vec<String>), StoreError> {
    let secrets = Arc::new(Secrets::from_url(url));
    let (mut conn, kind) = match classify(url)? {
        SqlKind::Sqlite => (open_sqlite(url, options, true).await?, SqlKind::Sqlite),
        SqlKind::Postgres => (
            open_postgres(url, options, &secrets).await?,
            SqlKind::Postgres,
        ),
    };
    conn.set_metric_callback(crate::metrics::statement);
    let db = SqlDb {
        conn,
        kind,
        secrets,
    };
    match run_migrations(&db).await {
        Ok(applied) => Ok((db, applied)),
        Err(err) => {
            close(&db).await;
            Err(err)
        }
    }
}

/// sea-orm-migration's table of applied migrations, under the default name [`Migrator`] keeps.
#[derive(DeriveIden)]
enum SeaqlMigrations {
    Table,
    Version,
}

/// Connects without migrating (and without creating an SQLite file), then compares the
/// migrations the database records with this version's.
pub(crate) async fn schema_status(
    url: &str,
    options: &StorageOptions,
) -> Result<SchemaStatus, StoreError> {
    let secrets = Arc::new(Secrets::from_url(url));
    let (conn, kind) = match classify(url)? {
        SqlKind::Sqlite => (open_sqlite(url, options, false).await?, SqlKind::Sqlite),
        SqlKind::Postgres => (
            open_postgres(url, options, &secrets).await?,
            SqlKind::Postgres,
        ),
    };
    let db = SqlDb {
        conn,
        kind,
        secrets,
    };
    let status = read_schema(&db).await;
    close(&db).await;
    status
}

async fn read_schema(db: &SqlDb) -> Result<SchemaStatus, StoreError> {
    db.conn.ping().await.map_err(|e| db.error("ping", &e))?;
    let recorded = SchemaManager::new(&db.conn)
        .has_table(sea_orm::sea_query::Iden::to_string(&SeaqlMigrations::Table))
        .await
        .map_err(|e| db.error("look for the migration table", &e))?;
    let mut applied = Vec::new();
    if recorded {
        let select = Query::select()
            .column(SeaqlMigrations::Version)
            .from(SeaqlMigrations::Table)
            .order_by(SeaqlMigrations::Version, Order::Asc)
            .to_owned();
        let rows = db
            .conn
            .query_all(&select)
            .await
            .map_err(|e| db.error("read the migration table", &e))?;
        for row in &rows {
            applied.push(get::<String>(db, row, "version")?);
        }
    }
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Ok(SchemaStatus {
        backend: db.kind.name(),
        pending: known
            .iter()
            .filter(|name| !applied.contains(name))
            .cloned()
            .collect(),
        unknown: applied
            .iter()
            .filter(|name| !known.contains(name))
            .cloned()
            .collect(),
        latest: known.last().cloned().unwrap_or_default(),
        applied,
    })
}

pub(crate) async fn close(db: &SqlDb) {
    if let Err(err) = db.conn.close_by_ref().await {
        tracing::debug!(backend = db.kind.name(), error = %db.secrets.redact(&err.to_string()), "close failed");
    }
}

fn classify(url: &str) -> Result<SqlKind, StoreError> {
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    match scheme {
        "sqlite" => Ok(SqlKind::Sqlite),
        "postgres" | "postgresql" if rest.starts_with("//") => Ok(SqlKind::Postgres),
        _ => Err(StoreError::InvalidUrl(format!(
            "'{}' is not a supported database URL; expected sqlite:PATH, \
             sqlite://PATH?mode=rwc or postgres://USER@HOST[:PORT]/DATABASE",
            redacted_url(url)
        ))),
    }
}

/// SQLite settings that let the server and the command-line tool share one file:
/// - WAL (<https://www.sqlite.org/wal.html>): readers do not block the writer nor the reverse;
/// - `synchronous=NORMAL`: durable at each checkpoint, safe against corruption in WAL mode, and
///   far fewer fsyncs than FULL;
/// - `foreign_keys=ON`: SQLite leaves foreign keys off unless asked per connection, and account
///   removal relies on `ON DELETE CASCADE`;
/// - a busy timeout, so that a writer waits for another process's write instead of failing.
///
/// With `create` false the file is never created, whatever the URL's `mode=` says.
async fn open_sqlite(
    url: &str,
    options: &StorageOptions,
    create: bool,
) -> Result<DatabaseConnection, StoreError> {
    let parsed = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(format!("'{url}': {e}")))?;
    let path = parsed.get_filename().to_path_buf();
    if path.as_os_str().is_empty() {
        return Err(StoreError::InvalidUrl(format!(
            "'{url}' names no database file; expected sqlite:PATH or sqlite://PATH?mode=rwc"
        )));
    }
    // Without an explicit `mode=`, create the file: the caller provides the folder, the
    // database file is ours. An explicit `mode=` (already applied by the parser) is respected.
    // A `?` inside the path is percent-encoded, so the first one starts the query.
    let explicit_mode = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("mode=")));
    let parsed = if !create {
        parsed.create_if_missing(false)
    } else if explicit_mode {
        parsed
    } else {
        parsed.create_if_missing(true)
    };
    let timeout = Duration::from_secs(options.connect_timeout_secs.max(1));
    let connect = parsed
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(timeout)
        .disable_statement_logging();
    // Switching a new file to WAL takes an exclusive lock, and SQLite reports a concurrent switch
    // (the server and `causeriectl` starting together) as busy without calling its busy handler:
    // such an open is tried again until the timeout.
    let deadline = std::time::Instant::now() + timeout;
    let pool = loop {
        let attempt = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, SQLITE_MAX_CONNECTIONS))
            .acquire_timeout(timeout)
            // A local file: checking a connection before each use costs more than it saves.
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await;
        match attempt {
            Ok(pool) => break pool,
            Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => return Err(StoreError::Backend(sqlite_open_error(&path, &e))),
        }
    };
    Ok(DatabaseConnection::from(pool))
}

/// SQLite runs one writer at a time and readers need no more connections than there are cores to
/// run them; each connection keeps its own page cache (up to 2 MiB), so a larger pool only
/// multiplies memory.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), primary or extended.
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

fn sqlite_open_error(path: &Path, err: &sqlx::Error) -> String {
    let mut message = format!("cannot open SQLite database '{}': {err}", path.display());
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        message.push_str(&format!(" (folder '{}' does not exist)", parent.display()));
    } else if path.is_dir() {
        message.push_str(" (it is a folder)");
    } else if !path.exists() {
        message.push_str(" (no such file)");
    }
    message
}

async fn open_postgres(
    url: &str,
    options: &StorageOptions,
    secrets: &Secrets,
) -> Result<DatabaseConnection, StoreError> {
    let shown = redacted_url(url);
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(secrets.redact(&format!("'{shown}': {e}"))))?
        .disable_statement_logging();
    let cannot_connect = |reason: String| {
        StoreError::Backend(secrets.redact(&format!(
            "cannot connect to PostgreSQL at '{shown}': {reason}"
        )))
    };
    let timeout = Duration::from_secs(options.connect_timeout_secs.max(1));
    // One direct connection first: the pool retries failed connects until its timeout and then
    // reports only "timed out", hiding the cause (refused, unknown host, authentication).
    match tokio::time::timeout(
        timeout,
        <sqlx::PgConnection as sqlx::Connection>::connect_with(&connect),
    )
    .await
    {
        Ok(Ok(probe)) => {
            let _ = sqlx::Connection::close(probe).await;
        }
        Ok(Err(e)) => return Err(cannot_connect(e.to_string())),
        Err(_) => {
            return Err(cannot_connect(format!(
                "no answer within {} s",
                options.connect_timeout_secs
            )));
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(timeout)
        // A pooled connection idle for a while may have been cut by the server or a proxy;
        // check only those instead of paying a round trip on every query.
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(600))
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < Duration::from_secs(60) {
                    return Ok(true);
                }
                Ok(sqlx::Connection::ping(conn).await.is_ok())
            })
        })
        .connect_with(connect)
        .await
        .map_err(|e| cannot_connect(e.to_string()))?;
    Ok(DatabaseConnection::from(pool))
}

/// Key of the PostgreSQL advisory lock that serializes migration runs ("causerie" in ASCII).
const MIGRATION_LOCK: i64 = 0x6361_7573_6572_6965;

/// Applies pending migrations, all of them in one transaction that first takes a lock, so two
/// processes starting at once (server and command-line tool) cannot both apply the same step:
/// the second waits, then finds nothing pending. Both engines have transactional DDL, so a
/// failed step leaves the schema as it was.
async fn run_migrations(db: &SqlDb) -> Result<Vec<String>, StoreError> {
    let migration_error = |e: DbErr| StoreError::Migration(db.secrets.redact(&e.to_string()));
    let txn = db.begin_write().await?;
    let result = async {
        if db.kind == SqlKind::Postgres {
            // Released at commit or rollback.
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await
                .map_err(migration_error)?;
        }
        let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
            .await
            .map_err(migration_error)?
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        if !pending.is_empty() {
            Migrator::up(&txn, None).await.map_err(migration_error)?;
        }
        Ok(pending)
    }
    .await;
    let applied = db.finish(txn, result).await?;
    for name in &applied {
        tracing::info!(backend = db.kind.name(), migration = %name, "applied migration");
    }
    Ok(applied)
}
