//! Applies the core's [`Change`]s in PostgreSQL, inside the caller's transaction: one
//! statement per change (a lead also replaces its match keys), sent pipelined. Writes of
//! submissions settled side by side are merged: the same insert in each becomes one
//! multi-row insert. Nothing here decides.

use super::Fail;
use super::sealing::{Blind, Keys, Sealed, SealedJsonText};
use crate::StoreError;
use crate::feedback::Doc;
use bytes::{BufMut, BytesMut};
use deadpool_postgres::GenericClient;
use futures_util::future::{try_join, try_join_all};
use leadflow_core::changes::{Change, LeadIndex};
use leadflow_core::erase;
use leadflow_core::pipeline::HistoryEntry;
use leadflow_core::{Lead, LeadId, SubmissionId};
use std::collections::VecDeque;
use tokio_postgres::types::{IsNull, Json, Kind, ToSql, Type, to_sql_checked};
use uuid::Uuid;

/// Applies the changes in order, pipelined: every statement is prepared (cached per
/// connection), then all are sent without waiting for each answer, so a capture's dozen
/// writes cost one round trip rather than twelve. The server runs them in the order sent.
pub(super) async fn apply(c: &impl GenericClient, changes: &[Change]) -> Result<(), Fail> {
    super::feed::add(leadflow_core::feed::entries(changes))?;
    let mut ops = Vec::new();
    for change in changes {
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

/// The statements for `changes`, in order, with `instead` giving the op for a change the
/// caller writes its own way. For writes that [`apply_units`] sends, so only changes
/// that are a statement each (all a capture makes).
pub(super) fn unit<'a>(
    changes: &'a [Change],
    instead: impl Fn(&'a Change) -> Option<Op<'a>>,
) -> Result<Vec<Op<'a>>, Fail> {
    super::feed::add(leadflow_core::feed::entries(changes))?;
    let mut ops = Vec::with_capacity(changes.len() + 4);
    for change in changes {
        match (instead(change), change) {
            (Some(op), _) => ops.push(op),
            (None, Change::ErasedCrmRecord { .. }) => {
                return Err(StoreError::Internal("an erased CRM record cannot be applied beside others".into()).into());
            }
            (None, other) => ops.extend(ops_of(other)),
        }
    }
    Ok(ops)
}

/// Applies the writes of units that touch nothing of each other's (submissions settled
/// side by side, none reading what another writes), each unit's in its own order, in as
/// few statements as they share: the same insert at the head of several units becomes
/// one multi-row insert. One round trip, like [`apply`].
///
/// With `commit`, the transaction's change feed entries and its COMMIT follow in the same
/// round trip, unless a statement's row count must be checked first (a lead updated at
/// the version read). A statement that fails aborts the transaction, and the COMMIT
/// behind it then rolls back.
pub(super) async fn apply_units(c: &impl GenericClient, units: Vec<Vec<Op<'_>>>, commit: bool) -> Result<(), Fail> {
    let mut ops = merge_units(units);
    if commit {
        ops.extend(super::feed::take());
    }
    if commit && ops.iter().all(|op| op.exactly.is_none()) {
        return run_then(c, ops, Some("COMMIT")).await;
    }
    run(c, ops).await?;
    if commit {
        c.batch_execute("COMMIT").await?;
    }
    Ok(())
}

/// Applies runs of units in order, in one round trip: the units of a run touch nothing of
/// each other's and share statements as in [`apply_units`]; each run is sent whole before
/// the next (a merge is a run of its own, so writes around it keep their order).
pub(super) async fn apply_runs(c: &impl GenericClient, runs: Vec<Vec<Vec<Change>>>) -> Result<(), Fail> {
    let mut ops = Vec::new();
    for run_of in &runs {
        let units = run_of.iter().map(|changes| unit(changes, |_| None)).collect::<Result<Vec<_>, _>>()?;
        ops.extend(merge_units(units));
    }
    run(c, ops).await
}

/// Orders the units' statements into one sequence: each unit's stay in their order, and
/// at each step the statement heading most units goes next, all of its copies as one
/// (when it has a multi-row form). A statement that some unit still waits to reach
/// behind another goes after that other, so the units meet there and it is sent once.
/// A step takes one statement of a unit: the rows of one multi-row statement are of
/// different units, so never the same row twice.
fn merge_units(units: Vec<Vec<Op<'_>>>) -> Vec<Op<'_>> {
    let mut queues: Vec<VecDeque<Op<'_>>> = units.into_iter().filter(|u| !u.is_empty()).map(VecDeque::from).collect();
    let mut plan = Vec::new();
    loop {
        queues.retain(|q| !q.is_empty());
        let Some(next) = next_statement(&queues) else { break };
        let taken: Vec<Op<'_>> = queues
            .iter_mut()
            .filter(|q| q.front().is_some_and(|op| op.sql == next))
            .filter_map(VecDeque::pop_front)
            .collect();
        match taken.first().and_then(|op| op.many) {
            Some(many) if taken.len() > 1 => plan.push(Op::merged(many, taken)),
            _ => plan.extend(taken),
        }
    }
    plan
}

/// The statement to send next: among those heading a unit, one no unit waits for behind
/// another statement, heading the most units.
fn next_statement(queues: &[VecDeque<Op<'_>>]) -> Option<&'static str> {
    let mut heads: Vec<(&'static str, usize)> = Vec::new();
    for queue in queues {
        let sql = queue.front()?.sql;
        match heads.iter_mut().find(|(s, _)| *s == sql) {
            Some(head) => head.1 += 1,
            None => heads.push((sql, 1)),
        }
    }
    let waited_for = |sql: &str| queues.iter().any(|q| q.iter().skip(1).any(|op| op.sql == sql) && q[0].sql != sql);
    let free: Vec<(&'static str, usize)> = heads.iter().copied().filter(|(sql, _)| !waited_for(sql)).collect();
    let pick = if free.is_empty() { &heads } else { &free };
    // The first of the most common: units listed first go first on a tie.
    let most = pick.iter().map(|(_, n)| *n).max()?;
    pick.iter().find(|(_, n)| *n == most).map(|(sql, _)| *sql)
}

/// One statement with its parameters, borrowed from the change it comes from.
pub(super) struct Op<'a> {
    sql: &'static str,
    params: Vec<Param<'a>>,
    /// Leads updated at the version they were read with: the statement must change
    /// exactly this many rows (one a lead), else one of them (this one) changed meanwhile.
    exactly: Option<(u64, LeadId)>,
    /// The same statement for many rows: each parameter an array of the rows' values.
    many: Option<&'static str>,
}

pub(super) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

impl<'a> Op<'a> {
    pub(super) fn new(sql: &'static str, params: Vec<Param<'a>>) -> Self {
        Self { sql, params, exactly: None, many: None }
    }

    /// With its multi-row form, whose parameters are arrays of this one's, in its order.
    pub(super) fn many(self, sql: &'static str) -> Self {
        Self { many: Some(sql), ..self }
    }

    /// Copies of one statement as one: parameter `i` becomes the array of every copy's.
    fn merged(sql: &'static str, ops: Vec<Op<'a>>) -> Self {
        let width = ops.first().map_or(0, |op| op.params.len());
        let mut columns: Vec<Vec<Param<'a>>> = (0..width).map(|_| Vec::with_capacity(ops.len())).collect();
        let mut exactly: Option<(u64, LeadId)> = None;
        for op in ops {
            if let Some((n, lead)) = op.exactly {
                exactly = Some(exactly.map_or((n, lead), |(m, first)| (m + n, first)));
            }
            for (column, param) in columns.iter_mut().zip(op.params) {
                column.push(param);
            }
        }
        Op { exactly, ..Op::new(sql, columns.into_iter().map(|c| Box::new(Column(c)) as Param<'a>).collect()) }
    }
}

/// Values of one parameter across rows, sent as a one-dimensional array of the type the
/// statement declares (each value checked against the array's element type).
#[derive(Debug)]
struct Column<'a>(Vec<Param<'a>>);

impl ToSql for Column<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let Kind::Array(member) = ty.kind() else { return Err(format!("a column binds to an array, not {ty}").into()) };
        // The binary array format: dimensions, a has-nulls flag, the element type, each
        // dimension's length and lower bound, then each element with its length (-1: NULL).
        out.put_i32(1);
        let flag_at = out.len();
        out.put_i32(0);
        out.put_u32(member.oid());
        out.put_i32(i32::try_from(self.0.len())?);
        out.put_i32(1);
        let mut nulls = false;
        for value in &self.0 {
            let at = out.len();
            out.put_i32(0);
            let len = match value.to_sql_checked(member, out)? {
                IsNull::Yes => {
                    nulls = true;
                    -1
                }
                IsNull::No => i32::try_from(out.len() - at - 4)?,
            };
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        if nulls {
            out[flag_at..flag_at + 4].copy_from_slice(&1i32.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    to_sql_checked!();
}

pub(super) async fn run(c: &impl GenericClient, ops: Vec<Op<'_>>) -> Result<(), Fail> {
    run_then(c, ops, None).await
}

/// [`run`], with `then` (a plain statement) sent behind the ops in the same round trip.
async fn run_then(c: &impl GenericClient, ops: Vec<Op<'_>>, then: Option<&str>) -> Result<(), Fail> {
    let mut statements = Vec::with_capacity(ops.len());
    for op in &ops {
        statements.push(c.prepare_cached(op.sql).await?);
    }
    let sent = ops.iter().zip(&statements).map(|(op, statement)| {
        let params: Vec<&(dyn ToSql + Sync)> = op.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        async move { c.execute(statement, &params).await }
    });
    // Polled in order, so sent in order: the ops, then `then`.
    let then = async {
        match then {
            Some(sql) => c.batch_execute(sql).await,
            None => Ok(()),
        }
    };
    let (counts, ()) = try_join(try_join_all(sent), then).await?;
    for (op, n) in ops.iter().zip(counts) {
        if let Some((_, lead)) = op.exactly.filter(|(expected, _)| n != *expected) {
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
            delete_keys(*lead),
            delete_record(*lead),
        ],
        Change::Unmerged { lead, at } => {
            vec![op(
                "UPDATE leads SET merged_into = NULL, updated_at = $2 WHERE id = $1",
                vec![p(lead.as_uuid()), p(at)],
            )]
        }
        Change::Index { lead, index } => {
            [delete_keys(*lead), delete_record(*lead)].into_iter().chain(keys_ops(*lead, index)).collect()
        }
        Change::Resolve { lead } => vec![
            op("INSERT INTO resolve_queue (lead_id) VALUES ($1)", vec![p(lead.as_uuid())])
                .many("INSERT INTO resolve_queue (lead_id) SELECT l FROM unnest($1::uuid[]) WITH ORDINALITY AS r (l, n) ORDER BY n"),
        ],
        Change::History { entry, submission } => vec![history_op(entry, *submission)],
        Change::Processed { submission, lead, outcome } => vec![op(
            "UPDATE submissions SET status = 'processed', lead_id = $2, outcome = $3, error = NULL WHERE id = $1",
            vec![p(submission.as_uuid()), p(lead.as_uuid()), p(outcome.as_str())],
        )],
        Change::Touchpoint { lead, touch } => vec![
            op(
                "INSERT INTO touchpoints (lead_id, at, doc) VALUES ($1, $2, $3)",
                vec![p(lead.as_uuid()), p(touch.at), p(Sealed(&**touch))],
            )
            .many(
                "INSERT INTO touchpoints (lead_id, at, doc)
                 SELECT l, a, d FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) WITH ORDINALITY AS r (l, a, d, n)
                 ORDER BY n",
            ),
        ],
        Change::Visitor { anonymous_id, lead } => vec![
            op(
                "INSERT INTO lead_visitors (anonymous_id, lead_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                vec![p(anonymous_id), p(lead.as_uuid())],
            )
            .many(
                "INSERT INTO lead_visitors (anonymous_id, lead_id) SELECT * FROM unnest($1::text[], $2::uuid[])
                 ON CONFLICT DO NOTHING",
            ),
        ],
        Change::AttachEvents { lead, events, .. } => {
            let ids: Vec<Uuid> = events.iter().map(|e| *e.as_uuid()).collect();
            vec![op(
                "UPDATE events SET lead_id = $1 WHERE id = ANY($2) AND lead_id IS NULL",
                vec![p(lead.as_uuid()), p(ids)],
            )]
        }
        Change::StageChange { lead, from, to, at, actor, reason } => vec![
            op(
                "INSERT INTO stage_changes (lead_id, from_stage, to_stage, at, actor, reason) VALUES ($1, $2, $3, $4, $5, $6)",
                vec![p(lead.as_uuid()), p(from), p(to), p(at), p(actor), p(reason)],
            )
            .many(
                "INSERT INTO stage_changes (lead_id, from_stage, to_stage, at, actor, reason)
                 SELECT l, f, t, a, w, r
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
                     WITH ORDINALITY AS s (l, f, t, a, w, r, n)
                 ORDER BY n",
            ),
        ],
        Change::Review { id, lead, candidate, score, evidence, at } => vec![
            op(
                "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT DO NOTHING",
                vec![p(id.as_uuid()), p(lead.as_uuid()), p(candidate.as_uuid()), p(score), p(Sealed(evidence)), p(at)],
            )
            .many(
                "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
                 SELECT i, l, c, s, e, 'open', a
                 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::float8[], $5::jsonb[], $6::timestamptz[])
                     AS r (i, l, c, s, e, a)
                 ON CONFLICT DO NOTHING",
            ),
        ],
        Change::Account(account) => super::accounts::insert_ops(account),
        Change::AccountKeys { account, keys } => super::accounts::insert_keys_op(*account, keys).into_iter().collect(),
        // In order: a lead's deliveries go in the order they were written.
        Change::Delivery(d) => vec![
            op(
                "INSERT INTO outbox (id, destination, lead_id, event_type, payload, occurred_at, status, attempts,
                                     next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, 'pending', 0, $6, $6, $6)",
                vec![p(&d.id), p(&d.destination), p(d.lead.as_uuid()), p(&d.event_type), p(SealedJsonText(&d.payload)), p(d.at)],
            )
            .many(
                "INSERT INTO outbox (id, destination, lead_id, event_type, payload, occurred_at, status, attempts,
                                     next_attempt_at, created_at, updated_at)
                 SELECT i, d, l, e, p::jsonb, a, 'pending', 0, a, a, a
                 FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
                     WITH ORDINALITY AS r (i, d, l, e, p, a, n)
                 ORDER BY n",
            ),
        ],
        Change::Consent { lead, entries } => entries.iter().map(|e| super::privacy::entry_op(*lead, e)).collect(),
        Change::ConsentReleased { lead, payload, at } => vec![op(
            "UPDATE outbox SET payload = $2::text::jsonb, updated_at = $3,
                 next_attempt_at = CASE WHEN status = 'blocked_consent' THEN $3 ELSE next_attempt_at END,
                 status = 'pending'
             WHERE lead_id = $1 AND status IN ('pending', 'blocked_consent') AND event_type <> 'lead.erased'",
            vec![p(lead.as_uuid()), p(SealedJsonText(payload)), p(at)],
        )],
        Change::RetryNeedsData { lead, destination, payload, at } => vec![
            op(
                "UPDATE outbox SET status = 'pending', payload = $3::text::jsonb, attempts = 0, next_attempt_at = $4,
                    updated_at = $4
                 WHERE lead_id = $1 AND destination = $2 AND status = 'needs_data'",
                vec![p(lead.as_uuid()), p(destination), p(SealedJsonText(payload)), p(at)],
            )
            .many(
                "UPDATE outbox SET status = 'pending', payload = u.payload::jsonb, attempts = 0,
                    next_attempt_at = u.at, updated_at = u.at
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) AS u (lead, destination, payload, at)
                 WHERE outbox.lead_id = u.lead AND outbox.destination = u.destination AND outbox.status = 'needs_data'",
            ),
        ],
        Change::QueueRouting { lead, trigger, source, at } => vec![
            op(
                "INSERT INTO routing_queue (lead_id, trigger, source, queued_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (lead_id) DO NOTHING",
                vec![p(lead.as_uuid()), p(trigger.as_str()), p(source), p(at)],
            )
            .many(
                "INSERT INTO routing_queue (lead_id, trigger, source, queued_at)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
                 ON CONFLICT (lead_id) DO NOTHING",
            ),
        ],
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
                    // Looked up as written: trimmed and in lower case.
                    p(event.identity.email.as_deref().map(|e| Blind(e.trim().to_lowercase()))),
                    p(event.identity.external_id.as_deref().map(Blind)),
                    p(&event.identity.anonymous_id),
                    p(&event.kind),
                    p(event.occurred_at),
                    p(Sealed(event)),
                ],
            )]
        }
        Change::DropEvent { event } => vec![op("DELETE FROM events WHERE id = $1", vec![p(event.as_uuid())])],
        Change::Feedback { feedback: fb, result, scrubbed } => {
            let doc = if *scrubbed { Doc::new(&erase::scrub_feedback(fb), result) } else { Doc::new(fb, result) };
            vec![op(
                "INSERT INTO feedback (id, source, event_id, lead_id, status, has_owner, outcome, occurred_at, received_at, doc,
                                       crm_record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
                    p(Sealed(doc)),
                    p(super::feedback::crm_record(fb).map(Blind)),
                ],
            )]
        }
        Change::FeedbackSettled { feedback: fb, result } => vec![op(
            "UPDATE feedback SET lead_id = $2, outcome = $3, doc = $4 WHERE id = $1",
            vec![
                p(fb.id.as_uuid()),
                p(result.lead_id.map(|l| *l.as_uuid())),
                p(result.outcome.as_str()),
                p(Sealed(Doc::new(fb, result))),
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
    let email = index.email.as_deref();
    let account = lead.account_id.map(|a| *a.as_uuid());
    let (original, latest) = (&lead.attribution.original, &lead.attribution.latest);
    let version = i64::try_from(lead.version).unwrap_or(i64::MAX);
    let columns = || -> Vec<Param<'a>> {
        vec![
            p(lead.id.as_uuid()),
            p(email.map(Blind)),
            p(version),
            p(lead.updated_at),
            p(Sealed(lead)),
            p(account),
            p(lead.fields.external_id.as_deref().map(Blind)),
            p(&lead.lifecycle_stage),
            p(original.source.as_str()),
            p(&original.utm_campaign),
            p(latest.source.as_str()),
            p(&latest.utm_campaign),
            p(index.email_key.as_deref().map(Blind)),
            p(lead.is_test()),
        ]
    };
    let mut ops = match expected {
        None => {
            let mut params = columns();
            params.push(p(lead.created_at));
            vec![
                Op::new(
                    "INSERT INTO leads (id, email, version, updated_at, doc, account_id, external_id, stage, source,
                                        campaign, latest_source, latest_campaign, email_key, test, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    params,
                )
                .many(
                    "INSERT INTO leads (id, email, version, updated_at, doc, account_id, external_id, stage, source,
                                        campaign, latest_source, latest_campaign, email_key, test, created_at)
                     SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[], $5::jsonb[],
                                          $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                                          $12::text[], $13::text[], $14::bool[], $15::timestamptz[])",
                ),
            ]
        }
        Some(expected) => {
            let mut params = columns();
            params.push(p(i64::try_from(expected).unwrap_or(i64::MAX)));
            let update = Op {
                exactly: Some((1, lead.id)),
                ..Op::new(
                    "UPDATE leads SET email = $2, version = $3, updated_at = $4, doc = $5, account_id = $6,
                        external_id = $7, stage = $8, source = $9, campaign = $10, latest_source = $11,
                        latest_campaign = $12, email_key = $13, test = $14
                     WHERE id = $1 AND version = $15 AND merged_into IS NULL",
                    params,
                )
                .many(
                    "UPDATE leads SET email = u.email, version = u.version, updated_at = u.updated_at, doc = u.doc,
                        account_id = u.account_id, external_id = u.external_id, stage = u.stage, source = u.source,
                        campaign = u.campaign, latest_source = u.latest_source, latest_campaign = u.latest_campaign,
                        email_key = u.email_key, test = u.test
                     FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[], $5::jsonb[], $6::uuid[],
                                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                                 $13::text[], $14::bool[], $15::int8[])
                         AS u (id, email, version, updated_at, doc, account_id, external_id, stage, source, campaign,
                               latest_source, latest_campaign, email_key, test, expected)
                     WHERE leads.id = u.id AND leads.version = u.expected AND leads.merged_into IS NULL",
                )
            };
            if index.record.is_none() {
                return vec![update];
            }
            vec![update, delete_keys(lead.id), delete_record(lead.id)]
        }
    };
    ops.extend(keys_ops(lead.id, index));
    ops
}

