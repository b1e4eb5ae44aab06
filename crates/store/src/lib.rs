//! The store: one interface, one implementation per backend (SQLite, the embedded
//! default; PostgreSQL, for several instances).
//!
//! SQL lives only here. Every backend must pass the conformance suite of the
//! `leadflow-testkit` crate; a backend-specific test file instantiates it with
//! `leadflow_testkit::conformance_suite!`.
//!
//! The store runs load → settle → apply inside its transactions, so it settles under the
//! configured [`Rules`]: a store is opened with them, and [`Store::with_rules`] gives a
//! handle on the same database under other rules (the test suite, `leadflow rescore`
//! with a new configuration). The interface itself takes no rules: no caller can settle
//! one request under rules other than the store's.
//!
//! Erasure ([`Store::erase_lead`]) is the one operation that must reach every table: a
//! new table holding lead data needs its rule in the core ([`leadflow_core::erase::plan`])
//! and a load and a write in each backend's `erase` module, and the conformance test that
//! reads every column of every table fails until it has them.
#![forbid(unsafe_code)]

pub mod cipher;
mod erase;
mod error;
mod feedback;
pub mod postgres;
pub mod regions;
pub mod sqlite;

pub use error::StoreError;

use async_trait::async_trait;
use leadflow_core::account::Account;
use leadflow_core::attribute::Touchpoint;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::DatabaseConfig;
use leadflow_core::engagement::Event;
use leadflow_core::error::FieldError;
use leadflow_core::feed;
use leadflow_core::feedback::{Feedback, FeedbackResult};
use leadflow_core::keys::{ApiKey, TokenHash};
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline::Rules;
use leadflow_core::pipeline::{HistoryEntry, Outcome};
use leadflow_core::privacy::retention::{Kind as RetentionKind, Run as RetentionRun};
use leadflow_core::resolve::{Evidence, Explanation};
use leadflow_core::scoring::TransitionError;
use leadflow_core::{AccountId, Email, FeedbackId, ImportId, KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use std::sync::Arc;
use time::OffsetDateTime;

/// A submission ready to be settled: the raw payload for the inbox and the candidate the
/// pure stages made of it.
#[derive(Clone, Debug)]
pub struct CaptureItem {
    pub submission: RawSubmission,
    pub candidate: Candidate,
}

/// What became of one captured submission.
#[derive(Clone, Debug, PartialEq)]
pub enum Captured {
    /// The lead was created or merged, now or (when `replayed`) by an earlier submission
    /// with the same idempotency key. `lead` is the lead as it stands now.
    Settled { submission_id: SubmissionId, outcome: Outcome, lead: Box<Lead>, replayed: bool },
    /// The submission is safely in the inbox but could not be settled yet; it will be
    /// processed again.
    Pending { submission_id: SubmissionId },
    /// The submission failed validation and is kept in the quarantine with its reasons,
    /// to be replayed once the mapping or the data is fixed.
    Rejected { submission_id: SubmissionId, errors: Vec<FieldError> },
    /// The client's idempotency key was used before for another body: nothing was stored.
    /// `submission_id` is the earlier submission's.
    KeyReused { submission_id: SubmissionId },
}

/// A submission as the inbox holds it, with what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSubmission {
    pub submission: RawSubmission,
    pub status: SubmissionStatus,
    /// Why it was quarantined (or why settling last failed).
    pub errors: Vec<FieldError>,
    pub lead_id: Option<LeadId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionStatus {
    Pending,
    Processed,
    /// In the quarantine.
    Rejected,
}

impl SubmissionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Rejected => "rejected",
        }
    }
}

/// An import job started through the API.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportJob {
    pub id: ImportId,
    pub source: SourceName,
    /// The worksheet of an XLSX file, if one was named.
    pub sheet: Option<String>,
    pub status: ImportStatus,
    pub counts: ImportCounts,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub rows: u64,
    pub created: u64,
    pub merged: u64,
    pub rejected: u64,
    pub pending: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl ImportStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

// Defined by the core, which decides what a person's decision does.
pub use leadflow_core::merges::{Review, ReviewStatus};
pub use leadflow_core::suppress::Suppression;

// Defined by the core, which decides them; kept here under their old names.
pub use leadflow_core::engagement::{EventOutcome, NewEvent};

/// Leads counted by source and campaign.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceCount {
    pub source: String,
    pub campaign: Option<String>,
    pub leads: u64,
}

/// How many leads of a source and campaign reached a stage.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StageCount {
    pub source: String,
    pub campaign: Option<String>,
    pub stage: String,
    pub leads: u64,
}

/// How many leads have an attendance of an event in a status, by their stage now.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AttendanceCount {
    pub event: String,
    pub name: Option<String>,
    /// `registered`, `attended`, `no_show` or `cancelled`.
    pub status: String,
    pub stage: String,
    pub leads: u64,
    /// Minutes attended, added up.
    pub minutes: u64,
}

