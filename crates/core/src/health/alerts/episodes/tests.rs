//! [`step`]: opening, keep-firing-for, reminders, acknowledgement, silences, ids, and a
//! property: no channel hears two firings of one episode without a resolution between.

use super::*;
use crate::health::alerts::config::{Channel, ChannelKind};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-06 12:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

fn config() -> AlertConfig {
    let slack = |name: &str| Channel { name: name.into(), kind: ChannelKind::Slack { url_env: "SLACK".into() } };
    AlertConfig { channels: vec![slack("ops"), slack("team")], ..AlertConfig::default() }
}

fn condition(holds: bool) -> Condition {
    Condition {
        rule: RuleKey("error_rate#0".into()),
        kind: Kind::ErrorRate,
        scope: (Scope::Destination, "crm".into()),
        holds,
        value: if holds { 0.2 } else { 0.01 },
        threshold: 0.05,
        message: "failing".into(),
    }
}

/// The store: episodes by id, and every notification queued so far.
#[derive(Default)]
struct Store {
    episodes: BTreeMap<String, Episode>,
    sent: Vec<Notification>,
}

impl Store {
    fn run(&mut self, holds: Option<bool>, silences: &[Silence], config: &AlertConfig, now: OffsetDateTime) -> Step {
        let open: Vec<Episode> = self.episodes.values().filter(|e| e.state == State::Firing).cloned().collect();
        let conditions: Vec<Condition> = holds.map(condition).into_iter().collect();
        let step = step(&open, &conditions, silences, config, now);
        for e in step.opened.iter().chain(&step.updated) {
            self.episodes.insert(e.id.clone(), e.clone());
        }
        self.sent.extend(step.notifications.iter().cloned());
        step
    }

    fn only(&self) -> &Episode {
        assert_eq!(self.episodes.len(), 1, "{:#?}", self.episodes);
        self.episodes.values().next().unwrap()
    }

    fn types(&self) -> Vec<(String, String)> {
        self.sent.iter().map(|n| (n.body["type"].as_str().unwrap().to_owned(), n.channel.clone())).collect()
    }
}

fn types(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(t, c)| ((*t).to_owned(), (*c).to_owned())).collect()
}

#[test]
fn a_holding_condition_opens_one_episode_and_tells_each_channel_once() {
    let (mut s, c) = (Store::default(), config());
    let first = s.run(Some(true), &[], &c, T0);
    assert_eq!((first.opened.len(), first.updated.len()), (1, 0));
    let e = s.only().clone();
    assert_eq!((e.state, e.started_at, e.last_held_at, e.notified_at), (State::Firing, T0, T0, Some(T0)));
    assert_eq!(e.scope, "destination:crm");
    assert_eq!(s.types(), types(&[("alert.firing", "ops"), ("alert.firing", "team")]));
    assert_eq!(s.sent[0].id, format!("{}.firing.ops", e.id));

    let again = s.run(Some(true), &[], &c, at(30));
    assert!(again.opened.is_empty() && again.notifications.is_empty());
    assert_eq!(again.updated[0].last_held_at, at(30));
    assert!(s.run(Some(false), &[], &AlertConfig::default(), at(60)).notifications.is_empty(), "no channels");
    assert!(Store::default().run(Some(false), &[], &c, T0) == Step::default(), "nothing holds, nothing opens");
}

#[test]
fn keep_firing_for_holds_a_flapping_rule_in_one_episode() {
    let (mut s, c) = (Store::default(), config());
    s.run(Some(true), &[], &c, T0);
    for (secs, holds) in [(60, false), (300, true), (420, false), (840, false), (899, false)] {
        let step = s.run(Some(holds), &[], &c, at(secs));
        assert!(step.opened.is_empty() && step.notifications.is_empty(), "at {secs}s");
        assert_eq!(s.only().state, State::Firing);
    }
    let resolved = s.run(Some(false), &[], &c, at(900));
    assert_eq!(resolved.updated[0].state, State::Resolved, "ten minutes after it last held (300s)");
    assert_eq!(s.only().resolved_at, Some(at(900)));
    assert_eq!(s.only().value, 0.2, "the value it last held with");
    let t = s.types();
    assert_eq!(&t[2..], types(&[("alert.resolved", "ops"), ("alert.resolved", "team")]));
    // Holding again is a new episode with its own id.
    s.run(Some(true), &[], &c, at(960));
    assert_eq!(s.episodes.len(), 2);
    assert_eq!(s.sent.iter().filter(|n| n.body["type"] == "alert.firing").count(), 4);
}

