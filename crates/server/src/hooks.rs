//! Provider webhooks at run time: each source's secrets (read from the environment once,
//! at start-up, and never logged), the per-IP limit on web-form posts, and the settling
//! of submissions that wait for the provider's API (Facebook, LinkedIn) or their batch.
//!
//! Durability: an item is in the inbox before the provider gets its 200. A fetch that
//! fails leaves it pending; the next batch tick or start-up fetches it again, and the
//! idempotency key (the provider's lead id) keeps a retried item from becoming a second
//! lead.

use crate::ingest::{self, OnInvalid};
use leadflow_core::SourceName;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Adapter, Config, Mode, SourceConfig};
use leadflow_integrations::channels::fetch::{self, FetchError, RetryPolicy};
use leadflow_integrations::channels::{Fetch, Secrets, SpamRules};
use leadflow_store::{DynStore, StoreError};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::watch;

const FACEBOOK_API: &str = "https://graph.facebook.com";
const LINKEDIN_API: &str = "https://api.linkedin.com";

/// What a source needs at run time beyond its configuration.
pub struct HookSource {
    pub secrets: Secrets,
    /// The provider API token (`token_env`), for the adapters that fetch.
    token: Option<String>,
    pub rules: SpamRules,
}

pub struct Hooks {
    sources: HashMap<SourceName, HookSource>,
    /// Each feedback destination's secret (`[destinations.feedback] secret_env`): HubSpot's
    /// app client secret or Salesforce's `?token=`. Never logged.
    feedback: HashMap<String, String>,
    pub limiter: RateLimiter,
    fetch: Option<fetch::Client>,
}

impl Hooks {
    /// Reads every source's secrets from the environment variables its configuration
    /// names. A variable that is not set is reported by name (never by value); the
    /// source then refuses what needs the secret instead of accepting it unchecked.
    pub fn from_env(config: &Config) -> Self {
        Self::from_lookup(config, &|var| std::env::var(var).ok())
    }

