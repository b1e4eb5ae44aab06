//! Applies the core's [`Change`]s in PostgreSQL, inside the caller's transaction: one
//! statement per change (a lead also replaces its match keys), sent pipelined. Nothing
//! here decides.

use super::Fail;
use crate::StoreError;
use crate::feedback::Doc;
use deadpool_postgres::GenericClient;
use futures_util::future::try_join_all;
use leadflow_core::changes::{Change, LeadIndex};
use leadflow_core::erase;
use leadflow_core::pipeline::HistoryEntry;
use leadflow_core::{Email, Lead, LeadId, SubmissionId};
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

/// Applies the changes in order, pipelined: every statement is prepared (cached per
/// connection), then all are sent without waiting for each answer, so a capture's dozen
/// writes cost one round trip rather than twelve. The server runs them in the order sent.
pub(super) async fn apply(c: &impl GenericClient, changes: &[Change]) -> Result<(), Fail> {
    apply_with(c, changes, |_| None).await
}

/// [`apply`], with `instead` giving the op for a change the caller writes its own way.
pub(super) async fn apply_with<'a>(
    c: &impl GenericClient,
    changes: &'a [Change],
    instead: impl Fn(&'a Change) -> Option<Op<'a>>,
) -> Result<(), Fail> {
    let mut ops = Vec::new();
    for change in changes {
        if let Some(op) = instead(change) {
            ops.push(op);
            continue;
        }
        match change {
            Change::ErasedCrmRecord { lead, record, at } => {
                run(c, std::mem::take(&mut ops)).await?;
                super::outbox::add_erased_record(c, *lead, record, *at).await?;
            }
            other => ops.extend(ops_of(other)),
        }
    }
    run(c, ops).await
}

/// One statement with its parameters, borrowed from the change it comes from.
pub(super) struct Op<'a> {
    sql: &'static str,
    params: Vec<Param<'a>>,
    /// A lead updated at the version it was read with must change exactly one row.
    conflict_unless_one: Option<LeadId>,
}

pub(super) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

impl<'a> Op<'a> {
    pub(super) fn new(sql: &'static str, params: Vec<Param<'a>>) -> Self {
        Self { sql, params, conflict_unless_one: None }
    }
}

pub(super) async fn run(c: &impl GenericClient, ops: Vec<Op<'_>>) -> Result<(), Fail> {
    let mut statements = Vec::with_capacity(ops.len());
    for op in &ops {
        statements.push(c.prepare_cached(op.sql).await?);
    }
    let sent = ops.iter().zip(&statements).map(|(op, statement)| {
        let params: Vec<&(dyn ToSql + Sync)> = op.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        async move { c.execute(statement, &params).await }
    });
    let counts = try_join_all(sent).await?;
    for (op, n) in ops.iter().zip(counts) {
        if let Some(lead) = op.conflict_unless_one.filter(|_| n != 1) {
            return Err(StoreError::Conflict(format!("lead {lead} changed concurrently")).into());
        }
    }
    Ok(())
}

pub(super) fn p<'a>(value: impl ToSql + Sync + Send + 'a) -> Param<'a> {
    Box::new(value)
}

