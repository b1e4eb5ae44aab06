//! Provider payloads that must not lose a lead: the providers' published examples posted,
//! signed, to a real server, and what became of them (a lead, or a quarantine entry that
//! says what was missing and which adapter version read it).

use crate::{TestApp, spawn_app_with};
use base64::Engine;
use hmac::{Hmac, Mac};
use leadflow_core::config::{Adapter, Config, SourceConfig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "test-signing-secret";

/// A published example from the integrations crate's fixtures (see their README).
fn fixture(name: &str) -> Value {
    let path = format!("{}/../integrations/tests/channels/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn app_with(sources: &[(&str, Adapter)]) -> TestApp {
    let mut config = Config::default();
    for (name, adapter) in sources {
        config.sources.push(SourceConfig {
            name: crate::source(name),
            adapter: *adapter,
            secret_env: Some("TEST_SECRET".into()),
            ..SourceConfig::api()
        });
    }
    spawn_app_with(config).await
}

/// Posts `body` signed the way `adapter`'s provider signs.
async fn post_signed(app: &TestApp, source: &str, adapter: Adapter, body: &Value) -> Value {
    let body = body.to_string();
    let request = app.http.post(app.url(&format!("/v1/hooks/{source}"))).header("content-type", "application/json");
    let request = match adapter {
        Adapter::Typeform => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            m.update(body.as_bytes());
            let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
            request.header("typeform-signature", format!("sha256={sig}"))
        }
        Adapter::Webflow => {
            let ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            m.update(format!("{ms}:{body}").as_bytes());
            request
                .header("x-webflow-timestamp", ms)
                .header("x-webflow-signature", hex::encode(m.finalize().into_bytes()))
        }
        Adapter::Intercom => {
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
            m.update(body.as_bytes());
            request.header("x-hub-signature", format!("sha1={}", hex::encode(m.finalize().into_bytes())))
        }
        other => panic!("no signer for {other:?}"),
    };
    let response = request.body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn lead_by_email(app: &TestApp, email: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leads: Value = app.get(&format!("/v1/leads?email={email}")).await.json().await.unwrap();
        if let Some(lead) = leads.as_array().and_then(|a| a.first()) {
            return lead.clone();
        }
        assert!(Instant::now() < deadline, "no lead for {email}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn typeforms_example_with_a_consent_title_over_the_limit_becomes_a_lead() {
    let app = app_with(&[("typeform", Adapter::Typeform)]).await;
    let mut body = fixture("typeform_example_payload.json");
    let consent = "I agree that Example Ltd may store and process the personal data I submit on this form, and \
        contact me by email or phone about its products, services and events. I can withdraw this at any time.";
    assert!(consent.chars().count() > 128);
    for f in body["form_response"]["definition"]["fields"].as_array_mut().unwrap() {
        if f["ref"] == "readable_ref_yes_no" {
            f["title"] = json!(consent);
        }
    }
    let answer = post_signed(&app, "typeform", Adapter::Typeform, &body).await;
    assert_eq!(answer["created"], 1, "{answer}");
    assert!(answer.get("quarantined").is_none(), "{answer}");
    let lead = lead_by_email(&app, "laura%40example.com").await;
    assert_eq!(lead["first_name"], "Laura");
    let custom = lead["custom"].as_object().unwrap();
    assert_eq!(custom["readable_ref_yes_no"], false);
    assert_eq!(custom["readable_ref_legal"], true);
    assert_eq!(custom["field_labels"]["readable_ref_yes_no"], consent);
    assert!(custom.keys().all(|k| k.chars().count() <= 128));
}

#[tokio::test]
async fn a_webflow_form_with_email_2_or_an_unnamed_email_field_becomes_a_lead() {
    let app = app_with(&[("webflow", Adapter::Webflow)]).await;
    let mut body = fixture("webflow_form_submission.json");
    body["payload"]["data"] = json!({"Name 2": "Ford Prefect", "Email 2": "ford@heartofgold.ai"});
    let answer = post_signed(&app, "webflow", Adapter::Webflow, &body).await;
    assert_eq!(answer["created"], 1, "{answer}");
    let lead = lead_by_email(&app, "ford%40heartofgold.ai").await;
    assert_eq!((lead["first_name"].as_str(), lead["last_name"].as_str()), (Some("Ford"), Some("Prefect")));

    body["payload"]["id"] = json!("6321ca84df3949bfc6752328");
    body["payload"]["data"] = json!({"Field 3": "arthur@example.com", "Field 4": "Tea, please"});
    let answer = post_signed(&app, "webflow", Adapter::Webflow, &body).await;
    assert_eq!(answer["created"], 1, "{answer}");
    let lead = lead_by_email(&app, "arthur%40example.com").await;
    assert_eq!(lead["custom"]["Field 4"], "Tea, please");
}

/// A local stand-in for Intercom's "Retrieve a contact": answers the documented contact
/// object for the bearer token and version header it expects, 401 otherwise.
async fn fake_intercom_api() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let router = axum::Router::new().route(
        "/contacts/{id}",
        axum::routing::get(
            move |axum::extract::Path(id): axum::extract::Path<String>, headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let header =
                        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    if header("authorization") != "Bearer test-api-token" || header("intercom-version").is_empty() {
                        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"type": "error.list"})));
                    }
                    seen.lock().unwrap().push(id.clone());
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({
                            "type": "contact", "id": id, "role": "lead", "email": "wash@serenity.io",
                            "phone": "+1123456789", "name": "Hoban Washburn",
                            "location": {"type": "location", "country": "Ireland", "region": "Dublin", "city": "Dublin"}
                        })),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), asked)
}

