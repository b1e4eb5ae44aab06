//! Encryption at rest on SQLite: the functions the statements seal, open and look up with,
//! the store's key ring, and re-encryption.
//!
//! Statements name the personal columns through `lf_seal(?)` when writing, `lf_open(col)`
//! when reading and `lf_blind(?)` (`lf_key(?)` for matching keys) when looking up, so no
//! value crosses into the file in clear and every code path goes through the same few
//! functions. Without a key they pass values through unchanged.

use crate::StoreError;
use crate::cipher::{Cipher, CipherError, PROGRESS_CURSOR, Progress, Purpose, Reencrypted, StoredKey};
use leadflow_core::encryption::MasterKeys;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::sync::Arc;

/// Registers the functions on a connection, sealing under `cipher` (or passing values
/// through without one). Statements cached before are dropped: they were compiled against
/// the previous definitions.
pub(super) fn register(conn: &Connection, cipher: Option<Arc<Cipher>>) -> Result<(), StoreError> {
    let deterministic = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let c = cipher.clone();
    conn.create_scalar_function("lf_seal", 1, FunctionFlags::SQLITE_UTF8, move |ctx| seal(c.as_deref(), ctx))?;
    let c = cipher.clone();
    conn.create_scalar_function("lf_open", 1, deterministic, move |ctx| open(c.as_deref(), ctx))?;
    let c = cipher.clone();
    // Deterministic, so `col = lf_blind(?1)` is computed once and reads the column's index.
    conn.create_scalar_function("lf_blind", 1, deterministic, move |ctx| blind(c.as_deref(), ctx))?;
    let c = cipher.clone();
    conn.create_scalar_function("lf_key", 1, deterministic, move |ctx| key(c.as_deref(), ctx))?;
    conn.create_scalar_function("lf_reseal", 1, FunctionFlags::SQLITE_UTF8, move |ctx| reseal(cipher.as_deref(), ctx))?;
    conn.flush_prepared_statement_cache();
    Ok(())
}

fn owned(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn failed(e: CipherError) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(e))
}

fn text(bytes: &[u8]) -> rusqlite::Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
}

fn seal(cipher: Option<&Cipher>, ctx: &Context<'_>) -> rusqlite::Result<Value> {
    let value = ctx.get_raw(0);
    let Some(cipher) = cipher else { return Ok(owned(value)) };
    Ok(match value {
        ValueRef::Text(t) => Value::Blob(cipher.seal(t, true).map_err(failed)?),
        ValueRef::Blob(b) => Value::Blob(cipher.seal(b, false).map_err(failed)?),
        other => owned(other),
    })
}

/// The value as stored, or as it was before it was sealed.
fn plain(cipher: &Cipher, stored: &[u8]) -> rusqlite::Result<Option<Value>> {
    Ok(match cipher.open(stored).map_err(failed)? {
        Some((true, text)) => Some(Value::Text(String::from_utf8(text).map_err(|e| failed_utf8(&e))?)),
        Some((false, blob)) => Some(Value::Blob(blob)),
        None => None,
    })
}

fn failed_utf8(e: &std::string::FromUtf8Error) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(e.to_string().into())
}

fn open(cipher: Option<&Cipher>, ctx: &Context<'_>) -> rusqlite::Result<Value> {
    let value = ctx.get_raw(0);
    // Without keys every value is plaintext, even one that looks sealed (a CRM's answer
    // may hold anything): a database with keys does not open without them.
    let Some(cipher) = cipher else { return Ok(owned(value)) };
    Ok(match value {
        ValueRef::Blob(b) => plain(cipher, b)?.unwrap_or_else(|| Value::Blob(b.to_vec())),
        other => owned(other),
    })
}

fn blind(cipher: Option<&Cipher>, ctx: &Context<'_>) -> rusqlite::Result<Value> {
    let value = ctx.get_raw(0);
    Ok(match (cipher, value) {
        (Some(cipher), ValueRef::Text(t)) => Value::Text(cipher.blind(text(t)?)),
        (_, other) => owned(other),
    })
}

/// A matching key as `lead_keys` holds it: in clear without a key, else its 64-bit blind
/// index as a blob ([`Cipher::blind_key`]).
fn key(cipher: Option<&Cipher>, ctx: &Context<'_>) -> rusqlite::Result<Value> {
    let value = ctx.get_raw(0);
    Ok(match (cipher, value) {
        (Some(cipher), ValueRef::Text(t)) => Value::Blob(cipher.blind_key(text(t)?).to_vec()),
        (_, other) => owned(other),
    })
}

/// A value sealed under the active data key, whatever it was sealed under before (or in
/// clear): what re-encryption writes back.
fn reseal(cipher: Option<&Cipher>, ctx: &Context<'_>) -> rusqlite::Result<Value> {
    let value = ctx.get_raw(0);
    let Some(cipher) = cipher else { return Ok(owned(value)) };
    Ok(match value {
        ValueRef::Blob(b) if cipher.is_current(b) => Value::Blob(b.to_vec()),
        ValueRef::Blob(b) => match cipher.open(b).map_err(failed)? {
            Some((text, plain)) => Value::Blob(cipher.seal(&plain, text).map_err(failed)?),
            None => Value::Blob(cipher.seal(b, false).map_err(failed)?),
        },
        ValueRef::Text(t) => Value::Blob(cipher.seal(t, true).map_err(failed)?),
        other => owned(other),
    })
}

