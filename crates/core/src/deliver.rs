//! deliver: which lead changes become outbox deliveries, and for which destinations.
//!
//! Pure: the store calls [`Subscriptions::deliveries`] inside the transaction that writes
//! a lead's history, so every delivery row commits (or rolls back) with the change that
//! caused it. Sending is the delivery crate's job; this module only decides what to send.

pub(crate) mod config;
pub mod crm;
mod fields;

pub use config::{DeliverySettings, is_api_version, is_secure_or_local, plain_http_refused};

use crate::pipeline::LeadEvent;
use std::collections::BTreeMap;
use std::time::Duration;

/// The lead events a destination can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Created,
    Merged,
    /// The lead reached the handoff stage.
    Mql,
    Assigned,
    StageChanged,
    /// The person was erased; the delivery carries ids only, for the destination to erase
    /// its own copy.
    Erased,
    /// The person's consent changed (a purpose granted, denied or withdrawn): sent even to
    /// a destination whose required consent is now missing, so it can stop using it.
    ConsentChanged,
    /// A lead that has an owner came back: a new submission merged into it, or behavioural
    /// events raised its score. Not a history entry of its own: the follow-ups of those
    /// changes send it (see [`crate::changes::returned`]), so the owner hears of it.
    Returned,
}

impl EventType {
    pub const ALL: [Self; 8] = [
        Self::Created,
        Self::Merged,
        Self::Mql,
        Self::Assigned,
        Self::StageChanged,
        Self::Erased,
        Self::ConsentChanged,
        Self::Returned,
    ];

    /// The name used in the configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Merged => "merged",
            Self::Mql => "mql",
            Self::Assigned => "assigned",
            Self::StageChanged => "stage_changed",
            Self::Erased => "erased",
            Self::ConsentChanged => "consent_changed",
            Self::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The name sent to destinations (the webhook `type`), e.g. `lead.created`.
    pub fn wire_name(&self) -> String {
        format!("lead.{}", self.as_str())
    }

    /// The event types a history entry stands for. Reaching MQL is also a stage change,
    /// so a destination subscribed to both gets both, in that order.
    pub fn of(event: &LeadEvent) -> Vec<Self> {
        match event {
            LeadEvent::Created { .. } => vec![Self::Created],
            LeadEvent::Merged { consent_updated: true, .. } => vec![Self::Merged, Self::ConsentChanged],
            LeadEvent::Merged { .. } | LeadEvent::Absorbed { .. } => vec![Self::Merged],
            LeadEvent::ConsentChanged { .. } => vec![Self::ConsentChanged],
            LeadEvent::StageChanged { handoff: true, .. } => vec![Self::Mql, Self::StageChanged],
            LeadEvent::StageChanged { .. } => vec![Self::StageChanged],
            LeadEvent::Assigned { .. } => vec![Self::Assigned],
            LeadEvent::Erased { .. } => vec![Self::Erased],
            _ => Vec::new(),
        }
    }
}

/// One configured destination, as the configuration file declares it. Provider-specific
/// keys stay strings here; the server turns them into a delivery client at start-up,
/// reading the `*_env` variables then.
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationConfig {
    pub name: String,
    /// `webhook`, `hubspot`, `salesforce` or `slack`.
    pub kind: String,
    pub events: Vec<EventType>,
    pub required_fields: Vec<String>,
    /// The consent purposes a lead must have granted before this destination receives it
    /// (`consent = ["sales_contact"]`); a delivery without them is held as
    /// `blocked_consent`.
    pub consent: Vec<String>,
    /// HubSpot and Salesforce: purpose → the CRM property its status is written to.
    pub consent_fields: BTreeMap<String, String>,
    /// Base delay before each try, the first included; `None` keeps the default.
    pub retry: Option<Vec<Duration>>,
    /// Sustained requests per second and burst.
    pub rate_limit: Option<(f64, u32)>,
    /// Consecutive failures that open the circuit, and how long it stays open.
    pub circuit_breaker: Option<(u32, Duration)>,
    /// The provider's own keys (`url`, `base_url`, `secret_env`, …), as written.
    pub settings: BTreeMap<String, String>,
    /// `allow_http = true`: the destination's URLs may be plain `http://` to a host other
    /// than loopback. Off by default: leads and credentials go over TLS.
    pub allow_http: bool,
    /// `[destinations.feedback]`: how a HubSpot or Salesforce destination reports back
    /// what became of the leads (`POST /v1/feedback/{name}`); `None`: it does not.
    pub feedback: Option<crate::feedback::CrmMapping>,
    /// `[destinations.fields]`, HubSpot and Salesforce: leadflow path (`score`,
    /// `attribution.latest.utm_campaign`, `custom.budget`) → CRM property, over the
    /// built-in table ([`crm::default_fields`]).
    pub fields: BTreeMap<String, String>,
    /// `[destinations.values.FIELD]`, HubSpot and Salesforce: per CRM field, leadflow
    /// value → CRM picklist value; a value not listed passes through unchanged.
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// `[destinations.owners]`: rep → the destination's user id (HubSpot owner id,
    /// Salesforce User id, Slack member id). A rep not listed is not sent as the owner.
    pub owners: BTreeMap<String, String>,
}

