//! CRM feedback in PostgreSQL, as in SQLite. Across instances: the lead is locked
//! (`FOR UPDATE`) before the newest applied feedback is read, so two instances applying
//! feedback to one lead do it one after the other and the second sees the first's event
//! time; two instances receiving the same event both insert it, the unique index refuses
//! the second, whose transaction runs again and replays the first's outcome.

use super::Fail;
use super::apply::apply;
use super::sealing::{Blind, Opened};
use super::sql::{lead_following_merges, limit, opt, rows};
use crate::feedback::{Doc, Row};
use crate::{ReasonCount, StoredFeedback};
use deadpool_postgres::GenericClient;
use leadflow_core::erase::CrmRecord;
use leadflow_core::feedback::record::{self, Candidates, Earlier, Latest};
use leadflow_core::feedback::{Feedback, FeedbackOutcome, FeedbackResult};
use leadflow_core::pipeline::Rules;
use leadflow_core::{FeedbackId, Lead, LeadId};
use time::OffsetDateTime;
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

/// load → replay? → lock the lead, load its feedback → decide → apply, as
/// [`leadflow_core::feedback::record`] lays out.
async fn record_one(
    c: &impl GenericClient,
    fb: &Feedback,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<FeedbackResult, Fail> {
    if let Some(event) = &fb.event_id
        && let Some(replayed) = record::replay(&earlier(c, &fb.source, event).await?)
    {
        return Ok(replayed);
    }
    // Locked before its newest applied feedback is read: see the module's header.
    let lead = match candidates(c, fb).await?.pick() {
        Some(found) => lead_following_merges(c, found.id, true).await?,
        None => None,
    };
    let (latest, waiting) = match &lead {
        Some(lead) => (latest(c, lead.id).await?, waiting(c, fb, lead.id).await?),
        None => (Latest::default(), None),
    };
    let recorded = record::record(fb, lead, latest, waiting, rules, now);
    apply(c, &recorded.changes).await?;
    Ok(recorded.result)
}

/// The rows recorded earlier with this source and event id.
async fn earlier(c: &impl GenericClient, source: &str, event: &str) -> Result<Vec<Earlier>, Fail> {
    let found = rows(
        c,
        "SELECT id, lead_id, outcome, doc FROM feedback WHERE source = $1 AND event_id = $2",
        &[&source, &event],
    )
    .await?;
    let mut out = Vec::with_capacity(found.len());
    for row in found {
        let Opened(doc): Opened<Doc> = row.try_get(3)?;
        let lead = match row.try_get::<_, Option<Uuid>>(1)? {
            Some(id) => lead_following_merges(c, LeadId::from(id), false).await?,
            None => None,
        };
        out.push(Earlier {
            id: FeedbackId::from(row.try_get::<_, Uuid>(0)?),
            outcome: FeedbackOutcome::parse(row.try_get(2)?),
            lead,
            detail: doc.detail,
            allowed: doc.allowed,
        });
    }
    Ok(out)
}

/// The surviving lead each way the feedback names one finds, not locked: only the one
/// the core picks is.
async fn candidates(c: &impl GenericClient, fb: &Feedback) -> Result<Candidates, Fail> {
    let who = &fb.identity;
    let mut found = Candidates::default();
    if let Some(id) = who.lead_id {
        found.by_lead_id = lead_following_merges(c, id, false).await?;
    }
    if let (Some(destination), Some(crm)) = (&who.crm_destination, &who.crm_id) {
        found.by_crm_record =
            by(c, "SELECT lead_id FROM crm_links WHERE destination = $1 AND crm_id = $2", &[destination, crm]).await?;
    }
    if let Some(email) = &who.email {
        found.by_email =
            by(c, "SELECT id FROM leads WHERE email = $1 AND merged_into IS NULL", &[&Blind(email.as_str())]).await?;
    }
    if let Some(external) = &who.external_id {
        found.by_external_id = by(
            c,
            "SELECT id FROM leads WHERE external_id = $1 AND merged_into IS NULL ORDER BY id LIMIT 1",
            &[&Blind(external)],
        )
        .await?;
    }
    Ok(found)
}

async fn by(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Lead>, Fail> {
    match opt(c, sql, params).await? {
        Some(row) => lead_following_merges(c, LeadId::from(row.try_get::<_, Uuid>(0)?), false).await,
        None => Ok(None),
    }
}

/// When the newest status and owner feedback applied to the lead happened.
async fn latest(c: &impl GenericClient, lead: LeadId) -> Result<Latest, Fail> {
    let latest = |condition: &'static str| async move {
        let sql = format!(
            "SELECT max(occurred_at) FROM feedback
             WHERE lead_id = $1 AND outcome IN ('applied', 'unchanged') AND {condition}"
        );
        let row = super::sql::one(c, &sql, &[lead.as_uuid()]).await?;
        Ok::<_, Fail>(row.try_get::<_, Option<OffsetDateTime>>(0)?)
    };
    Ok(Latest { status: latest("status IS NOT NULL").await?, owner: latest("has_owner").await? })
}

/// The lead's newest feedback from `fb`'s source refused for want of a reason, when the
/// core asks for it.
async fn waiting(c: &impl GenericClient, fb: &Feedback, lead: LeadId) -> Result<Option<Feedback>, Fail> {
    let Some(before) = record::waiting_before(fb) else { return Ok(None) };
    let found = opt(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
         WHERE lead_id = $1 AND source = $2 AND outcome = 'reason_required' AND occurred_at <= $3
         ORDER BY occurred_at DESC, id DESC LIMIT 1",
        &[lead.as_uuid(), &fb.source, &before],
    )
    .await?;
    found.map(|r| Ok(row(&r)?.into_stored().feedback)).transpose()
}

/// Links the record and settles the feedback that waited for it, as the core decides,
/// with the lead locked; returns how many items were settled.
pub(super) async fn link(
    c: &impl GenericClient,
    destination: &str,
    crm_id: &str,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<u64, Fail> {
    // The lead first, as recording feedback locks it: the two never wait on each other
    // in opposite orders.
    let lead = lead_following_merges(c, lead_id, true).await?;
    let latest = match &lead {
        Some(lead) => latest(c, lead.id).await?,
        None => Latest::default(),
    };
    let found = rows(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
         WHERE outcome = 'unmatched' AND crm_record = $1
         ORDER BY occurred_at, id
         FOR UPDATE",
        &[&Blind(record_key(destination, crm_id))],
    )
    .await?;
    let waiting = found.iter().map(|r| Ok(row(r)?.into_stored().feedback)).collect::<Result<_, Fail>>()?;
    let record = CrmRecord { destination: destination.to_owned(), crm_id: crm_id.to_owned() };
    let (settled, changes) = record::link(&record, lead_id, lead, latest, waiting, rules, now);
    apply(c, &changes).await?;
    Ok(settled)
}

/// The CRM record a feedback event names, as its `crm_record` column holds it (the
/// migration that added the column writes the same).
pub(super) fn crm_record(fb: &leadflow_core::feedback::Feedback) -> Option<String> {
    Some(record_key(fb.identity.crm_destination.as_deref()?, fb.identity.crm_id.as_deref()?))
}

fn record_key(destination: &str, crm_id: &str) -> String {
    format!("{destination}\n{crm_id}")
}

/// A stored row, read back.
pub(super) fn row(r: &tokio_postgres::Row) -> Result<Row, Fail> {
    let Opened(doc): Opened<Doc> = r.try_get(8)?;
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
           AND NOT l.test
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
