//! The providers at run time: each source's secrets and API token (read from the
//! environment once, at start-up, and never logged), each feedback destination's secret,
//! and the client that reads leads from the providers' APIs, for the adapters that notify
//! with an id only (Facebook, LinkedIn) and for LinkedIn's pulls.
//!
//! Durability: an item is in the inbox before the provider gets its 200. A fetch that
//! fails leaves it pending; the next batch tick, retry or start-up fetches it again, and
//! the idempotency key (the provider's lead id) keeps a retried item from becoming a
//! second lead.

use crate::App;
use crate::ingest::{self, OnInvalid};
use leadflow_core::SourceName;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Adapter, Config, SourceConfig};
use leadflow_integrations::alerts::Notifier;
use leadflow_integrations::channels::fetch::{self, FetchError, RetryPolicy};
use leadflow_integrations::channels::{Fetch, Secrets, SpamRules};
use serde_json::Value;
use std::collections::HashMap;

const FACEBOOK_API: &str = "https://graph.facebook.com";
const LINKEDIN_API: &str = "https://api.linkedin.com";
const INTERCOM_API: &str = "https://api.intercom.io";

/// What a source needs at run time beyond its configuration.
pub struct ProviderSource {
    pub secrets: Secrets,
    /// The provider API token (`token_env`), for the adapters that fetch.
    token: Option<String>,
    /// A web form's spam checks (honeypot field, fastest human fill).
    pub spam: SpamRules,
}

/// Without secrets or an API client ([`Providers::default`]), webhooks that need a secret
/// are refused and fetches fail (the submissions stay pending).
#[derive(Default)]
pub struct Providers {
    sources: HashMap<SourceName, ProviderSource>,
    /// Each feedback destination's secret (`[destinations.feedback] secret_env`): HubSpot's
    /// app client secret or Salesforce's `?token=`. Never logged.
    feedback: HashMap<String, String>,
    fetch: Option<fetch::Client>,
    /// The alert channels with their secrets; without it, notifications wait.
    notifier: Option<Notifier>,
}

impl Providers {
    /// Reads every source's secrets from the environment variables its configuration
    /// names. A variable that is not set is reported by name (never by value); the
    /// source then refuses what needs the secret instead of accepting it unchecked.
    pub fn from_env(config: &Config) -> Self {
        Self::from_lookup(config, &|var| std::env::var(var).ok())
    }

