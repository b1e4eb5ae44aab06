//! Blocking keys and a small in-memory candidate index.
//!
//! A store indexes every record under each of its [`blocking_keys`]; a new record is compared only
//! with the records sharing at least one key. Keys are prefixed by kind:
//!
//! | prefix | key | catches |
//! | --- | --- | --- |
//! | `e:` | [`email_match_key`] | same mailbox (Gmail dots/+tags, googlemail) |
//! | `p:` | phone (E.164) | phone-only chats, badge scans with a phone |
//! | `n:` | Double Metaphone(last name) + first initial; Double Metaphone(first name) + last initial | typos, missing email/phone; names swapped |
//! | `c:` | company token + first initial; + first and last initials (no first name: + `~`Double Metaphone(last name)) | email changed, no phone; large companies |
//! | `z:` | country + postal code + first 3 letters of the last name | partner lists with addresses |
//! | `d:` | business email domain + first 3 letters of the last name | work address with a different local part |
//! | `a:` | postal code + house number | address lists: a typo in a name's first letters, swapped or missing names |
//! | `s:` | Double Metaphone(street name) + house number; + each name's initial | the same, with the postal code or the house number mistyped |
//! | `l:` | Double Metaphone(second address line) + each name's initial | the same, with the street mistyped |
//! | `s:` (second line) | Double Metaphone(second line read as a street) + each name's initial | the two address lines swapped |
//!
//! A record's company tokens are its company key (spaces removed) and the first label of each
//! business domain (work email unless free-mail, website): `c:` keys are written for each, so a
//! company typo or a dropped word on one side is still bridged by the shared domain. At a company
//! with hundreds of leads, company + first initial and company + phonetic surname are both stop
//! keys for common names (a store reads 32 leads per key); company + both initials stays
//! selective and, unlike the phonetic code, survives a typo after the surname's first letter, so
//! it replaces company + phonetic surname, which is kept for records without a first name.
//!
//! Placeholder names ("Unknown", "Test", "N/A", …) make no keys, as if missing; the address keys
//! are written only for a record with some name. At an office many leads share, the address keys
//! become stop keys and cost nothing.
//!
//! First initials are expanded through the nickname table (Bill → `b`, `r`, `w` because Bill is a
//! nickname of Robert and William), so nicknames land in the same blocks.
//!
//! **Candidate explosion** is capped in the index, not by dropping keys up front:
//! [`CandidateIndex`] stops extending a key's posting list once it holds more than
//! `max_postings_per_key` records and ignores such "stop keys" at lookup (like a search engine's
//! stop words). A record is still found through its rarer keys (email, phone, company+name);
//! only pairs whose *every* shared key is over the cap are missed, which the evaluation measures.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use rphonetic::DoubleMetaphone;

use crate::matching::Record;
use crate::matching::email::{EmailRules, email_match_key, split_email};
use crate::matching::nicknames::NicknameTable;
use crate::matching::text::{
    fold_name, fold_postal, fold_street, fold_words, person_name, prefix, present, split_street,
};

static DEFAULT_RULES: LazyLock<EmailRules> = LazyLock::new(EmailRules::default);

/// Double Metaphone primary code (max 4) of an already folded, ASCII-only name.
pub(crate) fn phonetic(folded: &str) -> String {
    if folded.is_empty() || !folded.bytes().all(|b| b.is_ascii_lowercase()) {
        return String::new();
    }
    DoubleMetaphone::default().double_metaphone(folded).primary()
}

