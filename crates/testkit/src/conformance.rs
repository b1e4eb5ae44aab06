//! The conformance suite: the behaviour every store backend must show, written against
//! the [`Store`](leadflow_store::Store) interface only. A backend's test file runs it with
//! [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! leadflow_testkit::conformance_suite!(async { my_backend_for_tests().await });
//! ```
//!
//! The expression must evaluate to a [`TestStore`]: a fresh, empty store per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::config::{Picklists, SourceConfig};
use leadflow_store::{CaptureItem, Captured, DynStore};

static PICKLISTS: std::sync::LazyLock<Picklists> = std::sync::LazyLock::new(Picklists::default);
/// Fuzzy matching on: the identity-resolution tests, and exact email through the keys.
static MODEL: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| Rules {
    matching: std::sync::Arc::new(Matching { fuzzy: true, ..Matching::default() }),
    ..Rules::default()
});
/// The default rules.
static EXACT: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(Default::default);
/// Fuzzy matching off: the mailbox only, and nothing queued for the resolver.
static EXACT_NO_FUZZY: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| Rules {
    matching: std::sync::Arc::new(Matching { fuzzy: false, ..Matching::default() }),
    ..Rules::default()
});
use leadflow_core::error::{FieldError, FieldErrorCode};
use leadflow_core::keys::{ApiKey, ApiToken, Scope};
use leadflow_core::pipeline::{LeadEvent, Outcome, Rules, prepare};
use leadflow_core::resolve::Matching;
use leadflow_core::{Email, Lead, LeadId, SourceName};
use serde_json::{Map, Value, json};
use std::any::Any;
use std::collections::HashSet;
use time::OffsetDateTime;

/// A fresh store and whatever keeps it alive (a temporary directory, a database).
pub struct TestStore {
    pub store: DynStore,
    pub guard: Box<dyn Any + Send>,
    /// Where the data lies, for the tests that read every table directly.
    pub raw: Raw,
}

/// How to reach a test store's tables without the store.
#[derive(Clone, Debug)]
pub enum Raw {
    /// The database file.
    Sqlite(std::path::PathBuf),
    /// The database URL.
    Postgres(String),
}

/// Every value of every column of every table, as text: `(table, column, value)`. Blobs
/// are read as UTF-8 (lossily); numbers are left out. What a test that looks for a
/// person's data anywhere reads.
pub async fn stored_text(raw: &Raw) -> Vec<(String, String, String)> {
    match raw.clone() {
        Raw::Sqlite(path) => tokio::task::spawn_blocking(move || {
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut out = Vec::new();
            for table in tables {
                let columns: Vec<String> = conn
                    .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                for column in columns {
                    let mut stmt = conn.prepare(&format!("SELECT \"{column}\" FROM \"{table}\"")).unwrap();
                    let values = stmt
                        .query_map([], |r| {
                            Ok(match r.get_ref(0)? {
                                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                                    Some(String::from_utf8_lossy(t).into_owned())
                                }
                                _ => None,
                            })
                        })
                        .unwrap();
                    for value in values.flatten().flatten() {
                        out.push((table.clone(), column.clone(), value));
                    }
                }
            }
            out
        })
        .await
        .unwrap(),
        Raw::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let columns = client
                .query(
                    "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
                     WHERE table_schema = 'public' ORDER BY 1, 2",
                    &[],
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            for row in columns {
                let (table, column, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                // Bytes as text where they are text (a sealed value is not UTF-8).
                let bytes = kind == "bytea";
                let value = if bytes { format!("\"{column}\"") } else { format!("\"{column}\"::text") };
                let sql = format!("SELECT {value} FROM \"{table}\" WHERE \"{column}\" IS NOT NULL");
                for r in client.query(&sql, &[]).await.unwrap() {
                    let text = if bytes {
                        String::from_utf8_lossy(&r.get::<_, Vec<u8>>(0)).into_owned()
                    } else {
                        r.get::<_, String>(0)
                    };
                    out.push((table.clone(), column.clone(), text));
                }
            }
            out
        }
    }
}

#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@each $make;
            capture_creates_a_lead_and_reads_it_back,
            same_email_merges_into_one_lead,
            email_match_ignores_case_and_space,
            known_emails_are_found_by_mailbox_in_one_read,
            a_nul_in_what_was_received_is_dropped_and_the_lead_settles,
            one_mailbox_under_provider_rules_is_one_lead_without_fuzzy_matching,
            idempotency_key_returns_the_first_outcome,
            idempotency_keys_are_scoped_to_the_source,
            a_client_key_reused_for_another_body_is_refused,
            repeated_key_inside_one_call_settles_once,
            history_records_creation_and_merges,
            list_leads_pages_in_creation_order,
            enqueued_submissions_are_pending_until_captured,
            rejected_submissions_leave_the_pending_list,
            quarantine_keeps_submissions_with_their_reasons,
            quarantine_respects_idempotency_keys,
            a_quarantined_submission_settles_when_replayed,
            keys_are_found_by_hash_until_revoked,
            active_key_names_are_unique,
            a_key_keeps_its_lifecycle_and_a_rotation_overlaps_for_its_grace,
            concurrent_captures_of_one_person_make_one_lead,
            import_jobs_keep_their_file_until_finished,
            a_fuzzy_match_merges_after_capture_and_explains_itself,
            the_resolver_finds_a_person_by_keys_it_indexed_and_leaves_strangers_alone,
            exact_phone_settles_a_phone_only_lead_at_capture,
            a_shared_role_mailbox_is_not_one_person,
            a_possible_duplicate_is_queued_and_a_merge_decision_folds_it_in,
            a_distinct_decision_keeps_both_leads,
            a_merge_is_undone_from_history_unless_the_survivor_changed_since,
            a_capture_merge_is_split_off_from_history,
            a_lead_that_gains_evidence_is_resolved_again_and_joins_its_person,
            one_batch_folds_a_person_queued_three_times_into_the_oldest_lead,
            a_long_batch_finds_each_lead_queued_far_before_it,
            a_batch_longer_than_a_run_finds_leads_of_runs_applied_before,
            a_batch_applied_among_captures_loses_nothing,
            leads_of_one_domain_meet_in_one_account,
            free_mail_leads_join_by_company_key_or_stay_personal,
            an_account_owns_several_domains_and_keeps_its_owner,
            events_rescore_their_lead_and_wait_for_unknown_people,
            transitions_follow_the_contract_and_reports_count_them,
            a_period_is_claimed_once,
            concurrent_claims_of_one_period_have_one_winner,
            cursors_are_saved_and_replaced,
            ping_succeeds_on_a_migrated_store,
            close_finishes_accepted_writes,
            lead_changes_write_outbox_rows_for_subscribed_destinations,
            deliveries_of_one_lead_go_in_order,
            a_claim_is_leased_and_lapses,
            concurrent_claims_never_share_a_delivery,
            retries_wait_dead_letters_keep_their_attempts_and_replay,
            needs_data_waits_until_the_lead_changes,
            priority_sources_route_at_once_in_turn_and_explain_it,
            the_handoff_routes_and_caps_and_accounts_are_kept,
            an_sla_reassigns_and_stops_once_the_lead_is_taken_up,
            a_higher_priority_touch_reroutes,
            concurrent_routing_gives_each_lead_and_turn_once,
            an_sla_escalates_once,
            feedback_walks_leads_replays_and_keeps_order,
            feedback_finds_leads_by_crm_id_and_sets_owners,
            a_reason_sent_after_its_disqualification_completes_it,
            disqualifications_are_reported_by_source_campaign_and_reason,
            an_erased_lead_is_a_tombstone_that_refuses_writes,
            erase_is_idempotent_and_waits_for_unfinished_imports,
            capture_counts_each_submission_once_in_its_transaction,
            delivery_tries_count_by_destination_class_and_latency,
            old_health_buckets_are_pruned,
            alert_episodes_keep_acknowledgements_and_queue_each_notification_once,
            the_suppression_list_is_looked_up_lifted_and_filled_by_an_erasure,
            consent_choices_are_ledgered_and_release_held_deliveries,
            suppressed_submissions_stored_earlier_are_discarded,
            audit_retention_keeps_the_newest_entry_so_the_chain_goes_on,
            audit_entries_chain_across_appends_and_read_back_as_hashed,
            audit_entries_are_listed_newest_first_by_filter_and_cursor,
            concurrent_audit_appends_never_fork_the_chain,
            subject_reads_follow_every_record_merged_into_the_lead,
            retention_takes_only_what_is_older_than_the_cutoff,
            retention_runs_are_kept_newest_first,
            the_change_feed_tells_every_change_once_in_commit_order,
            concurrent_writers_never_leave_a_reader_a_gap,
            a_page_may_begin_and_end_inside_one_transactions_changes,
            a_backfill_queues_deliveries_with_their_changes,
            attendance_events_fold_into_the_lead_and_the_report_counts_them,
        );
        $crate::conformance_suite!(@each_raw $make;
            erase_leaves_no_trace_of_the_person_in_any_table,
            an_audit_entry_cannot_be_updated_but_the_oldest_can_be_deleted,
        );
    };
    (@each_raw $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t: $crate::conformance::TestStore = $make.await;
                $crate::conformance::$name(&t).await;
                drop(t);
            }
        )*
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t: $crate::conformance::TestStore = $make.await;
                $crate::conformance::$name(&t.store).await;
                drop(t);
            }
        )*
    };
}

fn payload(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn item(source: &str, key: Option<&str>, v: Value) -> CaptureItem {
    let payload = payload(v);
    let candidate = prepare(&payload, &SourceConfig::api(), &PICKLISTS).expect("a valid lead");
    let submission =
        RawSubmission::new(SourceName::parse(source).unwrap(), key.map(|k| IdempotencyKey::parse(k).unwrap()), payload);
    CaptureItem { submission, candidate }
}

fn settled(c: &Captured) -> (Outcome, &Lead, bool) {
    match c {
        Captured::Settled { outcome, lead, replayed, .. } => (*outcome, lead, *replayed),
        other => panic!("expected a settled capture, got {other:?}"),
    }
}

async fn capture_one(store: &DynStore, it: CaptureItem) -> Captured {
    store.with_rules(MODEL.clone()).capture(vec![it]).await.unwrap().remove(0)
}

/// Runs the resolver until its queue is empty; what every batch did, together.
async fn resolve(store: &DynStore) -> leadflow_store::ResolveBatch {
    let mut all = leadflow_store::ResolveBatch::default();
    loop {
        let batch = store.with_rules(MODEL.clone()).resolve_queued(2, OffsetDateTime::now_utc()).await.unwrap();
        let full = batch.taken == 2;
        all.extend(batch);
        if !full {
            assert_eq!(store.resolve_backlog().await.unwrap(), 0, "drained");
            return all;
        }
    }
}

pub async fn capture_creates_a_lead_and_reads_it_back(store: &DynStore) {
    let c = capture_one(
        store,
        item("api", None, json!({"email": "ada@example.com", "first_name": "Ada", "custom": {"plan": "pro"}})),
    )
    .await;
    let (outcome, lead, replayed) = settled(&c);
    assert_eq!((outcome, replayed), (Outcome::Created, false));
    let read = store.get_lead(lead.id).await.unwrap().expect("stored");
    assert_eq!(&read, lead);
    assert_eq!(read.custom["plan"], "pro");
    assert_eq!(store.get_lead(LeadId::new()).await.unwrap(), None);
    assert_eq!(store.count_leads().await.unwrap(), 1);
}

pub async fn same_email_merges_into_one_lead(store: &DynStore) {
    let a = capture_one(store, item("api", None, json!({"email": "grace@example.com", "first_name": "Grace"}))).await;
    let b = capture_one(store, item("api", None, json!({"email": "grace@example.com", "company": "Navy"}))).await;
    let (_, first, _) = settled(&a);
    let (outcome, merged, _) = settled(&b);
    assert_eq!(outcome, Outcome::Merged);
    assert_eq!(merged.id, first.id);
    let read = store.get_lead(first.id).await.unwrap().unwrap();
    assert_eq!(read.fields.first_name.as_deref(), Some("Grace"));
    assert_eq!(read.fields.company.as_deref(), Some("Navy"));
    assert_eq!(read.version, 2);
    assert_eq!(store.count_leads().await.unwrap(), 1);
}

pub async fn known_emails_are_found_by_mailbox_in_one_read(store: &DynStore) {
    store.capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    let email = |s: &str| leadflow_core::Email::parse(s).unwrap();
    let known = store.known_emails(vec![email("ADA@acme.com"), email("bob@acme.com")]).await.unwrap();
    assert_eq!(known, vec![email("ADA@acme.com")], "the mailbox, not the spelling");
    assert!(store.known_emails(Vec::new()).await.unwrap().is_empty());
}

pub async fn a_nul_in_what_was_received_is_dropped_and_the_lead_settles(store: &DynStore) {
    // PostgreSQL stores no NUL: the submission drops it as it is made, before anything
    // is prepared from it.
    let submission = RawSubmission::new(
        SourceName::api(),
        None,
        payload(json!({"email": "nul@acme.com", "first_name": "A\u{0}da", "custom": {"no\u{0}te": ["x\u{0}y"]}})),
    );
    let candidate = prepare(&submission.payload, &SourceConfig::api(), &PICKLISTS).expect("a valid lead");
    let c = store.capture(vec![CaptureItem { submission, candidate }]).await.unwrap();
    let lead = settled(&c[0]).1.clone();
    assert_eq!(lead.fields.first_name.as_deref(), Some("Ada"));
    assert_eq!(lead.custom.get("note"), Some(&json!(["xy"])), "{:?}", lead.custom);
    let stored = store.get_lead(lead.id).await.unwrap().unwrap();
    assert_eq!(stored.raw.get("first_name"), Some(&json!("Ada")));
}

pub async fn email_match_ignores_case_and_space(store: &DynStore) {
    // Under the default (exact email only) and with fuzzy matching.
    store
        .with_rules(EXACT.clone())
        .capture(vec![item("api", None, json!({"email": "Linus@Example.org"}))])
        .await
        .unwrap();
    let c = store
        .with_rules(EXACT.clone())
        .capture(vec![item("api", None, json!({"email": "  linus@EXAMPLE.org "}))])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(settled(&c).0, Outcome::Merged);
    let c = capture_one(store, item("api", None, json!({"email": "LINUS@example.org"}))).await;
    assert_eq!(settled(&c).0, Outcome::Merged);
    let found = store.find_leads_by_email(&Email::parse("LINUS@example.org").unwrap()).await.unwrap();
    assert_eq!(found.len(), 1);
}

pub async fn one_mailbox_under_provider_rules_is_one_lead_without_fuzzy_matching(store: &DynStore) {
    let capture = |v: Value, rules: &'static Rules| async move {
        let c = store.with_rules(rules.clone()).capture(vec![item("api", None, v)]).await.unwrap().remove(0);
        let (outcome, lead, _) = settled(&c);
        (outcome, lead.id)
    };
    let (_, jane) = capture(json!({"email": "jane.doe@gmail.com"}), &EXACT).await;
    // Gmail ignores dots and `+tags`, and googlemail.com is gmail.com: the same mailbox.
    assert_eq!(capture(json!({"email": "JaneDoe+webinar@googlemail.com"}), &EXACT).await, (Outcome::Merged, jane));
    assert_eq!(capture(json!({"email": "jane.doe+q4@gmail.com"}), &EXACT).await, (Outcome::Merged, jane));
    assert_eq!(store.get_lead(jane).await.unwrap().unwrap().fields.email.unwrap().as_str(), "jane.doe@gmail.com");
    // Elsewhere a `+tag` is part of the address, unless the domain is configured.
    let (_, kim) = capture(json!({"email": "kim@acme.com"}), &EXACT).await;
    let (outcome, other) = capture(json!({"email": "kim+events@acme.com"}), &EXACT).await;
    assert!(outcome == Outcome::Created && other != kim);
    static TAGS: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
        leadflow_core::config::parse("[matching.email]\nplus_tag_domains = [\"globex.com\"]\n").unwrap().rules()
    });
    let (_, lee) = capture(json!({"email": "lee@globex.com"}), &TAGS).await;
    assert_eq!(capture(json!({"email": "lee+events@globex.com"}), &TAGS).await, (Outcome::Merged, lee));
}

pub async fn idempotency_key_returns_the_first_outcome(store: &DynStore) {
    let first = capture_one(store, item("api", Some("order-1"), json!({"email": "k@example.com"}))).await;
    let again = capture_one(store, item("api", Some("order-1"), json!({"email": "k@example.com"}))).await;
    let (o1, l1, r1) = settled(&first);
    let (o2, l2, r2) = settled(&again);
    assert_eq!((o1, r1), (Outcome::Created, false));
    assert_eq!((o2, r2), (Outcome::Created, true), "the replay reports the first outcome");
    assert_eq!(l1.id, l2.id);
    assert_eq!(l2.version, 1, "a replay changes nothing");
    assert_eq!(store.count_leads().await.unwrap(), 1);
    assert_eq!(store.lead_history(l1.id).await.unwrap().len(), 1);
}

/// A client's `Idempotency-Key` (fingerprinted): the same body replays the first outcome,
/// another body is refused, also when many arrive at once.
pub async fn a_client_key_reused_for_another_body_is_refused(store: &DynStore) {
    let keyed = |key: &str, v: Value| {
        let it = item("api", Some(key), v);
        let s = it.submission;
        CaptureItem {
            submission: RawSubmission::keyed_by_client(s.source, s.idempotency_key, s.payload),
            candidate: it.candidate,
        }
    };
    let first = capture_one(store, keyed("client-1", json!({"email": "a@example.com"}))).await;
    let Captured::Settled { submission_id: first_id, .. } = &first else { panic!("{first:?}") };
    let same = capture_one(store, keyed("client-1", json!({"email": "a@example.com"}))).await;
    assert!(settled(&same).2, "the same body replays: {same:?}");
    let other = capture_one(store, keyed("client-1", json!({"email": "b@example.com"}))).await;
    assert_eq!(other, Captured::KeyReused { submission_id: *first_id });
    assert_eq!(store.count_leads().await.unwrap(), 1);

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (store, it) = (store.clone(), keyed("client-2", json!({"email": format!("p{i}@example.com")})));
        calls.spawn(async move { store.with_rules(EXACT.clone()).capture(vec![it]).await.unwrap().remove(0) });
    }
    let outcomes = calls.join_all().await;
    let created = outcomes.iter().filter(|c| matches!(c, Captured::Settled { replayed: false, .. })).count();
    let refused = outcomes.iter().filter(|c| matches!(c, Captured::KeyReused { .. })).count();
    assert_eq!((created, refused), (1, 19), "{outcomes:?}");
    assert_eq!(store.count_leads().await.unwrap(), 2);
}

pub async fn idempotency_keys_are_scoped_to_the_source(store: &DynStore) {
    capture_one(store, item("api", Some("k1"), json!({"email": "a1@example.com"}))).await;
    let other = capture_one(store, item("web", Some("k1"), json!({"email": "a2@example.com"}))).await;
    assert_eq!(settled(&other), (Outcome::Created, settled(&other).1, false));
    assert_eq!(store.count_leads().await.unwrap(), 2);
}

pub async fn repeated_key_inside_one_call_settles_once(store: &DynStore) {
    let out = store
        .with_rules(MODEL.clone())
        .capture(vec![
            item("api", Some("dup"), json!({"email": "d1@example.com"})),
            item("api", Some("dup"), json!({"email": "d1@example.com"})),
            item("api", None, json!({"email": "d1@example.com"})),
        ])
        .await
        .unwrap();
    let outcomes: Vec<(Outcome, bool)> = out.iter().map(|c| (settled(c).0, settled(c).2)).collect();
    assert_eq!(outcomes, vec![(Outcome::Created, false), (Outcome::Created, true), (Outcome::Merged, false)]);
    assert_eq!(store.count_leads().await.unwrap(), 1);
}

pub async fn history_records_creation_and_merges(store: &DynStore) {
    let a = capture_one(store, item("api", None, json!({"email": "h@example.com"}))).await;
    capture_one(store, item("webinar", None, json!({"email": "h@example.com", "city": "Oslo"}))).await;
    let id = settled(&a).1.id;
    let history = store.lead_history(id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(matches!(history[0].event, LeadEvent::Created { .. }));
    match &history[1].event {
        LeadEvent::Merged { source, filled, .. } => {
            assert_eq!(source.as_str(), "webinar");
            assert_eq!(filled, &vec!["city".to_owned()]);
        }
        other => panic!("expected a merge, got {other:?}"),
    }
}

pub async fn list_leads_pages_in_creation_order(store: &DynStore) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let c = capture_one(store, item("api", None, json!({"email": format!("p{i}@example.com")}))).await;
        ids.push(settled(&c).1.id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_leads(after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|l| l.id);
        seen.extend(page.into_iter().map(|l| l.id));
    }
    assert_eq!(seen, ids);
}

pub async fn enqueued_submissions_are_pending_until_captured(store: &DynStore) {
    let it = item("api", Some("hook-1"), json!({"email": "q@example.com"}));
    store.enqueue(vec![it.submission.clone()]).await.unwrap();
    // The same provider retry is not stored twice.
    store.enqueue(vec![item("api", Some("hook-1"), json!({"email": "q@example.com"})).submission]).await.unwrap();
    let pending = store.pending_submissions(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, it.submission.id);
    assert_eq!(pending[0].payload, it.submission.payload);
    let c = capture_one(store, CaptureItem { submission: pending[0].clone(), candidate: it.candidate }).await;
    assert_eq!((settled(&c).0, settled(&c).2), (Outcome::Created, false));
    assert!(store.pending_submissions(10).await.unwrap().is_empty());
}

fn invalid_email() -> Vec<FieldError> {
    vec![FieldError::new("email", FieldErrorCode::InvalidEmail, "not a valid email address")]
}

