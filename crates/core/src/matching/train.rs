//! Fellegi-Sunter m/u probabilities learned from the stored leads (no labels).
//!
//! API, for whoever schedules it (a `dedupe --train` command, a periodic job):
//!
//! ```text
//! let trained = train(&records, &Model::default(), &TrainOptions::default());
//! let json = serde_json::to_string(&trained)?;          // store it beside the leads
//! let model = Model::default().with_trained(&trained)   // apply it to the configured model
//!     .with_frequencies(NameFrequencies::from_records(&records));
//! ```
//!
//! [`train`] is pure and deterministic: the same records, base model and options give the same
//! [`Trained`], bit for bit. It compares pairs with the base model's [`compare`] and learns over
//! whatever `(field, level)` pairs compare reports in [`MatchScore::parts`](crate::matching::MatchScore)
//! (its levels, not its weights; [`Field::Context`], `Missing` and `NotComparable` are not
//! learned: they weigh what the base model says, which is 0 for the last two):
//!
//! * **u** from random pairs: `random_pairs` pairs of distinct records drawn uniformly with a
//!   seeded SplitMix64 (all pairs when there are fewer), almost all of them two different
//!   people; u(field, level) is the share of the comparable pairs at that level, add-one
//!   smoothed so that no u is 0.
//! * **m** by expectation-maximisation over candidate pairs (records sharing a blocking key,
//!   each against the earlier ones, as [`find_duplicates`](crate::resolve::find_duplicates)
//!   walks them), with u held fixed (as Splink does: u from random pairs is better than what EM
//!   would make of it) and m starting from the base model's. The E-step gives each pair its
//!   match probability from λ, m and u under conditional independence; the M-step sets m to the
//!   match-weighted level frequencies and λ to the mean match probability, until neither moves
//!   by more than `tolerance` or `max_iterations` is reached. Like Splink's training sessions
//!   per blocking rule, EM runs twice, each run learning the fields its pairs do not agree on
//!   by construction: pairs sharing a name key (`n:`) learn every field but the names; pairs
//!   sharing a mailbox or phone (`e:`, `p:`) learn the names only (a shared phone is often a
//!   switchboard, whose colleagues agree on company, domain and address). Pairs sharing only a
//!   company key are not used: most are colleagues, and EM takes them for the matching class
//!   (measured on the generator: λ 0.99 and m(FirstName, Exact) 0.18 when they were used). A
//!   field two runs learn would get the mean of their m.
//!
//! Guard rails, so that a strange store cannot collapse precision: a level seen fewer than
//! `min_count` times (among the random pairs for u, as expected matches for m) keeps the base
//! model's value; every m and u is clamped into [1e-6, 1 − 1e-6]; and a field whose learned
//! `Exact` weighs less than its `Different`, or less than one bit, keeps the base model's values for
//! all its levels ([`TrainReport::kept_base`] says which), and a level whose learned weight has
//! the other sign than the base model's keeps the base values ([`Origin::Sign`]: hand-set signs
//! encode dependences EM cannot see, such as a different mailbox at an already counted business
//! domain). Thresholds, the context cap,
//! the hard rules, the email rules and the similarity thresholds are the base model's: training
//! changes m and u only.
//!
//! [`Model::with_trained`] applies the result to a model (levels the training does not know keep
//! that model's values); the term-frequency adjustments of
//! [`Model::with_frequencies`] combine with it as with hand-set weights, and every
//! [`Evidence`](crate::matching::Evidence) then carries the learned weight.
//!
//! Known limit: conditional independence is false for the organisation fields (colleagues share
//! company, domain, street, postal code and city), which EM reads as match evidence; the
//! context cap of [`compare`] bounds what they add, learned or not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::matching::blocking::CandidateIndex;
use crate::matching::model::{Field, Level, LevelProbability, Model, ModelParams};
use crate::matching::{Record, blocking_keys_with, compare};

/// Least weight (bits) a learned `Exact` level may have: exact agreement on a field that at
/// least half of all random pairs share (a store of copies, a constant column) says nothing.
const MIN_EXACT_BITS: f64 = 1.0;