#[tokio::test]
async fn an_intercom_contact_known_only_by_id_is_read_from_intercoms_api_with_a_token() {
    let (api, asked) = fake_intercom_api().await;
    let mut config = Config::default();
    config.sources.push(SourceConfig {
        name: crate::source("intercom"),
        adapter: Adapter::Intercom,
        secret_env: Some("TEST_SECRET".into()),
        token_env: Some("TEST_API_TOKEN".into()),
        api_base_url: Some(api),
        ..SourceConfig::api()
    });
    let app = spawn_app_with(config).await;
    let answer =
        post_signed(&app, "intercom", Adapter::Intercom, &fixture("intercom_conversation_contact_reference_only.json"))
            .await;
    assert_eq!(answer["pending"], 1, "acknowledged, then read back: {answer}");
    let lead = lead_by_email(&app, "wash%40serenity.io").await;
    assert_eq!((lead["first_name"].as_str(), lead["last_name"].as_str()), (Some("Hoban"), Some("Washburn")));
    assert_eq!(lead["city"], "Dublin");
    // The background settling and the pending sweep may both read it: the same contact.
    let asked = asked.lock().unwrap().clone();
    assert!(!asked.is_empty() && asked.iter().all(|id| id == "667d60d88a68186f43bafde1"), "{asked:?}");
    assert_eq!(app.lead_count().await, 1);
}

#[tokio::test]
async fn an_intercom_contact_known_only_by_id_is_quarantined_naming_the_path_and_adapter_version() {
    let app = app_with(&[("intercom", Adapter::Intercom)]).await;
    let answer =
        post_signed(&app, "intercom", Adapter::Intercom, &fixture("intercom_conversation_contact_reference_only.json"))
            .await;
    assert_eq!(answer["quarantined"], 1, "{answer}");
    let quarantine: Value = app.get("/v1/quarantine?source=intercom").await.json().await.unwrap();
    let entry = &quarantine[0];
    assert_eq!(entry["payload"]["topic"], "conversation.user.created", "the payload is kept as received");
    let error = &entry["errors"][0];
    assert_eq!(error["code"], "unreadable");
    assert_eq!(error["field"], "data.item.contacts.contacts[0].email");
    assert_eq!(error["adapter"], "intercom/3");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("by id only") && message.contains("667d60d88a68186f43bafde1"), "{message}");

    // The published 2.x and 1.x shapes both become leads.
    for (file, email) in [
        ("intercom_conversation_user_created_2x.json", "joe%40example.com"),
        ("intercom_conversation_user_created_1x.json", "darrag%40example.com"),
    ] {
        let answer = post_signed(&app, "intercom", Adapter::Intercom, &fixture(file)).await;
        assert_eq!(answer["created"], 1, "{file}: {answer}");
        lead_by_email(&app, email).await;
    }
}
