//! Mail out over SMTP: an alert notification as one plain-text mail, sent on a fresh
//! connection (alerts are rare; no pool to keep alive).
//!
//! The relay comes from a URL in the environment, `scheme://user:pass@host:port/ehlo?tls=…`:
//!
//! - `smtps://…` (port 465): implicit TLS;
//! - `smtp://…` or `smtp://…?tls=required` (port 587): STARTTLS required, so a relay that
//!   does not offer it fails;
//! - `smtp://…?tls=opportunistic`: STARTTLS when offered, else plain text;
//! - `smtp://…?tls=none` (port 25): plain text, for a relay on the same host, and tests.
//!
//! A path names this host in EHLO (`smtp://relay:587/mail.example.com`); without it the
//! client says `[127.0.0.1]`, which some relays refuse.
//!
//! Plain `smtp://` means STARTTLS required, unlike lettre's own reading (plain text), so
//! that a URL carrying a password never sends it in the clear unless it says so.
//!
//! Failures: no connection, a timeout, TLS, or an SMTP 4xx may pass and are tried again;
//! an SMTP 5xx (a refused recipient or login) or a relay without STARTTLS will not change
//! by itself. The URL holds credentials: it is never logged nor put in an error.

use crate::alerts::{Failure, TIMEOUT, text};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::Url;
use serde_json::Value;

/// Sends an alert notification as a plain-text mail; `id` makes its `Message-ID`, so a
/// retried notification is recognisably the same mail.
pub(crate) async fn send_alert(
    smtp_url: &str,
    from: &str,
    to: &[String],
    id: &str,
    body: &Value,
) -> Result<(), Failure> {
    let message = message(from, to, id, body)?;
    // A malformed URL is retried, like an unset one: the operator fixes the variable and
    // restarts, and the queued notification still goes out.
    let url = relay_url(smtp_url).map_err(Failure::retry)?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|e| Failure::retry(format!("the SMTP URL is not usable: {e}")))?
        .timeout(Some(TIMEOUT))
        .build();
    // lettre's timeout bounds each step; this bounds the whole exchange.
    match tokio::time::timeout(TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(Failure::retry("SMTP timed out")),
    }
}

/// The URL lettre reads, with this module's reading of `tls` (see the module header).
fn relay_url(smtp_url: &str) -> Result<String, String> {
    // url's errors never quote the input, so they are safe to report.
    let mut url = Url::parse(smtp_url).map_err(|e| format!("the SMTP URL is not valid: {e}"))?;
    let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
    let tls = match (url.scheme(), tls.as_deref()) {
        ("smtps", None) => None,
        ("smtp", None | Some("required")) => Some("required"),
        ("smtp", Some("opportunistic")) => Some("opportunistic"),
        // lettre's plain text is a URL without `tls`.
        ("smtp", Some("none")) => None,
        (scheme, tls) => {
            return Err(format!(
                "the SMTP URL must be smtps:// or smtp:// with tls=required, opportunistic or none \
                 (got {scheme}:// with tls={})",
                tls.unwrap_or("")
            ));
        }
    };
    url.set_query(tls.map(|t| format!("tls={t}")).as_deref());
    Ok(url.into())
}

fn message(from: &str, to: &[String], id: &str, body: &Value) -> Result<Message, Failure> {
    // The addresses were parsed at configuration; one lettre refuses will not pass later.
    let address = |s: &str| s.parse::<Address>().map_err(|e| Failure::fatal(format!("email address {s:?}: {e}")));
    let mut builder = Message::builder()
        .from(Mailbox::new(Some("leadflow".to_owned()), address(from)?))
        .subject(format!("[leadflow] {}", one_line(&text(body))))
        .message_id(Some(message_id(id)))
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        builder = builder.to(Mailbox::new(None, address(t)?));
    }
    // lettre encodes every header value and dot-stuffs the body, so a line break in a
    // scope or message could not add a header or end the mail anyway; `one_line` keeps
    // each field on its line for the reader.
    builder.body(plain(body)).map_err(|e| Failure::fatal(format!("the mail could not be built: {e}")))
}

/// `<ID@leadflow>`. Notification ids are letters, digits, `.`, `_` and `-` already; anything
/// else would make an invalid Message-ID, so it is replaced.
fn message_id(id: &str) -> String {
    let id: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    format!("<{id}@leadflow>")
}

/// The summary line, then one line per field of the episode.
fn plain(body: &Value) -> String {
    let data = &body["data"];
    let mut out = one_line(&text(body));
    out.push_str("\n\n");
    for key in ["rule", "scope", "state", "started_at", "resolved_at", "value", "threshold", "message"] {
        let value = match &data[key] {
            Value::Null => "-".to_owned(),
            Value::String(s) => one_line(s),
            other => other.to_string(),
        };
        out.push_str(&format!("{key:<12} {value}\n"));
    }
    if let Some(episode) = data["id"].as_str() {
        out.push_str(&format!("\nEpisode {episode}\n"));
    }
    out
}

/// Control characters (line breaks above all) as spaces.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Only what the relay answered decides "never": a 5xx, or a client-side refusal (no
/// STARTTLS offered, no shared login mechanism). The rest is the network, and may pass.
fn classify(e: &lettre::transport::smtp::Error) -> Failure {
    // lettre's messages hold the relay's answer or the I/O error, never the URL.
    let error = format!("SMTP: {e}");
    if e.is_permanent() || e.is_client() { Failure::fatal(error) } else { Failure::retry(error) }
}

#[cfg(test)]
mod tests;
