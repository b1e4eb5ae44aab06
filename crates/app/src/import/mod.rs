//! Import: CSV and XLSX files, row by row, through the same pipeline as API submissions.
//!
//! Each row's idempotency key is the file's hash and the row number, so importing the
//! same file twice creates nothing new. The file is read in chunks by a thread of its own
//! ([`read_rows`]) and each chunk is submitted ([`crate::ingest::submit`]) while the next is
//! read; several chunks settle at once, and the outcomes are reported in row order.
//! Invalid rows go to the quarantine, never dropped.
//!
//! From the CLI, [`run`] imports a file with a progress callback; through the API,
//! [`start`] stores the file as a job that [`run_job`] runs in the background (and runs
//! again after a restart).

mod read;

pub use read::{CHUNK_ROWS, Chunks, Encoding, FileInfo, Format, Row, inspect, read_rows, row_payload, sniff_delimiter};

use crate::App;
use crate::ingest::{self, OnInvalid, Settled};
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::config::{Config, SourceConfig};
use leadflow_core::engagement::attendance;
use leadflow_core::engagement::{Event, Identity};
use leadflow_core::ids::EventId;
use leadflow_core::{FieldError, ImportId, LeadId, SourceName, pipeline};
use leadflow_store::{Captured, ImportCounts, ImportJob, ImportStatus, NewEvent, StoreError};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

/// A row number, its external id and what became of it.
type SettledRow = (u64, Option<String>, Settled);

