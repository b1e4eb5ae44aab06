//! The PostgreSQL store, for several stateless leadflow instances sharing one database.
//!
//! Each call runs in its own transaction on a pooled connection, except captures:
//! concurrent captures queue and settle together, a group in one transaction with one
//! commit (see `group`), in a few round trips for the whole group (see `settle`). What
//! one instance cannot see, the database settles:
//!
//! - Before a capture looks for matches it takes a transaction-scoped advisory lock on
//!   each exact and blocking key of its candidates (sorted, so two callers never wait on
//!   each other in opposite orders). Two instances receiving the same person therefore
//!   match one after the other, and the second finds the first's lead. The unique index
//!   on the surviving leads' emails keeps even a bug from committing two. A transaction
//!   naming more keys than PostgreSQL's lock table should hold for it takes one lock on
//!   every key instead, which waits for all the others and holds them off.
//! - A lead about to change is locked (`FOR UPDATE`) and re-read, so concurrent merges
//!   into it apply one after the other instead of failing their version check.
//! - Deadlocks, serialization failures and (for captures) unique violations roll the
//!   transaction back and run it again, a bounded number of times.
//! - Migrations run in one transaction under an advisory lock: instances starting
//!   together apply each migration once.
//!
//! A database that is down or restarting answers fast: connecting is refused or times
//! out, statements have a timeout, and every such failure is [`StoreError::Unavailable`]
//! (503 at the HTTP edge). The pool drops connections the server closed and opens new
//! ones, so the store recovers by itself once the database is back.

mod accounts;
mod alerts;
mod apply;
mod audit;
mod capture;
mod claims;
mod engagement;
mod erase;
mod fail;
mod feed;
mod feedback;
mod health;
mod outbox;
mod privacy;
mod resolver;
mod routing;
mod sealing;
mod settle;
mod sql;
mod subject;
mod tls;

pub(crate) use fail::Fail;

use crate::{
    AccountUpdate, AttemptRecord, CaptureItem, Captured, DeliveryAttempt, DeliveryStatus, EventOutcome, ImportJob,
    NewEvent, OutboxDelivery, ReplayFilter, ResolveBatch, Review, ReviewStatus, RoutedLead, SourceCount, StageCount,
    Store, StoreError, StoredSubmission,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use leadflow_core::account::Account;
use leadflow_core::attribute::Touchpoint;
use leadflow_core::capture::RawSubmission;
use leadflow_core::engagement::Event;
use leadflow_core::error::FieldError;
use leadflow_core::health::Tally;
use leadflow_core::keys::{ApiKey, TokenHash};
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline::{HistoryEntry, Rules};
use leadflow_core::privacy::retention::{Kind as RetentionKind, Run as RetentionRun};
use leadflow_core::resolve;
use leadflow_core::scoring::TransitionError;
use leadflow_core::{AccountId, Email, ImportId, KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use std::time::Duration;
use time::OffsetDateTime;
use tokio_postgres::NoTls;

/// Versioned, append-only migrations. Never edit a released one: add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_schema.sql")),
    (2, include_str!("../../migrations/postgres/0002_accounts_engagement.sql")),
    (3, include_str!("../../migrations/postgres/0003_jobs.sql")),
    (4, include_str!("../../migrations/postgres/0004_outbox.sql")),
    (5, include_str!("../../migrations/postgres/0005_routing.sql")),
    (6, include_str!("../../migrations/postgres/0006_feedback.sql")),
    (7, include_str!("../../migrations/postgres/0007_erasure.sql")),
    (8, include_str!("../../migrations/postgres/0008_email_key.sql")),
    (9, include_str!("../../migrations/postgres/0009_submission_fingerprint.sql")),
    (10, include_str!("../../migrations/postgres/0010_resolve_queue.sql")),
    (11, include_str!("../../migrations/postgres/0011_lead_records.sql")),
    (12, include_str!("../../migrations/postgres/0012_health.sql")),
    (13, include_str!("../../migrations/postgres/0013_alerts.sql")),
    (14, include_str!("../../migrations/postgres/0014_audit.sql")),
    (15, include_str!("../../migrations/postgres/0015_privacy.sql")),
    (16, include_str!("../../migrations/postgres/0016_retention.sql")),
    (17, include_str!("../../migrations/postgres/0017_key_lifecycle.sql")),
    (18, include_str!("../../migrations/postgres/0018_changes.sql")),
    (19, include_str!("../../migrations/postgres/0019_encryption.sql")),
];

/// The advisory lock migrations run under (an arbitrary constant: "leadflow").
const MIGRATION_LOCK: i64 = 0x6c65_6164_666c_6f77;
/// How often a transaction that lost a race (deadlock, serialization failure, unique
/// violation) is run again before the caller is told.
const MAX_ATTEMPTS: u32 = 5;
/// `/readyz` must answer well within a load balancer's probe timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs `$body` in a transaction on a pooled connection and commits it; runs it again
/// when it lost a race (see [`Fail::retryable`]). Evaluates to `Result<_, StoreError>`.
macro_rules! transaction {
    ($store:expr, $unique_too:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            let mut client = match $store.client().await {
                Ok(client) => client,
                Err(e) => break Err(e),
            };
            let result = $crate::postgres::sealing::scoped(
                $store.sealer(),
                $crate::postgres::feed::scoped(async {
                    let $tx = client.transaction().await?;
                    let value = $body;
                    $crate::postgres::feed::write(&$tx).await?;
                    $tx.commit().await?;
                    Ok::<_, Fail>(value)
                }),
            )
            .await;
            match result {
                Ok(value) => break Ok(value),
                Err(e) if attempt + 1 < MAX_ATTEMPTS && e.retryable($unique_too) => {
                    attempt += 1;
                    tracing::debug!(attempt, error = ?e.code(), "transaction lost a race; running it again");
                    backoff(attempt).await;
                }
                Err(e) => break Err(e.into_store()),
            }
        }
    }};
}

