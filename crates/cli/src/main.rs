//! The `leadflow` command.
//!
//! Exit codes scripts can trust: 0 success, 1 failure while running, 2 usage error,
//! 3 invalid configuration, 4 store unreachable.
#![forbid(unsafe_code)]

mod audit;
mod dedupe;
mod deliveries;
mod export;
mod import;
mod keys;
mod parquet;
mod privacy;
mod rescore;

use clap::{Args, Parser, Subcommand, ValueEnum};
use leadflow_app::App;
use leadflow_app::audit::{Action, CLI, NewEntry};
use leadflow_core::config::{self, Config, ConfigError};
use leadflow_store::DynStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// glibc's allocator serializes frees of memory allocated on another thread, which is the
/// capture path's normal case (parsed on a request thread, freed by the store's writer).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The file `serve` and the data commands read when no `--config` is given, if it exists.
const DEFAULT_CONFIG_FILE: &str = "leadflow.toml";

#[derive(Parser)]
#[command(name = "leadflow", version, about = "Capture, clean, deduplicate and hand off B2B leads.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct DataArgs {
    /// The store: sqlite://PATH (default sqlite://leadflow.db) or postgres://…
    #[arg(long, env = "LEADFLOW_DATABASE_URL")]
    database: Option<String>,
    /// The TOML configuration (default ./leadflow.toml when it exists).
    #[arg(long, env = "LEADFLOW_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// The address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "LEADFLOW_LISTEN")]
        listen: Option<SocketAddr>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key; or `[server]
        /// tls_cert`). Reloaded on SIGHUP and when the file changes.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create, list, rotate and revoke API keys.
    Keys {
        #[command(subcommand)]
        action: keys::KeysCommand,
    },
    /// Validate the configuration and report every problem with its location.
    CheckConfig {
        /// The file to check (default: --config, LEADFLOW_CONFIG or ./leadflow.toml).
        file: Option<PathBuf>,
        #[arg(long, env = "LEADFLOW_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Import a CSV or XLSX file through the pipeline, one report line per row.
    Import {
        #[command(flatten)]
        data: DataArgs,
        file: PathBuf,
        /// The configured source the rows come from.
        #[arg(long)]
        source: String,
        /// Write the per-row report (row,external_id,outcome,lead_id,errors) here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Show the column decisions, the first rows normalized and every error; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The worksheet of an XLSX file (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// The file lists who registered for or attended this event (e.g.
        /// `zoom:webinar:81234567890`, `expo-2026`): each row's attendance is recorded too.
        #[arg(long, value_name = "EVENT")]
        attendance: Option<String>,
        /// The event's name, shown with the attendance.
        #[arg(long, requires = "attendance")]
        event_name: Option<String>,
        /// What a row means when no column (`Attended`, `Status`) says.
        #[arg(long, requires = "attendance", default_value = "attended",
            value_parser = ["attended", "registered", "no_show", "cancelled"])]
        attendance_status: String,
    },
    /// Inspect and replay submissions that failed validation.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineCommand,
    },
    /// Inspect and replay deliveries to destinations: dead letters, needs data.
    Deliveries {
        #[command(subcommand)]
        action: deliveries::DeliveriesCommand,
    },
    /// Find duplicate leads among those stored (fuzzy matching, whatever the capture
    /// setting), explain each, merge the confident ones and queue the uncertain for review.
    Dedupe {
        #[command(flatten)]
        data: DataArgs,
        /// Show what would be merged and queued; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Learn the matching weights from the stored leads instead (u from random pairs,
        /// m by expectation-maximisation), store them for every instance, and print them.
        #[arg(long, conflicts_with = "dry_run")]
        train: bool,
    },
    /// Recompute every lead's score and automatic stage under the configured rules (after
    /// changing them).
    Rescore {
        #[command(flatten)]
        data: DataArgs,
        /// Count how many scores and stages would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check configured sources.
    Sources {
        #[command(subcommand)]
        action: SourcesCommand,
    },
    /// Act on one lead.
    Leads {
        #[command(subcommand)]
        action: LeadsCommand,
    },
    /// Verify or list the audit log of administrative actions.
    Audit {
        #[command(subcommand)]
        action: audit::AuditCommand,
    },
    /// Personal data at rest ([encryption]).
    Encryption {
        #[command(subcommand)]
        action: EncryptionCommand,
    },
    /// Apply the retention configured in [retention] by hand.
    Retention {
        #[command(subcommand)]
        action: privacy::RetentionCommand,
    },
    /// Write every lead with its normalized fields, stage, score and owner (csv, jsonl);
    /// or, as Parquet files in the directory `--out` names, the change feed since the
    /// last run and the leads it names (parquet).
    Export {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write here instead of standard output (a directory for parquet).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Parquet: read the change feed after this cursor rather than where the last
        /// run into `--out` stopped (`0`: from the start).
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
        /// Only leads that grant this consent purpose now (repeat for several: all must be
        /// granted), e.g. `--consent marketing_email` for an email campaign's list.
        #[arg(long = "consent", value_name = "PURPOSE")]
        consent: Vec<String>,
    },
}

