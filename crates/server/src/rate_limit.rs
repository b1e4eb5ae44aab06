//! Per-address limits, kept in memory by each instance (a restart forgets the counts,
//! which is acceptable here; several instances each allow the rate).
//!
//! * [`RateLimiter`]: web-form posts, a fixed one-minute window per source and client IP,
//!   enough to stop a bot hammering a form.
//! * [`AddressLimiter`]: every route that takes no API key (`[server]
//!   unauthenticated_rate_per_minute`), a token bucket per client address that holds a
//!   minute's worth of requests and refills continuously, so a burst passes and a flood
//!   is answered 429 with `Retry-After`.

use leadflow_core::SourceName;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
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

/// A token bucket per client address. IPv6 clients are counted per /64, the block one
/// subscriber usually holds, so rotating through it gains nothing.
pub struct AddressLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A minute's worth of requests that refills continuously.
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(per_minute: u32, now: Instant) -> Self {
        Self { tokens: f64::from(per_minute), at: now }
    }

    fn refilled(&self, per_minute: u32, now: Instant) -> f64 {
        let capacity = f64::from(per_minute);
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * capacity / 60.0).min(capacity)
    }

    /// Takes a token; `Err(seconds)` until one is back when there is none.
    pub fn take(&mut self, per_minute: u32, now: Instant) -> Result<(), u64> {
        let per_second = f64::from(per_minute) / 60.0;
        self.tokens = self.refilled(per_minute, now);
        self.at = now;
        // The tolerance keeps float rounding from costing a request that is exactly due.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / per_second;
            Err(((wait - 1e-6).ceil() as u64).max(1))
        }
    }
}

impl AddressLimiter {
    /// `per_minute` requests a minute per address; 0 lets everything through.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::default() }
    }

    pub fn is_off(&self) -> bool {
        self.per_minute == 0
    }

    /// Takes a token for `ip`; `Err(seconds)` until one is back when it has none.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.is_off() {
            return Ok(());
        }
        let per_minute = self.per_minute;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            // A full bucket is the same as none.
            buckets.retain(|_, b| b.refilled(per_minute, now) < f64::from(per_minute));
        }
        buckets.entry(client_key(ip)).or_insert_with(|| Bucket::full(per_minute, now)).take(per_minute, now)
    }
}

/// The address a client is counted under: IPv4 (IPv4-mapped IPv6 included) as it is,
/// IPv6 by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_a_minute_of_requests_and_refills_continuously() {
        let limiter = AddressLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(a, t0).is_ok());
        }
        assert_eq!(limiter.check(a, t0), Err(20), "one token comes back every 20 s");
        assert!(limiter.check(b, t0).is_ok(), "another address has its own bucket");
        assert_eq!(limiter.check(a, t0 + Duration::from_secs(15)), Err(5));
        assert!(limiter.check(a, t0 + Duration::from_secs(20)).is_ok());
        assert!(limiter.check(a, t0 + Duration::from_secs(20)).is_err());
        assert!(AddressLimiter::new(0).check(a, t0).is_ok(), "0 is off");
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let limiter = AddressLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.check("2001:db8:1:2::1".parse().unwrap(), t0).is_ok());
        assert!(limiter.check("2001:db8:1:2:ffff::9".parse().unwrap(), t0).is_err());
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
        assert!(limiter.check("192.0.2.7".parse().unwrap(), t0).is_ok());
        assert!(limiter.check("::ffff:192.0.2.7".parse().unwrap(), t0).is_err());
    }

    #[test]
    fn full_buckets_are_pruned_so_memory_stays_bounded() {
        let limiter = AddressLimiter::new(60);
        let t0 = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            assert!(limiter.check(IpAddr::from(i.to_be_bytes()), t0).is_ok());
        }
        // A minute later every bucket is full again, so the next check drops them all.
        assert!(limiter.check("10.9.9.9".parse().unwrap(), t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }

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
