use super::*;
use crate::normalize::Candidate;
use proptest::prelude::*;
use serde_json::json;
use time::macros::datetime;

fn prepare(consent: serde_json::Value) -> Result<Candidate, Vec<crate::FieldError>> {
    let payload = json!({"email": "ada@example.com", "consent": consent});
    crate::pipeline::prepare(payload.as_object().unwrap(), &crate::config::SourceConfig::api(), &Default::default())
}

fn purposes(consent: serde_json::Value) -> BTreeMap<String, Status> {
    let c = prepare(consent).unwrap().consent.unwrap();
    c.purposes.into_iter().map(|(p, s)| (p, s.status)).collect()
}

fn state(status: Status, at: OffsetDateTime) -> State {
    State { at: Some(at), ..State::new(status) }
}

fn with(purpose: &str, s: State) -> Consent {
    let mut c = Consent::default();
    c.purposes.insert(purpose.to_owned(), s);
    c
}

#[test]
fn todays_object_speaks_for_email_marketing_and_each_channel_for_its_purpose() {
    let got = purposes(json!({"granted": true, "channels": {"email": true, "sms": false, "fax": true}}));
    assert_eq!(got, BTreeMap::from([("marketing_email".into(), Status::Granted), ("phone".into(), Status::Denied)]));
    let c = prepare(json!({"granted": false, "policy_version": "v3"})).unwrap().consent.unwrap();
    assert!(!c.granted);
    assert_eq!(c.purposes["marketing_email"].status, Status::Denied);
    assert_eq!(c.purposes["marketing_email"].policy_version.as_deref(), Some("v3"));
}

#[test]
fn the_ledger_forms_are_read_with_their_particulars() {
    let got = purposes(json!([
        {"purpose": "sales_contact", "status": "granted"},
        {"purpose": "profiling", "status": "withdrawn"}
    ]));
    assert_eq!(
        got,
        BTreeMap::from([("sales_contact".into(), Status::Granted), ("profiling".into(), Status::Withdrawn)])
    );
    let c = prepare(json!({
        "purposes": {"marketing_email": "granted", "phone": {"status": "denied", "channel": "sms"}},
        "policy_version": "2024-05", "page_url": "https://example.com/demo", "lawful_basis": "consent",
        "at": "2024-05-01T10:00:00Z", "confirmed_at": "2024-05-01T10:05:00Z"
    }))
    .unwrap()
    .consent
    .unwrap();
    let email = &c.purposes["marketing_email"];
    assert_eq!(email.policy_version.as_deref(), Some("2024-05"));
    assert_eq!(email.page_url.as_deref(), Some("https://example.com/demo"));
    assert_eq!(email.confirmed_at, Some(datetime!(2024-05-01 10:05 UTC)));
    assert_eq!(c.purposes["phone"].channel.as_deref(), Some("sms"));
    assert_eq!(c.purposes["phone"].policy_version.as_deref(), Some("2024-05"));
    assert!(c.granted);
}

#[test]
fn an_unknown_purpose_or_status_is_a_field_error() {
    let errors = prepare(json!({"purpose": "telepathy", "status": "granted"})).unwrap_err();
    assert_eq!(errors[0].field, "consent.purpose");
    let errors = prepare(json!({"purposes": {"phone": "maybe"}})).unwrap_err();
    assert_eq!(errors[0].field, "consent.purposes.phone");
    let errors = prepare(json!([{"purpose": "phone"}])).unwrap_err();
    assert_eq!(errors[0].field, "consent[0].status");
}