/// Leads disqualified in a period, by original source, campaign and reason.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReasonCount {
    pub source: String,
    pub campaign: Option<String>,
    pub reason: Option<String>,
    pub leads: u64,
}

/// A piece of CRM feedback as the store keeps it, with what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFeedback {
    pub feedback: Feedback,
    pub result: FeedbackResult,
}

/// A change to an account made by a person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the owner.
    pub owner: Option<Option<String>>,
    /// Domains to add; one held by another account is a conflict.
    pub add_domains: Vec<String>,
}

/// One event for one destination, as the outbox holds it. The id is the idempotency key
/// sent with every try (the Standard Webhooks `webhook-id`).
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxDelivery {
    pub id: String,
    pub destination: String,
    pub lead_id: LeadId,
    /// e.g. `lead.created`.
    pub event_type: String,
    /// The lead as it stood when the event happened.
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    /// Tries made so far.
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<u16>,
    /// Why the last try failed, or which fields are missing.
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Retrying cannot help, or the schedule is spent: waits for a person to replay it.
    Dead,
    /// The lead lacks a field the destination requires; goes again when the lead changes.
    NeedsData,
    /// The lead lacks a consent purpose the destination requires: held, never sent, until
    /// the consent arrives.
    BlockedConsent,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::NeedsData => "needs_data",
            Self::BlockedConsent => "blocked_consent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead, Self::NeedsData, Self::BlockedConsent]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What one try at a delivery came to, as the worker reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryResult {
    Delivered,
    /// A failed try; the next one is due at `at`.
    Retry {
        at: OffsetDateTime,
    },
    /// Not sent (rate limit, open circuit); not a try. Due again at `at`.
    Deferred {
        at: OffsetDateTime,
    },
    Dead,
    NeedsData {
        missing: Vec<String>,
    },
    /// Held: the lead lacks these consent purposes.
    BlockedConsent {
        missing: Vec<String>,
    },
}

/// One try (or a pre-flight refusal), kept with the delivery for inspection.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    pub delivery_id: String,
    pub result: DeliveryResult,
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Bounded excerpts without credentials.
    pub request: Option<String>,
    pub response: Option<String>,
    pub duration_ms: u64,
}

/// A delivery's recorded try, read back.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AttemptRecord {
    /// 1 for the first try.
    pub attempt: u32,
    /// delivered, retry, dead or needs_data.
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub request: Option<String>,
    pub response: Option<String>,
    pub duration_ms: u64,
}

/// What one batch of the resolver did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolveBatch {
    /// Queue rows taken.
    pub taken: usize,
    /// Leads resolved (queued twice or merged meanwhile: once).
    pub leads: usize,
    /// Each merge: the surviving lead and the lead folded into it.
    pub merges: Vec<(LeadId, LeadId)>,
    /// Possible duplicates queued for review.
    pub reviews: usize,
}

impl ResolveBatch {
    /// Adds what a later batch did.
    pub fn extend(&mut self, later: ResolveBatch) {
        self.taken += later.taken;
        self.leads += later.leads;
        self.merges.extend(later.merges);
        self.reviews += later.reviews;
    }

    pub(crate) fn add(&mut self, resolved: leadflow_core::resolve::queued::Resolved) {
        self.leads += 1;
        self.merges.extend(resolved.merged.iter().map(|absorbed| (resolved.lead, *absorbed)));
        self.reviews += resolved.reviews;
    }
}

/// When a source (or destination) was first and last seen at work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub scope: leadflow_core::health::Scope,
    pub name: String,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
}

/// What a recorded delivery try counts for its destination's health; `None` for a
/// deferral, which was no try.
pub(crate) fn counted_attempt(
    a: &DeliveryAttempt,
    created_at: OffsetDateTime,
) -> Option<leadflow_core::health::Attempt> {
    use leadflow_core::health::{Attempt, ErrorClass};
    let class = || ErrorClass::of(a.status, a.error.as_deref().unwrap_or(""));
    Some(match &a.result {
        DeliveryResult::Delivered => {
            Attempt::Delivered { latency: std::time::Duration::try_from(a.at - created_at).unwrap_or_default() }
        }
        DeliveryResult::Retry { .. } => Attempt::Failed { class: class(), dead: false },
        DeliveryResult::Dead => Attempt::Failed { class: class(), dead: true },
        DeliveryResult::NeedsData { .. } => Attempt::NeedsData,
        DeliveryResult::Deferred { .. } | DeliveryResult::BlockedConsent { .. } => return None,
    })
}

/// What an alert evaluation starts from: the firing episodes (with any acknowledgement)
/// and the silences.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertState {
    pub open: Vec<leadflow_core::health::alerts::Episode>,
    pub silences: Vec<leadflow_core::health::alerts::Silence>,
}

