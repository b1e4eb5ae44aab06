//! Event attendance: who registered for a webinar, meeting or in-person event, who came,
//! for how long, and who did not show up.
//!
//! Attendance arrives as behavioural events of a fixed vocabulary (the [`kinds`]): a Zoom
//! participant joining or leaving, a registration, a line of an attendee report. Each
//! names the event it is about in the `event` property. [`fold`] turns a lead's events
//! into one [`Attendance`] per event; the lead keeps it, so scoring rules, routing rules
//! and reports read it like any other fact of the lead ([`facts`]).
//!
//! Rules, in order: any join, leave or `attended` line makes the lead `attended`; an
//! explicit `no_show` line, or a registration whose event has ended (`ends_at` passed)
//! without a join, makes it `no_show`; a cancellation after the last registration makes
//! it `cancelled`; otherwise it is `registered`. Minutes are the sum of the live sessions
//! (each leave paired with its join) or of the report's lines, whichever is larger: the
//! same person's sessions may come both live and in the report afterwards, and adding
//! them would count them twice. A stored attendance is never downgraded: the lead keeps
//! the best status and the most minutes it was ever shown, so an event that fell out of
//! the window of events a rescore reads takes nothing away.

use crate::scoring::EventView;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The event types of attendance, each with an `event` property naming the event.
pub mod kinds {
    /// Registered; may carry `event_name`, `starts_at` and `ends_at` (RFC 3339).
    pub const REGISTERED: &str = "attendance.registered";
    /// The registration was cancelled (or denied).
    pub const CANCELLED: &str = "attendance.cancelled";
    /// Joined the live event; `session` pairs it with its leave.
    pub const JOINED: &str = "attendance.joined";
    /// Left the live event; `session`, and `joined_at` when the provider says.
    pub const LEFT: &str = "attendance.left";
    /// Attended, as a report says afterwards; `minutes` in session.
    pub const ATTENDED: &str = "attendance.attended";
    /// Registered but did not come, as a report says afterwards.
    pub const NO_SHOW: &str = "attendance.no_show";

    pub const ALL: &[&str] = &[REGISTERED, CANCELLED, JOINED, LEFT, ATTENDED, NO_SHOW];
}

/// The lead's attendance of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attendance {
    /// The event's id as its source names it, e.g. `zoom:webinar:81234567890`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: Status,
    /// Minutes in session; 0 unless attended.
    pub minutes: u32,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub registered_at: Option<OffsetDateTime>,
    /// When the lead first joined.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub joined_at: Option<OffsetDateTime>,
}

/// Ordered from least to most telling: a stored status only moves up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Cancelled,
    Registered,
    NoShow,
    Attended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Cancelled => "cancelled",
            Status::Registered => "registered",
            Status::NoShow => "no_show",
            Status::Attended => "attended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Status::Cancelled, Status::Registered, Status::NoShow, Status::Attended].into_iter().find(|x| x.as_str() == s)
    }
}

/// Whether an event of this type is about attendance.
pub fn is_attendance(kind: &str) -> bool {
    kinds::ALL.contains(&kind)
}

/// The lead's attendance after its latest `events`, starting from what it had: one entry
/// per event, in the order of `stored` and then of first appearance. `now` decides whether
/// a registered event has ended.
pub fn fold(stored: &[Attendance], events: &[EventView], now: OffsetDateTime) -> Vec<Attendance> {
    let mut by_event: BTreeMap<&str, Vec<&EventView>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for e in events.iter().filter(|e| is_attendance(&e.kind)) {
        let Some(event) = e.properties.get("event").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            continue;
        };
        let seen = by_event.entry(event).or_default();
        if seen.is_empty() {
            order.push(event);
        }
        seen.push(e);
    }
    let mut out: Vec<Attendance> = stored.to_vec();
    // Oldest first, so the order of first appearance is the order of time.
    order.sort_by_key(|event| by_event[event].iter().map(|e| e.at).min());
    for event in order {
        let mut seen = by_event[event].clone();
        seen.sort_by_key(|e| e.at);
        let computed = of_event(event, &seen, now);
        match out.iter_mut().find(|a| a.event == event) {
            Some(kept) => *kept = best(kept, computed),
            None => out.push(computed),
        }
    }
    out
}

