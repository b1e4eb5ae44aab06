//! `[[sources]]`: where leads come from. Each source names its adapter (how payloads are
//! verified and parsed), the environment variables holding its secrets, how its fields
//! map onto the standard fields, what a lead from it must have, and whether it is
//! settled as it arrives or in batches. Every problem is reported at its key; what an
//! adapter cannot work without is reported at the `adapter` key.

use super::Adapter;
use super::inbound::{self, DEFAULT_EMAIL_BODY_LIMIT, EmailSettings, SignedJsonSettings};
use crate::config::read::{Problems, span};
use crate::mapping::MappingSpec;
use crate::source::SourceName;
use crate::source::qualification::{self, Qualification};
use std::time::Duration;
use toml_edit::{Item, Table};

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
    /// During a rotation, the variable holding the secret being replaced: a request
    /// signed with either is accepted.
    pub previous_secret_env: Option<String>,
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
    /// The largest request body this source's webhook takes; `None`: the server's
    /// `body_limit_bytes`, or [`DEFAULT_EMAIL_BODY_LIMIT`] for an `email` source.
    pub body_limit_bytes: Option<usize>,
    /// An `email` source's provider, extraction rules and attachment policy.
    pub email: EmailSettings,
    /// A `signed_json` source's signature scheme.
    pub signed_json: SignedJsonSettings,
    /// Which field a chat bot's question fills (`qualification = { "Team size?" =
    /// "employee_count" }`); read by the chat adapters and `POST /v1/conversations`.
    pub qualification: Qualification,
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
            Adapter::Intercom | Adapter::Drift => "chat",
            // Directories, marketplaces and review sites forward their inquiries.
            Adapter::Email => "third_party",
            Adapter::SignedJson => "api",
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
            previous_secret_env: None,
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
            body_limit_bytes: None,
            email: EmailSettings::default(),
            signed_json: SignedJsonSettings::default(),
            qualification: Qualification::default(),
        }
    }

    /// The body limit of this source's webhook, given the server's.
    pub fn body_limit(&self, server_limit: usize) -> usize {
        match (self.body_limit_bytes, self.adapter) {
            (Some(n), _) => n,
            (None, Adapter::Email) => server_limit.max(DEFAULT_EMAIL_BODY_LIMIT),
            (None, _) => server_limit,
        }
    }
}

pub(crate) fn read(p: &mut Problems, item: &Item) -> Vec<SourceConfig> {
    let Some(array) = item.as_array_of_tables() else {
        p.push(span(item), "sources", "must be an array of tables: [[sources]]");
        return Vec::new();
    };
    let mut sources: Vec<SourceConfig> = Vec::new();
    for (i, t) in array.iter().enumerate() {
        if let Some(source) = read_source(p, i, t, &sources) {
            sources.push(source);
        }
    }
    sources
}

/// One `[[sources]]` table; `None` when it has no usable name or adapter.
fn read_source(p: &mut Problems, i: usize, t: &Table, declared: &[SourceConfig]) -> Option<SourceConfig> {
    let mut name = None;
    let mut adapter = Some(Adapter::Json);
    let mut src = SourceConfig::api();
    for (key, item) in t.iter() {
        let path = format!("sources[{i}].{key}");
        match key {
            "name" => {
                if let Some(s) = p.string(item, &path) {
                    match SourceName::parse(s) {
                        Ok(n) if declared.iter().any(|other| other.name == n) => {
                            p.push(span(item), &path, format!("a source named {s:?} is already declared"))
                        }
                        Ok(n) => name = Some(n),
                        Err(e) => p.push(span(item), &path, e.to_string()),
                    }
                }
            }
            "adapter" => {
                adapter = None;
                if let Some(s) = p.string(item, &path) {
                    adapter = Adapter::parse(s);
                    if adapter.is_none() {
                        let names: Vec<&str> = Adapter::ALL.iter().map(Adapter::as_str).collect();
                        p.push(span(item), &path, format!("unknown adapter {s:?} (available: {})", names.join(", ")));
                    }
                }
            }
            _ => read_setting(p, key, item, &path, &mut src),
        }
    }
    if let Some(adapter) = adapter {
        source_needs(p, t, i, adapter, &src);
    }
    match (name, adapter) {
        (Some(name), Some(adapter)) => Some(SourceConfig { name, adapter, ..src }),
        (None, _) if !t.contains_key("name") => {
            p.push(t.span(), &format!("sources[{i}]"), "a source needs a name");
            None
        }
        _ => None,
    }
}

