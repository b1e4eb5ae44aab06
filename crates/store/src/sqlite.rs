//! The SQLite store, the embedded default.
//!
//! One writer thread owns the only write connection and commits in groups: it takes every
//! command waiting in its queue, applies them in one transaction, commits once, and only
//! then answers the callers. Concurrent submissions therefore share one fsync, and an
//! answer always means the data is on disk (WAL, `synchronous = FULL`). If any command of
//! a group fails, the group is rolled back and redone with a savepoint per command, so one
//! failure spoils nothing else. Reads go through a small pool of read connections on
//! blocking threads; WAL lets them run beside the writer.

mod accounts;
mod apply;
mod capture;
mod engagement;
mod erase;
mod feedback;
mod outbox;
mod routing;

use crate::{
    AccountUpdate, AttemptRecord, CaptureItem, Captured, DeliveryAttempt, DeliveryStatus, EventOutcome, ImportCounts,
    ImportJob, ImportStatus, NewEvent, OutboxDelivery, ReplayFilter, Review, ReviewStatus, RoutedLead, SourceCount,
    StageCount, Store, StoreError, StoredSubmission, SubmissionStatus,
};
use async_trait::async_trait;
use leadflow_core::account::Account;
use leadflow_core::attribute::Touchpoint;
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::engagement::Event;
use leadflow_core::error::FieldError;
use leadflow_core::keys::{ApiKey, TokenHash};
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline::Rules;
use leadflow_core::pipeline::{HistoryEntry, SubmissionMeta};
use leadflow_core::resolve::{self, Decision, Matching, Model, Record};
use leadflow_core::scoring::TransitionError;
use leadflow_core::{AccountId, Email, ImportId, KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use leadflow_core::{merges, settle};
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// Versioned, append-only migrations. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_capture_core.sql")),
    (2, include_str!("../migrations/sqlite/0002_imports.sql")),
    (3, include_str!("../migrations/sqlite/0003_matching.sql")),
    (4, include_str!("../migrations/sqlite/0004_accounts.sql")),
    (5, include_str!("../migrations/sqlite/0005_engagement.sql")),
    (6, include_str!("../migrations/sqlite/0006_jobs.sql")),
    (7, include_str!("../migrations/sqlite/0007_outbox.sql")),
    (8, include_str!("../migrations/sqlite/0008_routing.sql")),
    (9, include_str!("../migrations/sqlite/0009_feedback.sql")),
    (10, include_str!("../migrations/sqlite/0010_erasure.sql")),
    (11, include_str!("../migrations/sqlite/0011_email_key.sql")),
    (12, include_str!("../migrations/sqlite/0012_submission_fingerprint.sql")),
];

/// Commands waiting beyond this are applied in the next group; it bounds how long one
/// transaction holds the write lock.
const MAX_GROUP_ITEMS: usize = 4096;
const QUEUE_DEPTH: usize = 8192;
const MAX_IDLE_READERS: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A chain of merges longer than this is a bug, not data.
const MAX_MERGE_HOPS: usize = 32;

