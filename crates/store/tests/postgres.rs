//! The conformance suite on the PostgreSQL store, each test on a fresh database of the
//! server `LEADFLOW_TEST_POSTGRES_URL` names (default: postgres@127.0.0.1:5432). The
//! tests fail, with instructions, when that server cannot be reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_store::postgres::{PgOptions, PgStore};
use leadflow_testkit::conformance::{Raw, TestStore};
use leadflow_testkit::postgres::TestDatabase;
use std::sync::Arc;

async fn fresh() -> TestStore {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let store = PgStore::open(&db.url, &PgOptions::default(), Rules::default()).await.expect("opens and migrates");
    let raw = Raw::Postgres(db.url.clone());
    TestStore { store: Arc::new(store), guard: Box::new(db), raw }
}

leadflow_testkit::conformance_suite!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::open(&url, &PgOptions::default(), Rules::default()).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("every instance starts");
    }
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = client.query_one("SELECT count(*), max(version) FROM schema_migrations", &[]).await.unwrap();
    let (n, max): (i64, i32) = (row.get(0), row.get(1));
    // Numbers may have gaps (a migration taken by a branch not merged yet): count files.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
    assert_eq!(n, i64::try_from(files).unwrap(), "each migration applied once");
    assert!(i64::from(max) >= n);
}

