//! Sources: where leads come from. Their names are used in URLs, scopes and reports, so
//! they are restricted to a safe, stable alphabet; [`SourceConfig`] is a source as
//! configured (`[[sources]]`), with its [`Adapter`].

mod adapter;
pub(crate) mod config;
pub mod inbound;
pub mod qualification;

pub use adapter::Adapter;
pub use config::{
    CHANNELS, DEFAULT_BATCH_INTERVAL, DEFAULT_RATE_LIMIT_PER_MINUTE, Mode, SourceConfig, default_required, origin_of,
};

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct SourceName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a source name is 1 to 64 characters of lowercase letters, digits, '-' and '_', starting with a letter or digit"
)]
pub struct InvalidSourceName;

impl SourceName {
    pub fn parse(s: &str) -> Result<Self, InvalidSourceName> {
        let valid_len = (1..=64).contains(&s.len());
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid_len && first_ok && rest_ok { Ok(Self(s.to_owned())) } else { Err(InvalidSourceName) }
    }

    /// The source every installation has: leads posted to the REST API without a `source`.
    pub fn api() -> Self {
        Self("api".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SourceName {
    type Error = InvalidSourceName;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<SourceName> for String {
    fn from(s: SourceName) -> Self {
        s.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_url_safe_names_and_refuses_the_rest() {
        assert!(SourceName::parse("typeform-demo").is_ok());
        assert!(SourceName::parse("api").is_ok());
        assert!(SourceName::parse("").is_err());
        assert!(SourceName::parse("-x").is_err());
        assert!(SourceName::parse("Web Form").is_err());
        assert!(SourceName::parse("../etc").is_err());
        assert!(SourceName::parse(&"a".repeat(65)).is_err());
    }
}
