//! Health, metrics and the OpenAPI document.

use crate::spawn_app;
use serde_json::{Value, json};

#[tokio::test]
async fn healthz_and_readyz_answer_200_without_a_key() {
    let app = spawn_app().await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readyz_is_503_once_the_store_is_closed() {
    let app = spawn_app().await;
    app.store.close().await.unwrap();
    crate::problem(app.http.get(app.url("/readyz")).send().await.unwrap(), 503).await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_leads_by_outcome() {
    let app = spawn_app().await;
    app.post("/v1/leads", &json!({"email": "m@example.com"})).await;
    app.post("/v1/leads", &json!({"email": "m@example.com"})).await;
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"leadflow_capture_leads_total{source="api",outcome="created"}"#), "{text}");
    assert!(text.contains(r#"leadflow_capture_leads_total{source="api",outcome="merged"}"#));
    assert!(text.contains(r#"leadflow_http_requests_total{method="POST",route="/v1/leads",status="201"}"#));
    assert!(text.contains("leadflow_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn the_served_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in
        ["/v1/leads", "/v1/leads/batch", "/v1/leads/{id}", "/v1/leads/{id}/history", "/healthz", "/readyz", "/metrics"]
    {
        assert!(doc["paths"][path].is_object(), "{path} is missing");
    }
    assert_eq!(doc, serde_json::to_value(leadflow_server::openapi()).unwrap());
}

#[test]
fn openapi_document_snapshot() {
    // A change to any handler's contract shows up here for review.
    let mut doc = serde_json::to_value(leadflow_server::openapi()).unwrap();
    doc["info"]["version"] = json!("[version]");
    insta::assert_json_snapshot!("openapi", doc);
}