pub struct SqliteStore {
    writer: mpsc::Sender<Command>,
    /// Set once `close` has been answered: the writer thread may not yet have dropped its
    /// end of the channel, so the channel alone cannot tell readiness probes.
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Readers>,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
type Write = Box<dyn Fn(&Connection) -> Result<(), StoreError> + Send>;

/// A capture item with its payload already serialized, on the caller's task, so the
/// single writer thread spends its time on SQL only.
struct Prepared {
    item: CaptureItem,
    payload: String,
}

enum Command {
    Capture(Arc<Vec<Prepared>>, Rules, Reply<Vec<Captured>>),
    Enqueue(Vec<RawSubmission>, Reply<()>),
    Reject(SubmissionId, Vec<FieldError>, Reply<()>),
    Quarantine(Vec<(RawSubmission, Vec<FieldError>)>, Reply<Vec<Captured>>),
    CreateKey(Box<ApiKey>, TokenHash, Reply<()>),
    RevokeKey(String, Reply<Option<ApiKey>>),
    /// A write with nothing to answer but success.
    Exec(Write, Reply<()>),
    Close(Reply<()>),
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file, then starts the writer.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!("cannot enable WAL mode (got {mode})")));
        }
        migrate(&mut conn)?;
        start_checkpointer(&mut conn, path)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("leadflow-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            writer: tx,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            readers: Arc::new(Readers { path: path.to_owned(), idle: Mutex::new(Vec::new()) }),
        })
    }

    /// What capture would decide for this record now, read-only: the lookup and comparison
    /// capture runs, for benchmarks and diagnostics.
    pub async fn match_record(&self, record: Record, matching: Arc<Matching>) -> Result<Decision, StoreError> {
        self.read(move |conn| {
            let email = record.email.as_deref().and_then(|e| Email::parse(e).ok());
            let found = capture::candidates(conn, &settle::lookup(&record, email.as_ref(), &matching))?;
            Ok(settle::decide(&record, found, &matching))
        })
        .await
    }

    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer.send(make(tx)).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// A write whose result is more than success: it runs in the writer's group like any
    /// other (possibly twice, if its group is redone), and the last run's value is kept.
    async fn write_returning<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.write(|reply| {
            Command::Exec(
                Box::new(move |conn| {
                    let value = f(conn)?;
                    if let Ok(mut out) = out.lock() {
                        *out = Some(value);
                    }
                    Ok(())
                }),
                reply,
            )
        })
        .await?;
        slot.lock()
            .ok()
            .and_then(|mut v| v.take())
            .ok_or_else(|| StoreError::Internal("a write returned nothing".into()))
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = f(&conn);
            readers.give(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Dropping the sender ends the writer loop after it drains the queue.
        if let Ok(mut guard) = self.thread.lock()
            && let Some(handle) = guard.take()
        {
            drop(std::mem::replace(&mut self.writer, mpsc::channel(1).0));
            let _ = handle.join();
        }
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL makes every commit durable across power loss, not only process crashes; group
    // commit is what keeps that affordable. Savepoint journals stay in memory: they only
    // matter until the transaction ends, and writing them to a temp file cost more than
    // the inserts themselves.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
    // Lookups read index pages all over the lead and key tables: with SQLite's default
    // 2 MB page cache they became read system calls once the store outgrew it. Much larger
    // caches cost more than they save (truncating the cache walks all of it).
    conn.execute_batch("PRAGMA cache_size = -32768;")?;
    // A capture or an event batch runs a few dozen distinct statements; with rusqlite's
    // default cache of 16 they evicted one another and were parsed and planned again on
    // every use (an eighth of the writer's time when rescoring leads from events).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// WAL size (pages) at which the checkpointer is woken: SQLite's own autocheckpoint default.
const CHECKPOINT_PAGES: c_int = 1000;
/// WAL size at which the writer checkpoints itself. The log only starts over from its
/// beginning after a checkpoint that caught up with the last commit, and a checkpointer
/// racing a busy writer never quite does: without this the log grew to tens of megabytes,
/// and every read searched it (an import of a million rows lost its whole gain). By the
/// time the log reaches this size the checkpointer has copied nearly all of it, so the
/// writer's share is the last commit's pages. Also the backstop when readers hold old
/// snapshots.
const CHECKPOINT_BACKSTOP_PAGES: c_int = 4_000;

/// Moves WAL checkpoints off the writer thread. SQLite's autocheckpoint copies the log back
/// into the database inside the commit that crosses the threshold, on the single writer:
/// a twentieth of its time during an import. A passive checkpoint on another connection
/// never blocks the writer, and on a second core it costs captures nothing. The thread ends
/// when the writer's connection (holding the hook, and with it the sender) is dropped.
fn start_checkpointer(writer: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let (wake, wakes) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("leadflow-sqlite-checkpointer".into())
        .spawn(move || {
            for () in wakes {
                match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                    Ok(_) => {}
                    // The writer's own backstop checkpoint is running: expected under load.
                    Err(e)
                        if matches!(
                            e.sqlite_error_code(),
                            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                        ) =>
                    {
                        tracing::debug!(error = %e, "a WAL checkpoint met the writer's; the next commit asks again");
                    }
                    Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed; the next commit asks again"),
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer thread: {e}")))?;
    writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        if pages >= CHECKPOINT_BACKSTOP_PAGES {
            // Never an error from here: SQLite would report it as the commit's, though the
            // commit stands, and the writer would redo a group that is already written.
            // Busy (the checkpointer is at work) is expected; the next commit tries again.
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                tracing::debug!(error = %e, "the writer's WAL checkpoint did not run");
            }
        } else if pages >= CHECKPOINT_PAGES {
            // Full means a checkpoint is already asked for; one is enough.
            let _ = wake.try_send(());
        }
        Ok(())
    }))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", params![version, now_ms()])?;
        tracing::info!(version, "applied migration");
    }
    if current < 3 {
        backfill_match_keys(&tx)?;
    }
    if current < 4 {
        accounts::backfill(&tx)?;
    }
    if current < 5 {
        engagement::backfill(&tx)?;
    }
    if current < 11 {
        backfill_email_keys(&tx)?;
    }
    tx.commit()?;
    Ok(())
}

/// Leads stored before the email match key get theirs, under the built-in provider rules
/// (the configuration is not known here; a lead is keyed with the configured rules on its
/// next write).
fn backfill_email_keys(conn: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, email FROM leads WHERE email IS NOT NULL AND email_key IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let matching = Matching::default();
    let mut update = conn.prepare("UPDATE leads SET email_key = ?2 WHERE id = ?1")?;
    for (id, email) in rows {
        update.execute(params![id, matching.stored_email_key(&email)])?;
    }
    Ok(())
}

/// Leads stored before identity resolution get their blocking keys.
fn backfill_match_keys(conn: &Connection) -> Result<(), StoreError> {
    let docs: Vec<String> = conn
        .prepare("SELECT doc FROM leads WHERE merged_into IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if docs.is_empty() {
        return Ok(());
    }
    let model = Model::default();
    for doc in &docs {
        let lead = lead_from_doc(doc)?;
        let record = resolve::match_record(&lead.fields, &lead.derived);
        let record_json = serde_json::to_string(&record)?;
        for key in resolve::blocking_keys(&record, &model) {
            conn.execute(
                "INSERT OR IGNORE INTO lead_keys (key, lead_id, record) VALUES (?1, ?2, ?3)",
                params![key, lead.id.to_string(), record_json],
            )?;
        }
    }
    tracing::info!(leads = docs.len(), "indexed existing leads for matching");
    Ok(())
}

