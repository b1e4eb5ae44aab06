//! `[alerts]` through the whole file's [`crate::config::parse`]: defaults, replacement by
//! kind, and every problem at its line.

use super::*;
use crate::config::{parse, parse_with_env};

const NAMES: &str = r#"
[[sources]]
name = "web"

[[destinations]]
name = "crm"
type = "webhook"
url = "https://crm.example.com/hook"
secret_env = "CRM_SECRET"
"#;

fn keys(c: &AlertConfig) -> Vec<&str> {
    c.rules.iter().map(|r| r.key.as_str()).collect()
}

fn errors(alerts: &str) -> Vec<String> {
    parse(&format!("{NAMES}{alerts}")).unwrap_err().iter().map(ToString::to_string).collect()
}

fn has(shown: &[String], prefix: &str, words: &str) {
    assert!(
        shown.iter().any(|s| s.starts_with(prefix) && s.contains(words)),
        "missing {prefix:?} {words:?} in {shown:#?}"
    );
}

#[test]
fn without_a_section_the_seed_rules_apply_and_no_channel() {
    let c = parse("").unwrap();
    assert_eq!(*c.alerts, AlertConfig::default());
    let a = &c.alerts;
    assert_eq!(
        (a.evaluate_every, a.keep_firing_for, a.remind_every),
        (Duration::from_secs(30), Duration::from_secs(600), Duration::from_secs(14_400))
    );
    assert!(a.channels.is_empty());
    let rules: Vec<(Kind, String, Threshold)> =
        a.rules.iter().map(|r| (r.kind, r.target.to_string(), r.threshold)).collect();
    assert_eq!(
        rules,
        [
            (Kind::ErrorRate, "destination:*".into(), Threshold::Fraction(0.05)),
            (Kind::Silence, "source:*".into(), Threshold::Duration(Duration::from_secs(86_400))),
            (Kind::Latency, "destination:*".into(), Threshold::Duration(Duration::from_secs(900))),
            (Kind::Latency, "source:*".into(), Threshold::Duration(Duration::from_secs(900))),
            (Kind::Volume, "source:*".into(), Threshold::Fraction(0.5)),
            (Kind::Backlog, "destination:*".into(), Threshold::Count(100)),
            (Kind::Backlog, "source:*".into(), Threshold::Count(100)),
            (Kind::PendingFetch, "source:*".into(), Threshold::Duration(Duration::from_secs(3_600))),
        ]
    );
    let error_rate = &a.rules[0];
    assert_eq!((error_rate.window, error_rate.min_events), (Some(Duration::from_secs(3_600)), 20));
    assert!(a.rules.iter().all(|r| r.enabled));
    // An empty section, or one with settings only, keeps them too.
    assert_eq!(parse("[alerts]\nremind_every = \"1h\"\n").unwrap().alerts.rules, default_rules());
}

#[test]
fn a_written_rule_replaces_only_the_default_of_its_kind_and_side() {
    let c = parse(&format!(
        "{NAMES}[alerts]\nkeep_firing_for = \"1m\"\n[[alerts.rules]]\nkind = \"error_rate\"\nscope = \"destination:*\"\nthreshold = 0.2\nwindow = \"10s\"\nmin_events = 3\nkeep_firing_for = \"5s\"\n[[alerts.rules]]\nkind = \"backlog\"\nscope = \"source:*\"\nthreshold = 7\n"
    ))
    .unwrap();
    let a = &c.alerts;
    assert_eq!(
        keys(a),
        [
            "error_rate#0",
            "backlog#0",
            "silence#default-source",
            "latency#default-destination",
            "latency#default-source",
            "volume#default-source",
            "backlog#default-destination",
            "pending_fetch#default-source",
        ]
    );
    let r = &a.rules[0];
    assert_eq!(
        (r.threshold, r.window, r.min_events, r.keep_firing_for),
        (Threshold::Fraction(0.2), Some(Duration::from_secs(10)), 3, Some(Duration::from_secs(5)))
    );
    assert_eq!(a.rules[1].threshold, Threshold::Count(7));
    assert_eq!(a.keep_firing_for(&RuleKey("error_rate#0".into())), Duration::from_secs(5));
    assert_eq!(a.keep_firing_for(&RuleKey("silence#default-source".into())), Duration::from_secs(60));
}

