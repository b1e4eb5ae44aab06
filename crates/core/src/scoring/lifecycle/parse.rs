//! `[lifecycle]`: reading, validating and writing the contract, and its defaults.

use super::{LifecycleContract, TransitionRule, Trigger};
use crate::config::read::{Node, Problems, Spanned};
use crate::config::{ConfigError, parse_section};
use crate::scoring::is_snake_name;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use toml_edit::Item;

const DEFAULT_STAGES: &[&str] =
    &["new", "engaged", "mql", "sal", "sql", "opportunity", "customer", "disqualified", "recycled"];

const DEFAULT_DISQUALIFY_REASONS: &[&str] = &[
    "no_budget",
    "no_authority",
    "no_need",
    "bad_timing",
    "not_a_fit",
    "competitor",
    "student",
    "spam",
    "duplicate",
    "unreachable",
];

/// The default transitions, by stage name: (from, to, reason required, trigger).
const DEFAULT_TRANSITIONS: &[(&[&str], &str, bool, Option<Trigger>)] = &[
    (&["new"], "engaged", false, Some(Trigger::FirstEvent)),
    (&["new", "engaged"], "mql", false, Some(Trigger::Score)),
    (&["mql"], "sal", false, None),
    (&["sal"], "sql", false, None),
    (&["sql"], "opportunity", false, None),
    (&["opportunity"], "customer", false, None),
    // Sales sends a lead back to nurturing with a word on why.
    (&["mql", "sal", "sql", "opportunity"], "recycled", true, None),
    (&["new", "engaged", "mql", "sal", "sql", "opportunity", "recycled"], "disqualified", true, None),
    // Nurturing picks a recycled lead up again; a disqualification can be undone, with a reason.
    (&["recycled"], "engaged", false, None),
    (&["disqualified"], "recycled", true, None),
];

impl Default for LifecycleContract {
    fn default() -> Self {
        let index = |name: &str| DEFAULT_STAGES.iter().position(|s| *s == name).unwrap_or(0);
        Self {
            stages: DEFAULT_STAGES.iter().map(|s| Arc::from(*s)).collect(),
            initial: index("new"),
            handoff: index("mql"),
            disqualified: Some(index("disqualified")),
            disqualify_reasons: DEFAULT_DISQUALIFY_REASONS.iter().map(|s| (*s).to_owned()).collect(),
            transitions: DEFAULT_TRANSITIONS
                .iter()
                .map(|(from, to, reason_required, automatic)| TransitionRule {
                    from: from.iter().map(|f| index(f)).collect(),
                    to: index(to),
                    reason_required: *reason_required,
                    automatic: *automatic,
                })
                .collect(),
        }
    }
}

impl LifecycleContract {
    /// Reads the `[lifecycle]` section of a whole `leadflow.toml`; without one, the
    /// default contract. Every problem is reported, located.
    pub fn parse(text: &str) -> Result<Self, Vec<ConfigError>> {
        parse_section(text, "lifecycle", Self::read)
    }

    /// Reads the `lifecycle` item of a parsed document. A contract with problems is
    /// replaced by the default one, so what is checked against the contract (feedback
    /// stages and reasons) is checked against a consistent one.
    pub(crate) fn read(p: &mut Problems, item: Option<&Item>) -> Self {
        let Some(node) = item.and_then(Node::from_item) else { return Self::default() };
        let before = p.len();
        match p.within(node.span(), |p| read(p, node)) {
            Some(contract) if p.len() == before => contract,
            _ => Self::default(),
        }
    }

    /// The contract as a `[lifecycle]` section that [`LifecycleContract::parse`] reads
    /// back to the same contract.
    pub fn to_toml(&self) -> String {
        let quoted = |names: &mut dyn Iterator<Item = &str>| {
            let items: Vec<String> = names.map(|n| format!("\"{n}\"")).collect();
            format!("[{}]", items.join(", "))
        };
        let mut out = String::from("[lifecycle]\n");
        let _ = writeln!(out, "stages = {}", quoted(&mut self.stages()));
        let _ = writeln!(out, "initial = \"{}\"", self.initial());
        let _ = writeln!(out, "handoff = \"{}\"", self.handoff_stage());
        if let Some(d) = self.disqualified {
            let _ = writeln!(out, "disqualified = \"{}\"", self.stages[d]);
        }
        let _ =
            writeln!(out, "disqualify_reasons = {}", quoted(&mut self.disqualify_reasons.iter().map(String::as_str)));
        for t in &self.transitions {
            out.push_str("\n[[lifecycle.transitions]]\n");
            let _ = writeln!(out, "from = {}", quoted(&mut t.from.iter().map(|&i| &*self.stages[i])));
            let _ = writeln!(out, "to = \"{}\"", self.stages[t.to]);
            if t.reason_required {
                out.push_str("reason_required = true\n");
            }
            if let Some(trigger) = t.automatic {
                let _ = writeln!(out, "automatic = \"{}\"", trigger.as_str());
            }
        }
        out
    }
}

