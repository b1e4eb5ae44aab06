//! Capture: what arrives, before anything is interpreted. A submission is stored in the
//! inbox exactly as received, so it can always be processed again.

use crate::ids::SubmissionId;
use crate::source::SourceName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// A client- or provider-chosen key that makes a resubmission return the first outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an idempotency key is 1 to 255 visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, InvalidIdempotencyKey> {
        if (1..=Self::MAX_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidIdempotencyKey)
        }
    }

    /// The key of one item of a batch sent under `self`: each item is idempotent on its own.
    pub fn for_item(&self, index: usize) -> Self {
        Self(format!("{}#{index}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> Self {
        k.0
    }
}

/// One submission as received: the durable unit of the inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSubmission {
    pub id: SubmissionId,
    pub source: SourceName,
    pub received_at: OffsetDateTime,
    pub idempotency_key: Option<IdempotencyKey>,
    pub payload: Map<String, Value>,
    /// The payload's [`fingerprint`], kept with a client's `Idempotency-Key` so a key
    /// reused for another body is refused rather than answered with the first outcome.
    /// `None` for keys leadflow derives itself (provider ids, import rows).
    pub fingerprint: Option<String>,
}

impl RawSubmission {
    /// The payload is kept as received, but for NUL characters ([`without_nul`]).
    pub fn new(source: SourceName, idempotency_key: Option<IdempotencyKey>, payload: Map<String, Value>) -> Self {
        Self {
            id: SubmissionId::new(),
            source,
            received_at: OffsetDateTime::now_utc(),
            idempotency_key,
            payload: without_nul(payload),
            fingerprint: None,
        }
    }

    /// A submission under a client's `Idempotency-Key`: its payload is fingerprinted.
    pub fn keyed_by_client(
        source: SourceName,
        idempotency_key: Option<IdempotencyKey>,
        payload: Map<String, Value>,
    ) -> Self {
        let payload = without_nul(payload);
        let fingerprint = idempotency_key.as_ref().map(|_| fingerprint(&payload));
        Self { fingerprint, ..Self::new(source, idempotency_key, payload) }
    }

    /// Whether a submission stored under the same key was sent with another body (as the
    /// IETF Idempotency-Key draft has it, a misuse refused with 422). Unknown (no
    /// fingerprint on either side) is not a mismatch: the first outcome stands.
    pub fn reuses_key_of(&self, stored_fingerprint: Option<&str>) -> bool {
        matches!((self.fingerprint.as_deref(), stored_fingerprint), (Some(new), Some(old)) if new != old)
    }
}

/// The payload without NUL characters in any string or key. PostgreSQL stores no NUL in
/// text or JSON, and no field means one, so it is the one change made to what was
/// received (other control characters are kept in `raw` and removed from the fields by
/// normalization). A payload without NUL is returned as it came, unallocated.
pub fn without_nul(payload: Map<String, Value>) -> Map<String, Value> {
    fn has(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has),
            Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has(v)),
            _ => false,
        }
    }
    fn strip(v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(s.replace('\0', "")),
            Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
            Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k.replace('\0', ""), strip(v))).collect()),
            other => other,
        }
    }
    if payload.iter().any(|(k, v)| k.contains('\0') || has(v)) {
        payload.into_iter().map(|(k, v)| (k.replace('\0', ""), strip(v))).collect()
    } else {
        payload
    }
}

/// SHA-256 of the payload's JSON, in hex. Object keys serialize in sorted order, so the
/// same body sent with its keys in another order has the same fingerprint.
pub fn fingerprint(payload: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    // Writing into a hasher cannot fail, and a JSON map always serializes.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), payload);
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_goes_from_every_string_and_key_and_nothing_else_changes() {
        let Value::Object(sent) =
            json!({"first\u{0}name": "A\u{0}da", "custom": {"notes": ["x\u{0}", 1, null]}, "ok": "as is"})
        else {
            unreachable!()
        };
        let kept = RawSubmission::new(SourceName::api(), None, sent).payload;
        assert_eq!(
            Value::Object(kept),
            json!({"firstname": "Ada", "custom": {"notes": ["x", 1, null]}, "ok": "as is"})
        );
        let Value::Object(clean) = json!({"email": "ada@example.com", "n": [1, {"a": "b"}]}) else { unreachable!() };
        assert_eq!(without_nul(clean.clone()), clean);
    }

    proptest::proptest! {
        #[test]
        fn no_nul_survives(key in "(\\x00|\\PC){0,6}", value in "(\\x00|\\PC){0,12}", nested in "(\\x00|\\PC){0,12}") {
            let payload: Map<String, Value> =
                [(key.clone(), Value::String(value)), ("n".into(), json!([nested, {key: "v\u{0}"}]))].into_iter().collect();
            let text = serde_json::to_string(&without_nul(payload)).unwrap_or_default();
            proptest::prop_assert!(!text.contains("\\u0000"), "{}", text);
        }
    }

    fn keyed(v: Value) -> RawSubmission {
        let key = IdempotencyKey::parse("k-1").ok();
        RawSubmission::keyed_by_client(SourceName::parse("api").unwrap(), key, v.as_object().unwrap().clone())
    }

    #[test]
    fn the_same_body_in_another_key_order_reuses_nothing() {
        let a = keyed(json!({"email": "a@example.com", "first_name": "Ada", "custom": {"x": 1, "y": 2}}));
        let b = keyed(json!({"custom": {"y": 2, "x": 1}, "first_name": "Ada", "email": "a@example.com"}));
        assert!(!b.reuses_key_of(a.fingerprint.as_deref()));
    }

    #[test]
    fn another_body_under_the_same_key_is_a_reuse() {
        let a = keyed(json!({"email": "a@example.com"}));
        let b = keyed(json!({"email": "b@example.com"}));
        assert!(b.reuses_key_of(a.fingerprint.as_deref()));
        // Keys leadflow derives (no fingerprint) never conflict.
        let derived = RawSubmission::new(SourceName::parse("api").unwrap(), None, Map::new());
        assert!(!derived.reuses_key_of(a.fingerprint.as_deref()));
        assert!(!b.reuses_key_of(None));
    }
}
