//! One module per provider. Each has `handle` (verify, then split into items) and
//! `standardize` (map one stored item). Shared helpers live here.

pub mod calendly;
pub mod drift;
pub mod email;
pub mod facebook;
pub mod google;
pub mod hubspot;
pub mod intercom;
pub mod jotform;
pub mod linkedin;
pub mod signed_json;
pub mod tally;
pub mod typeform;
pub mod unbounce;
pub mod web_form;
pub mod webflow;
pub mod zoom;

use crate::channels::{Handled, HookError, HookRequest, Item, Secrets, SpamRules, Standard};
use leadflow_core::source::Adapter;
use leadflow_core::source::inbound::{EmailSettings, SignedJsonSettings};
use leadflow_core::source::qualification::Qualification;
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// A source's adapter with the settings the generic adapters read.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub adapter: Adapter,
    pub email: &'a EmailSettings,
    pub signed_json: &'a SignedJsonSettings,
    /// The source's qualification table (chat adapters read their bots' answers by it).
    pub qualification: &'a Qualification,
}

static DEFAULT_EMAIL: LazyLock<EmailSettings> = LazyLock::new(EmailSettings::default);
static DEFAULT_SIGNED: LazyLock<SignedJsonSettings> = LazyLock::new(SignedJsonSettings::default);
static NO_QUALIFICATION: LazyLock<Qualification> = LazyLock::new(Qualification::default);

impl Options<'static> {
    /// The adapter with default settings.
    pub fn of(adapter: Adapter) -> Self {
        Self { adapter, email: &DEFAULT_EMAIL, signed_json: &DEFAULT_SIGNED, qualification: &NO_QUALIFICATION }
    }
}
use sha2::{Digest, Sha256};

/// Verifies and splits a request. During a rotation of the source's secret a request the
/// current secret refuses is tried with the previous one: senders switch at their pace.
pub fn handle(options: Options, req: &HookRequest, secrets: &Secrets, rules: &SpamRules) -> Result<Handled, HookError> {
    let current = handle_with(options, req, secrets.secret.as_deref(), secrets, rules);
    match (&current, secrets.previous.as_deref()) {
        (Err(HookError::Unauthorized(_)), Some(previous)) => {
            handle_with(options, req, Some(previous), secrets, rules).or(current)
        }
        _ => current,
    }
}

fn handle_with(
    options: Options,
    req: &HookRequest,
    secret: Option<&str>,
    secrets: &Secrets,
    rules: &SpamRules,
) -> Result<Handled, HookError> {
    match options.adapter {
        Adapter::Json => Err(not_a_provider()),
        Adapter::WebForm => web_form::handle(req, secret, rules),
        Adapter::FacebookLeadAds => facebook::handle(req, secret, secrets.verify_token.as_deref()),
        Adapter::GoogleAdsLeadForm => google::handle(req, secret),
        Adapter::LinkedinLeadGen => linkedin::handle(req, secret),
        Adapter::Typeform => typeform::handle(req, secret),
        Adapter::HubspotForms => hubspot::handle(req, secret),
        Adapter::Calendly => calendly::handle(req, secret),
        Adapter::ZoomWebinar => zoom::handle(req, secret),
        Adapter::Intercom => intercom::handle(req, secret),
        Adapter::Drift => drift::handle(req, secret),
        Adapter::Unbounce => unbounce::handle(req, secret),
        Adapter::Webflow => webflow::handle(req, secret),
        Adapter::Jotform => jotform::handle(req, secret),
        Adapter::Tally => tally::handle(req, secret),
        Adapter::Email => email::handle(req, secret, options.email),
        Adapter::SignedJson => signed_json::handle(req, secret, options.signed_json),
    }
}

