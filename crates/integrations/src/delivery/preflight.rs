//! Pre-flight validation: before a destination is called, the lead must carry every
//! field that destination needs. A lead that lacks one is not sent to fail at the CRM;
//! it waits, visibly, as "needs data" until it is completed.

use serde_json::Value;

/// The required fields missing from `lead` (the lead JSON), in the order asked. A field
/// is a top-level name or a dotted path (`custom.budget`); null, an empty or
/// whitespace-only string, an empty array or object all count as missing.
pub fn missing_fields<S: AsRef<str>>(lead: &Value, required: &[S]) -> Vec<String> {
    required.iter().map(AsRef::as_ref).filter(|path| !is_present(lookup(lead, path))).map(str::to_owned).collect()
}

/// The consent purposes of `required` that `lead` (the lead JSON) does not grant now.
pub fn missing_consent(lead: &Value, required: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|purpose| {
            lead.get("consent")
                .and_then(|c| c.get("purposes"))
                .and_then(|p| p.get(purpose.as_str()))
                .and_then(|s| s.get("status"))
                .and_then(Value::as_str)
                != Some("granted")
        })
        .cloned()
        .collect()
}

pub(crate) fn lookup<'a>(lead: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(lead, |v, key| v.get(key))
}

fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(_) | Value::Number(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn consent_is_missing_unless_the_purpose_is_granted_now() {
        let lead = json!({"consent": {"purposes": {
            "sales_contact": {"status": "granted"}, "phone": {"status": "withdrawn"}}}});
        let required = ["sales_contact".to_owned(), "phone".to_owned(), "profiling".to_owned()];
        assert_eq!(missing_consent(&lead, &required), ["phone", "profiling"]);
        assert_eq!(missing_consent(&json!({}), &required[..1]), ["sales_contact"]);
        assert!(missing_consent(&json!({}), &[]).is_empty());
    }

    #[test]
    fn reports_absent_null_and_blank_fields_in_the_order_asked() {
        let lead = json!({"email": "a@example.com", "company": "  ", "last_name": null, "phone": "+44"});
        assert_eq!(
            missing_fields(&lead, &["last_name", "email", "company", "city", "phone"]),
            ["last_name", "company", "city"]
        );
    }

    #[test]
    fn follows_dotted_paths_into_custom_fields() {
        let lead = json!({"custom": {"budget": 5000, "notes": ""}, "employee_count": 0});
        assert_eq!(
            missing_fields(&lead, &["custom.budget", "custom.notes", "custom.x.y", "employee_count"]),
            ["custom.notes", "custom.x.y"]
        );
    }

    #[test]
    fn nothing_required_means_nothing_missing() {
        assert!(missing_fields::<&str>(&json!({}), &[]).is_empty());
    }
}
