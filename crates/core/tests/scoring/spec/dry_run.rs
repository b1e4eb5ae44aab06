use crate::{NOW, config, event, lead};
use leadflow_core::scoring::{EventView, LifecycleContract, StageChange, rescore_dry_run};
use serde_json::{Map, Value, json};

#[test]
fn a_dry_run_counts_changed_scores_and_stage_changes() {
    let old = config(
        "[scoring]\nmql_threshold = 50\ngate = []\n[[scoring.rules]]\nname = \"big\"\nwhen = { field = \"employee_count\", gte = 500 }\npoints = 40\n",
    );
    let new = config(
        "[scoring]\nmql_threshold = 50\ngate = []\n[[scoring.rules]]\nname = \"big\"\nwhen = { field = \"employee_count\", gte = 200 }\npoints = 60\n",
    );
    let leads: Vec<(&str, Map<String, Value>, Vec<EventView>)> = vec![
        ("engaged", lead(json!({"employee_count": 300})), vec![]),
        ("new", lead(json!({"employee_count": 800})), vec![event("page_view", 1.0, None)]),
        ("new", lead(json!({"employee_count": 10})), vec![event("page_view", 1.0, None)]),
        ("sal", lead(json!({"employee_count": 900})), vec![]),
        ("new", lead(json!({"employee_count": 10})), vec![]),
    ];
    let s = rescore_dry_run(leads, &old, &new, &LifecycleContract::default(), NOW);
    assert_eq!((s.leads, s.changed_score, s.flagged), (5, 3, 0));
    let change = |from: &str, to: &str, count| StageChange { from: from.into(), to: to.into(), count };
    assert_eq!(
        s.would_change_stage,
        [change("engaged", "mql", 1), change("new", "engaged", 1), change("new", "mql", 1)]
    );
    assert_eq!(s.stage_changes(), 3);
}
