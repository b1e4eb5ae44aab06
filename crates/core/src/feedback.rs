//! feedback: what a CRM says became of a lead, turned into lifecycle moves.
//!
//! A CRM reports a status (accepted, working, qualified, converted, won, lost,
//! disqualified), possibly a reason and a new owner. [`FeedbackRules`] says which stage
//! each status means, [`CrmMapping`] how one destination's own values (HubSpot's
//! `hs_lead_status`, Salesforce's Lead `Status` picklist, …) read as statuses and
//! reasons. [`apply`] walks the lead to the target stage through the shortest chain of
//! manual transitions the lifecycle contract allows, every step checked by the contract
//! (so a disqualification without a reason from the picklist is refused, whatever the
//! CRM), and records an owner change.
//!
//! Pure: [`record`] decides, around [`apply`], what recording feedback writes (the lead,
//! its history and the feedback row); the store loads and applies. Failure modes are [`Rejection`]s: a reason the contract
//! requires is missing or not in the picklist, or no chain of allowed moves leads from
//! the lead's stage to the target.

use crate::email::Email;
use crate::engagement::{self, Engagement};
use crate::ids::{FeedbackId, LeadId};
use crate::lead::Lead;
use crate::pipeline::LeadEvent;
use crate::scoring::LifecycleContract;
use crate::scoring::lifecycle::Refusal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use time::OffsetDateTime;

pub(crate) mod config;
pub mod record;

/// The source name of feedback posted as leadflow's own JSON (not a CRM's webhook).
pub const GENERIC: &str = "generic";

/// What a CRM says became of a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    /// Sales accepted the handoff.
    Accepted,
    /// Sales is working the lead (contact attempted, connected).
    Working,
    /// Sales qualified the lead.
    Qualified,
    /// The lead became an opportunity (a deal, a converted Salesforce Lead).
    Converted,
    Won,
    /// The deal was lost; the lead goes back to nurturing (a reason is required).
    Lost,
    /// Not a fit: a reason from the contract's picklist is mandatory.
    Disqualified,
}

impl FeedbackStatus {
    pub const ALL: [Self; 7] =
        [Self::Accepted, Self::Working, Self::Qualified, Self::Converted, Self::Won, Self::Lost, Self::Disqualified];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Working => "working",
            Self::Qualified => "qualified",
            Self::Converted => "converted",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Disqualified => "disqualified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// The stage this status means when `[feedback.stages]` does not say.
    fn default_stage(self, contract: &LifecycleContract) -> Option<String> {
        let named = match self {
            Self::Accepted | Self::Working => "sal",
            Self::Qualified => "sql",
            Self::Converted => "opportunity",
            Self::Won => "customer",
            Self::Lost => "recycled",
            Self::Disqualified => return contract.disqualified_stage().map(str::to_owned),
        };
        contract.has_stage(named).then(|| named.to_owned())
    }
}

/// `[feedback]`: which stage each status moves a lead to, and how CRM reason texts read
/// as the contract's disqualification reasons (for every source).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedbackRules {
    /// Statuses whose stage is configured; the others use [`FeedbackRules::stage`]'s defaults.
    pub stages: BTreeMap<FeedbackStatus, String>,
    /// CRM reason text (lower-cased, trimmed) → picklist reason.
    pub reasons: BTreeMap<String, String>,
}

impl FeedbackRules {
    /// The stage `status` moves a lead to under `contract`: as configured, else the
    /// default (accepted and working → sal, qualified → sql, converted → opportunity,
    /// won → customer, lost → recycled, disqualified → the contract's disqualified stage)
    /// when the contract has that stage.
    pub fn stage(&self, status: FeedbackStatus, contract: &LifecycleContract) -> Option<String> {
        self.stages.get(&status).cloned().or_else(|| status.default_stage(contract))
    }

    /// A reason as the contract's picklist names it: through `extra` (a destination's own
    /// map), then `[feedback.reasons]`, then a case-insensitive match of the picklist;
    /// otherwise the text as sent (the contract then refuses it if it has a picklist).
    pub fn reason(&self, raw: &str, extra: &BTreeMap<String, String>, contract: &LifecycleContract) -> String {
        let key = raw.trim().to_lowercase();
        if let Some(mapped) = extra.get(&key).or_else(|| self.reasons.get(&key)) {
            return mapped.clone();
        }
        let snake = key.replace([' ', '-'], "_");
        contract
            .disqualify_reasons()
            .iter()
            .find(|r| r.eq_ignore_ascii_case(&key) || r.eq_ignore_ascii_case(&snake))
            .cloned()
            .unwrap_or_else(|| raw.trim().to_owned())
    }
}

