//! suppress: people who must not be captured again.
//!
//! An erasure, or an operator, puts a person on the suppression list; from then on no
//! channel captures them again. The list holds only keyed hashes (HMAC-SHA-256 under a
//! secret kept outside the database) of the normalized email, its mailbox key (so case,
//! Gmail dots and `+tags` do not get around it) and the E.164 phone: a copy of the
//! database alone cannot tell who is on it, nor be tested against a guessed address
//! without the secret.
//!
//! Pure: the app and the stores compute the same hashes here and only store or look them up.

use crate::Email;
use crate::resolve::Matching;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// The secret the hashes are keyed with. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SuppressionKey(Vec<u8>);

impl fmt::Debug for SuppressionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SuppressionKey(..)")
    }
}

impl SuppressionKey {
    /// At least 16 bytes, or `None`: a short key makes the hashes guessable.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let bytes = bytes.into();
        (bytes.len() >= 16).then_some(Self(bytes))
    }

    /// A short public name of the key, stored with each entry, so that entries made under
    /// another key can be told apart (they no longer match anyone).
    pub fn id(&self) -> String {
        hex(&self.mac(b"leadflow suppression key id")[..6])
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn hash(&self, kind: Kind, value: &str) -> Hash {
        let mut message = Vec::with_capacity(value.len() + 8);
        message.extend_from_slice(kind.as_str().as_bytes());
        message.push(0);
        message.extend_from_slice(value.as_bytes());
        Hash { kind, value: hex(&self.mac(&message)) }
    }
}

/// What a hash was made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    /// The email's mailbox key under the matching rules (`jane.doe+x@gmail.com` and
    /// `janedoe@gmail.com` are one mailbox).
    Mailbox,
    Phone,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Mailbox => "mailbox",
            Self::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Email, Self::Mailbox, Self::Phone].into_iter().find(|k| k.as_str() == s)
    }
}

/// One keyed hash, lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hash {
    pub kind: Kind,
    pub value: String,
}

/// One keyed hash of a suppressed person, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub hash: Hash,
    /// Groups the hashes of one request (an erasure, a `POST /v1/suppressions`).
    pub entry: String,
    pub key_id: String,
    /// Why, as given (a ticket number; never personal data).
    pub reason: Option<String>,
    pub created_by: Option<String>,
    pub created_at: time::OffsetDateTime,
}

impl Suppression {
    /// The list entries for `hashes`, made under `key` as one request.
    pub fn entries(
        hashes: Vec<Hash>,
        key: &SuppressionKey,
        reason: Option<&str>,
        created_by: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Vec<Self> {
        let entry = format!("sup_{}", uuid::Uuid::now_v7().simple());
        let key_id = key.id();
        hashes
            .into_iter()
            .map(|hash| Self {
                hash,
                entry: entry.clone(),
                key_id: key_id.clone(),
                reason: reason.map(str::to_owned),
                created_by: created_by.map(str::to_owned),
                created_at: now,
            })
            .collect()
    }
}

/// The ways a person can be recognized: a normalized email, an E.164 phone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    pub email: Option<&'a Email>,
    /// Only an E.164 number (`+` and digits) is hashed: one kept as received could be
    /// written another way next time, and would not match anyway.
    pub phone: Option<&'a str>,
}

impl<'a> Identity<'a> {
    pub fn of(fields: &'a crate::LeadFields) -> Self {
        Self { email: fields.email.as_ref(), phone: fields.phone.as_deref() }
    }

    /// The hashes that name this person, deduplicated; empty for a person with neither.
    pub fn hashes(&self, key: &SuppressionKey, matching: &Matching) -> Vec<Hash> {
        let mut out = Vec::with_capacity(3);
        if let Some(email) = self.email {
            out.push(key.hash(Kind::Email, email.as_str()));
            out.push(key.hash(Kind::Mailbox, &matching.email_key(email)));
        }
        if let Some(phone) = self.phone.filter(|p| is_e164(p)) {
            out.push(key.hash(Kind::Phone, phone));
        }
        out.sort();
        out.dedup();
        out
    }
}

/// `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SuppressionKey {
        SuppressionKey::new(*b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn hashes(email: &str, phone: Option<&str>) -> Vec<Hash> {
        let email = Email::parse(email).unwrap();
        Identity { email: Some(&email), phone }.hashes(&key(), &Matching::default())
    }

    fn mailbox(h: &[Hash]) -> &Hash {
        h.iter().find(|h| h.kind == Kind::Mailbox).unwrap()
    }

    #[test]
    fn case_dots_and_tags_reach_the_same_mailbox() {
        let plain = hashes("janedoe@gmail.com", None);
        for variant in ["Jane.Doe@Gmail.com", "jane.doe+news@gmail.com", " JANEDOE+x@googlemail.com "] {
            assert_eq!(mailbox(&hashes(variant, None)), mailbox(&plain), "{variant}");
        }
        assert_ne!(mailbox(&hashes("jane@gmail.com", None)), mailbox(&plain));
    }

    #[test]
    fn hashes_depend_on_the_key_and_hold_no_plaintext() {
        let email = Email::parse("ada@example.com").unwrap();
        let id = Identity { email: Some(&email), phone: Some("+14155550100") };
        let a = id.hashes(&key(), &Matching::default());
        let other = SuppressionKey::new(*b"another key, 16 bytes or more...").unwrap();
        let b = id.hashes(&other, &Matching::default());
        assert_eq!(a.len(), 3);
        assert!(a.iter().zip(&b).all(|(x, y)| x.value != y.value));
        for h in &a {
            assert_eq!(h.value.len(), 64);
            assert!(!h.value.contains("ada") && !h.value.contains("14155550100"));
        }
        assert_ne!(key().id(), other.id());
    }

    #[test]
    fn only_e164_phones_are_hashed_and_short_keys_are_refused() {
        assert!(SuppressionKey::new(*b"short").is_none());
        assert_eq!(Identity { email: None, phone: Some("(415) 555-0100") }.hashes(&key(), &Matching::default()), []);
        assert_eq!(Identity { email: None, phone: Some("+14155550100") }.hashes(&key(), &Matching::default()).len(), 1);
        assert!(!is_e164("+0123456789") && !is_e164("+1234") && is_e164("+447911123456"));
    }

    proptest! {
        #[test]
        fn the_email_hash_ignores_case_and_surrounding_space(local in "[a-z]{1,12}", upper in any::<bool>()) {
            let address = format!("{local}@example.org");
            let variant = if upper { format!("  {}  ", address.to_uppercase()) } else { address.clone() };
            prop_assert_eq!(hashes(&address, None), hashes(&variant, None));
        }
    }
}