/// A stage name as written, with where it was written.
type Named<'a> = Spanned<&'a str>;

/// A `[[lifecycle.transitions]]` entry before stage names are resolved.
struct RawTransition<'a> {
    path: String,
    span: Option<Range<usize>>,
    from: Vec<Named<'a>>,
    to: Named<'a>,
    reason_required: Option<(bool, Option<Range<usize>>)>,
    automatic: Option<(Trigger, Option<Range<usize>>)>,
}

fn read(p: &mut Problems, node: Node<'_>) -> Option<LifecycleContract> {
    let Some(entries) = node.entries() else {
        p.push(node.span(), "lifecycle", "must be a table: [lifecycle]");
        return None;
    };
    let mut stages: Option<(Vec<Named<'_>>, Option<Range<usize>>)> = None;
    let (mut initial, mut handoff, mut disqualified) = (None, None, None);
    let mut reasons: Option<(Vec<String>, Option<Range<usize>>)> = None;
    let mut transitions: Option<(Vec<RawTransition<'_>>, Option<Range<usize>>)> = None;
    for (key, item) in entries {
        let path = format!("lifecycle.{key}");
        match key {
            "stages" => stages = names(p, item, &path).map(|list| (list, item.span())),
            "initial" | "handoff" | "disqualified" => {
                let Some(name) = item.as_str() else {
                    p.push(item.span(), &path, "must be a stage name");
                    continue;
                };
                let slot = match key {
                    "initial" => &mut initial,
                    "handoff" => &mut handoff,
                    _ => &mut disqualified,
                };
                *slot = Some((name, item.span()));
            }
            "disqualify_reasons" => {
                reasons = names(p, item, &path)
                    .map(|list| (list.into_iter().map(|(n, _)| n.to_owned()).collect(), item.span()));
            }
            "transitions" => transitions = read_transitions(p, item, &path).map(|list| (list, item.span())),
            _ => p.push(
                item.span(),
                &path,
                "unknown key (expected stages, initial, handoff, disqualified, disqualify_reasons, transitions)",
            ),
        }
    }
    let (stages, transitions) = match (stages, transitions) {
        (Some((s, _)), Some((t, _))) => (s, t),
        // Names and reasons may be set without restating the default stages.
        (None, None) => (DEFAULT_STAGES.iter().map(|s| (*s, None)).collect(), default_raw_transitions()),
        (Some((_, span)), None) => {
            p.push(span, "lifecycle.stages", "custom stages need their [[lifecycle.transitions]]");
            return None;
        }
        (None, Some((_, span))) => {
            p.push(span, "lifecycle.transitions", "custom transitions need the stages listed: stages = [...]");
            return None;
        }
    };
    if stages.is_empty() {
        return None;
    }
    let initial = match initial {
        Some(named) => resolve(p, &stages, named, "lifecycle.initial"),
        None => Some(0),
    };
    let handoff = match handoff {
        Some(named) => resolve(p, &stages, named, "lifecycle.handoff"),
        None => {
            let found = position(&stages, "mql");
            if found.is_none() {
                p.push(
                    None,
                    "lifecycle.handoff",
                    "there is no stage `mql`: name the handoff stage, e.g. handoff = \"mql\"",
                );
            }
            found
        }
    };
    let disqualified = match disqualified {
        Some(named) => Some(resolve(p, &stages, named, "lifecycle.disqualified")?),
        None => position(&stages, "disqualified"),
    };
    let (initial, handoff) = (initial?, handoff?);
    let ends = Ends { initial, handoff, disqualified };
    let transitions = resolve_transitions(p, &stages, transitions, ends);
    let (disqualify_reasons, reasons_span) = match reasons {
        Some((list, span)) => (list, span),
        None if disqualified.is_some() => (DEFAULT_DISQUALIFY_REASONS.iter().map(|s| (*s).to_owned()).collect(), None),
        None => (Vec::new(), None),
    };
    let contract = LifecycleContract {
        stages: stages.iter().map(|(s, _)| Arc::from(*s)).collect(),
        initial,
        handoff,
        disqualified,
        disqualify_reasons,
        transitions,
    };
    check_graph(p, &contract, &stages, reasons_span);
    Some(contract)
}

fn default_raw_transitions() -> Vec<RawTransition<'static>> {
    DEFAULT_TRANSITIONS
        .iter()
        .enumerate()
        .map(|(i, (from, to, reason_required, automatic))| RawTransition {
            path: format!("lifecycle.transitions[{i}]"),
            span: None,
            from: from.iter().map(|f| (*f, None)).collect(),
            to: (to, None),
            reason_required: Some((*reason_required, None)),
            automatic: automatic.map(|a| (a, None)),
        })
        .collect()
}

/// A list of unique snake_case names (stages or reasons).
fn names<'a>(p: &mut Problems, node: Node<'a>, path: &str) -> Option<Vec<Named<'a>>> {
    let Some(list) = node.elements().filter(|l| !l.is_empty()) else {
        p.push(node.span(), path, "must be a non-empty list of names");
        return None;
    };
    let mut out: Vec<Named<'a>> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match item.as_str() {
            Some(name) if !is_snake_name(name) => {
                p.push(item.span(), &at, "must be a snake_case name (a-z, 0-9, _), starting with a letter")
            }
            Some(name) if out.iter().any(|(n, _)| *n == name) => {
                p.push(item.span(), &at, format!("`{name}` is listed twice"))
            }
            Some(name) => out.push((name, item.span())),
            None => p.push(item.span(), &at, "must be a string"),
        }
    }
    Some(out)
}

