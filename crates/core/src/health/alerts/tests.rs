//! [`evaluate`]: each kind holding and not, `*` expansion, min_events, the volume baseline.

use super::*;
use crate::health::Backlog;
use crate::health::tally::{Attempt, ErrorClass, Tally};
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-06 12:30 UTC);

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

/// What the store would hold.
struct World {
    tally: Tally,
    sources: Vec<(String, bool)>,
    destinations: Vec<String>,
    last: BTreeMap<String, OffsetDateTime>,
    first: BTreeMap<String, OffsetDateTime>,
    backlogs: Backlogs,
    pending: BTreeMap<String, OffsetDateTime>,
}

impl World {
    fn new() -> Self {
        Self {
            tally: Tally::default(),
            sources: ["api", "web", "new"].map(|s| (s.to_owned(), true)).to_vec(),
            destinations: vec!["crm".to_owned(), "erp".to_owned()],
            last: BTreeMap::new(),
            first: BTreeMap::new(),
            backlogs: Backlogs::default(),
            pending: BTreeMap::new(),
        }
    }

    fn tries(&mut self, destination: &str, ok: u32, failed: u32, at: OffsetDateTime) {
        for _ in 0..ok {
            self.tally.attempt(destination, Attempt::Delivered { latency: Duration::from_secs(1) }, at);
        }
        for _ in 0..failed {
            self.tally.attempt(destination, Attempt::Failed { class: ErrorClass::Timeout, dead: false }, at);
        }
    }

    fn evaluate(&self, config: &AlertConfig) -> Vec<Condition> {
        let series = Series::new(self.tally.cells());
        let readings = Readings {
            series: &series,
            sources: &self.sources,
            destinations: &self.destinations,
            last_received: &self.last,
            first_received: &self.first,
            backlogs: &self.backlogs,
            oldest_pending_fetch: &self.pending,
        };
        evaluate(config, &readings, NOW)
    }

    /// Whether `kind` holds for each name it was evaluated on, by the defaults.
    fn holds(&self, kind: Kind) -> Vec<(String, bool)> {
        self.evaluate(&AlertConfig::default())
            .into_iter()
            .filter(|c| c.kind == kind)
            .map(|c| (c.scope.1, c.holds))
            .collect()
    }
}

fn named(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(n, h)| ((*n).to_owned(), *h)).collect()
}

/// `[alerts]` over a file that declares the names the tests use.
fn alerts(section: &str) -> AlertConfig {
    let names = "[[sources]]\nname = \"web\"\n[[sources]]\nname = \"new\"\n[[destinations]]\nname = \"crm\"\ntype = \"slack\"\nurl_env = \"A\"\n[[destinations]]\nname = \"erp\"\ntype = \"slack\"\nurl_env = \"B\"\n";
    (*crate::config::parse(&format!("{names}{section}")).unwrap().alerts).clone()
}

#[test]
fn error_rate_holds_above_its_threshold_once_there_are_enough_tries() {
    let mut w = World::new();
    w.tries("crm", 9, 10, NOW - minutes(5));
    w.tries("erp", 37, 3, NOW - minutes(5));
    w.tries("erp", 0, 50, NOW - minutes(90));
    assert_eq!(w.holds(Kind::ErrorRate), named(&[("crm", false), ("erp", true)]), "19 tries are too few; 7.5 % > 5 %");
    w.tries("crm", 1, 0, NOW);
    assert_eq!(w.holds(Kind::ErrorRate), named(&[("crm", true), ("erp", true)]));

    let mut w = World::new();
    w.tries("crm", 38, 2, NOW - minutes(1));
    let c = w.evaluate(&AlertConfig::default()).into_iter().find(|c| c.kind == Kind::ErrorRate).unwrap();
    assert_eq!((c.holds, c.value, c.threshold), (false, 0.05, 0.05), "exactly at the threshold does not hold");
    assert_eq!(c.message, "2 of 40 tries failed in 1h (5.0 %, limit 5.0 %)");
}

