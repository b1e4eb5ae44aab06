//! Deliveries: the delivery client built from the configured destinations, and the
//! outbox's dead letters sent again. The delivery worker ([`crate::workers`]) makes the
//! tries; the outbox rows themselves are written with the changes that call for them.

use crate::{App, AppError};
use leadflow_core::config::{Config, ConfigError};
use leadflow_core::{FieldError, FieldErrorCode};
use leadflow_integrations::delivery::{Client, ClientSettings};
use leadflow_store::{DynStore, OutboxDelivery, ReplayFilter, StoreError};
use serde_json::{Map, Value, json};
use std::time::Duration;
use time::OffsetDateTime;

/// Builds the delivery client from the configured destinations, reading each `*_env`
/// secret through `env` now (the process environment in production). The error is keyed
/// by the destination's place in the file and names the variable, never a value.
pub fn client(config: &Config, env: impl Fn(&str) -> Option<String>) -> Result<Client, ConfigError> {
    let settings = ClientSettings {
        timeout: config.delivery.timeout,
        connect_timeout: config.delivery.timeout.min(Duration::from_secs(5)),
        ..ClientSettings::default()
    };
    let mut destinations = Vec::with_capacity(config.destinations.len());
    for (i, d) in config.destinations.iter().enumerate() {
        let mut v = Map::new();
        v.insert("name".into(), json!(d.name));
        v.insert("type".into(), json!(d.kind));
        v.insert("required_fields".into(), json!(d.required_fields));
        v.insert("consent".into(), json!(d.consent));
        v.insert("consent_fields".into(), json!(d.consent_fields));
        v.insert("fields".into(), json!(d.fields));
        v.insert("values".into(), json!(d.values));
        v.insert("owners".into(), json!(d.owners));
        v.insert("allow_http".into(), json!(d.allow_http));
        for (key, value) in &d.settings {
            match key.strip_suffix("_env") {
                Some(field) => {
                    let secret = env(value).ok_or_else(|| {
                        ConfigError::new(
                            format!("destinations[{i}].{key}"),
                            format!("the environment variable {value} is not set"),
                        )
                    })?;
                    v.insert(field.to_owned(), Value::String(secret));
                }
                None => {
                    v.insert(key.clone(), Value::String(value.clone()));
                }
            }
        }
        if let Some(retry) = &d.retry {
            let entries: Vec<String> = retry.iter().map(|r| format!("{}ms", r.as_millis())).collect();
            v.insert("retry".into(), json!(entries));
        }
        if let Some((failure_threshold, cool_down)) = d.circuit_breaker {
            let cool_down = format!("{}ms", cool_down.as_millis());
            v.insert("circuit_breaker".into(), json!({"failure_threshold": failure_threshold, "cool_down": cool_down}));
        }
        if let Some((per_second, burst)) = d.rate_limit {
            v.insert("rate_limit".into(), json!({"per_second": per_second, "burst": burst}));
        }
        let destination = serde_json::from_value(Value::Object(v))
            .map_err(|e| ConfigError::new(format!("destinations[{i}]"), e.to_string()))?;
        destinations.push(destination);
    }
    Client::new(settings, destinations)
}

/// Sends a dead (or needs-data) delivery again, with a fresh retry schedule and the same
/// idempotency key. `None` when there is no such delivery.
pub async fn replay_one(app: &App, id: &str) -> Result<Option<OutboxDelivery>, StoreError> {
    let replayed = app.store.replay_delivery(id, OffsetDateTime::now_utc()).await?;
    app.wake.delivery();
    Ok(replayed)
}

/// Replays the dead letters the filter takes; returns how many.
pub async fn replay_many(app: &App, filter: ReplayFilter) -> Result<u64, StoreError> {
    let replayed = app.store.replay_deliveries(filter, OffsetDateTime::now_utc()).await?;
    app.wake.delivery();
    Ok(replayed)
}

/// How many leads a backfill reads and queues at a time.
const BACKFILL_PAGE: usize = 1000;

/// Queues every lead created in `[from, to)` (either end open when `None`) for
/// `destination`, as it stands now, through the outbox: the destination gets a
/// `lead.backfilled` delivery per lead, retried and dead-lettered like any other, and
/// checked for consent when it is tried. Returns how many were queued. Erased leads and
/// leads merged away are not sent; run again, it queues only the leads that changed since
/// (see [`leadflow_core::changes::backfill`]), unless `resend` asks for every one anew.
pub async fn backfill(
    store: &DynStore,
    config: &Config,
    destination: &str,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    resend: bool,
) -> Result<u64, AppError> {
    let invalid =
        |message: String| AppError::Invalid(vec![FieldError::new("destination", FieldErrorCode::Invalid, message)]);
    let Some(dest) = config.destinations.iter().find(|d| d.name == destination) else {
        return Err(invalid(format!("{destination:?} is not a configured destination")));
    };
    if dest.kind == "slack" {
        return Err(invalid(format!("{destination:?} is a Slack channel: a backfill would post every lead to it")));
    }
    let mut after = None;
    let mut queued = 0u64;
    loop {
        let page = store.list_leads(after, BACKFILL_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let now = OffsetDateTime::now_utc();
        let deliveries: Vec<_> = page
            .iter()
            .filter(|l| from.is_none_or(|f| l.created_at >= f) && to.is_none_or(|t| l.created_at < t))
            .filter_map(|l| leadflow_core::changes::backfill(l, destination, now, resend))
            .collect();
        if !deliveries.is_empty() {
            queued += store.enqueue_deliveries(deliveries).await?;
        }
    }
    Ok(queued)
}
