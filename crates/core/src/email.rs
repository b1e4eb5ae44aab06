//! Email addresses: trimmed, lowercased and syntax-checked once, at the boundary.
//!
//! Lowercasing the local part is a deliberate choice: nearly every mailbox provider treats
//! it case-insensitively, and exact-email matching depends on one spelling per person.

use serde::{Deserialize, Serialize};
use std::fmt;

/// RFC 5321 caps a forward path at 256 octets including the angle brackets.
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Email))]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid email address")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() || s.len() > MAX_EMAIL_LEN {
            return Err(InvalidEmail);
        }
        let options =
            email_address::Options::default().without_display_text().without_domain_literal().with_required_tld();
        let parsed = email_address::EmailAddress::parse_with_options(&s, options).map_err(|_| InvalidEmail)?;
        // The crate accepts quoted local parts and comments; no real lead form sends them,
        // and they would make two spellings of one mailbox.
        if parsed.local_part().contains(['"', '(', ')', ' ']) {
            return Err(InvalidEmail);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`, e.g. `example.com`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_lowercases() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@example.com");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in ["", "plain", "a@b", "@example.com", "a@", "a b@example.com", "a@@example.com", "\"q\"@example.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
                prop_assert_eq!(e.as_str(), e.as_str().trim().to_lowercase());
            }
        }

        #[test]
        fn generated_addresses_parse(local in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,10})?", domain in "[a-z0-9]{1,20}\\.[a-z]{2,6}") {
            let s = format!("{local}@{domain}");
            prop_assert_eq!(Email::parse(&s).map(|e| e.as_str().to_owned()), Ok(s));
        }
    }
}
