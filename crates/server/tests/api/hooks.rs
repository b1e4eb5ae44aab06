//! Provider webhooks and web forms on `/v1/hooks/{source}`.

use crate::{TestApp, problem, spawn_app_with};
use axum::extract::Path;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use leadflow_core::config::{Adapter, Config, Mode, SourceConfig};
use serde_json::{Value, json};
use sha2::Sha256;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "test-signing-secret";

fn source(name: &str, adapter: Adapter) -> SourceConfig {
    SourceConfig { name: crate::source(name), adapter, ..SourceConfig::api() }
}

fn signed_source(name: &str, adapter: Adapter) -> SourceConfig {
    SourceConfig { secret_env: Some("TEST_SECRET".into()), ..source(name, adapter) }
}

fn web_source(name: &str) -> SourceConfig {
    SourceConfig {
        allowed_origins: vec!["https://www.example.com".into()],
        min_submit_secs: Some(0),
        ..source(name, Adapter::WebForm)
    }
}

async fn app_with(sources: Vec<SourceConfig>) -> TestApp {
    let mut config = Config::default();
    config.sources.extend(sources);
    spawn_app_with(config).await
}

fn mac(parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

fn calendly_body(invitee: &str) -> Vec<u8> {
    json!({"created_at": "2023-11-14T18:45:52.000000Z", "event": "invitee.created", "payload": {
        "uri": format!("https://api.calendly.com/scheduled_events/GBGB/invitees/{invitee}"),
        "email": format!("{invitee}@example.com"), "name": "John Doe",
        "text_reminder_number": "+1 404-555-1234", "timezone": "America/New_York",
        "questions_and_answers": [{"question": "Company", "answer": "Acme", "position": 0}],
        "tracking": {"utm_campaign": "spring", "utm_source": "google", "utm_medium": "cpc"}}})
    .to_string()
    .into_bytes()
}

async fn post_calendly(app: &TestApp, path: &str, body: &[u8], at: i64, tamper: bool) -> reqwest::Response {
    let t = at.to_string();
    let sig = mac(&[t.as_bytes(), b".", body]);
    let mut body = body.to_vec();
    if tamper {
        body.extend_from_slice(b" ");
    }
    app.http
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("calendly-webhook-signature", format!("t={t},v1={sig}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Polls until `check` answers, or fails after a bounded wait (background work has no
/// completion signal a test can await).
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, check: impl Fn() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leads_by_email(app: &TestApp, email: &str) -> Vec<Value> {
    let body: Value = app.get(&format!("/v1/leads?email={email}")).await.json().await.unwrap();
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_signed_calendly_invitee_becomes_a_lead_and_a_retry_is_the_same_lead() {
    let app = app_with(vec![signed_source("calendly", Adapter::Calendly)]).await;
    let body = calendly_body("ada");
    let r = post_calendly(&app, "/v1/hooks/calendly", &body, now(), false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": 1, "created": 1}));
    let leads = leads_by_email(&app, "ada%40example.com").await;
    assert_eq!(leads.len(), 1);
    let lead = &leads[0];
    assert_eq!((lead["first_name"].as_str(), lead["last_name"].as_str()), (Some("John"), Some("Doe")));
    assert_eq!(lead["phone"], "+14045551234");
    assert_eq!(lead["attribution"]["original"]["source"], "calendly");
    assert_eq!(lead["attribution"]["original"]["utm_campaign"], "spring");

    let again = post_calendly(&app, "/v1/hooks/calendly", &body, now(), false).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.lead_count().await, 1, "a provider's retry is not a second lead");
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_malformed_and_oversized_bodies_are_problems() {
    let mut config = Config::default();
    config.server.body_limit_bytes = 4096;
    config.sources.push(signed_source("calendly", Adapter::Calendly));
    config.sources.push(source("api-json", Adapter::Json));
    let app = spawn_app_with(config).await;
    let body = calendly_body("bob");

    let tampered = problem(post_calendly(&app, "/v1/hooks/calendly", &body, now(), true).await, 401).await;
    assert_eq!(tampered["code"], "hook_unauthorized");
    let stale = problem(post_calendly(&app, "/v1/hooks/calendly", &body, now() - 3600, false).await, 401).await;
    assert_eq!(stale["code"], "hook_stale");
    let malformed = problem(post_calendly(&app, "/v1/hooks/calendly", b"{not json", now(), false).await, 400).await;
    assert_eq!(malformed["code"], "hook_malformed");
    let big = vec![b' '; 8192];
    let oversized = problem(post_calendly(&app, "/v1/hooks/calendly", &big, now(), false).await, 413).await;
    assert_eq!(oversized["code"], "payload_too_large");
    let unknown = problem(post_calendly(&app, "/v1/hooks/nobody", &body, now(), false).await, 404).await;
    assert_eq!(unknown["code"], "not_found");
    let json_source = problem(post_calendly(&app, "/v1/hooks/api-json", &body, now(), false).await, 400).await;
    assert_eq!(json_source["code"], "not_a_webhook_source");
    let get = problem(app.http.get(app.url("/v1/hooks/calendly")).send().await.unwrap(), 405).await;
    assert_eq!(get["code"], "hook_unsupported");
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn a_batch_source_settles_its_items_on_its_interval() {
    let batch = SourceConfig {
        mode: Mode::Batch,
        batch_interval: Duration::from_millis(300),
        ..signed_source("calendly-batch", Adapter::Calendly)
    };
    let app = app_with(vec![batch]).await;
    let r = post_calendly(&app, "/v1/hooks/calendly-batch", &calendly_body("carol"), now(), false).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": 1, "pending": 1}));
    let lead = eventually("the batch to settle", || async {
        leads_by_email(&app, "carol%40example.com").await.into_iter().next()
    })
    .await;
    assert_eq!(lead["first_name"], "John");
}

/// A Graph API stand-in: `GET /v21.0/{leadgen_id}` fails once with 500, then answers.
async fn fake_graph_api() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = axum::Router::new().route(
        "/v21.0/{id}",
        axum::routing::get(move |Path(id): Path<String>| {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"error": "try again"})));
                }
                (
                    StatusCode::OK,
                    axum::Json(json!({"id": id, "created_time": "2024-03-01T10:00:00+0000", "form_id": "f1",
                        "field_data": [{"name": "email", "values": ["dana@example.com"]},
                                       {"name": "full_name", "values": ["Dana Scully"]},
                                       {"name": "company_name", "values": ["FBI"]}]})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn a_facebook_lead_is_acknowledged_then_fetched_from_the_graph_api_with_a_retry() {
    let (graph, calls) = fake_graph_api().await;
    let fb = SourceConfig {
        verify_token_env: Some("TEST_VERIFY_TOKEN".into()),
        token_env: Some("TEST_API_TOKEN".into()),
        api_base_url: Some(graph),
        ..signed_source("facebook", Adapter::FacebookLeadAds)
    };
    let app = app_with(vec![fb]).await;

    let challenge =
        app.http
            .get(app.url(
                "/v1/hooks/facebook?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=1158201444",
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(challenge.status(), 200);
    assert_eq!(challenge.text().await.unwrap(), "1158201444");
    let wrong = app
        .http
        .get(app.url("/v1/hooks/facebook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"))
        .send()
        .await
        .unwrap();
    problem(wrong, 401).await;

    let body = json!({"object": "page", "entry": [{"id": "p1", "time": 1, "changes": [{"field": "leadgen",
        "value": {"leadgen_id": "444444", "page_id": "p1", "form_id": "f1", "created_time": 1}}]}]})
    .to_string();
    let post = || {
        app.http
            .post(app.url("/v1/hooks/facebook"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", format!("sha256={}", mac(&[body.as_bytes()])))
            .body(body.clone())
            .send()
    };
    let r = post().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": 1, "pending": 1}));
    let lead = eventually("the fetched lead", || async {
        leads_by_email(&app, "dana%40example.com").await.into_iter().next()
    })
    .await;
    assert_eq!(lead["company"], "FBI");
    assert_eq!(lead["first_name"], "Dana");
    assert!(calls.load(Ordering::SeqCst) >= 2, "the 500 was retried");

    assert_eq!(post().await.unwrap().status(), 200);
    // The retry is acknowledged; give its background settling time to (not) act.
    let stored_twice = eventually("the retry to settle", || async {
        let n = calls.load(Ordering::SeqCst);
        (n >= 3).then_some(n)
    })
    .await;
    assert!(stored_twice >= 3);
    assert_eq!(app.lead_count().await, 1, "the retry is the same lead");
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)], accept: Option<&str>) -> reqwest::Response {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut req = app
        .http
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://www.example.com")
        .body(body);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_web_form_redirects_to_an_allowed_return_url_and_keeps_spam_apart() {
    let app = app_with(vec![web_source("site")]).await;
    let no_redirect =
        leadflow_integrations::delivery::http_client().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let app = TestApp { http: no_redirect, ..app };

    let r = post_form(
        &app,
        "/v1/hooks/site",
        &[
            ("first_name", "Eve"),
            ("last_name", "Moneypenny"),
            ("email", "eve@example.com"),
            ("title", "Analyst"),
            ("zip", "10115"),
            ("LinkedIn URL", "https://www.linkedin.com/in/eve-moneypenny/"),
            ("X handle", "@EveM"),
            ("retURL", "https://www.example.com/thanks"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "https://www.example.com/thanks");
    assert_eq!(r.headers()["access-control-allow-origin"], "https://www.example.com");
    let lead = &leads_by_email(&app, "eve%40example.com").await[0];
    assert_eq!((lead["job_title"].as_str(), lead["postal_code"].as_str()), (Some("Analyst"), Some("10115")));
    assert_eq!(lead["linkedin_url"], "https://www.linkedin.com/in/eve-moneypenny");
    assert_eq!(lead["x_url"], "https://x.com/evem");

    let elsewhere =
        post_form(&app, "/v1/hooks/site", &[("email", "x@example.com"), ("retURL", "https://evil.example/")], None)
            .await;
    assert_eq!(problem(elsewhere, 400).await["code"], "return_url_not_allowed");

    let json_answer =
        post_form(&app, "/v1/hooks/site", &[("email", "fred@example.com")], Some("application/json")).await;
    assert_eq!(json_answer.status(), 200);
    let real: Value = json_answer.json().await.unwrap();

    let spam = post_form(
        &app,
        "/v1/hooks/site",
        &[("email", "bot@example.com"), ("_lf_hp", "gotcha")],
        Some("application/json"),
    )
    .await;
    assert_eq!(spam.status(), 200);
    assert_eq!(spam.json::<Value>().await.unwrap(), real, "a bot gets what a person gets");
    assert!(leads_by_email(&app, "bot%40example.com").await.is_empty());
    let quarantine: Value = app.get("/v1/quarantine?source=site").await.json().await.unwrap();
    let spam_entry = &quarantine[0];
    assert_eq!(spam_entry["errors"][0]["code"], "spam");
    assert!(spam_entry["errors"][0]["message"].as_str().unwrap().starts_with("honeypot"));
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("leadflow_capture_spam_total"), "spam is counted");

    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\ngina@example.com\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"company\"\r\n\r\nAcme\r\n--XyZ--\r\n";
    let r = app
        .http
        .post(app.url("/v1/hooks/site"))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .header("accept", "application/json")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(leads_by_email(&app, "gina%40example.com").await[0]["company"], "Acme");
}

#[tokio::test]
async fn web_form_cors_is_for_allowed_origins_and_posts_are_rate_limited() {
    let limited = SourceConfig { rate_limit_per_minute: 2, ..web_source("site") };
    let app = app_with(vec![limited]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/v1/hooks/site"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("https://www.example.com").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://www.example.com");
    problem(preflight("https://evil.example").await.unwrap(), 403).await;

    for i in 0..2 {
        let email = format!("p{i}@example.com");
        assert_eq!(post_form(&app, "/v1/hooks/site", &[("email", &email)], None).await.status(), 200);
    }
    let r = post_form(&app, "/v1/hooks/site", &[("email", "p3@example.com")], None).await;
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(problem(r, 429).await["code"], "rate_limited");
}

#[tokio::test]
async fn the_embed_script_is_served_as_javascript() {
    let app = app_with(vec![]).await;
    let r = app.http.get(app.url("/embed.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    assert!(r.text().await.unwrap().contains("leadflow_touch"));
}

/// The page a marketing site would serve: leadflow's script and a form posting to the
/// web_form source, submitted by script on load (as a person would, through the submit
/// event the script listens to).
fn landing_page(leadflow: &str) -> String {
    format!(
        r#"<!doctype html><html><head><script src="{leadflow}/embed.js"></script></head><body>
<form id="f" method="post" action="{leadflow}/v1/hooks/site">
<input name="email" value="browser@example.com"><input name="first_name" value="Brow">
</form>
<script>window.addEventListener("load", function () {{ document.getElementById("f").requestSubmit(); }});</script>
</body></html>"#
    )
}

#[tokio::test]
async fn a_browser_form_with_the_embed_script_carries_utms_and_click_ids_into_the_lead() {
    let app = app_with(vec![web_source("site")]).await;
    let page = landing_page(&format!("http://{}", app.addr));
    let router =
        axum::Router::new().route("/landing", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{site}/landing?utm_source=news&utm_campaign=spring&gclid=abc");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--virtual-time-budget=5000", "--dump-dom", &url])
            .output()
            .unwrap_or_else(|e| panic!("{chromium} could not run ({e}); install it: apt-get install -y chromium"))
    })
    .await
    .unwrap();
    assert!(run.status.success(), "chromium failed: {}", String::from_utf8_lossy(&run.stderr));

    let lead = eventually("the browser's lead", || async {
        leads_by_email(&app, "browser%40example.com").await.into_iter().next()
    })
    .await;
    assert_eq!(lead["first_name"], "Brow");
    assert_eq!(lead["attribution"]["original"]["utm_source"], "news");
    assert_eq!(lead["attribution"]["original"]["utm_campaign"], "spring");
    assert_eq!(lead["custom"]["touchpoint"]["gclid"], "abc", "{lead:#}");
}

#[tokio::test]
async fn an_admin_can_send_a_test_lead_through_a_source() {
    let app = app_with(vec![web_source("site"), signed_source("calendly", Adapter::Calendly)]).await;
    let r = app.http.post(app.url("/v1/sources/site/test")).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["stages"][0]["stage"], "adapter");
    assert_eq!(report["stages"][1]["detail"]["fields"]["company"], "leadflow source test");
    assert_eq!(report["stages"][2]["detail"]["outcome"], "created");
    let lead: Value =
        app.get(&format!("/v1/leads/{}", report["lead_id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(lead["custom"]["test"], true);

    // A payload in the provider's shape tests the adapter too.
    let calendly: Value = serde_json::from_slice(&calendly_body("tess")).unwrap();
    let r = app
        .http
        .post(app.url("/v1/sources/calendly/test"))
        .bearer_auth(&app.admin)
        .json(&calendly)
        .send()
        .await
        .unwrap();
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["stages"][0]["status"], "ok", "{report:#}");
    assert_eq!(report["stages"][1]["detail"]["fields"]["email"], "tess@example.com");

    let reader = app.key("reader", &["read"]).await;
    let r = app.http.post(app.url("/v1/sources/site/test")).bearer_auth(&reader).send().await.unwrap();
    problem(r, 403).await;
    let r = app.http.post(app.url("/v1/sources/nowhere/test")).bearer_auth(&app.admin).send().await.unwrap();
    problem(r, 404).await;
}

#[tokio::test]
async fn a_facebook_lead_left_pending_by_a_crash_is_fetched_at_start_up() {
    let (graph, _calls) = fake_graph_api().await;
    let fb = SourceConfig {
        verify_token_env: Some("TEST_VERIFY_TOKEN".into()),
        token_env: Some("TEST_API_TOKEN".into()),
        api_base_url: Some(graph),
        ..signed_source("facebook", Adapter::FacebookLeadAds)
    };
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    // What the hook stored before the process died: the notification, not yet fetched.
    let note = json!({"leadgen_id": "555", "page_id": "p1", "form_id": "f1"}).as_object().cloned().unwrap();
    let key = leadflow_core::capture::IdempotencyKey::parse("fb:leadgen:555").unwrap();
    store
        .enqueue(vec![leadflow_core::capture::RawSubmission::new(crate::source("facebook"), Some(key), note)])
        .await
        .unwrap();
    let mut config = Config::default();
    config.sources.push(fb);
    let app = crate::spawn_on(store, config, dir).await;
    let leads = leads_by_email(&app, "dana%40example.com").await;
    assert_eq!(leads.len(), 1, "start-up fetched and settled the pending lead");
    assert_eq!(leads[0]["custom"]["touchpoint"]["lead_id"], "555");
}

#[tokio::test]
async fn a_linkedin_lead_is_read_with_its_form_so_answers_map_to_fields() {
    let router = axum::Router::new()
        .route(
            "/rest/leadFormResponses/{id}",
            axum::routing::get(|Path(id): Path<String>| async move {
                axum::Json(json!({"id": id, "submittedAt": 1700000000000_i64, "testLead": true,
                    "versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:77,1)",
                    "formResponse": {"answers": [
                        {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "lin@example.com"}}},
                        {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Lin"}}}]}}))
            }),
        )
        .route(
            "/rest/leadForms/{id}",
            axum::routing::get(|| async {
                axum::Json(json!({"id": 77, "content": {"questions": [
                    {"questionId": 1, "name": "email", "predefinedField": "EMAIL"},
                    {"questionId": 2, "name": "first", "predefinedField": "FIRST_NAME"}]}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let li = SourceConfig {
        token_env: Some("TEST_API_TOKEN".into()),
        api_base_url: Some(api),
        ..signed_source("linkedin", Adapter::LinkedinLeadGen)
    };
    let app = app_with(vec![li]).await;
    let body = json!({"type": "LEAD_ACTION", "leadAction": "CREATED",
        "leadGenFormResponse": "urn:li:leadGenFormResponse:abc-123"})
    .to_string();
    let r = app
        .http
        .post(app.url("/v1/hooks/linkedin"))
        .header("content-type", "application/json")
        .header("x-li-signature", mac(&[b"hmacsha256=", body.as_bytes()]))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lead = eventually("the LinkedIn lead", || async {
        leads_by_email(&app, "lin%40example.com").await.into_iter().next()
    })
    .await;
    assert_eq!(lead["first_name"], "Lin");
    assert_eq!(lead["custom"]["test"], true, "LinkedIn's test leads are marked");
}

/// A stand-in for LinkedIn's `leadFormResponses` owner finder: 102 responses, served a
/// page of 100 at a time from `start`; counts the requests per `start`.
async fn fake_linkedin_finder() -> (String, Arc<std::sync::Mutex<Vec<u64>>>) {
    let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = starts.clone();
    let router = axum::Router::new()
        .route(
            "/rest/leadFormResponses",
            axum::routing::get(move |axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>| {
                let seen = seen.clone();
                async move {
                    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
                    assert_eq!(param("q"), "owner");
                    assert_eq!(param("owner"), "(sponsoredAccount:urn:li:sponsoredAccount:42)");
                    let start: u64 = param("start").parse().unwrap();
                    let count: u64 = param("count").parse().unwrap();
                    seen.lock().unwrap().push(start);
                    let elements: Vec<Value> = (start..(start + count).min(102))
                        .map(|i| {
                            json!({"id": format!("urn:li:leadFormResponse:r{i}"), "submittedAt": 1700000000000_i64,
                                "versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:77,1)",
                                "formResponse": {"answers": [{"questionId": 1, "answerDetails":
                                    {"textQuestionAnswer": {"answer": format!("pulled{i}@example.com")}}}]}})
                        })
                        .collect();
                    axum::Json(json!({"elements": elements, "paging": {"start": start, "count": count, "total": 102}}))
                }
            }),
        )
        .route(
            "/rest/leadForms/{id}",
            axum::routing::get(|| async {
                axum::Json(json!({"id": 77, "content": {"questions": [
                    {"questionId": 1, "name": "email", "predefinedField": "EMAIL"}]}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (api, starts)
}

#[tokio::test]
async fn a_linkedin_pull_source_stores_each_response_once_and_resumes_from_its_cursor() {
    let (api, starts) = fake_linkedin_finder().await;
    let li = SourceConfig {
        token_env: Some("TEST_API_TOKEN".into()),
        api_base_url: Some(api),
        pull_interval: Some(Duration::from_secs(1)),
        linkedin_owner: Some("urn:li:sponsoredAccount:42".into()),
        ..signed_source("linkedin", Adapter::LinkedinLeadGen)
    };
    let mut config = Config::default();
    config.sources.push(li);
    let app = spawn_app_with(config.clone()).await;
    let cursor =
        eventually("the pull to save its cursor", || async { app.store.get_cursor("pull:linkedin").await.unwrap() })
            .await;
    assert_eq!(cursor, "100", "the cursor names the start of the last page");
    eventually("both pages stored", || async { (app.lead_count().await == 102).then_some(()) }).await;
    assert_eq!(leads_by_email(&app, "pulled101%40example.com").await.len(), 1);

    let (store, dir) = app.shutdown().await;
    drop(store);
    starts.lock().unwrap().clear();
    let reopened = crate::open_store(&dir).await;
    // The restarted test app makes its own admin key under the same name.
    reopened.revoke_key("admin").await.unwrap();
    let app = crate::spawn_on(reopened, config, dir).await;
    eventually("a pull after the restart", || async { (!starts.lock().unwrap().is_empty()).then_some(()) }).await;
    // Rounds later than the first are from the saved cursor too; none starts over.
    assert!(starts.lock().unwrap().iter().all(|s| *s == 100), "{:?}", starts.lock().unwrap());
    assert_eq!(app.lead_count().await, 102, "nothing read again was stored twice");
    assert_eq!(leads_by_email(&app, "pulled0%40example.com").await.len(), 1);
}

/// The published examples and the test inquiry of the integrations crate's fixtures.
fn email_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../integrations/tests/channels/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    app.http.post(app.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
}

#[tokio::test]
async fn an_emailed_inquiry_becomes_a_lead_and_bad_mail_is_answered_with_problems() {
    let small = SourceConfig { body_limit_bytes: Some(4096), ..source("small-mail", Adapter::Email) };
    let app = app_with(vec![source("mail", Adapter::Email), signed_source("postmark", Adapter::Email), small]).await;

    let ok = post_raw(&app, "/v1/hooks/mail", "message/rfc822", email_fixture("directory_inquiry.eml")).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["created"], 1);
    let leads = leads_by_email(&app, "ada.lovelace%40analytical.example").await;
    let lead = &leads[0];
    assert_eq!(lead["last_name"], "Lovelace");
    assert_eq!(lead["company"], "Analytical Engines GmbH");
    assert_eq!(lead["phone"], "+49301234567");
    assert_eq!(lead["custom"]["attachments"][0]["name"], "requirements.pdf");
    let again = post_raw(&app, "/v1/hooks/mail", "message/rfc822", email_fixture("directory_inquiry.eml")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.lead_count().await, 1, "the same Message-ID is the same submission");

    let malformed =
        problem(post_raw(&app, "/v1/hooks/mail", "message/rfc822", b"\x00\x01 not mail".to_vec()).await, 400).await;
    assert_eq!(malformed["code"], "hook_malformed");
    let big = email_fixture("directory_inquiry.eml").repeat(4);
    let oversized = problem(post_raw(&app, "/v1/hooks/small-mail", "message/rfc822", big).await, 413).await;
    assert_eq!(oversized["code"], "payload_too_large");
    // An email source takes more than the API's 1 MiB by default.
    let mut large = email_fixture("directory_inquiry.eml");
    large.extend(std::iter::repeat_n(b'x', 2 << 20));
    assert_eq!(post_raw(&app, "/v1/hooks/mail", "message/rfc822", large).await.status(), 200);

    // Postmark does not sign: with a secret its post must carry it (basic auth).
    let postmark = email_fixture("postmark_inbound_example.json");
    let unsigned = problem(post_raw(&app, "/v1/hooks/postmark", "application/json", postmark.clone()).await, 401).await;
    assert_eq!(unsigned["code"], "hook_unauthorized");
    let authed = app
        .http
        .post(app.url("/v1/hooks/postmark"))
        .basic_auth("postmark", Some(SECRET))
        .header("content-type", "application/json")
        .body(postmark)
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status(), 200);
    assert_eq!(leads_by_email(&app, "support%40postmarkapp.com").await.len(), 1);

    // No sender: stored in the quarantine with the reason, never lost.
    let anonymous = b"To: sales@leadflow.example\r\nSubject: Call me\r\n\r\nPhone: +1 555 0100\r\n".to_vec();
    let r = post_raw(&app, "/v1/hooks/mail", "message/rfc822", anonymous).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["quarantined"], 1);
    let quarantine: Value = app.get("/v1/quarantine?source=mail").await.json().await.unwrap();
    let error = &quarantine[0]["errors"][0];
    assert_eq!(error["field"], "from");
    assert!(error["message"].as_str().unwrap().contains("email/1"), "{error}");
}

#[tokio::test]
async fn a_signed_json_post_is_mapped_like_the_api_and_a_bad_signature_is_refused() {
    let app = app_with(vec![signed_source("zapier", Adapter::SignedJson)]).await;
    let body = br#"[{"Work Email": "zed@example.com", "Company Name": "Zapier Inc", "Full Name": "Zed Zap"},
                    {"email": "amy@example.com"}]"#;
    let post = |sig: String| {
        app.http
            .post(app.url("/v1/hooks/zapier"))
            .header("content-type", "application/json")
            .header("x-signature", sig)
            .body(body.to_vec())
            .send()
    };
    let ok = post(mac(&[body])).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["created"], 2);
    let lead = &leads_by_email(&app, "zed%40example.com").await[0];
    assert_eq!(lead["company"], "Zapier Inc");
    assert_eq!(lead["first_name"], "Zed");
    let wrong = problem(post(mac(&[b"something else"])).await.unwrap(), 401).await;
    assert_eq!(wrong["code"], "hook_unauthorized");
    assert_eq!(app.lead_count().await, 2);
}
