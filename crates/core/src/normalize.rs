//! Normalize: turns mapped values into typed, cleaned values.
//!
//! Text is trimmed and inner whitespace collapsed; empty text counts as absent. The email
//! is lowercased and must be a valid address (a wrong email is an error, not a quirk:
//! matching and delivery depend on it). Names are title-cased (O'Brien, McDonald, van der
//! Berg; mixed case is left alone), the company name cleaned and keyed without its legal
//! suffix, the industry matched against its picklist. The country becomes its ISO 3166-1 alpha-2 code,
//! a US, Canadian or Australian state its ISO 3166-2 code (the part after the dash), and
//! the phone E.164 following libphonenumber, with the lead's country (else the source's
//! default country) as the hint for national numbers; the extension is kept apart. When
//! the lead gives no country, the phone's country is used. The LinkedIn and X profile
//! links become one canonical URL each (`https://www.linkedin.com/in/…`,
//! `https://x.com/…`). A value that cannot be normalized is kept as received and listed
//! in `issues`; numbers likewise. Every standard value received is kept, as received, in
//! `raw`. A value of the wrong JSON type is an error; all errors are reported together.
//!
//! Control characters are removed from every text value, custom values included, before
//! anything else reads it: NUL and the other C0 and C1 controls (tab and line breaks are
//! whitespace, collapsed like any other), DEL, and the bidirectional embeddings, overrides
//! and isolates (U+202A–U+202E, U+2066–U+2069) that make text display in another order
//! than it is stored. Such a value is kept without them and the lead lists
//! `control_characters_removed` for the field in `issues`; `raw` keeps what was received.
//!
//! The normalizers it uses live in submodules:
//!
//! * [`person_name`]: recase ALL CAPS / all lower names, keep mixed case.
//! * [`company`]: display form and a match key without legal suffixes.
//! * [`domain_of_url`] / [`registrable_domain`]: eTLD+1 via the Public Suffix List.
//! * [`is_free_mail`] / [`is_disposable`]: vendored domain lists (see `data/PROVENANCE.md`).
//! * [`Picklist`] / [`default_industries`]: controlled values with synonyms; [`Picklists`]
//!   the configured ones (`[picklists]`).
//! * [`classify_title`]: job title → [`Seniority`] and [`Department`].
//! * [`linkedin_url`] / [`x_url`]: social profile links → one canonical URL each.
//!
//! Every function is total: it never panics and does no I/O; data is compiled
//! in with `include_str!`, lookup tables are built once on first use.

mod company;
mod domain;
mod email;
mod name;
mod picklist;
pub(crate) mod picklists;
mod social;
mod text;
mod title;

pub use company::{Company, LegalSuffixes, company, company_with};
pub use domain::{domain_of_url, registrable_domain};
pub use email::{is_disposable, is_free_mail};
pub use name::person_name;
pub use picklist::{DEFAULT_INDUSTRIES, Picklist, PicklistError, default_industries};
pub use picklists::Picklists;
pub use social::{linkedin_url, x_url};
pub use title::{Department, Seniority, TitleClass, classify_title};

use crate::consent::{State, Status, purpose_of_channel};
use crate::email::Email;
use crate::error::{FieldError, FieldErrorCode};
use crate::lead::{Consent, Derived, Issue, LeadFields, Numeric};
use crate::map::Mapped;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A lead as one submission describes it, normalized but not yet matched or stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidate {
    pub fields: LeadFields,
    pub custom: Map<String, Value>,
    pub consent: Option<Consent>,
    pub raw: Map<String, Value>,
    pub issues: Vec<Issue>,
    pub derived: Derived,
}

impl Candidate {
    /// The browser visitor id the submission carries (`custom.anonymous_id`, from a form),
    /// so the visitor's earlier events join the lead.
    pub fn visitor_id(&self) -> Option<String> {
        ["anonymous_id", "_lf_vid", "visitor_id"]
            .iter()
            .find_map(|k| self.custom.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map(str::to_owned)
    }
}

/// What normalization needs to know beyond the submission: its source's defaults and the
/// configured picklists.
#[derive(Clone, Copy, Debug)]
pub struct Hints<'a> {
    /// ISO 3166-1 alpha-2 country for national phone numbers when the lead gives none.
    pub default_country: Option<&'a str>,
    pub industries: &'a Picklist,
    /// Legal-form suffixes the company key drops beyond the built-in ones.
    pub legal_suffixes: &'a LegalSuffixes,
    /// The consent purposes a submission may name.
    pub purposes: &'a [String],
}