/// Lowest and highest value of a learned m or u.
const CLAMP: (f64, f64) = (1e-6, 1.0 - 1e-6);

/// How [`train`] samples and iterates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Random pairs compared for u (capped by the number of distinct pairs).
    pub random_pairs: usize,
    /// Seed of the random pair sampler.
    pub seed: u64,
    /// Most candidates one record is compared with for EM (the best-keyed ones).
    pub max_candidates: usize,
    /// A blocking key shared by more records than this is a stop key (ignored).
    pub max_postings_per_key: usize,
    /// Most candidate pairs EM reads, in record order.
    pub max_candidate_pairs: usize,
    /// EM stops after this many iterations ...
    pub max_iterations: usize,
    /// ... or once no m and not λ moves by more than this.
    pub tolerance: f64,
    /// Threads comparing pairs (0: as many as the machine has). The result does not depend on it.
    pub threads: usize,
    /// A level seen fewer times than this keeps the base model's m (expected matches) or u
    /// (random pairs).
    pub min_count: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            random_pairs: 1_000_000,
            seed: 0x5EED_F5A1,
            max_candidates: 64,
            max_postings_per_key: 256,
            max_candidate_pairs: 5_000_000,
            max_iterations: 100,
            tolerance: 1e-5,
            threads: 0,
            min_count: 20.0,
        }
    }
}

/// Where a level's m or u comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Learned from the leads.
    Learned,
    /// The base model's: the level was too rare (below `min_count`).
    TooRare,
    /// The base model's: the learned weights of the field failed the ordering check.
    Ordering,
    /// The base model's: the learned weight has the other sign. A hand-set sign can encode a
    /// dependence EM cannot see under conditional independence: a different mailbox at the same
    /// business domain weighs against a match because the shared domain is already counted.
    Sign,
}

/// The learned m and u of one level of one field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainedLevel {
    pub field: Field,
    pub level: Level,
    /// P(level | same person).
    pub m: f64,
    /// P(level | different people).
    pub u: f64,
    /// `log2(m / u)`, bits.
    pub weight: f64,
    /// Expected number of matching candidate pairs at this level (EM's final E-step).
    pub m_count: f64,
    /// Random pairs at this level.
    pub u_count: u64,
    pub m_origin: Origin,
    pub u_origin: Origin,
}

/// One EM run: the candidate pairs sharing a key of some kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassReport {
    /// Blocking key kinds (prefixes, see [`blocking_keys`](crate::matching::blocking_keys)).
    pub keys: Vec<String>,
    /// Fields learned from this run (the others are not: its keys are made of them, or its
    /// pairs agree on them whether they match or not).
    pub learned: Vec<Field>,
    /// Candidate pairs EM ran over.
    pub pairs: u64,
    /// EM iterations run.
    pub iterations: usize,
    /// Whether EM stopped below the tolerance (rather than at `max_iterations` or for lack of
    /// pairs).
    pub converged: bool,
    /// Share of the pairs that are matches, as EM ends.
    pub lambda: f64,
}

/// How the training went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Random pairs compared for u.
    pub random_pairs: u64,
    /// Candidate pairs EM ran over, all passes.
    pub candidate_pairs: u64,
    /// Whether every EM run converged.
    pub converged: bool,
    pub passes: Vec<PassReport>,
    /// Fields whose learned weights failed the ordering check and kept the base model's values.
    pub kept_base: Vec<Field>,
    pub seed: u64,
}

/// The result of [`train`]; serializable (JSON) so that it can be stored and applied later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Records trained on.
    pub leads: usize,
    /// Per (field, level), in field then level order.
    pub levels: Vec<TrainedLevel>,
    pub report: TrainReport,
}

impl Trained {
    /// The learned level of a field, if trained.
    pub fn level(&self, field: Field, level: Level) -> Option<&TrainedLevel> {
        self.levels.iter().find(|l| l.field == field && l.level == level)
    }

