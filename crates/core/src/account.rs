//! Accounts: the companies leads belong to.
//!
//! A lead claims an account by its corporate domains (its email's, unless that is a free
//! or disposable mailbox, and its website's) and by its company key. The store looks the
//! claim's keys up and [`assign`] decides:
//!
//! - a corporate domain the account owns joins it; that is as good as proof;
//! - otherwise a company key that exactly one account holds joins it only when it is
//!   confident: the lead has no corporate domain (a free-mail address) or its domain's
//!   name is the account's (`acme.de` joins the account of `acme.com`), which is how one
//!   account comes to own several domains. Two different "Acme"s with unrelated domains
//!   stay apart;
//! - a lead with a corporate domain and no account founds one;
//! - a lead with neither stays a personal contact. Free-mail and disposable domains never
//!   found an account ("Gmail Inc"), and neither do placeholder companies ("self
//!   employed", "n/a").

use crate::changes::Change;
use crate::ids::AccountId;
use crate::lead::{Derived, Lead, LeadFields};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Registrable domains, e.g. `acme.com`; each belongs to one account at most.
    pub domains: Vec<String>,
    /// Company match keys (legal suffixes stripped), each held by one account at most.
    pub company_keys: Vec<String>,
    /// The rep who owns the account, for routing.
    pub owner: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

/// What a lead brings to account matching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    /// Corporate registrable domains: the email's first, then the website's.
    pub domains: Vec<String>,
    pub company_key: Option<String>,
    /// The company as entered, to name a new account.
    pub company: Option<String>,
}

impl Claim {
    pub fn of(fields: &LeadFields, derived: &Derived) -> Self {
        let mut domains = Vec::new();
        if !derived.free_mail && !derived.disposable_email {
            domains.extend(derived.email_domain.as_deref().and_then(crate::normalize::registrable_domain));
        }
        if let Some(site) = &derived.website_domain
            && is_corporate_site(site)
            && !domains.contains(site)
        {
            domains.push(site.clone());
        }
        let company_key = derived.company_key.clone().filter(|k| !is_placeholder_company(k));
        Self { domains, company_key, company: fields.company.clone() }
    }

    /// The keys to look accounts up by: `d:` domains, `c:` the company key.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.domains.iter().map(|d| domain_key(d)).collect();
        keys.extend(self.company_key.as_deref().map(company_key));
        keys
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.company_key.is_none()
    }
}

pub fn domain_key(domain: &str) -> String {
    format!("d:{domain}")
}

pub fn company_key(key: &str) -> String {
    format!("c:{key}")
}

/// An account found by one of the claim's keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub key: String,
    pub account: Account,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Assignment {
    /// Join this account; `add_keys` are the claim's keys no account holds yet, to be
    /// recorded for the account (a new domain of the same company, its company key).
    Join { account: AccountId, add_keys: Vec<String> },
    /// Found a new account holding the claim's keys.
    Found(Account),
    /// A personal contact: no account.
    Personal,
}

/// Decides a lead's account from the accounts its claim's keys found.
pub fn assign(claim: &Claim, found: &[Found], now: OffsetDateTime) -> Assignment {
    let held = |key: &str| found.iter().any(|f| f.key == key);
    let unheld = |account: &Account| -> Vec<String> {
        let mut keys: Vec<String> = claim.keys().into_iter().filter(|k| !held(k)).collect();
        // One company key per account is enough to find it; more would let a typo in one
        // lead's company name pull later leads in.
        if !account.company_keys.is_empty() {
            keys.retain(|k| !k.starts_with("c:"));
        }
        keys
    };
    for domain in &claim.domains {
        let key = domain_key(domain);
        if let Some(f) = found.iter().find(|f| f.key == key) {
            return Assignment::Join { account: f.account.id, add_keys: unheld(&f.account) };
        }
    }
    if let Some(ck) = &claim.company_key {
        let key = company_key(ck);
        let by_name: Vec<&Found> = found.iter().filter(|f| f.key == key).collect();
        if let [only] = by_name.as_slice() {
            let confident = claim.domains.is_empty()
                || claim.domains.iter().any(|d| only.account.domains.iter().any(|own| same_name(d, own)));
            if confident {
                return Assignment::Join { account: only.account.id, add_keys: unheld(&only.account) };
            }
        }
    }
    if claim.domains.is_empty() {
        return Assignment::Personal;
    }
    // A company key another account holds stays with it: this lead's account is known by
    // its domain alone.
    let company_keys: Vec<String> = claim.company_key.iter().filter(|k| !held(&company_key(k))).cloned().collect();
    let name = claim.company.clone().unwrap_or_else(|| claim.domains[0].clone());
    Assignment::Found(Account {
        id: AccountId::new(),
        name,
        domains: claim.domains.clone(),
        company_keys,
        owner: None,
        created_at: now,
        updated_at: now,
    })
}

