//! `[routing]`: reading and validating it. Every problem is reported, located.

use super::{MAX_WEIGHT, Rep, RoutingConfig, RoutingRule, Sla, SlaAction, Strategy, weighted_cycle};
use crate::config::read::{Node, Problems};
use crate::config::{ConfigError, parse_section};
use crate::scoring::rules::{Scope, read_condition};
use std::sync::Arc;
use std::time::Duration;
use time::{Date, Month};
use toml_edit::Item;

impl RoutingConfig {
    /// Reads the `[routing]` section of a whole `leadflow.toml`; without one, routing is off.
    pub fn parse(text: &str) -> Result<Self, Vec<ConfigError>> {
        parse_section(text, "routing", Self::read)
    }

    /// Reads the `routing` item of a parsed document; without one, routing is off.
    pub(crate) fn read(p: &mut Problems, item: Option<&Item>) -> Self {
        match item.and_then(Node::from_item) {
            Some(node) => p.within(node.span(), |p| read(p, node)),
            None => Self::default(),
        }
    }
}

fn read(p: &mut Problems, node: Node<'_>) -> RoutingConfig {
    let mut config = RoutingConfig::default();
    let Some(entries) = node.entries() else {
        p.push(node.span(), "routing", "must be a table: [routing]");
        return config;
    };
    // Reps first: rules name them.
    if let Some((_, reps)) = entries.iter().find(|(k, _)| *k == "reps") {
        config.reps = read_reps(p, *reps);
    }
    for (key, item) in &entries {
        let path = format!("routing.{key}");
        match *key {
            "reps" => {}
            "rules" => config.rules = read_rules(p, *item, &config.reps),
            "fallback_owner" => config.fallback_owner = person(p, *item, &path),
            "priority_sources" => match item.strings() {
                Some(list) if list.iter().all(|(s, _)| !s.trim().is_empty()) => {
                    config.priority_sources = list.iter().map(|(s, _)| s.trim().to_owned()).collect();
                }
                _ => p.push(item.span(), &path, "must be a list of source names, highest priority first"),
            },
            _ => p.push(item.span(), &path, "unknown key (expected fallback_owner, priority_sources, reps, rules)"),
        }
    }
    config
}

fn person(p: &mut Problems, node: Node<'_>, path: &str) -> Option<Arc<str>> {
    match node.as_str().map(str::trim) {
        Some(s) if !s.is_empty() => Some(Arc::from(s)),
        _ => {
            p.push(node.span(), path, "must be a non-empty string: a rep's id as the CRM knows them");
            None
        }
    }
}

fn read_reps(p: &mut Problems, node: Node<'_>) -> Vec<Rep> {
    let Some(list) = node.elements() else {
        p.push(node.span(), "routing.reps", "must be an array of tables: [[routing.reps]]");
        return Vec::new();
    };
    let mut reps: Vec<Rep> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("routing.reps[{i}]");
        let Some(entries) = entry.entries() else {
            p.push(entry.span(), &path, "must be a table with an id");
            continue;
        };
        let mut rep = Rep {
            id: Arc::from(""),
            weight: 1,
            daily_cap: None,
            territories: Vec::new(),
            active: true,
            away: Vec::new(),
        };
        for (key, item) in entries {
            let at = format!("{path}.{key}");
            match key {
                "id" => rep.id = person(p, item, &at).unwrap_or_else(|| Arc::from("")),
                "weight" => match item.as_integer().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if (1..=MAX_WEIGHT).contains(&n) => rep.weight = n,
                    _ => p.push(item.span(), &at, format!("must be an integer from 1 to {MAX_WEIGHT}")),
                },
                "daily_cap" => match item.as_integer().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => rep.daily_cap = Some(n),
                    None => p.push(item.span(), &at, "must be a non-negative integer: assignments per UTC day"),
                },
                "territories" => match item.strings() {
                    Some(list) if list.iter().all(|(t, _)| is_territory(t)) => {
                        rep.territories = list.iter().map(|(t, _)| t.trim().to_ascii_uppercase()).collect();
                    }
                    _ => p.push(
                        item.span(),
                        &at,
                        "must be a list of country codes (\"DE\") or country-state codes (\"US-CA\")",
                    ),
                },
                "active" => match item.as_bool() {
                    Some(b) => rep.active = b,
                    None => p.push(item.span(), &at, "must be true or false"),
                },
                "away" => rep.away = read_away(p, item, &at),
                _ => {
                    p.push(item.span(), &at, "unknown key (expected id, weight, daily_cap, territories, active, away)")
                }
            }
        }
        if rep.id.is_empty() {
            p.push(entry.span(), &path, "a rep needs an id");
        } else if reps.iter().any(|r| r.id == rep.id) {
            p.push(entry.span(), &format!("{path}.id"), format!("rep {:?} is listed twice", &*rep.id));
        } else {
            reps.push(rep);
        }
    }
    reps
}

