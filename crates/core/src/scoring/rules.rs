//! The scoring configuration: `[scoring]` with its threshold, decay, data-quality gate
//! and rules, parsed and validated in one pass that reports every problem with its
//! line, column and dotted key. The format is documented at the crate root.

use crate::config::read::{Node, Problems};
use crate::config::{ConfigError, parse_section};
use crate::scoring::glob::Glob;
use crate::scoring::view::{DERIVED_FACTS, is_lead_attribute};
use std::sync::Arc;
use toml_edit::{Item, Value as TomlValue};

pub const DEFAULT_MQL_THRESHOLD: i64 = 60;
pub const DEFAULT_HALF_LIFE_DAYS: f64 = 30.0;
const SECONDS_PER_DAY: f64 = 86_400.0;

#[derive(Clone, Debug, PartialEq)]
pub struct ScoringConfig {
    /// A lead whose total reaches this and passes the gate becomes an MQL.
    pub mql_threshold: i64,
    /// Behavioural points of rules with `decay = true` halve every this many days.
    pub decay_half_life_days: f64,
    /// What a lead must have before it can become an MQL.
    pub gate: Vec<GateField>,
    /// In the order written; the breakdown keeps that order.
    pub rules: Vec<Rule>,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            mql_threshold: DEFAULT_MQL_THRESHOLD,
            decay_half_life_days: DEFAULT_HALF_LIFE_DAYS,
            gate: vec![GateField { alternatives: vec!["email".to_owned()] }],
            rules: Vec::new(),
        }
    }
}

/// One gate entry: the lead must have at least one of these attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateField {
    pub alternatives: Vec<String>,
}