/// A queued alert notification, as claimed for sending.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredNotification {
    /// Unique per episode event and channel: the Standard Webhooks `webhook-id`.
    pub id: String,
    pub channel: String,
    pub episode: String,
    pub body: serde_json::Value,
    /// Tries made so far.
    pub attempts: u32,
    /// `pending`, `sent` or `dead`.
    pub status: String,
    pub last_error: Option<String>,
}

/// What one try at a notification came to.
#[derive(Clone, Debug, PartialEq)]
pub enum NotificationResult {
    Sent,
    Retry { at: OffsetDateTime, error: String },
    Dead { error: String },
}

impl NotificationResult {
    fn parts(&self) -> (&'static str, Option<OffsetDateTime>, Option<&str>) {
        match self {
            Self::Sent => ("sent", None, None),
            Self::Retry { at, error } => ("pending", Some(*at), Some(error)),
            Self::Dead { error } => ("dead", None, Some(error)),
        }
    }
}

/// A lead routing gave to an owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutedLead {
    pub lead_id: LeadId,
    pub owner: String,
    pub rule: Option<String>,
    /// How the owner was chosen (`round_robin`, `account_owner`, `fallback`, …).
    pub via: String,
    /// What set routing off (`handoff`, `priority_source`, `renewed_touch`, `sla`).
    pub trigger: String,
}

impl RoutedLead {
    /// Splits a routing outcome into the writes to apply, the lead as it now stands, and
    /// whom it went to (logging a lead nobody could take).
    pub(crate) fn from_outcome(
        outcome: leadflow_core::assignments::Outcome,
    ) -> (Vec<leadflow_core::changes::Change>, Option<Lead>, Option<Self>) {
        let lead = outcome.lead.map(|l| *l);
        if let (Some(steps), Some(lead)) = (&outcome.unrouted, &lead) {
            tracing::warn!(lead_id = %lead.id, ?steps, "lead not routed: nobody to give it to");
        }
        let routed = outcome.assigned.zip(lead.as_ref()).map(|(a, lead)| Self {
            lead_id: lead.id,
            owner: a.owner,
            rule: a.rule,
            via: a.via.as_str().to_owned(),
            trigger: a.trigger.as_str().to_owned(),
        });
        (outcome.changes, lead, routed)
    }
}

/// What an erasure did, decided by the core ([`leadflow_core::erase::plan`]).
pub use leadflow_core::erase::plan::{Receipt as ErasureReceipt, TABLES as ERASED_TABLES, TableCount as TableErasure};

/// Which audit entries a listing takes, newest first: each given field must match,
/// `since` is inclusive, `until` exclusive, `before` a seq (the previous page's last).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub before: Option<u64>,
    pub limit: usize,
    /// With regions, whose chain to read (each region numbers its own); a single store
    /// has one chain and ignores it.
    pub region: Option<String>,
}

/// Which deliveries a bulk replay takes: dead letters, optionally of one destination,
/// created in `[from, to)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayFilter {
    pub destination: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// The page a single database answers ([`feed::page`]), its refusal as the store's error.
