//! retention: how long each kind of data is kept, and the cutoffs that follow from it.
//!
//! The `[retention]` section names an age per kind ([`Kind`]); [`cutoffs`] turns the
//! configuration and the time of a run into one cutoff per configured kind: what is older
//! goes. The store applies each cutoff in bounded batches ([`BATCH`] rows per statement)
//! so a large table never holds a long write lock; inactive leads are anonymized or
//! erased one lead at a time by the app.
//!
//! Defaults, for a user who expects nothing personal to disappear unasked yet no copy to
//! linger without purpose: delivered outbox rows (copies of the lead as it was sent) go
//! after 30 days; every other kind is kept until configured.

use crate::config::read::{Node, Problems, span};
use serde::Serialize;
use std::time::Duration;
use time::{Month, OffsetDateTime};
use toml_edit::Item;

/// Rows one retention statement touches at most.
pub const BATCH: usize = 1000;

/// The shortest age accepted: a shorter one is a typo that would delete everything.
pub const MIN_AGE: Duration = Duration::from_secs(3600);

/// What the default keeps delivered outbox rows for.
pub const DEFAULT_DELIVERED_OUTBOX: Duration = Duration::from_secs(30 * 86_400);

/// A kind of data with its own retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Submissions' payloads, once settled: cleared, keeping the row and its outcome.
    RawPayloads,
    /// Behavioural events, by when they occurred.
    Events,
    /// Delivered outbox rows and their tries, by when they were delivered.
    DeliveredOutbox,
    /// Dead letters and their tries, by their last try.
    DeadLetters,
    /// The oldest audit entries.
    Audit,
    /// Leads without any change since the cutoff.
    InactiveLeads,
}

impl Kind {
    pub const ALL: [Self; 6] =
        [Self::RawPayloads, Self::Events, Self::DeliveredOutbox, Self::DeadLetters, Self::Audit, Self::InactiveLeads];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RawPayloads => "raw_payloads",
            Self::Events => "events",
            Self::DeliveredOutbox => "delivered_outbox",
            Self::DeadLetters => "dead_letters",
            Self::Audit => "audit",
            Self::InactiveLeads => "inactive_leads",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How old data may grow: a fixed span, or calendar months (a month is not 30 days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Age {
    Span(Duration),
    Months(u32),
}

impl Age {
    /// Reads `90d`, `24h`, `730d`, `24 months`, `18mo`, `2 years`, `1y`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if let Some(span) = crate::config::parse_duration(t) {
            return Some(Self::Span(span));
        }
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (digits, unit) = t.split_at(split);
        let n: u32 = digits.parse().ok()?;
        match unit.trim_start() {
            "month" | "months" | "mo" => Some(Self::Months(n)),
            "year" | "years" | "y" => n.checked_mul(12).map(Self::Months),
            _ => None,
        }
    }

    /// The instant this age before `now`: data older than it goes.
    pub fn before(&self, now: OffsetDateTime) -> OffsetDateTime {
        match *self {
            Self::Span(span) => now.checked_sub(time::Duration::try_from(span).unwrap_or(time::Duration::MAX)),
            Self::Months(n) => months_before(now, n),
        }
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .max(OffsetDateTime::UNIX_EPOCH)
    }

    fn is_too_short(&self) -> bool {
        matches!(self, Self::Span(s) if *s < MIN_AGE) || matches!(self, Self::Months(0))
    }
}

/// `now` moved back `n` calendar months; the day is clamped to the month's last (31 March
/// less one month is 28 or 29 February).
fn months_before(now: OffsetDateTime, n: u32) -> Option<OffsetDateTime> {
    let index = i64::from(now.year()) * 12 + i64::from(u8::from(now.month())) - 1 - i64::from(n);
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let day = now.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(now.replace_date(date))
}

/// What becomes of a lead inactive for longer than its age.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InactiveAction {
    /// The erasure's tombstone, without telling the destinations: their copies follow
    /// their own retention. The person is not suppressed and may come back as a new lead.
    Anonymize,
    /// The erasure a person asks for, destinations told.
    Erase,
}

impl InactiveAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Anonymize => "anonymize",
            Self::Erase => "erase",
        }
    }
}

/// `[retention]`: the age of each kind; `None` keeps it for ever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    pub raw_payloads: Option<Age>,
    pub events: Option<Age>,
    pub delivered_outbox: Option<Age>,
    pub dead_letters: Option<Age>,
    pub audit: Option<Age>,
    pub inactive_leads: Option<(Age, InactiveAction)>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            raw_payloads: None,
            events: None,
            delivered_outbox: Some(Age::Span(DEFAULT_DELIVERED_OUTBOX)),
            dead_letters: None,
            audit: None,
            inactive_leads: None,
        }
    }
}