    /// [`Providers::from_env`] with the variables read through `lookup` (tests cannot set the
    /// process environment safely while other tests run).
    pub fn from_lookup(config: &Config, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut sources = HashMap::new();
        for s in config.sources.iter().filter(|s| s.adapter.is_provider()) {
            let read = |var: &Option<String>| {
                let var = var.as_deref()?;
                match lookup(var) {
                    Some(v) if !v.is_empty() => Some(v),
                    _ => {
                        tracing::warn!(source = %s.name, variable = var, "environment variable not set");
                        None
                    }
                }
            };
            let defaults = SpamRules::default();
            let spam = SpamRules {
                honeypot_field: s.honeypot_field.clone().unwrap_or(defaults.honeypot_field),
                min_fill_ms: s
                    .min_submit_secs
                    .map_or(defaults.min_fill_ms, |secs| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)),
                ..defaults
            };
            let secrets = Secrets {
                secret: read(&s.secret_env),
                previous: read(&s.previous_secret_env),
                verify_token: read(&s.verify_token_env),
            };
            sources.insert(s.name.clone(), ProviderSource { secrets, token: read(&s.token_env), spam });
        }
        let fetch = fetch::Client::new(RetryPolicy::default())
            .map_err(|e| tracing::error!(error = %e, "provider API client could not be built"))
            .ok();
        let mut feedback = HashMap::new();
        for d in &config.destinations {
            let Some(mapping) = &d.feedback else { continue };
            match lookup(&mapping.secret_env) {
                Some(v) if !v.is_empty() => {
                    feedback.insert(d.name.clone(), v);
                }
                _ => {
                    tracing::warn!(destination = %d.name, variable = %mapping.secret_env, "environment variable not set; its feedback is refused")
                }
            }
        }
        let notifier = Some(Notifier::new(&config.alerts, lookup));
        Self { sources, feedback, fetch, notifier }
    }

    /// The alert channels, when secrets were read.
    pub fn notifier(&self) -> Option<&Notifier> {
        self.notifier.as_ref()
    }

    /// The secret authenticating a destination's feedback, if it is set.
    pub fn feedback_secret(&self, destination: &str) -> Option<&str> {
        self.feedback.get(destination).map(String::as_str)
    }

    /// Whether the source's API token (`token_env`) is set.
    pub fn has_token(&self, name: &SourceName) -> bool {
        self.sources.get(name).is_some_and(|s| s.token.is_some())
    }

    pub fn source(&self, name: &SourceName) -> Option<&ProviderSource> {
        self.sources.get(name)
    }

    /// Reads the lead from the provider's API when the source's adapter notifies with an
    /// id only, and keeps the answer in the payload (so the inbox holds it from then on).
    /// Other submissions are left as they are.
    pub async fn complete(&self, config: &Config, sub: &mut RawSubmission) -> Result<(), String> {
        let Some(source) = config.source(&sub.source) else { return Ok(()) };
        if source.adapter == Adapter::Intercom {
            return self.complete_intercom(source, sub).await;
        }
        if !source.adapter.fetches() || sub.payload.contains_key(Fetch::FETCHED_KEY) {
            return Ok(());
        }
        let token = self
            .sources
            .get(&sub.source)
            .and_then(|h| h.token.as_deref())
            .ok_or_else(|| format!("no API token: the variable named by token_env of {} is not set", sub.source))?;
        let client = self.fetch.as_ref().ok_or("no provider API client")?;
        let fetched = match source.adapter {
            Adapter::FacebookLeadAds => {
                let id = id_text(sub.payload.get("leadgen_id")).ok_or("no leadgen_id")?;
                let base = source.api_base_url.as_deref().unwrap_or(FACEBOOK_API);
                fetch::facebook::fetch_lead(client, base, token, &id).await
            }
            Adapter::LinkedinLeadGen => {
                let urn = ["leadGenFormResponse", "leadFormResponse"]
                    .iter()
                    .find_map(|k| sub.payload.get(*k).and_then(Value::as_str))
                    .ok_or("no leadGenFormResponse")?;
                let id = urn.rsplit(':').next().unwrap_or(urn);
                let base = source.api_base_url.as_deref().unwrap_or(LINKEDIN_API);
                let response = fetch::linkedin::fetch_form_response(client, base, token, id).await;
                // Answers carry question ids only; the form says which standard field each
                // is, so without it the lead would have no email and be quarantined.
                if let Ok(resp) = &response
                    && let Some(form_id) = fetch::linkedin::form_id(resp)
                {
                    let form = fetch::linkedin::fetch_lead_form(client, base, token, &form_id)
                        .await
                        .map_err(|e| describe(&e))?;
                    sub.payload.insert("form".into(), Value::Object(form));
                }
                response
            }
            _ => return Ok(()),
        };
        let fetched = fetched.map_err(|e| describe(&e))?;
        Fetch::merge_into(&mut sub.payload, fetched);
        Ok(())
    }
}

impl Providers {
    /// An Intercom conversation that names its person by id only: the contact is read
    /// from Intercom's API when the source has a token. Without one the notification
    /// goes on as it is, and its quarantine entry says what was missing.
    async fn complete_intercom(
        &self,
        source: &leadflow_core::config::SourceConfig,
        sub: &mut RawSubmission,
    ) -> Result<(), String> {
        let Some(id) = leadflow_integrations::channels::intercom_contact_to_fetch(&sub.payload) else {
            return Ok(());
        };
        let Some(token) = self.sources.get(&sub.source).and_then(|h| h.token.as_deref()) else { return Ok(()) };
        let client = self.fetch.as_ref().ok_or("no provider API client")?;
        let base = source.api_base_url.as_deref().unwrap_or(INTERCOM_API);
        let contact = fetch::intercom::fetch_contact(client, base, token, &id).await.map_err(|e| describe(&e))?;
        Fetch::merge_into(&mut sub.payload, contact);
        Ok(())
    }
}