    /// `params` with the learned m and u in place of its own for every trained level (levels
    /// not trained keep theirs).
    pub fn apply(&self, mut params: ModelParams) -> ModelParams {
        for t in &self.levels {
            let learned = LevelProbability { field: t.field, level: t.level, m: t.m, u: t.u };
            match params.probabilities.iter_mut().find(|p| p.field == t.field && p.level == t.level) {
                Some(p) => *p = learned,
                None => params.probabilities.push(learned),
            }
        }
        params
    }
}

/// A comparison vector: the comparable levels of a pair, in field order.
type Pattern = Vec<(Field, Level)>;

/// Whether a level is learned (see the module docs).
fn learned(field: Field, level: Level) -> bool {
    field != Field::Context && !matches!(level, Level::Missing | Level::NotComparable | Level::Capped)
}

fn pattern(a: &Record, b: &Record, model: &Model) -> Pattern {
    compare(a, b, model).parts.into_iter().filter(|e| learned(e.field, e.level)).map(|e| (e.field, e.level)).collect()
}

/// SplitMix64: small, fast, and the same everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for any store).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Counts the comparison vectors of `pairs` (indices into `records`), keeping the fields
/// `keep` accepts, on `threads` threads: the counts do not depend on how the work is split.
fn count_patterns(
    records: &[Record],
    pairs: &[(u32, u32)],
    base: &Model,
    keep: fn(Field) -> bool,
    threads: usize,
) -> BTreeMap<Pattern, u64> {
    let count = |chunk: &[(u32, u32)]| {
        let mut patterns: BTreeMap<Pattern, u64> = BTreeMap::new();
        for &(i, j) in chunk {
            if let (Some(a), Some(b)) = (records.get(i as usize), records.get(j as usize)) {
                let mut p = pattern(a, b, base);
                p.retain(|(f, _)| keep(*f));
                *patterns.entry(p).or_default() += 1;
            }
        }
        patterns
    };
    if threads <= 1 || pairs.len() < 10_000 {
        return count(pairs);
    }
    let count = &count;
    let parts: Vec<BTreeMap<Pattern, u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            pairs.chunks(pairs.len().div_ceil(threads)).map(|chunk| scope.spawn(move || count(chunk))).collect();
        // compare is total: a panic here is a bug, reported where it happened.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let mut merged = BTreeMap::new();
    for part in parts {
        for (p, c) in part {
            *merged.entry(p).or_default() += c;
        }
    }
    merged
}

/// The random pairs: all of them when there are no more than `random_pairs`, else that many
/// drawn uniformly (with replacement) with a seeded SplitMix64.
fn random_pairs(n: usize, options: &TrainOptions) -> Vec<(u32, u32)> {
    let Ok(n) = u32::try_from(n) else {
        return Vec::new();
    };
    let all = u64::from(n) * u64::from(n.saturating_sub(1)) / 2;
    if all <= options.random_pairs as u64 {
        return (0..n).flat_map(|i| (0..i).map(move |j| (i, j))).collect();
    }
    let mut rng = SplitMix(options.seed);
    (0..options.random_pairs)
        .map(|_| {
            let i = rng.below(u64::from(n));
            // A second index among the other n − 1 records.
            let mut j = rng.below(u64::from(n) - 1);
            if j >= i {
                j += 1;
            }
            // Both below n, itself a u32.
            (i as u32, j as u32)
        })
        .collect()
}

/// The candidate pairs of one EM run: pairs sharing a key of these kinds, learning the fields
/// `learns` accepts. Pairs blocked on a field agree on it whatever they are, so a run does not
/// learn the fields its keys are made of (Splink's training sessions per blocking rule).
struct Pass {
    prefixes: &'static [&'static str],
    learns: fn(Field) -> bool,
}

fn names(field: Field) -> bool {
    matches!(field, Field::FirstName | Field::LastName)
}

fn all_but_names(field: Field) -> bool {
    !names(field)
}

/// Same-name pairs (phonetic last name + first initial) learn every field but the names;
/// same-mailbox or same-phone pairs learn the names only: a shared phone is often a
/// switchboard, and colleagues behind it agree on company, domain and address, which EM under
/// conditional independence would read as a match. Company-keyed pairs are not used at all:
/// they are mostly colleagues.
const PASSES: [Pass; 2] =
    [Pass { prefixes: &["n:"], learns: all_but_names }, Pass { prefixes: &["e:", "p:"], learns: names }];