impl RetentionConfig {
    /// The configured age of each kind, in [`Kind::ALL`]'s order.
    pub fn ages(&self) -> Vec<(Kind, Age)> {
        let inactive = self.inactive_leads.map(|(age, _)| age);
        [
            (Kind::RawPayloads, self.raw_payloads),
            (Kind::Events, self.events),
            (Kind::DeliveredOutbox, self.delivered_outbox),
            (Kind::DeadLetters, self.dead_letters),
            (Kind::Audit, self.audit),
            (Kind::InactiveLeads, inactive),
        ]
        .into_iter()
        .filter_map(|(kind, age)| age.map(|a| (kind, a)))
        .collect()
    }
}

/// What goes in one run: everything of `kind` older than `before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoff {
    pub kind: Kind,
    pub before: OffsetDateTime,
}

/// The cutoff of each configured kind for a run at `now`.
pub fn cutoffs(config: &RetentionConfig, now: OffsetDateTime) -> Vec<Cutoff> {
    config.ages().into_iter().map(|(kind, age)| Cutoff { kind, before: age.before(now) }).collect()
}

/// The start of the UTC day `now` falls in: the period a scheduled run claims.
pub fn day_of(now: OffsetDateTime) -> OffsetDateTime {
    now.to_offset(time::UtcOffset::UTC).replace_time(time::Time::MIDNIGHT)
}

/// What one run did to one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindCount {
    /// raw_payloads, events, delivered_outbox, dead_letters, audit or inactive_leads.
    pub kind: String,
    /// What was older than this went.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub before: OffsetDateTime,
    /// Rows deleted (payloads cleared, leads anonymized or erased); for a dry run, how
    /// many would be.
    pub count: u64,
}

/// One retention run, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: String,
    /// `schedule` (the daily run) or `manual` (`leadflow retention run`).
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: OffsetDateTime,
    /// `None` while it runs (or when it stopped half-way).
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<OffsetDateTime>,
    pub kinds: Vec<KindCount>,
    /// Why the run stopped, if it failed.
    pub error: Option<String>,
}

/// Reads `[retention]`: each kind an age (see [`Age::parse`]) or `"off"`, and
/// `inactive_leads = { after = AGE, action = "anonymize" | "erase" }`.
pub(crate) fn read(p: &mut Problems, item: &Item) -> RetentionConfig {
    let mut config = RetentionConfig::default();
    let Some(table) = p.table(item, "retention") else {
        return config;
    };
    for (key, item) in table.iter() {
        let path = format!("retention.{key}");
        let slot = match key {
            "raw_payloads" => &mut config.raw_payloads,
            "events" => &mut config.events,
            "delivered_outbox" => &mut config.delivered_outbox,
            "dead_letters" => &mut config.dead_letters,
            "audit" => &mut config.audit,
            "inactive_leads" => {
                config.inactive_leads = read_inactive(p, item, &path);
                continue;
            }
            _ => {
                p.push(span(item), &path, "unknown key; retention takes raw_payloads, events, delivered_outbox, dead_letters, audit and inactive_leads");
                continue;
            }
        };
        match item.as_str() {
            Some("off") => *slot = None,
            _ => *slot = age(p, Node::from_item(item), span(item), &path),
        }
    }
    config
}

fn age(p: &mut Problems, node: Option<Node<'_>>, at: Option<std::ops::Range<usize>>, path: &str) -> Option<Age> {
    match node.and_then(|n| n.as_str()).and_then(Age::parse) {
        Some(age) if age.is_too_short() => {
            p.push(at, path, "must be at least 1h: a shorter retention would delete data as it arrives");
            None
        }
        Some(age) => Some(age),
        None => {
            p.push(at, path, "must be an age such as \"90d\", \"24h\", \"24 months\" or \"2 years\", or \"off\"");
            None
        }
    }
}

