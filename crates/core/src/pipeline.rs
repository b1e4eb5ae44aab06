//! The pipeline, in two halves.
//!
//! [`prepare`] runs the stages that need nothing but the submission: map → normalize →
//! validate. It runs on the request's own task, in parallel across requests, and a
//! rejected submission never reaches the store.
//!
//! [`settle`] runs the stages that need what is already stored: merge or create →
//! attribute → lifecycle, following the decision [`resolve::decide`] made over the leads
//! the store found by the candidate's blocking keys. The store calls both inside the
//! transaction that commits the lead, its history and the submission together.

use crate::attribute::{Attribution, Touchpoint};
use crate::config::{Picklists, SourceConfig};
use crate::error::FieldError;
use crate::ids::{LeadId, SubmissionId};
use crate::lead::Lead;
use crate::normalize::Candidate;
use crate::resolve::{self, Decision, Explanation, Model, PossibleDuplicate};
use crate::source::SourceName;
use crate::{map, normalize, validate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// map → normalize → validate, reporting every error found on the way.
pub fn prepare(
    payload: &Map<String, Value>,
    source: &SourceConfig,
    picklists: &Picklists,
) -> Result<Candidate, Vec<FieldError>> {
    let mapped = map::map(payload, source.mapping.as_ref());
    let hints = normalize::Hints {
        default_country: source.default_country.as_deref(),
        industries: &picklists.industry,
        legal_suffixes: &picklists.legal_suffixes,
        purposes: &picklists.consent_purposes,
    };
    let candidate = normalize::normalize(mapped, hints)?;
    validate::validate(&candidate, &source.required)?;
    Ok(candidate)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Merged,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Merged => "merged",
        }
    }
}

/// What happened to a lead, for its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LeadEvent {
    Created {
        submission_id: SubmissionId,
        source: SourceName,
    },
    Merged {
        submission_id: SubmissionId,
        source: SourceName,
        #[serde(flatten)]
        explanation: Explanation,
        /// The fields the submission filled in.
        filled: Vec<String>,
        /// The fields whose value the submission replaced (survivorship rules).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replaced: Vec<String>,
        consent_updated: bool,
        /// This lead as it was just before, so the merge can be undone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        before: Option<Box<Lead>>,
    },
    /// Another lead was merged into this one (a review decision, a batch search, or a
    /// submission that matched both: a bridge).
    Absorbed {
        /// The lead merged in.
        absorbed: LeadId,
        #[serde(flatten)]
        explanation: Explanation,
        filled: Vec<String>,
        /// This lead as it was just before, so the merge can be undone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        before: Option<Box<Lead>>,
    },
    /// A merge was undone: the absorbed lead lives on its own again.
    Unmerged {
        absorbed: LeadId,
    },
    /// A merge made at capture was undone: the submission became a lead of its own.
    Split {
        submission_id: SubmissionId,
        into: LeadId,
    },
    /// The score changed.
    Scored {
        previous: Option<i64>,
        score: i64,
        /// High enough for MQL but held back by the data-quality gate.
        flagged: bool,
    },
    /// The lead moved in the lifecycle.
    StageChanged {
        from: String,
        to: String,
        /// Who asked; `None` for an automatic transition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        automatic: bool,
        /// Reaching the handoff stage (MQL): routing and delivery take it from here.
        handoff: bool,
    },
    /// The lead's owner changed outside routing (a CRM reassigned it).
    OwnerChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// Who said so, e.g. `feedback:hubspot-main`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
    },
    /// The lead's attendance of an event changed: it registered, came (for `minutes`), did
    /// not show up, or cancelled.
    Attendance {
        event: String,
        status: crate::engagement::attendance::Status,
        minutes: u32,
    },
    /// Events of an anonymous visitor (or sent before the lead existed) were attached.
    EventsAttached {
        count: u64,
    },
    /// This lead was merged into another and lives on there.
    MergedInto {
        into: LeadId,
    },
    /// Possibly the same person as other leads: queued for review.
    PossibleDuplicates {
        lead_ids: Vec<LeadId>,
    },
    /// The lead was given to an owner: by routing (with the rule and every step of the
    /// choice), an SLA reassignment or escalation, or the CRM.
    Assigned {
        owner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
        /// What set routing off: `handoff`, `priority_source`, `renewed_touch`, `sla`, `manual`.
        trigger: String,
        /// The rule that matched, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// How the owner was chosen: `round_robin`, `weighted`, `territory`,
        /// `account_owner`, `related_lead`, `fallback`, `escalation`, `manual`.
        via: String,
        /// The explanation, step by step.
        steps: Vec<String>,
        /// When the SLA runs out if the owner has not accepted by then.
        #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        sla_due_at: Option<OffsetDateTime>,
    },
    /// The person was erased (the right to be forgotten): this lead and every lead merged
    /// into it are tombstones now, and the earlier entries keep their kinds and times but
    /// nothing personal (see [`crate::erase`]).
    /// An operator (or a client, e.g. an unsubscribe link) recorded a consent choice.
    ConsentChanged {
        purpose: String,
        status: crate::consent::Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
    },
    Erased {
        /// Who asked: the API key's name unless the request named someone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        /// Why, as given: a ticket or request number, never personal data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The leads merged into this one, erased with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        merged: Vec<LeadId>,
        /// The CRM records known for them, which the destinations are asked to delete.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        crm_records: Vec<crate::erase::CrmRecord>,
        /// The destinations that received (or may have received) the person's data.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        delivered_to: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub lead_id: LeadId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    #[serde(flatten)]
    pub event: LeadEvent,
}

