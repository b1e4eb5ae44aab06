//! Fresh PostgreSQL databases for tests: one uniquely named database per test, dropped
//! when the guard goes, so tests run in parallel on one server.
#![allow(clippy::missing_panics_doc)]

use std::time::Duration;
use tokio_postgres::NoTls;

/// The server tests use unless `LEADFLOW_TEST_POSTGRES_URL` names another.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The test server's URL (a database on it to connect to for administration).
pub fn server_url() -> String {
    std::env::var("LEADFLOW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned())
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// A database that exists until this is dropped.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh database on the test server. Fails with instructions when the
    /// server cannot be reached: a PostgreSQL test never passes by skipping.
    pub async fn create() -> Result<Self, String> {
        Self::create_on(&server_url()).await
    }

    /// Creates a fresh database on the server `admin_url` connects to.
    pub async fn create_on(admin_url: &str) -> Result<Self, String> {
        let admin_url = admin_url.to_owned();
        let name = format!("leadflow_test_{}", uuid::Uuid::now_v7().simple());
        let admin = connect(&admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("cannot create a test database on {admin_url}: {e}"))?;
        Ok(Self { url: with_database(&admin_url, &name), admin_url, name })
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        format!(
            "PostgreSQL is not reachable at {url} ({e}). The PostgreSQL tests need a server: run scripts/test, \
             which starts or installs one, or start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or point LEADFLOW_TEST_POSTGRES_URL at another server."
        )
    })?;
    tokio::spawn(connection);
    Ok(client)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async code, possibly on a runtime's thread: a thread of its
        // own with its own small runtime does the dropping.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(admin) = connect(&admin_url).await {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        });
        let _ = dropped.join();
    }
}