fn read_inactive(p: &mut Problems, item: &Item, path: &str) -> Option<(Age, InactiveAction)> {
    let Some(entries) = Node::from_item(item).and_then(|n| n.entries()) else {
        p.push(span(item), path, "must be a table: { after = \"24 months\", action = \"anonymize\" }");
        return None;
    };
    let (mut after, mut action, mut bad) = (None, None, false);
    for (key, node) in entries {
        let at = node.span();
        match key {
            "after" => {
                after = age(p, Some(node), at, &format!("{path}.after"));
                bad |= after.is_none();
            }
            "action" => {
                action = match node.as_str() {
                    Some("anonymize") => Some(InactiveAction::Anonymize),
                    Some("erase") => Some(InactiveAction::Erase),
                    _ => {
                        p.push(at, &format!("{path}.action"), "must be \"anonymize\" or \"erase\"");
                        bad = true;
                        None
                    }
                }
            }
            _ => {
                p.push(at, &format!("{path}.{key}"), "unknown key; inactive_leads takes after and action");
                bad = true;
            }
        }
    }
    match (after, action) {
        (Some(after), Some(action)) => Some((after, action)),
        _ if bad => None,
        (None, _) => {
            p.push(span(item), &format!("{path}.after"), "is required: how long a lead may stay unchanged");
            None
        }
        (_, None) => {
            p.push(span(item), &format!("{path}.action"), "is required: \"anonymize\" or \"erase\"");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn parse(text: &str) -> Result<RetentionConfig, Vec<crate::config::ConfigError>> {
        crate::config::parse_section(text, "retention", |p, item| item.map(|i| read(p, i)).unwrap_or_default())
    }

    #[test]
    fn ages_read_as_spans_or_calendar_months() {
        assert_eq!(Age::parse("90d"), Some(Age::Span(Duration::from_secs(90 * 86_400))));
        assert_eq!(Age::parse("24h"), Some(Age::Span(Duration::from_secs(86_400))));
        assert_eq!(Age::parse("24 months"), Some(Age::Months(24)));
        assert_eq!(Age::parse("18mo"), Some(Age::Months(18)));
        assert_eq!(Age::parse("2 years"), Some(Age::Months(24)));
        for bad in ["", "months", "24 weeks", "-3d", "1.5 months"] {
            assert_eq!(Age::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_month_back_from_the_end_of_march_is_the_end_of_february() {
        let now = datetime!(2024-03-31 10:00 UTC);
        assert_eq!(Age::Months(1).before(now), datetime!(2024-02-29 10:00 UTC));
        assert_eq!(Age::Months(24).before(now), datetime!(2022-03-31 10:00 UTC));
        assert_eq!(Age::Months(3).before(datetime!(2025-01-15 0:00 UTC)), datetime!(2024-10-15 0:00 UTC));
        assert_eq!(Age::Span(Duration::from_secs(86_400)).before(now), datetime!(2024-03-30 10:00 UTC));
    }

    #[test]
    fn by_default_only_delivered_outbox_rows_expire() {
        let now = datetime!(2025-06-30 12:00 UTC);
        assert_eq!(
            cutoffs(&parse("").unwrap(), now),
            [Cutoff { kind: Kind::DeliveredOutbox, before: datetime!(2025-05-31 12:00 UTC) }]
        );
        assert!(cutoffs(&parse("[retention]\ndelivered_outbox = \"off\"\n").unwrap(), now).is_empty());
    }

    #[test]
    fn each_configured_kind_has_its_cutoff() {
        let config = parse(
            "[retention]\nraw_payloads = \"90d\"\nevents = \"12 months\"\ndead_letters = \"30d\"\naudit = \"2 years\"\ninactive_leads = { after = \"24 months\", action = \"erase\" }\n",
        )
        .unwrap();
        assert_eq!(config.inactive_leads, Some((Age::Months(24), InactiveAction::Erase)));
        let now = datetime!(2025-06-30 0:00 UTC);
        let got: Vec<(&str, OffsetDateTime)> =
            cutoffs(&config, now).iter().map(|c| (c.kind.as_str(), c.before)).collect();
        assert_eq!(
            got,
            [
                ("raw_payloads", datetime!(2025-04-01 0:00 UTC)),
                ("events", datetime!(2024-06-30 0:00 UTC)),
                ("delivered_outbox", datetime!(2025-05-31 0:00 UTC)),
                ("dead_letters", datetime!(2025-05-31 0:00 UTC)),
                ("audit", datetime!(2023-06-30 0:00 UTC)),
                ("inactive_leads", datetime!(2023-06-30 0:00 UTC)),
            ]
        );
    }

    #[test]
    fn bad_keys_and_ages_are_reported_at_their_line() {
        let text = "[retention]\nraw_payloads = \"ninety days\"\nevent = \"30d\"\ndead_letters = \"0s\"\ninactive_leads = { after = \"24 months\", action = \"delete\" }\n";
        let errors = parse(text).unwrap_err();
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            got,
            [
                (2, "retention.raw_payloads"),
                (3, "retention.event"),
                (4, "retention.dead_letters"),
                (5, "retention.inactive_leads.action"),
            ]
        );
        let missing = parse("[retention]\ninactive_leads = { after = \"24 months\" }\n").unwrap_err();
        assert_eq!((missing[0].line, missing[0].key.as_str()), (2, "retention.inactive_leads.action"));
    }

    #[test]
    fn a_scheduled_run_claims_the_utc_day() {
        assert_eq!(day_of(datetime!(2025-06-30 23:59:59 +02:00)), datetime!(2025-06-30 0:00 UTC));
    }
}
