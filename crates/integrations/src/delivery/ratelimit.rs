//! A per-destination token bucket. It never sleeps: a call that finds it empty learns
//! how long until the next token and is deferred, so a slow or throttled destination
//! holds up no worker and no other destination. Time is passed in, as for the breaker.

use crate::delivery::config::RateLimit;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct TokenBucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Starts full. A rate of zero or less means no limit.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        let capacity = f64::from(limit.burst.max(1));
        Self { per_second: limit.per_second, capacity, tokens: capacity, last: now }
    }

    /// Takes a token, or says how long until one is available.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 || !self.per_second.is_finite() {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_paces_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RateLimit { per_second: 2.0, burst: 3 }, t0);
        for _ in 0..3 {
            assert_eq!(b.try_acquire(t0), Ok(()));
        }
        assert_eq!(b.try_acquire(t0), Err(Duration::from_millis(500)));
        assert_eq!(b.try_acquire(t0 + Duration::from_millis(500)), Ok(()));
        assert!(b.try_acquire(t0 + Duration::from_millis(600)).is_err());
    }

    #[test]
    fn idle_time_refills_no_more_than_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RateLimit { per_second: 10.0, burst: 2 }, t0);
        let later = t0 + Duration::from_secs(3600);
        assert!(b.try_acquire(later).is_ok());
        assert!(b.try_acquire(later).is_ok());
        assert!(b.try_acquire(later).is_err());
    }

    #[test]
    fn a_zero_rate_means_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RateLimit { per_second: 0.0, burst: 1 }, t0);
        for _ in 0..1000 {
            assert!(b.try_acquire(t0).is_ok());
        }
    }
}
