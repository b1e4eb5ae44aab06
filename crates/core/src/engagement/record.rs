//! Recording behavioural events: which lead an event names, replays of an idempotency
//! key, and rescoring each lead an event reached.
//!
//! A [`Recording`] walks a batch of events in three steps, the store loading what each
//! asks for in between: [`lookup`] says what to look up for one event, [`Recording::place`]
//! decides it from what was [`Seen`] (replay, erased, attached or waiting), and once every
//! event is written [`Recording::rescored`] rescores each touched lead once, from all of
//! its events: the same result as rescoring after each, for a fraction of the work.
//! [`Recording::finish`] gives what became of each event, in the order they came.

use super::{EventOutcome, NewEvent};
use crate::changes::Change;
use crate::email::Email;
use crate::ids::{EventId, LeadId};
use crate::lead::Lead;
use crate::pipeline::Rules;
use crate::scoring::EventView;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What to look up for one event. A lead id, when the event names one, is the only way
/// it names its person: a lead id that finds nothing is not guessed from the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    pub lead_id: Option<LeadId>,
    pub email: Option<Email>,
    pub external_id: Option<String>,
    /// The visitor id, looked up among the visitors captures linked to leads.
    pub visitor: Option<String>,
}

/// What to look up for `new` (besides the event already recorded under its idempotency
/// key, if it has one).
pub fn lookup(new: &NewEvent) -> Lookup {
    let who = &new.event.identity;
    if let Some(id) = who.lead_id {
        return Lookup { lead_id: Some(id), ..Lookup::default() };
    }
    Lookup {
        lead_id: None,
        email: who.email.as_deref().and_then(|e| Email::parse(e).ok()),
        external_id: who.external_id.clone(),
        visitor: who.anonymous_id.clone(),
    }
}

/// A surviving lead, as a lookup found it (followed through merges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub id: LeadId,
    pub erased: bool,
}

/// The event recorded earlier under the same source and idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub struct Known {
    pub event_id: EventId,
    /// The lead it belongs to, followed through merges, as it stands now.
    pub lead: Option<Lead>,
}

/// What the store found for one event's [`Lookup`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    pub known: Option<Known>,
    pub by_lead_id: Option<Found>,
    /// The surviving lead with this email.
    pub by_email: Option<LeadId>,
    /// A surviving lead with this external id (the lowest id when several have it).
    pub by_external_id: Option<LeadId>,
    /// The surviving lead the visitor id was linked to.
    pub by_visitor: Option<LeadId>,
}

/// Whom an event names.
enum Named {
    Lead(LeadId),
    /// A lead that was erased: the event is not recorded.
    Erased(LeadId),
    Nobody,
}

impl Seen {
    /// By lead id, email, external id, then visitor id.
    fn named(&self) -> Named {
        if let Some(found) = self.by_lead_id {
            return if found.erased { Named::Erased(found.id) } else { Named::Lead(found.id) };
        }
        match self.by_email.or(self.by_external_id).or(self.by_visitor) {
            Some(id) => Named::Lead(id),
            None => Named::Nobody,
        }
    }
}

/// A batch of events being recorded.
#[derive(Debug, Default)]
pub struct Recording {
    outcomes: Vec<EventOutcome>,
    /// Each lead reached, with the outcomes of its events (positions in `outcomes`).
    touched: BTreeMap<LeadId, Vec<usize>>,
}