/// Initials of the first name and of the formal names it is a nickname of.
fn initials(first: &str) -> Vec<char> {
    let folded = fold_name(first);
    let mut out: Vec<char> = folded.chars().take(1).collect();
    for formal in NicknameTable::global().formal_names(&folded) {
        out.extend(formal.chars().take(1));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Company token: the key with spaces removed, or else the label of a business domain, so that
/// "jenkins silver" and "anthonyg@jenkinssilver.fr" share `c:` keys. `None` when empty.
pub(crate) fn company_token(r: &Record) -> Option<String> {
    present(&r.company_key)
        .map(|k| fold_words(k).replace(' ', ""))
        .or_else(|| {
            crate::matching::compare::business_domains(r)
                .iter()
                .flatten()
                .next()
                .map(|d| fold_words(crate::matching::compare::domain_label(d)).replace(' ', ""))
        })
        .filter(|c| !c.is_empty())
}

/// Every company token of a record: the compact company key *and* the labels of its business
/// domains. A company is typed in many ways ("Ferguson Golden" / "Ferguson Golden Works", a typo,
/// "North" for "North Logistics") while its domain stays put, so a record is indexed under both
/// and two records that agree on either share `c:` keys.
fn company_tokens(r: &Record) -> Vec<String> {
    let mut tokens: Vec<String> = present(&r.company_key).map(|k| fold_words(k).replace(' ', "")).into_iter().collect();
    for d in crate::matching::compare::business_domains(r).iter().flatten() {
        tokens.push(fold_words(crate::matching::compare::domain_label(d)).replace(' ', ""));
    }
    tokens.retain(|t| !t.is_empty());
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

/// Blocking keys with the default [`EmailRules`]; see the module docs for the key kinds.
pub fn blocking_keys(r: &Record) -> Vec<String> {
    blocking_keys_with(r, &DEFAULT_RULES)
}

/// Blocking keys using the given email rules for the `e:` key. Deterministic, deduplicated,
/// sorted; never panics. A record with nothing usable yields no keys.
pub fn blocking_keys_with(r: &Record, rules: &EmailRules) -> Vec<String> {
    let mut keys = Vec::with_capacity(8);
    if let Some(email) = present(&r.email) {
        keys.push(format!("e:{}", email_match_key(email, rules)));
    }
    if let Some(phone) = present(&r.phone) {
        let p: String = phone.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        if p.chars().filter(char::is_ascii_digit).count() >= 5 {
            keys.push(format!("p:{p}"));
        }
    }
    let last = person_name(&r.last_name).map(fold_name).unwrap_or_default();
    let last_code = phonetic(&last);
    let inits = person_name(&r.first_name).map(initials).unwrap_or_default();
    if !last_code.is_empty() {
        for i in &inits {
            keys.push(format!("n:{last_code}:{i}"));
        }
    }
    // The names read the other way round as well, so that a record whose names were swapped
    // ("Moulton Gabriel") shares the name key of the one that was not.
    let first_code = person_name(&r.first_name).map(|f| phonetic(&fold_name(f))).unwrap_or_default();
    if let Some(l) = last.chars().next()
        && !first_code.is_empty()
    {
        keys.push(format!("n:{first_code}:{l}"));
    }
    let last_initial = last.chars().next();
    for company in company_tokens(r) {
        for i in &inits {
            keys.push(format!("c:{company}:{i}"));
            if let Some(l) = last_initial {
                keys.push(format!("c:{company}:{i}{l}"));
            }
        }
        if !last_code.is_empty() && inits.is_empty() {
            keys.push(format!("c:{company}:~{last_code}"));
        }
    }
    let last3 = prefix(&last, 3);
    if !last3.is_empty() {
        if let Some(postal) = present(&r.postal_code).map(fold_postal)
            && !postal.is_empty()
        {
            let country = present(&r.country).unwrap_or("").to_ascii_uppercase();
            keys.push(format!("z:{country}:{postal}:{last3}"));
        }
        if !r.free_mail {
            let domain = present(&r.email_domain)
                .map(str::to_owned)
                .or_else(|| present(&r.email).and_then(split_email).map(|(_, d)| d.to_owned()));
            if let Some(domain) = domain {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                if !domain.is_empty() {
                    keys.push(format!("d:{domain}:{last3}"));
                }
            }
        }
    }
    // The dwelling, whatever the names say (a typo in a name's first letters, names swapped,
    // a name missing): house number with the postal code, and with the street name's sound; the
    // street name's sound and the second line's with an initial of either name (a house number
    // missing or mistyped). Only for a record with some name: an address with no name is
    // nobody yet.
    let mut name_initials: Vec<char> = inits.clone();
    name_initials.extend(last.chars().next());
    name_initials.sort_unstable();
    name_initials.dedup();
    if !name_initials.is_empty() {
        let (number, street) = present(&r.street)
            .map(|s| {
                let folded = fold_street(s);
                let (number, name) = split_street(&folded);
                (number.to_owned(), phonetic(&fold_name(&name)))
            })
            .unwrap_or_default();
        let postal = present(&r.postal_code).map(fold_postal).unwrap_or_default();
        if !number.is_empty() && !postal.is_empty() {
            keys.push(format!("a:{postal}:{number}"));
        }
        if !street.is_empty() {
            if !number.is_empty() {
                keys.push(format!("s:{street}:{number}"));
            }
            for i in &name_initials {
                keys.push(format!("s:{street}:{i}"));
            }
        }
        let line2 = present(&r.street2).map(|s| phonetic(&fold_name(s))).unwrap_or_default();
        if !line2.is_empty() {
            for i in &name_initials {
                keys.push(format!("l:{line2}:{i}"));
            }
        }
        // The second line read as a street too, so that two records whose lines were swapped
        // ("15 lander cres" + "courallie" / "10 courallie" + "lander crescent") share the
        // street's key.
        let line2_street =
            present(&r.street2).map(|s| phonetic(&fold_name(&split_street(&fold_street(s)).1))).unwrap_or_default();
        if !line2_street.is_empty() && line2_street != street {
            for i in &name_initials {
                keys.push(format!("s:{line2_street}:{i}"));
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Stable 64-bit hash of a key (SipHash with fixed keys), used by [`CandidateIndex`].
fn key_hash(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// In-memory inverted index `key → record ids` with a per-key cap (see the module docs).
///
/// Keys are stored as 64-bit hashes; a collision only adds a candidate, which `compare` rejects.
#[derive(Debug, Clone)]
pub struct CandidateIndex {
    postings: HashMap<u64, Vec<u32>>,
    max_postings_per_key: usize,
}

impl CandidateIndex {
    /// Creates an index whose keys are ignored once they hold more than `max_postings_per_key` ids.
    pub fn new(max_postings_per_key: usize) -> Self {
        CandidateIndex { postings: HashMap::new(), max_postings_per_key }
    }

    /// Adds a record under its keys. Posting lists stop growing one past the cap (that marks the
    /// key as a stop key).
    pub fn insert(&mut self, id: u32, keys: &[String]) {
        for k in keys {
            let list = self.postings.entry(key_hash(k)).or_default();
            if list.len() <= self.max_postings_per_key {
                list.push(id);
            }
        }
    }

    /// Whether a key is currently a stop key (over the cap).
    pub fn is_stop_key(&self, key: &str) -> bool {
        self.postings.get(&key_hash(key)).is_some_and(|l| l.len() > self.max_postings_per_key)
    }

    /// Distinct ids sharing at least one non-stop key with `keys`, written to `out` (cleared
    /// first), sorted ascending.
    pub fn candidates(&self, keys: &[String], out: &mut Vec<u32>) {
        out.clear();
        for k in keys {
            if let Some(list) = self.postings.get(&key_hash(k))
                && list.len() <= self.max_postings_per_key
            {
                out.extend_from_slice(list);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Like [`candidates`](Self::candidates), but keeps at most `max_candidates` ids: the
    /// best-keyed ones, ranked by the summed selectivity `1 / posting-list length` of the keys
    /// they share with the query (a shared email or phone outranks many shared common name
    /// keys); ties go to the lower id. Bounds the comparisons, hence the tail latency, of a query
    /// whose keys are all common. `out` is cleared first and sorted ascending.
    pub fn candidates_capped(&self, keys: &[String], max_candidates: usize, out: &mut Vec<u32>) {
        out.clear();
        let mut scored: Vec<(u32, f32)> = Vec::new();
        for k in keys {
            if let Some(list) = self.postings.get(&key_hash(k))
                && list.len() <= self.max_postings_per_key
            {
                let w = 1.0 / list.len().max(1) as f32;
                scored.extend(list.iter().map(|&id| (id, w)));
            }
        }
        scored.sort_unstable_by_key(|&(id, _)| id);
        let mut merged: Vec<(u32, f32)> = Vec::with_capacity(scored.len());
        for (id, w) in scored {
            match merged.last_mut() {
                Some((last, acc)) if *last == id => *acc += w,
                _ => merged.push((id, w)),
            }
        }
        if merged.len() > max_candidates {
            let by_rank = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if max_candidates > 0 {
                merged.select_nth_unstable_by(max_candidates - 1, by_rank);
            }
            merged.truncate(max_candidates);
        }
        out.extend(merged.iter().map(|&(id, _)| id));
        out.sort_unstable();
    }

    /// Number of distinct keys.
    pub fn key_count(&self) -> usize {
        self.postings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapped_names_and_swapped_address_lines_share_a_key() {
        let home = |first: &str, last: &str, street: &str, line2: &str, postal: &str| Record {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            street: Some(street.into()),
            street2: Some(line2.into()),
            postal_code: Some(postal.into()),
            ..Record::default()
        };
        let shared = |a: &Record, b: &Record| {
            let kb = blocking_keys(b);
            blocking_keys(a).into_iter().filter(|k| kb.contains(k)).collect::<Vec<_>>()
        };
        // Names swapped, the house number and the postal code mistyped.
        let a = home("Gabriel", "Moulton", "15 Lander Crescent", "Courallie", "4217");
        let b = home("Moulton", "Gabriel", "10 Cedar Road", "Other", "4271");
        assert!(!shared(&a, &b).is_empty());
        // Lines swapped, names replaced but for an initial, postal code mistyped.
        let c = home("Lucas", "Fenwick", "30 Yanda Street", "St John of God Hospital", "4217");
        let d = home("Matthew", "Fenwick", "30 St John of God Hospital", "Yanda Street", "4271");
        assert!(shared(&c, &d).iter().any(|k| k.starts_with("s:")), "{:?}", shared(&c, &d));
    }

    #[test]
    fn keys_cover_nicknames_and_gmail() {
        let a = Record {
            first_name: Some("Bill".into()),
            last_name: Some("Smith".into()),
            email: Some("bill.smith+crm@googlemail.com".into()),
            free_mail: true,
            company_key: Some("acme".into()),
            ..Record::default()
        };
        let b = Record {
            first_name: Some("William".into()),
            last_name: Some("Smith".into()),
            email: Some("billsmith@gmail.com".into()),
            free_mail: true,
            ..Record::default()
        };
        let ka = blocking_keys(&a);
        let kb = blocking_keys(&b);
        assert!(ka.contains(&"e:billsmith@gmail.com".to_owned()));
        assert!(ka.iter().any(|k| k.starts_with("c:acme:")));
        let shared: Vec<_> = ka.iter().filter(|k| kb.contains(k)).collect();
        assert!(shared.len() >= 2, "{ka:?} {kb:?}");
        assert!(blocking_keys(&Record::default()).is_empty());
    }

    #[test]
    fn a_company_is_blocked_under_its_key_and_its_domain() {
        // A typo in the company key on one side, the same website on both.
        let typed = Record {
            first_name: Some("Peter".into()),
            last_name: Some("Wright".into()),
            company_key: Some("summct".into()),
            website_domain: Some("summit.io".into()),
            ..Record::default()
        };
        let other = Record {
            first_name: Some("Pete".into()),
            last_name: Some("Wrigdt".into()),
            company_key: Some("summit".into()),
            email: Some("peter@summit.io".into()),
            email_domain: Some("summit.io".into()),
            ..Record::default()
        };
        let (ka, kb) = (blocking_keys(&typed), blocking_keys(&other));
        assert!(ka.contains(&"c:summct:pw".to_owned()) && ka.contains(&"c:summit:pw".to_owned()), "{ka:?}");
        assert!(kb.contains(&"c:summit:pw".to_owned()), "{kb:?}");
        // Without a first name, the company is paired with the phonetic surname instead.
        let no_first = Record { first_name: None, ..typed };
        assert!(blocking_keys(&no_first).iter().any(|k| k.starts_with("c:summit:~")));
    }

    #[test]
    fn index_caps_common_keys() {
        let mut idx = CandidateIndex::new(2);
        let keys = vec!["n:SM0:j".to_owned()];
        for id in 0..5 {
            idx.insert(id, &keys);
        }
        let mut out = Vec::new();
        idx.candidates(&keys, &mut out);
        assert!(out.is_empty());
        assert!(idx.is_stop_key("n:SM0:j"));
        idx.insert(9, &["p:+15550100".to_owned()]);
        idx.candidates(&["p:+15550100".to_owned(), "n:SM0:j".to_owned()], &mut out);
        assert_eq!(out, vec![9]);
    }

    #[test]
    fn capped_candidates_keep_the_rarest_keys() {
        let mut idx = CandidateIndex::new(100);
        for id in 0..50 {
            idx.insert(id, &["c:acme:j".to_owned()]);
        }
        idx.insert(7, &["p:+15550100".to_owned()]);
        idx.insert(60, &["p:+15550100".to_owned()]);
        let keys = vec!["c:acme:j".to_owned(), "p:+15550100".to_owned()];
        let mut out = Vec::new();
        idx.candidates_capped(&keys, 3, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.contains(&7) && out.contains(&60), "{out:?}");
        idx.candidates_capped(&keys, 1000, &mut out);
        assert_eq!(out.len(), 51);
    }
}
