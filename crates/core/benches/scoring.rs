//! Scoring cost per lead: 20 rules (12 firmographic, 8 behavioural with decay, caps,
//! windows and URL globs) over a lead with 200 events, one thread. The app's target is
//! 10,000 events/s, each rescoring its lead, so this must stay at a few microseconds.
//!
//! Run: `cargo bench -p leadflow-core --bench scoring` (harness = false: plain timing,
//! median of 15 rounds of 20,000 scorings).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_core::scoring::{EventView, LifecycleContract, ScoringConfig, score};
use serde_json::{Map, Value, json};
use std::hint::black_box;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

const RULES: &str = r#"
[scoring]
mql_threshold = 60
decay_half_life_days = 30
gate = ["email", "company", "country|phone"]

[[scoring.rules]]
name = "target industry"
when = { field = "industry", in = ["software", "financial_services", "healthcare", "manufacturing"] }
points = 15
[[scoring.rules]]
name = "big company"
when = { field = "employee_count", gte = 200 }
points = 10
[[scoring.rules]]
name = "enterprise"
when = { field = "employee_count", gte = 5000 }
points = 10
[[scoring.rules]]
name = "target country"
when = { field = "country", in = ["US", "CA", "GB", "DE", "FR", "NL", "SE"] }
points = 5
[[scoring.rules]]
name = "decision maker"
when = { derived = "seniority", in = ["c_level", "vp", "director"] }
points = 15
[[scoring.rules]]
name = "buyer department"
when = { any = [ { derived = "department", is = "engineering" }, { derived = "department", is = "it" } ] }
points = 5
[[scoring.rules]]
name = "free mail"
when = { derived = "free_mail", is = true }
points = -20
[[scoring.rules]]
name = "disposable"
when = { derived = "disposable_email", is = true }
points = -50
[[scoring.rules]]
name = "student"
when = { any = [ { field = "job_title", contains = "student" }, { field = "email", matches = "*.edu" } ] }
points = -30
[[scoring.rules]]
name = "competitor"
when = { field = "email_domain", in = ["rival.com", "othercorp.io", "competitor.net"] }
points = -100
[[scoring.rules]]
name = "phone given"
when = { field = "phone", exists = true }
points = 3
[[scoring.rules]]
name = "paid plan interest"
when = { all = [ { field = "custom.plan", in = ["pro", "enterprise"] }, { not = { field = "utm_source", is = "affiliate" } } ] }
points = 5

[[scoring.rules]]
name = "pricing page"
when = { event = "page_view", url_matches = "*/pricing*", within_days = 30 }
points = 5
cap = 20
decay = true
[[scoring.rules]]
name = "docs reader"
when = { event = "page_view", url_matches = "*/docs/*", within_days = 60 }
points = 1
cap = 10
decay = true
[[scoring.rules]]
name = "any page"
when = { event = "page_view", within_days = 14 }
points = 0.5
cap = 10
decay = true
[[scoring.rules]]
name = "demo request"
when = { event = "form_submit", where = { field = "form", is = "demo" } }
points = 30
decay = true
[[scoring.rules]]
name = "webinar"
when = { event = ["webinar_attended", "webinar_replay"], within_days = 90 }
points = 10
cap = 20
decay = true
[[scoring.rules]]
name = "email clicks"
when = { event = "email_click", min_count = 3 }
points = 2
cap = 10
[[scoring.rules]]
name = "regular visitor"
when = { event = "*", min_count = 20, within_days = 30 }
points = 10
once = true
[[scoring.rules]]
name = "unsubscribed"
when = { event = "unsubscribe" }
points = -15
cap = 15
"#;

fn lead() -> Map<String, Value> {
    json!({
        "email": "ada@example.co.uk", "email_domain": "example.co.uk", "company": "Analytical Engines",
        "country": "GB", "industry": "software", "employee_count": 1200, "job_title": "VP Engineering",
        "seniority": "vp", "department": "engineering", "free_mail": false, "phone": "+442079460958",
        "custom.plan": "pro", "utm_source": "google",
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn events() -> Vec<EventView> {
    let kinds = [
        "page_view",
        "page_view",
        "page_view",
        "email_open",
        "email_click",
        "page_view",
        "form_submit",
        "webinar_attended",
    ];
    let urls = [
        "https://example.com/pricing",
        "https://example.com/docs/api",
        "https://example.com/blog/post",
        "https://example.com/",
    ];
    (0..200)
        .map(|i: usize| {
            let mut properties = Map::new();
            if kinds[i % kinds.len()] == "form_submit" {
                properties.insert("form".into(), json!(if i.is_multiple_of(3) { "demo" } else { "newsletter" }));
            }
            EventView {
                kind: kinds[i % kinds.len()].to_owned(),
                at: NOW - Duration::hours(i as i64 * 11),
                url: kinds[i % kinds.len()].eq("page_view").then(|| urls[i % urls.len()].to_owned()),
                properties,
            }
        })
        .collect()
}

fn per_call(rounds: usize, mut f: impl FnMut()) -> std::time::Duration {
    let mut samples: Vec<std::time::Duration> = (0..15)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                f();
            }
            start.elapsed() / u32::try_from(rounds).unwrap()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let config = ScoringConfig::parse(RULES).unwrap();
    assert_eq!(config.rules.len(), 20);
    let contract = LifecycleContract::default();
    let (lead, events) = (lead(), events());
    let s = score(&config, &lead, &events, NOW);
    assert!(s.total > config.mql_threshold, "{s:#?}");

    let t = per_call(20_000, || {
        black_box(score(black_box(&config), black_box(&lead), black_box(&events), NOW));
    });
    println!("score, 20 rules, 200 events: {t:?} per lead ({:.0} scorings/s)", 1.0 / t.as_secs_f64());
    let few: Vec<EventView> = events.iter().take(10).cloned().collect();
    let t = per_call(20_000, || {
        black_box(score(black_box(&config), black_box(&lead), black_box(&few), NOW));
    });
    println!("score, 20 rules, 10 events: {t:?} per lead ({:.0} scorings/s)", 1.0 / t.as_secs_f64());
    let t = per_call(20_000, || {
        let s = score(black_box(&config), black_box(&lead), black_box(&events), NOW);
        black_box(contract.advance(black_box("engaged"), &s, &config, NOW));
    });
    println!("score and advance, 200 events: {t:?} per lead");
}
