//! Tally form webhooks.
//!
//! Documented behaviour followed (Tally "Webhooks"): when the webhook has a signing secret,
//! `Tally-Signature` is base64 HMAC-SHA256(secret, raw JSON body); no timestamp is signed.
//! Payload `{eventId, eventType: "FORM_RESPONSE", createdAt, data: {responseId,
//! submissionId, respondentId, formId, formName, createdAt, fields[{key, label, type,
//! value, options}]}}`. Field types include `INPUT_EMAIL`, `INPUT_PHONE_NUMBER`,
//! `INPUT_LINK`, `INPUT_TEXT`, `HIDDEN_FIELDS` (UTMs) and choice types whose value is a list
//! of option ids. Idempotency key `tally:{data.responseId}`.
//!
//! Version 2: a field that stays custom is keyed by its stable `key` (`question_3EKz4n`),
//! its label kept under `custom.field_labels` (version 1 keyed it by label); a form whose
//! only email-shaped answer has no email label still yields the email.

use super::{arr, header, ignored, item, obj, one, require_post, str_of, touch_ids};
use crate::channels::standard::Standard;
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "tally")?;
    let got = header(req, "tally-signature")?;
    if !sig::verify_base64(&sig::hmac_sha256(key, &[req.body]), got) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let event = body::json_object(req.body)?;
    let v = Value::Object(event.clone());
    if str_of(&v, "eventType") != Some("FORM_RESPONSE") {
        return Ok(ignored("not a FORM_RESPONSE"));
    }
    let id = v
        .get("data")
        .and_then(|d| str_of(d, "responseId"))
        .or_else(|| str_of(&v, "eventId"))
        .ok_or_else(|| HookError::Malformed("response without responseId".into()))?;
    Ok(one(item(format!("tally:{id}"), event.clone(), false)))
}

/// Choice answers are option ids; the option texts are in `options`.
fn resolve_options(field: &Value) -> Value {
    let value = field.get("value").cloned().unwrap_or(Value::Null);
    let options = arr(field, "options");
    match (&value, options.is_empty()) {
        (Value::Array(ids), false) => Value::Array(
            ids.iter()
                .map(|id| {
                    options
                        .iter()
                        .find(|o| o.get("id") == Some(id))
                        .and_then(|o| o.get("text").cloned())
                        .unwrap_or_else(|| id.clone())
                })
                .collect(),
        ),
        _ => value,
    }
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let data = Value::Object(obj(payload, "data")?.clone());
    let mut s = Standard::default();
    for f in arr(&data, "fields") {
        let key = str_of(f, "key");
        let label = str_of(f, "label").or(key).unwrap_or("unlabelled");
        let value = resolve_options(f);
        let typed = match str_of(f, "type") {
            Some("INPUT_EMAIL") => s.set("email", &value),
            Some("INPUT_PHONE_NUMBER") => s.set("phone", &value),
            _ => false,
        };
        if !typed {
            match key {
                Some(key) => s.assign_labelled(label, key, &value),
                None => s.assign(label, &value),
            }
        }
    }
    s.email_from_lone_value();
    s.touch("provider", &json!("tally"));
    touch_ids(
        &mut s,
        &data,
        &[
            ("responseId", "lead_id"),
            ("formId", "form_id"),
            ("submissionId", "submission_id"),
            ("respondentId", "respondent_id"),
        ],
    );
    if let Some(n) = data.get("formName") {
        s.custom("form_name", n.clone());
    }
    Ok(s)
}
