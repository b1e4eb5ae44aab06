//! HTTPS served directly: a real TLS handshake with rustls against the server, plain
//! HTTP refused on the TLS port, and a renewed certificate picked up without a restart.

use crate::{TestApp, spawn_app_with};
use leadflow_core::config::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls").join(name)
}

fn der(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture(name)).unwrap()
}

/// A server on HTTPS with certificate `a`, its files copied where the test may replace them.
async fn spawn_tls() -> (TestApp, tempfile::TempDir, PathBuf, PathBuf) {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::copy(fixture("a.crt"), &cert).unwrap();
    std::fs::copy(fixture("a.key"), &key).unwrap();
    let mut config = Config::default();
    config.server.tls_cert = Some(cert.clone());
    config.server.tls_key = Some(key.clone());
    (spawn_app_with(config).await, files, cert, key)
}

/// Trusts both test certificates, as a client given the CA would.
fn client() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der("a.crt")).unwrap();
    roots.add(der("b.crt")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTPS request; the response head and the certificate the server presented.
async fn https_get(app: &TestApp, path: &str) -> (String, CertificateDer<'static>) {
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let mut tls = client().connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    let version = tls.get_ref().1.protocol_version().unwrap();
    assert!(matches!(version, rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2), "{version:?}");
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.unwrap();
    (String::from_utf8_lossy(&response).into_owned(), presented)
}

#[tokio::test]
async fn the_api_answers_over_tls_and_refuses_plain_http_on_its_port() {
    let (app, _files, _, _) = spawn_tls().await;
    let (response, presented) = https_get(&app, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(presented, der("a.crt"));

    // Plain HTTP on the TLS port gets no HTTP answer: the handshake fails and the
    // connection closes.
    let mut plain = TcpStream::connect(app.addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let (app, _files, cert, key) = spawn_tls().await;
    assert_eq!(https_get(&app, "/healthz").await.1, der("a.crt"));
    // The key first, then the certificate, as a renewal tool writes them.
    std::fs::copy(fixture("b.key"), &key).unwrap();
    std::fs::copy(fixture("b.crt"), &cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (response, presented) = https_get(&app, "/healthz").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        if presented == der("b.crt") {
            break;
        }
        assert!(Instant::now() < deadline, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn certificate_files_that_do_not_make_a_certificate_stop_the_start() {
    let files = tempfile::tempdir().unwrap();
    let garbage = files.path().join("cert.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let mut config = Config::default();
    config.server.tls_cert = Some(garbage);
    config.server.tls_key = Some(fixture("a.key"));
    let store = crate::open_store(&files).await;
    let app = leadflow_app::App::new(store, Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = leadflow_server::launch_with(app, None, listener, Default::default(), async {}).await;
    let error = served.unwrap_err().to_string();
    assert!(error.contains("cert.pem"), "{error}");

    let mut mismatched = Config::default();
    mismatched.server.tls_cert = Some(fixture("a.crt"));
    mismatched.server.tls_key = Some(fixture("b.key"));
    let other = tempfile::tempdir().unwrap();
    let store = crate::open_store(&other).await;
    let app = leadflow_app::App::new(store, Arc::new(mismatched));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = leadflow_server::launch_with(app, None, listener, Default::default(), async {}).await;
    let error = served.unwrap_err().to_string();
    assert!(error.contains("does not fit"), "{error}");
}
