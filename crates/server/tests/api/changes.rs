//! The change feed over HTTP: pages in commit order from a cursor, for `read` keys; bad
//! and unknown cursors answered with problems.

use crate::{problem, spawn_app};
use serde_json::{Value, json};

async fn page(app: &crate::TestApp, token: &str, query: &str) -> reqwest::Response {
    app.http.get(app.url(&format!("/v1/changes{query}"))).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn a_reader_follows_every_change_in_order_from_its_cursor() {
    let app = spawn_app().await;
    let reader = app.key("warehouse", &["read"]).await;
    let r = app.post("/v1/leads", &json!({"email": "ada@acme.com", "first_name": "Ada"})).await;
    let ada = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    app.post("/v1/leads", &json!({"email": "ada@acme.com", "company": "Acme"})).await;
    let moved =
        app.post(&format!("/v1/leads/{ada}/transitions"), &json!({"to": "disqualified", "reason": "spam"})).await;
    assert_eq!(moved.status(), 200);

    let first = page(&app, &reader, "?limit=2").await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let changes = first["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["type"], "lead.created");
    assert_eq!(changes[0]["lead_id"], ada.as_str());
    assert!(changes[0]["at"].as_str().unwrap().ends_with('Z'), "{}", changes[0]["at"]);
    assert_eq!(first["next"], changes[1]["cursor"]);

    let rest: Value =
        page(&app, &reader, &format!("?after={}", first["next"].as_str().unwrap())).await.json().await.unwrap();
    let kinds: Vec<&str> = rest["changes"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"lead.updated"), "{kinds:?}");
    let stage = rest["changes"].as_array().unwrap().iter().find(|c| c["type"] == "stage.changed").unwrap();
    assert_eq!(
        (&stage["from"], &stage["to"], &stage["reason"]),
        (&json!("new"), &json!("disqualified"), &json!("spam"))
    );
    let cursors: Vec<u64> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["changes"].as_array().unwrap())
        .map(|c| c["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(cursors, (1..=cursors.len() as u64).collect::<Vec<_>>());

    // At the head: nothing more, and the same cursor to ask with later.
    let next = rest["next"].as_str().unwrap();
    let head: Value = page(&app, &reader, &format!("?after={next}")).await.json().await.unwrap();
    assert_eq!(head, json!({"changes": [], "next": next}));
    // What is written next follows.
    app.post("/v1/leads", &json!({"email": "grace@navy.mil"})).await;
    let later: Value = page(&app, &reader, &format!("?after={next}")).await.json().await.unwrap();
    assert_eq!(later["changes"][0]["type"], "lead.created");
}

#[tokio::test]
async fn bad_unknown_and_unauthorized_reads_are_problems() {
    let app = spawn_app().await;
    let writer = app.key("forms", &["ingest"]).await;
    app.post("/v1/leads", &json!({"email": "ada@acme.com"})).await;
    for query in ["?after=abc", "?after=-1", "?after=1..2", "?limit=0", "?limit=10001", "?limit=x"] {
        let body = problem(app.get(&format!("/v1/changes{query}")).await, 400).await;
        assert_eq!(body["code"], "invalid_query", "{query}");
    }
    let ahead = problem(app.get("/v1/changes?after=999").await, 400).await;
    assert_eq!(ahead["code"], "unknown_cursor");
    assert!(ahead["detail"].as_str().unwrap().contains("999"), "{ahead}");
    let more = problem(app.get("/v1/changes?after=0.1").await, 400).await;
    assert_eq!(more["code"], "unknown_cursor");
    problem(page(&app, &writer, "").await, 403).await;
    problem(app.http.get(app.url("/v1/changes")).send().await.unwrap(), 401).await;
}
