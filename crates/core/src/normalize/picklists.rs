//! `[picklists]`: the controlled values a lead's fields are matched against, each with
//! its synonyms. A configured list replaces the default one. Normalization's vocabulary also
//! holds the legal-form suffixes `[matching] legal_suffixes` adds, which the configuration
//! copies here: `prepare` is given the picklists, and the company key is made there.

use super::{LegalSuffixes, Picklist};
use crate::config::read::{Problems, span};
use toml_edit::Table;

/// Controlled values with their synonyms; an unmatched value is kept and flagged.
#[derive(Clone, Debug, PartialEq)]
pub struct Picklists {
    pub industry: Picklist,
    /// Legal-form suffixes the company key drops beyond the built-in ones (from
    /// `[matching] legal_suffixes`; the same list as [`Matching::legal_suffixes`](crate::resolve::Matching)).
    pub legal_suffixes: LegalSuffixes,
    /// The consent purposes a submission may speak of (from `[privacy] purposes`).
    pub consent_purposes: Vec<String>,
}

impl Default for Picklists {
    fn default() -> Self {
        Self {
            industry: super::default_industries(),
            legal_suffixes: LegalSuffixes::default(),
            consent_purposes: crate::consent::DEFAULT_PURPOSES.map(str::to_owned).to_vec(),
        }
    }
}

/// Reads the section over the defaults.
pub(crate) fn read(p: &mut Problems, t: &Table) -> Picklists {
    let mut picklists = Picklists::default();
    for (key, item) in t.iter() {
        let path = format!("picklists.{key}");
        let Some(values) = item.as_table() else {
            p.push(span(item), &path, "must be a table of value = [synonyms]");
            continue;
        };
        let mut entries = Vec::new();
        for (value, synonyms) in values.iter() {
            let list: Option<Vec<String>> =
                synonyms.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect());
            match list {
                Some(list) if synonyms.as_array().is_some_and(|a| a.len() == list.len()) => {
                    entries.push((value.to_owned(), list))
                }
                _ => p.push(span(synonyms), &format!("{path}.{value}"), "must be a list of synonyms (strings)"),
            }
        }
        match key {
            "industry" => match Picklist::new(entries) {
                Ok(list) => picklists.industry = list,
                Err(e) => p.push(span(item), &path, e.to_string()),
            },
            _ => p.push(span(item), &path, "unknown picklist (available: industry)"),
        }
    }
    picklists
}