fn is_territory(t: &str) -> bool {
    let t = t.trim();
    let (country, state) = t.split_once('-').map_or((t, None), |(c, s)| (c, Some(s)));
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_alphabetic())
        && state.is_none_or(|s| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn read_away(p: &mut Problems, node: Node<'_>, path: &str) -> Vec<(Date, Date)> {
    let Some(list) = node.elements() else {
        p.push(node.span(), path, "must be a list such as [{ from = \"2026-12-20\", to = \"2027-01-02\" }]");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, range) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let entries = range.entries().unwrap_or_default();
        let date =
            |key: &str| entries.iter().find(|(k, _)| *k == key).and_then(|(_, n)| n.as_str()).and_then(parse_date);
        match (date("from"), date("to"), entries.len()) {
            (Some(from), Some(to), 2) if from <= to => out.push((from, to)),
            (Some(_), Some(_), 2) => p.push(range.span(), &at, "`from` must not be after `to`"),
            _ => p.push(range.span(), &at, "must be { from = \"YYYY-MM-DD\", to = \"YYYY-MM-DD\" }, inclusive"),
        }
    }
    out
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn read_rules(p: &mut Problems, node: Node<'_>, reps: &[Rep]) -> Vec<RoutingRule> {
    let Some(list) = node.elements() else {
        p.push(node.span(), "routing.rules", "must be an array of tables: [[routing.rules]]");
        return Vec::new();
    };
    let mut rules: Vec<RoutingRule> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("routing.rules[{i}]");
        if let Some(rule) = read_rule(p, *entry, &path, reps) {
            if rules.iter().any(|r| r.name == rule.name) {
                p.push(entry.span(), &format!("{path}.name"), format!("a rule named {:?} already exists", &*rule.name));
            } else {
                rules.push(rule);
            }
        }
    }
    rules
}

fn read_rule(p: &mut Problems, node: Node<'_>, path: &str, reps: &[Rep]) -> Option<RoutingRule> {
    let Some(entries) = node.entries() else {
        p.push(node.span(), path, "must be a table with name, strategy and reps");
        return None;
    };
    let errors_before = p.len();
    let (mut name, mut when, mut strategy, mut team) = (None, None, None, Vec::new());
    let (mut account_based, mut fallback_owner) = (false, None);
    let (mut sla_minutes, mut sla_action, mut escalate_to) = (None, None, None);
    for (key, item) in &entries {
        let at = format!("{path}.{key}");
        match *key {
            "name" => name = person(p, *item, &at),
            "when" => when = read_condition(p, *item, &at, Scope::Routing),
            "strategy" => match item.as_str() {
                Some("round_robin") => strategy = Some(Strategy::RoundRobin),
                Some("weighted") => strategy = Some(Strategy::Weighted),
                Some("territory") => strategy = Some(Strategy::Territory),
                _ => p.push(item.span(), &at, "must be \"round_robin\", \"weighted\" or \"territory\""),
            },
            "reps" => match item.strings() {
                Some(list) if !list.is_empty() => {
                    for (j, (id, span)) in list.iter().enumerate() {
                        match reps.iter().position(|r| &*r.id == id.trim()) {
                            Some(k) if team.contains(&k) => {
                                p.push(span.clone(), &format!("{at}[{j}]"), format!("{id:?} is listed twice"));
                            }
                            Some(k) => team.push(k),
                            None => p.push(
                                span.clone(),
                                &format!("{at}[{j}]"),
                                format!("{id:?} is not a rep: declare it in [[routing.reps]]"),
                            ),
                        }
                    }
                }
                _ => p.push(item.span(), &at, "must be a non-empty list of rep ids"),
            },
            "account_based" => match item.as_bool() {
                Some(b) => account_based = b,
                None => p.push(item.span(), &at, "must be true or false"),
            },
            "fallback_owner" => fallback_owner = person(p, *item, &at),
            "sla_minutes" => match item.as_number() {
                Some(m) if m > 0.0 && m.is_finite() && m <= 525_600.0 => {
                    sla_minutes = Some(Duration::from_secs_f64(m * 60.0));
                }
                _ => p.push(item.span(), &at, "must be a positive number of minutes (at most a year)"),
            },
            "sla_action" => match item.as_str() {
                Some(a @ ("reassign" | "escalate")) => sla_action = Some((a, item.span())),
                _ => p.push(item.span(), &at, "must be \"reassign\" or \"escalate\""),
            },
            "escalate_to" => escalate_to = person(p, *item, &at),
            _ => p.push(
                item.span(),
                &at,
                "unknown key (expected name, when, strategy, reps, account_based, fallback_owner, sla_minutes, \
                 sla_action, escalate_to)",
            ),
        }
    }
    if p.len() > errors_before {
        return None;
    }
    for (present, key) in [(name.is_some(), "name"), (strategy.is_some(), "strategy"), (!team.is_empty(), "reps")] {
        if !present {
            p.push(node.span(), path, format!("a rule needs `{key}`"));
        }
    }
    let sla = match (sla_minutes, sla_action, escalate_to) {
        (None, None, None) => None,
        (Some(after), Some(("escalate", _)), Some(to)) => Some(Sla { after, action: SlaAction::Escalate(to) }),
        (Some(_), Some(("escalate", span)), None) => {
            p.push(span, &format!("{path}.sla_action"), "escalation needs `escalate_to`");
            None
        }
        (Some(after), Some(_) | None, None) => Some(Sla { after, action: SlaAction::Reassign }),
        (Some(_), _, Some(_)) => {
            p.push(node.span(), &format!("{path}.escalate_to"), "applies with sla_action = \"escalate\" only");
            None
        }
        (None, _, _) => {
            p.push(node.span(), &format!("{path}.sla_minutes"), "sla_action and escalate_to need sla_minutes");
            None
        }
    };
    if p.len() > errors_before {
        return None;
    }
    let strategy = strategy?;
    let weights: Vec<u32> = team.iter().map(|&i| reps[i].weight).collect();
    let cycle = match strategy {
        Strategy::Weighted => weighted_cycle(&team, &weights),
        Strategy::RoundRobin | Strategy::Territory => team.clone(),
    };
    Some(RoutingRule { name: name?, when, strategy, reps: team, account_based, fallback_owner, sla, cycle })
}