pub async fn rejected_submissions_leave_the_pending_list(store: &DynStore) {
    let sub = RawSubmission::new(SourceName::api(), None, payload(json!({"email": "broken"})));
    store.enqueue(vec![sub.clone()]).await.unwrap();
    store.reject_submission(sub.id, invalid_email()).await.unwrap();
    assert!(store.pending_submissions(10).await.unwrap().is_empty());
    let quarantined = store.list_quarantine(None, None, 10).await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].errors, invalid_email());
    // Replaying and failing again updates the reasons; a settled submission cannot be.
    store.reject_submission(sub.id, invalid_email()).await.unwrap();
    let settled = capture_one(store, item("api", None, json!({"email": "fine@example.com"}))).await;
    let Captured::Settled { submission_id, .. } = settled else { panic!("settled") };
    assert!(store.reject_submission(submission_id, invalid_email()).await.is_err());
}

pub async fn quarantine_keeps_submissions_with_their_reasons(store: &DynStore) {
    let web = SourceName::parse("web").unwrap();
    let a = RawSubmission::new(web.clone(), None, payload(json!({"email": "broken-1"})));
    let b = RawSubmission::new(SourceName::api(), None, payload(json!({"email": "broken-2"})));
    let out = store.quarantine(vec![(a.clone(), invalid_email()), (b.clone(), invalid_email())]).await.unwrap();
    assert!(
        matches!(&out[0], Captured::Rejected { submission_id, errors } if *submission_id == a.id && errors == &invalid_email())
    );
    let all = store.list_quarantine(None, None, 10).await.unwrap();
    assert_eq!(all.iter().map(|q| q.submission.id).collect::<Vec<_>>(), vec![a.id, b.id]);
    let only_web = store.list_quarantine(Some(web), None, 10).await.unwrap();
    assert_eq!(only_web.len(), 1);
    assert_eq!(only_web[0].submission.payload, a.payload);
    let page = store.list_quarantine(None, Some(a.id), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    let shown = store.get_submission(b.id).await.unwrap().expect("stored");
    assert_eq!(shown.status, leadflow_store::SubmissionStatus::Rejected);
    assert_eq!(store.count_leads().await.unwrap(), 0);
}

pub async fn quarantine_respects_idempotency_keys(store: &DynStore) {
    let first = RawSubmission::new(
        SourceName::api(),
        Some(IdempotencyKey::parse("row-7").unwrap()),
        payload(json!({"email": "x"})),
    );
    let again = RawSubmission::new(
        SourceName::api(),
        Some(IdempotencyKey::parse("row-7").unwrap()),
        payload(json!({"email": "x"})),
    );
    store.quarantine(vec![(first.clone(), invalid_email())]).await.unwrap();
    let out = store.quarantine(vec![(again, invalid_email())]).await.unwrap();
    assert!(matches!(&out[0], Captured::Rejected { submission_id, .. } if *submission_id == first.id), "{out:?}");
    assert_eq!(store.list_quarantine(None, None, 10).await.unwrap().len(), 1);
}

pub async fn a_quarantined_submission_settles_when_replayed(store: &DynStore) {
    let sub = RawSubmission::new(SourceName::api(), None, payload(json!({"email": "fixed@example.com"})));
    store.quarantine(vec![(sub.clone(), invalid_email())]).await.unwrap();
    let candidate = prepare(&sub.payload, &SourceConfig::api(), &PICKLISTS).unwrap();
    let c = capture_one(store, CaptureItem { submission: sub.clone(), candidate }).await;
    assert_eq!(settled(&c).0, Outcome::Created);
    assert!(store.list_quarantine(None, None, 10).await.unwrap().is_empty());
    let stored = store.get_submission(sub.id).await.unwrap().unwrap();
    assert_eq!(stored.status, leadflow_store::SubmissionStatus::Processed);
    assert_eq!(stored.lead_id, Some(settled(&c).1.id));
}

fn new_key(name: &str, scopes: &[Scope]) -> (ApiKey, ApiToken) {
    let token = ApiToken::generate().unwrap();
    (ApiKey::new(name, &token, scopes.to_vec(), OffsetDateTime::now_utc()), token)
}

pub async fn keys_are_found_by_hash_until_revoked(store: &DynStore) {
    let (key, token) = new_key("ci", &[Scope::Read, Scope::Ingest(Some(SourceName::api()))]);
    store.create_key(key.clone(), token.hash()).await.unwrap();
    let found = store.key_by_hash(token.hash()).await.unwrap().expect("found");
    assert_eq!(found.scopes, key.scopes);
    assert_eq!(store.key_by_hash(ApiToken::generate().unwrap().hash()).await.unwrap(), None);
    let revoked = store.revoke_key("ci").await.unwrap().expect("revoked");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.key_by_hash(token.hash()).await.unwrap(), None);
    assert_eq!(store.revoke_key("ci").await.unwrap(), None);
    let listed = store.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
}

pub async fn active_key_names_are_unique(store: &DynStore) {
    let (a, ta) = new_key("deploy", &[Scope::Admin]);
    let (b, tb) = new_key("deploy", &[Scope::Admin]);
    store.create_key(a.clone(), ta.hash()).await.unwrap();
    assert!(store.create_key(b.clone(), tb.hash()).await.is_err());
    // Once the first is revoked, the name is free again (rotation).
    store.revoke_key(&a.id.to_string()).await.unwrap().expect("revoked by id");
    store.create_key(b, tb.hash()).await.unwrap();
}

pub async fn a_key_keeps_its_lifecycle_and_a_rotation_overlaps_for_its_grace(store: &DynStore) {
    let now = OffsetDateTime::now_utc();
    let (key, token) = new_key("ci", &[Scope::Read]);
    let key = ApiKey {
        expires_at: Some(now + time::Duration::days(90)),
        rate_limit_per_minute: Some(120),
        allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
        ..key
    };
    store.create_key(key.clone(), token.hash()).await.unwrap();
    let found = store.key_by_hash(token.hash()).await.unwrap().unwrap();
    // Times are kept to the millisecond (SQLite) or microsecond (PostgreSQL).
    let close = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < time::Duration::milliseconds(1),
        (a, b) => a == b,
    };
    assert_eq!(ApiKey { created_at: key.created_at, expires_at: key.expires_at, ..found.clone() }, key);
    assert!(
        close(Some(found.created_at), Some(key.created_at)) && close(found.expires_at, key.expires_at),
        "{found:?}"
    );

    store.touch_keys(vec![(key.id, now)]).await.unwrap();
    store.touch_keys(vec![(key.id, now - time::Duration::hours(1))]).await.unwrap();
    let used = store.key_by_hash(token.hash()).await.unwrap().unwrap().last_used_at.unwrap();
    assert!((used - now).abs() < time::Duration::milliseconds(1), "a last use never moves back");

    let new_token = ApiToken::generate().unwrap();
    let successor = key.successor(&new_token, now, None);
    let grace = now + time::Duration::hours(24);
    let rotated = store.rotate_key(key.id, grace, successor.clone(), new_token.hash()).await.unwrap().unwrap();
    assert!(rotated.rotated_at.is_some());
    assert!((rotated.expires_at.unwrap() - grace).abs() < time::Duration::milliseconds(1));
    // Both tokens are found during the grace; the name is the new key's and the old one's.
    assert_eq!(store.key_by_hash(token.hash()).await.unwrap().unwrap().id, key.id);
    assert_eq!(store.key_by_hash(new_token.hash()).await.unwrap().unwrap().id, successor.id);
    assert!(store.rotate_key(key.id, grace, successor.clone(), new_token.hash()).await.unwrap().is_none(), "once");
    let (other, other_token) = new_key("ci", &[Scope::Read]);
    assert!(store.create_key(other, other_token.hash()).await.is_err(), "the name is still taken by the successor");

    // Revoking the name ends both.
    let revoked = store.revoke_key("ci").await.unwrap().unwrap();
    assert_eq!(revoked.id, successor.id, "the current key answers");
    assert_eq!(store.key_by_hash(token.hash()).await.unwrap(), None);
    assert_eq!(store.key_by_hash(new_token.hash()).await.unwrap(), None);
}

pub async fn concurrent_captures_of_one_person_make_one_lead(store: &DynStore) {
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Half with the default matching, half with fuzzy matching on.
            let matching = if i % 2 == 0 { &*EXACT } else { &*MODEL };
            let c = store
                .with_rules(matching.clone())
                .capture(vec![item("api", None, json!({"email": "same@example.com", "custom": {"n": i}}))])
                .await
                .unwrap();
            settled(&c[0]).1.id
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(store.count_leads().await.unwrap(), 1);
    let id = *ids.iter().next().unwrap();
    assert_eq!(store.lead_history(id).await.unwrap().len(), 32);
}

