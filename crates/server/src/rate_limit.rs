//! The per-address limit on web-form posts: a fixed one-minute window per source and
//! client IP, enough to stop a bot hammering a form without a shared store; a restart
//! forgets the counts, which is acceptable here.

use leadflow_core::SourceName;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(SourceName, IpAddr), (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked clients, expired windows are dropped, so memory stays bounded.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    /// `Err(seconds)` until the window ends when this client used up its posts.
    pub fn check(&self, source: &SourceName, ip: IpAddr, per_minute: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= PRUNE_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry((source.clone(), ip)).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_per_source_and_ip() {
        let limiter = RateLimiter::default();
        let web = SourceName::parse("web").unwrap();
        let other = SourceName::parse("other").unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(&web, a, 2).is_ok());
        assert!(limiter.check(&web, a, 2).is_ok());
        let wait = limiter.check(&web, a, 2).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.check(&web, b, 2).is_ok());
        assert!(limiter.check(&other, a, 2).is_ok());
    }
}