impl GateField {
    /// As written in the configuration, e.g. `email|phone`.
    pub fn label(&self) -> String {
        self.alternatives.join("|")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: Arc<str>,
    /// Given once for a lead rule, per matching event for an event rule; may be negative.
    pub points: f64,
    pub body: RuleBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleBody {
    /// Firmographic: reads the lead's attributes.
    Lead(Condition),
    /// Behavioural: counts the lead's events.
    Events(EventRule),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventRule {
    pub when: EventCondition,
    /// The most this rule gives (or, for negative points, takes).
    pub cap: Option<f64>,
    /// Each event's points halve with every half-life of its age.
    pub decay: bool,
    /// Give `points` once when `min_count` events match, instead of per event.
    pub once: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventCondition {
    /// Event types that match; empty for any type (`event = "*"`).
    pub kinds: Vec<Box<str>>,
    pub url: Option<Glob>,
    /// Only events at most this old count.
    pub within_secs: Option<f64>,
    /// The rule gives nothing until this many events match.
    pub min_count: u32,
    /// A condition on the event's properties.
    pub properties: Option<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Test { field: Box<str>, test: Test },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// A test of one attribute. On an absent attribute every test fails except
/// `exists = false`.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Is(Scalar),
    In(ScalarSet),
    /// The attribute is present and not in the list.
    NotIn(ScalarSet),
    Range {
        gte: Option<f64>,
        lte: Option<f64>,
    },
    Exists(bool),
    /// Stored in lower case.
    Contains(Box<str>),
    Matches(Glob),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Text(Box<str>),
    Number(f64),
    Bool(bool),
}

/// The values of an `in` list, split by type; texts lower-cased and sorted so a
/// lookup is a binary search whatever the list's length (competitor domain lists grow).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScalarSet {
    pub(crate) texts: Vec<Box<str>>,
    pub(crate) numbers: Vec<f64>,
    pub(crate) bools: Vec<bool>,
}

impl ScalarSet {
    fn insert(&mut self, s: Scalar) {
        match s {
            Scalar::Text(t) => self.texts.push(t.to_ascii_lowercase().into()),
            Scalar::Number(n) => self.numbers.push(n),
            Scalar::Bool(b) => self.bools.push(b),
        }
    }

    fn finish(mut self) -> Self {
        self.texts.sort_unstable();
        self.texts.dedup();
        self
    }
}

impl ScoringConfig {
    /// Reads the `[scoring]` section of a whole `leadflow.toml`; without one, the defaults.
    pub fn parse(text: &str) -> Result<Self, Vec<ConfigError>> {
        parse_section(text, "scoring", Self::read)
    }

    /// Reads the `scoring` item of a parsed document, over the defaults.
    pub(crate) fn read(p: &mut Problems, item: Option<&Item>) -> Self {
        let mut config = Self::default();
        if let Some(node) = item.and_then(Node::from_item) {
            p.within(node.span(), |p| read_scoring(p, node, &mut config));
        }
        config
    }

    /// The half-life in seconds, for decay arithmetic.
    pub(crate) fn half_life_secs(&self) -> f64 {
        self.decay_half_life_days * SECONDS_PER_DAY
    }
}

fn read_scoring(p: &mut Problems, node: Node<'_>, config: &mut ScoringConfig) {
    let Some(entries) = node.entries() else {
        p.push(node.span(), "scoring", "must be a table: [scoring]");
        return;
    };
    for (key, item) in entries {
        let path = format!("scoring.{key}");
        match key {
            "mql_threshold" => match item.as_integer() {
                Some(n) => config.mql_threshold = n,
                None => p.push(item.span(), &path, "must be an integer (points)"),
            },
            "decay_half_life_days" => match item.as_number() {
                Some(d) if d > 0.0 && d.is_finite() => config.decay_half_life_days = d,
                _ => p.push(item.span(), &path, "must be a positive number of days"),
            },
            "gate" => config.gate = read_gate(p, item, &path),
            "rules" => config.rules = read_rules(p, item, &path),
            _ => p.push(item.span(), &path, "unknown key (expected mql_threshold, decay_half_life_days, gate, rules)"),
        }
    }
}

fn read_gate(p: &mut Problems, node: Node<'_>, path: &str) -> Vec<GateField> {
    let Some(list) = node.elements() else {
        p.push(node.span(), path, "must be a list of fields such as [\"email\", \"company|website\"]");
        return Vec::new();
    };
    let mut gate = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let alternatives: Option<Vec<String>> =
            entry.as_str().map(|s| s.split('|').map(|f| f.trim().to_owned()).collect());
        match alternatives {
            Some(alts) if alts.iter().all(|f| is_lead_attribute(f)) => gate.push(GateField { alternatives: alts }),
            _ => p.push(
                entry.span(),
                &format!("{path}[{i}]"),
                "must name a lead field, derived fact or custom.NAME, or several joined by |",
            ),
        }
    }
    gate
}

fn read_rules(p: &mut Problems, node: Node<'_>, path: &str) -> Vec<Rule> {
    let Some(list) = node.elements() else {
        p.push(node.span(), path, "must be an array of tables: [[scoring.rules]]");
        return Vec::new();
    };
    let mut rules: Vec<Rule> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if let Some(rule) = read_rule(p, *entry, &path) {
            if rules.iter().any(|r| r.name == rule.name) {
                p.push(entry.span(), &format!("{path}.name"), format!("a rule named {:?} already exists", rule.name));
            } else {
                rules.push(rule);
            }
        }
    }
    rules
}

fn read_rule(p: &mut Problems, node: Node<'_>, path: &str) -> Option<Rule> {
    let Some(entries) = node.entries() else {
        p.push(node.span(), path, "must be a table with name, when and points");
        return None;
    };
    let errors_before = p.len();
    let (mut name, mut points, mut body) = (None, None, None);
    let (mut cap, mut decay, mut once) = (None, None, None);
    for (key, item) in entries {
        let at = format!("{path}.{key}");
        match key {
            "name" => match item.as_str().map(str::trim) {
                Some(s) if !s.is_empty() => name = Some(Arc::<str>::from(s)),
                _ => p.push(item.span(), &at, "must be a non-empty string"),
            },
            "points" => match item.as_number() {
                Some(n) if n != 0.0 && n.is_finite() => points = Some(n),
                _ => p.push(item.span(), &at, "must be a non-zero number (negative to take points away)"),
            },
            "when" => body = read_when(p, item, &at),
            "cap" => match item.as_number() {
                Some(n) if n > 0.0 && n.is_finite() => cap = Some((n, item.span())),
                _ => p.push(item.span(), &at, "must be a positive number: the most points this rule gives or takes"),
            },
            "decay" => match item.as_bool() {
                Some(b) => decay = Some((b, item.span())),
                None => p.push(item.span(), &at, "must be true or false"),
            },
            "once" => match item.as_bool() {
                Some(b) => once = Some((b, item.span())),
                None => p.push(item.span(), &at, "must be true or false"),
            },
            _ => p.push(item.span(), &at, "unknown key (expected name, when, points, cap, decay, once)"),
        }
    }
    for (present, key) in [(name.is_some(), "name"), (points.is_some(), "points"), (body.is_some(), "when")] {
        if !present && p.len() == errors_before {
            p.push(node.span(), path, format!("a rule needs `{key}`"));
        }
    }
    let body = match body? {
        RuleBody::Lead(condition) => {
            for (option, key) in [(cap.map(|c| c.1), "cap"), (decay.map(|d| d.1), "decay"), (once.map(|o| o.1), "once")]
            {
                if let Some(span) = option {
                    p.push(
                        span,
                        &format!("{path}.{key}"),
                        "applies to event rules only: a lead rule gives its points once",
                    );
                }
            }
            RuleBody::Lead(condition)
        }
        RuleBody::Events(mut rule) => {
            rule.once = once.is_some_and(|o| o.0);
            rule.decay = decay.is_some_and(|d| d.0);
            if let (true, Some((_, span))) = (rule.once, &cap) {
                p.push(span.clone(), &format!("{path}.cap"), "a rule with once = true gives its points once: no cap");
            }
            rule.cap = cap.map(|c| c.0);
            RuleBody::Events(rule)
        }
    };
    Some(Rule { name: name?, points: points?, body })
}

/// Which names a condition may test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The lead's attributes: names are checked against the known ones.
    Lead,
    /// An event's properties: free-form.
    Properties,
    /// A routing rule: the lead's attributes plus what routing also reads
    /// ([`crate::scoring::routing::ROUTING_FACTS`]).
    Routing,
}

