//! Training m/u on the labelled generator: the labels are used only to check what the
//! (unsupervised) training learned, never to train.

#[path = "support/clusters.rs"]
mod clusters;
#[path = "support/eval.rs"]
mod eval;
#[path = "support/generator.rs"]
mod generator;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use clusters::{Bridge, Lookup};
use leadflow_core::matching::{
    Field, Level, Model, NameFrequencies, Origin, Record, TrainOptions, Trained, compare, train,
};

/// Fewer random pairs than the default: tests run unoptimised.
fn options() -> TrainOptions {
    TrainOptions { random_pairs: 200_000, ..TrainOptions::default() }
}

/// 3,000 entities, seed 42, and what training learns from them.
fn trained_3k() -> &'static (Vec<generator::Lead>, Trained) {
    static SET: OnceLock<(Vec<generator::Lead>, Trained)> = OnceLock::new();
    SET.get_or_init(|| {
        let leads = generator::generate(generator::Config { entities: 3_000, seed: 42 });
        let records: Vec<Record> = leads.iter().map(|l| l.record.clone()).collect();
        let trained = train(&records, &Model::default(), &options());
        for t in &trained.levels {
            println!(
                "{:?}:{:?} m={:.5} u={:.6} w={:+.2} ({:?}/{:?})",
                t.field, t.level, t.m, t.u, t.weight, t.m_origin, t.u_origin
            );
        }
        println!("{:?}", trained.report);
        (leads, trained)
    })
}

#[test]
fn u_from_random_pairs_is_close_to_the_non_match_level_frequencies() {
    let (leads, trained) = trained_3k();
    // Every pair of different people in the first 1,500 records, compared with the same model.
    let model = Model::default();
    let sample = &leads[..1_500];
    let mut counts: BTreeMap<(Field, Level), u64> = BTreeMap::new();
    let mut comparable: BTreeMap<Field, u64> = BTreeMap::new();
    for (i, a) in sample.iter().enumerate() {
        for b in sample[..i].iter().filter(|b| b.entity != a.entity) {
            for e in compare(&a.record, &b.record, &model).parts {
                if e.field != Field::Context && !matches!(e.level, Level::Missing | Level::NotComparable) {
                    *counts.entry((e.field, e.level)).or_default() += 1;
                    *comparable.entry(e.field).or_default() += 1;
                }
            }
        }
    }
    let mut checked = 0;
    for ((field, level), count) in counts {
        let empirical = count as f64 / comparable[&field] as f64;
        let Some(t) = trained.level(field, level).filter(|t| t.u_origin == Origin::Learned) else {
            continue;
        };
        // Sampling error of 200,000 pairs plus the few true pairs among random ones.
        let tolerance = 0.01 + 0.1 * empirical;
        assert!((t.u - empirical).abs() <= tolerance, "{field:?}:{level:?} u {} vs {}", t.u, empirical);
        checked += 1;
    }
    assert!(checked >= 15, "most levels are learned: {checked}");
}

#[test]
fn em_converges_and_learns_that_matching_names_agree() {
    let (_, trained) = trained_3k();
    let r = &trained.report;
    assert!(r.converged, "{r:?}");
    assert!(r.candidate_pairs > 1_000, "{r:?}");
    for pass in &r.passes {
        assert!(pass.pairs > 500 && pass.lambda > 0.0 && pass.lambda < 1.0, "{pass:?}");
    }
    let m = |f, l| trained.level(f, l).map(|t| (t.m, t.m_origin));
    // The generator's people keep their names in most records (typos, nicknames, missing last
    // names and the odd shared mailbox aside): Exact is by far the likeliest level of a match.
    for field in [Field::FirstName, Field::LastName] {
        let (exact, origin) = m(field, Level::Exact).unwrap_or((0.0, Origin::TooRare));
        assert!(exact > 0.6 && origin == Origin::Learned, "m({field:?}, Exact) = {exact}");
        let others = trained.levels.iter().filter(|t| t.field == field && t.level != Level::Exact);
        assert!(others.clone().all(|t| t.m * 2.0 < exact), "{:?}", others.collect::<Vec<_>>());
    }
    // No learned weight contradicts the direction of the hand-set one (the guard rail keeps the
    // hand-set values where it would: a different mailbox at an already counted domain).
    let base = Model::default();
    for t in &trained.levels {
        let b = base.weight(t.field, t.level);
        assert!(t.weight * b >= 0.0, "{t:?} against {b}");
    }
    // Agreement is evidence for, disagreement against, for every name and contact field.
    for field in [Field::FirstName, Field::LastName, Field::Email, Field::Phone] {
        let w = |l| trained.level(field, l).map_or(0.0, |t| t.weight);
        assert!(w(Level::Exact) > 0.0 && w(Level::Different) < 0.0, "{field:?}");
    }
}