/// Everything configured that settling a lead applies: identity resolution, scoring and
/// the lifecycle contract, and which destinations subscribe to which lead events (so the
/// outbox rows commit with the change). Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    pub matching: std::sync::Arc<resolve::Matching>,
    pub engagement: std::sync::Arc<crate::engagement::Engagement>,
    /// Each configured source's channel kind, for touchpoints.
    pub channels: std::sync::Arc<std::collections::BTreeMap<SourceName, &'static str>>,
    pub outbox: std::sync::Arc<crate::deliver::Subscriptions>,
    /// Who gets a lead, and the SLA on taking it.
    pub routing: std::sync::Arc<crate::scoring::routing::RoutingConfig>,
    /// The key suppression hashes are made with: an erasure suppresses its person under it.
    pub suppression: Option<std::sync::Arc<crate::suppress::SuppressionKey>>,
}

impl Rules {
    pub fn channel(&self, source: &SourceName) -> Option<&'static str> {
        self.channels.get(source).copied()
    }
}

/// The submission a candidate came from.
#[derive(Clone, Debug, PartialEq)]
pub struct SubmissionMeta {
    pub id: SubmissionId,
    pub source: SourceName,
    pub received_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settlement {
    pub outcome: Outcome,
    pub lead: Lead,
    pub history: HistoryEntry,
    /// The submission as a touchpoint of the lead.
    pub touch: Touchpoint,
    /// Leads that may be the same person, for the review queue.
    pub possible_duplicates: Vec<PossibleDuplicate>,
}

/// merge or create → attribute → lifecycle. `target` is the lead a merge decision names,
/// as stored; without it the candidate becomes a new lead.
pub fn settle(
    candidate: Candidate,
    sub: &SubmissionMeta,
    decision: Decision,
    target: Option<Lead>,
    now: OffsetDateTime,
    rules: &Rules,
) -> Settlement {
    let mut touch =
        Touchpoint::of_submission(sub.source.clone(), sub.id, sub.received_at, &candidate.fields, &candidate.custom);
    touch.channel = rules.channel(&sub.source).map(str::to_owned);
    let survivorship = &rules.matching.survivorship;
    match (decision, target) {
        (Decision::Merge { into, explanation, .. }, Some(mut lead)) if lead.id == into => {
            let before = Box::new(lead.clone());
            let report = resolve::merge::merge(
                &mut lead,
                candidate,
                touch.clone(),
                now,
                survivorship,
                &rules.matching.legal_suffixes,
            );
            let history = HistoryEntry {
                lead_id: lead.id,
                at: now,
                event: LeadEvent::Merged {
                    submission_id: sub.id,
                    source: sub.source.clone(),
                    explanation,
                    filled: report.filled,
                    replaced: report.replaced,
                    consent_updated: report.consent_updated,
                    before: Some(before),
                },
            };
            Settlement { outcome: Outcome::Merged, lead, history, touch, possible_duplicates: Vec::new() }
        }
        (Decision::Create { possible }, _) => create(candidate, sub, touch, now, possible),
        (Decision::Merge { .. }, _) => create(candidate, sub, touch, now, Vec::new()),
    }
}

/// The whole resolve and settle step over leads already in hand (tests, batch tools).
pub fn resolve_and_settle(
    candidate: Candidate,
    sub: &SubmissionMeta,
    found: Vec<Lead>,
    model: &Model,
    now: OffsetDateTime,
) -> Settlement {
    let record = resolve::match_record(&candidate.fields, &candidate.derived);
    let records: Vec<(LeadId, resolve::Record)> =
        found.iter().map(|l| (l.id, resolve::match_record(&l.fields, &l.derived))).collect();
    let decision = resolve::decide(&record, &records, model);
    let target = match &decision {
        Decision::Merge { into, .. } => found.into_iter().find(|l| l.id == *into),
        Decision::Create { .. } => None,
    };
    settle(candidate, sub, decision, target, now, &Rules::default())
}

fn create(
    candidate: Candidate,
    sub: &SubmissionMeta,
    touch: Touchpoint,
    now: OffsetDateTime,
    possible: Vec<PossibleDuplicate>,
) -> Settlement {
    let lead = Lead {
        id: LeadId::new(),
        fields: candidate.fields,
        custom: candidate.custom,
        consent: candidate.consent,
        raw: candidate.raw,
        issues: candidate.issues,
        derived: candidate.derived,
        attribution: Attribution::first(touch.clone()),
        lifecycle_stage: crate::lifecycle::INITIAL.to_owned(),
        stage_entered_at: Some(now),
        score: None,
        score_detail: None,
        owner: None,
        provenance: Default::default(),
        account_id: None,
        attendance: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
        erased_at: None,
    };
    let history = HistoryEntry {
        lead_id: lead.id,
        at: now,
        event: LeadEvent::Created { submission_id: sub.id, source: sub.source.clone() },
    };
    Settlement { outcome: Outcome::Created, lead, history, touch, possible_duplicates: possible }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn prepare_api(p: &Map<String, Value>) -> Result<Candidate, Vec<FieldError>> {
        prepare(p, &SourceConfig::api(), &Picklists::default())
    }

    fn meta(source: &str) -> SubmissionMeta {
        SubmissionMeta {
            id: SubmissionId::new(),
            source: SourceName::parse(source).unwrap(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn same_email_merges_filling_empty_fields_and_keeping_the_original_source() {
        let now = OffsetDateTime::now_utc();
        let first =
            prepare_api(&payload(json!({"email": "ada@example.com", "first_name": "Ada", "utm_campaign": "spring"})))
                .unwrap();
        let created = resolve_and_settle(first, &meta("api"), vec![], &Model::default(), now);
        assert_eq!(created.outcome, Outcome::Created);

        let second = prepare_api(&payload(json!({"email": " ADA@example.com", "first_name": "Augusta", "company": "Analytical", "utm_campaign": "summer"}))).unwrap();
        let merged = resolve_and_settle(second, &meta("webinar"), vec![created.lead.clone()], &Model::default(), now);
        assert_eq!(merged.outcome, Outcome::Merged);
        assert_eq!(merged.lead.id, created.lead.id);
        assert_eq!(merged.lead.fields.first_name.as_deref(), Some("Ada"));
        assert_eq!(merged.lead.fields.company.as_deref(), Some("Analytical"));
        assert_eq!(merged.lead.attribution.original.utm_campaign.as_deref(), Some("spring"));
        assert_eq!(merged.lead.attribution.latest.utm_campaign.as_deref(), Some("summer"));
        assert_eq!(merged.lead.attribution.latest.source.as_str(), "webinar");
        assert_eq!(merged.lead.version, 2);
        match merged.history.event {
            LeadEvent::Merged { filled, explanation, .. } => {
                assert_eq!(explanation.rule, resolve::MatchRule::ExactEmail);
                assert_eq!(filled, vec!["company".to_owned()]);
            }
            other => panic!("expected a merge, got {other:?}"),
        }
    }

    #[test]
    fn survivorship_rules_decide_which_value_a_merge_keeps() {
        use crate::resolve::merge::{Rule, Survivorship};
        let now = OffsetDateTime::now_utc();
        let rules = Survivorship {
            fields: [("job_title".to_owned(), Rule::Newest), ("company".to_owned(), Rule::SourcePriority)]
                .into_iter()
                .collect(),
            source_priority: vec![SourceName::parse("crm").unwrap(), SourceName::parse("webinar").unwrap()],
            ..Survivorship::default()
        };
        let merge = |lead: Lead, v: Value, source: &str| {
            let c = prepare_api(&payload(v)).unwrap();
            let d = Decision::Merge {
                into: lead.id,
                explanation: resolve::Explanation {
                    rule: resolve::MatchRule::ExactEmail,
                    score: None,
                    evidence: vec![],
                },
                also: vec![],
            };
            let rules = Rules {
                matching: std::sync::Arc::new(resolve::Matching { survivorship: rules.clone(), ..Default::default() }),
                ..Rules::default()
            };
            settle(c, &meta(source), d, Some(lead), now, &rules)
        };
        let first = prepare_api(&payload(
            json!({"email": "ada@example.com", "job_title": "Engineer", "company": "Acme", "city": "Paris"}),
        ))
        .unwrap();
        let lead = resolve_and_settle(first, &meta("webinar"), vec![], &Model::default(), now).lead;

        // Newest wins for the title; a less trusted source cannot replace the company;
        // the city keeps its value by default.
        let s = merge(
            lead,
            json!({"email": "ada@example.com", "job_title": "CTO", "company": "Acme Labs", "city": "Lyon"}),
            "api",
        );
        assert_eq!(s.lead.fields.job_title.as_deref(), Some("CTO"));
        assert_eq!(s.lead.fields.company.as_deref(), Some("Acme"));
        assert_eq!(s.lead.fields.city.as_deref(), Some("Paris"));
        assert_eq!(s.lead.provenance.get("job_title").map(SourceName::as_str), Some("api"));
        match &s.history.event {
            LeadEvent::Merged { replaced, .. } => assert_eq!(replaced, &vec!["job_title".to_owned()]),
            other => panic!("expected a merge, got {other:?}"),
        }
        // The more trusted source replaces it, and is remembered as its holder.
        let s = merge(s.lead, json!({"email": "ada@example.com", "company": "Acme Corporation"}), "crm");
        assert_eq!(s.lead.fields.company.as_deref(), Some("Acme Corporation"));
        assert_eq!(s.lead.derived.company_key.as_deref(), Some("acme"));
        let s = merge(s.lead, json!({"email": "ada@example.com", "company": "ACME (webinar)"}), "webinar");
        assert_eq!(s.lead.fields.company.as_deref(), Some("Acme Corporation"));
    }

    #[test]
    fn a_different_email_creates_a_new_lead() {
        let now = OffsetDateTime::now_utc();
        let a = resolve_and_settle(
            prepare_api(&payload(json!({"email": "a@example.com"}))).unwrap(),
            &meta("api"),
            vec![],
            &Model::default(),
            now,
        );
        let b = resolve_and_settle(
            prepare_api(&payload(json!({"email": "b@example.com"}))).unwrap(),
            &meta("api"),
            vec![a.lead],
            &Model::default(),
            now,
        );
        assert_eq!(b.outcome, Outcome::Created);
    }

    proptest::proptest! {
        /// A lead's normalized fields, submitted again, come back unchanged.
        #[test]
        fn preparing_is_idempotent(
            first in "[a-zA-Z' -]{0,20}", last in "(van der |de la |o'|mc)?[a-zA-Z-]{1,15}",
            company in "[a-zA-Z&,. ]{1,25}( Inc\\.| GmbH| Ltd| LLC)?",
            phone in "\\+?[0-9 ()-]{6,16}", country in "(us|DE|France|united kingdom|Brasil|)",
            title in "(VP|Head of|Senior|Chief|)[ a-zA-Z,]{0,20}", industry in "(IT|Finance|Banking|Widgets|)",
        ) {
            let v = json!({"email": "p@example.com", "first_name": first, "last_name": last, "company": company,
                           "phone": phone, "country": country, "job_title": title, "industry": industry});
            let once = prepare_api(v.as_object().unwrap()).unwrap();
            let again = prepare_api(serde_json::to_value(&once.fields).unwrap().as_object().unwrap()).unwrap();
            proptest::prop_assert_eq!(&again.fields, &once.fields);
            proptest::prop_assert_eq!(&again.derived.company_key, &once.derived.company_key);
        }
    }

    #[test]
    fn prepare_reports_errors_from_every_stage_it_reaches() {
        let errs = prepare_api(&payload(json!({"email": "nope", "last_name": 7}))).unwrap_err();
        assert_eq!(errs.len(), 2);
    }
}
