//! `[alerts]`: how often rules are evaluated, how long a rule must hold false before its
//! episode resolves, the rules and the channels told about them. Read after the sources
//! and destinations, so a scope naming neither is reported at its key. Without a section,
//! or without rules of a kind, the seeds' defaults apply ([`default_rules`]).

use crate::config::read::{Problems, span};
use crate::email::Email;
use crate::health::series::Query;
use crate::health::tally::{Level, Scope};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use toml_edit::{Item, Table};

/// What a rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A destination's failed tries over its tries in a window.
    ErrorRate,
    /// A source that received once and then nothing for a while.
    Silence,
    /// A destination's p95 latency from capture to delivery over a window.
    Latency,
    /// A source's last complete hour against its own hour-of-week baseline.
    Volume,
    /// A source's quarantine, or a destination's dead letters, now.
    Backlog,
    /// A source's oldest lead announced by the provider and not yet read from its API.
    PendingFetch,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Self::ErrorRate, Self::Silence, Self::Latency, Self::Volume, Self::Backlog, Self::PendingFetch];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::Silence => "silence",
            Self::Latency => "latency",
            Self::Volume => "volume",
            Self::Backlog => "backlog",
            Self::PendingFetch => "pending_fetch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a rule of this kind can watch `scope`: only sources receive and fetch,
    /// only destinations are tried; a backlog is either.
    pub fn fits(self, scope: Scope) -> bool {
        match self {
            Self::Silence | Self::Volume | Self::PendingFetch => scope == Scope::Source,
            Self::ErrorRate => scope == Scope::Destination,
            // A destination's from change to delivery; a source's from the provider's
            // submission time to capture (realtime sources, where the provider gives one).
            Self::Latency | Self::Backlog => true,
        }
    }

    /// The keys a rule of this kind takes besides kind, scope, enabled, keep_firing_for.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::ErrorRate | Self::Latency => &["threshold", "window", "min_events"],
            Self::Silence => &["window"],
            Self::Volume => &["threshold", "min_events"],
            Self::Backlog | Self::PendingFetch => &["threshold"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies a rule across evaluations: its kind and its index among the rules of that
/// kind written in the file (`error_rate#0`), or `KIND#default-SCOPE` for a default.
/// Episodes are keyed by it, so reordering rules of one kind in the file starts new ones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleKey(pub String);

impl RuleKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The names a rule watches: one source or destination, or all of them (`*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub scope: Scope,
    /// `None`: every configured name of the scope.
    pub name: Option<String>,
}

impl Target {
    pub fn all(scope: Scope) -> Self {
        Self { scope, name: None }
    }

    /// `source:NAME`, `destination:NAME`, `source:*`, `destination:*`.
    pub fn parse(s: &str) -> Option<Self> {
        let (scope, name) = s.split_once(':')?;
        let scope = Scope::parse(scope)?;
        match name {
            "*" => Some(Self::all(scope)),
            "" => None,
            name => Some(Self { scope, name: Some(name.to_owned()) }),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scope, self.name.as_deref().unwrap_or("*"))
    }
}

/// A rule's threshold in its kind's unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// error_rate: the rate above which it holds; volume: how far from the baseline.
    Fraction(f64),
    /// latency: the p95 above which it holds; pending_fetch: the age; silence: its window.
    Duration(Duration),
    /// backlog: the count above which it holds.
    Count(u64),
}

impl Threshold {
    /// As [`super::Condition::threshold`] reports it: a fraction, seconds or a count.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Fraction(f) => f,
            Self::Duration(d) => d.as_secs_f64(),
            Self::Count(n) => n as f64,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub key: RuleKey,
    pub kind: Kind,
    pub target: Target,
    pub threshold: Threshold,
    /// The window summed (error_rate, latency); the kinds that read a state now (or an
    /// hour against its baseline) have none.
    pub window: Option<Duration>,
    /// error_rate: tries, latency: deliveries in the window, volume: the baseline, below
    /// which the rule does not hold.
    pub min_events: u64,
    pub enabled: bool,
    /// Overrides [`AlertConfig::keep_firing_for`].
    pub keep_firing_for: Option<Duration>,
}

impl Rule {
    fn new(key: String, kind: Kind, target: Target) -> Self {
        let (threshold, window, min_events) = match kind {
            Kind::ErrorRate => (Threshold::Fraction(0.05), Some(HOUR), 20),
            Kind::Silence => (Threshold::Duration(DAY), None, 0),
            Kind::Latency => (Threshold::Duration(Duration::from_secs(15 * 60)), Some(HOUR), 1),
            Kind::Volume => (Threshold::Fraction(0.5), None, 0),
            Kind::Backlog => (Threshold::Count(100), None, 0),
            Kind::PendingFetch => (Threshold::Duration(HOUR), None, 0),
        };
        Self { key: RuleKey(key), kind, target, threshold, window, min_events, enabled: true, keep_firing_for: None }
    }

    /// The default rule of `kind` over every name of `scope`.
    fn default_for(kind: Kind, scope: Scope) -> Self {
        Self::new(format!("{kind}#default-{scope}"), kind, Target::all(scope))
    }
}

const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);
const WEEK_SECS: i64 = 7 * 86_400;

/// The seeds' rules: error rate above 5 % over an hour with at least 20 tries, a day of
/// silence, p95 latency above 15 minutes (a destination's from the change to delivery, a
/// realtime source's from the provider's submission to capture), volume half or one and a half times the
/// hour-of-week baseline, more than 100 dead letters or quarantined submissions, a fetch
/// pending for an hour.
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::default_for(Kind::ErrorRate, Scope::Destination),
        Rule::default_for(Kind::Silence, Scope::Source),
        Rule::default_for(Kind::Latency, Scope::Destination),
        Rule::default_for(Kind::Latency, Scope::Source),
        Rule::default_for(Kind::Volume, Scope::Source),
        Rule::default_for(Kind::Backlog, Scope::Destination),
        Rule::default_for(Kind::Backlog, Scope::Source),
        Rule::default_for(Kind::PendingFetch, Scope::Source),
    ]
}

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
}

/// A channel's type and settings; secrets are the names of environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// Standard Webhooks-signed POSTs; the variable holds a `whsec_` secret.
    Webhook { url: String, secret_env: String },
    /// A Slack incoming webhook, whose URL is itself the secret.
    Slack { url_env: String },
    /// Mail over SMTP; the variable holds the `smtp://` or `smtps://` URL with credentials.
    Email { to: Vec<Email>, from: Email, smtp_url_env: String },
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Email { .. } => "email",
        }
    }
}

