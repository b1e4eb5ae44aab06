//! `[matching]`: how candidates are resolved. `fuzzy`, the `auto_merge` and `review`
//! thresholds (scores in bits), the mailbox rules of `[matching.email]` and the
//! survivorship rules of `[matching.survivorship]`.

use super::merge::{Rule, Survivorship};
use super::{Matching, Model};
use crate::config::read::{Problems, span};
use crate::source::SourceName;
use std::sync::Arc;
use toml_edit::{Item, Table, Value};

/// Reads the section over the defaults.
pub(crate) fn read(p: &mut Problems, t: &Table) -> Arc<Matching> {
    let defaults = Matching::default();
    let mut params = defaults.model.params().clone();
    let mut fuzzy = defaults.fuzzy;
    let mut survivorship = defaults.survivorship.clone();
    for (key, item) in t.iter() {
        let path = format!("matching.{key}");
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match (key, value) {
            ("survivorship", _) => {
                if let Some(table) = p.table(item, &path) {
                    read_survivorship(p, table, &mut survivorship);
                }
            }
            ("email", _) => {
                if let Some(table) = p.table(item, &path) {
                    read_email_rules(p, table, &mut params.email_rules);
                }
            }
            ("fuzzy", _) => match item.as_bool() {
                Some(b) => fuzzy = b,
                None => p.push(span(item), &path, "must be true or false"),
            },
            ("auto_merge", Some(v)) => params.thresholds.auto_merge = v,
            ("review", Some(v)) => params.thresholds.review = v,
            ("auto_merge" | "review", None) => p.push(span(item), &path, "must be a number (a score in bits)"),
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    if params.thresholds.review > params.thresholds.auto_merge {
        p.push(t.span(), "matching", "review must not be above auto_merge");
    }
    Arc::new(Matching { fuzzy, model: Model::new(params), survivorship, ..defaults })
}

/// `[matching.email]`: `plus_tag_domains = [DOMAIN, …]` (domains whose mail servers
/// deliver `local+tag` to `local`, such as a customer's own Google Workspace domain) and
/// `[[matching.email.providers]]` (`domains`, `canonical_domain`, `ignore_dots`,
/// `strip_plus_tag`), checked before the built-in providers.
fn read_email_rules(p: &mut Problems, t: &Table, rules: &mut crate::matching::EmailRules) {
    for (key, item) in t.iter() {
        let path = format!("matching.email.{key}");
        match key {
            "plus_tag_domains" => {
                if let Some(domains) = read_domains(p, item, &path) {
                    rules.plus_tag_domains = domains;
                }
            }
            "providers" => {
                let Some(array) = item.as_array_of_tables() else {
                    p.push(span(item), &path, "must be an array of tables: [[matching.email.providers]]");
                    continue;
                };
                let mut added = Vec::new();
                for (i, provider) in array.iter().enumerate() {
                    let mut rule = crate::matching::ProviderRule {
                        domains: Vec::new(),
                        canonical_domain: String::new(),
                        ignore_dots: false,
                        strip_plus_tag: true,
                    };
                    for (k, v) in provider.iter() {
                        let path = format!("matching.email.providers[{i}].{k}");
                        match k {
                            "domains" => rule.domains = read_domains(p, v, &path).unwrap_or_default(),
                            "canonical_domain" => {
                                if let Some(d) = read_domains(p, v, &path).and_then(|d| d.into_iter().next()) {
                                    rule.canonical_domain = d;
                                }
                            }
                            "ignore_dots" | "strip_plus_tag" => match v.as_bool() {
                                Some(b) if k == "ignore_dots" => rule.ignore_dots = b,
                                Some(b) => rule.strip_plus_tag = b,
                                None => p.push(span(v), &path, "must be true or false"),
                            },
                            _ => p.push(span(v), &path, "unknown key"),
                        }
                    }
                    let Some(first) = rule.domains.first().cloned() else {
                        let path = format!("matching.email.providers[{i}]");
                        p.push(provider.span(), &path, "needs domains = [\"example.com\", …]");
                        continue;
                    };
                    if rule.canonical_domain.is_empty() {
                        rule.canonical_domain = first;
                    }
                    added.push(rule);
                }
                rules.providers.splice(0..0, added);
            }
            _ => p.push(span(item), &path, "unknown key (plus_tag_domains, providers)"),
        }
    }
}

/// A domain or a list of domains, lowercased; each needs a dot and no `@` or spaces.
fn read_domains(p: &mut Problems, item: &Item, key: &str) -> Option<Vec<String>> {
    let values: Vec<&Value> = match item {
        Item::Value(Value::Array(list)) => list.iter().collect(),
        Item::Value(v @ Value::String(_)) => vec![v],
        _ => {
            p.push(span(item), key, "must be a domain or a list of domains");
            return None;
        }
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v.as_str().map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase()) {
            Some(d) if d.contains('.') && !d.contains(['@', ' ']) && !d.starts_with('.') => out.push(d),
            _ => {
                p.push(v.span().or_else(|| span(item)), key, "must be a domain such as \"example.com\"");
                return None;
            }
        }
    }
    Some(out)
}

/// `default = RULE`, `source_priority = [SOURCE, …]`, and `FIELD = RULE` per standard field.
fn read_survivorship(p: &mut Problems, t: &Table, rules: &mut Survivorship) {
    const RULES: &str = "must be \"keep_existing\", \"newest\" or \"source_priority\"";
    // Where a source_priority rule is first used: a missing list is reported there.
    let mut first_priority_rule = None;
    for (key, item) in t.iter() {
        let path = format!("matching.survivorship.{key}");
        if key == "source_priority" {
            let names: Option<Vec<SourceName>> = item
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().and_then(|s| SourceName::parse(s).ok())).collect());
            match names {
                Some(names) => rules.source_priority = names,
                None => p.push(span(item), &path, "must be a list of source names, most trusted first"),
            }
            continue;
        }
        let Some(rule) = item.as_str().and_then(Rule::parse) else {
            p.push(span(item), &path, RULES);
            continue;
        };
        if key == "default" {
            rules.default = rule;
        } else if crate::lead::STANDARD_FIELDS.contains(&key) {
            rules.fields.insert(key.to_owned(), rule);
        } else {
            p.push(span(item), &path, "not a standard field");
            continue;
        }
        if rule == Rule::SourcePriority && first_priority_rule.is_none() {
            first_priority_rule = Some((span(item), path));
        }
    }
    if let Some((at, path)) = first_priority_rule
        && rules.source_priority.is_empty()
    {
        p.push(at, &path, "source_priority rules need a source_priority list");
    }
}
