//! `[server]` and `[database]`: where the process listens, how much it accepts, and which
//! store it opens. The connection limits (header read timeout, connection cap, per-address
//! rate on the routes without an API key) and where `/metrics` is served are read here;
//! `docs/SECURITY.md` explains them.

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
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open HTTP connections at once; the next ones wait in the listen backlog for a slot.
pub const DEFAULT_SERVER_MAX_CONNECTIONS: usize = 1024;
/// Requests per minute from one client address to the routes that take no API key.
pub const DEFAULT_UNAUTHENTICATED_RATE_PER_MINUTE: u32 = 600;

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    /// The largest file accepted by `POST /v1/imports`.
    pub import_limit_bytes: usize,
    pub request_timeout: Duration,
    /// A connection that has not sent a request's complete headers within this is closed;
    /// so is one idle this long between requests.
    pub header_read_timeout: Duration,
    /// Open connections at once; beyond it new connections wait to be accepted.
    pub max_connections: usize,
    /// Per client address, on the routes without an API key (webhooks, forms, health,
    /// metrics, the dashboard's login); 0 turns the limit off.
    pub unauthenticated_rate_per_minute: u32,
    /// The environment variable holding the bearer token `/metrics` then requires.
    pub metrics_key_env: Option<String>,
    /// Serve `/metrics` on this address instead of on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// How long an instance trusts the API key it read: a revocation (or a rotation's
    /// end) reaches every instance within it. 0 reads the key on every request.
    pub key_cache_ttl: Duration,
    /// HTTPS on `listen`: the PEM certificate chain and private key (both or neither).
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
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
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_SERVER_MAX_CONNECTIONS,
            unauthenticated_rate_per_minute: DEFAULT_UNAUTHENTICATED_RATE_PER_MINUTE,
            metrics_key_env: None,
            metrics_listen: None,
            key_cache_ttl: DEFAULT_KEY_CACHE_TTL,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Five seconds: a revoked key stops working everywhere within them, and a busy key is
/// read from the store once per five seconds rather than on every request.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(5);

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
            "header_read_timeout" => match p.duration(item, &path) {
                Some(d) if !d.is_zero() => server.header_read_timeout = d,
                Some(_) => p.push(span(item), &path, "must be longer than 0s"),
                None => {}
            },
            "max_connections" => {
                if let Some(n) = p.positive_integer(item, &path) {
                    server.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
                }
            }
            "unauthenticated_rate_per_minute" => match item.as_integer().map(u32::try_from) {
                Some(Ok(n)) => server.unauthenticated_rate_per_minute = n,
                _ => p.push(span(item), &path, "must be a whole number of requests, 0 for no limit"),
            },
            "metrics_key_env" => server.metrics_key_env = p.env_name(item, &path),
            "tls_cert" => server.tls_cert = p.string(item, &path).map(std::path::PathBuf::from),
            "tls_key" => server.tls_key = p.string(item, &path).map(std::path::PathBuf::from),
            "key_cache_ttl" => match p.duration(item, &path) {
                Some(d) if d <= Duration::from_secs(300) => server.key_cache_ttl = d,
                Some(_) => p.push(span(item), &path, "must be at most 5m: a revoked key would live on that long"),
                None => {}
            },
            "metrics_listen" => {
                if let Some(s) = p.string(item, &path) {
                    match s.parse() {
                        Ok(addr) => server.metrics_listen = Some(addr),
                        Err(_) => p.push(span(item), &path, "must be an address such as 127.0.0.1:9090"),
                    }
                }
            }
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    if server.tls_cert.is_some() != server.tls_key.is_some() {
        let item = t.get("tls_cert").or_else(|| t.get("tls_key"));
        p.push(item.and_then(span), "server.tls_cert", "tls_cert and tls_key go together");
    }
    if let Some(metrics) = server.metrics_listen
        && metrics == server.listen
        && metrics.port() != 0
    {
        let item = t.get("metrics_listen");
        p.push(item.and_then(span), "server.metrics_listen", "must differ from server.listen");
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
