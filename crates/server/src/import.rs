//! Import: CSV and XLSX files, row by row, through the same pipeline as API submissions.
//!
//! A first pass over the file computes its SHA-256 (each row's idempotency key is the
//! file's hash and the row number, so importing the same file twice creates nothing new)
//! and, for CSV, whether it is valid UTF-8 (else it is read as Windows-1252, the encoding
//! spreadsheets on Windows write). The delimiter is sniffed from the header line. Rows
//! are then streamed by a reader thread in chunks over a bounded channel, so memory stays
//! flat whatever the file's size, and each chunk is settled while the next is read.
//! Invalid rows go to the quarantine, never dropped.

use crate::ingest::{self, OnInvalid, Settled};
use calamine::{DataRef, Reader, Xlsx};
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::config::{Config, SourceConfig};
use leadflow_core::{FieldError, LeadId, SourceName, pipeline};
use leadflow_store::{Captured, DynStore, ImportCounts, ImportJob, ImportStatus, StoreError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

/// Rows settled per store call: large enough to amortize a commit, small enough to keep
/// memory and latency low.
pub const CHUNK_ROWS: usize = 1000;
/// Chunks read ahead of the ones being settled.
const READ_AHEAD: usize = 2;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1252,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Csv { delimiter: u8, encoding: Encoding },
    Xlsx { sheet: String },
}

/// What the first pass learned about the file.
#[derive(Clone, Debug)]
pub struct FileInfo {
    pub path: PathBuf,
    pub format: Format,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// One data row: its number (1 = the first row after the header) and cell texts.
pub type Row = (u64, Vec<String>);

/// The rows, a chunk at a time, as the reader thread produces them.
pub type Chunks = mpsc::Receiver<Result<Vec<Row>, ImportError>>;

/// Inspects the file: format, encoding, delimiter and hash.
pub fn inspect(path: &Path, sheet: Option<&str>) -> Result<FileInfo, ImportError> {
    let io = |source| ImportError::Io { path: path.to_owned(), source };
    let mut file = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut utf8 = Utf8Check::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        utf8.feed(&buf[..n]);
        if head.len() < 1 << 16 {
            head.extend_from_slice(&buf[..n.min((1 << 16) - head.len())]);
        }
    }
    let sha256 = hex(&hasher.finalize());
    // XLSX files are zip archives.
    let format = if head.starts_with(b"PK\x03\x04") {
        let mut book: Xlsx<_> =
            calamine::open_workbook(path).map_err(|e: calamine::XlsxError| ImportError::Xlsx(e.to_string()))?;
        let names = book.sheet_names();
        let sheet = match sheet {
            Some(name) => names
                .iter()
                .find(|n| n.as_str() == name)
                .cloned()
                .ok_or_else(|| ImportError::NoSheet(name.to_owned()))?,
            None => names.first().cloned().ok_or(ImportError::NoHeader)?,
        };
        let _ = book.worksheet_cells_reader(&sheet).map_err(|e| ImportError::Xlsx(e.to_string()))?;
        Format::Xlsx { sheet }
    } else {
        let encoding = if utf8.valid() { Encoding::Utf8 } else { Encoding::Windows1252 };
        let text = decode(&head, encoding);
        Format::Csv { delimiter: sniff_delimiter(&text), encoding }
    };
    Ok(FileInfo { path: path.to_owned(), format, sha256 })
}

/// Streaming UTF-8 validation across chunk boundaries.
#[derive(Default)]
struct Utf8Check {
    carry: Vec<u8>,
    invalid: bool,
}

impl Utf8Check {
    fn feed(&mut self, chunk: &[u8]) {
        if self.invalid {
            return;
        }
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        match std::str::from_utf8(&bytes) {
            Ok(_) => {}
            // An incomplete character at the end continues in the next chunk.
            Err(e) if e.error_len().is_none() => self.carry = bytes[e.valid_up_to()..].to_vec(),
            Err(_) => self.invalid = true,
        }
    }

    fn valid(&self) -> bool {
        !self.invalid && self.carry.is_empty()
    }
}

fn decode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).into_owned(),
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// The candidate that splits the header line into the most fields, outside quotes;
/// comma on a tie or when none occurs.
pub fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            c if !quoted => {
                if let Some(slot) = counts.iter_mut().find(|(d, _)| char::from(*d) == c) {
                    slot.1 += 1;
                }
            }
            _ => {}
        }
    }
    counts.iter().fold((b',', 0), |best, &(d, n)| if n > best.1 { (d, n) } else { best }).0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the reader thread; returns the header and the chunks of rows.
pub fn read_rows(info: &FileInfo) -> Result<(Vec<String>, Chunks), ImportError> {
    let (header_tx, header_rx) = mpsc::sync_channel(1);
    let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
    let info = info.clone();
    let path = info.path.clone();
    std::thread::Builder::new()
        .name("leadflow-import-reader".into())
        .spawn(move || {
            let result = match &info.format {
                Format::Csv { delimiter, encoding } => read_csv(&info.path, *delimiter, *encoding, &header_tx, &tx),
                Format::Xlsx { sheet } => read_xlsx(&info.path, sheet, &header_tx, &tx),
            };
            // The caller waits for the header first, then for rows: tell whichever it is
            // waiting for.
            if let Err(ReadFailure { error, after_header }) = result {
                if after_header {
                    let _ = tx.send(Err(error));
                } else {
                    let _ = header_tx.send(Err(error));
                }
            }
        })
        .map_err(|source| ImportError::Io { path, source })?;
    let header = header_rx.recv().map_err(|_| ImportError::NoHeader)??;
    Ok((header, rx))
}

