//! Delivery benchmark: the release `leadflow` binary delivering `lead.created` to a fast
//! local webhook receiver (in this process, answering 204 at once), on a fresh SQLite
//! file.
//!
//! Measures, in one run: deliveries per second while a backlog drains (leads captured in
//! batches of 1,000 as fast as the server takes them), then capture-to-delivered latency
//! (from sending `POST /v1/leads` to the receiver seeing the webhook) for single leads
//! sent at a steady rate.
//!
//! Run: `cargo bench -p leadflow --bench deliveries` (BENCH_LEADS=N for the backlog,
//! default 20000; BENCH_SECONDS=N for the latency phase, default 10). With
//! `BENCH_ROUTING=1` every lead comes from a priority source and the destination
//! subscribes to `lead.assigned` instead: each delivery then also measures routing (the
//! queue row, the round-robin turn, the daily count, the assignment) before it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lead id → when the receiver saw it.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(
    axum::extract::State(seen): axum::extract::State<Seen>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let at = Instant::now();
    if let Ok(event) = serde_json::from_slice::<Value>(&body)
        && let Some(id) = event["data"]["id"].as_str()
    {
        seen.lock().unwrap().entry(id.to_owned()).or_insert(at);
    }
    axum::http::StatusCode::NO_CONTENT
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let leads: usize = std::env::var("BENCH_LEADS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let seen: Seen = Arc::default();
    let receiver = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });

    let routing = std::env::var("BENCH_ROUTING").is_ok_and(|v| v == "1");
    let (event, routing_section) = if routing {
        let reps: String = (0..8).map(|i| format!("[[routing.reps]]\nid = \"rep{i}@bench.example.com\"\n")).collect();
        let ids: Vec<String> = (0..8).map(|i| format!("\"rep{i}@bench.example.com\"")).collect();
        let rules =
            format!("[[routing.rules]]\nname = \"all\"\nstrategy = \"round_robin\"\nreps = [{}]\n", ids.join(", "));
        ("assigned", format!("[routing]\nfallback_owner = \"queue\"\npriority_sources = [\"api\"]\n{reps}{rules}"))
    } else {
        ("created", String::new())
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leadflow.toml"),
        format!(
            r#"
{routing_section}
[delivery]
concurrency = 64

[[destinations]]
name = "bench"
type = "webhook"
url = "http://{receiver}/hook"
secret_env = "BENCH_HOOK_SECRET"
events = ["{event}"]
rate_limit = {{ per_second = 1000000.0, burst = 100000 }}
"#
        ),
    )
    .unwrap();
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
        .env("BENCH_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = format!("http://{}", line.trim().trim_start_matches("listening on "));
    let http = leadflow_integrations::delivery::http_client().build().unwrap();

    println!("\n| measurement | result |");
    println!("|---|---|");
    rt.block_on(async {
        // Throughput: a backlog of `leads` deliveries, drained by the worker.
        let started = Instant::now();
        for chunk in 0..leads.div_ceil(1000) {
            let batch: Vec<Value> = (0..1000.min(leads - chunk * 1000))
                .map(|i| json!({"email": format!("t{chunk}-{i}@bench.example.com"), "company": "Bench"}))
                .collect();
            let r = http
                .post(format!("{base}/v1/leads/batch"))
                .bearer_auth(&token)
                .json(&json!({"leads": batch}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "batch: {}", r.status());
        }
        let captured = started.elapsed();
        let deadline = Instant::now() + Duration::from_secs(600);
        while seen.lock().unwrap().len() < leads {
            assert!(Instant::now() < deadline, "the backlog did not drain");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let times: Vec<Instant> = seen.lock().unwrap().values().copied().collect();
        let first = times.iter().min().copied().unwrap();
        let last = times.iter().max().copied().unwrap();
        let rate = leads as f64 / (last - first).as_secs_f64();
        println!("| {leads} leads captured in batches of 1000 | {:.1} s |", captured.as_secs_f64());
        println!("| deliveries/s while the backlog drains (first to last receipt) | {rate:.0} |");

        // Latency: single leads at a steady 200/s, each timed from send to receipt.
        seen.lock().unwrap().clear();
        let mut sent: Vec<(String, Instant)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let phase = Instant::now();
        let mut i = 0;
        while phase.elapsed() < Duration::from_secs(seconds) {
            tick.tick().await;
            let at = Instant::now();
            let r = http
                .post(format!("{base}/v1/leads"))
                .bearer_auth(&token)
                .json(&json!({"email": format!("l{i}@bench.example.com")}))
                .send()
                .await
                .unwrap();
            let created: Value = r.json().await.unwrap();
            sent.push((created["id"].as_str().unwrap().to_owned(), at));
            i += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.lock().unwrap().len() < sent.len() {
            assert!(Instant::now() < deadline, "latency-phase deliveries did not arrive");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let received = seen.lock().unwrap().clone();
        let mut latencies: Vec<Duration> =
            sent.iter().filter_map(|(id, at)| received.get(id).map(|r| r.saturating_duration_since(*at))).collect();
        latencies.sort();
        println!(
            "| capture-to-delivered, {} single leads at about {:.0}/s: p50 / p99 / max | {:.1} ms / {:.1} ms / {:.1} ms |",
            latencies.len(),
            latencies.len() as f64 / seconds as f64,
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
