//! Facebook Lead Ads (Graph API webhooks, `page` object, `leadgen` field).
//!
//! Documented behaviour followed:
//! - Verification: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`; answer
//!   the challenge as plain text only when the verify token matches (Graph API Webhooks,
//!   "Getting Started").
//! - Signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`.
//! - Payload: `entry[].changes[]` with `field == "leadgen"` and `value` holding
//!   `leadgen_id, page_id, form_id, ad_id, adgroup_id, created_time` ("Webhooks for
//!   Leadgen"). The notification carries ids only; the lead's `field_data` is read from the
//!   Graph API (`fetch::facebook`). Idempotency key `fb:leadgen:{leadgen_id}`.

use super::{arr, header, ignored, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Fetch, Handled, HookError, HookRequest, Item, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>, verify_token: Option<&str>) -> Result<Handled, HookError> {
    if req.method.eq_ignore_ascii_case("GET") {
        return challenge(req, verify_token);
    }
    require_post(req)?;
    let key = sig::require_secret(secret, "facebook_lead_ads")?;
    let got = header(req, "x-hub-signature-256")?;
    let hex_sig = got.strip_prefix("sha256=").ok_or_else(|| HookError::Unauthorized("bad signature format".into()))?;
    if !sig::verify_hex(&sig::hmac_sha256(key, &[req.body]), hex_sig) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let root = body::json_value(req.body)?;
    if str_of(&root, "object") != Some("page") {
        return Ok(ignored("not a page notification"));
    }
    let mut items = Vec::new();
    for entry in arr(&root, "entry") {
        for change in arr(entry, "changes") {
            if str_of(change, "field") != Some("leadgen") {
                continue;
            }
            let Some(value) = change.get("value").and_then(Value::as_object) else {
                return Err(HookError::Malformed("leadgen change without value".into()));
            };
            let leadgen_id = id_text(value.get("leadgen_id"))
                .ok_or_else(|| HookError::Malformed("leadgen change without leadgen_id".into()))?;
            items.push(Item {
                idempotency_key: format!("fb:leadgen:{leadgen_id}"),
                payload: value.clone(),
                fetch: Some(Fetch::FacebookLead { leadgen_id }),
                is_test: false,
            });
        }
    }
    if items.is_empty() { Ok(ignored("no leadgen changes")) } else { Ok(Handled::Items(items)) }
}

fn challenge(req: &HookRequest, verify_token: Option<&str>) -> Result<Handled, HookError> {
    let expected = verify_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| HookError::Unauthorized("no verify token configured".into()))?;
    if req.query_param("hub.mode").as_deref() != Some("subscribe") {
        return Err(HookError::Unsupported("GET without hub.mode=subscribe".into()));
    }
    let token = req.query_param("hub.verify_token").unwrap_or_default();
    if !sig::ct_eq(expected.as_bytes(), token.as_bytes()) {
        return Err(HookError::Unauthorized("verify token mismatch".into()));
    }
    let challenge =
        req.query_param("hub.challenge").ok_or_else(|| HookError::Malformed("missing hub.challenge".into()))?;
    Ok(Handled::Challenge { status: 200, content_type: "text/plain", body: challenge })
}

/// Needs the Graph API lead merged under `fetched` (see [`Fetch::merge_into`]).
pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let lead = payload
        .get(Fetch::FETCHED_KEY)
        .ok_or_else(|| super::missing("fetched", "the lead is not fetched from the Graph API yet"))?;
    let mut s = Standard::default();
    for field in arr(lead, "field_data") {
        let Some(name) = str_of(field, "name") else { continue };
        let values = field.get("values").cloned().unwrap_or(Value::Null);
        // Single answers are unwrapped; multi-select answers stay a list.
        let value = match values.as_array() {
            Some(v) if v.len() == 1 => v[0].clone(),
            _ => values,
        };
        s.assign(name, &value);
    }
    let note = Value::Object(payload.clone());
    s.touch("provider", &json!("facebook"));
    touch_ids(&mut s, &note, &[("leadgen_id", "lead_id"), ("page_id", "page_id"), ("adgroup_id", "ad_id")]);
    touch_ids(
        &mut s,
        lead,
        &[
            ("id", "lead_id"),
            ("form_id", "form_id"),
            ("ad_id", "ad_id"),
            ("adset_id", "adset_id"),
            ("campaign_id", "campaign_id"),
            ("created_time", "created_time"),
            ("platform", "platform"),
        ],
    );
    touch_ids(&mut s, &note, &[("form_id", "form_id"), ("ad_id", "ad_id")]);
    for key in ["ad_name", "adset_name", "campaign_name", "is_organic", "partner_name", "retailer_item_id"] {
        if let Some(v) = lead.get(key) {
            s.custom(key, v.clone());
        }
    }
    // Custom disclaimer checkboxes are the lead's consent answers.
    let responses = arr(lead, "custom_disclaimer_responses");
    if !responses.is_empty() {
        let granted = responses
            .iter()
            .all(|r| matches!(r.get("is_checked"), Some(Value::Bool(true))) || str_of(r, "is_checked") == Some("1"));
        s.consent = Some(json!({
            "granted": granted,
            "at": lead.get("created_time").cloned().unwrap_or(Value::Null),
            "source": "facebook_lead_ads",
            "responses": responses,
        }));
    }
    Ok(s)
}
