//! The delivery client: one shared HTTP client with timeouts, and per destination a
//! rate limiter, a circuit breaker and (for Salesforce) a cached access token.
//! [`Client::deliver`] makes exactly one try and classifies it; scheduling the next try
//! is the outbox's job, from the returned [`Attempt`]. Nothing here sleeps, so one slow
//! or failing destination never holds up another.
//!
//! Logging: delivery id, destination name and kind, outcome, status and timing only.
//! Never URLs (incoming-webhook URLs are credentials), bodies or lead fields.

use crate::delivery::attempt::{Attempt, DeferReason, Delivery, Outcome};
use crate::delivery::breaker::CircuitBreaker;
use crate::delivery::config::{Destination, DestinationKind, Secret, refusal};
use crate::delivery::erased::Erasure;
use crate::delivery::http::Verdict;
use crate::delivery::providers::{hubspot, salesforce, slack, webhook};
use crate::delivery::ratelimit::TokenBucket;
use crate::delivery::signature::SigningSecret;
use leadflow_core::config::ConfigError;
use reqwest::Url;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Where time comes from: a monotonic clock for rate limits and breakers, the wall
/// clock for signature timestamps. Tests pass their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
    fn wall(&self) -> OffsetDateTime;
}

/// The real clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Settings shared by every destination.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// For the whole exchange, the response body included.
    pub timeout: Duration,
    /// Bound on each request and response excerpt kept with an attempt.
    pub max_excerpt_bytes: usize,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after: Duration,
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_excerpt_bytes: 2048,
            max_retry_after: Duration::from_secs(3600),
            user_agent: concat!("leadflow-delivery/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A destination's validated target.
pub(crate) enum Target {
    Webhook { url: Url, secret: SigningSecret, previous: Option<SigningSecret> },
    HubSpot { endpoint: Url, gdpr_delete: Url, token: Secret, lead_status: Option<String> },
    Salesforce(Box<salesforce::Target>),
    Slack { url: Url },
}

pub(crate) struct DestinationState {
    pub config: Destination,
    pub target: Target,
    breaker: Mutex<CircuitBreaker>,
    bucket: Mutex<TokenBucket>,
}

/// What a provider needs from the client for one try.
pub(crate) struct Ctx<'a> {
    pub http: &'a reqwest::Client,
    pub settings: &'a ClientSettings,
    pub clock: &'a dyn Clock,
    pub delivery: &'a Delivery,
    /// Consent purpose → CRM property, for the CRMs ([`Destination::consent_fields`]).
    pub consent_fields: &'a std::collections::BTreeMap<String, String>,
    /// The destination's field, value and owner maps.
    pub maps: crate::delivery::map::Maps<'a>,
}

/// Delivers to the configured destinations. Cheap to share behind an `Arc`.
pub struct Client {
    http: reqwest::Client,
    settings: ClientSettings,
    clock: Arc<dyn Clock>,
    destinations: HashMap<String, DestinationState>,
}

/// The URL under `key` of the destination at `index`: `https://`, or `http://` to a
/// loopback host or when the destination sets `allow_http`. Checked here as well as when
/// the file is read, for the URLs that come from the environment (Slack's `url_env`).
pub(crate) fn parse_url(index: usize, key: &str, text: &str, config: &Destination) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| refusal(index, key, e.to_string()))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => {}
        _ => return Err(refusal(index, key, "must be an http:// or https:// URL")),
    }
    if !config.allow_http && !leadflow_core::deliver::is_secure_or_local(url.as_str()) {
        let name = format!("{:?}", config.name);
        return Err(refusal(index, key, leadflow_core::deliver::plain_http_refused(&name)));
    }
    Ok(url)
}

/// `base` with `segments` appended as path segments (percent-encoded).
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// A reqwest client builder that can speak HTTPS. reqwest is built without a TLS crypto
/// provider (see the workspace `Cargo.toml`), so this installs ring's as the process
/// default first; when one is installed already, that one stays.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

