//! Resolve: decides whether a candidate is a new person or one we already know.
//!
//! The store keeps, beside each lead, its compact match [`Record`] and its blocking keys
//! (email match key, phone, phonetic name + initial, company key, postal code + name, …),
//! indexed, so a lookup touches only leads that share a key and never scans all of them.
//! [`decide`] then compares the candidate with each: the same mailbox (email match key,
//! which knows Gmail's ignored dots and `+tags`) merges at once; otherwise a
//! Fellegi-Sunter score over names (with nicknames), email, phone, company, domain and
//! address decides between merge, review and a new lead, with hard rules that keep
//! colleagues, namesakes and relatives apart. A wrong merge mixes two people's data and
//! consent, so only a confident score merges; the review band goes to a human.

pub(crate) mod config;
pub mod merge;
pub mod queued;

use crate::ids::LeadId;
use crate::lead::{Derived, LeadFields};
pub use crate::matching::{
    Evidence, ExactRule, FrequencyField, Model, NameFrequencies, Record, Thresholds, Trained, Verdict,
};
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::sync::{Arc, RwLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// The same mailbox (normalized email, provider rules applied).
    ExactEmail,
    /// A score over several fields above the auto-merge threshold.
    Fuzzy,
    /// A person decided it (a review).
    Reviewed,
    /// A submission matched both leads (each by exact email or a score above the auto-merge
    /// threshold) and the two leads' records do not contradict each other: one person who
    /// had been split over two leads. The score and evidence are the submission's against
    /// the lead absorbed.
    Bridged,
}

/// Why two records were matched: the rule, and for a score its per-field evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    pub rule: MatchRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Field, comparison level and weight (bits) of each piece of evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub evidence: Vec<Evidence>,
}

/// A lead that may be the same person, for the review queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PossibleDuplicate {
    pub lead_id: LeadId,
    pub score: f64,
    pub evidence: Vec<Evidence>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// A new lead, perhaps with possible duplicates to review.
    Create { possible: Vec<PossibleDuplicate> },
    Merge {
        into: LeadId,
        explanation: Explanation,
        /// Other leads the candidate matched as confidently, to be merged into `into` too.
        also: Vec<Bridge>,
    },
}

impl Decision {
    /// The other leads a merge brings into the one it joins.
    pub fn bridges(&self) -> &[Bridge] {
        match self {
            Decision::Merge { also, .. } => also,
            Decision::Create { .. } => &[],
        }
    }
}

/// A lead to merge into the one a submission joined, because the submission matched both.
#[derive(Clone, Debug, PartialEq)]
pub struct Bridge {
    pub lead_id: LeadId,
    pub explanation: Explanation,
}

/// Identity resolution as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct Matching {
    /// Fuzzy matching (on by default; off: the mailbox only). Capture settles the mailbox
    /// and queues the lead; the resolver ([`queued`]) compares it with the leads sharing a
    /// blocking key after the capture committed.
    pub fuzzy: bool,
    /// Capture also looks the person up by their E.164 phone (the resolver's `p:` key) and
    /// settles what the model decides in the capture transaction: a phone-only chat or
    /// badge scan joins its lead at once. Off by default (shared switchboard numbers);
    /// needs `fuzzy`, whose key index it reads.
    pub exact_phone: bool,
    pub model: Model,
    /// How merges settle fields both records have.
    pub survivorship: merge::Survivorship,
    /// `model` with name frequencies counted over the stored leads, once counted.
    pub counted: CountedModel,
    /// Legal-form suffixes the company key drops beyond the built-in ones (`[matching]
    /// legal_suffixes`): merges re-derive the key with them. The configuration copies the same
    /// list into [`Picklists`](crate::normalize::Picklists) for normalization.
    pub legal_suffixes: crate::normalize::LegalSuffixes,
}