/// `[alerts]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    pub evaluate_every: Duration,
    /// How long a rule must hold false before its episode resolves, so a rule that flaps
    /// around its threshold keeps one episode instead of opening one per evaluation.
    pub keep_firing_for: Duration,
    /// How often a firing, unacknowledged episode is notified again; zero: never.
    pub remind_every: Duration,
    /// Rules written in the file, then the defaults no written rule replaced.
    pub rules: Vec<Rule>,
    pub channels: Vec<Channel>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            evaluate_every: Duration::from_secs(30),
            keep_firing_for: Duration::from_secs(600),
            remind_every: Duration::from_secs(4 * 3_600),
            rules: default_rules(),
            channels: Vec::new(),
        }
    }
}

impl AlertConfig {
    pub fn rule(&self, key: &RuleKey) -> Option<&Rule> {
        self.rules.iter().find(|r| &r.key == key)
    }

    /// The rule's own keep-firing-for, or the section's (also for a rule no longer
    /// configured, whose episodes still resolve).
    pub fn keep_firing_for(&self, key: &RuleKey) -> Duration {
        self.rule(key).and_then(|r| r.keep_firing_for).unwrap_or(self.keep_firing_for)
    }

    pub fn enabled(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }

    /// The aggregates an evaluation at `now` reads: every enabled rule's window, and five
    /// weeks of hour buckets when a volume rule is on (the last complete hour and the same
    /// hour in each of the four weeks before).
    pub fn query(&self, now: time::OffsetDateTime) -> Query {
        let windows: Vec<Duration> = self.enabled().filter_map(|r| r.window).collect();
        let query = Query::windows(now, &windows);
        if self.enabled().any(|r| r.kind == Kind::Volume) {
            let from = Level::Hour.bucket(now) - 5 * WEEK_SECS;
            query.with_metric_since(Level::Hour, from, Scope::Source, crate::health::tally::metric::RECEIVED)
        } else {
            query
        }
    }
}