pub async fn import_jobs_keep_their_file_until_finished(store: &DynStore) {
    use leadflow_store::{ImportCounts, ImportJob, ImportStatus};
    // Whole seconds: stores keep at least millisecond precision.
    let now = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let mut job = ImportJob {
        id: leadflow_core::ImportId::new(),
        source: SourceName::api(),
        sheet: Some("Leads".into()),
        status: ImportStatus::Queued,
        counts: ImportCounts::default(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    store.create_import(job.clone(), b"email\na@example.com\n".to_vec()).await.unwrap();
    assert_eq!(store.get_import(job.id).await.unwrap().as_ref(), Some(&job));
    assert_eq!(store.unfinished_imports().await.unwrap().len(), 1);
    job.status = ImportStatus::Running;
    job.counts.rows = 1;
    store.update_import(job.clone(), None).await.unwrap();
    assert_eq!(store.import_file(job.id).await.unwrap().as_deref(), Some(&b"email\na@example.com\n"[..]));
    job.status = ImportStatus::Done;
    job.counts.created = 1;
    store.update_import(job.clone(), Some(b"row,external_id,outcome,lead_id,errors\n".to_vec())).await.unwrap();
    let read = store.get_import(job.id).await.unwrap().unwrap();
    assert_eq!((read.status, read.counts), (ImportStatus::Done, job.counts));
    assert_eq!(store.import_file(job.id).await.unwrap(), None, "the upload is dropped once done");
    assert!(store.import_report(job.id).await.unwrap().is_some());
    assert!(store.unfinished_imports().await.unwrap().is_empty());
}

pub async fn a_fuzzy_match_merges_after_capture_and_explains_itself(store: &DynStore) {
    let first = capture_one(
        store,
        item(
            "api",
            None,
            json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"}),
        ),
    )
    .await;
    let older = settled(&first).1.id;
    // A badge scan: no email, a nickname, another spelling of the company and the phone.
    let second = capture_one(store, item("event", None, json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671", "country": "US"}))).await;
    let (outcome, newer, _) = settled(&second);
    assert_eq!(outcome, Outcome::Created, "capture settles the mailbox only");
    let newer = newer.id;
    assert_eq!(store.resolve_backlog().await.unwrap(), 2, "both queued with their capture");
    // A third lead of someone else, queued after the two.
    capture_one(
        store,
        item("api", None, json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil"})),
    )
    .await;
    let resolved = resolve(store).await;
    // Robert first (the badge is not indexed yet: no match), then the badge finds Robert.
    assert_eq!((resolved.taken, resolved.leads), (3, 3));
    assert_eq!(resolved.merges, vec![(older, newer)], "the older lead survives");
    assert_eq!(store.count_leads().await.unwrap(), 2);
    assert_eq!(store.get_lead(newer).await.unwrap().unwrap().id, older, "the merged-away id answers with the survivor");
    let history = store.lead_history(older).await.unwrap();
    match history.last().map(|h| &h.event) {
        Some(LeadEvent::Absorbed { absorbed, explanation, .. }) => {
            assert_eq!(*absorbed, newer);
            assert_eq!(explanation.rule, leadflow_core::resolve::MatchRule::Fuzzy);
            assert!(explanation.score.is_some() && !explanation.evidence.is_empty());
        }
        other => panic!("expected the merge in the history, got {other:?}"),
    }
    // Resolved once: nothing is queued, and the same capture again merges nothing more.
    assert_eq!(resolve(store).await, leadflow_store::ResolveBatch::default());
    // Undone like every merge.
    assert_eq!(store.with_rules(MODEL.clone()).unmerge(newer).await.unwrap(), Some(older));
    assert_eq!(store.count_leads().await.unwrap(), 3);
}

pub async fn a_shared_role_mailbox_is_not_one_person(store: &DynStore) {
    let ada = json!({"email": "info@acme.com", "first_name": "Ada", "last_name": "Lovelace"});
    let grace = json!({"email": "Info@Acme.com", "first_name": "Grace", "last_name": "Hopper"});
    let first = settled(&capture_one(store, item("api", None, ada)).await).1.id;
    let captured = capture_one(store, item("api", None, grace)).await;
    let (outcome, second, _) = settled(&captured);
    assert_eq!(outcome, Outcome::Created, "two people behind one info@ address");
    assert_ne!(second.id, first);
    assert!(resolve(store).await.merges.is_empty());
    let found = store.find_leads_by_email(&Email::parse("info@acme.com").unwrap()).await.unwrap();
    assert_eq!(found.len(), 2, "both found by the address");
    // A person's own mailbox stays one lead.
    let own = json!({"email": "ada@acme.com", "first_name": "Ada"});
    let a = settled(&capture_one(store, item("api", None, own.clone())).await).1.id;
    assert_eq!(settled(&capture_one(store, item("api", None, own)).await).1.id, a);
}

pub async fn the_resolver_finds_a_person_by_keys_it_indexed_and_leaves_strangers_alone(store: &DynStore) {
    let robert =
        json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"});
    let first = settled(&capture_one(store, item("api", None, robert)).await).1.id;
    assert!(resolve(store).await.merges.is_empty());
    // Resolved in a later batch: found through the keys the first resolution wrote.
    let bob =
        json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671"});
    let second = settled(&capture_one(store, item("event", None, bob)).await).1.id;
    let namesake =
        json!({"first_name": "Robert", "last_name": "Smith", "company": "Globex", "email": "rsmith@globex.com"});
    let third = settled(&capture_one(store, item("api", None, namesake)).await).1.id;
    let resolved = resolve(store).await;
    assert_eq!(resolved.merges, vec![(first, second)]);
    assert_eq!(store.get_lead(third).await.unwrap().unwrap().id, third, "a namesake elsewhere stays apart");
    // Fuzzy matching off: nothing is queued.
    let exact = store.with_rules(EXACT_NO_FUZZY.clone());
    exact
        .capture(vec![item(
            "api",
            None,
            json!({"first_name": "Rob", "last_name": "Smith", "phone": "+1 415 555 2671"}),
        )])
        .await
        .unwrap();
    assert_eq!(store.resolve_backlog().await.unwrap(), 0);
}

/// `[matching] exact_phone`: capture also looks the person up by phone, and what the model
/// decides settles in the capture transaction. The same number under another name (a
/// switchboard) is no match; without the setting the phone waits for the resolver.
pub async fn exact_phone_settles_a_phone_only_lead_at_capture(store: &DynStore) {
    static PHONE: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| Rules {
        matching: std::sync::Arc::new(Matching { exact_phone: true, ..Matching::default() }),
        ..Rules::default()
    });
    let phone = store.with_rules(PHONE.clone());
    let scan = |first: &str| {
        item("event", None, json!({"first_name": first, "last_name": "Okonkwo-Hale", "phone": "+1 415 555 0147"}))
    };
    let first = settled(&phone.capture(vec![scan("Adaeze")]).await.unwrap().remove(0)).1.id;
    // Found once the resolver has indexed it.
    resolve(store).await;
    let again = phone.capture(vec![scan("Adaeze")]).await.unwrap().remove(0);
    let (outcome, lead, _) = settled(&again);
    assert_eq!((outcome, lead.id), (Outcome::Merged, first), "merged at capture, not left to the resolver");
    let other = json!({"first_name": "Marguerite", "last_name": "Lindqvist", "phone": "(415) 555-0147"});
    let switchboard = phone.capture(vec![item("event", None, other)]).await.unwrap().remove(0);
    assert_eq!(settled(&switchboard).0, Outcome::Created, "a shared number alone is no match");
    let without = store.with_rules(MODEL.clone()).capture(vec![scan("Adaeze")]).await.unwrap().remove(0);
    assert_eq!(settled(&without).0, Outcome::Created, "off by default: the resolver merges it later");
}

pub async fn a_capture_merge_is_split_off_from_history(store: &DynStore) {
    // One Gmail mailbox spelt two ways: merged at capture, though the addresses differ.
    let robert = json!({"first_name": "Robert", "last_name": "Smith", "email": "robert.smith@gmail.com"});
    let first = capture_one(store, item("api", None, robert)).await;
    let badge = item(
        "event",
        None,
        json!({"first_name": "Bob", "last_name": "Smith", "email": "RobertSmith+events@gmail.com", "job_title": "CTO"}),
    );
    let candidate = badge.candidate.clone();
    let second = capture_one(store, badge).await;
    let Captured::Settled { submission_id, outcome: Outcome::Merged, lead: merged, .. } = second else {
        panic!("expected a merge, got {second:?}");
    };
    assert_eq!(merged.fields.job_title.as_deref(), Some("CTO"));
    let survivor = settled(&first).1.id;

    assert_eq!(
        store
            .with_rules(MODEL.clone())
            .split_submission(LeadId::new(), submission_id, candidate.clone())
            .await
            .unwrap(),
        None
    );
    let split = store
        .with_rules(MODEL.clone())
        .split_submission(survivor, submission_id, candidate.clone())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(split.id, survivor);
    assert_eq!(split.fields.first_name.as_deref(), Some("Bob"));
    assert_eq!(split.attribution.original.source.as_str(), "event");
    let restored = store.get_lead(survivor).await.unwrap().unwrap();
    assert_eq!(restored.fields.job_title, None, "the survivor is back to its state before the merge");
    assert_eq!(restored.version, merged.version + 1);
    assert_eq!(store.count_leads().await.unwrap(), 2);
    let stored = store.get_submission(submission_id).await.unwrap().unwrap();
    assert_eq!(stored.lead_id, Some(split.id), "the submission now names its own lead");
    let history = store.lead_history(survivor).await.unwrap();
    assert!(matches!(history.last().unwrap().event, LeadEvent::Split { into, .. } if into == split.id));
    // Done once; the merge is no longer there to undo.
    assert_eq!(
        store.with_rules(MODEL.clone()).split_submission(survivor, submission_id, candidate).await.unwrap(),
        None
    );

    // The same mailbox is one lead: that merge cannot be split.
    let a = capture_one(store, item("api", None, json!({"email": "kim@acme.com"}))).await;
    let again = item("api", None, json!({"email": "kim@acme.com", "city": "Oslo"}));
    let c = again.candidate.clone();
    let Captured::Settled { submission_id, .. } = capture_one(store, again).await else { panic!() };
    let refused = store.with_rules(MODEL.clone()).split_submission(settled(&a).1.id, submission_id, c).await;
    assert!(matches!(refused, Err(leadflow_store::StoreError::Conflict(_))), "{refused:?}");
}

pub async fn a_lead_that_gains_evidence_is_resolved_again_and_joins_its_person(store: &DynStore) {
    // One person split over two leads that say too little to match each other: a phone
    // call with no company, and a badge scan with a nickname and a work address.
    let lead = |source: &'static str, v: Value| async move {
        settled(&capture_one(store, item(source, None, v)).await).1.clone()
    };
    let call = lead("chat", json!({"first_name": "Robert", "last_name": "Smith", "phone": "+1 415 555 2671"})).await;
    let badge = lead(
        "event",
        json!({"first_name": "Bob", "last_name": "Smith", "company": "Acme Inc.", "email": "bob.smith@acme.com"}),
    )
    .await;
    assert!(resolve(store).await.merges.is_empty(), "apart, the two do not match");
    // A form with both the address and the phone: the same mailbox takes it at capture,
    // and the badge's lead, now with the phone, matches the call's.
    let form = capture_one(store, item("web", None, json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme", "email": "bob.smith@acme.com", "phone": "(415) 555-2671", "country": "US"}))).await;
    let (outcome, lead, _) = settled(&form);
    assert_eq!((outcome, lead.id), (Outcome::Merged, badge.id), "the same mailbox takes the submission");
    assert_eq!(resolve(store).await.merges, vec![(call.id, badge.id)], "the older lead survives");
    assert_eq!(store.count_leads().await.unwrap(), 1);
    let survivor = store.get_lead(badge.id).await.unwrap().unwrap();
    assert_eq!(survivor.id, call.id);
    assert_eq!(survivor.fields.email.as_ref().map(|e| e.as_str()), Some("bob.smith@acme.com"));
    assert_eq!(survivor.attribution.touch_count, 3, "the absorbed lead's touches came along");
    let history = store.lead_history(call.id).await.unwrap();
    match history.last().map(|h| &h.event) {
        Some(LeadEvent::Absorbed { absorbed, explanation, .. }) => {
            assert_eq!(*absorbed, badge.id);
            assert_eq!(explanation.rule, leadflow_core::resolve::MatchRule::Fuzzy);
            assert!(explanation.score.is_some() && !explanation.evidence.is_empty(), "{explanation:?}");
        }
        other => panic!("expected the merge in the history, got {other:?}"),
    }
    // Undone from history like any merge.
    assert_eq!(store.with_rules(EXACT.clone()).unmerge(badge.id).await.unwrap(), Some(call.id));
    assert_eq!(store.count_leads().await.unwrap(), 2);
    assert_eq!(store.get_lead(badge.id).await.unwrap().unwrap().id, badge.id);
}

/// One resolver batch that holds one person three times, a stranger, and a lead indexed by
/// an earlier batch and queued again: later leads of the batch find earlier ones, the merges
/// apply in queue order over the leads as the batch's own merges left them, and each id
/// answers with the oldest lead.
pub async fn one_batch_folds_a_person_queued_three_times_into_the_oldest_lead(store: &DynStore) {
    let lead =
        |source: &'static str, v: Value| async move { settled(&capture_one(store, item(source, None, v)).await).1.id };
    let indexed =
        lead("api", json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@analytical.org"})).await;
    assert!(resolve(store).await.merges.is_empty());
    let robert = lead(
        "api",
        json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"}),
    )
    .await;
    let bob = lead("event", json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671", "country": "US"})).await;
    let stranger = lead("api", json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil"})).await;
    let rob = lead(
        "chat",
        json!({"first_name": "Rob", "last_name": "Smith", "company": "Acme", "phone": "415.555.2671", "country": "US"}),
    )
    .await;
    // The indexed lead changed at capture: queued again, behind the others.
    let again = json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@analytical.org", "company": "Analytical Engines"});
    assert_eq!(lead("web", again).await, indexed);
    assert_eq!(store.resolve_backlog().await.unwrap(), 5);

    let batch = store.with_rules(MODEL.clone()).resolve_queued(16, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((batch.taken, batch.leads), (5, 5), "{batch:?}");
    assert_eq!(batch.merges, vec![(robert, bob), (robert, rob)], "in queue order, into the oldest");
    assert_eq!(store.resolve_backlog().await.unwrap(), 0);
    assert_eq!(store.count_leads().await.unwrap(), 3);
    for id in [robert, bob, rob] {
        assert_eq!(store.get_lead(id).await.unwrap().unwrap().id, robert);
    }
    let absorbed: Vec<LeadId> = store
        .lead_history(robert)
        .await
        .unwrap()
        .iter()
        .filter_map(|h| match &h.event {
            LeadEvent::Absorbed { absorbed, .. } => Some(*absorbed),
            _ => None,
        })
        .collect();
    assert_eq!(absorbed, vec![bob, rob]);
    for id in [stranger, indexed] {
        assert_eq!(store.get_lead(id).await.unwrap().unwrap().id, id, "left alone");
    }
    // Indexed as the batch left them: the same person again is found by a later batch.
    let later = lead(
        "event",
        json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme", "phone": "+1 (415) 555-2671"}),
    )
    .await;
    assert_eq!(resolve(store).await.merges, vec![(robert, later)]);
    assert_eq!(store.count_leads().await.unwrap(), 3);
}

/// `people` people (at most 188), each captured twice without a mailbox (the copies far
/// apart in the resolver's queue): the first copies, and the second. People with one
/// surname have different given names at one company, so they stay apart.
async fn many_people_twice(store: &DynStore, people: usize) -> (Vec<LeadId>, Vec<LeadId>) {
    const SURNAMES: [&str; 47] = [
        "Abbott",
        "Barlow",
        "Castillo",
        "Dalton",
        "Ellison",
        "Fairbanks",
        "Galloway",
        "Hargrove",
        "Ingram",
        "Jennings",
        "Kowalski",
        "Lindqvist",
        "Montague",
        "Nakamura",
        "Oyelaran",
        "Pemberton",
        "Quintero",
        "Rasmussen",
        "Sandoval",
        "Thornbury",
        "Underwood",
        "Valentin",
        "Whitlock",
        "Yamashita",
        "Zielinski",
        "Ashcroft",
        "Blackwood",
        "Crawley",
        "Dunmore",
        "Everhart",
        "Fenwick",
        "Greenhalgh",
        "Huxley",
        "Iverson",
        "Jablonski",
        "Kettering",
        "Lockhart",
        "Merriweather",
        "Northcott",
        "Oakley",
        "Prescott",
        "Radcliffe",
        "Stanhope",
        "Tremaine",
        "Upton",
        "Vickers",
        "Wetherby",
    ];
    const FIRST: [&str; 4] = ["Margaret", "William", "Katherine", "Jonathan"];
    let lead = |v: Value| async move { settled(&capture_one(store, item("api", None, v)).await).1.id };
    assert!(people <= SURNAMES.len() * FIRST.len());
    let name =
        |i: usize| (FIRST[(i % SURNAMES.len() + i / SURNAMES.len()) % FIRST.len()], SURNAMES[i % SURNAMES.len()]);
    let mut first = Vec::new();
    for i in 0..people {
        let (given, surname) = name(i);
        let v = json!({"first_name": given, "last_name": surname, "company": "Acme Inc.", "phone": format!("+1 415 555 2{i:03}")});
        first.push(lead(v).await);
    }
    let mut second = Vec::new();
    for i in 0..people {
        let (given, surname) = name(i);
        let v = json!({"first_name": given, "last_name": surname, "company": "ACME Incorporated", "phone": format!("(415) 555-2{i:03}"), "country": "US"});
        second.push(lead(v).await);
    }
    assert_eq!(store.resolve_backlog().await.unwrap(), u64::try_from(first.len() + second.len()).unwrap());
    (first, second)
}

/// One batch of many people, each queued twice, the copies far apart (a store may look
/// queued leads up ahead of deciding them, in parallel): every later copy still finds the
/// earlier one, and the merges apply in queue order.
pub async fn a_long_batch_finds_each_lead_queued_far_before_it(store: &DynStore) {
    a_batch_of_people_twice_merges_each_later_copy(store, 47).await;
}

/// A batch longer than a store applies at once (SQLite applies runs of a batch while it
/// decides the rest, on a snapshot from before them): the copies in a later run still
/// find the leads of an earlier one.
pub async fn a_batch_longer_than_a_run_finds_leads_of_runs_applied_before(store: &DynStore) {
    a_batch_of_people_twice_merges_each_later_copy(store, 188).await;
}

async fn a_batch_of_people_twice_merges_each_later_copy(store: &DynStore, people: usize) {
    let (first, second) = many_people_twice(store, people).await;
    let queued = first.len() + second.len();
    let batch = store.with_rules(MODEL.clone()).resolve_queued(queued, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(batch.taken, queued);
    let expected: Vec<(LeadId, LeadId)> = first.iter().copied().zip(second.iter().copied()).collect();
    assert_eq!(batch.merges, expected, "each later copy into its earlier one, in queue order");
    assert_eq!(store.resolve_backlog().await.unwrap(), 0);
    assert_eq!(store.count_leads().await.unwrap(), u64::try_from(first.len()).unwrap());
}

/// A batch that fails partway (`queue_bad_row` queues a row the store cannot read, after
/// every other): whatever the store applied before the failure stays applied with its
/// queue rows taken, every other row stays queued, and once `remove_bad_row` has run the
/// rest resolves with nothing lost or applied twice. (SQLite applies a long batch in runs
/// while it decides the rest.)
pub async fn a_batch_failing_partway_keeps_queued_what_it_did_not_apply(
    store: &DynStore,
    queue_bad_row: impl FnOnce(),
    remove_bad_row: impl FnOnce(),
) {
    let (first, second) = many_people_twice(store, 188).await;
    let queued = u64::try_from(first.len() + second.len()).unwrap();
    queue_bad_row();
    let resolving = store.with_rules(MODEL.clone());
    assert!(resolving.resolve_queued(1_000, OffsetDateTime::now_utc()).await.is_err());
    let left = store.resolve_backlog().await.unwrap();
    assert!((1..=queued + 1).contains(&left), "the bad row and what was not applied stay queued: {left}");
    remove_bad_row();
    let rest = resolving.resolve_queued(1_000, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(u64::try_from(rest.taken).unwrap(), left - 1, "each row left, once");
    assert_eq!(store.resolve_backlog().await.unwrap(), 0);
    assert_eq!(store.count_leads().await.unwrap(), u64::try_from(first.len()).unwrap());
    for (kept, merged) in first.into_iter().zip(second) {
        assert_eq!(store.get_lead(merged).await.unwrap().unwrap().id, kept);
    }
}

/// A batch applied while captures keep the writer busy (a store may then apply it in
/// several transactions): every merge lands, the captures' leads stay queued, and nothing
/// is taken twice or lost.
pub async fn a_batch_applied_among_captures_loses_nothing(store: &DynStore) {
    let (first, second) = many_people_twice(store, 47).await;
    let queued = first.len() + second.len();
    let resolving = store.with_rules(MODEL.clone());
    let done = std::sync::atomic::AtomicBool::new(false);
    let batch = async {
        let batch = resolving.resolve_queued(queued, OffsetDateTime::now_utc()).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        batch
    };
    // Captures from four clients until the batch is applied.
    let capture = |client: usize| {
        let done = &done;
        async move {
            let mut ids = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) && ids.len() < 500 {
                let v = json!({"email": format!("visitor{client}.{}@example.org", ids.len()), "first_name": "Visitor"});
                ids.push(settled(&capture_one(store, item("web", None, v)).await).1.id);
            }
            ids
        }
    };
    let (batch, a, b, c, d) = tokio::join!(batch, capture(0), capture(1), capture(2), capture(3));
    let visitors: Vec<LeadId> = [a, b, c, d].concat();
    let batch = batch.unwrap();
    assert_eq!(batch.taken, queued);
    let expected: Vec<(LeadId, LeadId)> = first.iter().copied().zip(second.iter().copied()).collect();
    assert_eq!(batch.merges, expected);
    assert_eq!(store.resolve_backlog().await.unwrap(), u64::try_from(visitors.len()).unwrap(), "the captures' leads");
    assert!(resolve(store).await.merges.is_empty());
    assert_eq!(store.count_leads().await.unwrap(), u64::try_from(first.len() + visitors.len()).unwrap());
    for (kept, merged) in expected {
        assert_eq!(store.get_lead(merged).await.unwrap().unwrap().id, kept);
    }
}

async fn colleagues_or_one_person(store: &DynStore) -> (Lead, Lead) {
    let a = capture_one(
        store,
        item(
            "api",
            None,
            json!({"first_name": "Jon", "last_name": "Smith", "company": "Acme", "email": "jon@acme.com"}),
        ),
    )
    .await;
    // The same name (a nickname), same company, another mailbox at the company's domain:
    // perhaps a second address, perhaps a colleague. A person decides.
    let b = capture_one(store, item("webinar", None, json!({"first_name": "Jonathan", "last_name": "Smith", "company": "Acme Inc", "email": "jsmith@acme.com", "city": "Boston"}))).await;
    assert_eq!(settled(&b).0, Outcome::Created);
    let resolved = resolve(store).await;
    assert_eq!((resolved.merges.len(), resolved.reviews), (0, 1), "{resolved:?}");
    (settled(&a).1.clone(), settled(&b).1.clone())
}

pub async fn a_possible_duplicate_is_queued_and_a_merge_decision_folds_it_in(store: &DynStore) {
    let (older, newer) = colleagues_or_one_person(store).await;
    let open = store.list_reviews(None, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].lead_id, open[0].candidate_id), (newer.id, older.id));
    assert!(!open[0].evidence.is_empty());
    let decided = store
        .with_rules(MERGES_OUT.clone())
        .decide_review(open[0].id, leadflow_store::ReviewStatus::Merged)
        .await
        .unwrap()
        .unwrap();
    let claimed = store.claim_deliveries(10, std::time::Duration::from_secs(60), OffsetDateTime::now_utc()).await;
    let merged = claimed.unwrap().into_iter().filter(|d| d.event_type == "lead.merged").collect::<Vec<_>>();
    assert_eq!(merged.len(), 1, "a review's merge is a merged event, like a capture's");
    assert_eq!(merged[0].lead_id, older.id);
    assert_eq!(decided.status, leadflow_store::ReviewStatus::Merged);
    assert!(
        store
            .with_rules(EXACT.clone())
            .decide_review(open[0].id, leadflow_store::ReviewStatus::Distinct)
            .await
            .unwrap()
            .is_none(),
        "decided once"
    );
    assert_eq!(store.count_leads().await.unwrap(), 1);
    let survivor = store.get_lead(newer.id).await.unwrap().unwrap();
    assert_eq!(survivor.id, older.id, "the merged-away id answers with the survivor");
    assert_eq!(survivor.fields.city.as_deref(), Some("Boston"));
    assert_eq!(survivor.attribution.touch_count, 2);
    let history = store.lead_history(older.id).await.unwrap();
    assert!(
        matches!(history.last().map(|h| &h.event), Some(LeadEvent::Absorbed { absorbed, .. }) if *absorbed == newer.id)
    );
    assert!(store.list_reviews(None, 10).await.unwrap().is_empty());
}

pub async fn a_distinct_decision_keeps_both_leads(store: &DynStore) {
    let _ = colleagues_or_one_person(store).await;
    let open = store.list_reviews(None, 10).await.unwrap();
    store
        .with_rules(EXACT.clone())
        .decide_review(open[0].id, leadflow_store::ReviewStatus::Distinct)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.count_leads().await.unwrap(), 2);
    assert!(store.list_reviews(None, 10).await.unwrap().is_empty());
    assert_eq!(store.get_review(open[0].id).await.unwrap().unwrap().status, leadflow_store::ReviewStatus::Distinct);
}

pub async fn a_merge_is_undone_from_history_unless_the_survivor_changed_since(store: &DynStore) {
    let (older, newer) = colleagues_or_one_person(store).await;
    let review = store.list_reviews(None, 10).await.unwrap().remove(0);
    store
        .with_rules(EXACT.clone())
        .decide_review(review.id, leadflow_store::ReviewStatus::Merged)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.count_leads().await.unwrap(), 1);

    assert_eq!(store.with_rules(EXACT.clone()).unmerge(newer.id).await.unwrap(), Some(older.id));
    assert_eq!(store.count_leads().await.unwrap(), 2);
    let survivor = store.get_lead(older.id).await.unwrap().unwrap();
    assert_eq!(survivor.fields.city, None, "the field the merge filled is gone again");
    assert_eq!(survivor.attribution.touch_count, 1);
    let restored = store.get_lead(newer.id).await.unwrap().unwrap();
    assert_eq!(restored.id, newer.id, "the absorbed lead answers as itself again");
    assert_eq!(restored.fields.city.as_deref(), Some("Boston"));
    assert!(matches!(
        store.lead_history(older.id).await.unwrap().last().map(|h| &h.event),
        Some(LeadEvent::Unmerged { .. })
    ));
    assert_eq!(store.with_rules(EXACT.clone()).unmerge(newer.id).await.unwrap(), None, "nothing left to undo");

    // Merge again, then change the survivor: undoing would lose that change.
    assert!(
        store
            .with_rules(MERGES_OUT.clone())
            .merge_leads(
                older.id,
                newer.id,
                leadflow_core::resolve::Explanation {
                    rule: leadflow_core::resolve::MatchRule::Reviewed,
                    score: None,
                    evidence: Vec::new(),
                }
            )
            .await
            .unwrap()
    );
    let claimed = store.claim_deliveries(10, std::time::Duration::from_secs(60), OffsetDateTime::now_utc()).await;
    assert_eq!(claimed.unwrap().iter().map(|d| d.event_type.as_str()).collect::<Vec<_>>(), ["lead.merged"]);
    capture_one(store, item("api", None, json!({"email": "jon@acme.com", "job_title": "CTO"}))).await;
    assert!(store.with_rules(EXACT.clone()).unmerge(newer.id).await.is_err());
    assert_eq!(store.count_leads().await.unwrap(), 1);
}

async fn account_of(store: &DynStore, v: Value) -> Option<leadflow_core::AccountId> {
    let c = store.with_rules(EXACT.clone()).capture(vec![item("api", None, v)]).await.unwrap().remove(0);
    settled(&c).1.account_id
}

pub async fn leads_of_one_domain_meet_in_one_account(store: &DynStore) {
    let ada = account_of(store, json!({"email": "ada@acme.com", "company": "Acme, Inc."})).await.expect("an account");
    let bob = account_of(store, json!({"email": "bob@sales.acme.com", "company": "ACME Incorporated"})).await;
    assert_eq!(bob, Some(ada));
    let other = account_of(store, json!({"email": "eve@globex.com", "company": "Globex"})).await;
    assert!(other.is_some() && other != Some(ada));
    let account = store.get_account(ada).await.unwrap().expect("stored");
    assert_eq!(account.domains, vec!["acme.com"]);
    assert_eq!(account.company_keys, vec!["acme"]);
    assert_eq!(account.name, "Acme, Inc.");
    let leads = store.account_leads(ada, None, 10).await.unwrap();
    assert_eq!(leads.len(), 2);
    let listed = store.list_accounts(None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), vec![ada, other.unwrap()]);
    assert_eq!(store.get_lead(leads[0].id).await.unwrap().unwrap().account_id, Some(ada));
}

pub async fn free_mail_leads_join_by_company_key_or_stay_personal(store: &DynStore) {
    let solo = account_of(store, json!({"email": "carol@gmail.com", "company": "Carol Consulting"})).await;
    assert_eq!(solo, None, "free mail never founds an account");
    assert!(store.list_accounts(None, 10).await.unwrap().is_empty());
    let acme = account_of(store, json!({"email": "ada@acme.com", "company": "Acme"})).await.unwrap();
    let joined = account_of(store, json!({"email": "dan@gmail.com", "company": "Acme Inc"})).await;
    assert_eq!(joined, Some(acme));
    let placeholder = account_of(store, json!({"email": "erin@yahoo.com", "company": "self-employed"})).await;
    assert_eq!(placeholder, None);
    // A merge that brings a corporate address gives the personal contact its account.
    let later = account_of(store, json!({"email": "carol@gmail.com", "website": "https://carol-consulting.com"})).await;
    let account = store.get_account(later.expect("an account from the website")).await.unwrap().unwrap();
    assert_eq!(account.domains, vec!["carol-consulting.com"]);
}

pub async fn an_account_owns_several_domains_and_keeps_its_owner(store: &DynStore) {
    let acme = account_of(store, json!({"email": "ada@acme.com", "company": "Acme"})).await.unwrap();
    let de = account_of(store, json!({"email": "max@acme.de", "company": "Acme GmbH"})).await;
    assert_eq!(de, Some(acme), "a domain of the same name joins by the company key");
    let namesake = account_of(store, json!({"email": "wile@coyote-supply.com", "company": "Acme"})).await;
    assert!(namesake.is_some() && namesake != Some(acme), "an unrelated domain is another company");

    let update = leadflow_store::AccountUpdate {
        owner: Some(Some("rep@seller.com".into())),
        add_domains: vec!["acme-corp.com".into()],
        ..Default::default()
    };
    let account = store.update_account(acme, update).await.unwrap().unwrap();
    assert_eq!(account.owner.as_deref(), Some("rep@seller.com"));
    assert_eq!(account.domains, vec!["acme-corp.com", "acme.com", "acme.de"]);
    let joined = account_of(store, json!({"email": "kim@acme-corp.com"})).await;
    assert_eq!(joined, Some(acme));
    let taken = leadflow_store::AccountUpdate { add_domains: vec!["coyote-supply.com".into()], ..Default::default() };
    assert!(matches!(store.update_account(acme, taken).await, Err(leadflow_store::StoreError::Conflict(_))));
    assert_eq!(store.update_account(leadflow_core::AccountId::new(), Default::default()).await.unwrap(), None);
    let cleared = leadflow_store::AccountUpdate { owner: Some(None), ..Default::default() };
    assert_eq!(store.update_account(acme, cleared).await.unwrap().unwrap().owner, None);
}

static SCORED: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
    let scoring = leadflow_core::scoring::ScoringConfig::parse(
        r#"
[scoring]
mql_threshold = 20
gate = ["email"]
[[scoring.rules]]
name = "pricing"
when = { event = "page_view", url_matches = "*/pricing*" }
points = 10
cap = 30
"#,
    )
    .unwrap();
    let engagement = leadflow_core::engagement::Engagement { scoring, ..Default::default() };
    Rules { engagement: std::sync::Arc::new(engagement), ..Rules::default() }
});

fn event(
    kind: &str,
    url: &str,
    who: leadflow_core::engagement::Identity,
    key: Option<&str>,
) -> leadflow_store::NewEvent {
    leadflow_store::NewEvent {
        event: leadflow_core::engagement::Event {
            id: leadflow_core::EventId::new(),
            kind: kind.into(),
            occurred_at: OffsetDateTime::now_utc(),
            url: Some(url.into()),
            properties: Map::new(),
            lead_id: None,
            identity: who,
        },
        source: SourceName::api(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
    }
}

pub async fn events_rescore_their_lead_and_wait_for_unknown_people(store: &DynStore) {
    use leadflow_core::engagement::Identity;
    use leadflow_store::EventOutcome;
    let by_email = |e: &str| Identity { email: Some(e.into()), ..Identity::default() };
    let visitor = |v: &str| Identity { anonymous_id: Some(v.into()), ..Identity::default() };

    let c = store
        .with_rules(SCORED.clone())
        .capture(vec![item("api", None, json!({"email": "ada@acme.com"}))])
        .await
        .unwrap();
    let ada = settled(&c[0]).1.clone();
    assert_eq!(ada.score, Some(0));
    let out = store
        .with_rules(SCORED.clone())
        .record_events(vec![
            event("page_view", "https://acme.com/pricing", by_email("ada@acme.com"), Some("e1")),
            event("page_view", "https://x.com/pricing", visitor("v-42"), None),
        ])
        .await
        .unwrap();
    match &out[0] {
        EventOutcome::Attached { lead_id, score, stage, replayed, .. } => {
            assert_eq!((*lead_id, *score, stage.as_str(), *replayed), (ada.id, Some(10), "engaged", false));
        }
        other => panic!("expected an attached event, got {other:?}"),
    }
    assert!(matches!(out[1], EventOutcome::Waiting { replayed: false, .. }));
    // A retry with the same key records nothing again.
    let again = store
        .with_rules(SCORED.clone())
        .record_events(vec![event("page_view", "https://acme.com/pricing", by_email("ada@acme.com"), Some("e1"))])
        .await
        .unwrap();
    assert!(matches!(again[0], EventOutcome::Attached { replayed: true, score: Some(10), .. }));
    assert_eq!(store.lead_events(ada.id, 10).await.unwrap().len(), 1);

    // The anonymous visitor converts: its event joins the new lead, which reaches MQL.
    let form = json!({"email": "bo@globex.com", "custom": {"anonymous_id": "v-42"}});
    let c = store.with_rules(SCORED.clone()).capture(vec![item("api", None, form)]).await.unwrap();
    let bo_id = settled(&c[0]).1.id;
    store
        .with_rules(SCORED.clone())
        .record_events(vec![event("page_view", "https://globex.com/pricing", visitor("v-42"), None)])
        .await
        .unwrap();
    let bo = store.get_lead(bo_id).await.unwrap().unwrap();
    assert_eq!(bo.score, Some(20));
    assert_eq!(bo.lifecycle_stage, "mql");
    assert_eq!(store.lead_events(bo.id, 10).await.unwrap().len(), 2);
    let history = store.lead_history(bo.id).await.unwrap();
    assert!(history.iter().any(|h| matches!(h.event, LeadEvent::EventsAttached { count: 1 })));
    assert!(
        history.iter().any(|h| matches!(&h.event, LeadEvent::StageChanged { to, handoff: true, .. } if to == "mql"))
    );

    // An event for an email nobody has yet waits for that lead.
    store
        .with_rules(SCORED.clone())
        .record_events(vec![event("webinar_attended", "https://x.com/w", by_email("cy@initech.com"), None)])
        .await
        .unwrap();
    let c = store
        .with_rules(SCORED.clone())
        .capture(vec![item("webinar", None, json!({"email": "cy@initech.com"}))])
        .await
        .unwrap();
    let cy = settled(&c[0]).1.clone();
    assert_eq!(cy.lifecycle_stage, "engaged", "the waiting event counted at conversion");
    let touches = store.touchpoints(cy.id).await.unwrap();
    assert_eq!(touches.len(), 1);
    assert_eq!(touches[0].source.as_str(), "webinar");
}

pub async fn transitions_follow_the_contract_and_reports_count_them(store: &DynStore) {
    let mk = |email: &str, campaign: &str| item("api", None, json!({"email": email, "utm_campaign": campaign}));
    let test_lead =
        item("api", None, json!({"email": "t@acme.com", "utm_campaign": "spring", "custom": {"test": true}}));
    let leads = vec![mk("a@acme.com", "spring"), mk("b@acme.com", "spring"), mk("c@acme.com", "fall"), test_lead];
    let c = store.with_rules(EXACT.clone()).capture(leads).await.unwrap();
    let a = settled(&c[0]).1.id;
    let refused = store
        .with_rules(EXACT.clone())
        .transition_lead(a, "customer".into(), "rep".into(), None)
        .await
        .unwrap()
        .unwrap();
    let refused = refused.unwrap_err();
    assert!(!refused.allowed.is_empty(), "the refusal lists the allowed stages");
    let reason = leadflow_core::scoring::LifecycleContract::default().disqualify_reasons()[0].clone();
    let moved = store
        .with_rules(EXACT.clone())
        .transition_lead(a, "disqualified".into(), "rep@x.com".into(), Some(reason.clone()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(moved.lifecycle_stage, "disqualified");
    assert_eq!(store.get_lead(a).await.unwrap().unwrap().lifecycle_stage, "disqualified");
    assert!(
        store
            .with_rules(EXACT.clone())
            .transition_lead(LeadId::new(), "sal".into(), "rep".into(), None)
            .await
            .unwrap()
            .is_none()
    );

    let (from, to) =
        (OffsetDateTime::now_utc() - time::Duration::hours(1), OffsetDateTime::now_utc() + time::Duration::hours(1));
    let sources = store.report_sources(from, to, false).await.unwrap();
    let spring = sources.iter().find(|s| s.campaign.as_deref() == Some("spring")).unwrap();
    assert_eq!((spring.source.as_str(), spring.leads), ("api", 2), "test leads are left out");
    let stages = store.report_stages(from, to).await.unwrap();
    let count = |campaign: &str, stage: &str| {
        stages.iter().find(|s| s.campaign.as_deref() == Some(campaign) && s.stage == stage).map_or(0, |s| s.leads)
    };
    assert_eq!(count("spring", "new"), 2);
    assert_eq!(count("spring", "disqualified"), 1);
    assert_eq!(count("fall", "disqualified"), 0);
    let later = store.report_sources(to, to + time::Duration::hours(1), false).await.unwrap();
    assert!(later.is_empty());
}

pub async fn ping_succeeds_on_a_migrated_store(store: &DynStore) {
    store.ping().await.unwrap();
}

pub async fn close_finishes_accepted_writes(store: &DynStore) {
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .with_rules(MODEL.clone())
                    .capture(vec![item("api", None, json!({"email": format!("c{i}@example.com")}))])
                    .await
            })
        })
        .collect();
    let mut acknowledged = 0u64;
    for w in writes {
        if w.await.unwrap().is_ok() {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 20, "writes accepted before close all complete");
    store.close().await.unwrap();
    // Readiness probes must see the closed store at once, not once a thread has wound down.
    assert!(matches!(store.ping().await, Err(leadflow_store::StoreError::Closed)), "ping after close");
    assert!(
        store
            .with_rules(MODEL.clone())
            .capture(vec![item("api", None, json!({"email": "late@example.com"}))])
            .await
            .is_err()
    );
    assert_eq!(store.count_leads().await.unwrap(), acknowledged);
}

static OUTBOX: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
    leadflow_core::config::parse(
        r#"
[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
events = ["created", "merged"]

[[destinations]]
name = "crm"
type = "hubspot"
token_env = "HUBSPOT_TOKEN"
events = ["created"]
"#,
    )
    .unwrap()
    .rules()
});

fn attempt(
    d: &leadflow_store::OutboxDelivery,
    result: leadflow_store::DeliveryResult,
    status: Option<u16>,
) -> leadflow_store::DeliveryAttempt {
    leadflow_store::DeliveryAttempt {
        delivery_id: d.id.clone(),
        result,
        at: OffsetDateTime::now_utc(),
        status,
        error: status.map(|s| format!("HTTP {s}")),
        request: Some("POST /in".into()),
        response: status.map(|s| format!("{{\"status\":{s}}}")),
        duration_ms: 12,
    }
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

pub async fn lead_changes_write_outbox_rows_for_subscribed_destinations(store: &DynStore) {
    let c = store
        .with_rules(OUTBOX.clone())
        .capture(vec![item("api", None, json!({"email": "ada@acme.com"}))])
        .await
        .unwrap();
    let ada = settled(&c[0]).1.clone();
    let now = OffsetDateTime::now_utc();
    let mut claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    claimed.sort_by(|a, b| a.destination.cmp(&b.destination));
    let seen: Vec<(&str, &str)> = claimed.iter().map(|d| (d.destination.as_str(), d.event_type.as_str())).collect();
    assert_eq!(seen, [("crm", "lead.created"), ("hook", "lead.created")]);
    assert!(
        claimed
            .iter()
            .all(|d| d.lead_id == ada.id && d.attempts == 0 && d.status == leadflow_store::DeliveryStatus::Pending)
    );
    assert_eq!(claimed[0].payload["email"], "ada@acme.com");
    assert_ne!(claimed[0].id, claimed[1].id, "one idempotency key per delivery");
    // Without subscriptions, no rows.
    store.with_rules(EXACT.clone()).capture(vec![item("api", None, json!({"email": "bob@acme.com"}))]).await.unwrap();
    assert!(store.claim_deliveries(10, LEASE, now + LEASE * 2).await.unwrap().len() == 2, "only ada's two, again");
}

pub async fn deliveries_of_one_lead_go_in_order(store: &DynStore) {
    store.with_rules(OUTBOX.clone()).capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    store
        .with_rules(OUTBOX.clone())
        .capture(vec![item("api", None, json!({"email": "ada@acme.com", "company": "Acme"}))])
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let first: Vec<_> =
        store.claim_deliveries(10, LEASE, now).await.unwrap().into_iter().filter(|d| d.destination == "hook").collect();
    assert_eq!(first.len(), 1, "the merge waits for the creation: {first:?}");
    assert_eq!(first[0].event_type, "lead.created");
    // A failed try keeps the later one waiting, even once the lease is gone.
    let retry_at = now + time::Duration::minutes(5);
    store
        .record_delivery(attempt(&first[0], leadflow_store::DeliveryResult::Retry { at: retry_at }, Some(500)))
        .await
        .unwrap();
    assert!(store.claim_deliveries(10, LEASE, now).await.unwrap().iter().all(|d| d.destination != "hook"));
    store.record_delivery(attempt(&first[0], leadflow_store::DeliveryResult::Delivered, Some(200))).await.unwrap();
    let next = store.claim_deliveries(10, LEASE, now).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].destination.as_str(), next[0].event_type.as_str()), ("hook", "lead.merged"));
    assert_eq!(next[0].payload["company"], "Acme", "the lead as it stood after the merge");
}