/// Takes in another lead's attendance (a merge): the better of the two for each event.
pub fn combine(into: &mut Vec<Attendance>, other: &[Attendance]) {
    for a in other {
        match into.iter_mut().find(|b| b.event == a.event) {
            Some(kept) => *kept = best(kept, a.clone()),
            None => into.push(a.clone()),
        }
    }
}

/// The better of what was stored and what the events show now.
fn best(kept: &Attendance, now: Attendance) -> Attendance {
    // A cancellation is the one move down: only from `registered`, and only when the
    // events show it (a later registration wins again).
    let status = if kept.status == Status::Registered && now.status == Status::Cancelled {
        Status::Cancelled
    } else {
        kept.status.max(now.status)
    };
    Attendance {
        event: now.event,
        name: now.name.or_else(|| kept.name.clone()),
        status,
        minutes: kept.minutes.max(now.minutes),
        registered_at: min_some(kept.registered_at, now.registered_at),
        joined_at: min_some(kept.joined_at, now.joined_at),
    }
}

fn min_some(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One event's attendance from its events, oldest first.
fn of_event(event: &str, seen: &[&EventView], now: OffsetDateTime) -> Attendance {
    let text = |e: &EventView, key: &str| e.properties.get(key).and_then(Value::as_str).map(str::to_owned);
    let time = |e: &EventView, key: &str| {
        e.properties.get(key).and_then(Value::as_str).and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    };
    let mut name = None;
    let mut registered_at = None;
    let mut last_registered = None;
    let mut last_cancelled = None;
    let mut ends_at = None;
    let mut joined_at: Option<OffsetDateTime> = None;
    let mut no_show = false;
    let mut attended = false;
    // Live sessions: open joins by session, and the seconds of the closed ones.
    let mut open: Map<String, Value> = Map::new();
    let mut live_seconds: i64 = 0;
    let mut reported_minutes: u64 = 0;
    for e in seen {
        name = text(e, "event_name").or(name);
        let session = text(e, "session").unwrap_or_default();
        match e.kind.as_str() {
            kinds::REGISTERED => {
                registered_at = registered_at.or(Some(e.at));
                last_registered = Some(e.at);
                ends_at = time(e, "ends_at").or(ends_at);
            }
            kinds::CANCELLED => last_cancelled = Some(e.at),
            kinds::NO_SHOW => no_show = true,
            kinds::JOINED => {
                attended = true;
                joined_at = Some(joined_at.map_or(e.at, |j| j.min(e.at)));
                open.insert(session, Value::String(e.at.format(&Rfc3339).unwrap_or_default()));
            }
            kinds::LEFT => {
                attended = true;
                let from = time(e, "joined_at").or_else(|| {
                    open.remove(&session).and_then(|v| v.as_str().and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()))
                });
                if let Some(from) = from.filter(|f| *f <= e.at) {
                    joined_at = Some(joined_at.map_or(from, |j| j.min(from)));
                    live_seconds += (e.at - from).whole_seconds();
                }
            }
            kinds::ATTENDED => {
                attended = true;
                reported_minutes += minutes_of(e.properties.get("minutes"));
                joined_at = min_some(joined_at, time(e, "joined_at"));
            }
            _ => {}
        }
    }
    let live_minutes = u64::try_from((live_seconds + 59) / 60).unwrap_or(0);
    let status = if attended {
        Status::Attended
    } else if no_show || ends_at.is_some_and(|end| end < now) && registered_at.is_some() {
        Status::NoShow
    } else if last_cancelled.is_some_and(|c| last_registered.is_none_or(|r| c >= r)) {
        Status::Cancelled
    } else {
        Status::Registered
    };
    Attendance {
        event: event.to_owned(),
        name,
        status,
        minutes: if attended { u32::try_from(live_minutes.max(reported_minutes)).unwrap_or(u32::MAX) } else { 0 },
        registered_at,
        joined_at,
    }
}

