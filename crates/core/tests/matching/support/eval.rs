//! Pairwise evaluation of blocking + compare + decide over generated leads, with a breakdown of
//! where true pairs are lost (by stage, by the evidence they share, by perturbation kind).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use leadflow_core::matching::{CandidateIndex, Model, NameFrequencies, Verdict, blocking_keys, compare, decide};

use super::generator::{KIND_NAMES, Lead, Truth};

/// What happened to one true pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Auto-merged.
    Merged,
    /// The two records share no blocking key.
    Unblocked,
    /// They share keys, but every shared key is a stop key (over the per-key cap) or the pair was
    /// cut by the per-query candidate cap.
    CappedOut,
    /// Score ≥ auto-merge but a hard rule lowered it to Review.
    ReviewByRule,
    /// Score in the review band.
    Review,
    /// Score ≥ review but a hard rule lowered it to Distinct.
    DistinctByRule,
    /// Score below the review threshold.
    DistinctByScore,
    /// Cluster level only: the lead scored Merge, but the submission joined another lead (an
    /// exact email match elsewhere, or a higher score).
    MergedElsewhere,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Merged,
        Stage::Unblocked,
        Stage::CappedOut,
        Stage::ReviewByRule,
        Stage::Review,
        Stage::DistinctByRule,
        Stage::DistinctByScore,
        Stage::MergedElsewhere,
    ];
    /// The stages a record-pair evaluation can produce.
    pub const PAIRWISE: [Stage; 7] = [
        Stage::Merged,
        Stage::Unblocked,
        Stage::CappedOut,
        Stage::ReviewByRule,
        Stage::Review,
        Stage::DistinctByRule,
        Stage::DistinctByScore,
    ];

    fn column(self) -> &'static str {
        match self {
            Stage::Merged => "merged",
            Stage::Unblocked => "unblocked",
            Stage::CappedOut => "capped",
            Stage::ReviewByRule => "review:rl",
            Stage::Review => "review",
            Stage::DistinctByRule => "dist:rule",
            Stage::DistinctByScore => "dist:scr",
            Stage::MergedElsewhere => "elsewhere",
        }
    }
}

/// Counts per [`Stage`], in `Stage::ALL` order.
pub type StageCounts = [u64; 8];

/// Evaluation counts and derived figures.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub entities: usize,
    pub records: usize,
    pub true_pairs: u64,
    /// True pairs whose records carry evidence a human could confirm them with
    /// (see `generator::Truth::evidence`).
    pub resolvable_pairs: u64,
    /// True pairs sharing at least one blocking key (no cap).
    pub true_pairs_sharing_key: u64,
    /// True pairs that became candidates (after the caps).
    pub true_pairs_candidates: u64,
    pub candidate_pairs: u64,
    pub tp: u64,
    /// Auto-merged resolvable true pairs.
    pub tp_resolvable: u64,
    pub fp: u64,
    pub review_true: u64,
    pub review_false: u64,
    /// Stage counts of true pairs: "all", "resolvable", "unresolvable", then by evidence, then
    /// by perturbation kind (a pair has the kinds of both of its records).
    pub breakdown: Vec<(String, StageCounts)>,
    /// Hard rules that lowered true pairs scoring ≥ review (rule → pairs).
    pub rule_losses: Vec<(String, u64)>,
    /// Hard rules behind the non-matching pairs that scored ≥ auto-merge but were lowered.
    pub rule_saves: Vec<(String, u64)>,
    pub false_positive_examples: Vec<String>,
    pub false_negative_examples: Vec<String>,
    pub unblocked_examples: Vec<String>,
    pub review_examples: Vec<String>,
    /// (score, same entity, hard-rule ceiling allows merge, resolvable) per candidate pair.
    pub scored: Vec<(f64, bool, bool, bool)>,
}