/// The candidate pairs of one pass: each record against the earlier ones sharing one of its
/// keys of the pass's kinds (the best-keyed `max_candidates`), up to `max_candidate_pairs`.
fn candidate_pairs(keys: &[Vec<String>], options: &TrainOptions, pass: &Pass) -> Vec<(u32, u32)> {
    let mut index = CandidateIndex::new(options.max_postings_per_key);
    let mut pairs = Vec::new();
    let mut candidates = Vec::new();
    for (position, keys) in keys.iter().enumerate() {
        let Ok(position) = u32::try_from(position) else {
            break;
        };
        let keys: Vec<String> =
            keys.iter().filter(|k| pass.prefixes.iter().any(|p| k.starts_with(p))).cloned().collect();
        index.candidates_capped(&keys, options.max_candidates, &mut candidates);
        let room = options.max_candidate_pairs.saturating_sub(pairs.len());
        pairs.extend(candidates.iter().take(room).map(|&c| (position, c)));
        if pairs.len() >= options.max_candidate_pairs {
            break;
        }
        index.insert(position, &keys);
    }
    pairs
}

/// Per (field, level) state of the training.
#[derive(Debug, Clone, Copy)]
struct Cell {
    m: f64,
    u: f64,
    u_count: u64,
    m_count: f64,
    m_origin: Origin,
    u_origin: Origin,
}