/// Minutes as a report gives them: a number, or text such as `"42"` or `"42.5"`.
fn minutes_of(v: Option<&Value>) -> u64 {
    let n = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite() && *n > 0.0).map_or(0, |n| n.round().min(1e9) as u64)
}

/// One line of an attendance file (Zoom's attendee report, an event's badge scans): what
/// it says of the person, read from the columns such reports use, or `default` where no
/// column says.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportLine {
    pub status: Status,
    pub minutes: Option<u64>,
    pub joined_at: Option<OffsetDateTime>,
}

/// Reads a report line; `None` when its status column holds something unknown.
/// Columns: `Attended` (yes/no and the like), `Status`, `Time in Session (minutes)`,
/// `Duration`, `Minutes`, `Join Time`.
pub fn report_line(row: &Map<String, Value>, default: Status) -> Option<ReportLine> {
    let mut line = ReportLine { status: default, minutes: None, joined_at: None };
    for (column, value) in row {
        let key: String = column.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if text.is_empty() {
            continue;
        }
        match key.as_str() {
            "attended" | "attendedyesno" | "attendance" | "attendancestatus" | "status" => {
                line.status = status_word(&text)?;
            }
            "timeinsessionminutes"
            | "timeinsession"
            | "durationminutes"
            | "duration"
            | "minutes"
            | "minutesattended"
            | "attendanceduration" => line.minutes = Some(minutes_of(Some(&Value::String(text)))),
            "jointime" | "joinedat" | "firstjointime" => line.joined_at = report_time(&text),
            _ => {}
        }
    }
    if line.status != Status::Attended {
        line.minutes = None;
    }
    Some(line)
}

fn status_word(text: &str) -> Option<Status> {
    let word: String = text.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    Some(match word.as_str() {
        "yes" | "y" | "true" | "1" | "attended" | "present" | "checkedin" => Status::Attended,
        "no" | "n" | "false" | "0" | "noshow" | "absent" | "didnotattend" | "notattended" => Status::NoShow,
        "registered" | "approved" | "pending" => Status::Registered,
        "cancelled" | "canceled" | "denied" | "rejected" => Status::Cancelled,
        _ => return None,
    })
}

/// RFC 3339, or the `2026-06-01 16:04:05` and `06/01/2026 04:04:05 PM` of report
/// exports (taken as UTC: the reports give no zone).
fn report_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::FormatItem;
    use time::macros::format_description;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    const FORMATS: &[&[FormatItem<'static>]] = &[
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[month]/[day]/[year] [hour repr:12]:[minute]:[second] [period]"),
        format_description!("[month]/[day]/[year] [hour]:[minute]"),
    ];
    FORMATS.iter().find_map(|f| time::PrimitiveDateTime::parse(text, f).ok()).map(time::PrimitiveDateTime::assume_utc)
}

/// The attendance event a report line records.
pub fn report_event(line: &ReportLine, event: &str, name: Option<&str>) -> (&'static str, Map<String, Value>) {
    let mut props = Map::new();
    props.insert("event".into(), Value::String(event.to_owned()));
    if let Some(name) = name {
        props.insert("event_name".into(), Value::String(name.to_owned()));
    }
    if let Some(minutes) = line.minutes {
        props.insert("minutes".into(), Value::from(minutes));
    }
    if let Some(at) = line.joined_at.and_then(|t| t.format(&Rfc3339).ok()) {
        props.insert("joined_at".into(), Value::String(at));
    }
    let kind = match line.status {
        Status::Attended => kinds::ATTENDED,
        Status::NoShow => kinds::NO_SHOW,
        Status::Registered => kinds::REGISTERED,
        Status::Cancelled => kinds::CANCELLED,
    };
    (kind, props)
}

