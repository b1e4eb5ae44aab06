//! Exact email identity: provider-specific canonical "match keys".

use serde::{Deserialize, Serialize};

/// How one mailbox provider treats the local part of its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRule {
    /// Domains served by this provider (lowercase), e.g. `["gmail.com", "googlemail.com"]`.
    pub domains: Vec<String>,
    /// Domain every address of the provider is rewritten to (`"gmail.com"`).
    pub canonical_domain: String,
    /// Dots in the local part are ignored by the provider (Gmail).
    pub ignore_dots: bool,
    /// `local+tag` is delivered to `local` (sub-addressing).
    pub strip_plus_tag: bool,
}

/// Per-domain rules applied by [`email_match_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRules {
    /// Provider rules, checked in order; the first whose `domains` contains the address domain wins.
    pub providers: Vec<ProviderRule>,
    /// Further domains (not covered by a provider rule) where `+tag` is removed from the local part,
    /// e.g. your own customers' Google Workspace / Microsoft 365 domains.
    pub plus_tag_domains: Vec<String>,
}

impl Default for EmailRules {
    /// Gmail/Googlemail (dots and `+tags` ignored, googlemail.com ≡ gmail.com) and `+tag` removal
    /// for the large providers that document sub-addressing.
    fn default() -> Self {
        let plus_only = |domains: &[&str]| ProviderRule {
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            canonical_domain: domains.first().map(|d| (*d).to_owned()).unwrap_or_default(),
            ignore_dots: false,
            strip_plus_tag: true,
        };
        EmailRules {
            providers: vec![
                ProviderRule {
                    domains: vec!["gmail.com".into(), "googlemail.com".into()],
                    canonical_domain: "gmail.com".into(),
                    ignore_dots: true,
                    strip_plus_tag: true,
                },
                plus_only(&["outlook.com"]),
                plus_only(&["hotmail.com"]),
                plus_only(&["live.com"]),
                plus_only(&["icloud.com"]),
                plus_only(&["me.com"]),
                plus_only(&["fastmail.com"]),
                plus_only(&["proton.me"]),
                plus_only(&["protonmail.com"]),
                plus_only(&["pm.me"]),
            ],
            plus_tag_domains: Vec::new(),
        }
    }
}

/// Splits `local@domain` at the last `@`; `None` when there is no `@` or either side is empty.
pub(crate) fn split_email(email: &str) -> Option<(&str, &str)> {
    let (local, domain) = email.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some((local, domain))
}

/// Canonical key for exact email identity.
///
/// The address is trimmed and lowercased, then the first matching [`ProviderRule`] rewrites it:
/// `John.Doe+news@GoogleMail.com` → `johndoe@gmail.com`. Domains listed in
/// [`EmailRules::plus_tag_domains`] only lose their `+tag`. A string without `@` is returned
/// trimmed and lowercased. Never panics.
pub fn email_match_key(email: &str, rules: &EmailRules) -> String {
    let lowered = email.trim().to_lowercase();
    let Some((local, domain)) = split_email(&lowered) else {
        return lowered;
    };
    let domain = domain.trim_end_matches('.');
    let provider = rules.providers.iter().find(|p| p.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)));
    let (strip_plus, ignore_dots, out_domain) = match provider {
        Some(p) => (
            p.strip_plus_tag,
            p.ignore_dots,
            if p.canonical_domain.is_empty() { domain.to_owned() } else { p.canonical_domain.to_lowercase() },
        ),
        None => (rules.plus_tag_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)), false, domain.to_owned()),
    };
    let mut local = local;
    if strip_plus
        && let Some((base, _tag)) = local.split_once('+')
        && !base.is_empty()
    {
        local = base;
    }
    let mut key = String::with_capacity(local.len() + out_domain.len() + 1);
    if ignore_dots {
        key.extend(local.chars().filter(|&c| c != '.'));
        if key.is_empty() {
            key.push_str(local);
        }
    } else {
        key.push_str(local);
    }
    key.push('@');
    key.push_str(&out_domain);
    key
}

/// Local parts that name a role or a shared mailbox rather than a person; they carry no
/// person-level evidence when seen under two different domains.
pub(crate) fn is_role_local_part(local: &str) -> bool {
    const ROLES: &[&str] = &[
        "info",
        "contact",
        "sales",
        "hello",
        "admin",
        "office",
        "support",
        "team",
        "mail",
        "email",
        "marketing",
        "hr",
        "jobs",
        "careers",
        "billing",
        "accounts",
        "accounting",
        "finance",
        "enquiries",
        "inquiries",
        "service",
        "help",
        "noreply",
        "no-reply",
        "post",
        "kontakt",
        "reception",
        "orders",
        "webmaster",
        "press",
        "media",
        "events",
        "partners",
        "test",
    ];
    ROLES.contains(&local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_rules() {
        let r = EmailRules::default();
        assert_eq!(email_match_key("John.Doe+news@GoogleMail.com", &r), "johndoe@gmail.com");
        assert_eq!(email_match_key("j.o.h.n.doe@gmail.com", &r), "johndoe@gmail.com");
        assert_eq!(email_match_key("john+x@outlook.com", &r), "john@outlook.com");
        // dots matter outside Gmail, and +tags are kept for unknown domains
        assert_eq!(email_match_key("john.doe+x@acme.com", &r), "john.doe+x@acme.com");
        let custom = EmailRules { plus_tag_domains: vec!["acme.com".into()], ..EmailRules::default() };
        assert_eq!(email_match_key("john.doe+x@acme.com", &custom), "john.doe@acme.com");
        // degenerate inputs do not panic
        assert_eq!(email_match_key("", &r), "");
        assert_eq!(email_match_key("@", &r), "@");
        assert_eq!(email_match_key("+@gmail.com", &r), "+@gmail.com");
        assert_eq!(email_match_key("...@gmail.com", &r), "...@gmail.com");
        assert_eq!(email_match_key("no-at-sign", &r), "no-at-sign");
    }
}