impl Recording {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides one event from what the store saw for it: the writes (the event, unless it
    /// is a replay or names an erased lead). The store applies them before it looks up the
    /// next event, so a key repeated within the batch replays the first.
    pub fn place(&mut self, new: &NewEvent, seen: Seen) -> Vec<Change> {
        if let Some(known) = seen.known {
            self.outcomes.push(match known.lead {
                Some(lead) => EventOutcome::Attached {
                    event_id: known.event_id,
                    lead_id: lead.id,
                    score: lead.score,
                    stage: lead.lifecycle_stage,
                    replayed: true,
                },
                None => EventOutcome::Waiting { event_id: known.event_id, replayed: true },
            });
            return Vec::new();
        }
        let lead = match seen.named() {
            Named::Erased(lead_id) => {
                self.outcomes.push(EventOutcome::Erased { lead_id });
                return Vec::new();
            }
            Named::Lead(id) => Some(id),
            Named::Nobody => None,
        };
        if let Some(lead) = lead {
            self.touched.entry(lead).or_default().push(self.outcomes.len());
        }
        self.outcomes.push(EventOutcome::Waiting { event_id: new.event.id, replayed: false });
        let mut new = new.clone();
        new.event.lead_id = lead;
        vec![Change::Event(Box::new(new))]
    }

    /// The leads the batch reached, in id order: rescored in that order, two batches
    /// touching the same leads take their locks in the same order.
    pub fn touched(&self) -> Vec<LeadId> {
        self.touched.keys().copied().collect()
    }

    /// Rescores `id`, one of [`Recording::touched`], now `lead` as stored (followed through
    /// merges, `None` if it is gone) with its latest `events` (this batch's included).
    /// Events that reached a lead erased meanwhile are dropped: nothing of the person is
    /// recorded against a tombstone.
    pub fn rescored(
        &mut self,
        id: LeadId,
        lead: Option<Lead>,
        events: &[EventView],
        rules: &Rules,
        now: OffsetDateTime,
    ) -> Vec<Change> {
        let indexes = self.touched.get(&id).cloned().unwrap_or_default();
        let Some(mut lead) = lead else { return Vec::new() };
        let mut out = Vec::new();
        if lead.erased_at.is_some() {
            for i in indexes {
                if let Some(EventOutcome::Waiting { event_id, .. }) = self.outcomes.get(i).cloned() {
                    out.push(Change::DropEvent { event: event_id });
                    self.outcomes[i] = EventOutcome::Erased { lead_id: lead.id };
                }
            }
            return out;
        }
        let previous = lead.score;
        out = super::rescore_stored(&mut lead, events, rules, now);
        // Events that raised the score are renewed interest: the owner hears of it.
        if let (Some(previous), Some(score)) = (previous, lead.score)
            && score > previous
        {
            let why = crate::changes::Return::Engaged { previous, score };
            out.extend(crate::changes::returned(&lead, &why, rules, now));
        }
        for i in indexes {
            if let Some(EventOutcome::Waiting { event_id, .. }) = self.outcomes.get(i).cloned() {
                self.outcomes[i] = EventOutcome::Attached {
                    event_id,
                    lead_id: lead.id,
                    score: lead.score,
                    stage: lead.lifecycle_stage.clone(),
                    replayed: false,
                };
            }
        }
        out
    }

    /// What became of each event, in the order they were placed.
    pub fn finish(self) -> Vec<EventOutcome> {
        self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::{Engagement, Event, Identity};
    use crate::scoring::ScoringConfig;
    use crate::testing::lead;
    use serde_json::Map;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-06-01 12:00 UTC)
    }

    fn new_event(who: Identity) -> NewEvent {
        NewEvent {
            event: Event {
                id: EventId::new(),
                kind: "page_view".into(),
                occurred_at: now(),
                url: Some("https://x.com/pricing".into()),
                properties: Map::new(),
                lead_id: None,
                identity: who,
            },
            source: crate::SourceName::api(),
            idempotency_key: None,
        }
    }

    fn rules() -> Rules {
        let scoring = ScoringConfig::parse(
            r#"
[scoring]
mql_threshold = 100
[[scoring.rules]]
name = "pricing"
when = { event = "page_view", url_matches = "*/pricing*" }
points = 5
"#,
        )
        .unwrap();
        Rules { engagement: std::sync::Arc::new(Engagement { scoring, ..Engagement::default() }), ..Rules::default() }
    }

    fn scored(mut lead: Lead) -> Lead {
        lead.score = Some(0);
        lead.lifecycle_stage = "new".into();
        lead
    }

    #[test]
    fn a_lead_id_alone_names_the_person_and_an_email_must_parse() {
        let id = LeadId::new();
        let who = Identity { lead_id: Some(id), email: Some("a@x.com".into()), ..Identity::default() };
        assert_eq!(lookup(&new_event(who)), Lookup { lead_id: Some(id), ..Lookup::default() });
        let who =
            Identity { email: Some("not an email".into()), anonymous_id: Some("v1".into()), ..Identity::default() };
        let asked = lookup(&new_event(who));
        assert_eq!((asked.email, asked.visitor.as_deref()), (None, Some("v1")));
    }

    #[test]
    fn an_email_wins_over_an_external_id_and_a_visitor() {
        let (by_email, other) = (LeadId::new(), LeadId::new());
        let mut rec = Recording::new();
        let seen =
            Seen { by_email: Some(by_email), by_external_id: Some(other), by_visitor: Some(other), ..Seen::default() };
        let changes = rec.place(&new_event(Identity::default()), seen);
        assert!(matches!(&changes[..], [Change::Event(e)] if e.event.lead_id == Some(by_email)));
        assert_eq!(rec.touched(), [by_email]);
    }

