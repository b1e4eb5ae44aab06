//! Accounts over HTTP: leads meet in the account of their company; people set its owner
//! and domains.

use crate::spawn_app;
use serde_json::{Value, json};

async fn created(app: &crate::TestApp, body: Value) -> Value {
    let r = app.post("/v1/leads", &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap()
}

#[tokio::test]
async fn leads_of_one_company_meet_in_an_account_that_people_can_own() {
    let app = spawn_app().await;
    let ada = created(&app, json!({"email": "ada@acme.com", "company": "Acme Inc."})).await;
    let bob = created(&app, json!({"email": "bob@gmail.com", "company": "ACME"})).await;
    let solo = created(&app, json!({"email": "sam@gmail.com", "company": "Sam's Bakery"})).await;
    let account = ada["account_id"].as_str().expect("an account").to_owned();
    assert_eq!(bob["account_id"], account.as_str(), "free mail joins by the company name");
    assert!(solo["account_id"].is_null(), "a personal contact");

    let listed: Value = app.get("/v1/accounts").await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["domains"], json!(["acme.com"]));
    let leads: Value = app.get(&format!("/v1/accounts/{account}/leads")).await.json().await.unwrap();
    let ids: Vec<&str> = leads.as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap()]);

    let patch = json!({"owner": "rep@seller.example", "add_domains": ["https://www.acme.io/"]});
    let r = app
        .http
        .patch(app.url(&format!("/v1/accounts/{account}")))
        .bearer_auth(&app.admin)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["owner"], "rep@seller.example");
    assert_eq!(updated["domains"], json!(["acme.com", "acme.io"]));
    let io = created(&app, json!({"email": "cy@acme.io"})).await;
    assert_eq!(io["account_id"], account.as_str());
    let shown: Value = app.get(&format!("/v1/accounts/{account}")).await.json().await.unwrap();
    assert_eq!(shown["owner"], "rep@seller.example");
}

#[tokio::test]
async fn account_requests_are_checked() {
    let app = spawn_app().await;
    let globex = created(&app, json!({"email": "hank@globex.com", "company": "Globex"})).await;
    let account = globex["account_id"].as_str().unwrap().to_owned();
    created(&app, json!({"email": "ada@acme.com", "company": "Acme"})).await;

    let patch = |body: Value| {
        let url = app.url(&format!("/v1/accounts/{account}"));
        let req = app.http.patch(url).bearer_auth(&app.admin).json(&body);
        async move { req.send().await.unwrap() }
    };
    let taken = crate::problem(patch(json!({"add_domains": ["acme.com"]})).await, 409).await;
    assert_eq!(taken["code"], "conflict");
    let bad =
        crate::problem(patch(json!({"owner": 7, "add_domains": ["not a domain"], "colour": "red"})).await, 422).await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 3);
    crate::problem(app.get("/v1/accounts/0191e3b4-0000-7000-8000-000000000000").await, 404).await;
    crate::problem(app.get("/v1/accounts/nope").await, 404).await;
    let reader = app.key("reader", &["read"]).await;
    let r = app
        .http
        .patch(app.url(&format!("/v1/accounts/{account}")))
        .bearer_auth(&reader)
        .json(&json!({"owner": "x"}))
        .send()
        .await
        .unwrap();
    crate::problem(r, 403).await;
    let r = app.http.get(app.url("/v1/accounts")).send().await.unwrap();
    crate::problem(r, 401).await;
}
