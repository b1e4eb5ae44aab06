//! Provider-webhook adapters for leadflow, one per provider [`Adapter`] (the core's list,
//! which the configuration reads).
//!
//! Contract: [`handle`] turns one HTTP request from a provider into either a handshake
//! answer, inbox items keyed by the provider's own id, or an acknowledgement of a
//! notification that carries no lead. It verifies the provider's signature over the exact
//! bytes the provider signed, in constant time, and rejects stale timestamps where the
//! provider signs one. [`standardize`] maps one stored item onto leadflow's standard
//! fields; it is pure, so a stored payload can be re-standardized after an adapter fix.
//!
//! Failure modes are the [`HookError`] variants: a bad or missing signature or key
//! (`Unauthorized`), a signed timestamp outside tolerance (`Stale`), a body that is not what
//! the provider documents (`Malformed`), and a method or event the adapter does not take
//! (`Unsupported`; so is everything for a `json` source, which speaks no provider's
//! protocol). Nothing here panics on hostile input (see the proptests and [`fuzz_entry`]).
//!
//! Bodies: JSON, `application/x-www-form-urlencoded` and `multipart/form-data` (text parts
//! only; file parts keep their file name) are decoded here from the raw bytes, so the server
//! passes the body untouched.

mod adapters;
pub mod body;
pub mod feedback;
pub mod fetch;
mod sig;
mod spam;
mod standard;

pub use adapters::intercom::contact_to_fetch as intercom_contact_to_fetch;
pub use spam::{SpamReason, SpamRules, check_spam};

/// The attribution script served at `/embed.js` (see `assets/embed.js`).
pub const EMBED_JS: &str = include_str!("../assets/channels/embed.js");
pub use standard::{STANDARD_FIELDS, Standard};

use adapters::Options;
use leadflow_core::config::SourceConfig;
use leadflow_core::source::Adapter;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// One incoming request, as the server received it.
#[derive(Clone, Debug)]
pub struct HookRequest<'a> {
    pub method: &'a str,
    /// The full URL as the provider called it (scheme, host, path and query); HubSpot's v3
    /// signature covers it.
    pub url: &'a str,
    /// The raw query string, without the leading `?`.
    pub query: &'a str,
    /// Header names in lower case.
    pub headers: &'a [(String, String)],
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub now: OffsetDateTime,
}

impl HookRequest<'_> {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// The source's secrets, read from the environment by the server. `Debug` never prints them.
#[derive(Clone, Default)]
pub struct Secrets {
    /// The signing secret (`secret_env`).
    pub secret: Option<String>,
    /// The secret being rotated out (`previous_secret_env`), accepted too meanwhile.
    pub previous: Option<String>,
    /// Facebook's `hub.verify_token` (`verify_token_env`).
    pub verify_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .field("verify_token", &self.verify_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the server should do with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Handled {
    /// Answer the handshake with this status, content type and body; nothing to store.
    Challenge { status: u16, content_type: &'static str, body: String },
    /// Items to store in the inbox, each with the provider's id as idempotency key.
    Items(Vec<Item>),
    /// A notification that is not a lead (e.g. Calendly `invitee.canceled`): acknowledge it,
    /// store nothing.
    Ignored { reason: String },
    /// A web-form post judged to be spam; never a lead. Answer as if accepted (a bot should
    /// learn nothing) and count it.
    Spam(SpamReason),
    /// What a person did (joined a webinar, registered), recorded as behavioural events
    /// of their lead, with the leads the notification also carries (none for a join).
    Activity { items: Vec<Item>, activity: Vec<Activity> },
}

/// One thing a person did, as a provider reported it: recorded as a behavioural event of
/// the lead with this email, or kept until that lead exists.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// The provider's id for this happening; a provider's retry carries the same one.
    pub idempotency_key: String,
    /// The event type, e.g. `attendance.joined`.
    pub kind: String,
    pub occurred_at: OffsetDateTime,
    /// Whom it was about: an email, else the provider's visitor id (`drift:{contact
    /// id}`, kept as the event's anonymous id: it joins the lead whose submission carried
    /// the same `custom.anonymous_id`). One of the two is always set.
    pub email: Option<String>,
    pub visitor: Option<String>,
    pub properties: Map<String, Value>,
}

/// One lead notification as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The provider's event or lead id, prefixed by provider, e.g. `fb:leadgen:123`. A
    /// provider's retry carries the same id, so the same key.
    pub idempotency_key: String,
    /// The item as received, JSON-ified; this is what the inbox keeps.
    pub payload: Map<String, Value>,
    /// Facebook and LinkedIn notify with an id only: the lead must be fetched from the
    /// provider's API (see [`fetch`]) and merged with [`Fetch::merge_into`] before
    /// [`standardize`] can find its fields.
    pub fetch: Option<Fetch>,
    /// The provider marked this as a test submission.
    pub is_test: bool,
}

/// A provider API call needed before an item can be standardized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Graph API `GET /{version}/{leadgen_id}`.
    FacebookLead { leadgen_id: String },
    /// Lead Sync API `GET /rest/leadFormResponses/{id}`.
    LinkedinFormResponse { response_id: String },
    /// Intercom `GET /contacts/{id}`: a conversation that names its person by id only.
    IntercomContact { contact_id: String },
}