    /// [`Hooks::from_env`] with the variables read through `lookup` (tests cannot set the
    /// process environment safely while other tests run).
    pub fn from_lookup(config: &Config, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut sources = HashMap::new();
        for s in config.sources.iter().filter(|s| s.adapter.is_provider()) {
            let read = |var: &Option<String>| {
                let var = var.as_deref()?;
                match lookup(var) {
                    Some(v) if !v.is_empty() => Some(v),
                    _ => {
                        tracing::warn!(source = %s.name, variable = var, "environment variable not set");
                        None
                    }
                }
            };
            let defaults = SpamRules::default();
            let rules = SpamRules {
                honeypot_field: s.honeypot_field.clone().unwrap_or(defaults.honeypot_field),
                min_fill_ms: s
                    .min_submit_secs
                    .map_or(defaults.min_fill_ms, |secs| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)),
                ..defaults
            };
            let secrets = Secrets { secret: read(&s.secret_env), verify_token: read(&s.verify_token_env) };
            sources.insert(s.name.clone(), HookSource { secrets, token: read(&s.token_env), rules });
        }
        let fetch = fetch::Client::new(RetryPolicy::default())
            .map_err(|e| tracing::error!(error = %e, "provider API client could not be built"))
            .ok();
        let mut feedback = HashMap::new();
        for d in &config.destinations {
            let Some(mapping) = &d.feedback else { continue };
            match lookup(&mapping.secret_env) {
                Some(v) if !v.is_empty() => {
                    feedback.insert(d.name.clone(), v);
                }
                _ => {
                    tracing::warn!(destination = %d.name, variable = %mapping.secret_env, "environment variable not set; its feedback is refused")
                }
            }
        }
        Self { sources, feedback, limiter: RateLimiter::default(), fetch }
    }

    /// The secret authenticating a destination's feedback, if it is set.
    pub fn feedback_secret(&self, destination: &str) -> Option<&str> {
        self.feedback.get(destination).map(String::as_str)
    }

    pub fn source(&self, name: &SourceName) -> Option<&HookSource> {
        self.sources.get(name)
    }

    /// Reads the lead from the provider's API when the source's adapter notifies with an
    /// id only, and keeps the answer in the payload (so the inbox holds it from then on).
    /// Other submissions are left as they are.
    pub async fn complete(&self, config: &Config, sub: &mut RawSubmission) -> Result<(), String> {
        let Some(source) = config.source(&sub.source) else { return Ok(()) };
        if !source.adapter.fetches() || sub.payload.contains_key(Fetch::FETCHED_KEY) {
            return Ok(());
        }
        let token = self
            .sources
            .get(&sub.source)
            .and_then(|h| h.token.as_deref())
            .ok_or_else(|| format!("no API token: the variable named by token_env of {} is not set", sub.source))?;
        let client = self.fetch.as_ref().ok_or("no provider API client")?;
        let fetched = match source.adapter {
            Adapter::FacebookLeadAds => {
                let id = id_text(sub.payload.get("leadgen_id")).ok_or("no leadgen_id")?;
                let base = source.api_base_url.as_deref().unwrap_or(FACEBOOK_API);
                fetch::facebook::fetch_lead(client, base, token, &id).await
            }
            Adapter::LinkedinLeadGen => {
                let urn = ["leadGenFormResponse", "leadFormResponse"]
                    .iter()
                    .find_map(|k| sub.payload.get(*k).and_then(Value::as_str))
                    .ok_or("no leadGenFormResponse")?;
                let id = urn.rsplit(':').next().unwrap_or(urn);
                let base = source.api_base_url.as_deref().unwrap_or(LINKEDIN_API);
                let response = fetch::linkedin::fetch_form_response(client, base, token, id).await;
                // Answers carry question ids only; the form says which standard field each
                // is, so without it the lead would have no email and be quarantined.
                if let Ok(resp) = &response
                    && let Some(form_id) = fetch::linkedin::form_id(resp)
                {
                    let form = fetch::linkedin::fetch_lead_form(client, base, token, &form_id)
                        .await
                        .map_err(|e| describe(&e))?;
                    sub.payload.insert("form".into(), Value::Object(form));
                }
                response
            }
            _ => return Ok(()),
        };
        let fetched = fetched.map_err(|e| describe(&e))?;
        Fetch::merge_into(&mut sub.payload, fetched);
        Ok(())
    }

    /// Fetches what must be fetched, then runs the pipeline (the invalid go to the
    /// quarantine). A submission whose fetch fails stays pending. Returns how many were
    /// handed to the pipeline.
    pub async fn settle(
        &self,
        store: &DynStore,
        config: &Config,
        submissions: Vec<RawSubmission>,
    ) -> Result<usize, StoreError> {
        let mut ready = Vec::with_capacity(submissions.len());
        for mut sub in submissions {
            match self.complete(config, &mut sub).await {
                Ok(()) => ready.push(sub),
                Err(e) => tracing::warn!(submission_id = %sub.id, source = %sub.source, error = %e,
                    "provider fetch failed; the submission stays pending"),
            }
        }
        let n = ready.len();
        if n > 0 {
            ingest::submit(store, config, ready, OnInvalid::Quarantine).await?;
        }
        Ok(n)
    }
}

/// A fetch error without the provider's answer body, which may echo personal data.
fn describe(e: &FetchError) -> String {
    match e {
        FetchError::Status { status, .. } => format!("provider answered {status}"),
        FetchError::Transport(t) => format!("transport: {t}"),
        FetchError::Decode(d) => format!("unexpected answer: {d}"),
    }
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Settles, every `batch_interval`, the pending submissions of each batch source; the
/// first round runs at once (start-up). Stops when `stop` changes or is dropped.
///
/// Several instances may run these workers against one database: each round belongs to a
/// period (the time truncated to the interval) and only the instance whose claim of that
/// period wins settles it, so a batch is settled once per period, not once per instance.
pub fn spawn_batch_workers(store: DynStore, config: Arc<Config>, hooks: Arc<Hooks>, stop: watch::Receiver<bool>) {
    let batch: Vec<SourceConfig> = config.sources.iter().filter(|s| s.mode == Mode::Batch).cloned().collect();
    for source in batch {
        let (store, config, hooks) = (store.clone(), config.clone(), hooks.clone());
        let job = format!("batch:{}", source.name);
        spawn_periodic(store.clone(), job, source.batch_interval, stop.clone(), move || {
            let (store, config, hooks, source) = (store.clone(), config.clone(), hooks.clone(), source.clone());
            async move {
                match settle_batch(&store, &config, &hooks, &source.name).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(source = %source.name, settled = n, "batch settled"),
                    Err(e) => tracing::error!(source = %source.name, error = %e, "batch settling failed"),
                }
            }
        });
    }
}

