//! Engagement: behavioural events, the score and the lifecycle stage of a lead.
//!
//! The rules live in [`crate::scoring`]; this module applies them to a [`Lead`]: it shows
//! the lead to the rules as one flat view (standard fields, derived facts, `custom.x`),
//! recomputes the score with its breakdown, and moves the lead along the lifecycle
//! contract, automatically or by a person's request. Every change comes back as history
//! events, so the store writes them with the lead in one transaction.

use crate::capture::IdempotencyKey;
use crate::changes::{self, Change};
use crate::ids::{EventId, LeadId};
use crate::lead::Lead;
use crate::pipeline::{LeadEvent, Rules};
use crate::scoring::lifecycle::Actor;
use crate::scoring::{EventView, LifecycleContract, ScoringConfig, TransitionError};
use crate::source::SourceName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub mod attendance;
pub mod conversation;
pub mod record;

/// The scoring rules and the lifecycle contract, as configured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Engagement {
    pub scoring: ScoringConfig,
    pub contract: LifecycleContract,
}

/// A behavioural event as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: EventId,
    /// `page_view`, `content_download`, `webinar_attended`, … or any custom type.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: Map<String, Value>,
    /// The lead it belongs to; `None` while its visitor is anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    /// Who it was about, as sent: used to attach it to a lead, now or when one converts.
    #[serde(default, skip_serializing_if = "Identity::is_empty")]
    pub identity: Identity,
}

/// How an event names its person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    /// Lowercased and trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The first-party visitor id of a browser, before the person fills in a form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.lead_id.is_none() && self.email.is_none() && self.external_id.is_none() && self.anonymous_id.is_none()
    }
}

impl Event {
    pub fn view(&self) -> EventView {
        EventView {
            kind: self.kind.clone(),
            at: self.occurred_at,
            url: self.url.clone(),
            properties: self.properties.clone(),
        }
    }
}

/// A behavioural event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event: Event,
    /// The source it came through (idempotency keys are scoped to it).
    pub source: SourceName,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What became of a recorded event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventOutcome {
    /// Attached to a lead, which was rescored. `replayed` when the idempotency key was
    /// already known (nothing was recorded again).
    Attached { event_id: EventId, lead_id: LeadId, score: Option<i64>, stage: String, replayed: bool },
    /// Kept until its person becomes a lead (an anonymous visitor, an unknown email).
    Waiting { event_id: EventId, replayed: bool },
    /// Not recorded: it names a lead that was erased.
    Erased { lead_id: LeadId },
    /// Not recorded: it names a suppressed person by email.
    Suppressed,
}

/// The lead as the scoring rules read it: standard fields, derived facts and the source at
/// the top level, custom fields under `custom`.
pub fn view(lead: &Lead) -> Map<String, Value> {
    let mut view = match serde_json::to_value(&lead.fields) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Ok(Value::Object(derived)) = serde_json::to_value(&lead.derived) {
        view.extend(derived);
    }
    view.insert("free_mail".into(), Value::Bool(lead.derived.free_mail));
    view.insert("disposable_email".into(), Value::Bool(lead.derived.disposable_email));
    view.insert("source".into(), Value::String(lead.attribution.original.source.as_str().to_owned()));
    view.insert("latest_source".into(), Value::String(lead.attribution.latest.source.as_str().to_owned()));
    view.extend(attendance::facts(&lead.attendance));
    view.insert("custom".into(), Value::Object(lead.custom.clone()));
    view
}

/// Recomputes the lead's score from its fields and events, stores it with its breakdown,
/// and takes the automatic transitions it earns (→ `engaged` on a first event, → `mql`
/// above the threshold with the gate passed). Returns what changed, for the history.
pub fn rescore(lead: &mut Lead, events: &[EventView], rules: &Engagement, now: OffsetDateTime) -> Vec<LeadEvent> {
    if !rules.contract.has_stage(lead.lifecycle_stage.as_str()) {
        // A stage the configured contract no longer knows (or a new lead under a contract
        // whose first stage is not `new`) starts over at the initial stage.
        lead.lifecycle_stage = rules.contract.initial().to_owned();
    }
    let mut changes = attend(lead, events, now);
    let score = crate::scoring::score(&rules.scoring, &view(lead), events, now);
    // A lead's first score is part of its creation; only later changes make history.
    let changed =
        lead.score != Some(score.total) || lead.score_detail.as_ref().map(|s| s.flagged) != Some(score.flagged);
    if lead.score.is_some() && changed {
        changes.push(LeadEvent::Scored { previous: lead.score, score: score.total, flagged: score.flagged });
    }
    let transitions = rules.contract.advance(&lead.lifecycle_stage, &score, &rules.scoring, now);
    lead.score = Some(score.total);
    lead.score_detail = Some(Box::new(score));
    for t in transitions {
        changes.push(apply(lead, t));
    }
    if !changes.is_empty() {
        lead.updated_at = now;
    }
    changes
}