impl Fetch {
    /// The key under which the fetched object is kept in the item payload.
    pub const FETCHED_KEY: &'static str = "fetched";

    /// Stores the provider's answer in the item payload, where [`standardize`] reads it.
    pub fn merge_into(payload: &mut Map<String, Value>, fetched: Map<String, Value>) {
        payload.insert(Self::FETCHED_KEY.to_owned(), Value::Object(fetched));
    }
}

/// Why a request was refused. The server maps these to 401, 401, 400 and 400/405.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// Bad or missing signature, key or verify token.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The signed timestamp is outside the tolerance (replay protection).
    #[error("stale: {0}")]
    Stale(String),
    #[error("malformed: {0}")]
    Malformed(String),
    /// A stored payload lacks what the adapter needs: `path` is where it looked last
    /// (`data.item.contacts.contacts[0].email`), `reason` says what that shape carries.
    #[error("missing {path}: {reason}")]
    Missing { path: String, reason: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl HookError {
    /// A stable snake_case code for problem+json bodies.
    pub fn code(&self) -> &'static str {
        match self {
            HookError::Unauthorized(_) => "hook_unauthorized",
            HookError::Stale(_) => "hook_stale",
            HookError::Malformed(_) | HookError::Missing { .. } => "hook_malformed",
            HookError::Unsupported(_) => "hook_unsupported",
        }
    }
}

/// Verifies and parses one provider request.
/// Web forms are judged with the default [`SpamRules`]; use [`handle_with_rules`] to
/// configure them.
pub fn handle(adapter: Adapter, req: &HookRequest, secrets: &Secrets) -> Result<Handled, HookError> {
    adapters::handle(Options::of(adapter), req, secrets, &SpamRules::default())
}

/// [`handle`] with the source's own spam rules (used by `web_form` only).
pub fn handle_with_rules(
    adapter: Adapter,
    req: &HookRequest,
    secrets: &Secrets,
    rules: &SpamRules,
) -> Result<Handled, HookError> {
    adapters::handle(Options::of(adapter), req, secrets, rules)
}

/// [`handle_with_rules`] with the source's own settings: an `email` source's provider,
/// attachment policy and extraction rules, a `signed_json` source's signature scheme.
pub fn handle_source(
    source: &SourceConfig,
    req: &HookRequest,
    secrets: &Secrets,
    rules: &SpamRules,
) -> Result<Handled, HookError> {
    adapters::handle(options(source), req, secrets, rules)
}

/// [`standardize`] with the source's own settings (an `email` source's extraction rules).
pub fn standardize_source(source: &SourceConfig, payload: &Map<String, Value>) -> Result<Standard, HookError> {
    adapters::standardize(options(source), payload)
}

fn options(source: &SourceConfig) -> Options<'_> {
    Options {
        adapter: source.adapter,
        email: &source.email,
        signed_json: &source.signed_json,
        qualification: &source.qualification,
    }
}

/// The values the extraction rules find in a message's text, by target, as the `email`
/// adapter reads them (see its module docs).
pub fn extract_from_text(
    text: &str,
    rules: &[(String, leadflow_core::source::inbound::ExtractRule)],
) -> Vec<(String, String)> {
    adapters::email::extract(text, rules)
}

/// An inbox item for one LinkedIn lead form response read by the pull source
/// ([`fetch::linkedin::fetch_form_responses`]); the same key as the webhook path yields.
pub fn linkedin_pull_item(response: Map<String, Value>) -> Result<Item, HookError> {
    adapters::linkedin::pull_item(response)
}

/// The adapter's name and parser version, e.g. `typeform/2`. A quarantine entry names it,
/// so after an adapter fix a replayed entry shows which parser read it. Bumped whenever
/// what `standardize` makes of a payload changes (see the adapters' module docs).
pub fn adapter_version(adapter: Adapter) -> &'static str {
    adapters::version(adapter)
}

/// Maps one stored item payload onto leadflow's standard shape.
pub fn standardize(adapter: Adapter, payload: &Map<String, Value>) -> Result<Standard, HookError> {
    adapters::standardize(Options::of(adapter), payload)
}

/// The lead a conversation's qualification answers make (`POST /v1/conversations`): the
/// email and the answers, mapped by the source's qualification table and the label
/// table as the chat adapters map theirs, in the shape `POST /v1/leads` takes (standard
/// fields at the top level, the rest under `custom` with their questions as labels).
pub fn answers_lead(
    email: &str,
    answers: &Map<String, Value>,
    table: &leadflow_core::source::qualification::Qualification,
) -> Map<String, Value> {
    let mut s = Standard::default();
    s.set("email", &Value::String(email.to_owned()));
    s.answer_all(answers, table);
    let mut out = s.into_payload();
    out.remove("touchpoint");
    out
}

