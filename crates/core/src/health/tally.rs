//! What a transaction counts: per source and per destination, by metric, in time buckets
//! of three widths, summed before they are written so a batch of a thousand leads is a
//! handful of upserts.

use crate::error::{FieldError, FieldErrorCode};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use time::OffsetDateTime;

/// What is counted: a source (by its configured name) or a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Source,
    Destination,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Destination => "destination",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Source, Self::Destination].into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bucket width. Minute buckets answer short windows (the last hour, an alert's
/// window), hour buckets a day and the hour-of-week baselines, day buckets the long
/// series; each is kept as long as something reads it ([`Level::keep`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Minute,
    Hour,
    Day,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Minute, Level::Hour, Level::Day];

    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// How long buckets of this width are kept: two days of minutes, five weeks of hours
    /// (four weeks of hour-of-week baselines and the current one), 400 days of days.
    pub fn keep(self) -> Duration {
        Duration::from_secs(match self {
            Self::Minute => 2 * 86_400,
            Self::Hour => 35 * 86_400,
            Self::Day => 400 * 86_400,
        })
    }

    /// The start (Unix seconds) of the bucket holding `at`.
    pub fn bucket(self, at: OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(self.seconds()) * self.seconds()
    }

    /// The coarsest width that still cuts `window` into six buckets or more, so a window
    /// read from whole buckets is off by at most a sixth at its old edge.
    pub fn for_window(window: Duration) -> Self {
        let secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        [Self::Day, Self::Hour].into_iter().find(|l| l.seconds().saturating_mul(6) <= secs).unwrap_or(Self::Minute)
    }
}

/// The metrics counted. Sources: `received` (a new submission in the inbox), `created`,
/// `merged`, `quarantined` with one `quarantined.<code>` per reason, `spam`, `rejected`
/// (refused as malformed, nothing stored), `refused` (authentication or signature).
/// Destinations: `attempts`, `delivered`, `failed` with one `failed.<class>` per
/// [`ErrorClass`], `dead`, `needs_data`, and the latency histogram `latency.<i>` (see
/// [`LATENCY_BOUNDS_MS`]).
pub mod metric {
    pub const RECEIVED: &str = "received";
    pub const CREATED: &str = "created";
    pub const MERGED: &str = "merged";
    pub const QUARANTINED: &str = "quarantined";
    pub const SPAM: &str = "spam";
    pub const REJECTED: &str = "rejected";
    pub const REFUSED: &str = "refused";
    pub const ATTEMPTS: &str = "attempts";
    pub const DELIVERED: &str = "delivered";
    pub const FAILED: &str = "failed";
    pub const DEAD: &str = "dead";
    pub const NEEDS_DATA: &str = "needs_data";
    pub const LATENCY: &str = "latency";
    /// A source's histogram, in the same buckets: from when the provider says the lead was
    /// submitted to when it was settled.
    pub const CAPTURE_LATENCY: &str = "capture_latency";
}

/// When the provider says the lead was submitted, if its adapter kept it: the
/// touchpoint's `submitted_at` (Typeform, Webflow, HubSpot, LinkedIn) or `created_time`
/// (Facebook), as RFC 3339, with a `+0000` offset, or as Unix seconds or milliseconds.
pub fn provider_time(payload: &serde_json::Map<String, serde_json::Value>) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let touch = payload.get("touchpoint")?.as_object()?;
    let text = ["submitted_at", "created_time"].iter().find_map(|k| touch.get(*k)?.as_str())?.trim();
    if let Ok(n) = text.parse::<i64>() {
        // Ten digits are seconds until 2286; thirteen are milliseconds.
        let seconds = if n.abs() >= 100_000_000_000 { n / 1000 } else { n };
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        // Facebook writes `2026-12-06T10:00:00+0000`: RFC 3339 wants `+00:00`.
        let cut = text.len().checked_sub(5)?;
        let (head, offset) = (text.get(..cut)?, text.get(cut..)?);
        let (sign, digits) = (offset.get(..1)?, offset.get(1..)?);
        if !matches!(sign, "+" | "-") || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        OffsetDateTime::parse(&format!("{head}{sign}{}:{}", digits.get(..2)?, digits.get(2..)?), &Rfc3339).ok()
    })
}

