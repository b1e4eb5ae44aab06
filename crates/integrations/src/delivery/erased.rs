//! `lead.erased`: the person behind a lead asked to be forgotten, and each destination is
//! asked to erase its own copy. The payload carries ids only (see leadflow's
//! `domain::erase::payload`): the lead's id, the ids merged into it, the CRM records known
//! for them and the destinations the person's data reached.
//!
//! A webhook gets the event as it is; Slack gets a line naming the lead id and nothing
//! about the person; HubSpot and Salesforce delete their records through their documented
//! delete endpoints. A CRM with no record to delete is not called: if the lead never
//! reached it, the delivery is done; if it did but no record id is known, it is a dead
//! letter, so a person deletes the record by hand rather than nobody at all.

use crate::delivery::attempt::{Delivery, Outcome};
use serde_json::Value;

/// The event type, as the outbox writes it.
pub const EVENT_TYPE: &str = "lead.erased";

/// What one destination is asked to erase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Erasure {
    /// The lead, then every lead merged into it: a CRM keyed by leadflow's ids (a
    /// Salesforce external ID field) may hold a record for each.
    pub lead_ids: Vec<String>,
    /// The records this destination made, by its own ids.
    pub crm_ids: Vec<String>,
    /// The person's data reached this destination (or may have).
    pub delivered_here: bool,
}

impl Erasure {
    /// The erasure a delivery asks for; `None` for any other event.
    pub(crate) fn of(delivery: &Delivery) -> Option<Self> {
        if delivery.event_type != EVENT_TYPE {
            return None;
        }
        let p = &delivery.payload;
        let texts = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
        };
        let mut lead_ids = vec![p.get("id").and_then(Value::as_str).unwrap_or(&delivery.lead_id).to_owned()];
        lead_ids.extend(texts(p.get("merged_ids")));
        let crm_ids = p
            .get("crm_records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("destination").and_then(Value::as_str) == Some(delivery.destination.as_str()))
            .filter_map(|r| r.get("crm_id").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let delivered_here = texts(p.get("delivered_to")).contains(&delivery.destination);
        Some(Self { lead_ids, crm_ids, delivered_here })
    }

    /// The outcome when there is no record to delete at `provider`.
    pub(crate) fn nothing_to_delete(&self, provider: &str) -> Outcome {
        if self.delivered_here {
            Outcome::DeadLetter {
                status: None,
                response_excerpt: None,
                reason: format!(
                    "the lead reached {provider} but no record id of it is known: delete the record there by hand"
                ),
            }
        } else {
            Outcome::Skipped { reason: format!("the lead never reached {provider}: nothing to delete") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::OffsetDateTime;

    fn delivery(destination: &str, event_type: &str) -> Delivery {
        Delivery {
            id: "dlv_1".into(),
            destination: destination.into(),
            event_type: event_type.into(),
            lead_id: "L1".into(),
            payload: json!({
                "id": "L1", "merged_ids": ["L0"],
                "crm_records": [{"destination": "hubspot", "crm_id": "51"}, {"destination": "sf", "crm_id": "00Q1"}],
                "delivered_to": ["hubspot"],
            }),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            attempt: 0,
        }
    }

    #[test]
    fn each_destination_gets_its_own_records() {
        let e = Erasure::of(&delivery("hubspot", EVENT_TYPE)).unwrap();
        assert_eq!(
            e,
            Erasure { lead_ids: vec!["L1".into(), "L0".into()], crm_ids: vec!["51".into()], delivered_here: true }
        );
        let sf = Erasure::of(&delivery("sf", EVENT_TYPE)).unwrap();
        assert_eq!((sf.crm_ids, sf.delivered_here), (vec!["00Q1".to_owned()], false));
        assert!(Erasure::of(&delivery("hubspot", "lead.created")).is_none());
    }

    #[test]
    fn nothing_to_delete_is_done_unless_the_lead_got_there() {
        let mut e = Erasure::of(&delivery("other", EVENT_TYPE)).unwrap();
        assert!(matches!(e.nothing_to_delete("HubSpot"), Outcome::Skipped { .. }));
        e.delivered_here = true;
        assert!(
            matches!(e.nothing_to_delete("HubSpot"), Outcome::DeadLetter { reason, .. } if reason.contains("by hand"))
        );
    }
}