/// `[alerts]`, over the defaults. A rule written in the file replaces the default of its
/// kind for the same side (sources or destinations) only when it watches every name
/// (`*`); a rule naming one source or destination overrides any `*` rule of its kind for
/// that name alone (see [`super::evaluate`]). So a file with one rule keeps every other
/// default, and `enabled = false` on `source:NAME` switches a kind off for one source.
pub(crate) fn read(p: &mut Problems, item: &Item, sources: &[&str], destinations: &[&str]) -> AlertConfig {
    let mut config = AlertConfig::default();
    let Some(t) = p.table(item, "alerts") else { return config };
    let mut written = Vec::new();
    for (key, item) in t.iter() {
        let path = format!("alerts.{key}");
        match key {
            "evaluate_every" | "remind_every" | "keep_firing_for" => {
                let Some(d) = p.duration(item, &path) else { continue };
                match key {
                    "evaluate_every" if d.is_zero() => p.push(span(item), &path, "must be longer than 0s"),
                    "evaluate_every" => config.evaluate_every = d,
                    "remind_every" => config.remind_every = d,
                    _ => config.keep_firing_for = d,
                }
            }
            "rules" => match item.as_array_of_tables() {
                Some(array) => {
                    let mut per_kind = [0usize; Kind::ALL.len()];
                    for (i, t) in array.iter().enumerate() {
                        if let Some(rule) = read_rule(p, i, t, sources, destinations, &mut per_kind) {
                            written.push(rule);
                        }
                    }
                }
                None => p.push(span(item), &path, "must be an array of tables: [[alerts.rules]]"),
            },
            "channels" => match item.as_array_of_tables() {
                Some(array) => {
                    let mut names = Vec::new();
                    for (i, t) in array.iter().enumerate() {
                        if let Some(channel) = read_channel(p, i, t, &mut names) {
                            config.channels.push(channel);
                        }
                    }
                }
                None => p.push(span(item), &path, "must be an array of tables: [[alerts.channels]]"),
            },
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    let replaced = |d: &Rule| {
        written.iter().any(|w| w.kind == d.kind && w.target.scope == d.target.scope && w.target.name.is_none())
    };
    let defaults: Vec<Rule> = config.rules.drain(..).filter(|d| !replaced(d)).collect();
    config.rules = written;
    config.rules.extend(defaults);
    config
}

/// One `[[alerts.rules]]`; `None` when its kind or scope is unusable. `per_kind` counts
/// the rules of each kind written so far, for the rule's key.
fn read_rule(
    p: &mut Problems,
    i: usize,
    t: &Table,
    sources: &[&str],
    destinations: &[&str],
    per_kind: &mut [usize; Kind::ALL.len()],
) -> Option<Rule> {
    let at = format!("alerts.rules[{i}]");
    let kind = match t.get("kind") {
        Some(item) => {
            let path = format!("{at}.kind");
            let kind = p.string(item, &path).map(Kind::parse);
            if kind == Some(None) {
                p.push(span(item), &path, "must be error_rate, silence, latency, volume, backlog or pending_fetch");
            }
            kind.flatten()
        }
        None => {
            p.push(t.span(), &at, "a rule needs a kind");
            None
        }
    };
    let target = match t.get("scope") {
        Some(item) => read_target(p, item, &format!("{at}.scope"), kind, sources, destinations),
        None => {
            p.push(t.span(), &at, "a rule needs a scope: source:NAME, destination:NAME, source:* or destination:*");
            None
        }
    };
    let mut rule = match (kind, target) {
        (Some(kind), Some(target)) => {
            let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            let n = per_kind[index];
            per_kind[index] += 1;
            Some(Rule::new(format!("{kind}#{n}"), kind, target))
        }
        (Some(kind), None) => {
            // Counted all the same, so one bad rule does not shift the keys after it.
            if let Some(index) = Kind::ALL.iter().position(|k| *k == kind) {
                per_kind[index] += 1;
            }
            None
        }
        _ => None,
    };
    for (key, item) in t.iter() {
        let path = format!("{at}.{key}");
        match key {
            "kind" | "scope" => {}
            "enabled" => match item.as_bool() {
                Some(on) => {
                    if let Some(r) = rule.as_mut() {
                        r.enabled = on;
                    }
                }
                None => p.push(span(item), &path, "must be true or false"),
            },
            "keep_firing_for" => {
                let d = p.duration(item, &path);
                if let Some(r) = rule.as_mut() {
                    r.keep_firing_for = d;
                }
            }
            "threshold" | "window" | "min_events" => {
                let Some(kind) = kind else { continue };
                if !kind.keys().contains(&key) {
                    let message = match (kind, key) {
                        (Kind::Silence, "threshold") => {
                            "silence rules take a window (how long without a lead), not a threshold".to_owned()
                        }
                        _ => format!("{kind} rules take no {key}"),
                    };
                    p.push(span(item), &path, message);
                    continue;
                }
                read_setting(p, key, item, &path, kind, rule.as_mut());
            }
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    rule
}

/// A rule's scope, checked against the configured names and the rule's kind.
fn read_target(
    p: &mut Problems,
    item: &Item,
    path: &str,
    kind: Option<Kind>,
    sources: &[&str],
    destinations: &[&str],
) -> Option<Target> {
    let s = p.string(item, path)?;
    let Some(target) = Target::parse(s) else {
        p.push(span(item), path, "must be source:NAME, destination:NAME, source:* or destination:*");
        return None;
    };
    if let Some(kind) = kind
        && !kind.fits(target.scope)
    {
        let message = match target.scope {
            Scope::Source => format!("{kind} rules watch destinations: destination:NAME or destination:*"),
            Scope::Destination => format!("{kind} rules watch sources: source:NAME or source:*"),
        };
        p.push(span(item), path, message);
        return None;
    }
    if let Some(name) = &target.name {
        let known = match target.scope {
            Scope::Source => sources,
            Scope::Destination => destinations,
        };
        if !known.contains(&name.as_str()) {
            p.push(span(item), path, format!("{name:?} is not a configured {}", target.scope));
            return None;
        }
    }
    Some(target)
}

/// `threshold`, `window` or `min_events`, in the kind's unit.
fn read_setting(p: &mut Problems, key: &str, item: &Item, path: &str, kind: Kind, rule: Option<&mut Rule>) {
    let set = |f: &mut dyn FnMut(&mut Rule)| {
        if let Some(r) = rule {
            f(r);
        }
    };
    match key {
        "window" => {
            if let Some(d) = p.duration(item, path) {
                if d.is_zero() {
                    p.push(span(item), path, "must be longer than 0s");
                } else if kind == Kind::Silence {
                    set(&mut |r| r.threshold = Threshold::Duration(d));
                } else {
                    set(&mut |r| r.window = Some(d));
                }
            }
        }
        "min_events" => match item.as_integer().and_then(|n| u64::try_from(n).ok()) {
            Some(n) => set(&mut |r| r.min_events = n),
            None => p.push(span(item), path, "must be a count, 0 or more"),
        },
        _ => {
            let number = item.as_float().or_else(|| item.as_integer().map(|n| n as f64));
            let threshold = match kind {
                Kind::ErrorRate => match number {
                    Some(f) if (0.0..=1.0).contains(&f) => Some(Threshold::Fraction(f)),
                    _ => {
                        p.push(span(item), path, "must be a fraction from 0 to 1, e.g. 0.05 for 5 %");
                        None
                    }
                },
                Kind::Volume => match number {
                    Some(f) if f > 0.0 && f <= 1.0 => Some(Threshold::Fraction(f)),
                    _ => {
                        let message = "must be a fraction above 0 and at most 1, e.g. 0.5: below half or above \
                                       one and a half times the baseline";
                        p.push(span(item), path, message);
                        None
                    }
                },
                Kind::Backlog => match item.as_integer().and_then(|n| u64::try_from(n).ok()) {
                    Some(n) => Some(Threshold::Count(n)),
                    None => {
                        p.push(span(item), path, "must be a count, e.g. 100");
                        None
                    }
                },
                Kind::Latency | Kind::PendingFetch | Kind::Silence => p.duration(item, path).map(Threshold::Duration),
            };
            if let Some(threshold) = threshold {
                set(&mut |r| r.threshold = threshold);
            }
        }
    }
}

/// One `[[alerts.channels]]`; `None` when it has no usable name or type. `names` are the
/// names declared so far, by channels valid or not, so a duplicate is always reported.
fn read_channel(p: &mut Problems, i: usize, t: &Table, names: &mut Vec<String>) -> Option<Channel> {
    let at = format!("alerts.channels[{i}]");
    let keys: Option<&[&str]> = match t.get("type") {
        Some(item) => match item.as_str() {
            Some("webhook") => Some(&["url", "secret_env"]),
            Some("slack") => Some(&["url_env"]),
            Some("email") => Some(&["to", "from", "smtp_url_env"]),
            _ => {
                p.push(span(item), &format!("{at}.type"), "must be webhook, slack or email");
                None
            }
        },
        None => {
            p.push(t.span(), &at, "a channel needs a type: webhook, slack or email");
            None
        }
    };
    let mut name = None;
    let (mut url, mut env, mut to, mut from) = (None, None, Vec::new(), None);
    for (key, item) in t.iter() {
        let path = format!("{at}.{key}");
        match key {
            "type" => {}
            "name" => {
                let Some(s) = p.string(item, &path) else { continue };
                let valid = !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    p.push(span(item), &path, "must be 1-64 letters, digits, - or _");
                } else if names.iter().any(|n| n == s) {
                    p.push(span(item), &path, format!("a channel named {s:?} is already declared"));
                } else {
                    names.push(s.to_owned());
                    name = Some(s.to_owned());
                }
            }
            _ if keys.is_some_and(|k| !k.contains(&key)) => p.push(span(item), &path, "unknown key"),
            _ if keys.is_none() => {}
            "url" => {
                if let Some(s) = p.string(item, &path) {
                    if crate::deliver::config::is_http_url(s) {
                        url = Some(s.to_owned());
                    } else {
                        p.push(span(item), &path, "must be an http:// or https:// URL");
                    }
                }
            }
            "secret_env" | "url_env" | "smtp_url_env" => env = p.env_name(item, &path),
            "from" => from = p.string(item, &path).and_then(|s| email(p, item, &path, s)),
            _ => {
                // `to`: one address or a list.
                let list: Vec<&toml_edit::Value> = match item.as_array() {
                    Some(a) if !a.is_empty() => a.iter().collect(),
                    Some(_) => Vec::new(),
                    None => item.as_value().into_iter().collect(),
                };
                if list.is_empty() {
                    p.push(span(item), &path, "must list at least one address");
                }
                for (j, v) in list.into_iter().enumerate() {
                    let at = v.span().or_else(|| span(item));
                    match v.as_str().and_then(|s| Email::parse(s).ok()) {
                        Some(e) => to.push(e),
                        None => p.push(at, &format!("{path}[{j}]"), "must be an email address"),
                    }
                }
            }
        }
    }
    if !t.contains_key("name") {
        p.push(t.span(), &at, "a channel needs a name");
    }
    for key in keys.unwrap_or_default() {
        if !t.contains_key(key) {
            p.push(
                t.span(),
                &at,
                format!("{} channels need {key}", t.get("type").and_then(Item::as_str).unwrap_or("")),
            );
        }
    }
    let kind = match (t.get("type").and_then(Item::as_str)?, env) {
        ("webhook", Some(secret_env)) => ChannelKind::Webhook { url: url?, secret_env },
        ("slack", Some(url_env)) => ChannelKind::Slack { url_env },
        ("email", Some(smtp_url_env)) if !to.is_empty() => ChannelKind::Email { to, from: from?, smtp_url_env },
        _ => return None,
    };
    Some(Channel { name: name?, kind })
}

fn email(p: &mut Problems, item: &Item, path: &str, s: &str) -> Option<Email> {
    let parsed = Email::parse(s).ok();
    if parsed.is_none() {
        p.push(span(item), path, "must be an email address");
    }
    parsed
}

#[cfg(test)]
mod tests;
