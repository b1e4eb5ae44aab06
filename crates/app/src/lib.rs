//! The application layer: one orchestrator per use case, and every background worker.
//!
//! The HTTP server, the CLI and the workers call in here; this calls the pure core for
//! what needs no storage (the adapter and map → normalize → validate) and the store for
//! the rest, which loads what the core's `settle` needs, lets it decide, and applies its
//! changes in one transaction. No HTTP type crosses this boundary: callers hand in parsed
//! values and get back outcomes they turn into their own answers.
//!
//! Start with [`ingest`]: it tells the story of a lead from arrival to delivery. The other
//! use cases each have a module: [`import`] (CSV and XLSX files), [`events`] (behavioural
//! events), [`feedback`] (what the CRMs say became of a lead), [`routing`] (owners and
//! lifecycle moves by hand), [`merges`] (reviews, unmerge, split, the batch dedupe),
//! [`rescore`], [`erase`] (the right to be forgotten), [`subject`] (subject access),
//! [`retention`] (what expires, daily), [`deliveries`] (replaying the
//! outbox), [`hooks`] (provider webhooks and web forms), [`sources`] (a source checked
//! end to end), [`reports`] and [`audit`] (administrative actions recorded). The
//! background work runs in [`workers`].
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
pub mod conversations;
pub mod deliveries;
pub mod encryption;
pub mod erase;
pub mod events;
pub mod feedback;
pub mod health;
pub mod hooks;
pub mod import;
pub mod ingest;
pub mod merges;
mod metrics;
pub mod privacy;
pub mod providers;
pub mod reports;
pub mod rescore;
pub mod retention;
pub mod routing;
pub mod sources;
pub mod subject;
pub mod weights;
pub mod workers;

use leadflow_core::FieldError;
use leadflow_core::config::Config;
use leadflow_store::{DynStore, StoreError};
use providers::Providers;
use std::sync::Arc;
use tokio::sync::Notify;

/// What every use case works with: the store, the configuration it runs under, the
/// providers' run-time secrets, and a way to wake the workers after a write.
#[derive(Clone)]
pub struct App {
    /// Settles under the configuration's rules, whatever rules it was opened with.
    pub store: DynStore,
    pub config: Arc<Config>,
    pub providers: Arc<Providers>,
    pub wake: Wake,
    /// Requests refused before anything was stored, counted for the health report.
    pub refusals: Arc<health::Refusals>,
    /// The delivery client once the workers run, for the destinations it holds paused.
    pub delivery: Arc<std::sync::OnceLock<Arc<leadflow_integrations::delivery::Client>>>,
}

impl App {
    /// An application without provider secrets or API client: enough for everything but
    /// provider webhooks, fetches and pulls (the CLI's commands).
    pub fn new(store: DynStore, config: Arc<Config>) -> Self {
        Self::with_providers(store, config, Providers::default())
    }

    pub fn with_providers(store: DynStore, config: Arc<Config>, providers: Providers) -> Self {
        // The rules share the configuration's matching model: the name frequencies the
        // worker counts into it reach capture.
        let store = store.with_rules(config.rules());
        Self {
            store,
            config,
            providers: Arc::new(providers),
            wake: Wake::default(),
            refusals: Arc::default(),
            delivery: Arc::default(),
        }
    }
}

/// Pokes the background workers: a write may have added outbox rows or queued a lead for
/// routing. Without a poke they still look every second; with one they act at once.
#[derive(Clone, Default)]
pub struct Wake {
    outbox: Arc<Notify>,
    routing: Arc<Notify>,
    resolver: Arc<Notify>,
}

impl Wake {
    /// After a write that may have given the delivery, routing or resolver worker work.
    pub fn written(&self) {
        self.outbox.notify_one();
        self.routing.notify_one();
        self.resolver.notify_one();
    }

    /// After a write that may have added outbox rows only (routing a lead).
    pub fn delivery(&self) {
        self.outbox.notify_one();
    }
}

/// Why a use case could not be carried out. Each caller maps these once (the server to
/// problem documents, the CLI to exit codes).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input does not make a valid submission (the pipeline's field errors).
    #[error("the submission has invalid fields")]
    Invalid(Vec<FieldError>),
    /// A provider's request refused by its adapter (signature, timestamp, shape).
    #[error(transparent)]
    Provider(#[from] leadflow_integrations::channels::HookError),
}