/// Opens the store's key ring with the configured master keys: `None` when encryption is
/// off (a database that holds keys refuses to open without them). Keys the ring lacks are
/// created, and a new master key's arrival starts re-encryption; the first time, what the
/// database already held is converted before the store serves.
pub(super) fn open_keyring(
    conn: &mut Connection,
    masters: Option<&MasterKeys>,
) -> Result<Option<Arc<Cipher>>, StoreError> {
    let stored = conn
        .prepare("SELECT id, purpose, master_id, wrapped FROM encryption_keys ORDER BY created_at, id")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(id, purpose, master_id, wrapped)| {
            let purpose =
                Purpose::parse(&purpose).ok_or_else(|| StoreError::Corrupt(format!("key purpose {purpose:?}")))?;
            Ok(StoredKey { id, purpose, master_id, wrapped })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let Some(masters) = masters else {
        return if stored.is_empty() { Ok(None) } else { Err(StoreError::from(CipherError::KeyRequired)) };
    };
    let (cipher, changes) = Cipher::from_keyring(&stored, masters).map_err(StoreError::from)?;
    let fresh = stored.is_empty();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = super::now_ms();
    for key in &changes.insert {
        tx.execute(
            "INSERT INTO encryption_keys (id, purpose, master_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key.id, key.purpose.as_str(), key.master_id, key.wrapped, now],
        )?;
    }
    for key in &changes.rewrap {
        tx.execute(
            "UPDATE encryption_keys SET master_id = ?2, wrapped = ?3 WHERE id = ?1",
            params![key.id, key.master_id, key.wrapped],
        )?;
    }
    let earlier = progress(&tx)?;
    let current = fresh || format(&tx)?.as_deref() == Some(FORMAT);
    if !current {
        upgrade(&tx, earlier.as_ref())?;
    } else if earlier.is_none()
        && let Some(run) = Progress::needed(fresh, &cipher)
    {
        save(&tx, Some(&run))?;
    }
    if fresh || !current {
        put_cursor(&tx, FORMAT_CURSOR, FORMAT)?;
    }
    tx.commit()?;
    if !changes.insert.is_empty() || !changes.rewrap.is_empty() {
        tracing::info!(data_key = cipher.active_key(), "encryption key ring updated");
    }
    Ok(Some(Arc::new(cipher)))
}

/// Where the store's format is recorded: `lf2` values and 64-bit matching keys (see
/// [`crate::cipher`]). A store without it was written before and is moved over
/// ([`upgrade`]).
const FORMAT_CURSOR: &str = "encryption.format";
const FORMAT: &str = "lf2";

/// Moves a store written before the current format over: its matching keys from full
/// blind indexes (43 characters) to 64-bit ones, at once, since lookups need them; its
/// `lf1` values by a re-encryption run in the background, unless a run is under way (that
/// one seals what it still has to pass the current way; what it passed stays `lf1`,
/// readable).
fn upgrade(conn: &Connection, earlier: Option<&Progress>) -> Result<(), StoreError> {
    // A first conversion that has not reached the keys yet holds them in clear: it turns
    // them into 64-bit blind indexes itself.
    let keys_in_clear = earlier.is_some_and(|p| p.convert && p.step == 0 && p.after.is_none());
    if !keys_in_clear {
        conn.create_scalar_function("lf_key_of_full", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
            let full = ctx.get::<String>(0)?;
            Ok(crate::cipher::blind_key_of_full(&full).map(|k| k.to_vec()))
        })?;
        let keys = conn.execute(
            "UPDATE OR IGNORE lead_keys SET key = coalesce(lf_key_of_full(key), key) WHERE typeof(key) = 'text'",
            [],
        )?;
        conn.remove_function("lf_key_of_full", 1)?;
        tracing::info!(keys, "matching keys moved to 64-bit blind indexes");
    }
    if earlier.is_none() {
        save(conn, Some(&Progress { step: 0, after: None, convert: false }))?;
        tracing::info!("values sealed the earlier way are re-encrypted in the background");
    }
    Ok(())
}

fn format(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn.query_row("SELECT value FROM cursors WHERE name = ?1", [FORMAT_CURSOR], |r| r.get(0)).optional()?)
}

fn put_cursor(conn: &Connection, name: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![name, value, super::now_ms()],
    )?;
    Ok(())
}

fn progress(conn: &Connection) -> Result<Option<Progress>, StoreError> {
    let value: Option<String> =
        conn.query_row("SELECT value FROM cursors WHERE name = ?1", [PROGRESS_CURSOR], |r| r.get(0)).optional()?;
    Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
}

