//! TLS to PostgreSQL, as the URL's `sslmode` asks, with libpq's meanings:
//!
//! * absent or `disable`: no TLS (what a URL without `sslmode` always did here);
//! * `prefer`: TLS when the server offers it, else plain; `require`: TLS or nothing. Both
//!   encrypt without checking who answers (libpq's behaviour without a root certificate);
//! * `verify-ca`: TLS with a certificate chained to a trusted root; `verify-full`: that,
//!   and the certificate names the host connected to.
//!
//! Trusted roots come from `sslrootcert=PATH` (PEM), or the system's store when it is
//! absent or `system`. tokio-postgres reads only `disable`, `prefer` and `require`, so the
//! stricter modes and `sslrootcert` are taken out of the URL here and become the rustls
//! verifier.

use crate::StoreError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// What the URL asks of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Off,
    /// `prefer` or `require`: encrypted, the server not checked.
    Encrypt,
    VerifyCa {
        root: Option<String>,
    },
    VerifyFull {
        root: Option<String>,
    },
}

/// Splits `sslmode` and `sslrootcert` off a URL: the URL tokio-postgres reads, and the mode.
pub(crate) fn split(url: &str) -> Result<(String, Mode), StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut sslmode, mut root) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => sslmode = Some(value.to_owned()),
            "sslrootcert" => root = Some(decode(value)),
            _ => kept.push(pair),
        }
    }
    let root = root.filter(|r| r != "system");
    let (mode, passed) = match sslmode.as_deref() {
        None | Some("disable") => (Mode::Off, "disable"),
        Some("prefer" | "allow") => (Mode::Encrypt, "prefer"),
        Some("require") => (Mode::Encrypt, "require"),
        Some("verify-ca") => (Mode::VerifyCa { root }, "require"),
        Some("verify-full") => (Mode::VerifyFull { root }, "require"),
        Some(other) => {
            return Err(StoreError::Unsupported(format!(
                "invalid PostgreSQL URL: sslmode={other} (use disable, prefer, require, verify-ca or verify-full)"
            )));
        }
    };
    kept.push(match passed {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((format!("{base}?{}", kept.join("&")), mode))
}

fn decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The rustls configuration for a mode other than [`Mode::Off`].
pub(crate) fn client_config(mode: &Mode) -> Result<rustls::ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        Mode::Off | Mode::Encrypt => Arc::new(Unchecked(provider)),
        Mode::VerifyCa { root } | Mode::VerifyFull { root } => {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root.as_deref())?), provider)
                .build()
                .map_err(|e| StoreError::Unsupported(format!("sslrootcert: {e}")))?;
            if matches!(mode, Mode::VerifyCa { .. }) { Arc::new(ChainOnly(webpki)) } else { webpki }
        }
    };
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

fn roots(path: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match path {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| StoreError::Unsupported(format!("sslrootcert {path}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| StoreError::Unsupported(format!("sslrootcert {path}: {e}")))?;
                store.add(cert).map_err(|e| StoreError::Unsupported(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot use is skipped, as libpq would.
                let _ = store.add(cert);
            }
        }
    }
    if store.is_empty() {
        return Err(StoreError::Unsupported("no trusted root certificate for sslmode verify-ca/verify-full".into()));
    }
    Ok(store)
}

/// `prefer`/`require`: any certificate, the handshake's signatures still checked.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must reach a trusted root; the name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_as_libpq_reads_it() {
        let split = |url: &str| split(url).unwrap();
        assert_eq!(split("postgres://u@h/db"), ("postgres://u@h/db?sslmode=disable".into(), Mode::Off));
        assert_eq!(
            split("postgres://u@h/db?sslmode=require"),
            ("postgres://u@h/db?sslmode=require".into(), Mode::Encrypt)
        );
        let (url, mode) = split("postgres://u@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(url, "postgres://u@h/db?application_name=x&sslmode=require");
        assert_eq!(mode, Mode::VerifyFull { root: Some("/etc/ca.pem".into()) });
        assert_eq!(split("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system").1, Mode::VerifyCa { root: None });
        assert_eq!(split("postgres://u@h/db?sslmode=prefer").1, Mode::Encrypt);
        assert!(super::split("postgres://u@h/db?sslmode=sometimes").is_err());
    }
}