impl Matching {
    /// Runs `f` with the model fuzzy decisions use: the configured model with the weights
    /// learned from the stored leads, once trained, and the name frequencies of the stored
    /// leads, once counted (a common name at a large company then needs more than name
    /// and company to merge).
    pub fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        let counted = self.counted.0.read().ok().and_then(|state| state.model.clone());
        match counted {
            Some(model) => f(&model),
            None => f(&self.model),
        }
    }

    /// Decides with these name frequencies (counted over the stored leads) from now on,
    /// in every clone of this configuration.
    pub fn use_frequencies(&self, frequencies: NameFrequencies) {
        self.learn(|state| state.frequencies = Some(Arc::new(frequencies)));
    }

    /// Decides with these learned m and u probabilities from now on, in every clone of
    /// this configuration (`None`: the configured ones again).
    pub fn use_trained(&self, trained: Option<Trained>) {
        self.learn(|state| state.trained = trained.map(Arc::new));
    }

    /// The learned weights in use, if any.
    pub fn trained(&self) -> Option<Arc<Trained>> {
        self.counted.0.read().ok().and_then(|state| state.trained.clone())
    }

    fn learn(&self, change: impl FnOnce(&mut Learned)) {
        if let Ok(mut state) = self.counted.0.write() {
            change(&mut state);
            let mut model = self.model.clone();
            if let Some(trained) = &state.trained {
                model = model.with_trained(trained);
            }
            if let Some(frequencies) = &state.frequencies {
                model = model.with_frequencies(NameFrequencies::clone(frequencies));
            }
            state.model = Some(Arc::new(model));
        }
    }

    /// The email's match key under the configured provider rules: one mailbox, one key
    /// (`Jane.Doe+news@googlemail.com` → `janedoe@gmail.com`).
    pub fn email_key(&self, email: &crate::Email) -> String {
        crate::matching::email_match_key(email.as_str(), self.model.email_rules())
    }

    /// The key for an address read back from storage, which may predate today's email
    /// parsing: one that no longer parses is its own key.
    pub fn stored_email_key(&self, stored: &str) -> String {
        crate::Email::parse(stored).map_or_else(|_| stored.to_owned(), |e| self.email_key(&e))
    }
}

impl Default for Matching {
    fn default() -> Self {
        Matching {
            fuzzy: true,
            exact_phone: false,
            model: Model::default(),
            survivorship: merge::Survivorship::default(),
            legal_suffixes: crate::normalize::LegalSuffixes::default(),
            counted: CountedModel::default(),
        }
    }
}

/// What was learned from the stored leads (weights, name frequencies) and the model they
/// make, shared by every clone of the configuration so that a recount or a training
/// reaches the next decision. It is state, not configuration: two configurations compare
/// equal whatever was learned.
#[derive(Clone, Debug, Default)]
pub struct CountedModel(Arc<RwLock<Learned>>);

#[derive(Debug, Default)]
struct Learned {
    trained: Option<Arc<Trained>>,
    frequencies: Option<Arc<NameFrequencies>>,
    model: Option<Arc<Model>>,
}

