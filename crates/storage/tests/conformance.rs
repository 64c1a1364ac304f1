//! The conformance suite against every backend, plus what only a real database file or server
//! can show: sharing one SQLite file between two handles, migrations, URL and path errors.
//!
//! PostgreSQL runs when `CAUSERIE_TEST_POSTGRES_URL` is set (for example
//! `postgres://postgres@127.0.0.1:5432/test`); each run works in a schema of its own, dropped
//! at the end, so repeated runs against a shared database stay clean.

use async_trait::async_trait;
use causerie_storage::conformance::{self, users::sample_credential};
use causerie_storage::{
    AccountDataStore, AccountLock, AuditEvent, AuditFilter, AuditStore, BlockingStore,
    EvidenceFilter, EvidenceStore, FederationStore, LockChange, NewAuditEvent, NewEvidence,
    NewPolicyVersion, NewReceipt, NewUser, OfflineMessage, OfflineStore, Partner, PartnerRule,
    PendingSubscription, PolicyStore, PolicyVersion, ReceiptFilter, RosterItem, RosterStore,
    Storage, StorageOptions, StoreError, StoredCredential, StoredEvidence, StoredReceipt,
    Subscription, UserInfo, UserStore, migrate,
};
use sea_orm::{ConnectionTrait, Database};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Written straight to the process's stderr, past the test harness's capture, so that it shows
/// in a plain `cargo test` run.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

fn user(username: &str, domain: &str, creds: Vec<StoredCredential>) -> NewUser {
    NewUser {
        username: username.into(),
        domain: domain.into(),
        credentials: creds,
    }
}

async fn conforms(storage: &Storage) {
    if let Err(failures) = conformance::run_all(storage).await {
        panic!("{failures}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_conforms() {
    let storage = Storage::memory();
    assert_eq!(storage.backend(), "memory");
    conforms(&storage).await;
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backend_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(
        &sqlite_url(&dir.path().join("causerie.db")),
        &StorageOptions::default(),
    )
    .await
    .expect("open sqlite");
    assert_eq!(storage.backend(), "sqlite");
    conforms(&storage).await;
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_import_of_10000_users_is_timed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(
        &format!("sqlite:{}", dir.path().join("bulk.db").display()),
        &StorageOptions::default(),
    )
    .await
    .expect("open sqlite");
    let elapsed = conformance::users::large_import(&storage, 10_000)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    report(&format!(
        "sqlite: imported 10000 users (14000 credentials) in one transaction in {:.1} ms \
         ({:.0} users/s)",
        elapsed.as_secs_f64() * 1000.0,
        10_000.0 / elapsed.as_secs_f64().max(f64::EPSILON)
    ));
    storage.close().await;
}

/// The server and the command-line tool open the same file at once and both write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_sqlite_file_both_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.db");
    let options = StorageOptions {
        max_connections: 4,
        connect_timeout_secs: 30,
    };
    // Both URL forms name the same file.
    let (server_url, ctl_url) = (sqlite_url(&path), format!("sqlite:{}", path.display()));
    let (server, ctl) = tokio::join!(
        Storage::open(&server_url, &options),
        Storage::open(&ctl_url, &options),
    );
    let (server, ctl) = (server.expect("server handle"), ctl.expect("ctl handle"));

    let bulk: Vec<NewUser> = (0..2_000)
        .map(|i| {
            user(
                &format!("s{i:05}"),
                "server.example",
                vec![sample_credential("SHA-256", (i % 200) as u8)],
            )
        })
        .collect();
    let server_writes = async {
        for chunk in bulk.chunks(500) {
            server.users.import_users(chunk).await?;
        }
        Ok::<_, StoreError>(())
    };
    let ctl_writes = async {
        for i in 0..150 {
            ctl.users
                .create_user(&user(
                    &format!("c{i:03}"),
                    "ctl.example",
                    vec![sample_credential("SHA-1", i as u8)],
                ))
                .await?;
            if i % 10 == 0 {
                ctl.users
                    .set_credentials(
                        &format!("c{i:03}"),
                        "ctl.example",
                        &[sample_credential("SHA-512", i as u8)],
                    )
                    .await?;
            }
        }
        Ok::<_, StoreError>(())
    };
    let (a, b) = tokio::join!(server_writes, ctl_writes);
    a.expect("server writes");
    b.expect("ctl writes");

    for handle in [&server, &ctl] {
        assert_eq!(
            handle
                .users
                .count_users(Some("server.example"))
                .await
                .unwrap(),
            2_000
        );
        assert_eq!(
            handle.users.count_users(Some("ctl.example")).await.unwrap(),
            150
        );
    }
    assert_eq!(
        server
            .users
            .credential("c010", "ctl.example", "SHA-512")
            .await
            .unwrap(),
        Some(sample_credential("SHA-512", 10))
    );
    ctl.users
        .remove_user("s01999", "server.example")
        .await
        .unwrap();
    assert!(
        !server
            .users
            .user_exists("s01999", "server.example")
            .await
            .unwrap()
    );
    server.close().await;
    ctl.close().await;
}

/// What one process (the command-line tool) changes in the partner list and the audit log,
/// another (the running server) sees: the revision moves, the entry and the event are there.
async fn changes_seen_by_another_handle(writer: &Storage, reader: &Storage) -> Result<(), String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let domain = format!("peer-{}-{nanos:x}.handles.test", std::process::id());
    let before = reader
        .federation
        .revision()
        .await
        .map_err(|e| format!("revision: {e}"))?;
    writer
        .federation
        .set_partner(
            &domain,
            PartnerRule::Deny,
            Some("from the other handle"),
            42,
        )
        .await
        .map_err(|e| format!("set_partner: {e}"))?;
    let after = reader
        .federation
        .revision()
        .await
        .map_err(|e| format!("revision: {e}"))?;
    if after <= before {
        return Err(format!(
            "the other handle's revision stayed at {after} (was {before}) after a change"
        ));
    }
    let partners = reader
        .federation
        .partners()
        .await
        .map_err(|e| format!("partners: {e}"))?;
    let expected = Partner {
        domain: domain.clone(),
        rule: PartnerRule::Deny,
        note: Some("from the other handle".into()),
        updated_at: 42,
    };
    if !partners.contains(&expected) {
        return Err(format!("{expected:?} not listed by the other handle"));
    }
    let ev = NewAuditEvent {
        at: 42,
        actor: "causeriectl:test".into(),
        action: "federation.deny".into(),
        subject: domain.clone(),
        outcome: "ok".into(),
        detail: "note: from the other handle".into(),
        remote_addr: None,
    };
    let id = writer
        .audit
        .append(&ev)
        .await
        .map_err(|e| format!("append: {e}"))?;
    let listed = reader
        .audit
        .list(&AuditFilter {
            subject: Some(domain.clone()),
            ..AuditFilter::default()
        })
        .await
        .map_err(|e| format!("list: {e}"))?;
    if listed.iter().map(|e| e.id).collect::<Vec<_>>() != [id] {
        return Err(format!(
            "the other handle listed {listed:?}, expected id {id}"
        ));
    }
    writer
        .federation
        .remove_partner(&domain)
        .await
        .map_err(|e| format!("remove_partner: {e}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_changes_reach_another_sqlite_handle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("federation.db"));
    let server = Storage::open(&url, &StorageOptions::default())
        .await
        .expect("server handle");
    let ctl = Storage::open(&url, &StorageOptions::default())
        .await
        .expect("ctl handle");
    assert_eq!(server.federation.revision().await, Ok(0), "fresh database");
    let outcome = changes_seen_by_another_handle(&ctl, &server).await;
    server.close().await;
    ctl.close().await;
    outcome.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations_are_idempotent_and_data_persists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("migrate.db"));
    assert_eq!(
        migrate(&url).await.unwrap(),
        vec![
            "m0001_users".to_owned(),
            "m0002_im".to_owned(),
            "m0003_federation_audit".to_owned(),
            "m0004_policy".to_owned(),
            "m0005_evidence".to_owned(),
            "m0006_review_lock".to_owned(),
            "m0007_groups".to_owned(),
        ]
    );
    assert_eq!(migrate(&url).await.unwrap(), Vec::<String>::new());

    let first = Storage::open(&url, &StorageOptions::default())
        .await
        .unwrap();
    first
        .users
        .create_user(&user(
            "juliet",
            "capulet.example",
            vec![sample_credential("SHA-256", 1)],
        ))
        .await
        .unwrap();
    first.close().await;
    let second = Storage::open(&url, &StorageOptions::default())
        .await
        .unwrap();
    assert_eq!(
        second
            .users
            .credential("juliet", "capulet.example", "SHA-256")
            .await
            .unwrap(),
        Some(sample_credential("SHA-256", 1))
    );
    assert_eq!(migrate(&url).await.unwrap(), Vec::<String>::new());
    second.close().await;

    // Two processes starting on a brand-new file at the same moment: the migration runs once.
    let fresh = sqlite_url(&dir.path().join("race.db"));
    let options = StorageOptions::default();
    let (a, b, c) = tokio::join!(
        Storage::open(&fresh, &options),
        Storage::open(&fresh, &options),
        migrate(&fresh),
    );
    let (a, b) = (a.expect("first open"), b.expect("second open"));
    c.expect("concurrent migrate");
    a.users
        .create_user(&user("x", "race.example", vec![]))
        .await
        .unwrap();
    assert!(b.users.user_exists("x", "race.example").await.unwrap());
    a.close().await;
    b.close().await;
}

/// `sqlite:PATH` without `mode=` creates the file; `mode=rw` does not; a percent-encoded path
/// (as the configuration writes it for odd folder names) reaches the right file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_url_forms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain.db");
    let storage = Storage::open(
        &format!("sqlite:{}", plain.display()),
        &StorageOptions::default(),
    )
    .await
    .expect("sqlite:PATH creates the file");
    storage.close().await;
    assert!(plain.is_file());

    let absent = dir.path().join("absent.db");
    match Storage::open(
        &format!("sqlite://{}?mode=rw", absent.display()),
        &StorageOptions::default(),
    )
    .await
    {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains(&absent.display().to_string()), "{message}")
        }
        other => panic!("mode=rw on a missing file: expected Backend, got {other:?}"),
    }
    assert!(!absent.exists());

    let odd = dir.path().join("cause?rie#1%");
    std::fs::create_dir(&odd).unwrap();
    let encoded = format!(
        "sqlite://{}/cause%3Frie%231%25/causerie.db?mode=rwc",
        dir.path().display()
    );
    let storage = Storage::open(&encoded, &StorageOptions::default())
        .await
        .expect("percent-encoded path");
    storage
        .users
        .create_user(&user("a", "odd.example", vec![]))
        .await
        .unwrap();
    storage.close().await;
    assert!(odd.join("causerie.db").is_file());
}

