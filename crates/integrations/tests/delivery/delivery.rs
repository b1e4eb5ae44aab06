//! The real clients against local servers that follow each provider's documented API
//! and error shapes.

// Test helpers and fakes outside `#[test]` functions may panic too.
#![allow(clippy::unwrap_used)]

mod handoff;
mod support;

use leadflow_integrations::delivery::signature::{DEFAULT_TOLERANCE, SigningSecret, verify};
use leadflow_integrations::delivery::{
    BreakerSettings, Client, ClientSettings, Clock, DeferReason, Delivery, Destination, DestinationKind, Outcome,
    RateLimit, RetrySchedule, Secret, deliver,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{ManualClock, Response, Server};
use time::OffsetDateTime;

const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const LEAD_ID: &str = "0190f3a4-7c1e-7000-8000-00000000002a";

fn lead() -> Value {
    json!({
        "id": LEAD_ID,
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "phone": "+442071234567", "company": "Analytical Engines", "job_title": "CTO",
        "city": "London", "country": "GB", "employee_count": 120,
        "owner": "U024BE7LH", "lifecycle_stage": "new", "custom": {},
        "attribution": {"original": {"source": "webinar"}}
    })
}

fn delivery(destination: &str, payload: Value) -> Delivery {
    Delivery {
        id: "msg_01J8Z5Q4K9".to_owned(),
        destination: destination.to_owned(),
        event_type: "lead.created".to_owned(),
        lead_id: LEAD_ID.to_owned(),
        payload,
        occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        attempt: 0,
    }
}

fn webhook(name: &str, url: &str) -> Destination {
    Destination::new(
        name,
        DestinationKind::Webhook { url: url.to_owned(), secret: Secret::new(WEBHOOK_SECRET), previous_secret: None },
    )
}

fn hubspot(base_url: &str) -> Destination {
    Destination::new(
        "hubspot",
        DestinationKind::HubSpot {
            base_url: base_url.to_owned(),
            token: Secret::new("pat-na1-11111111"),
            lead_status: Some("NEW".to_owned()),
        },
    )
}

fn salesforce(base_url: &str) -> Destination {
    Destination::new(
        "salesforce",
        DestinationKind::Salesforce {
            base_url: base_url.to_owned(),
            token_url: format!("{base_url}/services/oauth2/token"),
            client_id: "3MVG9-consumer-key".to_owned(),
            client_secret: Secret::new("consumer-secret"),
            refresh_token: Some(Secret::new("refresh-token-value")),
            api_version: "62.0".to_owned(),
            external_id_field: Some("Leadflow_Id__c".to_owned()),
            lead_source: None,
        },
    )
}

fn slack(url: &str) -> Destination {
    Destination::new("slack", DestinationKind::Slack { url: Secret::new(format!("{url}/services/T000/B000/XXXX")) })
}

fn client(destinations: Vec<Destination>) -> Client {
    Client::new(ClientSettings::default(), destinations).unwrap()
}

fn client_at(clock: Arc<ManualClock>, destinations: Vec<Destination>) -> Client {
    Client::with_clock(ClientSettings::default(), destinations, clock).unwrap()
}

// ---- Standard Webhooks -------------------------------------------------------------

/// A receiver as the specification describes: it verifies the signature against its
/// own clock with the 5-minute tolerance, and is down (503) for its first `down` calls.
async fn receiver(clock: Arc<ManualClock>, down: usize) -> Server {
    let secret = SigningSecret::parse(WEBHOOK_SECRET).unwrap();
    Server::start(move |req, i| {
        let h = |n| req.header(n).unwrap_or_default();
        let now = clock.wall().unix_timestamp();
        match verify(
            &secret,
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            &req.body,
            now,
            DEFAULT_TOLERANCE,
        ) {
            Err(e) => Response::new(401, e.to_string()),
            Ok(()) if i < down => Response::new(503, "temporarily unavailable").header("retry-after", "2"),
            Ok(()) => Response::new(204, ""),
        }
    })
    .await
}

#[tokio::test]
async fn during_a_rotation_a_webhook_carries_both_signatures() {
    let clock = ManualClock::new();
    // The receiver still holds the previous secret.
    let server = receiver(clock.clone(), 0).await;
    let rotating = Destination::new(
        "hook",
        DestinationKind::Webhook {
            url: server.url.clone(),
            secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            previous_secret: Some(Secret::new(WEBHOOK_SECRET)),
        },
    );
    let client = client_at(clock.clone(), vec![rotating]);
    let sent = deliver(&client, &delivery("hook", lead())).await;
    assert!(matches!(sent.outcome, Outcome::Delivered { status: 204, .. }), "{sent:?}");
    let signature = server.requests()[0].header("webhook-signature").unwrap().to_owned();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    assert!(signature.split(' ').all(|s| s.starts_with("v1,")));

    // Once the rotation is over, a receiver on the old secret refuses.
    let done = webhook_with_secret("hook", &server.url, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let refused = deliver(&client_at(clock, vec![done]), &delivery("hook", lead())).await;
    assert!(!matches!(refused.outcome, Outcome::Delivered { .. }), "{refused:?}");
}

fn webhook_with_secret(name: &str, url: &str, secret: &str) -> Destination {
    Destination::new(
        name,
        DestinationKind::Webhook { url: url.to_owned(), secret: Secret::new(secret), previous_secret: None },
    )
}

#[tokio::test]
async fn a_retried_webhook_is_signed_afresh_and_accepted_after_the_first_signature_went_stale() {
    let clock = ManualClock::new();
    let server = receiver(clock.clone(), 1).await;
    let client = client_at(clock.clone(), vec![webhook("hook", &server.url)]);
    let mut d = delivery("hook", lead());

    let first = deliver(&client, &d).await;
    let Outcome::Retry { after, status: Some(503), .. } = first.outcome else { panic!("{first:?}") };
    assert!(after >= Duration::from_secs(2), "Retry-After is a floor: {after:?}");

    // The retry goes out more than the tolerance later.
    clock.advance(Duration::from_secs(400));
    d.attempt = 1;
    let second = deliver(&client, &d).await;
    assert!(matches!(second.outcome, Outcome::Delivered { status: 204, .. }), "{second:?}");

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    let (a, b) = (&seen[0], &seen[1]);
    assert_eq!(a.header("webhook-id"), Some("msg_01J8Z5Q4K9"));
    assert_eq!(a.header("webhook-id"), b.header("webhook-id"), "same id on every try");
    assert_eq!(a.body, b.body, "same body on every try");
    assert_ne!(a.header("webhook-timestamp"), b.header("webhook-timestamp"));
    assert_ne!(a.header("webhook-signature"), b.header("webhook-signature"));

    // Replaying the first try's signature now is refused as stale: reusing it for the
    // retry would have failed.
    let replay = leadflow_integrations::delivery::http_client()
        .build()
        .unwrap()
        .post(&server.url)
        .header("webhook-id", a.header("webhook-id").unwrap())
        .header("webhook-timestamp", a.header("webhook-timestamp").unwrap())
        .header("webhook-signature", a.header("webhook-signature").unwrap())
        .body(a.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert_eq!(replay.text().await.unwrap(), "webhook-timestamp is too old");

    let envelope = b.json();
    assert_eq!(envelope["type"], "lead.created");
    assert_eq!(envelope["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(envelope["data"]["email"], "ada@example.com");
}

#[tokio::test]
async fn a_webhook_answering_410_gone_goes_to_the_dead_letters_with_its_response() {
    let server = Server::start(|_, _| Response::new(410, "endpoint disabled")).await;
    let attempt = deliver(&client(vec![webhook("hook", &server.url)]), &delivery("hook", lead())).await;
    let Outcome::DeadLetter { status: Some(410), response_excerpt: Some(body), reason } = attempt.outcome else {
        panic!("{attempt:?}")
    };
    assert_eq!(body, "endpoint disabled");
    assert_eq!(reason, "HTTP 410: endpoint disabled");
}

#[tokio::test]
async fn the_last_scheduled_try_failing_is_a_dead_letter() {
    let server = Server::start(|_, _| Response::new(500, "boom")).await;
    let mut dest = webhook("hook", &server.url);
    dest.retry = RetrySchedule::parse(&["0s", "5s"]).unwrap();
    let client = client(vec![dest]);
    let mut d = delivery("hook", lead());
    assert!(matches!(deliver(&client, &d).await.outcome, Outcome::Retry { .. }));
    d.attempt = 1;
    let last = deliver(&client, &d).await;
    let Outcome::DeadLetter { status: Some(500), reason, .. } = last.outcome else { panic!("{last:?}") };
    assert_eq!(reason, "gave up after 2 tries; last: HTTP 500: boom");
}

#[tokio::test]
async fn a_timeout_is_retried_without_a_status() {
    let server = Server::silent().await;
    let settings = ClientSettings { timeout: Duration::from_millis(300), ..ClientSettings::default() };
    let client = Client::new(settings, vec![webhook("hook", &server.url)]).unwrap();
    let attempt = deliver(&client, &delivery("hook", lead())).await;
    let Outcome::Retry { status: None, error, .. } = attempt.outcome else { panic!("{attempt:?}") };
    assert!(error.starts_with("timed out"), "{error}");
    assert!(attempt.duration < Duration::from_secs(5));
}

// ---- HubSpot -----------------------------------------------------------------------

fn hubspot_batch_ok(req: &support::Request) -> Response {
    let input = &req.json()["inputs"][0];
    Response::json(
        200,
        json!({
            "status": "COMPLETE",
            "results": [{"id": "51", "new": true, "archived": false, "properties": input["properties"],
                         "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z"}],
            "startedAt": "2024-01-01T00:00:00Z", "completedAt": "2024-01-01T00:00:01Z"
        }),
    )
}

#[tokio::test]
async fn hubspot_429_is_retried_after_retry_after_then_the_upsert_succeeds() {
    let server = Server::start(|req, i| {
        if req.header("authorization") != Some("Bearer pat-na1-11111111") {
            return Response::json(401, json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"}));
        }
        if i == 0 {
            return Response::json(429, json!({
                "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
                "policyName": "TEN_SECONDLY_ROLLING"
            }))
            .header("retry-after", "10")
            .header("x-hubspot-ratelimit-max", "100")
            .header("x-hubspot-ratelimit-remaining", "0")
            .header("x-hubspot-ratelimit-interval-milliseconds", "10000");
        }
        hubspot_batch_ok(req)
    })
    .await;
    let mut dest = hubspot(&server.url);
    dest.retry = RetrySchedule::parse(&["0s", "1s", "1s"]).unwrap();
    let client = client(vec![dest]);
    let mut d = delivery("hubspot", lead());

    let first = deliver(&client, &d).await;
    let Outcome::Retry { after, status: Some(429), error, .. } = first.outcome else { panic!("{first:?}") };
    assert_eq!(after, Duration::from_secs(10), "Retry-After outweighs a shorter schedule step");
    assert_eq!(error, "HTTP 429: TEN_SECONDLY_ROLLING: You have reached your ten_secondly_rolling limit.");

    d.attempt = 1;
    let second = deliver(&client, &d).await;
    assert!(matches!(second.outcome, Outcome::Delivered { status: 200, .. }), "{second:?}");

    let req = &server.requests()[1];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/crm/v3/objects/contacts/batch/upsert"));
    assert_eq!(req.header("idempotency-key"), Some("msg_01J8Z5Q4K9"));
    let input = &req.json()["inputs"][0];
    assert_eq!(input["idProperty"], "email");
    assert_eq!(input["id"], "ada@example.com");
    assert_eq!(input["properties"]["firstname"], "Ada");
    assert_eq!(input["properties"]["jobtitle"], "CTO");
    assert_eq!(input["properties"]["hs_lead_status"], "NEW");
    let excerpt = second.request_excerpt.unwrap();
    assert!(!excerpt.contains("pat-na1"), "no token in the excerpt: {excerpt}");
}

#[tokio::test]
async fn hubspot_validation_error_goes_to_the_dead_letters_with_the_response() {
    let server = Server::start(|_, _| {
        Response::json(400, json!({
            "status": "error",
            "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Email address ada@example is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]",
            "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c",
            "category": "VALIDATION_ERROR"
        }))
    })
    .await;
    let attempt = deliver(&client(vec![hubspot(&server.url)]), &delivery("hubspot", lead())).await;
    let Outcome::DeadLetter { status: Some(400), response_excerpt: Some(body), reason } = attempt.outcome else {
        panic!("{attempt:?}")
    };
    assert!(reason.starts_with("HTTP 400: VALIDATION_ERROR: Property values were not valid"), "{reason}");
    assert!(body.contains("a43683b0-5717-4ceb-80b4-104d02915d8c"), "the response is kept: {body}");
}

#[tokio::test]
async fn a_lead_without_an_email_waits_as_needs_data_for_hubspot() {
    let server = Server::start(|req, _| hubspot_batch_ok(req)).await;
    let mut payload = lead();
    payload["email"] = Value::Null;
    let attempt = deliver(&client(vec![hubspot(&server.url)]), &delivery("hubspot", payload)).await;
    assert_eq!(attempt.outcome, Outcome::NeedsData { missing: vec!["email".to_owned()] });
    assert_eq!(attempt.request_excerpt, None);
    assert_eq!(server.count(), 0, "nothing was sent");
}

// ---- Salesforce --------------------------------------------------------------------

/// Token endpoint and Lead resource. Issues `tok-1`, `tok-2`, …; `expire_after` Lead
/// calls, every token issued so far stops working (INVALID_SESSION_ID).
async fn salesforce_server(expire_after: usize) -> Server {
    let issued = Arc::new(std::sync::Mutex::new(0usize));
    let lead_calls = Arc::new(std::sync::Mutex::new(0usize));
    Server::start(move |req, _| {
        if req.path == "/services/oauth2/token" {
            let form = req.text();
            let ok = form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=refresh-token-value")
                && form.contains("client_id=3MVG9-consumer-key")
                && form.contains("client_secret=consumer-secret");
            if !ok {
                return Response::json(400, json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}));
            }
            let mut n = issued.lock().unwrap();
            *n += 1;
            return Response::json(200, json!({
                "access_token": format!("tok-{n}"), "instance_url": "https://example.my.salesforce.com",
                "id": "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P",
                "token_type": "Bearer", "issued_at": "1278448832702", "signature": "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ="
            }));
        }
        let calls = {
            let mut c = lead_calls.lock().unwrap();
            *c += 1;
            *c
        };
        let current = format!("Bearer tok-{}", *issued.lock().unwrap());
        let expired_all = calls > expire_after && current == "Bearer tok-1";
        if req.header("authorization") != Some(current.as_str()) || expired_all {
            return Response::json(401, json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]));
        }
        let body = req.json();
        if body.get("Email").and_then(Value::as_str) == Some("not-an-email") {
            return Response::json(400, json!([{"message": "Email: invalid email address: not-an-email", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}]));
        }
        let created = calls == 1;
        Response::json(if created { 201 } else { 200 }, json!({"id": "00Q5e00000AbCdE", "success": true, "errors": [], "created": created}))
    })
    .await
}

#[tokio::test]
async fn salesforce_refreshes_an_expired_token_once_and_upserts_at_once() {
    let server = salesforce_server(1).await;
    let client = client(vec![salesforce(&server.url)]);
    let d = delivery("salesforce", lead());

    let first = deliver(&client, &d).await;
    assert!(matches!(first.outcome, Outcome::Delivered { status: 201, .. }), "{first:?}");

    // The session expires; the next delivery gets 401, refreshes and succeeds in one go.
    let second = deliver(&client, &d).await;
    assert!(matches!(second.outcome, Outcome::Delivered { status: 200, .. }), "{second:?}");

    let seen: Vec<(String, String)> = server.requests().iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    let upsert = format!("/services/data/v62.0/sobjects/Lead/Leadflow_Id__c/{LEAD_ID}");
    let token = "/services/oauth2/token".to_owned();
    assert_eq!(
        seen,
        [
            ("POST".to_owned(), token.clone()),
            ("PATCH".to_owned(), upsert.clone()),
            ("PATCH".to_owned(), upsert.clone()),
            ("POST".to_owned(), token),
            ("PATCH".to_owned(), upsert),
        ]
    );
    let body = server.requests()[1].json();
    assert_eq!(body["LastName"], "Lovelace");
    assert_eq!(body["Company"], "Analytical Engines");
    assert_eq!(body["NumberOfEmployees"], 120);
    assert_eq!(body["LeadSource"], "webinar");
    assert!(body.get("Leadflow_Id__c").is_none(), "the external id goes in the URL only");
    let excerpt = second.request_excerpt.unwrap_or_default();
    assert!(!excerpt.contains("tok-"), "no token in the excerpt");
}

#[tokio::test]
async fn salesforce_validation_error_goes_to_the_dead_letters_with_the_response() {
    let server = salesforce_server(usize::MAX).await;
    let mut payload = lead();
    payload["email"] = json!("not-an-email");
    let attempt = deliver(&client(vec![salesforce(&server.url)]), &delivery("salesforce", payload)).await;
    let Outcome::DeadLetter { status: Some(400), response_excerpt: Some(body), reason } = attempt.outcome else {
        panic!("{attempt:?}")
    };
    assert_eq!(reason, "HTTP 400: INVALID_EMAIL_ADDRESS: Email: invalid email address: not-an-email");
    assert!(body.contains("\"fields\":[\"Email\"]"), "{body}");
}

#[tokio::test]
async fn a_refused_refresh_token_is_a_dead_letter_without_secrets() {
    let server = salesforce_server(usize::MAX).await;
    let mut dest = salesforce(&server.url);
    if let DestinationKind::Salesforce { refresh_token, .. } = &mut dest.kind {
        *refresh_token = Some(Secret::new("revoked-refresh-token"));
    }
    let attempt = deliver(&client(vec![dest]), &delivery("salesforce", lead())).await;
    let Outcome::DeadLetter { status: Some(400), response_excerpt: Some(body), reason } = &attempt.outcome else {
        panic!("{attempt:?}")
    };
    assert_eq!(reason, "token refresh refused: HTTP 400: invalid_grant: expired access/refresh token");
    assert_eq!(body, r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#);
    let all = format!("{attempt:?}");
    for secret in ["revoked-refresh-token", "consumer-secret"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn a_lead_without_company_waits_as_needs_data_for_salesforce() {
    let server = salesforce_server(usize::MAX).await;
    let mut dest = salesforce(&server.url);
    dest.required_fields = vec!["phone".to_owned(), "custom.budget".to_owned()];
    let mut payload = lead();
    payload["company"] = json!("");
    let attempt = deliver(&client(vec![dest]), &delivery("salesforce", payload)).await;
    assert_eq!(attempt.outcome, Outcome::NeedsData { missing: vec!["company".to_owned(), "custom.budget".to_owned()] });
    assert_eq!(server.count(), 0);
}

// ---- Slack -------------------------------------------------------------------------

#[tokio::test]
async fn slack_notifies_the_owner_and_a_missing_channel_is_a_dead_letter() {
    let server = Server::start(|req, i| {
        let body = req.json();
        if body.get("text").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Response::new(400, "invalid_payload");
        }
        if i == 0 { Response::new(200, "ok") } else { Response::new(404, "channel_not_found") }
    })
    .await;
    let mut dest = slack(&server.url);
    dest.rate_limit = Some(RateLimit { per_second: 0.0, burst: 1 });
    let client = client(vec![dest]);
    let d = delivery("slack", lead());

    let sent = deliver(&client, &d).await;
    assert!(
        matches!(&sent.outcome, Outcome::Delivered { status: 200, response_excerpt } if response_excerpt == "ok"),
        "{sent:?}"
    );
    let text = server.requests()[0].json()["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("Ada Lovelace from Analytical Engines (ada@example.com)"), "{text}");
    assert!(text.contains("<@U024BE7LH>"), "{text}");
    assert!(!server.requests()[0].text().contains("+442071234567"));
    let excerpt = sent.request_excerpt.unwrap_or_default();
    assert!(!excerpt.contains("XXXX"), "the webhook URL is a credential: {excerpt}");

    let gone = deliver(&client, &d).await;
    let Outcome::DeadLetter { status: Some(404), reason, .. } = gone.outcome else { panic!("{gone:?}") };
    assert_eq!(reason, "HTTP 404: channel_not_found");
}

#[tokio::test]
async fn slack_is_held_to_its_rate_limit_by_deferring_not_waiting() {
    let server = Server::start(|_, _| Response::new(200, "ok")).await;
    let clock = ManualClock::new();
    let client = client_at(clock.clone(), vec![slack(&server.url)]);
    let d = delivery("slack", lead());
    assert!(matches!(deliver(&client, &d).await.outcome, Outcome::Delivered { .. }));
    let held = deliver(&client, &d).await;
    assert_eq!(held.outcome, Outcome::Deferred { after: Duration::from_secs(1), reason: DeferReason::RateLimited });
    clock.advance(Duration::from_secs(1));
    assert!(matches!(deliver(&client, &d).await.outcome, Outcome::Delivered { .. }));
    assert_eq!(server.count(), 2);
}

// ---- Breaker and isolation ---------------------------------------------------------

#[tokio::test]
async fn the_circuit_opens_on_a_failing_destination_without_slowing_the_others_and_recovers() {
    let healthy = std::sync::atomic::AtomicBool::new(false);
    let healthy = Arc::new(healthy);
    let flag = healthy.clone();
    let failing = Server::start(move |_, _| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Response::new(200, "")
        } else {
            Response::new(502, "bad gateway")
        }
    })
    .await;
    let other = Server::start(|_, _| Response::new(200, "")).await;
    let clock = ManualClock::new();
    let mut a = webhook("a", &failing.url);
    a.circuit_breaker = BreakerSettings { failure_threshold: 2, cool_down: Duration::from_secs(30) };
    let client = client_at(clock.clone(), vec![a, webhook("b", &other.url)]);
    let to_a = delivery("a", lead());

    for _ in 0..2 {
        assert!(matches!(deliver(&client, &to_a).await.outcome, Outcome::Retry { status: Some(502), .. }));
    }
    let held = deliver(&client, &to_a).await;
    assert_eq!(held.outcome, Outcome::Deferred { after: Duration::from_secs(30), reason: DeferReason::CircuitOpen });
    assert_eq!(failing.count(), 2, "an open circuit sends nothing");

    let to_b = deliver(&client, &delivery("b", lead())).await;
    assert!(matches!(to_b.outcome, Outcome::Delivered { .. }), "b is unaffected: {to_b:?}");

    // After the cool-down one probe goes; the destination is back, so it closes.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    assert!(matches!(deliver(&client, &to_a).await.outcome, Outcome::Delivered { .. }));
    assert!(matches!(deliver(&client, &to_a).await.outcome, Outcome::Delivered { .. }));
    assert_eq!(failing.count(), 4);
}

#[tokio::test]
async fn an_unknown_destination_is_a_dead_letter() {
    let attempt = deliver(&client(vec![]), &delivery("nowhere", lead())).await;
    assert!(matches!(attempt.outcome, Outcome::DeadLetter { status: None, .. }));
}

#[test]
fn bad_configuration_is_refused_at_start() {
    let dup = Client::new(
        ClientSettings::default(),
        vec![webhook("x", "http://127.0.0.1:1"), webhook("x", "http://127.0.0.1:2")],
    );
    // Refusals are keyed by the destination's place in the configuration, at the key
    // the file writes (a secret at the `*_env` key naming its variable).
    let refused = |destinations| Client::new(ClientSettings::default(), destinations).err().map(|e| e.key);
    assert_eq!(dup.err().map(|e| e.key).as_deref(), Some("destinations[1].name"));
    let bad_secret = Destination::new(
        "x",
        DestinationKind::Webhook {
            url: "http://127.0.0.1:1".into(),
            secret: Secret::new("whsec_!!"),
            previous_secret: None,
        },
    );
    assert_eq!(refused(vec![bad_secret]).as_deref(), Some("destinations[0].secret_env"));
    let bad_url = webhook("x", "ftp://example.com/hook");
    assert_eq!(refused(vec![webhook("ok", "http://127.0.0.1:1"), bad_url]).as_deref(), Some("destinations[1].url"));
    let mut sf = salesforce("http://127.0.0.1:1");
    if let DestinationKind::Salesforce { api_version, .. } = &mut sf.kind {
        *api_version = "latest".into();
    }
    assert_eq!(refused(vec![sf]).as_deref(), Some("destinations[0].api_version"));
}

#[test]
fn plain_http_is_refused_off_loopback_unless_the_destination_allows_it() {
    let refused = |destinations| Client::new(ClientSettings::default(), destinations).err();
    // Slack's URL comes from the environment, so only the client sees it.
    let err = refused(vec![slack("http://hooks.slack.example")]).unwrap();
    assert_eq!(err.key, "destinations[0].url_env");
    assert!(err.message.contains("destination \"slack\"") && err.message.contains("https://"), "{}", err.message);
    assert!(refused(vec![salesforce("http://login.example.com")]).is_some());
    assert!(refused(vec![hubspot("http://api.example.com")]).is_some());
    for local in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://hooks.example.com"] {
        assert!(refused(vec![webhook("hook", local)]).is_none(), "{local}");
    }
    let allowed = Destination { allow_http: true, ..webhook("hook", "http://receiver.internal/in") };
    assert!(refused(vec![allowed]).is_none());
}

// ---- Erasure -----------------------------------------------------------------------

const MERGED_ID: &str = "0190f3a4-7c1e-7000-8000-00000000001b";

/// A `lead.erased` delivery as the outbox writes it: ids only.
fn erased(destination: &str, crm_records: Value, delivered_to: Value) -> Delivery {
    let payload = json!({
        "id": LEAD_ID, "erased_at": "2024-05-01T12:00:00Z", "merged_ids": [MERGED_ID],
        "crm_records": crm_records, "delivered_to": delivered_to,
    });
    Delivery { event_type: "lead.erased".to_owned(), ..delivery(destination, payload) }
}

#[tokio::test]
async fn a_webhook_hears_of_an_erasure_as_lead_erased_with_ids_only() {
    let clock = ManualClock::new();
    let server = receiver(clock.clone(), 0).await;
    let client = client_at(clock, vec![webhook("hook", &server.url)]);
    let records = json!([{"destination": "hubspot", "crm_id": "51"}]);
    let sent = deliver(&client, &erased("hook", records.clone(), json!(["hook", "hubspot"]))).await;
    assert!(matches!(sent.outcome, Outcome::Delivered { status: 204, .. }), "signed as any event: {sent:?}");
    let envelope = server.requests()[0].json();
    assert_eq!(envelope["type"], "lead.erased");
    assert_eq!(envelope["data"]["id"], LEAD_ID);
    assert_eq!(envelope["data"]["merged_ids"], json!([MERGED_ID]));
    assert_eq!(envelope["data"]["crm_records"], records);
}

/// HubSpot's GDPR delete: 204 No Content for a contact it deletes, 404 for one it does
/// not have (any more), the usual error shape otherwise.
async fn hubspot_gdpr_server(fail_first: bool) -> Server {
    Server::start(move |req, i| {
        if req.header("authorization") != Some("Bearer pat-na1-11111111") {
            return Response::json(401, json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"}));
        }
        if (req.method.as_str(), req.path.as_str()) != ("POST", "/crm/v3/objects/contacts/gdpr-delete") {
            return Response::json(404, json!({"status": "error", "message": "unknown path", "category": "OBJECT_NOT_FOUND"}));
        }
        if fail_first && i == 0 {
            return Response::json(502, json!({"status": "error", "message": "Bad gateway", "category": "INTERNAL_ERROR"}));
        }
        match req.json()["objectId"].as_str() {
            Some("51") => Response::new(204, ""),
            _ => Response::json(404, json!({"status": "error", "message": "Object not found. objectId are usually numeric.", "category": "OBJECT_NOT_FOUND"})),
        }
    })
    .await
}

#[tokio::test]
async fn hubspot_erases_each_known_contact_by_id_with_its_gdpr_delete() {
    let server = hubspot_gdpr_server(true).await;
    let client = client(vec![hubspot(&server.url)]);
    let records = json!([
        {"destination": "hubspot", "crm_id": "51"},
        {"destination": "hubspot", "crm_id": "52"},
        {"destination": "salesforce", "crm_id": "00Q1"},
    ]);
    let mut d = erased("hubspot", records, json!(["hubspot"]));

    let first = deliver(&client, &d).await;
    assert!(matches!(first.outcome, Outcome::Retry { status: Some(502), .. }), "{first:?}");
    d.attempt = 1;
    let second = deliver(&client, &d).await;
    assert!(matches!(second.outcome, Outcome::Delivered { status: 404, .. }), "52 is gone already: {second:?}");

    let bodies: Vec<Value> = server.requests().iter().map(|r| r.json()).collect();
    assert_eq!(bodies, [json!({"objectId": "51"}), json!({"objectId": "51"}), json!({"objectId": "52"})]);
    assert!(server.requests().iter().all(|r| r.header("content-type") == Some("application/json")));
    let excerpt = second.request_excerpt.unwrap();
    assert!(excerpt.contains("gdpr-delete") && !excerpt.contains("pat-na1"), "{excerpt}");
}

#[tokio::test]
async fn hubspot_without_a_contact_id_is_not_called_and_says_whether_one_is_left_behind() {
    let server = hubspot_gdpr_server(false).await;
    let client = client(vec![hubspot(&server.url)]);
    // Never sent there: nothing to delete, and no email is needed to know it.
    let never = deliver(&client, &erased("hubspot", json!([]), json!(["hook"]))).await;
    assert!(matches!(&never.outcome, Outcome::Skipped { reason } if reason.contains("never reached")), "{never:?}");
    // Sent there, but its id was not learnt: a person must delete it.
    let lost = deliver(&client, &erased("hubspot", json!([]), json!(["hubspot"]))).await;
    let Outcome::DeadLetter { status: None, reason, .. } = &lost.outcome else { panic!("{lost:?}") };
    assert!(reason.contains("by hand"), "{reason}");
    assert_eq!(server.count(), 0, "no call, and never one by email");
}

/// Token endpoint and Lead deletes: by record id and by the external ID field; a Lead
/// not there answers 404 NOT_FOUND. The first token has expired.
async fn salesforce_delete_server() -> Server {
    let issued = Arc::new(std::sync::Mutex::new(0usize));
    Server::start(move |req, _| {
        if req.path == "/services/oauth2/token" {
            let mut n = issued.lock().unwrap();
            *n += 1;
            return Response::json(200, json!({"access_token": format!("tok-{n}"), "token_type": "Bearer"}));
        }
        if req.header("authorization") != Some(&format!("Bearer tok-{}", *issued.lock().unwrap()))
            || *issued.lock().unwrap() == 1
        {
            return Response::json(
                401,
                json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
            );
        }
        let lead = "/services/data/v62.0/sobjects/Lead/";
        match (req.method.as_str(), req.path.strip_prefix(lead)) {
            ("DELETE", Some("00Q1")) => Response::new(204, ""),
            ("DELETE", Some(p)) if p == format!("Leadflow_Id__c/{LEAD_ID}") => Response::new(204, ""),
            ("DELETE", Some(_)) => Response::json(
                404,
                json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
            ),
            _ => Response::json(400, json!([{"errorCode": "METHOD_NOT_ALLOWED", "message": "no"}])),
        }
    })
    .await
}

#[tokio::test]
async fn salesforce_deletes_the_leads_by_record_id_and_external_id_refreshing_its_token_once() {
    let server = salesforce_delete_server().await;
    let client = client(vec![salesforce(&server.url)]);
    let records = json!([{"destination": "salesforce", "crm_id": "00Q1"}, {"destination": "hubspot", "crm_id": "51"}]);
    let done = deliver(&client, &erased("salesforce", records, json!(["salesforce"]))).await;
    assert!(matches!(done.outcome, Outcome::Delivered { status: 404, .. }), "the merged lead never had one: {done:?}");
    let seen: Vec<(String, String)> = server.requests().iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    let lead = "/services/data/v62.0/sobjects/Lead";
    let token = ("POST".to_owned(), "/services/oauth2/token".to_owned());
    let delete = |p: String| ("DELETE".to_owned(), format!("{lead}/{p}"));
    assert_eq!(
        seen,
        [
            token.clone(),
            delete("00Q1".into()),
            token,
            delete("00Q1".into()),
            delete(format!("Leadflow_Id__c/{LEAD_ID}")),
            delete(format!("Leadflow_Id__c/{MERGED_ID}")),
        ]
    );
    assert!(!done.request_excerpt.unwrap_or_default().contains("tok-"), "no token in the excerpt");
}

#[tokio::test]
async fn salesforce_without_an_external_id_field_erases_by_record_id_only() {
    let server = salesforce_delete_server().await;
    let mut dest = salesforce(&server.url);
    if let DestinationKind::Salesforce { external_id_field, .. } = &mut dest.kind {
        *external_id_field = None;
    }
    let client = client(vec![dest]);
    let lost = deliver(&client, &erased("salesforce", json!([]), json!(["salesforce"]))).await;
    assert!(matches!(lost.outcome, Outcome::DeadLetter { status: None, .. }), "{lost:?}");
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn slack_hears_of_an_erasure_without_a_word_about_the_person() {
    let server = Server::start(|_, _| Response::new(200, "ok")).await;
    let client = client(vec![slack(&server.url)]);
    // Even a payload that still named the person (it never does) would not be repeated.
    let mut d = erased("slack", json!([]), json!(["slack"]));
    d.payload["first_name"] = json!("Ada");
    d.payload["email"] = json!("ada@example.com");
    assert!(matches!(deliver(&client, &d).await.outcome, Outcome::Delivered { status: 200, .. }));
    let text = server.requests()[0].text();
    assert!(text.contains(LEAD_ID) && text.contains("erased"), "{text}");
    assert!(!text.contains("Ada") && !text.contains("ada@example.com"), "{text}");
}

mod alert_notifications {
    use super::support::{Response, Server};
    use leadflow_integrations::alerts::Notifier;
    use leadflow_integrations::delivery::signature::{DEFAULT_TOLERANCE, SigningSecret, verify};
    use serde_json::json;

    fn body() -> serde_json::Value {
        json!({"type": "alert.firing", "timestamp": "2026-12-06T12:00:00Z", "data": {
            "id": "ep_1", "rule": "error_rate", "scope": "destination:crm", "state": "firing",
            "message": "9 of 10 tries failed"}})
    }

    fn notifier(webhook: &str, slack: &str) -> Notifier {
        let config = leadflow_core::config::parse(&format!(
            "[[alerts.channels]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{webhook}/alerts\"\nsecret_env = \"OPS\"\n\n\
             [[alerts.channels]]\nname = \"chat\"\ntype = \"slack\"\nurl_env = \"SLACK_URL\"\n"
        ))
        .unwrap();
        let slack = format!("{slack}/services/T/B/X");
        Notifier::new(&config.alerts, &move |var| match var {
            "OPS" => Some(super::WEBHOOK_SECRET.to_owned()),
            "SLACK_URL" => Some(slack.clone()),
            _ => None,
        })
    }

    #[tokio::test]
    async fn webhook_notifications_are_signed_and_slack_gets_a_line_a_person_reads() {
        let hook = Server::start(|_, _| Response::new(204, "")).await;
        let slack = Server::start(|_, _| Response::new(200, "ok")).await;
        let n = notifier(&hook.url, &slack.url);
        n.send("ep_1.firing.ops", "ops", &body()).await.unwrap();
        n.send("ep_1.firing.chat", "chat", &body()).await.unwrap();

        let sent = &hook.requests()[0];
        assert_eq!(sent.header("webhook-id"), Some("ep_1.firing.ops"));
        let secret = SigningSecret::parse(super::WEBHOOK_SECRET).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let checked = verify(
            &secret,
            "ep_1.firing.ops",
            sent.header("webhook-timestamp").unwrap(),
            sent.header("webhook-signature").unwrap(),
            &sent.body,
            now,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(checked, Ok(()));
        assert_eq!(sent.json()["data"]["scope"], "destination:crm");
        let posted = &slack.requests()[0];
        assert_eq!(posted.path, "/services/T/B/X");
        assert_eq!(posted.json()["text"], "Firing: error_rate on destination:crm (9 of 10 tries failed)");
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_an_outage_is_retried() {
        let refusing = Server::start(|_, _| Response::new(404, "no_service")).await;
        let down = Server::start(|_, _| Response::new(503, "")).await;
        let refused = notifier(&refusing.url, &down.url).send("x", "ops", &body()).await.unwrap_err();
        assert!(!refused.retryable, "{refused:?}");
        let later = notifier(&refusing.url, &down.url).send("x", "chat", &body()).await.unwrap_err();
        assert!(later.retryable, "{later:?}");
        let unknown = notifier(&refusing.url, &down.url).send("x", "nobody", &body()).await.unwrap_err();
        assert!(!unknown.retryable);
    }
}
