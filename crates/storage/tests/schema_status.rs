//! `schema_status`: what a database's schema is, read without changing it (what
//! `causeriectl check` reports), on real SQLite files.

use causerie_storage::{StorageOptions, StoreError, migrate, schema_status};
use std::path::Path;

fn url(path: &Path, mode: &str) -> String {
    format!("sqlite://{}{mode}", path.display())
}

#[tokio::test]
async fn a_migrated_database_is_current_and_an_empty_one_has_everything_pending() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StorageOptions::default();

    let empty = dir.path().join("empty.db");
    // A zero-length file is a valid, empty SQLite database.
    std::fs::write(&empty, b"").expect("empty file");
    let status = schema_status(&url(&empty, ""), &options)
        .await
        .expect("status");
    assert_eq!(status.backend, "sqlite");
    assert!(status.applied.is_empty());
    assert!(!status.pending.is_empty());
    assert_eq!(status.pending.last(), Some(&status.latest));
    assert!(status.unknown.is_empty());
    // Reading the status applied nothing.
    let again = schema_status(&url(&empty, ""), &options)
        .await
        .expect("status");
    assert_eq!(again, status);

    let current = dir.path().join("current.db");
    let applied = migrate(&url(&current, "?mode=rwc")).await.expect("migrate");
    let status = schema_status(&url(&current, ""), &options)
        .await
        .expect("status");
    assert_eq!(status.applied, applied);
    assert!(status.pending.is_empty());
    assert_eq!(status.applied.last(), Some(&status.latest));
}

#[tokio::test]
async fn a_missing_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.db");
    // Even a URL that asks for creation does not create the file here.
    let result = schema_status(&url(&missing, "?mode=rwc"), &StorageOptions::default()).await;
    match result {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains("no such file"), "{message}")
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(!missing.exists());
}