/// Every key of a source but its name and adapter.
fn read_setting(p: &mut Problems, key: &str, item: &Item, path: &str, src: &mut SourceConfig) {
    match key {
        "secret_env" => src.secret_env = p.env_name(item, path),
        "previous_secret_env" => src.previous_secret_env = p.env_name(item, path),
        "token_env" => src.token_env = p.env_name(item, path),
        "verify_token_env" => src.verify_token_env = p.env_name(item, path),
        "api_base_url" => {
            if let Some(s) = p.string(item, path) {
                if s.starts_with("https://") || s.starts_with("http://") {
                    src.api_base_url = Some(s.trim_end_matches('/').to_owned());
                } else {
                    p.push(span(item), path, "must be an http:// or https:// URL");
                }
            }
        }
        "channel" => {
            if let Some(c) = p.string(item, path) {
                match CHANNELS.iter().find(|k| **k == c) {
                    Some(k) => src.channel = Some(k),
                    None => p.push(span(item), path, format!("must be one of {}", CHANNELS.join(", "))),
                }
            }
        }
        "mode" => match p.string(item, path) {
            Some("realtime") => src.mode = Mode::Realtime,
            Some("batch") => src.mode = Mode::Batch,
            Some(other) => p.push(span(item), path, format!("unknown mode {other:?} (realtime or batch)")),
            None => {}
        },
        "batch_interval_secs" => {
            if let Some(n) = p.positive_integer(item, path) {
                src.batch_interval = Duration::from_secs(n);
            }
        }
        "pull_interval_secs" => {
            if let Some(n) = p.positive_integer(item, path) {
                src.pull_interval = Some(Duration::from_secs(n));
            }
        }
        "linkedin_owner" => {
            if let Some(s) = p.string(item, path) {
                if is_linkedin_owner(s) {
                    src.linkedin_owner = Some(s.to_owned());
                } else {
                    p.push(span(item), path, "must be urn:li:sponsoredAccount:ID or urn:li:organization:ID");
                }
            }
        }
        "min_submit_secs" => match item.as_integer().and_then(|n| u64::try_from(n).ok()) {
            Some(n) => src.min_submit_secs = Some(n),
            None => p.push(span(item), path, "must be a number of seconds (0 or more)"),
        },
        "rate_limit_per_minute" => {
            if let Some(n) = p.positive_integer(item, path) {
                src.rate_limit_per_minute = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        "honeypot_field" => {
            if let Some(s) = p.string(item, path) {
                if s.is_empty() {
                    p.push(span(item), path, "must name a form field");
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
                        _ => p.push(
                            entry.span().or_else(|| span(item)),
                            &format!("{path}[{j}]"),
                            "must be an origin such as \"https://www.example.com\" (scheme, host, port; no path)",
                        ),
                    }
                }
            }
            None => p.push(span(item), path, "must be a list of origins"),
        },
        "mapping" => match item.as_table() {
            Some(table) => match crate::mapping::parse_spec(table) {
                Ok(spec) => src.mapping = Some(spec),
                Err(errors) => {
                    for e in errors {
                        p.push(e.span.or_else(|| span(item)), &format!("{path}.{}", e.key), e.message);
                    }
                }
            },
            None => p.push(span(item), path, "must be a table: [sources.mapping]"),
        },
        "required" => match item.as_array() {
            Some(list) => {
                src.required = Vec::new();
                for (j, entry) in list.iter().enumerate() {
                    let alternatives: Option<Vec<String>> =
                        entry.as_str().map(|e| e.split('|').map(|f| f.trim().to_owned()).collect());
                    match alternatives {
                        Some(alts) if alts.iter().all(|f| crate::lead::STANDARD_FIELDS.contains(&f.as_str())) => {
                            src.required.push(alts)
                        }
                        _ => p.push(
                            entry.span().or_else(|| span(item)),
                            &format!("{path}[{j}]"),
                            "must be a standard field name, or several joined by |",
                        ),
                    }
                }
            }
            None => p.push(span(item), path, "must be a list such as [\"email|phone\", \"company\"]"),
        },
        "default_country" => {
            if let Some(s) = p.string(item, path) {
                match crate::geo::CountryCode::parse_code(s) {
                    Some(code) => src.default_country = Some(code.as_str().to_owned()),
                    None => p.push(span(item), path, "must be an ISO 3166-1 alpha-2 code such as \"US\""),
                }
            }
        }
        "body_limit_bytes" => {
            if let Some(n) = p.positive_integer(item, path) {
                src.body_limit_bytes = Some(usize::try_from(n).unwrap_or(usize::MAX));
            }
        }
        "qualification" => src.qualification = qualification::read(p, item, path),
        _ if inbound::read_email_key(p, key, item, path, &mut src.email) => {}
        _ if inbound::read_signed_key(p, key, item, path, &mut src.signed_json) => {}
        _ => p.push(span(item), path, "unknown key"),
    }
}

/// What the adapter cannot work without, reported at the `adapter` key: a source that
/// loads but refuses every request is worse than one that does not load.
fn source_needs(p: &mut Problems, t: &Table, i: usize, adapter: Adapter, src: &SourceConfig) {
    let at = t.get("adapter").and_then(span).or_else(|| t.span());
    let path = format!("sources[{i}].adapter");
    let name = adapter.as_str();
    if adapter.needs_secret() && src.secret_env.is_none() {
        p.push(at.clone(), &path, format!("adapter {name:?} verifies signatures: set secret_env"));
    }
    if adapter.fetches() && src.token_env.is_none() {
        p.push(at.clone(), &path, format!("adapter {name:?} reads leads from the provider's API: set token_env"));
    }
    if adapter == Adapter::FacebookLeadAds && src.verify_token_env.is_none() {
        p.push(at.clone(), &path, "adapter \"facebook_lead_ads\" answers the hub.challenge: set verify_token_env");
    }
    let web_only = [
        ("allowed_origins", !src.allowed_origins.is_empty()),
        ("honeypot_field", src.honeypot_field.is_some()),
        ("min_submit_secs", src.min_submit_secs.is_some()),
    ];
    for (key, set) in web_only {
        if set && adapter != Adapter::WebForm {
            let at = t.get(key).and_then(span);
            p.push(at, &format!("sources[{i}].{key}"), "only web_form sources take this key");
        }
    }
    let linkedin_only =
        [("pull_interval_secs", src.pull_interval.is_some()), ("linkedin_owner", src.linkedin_owner.is_some())];
    for (key, set) in linkedin_only {
        if set && adapter != Adapter::LinkedinLeadGen {
            let at = t.get(key).and_then(span);
            p.push(at, &format!("sources[{i}].{key}"), "only linkedin_lead_gen sources take this key");
        }
    }
    if adapter == Adapter::LinkedinLeadGen && src.pull_interval.is_some() && src.linkedin_owner.is_none() {
        let at = t.get("pull_interval_secs").and_then(span);
        p.push(
            at,
            &format!("sources[{i}].pull_interval_secs"),
            "a pull reads the forms of one owner: set linkedin_owner",
        );
    }
    let email_only = ["email_provider", "keep_attachments", "relay_domains", "extract"];
    let signed_only = [
        "signature_header",
        "signature_algorithm",
        "signature_encoding",
        "signature_prefix",
        "timestamp_header",
        "timestamp_tolerance_secs",
    ];
    for (keys, only, name) in
        [(&email_only[..], Adapter::Email, "email"), (&signed_only[..], Adapter::SignedJson, "signed_json")]
    {
        for key in keys.iter().filter(|k| t.contains_key(k)) {
            if adapter != only {
                let at = t.get(key).and_then(span);
                p.push(at, &format!("sources[{i}].{key}"), format!("only {name} sources take this key"));
            }
        }
    }
    for (key, set) in [("api_base_url", src.api_base_url.is_some()), ("token_env", src.token_env.is_some())] {
        if set && !adapter.may_fetch() {
            let at = t.get(key).and_then(span);
            p.push(
                at,
                &format!("sources[{i}].{key}"),
                "only facebook_lead_ads, linkedin_lead_gen and intercom take this key",
            );
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
