//! The generic signed-JSON webhook, for tools with no adapter of their own (Zapier's and
//! Make's HTTP steps, in-house scripts).
//!
//! The sender signs the exact body: `signature_header` (default `X-Signature`) carries
//! `[signature_prefix]ENCODE(HMAC-ALG(secret, body))`, with ALG `sha256` (default), `sha1`
//! or `sha512` and ENCODE `hex` (default, either case) or `base64`. With a
//! `timestamp_header` the sender also sends the Unix time of signing and signs
//! `TIMESTAMP + "." + body` (the Stripe and Standard Webhooks shape); a time outside the
//! tolerance is refused as stale. Comparison is constant-time.
//!
//! The body is one lead (a JSON object) or several (an array of objects, at most
//! [`MAX_ITEMS`]). Each is stored as sent; the generic mapper reads it later (synonyms and
//! the source's `[sources.mapping]`), so `standardize` does not apply here. Key:
//! `signed_json:{Idempotency-Key}[:{index}]` when the sender gives the header, else a
//! digest of the lead's JSON, so a retry of the same lead is one lead.

use super::{digest, header, ignored, item, require_post};
use crate::channels::{Handled, HookError, HookRequest, sig};
use base64::Engine;
use leadflow_core::source::inbound::{SignatureAlgorithm, SignatureEncoding, SignedJsonSettings};
use serde_json::Value;

/// The most leads one request may carry, as on `POST /v1/leads/batch`.
pub const MAX_ITEMS: usize = 1000;

pub fn handle(req: &HookRequest, secret: Option<&str>, settings: &SignedJsonSettings) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "signed_json")?;
    verify(req, key, settings)?;
    let leads = match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(lead)) => vec![lead],
        Ok(Value::Array(list)) => {
            if list.len() > MAX_ITEMS {
                return Err(HookError::Malformed(format!("at most {MAX_ITEMS} leads per request")));
            }
            let mut leads = Vec::with_capacity(list.len());
            for (i, v) in list.into_iter().enumerate() {
                match v {
                    Value::Object(lead) => leads.push(lead),
                    _ => return Err(HookError::Malformed(format!("element {i} is not a JSON object"))),
                }
            }
            leads
        }
        Ok(_) => return Err(HookError::Malformed("expected a JSON object or an array of objects".into())),
        Err(e) => return Err(HookError::Malformed(format!("invalid JSON: {e}"))),
    };
    if leads.is_empty() {
        return Ok(ignored("an empty list carries no lead"));
    }
    let given = req.header("idempotency-key").map(str::trim).filter(|k| !k.is_empty() && k.len() <= 200);
    let many = leads.len() > 1;
    let items = leads
        .into_iter()
        .enumerate()
        .map(|(i, lead)| {
            let key = match given {
                Some(k) if many => format!("signed_json:{k}:{i}"),
                Some(k) => format!("signed_json:{k}"),
                None => {
                    let bytes = serde_json::to_vec(&lead).unwrap_or_default();
                    format!("signed_json:sha256:{}", digest(&[&bytes]))
                }
            };
            item(key, lead, false)
        })
        .collect();
    Ok(Handled::Items(items))
}

fn verify(req: &HookRequest, key: &[u8], s: &SignedJsonSettings) -> Result<(), HookError> {
    let got = header(req, &s.header.to_ascii_lowercase())?.trim();
    let got = match &s.prefix {
        Some(prefix) => match got.get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(prefix) => &got[prefix.len()..],
            _ => return Err(HookError::Unauthorized(format!("signature does not start with {prefix:?}"))),
        },
        None => got,
    };
    let timestamp = match &s.timestamp_header {
        Some(name) => {
            let ts = header(req, &name.to_ascii_lowercase())?.trim();
            let tolerance = i64::try_from(s.timestamp_tolerance_secs).unwrap_or(i64::MAX);
            sig::check_fresh_within(ts, false, req.now, tolerance)?;
            Some(ts)
        }
        None => None,
    };
    let parts: Vec<&[u8]> = match timestamp {
        Some(ts) => vec![ts.as_bytes(), b".", req.body],
        None => vec![req.body],
    };
    let expected = mac(s.algorithm, key, &parts);
    let ok = match s.encoding {
        SignatureEncoding::Hex => sig::verify_hex(&expected, got),
        // Senders differ on padding and alphabet; the MAC decides, not the spelling.
        SignatureEncoding::Base64 => {
            let trimmed = got.trim_end_matches('=');
            let engines =
                [base64::engine::general_purpose::STANDARD_NO_PAD, base64::engine::general_purpose::URL_SAFE_NO_PAD];
            engines.iter().any(|e| e.decode(trimmed).is_ok_and(|g| sig::ct_eq(&expected, &g)))
        }
    };
    if ok { Ok(()) } else { Err(HookError::Unauthorized("signature mismatch".into())) }
}

/// The HMAC of `parts` under `key` with the source's algorithm.
pub fn mac(algorithm: SignatureAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match algorithm {
        SignatureAlgorithm::Sha1 => sig::hmac_sha1(key, parts),
        SignatureAlgorithm::Sha256 => sig::hmac_sha256(key, parts),
        SignatureAlgorithm::Sha512 => sig::hmac_sha512(key, parts),
    }
}
