//! The configuration file, `leadflow.toml`: parsed and validated in one pass that reports
//! every problem with its line and column, not just the first.
//!
//! Precedence is defaults → file → environment → flags; this module handles the first
//! two, the command line applies the rest. Secrets are never written in the file: a
//! source names the environment variable that holds its secret.

use crate::deliver::{DestinationConfig, EventType, Subscriptions};
use crate::engagement::Engagement;
use crate::feedback::{CrmKind, CrmMapping, FeedbackRules, FeedbackStatus, MappedStatus};
use crate::mapping::MappingSpec;
use crate::normalize::Picklist;
use crate::resolve::merge::{Rule, Survivorship};
use crate::resolve::{Matching, Model};
use crate::source::SourceName;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use toml_edit::{Document, Item, Table, Value};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://leadflow.db";
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
pub const DEFAULT_IMPORT_LIMIT_BYTES: usize = 100 * 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    pub routing: Arc<crate::scoring::routing::RoutingConfig>,
    /// `[feedback]`: the stage each CRM status moves a lead to, and reason synonyms.
    pub feedback: FeedbackRules,
}

/// How the delivery worker runs, for every destination.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliverySettings {
    /// For one whole try, the response included.
    pub timeout: Duration,
    /// Tries in flight at once, over all destinations.
    pub concurrency: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(15), concurrency: 64 }
    }
}

/// Controlled values with their synonyms; an unmatched value is kept and flagged.
#[derive(Clone, Debug, PartialEq)]
pub struct Picklists {
    pub industry: Picklist,
}

impl Default for Picklists {
    fn default() -> Self {
        Self { industry: crate::normalize::default_industries() }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    /// The largest file accepted by `POST /v1/imports`.
    pub import_limit_bytes: usize,
    pub request_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseConfig {
    pub url: String,
    /// The most connections one instance opens to PostgreSQL (unused by SQLite). Every
    /// instance holds up to this many, so instances × this must stay below the server's
    /// `max_connections`.
    pub max_connections: usize,
}

/// How a source's payloads are verified and parsed: `json` (the standard fields, checked
/// by the API's bearer keys) or one provider's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// The standard fields as JSON.
    Json,
    WebForm,
    FacebookLeadAds,
    GoogleAdsLeadForm,
    LinkedinLeadGen,
    Typeform,
    HubspotForms,
    Calendly,
    ZoomWebinar,
    Intercom,
    Unbounce,
    Webflow,
    Jotform,
    Tally,
}

impl Adapter {
    /// Every adapter, in the contract's order.
    pub const ALL: [Adapter; 14] = [
        Adapter::Json,
        Adapter::WebForm,
        Adapter::FacebookLeadAds,
        Adapter::GoogleAdsLeadForm,
        Adapter::LinkedinLeadGen,
        Adapter::Typeform,
        Adapter::HubspotForms,
        Adapter::Calendly,
        Adapter::ZoomWebinar,
        Adapter::Intercom,
        Adapter::Unbounce,
        Adapter::Webflow,
        Adapter::Jotform,
        Adapter::Tally,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::WebForm => "web_form",
            Self::FacebookLeadAds => "facebook_lead_ads",
            Self::GoogleAdsLeadForm => "google_ads_lead_form",
            Self::LinkedinLeadGen => "linkedin_lead_gen",
            Self::Typeform => "typeform",
            Self::HubspotForms => "hubspot_forms",
            Self::Calendly => "calendly",
            Self::ZoomWebinar => "zoom_webinar",
            Self::Intercom => "intercom",
            Self::Unbounce => "unbounce",
            Self::Webflow => "webflow",
            Self::Jotform => "jotform",
            Self::Tally => "tally",
        }
    }

    /// Providers that sign their requests: without the secret nothing they send can be
    /// trusted, so the source is unusable. Web forms, Unbounce and Jotform do not sign (a
    /// secret there is an optional `?token=`), and `json` uses bearer keys.
    pub fn needs_secret(&self) -> bool {
        !matches!(self, Self::Json | Self::WebForm | Self::Unbounce | Self::Jotform)
    }

    /// Providers that notify with an id only; the lead is read back from their API.
    pub fn fetches(&self) -> bool {
        matches!(self, Self::FacebookLeadAds | Self::LinkedinLeadGen)
    }
}

/// When a source's submissions are settled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// As they arrive.
    #[default]
    Realtime,
    /// Stored as they arrive, settled together every `batch_interval`.
    Batch,
}

pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_secs(900);
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 20;

#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    pub name: SourceName,
    pub adapter: Adapter,
    /// The environment variable holding the source's signing secret, if it has one.
    pub secret_env: Option<String>,
    /// ISO 3166-1 alpha-2 country used to read national phone numbers when a lead gives
    /// no country.
    pub default_country: Option<String>,
    /// How this source's field names map onto the standard fields, beyond the synonyms.
    pub mapping: Option<MappingSpec>,
    /// Fields a lead from this source must have; each entry is one field or alternatives
    /// joined by `|`. Default: an email or a phone.
    pub required: Vec<Vec<String>>,
    /// The provider's API root for adapters that fetch the lead (tests point it at a fake).
    pub api_base_url: Option<String>,
    /// The environment variable holding the provider API token (fetching adapters).
    pub token_env: Option<String>,
    /// The environment variable holding Facebook's `hub.verify_token`.
    pub verify_token_env: Option<String>,
    pub mode: Mode,
    pub batch_interval: Duration,
    /// Origins (`https://www.example.com`) a web form may be posted from: CORS and the
    /// `retURL` redirect are allowed for these only.
    pub allowed_origins: Vec<String>,
    /// The hidden field that only bots fill (web forms); default `_lf_hp`.
    pub honeypot_field: Option<String>,
    /// A web form sent sooner than this after the page loaded is a bot; default 3 s.
    pub min_submit_secs: Option<u64>,
    /// Web-form posts accepted per client IP and minute.
    pub rate_limit_per_minute: u32,
    /// The kind of channel, for attribution reports; `None`: from the adapter.
    pub channel: Option<&'static str>,
    /// A LinkedIn source that also pulls its lead form responses this often (catching
    /// what a missed webhook never delivered); `None`: webhooks only.
    pub pull_interval: Option<Duration>,
    /// Who owns the lead forms a LinkedIn pull reads: `urn:li:sponsoredAccount:N` or
    /// `urn:li:organization:N`.
    pub linkedin_owner: Option<String>,
}

/// Channel kinds a source may declare.
pub const CHANNELS: &[&str] =
    &["web_form", "paid_ads", "chat", "social", "event", "partner", "sales_tool", "third_party", "import", "api"];

impl SourceConfig {
    /// The source's channel kind: as configured, or what its adapter says it is.
    pub fn channel(&self) -> &'static str {
        self.channel.unwrap_or(match self.adapter {
            Adapter::Json => "api",
            Adapter::FacebookLeadAds | Adapter::GoogleAdsLeadForm | Adapter::LinkedinLeadGen => "paid_ads",
            Adapter::Calendly => "sales_tool",
            Adapter::ZoomWebinar => "event",
            Adapter::Intercom => "chat",
            Adapter::WebForm
            | Adapter::Typeform
            | Adapter::HubspotForms
            | Adapter::Unbounce
            | Adapter::Webflow
            | Adapter::Jotform
            | Adapter::Tally => "web_form",
        })
    }
}

/// A lead must be reachable.
pub fn default_required() -> Vec<Vec<String>> {
    vec![vec!["email".to_owned(), "phone".to_owned()]]
}

