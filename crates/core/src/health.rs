//! Integration health: what is counted ([`tally`]) in the transactions that do the
//! counted work, how the stored aggregates read back ([`series`]), and how they become
//! each source's and destination's status ([`Inputs`]), and the alert rules, episodes
//! and notifications ([`alerts`]).
//!
//! The counts live in aggregates (scope, name, bucket, metric → value) at three bucket
//! widths, so reading a week or ninety days costs a few hundred rows however many leads
//! there are, and every instance reads the same numbers.

pub mod alerts;
pub mod series;
pub mod tally;

pub use series::{Query, Series, Sums};
pub use tally::{Attempt, Cell, ErrorClass, Level, Scope, Tally};

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// The windows health reports.
pub const HOUR: Duration = Duration::from_secs(3_600);
pub const DAY: Duration = Duration::from_secs(86_400);
pub const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// An integration's state at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Something failed lately, but not enough to alert.
    Warning,
    /// An alert fires for it.
    Failing,
    /// A source that sent nothing within its silence window (or never).
    Silent,
    /// A destination held back after failing again and again; it keeps queueing.
    Paused,
}

/// A destination's undelivered work, as the outbox holds it now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backlog {
    pub pending: u64,
    /// When the oldest pending delivery was queued.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub oldest_pending_at: Option<OffsetDateTime>,
    pub dead: u64,
    pub needs_data: u64,
}

/// Backlog counts stop here: counting a backlog reads its index entries, and past this
/// many the exact number changes nothing an operator does (the oldest age says how bad
/// it is). A count at the cap means that many or more.
pub const BACKLOG_CAP: u64 = 10_000;

/// What the store holds now beside the aggregates: per destination its backlog, per
/// source its quarantine and its pending submissions (leads a provider announced that
/// wait to be read from its API, or a batch source's rows waiting for their batch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlogs {
    pub destinations: BTreeMap<String, Backlog>,
    pub quarantine: BTreeMap<String, u64>,
    pub pending: BTreeMap<String, u64>,
    /// When the oldest pending submission was received.
    pub oldest_pending: BTreeMap<String, OffsetDateTime>,
}

/// A source's counts over one window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceCounts {
    pub received: u64,
    pub created: u64,
    pub merged: u64,
    pub quarantined: u64,
    /// Quarantined submissions by reason code (one submission may have several).
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub spam: u64,
    /// Requests refused as malformed: nothing was stored.
    pub rejected: u64,
    /// Requests refused for their credentials or signature.
    pub refused: u64,
    /// From the provider's submission time (where the provider gives one) to the lead
    /// settled in leadflow (the upper bound of its histogram bucket).
    pub capture_latency_p50_ms: Option<u64>,
    pub capture_latency_p95_ms: Option<u64>,
}

impl SourceCounts {
    fn of(sums: &Sums) -> Self {
        use tally::metric as m;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            received: sums.get(m::RECEIVED),
            created: sums.get(m::CREATED),
            merged: sums.get(m::MERGED),
            quarantined: sums.get(m::QUARANTINED),
            quarantined_by_reason: sums.parts(m::QUARANTINED),
            spam: sums.get(m::SPAM),
            rejected: sums.get(m::REJECTED),
            refused: sums.get(m::REFUSED),
            capture_latency_p50_ms: sums.quantile(m::CAPTURE_LATENCY, 0.5).map(ms),
            capture_latency_p95_ms: sums.quantile(m::CAPTURE_LATENCY, 0.95).map(ms),
        }
    }
}

/// A destination's counts over one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestinationCounts {
    pub attempts: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Failed tries by class: timeout, connect, auth, validation, rate_limited,
    /// server_error, other.
    pub failed_by_class: BTreeMap<String, u64>,
    pub dead: u64,
    pub needs_data: u64,
    /// Failed tries over tries; null without tries.
    pub error_rate: Option<f64>,
    /// From the change that made the delivery to its delivery, retries included (the upper
    /// bound of its histogram bucket).
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