/// Pulls, every `pull_interval`, the lead form responses of each LinkedIn source that has
/// one, once per period across instances (see [`spawn_batch_workers`]). The first round
/// runs at once. Stops when `stop` changes or is dropped.
pub fn spawn_pull_workers(store: DynStore, config: Arc<Config>, hooks: Arc<Hooks>, stop: watch::Receiver<bool>) {
    let pulls: Vec<(SourceConfig, Duration)> = config
        .sources
        .iter()
        .filter(|s| s.adapter == Adapter::LinkedinLeadGen)
        .filter_map(|s| Some((s.clone(), s.pull_interval?)))
        .collect();
    for (source, interval) in pulls {
        let (store, config, hooks) = (store.clone(), config.clone(), hooks.clone());
        let job = format!("pull:{}", source.name);
        spawn_periodic(store.clone(), job, interval, stop.clone(), move || {
            let (store, config, hooks, source) = (store.clone(), config.clone(), hooks.clone(), source.clone());
            async move {
                match pull_linkedin(&store, &config, &hooks, &source).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(source = %source.name, pulled = n, "lead form responses pulled"),
                    Err(e) => {
                        tracing::error!(source = %source.name, error = %e, "pull failed; it resumes from the saved cursor")
                    }
                }
            }
        });
    }
}

/// How often submissions left pending by a failed provider fetch (or a failed settle) are
/// tried again, outside batch sources, which keep their own schedule.
pub const RETRY_PENDING_INTERVAL: Duration = Duration::from_secs(60);

/// Retries, every [`RETRY_PENDING_INTERVAL`], the pending submissions of realtime sources:
/// a provider that was down when its lead arrived is asked again without a restart.
pub fn spawn_pending_retry(store: DynStore, config: Arc<Config>, hooks: Arc<Hooks>, stop: watch::Receiver<bool>) {
    spawn_periodic(store.clone(), "retry-pending".to_owned(), RETRY_PENDING_INTERVAL, stop, move || {
        let (store, config, hooks) = (store.clone(), config.clone(), hooks.clone());
        async move {
            let realtime = |s: &RawSubmission| config.source(&s.source).is_none_or(|src| src.mode != Mode::Batch);
            match crate::ingest::settle_pending(&store, &config, &hooks, realtime).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(settled = n, "settled submissions that were pending"),
                Err(e) => tracing::error!(error = %e, "retrying pending submissions failed"),
            }
        }
    });
}

/// Runs `round` every `interval` (the first at once) for the periods this instance claims.
fn spawn_periodic<F, Fut>(store: DynStore, job: String, interval: Duration, mut stop: watch::Receiver<bool>, round: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let start = period_start(OffsetDateTime::now_utc(), interval);
            match store.try_claim_period(&job, start).await {
                Ok(true) => round().await,
                // Another instance (or an earlier round of this one) has this period.
                Ok(false) => {}
                Err(e) => tracing::error!(job = %job, error = %e, "could not claim the period; skipping it"),
            }
        }
    });
}

/// The start of the period `now` falls in: `now` truncated to a multiple of `interval`
/// since the Unix epoch, so every instance computes the same start.
pub fn period_start(now: OffsetDateTime, interval: Duration) -> OffsetDateTime {
    let step = i128::try_from(interval.as_millis()).unwrap_or(i128::MAX).max(1);
    let ms = now.unix_timestamp_nanos() / 1_000_000;
    let start = ms - ms.rem_euclid(step);
    OffsetDateTime::from_unix_timestamp_nanos(start * 1_000_000).unwrap_or(now)
}

