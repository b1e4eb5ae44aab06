//! Alert episodes: one per rule and scope from the evaluation its condition first held
//! until it has held false for keep-firing-for; and the notifications each event gives.
//!
//! [`step`] is the whole state machine. Its notification ids are derived from the
//! episode id, the event and the reminder number, so a store that writes them with the
//! episode, uniquely, sends each channel exactly one firing and one resolved notification
//! per episode however many instances evaluate or restart.
//!
//! A silenced scope still opens and resolves episodes, but its channels hear nothing new:
//! no firing and no reminder while the silence lasts. When the silence ends and the
//! episode still fires, the firing notification goes out then. An episode whose firing
//! was notified always notifies its resolution, silenced or not, so no channel is left
//! with an alert that never resolves; one that opened and resolved under a silence
//! notifies nothing.

use super::Condition;
use super::config::{AlertConfig, Kind, RuleKey};
use crate::health::Firing;
use crate::health::tally::Scope;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Firing,
    Resolved,
}

impl State {
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Firing, Self::Resolved].into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// A stored episode. Serialized as `GET /v1/alerts` lists it: `rule` is the rule's kind
/// (the contract), `rule_key` which configured rule it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// From the rule key, the scope and the start, so instances agree on it.
    pub id: String,
    #[serde(rename = "rule_key")]
    pub rule: RuleKey,
    #[serde(rename = "rule")]
    pub kind: Kind,
    /// `source:NAME` or `destination:NAME`.
    pub scope: String,
    pub state: State,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// The last evaluation its condition held; it resolves keep-firing-for after.
    #[serde(with = "time::serde::rfc3339")]
    pub last_held_at: OffsetDateTime,
    /// When the firing notification went out; `None` while a silence held it back.
    #[serde(with = "time::serde::rfc3339::option")]
    pub notified_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub reminded_at: Option<OffsetDateTime>,
    /// Reminders sent so far: the number in each reminder's notification id.
    pub reminders: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    pub acknowledged_by: Option<String>,
    /// The condition's value and threshold the last time it held.
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

impl Episode {
    fn open(c: &Condition, scope: String, now: OffsetDateTime) -> Self {
        Self {
            id: episode_id(&c.rule, &scope, now),
            rule: c.rule.clone(),
            kind: c.kind,
            scope,
            state: State::Firing,
            started_at: now,
            resolved_at: None,
            last_held_at: now,
            notified_at: None,
            reminded_at: None,
            reminders: 0,
            acknowledged_at: None,
            acknowledged_by: None,
            value: c.value,
            threshold: c.threshold,
            message: c.message.clone(),
        }
    }

    /// Stops the reminders of a firing episode; `false` when it is resolved or already
    /// acknowledged (the first acknowledgement is kept).
    pub fn acknowledge(&mut self, by: &str, now: OffsetDateTime) -> bool {
        if self.state != State::Firing || self.acknowledged_at.is_some() {
            return false;
        }
        self.acknowledged_at = Some(now);
        self.acknowledged_by = Some(by.to_owned());
        true
    }
}

/// `ep_` and 32 hex digits of SHA-256 over the rule key, the scope and the start in
/// milliseconds: safe in a URL, and the same on every instance.
pub fn episode_id(rule: &RuleKey, scope: &str, started_at: OffsetDateTime) -> String {
    let millis = started_at.unix_timestamp_nanos() / 1_000_000;
    let digest = Sha256::new()
        .chain_update(rule.as_str())
        .chain_update([0])
        .chain_update(scope)
        .chain_update([0])
        .chain_update(millis.to_string())
        .finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("ep_{hex}")
}

/// A scope's notifications held back until `until`. `scope` is `source:NAME`,
/// `destination:NAME`, or `source:*` / `destination:*` for every name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    pub scope: String,
    pub until: OffsetDateTime,
}

fn silenced(silences: &[Silence], scope: &str, now: OffsetDateTime) -> bool {
    let side = scope.split_once(':').map_or(scope, |(side, _)| side);
    silences.iter().any(|s| s.until > now && (s.scope == scope || s.scope == format!("{side}:*")))
}

/// One message to one channel about one episode event.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// `EPISODE.firing.CHANNEL`, `EPISODE.resolved.CHANNEL`, `EPISODE.reminder.N.CHANNEL`:
    /// unique per channel and event, and the Standard Webhooks `webhook-id`.
    pub id: String,
    pub channel: String,
    pub episode: String,
    /// `{"type": "alert.firing" | "alert.resolved" | "alert.reminder", "timestamp",
    /// "data": {id, rule, scope, state, started_at, resolved_at, value, threshold,
    /// message}}`.
    pub body: serde_json::Value,
}

/// What one evaluation changes: episodes to insert, episodes to update, notifications to
/// queue, all in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    pub opened: Vec<Episode>,
    pub updated: Vec<Episode>,
    pub notifications: Vec<Notification>,
}

#[derive(Clone, Copy)]
enum Event {
    Firing,
    Resolved,
    Reminder(u32),
}

