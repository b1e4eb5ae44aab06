//! The stored aggregates as read back: sums over a window, the latency quantiles, daily
//! series. What to read is decided here too ([`Query`]), so a store only runs range reads.

use super::tally::{Cell, LATENCY_BOUNDS_MS, Level, Scope, metric};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Which cells to read: of each level, the buckets starting at or after its bound (Unix
/// seconds), optionally of one scope only; and single metrics read further back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub since: Vec<(Level, i64)>,
    pub only: Option<(Scope, String)>,
    pub back: Vec<Back>,
}

/// One metric of one scope read further back than the windows: the buckets of `level`
/// from `from` up to where [`Query::since`] reads that level (so no cell is read twice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Back {
    pub level: Level,
    pub from: i64,
    pub until: i64,
    pub scope: Scope,
    pub metric: &'static str,
}

impl Query {
    /// What windows of these lengths ending at `now` need: for each, the level that reads it
    /// ([`Level::for_window`]) from the bucket holding its start.
    pub fn windows(now: OffsetDateTime, windows: &[Duration]) -> Self {
        let mut since: BTreeMap<Level, i64> = BTreeMap::new();
        for w in windows {
            let level = Level::for_window(*w);
            let from = window_start(level, now, *w);
            let bound = since.entry(level).or_insert(from);
            *bound = (*bound).min(from);
        }
        Self { since: since.into_iter().collect(), only: None, back: Vec::new() }
    }

    /// Also `metric` of `scope` in the buckets of `level` from `from` on: a long history of
    /// one metric (the hour-of-week baselines read only `received`).
    pub fn with_metric_since(mut self, level: Level, from: i64, scope: Scope, metric: &'static str) -> Self {
        let until = self.since.iter().find(|(l, _)| *l == level).map_or(i64::MAX, |(_, b)| *b);
        if from < until {
            self.back.push(Back { level, from, until, scope, metric });
        }
        self
    }

    pub fn only(mut self, scope: Scope, name: &str) -> Self {
        self.only = Some((scope, name.to_owned()));
        self
    }

    /// Also the buckets of `level` from `from` (Unix seconds) on, e.g. the hour buckets
    /// an hour-of-week baseline reads.
    pub fn with_since(mut self, level: Level, from: i64) -> Self {
        match self.since.iter_mut().find(|(l, _)| *l == level) {
            Some((_, bound)) => *bound = (*bound).min(from),
            None => {
                self.since.push((level, from));
                self.since.sort_unstable();
            }
        }
        self
    }

    /// Also the day buckets of the last `days` days (the daily series).
    pub fn with_days(mut self, now: OffsetDateTime, days: u32) -> Self {
        let from = Level::Day.bucket(now) - i64::from(days.saturating_sub(1)) * Level::Day.seconds();
        match self.since.iter_mut().find(|(l, _)| *l == Level::Day) {
            Some((_, bound)) => *bound = (*bound).min(from),
            None => self.since.push((Level::Day, from)),
        }
        self
    }
}

/// The first bucket a window ending at `now` reads: the one holding its start.
fn window_start(level: Level, now: OffsetDateTime, window: Duration) -> i64 {
    let secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 2);
    level.bucket(now - time::Duration::seconds(secs))
}

/// Cells read back.
#[derive(Clone, Debug, Default)]
pub struct Series {
    cells: Vec<Cell>,
}

/// Sums by metric over one window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sums(BTreeMap<String, u64>);

impl Sums {
    pub fn get(&self, metric: &str) -> u64 {
        self.0.get(metric).copied().unwrap_or(0)
    }

    /// The `prefix.<part>` metrics, by part (reasons, error classes).
    pub fn parts(&self, prefix: &str) -> BTreeMap<String, u64> {
        let dotted = format!("{prefix}.");
        self.0
            .iter()
            .filter_map(|(m, v)| m.strip_prefix(&dotted).map(|part| (part.to_owned(), *v)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    /// Failed tries over tries; `None` without tries.
    pub fn error_rate(&self) -> Option<f64> {
        let attempts = self.get(metric::ATTEMPTS);
        (attempts > 0).then(|| self.get(metric::FAILED) as f64 / attempts as f64)
    }

    /// The `q` quantile (0..1) of the latency histogram: the upper bound of the bucket it
    /// falls in; `None` without deliveries. The last bucket has no bound: it reads as a day.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        self.quantile(metric::LATENCY, q)
    }

    /// [`Sums::latency`] of another histogram in the same buckets (`capture_latency`).
    pub fn quantile(&self, histogram: &str, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = (0..=LATENCY_BOUNDS_MS.len()).map(|i| self.get(&format!("{histogram}.{i}"))).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let last = LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1];
                return Some(Duration::from_millis(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(last)));
            }
        }
        None
    }
}

impl Series {
    pub fn new(cells: Vec<Cell>) -> Self {
        Self { cells }
    }

