//! Changes: what a decision writes, as plain data.
//!
//! The core decides; the store applies. Every decision that changes stored data (a
//! capture, a merge, a rescore, a stage change) returns a list of [`Change`]s, and the
//! store applies them in order, in the transaction it loaded the decision's inputs in. A
//! change names rows and values, never a rule, so applying one is a statement or two and
//! both backends apply the same list: nothing is decided twice.
//!
//! The follow-ups every lead change brings (routing's queue row, one delivery per
//! subscribed destination, the stage-change report row, the history entry) are decided
//! here once, by [`follow_up`] and [`record`], whichever path changed the lead.

use crate::account::Account;
use crate::attribute::Touchpoint;
use crate::engagement::NewEvent;
use crate::erase::CrmRecord;
use crate::feedback::{Feedback, FeedbackResult};
use crate::ids::{AccountId, EventId, LeadId, ReviewId, SubmissionId};
use crate::lead::Lead;
use crate::pipeline::{HistoryEntry, LeadEvent, Outcome, Rules};
use crate::resolve::{self, Evidence, Matching, Record};
use crate::route::{Assignment, Trigger};
use crate::{erase, route};
use std::sync::Arc;
use time::{Date, OffsetDateTime};

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Inserts a new lead (`expected: None`) or updates it at the version it was read
    /// with: a lead changed since is a conflict, never a silent overwrite. Its match keys
    /// are replaced by `index`.
    Lead {
        lead: Box<Lead>,
        expected: Option<u64>,
        index: LeadIndex,
    },
    /// `lead` was merged into `into`: it steps aside (its email is then free for the
    /// survivor) and its match keys go.
    MergedAway {
        lead: LeadId,
        into: LeadId,
        at: OffsetDateTime,
    },
    History {
        entry: HistoryEntry,
        submission: Option<SubmissionId>,
    },
    /// The submission is settled into `lead`.
    Processed {
        submission: SubmissionId,
        lead: LeadId,
        outcome: Outcome,
    },
    Touchpoint {
        lead: LeadId,
        touch: Box<Touchpoint>,
    },
    /// A browser's visitor id now names this lead, for events that name it later.
    Visitor {
        anonymous_id: String,
        lead: LeadId,
    },
    /// Events that waited for their person now belong to `lead`.
    AttachEvents {
        lead: LeadId,
        events: Vec<EventId>,
        at: OffsetDateTime,
    },
    /// A row for the stage reports.
    StageChange {
        lead: LeadId,
        from: String,
        to: String,
        at: OffsetDateTime,
        actor: Option<String>,
        reason: Option<String>,
    },
    /// A merge was undone: `lead` lives on its own again.
    Unmerged {
        lead: LeadId,
        at: OffsetDateTime,
    },
    /// Replaces a lead's match keys (its row is unchanged).
    Index {
        lead: LeadId,
        index: LeadIndex,
    },
    /// The lead waits for the resolver: it was created, or its fields changed.
    Resolve {
        lead: LeadId,
    },
    /// A possible duplicate for a person to decide; ignored when the pair is known.
    Review {
        id: ReviewId,
        lead: LeadId,
        candidate: LeadId,
        score: f64,
        evidence: Vec<Evidence>,
        at: OffsetDateTime,
    },
    /// A new account, holding its domains and company keys.
    Account(Box<Account>),
    /// Keys an existing account now holds too (a key another account holds stays there).
    AccountKeys {
        account: AccountId,
        keys: Vec<String>,
    },
    Delivery(Delivery),
    /// Ledger entries of the lead's consent, appended.
    Consent {
        lead: LeadId,
        entries: Vec<crate::consent::Entry>,
    },
    /// The lead's consent changed: its deliveries held for missing consent go again, and
    /// those waiting to be sent carry the lead as it now stands, so a withdrawal reaches
    /// what has not been sent yet (each is checked again when it is tried).
    ConsentReleased {
        lead: LeadId,
        payload: Arc<str>,
        at: OffsetDateTime,
    },
    /// Deliveries of this lead to `destination` that waited for missing data go again
    /// with the lead as it now stands.
    RetryNeedsData {
        lead: LeadId,
        destination: String,
        payload: Arc<str>,
        at: OffsetDateTime,
    },
    /// The lead waits for routing (once: a lead already queued stays queued as it was).
    QueueRouting {
        lead: LeadId,
        trigger: Trigger,
        source: Option<String>,
        at: OffsetDateTime,
    },
    // Routing
    /// A round-robin queue's walk goes on from `position` next time.
    RoutingPosition {
        queue: String,
        position: u64,
    },
    /// One more lead for `rep` on `day`, counted against their daily cap.
    AssignedToday {
        rep: String,
        day: Date,
    },
    /// The account gets its first owner. One that has an owner keeps it, even one set
    /// meanwhile by a concurrent routing: the first lead's owner founds the account's.
    AccountOwner {
        account: AccountId,
        owner: String,
        at: OffsetDateTime,
    },
    /// The lead's assignment, replacing the one it had.
    Assignment {
        lead: LeadId,
        assignment: Assignment,
        at: OffsetDateTime,
    },
    /// The lead's SLA timer stops (its owner took it up, or nobody else can take it); with
    /// `owner`, its assignment now names that owner.
    SlaStopped {
        lead: LeadId,
        owner: Option<String>,
    },
    // Events and feedback
    /// A behavioural event, attached to `event.lead_id` or waiting for its person.
    Event(Box<NewEvent>),
    /// An event written earlier in this transaction that must not stay: its lead turned
    /// out to be erased.
    DropEvent {
        event: EventId,
    },
    /// A feedback row, for the audit. `scrubbed`: it names an erased lead, so only what
    /// became of it and ids are kept, nothing else the CRM sent.
    Feedback {
        feedback: Box<Feedback>,
        result: Box<FeedbackResult>,
        scrubbed: bool,
    },
    /// An earlier feedback row decided again (a later reason completed it, or the CRM
    /// record it named was linked to a lead): its lead, outcome and document.
    FeedbackSettled {
        feedback: Box<Feedback>,
        result: Box<FeedbackResult>,
    },
    /// A CRM record is this lead's (a new link replaces an older one).
    CrmLink {
        record: CrmRecord,
        lead: LeadId,
        at: OffsetDateTime,
    },
    /// A CRM record made for a lead that is erased: its erasure must reach the record too.
    ErasedCrmRecord {
        lead: LeadId,
        record: CrmRecord,
        at: OffsetDateTime,
    },
    // Erasure
    /// A write only an erasure makes: its own list, beside the changes every decision
    /// shares (history, deliveries, the SLA timer), so that this enum stays the
    /// vocabulary of the pipeline and each backend keeps erasure's statements together.
    Erase(erase::plan::Write),
}