/// Runs `$body` (a future of `Result<_, Fail>`) with a pooled connection as `$c`.
/// Evaluates to `Result<_, StoreError>`.
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let client = $store.client().await?;
        let $c = &client;
        let result: Result<_, Fail> = $crate::postgres::sealing::scoped($store.sealer(), $body).await;
        result.map_err(Fail::into_store)
    }};
}

// After the macros, which it uses.
mod group;

/// How the store connects. The defaults suit one instance beside a few others on a
/// PostgreSQL with its default `max_connections` of 100.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The most connections this instance holds.
    pub max_connections: usize,
    /// How long opening a connection may take before the call fails as unavailable.
    pub connect_timeout: Duration,
    /// How long a caller waits for a free connection when all are busy.
    pub wait_timeout: Duration,
    /// The server cancels any statement running longer (`statement_timeout`).
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

pub struct PgStore {
    /// Shared by every handle on the database ([`Store::with_rules`]), like `groups` and
    /// `closed`.
    db: Connections,
    /// Captures of every handle wait here to settle in groups.
    groups: group::Groups,
    /// `true` once closed. Writes hold it shared while they run, so `close` (which takes
    /// it exclusively) waits for every accepted write to finish.
    closed: std::sync::Arc<tokio::sync::RwLock<bool>>,
    /// What capture and every other settling write decide under.
    rules: Rules,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and migrates it. The store
    /// settles under `rules`.
    pub async fn open(url: &str, options: &PgOptions, rules: Rules) -> Result<Self, StoreError> {
        Self::open_encrypted(url, options, rules, None).await
    }

