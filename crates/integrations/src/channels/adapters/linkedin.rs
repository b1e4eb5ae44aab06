//! LinkedIn Lead Sync: lead notifications (webhook) and lead form responses (pull).
//!
//! Documented behaviour followed ("Webhooks: validation", "Lead Sync API"):
//! - Validation: `GET ?challengeCode=<type-4 UUID>`; answer JSON `{challengeCode,
//!   challengeResponse}` with `challengeResponse = hex(HMAC-SHA256(clientSecret,
//!   challengeCode))`. Only UUID-shaped codes are answered, so the endpoint cannot be used
//!   as a signing oracle for notification bodies.
//! - Signature: `X-LI-Signature`, hex HMAC-SHA256 with the app's clientSecret "of the POST
//!   body prefixed by `hmacsha256=`". The wording is read two ways in the wild (prefix on
//!   the signed content, or on the header value); both are accepted, each needs the secret.
//! - A notification names the lead form response (`leadGenFormResponse` URN) and
//!   `leadAction`; the answers are read with `GET /rest/leadFormResponses/{id}`
//!   (`fetch::linkedin`). Idempotency key `li:lead:{response id}`, the same for the pull
//!   source, so a lead seen both ways is stored once.
//! - Answers carry `questionId` only; the standard field of each question comes from the
//!   form's `predefinedField`, so the form (leadForms API) may be merged under `form`.

use super::{arr, header, ignored, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text, normalize_key};
use crate::channels::{Fetch, Handled, HookError, HookRequest, Item, body, sig};
use serde_json::{Map, Value, json};

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    let key = sig::require_secret(secret, "linkedin_lead_gen")?;
    if req.method.eq_ignore_ascii_case("GET") {
        let code = req
            .query_param("challengeCode")
            .ok_or_else(|| HookError::Unsupported("GET without challengeCode".into()))?;
        if !is_uuid(&code) {
            return Err(HookError::Malformed("challengeCode is not a UUID".into()));
        }
        let response = hex::encode(sig::hmac_sha256(key, &[code.as_bytes()]));
        let body = json!({"challengeCode": code, "challengeResponse": response}).to_string();
        return Ok(Handled::Challenge { status: 200, content_type: "application/json", body });
    }
    require_post(req)?;
    let got = header(req, "x-li-signature")?;
    let bare = got.strip_prefix("hmacsha256=").unwrap_or(got);
    let prefixed = sig::hmac_sha256(key, &[b"hmacsha256=", req.body]);
    let plain = sig::hmac_sha256(key, &[req.body]);
    if !(sig::verify_hex(&prefixed, bare) || sig::verify_hex(&plain, bare)) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let note = body::json_object(req.body)?;
    let v = Value::Object(note.clone());
    if let Some(action) = str_of(&v, "leadAction")
        && action != "CREATED"
    {
        return Ok(ignored(format!("lead action {action}")));
    }
    let urn = str_of(&v, "leadGenFormResponse")
        .or_else(|| str_of(&v, "leadFormResponse"))
        .ok_or_else(|| HookError::Malformed("notification without leadGenFormResponse".into()))?;
    let response_id = urn.rsplit(':').next().unwrap_or(urn).to_owned();
    if response_id.is_empty() {
        return Err(HookError::Malformed("empty lead form response id".into()));
    }
    Ok(Handled::Items(vec![Item {
        idempotency_key: format!("li:lead:{response_id}"),
        payload: note,
        fetch: Some(Fetch::LinkedinFormResponse { response_id }),
        is_test: false,
    }]))
}

/// An item for one response read by the pull source.
pub fn pull_item(response: Map<String, Value>) -> Result<Item, HookError> {
    let v = Value::Object(response.clone());
    let id = id_text(v.get("id")).ok_or_else(|| HookError::Malformed("lead form response without id".into()))?;
    let id = id.rsplit(':').next().unwrap_or(&id).to_owned();
    let is_test = v.get("testLead").and_then(Value::as_bool).unwrap_or(false);
    let mut payload = Map::new();
    Fetch::merge_into(&mut payload, response);
    Ok(Item { idempotency_key: format!("li:lead:{id}"), payload, fetch: None, is_test })
}

fn answer_value(details: Option<&Value>) -> Value {
    let Some(d) = details else { return Value::Null };
    if let Some(a) = d.get("textQuestionAnswer").and_then(|t| t.get("answer")) {
        return a.clone();
    }
    if let Some(m) = d.get("multipleChoiceAnswer") {
        return m.get("options").cloned().unwrap_or(Value::Null);
    }
    d.clone()
}

/// Needs the lead form response under `fetched`; uses the form under `form` when present.
pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let resp = payload
        .get(Fetch::FETCHED_KEY)
        .ok_or_else(|| super::missing("fetched", "the lead form response is not fetched yet"))?;
    let form = payload.get("form").cloned().unwrap_or(Value::Null);
    let questions = form.get("content").map(|c| arr(c, "questions")).unwrap_or_default();
    let mut s = Standard::default();
    for answer in resp.get("formResponse").map(|f| arr(f, "answers")).unwrap_or_default() {
        let qid = id_text(answer.get("questionId")).unwrap_or_default();
        let value = answer_value(answer.get("answerDetails"));
        let question = questions.iter().find(|q| id_text(q.get("questionId")).as_deref() == Some(qid.as_str()));
        match question.and_then(|q| str_of(q, "predefinedField")) {
            // FIRST_NAME, LAST_NAME, EMAIL, PHONE_NUMBER, COMPANY_NAME, JOB_TITLE, CITY,
            // STATE, COUNTRY, ZIP_CODE, WORK_EMAIL, ...
            Some(field) => s.assign(&normalize_key(field), &value),
            None => {
                let name = question.and_then(|q| str_of(q, "name")).map(str::to_owned);
                s.custom(&name.unwrap_or_else(|| format!("question_{qid}")), value);
            }
        }
    }
    let consents = resp.get("formResponse").map(|f| arr(f, "consentResponses")).unwrap_or_default();
    if !consents.is_empty() {
        let granted = consents.iter().all(|c| c.get("accepted").and_then(Value::as_bool) == Some(true));
        s.consent = Some(json!({
            "granted": granted,
            "source": "linkedin_lead_gen",
            "at": resp.get("submittedAt").cloned().unwrap_or(Value::Null),
            "responses": consents,
        }));
    }
    s.touch("provider", &json!("linkedin"));
    touch_ids(&mut s, resp, &[("id", "lead_id"), ("versionedLeadGenFormUrn", "form_id"), ("leadType", "lead_type")]);
    if let Some(c) = resp.get("leadMetadata").and_then(|m| m.get("sponsoredLeadMetadata")) {
        touch_ids(&mut s, c, &[("campaign", "campaign_id")]);
    }
    if let Some(owner) = resp.get("owner") {
        touch_ids(&mut s, owner, &[("sponsoredAccount", "ad_account_id"), ("organization", "organization_id")]);
    }
    if let Some(e) = resp.get("associatedEntity") {
        touch_ids(&mut s, e, &[("associatedCreative", "creative_id"), ("event", "event_id")]);
    }
    if let Some(sub) = resp.get("submitter") {
        s.custom("submitter", sub.clone());
    }
    s.is_test = resp.get("testLead").and_then(Value::as_bool).unwrap_or(false);
    Ok(s)
}