pub async fn a_claim_is_leased_and_lapses(store: &DynStore) {
    store.with_rules(OUTBOX.clone()).capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(store.claim_deliveries(10, LEASE, now).await.unwrap().len(), 2);
    assert!(store.claim_deliveries(10, LEASE, now).await.unwrap().is_empty(), "leased");
    let due = store.next_delivery_due().await.unwrap().unwrap();
    assert!(due >= now + time::Duration::seconds(59), "due when the lease lapses: {due}");
    let later = now + LEASE + time::Duration::seconds(1);
    assert_eq!(store.claim_deliveries(1, LEASE, later).await.unwrap().len(), 1, "a crashed worker's claim lapses");
}

/// Several workers (instances) claiming at once: each delivery goes to exactly one.
pub async fn concurrent_claims_never_share_a_delivery(store: &DynStore) {
    let people: Vec<_> = (0..24).map(|i| item("api", None, json!({"email": format!("p{i}@acme.com")}))).collect();
    store.with_rules(OUTBOX.clone()).capture(people).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store.claim_deliveries(3, LEASE, now).await.unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|d| d.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for claim in claims {
        for id in claim.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    // A worker may stop while another still holds rows it skipped: whatever is left is
    // claimed now, and none of it was handed out before.
    for d in store.claim_deliveries(100, LEASE, now).await.unwrap() {
        assert!(seen.insert(d.id.clone()), "{} was claimed twice", d.id);
    }
    assert_eq!(seen.len(), 48, "every delivery claimed once: two destinations per person");
}

pub async fn retries_wait_dead_letters_keep_their_attempts_and_replay(store: &DynStore) {
    use leadflow_store::{DeliveryResult, DeliveryStatus, ReplayFilter};
    store.with_rules(OUTBOX.clone()).capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    let hook = claimed.iter().find(|d| d.destination == "hook").unwrap().clone();
    let crm = claimed.iter().find(|d| d.destination == "crm").unwrap().clone();
    store.record_delivery(attempt(&hook, DeliveryResult::Retry { at: now }, Some(503))).await.unwrap();
    let again = store.claim_deliveries(10, LEASE, now).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    store.record_delivery(attempt(&again[0], DeliveryResult::Dead, Some(400))).await.unwrap();
    store.record_delivery(attempt(&crm, DeliveryResult::Dead, Some(401))).await.unwrap();

    let dead = store.list_deliveries(DeliveryStatus::Dead, Some("hook".into()), None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].last_status), (2, Some(400)));
    assert_eq!(dead[0].last_response.as_deref(), Some("{\"status\":400}"));
    let (one, tries) = store.get_delivery(&hook.id).await.unwrap().unwrap();
    assert_eq!(one.status, DeliveryStatus::Dead);
    let outcomes: Vec<(u32, &str, Option<u16>)> =
        tries.iter().map(|t| (t.attempt, t.outcome.as_str(), t.status)).collect();
    assert_eq!(outcomes, [(1, "retry", Some(503)), (2, "dead", Some(400))]);
    assert_eq!(tries[0].request.as_deref(), Some("POST /in"));
    assert!(store.get_delivery("dlv_nothing").await.unwrap().is_none());

    let replayed = store.replay_delivery(&hook.id, now).await.unwrap().unwrap();
    assert_eq!((replayed.status, replayed.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(replayed.id, hook.id, "the same idempotency key");
    assert!(store.replay_delivery("dlv_nothing", now).await.unwrap().is_none());

    let outside = ReplayFilter { destination: Some("crm".into()), from: Some(now + LEASE), to: None };
    assert_eq!(store.replay_deliveries(outside, now).await.unwrap(), 0);
    let window = ReplayFilter { destination: Some("crm".into()), from: Some(now - LEASE), to: Some(now + LEASE) };
    assert_eq!(store.replay_deliveries(window, now).await.unwrap(), 1);
    assert!(store.list_deliveries(DeliveryStatus::Dead, None, None, 10).await.unwrap().is_empty());
    assert_eq!(store.claim_deliveries(10, LEASE, now).await.unwrap().len(), 2);
}

pub async fn needs_data_waits_until_the_lead_changes(store: &DynStore) {
    use leadflow_store::{DeliveryResult, DeliveryStatus};
    store.with_rules(OUTBOX.clone()).capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    let hook = claimed.iter().find(|d| d.destination == "hook").unwrap();
    let missing = DeliveryResult::NeedsData { missing: vec!["company".into()] };
    store.record_delivery(attempt(hook, missing, None)).await.unwrap();
    let waiting = store.list_deliveries(DeliveryStatus::NeedsData, None, None, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].last_error.as_deref(), Some("missing: company"));
    store
        .with_rules(OUTBOX.clone())
        .capture(vec![item("api", None, json!({"email": "ada@acme.com", "company": "Acme"}))])
        .await
        .unwrap();
    assert!(store.list_deliveries(DeliveryStatus::NeedsData, None, None, 10).await.unwrap().is_empty());
    let (again, _) = store.get_delivery(&hook.id).await.unwrap().unwrap();
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert_eq!(again.payload["company"], "Acme");
}

fn suppression_key() -> std::sync::Arc<leadflow_core::suppress::SuppressionKey> {
    std::sync::Arc::new(leadflow_core::suppress::SuppressionKey::new(*b"conformance suppression key!").unwrap())
}

fn hashes_of(email: &str) -> Vec<String> {
    let email = leadflow_core::Email::parse(email).unwrap();
    leadflow_core::suppress::Identity { email: Some(&email), phone: None }
        .hashes(&suppression_key(), &Default::default())
        .into_iter()
        .map(|h| h.value)
        .collect()
}

pub async fn the_suppression_list_is_looked_up_lifted_and_filled_by_an_erasure(store: &DynStore) {
    use leadflow_core::suppress::{Identity, Suppression};
    let key = suppression_key();
    let email = leadflow_core::Email::parse("grace@navy.mil").unwrap();
    let hashes = Identity { email: Some(&email), phone: Some("+12025550199") }.hashes(&key, &Default::default());
    let entries = Suppression::entries(hashes.clone(), &key, Some("ticket 9"), Some("dpo"), OffsetDateTime::now_utc());
    assert_eq!(store.suppress(entries.clone()).await.unwrap(), 3);
    assert_eq!(store.suppress(entries).await.unwrap(), 0, "a hash already there stays");
    let all: Vec<String> = hashes.iter().map(|h| h.value.clone()).collect();
    let mut asked = all.clone();
    asked.push("0".repeat(64));
    let mut found = store.suppressed(asked).await.unwrap();
    found.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(store.lift_suppressions(all.clone()).await.unwrap(), 3);
    assert!(store.suppressed(all).await.unwrap().is_empty());

    // An erasure suppresses its person under the rules' key, and drops their consent ledger.
    let rules = Rules { suppression: Some(key.clone()), ..Rules::default() };
    let with_key = store.with_rules(rules);
    let lead =
        match capture_one(&with_key, item("api", None, json!({"email": "ada@acme.com", "consent": {"granted": true}})))
            .await
        {
            Captured::Settled { lead, .. } => lead,
            other => panic!("{other:?}"),
        };
    assert_eq!(store.consent_ledger(lead.id).await.unwrap().len(), 1);
    let receipt = with_key.erase_lead(lead.id, "dpo".into(), None).await.unwrap().unwrap();
    let ledger = receipt.tables.iter().find(|t| t.table == "consent_ledger").unwrap();
    assert_eq!(ledger.deleted, 1);
    assert!(store.consent_ledger(lead.id).await.unwrap().is_empty());
    assert_eq!(store.suppressed(hashes_of("ADA@acme.com")).await.unwrap().len(), 2, "email and mailbox");
}

pub async fn consent_choices_are_ledgered_and_release_held_deliveries(store: &DynStore) {
    use leadflow_core::consent::{State, Status};
    use leadflow_store::{DeliveryResult, DeliveryStatus};
    let outbox = store.with_rules(OUTBOX.clone());
    let first = item("api", None, json!({"email": "ada@acme.com", "consent": {"purposes": {"phone": "granted"}}}));
    let lead = match outbox.capture(vec![first]).await.unwrap().remove(0) {
        Captured::Settled { lead, .. } => lead,
        other => panic!("{other:?}"),
    };
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    let hook = claimed.iter().find(|d| d.destination == "hook").unwrap_or_else(|| panic!("{claimed:?}"));
    let held = DeliveryResult::BlockedConsent { missing: vec!["sales_contact".into()] };
    store.record_delivery(attempt(hook, held, None)).await.unwrap();
    let waiting = store.list_deliveries(DeliveryStatus::BlockedConsent, None, None, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].last_error.as_deref(), Some("consent missing: sales_contact"));

    // A later submission's choice joins the ledger; the operator's is recorded with its actor.
    let later =
        item("api", None, json!({"email": "ada@acme.com", "consent": {"purpose": "profiling", "status": "denied"}}));
    outbox.capture(vec![later]).await.unwrap();
    let granted = State::new(Status::Granted);
    let updated =
        outbox.record_consent(lead.id, "sales_contact".into(), granted, Some("key:k1".into())).await.unwrap().unwrap();
    let purposes = &updated.consent.as_ref().unwrap().purposes;
    assert_eq!(purposes["sales_contact"].status, Status::Granted);
    assert_eq!(purposes["phone"].status, Status::Granted);
    assert_eq!(purposes["profiling"].status, Status::Denied);
    let ledger = store.consent_ledger(lead.id).await.unwrap();
    let seen: Vec<(&str, Status)> = ledger.iter().map(|(_, e)| (e.purpose.as_str(), e.state.status)).collect();
    assert_eq!(seen, [("phone", Status::Granted), ("profiling", Status::Denied), ("sales_contact", Status::Granted)]);
    assert_eq!(ledger[2].1.actor.as_deref(), Some("key:k1"));
    assert!(store.list_deliveries(DeliveryStatus::BlockedConsent, None, None, 10).await.unwrap().is_empty());
    let (again, _) = store.get_delivery(&hook.id).await.unwrap().unwrap();
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert_eq!(again.payload["consent"]["purposes"]["sales_contact"]["status"], "granted");
    let history = store.lead_history(lead.id).await.unwrap();
    assert!(history.iter().any(|h| matches!(&h.event, leadflow_core::pipeline::LeadEvent::ConsentChanged { purpose, .. } if purpose == "sales_contact")));

    // An older choice is history only.
    let old = State { at: Some(OffsetDateTime::UNIX_EPOCH), ..State::new(Status::Withdrawn) };
    let same = store.record_consent(lead.id, "sales_contact".into(), old, None).await.unwrap().unwrap();
    assert_eq!(same.version, updated.version);
    assert_eq!(store.consent_ledger(lead.id).await.unwrap().len(), 4);
    assert!(
        store.record_consent(LeadId::new(), "phone".into(), State::new(Status::Granted), None).await.unwrap().is_none()
    );
    store.erase_lead(lead.id, "dpo".into(), None).await.unwrap();
    let refused = store.record_consent(lead.id, "phone".into(), State::new(Status::Granted), None).await;
    assert!(matches!(refused, Err(leadflow_store::StoreError::Erased(_))), "{refused:?}");
}

pub async fn suppressed_submissions_stored_earlier_are_discarded(store: &DynStore) {
    let pending = RawSubmission::new(SourceName::parse("api").unwrap(), None, payload(json!({"email": "a@b.co"})));
    store.enqueue(vec![pending.clone()]).await.unwrap();
    let settled = item("api", None, json!({"email": "c@d.co"}));
    let settled_id = settled.submission.id;
    capture_one(store, settled).await;
    assert_eq!(store.discard_submissions(vec![pending.id, settled_id]).await.unwrap(), 1);
    assert!(store.pending_submissions(10).await.unwrap().is_empty());
    assert!(store.get_submission(settled_id).await.unwrap().is_some(), "a settled submission stays");
}

pub async fn audit_retention_keeps_the_newest_entry_so_the_chain_goes_on(store: &DynStore) {
    use leadflow_core::audit::{Action, NewEntry};
    use leadflow_core::privacy::retention::Kind;
    let entries = (0..3).map(|i| NewEntry::new("cli", Action::LeadErased, format!("lead-{i}"))).collect();
    let written = store.append_audit(entries).await.unwrap();
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert_eq!(store.expire(Kind::Audit, later).await.unwrap(), 2, "all are older, the newest stays");
    let left = store.audit_entries(0, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    let next = store.append_audit(vec![NewEntry::new("cli", Action::KeyCreated, "key:1")]).await.unwrap();
    assert_eq!((next[0].seq, &next[0].prev_hash), (4, &written[2].hash));
}

/// A whole-second instant: every backend stores it exactly.
fn period(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

pub async fn a_period_is_claimed_once(store: &DynStore) {
    let start = period(1_700_000_000);
    assert!(store.try_claim_period("batch:web", start).await.unwrap());
    assert!(!store.try_claim_period("batch:web", start).await.unwrap(), "the period is taken");
    assert!(store.try_claim_period("batch:web", period(1_700_000_060)).await.unwrap(), "the next period is free");
    assert!(store.try_claim_period("pull:linkedin", start).await.unwrap(), "another job's period is free");
}

pub async fn concurrent_claims_of_one_period_have_one_winner(store: &DynStore) {
    let start = period(1_700_000_000);
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.try_claim_period("batch:web", start).await })
        })
        .collect();
    let mut won = 0;
    for claim in claims {
        if claim.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one claim of a period wins");
}

pub async fn cursors_are_saved_and_replaced(store: &DynStore) {
    assert_eq!(store.get_cursor("pull:linkedin").await.unwrap(), None);
    store.set_cursor("pull:linkedin", "10").await.unwrap();
    assert_eq!(store.get_cursor("pull:linkedin").await.unwrap().as_deref(), Some("10"));
    store.set_cursor("pull:linkedin", "20").await.unwrap();
    assert_eq!(store.get_cursor("pull:linkedin").await.unwrap().as_deref(), Some("20"));
    assert_eq!(store.get_cursor("pull:other").await.unwrap(), None);
}

/// Subscribed to merges: a destination hears of every merge, however it was made.
static MERGES_OUT: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
    let crm = leadflow_core::deliver::DestinationConfig::new(
        "crm",
        "webhook",
        vec![leadflow_core::deliver::EventType::Merged],
    );
    Rules { outbox: std::sync::Arc::new(leadflow_core::deliver::Subscriptions::new(&[crm])), ..Rules::default() }
});

static ROUTED: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
    let toml = r#"
[routing]
fallback_owner = "queue"
priority_sources = ["demo", "chat"]

