//! Applies the core's [`Change`]s in PostgreSQL, inside the caller's transaction: one
//! statement per change (a lead also replaces its match keys). Nothing here decides.

use super::Fail;
use super::sql::exec;
use crate::StoreError;
use crate::feedback::Doc;
use deadpool_postgres::GenericClient;
use leadflow_domain::changes::{Change, LeadIndex};
use leadflow_domain::pipeline::HistoryEntry;
use leadflow_domain::{Email, Lead, LeadId, SubmissionId};
use tokio_postgres::types::Json;
use uuid::Uuid;

pub(super) async fn apply(c: &impl GenericClient, changes: &[Change]) -> Result<(), Fail> {
    for change in changes {
        apply_one(c, change).await?;
    }
    Ok(())
}

pub(super) async fn apply_one(c: &impl GenericClient, change: &Change) -> Result<(), Fail> {
    match change {
        Change::Lead { lead, expected, index } => write_lead(c, lead, *expected, index).await?,
        Change::MergedAway { lead, into, at } => {
            exec(
                c,
                "UPDATE leads SET merged_into = $2, updated_at = $3 WHERE id = $1",
                &[lead.as_uuid(), into.as_uuid(), at],
            )
            .await?;
            exec(c, "DELETE FROM lead_keys WHERE lead_id = $1", &[lead.as_uuid()]).await?;
        }
        Change::Unmerged { lead, at } => {
            exec(c, "UPDATE leads SET merged_into = NULL, updated_at = $2 WHERE id = $1", &[lead.as_uuid(), at])
                .await?;
        }
        Change::Index { lead, index } => write_keys(c, *lead, index).await?,
        Change::History { entry, submission } => insert_history(c, entry, *submission).await?,
        Change::Processed { submission, lead, outcome } => {
            exec(
                c,
                "UPDATE submissions SET status = 'processed', lead_id = $2, outcome = $3, error = NULL WHERE id = $1",
                &[submission.as_uuid(), lead.as_uuid(), &outcome.as_str()],
            )
            .await?;
        }
        Change::Touchpoint { lead, touch } => {
            exec(
                c,
                "INSERT INTO touchpoints (lead_id, at, doc) VALUES ($1, $2, $3)",
                &[lead.as_uuid(), &touch.at, &Json(touch)],
            )
            .await?;
        }
        Change::Visitor { anonymous_id, lead } => {
            exec(
                c,
                "INSERT INTO lead_visitors (anonymous_id, lead_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[anonymous_id, lead.as_uuid()],
            )
            .await?;
        }
        Change::AttachEvents { lead, events } => {
            let ids: Vec<Uuid> = events.iter().map(|e| *e.as_uuid()).collect();
            exec(c, "UPDATE events SET lead_id = $1 WHERE id = ANY($2) AND lead_id IS NULL", &[lead.as_uuid(), &ids])
                .await?;
        }
        Change::StageChange { lead, from, to, at, actor, reason } => {
            exec(
                c,
                "INSERT INTO stage_changes (lead_id, from_stage, to_stage, at, actor, reason) VALUES ($1, $2, $3, $4, $5, $6)",
                &[lead.as_uuid(), from, to, at, actor, reason],
            )
            .await?;
        }
        Change::Review { id, lead, candidate, score, evidence, at } => {
            exec(
                c,
                "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT DO NOTHING",
                &[id.as_uuid(), lead.as_uuid(), candidate.as_uuid(), score, &Json(evidence), at],
            )
            .await?;
        }
        Change::Account(account) => super::accounts::insert(c, account).await?,
        Change::AccountKeys { account, keys } => super::accounts::insert_keys(c, *account, keys).await?,
        Change::Delivery(d) => {
            exec(
                c,
                "INSERT INTO outbox (id, destination, lead_id, event_type, payload, occurred_at, status, attempts,
                                     next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, 'pending', 0, $6, $6, $6)",
                &[&d.id, &d.destination, d.lead.as_uuid(), &d.event_type, &&*d.payload, &d.at],
            )
            .await?;
        }
        Change::RetryNeedsData { lead, destination, payload, at } => {
            exec(
                c,
                "UPDATE outbox SET status = 'pending', payload = $3::text::jsonb, attempts = 0, next_attempt_at = $4,
                    updated_at = $4
                 WHERE lead_id = $1 AND destination = $2 AND status = 'needs_data'",
                &[lead.as_uuid(), destination, &&**payload, at],
            )
            .await?;
        }
        Change::QueueRouting { lead, trigger, source, at } => {
            exec(
                c,
                "INSERT INTO routing_queue (lead_id, trigger, source, queued_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (lead_id) DO NOTHING",
                &[lead.as_uuid(), &trigger.as_str(), source, at],
            )
            .await?;
        }
        // Events and feedback
        Change::Event(new) => {
            let event = &new.event;
            exec(
                c,
                "INSERT INTO events (id, source, idempotency_key, lead_id, email, external_id, anonymous_id, kind, occurred_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    event.id.as_uuid(),
                    &new.source.as_str(),
                    &new.idempotency_key.as_ref().map(|k| k.as_str()),
                    &event.lead_id.map(|l| *l.as_uuid()),
                    &event.identity.email,
                    &event.identity.external_id,
                    &event.identity.anonymous_id,
                    &event.kind,
                    &event.occurred_at,
                    &Json(event),
                ],
            )
            .await?;
        }
        Change::DropEvent { event } => {
            exec(c, "DELETE FROM events WHERE id = $1", &[event.as_uuid()]).await?;
        }
        Change::Feedback { feedback: fb, result, scrubbed } => {
            let doc = Doc::new(fb, result);
            let doc = if *scrubbed { doc.erased() } else { doc };
            exec(
                c,
                "INSERT INTO feedback (id, source, event_id, lead_id, status, has_owner, outcome, occurred_at, received_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    fb.id.as_uuid(),
                    &fb.source,
                    &fb.event_id,
                    &result.lead_id.map(|l| *l.as_uuid()),
                    &fb.status.map(|s| s.as_str()),
                    &fb.owner.is_some(),
                    &result.outcome.as_str(),
                    &fb.occurred_at,
                    &fb.received_at,
                    &Json(doc),
                ],
            )
            .await?;
        }
        Change::FeedbackSettled { feedback: fb, result } => {
            exec(
                c,
                "UPDATE feedback SET lead_id = $2, outcome = $3, doc = $4 WHERE id = $1",
                &[
                    fb.id.as_uuid(),
                    &result.lead_id.map(|l| *l.as_uuid()),
                    &result.outcome.as_str(),
                    &Json(Doc::new(fb, result)),
                ],
            )
            .await?;
        }
        Change::TakenUp { lead, owner } => super::routing::taken_up(c, *lead, owner.as_deref()).await?,
        Change::CrmLink { record, lead, at } => {
            exec(
                c,
                "INSERT INTO crm_links (destination, crm_id, lead_id, linked_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (destination, crm_id) DO UPDATE SET lead_id = excluded.lead_id, linked_at = excluded.linked_at",
                &[&record.destination, &record.crm_id, lead.as_uuid(), at],
            )
            .await?;
        }
        Change::ErasedCrmRecord { lead, record, at } => super::outbox::add_erased_record(c, *lead, record, *at).await?,
    }
    Ok(())
}

