//! The outbox in SQLite: rows written beside the lead change that caused them, claimed
//! with a lease by the delivery worker, and the tries recorded with them. Writes run in
//! the writer's transaction; reads on a read connection.

use super::{from_millis, millis};
use crate::{AttemptRecord, DeliveryAttempt, DeliveryResult, DeliveryStatus, OutboxDelivery, ReplayFilter, StoreError};
use leadflow_core::LeadId;
use leadflow_core::changes::Delivery;
use leadflow_core::erase;
use leadflow_core::health::Tally;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

pub(super) fn insert(conn: &Connection, d: &Delivery) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, destination, lead_id, event_type, payload, occurred_at, status, attempts,
                             next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, lf_seal(?5), ?6, 'pending', 0, ?6, ?6, ?6)",
    )?
    .execute(params![d.id, d.destination, d.lead.to_string(), d.event_type, &*d.payload, millis(d.at)])?;
    Ok(())
}

pub(super) fn retry_needs_data(
    conn: &Connection,
    lead: LeadId,
    destination: &str,
    payload: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET status = 'pending', payload = lf_seal(?3), attempts = 0, next_attempt_at = ?4, updated_at = ?4
         WHERE lead_id = ?1 AND destination = ?2 AND status = 'needs_data'",
    )?
    .execute(params![lead.to_string(), destination, payload, millis(at)])?;
    Ok(())
}

/// The lead's consent changed: deliveries held for consent go again, and those waiting
/// carry the lead as it now stands (each is checked against the consent it is tried with).
/// An erasure's delivery carries ids only and is left as it is.
pub(super) fn release_consent(
    conn: &Connection,
    lead: LeadId,
    payload: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET payload = lf_seal(?2), updated_at = ?3,
             next_attempt_at = CASE WHEN status = 'blocked_consent' THEN ?3 ELSE next_attempt_at END,
             status = 'pending'
         WHERE lead_id = ?1 AND status IN ('pending', 'blocked_consent') AND event_type <> 'lead.erased'",
    )?
    .execute(params![lead.to_string(), payload, millis(at)])?;
    Ok(())
}

const COLUMNS: &str = "id, destination, lead_id, event_type, lf_open(payload), status, attempts, next_attempt_at,
    last_status, lf_open(last_error), lf_open(last_response), created_at, updated_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<OutboxDelivery, StoreError>> {
    let (id, destination, lead_id, event_type, payload, status): (String, String, String, String, String, String) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
    let (attempts, next, last_status): (i64, i64, Option<i64>) = (r.get(6)?, r.get(7)?, r.get(8)?);
    let (last_error, last_response): (Option<String>, Option<String>) = (r.get(9)?, r.get(10)?);
    let (created, updated): (i64, i64) = (r.get(11)?, r.get(12)?);
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("delivery {id}: {what}"));
        Ok(OutboxDelivery {
            lead_id: lead_id.parse().map_err(|_| corrupt("lead id"))?,
            status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            payload: serde_json::from_str(&payload)?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            next_attempt_at: from_millis(next),
            last_status: last_status.and_then(|s| u16::try_from(s).ok()),
            last_error,
            last_response,
            created_at: from_millis(created),
            updated_at: from_millis(updated),
            id,
            destination,
            event_type,
        })
    })())
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Result<OutboxDelivery, StoreError>>>,
) -> Result<Vec<OutboxDelivery>, StoreError> {
    rows.map(|r| r?).collect()
}

pub(super) fn claim(
    conn: &Connection,
    limit: usize,
    lease: std::time::Duration,
    now: OffsetDateTime,
) -> Result<Vec<OutboxDelivery>, StoreError> {
    let at = millis(now);
    let until = millis(now + lease);
    // Per-lead ordering: a row waits while an earlier row of its lead and destination is
    // pending, claimed or not. Dead and needs-data rows do not hold the later ones back.
    let claimed = collect(
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox o
             WHERE status = 'pending' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
               AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.lead_id = o.lead_id AND e.destination = o.destination
                               AND e.seq < o.seq AND e.status = 'pending')
             ORDER BY next_attempt_at, seq LIMIT ?2"
        ))?
        .query_map(params![at, i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?,
    )?;
    let mut lease_row = conn.prepare_cached("UPDATE outbox SET lease_until = ?2 WHERE id = ?1")?;
    for d in &claimed {
        lease_row.execute(params![d.id, until])?;
    }
    Ok(claimed)
}