#[test]
fn a_rule_naming_one_scope_keeps_the_default_and_can_switch_it_off() {
    let c = parse(&format!(
        "{NAMES}[[alerts.rules]]\nkind = \"silence\"\nscope = \"source:web\"\nenabled = false\n[[alerts.rules]]\nkind = \"silence\"\nscope = \"source:api\"\nwindow = \"2h\"\n"
    ))
    .unwrap();
    let a = &c.alerts;
    assert_eq!(&keys(a)[..3], ["silence#0", "silence#1", "error_rate#default-destination"]);
    assert!(keys(a).contains(&"silence#default-source"));
    assert!(!a.rules[0].enabled);
    assert_eq!(a.rules[1].threshold, Threshold::Duration(Duration::from_secs(7_200)));
    assert_eq!(a.enabled().count(), a.rules.len() - 1);
}

#[test]
fn channels_of_each_type_are_read_and_their_variables_checked() {
    let text = format!(
        r#"{NAMES}
[[alerts.channels]]
name = "ops"
type = "webhook"
url = "https://ops.example.com/alerts"
secret_env = "OPS_ALERT_SECRET"

[[alerts.channels]]
name = "team-slack"
type = "slack"
url_env = "SLACK_ALERTS_URL"

[[alerts.channels]]
name = "mail"
type = "email"
to = ["Ops@Example.com", "oncall@example.com"]
from = "leadflow@example.com"
smtp_url_env = "SMTP_URL"
"#
    );
    let c = parse(&text).unwrap();
    let kinds: Vec<(&str, &str)> = c.alerts.channels.iter().map(|c| (c.name.as_str(), c.kind.as_str())).collect();
    assert_eq!(kinds, [("ops", "webhook"), ("team-slack", "slack"), ("mail", "email")]);
    match &c.alerts.channels[2].kind {
        ChannelKind::Email { to, from, smtp_url_env } => {
            assert_eq!(to.iter().map(Email::as_str).collect::<Vec<_>>(), ["ops@example.com", "oncall@example.com"]);
            assert_eq!((from.as_str(), smtp_url_env.as_str()), ("leadflow@example.com", "SMTP_URL"));
        }
        other => panic!("{other:?}"),
    }
    let errs = parse_with_env(&text, |v| v == "CRM_SECRET" || v == "SMTP_URL").unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    has(&shown, "15:14: alerts.channels[0].secret_env", "OPS_ALERT_SECRET is not set");
    has(&shown, "20:11: alerts.channels[1].url_env", "SLACK_ALERTS_URL is not set");
    assert_eq!(shown.len(), 2, "{shown:#?}");
}