[[routing.reps]]
id = "ana"
daily_cap = 3

[[routing.reps]]
id = "ben"

[[routing.rules]]
name = "enterprise"
when = { field = "company", is = "Acme" }
strategy = "round_robin"
reps = ["ana", "ben"]
account_based = true

[[routing.rules]]
name = "everyone"
strategy = "round_robin"
reps = ["ana", "ben"]
sla_minutes = 30

[scoring]
mql_threshold = 20
gate = ["email"]
[[scoring.rules]]
name = "pricing"
when = { event = "page_view", url_matches = "*/pricing*" }
points = 10
"#;
    let routing = leadflow_core::scoring::routing::RoutingConfig::parse(toml).unwrap();
    let scoring = leadflow_core::scoring::ScoringConfig::parse(toml).unwrap();
    let slack = leadflow_core::deliver::DestinationConfig::new(
        "slack",
        "slack",
        vec![leadflow_core::deliver::EventType::Assigned],
    );
    Rules {
        routing: std::sync::Arc::new(routing),
        engagement: std::sync::Arc::new(leadflow_core::engagement::Engagement { scoring, ..Default::default() }),
        outbox: std::sync::Arc::new(leadflow_core::deliver::Subscriptions::new(&[slack])),
        ..Rules::default()
    }
});

/// The lead's assignments from its history: (owner, trigger, via, steps).
async fn assignments(store: &DynStore, id: LeadId) -> Vec<(String, String, String, Vec<String>)> {
    store
        .lead_history(id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            LeadEvent::Assigned { owner, trigger, via, steps, .. } => Some((owner, trigger, via, steps)),
            _ => None,
        })
        .collect()
}

async fn capture_routed(store: &DynStore, source: &str, v: Value) -> LeadId {
    let c = store.with_rules(ROUTED.clone()).capture(vec![item(source, None, v)]).await.unwrap().remove(0);
    settled(&c).1.id
}

pub async fn priority_sources_route_at_once_in_turn_and_explain_it(store: &DynStore) {
    let now = OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(capture_routed(store, "demo", json!({"email": format!("p{i}@x{i}.com")})).await);
    }
    let plain = capture_routed(store, "api", json!({"email": "plain@y.com"})).await;
    let routed = store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap();
    assert_eq!(routed.iter().map(|r| r.lead_id).collect::<Vec<_>>(), ids, "queued in order, the plain lead not at all");
    assert_eq!(routed.iter().map(|r| r.owner.as_str()).collect::<Vec<_>>(), ["ana", "ben", "ana"]);
    assert!(routed.iter().all(|r| r.trigger == "priority_source" && r.via == "round_robin"));
    assert!(store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap().is_empty(), "each lead once");
    let lead = store.get_lead(ids[1]).await.unwrap().unwrap();
    assert_eq!(lead.owner.as_deref(), Some("ben"));
    let history = assignments(store, ids[1]).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].3.first().map(String::as_str), Some("rule \"everyone\" matched"));
    assert_eq!(store.get_lead(plain).await.unwrap().unwrap().owner, None);
    // The assignment is an outbox event for the subscribed destination.
    let claimed = store.claim_deliveries(10, std::time::Duration::from_secs(60), now).await.unwrap();
    assert_eq!(claimed.iter().filter(|d| d.event_type == "lead.assigned").count(), 3);
    assert_eq!(claimed[1].payload["owner"], "ben", "the payload is the lead as assigned");
}

pub async fn the_handoff_routes_and_caps_and_accounts_are_kept(store: &DynStore) {
    let now = OffsetDateTime::now_utc();
    // Four leads of Acme reach MQL through events; the first founds the account's owner.
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(capture_routed(store, "api", json!({"email": format!("a{i}@acme.com"), "company": "Acme"})).await);
    }
    assert!(store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap().is_empty(), "not at the handoff yet");
    let who =
        |i: usize| leadflow_core::engagement::Identity { email: Some(format!("a{i}@acme.com")), ..Default::default() };
    let events: Vec<leadflow_store::NewEvent> =
        (0..8).map(|i| event("page_view", "https://x.com/pricing", who(i / 2), None)).collect();
    store.with_rules(ROUTED.clone()).record_events(events).await.unwrap();
    let routed = store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap();
    assert_eq!(routed.len(), 4);
    assert!(routed.iter().all(|r| r.trigger == "handoff" && r.rule.as_deref() == Some("enterprise")));
    let how: Vec<(&str, &str)> = routed.iter().map(|r| (r.owner.as_str(), r.via.as_str())).collect();
    assert_eq!(
        how,
        [("ana", "round_robin"), ("ana", "account_owner"), ("ana", "account_owner"), ("ben", "round_robin")],
        "the first lead's owner becomes the account's; past ana's cap of 3 a day the turn goes on"
    );
    assert_eq!(routed.iter().map(|r| r.lead_id).collect::<Vec<_>>(), ids);
    let account = store.get_lead(ids[0]).await.unwrap().unwrap().account_id.unwrap();
    assert_eq!(store.get_account(account).await.unwrap().unwrap().owner.as_deref(), Some("ana"));
    let steps = &assignments(store, ids[3]).await[0].3;
    assert!(steps.iter().any(|s| s == "ana: reached the daily cap of 3"), "{steps:?}");
}

pub async fn an_sla_reassigns_and_stops_once_the_lead_is_taken_up(store: &DynStore) {
    let now = OffsetDateTime::now_utc();
    let a = capture_routed(store, "chat", json!({"email": "sla1@x.com"})).await;
    let b = capture_routed(store, "chat", json!({"email": "sla2@x.com"})).await;
    let routed = store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap();
    assert_eq!(routed.len(), 2);
    let due = store.next_sla_due().await.unwrap().expect("timers run");
    assert!(due > now + time::Duration::minutes(29) && due <= now + time::Duration::minutes(31));
    assert!(
        store.with_rules(ROUTED.clone()).run_sla(10, now + time::Duration::minutes(29)).await.unwrap().is_empty(),
        "not yet"
    );
    // b is taken up (it leaves the stage it was assigned in); a is not.
    let reason = leadflow_core::scoring::LifecycleContract::default().disqualify_reasons()[0].clone();
    store
        .with_rules(ROUTED.clone())
        .transition_lead(b, "disqualified".into(), "ben".into(), Some(reason))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let late = now + time::Duration::minutes(31);
    let acted = store.with_rules(ROUTED.clone()).run_sla(10, late).await.unwrap();
    assert_eq!(acted.len(), 1, "{acted:?}");
    assert_eq!((acted[0].lead_id, acted[0].trigger.as_str()), (a, "sla"));
    let first = routed.iter().find(|r| r.lead_id == a).unwrap().owner.clone();
    assert_ne!(acted[0].owner, first, "someone else");
    let history = assignments(store, a).await;
    assert!(history[1].3[0].starts_with(&format!("{first} did not accept within 30 minutes")), "{history:?}");
    // The second owner does not accept either: nobody is left, the fallback queue takes it.
    let again = store.with_rules(ROUTED.clone()).run_sla(10, late + time::Duration::minutes(31)).await.unwrap();
    assert_eq!((again[0].owner.as_str(), again[0].via.as_str()), ("queue", "fallback"));
    assert_eq!(store.next_sla_due().await.unwrap(), None, "no timer on the fallback queue, none for b");

    // The CRM says the rep is working a lead: its timer stops, though the lead (routed
    // before its handoff) cannot move to the stage that status stands for.
    let c = capture_routed(store, "chat", json!({"email": "sla3@x.com"})).await;
    store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap();
    assert!(store.next_sla_due().await.unwrap().is_some());
    let who = leadflow_core::feedback::FeedbackIdentity { lead_id: Some(c), ..Default::default() };
    let working = feedback("crm", Some("w1"), who, Some(leadflow_core::feedback::FeedbackStatus::Working), None, now);
    store.with_rules(ROUTED.clone()).record_feedback(vec![working]).await.unwrap();
    assert_eq!(store.next_sla_due().await.unwrap(), None, "feedback stops the timer");
    assert!(store.with_rules(ROUTED.clone()).run_sla(10, late + time::Duration::hours(2)).await.unwrap().is_empty());
}

pub async fn a_higher_priority_touch_reroutes(store: &DynStore) {
    let now = OffsetDateTime::now_utc();
    let id = capture_routed(store, "chat", json!({"email": "renew@x.com"})).await;
    let first = store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap();
    assert_eq!(first[0].owner, "ana");
    capture_routed(store, "chat", json!({"email": "renew@x.com", "first_name": "Re"})).await;
    assert!(
        store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap().is_empty(),
        "the same source does not re-route"
    );
    capture_routed(store, "demo", json!({"email": "renew@x.com", "company": "Newco"})).await;
    let again = store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].lead_id, again[0].trigger.as_str(), again[0].owner.as_str()), (id, "renewed_touch", "ben"));
    capture_routed(store, "chat", json!({"email": "renew@x.com"})).await;
    assert!(store.with_rules(ROUTED.clone()).route_queued(10, now).await.unwrap().is_empty(), "a lower one does not");
}

pub async fn concurrent_routing_gives_each_lead_and_turn_once(store: &DynStore) {
    let now = OffsetDateTime::now_utc();
    let mut items = Vec::new();
    for i in 0..20 {
        items.push(item("demo", None, json!({"email": format!("c{i}@z{i}.com")})));
    }
    store.with_rules(ROUTED.clone()).capture(items).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.with_rules(ROUTED.clone()).route_queued(3, now).await.unwrap() }));
    }
    let mut routed = Vec::new();
    for t in tasks {
        routed.extend(t.await.unwrap());
    }
    loop {
        let more = store.with_rules(ROUTED.clone()).route_queued(5, now).await.unwrap();
        if more.is_empty() {
            break;
        }
        routed.extend(more);
    }
    let leads: HashSet<LeadId> = routed.iter().map(|r| r.lead_id).collect();
    assert_eq!((routed.len(), leads.len()), (20, 20), "each lead routed once");
    let ana = routed.iter().filter(|r| r.owner == "ana").count();
    let queue = routed.iter().filter(|r| r.owner == "queue").count();
    // ana's cap of 3 a day holds; ben takes every other turn.
    assert_eq!(ana, 3, "{routed:?}");
    assert_eq!(routed.iter().filter(|r| r.owner == "ben").count() + queue, 17);
    assert_eq!(queue, 0, "ben has no cap");
}

/// Every lead with an email is handed off (MQL) as it is created.
static HANDOFF: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
    leadflow_core::config::parse("[scoring]\nmql_threshold = 0\n").expect("a valid configuration").rules()
});

fn feedback(
    source: &str,
    event: Option<&str>,
    who: leadflow_core::feedback::FeedbackIdentity,
    status: Option<leadflow_core::feedback::FeedbackStatus>,
    reason: Option<&str>,
    at: OffsetDateTime,
) -> leadflow_core::feedback::Feedback {
    let contract = &HANDOFF.engagement.contract;
    leadflow_core::feedback::Feedback {
        id: leadflow_core::FeedbackId::new(),
        source: source.into(),
        event_id: event.map(str::to_owned),
        identity: who,
        status,
        crm_status: None,
        target: status.and_then(|s| leadflow_core::feedback::FeedbackRules::default().stage(s, contract)),
        reason: reason.map(str::to_owned),
        owner: None,
        ignored: None,
        occurred_at: at,
        received_at: OffsetDateTime::now_utc(),
        payload: json!({"as": "received"}),
    }
}

fn by_email(email: &str) -> leadflow_core::feedback::FeedbackIdentity {
    leadflow_core::feedback::FeedbackIdentity { email: Some(Email::parse(email).unwrap()), ..Default::default() }
}

fn by_id(id: LeadId) -> leadflow_core::feedback::FeedbackIdentity {
    leadflow_core::feedback::FeedbackIdentity { lead_id: Some(id), ..Default::default() }
}