fn save(conn: &Connection, progress: Option<&Progress>) -> Result<(), StoreError> {
    match progress {
        Some(p) => put_cursor(conn, PROGRESS_CURSOR, &serde_json::to_string(p)?)?,
        None => {
            conn.execute("DELETE FROM cursors WHERE name = ?1", [PROGRESS_CURSOR])?;
        }
    }
    Ok(())
}

/// One table's personal columns.
struct Step {
    table: &'static str,
    /// What the walk orders by: the rowid, or the primary key of a table without one.
    key: &'static str,
    sealed: &'static [&'static str],
    /// Lookup columns and how each becomes a blind index, when converting.
    blind: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        table: "leads",
        key: "rowid",
        sealed: &["doc"],
        blind: &[
            ("email", "lf_blind(email)"),
            ("email_key", "lf_blind(email_key)"),
            ("external_id", "lf_blind(external_id)"),
        ],
    },
    Step { table: "submissions", key: "rowid", sealed: &["payload", "error"], blind: &[] },
    Step { table: "lead_history", key: "rowid", sealed: &["entry"], blind: &[] },
    Step { table: "imports", key: "rowid", sealed: &["file", "report"], blind: &[] },
    Step { table: "duplicate_reviews", key: "rowid", sealed: &["evidence"], blind: &[] },
    Step {
        table: "events",
        key: "rowid",
        sealed: &["doc"],
        blind: &[("email", "lf_blind(lower(trim(email)))"), ("external_id", "lf_blind(external_id)")],
    },
    Step { table: "touchpoints", key: "rowid", sealed: &["doc"], blind: &[] },
    Step { table: "feedback", key: "rowid", sealed: &["doc"], blind: &[] },
    Step { table: "lead_records", key: "lead_id", sealed: &["record"], blind: &[] },
    Step { table: "outbox", key: "rowid", sealed: &["payload", "last_error", "last_response"], blind: &[] },
    Step { table: "delivery_attempts", key: "rowid", sealed: &["error", "request", "response"], blind: &[] },
    Step { table: "consent_ledger", key: "rowid", sealed: &["doc"], blind: &[] },
];

/// Re-encrypts up to `limit` rows in one transaction, resuming where the last call
/// stopped; the cursor moves in the same transaction, so a crash loses nothing and redoes
/// nothing.
pub(super) fn step(conn: &Connection, cipher: &Cipher, limit: usize) -> Result<Reencrypted, StoreError> {
    let Some(mut at) = progress(conn)? else { return Ok(Reencrypted { rows: 0, done: true }) };
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let mut rows = 0u64;
    while let Some(step) = STEPS.get(at.step) {
        if at.convert && at.step == 0 && at.after.is_none() {
            // Keys are part of the primary key (no walk can page over a key it rewrites):
            // converted in one statement, once.
            conn.execute("UPDATE lead_keys SET key = lf_key(key)", [])?;
        }
        let after: Value = match (&at.after, step.key) {
            (None, "rowid") => Value::Integer(0),
            (None, _) => Value::Text(String::new()),
            (Some(a), "rowid") => Value::Integer(a.parse().map_err(|_| StoreError::Corrupt(format!("cursor {a:?}")))?),
            (Some(a), _) => Value::Text(a.clone()),
        };
        let last: Option<Value> = conn.query_row(
            &format!(
                "SELECT max(k) FROM (SELECT {key} AS k FROM {table} WHERE {key} > ?1 ORDER BY {key} LIMIT ?2)",
                key = step.key,
                table = step.table
            ),
            params![after, limit],
            |r| r.get(0),
        )?;
        let Some(last) = last.filter(|v| *v != Value::Null) else {
            at = Progress { step: at.step + 1, after: None, convert: at.convert };
            continue;
        };
        let mut set: Vec<String> = step.sealed.iter().map(|c| format!("{c} = lf_reseal({c})")).collect();
        if at.convert {
            set.extend(step.blind.iter().map(|(c, expr)| format!("{c} = {expr}")));
        }
        rows += conn.execute(
            &format!(
                "UPDATE {table} SET {set} WHERE {key} > ?1 AND {key} <= ?2",
                table = step.table,
                set = set.join(", "),
                key = step.key
            ),
            params![after, last],
        )? as u64;
        at.after = Some(match last {
            Value::Integer(i) => i.to_string(),
            Value::Text(t) => t,
            other => return Err(StoreError::Corrupt(format!("cursor value {other:?}"))),
        });
        save(conn, Some(&at))?;
        return Ok(Reencrypted { rows, done: false });
    }
    save(conn, None)?;
    conn.execute("DELETE FROM encryption_keys WHERE purpose = 'data' AND id <> ?1", [cipher.active_key()])?;
    tracing::info!(data_key = cipher.active_key(), "re-encryption finished; older data keys dropped");
    Ok(Reencrypted { rows, done: true })
}

/// Whether the first conversion of a database that held data in clear is under way: the
/// store finishes it before serving, since lookups need the blind indexes.
pub(super) fn converting(conn: &Connection) -> Result<bool, StoreError> {
    Ok(progress(conn)?.is_some_and(|p| p.convert))
}
