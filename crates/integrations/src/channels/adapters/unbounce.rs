//! Unbounce form-submit webhooks.
//!
//! Documented behaviour followed (Unbounce "Using a webhook"): a form-encoded POST with
//! `page_id, page_name, page_url, variant` and `data.json` (a JSON object whose values are
//! lists of strings: the form fields plus `ip_address, page_uuid, date_submitted,
//! time_submitted`). Unbounce does not sign webhooks (it documents source-IP allow-listing),
//! so when a secret is configured the webhook URL must carry `?token=SECRET`. No submission
//! id is sent: the key is `unbounce:{page_id}:{digest of data.json}`, which a retry repeats.

use super::{digest, item, one, require_post, str_of};
use crate::channels::standard::Standard;
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    sig::check_url_token(secret, req.query_param("token"))?;
    let form = body::form(req.body, req.content_type)?;
    let raw = match form.get("data.json") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(HookError::Malformed("missing data.json".into())),
    };
    let data = body::json_object(raw.as_bytes())?;
    let page_id = str_of(&Value::Object(form.clone()), "page_id").unwrap_or_default().to_owned();
    let mut payload = Map::new();
    for k in ["page_id", "page_name", "page_url", "variant"] {
        if let Some(v) = form.get(k) {
            payload.insert(k.into(), v.clone());
        }
    }
    payload.insert("data".into(), Value::Object(data));
    let key = format!("unbounce:{page_id}:{}", digest(&[raw.as_bytes()]));
    Ok(one(item(key, payload, false)))
}

/// `["x"]` → `"x"`; longer lists stay lists.
fn unwrap_single(v: &Value) -> Value {
    match v.as_array() {
        Some(a) if a.len() == 1 => a[0].clone(),
        _ => v.clone(),
    }
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let data = payload.get("data").and_then(Value::as_object).ok_or_else(|| super::missing("data", "an object"))?;
    let mut s = Standard::default();
    let mut answers = Map::new();
    for (k, v) in data {
        match k.as_str() {
            "page_url" => {
                s.set("landing_page_url", &unwrap_single(v));
            }
            "ip_address" | "page_uuid" | "date_submitted" | "time_submitted" | "page_name" | "variant" => {
                s.custom(k, unwrap_single(v))
            }
            _ => {
                answers.insert(k.clone(), unwrap_single(v));
            }
        }
    }
    s.assign_all(&answers);
    s.email_from_lone_value();
    if let Some(url) = payload.get("page_url") {
        s.set("landing_page_url", url);
    }
    s.touch("provider", &json!("unbounce"));
    for (k, as_) in [("page_id", "page_id"), ("variant", "variant")] {
        if let Some(v) = payload.get(k) {
            s.touch(as_, v);
        }
    }
    if let Some(n) = payload.get("page_name") {
        s.custom("page_name", n.clone());
    }
    Ok(s)
}
