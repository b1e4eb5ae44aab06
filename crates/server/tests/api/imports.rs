//! Imports through the API: upload, a background job, its progress and report.

use crate::{problem, spawn_app, spawn_app_with, spawn_on};
use leadflow_core::ImportId;
use leadflow_core::config::Config;
use leadflow_store::{ImportCounts, ImportJob, ImportStatus};
use serde_json::Value;
use std::time::{Duration, Instant};

const CSV: &str = "email,first_name,external_id\nada@example.com,Ada,x-1\nnope,Bob,x-2\nADA@example.com,,=x-3\n";

async fn upload(app: &crate::TestApp, body: &'static str, content_type: &str, source: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/imports?source={source}")))
        .bearer_auth(&app.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Polls the job until it has finished (the job runs in the background).
async fn finished(app: &crate::TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job: Value = app.get(&format!("/v1/imports/{id}")).await.json().await.unwrap();
        if job["status"] == "done" || job["status"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "the import did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_uploaded_csv_is_imported_by_a_job_with_a_report() {
    let app = spawn_app().await;
    let r = upload(&app, CSV, "text/csv", "api").await;
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let job = finished(&app, &id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(
        (job["rows"].as_u64(), job["created"].as_u64(), job["merged"].as_u64(), job["rejected"].as_u64()),
        (Some(3), Some(1), Some(1), Some(1))
    );
    let report = app.get(job["report_url"].as_str().unwrap()).await;
    assert_eq!(report.headers()["content-type"], "text/csv; charset=utf-8");
    let text = report.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "row,external_id,outcome,lead_id,errors");
    assert!(lines[1].starts_with("1,x-1,created,"));
    assert!(lines[2].starts_with("2,x-2,rejected,,"));
    assert!(lines[3].starts_with("3,'=x-3,merged,"), "formula-like cells are neutralized: {}", lines[3]);
    let quarantined: Value = app.get("/v1/quarantine").await.json().await.unwrap();
    assert_eq!(quarantined[0]["payload"]["first_name"], "Bob");
    assert_eq!(app.lead_count().await, 1);
}

#[tokio::test]
async fn imported_social_profile_columns_become_canonical_urls() {
    let app = spawn_app().await;
    let csv = "Email,LinkedIn Profile,Twitter\n\
               ada@example.com,https://de.linkedin.com/in/J%C3%BCrgen-M%C3%BCller/,twitter.com/Ada_Lovelace\n\
               bob@example.com,linkedin.com/company/Acme-Corp/about,\n";
    let r = upload(&app, csv, "text/csv", "api").await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let job = finished(&app, &id).await;
    assert_eq!((job["status"].as_str(), job["created"].as_u64()), (Some("done"), Some(2)), "{job}");
    let ada: Value = app.get("/v1/leads?email=ada%40example.com").await.json().await.unwrap();
    assert_eq!(ada[0]["linkedin_url"], "https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller");
    assert_eq!(ada[0]["x_url"], "https://x.com/ada_lovelace");
    let bob: Value = app.get("/v1/leads?email=bob%40example.com").await.json().await.unwrap();
    assert_eq!(bob[0]["linkedin_url"], "https://www.linkedin.com/company/acme-corp");
    assert!(bob[0].get("x_url").is_none(), "an empty cell is no value: {}", bob[0]);
}

#[tokio::test]
async fn a_bad_upload_gets_a_clear_problem() {
    let mut config = Config::default();
    config.server.import_limit_bytes = 64;
    let app = spawn_app_with(config).await;
    problem(upload(&app, CSV, "text/csv", "api").await, 413).await;
    problem(upload(&app, "email\n", "application/json", "api").await, 415).await;
    problem(upload(&app, "email\n", "text/csv", "nowhere").await, 422).await;
    problem(upload(&app, "", "text/csv", "api").await, 400).await;
    let reader = app.key("reader", &["read"]).await;
    let r = app
        .http
        .post(app.url("/v1/imports?source=api"))
        .bearer_auth(&reader)
        .header("content-type", "text/csv")
        .body("email\n")
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    problem(app.get(&format!("/v1/imports/{}", ImportId::new())).await, 404).await;
}

#[tokio::test]
async fn an_unreadable_file_fails_the_job_with_a_reason() {
    let app = spawn_app().await;
    let r = upload(&app, "PK\u{3}\u{4}not really a spreadsheet", "application/octet-stream", "api").await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let job = finished(&app, &id).await;
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().unwrap().contains("XLSX"), "{job}");
}

#[tokio::test]
async fn an_import_interrupted_by_a_stop_runs_again_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let now = time::OffsetDateTime::now_utc();
    let job = ImportJob {
        id: ImportId::new(),
        source: crate::source("api"),
        sheet: None,
        status: ImportStatus::Running,
        counts: ImportCounts::default(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    store.create_import(job.clone(), CSV.as_bytes().to_vec()).await.unwrap();
    let app = spawn_on(store, Config::default(), dir).await;
    let done = finished(&app, &job.id.to_string()).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["created"], 1);
}
