//! Trains m/u on a generated set, times it, and compares the leads capture ends with under the
//! hand-set and the trained model.
//!
//! `cargo run --release -p leadflow-core --example matching_train -- [records] [seed] [--eval]`
//!
//! `records` (default 100,000) is the size of the generated store (the generator makes 1–5
//! records per entity; entities are added until there are that many). `--eval` also runs the
//! capture simulation (`tests/matching/support/clusters.rs`) with both models, with and without
//! name frequencies.

#[path = "../tests/matching/support/clusters.rs"]
mod clusters;
#[path = "../tests/matching/support/eval.rs"]
mod eval;
#[path = "../tests/matching/support/generator.rs"]
mod generator;

use clusters::{Bridge, Lookup};
use leadflow_core::matching::{Model, NameFrequencies, Record, TrainOptions, train};

fn main() {
    let (flags, args): (Vec<String>, Vec<String>) = std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let target = arg(0, 100_000) as usize;
    let seed = arg(1, 42);
    // About 2.2 records per entity: start there and grow until the store is large enough.
    let mut entities = target * 10 / 22;
    let leads = loop {
        let leads = generator::generate(generator::Config { entities, seed });
        if leads.len() >= target {
            break leads;
        }
        entities += entities / 10 + 1;
    };
    let leads = &leads[..target.min(leads.len())];
    let records: Vec<Record> = leads.iter().map(|l| l.record.clone()).collect();
    println!("records={} entities={} seed={seed}", records.len(), entities);

    let base = Model::default();
    let started = std::time::Instant::now();
    let trained = train(&records, &base, &TrainOptions::default());
    let elapsed = started.elapsed();
    let r = &trained.report;
    println!("trained in {elapsed:.2?}: random pairs {} kept base {:?}", r.random_pairs, r.kept_base);
    for pass in &r.passes {
        println!(
            "  EM over {:?} pairs (learning {:?}): {} pairs, {} iterations, converged {}, lambda {:.4}",
            pass.keys, pass.learned, pass.pairs, pass.iterations, pass.converged, pass.lambda
        );
    }
    println!(
        "{:<12} {:<20} {:>9} {:>9} {:>8} {:>8} | {:>9} {:>9} {:>8}",
        "field", "level", "m", "u", "weight", "origin", "base m", "base u", "base w"
    );
    for t in &trained.levels {
        let (bm, bu) = base
            .params()
            .probabilities
            .iter()
            .find(|p| p.field == t.field && p.level == t.level)
            .map_or((f64::NAN, f64::NAN), |p| (p.m, p.u));
        println!(
            "{:<12} {:<20} {:>9.6} {:>9.6} {:>+8.2} {:>8} | {:>9.6} {:>9.6} {:>+8.2}",
            format!("{:?}", t.field),
            format!("{:?}", t.level),
            t.m,
            t.u,
            t.weight,
            format!("{:?}/{:?}", t.m_origin, t.u_origin).chars().take(8).collect::<String>(),
            bm,
            bu,
            base.weight(t.field, t.level)
        );
    }
    if flags.iter().any(|f| f == "--eval") {
        let frequencies = NameFrequencies::from_records(records.iter());
        let learned = base.clone().with_trained(&trained);
        for (name, model) in [
            ("hand-set, fixed", base.clone()),
            ("trained, fixed", learned.clone()),
            ("hand-set, frequencies", base.clone().with_frequencies(frequencies.clone())),
            ("trained, frequencies", learned.with_frequencies(frequencies.clone())),
        ] {
            let c = clusters::evaluate_clusters(leads, &model, Lookup::STORE, Bridge::UnlessConflict, 0);
            println!(
                "{name:<22} precision={:.4} recall={:.4} resolvable recall={:.4} linked recall={:.4}",
                c.precision(),
                c.recall(),
                c.recall_resolvable(),
                c.recall_linked()
            );
        }
    }
}
