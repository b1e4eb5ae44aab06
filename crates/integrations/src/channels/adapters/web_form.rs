//! Plain HTML form posts (`application/x-www-form-urlencoded`, `multipart/form-data` or
//! JSON), with Salesforce Web-to-Lead field names accepted: `first_name, last_name, email,
//! company, title, phone, mobile, URL, city, state, zip, country, street, industry,
//! employees, lead_source, description, 00N…` custom fields, `retURL, oid`.
//!
//! Browsers do not sign, so when a secret is configured the form action must carry
//! `?token=SECRET`. Spam (see [`crate::channels::spam`]) is reported, never stored. The key is
//! `web:{_lf_sid}` — the submission id `assets/embed.js` adds once per form fill, so a
//! double submit is one lead — else a digest of the fields without the volatile `_lf_t`.

use super::{digest, item, one, require_post};
use crate::channels::standard::{Standard, text};
use crate::channels::{Handled, HookError, HookRequest, SpamRules, body, check_spam, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>, rules: &SpamRules) -> Result<Handled, HookError> {
    require_post(req)?;
    sig::check_url_token(secret, req.query_param("token"))?;
    let form = body::form(req.body, req.content_type)?;
    if form.is_empty() {
        return Err(HookError::Malformed("empty form".into()));
    }
    if let Some(reason) = check_spam(&form, rules, req.now) {
        return Ok(Handled::Spam(reason));
    }
    let key = match form.get("_lf_sid").and_then(text) {
        Some(sid) if sid.len() <= 100 => format!("web:{sid}"),
        _ => {
            let stable: Vec<(&String, &Value)> =
                form.iter().filter(|(k, _)| k.as_str() != rules.loaded_at_field).collect();
            let bytes = serde_json::to_vec(&stable).unwrap_or_default();
            format!("web:sha256:{}", digest(&[&bytes]))
        }
    };
    Ok(one(item(key, form, false)))
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let mut s = Standard::default();
    let mut rest = Vec::new();
    for (key, value) in payload {
        match key.as_str() {
            // leadflow's own embed fields: spam signals and the submission id.
            k if k.starts_with("_lf_") => {}
            "consent" | "gdpr_consent" | "marketing_consent" | "opt_in" => {
                let granted =
                    text(value).is_some_and(|t| matches!(t.to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true"));
                s.consent = Some(json!({"granted": granted, "source": "web_form", "field": key}));
            }
            _ => rest.push((key, value)),
        }
    }
    s.assign_all(rest);
    s.touch("provider", &json!("web_form"));
    if let Some(sid) = payload.get("_lf_sid") {
        s.touch("submission_id", sid);
    }
    Ok(s)
}