/// `acme.de` and `acme.co.uk` carry the name of `acme.com`.
fn same_name(a: &str, b: &str) -> bool {
    let label = |d: &str| d.split('.').next().map(str::to_owned);
    matches!((label(a), label(b)), (Some(x), Some(y)) if x == y && x.len() >= 3)
}

/// Hosts of profiles and pages that belong to a platform, not to the lead's company.
const PLATFORM_SITES: &[&str] = &[
    "facebook.com",
    "instagram.com",
    "linkedin.com",
    "twitter.com",
    "x.com",
    "youtube.com",
    "tiktok.com",
    "github.com",
    "medium.com",
    "wixsite.com",
    "wordpress.com",
    "blogspot.com",
    "squarespace.com",
    "google.com",
    "sites.google.com",
    "notion.site",
    "linktr.ee",
];

fn is_corporate_site(domain: &str) -> bool {
    !PLATFORM_SITES.contains(&domain)
        && !crate::normalize::is_free_mail(domain)
        && !crate::normalize::is_disposable(domain)
}

/// Company keys people type when they have no company.
const PLACEHOLDER_COMPANIES: &[&str] = &[
    "na",
    "n a",
    "none",
    "no",
    "nil",
    "null",
    "unknown",
    "private",
    "personal",
    "self",
    "self employed",
    "selfemployed",
    "freelance",
    "freelancer",
    "independent",
    "individual",
    "student",
    "retired",
    "unemployed",
    "home",
    "test",
    "x",
];

fn is_placeholder_company(key: &str) -> bool {
    PLACEHOLDER_COMPANIES.contains(&key) || key.chars().all(|c| !c.is_alphanumeric())
}

/// The account keys to look up for `lead`: those its claim holds, unless it has an account.
pub fn wanted_keys(lead: &Lead) -> Vec<String> {
    if lead.account_id.is_some() { Vec::new() } else { Claim::of(&lead.fields, &lead.derived).keys() }
}