fn ops_of(change: &Change) -> Vec<Op<'_>> {
    let op = Op::new;
    match change {
        Change::Lead { lead, expected, index } => lead_ops(lead, *expected, index),
        Change::MergedAway { lead, into, at } => vec![
            op(
                "UPDATE leads SET merged_into = $2, updated_at = $3 WHERE id = $1",
                vec![p(lead.as_uuid()), p(into.as_uuid()), p(at)],
            ),
            op("DELETE FROM lead_keys WHERE lead_id = $1", vec![p(lead.as_uuid())]),
        ],
        Change::Unmerged { lead, at } => {
            vec![op(
                "UPDATE leads SET merged_into = NULL, updated_at = $2 WHERE id = $1",
                vec![p(lead.as_uuid()), p(at)],
            )]
        }
        Change::Index { lead, index } => keys_op(*lead, index).into_iter().collect(),
        Change::History { entry, submission } => vec![history_op(entry, *submission)],
        Change::Processed { submission, lead, outcome } => vec![op(
            "UPDATE submissions SET status = 'processed', lead_id = $2, outcome = $3, error = NULL WHERE id = $1",
            vec![p(submission.as_uuid()), p(lead.as_uuid()), p(outcome.as_str())],
        )],
        Change::Touchpoint { lead, touch } => vec![op(
            "INSERT INTO touchpoints (lead_id, at, doc) VALUES ($1, $2, $3)",
            vec![p(lead.as_uuid()), p(touch.at), p(Json(&**touch))],
        )],
        Change::Visitor { anonymous_id, lead } => vec![op(
            "INSERT INTO lead_visitors (anonymous_id, lead_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![p(anonymous_id), p(lead.as_uuid())],
        )],
        Change::AttachEvents { lead, events } => {
            let ids: Vec<Uuid> = events.iter().map(|e| *e.as_uuid()).collect();
            vec![op(
                "UPDATE events SET lead_id = $1 WHERE id = ANY($2) AND lead_id IS NULL",
                vec![p(lead.as_uuid()), p(ids)],
            )]
        }
        Change::StageChange { lead, from, to, at, actor, reason } => vec![op(
            "INSERT INTO stage_changes (lead_id, from_stage, to_stage, at, actor, reason) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![p(lead.as_uuid()), p(from), p(to), p(at), p(actor), p(reason)],
        )],
        Change::Review { id, lead, candidate, score, evidence, at } => vec![op(
            "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
             VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT DO NOTHING",
            vec![p(id.as_uuid()), p(lead.as_uuid()), p(candidate.as_uuid()), p(score), p(Json(evidence)), p(at)],
        )],
        Change::Account(account) => super::accounts::insert_ops(account),
        Change::AccountKeys { account, keys } => super::accounts::insert_keys_op(*account, keys).into_iter().collect(),
        Change::Delivery(d) => vec![op(
            "INSERT INTO outbox (id, destination, lead_id, event_type, payload, occurred_at, status, attempts,
                                 next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, 'pending', 0, $6, $6, $6)",
            vec![p(&d.id), p(&d.destination), p(d.lead.as_uuid()), p(&d.event_type), p(&*d.payload), p(d.at)],
        )],
        Change::RetryNeedsData { lead, destination, payload, at } => vec![op(
            "UPDATE outbox SET status = 'pending', payload = $3::text::jsonb, attempts = 0, next_attempt_at = $4,
                updated_at = $4
             WHERE lead_id = $1 AND destination = $2 AND status = 'needs_data'",
            vec![p(lead.as_uuid()), p(destination), p(&**payload), p(at)],
        )],
        Change::QueueRouting { lead, trigger, source, at } => vec![op(
            "INSERT INTO routing_queue (lead_id, trigger, source, queued_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (lead_id) DO NOTHING",
            vec![p(lead.as_uuid()), p(trigger.as_str()), p(source), p(at)],
        )],
        // Routing
        Change::RoutingPosition { queue, position } => vec![op(
            "INSERT INTO routing_positions (queue, position) VALUES ($1, $2)
             ON CONFLICT (queue) DO UPDATE SET position = excluded.position",
            vec![p(queue), p(i64::try_from(*position).unwrap_or(0))],
        )],
        Change::AssignedToday { rep, day } => vec![op(
            "INSERT INTO routing_daily (rep, day, assigned) VALUES ($1, $2, 1)
             ON CONFLICT (rep, day) DO UPDATE SET assigned = routing_daily.assigned + 1",
            vec![p(rep), p(day.to_string())],
        )],
        Change::AccountOwner { account, owner, at } => vec![op(
            "UPDATE accounts SET owner = $1, updated_at = $2 WHERE id = $3 AND owner IS NULL",
            vec![p(owner), p(at), p(account.as_uuid())],
        )],
        Change::Assignment { lead, assignment: a, at } => vec![op(
            "INSERT INTO assignments (lead_id, owner, rule, source, stage, assigned_at, sla_due_at, tried)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (lead_id) DO UPDATE SET owner = excluded.owner, rule = excluded.rule,
                 source = excluded.source, stage = excluded.stage, assigned_at = excluded.assigned_at,
                 sla_due_at = excluded.sla_due_at, tried = excluded.tried",
            vec![
                p(lead.as_uuid()),
                p(&a.owner),
                p(&a.rule),
                p(&a.source),
                p(&a.stage),
                p(at),
                p(a.sla_due_at),
                p(Json(&a.tried)),
            ],
        )],
        Change::SlaStopped { lead, owner } => vec![op(
            "UPDATE assignments SET sla_due_at = NULL, owner = coalesce($2, owner) WHERE lead_id = $1",
            vec![p(lead.as_uuid()), p(owner)],
        )],
        // Events and feedback
        Change::Event(new) => {
            let event = &new.event;
            vec![op(
                "INSERT INTO events (id, source, idempotency_key, lead_id, email, external_id, anonymous_id, kind, occurred_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                vec![
                    p(event.id.as_uuid()),
                    p(new.source.as_str()),
                    p(new.idempotency_key.as_ref().map(|k| k.as_str())),
                    p(event.lead_id.map(|l| *l.as_uuid())),
                    p(&event.identity.email),
                    p(&event.identity.external_id),
                    p(&event.identity.anonymous_id),
                    p(&event.kind),
                    p(event.occurred_at),
                    p(Json(event)),
                ],
            )]
        }
        Change::DropEvent { event } => vec![op("DELETE FROM events WHERE id = $1", vec![p(event.as_uuid())])],
        Change::Feedback { feedback: fb, result, scrubbed } => {
            let doc = if *scrubbed { Doc::new(&erase::scrub_feedback(fb), result) } else { Doc::new(fb, result) };
            vec![op(
                "INSERT INTO feedback (id, source, event_id, lead_id, status, has_owner, outcome, occurred_at, received_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                vec![
                    p(fb.id.as_uuid()),
                    p(&fb.source),
                    p(&fb.event_id),
                    p(result.lead_id.map(|l| *l.as_uuid())),
                    p(fb.status.map(|s| s.as_str())),
                    p(fb.owner.is_some()),
                    p(result.outcome.as_str()),
                    p(fb.occurred_at),
                    p(fb.received_at),
                    p(Json(doc)),
                ],
            )]
        }
        Change::FeedbackSettled { feedback: fb, result } => vec![op(
            "UPDATE feedback SET lead_id = $2, outcome = $3, doc = $4 WHERE id = $1",
            vec![
                p(fb.id.as_uuid()),
                p(result.lead_id.map(|l| *l.as_uuid())),
                p(result.outcome.as_str()),
                p(Json(Doc::new(fb, result))),
            ],
        )],
        Change::CrmLink { record, lead, at } => vec![op(
            "INSERT INTO crm_links (destination, crm_id, lead_id, linked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (destination, crm_id) DO UPDATE SET lead_id = excluded.lead_id, linked_at = excluded.linked_at",
            vec![p(&record.destination), p(&record.crm_id), p(lead.as_uuid()), p(at)],
        )],
        // A read and a rewrite of the erased delivery's payload: `apply` runs it in place.
        Change::ErasedCrmRecord { .. } => Vec::new(),
        Change::Erase(write) => super::erase::ops(write),
    }
}