/// What the schema promises at the SQL level: WAL, foreign keys, and no credential row
/// outliving its account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_is_wal_and_cascades() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("schema.db"));
    let storage = Storage::open(&url, &StorageOptions::default())
        .await
        .unwrap();
    storage
        .users
        .create_user(&user(
            "romeo",
            "montague.example",
            vec![
                sample_credential("SHA-1", 1),
                sample_credential("SHA-256", 2),
            ],
        ))
        .await
        .unwrap();
    fill_every_table(&storage, "romeo", "montague.example").await;
    storage
        .users
        .remove_user("romeo", "montague.example")
        .await
        .unwrap();

    let raw = Database::connect(url.as_str()).await.unwrap();
    let row = raw
        .query_one_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .expect("journal_mode row");
    let mode: String = row.try_get_by_index(0).unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    assert_eq!(orphan_credentials(&raw).await, Ok(0));
    for table in PER_USER_TABLES {
        assert_eq!(rows(&raw, table).await, Ok(0), "{table}");
    }
    raw.close().await.unwrap();
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_are_refused_clearly() {
    for url in [
        "mysql://root@127.0.0.1/causerie",
        "causerie.db",
        "",
        "sqlite:",
        "sqlite://?mode=rwc",
        "sqlite://data/x.db?mode=bogus",
        "postgres:/not-an-authority",
    ] {
        match Storage::open(url, &StorageOptions::default()).await {
            Err(StoreError::InvalidUrl(message)) => {
                assert!(!message.is_empty(), "{url}: empty message")
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
    match migrate("redis://localhost").await {
        Err(StoreError::InvalidUrl(message)) => {
            assert!(message.contains("redis://localhost"), "{message}")
        }
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
    // A malformed PostgreSQL URL: the message must not repeat the password.
    match Storage::open(
        "postgres://causerie:hunter2secret@127.0.0.1:notaport/xmpp",
        &StorageOptions::default(),
    )
    .await
    {
        Err(StoreError::InvalidUrl(message)) => {
            assert!(!message.contains("hunter2secret"), "{message}");
            assert!(message.contains("***"), "{message}");
        }
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_error_hides_the_password() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let options = StorageOptions {
        max_connections: 1,
        connect_timeout_secs: 2,
    };
    match Storage::open(
        "postgres://causerie:hunter2%21secret@127.0.0.1:1/xmpp?password=other%20secret",
        &options,
    )
    .await
    {
        Err(StoreError::Backend(message)) => {
            for secret in ["hunter2", "secret", "other"] {
                assert!(!message.contains(secret), "{message}");
            }
            assert!(message.contains("127.0.0.1:1"), "{message}");
            // The cause, not just a pool timeout.
            assert!(message.to_lowercase().contains("refused"), "{message}");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unopenable_sqlite_path_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-folder").join("causerie.db");
    match Storage::open(&sqlite_url(&missing), &StorageOptions::default()).await {
        Err(StoreError::Backend(message)) => {
            assert!(
                message.contains(&missing.display().to_string()),
                "{message}"
            );
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    match Storage::open(
        &format!("sqlite:{}", folder.display()),
        &StorageOptions::default(),
    )
    .await
    {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains(&folder.display().to_string()), "{message}");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_storage_fails_instead_of_panicking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(
        &sqlite_url(&dir.path().join("closed.db")),
        &StorageOptions::default(),
    )
    .await
    .unwrap();
    let clone = storage.clone();
    storage.close().await;
    match clone.users.user_exists("a", "b.example").await {
        Err(StoreError::Backend(_)) => {}
        other => panic!("expected Backend, got {other:?}"),
    }
    match clone
        .users
        .create_user(&user("a", "b.example", vec![]))
        .await
    {
        Err(StoreError::Backend(_)) => {}
        other => panic!("expected Backend, got {other:?}"),
    }
}

/// Tables of `m0002_im`, all holding rows of one account only.
const PER_USER_TABLES: [&str; 7] = [
    "roster_items",
    "roster_groups",
    "roster_versions",
    "roster_pending_in",
    "offline_messages",
    "account_data",
    "blocklist",
];

/// Puts at least one row in every per-user table for the account.
async fn fill_every_table(storage: &Storage, username: &str, domain: &str) {
    let item = RosterItem {
        jid: "juliet@capulet.example".into(),
        name: None,
        subscription: Subscription::Both,
        pending_out: false,
        pending_in: false,
        approved: false,
        groups: vec!["Verona".into(), "Friends".into()],
    };
    storage
        .roster
        .put_item(username, domain, &item)
        .await
        .unwrap();
    storage
        .roster
        .add_pending_in(
            username,
            domain,
            &PendingSubscription {
                contact: "tybalt@capulet.example".into(),
                stanza: "<presence type='subscribe'/>".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        storage
            .offline
            .push(username, domain, "<message/>", 1, 10)
            .await
            .unwrap()
    );
    storage
        .account_data
        .put(username, domain, "vcard", "<vCard/>")
        .await
        .unwrap();
    storage
        .blocking
        .block(username, domain, &["tybalt@capulet.example".into()])
        .await
        .unwrap();
}

async fn count(raw: &sea_orm::DatabaseConnection, sql: &str) -> Result<i64, String> {
    let row = raw
        .query_one_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .map_err(|e| format!("{sql}: {e}"))?
        .ok_or_else(|| format!("{sql}: no row"))?;
    row.try_get_by_index(0).map_err(|e| format!("{sql}: {e}"))
}

async fn rows(raw: &sea_orm::DatabaseConnection, table: &str) -> Result<i64, String> {
    count(raw, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// Rows of `table` whose account is gone.
async fn orphans(raw: &sea_orm::DatabaseConnection, table: &str) -> Result<i64, String> {
    count(
        raw,
        &format!(
            "SELECT COUNT(*) FROM {table} t LEFT JOIN users u ON u.id = t.user_id \
             WHERE u.id IS NULL"
        ),
    )
    .await
}

/// Credential rows whose account is gone.
async fn orphan_credentials(raw: &sea_orm::DatabaseConnection) -> Result<i64, String> {
    let row = raw
        .query_one_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT COUNT(*) FROM user_credentials c LEFT JOIN users u ON u.id = c.user_id \
             WHERE u.id IS NULL",
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?;
    row.try_get_by_index(0).map_err(|e| e.to_string())
}

/// A store that lists in the wrong order, imports one by one without a transaction, and lets a
/// lock the server sets shorten one already in force.
struct BrokenStore(Arc<dyn UserStore>);

#[async_trait]
impl UserStore for BrokenStore {
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError> {
        self.0.create_user(user).await
    }
    async fn import_users(&self, users: &[NewUser]) -> Result<usize, StoreError> {
        for user in users {
            self.0.create_user(user).await?;
        }
        Ok(users.len())
    }
    async fn credential(
        &self,
        username: &str,
        domain: &str,
        hash: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        self.0.credential(username, domain, hash).await
    }
    async fn set_credentials(
        &self,
        username: &str,
        domain: &str,
        creds: &[StoredCredential],
    ) -> Result<(), StoreError> {
        self.0.set_credentials(username, domain, creds).await
    }
    async fn remove_user(&self, username: &str, domain: &str) -> Result<(), StoreError> {
        self.0.remove_user(username, domain).await
    }
    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserInfo>, StoreError> {
        let mut list = self.0.list_users(domain).await?;
        list.sort_by(|a, b| {
            (a.domain.to_lowercase(), a.username.to_lowercase())
                .cmp(&(b.domain.to_lowercase(), b.username.to_lowercase()))
        });
        Ok(list)
    }
    async fn user_exists(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        self.0.user_exists(username, domain).await
    }
    async fn count_users(&self, domain: Option<&str>) -> Result<u64, StoreError> {
        self.0.count_users(domain).await
    }
    async fn lock_user(
        &self,
        username: &str,
        domain: &str,
        lock: &AccountLock,
        _change: LockChange,
    ) -> Result<AccountLock, StoreError> {
        self.0
            .lock_user(username, domain, lock, LockChange::Replace)
            .await
    }
    async fn unlock_user(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        self.0.unlock_user(username, domain).await
    }
    async fn user_lock(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<AccountLock>, StoreError> {
        self.0.user_lock(username, domain).await
    }
}

/// The suite has teeth: a store with a locale-style order and a non-atomic import fails it, at
/// the checks for exactly those behaviours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rejects_a_broken_store() {
    let mut storage = Storage::memory();
    storage.users = Arc::new(BrokenStore(storage.users.clone()));
    let failures = conformance::run_all(&storage)
        .await
        .expect_err("a broken store must fail the suite");
    for check in [
        "users::listing_order_and_counts",
        "users::import_rejects_existing",
        "users::large_import",
        "users::locks",
    ] {
        assert!(
            failures.contains(check),
            "{check} not reported in:\n{failures}"
        );
    }
    for check in ["users::create_and_read", "users::set_credentials_replaces"] {
        assert!(
            !failures.contains(check),
            "{check} reported in:\n{failures}"
        );
    }
}

/// A roster store that sorts groups, reports a version for removing nothing, and moves a
/// repeated subscription request to the end.
struct BrokenRoster(Arc<dyn RosterStore>);

#[async_trait]
impl RosterStore for BrokenRoster {
    async fn roster(&self, u: &str, d: &str) -> Result<(Vec<RosterItem>, u64), StoreError> {
        self.0.roster(u, d).await
    }
    async fn item(&self, u: &str, d: &str, c: &str) -> Result<Option<RosterItem>, StoreError> {
        self.0.item(u, d, c).await
    }
    async fn put_item(&self, u: &str, d: &str, item: &RosterItem) -> Result<u64, StoreError> {
        let mut sorted = item.clone();
        sorted.groups.sort();
        sorted.groups.dedup();
        self.0.put_item(u, d, &sorted).await
    }
    async fn remove_item(&self, u: &str, d: &str, c: &str) -> Result<Option<u64>, StoreError> {
        match self.0.remove_item(u, d, c).await? {
            Some(v) => Ok(Some(v)),
            None => Ok(Some(self.0.version(u, d).await?)),
        }
    }
    async fn version(&self, u: &str, d: &str) -> Result<u64, StoreError> {
        self.0.version(u, d).await
    }
    async fn count_items(&self, u: &str, d: &str) -> Result<u64, StoreError> {
        self.0.count_items(u, d).await
    }
    async fn pending_in(&self, u: &str, d: &str) -> Result<Vec<PendingSubscription>, StoreError> {
        self.0.pending_in(u, d).await
    }
    async fn add_pending_in(
        &self,
        u: &str,
        d: &str,
        p: &PendingSubscription,
    ) -> Result<(), StoreError> {
        self.0.remove_pending_in(u, d, &p.contact).await?;
        self.0.add_pending_in(u, d, p).await
    }
    async fn remove_pending_in(&self, u: &str, d: &str, c: &str) -> Result<bool, StoreError> {
        self.0.remove_pending_in(u, d, c).await
    }
}

/// An offline store that checks the quota, then pushes unconditionally a moment later.
struct BrokenOffline(Arc<dyn OfflineStore>);

#[async_trait]
impl OfflineStore for BrokenOffline {
    async fn push(
        &self,
        u: &str,
        d: &str,
        stanza: &str,
        stored_at: i64,
        quota: u64,
    ) -> Result<bool, StoreError> {
        if self.0.count(u, d).await? >= quota {
            return Ok(false);
        }
        // Widens the window between check and insert, as a slow database round trip would.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.push(u, d, stanza, stored_at, u64::MAX).await
    }
    async fn list(&self, u: &str, d: &str, limit: u64) -> Result<Vec<OfflineMessage>, StoreError> {
        self.0.list(u, d, limit).await
    }
    async fn remove(&self, u: &str, d: &str, ids: &[i64]) -> Result<(), StoreError> {
        self.0.remove(u, d, ids).await
    }
    async fn count(&self, u: &str, d: &str) -> Result<u64, StoreError> {
        self.0.count(u, d).await
    }
}

/// An account data store whose delete always claims to have found something.
struct BrokenAccountData(Arc<dyn AccountDataStore>);

#[async_trait]
impl AccountDataStore for BrokenAccountData {
    async fn get(&self, u: &str, d: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.0.get(u, d, key).await
    }
    async fn put(&self, u: &str, d: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.0.put(u, d, key, value).await
    }
    async fn delete(&self, u: &str, d: &str, key: &str) -> Result<bool, StoreError> {
        self.0.delete(u, d, key).await.map(|_| true)
    }
}

/// A blocking store that moves JIDs blocked again to the end of the list.
struct BrokenBlocking(Arc<dyn BlockingStore>);

#[async_trait]
impl BlockingStore for BrokenBlocking {
    async fn blocklist(&self, u: &str, d: &str) -> Result<Vec<String>, StoreError> {
        self.0.blocklist(u, d).await
    }
    async fn block(&self, u: &str, d: &str, jids: &[String]) -> Result<(), StoreError> {
        if !jids.is_empty() {
            self.0.unblock(u, d, jids).await?;
        }
        self.0.block(u, d, jids).await
    }
    async fn unblock(&self, u: &str, d: &str, jids: &[String]) -> Result<(), StoreError> {
        self.0.unblock(u, d, jids).await
    }
}

/// The checks of the instant-messaging stores have teeth too: each broken behaviour above is
/// reported by the check written for it, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rejects_broken_im_stores() {
    let mut storage = Storage::memory();
    storage.roster = Arc::new(BrokenRoster(storage.roster.clone()));
    storage.offline = Arc::new(BrokenOffline(storage.offline.clone()));
    storage.account_data = Arc::new(BrokenAccountData(storage.account_data.clone()));
    storage.blocking = Arc::new(BrokenBlocking(storage.blocking.clone()));
    let failures = conformance::run_all(&storage)
        .await
        .expect_err("broken stores must fail the suite");
    for check in [
        "roster::groups_order_and_duplicates",
        "roster::version_grows",
        "roster::pending_requests",
        "offline::concurrent_pushes_respect_quota",
        "account_data::put_get_replace_delete",
        "blocking::block_in_order_without_duplicates",
    ] {
        assert!(
            failures.contains(check),
            "{check} not reported in:\n{failures}"
        );
    }
    for check in [
        "users::",
        "roster::items_round_trip",
        "roster::unknown_account",
        "offline::push_and_list_in_order",
        "offline::quota_is_exact",
        "account_data::unknown_account",
        "blocking::unblock_some_and_all",
    ] {
        assert!(
            !failures.contains(check),
            "{check} reported in:\n{failures}"
        );
    }
}

/// A partner list that sorts like a locale (case ignored) and skips a change that sets the
/// values already stored.
struct BrokenFederation(Arc<dyn FederationStore>);

#[async_trait]
impl FederationStore for BrokenFederation {
    async fn set_partner(
        &self,
        domain: &str,
        rule: PartnerRule,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let same = self
            .0
            .partners()
            .await?
            .iter()
            .any(|p| p.domain == domain && p.rule == rule && p.note.as_deref() == note);
        if same {
            return Ok(());
        }
        self.0.set_partner(domain, rule, note, now).await
    }
    async fn remove_partner(&self, domain: &str) -> Result<bool, StoreError> {
        self.0.remove_partner(domain).await
    }
    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        let mut list = self.0.partners().await?;
        list.sort_by_key(|p| p.domain.to_lowercase());
        Ok(list)
    }
    async fn revision(&self) -> Result<i64, StoreError> {
        self.0.revision().await
    }
}

/// An audit log whose `until` leaves out the last second.
struct BrokenAudit(Arc<dyn AuditStore>);

#[async_trait]
impl AuditStore for BrokenAudit {
    async fn append(&self, ev: &NewAuditEvent) -> Result<i64, StoreError> {
        self.0.append(ev).await
    }
    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let mut narrowed = filter.clone();
        narrowed.until = filter.until.map(|u| u - 1);
        self.0.list(&narrowed).await
    }
}

/// The checks of the server-wide stores have teeth: each broken behaviour is reported by the
/// check written for it, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rejects_broken_server_wide_stores() {
    let mut storage = Storage::memory();
    storage.federation = Arc::new(BrokenFederation(storage.federation.clone()));
    storage.audit = Arc::new(BrokenAudit(storage.audit.clone()));
    let failures = conformance::run_all(&storage)
        .await
        .expect_err("broken stores must fail the suite");
    for check in [
        "federation::listing_in_byte_order",
        "federation::revision_moves_forward",
        "audit::filters",
    ] {
        assert!(
            failures.contains(check),
            "{check} not reported in:\n{failures}"
        );
    }
    for check in [
        "users::",
        "roster::",
        "blocking::",
        "federation::set_replace_remove",
        "federation::concurrent_changes_each_count",
        "federation::invalid_input_refused",
        "audit::append_and_list",
        "audit::default_limit_and_concurrent_appends",
        "audit::tailing_misses_nothing",
        "audit::invalid_input_refused",
    ] {
        assert!(
            !failures.contains(check),
            "{check} reported in:\n{failures}"
        );
    }
}

/// A policy store that lets the newest version for every domain override a domain's own,
/// refuses a hash already published for any domain, ignores `since`, and reports an account's
/// first acceptance of a version instead of its latest.
struct BrokenPolicy(Arc<dyn PolicyStore>);

#[async_trait]
impl PolicyStore for BrokenPolicy {
    async fn publish(&self, v: &NewPolicyVersion) -> Result<PolicyVersion, StoreError> {
        if self.0.version_by_hash(&v.hash).await?.is_some() {
            return Err(StoreError::AlreadyExists(v.hash.clone()));
        }
        self.0.publish(v).await
    }
    async fn versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        self.0.versions().await
    }
    async fn version_by_hash(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError> {
        self.0.version_by_hash(hash).await
    }
    async fn current(&self, domain: &str, now: i64) -> Result<Option<PolicyVersion>, StoreError> {
        Ok(self
            .0
            .versions()
            .await?
            .into_iter()
            .filter(|v| v.effective_at <= now && v.domain.as_deref().is_none_or(|d| d == domain))
            .max_by_key(|v| (v.effective_at, v.seq)))
    }
    async fn append_receipt(&self, r: &NewReceipt) -> Result<StoredReceipt, StoreError> {
        self.0.append_receipt(r).await
    }
    async fn last_receipt(&self) -> Result<Option<StoredReceipt>, StoreError> {
        self.0.last_receipt().await
    }
    async fn receipts(&self, f: &ReceiptFilter) -> Result<Vec<StoredReceipt>, StoreError> {
        let mut wider = f.clone();
        wider.since = None;
        self.0.receipts(&wider).await
    }
    async fn acceptance(
        &self,
        username: &str,
        domain: &str,
        policy_hash: &str,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        let all = self
            .0
            .receipts(&ReceiptFilter {
                username: Some(username.to_owned()),
                domain: Some(domain.to_owned()),
                limit: Some(u64::MAX),
                ..ReceiptFilter::default()
            })
            .await?;
        Ok(all.into_iter().find(|r| r.policy_hash == policy_hash))
    }
}

/// The policy checks have teeth: each broken behaviour is reported by the check written for
/// it, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rejects_a_broken_policy_store() {
    let mut storage = Storage::memory();
    storage.policy = Arc::new(BrokenPolicy(storage.policy.clone()));
    let failures = conformance::run_all(&storage)
        .await
        .expect_err("a broken store must fail the suite");
    for check in [
        "policy::same_hash_once_per_scope",
        "policy::current_version_rules",
        "policy::receipts_round_trip_and_filters",
        "policy::acceptance_is_latest",
    ] {
        assert!(
            failures.contains(check),
            "{check} not reported in:\n{failures}"
        );
    }
    for check in [
        "users::",
        "audit::",
        "policy::append_links_to_the_last",
        "policy::publish_and_read",
        "policy::default_limit_and_paging",
        "policy::concurrent_appends_one_winner",
        "policy::concurrent_chain_stays_linked",
        "policy::receipts_outlive_accounts",
        "policy::invalid_input_refused",
    ] {
        assert!(
            !failures.contains(check),
            "{check} reported in:\n{failures}"
        );
    }
}

/// The policy tables are where the module documentation says, with the columns it names: a row
/// edited with plain SQL (as a tampering test does) reads back edited, categories are rows of
/// their own, and removing the account leaves its receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_rows_are_plain_sql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("policy.db"));
    let storage = Storage::open(&url, &StorageOptions::default())
        .await
        .unwrap();
    let hash = "ab".repeat(32);
    let published = storage
        .policy
        .publish(&NewPolicyVersion {
            hash: hash.clone(),
            title: "Terms".into(),
            text: "Be nice.".into(),
            format: "text".into(),
            effective_at: 10,
            categories: vec!["tos".into(), "privacy".into()],
            domain: None,
            published_at: 5,
            published_by: "causeriectl:root".into(),
        })
        .await
        .unwrap();
    assert_eq!(published.seq, 1);
    storage
        .users
        .create_user(&user("juliet", "capulet.example", vec![]))
        .await
        .unwrap();
    let first = NewReceipt {
        seq: 1,
        username: "juliet".into(),
        domain: "capulet.example".into(),
        resource: "balcony".into(),
        policy_hash: hash.clone(),
        method: "xmpp".into(),
        accepted_at: 20,
        remote_addr: None,
        client: Some("Dino".into()),
        prev_hash: causerie_storage::policy::GENESIS_HASH.into(),
        hash: "cd".repeat(32),
        signature: "sig".into(),
    };
    storage.policy.append_receipt(&first).await.unwrap();
    storage
        .users
        .remove_user("juliet", "capulet.example")
        .await
        .unwrap();

    let raw = Database::connect(url.as_str()).await.unwrap();
    let sql = |text: &str| sea_orm::Statement::from_string(raw.get_database_backend(), text);
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM policy_categories WHERE seq = 1 AND \
             ((position = 0 AND category = 'tos') OR (position = 1 AND category = 'privacy'))"
        )
        .await,
        Ok(2)
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM policy_receipts WHERE seq = 1 AND username = 'juliet' \
             AND domain = 'capulet.example' AND remote_addr IS NULL AND client = 'Dino'"
        )
        .await,
        Ok(1),
        "the receipt outlives its account"
    );
    raw.execute_raw(sql(
        "UPDATE policy_receipts SET signature = 'forged', resource = 'garden', \
         accepted_at = 21, policy_hash = policy_hash, prev_hash = prev_hash, hash = hash, \
         method = method WHERE seq = 1",
    ))
    .await
    .unwrap();
    raw.execute_raw(sql(
        "UPDATE policy_versions SET text = 'Be nasty.', title = title, format = format, \
         effective_at = effective_at, published_at = published_at, \
         published_by = published_by WHERE seq = 1 AND hash = hash AND domain IS NULL",
    ))
    .await
    .unwrap();
    raw.close().await.unwrap();

    let last = storage.policy.last_receipt().await.unwrap().unwrap();
    assert_eq!(
        (
            last.signature.as_str(),
            last.resource.as_str(),
            last.accepted_at
        ),
        ("forged", "garden", 21)
    );
    let edited = storage
        .policy
        .version_by_hash(&hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.text, "Be nasty.");
    assert_eq!(edited.categories, ["tos", "privacy"]);
    storage.close().await;
}

/// An evidence store whose purge lifts the legal holds in its way, that answers a decided
/// review with `NotFound` instead of `Conflict`, whose listing ignores `until`, and that hands
/// out a decision already carried out again.
struct BrokenEvidence(Arc<dyn EvidenceStore>);

#[async_trait]
impl EvidenceStore for BrokenEvidence {
    async fn append(&self, e: &NewEvidence) -> Result<StoredEvidence, StoreError> {
        self.0.append(e).await
    }
    async fn last(&self) -> Result<Option<StoredEvidence>, StoreError> {
        self.0.last().await
    }
    async fn get(&self, seq: i64) -> Result<Option<StoredEvidence>, StoreError> {
        self.0.get(seq).await
    }
    async fn list(&self, f: &EvidenceFilter) -> Result<Vec<StoredEvidence>, StoreError> {
        let mut wider = f.clone();
        wider.until = None;
        self.0.list(&wider).await
    }
    async fn set_legal_hold(&self, seq: i64, hold: bool) -> Result<bool, StoreError> {
        self.0.set_legal_hold(seq, hold).await
    }
    async fn set_review(
        &self,
        seq: i64,
        state: &str,
        by: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<StoredEvidence, StoreError> {
        match self.0.set_review(seq, state, by, at, reason).await {
            Err(StoreError::Conflict(message)) => Err(StoreError::NotFound(message)),
            other => other,
        }
    }
    async fn unhandled_decisions(&self, limit: u64) -> Result<Vec<StoredEvidence>, StoreError> {
        self.0.unhandled_decisions(limit).await
    }
    async fn claim_decision(
        &self,
        seq: i64,
        at: i64,
    ) -> Result<Option<StoredEvidence>, StoreError> {
        match self.0.claim_decision(seq, at).await? {
            Some(claimed) => Ok(Some(claimed)),
            None => Ok(self.0.get(seq).await?.filter(|r| r.handled_at.is_some())),
        }
    }
    async fn purge(&self, before: i64, now: i64) -> Result<u64, StoreError> {
        let held = self
            .0
            .list(&EvidenceFilter {
                until: Some(before - 1),
                limit: Some(u64::MAX),
                ..EvidenceFilter::default()
            })
            .await?;
        for e in held.iter().filter(|e| e.legal_hold) {
            self.0.set_legal_hold(e.seq, false).await?;
        }
        self.0.purge(before, now).await
    }
}

/// The evidence checks have teeth: each broken behaviour is reported by the check written for
/// it, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rejects_a_broken_evidence_store() {
    let mut storage = Storage::memory();
    storage.evidence = Arc::new(BrokenEvidence(storage.evidence.clone()));
    let failures = conformance::run_all(&storage)
        .await
        .expect_err("a broken store must fail the suite");
    for check in [
        "evidence::filters",
        "evidence::review_moves_only_pending",
        "evidence::decisions_are_carried_out_once",
        "evidence::purge_respects_hold_and_review",
    ] {
        assert!(
            failures.contains(check),
            "{check} not reported in:\n{failures}"
        );
    }
    for check in [
        "users::",
        "policy::",
        "evidence::append_links_to_the_last",
        "evidence::round_trip_and_get",
        "evidence::default_limit_and_paging",
        "evidence::large_payloads",
        "evidence::legal_hold",
        "evidence::concurrent_appends_one_winner",
        "evidence::concurrent_chain_stays_linked",
        "evidence::evidence_outlives_accounts",
        "evidence::invalid_input_refused",
    ] {
        assert!(
            !failures.contains(check),
            "{check} reported in:\n{failures}"
        );
    }
}

/// The evidence table is where the module documentation says, with the columns and indexes it
/// names: a purge leaves the row with only the payload emptied, a row edited with plain SQL (as
/// a tampering test does) reads back edited, and removing the account leaves its records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_rows_are_plain_sql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("evidence.db"));
    let storage = Storage::open(&url, &StorageOptions::default())
        .await
        .unwrap();
    storage
        .users
        .create_user(&user("juliet", "capulet.example", vec![]))
        .await
        .unwrap();
    let record = |seq: i64, prev_hash: String, hash: String, created_at: i64| NewEvidence {
        seq,
        created_at,
        rule_id: "no-secrets".into(),
        category: "confidential".into(),
        actions: "block,alert".into(),
        username: "juliet".into(),
        domain: "capulet.example".into(),
        resource: "balcony".into(),
        peer: "romeo@montague.example".into(),
        direction: "outgoing".into(),
        remote_addr: None,
        client: Some("Dino".into()),
        sealed: true,
        payload: "c2VhbGVk".into(),
        payload_hash: "ef".repeat(32),
        review: None,
        held: None,
        prev_hash,
        hash,
        signature: "sig".into(),
    };
    let first = record(
        1,
        causerie_storage::evidence::GENESIS_HASH.into(),
        "ab".repeat(32),
        10,
    );
    let second = NewEvidence {
        review: Some("pending".into()),
        held: Some("<message to='romeo@montague.example'/>".into()),
        sealed: false,
        payload: "{}".into(),
        ..record(2, "ab".repeat(32), "cd".repeat(32), 20)
    };
    storage.evidence.append(&first).await.unwrap();
    storage.evidence.append(&second).await.unwrap();
    assert_eq!(storage.evidence.purge(100, 50).await, Ok(1));
    assert_eq!(storage.evidence.set_legal_hold(2, true).await, Ok(true));
    storage
        .users
        .remove_user("juliet", "capulet.example")
        .await
        .unwrap();

    let raw = Database::connect(url.as_str()).await.unwrap();
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM evidence WHERE seq = 1 AND payload IS NULL AND purged_at = 50 \
             AND created_at = 10 AND rule_id = 'no-secrets' AND category = 'confidential' \
             AND actions = 'block,alert' AND username = 'juliet' \
             AND domain = 'capulet.example' AND resource = 'balcony' \
             AND peer = 'romeo@montague.example' AND direction = 'outgoing' \
             AND remote_addr IS NULL AND client = 'Dino' AND sealed = 1 \
             AND payload_hash = 'efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef' \
             AND prev_hash = '0000000000000000000000000000000000000000000000000000000000000000' \
             AND hash = 'abababababababababababababababababababababababababababababababab' \
             AND signature = 'sig' AND legal_hold = 0 AND review IS NULL \
             AND reviewed_by IS NULL AND reviewed_at IS NULL AND review_reason IS NULL \
             AND held_stanza IS NULL AND handled_at IS NULL"
        )
        .await,
        Ok(1),
        "the purged record keeps every column but its payload, and outlives its account"
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM evidence WHERE seq = 2 AND payload = '{}' \
             AND purged_at IS NULL AND sealed = 0 AND legal_hold = 1 AND review = 'pending' \
             AND held_stanza = '<message to=''romeo@montague.example''/>' \
             AND handled_at IS NULL"
        )
        .await,
        Ok(1),
        "the record pending review is not purged"
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'evidence' \
             AND name IN ('evidence_account', 'evidence_created_at', 'evidence_review', \
             'evidence_review_handled')"
        )
        .await,
        Ok(4)
    );
    raw.execute_raw(sea_orm::Statement::from_string(
        raw.get_database_backend(),
        "UPDATE evidence SET payload_hash = '0123456789abcdef0123456789abcdef0123456789abcdef\
         0123456789abcdef', signature = 'forged', review = 'released', reviewed_by = 'nobody', \
         reviewed_at = 7, review_reason = 'ok' WHERE seq = 2",
    ))
    .await
    .unwrap();
    raw.close().await.unwrap();
    // Decided by hand: the server's query for the decisions to carry out finds it.
    let decided = storage.evidence.unhandled_decisions(10).await.unwrap();
    assert_eq!(
        decided
            .iter()
            .map(|r| (r.seq, r.review_reason.as_deref()))
            .collect::<Vec<_>>(),
        [(2, Some("ok"))]
    );

    let edited = storage.evidence.get(2).await.unwrap().unwrap();
    assert_eq!(
        (
            edited.payload_hash.as_str(),
            edited.signature.as_str(),
            edited.review.as_deref(),
            edited.reviewed_by.as_deref(),
            edited.reviewed_at,
            edited.legal_hold,
        ),
        (
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "forged",
            Some("released"),
            Some("nobody"),
            Some(7),
            true,
        )
    );
    storage.close().await;
}