#[test]
fn latency_holds_when_the_p95_passes_its_threshold() {
    let mut w = World::new();
    for i in 0..20 {
        let slow = if i < 2 { 20 * 60_000 } else { 1_000 };
        w.tally.attempt("crm", Attempt::Delivered { latency: Duration::from_millis(slow) }, NOW - minutes(3));
        w.tally.attempt("erp", Attempt::Delivered { latency: Duration::from_millis(900_000) }, NOW - minutes(3));
    }
    let destinations = |w: &World| -> Vec<(String, bool)> {
        w.holds(Kind::Latency).into_iter().filter(|(n, _)| n == "crm" || n == "erp").collect()
    };
    assert_eq!(destinations(&w), named(&[("crm", true), ("erp", false)]), "2 of 20 above 15m is the p95");
    let c = w.evaluate(&AlertConfig::default()).into_iter().find(|c| c.kind == Kind::Latency).unwrap();
    assert_eq!((c.value, c.threshold), (1_800.0, 900.0));
    assert_eq!(destinations(&World::new()), named(&[("crm", false), ("erp", false)]), "no deliveries");
}

#[test]
fn a_realtime_sources_latency_is_from_the_providers_submission_to_capture() {
    let mut w = World::new();
    w.sources[2].1 = false;
    for _ in 0..10 {
        w.tally.settled("web", false, Some(NOW - minutes(40)), NOW - minutes(2));
        w.tally.settled("api", false, Some(NOW - minutes(3)), NOW - minutes(2));
        w.tally.settled("new", false, Some(NOW - minutes(90)), NOW - minutes(2));
    }
    let sources: Vec<(String, bool)> =
        w.holds(Kind::Latency).into_iter().filter(|(n, _)| n != "crm" && n != "erp").collect();
    // `new` is a batch source: its leads wait for their batch by design.
    assert_eq!(sources, named(&[("api", false), ("web", true)]));
    let c = w.evaluate(&AlertConfig::default()).into_iter().find(|c| c.kind == Kind::Latency && c.scope.1 == "web");
    assert!(c.unwrap().message.contains("from the provider's submission to capture"));
}

#[test]
fn silence_holds_only_for_a_source_that_received_and_then_went_quiet() {
    let mut w = World::new();
    w.last.insert("web".into(), NOW - time::Duration::hours(25));
    w.last.insert("api".into(), NOW - time::Duration::hours(1));
    assert_eq!(w.holds(Kind::Silence), named(&[("api", false), ("web", true), ("new", false)]));
    let c = w.evaluate(&AlertConfig::default()).into_iter().find(|c| c.scope.1 == "new").unwrap();
    assert_eq!(c.message, "has not received a lead yet");
}

#[test]
fn backlogs_hold_above_their_counts_for_sources_and_destinations() {
    let mut w = World::new();
    w.backlogs.quarantine.insert("web".into(), 101);
    w.backlogs.quarantine.insert("api".into(), 100);
    w.backlogs.destinations.insert("crm".into(), Backlog { dead: 150, pending: 3, ..Backlog::default() });
    w.backlogs.destinations.insert("erp".into(), Backlog { pending: 10_000, ..Backlog::default() });
    let holds: Vec<(Scope, String, bool)> = w
        .evaluate(&AlertConfig::default())
        .into_iter()
        .filter(|c| c.kind == Kind::Backlog)
        .map(|c| (c.scope.0, c.scope.1, c.holds))
        .collect();
    assert_eq!(
        holds,
        [
            (Scope::Destination, "crm".into(), true),
            (Scope::Destination, "erp".into(), false),
            (Scope::Source, "api".into(), false),
            (Scope::Source, "web".into(), true),
            (Scope::Source, "new".into(), false),
        ]
    );
}

#[test]
fn a_pending_fetch_holds_once_it_is_older_than_its_threshold() {
    let mut w = World::new();
    w.pending.insert("web".into(), NOW - time::Duration::hours(2));
    w.pending.insert("api".into(), NOW - minutes(10));
    assert_eq!(w.holds(Kind::PendingFetch), named(&[("api", false), ("web", true), ("new", false)]));
}

/// `web` received `baseline` leads in the last complete hour's slot of each of the four
/// weeks before, `count` in that hour, and a burst in the current (incomplete) hour.
fn volume_world(baseline: [u64; 4], count: u64, history_weeks: i64) -> World {
    let mut w = World::new();
    let hour = NOW.replace_minute(0).unwrap() - time::Duration::hours(1);
    for (k, n) in baseline.iter().enumerate() {
        let at = hour - time::Duration::weeks(4 - k as i64) + minutes(5);
        w.tally.add(Scope::Source, "web", metric::RECEIVED, at, *n);
    }
    w.tally.add(Scope::Source, "web", metric::RECEIVED, hour + minutes(30), count);
    w.tally.add(Scope::Source, "web", metric::RECEIVED, NOW, 500);
    w.first.insert("web".into(), NOW - time::Duration::weeks(history_weeks));
    w
}

