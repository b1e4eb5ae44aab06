//! Bad input gets a clear problem document and stores nothing.

use crate::{problem, spawn_app, spawn_app_with};
use leadflow_core::config::{Config, SourceConfig};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/v1/leads"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 400).await["code"], "malformed_json");
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn wrong_types_and_invalid_email_list_every_field_error() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/leads", &json!({"email": "ada(at)example", "first_name": ["A"], "employee_count": true, "custom": "x", "consent": {"granted": "yes"}}))
        .await;
    let body = problem(r, 422).await;
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["consent.granted", "email", "employee_count", "first_name"]);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn a_lead_without_email_or_phone_is_422() {
    let app = spawn_app().await;
    let body = problem(app.post("/v1/leads", &json!({"first_name": "Anon"})).await, 422).await;
    assert_eq!(body["errors"][0]["code"], "required");
}

#[tokio::test]
async fn a_source_can_require_more_fields() {
    let mut config = Config::default();
    config.sources.push(SourceConfig {
        name: crate::source("partners"),
        required: vec![vec!["email".into()], vec!["company".into(), "website".into()]],
        ..SourceConfig::api()
    });
    let app = spawn_app_with(config).await;
    let body =
        problem(app.post("/v1/leads", &json!({"email": "p@example.com", "source": "partners"})).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "company");
    assert_eq!(body["errors"][0]["message"], "one of company, website is required");
    let ok =
        app.post("/v1/leads", &json!({"email": "p@example.com", "website": "example.com", "source": "partners"})).await;
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422() {
    let app = spawn_app().await;
    problem(app.post("/v1/leads", &json!([{"email": "a@example.com"}])).await, 422).await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_stores_nothing() {
    let mut config = Config::default();
    config.server.body_limit_bytes = 1024;
    let app = spawn_app_with(config).await;
    let r = app.post("/v1/leads", &json!({"email": "big@example.com", "custom": {"blob": "x".repeat(2048)}})).await;
    assert_eq!(problem(r, 413).await["code"], "payload_too_large");
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let app = spawn_app().await;
    let just_over = json!({"email": "big@example.com", "custom": {"blob": "x".repeat(1024 * 1024)}});
    problem(app.post("/v1/leads", &just_over).await, 413).await;
    let well_under = json!({"email": "big@example.com", "custom": {"blob": "x".repeat(512 * 1024)}});
    assert_eq!(app.post("/v1/leads", &well_under).await.status(), 201);
}

#[tokio::test]
async fn an_unknown_source_is_422_naming_it() {
    let app = spawn_app().await;
    let body =
        problem(app.post("/v1/leads", &json!({"email": "a@example.com", "source": "carrier-pigeon"})).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "source");
    assert_eq!(body["errors"][0]["code"], "unknown_source");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("carrier-pigeon"));
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/v1/leads"))
        .bearer_auth(&app.admin)
        .header("content-type", "text/plain")
        .body("{\"email\":\"a@example.com\"}")
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    let r = app
        .http
        .post(app.url("/v1/leads"))
        .bearer_auth(&app.admin)
        .body("{\"email\":\"a@example.com\"}")
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401() {
    let app = spawn_app().await;
    let lead = json!({"email": "a@example.com"});
    let r = app.http.post(app.url("/v1/leads")).json(&lead).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    problem(r, 401).await;
    let r = app.http.post(app.url("/v1/leads")).bearer_auth("lf_not-a-real-key").json(&lead).send().await.unwrap();
    problem(r, 401).await;
    let r = app
        .http
        .get(app.url("/v1/leads?email=a%40example.com"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn a_revoked_key_is_401() {
    // Read on every request: the revocation is seen at once.
    let mut config = Config::default();
    config.server.key_cache_ttl = std::time::Duration::ZERO;
    let app = spawn_app_with(config).await;
    let token = app.key("temp", &["ingest"]).await;
    let post =
        || app.http.post(app.url("/v1/leads")).bearer_auth(&token).json(&json!({"email": "rv@example.com"})).send();
    assert_eq!(post().await.unwrap().status(), 201);
    app.store.revoke_key("temp").await.unwrap().unwrap();
    problem(post().await.unwrap(), 401).await;
}

#[tokio::test]
async fn a_key_without_the_scope_is_403() {
    let mut config = Config::default();
    config.sources.push(SourceConfig { name: crate::source("web"), ..SourceConfig::api() });
    let app = spawn_app_with(config).await;
    let reader = app.key("reader", &["read"]).await;
    let web_only = app.key("web-only", &["ingest:web"]).await;
    let lead = json!({"email": "a@example.com"});
    problem(app.http.post(app.url("/v1/leads")).bearer_auth(&reader).json(&lead).send().await.unwrap(), 403).await;
    problem(app.http.post(app.url("/v1/leads")).bearer_auth(&web_only).json(&lead).send().await.unwrap(), 403).await;
    problem(app.http.get(app.url("/v1/leads?email=a%40example.com")).bearer_auth(&web_only).send().await.unwrap(), 403)
        .await;
    let batch = json!({"leads": [{"email": "w@example.com", "source": "web"}, {"email": "x@example.com"}]});
    problem(app.http.post(app.url("/v1/leads/batch")).bearer_auth(&web_only).json(&batch).send().await.unwrap(), 403)
        .await;
    assert_eq!(app.lead_count().await, 0, "a refused batch stores none of its leads");
    let ok = app
        .http
        .post(app.url("/v1/leads"))
        .bearer_auth(&web_only)
        .json(&json!({"email": "w@example.com", "source": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_400() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/v1/leads"))
        .bearer_auth(&app.admin)
        .header("Idempotency-Key", "x".repeat(300))
        .json(&json!({"email": "a@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 400).await["code"], "invalid_idempotency_key");
}

#[tokio::test]
async fn unknown_routes_and_ids_are_problem_documents() {
    let app = spawn_app().await;
    problem(app.get("/v1/nothing-here").await, 404).await;
    problem(app.get("/v1/leads/not-a-uuid").await, 404).await;
    problem(app.get("/v1/leads/01900000-0000-7000-8000-000000000000").await, 404).await;
    let r = app.http.delete(app.url("/v1/leads")).bearer_auth(&app.admin).send().await.unwrap();
    problem(r, 405).await;
}

#[tokio::test]
async fn a_request_that_stalls_is_cut_off_with_503() {
    let mut config = Config::default();
    config.server.request_timeout = Duration::from_millis(300);
    let app = spawn_app_with(config).await;
    // Announce a body and never send it: the handler waits for it until the timeout.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/leads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        app.admin
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 503"), "got {text}");
    assert!(text.contains("application/problem+json") && text.contains("\"code\":\"timeout\""));
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn a_caller_supplied_request_id_is_echoed() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/v1/leads/x")).header("x-request-id", "trace-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-123");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-123");
}

#[tokio::test]
async fn a_typed_body_names_the_field_that_does_not_fit() {
    let app = spawn_app().await;
    let path = "/v1/reviews/0191e3b4-0000-7000-8000-000000000000";
    let wrong = problem(app.post(path, &json!({"decision": 7})).await, 422).await;
    assert_eq!(
        (wrong["errors"][0]["field"].as_str(), wrong["errors"][0]["code"].as_str()),
        (Some("decision"), Some("wrong_type"))
    );
    let missing = problem(app.post(path, &json!({})).await, 422).await;
    assert_eq!(
        (missing["errors"][0]["field"].as_str(), missing["errors"][0]["code"].as_str()),
        (Some("decision"), Some("required"))
    );
    let unknown = problem(app.post(path, &json!({"decision": "maybe"})).await, 422).await;
    assert_eq!(unknown["errors"][0]["field"], "decision");
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(&app.admin)
        .header("content-type", "text/plain")
        .body("{\"decision\": \"merge\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 415).await["code"], "unsupported_media_type");
    let replay = problem(app.post("/v1/deliveries/replay", &json!({"destination": ["a"]})).await, 422).await;
    assert_eq!(replay["errors"][0]["field"], "destination");
}