/// A fetch error without the provider's answer body, which may echo personal data.
fn describe(e: &FetchError) -> String {
    match e {
        FetchError::Status { status, .. } => format!("provider answered {status}"),
        FetchError::Transport(t) => format!("transport: {t}"),
        FetchError::Decode(d) => format!("unexpected answer: {d}"),
    }
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Pages a pull reads in one round at most, so one round cannot run forever against a
/// provider that keeps handing out cursors.
const MAX_PULL_PAGES: usize = 1000;

/// One pull round of a LinkedIn source: reads lead form responses from the saved cursor
/// on, stores each through the pipeline under the key the webhook path gives it (a lead
/// seen both ways is stored once), and saves the next cursor only once the page's items
/// are durable. Returns how many responses were read.
pub async fn pull_linkedin(app: &App, source: &SourceConfig) -> Result<usize, String> {
    let (store, providers) = (&app.store, &app.providers);
    let token = providers
        .sources
        .get(&source.name)
        .and_then(|h| h.token.as_deref())
        .ok_or_else(|| format!("no API token: the variable named by token_env of {} is not set", source.name))?;
    let client = providers.fetch.as_ref().ok_or("no provider API client")?;
    let owner = match source.linkedin_owner.as_deref() {
        Some(urn) if urn.starts_with("urn:li:organization:") => fetch::linkedin::Owner::Organization(urn.to_owned()),
        Some(urn) => fetch::linkedin::Owner::SponsoredAccount(urn.to_owned()),
        None => return Err("no linkedin_owner".into()),
    };
    let base = source.api_base_url.as_deref().unwrap_or(LINKEDIN_API);
    let cursor_name = format!("pull:{}", source.name);
    let mut cursor = store.get_cursor(&cursor_name).await.map_err(|e| e.to_string())?;
    let mut forms: HashMap<String, serde_json::Map<String, Value>> = HashMap::new();
    let mut read = 0;
    for _ in 0..MAX_PULL_PAGES {
        let page = fetch::linkedin::fetch_form_responses(client, base, token, &owner, cursor.as_deref())
            .await
            .map_err(|e| describe(&e))?;
        read += page.responses.len();
        let mut submissions = Vec::with_capacity(page.responses.len());
        for response in page.responses {
            // Answers carry question ids only; the form says which standard field each is.
            let form = match fetch::linkedin::form_id(&response) {
                Some(id) => match forms.get(&id) {
                    Some(form) => Some(form.clone()),
                    None => {
                        let form = fetch::linkedin::fetch_lead_form(client, base, token, &id)
                            .await
                            .map_err(|e| describe(&e))?;
                        forms.insert(id, form.clone());
                        Some(form)
                    }
                },
                None => None,
            };
            let mut item = match leadflow_integrations::channels::linkedin_pull_item(response) {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(source = %source.name, error = %e, "lead form response skipped");
                    continue;
                }
            };
            if let Some(form) = form {
                item.payload.insert("form".into(), Value::Object(form));
            }
            let key = crate::hooks::key_of(&item);
            submissions.push(RawSubmission::new(source.name.clone(), key, item.payload));
        }
        if !submissions.is_empty() {
            ingest::submit(app, submissions, OnInvalid::Quarantine).await.map_err(|e| e.to_string())?;
        }
        match page.next_cursor {
            Some(next) => {
                store.set_cursor(&cursor_name, &next).await.map_err(|e| e.to_string())?;
                cursor = Some(next);
            }
            // The last page is read again next round (from its own start, the saved
            // cursor), so responses added to it since are not missed; their keys keep
            // the ones already stored from being stored twice.
            None => break,
        }
    }
    Ok(read)
}