fn latest_migration() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

fn now_ms() -> i64 {
    millis(OffsetDateTime::now_utc())
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The writer

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Command>) {
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
enum Answer {
    Captured(Vec<Captured>),
    Unit,
    Key(Option<ApiKey>),
}

/// Applies a group in one transaction and commits it. Unguarded, the first failure
/// aborts the whole group (`Err`); guarded, each command runs in its own savepoint and its
/// failure is its own answer.
fn apply_group(
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
    let mut answers = Vec::with_capacity(group.len());
    for cmd in group {
        if guarded {
            let answer = match cmd {
                Command::Capture(items, model, _) => {
                    // Redo the request item by item, so the failing item is kept as
                    // pending and the rest settle.
                    match in_savepoint(&mut tx, |sp| {
                        capture::capture_all(sp, items, capture::Isolation::Request, model)
                    }) {
                        Ok(done) => Ok(Answer::Captured(done)),
                        Err(_) => in_savepoint(&mut tx, |sp| {
                            capture::capture_all(sp, items, capture::Isolation::PerItem, model)
                        })
                        .map(Answer::Captured),
                    }
                }
                other => in_savepoint(&mut tx, |sp| run_command(sp, other)),
            };
            answers.push(answer);
        } else {
            answers.push(Ok(run_command(&tx, cmd)?));
        }
    }
    tx.commit()?;
    Ok(answers)
}

fn run_command(conn: &Connection, cmd: &Command) -> Result<Answer, StoreError> {
    Ok(match cmd {
        Command::Capture(items, model, _) => {
            Answer::Captured(capture::capture_all(conn, items, capture::Isolation::Request, model)?)
        }
        Command::Enqueue(subs, _) => capture::enqueue_all(conn, subs).map(|()| Answer::Unit)?,
        Command::Quarantine(items, _) => Answer::Captured(capture::quarantine_all(conn, items)?),
        Command::Reject(id, errors, _) => reject(conn, *id, errors).map(|()| Answer::Unit)?,
        Command::CreateKey(key, hash, _) => create_key(conn, key, *hash).map(|()| Answer::Unit)?,
        Command::RevokeKey(which, _) => Answer::Key(revoke_key(conn, which)?),
        Command::Exec(write, _) => write(conn).map(|()| Answer::Unit)?,
        Command::Close(_) => Answer::Unit,
    })
}

/// Sends a committed answer to the caller that waits for it. A caller that gave up
/// (timeout, disconnect) no longer listens; the write stands.
fn answer_command(cmd: Command, answer: Result<Answer, StoreError>) {
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

fn fail_command_with(cmd: Command, e: StoreError) {
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

fn fail_command(cmd: Command, e: &StoreError) {
    let e = match e {
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Unavailable(other.to_string()),
    };
    fail_command_with(cmd, e);
}

/// Runs `f` in a savepoint: on error its writes are undone and the group goes on.
fn in_savepoint<T>(
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

const IMPORT_COLUMNS: &str =
    "id, source, sheet, status, rows, created, merged, rejected, pending, error, created_at, updated_at";

fn import_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ImportJob, StoreError>> {
    let id: String = r.get(0)?;
    let source: String = r.get(1)?;
    let status: String = r.get(3)?;
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    let counts = ImportCounts { rows: n(4)?, created: n(5)?, merged: n(6)?, rejected: n(7)?, pending: n(8)? };
    let (sheet, error): (Option<String>, Option<String>) = (r.get(2)?, r.get(9)?);
    let (created, updated): (i64, i64) = (r.get(10)?, r.get(11)?);
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("import {id}: {what}"));
        Ok(ImportJob {
            id: id.parse().map_err(|_| corrupt("id"))?,
            source: SourceName::parse(&source).map_err(|_| corrupt("source"))?,
            sheet,
            status: match status.as_str() {
                "queued" => ImportStatus::Queued,
                "running" => ImportStatus::Running,
                "done" => ImportStatus::Done,
                "failed" => ImportStatus::Failed,
                _ => return Err(corrupt("status")),
            },
            counts,
            error,
            created_at: from_millis(created),
            updated_at: from_millis(updated),
        })
    })())
}

const REVIEW_COLUMNS: &str = "id, lead_id, candidate_id, score, evidence, status, created_at, decided_at";

fn review_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Review, StoreError>> {
    let (id, lead, candidate): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (score, evidence, status): (f64, String, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
    let (created, decided): (i64, Option<i64>) = (r.get(6)?, r.get(7)?);
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("review {id}: {what}"));
        Ok(Review {
            id: id.parse().map_err(|_| corrupt("id"))?,
            lead_id: lead.parse().map_err(|_| corrupt("lead id"))?,
            candidate_id: candidate.parse().map_err(|_| corrupt("candidate id"))?,
            score,
            evidence: serde_json::from_str(&evidence)?,
            status: match status.as_str() {
                "open" => ReviewStatus::Open,
                "merged" => ReviewStatus::Merged,
                "distinct" => ReviewStatus::Distinct,
                _ => return Err(corrupt("status")),
            },
            created_at: from_millis(created),
            decided_at: decided.map(from_millis),
        })
    })())
}