/// Chunks settling at once. The store's writer takes whatever is queued as one group;
/// with three in flight it often finished a group before the next chunk was prepared.
const CHUNKS_IN_FLIGHT: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not a readable CSV file: {0}")]
    Csv(String),
    #[error("not a readable XLSX file: {0}")]
    Xlsx(String),
    #[error("the file has no header row")]
    NoHeader,
    #[error("no sheet named {0:?} in the workbook")]
    NoSheet(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One line of the import report.
#[derive(Clone, Debug, PartialEq)]
pub struct RowOutcome {
    pub row: u64,
    pub external_id: Option<String>,
    /// `created`, `merged`, `rejected` (quarantined) or `pending`.
    pub outcome: &'static str,
    pub lead_id: Option<LeadId>,
    pub errors: Vec<FieldError>,
}

/// The outcome counts of an import.
pub type Summary = ImportCounts;

/// An attendance file (Zoom's attendee report, an event's badge scans): each row is a
/// lead, and its attendance of `event` too.
#[derive(Clone, Debug)]
pub struct AttendanceFile {
    /// The event's id, e.g. `zoom:webinar:81234567890` or `expo-2026`.
    pub event: String,
    pub name: Option<String>,
    /// What a row means when no column says (`Attended`, `Status`): usually `attended`.
    pub status: attendance::Status,
}

/// Imports the file into `source`; `on_row` receives each row's outcome in order.
pub async fn run(
    app: &App,
    info: &FileInfo,
    source: &SourceName,
    on_row: impl FnMut(RowOutcome),
) -> Result<Summary, ImportError> {
    run_with(app, info, source, None, on_row).await
}

/// [`run`], with each row's attendance recorded when the file is an attendance file.
/// A row's attendance is an event of its lead keyed by the file and row, so importing the
/// file again records nothing twice; a row whose status column says something unknown,
/// or whose lead is not settled (rejected, pending), records none.
pub async fn run_with(
    app: &App,
    info: &FileInfo,
    source: &SourceName,
    attendance: Option<AttendanceFile>,
    mut on_row: impl FnMut(RowOutcome),
) -> Result<Summary, ImportError> {
    let (header, rows) = read_rows(info)?;
    let key_prefix = format!("import:{}:", &info.sha256[..32]);
    let mut summary = Summary::default();
    let (chunks_tx, mut chunks_rx) = tokio::sync::mpsc::channel::<Result<Vec<Row>, ImportError>>(read::READ_AHEAD);
    std::thread::spawn(move || {
        for chunk in rows {
            if chunks_tx.blocking_send(chunk).is_err() {
                return;
            }
        }
    });
    // Several chunks settle at once, so the pure stages of one run on the request threads
    // while the store's writer commits another; outcomes are reported in row order.
    let mut in_flight: VecDeque<JoinHandle<Result<Vec<SettledRow>, StoreError>>> = VecDeque::new();
    let mut drain = |done: Vec<SettledRow>, summary: &mut Summary| {
        for (row, external_id, s) in done {
            let outcome = row_outcome(row, external_id, s);
            count(summary, outcome.outcome);
            on_row(outcome);
        }
    };
    while let Some(chunk) = chunks_rx.recv().await {
        let chunk = chunk?;
        if in_flight.len() >= CHUNKS_IN_FLIGHT
            && let Some(oldest) = in_flight.pop_front()
        {
            drain(oldest.await.map_err(|e| StoreError::Internal(e.to_string()))??, &mut summary);
        }
        let (app, source) = (app.clone(), source.clone());
        let (header, key_prefix, attendance) = (header.clone(), key_prefix.clone(), attendance.clone());
        in_flight.push_back(tokio::spawn(async move {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut submissions = Vec::with_capacity(chunk.len());
            let mut lines = Vec::new();
            for (number, cells) in chunk {
                let payload = row_payload(&header, cells);
                let external_id = payload.get("external_id").and_then(Value::as_str).map(str::to_owned);
                let key = IdempotencyKey::parse(&format!("{key_prefix}{number}")).ok();
                if let Some(file) = &attendance {
                    lines.push(attendance::report_line(&payload, file.status));
                }
                submissions.push(RawSubmission::new(source.clone(), key, payload));
                rows.push((number, external_id));
            }
            let settled = ingest::submit(&app, submissions, OnInvalid::Quarantine).await?;
            if let Some(file) = &attendance {
                let events = attendance_events(file, &source, &key_prefix, &rows, &lines, &settled);
                crate::events::record(&app, events).await?;
            }
            Ok(rows.into_iter().zip(settled).map(|((row, external_id), s)| (row, external_id, s)).collect())
        }));
    }
    while let Some(oldest) = in_flight.pop_front() {
        drain(oldest.await.map_err(|e| StoreError::Internal(e.to_string()))??, &mut summary);
    }
    Ok(summary)
}

/// The attendance events of a chunk's settled rows.
fn attendance_events(
    file: &AttendanceFile,
    source: &SourceName,
    key_prefix: &str,
    rows: &[(u64, Option<String>)],
    lines: &[Option<attendance::ReportLine>],
    settled: &[Settled],
) -> Vec<NewEvent> {
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for (((number, _), line), s) in rows.iter().zip(lines).zip(settled) {
        let (Some(line), Settled::Captured(Captured::Settled { lead, .. })) = (line, s) else { continue };
        let (kind, properties) = attendance::report_event(line, &file.event, file.name.as_deref());
        out.push(NewEvent {
            event: Event {
                id: EventId::new(),
                kind: kind.to_owned(),
                occurred_at: line.joined_at.unwrap_or(now),
                url: None,
                properties,
                lead_id: None,
                identity: Identity { lead_id: Some(lead.id), ..Identity::default() },
            },
            source: source.clone(),
            idempotency_key: IdempotencyKey::parse(&format!("{key_prefix}{number}:attendance")).ok(),
        });
    }
    out
}

fn row_outcome(row: u64, external_id: Option<String>, s: Settled) -> RowOutcome {
    let (outcome, lead_id, errors) = match s {
        Settled::Captured(Captured::Settled { outcome, lead, .. }) => (outcome.as_str(), Some(lead.id), Vec::new()),
        Settled::Captured(Captured::Pending { .. }) => ("pending", None, Vec::new()),
        Settled::Captured(Captured::Rejected { errors, .. }) | Settled::Rejected(errors) => ("rejected", None, errors),
        // Rows are keyed by the file's digest, never fingerprinted: this does not happen.
        Settled::Captured(Captured::KeyReused { .. }) => ("rejected", None, Vec::new()),
        Settled::Suppressed => ("suppressed", None, Vec::new()),
    };
    RowOutcome { row, external_id, outcome, lead_id, errors }
}

/// A dry run: every row through the pure stages, nothing written. Returns the outcome
/// (`valid` or `rejected`) of each row and the normalized payloads of the first `sample`
/// valid rows.
pub fn dry_run(
    config: &Config,
    info: &FileInfo,
    source: &SourceName,
    sample: usize,
    mut on_row: impl FnMut(RowOutcome),
) -> Result<(Vec<String>, Vec<Value>, Summary), ImportError> {
    let (header, rows) = read_rows(info)?;
    let fallback = SourceConfig::api();
    let source_config = config.source(source).unwrap_or(&fallback);
    let mut samples = Vec::new();
    let mut summary = Summary::default();
    for chunk in rows {
        for (row, cells) in chunk? {
            let payload = row_payload(&header, cells);
            let external_id = payload.get("external_id").and_then(Value::as_str).map(str::to_owned);
            let outcome = match pipeline::prepare(&payload, source_config, &config.picklists) {
                Ok(candidate) => {
                    if samples.len() < sample {
                        let mut shown = serde_json::to_value(&candidate.fields).unwrap_or_default();
                        if let Value::Object(map) = &mut shown {
                            map.insert("custom".into(), Value::Object(candidate.custom));
                            map.insert("issues".into(), serde_json::to_value(&candidate.issues).unwrap_or_default());
                        }
                        samples.push(shown);
                    }
                    RowOutcome { row, external_id, outcome: "valid", lead_id: None, errors: Vec::new() }
                }
                Err(errors) => RowOutcome { row, external_id, outcome: "rejected", lead_id: None, errors },
            };
            summary.rows += 1;
            if outcome.outcome == "rejected" {
                summary.rejected += 1;
            }
            on_row(outcome);
        }
    }
    Ok((header, samples, summary))
}

/// Where each column goes and why (`exact`, `synonym`, `spec`, `custom`, …), with the
/// source's mapping applied.
pub fn column_decisions(header: &[String], source: &SourceConfig) -> Vec<String> {
    let sample: Map<String, Value> = header.iter().map(|h| (h.clone(), Value::String("x".into()))).collect();
    leadflow_core::map::map(&sample, source.mapping.as_ref()).decisions.iter().map(ToString::to_string).collect()
}

/// Stores an uploaded file as a queued import job into `source`, and starts running it in
/// the background ([`run_job`]). The job is durable when this returns.
pub async fn start(
    app: &App,
    source: SourceName,
    sheet: Option<String>,
    file: Vec<u8>,
) -> Result<ImportJob, StoreError> {
    let now = OffsetDateTime::now_utc();
    let job = ImportJob {
        id: ImportId::new(),
        source,
        sheet,
        status: ImportStatus::Queued,
        counts: ImportCounts::default(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    app.store.create_import(job.clone(), file).await?;
    tokio::spawn(run_job(app.clone(), job.clone()));
    Ok(job)
}

/// Runs an import job: its counts are written every second while it runs, and its report
/// when it ends. Safe to run again after a crash: rows already settled answer with their
/// first outcome.
pub async fn run_job(app: App, mut job: ImportJob) {
    let id = job.id;
    let store = app.store.clone();
    let outcome = run_job_inner(&app, &mut job).await;
    job.updated_at = OffsetDateTime::now_utc();
    let report = match outcome {
        Ok(report) => {
            job.status = ImportStatus::Done;
            Some(report)
        }
        Err(e) => {
            tracing::warn!(import_id = %id, error = %e, "import job failed");
            job.status = ImportStatus::Failed;
            job.error = Some(e.to_string());
            None
        }
    };
    if let Err(e) = store.update_import(job, report).await {
        tracing::error!(import_id = %id, error = %e, "cannot record the end of an import job");
    }
}

async fn run_job_inner(app: &App, job: &mut ImportJob) -> Result<Vec<u8>, ImportError> {
    let file = app.store.import_file(job.id).await?.ok_or(ImportError::NoHeader)?;
    let path = std::env::temp_dir().join(format!("leadflow-import-{}", job.id));
    let io = |source| ImportError::Io { path: path.clone(), source };
    std::fs::write(&path, file).map_err(io)?;
    let result = run_file(app, job, &path).await;
    let _ = std::fs::remove_file(&path);
    result
}

async fn run_file(app: &App, job: &mut ImportJob, path: &Path) -> Result<Vec<u8>, ImportError> {
    let store = &app.store;
    let (owned, sheet) = (path.to_owned(), job.sheet.clone());
    let info = tokio::task::spawn_blocking(move || inspect(&owned, sheet.as_deref()))
        .await
        .map_err(|e| ImportError::Csv(e.to_string()))??;
    job.status = ImportStatus::Running;
    store.update_import(job.clone(), None).await?;
    let counts = std::sync::Arc::new(std::sync::Mutex::new(ImportCounts::default()));
    let ticker = {
        let (store, counts, mut job) = (store.clone(), counts.clone(), job.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.tick().await;
            loop {
                every.tick().await;
                job.counts = counts.lock().map(|c| *c).unwrap_or_default();
                job.updated_at = OffsetDateTime::now_utc();
                if store.update_import(job.clone(), None).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut report = csv::Writer::from_writer(Vec::new());
    let mut report_error = None;
    if let Err(e) = report.write_record(REPORT_HEADER) {
        report_error = Some(e);
    }
    let summary = run(app, &info, &job.source, |o| {
        if let Err(e) = write_report_line(&mut report, &o) {
            report_error.get_or_insert(e);
        }
        if let Ok(mut c) = counts.lock() {
            count(&mut c, o.outcome);
        }
    })
    .await;
    ticker.abort();
    let summary = summary?;
    job.counts = ImportCounts {
        rows: summary.rows,
        created: summary.created,
        merged: summary.merged,
        rejected: summary.rejected,
        pending: summary.pending,
    };
    if let Some(e) = report_error {
        return Err(ImportError::Csv(format!("writing the report failed: {e}")));
    }
    report.into_inner().map_err(|e| ImportError::Csv(e.to_string()))
}

fn count(c: &mut ImportCounts, outcome: &str) {
    c.rows += 1;
    match outcome {
        "created" => c.created += 1,
        "merged" => c.merged += 1,
        "rejected" => c.rejected += 1,
        // Counted among the rows only: the report's line says `suppressed`.
        "suppressed" => {}
        _ => c.pending += 1,
    }
}

/// The columns of the per-row report.
pub const REPORT_HEADER: [&str; 5] = ["row", "external_id", "outcome", "lead_id", "errors"];

/// One report line; cells a spreadsheet would run as formulas are neutralized.
pub fn write_report_line<W: std::io::Write>(w: &mut csv::Writer<W>, o: &RowOutcome) -> Result<(), csv::Error> {
    let errors: Vec<String> = o.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
    let lead = o.lead_id.map(|id| id.to_string()).unwrap_or_default();
    let external_id = o.external_id.as_deref().map(neutralize).unwrap_or_default();
    w.write_record([o.row.to_string(), external_id, o.outcome.to_owned(), lead, neutralize(&errors.join("; "))])
}

/// A spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, tab or CR as a formula;
/// a leading apostrophe makes it text (OWASP's advice against CSV injection).
pub fn neutralize(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}