    /// [`Self::open`], with personal data sealed under data keys the master keys wrap (see
    /// [`crate::cipher`]); a database that holds keys refuses to open without them.
    pub async fn open_encrypted(
        url: &str,
        options: &PgOptions,
        rules: Rules,
        masters: Option<&leadflow_core::encryption::MasterKeys>,
    ) -> Result<Self, StoreError> {
        let (url, tls) = tls::split(url)?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Unsupported(format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        // A connection to a host that vanished without closing it is noticed in about a
        // minute, not after the kernel's default two hours.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("leadflow");
        }
        // Set per connection, so a statement stuck behind a lock or a crashed client's
        // open transaction fails instead of holding a request (and a connection) forever.
        // No JIT: every statement here is short, and one whose row estimate runs high (a
        // recursive walk of merges for a group's leads) spent 100 ms compiling itself.
        let timeouts = format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={} -c jit=off",
            options.statement_timeout.as_millis(),
            (options.statement_timeout * 6).as_millis()
        );
        let extra = config.get_options().map(|o| format!("{o} {timeouts}")).unwrap_or(timeouts);
        config.options(&extra);
        // Fast recycling checks only that the connection task is alive; a connection the
        // server closed (a restart) is noticed there and replaced.
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match tls {
            tls::Mode::Off => Manager::from_config(config, NoTls, recycling),
            mode => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls::client_config(&mode)?);
                Manager::from_config(config, tls, recycling)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))?;
        let mut db = Connections { pool, cipher: None };
        migrate(&db).await?;
        db.cipher = transaction!(db, false, |tx| { sealing::open_keyring(&tx, masters).await? })?;
        if let Some(cipher) = &db.cipher {
            // Lookups need the blind indexes: a first conversion finishes before serving.
            while read!(db, |c| sealing::converting(c))? {
                transaction!(db, false, |tx| { sealing::step(&tx, cipher, REENCRYPT_BATCH).await? })?;
            }
        }
        let groups = group::Groups::start(db.clone());
        Ok(Self { db, groups, closed: std::sync::Arc::new(tokio::sync::RwLock::new(false)), rules })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.db.client().await
    }

    fn sealer(&self) -> Option<std::sync::Arc<crate::cipher::Cipher>> {
        self.db.sealer()
    }

    /// How many capture groups failed as a whole and were redone submission by
    /// submission: a group fails as a whole only when a submission in it cannot settle,
    /// never because of what its submissions share.
    pub fn groups_redone(&self) -> u64 {
        self.groups.redone()
    }

    /// Admits a write unless the store is closed; the guard is held until it finishes.
    async fn writable(&self) -> Result<tokio::sync::RwLockReadGuard<'_, bool>, StoreError> {
        let guard = self.closed.read().await;
        if *guard { Err(StoreError::Closed) } else { Ok(guard) }
    }
}

async fn migrate(db: &Connections) -> Result<(), StoreError> {
    transaction!(db, false, |tx| {
        // Taken before anything else, so concurrent starts line up here, including
        // their creation of the version table.
        sql::exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let current: i32 =
            tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?.try_get(0)?;
        let applied: std::collections::BTreeSet<i32> = tx
            .query("SELECT version FROM schema_migrations", &[])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        // Every migration not applied yet, not only those above the highest applied:
        // numbers are taken by branches merged in any order, so a lower one may arrive
        // later.
        for (version, migration) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
            tx.batch_execute(migration).await?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await?;
            tracing::info!(version, "applied migration");
        }
        // Leads stored before a migration get what it added, in the same transaction.
        if current < 2 {
            accounts::backfill(&tx).await?;
            engagement::backfill(&tx).await?;
        }
        if current < 8 {
            sql::backfill_email_keys(&tx).await?;
        }
    })
}

/// Rows re-encrypted per transaction when a first conversion runs at start.
const REENCRYPT_BATCH: usize = 500;

/// The connection pool and the keys personal data is sealed with, shared with the task
/// that settles capture groups.
#[derive(Clone)]
struct Connections {
    pool: Pool,
    cipher: Option<std::sync::Arc<crate::cipher::Cipher>>,
}

impl Connections {
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }

    fn sealer(&self) -> Option<std::sync::Arc<crate::cipher::Cipher>> {
        self.cipher.clone()
    }
}

fn latest_migration() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// A short pause before running a transaction again, growing with each attempt and
/// jittered so the transactions that collided do not collide again.
async fn backoff(attempt: u32) {
    let jitter = u64::from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) % 5,
    );
    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5 + jitter)).await;
}

#[async_trait]
impl Store for PgStore {
    fn with_rules(&self, rules: Rules) -> crate::DynStore {
        std::sync::Arc::new(Self {
            db: self.db.clone(),
            groups: self.groups.clone(),
            closed: self.closed.clone(),
            rules,
        })
    }

