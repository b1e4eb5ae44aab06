//! Full evaluation on a larger generated set: record pairs, then the leads a store would end with.
//!
//! `cargo run --release --example evaluate -- [entities] [seed] [max_postings_per_key] [examples] [max_candidates] [flags]`
//!
//! `max_candidates` (default: none) is the per-query candidate cap of
//! `CandidateIndex::candidates_capped` for the record-pair part. The cluster-level part (see
//! `tests/support/clusters.rs`) always uses the store's lookup limits. Flags:
//!
//! * `--fixed`: also run the cluster level with fixed weights (no name frequencies);
//! * `--bridges`: also run it without bridges, and with bridges whatever the two leads say;
//! * `--no-pairs`: skip the record-pair part.

#[path = "../tests/matching/support/clusters.rs"]
mod clusters;
#[path = "../tests/matching/support/eval.rs"]
mod eval;
#[path = "../tests/matching/support/generator.rs"]
mod generator;

use clusters::{Bridge, Lookup};

fn main() {
    let (flags, args): (Vec<String>, Vec<String>) = std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let flag = |f: &str| flags.iter().any(|g| g == f);
    let entities = arg(0, 50_000) as usize;
    let seed = arg(1, 42);
    let cap = arg(2, 256) as usize;
    let examples = arg(3, 0) as usize;
    let max_candidates = arg(4, u64::MAX) as usize;
    let started = std::time::Instant::now();
    let leads = generator::generate(generator::Config { entities, seed });
    let model = eval::model_for(&leads);
    println!("seed={seed} entities={entities}");
    if !flag("--no-pairs") {
        record_pairs(&leads, &model, cap, max_candidates, examples);
    }
    let mut runs = vec![(Bridge::UnlessConflict, "with frequencies", model.clone())];
    if flag("--bridges") {
        runs.push((Bridge::Off, "with frequencies", model.clone()));
        runs.push((Bridge::All, "with frequencies", model));
    }
    if flag("--fixed") {
        runs.push((Bridge::UnlessConflict, "fixed weights", leadflow_core::matching::Model::default()));
    }
    for (bridge, name, model) in runs {
        let c = clusters::evaluate_clusters(&leads, &model, Lookup::STORE, bridge, examples);
        println!("\n== leads after capture: bridges {bridge:?}, {name} ==\n{}\n{}", c.summary(), c.breakdown_table());
        for e in
            c.wrong_join_examples.iter().chain(&c.wrong_bridge_examples).chain(c.miss_examples.iter().map(|(_, e)| e))
        {
            println!("{e}");
        }
    }
    eprintln!("elapsed {:.1?}", started.elapsed());
}

fn record_pairs(
    leads: &[generator::Lead],
    model: &leadflow_core::matching::Model,
    cap: usize,
    max_candidates: usize,
    examples: usize,
) {
    let report = eval::evaluate_capped(leads, model, cap, max_candidates, examples);
    println!(
        "== record pairs: max_postings_per_key={cap} max_candidates={} ==",
        if max_candidates == usize::MAX { "none".to_owned() } else { max_candidates.to_string() }
    );
    println!("{}", report.summary());
    println!("{}", report.breakdown_table());
    for e in report
        .false_positive_examples
        .iter()
        .chain(&report.false_negative_examples)
        .chain(&report.unblocked_examples)
        .chain(&report.review_examples)
    {
        println!("{e}");
    }
    if !report.scored.is_empty() {
        for t10 in (100..=260).step_by(5) {
            let t = t10 as f64 / 10.0;
            let (mut tp, mut tpr, mut fp) = (0u64, 0u64, 0u64);
            for &(s, same, ok, resolvable) in &report.scored {
                if ok && s >= t {
                    if same {
                        tp += 1;
                        tpr += u64::from(resolvable);
                    } else {
                        fp += 1;
                    }
                }
            }
            println!(
                "threshold {t:5.1}: precision={:.4} recall={:.4} resolvable recall={:.4} fp={fp}",
                tp as f64 / (tp + fp).max(1) as f64,
                tp as f64 / report.true_pairs.max(1) as f64,
                tpr as f64 / report.resolvable_pairs.max(1) as f64
            );
        }
    }
}
