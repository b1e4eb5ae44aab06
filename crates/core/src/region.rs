//! `[[regions]]`: data residency. Each region names its own database; a lead lives, with
//! every row about it, in the one region its country (or else its source) assigns, and a
//! region marked `default = true` takes the rest. Which region a new lead goes to is
//! decided here, from what the submission says; the store that routes by it only applies
//! the decision.

use crate::config::read::{Problems, span};
use crate::config::server::DatabaseConfig;
use crate::geo::CountryCode;
use std::collections::BTreeSet;
use toml_edit::Item;

/// The member states of the European Union and of the European Economic Area (the EU with
/// Iceland, Liechtenstein and Norway): the countries the GDPR covers. `"EU"` and `"EEA"` in
/// a region's `countries` both mean this list.
pub const EU_EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT", "LI", "LT",
    "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// One `[[regions]]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub name: String,
    pub database: DatabaseConfig,
    /// ISO 3166-1 alpha-2 codes, the `EU` group expanded.
    pub countries: BTreeSet<String>,
    /// Sources whose leads go here when their country names no region.
    pub sources: BTreeSet<String>,
    pub default: bool,
}

/// The configured regions; empty when the file has none (one database, `[database]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Regions {
    regions: Vec<Region>,
}

impl Regions {
    pub fn new(regions: Vec<Region>) -> Self {
        Self { regions }
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub fn list(&self) -> &[Region] {
        &self.regions
    }

    /// The index of the default region (the first when none is marked, which validation
    /// refuses).
    pub fn default_index(&self) -> usize {
        self.regions.iter().position(|r| r.default).unwrap_or(0)
    }

    /// Points the default region at another database (`--database`, `LEADFLOW_DATABASE_URL`).
    pub fn set_default_database(&mut self, url: &str) {
        let i = self.default_index();
        if let Some(r) = self.regions.get_mut(i) {
            r.database.url = url.to_owned();
        }
    }

    /// The region a new lead goes to: the one listing its country; else the one listing
    /// its source; else the default. The country comes first because residency follows
    /// the person: a German visitor on a source pinned to the US region is still stored in
    /// the EU one.
    pub fn assign(&self, country: Option<&str>, source: &str) -> usize {
        let by_country = country.and_then(|c| self.regions.iter().position(|r| r.countries.contains(c)));
        by_country
            .or_else(|| self.regions.iter().position(|r| r.sources.contains(source)))
            .unwrap_or_else(|| self.default_index())
    }
}

/// `[[regions]]`; `sources` are the configured source names, which a region may pin.
pub(crate) fn read(p: &mut Problems, item: &Item, sources: &[&str]) -> Regions {
    let Some(array) = item.as_array_of_tables() else {
        p.push(span(item), "regions", "must be an array of tables: [[regions]]");
        return Regions::default();
    };
    let mut regions: Vec<Region> = Vec::new();
    for (i, t) in array.iter().enumerate() {
        let mut region = Region {
            name: String::new(),
            database: DatabaseConfig::default(),
            countries: BTreeSet::new(),
            sources: BTreeSet::new(),
            default: false,
        };
        let mut has_database = false;
        for (key, item) in t.iter() {
            let path = format!("regions[{i}].{key}");
            match key {
                "name" => {
                    if let Some(s) = p.string(item, &path) {
                        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        {
                            p.push(span(item), &path, "must be lower-case letters, digits and '-'");
                        } else if regions.iter().any(|r| r.name == s) {
                            p.push(span(item), &path, format!("a region named {s:?} is already declared"));
                        } else {
                            region.name = s.to_owned();
                        }
                    }
                }
                "database" => {
                    if let Some(s) = p.string(item, &path) {
                        if !crate::config::server::is_database_url(s) {
                            p.push(span(item), &path, "must start with sqlite:// or postgres://");
                        } else if regions.iter().any(|r| r.database.url == s) {
                            p.push(span(item), &path, "another region already uses this database");
                        } else {
                            region.database.url = s.to_owned();
                            has_database = true;
                        }
                    }
                }
                "max_connections" => {
                    if let Some(n) = p.positive_integer(item, &path) {
                        region.database.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
                "countries" => read_countries(p, item, &path, &regions, &mut region.countries),
                "sources" => {
                    for s in strings(p, item, &path) {
                        if !sources.contains(&s.as_str()) {
                            p.push(span(item), &path, format!("{s:?} is not a configured source"));
                        } else if let Some(other) = regions.iter().find(|r| r.sources.contains(&s)) {
                            p.push(span(item), &path, format!("source {s:?} is already in region {:?}", other.name));
                        } else {
                            region.sources.insert(s);
                        }
                    }
                }
                "default" => match item.as_bool() {
                    Some(b) => region.default = b,
                    None => p.push(span(item), &path, "must be true or false"),
                },
                _ => p.push(span(item), &path, "unknown key"),
            }
        }
        let at = Some(t.span().unwrap_or_default());
        if region.name.is_empty() && t.get("name").is_none() {
            p.push(at.clone(), &format!("regions[{i}]"), "needs a name");
        }
        if !has_database && t.get("database").is_none() {
            p.push(at, &format!("regions[{i}]"), "needs a database (sqlite://PATH or postgres://…)");
        }
        regions.push(region);
    }
    match regions.iter().filter(|r| r.default).count() {
        1 => {}
        0 => p.push(span(item), "regions", "one region must be marked default = true (it takes every other lead)"),
        _ => p.push(span(item), "regions", "only one region may be marked default = true"),
    }
    Regions { regions }
}

fn read_countries(p: &mut Problems, item: &Item, path: &str, declared: &[Region], into: &mut BTreeSet<String>) {
    for s in strings(p, item, path) {
        let codes: Vec<String> = match s.as_str() {
            "EU" | "EEA" => EU_EEA.iter().map(|c| (*c).to_owned()).collect(),
            code if CountryCode::parse_code(code).is_some() => vec![code.to_owned()],
            _ => {
                p.push(span(item), path, format!("{s:?} is not an ISO 3166-1 alpha-2 code (or \"EU\")"));
                continue;
            }
        };
        for code in codes {
            if let Some(other) = declared.iter().find(|r| r.countries.contains(&code)) {
                p.push(span(item), path, format!("{code} is already in region {:?}", other.name));
            } else {
                into.insert(code);
            }
        }
    }
}

fn strings(p: &mut Problems, item: &Item, path: &str) -> Vec<String> {
    let Some(array) = item.as_array() else {
        p.push(span(item), path, "must be an array of strings");
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in array.iter() {
        match v.as_str() {
            Some(s) => out.push(s.to_owned()),
            None => p.push(span(item), path, "must be an array of strings"),
        }
    }
    out
}

#[cfg(test)]
mod tests;
