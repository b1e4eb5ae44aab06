//! Validate: the checks a normalized lead must pass before it may be stored.
//!
//! A lead must have the fields its source requires (by default an email or a phone), and
//! no value may exceed the lengths a CRM would accept. API callers get every error at once.

use crate::error::{FieldError, FieldErrorCode};
use crate::lead::STANDARD_FIELDS;
use crate::normalize::Candidate;

/// Longer than any real name, title or URL a form produces; short enough that a column in
/// every CRM holds it.
pub const MAX_TEXT_LEN: usize = 1024;
pub const MAX_CUSTOM_FIELDS: usize = 200;
/// Custom field names are shortened to this length when mapped (see
/// [`crate::mapping::fit_custom_key`]): a long name is never a reason to refuse a lead.
pub use crate::mapping::MAX_CUSTOM_KEY_LEN;

pub fn validate(c: &Candidate, required: &[Vec<String>]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for alternatives in required {
        if alternatives.iter().all(|f| c.fields.text(f).is_none()) {
            let first = alternatives.first().cloned().unwrap_or_default();
            let message = match alternatives.as_slice() {
                [one] => format!("{one} is required"),
                many => format!("one of {} is required", many.join(", ")),
            };
            errors.push(FieldError::new(first, FieldErrorCode::Required, message));
        }
    }
    for field in STANDARD_FIELDS {
        if c.fields.text(field).is_some_and(|t| t.chars().count() > MAX_TEXT_LEN) {
            errors.push(FieldError::new(
                *field,
                FieldErrorCode::TooLong,
                format!("{field} is longer than {MAX_TEXT_LEN} characters"),
            ));
        }
    }
    if c.custom.len() > MAX_CUSTOM_FIELDS {
        errors.push(FieldError::new(
            "custom",
            FieldErrorCode::TooMany,
            format!("at most {MAX_CUSTOM_FIELDS} custom fields"),
        ));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;

    #[test]
    fn by_default_a_lead_needs_an_email_or_a_phone() {
        let required = crate::config::default_required();
        let mut c = Candidate::default();
        assert_eq!(validate(&c, &required).unwrap_err()[0].code, FieldErrorCode::Required);
        c.fields.phone = Some("+4930123456".into());
        assert!(validate(&c, &required).is_ok());
    }

    #[test]
    fn a_source_can_require_more() {
        let required = vec![vec!["email".to_owned()], vec!["company".to_owned(), "website".to_owned()]];
        let mut c = Candidate::default();
        c.fields.email = Some(Email::parse("a@example.com").unwrap());
        let errs = validate(&c, &required).unwrap_err();
        assert_eq!(
            (errs[0].field.as_str(), errs[0].message.as_str()),
            ("company", "one of company, website is required")
        );
        c.fields.website = Some("example.com".into());
        assert!(validate(&c, &required).is_ok());
    }

    #[test]
    fn a_long_question_title_in_custom_does_not_refuse_the_lead() {
        let mut payload = serde_json::Map::new();
        payload.insert("email".into(), "a@example.com".into());
        payload.insert("x".repeat(MAX_CUSTOM_KEY_LEN * 3), true.into());
        let c = crate::pipeline::prepare(
            &payload,
            &crate::config::SourceConfig::api(),
            &crate::config::Picklists::default(),
        )
        .unwrap();
        assert_eq!(c.custom.len(), 1);
        assert!(c.custom.keys().all(|k| k.chars().count() <= MAX_CUSTOM_KEY_LEN));
    }

    #[test]
    fn overlong_values_are_refused() {
        let mut c = Candidate::default();
        c.fields.email = Some(Email::parse("a@example.com").unwrap());
        c.fields.company = Some("x".repeat(MAX_TEXT_LEN + 1));
        let errs = validate(&c, &crate::config::default_required()).unwrap_err();
        assert_eq!((errs[0].field.as_str(), errs[0].code), ("company", FieldErrorCode::TooLong));
    }
}