fn read_transitions<'a>(p: &mut Problems, node: Node<'a>, path: &str) -> Option<Vec<RawTransition<'a>>> {
    let Some(list) = node.elements() else {
        p.push(node.span(), path, "must be an array of tables: [[lifecycle.transitions]]");
        return None;
    };
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let Some(entries) = entry.entries() else {
            p.push(entry.span(), &path, "must be a table with from and to");
            continue;
        };
        let (mut from, mut to, mut reason_required, mut automatic) = (None, None, None, None);
        for (key, item) in entries {
            let at = format!("{path}.{key}");
            match key {
                "from" => match item.strings() {
                    Some(list) if !list.is_empty() => from = Some(list),
                    _ => p.push(item.span(), &at, "must be a stage name, a list of them, or \"*\" for every other stage"),
                },
                "to" => match item.as_str() {
                    Some(name) => to = Some((name, item.span())),
                    None => p.push(item.span(), &at, "must be a stage name"),
                },
                "reason_required" => match item.as_bool() {
                    Some(b) => reason_required = Some((b, item.span())),
                    None => p.push(item.span(), &at, "must be true or false"),
                },
                "automatic" => match item.as_str() {
                    Some("score") => automatic = Some((Trigger::Score, item.span())),
                    Some("first_event") => automatic = Some((Trigger::FirstEvent, item.span())),
                    _ => p.push(
                        item.span(),
                        &at,
                        "must be \"score\" (threshold reached, gate passed) or \"first_event\" (first behavioural event)",
                    ),
                },
                _ => p.push(item.span(), &at, "unknown key (expected from, to, reason_required, automatic)"),
            }
        }
        match (from, to) {
            (Some(from), Some(to)) => {
                out.push(RawTransition { path, span: entry.span(), from, to, reason_required, automatic })
            }
            (None, _) => p.push(entry.span(), &format!("{path}.from"), "a transition needs `from`"),
            (_, None) => p.push(entry.span(), &format!("{path}.to"), "a transition needs `to`"),
        }
    }
    Some(out)
}

