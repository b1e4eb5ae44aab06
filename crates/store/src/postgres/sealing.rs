//! Encryption at rest on PostgreSQL: the types statements bind and read personal values
//! through, the store's key ring, and re-encryption.
//!
//! PostgreSQL keeps documents in `jsonb`, so a sealed document is a JSON string holding
//! the sealed value ([`crate::cipher`]) in base64; a sealed `text` value is that base64
//! alone, a sealed `bytea` the sealed bytes. Lookup columns hold blind indexes. Personal
//! values pass through [`Sealed`], [`Opened`], [`Blind`] and their kin, which seal, open
//! and blind under the cipher of the store the running call belongs to: a task-local set
//! by `transaction!` and `read!` (so every statement seals without carrying the cipher
//! along, and one run outside them fails instead of writing in clear). Without a key they
//! pass values through unchanged.

use super::Fail;
use super::sql::{exec, opt, rows};
use crate::StoreError;
use crate::cipher::{Cipher, CipherError, PROGRESS_CURSOR, Progress, Purpose, Reencrypted, StoredKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{BufMut, BytesMut};
use deadpool_postgres::GenericClient;
use leadflow_core::encryption::MasterKeys;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio_postgres::types::{FromSql, IsNull, Json, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

tokio::task_local! {
    static CIPHER: Option<Arc<Cipher>>;
}

/// Runs `f` (a call on the store) sealing under `cipher`, or in clear without one.
pub(super) async fn scoped<F: Future>(cipher: Option<Arc<Cipher>>, f: F) -> F::Output {
    CIPHER.scope(cipher, f).await
}

fn with<R>(f: impl FnOnce(Option<&Cipher>) -> R) -> Result<R, BoxError> {
    CIPHER
        .try_with(|c| f(c.as_deref()))
        .map_err(|_| "a personal value was bound or read outside a store call that knows its keys".into())
}

/// Whether the running call's store seals personal data.
pub(super) fn sealed() -> Result<bool, Fail> {
    with(|c| c.is_some()).map_err(|e| StoreError::Internal(e.to_string()).into())
}

/// A text value sealed, as base64.
fn sealed_text(cipher: &Cipher, plain: &[u8]) -> Result<String, BoxError> {
    Ok(URL_SAFE_NO_PAD.encode(cipher.seal(plain, true)?))
}

/// The plaintext of a value stored as base64 text, or `None` when it is not sealed (a
/// value stored before encryption was switched on, read as it is).
fn opened_text(cipher: &Cipher, stored: &str) -> Result<Option<Vec<u8>>, CipherError> {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(stored) else { return Ok(None) };
    Ok(cipher.open(&bytes)?.map(|(_, plain)| plain))
}

fn is_json(ty: &Type) -> bool {
    *ty == Type::JSONB || *ty == Type::JSON
}

/// A personal document bound to a `jsonb` parameter.
#[derive(Debug)]
pub(super) struct Sealed<T>(pub T);

impl<T: Serialize + fmt::Debug> ToSql for Sealed<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match with(|c| c.map(|c| serde_json::to_vec(&self.0).map_err(BoxError::from).and_then(|p| sealed_text(c, &p))))?
        {
            None => Json(&self.0).to_sql(ty, out),
            Some(sealed) => Json(sealed?).to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }

    to_sql_checked!();
}

/// A personal document already serialized, bound to a `text` parameter the statement
/// casts to `jsonb`: sealed, it becomes the JSON string of the sealed value.
#[derive(Debug)]
pub(super) struct SealedJsonText<T>(pub T);

impl<T: AsRef<str> + fmt::Debug> ToSql for SealedJsonText<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = self.0.as_ref();
        match with(|c| c.map(|c| sealed_text(c, value.as_bytes())))? {
            None => value.to_sql(ty, out),
            Some(sealed) => serde_json::to_string(&sealed?)?.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// Personal text bound to a `text` parameter.
#[derive(Debug)]
pub(super) struct SealedText<T>(pub T);

impl<T: AsRef<str> + fmt::Debug> ToSql for SealedText<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = self.0.as_ref();
        match with(|c| c.map(|c| sealed_text(c, value.as_bytes())))? {
            None => value.to_sql(ty, out),
            Some(sealed) => sealed?.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// Personal bytes bound to a `bytea` parameter.
#[derive(Debug)]
pub(super) struct SealedBytes<'a>(pub &'a [u8]);

impl ToSql for SealedBytes<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match with(|c| c.map(|c| c.seal(self.0, false)))? {
            None => self.0.to_sql(ty, out),
            Some(sealed) => sealed?.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&[u8] as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A value an exact lookup finds a row by (an email, a mailbox key, an external id):
/// stored and looked up as its blind index.
#[derive(Debug)]
pub(super) struct Blind<T>(pub T);

impl<T: AsRef<str> + fmt::Debug> ToSql for Blind<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = self.0.as_ref();
        match with(|c| c.map(|c| c.blind(value)))? {
            None => value.to_sql(ty, out),
            Some(blind) => blind.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A matching key's 64-bit blind index ([`Cipher::blind_key`]) as the `text` column of
/// `lead_keys` holds it: in base64.
fn blind_key_text(cipher: &Cipher, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(cipher.blind_key(key))
}

/// Matching keys bound to a `text[]` or a `jsonb` (array) parameter.
#[derive(Debug)]
pub(super) struct Keys<'a>(pub &'a [String]);

impl ToSql for Keys<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let blinded = with(|c| c.map(|c| self.0.iter().map(|k| blind_key_text(c, k)).collect::<Vec<_>>()))?;
        let keys = blinded.as_deref().unwrap_or(self.0);
        if is_json(ty) { Json(keys).to_sql(ty, out) } else { keys.to_sql(ty, out) }
    }

    fn accepts(ty: &Type) -> bool {
        is_json(ty) || <Vec<String> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A personal document read from a `json` or `jsonb` column.
#[derive(Debug)]
pub(super) struct Opened<T>(pub T);

/// A `jsonb` value's text: the binary format is a version byte before it.
fn json_text<'a>(ty: &Type, raw: &'a [u8]) -> Result<&'a [u8], BoxError> {
    if *ty == Type::JSONB {
        match raw.split_first() {
            Some((1, rest)) => Ok(rest),
            _ => Err("unsupported jsonb encoding version".into()),
        }
    } else {
        Ok(raw)
    }
}

impl<'a, T: DeserializeOwned> FromSql<'a> for Opened<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = json_text(ty, raw)?;
        let plain = with(|c| match c {
            Some(c) if text.first() == Some(&b'"') => {
                let stored: String = serde_json::from_slice(text)?;
                Ok::<_, BoxError>(opened_text(c, &stored)?)
            }
            _ => Ok(None),
        })??;
        Ok(Self(match plain {
            Some(plain) => serde_json::from_slice(&plain)?,
            None => serde_json::from_slice(text)?,
        }))
    }

    fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }
}