fn review_by_id(conn: &Connection, id: ReviewId) -> Result<Option<Review>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE id = ?1"))?
        .query_row([id.to_string()], review_from_row)
        .optional()?;
    found.transpose()
}

/// Folds `absorbed` into `survivor` (each followed through earlier merges), as the core
/// decides. `false` when either is missing or erased, or they are already one lead.
fn merge_pair(
    conn: &Connection,
    survivor: LeadId,
    absorbed: LeadId,
    explanation: resolve::Explanation,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let (Some(mut survivor), Some(absorbed)) =
        (lead_following_merges(conn, survivor)?, lead_following_merges(conn, absorbed)?)
    else {
        return Ok(false);
    };
    let Some(changes) = merges::absorb(&mut survivor, &absorbed, explanation, rules, now) else { return Ok(false) };
    apply::apply(conn, &changes)?;
    Ok(true)
}

/// Undoes the merge of `absorbed` into its survivor, as the core decides.
fn unmerge(
    conn: &Connection,
    absorbed_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<LeadId>, StoreError> {
    let row: Option<(Option<String>, Option<i64>, String)> = conn
        .query_row("SELECT merged_into, erased_at, doc FROM leads WHERE id = ?1", [absorbed_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((into, erased_at, doc)) = row else { return Ok(None) };
    let merged_into: Option<LeadId> =
        into.map(|i| i.parse()).transpose().map_err(|_| StoreError::Corrupt("merged_into".into()))?;
    let away = merges::MergedAway { id: absorbed_id, merged_into, erased: erased_at.is_some() };
    let (survivor, history) = match merged_into {
        Some(into) if erased_at.is_none() => {
            (lead_following_merges(conn, into)?, lead_history_newest_first(conn, into)?)
        }
        _ => (None, Vec::new()),
    };
    let absorbed = lead_from_doc(&doc)?;
    let Some(changes) =
        merges::unmerge(&away, survivor.as_ref(), &history, &absorbed, rules, now).map_err(StoreError::from)?
    else {
        return Ok(None);
    };
    apply::apply(conn, &changes)?;
    Ok(merged_into)
}

fn lead_history_newest_first(conn: &Connection, lead: LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
    let entries: Vec<String> = conn
        .prepare_cached("SELECT entry FROM lead_history WHERE lead_id = ?1 ORDER BY id DESC")?
        .query_map([lead.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    entries.iter().map(|e| Ok(serde_json::from_str(e)?)).collect()
}

/// Undoes a merge made at capture, as the core decides: the submission becomes a lead of
/// its own from `candidate` (the stored submission prepared again).
fn split(
    conn: &Connection,
    lead_id: LeadId,
    submission: SubmissionId,
    candidate: Candidate,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<(LeadId, Lead)>, StoreError> {
    let current = lead_following_merges(conn, lead_id)?;
    let stored = get_submission(conn, submission)?.map(|s| merges::MergedSubmission {
        meta: SubmissionMeta {
            id: s.submission.id,
            source: s.submission.source,
            received_at: s.submission.received_at,
        },
        lead_id: s.lead_id,
    });
    let entries: Vec<String> = conn
        .prepare_cached("SELECT entry FROM lead_history WHERE lead_id = ?1 AND submission_id = ?2")?
        .query_map(params![lead_id.to_string(), submission.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let history: Vec<HistoryEntry> = entries.iter().map(|e| serde_json::from_str(e)).collect::<Result<_, _>>()?;
    let accounts = accounts::by_keys(conn, &merges::split_account_keys(&candidate))?;
    let split = merges::split(lead_id, current.as_ref(), stored.as_ref(), &history, candidate, &accounts, rules, now)
        .map_err(StoreError::from)?;
    let Some((lead, changes)) = split else { return Ok(None) };
    apply::apply(conn, &changes)?;
    Ok(Some((lead_id, lead)))
}

/// A person's decision on an open review; a merge folds the newer lead into the other.
fn decide_review(
    conn: &Connection,
    id: ReviewId,
    decision: ReviewStatus,
    rules: &Rules,
) -> Result<Option<Review>, StoreError> {
    let Some(review) = review_by_id(conn, id)?.filter(|r| r.status == ReviewStatus::Open) else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    if decision == ReviewStatus::Merged {
        let explanation = merges::reviewed(review.score, review.evidence.clone());
        merge_pair(conn, review.candidate_id, review.lead_id, explanation, rules, now)?;
    }
    conn.prepare_cached("UPDATE duplicate_reviews SET status = ?2, decided_at = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), decision.as_str(), millis(now)])?;
    review_by_id(conn, id)
}

const SUBMISSION_COLUMNS: &str = "id, source, idempotency_key, received_at, payload, status, error, lead_id";

fn submission_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredSubmission, StoreError>> {
    let id: String = r.get(0)?;
    let source: String = r.get(1)?;
    let key: Option<String> = r.get(2)?;
    let received: i64 = r.get(3)?;
    let payload: String = r.get(4)?;
    let status: String = r.get(5)?;
    let error: Option<String> = r.get(6)?;
    let lead_id: Option<String> = r.get(7)?;
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("submission {id}: {what}"));
        Ok(StoredSubmission {
            submission: RawSubmission {
                id: id.parse().map_err(|_| corrupt("id"))?,
                source: SourceName::parse(&source).map_err(|_| corrupt("source"))?,
                received_at: from_millis(received),
                idempotency_key: key
                    .map(|k| IdempotencyKey::parse(&k))
                    .transpose()
                    .map_err(|_| corrupt("idempotency key"))?,
                payload: serde_json::from_str::<Map<String, Value>>(&payload)?,
                fingerprint: None,
            },
            status: match status.as_str() {
                "pending" => SubmissionStatus::Pending,
                "processed" => SubmissionStatus::Processed,
                "rejected" => SubmissionStatus::Rejected,
                _ => return Err(corrupt("status")),
            },
            errors: capture::stored_errors(error.as_deref()),
            lead_id: lead_id.map(|l| l.parse()).transpose().map_err(|_| corrupt("lead id"))?,
        })
    })())
}

fn get_submission(conn: &Connection, id: SubmissionId) -> Result<Option<StoredSubmission>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = ?1"))?
        .query_row([id.to_string()], submission_from_row)
        .optional()?;
    found.transpose()
}

fn reject(conn: &Connection, id: SubmissionId, errors: &[FieldError]) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE submissions SET status = ?2, error = ?3 WHERE id = ?1 AND status IN ('pending', 'rejected')",
        )?
        .execute(params![id.to_string(), "rejected", serde_json::to_string(errors)?])?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("submission {id} is not pending or quarantined")))
    }
}