/// An error in the reader thread, and whether the header had been sent.
struct ReadFailure {
    error: ImportError,
    after_header: bool,
}

type HeaderTx = mpsc::SyncSender<Result<Vec<String>, ImportError>>;
type RowsTx = mpsc::SyncSender<Result<Vec<Row>, ImportError>>;

fn read_csv(
    path: &Path,
    delimiter: u8,
    encoding: Encoding,
    header_tx: &HeaderTx,
    tx: &RowsTx,
) -> Result<(), ReadFailure> {
    let before = |error| ReadFailure { error, after_header: false };
    let file = File::open(path).map_err(|source| before(ImportError::Io { path: path.to_owned(), source }))?;
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(match encoding {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }))
        .bom_override(true)
        .build(BufReader::with_capacity(1 << 16, file));
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(decoded);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| before(ImportError::Csv(e.to_string())))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(before(ImportError::NoHeader));
    }
    if header_tx.send(Ok(header)).is_err() {
        return Ok(());
    }
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let mut record = csv::StringRecord::new();
    let mut number = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                number += 1;
                chunk.push((number, record.iter().map(str::to_owned).collect()));
                if chunk.len() == CHUNK_ROWS
                    && tx.send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ROWS)))).is_err()
                {
                    return Ok(());
                }
            }
            Err(e) => {
                return Err(ReadFailure {
                    error: ImportError::Csv(format!("after row {number}: {e}")),
                    after_header: true,
                });
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    Ok(())
}

