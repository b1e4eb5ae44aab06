//! Webflow `form_submission` webhooks (Data API v2, webhooks created by an OAuth app).
//!
//! Documented behaviour followed ("Working with webhooks", "Verifying requests"):
//! `x-webflow-timestamp` is in milliseconds and older than 5 minutes is a replay;
//! `x-webflow-signature` is hex HMAC-SHA256(client secret, "{timestamp}:{raw body}").
//! Webhooks made in the site dashboard carry no signature and are refused here (configure
//! them through the API). Payload `{triggerType: "form_submission", payload: {name,
//! siteId, data: {label: value}, submittedAt, id, formId, pageId, publishedPath}}`.
//! Idempotency key `webflow:{payload.id}` (the submission id), else a digest of the body.
//!
//! `data` is keyed by the field's label in the Designer, which Webflow numbers when a form
//! repeats one (`Email 2`, `Name 3`). Version 2: numbered and decorated labels (`Your
//! Email *`, `E-mail address:`) match their field, the first of several winning and the
//! others staying custom; when no label says email, a lone email-shaped value is the
//! email; a label too long to be a key is shortened, its full text kept as a label.

use super::{digest, header, ignored, item, missing, obj, one, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "webflow")?;
    let got = header(req, "x-webflow-signature")?;
    let ts = header(req, "x-webflow-timestamp")?;
    sig::check_fresh(ts, true, req.now)?;
    if !sig::verify_hex(&sig::hmac_sha256(key, &[ts.as_bytes(), b":", req.body]), got) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let event = body::json_object(req.body)?;
    let v = Value::Object(event.clone());
    if str_of(&v, "triggerType") != Some("form_submission") {
        return Ok(ignored("not a form_submission"));
    }
    let sub = v.get("payload").ok_or_else(|| HookError::Malformed("missing payload".into()))?;
    if !sub.get("data").is_some_and(Value::is_object) {
        return Err(HookError::Malformed("submission without data".into()));
    }
    let key = match id_text(sub.get("id")) {
        Some(id) => format!("webflow:{id}"),
        None => format!("webflow:sha256:{}", digest(&[req.body])),
    };
    Ok(one(item(key, event.clone(), false)))
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let sub = Value::Object(obj(payload, "payload")?.clone());
    let data = sub.get("data").and_then(Value::as_object).ok_or_else(|| missing("payload.data", "an object"))?;
    let mut s = Standard::default();
    s.assign_all(data);
    s.email_from_lone_value();
    s.touch("provider", &json!("webflow"));
    touch_ids(
        &mut s,
        &sub,
        &[
            ("id", "lead_id"),
            ("formId", "form_id"),
            ("siteId", "site_id"),
            ("pageId", "page_id"),
            ("submittedAt", "submitted_at"),
        ],
    );
    for k in ["name", "publishedPath", "formElementId", "schema"] {
        if let Some(x) = sub.get(k) {
            s.custom(if k == "name" { "form_name" } else { k }, x.clone());
        }
    }
    Ok(s)
}