/// Personal text read from a `text` column.
#[derive(Debug)]
pub(super) struct OpenedText(pub String);

impl<'a> FromSql<'a> for OpenedText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let stored = <&str as FromSql>::from_sql(ty, raw)?;
        let plain = with(|c| c.map(|c| opened_text(c, stored)).transpose())??.flatten();
        Ok(Self(match plain {
            Some(plain) => String::from_utf8(plain)?,
            None => stored.to_owned(),
        }))
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

/// Personal bytes read from a `bytea` column.
#[derive(Debug)]
pub(super) struct OpenedBytes(pub Vec<u8>);

impl<'a> FromSql<'a> for OpenedBytes {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let stored = <&[u8] as FromSql>::from_sql(ty, raw)?;
        let plain = with(|c| c.map(|c| c.open(stored)).transpose())??.flatten();
        Ok(Self(match plain {
            Some((_, plain)) => plain,
            None => stored.to_vec(),
        }))
    }

    fn accepts(ty: &Type) -> bool {
        <&[u8] as FromSql>::accepts(ty)
    }
}

/// The option's text, opened.
pub(super) fn text(value: Option<OpenedText>) -> Option<String> {
    value.map(|t| t.0)
}

// ---------------------------------------------------------------------------------------
// The key ring and re-encryption

