//! Salesforce REST, Lead sObject. With an external ID field configured every delivery
//! is an upsert, `PATCH /services/data/vXX.X/sobjects/Lead/{field}/{lead id}` (201
//! created, 200 updated; 300 when the id matches several records); without it a create,
//! `POST /services/data/vXX.X/sobjects/Lead/` (201 `{id, success, errors}`). Errors are
//! an array `[{message, errorCode, fields}]`; an expired or revoked session is 401
//! `INVALID_SESSION_ID`, on which the token is refreshed once and the call made again
//! at once. Access tokens come from the OAuth 2.0 token endpoint
//! (`/services/oauth2/token`) by the refresh-token grant, or client credentials when no
//! refresh token is configured; it refuses with 400 `{error, error_description}` (e.g.
//! `invalid_grant`), which no retry fixes.
//!
//! An erasure deletes the Lead: `DELETE …/sobjects/Lead/{id}` for each record id known,
//! and with an external ID field `DELETE …/sobjects/Lead/{field}/{lead id}` for the lead
//! and every lead merged into it (204 No Content; 404 `NOT_FOUND` or
//! `ENTITY_IS_DELETED` when it is gone already). Salesforce keeps a deleted record in its
//! Recycle Bin until the bin is emptied (15 days at most), as for any delete.

use crate::delivery::client::{Ctx, join};
use crate::delivery::config::{Destination, DestinationKind, Secret, refusal};
use crate::delivery::erased::Erasure;
use crate::delivery::http::{self, Exchange, Received, Verdict, classify_status};
use crate::delivery::map::{Mapped, apply_maps, salesforce_lead};
use crate::delivery::providers::{noted_excerpt, request_excerpt, summary};
use leadflow_core::config::ConfigError;
use leadflow_core::deliver::is_api_version;
use leadflow_core::feedback::CrmKind;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use tokio::sync::Mutex;

pub(crate) struct Target {
    /// `…/services/data/vXX.X/sobjects/Lead`
    lead_url: Url,
    token_url: Url,
    client_id: String,
    client_secret: Secret,
    refresh_token: Option<Secret>,
    external_id_field: Option<String>,
    lead_source: Option<String>,
    /// The current access token; refreshes are serialized behind this lock.
    token: Mutex<Option<Secret>>,
}

impl Target {
    /// The target of the destination at `index` (see [`refusal`]).
    pub(crate) fn new(index: usize, config: &Destination) -> Result<Self, ConfigError> {
        let DestinationKind::Salesforce {
            base_url,
            token_url,
            client_id,
            client_secret,
            refresh_token,
            api_version,
            external_id_field,
            lead_source,
        } = &config.kind
        else {
            return Err(refusal(index, "type", "not a Salesforce destination"));
        };
        if !is_api_version(api_version) {
            return Err(refusal(index, "api_version", "must look like 62.0"));
        }
        let version = api_version.trim().trim_start_matches('v');
        let parse = |key: &str, text: &str| crate::delivery::client::parse_url(index, key, text, config);
        let base = parse("base_url", base_url)?;
        let version_segment = format!("v{version}");
        Ok(Self {
            lead_url: join(&base, &["services", "data", &version_segment, "sobjects", "Lead"]),
            token_url: parse("token_url", token_url)?,
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            refresh_token: refresh_token.clone(),
            external_id_field: external_id_field.clone().filter(|f| !f.trim().is_empty()),
            lead_source: lead_source.clone(),
            token: Mutex::new(None),
        })
    }
}

impl Target {
    /// Whether an erasure has a Lead to delete here: a record id, or leadflow's own ids
    /// through the external ID field.
    pub(crate) fn erases_anything(&self, erasure: &Erasure) -> bool {
        !erasure.crm_ids.is_empty() || self.external_id_field.is_some()
    }
}

/// The access token in use, fetched when there is none yet.
async fn current_token(ctx: &Ctx<'_>, t: &Target) -> Result<Secret, Exchange> {
    let mut slot = t.token.lock().await;
    match slot.as_ref() {
        Some(token) => Ok(token.clone()),
        None => fetch_token(ctx, t).await.map(|token| slot.insert(token).clone()),
    }
}

/// A token to replace `stale`, which Salesforce refused (401).
async fn fresh_token(ctx: &Ctx<'_>, t: &Target, stale: &Secret) -> Result<Secret, Exchange> {
    let mut slot = t.token.lock().await;
    match slot.as_ref() {
        // Another delivery refreshed it meanwhile.
        Some(current) if current != stale => Ok(current.clone()),
        _ => {
            *slot = None;
            fetch_token(ctx, t).await.map(|token| slot.insert(token).clone())
        }
    }
}

