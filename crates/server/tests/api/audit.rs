//! The audit log over HTTP: administrative actions recorded with the key that acted, the
//! request's id and the target, listed newest first with filters and a cursor; admin only.

use crate::{TestApp, problem, spawn_app};
use serde_json::{Value, json};

async fn capture(app: &TestApp, email: &str) -> String {
    let r = app.post("/v1/leads", &json!({"email": email, "first_name": "Ada"})).await;
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// POSTs as the admin under a request id of the test's choosing.
async fn post_as(app: &TestApp, path: &str, request_id: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(&app.admin)
        .header("x-request-id", request_id)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn audit(app: &TestApp, query: &str) -> Value {
    let r = app.get(&format!("/v1/audit{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.unwrap()
}

fn actions(page: &Value) -> Vec<&str> {
    page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn administrative_actions_are_listed_newest_first_with_actor_target_and_request_id() {
    let app = spawn_app().await;
    let keys = app.store.list_keys().await.unwrap();
    let admin = keys.iter().find(|k| k.name.starts_with("admin-")).unwrap();
    let actor = format!("key:{}", admin.id);
    let (kept, erased) = (capture(&app, "ada@acme.com").await, capture(&app, "grace@navy.mil").await);

    let moved = post_as(
        &app,
        &format!("/v1/leads/{kept}/transitions"),
        "req-move",
        &json!({"to": "disqualified", "reason": "spam"}),
    )
    .await;
    assert_eq!(moved.status(), 200);
    let r = post_as(&app, &format!("/v1/leads/{erased}/erase"), "req-erase", &json!({"reason": "DSR-12"})).await;
    assert_eq!(r.status(), 200);
    let r = post_as(&app, "/v1/deliveries/replay", "req-replay", &json!({"destination": "crm"})).await;
    assert_eq!(r.status(), 200);
    // What failed did not happen: nothing is recorded.
    let r = post_as(&app, "/v1/deliveries/nope/replay", "req-missing", &json!({})).await;
    assert_eq!(r.status(), 404);
    // A dashboard login is an action of its key too.
    let login = app
        .http
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-request-id", "req-login")
        .body(format!("token={}", app.admin))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success() || login.status().is_redirection(), "{}", login.status());

    // The key's own actions: the daily retention run (actor `system`) may land among them.
    let page = audit(&app, &format!("?actor={actor}")).await;
    assert_eq!(actions(&page), ["ui.login", "deliveries.replayed", "lead.erased", "lead.stage_moved"]);
    assert_eq!(page["next"], Value::Null);
    let entries = page["entries"].as_array().unwrap();
    let expected = [
        (actor.as_str(), "req-login"),
        ("crm", "req-replay"),
        (erased.as_str(), "req-erase"),
        (kept.as_str(), "req-move"),
    ];
    for (e, (target, request_id)) in entries.iter().zip(expected) {
        assert_eq!(e["actor"], actor.as_str());
        assert_eq!((e["target"].as_str(), e["request_id"].as_str()), (Some(target), Some(request_id)), "{e}");
        assert!(e["at"].is_string() && e["hash"].as_str().unwrap().len() == 64);
    }
    assert_eq!(entries[1]["detail"]["replayed"], 0);
    assert_eq!(entries[2]["detail"]["reason"], "DSR-12");
    assert_eq!(entries[3]["detail"]["stage"], "disqualified");
    // Newest first, each linked to the one before it (where none of another actor is between).
    for pair in entries.windows(2) {
        assert!(pair[0]["seq"].as_u64().unwrap() > pair[1]["seq"].as_u64().unwrap());
        if pair[0]["seq"].as_u64().unwrap() == pair[1]["seq"].as_u64().unwrap() + 1 {
            assert_eq!(pair[0]["prev_hash"], pair[1]["hash"]);
        }
    }
    // Ids only: neither person's data is in the log.
    let text = page.to_string();
    assert!(!text.contains("grace") && !text.contains("ada@"), "{text}");

    // Filters, alone and together.
    assert_eq!(actions(&audit(&app, "?action=lead.erased").await), ["lead.erased"]);
    assert_eq!(actions(&audit(&app, &format!("?target={kept}")).await), ["lead.stage_moved"]);
    assert_eq!(actions(&audit(&app, &format!("?actor={actor}&action=lead.stage_moved")).await), ["lead.stage_moved"]);
    assert!(actions(&audit(&app, "?actor=cli").await).is_empty());
    assert!(actions(&audit(&app, "?since=2999-01-01T00:00:00Z").await).is_empty());
    assert!(actions(&audit(&app, "?until=2000-01-01T00:00:00Z").await).is_empty());
    let window = format!("?actor={actor}&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z");
    assert_eq!(actions(&audit(&app, &window).await).len(), 4);

    // Paging with the cursor.
    let first = audit(&app, &format!("?actor={actor}&limit=3")).await;
    assert_eq!(actions(&first).len(), 3);
    let next = first["next"].as_u64().unwrap();
    let rest = audit(&app, &format!("?actor={actor}&limit=3&before={next}")).await;
    assert_eq!((actions(&rest), &rest["next"]), (vec!["lead.stage_moved"], &Value::Null));
}

#[tokio::test]
async fn the_audit_log_is_for_admin_keys_and_refuses_bad_queries() {
    let app = spawn_app().await;
    let reader = app.key("reader", &["read"]).await;
    let r = app.http.get(app.url("/v1/audit")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(problem(r, 403).await["code"], "forbidden");
    let r = app.http.get(app.url("/v1/audit")).send().await.unwrap();
    problem(r, 401).await;
    for query in ["limit=0", "limit=501", "since=yesterday", "until=2026-13-01T00:00:00Z", "before=abc", "limit=-1"] {
        let body = problem(app.get(&format!("/v1/audit?{query}")).await, 400).await;
        assert_eq!(body["code"], "invalid_query", "{query}");
    }
}

#[tokio::test]
async fn dashboard_logins_review_decisions_and_replays_are_recorded_for_the_sessions_key() {
    use crate::ui::{csrf, login, page, post};
    let app = spawn_app().await;
    let older = json!({"first_name": "Jon", "last_name": "Smith", "company": "Acme", "email": "jon@acme.com"});
    app.post("/v1/leads", &older).await;
    let newer =
        json!({"first_name": "Jonathan", "last_name": "Smith", "company": "Acme Inc", "email": "jsmith@acme.com"});
    app.post("/v1/leads", &newer).await;
    app.resolved().await;
    let reviews: Value = app.get("/v1/reviews").await.json().await.unwrap();
    let review = reviews[0].clone();
    let review_id = review["id"].as_str().unwrap();

    let operator = app.key("operator", &["admin"]).await;
    let key = app.store.list_keys().await.unwrap().into_iter().find(|k| k.name == "operator").unwrap();
    let actor = format!("key:{}", key.id);
    let cookie = login(&app, &operator).await;
    let token = csrf(&page(&app, &cookie, "/ui/reviews").await.1);
    let decided =
        post(&app, &cookie, &format!("/ui/reviews/{review_id}"), &[("csrf", &token), ("decision", "merge")]).await;
    assert!(decided.status().is_redirection(), "{}", decided.status());
    let replayed = post(&app, &cookie, "/ui/deliveries/replay", &[("csrf", &token)]).await;
    assert!(replayed.status().is_redirection(), "{}", replayed.status());

    let page = audit(&app, &format!("?actor={actor}")).await;
    assert_eq!(actions(&page), ["deliveries.replayed", "lead.merged", "review.decided", "ui.login"]);
    let entries = page["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["request_id"].as_str().is_some_and(|r| !r.is_empty())), "{page}");
    assert_eq!(
        (entries[2]["target"].as_str(), entries[2]["detail"]["decision"].as_str()),
        (Some(review_id), Some("merged"))
    );
    assert_eq!(entries[1]["target"], review["candidate_id"]);
    assert_eq!(entries[1]["detail"]["absorbed"], review["lead_id"]);
    assert_eq!(entries[0]["target"], "*");
}
