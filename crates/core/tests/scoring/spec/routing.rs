//! Routing: rule order, strategies, availability, caps, account ownership, fallback,
//! and the configuration's errors.

use leadflow_core::scoring::routing::{Context, Decision, RoutingConfig, SlaAction, Via};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::Duration;
use time::macros::date;

fn routing(toml: &str) -> RoutingConfig {
    RoutingConfig::parse(toml).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn lead(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

const TEAM: &str = r#"
[routing]
fallback_owner = "queue"
priority_sources = ["demo", "chat"]

[[routing.reps]]
id = "ana"
weight = 2
daily_cap = 2
territories = ["US-CA", "DE"]

[[routing.reps]]
id = "ben"
territories = ["US"]

[[routing.reps]]
id = "cai"
territories = ["US-CA"]
away = [{ from = "2026-12-20", to = "2027-01-02" }]

[[routing.rules]]
name = "enterprise"
when = { field = "employee_count", gte = 1000 }
strategy = "round_robin"
reps = ["ana", "ben", "cai"]
account_based = true
sla_minutes = 30

[[routing.rules]]
name = "weighted"
when = { field = "source", is = "partner" }
strategy = "weighted"
reps = ["ana", "ben"]

[[routing.rules]]
name = "territory"
when = { field = "country", exists = true }
strategy = "territory"
reps = ["ana", "ben", "cai"]
sla_minutes = 5
sla_action = "escalate"
escalate_to = "manager"
"#;

fn route(config: &RoutingConfig, l: &Map<String, Value>, ctx: &Context<'_>) -> Decision {
    config.plan(l).decide(ctx, config.fallback_owner.as_ref()).unwrap()
}

fn ctx<'a>(position: u64) -> Context<'a> {
    Context { position, today: Some(date!(2026 - 11 - 21)), ..Context::default() }
}

#[test]
fn the_first_matching_rule_routes_and_says_so() {
    let config = routing(TEAM);
    let d = route(&config, &lead(json!({"employee_count": 5000, "country": "DE"})), &ctx(0));
    assert_eq!(d.rule.as_deref(), Some("enterprise"));
    assert_eq!((&*d.owner, d.via, d.next_position), ("ana", Via::RoundRobin, Some(1)));
    assert_eq!(d.steps.first().map(String::as_str), Some("rule \"enterprise\" matched"));
    assert!(d.steps.iter().any(|s| s.contains("round_robin: ana")), "{:?}", d.steps);
    assert_eq!(config.rule("enterprise").unwrap().sla.as_ref().unwrap().after, Duration::from_secs(1800));
}

#[test]
fn no_matching_rule_goes_to_the_fallback_owner() {
    let config = routing(TEAM);
    let d = route(&config, &lead(json!({"employee_count": 10})), &ctx(0));
    assert_eq!((&*d.owner, d.via, d.rule.clone()), ("queue", Via::Fallback, None));
    let without = routing(
        "[[routing.reps]]\nid = \"ana\"\n\n[[routing.rules]]\nname = \"x\"\nwhen = { field = \"country\", is = \"FR\" }\nstrategy = \"round_robin\"\nreps = [\"ana\"]\n",
    );
    assert!(without.plan(&lead(json!({}))).decide(&ctx(0), None).is_err(), "nobody to give it to");
}

#[test]
fn round_robin_takes_turns_from_the_stored_position() {
    let config = routing(TEAM);
    let l = lead(json!({"employee_count": 5000}));
    let mut position = 0;
    let mut owners = Vec::new();
    for _ in 0..6 {
        let d = route(&config, &l, &ctx(position));
        position = d.next_position.unwrap();
        owners.push(d.owner.to_string());
    }
    assert_eq!(owners, ["ana", "ben", "cai", "ana", "ben", "cai"]);
}

#[test]
fn away_inactive_and_capped_reps_are_passed_over_with_the_reason() {
    let config = routing(TEAM);
    let l = lead(json!({"employee_count": 5000}));
    let mut c = ctx(2);
    c.today = Some(date!(2026 - 12 - 24));
    let d = route(&config, &l, &c);
    assert_eq!(&*d.owner, "ana", "cai is away, so the turn passes on: {:?}", d.steps);
    assert!(d.steps.iter().any(|s| s == "cai: away until 2027-01-02"), "{:?}", d.steps);

    c.assigned_today = HashMap::from([("ana".to_owned(), 2)]);
    let d = route(&config, &l, &c);
    assert_eq!(&*d.owner, "ben");
    assert!(d.steps.iter().any(|s| s == "ana: reached the daily cap of 2"), "{:?}", d.steps);

    let exclude = ["ben".to_owned()];
    c.exclude = &exclude;
    let d = route(&config, &l, &c);
    assert_eq!((&*d.owner, d.via), ("queue", Via::Fallback), "nobody left: {:?}", d.steps);
}

#[test]
fn account_owner_first_then_a_related_leads_owner() {
    let config = routing(TEAM);
    let l = lead(json!({"employee_count": 5000}));
    let related = vec!["cai".to_owned(), "ben".to_owned()];
    let mut c = ctx(0);
    c.account_owner = Some("outside-crm-user");
    c.related_owners = &related;
    let d = route(&config, &l, &c);
    assert_eq!((&*d.owner, d.via, d.next_position), ("outside-crm-user", Via::AccountOwner, None));

    c.account_owner = Some("ana");
    c.assigned_today = HashMap::from([("ana".to_owned(), 2)]);
    c.today = Some(date!(2026 - 12 - 24));
    let d = route(&config, &l, &c);
    assert_eq!((&*d.owner, d.via), ("ben", Via::RelatedLead), "ana capped, cai away: {:?}", d.steps);

    c.account_owner = None;
    c.related_owners = &[];
    let d = route(&config, &l, &c);
    assert_eq!(d.via, Via::RoundRobin);
    assert!(d.steps.iter().any(|s| s == "the account has no owner"));
}

#[test]
fn weighted_turns_follow_the_weights_evenly() {
    let config = routing(TEAM);
    let l = lead(json!({"source": "partner"}));
    let mut position = 0;
    let mut owners = Vec::new();
    for _ in 0..6 {
        let d = route(&config, &l, &ctx(position));
        assert_eq!(d.via, Via::Weighted);
        position = d.next_position.unwrap();
        owners.push(d.owner.to_string());
    }
    assert_eq!(owners, ["ana", "ben", "ana", "ana", "ben", "ana"]);
}

#[test]
fn territory_prefers_state_reps_then_country_reps() {
    let config = routing(TEAM);
    let ca = lead(json!({"country": "US", "state": "CA"}));
    let plan = config.plan(&ca);
    assert_eq!(plan.queue, "territory/US-CA");
    let owners: Vec<&str> = plan.offer.iter().map(|r| &*r.id).collect();
    assert_eq!(owners, ["ana", "cai"]);

    let ny = lead(json!({"country": "us", "state": "NY"}));
    let plan = config.plan(&ny);
    assert_eq!((plan.queue.as_str(), plan.offer.len()), ("territory/US", 1));
    assert_eq!(&*route(&config, &ny, &ctx(7)).owner, "ben");

    let fr = lead(json!({"country": "FR"}));
    let d = route(&config, &fr, &ctx(0));
    assert_eq!((&*d.owner, d.via), ("queue", Via::Fallback));
    assert!(d.steps.iter().any(|s| s == "no rep covers territory FR"), "{:?}", d.steps);
    let sla = config.rule("territory").unwrap().sla.as_ref().unwrap();
    assert_eq!(sla.action, SlaAction::Escalate("manager".into()));
}

#[test]
fn source_priority_ranks_sources() {
    let config = routing(TEAM);
    assert!(config.outranks("demo", Some("chat")));
    assert!(!config.outranks("chat", Some("demo")));
    assert!(config.outranks("chat", Some("web")), "a listed source outranks an unlisted one");
    assert!(!config.outranks("web", None));
    assert!(!config.outranks("demo", Some("demo")));
}

#[test]
fn routing_conditions_read_score_and_stage() {
    let config = routing(
        r#"
[[routing.reps]]
id = "ana"
[[routing.rules]]
name = "hot"
when = { all = [{ field = "score", gte = 80 }, { field = "lifecycle_stage", is = "mql" }] }
strategy = "round_robin"
reps = ["ana"]
"#,
    );
    assert!(config.plan(&lead(json!({"score": 90, "lifecycle_stage": "mql"}))).rule.is_some());
    assert!(config.plan(&lead(json!({"score": 50, "lifecycle_stage": "mql"}))).rule.is_none());
}

#[test]
fn configuration_errors_are_located_and_all_reported() {
    let text = r#"
[routing]
fallback_owner = ""
colour = "blue"

[[routing.reps]]
id = "ana"
weight = 0
territories = ["California"]
away = [{ from = "2026-12-20", to = "2026-12-01" }]

[[routing.rules]]
name = "x"
strategy = "random"
reps = ["ana", "zed"]

[[routing.rules]]
name = "y"
strategy = "round_robin"
reps = ["ana"]
sla_action = "escalate"
sla_minutes = 10
"#;
    let errors = RoutingConfig::parse(text).unwrap_err();
    let shown: Vec<String> =
        errors.iter().map(|e| format!("{}:{} {}: {}", e.line, e.column, e.key, e.message)).collect();
    let has = |needle: &str| shown.iter().any(|e| e.contains(needle));
    assert!(has("routing.fallback_owner"), "{shown:#?}");
    assert!(has("routing.colour: unknown key"), "{shown:#?}");
    assert!(has("routing.reps[0].weight"), "{shown:#?}");
    assert!(has("routing.reps[0].territories"), "{shown:#?}");
    assert!(has("`from` must not be after `to`"), "{shown:#?}");
    assert!(has("routing.rules[0].strategy"), "{shown:#?}");
    assert!(has("\"zed\" is not a rep"), "{shown:#?}");
    assert!(has("escalation needs `escalate_to`"), "{shown:#?}");
    assert!(errors.iter().all(|e| e.line > 1), "every error is located: {shown:#?}");
}

proptest! {
    /// Over any number of whole cycles, round robin gives every available rep the same
    /// number of leads and weighted gives each its weight's share, whatever the start.
    #[test]
    fn turns_are_fair(start in 0u64..1000, rounds in 1usize..5, weights in proptest::collection::vec(1u32..5, 1..5)) {
        let mut toml = String::new();
        for (i, w) in weights.iter().enumerate() {
            toml.push_str(&format!("[[routing.reps]]\nid = \"r{i}\"\nweight = {w}\n"));
        }
        let ids: Vec<String> = (0..weights.len()).map(|i| format!("\"r{i}\"")).collect();
        for strategy in ["round_robin", "weighted"] {
            toml.push_str(&format!("[[routing.rules]]\nname = \"{strategy}\"\nwhen = {{ field = \"industry\", is = \"{strategy}\" }}\nstrategy = \"{strategy}\"\nreps = [{}]\n", ids.join(", ")));
        }
        let config = routing(&toml);
        let total: u32 = weights.iter().sum();
        for strategy in ["round_robin", "weighted"] {
            let l = lead(json!({"industry": strategy}));
            let per_cycle = if strategy == "weighted" { total as usize } else { weights.len() };
            let mut position = start;
            let mut counts = vec![0usize; weights.len()];
            for _ in 0..per_cycle * rounds {
                let d = route(&config, &l, &ctx(position));
                position = d.next_position.unwrap();
                counts[d.owner[1..].parse::<usize>().unwrap()] += 1;
            }
            for (i, w) in weights.iter().enumerate() {
                let want = if strategy == "weighted" { *w as usize * rounds } else { rounds };
                prop_assert_eq!(counts[i], want, "{} rep {} of {:?}", strategy, i, weights);
            }
        }
    }
}
