//! Privacy: the suppression list and the consent ledger.
//!
//! A suppressed person is not captured again on any channel: [`crate::ingest::submit`]
//! asks [`suppressed`] about every valid submission before it is stored, the events of a
//! suppressed email are dropped, and an erasure suppresses its person in the transaction
//! that erases them (`leadflow_core::erase::plan`). The list holds keyed hashes only
//! (`leadflow_core::suppress`); the key comes from the environment, or, on an
//! installation that has not set one, from a random key generated once and kept in the
//! database (weaker: a copy of the database then holds both; a warning says so).
//!
//! Consent choices recorded by operators (or a client's unsubscribe link) go through
//! [`record_consent`]; the core decides the lead's new state and its follow-ups.

use crate::App;
use leadflow_core::config::Config;
use leadflow_core::consent::{Entry, State};
use leadflow_core::normalize::Candidate;
use leadflow_core::suppress::{Identity, Suppression, SuppressionKey};
use leadflow_core::{Email, Lead, LeadId};
use leadflow_store::{DynStore, StoreError};
use std::sync::Arc;
use time::OffsetDateTime;

/// The store cursor holding a generated key, for installations without one in the
/// environment.
const GENERATED_KEY: &str = "privacy.suppression_key";

/// The suppression key: from the configured environment variable (at least 16 bytes), or
/// the one generated for this database.
pub async fn suppression_key(
    config: &Config,
    store: &DynStore,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<SuppressionKey>, StoreError> {
    let name = &config.privacy.suppression_key_env;
    if let Some(value) = env(name) {
        return SuppressionKey::new(value.into_bytes()).map(Arc::new).ok_or_else(|| {
            StoreError::Internal(format!("the suppression key in {name} must be at least 16 bytes long"))
        });
    }
    let stored = match store.get_cursor(GENERATED_KEY).await? {
        Some(hex) => hex,
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Internal(format!("no randomness: {e}")))?;
            store.set_cursor(GENERATED_KEY, &hex::encode(bytes)).await?;
            // Two instances starting at once both wrote one: both use what was kept.
            store.get_cursor(GENERATED_KEY).await?.unwrap_or_default()
        }
    };
    tracing::warn!(
        variable = %name,
        "no suppression key in the environment: using the key generated for this database; \
         set one so that a copy of the database alone cannot be tested against guessed addresses"
    );
    SuppressionKey::new(hex::decode(&stored).unwrap_or_default())
        .map(Arc::new)
        .ok_or_else(|| StoreError::Corrupt("the generated suppression key is unreadable".into()))
}

impl App {
    /// The application with its suppression key read ([`suppression_key`]): the store's
    /// rules carry it, so an erasure suppresses its person.
    pub async fn with_suppression_key(self, env: impl Fn(&str) -> Option<String>) -> Result<Self, StoreError> {
        if self.config.suppression_key.is_some() {
            return Ok(self);
        }
        let key = suppression_key(&self.config, &self.store, env).await?;
        let mut config = (*self.config).clone();
        config.suppression_key = Some(key);
        let config = Arc::new(config);
        Ok(App { store: self.store.with_rules(config.rules()), config, ..self })
    }
}

/// For each candidate, whether its person is suppressed: one lookup for them all.
/// Without a key nothing can be suppressed.
pub async fn suppressed(app: &App, candidates: &[&Candidate]) -> Result<Vec<bool>, StoreError> {
    lookup(app, candidates.iter().map(|c| Identity::of(&c.fields))).await
}

/// For each email, whether it names a suppressed person (events are dropped for one).
pub async fn emails_suppressed(app: &App, emails: &[Option<&str>]) -> Result<Vec<bool>, StoreError> {
    let parsed: Vec<Option<Email>> = emails.iter().map(|e| e.and_then(|e| Email::parse(e).ok())).collect();
    lookup(app, parsed.iter().map(|email| Identity { email: email.as_ref(), phone: None })).await
}

/// One store lookup for every identity's hashes; whether each names a suppressed person.
async fn lookup<'a>(app: &App, identities: impl Iterator<Item = Identity<'a>>) -> Result<Vec<bool>, StoreError> {
    let hashes: Vec<Vec<String>> = match &app.config.suppression_key {
        Some(key) => {
            identities.map(|id| id.hashes(key, &app.config.matching).into_iter().map(|h| h.value).collect()).collect()
        }
        None => identities.map(|_| Vec::new()).collect(),
    };
    let all: Vec<String> = hashes.iter().flatten().cloned().collect();
    if all.is_empty() {
        return Ok(vec![false; hashes.len()]);
    }
    let found = app.store.suppressed(all).await?;
    Ok(hashes.iter().map(|hs| hs.iter().any(|h| found.contains(h))).collect())
}

/// A person to suppress or lift: a normalized email, an E.164 phone, or both.
#[derive(Clone, Debug, Default)]
pub struct Person {
    pub email: Option<Email>,
    pub phone: Option<String>,
}

impl Person {
    fn hashes(&self, app: &App) -> Result<(Arc<SuppressionKey>, Vec<leadflow_core::suppress::Hash>), StoreError> {
        let key = app
            .config
            .suppression_key
            .clone()
            .ok_or_else(|| StoreError::Internal("the suppression key was not read".into()))?;
        let identity = Identity { email: self.email.as_ref(), phone: self.phone.as_deref() };
        let hashes = identity.hashes(&key, &app.config.matching);
        Ok((key, hashes))
    }
}

/// Puts the person on the suppression list; returns how many hashes were new.
pub async fn suppress(app: &App, person: &Person, reason: Option<&str>, actor: &str) -> Result<u64, StoreError> {
    let (key, hashes) = person.hashes(app)?;
    let entries = Suppression::entries(hashes, &key, reason, Some(actor), OffsetDateTime::now_utc());
    app.store.suppress(entries).await
}

/// Takes the person off the suppression list; returns how many hashes were there.
pub async fn lift(app: &App, person: &Person) -> Result<u64, StoreError> {
    let (_, hashes) = person.hashes(app)?;
    app.store.lift_suppressions(hashes.into_iter().map(|h| h.value).collect()).await
}

/// Records a consent choice on a lead; `None` when there is no such lead.
pub async fn record_consent(
    app: &App,
    lead: LeadId,
    purpose: String,
    state: State,
    actor: Option<String>,
) -> Result<Option<Lead>, StoreError> {
    let lead = app.store.record_consent(lead, purpose, state, actor).await?;
    if lead.is_some() {
        app.wake.written();
    }
    Ok(lead)
}

/// A lead's consent: the current state per purpose (from the lead, which keeps it across
/// merges) and the ledger of it and its merged records. `None` when there is no such lead.
pub async fn consent(app: &App, lead: LeadId) -> Result<Option<(Lead, Vec<(LeadId, Entry)>)>, StoreError> {
    let Some(lead) = app.store.get_lead(lead).await? else { return Ok(None) };
    if lead.erased_at.is_some() {
        return Err(StoreError::Erased(lead.id));
    }
    let ledger = app.store.consent_ledger(lead.id).await?;
    Ok(Some((lead, ledger)))
}
