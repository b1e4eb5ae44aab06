//! Health read benchmark: the health report, the dashboard overview's data, one source's
//! and one destination's detail, and an alert evaluation, over a store holding
//! `BENCH_LEADS` leads (default 1,000,000) captured through 100 sources, with 90 days of
//! history per source and 10 destinations' tries.
//!
//! The leads are captured through the store (fuzzy matching off: this measures reading
//! health, not matching), which writes their counts as production does; the history
//! before today is added as counts. Then each read runs `BENCH_ITERATIONS` times (default
//! 200) and its p50, p99 and max are printed.
//!
//! Run: `cargo bench -p leadflow --bench health` (`BENCH_DATABASE=postgres://…` for a
//! fresh database on that server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use leadflow_app::App;
use leadflow_core::SourceName;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Config, SourceConfig};
use leadflow_core::health::{Attempt, ErrorClass, Firing, Scope, Tally, tally::metric};
use leadflow_core::pipeline::prepare;
use leadflow_store::CaptureItem;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const SOURCES: usize = 100;
const DESTINATIONS: usize = 10;

fn config() -> Config {
    let mut toml = String::from("[matching]\nfuzzy = false\n");
    for s in 0..SOURCES {
        toml.push_str(&format!("\n[[sources]]\nname = \"source-{s}\"\nadapter = \"json\"\n"));
    }
    for d in 0..DESTINATIONS {
        toml.push_str(&format!(
            "\n[[destinations]]\nname = \"crm-{d}\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/{d}\"\nsecret_env = \"S\"\nevents = [\"created\"]\n"
        ));
    }
    leadflow_core::config::parse(&toml).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn time<F: std::future::Future<Output = ()>>(name: &str, n: usize, mut run: impl FnMut() -> F) {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        run().await;
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "{name:<28} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.99).as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3
    );
}

fn main() {
    let leads: usize = std::env::var("BENCH_LEADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let iterations: usize = std::env::var("BENCH_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let postgres = std::env::var("BENCH_DATABASE").ok().map(|server| {
        rt.block_on(leadflow_testkit::postgres::TestDatabase::create_on(&server)).unwrap_or_else(|e| panic!("{e}"))
    });
    let url = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("leadflow.db").display()),
    };
    let config = Arc::new(config());
    rt.block_on(async {
        let store = leadflow_store::open(&url, config.rules()).await.unwrap();
        let app = App::new(store.clone(), config.clone());
        let sources: Vec<SourceConfig> =
            config.sources.iter().filter(|s| s.name != SourceName::api()).cloned().collect();

        // The leads, through capture, a thousand a call.
        let start = Instant::now();
        let mut i = 0u64;
        while (i as usize) < leads {
            let batch: Vec<CaptureItem> = (0..common::BATCH_SIZE.min(leads - i as usize))
                .map(|k| {
                    let n = i + k as u64;
                    let source = &sources[(n as usize) % SOURCES];
                    let payload: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&common::lead_json(0, n)).unwrap();
                    let candidate = prepare(&payload, source, &config.picklists).unwrap();
                    CaptureItem { submission: RawSubmission::new(source.name.clone(), None, payload), candidate }
                })
                .collect();
            i += batch.len() as u64;
            store.capture(batch).await.unwrap();
        }
        println!("captured {leads} leads through {SOURCES} sources in {:.1} s", start.elapsed().as_secs_f64());

        // Ninety days of history before today, a count per source and hour, and the
        // destinations' tries with their latencies.
        let now = OffsetDateTime::now_utc();
        for day in 1..90i64 {
            let mut t = Tally::default();
            for hour in 0..24i64 {
                let at = now - time::Duration::days(day) + time::Duration::hours(hour);
                for s in 0..SOURCES {
                    let name = format!("source-{s}");
                    t.add(Scope::Source, &name, metric::RECEIVED, at, 5);
                    t.add(Scope::Source, &name, metric::CREATED, at, 4);
                    t.add(Scope::Source, &name, metric::MERGED, at, 1);
                }
                for d in 0..DESTINATIONS {
                    let name = format!("crm-{d}");
                    for k in 0..20u64 {
                        let outcome = if k == 0 {
                            Attempt::Failed { class: ErrorClass::ServerError, dead: false }
                        } else {
                            Attempt::Delivered { latency: Duration::from_millis(200 * k) }
                        };
                        t.attempt(&name, outcome, at);
                    }
                }
            }
            store.count(t).await.unwrap();
        }
        store.prune_health(now).await.unwrap();
        println!("history written; reading");

        let firing = Firing::default();
        time("health report (/v1/health)", iterations, || async {
            let (_, firing) = leadflow_app::alerts::firing(&app).await.unwrap();
            leadflow_app::health::report(&app, &firing).await.unwrap();
        })
        .await;
        time("dashboard overview (/ui)", iterations, || async {
            let (_, firing) = leadflow_app::alerts::firing(&app).await.unwrap();
            leadflow_app::health::overview(&app, &firing, 14).await.unwrap();
        })
        .await;
        time("one source, 90-day series", iterations, || async {
            leadflow_app::health::source(&app, "source-7", &firing).await.unwrap().unwrap();
        })
        .await;
        time("one destination, series", iterations, || async {
            leadflow_app::health::destination(&app, "crm-3", &firing).await.unwrap().unwrap();
        })
        .await;
        time("alert evaluation", iterations, || async {
            leadflow_app::alerts::evaluate(&app, OffsetDateTime::now_utc()).await.unwrap();
        })
        .await;
        store.close().await.unwrap();
    });
    // The test database is dropped with its handle.
    drop(postgres);
}