pub(crate) fn feed_page(
    after: &feed::Cursor,
    rows: Vec<(u64, feed::FeedChange)>,
    head: u64,
) -> Result<feed::Page, StoreError> {
    feed::page(after, rows, head).map_err(StoreError::UnknownCursor)
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A handle on the same database (its connections, SQLite's writer and its group
    /// commit) that settles under `rules`. Cheap; closing either closes both.
    fn with_rules(&self, rules: Rules) -> DynStore;

    /// Commits each submission to the inbox and settles it (match, merge or create, history)
    /// in one transaction shared with concurrent callers. When this returns `Ok`, every
    /// item is durable.
    async fn capture(&self, items: Vec<CaptureItem>) -> Result<Vec<Captured>, StoreError>;

    /// Commits submissions to the inbox only, to be settled later. A submission whose
    /// idempotency key is already known is not stored again.
    async fn enqueue(&self, submissions: Vec<RawSubmission>) -> Result<(), StoreError>;

    /// Inbox submissions not settled yet, oldest first.
    async fn pending_submissions(&self, limit: usize) -> Result<Vec<RawSubmission>, StoreError>;

    /// Moves a pending (or already quarantined) submission to the quarantine with the
    /// reasons, so it is not retried until someone replays it.
    async fn reject_submission(&self, id: SubmissionId, errors: Vec<FieldError>) -> Result<(), StoreError>;

    /// Stores submissions that failed validation straight into the quarantine. A
    /// submission whose idempotency key is known answers with the first outcome instead.
    async fn quarantine(&self, items: Vec<(RawSubmission, Vec<FieldError>)>) -> Result<Vec<Captured>, StoreError>;

    /// Quarantined submissions, oldest first, optionally of one source, after `after`.
    async fn list_quarantine(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError>;

    /// Submissions waiting in the inbox (a provider fetch not done yet, a batch source's
    /// rows, a settling that failed), oldest first, optionally of one source, after `after`.
    async fn list_pending(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError>;

    async fn get_submission(&self, id: SubmissionId) -> Result<Option<StoredSubmission>, StoreError>;

    /// The lead; an id that was merged away answers with the surviving lead. An erased
    /// lead answers with its tombstone (`erased_at` is set).
    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError>;

    async fn find_leads_by_email(&self, email: &Email) -> Result<Vec<Lead>, StoreError>;

    /// Those of `emails` whose mailbox a surviving lead has, in one read.
    async fn known_emails(&self, emails: Vec<Email>) -> Result<Vec<Email>, StoreError>;

    async fn lead_history(&self, id: LeadId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Leads in id (creation) order, after `after`, at most `limit`. Erased leads are not
    /// listed: nothing of them is left to show.
    async fn list_leads(&self, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError>;

    async fn count_leads(&self) -> Result<u64, StoreError>;

    async fn create_key(&self, key: ApiKey, hash: TokenHash) -> Result<(), StoreError>;

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes the active key with this name or id; `None` when there is none.
    async fn revoke_key(&self, name_or_id: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Rotates the active key `old`: it is marked rotated and expires at `grace_until` (the
    /// end of its grace as [`ApiKey::grace_end`] decides it), and `new` (its successor, same
    /// name) is stored, in one transaction. The rotated key as it now stands; `None` when `old` is not an active,
    /// unrotated key.
    async fn rotate_key(
        &self,
        old: KeyId,
        grace_until: OffsetDateTime,
        new: ApiKey,
        hash: TokenHash,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// Records when keys were last accepted; a time never moves back.
    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> Result<(), StoreError>;

    /// The key not revoked with this token hash (expired ones included: the caller
    /// decides, [`ApiKey::admits`]).
    async fn key_by_hash(&self, hash: TokenHash) -> Result<Option<ApiKey>, StoreError>;

    /// Stores a new import job with its uploaded file.
    async fn create_import(&self, job: ImportJob, file: Vec<u8>) -> Result<(), StoreError>;

    /// Records a job's progress. A finished job keeps its report and drops its file.
    async fn update_import(&self, job: ImportJob, report: Option<Vec<u8>>) -> Result<(), StoreError>;

    async fn get_import(&self, id: ImportId) -> Result<Option<ImportJob>, StoreError>;

    /// The uploaded file of an unfinished job.
    async fn import_file(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError>;

    /// The per-row report of a finished job.
    async fn import_report(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Jobs queued or running, oldest first: to be run (again) at start-up.
    async fn unfinished_imports(&self) -> Result<Vec<ImportJob>, StoreError>;

    /// Open reviews, oldest first, after `after`.
    async fn list_reviews(&self, after: Option<ReviewId>, limit: usize) -> Result<Vec<Review>, StoreError>;

    async fn get_review(&self, id: ReviewId) -> Result<Option<Review>, StoreError>;

    /// Records a person's decision on an open review. `Merged` merges the newer lead into
    /// the other in the same transaction. `None` when there is no such open review.
    async fn decide_review(&self, id: ReviewId, decision: ReviewStatus) -> Result<Option<Review>, StoreError>;

    /// Merges `absorbed` into `survivor` (a confident match found by a batch search);
    /// `false` when either is gone (or erased) or they are already one lead. Like every merge, it is
    /// a `merged` event for the destinations subscribed to it.
    async fn merge_leads(
        &self,
        survivor: LeadId,
        absorbed: LeadId,
        explanation: Explanation,
    ) -> Result<bool, StoreError>;

    /// Undoes the merge of `absorbed` (a review decision or a batch search): the survivor
    /// returns to its state before the merge and `absorbed` lives on its own again. `None`
    /// when `absorbed` is not merged; a conflict when the survivor changed since;
    /// [`StoreError::Erased`] when they were erased (the state to restore is gone).
    async fn unmerge(&self, absorbed: LeadId) -> Result<Option<LeadId>, StoreError>;

    /// Undoes a merge made at capture: `lead` returns to its state before `submission`
    /// merged into it, and the submission becomes a lead of its own from `candidate` (the
    /// stored submission prepared again), which is returned. `None` when the submission did
    /// not merge into `lead`; a conflict when the lead changed since;
    /// [`StoreError::Erased`] when the lead was erased.
    async fn split_submission(
        &self,
        lead: LeadId,
        submission: SubmissionId,
        candidate: Candidate,
    ) -> Result<Option<Lead>, StoreError>;

    /// Queues a possible duplicate for review, unless the pair was already proposed or
    /// decided (a "not the same person" decision is remembered). `true` when queued.
    async fn add_review(
        &self,
        lead: LeadId,
        candidate: LeadId,
        score: f64,
        evidence: Vec<Evidence>,
    ) -> Result<bool, StoreError>;

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;

    /// Accounts in id (creation) order, after `after`.
    async fn list_accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError>;

    /// The account's surviving leads in id order, after `after`.
    async fn account_leads(&self, id: AccountId, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError>;

    /// Renames, sets or clears the owner, adds domains. `None` when there is no such account.
    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Option<Account>, StoreError>;

    /// Records behavioural events, each attached to its lead (by lead id, email, external
    /// id or a visitor id the lead converted from) and rescoring it in the same transaction;
    /// an event of an unknown person waits until that person becomes a lead; an event
    /// naming an erased lead is not recorded at all.
    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventOutcome>, StoreError>;

    /// The lead's events (and those of leads merged into it), newest first.
    async fn lead_events(&self, lead: LeadId, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// The lead's touchpoints (and those of leads merged into it), oldest first.
    async fn touchpoints(&self, lead: LeadId) -> Result<Vec<Touchpoint>, StoreError>;

    /// A person's request to move the lead in the lifecycle. `None` when there is no such
    /// lead; the inner error when the contract refuses; [`StoreError::Erased`] for an
    /// erased lead.
    async fn transition_lead(
        &self,
        lead: LeadId,
        to: String,
        actor: String,
        reason: Option<String>,
    ) -> Result<Option<Result<Lead, TransitionError>>, StoreError>;

    /// Records CRM feedback, in order, each in the transaction that applies it: the lead
    /// (by lead id, the CRM's record id, email, then external id) is walked to the
    /// feedback's target stage and given its owner ([`leadflow_core::feedback::apply`]),
    /// unless an earlier feedback with the same source and event id already decided the
    /// outcome (a replay: nothing happens again) or feedback that happened later was
    /// already applied to the lead (stale). Every item is stored, whatever its outcome;
    /// feedback about an erased lead is refused and stored without what the CRM sent.
    async fn record_feedback(&self, items: Vec<Feedback>) -> Result<Vec<FeedbackResult>, StoreError>;

    /// Remembers that the record `crm_id` of `destination` is `lead` (after a delivery
    /// created or updated it), so feedback naming only the CRM's id finds the lead; the
    /// feedback that named this record before it was known (unmatched) is applied now,
    /// oldest first, as [`Store::record_feedback`] would have. Returns how many waited.
    async fn link_crm_record(&self, destination: &str, crm_id: &str, lead: LeadId) -> Result<u64, StoreError>;

    /// The lead the record `crm_id` of `destination` was linked to, if any.
    async fn crm_record_lead(&self, destination: &str, crm_id: &str) -> Result<Option<LeadId>, StoreError>;

    /// Stored feedback, oldest first, optionally of one source, after `after`.
    async fn list_feedback(
        &self,
        source: Option<String>,
        after: Option<FeedbackId>,
        limit: usize,
    ) -> Result<Vec<StoredFeedback>, StoreError>;

    /// Leads that entered `stage` (the contract's disqualified stage) in `[from, to)`, by
    /// original source, campaign and reason.
    async fn report_disqualifications(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        stage: &str,
    ) -> Result<Vec<ReasonCount>, StoreError>;

    /// Recomputes the lead's score under the store's rules (after a rule change). An
    /// erased lead keeps the score it had.
    async fn rescore_lead(&self, lead: LeadId) -> Result<Option<Lead>, StoreError>;

    /// Surviving leads created in `[from, to)`, by original (or latest) source and campaign.
    async fn report_sources(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        latest: bool,
    ) -> Result<Vec<SourceCount>, StoreError>;

    /// For leads created in `[from, to)`: how many of each source and campaign ever reached
    /// each stage.
    async fn report_stages(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<Vec<StageCount>, StoreError>;

    /// Every surviving lead's attendance (of `event`, or of every event), counted by event,
    /// status and the lead's stage now. Test leads are left out.
    async fn report_attendance(&self, event: Option<String>) -> Result<Vec<AttendanceCount>, StoreError>;

    /// Takes up to `limit` due pending deliveries and leases them until `now + lease`, so
    /// no other worker takes them meanwhile and a crashed worker's claim runs out. A
    /// delivery is never claimed while an earlier one of the same lead and destination is
    /// pending: each lead reaches each destination in order.
    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxDelivery>, StoreError>;

    /// Records a claimed delivery's try and what comes next, and releases its lease.
    async fn record_delivery(&self, attempt: DeliveryAttempt) -> Result<(), StoreError>;

    /// When the next pending delivery is due (its lease included), if any is pending.
    async fn next_delivery_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Deliveries in a status, optionally of one destination, oldest first, after the
    /// delivery id `after`.
    async fn list_deliveries(
        &self,
        status: DeliveryStatus,
        destination: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>, StoreError>;

    /// A lead's deliveries (under its own id), oldest first, each with its tries.
    async fn lead_deliveries(
        &self,
        lead: LeadId,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError>;

    /// The delivery with every recorded try, oldest first.
    async fn get_delivery(&self, id: &str) -> Result<Option<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError>;

    /// Sends a dead (or needs-data) delivery again, with a fresh schedule and the same
    /// idempotency key. `None` when there is no such delivery; a pending or delivered one
    /// is returned unchanged.
    async fn replay_delivery(&self, id: &str, now: OffsetDateTime) -> Result<Option<OutboxDelivery>, StoreError>;

    /// Replays every dead letter the filter takes; returns how many.
    async fn replay_deliveries(&self, filter: ReplayFilter, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Queues new deliveries (a backfill's) in one transaction, each with its feed entry,
    /// passing over those whose id the outbox already holds; returns how many it queued.
    async fn enqueue_deliveries(&self, deliveries: Vec<leadflow_core::changes::Delivery>) -> Result<u64, StoreError>;

    /// Claims one period of a periodic job (`period_start` is the start of the period).
    /// `true` for exactly one caller per job and period, whichever instance it runs on:
    /// the claim is a row under a primary key, so the database decides, not the callers.
    async fn try_claim_period(&self, job: &str, period_start: OffsetDateTime) -> Result<bool, StoreError>;

    /// The value a pull source saved with [`Store::set_cursor`], if any.
    async fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Saves where a pull source left off, replacing any earlier value.
    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError>;

    /// Up to `limit` changes of the feed after `after`, in commit order, each with the
    /// cursor to read on from. A cursor this store never gave out (ahead of its latest
    /// change, or naming more databases than it has) is [`StoreError::UnknownCursor`].
    async fn changes(&self, after: &feed::Cursor, limit: usize) -> Result<feed::Page, StoreError>;

    /// Resolves up to `limit` of the leads capture queued for fuzzy matching, oldest
    /// first, in one transaction: each is compared with the leads sharing a blocking key
    /// (those resolved before it included), merged into the older lead it matches or its
    /// possible duplicates queued for review, and indexed; its queue rows go in the same
    /// transaction. One resolver runs at a time across instances: elsewhere this finds
    /// nothing to do.
    async fn resolve_queued(&self, limit: usize, now: OffsetDateTime) -> Result<ResolveBatch, StoreError>;

    /// How many queue rows wait for the resolver.
    async fn resolve_backlog(&self) -> Result<u64, StoreError>;

    /// Routes up to `limit` of the leads queued for routing (queued in the transaction of
    /// the change that called for it), each in a transaction of its own that reads and
    /// moves the round-robin position, counts the rep's day, assigns the lead, and writes
    /// its history and outbox rows. Safe to run on several instances at once.
    async fn route_queued(&self, limit: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError>;

    /// Runs the SLA action of up to `limit` assignments whose timer ran out by `now` and
    /// whose owner has not taken the lead up (it is still in the stage it was assigned in).
    async fn run_sla(&self, limit: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError>;

    /// Gives a lead to `owner` (a person's choice; no SLA timer), or with `None` runs
    /// routing for it again. `None` when there is no such lead; the flag says whether it
    /// was assigned (routing may find nobody); [`StoreError::Erased`] for an erased lead.
    async fn assign_lead(
        &self,
        lead: LeadId,
        owner: Option<String>,
        actor: String,
    ) -> Result<Option<(Lead, bool)>, StoreError>;

    /// When the next SLA timer runs out, if any runs.
    async fn next_sla_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Erases a person (the right to be forgotten), in one transaction: the lead (followed
    /// through merges to its survivor) and every lead merged into it become tombstones
    /// ([`leadflow_core::erase::tombstone`]); every row holding their data is scrubbed
    /// or deleted, including what was stored for the person before it was tied to the lead
    /// (waiting events, quarantined and pending submissions, unmatched feedback naming
    /// their email, external id or CRM records); undelivered outbox rows are cancelled and
    /// one `lead.erased` delivery per subscribed destination carries only ids. `None` when
    /// there is no such lead; a lead erased before answers with `already_erased` and
    /// nothing is done. Refused (a conflict) while an import job is unfinished: its stored
    /// file may hold the person's row.
    async fn erase_lead(
        &self,
        lead: LeadId,
        actor: String,
        reason: Option<String>,
    ) -> Result<Option<ErasureReceipt>, StoreError>;

    /// Health aggregates: the cells the query names ([`leadflow_core::health::Query`]).
    async fn health_cells(
        &self,
        query: leadflow_core::health::Query,
    ) -> Result<Vec<leadflow_core::health::Cell>, StoreError>;

    /// When each source first and last received a submission.
    async fn health_seen(&self) -> Result<Vec<Seen>, StoreError>;

    /// Each named destination's undelivered deliveries and each named source's quarantined
    /// and pending submissions, as they stand now: counts stop at
    /// [`leadflow_core::health::BACKLOG_CAP`]; the oldest pending times are exact.
    async fn health_backlogs(
        &self,
        destinations: Vec<String>,
        sources: Vec<String>,
    ) -> Result<leadflow_core::health::Backlogs, StoreError>;

    /// Adds counts made outside any other write (requests refused before anything was
    /// stored), in a transaction of their own.
    async fn count(&self, tally: leadflow_core::health::Tally) -> Result<(), StoreError>;

    /// Deletes the health buckets older than their width keeps; returns how many.
    async fn prune_health(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// The firing episodes and the silences, for an alert evaluation.
    async fn alert_state(&self) -> Result<AlertState, StoreError>;

    /// Writes one evaluation's step in one transaction: new episodes, changed ones (never
    /// their acknowledgement), and their notifications, each id queued once however often
    /// it is written.
    async fn apply_alerts(&self, step: leadflow_core::health::alerts::Step) -> Result<(), StoreError>;

    /// Episodes, newest first, optionally in one state.
    async fn list_episodes(
        &self,
        state: Option<leadflow_core::health::alerts::State>,
        limit: usize,
    ) -> Result<Vec<leadflow_core::health::alerts::Episode>, StoreError>;

    async fn get_episode(&self, id: &str) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError>;

    /// Acknowledges a firing episode (its reminders stop). The episode as it stands;
    /// `None` when there is none; an acknowledged or resolved one is returned unchanged.
    async fn acknowledge_episode(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError>;

    /// Holds back the notifications of `scope` until `until` (a time past lifts it).
    async fn silence(&self, scope: &str, until: OffsetDateTime, by: &str) -> Result<(), StoreError>;

    /// Takes up to `limit` due notifications and leases them until `now + lease`.
    async fn claim_notifications(
        &self,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<StoredNotification>, StoreError>;

    /// Records a claimed notification's try and releases its lease.
    async fn record_notification(
        &self,
        id: &str,
        result: NotificationResult,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// An episode's notifications, oldest first.
    async fn episode_notifications(&self, episode: &str) -> Result<Vec<StoredNotification>, StoreError>;

    // Privacy

    /// Adds the hashes to the suppression list (a hash already there stays as it was);
    /// returns how many were new.
    async fn suppress(&self, entries: Vec<Suppression>) -> Result<u64, StoreError>;

    /// Those of `hashes` (hex values) that are on the suppression list.
    async fn suppressed(&self, hashes: Vec<String>) -> Result<Vec<String>, StoreError>;

    /// Takes the hashes off the suppression list; returns how many were there.
    async fn lift_suppressions(&self, hashes: Vec<String>) -> Result<u64, StoreError>;

    /// Deletes submissions that were stored before their person was found to be
    /// suppressed (pending provider fetches, quarantined posts); settled ones stay.
    async fn discard_submissions(&self, ids: Vec<SubmissionId>) -> Result<u64, StoreError>;

    /// Records a consent choice on a lead (followed through merges): the ledger entry and,
    /// when it is the most recent for its purpose, the lead's new state and its
    /// follow-ups. `None` when there is no such lead; [`StoreError::Erased`] for an erased
    /// one.
    async fn record_consent(
        &self,
        lead: LeadId,
        purpose: String,
        state: leadflow_core::consent::State,
        actor: Option<String>,
    ) -> Result<Option<Lead>, StoreError>;

    /// The consent ledger of a lead and of every lead merged into it, oldest first, each
    /// entry with the lead it was recorded on.
    async fn consent_ledger(&self, lead: LeadId) -> Result<Vec<(LeadId, leadflow_core::consent::Entry)>, StoreError>;
    /// Appends to the audit log in one transaction: reads the head, lets
    /// [`leadflow_core::audit::chain`] number and hash the entries, and writes them.
    /// Appends are serialized across callers and instances, so the chain never forks.
    async fn append_audit(
        &self,
        entries: Vec<leadflow_core::audit::NewEntry>,
    ) -> Result<Vec<leadflow_core::audit::Entry>, StoreError>;

    /// Audit entries the filter takes, newest first.
    async fn list_audit(&self, filter: AuditFilter) -> Result<Vec<leadflow_core::audit::Entry>, StoreError>;

    /// Up to `limit` audit entries after the seq `after`, oldest first: a verification's
    /// pages.
    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<leadflow_core::audit::Entry>, StoreError>;
    /// Every lead merged into `lead` (directly or through others), as stored, oldest
    /// first; not `lead` itself. For the subject access export.
    async fn merged_records(&self, lead: LeadId) -> Result<Vec<Lead>, StoreError>;

    /// The submissions settled into any of `leads`, in id (arrival) order, after `after`.
    async fn lead_submissions(
        &self,
        leads: Vec<LeadId>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError>;

    /// The events of any of `leads`, in id order, after `after`.
    async fn events_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<leadflow_core::EventId>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The deliveries made for any of `leads`, oldest first, after the delivery `after`,
    /// each with its tries.
    async fn deliveries_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError>;

    /// Every review (open or decided) naming any of `leads`, oldest first.
    async fn reviews_naming(&self, leads: Vec<LeadId>) -> Result<Vec<Review>, StoreError>;

    /// The feedback matched to any of `leads`, in id order, after `after`.
    async fn feedback_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<FeedbackId>,
        limit: usize,
    ) -> Result<Vec<StoredFeedback>, StoreError>;

    /// How many rows of `kind` are older than `before` (settled payloads not yet cleared;
    /// surviving leads unchanged since, for inactive leads): what a retention run would
    /// take.
    async fn count_expired(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Deletes the rows of `kind` older than `before` (clears the payloads of settled
    /// submissions, keeping the rows), at most [`leadflow_core::privacy::retention::BATCH`]
    /// rows per transaction, until none is left; returns how many. `Unsupported` for
    /// inactive leads (the app erases them one by one).
    async fn expire(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Surviving, not erased leads unchanged since `before`, in id order, after `after`.
    async fn inactive_leads(
        &self,
        before: OffsetDateTime,
        after: Option<LeadId>,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError>;

    /// Writes a retention run: a new one, or the same id again with its outcome.
    async fn save_retention_run(&self, run: RetentionRun) -> Result<(), StoreError>;

    /// Retention runs, newest first.
    async fn list_retention_runs(&self, limit: usize) -> Result<Vec<RetentionRun>, StoreError>;

    /// Each region's own store by name, when this store routes leads to regions
    /// ([`regions::Regional`]); empty for one database.
    fn regions(&self) -> Vec<(String, DynStore)> {
        Vec::new()
    }

    /// Moves up to `limit` more rows onto the active data key (resuming where the last call
    /// stopped), and drops older data keys once nothing uses them. Done at once when
    /// encryption is off or nothing is left.
    async fn reencrypt(&self, limit: usize) -> Result<cipher::Reencrypted, StoreError> {
        let _ = limit;
        Ok(cipher::Reencrypted { rows: 0, done: true })
    }

    /// `Ok` when the store is reachable and its schema is current.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Finishes every write already accepted, then stops accepting writes.
    async fn close(&self) -> Result<(), StoreError>;
}

pub type DynStore = Arc<dyn Store>;

/// Opens the store a database URL names, creating and migrating it as needed, with the
/// default pool settings; it settles under `rules`.
pub async fn open(url: &str, rules: Rules) -> Result<DynStore, StoreError> {
    let database =
        DatabaseConfig { url: url.to_owned(), max_connections: leadflow_core::config::DEFAULT_MAX_CONNECTIONS };
    connect(&database, rules).await
}

/// Opens the store the configuration names: with `[[regions]]`, every region's database
/// behind one [`regions::Regional`]; else `[database]`. It settles under the
/// configuration's rules.
pub async fn connect_configured(config: &leadflow_core::config::Config) -> Result<DynStore, StoreError> {
    let masters = config.master_keys.clone();
    if config.regions.is_empty() {
        connect_with(&config.database, config.rules(), masters).await
    } else {
        regions::connect(&config.regions, config.rules(), masters).await
    }
}

/// Opens the store the database configuration names, creating and migrating it as needed;
/// it settles under `rules`.
pub async fn connect(database: &DatabaseConfig, rules: Rules) -> Result<DynStore, StoreError> {
    connect_with(database, rules, None).await
}

/// [`connect`], with personal data sealed under data keys the master keys wrap.
pub async fn connect_with(
    database: &DatabaseConfig,
    rules: Rules,
    masters: Option<Arc<leadflow_core::encryption::MasterKeys>>,
) -> Result<DynStore, StoreError> {
    let url = database.url.as_str();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.to_owned();
        let store = tokio::task::spawn_blocking(move || {
            sqlite::SqliteStore::open_encrypted(path.as_ref(), rules, masters.as_deref())
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))??;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let options = postgres::PgOptions { max_connections: database.max_connections, ..Default::default() };
        Ok(Arc::new(postgres::PgStore::open_encrypted(url, &options, rules, masters.as_deref()).await?))
    } else {
        Err(StoreError::Unsupported(format!(
            "unknown database URL scheme in {:?}; use sqlite://PATH or postgres://USER@HOST/DATABASE",
            url.split("://").next().unwrap_or(url)
        )))
    }
}
