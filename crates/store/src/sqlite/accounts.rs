//! Accounts in SQLite: found by the keys they hold, assigned inside the transaction that
//! writes the lead.

use super::{from_millis, lead_from_doc, millis};
use crate::{AccountUpdate, StoreError};
use leadflow_core::account::{self, Account, Found};
use leadflow_core::{AccountId, Lead, LeadId};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

/// Each of these account keys that an account holds, with the account.
pub(super) fn by_keys(conn: &Connection, keys: &[String]) -> Result<Vec<Found>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT account_id FROM account_keys WHERE key = ?1")?;
    let mut found = Vec::new();
    for key in keys {
        let id: Option<String> = stmt.query_row([key], |r| r.get(0)).optional()?;
        if let Some(id) = id {
            let id: AccountId = id.parse().map_err(|_| StoreError::Corrupt("account id".into()))?;
            // A lead's domain and company key usually name the same account: read it once.
            let account = match found.iter().find(|f: &&Found| f.account.id == id) {
                Some(earlier) => earlier.account.clone(),
                None => get(conn, id)?.ok_or_else(|| StoreError::Corrupt(format!("account {id} is missing")))?,
            };
            found.push(Found { key: key.clone(), account });
        }
    }
    Ok(found)
}

pub(super) fn insert(conn: &Connection, account: &Account) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO accounts (id, name, owner, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![
            account.id.to_string(),
            account.name,
            account.owner,
            millis(account.created_at),
            millis(account.updated_at)
        ])?;
    let keys: Vec<String> = account
        .domains
        .iter()
        .map(|d| account::domain_key(d))
        .chain(account.company_keys.iter().map(|k| account::company_key(k)))
        .collect();
    insert_keys(conn, account.id, &keys)
}

/// Records keys for an account; a key another account already holds stays with it.
pub(super) fn insert_keys(conn: &Connection, id: AccountId, keys: &[String]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached("INSERT OR IGNORE INTO account_keys (key, account_id) VALUES (?1, ?2)")?;
    for key in keys {
        stmt.execute(params![key, id.to_string()])?;
    }
    Ok(())
}

pub(super) fn get(conn: &Connection, id: AccountId) -> Result<Option<Account>, StoreError> {
    let row = conn
        .prepare_cached("SELECT name, owner, created_at, updated_at FROM accounts WHERE id = ?1")?
        .query_row([id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })
        .optional()?;
    let Some((name, owner, created, updated)) = row else { return Ok(None) };
    let mut account = Account {
        id,
        name,
        domains: Vec::new(),
        company_keys: Vec::new(),
        owner,
        created_at: from_millis(created),
        updated_at: from_millis(updated),
    };
    // Sorted here, not by ORDER BY: with it SQLite re-prepared the statement on every
    // execution, a seventh of the writer thread's time during an import.
    let mut stmt = conn.prepare_cached("SELECT key FROM account_keys WHERE account_id = ?1")?;
    for key in stmt.query_map([id.to_string()], |r| r.get::<_, String>(0))? {
        let key = key?;
        if let Some(d) = key.strip_prefix("d:") {
            account.domains.push(d.to_owned());
        } else if let Some(c) = key.strip_prefix("c:") {
            account.company_keys.push(c.to_owned());
        }
    }
    account.domains.sort_unstable();
    account.company_keys.sort_unstable();
    Ok(Some(account))
}

pub(super) fn list(conn: &Connection, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM accounts WHERE id > ?1 ORDER BY id LIMIT ?2")?
        .query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut accounts = Vec::with_capacity(ids.len());
    for id in ids {
        let id: AccountId = id.parse().map_err(|_| StoreError::Corrupt("account id".into()))?;
        accounts.extend(get(conn, id)?);
    }
    Ok(accounts)
}

pub(super) fn leads(
    conn: &Connection,
    id: AccountId,
    after: Option<LeadId>,
    limit: usize,
) -> Result<Vec<Lead>, StoreError> {
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let docs: Vec<String> = conn
        .prepare_cached(
            "SELECT lf_open(doc) FROM leads WHERE account_id = ?1 AND merged_into IS NULL AND id > ?2 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![id.to_string(), after, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|d| lead_from_doc(d)).collect()
}

pub(super) fn update(conn: &Connection, id: AccountId, update: &AccountUpdate) -> Result<Option<Account>, StoreError> {
    if get(conn, id)?.is_none() {
        return Ok(None);
    }
    for domain in &update.add_domains {
        let key = account::domain_key(domain);
        let holder: Option<String> =
            conn.query_row("SELECT account_id FROM account_keys WHERE key = ?1", [&key], |r| r.get(0)).optional()?;
        match holder {
            Some(h) if h != id.to_string() => {
                return Err(StoreError::Conflict(format!("the domain {domain} belongs to account {h}")));
            }
            Some(_) => {}
            None => insert_keys(conn, id, &[key])?,
        }
    }
    let now = millis(OffsetDateTime::now_utc());
    if let Some(name) = &update.name {
        conn.execute("UPDATE accounts SET name = ?2 WHERE id = ?1", params![id.to_string(), name])?;
    }
    if let Some(owner) = &update.owner {
        conn.execute("UPDATE accounts SET owner = ?2 WHERE id = ?1", params![id.to_string(), owner])?;
    }
    conn.execute("UPDATE accounts SET updated_at = ?2 WHERE id = ?1", params![id.to_string(), now])?;
    get(conn, id)
}

/// Leads stored before accounts existed get theirs.
pub(super) fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let docs: Vec<String> = conn
        .prepare("SELECT lf_open(doc) FROM leads WHERE merged_into IS NULL AND account_id IS NULL ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let now = OffsetDateTime::now_utc();
    let mut assigned = 0usize;
    for doc in &docs {
        let mut lead = lead_from_doc(doc)?;
        let found = by_keys(conn, &account::wanted_keys(&lead))?;
        super::apply::apply(conn, &account::join(&mut lead, &found, now))?;
        if let Some(account) = lead.account_id {
            conn.execute(
                "UPDATE leads SET account_id = ?2, doc = lf_seal(?3) WHERE id = ?1",
                params![lead.id.to_string(), account.to_string(), serde_json::to_string(&lead)?],
            )?;
            assigned += 1;
        }
    }
    if assigned > 0 {
        tracing::info!(leads = assigned, "assigned existing leads to accounts");
    }
    Ok(())
}
