use crate::{NOW, config};
use leadflow_core::scoring::{EventView, LifecycleContract, ScoringConfig, score};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use time::Duration;

/// Every condition kind and rule option, negative points included.
const EVERYTHING: &str = r#"
[scoring]
mql_threshold = 40
decay_half_life_days = 7
gate = ["email", "company|website", "custom.plan"]
[[scoring.rules]]
name = "eq"
when = { field = "industry", is = "software" }
points = 5
[[scoring.rules]]
name = "in"
when = { any = [ { field = "country", in = ["DE", 49, true] }, { field = "state", not_in = ["x"] } ] }
points = 3
[[scoring.rules]]
name = "range"
when = { all = [ { field = "employee_count", gte = 10, lte = 1e9 }, { not = { field = "email", exists = false } } ] }
points = 7
[[scoring.rules]]
name = "text"
when = { any = [ { field = "job_title", contains = "vp" }, { field = "email", matches = "*@*.??" } ] }
points = -4
[[scoring.rules]]
name = "views"
when = { event = "page_view", url_matches = "*/p?icing*", within_days = 30 }
points = 2.5
cap = 9
decay = true
[[scoring.rules]]
name = "forms"
when = { event = ["form", "demo"], min_count = 2, where = { field = "ok", is = true } }
points = -6
cap = 10
[[scoring.rules]]
name = "any once"
when = { event = "*", min_count = 3 }
points = 11
once = true
decay = true
"#;

/// Positive event rules only, so one more event can only add.
const POSITIVE_EVENTS: &str = r#"
[scoring]
decay_half_life_days = 3
[[scoring.rules]]
name = "lead"
when = { field = "industry", is = "software" }
points = -50
[[scoring.rules]]
name = "views"
when = { event = "page_view", url_matches = "*/pricing*", within_days = 30 }
points = 5
cap = 20
decay = true
[[scoring.rules]]
name = "forms"
when = { event = ["form", "demo"], min_count = 2 }
points = 7.5
[[scoring.rules]]
name = "regular"
when = { event = "*", min_count = 3, within_days = 60 }
points = 10
once = true
decay = true
[[scoring.rules]]
name = "capped"
when = { event = "demo" }
points = 3
cap = 4
"#;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,20}".prop_map(Value::String),
        prop_oneof![Just("software"), Just("DE"), Just("ada@x.io"), Just("VP Sales"), Just("250")]
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| prop::collection::vec(inner, 0..4).prop_map(Value::Array))
}

fn lead_map() -> impl Strategy<Value = Map<String, Value>> {
    let keys = prop_oneof![
        Just("industry"),
        Just("country"),
        Just("state"),
        Just("employee_count"),
        Just("email"),
        Just("job_title"),
        Just("company"),
        Just("custom"),
        Just("custom.plan"),
    ];
    prop::collection::vec((keys, json_value()), 0..9)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn an_event() -> impl Strategy<Value = EventView> {
    (
        prop_oneof![
            prop_oneof![Just("page_view"), Just("form"), Just("demo"), Just("other")].prop_map(str::to_owned),
            "\\PC{0,8}",
        ],
        prop_oneof![-5_000_000i64..100_000_000, Just(i64::from(i32::MAX))],
        proptest::option::of(prop_oneof![Just("https://a.io/pricing".to_owned()), "\\PC{0,30}"]),
        any::<bool>(),
    )
        .prop_map(|(kind, secs_ago, url, ok)| {
            let mut properties = Map::new();
            properties.insert("ok".into(), Value::Bool(ok));
            EventView { kind, at: NOW - Duration::seconds(secs_ago), url, properties }
        })
}

fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[scoring]"),
        Just("[lifecycle]"),
        Just("[[scoring.rules]]"),
        Just("[[lifecycle.transitions]]"),
        Just("name = \"a\""),
        Just("points = 5"),
        Just("points = -1.5"),
        Just("cap = 3"),
        Just("decay = true"),
        Just("once = true"),
        Just("when = { field = \"industry\", in = [\"a\", 1] }"),
        Just("when = { all = [ { not = { derived = \"free_mail\", is = true } } ] }"),
        Just("when = { event = \"*\", min_count = 0 }"),
        Just("when = { event = \"x\", where = { field = \"y\", gte = 1 } }"),
        Just("when = { field = \"email\" }"),
        Just("when = 3"),
        Just("gate = [\"email|phone\"]"),
        Just("mql_threshold = 10"),
        Just("stages = [\"new\", \"mql\"]"),
        Just("from = \"*\""),
        Just("from = [\"new\"]"),
        Just("to = \"mql\""),
        Just("automatic = \"score\""),
        Just("reason_required = true"),
        Just("disqualify_reasons = []"),
        Just("handoff = \"new\""),
    ];
    prop::collection::vec(line, 0..14).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn scoring_never_panics(lead in lead_map(), events in prop::collection::vec(an_event(), 0..30)) {
        let c = config(EVERYTHING);
        let s = score(&c, &lead, &events, NOW);
        let sum: f64 = s.breakdown.iter().map(|r| r.points).sum();
        prop_assert!((sum - s.total as f64).abs() <= 0.5 + 0.01 * s.breakdown.len() as f64);
        prop_assert_eq!(s.flagged, s.total >= c.mql_threshold && !s.gate.passed);
    }

    #[test]
    fn adding_an_event_never_lowers_a_score_of_positive_event_rules(
        lead in lead_map(),
        events in prop::collection::vec(an_event(), 0..25),
        extra in an_event(),
        at in 0..=25usize,
    ) {
        let c = config(POSITIVE_EVENTS);
        let before = score(&c, &lead, &events, NOW);
        let mut more = events.clone();
        more.insert(at.min(more.len()), extra);
        let after = score(&c, &lead, &more, NOW);
        prop_assert!(after.total >= before.total, "{} < {}", after.total, before.total);
        for rule in &before.breakdown {
            let now = after.breakdown.iter().find(|r| r.rule == rule.rule).map_or(0.0, |r| r.points);
            prop_assert!(now >= rule.points, "{}: {} < {}", rule.rule, now, rule.points);
        }
    }

    #[test]
    fn config_parsing_never_panics(text in config_text()) {
        let _ = ScoringConfig::parse(&text);
        let _ = LifecycleContract::parse(&text);
    }
}
