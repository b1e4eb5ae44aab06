//! The conformance suite on the SQLite store, each test on a fresh database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_core::pipeline::Rules;
use leadflow_testkit::conformance::{Raw, TestStore};
use std::sync::Arc;

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("leadflow.db");
    let store = leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).expect("opens");
    TestStore { store: Arc::new(store), guard: Box::new(dir), raw: Raw::Sqlite(path) }
}

leadflow_testkit::conformance_suite!(fresh());

#[test]
fn reopening_keeps_data_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    drop(leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).unwrap());
    drop(leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).unwrap());
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

/// A database from before the email match key (version 10) with a Gmail lead in it: after
/// the upgrade another spelling of the mailbox finds the lead.
#[tokio::test]
async fn upgrading_keys_stored_emails_so_their_other_spellings_merge() {
    use leadflow_core::capture::RawSubmission;
    use leadflow_core::config::{Picklists, SourceConfig};
    use leadflow_core::pipeline::prepare;
    use leadflow_store::{CaptureItem, Captured, Store};
    let item = |email: &str| {
        let payload = serde_json::json!({ "email": email }).as_object().cloned().unwrap();
        let candidate = prepare(&payload, &SourceConfig::api(), &Picklists::default()).unwrap();
        CaptureItem { submission: RawSubmission::new(leadflow_core::SourceName::api(), None, payload), candidate }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).unwrap();
    let first = store.capture(vec![item("jane.doe@gmail.com")]).await.unwrap();
    let Captured::Settled { lead, .. } = &first[0] else { panic!("{first:?}") };
    let id = lead.id;
    store.close().await.unwrap();
    drop(store);
    // Back to version 10: no key column, no index, no submission fingerprints, no resolver
    // queue, records in the key index, no health, alerts, audit log, consent ledger,
    // suppressions or retention runs, no key lifecycle, no change feed, no record of
    // migrations 11 and later.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX leads_email_key; ALTER TABLE leads DROP COLUMN email_key;
         ALTER TABLE submissions DROP COLUMN fingerprint; DROP TABLE resolve_queue;
         DROP TABLE lead_records; DROP TABLE lead_keys;
         CREATE TABLE lead_keys (key TEXT NOT NULL, lead_id TEXT NOT NULL, record TEXT NOT NULL,
                                 PRIMARY KEY (key, lead_id)) WITHOUT ROWID;
         CREATE INDEX lead_keys_lead ON lead_keys (lead_id);
         DROP TABLE health_counts; DROP TABLE health_seen; DROP INDEX submissions_unsettled;
         DROP TABLE alert_episodes; DROP TABLE alert_silences; DROP TABLE alert_notifications;
         DROP TABLE consent_ledger; DROP TABLE suppressions;
         DROP TABLE audit_log;
         DROP TABLE retention_runs; DROP TABLE encryption_keys; DROP TABLE changes;
         DROP INDEX api_keys_active_name;
         ALTER TABLE api_keys DROP COLUMN expires_at; ALTER TABLE api_keys DROP COLUMN last_used_at;
         ALTER TABLE api_keys DROP COLUMN rotated_at; ALTER TABLE api_keys DROP COLUMN rate_limit_per_minute;
         ALTER TABLE api_keys DROP COLUMN allowed_ips;
         CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
         DELETE FROM schema_migrations WHERE version >= 11;",
    )
    .unwrap();
    drop(conn);
    let upgraded = leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).unwrap();
    assert_eq!(upgraded.resolve_backlog().await.unwrap(), 1, "a lead stored without blocking keys is queued");
    let feed = upgraded.changes(&Default::default(), 10).await.unwrap();
    let started: Vec<_> = feed.changes.iter().map(|c| (c.kind.as_str(), c.lead_id)).collect();
    assert_eq!(started, [("lead.created", id)], "the feed starts with the leads already there");
    let again = upgraded.capture(vec![item("JaneDoe+webinar@googlemail.com")]).await.unwrap();
    assert!(matches!(&again[..], [Captured::Settled { lead, .. }] if lead.id == id), "{again:?}");
}

