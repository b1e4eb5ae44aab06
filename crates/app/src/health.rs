//! Integration health: each source's and destination's counts, backlog and status, read
//! from the aggregates the store writes in the transactions they count
//! ([`leadflow_core::health`]).
//!
//! Requests refused before anything is stored (a bad signature, a malformed body) have no
//! transaction to be counted in: they are summed here and added every second by the
//! health worker ([`run`]). A crash loses at most that second of refusals, never a count
//! of anything stored.

use crate::App;
use leadflow_core::health::{self, Firing, Inputs, Query, Scope, Series, Tally, tally::metric};
use leadflow_store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

pub use health::{DestinationHealth, SourceHealth, Status};

/// Counts of requests refused before anything was stored, waiting to be written.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<Tally>);

impl Refusals {
    /// A request refused for its credentials or signature.
    pub fn refused(&self, source: &str) {
        self.add(source, metric::REFUSED);
    }

    /// A request refused as malformed or invalid: the caller was told, nothing kept.
    pub fn rejected(&self, source: &str) {
        self.add(source, metric::REJECTED);
    }

    fn add(&self, source: &str, what: &str) {
        if let Ok(mut t) = self.0.lock() {
            t.add(Scope::Source, source, what, OffsetDateTime::now_utc(), 1);
        }
    }

    fn take(&self) -> Tally {
        self.0.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default()
    }

    /// Puts back counts that could not be written, for the next try.
    fn restore(&self, tally: Tally) {
        if let Ok(mut t) = self.0.lock() {
            t.extend(tally);
        }
    }
}

/// Writes the refusals counted so far.
pub async fn flush(app: &App) -> Result<(), StoreError> {
    let tally = app.refusals.take();
    if tally.is_empty() {
        return Ok(());
    }
    if let Err(e) = app.store.count(tally.clone()).await {
        app.refusals.restore(tally);
        return Err(e);
    }
    Ok(())
}

/// Every source and destination with its status, counts and backlog.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub sources: Vec<SourceHealth>,
    pub destinations: Vec<DestinationHealth>,
}

/// What the statuses are read from, loaded once.
struct Loaded {
    /// Destinations this instance's delivery client holds back (circuit open).
    paused: Vec<String>,
    series: Series,
    last_received: BTreeMap<String, OffsetDateTime>,
    backlogs: health::Backlogs,
}

async fn load(app: &App, query: Query) -> Result<Loaded, StoreError> {
    let (cells, seen, backlogs) =
        tokio::try_join!(app.store.health_cells(query), app.store.health_seen(), backlogs(app))?;
    let last_received = seen.into_iter().filter(|s| s.scope == Scope::Source).map(|s| (s.name, s.last_at)).collect();
    let paused = app.delivery.get().map(|c| c.paused()).unwrap_or_default();
    Ok(Loaded { paused, series: Series::new(cells), last_received, backlogs })
}

/// The configured destinations' and sources' backlogs (counts stop at
/// [`health::BACKLOG_CAP`]).
pub async fn backlogs(app: &App) -> Result<health::Backlogs, StoreError> {
    let (sources, destinations) = names(app);
    app.store.health_backlogs(destinations, sources).await
}

fn names(app: &App) -> (Vec<String>, Vec<String>) {
    let sources = app.config.sources.iter().map(|s| s.name.as_str().to_owned()).collect();
    let destinations = app.config.destinations.iter().map(|d| d.name.clone()).collect();
    (sources, destinations)
}

fn windows(now: OffsetDateTime) -> Query {
    Query::windows(now, &[health::HOUR, health::DAY, health::WEEK])
}

/// The health of every source and destination.
pub async fn report(app: &App, firing: &Firing) -> Result<Report, StoreError> {
    let now = OffsetDateTime::now_utc();
    let loaded = load(app, windows(now)).await?;
    let (sources, destinations) = names(app);
    let inputs = inputs(now, &sources, &destinations, &loaded, firing);
    Ok(Report { sources: inputs.sources(), destinations: inputs.destinations() })
}

/// The report with the daily volume of every source (received) and destination (tries)
/// over the last `days` days, oldest first: the dashboard's overview and its sparklines,
/// from the one read of the aggregates the report makes anyway.
#[derive(Clone, Debug)]
pub struct Overview {
    pub report: Report,
    pub source_daily: BTreeMap<String, Vec<u64>>,
    pub destination_daily: BTreeMap<String, Vec<u64>>,
}

pub async fn overview(app: &App, firing: &Firing, days: u32) -> Result<Overview, StoreError> {
    let now = OffsetDateTime::now_utc();
    let loaded = load(app, windows(now).with_days(now, days)).await?;
    let (sources, destinations) = names(app);
    let inputs = inputs(now, &sources, &destinations, &loaded, firing);
    let report = Report { sources: inputs.sources(), destinations: inputs.destinations() };
    let daily = |scope: Scope, name: &str, m: &str| -> Vec<u64> {
        loaded.series.daily(scope, name, m, now, days).into_iter().map(|(_, v)| v).collect()
    };
    let source_daily =
        report.sources.iter().map(|s| (s.name.clone(), daily(Scope::Source, &s.name, metric::RECEIVED))).collect();
    let destination_daily = report
        .destinations
        .iter()
        .map(|d| (d.name.clone(), daily(Scope::Destination, &d.name, metric::ATTEMPTS)))
        .collect();
    Ok(Overview { report, source_daily, destination_daily })
}

