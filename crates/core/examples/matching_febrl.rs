//! FEBRL data sets 1 and 2 shaped as leads (see `data/matching/febrl/PROVENANCE.md`), streamed
//! through the simulated capture path: precision, recall, F1 and counts over the final leads,
//! for the suburb mapped to `city` and to `locality`.
//!
//! `cargo run --release -p leadflow-core --example matching_febrl -- [--pairs N]`
//!
//! `--pairs N` also prints up to N labelled pairs that do not merge when compared directly, with
//! their evidence and whether they share a blocking key, and up to N submissions that joined another person.

#[path = "../tests/matching/support/clusters.rs"]
mod clusters;
#[path = "../tests/matching/support/eval.rs"]
mod eval;
#[path = "../tests/matching/support/febrl.rs"]
mod febrl;
#[path = "../tests/matching/support/generator.rs"]
mod generator;

use clusters::{Bridge, Lookup};
use leadflow_core::matching::{Verdict, blocking_keys, compare, decide};

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
                let mut missed = 0;
                for (i, a) in leads.iter().enumerate() {
                    for b in leads[i + 1..].iter().filter(|b| b.entity == a.entity) {
                        let score = compare(&a.record, &b.record, &model);
                        let verdict = decide(&score, model.thresholds());
                        let (ka, kb) = (blocking_keys(&a.record), blocking_keys(&b.record));
                        let shared = ka.iter().any(|k| kb.contains(k));
                        if (verdict != Verdict::Merge || !shared) && missed < pairs {
                            missed += 1;
                            details.push(format!("missed {verdict:?} keys={shared}: {}", score.explain()));
                            details.push(format!("  {:?}\n  {:?}", a.record, b.record));
                        }
                    }
                }
                details.extend(c.wrong_join_examples.iter().chain(&c.wrong_bridge_examples).cloned());
            }
        }
    }
    for d in details {
        println!("{d}");
    }
}
