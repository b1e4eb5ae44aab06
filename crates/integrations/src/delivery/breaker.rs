//! A per-destination circuit breaker. Closed, it lets everything through and counts
//! consecutive failures; at the threshold it opens and turns deliveries away (they are
//! deferred, not failed) for a cool-down; then it lets exactly one probe through
//! (half-open): success closes it, failure opens it again. Time is passed in, so the
//! state machine is deterministic under test.

use crate::delivery::config::BreakerSettings;
use std::time::{Duration, Instant};

/// The breaker's state, for metrics and dashboards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everything else waits for its answer.
    HalfOpen,
}

#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: State,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, state: State::Closed { failures: 0 } }
    }

    pub fn state(&self) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// May a call go out now? `Err(wait)` says how long to hold it back. Each `Ok` must
    /// be followed by [`Self::record_success`] or [`Self::record_failure`].
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                Ok(())
            }
            State::Open { until } => Err(until - now),
            // The probe answers within the request timeout; look again after a cool-down.
            State::HalfOpen => Err(self.settings.cool_down),
        }
    }

    pub fn record_success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    pub fn record_failure(&mut self, now: Instant) {
        let open = State::Open { until: now + self.settings.cool_down };
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.settings.failure_threshold => {
                State::Closed { failures: failures + 1 }
            }
            _ => open,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings { failure_threshold: 3, cool_down: Duration::from_secs(30) })
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..2 {
            assert_eq!(b.try_acquire(t0), Ok(()));
            b.record_failure(t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.try_acquire(t0), Ok(()));
        b.record_failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(10)), Err(Duration::from_secs(20)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let (mut b, t0) = (breaker(), Instant::now());
        b.record_failure(t0);
        b.record_failure(t0);
        b.record_success();
        b.record_failure(t0);
        b.record_failure(t0);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_and_its_success_closes() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.record_failure(t0);
        }
        let later = t0 + Duration::from_secs(30);
        assert_eq!(b.try_acquire(later), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire(later).is_err(), "only one probe at a time");
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.try_acquire(later), Ok(()));
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_a_full_cool_down() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.record_failure(t0);
        }
        let later = t0 + Duration::from_secs(31);
        assert_eq!(b.try_acquire(later), Ok(()));
        b.record_failure(later);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.try_acquire(later), Err(Duration::from_secs(30)));
    }
}
