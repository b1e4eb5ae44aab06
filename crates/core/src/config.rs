//! The configuration file, `leadflow.toml`: parsed and validated in one pass that reports
//! every problem with its line and column, not just the first.
//!
//! Each stage reads its own section: [`crate::source`] the sources, [`crate::normalize`]
//! the picklists, [`crate::resolve`] matching, [`crate::scoring`] scoring, the lifecycle
//! and routing, [`crate::deliver`] destinations and delivery, [`crate::feedback`] the
//! CRM feedback, [`crate::health::alerts`] the alert rules and channels,
//! [`crate::privacy::retention`] how long data is kept. This module
//! reads the TOML, hands each section to its stage in the order their checks need (the
//! lifecycle before what names its stages and reasons, the sources before routing, both
//! sources and destinations before alerts), and assembles [`Config`]. Every section
//! reports through the one [`ConfigError`].
//!
//! Precedence is defaults → file → environment → flags; this module handles the first
//! two, the command line applies the rest. Secrets are never written in the file: a
//! section names the environment variable that holds each one, and [`parse_with_env`]
//! also reports every such variable that is not set.

mod error;
pub(crate) mod read;
pub(crate) mod server;
#[cfg(test)]
mod tests;

pub use crate::deliver::DeliverySettings;
pub use crate::normalize::Picklists;
pub use crate::source::{
    Adapter, CHANNELS, DEFAULT_BATCH_INTERVAL, DEFAULT_RATE_LIMIT_PER_MINUTE, Mode, SourceConfig, default_required,
    origin_of,
};
pub use error::ConfigError;
pub use read::{format_duration, parse_duration};
pub use server::{
    DEFAULT_BODY_LIMIT_BYTES, DEFAULT_DATABASE_URL, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IMPORT_LIMIT_BYTES,
    DEFAULT_KEY_CACHE_TTL, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SERVER_MAX_CONNECTIONS, DEFAULT_UNAUTHENTICATED_RATE_PER_MINUTE, DatabaseConfig, ServerConfig,
};

use crate::deliver::{DestinationConfig, Subscriptions};
use crate::engagement::Engagement;
use crate::feedback::{CrmMapping, FeedbackRules};
use crate::health::alerts::AlertConfig;
use crate::privacy::retention::RetentionConfig;
use crate::resolve::Matching;
use crate::scoring::routing::RoutingConfig;
use crate::scoring::{LifecycleContract, ScoringConfig};
use crate::source::SourceName;
use read::{Problems, span};
use std::sync::Arc;
use toml_edit::{Document, Item, Table};

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub sources: Vec<SourceConfig>,
    pub picklists: Picklists,
    /// Identity resolution: exact email always; fuzzy matching when enabled.
    pub matching: Arc<Matching>,
    /// Scoring rules and the lifecycle contract.
    pub engagement: Arc<Engagement>,
    /// Where lead events are delivered.
    pub destinations: Vec<DestinationConfig>,
    pub delivery: DeliverySettings,
    /// Who gets a lead; off without a `[routing]` section.
    pub routing: Arc<RoutingConfig>,
    /// `[feedback]`: the stage each CRM status moves a lead to, and reason synonyms.
    pub feedback: FeedbackRules,
    /// `[alerts]`: the rules, with the defaults no written rule replaced, and the channels.
    pub alerts: Arc<AlertConfig>,
    /// `[privacy]`: the consent purposes and where the suppression key comes from.
    pub privacy: Arc<crate::consent::PrivacyConfig>,
    /// The key suppression hashes are made with, once the application has read it (from
    /// the environment, or the one generated for the database).
    pub suppression_key: Option<Arc<crate::suppress::SuppressionKey>>,
    /// `[retention]`: how long each kind of data is kept.
    pub retention: RetentionConfig,
    /// `[[regions]]`: where each lead is stored; empty for one database (`[database]`).
    pub regions: crate::region::Regions,
    /// `[encryption]`: where the master keys come from.
    pub encryption: crate::encryption::EncryptionConfig,
    /// The master keys, once the application has read them from the environment
    /// ([`crate::encryption::EncryptionConfig::master_keys`]); `None`: stored in clear.
    pub master_keys: Option<Arc<crate::encryption::MasterKeys>>,
}

impl Default for Config {
    /// The empty file: one source, `api`.
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            sources: vec![SourceConfig::api()],
            picklists: Picklists::default(),
            matching: Arc::default(),
            engagement: Arc::default(),
            destinations: Vec::new(),
            delivery: DeliverySettings::default(),
            routing: Arc::default(),
            feedback: FeedbackRules::default(),
            alerts: Arc::default(),
            privacy: Arc::default(),
            suppression_key: None,
            retention: RetentionConfig::default(),
            encryption: Default::default(),
            master_keys: None,
            regions: crate::region::Regions::default(),
        }
    }
}

impl Config {
    pub fn rules(&self) -> crate::pipeline::Rules {
        crate::pipeline::Rules {
            matching: self.matching.clone(),
            engagement: self.engagement.clone(),
            channels: Arc::new(self.sources.iter().map(|s| (s.name.clone(), s.channel())).collect()),
            outbox: Arc::new(Subscriptions::new(&self.destinations)),
            routing: self.routing.clone(),
            suppression: self.suppression_key.clone(),
        }
    }

    pub fn source(&self, name: &SourceName) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| &s.name == name)
    }

    /// The destination named `name`, if it takes feedback (`[destinations.feedback]`).
    pub fn feedback_destination(&self, name: &str) -> Option<(&DestinationConfig, &CrmMapping)> {
        self.destinations.iter().find(|d| d.name == name).and_then(|d| Some((d, d.feedback.as_ref()?)))
    }
}

