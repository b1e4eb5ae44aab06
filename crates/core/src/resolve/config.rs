//! `[matching]`: how candidates are resolved. `fuzzy`, the `auto_merge` and `review`
//! thresholds (scores in bits), `nicknames` (groups of first names that are one person's,
//! added to the vendored table), `legal_suffixes` (legal forms the company key drops beyond
//! the built-in ones), `exact_phone` (capture also settles by E.164 phone), the mailbox rules of `[matching.email]` and the survivorship rules of
//! `[matching.survivorship]`.

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
    let mut exact_phone = defaults.exact_phone;
    let mut survivorship = defaults.survivorship.clone();
    let mut legal_suffixes = defaults.legal_suffixes.clone();
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
            ("nicknames", _) => {
                if let Some(groups) = read_nicknames(p, item, &path) {
                    params.nicknames = groups;
                }
            }
            ("legal_suffixes", _) => {
                if let Some(suffixes) = read_legal_suffixes(p, item, &path) {
                    legal_suffixes = suffixes;
                }
            }
            ("fuzzy", _) => match item.as_bool() {
                Some(b) => fuzzy = b,
                None => p.push(span(item), &path, "must be true or false"),
            },
            ("exact_phone", _) => match item.as_bool() {
                Some(b) => exact_phone = b,
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
    if exact_phone && !fuzzy {
        p.push(t.span(), "matching.exact_phone", "needs fuzzy = true: it reads the resolver's key index");
    }
    Arc::new(Matching { fuzzy, exact_phone, model: Model::new(params), survivorship, legal_suffixes, ..defaults })
}

/// `nicknames = [["Bob", "Robert", "Rob"], …]`: each inner list names one person's first
/// names (two at least, each with a letter).
fn read_nicknames(p: &mut Problems, item: &Item, path: &str) -> Option<Vec<Vec<String>>> {
    const SHAPE: &str = "must be a list of groups of names, such as [[\"Bob\", \"Robert\"]]";
    let Some(groups) = item.as_array() else {
        p.push(span(item), path, SHAPE);
        return None;
    };
    let mut out = Vec::with_capacity(groups.len());
    let mut ok = true;
    for (i, group) in groups.iter().enumerate() {
        let at = || group.span().or_else(|| span(item));
        let path = format!("{path}[{i}]");
        let Some(names) = group.as_array() else {
            p.push(at(), &path, SHAPE);
            ok = false;
            continue;
        };
        let mut list = Vec::with_capacity(names.len());
        for (j, name) in names.iter().enumerate() {
            match name.as_str().map(str::trim) {
                Some(n) if n.chars().any(char::is_alphabetic) => list.push(n.to_owned()),
                _ => {
                    p.push(name.span().or_else(at), &format!("{path}[{j}]"), "must be a first name (a string)");
                    ok = false;
                }
            }
        }
        if names.len() < 2 {
            p.push(at(), &path, "a group needs two names at least");
            ok = false;
        }
        out.push(list);
    }
    ok.then_some(out)
}

/// `legal_suffixes = ["Pty Ltd", "Kft", …]`: legal forms, written as in company names.
fn read_legal_suffixes(p: &mut Problems, item: &Item, path: &str) -> Option<crate::normalize::LegalSuffixes> {
    let Some(list) = item.as_array() else {
        p.push(span(item), path, "must be a list of legal forms, such as [\"Pty Ltd\", \"Kft\"]");
        return None;
    };
    let mut names = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let at = || v.span().or_else(|| span(item));
        match v.as_str() {
            Some(s) if crate::normalize::LegalSuffixes::new([s]).is_ok() => names.push(s),
            Some(_) => p.push(at(), &format!("{path}[{i}]"), "must have a letter or digit"),
            None => p.push(at(), &format!("{path}[{i}]"), "must be a string"),
        }
    }
    if names.len() < list.len() {
        return None;
    }
    crate::normalize::LegalSuffixes::new(names).ok()
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

#[cfg(test)]
mod tests {
    use crate::config::{SourceConfig, parse};
    use crate::ids::LeadId;
    use crate::resolve::{Verdict, find_duplicates, match_record};
    use serde_json::json;

    fn errors(toml: &str) -> Vec<String> {
        parse(toml).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_configured_nickname_group_merges_what_the_vendored_table_keeps_apart() {
        let leads = |config: &crate::config::Config| -> Vec<(LeadId, crate::matching::Record)> {
            [("Sasha", "+1 415 555 2671"), ("Alexander", "(415) 555-2671")]
                .into_iter()
                .map(|(first, phone)| {
                    let payload = json!({"first_name": first, "last_name": "Petrov", "company": "Acme", "phone": phone, "country": "US"});
                    let c = crate::pipeline::prepare(payload.as_object().unwrap(), &SourceConfig::api(), &config.picklists)
                        .unwrap();
                    (LeadId::new(), match_record(&c.fields, &c.derived))
                })
                .collect()
        };
        let merged = |toml: &str| {
            let config = parse(toml).unwrap();
            find_duplicates(&leads(&config), &config.matching).iter().any(|p| p.verdict == Verdict::Merge)
        };
        assert!(!merged(""), "relatives at one company, as far as the vendored table knows");
        assert!(merged("[matching]\nnicknames = [[\"sasha\", \"ALEXANDER\", \"Aleksandr\"]]\n"));
    }

    #[test]
    fn nickname_groups_are_checked_where_they_are_written() {
        let text = errors("[matching]\nnicknames = [[\"Bob\", 3], [\"Sasha\"], \"Robert\"]\n");
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("2:22: matching.nicknames[0][1]"), "{text:?}");
        assert!(text[1].contains("matching.nicknames[1]") && text[1].contains("two names"), "{text:?}");
        assert!(text[2].contains("matching.nicknames[2]"), "{text:?}");
        assert!(errors("[matching]\nnicknames = \"Bob\"\n")[0].contains("matching.nicknames"));
        assert!(errors("[matching]\nnicknames = [[\"Bob\", \"  \"]]\n")[0].contains("matching.nicknames[0][1]"));
    }

    #[test]
    fn a_configured_legal_suffix_leaves_the_company_key() {
        let key = |toml: &str, company: &str| {
            let config = parse(toml).unwrap();
            let payload = json!({"email": "kari@example.is", "company": company});
            let c = crate::pipeline::prepare(payload.as_object().unwrap(), &SourceConfig::api(), &config.picklists)
                .unwrap();
            c.derived.company_key
        };
        let toml = "[matching]\nlegal_suffixes = [\"ehf.\", \"Holding AG\"]\n";
        assert_eq!(key("", "Acme ehf").as_deref(), Some("acme ehf"));
        assert_eq!(key(toml, "Acme ehf"), key(toml, "Acme"));
        assert_eq!(key(toml, "ACME Holding AG").as_deref(), Some("acme"));
        // The built-in suffixes stay (Kft among them).
        assert_eq!(key(toml, "Acme Kft."), key("", "Acme"));
        let config = parse(toml).unwrap();
        assert_eq!(config.matching.legal_suffixes, config.picklists.legal_suffixes, "merges re-derive with them");
    }

    #[test]
    fn legal_suffixes_are_checked_where_they_are_written() {
        let text = errors("[matching]\nlegal_suffixes = [\"Oy\", 7, \"..\"]\n");
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("2:25: matching.legal_suffixes[1]"), "{text:?}");
        assert!(text[1].contains("matching.legal_suffixes[2]") && text[1].contains("letter"), "{text:?}");
        assert!(errors("[matching]\nlegal_suffixes = \"Oy\"\n")[0].contains("matching.legal_suffixes"));
    }
}