/// Learns m and u from `records` (see the module docs). Never panics; with too few records or
/// pairs every level keeps `base`'s values.
pub fn train(records: &[Record], base: &Model, options: &TrainOptions) -> Trained {
    let base_of = |field: Field, level: Level| {
        base.params().probabilities.iter().find(|p| p.field == field && p.level == level).map(|p| (p.m, p.u))
    };
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let sample = random_pairs(records.len(), options);
    let random = count_patterns(records, &sample, base, |_| true, threads);
    let keys: Vec<Vec<String>> = records.iter().map(|r| blocking_keys_with(r, base.email_rules())).collect();
    let runs: Vec<(&Pass, BTreeMap<Pattern, u64>, u64)> = PASSES
        .iter()
        .map(|pass| {
            let pairs = candidate_pairs(&keys, options, pass);
            (pass, count_patterns(records, &pairs, base, pass.learns, threads), pairs.len() as u64)
        })
        .collect();
    // The levels: the base model's and whatever compare reports.
    let mut levels: BTreeSet<(Field, Level)> =
        base.params().probabilities.iter().filter(|p| learned(p.field, p.level)).map(|p| (p.field, p.level)).collect();
    levels.extend(random.keys().flatten().copied());
    levels.extend(runs.iter().flat_map(|(_, patterns, _)| patterns.keys().flatten().copied()));

    // u: add-one smoothed level shares among the comparable random pairs of each field.
    let mut u_counts: BTreeMap<(Field, Level), u64> = BTreeMap::new();
    for (p, count) in &random {
        for &fl in p {
            *u_counts.entry(fl).or_default() += count;
        }
    }
    let per_field = |counts: &BTreeMap<(Field, Level), u64>, field: Field| -> (u64, u64) {
        let total = counts.iter().filter(|((f, _), _)| *f == field).map(|(_, c)| *c).sum();
        let kinds = levels.iter().filter(|(f, _)| *f == field).count() as u64;
        (total, kinds)
    };
    let mut cells: BTreeMap<(Field, Level), Cell> = BTreeMap::new();
    for &(field, level) in &levels {
        let (base_m, base_u) = base_of(field, level).unwrap_or((CLAMP.0, CLAMP.0));
        let count = u_counts.get(&(field, level)).copied().unwrap_or(0);
        let (total, kinds) = per_field(&u_counts, field);
        let (u, u_origin) = if (count as f64) < options.min_count {
            (base_u, Origin::TooRare)
        } else {
            ((count + 1) as f64 / (total + kinds) as f64, Origin::Learned)
        };
        cells.insert(
            (field, level),
            Cell {
                m: base_m,
                u: u.clamp(CLAMP.0, CLAMP.1),
                u_count: count,
                m_count: 0.0,
                m_origin: Origin::TooRare,
                u_origin,
            },
        );
    }
    // EM starts from the base m, normalised per field (hand-set m need not sum to 1).
    for field in Field::ALL {
        let sum: f64 = cells.iter().filter(|((f, _), _)| *f == field).map(|(_, c)| c.m).sum();
        if sum > 0.0 {
            for ((_, _), c) in cells.iter_mut().filter(|((f, _), _)| *f == field) {
                c.m = (c.m / sum).clamp(CLAMP.0, CLAMP.1);
            }
        }
    }
    // Each run from the base m; a level's m is the mean over the runs that learned it.
    let mut learned_m: BTreeMap<(Field, Level), (f64, u32, f64)> = BTreeMap::new();
    let mut passes = Vec::with_capacity(runs.len());
    for (pass, patterns, pairs) in &runs {
        let mut run = cells.clone();
        let em = expectation_maximisation(patterns, &mut run, base, options);
        for (&(field, level), c) in run.iter().filter(|((f, _), _)| (pass.learns)(*f)) {
            let (sum, n, count) = learned_m.entry((field, level)).or_default();
            *count += c.m_count;
            if c.m_count >= options.min_count {
                *sum += c.m;
                *n += 1;
            }
        }
        passes.push(PassReport {
            keys: pass.prefixes.iter().map(|p| (*p).to_owned()).collect(),
            learned: Field::ALL.into_iter().filter(|f| *f != Field::Context && (pass.learns)(*f)).collect(),
            pairs: *pairs,
            iterations: em.iterations,
            converged: em.converged,
            lambda: em.lambda,
        });
    }
    for (fl, c) in cells.iter_mut() {
        let (sum, n, count) = learned_m.get(fl).copied().unwrap_or_default();
        c.m_count = count;
        if n > 0 {
            c.m = (sum / f64::from(n)).clamp(CLAMP.0, CLAMP.1);
            c.m_origin = Origin::Learned;
        }
    }
    // Fallbacks: too rare a level, then a field whose learned weights are out of order.
    for (&(field, level), c) in cells.iter_mut() {
        let (base_m, base_u) = base_of(field, level).unwrap_or((c.m, c.u));
        if c.m_origin == Origin::TooRare {
            c.m = base_m.clamp(CLAMP.0, CLAMP.1);
        }
        if c.u_origin == Origin::TooRare {
            c.u = base_u.clamp(CLAMP.0, CLAMP.1);
        }
    }
    let weight = |c: &Cell| (c.m / c.u).log2();
    for (&(field, level), c) in cells.iter_mut() {
        if let Some((m, u)) = base_of(field, level) {
            let base_weight = (m / u).log2();
            if weight(c) * base_weight < 0.0 {
                *c = Cell {
                    m: m.clamp(CLAMP.0, CLAMP.1),
                    u: u.clamp(CLAMP.0, CLAMP.1),
                    m_origin: Origin::Sign,
                    u_origin: Origin::Sign,
                    ..*c
                };
            }
        }
    }
    let mut kept_base = Vec::new();
    for field in Field::ALL {
        let exact = cells.get(&(field, Level::Exact)).map(weight);
        let different = cells.get(&(field, Level::Different)).map(weight);
        let out_of_order = match (exact, different) {
            (Some(e), Some(d)) => e < d || e < MIN_EXACT_BITS,
            (Some(e), None) => e < MIN_EXACT_BITS,
            _ => false,
        };
        if out_of_order {
            kept_base.push(field);
            for (&(_, level), c) in cells.iter_mut().filter(|((f, _), _)| *f == field) {
                if let Some((m, u)) = base_of(field, level) {
                    c.m = m.clamp(CLAMP.0, CLAMP.1);
                    c.u = u.clamp(CLAMP.0, CLAMP.1);
                    c.m_origin = Origin::Ordering;
                    c.u_origin = Origin::Ordering;
                }
            }
        }
    }
    // A level the base model has no values for and that was not learned weighs 0, as before.
    let levels = cells
        .iter()
        .filter(|&(&(field, level), c)| {
            base_of(field, level).is_some() || (c.m_origin == Origin::Learned && c.u_origin == Origin::Learned)
        })
        .map(|(&(field, level), c)| TrainedLevel {
            field,
            level,
            m: c.m,
            u: c.u,
            weight: weight(c),
            m_count: c.m_count,
            u_count: c.u_count,
            m_origin: c.m_origin,
            u_origin: c.u_origin,
        })
        .collect();
    Trained {
        leads: records.len(),
        levels,
        report: TrainReport {
            random_pairs: sample.len() as u64,
            candidate_pairs: passes.iter().map(|p| p.pairs).sum(),
            converged: passes.iter().all(|p| p.converged),
            passes,
            kept_base,
            seed: options.seed,
        },
    }
}

