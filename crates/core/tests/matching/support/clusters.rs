//! Cluster-level evaluation: the generated records streamed through a simulation of the store's
//! capture path, then pairwise precision/recall over the final leads.
//!
//! What is simulated (see `crates/core/src/settle.rs` `rank` and the decide step,
//! `crates/store/src/sqlite/capture.rs` `by_keys`, `crates/store/src/sqlite/apply.rs`
//! `write_keys`; `crates/core/src/resolve` `decide` and `merge`):
//!
//! * a lead keeps one match record, built like `resolve::match_record` from its fields after
//!   survivorship. The default rule (`keep_existing`) keeps every value the lead has and fills
//!   the empty ones from the submission, field by field; the derived values follow their field
//!   (email domain and free-mail flag the email, company key the company, website domain the
//!   website);
//! * the lead is indexed under the blocking keys of that record; after a merge the keys are
//!   rewritten from the merged record (old ones removed);
//! * a lookup reads, per key, the most recent `stop_key_postings + 1` leads; keys with more are
//!   stop keys, skipped unless every key is one (then the rarest key's most recent leads stand
//!   in); leads sharing more keys come first, at most `max_candidates`; leads whose email equals
//!   the submission's are always candidates;
//! * the first candidate with the same email match key takes the submission; otherwise the
//!   highest score among the `Merge` verdicts; otherwise a new lead;
//! * every other lead the submission matched as confidently is merged into that one unless the
//!   two leads' records conflict ([`Bridge::UnlessConflict`], `resolve::decide`'s bridges).
//!   [`Bridge::Off`] and [`Bridge::All`] measure the alternatives.
#![allow(dead_code)]

use std::collections::HashMap;

use leadflow_core::matching::{Model, Record, Verdict, blocking_keys, compare, decide, email_match_key};

use super::eval::{Stage, StageCounts, add_pair, breakdown_rows, bump, f1, ratio, rule_lines, stage_table};
use super::generator::{Lead, Truth};

/// How candidates are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// A key read with more leads than this is a stop key.
    pub stop_key_postings: usize,
    /// Most leads one lookup returns.
    pub max_candidates: usize,
}

impl Lookup {
    /// The SQLite store's constants (`STOP_KEY_POSTINGS`, `MAX_CANDIDATES`).
    pub const STORE: Lookup = Lookup { stop_key_postings: 32, max_candidates: 64 };
}

/// What happens when a submission would merge with more than one lead (the person was split
/// over several leads earlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    /// The submission joins the best lead; the others stay apart.
    Off,
    /// Every lead the submission would merge with is merged into the one it joins.
    All,
    /// As `All`, but only leads whose merged records show no conflict with the joined lead's
    /// (no hard rule other than `InsufficientIdentity` when the two records are compared): what
    /// the store does.
    UnlessConflict,
}

/// Counts and figures of one cluster-level run.
#[derive(Debug, Default, Clone)]
pub struct ClusterReport {
    pub entities: usize,
    pub records: usize,
    /// Final leads.
    pub leads: usize,
    pub true_pairs: u64,
    pub resolvable_pairs: u64,
    /// Record pairs in one final lead.
    pub predicted_pairs: u64,
    /// ... of which the same person.
    pub tp: u64,
    pub tp_resolvable: u64,
    /// Submissions merged by the exact-email rule / by score.
    pub email_merges: u64,
    pub score_merges: u64,
    /// Submissions merged into a lead holding no record of their person.
    pub wrong_joins: u64,
    /// Submissions that started a new lead although their person already had one.
    pub split_creates: u64,
    /// Leads compared per submission, summed.
    pub candidate_leads: u64,
    /// True pairs lost "elsewhere" (`Stage::MergedElsewhere`) because the submission joined
    /// another lead of the same person: the person was already split over two leads.
    pub elsewhere_split: u64,
    /// Stage of every true pair (decided when its later record arrived), grouped like
    /// `eval::Report::breakdown`.
    pub breakdown: Vec<(String, StageCounts)>,
    pub rule_losses: Vec<(String, u64)>,
    pub rule_saves: Vec<(String, u64)>,
    pub wrong_join_examples: Vec<String>,
    /// Resolvable true pairs that did not end in one lead, up to `examples` per stage.
    pub miss_examples: Vec<(Stage, String)>,
    /// True pairs connected by evidence: records of one person linked by a chain of resolvable
    /// pairs (what a reviewer holding all the person's records could confirm).
    pub linked_pairs: u64,
    pub tp_linked: u64,
    /// Leads merged into another because a submission matched both.
    pub bridges: u64,
    /// ... of which joined leads of different people.
    pub wrong_bridges: u64,
    pub wrong_bridge_examples: Vec<String>,
}

