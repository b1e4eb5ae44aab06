//! consent: what a person agreed to, purpose by purpose, and the ledger that proves it.
//!
//! Every choice is kept as an [`Entry`] of an append-only ledger: the purpose, the status,
//! when it was made, where it was captured, under which policy version and lawful basis,
//! and the submission or operator it came from. A lead carries the current state per
//! purpose ([`State`], in `consent.purposes`), derived from its entries:
//!
//! - within one person's records, the most recent choice for a purpose wins (a
//!   withdrawal after a grant withdraws; a grant after a withdrawal grants again); a
//!   choice dated earlier than the current one goes into the ledger only;
//! - a submission changes only the purposes it speaks of, never another;
//! - when two stored leads merge, each purpose takes the least permissive of their states:
//!   a refusal on either record is not overridden by a grant on the other.
//!
//! Today's `consent` object (`granted`, `at`, `source`, `policy_version`, `channels`) is
//! still taken: `granted` speaks for the configured default purposes, and each channel
//! for the purpose it names ([`purpose_of_channel`]).

use crate::ids::SubmissionId;
use crate::lead::Consent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The purposes a fresh installation knows; `[privacy] purposes` replaces them.
pub const DEFAULT_PURPOSES: [&str; 4] = ["marketing_email", "sales_contact", "phone", "profiling"];

/// `[privacy]`: the consent purposes submissions and destinations may name, and the
/// environment variable holding the suppression key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacyConfig {
    pub purposes: Vec<String>,
    pub suppression_key_env: String,
}

/// Where the suppression key is read from unless `[privacy] suppression_key_env` says.
pub const DEFAULT_SUPPRESSION_KEY_ENV: &str = "LEADFLOW_SUPPRESSION_KEY";

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            purposes: DEFAULT_PURPOSES.map(str::to_owned).to_vec(),
            suppression_key_env: DEFAULT_SUPPRESSION_KEY_ENV.to_owned(),
        }
    }
}

/// Reads `[privacy]` over the defaults.
pub(crate) fn read_config(p: &mut crate::config::read::Problems, t: &toml_edit::Table) -> PrivacyConfig {
    use crate::config::read::span;
    let mut out = PrivacyConfig::default();
    for (key, item) in t.iter() {
        let path = format!("privacy.{key}");
        match key {
            "purposes" => {
                let list: Option<Vec<&str>> = item.as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect());
                match list {
                    Some(list)
                        if !list.is_empty()
                            && item.as_array().is_some_and(|a| a.len() == list.len())
                            && list.iter().all(|p| valid_purpose(p)) =>
                    {
                        out.purposes = list.iter().map(|p| (*p).to_owned()).collect();
                        out.purposes.sort();
                        out.purposes.dedup();
                    }
                    _ => p.push(span(item), &path, "must be a non-empty list of purpose names (a-z, 0-9, _; up to 64)"),
                }
            }
            "suppression_key_env" => {
                if let Some(name) = p.string(item, &path) {
                    out.suppression_key_env = name.to_owned();
                }
            }
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    out
}

fn valid_purpose(p: &str) -> bool {
    !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Granted, denied (never agreed) or withdrawn (agreed, then took it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ConsentStatus))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Granted,
    Denied,
    Withdrawn,
}

impl Status {
    pub const ALL: [Self; 3] = [Self::Granted, Self::Denied, Self::Withdrawn];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied => "denied",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn permits(&self) -> bool {
        *self == Self::Granted
    }
}

/// A purpose's state: the choice that decides it now, with its particulars.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ConsentState))]
pub struct State {
    pub status: Status,
    /// When the person chose. Undated choices take the time they were received.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub at: Option<OffsetDateTime>,
    /// The communication channel the choice is about (`email`, `phone`, `sms`), if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// `consent`, `legitimate_interest`, `contract`, ... as the organisation records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lawful_basis: Option<String>,
    /// Double opt-in: when the person confirmed (clicked the link).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub confirmed_at: Option<OffsetDateTime>,
    /// The page the consent box was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// Where the choice was captured: a source name, or `operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The API key (`key:ID`) that sent the submission carrying the choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl State {
    pub fn new(status: Status) -> Self {
        Self {
            status,
            at: None,
            channel: None,
            policy_version: None,
            lawful_basis: None,
            confirmed_at: None,
            page_url: None,
            source: None,
            api_key: None,
        }
    }