#[test]
fn every_rule_problem_is_reported_at_its_key() {
    let shown = errors(
        r#"
[alerts]
evaluate_every = "0s"
colour = "red"

[[alerts.rules]]
kind = "weather"
scope = "source:web"

[[alerts.rules]]
kind = "silence"
scope = "source:nowhere"

[[alerts.rules]]
kind = "error_rate"
scope = "source:web"

[[alerts.rules]]
kind = "backlog"
scope = "destination:gone"

[[alerts.rules]]
kind = "error_rate"
scope = "destination:crm"
threshold = 5
window = "soon"
min_events = -1

[[alerts.rules]]
kind = "latency"
scope = "destination:*"
threshold = 900

[[alerts.rules]]
kind = "backlog"
scope = "source:*"
threshold = 0.5
window = "1h"

[[alerts.rules]]
kind = "volume"
scope = "source:*"
threshold = 1.5

[[alerts.rules]]
kind = "pending_fetch"
scope = "source:web"
threshold = 3
enabled = "no"

[[alerts.rules]]
kind = "silence"
scope = "everything"
threshold = "1h"
size = 3

[[alerts.rules]]
scope = "source:web"
"#,
    );
    let expect = [
        ("12:18: alerts.evaluate_every", "longer than 0s"),
        ("13:10: alerts.colour", "unknown key"),
        ("16:8: alerts.rules[0].kind", "must be error_rate, silence"),
        ("21:9: alerts.rules[1].scope", "\"nowhere\" is not a configured source"),
        ("25:9: alerts.rules[2].scope", "error_rate rules watch destinations"),
        ("29:9: alerts.rules[3].scope", "\"gone\" is not a configured destination"),
        ("34:13: alerts.rules[4].threshold", "fraction from 0 to 1"),
        ("35:10: alerts.rules[4].window", "duration"),
        ("36:14: alerts.rules[4].min_events", "count"),
        ("41:13: alerts.rules[5].threshold", "duration"),
        ("46:13: alerts.rules[6].threshold", "count"),
        ("47:10: alerts.rules[6].window", "backlog rules take no window"),
        ("52:13: alerts.rules[7].threshold", "above 0 and at most 1"),
        ("57:13: alerts.rules[8].threshold", "duration"),
        ("58:11: alerts.rules[8].enabled", "true or false"),
        ("62:9: alerts.rules[9].scope", "must be source:NAME"),
        ("63:13: alerts.rules[9].threshold", "take a window"),
        ("64:8: alerts.rules[9].size", "unknown key"),
        ("66:1: alerts.rules[10]", "needs a kind"),
    ];
    for (at, words) in expect {
        has(&shown, at, words);
    }
    assert_eq!(shown.len(), expect.len(), "{shown:#?}");
}

#[test]
fn every_channel_problem_is_reported_at_its_key() {
    let shown = errors(
        r#"
[[alerts.channels]]
name = "ops"
type = "webhook"
url = "ftp://ops"
secret_env = "whsec_abc"

[[alerts.channels]]
name = "ops"
type = "slack"
url_env = "SLACK_URL"
url = "https://hooks.slack.com/x"

[[alerts.channels]]
name = "mail"
type = "email"
to = ["ops@example.com", "not an address"]
smtp_url_env = "SMTP_URL"

[[alerts.channels]]
name = "pager"
type = "pigeon"
"#,
    );
    let expect = [
        ("14:7: alerts.channels[0].url", "http:// or https://"),
        ("15:14: alerts.channels[0].secret_env", "must name an environment variable"),
        ("18:8: alerts.channels[1].name", "a channel named \"ops\" is already declared"),
        ("21:7: alerts.channels[1].url", "unknown key"),
        ("23:1: alerts.channels[2]", "email channels need from"),
        ("26:26: alerts.channels[2].to[1]", "email address"),
        ("31:8: alerts.channels[3].type", "webhook, slack or email"),
    ];
    for (at, words) in expect {
        has(&shown, at, words);
    }
    assert_eq!(shown.len(), expect.len(), "{shown:#?}");
}

#[test]
fn the_query_reads_each_window_and_five_weeks_of_hours_for_volume() {
    let now = time::macros::datetime!(2026-12-06 12:30 UTC);
    let q = AlertConfig::default().query(now);
    let hour = Level::Hour.bucket(now);
    assert_eq!(q.since, [(Level::Minute, Level::Minute.bucket(now) - 3_600)]);
    // Five weeks of one metric only: the baselines need no other.
    let baseline = crate::health::series::Back {
        level: Level::Hour,
        from: hour - 5 * WEEK_SECS,
        until: i64::MAX,
        scope: Scope::Source,
        metric: "received",
    };
    assert_eq!(q.back, [baseline]);
    let mut quiet = AlertConfig::default();
    quiet.rules.retain(|r| r.kind != Kind::Volume);
    assert_eq!(quiet.query(now).since, [(Level::Minute, Level::Minute.bucket(now) - 3_600)]);
    assert!(quiet.query(now).back.is_empty());
    quiet.rules.iter_mut().for_each(|r| r.enabled = false);
    assert!(quiet.query(now).since.is_empty());
}

#[test]
fn the_example_file_is_valid() {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../leadflow.example.toml"));
    let c = parse(text).unwrap();
    assert!(c.alerts.rules.iter().any(|r| r.key.as_str() == "error_rate#0"), "{:?}", c.alerts.rules);
}
