//! Generic webhook per the Standard Webhooks specification: the body is the event
//! envelope `{type, timestamp, data}`, the same on every try; each try carries the same
//! `webhook-id` (the delivery id) and a fresh `webhook-timestamp` and signature, since
//! receivers reject stale signatures.

use crate::delivery::client::Ctx;
use crate::delivery::http::{self, Exchange, classify_status, origin_only};
use crate::delivery::providers::{request_excerpt, summary};
use crate::delivery::signature::{SigningSecret, sign};
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

pub(crate) async fn send(
    ctx: &Ctx<'_>,
    url: &Url,
    secret: &SigningSecret,
    previous: Option<&SigningSecret>,
) -> Exchange {
    let d = ctx.delivery;
    let body = json!({
        "type": d.event_type,
        "timestamp": d.occurred_at.format(&Rfc3339).unwrap_or_default(),
        "data": d.payload,
    })
    .to_string()
    .into_bytes();
    // Signed at send time: a retry is a new timestamp and a new signature.
    let timestamp = ctx.clock.wall().unix_timestamp();
    // During a rotation both signatures go, space-separated as the specification allows.
    let mut signature = sign(secret, &d.id, timestamp, &body);
    if let Some(previous) = previous {
        signature = format!("{signature} {}", sign(previous, &d.id, timestamp, &body));
    }
    let ts = timestamp.to_string();
    let excerpt = request_excerpt(
        "POST",
        &origin_only(url),
        &[("webhook-id", &d.id), ("webhook-timestamp", &ts)],
        &body,
        ctx.settings.max_excerpt_bytes,
    );
    let request = ctx
        .http
        .post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", &ts)
        .header("webhook-signature", signature)
        .header("idempotency-key", &d.id)
        .body(body);
    match http::send(request, ctx.settings.max_excerpt_bytes).await {
        Err(error) => http::unanswered(excerpt, error),
        Ok(r) => Exchange {
            status: Some(r.status),
            verdict: classify_status(r.status, &r.headers, summary(&r.body)),
            request_excerpt: Some(excerpt),
            response_excerpt: Some(r.body),
        },
    }
}
