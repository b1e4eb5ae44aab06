//! HTTPS served directly. The certificate chain and key are PEM files named by
//! `[server] tls_cert` and `tls_key` (or `serve --tls-cert/--tls-key`); they are read
//! again on SIGHUP and whenever either file changes, so a renewed certificate is used
//! without a restart. A reload that fails (a half-written file, a key that does not fit)
//! keeps the certificate in use and is logged. TLS 1.3 and 1.2 only, with rustls'
//! default (modern, forward-secret) cipher suites.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;

/// How often the files' modification times are compared.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The certificate files and the key they hold now.
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads the files; an error names the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let current = read(cert, key)?;
        Ok(Arc::new(Self { cert: cert.to_owned(), key: key.to_owned(), current: RwLock::new(Arc::new(current)) }))
    }

    /// Reads the files again; the certificate in use stays when they do not make one.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = read(&self.cert, &self.key)?;
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Arc::new(fresh);
        Ok(())
    }

    /// The acceptor for the listener: TLS 1.3 and 1.2, HTTP/1.1 over ALPN.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads on SIGHUP and when either file's modification time changes, until the
    /// task is dropped.
    pub fn watch(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        // Registered before serving starts: a SIGHUP from then on reloads, never kills.
        let mut hangup = hangups();
        tokio::spawn(async move {
            let mut seen = self.stamps();
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                let why = tokio::select! {
                    _ = tick.tick() => {
                        let now = self.stamps();
                        if now == seen { continue; }
                        seen = now;
                        "the files changed"
                    }
                    Some(()) = recv(&mut hangup) => "SIGHUP",
                };
                match self.reload() {
                    Ok(()) => tracing::info!(reason = why, "TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(reason = why, error = %e, "TLS certificate not reloaded; the one in use stays")
                    }
                }
            }
        })
    }

    fn stamps(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (modified(&self.cert), modified(&self.key))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| format!("{}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| format!("{} does not fit {}: {e}", key.display(), cert.display()))?;
    Ok(certified)
}

#[cfg(unix)]
fn hangups() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangups() -> Option<()> {
    None
}

#[cfg(unix)]
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv(_: &mut Option<()>) -> Option<()> {
    std::future::pending().await
}
