//! Event ingestion benchmark: the release `leadflow` binary on a fresh SQLite file with
//! 20 scoring rules (12 on the lead, 8 behavioural with decay, caps, windows and URL
//! globs). 10,000 leads are captured first; then 4 connections send `POST
//! /v1/events/batch` with 1000 events a request, each naming a lead by email, so every
//! event is stored and its lead rescored in the same transaction.
//!
//! Run: `cargo bench -p leadflow --bench events` (BENCH_SECONDS=N, default 10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEADS: u64 = 10_000;
const CONNECTIONS: usize = 4;
const BATCH: usize = 1000;

const RULES: &str = r#"
[scoring]
mql_threshold = 60
decay_half_life_days = 30
gate = ["email", "company"]
[[scoring.rules]]
name = "target industry"
when = { field = "industry", in = ["software", "financial_services"] }
points = 15
[[scoring.rules]]
name = "big company"
when = { field = "employee_count", gte = 200 }
points = 10
[[scoring.rules]]
name = "target country"
when = { field = "country", in = ["US", "CA", "GB", "DE"] }
points = 5
[[scoring.rules]]
name = "decision maker"
when = { derived = "seniority", in = ["c_level", "vp", "director", "head"] }
points = 15
[[scoring.rules]]
name = "research"
when = { derived = "department", is = "research" }
points = 5
[[scoring.rules]]
name = "free mail"
when = { derived = "free_mail", is = true }
points = -20
[[scoring.rules]]
name = "disposable"
when = { derived = "disposable_email", is = true }
points = -50
[[scoring.rules]]
name = "student"
when = { field = "job_title", contains = "student" }
points = -30
[[scoring.rules]]
name = "competitor"
when = { field = "email_domain", in = ["rival.com"] }
points = -100
[[scoring.rules]]
name = "phone given"
when = { field = "phone", exists = true }
points = 3
[[scoring.rules]]
name = "pro plan"
when = { field = "custom.plan", in = ["pro", "enterprise"] }
points = 5
[[scoring.rules]]
name = "paid search"
when = { field = "utm_source", is = "google" }
points = 2
[[scoring.rules]]
name = "pricing page"
when = { event = "page_view", url_matches = "*/pricing*", within_days = 30 }
points = 5
cap = 20
decay = true
[[scoring.rules]]
name = "docs reader"
when = { event = "page_view", url_matches = "*/docs/*", within_days = 60 }
points = 1
cap = 10
decay = true
[[scoring.rules]]
name = "any page"
when = { event = "page_view", within_days = 14 }
points = 0.5
cap = 10
decay = true
[[scoring.rules]]
name = "demo request"
when = { event = "demo_request" }
points = 30
decay = true
[[scoring.rules]]
name = "webinar"
when = { event = ["webinar_attended", "webinar_replay"], within_days = 90 }
points = 10
cap = 20
decay = true
[[scoring.rules]]
name = "email clicks"
when = { event = "email_click", min_count = 3 }
points = 2
cap = 10
[[scoring.rules]]
name = "regular visitor"
when = { event = "*", min_count = 20, within_days = 30 }
points = 10
once = true
[[scoring.rules]]
name = "unsubscribed"
when = { event = "unsubscribe" }
points = -15
cap = 15
"#;

fn email(i: u64) -> String {
    let lead: serde_json::Value = serde_json::from_str(&common::lead_json(0, i)).unwrap();
    lead["email"].as_str().unwrap().to_owned()
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leadflow.toml"), RULES).unwrap();
    let bin = common::binary();
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .args(["keys", "create", "--name", "bench", "--scope", "admin"])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
    let mut server = Command::new(&bin)
        .current_dir(dir.path())
        .env("LEADFLOW_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = format!("http://{}", line.trim().trim_start_matches("listening on "));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (rate, p50, p99, total, errors) = rt.block_on(async {
        let http = leadflow_integrations::delivery::http_client().build().unwrap();
        for chunk in 0..LEADS / BATCH as u64 {
            let leads: Vec<serde_json::Value> = (0..BATCH as u64)
                .map(|k| serde_json::from_str(&common::lead_json(0, chunk * BATCH as u64 + k)).unwrap())
                .collect();
            let r = http
                .post(format!("{base}/v1/leads/batch"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "leads": leads }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
        let emails: std::sync::Arc<Vec<String>> = std::sync::Arc::new((0..LEADS).map(email).collect());
        let kinds = ["page_view", "page_view", "page_view", "email_click", "webinar_attended", "demo_request"];
        let urls = ["https://example.com/pricing", "https://example.com/docs/api", "https://example.com/blog/post"];
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let (http, base, token, emails) = (http.clone(), base.clone(), token.clone(), emails.clone());
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut sent, mut errors) = (Vec::new(), 0u64, 0u64);
                let mut n = c as u64;
                while Instant::now() < deadline {
                    let events: Vec<serde_json::Value> = (0..BATCH)
                        .map(|_| {
                            n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            let k = (n >> 33) as usize;
                            serde_json::json!({
                                "type": kinds[k % kinds.len()],
                                "email": emails[k % emails.len()],
                                "url": urls[k % urls.len()],
                            })
                        })
                        .collect();
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/v1/events/batch"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({ "events": events }))
                        .send()
                        .await
                        .unwrap();
                    if r.status().is_success() {
                        let body: serde_json::Value = r.json().await.unwrap();
                        assert_eq!(body["attached"], BATCH, "every event names a lead");
                        sent += BATCH as u64;
                    } else {
                        errors += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, sent, errors)
            }));
        }
        let (mut latencies, mut total, mut errors) = (Vec::new(), 0u64, 0u64);
        for t in tasks {
            let (l, s, e) = t.await.unwrap();
            latencies.extend(l);
            total += s;
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        (total as f64 / elapsed, pct(0.5), pct(0.99), total, errors)
    });
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
    println!("\n| measurement | rate | p50 per batch | p99 per batch | errors |");
    println!("|---|---|---|---|---|");
    println!(
        "| POST /v1/events/batch (1000 events, each rescoring its lead; 20 rules; {LEADS} leads), {CONNECTIONS} connections | {rate:.0} events/s ({total} events) | {:.1} ms | {:.1} ms | {errors} |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