impl SourceConfig {
    pub fn api() -> Self {
        Self {
            name: SourceName::api(),
            adapter: Adapter::Json,
            secret_env: None,
            default_country: None,
            mapping: None,
            required: default_required(),
            api_base_url: None,
            token_env: None,
            verify_token_env: None,
            mode: Mode::Realtime,
            batch_interval: DEFAULT_BATCH_INTERVAL,
            allowed_origins: Vec::new(),
            honeypot_field: None,
            min_submit_secs: None,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            channel: None,
            pull_interval: None,
            linkedin_owner: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
                body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
                import_limit_bytes: DEFAULT_IMPORT_LIMIT_BYTES,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
            },
            database: DatabaseConfig { url: DEFAULT_DATABASE_URL.to_owned(), max_connections: DEFAULT_MAX_CONNECTIONS },
            sources: vec![SourceConfig::api()],
            picklists: Picklists::default(),
            matching: Arc::new(Matching::default()),
            engagement: Arc::new(Engagement::default()),
            destinations: Vec::new(),
            delivery: DeliverySettings::default(),
            routing: Arc::default(),
            feedback: FeedbackRules::default(),
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

/// One problem in the file, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    /// The dotted key, e.g. `sources[1].adapter`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.line, self.column, self.key, self.message)
        }
    }
}

impl From<crate::scoring::ConfigError> for ConfigError {
    fn from(e: crate::scoring::ConfigError) -> Self {
        Self { line: e.line, column: e.column, key: e.key, message: e.message }
    }
}

/// Parses and validates the whole file; `Err` holds every problem found.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            return Err(vec![ConfigError { line, column, key: String::new(), message: e.message().to_owned() }]);
        }
    };
    let mut v = Validator { text, errors: Vec::new() };
    let mut config = Config::default();
    let root = doc.as_table();
    let (mut scoring_config, mut contract_config) = (None, None);
    let mut feedback_table = None;
    for (key, item) in root.iter() {
        match key {
            "server" => {
                if let Some(t) = v.table(item, "server") {
                    v.server(t, &mut config.server);
                }
            }
            "database" => {
                if let Some(t) = v.table(item, "database") {
                    v.database(t, &mut config.database);
                }
            }
            "sources" => config.sources = v.sources(item),
            "destinations" => config.destinations = v.destinations(item),
            "delivery" => {
                if let Some(t) = v.table(item, "delivery") {
                    v.delivery(t, &mut config.delivery);
                }
            }
            "matching" => {
                if let Some(t) = v.table(item, "matching") {
                    v.matching(t, &mut config.matching);
                }
            }
            "scoring" => match crate::scoring::ScoringConfig::from_toml(Some(item), text) {
                Ok(scoring) => scoring_config = Some(scoring),
                Err(errors) => v.errors.extend(errors.into_iter().map(ConfigError::from)),
            },
            "lifecycle" => match crate::scoring::LifecycleContract::from_toml(Some(item), text) {
                Ok(contract) => contract_config = Some(contract),
                Err(errors) => v.errors.extend(errors.into_iter().map(ConfigError::from)),
            },
            "routing" => match crate::scoring::routing::RoutingConfig::from_toml(Some(item), text) {
                Ok(routing) => config.routing = Arc::new(routing),
                Err(errors) => v.errors.extend(errors.into_iter().map(ConfigError::from)),
            },
            "picklists" => {
                if let Some(t) = v.table(item, "picklists") {
                    v.picklists(t, &mut config.picklists);
                }
            }
            "feedback" => feedback_table = v.table(item, "feedback"),
            other => v.error(item.span(), other, "unknown section or key"),
        }
    }
    if scoring_config.is_some() || contract_config.is_some() {
        config.engagement = Arc::new(Engagement {
            scoring: scoring_config.unwrap_or_default(),
            contract: contract_config.unwrap_or_default(),
        });
    }
    // Stage names and reasons are checked against the contract, which may come later in
    // the file than `[feedback]`.
    if let Some(t) = feedback_table {
        config.feedback = v.feedback(t, &config.engagement.contract);
    }
    for d in &config.destinations {
        if let Some(mapping) = &d.feedback {
            v.check_reasons(
                &mapping.reasons,
                &format!("destination {:?} feedback.reasons", d.name),
                &config.engagement.contract,
            );
        }
    }
    if config.sources.iter().all(|s| s.name != SourceName::api()) {
        config.sources.insert(0, SourceConfig::api());
    }
    for name in &config.routing.priority_sources {
        if config.sources.iter().all(|s| s.name.as_str() != name) {
            let span = root.get("routing").and_then(|r| r.get("priority_sources")).and_then(Item::span);
            v.error(span, "routing.priority_sources", format!("{name:?} is not a configured source"));
        }
    }
    if v.errors.is_empty() { Ok(config) } else { Err(v.errors) }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

