//! Map: sorts a payload's keys into standard fields, `custom` and `consent`.
//!
//! Keys that are not standard fields are kept in `custom`, never dropped. An explicit
//! `custom` object wins over a top-level key of the same name. Per-source mappings and
//! synonyms extend this stage.

use crate::error::{FieldError, FieldErrorCode};
use crate::lead::STANDARD_FIELDS;
use serde_json::{Map, Value};

/// A payload sorted by destination, values still as received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    /// Standard field name → the value as received (nulls left out).
    pub standard: Map<String, Value>,
    pub custom: Map<String, Value>,
    pub consent: Option<Value>,
}

/// Keys with a meaning to the API rather than to the lead.
const ENVELOPE_KEYS: &[&str] = &["source"];

pub fn map(payload: &Map<String, Value>) -> Result<Mapped, Vec<FieldError>> {
    let mut mapped = Mapped::default();
    let mut errors = Vec::new();
    let mut loose = Map::new();
    for (key, value) in payload {
        if value.is_null() || ENVELOPE_KEYS.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "custom" => match value {
                Value::Object(obj) => mapped.custom.extend(obj.clone()),
                _ => errors.push(FieldError::new("custom", FieldErrorCode::WrongType, "custom must be an object")),
            },
            "consent" => mapped.consent = Some(value.clone()),
            k if STANDARD_FIELDS.contains(&k) => {
                mapped.standard.insert(key.clone(), value.clone());
            }
            _ => {
                loose.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in loose {
        mapped.custom.entry(key).or_insert(value);
    }
    if errors.is_empty() { Ok(mapped) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn unknown_keys_land_in_custom_and_explicit_custom_wins() {
        let m = map(&obj(json!({
            "email": "a@example.com",
            "favourite_colour": "teal",
            "plan": "loose",
            "custom": {"plan": "explicit"},
            "source": "api",
            "phone": null
        })))
        .unwrap();
        assert_eq!(m.standard.len(), 1);
        assert_eq!(m.custom["favourite_colour"], "teal");
        assert_eq!(m.custom["plan"], "explicit");
        assert!(!m.custom.contains_key("source"));
    }

    #[test]
    fn custom_must_be_an_object() {
        let errs = map(&obj(json!({"custom": [1, 2]}))).unwrap_err();
        assert_eq!(errs[0].field, "custom");
    }
}
