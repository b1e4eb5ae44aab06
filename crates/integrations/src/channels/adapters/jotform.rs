//! Jotform webhooks.
//!
//! Documented behaviour followed (Jotform "Webhooks", API "Webhooks"): a
//! `multipart/form-data` POST with `formID, submissionID, formTitle, ip, pretty` and
//! `rawRequest`, a JSON object keyed `q{N}_{fieldName}` (names are objects such as
//! `{first, last}`, phones `{full}` or `{area, phone}`, addresses `{addr_line1, city, state,
//! postal, country}`). Jotform does not sign webhooks, so when a secret is configured the
//! URL must carry `?token=SECRET`. Idempotency key `jotform:{submissionID}`.

use super::{item, one, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text, normalize_key, text};
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    sig::check_url_token(secret, req.query_param("token"))?;
    let mut form = body::form(req.body, req.content_type)?;
    let id = id_text(form.get("submissionID")).ok_or_else(|| HookError::Malformed("missing submissionID".into()))?;
    let raw = match form.get("rawRequest") {
        Some(Value::String(s)) => body::json_object(s.as_bytes())?,
        Some(Value::Object(m)) => m.clone(),
        _ => return Err(HookError::Malformed("missing rawRequest".into())),
    };
    form.insert("rawRequest".into(), Value::Object(raw));
    Ok(one(item(format!("jotform:{id}"), form, false)))
}

/// `q3_fullName3` → `fullName`; `q7_utm_source` → `utm_source`.
fn field_name(key: &str) -> &str {
    let rest = key
        .strip_prefix('q')
        .and_then(|r| r.split_once('_'))
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, r)| r)
        .unwrap_or(key);
    rest.trim_end_matches(|c: char| c.is_ascii_digit())
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let raw = payload
        .get("rawRequest")
        .and_then(Value::as_object)
        .ok_or_else(|| super::missing("rawRequest", "Jotform's submitted fields, decoded from JSON"))?;
    let mut s = Standard::default();
    for (key, value) in raw {
        let name = field_name(key);
        let norm = normalize_key(name);
        match value {
            Value::Object(o) if o.contains_key("first") || o.contains_key("last") => {
                for (k, field) in [("first", "first_name"), ("last", "last_name")] {
                    if let Some(x) = o.get(k) {
                        s.set(field, x);
                    }
                }
                s.custom(key, value.clone());
            }
            Value::Object(o) if o.contains_key("full") || o.contains_key("phone") => {
                let full = o.get("full").and_then(text).or_else(|| {
                    let parts: Vec<String> =
                        ["area", "phone"].iter().filter_map(|k| o.get(*k).and_then(text)).collect();
                    (!parts.is_empty()).then(|| parts.join(" "))
                });
                if !full.is_some_and(|f| s.set("phone", &Value::String(f))) {
                    s.custom(key, value.clone());
                }
            }
            Value::Object(o) if o.contains_key("addr_line1") || o.contains_key("postal") => {
                for (k, field) in [
                    ("addr_line1", "street"),
                    ("city", "city"),
                    ("state", "state"),
                    ("postal", "postal_code"),
                    ("country", "country"),
                ] {
                    if let Some(x) = o.get(k) {
                        s.set(field, x);
                    }
                }
                s.custom(key, value.clone());
            }
            // Jotform's own bookkeeping fields are not form answers.
            _ if matches!(
                norm.as_str(),
                "slug"
                    | "jsexecutiontracker"
                    | "submitsource"
                    | "builddate"
                    | "event_id"
                    | "path"
                    | "timetosubmit"
                    | "validatednewrequiredfieldids"
                    | "uploadserverurl"
            ) =>
            {
                s.custom(key, value.clone())
            }
            _ => {
                // Matched by its field name; kept in custom under Jotform's own key.
                let snake = camel_to_snake(name);
                s.assign(&snake, value);
                if let Some(v) = s.custom.remove(&snake) {
                    s.custom.insert(key.clone(), v);
                }
            }
        }
    }
    s.touch("provider", &json!("jotform"));
    let root = Value::Object(payload.clone());
    touch_ids(&mut s, &root, &[("submissionID", "lead_id"), ("formID", "form_id")]);
    for k in ["formTitle", "ip"] {
        if let Some(x) = payload.get(k) {
            s.custom(k, x.clone());
        }
    }
    if str_of(&root, "formTitle").is_none()
        && let Some(p) = payload.get("pretty")
    {
        s.custom("pretty", p.clone());
    }
    Ok(s)
}

/// `phoneNumber` → `phone_number`, so the shared synonyms apply.
fn camel_to_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn question_prefixes_and_suffixes_are_stripped() {
        assert_eq!(super::field_name("q3_fullName3"), "fullName");
        assert_eq!(super::field_name("q7_utm_source"), "utm_source");
        assert_eq!(super::field_name("slug"), "slug");
        assert_eq!(super::camel_to_snake("phoneNumber"), "phone_number");
    }
}