/// Opens the store's key ring with the configured master keys, as on SQLite (see
/// `sqlite::sealing::open_keyring`): `None` when encryption is off (a database that holds
/// keys refuses to open without them). Keys the ring lacks are created; a new master key's
/// arrival starts re-encryption; the first time, what the database held is converted.
pub(super) async fn open_keyring(
    c: &impl GenericClient,
    masters: Option<&MasterKeys>,
) -> Result<Option<Arc<Cipher>>, Fail> {
    // Instances starting together open the ring one after the other: one creates the keys.
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&KEYRING_LOCK]).await?;
    let stored = rows(c, "SELECT id, purpose, master_id, wrapped FROM encryption_keys ORDER BY created_at, id", &[])
        .await?
        .iter()
        .map(|r| {
            let purpose: String = r.try_get(1)?;
            let purpose = Purpose::parse(&purpose)
                .ok_or_else(|| Fail::Store(StoreError::Corrupt(format!("key purpose {purpose:?}"))))?;
            Ok(StoredKey { id: r.try_get(0)?, purpose, master_id: r.try_get(2)?, wrapped: r.try_get(3)? })
        })
        .collect::<Result<Vec<_>, Fail>>()?;
    let Some(masters) = masters else {
        return if stored.is_empty() { Ok(None) } else { Err(StoreError::from(CipherError::KeyRequired).into()) };
    };
    let (cipher, changes) = Cipher::from_keyring(&stored, masters).map_err(StoreError::from)?;
    let fresh = stored.is_empty();
    let now = OffsetDateTime::now_utc();
    for key in &changes.insert {
        exec(
            c,
            "INSERT INTO encryption_keys (id, purpose, master_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&key.id, &key.purpose.as_str(), &key.master_id, &key.wrapped, &now],
        )
        .await?;
    }
    for key in &changes.rewrap {
        exec(
            c,
            "UPDATE encryption_keys SET master_id = $2, wrapped = $3 WHERE id = $1",
            &[&key.id, &key.master_id, &key.wrapped],
        )
        .await?;
    }
    if progress(c).await?.is_none()
        && let Some(run) = Progress::needed(fresh, &cipher)
    {
        save(c, Some(&run)).await?;
    }
    if !changes.insert.is_empty() || !changes.rewrap.is_empty() {
        tracing::info!(data_key = cipher.active_key(), "encryption key ring updated");
    }
    Ok(Some(Arc::new(cipher)))
}

/// The advisory lock the key ring is opened under (an arbitrary constant: "lfkeys").
const KEYRING_LOCK: i64 = 0x6c66_6b65_7973;

async fn progress(c: &impl GenericClient) -> Result<Option<Progress>, Fail> {
    let Some(row) = opt(c, "SELECT value FROM cursors WHERE name = $1", &[&PROGRESS_CURSOR]).await? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_str(row.try_get(0)?)?))
}

async fn save(c: &impl GenericClient, progress: Option<&Progress>) -> Result<(), Fail> {
    match progress {
        Some(p) => {
            exec(
                c,
                "INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, now())
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                &[&PROGRESS_CURSOR, &serde_json::to_string(p)?],
            )
            .await?;
        }
        None => {
            exec(c, "DELETE FROM cursors WHERE name = $1", &[&PROGRESS_CURSOR]).await?;
        }
    }
    Ok(())
}

/// Whether the first conversion of a database that held data in clear is under way: the
/// store finishes it before serving, since lookups need the blind indexes.
pub(super) async fn converting(c: &impl GenericClient) -> Result<bool, Fail> {
    Ok(progress(c).await?.is_some_and(|p| p.convert))
}