impl ClusterReport {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.predicted_pairs)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.true_pairs)
    }
    pub fn recall_resolvable(&self) -> f64 {
        ratio(self.tp_resolvable, self.resolvable_pairs)
    }
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
    pub fn f1_resolvable(&self) -> f64 {
        f1(self.precision(), self.recall_resolvable())
    }
    pub fn recall_linked(&self) -> f64 {
        ratio(self.tp_linked, self.linked_pairs)
    }
    /// Precision counting only pairs a reviewer could judge: a predicted pair of one person whose
    /// records are not linked by evidence is neither right nor wrong.
    pub fn precision_linked(&self) -> f64 {
        let unlinked_tp = self.tp - self.tp_linked;
        ratio(self.tp_linked, self.predicted_pairs - unlinked_tp)
    }

    pub fn summary(&self) -> String {
        format!(
            "leads={} (records={} entities={}) merges: exact email={} score={} wrong joins={} split creates={}\n\
             cluster pairs: precision={:.4} recall={:.4} F1={:.4} (TP={} FP={} FN={})\n\
             resolvable pairs: recall={:.4} F1={:.4} (TP={} FN={})\n\
             linked pairs ({} of {}): precision={:.4} recall={:.4} F1={:.4}\n\
             leads compared per submission={:.2}; true pairs lost to a lead split earlier={}; bridges={} (wrong {})",
            self.leads,
            self.records,
            self.entities,
            self.email_merges,
            self.score_merges,
            self.wrong_joins,
            self.split_creates,
            self.precision(),
            self.recall(),
            self.f1(),
            self.tp,
            self.predicted_pairs - self.tp,
            self.true_pairs - self.tp,
            self.recall_resolvable(),
            self.f1_resolvable(),
            self.tp_resolvable,
            self.resolvable_pairs - self.tp_resolvable,
            self.linked_pairs,
            self.true_pairs,
            self.precision_linked(),
            self.recall_linked(),
            f1(self.precision_linked(), self.recall_linked()),
            self.candidate_leads as f64 / self.records.max(1) as f64,
            self.elsewhere_split,
            self.bridges,
            self.wrong_bridges,
        )
    }

    /// Where the true pairs that did not end in one lead were lost.
    pub fn breakdown_table(&self) -> String {
        let mut s = stage_table(&self.breakdown, &Stage::ALL);
        s.push_str(&rule_lines(&self.rule_losses, &self.rule_saves));
        s
    }
}

/// Folds a submission into a lead's match record like `merge::merge` with the default
/// survivorship (`keep_existing`): empty fields are filled, the rest kept. Each derived value
/// moves with the field it is derived from.
pub fn survive(lead: &mut Record, submission: &Record) {
    let fill = |mine: &mut Option<String>, theirs: &Option<String>| {
        if mine.is_none() {
            mine.clone_from(theirs);
        }
    };
    fill(&mut lead.first_name, &submission.first_name);
    fill(&mut lead.last_name, &submission.last_name);
    if lead.email.is_none() && submission.email.is_some() {
        lead.email.clone_from(&submission.email);
        lead.email_domain.clone_from(&submission.email_domain);
        lead.free_mail = submission.free_mail;
    }
    fill(&mut lead.phone, &submission.phone);
    fill(&mut lead.company_key, &submission.company_key);
    fill(&mut lead.website_domain, &submission.website_domain);
    fill(&mut lead.street, &submission.street);
    fill(&mut lead.street2, &submission.street2);
    fill(&mut lead.locality, &submission.locality);
    fill(&mut lead.city, &submission.city);
    fill(&mut lead.postal_code, &submission.postal_code);
    fill(&mut lead.state, &submission.state);
    fill(&mut lead.country, &submission.country);
}

/// One simulated lead.
struct SimLead {
    /// Record indexes, in arrival order.
    members: Vec<usize>,
    /// The merged match record.
    record: Record,
    /// Keys the lead is indexed under (sorted, deduplicated).
    keys: Vec<String>,
    /// Email match keys the exact rule looks at.
    email_keys: Vec<String>,
    /// The lead this one was merged into by a bridge.
    absorbed_into: Option<u32>,
}

/// The lead a lead id stands for now (following bridge merges).
fn live(sim: &[SimLead], mut id: u32) -> u32 {
    while let Some(next) = sim[id as usize].absorbed_into {
        id = next;
    }
    id
}