fn position(stages: &[Named<'_>], name: &str) -> Option<usize> {
    stages.iter().position(|(s, _)| *s == name)
}

fn resolve(p: &mut Problems, stages: &[Named<'_>], (name, span): Named<'_>, path: &str) -> Option<usize> {
    let found = position(stages, name);
    if found.is_none() {
        p.push(span, path, unknown_stage(stages, name));
    }
    found
}

fn unknown_stage(stages: &[Named<'_>], name: &str) -> String {
    let known: Vec<&str> = stages.iter().map(|(s, _)| *s).collect();
    format!("unknown stage `{name}` (stages: {})", known.join(", "))
}

/// The stages with a role.
#[derive(Clone, Copy)]
struct Ends {
    initial: usize,
    handoff: usize,
    disqualified: Option<usize>,
}

fn resolve_transitions(
    p: &mut Problems,
    stages: &[Named<'_>],
    raw: Vec<RawTransition<'_>>,
    ends: Ends,
) -> Vec<TransitionRule> {
    let mut out: Vec<(TransitionRule, String)> = Vec::new();
    for t in raw {
        let Some(to) = resolve(p, stages, t.to.clone(), &format!("{}.to", t.path)) else { continue };
        let mut from = Vec::new();
        for (name, span) in &t.from {
            if *name == "*" {
                from.extend((0..stages.len()).filter(|&i| i != to));
            } else if let Some(i) = resolve(p, stages, (name, span.clone()), &format!("{}.from", t.path)) {
                if i == to {
                    p.push(span.clone(), &format!("{}.from", t.path), format!("`{name}` cannot transition to itself"));
                }
                from.push(i);
            }
        }
        from.sort_unstable();
        from.dedup();
        let mut reason_required = t.reason_required.as_ref().is_some_and(|r| r.0);
        if Some(to) == ends.disqualified {
            if let Some((false, span)) = &t.reason_required {
                p.push(
                    span.clone().or(t.span.clone()),
                    &format!("{}.reason_required", t.path),
                    "entering the disqualified stage always needs a reason from disqualify_reasons",
                );
            }
            reason_required = true;
        }
        if let Some((trigger, span)) = &t.automatic {
            let at = format!("{}.automatic", t.path);
            let span = span.clone().or(t.span.clone());
            if reason_required {
                p.push(span.clone(), &at, "an automatic transition cannot require a reason: no person gives one");
            }
            match trigger {
                Trigger::Score if to != ends.handoff => p.push(
                    span,
                    &at,
                    format!("the score trigger leads to the handoff stage `{}` only", stages[ends.handoff].0),
                ),
                // Every lead with an event would leave any later stage at once.
                Trigger::FirstEvent if from.iter().any(|&f| f != ends.initial) => p.push(
                    span,
                    &at,
                    format!("the first_event trigger starts from the initial stage `{}` only", stages[ends.initial].0),
                ),
                _ => {}
            }
        }
        for (earlier, earlier_path) in &out {
            if earlier.to == to
                && let Some(&f) = from.iter().find(|f| earlier.from.contains(f))
            {
                p.push(
                    t.span.clone(),
                    &t.path,
                    format!(
                        "the transition `{}` → `{}` is already declared by {earlier_path}",
                        stages[f].0, stages[to].0
                    ),
                );
            }
        }
        let rule = TransitionRule { from, to, reason_required, automatic: t.automatic.map(|a| a.0) };
        out.push((rule, t.path));
    }
    out.into_iter().map(|(rule, _)| rule).collect()
}

/// Whole-contract checks: the handoff stage is reached by score, every stage can be
/// reached from the initial one, and a disqualification can always name its reason.
fn check_graph(p: &mut Problems, c: &LifecycleContract, stages: &[Named<'_>], reasons_span: Option<Range<usize>>) {
    if c.handoff == c.initial {
        p.push(None, "lifecycle.handoff", "the handoff stage cannot be the initial stage");
    }
    if !c.transitions.iter().any(|t| t.automatic == Some(Trigger::Score) && t.to == c.handoff) {
        p.push(
            None,
            "lifecycle.transitions",
            format!(
                "no transition into the handoff stage `{}` has automatic = \"score\": qualified leads would never be handed off",
                c.stages[c.handoff]
            ),
        );
    }
    let mut reached = vec![false; c.stages.len()];
    reached[c.initial] = true;
    let mut queue = vec![c.initial];
    while let Some(from) = queue.pop() {
        for t in c.transitions.iter().filter(|t| t.from.contains(&from)) {
            if !reached[t.to] {
                reached[t.to] = true;
                queue.push(t.to);
            }
        }
    }
    for (i, (name, span)) in stages.iter().enumerate() {
        if !reached[i] {
            p.push(
                span.clone(),
                &format!("lifecycle.stages[{i}]"),
                format!("stage `{name}` cannot be reached from `{}` by any transition", c.stages[c.initial]),
            );
        }
    }
    match c.disqualified {
        Some(d) if c.disqualify_reasons.is_empty() && c.transitions.iter().any(|t| t.to == d) => {
            p.push(reasons_span, "lifecycle.disqualify_reasons", "disqualifying needs at least one reason to pick")
        }
        None if reasons_span.is_some() => p.push(
            reasons_span,
            "lifecycle.disqualify_reasons",
            "there is no disqualified stage: name it with disqualified = \"...\"",
        ),
        _ => {}
    }
}
