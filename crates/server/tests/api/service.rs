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
fn every_operation_documents_its_answers_for_a_validator() {
    // What openapi-spec-validator and schemathesis rely on (scripts/api-fuzz runs both):
    // unique operation ids, a description on every response, path parameters that are
    // in the path, and the problems every key-protected or JSON-body route can answer.
    let doc = serde_json::to_value(leadflow_server::openapi()).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{at} has no operationId"));
            assert!(ids.insert(id.to_owned()), "{at}: operationId {id} is taken");
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{at} {status}");
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let name = param["name"].as_str().unwrap();
                    assert!(path.contains(&format!("{{{name}}}")), "{at}: {name} is not in the path");
                }
            }
            let has = |status: &str| responses.contains_key(status);
            if op["security"].as_array().is_some_and(|s| s.iter().all(|r| r.get("bearer").is_some())) {
                assert!(has("401") && has("403"), "{at} lacks 401/403");
            } else {
                // Held to [server] unauthenticated_rate_per_minute per client address.
                assert!(has("429"), "{at} takes no key but does not document 429");
            }
            if op["requestBody"]["content"].get("application/json").is_some() && path != "/v1/sources/{name}/test" {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{at} lacks {status}");
                }
            }
        }
    }
}

#[test]
fn openapi_document_snapshot() {
    // A change to any handler's contract shows up here for review.
    let mut doc = serde_json::to_value(leadflow_server::openapi()).unwrap();
    doc["info"]["version"] = json!("[version]");
    insta::assert_json_snapshot!("openapi", doc);
}

mod quarantine {
    use crate::{problem, spawn_app};
    use leadflow_core::capture::RawSubmission;
    use leadflow_core::{FieldError, FieldErrorCode, SourceName};
    use serde_json::{Value, json};

    fn submission(v: Value) -> RawSubmission {
        RawSubmission::new(SourceName::api(), None, v.as_object().cloned().unwrap())
    }

    fn reason() -> Vec<FieldError> {
        vec![FieldError::new("email", FieldErrorCode::Required, "an email or a phone is required")]
    }

    #[tokio::test]
    async fn quarantined_submissions_are_listed_shown_and_replayed() {
        let app = spawn_app().await;
        // One that a configuration fix has since made valid, one that is still invalid.
        let fixed = submission(json!({"email": "fixed@example.com", "first_name": "Fay"}));
        let broken = submission(json!({"email": "still broken"}));
        app.store.quarantine(vec![(fixed.clone(), reason()), (broken.clone(), reason())]).await.unwrap();

        let listed: Value = app.get("/v1/quarantine").await.json().await.unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 2);
        assert_eq!(listed[0]["submission_id"], fixed.id.to_string());
        assert_eq!(listed[0]["payload"]["first_name"], "Fay");
        assert_eq!(listed[0]["errors"][0]["code"], "required");
        let shown: Value = app.get(&format!("/v1/quarantine/{}", broken.id)).await.json().await.unwrap();
        assert_eq!(shown["payload"]["email"], "still broken");

        let r: Value = app.post(&format!("/v1/quarantine/{}/replay", fixed.id), &json!({})).await.json().await.unwrap();
        assert_eq!(r["outcome"], "created");
        assert_eq!(r["lead"]["email"], "fixed@example.com");
        let r: Value =
            app.post(&format!("/v1/quarantine/{}/replay", broken.id), &json!({})).await.json().await.unwrap();
        assert_eq!(r["outcome"], "rejected");
        assert_eq!(r["errors"][0]["code"], "invalid_email", "the reasons are refreshed");

        let listed: Value = app.get("/v1/quarantine").await.json().await.unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 1, "the settled one left the quarantine");
        problem(app.get(&format!("/v1/quarantine/{}", fixed.id)).await, 404).await;
        let bulk: Value = app.post("/v1/quarantine/replay", &json!({"source": "api"})).await.json().await.unwrap();
        assert_eq!((bulk["settled"].as_u64(), bulk["still_quarantined"].as_u64()), (Some(0), Some(1)));
        assert_eq!(app.lead_count().await, 1);
    }

    #[tokio::test]
    async fn replaying_needs_the_admin_scope_and_reading_needs_read() {
        let app = spawn_app().await;
        let reader = app.key("reader", &["read"]).await;
        let ingest = app.key("ingest", &["ingest"]).await;
        let sub = submission(json!({"email": "x"}));
        app.store.quarantine(vec![(sub.clone(), reason())]).await.unwrap();
        let list = |token: &str| app.http.get(app.url("/v1/quarantine")).bearer_auth(token).send();
        assert_eq!(list(&reader).await.unwrap().status(), 200);
        problem(list(&ingest).await.unwrap(), 403).await;
        let replay = app
            .http
            .post(app.url(&format!("/v1/quarantine/{}/replay", sub.id)))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap();
        problem(replay, 403).await;
    }
}
