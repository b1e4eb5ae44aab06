//! Labelled evaluation: precision/recall of blocking + compare + decide on generated leads.
//!
//! Two measures: *record pairs* (each record against the earlier records sharing a key) and,
//! the one users see, the *leads capture ends with* (`support/clusters.rs`: each submission
//! against the stored leads, merged records and rewritten keys, then pairwise precision/recall
//! over the final leads). Recall is reported over all labelled pairs and over *resolvable* pairs
//! (pairs whose records share evidence a human could confirm them with: an email, a personal
//! phone, or the full name plus the company or postal code; see `generator::Truth::evidence` and
//! the crate README). Every figure is deterministic; the "measured" values in the comments are
//! the current ones, and the assertions sit a little below them.

#[path = "support/clusters.rs"]
mod clusters;
#[path = "support/eval.rs"]
mod eval;
#[path = "support/generator.rs"]
mod generator;

use std::sync::OnceLock;

use clusters::{ClusterReport, LeadView, Lookup};
use leadflow_matching::Model;

/// 5,000 entities, seed 42, and the model with frequencies counted over them.
fn set_5k() -> &'static (Vec<generator::Lead>, Model) {
    static SET: OnceLock<(Vec<generator::Lead>, Model)> = OnceLock::new();
    SET.get_or_init(|| {
        let leads = generator::generate(generator::Config { entities: 5_000, seed: 42 });
        let model = eval::model_for(&leads);
        (leads, model)
    })
}

/// Record pairs over the 5k set, per-key cap 256.
fn report_5k() -> &'static eval::Report {
    static REPORT: OnceLock<eval::Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let (leads, model) = set_5k();
        let report = eval::evaluate(leads, model, 256, 0);
        println!("{}\n{}", report.summary(), report.breakdown_table());
        report
    })
}

/// The 5k set streamed through the simulated capture path (store lookup limits).
fn clusters_5k(view: LeadView) -> &'static ClusterReport {
    static SURVIVOR: OnceLock<ClusterReport> = OnceLock::new();
    static MEMBERS: OnceLock<ClusterReport> = OnceLock::new();
    static UNLESS_CONFLICT: OnceLock<ClusterReport> = OnceLock::new();
    let cell = match view {
        LeadView::Survivor => &SURVIVOR,
        LeadView::Members => &MEMBERS,
        LeadView::MembersUnlessConflict => &UNLESS_CONFLICT,
    };
    cell.get_or_init(|| {
        let (leads, model) = set_5k();
        let report = clusters::evaluate_clusters(leads, model, Lookup::STORE, view, 0);
        println!("cluster level, {view:?}:\n{}\n{}", report.summary(), report.breakdown_table());
        report
    })
}

#[test]
fn record_pairs_meet_the_precision_target() {
    let report = report_5k();
    assert!(report.entities >= 5_000);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    // Over *all* labelled pairs, including the unresolvable ones (measured 0.8543).
    assert!(report.recall() >= 0.85, "recall {}", report.recall());
    // Measured 0.9666.
    assert!(report.recall_resolvable() >= 0.96, "resolvable recall {}", report.recall_resolvable());
    // Resolvable pairs are the large majority; the unresolvable ones stay in the set.
    assert!(report.resolvable_pairs * 10 >= report.true_pairs * 8);
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

/// What the product ends with: each submission matched against the leads (merged records,
/// rewritten keys, the store's lookup limits), pairwise precision/recall over the final leads.
#[test]
fn leads_after_capture_meet_the_precision_target() {
    let report = clusters_5k(LeadView::Survivor);
    assert_eq!(report.records, report_5k().records);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    // Measured 0.8663 over all labelled pairs (unresolvable ones included).
    assert!(report.recall() >= 0.86, "recall {}", report.recall());
}

/// The issue's target: precision >= 0.99 with recall >= 0.95, on the leads capture ends with,
/// recall over the resolvable pairs (measured 0.9504; 20k 0.9540, 50k 0.9529). Over all pairs
/// recall is ~0.86: see the crate README for the pairs no field can confirm.
#[test]
fn issue_target_recall() {
    let report = clusters_5k(LeadView::Survivor);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.recall_resolvable() >= 0.95, "resolvable recall {}", report.recall_resolvable());
}

/// A lead matched through every submission it absorbed, best score over them (a product
/// change, measured only): more recall, less precision. At 5k precision holds (measured
/// 0.9951, recall 0.8801, resolvable 0.9634); at 50k it does not (0.9874), see BENCHMARKS.md.
#[test]
fn matching_through_every_member_is_measured() {
    let report = clusters_5k(LeadView::Members);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.recall() >= 0.875, "recall {}", report.recall());
    assert!(report.recall_resolvable() >= 0.96, "resolvable recall {}", report.recall_resolvable());
}

/// The same, but a conflict with any member (a hard rule other than InsufficientIdentity)
/// keeps the submission out: precision holds at every size measured (5k 0.9970, 50k 0.9928),
/// recall between the two (5k 0.8720, resolvable 0.9566).
#[test]
fn matching_through_members_unless_one_conflicts_is_measured() {
    let report = clusters_5k(LeadView::MembersUnlessConflict);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.recall() >= 0.87, "recall {}", report.recall());
    assert!(report.recall_resolvable() >= 0.955, "resolvable recall {}", report.recall_resolvable());
}

/// Capture today uses the model without value frequencies (they are only counted by the batch
/// search). At 5k precision holds (measured 0.9953, recall 0.8800); at 20k it is 0.9901 and at
/// 50k 0.9881, below the target: see BENCHMARKS.md.
#[test]
fn leads_with_the_capture_model_are_measured() {
    let (leads, _) = set_5k();
    let report = clusters::evaluate_clusters(leads, &Model::default(), Lookup::STORE, LeadView::Survivor, 0);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.recall() >= 0.875, "recall {}", report.recall());
}