impl Report {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// Recall over all labelled pairs.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.true_pairs)
    }
    /// Recall over resolvable pairs only.
    pub fn recall_resolvable(&self) -> f64 {
        ratio(self.tp_resolvable, self.resolvable_pairs)
    }
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
    pub fn f1_resolvable(&self) -> f64 {
        f1(self.precision(), self.recall_resolvable())
    }
    pub fn blocking_recall(&self) -> f64 {
        ratio(self.true_pairs_sharing_key, self.true_pairs)
    }
    pub fn candidate_recall(&self) -> f64 {
        ratio(self.true_pairs_candidates, self.true_pairs)
    }
    /// Average number of candidates compared per incoming record.
    pub fn candidates_per_record(&self) -> f64 {
        self.candidate_pairs as f64 / self.records.max(1) as f64
    }
    /// Recall if every Review pair were confirmed by a human.
    pub fn recall_with_review(&self) -> f64 {
        ratio(self.tp + self.review_true, self.true_pairs)
    }
    fn row(&self, name: &str) -> StageCounts {
        self.breakdown.iter().find(|(n, _)| n == name).map(|(_, c)| *c).unwrap_or_default()
    }
    /// Blocking recall over resolvable pairs.
    pub fn blocking_recall_resolvable(&self) -> f64 {
        let c = self.row("resolvable");
        ratio(c.iter().sum::<u64>() - c[1], c.iter().sum())
    }

    pub fn summary(&self) -> String {
        format!(
            "entities={} records={} true_pairs={} resolvable={} unresolvable={}\n\
             auto-merge: precision={:.4} recall={:.4} F1={:.4} (TP={} FP={} FN={})\n\
             resolvable pairs: recall={:.4} F1={:.4} (TP={} FN={})\n\
             review band: {} true pairs + {} non-matching pairs (recall incl. review={:.4})\n\
             blocking recall (share of true pairs sharing >=1 key)={:.4} (resolvable {:.4}); after caps={:.4}\n\
             candidates per record={:.2} (candidate pairs={})",
            self.entities,
            self.records,
            self.true_pairs,
            self.resolvable_pairs,
            self.true_pairs - self.resolvable_pairs,
            self.precision(),
            self.recall(),
            self.f1(),
            self.tp,
            self.fp,
            self.true_pairs - self.tp,
            self.recall_resolvable(),
            self.f1_resolvable(),
            self.tp_resolvable,
            self.resolvable_pairs - self.tp_resolvable,
            self.review_true,
            self.review_false,
            self.recall_with_review(),
            self.blocking_recall(),
            self.blocking_recall_resolvable(),
            self.candidate_recall(),
            self.candidates_per_record(),
            self.candidate_pairs,
        )
    }

    /// The loss breakdown as a text table.
    pub fn breakdown_table(&self) -> String {
        let mut s = stage_table(&self.breakdown, &Stage::PAIRWISE);
        s.push_str(&rule_lines(&self.rule_losses, &self.rule_saves));
        s
    }
}

/// Stage counts per group of true pairs as a text table, with the given stage columns
/// (`Stage::Merged` first: the recall column follows it).
pub fn stage_table(rows: &[(String, StageCounts)], columns: &[Stage]) -> String {
    let mut s = format!("{:<30} {:>7} {:>7} {:>7} |", "true pairs", "pairs", "merged", "recall");
    for stage in &columns[1..] {
        s.push_str(&format!(" {:>9}", stage.column()));
    }
    s.push('\n');
    for (name, c) in rows {
        let total: u64 = c.iter().sum();
        if total == 0 {
            continue;
        }
        s.push_str(&format!("{:<30} {:>7} {:>7} {:>7.4} |", name, total, c[0], ratio(c[0], total)));
        for stage in &columns[1..] {
            s.push_str(&format!(" {:>9}", c[*stage as usize]));
        }
        s.push('\n');
    }
    s
}

/// The two "hard rules lowering ..." lines under a breakdown table.
pub fn rule_lines(losses: &[(String, u64)], saves: &[(String, u64)]) -> String {
    let mut s = String::from("hard rules lowering true pairs (score >= review):");
    for (r, n) in losses {
        s.push_str(&format!(" {r}={n}"));
    }
    s.push_str("\nhard rules lowering non-matching pairs (score >= auto-merge):");
    for (r, n) in saves {
        s.push_str(&format!(" {r}={n}"));
    }
    s.push('\n');
    s
}

