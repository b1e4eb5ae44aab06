//! FEBRL data sets 1 and 2 shaped as leads (see `data/matching/febrl/PROVENANCE.md`), streamed
//! through the simulated capture path: precision, recall, F1 and counts over the final leads,
//! for the suburb mapped to `city` and to `locality`.
//!
//! `cargo run --release -p leadflow-core --example matching_febrl -- [--pairs N]`
//!
//! `--pairs N` also prints, per run: where the true pairs went on the final leads (merged,
//! unblocked, capped out, review or distinct, by score or by which hard rule) with up to N
//! examples per stage; the labelled record pairs compared directly, counted by verdict, the
//! hard rules that fired, whether they share a blocking key and their score band, with up to N
//! examples; and up to N submissions that joined another person.

#[path = "../tests/matching/support/clusters.rs"]
mod clusters;
#[path = "../tests/matching/support/eval.rs"]
mod eval;
#[path = "../tests/matching/support/febrl.rs"]
mod febrl;
#[path = "../tests/matching/support/generator.rs"]
mod generator;

use clusters::{Bridge, Lookup};
use leadflow_core::matching::{Model, Verdict, blocking_keys, compare, decide};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pairs = args.iter().position(|a| a == "--pairs").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(0);
    println!("| data set | suburb in | records | people | leads | precision | recall | F1 | TP | FP | FN |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut details = Vec::new();
    for set in [1, 2] {
        for shape in febrl::Shape::ALL {
            let leads = febrl::leads(febrl::dataset(set), shape);
            let model = eval::model_for(&leads);
            let c = clusters::evaluate_clusters(&leads, &model, Lookup::STORE, Bridge::UnlessConflict, pairs);
            println!(
                "| FEBRL {set} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {} | {} | {} |",
                if shape == febrl::Shape::SuburbAsCity { "city" } else { "locality" },
                c.records,
                c.entities,
                c.leads,
                c.precision(),
                c.recall(),
                c.f1(),
                c.tp,
                c.predicted_pairs - c.tp,
                c.true_pairs - c.tp,
            );
            if pairs > 0 {
                details.push(format!("== FEBRL {set}, {} ==", shape.name()));
                details.push(format!("final leads, where the true pairs went:\n{}", c.breakdown_table()));
                details.extend(c.miss_examples.iter().map(|(_, m)| m.clone()));
                details.push(record_pair_losses(&leads, &model, pairs));
                details.extend(c.wrong_join_examples.iter().chain(&c.wrong_bridge_examples).cloned());
            }
        }
    }
    for d in details {
        println!("{d}");
    }
}

/// Every labelled record pair compared directly: counts by verdict, fired rules, shared blocking
/// key and score band, and up to `examples` pairs that would not merge.
fn record_pair_losses(leads: &[generator::Lead], model: &Model, examples: usize) -> String {
    let th = model.thresholds();
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut shown = Vec::new();
    for (i, a) in leads.iter().enumerate() {
        for b in leads[i + 1..].iter().filter(|b| b.entity == a.entity) {
            let score = compare(&a.record, &b.record, model);
            let verdict = decide(&score, th);
            let (ka, kb) = (blocking_keys(&a.record), blocking_keys(&b.record));
            let shared = ka.iter().any(|k| kb.contains(k));
            let band = if score.score >= th.auto_merge {
                ">=merge"
            } else if score.score >= th.review {
                "review band"
            } else {
                "<review"
            };
            let rules: Vec<String> = score.rules.iter().map(|r| format!("{r:?}")).collect();
            let class = format!("{verdict:?} {band} keys={shared} rules=[{}]", rules.join(","));
            *counts.entry(class).or_default() += 1;
            if (verdict != Verdict::Merge || !shared) && shown.len() < examples * 2 {
                shown.push(format!("missed {verdict:?} keys={shared}: {}", score.explain()));
                shown.push(format!("  {:?}\n  {:?}", a.record, b.record));
            }
        }
    }
    let mut s = String::from("record pairs compared directly:\n");
    for (class, n) in &counts {
        s.push_str(&format!("  {n:>5} {class}\n"));
    }
    s.push_str(&shown.join("\n"));
    s
}