struct Validator<'a> {
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn error(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        let (line, column) = span.map_or((1, 1), |s| line_col(self.text, s.start));
        self.errors.push(ConfigError { line, column, key: key.to_owned(), message: message.into() });
    }

    fn table<'i>(&mut self, item: &'i Item, key: &str) -> Option<&'i Table> {
        let table = item.as_table();
        if table.is_none() {
            self.error(item.span(), key, "must be a table, e.g. [server]");
        }
        table
    }

    fn string<'i>(&mut self, item: &'i Item, key: &str) -> Option<&'i str> {
        let s = item.as_str();
        if s.is_none() {
            self.error(span(item), key, "must be a string");
        }
        s
    }

    fn positive_integer(&mut self, item: &Item, key: &str) -> Option<u64> {
        match item.as_integer() {
            Some(n) if n > 0 => u64::try_from(n).ok(),
            _ => {
                self.error(span(item), key, "must be a positive integer");
                None
            }
        }
    }

    fn server(&mut self, t: &Table, server: &mut ServerConfig) {
        for (key, item) in t.iter() {
            let path = format!("server.{key}");
            match key {
                "listen" => {
                    if let Some(s) = self.string(item, &path) {
                        match s.parse() {
                            Ok(addr) => server.listen = addr,
                            Err(_) => self.error(span(item), &path, "must be an address such as 127.0.0.1:8080"),
                        }
                    }
                }
                "body_limit_bytes" => {
                    if let Some(n) = self.positive_integer(item, &path) {
                        server.body_limit_bytes = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                "import_limit_bytes" => {
                    if let Some(n) = self.positive_integer(item, &path) {
                        server.import_limit_bytes = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                "request_timeout_secs" => {
                    if let Some(n) = self.positive_integer(item, &path) {
                        server.request_timeout = Duration::from_secs(n);
                    }
                }
                _ => self.error(span(item), &path, "unknown key"),
            }
        }
    }

    fn database(&mut self, t: &Table, database: &mut DatabaseConfig) {
        for (key, item) in t.iter() {
            let path = format!("database.{key}");
            match key {
                "url" => {
                    if let Some(s) = self.string(item, &path) {
                        if s.starts_with("sqlite://") || s.starts_with("postgres://") || s.starts_with("postgresql://")
                        {
                            database.url = s.to_owned();
                        } else {
                            self.error(span(item), &path, "must start with sqlite:// or postgres://");
                        }
                    }
                }
                "max_connections" => {
                    if let Some(n) = self.positive_integer(item, &path) {
                        database.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                _ => self.error(span(item), &path, "unknown key"),
            }
        }
    }

    fn matching(&mut self, t: &Table, matching: &mut Arc<Matching>) {
        let mut params = matching.model.params().clone();
        let mut fuzzy = matching.fuzzy;
        let mut survivorship = matching.survivorship.clone();
        for (key, item) in t.iter() {
            let path = format!("matching.{key}");
            let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
            match (key, value) {
                ("survivorship", _) => {
                    if let Some(table) = self.table(item, &path) {
                        self.survivorship(table, &mut survivorship);
                    }
                }
                ("email", _) => {
                    if let Some(table) = self.table(item, &path) {
                        self.email_rules(table, &mut params.email_rules);
                    }
                }
                ("fuzzy", _) => match item.as_bool() {
                    Some(b) => fuzzy = b,
                    None => self.error(span(item), &path, "must be true or false"),
                },
                ("auto_merge", Some(v)) => params.thresholds.auto_merge = v,
                ("review", Some(v)) => params.thresholds.review = v,
                ("auto_merge" | "review", None) => self.error(span(item), &path, "must be a number (a score in bits)"),
                _ => self.error(span(item), &path, "unknown key"),
            }
        }
        if params.thresholds.review > params.thresholds.auto_merge {
            self.error(t.span(), "matching", "review must not be above auto_merge");
        }
        *matching = Arc::new(Matching { fuzzy, model: Model::new(params), survivorship, ..Matching::default() });
    }

    /// `[matching.email]`: `plus_tag_domains = [DOMAIN, …]` (domains whose mail servers
    /// deliver `local+tag` to `local`, such as a customer's own Google Workspace domain) and
    /// `[[matching.email.providers]]` (`domains`, `canonical_domain`, `ignore_dots`,
    /// `strip_plus_tag`), checked before the built-in providers.
    fn email_rules(&mut self, t: &Table, rules: &mut crate::matching::EmailRules) {
        for (key, item) in t.iter() {
            let path = format!("matching.email.{key}");
            match key {
                "plus_tag_domains" => {
                    if let Some(domains) = self.domains(item, &path) {
                        rules.plus_tag_domains = domains;
                    }
                }
                "providers" => {
                    let Some(array) = item.as_array_of_tables() else {
                        self.error(span(item), &path, "must be an array of tables: [[matching.email.providers]]");
                        continue;
                    };
                    let mut added = Vec::new();
                    for (i, p) in array.iter().enumerate() {
                        let mut rule = crate::matching::ProviderRule {
                            domains: Vec::new(),
                            canonical_domain: String::new(),
                            ignore_dots: false,
                            strip_plus_tag: true,
                        };
                        for (k, v) in p.iter() {
                            let path = format!("matching.email.providers[{i}].{k}");
                            match k {
                                "domains" => rule.domains = self.domains(v, &path).unwrap_or_default(),
                                "canonical_domain" => {
                                    if let Some(d) = self.domains(v, &path).and_then(|d| d.into_iter().next()) {
                                        rule.canonical_domain = d;
                                    }
                                }
                                "ignore_dots" | "strip_plus_tag" => match v.as_bool() {
                                    Some(b) if k == "ignore_dots" => rule.ignore_dots = b,
                                    Some(b) => rule.strip_plus_tag = b,
                                    None => self.error(span(v), &path, "must be true or false"),
                                },
                                _ => self.error(span(v), &path, "unknown key"),
                            }
                        }
                        let Some(first) = rule.domains.first().cloned() else {
                            let path = format!("matching.email.providers[{i}]");
                            self.error(p.span(), &path, "needs domains = [\"example.com\", …]");
                            continue;
                        };
                        if rule.canonical_domain.is_empty() {
                            rule.canonical_domain = first;
                        }
                        added.push(rule);
                    }
                    rules.providers.splice(0..0, added);
                }
                _ => self.error(span(item), &path, "unknown key (plus_tag_domains, providers)"),
            }
        }
    }

    /// A domain or a list of domains, lowercased; each needs a dot and no `@` or spaces.
    fn domains(&mut self, item: &Item, key: &str) -> Option<Vec<String>> {
        let values: Vec<&Value> = match item {
            Item::Value(Value::Array(list)) => list.iter().collect(),
            Item::Value(v @ Value::String(_)) => vec![v],
            _ => {
                self.error(span(item), key, "must be a domain or a list of domains");
                return None;
            }
        };
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            match v.as_str().map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase()) {
                Some(d) if d.contains('.') && !d.contains(['@', ' ']) && !d.starts_with('.') => out.push(d),
                _ => {
                    self.error(v.span().or_else(|| span(item)), key, "must be a domain such as \"example.com\"");
                    return None;
                }
            }
        }
        Some(out)
    }

    /// `default = RULE`, `source_priority = [SOURCE, …]`, and `FIELD = RULE` per standard field.
    fn survivorship(&mut self, t: &Table, rules: &mut Survivorship) {
        const RULES: &str = "must be \"keep_existing\", \"newest\" or \"source_priority\"";
        for (key, item) in t.iter() {
            let path = format!("matching.survivorship.{key}");
            if key == "source_priority" {
                let names: Option<Vec<SourceName>> = item
                    .as_array()
                    .and_then(|a| a.iter().map(|v| v.as_str().and_then(|s| SourceName::parse(s).ok())).collect());
                match names {
                    Some(names) => rules.source_priority = names,
                    None => self.error(span(item), &path, "must be a list of source names, most trusted first"),
                }
                continue;
            }
            let Some(rule) = item.as_str().and_then(Rule::parse) else {
                self.error(span(item), &path, RULES);
                continue;
            };
            if key == "default" {
                rules.default = rule;
            } else if crate::lead::STANDARD_FIELDS.contains(&key) {
                rules.fields.insert(key.to_owned(), rule);
            } else {
                self.error(span(item), &path, "not a standard field");
            }
        }
        let uses_priority =
            rules.default == Rule::SourcePriority || rules.fields.values().any(|r| *r == Rule::SourcePriority);
        if uses_priority && rules.source_priority.is_empty() {
            self.error(t.span(), "matching.survivorship", "source_priority rules need a source_priority list");
        }
    }

    fn picklists(&mut self, t: &Table, picklists: &mut Picklists) {
        for (key, item) in t.iter() {
            let path = format!("picklists.{key}");
            let Some(values) = item.as_table() else {
                self.error(span(item), &path, "must be a table of value = [synonyms]");
                continue;
            };
            let mut entries = Vec::new();
            for (value, synonyms) in values.iter() {
                let list: Option<Vec<String>> =
                    synonyms.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect());
                match list {
                    Some(list) if synonyms.as_array().is_some_and(|a| a.len() == list.len()) => {
                        entries.push((value.to_owned(), list))
                    }
                    _ => self.error(span(synonyms), &format!("{path}.{value}"), "must be a list of synonyms (strings)"),
                }
            }
            match key {
                "industry" => match Picklist::new(entries) {
                    Ok(list) => picklists.industry = list,
                    Err(e) => self.error(span(item), &path, e.to_string()),
                },
                _ => self.error(span(item), &path, "unknown picklist (available: industry)"),
            }
        }
    }

    fn sources(&mut self, item: &Item) -> Vec<SourceConfig> {
        let Some(array) = item.as_array_of_tables() else {
            self.error(span(item), "sources", "must be an array of tables: [[sources]]");
            return Vec::new();
        };
        let mut sources: Vec<SourceConfig> = Vec::new();
        for (i, t) in array.iter().enumerate() {
            let at = t.span();
            let mut name = None;
            let mut adapter = Some(Adapter::Json);
            let mut mapping = None;
            let mut required = default_required();
            let mut src = SourceConfig::api();
            for (key, item) in t.iter() {
                let path = format!("sources[{i}].{key}");
                match key {
                    "name" => {
                        if let Some(s) = self.string(item, &path) {
                            match SourceName::parse(s) {
                                Ok(n) if sources.iter().any(|other| other.name == n) => {
                                    self.error(span(item), &path, format!("a source named {s:?} is already declared"))
                                }
                                Ok(n) => name = Some(n),
                                Err(e) => self.error(span(item), &path, e.to_string()),
                            }
                        }
                    }
                    "adapter" => {
                        adapter = None;
                        if let Some(s) = self.string(item, &path) {
                            adapter = Adapter::parse(s);
                            if adapter.is_none() {
                                let names: Vec<&str> = Adapter::ALL.iter().map(Adapter::as_str).collect();
                                self.error(
                                    span(item),
                                    &path,
                                    format!("unknown adapter {s:?} (available: {})", names.join(", ")),
                                );
                            }
                        }
                    }
                    "secret_env" => src.secret_env = self.env_name(item, &path),
                    "token_env" => src.token_env = self.env_name(item, &path),
                    "verify_token_env" => src.verify_token_env = self.env_name(item, &path),
                    "api_base_url" => {
                        if let Some(s) = self.string(item, &path) {
                            if s.starts_with("https://") || s.starts_with("http://") {
                                src.api_base_url = Some(s.trim_end_matches('/').to_owned());
                            } else {
                                self.error(span(item), &path, "must be an http:// or https:// URL");
                            }
                        }
                    }
                    "channel" => {
                        if let Some(c) = self.string(item, &path) {
                            match CHANNELS.iter().find(|k| **k == c) {
                                Some(k) => src.channel = Some(k),
                                None => {
                                    self.error(span(item), &path, format!("must be one of {}", CHANNELS.join(", ")))
                                }
                            }
                        }
                    }
                    "mode" => match self.string(item, &path) {
                        Some("realtime") => src.mode = Mode::Realtime,
                        Some("batch") => src.mode = Mode::Batch,
                        Some(other) => {
                            self.error(span(item), &path, format!("unknown mode {other:?} (realtime or batch)"))
                        }
                        None => {}
                    },
                    "batch_interval_secs" => {
                        if let Some(n) = self.positive_integer(item, &path) {
                            src.batch_interval = Duration::from_secs(n);
                        }
                    }
                    "pull_interval_secs" => {
                        if let Some(n) = self.positive_integer(item, &path) {
                            src.pull_interval = Some(Duration::from_secs(n));
                        }
                    }
                    "linkedin_owner" => {
                        if let Some(s) = self.string(item, &path) {
                            if is_linkedin_owner(s) {
                                src.linkedin_owner = Some(s.to_owned());
                            } else {
                                self.error(
                                    span(item),
                                    &path,
                                    "must be urn:li:sponsoredAccount:ID or urn:li:organization:ID",
                                );
                            }
                        }
                    }
                    "min_submit_secs" => match item.as_integer().and_then(|n| u64::try_from(n).ok()) {
                        Some(n) => src.min_submit_secs = Some(n),
                        None => self.error(span(item), &path, "must be a number of seconds (0 or more)"),
                    },
                    "rate_limit_per_minute" => {
                        if let Some(n) = self.positive_integer(item, &path) {
                            src.rate_limit_per_minute = u32::try_from(n).unwrap_or(u32::MAX);
                        }
                    }
                    "honeypot_field" => {
                        if let Some(s) = self.string(item, &path) {
                            if s.is_empty() {
                                self.error(span(item), &path, "must name a form field");
                            } else {
                                src.honeypot_field = Some(s.to_owned());
                            }
                        }
                    }
                    "allowed_origins" => match item.as_array() {
                        Some(list) => {
                            for (j, entry) in list.iter().enumerate() {
                                match entry.as_str().and_then(origin_of) {
                                    Some(o) if entry.as_str() == Some(o.as_str()) => src.allowed_origins.push(o),
                                    _ => self.error(
                                        entry.span().or_else(|| span(item)),
                                        &format!("{path}[{j}]"),
                                        "must be an origin such as \"https://www.example.com\" (scheme, host, port; no path)",
                                    ),
                                }
                            }
                        }
                        None => self.error(span(item), &path, "must be a list of origins"),
                    },
                    "mapping" => match item.as_table() {
                        Some(table) => match crate::mapping::parse_spec(table) {
                            Ok(spec) => mapping = Some(spec),
                            Err(errors) => {
                                for e in errors {
                                    self.error(e.span.or_else(|| span(item)), &format!("{path}.{}", e.key), e.message);
                                }
                            }
                        },
                        None => self.error(span(item), &path, "must be a table: [sources.mapping]"),
                    },
                    "required" => match item.as_array() {
                        Some(list) => {
                            required = Vec::new();
                            for (j, entry) in list.iter().enumerate() {
                                let alternatives: Option<Vec<String>> =
                                    entry.as_str().map(|e| e.split('|').map(|f| f.trim().to_owned()).collect());
                                match alternatives {
                                    Some(alts)
                                        if alts.iter().all(|f| crate::lead::STANDARD_FIELDS.contains(&f.as_str())) =>
                                    {
                                        required.push(alts)
                                    }
                                    _ => self.error(
                                        entry.span().or_else(|| span(item)),
                                        &format!("{path}[{j}]"),
                                        "must be a standard field name, or several joined by |",
                                    ),
                                }
                            }
                        }
                        None => self.error(span(item), &path, "must be a list such as [\"email|phone\", \"company\"]"),
                    },
                    "default_country" => {
                        if let Some(s) = self.string(item, &path) {
                            match crate::geo::CountryCode::parse_code(s) {
                                Some(code) => src.default_country = Some(code.as_str().to_owned()),
                                None => {
                                    self.error(span(item), &path, "must be an ISO 3166-1 alpha-2 code such as \"US\"")
                                }
                            }
                        }
                    }
                    _ => self.error(span(item), &path, "unknown key"),
                }
            }
            if let Some(adapter) = adapter {
                self.source_needs(t, i, adapter, &src);
            }
            match (name, adapter) {
                (Some(name), Some(adapter)) => sources.push(SourceConfig { name, adapter, mapping, required, ..src }),
                (None, _) if !t.contains_key("name") => {
                    self.error(at, &format!("sources[{i}]"), "a source needs a name")
                }
                _ => {}
            }
        }
        sources
    }
}

impl Validator<'_> {
    fn env_name(&mut self, item: &Item, path: &str) -> Option<String> {
        let s = self.string(item, path)?;
        if is_env_name(s) {
            Some(s.to_owned())
        } else {
            self.error(span(item), path, "must name an environment variable (A-Z, 0-9, _), not hold the secret");
            None
        }
    }

    /// What the adapter cannot work without, reported at the `adapter` key: a source that
    /// loads but refuses every request is worse than one that does not load.
    fn source_needs(&mut self, t: &Table, i: usize, adapter: Adapter, src: &SourceConfig) {
        let at = t.get("adapter").and_then(span).or_else(|| t.span());
        let path = format!("sources[{i}].adapter");
        let name = adapter.as_str();
        if adapter.needs_secret() && src.secret_env.is_none() {
            self.error(at.clone(), &path, format!("adapter {name:?} verifies signatures: set secret_env"));
        }
        if adapter.fetches() && src.token_env.is_none() {
            self.error(
                at.clone(),
                &path,
                format!("adapter {name:?} reads leads from the provider's API: set token_env"),
            );
        }
        if adapter == Adapter::FacebookLeadAds && src.verify_token_env.is_none() {
            self.error(
                at.clone(),
                &path,
                "adapter \"facebook_lead_ads\" answers the hub.challenge: set verify_token_env",
            );
        }
        let web_only = [
            ("allowed_origins", !src.allowed_origins.is_empty()),
            ("honeypot_field", src.honeypot_field.is_some()),
            ("min_submit_secs", src.min_submit_secs.is_some()),
        ];
        for (key, set) in web_only {
            if set && adapter != Adapter::WebForm {
                let at = t.get(key).and_then(span);
                self.error(at, &format!("sources[{i}].{key}"), "only web_form sources take this key");
            }
        }
        let linkedin_only =
            [("pull_interval_secs", src.pull_interval.is_some()), ("linkedin_owner", src.linkedin_owner.is_some())];
        for (key, set) in linkedin_only {
            if set && adapter != Adapter::LinkedinLeadGen {
                let at = t.get(key).and_then(span);
                self.error(at, &format!("sources[{i}].{key}"), "only linkedin_lead_gen sources take this key");
            }
        }
        if adapter == Adapter::LinkedinLeadGen && src.pull_interval.is_some() && src.linkedin_owner.is_none() {
            let at = t.get("pull_interval_secs").and_then(span);
            self.error(
                at,
                &format!("sources[{i}].pull_interval_secs"),
                "a pull reads the forms of one owner: set linkedin_owner",
            );
        }
        for (key, set) in [("api_base_url", src.api_base_url.is_some()), ("token_env", src.token_env.is_some())] {
            if set && !adapter.fetches() {
                let at = t.get(key).and_then(span);
                self.error(
                    at,
                    &format!("sources[{i}].{key}"),
                    "only facebook_lead_ads and linkedin_lead_gen take this key",
                );
            }
        }
    }
}

/// A LinkedIn ad account or organization URN with a non-empty id.
fn is_linkedin_owner(s: &str) -> bool {
    ["urn:li:sponsoredAccount:", "urn:li:organization:"]
        .iter()
        .filter_map(|prefix| s.strip_prefix(prefix))
        .any(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// `scheme://host[:port]` of a URL, lower-cased; `None` when it is not http(s).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The keys each destination type takes besides the common ones; `*_env` keys name the
/// environment variable holding a secret, which is read at start-up and never written in
/// the file. (key, required)
fn destination_keys(kind: &str) -> Option<&'static [(&'static str, bool)]> {
    Some(match kind {
        "webhook" => &[("url", true), ("secret_env", true)],
        "hubspot" => &[("base_url", false), ("token_env", true), ("lead_status", false)],
        "salesforce" => &[
            ("base_url", true),
            ("token_url", true),
            ("client_id", true),
            ("client_secret_env", true),
            ("refresh_token_env", false),
            ("api_version", true),
            ("external_id_field", false),
            ("lead_source", false),
        ],
        "slack" => &[("url_env", true)],
        _ => return None,
    })
}

/// Reads `500ms`, `5s`, `5m`, `2h`, `1d`.
fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let per = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(per).map(Duration::from_secs)
}

