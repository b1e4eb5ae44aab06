//! The mapping function.

use crate::mapping::custom_key::fit_custom_key;
use crate::mapping::name::split_full_name;
use crate::mapping::path::{At, remove_at, render};
use crate::mapping::spec::{MappingSpec, SpecSource, SpecTarget};
use crate::mapping::synonyms::{HeaderMatch, classify_with, label_number};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A record sorted by destination, values still as received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    /// Standard field name → the value as received (nulls left out).
    pub standard: Map<String, Value>,
    /// Everything else, as received.
    pub custom: Map<String, Value>,
    pub consent: Option<Value>,
    /// Per input key, where it went and why, in key order.
    pub decisions: Vec<Decision>,
}

/// Where an input key (or a part of it) went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Standard(&'static str),
    /// The key under which the value was stored in `custom`.
    Custom(String),
    Consent,
    /// Not kept: ignored by the spec, the API envelope's `source`, or a null.
    Dropped,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(field) => f.write_str(field),
            Self::Custom(name) => write!(f, "custom.{name}"),
            Self::Consent => f.write_str("consent"),
            Self::Dropped => f.write_str("(dropped)"),
        }
    }
}

/// Why an input key went where it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The key is the standard field's name, up to case and separators.
    Exact,
    /// The key is a synonym of the standard field.
    Synonym,
    /// A spec entry read it.
    Spec,
    /// A full name split into `first_name` / `last_name`.
    NameSplit,
    /// No standard field matched: kept in `custom` under its own key.
    Custom,
    /// What was left of the key's value after spec entries and `ignore` took parts of it.
    Rest,
    /// It matched `field`, which another key (or the spec) already filled.
    Duplicate { field: &'static str },
    /// A full name that was not split: first and last name were already there, or it
    /// was not a name-like value.
    NameNotSplit,
    /// An entry of the input's own `custom` object.
    ExplicitCustom,
    /// The input's `consent`, passed through.
    Consent,
    /// Listed in the spec's `ignore`.
    Ignored,
    /// `source`: belongs to the API envelope, not to the lead.
    Envelope,
    /// A null: no value to keep.
    Empty,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Synonym => "synonym",
            Self::Spec => "spec",
            Self::NameSplit => "name_split",
            Self::Custom => "custom",
            Self::Rest => "rest",
            Self::Duplicate { .. } => "duplicate",
            Self::NameNotSplit => "name_not_split",
            Self::ExplicitCustom => "explicit_custom",
            Self::Consent => "consent",
            Self::Ignored => "ignored",
            Self::Envelope => "envelope",
            Self::Empty => "empty",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate { field } => write!(f, "duplicate: {field} already set"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// One column/key decision, for `import --dry-run` and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The top-level input key, as received.
    pub key: String,
    /// When only part of the key's value went to `target`: where, in path syntax
    /// (`contact.email`, `answers[2].text`, `custom.plan`).
    pub path: Option<String>,
    pub target: Target,
    pub rule: Rule,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{p} → {} ({})", self.target, self.rule),
            None => write!(f, "{} → {} ({})", crate::mapping::path::quote_if_needed(&self.key), self.target, self.rule),
        }
    }
}

/// Null, a blank string, or an empty array or object.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// What the spec stage did to a top-level key.
enum Taken {
    Untouched,
    Whole,
    Rest(Value),
}

#[derive(Clone, Copy)]
struct Candidate {
    field: &'static str,
    pos: usize,
    /// 0: the key is the field name; 1: the same up to case and separators; 2: synonym.
    rank: u8,
    /// A repeated field's number (`Email 2`); 0 when the label has none.
    number: u32,
    blank: bool,
}

struct Mapper<'k, 'r> {
    keys: &'k [(&'r String, &'r Value)],
    out: Mapped,
    decisions: Vec<(usize, Decision)>,
    /// Per key position, what the spec took; empty when there is no spec.
    taken: Vec<Taken>,
}

