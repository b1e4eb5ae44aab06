//! Slack-compatible incoming webhook. Slack answers `200 ok`; failures carry a short
//! code in a plain-text body (`invalid_payload` and `user_not_found` with 400,
//! `action_prohibited` 403, `channel_not_found` 404, `channel_is_archived` 410,
//! `rollup_error` 500). 4xx go to the dead letters; 429 and 5xx are retried, as for any
//! destination.

use crate::delivery::client::Ctx;
use crate::delivery::http::{self, Exchange, classify_status, origin_only};
use crate::delivery::map::slack_message;
use crate::delivery::providers::{request_excerpt, summary};
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;

pub(crate) async fn send(ctx: &Ctx<'_>, url: &Url) -> Exchange {
    let d = ctx.delivery;
    let body = slack_message(&d.payload, &d.event_type, ctx.maps.owners).to_string().into_bytes();
    // The URL is the credential: only its origin is kept.
    let excerpt = request_excerpt("POST", &origin_only(url), &[], &body, ctx.settings.max_excerpt_bytes);
    let request =
        ctx.http.post(url.clone()).header(CONTENT_TYPE, "application/json").header("idempotency-key", &d.id).body(body);
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
