//! CRM feedback: what the CRMs say became of the leads (accepted, working, qualified,
//! converted, won, lost, disqualified with a reason, a new owner).
//!
//! Two ways in: leadflow's own form ([`record_generic`], read by the caller), and a
//! configured HubSpot or Salesforce destination's own webhook ([`receive_crm`]),
//! authenticated by that CRM's scheme and read through the destination's
//! `[destinations.feedback]` mapping. Either way each item is interpreted here (the
//! status's stage under the lifecycle contract, the reason in the picklist) and recorded
//! by the store in the transaction that applies it (`leadflow_core::feedback` decides).
//! Nothing acknowledged is lost: every item is stored, whatever became of it.

use crate::{App, AppError, metrics as m};
use leadflow_core::config::Config;
use leadflow_core::deliver::DestinationConfig;
use leadflow_core::feedback::{
    CrmKind, CrmMapping, Feedback, FeedbackIdentity, FeedbackResult, FeedbackStatus, GENERIC,
};
use leadflow_core::{Email, FeedbackId, LeadId};
use leadflow_integrations::channels::HookRequest;
use leadflow_integrations::channels::feedback::{CrmNotification, hubspot, salesforce};
use leadflow_store::StoreError;
use serde_json::Value;
use time::OffsetDateTime;

/// One piece of feedback in leadflow's own form, its fields read and checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenericFeedback {
    /// The caller's event id (or its idempotency key): a resend is a replay.
    pub event_id: Option<String>,
    pub identity: FeedbackIdentity,
    pub status: Option<FeedbackStatus>,
    /// As sent; mapped to the contract's picklist here.
    pub reason: Option<String>,
    pub owner: Option<String>,
    /// Default: when received.
    pub occurred_at: Option<OffsetDateTime>,
    /// The item as received, for the audit.
    pub payload: Value,
}

/// Records generic feedback, in order; one result per item.
pub async fn record_generic(app: &App, items: Vec<GenericFeedback>) -> Result<Vec<FeedbackResult>, StoreError> {
    let now = OffsetDateTime::now_utc();
    let items = items.into_iter().map(|item| generic(&app.config, item, now)).collect();
    record(app, GENERIC, items).await
}

/// What a CRM's request came to.
#[derive(Debug)]
pub struct CrmReceived {
    pub kind: CrmKind,
    /// Items received and stored.
    pub received: usize,
    /// Events of the request that are not feedback (another subscription type or
    /// portal); nothing is stored for them.
    pub skipped: usize,
    /// One per item, in order.
    pub results: Vec<FeedbackResult>,
}

/// Authenticates and reads a CRM's request to the destination named `destination`, then
/// records its items. `None` when no destination of that name takes feedback; a refused
/// request (signature, token, shape) is [`AppError::Provider`].
pub async fn receive_crm(
    app: &App,
    destination: &str,
    request: &HookRequest<'_>,
) -> Result<Option<CrmReceived>, AppError> {
    let Some((destination, mapping)) = app.config.feedback_destination(destination) else { return Ok(None) };
    let secret = app.providers.feedback_secret(&destination.name);
    let (notifications, skipped) = match mapping.kind {
        CrmKind::HubSpot => {
            let events = hubspot::parse(request, secret, mapping.portal_id.as_deref())?;
            (events.notifications, events.skipped)
        }
        CrmKind::Salesforce => {
            let org = mapping.organization_id.as_deref().unwrap_or_default();
            (salesforce::parse(request, secret, org)?.notifications, 0)
        }
    };
    let items: Vec<Feedback> =
        notifications.into_iter().map(|n| from_crm(&app.config, destination, mapping, n, request.now)).collect();
    let received = items.len();
    let results = record(app, kind_label(mapping.kind), items).await?;
    tracing::info!(destination = %destination.name, received, skipped, "CRM feedback recorded");
    Ok(Some(CrmReceived { kind: mapping.kind, received, skipped, results }))
}

async fn record(app: &App, kind: &'static str, items: Vec<Feedback>) -> Result<Vec<FeedbackResult>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let results = app.store.record_feedback(items).await?;
    app.wake.written();
    for r in &results {
        m::feedback(kind, r.outcome.as_str());
    }
    Ok(results)
}

fn kind_label(kind: CrmKind) -> &'static str {
    match kind {
        CrmKind::HubSpot => "hubspot",
        CrmKind::Salesforce => "salesforce",
    }
}

/// Generic feedback with its status's stage and its reason read under the contract.
fn generic(config: &Config, item: GenericFeedback, now: OffsetDateTime) -> Feedback {
    let contract = &config.engagement.contract;
    let target = item.status.and_then(|s| config.feedback.stage(s, contract));
    Feedback {
        id: FeedbackId::new(),
        source: GENERIC.to_owned(),
        event_id: item.event_id,
        identity: item.identity,
        status: item.status,
        crm_status: None,
        ignored: unstaged(item.status, &target),
        target,
        reason: item.reason.map(|r| config.feedback.reason(&r, &Default::default(), contract)),
        owner: item.owner,
        occurred_at: item.occurred_at.unwrap_or(now),
        received_at: now,
        payload: item.payload,
    }
}

/// One CRM notification read through the destination's mapping.
fn from_crm(
    config: &Config,
    destination: &DestinationConfig,
    mapping: &CrmMapping,
    n: CrmNotification,
    now: OffsetDateTime,
) -> Feedback {
    let contract = &config.engagement.contract;
    let read = mapping.interpret(&n.fields);
    let field = |name: &str| {
        n.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    };
    // HubSpot sends one property per event: a reason changed beside the status in the
    // same request belongs to it.
    let raw_reason = read.reason.clone().or_else(|| {
        matches!(read.status, Some(FeedbackStatus::Disqualified | FeedbackStatus::Lost))
            .then(|| mapping.reason_in(&n.context))
            .flatten()
    });
    let target = read.status.and_then(|s| config.feedback.stage(s, contract));
    let ignored = read.ignored.clone().or_else(|| unstaged(read.status, &target));
    let lead_id =
        destination.settings.get("external_id_field").and_then(|f| field(f)).and_then(|v| v.parse::<LeadId>().ok());
    Feedback {
        id: FeedbackId::new(),
        source: destination.name.clone(),
        event_id: Some(n.event_id),
        identity: FeedbackIdentity {
            lead_id,
            crm_id: Some(n.object_id),
            crm_destination: Some(destination.name.clone()),
            email: field("email").and_then(|e| Email::parse(e).ok()),
            external_id: None,
        },
        status: read.status,
        crm_status: read.crm_status,
        target,
        reason: raw_reason.map(|r| config.feedback.reason(&r, &mapping.reasons, contract)),
        // A CRM user `[destinations.owners]` knows is that rep again, so the lead keeps
        // leadflow's name for its owner and the next handoff maps it back.
        owner: read.owner.map(|user| destination.rep_for(&user).map_or(user, str::to_owned)),
        ignored,
        occurred_at: n.occurred_at.unwrap_or(now),
        received_at: now,
        payload: Value::Object(n.payload),
    }
}

/// Why a status is not acted on: the contract has no stage for it.
fn unstaged(status: Option<FeedbackStatus>, target: &Option<String>) -> Option<String> {
    match (status, target) {
        (Some(status), None) => Some(format!("the contract has no stage for {}", status.as_str())),
        _ => None,
    }
}