#[test]
fn a_rules_own_keep_firing_for_wins_and_a_vanished_condition_resolves() {
    let mut c = config();
    c.rules[0].key = RuleKey("error_rate#0".into());
    c.rules[0].keep_firing_for = Some(Duration::ZERO);
    let mut s = Store::default();
    s.run(Some(true), &[], &c, T0);
    s.run(Some(false), &[], &c, at(1));
    assert_eq!(s.only().state, State::Resolved, "keep_firing_for 0s resolves at once");

    let (mut s, c) = (Store::default(), config());
    s.run(Some(true), &[], &c, T0);
    s.run(None, &[], &c, at(599));
    assert_eq!(s.only().state, State::Firing);
    s.run(None, &[], &c, at(600));
    assert_eq!(s.only().state, State::Resolved, "its rule removed: resolves after keep-firing-for");
}

#[test]
fn a_firing_episode_is_reminded_about_every_remind_every_until_acknowledged() {
    let (mut s, mut c) = (Store::default(), config());
    c.channels.truncate(1);
    s.run(Some(true), &[], &c, T0);
    let hour = 3_600;
    for secs in [hour, 4 * hour - 1, 4 * hour, 4 * hour + 30, 8 * hour - 1, 8 * hour] {
        s.run(Some(true), &[], &c, at(secs));
    }
    let e = s.only().clone();
    let ids: Vec<&str> = s.sent.iter().map(|n| n.id.as_str()).collect();
    let expect =
        [format!("{}.firing.ops", e.id), format!("{}.reminder.1.ops", e.id), format!("{}.reminder.2.ops", e.id)];
    assert_eq!(ids, expect);
    assert_eq!((e.reminders, e.reminded_at), (2, Some(at(8 * hour))));
    assert_eq!(s.sent[1].body["type"], "alert.reminder");

    // Reminders also come while it waits out keep-firing-for, not after it resolved.
    let mut e2 = s.episodes.values().next().unwrap().clone();
    assert!(e2.acknowledge("ana@example.com", at(8 * hour + 1)));
    assert!(!e2.acknowledge("ben@example.com", at(8 * hour + 2)), "the first acknowledgement is kept");
    s.episodes.insert(e2.id.clone(), e2);
    let before = s.sent.len();
    s.run(Some(true), &[], &c, at(20 * hour));
    assert_eq!(s.sent.len(), before, "acknowledged: no reminder");
    s.run(Some(false), &[], &c, at(21 * hour));
    assert_eq!(s.sent.len(), before + 1, "but its resolution is told");
    assert_eq!(s.only().acknowledged_by.as_deref(), Some("ana@example.com"));

    let (mut s, mut c) = (Store::default(), config());
    c.remind_every = Duration::ZERO;
    s.run(Some(true), &[], &c, T0);
    s.run(Some(true), &[], &c, at(100 * hour));
    assert_eq!(s.sent.len(), 2, "remind_every 0s: never");
}

#[test]
fn a_silenced_scope_opens_and_resolves_quietly_and_speaks_when_the_silence_ends() {
    let c = config();
    let until = |secs| vec![Silence { scope: "destination:crm".into(), until: at(secs) }];
    let mut s = Store::default();
    s.run(Some(true), &until(3_600), &c, T0);
    assert_eq!((s.only().state, s.only().notified_at), (State::Firing, None));
    s.run(Some(false), &until(3_600), &c, at(60));
    s.run(Some(false), &until(3_600), &c, at(660));
    assert_eq!(s.only().state, State::Resolved);
    assert!(s.sent.is_empty(), "opened and resolved under the silence: nothing told");

    let mut s = Store::default();
    let all = vec![Silence { scope: "destination:*".into(), until: at(3_600) }];
    s.run(Some(true), &all, &c, T0);
    s.run(Some(true), &all, &c, at(3_599));
    assert!(s.sent.is_empty(), "destination:* silences crm");
    s.run(Some(true), &all, &c, at(3_600));
    assert_eq!(s.types(), types(&[("alert.firing", "ops"), ("alert.firing", "team")]), "silence over, still firing");
    assert_eq!(s.only().notified_at, Some(at(3_600)));
    s.run(Some(false), &until(99_999), &c, at(3_700));
    s.run(Some(false), &until(99_999), &c, at(4_300));
    assert_eq!(s.sent.len(), 4, "a told firing is always told resolved, silenced or not");

    let mut s = Store::default();
    let other = vec![Silence { scope: "source:crm".into(), until: at(99_999) }];
    s.run(Some(true), &other, &c, T0);
    assert_eq!(s.sent.len(), 2, "another scope's silence does not apply");
}

