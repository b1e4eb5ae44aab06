//! `leadflow import` and `leadflow quarantine`.

use crate::{DataArgs, Failure, QuarantineCommand};
use indicatif::{ProgressBar, ProgressStyle};
use leadflow_app::import::{self, Format, RowOutcome};
use leadflow_app::ingest::{self, Settled};
use leadflow_core::{SourceName, SubmissionId};
use leadflow_store::Captured;
use std::path::PathBuf;
use std::time::Duration;

pub struct Args {
    pub data: DataArgs,
    pub file: PathBuf,
    pub source: String,
    pub report: Option<PathBuf>,
    pub dry_run: bool,
    pub sheet: Option<String>,
    pub attendance: Option<import::AttendanceFile>,
}

/// Rows shown normalized by a dry run.
const DRY_RUN_SAMPLE: usize = 5;

fn report_writer(path: &Option<PathBuf>) -> Result<Option<csv::Writer<std::fs::File>>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let mut w =
        csv::Writer::from_path(path).map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
    w.write_record(import::REPORT_HEADER).map_err(|e| Failure::Runtime(e.to_string()))?;
    Ok(Some(w))
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let source = SourceName::parse(&args.source).map_err(|e| Failure::Runtime(e.to_string()))?;
    let config = crate::load_config(args.data.config.clone())?;
    if config.source(&source).is_none() {
        return Err(Failure::Config(format!(
            "no source named {:?} is configured (leadflow.toml [[sources]])",
            source.as_str()
        )));
    }
    let info = import::inspect(&args.file, args.sheet.as_deref()).map_err(|e| Failure::Runtime(e.to_string()))?;
    let described = match &info.format {
        Format::Csv { delimiter, encoding } => format!("CSV, delimiter {:?}, {encoding:?}", char::from(*delimiter)),
        Format::Xlsx { sheet } => format!("XLSX, sheet {sheet:?}"),
    };
    eprintln!("{}: {described}", args.file.display());
    let mut report = report_writer(&args.report)?;
    let mut report_error = None;
    let mut write = |o: &RowOutcome| {
        if let Some(w) = report.as_mut()
            && let Err(e) = import::write_report_line(w, o)
        {
            report_error.get_or_insert(e);
        }
    };

    if args.dry_run {
        let mut errors = Vec::new();
        let (header, samples, summary) = import::dry_run(&config, &info, &source, DRY_RUN_SAMPLE, |o| {
            write(&o);
            if !o.errors.is_empty() {
                errors.push(o);
            }
        })
        .map_err(|e| Failure::Runtime(e.to_string()))?;
        println!("columns:");
        let fallback = leadflow_core::config::SourceConfig::api();
        for decision in import::column_decisions(&header, config.source(&source).unwrap_or(&fallback)) {
            println!("  {decision}");
        }
        println!("first rows, normalized:");
        for s in samples {
            println!("  {s}");
        }
        println!("errors:");
        for o in &errors {
            for e in &o.errors {
                println!("  row {}: {}: {}", o.row, e.field, e.message);
            }
        }
        println!(
            "dry run: {} rows, {} valid, {} rejected; nothing was written",
            summary.rows,
            summary.rows - summary.rejected,
            summary.rejected
        );
    } else {
        let app = crate::open_app(&args.data).await?;
        let progress = ProgressBar::new_spinner();
        progress.set_style(
            ProgressStyle::with_template("{spinner} {pos} rows {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        progress.enable_steady_tick(Duration::from_millis(200));
        let result = import::run_with(&app, &info, &source, args.attendance.clone(), |o| {
            progress.inc(1);
            write(&o);
        })
        .await;
        progress.finish_and_clear();
        let resolved = match &result {
            Ok(_) => Some(resolve(&app).await),
            Err(_) => None,
        };
        app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
        let summary = result.map_err(|e| Failure::Runtime(e.to_string()))?;
        println!(
            "imported {} rows: {} created, {} merged, {} rejected (quarantined), {} pending",
            summary.rows, summary.created, summary.merged, summary.rejected, summary.pending
        );
        if let Some(resolved) = resolved {
            let r = resolved?;
            println!(
                "resolved in {:.1} s: {} leads merged as duplicates, {} possible duplicates queued for review",
                r.seconds, r.merges, r.reviews
            );
        }
    }
    if let Some(e) = report_error {
        return Err(Failure::Runtime(format!("writing the report failed: {e}")));
    }
    if let Some(mut w) = report {
        w.flush().map_err(|e| Failure::Runtime(format!("writing the report failed: {e}")))?;
    }
    Ok(())
}

/// What the resolver did after an import.
struct Resolved {
    merges: usize,
    reviews: usize,
    seconds: f64,
}

/// Resolves the leads the import queued (fuzzy matching), so the command ends with its
/// duplicates merged.
async fn resolve(app: &leadflow_app::App) -> Result<Resolved, Failure> {
    let started = std::time::Instant::now();
    let all = leadflow_app::workers::resolver::drain(app).await.map_err(|e| Failure::Store(e.to_string()))?;
    Ok(Resolved { merges: all.merges.len(), reviews: all.reviews, seconds: started.elapsed().as_secs_f64() })
}

pub async fn quarantine(action: QuarantineCommand) -> Result<(), Failure> {
    let parse_source =
        |s: Option<String>| s.map(|s| SourceName::parse(&s).map_err(|e| Failure::Runtime(e.to_string()))).transpose();
    match action {
        QuarantineCommand::List { data, source } => {
            let source = parse_source(source)?;
            let (store, _) = crate::open(&data).await?;
            let mut after = None;
            loop {
                let page = store
                    .list_quarantine(source.clone(), after, 500)
                    .await
                    .map_err(|e| Failure::Store(e.to_string()))?;
                let Some(last) = page.last() else { break };
                after = Some(last.submission.id);
                for q in page {
                    let reasons: Vec<String> = q.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                    println!("{}  {}  {}", q.submission.id, q.submission.source, reasons.join("; "));
                }
            }
            store.close().await.map_err(|e| Failure::Store(e.to_string()))
        }
        QuarantineCommand::Show { data, id } => {
            let id: SubmissionId =
                id.parse().map_err(|_| Failure::Runtime(format!("{id:?} is not a submission id")))?;
            let (store, _) = crate::open(&data).await?;
            let found = store.get_submission(id).await.map_err(|e| Failure::Store(e.to_string()));
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            let stored = found?.ok_or_else(|| Failure::Runtime(format!("no submission has the id {id}")))?;
            let shown = serde_json::json!({
                "submission_id": stored.submission.id,
                "source": stored.submission.source,
                "status": format!("{:?}", stored.status).to_lowercase(),
                "errors": stored.errors,
                "payload": stored.submission.payload,
            });
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            Ok(())
        }
        QuarantineCommand::Replay { data, ids, source, all } => {
            let source = parse_source(source)?;
            let app = crate::open_app(&data).await?;
            let result = if all || ids.is_empty() {
                ingest::replay_all(&app, source).await.map(|(settled, stayed)| {
                    println!("replayed: {settled} settled, {stayed} still quarantined");
                })
            } else {
                let parsed: Result<Vec<SubmissionId>, _> = ids.iter().map(|i| i.parse::<SubmissionId>()).collect();
                let parsed = parsed.map_err(|_| Failure::Runtime("not a submission id".into()))?;
                ingest::replay(&app, &parsed).await.map(|results| {
                    for (id, r) in parsed.iter().zip(results) {
                        let what = match r {
                            None => "not in the quarantine".to_owned(),
                            Some(Settled::Captured(Captured::Settled { outcome, lead, .. })) => {
                                format!("{} lead {}", outcome.as_str(), lead.id)
                            }
                            Some(Settled::Captured(Captured::Rejected { errors, .. }) | Settled::Rejected(errors)) => {
                                let reasons: Vec<String> =
                                    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                                format!("still quarantined: {}", reasons.join("; "))
                            }
                            Some(Settled::Captured(Captured::Pending { .. })) => "pending".to_owned(),
                            Some(Settled::Captured(Captured::KeyReused { .. })) => "idempotency key reused".to_owned(),
                            Some(Settled::Suppressed) => "dropped: the person is suppressed".to_owned(),
                        };
                        println!("{id}  {what}");
                    }
                })
            };
            app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            result.map_err(|e| Failure::Store(e.to_string()))
        }
    }
}
