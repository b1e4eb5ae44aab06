//! `cargo bench --bench matching` (harness = false).
//!
//! 1. comparisons/s (compare + decide) over pairs of generated leads;
//! 2. blocking-key generations/s;
//! 3. store simulation: a HashMap index (`CandidateIndex`, cap 256 ids per key) over ~1,000,000
//!    generated leads; median / p99 time to match one new lead (keys → candidates → compare →
//!    decide) for 2,000 held-out leads.
//!
//! The model carries value frequencies counted over the indexed leads (as a store would count
//! them over its table). Queries use `CandidateIndex::candidates_capped` with a per-query cap of
//! `BENCH_MAX_CANDIDATES` (default 100; 0 = uncapped `candidates`).
//!
//! `BENCH_LEADS` overrides the index size.

#[path = "../tests/matching/support/generator.rs"]
mod generator;

use std::hint::black_box;
use std::time::{Duration, Instant};

use leadflow_core::matching::{CandidateIndex, Model, NameFrequencies, Verdict, blocking_keys, compare, decide};

fn main() {
    let model = Model::default();
    let sample = generator::generate(generator::Config { entities: 20_000, seed: 1 });
    let records: Vec<_> = sample.iter().map(|l| l.record.clone()).collect();

    // 1. comparisons/s
    let n = records.len();
    let rounds = 400_000usize;
    let start = Instant::now();
    let mut merges = 0usize;
    for i in 0..rounds {
        let a = &records[i % n];
        let b = &records[(i * 7 + 1) % n];
        let s = compare(black_box(a), black_box(b), &model);
        if decide(&s, model.thresholds()) == Verdict::Merge {
            merges += 1;
        }
    }
    let el = start.elapsed();
    println!(
        "compare+decide: {rounds} pairs in {el:.2?} -> {:.0} comparisons/s ({:.2} us each; {merges} merges)",
        rounds as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / rounds as f64
    );

    // 2. blocking keys/s
    let start = Instant::now();
    let mut total_keys = 0usize;
    let reps = 5;
    for _ in 0..reps {
        for r in &records {
            total_keys += black_box(blocking_keys(black_box(r))).len();
        }
    }
    let el = start.elapsed();
    let gens = reps * n;
    println!(
        "blocking_keys: {gens} records in {el:.2?} -> {:.0} records/s ({:.2} keys/record)",
        gens as f64 / el.as_secs_f64(),
        total_keys as f64 / gens as f64
    );

    // 3. store simulation
    let target: usize = std::env::var("BENCH_LEADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let start = Instant::now();
    let leads = generator::generate(generator::Config { entities: (target as f64 / 1.75) as usize + 2_000, seed: 99 });
    let gen_time = start.elapsed();
    let queries = 2_000usize;
    let indexed = leads.len().saturating_sub(queries).min(target);
    let (base, rest) = leads.split_at(indexed);
    let start = Instant::now();
    let mut index = CandidateIndex::new(256);
    for (i, l) in base.iter().enumerate() {
        index.insert(i as u32, &blocking_keys(&l.record));
    }
    let build = start.elapsed();
    let start = Instant::now();
    let model = model.with_frequencies(NameFrequencies::from_records(base.iter().map(|l| &l.record)));
    let freq_time = start.elapsed();
    let max_candidates: usize = std::env::var("BENCH_MAX_CANDIDATES").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    println!(
        "index: {} leads, {} distinct keys, generated in {gen_time:.1?}, indexed in {build:.1?}, \
         frequencies counted in {freq_time:.1?}; per-query candidate cap {max_candidates}",
        base.len(),
        index.key_count()
    );
    // Each query runs 3 times: the first run is the single-shot latency; the minimum of the 3
    // filters out preemption by other processes on a shared machine (the work is deterministic).
    let mut times: Vec<Duration> = Vec::with_capacity(queries);
    let mut best_times: Vec<Duration> = Vec::with_capacity(queries);
    let mut cands = Vec::new();
    let (mut total_cands, mut max_cands, mut found) = (0usize, 0usize, 0usize);
    for q in rest.iter().take(queries) {
        let mut best = Verdict::Distinct;
        let mut fastest = Duration::MAX;
        for run in 0..3 {
            let t = Instant::now();
            let keys = blocking_keys(&q.record);
            if max_candidates == 0 {
                index.candidates(&keys, &mut cands);
            } else {
                index.candidates_capped(&keys, max_candidates, &mut cands);
            }
            best = Verdict::Distinct;
            for &c in &cands {
                let s = compare(&q.record, &base[c as usize].record, &model);
                best = best.max(decide(&s, model.thresholds()));
            }
            let el = t.elapsed();
            if run == 0 {
                times.push(el);
            }
            fastest = fastest.min(el);
            black_box(best);
        }
        best_times.push(fastest);
        total_cands += cands.len();
        max_cands = max_cands.max(cands.len());
        if best == Verdict::Merge {
            found += 1;
        }
    }
    for (label, times) in [("single run", &mut times), ("min of 3 runs", &mut best_times)] {
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "match one new lead ({} queries, {label}): median {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}",
            times.len(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            times.last().copied().unwrap_or_default(),
        );
    }
    println!("candidates/query avg {:.1}, max {max_cands}; {found} merged", total_cands as f64 / queries.max(1) as f64);
}
