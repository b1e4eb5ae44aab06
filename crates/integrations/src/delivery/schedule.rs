//! The retry schedule: how long to wait before each attempt, with full jitter so that
//! deliveries failing together do not come back together. Pure: the caller passes the
//! random source, so tests can pin it.

use crate::delivery::config::invalid_duration;
use leadflow_core::config::{ConfigError, format_duration, parse_duration};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// The base wait before each attempt; entry 0 is the first attempt's (normally zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 28 hours in all,
    /// after the example schedule of the Standard Webhooks specification.
    fn default() -> Self {
        let s = |n| Duration::from_secs(n);
        Self { delays: vec![s(0), s(5), s(300), s(1800), s(7200), s(18_000), s(36_000), s(36_000)] }
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Result<Self, ConfigError> {
        if delays.is_empty() {
            return Err(ConfigError::new("retry", "a retry schedule needs at least one entry"));
        }
        Ok(Self { delays })
    }

    /// Reads a schedule such as `["0s", "5s", "5m"]`.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ConfigError> {
        let mut delays = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item = item.as_ref();
            delays.push(
                parse_duration(item).ok_or_else(|| ConfigError::new(format!("retry[{i}]"), invalid_duration(item)))?,
            );
        }
        Self::new(delays)
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts the schedule allows, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// The wait before attempt number `attempt` (0-based): uniform in `[0, base]`
    /// ("full jitter"). `None` when the schedule has no such attempt: the delivery has
    /// used all of its tries and goes to the dead letters.
    pub fn next_delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Option<Duration> {
        let base = *self.delays.get(usize::try_from(attempt).ok()?)?;
        let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Some(Duration::ZERO);
        }
        Some(Duration::from_nanos(rng.random_range(0..=nanos)))
    }
}

impl<'de> Deserialize<'de> for RetrySchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Self::parse(&items).map_err(serde::de::Error::custom)
    }
}

impl Serialize for RetrySchedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.delays.iter().map(|d| format_duration(*d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_default_schedule_is_eight_attempts_over_about_28_hours() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        let total: Duration = s.delays().iter().sum();
        assert_eq!(total, Duration::from_secs(5 + 300 + 1800 + 7200 + 18_000 + 72_000));
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"["0s","5s","5m","30m","2h","5h","10h","10h"]"#);
        assert_eq!(serde_json::from_str::<RetrySchedule>(&text).unwrap(), s);
    }

    #[test]
    fn past_the_last_entry_there_is_no_next_attempt() {
        let s = RetrySchedule::parse(&["0s", "5s"]).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(s.next_delay(0, &mut rng), Some(Duration::ZERO));
        assert!(s.next_delay(1, &mut rng).is_some());
        assert_eq!(s.next_delay(2, &mut rng), None);
        assert_eq!(s.next_delay(u32::MAX, &mut rng), None);
    }

    #[test]
    fn bad_schedules_are_rejected() {
        let empty = RetrySchedule::parse::<&str>(&[]).unwrap_err();
        assert_eq!(empty.to_string(), "retry: a retry schedule needs at least one entry");
        let soon = RetrySchedule::parse(&["5s", "soon"]).unwrap_err();
        assert_eq!(soon.key, "retry[1]");
    }

    proptest! {
        #[test]
        fn jitter_stays_within_zero_and_the_base(
            bases in proptest::collection::vec(0u64..200_000, 1..10),
            attempt in 0u32..12,
            seed in any::<u64>(),
        ) {
            let s = RetrySchedule::new(bases.iter().map(|&b| Duration::from_secs(b)).collect()).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            match s.next_delay(attempt, &mut rng) {
                Some(d) => prop_assert!(d <= Duration::from_secs(bases[attempt as usize])),
                None => prop_assert!(attempt as usize >= bases.len()),
            }
        }

        #[test]
        fn jitter_spreads_over_the_whole_range(seed in any::<u64>()) {
            // Full jitter, not "base plus a little": over many draws both halves of
            // [0, base] are hit.
            let s = RetrySchedule::parse(&["0s", "1h"]).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            let draws: Vec<Duration> = (0..64).filter_map(|_| s.next_delay(1, &mut rng)).collect();
            prop_assert!(draws.iter().any(|d| *d < Duration::from_secs(1800)));
            prop_assert!(draws.iter().any(|d| *d > Duration::from_secs(1800)));
        }
    }
}
