//! Erasure in SQLite, in one writer transaction: what each step of
//! [`leadflow_core::erase::plan`] asks to load, and the statements of the writes it
//! returns. A list of ids is bound as one JSON array (`json_each`), so each load or write
//! is one statement whatever the family's size.

use super::apply::apply;
use super::feedback::row as feedback_row;
use super::{from_millis, lead_from_doc, millis};
use crate::erase::outbox_state;
use crate::feedback::Doc;
use crate::{ErasureReceipt, StoreError};
use leadflow_core::LeadId;
use leadflow_core::erase::CrmRecord;
use leadflow_core::erase::plan::{
    AccountUse, AttemptRow, Erase, Found, Lookup, Member, OutboxRow, Rows, Traces, WaitingEvent, Write,
};
use leadflow_core::pipeline::Rules;
use rusqlite::{Connection, OptionalExtension, Params, params};
use std::str::FromStr;
use time::OffsetDateTime;

/// load the merge tree → family → load its traces → named → load the rows → finish →
/// apply.
pub(super) fn erase(
    conn: &Connection,
    id: LeadId,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<ErasureReceipt>, StoreError> {
    let erase = Erase::new(id, actor.to_owned(), reason.map(str::to_owned), rules, now);
    let family = match erase.family(tree(conn, id)?) {
        Found::Missing => return Ok(None),
        Found::AlreadyErased(receipt) => return Ok(Some(receipt)),
        Found::Family(family) => *family,
    };
    let traces = traces(conn, &list(family.ids()))?;
    let named = family.named(traces)?;
    let rows = rows(conn, &named.lookup())?;
    let erased = named.finish(rows);
    apply(conn, &erased.changes)?;
    Ok(Some(erased.receipt))
}

/// The statements of one erasure write.
pub(super) fn write(conn: &Connection, write: &Write) -> Result<(), StoreError> {
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        conn.prepare_cached(sql)?.execute(params)?;
        Ok(())
    };
    match write {
        Write::Tombstone(t) => run(
            "UPDATE leads SET email = lf_blind(?2), email_key = NULL, external_id = lf_blind(?3), account_id = ?4,
                 version = ?5, updated_at = ?6, doc = lf_seal(?7), erased_at = ?8
             WHERE id = ?1",
            params![
                t.id.to_string(),
                t.fields.email.as_ref().map(|e| e.as_str()),
                t.fields.external_id,
                t.account_id.map(|a| a.to_string()),
                super::apply::version_column(t.version)?,
                millis(t.updated_at),
                serde_json::to_string(t)?,
                t.erased_at.map(millis)
            ],
        ),
        Write::DeleteAccount(account) => {
            run("DELETE FROM account_keys WHERE account_id = ?1", params![account.to_string()])?;
            run("DELETE FROM accounts WHERE id = ?1", params![account.to_string()])
        }
        Write::ScrubSubmissions(ids) => run(
            "UPDATE submissions SET payload = '{}', idempotency_key = NULL, fingerprint = NULL, error = NULL
             WHERE id IN (SELECT value FROM json_each(?1))",
            params![list(ids)],
        ),
        Write::DeleteSubmissions(ids) => {
            run("DELETE FROM submissions WHERE id IN (SELECT value FROM json_each(?1))", params![list(ids)])
        }
        Write::History { row, entry } => run(
            "UPDATE lead_history SET entry = lf_seal(?2) WHERE id = ?1",
            params![row, serde_json::to_string(entry)?],
        ),
        Write::DeleteLeadKeys(lead) => super::apply::delete_keys(conn, *lead),
        Write::DeleteConsent(ids) => {
            run("DELETE FROM consent_ledger WHERE lead_id IN (SELECT value FROM json_each(?1))", params![list(ids)])
        }
        Write::Suppress(entries) => super::privacy::suppress(conn, entries).map(drop),
        Write::DeleteVisitors(ids) => {
            run("DELETE FROM lead_visitors WHERE anonymous_id IN (SELECT value FROM json_each(?1))", params![list(ids)])
        }
        Write::DeleteEvents(ids) => {
            run("DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1))", params![list(ids)])
        }
        Write::Touchpoint { row, touch } => {
            run("UPDATE touchpoints SET doc = lf_seal(?2) WHERE id = ?1", params![row, serde_json::to_string(touch)?])
        }
        Write::DeleteReviews(ids) => {
            run("DELETE FROM duplicate_reviews WHERE id IN (SELECT value FROM json_each(?1))", params![list(ids)])
        }
        Write::Feedback { feedback, result } => run(
            "UPDATE feedback SET doc = lf_seal(?2) WHERE id = ?1",
            params![feedback.id.to_string(), serde_json::to_string(&Doc::new(feedback, result))?],
        ),
        Write::CancelDeliveries(ids) => {
            let ids = list(ids);
            run("DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT value FROM json_each(?1))", params![ids])?;
            run("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))", params![ids])
        }
        Write::Delivered { id, payload, at } => run(
            "UPDATE outbox SET payload = lf_seal(?2), last_error = NULL, last_response = NULL, updated_at = ?3 WHERE id = ?1",
            params![id, serde_json::to_string(payload)?, millis(*at)],
        ),
        Write::ScrubAttempts(ids) => run(
            "UPDATE delivery_attempts SET request = NULL, response = NULL, error = NULL
             WHERE id IN (SELECT value FROM json_each(?1))",
            params![list(ids)],
        ),
        Write::Unqueue(lead) => run("DELETE FROM routing_queue WHERE lead_id = ?1", params![lead.to_string()]),
        Write::Report { import, report } => {
            run("UPDATE imports SET report = lf_seal(?2) WHERE id = ?1", params![import.to_string(), report])
        }
        Write::NotBefore { delivery, at } => {
            run("UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1", params![delivery, millis(*at)])
        }
    }
}