#[test]
fn the_trained_model_keeps_precision_on_the_leads_capture_ends_with() {
    let (leads, trained) = trained_3k();
    let frequencies = NameFrequencies::from_records(leads.iter().map(|l| &l.record));
    let run = |model: Model| {
        let model = model.with_frequencies(frequencies.clone());
        clusters::evaluate_clusters(leads, &model, Lookup::STORE, Bridge::UnlessConflict, 0)
    };
    let hand = run(Model::default());
    let learned = run(Model::default().with_trained(trained));
    println!(
        "hand-set: precision {:.4} recall {:.4}; trained: precision {:.4} recall {:.4}",
        hand.precision(),
        hand.recall(),
        learned.precision(),
        learned.recall()
    );
    assert!(learned.precision() >= 0.995, "precision {}", learned.precision());
    assert!(learned.precision() >= hand.precision() - 0.001, "{} vs {}", learned.precision(), hand.precision());
    assert!(learned.recall() >= 0.8, "recall {}", learned.recall());
}

#[test]
fn explanations_carry_the_learned_weights() {
    let (leads, trained) = trained_3k();
    let model = Model::default().with_trained(trained);
    let (a, b) = (&leads[0].record, &leads[1].record);
    let score = compare(a, b, &model);
    let mut seen = 0;
    for e in score.parts.iter().filter(|e| e.field != Field::Context) {
        if let Some(t) = trained.level(e.field, e.level) {
            assert!((e.weight - t.weight).abs() < 1e-9, "{e:?} vs {t:?}");
            seen += 1;
        }
    }
    assert!(seen > 0, "{}", score.explain());
}

#[test]
fn training_is_deterministic_and_round_trips_through_json() {
    let leads = generator::generate(generator::Config { entities: 400, seed: 9 });
    let records: Vec<Record> = leads.iter().map(|l| l.record.clone()).collect();
    let options = TrainOptions { random_pairs: 20_000, seed: 3, ..TrainOptions::default() };
    let once = train(&records, &Model::default(), &options);
    assert_eq!(once, train(&records, &Model::default(), &options));
    for threads in [1, 3] {
        let split = TrainOptions { threads, ..options.clone() };
        assert_eq!(once, train(&records, &Model::default(), &split), "{threads} threads");
    }
    let json = serde_json::to_string(&once).unwrap();
    let back: Trained = serde_json::from_str(&json).unwrap();
    // JSON keeps every value to within a unit in the last place.
    let (a, b) = (Model::default().with_trained(&once), Model::default().with_trained(&back));
    for t in &once.levels {
        assert!((a.weight(t.field, t.level) - b.weight(t.field, t.level)).abs() < 1e-9, "{t:?}");
    }
    assert_eq!((back.leads, &back.report), (once.leads, &once.report));
    let other = train(&records, &Model::default(), &TrainOptions { seed: 4, ..options });
    assert_ne!(other.levels, once.levels, "the seed draws other random pairs");
}

#[test]
fn trained_weights_combine_with_name_frequencies() {
    let (leads, trained) = trained_3k();
    let frequencies = NameFrequencies::from_records(leads.iter().map(|l| &l.record));
    let plain = Model::default().with_trained(trained);
    let counted = Model::default().with_frequencies(frequencies).with_trained(trained);
    assert!(counted.frequencies().is_some(), "training keeps the frequencies attached");
    let (a, b) = (&leads[0].record, &leads[0].record);
    assert_ne!(compare(a, b, &plain).score, compare(a, b, &counted).score, "the adjustment still applies");
}

#[test]
fn a_degenerate_store_keeps_the_base_weights() {
    let base = Model::default();
    let person = Record {
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        email: Some("ada@engines.co.uk".into()),
        company_key: Some("engines".into()),
        ..Record::default()
    };
    let stores: [Vec<Record>; 4] =
        [vec![], vec![person.clone()], vec![person.clone(), Record::default()], vec![person; 50]];
    for records in stores {
        let trained = train(&records, &base, &options());
        let model = Model::default().with_trained(&trained);
        assert_eq!(trained.leads, records.len());
        for p in &base.params().probabilities {
            assert!(
                (model.weight(p.field, p.level) - base.weight(p.field, p.level)).abs() < 1e-9,
                "{} records: {:?}:{:?} {} vs {}",
                records.len(),
                p.field,
                p.level,
                model.weight(p.field, p.level),
                base.weight(p.field, p.level)
            );
        }
    }
}
