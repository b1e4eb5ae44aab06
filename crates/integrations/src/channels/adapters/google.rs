//! Google Ads lead form extensions (webhook integration).
//!
//! Documented behaviour followed ("Google Ads lead form webhook: Implementation" and
//! "Samples"): a JSON POST of `WebhookLead` — `lead_id, user_column_data[{column_name,
//! string_value, column_id}], api_version, form_id, campaign_id, google_key, is_test,
//! gcl_id, adgroup_id, creative_id`. There is no signature: the advertiser checks that
//! `google_key` equals the key configured in the form (compared here in constant time).
//! Idempotency key `google:lead:{lead_id}`. `google_key` is not kept in the stored payload.

use super::{arr, item, one, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text, normalize_key};
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "google_ads_lead_form")?;
    let mut lead = body::json_object(req.body)?;
    let given = lead.remove("google_key").and_then(|v| v.as_str().map(str::to_owned));
    match given {
        Some(g) if sig::ct_eq(key, g.as_bytes()) => {}
        Some(_) => return Err(HookError::Unauthorized("google_key mismatch".into())),
        None => return Err(HookError::Unauthorized("missing google_key".into())),
    }
    let lead_id = id_text(lead.get("lead_id")).ok_or_else(|| HookError::Malformed("missing lead_id".into()))?;
    if !lead.get("user_column_data").is_some_and(Value::is_array) {
        return Err(HookError::Malformed("missing user_column_data".into()));
    }
    let is_test = lead.get("is_test").and_then(Value::as_bool).unwrap_or(false);
    Ok(one(item(format!("google:lead:{lead_id}"), lead, is_test)))
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let root = Value::Object(payload.clone());
    let mut s = Standard::default();
    for col in arr(&root, "user_column_data") {
        let value = col.get("string_value").cloned().unwrap_or(Value::Null);
        // Column ids such as FULL_NAME, EMAIL, PHONE_NUMBER, POSTAL_CODE, WORK_EMAIL,
        // COMPANY_NAME; custom questions have no standard id and keep their label.
        match str_of(col, "column_id") {
            Some(id) if crate::channels::standard::synonym(&normalize_key(id)).is_some() || id == "FULL_NAME" => {
                s.assign(id, &value)
            }
            Some(id) => {
                let label = str_of(col, "column_name").unwrap_or(id);
                s.custom(label, value);
            }
            None => s.custom(str_of(col, "column_name").unwrap_or("unnamed_column"), value),
        }
    }
    s.touch("provider", &json!("google_ads"));
    touch_ids(
        &mut s,
        &root,
        &[
            ("lead_id", "lead_id"),
            ("form_id", "form_id"),
            ("campaign_id", "campaign_id"),
            ("adgroup_id", "adgroup_id"),
            ("creative_id", "creative_id"),
            ("asset_group_id", "asset_group_id"),
            ("gcl_id", "gclid"),
        ],
    );
    if let Some(v) = payload.get("api_version") {
        s.custom("api_version", v.clone());
    }
    s.is_test = payload.get("is_test").and_then(Value::as_bool).unwrap_or(false);
    Ok(s)
}