/// Checkpoints run off the writer: once the log passes SQLite's usual threshold, its pages
/// reach the database file without the writer copying them (the writer's own backstop is
/// not reached here, so the file would stay at its empty size without the checkpointer).
#[tokio::test]
async fn a_growing_log_is_checkpointed_into_the_database_file() {
    use leadflow_core::capture::RawSubmission;
    use leadflow_core::config::{Picklists, SourceConfig};
    use leadflow_core::pipeline::prepare;
    use leadflow_store::{CaptureItem, Store};
    let item = |i: usize| {
        let payload = serde_json::json!({ "email": format!("log-{i}@example.com"), "company": "Example" })
            .as_object()
            .cloned()
            .unwrap();
        let candidate = prepare(&payload, &SourceConfig::api(), &Picklists::default()).unwrap();
        CaptureItem { submission: RawSubmission::new(leadflow_core::SourceName::api(), None, payload), candidate }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).unwrap();
    let empty = std::fs::metadata(&path).unwrap().len();
    for batch in 0..15 {
        store.capture((0..200).map(|i| item(batch * 200 + i)).collect()).await.unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("leadflow.db-wal")).unwrap().len();
    // Past the checkpointer's threshold, short of the writer's own.
    assert!((1000 * 4096..4000 * 4096).contains(&wal), "the log holds {} pages", wal / 4096);
    // The checkpointer works in the background: wait for its effect, with a generous bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let grown = loop {
        let size = std::fs::metadata(&path).unwrap().len();
        if size > empty + 1000 * 4096 || std::time::Instant::now() > deadline {
            break size;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(grown > empty + 1000 * 4096, "database file {empty} -> {grown} bytes");
}

#[tokio::test]
async fn a_batch_failing_partway_keeps_queued_what_it_did_not_apply() {
    let t = fresh().await;
    let Raw::Sqlite(path) = t.raw.clone() else { unreachable!() };
    let (bad, good) = (path.clone(), path);
    let sql = |path: &std::path::Path, sql: &str| rusqlite::Connection::open(path).unwrap().execute(sql, []).unwrap();
    leadflow_testkit::conformance::a_batch_failing_partway_keeps_queued_what_it_did_not_apply(
        &t.store,
        || _ = sql(&bad, "INSERT INTO resolve_queue (lead_id) VALUES ('not a lead id')"),
        || _ = sql(&good, "DELETE FROM resolve_queue WHERE lead_id = 'not a lead id'"),
    )
    .await;
}

/// The resolver's batch is looked up on two threads ahead of its decisions: a bad queue row
/// far into a long batch fails the batch (nothing taken from the queue) without leaving
/// either thread waiting, and leads gone since they were queued are taken and passed over.
#[tokio::test]
async fn a_bad_queue_row_fails_a_long_resolver_batch_and_takes_nothing() {
    use leadflow_core::LeadId;
    use leadflow_store::{Store, StoreError};
    use time::OffsetDateTime;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = leadflow_store::sqlite::SqliteStore::open(&path, Rules::default()).unwrap();
    let queue = |ids: Vec<String>| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for id in ids {
            conn.execute("INSERT INTO resolve_queue (lead_id) VALUES (?1)", [id]).unwrap();
        }
    };
    let gone = || LeadId::new().to_string();
    let mut ids: Vec<String> = (0..120).map(|_| gone()).collect();
    ids[71] = "not a lead id".into();
    queue(ids);
    let resolved =
        tokio::time::timeout(std::time::Duration::from_secs(60), store.resolve_queued(200, OffsetDateTime::now_utc()))
            .await
            .expect("the batch ends");
    assert!(matches!(resolved, Err(StoreError::Corrupt(_))), "{resolved:?}");
    assert_eq!(store.resolve_backlog().await.unwrap(), 120, "nothing taken");

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM resolve_queue WHERE lead_id = 'not a lead id'", []).unwrap();
    let batch = store.resolve_queued(200, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((batch.taken, batch.leads), (119, 0), "{batch:?}");
    assert_eq!(store.resolve_backlog().await.unwrap(), 0);
}
