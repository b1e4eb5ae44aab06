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

/// The consent box as the ledger reads it. A box naming its purposes (the hidden
/// `consent_purposes`, comma-separated) grants or denies each of them; a plain box is
/// today's `granted`, which speaks for email marketing. The page and the policy version
/// go with it.
fn consent_box(ticked: bool, purposes: Option<&str>, policy: Option<String>, page: Option<String>) -> Value {
    let mut consent = Map::new();
    let named: Vec<&str> = purposes.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if named.is_empty() {
        consent.insert("granted".into(), Value::Bool(ticked));
        consent.insert("source".into(), json!("web_form"));
    } else {
        let status = if ticked { "granted" } else { "denied" };
        consent.insert("purposes".into(), named.iter().map(|p| ((*p).to_owned(), json!(status))).collect());
    }
    if let Some(v) = policy {
        consent.insert("policy_version".into(), Value::String(v));
    }
    if let Some(url) = page {
        consent.insert("page_url".into(), Value::String(url));
    }
    Value::Object(consent)
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let mut s = Standard::default();
    let mut rest = Vec::new();
    let mut box_ticked: Option<bool> = None;
    let (mut policy, mut purposes, mut page) = (None, None, None);
    for (key, value) in payload {
        match key.as_str() {
            // leadflow's own embed fields: spam signals and the submission id.
            k if k.starts_with("_lf_") => {}
            "consent" | "gdpr_consent" | "marketing_consent" | "opt_in" => {
                let ticked =
                    text(value).is_some_and(|t| matches!(t.to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true"));
                box_ticked = Some(box_ticked.unwrap_or(false) || ticked);
            }
            "consent_policy_version" => policy = text(value),
            "consent_purposes" => purposes = text(value),
            "consent_page_url" => page = text(value),
            _ => rest.push((key, value)),
        }
    }
    if let Some(ticked) = box_ticked {
        s.consent = Some(consent_box(ticked, purposes.as_deref(), policy, page));
    }
    s.assign_all(rest);
    s.email_from_lone_value();
    s.touch("provider", &json!("web_form"));
    if let Some(sid) = payload.get("_lf_sid") {
        s.touch("submission_id", sid);
    }
    Ok(s)
}