    async fn capture(&self, items: Vec<CaptureItem>) -> Result<Vec<Captured>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Held until the group holding the items committed: `close` waits for it.
        let _open = self.writable().await?;
        self.groups.capture(items, &self.rules).await
    }

    async fn enqueue(&self, submissions: Vec<RawSubmission>) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        let locks = sql::idempotency_locks(submissions.iter());
        transaction!(self, true, |tx| {
            sql::lock_keys(&tx, &locks).await?;
            let mut tally = Tally::default();
            for sub in &submissions {
                capture::enqueue_one(&tx, sub, &mut tally).await?;
            }
            health::write(&tx, &tally).await?;
        })
    }

    async fn pending_submissions(&self, limit: usize) -> Result<Vec<RawSubmission>, StoreError> {
        read!(self, |c| sql::pending_submissions(c, limit))
    }

    async fn reject_submission(&self, id: SubmissionId, errors: Vec<FieldError>) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            let mut tally = Tally::default();
            sql::reject(&tx, id, &errors, &mut tally).await?;
            health::write(&tx, &tally).await?;
        })
    }

    async fn quarantine(&self, items: Vec<(RawSubmission, Vec<FieldError>)>) -> Result<Vec<Captured>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let _open = self.writable().await?;
        let locks = sql::idempotency_locks(items.iter().map(|(s, _)| s));
        transaction!(self, true, |tx| {
            sql::lock_keys(&tx, &locks).await?;
            let mut out = Vec::with_capacity(items.len());
            let mut tally = Tally::default();
            for (sub, errors) in &items {
                out.push(capture::quarantine_one(&tx, sub, errors, &mut tally).await?);
            }
            health::write(&tx, &tally).await?;
            out
        })
    }

    async fn list_quarantine(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        read!(self, |c| sql::list_submissions(c, "rejected", source.as_ref(), after, limit))
    }

    async fn list_pending(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        read!(self, |c| sql::list_submissions(c, "pending", source.as_ref(), after, limit))
    }

    async fn get_submission(&self, id: SubmissionId) -> Result<Option<StoredSubmission>, StoreError> {
        read!(self, |c| sql::get_submission(c, id))
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        read!(self, |c| sql::lead_following_merges(c, id, false))
    }

    async fn find_leads_by_email(&self, email: &Email) -> Result<Vec<Lead>, StoreError> {
        // By the mailbox: a shared role mailbox may be several leads' address.
        let key = self.rules.matching.email_key(email);
        read!(self, |c| sql::leads_by_mailbox(c, &key))
    }

    async fn known_emails(&self, emails: Vec<Email>) -> Result<Vec<Email>, StoreError> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let keyed: Vec<(String, Email)> = emails.into_iter().map(|e| (self.rules.matching.email_key(&e), e)).collect();
        // Rows name the key by its place: the column may hold its blind index.
        let keys: Vec<sealing::Blind<&str>> = keyed.iter().map(|(k, _)| sealing::Blind(k.as_str())).collect();
        let known: std::collections::HashSet<usize> = read!(self, |c| async {
            let sql = "SELECT k.n FROM unnest($1::text[]) WITH ORDINALITY AS k (key, n)
                       WHERE EXISTS (SELECT 1 FROM leads WHERE email_key = k.key AND merged_into IS NULL)";
            sql::rows(c, sql, &[&keys])
                .await?
                .iter()
                .map(|r| Ok(usize::try_from(r.try_get::<_, i64>(0)? - 1).unwrap_or(usize::MAX)))
                .collect()
        })?;
        Ok(keyed.into_iter().enumerate().filter(|(i, _)| known.contains(i)).map(|(_, (_, e))| e).collect())
    }

    async fn lead_history(&self, id: LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
        read!(self, |c| sql::lead_history(c, id))
    }

    async fn list_leads(&self, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        read!(self, |c| sql::list_leads(c, after, limit))
    }

    async fn count_leads(&self) -> Result<u64, StoreError> {
        read!(self, |c| async {
            let n: i64 = sql::one(c, "SELECT count(*) FROM leads WHERE merged_into IS NULL", &[]).await?.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    async fn create_key(&self, key: ApiKey, hash: TokenHash) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::create_key(&tx, &key, hash).await? }).map_err(|e| match e {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("an active key named {:?} already exists", key.name))
            }
            other => other,
        })
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        read!(self, |c| sql::list_keys(c))
    }

    async fn revoke_key(&self, name_or_id: &str) -> Result<Option<ApiKey>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::revoke_key(&tx, name_or_id).await? })
    }

    async fn key_by_hash(&self, hash: TokenHash) -> Result<Option<ApiKey>, StoreError> {
        read!(self, |c| sql::key_by_hash(c, hash))
    }

    async fn rotate_key(
        &self,
        old: KeyId,
        grace_until: OffsetDateTime,
        new: ApiKey,
        hash: TokenHash,
    ) -> Result<Option<ApiKey>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::rotate_key(&tx, old, grace_until, &new, hash).await? })
    }

    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::touch_keys(&tx, &used).await? })
    }

    async fn create_import(&self, job: ImportJob, file: Vec<u8>) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::create_import(&tx, &job, &file).await? })
    }

    async fn update_import(&self, job: ImportJob, report: Option<Vec<u8>>) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::update_import(&tx, &job, report.as_deref()).await? })
    }

    async fn get_import(&self, id: ImportId) -> Result<Option<ImportJob>, StoreError> {
        read!(self, |c| sql::get_import(c, id))
    }

    async fn import_file(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        read!(self, |c| sql::import_blob(c, "SELECT file FROM imports WHERE id = $1", id))
    }

    async fn import_report(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        read!(self, |c| sql::import_blob(c, "SELECT report FROM imports WHERE id = $1", id))
    }

    async fn unfinished_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        read!(self, |c| sql::unfinished_imports(c))
    }

    async fn list_reviews(&self, after: Option<ReviewId>, limit: usize) -> Result<Vec<Review>, StoreError> {
        read!(self, |c| sql::list_reviews(c, after, limit))
    }

    async fn get_review(&self, id: ReviewId) -> Result<Option<Review>, StoreError> {
        read!(self, |c| sql::review_by_id(c, id, false))
    }

    async fn decide_review(&self, id: ReviewId, decision: ReviewStatus) -> Result<Option<Review>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::decide_review(&tx, id, decision, rules).await? })
    }

    async fn merge_leads(
        &self,
        survivor: LeadId,
        absorbed: LeadId,
        explanation: resolve::Explanation,
    ) -> Result<bool, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            sql::lock_leads(&tx, &[survivor, absorbed]).await?;
            sql::merge_pair(&tx, survivor, absorbed, explanation.clone(), rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn unmerge(&self, absorbed: LeadId) -> Result<Option<LeadId>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::unmerge(&tx, absorbed, rules, OffsetDateTime::now_utc()).await? })
    }

    async fn add_review(
        &self,
        lead: LeadId,
        candidate: LeadId,
        score: f64,
        evidence: Vec<resolve::Evidence>,
    ) -> Result<bool, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sql::add_review(&tx, lead, candidate, score, &evidence).await? })
    }

    async fn split_submission(
        &self,
        lead: LeadId,
        submission: SubmissionId,
        candidate: Candidate,
    ) -> Result<Option<Lead>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            sql::split(&tx, lead, submission, candidate.clone(), rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        read!(self, |c| accounts::get(c, id))
    }

    async fn list_accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        read!(self, |c| accounts::list(c, after, limit))
    }

    async fn account_leads(&self, id: AccountId, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        read!(self, |c| accounts::leads(c, id, after, limit))
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Option<Account>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { accounts::update(&tx, id, &update).await? })
    }

    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventOutcome>, StoreError> {
        let rules = &self.rules;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let _open = self.writable().await?;
        let locks = engagement::event_locks(&events);
        // Unique violations are retried too: the idempotency index or a lead written
        // concurrently; the run again replays what the other committed.
        transaction!(self, true, |tx| {
            sql::lock_keys(&tx, &locks).await?;
            engagement::record(&tx, &events, rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn lead_events(&self, lead: LeadId, limit: usize) -> Result<Vec<Event>, StoreError> {
        read!(self, |c| engagement::lead_events(c, lead, limit))
    }

    async fn touchpoints(&self, lead: LeadId) -> Result<Vec<Touchpoint>, StoreError> {
        read!(self, |c| engagement::touchpoints(c, lead))
    }

    async fn transition_lead(
        &self,
        lead: LeadId,
        to: String,
        actor: String,
        reason: Option<String>,
    ) -> Result<Option<Result<Lead, TransitionError>>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            engagement::transition(&tx, lead, &to, &actor, reason.as_deref(), rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn rescore_lead(&self, lead: LeadId) -> Result<Option<Lead>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { engagement::rescore(&tx, lead, rules, OffsetDateTime::now_utc()).await? })
    }

    async fn record_feedback(
        &self,
        items: Vec<leadflow_core::feedback::Feedback>,
    ) -> Result<Vec<leadflow_core::feedback::FeedbackResult>, StoreError> {
        let rules = &self.rules;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let _open = self.writable().await?;
        // Unique violations are retried: another instance recorded the same event, and
        // the run again replays its outcome.
        transaction!(self, true, |tx| { feedback::record(&tx, &items, rules, OffsetDateTime::now_utc()).await? })
    }

    async fn link_crm_record(&self, destination: &str, crm_id: &str, lead: LeadId) -> Result<u64, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, true, |tx| {
            feedback::link(&tx, destination, crm_id, lead, rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn list_feedback(
        &self,
        source: Option<String>,
        after: Option<leadflow_core::FeedbackId>,
        limit: usize,
    ) -> Result<Vec<crate::StoredFeedback>, StoreError> {
        read!(self, |c| feedback::list(c, source.as_deref(), after, limit))
    }

    async fn report_disqualifications(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        stage: &str,
    ) -> Result<Vec<crate::ReasonCount>, StoreError> {
        read!(self, |c| feedback::report_disqualifications(c, from, to, stage))
    }

    async fn report_sources(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        latest: bool,
    ) -> Result<Vec<SourceCount>, StoreError> {
        read!(self, |c| engagement::report_sources(c, from, to, latest))
    }

    async fn report_stages(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<Vec<StageCount>, StoreError> {
        read!(self, |c| engagement::report_stages(c, from, to))
    }

    async fn report_attendance(&self, event: Option<String>) -> Result<Vec<crate::AttendanceCount>, StoreError> {
        read!(self, |c| engagement::report_attendance(c, event.as_deref()))
    }

    async fn merged_records(&self, lead: LeadId) -> Result<Vec<Lead>, StoreError> {
        read!(self, |c| subject::merged_records(c, lead))
    }

    async fn lead_submissions(
        &self,
        leads: Vec<LeadId>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        read!(self, |c| subject::submissions(c, &leads, after, limit))
    }

    async fn events_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<leadflow_core::EventId>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        read!(self, |c| subject::events(c, &leads, after, limit))
    }

    async fn deliveries_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        read!(self, |c| subject::deliveries(c, &leads, after, limit))
    }

    async fn reviews_naming(&self, leads: Vec<LeadId>) -> Result<Vec<Review>, StoreError> {
        read!(self, |c| subject::reviews(c, &leads))
    }

    async fn feedback_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<leadflow_core::FeedbackId>,
        limit: usize,
    ) -> Result<Vec<crate::StoredFeedback>, StoreError> {
        read!(self, |c| subject::feedback(c, &leads, after, limit))
    }

    async fn count_expired(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError> {
        read!(self, |c| subject::count(c, kind, before))
    }

    async fn expire(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        match kind {
            RetentionKind::InactiveLeads => {
                Err(StoreError::Unsupported("inactive leads are anonymized or erased one at a time".into()))
            }
            RetentionKind::Audit => loop {
                let _open = self.writable().await?;
                match transaction!(self, false, |tx| { subject::expire_audit(&tx, before).await? })? {
                    0 => return Ok(total),
                    n => total += n,
                }
            },
            _ => {
                let mut after = subject::scan_start(kind);
                loop {
                    let ids = read!(self, |c| subject::scan(c, kind, &after, before))?;
                    let Some(last) = ids.last().cloned() else { return Ok(total) };
                    let _open = self.writable().await?;
                    total += transaction!(self, false, |tx| { subject::apply(&tx, kind, &ids, before).await? })?;
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
        read!(self, |c| subject::inactive_leads(c, before, after, limit))
    }

    async fn save_retention_run(&self, run: RetentionRun) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { subject::save_run(&tx, &run).await? })
    }

    async fn list_retention_runs(&self, limit: usize) -> Result<Vec<RetentionRun>, StoreError> {
        read!(self, |c| subject::list_runs(c, limit))
    }

    async fn try_claim_period(&self, job: &str, period_start: OffsetDateTime) -> Result<bool, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            let inserted = sql::exec(
                &tx,
                "INSERT INTO job_runs (job, period_start) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&job, &period_start],
            )
            .await?;
            inserted == 1
        })
    }

    async fn crm_record_lead(&self, destination: &str, crm_id: &str) -> Result<Option<LeadId>, StoreError> {
        read!(self, |c| async {
            let sql = "SELECT lead_id FROM crm_links WHERE destination = $1 AND crm_id = $2";
            match sql::opt(c, sql, &[&destination, &crm_id]).await? {
                Some(row) => Ok(Some(LeadId::from(row.try_get::<_, uuid::Uuid>(0)?))),
                None => Ok(None),
            }
        })
    }

    async fn changes(
        &self,
        after: &leadflow_core::feed::Cursor,
        limit: usize,
    ) -> Result<leadflow_core::feed::Page, StoreError> {
        let (rows, head) = read!(self, |c| feed::read(c, after.at(0), limit))?;
        crate::feed_page(after, rows, head)
    }

    async fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        read!(self, |c| async {
            match sql::opt(c, "SELECT value FROM cursors WHERE name = $1", &[&name]).await? {
                Some(row) => Ok(Some(row.try_get::<_, String>(0)?)),
                None => Ok(None),
            }
        })
    }

    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            sql::exec(
                &tx,
                "INSERT INTO cursors (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()",
                &[&name, &value],
            )
            .await?;
        })
    }

    async fn resolve_queued(&self, max: usize, now: OffsetDateTime) -> Result<ResolveBatch, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { resolver::resolve_queued(&tx, max, rules, now).await? })
    }

    async fn health_cells(
        &self,
        query: leadflow_core::health::Query,
    ) -> Result<Vec<leadflow_core::health::Cell>, StoreError> {
        read!(self, |c| health::cells(c, &query))
    }

    async fn health_seen(&self) -> Result<Vec<crate::Seen>, StoreError> {
        read!(self, |c| health::seen(c))
    }

    async fn health_backlogs(
        &self,
        destinations: Vec<String>,
        sources: Vec<String>,
    ) -> Result<leadflow_core::health::Backlogs, StoreError> {
        read!(self, |c| health::backlogs(c, &destinations, &sources))
    }

    async fn count(&self, tally: Tally) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { health::write(&tx, &tally).await? })
    }

    async fn prune_health(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { health::prune(&tx, now).await? })
    }

    async fn alert_state(&self) -> Result<crate::AlertState, StoreError> {
        read!(self, |c| alerts::state(c, OffsetDateTime::now_utc()))
    }

    async fn apply_alerts(&self, step: leadflow_core::health::alerts::Step) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { alerts::apply(&tx, &step, OffsetDateTime::now_utc()).await? })
    }

    async fn list_episodes(
        &self,
        state: Option<leadflow_core::health::alerts::State>,
        limit: usize,
    ) -> Result<Vec<leadflow_core::health::alerts::Episode>, StoreError> {
        read!(self, |c| alerts::list(c, state, limit))
    }

    async fn get_episode(&self, id: &str) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError> {
        read!(self, |c| alerts::get(c, id))
    }

    async fn acknowledge_episode(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { alerts::acknowledge(&tx, id, by, now).await? })
    }

    async fn suppress(&self, entries: Vec<leadflow_core::suppress::Suppression>) -> Result<u64, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { privacy::suppress(&tx, &entries).await? })
    }

    async fn suppressed(&self, hashes: Vec<String>) -> Result<Vec<String>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        read!(self, |c| privacy::suppressed(c, &hashes))
    }

    async fn lift_suppressions(&self, hashes: Vec<String>) -> Result<u64, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { privacy::lift(&tx, &hashes).await? })
    }

    async fn discard_submissions(&self, ids: Vec<SubmissionId>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { privacy::discard(&tx, &ids).await? })
    }

    async fn record_consent(
        &self,
        lead: LeadId,
        purpose: String,
        state: leadflow_core::consent::State,
        actor: Option<String>,
    ) -> Result<Option<Lead>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            privacy::record(&tx, lead, &purpose, &state, actor.as_deref(), rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn consent_ledger(&self, lead: LeadId) -> Result<Vec<(LeadId, leadflow_core::consent::Entry)>, StoreError> {
        read!(self, |c| privacy::ledger(c, lead))
    }

    async fn silence(&self, scope: &str, until: OffsetDateTime, by: &str) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { alerts::silence(&tx, scope, until, by).await? })
    }

    async fn claim_notifications(
        &self,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::StoredNotification>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { alerts::claim(&tx, limit, lease, now).await? })
    }

    async fn record_notification(
        &self,
        id: &str,
        result: crate::NotificationResult,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { alerts::record(&tx, id, &result, now).await? })
    }

    async fn episode_notifications(&self, episode: &str) -> Result<Vec<crate::StoredNotification>, StoreError> {
        read!(self, |c| alerts::of_episode(c, episode))
    }

    async fn resolve_backlog(&self) -> Result<u64, StoreError> {
        read!(self, |c| resolver::backlog(c))
    }

    async fn route_queued(&self, max: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        let mut routed = Vec::new();
        for _ in 0..max {
            match transaction!(self, false, |tx| { routing::route_next(&tx, rules, now).await? })? {
                routing::Claim::Empty => break,
                routing::Claim::Done(r) => routed.extend(r),
            }
        }
        Ok(routed)
    }

    async fn run_sla(&self, max: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        let due = read!(self, |c| routing::sla_due(c, max, now))?;
        let mut acted = Vec::new();
        for lead in due {
            acted.extend(transaction!(self, false, |tx| { routing::run_sla_for(&tx, lead, rules, now).await? })?);
        }
        Ok(acted)
    }

    async fn assign_lead(
        &self,
        lead: LeadId,
        owner: Option<String>,
        actor: String,
    ) -> Result<Option<(Lead, bool)>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            routing::assign(&tx, lead, owner.as_deref(), &actor, rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn next_sla_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        read!(self, |c| routing::next_sla_due(c))
    }

    async fn erase_lead(
        &self,
        lead: LeadId,
        actor: String,
        reason: Option<String>,
    ) -> Result<Option<crate::ErasureReceipt>, StoreError> {
        let rules = &self.rules;
        let _open = self.writable().await?;
        transaction!(self, false, |tx| {
            erase::erase(&tx, lead, &actor, reason.as_deref(), rules, OffsetDateTime::now_utc()).await?
        })
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { outbox::claim(&tx, limit, lease, now).await? })
    }

    async fn record_delivery(&self, attempt: DeliveryAttempt) -> Result<(), StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { outbox::record(&tx, &attempt).await? })
    }

    async fn next_delivery_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        read!(self, |c| outbox::next_due(c))
    }

    async fn list_deliveries(
        &self,
        status: DeliveryStatus,
        destination: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        read!(self, |c| outbox::list(c, status, destination.as_deref(), after.as_deref(), limit))
    }

    async fn lead_deliveries(
        &self,
        lead: LeadId,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        read!(self, |c| outbox::of_lead(c, lead, limit))
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        read!(self, |c| outbox::get(c, id))
    }

    async fn replay_delivery(&self, id: &str, now: OffsetDateTime) -> Result<Option<OutboxDelivery>, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { outbox::replay_one(&tx, id, now).await? })
    }

    async fn replay_deliveries(&self, filter: ReplayFilter, now: OffsetDateTime) -> Result<u64, StoreError> {
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { outbox::replay_many(&tx, &filter, now).await? })
    }

    async fn enqueue_deliveries(&self, deliveries: Vec<leadflow_core::changes::Delivery>) -> Result<u64, StoreError> {
        let _open = self.writable().await?;
        let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        // Two backfills queuing the same delivery at once: the second's insert violates the
        // key, and it runs again (`true`), now finding the first's row and passing over it.
        transaction!(self, true, |tx| {
            let held: std::collections::HashSet<String> =
                sql::rows(&tx, "SELECT id FROM outbox WHERE id = ANY($1)", &[&ids])
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
            let changes = leadflow_core::changes::unqueued(deliveries.clone(), &held);
            apply::apply(&tx, &changes).await?;
            changes.len() as u64
        })
    }

    async fn append_audit(
        &self,
        entries: Vec<leadflow_core::audit::NewEntry>,
    ) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        let _open = self.writable().await?;
        let at = OffsetDateTime::now_utc();
        // A unique violation on seq is a lost race (the lock makes it one that cannot
        // happen): run it again from the new head.
        transaction!(self, true, |tx| { audit::append(&tx, entries.clone(), at).await? })
    }

    async fn list_audit(&self, filter: crate::AuditFilter) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        read!(self, |c| audit::list(c, &filter))
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        read!(self, |c| audit::after(c, after, limit))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if *self.closed.read().await {
            return Err(StoreError::Closed);
        }
        let check = async {
            read!(self, |c| async {
                let version: i32 =
                    sql::one(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?.try_get(0)?;
                Ok(version)
            })
        };
        let version = tokio::time::timeout(PING_TIMEOUT, check)
            .await
            .map_err(|_| StoreError::Unavailable("the database did not answer in time".into()))??;
        if version == latest_migration() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!("schema at version {version}, expected {}", latest_migration())))
        }
    }

    async fn reencrypt(&self, limit: usize) -> Result<crate::cipher::Reencrypted, StoreError> {
        let Some(cipher) = self.sealer() else { return Ok(crate::cipher::Reencrypted { rows: 0, done: true }) };
        let _open = self.writable().await?;
        transaction!(self, false, |tx| { sealing::step(&tx, &cipher, limit).await? })
    }

    async fn close(&self) -> Result<(), StoreError> {
        *self.closed.write().await = true;
        Ok(())
    }
}
