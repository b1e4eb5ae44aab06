//! The outbox in PostgreSQL: rows written beside the lead change that caused them (in
//! the caller's transaction), claimed with a lease by the delivery workers of every
//! instance, and the tries recorded with them.

use super::Fail;
use super::sealing::{self, Opened, Sealed, SealedText};
use super::sql::{exec, limit, opt, rows};
use crate::{AttemptRecord, DeliveryAttempt, DeliveryResult, DeliveryStatus, OutboxDelivery, ReplayFilter, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::LeadId;
use leadflow_core::erase;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, destination, lead_id, event_type, payload, status, attempts, next_attempt_at, last_status,
    last_error, last_response, created_at, updated_at";

fn from_row(row: &Row) -> Result<OutboxDelivery, Fail> {
    let id: String = row.try_get(0)?;
    let status: String = row.try_get(5)?;
    let Some(status) = DeliveryStatus::parse(&status) else {
        return Err(StoreError::Corrupt(format!("delivery {id}: status {status:?}")).into());
    };
    let Opened(payload): Opened<serde_json::Value> = row.try_get(4)?;
    Ok(OutboxDelivery {
        destination: row.try_get(1)?,
        lead_id: LeadId::from(row.try_get::<_, Uuid>(2)?),
        event_type: row.try_get(3)?,
        payload,
        status,
        attempts: u32::try_from(row.try_get::<_, i32>(6)?).unwrap_or(0),
        next_attempt_at: row.try_get(7)?,
        last_status: row.try_get::<_, Option<i32>>(8)?.and_then(|s| u16::try_from(s).ok()),
        last_error: sealing::text(row.try_get(9)?),
        last_response: sealing::text(row.try_get(10)?),
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
        id,
    })
}

/// Leases up to `limit` due deliveries. Rows another instance is claiming right now are
/// skipped (`SKIP LOCKED`), not waited for; a row whose claim committed meanwhile is
/// re-checked against the lease condition when locked, so it is never handed out twice.
pub(super) async fn claim(
    c: &impl GenericClient,
    n: usize,
    lease: std::time::Duration,
    now: OffsetDateTime,
) -> Result<Vec<OutboxDelivery>, Fail> {
    let until = now + lease;
    // Per-lead ordering: a row waits while an earlier row of its lead and destination is
    // pending, claimed or not (the check does not skip locked rows: it only reads them).
    // Dead and needs-data rows do not hold the later ones back.
    let found = rows(
        c,
        &format!(
            "WITH due AS (
               SELECT o.seq FROM outbox o
               WHERE o.status = 'pending' AND o.next_attempt_at <= $1
                 AND (o.lease_until IS NULL OR o.lease_until <= $1)
                 AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.lead_id = o.lead_id AND e.destination = o.destination
                                 AND e.seq < o.seq AND e.status = 'pending')
               ORDER BY o.next_attempt_at, o.seq LIMIT $2
               FOR UPDATE OF o SKIP LOCKED)
             UPDATE outbox o SET lease_until = $3 FROM due WHERE o.seq = due.seq
             RETURNING {COLUMNS}, o.seq"
        ),
        &[&now, &limit(n), &until],
    )
    .await?;
    // RETURNING comes in no promised order: hand them out in due order, as SQLite does.
    let mut claimed = Vec::with_capacity(found.len());
    for row in &found {
        let seq: i64 = row.try_get(13)?;
        claimed.push((seq, from_row(row)?));
    }
    claimed.sort_by(|(a_seq, a), (b_seq, b)| (a.next_attempt_at, a_seq).cmp(&(b.next_attempt_at, b_seq)));
    Ok(claimed.into_iter().map(|(_, d)| d).collect())
}

