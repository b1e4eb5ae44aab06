//! Event attendance through the real server: Zoom registrations, joins and leaves become
//! the lead's attendance (signed like Zoom signs), which scoring and routing read (an
//! attendee gets the follow-up rule and its SLA) and the attendance report segments.

use crate::{TestApp, problem, spawn_app_with};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[[sources]]
name = "zoom"
adapter = "zoom_webinar"
secret_env = "TEST_SECRET"

[scoring]
mql_threshold = 50

[[scoring.rules]]
name = "attended a webinar"
when = { field = "events_attended", gte = 1 }
points = 60

[routing]
fallback_owner = "queue"

[[routing.reps]]
id = "ana"

[[routing.reps]]
id = "ben"

[[routing.rules]]
name = "webinar attendees"
when = { field = "events_attended", gte = 1 }
strategy = "round_robin"
reps = ["ana"]
sla_minutes = 240

[[routing.rules]]
name = "everyone else"
strategy = "round_robin"
reps = ["ben"]
"#;

const WEBINAR: &str = "81234567890";

fn mac(parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(b"test-signing-secret").unwrap();
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

async fn post_zoom(app: &TestApp, body: &Value) -> reqwest::Response {
    let body = body.to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let sig = format!("v0={}", mac(&[b"v0:", ts.as_bytes(), b":", body.as_bytes()]));
    app.http
        .post(app.url("/v1/hooks/zoom"))
        .header("content-type", "application/json")
        .header("x-zm-request-timestamp", ts)
        .header("x-zm-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The shapes of Zoom's documented `webinar.*` events (Webinars webhooks reference); the
/// webinar is still to come, or its registrants would be no-shows already.
fn object(extra: Value) -> Value {
    let mut o = json!({"id": WEBINAR, "uuid": "4444AAAiAAAAAiAiAiiAii==", "host_id": "x1",
        "topic": "Q3 launch", "type": 5, "start_time": "2027-06-01T16:00:00Z", "duration": 60,
        "timezone": "America/Los_Angeles"});
    o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    o
}

fn registration(email: &str, rid: &str) -> Value {
    let (first, last, org) =
        if email.starts_with("ada") { ("Ada", "Lovelace", "Acme") } else { ("Cy", "Young", "Gamma") };
    json!({"event": "webinar.registration_created", "event_ts": 1_780_000_000_000_i64, "payload": {
        "account_id": "acc", "object": object(json!({"registrant": {"id": rid, "email": email,
            "first_name": first, "last_name": last, "org": org, "job_title": "CTO"}}))}})
}

fn participant(event: &str, email: &str, time_key: &str, at: &str, registrant: Option<&str>) -> Value {
    let name = if email.starts_with("bob") { "Bob Stone" } else { "Ada Lovelace" };
    let mut p = json!({"user_id": "16778240", "user_name": name, "id": "iFxeBPYun6SAiWUzBcEkX",
        "participant_uuid": "55555AAAiAAAAAiAiAiiAii", "email": email, time_key: at});
    if let Some(r) = registrant {
        p["registrant_id"] = json!(r);
    }
    json!({"event": event, "event_ts": 1_780_000_000_000_i64, "payload": {"account_id": "acc",
        "object": object(json!({"participant": p}))}})
}

async fn lead_of(app: &TestApp, email: &str) -> Value {
    let found: Vec<Value> = app.get(&format!("/v1/leads?email={email}")).await.json().await.unwrap();
    found.into_iter().next().unwrap_or_else(|| panic!("no lead for {email}"))
}

async fn routed(app: &TestApp, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let history: Vec<Value> = app.get(&format!("/v1/leads/{id}/history")).await.json().await.unwrap();
        if let Some(a) = history.into_iter().find(|h| h["kind"] == "assigned") {
            return a;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "lead {id} was not routed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoom_attendance_reaches_the_lead_scoring_routing_and_the_report() {
    let config = leadflow_core::config::parse(CONFIG).unwrap_or_else(|e| panic!("{e:?}"));
    let app = spawn_app_with(config).await;

    let r = post_zoom(&app, &registration("ada@acme.com", "reg-1")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": 1, "created": 1, "recorded": 1}));
    let ada = lead_of(&app, "ada@acme.com").await;
    assert_eq!(ada["attendance"][0]["status"], "registered");
    assert_eq!(ada["attendance"][0]["name"], "Q3 launch");

    let joined =
        participant("webinar.participant_joined", "ada@acme.com", "join_time", "2027-06-01T16:02:00Z", Some("reg-1"));
    let left =
        participant("webinar.participant_left", "ada@acme.com", "leave_time", "2027-06-01T16:47:00Z", Some("reg-1"));
    for body in [&joined, &left] {
        let r = post_zoom(&app, body).await;
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"received": 0, "recorded": 1}),
            "a registrant is no new lead"
        );
    }
    // Zoom retries a notification it thinks failed: nothing is recorded twice.
    assert_eq!(post_zoom(&app, &left).await.json::<Value>().await.unwrap(), json!({"received": 0}));

    let id = ada["id"].as_str().unwrap();
    let ada: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    let attendance = &ada["attendance"][0];
    assert_eq!(
        (attendance["event"].as_str(), attendance["status"].as_str(), attendance["minutes"].as_u64()),
        (Some("zoom:webinar:81234567890"), Some("attended"), Some(45))
    );
    assert_eq!(ada["score"], 60, "the scoring rule read the attendance");
    let assigned = routed(&app, id).await;
    assert_eq!((assigned["owner"].as_str(), assigned["rule"].as_str()), (Some("ana"), Some("webinar attendees")));
    assert!(assigned["sla_due_at"].is_string(), "attendees get the follow-up SLA: {assigned}");
    let history: Vec<Value> = app.get(&format!("/v1/leads/{id}/history")).await.json().await.unwrap();
    assert!(history.iter().any(|h| h["kind"] == "attendance" && h["status"] == "attended" && h["minutes"] == 45));

    // Someone who joins without registering becomes a lead; a participant Zoom knows no
    // email of is acknowledged and names nobody.
    let walk_in = participant("webinar.participant_joined", "bob@beta.io", "join_time", "2027-06-01T16:10:00Z", None);
    let r = post_zoom(&app, &walk_in).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": 1, "created": 1, "recorded": 1}));
    assert_eq!(lead_of(&app, "bob@beta.io").await["first_name"], "Bob");
    let anonymous = participant("webinar.participant_joined", "", "join_time", "2027-06-01T16:11:00Z", None);
    assert!(post_zoom(&app, &anonymous).await.json::<Value>().await.unwrap()["ignored"].is_string());

    // A registrant who cancels.
    post_zoom(&app, &registration("cy@gamma.com", "reg-3")).await;
    let mut cancel = registration("cy@gamma.com", "reg-3");
    cancel["event"] = json!("webinar.registration_cancelled");
    cancel["event_ts"] = json!(1_780_000_100_000_i64);
    assert_eq!(post_zoom(&app, &cancel).await.json::<Value>().await.unwrap(), json!({"received": 0, "recorded": 1}));
    assert_eq!(lead_of(&app, "cy@gamma.com").await["attendance"][0]["status"], "cancelled");

    let report: Value = app.get("/v1/reports/attendance").await.json().await.unwrap();
    let [event] = report["events"].as_array().unwrap().as_slice() else { panic!("{report}") };
    assert_eq!(event["name"], "Q3 launch");
    let segments: Vec<(&str, u64, u64)> = event["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_str().unwrap(), s["leads"].as_u64().unwrap(), s["minutes"].as_u64().unwrap()))
        .collect();
    assert_eq!(segments, [("attended", 2, 45), ("cancelled", 1, 0)]);
    // The dashboard shows the same: the report page and the lead's page.
    let cookie = crate::ui::login(&app, &app.admin).await;
    let (_, html) = crate::ui::page(&app, &cookie, "/ui/reports").await;
    let table = &html[html.find(r#"<table id="attendance">"#).expect("the attendance table")..];
    assert!(table.contains("Q3 launch") && table.contains("cancelled"), "{table}");
    let (_, html) = crate::ui::page(&app, &cookie, &format!("/ui/leads/{id}")).await;
    assert!(html.contains(r#"<table id="attendance">"#) && html.contains(">45<"), "{html}");

    let one: Value = app.get("/v1/reports/attendance?event=zoom:webinar:1").await.json().await.unwrap();
    assert_eq!(one, json!({"events": []}));
    let r = app.get("/v1/reports/attendance?event=").await;
    assert_eq!(problem(r, 400).await["code"], "invalid_query");
}

#[tokio::test]
async fn a_zoom_notification_with_a_bad_signature_or_no_webinar_is_refused() {
    let config = leadflow_core::config::parse(CONFIG).unwrap_or_else(|e| panic!("{e:?}"));
    let app = spawn_app_with(config).await;
    let body = participant("webinar.participant_joined", "ada@acme.com", "join_time", "2027-06-01T16:02:00Z", None);
    let r = app
        .http
        .post(app.url("/v1/hooks/zoom"))
        .header("content-type", "application/json")
        .header("x-zm-request-timestamp", time::OffsetDateTime::now_utc().unix_timestamp().to_string())
        .header("x-zm-signature", "v0=00")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 401).await["code"], "hook_unauthorized");
    let r = post_zoom(&app, &json!({"event": "webinar.participant_joined", "payload": {"object": {}}})).await;
    assert_eq!(problem(r, 400).await["code"], "hook_malformed");
    assert!(app.get("/v1/leads?email=ada@acme.com").await.json::<Vec<Value>>().await.unwrap().is_empty());
}