pub fn normalize(mapped: Mapped, hints: Hints<'_>) -> Result<Candidate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut c = Candidate { custom: mapped.custom, ..Candidate::default() };
    for (key, value) in &mut c.custom {
        if scrub_value(value) {
            c.issues.push(issue(&format!("custom.{key}"), CONTROL_CHARACTERS_REMOVED));
        }
    }
    let f = &mut c.fields;
    for (key, value) in &mapped.standard {
        let scrubbed = match value {
            Value::String(s) if has_control(s) => {
                c.issues.push(issue(key, CONTROL_CHARACTERS_REMOVED));
                Some(Value::String(without_controls(s)))
            }
            _ => None,
        };
        let value = scrubbed.as_ref().unwrap_or(value);
        let target: &mut Option<String> = match key.as_str() {
            "email" => {
                match value.as_str().map(Email::parse) {
                    Some(Ok(email)) => f.email = Some(email),
                    Some(Err(_)) => {
                        errors.push(FieldError::new(key, FieldErrorCode::InvalidEmail, "not a valid email address"))
                    }
                    None => errors.push(wrong_type(key, "a string")),
                }
                continue;
            }
            "employee_count" | "annual_revenue" => {
                match numeric(value, key == "employee_count") {
                    Ok(Some((n, ok))) => {
                        if !ok {
                            c.issues.push(Issue { field: key.clone(), code: "invalid_number".into() });
                        }
                        if key == "employee_count" { f.employee_count = Some(n) } else { f.annual_revenue = Some(n) }
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
                continue;
            }
            "first_name" => &mut f.first_name,
            "last_name" => &mut f.last_name,
            "phone" => &mut f.phone,
            "company" => &mut f.company,
            "job_title" => &mut f.job_title,
            "website" => &mut f.website,
            "linkedin_url" => &mut f.linkedin_url,
            "x_url" => &mut f.x_url,
            "industry" => &mut f.industry,
            "country" => &mut f.country,
            "state" => &mut f.state,
            "city" => &mut f.city,
            "postal_code" => &mut f.postal_code,
            "street" => &mut f.street,
            "street2" => &mut f.street2,
            "locality" => &mut f.locality,
            "utm_source" => &mut f.utm_source,
            "utm_medium" => &mut f.utm_medium,
            "utm_campaign" => &mut f.utm_campaign,
            "utm_content" => &mut f.utm_content,
            "utm_term" => &mut f.utm_term,
            "referrer_url" => &mut f.referrer_url,
            "landing_page_url" => &mut f.landing_page_url,
            "external_id" => &mut f.external_id,
            _ => continue,
        };
        // Identifiers and numbers sent as JSON numbers are common (postal codes, phones
        // from spreadsheets, numeric CRM ids); they are read as their decimal text.
        let numeric_ok = matches!(key.as_str(), "phone" | "postal_code" | "external_id");
        match value {
            Value::String(s) => *target = clean_text(s),
            Value::Number(n) if numeric_ok => *target = Some(n.to_string()),
            _ => errors.push(wrong_type(key, if numeric_ok { "a string or a number" } else { "a string" })),
        }
    }
    if let Some(v) = mapped.consent {
        match consent(&v, hints.purposes) {
            Ok(consent) => c.consent = Some(consent),
            Err(mut e) => errors.append(&mut e),
        }
    }
    c.raw = mapped.standard;
    let extension = place(&mut c, hints);
    words(&mut c, hints);
    profiles(&mut c);
    c.derived = derive_with(&c.fields, extension, hints.legal_suffixes);
    if errors.is_empty() { Ok(c) } else { Err(errors) }
}

/// Names, company and industry: recased, suffix-aware, matched against the picklist.
fn words(c: &mut Candidate, hints: Hints<'_>) {
    for name in [&mut c.fields.first_name, &mut c.fields.last_name] {
        if let Some(raw) = name.take() {
            *name = Some(crate::normalize::person_name(&raw).unwrap_or(raw));
        }
    }
    if let Some(raw) = c.fields.company.take() {
        c.fields.company = Some(crate::normalize::company(&raw).map_or(raw, |co| co.display));
    }
    if let Some(raw) = c.fields.industry.take() {
        c.fields.industry = Some(match hints.industries.match_value(&raw) {
            Some(value) => value.to_owned(),
            None => {
                c.issues.push(issue("industry", "unknown_industry"));
                raw
            }
        });
    }
}

/// Social profile links: one canonical URL per profile, or the value as received with an
/// issue, as for a phone number that cannot be read.
fn profiles(c: &mut Candidate) {
    profile(&mut c.fields.linkedin_url, linkedin_url, ("linkedin_url", "invalid_linkedin_url"), &mut c.issues);
    profile(&mut c.fields.x_url, x_url, ("x_url", "invalid_x_url"), &mut c.issues);
}

fn profile(
    value: &mut Option<String>,
    canonical: fn(&str) -> Option<String>,
    (field, code): (&str, &str),
    issues: &mut Vec<Issue>,
) {
    if let Some(raw) = value.take() {
        *value = Some(canonical(&raw).unwrap_or_else(|| {
            issues.push(issue(field, code));
            raw
        }));
    }
}

/// What follows from the fields alone (plus the phone's extension, which parsing split
/// off). Merges call it again on the merged fields, so it never goes stale.
pub fn derive(fields: &LeadFields, phone_extension: Option<String>) -> Derived {
    derive_with(fields, phone_extension, &LegalSuffixes::default())
}

/// [`derive`], the company key dropping the configured legal suffixes too.
pub fn derive_with(fields: &LeadFields, phone_extension: Option<String>, legal_suffixes: &LegalSuffixes) -> Derived {
    let email_domain = fields.email.as_ref().map(|e| e.domain().to_owned());
    let free_mail = email_domain.as_deref().is_some_and(crate::normalize::is_free_mail);
    let disposable_email = email_domain.as_deref().is_some_and(crate::normalize::is_disposable);
    let website_domain = fields.website.as_deref().and_then(crate::normalize::domain_of_url);
    let business_domain = email_domain
        .as_deref()
        .filter(|_| !free_mail && !disposable_email)
        .and_then(crate::normalize::registrable_domain);
    let title = fields.job_title.as_deref().map(crate::normalize::classify_title);
    Derived {
        company_domain: business_domain.or_else(|| website_domain.clone()),
        company_key: fields.company.as_deref().and_then(|c| company_with(c, legal_suffixes)).map(|c| c.key),
        seniority: title.and_then(|t| t.seniority),
        department: title.and_then(|t| t.department),
        email_domain,
        free_mail,
        disposable_email,
        website_domain,
        phone_extension,
    }
}

/// Country, state and phone, which inform one another; returns the phone's extension.
fn place(c: &mut Candidate, hints: Hints<'_>) -> Option<String> {
    let mut extension = None;
    let mut country = None;
    if let Some(raw) = c.fields.country.take() {
        country = crate::geo::country(&raw);
        c.fields.country = Some(match country {
            Some(code) => code.as_str().to_owned(),
            None => {
                c.issues.push(issue("country", "unknown_country"));
                raw
            }
        });
    }
    if let Some(raw) = c.fields.phone.take() {
        let hint = country.map(|code| code.as_str()).or(hints.default_country);
        c.fields.phone = Some(match crate::phone::normalize(&raw, hint) {
            Ok(number) => {
                if c.fields.country.is_none() {
                    country = number.region.as_deref().and_then(crate::geo::CountryCode::parse_code);
                    c.fields.country = country.map(|code| code.as_str().to_owned());
                }
                extension = number.extension;
                number.e164
            }
            Err(_) => {
                c.issues.push(issue("phone", "invalid_phone"));
                raw
            }
        });
    }
    if let (Some(code), Some(raw)) = (country, c.fields.state.take()) {
        let known = crate::geo::subdivision_codes(&code).next().is_some();
        c.fields.state = Some(match crate::geo::subdivision(&code, &raw).and_then(|s| s.split_once('-')) {
            Some((_, part)) => part.to_owned(),
            None => {
                // Only flag where the subdivisions are known; elsewhere the text stands.
                if known {
                    c.issues.push(issue("state", "unknown_state"));
                }
                raw
            }
        });
    }
    extension
}

fn issue(field: &str, code: &str) -> Issue {
    Issue { field: field.to_owned(), code: code.to_owned() }
}

fn wrong_type(field: &str, expected: &str) -> FieldError {
    FieldError::new(field, FieldErrorCode::WrongType, format!("{field} must be {expected}"))
}

/// Trims and collapses runs of whitespace, and drops control characters (see
/// [`is_control`]); empty text is no value.
pub fn clean_text(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        let mut kept = word.chars().filter(|c| !is_control(*c)).peekable();
        // A word that was nothing but controls leaves no space behind.
        if kept.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(kept);
    }
    (!out.is_empty()).then_some(out)
}

/// The issue code for a value that had control characters removed.
pub const CONTROL_CHARACTERS_REMOVED: &str = "control_characters_removed";

/// What is removed from text values: C0 and C1 controls other than whitespace (NUL
/// included), DEL, and the bidirectional embeddings, overrides (U+202A–U+202E) and
/// isolates (U+2066–U+2069), which can make a name or an address display as something
/// else than it is.
pub fn is_control(c: char) -> bool {
    (c.is_control() && !c.is_whitespace()) || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn has_control(s: &str) -> bool {
    s.chars().any(is_control)
}

fn without_controls(s: &str) -> String {
    s.chars().filter(|c| !is_control(*c)).collect()
}

/// Removes control characters from every string in a custom value, however deep;
/// whether it removed any.
fn scrub_value(v: &mut Value) -> bool {
    match v {
        Value::String(s) if has_control(s) => {
            *s = without_controls(s);
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, item| scrub_value(item) | any),
        Value::Object(map) => map.values_mut().fold(false, |any, item| scrub_value(item) | any),
        _ => false,
    }
}

/// Reads a count or an amount. `Ok(Some((value, readable)))`: a value that could not be
/// read is kept as text with `readable == false`.
fn numeric(value: &Value, integer: bool) -> Result<Option<(Numeric, bool)>, FieldError> {
    let field = if integer { "employee_count" } else { "annual_revenue" };
    match value {
        Value::Number(n) => {
            let ok = if integer { n.as_u64().is_some() } else { n.as_f64().is_some_and(|f| f >= 0.0) };
            Ok(Some((Numeric::Number(n.clone()), ok)))
        }
        Value::String(s) => {
            let Some(text) = clean_text(s) else {
                return Ok(None);
            };
            // Thousands separators and spaces are how people type large numbers.
            let digits: String = text.chars().filter(|c| !matches!(c, ',' | ' ' | '_')).collect();
            let parsed = if integer {
                digits.parse::<u64>().ok().map(serde_json::Number::from)
            } else {
                digits.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0).and_then(serde_json::Number::from_f64)
            };
            Ok(Some(match parsed {
                Some(n) => (Numeric::Number(n), true),
                None => (Numeric::Text(text), false),
            }))
        }
        _ => Err(wrong_type(field, "a number or a string")),
    }
}

/// `consent` in any of its forms: today's object (`granted`, `at`, `source`,
/// `policy_version`, `channels`), the ledger form (`purposes`: a purpose → status, or →
/// an object with the status and its particulars, beside shared `at`, `policy_version`,
/// `lawful_basis`, `confirmed_at`, `page_url`, `channel`), one choice (`purpose` and
/// `status`), or a list of choices.
pub fn consent(v: &Value, purposes: &[String]) -> Result<Consent, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = Consent::default();
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("consent[{i}]");
                match item {
                    Value::Object(obj) => {
                        choice(obj, &path, &State::new(Status::Granted), purposes, &mut out, &mut errors)
                    }
                    _ => errors.push(wrong_type(&path, "an object with purpose and status")),
                }
            }
        }
        Value::Object(obj) => {
            let shared = particulars(obj, "consent", State::new(Status::Granted), &mut errors);
            if obj.contains_key("granted") || !(obj.contains_key("purposes") || obj.contains_key("purpose")) {
                legacy(obj, &shared, purposes, &mut out, &mut errors);
            }
            if obj.contains_key("purpose") {
                choice(obj, "consent", &shared, purposes, &mut out, &mut errors);
            }
            match obj.get("purposes") {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (purpose, value) in map {
                        let path = format!("consent.purposes.{purpose}");
                        let state = match value {
                            Value::String(s) => match Status::parse(s.trim()) {
                                Some(status) => Some(State { status, ..shared.clone() }),
                                None => {
                                    errors.push(unknown_status(&path));
                                    None
                                }
                            },
                            Value::Bool(b) => Some(State {
                                status: if *b { Status::Granted } else { Status::Denied },
                                ..shared.clone()
                            }),
                            Value::Object(obj) => {
                                let mut one = obj.clone();
                                one.insert("purpose".into(), Value::String(purpose.clone()));
                                choice(&one, &path, &shared, purposes, &mut out, &mut errors);
                                None
                            }
                            _ => {
                                errors.push(wrong_type(&path, "a status string or an object"));
                                None
                            }
                        };
                        if let Some(state) = state {
                            insert_purpose(purpose, &path, state, purposes, &mut out, &mut errors);
                        }
                    }
                }
                Some(_) => errors.push(wrong_type("consent.purposes", "an object of purpose → status")),
            }
        }
        _ => errors.push(wrong_type("consent", "an object or a list of choices")),
    }
    if !out.purposes.is_empty() && !v.get("granted").is_some_and(Value::is_boolean) {
        out.granted = out.purposes.values().any(|s| s.status.permits());
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Today's object: `granted` speaks for email marketing, each channel for its purpose.
fn legacy(
    obj: &Map<String, Value>,
    shared: &State,
    purposes: &[String],
    out: &mut Consent,
    errors: &mut Vec<FieldError>,
) {
    match obj.get("granted") {
        Some(Value::Bool(b)) => out.granted = *b,
        None | Some(Value::Null) => {
            errors.push(FieldError::new("consent.granted", FieldErrorCode::Required, "consent.granted is required"))
        }
        Some(_) => errors.push(wrong_type("consent.granted", "a boolean")),
    }
    out.at = shared.at;
    out.policy_version.clone_from(&shared.policy_version);
    match obj.get("source") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.source = clean_text(s),
        Some(_) => errors.push(wrong_type("consent.source", "a string")),
    }
    match obj.get("channels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(channels)) => {
            for (name, opt_in) in channels {
                match opt_in {
                    Value::Bool(b) => {
                        out.channels.insert(name.clone(), *b);
                    }
                    _ => errors.push(wrong_type(&format!("consent.channels.{name}"), "a boolean")),
                }
            }
        }
        Some(_) => errors.push(wrong_type("consent.channels", "an object of booleans")),
    }
    let status = |granted: bool| if granted { Status::Granted } else { Status::Denied };
    if let Some(Value::Bool(granted)) = obj.get("granted")
        && let Some(purpose) = purpose_of_channel("email", purposes)
    {
        out.purposes.insert(purpose.to_owned(), State { status: status(*granted), ..shared.clone() });
    }
    for (channel, opt_in) in &out.channels {
        if let Some(purpose) = purpose_of_channel(channel, purposes) {
            let state = State { status: status(*opt_in), channel: Some(channel.clone()), ..shared.clone() };
            out.purposes.insert(purpose.to_owned(), state);
        }
    }
}