/// Writes a lead: its document, the columns matched on, and its match keys. `expected` is
/// the version it had when read (`None` for a new lead).
pub(super) async fn write_lead(
    c: &impl GenericClient,
    lead: &Lead,
    expected: Option<u64>,
    index: &LeadIndex,
) -> Result<(), Fail> {
    let email = lead.fields.email.as_ref().map(Email::as_str);
    let version = version_column(lead.version)?;
    let account = lead.account_id.map(|a| *a.as_uuid());
    let (original, latest) = (&lead.attribution.original, &lead.attribution.latest);
    let (source, latest_source) = (original.source.as_str(), latest.source.as_str());
    let doc = Json(lead);
    match expected {
        None => {
            exec(
                c,
                "INSERT INTO leads (id, email, version, updated_at, doc, account_id, external_id, stage, source,
                                    campaign, latest_source, latest_campaign, created_at, email_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    lead.id.as_uuid(),
                    &email,
                    &version,
                    &lead.updated_at,
                    &doc,
                    &account,
                    &lead.fields.external_id,
                    &lead.lifecycle_stage,
                    &source,
                    &original.utm_campaign,
                    &latest_source,
                    &latest.utm_campaign,
                    &lead.created_at,
                    &index.email_key,
                ],
            )
            .await?;
        }
        Some(expected) => {
            let changed = exec(
                c,
                "UPDATE leads SET email = $2, version = $3, updated_at = $4, doc = $5, account_id = $6,
                    external_id = $7, stage = $8, source = $9, campaign = $10, latest_source = $11,
                    latest_campaign = $12, email_key = $14
                 WHERE id = $1 AND version = $13 AND merged_into IS NULL",
                &[
                    lead.id.as_uuid(),
                    &email,
                    &version,
                    &lead.updated_at,
                    &doc,
                    &account,
                    &lead.fields.external_id,
                    &lead.lifecycle_stage,
                    &source,
                    &original.utm_campaign,
                    &latest_source,
                    &latest.utm_campaign,
                    &version_column(expected)?,
                    &index.email_key,
                ],
            )
            .await?;
            if changed != 1 {
                return Err(StoreError::Conflict(format!("lead {} changed concurrently", lead.id)).into());
            }
            exec(c, "DELETE FROM lead_keys WHERE lead_id = $1", &[lead.id.as_uuid()]).await?;
        }
    }
    write_keys(c, lead.id, index).await
}

/// Indexes a lead under its blocking keys, if it has any.
async fn write_keys(c: &impl GenericClient, lead: LeadId, index: &LeadIndex) -> Result<(), Fail> {
    let Some(record) = index.record.as_ref().filter(|_| !index.keys.is_empty()) else { return Ok(()) };
    exec(
        c,
        "INSERT INTO lead_keys (key, lead_id, record) SELECT k, $2, $3 FROM unnest($1::text[]) AS k
         ON CONFLICT DO NOTHING",
        &[&index.keys, lead.as_uuid(), &Json(record)],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_history(
    c: &impl GenericClient,
    entry: &HistoryEntry,
    submission: Option<SubmissionId>,
) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO lead_history (lead_id, at, submission_id, entry) VALUES ($1, $2, $3, $4)",
        &[entry.lead_id.as_uuid(), &entry.at, &submission.map(|s| *s.as_uuid()), &Json(entry)],
    )
    .await?;
    Ok(())
}

pub(super) fn version_column(v: u64) -> Result<i64, Fail> {
    i64::try_from(v).map_err(|_| StoreError::Internal(format!("lead version {v} out of range")).into())
}