fn read_xlsx(path: &Path, sheet: &str, header_tx: &HeaderTx, tx: &RowsTx) -> Result<(), ReadFailure> {
    let before = |error| ReadFailure { error, after_header: false };
    let mut book: Xlsx<_> =
        calamine::open_workbook(path).map_err(|e: calamine::XlsxError| before(ImportError::Xlsx(e.to_string())))?;
    let mut cells = book.worksheet_cells_reader(sheet).map_err(|e| before(ImportError::Xlsx(e.to_string())))?;
    let mut header: Option<(u32, Vec<String>)> = None;
    let mut current: Option<(u32, Vec<String>)> = None;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let flush_row = |row: (u32, Vec<String>), header: &mut Option<(u32, Vec<String>)>, chunk: &mut Vec<Row>| -> bool {
        match header {
            None => {
                *header = Some((row.0, row.1.iter().map(|h| h.trim().to_owned()).collect()));
                header_tx.send(Ok(header.as_ref().map(|h| h.1.clone()).unwrap_or_default())).is_ok()
            }
            Some((header_row, _)) => {
                chunk.push((u64::from(row.0 - *header_row), row.1));
                chunk.len() < CHUNK_ROWS
                    || tx.send(Ok(std::mem::replace(chunk, Vec::with_capacity(CHUNK_ROWS)))).is_ok()
            }
        }
    };
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                return Err(ReadFailure { error: ImportError::Xlsx(e.to_string()), after_header: header.is_some() });
            }
        };
        let (row, col) = cell.get_position();
        if current.as_ref().is_some_and(|(r, _)| *r != row)
            && let Some(done) = current.take()
            && !flush_row(done, &mut header, &mut chunk)
        {
            return Ok(());
        }
        let entry = current.get_or_insert_with(|| (row, Vec::new()));
        let col = usize::try_from(col).unwrap_or(usize::MAX);
        if col < 16_384 {
            if entry.1.len() <= col {
                entry.1.resize(col + 1, String::new());
            }
            entry.1[col] = cell_text(cell.get_value());
        }
    }
    if let Some(done) = current.take()
        && !flush_row(done, &mut header, &mut chunk)
    {
        return Ok(());
    }
    if header.is_none() {
        return Err(before(ImportError::NoHeader));
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    Ok(())
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(i) => i.to_string(),
        // Spreadsheets store every number as a float; whole ones are written without ".0"
        // so that phone numbers, postal codes and counts read as typed.
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        DataRef::Float(f) => f.to_string(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => d.to_string(),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// A row as a payload: header → cell text, empty cells left out.
pub fn row_payload(header: &[String], cells: Vec<String>) -> Map<String, Value> {
    let mut payload = Map::new();
    for (i, cell) in cells.into_iter().enumerate() {
        if cell.trim().is_empty() {
            continue;
        }
        let name = header.get(i).filter(|h| !h.is_empty()).cloned().unwrap_or_else(|| format!("column_{}", i + 1));
        payload.entry(name).or_insert(Value::String(cell));
    }
    payload
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

/// Imports the file into `source`; `on_row` receives each row's outcome in order.
pub async fn run(
    store: &DynStore,
    config: &Arc<Config>,
    info: &FileInfo,
    source: &SourceName,
    mut on_row: impl FnMut(RowOutcome),
) -> Result<Summary, ImportError> {
    let (header, rows) = read_rows(info)?;
    let key_prefix = format!("import:{}:", &info.sha256[..32]);
    let mut summary = Summary::default();
    let (chunks_tx, mut chunks_rx) = tokio::sync::mpsc::channel::<Result<Vec<Row>, ImportError>>(READ_AHEAD);
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
        let (store, config, source) = (store.clone(), config.clone(), source.clone());
        let (header, key_prefix) = (header.clone(), key_prefix.clone());
        in_flight.push_back(tokio::spawn(async move {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut submissions = Vec::with_capacity(chunk.len());
            for (number, cells) in chunk {
                let payload = row_payload(&header, cells);
                let external_id = payload.get("external_id").and_then(Value::as_str).map(str::to_owned);
                let key = IdempotencyKey::parse(&format!("{key_prefix}{number}")).ok();
                submissions.push(RawSubmission::new(source.clone(), key, payload));
                rows.push((number, external_id));
            }
            let settled = ingest::submit(&store, &config, submissions, OnInvalid::Quarantine).await?;
            Ok(rows.into_iter().zip(settled).map(|((row, external_id), s)| (row, external_id, s)).collect())
        }));
    }
    while let Some(oldest) = in_flight.pop_front() {
        drain(oldest.await.map_err(|e| StoreError::Internal(e.to_string()))??, &mut summary);
    }
    Ok(summary)
}

fn row_outcome(row: u64, external_id: Option<String>, s: Settled) -> RowOutcome {
    let (outcome, lead_id, errors) = match s {
        Settled::Captured(Captured::Settled { outcome, lead, .. }) => (outcome.as_str(), Some(lead.id), Vec::new()),
        Settled::Captured(Captured::Pending { .. }) => ("pending", None, Vec::new()),
        Settled::Captured(Captured::Rejected { errors, .. }) | Settled::Rejected(errors) => ("rejected", None, errors),
        // Rows are keyed by the file's digest, never fingerprinted: this does not happen.
        Settled::Captured(Captured::KeyReused { .. }) => ("rejected", None, Vec::new()),
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

/// Runs an import job started through the API: its counts are written every second while
/// it runs, and its report when it ends. Safe to run again after a crash: rows already
/// settled answer with their first outcome.
pub async fn run_job(store: DynStore, config: Arc<Config>, mut job: ImportJob) {
    let id = job.id;
    let outcome = run_job_inner(&store, &config, &mut job).await;
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

async fn run_job_inner(store: &DynStore, config: &Arc<Config>, job: &mut ImportJob) -> Result<Vec<u8>, ImportError> {
    let file = store.import_file(job.id).await?.ok_or(ImportError::NoHeader)?;
    let path = std::env::temp_dir().join(format!("leadflow-import-{}", job.id));
    let io = |source| ImportError::Io { path: path.clone(), source };
    std::fs::write(&path, file).map_err(io)?;
    let result = run_file(store, config, job, &path).await;
    let _ = std::fs::remove_file(&path);
    result
}

async fn run_file(
    store: &DynStore,
    config: &Arc<Config>,
    job: &mut ImportJob,
    path: &Path,
) -> Result<Vec<u8>, ImportError> {
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
    let summary = run(store, config, &info, &job.source, |o| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_one_that_splits_the_header_most() {
        assert_eq!(sniff_delimiter("email;first_name;company\na;b;c"), b';');
        assert_eq!(sniff_delimiter("email\tfirst_name\n"), b'\t');
        assert_eq!(sniff_delimiter("email|name|x"), b'|');
        assert_eq!(sniff_delimiter("\"a;b\",c,d\n"), b',', "quoted delimiters do not count");
        assert_eq!(sniff_delimiter("email"), b',');
    }

    #[test]
    fn utf8_check_follows_characters_across_chunks() {
        let text = "Zoë Ångström, 東京".as_bytes();
        for split in 0..text.len() {
            let mut check = Utf8Check::default();
            check.feed(&text[..split]);
            check.feed(&text[split..]);
            assert!(check.valid(), "split at {split}");
        }
        let mut latin1 = Utf8Check::default();
        latin1.feed(b"Zo\xeb");
        assert!(!latin1.valid());
    }

    #[test]
    fn whole_spreadsheet_numbers_read_as_typed() {
        assert_eq!(cell_text(&DataRef::Float(4930901820.0)), "4930901820");
        assert_eq!(cell_text(&DataRef::Float(1.5)), "1.5");
        assert_eq!(cell_text(&DataRef::Int(10115)), "10115");
    }

    #[test]
    fn empty_cells_are_left_out_and_nameless_columns_named() {
        let header = vec!["email".to_owned(), String::new()];
        let p = row_payload(&header, vec!["a@example.com".into(), "x".into(), " ".into()]);
        assert_eq!(p.get("email"), Some(&Value::String("a@example.com".into())));
        assert_eq!(p.get("column_2"), Some(&Value::String("x".into())));
        assert_eq!(p.len(), 2);
    }
}
