//! The writer thread: it takes every command waiting in its queue, applies them in one
//! transaction, commits once, and only then answers the callers. The parent module says why.

use super::{Command, KEY_COLUMNS, capture, health, key_from_row, millis};
use crate::{Captured, StoreError};
use leadflow_core::error::FieldError;
use leadflow_core::health::Tally;
use leadflow_core::keys::{ApiKey, TokenHash};
use leadflow_core::{KeyId, SubmissionId};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Commands waiting beyond this are applied in the next group; it bounds how long one
/// transaction holds the write lock.
const MAX_GROUP_ITEMS: usize = 4096;

pub(super) fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Command>) {
    let mut closing_requested = false;
    loop {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut group = vec![first];
        let mut items = 0;
        while items < MAX_GROUP_ITEMS {
            match rx.try_recv() {
                Ok(cmd) => {
                    if let Command::Capture(v, _, _) = &cmd {
                        items += v.len();
                    }
                    group.push(cmd);
                }
                Err(_) => break,
            }
        }
        if group.iter().any(|c| matches!(c, Command::Close(_))) {
            closing_requested = true;
        }
        // Fast path: the whole group in one transaction without savepoints. A savepoint
        // makes SQLite copy every page a statement first touches into a sub-journal, and
        // blocking keys land on random pages: that copying cost more than the writes.
        // Failures are rare (a conflict, a bug); only then is the group redone with a
        // savepoint per command, so one failing command spoils nothing else.
        let answers = match apply_group(&mut conn, &group, false) {
            Ok(answers) => Ok(answers),
            Err(e) => {
                tracing::warn!(error = %e, commands = group.len(), "a write failed; redoing its group command by command");
                apply_group(&mut conn, &group, true)
            }
        };
        match answers {
            Ok(answers) => {
                for (cmd, answer) in group.into_iter().zip(answers) {
                    answer_command(cmd, answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                let e = StoreError::Unavailable(format!("the transaction did not commit: {e}"));
                for cmd in group {
                    fail_command(cmd, &e);
                }
            }
        }
        if closing_requested {
            break;
        }
    }
    // Answer anything still queued: the store is closed.
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        fail_command(cmd, &StoreError::Closed);
    }
}

/// What a command produced, before its transaction committed.
pub(super) enum Answer {
    Captured(Vec<Captured>),
    Unit,
    Key(Option<ApiKey>),
}

/// Applies a group in one transaction and commits it. Unguarded, the first failure
/// aborts the whole group (`Err`); guarded, each command runs in its own savepoint and its
/// failure is its own answer.
pub(super) fn apply_group(
    conn: &mut Connection,
    group: &[Command],
    guarded: bool,
) -> Result<Vec<Result<Answer, StoreError>>, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Foreign keys are checked once, at commit, rather than by each statement: an
    // immediate check makes every insert keep a statement journal of the pages it
    // touches. A violation (a bug, never data) fails the commit, and nobody is told
    // their write succeeded.
    tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
    // The group's health counts, added once before the commit. A command undone by its
    // savepoint counts nothing.
    let mut tally = Tally::default();
    let mut answers = Vec::with_capacity(group.len());
    for cmd in group {
        if guarded {
            let mut counted = Tally::default();
            let answer = match cmd {
                Command::Capture(items, model, _) => {
                    // Redo the request item by item, so the failing item is kept as
                    // pending and the rest settle.
                    match in_savepoint(&mut tx, |sp| {
                        capture::capture_all(sp, items, capture::Isolation::Request, model, &mut counted)
                    }) {
                        Ok(done) => Ok(Answer::Captured(done)),
                        Err(_) => {
                            counted = Tally::default();
                            in_savepoint(&mut tx, |sp| {
                                capture::capture_all(sp, items, capture::Isolation::PerItem, model, &mut counted)
                            })
                            .map(Answer::Captured)
                        }
                    }
                }
                other => in_savepoint(&mut tx, |sp| run_command(sp, other, &mut counted)),
            };
            if answer.is_ok() {
                tally.extend(counted);
            }
            answers.push(answer);
        } else {
            answers.push(Ok(run_command(&tx, cmd, &mut tally)?));
        }
    }
    health::write(&tx, &tally)?;
    tx.commit()?;
    Ok(answers)
}

pub(super) fn run_command(conn: &Connection, cmd: &Command, tally: &mut Tally) -> Result<Answer, StoreError> {
    Ok(match cmd {
        Command::Capture(items, model, _) => {
            Answer::Captured(capture::capture_all(conn, items, capture::Isolation::Request, model, tally)?)
        }
        Command::Enqueue(subs, _) => capture::enqueue_all(conn, subs, tally).map(|()| Answer::Unit)?,
        Command::Quarantine(items, _) => Answer::Captured(capture::quarantine_all(conn, items, tally)?),
        Command::Reject(id, errors, _) => reject(conn, *id, errors, tally).map(|()| Answer::Unit)?,
        Command::CreateKey(key, hash, _) => create_key(conn, key, *hash).map(|()| Answer::Unit)?,
        Command::RevokeKey(which, _) => Answer::Key(revoke_key(conn, which)?),
        Command::Exec(write, _) => write(conn).map(|()| Answer::Unit)?,
        Command::Close(_) => Answer::Unit,
    })
}