fn inputs<'a>(
    now: OffsetDateTime,
    sources: &'a [String],
    destinations: &'a [String],
    loaded: &'a Loaded,
    firing: &'a Firing,
) -> Inputs<'a> {
    let paused = &loaded.paused;
    Inputs {
        now,
        sources,
        destinations,
        series: &loaded.series,
        last_received: &loaded.last_received,
        backlogs: &loaded.backlogs,
        firing,
        paused,
    }
}

/// One day's (or hour's) count of a metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The bucket's start.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub value: u64,
}

/// A metric's series: per hour over the last day, per day over the last 90.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Points {
    pub hourly: Vec<Point>,
    pub daily: Vec<Point>,
}

/// A source or destination with the series of its main metrics.
#[derive(Clone, Debug, Serialize)]
pub struct Detail<T> {
    #[serde(flatten)]
    pub health: T,
    /// By metric (received, created, quarantined… for a source; attempts, delivered,
    /// failed, dead… for a destination).
    pub series: BTreeMap<&'static str, Points>,
}

/// How many days of daily counts a detail shows (and the store keeps at least).
pub const DAYS: u32 = 90;

const SOURCE_SERIES: [&str; 7] = [
    metric::RECEIVED,
    metric::CREATED,
    metric::MERGED,
    metric::QUARANTINED,
    metric::SPAM,
    metric::REJECTED,
    metric::REFUSED,
];
const DESTINATION_SERIES: [&str; 5] =
    [metric::ATTEMPTS, metric::DELIVERED, metric::FAILED, metric::DEAD, metric::NEEDS_DATA];

/// One source's health and series; `None` when no source of that name is configured.
pub async fn source(app: &App, name: &str, firing: &Firing) -> Result<Option<Detail<SourceHealth>>, StoreError> {
    let (sources, destinations) = names(app);
    if !sources.iter().any(|s| s == name) {
        return Ok(None);
    }
    detail(app, Scope::Source, name, &SOURCE_SERIES, &sources, &destinations, firing, |i: &Inputs<'_>, n: &str| {
        i.source(n)
    })
    .await
    .map(Some)
}

/// One destination's health and series; `None` when none of that name is configured.
pub async fn destination(
    app: &App,
    name: &str,
    firing: &Firing,
) -> Result<Option<Detail<DestinationHealth>>, StoreError> {
    let (sources, destinations) = names(app);
    if !destinations.iter().any(|d| d == name) {
        return Ok(None);
    }
    detail(
        app,
        Scope::Destination,
        name,
        &DESTINATION_SERIES,
        &sources,
        &destinations,
        firing,
        |i: &Inputs<'_>, n: &str| i.destination(n),
    )
    .await
    .map(Some)
}

#[allow(clippy::too_many_arguments)]
async fn detail<T>(
    app: &App,
    scope: Scope,
    name: &str,
    metrics: &[&'static str],
    sources: &[String],
    destinations: &[String],
    firing: &Firing,
    of: impl Fn(&Inputs<'_>, &str) -> T,
) -> Result<Detail<T>, StoreError> {
    let now = OffsetDateTime::now_utc();
    let query = windows(now).with_days(now, DAYS).only(scope, name);
    let loaded = load(app, query).await?;
    let inputs = inputs(now, sources, destinations, &loaded, firing);
    let day_start = health::Level::Hour.bucket(now) - 23 * health::Level::Hour.seconds();
    let point = |(at, value): (i64, u64)| Point {
        at: OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        value,
    };
    let series = metrics
        .iter()
        .map(|m| {
            let hours = loaded.series.buckets(scope, name, m, health::Level::Hour, day_start);
            let hourly = (0..24)
                .map(|i| {
                    let at = day_start + i * health::Level::Hour.seconds();
                    point((at, hours.get(&at).copied().unwrap_or(0)))
                })
                .collect();
            let daily = loaded.series.daily(scope, name, m, now, DAYS).into_iter().map(point).collect();
            (*m, Points { hourly, daily })
        })
        .collect();
    Ok(Detail { health: of(&inputs, name), series })
}

/// How often refusals counted in memory are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the backlog gauges are read for `/metrics`.
const GAUGES_EVERY: Duration = Duration::from_secs(15);

/// The health worker: writes the refusals counted in memory, and once an hour (claimed
/// across instances) prunes buckets older than their width keeps.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gauges: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
        if let Err(e) = flush(&app).await {
            tracing::warn!(error = %e, "could not write the refusal counts; kept for the next try");
        }
        prune_hourly(&app).await;
        if gauges.is_none_or(|g| g.elapsed() >= GAUGES_EVERY) {
            gauges = Some(tokio::time::Instant::now());
            match backlogs(&app).await {
                Ok(b) => crate::metrics::backlogs(&b, OffsetDateTime::now_utc()),
                Err(e) => tracing::warn!(error = %e, "could not read the backlogs"),
            }
        }
    }
    if let Err(e) = flush(&app).await {
        tracing::warn!(error = %e, "could not write the refusal counts at stop");
    }
}

async fn prune_hourly(app: &App) {
    let now = OffsetDateTime::now_utc();
    let hour = health::Level::Hour.bucket(now);
    let Ok(start) = OffsetDateTime::from_unix_timestamp(hour) else { return };
    match app.store.try_claim_period("health_prune", start).await {
        Ok(true) => match app.store.prune_health(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned old health buckets"),
            Err(e) => tracing::warn!(error = %e, "could not prune health buckets"),
        },
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not claim the health pruning"),
    }
}
