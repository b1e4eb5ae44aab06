//! The conformance suite on the PostgreSQL store, each test on a fresh database of the
//! server `LEADFLOW_TEST_POSTGRES_URL` names (default: postgres@127.0.0.1:5432). The
//! tests fail, with instructions, when that server cannot be reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_store::conformance::TestStore;
use leadflow_store::postgres::testkit::TestDatabase;
use leadflow_store::postgres::{PgOptions, PgStore};
use std::sync::Arc;

async fn fresh() -> TestStore {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let store = PgStore::open(&db.url, &PgOptions::default()).await.expect("opens and migrates");
    TestStore { store: Arc::new(store), guard: Box::new(db) }
}

leadflow_store::conformance_suite!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::open(&url, &PgOptions::default()).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("every instance starts");
    }
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = client.query_one("SELECT count(*), max(version) FROM schema_migrations", &[]).await.unwrap();
    let (n, max): (i64, i32) = (row.get(0), row.get(1));
    assert_eq!(n, i64::from(max), "each migration applied once");
}

#[tokio::test]
async fn an_unreachable_database_is_a_prompt_unavailable_error() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let started = std::time::Instant::now();
    let err = PgStore::open("postgres://postgres@127.0.0.1:1/none", &PgOptions::default()).await.err().expect("fails");
    assert!(matches!(err, leadflow_store::StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