impl DestinationCounts {
    fn of(sums: &Sums) -> Self {
        use tally::metric as m;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            attempts: sums.get(m::ATTEMPTS),
            delivered: sums.get(m::DELIVERED),
            failed: sums.get(m::FAILED),
            failed_by_class: sums.parts(m::FAILED),
            dead: sums.get(m::DEAD),
            needs_data: sums.get(m::NEEDS_DATA),
            error_rate: sums.error_rate(),
            latency_p50_ms: sums.latency(0.5).map(ms),
            latency_p95_ms: sums.latency(0.95).map(ms),
        }
    }
}

/// A source's counts over the last hour, day and week.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceWindows {
    pub hour: SourceCounts,
    pub day: SourceCounts,
    pub week: SourceCounts,
}

/// A destination's counts over the last hour, day and week.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestinationWindows {
    pub hour: DestinationCounts,
    pub day: DestinationCounts,
    pub week: DestinationCounts,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceHealth {
    pub name: String,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_received_at: Option<OffsetDateTime>,
    pub counts: SourceWindows,
    /// Submissions in the quarantine now.
    pub quarantine_backlog: u64,
    /// Submissions not settled yet: leads a provider announced that wait to be read from
    /// its API (Facebook, LinkedIn), or rows of a batch source waiting for their batch.
    pub pending: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub oldest_pending_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestinationHealth {
    pub name: String,
    pub status: Status,
    pub counts: DestinationWindows,
    pub backlog: Backlog,
}

/// Which alerts fire now, for the statuses: the scope and the rule's kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Firing(pub Vec<(Scope, String, String)>);

impl Firing {
    fn kinds<'a>(&'a self, scope: Scope, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(s, n, _)| *s == scope && n == name).map(|(_, _, k)| k.as_str())
    }
}

/// How long without a lead makes a source silent when no alert rule says otherwise.
pub const SILENCE: Duration = DAY;
/// How old the oldest pending delivery may grow before its destination warns.
pub const BACKLOG_AGE: Duration = Duration::from_secs(15 * 60);

/// The health of every configured source and destination (and of names that have counts
/// but are no longer configured, so history does not vanish with a rename).
pub struct Inputs<'a> {
    pub now: OffsetDateTime,
    pub sources: &'a [String],
    pub destinations: &'a [String],
    pub series: &'a Series,
    pub last_received: &'a BTreeMap<String, OffsetDateTime>,
    pub backlogs: &'a Backlogs,
    pub firing: &'a Firing,
    pub paused: &'a [String],
}