pub(crate) async fn send(ctx: &Ctx<'_>, t: &Target) -> Exchange {
    let token = match current_token(ctx, t).await {
        Ok(token) => token,
        Err(failed) => return failed,
    };
    let first = send_lead(ctx, t, &token).await;
    if first.received.as_ref().is_ok_and(|r| r.status == 401) {
        let fresh = match fresh_token(ctx, t, &token).await {
            Ok(token) => token,
            Err(failed) => return failed,
        };
        return send_lead(ctx, t, &fresh).await.into_exchange(true);
    }
    first.into_exchange(false)
}

/// Deletes each of the lead's Leads, one call each, stopping at the first failure (the
/// whole delivery is tried again later; a Lead deleted already answers 404).
pub(crate) async fn erase(ctx: &Ctx<'_>, t: &Target, erasure: &Erasure) -> Exchange {
    let mut urls: Vec<Url> = erasure.crm_ids.iter().map(|id| join(&t.lead_url, &[id])).collect();
    if let Some(field) = &t.external_id_field {
        urls.extend(erasure.lead_ids.iter().map(|id| join(&t.lead_url, &[field, id])));
    }
    let mut token = match current_token(ctx, t).await {
        Ok(token) => token,
        Err(failed) => return failed,
    };
    let (max, mut refreshed, mut sent, mut last) = (ctx.settings.max_excerpt_bytes, false, Vec::new(), None);
    for url in urls {
        sent.push(request_excerpt("DELETE", url.as_str(), &[], &[], max));
        let mut call = delete_lead(ctx, &url, &token).await;
        if !refreshed && call.as_ref().is_ok_and(|r| r.status == 401) {
            token = match fresh_token(ctx, t, &token).await {
                Ok(token) => token,
                Err(failed) => return failed,
            };
            refreshed = true;
            call = delete_lead(ctx, &url, &token).await;
        }
        let excerpt = http::truncate(&sent.join("\n"), max);
        let r = match call {
            Ok(r) => r,
            Err(error) => return http::unanswered(excerpt, error),
        };
        let verdict = match r.status {
            404 => Verdict::Delivered,
            _ => verdict(&r, refreshed),
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
    last.unwrap_or_else(|| http::unanswered(String::new(), "no Lead to delete".to_owned()))
}

async fn delete_lead(ctx: &Ctx<'_>, url: &Url, token: &Secret) -> Result<Received, String> {
    let request = ctx
        .http
        .delete(url.clone())
        .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
        .header(ACCEPT, "application/json");
    http::send(request, ctx.settings.max_excerpt_bytes).await
}

struct LeadCall {
    excerpt: String,
    received: Result<Received, String>,
}

impl LeadCall {
    fn into_exchange(self, refreshed: bool) -> Exchange {
        match self.received {
            Err(error) => http::unanswered(self.excerpt, error),
            Ok(r) => Exchange {
                status: Some(r.status),
                verdict: verdict(&r, refreshed),
                request_excerpt: Some(self.excerpt),
                response_excerpt: Some(r.body),
            },
        }
    }
}

async fn send_lead(ctx: &Ctx<'_>, t: &Target, token: &Secret) -> LeadCall {
    let d = ctx.delivery;
    let (method, url) = match &t.external_id_field {
        Some(field) => (reqwest::Method::PATCH, join(&t.lead_url, &[field, &d.lead_id])),
        None => (reqwest::Method::POST, join(&t.lead_url, &[""])),
    };
    let built_in = salesforce_lead(&d.payload, t.lead_source.as_deref());
    let Mapped { record: mut fields, notes } = apply_maps(CrmKind::Salesforce, &d.payload, built_in, ctx.maps);
    fields.extend(crate::delivery::map::consent_values(&d.payload, ctx.consent_fields));
    let body = Value::Object(fields).to_string().into_bytes();
    let excerpt = noted_excerpt(method.as_str(), url.as_str(), &body, &notes, ctx);
    let request = ctx
        .http
        .request(method, url)
        .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .header("idempotency-key", &d.id)
        .body(body);
    LeadCall { excerpt, received: http::send(request, ctx.settings.max_excerpt_bytes).await }
}

fn verdict(r: &Received, refreshed: bool) -> Verdict {
    let parsed: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let codes: Vec<&str> = parsed
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e.get("errorCode").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    match r.status {
        200..=299 if parsed.get("success").and_then(Value::as_bool) == Some(false) => {
            Verdict::Permanent { reason: format!("Salesforce refused the Lead: {}", summary(&r.body)) }
        }
        200..=299 => Verdict::Delivered,
        300 => Verdict::Permanent { reason: "the external ID matches several Leads".to_owned() },
        401 if refreshed => Verdict::Permanent {
            reason: format!("unauthorized with a freshly refreshed token: {}", error_summary(&parsed, &r.body)),
        },
        // The org's API request limit: it lifts with time, so wait and try again.
        403 if codes.contains(&"REQUEST_LIMIT_EXCEEDED") => Verdict::Retryable {
            retry_after: http::retry_after(&r.headers, std::time::SystemTime::now()),
            error: format!("HTTP 403: {}", error_summary(&parsed, &r.body)),
        },
        status => classify_status(status, &r.headers, error_summary(&parsed, &r.body)),
    }
}

/// `CODE: message; CODE: message`, else the raw body.
fn error_summary(parsed: &Value, body: &str) -> String {
    let Some(errors) = parsed.as_array() else { return summary(body) };
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let code = e.get("errorCode").and_then(Value::as_str).unwrap_or("ERROR");
            Some(format!("{code}: {}", e.get("message")?.as_str()?))
        })
        .collect();
    if parts.is_empty() { summary(body) } else { summary(&parts.join("; ")) }
}

