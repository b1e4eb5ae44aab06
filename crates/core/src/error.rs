//! Field errors: what a caller gets back, one per problem, so a form can show all of them
//! at once.

use serde::{Deserialize, Serialize};

/// Stable codes clients can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorCode {
    WrongType,
    InvalidEmail,
    InvalidTimestamp,
    TooLong,
    TooMany,
    Required,
    UnknownSource,
    /// A value of the right type that is not acceptable (an empty name, a bad domain).
    Invalid,
    UnknownField,
    /// A web-form post judged to be spam (honeypot, too fast, links in names): kept in the
    /// quarantine to be inspected, never a lead unless replayed.
    Spam,
    /// A provider payload the source's adapter could not read.
    Unreadable,
    /// The `Idempotency-Key` was used before for another body.
    IdempotencyKeyReused,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's path in the submitted JSON, e.g. `email` or `consent.at`. For a
    /// provider payload the adapter could not read (`unreadable`), the path in the
    /// provider's payload that was missing, e.g. `data.item.contacts.contacts[0].email`.
    pub field: String,
    pub code: FieldErrorCode,
    pub message: String,
    /// The adapter and its parser version that read the payload (`typeform/2`), on errors
    /// about a provider payload; a replay after an adapter fix shows a newer version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
}

impl FieldErrorCode {
    /// The code as clients see it in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::WrongType => "wrong_type",
            Self::InvalidEmail => "invalid_email",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::TooLong => "too_long",
            Self::TooMany => "too_many",
            Self::Required => "required",
            Self::UnknownSource => "unknown_source",
            Self::Invalid => "invalid",
            Self::UnknownField => "unknown_field",
            Self::Spam => "spam",
            Self::Unreadable => "unreadable",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: FieldErrorCode, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into(), adapter: None }
    }

    /// The same error, naming the adapter version that produced it.
    pub fn from_adapter(mut self, version: impl Into<String>) -> Self {
        self.adapter = Some(version.into());
        self
    }
}
