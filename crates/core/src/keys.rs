//! API keys: random bearer tokens, shown once, stored only as a hash, with scopes.
//!
//! Tokens carry 256 bits of randomness, so a fast hash (SHA-256) is enough to store them:
//! there is nothing to brute-force that a slow password hash would protect.

use crate::ids::KeyId;
use crate::source::SourceName;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

const TOKEN_PREFIX: &str = "lf_";

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// Everything, including administration.
    Admin,
    /// Read leads and reports.
    Read,
    /// Submit leads: to any source, or only to the named one.
    Ingest(Option<SourceName>),
    /// Report what became of leads (`POST /v1/feedback/generic`), as a CRM integration.
    Feedback,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scope {0:?}: use admin, read, ingest, ingest:SOURCE or feedback")]
pub struct InvalidScope(String);

impl FromStr for Scope {
    type Err = InvalidScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "read" => Ok(Self::Read),
            "ingest" => Ok(Self::Ingest(None)),
            "feedback" => Ok(Self::Feedback),
            _ => s
                .strip_prefix("ingest:")
                .and_then(|name| SourceName::parse(name).ok())
                .map(|name| Self::Ingest(Some(name)))
                .ok_or_else(|| InvalidScope(s.to_owned())),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::Read => f.write_str("read"),
            Self::Ingest(None) => f.write_str("ingest"),
            Self::Ingest(Some(source)) => write!(f, "ingest:{source}"),
            Self::Feedback => f.write_str("feedback"),
        }
    }
}

impl TryFrom<String> for Scope {
    type Error = InvalidScope;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.to_string()
    }
}

/// The secret a client presents. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}…)", self.display_prefix())
    }
}

impl ApiToken {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!("{TOKEN_PREFIX}{}", hex(&bytes))))
    }

    /// Wraps a presented token; any string may be presented, only its hash is compared.
    pub fn presented(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn reveal(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The first characters, enough to tell keys apart in a listing.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(TOKEN_PREFIX.len() + 8).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A stored key, without its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKey {
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }

    pub fn can_read(&self) -> bool {
        self.is_admin() || self.scopes.contains(&Scope::Read)
    }

    /// May report CRM feedback through the generic JSON form.
    pub fn can_send_feedback(&self) -> bool {
        self.is_admin() || self.scopes.contains(&Scope::Feedback)
    }

    /// May submit to at least one source.
    pub fn can_ingest_somewhere(&self) -> bool {
        self.is_admin() || self.scopes.iter().any(|s| matches!(s, Scope::Ingest(_)))
    }

    pub fn can_ingest(&self, source: &SourceName) -> bool {
        self.is_admin()
            || self.scopes.iter().any(|s| match s {
                Scope::Ingest(None) => true,
                Scope::Ingest(Some(only)) => only == source,
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(scopes: &[&str]) -> ApiKey {
        ApiKey {
            id: KeyId::new(),
            name: "k".into(),
            prefix: "lf_".into(),
            scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
        }
    }

    #[test]
    fn scopes_grant_what_they_say() {
        let web = SourceName::parse("web").unwrap();
        assert!(key(&["admin"]).can_ingest(&web) && key(&["admin"]).can_read());
        assert!(key(&["ingest"]).can_ingest(&web) && !key(&["ingest"]).can_read());
        assert!(key(&["ingest:web"]).can_ingest(&web));
        assert!(!key(&["ingest:web"]).can_ingest(&SourceName::api()));
        assert!(key(&["read"]).can_read() && !key(&["read"]).can_ingest(&web));
        assert!("ingest:".parse::<Scope>().is_err() && "root".parse::<Scope>().is_err());
        assert!(key(&["feedback"]).can_send_feedback() && !key(&["feedback"]).can_read());
        assert!(key(&["admin"]).can_send_feedback() && !key(&["read", "ingest"]).can_send_feedback());
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = ApiToken::generate().unwrap();
        let b = ApiToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.reveal().len(), 3 + 64);
        assert_eq!(ApiToken::presented(a.reveal()).hash(), a.hash());
        assert!(!format!("{a:?}").contains(&a.reveal()[12..]));
    }

    proptest! {
        #[test]
        fn scope_text_round_trips(name in "[a-z0-9][a-z0-9_-]{0,20}") {
            for s in ["admin".to_owned(), "read".to_owned(), "ingest".to_owned(), "feedback".to_owned(), format!("ingest:{name}")] {
                let scope: Scope = s.parse().unwrap();
                prop_assert_eq!(scope.to_string(), s);
            }
        }
    }
}