/// Entry point for the email fuzz target: `data` as a raw message, and as the body of a
/// Mailgun, SendGrid (raw and parsed) and Postmark post, through `handle` and
/// `standardize` with default extraction rules and with every attachment kept. Must
/// never panic.
pub fn fuzz_email(data: &[u8]) {
    use leadflow_core::source::inbound::{EmailProvider, EmailSettings};
    let headers: Vec<(String, String)> = Vec::new();
    let cases: [(Option<EmailProvider>, &str); 6] = [
        (None, "message/rfc822"),
        (Some(EmailProvider::Raw), "message/rfc822"),
        (None, "application/json"),
        (None, "application/x-www-form-urlencoded"),
        (None, "multipart/form-data; boundary=b"),
        (Some(EmailProvider::Sendgrid), "multipart/form-data; boundary=b"),
    ];
    for (provider, content_type) in cases {
        for keep_attachments in [false, true] {
            let settings = EmailSettings { provider, keep_attachments, ..EmailSettings::default() };
            let options = Options {
                adapter: Adapter::Email,
                email: &settings,
                signed_json: Options::of(Adapter::Email).signed_json,
                qualification: Options::of(Adapter::Email).qualification,
            };
            let req = HookRequest {
                method: "POST",
                url: "https://leadflow.example/v1/hooks/fuzz",
                query: "",
                headers: &headers,
                content_type: Some(content_type),
                body: data,
                now: OffsetDateTime::UNIX_EPOCH,
            };
            if let Ok(Handled::Items(items)) =
                adapters::handle(options, &req, &Secrets::default(), &SpamRules::default())
            {
                for item in items {
                    let _ = adapters::standardize(options, &item.payload).map(Standard::into_payload);
                }
            }
        }
    }
    // The extraction rules over arbitrary text, too.
    let text = String::from_utf8_lossy(data);
    let _ = adapters::email::extract(&text, &leadflow_core::source::inbound::default_extract_rules());
}

/// Entry point for the signed-JSON fuzz target: the first line of `data` is the
/// signature header, the rest the body, checked with every algorithm and encoding and
/// with a prefix and a timestamp. Must never panic.
pub fn fuzz_signed_json(data: &[u8]) {
    use leadflow_core::source::inbound::{SignatureAlgorithm, SignatureEncoding, SignedJsonSettings};
    let (line, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let signature = String::from_utf8_lossy(line).into_owned();
    let headers = vec![
        ("x-signature".to_owned(), signature.clone()),
        ("x-timestamp".to_owned(), signature),
        ("idempotency-key".to_owned(), "k".to_owned()),
    ];
    let secrets = Secrets { secret: Some("s".into()), previous: None, verify_token: None };
    for algorithm in [SignatureAlgorithm::Sha1, SignatureAlgorithm::Sha256, SignatureAlgorithm::Sha512] {
        for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
            for (prefix, timestamp) in [(None, None), (Some("sha256=".to_owned()), Some("X-Timestamp".to_owned()))] {
                let settings = SignedJsonSettings {
                    algorithm,
                    encoding,
                    prefix,
                    timestamp_header: timestamp,
                    ..SignedJsonSettings::default()
                };
                let options = Options {
                    adapter: Adapter::SignedJson,
                    email: Options::of(Adapter::SignedJson).email,
                    signed_json: &settings,
                    qualification: Options::of(Adapter::SignedJson).qualification,
                };
                let req = HookRequest {
                    method: "POST",
                    url: "https://leadflow.example/v1/hooks/fuzz",
                    query: "",
                    headers: &headers,
                    content_type: Some("application/json"),
                    body,
                    now: OffsetDateTime::UNIX_EPOCH,
                };
                let _ = adapters::handle(options, &req, &secrets, &SpamRules::default());
            }
        }
    }
}

/// Entry point for a fuzz target: runs [`handle`] (and [`standardize`] on what it yields)
/// for every adapter over arbitrary bytes, with and without secrets. Must never panic.
pub fn fuzz_entry(data: &[u8]) {
    let (head, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let query = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let content_type = headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.clone());
    let secrets =
        [Secrets::default(), Secrets { secret: Some("s".into()), previous: None, verify_token: Some("v".into()) }];
    for method in ["POST", "GET"] {
        let req = HookRequest {
            method,
            url: "https://leadflow.example/v1/hooks/fuzz",
            query: &query,
            headers: &headers,
            content_type: content_type.as_deref(),
            body,
            now: OffsetDateTime::UNIX_EPOCH,
        };
        for adapter in Adapter::providers() {
            for s in &secrets {
                if let Ok(Handled::Items(items) | Handled::Activity { items, .. }) = handle(adapter, &req, s) {
                    for item in items {
                        let _ = standardize(adapter, &item.payload).map(Standard::into_payload);
                    }
                }
            }
        }
    }
}