/// What one CRM value means: a status (with the reason it implies, e.g. HubSpot's
/// `BAD_TIMING` is lost for `bad_timing`), or nothing to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedStatus {
    Status { status: FeedbackStatus, reason: Option<String> },
    Ignore,
}

impl MappedStatus {
    /// `ignore`, `STATUS` or `STATUS:REASON`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("ignore") {
            return Some(Self::Ignore);
        }
        let (status, reason) = match s.split_once(':') {
            Some((status, reason)) if !reason.trim().is_empty() => (status, Some(reason.trim().to_owned())),
            Some(_) => return None,
            None => (s, None),
        };
        FeedbackStatus::parse(status).map(|status| Self::Status { status, reason })
    }
}

/// The kind of CRM a destination is, for its feedback defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrmKind {
    HubSpot,
    Salesforce,
}

impl CrmKind {
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "hubspot" => Some(Self::HubSpot),
            "salesforce" => Some(Self::Salesforce),
            _ => None,
        }
    }
}

/// HubSpot's default `hs_lead_status` options and `lifecyclestage` values (internal
/// names), and what they mean here.
const HUBSPOT_STATUSES: &[(&str, &str)] = &[
    ("NEW", "ignore"),
    ("OPEN", "accepted"),
    ("IN_PROGRESS", "working"),
    ("ATTEMPTED_TO_CONTACT", "working"),
    ("CONNECTED", "working"),
    ("OPEN_DEAL", "converted"),
    ("UNQUALIFIED", "disqualified"),
    ("BAD_TIMING", "lost:bad_timing"),
    ("subscriber", "ignore"),
    ("lead", "ignore"),
    ("marketingqualifiedlead", "ignore"),
    ("salesqualifiedlead", "qualified"),
    ("opportunity", "converted"),
    ("customer", "won"),
    ("evangelist", "won"),
    ("other", "ignore"),
];

/// Salesforce's standard Lead `Status` picklist.
const SALESFORCE_STATUSES: &[(&str, &str)] = &[
    ("Open - Not Contacted", "accepted"),
    ("Working - Contacted", "working"),
    ("Closed - Converted", "converted"),
    ("Closed - Not Converted", "disqualified"),
];

/// How one CRM destination's values read as feedback (`[destinations.feedback]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrmMapping {
    pub kind: CrmKind,
    /// The fields (HubSpot properties) that carry the status, e.g. `hs_lead_status`.
    pub status_fields: Vec<String>,
    /// CRM value (lower-cased, trimmed) → meaning: the defaults for the kind, overridden
    /// by `statuses`.
    pub statuses: BTreeMap<String, MappedStatus>,
    /// The field carrying the disqualification (or loss) reason, if the CRM has one.
    pub reason_field: Option<String>,
    /// The field carrying the owner (HubSpot `hubspot_owner_id`, Salesforce `OwnerId`).
    pub owner_field: Option<String>,
    /// CRM reason text (lower-cased) → picklist reason, over `[feedback.reasons]`.
    pub reasons: BTreeMap<String, String>,
    /// The environment variable holding the secret that authenticates the CRM: HubSpot's
    /// app client secret (v3 signatures), or the `?token=` of Salesforce outbound messages.
    pub secret_env: String,
    /// Salesforce: the organization id outbound messages must carry.
    pub organization_id: Option<String>,
    /// HubSpot: the account (portal) whose events are taken; others are ignored.
    pub portal_id: Option<String>,
}

