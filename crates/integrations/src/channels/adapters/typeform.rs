//! Typeform webhooks.
//!
//! Documented behaviour followed ("Webhooks: secure your webhooks", "Example payload"):
//! `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`; no timestamp is
//! signed. Payload `{event_id, event_type: "form_response", form_response: {form_id, token,
//! landed_at, submitted_at, hidden, definition: {fields}, answers[]}}`; each answer has a
//! `type` (`text, email, phone_number, url, number, boolean, date, choice, choices, …`) and
//! the value under that type's key. Hidden fields (UTMs, click ids) are in `hidden`.
//! Idempotency key `typeform:{form_response.token}` (the response's own id).
//!
//! Version 2: an answer's question title still decides which standard field it fills
//! (`What's your company name?` → `company`), but an answer that stays custom is keyed by
//! the question's stable `ref` (read from the answer, else from `definition.fields` by
//! id; the field id when there is no ref), with its title kept under
//! `custom.field_labels`. Titles change and can be whole consent statements; refs do
//! not. Version 1 keyed custom answers by title.

use super::{arr, header, ignored, item, missing, obj, one, require_post, str_of, touch_ids};
use crate::channels::standard::Standard;
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "typeform")?;
    let got = header(req, "typeform-signature")?;
    let b64 = got.strip_prefix("sha256=").ok_or_else(|| HookError::Unauthorized("bad signature format".into()))?;
    if !sig::verify_base64(&sig::hmac_sha256(key, &[req.body]), b64) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let event = body::json_object(req.body)?;
    let v = Value::Object(event.clone());
    if str_of(&v, "event_type") != Some("form_response") {
        return Ok(ignored("not a form_response event"));
    }
    let token = v
        .get("form_response")
        .and_then(|r| str_of(r, "token"))
        .or_else(|| str_of(&v, "event_id"))
        .ok_or_else(|| HookError::Malformed("form_response without token".into()))?;
    Ok(one(item(format!("typeform:{token}"), event.clone(), false)))
}

fn answer_value(a: &Value) -> Value {
    let ty = str_of(a, "type").unwrap_or_default();
    match ty {
        "choice" => a.get("choice").and_then(|c| c.get("label").or_else(|| c.get("other"))).cloned(),
        "choices" => a.get("choices").and_then(|c| c.get("labels")).cloned(),
        _ => a.get(ty).cloned(),
    }
    .unwrap_or(Value::Null)
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let resp = Value::Object(obj(payload, "form_response")?.clone());
    let fields = resp.get("definition").map(|d| arr(d, "fields")).unwrap_or_default();
    let mut s = Standard::default();
    for (i, a) in arr(&resp, "answers").iter().enumerate() {
        let value = answer_value(a);
        let field = a.get("field");
        let field_id = field.and_then(|f| str_of(f, "id"));
        let def = field_id.and_then(|id| fields.iter().find(|f| str_of(f, "id") == Some(id)));
        let title = def.and_then(|f| str_of(f, "title"));
        let reference = field.and_then(|f| str_of(f, "ref")).or_else(|| def.and_then(|f| str_of(f, "ref")));
        let Some(key) = reference.or(field_id) else {
            return Err(missing(
                format!("form_response.answers[{i}].field.id"),
                "an answer names its question by id or ref",
            ));
        };
        // Typed answers say what they are; others are matched by question title.
        let typed = match str_of(a, "type") {
            Some("email") => s.set("email", &value),
            Some("phone_number") => s.set("phone", &value),
            // A Calendly booking or a file also answers with a URL; only a website question
            // is the website.
            Some("url") if field.and_then(|f| str_of(f, "type")) == Some("website") => s.set("website", &value),
            _ => false,
        };
        if !typed {
            s.assign_labelled(title.unwrap_or(key), key, &value);
        }
    }
    if let Some(hidden) = resp.get("hidden").and_then(Value::as_object) {
        for (k, v) in hidden {
            s.assign(k, v);
        }
    }
    s.touch("provider", &json!("typeform"));
    touch_ids(&mut s, &resp, &[("form_id", "form_id"), ("token", "lead_id"), ("submitted_at", "submitted_at")]);
    for key in ["landed_at", "calculated", "variables", "ending"] {
        if let Some(v) = resp.get(key) {
            s.custom(key, v.clone());
        }
    }
    Ok(s)
}
