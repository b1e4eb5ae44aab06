//! Destination configuration: where leads go, how each destination authenticates, which
//! lead fields it needs, and how hard it may be pushed (retry schedule, rate limit,
//! circuit breaker). Parsed once at start-up; [`crate::delivery::Client::new`] rejects anything
//! that would only fail later at delivery time.

use crate::delivery::schedule::RetrySchedule;
use leadflow_core::config::{ConfigError, parse_duration};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A destination the client refuses, keyed as the configuration writes it: destinations
/// are given in the file's order, and a value read from the environment is reported at
/// the `*_env` key naming its variable. [`ConfigError::locate`] then finds the line.
pub(crate) fn refusal(index: usize, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(format!("destinations[{index}].{key}"), message)
}

/// A credential. It is sent to the destination and nowhere else: `Debug` never prints it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One configured destination.
#[derive(Clone, Debug, Deserialize)]
pub struct Destination {
    /// Unique among destinations; deliveries name their destination by it.
    pub name: String,
    #[serde(flatten)]
    pub kind: DestinationKind,
    /// Lead fields (top-level names of the lead JSON, or dotted paths such as
    /// `custom.budget`) that must be set before this destination is called, on top of
    /// the ones the destination itself needs (see [`DestinationKind::implied_fields`]).
    #[serde(default)]
    pub required_fields: Vec<String>,
    /// Consent purposes the lead must have granted (`consent.purposes.<p>.status` is
    /// `granted` in the payload) before this destination receives it.
    #[serde(default)]
    pub consent: Vec<String>,
    /// HubSpot and Salesforce: the property each consent purpose's status is written to
    /// (`granted`, `denied` or `withdrawn`), e.g. `{"marketing_email": "marketing_consent__c"}`.
    #[serde(default)]
    pub consent_fields: std::collections::BTreeMap<String, String>,
    /// HubSpot and Salesforce: leadflow path → CRM property, over the built-in table
    /// (`{"score": "leadflow_score", "custom.budget": "budget__c"}`).
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// HubSpot and Salesforce: per CRM field, leadflow value → CRM value.
    #[serde(default)]
    pub values: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// rep → the destination's user id: HubSpot owner id (`hubspot_owner_id`),
    /// Salesforce User id (`OwnerId`), Slack member id (a mention).
    #[serde(default)]
    pub owners: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub retry: RetrySchedule,
    /// Defaults to [`DestinationKind::default_rate_limit`].
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub circuit_breaker: BreakerSettings,
    /// Plain `http://` to a host other than loopback is refused unless this is set
    /// (`allow_http = true` in the configuration).
    #[serde(default)]
    pub allow_http: bool,
}

impl Destination {
    /// The destination's field, value and owner maps, for the mapping.
    pub fn maps(&self) -> crate::delivery::map::Maps<'_> {
        crate::delivery::map::Maps { fields: &self.fields, values: &self.values, owners: &self.owners }
    }

    pub fn new(name: impl Into<String>, kind: DestinationKind) -> Self {
        Self {
            name: name.into(),
            kind,
            required_fields: Vec::new(),
            consent: Vec::new(),
            consent_fields: Default::default(),
            fields: Default::default(),
            values: Default::default(),
            owners: Default::default(),
            retry: RetrySchedule::default(),
            rate_limit: None,
            circuit_breaker: BreakerSettings::default(),
            allow_http: false,
        }
    }

    pub fn effective_rate_limit(&self) -> RateLimit {
        self.rate_limit.unwrap_or_else(|| self.kind.default_rate_limit())
    }

    /// Every field the lead must have for this destination, implied ones first.
    pub fn all_required_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self.kind.implied_fields().iter().map(|f| (*f).to_owned()).collect();
        for f in &self.required_fields {
            if !fields.contains(f) {
                fields.push(f.clone());
            }
        }
        fields
    }
}