impl Client {
    /// The destinations held back by their circuit breaker now (open, or one probe out):
    /// paused, their deliveries queueing until a probe succeeds. This instance's view.
    pub fn paused(&self) -> Vec<String> {
        use crate::delivery::breaker::BreakerState;
        let mut names: Vec<String> = self
            .destinations
            .iter()
            .filter(|(_, d)| d.breaker.lock().unwrap_or_else(PoisonError::into_inner).state() != BreakerState::Closed)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// A client for `destinations`, in the configuration's order (what is refused is
    /// reported by position, as the file is).
    pub fn new(settings: ClientSettings, destinations: Vec<Destination>) -> Result<Self, ConfigError> {
        Self::with_clock(settings, destinations, Arc::new(SystemClock))
    }

    pub fn with_clock(
        settings: ClientSettings,
        destinations: Vec<Destination>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let http = http_client()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| ConfigError::new("delivery", format!("HTTP client: {e}")))?;
        let mut map = HashMap::new();
        for (index, config) in destinations.into_iter().enumerate() {
            let name = config.name.clone();
            let target = Self::target(index, &config)?;
            let state = DestinationState {
                breaker: Mutex::new(CircuitBreaker::new(config.circuit_breaker)),
                bucket: Mutex::new(TokenBucket::new(config.effective_rate_limit(), clock.now())),
                config,
                target,
            };
            if map.insert(name.clone(), state).is_some() {
                return Err(refusal(index, "name", format!("a destination named {name:?} is already declared")));
            }
        }
        Ok(Self { http, settings, clock, destinations: map })
    }

