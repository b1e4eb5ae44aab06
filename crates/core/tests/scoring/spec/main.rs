//! The scoring crate's behaviour, as a specification: one test binary, a module per
//! concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod docs;
mod dry_run;
mod lifecycle;
mod props;
mod routing;
mod scoring;

use leadflow_core::scoring::{EventView, ScoringConfig};
use serde_json::{Map, Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

pub const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

pub fn config(toml: &str) -> ScoringConfig {
    ScoringConfig::parse(toml).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// A scoring config with the given rules under `[scoring]`.
pub fn rules(body: &str) -> ScoringConfig {
    config(&format!("[scoring]\nmql_threshold = 60\ngate = []\n{body}"))
}

pub fn lead(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

pub fn event(kind: &str, days_ago: f64, url: Option<&str>) -> EventView {
    EventView {
        kind: kind.to_owned(),
        at: NOW - Duration::seconds_f64(days_ago * 86_400.0),
        url: url.map(str::to_owned),
        properties: Map::new(),
    }
}

pub fn empty() -> Map<String, Value> {
    lead(json!({}))
}