/// Parser versions. History: 1, the first parsers; 2 (every adapter, issue 19): labels
/// matched by the core's table (decorated and numbered labels), custom names shortened
/// to the length limit, missing parts reported by path; Typeform and Tally key custom
/// answers by the question's ref/key; Intercom reads every documented person shape;
/// Webflow, Unbounce and web forms take a lone email-shaped value as the email.
/// `email/1` and `signed_json/1` came with issue 19. Conversations: `intercom/3` reads
/// the conversation's `custom_attributes` (a bot's answers) through the source's
/// qualification table; `drift/1` is new.
pub fn version(adapter: Adapter) -> &'static str {
    match adapter {
        Adapter::Json => "json/1",
        Adapter::WebForm => "web_form/2",
        Adapter::FacebookLeadAds => "facebook_lead_ads/2",
        Adapter::GoogleAdsLeadForm => "google_ads_lead_form/2",
        Adapter::LinkedinLeadGen => "linkedin_lead_gen/2",
        Adapter::Typeform => "typeform/2",
        Adapter::HubspotForms => "hubspot_forms/2",
        Adapter::Calendly => "calendly/2",
        Adapter::ZoomWebinar => "zoom_webinar/2",
        Adapter::Intercom => "intercom/3",
        Adapter::Drift => "drift/1",
        Adapter::Unbounce => "unbounce/2",
        Adapter::Webflow => "webflow/2",
        Adapter::Jotform => "jotform/2",
        Adapter::Tally => "tally/2",
        Adapter::Email => "email/1",
        Adapter::SignedJson => "signed_json/1",
    }
}

pub fn standardize(options: Options, payload: &Map<String, Value>) -> Result<Standard, HookError> {
    match options.adapter {
        Adapter::Json => Err(not_a_provider()),
        Adapter::SignedJson => Err(HookError::Unsupported(
            "a signed_json lead is read by the generic mapper, as a json source's is".into(),
        )),
        Adapter::Email => email::standardize(payload, options.email),
        Adapter::WebForm => web_form::standardize(payload),
        Adapter::FacebookLeadAds => facebook::standardize(payload),
        Adapter::GoogleAdsLeadForm => google::standardize(payload),
        Adapter::LinkedinLeadGen => linkedin::standardize(payload),
        Adapter::Typeform => typeform::standardize(payload),
        Adapter::HubspotForms => hubspot::standardize(payload),
        Adapter::Calendly => calendly::standardize(payload),
        Adapter::ZoomWebinar => zoom::standardize(payload),
        Adapter::Intercom => intercom::standardize(payload, options.qualification),
        Adapter::Drift => drift::standardize(payload, options.qualification),
        Adapter::Unbounce => unbounce::standardize(payload),
        Adapter::Webflow => webflow::standardize(payload),
        Adapter::Jotform => jotform::standardize(payload),
        Adapter::Tally => tally::standardize(payload),
    }
}

/// A `json` source's leads are the standard fields, posted to `/v1/leads` with a key: no
/// provider protocol applies to them.
fn not_a_provider() -> HookError {
    HookError::Unsupported("a json source takes the standard fields on POST /v1/leads".into())
}

/// Webhook deliveries are POSTs; handshakes are handled before this is called.
pub fn require_post(req: &HookRequest) -> Result<(), HookError> {
    if req.method.eq_ignore_ascii_case("POST") {
        Ok(())
    } else {
        Err(HookError::Unsupported(format!("method {} not accepted here", req.method)))
    }
}

pub fn header<'a>(req: &'a HookRequest, name: &str) -> Result<&'a str, HookError> {
    req.header(name).ok_or_else(|| HookError::Unauthorized(format!("missing {name} header")))
}

pub fn item(idempotency_key: String, payload: Map<String, Value>, is_test: bool) -> Item {
    Item { idempotency_key, payload, fetch: None, is_test }
}

pub fn one(item: Item) -> Handled {
    Handled::Items(vec![item])
}

pub fn ignored(reason: impl Into<String>) -> Handled {
    Handled::Ignored { reason: reason.into() }
}

/// Hex SHA-256, for providers that send no id: a retry resends the same bytes, so the
/// same key; a different submission differs somewhere.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// A required object member of a stored payload.
pub fn obj<'a>(v: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, HookError> {
    v.get(key).and_then(Value::as_object).ok_or_else(|| missing(key, "an object is required here"))
}

/// The error for a stored payload that lacks `path`.
pub fn missing(path: impl Into<String>, reason: impl Into<String>) -> HookError {
    HookError::Missing { path: path.into(), reason: reason.into() }
}

/// The array under `key`, or an empty slice.
pub fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Touchpoint ids copied from `src[key]` to `touchpoint[as_]`.
pub fn touch_ids(s: &mut Standard, src: &Value, pairs: &[(&str, &str)]) {
    for (key, as_) in pairs {
        if let Some(v) = src.get(*key) {
            s.touch(as_, v);
        }
    }
}