impl CrmMapping {
    /// The defaults for a kind of CRM, with the secret's variable.
    pub fn defaults(kind: CrmKind, secret_env: String) -> Self {
        let (fields, table, owner): (&[&str], &[(&str, &str)], &str) = match kind {
            CrmKind::HubSpot => (&["hs_lead_status", "lifecyclestage"], HUBSPOT_STATUSES, "hubspot_owner_id"),
            CrmKind::Salesforce => (&["Status"], SALESFORCE_STATUSES, "OwnerId"),
        };
        Self {
            kind,
            status_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            statuses: table
                .iter()
                .filter_map(|(value, meaning)| Some((value.to_lowercase(), MappedStatus::parse(meaning)?)))
                .collect(),
            reason_field: None,
            owner_field: Some(owner.to_owned()),
            reasons: BTreeMap::new(),
            secret_env,
            organization_id: None,
            portal_id: None,
        }
    }

    /// Reads one change of a CRM record (field name → new value) as feedback: the status
    /// its status field says, the reason (the reason field, else the one the status
    /// implies) and the owner. Field names compare without regard to case.
    pub fn interpret(&self, fields: &[(String, String)]) -> Interpreted {
        let get = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let mut out = Interpreted::default();
        for field in &self.status_fields {
            if let Some(value) = get(field) {
                out.crm_status = Some(value.to_owned());
                match self.statuses.get(&value.to_lowercase()) {
                    Some(MappedStatus::Status { status, reason }) => {
                        out.status = Some(*status);
                        out.reason.clone_from(reason);
                    }
                    Some(MappedStatus::Ignore) => {
                        out.ignored = Some(format!("{field} {value:?} means nothing to act on"))
                    }
                    None => out.ignored = Some(format!("{field} {value:?} is not mapped to a feedback status")),
                }
                break;
            }
        }
        if let Some(reason) = self.reason_field.as_deref().and_then(get) {
            out.reason = Some(reason.to_owned());
        }
        out.owner = self.owner_field.as_deref().and_then(get).map(str::to_owned);
        out
    }
}

impl CrmMapping {
    /// The reason field's value among `fields`, if the mapping has a reason field.
    pub fn reason_in(&self, fields: &[(String, String)]) -> Option<String> {
        let name = self.reason_field.as_deref()?;
        fields
            .iter()
            .rev()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
    }
}

/// What [`CrmMapping::interpret`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interpreted {
    pub status: Option<FeedbackStatus>,
    /// The status value as the CRM sent it.
    pub crm_status: Option<String>,
    /// As the CRM sent it (not mapped yet).
    pub reason: Option<String>,
    pub owner: Option<String>,
    /// Why a status value was not acted on.
    pub ignored: Option<String>,
}

/// How feedback names its lead; the first that finds a lead wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    /// The CRM's own record id, known from a delivery to `crm_destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// One piece of feedback, ready to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback {
    pub id: FeedbackId,
    /// `generic` or the destination's name.
    pub source: String,
    /// The provider's event id (or the client's idempotency key): a replay is a no-op.
    pub event_id: Option<String>,
    pub identity: FeedbackIdentity,
    pub status: Option<FeedbackStatus>,
    pub crm_status: Option<String>,
    /// The stage `status` moves the lead to.
    pub target: Option<String>,
    /// Mapped to the picklist where a mapping knew it.
    pub reason: Option<String>,
    pub owner: Option<String>,
    /// Why a CRM value was not acted on (kept for the audit).
    pub ignored: Option<String>,
    /// When the CRM says it happened: an older event never undoes a newer one.
    pub occurred_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
    /// The item as received, for the audit.
    pub payload: serde_json::Value,
}

impl Feedback {
    /// `feedback:{source}`, the actor of the history entries it makes.
    pub fn actor(&self) -> String {
        format!("feedback:{}", self.source)
    }
}

/// What became of one piece of feedback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeedbackOutcome {
    /// The lead moved (or its owner changed).
    Applied,
    /// The lead already was where the feedback says.
    Unchanged,
    /// Older than feedback already applied to the lead; kept, not applied.
    Stale,
    /// No lead matches; kept for the audit.
    Unmatched,
    /// Nothing to act on (a CRM value mapped to nothing).
    Ignored,
    /// Refused: the contract needs a reason for this move.
    ReasonRequired,
    /// Refused: the reason is not in the contract's picklist.
    ReasonNotInPicklist,
    /// Refused: no chain of allowed moves leads to the target stage.
    Refused,
    /// Refused: the lead was erased. Only the outcome is kept, nothing the CRM sent.
    Erased,
}