/// The lock columns of `users` are where the module documentation says: a lock set through the
/// store reads back with plain SQL, and one written with plain SQL reads back through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_locks_are_plain_sql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("locks.db"));
    let storage = Storage::open(&url, &StorageOptions::default())
        .await
        .unwrap();
    for name in ["juliet", "romeo"] {
        storage
            .users
            .create_user(&user(name, "capulet.example", vec![]))
            .await
            .unwrap();
    }
    let lock = AccountLock {
        locked_at: 100,
        until: Some(1900),
        reason: "rule leak".into(),
        locked_by: "compliance".into(),
    };
    storage
        .users
        .lock_user("juliet", "capulet.example", &lock, LockChange::Replace)
        .await
        .unwrap();
    let raw = Database::connect(url.as_str()).await.unwrap();
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE username = 'juliet' AND locked_at = 100 \
             AND locked_until = 1900 AND lock_reason = 'rule leak' AND locked_by = 'compliance'"
        )
        .await,
        Ok(1)
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE username = 'romeo' AND locked_at IS NULL \
             AND locked_until IS NULL AND lock_reason IS NULL AND locked_by IS NULL"
        )
        .await,
        Ok(1)
    );
    raw.execute_raw(sea_orm::Statement::from_string(
        raw.get_database_backend(),
        "UPDATE users SET locked_at = 5, locked_until = NULL, lock_reason = 'by hand', \
         locked_by = 'dba' WHERE username = 'romeo'",
    ))
    .await
    .unwrap();
    raw.close().await.unwrap();
    assert_eq!(
        storage
            .users
            .user_lock("romeo", "capulet.example")
            .await
            .unwrap(),
        Some(AccountLock {
            locked_at: 5,
            until: None,
            reason: "by hand".into(),
            locked_by: "dba".into(),
        })
    );
    storage.close().await;
}