    #[test]
    fn an_event_naming_nobody_waits_and_one_naming_an_erased_lead_is_not_recorded() {
        let mut rec = Recording::new();
        let waiting = new_event(Identity::default());
        let changes = rec.place(&waiting, Seen::default());
        assert!(matches!(&changes[..], [Change::Event(e)] if e.event.lead_id.is_none()));
        let erased = LeadId::new();
        let seen = Seen { by_lead_id: Some(Found { id: erased, erased: true }), ..Seen::default() };
        assert!(rec.place(&new_event(Identity::default()), seen).is_empty());
        assert!(rec.touched().is_empty());
        assert_eq!(
            rec.finish(),
            [
                EventOutcome::Waiting { event_id: waiting.event.id, replayed: false },
                EventOutcome::Erased { lead_id: erased }
            ]
        );
    }

    #[test]
    fn a_known_key_replays_with_the_lead_as_it_stands() {
        let lead = scored(lead("a@x.com"));
        let known = Known { event_id: EventId::new(), lead: Some(lead.clone()) };
        let mut rec = Recording::new();
        let seen = Seen { known: Some(known.clone()), by_email: Some(LeadId::new()), ..Seen::default() };
        assert!(rec.place(&new_event(Identity::default()), seen).is_empty());
        assert_eq!(
            rec.finish(),
            [EventOutcome::Attached {
                event_id: known.event_id,
                lead_id: lead.id,
                score: Some(0),
                stage: "new".into(),
                replayed: true
            }]
        );
    }

    #[test]
    fn each_lead_is_rescored_once_from_all_its_events() {
        let lead = scored(lead("a@x.com"));
        let mut rec = Recording::new();
        let events: Vec<NewEvent> = (0..2).map(|_| new_event(Identity::default())).collect();
        for e in &events {
            rec.place(e, Seen { by_email: Some(lead.id), ..Seen::default() });
        }
        let views: Vec<EventView> = events.iter().map(|e| e.event.view()).collect();
        let changes = rec.rescored(lead.id, Some(lead.clone()), &views, &rules(), now());
        let [Change::Lead { lead: written, expected, .. }, ..] = &changes[..] else { panic!("{changes:?}") };
        assert_eq!((written.score, *expected, written.version), (Some(10), Some(lead.version), lead.version + 1));
        for outcome in rec.finish() {
            assert!(matches!(outcome, EventOutcome::Attached { score: Some(10), replayed: false, .. }), "{outcome:?}");
        }
    }

    #[test]
    fn events_that_raise_an_owned_leads_score_tell_its_owner() {
        let subscribed = |owner: Option<&str>| {
            let mut lead = scored(lead("a@x.com"));
            lead.owner = owner.map(str::to_owned);
            let mut rules = rules();
            let slack =
                crate::deliver::DestinationConfig::new("slack", "slack", vec![crate::deliver::EventType::Returned]);
            rules.outbox = std::sync::Arc::new(crate::deliver::Subscriptions::new(&[slack]));
            let mut rec = Recording::new();
            let event = new_event(Identity::default());
            rec.place(&event, Seen { by_email: Some(lead.id), ..Seen::default() });
            rec.rescored(lead.id, Some(lead), &[event.event.view()], &rules, now())
        };
        let changes = subscribed(Some("ana"));
        let returned: Vec<_> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Delivery(d) if d.event_type == "lead.returned" => Some(d),
                _ => None,
            })
            .collect();
        let [d] = &returned[..] else { panic!("{changes:?}") };
        let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(payload["returned"], serde_json::json!({"via": "engagement", "previous_score": 0, "score": 5}));
        // Without an owner there is nobody to tell.
        assert!(!subscribed(None).iter().any(|c| matches!(c, Change::Delivery(_))));
    }

    #[test]
    fn events_that_reached_a_lead_erased_meanwhile_are_dropped() {
        let mut lead = scored(lead("a@x.com"));
        lead.erased_at = Some(now());
        let mut rec = Recording::new();
        let event = new_event(Identity::default());
        rec.place(&event, Seen { by_visitor: Some(lead.id), ..Seen::default() });
        let changes = rec.rescored(lead.id, Some(lead.clone()), &[event.event.view()], &rules(), now());
        assert_eq!(changes, [Change::DropEvent { event: event.event.id }]);
        assert_eq!(rec.finish(), [EventOutcome::Erased { lead_id: lead.id }]);
    }
}