/// Every lead of the merge tree holding `id`: up its merges to the survivor, then down
/// from it to every lead merged into it.
fn tree(conn: &Connection, id: LeadId) -> Result<Vec<Member>, StoreError> {
    let found = query(
        conn,
        "WITH RECURSIVE up(id, merged_into) AS (SELECT id, merged_into FROM leads WHERE id = ?1
                 UNION SELECT l.id, l.merged_into FROM leads l JOIN up ON l.id = up.merged_into),
             down(id) AS (SELECT id FROM up WHERE merged_into IS NULL
                 UNION SELECT l.id FROM leads l JOIN down ON l.merged_into = down.id)
         SELECT merged_into, lf_open(doc) FROM leads WHERE id IN (SELECT id FROM up UNION SELECT id FROM down)",
        [id.to_string()],
        |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?)),
    )?;
    found
        .into_iter()
        .map(|(into, doc)| Ok(Member { lead: lead_from_doc(&doc)?, merged_into: into.map(|i| parse(&i)).transpose()? }))
        .collect()
}

fn traces(conn: &Connection, leads: &str) -> Result<Traces, StoreError> {
    let unfinished: Option<String> = conn
        .prepare_cached("SELECT id FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let history = query(
        conn,
        "SELECT id, lf_open(entry) FROM lead_history WHERE lead_id IN (SELECT value FROM json_each(?1))",
        [leads],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    Ok(Traces {
        unfinished_import: unfinished.map(|i| parse(&i)).transpose()?,
        history: history
            .into_iter()
            .map(|(row, e)| Ok((row, serde_json::from_str(&e)?)))
            .collect::<Result<_, StoreError>>()?,
        visitors: query(
            conn,
            "SELECT anonymous_id FROM lead_visitors WHERE lead_id IN (SELECT value FROM json_each(?1))",
            [leads],
            |r| r.get(0),
        )?,
        crm_records: query(
            conn,
            "SELECT destination, crm_id FROM crm_links WHERE lead_id IN (SELECT value FROM json_each(?1))",
            [leads],
            |r| Ok(CrmRecord { destination: r.get(0)?, crm_id: r.get(1)? }),
        )?,
    })
}

fn rows(conn: &Connection, lookup: &Lookup) -> Result<Rows, StoreError> {
    let leads = list(&lookup.leads);
    let of_family = |sql: &str| query(conn, sql, [&leads], |r| r.get::<_, String>(0));
    let mut accounts = Vec::new();
    for account in &lookup.accounts {
        let used = conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM leads WHERE account_id = ?1), (SELECT count(*) FROM account_keys WHERE account_id = ?1)
                 FROM accounts WHERE id = ?1",
            )?
            .query_row([account.to_string()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?;
        if let Some((leads, keys)) = used {
            accounts.push(AccountUse { id: *account, leads: leads.unsigned_abs(), keys: keys.unsigned_abs() });
        }
    }
    let mut unsettled = Vec::new();
    for mention in &lookup.mentions {
        let found = query(
            conn,
            "SELECT id, lf_open(payload) FROM submissions WHERE lead_id IS NULL AND instr(lower(lf_open(payload)), ?1) > 0",
            [mention],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?;
        for (id, payload) in found {
            unsettled.push((parse(&id)?, payload));
        }
    }
    let lead_keys: i64 = conn
        .prepare_cached("SELECT count(*) FROM lead_keys WHERE lead_id IN (SELECT value FROM json_each(?1))")?
        .query_row([&leads], |r| r.get(0))?;
    let consent: i64 = conn
        .prepare_cached("SELECT count(*) FROM consent_ledger WHERE lead_id IN (SELECT value FROM json_each(?1))")?
        .query_row([&leads], |r| r.get(0))?;
    let waiting = query(
        conn,
        // The email and external id columns may hold blind indexes: the values come from
        // the document, and the lookup goes through the index.
        "SELECT id, json_extract(lf_open(doc), '$.identity.email'), json_extract(lf_open(doc), '$.identity.external_id'),
                anonymous_id FROM events
         WHERE lead_id IS NULL AND (email IN (SELECT lf_blind(value) FROM json_each(?1))
            OR lower(trim(email)) IN (SELECT value FROM json_each(?1))
            OR external_id IN (SELECT lf_blind(value) FROM json_each(?2))
            OR anonymous_id IN (SELECT value FROM json_each(?3)))",
        [list(&lookup.emails), list(&lookup.external_ids), list(&lookup.visitors)],
        |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let touchpoints = query(
        conn,
        "SELECT id, lf_open(doc) FROM touchpoints WHERE lead_id IN (SELECT value FROM json_each(?1))",
        [&leads],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    // The CRM record id alone finds the candidates; the core checks the destination.
    let crm_ids = list(lookup.crm_records.iter().map(|r| &r.crm_id));
    let feedback = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, lf_open(doc) FROM feedback
             WHERE lead_id IN (SELECT value FROM json_each(?1))
                OR (lead_id IS NULL AND (lower(json_extract(lf_open(doc), '$.identity.email')) IN (SELECT value FROM json_each(?2))
                    OR json_extract(lf_open(doc), '$.identity.external_id') IN (SELECT value FROM json_each(?3))
                    OR json_extract(lf_open(doc), '$.identity.crm_id') IN (SELECT value FROM json_each(?4))))",
        )?
        .query_map([&leads, &list(&lookup.emails), &list(&lookup.external_ids), &crm_ids], |r| Ok(feedback_row(r)))?
        .map(|row| row?.map(|r| r.into_stored()).map(|s| (s.feedback, s.result)))
        .collect::<Result<_, _>>()?;
    let deliveries = query(
        conn,
        "SELECT id, lead_id, destination, status, attempts, lease_until FROM outbox
         WHERE lead_id IN (SELECT value FROM json_each(?1))",
        [&leads],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )?;
    let mut reports = Vec::new();
    for needle in &lookup.report_needles {
        reports.extend(query(
            conn,
            "SELECT id, lf_open(report) FROM imports WHERE report IS NOT NULL AND instr(lf_open(report), ?1) > 0",
            [needle.as_bytes()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?);
    }
    Ok(Rows {
        accounts,
        submissions: ids(of_family("SELECT id FROM submissions WHERE lead_id IN (SELECT value FROM json_each(?1))")?)?,
        unsettled,
        lead_keys: lead_keys.unsigned_abs(),
        consent: consent.unsigned_abs(),
        events: ids(of_family("SELECT id FROM events WHERE lead_id IN (SELECT value FROM json_each(?1))")?)?,
        waiting: waiting
            .into_iter()
            .map(|(id, email, external_id, anonymous_id)| {
                Ok(WaitingEvent { id: parse(&id)?, email, external_id, anonymous_id })
            })
            .collect::<Result<_, StoreError>>()?,
        touchpoints: touchpoints
            .into_iter()
            .map(|(row, doc)| Ok((row, serde_json::from_str(&doc)?)))
            .collect::<Result<_, StoreError>>()?,
        reviews: ids(of_family(
            "SELECT id FROM duplicate_reviews WHERE lead_id IN (SELECT value FROM json_each(?1))
                OR candidate_id IN (SELECT value FROM json_each(?1))",
        )?)?,
        feedback,
        deliveries: deliveries
            .into_iter()
            .map(|(id, lead, destination, status, attempts, lease): (_, _, _, _, u32, Option<i64>)| {
                let (lead, state) = (parse(&lead)?, outbox_state(&status)?);
                Ok(OutboxRow { id, lead, destination, state, attempts, lease_until: lease.map(from_millis) })
            })
            .collect::<Result<_, StoreError>>()?,
        attempts: query(
            conn,
            "SELECT a.id, a.delivery_id, a.request IS NOT NULL OR a.response IS NOT NULL OR a.error IS NOT NULL
             FROM delivery_attempts a JOIN outbox o ON o.id = a.delivery_id
             WHERE o.lead_id IN (SELECT value FROM json_each(?1))",
            [&leads],
            |r| Ok(AttemptRow { id: r.get(0)?, delivery: r.get(1)?, holds_text: r.get(2)? }),
        )?,
        reports: reports
            .into_iter()
            .map(|(id, report)| Ok((parse(&id)?, report)))
            .collect::<Result<_, StoreError>>()?,
    })
}

fn query<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    Ok(conn.prepare_cached(sql)?.query_map(params, row)?.collect::<Result<_, _>>()?)
}

/// Ids as the JSON array `json_each` reads.
fn list<T: ToString>(ids: impl IntoIterator<Item = T>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    serde_json::Value::from(ids).to_string()
}

fn ids<T: FromStr>(found: Vec<String>) -> Result<Vec<T>, StoreError> {
    found.iter().map(|id| parse(id)).collect()
}

fn parse<T: FromStr>(id: &str) -> Result<T, StoreError> {
    id.parse().map_err(|_| StoreError::Corrupt(format!("id {id:?}")))
}