pub async fn feedback_walks_leads_replays_and_keeps_order(store: &DynStore) {
    use leadflow_core::feedback::{FeedbackOutcome as O, FeedbackStatus as S};
    let c = store
        .with_rules(HANDOFF.clone())
        .capture(vec![item("api", None, json!({"email": "a@acme.com"}))])
        .await
        .unwrap();
    let a = settled(&c[0]).1.clone();
    assert_eq!(a.lifecycle_stage, "mql");
    let t0 = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let record = |f| async move { store.with_rules(HANDOFF.clone()).record_feedback(vec![f]).await.unwrap().remove(0) };

    let accepted = record(feedback("hs", Some("e1"), by_email("A@acme.com"), Some(S::Accepted), None, t0)).await;
    assert_eq!((accepted.outcome, accepted.stage.as_deref(), accepted.replayed), (O::Applied, Some("sal"), false));
    assert_eq!(accepted.lead_id, Some(a.id));
    let history = store.lead_history(a.id).await.unwrap();
    assert!(history.iter().any(|h| matches!(&h.event,
        LeadEvent::StageChanged { from, to, actor, .. } if from == "mql" && to == "sal" && actor.as_deref() == Some("feedback:hs"))));

    // The CRM retries: nothing happens again.
    let again = record(feedback("hs", Some("e1"), by_email("a@acme.com"), Some(S::Accepted), None, t0)).await;
    assert_eq!((again.outcome, again.replayed, again.id), (O::Applied, true, accepted.id));
    assert_eq!(store.lead_history(a.id).await.unwrap().len(), history.len());
    // The same event id from another source is another event.
    let other = record(feedback("sf", Some("e1"), by_id(a.id), Some(S::Working), None, t0)).await;
    assert_eq!((other.outcome, other.replayed), (O::Unchanged, false));

    let won =
        record(feedback("hs", Some("e2"), by_id(a.id), Some(S::Won), None, t0 + time::Duration::minutes(2))).await;
    assert_eq!((won.outcome, won.stage.as_deref()), (O::Applied, Some("customer")));
    let stages: Vec<String> = store
        .lead_history(a.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            LeadEvent::StageChanged { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(&stages[stages.len() - 4..], ["sal", "sql", "opportunity", "customer"]);

    // An older event arriving late does not undo the newer one.
    let late =
        record(feedback("hs", Some("e3"), by_id(a.id), Some(S::Converted), None, t0 + time::Duration::minutes(1)))
            .await;
    assert_eq!((late.outcome, late.stage.as_deref()), (O::Stale, Some("customer")));
    // A move the contract has no chain for is refused with the allowed moves.
    let back =
        record(feedback("hs", Some("e4"), by_id(a.id), Some(S::Accepted), None, t0 + time::Duration::minutes(3))).await;
    assert_eq!(back.outcome, O::Refused);
    assert_eq!(store.get_lead(a.id).await.unwrap().unwrap().lifecycle_stage, "customer");

    // A refusal is not final: the corrected resend with the same event id applies.
    let c = store
        .with_rules(HANDOFF.clone())
        .capture(vec![item("api", None, json!({"email": "b@acme.com"}))])
        .await
        .unwrap();
    let b = settled(&c[0]).1.id;
    let dq = |reason: Option<&str>| feedback("hs", Some("e5"), by_id(b), Some(S::Disqualified), reason, t0);
    let missing = record(dq(None)).await;
    assert_eq!((missing.outcome, missing.stage.as_deref()), (O::ReasonRequired, Some("mql")));
    let wrong = record(dq(Some("they hung up"))).await;
    assert_eq!(wrong.outcome, O::ReasonNotInPicklist);
    let fixed = record(dq(Some("no_budget"))).await;
    assert_eq!((fixed.outcome, fixed.stage.as_deref(), fixed.replayed), (O::Applied, Some("disqualified"), false));

    // Nobody to apply it to: kept, and a resend is a replay.
    let unknown = record(feedback("hs", Some("e6"), by_email("nobody@acme.com"), Some(S::Won), None, t0)).await;
    assert_eq!((unknown.outcome, unknown.lead_id), (O::Unmatched, None));
    assert!(record(feedback("hs", Some("e6"), by_email("nobody@acme.com"), Some(S::Won), None, t0)).await.replayed);
    let nothing = record(feedback("hs", None, by_id(b), None, None, t0)).await;
    assert_eq!(nothing.outcome, O::Ignored);

    let listed = store.list_feedback(Some("hs".into()), None, 100).await.unwrap();
    let outcomes: Vec<O> = listed.iter().map(|f| f.result.outcome).collect();
    assert_eq!(
        outcomes,
        [
            O::Applied,
            O::Applied,
            O::Stale,
            O::Refused,
            O::ReasonRequired,
            O::ReasonNotInPicklist,
            O::Applied,
            O::Unmatched,
            O::Ignored
        ]
    );
    assert_eq!(listed[0].feedback.payload["as"], "received");
    assert_eq!(listed[0].feedback.identity.email.as_ref().map(Email::as_str), Some("a@acme.com"));
    assert_eq!(listed[6].feedback.reason.as_deref(), Some("no_budget"));
    let page = store.list_feedback(Some("hs".into()), Some(listed[1].result.id), 2).await.unwrap();
    assert_eq!(page.iter().map(|f| f.result.outcome).collect::<Vec<_>>(), [O::Stale, O::Refused]);
    assert_eq!(store.list_feedback(None, None, 100).await.unwrap().len(), listed.len() + 1);
}

pub async fn feedback_finds_leads_by_crm_id_and_sets_owners(store: &DynStore) {
    use leadflow_core::feedback::{FeedbackIdentity, FeedbackOutcome as O, FeedbackStatus as S};
    let c = store
        .with_rules(HANDOFF.clone())
        .capture(vec![item("api", None, json!({"email": "c@acme.com"}))])
        .await
        .unwrap();
    let lead = settled(&c[0]).1.id;
    let crm = |id: &str| FeedbackIdentity {
        crm_destination: Some("hs".into()),
        crm_id: Some(id.into()),
        ..Default::default()
    };
    let t0 = OffsetDateTime::now_utc();
    let mut f = feedback("hs", Some("o1"), crm("901"), None, None, t0);
    f.owner = Some("42".into());
    assert_eq!(
        store.with_rules(HANDOFF.clone()).record_feedback(vec![f.clone()]).await.unwrap()[0].outcome,
        O::Unmatched
    );

    // The delivery that learns the record id applies what waited for it.
    assert_eq!(store.with_rules(HANDOFF.clone()).link_crm_record("hs", "901", lead).await.unwrap(), 1);
    assert_eq!(store.with_rules(HANDOFF.clone()).link_crm_record("hs", "901", lead).await.unwrap(), 0, "once");
    let listed = store.list_feedback(Some("hs".into()), None, 10).await.unwrap();
    assert_eq!((listed[0].result.outcome, listed[0].result.lead_id), (O::Applied, Some(lead)));
    f.id = leadflow_core::FeedbackId::new();
    f.event_id = Some("o2".into());
    let mut older = f.clone();
    let results = store.with_rules(HANDOFF.clone()).record_feedback(vec![f.clone()]).await.unwrap();
    assert_eq!((results[0].outcome, results[0].lead_id), (O::Unchanged, Some(lead)));
    let read = store.get_lead(lead).await.unwrap().unwrap();
    assert_eq!(read.owner.as_deref(), Some("42"));
    let history = store.lead_history(lead).await.unwrap();
    assert!(history.iter().any(|h| matches!(&h.event,
        LeadEvent::OwnerChanged { to, actor, .. } if to.as_deref() == Some("42") && actor.as_deref() == Some("feedback:hs"))));

    // An older reassignment is stale; a status change of the same time is not.
    older.id = leadflow_core::FeedbackId::new();
    older.event_id = Some("o3".into());
    older.owner = Some("7".into());
    older.occurred_at = t0 - time::Duration::minutes(1);
    let mut status = feedback("hs", Some("o4"), crm("901"), Some(S::Accepted), None, t0 - time::Duration::minutes(1));
    status.identity = crm("901");
    let results = store.with_rules(HANDOFF.clone()).record_feedback(vec![older, status]).await.unwrap();
    assert_eq!((results[0].outcome, results[1].outcome), (O::Stale, O::Applied));
    assert_eq!(store.get_lead(lead).await.unwrap().unwrap().owner.as_deref(), Some("42"));
    // Links are per destination.
    let elsewhere = FeedbackIdentity { crm_destination: Some("sf".into()), ..crm("901") };
    let r = store
        .with_rules(HANDOFF.clone())
        .record_feedback(vec![feedback("sf", None, elsewhere, Some(S::Won), None, t0)])
        .await;
    assert_eq!(r.unwrap()[0].outcome, O::Unmatched);
}

pub async fn disqualifications_are_reported_by_source_campaign_and_reason(store: &DynStore) {
    use leadflow_core::feedback::FeedbackStatus as S;
    let mk = |email: &str, campaign: &str| item("api", None, json!({"email": email, "utm_campaign": campaign}));
    let test_lead =
        item("api", None, json!({"email": "t@acme.com", "utm_campaign": "spring", "custom": {"test": true}}));
    let c = store
        .with_rules(HANDOFF.clone())
        .capture(vec![mk("d1@acme.com", "spring"), mk("d2@acme.com", "spring"), mk("d3@acme.com", "fall"), test_lead])
        .await
        .unwrap();
    let ids: Vec<LeadId> = c.iter().map(|c| settled(c).1.id).collect();
    let now = OffsetDateTime::now_utc();
    let items = vec![
        feedback("hs", None, by_id(ids[0]), Some(S::Disqualified), Some("no_budget"), now),
        feedback("hs", None, by_id(ids[1]), Some(S::Disqualified), Some("no_budget"), now),
        feedback("hs", None, by_id(ids[2]), Some(S::Disqualified), Some("competitor"), now),
        feedback("hs", None, by_id(ids[3]), Some(S::Disqualified), Some("no_budget"), now),
    ];
    store.with_rules(HANDOFF.clone()).record_feedback(items).await.unwrap();
    let (from, to) = (now - time::Duration::hours(1), now + time::Duration::hours(1));
    let rows = store.report_disqualifications(from, to, "disqualified").await.unwrap();
    let shown: Vec<(&str, Option<&str>, Option<&str>, u64)> =
        rows.iter().map(|r| (r.source.as_str(), r.campaign.as_deref(), r.reason.as_deref(), r.leads)).collect();
    assert_eq!(
        shown,
        [("api", Some("spring"), Some("no_budget"), 2), ("api", Some("fall"), Some("competitor"), 1)],
        "test leads are left out"
    );
    assert!(
        store.report_disqualifications(to, to + time::Duration::hours(1), "disqualified").await.unwrap().is_empty()
    );
}

pub async fn a_reason_sent_after_its_disqualification_completes_it(store: &DynStore) {
    use leadflow_core::feedback::{FeedbackOutcome as O, FeedbackStatus as S};
    let c = store
        .with_rules(HANDOFF.clone())
        .capture(vec![item("api", None, json!({"email": "r@acme.com"}))])
        .await
        .unwrap();
    let lead = settled(&c[0]).1.id;
    let t0 = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let record = |f| async move { store.with_rules(HANDOFF.clone()).record_feedback(vec![f]).await.unwrap().remove(0) };
    let reason_only = |event: &str, at| feedback("hs", Some(event), by_id(lead), None, Some("no_budget"), at);

    assert_eq!(record(reason_only("r0", t0)).await.outcome, O::Ignored, "nothing waits for a reason yet");
    let refused = record(feedback("hs", Some("r1"), by_id(lead), Some(S::Disqualified), None, t0)).await;
    assert_eq!(refused.outcome, O::ReasonRequired);
    // Another source's reason does not complete it.
    let elsewhere = feedback("sf", None, by_id(lead), None, Some("no_budget"), t0 + time::Duration::seconds(1));
    assert_eq!(record(elsewhere).await.outcome, O::Ignored);

    let completed = record(reason_only("r2", t0 + time::Duration::seconds(2))).await;
    assert_eq!((completed.outcome, completed.stage.as_deref()), (O::Applied, Some("disqualified")));
    let listed = store.list_feedback(Some("hs".into()), None, 10).await.unwrap();
    let first = listed.iter().find(|f| f.result.id == refused.id).unwrap();
    assert_eq!((first.result.outcome, first.feedback.reason.as_deref()), (O::Applied, Some("no_budget")));
    let history = store.lead_history(lead).await.unwrap();
    assert!(history.iter().any(|h| matches!(&h.event,
        LeadEvent::StageChanged { to, reason, .. } if to == "disqualified" && reason.as_deref() == Some("no_budget"))));
    // Completed once: a later reason finds nothing waiting.
    assert_eq!(record(reason_only("r3", t0 + time::Duration::seconds(3))).await.outcome, O::Ignored);
}

pub async fn an_sla_escalates_once(store: &DynStore) {
    let toml = "[routing]\npriority_sources = [\"demo\"]\n[[routing.reps]]\nid = \"ana\"\n[[routing.rules]]\nname = \"all\"\nstrategy = \"round_robin\"\nreps = [\"ana\"]\nsla_minutes = 5\nsla_action = \"escalate\"\nescalate_to = \"boss\"\n";
    let store = &store.with_rules(Rules {
        routing: std::sync::Arc::new(leadflow_core::scoring::routing::RoutingConfig::parse(toml).unwrap()),
        ..Rules::default()
    });
    let now = OffsetDateTime::now_utc();
    let c = store.capture(vec![item("demo", None, json!({"email": "esc@x.com"}))]).await.unwrap().remove(0);
    let id = settled(&c).1.id;
    assert_eq!(store.route_queued(10, now).await.unwrap()[0].owner, "ana");
    let acted = store.run_sla(10, now + time::Duration::minutes(6)).await.unwrap();
    assert_eq!((acted.len(), acted[0].owner.as_str(), acted[0].via.as_str()), (1, "boss", "escalation"));
    let history = assignments(store, id).await;
    assert_eq!(history[1].3, ["ana did not accept within 5 minutes: escalated to boss"]);
    assert_eq!(store.next_sla_due().await.unwrap(), None, "an escalation ends the timer");
    assert!(store.run_sla(10, now + time::Duration::hours(1)).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Erasure

/// Fuzzy matching on (so leads keep match records), and destinations of which two
/// hear of erasures.
static ERASURE: std::sync::LazyLock<Rules> = std::sync::LazyLock::new(|| {
    let rules = leadflow_core::config::parse(
        r#"
[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
events = ["created", "merged", "erased"]

[[destinations]]
name = "crm"
type = "hubspot"
token_env = "HUBSPOT_TOKEN"
events = ["created", "erased"]

[[destinations]]
name = "audit"
type = "webhook"
url = "http://127.0.0.1:9/audit"
secret_env = "AUDIT_SECRET"
events = ["created"]
"#,
    )
    .unwrap()
    .rules();
    Rules { matching: std::sync::Arc::new(Matching { fuzzy: true, ..Matching::default() }), ..rules }
});

const ERASED_EMAIL: &str = "ximena.quennell@quennell-consulting.co.uk";
/// What must be found nowhere once Ximena Quennell is erased: her names (also part of
/// her emails, ids and URLs) and her phone number, written either way.
const PERSONAL: [&str; 4] = ["ximena", "quennell", "79460958", "7946 0958"];

/// Whether the store seals personal data (a SQLite store holding encryption keys).
async fn encrypted(raw: &Raw) -> bool {
    stored_text(raw).await.iter().any(|(table, column, _)| table == "encryption_keys" && column == "wrapped")
}

/// The cells holding any of [`PERSONAL`], as `(table, column, value)`.
async fn personal_cells(raw: &Raw) -> Vec<(String, String, String)> {
    stored_text(raw)
        .await
        .into_iter()
        .filter(|(_, _, value)| {
            let value = value.to_lowercase();
            PERSONAL.iter().any(|p| value.contains(p))
        })
        .collect()
}

fn import_job(status: leadflow_store::ImportStatus) -> leadflow_store::ImportJob {
    let now = OffsetDateTime::now_utc();
    leadflow_store::ImportJob {
        id: leadflow_core::ImportId::new(),
        source: SourceName::api(),
        sheet: None,
        status,
        counts: leadflow_store::ImportCounts::default(),
        error: None,
        created_at: now,
        updated_at: now,
    }
}

/// One person reaches the store through every channel it has (forms, merges, a review,
/// events before and after they are known, a quarantined and a pending submission, CRM
/// feedback and links, deliveries, an import), beside someone else; erasing them leaves
/// no trace of them in any column of any table, while the tombstone, the other person and
/// the `lead.erased` deliveries remain.
pub async fn erase_leaves_no_trace_of_the_person_in_any_table(t: &TestStore) {
    use leadflow_core::engagement::Identity;
    use leadflow_core::feedback::{FeedbackIdentity, FeedbackStatus};
    use leadflow_store::{DeliveryAttempt, DeliveryResult, DeliveryStatus, EventOutcome, ImportStatus, ReviewStatus};
    let store = &t.store.with_rules(ERASURE.clone());
    let who = |email: &str| Identity { email: Some(email.into()), ..Identity::default() };

    // Before the person is a lead: an event that stays waiting (its address is written
    // unlike any lead's), one of their browser, a quarantined and a pending submission.
    let early = event(
        "page_view",
        "https://quennell-consulting.co.uk/",
        who(" XIMENA.Quennell@Quennell-Consulting.co.uk"),
        None,
    );
    let browser = Identity { anonymous_id: Some("vid-ximena".into()), ..Identity::default() };
    store.record_events(vec![early, event("page_view", "https://q.example/pricing", browser, None)]).await.unwrap();
    let raw = |v: Value| RawSubmission::new(SourceName::api(), None, payload(v));
    let invalid = vec![FieldError::new("phone", FieldErrorCode::Invalid, "not a phone number")];
    store
        .quarantine(vec![(raw(json!({"email": ERASED_EMAIL, "first_name": "Ximena", "phone": "call"})), invalid)])
        .await
        .unwrap();
    store.enqueue(vec![raw(json!({"email": ERASED_EMAIL, "last_name": "Quennell"}))]).await.unwrap();

    let first = item(
        "api",
        Some("signup-ximena"),
        json!({
            "email": ERASED_EMAIL, "first_name": "Ximena", "last_name": "Quennell", "phone": "+44 20 7946 0958",
            "company": "Quennell Consulting", "street": "12 Quennell Mews", "city": "London", "country": "GB",
            "external_id": "crm-quennell-7", "utm_source": "newsletter", "utm_campaign": "spring",
            "utm_term": "ximena quennell",
            "referrer_url": "https://mail.example/read?to=ximena.quennell@quennell-consulting.co.uk",
            "landing_page_url": "https://quennell-consulting.co.uk/?gclid=ximena-click",
            "custom": {"anonymous_id": "vid-ximena", "gclid": "ximena-click", "note": "Ximena prefers tea"},
            "consent": {"granted": true, "source": "form", "policy_version": "v3"},
        }),
    );
    let survivor = settled(&store.capture(vec![first]).await.unwrap()[0]).1.clone();
    let again = item("api", None, json!({"email": ERASED_EMAIL, "job_title": "Founder", "phone": "020 7946 0958"}));
    assert_eq!(settled(&store.capture(vec![again]).await.unwrap()[0]).0, Outcome::Merged);
    let work = json!({"email": "xq@quennell-consulting.co.uk", "first_name": "Ximena", "last_name": "Quennell"});
    let work = settled(&store.capture(vec![item("api", None, work)]).await.unwrap()[0]).1.clone();
    // Queued at capture (one company, two mailboxes), or else by hand.
    store.add_review(work.id, survivor.id, 0.8, Vec::new()).await.unwrap();
    let review = store.list_reviews(None, 10).await.unwrap().remove(0);
    assert_eq!((review.lead_id, review.candidate_id), (work.id, survivor.id));
    store.decide_review(review.id, ReviewStatus::Merged).await.unwrap().expect("decided");

    let bob = item("api", None, json!({"email": "bob@acme.com", "first_name": "Bob", "company": "Acme"}));
    let bob = settled(&store.capture(vec![bob]).await.unwrap()[0]).1.clone();
    assert!(store.add_review(bob.id, survivor.id, 0.4, Vec::new()).await.unwrap());

    let mut later = event(
        "demo_request",
        "https://q.example/demo?email=ximena.quennell@quennell-consulting.co.uk",
        who(ERASED_EMAIL),
        Some("demo-ximena"),
    );
    later.event.properties.insert("name".into(), json!("Ximena Quennell"));
    let bobs = event("page_view", "https://acme.com/", who("bob@acme.com"), None);
    let out = store.record_events(vec![later, bobs]).await.unwrap();
    assert!(matches!(out[0], EventOutcome::Attached { lead_id, .. } if lead_id == survivor.id));

    let t0 = OffsetDateTime::now_utc();
    let record =
        FeedbackIdentity { crm_destination: Some("crm".into()), crm_id: Some("hs-777".into()), ..Default::default() };
    let mut from_crm = feedback("crm", Some("hs-e1"), record, Some(FeedbackStatus::Working), None, t0);
    from_crm.payload = json!({"objectId": "hs-777", "email": ERASED_EMAIL, "firstname": "Ximena"});
    let mut by_mail = feedback("generic", Some("g-1"), by_email(ERASED_EMAIL), None, None, t0);
    by_mail.owner = Some("rep-9".into());
    by_mail.payload = json!({"email": ERASED_EMAIL, "note": "Ximena asked for a call"});
    store.record_feedback(vec![from_crm, by_mail]).await.unwrap();
    store.link_crm_record("crm", "hs-777", survivor.id).await.unwrap();

    let import = import_job(ImportStatus::Queued);
    store
        .create_import(import.clone(), format!("email,first_name\n{ERASED_EMAIL},Ximena\n").into_bytes())
        .await
        .unwrap();
    let report = format!(
        "row,external_id,outcome,lead_id,errors\n2,crm-quennell-7,created,{},\n3,bob-1,created,{},\n",
        survivor.id, bob.id
    );
    store
        .update_import(
            leadflow_store::ImportJob { status: ImportStatus::Done, ..import.clone() },
            Some(report.into_bytes()),
        )
        .await
        .unwrap();

    // One delivery made (the CRM's record is linked), one dead letter, the rest in flight.
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_deliveries(100, LEASE, now).await.unwrap();
    let pick = |dest: &str| claimed.iter().find(|d| d.destination == dest && d.lead_id == survivor.id).unwrap().clone();
    let (delivered, dead) = (pick("crm"), pick("audit"));
    let tried = |d: &leadflow_store::OutboxDelivery, result, status| DeliveryAttempt {
        delivery_id: d.id.clone(),
        result,
        at: now,
        status: Some(status),
        error: Some(format!("HTTP {status}: {ERASED_EMAIL}")),
        request: Some(format!("POST /x\n\n{{\"email\":\"{ERASED_EMAIL}\"}}")),
        response: Some(r#"{"results":[{"id":"hs-777","properties":{"firstname":"Ximena"}}]}"#.into()),
        duration_ms: 40,
    };
    store.record_delivery(tried(&delivered, DeliveryResult::Delivered, 200)).await.unwrap();
    store.record_delivery(tried(&dead, DeliveryResult::Dead, 400)).await.unwrap();
    let before = store.get_lead(survivor.id).await.unwrap().unwrap();
    assert!(before.account_id.is_some(), "the person's company founded an account");
    // The scan below sees the person everywhere they were put.
    let holding: std::collections::BTreeSet<String> =
        personal_cells(&t.raw).await.into_iter().map(|(table, _, _)| table).collect();
    let everywhere = [
        "leads",
        "submissions",
        "lead_history",
        "lead_keys",
        "lead_records",
        "lead_visitors",
        "events",
        "touchpoints",
        "feedback",
        "outbox",
        "delivery_attempts",
        "accounts",
        "account_keys",
        "imports",
        "consent_ledger",
    ];
    // Encrypted at rest, only what is kept in clear by design shows: the sender's
    // idempotency keys and visitor ids, and the company's account.
    let in_clear = ["submissions", "lead_visitors", "events", "accounts", "account_keys"];
    let expected = if encrypted(&t.raw).await { &in_clear[..] } else { &everywhere[..] };
    assert_eq!(holding.iter().map(String::as_str).collect::<Vec<_>>(), {
        let mut sorted = expected.to_vec();
        sorted.sort_unstable();
        sorted
    });

    let receipt = store
        .erase_lead(work.id, "privacy-team".into(), Some("ticket 4711".into()))
        .await
        .unwrap()
        .expect("the lead exists");
    assert_eq!((receipt.lead_id, receipt.already_erased), (survivor.id, false));
    assert_eq!(receipt.merged_ids, [work.id]);
    assert_eq!(receipt.destinations, ["hook", "crm"], "audit is not subscribed to erased");
    let count = |table: &str| receipt.tables.iter().find(|t| t.table == table).map(|t| (t.scrubbed, t.deleted));
    assert_eq!(count("leads"), Some((2, 0)));
    assert_eq!(count("submissions"), Some((3, 2)), "settled ones kept empty; the quarantined and pending deleted");
    assert_eq!(count("events").map(|c| c.1), Some(3), "two attached, one still waiting");
    assert_eq!(count("duplicate_reviews"), Some((0, 2)));
    assert_eq!(count("accounts"), Some((0, 1)));
    assert_eq!(count("imports"), Some((1, 0)));
    assert_eq!(count("feedback"), Some((2, 0)));

    let leftovers = personal_cells(&t.raw).await;
    assert!(leftovers.is_empty(), "personal data left after the erasure: {leftovers:#?}");

    // The tombstone answers for both ids, and keeps what reports need.
    let tomb = store.get_lead(work.id).await.unwrap().expect("a tombstone");
    assert_eq!(tomb.id, survivor.id, "followed through the merge");
    assert!(tomb.erased_at.is_some());
    assert_eq!(
        (tomb.created_at, &tomb.lifecycle_stage, tomb.score, &tomb.owner),
        (before.created_at, &before.lifecycle_stage, before.score, &before.owner)
    );
    assert_eq!(tomb.fields, leadflow_core::LeadFields::default());
    assert_eq!(tomb.attribution.original.utm_campaign.as_deref(), Some("spring"));
    assert_eq!(store.list_leads(None, 10).await.unwrap().iter().map(|l| l.id).collect::<Vec<_>>(), [bob.id]);
    assert_eq!(store.count_leads().await.unwrap(), 2, "reports still count the tombstone");
    let hour = time::Duration::HOUR;
    let sources = store.report_sources(t0 - hour, t0 + hour, false).await.unwrap();
    assert!(sources.iter().any(|s| s.campaign.as_deref() == Some("spring") && s.leads == 1), "{sources:?}");
    let history = store.lead_history(survivor.id).await.unwrap();
    assert!(matches!(&history.last().unwrap().event,
        LeadEvent::Erased { actor: Some(a), reason: Some(r), merged, crm_records, .. }
            if a == "privacy-team" && r == "ticket 4711" && merged == &[work.id] && crm_records.len() == 1));
    assert!(
        matches!(&history.last().unwrap().event,
        LeadEvent::Erased { delivered_to, .. } if delivered_to == &["audit", "crm", "hook"]),
        "delivered, dead after a try, in flight"
    );
    assert!(history.iter().any(|h| matches!(h.event, LeadEvent::Merged { before: None, .. })));
    assert!(history.iter().any(|h| matches!(h.event, LeadEvent::Absorbed { before: None, .. })));
    assert!(store.get_account(before.account_id.unwrap()).await.unwrap().is_none(), "only the person was in it");
    let bob_now = store.get_lead(bob.id).await.unwrap().unwrap();
    assert_eq!(bob_now.fields.email.as_ref().map(Email::as_str), Some("bob@acme.com"));
    assert!(store.list_reviews(None, 10).await.unwrap().is_empty());

    // One `lead.erased` per subscribed destination, after the tries in flight, with ids
    // only; nothing else of the person will be delivered, and what was delivered is
    // remembered without what it carried.
    let pending = store.list_deliveries(DeliveryStatus::Pending, None, None, 100).await.unwrap();
    let mine: Vec<&leadflow_store::OutboxDelivery> =
        pending.iter().filter(|d| d.lead_id == survivor.id || d.lead_id == work.id).collect();
    let mut erased: Vec<&str> = mine.iter().map(|d| d.destination.as_str()).collect();
    erased.sort_unstable();
    assert_eq!(erased, ["crm", "hook"]);
    for d in &mine {
        assert_eq!((d.event_type.as_str(), d.lead_id), ("lead.erased", survivor.id));
        assert_eq!(d.payload["id"], survivor.id.to_string());
        assert_eq!(d.payload["merged_ids"], json!([work.id]));
        assert_eq!(d.payload["crm_records"], json!([{"destination": "crm", "crm_id": "hs-777"}]));
    }
    let (kept, tries) = store.get_delivery(&delivered.id).await.unwrap().unwrap();
    assert_eq!((kept.status, &kept.payload), (DeliveryStatus::Delivered, &json!({"id": survivor.id, "erased": true})));
    assert!(tries.iter().all(|t| t.request.is_none() && t.response.is_none() && t.error.is_none()));
    assert!(store.get_delivery(&dead.id).await.unwrap().is_none(), "an undelivered event is cancelled");
    let soon = store.claim_deliveries(100, LEASE, OffsetDateTime::now_utc()).await.unwrap();
    assert!(soon.iter().all(|d| d.event_type != "lead.erased"), "not before the tries in flight end");

    // A record made by a try that was in flight is deleted too; nothing is applied to the
    // tombstone.
    assert_eq!(store.link_crm_record("crm", "hs-888", work.id).await.unwrap(), 0);
    let after_lease = store.claim_deliveries(100, LEASE, now + LEASE + time::Duration::seconds(5)).await.unwrap();
    let to_crm = after_lease.iter().find(|d| d.event_type == "lead.erased" && d.destination == "crm").unwrap();
    assert_eq!(
        to_crm.payload["crm_records"],
        json!([{"destination": "crm", "crm_id": "hs-777"}, {"destination": "crm", "crm_id": "hs-888"}])
    );
    assert_eq!(after_lease.iter().filter(|d| d.event_type == "lead.erased").count(), 2);

    // The person coming back is someone new: no match with the tombstone, no replay of
    // the old idempotency key.
    let back = item("api", Some("signup-ximena"), json!({"email": ERASED_EMAIL, "first_name": "Ximena"}));
    let back = store.capture(vec![back]).await.unwrap();
    let (outcome, lead, replayed) = settled(&back[0]);
    assert_eq!((outcome, replayed), (Outcome::Created, false));
    assert!(lead.id != survivor.id && lead.id != work.id);
}

pub async fn an_erased_lead_is_a_tombstone_that_refuses_writes(store: &DynStore) {
    use leadflow_core::engagement::Identity;
    use leadflow_core::feedback::{FeedbackOutcome, FeedbackStatus};
    use leadflow_store::{EventOutcome, StoreError};
    let store = &store.with_rules(ERASURE.clone());
    let first = item("api", None, json!({"email": "ada@acme.com", "first_name": "Ada"}));
    let c = store.capture(vec![first]).await.unwrap();
    let (ada, submission) = match &c[0] {
        Captured::Settled { lead, submission_id, .. } => (lead.id, *submission_id),
        other => panic!("{other:?}"),
    };
    let other =
        settled(&store.capture(vec![item("api", None, json!({"email": "a.l@acme.com"}))]).await.unwrap()[0]).1.id;
    let explanation = leadflow_core::resolve::Explanation {
        rule: leadflow_core::resolve::MatchRule::Reviewed,
        score: Some(0.9),
        evidence: Vec::new(),
    };
    assert!(store.merge_leads(ada, other, explanation.clone()).await.unwrap());
    let score = store.get_lead(ada).await.unwrap().unwrap().score;
    store.erase_lead(ada, "dpo".into(), None).await.unwrap().unwrap();

    let erased = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Erased(id)) if id == ada);
    let moved = store.transition_lead(ada, "engaged".into(), "rep".into(), None).await;
    assert!(erased(moved.map(|_| ())), "no transition");
    assert!(erased(store.assign_lead(ada, Some("rep-1".into()), "rep".into()).await.map(|_| ())));
    let unmerged = store.with_rules(EXACT.clone()).unmerge(other).await;
    assert!(matches!(unmerged, Err(StoreError::Erased(id)) if id == other), "the state to restore is gone");
    let again = item("api", None, json!({"email": "ada@acme.com", "first_name": "Ada"}));
    assert!(erased(store.split_submission(ada, submission, again.candidate).await.map(|_| ())));
    let newcomer =
        settled(&store.capture(vec![item("api", None, json!({"email": "b@acme.com"}))]).await.unwrap()[0]).1.id;
    assert!(!store.merge_leads(newcomer, ada, explanation.clone()).await.unwrap());
    assert!(!store.merge_leads(ada, newcomer, explanation).await.unwrap());
    assert_eq!(store.rescore_lead(ada).await.unwrap().unwrap().score, score, "the score stays");

    let named = Identity { lead_id: Some(other), ..Identity::default() };
    let out = store.record_events(vec![event("page_view", "https://acme.com/", named, None)]).await.unwrap();
    assert_eq!(out, [EventOutcome::Erased { lead_id: ada }]);
    assert!(store.lead_events(ada, 10).await.unwrap().is_empty(), "not recorded");

    let mut fb = feedback("crm", Some("e1"), by_id(other), Some(FeedbackStatus::Won), None, OffsetDateTime::now_utc());
    fb.payload = json!({"email": "ada@acme.com"});
    let result = store.record_feedback(vec![fb]).await.unwrap().remove(0);
    assert_eq!((result.outcome, result.lead_id), (FeedbackOutcome::Erased, Some(ada)));
    let kept = store.list_feedback(Some("crm".into()), None, 10).await.unwrap().remove(0);
    assert_eq!(kept.result.outcome, FeedbackOutcome::Erased);
    assert_eq!((kept.feedback.payload.clone(), kept.feedback.identity.email.clone()), (Value::Null, None));
    let tomb = store.get_lead(ada).await.unwrap().unwrap();
    assert_eq!((tomb.lifecycle_stage.as_str(), tomb.erased_at.is_some()), ("new", true), "nothing applied");
}

pub async fn erase_is_idempotent_and_waits_for_unfinished_imports(store: &DynStore) {
    use leadflow_store::{DeliveryStatus, ImportStatus, StoreError};
    let store = &store.with_rules(ERASURE.clone());
    let c = store.capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    let ada = settled(&c[0]).1.id;
    assert!(store.erase_lead(LeadId::new(), "dpo".into(), None).await.unwrap().is_none());

    let import = import_job(ImportStatus::Running);
    store.create_import(import.clone(), b"email\nada@acme.com\n".to_vec()).await.unwrap();
    let refused = store.erase_lead(ada, "dpo".into(), None).await;
    assert!(matches!(&refused, Err(StoreError::Conflict(why)) if why.contains(&import.id.to_string())), "{refused:?}");
    assert!(store.get_lead(ada).await.unwrap().unwrap().erased_at.is_none(), "nothing was done");
    store
        .update_import(leadflow_store::ImportJob { status: ImportStatus::Done, ..import }, Some(Vec::new()))
        .await
        .unwrap();

    let first = store.erase_lead(ada, "dpo".into(), Some("request 1".into())).await.unwrap().unwrap();
    assert!(!first.already_erased);
    let second = store.erase_lead(ada, "dpo".into(), Some("request 2".into())).await.unwrap().unwrap();
    assert!(second.already_erased);
    assert_eq!((second.lead_id, second.erased_at), (ada, first.erased_at));
    assert!(second.tables.is_empty() && second.destinations.is_empty(), "nothing more done");
    let history = store.lead_history(ada).await.unwrap();
    assert_eq!(history.iter().filter(|h| matches!(h.event, LeadEvent::Erased { .. })).count(), 1);
    let pending = store.list_deliveries(DeliveryStatus::Pending, None, None, 100).await.unwrap();
    assert_eq!(pending.iter().filter(|d| d.event_type == "lead.erased").count(), 2, "one per destination, once");
}

// ---------------------------------------------------------------------------------------
// Health aggregates

/// The week's sums of `name`, read back as the health report reads them.
async fn health_week(store: &DynStore, scope: leadflow_core::health::Scope, name: &str) -> leadflow_core::health::Sums {
    use leadflow_core::health::{Query, Series, WEEK};
    let now = OffsetDateTime::now_utc();
    let cells = store.health_cells(Query::windows(now, &[WEEK]).only(scope, name)).await.unwrap();
    Series::new(cells).window(scope, name, now, WEEK)
}

pub async fn capture_counts_each_submission_once_in_its_transaction(store: &DynStore) {
    use leadflow_core::health::Scope;
    let web = SourceName::parse("web").unwrap();
    let on_web = |key: Option<&str>, v: Value| {
        let mut it = item("api", key, v);
        it.submission.source = web.clone();
        it
    };
    capture_one(store, on_web(Some("k1"), json!({"email": "ada@example.com"}))).await;
    capture_one(store, on_web(None, json!({"email": "ada@example.com", "company": "Acme"}))).await;
    // A provider's retry is answered from the inbox: not received again.
    capture_one(store, on_web(Some("k1"), json!({"email": "ada@example.com"}))).await;
    // Waited in the inbox (a provider fetch), then settled: received once.
    let waiting = on_web(None, json!({"email": "grace@example.com"}));
    store.enqueue(vec![waiting.submission.clone()]).await.unwrap();
    assert_eq!(store.health_backlogs(vec![], vec!["web".into()]).await.unwrap().pending.get("web"), Some(&1));
    capture_one(store, waiting).await;
    // Quarantined: counted by reason; spam apart.
    let broken = RawSubmission::new(web.clone(), None, payload(json!({"email": "broken"})));
    let spam = RawSubmission::new(web.clone(), None, payload(json!({"email": "bot@example.com"})));
    let spam_reason = vec![FieldError::new("", FieldErrorCode::Spam, "honeypot")];
    store.quarantine(vec![(broken, invalid_email()), (spam, spam_reason)]).await.unwrap();
    // Moved from the inbox to the quarantine: counted when it enters, once.
    let rejected = RawSubmission::new(web.clone(), None, payload(json!({"email": "nope"})));
    store.enqueue(vec![rejected.clone()]).await.unwrap();
    store.reject_submission(rejected.id, invalid_email()).await.unwrap();
    store.reject_submission(rejected.id, invalid_email()).await.unwrap();

    let week = health_week(store, Scope::Source, "web").await;
    let got: Vec<u64> = ["received", "created", "merged", "quarantined", "quarantined.invalid_email", "spam"]
        .iter()
        .map(|m| week.get(m))
        .collect();
    assert_eq!(got, [6, 2, 1, 2, 2, 1]);
    assert_eq!(health_week(store, Scope::Source, "api").await.get("received"), 0);
    let seen = store.health_seen().await.unwrap();
    let web_seen = seen.iter().find(|s| s.name == "web").expect("web was seen");
    assert!(web_seen.first_at <= web_seen.last_at);
    let backlogs = store.health_backlogs(vec![], vec!["web".into(), "api".into()]).await.unwrap();
    assert_eq!((backlogs.quarantine.get("web"), backlogs.pending.get("web")), (Some(&3), None));
    // Counts made outside any other write add up too.
    let mut refused = leadflow_core::health::Tally::default();
    refused.add(Scope::Source, "web", "refused", OffsetDateTime::now_utc(), 2);
    store.count(refused).await.unwrap();
    assert_eq!(health_week(store, Scope::Source, "web").await.get("refused"), 2);

    // One metric read further back: only it, and no cell twice beside the windows.
    use leadflow_core::health::{HOUR, Level, Query};
    let now = OffsetDateTime::now_utc();
    let day_ago = Level::Hour.bucket(now) - 86_400;
    let query = Query::windows(now, &[HOUR]).with_since(Level::Hour, Level::Hour.bucket(now) - 3_600);
    let query = query.with_metric_since(Level::Hour, day_ago, Scope::Source, "received");
    let cells = store.health_cells(query.clone()).await.unwrap();
    let hours: Vec<&leadflow_core::health::Cell> = cells.iter().filter(|c| c.level == Level::Hour).collect();
    assert!(hours.iter().any(|c| c.metric == "created"), "the window's hour reads every metric");
    let received: u64 = hours.iter().filter(|c| c.metric == "received" && c.name == "web").map(|c| c.value).sum();
    assert_eq!(received, 6, "read once, by the window or by the history");
    let only_api = store.health_cells(query.only(Scope::Source, "api")).await.unwrap();
    assert!(only_api.iter().all(|c| c.name == "api"));
}

pub async fn delivery_tries_count_by_destination_class_and_latency(store: &DynStore) {
    use leadflow_core::health::Scope;
    use leadflow_store::DeliveryResult;
    store.with_rules(OUTBOX.clone()).capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let before = store.health_backlogs(vec!["hook".into(), "crm".into()], vec![]).await.unwrap();
    assert_eq!(before.destinations.get("hook").map(|b| b.pending), Some(1));
    assert!(before.destinations["hook"].oldest_pending_at.is_some());
    let claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    let hook = claimed.iter().find(|d| d.destination == "hook").unwrap().clone();
    let crm = claimed.iter().find(|d| d.destination == "crm").unwrap().clone();
    let mut timeout = attempt(&hook, DeliveryResult::Retry { at: now }, None);
    timeout.error = Some("timed out: deadline has elapsed".into());
    store.record_delivery(timeout).await.unwrap();
    let again = store.claim_deliveries(10, LEASE, now).await.unwrap();
    store.record_delivery(attempt(&again[0], DeliveryResult::Delivered, Some(200))).await.unwrap();
    store.record_delivery(attempt(&crm, DeliveryResult::Dead, Some(401))).await.unwrap();
    // A deferral is no try.
    store.record_delivery(attempt(&crm, DeliveryResult::Deferred { at: now }, None)).await.unwrap();

    let hook_week = health_week(store, Scope::Destination, "hook").await;
    let got: Vec<u64> =
        ["attempts", "delivered", "failed", "failed.timeout", "dead"].iter().map(|m| hook_week.get(m)).collect();
    assert_eq!(got, [2, 1, 1, 1, 0]);
    assert_eq!(hook_week.error_rate(), Some(0.5));
    assert!(hook_week.latency(0.5).is_some(), "a delivered try has a latency");
    let crm_week = health_week(store, Scope::Destination, "crm").await;
    let got: Vec<u64> = ["attempts", "failed.auth", "dead"].iter().map(|m| crm_week.get(m)).collect();
    assert_eq!(got, [1, 1, 1]);
    // The lead's deliveries, each with its tries.
    let of_lead = store.lead_deliveries(hook.lead_id, 10).await.unwrap();
    let tries: Vec<(&str, usize)> = of_lead.iter().map(|(d, t)| (d.destination.as_str(), t.len())).collect();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(tries.contains(&("hook", 2)) && tries.contains(&("crm", 1)), "{tries:?}");
    let after = store.health_backlogs(vec!["hook".into(), "crm".into()], vec![]).await.unwrap();
    assert_eq!(after.destinations.get("hook").map(|b| b.pending).unwrap_or(0), 0);
    assert_eq!(after.destinations.get("crm").map(|b| b.dead), Some(1));
}

pub async fn old_health_buckets_are_pruned(store: &DynStore) {
    use leadflow_core::health::{Level, Query, Scope, Tally};
    let now = OffsetDateTime::now_utc();
    let mut t = Tally::default();
    t.add(Scope::Source, "web", "received", now - time::Duration::days(3), 1);
    t.add(Scope::Source, "web", "received", now, 1);
    store.count(t).await.unwrap();
    let all = Query { since: Level::ALL.iter().map(|l| (*l, 0)).collect(), ..Query::default() };
    let minutes = |cells: &[leadflow_core::health::Cell]| cells.iter().filter(|c| c.level == Level::Minute).count();
    assert_eq!(minutes(&store.health_cells(all.clone()).await.unwrap()), 2);
    assert!(store.prune_health(now).await.unwrap() >= 1);
    let kept = store.health_cells(all).await.unwrap();
    assert_eq!(minutes(&kept), 1, "minutes are kept two days");
    assert_eq!(kept.iter().filter(|c| c.level == Level::Day).count(), 2, "days are kept");
}

// ---------------------------------------------------------------------------------------
// Alert episodes

pub async fn alert_episodes_keep_acknowledgements_and_queue_each_notification_once(store: &DynStore) {
    use leadflow_core::health::Scope;
    use leadflow_core::health::alerts::{self, AlertConfig, Condition, Kind, RuleKey, State};
    use leadflow_store::NotificationResult;
    let config = leadflow_core::config::parse(
        "[[destinations]]\nname = \"crm\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"S\"\n\n\
         [[alerts.channels]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/a\"\nsecret_env = \"S\"\n",
    )
    .unwrap();
    let config: &AlertConfig = &config.alerts;
    let condition = |holds: bool| Condition {
        rule: RuleKey("error_rate#0".into()),
        kind: Kind::ErrorRate,
        scope: (Scope::Destination, "crm".into()),
        holds,
        value: 0.5,
        threshold: 0.05,
        message: "half the tries failed".into(),
    };
    let t0 = OffsetDateTime::now_utc();
    let opened = alerts::step(&[], &[condition(true)], &[], config, t0);
    assert_eq!((opened.opened.len(), opened.notifications.len()), (1, 1));
    store.apply_alerts(opened.clone()).await.unwrap();
    // Written twice (two instances, a retried transaction): still one episode, one
    // notification.
    store.apply_alerts(opened.clone()).await.unwrap();
    let state = store.alert_state().await.unwrap();
    assert_eq!(state.open.len(), 1);
    let id = state.open[0].id.clone();
    assert_eq!(store.episode_notifications(&id).await.unwrap().len(), 1);

    // A person acknowledges while the evaluator holds the episode as it read it before.
    let stale = state.open.clone();
    let acked = store.acknowledge_episode(&id, "oncall", t0).await.unwrap().unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("oncall"));
    let held = alerts::step(&stale, &[condition(true)], &[], config, t0 + time::Duration::seconds(1));
    store.apply_alerts(held).await.unwrap();
    let again = store.get_episode(&id).await.unwrap().unwrap();
    assert_eq!(again.acknowledged_by.as_deref(), Some("oncall"), "the evaluator never overwrites it");

    // Resolved: one more notification; listed by state.
    let later = t0 + time::Duration::hours(1);
    let open = store.alert_state().await.unwrap().open;
    let resolved = alerts::step(&open, &[condition(false)], &[], config, later);
    assert_eq!(resolved.updated[0].state, State::Resolved);
    store.apply_alerts(resolved).await.unwrap();
    assert!(store.alert_state().await.unwrap().open.is_empty());
    assert_eq!(store.list_episodes(Some(State::Resolved), 10).await.unwrap().len(), 1);
    assert!(store.list_episodes(Some(State::Firing), 10).await.unwrap().is_empty());

    // The outbox: claimed with a lease, retried, sent.
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_notifications(10, LEASE, now).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(store.claim_notifications(10, LEASE, now).await.unwrap().is_empty(), "leased");
    let retry = NotificationResult::Retry { at: now, error: "HTTP 503".into() };
    store.record_notification(&claimed[0].id, retry, now).await.unwrap();
    store.record_notification(&claimed[1].id, NotificationResult::Sent, now).await.unwrap();
    let due = store.claim_notifications(10, LEASE, now).await.unwrap();
    assert_eq!((due.len(), due[0].attempts), (1, 1));
    let kinds: Vec<String> = store
        .episode_notifications(&id)
        .await
        .unwrap()
        .iter()
        .map(|n| n.body["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["alert.firing", "alert.resolved"]);

    // Silences are read back until they end.
    store.silence("destination:crm", now + time::Duration::hours(1), "oncall").await.unwrap();
    store.silence("source:*", now - time::Duration::seconds(1), "oncall").await.unwrap();
    let silences = store.alert_state().await.unwrap().silences;
    assert_eq!(silences.iter().map(|s| s.scope.as_str()).collect::<Vec<_>>(), ["destination:crm"]);
}

fn audit_entry(actor: &str, action: leadflow_core::audit::Action, target: &str) -> leadflow_core::audit::NewEntry {
    leadflow_core::audit::NewEntry::new(actor, action, target)
        .detail(json!({"reason": "ticket 7", "count": 2, "nested": {"b": [1, null], "a": true}}))
}

fn verify_all(entries: &[leadflow_core::audit::Entry]) -> leadflow_core::audit::Verified {
    let mut verifier = leadflow_core::audit::Verifier::default();
    for e in entries {
        verifier.push(e).unwrap();
    }
    verifier.finish()
}

pub async fn audit_entries_chain_across_appends_and_read_back_as_hashed(store: &DynStore) {
    use leadflow_core::audit::{Action, GENESIS};
    assert!(store.audit_entries(0, 10).await.unwrap().is_empty());
    let first = store
        .append_audit(vec![
            audit_entry("cli", Action::KeyCreated, "key:1"),
            audit_entry("key:1", Action::LeadErased, "lead-1").request_id(Some("req-1".into())),
        ])
        .await
        .unwrap();
    assert_eq!((first[0].seq, first[0].prev_hash.as_str()), (1, GENESIS));
    let second = store.append_audit(vec![audit_entry("system", Action::ConfigLoaded, "config")]).await.unwrap();
    assert_eq!((second[0].seq, &second[0].prev_hash), (3, &first[1].hash));
    assert!(store.append_audit(Vec::new()).await.unwrap().is_empty());

    // Read back exactly as written and hashed, page by page.
    let written: Vec<_> = first.into_iter().chain(second).collect();
    let mut read = store.audit_entries(0, 2).await.unwrap();
    read.extend(store.audit_entries(2, 2).await.unwrap());
    assert_eq!(read, written);
    assert_eq!(verify_all(&read).entries, 3);
    assert!(store.audit_entries(3, 10).await.unwrap().is_empty());
}

pub async fn audit_entries_are_listed_newest_first_by_filter_and_cursor(store: &DynStore) {
    use leadflow_core::audit::Action;
    use leadflow_store::AuditFilter;
    store
        .append_audit(vec![
            audit_entry("key:a", Action::LeadErased, "lead-1"),
            audit_entry("key:b", Action::LeadStageMoved, "lead-1"),
            audit_entry("key:a", Action::LeadStageMoved, "lead-2"),
        ])
        .await
        .unwrap();
    let written_at = store.audit_entries(0, 1).await.unwrap()[0].at;
    let later = store.append_audit(vec![audit_entry("cli", Action::KeyRevoked, "key:a")]).await.unwrap();
    let seqs = |entries: Vec<leadflow_core::audit::Entry>| entries.iter().map(|e| e.seq).collect::<Vec<_>>();
    let list = |f: AuditFilter| async move { seqs(store.list_audit(AuditFilter { limit: 10, ..f }).await.unwrap()) };
    assert_eq!(list(AuditFilter::default()).await, [4, 3, 2, 1]);
    assert_eq!(list(AuditFilter { actor: Some("key:a".into()), ..Default::default() }).await, [3, 1]);
    assert_eq!(list(AuditFilter { action: Some("lead.stage_moved".into()), ..Default::default() }).await, [3, 2]);
    assert_eq!(list(AuditFilter { target: Some("lead-1".into()), ..Default::default() }).await, [2, 1]);
    let both = AuditFilter { actor: Some("key:a".into()), target: Some("lead-1".into()), ..Default::default() };
    assert_eq!(list(both).await, [1]);
    assert_eq!(list(AuditFilter { before: Some(3), ..Default::default() }).await, [2, 1]);
    let page = store.list_audit(AuditFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(seqs(page), [4, 3]);
    // `since` is inclusive, `until` exclusive.
    assert_eq!(list(AuditFilter { since: Some(written_at), ..Default::default() }).await, [4, 3, 2, 1]);
    assert!(list(AuditFilter { until: Some(written_at), ..Default::default() }).await.is_empty());
    let after_all = later[0].at + time::Duration::seconds(1);
    assert!(list(AuditFilter { since: Some(after_all), ..Default::default() }).await.is_empty());
    assert_eq!(list(AuditFilter { until: Some(after_all), ..Default::default() }).await.len(), 4);
}

pub async fn concurrent_audit_appends_never_fork_the_chain(store: &DynStore) {
    use leadflow_core::audit::Action;
    let appends: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let entries =
                    (0..3).map(|j| audit_entry("cli", Action::LeadMerged, &format!("lead-{i}-{j}"))).collect();
                store.append_audit(entries).await.unwrap()
            })
        })
        .collect();
    for a in appends {
        let entries = a.await.unwrap();
        // One append's entries stay together, in order.
        assert!(entries.windows(2).all(|w| w[1].seq == w[0].seq + 1 && w[1].prev_hash == w[0].hash));
    }
    let all = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(all.len(), 48);
    let verified = verify_all(&all);
    assert_eq!((verified.entries, verified.first_seq), (48, Some(1)));
}

/// Runs one statement straight on the database, past the store; the error's text if refused.
async fn raw_statement(raw: &Raw, sql: &'static str) -> Result<(), String> {
    match raw.clone() {
        Raw::Sqlite(path) => tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            conn.execute_batch(sql).map_err(|e| e.to_string())
        })
        .await
        .unwrap(),
        Raw::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(sql).await.map_err(|e| e.as_db_error().map_or(e.to_string(), |d| d.message().into()))
        }
    }
}

