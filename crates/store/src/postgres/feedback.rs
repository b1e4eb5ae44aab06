//! CRM feedback in PostgreSQL, as in SQLite. Across instances: the lead is locked
//! (`FOR UPDATE`) before the newest applied feedback is read, so two instances applying
//! feedback to one lead do it one after the other and the second sees the first's event
//! time; two instances receiving the same event both insert it, the unique index refuses
//! the second, whose transaction runs again and replays the first's outcome.

use super::Fail;
use super::sql::{exec, lead_following_merges, limit, opt, rows};
use crate::feedback::{Doc, FINAL_OUTCOMES, Row, completion, decide, only_reason};
use crate::{ReasonCount, StoredFeedback};
use deadpool_postgres::GenericClient;
use leadflow_domain::changes;
use leadflow_domain::erase::CrmRecord;
use leadflow_domain::feedback::{Feedback, FeedbackOutcome, FeedbackResult};
use leadflow_domain::pipeline::Rules;
use leadflow_domain::{FeedbackId, Lead, LeadId};
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

pub(super) async fn record(
    c: &impl GenericClient,
    items: &[Feedback],
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<FeedbackResult>, Fail> {
    let mut out = Vec::with_capacity(items.len());
    for fb in items {
        out.push(record_one(c, fb, rules, now).await?);
    }
    Ok(out)
}

async fn record_one(
    c: &impl GenericClient,
    fb: &Feedback,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<FeedbackResult, Fail> {
    if let Some(event) = &fb.event_id {
        let sql = format!(
            "SELECT id, lead_id, outcome, doc FROM feedback WHERE source = $1 AND event_id = $2 AND outcome IN {FINAL_OUTCOMES}"
        );
        if let Some(row) = opt(c, &sql, &[&fb.source, event]).await? {
            let Json(doc): Json<Doc> = row.try_get(3)?;
            let lead = match row.try_get::<_, Option<Uuid>>(1)? {
                Some(id) => lead_following_merges(c, LeadId::from(id), false).await?,
                None => None,
            };
            let outcome: String = row.try_get(2)?;
            return Ok(FeedbackResult {
                id: FeedbackId::from(row.try_get::<_, Uuid>(0)?),
                outcome: FeedbackOutcome::parse(&outcome).unwrap_or(FeedbackOutcome::Ignored),
                lead_id: lead.as_ref().map(|l| l.id),
                stage: lead.map(|l| l.lifecycle_stage),
                detail: doc.detail,
                allowed: doc.allowed,
                replayed: true,
            });
        }
    }
    let lead = find_lead(c, fb).await?;
    if let Some(erased) = lead.as_ref().filter(|l| l.erased_at.is_some()) {
        // Nothing is applied to a tombstone, and nothing the CRM sent about it is kept.
        let result = crate::feedback::erased(fb, erased);
        insert(c, fb, &result, Doc::new(fb, &result).erased()).await?;
        return Ok(result);
    }
    let completed = match &lead {
        Some(l) if only_reason(fb) => complete_waiting(c, fb, l.id, rules, now).await?,
        _ => None,
    };
    let result = match completed {
        Some(result) => result,
        None => settle(c, fb, lead, rules, now).await?,
    };
    insert(c, fb, &result, Doc::new(fb, &result)).await?;
    Ok(result)
}

async fn insert(c: &impl GenericClient, fb: &Feedback, result: &FeedbackResult, doc: Doc) -> Result<(), Fail> {
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
    Ok(())
}

/// Gives `fb`'s reason to the lead's latest feedback from the same source that was
/// refused for want of one (and is not older than a status applied since), settles it
/// again and updates its row. `None` when nothing waits for a reason. The lead is locked.
async fn complete_waiting(
    c: &impl GenericClient,
    fb: &Feedback,
    lead: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<FeedbackResult>, Fail> {
    let found = opt(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback f
         WHERE lead_id = $1 AND source = $2 AND outcome = 'reason_required' AND occurred_at <= $3
           AND occurred_at >= coalesce((SELECT max(occurred_at) FROM feedback WHERE lead_id = $1
               AND outcome IN ('applied', 'unchanged') AND status IS NOT NULL), f.occurred_at)
         ORDER BY occurred_at DESC, id DESC LIMIT 1",
        &[lead.as_uuid(), &fb.source, &fb.occurred_at],
    )
    .await?;
    let Some(found) = found else { return Ok(None) };
    let mut waiting = row(&found)?.into_stored().feedback;
    waiting.reason.clone_from(&fb.reason);
    let settled = settle(c, &waiting, lead_following_merges(c, lead, true).await?, rules, now).await?;
    exec(
        c,
        "UPDATE feedback SET outcome = $2, doc = $3 WHERE id = $1",
        &[waiting.id.as_uuid(), &settled.outcome.as_str(), &Json(Doc::new(&waiting, &settled))],
    )
    .await?;
    Ok(Some(completion(fb, &waiting, &settled)))
}

/// Applies feedback to `lead` (if found, and locked) and says what became of it; the
/// caller stores the row.
async fn settle(
    c: &impl GenericClient,
    fb: &Feedback,
    lead: Option<Lead>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<FeedbackResult, Fail> {
    let mut result = FeedbackResult {
        id: fb.id,
        outcome: FeedbackOutcome::Unmatched,
        lead_id: None,
        stage: None,
        detail: None,
        allowed: Vec::new(),
        replayed: false,
    };
    let Some(mut lead) = lead else {
        result.detail = Some("no lead matches".into());
        return Ok(result);
    };
    let latest = |condition: &'static str| {
        let id = *lead.id.as_uuid();
        async move {
            let sql = format!(
                "SELECT max(occurred_at) FROM feedback
                 WHERE lead_id = $1 AND outcome IN ('applied', 'unchanged') AND {condition}"
            );
            let row = super::sql::one(c, &sql, &[&id]).await?;
            Ok::<_, Fail>(row.try_get::<_, Option<OffsetDateTime>>(0)?)
        }
    };
    let latest_status = latest("status IS NOT NULL").await?;
    let latest_owner = latest("has_owner").await?;
    let expected = lead.version;
    let decision = decide(&mut lead, fb, rules, latest_status, latest_owner, now);
    if !decision.changes.is_empty() {
        lead.version += 1;
        super::apply::apply(c, &changes::updated(&lead, expected, decision.changes, rules, now)).await?;
    }
    if fb.status.is_some() || fb.owner.is_some() {
        super::routing::taken_up(c, lead.id, lead.owner.as_deref()).await?;
    }
    result.outcome = decision.outcome;
    result.detail = decision.detail;
    result.allowed = decision.allowed;
    result.stage = Some(lead.lifecycle_stage.clone());
    result.lead_id = Some(lead.id);
    Ok(result)
}

/// The surviving lead feedback names, locked: by lead id, CRM record id, email, external id.
async fn find_lead(c: &impl GenericClient, fb: &Feedback) -> Result<Option<Lead>, Fail> {
    let who = &fb.identity;
    if let Some(id) = who.lead_id
        && let Some(lead) = lead_following_merges(c, id, true).await?
    {
        return Ok(Some(lead));
    }
    let mut found: Option<Uuid> = None;
    if let (Some(destination), Some(crm)) = (&who.crm_destination, &who.crm_id) {
        let row =
            opt(c, "SELECT lead_id FROM crm_links WHERE destination = $1 AND crm_id = $2", &[destination, crm]).await?;
        found = row.map(|r| r.try_get(0)).transpose()?;
    }
    if found.is_none()
        && let Some(email) = &who.email
    {
        let row = opt(c, "SELECT id FROM leads WHERE email = $1 AND merged_into IS NULL", &[&email.as_str()]).await?;
        found = row.map(|r| r.try_get(0)).transpose()?;
    }
    if found.is_none()
        && let Some(external) = &who.external_id
    {
        let row = opt(
            c,
            "SELECT id FROM leads WHERE external_id = $1 AND merged_into IS NULL ORDER BY id LIMIT 1",
            &[external],
        )
        .await?;
        found = row.map(|r| r.try_get(0)).transpose()?;
    }
    match found {
        Some(id) => lead_following_merges(c, LeadId::from(id), true).await,
        None => Ok(None),
    }
}

/// Links the record and applies the feedback that waited for it (unmatched, naming this
/// record), oldest first, with the lead locked; returns how many items were settled.
pub(super) async fn link(
    c: &impl GenericClient,
    destination: &str,
    crm_id: &str,
    lead: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<u64, Fail> {
    exec(
        c,
        "INSERT INTO crm_links (destination, crm_id, lead_id, linked_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (destination, crm_id) DO UPDATE SET lead_id = excluded.lead_id, linked_at = excluded.linked_at",
        &[&destination, &crm_id, lead.as_uuid(), &now],
    )
    .await?;
    // The lead first, as recording feedback locks it: the two never wait on each other
    // in opposite orders.
    let Some(found) = lead_following_merges(c, lead, true).await? else {
        return Ok(0);
    };
    if found.erased_at.is_some() {
        // A try in flight when the lead was erased made this record: its erasure must
        // reach it too. Nothing waiting is applied to a tombstone.
        let record = CrmRecord { destination: destination.to_owned(), crm_id: crm_id.to_owned() };
        super::outbox::add_erased_record(c, found.id, &record, now).await?;
        return Ok(0);
    }
    let waiting = rows(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
         WHERE outcome = 'unmatched' AND doc -> 'identity' ->> 'crm_destination' = $1
           AND doc -> 'identity' ->> 'crm_id' = $2
         ORDER BY occurred_at, id
         FOR UPDATE",
        &[&destination, &crm_id],
    )
    .await?;
    let mut settled = 0;
    for r in &waiting {
        let fb = row(r)?.into_stored().feedback;
        let found = lead_following_merges(c, lead, true).await?;
        let result = settle(c, &fb, found, rules, now).await?;
        exec(
            c,
            "UPDATE feedback SET lead_id = $2, outcome = $3, doc = $4 WHERE id = $1",
            &[
                fb.id.as_uuid(),
                &result.lead_id.map(|l| *l.as_uuid()),
                &result.outcome.as_str(),
                &Json(Doc::new(&fb, &result)),
            ],
        )
        .await?;
        settled += 1;
    }
    Ok(settled)
}

/// A stored row, read back.
fn row(r: &tokio_postgres::Row) -> Result<Row, Fail> {
    let Json(doc): Json<Doc> = r.try_get(8)?;
    Ok(Row {
        id: FeedbackId::from(r.try_get::<_, Uuid>(0)?),
        source: r.try_get(1)?,
        event_id: r.try_get(2)?,
        lead_id: r.try_get::<_, Option<Uuid>>(3)?.map(LeadId::from),
        status: r.try_get(4)?,
        outcome: r.try_get(5)?,
        occurred_at: r.try_get(6)?,
        received_at: r.try_get(7)?,
        doc,
    })
}

pub(super) async fn list(
    c: &impl GenericClient,
    source: Option<&str>,
    after: Option<FeedbackId>,
    n: usize,
) -> Result<Vec<StoredFeedback>, Fail> {
    let after = after.map(|a| *a.as_uuid());
    rows(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
         WHERE ($1::text IS NULL OR source = $1) AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        &[&source, &after, &limit(n)],
    )
    .await?
    .iter()
    .map(|r| Ok(row(r)?.into_stored()))
    .collect()
}

pub(super) async fn report_disqualifications(
    c: &impl GenericClient,
    from: OffsetDateTime,
    to: OffsetDateTime,
    stage: &str,
) -> Result<Vec<ReasonCount>, Fail> {
    // `COLLATE "C"`: the order SQLite gives, whatever the database's collation.
    let sql = "SELECT l.source, l.campaign, s.reason, count(DISTINCT s.lead_id)
         FROM stage_changes s JOIN leads l ON l.id = s.lead_id
         WHERE s.to_stage = $1 AND s.at >= $2 AND s.at < $3 AND l.source IS NOT NULL
           AND l.doc -> 'custom' -> 'test' IS DISTINCT FROM 'true'::jsonb
         GROUP BY 1, 2, 3
         ORDER BY 4 DESC, l.source COLLATE \"C\", l.campaign COLLATE \"C\" NULLS FIRST, s.reason COLLATE \"C\" NULLS FIRST";
    rows(c, sql, &[&stage, &from, &to])
        .await?
        .iter()
        .map(|r| {
            Ok(ReasonCount {
                source: r.try_get(0)?,
                campaign: r.try_get(1)?,
                reason: r.try_get(2)?,
                leads: r.try_get::<_, i64>(3)?.unsigned_abs(),
            })
        })
        .collect()
}