    fn target(index: usize, config: &Destination) -> Result<Target, ConfigError> {
        Ok(match &config.kind {
            DestinationKind::Webhook { url, secret, previous_secret } => Target::Webhook {
                url: parse_url(index, "url", url, config)?,
                secret: SigningSecret::parse(secret.expose())
                    .map_err(|e| refusal(index, "secret_env", format!("the secret it names is refused: {e}")))?,
                previous: previous_secret.as_ref().map(|s| SigningSecret::parse(s.expose())).transpose().map_err(
                    |e| refusal(index, "previous_secret_env", format!("the secret it names is refused: {e}")),
                )?,
            },
            DestinationKind::HubSpot { base_url, token, lead_status } => {
                let base = parse_url(index, "base_url", base_url, config)?;
                Target::HubSpot {
                    endpoint: join(&base, &["crm", "v3", "objects", "contacts", "batch", "upsert"]),
                    gdpr_delete: join(&base, &["crm", "v3", "objects", "contacts", "gdpr-delete"]),
                    token: token.clone(),
                    lead_status: lead_status.clone(),
                }
            }
            DestinationKind::Salesforce { .. } => Target::Salesforce(Box::new(salesforce::Target::new(index, config)?)),
            DestinationKind::Slack { url } => Target::Slack { url: parse_url(index, "url_env", url.expose(), config)? },
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    pub fn destination(&self, name: &str) -> Option<&Destination> {
        self.destinations.get(name).map(|d| &d.config)
    }

    /// The CRM's own id of the record a delivered try created or updated, read from its
    /// response: HubSpot's batch upsert `results[0].id`, Salesforce's `id`. `None` for
    /// other destinations, or when the (bounded) response does not show it. (An erasure's
    /// responses name no record it made: callers do not ask for them.)
    pub fn record_id(&self, destination: &str, response: &str) -> Option<String> {
        let kind = &self.destinations.get(destination)?.config.kind;
        let parsed: serde_json::Value = serde_json::from_str(response).ok()?;
        let id = match kind {
            DestinationKind::HubSpot { .. } => parsed.get("results")?.get(0)?.get("id")?,
            DestinationKind::Salesforce { .. } => parsed.get("id")?,
            DestinationKind::Webhook { .. } | DestinationKind::Slack { .. } => return None,
        };
        match id {
            serde_json::Value::String(s) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Makes one try at `delivery` and says what to do next.
    pub async fn deliver(&self, delivery: &Delivery) -> Attempt {
        let started = Instant::now();
        let (outcome, request_excerpt) = self.run(delivery).await;
        let duration = started.elapsed();
        let status = match &outcome {
            Outcome::Delivered { status, .. } => Some(*status),
            Outcome::Retry { status, .. } | Outcome::DeadLetter { status, .. } => *status,
            Outcome::Deferred { .. }
            | Outcome::NeedsData { .. }
            | Outcome::BlockedConsent { .. }
            | Outcome::Skipped { .. } => None,
        };
        let kind = self.destinations.get(&delivery.destination).map_or("unknown", |d| d.config.kind.label());
        tracing::info!(
            delivery_id = %delivery.id,
            destination = %delivery.destination,
            kind,
            attempt = delivery.attempt,
            outcome = outcome.label(),
            status,
            duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            "delivery attempt"
        );
        Attempt { outcome, request_excerpt, duration }
    }

    async fn run(&self, delivery: &Delivery) -> (Outcome, Option<String>) {
        let Some(dest) = self.destinations.get(&delivery.destination) else {
            let reason = "no destination of that name is configured".to_owned();
            return (Outcome::DeadLetter { status: None, response_excerpt: None, reason }, None);
        };

        // An erasure carries ids only: no field is required of it, and a CRM without a
        // record to delete is not called at all.
        let erasure = Erasure::of(delivery);
        match &erasure {
            // A consent change is how a destination learns to stop: it is never held back
            // for the very consent it reports missing.
            None if delivery.event_type != "lead.consent_changed"
                && !crate::delivery::preflight::missing_consent(&delivery.payload, &dest.config.consent).is_empty() =>
            {
                let missing = crate::delivery::preflight::missing_consent(&delivery.payload, &dest.config.consent);
                return (Outcome::BlockedConsent { missing }, None);
            }
            None => {
                let missing =
                    crate::delivery::preflight::missing_fields(&delivery.payload, &dest.config.all_required_fields());
                if !missing.is_empty() {
                    return (Outcome::NeedsData { missing }, None);
                }
            }
            Some(e) => {
                let nothing = match &dest.target {
                    Target::HubSpot { .. } => e.crm_ids.is_empty().then_some("HubSpot"),
                    Target::Salesforce(t) => (!t.erases_anything(e)).then_some("Salesforce"),
                    Target::Webhook { .. } | Target::Slack { .. } => None,
                };
                if let Some(provider) = nothing {
                    return (e.nothing_to_delete(provider), None);
                }
            }
        }

        let now = self.clock.now();
        let limited = dest.bucket.lock().unwrap_or_else(PoisonError::into_inner).try_acquire(now);
        if let Err(after) = limited {
            return (Outcome::Deferred { after, reason: DeferReason::RateLimited }, None);
        }
        let open = dest.breaker.lock().unwrap_or_else(PoisonError::into_inner).try_acquire(now);
        if let Err(after) = open {
            return (Outcome::Deferred { after, reason: DeferReason::CircuitOpen }, None);
        }

        let ctx = Ctx {
            http: &self.http,
            settings: &self.settings,
            clock: self.clock.as_ref(),
            delivery,
            consent_fields: &dest.config.consent_fields,
            maps: dest.config.maps(),
        };
        let exchange = match (&dest.target, &erasure) {
            (Target::Webhook { url, secret, previous }, _) => webhook::send(&ctx, url, secret, previous.as_ref()).await,
            (Target::HubSpot { gdpr_delete, token, .. }, Some(e)) => hubspot::erase(&ctx, gdpr_delete, token, e).await,
            (Target::HubSpot { endpoint, token, lead_status, .. }, None) => {
                hubspot::send(&ctx, endpoint, token, lead_status.as_deref()).await
            }
            (Target::Salesforce(target), Some(e)) => salesforce::erase(&ctx, target, e).await,
            (Target::Salesforce(target), None) => salesforce::send(&ctx, target).await,
            (Target::Slack { url }, _) => slack::send(&ctx, url).await,
        };

        {
            let mut breaker = dest.breaker.lock().unwrap_or_else(PoisonError::into_inner);
            match exchange.verdict {
                // The destination answered, even if to refuse: it is up.
                Verdict::Delivered | Verdict::Permanent { .. } => breaker.record_success(),
                Verdict::Retryable { .. } => breaker.record_failure(self.clock.now()),
            }
        }
        (
            self.outcome(dest, delivery, exchange.verdict, exchange.status, exchange.response_excerpt),
            exchange.request_excerpt,
        )
    }

    fn outcome(
        &self,
        dest: &DestinationState,
        delivery: &Delivery,
        verdict: Verdict,
        status: Option<u16>,
        response_excerpt: Option<String>,
    ) -> Outcome {
        match verdict {
            Verdict::Delivered => Outcome::Delivered {
                status: status.unwrap_or_default(),
                response_excerpt: response_excerpt.unwrap_or_default(),
            },
            Verdict::Permanent { reason } => Outcome::DeadLetter { status, response_excerpt, reason },
            Verdict::Retryable { retry_after, error } => {
                let next = delivery.attempt.saturating_add(1);
                match dest.config.retry.next_delay(next, &mut rand::rng()) {
                    Some(jittered) => {
                        // Retry-After is a floor: never sooner than asked, never sooner
                        // than the schedule (so a 1 s Retry-After cannot burn the tries).
                        let asked = retry_after.map_or(Duration::ZERO, |d| d.min(self.settings.max_retry_after));
                        Outcome::Retry { after: jittered.max(asked), status, error, response_excerpt }
                    }
                    None => Outcome::DeadLetter {
                        status,
                        response_excerpt,
                        reason: format!("gave up after {next} tries; last: {error}"),
                    },
                }
            }
        }
    }
}

/// Makes one try at `delivery` with `client`; see [`Client::deliver`].
pub async fn deliver(client: &Client, delivery: &Delivery) -> Attempt {
    client.deliver(delivery).await
}
