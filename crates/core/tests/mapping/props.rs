//! Property tests: no panics, conservation of keys, header matching idempotence.

use leadflow_core::mapping::{
    MappingSpec, Path, Rule, STANDARD_FIELDS, Step, Target, classify_header, map_record, match_header, parse_spec,
    quote_if_needed, split_full_name,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const KEYS: &[&str] = &[
    "email",
    "Email",
    "Work Email",
    "work_email",
    "e-mail",
    "phone",
    "mobile",
    "PHONE_NUMBER",
    "first_name",
    "FirstName",
    "last_name",
    "surname",
    "name",
    "full_name",
    "Full Name",
    "company",
    "organization",
    "zip",
    "PostalCode",
    "source",
    "custom",
    "consent",
    "id",
    "address2",
    "plan",
    "plan#2",
    "contact",
    "meta",
    "answers",
    "q3_fullName3",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![proptest::sample::select(KEYS).prop_map(str::to_owned), "\\PC{0,12}", "[a-zA-Z _.-]{1,12}",]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
        "(Dr\\.? |Mr |Prof )?[A-Z][a-z]{0,6}(,? [A-Z][a-z]{0,6}){0,3}(,? (Jr\\.?|III))?".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(key(), json(), 0..16).prop_map(|m| m.into_iter().collect())
}

const PATHS: &[&str] = &[
    "email",
    "contact.email",
    "contact",
    "custom.email",
    "consent",
    "source",
    "answers[0]",
    "answers[-1].text",
    "answers[field.ref=email].email",
    "meta.plan",
    "meta",
    "name",
    "\"Work Email\"",
    "plan",
    "q3_fullName3.first",
];
const TARGETS: &[&str] = &[
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "consent",
    "\"custom.plan\"",
    "\"custom.x\"",
    "company",
    "street",
];

fn spec_text() -> impl Strategy<Value = String> {
    let path = || proptest::sample::select(PATHS);
    let source = prop_oneof![
        path().prop_map(|p| format!("'{p}'")),
        proptest::collection::vec(path(), 1..3)
            .prop_map(|ps| format!("[{}]", ps.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", "))),
        proptest::collection::vec(path(), 1..3).prop_map(|ps| format!(
            "{{ join = [{}], separator = \"-\" }}",
            ps.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
        )),
    ];
    let entries = proptest::collection::btree_map(proptest::sample::select(TARGETS), source, 0..6);
    let ignore = proptest::collection::vec(proptest::sample::select(PATHS), 0..3);
    (entries, ignore, any::<bool>()).prop_map(|(entries, ignore, synonyms)| {
        let mut text = String::new();
        for (t, s) in entries {
            text.push_str(&format!("{t} = {s}\n"));
        }
        let ignore: Vec<String> = ignore.iter().map(|p| format!("'{p}'")).collect();
        text.push_str(&format!("ignore = [{}]\nsynonyms = {synonyms}\n", ignore.join(", ")));
        text
    })
}

fn parse(text: &str) -> Option<MappingSpec> {
    let doc = toml_edit::Document::parse(text).ok()?;
    parse_spec(doc.as_table()).ok()
}