impl Validator<'_> {
    fn duration(&mut self, item: &Item, key: &str) -> Option<Duration> {
        let parsed = item.as_str().and_then(parse_duration);
        if parsed.is_none() {
            self.error(span(item), key, "must be a duration such as \"500ms\", \"5s\", \"5m\" or \"2h\"");
        }
        parsed
    }

    fn delivery(&mut self, t: &Table, delivery: &mut DeliverySettings) {
        for (key, item) in t.iter() {
            let path = format!("delivery.{key}");
            match key {
                "timeout" => {
                    if let Some(d) = self.duration(item, &path) {
                        delivery.timeout = d;
                    }
                }
                "concurrency" => {
                    if let Some(n) = self.positive_integer(item, &path) {
                        delivery.concurrency = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                _ => self.error(span(item), &path, "unknown key"),
            }
        }
    }

    fn destinations(&mut self, item: &Item) -> Vec<DestinationConfig> {
        let Some(array) = item.as_array_of_tables() else {
            self.error(span(item), "destinations", "must be an array of tables: [[destinations]]");
            return Vec::new();
        };
        let mut out: Vec<DestinationConfig> = Vec::new();
        for (i, t) in array.iter().enumerate() {
            let at = format!("destinations[{i}]");
            let kind = t.get("type").and_then(Item::as_str);
            let allowed = kind.and_then(destination_keys);
            if kind.is_some() && allowed.is_none() {
                let item = t.get("type").unwrap_or(item);
                self.error(span(item), &format!("{at}.type"), "must be webhook, hubspot, salesforce or slack");
            }
            let mut d = DestinationConfig::new(String::new(), kind.unwrap_or_default(), Vec::new());
            for (key, item) in t.iter() {
                let path = format!("{at}.{key}");
                match key {
                    "type" => {}
                    "name" => {
                        if let Some(s) = self.string(item, &path) {
                            let valid = !s.is_empty()
                                && s.len() <= 64
                                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                            if !valid {
                                self.error(span(item), &path, "must be 1-64 letters, digits, - or _");
                            } else if out.iter().any(|o| o.name == s) {
                                self.error(span(item), &path, format!("a destination named {s:?} is already declared"));
                            } else {
                                d.name = s.to_owned();
                            }
                        }
                    }
                    "events" => match item.as_array() {
                        Some(list) => {
                            for (j, e) in list.iter().enumerate() {
                                match e.as_str().and_then(EventType::parse) {
                                    Some(t) if !d.events.contains(&t) => d.events.push(t),
                                    Some(_) => {}
                                    None => self.error(
                                        e.span().or_else(|| span(item)),
                                        &format!("{path}[{j}]"),
                                        "must be one of created, merged, mql, assigned, stage_changed, erased",
                                    ),
                                }
                            }
                        }
                        None => self.error(span(item), &path, "must be a list such as [\"created\", \"mql\"]"),
                    },
                    "required_fields" => match item.as_array() {
                        Some(list) => {
                            for (j, e) in list.iter().enumerate() {
                                match e.as_str() {
                                    Some(f) if !f.trim().is_empty() => d.required_fields.push(f.trim().to_owned()),
                                    _ => self.error(
                                        e.span().or_else(|| span(item)),
                                        &format!("{path}[{j}]"),
                                        "must be a field name",
                                    ),
                                }
                            }
                        }
                        None => self.error(span(item), &path, "must be a list of field names"),
                    },
                    "retry" => match item.as_array() {
                        Some(list) if !list.is_empty() => {
                            let mut delays = Vec::new();
                            for (j, e) in list.iter().enumerate() {
                                match e.as_str().and_then(parse_duration) {
                                    Some(delay) => delays.push(delay),
                                    None => self.error(
                                        e.span().or_else(|| span(item)),
                                        &format!("{path}[{j}]"),
                                        "must be a duration such as \"0s\", \"5s\" or \"5m\"",
                                    ),
                                }
                            }
                            d.retry = Some(delays);
                        }
                        _ => self.error(span(item), &path, "must be a non-empty list such as [\"0s\", \"5s\", \"5m\"]"),
                    },
                    "rate_limit" => {
                        let per_second = item
                            .get("per_second")
                            .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|n| n as f64)));
                        let burst = item.get("burst").and_then(Item::as_integer).and_then(|n| u32::try_from(n).ok());
                        match (per_second, burst) {
                            (Some(rate), Some(burst)) if rate > 0.0 && burst > 0 => d.rate_limit = Some((rate, burst)),
                            _ => self.error(
                                span(item),
                                &path,
                                "must be a table { per_second = 10.0, burst = 10 } with positive values",
                            ),
                        }
                    }
                    "circuit_breaker" => {
                        let threshold = item
                            .get("failure_threshold")
                            .and_then(Item::as_integer)
                            .and_then(|n| u32::try_from(n).ok());
                        let cool_down = item.get("cool_down").and_then(Item::as_str).and_then(parse_duration);
                        match (threshold, cool_down) {
                            (Some(n), Some(wait)) if n > 0 => d.circuit_breaker = Some((n, wait)),
                            _ => self.error(
                                span(item),
                                &path,
                                "must be a table { failure_threshold = 5, cool_down = \"30s\" }",
                            ),
                        }
                    }
                    "feedback" => match (item.as_table_like(), kind.and_then(CrmKind::parse)) {
                        (Some(table), Some(crm)) => d.feedback = self.crm_feedback(table, span(item), crm, &path),
                        (None, _) => self.error(span(item), &path, "must be a table: [destinations.feedback]"),
                        (Some(_), None) => {
                            self.error(span(item), &path, "only hubspot and salesforce destinations take feedback")
                        }
                    },
                    other => match allowed.and_then(|keys| keys.iter().find(|(k, _)| *k == other)) {
                        Some(_) => {
                            if let Some(s) = self.string(item, &path) {
                                if other.ends_with("_env") && !is_env_name(s) {
                                    self.error(
                                        span(item),
                                        &path,
                                        "must name an environment variable (A-Z, 0-9, _), not hold the secret",
                                    );
                                } else {
                                    d.settings.insert(other.to_owned(), s.to_owned());
                                }
                            }
                        }
                        None if allowed.is_some() => self.error(span(item), &path, "unknown key"),
                        None => {}
                    },
                }
            }
            if kind.is_none() {
                self.error(t.span(), &at, "a destination needs a type: webhook, hubspot, salesforce or slack");
            }
            if !t.contains_key("name") {
                self.error(t.span(), &at, "a destination needs a name");
            }
            if let Some(keys) = allowed {
                for (key, required) in keys {
                    if *required && !t.contains_key(key) {
                        self.error(t.span(), &at, format!("a {} destination needs {key}", d.kind));
                    }
                }
            }
            if !d.name.is_empty() && allowed.is_some() {
                out.push(d);
            }
        }
        out
    }
}