    /// This choice replaces `current`: it is dated no earlier (an undated one is as new as
    /// anything).
    fn supersedes(&self, current: &State) -> bool {
        match (self.at, current.at) {
            (Some(new), Some(old)) => new >= old,
            _ => true,
        }
    }
}

/// One ledger entry: a choice about one purpose, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ConsentLedgerEntry))]
pub struct Entry {
    pub purpose: String,
    #[serde(flatten)]
    pub state: State,
    /// How it reached leadflow: the source's channel kind (`web_form`, `api`, `import`,
    /// `ad_platform`, ...) or `operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_via: Option<String>,
    /// The submission it came with; `None` for an operator's change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub submission_id: Option<SubmissionId>,
    /// The API key (by id) that recorded it, for operators' changes and API captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: OffsetDateTime,
}

/// The purpose a legacy per-channel opt-in speaks for: a channel named like a purpose is
/// that purpose; `email` is email marketing; `phone`, `call`, `sms` and `text` are phone.
pub fn purpose_of_channel<'p>(channel: &str, purposes: &'p [String]) -> Option<&'p str> {
    let wanted = match channel.trim().to_ascii_lowercase().as_str() {
        "email" | "e-mail" | "mail" | "newsletter" => "marketing_email".to_owned(),
        "phone" | "call" | "calls" | "sms" | "text" | "whatsapp" => "phone".to_owned(),
        other => other.to_owned(),
    };
    purposes.iter().find(|p| **p == wanted).map(String::as_str)
}

/// Fills a submission's undated choices with the time it was received, and where it was
/// captured, so each state on the lead says when and where it was decided. The page is
/// kept without its query string and fragment: they carry emails and click ids, and the
/// proof needs the page, not the visit.
pub fn date(consent: &mut Consent, received_at: OffsetDateTime, source: &str, page_url: Option<&str>) {
    let page_url = page_url.map(|u| u.split(['?', '#']).next().unwrap_or(u));
    for state in consent.purposes.values_mut() {
        state.at.get_or_insert(received_at);
        if state.source.is_none() {
            state.source = Some(source.to_owned());
        }
        if state.page_url.is_none() {
            state.page_url = page_url.map(str::to_owned);
        }
    }
}

/// The ledger entries a submission's consent makes.
pub fn entries(
    consent: &Consent,
    submission: SubmissionId,
    captured_via: Option<&str>,
    now: OffsetDateTime,
) -> Vec<Entry> {
    consent
        .purposes
        .iter()
        .map(|(purpose, state)| Entry {
            purpose: purpose.clone(),
            state: state.clone(),
            captured_via: captured_via.map(str::to_owned),
            submission_id: Some(submission),
            actor: None,
            recorded_at: now,
        })
        .collect()
}

/// A newer choice per purpose replaces the lead's; purposes the choice does not name keep
/// theirs. Says whether anything changed.
pub fn apply(current: &mut Consent, purpose: &str, state: &State) -> bool {
    let replace = current.purposes.get(purpose).is_none_or(|old| state.supersedes(old) && old != state);
    if replace {
        current.purposes.insert(purpose.to_owned(), state.clone());
        current.granted = granted(&current.purposes);
    }
    replace
}

/// A submission's consent merged into the lead's: the legacy fields follow the most recent
/// object, each purpose the most recent choice. Says whether anything changed.
pub fn merge_submission(lead: &mut Option<Consent>, new: Consent) -> bool {
    let Some(current) = lead else {
        *lead = Some(new);
        return true;
    };
    let mut changed = false;
    let newer_object = match (current.at, new.at) {
        (Some(old), Some(at)) => at >= old,
        // An undated choice arriving now is the most recent one.
        (_, None) => true,
        (None, Some(_)) => true,
    };
    if newer_object && !new.legacy_eq(current) {
        current.at = new.at;
        current.source.clone_from(&new.source);
        current.policy_version.clone_from(&new.policy_version);
        current.channels.clone_from(&new.channels);
        changed = true;
    }
    if current.purposes.is_empty() && new.purposes.is_empty() && newer_object && current.granted != new.granted {
        current.granted = new.granted;
        changed = true;
    }
    for (purpose, state) in &new.purposes {
        changed |= apply(current, purpose, state);
    }
    if !current.purposes.is_empty() {
        current.granted = granted(&current.purposes);
    }
    changed
}