impl PartialEq for CountedModel {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// How many possible duplicates one lead puts in the review queue at most.
const MAX_POSSIBLE: usize = 5;

/// The compact form of a lead that matching compares; the store keeps it beside the lead.
pub fn match_record(fields: &LeadFields, derived: &Derived) -> Record {
    Record {
        first_name: fields.first_name.clone(),
        last_name: fields.last_name.clone(),
        email: fields.email.as_ref().map(|e| e.as_str().to_owned()),
        phone: fields.phone.clone().filter(|p| p.starts_with('+')),
        company_key: derived.company_key.clone(),
        email_domain: derived.email_domain.clone(),
        website_domain: derived.website_domain.clone(),
        free_mail: derived.free_mail || derived.disposable_email,
        street: fields.street.clone(),
        street2: fields.street2.clone(),
        locality: fields.locality.clone(),
        city: fields.city.clone(),
        postal_code: fields.postal_code.clone(),
        state: fields.state.clone(),
        country: fields.country.clone(),
    }
}

/// The keys a lead is indexed under, and looked up by.
pub fn blocking_keys(record: &Record, model: &Model) -> Vec<String> {
    crate::matching::blocking_keys_with(record, model.email_rules())
}

/// Picks the lead the candidate belongs to among those sharing a key with it: the same
/// mailbox first, else the best score above the auto-merge threshold. Every other lead it
/// matches as confidently is a [`Bridge`] into that one, unless the two leads contradict
/// each other (a hard rule reporting a conflict, such as different mailboxes at one company
/// or relatives at one company): then the candidate joins only the first.
pub fn decide<R: Borrow<Record>>(candidate: &Record, found: &[(LeadId, R)], model: &Model) -> Decision {
    // Every confident match: (its lead and record, why).
    let mut confident: Vec<((LeadId, &Record), Explanation)> = Vec::new();
    let mut possible = Vec::new();
    for (id, record) in found {
        let lead = (*id, record.borrow());
        let (id, record) = lead;
        if crate::matching::exact_match(candidate, record, model.email_rules()) == Some(ExactRule::Email) {
            confident.push((lead, Explanation { rule: MatchRule::ExactEmail, score: None, evidence: Vec::new() }));
            continue;
        }
        let score = crate::matching::compare(candidate, record, model);
        match crate::matching::decide(&score, model.thresholds()) {
            Verdict::Merge => confident
                .push((lead, Explanation { rule: MatchRule::Fuzzy, score: Some(score.score), evidence: score.parts })),
            Verdict::Review => {
                possible.push(PossibleDuplicate { lead_id: id, score: score.score, evidence: score.parts })
            }
            Verdict::Distinct => {}
        }
    }
    // The same mailbox first, else the best score (the first of equal ones).
    let rank = |e: &Explanation| match e.rule {
        MatchRule::ExactEmail => f64::INFINITY,
        _ => e.score.unwrap_or(f64::NEG_INFINITY),
    };
    let chosen = (0..confident.len()).fold(None::<usize>, |best, k| match best {
        Some(b) if rank(&confident[k].1) <= rank(&confident[b].1) => Some(b),
        _ => Some(k),
    });
    let Some(chosen) = chosen else {
        possible.sort_by(|a, b| b.score.total_cmp(&a.score));
        possible.truncate(MAX_POSSIBLE);
        return Decision::Create { possible };
    };
    let ((into, into_record), explanation) = confident.swap_remove(chosen);
    let also = confident
        .into_iter()
        .filter(|((id, record), _)| {
            *id != into && crate::matching::compare(into_record, record, model).conflict_ceiling() == Verdict::Merge
        })
        .map(|((id, _), e)| Bridge { lead_id: id, explanation: Explanation { rule: MatchRule::Bridged, ..e } })
        .collect();
    Decision::Merge { into, explanation, also }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Picklists, SourceConfig};
    use crate::pipeline::prepare;
    use serde_json::json;

    fn record(v: serde_json::Value) -> Record {
        let c = prepare(v.as_object().unwrap(), &SourceConfig::api(), &Picklists::default()).unwrap();
        match_record(&c.fields, &c.derived)
    }

    #[test]
    fn counted_frequencies_reach_every_clone_and_weigh_common_names_less() {
        let matching = Arc::new(Matching { fuzzy: true, ..Matching::default() });
        let clone = matching.clone();
        let person = |first: &str, last: &str, company: &str| Record {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            company_key: Some(company.into()),
            city: Some("Springfield".into()),
            ..Record::default()
        };
        let (a, b) = (person("Michael", "Johnson", "globex"), person("Michael", "Johnson", "globex"));
        let score = |m: &Matching| m.with_model(|model| crate::matching::compare(&a, &b, model).score);
        let fixed = score(&clone);
        // A store where Globex is large and Michael Johnson a common name there.
        let mut stored: Vec<Record> = (0..600).map(|_| a.clone()).collect();
        stored.extend((0..1_400).map(|i| person(&format!("Name{i}"), &format!("Family{i}"), &format!("company{i}"))));
        matching.use_frequencies(NameFrequencies::from_records(&stored));
        let counted = score(&clone);
        assert!(counted < fixed - 3.0, "a common name at a large company counts for less: {fixed} → {counted}");
        assert_eq!(*matching, Matching { fuzzy: true, ..Matching::default() }, "counting is state, not configuration");
    }

