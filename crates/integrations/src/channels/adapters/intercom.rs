//! Intercom webhooks (contacts and new conversations).
//!
//! Documented behaviour followed (Intercom "Webhooks"): `X-Hub-Signature:
//! sha1=<hex HMAC-SHA1(app client_secret, raw body)>`; no timestamp is signed. Notification
//! `{type: "notification_event", id, topic, created_at, data: {item}}`. Leads come from
//! `contact.user.created`, `contact.lead.created`, `contact.created` (a contact item) and
//! `conversation.user.created` (a conversation whose `source.author` is the person);
//! `ping` and every other topic are acknowledged and ignored. Idempotency key
//! `intercom:{notification id}`.

use super::{header, ignored, item, one, require_post, str_of};
use crate::channels::standard::Standard;
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

const LEAD_TOPICS: &[&str] =
    &["contact.user.created", "contact.lead.created", "contact.created", "user.created", "conversation.user.created"];

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "intercom")?;
    let got = header(req, "x-hub-signature")?;
    let hex_sig = got.strip_prefix("sha1=").ok_or_else(|| HookError::Unauthorized("bad signature format".into()))?;
    if !sig::verify_hex(&sig::hmac_sha1(key, &[req.body]), hex_sig) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let note = body::json_object(req.body)?;
    let v = Value::Object(note.clone());
    let topic = str_of(&v, "topic").ok_or_else(|| HookError::Malformed("missing topic".into()))?;
    if !LEAD_TOPICS.contains(&topic) {
        return Ok(ignored(format!("topic {topic} is not a lead")));
    }
    let id = str_of(&v, "id").ok_or_else(|| HookError::Malformed("notification without id".into()))?;
    if v.get("data").and_then(|d| d.get("item")).is_none() {
        return Err(HookError::Malformed("notification without data.item".into()));
    }
    Ok(one(item(format!("intercom:{id}"), note.clone(), false)))
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let v = Value::Object(payload.clone());
    let it =
        v.get("data").and_then(|d| d.get("item")).ok_or_else(|| HookError::Malformed("missing data.item".into()))?;
    // For a conversation the person is the author of its first message.
    let person = match str_of(it, "type") {
        Some("conversation") => it.get("source").and_then(|s| s.get("author")).unwrap_or(&Value::Null),
        _ => it,
    };
    let mut s = Standard::default();
    for k in ["email", "phone", "external_id"] {
        if let Some(x) = person.get(k) {
            s.set(k, x);
        }
    }
    if let Some(n) = person.get("name") {
        s.set_full_name("name", n);
    }
    if let Some(loc) = person.get("location").or_else(|| person.get("location_data")) {
        for (k, field) in [
            ("country", "country"),
            ("region", "state"),
            ("city", "city"),
            ("region_name", "state"),
            ("city_name", "city"),
            ("country_name", "country"),
        ] {
            if let Some(x) = loc.get(k) {
                s.set(field, x);
            }
        }
    }
    for k in ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "referrer"] {
        if let Some(x) = person.get(k) {
            s.assign(k, x);
        }
    }
    if let Some(attrs) = person.get("custom_attributes").and_then(Value::as_object) {
        s.assign_all(attrs);
    }
    if let Some(companies) = person.get("companies") {
        s.custom("companies", companies.clone());
    }
    if str_of(it, "type") == Some("conversation")
        && let Some(body) = it.get("source").and_then(|s| s.get("body"))
    {
        s.custom("first_message", body.clone());
    }
    s.touch("provider", &json!("intercom"));
    if let Some(id) = person.get("id") {
        s.touch("lead_id", id);
    }
    if let Some(topic) = v.get("topic") {
        s.custom("topic", topic.clone());
    }
    if let Some(role) = person.get("role").or_else(|| person.get("type")) {
        s.custom("intercom_role", role.clone());
    }
    Ok(s)
}