pub async fn an_audit_entry_cannot_be_updated_but_the_oldest_can_be_deleted(t: &TestStore) {
    use leadflow_core::audit::Action;
    let store = &t.store;
    let entries = (0..3).map(|i| audit_entry("cli", Action::LeadErased, &format!("lead-{i}"))).collect();
    store.append_audit(entries).await.unwrap();
    let refused = raw_statement(&t.raw, "UPDATE audit_log SET detail = '{}' WHERE seq = 2").await.unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
    // Retention deletes the oldest; the rest still verifies from its new anchor.
    raw_statement(&t.raw, "DELETE FROM audit_log WHERE seq = 1").await.unwrap();
    let rest = store.audit_entries(0, 10).await.unwrap();
    let verified = verify_all(&rest);
    assert_eq!((verified.entries, verified.first_seq), (2, Some(2)));
    // Appends go on from the head.
    let next = store.append_audit(vec![audit_entry("cli", Action::KeyCreated, "key:1")]).await.unwrap();
    assert_eq!((next[0].seq, &next[0].prev_hash), (4, &rest[1].hash));
}

fn by_lead(id: LeadId) -> leadflow_core::engagement::Identity {
    leadflow_core::engagement::Identity { lead_id: Some(id), ..Default::default() }
}

fn event_at(who: LeadId, at: OffsetDateTime) -> leadflow_store::NewEvent {
    let mut e = event("page_view", "https://acme.com/pricing", by_lead(who), None);
    e.event.occurred_at = at;
    e
}

