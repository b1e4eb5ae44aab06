//! The settings of the two generic inbound adapters: `email` (inquiries forwarded by
//! directories, marketplaces and review sites, as raw MIME or a provider's inbound-parse
//! post) and `signed_json` (any tool that can sign a JSON body with a shared secret:
//! Zapier, Make, in-house scripts). They are read here, with the rest of a source, so a
//! bad pattern or an unknown algorithm is reported by `check-config` at its key, not by
//! the first request.

use crate::config::read::{Node, Problems, span};
use regex::Regex;
use toml_edit::Item;

/// The largest body an `email` source accepts unless it sets `body_limit_bytes`: a
/// forwarded inquiry with a logo and a signature image is well under it, a message with
/// large attachments is refused with 413 before it is read.
pub const DEFAULT_EMAIL_BODY_LIMIT: usize = 10 << 20;

/// Who posts the messages of an `email` source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailProvider {
    Mailgun,
    Sendgrid,
    Postmark,
    /// The message itself (`Content-Type: message/rfc822`).
    Raw,
}

impl EmailProvider {
    pub const ALL: [EmailProvider; 4] = [Self::Mailgun, Self::Sendgrid, Self::Postmark, Self::Raw];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Mailgun => "mailgun",
            Self::Sendgrid => "sendgrid",
            Self::Postmark => "postmark",
            Self::Raw => "raw",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A regular expression from the configuration; compared by its text.
#[derive(Clone, Debug)]
pub struct Pattern(pub Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// How one value is found in a message's text: the rest of the line after any of the
/// labels (case-insensitive, at the start of a line after optional spaces or `*`), then
/// the pattern's first capture group (or its whole match).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtractRule {
    pub labels: Vec<String>,
    pub pattern: Option<Pattern>,
}

/// `[sources.extract]`: the values to read from a message's text, by target. A target
/// is a standard field (`phone`, `company`), `name` (a full name, split into first and
/// last), or any other name, kept in custom.
pub type ExtractRules = Vec<(String, ExtractRule)>;

/// The labels used when a source configures none, English and German, as directories
/// and contact-form mailers write them.
pub fn default_extract_rules() -> ExtractRules {
    let rule =
        |labels: &[&str]| ExtractRule { labels: labels.iter().map(|l| (*l).to_owned()).collect(), pattern: None };
    vec![
        ("email".into(), rule(&["Email:", "E-mail:", "Email address:", "E-Mail-Adresse:", "Reply to:", "Antwort an:"])),
        (
            "phone".into(),
            rule(&[
                "Phone:",
                "Phone number:",
                "Tel:",
                "Tel.:",
                "Telephone:",
                "Mobile:",
                "Telefon:",
                "Telefonnummer:",
                "Handy:",
                "Mobil:",
            ]),
        ),
        (
            "company".into(),
            rule(&["Company:", "Company name:", "Organization:", "Organisation:", "Firma:", "Unternehmen:"]),
        ),
        (
            "name".into(),
            rule(&["Name:", "Full name:", "Contact:", "Contact name:", "Vollständiger Name:", "Ansprechpartner:"]),
        ),
        ("first_name".into(), rule(&["First name:", "Vorname:"])),
        ("last_name".into(), rule(&["Last name:", "Surname:", "Nachname:"])),
        ("job_title".into(), rule(&["Job title:", "Title:", "Position:", "Funktion:"])),
        ("website".into(), rule(&["Website:", "Webseite:"])),
    ]
}

/// An `email` source's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailSettings {
    /// Pins the provider; `None`: decided from each request's content type and shape.
    pub provider: Option<EmailProvider>,
    /// Attachment bytes are kept (base64, in the stored payload) only when this is set;
    /// otherwise only their names, types and sizes are.
    pub keep_attachments: bool,
    /// `[sources.extract]`, or the default labels when the source has none.
    pub extract: ExtractRules,
    /// Domains whose senders relay someone else's inquiry (a directory's notification
    /// address): their Reply-To, not their From, is the person. Addresses such as
    /// `no-reply@…` are relays whatever their domain.
    pub relay_domains: Vec<String>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self { provider: None, keep_attachments: false, extract: default_extract_rules(), relay_domains: Vec::new() }
    }
}

/// The hash of a `signed_json` source's HMAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// How a `signed_json` source's signature is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// A `signed_json` source's signature scheme: `HMAC(secret, [timestamp + "."] + body)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedJsonSettings {
    /// Default `X-Signature`.
    pub header: String,
    pub algorithm: SignatureAlgorithm,
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header, e.g. `sha256=`.
    pub prefix: Option<String>,
    /// A header carrying the Unix time of signing; when set it is required, signed
    /// (`timestamp.body`) and checked against `timestamp_tolerance_secs`.
    pub timestamp_header: Option<String>,
    pub timestamp_tolerance_secs: u64,
}

impl Default for SignedJsonSettings {
    fn default() -> Self {
        Self {
            header: "X-Signature".into(),
            algorithm: SignatureAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: None,
            timestamp_header: None,
            timestamp_tolerance_secs: 300,
        }
    }
}

