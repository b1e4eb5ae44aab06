use crate::{NOW, config, empty, event, lead, rules};
use leadflow_core::scoring::{EventView, score};
use serde_json::json;

fn total(toml: &str, l: serde_json::Value) -> i64 {
    score(&rules(toml), &lead(l), &[], NOW).total
}

fn rule(when: &str) -> String {
    format!("[[scoring.rules]]\nname = \"r\"\nwhen = {when}\npoints = 10\n")
}

#[test]
fn equality_ignores_ascii_case_and_reads_numbers_and_booleans() {
    assert_eq!(total(&rule(r#"{ field = "industry", is = "software" }"#), json!({"industry": "Software"})), 10);
    assert_eq!(total(&rule(r#"{ field = "industry", is = "software" }"#), json!({"industry": "retail"})), 0);
    assert_eq!(total(&rule(r#"{ field = "employee_count", is = 50 }"#), json!({"employee_count": "50"})), 10);
    assert_eq!(total(&rule(r#"{ derived = "free_mail", is = true }"#), json!({"free_mail": true})), 10);
    assert_eq!(total(&rule(r#"{ derived = "free_mail", is = true }"#), json!({"free_mail": false})), 0);
}

#[test]
fn in_and_not_in_lists() {
    let r = rule(r#"{ field = "email_domain", in = ["rival.com", "Other.io"] }"#);
    assert_eq!(total(&r, json!({"email_domain": "RIVAL.com"})), 10);
    assert_eq!(total(&r, json!({"email_domain": "other.io"})), 10);
    assert_eq!(total(&r, json!({"email_domain": "acme.com"})), 0);
    let r = rule(r#"{ field = "country", not_in = ["US", "CA"] }"#);
    assert_eq!(total(&r, json!({"country": "DE"})), 10);
    assert_eq!(total(&r, json!({"country": "us"})), 0);
    assert_eq!(total(&r, json!({})), 0, "not_in needs a value");
}

#[test]
fn numeric_ranges_accept_numbers_and_numeric_text() {
    let r = rule(r#"{ field = "employee_count", gte = 200, lte = 1000 }"#);
    assert_eq!(total(&r, json!({"employee_count": 200})), 10);
    assert_eq!(total(&r, json!({"employee_count": "1000"})), 10);
    assert_eq!(total(&r, json!({"employee_count": 1001})), 0);
    assert_eq!(total(&r, json!({"employee_count": "51-200"})), 0);
    assert_eq!(total(&rule(r#"{ field = "annual_revenue", lte = 1e6 }"#), json!({"annual_revenue": 5.0e5})), 10);
}

#[test]
fn exists_treats_blank_as_missing() {
    let r = rule(r#"{ field = "phone", exists = true }"#);
    assert_eq!(total(&r, json!({"phone": "+4420"})), 10);
    assert_eq!(total(&r, json!({"phone": "  "})), 0);
    assert_eq!(total(&r, json!({"phone": null})), 0);
    let r = rule(r#"{ field = "phone", exists = false }"#);
    assert_eq!(total(&r, json!({})), 10);
    assert_eq!(total(&r, json!({"phone": ""})), 10);
}

#[test]
fn contains_and_glob_matches_on_text() {
    let r = rule(r#"{ field = "job_title", contains = "Head of" }"#);
    assert_eq!(total(&r, json!({"job_title": "HEAD OF Growth"})), 10);
    assert_eq!(total(&r, json!({"job_title": "Growth lead"})), 0);
    let r = rule(r#"{ field = "email", matches = "*@*.edu" }"#);
    assert_eq!(total(&r, json!({"email": "kim@mit.edu"})), 10);
    assert_eq!(total(&r, json!({"email": "kim@mit.edu.com"})), 0);
}

#[test]
fn custom_fields_by_flat_or_nested_name_and_lists_match_any_element() {
    let r = rule(r#"{ field = "custom.interests", in = ["api"] }"#);
    assert_eq!(total(&r, json!({"custom.interests": ["ui", "API"]})), 10);
    assert_eq!(total(&r, json!({"custom": {"interests": "api"}})), 10);
    assert_eq!(total(&r, json!({"custom": {"interests": ["ui"]}})), 0);
}

#[test]
fn all_any_and_not_combine() {
    let r = rule(
        r#"{ all = [ { field = "industry", is = "software" }, { any = [ { field = "country", is = "DE" }, { field = "country", is = "AT" } ] }, { not = { derived = "free_mail", is = true } } ] }"#,
    );
    assert_eq!(total(&r, json!({"industry": "software", "country": "AT"})), 10);
    assert_eq!(total(&r, json!({"industry": "software", "country": "AT", "free_mail": true})), 0);
    assert_eq!(total(&r, json!({"industry": "software", "country": "US"})), 0);
}

#[test]
fn negative_rules_take_points_away_and_the_breakdown_names_every_rule() {
    let c = rules(
        r#"
[[scoring.rules]]
name = "target industry"
when = { field = "industry", in = ["software"] }
points = 15
[[scoring.rules]]
name = "free mail"
when = { derived = "free_mail", is = true }
points = -20
[[scoring.rules]]
name = "student"
when = { field = "job_title", contains = "student" }
points = -30
"#,
    );
    let s = score(&c, &lead(json!({"industry": "software", "free_mail": true})), &[], NOW);
    assert_eq!(s.total, -5);
    let names: Vec<(&str, f64)> = s.breakdown.iter().map(|r| (&*r.rule, r.points)).collect();
    assert_eq!(names, [("target industry", 15.0), ("free mail", -20.0)]);
}

const PRICING: &str = r#"
[[scoring.rules]]
name = "pricing"
when = { event = "page_view", url_matches = "*/pricing*", within_days = 30 }
points = 5
"#;

#[test]
fn event_rules_give_points_per_matching_event() {
    let c = rules(PRICING);
    let events = [
        event("page_view", 1.0, Some("https://x.io/pricing")),
        event("page_view", 2.0, Some("https://x.io/pricing?plan=pro")),
        event("page_view", 2.0, Some("https://x.io/docs")),
        event("page_view", 2.0, None),
        event("form_submit", 2.0, Some("https://x.io/pricing")),
    ];
    let s = score(&c, &empty(), &events, NOW);
    assert_eq!((s.total, s.breakdown[0].events, s.events_seen), (10, 2, 5));
}

#[test]
fn within_days_is_an_inclusive_window_and_future_events_count_as_now() {
    let c = rules(PRICING);
    let url = Some("https://x.io/pricing");
    let s = score(&c, &empty(), &[event("page_view", 30.0, url), event("page_view", 30.001, url)], NOW);
    assert_eq!(s.breakdown[0].events, 1, "30 days old is inside, just over is out");
    let s = score(&c, &empty(), &[event("page_view", -2.0, url)], NOW);
    assert_eq!(s.total, 5);
}

#[test]
fn caps_limit_a_rule_both_ways_and_are_reported() {
    let c = rules(
        r#"
[[scoring.rules]]
name = "visits"
when = { event = "page_view" }
points = 5
cap = 12
[[scoring.rules]]
name = "unsubscribes"
when = { event = "unsubscribe" }
points = -10
cap = 15
"#,
    );
    let events: Vec<EventView> = (0..4).map(|i| event("page_view", f64::from(i), None)).collect();
    let s = score(&c, &empty(), &events, NOW);
    assert_eq!((s.total, s.breakdown[0].capped, s.breakdown[0].events), (12, true, 4));
    let s = score(&c, &empty(), &events[..2], NOW);
    assert_eq!((s.total, s.breakdown[0].capped), (10, false));
    let s = score(&c, &empty(), &[event("unsubscribe", 0.0, None), event("unsubscribe", 1.0, None)], NOW);
    assert_eq!((s.total, s.breakdown[0].capped), (-15, true));
}

#[test]
fn decay_halves_points_every_half_life_exactly() {
    let c = config(
        r#"
[scoring]
decay_half_life_days = 10
[[scoring.rules]]
name = "webinar"
when = { event = "webinar" }
points = 40
decay = true
"#,
    );
    let points = |days: f64| score(&c, &empty(), &[event("webinar", days, None)], NOW).breakdown[0].points;
    assert_eq!(points(0.0), 40.0);
    assert_eq!(points(10.0), 20.0);
    assert_eq!(points(20.0), 10.0);
    assert_eq!(points(30.0), 5.0);
    assert_eq!(points(5.0), 28.28, "40 × 2^-0.5 = 28.284…, shown to two decimals");
    // 20 + 10 + 5 = 35: summed before rounding.
    let all = [event("webinar", 10.0, None), event("webinar", 20.0, None), event("webinar", 30.0, None)];
    assert_eq!(score(&c, &empty(), &all, NOW).total, 35);
}

#[test]
fn decay_applies_before_the_cap_and_rounding_happens_once_at_the_end() {
    let c = config(
        r#"
[scoring]
decay_half_life_days = 1
[[scoring.rules]]
name = "a"
when = { event = "a" }
points = 1
decay = true
cap = 1.2
[[scoring.rules]]
name = "b"
when = { event = "b" }
points = 0.3
"#,
    );
    // a: 1 + 0.5 = 1.5 → capped 1.2; b: 0.3 + 0.3 = 0.6 → total 1.8 → 2 (rounding each rule first would give 1 + 1).
    let events = [event("a", 0.0, None), event("a", 1.0, None), event("b", 0.0, None), event("b", 0.0, None)];
    let s = score(&c, &empty(), &events, NOW);
    assert_eq!(s.total, 2);
    assert_eq!((s.breakdown[0].points, s.breakdown[0].capped), (1.2, true));
}

#[test]
fn min_count_and_once() {
    let c = rules(
        r#"
[[scoring.rules]]
name = "regular"
when = { event = ["webinar", "replay"], min_count = 3 }
points = 4
[[scoring.rules]]
name = "engaged"
when = { event = "*", min_count = 2 }
points = 25
once = true
"#,
    );
    let two = [event("webinar", 1.0, None), event("replay", 2.0, None)];
    let s = score(&c, &empty(), &two, NOW);
    assert_eq!(s.total, 25, "two events: `regular` gives nothing yet, `engaged` gives its 25 once");
    let three = [event("webinar", 1.0, None), event("replay", 2.0, None), event("webinar", 3.0, None)];
    assert_eq!(score(&c, &empty(), &three, NOW).total, 12 + 25);
}

#[test]
fn where_tests_the_event_properties() {
    let c = rules(
        r#"
[[scoring.rules]]
name = "demo form"
when = { event = "form_submit", where = { field = "form", is = "demo" } }
points = 30
"#,
    );
    let mut demo = event("form_submit", 0.0, None);
    demo.properties.insert("form".into(), json!("Demo"));
    let newsletter = event("form_submit", 0.0, None);
    assert_eq!(score(&c, &empty(), &[demo, newsletter], NOW).total, 30);
}

#[test]
fn the_gate_lists_missing_fields_and_flags_a_high_score() {
    let c = config(
        r#"
[scoring]
mql_threshold = 10
gate = ["email", "company", "country|phone"]
[[scoring.rules]]
name = "big"
when = { field = "employee_count", gte = 100 }
points = 50
"#,
    );
    let s = score(&c, &lead(json!({"email": "a@b.co", "company": " ", "employee_count": 500})), &[], NOW);
    assert_eq!(s.gate.missing, ["company", "country|phone"]);
    assert!(!s.gate.passed && s.flagged);
    let s =
        score(&c, &lead(json!({"email": "a@b.co", "company": "B", "phone": "+1", "employee_count": 500})), &[], NOW);
    assert!(s.gate.passed && !s.flagged);
    let s = score(&c, &lead(json!({"email": "a@b.co"})), &[], NOW);
    assert!(!s.gate.passed && !s.flagged, "below the threshold nothing is flagged");
}

#[test]
fn the_score_serializes_with_its_breakdown() {
    let c = rules(&rule(r#"{ field = "industry", is = "software" }"#));
    let s = score(&c, &lead(json!({"industry": "software"})), &[], NOW);
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"total": 10, "breakdown": [{"rule": "r", "points": 10.0, "capped": false, "events": 0}],
               "gate": {"passed": true, "missing": []}, "flagged": false, "events_seen": 0})
    );
}

fn errors(toml: &str) -> Vec<String> {
    leadflow_core::scoring::ScoringConfig::parse(toml).unwrap_err().iter().map(ToString::to_string).collect()
}

#[test]
fn config_errors_are_located_with_line_column_and_dotted_key() {
    let shown = errors(
        r#"[scoring]
mql_threshold = "high"
gate = ["email", "shoe_size"]
colour = 1

[[scoring.rules]]
name = "a"
when = { field = "industri", is = "software" }
points = 5

[[scoring.rules]]
name = "b"
when = { field = "industry", in = [] }
points = 0

[[scoring.rules]]
name = "c"
when = { derived = "free_mail", is = true }
points = 5
cap = 10

[[scoring.rules]]
name = "d"
when = { event = "page_view", within_days = -1, colour = 1 }
points = 5

[[scoring.rules]]
name = "a"
when = { all = [ { field = "industry" }, { event = "x" } ] }
points = 1
"#,
    );
    let expect = [
        "2:17: scoring.mql_threshold",
        "3:18: scoring.gate[1]",
        "4:10: scoring.colour",
        "8:18: scoring.rules[0].when.field: unknown field \"industri\"",
        "13:35: scoring.rules[1].when.in",
        "14:10: scoring.rules[1].points",
        "20:7: scoring.rules[2].cap: applies to event rules only",
        "24:45: scoring.rules[3].when.within_days",
        "24:58: scoring.rules[3].when.colour",
        "29:18: scoring.rules[4].when.all[0]: a condition needs one of",
        "29:42: scoring.rules[4].when.all[1]: an event condition stands alone",
    ];
    for e in expect {
        assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), expect.len(), "{shown:#?}");
}

#[test]
fn rule_names_are_unique_and_required_keys_are_named() {
    let shown = errors(
        "[[scoring.rules]]\nname = \"a\"\nwhen = { field = \"industry\", exists = true }\npoints = 1\n[[scoring.rules]]\nname = \"a\"\nwhen = { field = \"industry\", exists = true }\npoints = 1\n[[scoring.rules]]\nname = \"b\"\n",
    );
    assert!(
        shown.iter().any(|s| s.starts_with("5:1: scoring.rules[1].name: a rule named \"a\" already exists")),
        "{shown:#?}"
    );
    assert!(shown.iter().any(|s| s.contains("scoring.rules[2]: a rule needs `points`")), "{shown:#?}");
}

#[test]
fn rules_may_be_written_as_tables_too() {
    let c = config(
        "[[scoring.rules]]\nname = \"t\"\npoints = 3\n[scoring.rules.when]\nany = [{ field = \"industry\", is = \"x\" }]\n",
    );
    assert_eq!(score(&c, &lead(json!({"industry": "X"})), &[], NOW).total, 3);
}

#[test]
fn toml_syntax_errors_are_located() {
    let e = leadflow_core::scoring::ScoringConfig::parse("[scoring]\nmql_threshold = \n").unwrap_err();
    assert_eq!((e.len(), e[0].line), (1, 2));
}