/// Upper bounds of the capture-to-delivery latency histogram, in milliseconds; a last
/// bucket holds everything slower. Neighbouring bounds are two to four times apart from a
/// second to a day, where delivery latencies live, so p50 and p95 read within that factor.
pub const LATENCY_BOUNDS_MS: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
    3_600_000, 7_200_000, 21_600_000, 86_400_000,
];

/// The histogram bucket a latency falls in.
pub fn latency_bucket(latency: Duration) -> usize {
    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// Why a delivery try failed, in the classes operators act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    Timeout,
    Connect,
    /// Credentials refused (401, 403).
    Auth,
    /// The destination refused the data (another 4xx).
    Validation,
    RateLimited,
    ServerError,
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] =
        [Self::Timeout, Self::Connect, Self::Auth, Self::Validation, Self::RateLimited, Self::ServerError, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Auth => "auth",
            Self::Validation => "validation",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::Other => "other",
        }
    }

    /// The class of a failed try from its HTTP status or, without one, from the transport
    /// error the delivery client wrote ("timed out…", "could not connect…").
    pub fn of(status: Option<u16>, error: &str) -> Self {
        match status {
            Some(401 | 403) => Self::Auth,
            Some(408) => Self::Timeout,
            Some(429) => Self::RateLimited,
            Some(500..=599) => Self::ServerError,
            Some(400..=499) => Self::Validation,
            Some(_) => Self::Other,
            None if error.starts_with("timed out") || error.contains("timed out") => Self::Timeout,
            None if error.starts_with("could not connect") => Self::Connect,
            None => Self::Other,
        }
    }
}

/// One summed cell: `value` more of `metric` for `name` in the bucket starting at
/// `bucket` (Unix seconds) of width `level`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub scope: Scope,
    pub name: String,
    pub level: Level,
    pub bucket: i64,
    pub metric: String,
    pub value: u64,
}

/// Counts made in one transaction, to be added to the stored aggregates in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    cells: BTreeMap<(Scope, String, String, i64), u64>,
    /// The latest lead received per source.
    last: BTreeMap<(Scope, String), OffsetDateTime>,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.last.is_empty()
    }

    /// Counts `n` of `metric` for `name` at `at` (kept to the minute; wider buckets are
    /// derived when written).
    pub fn add(&mut self, scope: Scope, name: &str, metric: &str, at: OffsetDateTime, n: u64) {
        if n == 0 {
            return;
        }
        let minute = Level::Minute.bucket(at);
        *self.cells.entry((scope, name.to_owned(), metric.to_owned(), minute)).or_default() += n;
    }

    /// A submission settled into a lead (`merged` into an existing one, or `created`),
    /// and how long after the provider's own submission time, when it gave one.
    pub fn settled(&mut self, source: &str, merged: bool, provider_time: Option<OffsetDateTime>, now: OffsetDateTime) {
        self.add(Scope::Source, source, if merged { metric::MERGED } else { metric::CREATED }, now, 1);
        // A time in the future is a provider's clock or a replayed old payload: no latency.
        if let Some(latency) = provider_time.and_then(|t| Duration::try_from(now - t).ok()) {
            let bucket = format!("{}.{}", metric::CAPTURE_LATENCY, latency_bucket(latency));
            self.add(Scope::Source, source, &bucket, now, 1);
        }
    }

    /// A new submission in a source's inbox.
    pub fn received(&mut self, source: &str, at: OffsetDateTime) {
        self.add(Scope::Source, source, metric::RECEIVED, at, 1);
        let last = self.last.entry((Scope::Source, source.to_owned())).or_insert(at);
        *last = (*last).max(at);
    }

    /// A submission stored in the quarantine: spam, or quarantined once and once per
    /// distinct reason.
    pub fn quarantined(&mut self, source: &str, errors: &[FieldError], at: OffsetDateTime) {
        if errors.iter().any(|e| e.code == FieldErrorCode::Spam) {
            self.add(Scope::Source, source, metric::SPAM, at, 1);
            return;
        }
        self.add(Scope::Source, source, metric::QUARANTINED, at, 1);
        let mut codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        for code in codes {
            self.add(Scope::Source, source, &format!("{}.{code}", metric::QUARANTINED), at, 1);
        }
    }

    /// One try at a delivery and what came of it. `latency` (from the change to its
    /// delivery, retries included) is given for a delivered try.
    pub fn attempt(&mut self, destination: &str, outcome: Attempt, at: OffsetDateTime) {
        let d = Scope::Destination;
        match outcome {
            Attempt::Delivered { latency } => {
                self.add(d, destination, metric::ATTEMPTS, at, 1);
                self.add(d, destination, metric::DELIVERED, at, 1);
                self.add(d, destination, &format!("{}.{}", metric::LATENCY, latency_bucket(latency)), at, 1);
            }
            Attempt::Failed { class, dead } => {
                self.add(d, destination, metric::ATTEMPTS, at, 1);
                self.add(d, destination, metric::FAILED, at, 1);
                self.add(d, destination, &format!("{}.{}", metric::FAILED, class.as_str()), at, 1);
                if dead {
                    self.add(d, destination, metric::DEAD, at, 1);
                }
            }
            // Refused before any call: no try, but a dead letter to count.
            Attempt::DeadUntried => self.add(d, destination, metric::DEAD, at, 1),
            Attempt::NeedsData => self.add(d, destination, metric::NEEDS_DATA, at, 1),
        }
    }

    /// Adds what another transaction's tally counted.
    pub fn extend(&mut self, other: Tally) {
        for (k, v) in other.cells {
            *self.cells.entry(k).or_default() += v;
        }
        for (k, at) in other.last {
            let last = self.last.entry(k).or_insert(at);
            *last = (*last).max(at);
        }
    }

    /// The cells to add, at every level.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out: BTreeMap<(Scope, String, Level, i64, String), u64> = BTreeMap::new();
        for ((scope, name, metric, minute), value) in &self.cells {
            for level in Level::ALL {
                let bucket = minute.div_euclid(level.seconds()) * level.seconds();
                *out.entry((*scope, name.clone(), level, bucket, metric.clone())).or_default() += value;
            }
        }
        out.into_iter()
            .map(|((scope, name, level, bucket, metric), value)| Cell { scope, name, level, bucket, metric, value })
            .collect()
    }

    /// The latest lead received per source, to be kept if later than the stored one.
    pub fn last_received(&self) -> impl Iterator<Item = (Scope, &str, OffsetDateTime)> {
        self.last.iter().map(|((scope, name), at)| (*scope, name.as_str(), *at))
    }
}

