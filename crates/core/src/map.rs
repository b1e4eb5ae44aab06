//! Map: sorts a payload's keys into standard fields, `custom` and `consent`.
//!
//! The source's mapping (explicit paths, joins, full-name splitting) applies first, then
//! the built-in synonym table (`Company Name`, `organization` → `company`; `Work Email` →
//! `email`; …). Every key that is neither is kept in `custom`, never dropped; only paths
//! the mapping lists under `ignore` are. The rules live in [`crate::mapping`].

pub use crate::mapping::{Decision, Mapped, MappingSpec};
use serde_json::{Map, Value};

pub fn map(payload: &Map<String, Value>, spec: Option<&MappingSpec>) -> Mapped {
    crate::mapping::map_record(payload, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn synonyms_and_unknown_keys_are_sorted_and_nothing_is_dropped() {
        let m = map(
            &obj(json!({
                "Work Email": "a@example.com",
                "Company Name": "Acme",
                "favourite_colour": "teal",
                "plan": "loose",
                "custom": {"plan": "explicit"},
                "source": "api",
                "phone": null
            })),
            None,
        );
        assert_eq!(m.standard["email"], "a@example.com");
        assert_eq!(m.standard["company"], "Acme");
        assert_eq!(m.custom["favourite_colour"], "teal");
        assert_eq!(m.custom["plan"], "explicit", "an explicit custom value wins");
        assert!(m.custom.values().any(|v| v == "loose"), "the loose one is kept too");
        assert!(!m.custom.contains_key("source"));
    }

    #[test]
    fn both_lists_of_standard_fields_agree() {
        assert_eq!(crate::mapping::STANDARD_FIELDS, crate::lead::STANDARD_FIELDS);
    }
}