pub(super) fn record(conn: &Connection, a: &DeliveryAttempt) -> Result<(), StoreError> {
    let at = millis(a.at);
    let status = a.status.map(i64::from);
    let (new_status, next, tried, label) = match &a.result {
        DeliveryResult::Delivered => ("delivered", at, true, "delivered"),
        DeliveryResult::Retry { at: when } => ("pending", millis(*when), true, "retry"),
        DeliveryResult::Dead => ("dead", at, true, "dead"),
        DeliveryResult::NeedsData { .. } => ("needs_data", at, false, "needs_data"),
        DeliveryResult::BlockedConsent { .. } => ("blocked_consent", at, false, "blocked_consent"),
        DeliveryResult::Deferred { at: when } => {
            // Nothing was sent: only the due time moves.
            conn.prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?2, lease_until = NULL, updated_at = ?3
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![a.delivery_id, millis(*when), at])?;
            return Ok(());
        }
    };
    let error = match &a.result {
        DeliveryResult::NeedsData { missing } => Some(format!("missing: {}", missing.join(", "))),
        DeliveryResult::BlockedConsent { missing } => Some(format!("consent missing: {}", missing.join(", "))),
        _ => a.error.clone(),
    };
    let changed: Option<(String, i64, String)> = conn
        .prepare_cached(
            "UPDATE outbox SET status = ?2, attempts = attempts + ?3, next_attempt_at = ?4, lease_until = NULL,
                 last_status = coalesce(?5, last_status), last_error = lf_seal(?6),
                 last_response = coalesce(lf_seal(?7), last_response), updated_at = ?8
             WHERE id = ?1 AND status = 'pending'
             RETURNING destination, created_at, lead_id",
        )?
        .query_row(params![a.delivery_id, new_status, i64::from(tried), next, status, error, a.response, at], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((destination, created_at, lead)) = changed else {
        // Replayed or finished by someone else meanwhile: this try is stale.
        return Ok(());
    };
    if let Ok(lead) = lead.parse() {
        let outcome = leadflow_core::feed::delivery_outcome(new_status, &a.delivery_id, &destination, lead, a.at);
        super::feed::append(conn, outcome.as_slice())?;
    }
    if let Some(counted) = crate::counted_attempt(a, from_millis(created_at)) {
        let mut tally = Tally::default();
        tally.attempt(&destination, counted, a.at);
        super::health::write(conn, &tally)?;
    }
    conn.prepare_cached(
        "INSERT INTO delivery_attempts (delivery_id, attempt, outcome, at, status, error, request, response, duration_ms)
         SELECT id, attempts, ?2, ?3, ?4, lf_seal(?5), lf_seal(?6), lf_seal(?7), ?8 FROM outbox WHERE id = ?1",
    )?
    .execute(params![
        a.delivery_id,
        label,
        at,
        status,
        error,
        a.request,
        a.response,
        i64::try_from(a.duration_ms).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

pub(super) fn next_due(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let due: Option<i64> = conn
        .prepare_cached(
            "SELECT min(max(next_attempt_at, coalesce(lease_until, 0))) FROM outbox WHERE status = 'pending'",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(due.map(from_millis))
}

pub(super) fn list(
    conn: &Connection,
    status: DeliveryStatus,
    destination: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<OutboxDelivery>, StoreError> {
    collect(
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox
             WHERE status = ?1 AND (?2 IS NULL OR destination = ?2)
               AND seq > coalesce((SELECT seq FROM outbox WHERE id = ?3), 0)
             ORDER BY seq LIMIT ?4"
        ))?
        .query_map(params![status.as_str(), destination, after, i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?,
    )
}

/// A lead's deliveries, oldest first, each with its tries (by the outbox's lead index).
pub(super) fn of_lead(
    conn: &Connection,
    lead: LeadId,
    limit: usize,
) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM outbox WHERE lead_id = ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![lead.to_string(), i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(get(conn, &id)?);
    }
    Ok(out)
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
    let Some(found) = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
    else {
        return Ok(None);
    };
    let delivery = found?;
    let attempts = conn
        .prepare_cached(
            "SELECT attempt, outcome, at, status, lf_open(error), lf_open(request), lf_open(response), duration_ms
             FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY id",
        )?
        .query_map([id], |r| {
            Ok(AttemptRecord {
                attempt: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                outcome: r.get(1)?,
                at: from_millis(r.get(2)?),
                status: r.get::<_, Option<i64>>(3)?.and_then(|s| u16::try_from(s).ok()),
                error: r.get(4)?,
                request: r.get(5)?,
                response: r.get(6)?,
                duration_ms: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some((delivery, attempts)))
}

pub(super) fn replay_one(
    conn: &Connection,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<OutboxDelivery>, StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2, lease_until = NULL, updated_at = ?2
         WHERE id = ?1 AND status IN ('dead', 'needs_data')",
    )?
    .execute(params![id, millis(now)])?;
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .transpose()
}

pub(super) fn replay_many(conn: &Connection, filter: &ReplayFilter, now: OffsetDateTime) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?1, lease_until = NULL, updated_at = ?1
             WHERE status = 'dead' AND (?2 IS NULL OR destination = ?2)
               AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)",
        )?
        .execute(params![millis(now), filter.destination, filter.from.map(millis), filter.to.map(millis)])?;
    Ok(n as u64)
}

/// A CRM record learnt for an erased lead after its erasure (a try in flight then): the
/// `lead.erased` deliveries not made yet name it too, so the destination deletes it.
pub(super) fn add_erased_record(
    conn: &Connection,
    lead: LeadId,
    record: &erase::CrmRecord,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT id, lf_open(payload) FROM outbox WHERE lead_id = ?1 AND event_type = 'lead.erased' AND status <> 'delivered'",
        )?
        .query_map([lead.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, payload) in rows {
        let mut payload: serde_json::Value = serde_json::from_str(&payload)?;
        if erase::add_crm_record(&mut payload, record) {
            conn.prepare_cached("UPDATE outbox SET payload = lf_seal(?2), updated_at = ?3 WHERE id = ?1")?
                .execute(params![id, serde_json::to_string(&payload)?, millis(now)])?;
        }
    }
    Ok(())
}