/// A rule's `when`: an event condition or a lead condition.
fn read_when(p: &mut Problems, node: Node<'_>, path: &str) -> Option<RuleBody> {
    let entries = node.entries()?;
    if entries.iter().any(|(k, _)| *k == "event") {
        return read_event_condition(p, node, &entries, path).map(RuleBody::Events);
    }
    read_condition(p, node, path, Scope::Lead).map(RuleBody::Lead)
}

fn read_event_condition(
    p: &mut Problems,
    node: Node<'_>,
    entries: &[(&str, Node<'_>)],
    path: &str,
) -> Option<EventRule> {
    let errors_before = p.len();
    let mut when = EventCondition { kinds: Vec::new(), url: None, within_secs: None, min_count: 1, properties: None };
    for (key, item) in entries {
        let at = format!("{path}.{key}");
        match *key {
            "event" => match item.strings() {
                Some(kinds) if !kinds.is_empty() && kinds.iter().all(|(k, _)| !k.trim().is_empty()) => {
                    if !kinds.iter().any(|(k, _)| *k == "*") {
                        when.kinds = kinds.iter().map(|(k, _)| Box::from(k.trim())).collect();
                    }
                }
                _ => p.push(item.span(), &at, "must be an event type, a list of them, or \"*\" for any"),
            },
            "url_matches" => match item.as_str() {
                Some(s) if !s.is_empty() => when.url = Some(Glob::new(s)),
                _ => p.push(item.span(), &at, "must be a glob such as \"*/pricing*\""),
            },
            "within_days" => match item.as_number() {
                Some(d) if d > 0.0 && d.is_finite() => when.within_secs = Some(d * SECONDS_PER_DAY),
                _ => p.push(item.span(), &at, "must be a positive number of days"),
            },
            "min_count" => match item.as_integer().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => when.min_count = n,
                _ => p.push(item.span(), &at, "must be a positive integer"),
            },
            "where" => when.properties = read_condition(p, *item, &at, Scope::Properties),
            _ => p.push(
                item.span().or_else(|| node.span()),
                &at,
                "unknown key in an event condition (expected event, url_matches, within_days, min_count, where)",
            ),
        }
    }
    (p.len() == errors_before).then_some(EventRule { when, cap: None, decay: false, once: false })
}

const OPERATORS: &[&str] = &["is", "in", "not_in", "gte", "lte", "exists", "contains", "matches"];

pub(crate) fn read_condition(p: &mut Problems, node: Node<'_>, path: &str, scope: Scope) -> Option<Condition> {
    let Some(entries) = node.entries() else {
        p.push(node.span(), path, "must be a condition table such as { field = \"industry\", is = \"software\" }");
        return None;
    };
    let has = |k: &str| entries.iter().any(|(key, _)| *key == k);
    if has("event") {
        p.push(node.span(), path, "an event condition stands alone as a rule's `when`, not inside another condition");
        return None;
    }
    if let Some((key, item)) = entries.iter().find(|(k, _)| matches!(*k, "all" | "any" | "not")) {
        if entries.len() > 1 {
            p.push(node.span(), path, format!("`{key}` must be the condition's only key"));
            return None;
        }
        let at = format!("{path}.{key}");
        if *key == "not" {
            return read_condition(p, *item, &at, scope).map(|c| Condition::Not(Box::new(c)));
        }
        let Some(list) = item.elements().filter(|l| !l.is_empty()) else {
            p.push(item.span(), &at, "must be a non-empty list of conditions");
            return None;
        };
        let errors_before = p.len();
        let parts: Vec<Condition> =
            list.iter().enumerate().filter_map(|(i, c)| read_condition(p, *c, &format!("{at}[{i}]"), scope)).collect();
        if p.len() > errors_before {
            return None;
        }
        return Some(if *key == "all" { Condition::All(parts) } else { Condition::Any(parts) });
    }
    read_test(p, node, &entries, path, scope)
}

fn read_test(
    p: &mut Problems,
    node: Node<'_>,
    entries: &[(&str, Node<'_>)],
    path: &str,
    scope: Scope,
) -> Option<Condition> {
    let errors_before = p.len();
    let mut field: Option<&str> = None;
    let mut test: Option<Test> = None;
    let mut set_test = |p: &mut Problems, span, at: &str, t: Test| {
        if test.is_some() {
            p.push(span, at, "a condition tests one thing: use all = [...] to combine");
        } else {
            test = Some(t);
        }
    };
    let (mut gte, mut lte) = (None, None);
    for (key, item) in entries {
        let at = format!("{path}.{key}");
        let span = item.span().or_else(|| node.span());
        match *key {
            "field" | "derived" => {
                if field.is_some() {
                    p.push(span, &at, "give either field or derived, once");
                    continue;
                }
                let Some(name) = item.as_str() else {
                    p.push(span, &at, "must be a string");
                    continue;
                };
                let known = match (scope, *key) {
                    (Scope::Properties, _) => !name.is_empty(),
                    (Scope::Lead | Scope::Routing, "derived") => DERIVED_FACTS.contains(&name),
                    (Scope::Lead, _) => is_lead_attribute(name),
                    (Scope::Routing, _) => {
                        is_lead_attribute(name) || crate::scoring::routing::ROUTING_FACTS.contains(&name)
                    }
                };
                if known {
                    field = Some(name);
                } else if *key == "derived" {
                    p.push(span, &at, format!("unknown derived fact {name:?} (known: {})", DERIVED_FACTS.join(", ")));
                } else {
                    p.push(
                        span,
                        &at,
                        format!("unknown field {name:?}: use a standard field, a derived fact or custom.NAME"),
                    );
                }
            }
            "is" => match scalar(item) {
                Some(s) => set_test(p, span, &at, Test::Is(s)),
                None => p.push(span, &at, "must be a string, number or boolean"),
            },
            "in" | "not_in" => {
                let values: Option<Vec<Scalar>> =
                    item.elements().filter(|l| !l.is_empty()).and_then(|l| l.iter().map(scalar).collect());
                match values {
                    Some(values) => {
                        let mut set = ScalarSet::default();
                        values.into_iter().for_each(|v| set.insert(v));
                        let set = set.finish();
                        set_test(p, span, &at, if *key == "in" { Test::In(set) } else { Test::NotIn(set) });
                    }
                    None => p.push(span, &at, "must be a non-empty list of strings, numbers or booleans"),
                }
            }
            "gte" | "lte" => match item.as_number() {
                Some(n) if n.is_finite() => {
                    if *key == "gte" {
                        gte = Some(n)
                    } else {
                        lte = Some(n)
                    }
                }
                _ => p.push(span, &at, "must be a number"),
            },
            "exists" => match item.as_bool() {
                Some(b) => set_test(p, span, &at, Test::Exists(b)),
                None => p.push(span, &at, "must be true or false"),
            },
            "contains" => match item.as_str() {
                Some(s) if !s.is_empty() => set_test(p, span, &at, Test::Contains(s.to_ascii_lowercase().into())),
                _ => p.push(span, &at, "must be a non-empty string"),
            },
            "matches" => match item.as_str() {
                Some(s) if !s.is_empty() => set_test(p, span, &at, Test::Matches(Glob::new(s))),
                _ => p.push(span, &at, "must be a glob such as \"*@rival.*\""),
            },
            _ => p.push(
                span,
                &at,
                format!("unknown key (a condition has field or derived, and one of {})", OPERATORS.join(", ")),
            ),
        }
    }
    if gte.is_some() || lte.is_some() {
        set_test(p, node.span(), path, Test::Range { gte, lte });
    }
    if p.len() > errors_before {
        return None;
    }
    match (field, test) {
        (Some(field), Some(test)) => Some(Condition::Test { field: field.into(), test }),
        (None, _) => {
            p.push(node.span(), path, "a condition needs field, derived, event, all, any or not");
            None
        }
        (Some(_), None) => {
            p.push(node.span(), path, format!("a condition needs one of {}", OPERATORS.join(", ")));
            None
        }
    }
}

fn scalar(node: &Node<'_>) -> Option<Scalar> {
    let Node::Value(v) = node else { return None };
    match v {
        TomlValue::String(s) => Some(Scalar::Text(s.value().as_str().into())),
        TomlValue::Integer(i) => Some(Scalar::Number(*i.value() as f64)),
        TomlValue::Float(f) => Some(Scalar::Number(*f.value())).filter(|_| f.value().is_finite()),
        TomlValue::Boolean(b) => Some(Scalar::Bool(*b.value())),
        _ => None,
    }
}