/// The key index: key → lead ids, ascending (lead ids grow with creation time, like the store's
/// time-ordered ids).
#[derive(Default)]
struct KeyIndex {
    postings: HashMap<String, Vec<u32>>,
}

impl KeyIndex {
    fn insert(&mut self, key: &str, lead: u32) {
        let list = self.postings.entry(key.to_owned()).or_default();
        if let Err(at) = list.binary_search(&lead) {
            list.insert(at, lead);
        }
    }

    fn remove(&mut self, key: &str, lead: u32) {
        if let Some(list) = self.postings.get_mut(key)
            && let Ok(at) = list.binary_search(&lead)
        {
            list.remove(at);
        }
    }

    /// `candidates_by_keys`: the leads sharing a key, most shared keys first.
    fn lookup(&self, keys: &[String], lookup: Lookup, out: &mut Vec<u32>) {
        out.clear();
        let read = lookup.stop_key_postings + 1;
        let lists: Vec<&[u32]> = keys
            .iter()
            .filter_map(|k| self.postings.get(k))
            .filter(|l| !l.is_empty())
            .map(|l| &l[l.len().saturating_sub(read)..])
            .collect();
        let selective: Vec<&[u32]> = lists.iter().copied().filter(|l| l.len() <= lookup.stop_key_postings).collect();
        let chosen = if selective.is_empty() {
            lists.iter().copied().min_by_key(|l| l.len()).into_iter().collect()
        } else {
            selective
        };
        let mut hits: Vec<(u32, usize)> = Vec::new();
        let mut at: HashMap<u32, usize> = HashMap::new();
        for list in chosen {
            // The store reads each key's postings newest first.
            for &id in list.iter().rev() {
                match at.get(&id) {
                    Some(&i) => hits[i].1 += 1,
                    None => {
                        at.insert(id, hits.len());
                        hits.push((id, 1));
                    }
                }
            }
        }
        hits.sort_by_key(|h| std::cmp::Reverse(h.1));
        hits.truncate(lookup.max_candidates);
        out.extend(hits.iter().map(|h| h.0));
    }
}

/// How one submission compared with one lead.
struct Compared {
    lead: u32,
    verdict: Verdict,
    score: leadflow_core::matching::MatchScore,
    exact_email: bool,
}