/// What one delivery try came to, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        latency: Duration,
    },
    /// A try that failed; `dead` when it was the last.
    Failed {
        class: ErrorClass,
        dead: bool,
    },
    /// A dead letter without a try.
    DeadUntried,
    NeedsData,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_tally_sums_cells_per_bucket_and_rolls_them_up_to_hours_and_days() {
        let mut t = Tally::default();
        let at = datetime!(2026-12-06 10:15:30 UTC);
        t.received("web", at);
        t.received("web", at + time::Duration::seconds(10));
        t.received("web", at + time::Duration::minutes(1));
        let cells = t.cells();
        let of = |level: Level| -> Vec<(i64, u64)> {
            cells.iter().filter(|c| c.level == level).map(|c| (c.bucket, c.value)).collect()
        };
        let minute = Level::Minute.bucket(at);
        assert_eq!(of(Level::Minute), [(minute, 2), (minute + 60, 1)]);
        assert_eq!(of(Level::Hour), [(Level::Hour.bucket(at), 3)]);
        assert_eq!(of(Level::Day), [(Level::Day.bucket(at), 3)]);
        let last: Vec<_> = t.last_received().collect();
        assert_eq!(last, [(Scope::Source, "web", at + time::Duration::minutes(1))]);
    }

    #[test]
    fn quarantine_counts_each_reason_once_and_spam_apart() {
        let mut t = Tally::default();
        let at = datetime!(2026-12-06 10:00 UTC);
        let e = |code| FieldError::new("email", code, "x");
        t.quarantined(
            "web",
            &[e(FieldErrorCode::Required), e(FieldErrorCode::Required), e(FieldErrorCode::Invalid)],
            at,
        );
        t.quarantined("web", &[e(FieldErrorCode::Spam)], at);
        let minute: Vec<(String, u64)> =
            t.cells().into_iter().filter(|c| c.level == Level::Minute).map(|c| (c.metric, c.value)).collect();
        let expect = [("quarantined", 1), ("quarantined.invalid", 1), ("quarantined.required", 1), ("spam", 1)];
        assert_eq!(minute, expect.map(|(m, v)| (m.to_owned(), v)));
    }

    #[test]
    fn error_classes_come_from_the_status_or_the_transport_error() {
        assert_eq!(ErrorClass::of(Some(401), ""), ErrorClass::Auth);
        assert_eq!(ErrorClass::of(Some(422), ""), ErrorClass::Validation);
        assert_eq!(ErrorClass::of(Some(429), ""), ErrorClass::RateLimited);
        assert_eq!(ErrorClass::of(Some(503), ""), ErrorClass::ServerError);
        assert_eq!(ErrorClass::of(None, "timed out: operation timed out"), ErrorClass::Timeout);
        assert_eq!(ErrorClass::of(None, "could not connect: refused"), ErrorClass::Connect);
        assert_eq!(ErrorClass::of(None, "request failed"), ErrorClass::Other);
    }

    #[test]
    fn field_error_codes_read_as_their_json() {
        for code in [FieldErrorCode::Spam, FieldErrorCode::IdempotencyKeyReused, FieldErrorCode::InvalidEmail] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
        }
    }

    fn with_touch(key: &str, value: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut touch = serde_json::Map::new();
        touch.insert(key.into(), value.into());
        let mut payload = serde_json::Map::new();
        payload.insert("touchpoint".into(), touch.into());
        payload
    }

    #[test]
    fn provider_times_read_in_each_providers_form() {
        let at = datetime!(2026-12-06 10:00:00 UTC);
        for (key, text) in [
            ("submitted_at", "2026-12-06T10:00:00Z"),
            ("submitted_at", "2026-12-06T11:00:00+01:00"),
            ("created_time", "2026-12-06T10:00:00+0000"),
            ("submitted_at", "1796551200"),
            ("submitted_at", "1796551200000"),
        ] {
            assert_eq!(provider_time(&with_touch(key, text)), Some(at), "{key} = {text}");
        }
        assert_eq!(provider_time(&with_touch("submitted_at", "yesterday")), None);
        assert_eq!(provider_time(&serde_json::Map::new()), None);
    }

    #[test]
    fn capture_latency_is_counted_only_from_a_past_provider_time() {
        let now = datetime!(2026-12-06 10:00:00 UTC);
        let mut t = Tally::default();
        t.settled("fb", false, Some(now - time::Duration::seconds(40)), now);
        t.settled("fb", true, Some(now + time::Duration::hours(1)), now);
        t.settled("fb", false, None, now);
        let sums = crate::health::Series::new(t.cells()).window(Scope::Source, "fb", now, Duration::from_secs(3_600));
        assert_eq!((sums.get("created"), sums.get("merged")), (2, 1));
        assert_eq!(sums.quantile(metric::CAPTURE_LATENCY, 0.5), Some(Duration::from_secs(60)));
        assert_eq!(sums.parts(metric::CAPTURE_LATENCY).values().sum::<u64>(), 1);
    }

    proptest::proptest! {
        #[test]
        fn provider_times_never_panic_and_round_trip(text in ".{0,40}", secs in 0i64..4_000_000_000) {
            let _ = provider_time(&with_touch("submitted_at", &text));
            let at = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let rfc = at.format(&time::format_description::well_known::Rfc3339).unwrap();
            proptest::prop_assert_eq!(provider_time(&with_touch("submitted_at", &rfc)), Some(at));
            proptest::prop_assert_eq!(provider_time(&with_touch("created_time", &secs.to_string())), Some(at));
        }
    }

    #[test]
    fn latency_buckets_and_window_levels() {
        assert_eq!(latency_bucket(Duration::from_millis(50)), 0);
        assert_eq!(latency_bucket(Duration::from_millis(100)), 0);
        assert_eq!(latency_bucket(Duration::from_millis(101)), 1);
        assert_eq!(latency_bucket(Duration::from_secs(200_000)), LATENCY_BOUNDS_MS.len());
        assert_eq!(Level::for_window(Duration::from_secs(3_600)), Level::Minute);
        assert_eq!(Level::for_window(Duration::from_secs(86_400)), Level::Hour);
        assert_eq!(Level::for_window(Duration::from_secs(7 * 86_400)), Level::Day);
        assert_eq!(Level::for_window(Duration::from_secs(5)), Level::Minute);
    }
}
