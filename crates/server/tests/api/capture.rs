//! Capturing leads: create, merge, idempotency, batches, reading back.

use crate::{spawn_app, spawn_app_with, spawn_on};
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Config, SourceConfig};
use serde_json::{Value, json};

#[tokio::test]
async fn a_posted_lead_is_created_and_reads_back_normalized() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/leads",
            &json!({"email": "  Ada@Example.COM ", "first_name": " Ada ", "plan": "pro", "utm_campaign": "launch"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outcome"], "created");
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/leads/{id}"));

    let lead: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(lead["email"], "ada@example.com");
    assert_eq!(lead["first_name"], "Ada");
    assert_eq!(lead["raw"]["email"], "  Ada@Example.COM ");
    assert_eq!(lead["custom"]["plan"], "pro");
    assert_eq!(lead["lifecycle_stage"], "new");
    assert_eq!(lead["attribution"]["original"]["source"], "api");
    assert_eq!(lead["attribution"]["original"]["utm_campaign"], "launch");
    // Scored on capture: no rules are configured, so nothing, with the default gate passed.
    assert_eq!(lead["score"], 0);
    assert_eq!(lead["score_detail"]["gate"]["passed"], true);
    assert!(lead["owner"].is_null());

    let by_email: Value = app.get("/v1/leads?email=ADA%40example.com").await.json().await.unwrap();
    assert_eq!(by_email.as_array().unwrap().len(), 1);
    assert_eq!(by_email[0]["id"], id);
    let none: Value = app.get("/v1/leads?email=nobody%40example.com").await.json().await.unwrap();
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn a_second_submission_for_the_same_email_merges_and_keeps_the_original_source() {
    let mut config = Config::default();
    config.sources.push(SourceConfig { name: crate::source("webinar"), ..SourceConfig::api() });
    let app = spawn_app_with(config).await;
    let first: Value = app
        .post("/v1/leads", &json!({"email": "grace@example.com", "first_name": "Grace", "utm_source": "google"}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post("/v1/leads", &json!({"email": "GRACE@example.com", "first_name": "G.", "company": "Navy", "source": "webinar", "utm_source": "partner"}))
        .await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["outcome"], "merged");
    assert_eq!(second["id"], first["id"]);
    let lead = &second["lead"];
    assert_eq!(lead["first_name"], "Grace", "existing values are kept");
    assert_eq!(lead["company"], "Navy", "empty fields are filled");
    assert_eq!(lead["attribution"]["original"]["source"], "api");
    assert_eq!(lead["attribution"]["original"]["utm_source"], "google");
    assert_eq!(lead["attribution"]["latest"]["source"], "webinar");
    assert_eq!(lead["version"], 2);
    assert_eq!(app.lead_count().await, 1);

    let history: Value =
        app.get(&format!("/v1/leads/{}/history", first["id"].as_str().unwrap())).await.json().await.unwrap();
    let kinds: Vec<&str> = history.as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "merged"]);
    assert_eq!(history[1]["rule"], "exact_email");
    assert_eq!(history[1]["source"], "webinar");
    assert_eq!(history[1]["filled"], json!(["company"]));
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_outcome_and_creates_nothing() {
    let app = spawn_app().await;
    let send = || {
        app.http
            .post(app.url("/v1/leads"))
            .bearer_auth(&app.admin)
            .header("Idempotency-Key", "form-7781")
            .json(&json!({"email": "k@example.com"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201, "the first outcome, not a merge");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["outcome"], "created");
    assert_eq!(again["submission_id"], first["submission_id"]);
    assert_eq!(app.lead_count().await, 1);
    let history: Value =
        app.get(&format!("/v1/leads/{}/history", first["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1, "a replay is not a second touch");
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_body_is_refused_with_422() {
    let app = spawn_app().await;
    let send = |email: String| {
        app.http
            .post(app.url("/v1/leads"))
            .bearer_auth(&app.admin)
            .header("Idempotency-Key", "form-9000")
            .json(&json!({ "email": email }))
            .send()
    };
    assert_eq!(send("first@example.com".into()).await.unwrap().status(), 201);
    let refused = crate::problem(send("second@example.com".into()).await.unwrap(), 422).await;
    assert_eq!(refused["code"], "idempotency_key_reused");
    // 30 people posted at once under one fresh key: one lead, 29 refusals.
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..30 {
        let request = app
            .http
            .post(app.url("/v1/leads"))
            .bearer_auth(&app.admin)
            .header("Idempotency-Key", "burst-1")
            .json(&json!({ "email": format!("p{i}@example.com") }));
        posts.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = posts.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 29, "{statuses:?}");
    assert_eq!(app.lead_count().await, 2);
    // In a batch the refusal is the item's own.
    let batch = |email: &str| {
        app.http
            .post(app.url("/v1/leads/batch"))
            .bearer_auth(&app.admin)
            .header("Idempotency-Key", "batch-7")
            .json(&json!({"leads": [{ "email": email }]}))
            .send()
    };
    let first: Value = batch("b1@example.com").await.unwrap().json().await.unwrap();
    assert_eq!(first["results"][0]["outcome"], "created");
    let again: Value = batch("b2@example.com").await.unwrap().json().await.unwrap();
    assert_eq!(again["results"][0]["outcome"], "rejected");
    assert_eq!(again["results"][0]["errors"][0]["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn a_batch_answers_each_lead_in_order() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/leads/batch",
            &json!({"leads": [
                {"email": "b1@example.com"},
                {"email": "not an email"},
                {"email": "B1@example.com", "city": "Lyon"},
                "not an object",
                {"email": "b2@example.com", "source": "nowhere"},
                {"phone": "+33 1 23 45 67 89"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let outcomes: Vec<&str> =
        body["results"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["created", "rejected", "merged", "rejected", "rejected", "created"]);
    assert_eq!(body["results"][0]["id"], body["results"][2]["id"]);
    assert_eq!(body["results"][1]["errors"][0]["code"], "invalid_email");
    assert_eq!(body["results"][4]["errors"][0]["code"], "unknown_source");
    assert_eq!(
        (body["created"].as_u64(), body["merged"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(1), Some(3))
    );
    assert_eq!(app.lead_count().await, 2);
}

#[tokio::test]
async fn a_resent_batch_with_its_idempotency_key_creates_nothing_new() {
    let app = spawn_app().await;
    let batch = json!({"leads": (0..50).map(|i| json!({"email": format!("r{i}@example.com")})).collect::<Vec<_>>()});
    let send = || {
        app.http
            .post(app.url("/v1/leads/batch"))
            .bearer_auth(&app.admin)
            .header("Idempotency-Key", "import-42")
            .json(&batch)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let again: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["created"], 50);
    assert_eq!(again["created"], 50, "the first outcomes are returned");
    for (a, b) in first["results"].as_array().unwrap().iter().zip(again["results"].as_array().unwrap()) {
        assert_eq!(a["id"], b["id"]);
    }
    assert_eq!(app.lead_count().await, 50);
}

#[tokio::test]
async fn a_batch_of_more_than_1000_is_refused_whole() {
    let app = spawn_app().await;
    let leads: Vec<Value> = (0..1001).map(|i| json!({"email": format!("x{i}@example.com")})).collect();
    let body = crate::problem(app.post("/v1/leads/batch", &json!({ "leads": leads })).await, 422).await;
    assert_eq!(body["errors"][0]["code"], "too_many");
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn leads_list_pages_with_a_next_link() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.post("/v1/leads", &json!({"email": format!("l{i}@example.com")})).await;
    }
    let first = app.get("/v1/leads?limit=2").await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Value = first.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
    let page2: Value = app.get(&next).await.json().await.unwrap();
    assert_eq!(page2[0]["email"], "l2@example.com");
}

#[tokio::test]
async fn submissions_left_pending_are_settled_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("leadflow.db").display());
    let store = leadflow_store::open(&url, Default::default()).await.unwrap();
    let payload = json!({"email": "left@example.com"}).as_object().cloned().unwrap();
    let bad = json!({"email": "broken"}).as_object().cloned().unwrap();
    store
        .enqueue(vec![
            RawSubmission::new(crate::source("api"), None, payload),
            RawSubmission::new(crate::source("api"), None, bad),
        ])
        .await
        .unwrap();
    assert_eq!(store.pending_submissions(10).await.unwrap().len(), 2);

    let app = spawn_on(store, Config::default(), dir).await;
    let found: Value = app.get("/v1/leads?email=left%40example.com").await.json().await.unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert!(
        app.store.pending_submissions(10).await.unwrap().is_empty(),
        "the invalid one is rejected, not retried forever"
    );
}

#[tokio::test]
async fn shutdown_finishes_and_every_acknowledged_lead_is_stored() {
    let app = spawn_app().await;
    let mut acked = 0;
    for i in 0..20 {
        if app.post("/v1/leads", &json!({"email": format!("s{i}@example.com")})).await.status() == 201 {
            acked += 1;
        }
    }
    assert_eq!(acked, 20, "every submission before the shutdown is acknowledged");
    let url = format!("sqlite://{}", app.dir.path().join("leadflow.db").display());
    let (_store, dir) = app.shutdown().await;
    let reopened = leadflow_store::open(&url, Default::default()).await.unwrap();
    assert_eq!(reopened.count_leads().await.unwrap(), acked);
    drop(dir);
}

#[tokio::test]
async fn spellings_of_one_email_make_one_lead() {
    // Exact-email matching must not depend on how the address was typed.
    let app = spawn_app().await;
    for email in ["Mixed.Case@Example.com", " mixed.case@example.com", "MIXED.CASE@EXAMPLE.COM "] {
        app.post("/v1/leads", &json!({ "email": email })).await;
    }
    assert_eq!(app.lead_count().await, 1);
}

#[tokio::test]
async fn one_gmail_mailbox_under_any_spelling_is_one_lead() {
    // Gmail ignores dots and `+tags`, and googlemail.com is gmail.com: without fuzzy matching
    // too, these are one person.
    let app = spawn_app().await;
    for email in ["jane.doe@gmail.com", "JaneDoe+webinar@googlemail.com", "j.a.n.e.doe+q4@gmail.com"] {
        app.post("/v1/leads", &json!({ "email": email })).await;
    }
    assert_eq!(app.lead_count().await, 1);
    app.post("/v1/leads", &json!({ "email": "jane.doe+news@acme.com" })).await;
    assert_eq!(app.lead_count().await, 2, "elsewhere a +tag is part of the address");
}

#[tokio::test]
async fn a_lead_that_gains_evidence_joins_its_person_after_capture_and_says_so() {
    let app = spawn_app().await;
    let post = |v: Value| {
        let app = &app;
        async move { app.post("/v1/leads", &v).await.json::<Value>().await.unwrap() }
    };
    let call = post(json!({"first_name": "Robert", "last_name": "Smith", "phone": "+1 415 555 2671"})).await;
    let badge =
        post(json!({"first_name": "Bob", "last_name": "Smith", "company": "Acme Inc.", "email": "bob.smith@acme.com"}))
            .await;
    app.resolved().await;
    assert_eq!(app.lead_count().await, 2, "apart, the two do not match");
    let form = post(json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme", "email": "bob.smith@acme.com", "phone": "(415) 555-2671", "country": "US"})).await;
    assert_eq!((&form["outcome"], &form["id"]), (&json!("merged"), &badge["id"]), "the mailbox, at capture");
    app.resolved().await;
    assert_eq!(app.lead_count().await, 1);
    let badge_id = badge["id"].as_str().unwrap();
    let now: Value = app.get(&format!("/v1/leads/{badge_id}")).await.json().await.unwrap();
    assert_eq!(now["id"], call["id"], "the merged-away id answers with the older lead");
    let history: Value =
        app.get(&format!("/v1/leads/{}/history", call["id"].as_str().unwrap())).await.json().await.unwrap();
    let merge = history.as_array().unwrap().last().unwrap();
    assert_eq!(
        (&merge["kind"], &merge["rule"], &merge["absorbed"]),
        (&json!("absorbed"), &json!("fuzzy"), &badge["id"])
    );
    assert!(merge["score"].as_f64().unwrap() >= 16.0, "{merge}");
}

#[tokio::test]
async fn phone_country_and_state_come_back_normalized_with_the_raw_values_kept() {
    let mut config = Config::default();
    config.sources.push(SourceConfig {
        name: crate::source("berlin-event"),
        default_country: Some("DE".into()),
        ..SourceConfig::api()
    });
    let app = spawn_app_with(config).await;
    let r = app.post("/v1/leads", &json!({"email": "us@example.com", "phone": "(415) 555-2671 ext. 12", "country": "U.S.A.", "state": "calif."})).await;
    let lead = &r.json::<Value>().await.unwrap()["lead"];
    assert_eq!(
        (lead["phone"].as_str(), lead["derived"]["phone_extension"].as_str()),
        (Some("+14155552671"), Some("12"))
    );
    assert_eq!((lead["country"].as_str(), lead["state"].as_str()), (Some("US"), Some("CA")));
    assert_eq!(lead["raw"]["phone"], "(415) 555-2671 ext. 12");
    assert_eq!(lead["raw"]["country"], "U.S.A.");
    assert_eq!(lead["issues"], json!([]));

    let r = app
        .post("/v1/leads", &json!({"email": "de@example.com", "phone": "030 901820", "source": "berlin-event"}))
        .await;
    let lead = &r.json::<Value>().await.unwrap()["lead"];
    assert_eq!(lead["phone"], "+4930901820", "the source's default country reads national numbers");
    assert_eq!(lead["country"], "DE", "and the phone gives the country");

    let r = app
        .post("/v1/leads", &json!({"email": "odd@example.com", "phone": "call me maybe", "country": "Atlantis"}))
        .await;
    assert_eq!(r.status(), 201, "values that cannot be normalized do not reject the lead");
    let lead = &r.json::<Value>().await.unwrap()["lead"];
    assert_eq!(lead["phone"], "call me maybe");
    assert_eq!(lead["country"], "Atlantis");
    assert_eq!(
        lead["issues"],
        json!([{"field": "country", "code": "unknown_country"}, {"field": "phone", "code": "invalid_phone"}])
    );
}

#[tokio::test]
async fn social_profile_labels_map_to_canonical_urls_and_unreadable_links_are_kept_with_an_issue() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/leads",
            &json!({
                "email": "ada@example.com",
                "LinkedIn Profile": "uk.linkedin.com/in/Ada-Lovelace/?trk=public_profile",
                "Twitter handle": "@Ada_Lovelace",
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let lead: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(lead["linkedin_url"], "https://www.linkedin.com/in/ada-lovelace");
    assert_eq!(lead["x_url"], "https://x.com/ada_lovelace");
    assert_eq!(lead["raw"]["linkedin_url"], "uk.linkedin.com/in/Ada-Lovelace/?trk=public_profile");
    assert_eq!(lead["issues"], json!([]));

    let r = app
        .post(
            "/v1/leads",
            &json!({"email": "bob@example.com", "LinkedIn": "https://www.linkedin.com/feed/", "X (Twitter)": "https://x.com/home"}),
        )
        .await;
    assert_eq!(r.status(), 201, "a link that is no profile does not reject the lead");
    let lead = &r.json::<Value>().await.unwrap()["lead"];
    assert_eq!(lead["linkedin_url"], "https://www.linkedin.com/feed/");
    assert_eq!(lead["x_url"], "https://x.com/home");
    assert_eq!(
        lead["issues"],
        json!([{"field": "linkedin_url", "code": "invalid_linkedin_url"}, {"field": "x_url", "code": "invalid_x_url"}])
    );
}

#[tokio::test]
async fn names_companies_and_titles_come_back_normalized_with_derived_values() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/leads",
            &json!({"email": "mary@Globex.com", "first_name": "MARY", "last_name": "mcdonald", "company": "Globex Corporation",
                    "job_title": "Director - Sales & Ops", "industry": "IT"}),
        )
        .await;
    let lead = &r.json::<Value>().await.unwrap()["lead"];
    assert_eq!((lead["first_name"].as_str(), lead["last_name"].as_str()), (Some("Mary"), Some("McDonald")));
    assert_eq!(lead["industry"], "Technology");
    assert_eq!(lead["derived"]["company_key"], "globex");
    assert_eq!(lead["derived"]["company_domain"], "globex.com");
    assert_eq!(
        (lead["derived"]["seniority"].as_str(), lead["derived"]["department"].as_str()),
        (Some("director"), Some("sales"))
    );
    assert_eq!(lead["raw"]["first_name"], "MARY");
}

#[tokio::test]
async fn a_badge_scan_without_email_finds_its_lead_and_says_why() {
    let mut config = Config::default();
    config.sources.push(SourceConfig {
        name: crate::source("trade-show"),
        default_country: Some("US".into()),
        ..SourceConfig::api()
    });
    let app = spawn_app_with(config).await;
    let first: Value = app
        .post("/v1/leads", &json!({"email": "robert.smith@acme.com", "first_name": "Robert", "last_name": "Smith", "company": "Acme, Inc.", "phone": "+1 415 555 2671"}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post("/v1/leads", &json!({"first_name": "BOB", "last_name": "smith", "company": "ACME Incorporated", "phone": "415.555.2671", "source": "trade-show"}))
        .await;
    assert_eq!(r.status(), 201, "capture settles the mailbox; the resolver the rest");
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["outcome"], "created");
    app.resolved().await;
    let now: Value = app.get(&format!("/v1/leads/{}", second["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(now["id"], first["id"], "the badge's id answers with the lead it joined");
    let history: Value =
        app.get(&format!("/v1/leads/{}/history", first["id"].as_str().unwrap())).await.json().await.unwrap();
    let merge = history.as_array().unwrap().iter().find(|e| e["kind"] == "absorbed").unwrap().clone();
    assert_eq!(merge["rule"], "fuzzy");
    assert!(merge["score"].as_f64().unwrap() > 0.0);
    assert!(
        merge["evidence"].as_array().unwrap().iter().any(|e| e["field"] == "FirstName" || e["field"] == "first_name"),
        "{merge}"
    );
}

#[tokio::test]
async fn possible_duplicates_are_reviewed_through_the_api() {
    let app = spawn_app().await;
    let older: Value = app
        .post(
            "/v1/leads",
            &json!({"first_name": "Jon", "last_name": "Smith", "company": "Acme", "email": "jon@acme.com"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let newer: Value = app
        .post("/v1/leads", &json!({"first_name": "Jonathan", "last_name": "Smith", "company": "Acme Inc", "email": "jsmith@acme.com", "job_title": "CTO"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(newer["outcome"], "created", "uncertain: a new lead, and a review");
    app.resolved().await;
    let reviews: Value = app.get("/v1/reviews").await.json().await.unwrap();
    assert_eq!(reviews.as_array().unwrap().len(), 1);
    let review = &reviews[0];
    assert_eq!((&review["lead_id"], &review["candidate_id"]), (&newer["id"], &older["id"]));
    assert_eq!(review["candidate"]["email"], "jon@acme.com");
    let id = review["id"].as_str().unwrap();

    let reader = app.key("reader", &["read"]).await;
    let denied = app
        .http
        .post(app.url(&format!("/v1/reviews/{id}")))
        .bearer_auth(&reader)
        .json(&json!({"decision": "merge"}))
        .send()
        .await
        .unwrap();
    crate::problem(denied, 403).await;
    crate::problem(app.post(&format!("/v1/reviews/{id}"), &json!({"decision": "maybe"})).await, 422).await;

    let decided: Value =
        app.post(&format!("/v1/reviews/{id}"), &json!({"decision": "merge"})).await.json().await.unwrap();
    assert_eq!(decided["status"], "merged");
    assert_eq!(decided["lead"]["id"], older["id"], "the newer id now answers with the survivor");
    assert_eq!(decided["lead"]["job_title"], "CTO");
    crate::problem(app.post(&format!("/v1/reviews/{id}"), &json!({"decision": "distinct"})).await, 404).await;
    let moved = app.get(&format!("/v1/leads/{}", newer["id"].as_str().unwrap())).await;
    assert_eq!(moved.headers()["content-location"], format!("/v1/leads/{}", older["id"].as_str().unwrap()).as_str());
    assert_eq!(app.lead_count().await, 1);

    // The merge is undone from its history.
    let undone: Value = app
        .post(&format!("/v1/leads/{}/unmerge", newer["id"].as_str().unwrap()), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(undone["survivor"]["id"], older["id"]);
    assert!(undone["survivor"]["job_title"].is_null());
    assert_eq!(undone["restored"]["job_title"], "CTO");
    assert_eq!(app.lead_count().await, 2);
    crate::problem(app.post(&format!("/v1/leads/{}/unmerge", newer["id"].as_str().unwrap()), &json!({})).await, 404)
        .await;

    // Merged again, then the survivor changes: undoing would lose the change.
    let (survivor, absorbed) =
        (older["id"].as_str().unwrap().parse().unwrap(), newer["id"].as_str().unwrap().parse().unwrap());
    let why = leadflow_core::resolve::Explanation {
        rule: leadflow_core::resolve::MatchRule::Reviewed,
        score: None,
        evidence: vec![],
    };
    assert!(app.store.merge_leads(survivor, absorbed, why).await.unwrap());
    app.post("/v1/leads", &json!({"email": "jon@acme.com", "city": "Boston"})).await;
    let conflict = crate::problem(
        app.post(&format!("/v1/leads/{}/unmerge", newer["id"].as_str().unwrap()), &json!({})).await,
        409,
    )
    .await;
    assert_eq!(conflict["code"], "conflict");
}

#[tokio::test]
async fn without_fuzzy_matching_only_the_same_email_merges() {
    let matching = std::sync::Arc::new(leadflow_core::resolve::Matching { fuzzy: false, ..Default::default() });
    let app = spawn_app_with(Config { matching, ..Config::default() }).await;
    app.post("/v1/leads", &json!({"email": "robert@acme.com", "first_name": "Robert", "last_name": "Smith", "company": "Acme", "phone": "+1 415 555 2671"})).await;
    let r = app
        .post(
            "/v1/leads",
            &json!({"first_name": "Bob", "last_name": "Smith", "company": "Acme Inc", "phone": "+1 415 555 2671"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    app.resolved().await;
    assert_eq!(app.lead_count().await, 2);
    let reviews: Value = app.get("/v1/reviews").await.json().await.unwrap();
    assert_eq!(reviews, json!([]));
}

#[tokio::test]
async fn a_merge_made_at_capture_is_split_off_from_history() {
    let app = crate::spawn_app().await;
    // One Gmail mailbox spelt two ways: merged at capture, though the addresses differ.
    let first: Value = app
        .post("/v1/leads", &json!({"first_name": "Robert", "last_name": "Smith", "email": "robert.smith@gmail.com"}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post("/v1/leads", &json!({"first_name": "Bob", "last_name": "Smith", "email": "RobertSmith+events@gmail.com", "job_title": "CTO"}))
        .await;
    assert_eq!(r.status(), 200);
    let merged: Value = r.json().await.unwrap();
    assert_eq!(merged["outcome"], "merged");
    let lead = first["id"].as_str().unwrap();
    let history: Value = app.get(&format!("/v1/leads/{lead}/history")).await.json().await.unwrap();
    let submission =
        history.as_array().unwrap().iter().find(|e| e["kind"] == "merged").unwrap()["submission_id"].clone();

    let split: Value =
        app.post(&format!("/v1/leads/{lead}/split"), &json!({"submission_id": submission})).await.json().await.unwrap();
    assert!(split["lead"]["job_title"].is_null());
    assert_eq!(split["split"]["first_name"], "Bob");
    assert_eq!(split["split"]["job_title"], "CTO");
    assert_eq!(app.lead_count().await, 2);
    crate::problem(app.post(&format!("/v1/leads/{lead}/split"), &json!({"submission_id": submission})).await, 404)
        .await;
    crate::problem(app.post(&format!("/v1/leads/{lead}/split"), &json!({"submission_id": 7})).await, 422).await;
}

#[tokio::test]
async fn name_frequencies_are_counted_over_every_stored_lead() {
    let app = crate::spawn_app().await;
    for i in 0..3 {
        app.post(
            "/v1/leads",
            &json!({"email": format!("f{i}@acme.com"), "first_name": "Michael", "last_name": "Johnson"}),
        )
        .await;
    }
    let (frequencies, leads) = leadflow_app::workers::frequencies::count(&app.store).await.unwrap();
    assert_eq!(leads, 3);
    let common = frequencies.frequency(leadflow_core::resolve::FrequencyField::FirstName, "michael");
    let unseen = frequencies.frequency(leadflow_core::resolve::FrequencyField::FirstName, "zebedee");
    assert!(common > unseen, "{common} vs {unseen}");
}

#[tokio::test]
async fn sparse_badge_scans_placeholders_and_a_shared_mailbox_glue_nobody_together() {
    let mut config = Config::default();
    config.sources.push(SourceConfig {
        name: crate::source("badges"),
        required: vec![vec!["last_name".to_owned()]],
        ..SourceConfig::api()
    });
    let app = spawn_app_with(config).await;
    // A scanner that read little more than a common surname, and placeholders for names.
    for i in 0..12 {
        let first = ["", "Unknown", "Test", "N/A", "-", ""][i % 6];
        let r = app
            .post(
                "/v1/leads",
                &json!({"first_name": first, "last_name": "Smith", "city": "Boston", "source": "badges"}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    // Two people behind one shared role mailbox.
    app.post("/v1/leads", &json!({"email": "info@acme.com", "first_name": "Ada", "last_name": "Lovelace"})).await;
    let r =
        app.post("/v1/leads", &json!({"email": "info@acme.com", "first_name": "Grace", "last_name": "Hopper"})).await;
    assert_eq!(r.status(), 201, "a role mailbox is not one person's");
    app.resolved().await;
    assert_eq!(app.lead_count().await, 14, "nothing merged on empty evidence");
    // The same badge with a real name and a phone is evidence; its twin merges.
    for _ in 0..2 {
        app.post(
            "/v1/leads",
            &json!({"first_name": "Joan", "last_name": "Smith", "phone": "+1 617 555 0142", "source": "badges"}),
        )
        .await;
    }
    app.resolved().await;
    assert_eq!(app.lead_count().await, 15);
}