/// The facts rules read, by name (see [`FACTS`]).
pub fn facts(attendance: &[Attendance]) -> Map<String, Value> {
    let count = |s: Status| attendance.iter().filter(|a| a.status == s).count();
    let mut out = Map::new();
    let registered = attendance.iter().filter(|a| a.status != Status::Cancelled).count();
    out.insert("events_registered".into(), Value::from(registered));
    out.insert("events_attended".into(), Value::from(count(Status::Attended)));
    out.insert("events_no_show".into(), Value::from(count(Status::NoShow)));
    out.insert("minutes_attended".into(), Value::from(attendance.iter().map(|a| u64::from(a.minutes)).sum::<u64>()));
    out
}

/// The attendance facts a scoring or routing rule may name.
pub const FACTS: &[&str] = &["events_registered", "events_attended", "events_no_show", "minutes_attended"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn at(minute: i64) -> OffsetDateTime {
        datetime!(2026-06-01 16:00 UTC) + time::Duration::minutes(minute)
    }

    fn ev(kind: &str, minute: i64, props: Value) -> EventView {
        let Value::Object(properties) = props else { panic!() };
        EventView { kind: kind.into(), at: at(minute), url: None, properties }
    }

    #[test]
    fn sessions_pair_joins_with_leaves_and_a_rejoin_adds_up() {
        let events = [
            ev(
                kinds::REGISTERED,
                -600,
                json!({"event": "w1", "event_name": "Q3 launch", "ends_at": "2026-06-01T17:00:00Z"}),
            ),
            ev(kinds::JOINED, 0, json!({"event": "w1", "session": "a"})),
            ev(kinds::LEFT, 20, json!({"event": "w1", "session": "a"})),
            ev(kinds::JOINED, 30, json!({"event": "w1", "session": "b"})),
            // A leave that says when it joined needs no join of its own.
            ev(kinds::LEFT, 50, json!({"event": "w1", "session": "b", "joined_at": "2026-06-01T16:29:30Z"})),
        ];
        let got = fold(&[], &events, at(120));
        assert_eq!(got.len(), 1);
        let a = &got[0];
        assert_eq!((a.status, a.minutes, a.name.as_deref()), (Status::Attended, 41, Some("Q3 launch")));
        assert_eq!((a.registered_at, a.joined_at), (Some(at(-600)), Some(at(0))));
    }

    #[test]
    fn a_registration_becomes_a_no_show_once_the_event_ended_and_a_cancellation_counts_until_the_next_registration() {
        let registered = ev(kinds::REGISTERED, 0, json!({"event": "w1", "ends_at": "2026-06-01T17:00:00Z"}));
        assert_eq!(fold(&[], std::slice::from_ref(&registered), at(30))[0].status, Status::Registered);
        assert_eq!(fold(&[], std::slice::from_ref(&registered), at(61))[0].status, Status::NoShow);

        let cancelled = ev(kinds::CANCELLED, 5, json!({"event": "w2"}));
        let again = ev(kinds::REGISTERED, 10, json!({"event": "w2"}));
        let first = ev(kinds::REGISTERED, 0, json!({"event": "w2"}));
        assert_eq!(fold(&[], &[first.clone(), cancelled.clone()], at(6))[0].status, Status::Cancelled);
        assert_eq!(fold(&[], &[first, cancelled, again], at(11))[0].status, Status::Registered);
    }

    #[test]
    fn live_and_reported_minutes_are_not_added_and_report_minutes_read_as_text() {
        let events = [
            ev(kinds::JOINED, 0, json!({"event": "w1"})),
            ev(kinds::LEFT, 30, json!({"event": "w1"})),
            ev(kinds::ATTENDED, 200, json!({"event": "w1", "minutes": "18"})),
            ev(kinds::ATTENDED, 201, json!({"event": "w1", "minutes": 14.4})),
        ];
        assert_eq!(fold(&[], &events, at(300))[0].minutes, 32, "max(30 live, 18 + 14 reported)");
    }

    #[test]
    fn a_stored_attendance_is_never_downgraded_and_events_without_an_event_are_ignored() {
        let stored = fold(&[], &[ev(kinds::ATTENDED, 0, json!({"event": "w1", "minutes": 50}))], at(1));
        // Only the registration is still in the window of events read.
        let later =
            [ev(kinds::REGISTERED, -5, json!({"event": "w1"})), ev(kinds::JOINED, 0, json!({"session": "orphan"}))];
        let got = fold(&stored, &later, at(100));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].status, got[0].minutes, got[0].registered_at), (Status::Attended, 50, Some(at(-5))));
        // Other event types are not attendance.
        assert!(fold(&[], &[ev("page_view", 0, json!({"event": "w9"}))], at(1)).is_empty());
    }

    #[test]
    fn a_merge_keeps_the_better_attendance_of_each_event() {
        let mut survivor = fold(&[], &[ev(kinds::REGISTERED, 0, json!({"event": "w1"}))], at(1));
        let absorbed = fold(
            &[],
            &[
                ev(kinds::ATTENDED, 0, json!({"event": "w1", "minutes": 9})),
                ev(kinds::NO_SHOW, 0, json!({"event": "w2"})),
            ],
            at(1),
        );
        combine(&mut survivor, &absorbed);
        let got: Vec<_> = survivor.iter().map(|a| (a.event.as_str(), a.status, a.minutes)).collect();
        assert_eq!(got, [("w1", Status::Attended, 9), ("w2", Status::NoShow, 0)]);
    }

    #[test]
    fn report_lines_read_zoom_and_badge_scan_columns() {
        let row = |v: Value| v.as_object().cloned().unwrap();
        let zoom = row(json!({"Attended": "Yes", "Email": "a@x.com", "Join Time": "06/01/2026 04:02:10 PM",
            "Time in Session (minutes)": "47"}));
        let line = report_line(&zoom, Status::Attended).unwrap();
        assert_eq!(
            (line.status, line.minutes, line.joined_at),
            (Status::Attended, Some(47), Some(at(2) + time::Duration::seconds(10)))
        );
        let absent = row(json!({"Attended": "No", "Time in Session (minutes)": "0"}));
        assert_eq!(
            report_line(&absent, Status::Attended).unwrap(),
            ReportLine { status: Status::NoShow, minutes: None, joined_at: None }
        );
        // No status column: the file's default (a badge scan list means they came).
        assert_eq!(report_line(&row(json!({"Email": "a@x.com"})), Status::Attended).unwrap().status, Status::Attended);
        assert_eq!(report_line(&row(json!({"Status": "maybe"})), Status::Attended), None);
        let (kind, props) = report_event(&line, "expo-2026", Some("Expo"));
        assert_eq!(kind, kinds::ATTENDED);
        assert_eq!(
            Value::Object(props),
            json!({"event": "expo-2026", "event_name": "Expo", "minutes": 47,
            "joined_at": "2026-06-01T16:02:10Z"})
        );
    }

    proptest::proptest! {
        #[test]
        fn a_report_line_never_panics(cells in proptest::collection::vec((".{0,12}", ".{0,12}"), 0..6)) {
            let row: Map<String, Value> = cells.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let _ = report_line(&row, Status::Attended);
        }
    }

    #[test]
    fn facts_count_each_status_and_add_the_minutes() {
        let events = [
            ev(kinds::ATTENDED, 0, json!({"event": "w1", "minutes": 45})),
            ev(kinds::NO_SHOW, 0, json!({"event": "w2"})),
            ev(kinds::REGISTERED, 0, json!({"event": "w3"})),
            ev(kinds::CANCELLED, 1, json!({"event": "w4"})),
        ];
        let f = facts(&fold(&[], &events, at(2)));
        assert_eq!(
            Value::Object(f),
            json!({"events_registered": 3, "events_attended": 1, "events_no_show": 1, "minutes_attended": 45})
        );
    }

    proptest::proptest! {
        #[test]
        fn folding_twice_changes_nothing(picks in proptest::collection::vec(0usize..6, 0..12), minutes in 0i64..500) {
            let events: Vec<EventView> = picks
                .iter()
                .enumerate()
                .map(|(i, k)| ev(kinds::ALL[*k], i as i64 * 7, json!({"event": "w", "minutes": minutes, "session": "s"})))
                .collect();
            let once = fold(&[], &events, at(1000));
            proptest::prop_assert_eq!(fold(&once, &events, at(1000)), once);
        }
    }
}
