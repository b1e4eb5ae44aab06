//! API keys: random bearer tokens, shown once, stored only as a hash, with scopes, and
//! the lifecycle a key goes through: an optional expiry, rotation with a grace period (the
//! old token works until it ends), a rate and the client addresses it is accepted from.
//!
//! Tokens carry 256 bits of randomness, so a fast hash (SHA-256) is enough to store them:
//! there is nothing to brute-force that a slow password hash would protect.

use crate::ids::KeyId;
use crate::source::SourceName;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use time::{Duration, OffsetDateTime};

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
    /// From this time the key answers 401: its lifetime, or the end of a rotation's grace.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
    /// When the key was last accepted (kept to within a minute).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When a new key took this one's place (`leadflow keys rotate`).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<OffsetDateTime>,
    /// Requests accepted per minute; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// The client addresses the key is accepted from; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<IpRange>,
}

/// Why a key that exists is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the key was revoked")]
    Revoked,
    #[error("the key expired")]
    Expired,
    #[error("the key is not accepted from this address")]
    Address,
}

impl ApiKey {
    /// A key with these scopes and nothing else set, made now.
    pub fn new(name: impl Into<String>, token: &ApiToken, scopes: Vec<Scope>, now: OffsetDateTime) -> Self {
        Self {
            id: KeyId::new(),
            name: name.into(),
            prefix: token.display_prefix(),
            scopes,
            created_at: now,
            revoked_at: None,
            expires_at: None,
            last_used_at: None,
            rotated_at: None,
            rate_limit_per_minute: None,
            allowed_ips: Vec::new(),
        }
    }

    /// Whether the key is accepted at `now` from `client` (`None` when the address is
    /// unknown, which an address list refuses).
    pub fn admits(&self, now: OffsetDateTime, client: Option<IpAddr>) -> Result<(), Refusal> {
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Err(Refusal::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(Refusal::Expired);
        }
        if !self.allowed_ips.is_empty() && !client.is_some_and(|ip| self.allowed_ips.iter().any(|r| r.contains(ip))) {
            return Err(Refusal::Address);
        }
        Ok(())
    }

    /// The key that replaces this one in a rotation: the same name, scopes, rate and
    /// addresses, a new id and token; it expires after `lifetime` when one is given, else
    /// after as long as this one was made to last.
    pub fn successor(&self, token: &ApiToken, now: OffsetDateTime, lifetime: Option<Duration>) -> Self {
        let lifetime = lifetime.or_else(|| self.expires_at.map(|at| at - self.created_at));
        Self {
            expires_at: lifetime.map(|d| now + d),
            rate_limit_per_minute: self.rate_limit_per_minute,
            allowed_ips: self.allowed_ips.clone(),
            ..Self::new(self.name.clone(), token, self.scopes.clone(), now)
        }
    }

    /// When a rotation's grace ends for this key: `grace` from now, or its own expiry if
    /// that comes first.
    pub fn grace_end(&self, now: OffsetDateTime, grace: Duration) -> OffsetDateTime {
        let end = now + grace.max(Duration::ZERO);
        self.expires_at.map_or(end, |at| at.min(end))
    }

    /// Whether a key's last use is older than `every` at `now`: worth writing again.
    pub fn use_is_stale(last: Option<OffsetDateTime>, now: OffsetDateTime, every: Duration) -> bool {
        last.is_none_or(|at| now - at >= every)
    }

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

/// A client address or network a key is accepted from: `203.0.113.7`, `10.0.0.0/8`,
/// `2001:db8::/32`. An IPv4 client reaching an IPv6 socket (`::ffff:a.b.c.d`) is its
/// IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpRange(ipnet::IpNet);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an IP address or network (203.0.113.7, 10.0.0.0/8, 2001:db8::/32)")]
pub struct InvalidIpRange(String);

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for IpRange {
    type Err = InvalidIpRange;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self(net.trunc()));
        }
        s.parse::<IpAddr>().map(|ip| Self(ipnet::IpNet::from(ip))).map_err(|_| InvalidIpRange(s.to_owned()))
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for IpRange {
    type Error = InvalidIpRange;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<IpRange> for String {
    fn from(r: IpRange) -> Self {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(scopes: &[&str]) -> ApiKey {
        let token = ApiToken::generate().unwrap();
        ApiKey::new("k", &token, scopes.iter().map(|s| s.parse().unwrap()).collect(), OffsetDateTime::now_utc())
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_key_is_refused_once_expired_revoked_or_off_its_addresses() {
        let now = OffsetDateTime::now_utc();
        let mut k = key(&["read"]);
        assert_eq!(k.admits(now, None), Ok(()));
        k.expires_at = Some(now + Duration::seconds(1));
        assert_eq!(k.admits(now, None), Ok(()));
        assert_eq!(k.admits(now + Duration::seconds(1), None), Err(Refusal::Expired), "expiry is exclusive");
        k.allowed_ips = vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(k.admits(now, ip("10.1.2.3")), Ok(()));
        assert_eq!(k.admits(now, ip("::ffff:10.1.2.3")), Ok(()), "IPv4 through an IPv6 socket");
        assert_eq!(k.admits(now, ip("2001:db8::1")), Ok(()));
        assert_eq!(k.admits(now, ip("2001:db8::2")), Err(Refusal::Address));
        assert_eq!(k.admits(now, ip("192.168.1.1")), Err(Refusal::Address));
        assert_eq!(k.admits(now, None), Err(Refusal::Address), "an unknown address is not on a list");
        k.revoked_at = Some(now);
        assert_eq!(k.admits(now, ip("10.1.2.3")), Err(Refusal::Revoked));
    }

    #[test]
    fn a_rotation_keeps_what_the_key_may_do_and_ends_the_old_one_after_its_grace() {
        let now = OffsetDateTime::now_utc();
        let mut old = key(&["ingest:web", "read"]);
        old.rate_limit_per_minute = Some(60);
        old.allowed_ips = vec!["10.0.0.0/8".parse().unwrap()];
        old.expires_at = Some(old.created_at + Duration::days(90));
        let token = ApiToken::generate().unwrap();
        let new = old.successor(&token, now, None);
        assert_ne!(new.id, old.id);
        assert_eq!((new.name.as_str(), &new.scopes, new.rate_limit_per_minute), ("k", &old.scopes, Some(60)));
        assert_eq!(new.allowed_ips, old.allowed_ips);
        assert_eq!(new.expires_at, Some(now + Duration::days(90)), "as long as the old one was made to last");
        assert_eq!(new.prefix, token.display_prefix());
        assert_eq!(old.successor(&token, now, Some(Duration::days(7))).expires_at, Some(now + Duration::days(7)));
        assert_eq!(old.grace_end(now, Duration::hours(24)), now + Duration::hours(24));
        assert_eq!(old.grace_end(now, Duration::days(365)), old.created_at + Duration::days(90), "never longer");
        assert_eq!(key(&["read"]).successor(&token, now, None).expires_at, None);
    }

    #[test]
    fn address_ranges_parse_and_print() {
        for (text, shown) in
            [("203.0.113.7", "203.0.113.7/32"), ("10.1.0.0/8", "10.0.0.0/8"), ("2001:db8::/32", "2001:db8::/32")]
        {
            assert_eq!(text.parse::<IpRange>().unwrap().to_string(), shown);
        }
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
        let k: ApiKey = serde_json::from_value(serde_json::json!({
            "id": KeyId::new(), "name": "k", "prefix": "lf_", "scopes": ["read"],
            "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert!(k.allowed_ips.is_empty() && k.expires_at.is_none(), "keys stored before the lifecycle read back");
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