    #[test]
    fn learned_weights_reach_every_clone_and_combine_with_counted_frequencies() {
        let matching = Arc::new(Matching::default());
        let clone = matching.clone();
        let person = |first: &str, last: &str| Record {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            ..Record::default()
        };
        let (a, b) = (person("Ada", "Lovelace"), person("Ada", "Lovelace"));
        let first_name_weight = |m: &Matching| {
            m.with_model(|model| {
                crate::matching::compare(&a, &b, model)
                    .parts
                    .iter()
                    .find(|e| e.field == crate::matching::Field::FirstName)
                    .map(|e| e.weight)
            })
        };
        let configured = first_name_weight(&clone).unwrap();
        let mut trained = crate::matching::train(&[], &Model::default(), &Default::default());
        trained.levels.push(crate::matching::TrainedLevel {
            field: crate::matching::Field::FirstName,
            level: crate::matching::Level::Exact,
            m: 0.5,
            u: 0.5 / 256.0,
            weight: 8.0,
            m_count: 1.0,
            u_count: 1,
            m_origin: crate::matching::Origin::Learned,
            u_origin: crate::matching::Origin::Learned,
        });
        matching.use_trained(Some(trained));
        assert!((first_name_weight(&clone).unwrap() - 8.0).abs() < 1e-9, "the learned weight, in every clone");
        matching.use_frequencies(NameFrequencies::from_records(&[a.clone(), b.clone()]));
        assert!(clone.trained().is_some(), "counting keeps the learned weights");
        matching.use_trained(None);
        assert_ne!(first_name_weight(&clone).unwrap(), 8.0);
        assert_ne!(configured, 8.0);
    }

    #[test]
    fn the_same_mailbox_merges_whatever_the_spelling() {
        let model = Model::default();
        let existing = record(json!({"email": "jane.doe@gmail.com", "first_name": "Jane"}));
        let id = LeadId::new();
        let d = decide(&record(json!({"email": "JaneDoe+webinar@gmail.com"})), &[(id, existing)], &model);
        assert!(
            matches!(d, Decision::Merge { into, explanation: Explanation { rule: MatchRule::ExactEmail, .. }, .. } if into == id)
        );
    }

