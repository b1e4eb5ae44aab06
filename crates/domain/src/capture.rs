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
}

impl RawSubmission {
    pub fn new(source: SourceName, idempotency_key: Option<IdempotencyKey>, payload: Map<String, Value>) -> Self {
        Self { id: SubmissionId::new(), source, received_at: OffsetDateTime::now_utc(), idempotency_key, payload }
    }
}