/// Appends `options[search_path]=schema` to a PostgreSQL URL.
fn with_search_path(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend_conforms() {
    let Ok(base) = std::env::var("CAUSERIE_TEST_POSTGRES_URL") else {
        report(
            "postgres_backend_conforms: the PostgreSQL half of the conformance tests did NOT \
             run: CAUSERIE_TEST_POSTGRES_URL is not set (for example \
             CAUSERIE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)",
        );
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let schema = format!("causerie_test_{}_{nanos:x}", std::process::id());
    let admin = Database::connect(base.as_str())
        .await
        .expect("connect to CAUSERIE_TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .expect("create schema");

    let url = with_search_path(&base, &schema);
    let outcome = run_postgres(&url).await;

    admin
        .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
    admin.close().await.expect("close admin connection");
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

async fn run_postgres(url: &str) -> Result<(), String> {
    let applied = migrate(url).await.map_err(|e| format!("migrate: {e}"))?;
    if applied
        != [
            "m0001_users",
            "m0002_im",
            "m0003_federation_audit",
            "m0004_policy",
            "m0005_evidence",
            "m0006_review_lock",
            "m0007_groups",
        ]
    {
        return Err(format!("first migrate applied {applied:?}"));
    }
    let storage = Storage::open(url, &StorageOptions::default())
        .await
        .map_err(|e| format!("open: {e}"))?;
    let second = Storage::open(url, &StorageOptions::default())
        .await
        .map_err(|e| format!("second open: {e}"))?;
    if storage.backend() != "postgres" {
        return Err(format!("backend() = {}", storage.backend()));
    }
    let again = migrate(url)
        .await
        .map_err(|e| format!("migrate again: {e}"))?;
    if !again.is_empty() {
        return Err(format!("second migrate applied {again:?}"));
    }
    let result = async {
        conformance::run_all(&storage).await?;
        changes_seen_by_another_handle(&storage, &second).await?;
        let elapsed: Duration = conformance::users::large_import(&second, 10_000).await?;
        report(&format!(
            "postgres: imported 10000 users in one transaction in {:.1} ms",
            elapsed.as_secs_f64() * 1000.0
        ));
        Ok::<_, String>(())
    }
    .await;
    let schema = postgres_schema_checks(url).await;
    storage.close().await;
    second.close().await;
    result.and(schema)
}

/// The PostgreSQL DDL the migrations must produce: byte-wise collation on names, JIDs and keys
/// (the database's own locale must not change the listing order or the unique keys), cascading
/// removal, and no row left behind by the suite's removals of accounts and roster items.
async fn postgres_schema_checks(url: &str) -> Result<(), String> {
    let raw = Database::connect(url).await.map_err(|e| e.to_string())?;
    let text = |sql: &str| {
        let raw = &raw;
        let sql = sql.to_owned();
        async move {
            let row = raw
                .query_one_raw(sea_orm::Statement::from_string(
                    raw.get_database_backend(),
                    sql.clone(),
                ))
                .await
                .map_err(|e| format!("{sql}: {e}"))?
                .ok_or_else(|| format!("{sql}: no row"))?;
            row.try_get_by_index::<Option<String>>(0)
                .map_err(|e| format!("{sql}: {e}"))
        }
    };
    for column in ["username", "domain"] {
        let collation = text(&format!(
            "SELECT collation_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'users' \
             AND column_name = '{column}'"
        ))
        .await?;
        if collation.as_deref() != Some("C") {
            return Err(format!(
                "users.{column} collation is {collation:?}, expected C"
            ));
        }
    }
    let rule = text(
        "SELECT delete_rule::text FROM information_schema.referential_constraints \
         WHERE constraint_schema = current_schema() AND constraint_name = 'user_credentials_user'",
    )
    .await?;
    if rule.as_deref() != Some("CASCADE") {
        return Err(format!("user_credentials_user delete rule is {rule:?}"));
    }
    for (table, column) in [
        ("roster_items", "contact"),
        ("roster_groups", "contact"),
        ("roster_pending_in", "contact"),
        ("account_data", "key"),
        ("blocklist", "jid"),
        ("federation_partners", "domain"),
        ("audit_events", "action"),
        ("audit_events", "subject"),
        ("policy_versions", "hash"),
        ("policy_versions", "domain"),
        ("policy_receipts", "username"),
        ("policy_receipts", "domain"),
        ("policy_receipts", "policy_hash"),
        ("evidence", "username"),
        ("evidence", "domain"),
        ("evidence", "rule_id"),
        ("evidence", "review"),
    ] {
        let collation = text(&format!(
            "SELECT collation_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' \
             AND column_name = '{column}'"
        ))
        .await?;
        if collation.as_deref() != Some("C") {
            return Err(format!(
                "{table}.{column} collation is {collation:?}, expected C"
            ));
        }
    }
    for constraint in [
        "roster_items_user",
        "roster_groups_user",
        "roster_groups_item",
        "roster_versions_user",
        "roster_pending_in_user",
        "offline_messages_user",
        "account_data_user",
        "blocklist_user",
        "policy_categories_version",
    ] {
        let rule = text(&format!(
            "SELECT delete_rule::text FROM information_schema.referential_constraints \
             WHERE constraint_schema = current_schema() AND constraint_name = '{constraint}'"
        ))
        .await?;
        if rule.as_deref() != Some("CASCADE") {
            return Err(format!("{constraint} delete rule is {rule:?}"));
        }
    }
    let orphan_count = orphan_credentials(&raw).await?;
    if orphan_count != 0 {
        return Err(format!(
            "{orphan_count} credential rows outlived their account"
        ));
    }
    for table in PER_USER_TABLES {
        let n = orphans(&raw, table).await?;
        if n != 0 {
            return Err(format!("{n} rows of {table} outlived their account"));
        }
    }
    let lost_groups = count(
        &raw,
        "SELECT COUNT(*) FROM roster_groups g LEFT JOIN roster_items i \
         ON i.user_id = g.user_id AND i.contact = g.contact WHERE i.user_id IS NULL",
    )
    .await?;
    raw.close().await.map_err(|e| e.to_string())?;
    if lost_groups != 0 {
        return Err(format!("{lost_groups} roster groups outlived their item"));
    }
    Ok(())
}

/// A group store that reports every member given as added, and lists groups in a
/// locale-style order.
struct BrokenGroups(Arc<dyn causerie_storage::GroupStore>);

#[async_trait]
impl causerie_storage::GroupStore for BrokenGroups {
    async fn create_group(&self, g: &causerie_storage::NewGroup) -> Result<(), StoreError> {
        self.0.create_group(g).await
    }
    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        self.0.remove_group(name).await
    }
    async fn add_members(&self, name: &str, m: &[String]) -> Result<Vec<String>, StoreError> {
        self.0.add_members(name, m).await?;
        Ok(m.to_vec())
    }
    async fn remove_members(&self, name: &str, m: &[String]) -> Result<Vec<String>, StoreError> {
        self.0.remove_members(name, m).await
    }
    async fn groups(&self) -> Result<Vec<causerie_storage::SharedGroup>, StoreError> {
        let mut all = self.0.groups().await?;
        all.sort_by_key(|g| g.name.to_lowercase());
        Ok(all)
    }
    async fn group(&self, name: &str) -> Result<Option<causerie_storage::SharedGroup>, StoreError> {
        self.0.group(name).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rejects_a_broken_group_store() {
    let mut storage = Storage::memory();
    storage.groups = Arc::new(BrokenGroups(storage.groups.clone()));
    let failures = conformance::run_all(&storage)
        .await
        .expect_err("a broken store must fail the suite");
    for check in ["groups::membership", "groups::listing_in_byte_order"] {
        assert!(
            failures.contains(check),
            "{check} not reported in:\n{failures}"
        );
    }
    for check in [
        "groups::create_show_remove",
        "groups::invalid_input_refused",
    ] {
        assert!(
            !failures.contains(check),
            "{check} reported in:\n{failures}"
        );
    }
}