pub fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

pub fn add(map: &mut Vec<(String, StageCounts)>, name: &str, stage: Stage) {
    let i = stage as usize;
    if let Some((_, c)) = map.iter_mut().find(|(n, _)| n == name) {
        c[i] += 1;
    } else {
        let mut c = StageCounts::default();
        c[i] = 1;
        map.push((name.to_owned(), c));
    }
}

/// Empty breakdown rows: "all", "resolvable", "unresolvable", by evidence, by perturbation kind.
pub fn breakdown_rows() -> Vec<(String, StageCounts)> {
    let mut rows: Vec<(String, StageCounts)> =
        ["all", "resolvable", "unresolvable"].iter().map(|n| ((*n).to_owned(), StageCounts::default())).collect();
    for n in ["email", "phone", "name+company", "name+postal"] {
        rows.push((format!("evidence: {n}"), StageCounts::default()));
    }
    for (_, n) in KIND_NAMES {
        rows.push(((*n).to_owned(), StageCounts::default()));
    }
    rows
}

/// Counts one true pair (records with truths `a`, `b`) at `stage` in every row it belongs to.
pub fn add_pair(rows: &mut Vec<(String, StageCounts)>, a: &Truth, b: &Truth, stage: Stage) {
    add(rows, "all", stage);
    match a.evidence(b) {
        Some(e) => {
            add(rows, "resolvable", stage);
            add(rows, &format!("evidence: {e}"), stage);
        }
        None => add(rows, "unresolvable", stage),
    }
    let kinds = a.kinds | b.kinds;
    for (bit, name) in KIND_NAMES {
        if kinds & bit != 0 {
            add(rows, name, stage);
        }
    }
}

pub fn bump(list: &mut Vec<(String, u64)>, name: String) {
    if let Some((_, n)) = list.iter_mut().find(|(r, _)| *r == name) {
        *n += 1;
    } else {
        list.push((name, 1));
    }
}

/// The default model with value frequencies counted over the leads (what a store would count
/// over its table; no labels involved).
pub fn model_for(leads: &[Lead]) -> Model {
    Model::default().with_frequencies(NameFrequencies::from_records(leads.iter().map(|l| &l.record)))
}

/// Streams the leads through a [`CandidateIndex`] like a store would: each lead is matched
/// against the earlier ones sharing a non-stop key, then indexed.
pub fn evaluate(leads: &[Lead], model: &Model, max_postings_per_key: usize, examples: usize) -> Report {
    evaluate_capped(leads, model, max_postings_per_key, usize::MAX, examples)
}