    /// The sums for `name` over the window of length `window` ending at `now`, read from
    /// whole buckets of the window's level.
    pub fn window(&self, scope: Scope, name: &str, now: OffsetDateTime, window: Duration) -> Sums {
        let level = Level::for_window(window);
        let from = window_start(level, now, window);
        let mut sums = BTreeMap::new();
        for c in self.of(scope, name).filter(|c| c.level == level && c.bucket >= from) {
            *sums.entry(c.metric.clone()).or_default() += c.value;
        }
        Sums(sums)
    }

    /// `metric` per day for the last `days` days, oldest first, zero where nothing came.
    pub fn daily(&self, scope: Scope, name: &str, metric: &str, now: OffsetDateTime, days: u32) -> Vec<(i64, u64)> {
        let today = Level::Day.bucket(now);
        let mut out: Vec<(i64, u64)> =
            (0..i64::from(days)).rev().map(|back| (today - back * Level::Day.seconds(), 0)).collect();
        for c in self.of(scope, name).filter(|c| c.level == Level::Day && c.metric == metric) {
            if let Some(slot) = out.iter_mut().find(|(day, _)| *day == c.bucket) {
                slot.1 += c.value;
            }
        }
        out
    }

    /// `metric` per bucket of `level` from `from` (Unix seconds), zero where nothing came.
    pub fn buckets(&self, scope: Scope, name: &str, metric: &str, level: Level, from: i64) -> BTreeMap<i64, u64> {
        let mut out = BTreeMap::new();
        for c in self.of(scope, name).filter(|c| c.level == level && c.metric == metric && c.bucket >= from) {
            *out.entry(c.bucket).or_default() += c.value;
        }
        out
    }

    /// Every name of the scope that has cells.
    pub fn names(&self, scope: Scope) -> Vec<String> {
        let mut names: Vec<String> = self.cells.iter().filter(|c| c.scope == scope).map(|c| c.name.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    fn of<'a>(&'a self, scope: Scope, name: &'a str) -> impl Iterator<Item = &'a Cell> + 'a {
        self.cells.iter().filter(move |c| c.scope == scope && c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::tally::{Attempt, ErrorClass, Tally};
    use time::macros::datetime;

    fn series(t: &Tally) -> Series {
        Series::new(t.cells())
    }

    #[test]
    fn a_window_sums_only_its_buckets() {
        let now = datetime!(2026-12-06 12:00:30 UTC);
        let mut t = Tally::default();
        t.received("web", now - time::Duration::minutes(90));
        t.received("web", now - time::Duration::minutes(30));
        t.received("web", now);
        let s = series(&t);
        assert_eq!(s.window(Scope::Source, "web", now, Duration::from_secs(3_600)).get("received"), 2);
        assert_eq!(s.window(Scope::Source, "web", now, Duration::from_secs(86_400)).get("received"), 3);
        assert_eq!(s.window(Scope::Source, "other", now, Duration::from_secs(86_400)).get("received"), 0);
        let q = Query::windows(now, &[Duration::from_secs(3_600), Duration::from_secs(86_400)]);
        assert_eq!(
            q.since,
            [(Level::Minute, Level::Minute.bucket(now) - 3_600), (Level::Hour, Level::Hour.bucket(now) - 86_400)]
        );
    }

    #[test]
    fn error_rate_classes_and_latency_quantiles_come_from_the_sums() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let mut t = Tally::default();
        for ms in [50, 200, 200, 400, 4_000, 4_000, 4_000, 4_000, 4_000, 90_000] {
            t.attempt("crm", Attempt::Delivered { latency: Duration::from_millis(ms) }, now);
        }
        t.attempt("crm", Attempt::Failed { class: ErrorClass::Timeout, dead: false }, now);
        t.attempt("crm", Attempt::Failed { class: ErrorClass::Auth, dead: true }, now);
        let sums = series(&t).window(Scope::Destination, "crm", now, Duration::from_secs(3_600));
        assert_eq!(sums.get("attempts"), 12);
        assert_eq!(sums.get("dead"), 1);
        assert_eq!(sums.error_rate(), Some(2.0 / 12.0));
        assert_eq!(sums.parts("failed").into_iter().collect::<Vec<_>>(), [("auth".into(), 1), ("timeout".into(), 1)]);
        assert_eq!(sums.latency(0.5), Some(Duration::from_millis(5_000)));
        assert_eq!(sums.latency(0.95), Some(Duration::from_millis(120_000)));
        assert_eq!(Sums::default().latency(0.5), None);
    }

    #[test]
    fn a_daily_series_has_a_slot_for_every_day() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let mut t = Tally::default();
        t.received("web", now - time::Duration::days(2));
        t.received("web", now);
        t.received("web", now);
        let days = series(&t).daily(Scope::Source, "web", "received", now, 4);
        assert_eq!(days.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [0, 1, 0, 2]);
    }
}