/// Indexes a lead under its blocking keys, if the index names them: each key's posting,
/// and the lead's match record once.
fn keys_ops(lead: LeadId, index: &LeadIndex) -> Vec<Op<'_>> {
    let Some(record) = index.record.as_ref().filter(|_| !index.keys.is_empty()) else { return Vec::new() };
    vec![
        Op::new(
            "INSERT INTO lead_records (lead_id, record) VALUES ($1, $2)
             ON CONFLICT (lead_id) DO UPDATE SET record = EXCLUDED.record",
            vec![p(*lead.as_uuid()), p(Sealed(record))],
        )
        .many(
            "INSERT INTO lead_records (lead_id, record) SELECT * FROM unnest($1::uuid[], $2::jsonb[])
             ON CONFLICT (lead_id) DO UPDATE SET record = EXCLUDED.record",
        ),
        Op::new(
            "INSERT INTO lead_keys (key, lead_id) SELECT k, $2 FROM jsonb_array_elements_text($1) AS k
             ON CONFLICT DO NOTHING",
            vec![p(Keys(&index.keys)), p(*lead.as_uuid())],
        )
        .many(
            "INSERT INTO lead_keys (key, lead_id)
             SELECT k, r.lead FROM unnest($1::jsonb[], $2::uuid[]) AS r (keys, lead)
             CROSS JOIN LATERAL jsonb_array_elements_text(r.keys) AS k
             ON CONFLICT DO NOTHING",
        ),
    ]
}