/// One event for one destination, for the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The idempotency key sent with every try (the Standard Webhooks `webhook-id`).
    pub id: String,
    pub destination: String,
    pub lead: LeadId,
    pub event_type: String,
    /// JSON: the lead as it stood, or for an erasure only ids.
    pub payload: Arc<str>,
    pub at: OffsetDateTime,
}

/// How a lead is found again: the email's match key, and its match record under each
/// blocking key. Capture keys the mailbox only: the resolver indexes the blocking keys
/// after it has compared the lead, so a lead is not found by fuzzy lookups before its
/// own resolution, and a capture costs no key writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeadIndex {
    /// The address the lead holds alone (one mailbox, one lead); `None` for a shared role
    /// mailbox (`info@`, `sales@`), which several people's leads may give.
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub keys: Vec<String>,
    /// `None`: the lead's blocking keys stay as they are. `Some`: they are replaced by
    /// `keys`, each holding this record.
    pub record: Option<Record>,
}

impl LeadIndex {
    /// The mailbox key only; the blocking keys stay as they are (a capture, whose lead
    /// the resolver indexes next, or a change that leaves identity alone).
    pub fn mailbox(lead: &Lead, matching: &Matching) -> Self {
        let email = lead.fields.email.as_ref().map(|e| e.as_str().to_owned());
        Self {
            email: email.filter(|e| !crate::matching::is_role_mailbox(e)),
            email_key: lead.fields.email.as_ref().map(|e| matching.email_key(e)),
            keys: Vec::new(),
            record: None,
        }
    }

    /// The mailbox key and the blocking keys, replacing those the lead had: for a lead
    /// resolved, merged or unmerged, so the next lookup finds it as it now stands.
    pub fn with_keys(lead: &Lead, matching: &Matching) -> Self {
        let record = resolve::match_record(&lead.fields, &lead.derived);
        let mut keys = resolve::blocking_keys(&record, &matching.model);
        keys.sort_unstable();
        keys.dedup();
        Self { keys, record: Some(record), ..Self::mailbox(lead, matching) }
    }
}