#[derive(Subcommand)]
enum EncryptionCommand {
    /// Re-encrypt everything older master keys sealed under the key `key_env` names, now
    /// (a running server does the same in the background), then drop the older data keys:
    /// afterwards `previous_key_envs` may be emptied. Resumes where an interrupted run
    /// stopped.
    Reencrypt {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum LeadsCommand {
    /// Erase the person behind a lead (the right to be forgotten): the lead and every lead
    /// merged into it lose all personal data everywhere it is stored, a tombstone stays
    /// for the reports, and destinations subscribed to `erased` are told. Prints the
    /// receipt as JSON. Erasing an erased lead does nothing more.
    Erase {
        #[command(flatten)]
        data: DataArgs,
        /// The lead id (a merged-away id erases its survivor).
        id: String,
        /// Why (a request or ticket number); kept in the lead's history, so never
        /// personal data.
        #[arg(long)]
        reason: Option<String>,
        /// Who asks (default: cli).
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// Write everything held about the person behind a lead (subject access) as one JSON
    /// document: the lead, the leads merged into it, raw submissions, history, events,
    /// touchpoints, deliveries with what was sent, reviews and CRM feedback. A merged-away
    /// id exports its survivor; an erased lead has nothing to export.
    ExportPerson {
        #[command(flatten)]
        data: DataArgs,
        /// The lead id.
        id: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SourcesCommand {
    /// Send a test lead through the source (adapter, map, normalize, validate, capture)
    /// and print each stage as JSON. The lead is real and marked custom.test = true.
    Test {
        #[command(flatten)]
        data: DataArgs,
        name: String,
        /// A JSON file with a payload in the source's own shape (default: a synthetic lead).
        #[arg(long)]
        payload: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum QuarantineCommand {
    /// List quarantined submissions with their reasons.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        source: Option<String>,
    },
    /// Show one quarantined submission as received, with its reasons.
    Show {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
    /// Replay quarantined submissions with the current configuration: the ones given, or
    /// all (of one source with --source).
    Replay {
        #[command(flatten)]
        data: DataArgs,
        ids: Vec<String>,
        #[arg(long)]
        source: Option<String>,
        /// Replay every quarantined submission (of --source, if given).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    Parquet,
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    Runtime(String),
    Config(String),
    Store(String),
}

impl Failure {
    fn exit(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Runtime(_) => 1,
            Self::Config(_) => 3,
            Self::Store(_) => 4,
        })
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            match &failure {
                Failure::Runtime(m) | Failure::Config(m) | Failure::Store(m) => {
                    eprintln!("error: {m}")
                }
            }
            failure.exit()
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LEADFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("LEADFLOW_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { data, listen, tls_cert, tls_key } => serve(data, listen, tls_cert.zip(tls_key)).await,
        Command::Keys { action } => keys::run(action).await,
        Command::CheckConfig { file, config } => check_config(file.or(config)),
        Command::Import { data, file, source, report, dry_run, sheet, attendance, event_name, attendance_status } => {
            let attendance = attendance.map(|event| leadflow_app::import::AttendanceFile {
                event,
                name: event_name,
                status: leadflow_core::engagement::attendance::Status::parse(&attendance_status)
                    .unwrap_or(leadflow_core::engagement::attendance::Status::Attended),
            });
            import::run(import::Args { data, file, source, report, dry_run, sheet, attendance }).await
        }
        Command::Quarantine { action } => import::quarantine(action).await,
        Command::Deliveries { action } => deliveries::run(action).await,
        Command::Dedupe { data, dry_run, train: false } => dedupe::run(&data, dry_run).await,
        Command::Dedupe { data, train: true, .. } => dedupe::train(&data).await,
        Command::Rescore { data, dry_run } => rescore::run(&data, dry_run).await,
        Command::Sources { action: SourcesCommand::Test { data, name, payload } } => {
            test_source(&data, &name, payload.as_deref()).await
        }
        Command::Leads { action: LeadsCommand::Erase { data, id, reason, actor } } => {
            erase(&data, &id, reason, actor).await
        }
        Command::Audit { action } => audit::run(action).await,
        Command::Leads { action: LeadsCommand::ExportPerson { data, id, out } } => {
            privacy::export_person(&data, &id, out.as_deref()).await
        }
        Command::Retention { action } => privacy::run(action).await,
        Command::Encryption { action: EncryptionCommand::Reencrypt { data } } => reencrypt(&data).await,
        Command::Export { data, format: ExportFormat::Parquet, out, after, consent } => {
            let Some(dir) = out else {
                return Err(Failure::Runtime("parquet export writes files: name their directory with --out".into()));
            };
            if !consent.is_empty() {
                return Err(Failure::Runtime("--consent filters csv and jsonl exports, not the change feed".into()));
            }
            let (store, _) = open(&data).await?;
            let result = parquet::export(&store, &dir, after.as_deref()).await.map_err(Failure::Runtime);
            if let Ok(done) = &result {
                let detail = serde_json::json!({
                    "format": "parquet", "changes": done.changes, "leads": done.leads,
                    "from": done.from, "to": done.to, "rewritten": done.rewritten,
                });
                audit::note(&store, vec![NewEntry::new(CLI, Action::LeadsExported, "leads").detail(detail)]).await;
            }
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            let done = result?;
            if done.changes == 0 {
                eprintln!("nothing changed after {}", done.from);
            } else {
                eprintln!(
                    "exported {} changes and {} leads ({} to {}); {} earlier files rewritten for erasures",
                    done.changes, done.leads, done.from, done.to, done.rewritten
                );
            }
            Ok(())
        }
        Command::Export { data, format, out, after, consent } => {
            if after.is_some() {
                return Err(Failure::Runtime("--after reads the change feed: use it with --format parquet".into()));
            }
            let (store, config) = open(&data).await?;
            if let Some(unknown) = consent.iter().find(|p| !config.privacy.purposes.contains(p)) {
                return Err(Failure::Runtime(format!(
                    "{unknown:?} is not a consent purpose; configured: {}",
                    config.privacy.purposes.join(", ")
                )));
            }
            let result = export::export(&store, format, out.as_deref(), &consent).await.map_err(Failure::Runtime);
            if let Ok(count) = &result {
                let format = match format {
                    ExportFormat::Csv => "csv",
                    ExportFormat::Jsonl => "jsonl",
                    ExportFormat::Parquet => "parquet",
                };
                let detail =
                    serde_json::json!({"format": format, "leads": count, "to_file": out.is_some(), "consent": consent});
                audit::note(&store, vec![NewEntry::new(CLI, Action::LeadsExported, "leads").detail(detail)]).await;
            }
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            let count = result?;
            eprintln!("exported {count} leads");
            Ok(())
        }
    }
}

async fn erase(data: &DataArgs, id: &str, reason: Option<String>, actor: String) -> Result<(), Failure> {
    let lead: leadflow_core::LeadId = id.parse().map_err(|_| Failure::Runtime(format!("{id:?} is not a lead id")))?;
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let app = open_app(data).await?;
    let request = leadflow_app::erase::Request { actor, reason: reason.clone() };
    let result = leadflow_app::erase::erase(&app, lead, request).await;
    if let Ok(Some(receipt)) = &result {
        let detail = leadflow_app::audit::erased(receipt, reason);
        let entry = NewEntry::new(CLI, Action::LeadErased, receipt.lead_id.to_string()).detail(detail);
        audit::note(&app.store, vec![entry]).await;
    }
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let receipt = match result {
        Ok(Some(receipt)) => receipt,
        Ok(None) => return Err(Failure::Runtime(format!("no lead has the id {id}"))),
        Err(e @ leadflow_store::StoreError::Unavailable(_)) => return Err(Failure::Store(e.to_string())),
        Err(e) => return Err(Failure::Runtime(e.to_string())),
    };
    println!("{}", serde_json::to_string_pretty(&receipt).map_err(|e| Failure::Runtime(e.to_string()))?);
    if receipt.already_erased {
        eprintln!("lead {} was already erased: nothing more was done", receipt.lead_id);
    } else {
        eprintln!("erased lead {} and {} merged into it", receipt.lead_id, receipt.merged_ids.len());
    }
    Ok(())
}

async fn test_source(data: &DataArgs, name: &str, payload: Option<&Path>) -> Result<(), Failure> {
    let payload = match payload {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", path.display())))?;
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => return Err(Failure::Runtime(format!("{} must hold one JSON object", path.display()))),
            }
        }
    };
    let source = leadflow_core::SourceName::parse(name).map_err(|e| Failure::Runtime(e.to_string()))?;
    let app = open_app(data).await?;
    let result = leadflow_app::sources::test(&app, &source, payload).await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let report = result
        .map_err(|e| Failure::Store(e.to_string()))?
        .ok_or_else(|| Failure::Config(format!("no source is named {name:?}")))?;
    let failed = report.stages.iter().any(|s| s.status == "failed");
    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.to_string()))?);
    if failed { Err(Failure::Runtime("the test lead did not get through".into())) } else { Ok(()) }
}

/// The configuration file to read: the one named, else ./leadflow.toml if present.
fn config_path(named: Option<PathBuf>) -> Option<PathBuf> {
    named.or_else(|| Path::new(DEFAULT_CONFIG_FILE).exists().then(|| PathBuf::from(DEFAULT_CONFIG_FILE)))
}

pub(crate) fn load_config(named: Option<PathBuf>) -> Result<Config, Failure> {
    load_config_file(named).map(|(config, _)| config)
}

/// The configuration, and the file it was read from with its text (`None`: the defaults).
fn load_config_file(named: Option<PathBuf>) -> Result<(Config, Option<(PathBuf, String)>), Failure> {
    let Some(path) = config_path(named) else {
        return Ok((Config::default(), None));
    };
    let text = read_config(&path)?;
    let mut config = config::parse(&text).map_err(|errors| invalid(&path, &errors))?;
    config.master_keys = config
        .encryption
        .master_keys(|name| std::env::var(name).ok())
        .map_err(|e| Failure::Config(format!("[encryption]: {e}")))?
        .map(Arc::new);
    Ok((config, Some((path, text))))
}

fn read_config(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Config(format!("cannot read {}: {e}", path.display())))
}

/// Every problem on its own line, prefixed with the file: `FILE:LINE:COLUMN: KEY: …`.
fn invalid(path: &Path, errors: &[ConfigError]) -> Failure {
    let listed: Vec<String> = errors
        .iter()
        .map(|e| if e.line > 0 { format!("{}:{e}", path.display()) } else { format!("{}: {e}", path.display()) })
        .collect();
    Failure::Config(format!("invalid configuration:\n{}", listed.join("\n")))
}

async fn reencrypt(data: &DataArgs) -> Result<(), Failure> {
    let (store, config) = open(data).await?;
    if config.master_keys.is_none() {
        return Err(Failure::Config("encryption is off: set [encryption] key_env".into()));
    }
    let (_running, mut stop) = tokio::sync::watch::channel(false);
    let done = leadflow_app::encryption::run(&store, &mut stop, std::time::Duration::ZERO)
        .await
        .map_err(|e| Failure::Store(e.to_string()))?;
    store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    println!("re-encrypted {} rows; only the active master key is needed now", done.rows);
    Ok(())
}

pub(crate) async fn open(data: &DataArgs) -> Result<(DynStore, Config), Failure> {
    open_loaded(data).await.map(|(store, config, _)| (store, config))
}

/// [`open`], with the configuration file read and its text.
async fn open_loaded(data: &DataArgs) -> Result<(DynStore, Config, Option<(PathBuf, String)>), Failure> {
    let (mut config, file) = load_config_file(data.config.clone())?;
    if let Some(url) = &data.database {
        if config.regions.is_empty() {
            config.database.url.clone_from(url);
        } else {
            config.regions.set_default_database(url);
        }
    }
    let store = leadflow_store::connect_configured(&config).await.map_err(|e| Failure::Store(e.to_string()))?;
    Ok((store, config, file))
}

/// The store and configuration as one application, for the commands that run a use case.
pub(crate) async fn open_app(data: &DataArgs) -> Result<App, Failure> {
    let (store, config) = open(data).await?;
    App::new(store, Arc::new(config))
        .with_suppression_key(|name| std::env::var(name).ok())
        .await
        .map_err(|e| Failure::Store(e.to_string()))
}

async fn serve(data: DataArgs, listen: Option<SocketAddr>, tls: Option<(PathBuf, PathBuf)>) -> Result<(), Failure> {
    let (store, mut config, file) = open_loaded(&data).await?;
    let loaded =
        leadflow_app::audit::config_loaded(file.as_ref().map(|(path, text)| (path.as_path(), text.as_bytes())));
    audit::note(&store, vec![loaded]).await;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    if let Some((cert, key)) = tls {
        config.server.tls_cert = Some(cert);
        config.server.tls_key = Some(key);
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", config.server.listen)))?;
    let addr = listener.local_addr().map_err(|e| Failure::Runtime(e.to_string()))?;
    if config.regions.is_empty() {
        tracing::info!(%addr, database = %redact_url(&config.database.url), "leadflow listening");
    } else {
        for region in config.regions.list() {
            tracing::info!(region = %region.name, database = %redact_url(&region.database.url), "region");
        }
        tracing::info!(%addr, regions = config.regions.list().len(), "leadflow listening");
    }
    // A plain line on stdout, for scripts and tests that start on port 0.
    println!("listening on {addr}");
    leadflow_server::launch(store, Arc::new(config), listener, shutdown_signal())
        .await
        .map_err(|e| Failure::Runtime(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Keeps a database URL's password out of the log.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn check_config(named: Option<PathBuf>) -> Result<(), Failure> {
    let Some(path) = config_path(named) else {
        println!("no configuration file: the defaults apply (one source, \"api\")");
        return check_suppression_key(&config::Config::default());
    };
    let text = read_config(&path)?;
    // Every variable the file names must be set: a source or destination without its
    // secret refuses (or cannot send) everything.
    let config = config::parse_with_env(&text, |var| std::env::var_os(var).is_some())
        .map_err(|errors| invalid(&path, &errors))?;
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    // Builds the delivery client as `serve` would, so what only the variables' values
    // show (a signing secret that is not one) is reported now, not at the first delivery.
    if !config.destinations.is_empty()
        && let Err(e) = leadflow_app::deliveries::client(&config, |var| std::env::var(var).ok())
    {
        return Err(invalid(&path, &[e.locate(&text)]));
    }
    // The master keys' values, as `serve` reads them: base64 of exactly 32 bytes.
    config
        .encryption
        .master_keys(|var| std::env::var(var).ok())
        .map_err(|e| Failure::Config(format!("{}: [encryption]: {e}", path.display())))?;
    println!(
        "{}: ok ({} sources: {}; {} destinations)",
        path.display(),
        names.len(),
        names.join(", "),
        config.destinations.len()
    );
    check_suppression_key(&config)
}

/// The suppression key as `serve` reads it: one too short refuses to start; none works,
/// with a key generated in the database, which a copy of the database then holds too.
fn check_suppression_key(config: &config::Config) -> Result<(), Failure> {
    let name = &config.privacy.suppression_key_env;
    match std::env::var_os(name) {
        Some(value) if value.len() < 16 => {
            Err(Failure::Config(format!("{name} must hold at least 16 bytes (e.g. `openssl rand -base64 32`)")))
        }
        Some(_) => Ok(()),
        None => {
            eprintln!(
                "warning: {name} is not set: the suppression list will be keyed with a key generated \
                 and kept in the database; set it to a random secret of at least 16 bytes"
            );
            Ok(())
        }
    }
}