fn delete_keys(lead: LeadId) -> Op<'static> {
    Op::new("DELETE FROM lead_keys WHERE lead_id = $1", vec![p(*lead.as_uuid())])
        .many("DELETE FROM lead_keys WHERE lead_id = ANY($1::uuid[])")
}

fn delete_record(lead: LeadId) -> Op<'static> {
    Op::new("DELETE FROM lead_records WHERE lead_id = $1", vec![p(*lead.as_uuid())])
        .many("DELETE FROM lead_records WHERE lead_id = ANY($1::uuid[])")
}

fn history_op(entry: &HistoryEntry, submission: Option<SubmissionId>) -> Op<'_> {
    Op::new(
        "INSERT INTO lead_history (lead_id, at, submission_id, entry) VALUES ($1, $2, $3, $4)",
        vec![p(entry.lead_id.as_uuid()), p(entry.at), p(submission.map(|s| *s.as_uuid())), p(Sealed(entry))],
    )
    .many(
        "INSERT INTO lead_history (lead_id, at, submission_id, entry)
         SELECT l, a, s, e FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::jsonb[])
             WITH ORDINALITY AS h (l, a, s, e, n)
         ORDER BY n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(sql: &'static str, value: i64) -> Op<'static> {
        Op::new(sql, vec![p(value)])
    }

    fn batched(sql: &'static str, value: i64) -> Op<'static> {
        op(sql, value).many("many")
    }

    fn shape(plan: &[Op<'_>]) -> Vec<(&'static str, usize)> {
        plan.iter().map(|op| (op.sql, op.params.len())).collect()
    }

    #[test]
    fn the_same_insert_heading_several_units_goes_once_as_many_rows() {
        let plan = merge_units(vec![
            vec![batched("a", 1), batched("b", 2)],
            vec![batched("a", 3), batched("b", 4)],
            vec![batched("a", 5)],
        ]);
        assert_eq!(shape(&plan), vec![("many", 1), ("many", 1)]);
    }

    #[test]
    fn units_keep_their_order_and_meet_where_one_waits_behind_another_statement() {
        // The second unit founds an account first: its touchpoint waits for that, and the
        // touchpoints go together after it.
        let plan = merge_units(vec![
            vec![batched("touch", 1), batched("lead", 2)],
            vec![batched("account", 3), batched("touch", 4), batched("lead", 5)],
        ]);
        assert_eq!(plan.iter().map(|op| op.sql).collect::<Vec<_>>(), vec!["account", "many", "many"]);
    }

    #[test]
    fn a_unit_gives_one_row_a_statement_and_unbatched_statements_go_one_by_one() {
        let plan = merge_units(vec![vec![batched("h", 1), batched("h", 2)], vec![batched("h", 3)]]);
        assert_eq!(plan.iter().map(|op| op.sql).collect::<Vec<_>>(), vec!["many", "h"]);
        let plan = merge_units(vec![vec![op("u", 1)], vec![op("u", 2)]]);
        assert_eq!(plan.iter().map(|op| op.sql).collect::<Vec<_>>(), vec!["u", "u"]);
    }

    #[test]
    fn merged_updates_expect_a_row_each() {
        let update = |lead: LeadId| Op { exactly: Some((1, lead)), ..batched("u", 1) };
        let first = LeadId::new();
        let plan = merge_units(vec![vec![update(first)], vec![update(LeadId::new())]]);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].exactly, Some((2, first)));
    }

    #[test]
    fn a_column_is_the_array_postgres_types_would_send() {
        let encode = |value: &dyn ToSql, ty: &Type| {
            let mut out = BytesMut::new();
            value.to_sql_checked(ty, &mut out).unwrap();
            out
        };
        let ints = Column(vec![p(1i64), p(-7i64)]);
        assert_eq!(encode(&ints, &Type::INT8_ARRAY), encode(&vec![1i64, -7], &Type::INT8_ARRAY));
        let texts = Column(vec![p(Some("a")), p(None::<&str>), p(Some("ccc"))]);
        let expected: Vec<Option<&str>> = vec![Some("a"), None, Some("ccc")];
        assert_eq!(encode(&texts, &Type::TEXT_ARRAY), encode(&expected, &Type::TEXT_ARRAY));
        // An element of the wrong type is refused, not sent as garbage.
        let mut out = BytesMut::new();
        assert!(Column(vec![p(1i64)]).to_sql_checked(&Type::TEXT_ARRAY, &mut out).is_err());
    }
}
