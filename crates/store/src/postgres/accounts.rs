//! Accounts in PostgreSQL: found by the keys they hold, assigned inside the transaction
//! that writes the lead.
//!
//! Two instances may found an account for one domain at once. No advisory lock lines them
//! up (it would serialize every capture of one company); the primary key on
//! `account_keys` decides instead: the founding insert that loses fails with a unique
//! violation, and its capture runs again and joins the account that won.

use super::Fail;
use super::apply::Op;
use super::sql::{exec, lead_from_row, limit, opt, rows};
use crate::{AccountUpdate, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::account::{self, Account, Found};
use leadflow_core::{AccountId, Lead, LeadId};
use std::collections::HashMap;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::Json;
use uuid::Uuid;

/// Each of these account keys that an account holds, with the account. A key at a
/// time, each an index probe: one statement joining them all chose a plan that grew
/// with the table during a long import.
pub(super) async fn by_keys(c: &impl GenericClient, keys: &[String]) -> Result<Vec<Found>, Fail> {
    let mut found: Vec<Found> = Vec::new();
    for key in keys {
        let row = opt(c, "SELECT account_id FROM account_keys WHERE key = $1", &[key]).await?;
        if let Some(row) = row {
            let id = AccountId::from(row.try_get::<_, Uuid>(0)?);
            // A lead's domain and company key usually name the same account: read it once.
            let account = match found.iter().find(|f| f.account.id == id) {
                Some(earlier) => earlier.account.clone(),
                None => get(c, id).await?.ok_or_else(|| StoreError::Corrupt(format!("account {id} is missing")))?,
            };
            found.push(Found { key: key.clone(), account });
        }
    }
    Ok(found)
}

/// The accounts holding any of `$1` (account keys), each with every key it holds: for
/// many submissions at once. Each key is its own index probe (a nested loop over the
/// keys, forced by `LATERAL` and `OFFSET 0`), whatever the planner guesses of the array.
pub(super) const BY_KEYS: &str = "SELECT k.key, a.id, a.name, a.owner, a.created_at, a.updated_at,
         ARRAY(SELECT h.key FROM account_keys h WHERE h.account_id = a.id ORDER BY h.key COLLATE \"C\")
     FROM unnest($1::text[]) AS k (key)
     CROSS JOIN LATERAL (SELECT account_id FROM account_keys WHERE key = k.key OFFSET 0) ak
     CROSS JOIN LATERAL (SELECT * FROM accounts WHERE id = ak.account_id OFFSET 0) a";

/// The rows of [`BY_KEYS`], by key.
pub(super) fn found_by_key(rows: &[Row]) -> Result<HashMap<String, Account>, Fail> {
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let mut account = Account {
            id: AccountId::from(row.try_get::<_, Uuid>(1)?),
            name: row.try_get(2)?,
            domains: Vec::new(),
            company_keys: Vec::new(),
            owner: row.try_get(3)?,
            created_at: row.try_get(4)?,
            updated_at: row.try_get(5)?,
        };
        hold(&mut account, row.try_get::<_, Vec<String>>(6)?);
        found.insert(row.try_get(0)?, account);
    }
    Ok(found)
}

/// Gives the account the domains and company names its keys stand for, in key order.
fn hold(account: &mut Account, keys: Vec<String>) {
    for key in keys {
        if let Some(d) = key.strip_prefix("d:") {
            account.domains.push(d.to_owned());
        } else if let Some(k) = key.strip_prefix("c:") {
            account.company_keys.push(k.to_owned());
        }
    }
}

/// The keys an account holds: its domains' and its company names'.
pub(super) fn keys_of(account: &Account) -> Vec<String> {
    let mut keys: Vec<String> = account
        .domains
        .iter()
        .map(|d| account::domain_key(d))
        .chain(account.company_keys.iter().map(|k| account::company_key(k)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A new account and its keys. No `ON CONFLICT` on the keys: they were free when read, so
/// one taken now was taken by a concurrent transaction, and the unique violation makes
/// this capture run again.
pub(super) fn insert_ops(account: &Account) -> Vec<Op<'_>> {
    let keys = keys_of(account);
    vec![
        Op::new(
            "INSERT INTO accounts (id, name, owner, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
            vec![
                Box::new(account.id.as_uuid()),
                Box::new(&account.name),
                Box::new(&account.owner),
                Box::new(account.created_at),
                Box::new(account.updated_at),
            ],
        )
        .many(
            "INSERT INTO accounts (id, name, owner, created_at, updated_at)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])",
        ),
        Op::new(
            "INSERT INTO account_keys (key, account_id) SELECT k, $2 FROM jsonb_array_elements_text($1) AS k",
            vec![Box::new(Json(keys)), Box::new(account.id.as_uuid())],
        )
        .many(
            "INSERT INTO account_keys (key, account_id)
             SELECT k, r.account FROM unnest($1::jsonb[], $2::uuid[]) AS r (keys, account)
             CROSS JOIN LATERAL jsonb_array_elements_text(r.keys) AS k",
        ),
    ]
}

/// Records keys for an account; a key another account already holds stays with it.
pub(super) fn insert_keys_op(id: AccountId, keys: &[String]) -> Option<Op<'_>> {
    (!keys.is_empty()).then(|| {
        Op::new(
            "INSERT INTO account_keys (key, account_id) SELECT k, $2 FROM jsonb_array_elements_text($1) AS k
             ON CONFLICT DO NOTHING",
            vec![Box::new(Json(keys)), Box::new(*id.as_uuid())],
        )
        .many(
            "INSERT INTO account_keys (key, account_id)
             SELECT k, r.account FROM unnest($1::jsonb[], $2::uuid[]) AS r (keys, account)
             CROSS JOIN LATERAL jsonb_array_elements_text(r.keys) AS k
             ON CONFLICT DO NOTHING",
        )
    })
}

pub(super) async fn get(c: &impl GenericClient, id: AccountId) -> Result<Option<Account>, Fail> {
    let row = opt(c, "SELECT name, owner, created_at, updated_at FROM accounts WHERE id = $1", &[id.as_uuid()]).await?;
    let Some(row) = row else { return Ok(None) };
    let mut account = Account {
        id,
        name: row.try_get(0)?,
        domains: Vec::new(),
        company_keys: Vec::new(),
        owner: row.try_get(1)?,
        created_at: row.try_get(2)?,
        updated_at: row.try_get(3)?,
    };
    // `COLLATE "C"`: the order SQLite gives, whatever the database's collation.
    let keys =
        rows(c, "SELECT key FROM account_keys WHERE account_id = $1 ORDER BY key COLLATE \"C\"", &[id.as_uuid()])
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
    hold(&mut account, keys);
    Ok(Some(account))
}

pub(super) async fn list(c: &impl GenericClient, after: Option<AccountId>, n: usize) -> Result<Vec<Account>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    let ids = rows(c, "SELECT id FROM accounts WHERE id > $1 ORDER BY id LIMIT $2", &[&after, &limit(n)]).await?;
    let mut accounts = Vec::with_capacity(ids.len());
    for row in ids {
        let id = AccountId::from(row.try_get::<_, Uuid>(0)?);
        accounts.extend(get(c, id).await?);
    }
    Ok(accounts)
}

pub(super) async fn leads(
    c: &impl GenericClient,
    id: AccountId,
    after: Option<LeadId>,
    n: usize,
) -> Result<Vec<Lead>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    rows(
        c,
        "SELECT doc FROM leads WHERE account_id = $1 AND merged_into IS NULL AND id > $2 ORDER BY id LIMIT $3",
        &[id.as_uuid(), &after, &limit(n)],
    )
    .await?
    .iter()
    .map(|r| lead_from_row(r, 0))
    .collect()
}