    #[test]
    fn a_nickname_at_the_same_company_with_the_same_phone_merges_and_explains_why() {
        let model = Model::default();
        let existing = record(
            json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"}),
        );
        let id = LeadId::new();
        let d = decide(
            &record(
                json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671", "country": "US"}),
            ),
            &[(id, existing)],
            &model,
        );
        match d {
            Decision::Merge { into, explanation, .. } => {
                assert_eq!(into, id);
                assert_eq!(explanation.rule, MatchRule::Fuzzy);
                assert!(explanation.score.unwrap() >= model.thresholds().auto_merge);
                assert!(!explanation.evidence.is_empty());
            }
            other => panic!("expected a merge, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_search_finds_the_duplicates_among_stored_leads() {
        let leads: Vec<(LeadId, Record)> = [
            json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"}),
            json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil"}),
            json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671", "country": "US"}),
            json!({"first_name": "Robert", "last_name": "Smith", "company": "Globex", "email": "rsmith@globex.com"}),
            json!({"email": "Grace@Navy.mil"}),
        ]
        .into_iter()
        .map(|v| (LeadId::new(), record(v)))
        .collect();
        let pairs = find_duplicates(&leads, &Matching::default());
        let merges: Vec<(LeadId, LeadId)> =
            pairs.iter().filter(|p| p.verdict == Verdict::Merge).map(|p| (p.older, p.newer)).collect();
        assert_eq!(merges, vec![(leads[0].0, leads[2].0), (leads[1].0, leads[4].0)]);
        assert!(
            pairs.iter().all(|p| p.newer != leads[3].0 || p.verdict != Verdict::Merge),
            "a namesake elsewhere is not merged"
        );
    }

    #[test]
    fn a_candidate_matching_two_leads_bridges_them_unless_they_contradict_each_other() {
        let model = Model::default();
        let call =
            (LeadId::new(), record(json!({"first_name": "Robert", "last_name": "Smith", "phone": "+1 415 555 2671"})));
        let badge = (
            LeadId::new(),
            record(
                json!({"first_name": "Bob", "last_name": "Smith", "company": "Acme", "email": "bob.smith@acme.com"}),
            ),
        );
        let form = record(
            json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme", "email": "bob.smith@acme.com", "phone": "+1 415 555 2671"}),
        );
        match decide(&form, &[call.clone(), badge.clone()], &model) {
            Decision::Merge { into, explanation, also } => {
                assert_eq!((into, explanation.rule), (badge.0, MatchRule::ExactEmail), "the mailbox first");
                assert_eq!(also.len(), 1);
                assert_eq!((also[0].lead_id, also[0].explanation.rule), (call.0, MatchRule::Bridged));
                assert!(also[0].explanation.score.unwrap() >= model.thresholds().auto_merge);
            }
            other => panic!("expected a merge, got {other:?}"),
        }
        // The phone's lead names another company: the candidate matches it, but beside the
        // badge it is a namesake elsewhere. The candidate joins one lead; the two stay apart.
        let elsewhere = (
            LeadId::new(),
            record(
                json!({"first_name": "Robert", "last_name": "Smith", "company": "Globex", "phone": "+1 415 555 2671"}),
            ),
        );
        assert_eq!(
            crate::matching::decide(&crate::matching::compare(&form, &elsewhere.1, &model), model.thresholds()),
            Verdict::Merge
        );
        let d = decide(&form, &[elsewhere, badge.clone()], &model);
        assert!(matches!(&d, Decision::Merge { into, .. } if *into == badge.0), "{d:?}");
        assert!(d.bridges().is_empty(), "{d:?}");
    }

    #[test]
    fn a_batch_search_bridges_a_person_split_over_two_leads() {
        let leads: Vec<(LeadId, Record)> = [
            json!({"first_name": "Robert", "last_name": "Smith", "phone": "+1 415 555 2671"}),
            json!({"first_name": "Bob", "last_name": "Smith", "company": "Acme", "email": "bob.smith@acme.com"}),
            json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme", "email": "bob.smith@acme.com", "phone": "+1 415 555 2671"}),
        ]
        .into_iter()
        .map(|v| (LeadId::new(), record(v)))
        .collect();
        let pairs = find_duplicates(&leads, &Matching::default());
        let merges: Vec<(LeadId, LeadId, MatchRule)> = pairs
            .iter()
            .filter(|p| p.verdict == Verdict::Merge)
            .map(|p| (p.older, p.newer, p.explanation.rule))
            .collect();
        assert_eq!(
            merges,
            vec![(leads[1].0, leads[2].0, MatchRule::ExactEmail), (leads[0].0, leads[2].0, MatchRule::Bridged)]
        );
    }

    #[test]
    fn a_shared_role_mailbox_does_not_glue_two_people() {
        let model = Model::default();
        let anna =
            (LeadId::new(), record(json!({"first_name": "Anna", "last_name": "Kowalski", "email": "info@pixel.fr"})));
        let marc = record(json!({"first_name": "Marc", "last_name": "Dubois", "email": "INFO@pixel.fr"}));
        assert!(matches!(decide(&marc, std::slice::from_ref(&anna), &model), Decision::Create { .. }));
        let again = record(json!({"first_name": "Anna", "last_name": "Kowalski", "email": "info@pixel.fr"}));
        match decide(&again, std::slice::from_ref(&anna), &model) {
            Decision::Merge { into, explanation, .. } => {
                assert_eq!(
                    (into, explanation.rule),
                    (anna.0, MatchRule::Fuzzy),
                    "merged on the names, not the mailbox"
                );
            }
            other => panic!("expected a merge, got {other:?}"),
        }
    }

    #[test]
    fn a_stream_of_sparse_badge_scans_with_one_common_surname_never_merges() {
        let scans: Vec<Record> = (0..200)
            .map(|i| match i % 4 {
                0 => record(json!({"last_name": "Smith", "phone": format!("+1415555{:04}", i)})),
                1 => record(json!({"last_name": "Smith", "city": "Boston", "email": format!("s{i}@gmail.com")})),
                2 => record(json!({"last_name": "SMITH", "city": "Boston", "state": "MA", "email": format!("x{i}@mail.com")})),
                _ => record(json!({"first_name": "Unknown", "last_name": "Smith", "city": "Boston", "phone": format!("+1617555{:04}", i)})),
            })
            .map(|mut r| {
                // Badge scans carry no contact: the one needed to pass validation is dropped.
                r.email = None;
                r.phone = None;
                r.email_domain = None;
                r
            })
            .collect();
        // With frequencies counted over the scans, as the store does.
        let model = Model::default().with_frequencies(NameFrequencies::from_records(&scans));
        let mut stored: Vec<(LeadId, Record)> = Vec::new();
        for scan in scans {
            let d = decide(&scan, &stored, &model);
            assert!(matches!(d, Decision::Create { .. }), "{scan:?} merged: {d:?}");
            stored.push((LeadId::new(), scan));
        }
    }

    #[test]
    fn namesakes_at_different_companies_stay_apart() {
        let model = Model::default();
        let existing =
            record(json!({"first_name": "John", "last_name": "Smith", "company": "Acme", "email": "john@acme.com"}));
        let d = decide(
            &record(
                json!({"first_name": "John", "last_name": "Smith", "company": "Globex", "email": "jsmith@globex.com"}),
            ),
            &[(LeadId::new(), existing)],
            &model,
        );
        assert_eq!(d, Decision::Create { possible: vec![] });
    }
}

/// A pair found by [`find_duplicates`]: `newer` is the same person as `older` (merge) or
/// may be (review).
#[derive(Clone, Debug, PartialEq)]
pub struct FoundPair {
    pub older: LeadId,
    pub newer: LeadId,
    pub verdict: Verdict,
    pub explanation: Explanation,
}

/// Most candidates one lead is compared with during a batch search.
const BATCH_MAX_CANDIDATES: usize = 100;
/// A key shared by more leads than this stops collecting postings.
const BATCH_MAX_POSTINGS: usize = 256;

/// Finds duplicate pairs among stored leads, in creation order (each lead is compared with
/// the earlier ones sharing a key). Name frequencies are counted over the same leads, so
/// common names weigh less than rare ones. Pure: the caller decides what to apply.
pub fn find_duplicates(leads: &[(LeadId, Record)], matching: &Matching) -> Vec<FoundPair> {
    let frequencies = crate::matching::NameFrequencies::from_records(leads.iter().map(|(_, r)| r));
    // The learned weights, if any, with the frequencies of these leads.
    let model = matching.with_model(Model::clone).with_frequencies(frequencies);
    let mut index = crate::matching::CandidateIndex::new(BATCH_MAX_POSTINGS);
    let mut found = Vec::new();
    let mut candidates = Vec::new();
    for (position, (id, record)) in leads.iter().enumerate() {
        let keys = blocking_keys(record, &model);
        index.candidates_capped(&keys, BATCH_MAX_CANDIDATES, &mut candidates);
        let earlier: Vec<(LeadId, Record)> = candidates
            .iter()
            .filter_map(|&c| leads.get(usize::try_from(c).ok()?))
            .map(|(lead, r)| (*lead, r.clone()))
            .collect();
        match decide(record, &earlier, &model) {
            Decision::Merge { into, explanation, also } => {
                found.push(FoundPair { older: into, newer: *id, verdict: Verdict::Merge, explanation });
                // Applied after the first, each brings that lead in too: one person, one lead.
                found.extend(also.into_iter().map(|b| FoundPair {
                    older: b.lead_id,
                    newer: *id,
                    verdict: Verdict::Merge,
                    explanation: b.explanation,
                }));
            }
            Decision::Create { possible } => found.extend(possible.into_iter().map(|p| FoundPair {
                older: p.lead_id,
                newer: *id,
                verdict: Verdict::Review,
                explanation: Explanation { rule: MatchRule::Fuzzy, score: Some(p.score), evidence: p.evidence },
            })),
        }
        if let Ok(position) = u32::try_from(position) {
            index.insert(position, &keys);
        }
    }
    found
}
