use crate::{NOW, config, empty, event, lead};
use leadflow_core::scoring::lifecycle::{Actor, Refusal, StageHistory};
use leadflow_core::scoring::{LifecycleContract, score};
use serde_json::json;
use time::Duration;

fn ada() -> Actor {
    Actor::User("ada".into())
}

#[test]
fn the_default_contract_round_trips_through_toml() {
    let default = LifecycleContract::default();
    let text = default.to_toml();
    assert_eq!(LifecycleContract::parse(&text).unwrap_or_else(|e| panic!("{e:#?}\n{text}")), default);
    assert_eq!(LifecycleContract::parse("").unwrap(), default);
    assert_eq!(
        default.stages().collect::<Vec<_>>(),
        ["new", "engaged", "mql", "sal", "sql", "opportunity", "customer", "disqualified", "recycled"]
    );
}

#[test]
fn an_illegal_transition_is_refused_with_the_allowed_ones_listed() {
    let c = LifecycleContract::default();
    let e = c.transition("sal", "customer", ada(), None, NOW).unwrap_err();
    assert_eq!(e.refusal, Refusal::NotAllowed);
    assert_eq!(e.allowed, ["sql", "disqualified", "recycled"]);
    assert_eq!(
        e.to_string(),
        "cannot move a lead from `sal` to `customer`: the contract has no such transition; allowed from `sal`: sql, disqualified, recycled"
    );
    let e = c.transition("sal", "won", ada(), None, NOW).unwrap_err();
    assert_eq!((e.refusal.code(), e.allowed.len()), ("unknown_stage", 3));
}

#[test]
fn automatic_transitions_cannot_be_made_by_hand() {
    let e = LifecycleContract::default().transition("engaged", "mql", ada(), None, NOW).unwrap_err();
    assert_eq!(e.refusal.code(), "transition_automatic_only");
    assert_eq!(e.allowed, ["disqualified"]);
}

#[test]
fn disqualifying_needs_a_reason_from_the_picklist() {
    let c = LifecycleContract::default();
    let e = c.transition("engaged", "disqualified", ada(), None, NOW).unwrap_err();
    assert!(matches!(&e.refusal, Refusal::ReasonRequired { reasons } if reasons.contains(&"student".to_owned())));
    let e = c.transition("engaged", "disqualified", ada(), Some("  "), NOW).unwrap_err();
    assert_eq!(e.refusal.code(), "reason_required");
    let e = c.transition("engaged", "disqualified", ada(), Some("dislike their logo"), NOW).unwrap_err();
    assert_eq!(e.refusal.code(), "reason_not_in_picklist");
    let t = c.transition("engaged", "disqualified", ada(), Some("student"), NOW).unwrap();
    assert_eq!((t.reason.as_deref(), t.actor, t.automatic, t.handoff), (Some("student"), ada(), false, false));
}

#[test]
fn recycling_needs_a_reason_in_free_text() {
    let c = LifecycleContract::default();
    assert_eq!(c.transition("sal", "recycled", ada(), None, NOW).unwrap_err().refusal.code(), "reason_required");
    let t = c.transition("sal", "recycled", ada(), Some("not this quarter"), NOW).unwrap();
    assert_eq!(t.reason.as_deref(), Some("not this quarter"));
}

#[test]
fn a_qualified_lead_becomes_an_mql_with_a_handoff_and_a_gated_one_does_not() {
    let cfg = config(
        "[scoring]\nmql_threshold = 10\ngate = [\"company\"]\n[[scoring.rules]]\nname = \"big\"\nwhen = { field = \"employee_count\", gte = 100 }\npoints = 20\n",
    );
    let c = LifecycleContract::default();
    let good = score(&cfg, &lead(json!({"employee_count": 500, "company": "Acme"})), &[], NOW);
    let t = c.automatic("engaged", &good, &cfg, NOW).unwrap();
    assert_eq!((t.to.as_str(), t.handoff, t.automatic, &t.actor), ("mql", true, true, &Actor::System));
    assert_eq!(t.reason.as_deref(), Some("score 20 reached the threshold 10"));

    let gated = score(&cfg, &lead(json!({"employee_count": 500})), &[], NOW);
    assert!(gated.flagged);
    assert_eq!(c.automatic("engaged", &gated, &cfg, NOW), None);
    assert_eq!(c.automatic("sal", &good, &cfg, NOW), None, "no automatic move out of sal");
}

#[test]
fn a_first_event_engages_a_new_lead_and_advance_chains_to_mql() {
    let cfg = config(
        "[scoring]\nmql_threshold = 5\ngate = []\n[[scoring.rules]]\nname = \"visit\"\nwhen = { event = \"page_view\" }\npoints = 1\n",
    );
    let c = LifecycleContract::default();
    let one = score(&cfg, &empty(), &[event("page_view", 0.0, None)], NOW);
    let moves = c.advance("new", &one, &cfg, NOW);
    assert_eq!(moves.iter().map(|t| t.to.as_str()).collect::<Vec<_>>(), ["engaged"]);
    assert_eq!(moves[0].reason.as_deref(), Some("first behavioural event"));
    let many: Vec<_> = (0..6).map(|_| event("page_view", 0.0, None)).collect();
    let s = score(&cfg, &empty(), &many, NOW);
    let moves = c.automatic("new", &s, &cfg, NOW).unwrap();
    assert_eq!(moves.to, "mql", "a lead that qualifies at once skips engaged");
    assert!(c.advance("new", &score(&cfg, &empty(), &[], NOW), &cfg, NOW).is_empty());
}

