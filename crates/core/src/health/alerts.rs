//! Alerts: rules read from `[alerts]` ([`config`]), evaluated against what health reads
//! ([`evaluate`] → one [`Condition`] per rule and name, holding or not), and the stored
//! episodes those conditions open, remind about and resolve ([`episodes::step`]), with
//! the notifications each channel gets exactly once per episode event.
//!
//! Everything here is pure: the app reads the aggregates [`AlertConfig::query`] asks for
//! and the backlogs, calls [`evaluate`] and [`episodes::step`], and writes the episodes
//! and notifications (through the outbox) in one transaction, claimed once per period.

pub mod config;
pub mod episodes;

pub use config::{AlertConfig, Channel, ChannelKind, Kind, Rule, RuleKey, Target, Threshold, default_rules};
pub use episodes::{Episode, Notification, Silence, State, Step, firing, step};

use super::series::Series;
use super::tally::{Level, Scope, metric};
use super::{Backlogs, HOUR};
use crate::config::format_duration;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// What an evaluation reads: the aggregates [`AlertConfig::query`] named, the configured
/// names, and what the store holds now.
pub struct Readings<'a> {
    pub series: &'a Series,
    /// Every configured source, and whether it is realtime.
    pub sources: &'a [(String, bool)],
    pub destinations: &'a [String],
    pub last_received: &'a BTreeMap<String, OffsetDateTime>,
    /// When each source received its first lead: a volume baseline needs four weeks of it.
    pub first_received: &'a BTreeMap<String, OffsetDateTime>,
    pub backlogs: &'a Backlogs,
    /// Per source, when its oldest pending provider fetch was announced.
    pub oldest_pending_fetch: &'a BTreeMap<String, OffsetDateTime>,
}

/// One rule on one name at one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub rule: RuleKey,
    pub kind: Kind,
    pub scope: (Scope, String),
    pub holds: bool,
    /// In the threshold's unit: a fraction (error_rate), seconds (latency, silence,
    /// pending_fetch), a count (backlog, volume: the last complete hour's leads).
    pub value: f64,
    /// The rule's threshold in that unit; for volume, the bound the count is compared
    /// with (below the baseline the low one, otherwise the high one).
    pub threshold: f64,
    pub message: String,
}

const WEEK_SECS: i64 = 7 * 86_400;

/// Every enabled rule on every name it watches. A `*` rule watches every configured name
/// of its scope except those a rule of the same kind names (a named rule, even switched
/// off, overrides `*` for its name). A rule that cannot judge yet (fewer tries than
/// `min_events`, a source that never received, a baseline younger than four weeks) gives
/// a condition that does not hold, so an episode it opened before still resolves.
pub fn evaluate(config: &AlertConfig, readings: &Readings, now: OffsetDateTime) -> Vec<Condition> {
    let mut out = Vec::new();
    for rule in config.enabled() {
        for name in names(config, rule, readings) {
            let (holds, value, threshold, message) = judge(rule, &name, readings, now);
            out.push(Condition {
                rule: rule.key.clone(),
                kind: rule.kind,
                scope: (rule.target.scope, name),
                holds,
                value,
                threshold,
                message,
            });
        }
    }
    out
}

fn names(config: &AlertConfig, rule: &Rule, r: &Readings) -> Vec<String> {
    if let Some(name) = &rule.target.name {
        return vec![name.clone()];
    }
    let named = |n: &str| {
        config
            .rules
            .iter()
            .any(|o| o.kind == rule.kind && o.target.scope == rule.target.scope && o.target.name.as_deref() == Some(n))
    };
    let all: Vec<&String> = match rule.target.scope {
        // A batch source's leads wait for their batch by design: only realtime sources
        // are held to a capture latency.
        Scope::Source if rule.kind == Kind::Latency => {
            r.sources.iter().filter(|(_, realtime)| *realtime).map(|(n, _)| n).collect()
        }
        Scope::Source => r.sources.iter().map(|(n, _)| n).collect(),
        Scope::Destination => r.destinations.iter().collect(),
    };
    all.into_iter().filter(|n| !named(n)).cloned().collect()
}

type Judgement = (bool, f64, f64, String);