/// Folds the attendance events into the lead's attendance: a history entry for each event
/// whose status or minutes changed.
fn attend(lead: &mut Lead, events: &[EventView], now: OffsetDateTime) -> Vec<LeadEvent> {
    let folded = attendance::fold(&lead.attendance, events, now);
    let changed = folded
        .iter()
        .filter(|a| {
            let before = lead.attendance.iter().find(|b| b.event == a.event);
            before.is_none_or(|b| (b.status, b.minutes) != (a.status, a.minutes))
        })
        .map(|a| LeadEvent::Attendance { event: a.event.clone(), status: a.status, minutes: a.minutes })
        .collect();
    lead.attendance = folded;
    changed
}

/// A person's (or a client's) request to move the lead, checked against the contract.
pub fn transition(
    lead: &mut Lead,
    to: &str,
    actor: &str,
    reason: Option<&str>,
    rules: &Engagement,
    now: OffsetDateTime,
) -> Result<LeadEvent, TransitionError> {
    let t = rules.contract.transition(&lead.lifecycle_stage, to, Actor::User(actor.to_owned()), reason, now)?;
    lead.updated_at = now;
    Ok(apply(lead, t))
}

/// Rescores a stored lead (as read, followed through merges) from its latest events: the
/// writes, none when nothing changed. An erased lead keeps the score it had.
pub fn rescore_stored(lead: &mut Lead, events: &[EventView], rules: &Rules, now: OffsetDateTime) -> Vec<Change> {
    if lead.erased_at.is_some() {
        return Vec::new();
    }
    let history = rescore(lead, events, &rules.engagement, now);
    changes::bumped(lead, history, rules, now)
}

/// Why a stored lead did not move.
#[derive(Clone, Debug, PartialEq)]
pub enum Unmoved {
    /// The contract does not allow the move (the lead is unchanged).
    Refused(TransitionError),
    /// The lead was erased: a tombstone has no lifecycle.
    Erased(LeadId),
}