/// Streams `leads` through the simulated capture path and measures the final leads.
pub fn evaluate_clusters(
    leads: &[Lead],
    model: &Model,
    lookup: Lookup,
    bridge: Bridge,
    examples: usize,
) -> ClusterReport {
    let rules = model.email_rules();
    let th = *model.thresholds();
    let mut report = ClusterReport {
        records: leads.len(),
        entities: leads.iter().map(|l| l.entity).collect::<std::collections::HashSet<_>>().len(),
        breakdown: breakdown_rows(),
        ..ClusterReport::default()
    };
    let mut sim: Vec<SimLead> = Vec::new();
    let mut index = KeyIndex::default();
    // The store's `leads.email` column: a lead's email.
    let mut by_email: HashMap<String, Vec<u32>> = HashMap::new();
    let mut lead_of: Vec<u32> = Vec::with_capacity(leads.len());
    // Records seen so far per entity.
    let mut seen: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut found = Vec::new();
    for (j, sub) in leads.iter().enumerate() {
        let r = &sub.record;
        let keys = blocking_keys(r);
        index.lookup(&keys, lookup, &mut found);
        if let Some(email) = r.email.as_deref()
            && let Some(ids) = by_email.get(email)
        {
            let mut first: Vec<u32> = ids.iter().copied().filter(|id| !found.contains(id)).collect();
            first.extend_from_slice(&found);
            found = first;
        }
        report.candidate_leads += found.len() as u64;
        let email_key = r.email.as_deref().map(|e| email_match_key(e, rules));
        let compared: Vec<Compared> = found
            .iter()
            .map(|&id| {
                let lead = &sim[id as usize];
                let exact_email = email_key.as_ref().is_some_and(|k| lead.email_keys.contains(k));
                let judge = |other: &Record| {
                    let score = compare(r, other, model);
                    Compared { lead: id, verdict: decide(&score, &th), score, exact_email }
                };
                judge(&lead.record)
            })
            .collect();
        // `resolve::decide`: the same mailbox first, else the best Merge score.
        let chosen = compared.iter().find(|c| c.exact_email).map(|c| (c.lead, true)).or_else(|| {
            compared
                .iter()
                .filter(|c| c.verdict == Verdict::Merge)
                .fold(None::<&Compared>, |best, c| match best {
                    Some(b) if c.score.score <= b.score.score => Some(b),
                    _ => Some(c),
                })
                .map(|c| (c.lead, false))
        });

        // Leads a bridge brings into the chosen one.
        let mut bridged: Vec<u32> = Vec::new();
        if let Some((target, _)) = chosen
            && bridge != Bridge::Off
        {
            for c in compared.iter().filter(|c| c.lead != target && (c.exact_email || c.verdict == Verdict::Merge)) {
                let ok = match bridge {
                    Bridge::Off => false,
                    Bridge::All => true,
                    Bridge::UnlessConflict => {
                        compare(&sim[target as usize].record, &sim[c.lead as usize].record, model).conflict_ceiling()
                            == Verdict::Merge
                    }
                };
                if ok {
                    bridged.push(c.lead);
                }
            }
        }

        // Stage of every true pair (earlier record of this person, this submission).
        let earlier = seen.get(&sub.entity).cloned().unwrap_or_default();
        for &i in &earlier {
            let li = live(&sim, lead_of[i]);
            let stage = if chosen.map(|c| c.0) == Some(li) || bridged.contains(&li) {
                Stage::Merged
            } else if let Some(c) = compared.iter().find(|c| c.lead == li) {
                let stage = match c.verdict {
                    Verdict::Merge => Stage::MergedElsewhere,
                    Verdict::Review if c.score.score >= th.auto_merge => Stage::ReviewByRule,
                    Verdict::Review => Stage::Review,
                    Verdict::Distinct if c.score.score >= th.review => Stage::DistinctByRule,
                    Verdict::Distinct => Stage::DistinctByScore,
                };
                if matches!(stage, Stage::ReviewByRule | Stage::DistinctByRule) {
                    for rule in c.score.rules.iter().filter(|r| r.ceiling() < Verdict::Merge) {
                        bump(&mut report.rule_losses, format!("{rule:?}"));
                    }
                }
                stage
            } else if sim[li as usize].keys.iter().any(|k| keys.contains(k)) {
                Stage::CappedOut
            } else {
                Stage::Unblocked
            };
            if stage == Stage::MergedElsewhere
                && let Some((c, _)) = chosen
                && sim[c as usize].members.iter().any(|&m| leads[m].entity == sub.entity)
            {
                report.elsewhere_split += 1;
            }
            let (a, b) = (&leads[i].truth, &sub.truth);
            add_pair(&mut report.breakdown, a, b, stage);
            let shown = report.miss_examples.iter().filter(|(s, _)| *s == stage).count();
            // Unlabelled data (FEBRL) carries no evidence truth: every missed pair is shown.
            let unlabelled = *a == Truth::default() && *b == Truth::default();
            if stage != Stage::Merged && (a.evidence(b).is_some() || unlabelled) && shown < examples {
                let how = match compared.iter().find(|c| c.lead == li) {
                    Some(c) => c.score.explain(),
                    // Which shared keys were stop keys (posting lengths at lookup).
                    None => sim[li as usize]
                        .keys
                        .iter()
                        .filter(|k| keys.contains(k))
                        .map(|k| format!("{k}({})", index.postings.get(k).map_or(0, Vec::len)))
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                report.miss_examples.push((
                    stage,
                    format!(
                        "MISS {stage:?} [{}] {how}\n  submission={r:?}\n  lead={:?}",
                        a.evidence(b).unwrap_or("unlabelled"),
                        sim[li as usize].record
                    ),
                ));
            }
        }
        for c in compared.iter().filter(|c| c.verdict != Verdict::Merge && c.score.score >= th.auto_merge) {
            if !sim[c.lead as usize].members.iter().any(|&m| leads[m].entity == sub.entity) {
                for rule in &c.score.rules {
                    bump(&mut report.rule_saves, format!("{rule:?}"));
                }
            }
        }

        for &other in &bridged {
            let Some((target, _)) = chosen else { break };
            report.bridges += 1;
            let entity_of = |lead: &SimLead| lead.members.iter().map(|&m| leads[m].entity).collect::<Vec<_>>();
            let (te, oe) = (entity_of(&sim[target as usize]), entity_of(&sim[other as usize]));
            if !oe.iter().all(|e| te.contains(e)) || !te.iter().all(|e| oe.contains(e)) {
                report.wrong_bridges += 1;
                if report.wrong_bridge_examples.len() < examples {
                    report.wrong_bridge_examples.push(format!(
                        "WRONG BRIDGE via submission={r:?}\n  lead={:?}\n  other={:?}",
                        sim[target as usize].record, sim[other as usize].record
                    ));
                }
            }
            let absorbed = std::mem::replace(
                &mut sim[other as usize],
                SimLead {
                    members: Vec::new(),
                    record: Record::default(),
                    keys: Vec::new(),
                    email_keys: Vec::new(),
                    absorbed_into: Some(target),
                },
            );
            for k in &absorbed.keys {
                index.remove(k, other);
            }
            // The store finds a lead by email only while it is not merged away.
            for ids in by_email.values_mut() {
                ids.retain(|&x| x != other);
            }
            let lead = &mut sim[target as usize];
            survive(&mut lead.record, &absorbed.record);
            lead.members.extend(absorbed.members);
            lead.members.sort_unstable();
        }

        let id = match chosen {
            Some((id, exact)) => {
                if exact {
                    report.email_merges += 1;
                } else {
                    report.score_merges += 1;
                }
                let lead = &mut sim[id as usize];
                if !lead.members.iter().any(|&m| leads[m].entity == sub.entity) {
                    report.wrong_joins += 1;
                    if report.wrong_join_examples.len() < examples {
                        let how = compared.iter().find(|c| c.lead == id).map(|c| c.score.explain());
                        report.wrong_join_examples.push(format!(
                            "WRONG JOIN{} {}\n  submission={r:?}\n  lead={:?}",
                            if exact { " (exact email)" } else { "" },
                            how.unwrap_or_default(),
                            lead.record
                        ));
                    }
                }
                let had_email = lead.record.email.clone();
                survive(&mut lead.record, r);
                lead.members.push(j);
                let new_keys = blocking_keys(&lead.record);
                let emails: Vec<String> = lead.record.email.iter().cloned().collect();

                for k in lead.keys.iter().filter(|k| new_keys.binary_search(k).is_err()) {
                    index.remove(k, id);
                }
                for k in new_keys.iter().filter(|k| lead.keys.binary_search(k).is_err()) {
                    index.insert(k, id);
                }
                lead.keys = new_keys;
                lead.email_keys = emails.iter().map(|e| email_match_key(e, rules)).collect();
                for e in emails {
                    if had_email.as_ref() != Some(&e) {
                        let ids = by_email.entry(e).or_default();
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                }
                id
            }
            None => {
                if !earlier.is_empty() {
                    report.split_creates += 1;
                }
                let id = sim.len() as u32;
                for k in &keys {
                    index.insert(k, id);
                }
                if let Some(e) = &r.email {
                    by_email.entry(e.clone()).or_default().push(id);
                }
                sim.push(SimLead {
                    members: vec![j],
                    record: r.clone(),
                    keys,
                    email_keys: email_key.into_iter().collect(),
                    absorbed_into: None,
                });
                id
            }
        };
        lead_of.push(id);
        seen.entry(sub.entity).or_default().push(j);
    }

    report.leads = sim.iter().filter(|l| l.absorbed_into.is_none()).count();
    for lead in sim.iter().filter(|l| l.absorbed_into.is_none()) {
        let n = lead.members.len() as u64;
        report.predicted_pairs += n * (n - 1) / 2;
        let mut per_entity: HashMap<u32, u64> = HashMap::new();
        for &m in &lead.members {
            *per_entity.entry(leads[m].entity).or_default() += 1;
        }
        report.tp += per_entity.values().map(|&c| c * (c - 1) / 2).sum::<u64>();
    }
    for members in seen.values() {
        // Components of the evidence graph over the person's records.
        let mut component: Vec<usize> = (0..members.len()).collect();
        let root = |c: &Vec<usize>, mut x: usize| {
            while c[x] != x {
                x = c[x];
            }
            x
        };
        for x in 0..members.len() {
            for y in x + 1..members.len() {
                if leads[members[x]].truth.evidence(&leads[members[y]].truth).is_some() {
                    let (a, b) = (root(&component, x), root(&component, y));
                    component[a.max(b)] = a.min(b);
                }
            }
        }
        for (x, &i) in members.iter().enumerate() {
            for (y, &j) in members.iter().enumerate().skip(x + 1) {
                report.true_pairs += 1;
                let together = live(&sim, lead_of[i]) == live(&sim, lead_of[j]);
                if leads[i].truth.evidence(&leads[j].truth).is_some() {
                    report.resolvable_pairs += 1;
                    if together {
                        report.tp_resolvable += 1;
                    }
                }
                if root(&component, x) == root(&component, y) {
                    report.linked_pairs += 1;
                    if together {
                        report.tp_linked += 1;
                    }
                }
            }
        }
    }
    report.rule_losses.sort();
    report.rule_saves.sort();
    report
}