/// Gets a new access token. On failure, the exchange to report (never with the token
/// endpoint's body beyond its `error` and `error_description`).
async fn fetch_token(ctx: &Ctx<'_>, t: &Target) -> Result<Secret, Exchange> {
    let mut form: Vec<(&str, &str)> = vec![("client_id", &t.client_id), ("client_secret", t.client_secret.expose())];
    let grant = match &t.refresh_token {
        Some(refresh) => {
            form.push(("refresh_token", refresh.expose()));
            "refresh_token"
        }
        None => "client_credentials",
    };
    form.push(("grant_type", grant));
    let excerpt = format!("POST {}\n\ngrant_type={grant} (credentials withheld)", t.token_url);
    let request = ctx.http.post(t.token_url.clone()).header(ACCEPT, "application/json").form(&form);
    let r = match http::send(request, 16 * 1024).await {
        Ok(r) => r,
        Err(error) => return Err(http::unanswered(excerpt, format!("token endpoint: {error}"))),
    };
    let parsed: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    if (200..300).contains(&r.status)
        && let Some(token) = parsed.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty())
    {
        return Ok(Secret::new(token));
    }
    let field = |k: &str| parsed.get(k).and_then(Value::as_str).unwrap_or_default();
    let safe = serde_json::json!({"error": field("error"), "error_description": field("error_description")});
    let described = format!("{}: {}", field("error"), field("error_description"));
    let verdict = match r.status {
        200..=299 => {
            Verdict::Retryable { retry_after: None, error: "token endpoint: no access_token in the answer".to_owned() }
        }
        status => match classify_status(status, &r.headers, summary(&described)) {
            Verdict::Permanent { reason } => Verdict::Permanent { reason: format!("token refresh refused: {reason}") },
            Verdict::Retryable { retry_after, error } => {
                Verdict::Retryable { retry_after, error: format!("token endpoint: {error}") }
            }
            Verdict::Delivered => Verdict::Retryable { retry_after: None, error: "token endpoint".to_owned() },
        },
    };
    Err(Exchange {
        status: Some(r.status),
        verdict,
        request_excerpt: Some(excerpt),
        response_excerpt: Some(safe.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn received(status: u16, body: &str) -> Received {
        Received { status, headers: HeaderMap::new(), body: body.to_owned() }
    }

    #[test]
    fn validation_errors_are_permanent_and_named() {
        let r = received(
            400,
            r#"[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]"#,
        );
        let v = verdict(&r, false);
        assert!(
            matches!(v, Verdict::Permanent { reason } if reason == "HTTP 400: REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]")
        );
    }

    #[test]
    fn the_api_request_limit_is_waited_out() {
        let r = received(403, r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#);
        assert!(matches!(verdict(&r, false), Verdict::Retryable { .. }));
        let other = received(403, r#"[{"message":"no","errorCode":"INSUFFICIENT_ACCESS"}]"#);
        assert!(matches!(verdict(&other, false), Verdict::Permanent { .. }));
    }

    #[test]
    fn ambiguous_external_ids_and_a_second_401_are_permanent() {
        assert!(matches!(verdict(&received(300, "[]"), false), Verdict::Permanent { .. }));
        let expired = r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert!(matches!(verdict(&received(401, expired), true), Verdict::Permanent { .. }));
    }

    #[test]
    fn upserts_and_creates_are_delivered() {
        assert!(matches!(
            verdict(&received(201, r#"{"id":"00Q1","success":true,"errors":[],"created":true}"#), false),
            Verdict::Delivered
        ));
        assert!(matches!(
            verdict(&received(200, r#"{"id":"00Q1","success":true,"errors":[],"created":false}"#), false),
            Verdict::Delivered
        ));
        assert!(matches!(verdict(&received(204, ""), false), Verdict::Delivered));
    }
}