/// A person's request to move a stored lead: the writes, or why it did not move.
pub fn transition_stored(
    lead: &mut Lead,
    to: &str,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<Change>, Unmoved> {
    if lead.erased_at.is_some() {
        return Err(Unmoved::Erased(lead.id));
    }
    let moved = transition(lead, to, actor, reason, &rules.engagement, now).map_err(Unmoved::Refused)?;
    Ok(changes::bumped(lead, vec![moved], rules, now))
}

fn apply(lead: &mut Lead, t: crate::scoring::Transition) -> LeadEvent {
    lead.lifecycle_stage.clone_from(&t.to);
    lead.stage_entered_at = Some(t.at);
    LeadEvent::StageChanged {
        from: t.from,
        to: t.to,
        actor: match t.actor {
            Actor::System => None,
            Actor::User(who) => Some(who),
        },
        reason: t.reason,
        automatic: t.automatic,
        handoff: t.handoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Picklists, SourceConfig};
    use crate::pipeline::{self, SubmissionMeta};
    use crate::resolve::Model;
    use crate::{SourceName, SubmissionId};
    use serde_json::json;

    fn lead(v: Value) -> Lead {
        let c = pipeline::prepare(v.as_object().unwrap(), &SourceConfig::api(), &Picklists::default()).unwrap();
        let meta = SubmissionMeta { id: SubmissionId::new(), source: SourceName::api(), received_at: now() };
        pipeline::resolve_and_settle(c, &meta, vec![], &Model::default(), now()).lead
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-06-01 12:00 UTC)
    }

    fn rules() -> Engagement {
        let scoring = ScoringConfig::parse(
            r#"
[scoring]
mql_threshold = 30
gate = ["email", "company"]
[[scoring.rules]]
name = "decision maker"
when = { derived = "seniority", in = ["c_level", "vp"] }
points = 20
[[scoring.rules]]
name = "free mail"
when = { derived = "free_mail", is = true }
points = -20
[[scoring.rules]]
name = "pricing"
when = { event = "page_view", url_matches = "*/pricing*" }
points = 5
cap = 15
"#,
        )
        .unwrap();
        Engagement { scoring, contract: LifecycleContract::default() }
    }

    fn page(url: &str) -> EventView {
        EventView { kind: "page_view".into(), at: now(), url: Some(url.into()), properties: Map::new() }
    }

    #[test]
    fn events_raise_the_score_and_a_passed_gate_makes_an_mql_with_a_handoff() {
        let mut l = lead(json!({"email": "ada@acme.com", "company": "Acme", "job_title": "VP Engineering"}));
        let changes = rescore(&mut l, &[], &rules(), now());
        assert_eq!(l.score, Some(20));
        assert_eq!(l.lifecycle_stage, "new");
        assert!(changes.is_empty(), "the first score is part of the creation: {changes:?}");

        let events = vec![page("https://x.com/pricing"), page("https://x.com/pricing?plan=pro")];
        let changes = rescore(&mut l, &events, &rules(), now());
        assert_eq!(l.score, Some(30));
        assert!(matches!(changes[0], LeadEvent::Scored { previous: Some(20), score: 30, .. }), "{changes:?}");
        assert_eq!(l.lifecycle_stage, "mql");
        let handoffs: Vec<_> =
            changes.iter().filter(|c| matches!(c, LeadEvent::StageChanged { handoff: true, .. })).collect();
        assert_eq!(handoffs.len(), 1, "{changes:?}");
        let detail = l.score_detail.as_ref().unwrap();
        assert_eq!(detail.breakdown.iter().map(|r| r.rule.as_ref()).collect::<Vec<_>>(), ["decision maker", "pricing"]);
        // Nothing new: no history.
        assert!(rescore(&mut l, &events, &rules(), now()).is_empty());
    }

    #[test]
    fn a_high_score_that_fails_the_gate_is_flagged_not_handed_off() {
        let mut l = lead(json!({"email": "ada@acme.com", "job_title": "CEO"}));
        let events: Vec<EventView> = (0..4).map(|_| page("https://x.com/pricing")).collect();
        rescore(&mut l, &events, &rules(), now());
        assert_eq!(l.score, Some(35));
        assert_ne!(l.lifecycle_stage, "mql");
        let detail = l.score_detail.as_ref().unwrap();
        assert!(detail.flagged);
        assert_eq!(detail.gate.missing, vec!["company".to_owned()]);
    }

    #[test]
    fn manual_transitions_follow_the_contract() {
        let mut l = lead(json!({"email": "ada@acme.com"}));
        let refused = transition(&mut l, "customer", "rep@x", None, &rules(), now()).unwrap_err();
        assert!(!refused.allowed.is_empty());
        assert!(transition(&mut l, "disqualified", "rep@x", None, &rules(), now()).is_err(), "a reason is required");
        let reason = rules().contract.disqualify_reasons()[0].clone();
        let moved = transition(&mut l, "disqualified", "rep@x", Some(&reason), &rules(), now()).unwrap();
        assert_eq!(l.lifecycle_stage, "disqualified");
        assert!(matches!(moved, LeadEvent::StageChanged { ref actor, .. } if actor.as_deref() == Some("rep@x")));
    }

    fn stored_rules() -> Rules {
        Rules { engagement: std::sync::Arc::new(rules()), ..Rules::default() }
    }

    #[test]
    fn a_stored_lead_is_written_at_its_next_version_only_when_its_score_changed() {
        let mut l = lead(json!({"email": "ada@acme.com", "company": "Acme", "job_title": "VP Engineering"}));
        rescore(&mut l, &[], &rules(), now());
        let version = l.version;
        assert!(rescore_stored(&mut l, &[], &stored_rules(), now()).is_empty());
        assert_eq!(l.version, version, "nothing changed, nothing written");
        let changes = rescore_stored(&mut l, &[page("https://x.com/pricing")], &stored_rules(), now());
        let [Change::Lead { lead: written, expected, .. }, ..] = &changes[..] else { panic!("{changes:?}") };
        assert_eq!((written.score, *expected, written.version), (Some(25), Some(version), version + 1));
    }

    #[test]
    fn an_erased_lead_keeps_its_score_and_refuses_to_move() {
        let mut l = lead(json!({"email": "ada@acme.com", "job_title": "CEO"}));
        l.erased_at = Some(now());
        assert!(rescore_stored(&mut l, &[page("https://x.com/pricing")], &stored_rules(), now()).is_empty());
        assert_eq!(l.score, None);
        let reason = rules().contract.disqualify_reasons()[0].clone();
        let refused = transition_stored(&mut l, "disqualified", "rep@x", Some(&reason), &stored_rules(), now());
        assert_eq!(refused, Err(Unmoved::Erased(l.id)));
    }

    #[test]
    fn a_stored_transition_records_the_stage_change_or_says_why_not() {
        let mut l = lead(json!({"email": "ada@acme.com"}));
        let version = l.version;
        assert!(matches!(
            transition_stored(&mut l, "customer", "rep@x", None, &stored_rules(), now()),
            Err(Unmoved::Refused(_))
        ));
        assert_eq!(l.version, version);
        let reason = rules().contract.disqualify_reasons()[0].clone();
        let changes =
            transition_stored(&mut l, "disqualified", "rep@x", Some(&reason), &stored_rules(), now()).unwrap();
        assert_eq!(l.version, version + 1);
        assert!(changes.iter().any(|c| matches!(c, Change::StageChange { to, .. } if to == "disqualified")));
    }

    #[test]
    fn the_view_shows_fields_derived_facts_and_custom_values() {
        let l = lead(json!({"email": "ada@gmail.com", "custom": {"plan": "pro"}}));
        let v = view(&l);
        assert_eq!(v["email_domain"], "gmail.com");
        assert_eq!(v["free_mail"], true);
        assert_eq!(v["custom"]["plan"], "pro");
        assert_eq!(v["source"], "api");
    }
}
