//! Signature primitives shared by the adapters: HMAC over exact bytes, constant-time
//! comparison, and the replay window.

use crate::channels::HookError;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// Tolerance for signed timestamps: five minutes either way, as HubSpot, Webflow and Zoom
/// document it and as the issue asks for Calendly too.
pub const TOLERANCE_SECS: i64 = 300;

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return Vec::new() };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else { return Vec::new() };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(key) else { return Vec::new() };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Compares a hex signature from a header (either case) against the expected MAC.
pub fn verify_hex(expected: &[u8], received_hex: &str) -> bool {
    match hex::decode(received_hex.trim()) {
        Ok(got) => ct_eq(expected, &got),
        Err(_) => false,
    }
}

/// Compares a standard-base64 signature from a header against the expected MAC.
pub fn verify_base64(expected: &[u8], received_b64: &str) -> bool {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(received_b64.trim()) {
        Ok(got) => ct_eq(expected, &got),
        Err(_) => false,
    }
}

pub fn require_secret<'a>(secret: Option<&'a str>, provider: &str) -> Result<&'a [u8], HookError> {
    match secret {
        Some(s) if !s.is_empty() => Ok(s.as_bytes()),
        _ => Err(HookError::Unauthorized(format!("no signing secret configured for {provider}"))),
    }
}

/// Checks a signed timestamp against `now`; `millis` says the provider sends milliseconds.
pub fn check_fresh(raw: &str, millis: bool, now: OffsetDateTime) -> Result<(), HookError> {
    check_fresh_within(raw, millis, now, TOLERANCE_SECS)
}

/// [`check_fresh`] with the source's own tolerance.
pub fn check_fresh_within(raw: &str, millis: bool, now: OffsetDateTime, tolerance: i64) -> Result<(), HookError> {
    let ts: i64 = raw.trim().parse().map_err(|_| HookError::Unauthorized("unreadable signed timestamp".into()))?;
    let secs = if millis { ts.div_euclid(1000) } else { ts };
    let skew = now.unix_timestamp().saturating_sub(secs).saturating_abs();
    if skew > tolerance {
        return Err(HookError::Stale(format!("signed timestamp is {skew}s away from now (tolerance {tolerance}s)")));
    }
    Ok(())
}

/// The optional shared token for providers that do not sign (web forms, Unbounce,
/// Jotform): when a secret is configured, the webhook URL must carry `?token=SECRET`.
pub fn check_url_token(secret: Option<&str>, token: Option<String>) -> Result<(), HookError> {
    match secret {
        Some(s) if !s.is_empty() => match token {
            Some(t) if ct_eq(s.as_bytes(), t.as_bytes()) => Ok(()),
            Some(_) => Err(HookError::Unauthorized("wrong token".into())),
            None => Err(HookError::Unauthorized("missing token".into())),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn hmac_sha1_matches_rfc2202_case_2() {
        let mac = hmac_sha1(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(hex::encode(mac), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn timestamps_outside_five_minutes_are_stale() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert!(check_fresh("1000300", false, now).is_ok());
        assert!(matches!(check_fresh("999699", false, now), Err(HookError::Stale(_))));
        assert!(check_fresh("1000000000", true, now).is_ok());
        assert!(matches!(check_fresh("999000000", true, now), Err(HookError::Stale(_))));
        assert!(matches!(check_fresh("x", true, now), Err(HookError::Unauthorized(_))));
        assert!(check_fresh(&i64::MIN.to_string(), false, now).is_err());
    }
}
