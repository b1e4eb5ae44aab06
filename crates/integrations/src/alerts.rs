//! Alert notifications out: a Standard Webhooks-signed POST, a Slack incoming webhook,
//! or an email. The alert worker queues them in the store and calls [`Notifier::send`]
//! for each due one; what comes back decides whether it is tried again.

use crate::delivery::client::http_client;
use crate::delivery::signature::{SigningSecret, sign};
use leadflow_core::health::alerts::{AlertConfig, ChannelKind};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// How long one send may take, the answer included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a notification was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Another try may succeed (a timeout, 429, 5xx); otherwise it goes to the dead ones.
    pub retryable: bool,
    /// Without the URL, which may be a credential.
    pub error: String,
}

impl Failure {
    pub(crate) fn retry(error: impl Into<String>) -> Self {
        Self { retryable: true, error: error.into() }
    }

    pub(crate) fn fatal(error: impl Into<String>) -> Self {
        Self { retryable: false, error: error.into() }
    }
}

enum Channel {
    Webhook { url: String, secret: Option<SigningSecret> },
    Slack { url: Option<String> },
    Email { to: Vec<String>, from: String, smtp_url: Option<String> },
}

/// The configured channels, with their secrets read from the environment.
pub struct Notifier {
    http: reqwest::Client,
    channels: HashMap<String, Channel>,
}

impl Notifier {
    /// The channels of `config`; `env` reads a variable a channel names. A channel whose
    /// secret is missing is kept: its sends fail with the reason, where an operator sees it.
    pub fn new(config: &AlertConfig, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let channels = config
            .channels
            .iter()
            .map(|c| {
                let channel = match &c.kind {
                    ChannelKind::Webhook { url, secret_env } => Channel::Webhook {
                        url: url.clone(),
                        secret: env(secret_env).and_then(|s| SigningSecret::parse(&s).ok()),
                    },
                    ChannelKind::Slack { url_env } => Channel::Slack { url: env(url_env) },
                    ChannelKind::Email { to, from, smtp_url_env } => Channel::Email {
                        to: to.iter().map(|e| e.as_str().to_owned()).collect(),
                        from: from.as_str().to_owned(),
                        smtp_url: env(smtp_url_env),
                    },
                };
                (c.name.clone(), channel)
            })
            .collect();
        let http = http_client().timeout(TIMEOUT).build().unwrap_or_default();
        Self { http, channels }
    }

    /// Sends one notification (`id` is its Standard Webhooks `webhook-id`) to `channel`.
    pub async fn send(&self, id: &str, channel: &str, body: &Value) -> Result<(), Failure> {
        match self.channels.get(channel) {
            None => Err(Failure::fatal(format!("no alert channel is named {channel:?}"))),
            Some(Channel::Webhook { url, secret }) => self.webhook(id, url, secret.as_ref(), body).await,
            Some(Channel::Slack { url: Some(url) }) => self.slack(id, url, body).await,
            Some(Channel::Slack { url: None }) => Err(Failure::retry("the Slack webhook URL variable is not set")),
            Some(Channel::Email { to, from, smtp_url }) => {
                let Some(smtp_url) = smtp_url else {
                    return Err(Failure::retry("the SMTP URL variable is not set"));
                };
                crate::email::send_alert(smtp_url, from, to, id, body).await
            }
        }
    }

    async fn webhook(&self, id: &str, url: &str, secret: Option<&SigningSecret>, body: &Value) -> Result<(), Failure> {
        let bytes = body.to_string().into_bytes();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = secret {
            request = request.header("webhook-signature", sign(secret, id, timestamp, &bytes));
        }
        answer(request.body(bytes).send().await)
    }

    async fn slack(&self, id: &str, url: &str, body: &Value) -> Result<(), Failure> {
        let message = json!({ "text": text(body) });
        let request = self.http.post(url).header("idempotency-key", id).json(&message);
        answer(request.send().await)
    }
}

/// 2xx is sent; 408, 429 and 5xx and transport failures are tried again; other answers
/// will not change by themselves.
fn answer(sent: Result<reqwest::Response, reqwest::Error>) -> Result<(), Failure> {
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status().as_u16();
            let error = format!("HTTP {status}");
            if matches!(status, 408 | 429 | 500..=599) {
                Err(Failure::retry(error))
            } else {
                Err(Failure::fatal(error))
            }
        }
        Err(e) => Err(Failure::retry(crate::delivery::http::transport_error(&e))),
    }
}

/// One line a person reads: what fires (or resolved), where, and why.
pub fn text(body: &Value) -> String {
    let data = &body["data"];
    let what = match body["type"].as_str() {
        Some("alert.resolved") => "Resolved",
        Some("alert.reminder") => "Still firing",
        _ => "Firing",
    };
    format!(
        "{what}: {} on {} ({})",
        data["rule"].as_str().unwrap_or("alert"),
        data["scope"].as_str().unwrap_or("?"),
        data["message"].as_str().unwrap_or_default()
    )
}
