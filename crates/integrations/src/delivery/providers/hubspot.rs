//! HubSpot CRM v3: `POST /crm/v3/objects/contacts/batch/upsert` with one input,
//! `idProperty: email`, authenticated by a private app token. The answer is the batch
//! response (`status`, `results`, and `errors`/`numErrors` when some input failed);
//! errors are `{status: "error", message, correlationId, category, errors: [...]}`, and
//! 429 adds `errorType: RATE_LIMIT` and `policyName`. A private app token cannot be
//! refreshed, so 401 goes to the dead letters.
//!
//! An erasure is `POST /crm/v3/objects/contacts/gdpr-delete` with `{"objectId": ID}` per
//! contact id known for the lead (204 No Content): HubSpot's GDPR-compliant permanent
//! delete. Never by email: that would send the address the erasure just removed (and
//! HubSpot blocklists an address it does not find). A 404 means the contact is gone
//! already, which is what was asked.

use crate::delivery::client::Ctx;
use crate::delivery::config::Secret;
use crate::delivery::erased::Erasure;
use crate::delivery::http::{self, Exchange, Verdict, classify_status, truncate};
use crate::delivery::map::{Mapped, apply_maps, hubspot_properties};
use crate::delivery::preflight::lookup;
use crate::delivery::providers::{noted_excerpt, request_excerpt, summary};
use leadflow_core::feedback::CrmKind;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

pub(crate) async fn send(ctx: &Ctx<'_>, endpoint: &Url, token: &Secret, lead_status: Option<&str>) -> Exchange {
    let d = ctx.delivery;
    let built_in = hubspot_properties(&d.payload, lead_status);
    let Mapped { record: mut properties, notes } = apply_maps(CrmKind::HubSpot, &d.payload, built_in, ctx.maps);
    properties.extend(crate::delivery::map::consent_values(&d.payload, ctx.consent_fields));
    let email = lookup(&d.payload, "email").and_then(Value::as_str).unwrap_or_default().trim();
    let body =
        json!({"inputs": [{"idProperty": "email", "id": email, "properties": properties}]}).to_string().into_bytes();
    let excerpt = noted_excerpt("POST", endpoint.as_str(), &body, &notes, ctx);
    let request = ctx
        .http
        .post(endpoint.clone())
        .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
        .header(CONTENT_TYPE, "application/json")
        .header("idempotency-key", &d.id)
        .body(body);
    match http::send(request, ctx.settings.max_excerpt_bytes).await {
        Err(error) => http::unanswered(excerpt, error),
        Ok(r) => Exchange {
            status: Some(r.status),
            verdict: verdict(r.status, &r.headers, &r.body),
            request_excerpt: Some(excerpt),
            response_excerpt: Some(r.body),
        },
    }
}

/// Deletes each of the lead's contacts, one call each, stopping at the first failure (the
/// whole delivery is tried again later; a contact deleted already answers 404).
pub(crate) async fn erase(ctx: &Ctx<'_>, url: &Url, token: &Secret, erasure: &Erasure) -> Exchange {
    let max = ctx.settings.max_excerpt_bytes;
    let mut sent = Vec::new();
    let mut last = None;
    for id in &erasure.crm_ids {
        let body = json!({"objectId": id}).to_string().into_bytes();
        sent.push(request_excerpt("POST", url.as_str(), &[], &body, max));
        let request = ctx
            .http
            .post(url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let excerpt = truncate(&sent.join("\n"), max);
        let r = match http::send(request, max).await {
            Ok(r) => r,
            Err(error) => return http::unanswered(excerpt, error),
        };
        let verdict = match r.status {
            200..=299 | 404 => Verdict::Delivered,
            status => classify_status(status, &r.headers, error_summary(&parsed(&r.body), &r.body)),
        };
        let done = matches!(verdict, Verdict::Delivered);
        let exchange = Exchange {
            status: Some(r.status),
            verdict,
            request_excerpt: Some(excerpt),
            response_excerpt: Some(r.body),
        };
        if !done {
            return exchange;
        }
        last = Some(exchange);
    }
    last.unwrap_or_else(|| http::unanswered(String::new(), "no contact to delete".to_owned()))
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn verdict(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> Verdict {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        // A batch answers 200 as a whole but may carry per-input errors (207 with
        // multi-status enabled); with a single input, any error is that lead's.
        let num_errors = parsed.get("numErrors").and_then(Value::as_u64).unwrap_or(0);
        let first_error = parsed.get("errors").and_then(|e| e.get(0));
        if num_errors > 0 || first_error.is_some() {
            let message = first_error.and_then(|e| e.get("message")).and_then(Value::as_str);
            return Verdict::Permanent {
                reason: format!("HubSpot rejected the contact: {}", summary(message.unwrap_or(body))),
            };
        }
        return Verdict::Delivered;
    }
    classify_status(status, headers, error_summary(&parsed, body))
}

/// `category: message` (or `policyName: message` for rate limits), else the raw body.
fn error_summary(parsed: &Value, body: &str) -> String {
    let field = |k: &str| parsed.get(k).and_then(Value::as_str);
    match (field("policyName").or(field("category")), field("message")) {
        (Some(kind), Some(message)) => summary(&format!("{kind}: {message}")),
        (None, Some(message)) => summary(message),
        _ => summary(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn a_batch_with_an_error_is_a_dead_letter() {
        let body = r#"{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid"}]}"#;
        let v = verdict(207, &HeaderMap::new(), body);
        assert!(matches!(v, Verdict::Permanent { reason } if reason.contains("Property values were not valid")));
    }

    #[test]
    fn a_clean_batch_is_delivered() {
        let body = r#"{"status":"COMPLETE","results":[{"id":"51","new":true,"properties":{}}]}"#;
        assert!(matches!(verdict(200, &HeaderMap::new(), body), Verdict::Delivered));
    }

    #[test]
    fn rate_limit_errors_name_the_policy() {
        let body = r#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"c0","policyName":"SECONDLY"}"#;
        let v = verdict(429, &HeaderMap::new(), body);
        assert!(
            matches!(v, Verdict::Retryable { error, .. } if error == "HTTP 429: SECONDLY: You have reached your secondly limit.")
        );
    }
}