impl Inputs<'_> {
    pub fn source(&self, name: &str) -> SourceHealth {
        let counts = SourceWindows {
            hour: SourceCounts::of(&self.series.window(Scope::Source, name, self.now, HOUR)),
            day: SourceCounts::of(&self.series.window(Scope::Source, name, self.now, DAY)),
            week: SourceCounts::of(&self.series.window(Scope::Source, name, self.now, WEEK)),
        };
        let last = self.last_received.get(name).copied();
        let kinds: Vec<&str> = self.firing.kinds(Scope::Source, name).collect();
        let quiet =
            last.is_none_or(|at| self.now - at > time::Duration::try_from(SILENCE).unwrap_or(time::Duration::DAY));
        let h = &counts.hour;
        let troubled = h.quarantined + h.rejected + h.refused;
        let status = if kinds.contains(&"silence") {
            Status::Silent
        } else if !kinds.is_empty() {
            Status::Failing
        } else if quiet {
            Status::Silent
        } else if troubled > 0 && troubled * 20 >= h.received + h.rejected + h.refused {
            // One in twenty or more of the last hour's requests refused or quarantined.
            Status::Warning
        } else {
            Status::Ok
        };
        SourceHealth {
            name: name.to_owned(),
            status,
            last_received_at: last,
            counts,
            quarantine_backlog: self.backlogs.quarantine.get(name).copied().unwrap_or(0),
            pending: self.backlogs.pending.get(name).copied().unwrap_or(0),
            oldest_pending_at: self.backlogs.oldest_pending.get(name).copied(),
        }
    }

    pub fn destination(&self, name: &str) -> DestinationHealth {
        let counts = DestinationWindows {
            hour: DestinationCounts::of(&self.series.window(Scope::Destination, name, self.now, HOUR)),
            day: DestinationCounts::of(&self.series.window(Scope::Destination, name, self.now, DAY)),
            week: DestinationCounts::of(&self.series.window(Scope::Destination, name, self.now, WEEK)),
        };
        let backlog = self.backlogs.destinations.get(name).cloned().unwrap_or_default();
        let stale = backlog
            .oldest_pending_at
            .is_some_and(|at| self.now - at > time::Duration::try_from(BACKLOG_AGE).unwrap_or(time::Duration::HOUR));
        let status = if self.paused.iter().any(|p| p == name) {
            Status::Paused
        } else if self.firing.kinds(Scope::Destination, name).next().is_some() {
            Status::Failing
        } else if counts.hour.failed > 0 || backlog.dead > 0 || stale {
            Status::Warning
        } else {
            Status::Ok
        };
        DestinationHealth { name: name.to_owned(), status, counts, backlog }
    }

    pub fn sources(&self) -> Vec<SourceHealth> {
        self.names(Scope::Source, self.sources).iter().map(|n| self.source(n)).collect()
    }

    pub fn destinations(&self) -> Vec<DestinationHealth> {
        self.names(Scope::Destination, self.destinations).iter().map(|n| self.destination(n)).collect()
    }

    /// The configured names in their order, then names only the counts know.
    fn names(&self, scope: Scope, configured: &[String]) -> Vec<String> {
        let mut names = configured.to_vec();
        for n in self.series.names(scope) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn inputs<'a>(
        series: &'a Series,
        last: &'a BTreeMap<String, OffsetDateTime>,
        backlogs: &'a Backlogs,
        firing: &'a Firing,
        names: &'a [String],
    ) -> Inputs<'a> {
        Inputs {
            now: datetime!(2026-12-06 12:00 UTC),
            sources: names,
            destinations: names,
            series,
            last_received: last,
            backlogs,
            firing,
            paused: &[],
        }
    }

    #[test]
    fn a_source_is_silent_until_it_sends_and_warns_when_much_of_it_is_refused() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let names = ["web".to_owned()];
        let (backlogs, firing) = (Backlogs::default(), Firing::default());
        let (empty, none) = (Series::default(), BTreeMap::new());
        assert_eq!(inputs(&empty, &none, &backlogs, &firing, &names).source("web").status, Status::Silent);

        let mut t = Tally::default();
        for _ in 0..10 {
            t.received("web", now);
        }
        let last = BTreeMap::from([("web".to_owned(), now)]);
        let series = Series::new(t.cells());
        assert_eq!(inputs(&series, &last, &backlogs, &firing, &names).source("web").status, Status::Ok);
        t.add(Scope::Source, "web", tally::metric::REFUSED, now, 1);
        let series = Series::new(t.cells());
        let web = inputs(&series, &last, &backlogs, &firing, &names).source("web");
        assert_eq!((web.status, web.counts.hour.refused, web.counts.week.received), (Status::Warning, 1, 10));

        let firing = Firing(vec![(Scope::Source, "web".into(), "volume".into())]);
        assert_eq!(inputs(&series, &last, &backlogs, &firing, &names).source("web").status, Status::Failing);
    }

    #[test]
    fn a_destination_warns_on_failures_and_old_backlog_and_fails_with_an_alert() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let names = ["crm".to_owned()];
        let (none, firing) = (BTreeMap::new(), Firing::default());
        let mut t = Tally::default();
        t.attempt("crm", Attempt::Delivered { latency: Duration::from_secs(1) }, now);
        let series = Series::new(t.cells());
        let mut backlogs = Backlogs::default();
        assert_eq!(inputs(&series, &none, &backlogs, &firing, &names).destination("crm").status, Status::Ok);
        let old =
            Backlog { pending: 3, oldest_pending_at: Some(now - time::Duration::minutes(20)), ..Backlog::default() };
        backlogs.destinations.insert("crm".into(), old);
        assert_eq!(inputs(&series, &none, &backlogs, &firing, &names).destination("crm").status, Status::Warning);
        let firing = Firing(vec![(Scope::Destination, "crm".into(), "error_rate".into())]);
        let crm = inputs(&series, &none, &backlogs, &firing, &names).destination("crm");
        assert_eq!((crm.status, crm.counts.hour.latency_p50_ms), (Status::Failing, Some(1_000)));
    }
}