/// One choice: `purpose` and `status` with particulars over the shared ones.
fn choice(
    obj: &Map<String, Value>,
    path: &str,
    shared: &State,
    purposes: &[String],
    out: &mut Consent,
    errors: &mut Vec<FieldError>,
) {
    let mut state = particulars(obj, path, shared.clone(), errors);
    match obj.get("status") {
        Some(Value::String(s)) => match Status::parse(s.trim()) {
            Some(status) => state.status = status,
            None => return errors.push(unknown_status(&format!("{path}.status"))),
        },
        None | Some(Value::Null) => {
            return errors.push(FieldError::new(
                format!("{path}.status"),
                FieldErrorCode::Required,
                "a consent choice needs a status: granted, denied or withdrawn",
            ));
        }
        Some(_) => return errors.push(wrong_type(&format!("{path}.status"), "a string")),
    }
    match obj.get("purpose") {
        Some(Value::String(p)) => insert_purpose(p.trim(), &format!("{path}.purpose"), state, purposes, out, errors),
        _ => errors.push(FieldError::new(
            format!("{path}.purpose"),
            FieldErrorCode::Required,
            "a consent choice needs a purpose",
        )),
    }
}

fn insert_purpose(
    purpose: &str,
    path: &str,
    state: State,
    purposes: &[String],
    out: &mut Consent,
    errors: &mut Vec<FieldError>,
) {
    if purposes.iter().any(|p| p == purpose) {
        out.purposes.insert(purpose.to_owned(), state);
    } else {
        errors.push(FieldError::new(
            path,
            FieldErrorCode::Invalid,
            format!("unknown consent purpose; configured purposes: {}", purposes.join(", ")),
        ));
    }
}