/// What a destination is and how to reach it.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationKind {
    /// A generic endpoint signed per the Standard Webhooks specification.
    Webhook {
        url: String,
        /// `whsec_`-prefixed base64 (the prefix is optional).
        secret: Secret,
        /// During a rotation, the secret being replaced: each request carries both
        /// signatures, so a receiver still on the old secret verifies it.
        #[serde(default)]
        previous_secret: Option<Secret>,
    },
    /// HubSpot CRM v3 contacts, upserted by email with a private app token.
    #[serde(rename = "hubspot")]
    HubSpot {
        #[serde(default = "default_hubspot_base_url")]
        base_url: String,
        token: Secret,
        /// Sent as `hs_lead_status` when set (for example `NEW`).
        #[serde(default)]
        lead_status: Option<String>,
    },
    /// Salesforce Lead sObject over REST, with an OAuth 2.0 token refreshed on demand.
    Salesforce {
        /// The instance URL, e.g. `https://MyDomain.my.salesforce.com`.
        base_url: String,
        /// e.g. `https://login.salesforce.com/services/oauth2/token`.
        token_url: String,
        client_id: String,
        client_secret: Secret,
        /// With it the refresh-token grant is used, without it client credentials.
        #[serde(default)]
        refresh_token: Option<Secret>,
        /// e.g. `62.0` (a leading `v` is accepted).
        api_version: String,
        /// An external ID field on Lead holding leadflow's lead id. With it every
        /// delivery is an idempotent upsert (PATCH); without it a create (POST), which a
        /// retry after a lost response can duplicate.
        #[serde(default)]
        external_id_field: Option<String>,
        /// `LeadSource` when set; otherwise the lead's original source.
        #[serde(default)]
        lead_source: Option<String>,
    },
    /// A Slack-compatible incoming webhook notifying the lead's owner. The URL carries
    /// its own credential, hence a [`Secret`].
    Slack { url: Secret },
}

fn default_hubspot_base_url() -> String {
    "https://api.hubapi.com".to_owned()
}

impl DestinationKind {
    /// Lead fields the destination rejects a record without: HubSpot upserts by email;
    /// Salesforce requires `LastName` and `Company` on a Lead. They are checked before
    /// the call so the lead waits as "needs data" rather than failing at the CRM (no
    /// "[not provided]" placeholders are ever written into a CRM).
    pub fn implied_fields(&self) -> &'static [&'static str] {
        match self {
            Self::HubSpot { .. } => &["email"],
            Self::Salesforce { .. } => &["last_name", "company"],
            Self::Webhook { .. } | Self::Slack { .. } => &[],
        }
    }

    /// Conservative defaults under each provider's published limits: HubSpot allows
    /// about 100 requests per 10 s to a private app, Slack one message per second per
    /// incoming webhook.
    pub fn default_rate_limit(&self) -> RateLimit {
        match self {
            Self::HubSpot { .. } => RateLimit { per_second: 9.0, burst: 10 },
            Self::Slack { .. } => RateLimit { per_second: 1.0, burst: 1 },
            Self::Salesforce { .. } => RateLimit { per_second: 20.0, burst: 20 },
            Self::Webhook { .. } => RateLimit { per_second: 50.0, burst: 50 },
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::HubSpot { .. } => "hubspot",
            Self::Salesforce { .. } => "salesforce",
            Self::Slack { .. } => "slack",
        }
    }
}

/// A token bucket: `per_second` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// When a destination's circuit opens and how long it stays open.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures (timeouts, connection errors, 429, 5xx) that open it.
    pub failure_threshold: u32,
    /// How long it stays open before one probe is let through.
    #[serde(deserialize_with = "deserialize_duration")]
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failure_threshold: 5, cool_down: Duration::from_secs(30) }
    }
}

fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).ok_or_else(|| serde::de::Error::custom(invalid_duration(&s)))
}

pub(crate) fn invalid_duration(text: &str) -> String {
    format!("invalid duration {text:?}: expected a number followed by ms, s, m, h or d")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let kind = DestinationKind::HubSpot {
            base_url: default_hubspot_base_url(),
            token: Secret::new("pat-na1-very-secret"),
            lead_status: None,
        };
        assert!(!format!("{kind:?}").contains("very-secret"));
    }

    #[test]
    fn a_destination_reads_from_json_config() {
        let json = serde_json::json!({
            "name": "crm", "type": "salesforce",
            "base_url": "https://example.my.salesforce.com",
            "token_url": "https://login.salesforce.com/services/oauth2/token",
            "client_id": "id", "client_secret": "s", "refresh_token": "r",
            "api_version": "62.0", "external_id_field": "Leadflow_Id__c",
            "required_fields": ["phone"],
            "retry": ["0s", "1m"],
            "rate_limit": {"per_second": 2.0, "burst": 4},
            "circuit_breaker": {"failure_threshold": 3, "cool_down": "1m"}
        });
        let d: Destination = serde_json::from_value(json).unwrap();
        assert_eq!(d.all_required_fields(), ["last_name", "company", "phone"]);
        assert_eq!(d.retry.delays(), [Duration::ZERO, Duration::from_secs(60)]);
        assert_eq!(d.effective_rate_limit(), RateLimit { per_second: 2.0, burst: 4 });
        assert_eq!(d.circuit_breaker.cool_down, Duration::from_secs(60));
    }
}