impl FeedbackOutcome {
    pub const ALL: [Self; 9] = [
        Self::Applied,
        Self::Unchanged,
        Self::Stale,
        Self::Unmatched,
        Self::Ignored,
        Self::ReasonRequired,
        Self::ReasonNotInPicklist,
        Self::Refused,
        Self::Erased,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Stale => "stale",
            Self::Unmatched => "unmatched",
            Self::Ignored => "ignored",
            Self::ReasonRequired => "reason_required",
            Self::ReasonNotInPicklist => "reason_not_in_picklist",
            Self::Refused => "refused",
            Self::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Refusals are not final: a corrected resend with the same event id is evaluated
    /// afresh (a resend about an erased lead is refused again). Every other outcome makes
    /// a resend a replay.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::ReasonRequired | Self::ReasonNotInPicklist | Self::Refused | Self::Erased)
    }
}

/// The outcome of one piece of feedback, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackResult {
    pub id: FeedbackId,
    pub outcome: FeedbackOutcome,
    pub lead_id: Option<LeadId>,
    /// The lead's stage after it.
    pub stage: Option<String>,
    /// Why it was refused, stale or ignored.
    pub detail: Option<String>,
    /// For refusals: the stages the lead may move to from where it is.
    pub allowed: Vec<String>,
    /// An earlier feedback with the same event id decided this outcome.
    pub replayed: bool,
}

/// A refusal of [`apply`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Rejection {
    pub outcome: FeedbackOutcome,
    pub detail: String,
    pub allowed: Vec<String>,
}

/// Which parts of a feedback are newer than what was applied to the lead before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Current {
    pub status: bool,
    pub owner: bool,
}

/// The shortest chain of manual moves the contract allows from `from` to `to`, without
/// `from` itself; empty when already there, `None` when no chain exists.
pub fn path(contract: &LifecycleContract, from: &str, to: &str) -> Option<Vec<String>> {
    if from == to {
        return Some(Vec::new());
    }
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(stage) = queue.pop_front() {
        for next in contract.allowed_from(&stage) {
            if next == from || previous.contains_key(&next) {
                continue;
            }
            previous.insert(next.clone(), stage.clone());
            if next == to {
                let mut chain = vec![next];
                while let Some(before) = chain.last().and_then(|s| previous.get(s)).filter(|b| *b != from) {
                    chain.push(before.clone());
                }
                chain.reverse();
                return Some(chain);
            }
            queue.push_back(next);
        }
    }
    None
}