/// The writes that follow a change to `lead` (as it now stands): routing's queue row
/// when the change calls for routing, and one delivery per destination subscribed to what
/// `event` stands for. A delivery of this lead that waited for missing data goes again.
pub fn follow_up(lead: &Lead, event: &LeadEvent, rules: &Rules, now: OffsetDateTime) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some((trigger, source)) = route::queued_by(lead, event, &rules.routing) {
        out.push(Change::QueueRouting { lead: lead.id, trigger, source, at: now });
    }
    if let LeadEvent::Merged { source, .. } = event {
        out.extend(returned(lead, &Return::Submitted { source: source.as_str().to_owned() }, rules, now));
    }
    let wanted = rules.outbox.deliveries(event);
    let consent_changed = matches!(
        event,
        LeadEvent::ConsentChanged { .. } | LeadEvent::Merged { consent_updated: true, .. } | LeadEvent::Absorbed { .. }
    );
    if wanted.is_empty() && (!consent_changed || rules.outbox.is_empty()) {
        return out;
    }
    let erased = erase::payload(lead.id, lead.erased_at.unwrap_or(now), event);
    let payload: Arc<str> = match &erased {
        Some(ids) => ids.to_string().into(),
        // A lead always serializes; an empty payload would be caught by every consumer.
        None => serde_json::to_string(lead).unwrap_or_default().into(),
    };
    if consent_changed && erased.is_none() {
        out.push(Change::ConsentReleased { lead: lead.id, payload: payload.clone(), at: now });
    }
    for (destination, event_type) in wanted {
        if erased.is_none() {
            out.push(Change::RetryNeedsData {
                lead: lead.id,
                destination: destination.to_owned(),
                payload: payload.clone(),
                at: now,
            });
        }
        out.push(Change::Delivery(Delivery {
            id: format!("dlv_{}", uuid::Uuid::now_v7().simple()),
            destination: destination.to_owned(),
            lead: lead.id,
            event_type: event_type.wire_name(),
            payload: payload.clone(),
            at: now,
        }));
    }
    out
}

/// The delivery type of a backfill: the lead as it stands, sent because an operator
/// asked for a time range to reach a destination (one added later, say).
pub const BACKFILLED: &str = "lead.backfilled";

/// A backfill's delivery of `lead` to `destination`: the lead as it stands now, through
/// the outbox like every delivery (retries, dead letters, consent checked when it is
/// tried). `None` for an erased lead: nothing of it is to be sent.
///
/// Its id names the destination, the lead and the lead's version, so a backfill run
/// again queues nothing for a lead that has not changed since it was queued (the store
/// passes over ids it holds), and the destination sees the same idempotency key. With
/// `resend` (a destination that lost what it was sent) the id is new every time.
pub fn backfill(lead: &Lead, destination: &str, now: OffsetDateTime, resend: bool) -> Option<Delivery> {
    use sha2::{Digest, Sha256};
    if lead.erased_at.is_some() {
        return None;
    }
    let id = if resend {
        format!("dlv_{}", uuid::Uuid::now_v7().simple())
    } else {
        // As `episode_id` does: the separator ends the name, the id and version are fixed-size.
        let digest = Sha256::new()
            .chain_update(destination)
            .chain_update([0])
            .chain_update(lead.id.as_uuid().as_bytes())
            .chain_update(lead.version.to_be_bytes())
            .finalize();
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("dlv_bf_{hex}")
    };
    Some(Delivery {
        id,
        destination: destination.to_owned(),
        lead: lead.id,
        event_type: BACKFILLED.to_owned(),
        payload: serde_json::to_string(lead).ok()?.into(),
        at: now,
    })
}

/// What a backfill queues of its `deliveries`: those whose id the outbox does not hold
/// (`held`, loaded by the store in the transaction that applies the result), so a run
/// again, or two at once, queues each lead's state once.
pub fn unqueued(deliveries: Vec<Delivery>, held: &std::collections::HashSet<String>) -> Vec<Change> {
    deliveries.into_iter().filter(|d| !held.contains(&d.id)).map(Change::Delivery).collect()
}