struct EmResult {
    iterations: usize,
    converged: bool,
    lambda: f64,
}

/// EM over the candidate patterns with u fixed; updates `m` and `m_count` of `cells`.
fn expectation_maximisation(
    patterns: &BTreeMap<Pattern, u64>,
    cells: &mut BTreeMap<(Field, Level), Cell>,
    base: &Model,
    options: &TrainOptions,
) -> EmResult {
    let total: f64 = patterns.values().map(|&c| c as f64).sum();
    if total == 0.0 {
        return EmResult { iterations: 0, converged: false, lambda: 0.0 };
    }
    let log_ratio = |p: &Pattern, cells: &BTreeMap<(Field, Level), Cell>| -> f64 {
        p.iter().filter_map(|fl| cells.get(fl)).map(|c| (c.m / c.u).ln()).sum()
    };
    // λ starts at the share of pairs the base model's summed weights put at or above review.
    let review_bits = base.thresholds().review;
    let above: f64 = patterns
        .iter()
        .filter(|(p, _)| p.iter().map(|&(f, l)| base.weight(f, l)).sum::<f64>() >= review_bits)
        .map(|(_, &c)| c as f64)
        .sum();
    let mut lambda = (above / total).clamp(0.01, 0.99);
    let mut result = EmResult { iterations: 0, converged: false, lambda };
    let mut expected: BTreeMap<(Field, Level), f64> = BTreeMap::new();
    let mut comparable: BTreeMap<Field, f64> = BTreeMap::new();
    for iteration in 1..=options.max_iterations {
        expected.clear();
        comparable.clear();
        let prior = (lambda / (1.0 - lambda)).ln();
        let mut matches = 0.0;
        for (p, &count) in patterns {
            // P(match | pattern) = 1 / (1 + e^-(log odds)), computed without overflow.
            let odds = prior + log_ratio(p, cells);
            let w = if odds >= 0.0 { 1.0 / (1.0 + (-odds).exp()) } else { odds.exp() / (1.0 + odds.exp()) };
            let weighted = w * count as f64;
            matches += weighted;
            for &(field, level) in p {
                *expected.entry((field, level)).or_default() += weighted;
                *comparable.entry(field).or_default() += weighted;
            }
        }
        let mut moved = 0.0f64;
        for (&(field, level), c) in cells.iter_mut() {
            let seen = comparable.get(&field).copied().unwrap_or(0.0);
            let count = expected.get(&(field, level)).copied().unwrap_or(0.0);
            c.m_count = count;
            if seen > 0.0 {
                let m = (count / seen).clamp(CLAMP.0, CLAMP.1);
                moved = moved.max((m - c.m).abs());
                c.m = m;
            }
        }
        let next = (matches / total).clamp(CLAMP.0, CLAMP.1);
        moved = moved.max((next - lambda).abs());
        lambda = next;
        result = EmResult { iterations: iteration, converged: moved < options.tolerance, lambda };
        if result.converged {
            break;
        }
    }
    result
}

impl Model {
    /// This model with the m and u of `trained` (see [`Trained::apply`]); its value
    /// frequencies, if any, stay attached.
    pub fn with_trained(self, trained: &Trained) -> Model {
        let params = trained.apply(self.params().clone());
        self.with_params(params)
    }
}