pub(super) async fn update(
    c: &impl GenericClient,
    id: AccountId,
    update: &AccountUpdate,
) -> Result<Option<Account>, Fail> {
    // Locked: two people changing one account at once change it one after the other.
    if opt(c, "SELECT id FROM accounts WHERE id = $1 FOR UPDATE", &[id.as_uuid()]).await?.is_none() {
        return Ok(None);
    }
    for domain in &update.add_domains {
        let key = account::domain_key(domain);
        // Inserted first, then read: of two accounts claiming a domain at once, one
        // insert waits for the other and finds the key taken.
        exec(
            c,
            "INSERT INTO account_keys (key, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, id.as_uuid()],
        )
        .await?;
        let holder: Uuid = opt(c, "SELECT account_id FROM account_keys WHERE key = $1", &[&key])
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("account key of {id} vanished")))?
            .try_get(0)?;
        if holder != *id.as_uuid() {
            return Err(StoreError::Conflict(format!("the domain {domain} belongs to account {holder}")).into());
        }
    }
    let now = OffsetDateTime::now_utc();
    if let Some(name) = &update.name {
        exec(c, "UPDATE accounts SET name = $2 WHERE id = $1", &[id.as_uuid(), name]).await?;
    }
    if let Some(owner) = &update.owner {
        exec(c, "UPDATE accounts SET owner = $2 WHERE id = $1", &[id.as_uuid(), owner]).await?;
    }
    exec(c, "UPDATE accounts SET updated_at = $2 WHERE id = $1", &[id.as_uuid(), &now]).await?;
    get(c, id).await
}

/// Leads stored before accounts existed get theirs.
pub(super) async fn backfill(c: &impl GenericClient) -> Result<(), Fail> {
    let found =
        rows(c, "SELECT doc FROM leads WHERE merged_into IS NULL AND account_id IS NULL ORDER BY id", &[]).await?;
    let now = OffsetDateTime::now_utc();
    let mut assigned = 0usize;
    for row in &found {
        let mut lead = lead_from_row(row, 0)?;
        let found = by_keys(c, &account::wanted_keys(&lead)).await?;
        super::apply::apply(c, &account::join(&mut lead, &found, now)).await?;
        if let Some(account) = lead.account_id {
            exec(
                c,
                "UPDATE leads SET account_id = $2, doc = $3 WHERE id = $1",
                &[lead.id.as_uuid(), account.as_uuid(), &Json(&lead)],
            )
            .await?;
            assigned += 1;
        }
    }
    if assigned > 0 {
        tracing::info!(leads = assigned, "assigned existing leads to accounts");
    }
    Ok(())
}