#[test]
fn ids_are_deterministic_and_the_body_follows_the_contract() {
    let c = config();
    let run = || step(&[], &[condition(true)], &[], &c, T0);
    assert_eq!(run(), run());
    let e = &run().opened[0];
    let rule = RuleKey("error_rate#0".into());
    assert_eq!(e.id, episode_id(&rule, "destination:crm", T0));
    assert!(e.id.starts_with("ep_") && e.id.len() == 35 && e.id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(e.id, episode_id(&rule, "destination:erp", T0));
    assert_ne!(e.id, episode_id(&RuleKey("error_rate#1".into()), "destination:crm", T0));
    assert_ne!(e.id, episode_id(&rule, "destination:crm", T0 + time::Duration::milliseconds(1)));

    let body = &run().notifications[0].body;
    assert_eq!(body["type"], "alert.firing");
    assert_eq!(body["timestamp"], "2026-12-06T12:00:00Z");
    let data = &body["data"];
    assert_eq!(
        (data["id"].as_str(), data["rule"].as_str(), data["scope"].as_str()),
        (Some(e.id.as_str()), Some("error_rate"), Some("destination:crm"))
    );
    assert_eq!((data["state"].as_str(), data["started_at"].as_str()), (Some("firing"), Some("2026-12-06T12:00:00Z")));
    assert!(data["resolved_at"].is_null());
    assert_eq!(
        (data["value"].as_f64(), data["threshold"].as_f64(), data["message"].as_str()),
        (Some(0.2), Some(0.05), Some("failing"))
    );

    let listed = serde_json::to_value(e).unwrap();
    assert_eq!((listed["rule"].as_str(), listed["rule_key"].as_str()), (Some("error_rate"), Some("error_rate#0")));
    assert_eq!(
        (listed["state"].as_str(), listed["started_at"].as_str()),
        (Some("firing"), Some("2026-12-06T12:00:00Z"))
    );
    assert!(listed["resolved_at"].is_null());
}

#[test]
fn firing_episodes_become_the_statuses_firing_list() {
    let mut s = Store::default();
    s.run(Some(true), &[], &config(), T0);
    let episodes: Vec<Episode> = s.episodes.values().cloned().collect();
    assert_eq!(firing(&episodes), Firing(vec![(Scope::Destination, "crm".into(), "error_rate".into())]));
    s.run(Some(false), &[], &config(), at(3_600));
    assert_eq!(firing(&s.episodes.values().cloned().collect::<Vec<_>>()), Firing::default());
}

proptest! {
    /// Whatever the sequence of evaluations (holding or not, silenced or not, an
    /// acknowledgement now and then), each channel hears of each episode one firing at
    /// most, a resolution only after its firing, and no notification id twice.
    #[test]
    fn no_channel_hears_two_firings_of_one_episode_without_a_resolution(
        steps in prop::collection::vec((1i64..900, any::<bool>(), 0u8..4, any::<bool>()), 1..60),
        keep in 0u64..600,
        remind in 0u64..1_200,
    ) {
        let mut c = config();
        c.keep_firing_for = Duration::from_secs(keep);
        c.remind_every = Duration::from_secs(remind);
        let mut s = Store::default();
        let mut now = T0;
        for (advance, holds, silence, ack) in steps {
            now += time::Duration::seconds(advance);
            let silences = if silence == 0 { vec![Silence { scope: "destination:crm".into(), until: now + time::Duration::seconds(300) }] } else { Vec::new() };
            if ack {
                for e in s.episodes.values_mut() {
                    e.acknowledge("ops", now);
                }
            }
            s.run(Some(holds), &silences, &c, now);
            prop_assert!(s.episodes.values().filter(|e| e.state == State::Firing).count() <= 1);
        }
        let mut ids = BTreeSet::new();
        let mut last: BTreeMap<(String, String), String> = BTreeMap::new();
        for n in &s.sent {
            prop_assert!(ids.insert(n.id.clone()), "{} twice", n.id);
            let kind = n.body["type"].as_str().unwrap_or_default().to_owned();
            let before = last.insert((n.episode.clone(), n.channel.clone()), kind.clone());
            match kind.as_str() {
                "alert.firing" => prop_assert_eq!(before, None),
                "alert.reminder" => prop_assert!(matches!(before.as_deref(), Some("alert.firing" | "alert.reminder"))),
                _ => prop_assert!(matches!(before.as_deref(), Some("alert.firing" | "alert.reminder"))),
            }
        }
        for e in s.episodes.values() {
            let told = s.sent.iter().any(|n| n.episode == e.id);
            prop_assert_eq!(told, e.notified_at.is_some());
        }
    }
}