impl DestinationConfig {
    /// A destination of `kind` with every optional setting at its default.
    pub fn new(name: impl Into<String>, kind: impl Into<String>, events: Vec<EventType>) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            events,
            required_fields: Vec::new(),
            consent: Vec::new(),
            consent_fields: BTreeMap::new(),
            retry: None,
            rate_limit: None,
            circuit_breaker: None,
            settings: BTreeMap::new(),
            allow_http: false,
            feedback: None,
            fields: BTreeMap::new(),
            values: BTreeMap::new(),
            owners: BTreeMap::new(),
        }
    }
}

impl DestinationConfig {
    /// The rep `[destinations.owners]` maps to `user`, the destination's own user id (an
    /// owner the CRM reports back): the first in the file's order when several share it.
    pub fn rep_for(&self, user: &str) -> Option<&str> {
        self.owners.iter().find(|(_, id)| id.as_str() == user).map(|(rep, _)| rep.as_str())
    }
}

/// Which destination wants which event types: the part of the destinations the store
/// needs. Empty by default: no destinations, no outbox rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions {
    by_destination: Vec<(String, Vec<EventType>)>,
}

impl Subscriptions {
    pub fn new(destinations: &[DestinationConfig]) -> Self {
        Self { by_destination: destinations.iter().map(|d| (d.name.clone(), d.events.clone())).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.by_destination.is_empty()
    }

    /// The destinations subscribed to `t`, in the configuration's order.
    pub fn subscribers(&self, t: EventType) -> Vec<&str> {
        self.by_destination.iter().filter(|(_, wanted)| wanted.contains(&t)).map(|(name, _)| name.as_str()).collect()
    }

    /// (destination, event type) pairs a history entry becomes, in a stable order. A
    /// stage change the CRM's own feedback made is not sent back to that CRM: it would
    /// overwrite the status the rep just set with leadflow's name for it.
    pub fn deliveries<'a>(&'a self, event: &LeadEvent) -> Vec<(&'a str, EventType)> {
        let types = EventType::of(event);
        let echo = match event {
            LeadEvent::StageChanged { actor: Some(actor), .. } => actor.strip_prefix("feedback:"),
            _ => None,
        };
        let mut out = Vec::new();
        for t in types {
            for (name, wanted) in &self.by_destination {
                if wanted.contains(&t) && echo != Some(name.as_str()) {
                    out.push((name.as_str(), t));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(name: &str, events: &[EventType]) -> DestinationConfig {
        DestinationConfig::new(name, "webhook", events.to_vec())
    }

    fn stage_change(handoff: bool) -> LeadEvent {
        LeadEvent::StageChanged {
            from: "new".into(),
            to: "mql".into(),
            actor: None,
            reason: None,
            automatic: true,
            handoff,
        }
    }

    #[test]
    fn reaching_mql_is_both_an_mql_and_a_stage_change() {
        let subs = Subscriptions::new(&[
            destination("crm", &[EventType::Mql]),
            destination("hook", &[EventType::StageChanged, EventType::Mql]),
        ]);
        assert_eq!(
            subs.deliveries(&stage_change(true)),
            vec![("crm", EventType::Mql), ("hook", EventType::Mql), ("hook", EventType::StageChanged)]
        );
        assert_eq!(subs.deliveries(&stage_change(false)), vec![("hook", EventType::StageChanged)]);
    }

    #[test]
    fn a_crms_own_feedback_is_not_echoed_back_to_it() {
        let subs = Subscriptions::new(&[
            destination("hubspot", &[EventType::StageChanged]),
            destination("hook", &[EventType::StageChanged]),
        ]);
        let from_crm = LeadEvent::StageChanged {
            from: "mql".into(),
            to: "sal".into(),
            actor: Some("feedback:hubspot".into()),
            reason: None,
            automatic: false,
            handoff: false,
        };
        assert_eq!(subs.deliveries(&from_crm), vec![("hook", EventType::StageChanged)]);
        assert_eq!(subs.deliveries(&stage_change(false)).len(), 2);
    }

    #[test]
    fn events_nobody_subscribed_to_make_no_deliveries() {
        let subs = Subscriptions::new(&[destination("crm", &[EventType::Created])]);
        assert!(subs.deliveries(&stage_change(true)).is_empty());
        assert!(Subscriptions::default().deliveries(&stage_change(true)).is_empty());
    }

    #[test]
    fn an_erasure_goes_to_the_destinations_subscribed_to_erased() {
        let subs = Subscriptions::new(&[
            destination("crm", &[EventType::Created, EventType::Erased]),
            destination("hook", &[EventType::Created]),
        ]);
        let erased =
            LeadEvent::Erased { actor: None, reason: None, merged: vec![], crm_records: vec![], delivered_to: vec![] };
        assert_eq!(EventType::of(&erased), vec![EventType::Erased]);
        assert_eq!(subs.deliveries(&erased), vec![("crm", EventType::Erased)]);
        assert_eq!(EventType::Erased.wire_name(), "lead.erased");
    }

    #[test]
    fn a_crm_user_reads_back_as_its_rep() {
        let mut crm = destination("crm", &[]);
        crm.owners.insert("ana@example.com".into(), "71234567".into());
        assert_eq!(crm.rep_for("71234567"), Some("ana@example.com"));
        assert_eq!(crm.rep_for("99"), None);
    }

    #[test]
    fn event_type_names_read_back() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::Mql.wire_name(), "lead.mql");
    }
}