fn judge(rule: &Rule, name: &str, r: &Readings, now: OffsetDateTime) -> Judgement {
    let t = rule.threshold.as_f64();
    let limit = match rule.threshold {
        config::Threshold::Duration(d) => d,
        _ => Duration::ZERO,
    };
    let window = rule.window.unwrap_or(HOUR);
    match rule.kind {
        Kind::ErrorRate => {
            let sums = r.series.window(Scope::Destination, name, now, window);
            let (tries, failed) = (sums.get(metric::ATTEMPTS), sums.get(metric::FAILED));
            let rate = sums.error_rate().unwrap_or(0.0);
            let w = format_duration(window);
            if tries < rule.min_events.max(1) {
                return (false, rate, t, format!("{tries} tries in {w}, fewer than the {} needed", rule.min_events));
            }
            let message = format!("{failed} of {tries} tries failed in {w} ({}, limit {})", percent(rate), percent(t));
            (rate > t, rate, t, message)
        }
        Kind::Latency => {
            let scope = rule.target.scope;
            let sums = r.series.window(scope, name, now, window);
            let (histogram, seen, what, counted) = match scope {
                Scope::Destination => {
                    (metric::LATENCY, sums.get(metric::DELIVERED), "from capture to delivery", "deliveries")
                }
                Scope::Source => (
                    metric::CAPTURE_LATENCY,
                    sums.parts(metric::CAPTURE_LATENCY).values().sum(),
                    "from the provider's submission to capture",
                    "leads with a provider time",
                ),
            };
            let w = format_duration(window);
            match sums.quantile(histogram, 0.95) {
                Some(p95) if seen >= rule.min_events => {
                    let message = format!(
                        "p95 latency {what} {} over {w} (limit {})",
                        format_duration(p95),
                        format_duration(limit)
                    );
                    (p95 > limit, p95.as_secs_f64(), t, message)
                }
                _ => (false, 0.0, t, format!("{seen} {counted} in {w}, too few for a latency")),
            }
        }
        Kind::Silence => match r.last_received.get(name) {
            Some(at) => {
                let quiet = elapsed(*at, now);
                let message = format!("no lead for {} (limit {})", format_duration(quiet), format_duration(limit));
                (quiet >= limit, quiet.as_secs_f64(), t, message)
            }
            None => (false, 0.0, t, "has not received a lead yet".to_owned()),
        },
        Kind::Volume => volume(rule, name, r, now),
        Kind::Backlog => {
            let (count, what) = match rule.target.scope {
                Scope::Source => (r.backlogs.quarantine.get(name).copied().unwrap_or(0), "quarantined submissions"),
                Scope::Destination => (r.backlogs.destinations.get(name).map_or(0, |b| b.dead), "dead letters"),
            };
            (count as f64 > t, count as f64, t, format!("{count} {what} (limit {t})"))
        }
        Kind::PendingFetch => match r.oldest_pending_fetch.get(name) {
            Some(at) => {
                let age = elapsed(*at, now);
                let message = format!(
                    "a lead has waited {} to be fetched from the provider (limit {})",
                    format_duration(age),
                    format_duration(limit)
                );
                (age > limit, age.as_secs_f64(), t, message)
            }
            None => (false, 0.0, t, "no fetch pending".to_owned()),
        },
    }
}

/// The last complete hour's leads against the median of the same hour of the week in
/// the four weeks before, so a quiet weekend night is compared with other weekend nights.
fn volume(rule: &Rule, name: &str, r: &Readings, now: OffsetDateTime) -> Judgement {
    let t = rule.threshold.as_f64();
    let hour = Level::Hour.bucket(now) - Level::Hour.seconds();
    let earliest = hour - 4 * WEEK_SECS;
    let counts = r.series.buckets(Scope::Source, name, metric::RECEIVED, Level::Hour, earliest);
    let count = counts.get(&hour).copied().unwrap_or(0) as f64;
    // Hours with no cell read as zero, which is only true once the source existed.
    let old_enough = r.first_received.get(name).is_some_and(|first| Level::Hour.bucket(*first) <= earliest);
    if !old_enough {
        return (false, count, t, "fewer than four weeks of history for a baseline".to_owned());
    }
    let mut weeks: Vec<u64> = (0..4).map(|k| counts.get(&(earliest + k * WEEK_SECS)).copied().unwrap_or(0)).collect();
    weeks.sort_unstable();
    let baseline = (weeks[1] + weeks[2]) as f64 / 2.0;
    let (low, high) = (baseline * (1.0 - t), baseline * (1.0 + t));
    let bound = if count <= baseline { low } else { high };
    if baseline == 0.0 || baseline < rule.min_events as f64 {
        return (false, count, bound, format!("a baseline of {baseline} leads in this hour is too small to judge"));
    }
    let holds = count < low || count > high;
    let how = if count < low {
        "a drop"
    } else if count > high {
        "a spike"
    } else {
        "within bounds"
    };
    let message = format!(
        "{count} leads in the last complete hour against a baseline of {baseline} (median of that hour in the last \
         four weeks): {how}"
    );
    (holds, count, bound, message)
}

fn elapsed(at: OffsetDateTime, now: OffsetDateTime) -> Duration {
    // Whole seconds: the messages read better and nothing here is finer.
    Duration::from_secs(Duration::try_from(now - at).unwrap_or(Duration::ZERO).as_secs())
}

fn percent(f: f64) -> String {
    format!("{:.1} %", f * 100.0)
}

#[cfg(test)]
mod tests;