/// Why a lead came back, as a `lead.returned` delivery's payload says under `returned`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Return {
    /// A new submission from `source` was merged into the lead.
    Submitted { source: String },
    /// Behavioural events the scoring rules count raised the score.
    Engaged { previous: i64, score: i64 },
}

/// The `lead.returned` deliveries for a lead that came back, when it has an owner to
/// hear of it (a lead nobody owns yet is routing's business, not a returning one). The
/// payload is the lead with a `returned` object: `{"via": "submission", "source": …}` or
/// `{"via": "engagement", "previous_score": …, "score": …}`.
pub fn returned(lead: &Lead, why: &Return, rules: &Rules, now: OffsetDateTime) -> Vec<Change> {
    let subscribers = rules.outbox.subscribers(crate::deliver::EventType::Returned);
    if subscribers.is_empty() || lead.owner.is_none() || lead.erased_at.is_some() {
        return Vec::new();
    }
    let mut payload = match serde_json::to_value(lead) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Vec::new(),
    };
    let detail = match why {
        Return::Submitted { source } => serde_json::json!({"via": "submission", "source": source}),
        Return::Engaged { previous, score } => {
            serde_json::json!({"via": "engagement", "previous_score": previous, "score": score})
        }
    };
    payload.insert("returned".into(), detail);
    let payload: Arc<str> = serde_json::Value::Object(payload).to_string().into();
    subscribers
        .into_iter()
        .map(|destination| {
            Change::Delivery(Delivery {
                id: format!("dlv_{}", uuid::Uuid::now_v7().simple()),
                destination: destination.to_owned(),
                lead: lead.id,
                event_type: crate::deliver::EventType::Returned.wire_name(),
                payload: payload.clone(),
                at: now,
            })
        })
        .collect()
}

/// Records changes the lead went through (as it now stands): each one's follow-ups, a
/// stage-report row for a stage change, and its history entry.
pub fn record(lead: &Lead, events: Vec<LeadEvent>, rules: &Rules, now: OffsetDateTime) -> Vec<Change> {
    let mut out = Vec::new();
    for event in events {
        out.extend(follow_up(lead, &event, rules, now));
        if let LeadEvent::StageChanged { from, to, actor, reason, .. } = &event {
            out.push(Change::StageChange {
                lead: lead.id,
                from: from.clone(),
                to: to.clone(),
                at: now,
                actor: actor.clone(),
                reason: reason.clone(),
            });
        }
        out.push(Change::History { entry: HistoryEntry { lead_id: lead.id, at: now, event }, submission: None });
    }
    out
}

/// A lead changed in place (rescored, moved along the lifecycle, assigned): the lead at
/// the version it was read with, then each of its changes recorded.
pub fn updated(lead: &Lead, expected: u64, events: Vec<LeadEvent>, rules: &Rules, now: OffsetDateTime) -> Vec<Change> {
    let index = LeadIndex::mailbox(lead, &rules.matching);
    let mut out = vec![Change::Lead { lead: Box::new(lead.clone()), expected: Some(expected), index }];
    out.extend(record(lead, events, rules, now));
    out
}