impl<'r> Mapper<'_, 'r> {
    fn decide(&mut self, pos: usize, path: Option<String>, target: Target, rule: Rule) {
        let key = self.keys.get(pos).map(|(k, _)| (*k).clone()).unwrap_or_default();
        self.decisions.push((pos, Decision { key, path, target, rule }));
    }

    fn pos_of(&self, key: &str) -> Option<usize> {
        // serde_json's default map iterates in key order: search it; fall back to a scan
        // in case `preserve_order` is enabled somewhere in the build.
        match self.keys.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(pos) => Some(pos),
            Err(_) => self.keys.iter().position(|(k, _)| k.as_str() == key),
        }
    }

    /// Stores `value` in custom under `name`, or `name#2`, `name#3`, … when taken; a
    /// name over the length limit is shortened first (and again with its number).
    fn put_custom(&mut self, name: &str, value: Value) -> String {
        let custom = &mut self.out.custom;
        let mut actual = fit_custom_key(name).into_owned();
        let mut n = 2u64;
        while custom.contains_key(&actual) {
            actual = fit_custom_key(&format!("{name}#{n}")).into_owned();
            n += 1;
        }
        custom.insert(actual.clone(), value);
        actual
    }

    fn fill_names(&mut self, name: &Value) -> Vec<&'static str> {
        let (first, last) = match name {
            Value::String(s) => {
                let parts = split_full_name(s);
                (parts.first, parts.last)
            }
            Value::Object(o) => match name_object(o) {
                Some(parts) => parts,
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        let mut filled = Vec::new();
        for (field, part) in [("first_name", first), ("last_name", last)] {
            if let Some(part) = part
                && !self.out.standard.contains_key(field)
            {
                self.out.standard.insert(field.to_owned(), Value::String(part));
                filled.push(field);
            }
        }
        filled
    }

    /// Reads a spec source: the value and the concrete locations it used.
    fn read(&self, record: &'r Map<String, Value>, source: &SpecSource) -> Option<(Value, Vec<Vec<At<'r>>>)> {
        let mut at = Vec::new();
        match source {
            SpecSource::Path(p) => {
                let v = p.resolve(record, Some(&mut at)).filter(|v| !v.is_null())?;
                Some((v.clone(), vec![at]))
            }
            SpecSource::FirstOf(paths) => {
                let mut fallback: Option<(Value, Vec<At<'r>>)> = None;
                for p in paths {
                    if let Some(v) = p.resolve(record, Some(&mut at)).filter(|v| !v.is_null()) {
                        if !is_blank(v) {
                            return Some((v.clone(), vec![at]));
                        }
                        if fallback.is_none() {
                            fallback = Some((v.clone(), at.clone()));
                        }
                    }
                }
                fallback.map(|(v, at)| (v, vec![at]))
            }
            SpecSource::Join { paths, separator } => {
                let mut parts = Vec::new();
                let mut used = Vec::new();
                for p in paths {
                    let text = match p.resolve(record, Some(&mut at)) {
                        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
                        Some(Value::Number(n)) => n.to_string(),
                        Some(Value::Bool(b)) => b.to_string(),
                        _ => continue,
                    };
                    parts.push(text);
                    // A path named twice is still one input key, with one decision.
                    if !used.contains(&at) {
                        used.push(at.clone());
                    }
                }
                (!parts.is_empty()).then(|| (Value::String(parts.join(separator)), used))
            }
        }
    }

    fn apply_spec(&mut self, record: &'r Map<String, Value>, spec: &MappingSpec) {
        let mut taken: Vec<(Vec<At<'r>>, bool)> = Vec::new();
        let mut at = Vec::new();
        for p in &spec.ignore {
            if p.resolve(record, Some(&mut at)).is_some() {
                taken.push((at.clone(), true));
            }
        }
        // Field, custom and consent entries first, full names after them so that explicit
        // first_name / last_name entries win.
        let ordered = spec
            .entries
            .iter()
            .filter(|e| e.target != SpecTarget::FullName)
            .chain(spec.entries.iter().filter(|e| e.target == SpecTarget::FullName));
        for entry in ordered {
            let Some((value, locations)) = self.read(record, &entry.source) else { continue };
            let targets: Vec<Target> = match &entry.target {
                SpecTarget::Field(field) => {
                    if self.out.standard.contains_key(*field) {
                        continue;
                    }
                    self.out.standard.insert((*field).to_owned(), value);
                    vec![Target::Standard(field)]
                }
                SpecTarget::Custom(name) => vec![Target::Custom(self.put_custom(name, value))],
                SpecTarget::Consent => {
                    if self.out.consent.is_some() {
                        continue;
                    }
                    self.out.consent = Some(value);
                    vec![Target::Consent]
                }
                SpecTarget::FullName => {
                    let filled = self.fill_names(&value);
                    if filled.is_empty() {
                        continue;
                    }
                    filled.into_iter().map(Target::Standard).collect()
                }
            };
            for loc in locations {
                for target in &targets {
                    self.spec_decision(&loc, target.clone(), Rule::Spec);
                }
                taken.push((loc, false));
            }
        }
        for (loc, ignored) in &taken {
            if *ignored {
                self.spec_decision(loc, Target::Dropped, Rule::Ignored);
            }
        }
        self.take(taken);
    }

    fn spec_decision(&mut self, loc: &[At], target: Target, rule: Rule) {
        let Some(At::Key(top)) = loc.first() else { return };
        let Some(pos) = self.pos_of(top) else { return };
        let path = (loc.len() > 1).then(|| render(loc));
        self.decide(pos, path, target, rule);
    }

    /// Removes what the spec read or ignored from the top-level values.
    fn take(&mut self, mut taken: Vec<(Vec<At<'r>>, bool)>) {
        // Deepest and last first, so earlier array indexes stay valid.
        taken.sort_by(|a, b| b.0.cmp(&a.0));
        taken.dedup_by(|a, b| a.0 == b.0);
        let mut state: Vec<Taken> = Vec::new();
        for (loc, _) in taken {
            let Some((At::Key(top), rest)) = loc.split_first() else { continue };
            let Some(pos) = self.pos_of(top) else { continue };
            if state.len() < self.keys.len() {
                state.resize_with(self.keys.len(), || Taken::Untouched);
            }
            let Some(slot) = state.get_mut(pos) else { continue };
            if rest.is_empty() {
                *slot = Taken::Whole;
                continue;
            }
            let mut value = match std::mem::replace(slot, Taken::Untouched) {
                Taken::Whole => {
                    *slot = Taken::Whole;
                    continue;
                }
                Taken::Rest(v) => v,
                Taken::Untouched => self.keys.get(pos).map(|(_, v)| (*v).clone()).unwrap_or_default(),
            };
            *slot = if remove_at(&mut value, rest) { Taken::Whole } else { Taken::Rest(value) };
        }
        self.taken = state;
    }
}

/// `{"first": "Ada", "last": "Lovelace"}` (Jotform and similar): the parts, when every
/// non-blank entry is a first or a last name.
fn name_object(o: &Map<String, Value>) -> Option<(Option<String>, Option<String>)> {
    let mut buf = String::new();
    let (mut first, mut last) = (None, None);
    for (k, v) in o {
        if is_blank(v) {
            continue;
        }
        let s = v.as_str()?.trim().to_owned();
        match classify_with(k, &mut buf)? {
            HeaderMatch::Field { field: "first_name", .. } => first = Some(s),
            HeaderMatch::Field { field: "last_name", .. } => last = Some(s),
            _ => return None,
        }
    }
    (first.is_some() || last.is_some()).then_some((first, last))
}

/// Maps one record (a JSON object, or a CSV/XLSX row as header → string) onto the
/// standard fields.
///
/// Order: the spec's entries and `ignore` first; then, for the remaining top-level keys,
/// `source` (skipped: API envelope), nulls (skipped: no value), `custom` (merged),
/// `consent` (passed through), the synonym table; then full-name splitting; everything
/// not used goes to `custom` as received. See the crate documentation for the rules.
pub fn map_record(record: &Map<String, Value>, spec: Option<&MappingSpec>) -> Mapped {
    let keys: Vec<(&String, &Value)> = record.iter().collect();
    let mut m = Mapper {
        keys: &keys,
        out: Mapped::default(),
        decisions: Vec::with_capacity(record.len() + 2),
        taken: Vec::new(),
    };
    if let Some(spec) = spec {
        m.apply_spec(record, spec);
    }
    let synonyms = spec.is_none_or(|s| s.synonyms);
    let mut taken = std::mem::take(&mut m.taken);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut names: Vec<usize> = Vec::new();
    let mut loose: Vec<(usize, Cow<'_, Value>, Rule)> = Vec::new();
    let mut explicit: Option<(usize, Cow<'_, Value>)> = None;
    let mut buf = String::with_capacity(32);
    for (pos, (key, original)) in keys.iter().copied().enumerate() {
        let (value, is_rest) = match taken.get_mut(pos) {
            Some(Taken::Whole) => continue,
            Some(t @ Taken::Rest(_)) => match std::mem::replace(t, Taken::Whole) {
                Taken::Rest(v) => (Cow::Owned(v), true),
                _ => continue,
            },
            _ => (Cow::Borrowed(original), false),
        };
        match key.as_str() {
            "source" => m.decide(pos, None, Target::Dropped, Rule::Envelope),
            _ if value.is_null() => m.decide(pos, None, Target::Dropped, Rule::Empty),
            "custom" if value.is_object() => explicit = Some((pos, value)),
            "consent" if m.out.consent.is_some() => loose.push((pos, value, Rule::Duplicate { field: "consent" })),
            "consent" => {
                m.out.consent = Some(value.into_owned());
                m.decide(pos, None, Target::Consent, Rule::Consent);
            }
            _ if is_rest => loose.push((pos, value, Rule::Rest)),
            _ => match classify_with(key, &mut buf) {
                Some(HeaderMatch::Field { field, exact }) if synonyms || exact => {
                    if m.out.standard.contains_key(field) {
                        loose.push((pos, value, Rule::Duplicate { field }));
                    } else {
                        let rank = if key == field {
                            0
                        } else if exact {
                            1
                        } else {
                            2
                        };
                        let number = if rank == 2 { label_number(key).unwrap_or(0) } else { 0 };
                        candidates.push(Candidate { field, pos, rank, number, blank: is_blank(&value) });
                    }
                }
                Some(HeaderMatch::FullName) if synonyms => names.push(pos),
                _ => loose.push((pos, value, Rule::Custom)),
            },
        }
    }
    // Several keys for one field: non-blank beats blank, then the field's own name beats
    // a synonym, then the earlier key wins. The others stay in custom.
    let mut done = vec![false; candidates.len()];
    for i in 0..candidates.len() {
        if done.get(i).copied().unwrap_or(true) {
            continue;
        }
        let Some(field) = candidates.get(i).map(|c| c.field) else { continue };
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.field == field)
            .min_by_key(|(_, c)| (c.blank, c.rank, c.number, c.pos))
            .map(|(j, _)| j);
        for (j, c) in candidates.iter().enumerate() {
            if c.field != field {
                continue;
            }
            if let Some(d) = done.get_mut(j) {
                *d = true;
            }
            let Some((_, value)) = keys.get(c.pos).copied() else { continue };
            if Some(j) == best {
                m.out.standard.insert(field.to_owned(), value.clone());
                let rule = if c.rank < 2 { Rule::Exact } else { Rule::Synonym };
                m.decide(c.pos, None, Target::Standard(field), rule);
            } else {
                loose.push((c.pos, Cow::Borrowed(value), Rule::Duplicate { field }));
            }
        }
    }
    for pos in names {
        let Some((_, value)) = keys.get(pos).copied() else { continue };
        let filled = m.fill_names(value);
        if filled.is_empty() {
            loose.push((pos, Cow::Borrowed(value), Rule::NameNotSplit));
        }
        for field in filled {
            m.decide(pos, None, Target::Standard(field), Rule::NameSplit);
        }
    }
    if let Some((pos, value)) = explicit {
        match value.into_owned() {
            Value::Object(obj) if !obj.is_empty() => {
                for (k, v) in obj {
                    let path = format!("custom.{}", crate::mapping::path::quote_if_needed(&k));
                    let actual = m.put_custom(&k, v);
                    m.decide(pos, Some(path), Target::Custom(actual), Rule::ExplicitCustom);
                }
            }
            _ => m.decide(pos, None, Target::Dropped, Rule::Empty),
        }
    }
    loose.sort_by_key(|(pos, _, _)| *pos);
    for (pos, value, rule) in loose {
        let Some((key, _)) = keys.get(pos).copied() else { continue };
        let actual = m.put_custom(key, value.into_owned());
        m.decide(pos, None, Target::Custom(actual), rule);
    }
    m.decisions.sort_by_key(|(pos, _)| *pos);
    m.out.decisions = m.decisions.into_iter().map(|(_, d)| d).collect();
    m.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::spec::parse_spec;
    use serde_json::json;
    use toml_edit::Document;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn spec(text: &str) -> MappingSpec {
        let doc = Document::parse(text).unwrap();
        parse_spec(doc.as_table()).unwrap()
    }

    fn decision<'m>(m: &'m Mapped, key: &str) -> Vec<(&'m Target, Rule)> {
        m.decisions.iter().filter(|d| d.key == key).map(|d| (&d.target, d.rule)).collect()
    }

    #[test]
    fn exact_synonym_custom_envelope_consent_and_nulls() {
        let m = map_record(
            &obj(json!({
                "email": "a@example.com",
                "Company Name": "Acme",
                "favourite_colour": "teal",
                "plan": "loose",
                "custom": {"plan": "explicit"},
                "consent": {"granted": true},
                "source": "api",
                "phone": null
            })),
            None,
        );
        assert_eq!(m.standard, obj(json!({"email": "a@example.com", "company": "Acme"})));
        assert_eq!(m.custom, obj(json!({"favourite_colour": "teal", "plan": "explicit", "plan#2": "loose"})));
        assert_eq!(m.consent, Some(json!({"granted": true})));
        assert_eq!(decision(&m, "email"), [(&Target::Standard("email"), Rule::Exact)]);
        assert_eq!(decision(&m, "Company Name"), [(&Target::Standard("company"), Rule::Synonym)]);
        assert_eq!(decision(&m, "source"), [(&Target::Dropped, Rule::Envelope)]);
        assert_eq!(decision(&m, "phone"), [(&Target::Dropped, Rule::Empty)]);
        assert_eq!(decision(&m, "plan"), [(&Target::Custom("plan#2".into()), Rule::Custom)]);
        assert_eq!(decision(&m, "custom"), [(&Target::Custom("plan".into()), Rule::ExplicitCustom)]);
        assert_eq!(decision(&m, "consent"), [(&Target::Consent, Rule::Consent)]);
        let shown: Vec<String> = m.decisions.iter().map(ToString::to_string).collect();
        assert!(shown.contains(&"Company Name → company (synonym)".to_owned()), "{shown:?}");
        assert!(shown.contains(&"custom.plan → custom.plan (explicit_custom)".to_owned()), "{shown:?}");
    }

    #[test]
    fn custom_that_is_not_an_object_is_kept() {
        let m = map_record(&obj(json!({"custom": [1, 2]})), None);
        assert_eq!(m.custom, obj(json!({"custom": [1, 2]})));
    }

    #[test]
    fn duplicate_keys_exact_name_wins_and_loser_is_kept() {
        let m = map_record(&obj(json!({"Work Email": "w@example.com", "email": "e@example.com"})), None);
        assert_eq!(m.standard["email"], "e@example.com");
        assert_eq!(m.custom["Work Email"], "w@example.com");
        assert_eq!(
            decision(&m, "Work Email"),
            [(&Target::Custom("Work Email".into()), Rule::Duplicate { field: "email" })]
        );
        // `EMAIL` is the field's name up to case: it beats a synonym, loses to `email`.
        let m = map_record(&obj(json!({"EMAIL": "u@x.io", "mail": "m@x.io", "work_email": "w@x.io"})), None);
        assert_eq!(m.standard["email"], "u@x.io");
        assert_eq!(m.custom.len(), 2);
        // Among synonyms the first non-blank (in key order) wins.
        let m = map_record(&obj(json!({"mobile": "", "phone_number": "+1 555", "tel": "+2"})), None);
        assert_eq!(m.standard["phone"], "+1 555");
        assert_eq!(m.custom, obj(json!({"mobile": "", "tel": "+2"})));
        // A blank exact key loses to a non-blank synonym.
        let m = map_record(&obj(json!({"email": " ", "Work Email": "w@x.io"})), None);
        assert_eq!(m.standard["email"], "w@x.io");
        assert_eq!(m.custom["email"], " ");
        // All blank: the exact name keeps its blank value.
        let m = map_record(&obj(json!({"email": "", "Work Email": ""})), None);
        assert_eq!(m.standard["email"], "");
        assert_eq!(m.custom["Work Email"], "");
    }

    #[test]
    fn full_name_is_split_when_names_are_missing() {
        let m = map_record(&obj(json!({"full_name": "Dr. Ada King Lovelace", "email": "a@x.io"})), None);
        assert_eq!(m.standard["first_name"], "Ada");
        assert_eq!(m.standard["last_name"], "King Lovelace");
        assert!(m.custom.is_empty());
        assert_eq!(
            decision(&m, "full_name"),
            [(&Target::Standard("first_name"), Rule::NameSplit), (&Target::Standard("last_name"), Rule::NameSplit)]
        );
        let m = map_record(&obj(json!({"Name": "Lovelace, Ada", "first_name": "Augusta"})), None);
        assert_eq!(m.standard["first_name"], "Augusta");
        assert_eq!(m.standard["last_name"], "Lovelace");
        let m = map_record(&obj(json!({"contact name": "Ada", "first_name": "A", "last_name": "L"})), None);
        assert_eq!(m.custom["contact name"], "Ada");
        assert_eq!(decision(&m, "contact name"), [(&Target::Custom("contact name".into()), Rule::NameNotSplit)]);
        let m = map_record(&obj(json!({"name": "Ada"})), None);
        assert_eq!(m.standard, obj(json!({"first_name": "Ada"})));
        let m = map_record(&obj(json!({"q3_fullName3": {"first": "Ada", "last": "Lovelace"}})), None);
        assert_eq!(m.standard, obj(json!({"first_name": "Ada", "last_name": "Lovelace"})));
        let m = map_record(&obj(json!({"name": {"first": "Ada", "middle": "K"}})), None);
        assert!(m.standard.is_empty());
        assert_eq!(m.custom["name"], json!({"first": "Ada", "middle": "K"}));
        let m = map_record(&obj(json!({"name": 42})), None);
        assert_eq!(m.custom["name"], 42);
    }

    #[test]
    fn spec_nested_paths_join_split_custom_and_ignore() {
        let s = spec(
            r#"
email = "contact.email"
company = "org_name"
full_name = "applicant.name"
street = { join = ["addr1", "addr2"], separator = ", " }
phone = ["contact.phones[0]", "contact.mobile"]
"custom.plan" = "meta.plan"
postal_code = 'data.fields."Postal Code"'
country = "answers[field.ref=country].text"
ignore = ["password", "csrf_token", "meta.secret"]
"#,
        );
        let rec = obj(json!({
            "contact": {"email": "ada@example.com", "phones": [], "mobile": "+44 20", "note": "vip"},
            "org_name": "Analytical Engines",
            "applicant": {"name": "Ada Lovelace"},
            "addr1": "12 St James's Square",
            "addr2": "London",
            "meta": {"plan": "pro", "secret": "s3", "ua": "curl"},
            "data": {"fields": {"Postal Code": "SW1Y 4JH"}},
            "answers": [{"field": {"ref": "x"}, "text": "y"}, {"field": {"ref": "country"}, "text": "GB"}],
            "password": "hunter2",
            "csrf_token": "abc",
            "email": "other@example.com",
            "industry": "Computing"
        }));
        let m = map_record(&rec, Some(&s));
        assert_eq!(
            m.standard,
            obj(json!({
                "email": "ada@example.com",
                "company": "Analytical Engines",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "street": "12 St James's Square, London",
                "phone": "+44 20",
                "postal_code": "SW1Y 4JH",
                "country": "GB",
                "industry": "Computing"
            }))
        );
        assert_eq!(
            m.custom,
            obj(json!({
                "plan": "pro",
                "contact": {"phones": [], "note": "vip"},
                "meta": {"ua": "curl"},
                "answers": [{"field": {"ref": "x"}, "text": "y"}, {"field": {"ref": "country"}}],
                "email": "other@example.com"
            }))
        );
        assert_eq!(decision(&m, "password"), [(&Target::Dropped, Rule::Ignored)]);
        assert_eq!(decision(&m, "email"), [(&Target::Custom("email".into()), Rule::Duplicate { field: "email" })]);
        assert_eq!(
            decision(&m, "contact"),
            [
                (&Target::Standard("email"), Rule::Spec),
                (&Target::Standard("phone"), Rule::Spec),
                (&Target::Custom("contact".into()), Rule::Rest)
            ]
        );
        let paths: Vec<&str> = m.decisions.iter().filter_map(|d| d.path.as_deref()).collect();
        assert!(paths.contains(&"answers[1].text"), "{paths:?}");
        assert!(paths.contains(&"meta.secret"), "{paths:?}");
        assert!(paths.contains(&"data.fields.Postal Code"), "{paths:?}");
        // `data` was used up entirely: no rest.
        assert!(!m.custom.contains_key("data"));
        assert_eq!(decision(&m, "data"), [(&Target::Standard("postal_code"), Rule::Spec)]);
    }

    #[test]
    fn spec_paths_that_are_absent_leave_the_field_to_synonyms() {
        let s = spec("email = \"contact.email\"\nfirst_name = \"fn\"\nfull_name = \"n\"\n");
        let m = map_record(
            &obj(json!({"Work Email": "w@x.io", "fn": "Ada", "n": "X Lovelace", "first_name": "Y"})),
            Some(&s),
        );
        assert_eq!(m.standard["email"], "w@x.io");
        assert_eq!(m.standard["first_name"], "Ada", "an explicit first_name entry beats the split");
        assert_eq!(m.standard["last_name"], "Lovelace");
        assert_eq!(m.custom["first_name"], "Y");
    }

    #[test]
    fn spec_can_read_source_custom_and_consent() {
        let s = spec("\"custom.origin\" = \"source\"\nemail = \"custom.email\"\nconsent = \"gdpr\"\n");
        let m = map_record(
            &obj(json!({
                "source": "fb",
                "custom": {"email": "c@x.io", "plan": "pro"},
                "gdpr": {"granted": true},
                "consent": {"granted": false}
            })),
            Some(&s),
        );
        assert_eq!(m.standard["email"], "c@x.io");
        assert_eq!(m.consent, Some(json!({"granted": true})));
        assert_eq!(m.custom, obj(json!({"origin": "fb", "plan": "pro", "consent": {"granted": false}})));
    }

    #[test]
    fn synonyms_can_be_turned_off() {
        let s = spec("synonyms = false\n");
        let m = map_record(&obj(json!({"Email": "a@x.io", "Work Email": "w@x.io", "name": "Ada L"})), Some(&s));
        assert_eq!(m.standard, obj(json!({"email": "a@x.io"})));
        assert_eq!(m.custom.len(), 2);
    }

    #[test]
    fn join_skips_blanks_and_stringifies_scalars() {
        let s = spec("street = { join = [\"a\", \"b\", \"c\", \"d\"], separator = \" / \" }\n");
        let m = map_record(&obj(json!({"a": " Main St ", "b": "", "c": 12, "d": {"x": 1}})), Some(&s));
        assert_eq!(m.standard["street"], "Main St / 12");
        assert_eq!(m.custom, obj(json!({"b": "", "d": {"x": 1}})));
    }

    #[test]
    fn salesforce_web_to_lead_and_csv_rows() {
        let m = map_record(
            &obj(json!({
                "oid": "00D000000000062", "retURL": "https://example.com/thanks",
                "first_name": "Ada", "last_name": "Lovelace", "company": "AE", "email": "ada@x.io",
                "phone": "+44 20", "mobile": "+44 77", "title": "CTO", "URL": "ae.example",
                "street": "12 Square", "city": "London", "state": "LND", "zip": "SW1Y", "country": "GB",
                "lead_source": "Web", "industry": "Computing", "employees": "50", "revenue": "1000000",
                "00N5e00000AbCdE": "Enterprise"
            })),
            None,
        );
        assert_eq!(m.standard.len(), 15);
        assert_eq!(m.standard["website"], "ae.example");
        assert_eq!(m.standard["postal_code"], "SW1Y");
        assert_eq!(m.standard["job_title"], "CTO");
        assert_eq!(
            m.custom,
            obj(json!({
                "oid": "00D000000000062", "retURL": "https://example.com/thanks", "mobile": "+44 77",
                "lead_source": "Web", "00N5e00000AbCdE": "Enterprise"
            }))
        );
        // A CSV row: header → string, with label-style headers.
        let m = map_record(
            &obj(json!({
                "Full Name": "Lovelace, Ada", "E-Mail Address": "ada@x.io", "Company / Organisation": "AE",
                "No. of Employees": "51-200", "Notes": ""
            })),
            None,
        );
        assert_eq!(
            m.standard,
            obj(json!({
                "first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io", "company": "AE",
                "employee_count": "51-200"
            }))
        );
        assert_eq!(m.custom, obj(json!({"Notes": ""})));
    }

    #[test]
    fn numbered_labels_the_first_wins_and_the_others_stay_custom() {
        let m = map_record(
            &obj(
                json!({"Email 10": "ten@x.io", "Email 2": "two@x.io", "Name 3": "Ada Lovelace", "Phone (2)": "+44 20"}),
            ),
            None,
        );
        assert_eq!(m.standard["email"], "two@x.io", "2 before 10, though \"Email 10\" sorts first");
        assert_eq!(m.custom["Email 10"], "ten@x.io");
        assert_eq!(m.standard["first_name"], "Ada");
        assert_eq!(m.standard["phone"], "+44 20");
        let m = map_record(&obj(json!({"Email": "one@x.io", "Email 2": "two@x.io"})), None);
        assert_eq!(m.standard["email"], "one@x.io");
        assert_eq!(m.custom["Email 2"], "two@x.io");
    }

    #[test]
    fn a_custom_name_over_the_limit_is_shortened_never_refused() {
        let title = format!("{} I agree to be contacted.", "By ticking this box ".repeat(8));
        let other = format!("{} I agree to receive news.", "By ticking this box ".repeat(8));
        let m = map_record(
            &obj(json!({title.clone(): true, other.clone(): false, "custom": {title.clone(): "explicit"}})),
            None,
        );
        assert_eq!(m.custom.len(), 3, "{:?}", m.custom.keys().collect::<Vec<_>>());
        for key in m.custom.keys() {
            assert!(key.chars().count() <= crate::mapping::MAX_CUSTOM_KEY_LEN, "{key}");
        }
        let short = fit_custom_key(&title).into_owned();
        assert_eq!(m.custom[&short], "explicit", "the explicit custom value keeps the plain short key");
        assert_eq!(m.custom[fit_custom_key(&other).as_ref()], false);
        assert!(m.decisions.iter().any(|d| d.key == title && matches!(&d.target, Target::Custom(k) if k != &short)));
    }

    #[test]
    fn every_key_has_a_decision_and_nothing_is_lost() {
        let rec = obj(json!({
            "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@x.io", "Company": "AE",
            "Title": "Countess", "Phone": "+44", "City": "London", "Country": "GB",
            "utm_source": "g", "utm_medium": "cpc", "utm_campaign": "c1", "00N5e00000XyZ": "a",
            "notes": "hi", "address2": "Flat 1", "id": 7
        }));
        let m = map_record(&rec, None);
        for key in rec.keys() {
            assert!(m.decisions.iter().any(|d| &d.key == key), "{key}");
        }
        assert_eq!(m.standard.len() + m.custom.len(), rec.len());
        assert_eq!(m.custom["id"], 7);
    }
}