#[test]
fn a_later_choice_wins_an_earlier_one_is_history_and_other_purposes_stay() {
    let mut lead = Some(with("marketing_email", state(Status::Granted, datetime!(2024-01-01 0:00 UTC))));
    lead.as_mut().unwrap().purposes.insert("phone".into(), state(Status::Granted, datetime!(2024-01-01 0:00 UTC)));
    let withdrawal = with("marketing_email", state(Status::Withdrawn, datetime!(2024-02-01 0:00 UTC)));
    assert!(merge_submission(&mut lead, withdrawal));
    let c = lead.as_ref().unwrap();
    assert_eq!(c.purposes["marketing_email"].status, Status::Withdrawn);
    assert_eq!(c.purposes["phone"].status, Status::Granted, "another purpose is untouched");
    let older = with("marketing_email", state(Status::Granted, datetime!(2023-06-01 0:00 UTC)));
    assert!(!merge_submission(&mut lead, older));
    assert_eq!(lead.unwrap().purposes["marketing_email"].status, Status::Withdrawn);
}

#[test]
fn merging_records_keeps_the_least_permissive_choice() {
    let mut survivor = Some(with("sales_contact", state(Status::Granted, datetime!(2025-01-01 0:00 UTC))));
    let absorbed = with("sales_contact", state(Status::Denied, datetime!(2020-01-01 0:00 UTC)));
    assert!(combine(&mut survivor, &absorbed));
    assert_eq!(survivor.as_ref().unwrap().purposes["sales_contact"].status, Status::Denied);
    let grant = with("sales_contact", state(Status::Granted, datetime!(2026-01-01 0:00 UTC)));
    assert!(!combine(&mut survivor, &grant), "a grant on another record does not override a refusal");
    assert!(!survivor.unwrap().granted);
}

#[test]
fn missing_names_each_required_purpose_not_granted() {
    let c = with("sales_contact", state(Status::Granted, datetime!(2025-01-01 0:00 UTC)));
    let required = ["sales_contact".to_owned(), "phone".to_owned()];
    assert_eq!(missing(Some(&c), &required), ["phone"]);
    assert_eq!(missing(None, &required), ["sales_contact", "phone"]);
}

fn any_state() -> impl Strategy<Value = (usize, Status, i64)> {
    (0..4usize, prop::sample::select(Status::ALL.to_vec()), 0..1_000i64)
}

proptest! {
    /// Whatever arrives, in whatever order, a purpose a submission does not name keeps
    /// its state, and the current state is the most recent choice.
    #[test]
    fn choices_fold_to_the_most_recent_per_purpose(choices in prop::collection::vec(any_state(), 1..20)) {
        let mut lead: Option<Consent> = None;
        for (p, status, t) in &choices {
            let at = datetime!(2024-01-01 0:00 UTC) + time::Duration::minutes(*t);
            merge_submission(&mut lead, with(DEFAULT_PURPOSES[*p], state(*status, at)));
        }
        let lead = lead.unwrap();
        for (i, purpose) in DEFAULT_PURPOSES.iter().enumerate() {
            let latest = choices.iter().enumerate().filter(|(_, c)| c.0 == i).max_by_key(|(n, c)| (c.2, *n));
            match latest {
                None => prop_assert!(!lead.purposes.contains_key(*purpose)),
                Some((_, c)) => prop_assert_eq!(lead.purposes[*purpose].status, c.1),
            }
        }
    }
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "granted",
            "denied",
            "withdrawn",
            "phone",
            "marketing_email",
            "x",
            "",
            "2024-05-01T10:00:00Z"
        ])
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "purpose",
                    "status",
                    "purposes",
                    "granted",
                    "channels",
                    "at",
                    "policy_version",
                    "page_url",
                    "phone",
                    "sms",
                    "email",
                    "marketing_email",
                    "confirmed_at",
                    "other",
                ]),
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    /// Whatever a client sends as `consent`, reading it never panics, and what it yields
    /// names only configured purposes.
    #[test]
    fn reading_any_consent_yields_only_configured_purposes(v in any_json()) {
        let purposes: Vec<String> = DEFAULT_PURPOSES.map(str::to_owned).to_vec();
        if let Ok(c) = crate::normalize::consent(&v, &purposes) {
            prop_assert!(c.purposes.keys().all(|p| purposes.contains(p)));
        }
    }
}