pub async fn subject_reads_follow_every_record_merged_into_the_lead(store: &DynStore) {
    let outbox = store.with_rules(OUTBOX.clone());
    let one = |email: &str| item("api", None, json!({ "email": email }));
    let ada = settled(&outbox.capture(vec![one("ada@acme.com")]).await.unwrap()[0]).1.id;
    let al = settled(&outbox.capture(vec![one("a.l@acme.com")]).await.unwrap()[0]).1.id;
    let lovelace = settled(&outbox.capture(vec![one("lovelace@acme.com")]).await.unwrap()[0]).1.id;
    let stranger = settled(&outbox.capture(vec![one("grace@navy.mil")]).await.unwrap()[0]).1.id;
    let why = leadflow_core::resolve::Explanation {
        rule: leadflow_core::resolve::MatchRule::Reviewed,
        score: Some(0.9),
        evidence: Vec::new(),
    };
    // Lovelace into Al, then Al into Ada: Lovelace reaches Ada through Al.
    assert!(store.merge_leads(al, lovelace, why.clone()).await.unwrap());
    assert!(store.merge_leads(ada, al, why).await.unwrap());
    let merged: Vec<LeadId> = store.merged_records(ada).await.unwrap().iter().map(|l| l.id).collect();
    assert_eq!(merged, [al, lovelace]);
    assert!(store.merged_records(stranger).await.unwrap().is_empty());

    let family = vec![ada, al, lovelace];
    let first = store.lead_submissions(family.clone(), None, 2).await.unwrap();
    let rest = store.lead_submissions(family.clone(), Some(first[1].submission.id), 2).await.unwrap();
    let leads: Vec<Option<LeadId>> = first.iter().chain(&rest).map(|s| s.lead_id).collect();
    assert_eq!(leads, [Some(ada), Some(al), Some(lovelace)], "a page at a time, the stranger's left out");
    assert_eq!(first[0].submission.payload["email"], "ada@acme.com", "the payload as received");

    let now = OffsetDateTime::now_utc();
    store.record_events(vec![event_at(lovelace, now), event_at(ada, now), event_at(stranger, now)]).await.unwrap();
    let first = store.events_of(family.clone(), None, 1).await.unwrap();
    let rest = store.events_of(family.clone(), Some(first[0].id), 10).await.unwrap();
    assert_eq!(first.len() + rest.len(), 2);
    assert!(first.iter().chain(&rest).all(|e| e.lead_id.is_some_and(|l| family.contains(&l))));

    // Each capture made a delivery to each destination, under the lead it was made for.
    let first = store.deliveries_of(family.clone(), None, 4).await.unwrap();
    let rest = store.deliveries_of(family.clone(), Some(first[3].0.id.clone()), 10).await.unwrap();
    let all: Vec<&leadflow_store::OutboxDelivery> = first.iter().chain(&rest).map(|(d, _)| d).collect();
    assert!(all.len() >= 6, "{all:?}");
    assert!(all.iter().all(|d| family.contains(&d.lead_id)));
    assert_eq!(all.iter().filter(|d| d.lead_id == lovelace && d.event_type == "lead.created").count(), 2);
    assert!(all[0].payload.is_object(), "what was sent");

    assert!(store.add_review(stranger, lovelace, 0.7, Vec::new()).await.unwrap());
    let reviews = store.reviews_naming(family.clone()).await.unwrap();
    assert_eq!(reviews.iter().map(|r| (r.lead_id, r.candidate_id)).collect::<Vec<_>>(), [(stranger, lovelace)]);
    assert!(store.reviews_naming(vec![ada]).await.unwrap().is_empty());

    store.record_feedback(vec![feedback("crm", Some("e1"), by_id(ada), None, None, now)]).await.unwrap();
    store.record_feedback(vec![feedback("crm", Some("e2"), by_id(stranger), None, None, now)]).await.unwrap();
    let said = store.feedback_of(family, None, 10).await.unwrap();
    assert_eq!(said.iter().map(|f| f.feedback.event_id.as_deref()).collect::<Vec<_>>(), [Some("e1")]);
}

pub async fn retention_takes_only_what_is_older_than_the_cutoff(store: &DynStore) {
    use leadflow_core::privacy::retention::{BATCH, Kind};
    use leadflow_store::{DeliveryResult, DeliveryStatus};
    let now = OffsetDateTime::now_utc();
    let (old, cutoff) = (now - time::Duration::days(100), now - time::Duration::days(90));
    let outbox = store.with_rules(OUTBOX.clone());
    let mut early = item("api", None, json!({"email": "ada@acme.com", "first_name": "Ada"}));
    early.submission.received_at = old;
    let early_id = early.submission.id;
    let ada = settled(&outbox.capture(vec![early]).await.unwrap()[0]).1.id;
    let recent = item("api", None, json!({"email": "bob@acme.com"}));
    let recent_id = recent.submission.id;
    let bob = settled(&outbox.capture(vec![recent]).await.unwrap()[0]).1.id;

    // Dry-run counts first, then the work; both see the same rows.
    assert_eq!(store.count_expired(Kind::RawPayloads, cutoff).await.unwrap(), 1);
    assert_eq!(store.expire(Kind::RawPayloads, cutoff).await.unwrap(), 1);
    assert_eq!(store.count_expired(Kind::RawPayloads, cutoff).await.unwrap(), 0);
    let cleared = store.get_submission(early_id).await.unwrap().unwrap();
    assert!(cleared.submission.payload.is_empty(), "the payload goes");
    assert_eq!(
        (cleared.status, cleared.lead_id),
        (leadflow_store::SubmissionStatus::Processed, Some(ada)),
        "the row and its outcome stay"
    );
    assert_eq!(store.get_submission(recent_id).await.unwrap().unwrap().submission.payload["email"], "bob@acme.com");

    // More than one batch of old events, and one recent.
    let mut events: Vec<_> = (0..=BATCH).map(|i| event_at(ada, old + time::Duration::seconds(i as i64))).collect();
    events.push(event_at(ada, now));
    store.record_events(events).await.unwrap();
    assert_eq!(store.count_expired(Kind::Events, cutoff).await.unwrap(), BATCH as u64 + 1);
    assert_eq!(store.expire(Kind::Events, cutoff).await.unwrap(), BATCH as u64 + 1);
    let left = store.events_of(vec![ada], None, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.occurred_at).collect::<Vec<_>>(), [now]);

    // Ada's deliveries ended long ago (one delivered, one dead), Bob's just now.
    let mut claimed = store.claim_deliveries(10, LEASE, OffsetDateTime::now_utc()).await.unwrap();
    claimed.sort_by(|a, b| (a.lead_id == bob, &a.destination).cmp(&(b.lead_id == bob, &b.destination)));
    let ends = [
        (DeliveryResult::Delivered, old),
        (DeliveryResult::Dead, old),
        (DeliveryResult::Delivered, now),
        (DeliveryResult::Dead, now),
    ];
    for (d, (result, at)) in claimed.iter().zip(ends) {
        let mut a = attempt(d, result, Some(200));
        a.at = at;
        store.record_delivery(a).await.unwrap();
    }
    assert_eq!(store.count_expired(Kind::DeliveredOutbox, cutoff).await.unwrap(), 1);
    assert_eq!(store.expire(Kind::DeliveredOutbox, cutoff).await.unwrap(), 1);
    assert_eq!(store.expire(Kind::DeadLetters, cutoff).await.unwrap(), 1);
    assert!(store.get_delivery(&claimed[0].id).await.unwrap().is_none(), "gone with its tries");
    assert!(store.get_delivery(&claimed[1].id).await.unwrap().is_none());
    let kept = store.deliveries_of(vec![ada, bob], None, 10).await.unwrap();
    let mut statuses: Vec<(LeadId, &str, usize)> =
        kept.iter().map(|(d, t)| (d.lead_id, d.status.as_str(), t.len())).collect();
    statuses.sort();
    assert_eq!(statuses, [(bob, DeliveryStatus::Dead.as_str(), 1), (bob, DeliveryStatus::Delivered.as_str(), 1)]);

    // Both leads changed just now: inactive only against a cutoff after that.
    assert_eq!(store.count_expired(Kind::InactiveLeads, cutoff).await.unwrap(), 0);
    let later = now + time::Duration::hours(1);
    assert_eq!(store.count_expired(Kind::InactiveLeads, later).await.unwrap(), 2);
    let first = store.inactive_leads(later, None, 1).await.unwrap();
    let rest = store.inactive_leads(later, first.last().copied(), 10).await.unwrap();
    let mut both = [ada, bob];
    both.sort();
    assert_eq!([first, rest].concat(), both);
    assert!(store.expire(Kind::InactiveLeads, later).await.is_err(), "the app erases them one by one");
    // An empty audit log has nothing to take.
    assert_eq!(store.count_expired(Kind::Audit, cutoff).await.unwrap(), 0);
    assert_eq!(store.expire(Kind::Audit, cutoff).await.unwrap(), 0);
}

pub async fn retention_runs_are_kept_newest_first(store: &DynStore) {
    use leadflow_core::privacy::retention::{KindCount, Run};
    let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_750_000_000 + s).unwrap();
    let run = |id: &str, started: i64| Run {
        id: id.into(),
        trigger: "schedule".into(),
        started_at: at(started),
        finished_at: None,
        kinds: Vec::new(),
        error: None,
    };
    store.save_retention_run(run("a", 0)).await.unwrap();
    store.save_retention_run(run("b", 60)).await.unwrap();
    let done = Run {
        finished_at: Some(at(5)),
        kinds: vec![KindCount { kind: "events".into(), before: at(-86_400), count: 3 }],
        ..run("a", 0)
    };
    store.save_retention_run(done.clone()).await.unwrap();
    let runs = store.list_retention_runs(10).await.unwrap();
    assert_eq!(runs, [run("b", 60), done]);
    assert_eq!(store.list_retention_runs(1).await.unwrap().len(), 1);
}

/// Reads the whole feed after `after`, `page` changes at a time, checking each page's
/// `next` against its last change.
async fn read_feed(
    store: &DynStore,
    mut after: leadflow_core::feed::Cursor,
    page: usize,
) -> (Vec<leadflow_core::feed::FeedChange>, leadflow_core::feed::Cursor) {
    let mut all = Vec::new();
    loop {
        let read = store.changes(&after, page).await.unwrap();
        if read.changes.is_empty() {
            assert_eq!(read.next, after, "at the head, the cursor stays");
            return (all, after);
        }
        assert!(read.changes.len() <= page);
        assert_eq!(read.changes.last().map(|c| c.cursor.clone()), Some(read.next.to_string()));
        after = read.next;
        all.extend(read.changes);
    }
}

/// How many changes a cursor is past: every database's changes are numbered from 1
/// without gaps, so its parts add up to that.
fn changes_read(cursor: &str) -> u64 {
    leadflow_core::feed::Cursor::parse(cursor).expect("a cursor").0.iter().sum()
}

pub async fn the_change_feed_tells_every_change_once_in_commit_order(store: &DynStore) {
    use leadflow_core::feed::Cursor;
    use leadflow_store::DeliveryResult;
    let outbox = store.with_rules(OUTBOX.clone());
    let ada =
        settled(&outbox.capture(vec![item("api", None, json!({"email": "ada@acme.com"}))]).await.unwrap()[0]).1.id;
    outbox.capture(vec![item("api", None, json!({"email": "ada@acme.com", "company": "Acme"}))]).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    let hook = claimed.iter().find(|d| d.destination == "hook").unwrap();
    let crm = claimed.iter().find(|d| d.destination == "crm").unwrap();
    store.record_delivery(attempt(hook, DeliveryResult::Retry { at: now }, Some(503))).await.unwrap();
    store.record_delivery(attempt(crm, DeliveryResult::Dead, Some(400))).await.unwrap();
    let again = store.claim_deliveries(10, LEASE, now).await.unwrap();
    let retried = again.iter().find(|d| d.id == hook.id).unwrap();
    store.record_delivery(attempt(retried, DeliveryResult::Delivered, Some(200))).await.unwrap();
    let reason = leadflow_core::scoring::LifecycleContract::default().disqualify_reasons()[0].clone();
    outbox
        .transition_lead(ada, "disqualified".into(), "rep@acme.com".into(), Some(reason.clone()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    store.erase_lead(ada, "dpo".into(), None).await.unwrap().unwrap();

    let (all, head) = read_feed(store, Cursor::default(), 3).await;
    let counts: Vec<u64> = all.iter().map(|c| changes_read(&c.cursor)).collect();
    assert_eq!(counts, (1..=all.len() as u64).collect::<Vec<_>>(), "numbered in order, without gaps");
    assert!(all.iter().all(|c| c.lead_id == ada), "{all:?}");
    let at = |kind: &str| all.iter().position(|c| c.kind == kind).unwrap_or_else(|| panic!("no {kind} in {all:?}"));
    assert_eq!(at("lead.created"), 0);
    assert!(at("lead.created") < at("lead.updated"));
    assert!(at("lead.updated") < at("delivery.dead"));
    assert!(at("delivery.dead") < at("delivery.delivered"));
    assert!(at("delivery.delivered") < at("stage.changed"));
    assert!(at("stage.changed") < at("lead.erased"));
    let created = &all[at("lead.created")];
    assert_eq!((created.detail.version, created.detail.stage.as_deref()), (Some(1), Some("new")));
    assert_eq!(all[at("lead.updated")].detail.version, Some(2));
    let stage = &all[at("stage.changed")].detail;
    assert_eq!(
        (stage.to.as_deref(), stage.actor.as_deref(), stage.reason.as_deref()),
        (Some("disqualified"), Some("rep@acme.com"), Some(reason.as_str()))
    );
    let queued = all.iter().filter(|c| c.kind == "delivery.queued").count();
    assert!(queued >= 2, "one per subscribed destination: {all:?}");
    assert_eq!(all[at("delivery.delivered")].detail.delivery_id.as_deref(), Some(hook.id.as_str()));
    assert_eq!(all.iter().filter(|c| c.kind == "delivery.delivered").count(), 1, "a retry is no change");
    let text = serde_json::to_string(&all.iter().map(|c| &c.detail).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains("ada@acme.com") && !text.contains("Acme"), "the feed names no person: {text}");

    // Read again from the middle: the same changes after it.
    let middle = Cursor::parse(&all[2].cursor).unwrap();
    let (rest, _) = read_feed(store, middle, 1000).await;
    assert_eq!(rest, all[3..]);
    // A cursor past the head was never given out.
    let last = head.0.len() - 1;
    let ahead = head.with(last, head.at(last) + 1);
    assert!(matches!(store.changes(&ahead, 10).await, Err(leadflow_store::StoreError::UnknownCursor(_))));
}

pub async fn concurrent_writers_never_leave_a_reader_a_gap(store: &DynStore) {
    use leadflow_core::feed::Cursor;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.with_rules(EXACT.clone());
            tokio::spawn(async move {
                for i in 0..12 {
                    let one = item("api", None, json!({ "email": format!("w{w}-{i}@acme.com") }));
                    store.capture(vec![one]).await.unwrap();
                }
            })
        })
        .collect();
    // Readers follow while they write: a change numbered before one a reader has read must
    // never commit after it, or the reader would have skipped it for good. Three readers
    // at once, as stores that number changes on reading must not give a number twice.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut after = Cursor::default();
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    let page = store.changes(&after, 5).await.unwrap();
                    let empty = page.changes.is_empty();
                    seen.extend(page.changes.iter().map(|c| (changes_read(&c.cursor), c.kind.clone())));
                    after = page.next;
                    if finished && empty {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        let seen = reader.await.unwrap();
        let numbers: Vec<u64> = seen.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (1..=seen.len() as u64).collect::<Vec<_>>(), "every change once, in order");
        assert_eq!(seen.iter().filter(|(_, kind)| kind == "lead.created").count(), 96);
    }
}

/// One transaction's changes may be stored together (PostgreSQL keeps a batch per
/// transaction), but a reader pages through them one change at a time from any cursor.
pub async fn a_page_may_begin_and_end_inside_one_transactions_changes(store: &DynStore) {
    use leadflow_core::feed::Cursor;
    let items: Vec<_> = (0..10).map(|i| item("api", None, json!({ "email": format!("p{i}@acme.com") }))).collect();
    store.capture(items).await.unwrap();
    capture_one(store, item("api", None, json!({"email": "q@acme.com"}))).await;
    let (all, _) = read_feed(store, Cursor::default(), 100).await;
    assert_eq!(all.len(), 11, "{all:?}");
    for start in 0..all.len() {
        let after = if start == 0 { Cursor::default() } else { Cursor::parse(&all[start - 1].cursor).unwrap() };
        for page in [1, 3, 7] {
            let (rest, _) = read_feed(store, after.clone(), page).await;
            assert_eq!(rest, all[start..], "from change {start}, {page} at a time");
        }
    }
}

pub async fn a_backfill_queues_deliveries_with_their_changes(store: &DynStore) {
    let ada = settled(&capture_one(store, item("api", None, json!({"email": "ada@acme.com"}))).await).1.clone();
    let now = OffsetDateTime::now_utc();
    let d = leadflow_core::changes::backfill(&ada, "warehouse", now, false).unwrap();
    assert_eq!(store.enqueue_deliveries(vec![d.clone()]).await.unwrap(), 1);
    let claimed = store.claim_deliveries(10, LEASE, now).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id.as_str(), claimed[0].event_type.as_str()), (d.id.as_str(), "lead.backfilled"));
    let (feed, _) = read_feed(store, Default::default(), 100).await;
    let queued = feed.iter().find(|c| c.kind == "delivery.queued").unwrap();
    assert_eq!((queued.lead_id, queued.detail.destination.as_deref()), (ada.id, Some("warehouse")));

    // Run again over the same lead: nothing new is queued, and the feed tells nothing new.
    let again = leadflow_core::changes::backfill(&ada, "warehouse", now, false).unwrap();
    assert_eq!(again.id, d.id, "the same destination, lead and version make the same delivery");
    assert_eq!(store.enqueue_deliveries(vec![again]).await.unwrap(), 0);
    let (after, _) = read_feed(store, Default::default(), 100).await;
    assert_eq!(after, feed);
    // Once the lead has changed, it is sent again; to another destination, it is its own.
    let changed =
        settled(&capture_one(store, item("api", None, json!({"email": "ada@acme.com", "company": "Acme"}))).await)
            .1
            .clone();
    assert_eq!(changed.id, ada.id);
    let fresh = [
        leadflow_core::changes::backfill(&changed, "warehouse", now, false).unwrap(),
        leadflow_core::changes::backfill(&ada, "lake", now, false).unwrap(),
    ];
    assert!(fresh.iter().all(|f| f.id != d.id) && fresh[0].id != fresh[1].id);
    assert_eq!(store.enqueue_deliveries(fresh.to_vec()).await.unwrap(), 2);
    // A resend (the destination lost data) is queued whatever was sent before.
    let resent = leadflow_core::changes::backfill(&ada, "warehouse", now, true).unwrap();
    assert_ne!(resent.id, d.id);
    assert_eq!(store.enqueue_deliveries(vec![resent]).await.unwrap(), 1);
    let mut erased = ada.clone();
    erased.erased_at = Some(now);
    assert!(
        leadflow_core::changes::backfill(&erased, "warehouse", now, false).is_none(),
        "nothing of an erased person"
    );
}

pub async fn attendance_events_fold_into_the_lead_and_the_report_counts_them(store: &DynStore) {
    use leadflow_core::engagement::Identity;
    use leadflow_core::engagement::attendance::{Status, kinds};
    let ada = settled(&capture_one(store, item("api", None, json!({"email": "ada@acme.com"}))).await).1.clone();
    let bob = settled(&capture_one(store, item("api", None, json!({"email": "bob@acme.com"}))).await).1.clone();
    let test = json!({"email": "t@acme.com", "custom": {"test": true}});
    let tester = settled(&capture_one(store, item("api", None, test)).await).1.clone();
    let start = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let attend = |who: LeadId, kind: &str, minutes_in: i64, props: Value| {
        let mut e = event(kind, "https://x.com", Identity { lead_id: Some(who), ..Identity::default() }, None);
        e.event.url = None;
        e.event.occurred_at = start + time::Duration::minutes(minutes_in);
        let Value::Object(mut props) = props else { unreachable!() };
        props.insert("event".into(), json!("zoom:webinar:1"));
        e.event.properties = props;
        e
    };
    store
        .record_events(vec![
            attend(ada.id, kinds::REGISTERED, -60, json!({"event_name": "Launch"})),
            attend(ada.id, kinds::JOINED, 0, json!({"session": "s1"})),
            attend(ada.id, kinds::LEFT, 30, json!({"session": "s1"})),
            attend(bob.id, kinds::NO_SHOW, 60, json!({})),
            attend(tester.id, kinds::ATTENDED, 0, json!({"minutes": 5})),
        ])
        .await
        .unwrap();
    let stored = store.get_lead(ada.id).await.unwrap().unwrap();
    let [a] = &stored.attendance[..] else { panic!("{:?}", stored.attendance) };
    assert_eq!(
        (a.event.as_str(), a.name.as_deref(), a.status, a.minutes),
        ("zoom:webinar:1", Some("Launch"), Status::Attended, 30)
    );

    let report = store.report_attendance(None).await.unwrap();
    let got: Vec<(&str, &str, u64, u64)> =
        report.iter().map(|r| (r.event.as_str(), r.status.as_str(), r.leads, r.minutes)).collect();
    assert_eq!(
        got,
        [("zoom:webinar:1", "attended", 1, 30), ("zoom:webinar:1", "no_show", 1, 0)],
        "test leads left out"
    );
    assert_eq!(report[0].name.as_deref(), Some("Launch"));
    assert_eq!(report[0].stage, stored.lifecycle_stage);
    assert!(store.report_attendance(Some("zoom:webinar:2".into())).await.unwrap().is_empty());
    assert_eq!(store.report_attendance(Some("zoom:webinar:1".into())).await.unwrap(), report);
}