/// Sends a committed answer to the caller that waits for it. A caller that gave up
/// (timeout, disconnect) no longer listens; the write stands.
pub(super) fn answer_command(cmd: Command, answer: Result<Answer, StoreError>) {
    let mismatch = || StoreError::Internal("a write produced the wrong kind of answer".into());
    match (cmd, answer) {
        (Command::Capture(items, rules, r), Ok(Answer::Captured(c))) => {
            // The caller holds the items too: dropping ours first leaves freeing them (their
            // payloads are trees of small allocations) to the caller's thread, not the writer.
            drop((items, rules));
            drop(r.send(Ok(c)));
        }
        (Command::Quarantine(_, r), Ok(Answer::Captured(c))) => drop(r.send(Ok(c))),
        (Command::RevokeKey(_, r), Ok(Answer::Key(k))) => drop(r.send(Ok(k))),
        (
            Command::Enqueue(_, r)
            | Command::Reject(_, _, r)
            | Command::CreateKey(_, _, r)
            | Command::Exec(_, r)
            | Command::Close(r),
            Ok(Answer::Unit),
        ) => drop(r.send(Ok(()))),
        (cmd, Err(e)) => fail_command_with(cmd, e),
        (cmd, Ok(_)) => fail_command_with(cmd, mismatch()),
    }
}

pub(super) fn fail_command_with(cmd: Command, e: StoreError) {
    match cmd {
        Command::Capture(_, _, r) | Command::Quarantine(_, r) => drop(r.send(Err(e))),
        Command::Enqueue(_, r)
        | Command::Reject(_, _, r)
        | Command::CreateKey(_, _, r)
        | Command::Exec(_, r)
        | Command::Close(r) => drop(r.send(Err(e))),
        Command::RevokeKey(_, r) => drop(r.send(Err(e))),
    }
}

pub(super) fn fail_command(cmd: Command, e: &StoreError) {
    let e = match e {
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Unavailable(other.to_string()),
    };
    fail_command_with(cmd, e);
}

/// Runs `f` in a savepoint: on error its writes are undone and the group goes on.
pub(super) fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut sp = tx.savepoint()?;
    sp.set_drop_behavior(rusqlite::DropBehavior::Rollback);
    let result = f(&sp);
    if result.is_ok() {
        sp.commit()?;
    }
    result
}

pub(super) fn reject(
    conn: &Connection,
    id: SubmissionId,
    errors: &[FieldError],
    tally: &mut Tally,
) -> Result<(), StoreError> {
    // Counted when it enters the quarantine, not when its reasons are replaced.
    let entering: Option<String> = conn
        .prepare_cached("SELECT source FROM submissions WHERE id = ?1 AND status = 'pending'")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    let changed = conn
        .prepare_cached(
            "UPDATE submissions SET status = ?2, error = lf_seal(?3) WHERE id = ?1 AND status IN ('pending', 'rejected')",
        )?
        .execute(params![id.to_string(), "rejected", serde_json::to_string(errors)?])?;
    if changed == 1 {
        if let Some(source) = entering {
            tally.quarantined(&source, errors, OffsetDateTime::now_utc());
        }
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("submission {id} is not pending or quarantined")))
    }
}

pub(super) fn create_key(conn: &Connection, key: &ApiKey, hash: TokenHash) -> Result<(), StoreError> {
    let scopes = serde_json::to_string(&key.scopes)?;
    let ips = serde_json::to_string(&key.allowed_ips)?;
    conn.prepare_cached(
        "INSERT INTO api_keys (id, name, prefix, token_hash, scopes, created_at, expires_at, rate_limit_per_minute,
                               allowed_ips)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        key.id.to_string(),
        key.name,
        key.prefix,
        hash.to_hex(),
        scopes,
        millis(key.created_at),
        key.expires_at.map(millis),
        key.rate_limit_per_minute,
        ips
    ])
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("an active key named {:?} already exists", key.name)),
        other => other,
    })?;
    Ok(())
}

/// Marks the active key `old` rotated, expiring at `grace_until` (the core's
/// [`ApiKey::grace_end`]), and
/// stores its successor; `None` when `old` is not an active, unrotated key.
pub(super) fn rotate_key(
    conn: &Connection,
    old: KeyId,
    grace_until: OffsetDateTime,
    new: &ApiKey,
    hash: TokenHash,
) -> Result<Option<ApiKey>, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE api_keys SET rotated_at = ?2, expires_at = ?3
             WHERE id = ?1 AND revoked_at IS NULL AND rotated_at IS NULL",
        )?
        .execute(params![old.to_string(), millis(new.created_at), millis(grace_until)])?;
    if changed == 0 {
        return Ok(None);
    }
    create_key(conn, new, hash)?;
    conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?
        .query_row([old.to_string()], key_from_row)
        .optional()?
        .transpose()
}

/// Records when keys were last used (never moving a time back).
pub(super) fn touch_keys(conn: &Connection, used: &[(KeyId, OffsetDateTime)]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
    )?;
    for (id, at) in used {
        stmt.execute(params![id.to_string(), millis(*at)])?;
    }
    Ok(())
}

pub(super) fn revoke_key(conn: &Connection, which: &str) -> Result<Option<ApiKey>, StoreError> {
    // During a rotation's grace a name holds two keys: both go. The current one answers.
    let found = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE (name = ?1 OR id = ?1) AND revoked_at IS NULL
             ORDER BY rotated_at IS NOT NULL, created_at DESC"
        ))?
        .query_map([which], key_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let found: Vec<ApiKey> = found.into_iter().collect::<Result<_, _>>()?;
    let Some(mut key) = found.first().cloned() else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    let mut revoke = conn.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1")?;
    for k in &found {
        revoke.execute(params![k.id.to_string(), millis(now)])?;
    }
    key.revoked_at = Some(now);
    Ok(Some(key))
}