fn create_key(conn: &Connection, key: &ApiKey, hash: TokenHash) -> Result<(), StoreError> {
    let scopes = serde_json::to_string(&key.scopes)?;
    conn.prepare_cached(
        "INSERT INTO api_keys (id, name, prefix, token_hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![key.id.to_string(), key.name, key.prefix, hash.to_hex(), scopes, millis(key.created_at)])
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("an active key named {:?} already exists", key.name)),
        other => other,
    })?;
    Ok(())
}

fn revoke_key(conn: &Connection, which: &str) -> Result<Option<ApiKey>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE (name = ?1 OR id = ?1) AND revoked_at IS NULL"
        ))?
        .query_row([which], key_from_row)
        .optional()?;
    let Some(mut key) = found.transpose()? else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    conn.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1")?
        .execute(params![key.id.to_string(), millis(now)])?;
    key.revoked_at = Some(now);
    Ok(Some(key))
}

// ---------------------------------------------------------------------------------------
// Reads (shared by the writer, inside its transaction, and the read pool)

const KEY_COLUMNS: &str = "id, name, prefix, scopes, created_at, revoked_at";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ApiKey, StoreError>> {
    let id: String = r.get(0)?;
    let scopes: String = r.get(3)?;
    let revoked: Option<i64> = r.get(5)?;
    let (name, prefix, created): (String, String, i64) = (r.get(1)?, r.get(2)?, r.get(4)?);
    Ok((|| {
        Ok(ApiKey {
            id: id.parse::<KeyId>().map_err(|e| StoreError::Corrupt(e.to_string()))?,
            name,
            prefix,
            scopes: serde_json::from_str(&scopes)?,
            created_at: from_millis(created),
            revoked_at: revoked.map(from_millis),
        })
    })())
}

fn lead_from_doc(doc: &str) -> Result<Lead, StoreError> {
    Ok(serde_json::from_str(doc)?)
}

/// One index lookup: a UNION with the plain address cost a quarter of import throughput.
/// `merged_into IS NULL` lets it use the partial index.
const MAILBOX_LOOKUP: &str = "SELECT doc FROM leads WHERE email_key = ?1 AND merged_into IS NULL";

/// The surviving leads with exactly this address.
const EMAIL_LOOKUP: &str = "SELECT doc FROM leads WHERE email = ?1 AND merged_into IS NULL";

/// The surviving leads with this mailbox (the same match key).
fn leads_by_mailbox(conn: &Connection, key: &str) -> Result<Vec<Lead>, StoreError> {
    leads_where(conn, MAILBOX_LOOKUP, key)
}

fn leads_by_email(conn: &Connection, email: &Email) -> Result<Vec<Lead>, StoreError> {
    leads_where(conn, EMAIL_LOOKUP, email.as_str())
}