/// Pages a pull reads in one round at most, so one round cannot run forever against a
/// provider that keeps handing out cursors.
const MAX_PULL_PAGES: usize = 1000;

/// One pull round of a LinkedIn source: reads lead form responses from the saved cursor
/// on, stores each through the pipeline under the key the webhook path gives it (a lead
/// seen both ways is stored once), and saves the next cursor only once the page's items
/// are durable. Returns how many responses were read.
pub async fn pull_linkedin(
    store: &DynStore,
    config: &Config,
    hooks: &Hooks,
    source: &SourceConfig,
) -> Result<usize, String> {
    let token = hooks
        .sources
        .get(&source.name)
        .and_then(|h| h.token.as_deref())
        .ok_or_else(|| format!("no API token: the variable named by token_env of {} is not set", source.name))?;
    let client = hooks.fetch.as_ref().ok_or("no provider API client")?;
    let owner = match source.linkedin_owner.as_deref() {
        Some(urn) if urn.starts_with("urn:li:organization:") => fetch::linkedin::Owner::Organization(urn.to_owned()),
        Some(urn) => fetch::linkedin::Owner::SponsoredAccount(urn.to_owned()),
        None => return Err("no linkedin_owner".into()),
    };
    let base = source.api_base_url.as_deref().unwrap_or(LINKEDIN_API);
    let cursor_name = format!("pull:{}", source.name);
    let mut cursor = store.get_cursor(&cursor_name).await.map_err(|e| e.to_string())?;
    let mut forms: HashMap<String, serde_json::Map<String, Value>> = HashMap::new();
    let mut read = 0;
    for _ in 0..MAX_PULL_PAGES {
        let page = fetch::linkedin::fetch_form_responses(client, base, token, &owner, cursor.as_deref())
            .await
            .map_err(|e| describe(&e))?;
        read += page.responses.len();
        let mut submissions = Vec::with_capacity(page.responses.len());
        for response in page.responses {
            // Answers carry question ids only; the form says which standard field each is.
            let form = match fetch::linkedin::form_id(&response) {
                Some(id) => match forms.get(&id) {
                    Some(form) => Some(form.clone()),
                    None => {
                        let form = fetch::linkedin::fetch_lead_form(client, base, token, &id)
                            .await
                            .map_err(|e| describe(&e))?;
                        forms.insert(id, form.clone());
                        Some(form)
                    }
                },
                None => None,
            };
            let mut item = match leadflow_integrations::channels::linkedin_pull_item(response) {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(source = %source.name, error = %e, "lead form response skipped");
                    continue;
                }
            };
            if let Some(form) = form {
                item.payload.insert("form".into(), Value::Object(form));
            }
            let key = crate::routes::hooks::key_of(&item);
            submissions.push(RawSubmission::new(source.name.clone(), key, item.payload));
        }
        if !submissions.is_empty() {
            ingest::submit(store, config, submissions, OnInvalid::Quarantine).await.map_err(|e| e.to_string())?;
        }
        match page.next_cursor {
            Some(next) => {
                store.set_cursor(&cursor_name, &next).await.map_err(|e| e.to_string())?;
                cursor = Some(next);
            }
            // The last page is read again next round (from its own start, the saved
            // cursor), so responses added to it since are not missed; their keys keep
            // the ones already stored from being stored twice.
            None => break,
        }
    }
    Ok(read)
}

/// One batch round for one source: up to a page of its pending submissions.
async fn settle_batch(
    store: &DynStore,
    config: &Config,
    hooks: &Hooks,
    name: &SourceName,
) -> Result<usize, StoreError> {
    const PAGE: usize = 1000;
    let pending: Vec<RawSubmission> =
        store.pending_submissions(PAGE).await?.into_iter().filter(|s| &s.source == name).collect();
    hooks.settle(store, config, pending).await
}

/// A fixed one-minute window per source and client IP: enough to stop a bot hammering a
/// form without a shared store; a restart forgets the counts, which is acceptable here.
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
