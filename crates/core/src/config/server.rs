//! `[server]` and `[database]`: where the process listens, how much it accepts, and which
//! store it opens.

use crate::config::read::{Problems, span};
use std::net::SocketAddr;
use std::time::Duration;
use toml_edit::Table;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://leadflow.db";
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
pub const DEFAULT_IMPORT_LIMIT_BYTES: usize = 100 * 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    /// The largest file accepted by `POST /v1/imports`.
    pub import_limit_bytes: usize,
    pub request_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseConfig {
    pub url: String,
    /// The most connections one instance opens to PostgreSQL (unused by SQLite). Every
    /// instance holds up to this many, so instances × this must stay below the server's
    /// `max_connections`.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            import_limit_bytes: DEFAULT_IMPORT_LIMIT_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: DEFAULT_DATABASE_URL.to_owned(), max_connections: DEFAULT_MAX_CONNECTIONS }
    }
}

/// `[server]`, over the defaults.
pub(crate) fn read_server(p: &mut Problems, t: &Table) -> ServerConfig {
    let mut server = ServerConfig::default();
    for (key, item) in t.iter() {
        let path = format!("server.{key}");
        match key {
            "listen" => {
                if let Some(s) = p.string(item, &path) {
                    match s.parse() {
                        Ok(addr) => server.listen = addr,
                        Err(_) => p.push(span(item), &path, "must be an address such as 127.0.0.1:8080"),
                    }
                }
            }
            "body_limit_bytes" => {
                if let Some(n) = p.positive_integer(item, &path) {
                    server.body_limit_bytes = usize::try_from(n).unwrap_or(usize::MAX);
                }
            }
            "import_limit_bytes" => {
                if let Some(n) = p.positive_integer(item, &path) {
                    server.import_limit_bytes = usize::try_from(n).unwrap_or(usize::MAX);
                }
            }
            "request_timeout_secs" => {
                if let Some(n) = p.positive_integer(item, &path) {
                    server.request_timeout = Duration::from_secs(n);
                }
            }
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    server
}

/// `[database]`, over the defaults.
pub(crate) fn is_database_url(s: &str) -> bool {
    s.starts_with("sqlite://") || s.starts_with("postgres://") || s.starts_with("postgresql://")
}

pub(crate) fn read_database(p: &mut Problems, t: &Table) -> DatabaseConfig {
    let mut database = DatabaseConfig::default();
    for (key, item) in t.iter() {
        let path = format!("database.{key}");
        match key {
            "url" => {
                if let Some(s) = p.string(item, &path) {
                    if is_database_url(s) {
                        database.url = s.to_owned();
                    } else {
                        p.push(span(item), &path, "must start with sqlite:// or postgres://");
                    }
                }
            }
            "max_connections" => {
                if let Some(n) = p.positive_integer(item, &path) {
                    database.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
                }
            }
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    database
}