impl Validator<'_> {
    /// `[feedback]`: `stages = { STATUS = "stage" }`, `reasons = { "CRM text" = "reason" }`.
    fn feedback(&mut self, t: &Table, contract: &crate::scoring::LifecycleContract) -> FeedbackRules {
        let mut rules = FeedbackRules::default();
        for (key, item) in t.iter() {
            let path = format!("feedback.{key}");
            match key {
                "stages" => {
                    let Some(table) = item.as_table_like() else {
                        self.error(span(item), &path, "must be a table of status = \"stage\"");
                        continue;
                    };
                    for (status, stage) in table.iter() {
                        let at = format!("{path}.{status}");
                        let Some(status) = FeedbackStatus::parse(status) else {
                            let names: Vec<&str> = FeedbackStatus::ALL.iter().map(FeedbackStatus::as_str).collect();
                            self.error(span(stage), &at, format!("not a feedback status ({})", names.join(", ")));
                            continue;
                        };
                        match stage.as_str() {
                            Some(s) if contract.has_stage(s) => {
                                rules.stages.insert(status, s.to_owned());
                            }
                            _ => self.error(span(stage), &at, "must name a stage of the lifecycle contract"),
                        }
                    }
                }
                "reasons" => rules.reasons = self.reason_map(item, &path, Some(contract)),
                _ => self.error(span(item), &path, "unknown key"),
            }
        }
        rules
    }

    /// `{ "CRM text" = "picklist reason" }`, keys compared lower-cased.
    fn reason_map(
        &mut self,
        item: &Item,
        path: &str,
        contract: Option<&crate::scoring::LifecycleContract>,
    ) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let Some(table) = item.as_table_like() else {
            self.error(span(item), path, "must be a table of \"CRM reason\" = \"reason\"");
            return out;
        };
        for (text, reason) in table.iter() {
            let picklist = contract.map(|c| c.disqualify_reasons()).unwrap_or_default();
            match reason.as_str() {
                Some(r) if !r.trim().is_empty() && (picklist.is_empty() || picklist.iter().any(|p| p == r)) => {
                    out.insert(text.trim().to_lowercase(), r.to_owned());
                }
                _ => self.error(
                    span(reason),
                    &format!("{path}.{text}"),
                    format!("must be one of the disqualify_reasons: {}", picklist.join(", ")),
                ),
            }
        }
        out
    }

    /// A destination's reason map is read before the contract is known; its values are
    /// checked once it is.
    fn check_reasons(
        &mut self,
        map: &std::collections::BTreeMap<String, String>,
        what: &str,
        contract: &crate::scoring::LifecycleContract,
    ) {
        let picklist = contract.disqualify_reasons();
        for reason in map.values() {
            if !picklist.is_empty() && !picklist.iter().any(|p| p == reason) {
                self.error(
                    None,
                    what,
                    format!("{reason:?} is not one of the disqualify_reasons: {}", picklist.join(", ")),
                );
            }
        }
    }

    /// `[destinations.feedback]` of a HubSpot or Salesforce destination.
    fn crm_feedback(
        &mut self,
        t: &dyn toml_edit::TableLike,
        t_span: Option<Range<usize>>,
        kind: CrmKind,
        at: &str,
    ) -> Option<CrmMapping> {
        let mut mapping = CrmMapping::defaults(kind, String::new());
        let mut secret = None;
        for (key, item) in t.iter() {
            let path = format!("{at}.{key}");
            match key {
                "secret_env" => secret = self.env_name(item, &path),
                "organization_id" if kind == CrmKind::Salesforce => match self.string(item, &path) {
                    Some(s) if (s.len() == 15 || s.len() == 18) && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                        mapping.organization_id = Some(s.to_owned())
                    }
                    Some(_) => {
                        self.error(span(item), &path, "must be a Salesforce organization id (15 or 18 characters)")
                    }
                    None => {}
                },
                "portal_id" if kind == CrmKind::HubSpot => {
                    match item.as_integer().map(|n| n.to_string()).or_else(|| item.as_str().map(str::to_owned)) {
                        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                            mapping.portal_id = Some(id)
                        }
                        _ => self.error(span(item), &path, "must be the HubSpot account (portal) id, digits"),
                    }
                }
                "status_fields" => match item
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
                {
                    Some(Some(fields)) if !fields.is_empty() => mapping.status_fields = fields,
                    _ => self.error(span(item), &path, "must be a non-empty list of field names"),
                },
                "reason_field" | "owner_field" => {
                    if let Some(s) = self.string(item, &path) {
                        let value = (!s.trim().is_empty()).then(|| s.trim().to_owned());
                        if key == "reason_field" { mapping.reason_field = value } else { mapping.owner_field = value }
                    }
                }
                "statuses" => match item.as_table_like() {
                    Some(table) => {
                        for (value, meaning) in table.iter() {
                            match meaning.as_str().and_then(MappedStatus::parse) {
                                Some(m) => {
                                    mapping.statuses.insert(value.trim().to_lowercase(), m);
                                }
                                None => self.error(
                                    span(meaning),
                                    &format!("{path}.{value}"),
                                    "must be \"ignore\", a feedback status, or STATUS:REASON (e.g. \"lost:bad_timing\")",
                                ),
                            }
                        }
                    }
                    None => self.error(span(item), &path, "must be a table of \"CRM value\" = \"status\""),
                },
                "reasons" => {
                    // Checked against the contract once the whole file is read.
                    mapping.reasons = self.reason_map(item, &path, None);
                }
                _ => self.error(span(item), &path, "unknown key"),
            }
        }
        let Some(secret) = secret else {
            let what = match kind {
                CrmKind::HubSpot => "the app's client secret (v3 signatures)",
                CrmKind::Salesforce => "the ?token= shared with the outbound message URL",
            };
            self.error(t_span, at, format!("feedback needs secret_env: the variable holding {what}"));
            return None;
        };
        if kind == CrmKind::Salesforce && mapping.organization_id.is_none() {
            self.error(
                t_span,
                at,
                "salesforce feedback needs organization_id: outbound messages are checked against it",
            );
            return None;
        }
        mapping.secret_env = secret;
        Some(mapping)
    }
}