/// Every input key is accounted for: each has a decision, each decision's target exists,
/// and nothing lands in `standard` or `custom` without a decision saying why.
fn check_conservation(record: &Map<String, Value>, spec: Option<&MappingSpec>) -> Result<(), TestCaseError> {
    let m = map_record(record, spec);
    let input: BTreeSet<&str> = record.keys().map(String::as_str).collect();
    let decided: BTreeSet<&str> = m.decisions.iter().map(|d| d.key.as_str()).collect();
    prop_assert_eq!(&input, &decided, "every input key, and only those, has a decision");
    let mut custom_targets = BTreeSet::new();
    let mut standard_targets = BTreeSet::new();
    for d in &m.decisions {
        match &d.target {
            Target::Standard(f) => {
                prop_assert!(m.standard.contains_key(*f), "{}", d);
                standard_targets.insert(*f);
            }
            Target::Custom(name) => {
                prop_assert!(m.custom.contains_key(name), "{}", d);
                prop_assert!(custom_targets.insert(name.as_str()), "custom key {} written twice", name);
            }
            Target::Consent => prop_assert!(m.consent.is_some()),
            Target::Dropped => {
                prop_assert!(matches!(d.rule, Rule::Ignored | Rule::Envelope | Rule::Empty), "{}", d);
                if d.rule == Rule::Empty {
                    let v = record.get(&d.key);
                    prop_assert!(
                        v.is_some_and(|v| v.is_null() || (d.key == "custom" && v == &Value::Object(Map::new()))),
                        "{}",
                        d
                    );
                }
                if d.rule == Rule::Ignored {
                    prop_assert!(spec.is_some());
                }
            }
        }
    }
    // Counts: nothing in the output that no decision accounts for.
    prop_assert_eq!(custom_targets.len(), m.custom.len());
    prop_assert_eq!(standard_targets.len(), m.standard.len());
    prop_assert!(m.standard.keys().all(|k| STANDARD_FIELDS.contains(&k.as_str())));
    prop_assert!(!m.standard.values().any(Value::is_null), "nulls are left out of standard");
    if spec.is_none() {
        // Without a spec nothing is ever dropped but `source` and nulls: every other
        // key's value is found, unchanged, in standard, custom or consent — or was split.
        for (k, v) in record {
            if k == "source" || v.is_null() {
                continue;
            }
            let rules: Vec<Rule> = m.decisions.iter().filter(|d| &d.key == k).map(|d| d.rule).collect();
            if rules.contains(&Rule::NameSplit) || rules.contains(&Rule::ExplicitCustom) {
                continue;
            }
            let kept = m.standard.values().any(|x| x == v)
                || m.custom.values().any(|x| x == v)
                || m.consent.as_ref() == Some(v)
                || (k == "custom" && v == &Value::Object(Map::new()));
            prop_assert!(kept, "value of {:?} lost", k);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mapping_never_panics_and_conserves_keys(record in record()) {
        check_conservation(&record, None)?;
    }

    #[test]
    fn mapping_with_a_spec_conserves_keys(record in record(), text in spec_text()) {
        let spec = parse(&text);
        prop_assert!(spec.is_some(), "generated spec must parse: {}", text);
        check_conservation(&record, spec.as_ref())?;
    }

    #[test]
    fn spec_parsing_never_panics(text in "[a-z_\\.\"' =\\[\\]{},0-9\n]{0,80}") {
        if let Ok(doc) = toml_edit::Document::parse(text.as_str())
            && let Err(errors) = parse_spec(doc.as_table())
        {
            prop_assert!(!errors.is_empty());
            for e in errors {
                if let Some(span) = e.span {
                    prop_assert!(span.start <= span.end && span.end <= text.len());
                }
            }
        }
    }

    #[test]
    fn match_header_is_idempotent(header in prop_oneof![proptest::sample::select(KEYS).prop_map(str::to_owned), "\\PC{0,24}"]) {
        let _ = classify_header(&header);
        if let Some(field) = match_header(&header) {
            prop_assert_eq!(match_header(field), Some(field));
        }
    }

    #[test]
    fn path_parsing_never_panics(text in "[a-z\\.\"\\[\\]=\\\\ 0-9-]{0,24}") {
        if let Ok(p) = Path::parse(&text) {
            prop_assert_eq!(p.as_str(), text.as_str());
            prop_assert!(!p.steps().is_empty());
        }
    }

    #[test]
    fn quoted_keys_round_trip(key in "\\PC{1,16}") {
        let p = Path::parse(&quote_if_needed(&key));
        prop_assert!(p.is_ok(), "{:?}", quote_if_needed(&key));
        if let Ok(p) = p {
            prop_assert_eq!(p.steps(), &[Step::Key(key)]);
        }
    }

    #[test]
    fn name_splitting_keeps_tokens(name in "\\PC{0,40}") {
        let parts = split_full_name(&name);
        let input: BTreeSet<&str> = name.split(|c: char| c.is_whitespace() || c == ',').collect();
        for part in [&parts.first, &parts.last].into_iter().flatten() {
            prop_assert!(!part.trim().is_empty());
            for token in part.split_whitespace() {
                prop_assert!(input.contains(token), "{:?} not in {:?}", token, name);
            }
        }
    }
}

#[test]
fn every_standard_field_matches_itself() {
    for f in STANDARD_FIELDS {
        assert_eq!(match_header(f), Some(*f));
    }
}
