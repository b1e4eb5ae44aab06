//! Change feed benchmark: one reader following `GET /v1/changes` on the release
//! `leadflow` binary.
//!
//! Fills a fresh store with BENCH_LEADS leads (default 100,000) in batches of 1,000, each
//! sent twice (a `lead.created`, then a `lead.updated` when the second submission merges
//! into it), then reads the whole feed from the start with one client, BENCH_PAGE changes
//! a page (default 10,000), and reports changes per second. The reader decodes every page
//! as a client would.
//!
//! Run: `cargo bench -p leadflow --bench changes`. On PostgreSQL:
//! `BENCH_DATABASE=postgres://postgres@127.0.0.1/postgres` (a fresh database on that
//! server, dropped after).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let leads: usize = std::env::var("BENCH_LEADS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let page: usize = std::env::var("BENCH_PAGE").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let postgres = std::env::var("BENCH_DATABASE").ok().map(|server| {
        rt.block_on(leadflow_testkit::postgres::TestDatabase::create_on(&server)).unwrap_or_else(|e| panic!("{e}"))
    });
    let database = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("leadflow.db").display()),
    };
    std::fs::write(dir.path().join("leadflow.toml"), "[matching]\nfuzzy = false\n").unwrap();
    let bin = common::binary();
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .args(["keys", "create", "--name", "bench", "--scope", "admin", "--database", &database])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
    let server = Command::new(&bin)
        .current_dir(dir.path())
        .env("LEADFLOW_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed when this ends, a panic included, so no server outlives the run.
    let mut server = Server(server);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = format!("http://{}", line.trim().trim_start_matches("listening on "));
    let http = leadflow_integrations::delivery::http_client().build().unwrap();
    println!("store: {}", if postgres.is_some() { "PostgreSQL" } else { "SQLite" });

    rt.block_on(async {
        let started = Instant::now();
        for chunk in 0..2 * leads.div_ceil(1000) {
            let (n, again) = (chunk / 2, chunk % 2 == 1);
            let batch: Vec<Value> = (0..1000.min(leads - n * 1000))
                .map(|i| {
                    let email = format!("f{n}-{i}@bench.example.com");
                    if again {
                        json!({"email": email, "job_title": "Analyst"})
                    } else {
                        json!({"email": email, "company": "Bench"})
                    }
                })
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
        let filled = started.elapsed();

        let started = Instant::now();
        let (mut after, mut read, mut pages) = ("0".to_owned(), 0usize, 0usize);
        loop {
            let r = http
                .get(format!("{base}/v1/changes?after={after}&limit={page}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            let n = body["changes"].as_array().unwrap().len();
            if n == 0 {
                break;
            }
            read += n;
            pages += 1;
            after = body["next"].as_str().unwrap().to_owned();
        }
        let took = started.elapsed();
        assert_eq!(read, 2 * leads, "each lead brings two changes");
        println!("\n| measurement | result |");
        println!("|---|---|");
        println!("| {leads} leads captured twice in batches of 1000 | {:.1} s |", filled.as_secs_f64());
        println!(
            "| one reader, {read} changes in {pages} pages of {page}: changes/s | {:.0} |",
            read as f64 / took.as_secs_f64()
        );
    });
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