/// The span of a value, or of its table: a bare `Item::Value` carries the span.
fn span(item: &Item) -> Option<Range<usize>> {
    item.span().or_else(|| item.as_value().and_then(Value::span))
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn reads_every_section() {
        let c = parse(
            r#"
[server]
listen = "0.0.0.0:9000"
body_limit_bytes = 2048
request_timeout_secs = 5

[database]
url = "sqlite:///var/lib/leadflow.db"
max_connections = 4

[[sources]]
name = "website"
adapter = "json"
secret_env = "WEBSITE_SECRET"
"#,
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.server.body_limit_bytes, 2048);
        assert_eq!(c.server.request_timeout, Duration::from_secs(5));
        assert_eq!(c.database.url, "sqlite:///var/lib/leadflow.db");
        assert_eq!(c.database.max_connections, 4);
        let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api", "website"]);
        assert_eq!(c.sources[1].secret_env.as_deref(), Some("WEBSITE_SECRET"));
    }

    #[test]
    fn reports_every_error_with_its_location() {
        let errs = parse(
            r#"[server]
listen = "nowhere"
body_limit_bytes = -1

[[sources]]
name = "Bad Name"
adapter = "typeform"

[[sources]]
adapter = "carrier-pigeon"
colour = "blue"

[extras]
"#,
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let expect = [
            "2:10: server.listen",
            "3:20: server.body_limit_bytes",
            "6:8: sources[0].name",
            "7:11: sources[0].adapter",
            "10:11: sources[1].adapter",
            "11:10: sources[1].colour",
            "13:1: extras",
        ];
        for e in expect {
            assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
        }
    }

    #[test]
    fn a_source_mapping_is_read_and_its_errors_located() {
        let c = parse(
            "[[sources]]\nname = \"typeform\"\n[sources.mapping]\nemail = \"answers[0].email\"\nignore = [\"token\"]\n",
        )
        .unwrap();
        assert!(c.sources[1].mapping.is_some());
        let errs = parse("[[sources]]\nname = \"x\"\n[sources.mapping]\nemial = \"a\"\nphone = \"a[\"\n").unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(shown.iter().any(|e| e.starts_with("4:1: sources[0].mapping.emial")), "{shown:#?}");
        assert!(shown.iter().any(|e| e.starts_with("5:") && e.contains("sources[0].mapping.phone")), "{shown:#?}");
    }

    #[test]
    fn required_fields_are_standard_fields() {
        let c = parse("[[sources]]\nname = \"x\"\nrequired = [\"email\", \"company|website\"]\n").unwrap();
        assert_eq!(
            c.sources[1].required,
            vec![vec!["email".to_owned()], vec!["company".to_owned(), "website".to_owned()]]
        );
        let errs = parse("[[sources]]\nname = \"x\"\nrequired = [\"email\", \"shoe_size\"]\n").unwrap_err();
        assert_eq!(errs[0].key, "sources[0].required[1]");
        assert_eq!(errs[0].line, 3);
    }

    #[test]
    fn an_industry_picklist_replaces_the_default() {
        let c = parse("[picklists.industry]\n\"Software\" = [\"SaaS\", \"Tech\"]\n\"Retail\" = []\n").unwrap();
        assert_eq!(c.picklists.industry.match_value("saas"), Some("Software"));
        assert_eq!(c.picklists.industry.match_value("Banking"), None);
        let errs = parse("[picklists.industry]\n\"A\" = [\"x\"]\n\"B\" = [\"X\"]\n[picklists.colour]\n").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn survivorship_rules_are_configurable_and_checked() {
        let c = parse(
            "[matching.survivorship]\ndefault = \"newest\"\ncompany = \"source_priority\"\nsource_priority = [\"crm\", \"api\"]\n",
        )
        .unwrap();
        let rules = &c.matching.survivorship;
        assert_eq!(rules.default, Rule::Newest);
        assert_eq!(rules.rule("company"), Rule::SourcePriority);
        assert_eq!(rules.rule("phone"), Rule::Newest);
        assert_eq!(rules.source_priority, vec![SourceName::parse("crm").unwrap(), SourceName::api()]);
        let errs = parse(
            "[matching.survivorship]\nshoe_size = \"newest\"\ncompany = \"loudest\"\nphone = \"source_priority\"\n",
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        assert!(text[0].starts_with("2:13: matching.survivorship.shoe_size"), "{text:?}");
        assert!(text.iter().any(|e| e.contains("need a source_priority list")), "{text:?}");
    }

    #[test]
    fn a_source_declares_its_channel_or_takes_its_adapters() {
        let c = parse("[[sources]]\nname = \"fair\"\nchannel = \"event\"\n[[sources]]\nname = \"crm\"\n").unwrap();
        let channel = |n: &str| c.source(&SourceName::parse(n).unwrap()).unwrap().channel();
        assert_eq!((channel("fair"), channel("crm"), channel("api")), ("event", "api", "api"));
        let errs = parse("[[sources]]\nname = \"x\"\nchannel = \"billboard\"\n").unwrap_err();
        assert!(errs[0].to_string().starts_with("3:11: sources[0].channel"), "{errs:?}");
    }

    #[test]
    fn scoring_and_lifecycle_sections_are_read_and_located() {
        let c = parse("[scoring]\nmql_threshold = 40\n[[scoring.rules]]\nname = \"vp\"\nwhen = { derived = \"seniority\", is = \"vp\" }\npoints = 10\n").unwrap();
        assert_eq!(c.engagement.scoring.mql_threshold, 40);
        assert_eq!(c.engagement.scoring.rules.len(), 1);
        assert!(c.engagement.contract.has_stage("mql"));
        let errs =
            parse("[scoring]\nmql_threshold = \"high\"\n[lifecycle]\nstages = [\"new\", \"nowhere\"]\n").unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|e| e.starts_with("2:") && e.contains("mql_threshold")), "{text:?}");
        assert!(text.iter().any(|e| e.contains("lifecycle")), "{text:?}");
    }

    #[test]
    fn matching_thresholds_are_configurable_and_checked() {
        assert!(!parse("").unwrap().matching.fuzzy, "fuzzy matching is opt-in");
        let c = parse("[matching]\nfuzzy = true\nauto_merge = 20\nreview = 12.5\n").unwrap();
        assert!(c.matching.fuzzy);
        assert_eq!((c.matching.model.thresholds().auto_merge, c.matching.model.thresholds().review), (20.0, 12.5));
        let errs = parse("[matching]\nauto_merge = 5\nreview = 9\nfuzzy = \"yes\"\n").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn email_provider_rules_are_configurable_per_domain() {
        let c = parse(
            r#"
[matching.email]
plus_tag_domains = ["Acme.com"]
[[matching.email.providers]]
domains = ["yandex.ru", "ya.ru"]
"#,
        )
        .unwrap();
        let rules = c.matching.model.email_rules();
        let key = |e: &str| crate::matching::email_match_key(e, rules);
        assert_eq!(key("kim+webinar@acme.com"), "kim@acme.com");
        assert_eq!(key("ivan+news@ya.ru"), "ivan@yandex.ru", "a provider's domains share one key");
        assert_eq!(key("Jane.Doe+x@googlemail.com"), "janedoe@gmail.com", "the built-in providers remain");
        assert_eq!(key("kim+webinar@globex.com"), "kim+webinar@globex.com", "other domains keep their tags");
        let errs = parse(
            "[matching.email]\nplus_tag_domains = [\"not a domain\"]\n[[matching.email.providers]]\nignore_dots = 1\n",
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        assert!(text.iter().any(|e| e.contains("providers[0]") && e.contains("domains")), "{text:?}");
    }

    #[test]
    fn duplicate_source_names_are_refused() {
        let errs = parse("[[sources]]\nname = \"web\"\n[[sources]]\nname = \"web\"\n").unwrap_err();
        assert_eq!((errs[0].line, errs[0].key.as_str()), (4, "sources[1].name"));
    }

    #[test]
    fn every_contract_adapter_is_accepted_with_its_keys() {
        let c = parse(
            r#"
[[sources]]
name = "fb"
adapter = "facebook_lead_ads"
secret_env = "FB_APP_SECRET"
verify_token_env = "FB_VERIFY"
token_env = "FB_TOKEN"
api_base_url = "http://127.0.0.1:9/"
mode = "batch"
batch_interval_secs = 60

[[sources]]
name = "site"
adapter = "web_form"
allowed_origins = ["https://www.example.com", "http://localhost:3000"]
honeypot_field = "nickname"
min_submit_secs = 2
rate_limit_per_minute = 5
"#,
        )
        .unwrap();
        let fb = &c.sources[1];
        assert_eq!(fb.adapter, Adapter::FacebookLeadAds);
        assert_eq!(fb.api_base_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!((fb.mode, fb.batch_interval), (Mode::Batch, Duration::from_secs(60)));
        let site = &c.sources[2];
        assert_eq!(site.mode, Mode::Realtime);
        assert_eq!(site.batch_interval, DEFAULT_BATCH_INTERVAL);
        assert_eq!(site.allowed_origins, ["https://www.example.com", "http://localhost:3000"]);
        assert_eq!((site.honeypot_field.as_deref(), site.min_submit_secs), (Some("nickname"), Some(2)));
        assert_eq!(site.rate_limit_per_minute, 5);
        for a in Adapter::ALL {
            assert_eq!(Adapter::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn an_adapter_without_what_it_needs_is_reported_at_the_adapter() {
        let errs = parse(
            r#"[[sources]]
name = "tf"
adapter = "typeform"

[[sources]]
name = "fb"
adapter = "facebook_lead_ads"
secret_env = "FB"

[[sources]]
name = "web"
adapter = "web_form"
allowed_origins = ["https://x.example/path"]
mode = "sometimes"

[[sources]]
name = "hs"
adapter = "hubspot_forms"
secret_env = "HS"
allowed_origins = ["https://x.example"]
"#,
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let expect = [
            "3:11: sources[0].adapter: adapter \"typeform\" verifies signatures: set secret_env",
            "7:11: sources[1].adapter: adapter \"facebook_lead_ads\" reads leads from the provider's API: set token_env",
            "7:11: sources[1].adapter: adapter \"facebook_lead_ads\" answers the hub.challenge: set verify_token_env",
            "13:20: sources[2].allowed_origins[0]",
            "14:8: sources[2].mode",
            "20:19: sources[3].allowed_origins",
        ];
        for e in expect {
            assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
        }
        assert_eq!(shown.len(), expect.len(), "{shown:#?}");
    }

    #[test]
    fn routing_is_read_and_names_configured_sources() {
        let text = "[[sources]]\nname = \"demo\"\n\n[routing]\nfallback_owner = \"queue\"\npriority_sources = [\"demo\", \"chat\"]\n";
        let shown: Vec<String> = parse(text).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["6:20: routing.priority_sources: \"chat\" is not a configured source"]);
        let config = parse(&text.replace(", \"chat\"", "")).unwrap();
        assert_eq!(config.rules().routing.fallback_owner.as_deref(), Some("queue"));
        assert!(config.routing.is_enabled() && !Config::default().routing.is_enabled());
        let bad = parse("[routing]\nfallback_owner = 3\n").unwrap_err();
        assert_eq!(
            bad[0].to_string(),
            "2:18: routing.fallback_owner: must be a non-empty string: a rep's id as the CRM knows them"
        );
    }

    #[test]
    fn a_linkedin_pull_needs_an_owner_and_only_linkedin_pulls() {
        let errs = parse(
            r#"[[sources]]
name = "li"
adapter = "linkedin_lead_gen"
secret_env = "LI"
token_env = "LI_TOKEN"
pull_interval_secs = 300

[[sources]]
name = "li2"
adapter = "linkedin_lead_gen"
secret_env = "LI"
token_env = "LI_TOKEN"
pull_interval_secs = 0
linkedin_owner = "urn:li:person:1"

[[sources]]
name = "tf"
adapter = "typeform"
secret_env = "TF"
pull_interval_secs = 60
"#,
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let expect = [
            "6:22: sources[0].pull_interval_secs: a pull reads the forms of one owner: set linkedin_owner",
            "13:22: sources[1].pull_interval_secs: must be a positive integer",
            "14:18: sources[1].linkedin_owner: must be urn:li:sponsoredAccount:ID or urn:li:organization:ID",
            "20:22: sources[2].pull_interval_secs: only linkedin_lead_gen sources take this key",
        ];
        for e in expect {
            assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
        }
        assert_eq!(shown.len(), expect.len(), "{shown:#?}");

        let config = parse(
            r#"[[sources]]
name = "li"
adapter = "linkedin_lead_gen"
secret_env = "LI"
token_env = "LI_TOKEN"
pull_interval_secs = 300
linkedin_owner = "urn:li:sponsoredAccount:42"
"#,
        )
        .unwrap();
        let li = config.source(&SourceName::parse("li").unwrap()).unwrap();
        assert_eq!(li.pull_interval, Some(Duration::from_secs(300)));
        assert_eq!(li.linkedin_owner.as_deref(), Some("urn:li:sponsoredAccount:42"));
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://www.Example.com/contact?x=1").as_deref(), Some("https://www.example.com"));
        assert_eq!(origin_of("http://localhost:3000").as_deref(), Some("http://localhost:3000"));
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://user@evil.example"), None);
        assert_eq!(origin_of("/relative"), None);
    }

    #[test]
    fn destinations_are_read_with_their_subscriptions() {
        let config = parse(
            r#"
[delivery]
timeout = "2s"
concurrency = 8

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
events = ["created", "mql"]
required_fields = ["company"]
retry = ["0s", "500ms", "1m"]
rate_limit = { per_second = 5.0, burst = 2 }
"#,
        )
        .unwrap();
        assert_eq!(config.delivery, DeliverySettings { timeout: Duration::from_secs(2), concurrency: 8 });
        let d = &config.destinations[0];
        assert_eq!((d.name.as_str(), d.kind.as_str()), ("hook", "webhook"));
        assert_eq!(d.events, [EventType::Created, EventType::Mql]);
        assert_eq!(
            d.retry.as_deref(),
            Some(&[Duration::ZERO, Duration::from_millis(500), Duration::from_secs(60)][..])
        );
        assert_eq!(d.rate_limit, Some((5.0, 2)));
        assert_eq!(d.settings.get("secret_env").map(String::as_str), Some("HOOK_SECRET"));
        assert!(!config.rules().outbox.is_empty());
    }

    #[test]
    fn destination_errors_are_located_and_secrets_stay_out_of_the_file() {
        let errors = parse(
            r#"
[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "whsec_abc"
events = ["created", "bought"]
retry = ["5 minutes"]

[[destinations]]
name = "crm"
type = "pipedrive"
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "destinations[0].secret_env",
                "destinations[0].events[1]",
                "destinations[0].retry[0]",
                "destinations[1].type"
            ]
        );
        assert!(errors.iter().all(|e| e.line > 1));
    }

    #[test]
    fn crm_destinations_take_feedback_with_their_mappings() {
        let config = parse(
            r#"
[feedback]
stages = { converted = "sql" }
reasons = { "Price" = "no_budget" }

[[destinations]]
name = "hs"
type = "hubspot"
token_env = "HS_TOKEN"
[destinations.feedback]
secret_env = "HS_APP_SECRET"
portal_id = 62515
reason_field = "unqualified_reason"
statuses = { "CUSTOM_DQ" = "disqualified:not_a_fit", "NEW" = "accepted" }
reasons = { "Too small" = "not_a_fit" }

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://x.my.salesforce.com"
token_url = "https://login.salesforce.com/services/oauth2/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "62.0"
feedback = { secret_env = "SF_OM_TOKEN", organization_id = "00D000000000001AAA" }
"#,
        )
        .unwrap();
        assert_eq!(
            config.feedback.stage(FeedbackStatus::Converted, &config.engagement.contract).as_deref(),
            Some("sql")
        );
        assert_eq!(
            config.feedback.stage(FeedbackStatus::Won, &config.engagement.contract).as_deref(),
            Some("customer")
        );
        assert_eq!(config.feedback.reasons.get("price").map(String::as_str), Some("no_budget"));
        let (_, hs) = config.feedback_destination("hs").unwrap();
        assert_eq!((hs.secret_env.as_str(), hs.portal_id.as_deref()), ("HS_APP_SECRET", Some("62515")));
        assert_eq!(
            hs.statuses.get("custom_dq"),
            Some(&MappedStatus::Status { status: FeedbackStatus::Disqualified, reason: Some("not_a_fit".into()) })
        );
        assert_eq!(
            hs.statuses.get("open"),
            Some(&MappedStatus::Status { status: FeedbackStatus::Accepted, reason: None })
        );
        let (_, sf) = config.feedback_destination("sf").unwrap();
        assert_eq!(sf.organization_id.as_deref(), Some("00D000000000001AAA"));
        assert_eq!(sf.status_fields, ["Status"]);
        assert!(config.feedback_destination("nope").is_none());
    }

    #[test]
    fn feedback_errors_are_located() {
        let errors = parse(
            r#"
[feedback]
stages = { won = "champagne", maybe = "sal" }
reasons = { "Price" = "too_expensive" }

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
feedback = { secret_env = "X" }

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://x.my.salesforce.com"
token_url = "https://login.salesforce.com/services/oauth2/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "62.0"
[destinations.feedback]
secret_env = "SF_OM_TOKEN"
statuses = { "Closed - Not Converted" = "gone" }
reasons = { "x" = "nope" }
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "feedback.stages.won",
            "feedback.stages.maybe",
            "feedback.reasons.Price",
            "destinations[0].feedback",
            "destinations[1].feedback.statuses.Closed - Not Converted",
            "destinations[1].feedback",
        ] {
            assert!(keys.contains(&key), "missing {key:?} in {errors:#?}");
        }
    }

    #[test]
    fn syntax_errors_are_located() {
        let errs = parse("[server]\nlisten = \n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 2);
    }
}
