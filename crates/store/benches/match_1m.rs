//! Matching one new lead against a store of 1,000,000 leads, through the SQLite store's
//! own lookup: exact email through the leads' index, then the blocking-key index
//! (`lead_keys`, then the chosen candidates' `lead_records`), then scoring and the decision —
//! what the resolver does for a queued lead.
//!
//! The leads are generated (the matching crate's labelled generator: B2B people with
//! typos, nicknames, company variants, namesakes), indexed under their blocking keys and
//! bulk-loaded in one transaction; 2,000 held-out leads are then matched one at a time.
//!
//! Run: `cargo bench -p leadflow-store --bench match_1m` (BENCH_LEADS overrides the count;
//! BENCH_DB=PATH keeps the loaded store there and reuses it on the next run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/tests/matching/support/generator.rs"]
mod generator;

use leadflow_core::pipeline::Rules;
use leadflow_core::resolve::{self, Decision, Matching, Model};
use leadflow_store::sqlite::SqliteStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let target: usize = std::env::var("BENCH_LEADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    // BENCH_DB keeps the loaded store at that path, and a later run with the same path
    // and count skips loading it again.
    let kept = std::env::var_os("BENCH_DB").map(std::path::PathBuf::from);
    let reuse = kept.as_ref().is_some_and(|p| p.exists());
    let path = kept.unwrap_or_else(|| dir.path().join("bench.db"));
    if !reuse {
        drop(SqliteStore::open(&path, Rules::default()).unwrap());
    }

    // The generator makes a few records per person: ask for enough people.
    let started = Instant::now();
    let leads = generator::generate(generator::Config { entities: target * 3 / 5 + 2_000, seed: 11 });
    let (stored, probes) = leads.split_at(leads.len().saturating_sub(2_000).min(target));
    let probes: Vec<_> = probes.iter().take(2_000).map(|l| l.record.clone()).collect();
    assert!(probes.len() >= 1_000, "the generator made too few leads for held-out probes");
    println!("generated {} leads in {:.1?}", leads.len(), started.elapsed());

    let started = Instant::now();
    let model = Model::default();
    if !reuse {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;").unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut lead = tx
            .prepare(
                "INSERT INTO leads (id, email, version, created_at, updated_at, doc) VALUES (?1, NULL, 1, 0, 0, '{}')",
            )
            .unwrap();
            let mut key = tx.prepare("INSERT OR IGNORE INTO lead_keys (key, lead_id) VALUES (?1, ?2)").unwrap();
            let mut record = tx.prepare("INSERT INTO lead_records (lead_id, record) VALUES (?1, ?2)").unwrap();
            for l in stored {
                let id = uuid::Uuid::now_v7().to_string();
                lead.execute([&id]).unwrap();
                record.execute([&id, &serde_json::to_string(&l.record).unwrap()]).unwrap();
                for k in resolve::blocking_keys(&l.record, &model) {
                    key.execute([&k, &id]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
        drop(conn);
        println!("loaded {} leads with their keys in {:.1?}", stored.len(), started.elapsed());
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    let matching = Arc::new(Matching { fuzzy: true, ..Matching::default() });
    // Warm the page cache the way a running service has it warm.
    for r in probes.iter().take(200) {
        rt.block_on(store.match_record(r.clone(), matching.clone())).unwrap();
    }
    let (mut merges, mut reviews) = (0, 0);
    let mut times: Vec<Duration> = Vec::with_capacity(probes.len());
    for r in &probes {
        let t = Instant::now();
        let decision = rt.block_on(store.match_record(r.clone(), matching.clone())).unwrap();
        times.push(t.elapsed());
        match decision {
            Decision::Merge { .. } => merges += 1,
            Decision::Create { possible } if !possible.is_empty() => reviews += 1,
            Decision::Create { .. } => {}
        }
    }
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e6;
    println!("\n| store of {} leads | median | p90 | p99 | merges | to review |", stored.len());
    println!("|---|---|---|---|---|---|");
    println!(
        "| match one new lead ({} probes) | {:.0} µs | {:.0} µs | {:.0} µs | {merges} | {reviews} |",
        times.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}
