//! API keys as each request meets them: read from the store at most once per
//! `[server] key_cache_ttl` (a revocation reaches every instance within it), checked
//! against their lifecycle ([`ApiKey::admits`]), held to their rate, and their last use
//! written at most once a minute.

use crate::error::ApiError;
use crate::rate_limit::Bucket;
use leadflow_core::KeyId;
use leadflow_core::keys::{ApiKey, Refusal, TokenHash};
use leadflow_store::DynStore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How often a key's last use is written.
const USE_EVERY: time::Duration = time::Duration::minutes(1);
/// Past this many cached keys the expired ones go, so memory stays bounded.
const PRUNE_AT: usize = 10_000;

pub struct Keys {
    ttl: Duration,
    cached: Mutex<HashMap<TokenHash, (Instant, ApiKey)>>,
    buckets: Mutex<HashMap<KeyId, Bucket>>,
    written: Mutex<HashMap<KeyId, OffsetDateTime>>,
}

impl Keys {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, cached: Mutex::default(), buckets: Mutex::default(), written: Mutex::default() }
    }

    /// The key a token names, if it is accepted now from `client`: 401 for an unknown,
    /// revoked or expired key, 403 off its addresses, 429 over its rate.
    pub async fn admit(&self, store: &DynStore, hash: TokenHash, client: Option<IpAddr>) -> Result<ApiKey, ApiError> {
        let key = self.lookup(store, hash).await?.ok_or(ApiError::Unauthorized)?;
        let now = OffsetDateTime::now_utc();
        match key.admits(now, client) {
            Ok(()) => {}
            Err(Refusal::Revoked | Refusal::Expired) => return Err(ApiError::Unauthorized),
            Err(Refusal::Address) => {
                return Err(ApiError::Forbidden("this key is not accepted from this address".into()));
            }
        }
        if let Some(per_minute) = key.rate_limit_per_minute {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            let bucket = buckets.entry(key.id).or_insert_with(|| Bucket::full(per_minute, Instant::now()));
            bucket.take(per_minute, Instant::now()).map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
        }
        self.note_use(store, &key, now);
        Ok(key)
    }

    async fn lookup(&self, store: &DynStore, hash: TokenHash) -> Result<Option<ApiKey>, ApiError> {
        let now = Instant::now();
        if !self.ttl.is_zero() {
            let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, key)) = cached.get(&hash)
                && now.duration_since(*at) < self.ttl
            {
                return Ok(Some(key.clone()));
            }
        }
        let key = store.key_by_hash(hash).await?;
        if !self.ttl.is_zero() {
            let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
            if cached.len() >= PRUNE_AT {
                cached.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            }
            // Only keys that exist are kept: unknown tokens would fill the cache.
            match &key {
                Some(k) => cached.insert(hash, (now, k.clone())),
                None => cached.remove(&hash),
            };
        }
        Ok(key)
    }

    /// Writes the key's last use when the one written is a minute old, off the request.
    fn note_use(&self, store: &DynStore, key: &ApiKey, now: OffsetDateTime) {
        {
            let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            let last = written.get(&key.id).copied().or(key.last_used_at);
            if !ApiKey::use_is_stale(last, now, USE_EVERY) {
                return;
            }
            if written.len() >= PRUNE_AT {
                written.clear();
            }
            written.insert(key.id, now);
        }
        let (store, id) = (store.clone(), key.id);
        tokio::spawn(async move {
            if let Err(e) = store.touch_keys(vec![(id, now)]).await {
                tracing::warn!(key_id = %id, error = %e, "could not record when a key was used");
            }
        });
    }
}