#[test]
fn history_gives_the_time_spent_in_each_stage() {
    let c = LifecycleContract::default();
    let created = NOW - Duration::days(10);
    let t1 = c.transition("mql", "sal", ada(), None, created + Duration::days(1)).unwrap();
    let t2 = c.transition("sal", "recycled", ada(), Some("later"), created + Duration::days(3)).unwrap();
    let t3 = c.transition("recycled", "engaged", ada(), None, created + Duration::days(8)).unwrap();
    let h = StageHistory::new("mql", created, &[t3, t1, t2]);
    assert_eq!(h.current(), "engaged");
    let days: Vec<(String, i64, u32)> =
        h.time_in_stages(NOW).into_iter().map(|t| (t.stage, t.seconds / 86_400, t.visits)).collect();
    assert_eq!(days, [("mql".into(), 1, 1), ("sal".into(), 2, 1), ("recycled".into(), 5, 1), ("engaged".into(), 2, 1)]);
    assert_eq!(h.time_in("sal", NOW), Duration::days(2));
}

#[test]
fn a_transition_serializes_as_a_history_row() {
    let t = LifecycleContract::default().transition("mql", "sal", ada(), None, NOW).unwrap();
    assert_eq!(
        serde_json::to_value(&t).unwrap(),
        json!({"from": "mql", "to": "sal", "at": "2025-06-01T12:00:00Z", "actor": {"user": "ada"},
               "automatic": false, "handoff": false})
    );
}

fn errors(toml: &str) -> Vec<String> {
    LifecycleContract::parse(toml).unwrap_err().iter().map(ToString::to_string).collect()
}

fn assert_has(shown: &[String], expect: &[&str]) {
    for e in expect {
        assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
    }
}

#[test]
fn contract_errors_are_located() {
    let shown = errors(
        r#"[lifecycle]
stages = ["new", "mql", "won", "lost", "limbo", "Bad Name"]
disqualified = "lost"
disqualify_reasons = []

[[lifecycle.transitions]]
from = ["new"]
to = "mql"
automatic = "sometimes"

[[lifecycle.transitions]]
from = ["mql", "wonn"]
to = "won"

[[lifecycle.transitions]]
from = "*"
to = "lost"
reason_required = false

[[lifecycle.transitions]]
from = ["new"]
to = "nowhere"

[[lifecycle.transitions]]
from = ["mql"]
to = "mql"
"#,
    );
    assert_has(
        &shown,
        &[
            "1:1: lifecycle.transitions: no transition into the handoff stage `mql`",
            "2:40: lifecycle.stages[4]: stage `limbo` cannot be reached from `new`",
            "2:49: lifecycle.stages[5]: must be a snake_case name",
            "4:22: lifecycle.disqualify_reasons: must be a non-empty list",
            "9:13: lifecycle.transitions[0].automatic: must be \"score\"",
            "12:16: lifecycle.transitions[1].from: unknown stage `wonn` (stages: new, mql, won, lost, limbo)",
            "18:19: lifecycle.transitions[2].reason_required: entering the disqualified stage always needs a reason",
            "22:6: lifecycle.transitions[3].to: unknown stage `nowhere`",
            "25:9: lifecycle.transitions[4].from: `mql` cannot transition to itself",
        ],
    );
}

#[test]
fn graph_errors_are_reported_at_the_stage_or_rule() {
    let shown = errors(
        r#"[lifecycle]
stages = ["new", "engaged", "mql", "won", "limbo"]

[[lifecycle.transitions]]
from = ["new"]
to = "engaged"
automatic = "first_event"

[[lifecycle.transitions]]
from = ["engaged"]
to = "won"
automatic = "score"

[[lifecycle.transitions]]
from = ["engaged"]
to = "mql"
automatic = "first_event"

[[lifecycle.transitions]]
from = ["new", "engaged"]
to = "engaged"
"#,
    );
    assert_has(
        &shown,
        &[
            "1:1: lifecycle.transitions: no transition into the handoff stage `mql` has automatic = \"score\"",
            "2:43: lifecycle.stages[4]: stage `limbo` cannot be reached from `new`",
            "12:13: lifecycle.transitions[1].automatic: the score trigger leads to the handoff stage `mql` only",
            "17:13: lifecycle.transitions[2].automatic: the first_event trigger starts from the initial stage `new` only",
            "19:1: lifecycle.transitions[3]: the transition `new` → `engaged` is already declared",
        ],
    );
}

#[test]
fn partial_sections_are_checked() {
    assert_has(&errors("[lifecycle]\nstages = [\"new\", \"mql\"]\n"), &["2:10: lifecycle.stages: custom stages need"]);
    assert_has(&errors("[lifecycle]\nhandoff = \"sale\"\n"), &["2:11: lifecycle.handoff: unknown stage `sale`"]);
    assert_has(&errors("[lifecycle]\ncolour = 1\n"), &["2:10: lifecycle.colour: unknown key"]);
    let c = LifecycleContract::parse("[lifecycle]\ndisqualify_reasons = [\"spam\"]\n").unwrap();
    assert_eq!(c.disqualify_reasons(), ["spam"]);
}

#[test]
fn a_small_custom_contract_works_end_to_end() {
    let c = LifecycleContract::parse(
        r#"[lifecycle]
stages = ["new", "mql", "customer", "lost"]
disqualified = "lost"
disqualify_reasons = ["spam"]
[[lifecycle.transitions]]
from = ["new"]
to = "mql"
automatic = "score"
[[lifecycle.transitions]]
from = ["mql"]
to = "customer"
[[lifecycle.transitions]]
from = "*"
to = "lost"
"#,
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(c.allowed_from("new"), ["lost"]);
    assert_eq!(c.allowed_from("customer"), ["lost"]);
    assert!(c.transition("customer", "lost", ada(), Some("spam"), NOW).is_ok());
    assert_eq!(LifecycleContract::parse(&c.to_toml()).unwrap(), c);
}