/// Two stored leads' consent combined when one absorbs the other: per purpose the least
/// permissive state (between two alike, the more recent). Says whether the survivor's
/// changed.
pub fn combine(survivor: &mut Option<Consent>, absorbed: &Consent) -> bool {
    let Some(current) = survivor else {
        *survivor = Some(absorbed.clone());
        return true;
    };
    let mut changed = false;
    if matches!((current.at, absorbed.at), (Some(a), Some(b)) if b > a)
        || (current.at.is_none() && absorbed.at.is_some())
    {
        current.at = absorbed.at;
        current.source.clone_from(&absorbed.source);
        current.policy_version.clone_from(&absorbed.policy_version);
        for (channel, opt_in) in &absorbed.channels {
            let entry = current.channels.entry(channel.clone()).or_insert(*opt_in);
            *entry &= *opt_in;
        }
        changed = true;
    }
    for (purpose, theirs) in &absorbed.purposes {
        let take = match current.purposes.get(purpose) {
            None => true,
            Some(ours) => match (ours.status.permits(), theirs.status.permits()) {
                (true, false) => true,
                (false, true) => false,
                _ => theirs.supersedes(ours) && theirs != ours,
            },
        };
        if take {
            current.purposes.insert(purpose.clone(), theirs.clone());
            changed = true;
        }
    }
    current.granted =
        if current.purposes.is_empty() { current.granted && absorbed.granted } else { granted(&current.purposes) };
    changed
}

/// The purposes of `required` the lead's consent does not grant now.
pub fn missing<'r>(consent: Option<&Consent>, required: &'r [String]) -> Vec<&'r str> {
    required
        .iter()
        .filter(|p| !consent.and_then(|c| c.purposes.get(p.as_str())).is_some_and(|s| s.status.permits()))
        .map(String::as_str)
        .collect()
}

/// Why a choice could not be recorded on a stored lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased(pub crate::LeadId);

/// An operator's (or a client's) choice recorded on a stored lead, as read (followed
/// through merges): the ledger entry, and when it is the most recent choice for its
/// purpose, the lead's new state with its history entry and follow-ups (a
/// `consent_changed` delivery to subscribed destinations; held deliveries go again). An
/// erased lead takes no consent: its person is suppressed.
pub fn record_stored(
    lead: &mut crate::Lead,
    purpose: &str,
    mut state: State,
    actor: Option<&str>,
    rules: &crate::pipeline::Rules,
    now: OffsetDateTime,
) -> Result<Vec<crate::changes::Change>, Erased> {
    if lead.erased_at.is_some() {
        return Err(Erased(lead.id));
    }
    state.at.get_or_insert(now);
    if state.source.is_none() {
        state.source = Some("operator".to_owned());
    }
    let entry = Entry {
        purpose: purpose.to_owned(),
        state: state.clone(),
        captured_via: Some("operator".to_owned()),
        submission_id: None,
        actor: actor.map(str::to_owned),
        recorded_at: now,
    };
    let changed = apply(lead.consent.get_or_insert_with(Consent::default), purpose, &state);
    let mut out = vec![crate::changes::Change::Consent { lead: lead.id, entries: vec![entry] }];
    if changed {
        lead.updated_at = now;
        let event = crate::pipeline::LeadEvent::ConsentChanged {
            purpose: purpose.to_owned(),
            status: state.status,
            actor: actor.map(str::to_owned),
        };
        out.extend(crate::changes::bumped(lead, vec![event], rules, now));
    }
    Ok(out)
}

fn granted(purposes: &BTreeMap<String, State>) -> bool {
    purposes.values().any(|s| s.status.permits())
}

impl Consent {
    /// The legacy object's particulars are the same (`granted` is derived from the
    /// purposes once there are any).
    fn legacy_eq(&self, other: &Consent) -> bool {
        self.at == other.at
            && self.source == other.source
            && self.policy_version == other.policy_version
            && self.channels == other.channels
    }
}

#[cfg(test)]
mod tests;
