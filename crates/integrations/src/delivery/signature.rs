//! Standard Webhooks signatures (symmetric, `v1`): base64 HMAC-SHA256 over
//! `{msg_id}.{timestamp}.{body}` with the base64 key that follows `whsec_`. The
//! verifier is here for receivers and tests: it checks the timestamp against a
//! tolerance (replays and stale signatures are refused), accepts any of several
//! space-separated signatures (key rotation) and compares in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

const PREFIX: &str = "whsec_";
const VERSION: &str = "v1";
/// The specification's suggested tolerance, used by its reference libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signing secret is not base64")]
    InvalidSecret,
    #[error("the signing secret is empty")]
    EmptySecret,
    #[error("webhook-timestamp is not an integer")]
    InvalidTimestamp,
    #[error("webhook-timestamp is too old")]
    TooOld,
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    #[error("no signature matches")]
    NoMatch,
}

/// An endpoint's HMAC key. `Debug` never prints it.
#[derive(Clone)]
pub struct SigningSecret {
    /// The keyed HMAC state, cloned for each message.
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

impl SigningSecret {
    /// Reads `whsec_<base64>` (or the bare base64).
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let b64 = text.strip_prefix(PREFIX).unwrap_or(text);
        let key = STANDARD.decode(b64).map_err(|_| SignatureError::InvalidSecret)?;
        Self::from_bytes(key)
    }

    pub fn from_bytes(key: Vec<u8>) -> Result<Self, SignatureError> {
        if key.is_empty() {
            return Err(SignatureError::EmptySecret);
        }
        let keyed = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignatureError::InvalidSecret)?;
        Ok(Self { keyed })
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The `webhook-signature` header value: `v1,<base64>`.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(msg_id, timestamp, body).finalize().into_bytes();
    format!("{VERSION},{}", STANDARD.encode(tag))
}

/// Checks a received webhook: its `webhook-timestamp` must be within `tolerance` of
/// `now` (Unix seconds) and one of the `v1` entries of `webhook-signature` must match.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::InvalidTimestamp)?;
    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(ts) > tol {
        return Err(SignatureError::TooOld);
    }
    if ts.saturating_sub(now) > tol {
        return Err(SignatureError::TooNew);
    }
    let expected = secret.mac(msg_id, ts, body);
    let matched = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        // `verify_slice` compares in constant time.
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if matched { Ok(()) } else { Err(SignatureError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the specification's reference libraries
    // (standard-webhooks, libraries/rust `test_sign`).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret() -> SigningSecret {
        SigningSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn signs_the_published_test_vector() {
        assert_eq!(sign(&secret(), MSG_ID, TS, BODY), SIGNATURE);
    }

    #[test]
    fn verifies_the_published_test_vector_within_the_tolerance() {
        let ok = verify(&secret(), MSG_ID, "1649367553", SIGNATURE, BODY, TS + 60, DEFAULT_TOLERANCE);
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn rejects_stale_and_future_timestamps() {
        let old = verify(&secret(), MSG_ID, "1649367553", SIGNATURE, BODY, TS + 301, DEFAULT_TOLERANCE);
        assert_eq!(old, Err(SignatureError::TooOld));
        let new = verify(&secret(), MSG_ID, "1649367553", SIGNATURE, BODY, TS - 301, DEFAULT_TOLERANCE);
        assert_eq!(new, Err(SignatureError::TooNew));
    }

    #[test]
    fn rejects_a_tampered_body_id_or_timestamp() {
        let v = |id: &str, ts: &str, body: &[u8]| verify(&secret(), id, ts, SIGNATURE, body, TS, DEFAULT_TOLERANCE);
        assert_eq!(v(MSG_ID, "1649367553", b"{}"), Err(SignatureError::NoMatch));
        assert_eq!(v("msg_other", "1649367553", BODY), Err(SignatureError::NoMatch));
        assert_eq!(v(MSG_ID, "1649367554", BODY), Err(SignatureError::NoMatch));
        assert_eq!(v(MSG_ID, "soon", BODY), Err(SignatureError::InvalidTimestamp));
    }

    #[test]
    fn accepts_any_matching_signature_among_several() {
        let header = format!("v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= v1a,abc {SIGNATURE}");
        assert_eq!(verify(&secret(), MSG_ID, "1649367553", &header, BODY, TS, DEFAULT_TOLERANCE), Ok(()));
        let wrong = "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=";
        assert_eq!(
            verify(&secret(), MSG_ID, "1649367553", wrong, BODY, TS, DEFAULT_TOLERANCE),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn secrets_parse_with_or_without_the_prefix_and_never_print() {
        let bare = SigningSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(sign(&bare, MSG_ID, TS, BODY), SIGNATURE);
        assert_eq!(SigningSecret::parse("whsec_not base64!").unwrap_err(), SignatureError::InvalidSecret);
        assert_eq!(SigningSecret::parse("whsec_").unwrap_err(), SignatureError::EmptySecret);
        assert_eq!(format!("{:?}", secret()), "SigningSecret(***)");
    }
}
