//! What scoring reads: a lead's attributes through [`LeadView`] and its behavioural
//! events as [`EventView`]s. Both are views, so the caller decides how a stored lead is
//! flattened; this crate never owns or fetches one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// The lead's attributes by name: standard fields (`industry`, `employee_count`),
/// derived facts (`free_mail`, `email_domain`, `seniority`) and custom fields as
/// `custom.NAME`. An absent attribute is `None`; `null` counts as absent too.
pub trait LeadView {
    fn field(&self, name: &str) -> Option<&Value>;
}

/// A flat map keyed by attribute name; a dotted name (`custom.plan`) that is not a key
/// of its own is looked up in the nested object (`{"custom": {"plan": …}}`).
impl LeadView for Map<String, Value> {
    fn field(&self, name: &str) -> Option<&Value> {
        if let Some(v) = self.get(name) {
            return Some(v);
        }
        let (head, rest) = name.split_once('.')?;
        match self.get(head)? {
            Value::Object(inner) => inner.field(rest),
            _ => None,
        }
    }
}

impl LeadView for HashMap<String, Value> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl LeadView for BTreeMap<String, Value> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl<L: LeadView + ?Sized> LeadView for &L {
    fn field(&self, name: &str) -> Option<&Value> {
        (**self).field(name)
    }
}

/// One behavioural event of the lead: a page view, a form submission, a webinar
/// attended. `kind` is the event type rules name in `event = …`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Anything else the event carries, readable by a rule's `where` condition.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// The standard lead fields of the contract, in contract order.
pub use crate::mapping::STANDARD_FIELDS;

/// The facts derived from a lead's fields (`crate::lead::Derived`).
pub const DERIVED_FACTS: &[&str] = &[
    "email_domain",
    "free_mail",
    "disposable_email",
    "website_domain",
    "company_domain",
    "company_key",
    "seniority",
    "department",
    "phone_extension",
];

/// Whether `name` names something a lead can have: a standard field, a derived fact, an
/// attendance fact (`events_attended`, …) or a custom field (`custom.NAME`).
pub fn is_lead_attribute(name: &str) -> bool {
    STANDARD_FIELDS.contains(&name)
        || DERIVED_FACTS.contains(&name)
        || crate::engagement::attendance::FACTS.contains(&name)
        || name.strip_prefix("custom.").is_some_and(|rest| !rest.is_empty())
}
