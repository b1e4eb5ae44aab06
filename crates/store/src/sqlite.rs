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
mod alerts;
mod apply;
mod audit;
mod capture;
mod connection;
mod engagement;
mod erase;
mod feed;
mod feedback;
mod health;
mod merging;
mod migrations;
mod outbox;
mod privacy;
mod reads;
mod resolver;
mod routing;
mod sealing;
mod subject;
mod writer;

use crate::{
    AccountUpdate, AttemptRecord, CaptureItem, Captured, DeliveryAttempt, DeliveryStatus, DynStore, EventOutcome,
    ImportJob, NewEvent, OutboxDelivery, ReplayFilter, ResolveBatch, Review, ReviewStatus, RoutedLead, SourceCount,
    StageCount, Store, StoreError, StoredSubmission,
};
use async_trait::async_trait;
use connection::{Readers, configure, start_checkpointer};
use leadflow_core::account::Account;
use leadflow_core::attribute::Touchpoint;
use leadflow_core::capture::RawSubmission;
use leadflow_core::engagement::Event;
use leadflow_core::error::FieldError;
use leadflow_core::keys::{ApiKey, TokenHash};
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline::HistoryEntry;
use leadflow_core::pipeline::Rules;
use leadflow_core::privacy::retention::{Kind as RetentionKind, Run as RetentionRun};
use leadflow_core::resolve::{self, Decision, Matching, Record};
use leadflow_core::scoring::TransitionError;
use leadflow_core::settle;
use leadflow_core::{AccountId, Email, ImportId, KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use merging::{decide_review, merge_pair, split, unmerge};
use migrations::{latest_migration, migrate};
use reads::{
    IMPORT_COLUMNS, KEY_COLUMNS, REVIEW_COLUMNS, SUBMISSION_COLUMNS, get_submission, import_from_row, key_from_row,
    lead_following_merges, lead_from_doc, lead_history_newest_first, leads_by_mailbox, review_by_id, review_from_row,
    submission_from_row,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use writer::writer_loop;

const QUEUE_DEPTH: usize = 8192;
/// A chain of merges longer than this is a bug, not data.
const MAX_MERGE_HOPS: usize = 32;

pub struct SqliteStore {
    shared: Arc<Shared>,
    /// What capture and every other settling write decide under.
    rules: Rules,
}

/// What every handle on one database file shares ([`Store::with_rules`]): one writer
/// thread, so one group commit, whatever rules each handle settles under.
struct Shared {
    writer: mpsc::Sender<Command>,
    /// Set once `close` has been answered: the writer thread may not yet have dropped its
    /// end of the channel, so the channel alone cannot tell readiness probes.
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Readers>,
    /// Held while a resolver batch runs (see `resolver`).
    resolving: tokio::sync::Mutex<()>,
    /// The keys personal data is sealed under; `None`: stored in clear.
    cipher: Option<Arc<crate::cipher::Cipher>>,
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
    /// The store settles under `rules`.
    pub fn open(path: &Path, rules: Rules) -> Result<Self, StoreError> {
        Self::open_encrypted(path, rules, None)
    }

    /// [`Self::open`], sealing personal data under the store's data keys, which `masters`
    /// wrap (see [`crate::cipher`]). A database that held data in clear is converted
    /// before this returns; after a new master key, older values are re-encrypted by
    /// [`Store::reencrypt`] in the background.
    pub fn open_encrypted(
        path: &Path,
        rules: Rules,
        masters: Option<&leadflow_core::encryption::MasterKeys>,
    ) -> Result<Self, StoreError> {
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
        sealing::register(&conn, None)?;
        migrate(&mut conn)?;
        let cipher = sealing::open_keyring(&mut conn, masters)?;
        sealing::register(&conn, cipher.clone())?;
        if let Some(cipher) = &cipher
            && sealing::converting(&conn)?
        {
            tracing::info!("encrypting the data this database held in clear");
            // Overwritten values are zeroed, and VACUUM then rewrites the file without the
            // free pages that held older values; the log is emptied last.
            conn.execute_batch("PRAGMA secure_delete = ON")?;
            while !sealing::step(&conn, cipher, 2_000)?.done {}
            conn.execute_batch("PRAGMA secure_delete = OFF; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        start_checkpointer(&mut conn, path)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("leadflow-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        let shared = Shared {
            writer: tx,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
            readers: Arc::new(Readers { path: path.to_owned(), idle: Mutex::new(Vec::new()), cipher: cipher.clone() }),
            resolving: tokio::sync::Mutex::new(()),
            cipher,
        };
        Ok(Self { shared: Arc::new(shared), rules })
    }

    /// What capture and the resolver together would decide for this record now,
    /// read-only: the mailbox and blocking-key lookups and the comparison, for benchmarks
    /// and diagnostics.
    pub async fn match_record(&self, record: Record, matching: Arc<Matching>) -> Result<Decision, StoreError> {
        self.read(move |conn| {
            let email = record.email.as_deref().and_then(|e| Email::parse(e).ok());
            let mut lookup = settle::lookup(email.as_ref(), &matching);
            lookup.keys = resolve::blocking_keys(&record, &matching.model);
            // One read transaction, as the resolver's batch has (`resolver::decide`).
            let snapshot = conn.unchecked_transaction()?;
            let found = capture::candidates(conn, &lookup)?;
            snapshot.finish()?;
            Ok(settle::decide(&record, found, &matching))
        })
        .await
    }

    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.shared.writer.send(make(tx)).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// A write whose result is more than success: it runs in the writer's group like any
    /// other (possibly twice, if its group is redone), and the last run's value is kept.
    /// Submissions in one status, optionally of one source, oldest first, after `after`.
    async fn list_submissions(
        &self,
        status: &'static str,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // Ids are time-ordered, so paging by id is paging by arrival.
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = ?4 AND id > ?1 AND (?2 IS NULL OR source = ?2) ORDER BY id LIMIT ?3"
            ))?;
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            let rows = stmt
                .query_map(params![after, source.as_ref().map(SourceName::as_str), limit, status], submission_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().collect()
        })
        .await
    }

    /// Applies a run of a resolver batch's plans in one writer transaction, taking the
    /// queue rows through `through`.
    async fn apply_resolved(
        &self,
        run: Vec<resolver::Planned>,
        through: i64,
        now: OffsetDateTime,
    ) -> Result<ResolveBatch, StoreError> {
        let (run, rules) = (Arc::new(run), self.rules.clone());
        self.write_returning(move |conn| resolver::apply(conn, &run, through, &rules, now)).await
    }

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
        let readers = self.shared.readers.clone();
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

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone. Dropping the sender ends the writer loop after it
        // drains the queue.
        if let Ok(mut guard) = self.thread.lock()
            && let Some(handle) = guard.take()
        {
            drop(std::mem::replace(&mut self.writer, mpsc::channel(1).0));
            let _ = handle.join();
        }
    }
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

#[async_trait]
impl Store for SqliteStore {
    fn with_rules(&self, rules: Rules) -> DynStore {
        Arc::new(Self { shared: self.shared.clone(), rules })
    }

    async fn capture(&self, items: Vec<CaptureItem>) -> Result<Vec<Captured>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = items
            .into_iter()
            .map(|item| Ok(Prepared { payload: serde_json::to_string(&item.submission.payload)?, item }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (prepared, rules) = (Arc::new(prepared), self.rules.clone());
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
        self.list_submissions("rejected", source, after, limit).await
    }

    async fn list_pending(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        self.list_submissions("pending", source, after, limit).await
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
        // By the mailbox: a shared role mailbox may be several leads' address.
        let key = self.rules.matching.email_key(email);
        self.read(move |conn| leads_by_mailbox(conn, &key)).await
    }

    async fn reencrypt(&self, limit: usize) -> Result<crate::cipher::Reencrypted, StoreError> {
        let Some(cipher) = self.shared.cipher.clone() else {
            return Ok(crate::cipher::Reencrypted { rows: 0, done: true });
        };
        self.write_returning(move |conn| sealing::step(conn, &cipher, limit)).await
    }

    async fn known_emails(&self, emails: Vec<Email>) -> Result<Vec<Email>, StoreError> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let keyed: Vec<(String, Email)> = emails.into_iter().map(|e| (self.rules.matching.email_key(&e), e)).collect();
        let keys = serde_json::to_string(&keyed.iter().map(|(k, _)| k).collect::<Vec<_>>())?;
        let known: std::collections::HashSet<String> = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT value FROM json_each(?1) WHERE EXISTS
                     (SELECT 1 FROM leads WHERE email_key = lf_blind(value) AND merged_into IS NULL)",
                )?;
                Ok(stmt.query_map([keys], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?)
            })
            .await?;
        Ok(keyed.into_iter().filter(|(k, _)| known.contains(k)).map(|(_, e)| e).collect())
    }

    async fn lead_history(&self, id: LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT lf_open(entry) FROM lead_history WHERE lead_id = ?1 ORDER BY id")?;
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
                    "SELECT lf_open(doc) FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
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

    async fn rotate_key(
        &self,
        old: KeyId,
        grace_until: OffsetDateTime,
        new: ApiKey,
        hash: TokenHash,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.write_returning(move |conn| writer::rotate_key(conn, old, grace_until, &new, hash)).await
    }

    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        self.write_returning(move |conn| writer::touch_keys(conn, &used)).await
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
                        "INSERT INTO imports (id, source, sheet, status, created_at, updated_at, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, lf_seal(?7))",
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
                             report = coalesce(lf_seal(?10), report),
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
            let file: Option<Option<Vec<u8>>> = conn
                .query_row("SELECT lf_open(file) FROM imports WHERE id = ?1", [id.to_string()], |r| r.get(0))
                .optional()?;
            Ok(file.flatten())
        })
        .await
    }

    async fn import_report(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            let report: Option<Option<Vec<u8>>> = conn
                .query_row("SELECT lf_open(report) FROM imports WHERE id = ?1", [id.to_string()], |r| r.get(0))
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

    async fn decide_review(&self, id: ReviewId, decision: ReviewStatus) -> Result<Option<Review>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| decide_review(conn, id, decision, &rules)).await
    }

    async fn unmerge(&self, absorbed: LeadId) -> Result<Option<LeadId>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| unmerge(conn, absorbed, &rules, OffsetDateTime::now_utc())).await
    }

    async fn split_submission(
        &self,
        lead: LeadId,
        submission: SubmissionId,
        candidate: Candidate,
    ) -> Result<Option<Lead>, StoreError> {
        let rules = self.rules.clone();
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
    ) -> Result<bool, StoreError> {
        let rules = self.rules.clone();
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
                "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at) VALUES (?1, ?2, ?3, ?4, lf_seal(?5), 'open', ?6)",
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

    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let rules = self.rules.clone();
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
    ) -> Result<Option<Result<Lead, TransitionError>>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| {
            engagement::transition(conn, lead, &to, &actor, reason.as_deref(), &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn rescore_lead(&self, lead: LeadId) -> Result<Option<Lead>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| engagement::rescore(conn, lead, &rules, OffsetDateTime::now_utc())).await
    }

    async fn record_feedback(
        &self,
        items: Vec<leadflow_core::feedback::Feedback>,
    ) -> Result<Vec<leadflow_core::feedback::FeedbackResult>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rules = self.rules.clone();
        self.write_returning(move |conn| feedback::record(conn, &items, &rules, OffsetDateTime::now_utc())).await
    }

    async fn link_crm_record(&self, destination: &str, crm_id: &str, lead: LeadId) -> Result<u64, StoreError> {
        let (destination, crm_id, rules) = (destination.to_owned(), crm_id.to_owned(), self.rules.clone());
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

    async fn report_attendance(&self, event: Option<String>) -> Result<Vec<crate::AttendanceCount>, StoreError> {
        self.read(move |conn| engagement::report_attendance(conn, event.as_deref())).await
    }

    async fn resolve_queued(&self, limit: usize, now: OffsetDateTime) -> Result<ResolveBatch, StoreError> {
        // One batch at a time: two would decide the same rows.
        let _one = self.shared.resolving.lock().await;
        let rules = self.rules.clone();
        let readers = self.shared.readers.clone();
        let (send, mut planned) = tokio::sync::mpsc::unbounded_channel();
        let deciding = tokio::task::spawn_blocking(move || resolver::decide(&readers, limit, &rules, now, &send));
        // The plans go to the writer in runs while the rest are decided. While other
        // writes wait (captures), runs are short: a capture waits behind one run, not the
        // whole batch. Each run takes the queue rows through its last plan's.
        let mut done = ResolveBatch::default();
        let mut run: Vec<resolver::Planned> = Vec::new();
        while let Some(plan) = planned.recv().await {
            run.push(plan);
            let waiting = self.shared.writer.capacity() < self.shared.writer.max_capacity();
            if run.len() >= resolver::run_length(waiting)
                && let Some(&(through, _)) = run.last()
            {
                done.extend(self.apply_resolved(std::mem::take(&mut run), through, now).await?);
            }
        }
        let decided = deciding.await.map_err(|e| StoreError::Internal(e.to_string()))??;
        // The last run also takes the rows passed over after its last plan.
        if let Some(last) = decided.last {
            done.extend(self.apply_resolved(run, last, now).await?);
        }
        done.taken = decided.taken;
        Ok(done)
    }

    async fn health_cells(
        &self,
        query: leadflow_core::health::Query,
    ) -> Result<Vec<leadflow_core::health::Cell>, StoreError> {
        self.read(move |conn| health::cells(conn, &query)).await
    }

    async fn health_seen(&self) -> Result<Vec<crate::Seen>, StoreError> {
        self.read(health::seen).await
    }

    async fn health_backlogs(
        &self,
        destinations: Vec<String>,
        sources: Vec<String>,
    ) -> Result<leadflow_core::health::Backlogs, StoreError> {
        self.read(move |conn| health::backlogs(conn, &destinations, &sources)).await
    }

    async fn count(&self, tally: leadflow_core::health::Tally) -> Result<(), StoreError> {
        self.write_returning(move |conn| health::write(conn, &tally)).await
    }

    async fn prune_health(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.write_returning(move |conn| health::prune(conn, now)).await
    }

    async fn alert_state(&self) -> Result<crate::AlertState, StoreError> {
        self.read(|conn| alerts::state(conn, OffsetDateTime::now_utc())).await
    }

    async fn apply_alerts(&self, step: leadflow_core::health::alerts::Step) -> Result<(), StoreError> {
        self.write_returning(move |conn| alerts::apply(conn, &step, OffsetDateTime::now_utc())).await
    }

    async fn list_episodes(
        &self,
        state: Option<leadflow_core::health::alerts::State>,
        limit: usize,
    ) -> Result<Vec<leadflow_core::health::alerts::Episode>, StoreError> {
        self.read(move |conn| alerts::list(conn, state, limit)).await
    }

    async fn get_episode(&self, id: &str) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| alerts::get(conn, &id)).await
    }

    async fn acknowledge_episode(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError> {
        let (id, by) = (id.to_owned(), by.to_owned());
        self.write_returning(move |conn| alerts::acknowledge(conn, &id, &by, now)).await
    }

    async fn silence(&self, scope: &str, until: OffsetDateTime, by: &str) -> Result<(), StoreError> {
        let (scope, by) = (scope.to_owned(), by.to_owned());
        self.write_returning(move |conn| alerts::silence(conn, &scope, until, &by)).await
    }

    async fn claim_notifications(
        &self,
        limit: usize,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::StoredNotification>, StoreError> {
        self.write_returning(move |conn| alerts::claim(conn, limit, lease, now)).await
    }

    async fn record_notification(
        &self,
        id: &str,
        result: crate::NotificationResult,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write_returning(move |conn| alerts::record(conn, &id, &result, now)).await
    }

    async fn episode_notifications(&self, episode: &str) -> Result<Vec<crate::StoredNotification>, StoreError> {
        let episode = episode.to_owned();
        self.read(move |conn| alerts::of_episode(conn, &episode)).await
    }

    async fn resolve_backlog(&self) -> Result<u64, StoreError> {
        self.read(resolver::backlog).await
    }

    async fn route_queued(&self, limit: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| routing::route_queued(conn, limit, &rules, now)).await
    }

    async fn run_sla(&self, limit: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| routing::run_sla(conn, limit, &rules, now)).await
    }

    async fn assign_lead(
        &self,
        lead: LeadId,
        owner: Option<String>,
        actor: String,
    ) -> Result<Option<(Lead, bool)>, StoreError> {
        let rules = self.rules.clone();
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
    ) -> Result<Option<crate::ErasureReceipt>, StoreError> {
        let rules = self.rules.clone();
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

    async fn lead_deliveries(
        &self,
        lead: LeadId,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        self.read(move |conn| outbox::of_lead(conn, lead, limit)).await
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

    async fn enqueue_deliveries(&self, deliveries: Vec<leadflow_core::changes::Delivery>) -> Result<u64, StoreError> {
        self.write_returning(move |conn| {
            let mut exists = conn.prepare_cached("SELECT 1 FROM outbox WHERE id = ?1")?;
            let mut held = std::collections::HashSet::new();
            for d in &deliveries {
                if exists.exists([&d.id])? {
                    held.insert(d.id.clone());
                }
            }
            let changes = leadflow_core::changes::unqueued(deliveries.clone(), &held);
            apply::apply(conn, &changes)?;
            Ok(changes.len() as u64)
        })
        .await
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

    async fn crm_record_lead(&self, destination: &str, crm_id: &str) -> Result<Option<LeadId>, StoreError> {
        let (destination, crm_id) = (destination.to_owned(), crm_id.to_owned());
        let id: Option<String> = self
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT lead_id FROM crm_links WHERE destination = ?1 AND crm_id = ?2",
                        params![destination, crm_id],
                        |r| r.get(0),
                    )
                    .optional()?)
            })
            .await?;
        id.map(|id| id.parse().map_err(|e| StoreError::Corrupt(format!("crm_links.lead_id: {e}")))).transpose()
    }

    async fn changes(
        &self,
        after: &leadflow_core::feed::Cursor,
        limit: usize,
    ) -> Result<leadflow_core::feed::Page, StoreError> {
        let position = after.at(0);
        let (rows, head) = self.read(move |conn| feed::read(conn, position, limit)).await?;
        crate::feed_page(after, rows, head)
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

    async fn suppress(&self, entries: Vec<leadflow_core::suppress::Suppression>) -> Result<u64, StoreError> {
        self.write_returning(move |conn| privacy::suppress(conn, &entries)).await
    }

    async fn suppressed(&self, hashes: Vec<String>) -> Result<Vec<String>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| privacy::suppressed(conn, &hashes)).await
    }

    async fn lift_suppressions(&self, hashes: Vec<String>) -> Result<u64, StoreError> {
        self.write_returning(move |conn| privacy::lift(conn, &hashes)).await
    }

    async fn discard_submissions(&self, ids: Vec<SubmissionId>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write_returning(move |conn| privacy::discard(conn, &ids)).await
    }

    async fn record_consent(
        &self,
        lead: LeadId,
        purpose: String,
        state: leadflow_core::consent::State,
        actor: Option<String>,
    ) -> Result<Option<Lead>, StoreError> {
        let rules = self.rules.clone();
        self.write_returning(move |conn| {
            privacy::record(conn, lead, &purpose, &state, actor.as_deref(), &rules, OffsetDateTime::now_utc())
        })
        .await
    }

    async fn consent_ledger(&self, lead: LeadId) -> Result<Vec<(LeadId, leadflow_core::consent::Entry)>, StoreError> {
        self.read(move |conn| privacy::ledger(conn, lead)).await
    }

    async fn append_audit(
        &self,
        entries: Vec<leadflow_core::audit::NewEntry>,
    ) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        let at = OffsetDateTime::now_utc();
        self.write_returning(move |conn| audit::append(conn, entries.clone(), at)).await
    }

    async fn list_audit(&self, filter: crate::AuditFilter) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        self.read(move |conn| audit::list(conn, &filter)).await
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        self.read(move |conn| audit::after(conn, after, limit)).await
    }

    async fn merged_records(&self, lead: LeadId) -> Result<Vec<Lead>, StoreError> {
        self.read(move |conn| subject::merged_records(conn, lead)).await
    }

    async fn lead_submissions(
        &self,
        leads: Vec<LeadId>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        self.read(move |conn| subject::submissions(conn, &leads, after, limit)).await
    }

    async fn events_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<leadflow_core::EventId>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(move |conn| subject::events(conn, &leads, after, limit)).await
    }

    async fn deliveries_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        self.read(move |conn| subject::deliveries(conn, &leads, after, limit)).await
    }

    async fn reviews_naming(&self, leads: Vec<LeadId>) -> Result<Vec<Review>, StoreError> {
        self.read(move |conn| subject::reviews(conn, &leads)).await
    }

    async fn feedback_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<leadflow_core::FeedbackId>,
        limit: usize,
    ) -> Result<Vec<crate::StoredFeedback>, StoreError> {
        self.read(move |conn| subject::feedback(conn, &leads, after, limit)).await
    }

    async fn count_expired(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.read(move |conn| subject::count(conn, kind, before)).await
    }

    async fn expire(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        match kind {
            RetentionKind::InactiveLeads => {
                Err(StoreError::Unsupported("inactive leads are anonymized or erased one at a time".into()))
            }
            RetentionKind::Audit => loop {
                match self.write_returning(move |conn| subject::expire_audit(conn, before)).await? {
                    0 => return Ok(total),
                    n => total += n,
                }
            },
            _ => {
                // The scan runs on a read connection; the writer only changes the ids found.
                let mut after = String::new();
                loop {
                    let from = std::mem::take(&mut after);
                    let ids = self.read(move |conn| subject::scan(conn, kind, &from, before)).await?;
                    let Some(last) = ids.last().cloned() else { return Ok(total) };
                    let ids = Arc::new(ids);
                    total += self.write_returning(move |conn| subject::apply(conn, kind, &ids, before)).await?;
                    after = last;
                }
            }
        }
    }

    async fn inactive_leads(
        &self,
        before: OffsetDateTime,
        after: Option<LeadId>,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError> {
        self.read(move |conn| subject::inactive_leads(conn, before, after, limit)).await
    }

    async fn save_retention_run(&self, run: RetentionRun) -> Result<(), StoreError> {
        self.write_returning(move |conn| subject::save_run(conn, &run)).await
    }

    async fn list_retention_runs(&self, limit: usize) -> Result<Vec<RetentionRun>, StoreError> {
        self.read(move |conn| subject::list_runs(conn, limit)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.shared.writer.is_closed() || self.shared.closed.load(Ordering::Acquire) {
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
        self.shared.closed.store(true, Ordering::Release);
        closed
    }
}