/// How a personal column is stored.
#[derive(Clone, Copy)]
enum Column {
    Json(&'static str),
    Text(&'static str),
    Bytes(&'static str),
    /// A lookup column, made a blind index when converting; its value as `expr` gives it.
    Blind(&'static str, &'static str),
}

/// One table's personal columns, walked in the order of `key` (of SQL type `key_type`).
struct Step {
    table: &'static str,
    key: &'static str,
    key_type: &'static str,
    columns: &'static [Column],
}

const STEPS: &[Step] = &[
    Step {
        table: "leads",
        key: "id",
        key_type: "uuid",
        columns: &[
            Column::Json("doc"),
            Column::Blind("email", "email"),
            Column::Blind("email_key", "email_key"),
            Column::Blind("external_id", "external_id"),
        ],
    },
    Step {
        table: "submissions",
        key: "id",
        key_type: "uuid",
        columns: &[Column::Json("payload"), Column::Text("error")],
    },
    Step { table: "lead_history", key: "id", key_type: "bigint", columns: &[Column::Json("entry")] },
    Step { table: "imports", key: "id", key_type: "uuid", columns: &[Column::Bytes("file"), Column::Bytes("report")] },
    Step { table: "duplicate_reviews", key: "id", key_type: "uuid", columns: &[Column::Json("evidence")] },
    Step {
        table: "events",
        key: "id",
        key_type: "uuid",
        columns: &[
            Column::Json("doc"),
            Column::Blind("email", "lower(trim(email))"),
            Column::Blind("external_id", "external_id"),
        ],
    },
    Step { table: "touchpoints", key: "id", key_type: "bigint", columns: &[Column::Json("doc")] },
    Step {
        table: "feedback",
        key: "id",
        key_type: "uuid",
        columns: &[Column::Json("doc"), Column::Blind("crm_record", "crm_record")],
    },
    Step { table: "lead_records", key: "lead_id", key_type: "uuid", columns: &[Column::Json("record")] },
    Step {
        table: "outbox",
        key: "seq",
        key_type: "bigint",
        columns: &[Column::Json("payload"), Column::Text("last_error"), Column::Text("last_response")],
    },
    Step {
        table: "delivery_attempts",
        key: "id",
        key_type: "bigint",
        columns: &[Column::Text("error"), Column::Text("request"), Column::Text("response")],
    },
    Step { table: "consent_ledger", key: "id", key_type: "bigint", columns: &[Column::Json("doc")] },
];

/// A stored value as it is read and written back by re-encryption: the raw text of a
/// `jsonb` or `text` column, or a `bytea`'s bytes.
#[derive(Debug)]
enum Raw {
    Json(String),
    Text(String),
    Bytes(Vec<u8>),
}

impl<'a> FromSql<'a> for Raw {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if is_json(ty) {
            Ok(Self::Json(String::from_utf8(json_text(ty, raw)?.to_vec())?))
        } else if *ty == Type::BYTEA {
            Ok(Self::Bytes(raw.to_vec()))
        } else {
            Ok(Self::Text(<String as FromSql>::from_sql(ty, raw)?))
        }
    }

    fn accepts(ty: &Type) -> bool {
        is_json(ty) || *ty == Type::BYTEA || <String as FromSql>::accepts(ty)
    }
}

impl ToSql for Raw {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Self::Json(text) => {
                if *ty == Type::JSONB {
                    out.put_u8(1);
                }
                out.put_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            Self::Text(text) => text.to_sql(ty, out),
            Self::Bytes(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        is_json(ty) || *ty == Type::BYTEA || <String as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// The value sealed under the active data key, whatever it was sealed under before (or
/// in clear); `None` when it already is.
fn reseal(cipher: &Cipher, value: &Raw) -> Result<Option<Raw>, CipherError> {
    Ok(Some(match value {
        Raw::Bytes(b) if cipher.is_current(b) => return Ok(None),
        Raw::Bytes(b) => {
            let plain = cipher.open(b)?.map_or_else(|| b.clone(), |(_, p)| p);
            Raw::Bytes(cipher.seal(&plain, false)?)
        }
        Raw::Text(t) => match sealed_as(cipher, t)? {
            Stored::Current => return Ok(None),
            Stored::Earlier(plain) => Raw::Text(URL_SAFE_NO_PAD.encode(cipher.seal(&plain, true)?)),
            Stored::Clear => Raw::Text(URL_SAFE_NO_PAD.encode(cipher.seal(t.as_bytes(), true)?)),
        },
        // An emptied payload (retention) holds nothing to seal.
        Raw::Json(j) if j == "{}" => return Ok(None),
        Raw::Json(j) => {
            let inner = if j.starts_with('"') { serde_json::from_str::<String>(j).ok() } else { None };
            let state = match &inner {
                Some(s) => sealed_as(cipher, s)?,
                None => Stored::Clear,
            };
            let plain = match state {
                Stored::Current => return Ok(None),
                Stored::Earlier(plain) => plain,
                Stored::Clear => j.as_bytes().to_vec(),
            };
            let sealed = URL_SAFE_NO_PAD.encode(cipher.seal(&plain, true)?);
            Raw::Json(serde_json::to_string(&sealed).map_err(|_| CipherError::Damaged)?)
        }
    }))
}

/// How a base64 text value is sealed.
enum Stored {
    Current,
    /// Under an older key or the earlier way: its plaintext.
    Earlier(Vec<u8>),
    Clear,
}

fn sealed_as(cipher: &Cipher, stored: &str) -> Result<Stored, CipherError> {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(stored) else { return Ok(Stored::Clear) };
    if cipher.is_current(&bytes) {
        return Ok(Stored::Current);
    }
    Ok(match cipher.open(&bytes)? {
        Some((_, plain)) => Stored::Earlier(plain),
        None => Stored::Clear,
    })
}

/// Re-encrypts up to `limit` rows in one transaction, resuming where the last call
/// stopped; the cursor moves in the same transaction, so a crash loses nothing and redoes
/// nothing.
pub(super) async fn step(c: &impl GenericClient, cipher: &Cipher, limit: usize) -> Result<Reencrypted, Fail> {
    // Locked: instances running the job at once take turns, never doing a row twice.
    let locked = opt(c, "SELECT value FROM cursors WHERE name = $1 FOR UPDATE", &[&PROGRESS_CURSOR]).await?;
    let Some(row) = locked else { return Ok(Reencrypted { rows: 0, done: true }) };
    let mut at: Progress = serde_json::from_str(row.try_get(0)?)?;
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    while let Some(step) = STEPS.get(at.step) {
        if at.convert && at.step == 0 && at.after.is_none() {
            // Keys are the primary key (no walk can page over a key it rewrites):
            // converted at once.
            let keys: Vec<String> = rows(c, "SELECT DISTINCT key FROM lead_keys", &[])
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let blinds: Vec<String> = keys.iter().map(|k| blind_key_text(cipher, k)).collect();
            exec(
                c,
                "UPDATE lead_keys SET key = u.blind FROM unnest($1::text[], $2::text[]) AS u (clear, blind)
                 WHERE lead_keys.key = u.clear",
                &[&keys, &blinds],
            )
            .await?;
        }
        // Lookup columns become blind indexes once, when converting; re-encryption leaves
        // them alone (the index key never changes).
        let columns: Vec<Column> =
            step.columns.iter().copied().filter(|col| at.convert || !matches!(col, Column::Blind(..))).collect();
        let names: Vec<&str> = columns
            .iter()
            .map(|col| match col {
                Column::Json(n) | Column::Text(n) | Column::Bytes(n) | Column::Blind(n, _) => *n,
            })
            .collect();
        let selected: Vec<&str> = columns
            .iter()
            .map(|col| match col {
                Column::Blind(_, expr) => *expr,
                Column::Json(n) | Column::Text(n) | Column::Bytes(n) => *n,
            })
            .collect();
        // Two statements rather than one with `$1 IS NULL OR`, so each pages through the
        // key's index.
        let after = match &at.after {
            Some(_) => format!("WHERE {key} > $2::text::{key_type}", key = step.key, key_type = step.key_type),
            None => "WHERE $2::text IS NULL".to_owned(),
        };
        let found = rows(
            c,
            &format!(
                "SELECT {key}::text, {cols} FROM {table} {after} ORDER BY {key} LIMIT $1 FOR UPDATE",
                key = step.key,
                table = step.table,
                cols = selected.join(", ")
            ),
            &[&limit, &at.after],
        )
        .await?;
        let Some(last) = found.last() else {
            at = Progress { step: at.step + 1, after: None, convert: at.convert };
            continue;
        };
        let last: String = last.try_get(0)?;
        let sets: Vec<String> = names.iter().enumerate().map(|(i, n)| format!("{n} = ${}", i + 2)).collect();
        let update = format!(
            "UPDATE {table} SET {sets} WHERE {key} = $1::text::{key_type}",
            table = step.table,
            sets = sets.join(", "),
            key = step.key,
            key_type = step.key_type
        );
        let mut done = 0u64;
        for row in &found {
            let id: String = row.try_get(0)?;
            let mut values: Vec<Option<Raw>> = Vec::with_capacity(columns.len());
            let mut changed = false;
            for (i, col) in columns.iter().enumerate() {
                let stored: Option<Raw> = row.try_get(i + 1)?;
                let new = match (col, &stored) {
                    (_, None) => None,
                    (Column::Blind(..), Some(Raw::Text(v))) => Some(Raw::Text(cipher.blind(v))),
                    (_, Some(v)) => reseal(cipher, v).map_err(StoreError::from)?,
                };
                changed |= new.is_some();
                values.push(new.or(stored));
            }
            if !changed {
                continue;
            }
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id];
            params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
            done += exec(c, &update, &params).await?;
        }
        at.after = Some(last);
        save(c, Some(&at)).await?;
        return Ok(Reencrypted { rows: done, done: false });
    }
    save(c, None).await?;
    exec(c, "DELETE FROM encryption_keys WHERE purpose = 'data' AND id <> $1", &[&cipher.active_key()]).await?;
    tracing::info!(data_key = cipher.active_key(), "re-encryption finished; older data keys dropped");
    Ok(Reencrypted { rows: 0, done: true })
}