/// Moves the firing episodes `open` on by this evaluation's `conditions`. A holding
/// condition opens an episode (or refreshes its open one); one that has not held for
/// keep-firing-for resolves it; a firing, unacknowledged episode is reminded about every
/// `remind_every`. An open episode no condition speaks for (its rule removed or switched
/// off, its name no longer configured) counts as not holding, so it resolves too.
/// Resolved episodes in `open` are ignored.
pub fn step(
    open: &[Episode],
    conditions: &[Condition],
    silences: &[Silence],
    config: &AlertConfig,
    now: OffsetDateTime,
) -> Step {
    let mut out = Step::default();
    let mut seen: Vec<(&RuleKey, String)> = Vec::new();
    let firing = |rule: &RuleKey, scope: &str| {
        open.iter().find(|e| e.state == State::Firing && &e.rule == rule && e.scope == scope)
    };
    for c in conditions {
        let scope = format!("{}:{}", c.scope.0, c.scope.1);
        if seen.iter().any(|(r, s)| *r == &c.rule && *s == scope) {
            continue;
        }
        let quiet = silenced(silences, &scope, now);
        match firing(&c.rule, &scope) {
            Some(e) => advance(e, Some(c), quiet, config, now, &mut out),
            None if c.holds => {
                let mut e = Episode::open(c, scope.clone(), now);
                if !quiet {
                    e.notified_at = Some(now);
                    notify(&e, Event::Firing, config, now, &mut out);
                }
                out.opened.push(e);
            }
            None => {}
        }
        seen.push((&c.rule, scope));
    }
    for e in open.iter().filter(|e| e.state == State::Firing) {
        if !seen.iter().any(|(r, s)| *r == &e.rule && *s == e.scope) {
            let quiet = silenced(silences, &e.scope, now);
            advance(e, None, quiet, config, now, &mut out);
        }
    }
    out
}

/// One firing episode at this evaluation; pushed to `updated` when anything changed.
fn advance(e: &Episode, c: Option<&Condition>, quiet: bool, config: &AlertConfig, now: OffsetDateTime, out: &mut Step) {
    let mut next = e.clone();
    match c.filter(|c| c.holds) {
        Some(c) => {
            next.last_held_at = now;
            next.value = c.value;
            next.threshold = c.threshold;
            next.message.clone_from(&c.message);
        }
        None => {
            let keep = time::Duration::try_from(config.keep_firing_for(&e.rule)).unwrap_or(time::Duration::MAX);
            if now - e.last_held_at >= keep {
                next.state = State::Resolved;
                next.resolved_at = Some(now);
                if next.notified_at.is_some() {
                    notify(&next, Event::Resolved, config, now, out);
                }
                out.updated.push(next);
                return;
            }
        }
    }
    if !quiet {
        match next.notified_at {
            None => {
                next.notified_at = Some(now);
                notify(&next, Event::Firing, config, now, out);
            }
            Some(notified)
                if next.acknowledged_at.is_none()
                    && due(next.reminded_at.unwrap_or(notified), config.remind_every, now) =>
            {
                next.reminders += 1;
                next.reminded_at = Some(now);
                notify(&next, Event::Reminder(next.reminders), config, now, out);
            }
            Some(_) => {}
        }
    }
    if next != *e {
        out.updated.push(next);
    }
}

fn due(since: OffsetDateTime, every: Duration, now: OffsetDateTime) -> bool {
    !every.is_zero() && time::Duration::try_from(every).is_ok_and(|every| now - since >= every)
}

/// One notification per channel.
fn notify(e: &Episode, event: Event, config: &AlertConfig, now: OffsetDateTime, out: &mut Step) {
    let (kind, suffix) = match event {
        Event::Firing => ("alert.firing", "firing".to_owned()),
        Event::Resolved => ("alert.resolved", "resolved".to_owned()),
        Event::Reminder(n) => ("alert.reminder", format!("reminder.{n}")),
    };
    let body = json!({
        "type": kind,
        "timestamp": rfc3339(now),
        "data": {
            "id": e.id,
            "rule": e.kind,
            "scope": e.scope,
            "state": e.state,
            "started_at": rfc3339(e.started_at),
            "resolved_at": e.resolved_at.map(rfc3339),
            "value": e.value,
            "threshold": e.threshold,
            "message": e.message,
        },
    });
    for channel in &config.channels {
        out.notifications.push(Notification {
            id: format!("{}.{suffix}.{}", e.id, channel.name),
            channel: channel.name.clone(),
            episode: e.id.clone(),
            body: body.clone(),
        });
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    // Formatting a UTC or offset time as RFC 3339 fails only for years outside 0..=9999.
    at.format(&Rfc3339).unwrap_or_default()
}

/// The firing episodes as health's statuses read them.
pub fn firing(episodes: &[Episode]) -> Firing {
    Firing(
        episodes
            .iter()
            .filter(|e| e.state == State::Firing)
            .filter_map(|e| {
                let (scope, name) = e.scope.split_once(':')?;
                Some((Scope::parse(scope)?, name.to_owned(), e.kind.as_str().to_owned()))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