/// [`evaluate`] with a per-query candidate cap ([`CandidateIndex::candidates_capped`]).
pub fn evaluate_capped(
    leads: &[Lead],
    model: &Model,
    max_postings_per_key: usize,
    max_candidates: usize,
    examples: usize,
) -> Report {
    let keys: Vec<Vec<String>> = leads.iter().map(|l| blocking_keys(&l.record)).collect();
    let mut report = Report {
        records: leads.len(),
        entities: leads.iter().map(|l| l.entity).collect::<HashSet<_>>().len(),
        ..Report::default()
    };
    let mut by_entity: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, l) in leads.iter().enumerate() {
        by_entity.entry(l.entity).or_default().push(i);
    }
    let mut index = CandidateIndex::new(max_postings_per_key);
    let mut candidates = Vec::new();
    // (earlier, later) true pair → stage, for the true pairs that became candidates.
    let mut outcome: HashMap<(usize, usize), Stage> = HashMap::new();
    for (i, lead) in leads.iter().enumerate() {
        if max_candidates == usize::MAX {
            index.candidates(&keys[i], &mut candidates);
        } else {
            index.candidates_capped(&keys[i], max_candidates, &mut candidates);
        }
        for &j in &candidates {
            let j = j as usize;
            report.candidate_pairs += 1;
            let other = &leads[j];
            let same = other.entity == lead.entity;
            let score = compare(&lead.record, &other.record, model);
            let verdict = decide(&score, model.thresholds());
            let ceiling = score.ceiling();
            let evidence = lead.truth.evidence(&other.truth);
            if examples > 0 {
                report.scored.push((score.score, same, ceiling == Verdict::Merge, same && evidence.is_some()));
            }
            let th = model.thresholds();
            if same {
                report.true_pairs_candidates += 1;
                let stage = match verdict {
                    Verdict::Merge => Stage::Merged,
                    Verdict::Review if score.score >= th.auto_merge => Stage::ReviewByRule,
                    Verdict::Review => Stage::Review,
                    Verdict::Distinct if score.score >= th.review => Stage::DistinctByRule,
                    Verdict::Distinct => Stage::DistinctByScore,
                };
                if matches!(stage, Stage::ReviewByRule | Stage::DistinctByRule) {
                    for r in &score.rules {
                        if r.ceiling() < Verdict::Merge {
                            bump(&mut report.rule_losses, format!("{r:?}"));
                        }
                    }
                }
                outcome.insert((j, i), stage);
            } else if verdict != Verdict::Merge && score.score >= th.auto_merge {
                for r in &score.rules {
                    bump(&mut report.rule_saves, format!("{r:?}"));
                }
            }
            let describe = |tag: &str| {
                format!(
                    "{tag} [{}] {}\n  a={:?}\n  b={:?}",
                    evidence.unwrap_or("unresolvable"),
                    score.explain(),
                    lead.record,
                    other.record
                )
            };
            match (verdict, same) {
                (Verdict::Merge, true) => report.tp += 1,
                (Verdict::Merge, false) => {
                    report.fp += 1;
                    if report.false_positive_examples.len() < examples {
                        report.false_positive_examples.push(describe("FP"));
                    }
                }
                (Verdict::Review, true) => {
                    report.review_true += 1;
                    if evidence.is_some() && report.review_examples.len() < examples {
                        report.review_examples.push(describe("REVIEW"));
                    }
                }
                (Verdict::Review, false) => report.review_false += 1,
                (Verdict::Distinct, true) => {
                    if evidence.is_some() && report.false_negative_examples.len() < examples {
                        report.false_negative_examples.push(describe("FN"));
                    }
                }
                (Verdict::Distinct, false) => {}
            }
        }
        index.insert(i as u32, &keys[i]);
    }
    let mut rows = breakdown_rows();
    let mut members: Vec<&Vec<usize>> = by_entity.values().collect();
    members.sort();
    for m in members {
        for (x, &i) in m.iter().enumerate() {
            for &j in &m[x + 1..] {
                let (i, j) = (i.min(j), i.max(j));
                report.true_pairs += 1;
                let shares = keys[i].iter().any(|k| keys[j].contains(k));
                if shares {
                    report.true_pairs_sharing_key += 1;
                }
                let stage = match outcome.get(&(i, j)) {
                    Some(s) => *s,
                    None if shares => Stage::CappedOut,
                    None => Stage::Unblocked,
                };
                let (a, b) = (&leads[i].truth, &leads[j].truth);
                let evidence = a.evidence(b);
                add_pair(&mut rows, a, b, stage);
                if evidence.is_some() {
                    report.resolvable_pairs += 1;
                    if stage == Stage::Merged {
                        report.tp_resolvable += 1;
                    }
                }
                if stage == Stage::Unblocked && evidence.is_some() && report.unblocked_examples.len() < examples {
                    report.unblocked_examples.push(format!(
                        "UNBLOCKED [{}]\n  a={:?}\n  b={:?}",
                        evidence.unwrap_or_default(),
                        leads[i].record,
                        leads[j].record
                    ));
                }
            }
        }
    }
    report.breakdown = rows;
    report.rule_losses.sort();
    report.rule_saves.sort();
    report
}