fn unknown_status(path: &str) -> FieldError {
    FieldError::new(path, FieldErrorCode::Invalid, "consent status must be granted, denied or withdrawn")
}

/// The particulars a choice may carry, over `base`.
fn particulars(obj: &Map<String, Value>, path: &str, mut base: State, errors: &mut Vec<FieldError>) -> State {
    for key in ["at", "confirmed_at"] {
        let slot = if key == "at" { &mut base.at } else { &mut base.confirmed_at };
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match OffsetDateTime::parse(s.trim(), &Rfc3339) {
                Ok(t) => *slot = Some(t),
                Err(_) => errors.push(FieldError::new(
                    format!("{path}.{key}"),
                    FieldErrorCode::InvalidTimestamp,
                    format!("{path}.{key} must be an RFC 3339 timestamp"),
                )),
            },
            Some(_) => errors.push(wrong_type(&format!("{path}.{key}"), "an RFC 3339 timestamp string")),
        }
    }
    for key in ["policy_version", "lawful_basis", "page_url", "channel", "api_key"] {
        let slot = match key {
            "policy_version" => &mut base.policy_version,
            "lawful_basis" => &mut base.lawful_basis,
            "page_url" => &mut base.page_url,
            "api_key" => &mut base.api_key,
            _ => &mut base.channel,
        };
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.chars().count() <= 2048 => *slot = clean_text(s),
            Some(Value::String(_)) => errors.push(FieldError::new(
                format!("{path}.{key}"),
                FieldErrorCode::TooLong,
                "at most 2048 characters",
            )),
            Some(_) => errors.push(wrong_type(&format!("{path}.{key}"), "a string")),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::map;
    use proptest::prelude::*;
    use serde_json::json;

    fn hints(default_country: Option<&str>) -> Hints<'_> {
        static INDUSTRIES: std::sync::LazyLock<Picklist> =
            std::sync::LazyLock::new(crate::normalize::default_industries);
        static SUFFIXES: std::sync::LazyLock<LegalSuffixes> = std::sync::LazyLock::new(LegalSuffixes::default);
        static PURPOSES: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| crate::consent::DEFAULT_PURPOSES.map(str::to_owned).to_vec());
        Hints { default_country, industries: &INDUSTRIES, legal_suffixes: &SUFFIXES, purposes: &PURPOSES }
    }

    #[test]
    fn names_companies_industries_and_titles_are_normalized_and_derived() {
        let c = run(json!({
            "first_name": "  JOHN ", "last_name": "o'brien", "email": "j@Acme.co.uk",
            "company": "ACME Holdings, Inc.", "industry": "Information Technology",
            "job_title": "VP, Marketing", "website": "https://www.acme.co.uk/about"
        }))
        .unwrap();
        assert_eq!((c.fields.first_name.as_deref(), c.fields.last_name.as_deref()), (Some("John"), Some("O'Brien")));
        assert_eq!(c.fields.industry.as_deref(), Some("Technology"));
        assert_eq!(c.derived.company_key.as_deref(), Some("acme holdings"));
        assert_eq!(c.derived.company_domain.as_deref(), Some("acme.co.uk"));
        assert_eq!(c.derived.website_domain.as_deref(), Some("acme.co.uk"));
        assert_eq!(c.derived.seniority, Some(crate::normalize::Seniority::Vp));
        assert_eq!(c.derived.department, Some(crate::normalize::Department::Marketing));
        assert!(!c.derived.free_mail);
        assert_eq!(c.raw["last_name"], "o'brien");
    }

    #[test]
    fn free_mail_never_gives_a_company_domain() {
        let c = run(json!({"email": "someone@gmail.com", "industry": "Underwater Basketry"})).unwrap();
        assert!(c.derived.free_mail);
        assert_eq!(c.derived.company_domain, None);
        assert_eq!(c.fields.industry.as_deref(), Some("Underwater Basketry"));
        assert_eq!(c.issues, vec![issue("industry", "unknown_industry")]);
        let throwaway = run(json!({"email": "x@mailinator.com"})).unwrap();
        assert!(throwaway.derived.disposable_email);
    }

    fn run(v: Value) -> Result<Candidate, Vec<FieldError>> {
        normalize(map(v.as_object().unwrap(), None), hints(None))
    }

    #[test]
    fn phone_country_and_state_are_normalized_together() {
        let c = run(json!({"phone": "(415) 555-2671 x 12", "country": "United States of America", "state": "calif."}))
            .unwrap();
        assert_eq!(c.fields.phone.as_deref(), Some("+14155552671"));
        assert_eq!(c.derived.phone_extension.as_deref(), Some("12"));
        assert_eq!(c.fields.country.as_deref(), Some("US"));
        assert_eq!(c.fields.state.as_deref(), Some("CA"));
        assert!(c.issues.is_empty(), "{:?}", c.issues);
    }

    #[test]
    fn the_phone_gives_the_country_when_the_lead_has_none() {
        let c = run(json!({"phone": "+49 30 901820"})).unwrap();
        assert_eq!(c.fields.phone.as_deref(), Some("+4930901820"));
        assert_eq!(c.fields.country.as_deref(), Some("DE"));
    }

    #[test]
    fn the_source_default_country_reads_national_numbers() {
        let mapped = map(json!({"phone": "030 901820"}).as_object().unwrap(), None);
        let c = normalize(mapped, hints(Some("DE"))).unwrap();
        assert_eq!(c.fields.phone.as_deref(), Some("+4930901820"));
        let unhinted = run(json!({"phone": "030 901820"})).unwrap();
        assert_eq!(unhinted.fields.phone.as_deref(), Some("030 901820"), "kept as received");
        assert_eq!(unhinted.issues, vec![issue("phone", "invalid_phone")]);
    }

    #[test]
    fn social_profiles_become_canonical_urls_and_unreadable_ones_are_kept_and_flagged() {
        let c =
            run(json!({"linkedin_url": " uk.linkedin.com/in/Ada-Lovelace/?trk=x ", "x_url": "@Ada_Lovelace"})).unwrap();
        assert_eq!(c.fields.linkedin_url.as_deref(), Some("https://www.linkedin.com/in/ada-lovelace"));
        assert_eq!(c.fields.x_url.as_deref(), Some("https://x.com/ada_lovelace"));
        assert_eq!(c.raw["x_url"], "@Ada_Lovelace");
        assert!(c.issues.is_empty(), "{:?}", c.issues);

        let c = run(json!({"linkedin_url": "https://x.com/ada", "x_url": "https://x.com/home"})).unwrap();
        assert_eq!(c.fields.linkedin_url.as_deref(), Some("https://x.com/ada"), "kept as received");
        assert_eq!(c.fields.x_url.as_deref(), Some("https://x.com/home"));
        assert_eq!(c.issues, vec![issue("linkedin_url", "invalid_linkedin_url"), issue("x_url", "invalid_x_url")]);
        assert!(run(json!({"linkedin_url": 42})).is_err(), "a number is the wrong type");
    }

    #[test]
    fn unknown_places_are_kept_and_flagged_never_guessed() {
        let c = run(json!({"country": "Atlantis", "phone": "12", "email": "a@example.com"})).unwrap();
        assert_eq!(c.fields.country.as_deref(), Some("Atlantis"));
        assert_eq!(c.fields.phone.as_deref(), Some("12"));
        let codes: Vec<&str> = c.issues.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(codes, ["unknown_country", "invalid_phone"]);
        let c = run(json!({"country": "us", "state": "Narnia"})).unwrap();
        assert_eq!(c.fields.state.as_deref(), Some("Narnia"));
        assert_eq!(c.issues, vec![issue("state", "unknown_state")]);
    }

    #[test]
    fn cleans_text_and_keeps_what_was_received() {
        let c = run(json!({"email": " Ada@Example.com ", "first_name": "  Ada   Mae ", "company": "   "})).unwrap();
        assert_eq!(c.fields.email.unwrap().as_str(), "ada@example.com");
        assert_eq!(c.fields.first_name.as_deref(), Some("Ada Mae"));
        assert_eq!(c.fields.company, None);
        assert_eq!(c.raw["email"], " Ada@Example.com ");
        assert_eq!(c.derived.email_domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn unreadable_numbers_are_kept_with_an_issue() {
        let c = run(json!({"employee_count": "1,200", "annual_revenue": "about 5M"})).unwrap();
        assert_eq!(c.fields.employee_count, Some(Numeric::Number(1200.into())));
        assert_eq!(c.fields.annual_revenue, Some(Numeric::Text("about 5M".into())));
        assert_eq!(c.issues, vec![Issue { field: "annual_revenue".into(), code: "invalid_number".into() }]);
    }

    #[test]
    fn every_error_is_reported() {
        let errs = run(json!({
            "email": "not-an-email",
            "first_name": 42,
            "company": {"name": "x"},
            "consent": {"granted": "yes", "at": "yesterday"}
        }))
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in ["email", "first_name", "company", "consent.granted", "consent.at"] {
            assert!(fields.contains(&f), "missing error for {f}: {fields:?}");
        }
    }

    #[test]
    fn numeric_identifiers_become_text() {
        let c = run(json!({"phone": 4915112345678u64, "postal_code": 10115})).unwrap();
        assert_eq!(c.fields.phone.as_deref(), Some("4915112345678"));
        assert_eq!(c.fields.postal_code.as_deref(), Some("10115"));
    }

    #[test]
    fn clean_text_keeps_one_letter_words_and_drops_words_of_controls_only() {
        assert_eq!(clean_text("J  Smith").as_deref(), Some("J Smith"));
        assert_eq!(clean_text("a").as_deref(), Some("a"));
        assert_eq!(clean_text("Ann \u{0}\u{202E} Lee").as_deref(), Some("Ann Lee"));
        assert_eq!(clean_text("\u{0} \u{7}"), None);
    }

    #[test]
    fn control_characters_are_removed_and_listed() {
        let c = run(json!({
            "first_name": "Ann\u{0}a", "company": "\u{202E}evil\u{202C} Corp", "city": "Ber\u{7}lin\u{2067}",
            "job_title": "CEO\tand founder", "email": "a\u{0}b@example.com",
            "custom": {"note": ["ok", {"x": "\u{2066}hid\u{2069}den"}], "plain": "fine"}
        }))
        .unwrap();
        assert_eq!(c.fields.first_name.as_deref(), Some("Anna"));
        assert_eq!(c.fields.company.as_deref(), Some("evil Corp"));
        assert_eq!(c.fields.city.as_deref(), Some("Berlin"));
        assert_eq!(c.fields.job_title.as_deref(), Some("CEO and founder"), "a tab is whitespace, not removed");
        assert_eq!(c.fields.email.as_ref().map(Email::as_str), Some("ab@example.com"));
        assert_eq!(c.custom["note"][1]["x"], "hidden");
        let mut flagged: Vec<&str> =
            c.issues.iter().filter(|i| i.code == CONTROL_CHARACTERS_REMOVED).map(|i| i.field.as_str()).collect();
        flagged.sort_unstable();
        assert_eq!(flagged, ["city", "company", "custom.note", "email", "first_name"]);
        assert_eq!(c.raw["first_name"], "Ann\u{0}a", "raw keeps what was received");
    }

    /// Text mixing ordinary characters with the ones normalization removes.
    fn text_with_controls() -> impl Strategy<Value = String> {
        let forbidden: Vec<char> = ('\u{0}'..='\u{1F}')
            .chain('\u{7F}'..='\u{9F}')
            .chain('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .collect();
        let piece = prop_oneof![
            "[a-zA-Z0-9 .@+'-]{1,6}".boxed(),
            "\\PC{1,3}".boxed(),
            prop::sample::select(forbidden).prop_map(String::from).boxed(),
        ];
        prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn no_normalized_text_field_keeps_a_control_character(
            values in prop::collection::vec(text_with_controls(), 8),
            custom in text_with_controls(),
        ) {
            let keys = ["first_name", "last_name", "company", "job_title", "city", "street", "utm_campaign", "employee_count"];
            let mut payload: Map<String, Value> =
                keys.iter().zip(&values).map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
            payload.insert("email".into(), json!("ada@example.com"));
            payload.insert("custom".into(), json!({"note": custom, "nested": [{"deep": custom}]}));
            let normalized = normalize(map(&payload, None), hints(None));
            prop_assert!(normalized.is_ok(), "{:?}", normalized);
            if let Ok(c) = normalized {
                let out = serde_json::to_string(&(&c.fields, &c.custom)).unwrap();
                let decoded: Value = serde_json::from_str(&out).unwrap();
                let mut texts = Vec::new();
                collect_strings(&decoded, &mut texts);
                for text in texts {
                    prop_assert!(!text.chars().any(is_control), "{text:?} kept a control character");
                }
                for key in keys {
                    let had = values[keys.iter().position(|k| *k == key).unwrap()].chars().any(is_control);
                    let flagged = c.issues.iter().any(|i| i.field == key && i.code == CONTROL_CHARACTERS_REMOVED);
                    prop_assert_eq!(had, flagged, "{}", key);
                }
            }
        }
    }

    fn collect_strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
            Value::Object(map) => map.iter().for_each(|(k, i)| {
                out.push(k);
                collect_strings(i, out)
            }),
            _ => {}
        }
    }

    proptest! {
        #[test]
        fn clean_text_drops_only_controls_and_extra_whitespace(s in any::<String>()) {
            let words: Vec<String> = s
                .split_whitespace()
                .map(|w| w.chars().filter(|c| !is_control(*c)).collect::<String>())
                .filter(|w| !w.is_empty())
                .collect();
            prop_assert_eq!(clean_text(&s).unwrap_or_default(), words.join(" "));
        }

        #[test]
        fn clean_text_is_idempotent_and_never_empty(s in "\\PC{0,60}") {
            if let Some(once) = clean_text(&s) {
                prop_assert!(!once.is_empty());
                prop_assert_eq!(clean_text(&once), Some(once.clone()));
            }
        }

        #[test]
        fn normalize_never_panics_and_keeps_raw(name in "\\PC{0,40}", count in "\\PC{0,12}", phone in "[0-9 +()x.-]{0,20}", country in "\\PC{0,12}") {
            let v = json!({"first_name": name, "employee_count": count, "phone": phone, "country": country, "state": "ny"});
            if let Ok(c) = run(v.clone()) {
                for field in ["first_name", "employee_count", "phone", "country"] {
                    if v[field].as_str().is_some_and(|s| !s.trim().is_empty()) {
                        prop_assert_eq!(&c.raw[field], &v[field]);
                    }
                }
            }
        }

        #[test]
        fn normalizing_normalized_places_changes_nothing(phone in "\\+?[0-9 ()-]{4,18}", country in "(us|DE|France|united kingdom|Brasil)") {
            let first = run(json!({"phone": phone, "country": country, "state": "ny"})).unwrap();
            let again = run(json!({"phone": first.fields.phone, "country": first.fields.country, "state": first.fields.state})).unwrap();
            prop_assert_eq!(again.fields.phone, first.fields.phone);
            prop_assert_eq!(again.fields.country, first.fields.country);
            prop_assert_eq!(again.fields.state, first.fields.state);
        }
    }
}