#[tokio::test]
async fn an_unreachable_database_is_a_prompt_unavailable_error() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let started = std::time::Instant::now();
    let err = PgStore::open("postgres://postgres@127.0.0.1:1/none", &PgOptions::default(), Rules::default())
        .await
        .err()
        .expect("fails");
    assert!(matches!(err, leadflow_store::StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------
// Two instances on one database: what one cannot see, the database must settle.

use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::config::{Picklists, SourceConfig};
use leadflow_core::engagement::{Engagement, Event, Identity};
use leadflow_core::pipeline::{Rules, prepare};
use leadflow_core::{EventId, SourceName};
use leadflow_store::{CaptureItem, Captured, EventOutcome, NewEvent, Store};
use time::OffsetDateTime;

/// Two instances on one new database, both settling under `rules`.
async fn two_instances(rules: Rules) -> (TestDatabase, Arc<PgStore>, Arc<PgStore>) {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let a = PgStore::open(&db.url, &PgOptions::default(), rules.clone()).await.expect("opens");
    let b = PgStore::open(&db.url, &PgOptions::default(), rules).await.expect("opens");
    (db, Arc::new(a), Arc::new(b))
}

fn item(v: serde_json::Value) -> CaptureItem {
    let payload = v.as_object().cloned().expect("an object");
    let candidate = prepare(&payload, &SourceConfig::api(), &Picklists::default()).expect("a valid lead");
    CaptureItem { submission: RawSubmission::new(SourceName::api(), None, payload), candidate }
}

fn scored() -> Rules {
    let scoring = leadflow_core::scoring::ScoringConfig::parse(
        r#"
[scoring]
mql_threshold = 1000
[[scoring.rules]]
name = "visit"
when = { event = "page_view" }
points = 1
cap = 1000
"#,
    )
    .unwrap();
    Rules { engagement: Arc::new(Engagement { scoring, ..Default::default() }), ..Rules::default() }
}

fn page_view(email: &str, key: Option<&str>) -> NewEvent {
    NewEvent {
        event: Event {
            id: EventId::new(),
            kind: "page_view".into(),
            occurred_at: OffsetDateTime::now_utc(),
            url: Some("https://acme.com/".into()),
            properties: serde_json::Map::new(),
            lead_id: None,
            identity: Identity { email: Some(email.into()), ..Identity::default() },
        },
        source: SourceName::api(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_found_one_account_for_one_domain() {
    let (_db, a, b) = two_instances(Rules::default()).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let email = format!("person{i}@initech.com");
            store.capture(vec![item(serde_json::json!({"email": email}))]).await.unwrap().remove(0)
        }));
    }
    let mut accounts = std::collections::HashSet::new();
    for task in tasks {
        match task.await.unwrap() {
            Captured::Settled { lead, .. } => {
                accounts.insert(lead.account_id.expect("a corporate lead has an account"))
            }
            other => panic!("expected a settled capture, got {other:?}"),
        };
    }
    assert_eq!(accounts.len(), 1, "one domain, one account");
    assert_eq!(a.list_accounts(None, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_from_two_instances_lose_no_rescore_and_record_a_key_once() {
    let (_db, a, b) = two_instances(scored()).await;
    let lead = match a.capture(vec![item(serde_json::json!({"email": "ada@acme.com"}))]).await.unwrap().remove(0) {
        Captured::Settled { lead, .. } => lead,
        other => panic!("expected a settled capture, got {other:?}"),
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        // Every fifth event repeats one key: it is recorded once whichever instance wins.
        let key = (i % 5 == 0).then_some("same-key");
        tasks.push(tokio::spawn(async move {
            store.record_events(vec![page_view("ada@acme.com", key)]).await.unwrap().remove(0)
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), EventOutcome::Attached { .. }));
    }
    let recorded = a.lead_events(lead.id, 100).await.unwrap().len();
    assert_eq!(recorded, 17, "16 events without a key and one with it");
    let stored = b.get_lead(lead.id).await.unwrap().unwrap();
    assert_eq!(stored.score, Some(17), "every event counted in the stored score");
}

/// A database at version 1 with a lead in it: upgrading gives the lead its account and the
/// columns reports group by.
#[tokio::test]
async fn upgrading_a_version_one_database_backfills_its_leads() {
    // A lead as version 1 stored it: made by a current store, stripped of what 0002 adds.
    let (_source_db, store, _) = two_instances(Rules::default()).await;
    let lead = match store
        .capture(vec![item(serde_json::json!({"email": "ada@initech.com", "utm_campaign": "spring"}))])
        .await
        .unwrap()
        .remove(0)
    {
        Captured::Settled { lead, .. } => lead,
        other => panic!("expected a settled capture, got {other:?}"),
    };
    let mut doc = serde_json::to_value(&lead).unwrap();
    doc.as_object_mut().unwrap().remove("account_id");

    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        .await
        .unwrap();
    client.batch_execute(include_str!("../migrations/postgres/0001_schema.sql")).await.unwrap();
    client.execute("INSERT INTO schema_migrations (version) VALUES (1)", &[]).await.unwrap();
    client
        .execute(
            "INSERT INTO leads (id, email, version, created_at, updated_at, doc) VALUES ($1, $2, 1, $3, $3, $4)",
            &[lead.id.as_uuid(), &"ada@initech.com", &lead.created_at, &tokio_postgres::types::Json(&doc)],
        )
        .await
        .unwrap();

    let lead_id = lead.id;
    let upgraded = PgStore::open(&db.url, &PgOptions::default(), Rules::default()).await.expect("opens and migrates");
    let now = OffsetDateTime::now_utc();
    let stored = upgraded.get_lead(lead.id).await.unwrap().unwrap();
    let account = stored.account_id.expect("the backfill gave the lead its account");
    assert_eq!(upgraded.get_account(account).await.unwrap().unwrap().domains, vec!["initech.com".to_owned()]);
    let sources =
        upgraded.report_sources(now - time::Duration::hours(1), now + time::Duration::hours(1), false).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!((sources[0].campaign.as_deref(), sources[0].leads), (Some("spring"), 1));
    upgraded.ping().await.expect("the schema is current");
    // The lead got its email match key: the same mailbox finds it.
    let again = upgraded.capture(vec![item(serde_json::json!({"email": "ADA@initech.com"}))]).await;
    assert!(
        matches!(&again.unwrap()[..], [Captured::Settled { lead, .. }] if lead.id == lead_id),
        "merged into the upgraded lead"
    );
}

// ---------------------------------------------------------------------------------------
// Groups: submissions settled side by side in one transaction must settle as they would
// one by one.

fn settled_lead(c: &Captured) -> (leadflow_core::pipeline::Outcome, &leadflow_core::Lead) {
    match c {
        Captured::Settled { outcome, lead, .. } => (*outcome, lead),
        other => panic!("expected a settled capture, got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_settles_in_order_whatever_its_submissions_share() {
    use leadflow_core::pipeline::Outcome::{Created, Merged};
    let fuzzy = Rules {
        matching: Arc::new(leadflow_core::resolve::Matching { fuzzy: true, ..Default::default() }),
        ..Rules::default()
    };
    let (_db, store, _) = two_instances(fuzzy).await;
    let items = vec![
        item(serde_json::json!({"email": "ada@acme.com"})),
        item(serde_json::json!({"email": "bob@initech.com"})),
        // Ada again, and a colleague of hers: each must see what the first wrote.
        item(serde_json::json!({"email": "ADA@acme.com", "city": "Oslo"})),
        item(serde_json::json!({"email": "cy@acme.com"})),
        item(serde_json::json!({"email": "bob@initech.com"})),
        // A person known only by name, company and phone, then the same badge scanned:
        // two leads at capture, one after the resolver, which sees the first though both
        // were queued in this same call.
        item(
            serde_json::json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"}),
        ),
        item(
            serde_json::json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671", "country": "US"}),
        ),
    ];
    let out = store.capture(items).await.unwrap();
    let got: Vec<_> = out.iter().map(|c| settled_lead(c).0).collect();
    assert_eq!(got, vec![Created, Created, Merged, Created, Merged, Created, Created]);
    let id = |i: usize| settled_lead(&out[i]).1.id;
    assert_eq!((id(0), id(1)), (id(2), id(4)), "each repeat joined its person");
    let resolved = store.resolve_queued(100, time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(resolved.merges, vec![(id(5), id(6))], "the badge scan folds into the older lead");
    assert_eq!(store.get_lead(id(6)).await.unwrap().unwrap().id, id(5));
    assert_ne!(id(0), id(3));
    let account = |i: usize| settled_lead(&out[i]).1.account_id.expect("a corporate lead has an account");
    assert_eq!(account(0), account(3), "one domain, one account");
    assert_ne!(account(0), account(1));
    let ada = store.get_lead(id(0)).await.unwrap().unwrap();
    assert_eq!(ada.fields.city.as_deref(), Some("Oslo"), "the second submission's data is in the lead");
    assert_eq!(store.lead_history(id(0)).await.unwrap().len(), 2);
    assert_eq!(store.count_leads().await.unwrap(), 4);
    assert_eq!(store.groups_redone(), 0, "settled side by side, not one by one after a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_grouped_together_settle_as_if_one_by_one() {
    let (_db, store, _) = two_instances(Rules::default()).await;
    // Calls under other rules join the same groups.
    let fuzzy = store.with_rules(Rules {
        matching: Arc::new(leadflow_core::resolve::Matching { fuzzy: true, ..Default::default() }),
        ..Rules::default()
    });
    let mut tasks = Vec::new();
    // 16 people of 4 companies, each sent 3 times, all at once.
    for i in 0..48 {
        let store: leadflow_store::DynStore = if i % 2 == 0 { store.clone() } else { fuzzy.clone() };
        tasks.push(tokio::spawn(async move {
            let person = i % 16;
            let email = format!("p{person}@co{}.com", person % 4);
            let captured = store.capture(vec![item(serde_json::json!({"email": email}))]).await;
            settled_lead(&captured.unwrap()[0]).1.clone()
        }));
    }
    let mut leads = std::collections::HashMap::new();
    for task in tasks {
        let lead = task.await.unwrap();
        let email = lead.fields.email.clone().unwrap();
        assert_eq!(*leads.entry(email).or_insert(lead.id), lead.id, "one lead a person");
    }
    assert_eq!(leads.len(), 16);
    assert_eq!(store.count_leads().await.unwrap(), 16);
    for id in leads.values() {
        assert_eq!(store.lead_history(*id).await.unwrap().len(), 3, "every submission recorded once");
    }
    assert_eq!(store.list_accounts(None, 100).await.unwrap().len(), 4);
    assert_eq!(store.groups_redone(), 0, "settled side by side, not one by one after a failure");
}

/// A call naming more keys than one transaction locks one by one takes one lock on every
/// key instead: it still excludes a capture of one of its people on another instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_naming_more_keys_than_one_transaction_locks_settles_beside_others() {
    let (_db, a, b) = two_instances(Rules::default()).await;
    let person = |i: usize| item(serde_json::json!({"email": format!("p{i}@example.com")}));
    let beside = tokio::spawn(async move { b.capture(vec![person(7)]).await });
    let out = a.capture((0..1100).map(person).collect()).await.expect("settled");
    let p7 = settled_lead(&out[7]).1.id;
    let again = beside.await.unwrap().unwrap();
    assert_eq!(settled_lead(&again[0]).1.id, p7, "the capture beside found the lead, or was found");
    assert_eq!(a.count_leads().await.unwrap(), 1100);
    assert_eq!(a.lead_history(p7).await.unwrap().len(), 2);
    assert_eq!(a.groups_redone(), 0);
}

/// A submission that cannot settle (here: its person's stored lead is unreadable) stays
/// pending in the inbox; the others of its group settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_that_cannot_settle_stays_pending_and_its_group_settles() {
    let (db, a, _) = two_instances(Rules::default()).await;
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO leads (id, email, email_key, version, created_at, updated_at, doc)
             VALUES ($1, 'broken@example.com', 'broken@example.com', 1, now(), now(), '{}')",
            &[leadflow_core::LeadId::new().as_uuid()],
        )
        .await
        .unwrap();
    let person = |email: &str| item(serde_json::json!({"email": email}));
    let b = a.clone();
    let beside = tokio::spawn(async move { b.capture(vec![person("cy@example.com")]).await });
    let out = a.capture(vec![person("ada@example.com"), person("broken@example.com"), person("bo@example.com")]).await;
    let out = out.expect("the call is answered");
    assert!(matches!(out[0], Captured::Settled { .. }));
    let Captured::Pending { submission_id } = out[1] else { panic!("expected pending, got {:?}", out[1]) };
    assert!(matches!(out[2], Captured::Settled { .. }));
    assert!(matches!(beside.await.unwrap().unwrap()[..], [Captured::Settled { .. }]));
    let pending = a.pending_submissions(10).await.unwrap();
    assert_eq!(pending.iter().map(|s| s.id).collect::<Vec<_>>(), vec![submission_id], "kept in the inbox");
    assert!(a.groups_redone() >= 1);
}

/// Whether the store's connections (named `application`) use TLS, as the server sees them.
async fn encrypted(admin: &tokio_postgres::Client, application: &str) -> Option<bool> {
    let sql = "SELECT bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
               WHERE a.datname = current_database() AND a.application_name = $1";
    admin.query_one(sql, &[&application]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_url_sslmode_decides_tls_to_postgres() {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let (admin, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(ssl, "on", "the test server must offer TLS (Debian's package does, with its snakeoil certificate)");
    let with = |query: &str| format!("{}{}{query}", db.url, if db.url.contains('?') { "&" } else { "?" });
    let open = |url: String| async move { PgStore::open(&url, &PgOptions::default(), Rules::default()).await };

    let plain = open(with("application_name=lf-plain")).await.unwrap();
    plain.count_leads().await.unwrap();
    assert_eq!(encrypted(&admin, "lf-plain").await, Some(false), "no sslmode: plain, as before");
    let required = open(with("application_name=lf-require&sslmode=require")).await.unwrap();
    required.count_leads().await.unwrap();
    assert_eq!(encrypted(&admin, "lf-require").await, Some(true));

    // The server's own certificate as the trusted root: its chain verifies.
    let cert: String = admin.query_one("SHOW ssl_cert_file", &[]).await.unwrap().get(0);
    let verified = open(with(&format!("application_name=lf-ca&sslmode=verify-ca&sslrootcert={cert}"))).await.unwrap();
    verified.count_leads().await.unwrap();
    assert_eq!(encrypted(&admin, "lf-ca").await, Some(true));
    // The system's roots do not vouch for a self-signed certificate.
    let refused = open(with("sslmode=verify-full")).await;
    let why = refused.err().map(|e| e.to_string().to_lowercase()).unwrap_or_default();
    assert!(
        why.contains("tls handshake") || why.contains("certificate"),
        "an untrusted certificate was accepted: {why}"
    );
    let unknown = open(with("sslmode=sometimes")).await;
    assert!(matches!(unknown, Err(leadflow_store::StoreError::Unsupported(_))));
    for store in [plain, required, verified] {
        store.close().await.unwrap();
    }
}
