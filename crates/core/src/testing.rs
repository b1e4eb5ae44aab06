//! Helpers for the core's unit tests.

use crate::ids::SubmissionId;
use crate::lead::Lead;
use crate::pipeline::{self, SubmissionMeta};
use crate::source::SourceName;
use time::OffsetDateTime;

/// A new lead with this email and first name Ada, as capture makes it.
pub(crate) fn lead(email: &str) -> Lead {
    lead_from(serde_json::json!({"email": email, "first_name": "Ada"}))
}

/// A new lead of this payload, as capture makes it.
pub(crate) fn lead_from(payload: serde_json::Value) -> Lead {
    let candidate =
        pipeline::prepare(payload.as_object().unwrap(), &crate::config::SourceConfig::api(), &Default::default())
            .unwrap();
    let meta = SubmissionMeta {
        id: SubmissionId::new(),
        source: SourceName::parse("api").unwrap(),
        received_at: OffsetDateTime::now_utc(),
    };
    pipeline::resolve_and_settle(candidate, &meta, vec![], &Default::default(), OffsetDateTime::now_utc()).lead
}
