//! Full evaluation on a larger generated set.
//!
//! `cargo run --release --example evaluate -- [entities] [seed] [max_postings_per_key] [examples] [max_candidates]`
//!
//! `max_candidates` (default: none) is the per-query candidate cap of
//! `CandidateIndex::candidates_capped`.

#[path = "../tests/support/eval.rs"]
mod eval;
#[path = "../tests/support/generator.rs"]
mod generator;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let entities = arg(1, 50_000) as usize;
    let seed = arg(2, 42);
    let cap = arg(3, 256) as usize;
    let examples = arg(4, 0) as usize;
    let max_candidates = arg(5, u64::MAX) as usize;
    let started = std::time::Instant::now();
    let leads = generator::generate(generator::Config { entities, seed });
    let report = eval::evaluate_capped(&leads, &eval::model_for(&leads), cap, max_candidates, examples);
    println!(
        "seed={seed} max_postings_per_key={cap} max_candidates={}",
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
    eprintln!("elapsed {:.1?}", started.elapsed());
}
