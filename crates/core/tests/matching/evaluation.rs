//! Labelled evaluation: precision/recall of blocking + compare + decide on generated leads.
//!
//! Two measures: *record pairs* (each record against the earlier records sharing a key) and,
//! the one users see, the *leads capture ends with* (`support/clusters.rs`: each submission
//! against the stored leads, merged records and rewritten keys, then pairwise precision/recall
//! over the final leads). Recall is reported over all labelled pairs and over *resolvable* pairs
//! (pairs whose records share evidence a human could confirm them with: an email, a personal
//! phone, or the full name plus the company or postal code; see `generator::Truth::evidence` and
//! the crate README), and over *linked* pairs (joined by a chain of resolvable pairs through the
//! person's other records: what a reviewer holding all of them could confirm). Every figure is deterministic; the "measured" values in the comments are
//! the current ones, and the assertions sit a little below them.

#[path = "support/clusters.rs"]
mod clusters;
#[path = "support/eval.rs"]
mod eval;
#[path = "support/generator.rs"]
mod generator;

use std::sync::OnceLock;

use clusters::{Bridge, ClusterReport, Lookup};
use leadflow_core::matching::Model;

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
fn clusters_5k(bridge: Bridge) -> &'static ClusterReport {
    static STORE: OnceLock<ClusterReport> = OnceLock::new();
    static OFF: OnceLock<ClusterReport> = OnceLock::new();
    static ALL: OnceLock<ClusterReport> = OnceLock::new();
    let cell = match bridge {
        Bridge::UnlessConflict => &STORE,
        Bridge::Off => &OFF,
        Bridge::All => &ALL,
    };
    cell.get_or_init(|| {
        let (leads, model) = set_5k();
        let report = clusters::evaluate_clusters(leads, model, Lookup::STORE, bridge, 0);
        println!("leads after capture, bridges {bridge:?}:\n{}\n{}", report.summary(), report.breakdown_table());
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
    let rules = leadflow_core::matching::EmailRules::default();
    for (i, a) in leads.iter().enumerate() {
        for b in leads[i + 1..].iter().filter(|b| b.entity == a.entity) {
            match a.truth.evidence(&b.truth) {
                Some("email") => assert_eq!(
                    leadflow_core::matching::email_match_key(a.record.email.as_deref().unwrap(), &rules),
                    leadflow_core::matching::email_match_key(b.record.email.as_deref().unwrap(), &rules)
                ),
                Some("phone") => assert_eq!(a.record.phone, b.record.phone),
                Some(_) => assert!(a.record.last_name.is_some() && b.record.last_name.is_some()),
                None => {}
            }
        }
    }
}

/// What the product ends with: each submission matched against the leads (merged records,
/// rewritten keys, the store's lookup limits, bridges), pairwise precision/recall over the
/// final leads.
#[test]
fn leads_after_capture_meet_the_precision_target() {
    let report = clusters_5k(Bridge::UnlessConflict);
    assert_eq!(report.records, report_5k().records);
    // Issue 15's target: precision >= 0.995 (measured 0.9965) and recall >= 0.90 over all
    // labelled pairs, unlinkable ones included (measured 0.9015; 0.8978 before the recall round,
    // 0.8973 before issue 15).
    assert!(report.precision() >= 0.995, "precision {}", report.precision());
    assert!(report.recall() >= 0.90, "recall {}", report.recall());
    assert_eq!(report.wrong_bridges, 0, "measured: no bridge joins two people at 5k");
}

/// The issue's target: precision >= 0.99 with recall >= 0.95, on the leads capture ends with,
/// recall over the pairs the records link by evidence, directly or through the person's other
/// records (measured 0.9725 at 5k; 0.9685 before the recall round; before issue 15: 0.9680, 20k
/// 0.9707, 50k 0.9724), and over directly resolvable pairs (measured 0.9759). About 7 % of labelled pairs share no evidence by any chain: see the crate
/// README.
#[test]
fn issue_target_recall() {
    let report = clusters_5k(Bridge::UnlessConflict);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.precision_linked() >= 0.99, "precision {}", report.precision_linked());
    assert!(report.recall_linked() >= 0.97, "linked recall {}", report.recall_linked());
    assert!(report.recall_resolvable() >= 0.97, "resolvable recall {}", report.recall_resolvable());
    assert!(report.linked_pairs * 100 >= report.true_pairs * 90, "the unlinkable pairs stay a small minority");
}

/// Without bridges a person split over two leads stays split (measured recall 0.8663, 99 pairs
/// lost to an earlier split); bridging whatever the two leads say joins two people once at 5k
/// and 59 times at 50k (precision 0.9902 there, against 0.9926 with the conflict check).
#[test]
fn bridges_are_measured_against_the_alternatives() {
    let (store, off, all) = (clusters_5k(Bridge::UnlessConflict), clusters_5k(Bridge::Off), clusters_5k(Bridge::All));
    assert!(off.bridges == 0 && off.elsewhere_split > 50, "{}", off.elsewhere_split);
    assert!(store.recall() > off.recall() + 0.02, "{} vs {}", store.recall(), off.recall());
    assert!(store.elsewhere_split * 10 < off.elsewhere_split);
    assert!(all.wrong_bridges > store.wrong_bridges, "{} vs {}", all.wrong_bridges, store.wrong_bridges);
}

/// With fixed weights (no name frequencies) at 5k precision holds (measured 0.9947, recall
/// 0.9113); at 20k and 50k it falls below the target: see BENCHMARKS.md. Capture uses counted
/// frequencies for that reason.
#[test]
fn leads_with_fixed_weights_are_measured() {
    let (leads, _) = set_5k();
    let report = clusters::evaluate_clusters(leads, &Model::default(), Lookup::STORE, Bridge::UnlessConflict, 0);
    assert!(report.precision() >= 0.99, "precision {}", report.precision());
    assert!(report.recall() >= 0.90, "recall {}", report.recall());
}