/// Applies feedback to `lead`: walks it to the target stage (each step a contract-checked
/// transition by `feedback:{source}`, the reason on every step that takes one) and sets
/// the owner. Parts that are not [`Current`] are skipped. On a refusal `lead` is
/// unchanged. An empty list means nothing changed.
pub fn apply(
    lead: &mut Lead,
    feedback: &Feedback,
    rules: &Engagement,
    current: Current,
    now: OffsetDateTime,
) -> Result<Vec<LeadEvent>, Rejection> {
    let contract = &rules.contract;
    let actor = feedback.actor();
    let mut changes = Vec::new();
    if let (true, Some(target)) = (current.status, feedback.target.as_deref()) {
        let from = lead.lifecycle_stage.clone();
        let refuse = |outcome, detail: String| Rejection { outcome, detail, allowed: contract.allowed_from(&from) };
        // Marketing learns nothing from a disqualification without its reason, whatever
        // the contract says about the move.
        if feedback.status == Some(FeedbackStatus::Disqualified)
            && feedback.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            let picklist = contract.disqualify_reasons();
            let one_of = if picklist.is_empty() { String::new() } else { format!(", one of {}", picklist.join(", ")) };
            return Err(refuse(FeedbackOutcome::ReasonRequired, format!("a disqualification needs a reason{one_of}")));
        }
        let Some(chain) = path(contract, &from, target) else {
            return Err(refuse(
                FeedbackOutcome::Refused,
                format!("no chain of allowed moves leads from `{from}` to `{target}`"),
            ));
        };
        let mut moved = lead.clone();
        for step in &chain {
            match engagement::transition(&mut moved, step, &actor, feedback.reason.as_deref(), rules, now) {
                Ok(change) => changes.push(change),
                Err(refused) => {
                    let outcome = match refused.refusal {
                        Refusal::ReasonRequired { .. } => FeedbackOutcome::ReasonRequired,
                        Refusal::ReasonNotInPicklist { .. } => FeedbackOutcome::ReasonNotInPicklist,
                        _ => FeedbackOutcome::Refused,
                    };
                    return Err(refuse(outcome, refused.to_string()));
                }
            }
        }
        *lead = moved;
    }
    if let (true, Some(owner)) = (current.owner, feedback.owner.as_deref())
        && lead.owner.as_deref() != Some(owner)
    {
        changes.push(LeadEvent::OwnerChanged {
            from: lead.owner.replace(owner.to_owned()),
            to: Some(owner.to_owned()),
            actor: Some(actor),
        });
        lead.updated_at = now;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Picklists, SourceConfig};
    use crate::pipeline::{self, SubmissionMeta};
    use crate::resolve::Model;
    use crate::{SourceName, SubmissionId};
    use serde_json::json;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-06-01 12:00 UTC)
    }

    fn lead_at(stage: &str) -> Lead {
        let v = json!({"email": "ada@acme.com"});
        let c = pipeline::prepare(v.as_object().unwrap(), &SourceConfig::api(), &Picklists::default()).unwrap();
        let meta = SubmissionMeta { id: SubmissionId::new(), source: SourceName::api(), received_at: now() };
        let mut lead = pipeline::resolve_and_settle(c, &meta, vec![], &Model::default(), now()).lead;
        lead.lifecycle_stage = stage.to_owned();
        lead
    }

    fn feedback(status: FeedbackStatus, reason: Option<&str>) -> Feedback {
        let rules = Engagement::default();
        Feedback {
            id: FeedbackId::new(),
            source: "hubspot-main".into(),
            event_id: None,
            identity: FeedbackIdentity::default(),
            status: Some(status),
            crm_status: None,
            target: FeedbackRules::default().stage(status, &rules.contract),
            reason: reason.map(str::to_owned),
            owner: None,
            ignored: None,
            occurred_at: now(),
            received_at: now(),
            payload: json!({}),
        }
    }

    const NOW: Current = Current { status: true, owner: true };

    fn stages(changes: &[LeadEvent]) -> Vec<String> {
        changes
            .iter()
            .filter_map(|c| match c {
                LeadEvent::StageChanged { to, actor, .. } => {
                    assert_eq!(actor.as_deref(), Some("feedback:hubspot-main"));
                    Some(to.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn won_walks_the_whole_main_path_one_allowed_move_at_a_time() {
        let mut lead = lead_at("mql");
        let changes =
            apply(&mut lead, &feedback(FeedbackStatus::Won, None), &Engagement::default(), NOW, now()).unwrap();
        assert_eq!(stages(&changes), ["sal", "sql", "opportunity", "customer"]);
        assert_eq!(lead.lifecycle_stage, "customer");
    }

    #[test]
    fn already_at_the_target_changes_nothing() {
        let mut lead = lead_at("sal");
        let rules = Engagement::default();
        assert!(apply(&mut lead, &feedback(FeedbackStatus::Working, None), &rules, NOW, now()).unwrap().is_empty());
    }

    #[test]
    fn a_disqualification_needs_a_reason_from_the_picklist() {
        let rules = Engagement::default();
        let mut lead = lead_at("sal");
        let missing = apply(&mut lead, &feedback(FeedbackStatus::Disqualified, None), &rules, NOW, now()).unwrap_err();
        assert_eq!(missing.outcome, FeedbackOutcome::ReasonRequired);
        assert_eq!(lead.lifecycle_stage, "sal", "a refusal leaves the lead as it was");
        let wrong = feedback(FeedbackStatus::Disqualified, Some("they hung up"));
        assert_eq!(
            apply(&mut lead, &wrong, &rules, NOW, now()).unwrap_err().outcome,
            FeedbackOutcome::ReasonNotInPicklist
        );
        let right = feedback(FeedbackStatus::Disqualified, Some("no_budget"));
        assert_eq!(stages(&apply(&mut lead, &right, &rules, NOW, now()).unwrap()), ["disqualified"]);
    }

    #[test]
    fn no_chain_of_allowed_moves_is_refused_with_the_allowed_ones() {
        let mut lead = lead_at("customer");
        let refused = apply(&mut lead, &feedback(FeedbackStatus::Accepted, None), &Engagement::default(), NOW, now())
            .unwrap_err();
        assert_eq!(refused.outcome, FeedbackOutcome::Refused);
        assert_eq!(refused.allowed, Vec::<String>::new());
        assert_eq!(lead.lifecycle_stage, "customer");
    }

    #[test]
    fn a_new_owner_is_history_and_a_stale_status_is_skipped() {
        let mut lead = lead_at("mql");
        let mut f = feedback(FeedbackStatus::Won, None);
        f.owner = Some("rep-7".into());
        let changes =
            apply(&mut lead, &f, &Engagement::default(), Current { status: false, owner: true }, now()).unwrap();
        assert_eq!(lead.lifecycle_stage, "mql");
        assert!(matches!(&changes[..], [LeadEvent::OwnerChanged { from: None, to: Some(to), .. }] if to == "rep-7"));
        assert!(
            apply(&mut lead, &f, &Engagement::default(), Current { status: false, owner: true }, now())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn paths_are_shortest_and_exclude_the_start() {
        let c = LifecycleContract::default();
        assert_eq!(path(&c, "mql", "sql").unwrap(), ["sal", "sql"]);
        assert_eq!(path(&c, "sal", "sal").unwrap(), Vec::<String>::new());
        assert_eq!(path(&c, "opportunity", "recycled").unwrap(), ["recycled"]);
        assert!(path(&c, "customer", "sal").is_none());
        assert!(path(&c, "mql", "nowhere").is_none());
    }

    #[test]
    fn crm_values_read_as_statuses_reasons_and_owners() {
        let hubspot = CrmMapping::defaults(CrmKind::HubSpot, "X".into());
        let read = |pairs: &[(&str, &str)]| {
            hubspot.interpret(&pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>())
        };
        assert_eq!(read(&[("hs_lead_status", "OPEN")]).status, Some(FeedbackStatus::Accepted));
        let bad_timing = read(&[("hs_lead_status", "BAD_TIMING")]);
        assert_eq!((bad_timing.status, bad_timing.reason.as_deref()), (Some(FeedbackStatus::Lost), Some("bad_timing")));
        assert_eq!(read(&[("lifecyclestage", "customer")]).status, Some(FeedbackStatus::Won));
        assert!(read(&[("hs_lead_status", "NEW")]).ignored.is_some());
        assert!(read(&[("hs_lead_status", "SOMETHING_CUSTOM")]).ignored.is_some());
        assert_eq!(read(&[("hubspot_owner_id", "42")]).owner.as_deref(), Some("42"));

        let mut salesforce = CrmMapping::defaults(CrmKind::Salesforce, "X".into());
        salesforce.reason_field = Some("Disqualification_Reason__c".into());
        let read = salesforce.interpret(&[
            ("Status".into(), "Closed - Not Converted".into()),
            ("Disqualification_Reason__c".into(), "No Budget".into()),
        ]);
        assert_eq!((read.status, read.reason.as_deref()), (Some(FeedbackStatus::Disqualified), Some("No Budget")));
        let contract = LifecycleContract::default();
        let rules = FeedbackRules::default();
        assert_eq!(rules.reason("No Budget", &BTreeMap::new(), &contract), "no_budget");
        let extra = BTreeMap::from([("price".to_owned(), "no_budget".to_owned())]);
        assert_eq!(rules.reason(" Price ", &extra, &contract), "no_budget");
        assert_eq!(rules.reason("Whatever", &extra, &contract), "Whatever");
    }

    #[test]
    fn mapped_status_text_reads_back() {
        assert_eq!(MappedStatus::parse("ignore"), Some(MappedStatus::Ignore));
        assert_eq!(
            MappedStatus::parse("lost:bad_timing"),
            Some(MappedStatus::Status { status: FeedbackStatus::Lost, reason: Some("bad_timing".into()) })
        );
        assert_eq!(MappedStatus::parse("won:"), None);
        assert_eq!(MappedStatus::parse("maybe"), None);
        for o in FeedbackOutcome::ALL {
            assert_eq!(FeedbackOutcome::parse(o.as_str()), Some(o));
        }
    }
}
