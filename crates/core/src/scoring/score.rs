//! Scoring one lead: every rule against the lead's attributes and events, the
//! data-quality gate, and the breakdown that says which rule gave how many points.
//!
//! Pure and total: any lead and any events give a score, never an error or a panic.
//! Behavioural points are summed per rule as floating point (decay makes fractions),
//! capped per rule, and only the total is rounded, so rounding never compounds.

use crate::scoring::glob::find_ignore_case;
use crate::scoring::rules::{Condition, EventCondition, EventRule, RuleBody, Scalar, ScalarSet, ScoringConfig, Test};
use crate::scoring::view::{EventView, LeadView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The sum of the breakdown's unrounded points, rounded half away from zero.
    pub total: i64,
    /// The rules that gave or took points, in configuration order.
    pub breakdown: Vec<RuleScore>,
    pub gate: GateResult,
    /// The total reached the MQL threshold but the gate failed: the lead is held back
    /// from MQL (and from handoff) until its data is completed.
    pub flagged: bool,
    /// How many behavioural events the lead had when scored (matching or not).
    pub events_seen: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    pub rule: Arc<str>,
    /// After decay and cap, to two decimals.
    pub points: f64,
    /// The cap cut the points down.
    pub capped: bool,
    /// Events that matched an event rule; 0 for a lead rule.
    pub events: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    pub passed: bool,
    /// The gate entries the lead lacks, as written (`email|phone`).
    pub missing: Vec<String>,
}

/// Per event rule, what the events added up to.
#[derive(Clone, Copy, Default)]
struct Tally {
    sum: f64,
    count: u32,
    /// The largest decay factor among the matching events: the newest one's.
    newest: f64,
}

/// Scores `lead` with its `events` as of `now`. Events after `now` (clock skew) count
/// as happening at `now`.
pub fn score<L: LeadView + ?Sized>(
    config: &ScoringConfig,
    lead: &L,
    events: &[EventView],
    now: OffsetDateTime,
) -> Score {
    let tallies = tally_events(config, events, now);
    let mut breakdown = Vec::new();
    let mut sum = 0.0;
    for (rule, tally) in config.rules.iter().zip(&tallies) {
        let (points, capped, matched) = match &rule.body {
            RuleBody::Lead(condition) => {
                if !condition.eval(lead) {
                    continue;
                }
                (rule.points, false, 0)
            }
            RuleBody::Events(r) => {
                if tally.count == 0 || tally.count < r.when.min_count {
                    continue;
                }
                let raw = if r.once { rule.points * tally.newest } else { tally.sum };
                match r.cap {
                    Some(cap) if raw.abs() > cap => (cap.copysign(raw), true, tally.count),
                    _ => (raw, false, tally.count),
                }
            }
        };
        sum += points;
        breakdown.push(RuleScore { rule: Arc::clone(&rule.name), points: round2(points), capped, events: matched });
    }
    let total = sum.round() as i64;
    let gate = gate(config, lead);
    Score {
        total,
        breakdown,
        flagged: total >= config.mql_threshold && !gate.passed,
        gate,
        events_seen: u32::try_from(events.len()).unwrap_or(u32::MAX),
    }
}

/// One pass over the events for all event rules. An event's age and decay factor are
/// computed at most once, and only when some rule's type, URL and properties match it.
fn tally_events(config: &ScoringConfig, events: &[EventView], now: OffsetDateTime) -> Vec<Tally> {
    let mut tallies = vec![Tally::default(); config.rules.len()];
    let half_life = config.half_life_secs();
    // Whole seconds and nanoseconds apart: cheaper than `OffsetDateTime` subtraction,
    // which normalizes both offsets for every event.
    let now_secs = now.unix_timestamp();
    let now_nanos = f64::from(now.nanosecond());
    // Only the event rules, so the per-event loop skips nothing.
    let event_rules: Vec<(usize, f64, &EventRule)> = config
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| match &rule.body {
            RuleBody::Events(r) => Some((i, rule.points, r)),
            RuleBody::Lead(_) => None,
        })
        .collect();
    for event in events {
        let mut age: Option<f64> = None;
        let mut factor: Option<f64> = None;
        for &(i, points, r) in &event_rules {
            if !r.when.matches_event(event) {
                continue;
            }
            let age = *age.get_or_insert_with(|| {
                let secs = now_secs.saturating_sub(event.at.unix_timestamp()) as f64;
                (secs + (now_nanos - f64::from(event.at.nanosecond())) / 1e9).max(0.0)
            });
            if r.when.within_secs.is_some_and(|w| age > w) {
                continue;
            }
            let weight = if r.decay { *factor.get_or_insert_with(|| (-age / half_life).exp2()) } else { 1.0 };
            let tally = &mut tallies[i];
            tally.count += 1;
            tally.sum += points * weight;
            tally.newest = tally.newest.max(weight);
        }
    }
    tallies
}