fn lead_ops<'a>(lead: &'a Lead, expected: Option<u64>, index: &'a LeadIndex) -> Vec<Op<'a>> {
    let email = lead.fields.email.as_ref().map(Email::as_str);
    let account = lead.account_id.map(|a| *a.as_uuid());
    let (original, latest) = (&lead.attribution.original, &lead.attribution.latest);
    let version = i64::try_from(lead.version).unwrap_or(i64::MAX);
    let columns = || -> Vec<Param<'a>> {
        vec![
            p(lead.id.as_uuid()),
            p(email),
            p(version),
            p(lead.updated_at),
            p(Json(lead)),
            p(account),
            p(&lead.fields.external_id),
            p(&lead.lifecycle_stage),
            p(original.source.as_str()),
            p(&original.utm_campaign),
            p(latest.source.as_str()),
            p(&latest.utm_campaign),
            p(&index.email_key),
        ]
    };
    let mut ops = match expected {
        None => {
            let mut params = columns();
            params.push(p(lead.created_at));
            vec![Op::new(
                "INSERT INTO leads (id, email, version, updated_at, doc, account_id, external_id, stage, source,
                                    campaign, latest_source, latest_campaign, email_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                params,
            )]
        }
        Some(expected) => {
            let mut params = columns();
            params.push(p(i64::try_from(expected).unwrap_or(i64::MAX)));
            let update = Op {
                sql: "UPDATE leads SET email = $2, version = $3, updated_at = $4, doc = $5, account_id = $6,
                        external_id = $7, stage = $8, source = $9, campaign = $10, latest_source = $11,
                        latest_campaign = $12, email_key = $13
                     WHERE id = $1 AND version = $14 AND merged_into IS NULL",
                params,
                conflict_unless_one: Some(lead.id),
            };
            vec![update, Op::new("DELETE FROM lead_keys WHERE lead_id = $1", vec![p(lead.id.as_uuid())])]
        }
    };
    ops.extend(keys_op(lead.id, index));
    ops
}

/// Indexes a lead under its blocking keys, if it has any.
fn keys_op(lead: LeadId, index: &LeadIndex) -> Option<Op<'_>> {
    let record = index.record.as_ref().filter(|_| !index.keys.is_empty())?;
    Some(Op::new(
        "INSERT INTO lead_keys (key, lead_id, record) SELECT k, $2, $3 FROM unnest($1::text[]) AS k
         ON CONFLICT DO NOTHING",
        vec![p(&index.keys), p(*lead.as_uuid()), p(Json(record))],
    ))
}

fn history_op(entry: &HistoryEntry, submission: Option<SubmissionId>) -> Op<'_> {
    Op::new(
        "INSERT INTO lead_history (lead_id, at, submission_id, entry) VALUES ($1, $2, $3, $4)",
        vec![p(entry.lead_id.as_uuid()), p(entry.at), p(submission.map(|s| *s.as_uuid())), p(Json(entry))],
    )
}
