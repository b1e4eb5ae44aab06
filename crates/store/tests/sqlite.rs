//! The conformance suite on the SQLite store, each test on a fresh database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_store::conformance::{Raw, TestStore};
use std::sync::Arc;

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("leadflow.db");
    let store = leadflow_store::sqlite::SqliteStore::open(&path).expect("opens");
    TestStore { store: Arc::new(store), guard: Box::new(dir), raw: Raw::Sqlite(path) }
}

leadflow_store::conformance_suite!(fresh());

#[test]
fn reopening_keeps_data_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    drop(leadflow_store::sqlite::SqliteStore::open(&path).unwrap());
    drop(leadflow_store::sqlite::SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (n, max): (i64, i64) = conn
        .query_row("SELECT count(*), max(version) FROM schema_migrations", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    // Numbers may have gaps (a migration taken by a branch not merged yet): count files.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
    assert_eq!(n, i64::try_from(files).unwrap(), "each migration applied once");
    assert!(max >= n);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}