/// Gives a lead without an account the one its domains or company name claim, founding
/// it if needed. A lead keeps an account once it has one.
pub fn join(lead: &mut Lead, found: &[Found], now: OffsetDateTime) -> Vec<Change> {
    if lead.account_id.is_some() {
        return Vec::new();
    }
    let claim = Claim::of(&lead.fields, &lead.derived);
    if claim.is_empty() {
        return Vec::new();
    }
    match assign(&claim, found, now) {
        Assignment::Join { account, add_keys } => {
            lead.account_id = Some(account);
            if add_keys.is_empty() { Vec::new() } else { vec![Change::AccountKeys { account, keys: add_keys }] }
        }
        Assignment::Found(account) => {
            lead.account_id = Some(account.id);
            vec![Change::Account(Box::new(account))]
        }
        Assignment::Personal => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Email;

    fn claim(email: &str, company: Option<&str>, website: Option<&str>) -> Claim {
        let fields = LeadFields {
            email: Some(Email::parse(email).unwrap()),
            company: company.map(str::to_owned),
            website: website.map(str::to_owned),
            ..LeadFields::default()
        };
        Claim::of(&fields, &crate::normalize::derive(&fields, None))
    }

    fn account(domains: &[&str], keys: &[&str]) -> Account {
        let now = OffsetDateTime::now_utc();
        Account {
            id: AccountId::new(),
            name: "Acme".into(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            company_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            owner: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn found(account: &Account, claim: &Claim) -> Vec<Found> {
        let held: Vec<String> = account
            .domains
            .iter()
            .map(|d| domain_key(d))
            .chain(account.company_keys.iter().map(|k| company_key(k)))
            .collect();
        claim
            .keys()
            .into_iter()
            .filter(|k| held.contains(k))
            .map(|key| Found { key, account: account.clone() })
            .collect()
    }

    #[test]
    fn a_corporate_lead_founds_an_account_with_its_domains_and_company_key() {
        let c = claim("ada@mail.acme.com", Some("Acme, Inc."), Some("https://www.acme.io/about"));
        assert_eq!(c.domains, vec!["acme.com", "acme.io"]);
        match assign(&c, &[], OffsetDateTime::now_utc()) {
            Assignment::Found(a) => {
                assert_eq!(a.domains, vec!["acme.com", "acme.io"]);
                assert_eq!(a.company_keys, vec!["acme"]);
                assert_eq!(a.name, "Acme, Inc.");
            }
            other => panic!("expected a new account, got {other:?}"),
        }
    }

    #[test]
    fn free_mail_never_founds_an_account() {
        let c = claim("ada@gmail.com", Some("Acme"), None);
        assert!(c.domains.is_empty());
        assert_eq!(assign(&c, &[], OffsetDateTime::now_utc()), Assignment::Personal);
        let c = claim("ada@gmail.com", None, Some("https://www.linkedin.com/in/ada"));
        assert_eq!(assign(&c, &[], OffsetDateTime::now_utc()), Assignment::Personal);
    }

    #[test]
    fn free_mail_joins_the_one_account_with_its_company_key() {
        let acme = account(&["acme.com"], &["acme"]);
        let c = claim("ada@gmail.com", Some("ACME Incorporated"), None);
        assert_eq!(
            assign(&c, &found(&acme, &c), OffsetDateTime::now_utc()),
            Assignment::Join { account: acme.id, add_keys: vec![] }
        );
    }

    #[test]
    fn a_company_key_two_accounts_share_is_not_confident() {
        let a = account(&["acme.com"], &["acme"]);
        let b = account(&["acme-tools.de"], &["acme"]);
        let c = claim("ada@gmail.com", Some("Acme"), None);
        let mut both = found(&a, &c);
        both.extend(found(&b, &c));
        assert_eq!(assign(&c, &both, OffsetDateTime::now_utc()), Assignment::Personal);
    }

    #[test]
    fn a_domain_of_the_same_name_joins_and_is_added_to_the_account() {
        let acme = account(&["acme.com"], &["acme"]);
        let c = claim("max@acme.de", Some("Acme GmbH"), None);
        assert_eq!(
            assign(&c, &found(&acme, &c), OffsetDateTime::now_utc()),
            Assignment::Join { account: acme.id, add_keys: vec!["d:acme.de".into()] }
        );
    }

    #[test]
    fn a_namesake_company_with_an_unrelated_domain_founds_its_own_account() {
        let acme = account(&["acme.com"], &["acme"]);
        let c = claim("max@roadrunner-supply.com", Some("Acme"), None);
        match assign(&c, &found(&acme, &c), OffsetDateTime::now_utc()) {
            Assignment::Found(a) => {
                assert_eq!(a.domains, vec!["roadrunner-supply.com"]);
                assert!(a.company_keys.is_empty(), "the key stays with the account that holds it");
            }
            other => panic!("expected a new account, got {other:?}"),
        }
    }

    #[test]
    fn the_domain_decides_before_the_company_name() {
        let acme = account(&["acme.com"], &["acme"]);
        let c = claim("ada@acme.com", Some("Globex"), None);
        assert_eq!(
            assign(&c, &found(&acme, &c), OffsetDateTime::now_utc()),
            Assignment::Join { account: acme.id, add_keys: vec![] }
        );
    }

    #[test]
    fn placeholder_companies_are_no_claim() {
        for company in ["Self-employed", "N/A", "none", "Freelance", "---"] {
            let c = claim("ada@gmail.com", Some(company), None);
            assert!(c.is_empty(), "{company}");
        }
    }
}