pub(super) async fn record(c: &impl GenericClient, a: &DeliveryAttempt) -> Result<(), Fail> {
    let status = a.status.map(i32::from);
    let (new_status, next, tried, label) = match &a.result {
        DeliveryResult::Delivered => ("delivered", a.at, 1i32, "delivered"),
        DeliveryResult::Retry { at: when } => ("pending", *when, 1, "retry"),
        DeliveryResult::Dead => ("dead", a.at, 1, "dead"),
        DeliveryResult::NeedsData { .. } => ("needs_data", a.at, 0, "needs_data"),
        DeliveryResult::BlockedConsent { .. } => ("blocked_consent", a.at, 0, "blocked_consent"),
        DeliveryResult::Deferred { at: when } => {
            // Nothing was sent: only the due time moves.
            exec(
                c,
                "UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, updated_at = $3
                 WHERE id = $1 AND status = 'pending'",
                &[&a.delivery_id, when, &a.at],
            )
            .await?;
            return Ok(());
        }
    };
    let error = match &a.result {
        DeliveryResult::NeedsData { missing } => Some(format!("missing: {}", missing.join(", "))),
        DeliveryResult::BlockedConsent { missing } => Some(format!("consent missing: {}", missing.join(", "))),
        _ => a.error.clone(),
    };
    let changed = opt(
        c,
        "UPDATE outbox SET status = $2, attempts = attempts + $3, next_attempt_at = $4, lease_until = NULL,
             last_status = coalesce($5, last_status), last_error = $6,
             last_response = coalesce($7, last_response), updated_at = $8
         WHERE id = $1 AND status = 'pending'
         RETURNING attempts, destination, created_at, lead_id",
        &[
            &a.delivery_id,
            &new_status,
            &tried,
            &next,
            &status,
            &error.as_deref().map(SealedText),
            &a.response.as_deref().map(SealedText),
            &a.at,
        ],
    )
    .await?;
    let Some(changed) = changed else {
        // Replayed or finished by someone else meanwhile: this try is stale.
        return Ok(());
    };
    let attempt: i32 = changed.try_get(0)?;
    let destination: &str = changed.try_get(1)?;
    let lead: Uuid = changed.try_get(3)?;
    let outcome = leadflow_core::feed::delivery_outcome(new_status, &a.delivery_id, destination, lead.into(), a.at);
    super::feed::add(outcome.into_iter().collect())?;
    if let Some(counted) = crate::counted_attempt(a, changed.try_get(2)?) {
        let mut tally = leadflow_core::health::Tally::default();
        tally.attempt(destination, counted, a.at);
        super::health::write(c, &tally).await?;
    }
    exec(
        c,
        "INSERT INTO delivery_attempts (delivery_id, attempt, outcome, at, status, error, request, response, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &a.delivery_id,
            &attempt,
            &label,
            &a.at,
            &status,
            &error.as_deref().map(SealedText),
            &a.request.as_deref().map(SealedText),
            &a.response.as_deref().map(SealedText),
            &i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn next_due(c: &impl GenericClient) -> Result<Option<OffsetDateTime>, Fail> {
    // greatest() ignores NULLs: an unleased row is due at its next_attempt_at.
    let row =
        rows(c, "SELECT min(greatest(next_attempt_at, lease_until)) FROM outbox WHERE status = 'pending'", &[]).await?;
    match row.first() {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(None),
    }
}

pub(super) async fn list(
    c: &impl GenericClient,
    status: DeliveryStatus,
    destination: Option<&str>,
    after: Option<&str>,
    n: usize,
) -> Result<Vec<OutboxDelivery>, Fail> {
    rows(
        c,
        &format!(
            "SELECT {COLUMNS} FROM outbox
             WHERE status = $1 AND ($2::text IS NULL OR destination = $2)
               AND seq > coalesce((SELECT seq FROM outbox WHERE id = $3::text), 0)
             ORDER BY seq LIMIT $4"
        ),
        &[&status.as_str(), &destination, &after, &limit(n)],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// A lead's deliveries, oldest first, each with its tries (by the outbox's lead index).
pub(super) async fn of_lead(
    c: &impl GenericClient,
    lead: LeadId,
    limit: usize,
) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, Fail> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found =
        c.query("SELECT id FROM outbox WHERE lead_id = $1 ORDER BY seq LIMIT $2", &[lead.as_uuid(), &limit]).await?;
    let mut out = Vec::with_capacity(found.len());
    for row in found {
        let id: String = row.try_get(0)?;
        out.extend(get(c, &id).await?);
    }
    Ok(out)
}

pub(super) async fn get(
    c: &impl GenericClient,
    id: &str,
) -> Result<Option<(OutboxDelivery, Vec<AttemptRecord>)>, Fail> {
    let Some(row) = opt(c, &format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"), &[&id]).await? else {
        return Ok(None);
    };
    let delivery = from_row(&row)?;
    let attempts = rows(
        c,
        "SELECT attempt, outcome, at, status, error, request, response, duration_ms
         FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(AttemptRecord {
            attempt: u32::try_from(r.try_get::<_, i32>(0)?).unwrap_or(0),
            outcome: r.try_get(1)?,
            at: r.try_get(2)?,
            status: r.try_get::<_, Option<i32>>(3)?.and_then(|s| u16::try_from(s).ok()),
            error: sealing::text(r.try_get(4)?),
            request: sealing::text(r.try_get(5)?),
            response: sealing::text(r.try_get(6)?),
            duration_ms: u64::try_from(r.try_get::<_, i64>(7)?).unwrap_or(0),
        })
    })
    .collect::<Result<_, Fail>>()?;
    Ok(Some((delivery, attempts)))
}

pub(super) async fn replay_one(
    c: &impl GenericClient,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<OutboxDelivery>, Fail> {
    exec(
        c,
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_until = NULL, updated_at = $2
         WHERE id = $1 AND status IN ('dead', 'needs_data')",
        &[&id, &now],
    )
    .await?;
    opt(c, &format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"), &[&id]).await?.as_ref().map(from_row).transpose()
}

pub(super) async fn replay_many(
    c: &impl GenericClient,
    filter: &ReplayFilter,
    now: OffsetDateTime,
) -> Result<u64, Fail> {
    exec(
        c,
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL, updated_at = $1
         WHERE status = 'dead' AND ($2::text IS NULL OR destination = $2)
           AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at < $4)",
        &[&now, &filter.destination, &filter.from, &filter.to],
    )
    .await
}

/// A CRM record learnt for an erased lead after its erasure (a try in flight then): the
/// `lead.erased` deliveries not made yet name it too, so the destination deletes it.
pub(super) async fn add_erased_record(
    c: &impl GenericClient,
    lead: LeadId,
    record: &erase::CrmRecord,
    now: OffsetDateTime,
) -> Result<(), Fail> {
    let found = rows(
        c,
        "SELECT id, payload FROM outbox WHERE lead_id = $1 AND event_type = 'lead.erased' AND status <> 'delivered'
         FOR UPDATE",
        &[lead.as_uuid()],
    )
    .await?;
    for row in found {
        let id: String = row.try_get(0)?;
        let Opened(mut payload): Opened<serde_json::Value> = row.try_get(1)?;
        if erase::add_crm_record(&mut payload, record) {
            exec(c, "UPDATE outbox SET payload = $2, updated_at = $3 WHERE id = $1", &[&id, &Sealed(&payload), &now])
                .await?;
        }
    }
    Ok(())
}