fn volume(w: &World) -> Condition {
    w.evaluate(&AlertConfig::default()).into_iter().find(|c| c.kind == Kind::Volume && c.scope.1 == "web").unwrap()
}

#[test]
fn volume_compares_the_last_complete_hour_with_the_median_of_four_weeks() {
    // Median of 10, 20, 30, 1000: 25, so a drop is below 12.5 and a spike above 37.5. The
    // mean (265) would call 30 a drop.
    let baseline = [1_000, 10, 30, 20];
    for (count, holds) in [(12, true), (13, false), (30, false), (37, false), (38, true)] {
        let c = volume(&volume_world(baseline, count, 6));
        assert_eq!((c.value, c.holds), (count as f64, holds), "{count}: {}", c.message);
    }
    assert_eq!(volume(&volume_world(baseline, 12, 6)).threshold, 12.5);
    assert_eq!(volume(&volume_world(baseline, 38, 6)).threshold, 37.5);
    assert!(volume(&volume_world(baseline, 0, 6)).message.contains("a drop"));
}

#[test]
fn volume_needs_four_weeks_of_history_and_a_baseline_above_zero() {
    let young = volume(&volume_world([0, 10, 30, 20], 0, 3));
    assert!(!young.holds, "a source three weeks old has no baseline");
    assert!(young.message.contains("four weeks"), "{}", young.message);
    // Weeks with no leads at all count as zero once the source existed: median (0+0)/2.
    assert!(!volume(&volume_world([0, 0, 0, 40], 0, 6)).holds, "a zero baseline never fires");
    assert!(!volume(&volume_world([0, 0, 0, 40], 90, 6)).holds);
    assert!(volume(&volume_world([0, 10, 30, 20], 0, 6)).holds, "median 15, nothing came");
    assert!(World::new().holds(Kind::Volume).iter().all(|(_, h)| !h), "sources that never received");
}

#[test]
fn a_star_rule_covers_every_configured_name_except_those_a_rule_of_its_kind_names() {
    let mut w = World::new();
    w.tries("crm", 30, 10, NOW - minutes(1));
    w.tries("erp", 30, 10, NOW - minutes(1));
    let config = alerts(
        "[[alerts.rules]]\nkind = \"error_rate\"\nscope = \"destination:crm\"\nthreshold = 0.5\n[[alerts.rules]]\nkind = \"silence\"\nscope = \"source:web\"\nenabled = false\n",
    );
    let conditions = w.evaluate(&config);
    let error_rate: Vec<(&str, &str, bool)> = conditions
        .iter()
        .filter(|c| c.kind == Kind::ErrorRate)
        .map(|c| (c.rule.as_str(), c.scope.1.as_str(), c.holds))
        .collect();
    assert_eq!(error_rate, [("error_rate#0", "crm", false), ("error_rate#default-destination", "erp", true)]);
    let silent: Vec<&str> = conditions.iter().filter(|c| c.kind == Kind::Silence).map(|c| c.scope.1.as_str()).collect();
    assert_eq!(silent, ["api", "new"], "switched off for web alone");
    // One condition per enabled rule and name, holding or not.
    assert_eq!(conditions.len(), 2 + 2 + 2 + 3 + 3 + 2 + 3 + 3);
    assert_eq!(w.evaluate(&config), conditions, "the same readings give the same conditions");
}

#[test]
fn a_switched_off_rule_gives_no_conditions() {
    let mut w = World::new();
    w.last.insert("web".into(), NOW - time::Duration::days(3));
    let config = alerts("[[alerts.rules]]\nkind = \"silence\"\nscope = \"source:*\"\nenabled = false\n");
    assert!(w.evaluate(&config).iter().all(|c| c.kind != Kind::Silence));
    let short = alerts("[[alerts.rules]]\nkind = \"silence\"\nscope = \"source:*\"\nwindow = \"10s\"\n");
    w.last.insert("web".into(), NOW - time::Duration::seconds(11));
    let c = w.evaluate(&short).into_iter().find(|c| c.kind == Kind::Silence && c.scope.1 == "web").unwrap();
    assert_eq!((c.holds, c.rule.as_str(), c.value, c.threshold), (true, "silence#0", 11.0, 10.0));
}
