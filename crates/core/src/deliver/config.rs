//! `[[destinations]]` and `[delivery]`: where lead events go and how the delivery worker
//! runs. Each destination type takes its own keys; secrets are named by `*_env` keys and
//! never written in the file. A CRM destination's `[destinations.feedback]` is read by
//! [`crate::feedback`].

use super::{DestinationConfig, EventType};
use crate::config::read::{Problems, parse_duration, span};
use crate::feedback::CrmKind;
use crate::scoring::LifecycleContract;
use std::time::Duration;
use toml_edit::{Item, Table};

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

/// The keys each destination type takes besides the common ones; `*_env` keys name the
/// environment variable holding a secret, which is read at start-up and never written in
/// the file. (key, required)
fn destination_keys(kind: &str) -> Option<&'static [(&'static str, bool)]> {
    Some(match kind {
        "webhook" => &[("url", true), ("secret_env", true), ("previous_secret_env", false)],
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

/// `[delivery]`, over the defaults.
pub(crate) fn read_settings(p: &mut Problems, t: &Table) -> DeliverySettings {
    let mut delivery = DeliverySettings::default();
    for (key, item) in t.iter() {
        let path = format!("delivery.{key}");
        match key {
            "timeout" => {
                if let Some(d) = p.duration(item, &path) {
                    delivery.timeout = d;
                }
            }
            "concurrency" => {
                if let Some(n) = p.positive_integer(item, &path) {
                    delivery.concurrency = usize::try_from(n).unwrap_or(usize::MAX);
                }
            }
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    delivery
}

/// `[[destinations]]`; feedback reasons are checked against `contract`.
pub(crate) fn read(
    p: &mut Problems,
    item: &Item,
    contract: &LifecycleContract,
    purposes: &[String],
) -> Vec<DestinationConfig> {
    let Some(array) = item.as_array_of_tables() else {
        p.push(span(item), "destinations", "must be an array of tables: [[destinations]]");
        return Vec::new();
    };
    let mut out: Vec<DestinationConfig> = Vec::new();
    for (i, t) in array.iter().enumerate() {
        if let Some(d) = read_destination(p, i, t, &out, contract, purposes) {
            out.push(d);
        }
    }
    out
}

/// One `[[destinations]]` table; `None` when it has no usable name or type.
fn read_destination(
    p: &mut Problems,
    i: usize,
    t: &Table,
    declared: &[DestinationConfig],
    contract: &LifecycleContract,
    purposes: &[String],
) -> Option<DestinationConfig> {
    let at = format!("destinations[{i}]");
    let kind = t.get("type").and_then(Item::as_str);
    let allowed = kind.and_then(destination_keys);
    if let Some(item) = t.get("type")
        && allowed.is_none()
    {
        p.push(span(item), &format!("{at}.type"), "must be webhook, hubspot, salesforce or slack");
    }
    let mut d = DestinationConfig::new(String::new(), kind.unwrap_or_default(), Vec::new());
    for (key, item) in t.iter() {
        let path = format!("{at}.{key}");
        match key {
            "type" => {}
            "name" => {
                if let Some(s) = p.string(item, &path) {
                    let valid = !s.is_empty()
                        && s.len() <= 64
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !valid {
                        p.push(span(item), &path, "must be 1-64 letters, digits, - or _");
                    } else if declared.iter().any(|o| o.name == s) {
                        p.push(span(item), &path, format!("a destination named {s:?} is already declared"));
                    } else {
                        d.name = s.to_owned();
                    }
                }
            }
            "feedback" => match (item.as_table_like(), kind.and_then(CrmKind::parse)) {
                (Some(table), Some(crm)) => {
                    d.feedback = crate::feedback::config::read_crm(p, table, span(item), crm, &path, contract)
                }
                (None, _) => p.push(span(item), &path, "must be a table: [destinations.feedback]"),
                (Some(_), None) => p.push(span(item), &path, "only hubspot and salesforce destinations take feedback"),
            },
            "consent" => match item.as_array() {
                Some(list) => {
                    for (j, e) in list.iter().enumerate() {
                        match e.as_str() {
                            Some(purpose) if purposes.iter().any(|p| p == purpose) => {
                                d.consent.push(purpose.to_owned())
                            }
                            _ => p.push(
                                e.span().or_else(|| span(item)),
                                &format!("{path}[{j}]"),
                                format!("must be a consent purpose: {}", purposes.join(", ")),
                            ),
                        }
                    }
                }
                None => p.push(span(item), &path, "must be a list of consent purposes such as [\"sales_contact\"]"),
            },
            "consent_fields" => match (item.as_table_like(), kind) {
                (Some(table), Some("hubspot" | "salesforce")) => {
                    for (purpose, property) in table.iter() {
                        let at = format!("{path}.{purpose}");
                        match property.as_str() {
                            Some(name) if purposes.iter().any(|p| p == purpose) && !name.trim().is_empty() => {
                                d.consent_fields.insert(purpose.to_owned(), name.trim().to_owned());
                            }
                            Some(_) if !purposes.iter().any(|p| p == purpose) => {
                                p.push(span(property), &at, format!("not a consent purpose: {}", purposes.join(", ")))
                            }
                            _ => p.push(span(property), &at, "must be the name of a CRM property"),
                        }
                    }
                }
                (None, _) => p.push(span(item), &path, "must be a table of purpose = \"crm_property\""),
                (Some(_), _) => {
                    p.push(span(item), &path, "only hubspot and salesforce destinations take consent_fields")
                }
            },
            "fields" => super::fields::read_fields(p, item, &path, kind, &mut d),
            "values" => super::fields::read_values(p, item, &path, kind, &mut d),
            "owners" => super::fields::read_owners(p, item, &path, kind, &mut d),
            "events" | "required_fields" | "retry" | "rate_limit" | "circuit_breaker" => {
                read_delivery_key(p, key, item, &path, &mut d)
            }
            "allow_http" => match item.as_bool() {
                Some(allow) => d.allow_http = allow,
                None => p.push(span(item), &path, "must be true or false"),
            },
            other => match allowed.and_then(|keys| keys.iter().find(|(k, _)| *k == other)) {
                Some(_) => {
                    let value = if other.ends_with("_env") { p.env_name(item, &path) } else { setting(p, item, &path) };
                    if let Some(value) = value {
                        d.settings.insert(other.to_owned(), value);
                    }
                }
                None if allowed.is_some() => p.push(span(item), &path, "unknown key"),
                None => {}
            },
        }
    }
    if kind.is_none() {
        p.push(t.span(), &at, "a destination needs a type: webhook, hubspot, salesforce or slack");
    }
    if !t.contains_key("name") {
        p.push(t.span(), &at, "a destination needs a name");
    }
    if let Some(keys) = allowed {
        for (key, required) in keys {
            if *required && !t.contains_key(key) {
                p.push(t.span(), &at, format!("a {} destination needs {key}", d.kind));
            }
        }
    }
    super::fields::check(p, &at, t, &d);
    // After the loop: `allow_http` may be written below the URL it allows.
    if !d.allow_http {
        for key in ["url", "base_url", "token_url"] {
            if let Some(url) = d.settings.get(key)
                && !is_secure_or_local(url)
            {
                let name = if d.name.is_empty() { at.clone() } else { format!("{:?}", d.name) };
                p.push(t.get(key).and_then(span), &format!("{at}.{key}"), plain_http_refused(&name));
            }
        }
    }
    (!d.name.is_empty() && allowed.is_some()).then_some(d)
}

/// The keys every destination type takes: what to send, and how hard to push.
fn read_delivery_key(p: &mut Problems, key: &str, item: &Item, path: &str, d: &mut DestinationConfig) {
    match key {
        "events" => match item.as_array() {
            Some(list) => {
                for (j, e) in list.iter().enumerate() {
                    match e.as_str().and_then(EventType::parse) {
                        Some(t) if !d.events.contains(&t) => d.events.push(t),
                        Some(_) => {}
                        None => p.push(
                            e.span().or_else(|| span(item)),
                            &format!("{path}[{j}]"),
                            "must be one of created, merged, returned, mql, assigned, stage_changed, erased, consent_changed",
                        ),
                    }
                }
            }
            None => p.push(span(item), path, "must be a list such as [\"created\", \"mql\"]"),
        },
        "required_fields" => match item.as_array() {
            Some(list) => {
                for (j, e) in list.iter().enumerate() {
                    match e.as_str() {
                        Some(f) if !f.trim().is_empty() => d.required_fields.push(f.trim().to_owned()),
                        _ => p.push(e.span().or_else(|| span(item)), &format!("{path}[{j}]"), "must be a field name"),
                    }
                }
            }
            None => p.push(span(item), path, "must be a list of field names"),
        },
        "retry" => match item.as_array() {
            Some(list) if !list.is_empty() => {
                let mut delays = Vec::new();
                for (j, e) in list.iter().enumerate() {
                    match e.as_str().and_then(parse_duration) {
                        Some(delay) => delays.push(delay),
                        None => p.push(
                            e.span().or_else(|| span(item)),
                            &format!("{path}[{j}]"),
                            "must be a duration such as \"0s\", \"5s\" or \"5m\"",
                        ),
                    }
                }
                d.retry = Some(delays);
            }
            _ => p.push(span(item), path, "must be a non-empty list such as [\"0s\", \"5s\", \"5m\"]"),
        },
        "rate_limit" => {
            let per_second =
                item.get("per_second").and_then(|v| v.as_float().or_else(|| v.as_integer().map(|n| n as f64)));
            let burst = item.get("burst").and_then(Item::as_integer).and_then(|n| u32::try_from(n).ok());
            match (per_second, burst) {
                (Some(rate), Some(burst)) if rate > 0.0 && burst > 0 => d.rate_limit = Some((rate, burst)),
                _ => p.push(span(item), path, "must be a table { per_second = 10.0, burst = 10 } with positive values"),
            }
        }
        "circuit_breaker" => {
            let threshold =
                item.get("failure_threshold").and_then(Item::as_integer).and_then(|n| u32::try_from(n).ok());
            let cool_down = item.get("cool_down").and_then(Item::as_str).and_then(parse_duration);
            match (threshold, cool_down) {
                (Some(n), Some(wait)) if n > 0 => d.circuit_breaker = Some((n, wait)),
                _ => p.push(span(item), path, "must be a table { failure_threshold = 5, cool_down = \"30s\" }"),
            }
        }
        _ => {}
    }
}

/// A destination's plain (not secret) setting. URLs are checked here so a typo is
/// reported at its line rather than when the delivery client starts.
fn setting(p: &mut Problems, item: &Item, path: &str) -> Option<String> {
    let s = p.string(item, path)?;
    let key = path.rsplit('.').next().unwrap_or(path);
    let valid = match key {
        "url" | "base_url" | "token_url" => is_http_url(s),
        "api_version" => is_api_version(s),
        _ => true,
    };
    if valid {
        return Some(s.to_owned());
    }
    let problem = if key == "api_version" { "must look like 62.0" } else { "must be an http:// or https:// URL" };
    p.push(span(item), path, problem);
    None
}

/// Why a destination's plain-http URL is refused; `name` is the destination's.
pub fn plain_http_refused(name: &str) -> String {
    format!(
        "destination {name}: must be an https:// URL (lead data and credentials would cross the network in clear); \
         plain http:// is accepted only for a loopback host (127.0.0.1, ::1, localhost) or with allow_http = true"
    )
}

/// Whether a destination may be sent to at `url` without `allow_http`: `https://`, or
/// `http://` to a loopback host (a local test receiver or a sidecar). Anything that is
/// not `http://` is left to the URL check.
pub fn is_secure_or_local(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return true };
    if !scheme.eq_ignore_ascii_case("http") {
        return true;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    is_loopback_host(host)
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback(),
            std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        })
}

/// `http://` or `https://`, then a host.
pub(crate) fn is_http_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !host.is_empty()
        && !host.starts_with(':')
        && !s.contains(char::is_whitespace)
}

/// A Salesforce REST API version: `62.0`, with or without a leading `v`.
pub fn is_api_version(s: &str) -> bool {
    let version = s.trim().trim_start_matches('v');
    version.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    })
}