/// Reads `email_provider`, `keep_attachments`, `relay_domains` and `extract`; returns
/// false when the key is none of them.
pub(crate) fn read_email_key(p: &mut Problems, key: &str, item: &Item, path: &str, email: &mut EmailSettings) -> bool {
    match key {
        "email_provider" => {
            if let Some(s) = p.string(item, path) {
                match EmailProvider::parse(s) {
                    Some(provider) => email.provider = Some(provider),
                    None => p.push(span(item), path, "must be one of mailgun, sendgrid, postmark, raw"),
                }
            }
        }
        "keep_attachments" => match item.as_bool() {
            Some(b) => email.keep_attachments = b,
            None => p.push(span(item), path, "must be true or false"),
        },
        "relay_domains" => match Node::from_item(item).and_then(|n| n.strings()) {
            Some(list) => {
                email.relay_domains =
                    list.iter().map(|(d, _)| d.trim().trim_start_matches('@').to_ascii_lowercase()).collect()
            }
            None => p.push(span(item), path, "must be a list of domains such as [\"notifications.directory.example\"]"),
        },
        "extract" => match Node::from_item(item).and_then(|n| n.entries()) {
            Some(entries) => {
                email.extract = Vec::new();
                for (target, node) in entries {
                    let at = format!("{path}.{target}");
                    if let Some(rule) = read_rule(p, &node, &at) {
                        email.extract.push((target.to_owned(), rule));
                    }
                }
            }
            None => p.push(span(item), path, "must be a table: [sources.extract]"),
        },
        _ => return false,
    }
    true
}

/// A list of labels, one label, or `{ labels = [...], pattern = "..." }`.
fn read_rule(p: &mut Problems, node: &Node, path: &str) -> Option<ExtractRule> {
    if let Some(labels) = node.strings() {
        return Some(ExtractRule { labels: labels.iter().map(|(l, _)| (*l).to_owned()).collect(), pattern: None });
    }
    let Some(entries) = node.entries() else {
        p.push(node.span(), path, "must be a list of labels or { pattern = \"…\" }");
        return None;
    };
    let mut rule = ExtractRule::default();
    let problems = p.len();
    for (key, value) in entries {
        let at = format!("{path}.{key}");
        match key {
            "labels" => match value.strings() {
                Some(labels) => rule.labels = labels.iter().map(|(l, _)| (*l).to_owned()).collect(),
                None => p.push(value.span(), &at, "must be a list of labels"),
            },
            "pattern" => match value.as_str().map(Regex::new) {
                Some(Ok(re)) => rule.pattern = Some(Pattern(re)),
                Some(Err(e)) => p.push(value.span(), &at, format!("not a valid regular expression: {e}")),
                None => p.push(value.span(), &at, "must be a regular expression"),
            },
            _ => p.push(value.span(), &at, "unknown key (labels or pattern)"),
        }
    }
    if rule.labels.is_empty() && rule.pattern.is_none() {
        // A bad pattern has said so already.
        if p.len() == problems {
            p.push(node.span(), path, "needs labels or a pattern");
        }
        return None;
    }
    Some(rule)
}

/// Reads the `signature_*` and `timestamp_*` keys; returns false when the key is none of
/// them.
pub(crate) fn read_signed_key(
    p: &mut Problems,
    key: &str,
    item: &Item,
    path: &str,
    s: &mut SignedJsonSettings,
) -> bool {
    match key {
        "signature_header" => {
            if let Some(h) = p.string(item, path) {
                if is_header_name(h) {
                    s.header = h.to_owned();
                } else {
                    p.push(span(item), path, "must be an HTTP header name such as \"X-Signature\"");
                }
            }
        }
        "signature_algorithm" => match p.string(item, path) {
            Some("sha1") => s.algorithm = SignatureAlgorithm::Sha1,
            Some("sha256") => s.algorithm = SignatureAlgorithm::Sha256,
            Some("sha512") => s.algorithm = SignatureAlgorithm::Sha512,
            Some(_) => p.push(span(item), path, "must be sha256, sha1 or sha512"),
            None => {}
        },
        "signature_encoding" => match p.string(item, path) {
            Some("hex") => s.encoding = SignatureEncoding::Hex,
            Some("base64") => s.encoding = SignatureEncoding::Base64,
            Some(_) => p.push(span(item), path, "must be hex or base64"),
            None => {}
        },
        "signature_prefix" => {
            if let Some(prefix) = p.string(item, path) {
                s.prefix = Some(prefix.to_owned()).filter(|x| !x.is_empty());
            }
        }
        "timestamp_header" => {
            if let Some(h) = p.string(item, path) {
                if is_header_name(h) {
                    s.timestamp_header = Some(h.to_owned());
                } else {
                    p.push(span(item), path, "must be an HTTP header name such as \"X-Timestamp\"");
                }
            }
        }
        "timestamp_tolerance_secs" => {
            if let Some(n) = p.positive_integer(item, path) {
                s.timestamp_tolerance_secs = n;
            }
        }
        _ => return false,
    }
    true
}

fn is_header_name(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