fn gate<L: LeadView + ?Sized>(config: &ScoringConfig, lead: &L) -> GateResult {
    let missing: Vec<String> = config
        .gate
        .iter()
        .filter(|g| !g.alternatives.iter().any(|f| lead.field(f).is_some_and(has_content)))
        .map(|g| g.label())
        .collect();
    GateResult { passed: missing.is_empty(), missing }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl EventCondition {
    /// Type, URL and properties; the time window is checked by the caller, which knows
    /// the event's age.
    fn matches_event(&self, event: &EventView) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| **k == *event.kind))
            && self.url.as_ref().is_none_or(|g| event.url.as_deref().is_some_and(|u| g.matches(u)))
            && self.properties.as_ref().is_none_or(|c| c.eval(&event.properties))
    }
}

impl Condition {
    pub fn eval<L: LeadView + ?Sized>(&self, lead: &L) -> bool {
        match self {
            Self::Test { field, test } => test.eval(lead.field(field).filter(|v| !v.is_null())),
            Self::All(parts) => parts.iter().all(|c| c.eval(lead)),
            Self::Any(parts) => parts.iter().any(|c| c.eval(lead)),
            Self::Not(inner) => !inner.eval(lead),
        }
    }
}

impl Test {
    /// `value` is `None` when the attribute is absent or null. A list value (a
    /// multi-select custom field) passes when any element does; `not_in` when none is in.
    fn eval(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else { return matches!(self, Self::Exists(false)) };
        match self {
            Self::Exists(want) => has_content(value) == *want,
            Self::NotIn(set) => has_content(value) && !any_element(value, |v| set.contains(v)),
            Self::Is(s) => any_element(value, |v| scalar_eq(s, v)),
            Self::In(set) => any_element(value, |v| set.contains(v)),
            Self::Range { gte, lte } => any_element(value, |v| {
                number(v).is_some_and(|n| gte.is_none_or(|g| n >= g) && lte.is_none_or(|l| n <= l))
            }),
            Self::Contains(needle) => {
                any_element(value, |v| v.as_str().is_some_and(|s| contains_ignore_case(s, needle)))
            }
            Self::Matches(glob) => any_element(value, |v| v.as_str().is_some_and(|s| glob.matches(s))),
        }
    }
}

fn any_element(value: &Value, test: impl Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(test),
        other => test(other),
    }
}

/// Present in a way a person would call filled in: not blank text, not an empty list.
fn has_content(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A JSON number, or text that reads as one (`"250"`), since forms send numbers as text.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scalar_eq(s: &Scalar, value: &Value) -> bool {
    match s {
        Scalar::Text(t) => value.as_str().is_some_and(|v| v.eq_ignore_ascii_case(t)),
        Scalar::Number(n) => number(value) == Some(*n),
        Scalar::Bool(b) => value.as_bool() == Some(*b),
    }
}

impl ScalarSet {
    fn contains(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => {
                let key: Cow<'_, str> = if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(s.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(s)
                };
                self.texts.binary_search_by(|t| (**t).cmp(&*key)).is_ok()
                    || (!self.numbers.is_empty() && number(value).is_some_and(|n| self.numbers.contains(&n)))
            }
            Value::Number(_) => number(value).is_some_and(|n| self.numbers.contains(&n)),
            Value::Bool(b) => self.bools.contains(b),
            _ => false,
        }
    }
}

/// `needle` is already lower case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    find_ignore_case(haystack.as_bytes(), needle.as_bytes()).is_some()
}
