//! leadflow's delivery layer: sends lead events to the configured destinations — a
//! generic webhook signed per Standard Webhooks, HubSpot, Salesforce and a
//! Slack-compatible notification — one try at a time, and says what to do next.
//!
//! The worker reads an outbox row into a [`Delivery`], calls [`deliver`], and acts on
//! the [`Outcome`]: `Delivered`, `Retry` after a jittered delay from the destination's
//! [`RetrySchedule`] (or the server's `Retry-After`, whichever is later), `Deferred`
//! (rate limit or open circuit; not counted as a try), `DeadLetter` (a 4xx retrying
//! cannot fix, or the schedule is spent, kept with the response), or `NeedsData` (the
//! lead lacks a field the destination requires; nothing was sent). `lead.erased` asks
//! each destination to erase its copy of a person ([`erased`]); a CRM with nothing to
//! delete answers `Skipped`.

pub mod attempt;
pub mod breaker;
pub mod client;
pub mod config;
pub mod erased;
pub(crate) mod http;
pub mod map;
pub mod preflight;
mod providers;
pub mod ratelimit;
pub mod schedule;
pub mod signature;

pub use attempt::{Attempt, DeferReason, Delivery, Outcome};
pub use breaker::{BreakerState, CircuitBreaker};
pub use client::{Client, ClientSettings, Clock, SystemClock, deliver, http_client};
pub use config::{BreakerSettings, Destination, DestinationKind, RateLimit, Secret};
pub use ratelimit::TokenBucket;
pub use schedule::RetrySchedule;
pub use signature::{SignatureError, SigningSecret, sign, verify};