/// The lead after an in-place change (its version bumped) and the writes for `events`;
/// nothing when there is nothing to record.
pub fn bumped(lead: &mut Lead, events: Vec<LeadEvent>, rules: &Rules, now: OffsetDateTime) -> Vec<Change> {
    if events.is_empty() {
        return Vec::new();
    }
    let expected = lead.version;
    lead.version += 1;
    updated(lead, expected, events, rules, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::{DestinationConfig, EventType, Subscriptions};
    use crate::ids::SubmissionId;
    use crate::source::SourceName;
    use crate::testing::lead;

    fn rules_with(destination: &str, events: &[EventType]) -> Rules {
        Rules {
            outbox: Arc::new(Subscriptions::new(&[DestinationConfig::new(destination, "webhook", events.to_vec())])),
            ..Rules::default()
        }
    }

    #[test]
    fn a_subscribed_destination_gets_one_delivery_and_its_waiting_ones_go_again() {
        let lead = lead("a@example.com");
        let rules = rules_with("crm", &[EventType::Created]);
        let event =
            LeadEvent::Created { submission_id: SubmissionId::new(), source: SourceName::parse("api").unwrap() };
        let changes = follow_up(&lead, &event, &rules, OffsetDateTime::now_utc());
        assert!(
            matches!(&changes[..], [Change::RetryNeedsData { .. }, Change::Delivery(d)] if d.destination == "crm" && d.event_type == "lead.created")
        );
        let Change::Delivery(d) = &changes[1] else { unreachable!() };
        let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(payload["email"], "a@example.com");
        // Not subscribed: nothing.
        assert!(
            follow_up(&lead, &event, &rules_with("crm", &[EventType::Merged]), OffsetDateTime::now_utc()).is_empty()
        );
    }

    #[test]
    fn an_erasure_delivery_carries_ids_only_and_retries_nothing() {
        let mut lead = lead("a@example.com");
        let now = OffsetDateTime::now_utc();
        lead.erased_at = Some(now);
        let rules = rules_with("crm", &[EventType::Erased]);
        let event =
            LeadEvent::Erased { actor: None, reason: None, merged: vec![], crm_records: vec![], delivered_to: vec![] };
        let changes = follow_up(&lead, &event, &rules, now);
        let [Change::Delivery(d)] = &changes[..] else { panic!("{changes:?}") };
        assert!(!d.payload.contains("a@example.com"), "{}", d.payload);
    }

    #[test]
    fn a_backfill_queues_each_destination_lead_and_version_once_unless_resent() {
        let now = OffsetDateTime::now_utc();
        let ada = lead("a@example.com");
        let first = backfill(&ada, "warehouse", now, false).unwrap();
        assert_eq!(backfill(&ada, "warehouse", now, false).unwrap().id, first.id);
        let mut changed = ada.clone();
        changed.version += 1;
        let others = [
            backfill(&changed, "warehouse", now, false).unwrap(),
            backfill(&ada, "lake", now, false).unwrap(),
            backfill(&ada, "warehouse", now, true).unwrap(),
        ];
        assert!(others.iter().all(|d| d.id != first.id), "{others:?}");
        let held = std::collections::HashSet::from([first.id.clone()]);
        let queued = unqueued([vec![first], others.to_vec()].concat(), &held);
        assert_eq!(queued.len(), 3, "all but the held one");
    }

    fn merged_from(source: &str) -> LeadEvent {
        LeadEvent::Merged {
            submission_id: SubmissionId::new(),
            source: SourceName::parse(source).unwrap(),
            explanation: resolve::Explanation { rule: resolve::MatchRule::ExactEmail, score: None, evidence: vec![] },
            filled: vec![],
            replaced: vec![],
            consent_updated: false,
            before: None,
        }
    }

    #[test]
    fn a_submission_merged_into_an_owned_lead_is_a_return_naming_its_source() {
        let mut lead = lead("a@example.com");
        let rules = rules_with("slack", &[EventType::Returned]);
        let now = OffsetDateTime::now_utc();
        // Nobody owns it yet: routing's business, not a return.
        assert!(follow_up(&lead, &merged_from("webinar"), &rules, now).is_empty());

        lead.owner = Some("ana@example.com".into());
        let changes = follow_up(&lead, &merged_from("webinar"), &rules, now);
        let [Change::Delivery(d)] = &changes[..] else { panic!("{changes:?}") };
        assert_eq!((d.destination.as_str(), d.event_type.as_str()), ("slack", "lead.returned"));
        let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(payload["returned"], serde_json::json!({"via": "submission", "source": "webinar"}));
        assert_eq!(payload["owner"], "ana@example.com");

        // A destination subscribed to merges only hears of the merge.
        let merges = follow_up(&lead, &merged_from("webinar"), &rules_with("hook", &[EventType::Merged]), now);
        assert!(
            merges.iter().all(|c| !matches!(c, Change::Delivery(d) if d.event_type == "lead.returned")),
            "{merges:?}"
        );
    }

    #[test]
    fn a_stage_change_is_reported_and_recorded_in_history() {
        let lead = lead("a@example.com");
        let event = LeadEvent::StageChanged {
            from: "new".into(),
            to: "mql".into(),
            actor: None,
            reason: None,
            automatic: true,
            handoff: false,
        };
        let changes = record(&lead, vec![event], &Rules::default(), OffsetDateTime::now_utc());
        assert!(matches!(&changes[..], [Change::StageChange { to, .. }, Change::History { .. }] if to == "mql"));
    }
}