/// The sections a file may have.
const SECTIONS: [&str; 16] = [
    "encryption",
    "privacy",
    "regions",
    "server",
    "database",
    "sources",
    "picklists",
    "matching",
    "scoring",
    "lifecycle",
    "routing",
    "destinations",
    "delivery",
    "feedback",
    "alerts",
    "retention",
];

/// Parses and validates the whole file; `Err` holds every problem found, in the order
/// they appear in the file.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    let doc = document(text)?;
    let mut p = Problems::default();
    let config = read(&mut p, doc.as_table());
    finish(p, text, config)
}

/// [`parse`], and every environment variable the file names (`secret_env`, `token_env`,
/// …) must be set: `is_set` says whether one is. What `check-config` runs, so one run
/// names everything there is to fix.
pub fn parse_with_env(text: &str, is_set: impl Fn(&str) -> bool) -> Result<Config, Vec<ConfigError>> {
    let doc = document(text)?;
    let mut p = Problems::default();
    let config = read(&mut p, doc.as_table());
    for v in p.take_variables() {
        if !is_set(&v.name) {
            p.push(v.span, &v.key, format!("the environment variable {} is not set", v.name));
        }
    }
    finish(p, text, config)
}

/// Parses a whole document and reads one section of it with `read`: what each stage's
/// own `parse` (e.g. [`ScoringConfig::parse`]) runs.
pub(crate) fn parse_section<T>(
    text: &str,
    section: &str,
    read: impl FnOnce(&mut Problems, Option<&Item>) -> T,
) -> Result<T, Vec<ConfigError>> {
    let doc = document(text)?;
    let mut p = Problems::default();
    let value = read(&mut p, doc.as_table().get(section));
    finish(p, text, value)
}

/// The TOML document, or its syntax error (the parser stops at the first).
fn document(text: &str) -> Result<Document<&str>, Vec<ConfigError>> {
    Document::parse(text).map_err(|e| vec![ConfigError::at(text, e.span(), String::new(), e.message().to_owned())])
}

fn finish<T>(p: Problems, text: &str, value: T) -> Result<T, Vec<ConfigError>> {
    if p.is_empty() { Ok(value) } else { Err(p.locate(text)) }
}

fn read(p: &mut Problems, root: &Table) -> Config {
    for (key, item) in root.iter() {
        if !SECTIONS.contains(&key) {
            p.push(item.span(), key, "unknown section or key");
        }
    }
    let table = |p: &mut Problems, name: &str| root.get(name).and_then(|item| p.table(item, name));
    let engagement = Engagement {
        scoring: ScoringConfig::read(p, root.get("scoring")),
        contract: LifecycleContract::read(p, root.get("lifecycle")),
    };
    let contract = &engagement.contract;
    let mut sources = root.get("sources").map(|item| crate::source::config::read(p, item)).unwrap_or_default();
    if sources.iter().all(|s| s.name != SourceName::api()) {
        sources.insert(0, SourceConfig::api());
    }
    let routing = RoutingConfig::read(p, root.get("routing"));
    for name in &routing.priority_sources {
        if sources.iter().all(|s| s.name.as_str() != name) {
            let span = root.get("routing").and_then(|r| r.get("priority_sources")).and_then(Item::span);
            p.push(span, "routing.priority_sources", format!("{name:?} is not a configured source"));
        }
    }
    let mut picklists: Picklists =
        table(p, "picklists").map(|t| crate::normalize::picklists::read(p, t)).unwrap_or_default();
    let privacy: crate::consent::PrivacyConfig =
        table(p, "privacy").map(|t| crate::consent::read_config(p, t)).unwrap_or_default();
    picklists.consent_purposes.clone_from(&privacy.purposes);
    let matching: Arc<Matching> = table(p, "matching").map(|t| crate::resolve::config::read(p, t)).unwrap_or_default();
    // The company key is made during normalization, which is given the picklists.
    picklists.legal_suffixes = matching.legal_suffixes.clone();
    let destinations: Vec<DestinationConfig> = root
        .get("destinations")
        .map(|item| crate::deliver::config::read(p, item, contract, &privacy.purposes))
        .unwrap_or_default();
    // After the sources and destinations: a rule's scope names one of them.
    let alerts = root.get("alerts").map(|item| {
        let sources: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let destinations: Vec<&str> = destinations.iter().map(|d| d.name.as_str()).collect();
        crate::health::alerts::config::read(p, item, &sources, &destinations)
    });
    let regions = root.get("regions").map(|item| {
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        crate::region::read(p, item, &names)
    });
    if regions.as_ref().is_some_and(|r| !r.is_empty())
        && let Some(url) = root.get("database").and_then(|d| d.get("url"))
    {
        p.push(span(url), "database.url", "with [[regions]], each region names its database: remove this");
    }
    Config {
        regions: regions.unwrap_or_default(),
        server: table(p, "server").map(|t| server::read_server(p, t)).unwrap_or_default(),
        database: table(p, "database").map(|t| server::read_database(p, t)).unwrap_or_default(),
        sources,
        picklists,
        matching,
        destinations,
        delivery: table(p, "delivery").map(|t| crate::deliver::config::read_settings(p, t)).unwrap_or_default(),
        feedback: table(p, "feedback").map(|t| crate::feedback::config::read(p, t, contract)).unwrap_or_default(),
        routing: Arc::new(routing),
        engagement: Arc::new(engagement),
        alerts: Arc::new(alerts.unwrap_or_default()),
        privacy: Arc::new(privacy),
        suppression_key: None,
        retention: root.get("retention").map(|item| crate::privacy::retention::read(p, item)).unwrap_or_default(),
        encryption: table(p, "encryption").map(|t| crate::encryption::read_config(p, t)).unwrap_or_default(),
        master_keys: None,
    }
}
