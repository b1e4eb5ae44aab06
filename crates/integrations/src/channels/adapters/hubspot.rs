//! HubSpot form submissions (a HubSpot workflow or app posting the form submission).
//!
//! Documented behaviour followed ("Validating requests", v3): reject when
//! `X-HubSpot-Request-Timestamp` (ms) is older than 5 minutes; signed string is
//! `method + uri + body + timestamp`, where `uri` is the full URL the request was sent to
//! with the URL-encoded characters of HubSpot's table decoded; HMAC-SHA256 with the app
//! secret, base64, in `X-HubSpot-Signature-v3`.
//! Payload: the forms submission shape `{fields: [{name, value}], context: {hutk, pageUri,
//! pageName, ipAddress}, legalConsentOptions, submittedAt}` (a list of them is accepted too),
//! or contact `properties`. HubSpot sends no submission id in this shape, so the key is
//! `hubspot:{submissionId|conversionId|eventId}` when present, else a digest of the body.

use super::{arr, digest, header, item, require_post, str_of};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Handled, HookError, HookRequest, Item, body, sig};
use serde_json::{Map, Value, json};

/// HubSpot's list of percent-encodings to decode in the URI before signing.
const DECODE: &[(&str, &str)] = &[
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
];

pub(crate) fn decode_uri(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    'outer: while !rest.is_empty() {
        for (enc, dec) in DECODE {
            if rest.len() >= 3 && rest.is_char_boundary(3) && rest[..3].eq_ignore_ascii_case(enc) {
                out.push_str(dec);
                rest = &rest[3..];
                continue 'outer;
            }
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Checks HubSpot's v3 signature and its timestamp (shared with the CRM feedback path).
pub(crate) fn verify_v3(req: &HookRequest, secret: Option<&str>, what: &str) -> Result<(), HookError> {
    let key = sig::require_secret(secret, what)?;
    let got = header(req, "x-hubspot-signature-v3")?;
    let ts = header(req, "x-hubspot-request-timestamp")?;
    sig::check_fresh(ts, true, req.now)?;
    let uri = decode_uri(req.url);
    let mac = sig::hmac_sha256(key, &[req.method.as_bytes(), uri.as_bytes(), req.body, ts.as_bytes()]);
    if !sig::verify_base64(&mac, got) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    Ok(())
}

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    verify_v3(req, secret, "hubspot_forms")?;
    let submissions: Vec<Map<String, Value>> = match body::json_value(req.body)? {
        Value::Object(m) => vec![m],
        Value::Array(a) => a.into_iter().filter_map(|v| v.as_object().cloned()).collect(),
        _ => return Err(HookError::Malformed("expected a submission object or list".into())),
    };
    if submissions.is_empty() {
        return Err(HookError::Malformed("no submissions".into()));
    }
    let many = submissions.len() > 1;
    let items: Vec<Item> = submissions
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let v = Value::Object(m.clone());
            let id = ["submissionId", "conversionId", "eventId"].iter().find_map(|k| id_text(v.get(*k)));
            let key = match id {
                Some(id) => format!("hubspot:{id}"),
                None if many => format!("hubspot:sha256:{}:{i}", digest(&[req.body])),
                None => format!("hubspot:sha256:{}", digest(&[req.body])),
            };
            item(key, m, false)
        })
        .collect();
    Ok(Handled::Items(items))
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let v = Value::Object(payload.clone());
    let mut s = Standard::default();
    let fields = arr(&v, "fields");
    let properties = v.get("properties").and_then(Value::as_object);
    if fields.is_empty() && properties.is_none() {
        return Err(HookError::Malformed("no fields or properties".into()));
    }
    // Form fields use HubSpot internal property names: firstname, lastname, email, phone,
    // company, jobtitle, website, numemployees, annualrevenue, zip, address, ...
    for f in fields {
        if let Some(name) = str_of(f, "name") {
            s.assign(name, f.get("value").unwrap_or(&Value::Null));
        }
    }
    for (name, p) in properties.into_iter().flatten() {
        let value = p.get("value").unwrap_or(p);
        s.assign(name, value);
    }
    if let Some(ctx) = v.get("context") {
        if let Some(page) = ctx.get("pageUri") {
            s.set("landing_page_url", page);
        }
        for (k, as_) in [("hutk", "hubspotutk"), ("pageId", "page_id")] {
            if let Some(x) = ctx.get(k) {
                s.touch(as_, x);
            }
        }
        for k in ["pageName", "ipAddress"] {
            if let Some(x) = ctx.get(k) {
                s.custom(k, x.clone());
            }
        }
    }
    if let Some(legal) = v.get("legalConsentOptions") {
        let granted = legal
            .get("consent")
            .and_then(|c| c.get("consentToProcess"))
            .and_then(Value::as_bool)
            .or_else(|| legal.get("legitimateInterest").map(|_| true))
            .unwrap_or(false);
        s.consent = Some(
            json!({"granted": granted, "source": "hubspot_forms", "at": v.get("submittedAt").cloned().unwrap_or(Value::Null), "options": legal}),
        );
    }
    s.touch("provider", &json!("hubspot"));
    for (k, as_) in
        [("formGuid", "form_id"), ("formId", "form_id"), ("submissionId", "lead_id"), ("submittedAt", "submitted_at")]
    {
        if let Some(x) = v.get(k) {
            s.touch(as_, x);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn uri_decoding_follows_hubspots_table_only() {
        assert_eq!(super::decode_uri("https://x.example/h%3Fa%3Db%20c%2f"), "https://x.example/h?a%3Db%20c/");
        assert_eq!(super::decode_uri("é%3"), "é%3");
    }
}