/// The leads a one-parameter lookup selecting `doc` finds.
fn leads_where(conn: &Connection, lookup: &str, value: &str) -> Result<Vec<Lead>, StoreError> {
    let mut stmt = conn.prepare_cached(lookup)?;
    let docs = stmt.query_map([value], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    docs.iter().map(|d| lead_from_doc(d)).collect()
}

fn lead_following_merges(conn: &Connection, id: LeadId) -> Result<Option<Lead>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT merged_into, doc FROM leads WHERE id = ?1")?;
    let mut current = id.to_string();
    for _ in 0..MAX_MERGE_HOPS {
        let row =
            stmt.query_row([&current], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))).optional()?;
        match row {
            None => return Ok(None),
            Some((Some(next), _)) => current = next,
            Some((None, doc)) => return lead_from_doc(&doc).map(Some),
        }
    }
    Err(StoreError::Corrupt(format!("lead {id} is merged through more than {MAX_MERGE_HOPS} hops")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn capture(&self, items: Vec<CaptureItem>, rules: &Rules) -> Result<Vec<Captured>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = items
            .into_iter()
            .map(|item| Ok(Prepared { payload: serde_json::to_string(&item.submission.payload)?, item }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (prepared, rules) = (Arc::new(prepared), rules.clone());
        let held = Arc::clone(&prepared);
        let captured = self.write(|reply| Command::Capture(prepared, rules, reply)).await;
        drop(held);
        captured
    }

    async fn enqueue(&self, submissions: Vec<RawSubmission>) -> Result<(), StoreError> {
        self.write(|reply| Command::Enqueue(submissions, reply)).await
    }

    async fn pending_submissions(&self, limit: usize) -> Result<Vec<RawSubmission>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = 'pending' ORDER BY received_at, id LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], submission_from_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|r| r.map(|stored| stored.submission)).collect()
        })
        .await
    }

    async fn quarantine(&self, items: Vec<(RawSubmission, Vec<FieldError>)>) -> Result<Vec<Captured>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|reply| Command::Quarantine(items, reply)).await
    }

    async fn list_quarantine(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // Ids are time-ordered, so paging by id is paging by arrival.
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = 'rejected' AND id > ?1 AND (?2 IS NULL OR source = ?2) ORDER BY id LIMIT ?3"
            ))?;
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            let rows = stmt
                .query_map(params![after, source.as_ref().map(SourceName::as_str), limit], submission_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn get_submission(&self, id: SubmissionId) -> Result<Option<StoredSubmission>, StoreError> {
        self.read(move |conn| get_submission(conn, id)).await
    }

    async fn reject_submission(&self, id: SubmissionId, errors: Vec<FieldError>) -> Result<(), StoreError> {
        self.write(|reply| Command::Reject(id, errors, reply)).await
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        self.read(move |conn| lead_following_merges(conn, id)).await
    }

    async fn find_leads_by_email(&self, email: &Email) -> Result<Vec<Lead>, StoreError> {
        let email = email.clone();
        self.read(move |conn| leads_by_email(conn, &email)).await
    }

    async fn lead_history(&self, id: LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT entry FROM lead_history WHERE lead_id = ?1 ORDER BY id")?;
            let entries =
                stmt.query_map([id.to_string()], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            entries.iter().map(|e| Ok(serde_json::from_str(e)?)).collect()
        })
        .await
    }

    async fn list_leads(&self, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
                )?;
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            let docs =
                stmt.query_map(params![after, limit], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            docs.iter().map(|d| lead_from_doc(d)).collect()
        })
        .await
    }

    async fn count_leads(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM leads WHERE merged_into IS NULL", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn create_key(&self, key: ApiKey, hash: TokenHash) -> Result<(), StoreError> {
        self.write(|reply| Command::CreateKey(Box::new(key), hash, reply)).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"))?;
            let keys = stmt.query_map([], key_from_row)?.collect::<Result<Vec<_>, _>>()?;
            keys.into_iter().collect()
        })
        .await
    }

    async fn revoke_key(&self, name_or_id: &str) -> Result<Option<ApiKey>, StoreError> {
        let which = name_or_id.to_owned();
        self.write(|reply| Command::RevokeKey(which, reply)).await
    }

    async fn key_by_hash(&self, hash: TokenHash) -> Result<Option<ApiKey>, StoreError> {
        self.read(move |conn| {
            let found = conn
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = ?1 AND revoked_at IS NULL"
                ))?
                .query_row([hash.to_hex()], key_from_row)
                .optional()?;
            found.transpose()
        })
        .await
    }

    async fn create_import(&self, job: ImportJob, file: Vec<u8>) -> Result<(), StoreError> {
        self.write(|reply| {
            Command::Exec(
                Box::new(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO imports (id, source, sheet, status, created_at, updated_at, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        job.id.to_string(),
                        job.source.as_str(),
                        job.sheet,
                        job.status.as_str(),
                        millis(job.created_at),
                        millis(job.updated_at),
                        file
                    ])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn update_import(&self, job: ImportJob, report: Option<Vec<u8>>) -> Result<(), StoreError> {
        self.write(|reply| {
            Command::Exec(
                Box::new(move |conn| {
                    let c = job.counts;
                    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    conn.prepare_cached(
                        "UPDATE imports SET status = ?2, rows = ?3, created = ?4, merged = ?5, rejected = ?6, pending = ?7,
                             error = ?8, updated_at = ?9,
                             report = coalesce(?10, report),
                             file = CASE WHEN ?2 IN ('done', 'failed') THEN NULL ELSE file END
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        job.id.to_string(),
                        job.status.as_str(),
                        count(c.rows),
                        count(c.created),
                        count(c.merged),
                        count(c.rejected),
                        count(c.pending),
                        job.error,
                        millis(job.updated_at),
                        report
                    ])?;
                    Ok(())
                }),
                reply,
            )
        })
        .await
    }

    async fn get_import(&self, id: ImportId) -> Result<Option<ImportJob>, StoreError> {
        self.read(move |conn| {
            let found = conn
                .prepare_cached(&format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE id = ?1"))?
                .query_row([id.to_string()], import_from_row)
                .optional()?;
            found.transpose()
        })
        .await
    }

    async fn import_file(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            let file: Option<Option<Vec<u8>>> =
                conn.query_row("SELECT file FROM imports WHERE id = ?1", [id.to_string()], |r| r.get(0)).optional()?;
            Ok(file.flatten())
        })
        .await
    }

    async fn import_report(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            let report: Option<Option<Vec<u8>>> = conn
                .query_row("SELECT report FROM imports WHERE id = ?1", [id.to_string()], |r| r.get(0))
                .optional()?;
            Ok(report.flatten())
        })
        .await
    }

    async fn unfinished_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {IMPORT_COLUMNS} FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at, id"
            ))?;
            let jobs = stmt.query_map([], import_from_row)?.collect::<Result<Vec<_>, _>>()?;
            jobs.into_iter().collect()
        })
        .await
    }

    async fn list_reviews(&self, after: Option<ReviewId>, limit: usize) -> Result<Vec<Review>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE status = 'open' AND id > ?1 ORDER BY id LIMIT ?2"
            ))?;
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            let rows = stmt.query_map(params![after, limit], review_from_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn get_review(&self, id: ReviewId) -> Result<Option<Review>, StoreError> {
        self.read(move |conn| review_by_id(conn, id)).await
    }

    async fn decide_review(
        &self,
        id: ReviewId,
        decision: ReviewStatus,
        rules: &Rules,
    ) -> Result<Option<Review>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| decide_review(conn, id, decision, &rules)).await
    }

    async fn unmerge(&self, absorbed: LeadId, rules: &Rules) -> Result<Option<LeadId>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| unmerge(conn, absorbed, &rules, OffsetDateTime::now_utc())).await
    }

    async fn split_submission(
        &self,
        lead: LeadId,
        submission: SubmissionId,
        candidate: Candidate,
        rules: &Rules,
    ) -> Result<Option<Lead>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| {
            split(conn, lead, submission, candidate.clone(), &rules, OffsetDateTime::now_utc())
                .map(|done| done.map(|(_, lead)| lead))
        })
        .await
    }

    async fn merge_leads(
        &self,
        survivor: LeadId,
        absorbed: LeadId,
        explanation: resolve::Explanation,
        rules: &Rules,
    ) -> Result<bool, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| {
            merge_pair(conn, survivor, absorbed, explanation.clone(), &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn add_review(
        &self,
        lead: LeadId,
        candidate: LeadId,
        score: f64,
        evidence: Vec<resolve::Evidence>,
    ) -> Result<bool, StoreError> {
        self.write_returning(move |conn| {
            // A pair is proposed once: not again while open, and never after a decision.
            let known: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM duplicate_reviews WHERE (lead_id = ?1 AND candidate_id = ?2) OR (lead_id = ?2 AND candidate_id = ?1))",
                params![lead.to_string(), candidate.to_string()],
                |r| r.get(0),
            )?;
            if known {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6)",
            )?
            .execute(params![
                ReviewId::new().to_string(),
                lead.to_string(),
                candidate.to_string(),
                score,
                serde_json::to_string(&evidence)?,
                now_ms()
            ])?;
            Ok(true)
        })
        .await
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.read(move |conn| accounts::get(conn, id)).await
    }

    async fn list_accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        self.read(move |conn| accounts::list(conn, after, limit)).await
    }

    async fn account_leads(&self, id: AccountId, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        self.read(move |conn| accounts::leads(conn, id, after, limit)).await
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Option<Account>, StoreError> {
        self.write_returning(move |conn| accounts::update(conn, id, &update)).await
    }

    async fn record_events(&self, events: Vec<NewEvent>, rules: &Rules) -> Result<Vec<EventOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let rules = rules.clone();
        self.write_returning(move |conn| engagement::record(conn, &events, &rules, OffsetDateTime::now_utc())).await
    }

    async fn lead_events(&self, lead: LeadId, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(move |conn| engagement::lead_events(conn, lead, limit)).await
    }

    async fn touchpoints(&self, lead: LeadId) -> Result<Vec<Touchpoint>, StoreError> {
        self.read(move |conn| engagement::touchpoints(conn, lead)).await
    }

    async fn transition_lead(
        &self,
        lead: LeadId,
        to: String,
        actor: String,
        reason: Option<String>,
        rules: &Rules,
    ) -> Result<Option<Result<Lead, TransitionError>>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| {
            engagement::transition(conn, lead, &to, &actor, reason.as_deref(), &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn rescore_lead(&self, lead: LeadId, rules: &Rules) -> Result<Option<Lead>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| engagement::rescore(conn, lead, &rules, OffsetDateTime::now_utc())).await
    }

    async fn record_feedback(
        &self,
        items: Vec<leadflow_core::feedback::Feedback>,
        rules: &Rules,
    ) -> Result<Vec<leadflow_core::feedback::FeedbackResult>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rules = rules.clone();
        self.write_returning(move |conn| feedback::record(conn, &items, &rules, OffsetDateTime::now_utc())).await
    }

    async fn link_crm_record(
        &self,
        destination: &str,
        crm_id: &str,
        lead: LeadId,
        rules: &Rules,
    ) -> Result<u64, StoreError> {
        let (destination, crm_id, rules) = (destination.to_owned(), crm_id.to_owned(), rules.clone());
        self.write_returning(move |conn| {
            feedback::link(conn, &destination, &crm_id, lead, &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn list_feedback(
        &self,
        source: Option<String>,
        after: Option<leadflow_core::FeedbackId>,
        limit: usize,
    ) -> Result<Vec<crate::StoredFeedback>, StoreError> {
        self.read(move |conn| feedback::list(conn, source.as_deref(), after, limit)).await
    }

    async fn report_disqualifications(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        stage: &str,
    ) -> Result<Vec<crate::ReasonCount>, StoreError> {
        let stage = stage.to_owned();
        self.read(move |conn| feedback::report_disqualifications(conn, from, to, &stage)).await
    }

    async fn report_sources(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        latest: bool,
    ) -> Result<Vec<SourceCount>, StoreError> {
        self.read(move |conn| engagement::report_sources(conn, from, to, latest)).await
    }

    async fn report_stages(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<Vec<StageCount>, StoreError> {
        self.read(move |conn| engagement::report_stages(conn, from, to)).await
    }

    async fn route_queued(
        &self,
        limit: usize,
        rules: &Rules,
        now: OffsetDateTime,
    ) -> Result<Vec<RoutedLead>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| routing::route_queued(conn, limit, &rules, now)).await
    }

    async fn run_sla(&self, limit: usize, rules: &Rules, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| routing::run_sla(conn, limit, &rules, now)).await
    }

    async fn assign_lead(
        &self,
        lead: LeadId,
        owner: Option<String>,
        actor: String,
        rules: &Rules,
    ) -> Result<Option<(Lead, bool)>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| {
            routing::assign(conn, lead, owner.as_deref(), &actor, &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn next_sla_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.read(routing::next_sla_due).await
    }

    async fn erase_lead(
        &self,
        lead: LeadId,
        actor: String,
        reason: Option<String>,
        rules: &Rules,
    ) -> Result<Option<crate::ErasureReceipt>, StoreError> {
        let rules = rules.clone();
        self.write_returning(move |conn| {
            erase::erase(conn, lead, &actor, reason.as_deref(), &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        self.write_returning(move |conn| outbox::claim(conn, limit, lease, now)).await
    }

    async fn record_delivery(&self, attempt: DeliveryAttempt) -> Result<(), StoreError> {
        self.write_returning(move |conn| outbox::record(conn, &attempt)).await
    }

    async fn next_delivery_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.read(outbox::next_due).await
    }

    async fn list_deliveries(
        &self,
        status: DeliveryStatus,
        destination: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        self.read(move |conn| outbox::list(conn, status, destination.as_deref(), after.as_deref(), limit)).await
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| outbox::get(conn, &id)).await
    }

    async fn replay_delivery(&self, id: &str, now: OffsetDateTime) -> Result<Option<OutboxDelivery>, StoreError> {
        let id = id.to_owned();
        self.write_returning(move |conn| outbox::replay_one(conn, &id, now)).await
    }

    async fn replay_deliveries(&self, filter: ReplayFilter, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.write_returning(move |conn| outbox::replay_many(conn, &filter, now)).await
    }

    async fn try_claim_period(&self, job: &str, period_start: OffsetDateTime) -> Result<bool, StoreError> {
        let (job, start) = (job.to_owned(), millis(period_start));
        self.write_returning(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO job_runs (job, period_start, claimed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![job, start, now_ms()],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            Ok(conn.query_row("SELECT value FROM cursors WHERE name = ?1", params![name], |r| r.get(0)).optional()?)
        })
        .await
    }

    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write_returning(move |conn| {
            conn.execute(
                "INSERT INTO cursors (name, value, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![name, value, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() || self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.read(|conn| {
            let version: i64 =
                conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
            if version == latest_migration() {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!("schema at version {version}, expected {}", latest_migration())))
            }
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        let closed = match self.write(Command::Close).await {
            Ok(()) | Err(StoreError::Closed) => Ok(()),
            Err(e) => Err(e),
        };
        self.closed.store(true, Ordering::Release);
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookups capture runs for every submission must read an index, never the table: a
    /// scan costs milliseconds per capture at a million leads.
    #[test]
    fn capture_lookups_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let plan = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let args = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
            stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        for sql in [MAILBOX_LOOKUP, EMAIL_LOOKUP] {
            let steps = plan(sql);
            assert!(steps.iter().all(|s| !s.starts_with("SCAN leads")), "{sql}: {steps:?}");
            assert!(steps.iter().any(|s| s.contains("leads_email_key")) || !sql.contains("email_key"), "{steps:?}");
        }
    }
}
