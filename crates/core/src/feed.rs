//! The change feed: what a list of [`Change`]s means to a reader outside.
//!
//! Analytics and warehouses follow leadflow through `GET /v1/changes`: every lead created,
//! updated, merged, unmerged or erased, every stage change with its reason, every event
//! and every delivery, in commit order. The store writes the feed's rows in the
//! transaction that applies the changes, so a reader never sees a change the database
//! does not hold, nor misses one it does. What a change list adds to the feed is decided
//! here, once, for both backends.
//!
//! An entry names ids and states, never the person: what changed is read from the lead
//! itself, so an erasure has nothing to scrub here. A stage change's reason is the
//! exception the stage reports share: it is what a person typed when they moved the lead.

use crate::changes::Change;
use crate::erase::plan::Write;
use crate::ids::LeadId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One entry of the feed, before the store numbers it.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    pub kind: Kind,
    pub lead: LeadId,
    pub at: OffsetDateTime,
    pub detail: Detail,
}

/// The entry's type, as readers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    LeadCreated,
    LeadUpdated,
    LeadMerged,
    LeadUnmerged,
    LeadErased,
    StageChanged,
    EventRecorded,
    EventAttached,
    DeliveryQueued,
    DeliveryDelivered,
    DeliveryDead,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::LeadCreated,
        Kind::LeadUpdated,
        Kind::LeadMerged,
        Kind::LeadUnmerged,
        Kind::LeadErased,
        Kind::StageChanged,
        Kind::EventRecorded,
        Kind::EventAttached,
        Kind::DeliveryQueued,
        Kind::DeliveryDelivered,
        Kind::DeliveryDead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LeadCreated => "lead.created",
            Kind::LeadUpdated => "lead.updated",
            Kind::LeadMerged => "lead.merged",
            Kind::LeadUnmerged => "lead.unmerged",
            Kind::LeadErased => "lead.erased",
            Kind::StageChanged => "stage.changed",
            Kind::EventRecorded => "event.recorded",
            Kind::EventAttached => "event.attached",
            Kind::DeliveryQueued => "delivery.queued",
            Kind::DeliveryDelivered => "delivery.delivered",
            Kind::DeliveryDead => "delivery.dead",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What an entry says beyond its type, lead and time; each type fills its own fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Detail {
    /// The lead's version after the change (`lead.created`, `lead.updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The lead's stage after the change (`lead.created`, `lead.updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The lead's score after the change (`lead.created`, `lead.updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    /// The survivor a merged lead went into (`lead.merged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub into: Option<LeadId>,
    /// `stage.changed`: the stage left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `stage.changed`: the stage entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `stage.changed`: who moved it (an API key's name, a rule, the CRM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `event.*`: the event's id and type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// `delivery.*`: the delivery's id (its idempotency key) and destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

impl Detail {
    pub fn is_empty(&self) -> bool {
        *self == Detail::default()
    }
}

/// The feed entries a list of changes makes, in the order of the changes.
pub fn entries(changes: &[Change]) -> Vec<FeedEntry> {
    changes.iter().flat_map(of).collect()
}

/// The feed entries one change makes.
pub fn of(change: &Change) -> Vec<FeedEntry> {
    let entry = |kind, lead, at, detail| vec![FeedEntry { kind, lead, at, detail }];
    match change {
        Change::Lead { lead, expected, .. } => {
            let kind = if expected.is_some() { Kind::LeadUpdated } else { Kind::LeadCreated };
            let detail = Detail {
                version: Some(lead.version),
                stage: Some(lead.lifecycle_stage.clone()),
                score: lead.score,
                ..Detail::default()
            };
            entry(kind, lead.id, lead.updated_at, detail)
        }
        Change::MergedAway { lead, into, at } => {
            entry(Kind::LeadMerged, *lead, *at, Detail { into: Some(*into), ..Detail::default() })
        }
        Change::Unmerged { lead, at } => entry(Kind::LeadUnmerged, *lead, *at, Detail::default()),
        Change::StageChange { lead, from, to, at, actor, reason } => entry(
            Kind::StageChanged,
            *lead,
            *at,
            Detail {
                from: Some(from.clone()),
                to: Some(to.clone()),
                actor: actor.clone(),
                reason: reason.clone(),
                ..Detail::default()
            },
        ),
        Change::Event(new) => match new.event.lead_id {
            Some(lead) => entry(
                Kind::EventRecorded,
                lead,
                new.event.occurred_at,
                Detail {
                    event_id: Some(new.event.id.to_string()),
                    event_type: Some(new.event.kind.clone()),
                    ..Detail::default()
                },
            ),
            // An anonymous visitor's event joins the feed when it finds its person.
            None => Vec::new(),
        },
        Change::AttachEvents { lead, events, at } => events
            .iter()
            .map(|event| FeedEntry {
                kind: Kind::EventAttached,
                lead: *lead,
                at: *at,
                detail: Detail { event_id: Some(event.to_string()), ..Detail::default() },
            })
            .collect(),
        Change::Delivery(d) => entry(
            Kind::DeliveryQueued,
            d.lead,
            d.at,
            Detail {
                delivery_id: Some(d.id.clone()),
                destination: Some(d.destination.clone()),
                event_type: Some(d.event_type.clone()),
                ..Detail::default()
            },
        ),
        Change::Erase(Write::Tombstone(lead)) => {
            entry(Kind::LeadErased, lead.id, lead.erased_at.unwrap_or(lead.updated_at), Detail::default())
        }
        _ => Vec::new(),
    }
}

/// A delivery's outcome, for the feed: `delivered` and `dead` are final; a retry, a hold
/// for missing data or consent is not a change a reader acts on.
pub fn delivery_outcome(
    status: &str,
    delivery: &str,
    destination: &str,
    lead: LeadId,
    at: OffsetDateTime,
) -> Option<FeedEntry> {
    let kind = match status {
        "delivered" => Kind::DeliveryDelivered,
        "dead" => Kind::DeliveryDead,
        _ => return None,
    };
    let detail = Detail {
        delivery_id: Some(delivery.to_owned()),
        destination: Some(destination.to_owned()),
        ..Detail::default()
    };
    Some(FeedEntry { kind, lead, at, detail })
}

/// A reader's place in the feed: per database (one, or one per region in the order the
/// configuration lists them), the number of the last change read. `0` is before the
/// first; numbers grow in commit order and are never reused. Written `12`, or `12.40`
/// with regions; a part missing at the end is `0` (a region added later is read from its
/// start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor(pub Vec<u64>);

impl Cursor {
    pub fn parse(text: &str) -> Option<Cursor> {
        let parts: Option<Vec<u64>> = text.split('.').map(|p| p.parse::<u64>().ok()).collect();
        parts.filter(|p| !p.is_empty() && p.len() <= 64).map(Cursor)
    }

    /// The position in database `i`.
    pub fn at(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// This cursor with database `i` at `position`.
    pub fn with(&self, i: usize, position: u64) -> Cursor {
        let mut parts = self.0.clone();
        if parts.len() <= i {
            parts.resize(i + 1, 0);
        }
        parts[i] = position;
        Cursor(parts)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("0");
        }
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// The page one database answers: `rows` read after `after` (in order, each with its
/// number), `head` its latest change's number. A cursor ahead of the head, or naming more
/// databases than one, was never given out: the error says so.
pub fn page(after: &Cursor, rows: Vec<(u64, FeedChange)>, head: u64) -> Result<Page, String> {
    let position = after.at(0);
    if position > head || after.0.iter().skip(1).any(|&p| p != 0) {
        return Err(format!("cursor {after} is not one this store gave out: its latest change is {head}"));
    }
    let next = Cursor(vec![rows.last().map_or(position, |(last, _)| *last)]);
    Ok(Page { changes: rows.into_iter().map(|(_, change)| change).collect(), next })
}

/// One page out of several databases' pages (one per region, each read after its place
/// in `after`, each change's `cursor` its number there): each database's changes keep
/// their commit order; across databases, which share no order, the earliest `at` goes
/// first. Every change gets the whole cursor it leaves the reader at.
pub fn interleave(after: &Cursor, pages: Vec<Vec<FeedChange>>, limit: usize) -> Result<Page, String> {
    let mut pages: Vec<std::collections::VecDeque<FeedChange>> = pages.into_iter().map(Into::into).collect();
    let mut next = Cursor((0..pages.len()).map(|r| after.at(r)).collect());
    let mut changes = Vec::with_capacity(limit.min(1024));
    while changes.len() < limit {
        let earliest = pages.iter().enumerate().filter_map(|(r, page)| page.front().map(|c| (c.at, r))).min();
        let Some((_, r)) = earliest else { break };
        let Some(mut change) = pages[r].pop_front() else { break };
        let position = change.cursor.parse::<u64>().map_err(|_| format!("change cursor {:?}", change.cursor))?;
        next = next.with(r, position);
        change.cursor = next.to_string();
        changes.push(change);
    }
    Ok(Page { changes, next })
}

/// A page of the feed and the cursor to read on from (the last change's, or the one
/// given when nothing followed it).
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub changes: Vec<FeedChange>,
    pub next: Cursor,
}

/// One change as a reader gets it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedChange {
    /// Pass it as `after` to read what follows.
    pub cursor: String,
    /// `lead.created`, `lead.updated`, `lead.merged`, `lead.unmerged`, `lead.erased`,
    /// `stage.changed`, `event.recorded`, `event.attached`, `delivery.queued`,
    /// `delivery.delivered` or `delivery.dead`.
    #[serde(rename = "type")]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub lead_id: LeadId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    #[serde(flatten)]
    pub detail: Detail,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Delivery;
    use crate::testing::lead;

    #[test]
    fn cursors_read_back_as_written() {
        for text in ["0", "17", "12.40", "0.0.3"] {
            assert_eq!(Cursor::parse(text).map(|c| c.to_string()).as_deref(), Some(text));
        }
        for bad in ["", "-1", "a", "1..2", "1.", " 1", "99999999999999999999"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
        let c = Cursor::parse("5").unwrap();
        assert_eq!((c.at(0), c.at(1)), (5, 0));
        assert_eq!(c.with(2, 9).to_string(), "5.0.9");
    }

    #[test]
    fn a_page_moves_the_cursor_to_its_last_change_and_refuses_cursors_never_given() {
        let l = lead("ada@example.com");
        let change = |n: u64| FeedChange {
            cursor: n.to_string(),
            kind: Kind::LeadCreated.as_str().into(),
            lead_id: l.id,
            at: l.created_at,
            detail: Detail::default(),
        };
        let after = Cursor(vec![3]);
        assert_eq!(page(&after, vec![(4, change(4)), (5, change(5))], 5).unwrap().next, Cursor(vec![5]));
        assert_eq!(page(&after, Vec::new(), 3).unwrap().next, after, "at the head the cursor stays");
        assert!(page(&Cursor(vec![6]), Vec::new(), 5).is_err(), "ahead of the head");
        assert!(page(&Cursor(vec![0, 2]), Vec::new(), 5).is_err(), "a second database");
        assert!(page(&Cursor(vec![3, 0]), Vec::new(), 5).is_ok());
    }

    #[test]
    fn pages_of_several_databases_interleave_by_time_each_in_its_own_order() {
        let l = lead("ada@example.com");
        let change = |n: u64, secs: i64| FeedChange {
            cursor: n.to_string(),
            kind: Kind::LeadCreated.as_str().into(),
            lead_id: l.id,
            at: l.created_at + time::Duration::seconds(secs),
            detail: Detail::default(),
        };
        let eu = vec![change(4, 1), change(5, 3)];
        let us = vec![change(8, 2)];
        let page = interleave(&Cursor(vec![3, 7]), vec![eu, us], 10).unwrap();
        let cursors: Vec<&str> = page.changes.iter().map(|c| c.cursor.as_str()).collect();
        assert_eq!(cursors, ["4.7", "4.8", "5.8"]);
        assert_eq!(page.next, Cursor(vec![5, 8]));
        let first = interleave(&Cursor(vec![3, 7]), vec![vec![change(4, 1)], vec![change(8, 2)]], 1).unwrap();
        assert_eq!(first.next, Cursor(vec![4, 7]), "a limit leaves the other database where it was");
    }

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("lead.deleted"), None);
    }

    #[test]
    fn a_new_lead_is_created_and_a_lead_read_at_a_version_is_updated() {
        let mut l = lead("ada@example.com");
        l.version = 3;
        let created = Change::Lead { lead: Box::new(l.clone()), expected: None, index: Default::default() };
        let updated = Change::Lead { lead: Box::new(l.clone()), expected: Some(2), index: Default::default() };
        let feed = entries(&[created, updated]);
        assert_eq!(feed.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::LeadCreated, Kind::LeadUpdated]);
        assert!(feed.iter().all(|e| e.lead == l.id && e.detail.version == Some(3)));
    }

    #[test]
    fn changes_readers_do_not_follow_make_no_entries() {
        let l = lead("ada@example.com");
        let changes = [Change::Resolve { lead: l.id }, Change::Index { lead: l.id, index: Default::default() }];
        assert!(entries(&changes).is_empty());
    }

    #[test]
    fn a_delivery_is_queued_then_final_once() {
        let l = lead("ada@example.com");
        let d = Delivery {
            id: "d1".into(),
            destination: "crm".into(),
            lead: l.id,
            event_type: "lead.created".into(),
            payload: "{}".into(),
            at: l.created_at,
        };
        let queued = entries(&[Change::Delivery(d)]);
        assert_eq!(queued[0].kind, Kind::DeliveryQueued);
        assert_eq!(queued[0].detail.destination.as_deref(), Some("crm"));
        assert_eq!(
            delivery_outcome("delivered", "d1", "crm", l.id, l.created_at).map(|e| e.kind),
            Some(Kind::DeliveryDelivered)
        );
        assert_eq!(delivery_outcome("dead", "d1", "crm", l.id, l.created_at).map(|e| e.kind), Some(Kind::DeliveryDead));
        assert_eq!(delivery_outcome("pending", "d1", "crm", l.id, l.created_at), None);
    }
}
