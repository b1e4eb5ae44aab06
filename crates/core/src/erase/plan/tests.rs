use super::*;
use crate::deliver::{DestinationConfig, EventType, Subscriptions};
use crate::feedback::{FeedbackIdentity, FeedbackOutcome};
use crate::ids::FeedbackId;
use crate::testing::lead;
use serde_json::json;
use std::sync::Arc;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

/// `hook` and `crm` hear of erasures, `audit` does not.
fn rules() -> Rules {
    let destination = |name: &str, events: &[EventType]| DestinationConfig::new(name, "webhook", events.to_vec());
    let destinations = [
        destination("hook", &[EventType::Created, EventType::Erased]),
        destination("crm", &[EventType::Erased]),
        destination("audit", &[EventType::Created]),
    ];
    Rules { outbox: Arc::new(Subscriptions::new(&destinations)), ..Rules::default() }
}

fn member(lead: &Lead, into: Option<&Lead>) -> Member {
    Member { lead: lead.clone(), merged_into: into.map(|l| l.id) }
}

/// Ada's survivor (external id `crm-ada`, an account) and a lead merged into it.
fn ada() -> (Lead, Lead) {
    let mut survivor = lead("ada@example.com");
    survivor.fields.external_id = Some("crm-ada".into());
    survivor.account_id = Some(AccountId::new());
    let merged = lead("ada.l@work.example");
    (survivor, merged)
}

fn named<'r>(rules: &'r Rules, survivor: &Lead, merged: &Lead, traces: Traces) -> Named<'r> {
    let erase = Erase::new(merged.id, "dpo".into(), Some("ticket 1".into()), rules, NOW);
    let Found::Family(family) = erase.family(vec![member(survivor, None), member(merged, Some(survivor))]) else {
        panic!("a family")
    };
    family.named(traces).expect("no import is running")
}

fn writes(changes: &[Change]) -> Vec<&Write> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Erase(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn count(receipt: &Receipt, table: &str) -> (u64, u64) {
    let t = receipt.tables.iter().find(|t| t.table == table).expect("listed");
    (t.scrubbed, t.deleted)
}

fn feedback(lead: Option<LeadId>, identity: FeedbackIdentity) -> (Feedback, FeedbackResult) {
    let id = FeedbackId::new();
    let fb = Feedback {
        id,
        source: "crm".into(),
        event_id: None,
        identity,
        status: None,
        crm_status: Some("working".into()),
        target: None,
        reason: None,
        owner: None,
        ignored: None,
        occurred_at: NOW,
        received_at: NOW,
        payload: json!({"firstname": "Ada"}),
    };
    let result = FeedbackResult {
        id,
        outcome: if lead.is_some() { FeedbackOutcome::Applied } else { FeedbackOutcome::Unmatched },
        lead_id: lead,
        stage: None,
        detail: None,
        allowed: Vec::new(),
        replayed: false,
    };
    (fb, result)
}

fn outbox(id: &str, lead: &Lead, destination: &str, state: OutboxState, attempts: u32) -> OutboxRow {
    OutboxRow { id: id.into(), lead: lead.id, destination: destination.into(), state, attempts, lease_until: None }
}

#[test]
fn the_family_is_the_survivor_through_every_hop_and_every_lead_merged_into_it() {
    let [a, b, c, d, e, f] = std::array::from_fn(|_| lead("x@example.com"));
    // a → b, c → b, d → c; f → e is another family.
    let tree = [
        member(&a, Some(&b)),
        member(&b, None),
        member(&c, Some(&b)),
        member(&d, Some(&c)),
        member(&e, None),
        member(&f, Some(&e)),
    ];
    let mut merged = vec![a.id, c.id, d.id];
    merged.sort_unstable();
    let family: Vec<LeadId> = std::iter::once(b.id).chain(merged).collect();
    assert_eq!(family_of(d.id, &tree).as_deref(), Some(&family[..]), "from a lead two hops down");
    assert_eq!(family_of(b.id, &tree).as_deref(), Some(&family[..]), "from the survivor");
    assert_eq!(family_of(f.id, &tree), Some(vec![e.id, f.id]));
    assert_eq!(family_of(LeadId::new(), &tree), None);
    let looping = [member(&a, Some(&b)), member(&b, Some(&a))];
    assert_eq!(family_of(a.id, &looping), None, "a loop has no survivor");
}

#[test]
fn a_lead_erased_before_is_answered_and_nothing_is_written() {
    let rules = rules();
    let (mut survivor, merged) = ada();
    let first = datetime!(2024-01-01 0:00 UTC);
    survivor.erased_at = Some(first);
    let tree = vec![member(&survivor, None), member(&merged, Some(&survivor))];
    let Found::AlreadyErased(receipt) = Erase::new(merged.id, "dpo".into(), None, &rules, NOW).family(tree) else {
        panic!("erased before")
    };
    assert_eq!((receipt.lead_id, receipt.erased_at, receipt.already_erased), (survivor.id, first, true));
    assert_eq!(receipt.merged_ids, [merged.id]);
    assert!(receipt.tables.is_empty() && receipt.destinations.is_empty());
    assert!(matches!(Erase::new(LeadId::new(), "dpo".into(), None, &rules, NOW).family(Vec::new()), Found::Missing));
}

#[test]
fn an_unfinished_import_refuses_the_erasure() {
    let rules = rules();
    let (survivor, merged) = ada();
    let import = ImportId::new();
    let Found::Family(family) = Erase::new(survivor.id, "dpo".into(), None, &rules, NOW)
        .family(vec![member(&survivor, None), member(&merged, Some(&survivor))])
    else {
        panic!("a family")
    };
    assert_eq!(family.ids(), [survivor.id, merged.id]);
    let refused = family.named(Traces { unfinished_import: Some(import), ..Traces::default() }).err();
    assert_eq!(refused, Some(Refused(import)));
    assert!(refused.unwrap().to_string().contains(&import.to_string()));
}

#[test]
fn the_lookup_names_the_person_every_way_they_were_known() {
    let rules = rules();
    let (survivor, merged) = ada();
    let mut earlier = survivor.clone();
    earlier.fields.email = Some(crate::Email::parse("ada@old.example").unwrap());
    let absorbed = LeadEvent::Absorbed {
        absorbed: merged.id,
        explanation: crate::resolve::Explanation {
            rule: crate::resolve::MatchRule::Reviewed,
            score: None,
            evidence: vec![],
        },
        filled: vec![],
        before: Some(Box::new(earlier)),
    };
    let record = CrmRecord { destination: "crm".into(), crm_id: "51".into() };
    let traces = Traces {
        unfinished_import: None,
        history: vec![(7, HistoryEntry { lead_id: survivor.id, at: NOW, event: absorbed })],
        visitors: vec!["vid-1".into()],
        crm_records: vec![record.clone()],
    };
    let lookup = named(&rules, &survivor, &merged, traces).lookup();
    assert_eq!(lookup.leads, [survivor.id, merged.id]);
    assert_eq!(lookup.accounts, [survivor.account_id.unwrap()]);
    assert_eq!(lookup.emails, ["ada.l@work.example", "ada@example.com", "ada@old.example"], "a snapshot's too");
    assert_eq!(lookup.mentions[1], "\"ada@example.com\"");
    assert_eq!(
        (lookup.external_ids, lookup.visitors, lookup.crm_records),
        (vec!["crm-ada".to_owned()], vec!["vid-1".to_owned()], vec![record])
    );
    assert_eq!(lookup.report_needles, [survivor.id.to_string(), merged.id.to_string(), "crm-ada".into()]);
}

#[test]
fn every_lead_becomes_a_tombstone_and_an_account_only_they_held_goes_with_its_keys() {
    let rules = rules();
    let (survivor, mut merged) = ada();
    let theirs = survivor.account_id.unwrap();
    let shared = AccountId::new();
    merged.account_id = Some(shared);
    let rows = Rows {
        accounts: vec![AccountUse { id: theirs, leads: 1, keys: 3 }, AccountUse { id: shared, leads: 4, keys: 2 }],
        ..Rows::default()
    };
    let erased = named(&rules, &survivor, &merged, Traces::default()).finish(rows);
    let w = writes(&erased.changes);
    let tombs: Vec<&Lead> = w
        .iter()
        .filter_map(|w| match w {
            Write::Tombstone(l) => Some(&**l),
            _ => None,
        })
        .collect();
    assert_eq!(tombs.iter().map(|t| t.id).collect::<Vec<_>>(), [survivor.id, merged.id]);
    assert!(tombs.iter().all(|t| t.erased_at == Some(NOW) && t.fields.email.is_none() && t.account_id.is_none()));
    let gone: Vec<AccountId> = w
        .iter()
        .filter_map(|w| match w {
            Write::DeleteAccount(a) => Some(*a),
            _ => None,
        })
        .collect();
    assert_eq!(gone, [theirs], "the shared account stays");
    let r = &erased.receipt;
    assert_eq!((count(r, "leads"), count(r, "accounts"), count(r, "account_keys")), ((2, 0), (0, 1), (0, 3)));
    assert_eq!((r.lead_id, r.erased_at, &r.merged_ids, r.already_erased), (survivor.id, NOW, &vec![merged.id], false));
    assert_eq!(r.tables.iter().map(|t| t.table).collect::<Vec<_>>(), TABLES);
    // The tombstones come first: the account goes once no lead names it.
    assert!(matches!(
        erased.changes[..3],
        [
            Change::Erase(Write::Tombstone(_)),
            Change::Erase(Write::Tombstone(_)),
            Change::Erase(Write::DeleteAccount(_))
        ]
    ));
}

#[test]
fn only_rows_that_name_the_person_are_deleted_or_scrubbed() {
    let rules = rules();
    let (survivor, merged) = ada();
    let record = CrmRecord { destination: "crm".into(), crm_id: "51".into() };
    let traces = Traces { visitors: vec!["vid-1".into()], crm_records: vec![record], ..Traces::default() };
    let waiting = |email: Option<&str>, visitor: Option<&str>| WaitingEvent {
        id: EventId::new(),
        email: email.map(str::to_owned),
        anonymous_id: visitor.map(str::to_owned),
        ..WaitingEvent::default()
    };
    let (loose, browser, grace) = (
        waiting(Some(" ADA@Example.com"), None),
        waiting(None, Some("vid-1")),
        waiting(Some("grace@example.com"), None),
    );
    let attached = EventId::new();
    let (mine, quarantined, xada) = (SubmissionId::new(), SubmissionId::new(), SubmissionId::new());
    let identity = |destination: &str| FeedbackIdentity {
        crm_destination: Some(destination.into()),
        crm_id: Some("51".into()),
        ..FeedbackIdentity::default()
    };
    let about_family = feedback(Some(merged.id), FeedbackIdentity::default());
    let by_record = feedback(None, identity("crm"));
    let other_crm = feedback(None, identity("other-crm"));
    let someone_else = feedback(Some(LeadId::new()), identity("crm"));
    let mut already = feedback(Some(survivor.id), FeedbackIdentity::default());
    already.0.payload = serde_json::Value::Null;
    let review = ReviewId::new();
    let rows = Rows {
        submissions: vec![mine],
        unsettled: vec![
            (quarantined, r#"{"email":"Ada@Example.com","phone":"call"}"#.into()),
            (xada, r#"{"email":"xada@example.com"}"#.into()),
        ],
        lead_keys: 5,
        events: vec![attached],
        waiting: vec![loose.clone(), browser.clone(), grace, loose.clone()],
        reviews: vec![review, review],
        feedback: vec![about_family.clone(), by_record.clone(), other_crm, someone_else, already, by_record.clone()],
        ..Rows::default()
    };
    let erased = named(&rules, &survivor, &merged, traces).finish(rows);
    let w = writes(&erased.changes);
    assert!(w.contains(&&Write::ScrubSubmissions(vec![mine])));
    assert!(w.contains(&&Write::DeleteSubmissions(vec![quarantined])), "not the longer address that contains it");
    assert!(w.contains(&&Write::DeleteEvents(vec![attached, loose.id, browser.id])));
    assert!(w.contains(&&Write::DeleteVisitors(vec!["vid-1".into()])));
    assert!(w.contains(&&Write::DeleteReviews(vec![review])));
    assert!(w.contains(&&Write::DeleteLeadKeys(survivor.id)) && w.contains(&&Write::DeleteLeadKeys(merged.id)));
    let scrubbed: Vec<FeedbackId> = w
        .iter()
        .filter_map(|w| match w {
            Write::Feedback { feedback, result } => {
                assert_eq!((&feedback.payload, &feedback.identity.email), (&serde_json::Value::Null, &None));
                assert_eq!(result.id, feedback.id);
                Some(feedback.id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(scrubbed, [about_family.0.id, by_record.0.id], "once each; another CRM's record is someone else's");
    let r = &erased.receipt;
    assert_eq!((count(r, "submissions"), count(r, "events"), count(r, "feedback")), ((1, 1), (0, 3), (2, 0)));
    assert_eq!(
        (count(r, "lead_keys"), count(r, "lead_visitors"), count(r, "duplicate_reviews")),
        ((0, 5), (0, 1), (0, 1))
    );
}

#[test]
fn history_loses_snapshots_and_the_erasure_is_recorded_with_ids_only() {
    let rules = rules();
    let (survivor, merged) = ada();
    let absorbed = LeadEvent::Absorbed {
        absorbed: merged.id,
        explanation: crate::resolve::Explanation {
            rule: crate::resolve::MatchRule::Reviewed,
            score: None,
            evidence: vec![],
        },
        filled: vec![],
        before: Some(Box::new(merged.clone())),
    };
    let created = LeadEvent::Created { submission_id: SubmissionId::new(), source: crate::SourceName::api() };
    let entry = |event| HistoryEntry { lead_id: survivor.id, at: NOW, event };
    let record = CrmRecord { destination: "crm".into(), crm_id: "51".into() };
    let traces = Traces {
        history: vec![(1, entry(absorbed)), (2, entry(created))],
        crm_records: vec![record.clone()],
        ..Traces::default()
    };
    let erased = named(&rules, &survivor, &merged, traces).finish(Rows::default());
    let rewritten: Vec<(i64, &HistoryEntry)> = writes(&erased.changes)
        .into_iter()
        .filter_map(|w| match w {
            Write::History { row, entry } => Some((*row, &**entry)),
            _ => None,
        })
        .collect();
    assert!(matches!(&rewritten[..], [(1, HistoryEntry { event: LeadEvent::Absorbed { before: None, .. }, .. })]));
    assert_eq!(count(&erased.receipt, "lead_history"), (1, 0), "the creation held nothing to scrub");
    let recorded = erased.changes.iter().find_map(|c| match c {
        Change::History { entry, .. } => Some(entry),
        _ => None,
    });
    let Some(HistoryEntry {
        lead_id, event: LeadEvent::Erased { actor, reason, merged: ids, crm_records, .. }, ..
    }) = recorded
    else {
        panic!("{recorded:?}")
    };
    assert_eq!((lead_id, actor.as_deref(), reason.as_deref()), (&survivor.id, Some("dpo"), Some("ticket 1")));
    assert_eq!((ids, crm_records), (&vec![merged.id], &vec![record]));
    for change in &erased.changes {
        if let Change::Delivery(d) = change {
            let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            assert_eq!((d.lead, d.event_type.as_str()), (survivor.id, "lead.erased"));
            assert_eq!(payload["merged_ids"], json!([merged.id]));
            // Her addresses, external id and name (ids are random hex, which may spell "ada").
            for personal in ["ada@", "ada.l@", "crm-ada", "\"Ada\""] {
                assert!(!d.payload.contains(personal), "{}", d.payload);
            }
        }
    }
    for lead in [survivor.id, merged.id] {
        assert!(erased.changes.contains(&Change::Erase(Write::Unqueue(lead))));
        assert!(erased.changes.contains(&Change::SlaStopped { lead, owner: None }), "its SLA timer stops");
    }
}

#[test]
fn deliveries_are_cancelled_or_kept_without_what_they_carried_and_the_erasure_waits_for_tries_in_flight() {
    let rules = rules();
    let (survivor, merged) = ada();
    let lease = NOW + time::Duration::seconds(30);
    let rows = Rows {
        deliveries: vec![
            outbox("d1", &survivor, "hook", OutboxState::Delivered, 1),
            outbox("d2", &survivor, "audit", OutboxState::Stopped, 1),
            OutboxRow { lease_until: Some(lease), ..outbox("d3", &survivor, "crm", OutboxState::Pending, 0) },
            // Never tried, and a claim that ran out: the destination never heard of them.
            OutboxRow {
                lease_until: Some(NOW - time::Duration::seconds(1)),
                ..outbox("d4", &merged, "other", OutboxState::Pending, 0)
            },
        ],
        attempts: vec![
            AttemptRow { id: 1, delivery: "d1".into(), holds_text: true },
            AttemptRow { id: 2, delivery: "d2".into(), holds_text: true },
            AttemptRow { id: 3, delivery: "d1".into(), holds_text: false },
        ],
        ..Rows::default()
    };
    let erased = named(&rules, &survivor, &merged, Traces::default()).finish(rows);
    let w = writes(&erased.changes);
    assert!(w.contains(&&Write::CancelDeliveries(vec!["d2".into(), "d3".into(), "d4".into()])));
    assert!(w.contains(&&Write::ScrubAttempts(vec![1])));
    let kept = Write::Delivered { id: "d1".into(), payload: json!({"id": survivor.id, "erased": true}), at: NOW };
    assert!(w.contains(&&kept));
    let r = &erased.receipt;
    assert_eq!((count(r, "outbox"), count(r, "delivery_attempts")), ((1, 3), (1, 1)));
    assert_eq!(r.destinations, ["hook", "crm"], "audit is not subscribed to erasures");

    let recorded = erased.changes.iter().find_map(|c| match c {
        Change::History { entry: HistoryEntry { event: LeadEvent::Erased { delivered_to, .. }, .. }, .. } => {
            Some(delivered_to.clone())
        }
        _ => None,
    });
    assert_eq!(recorded, Some(vec!["audit".into(), "crm".into(), "hook".into()]), "delivered, tried, in flight");
    // Each erasure delivery is written, then held back while a try to its destination may
    // still be under way.
    let mut held = Vec::new();
    for pair in erased.changes.windows(2) {
        if let [Change::Delivery(d), next] = pair {
            let not_before = match next {
                Change::Erase(Write::NotBefore { delivery, at }) if *delivery == d.id => Some(*at),
                _ => None,
            };
            held.push((d.destination.as_str(), not_before));
        }
    }
    held.sort_unstable();
    assert_eq!(held, [("crm", Some(lease)), ("hook", None)]);
    // The cancellation comes after the deliveries are read, before the new ones exist.
    let cancel = erased.changes.iter().position(|c| matches!(c, Change::Erase(Write::CancelDeliveries(_))));
    let first = erased.changes.iter().position(|c| matches!(c, Change::Delivery(_)));
    assert!(cancel < first, "{cancel:?} {first:?}");
}

#[test]
fn import_reports_lose_the_persons_external_ids_once() {
    let rules = rules();
    let (survivor, merged) = ada();
    let import = ImportId::new();
    let report =
        format!("row,external_id,outcome,lead_id,errors\n2,crm-ada,created,{},\n3,bob,created,L9,\n", merged.id);
    let untouched = (ImportId::new(), b"row,external_id,outcome,lead_id,errors\n2,bob,created,L9,\n".to_vec());
    let rows = Rows {
        // Found by two needles: the lead id and the external id.
        reports: vec![(import, report.clone().into_bytes()), (import, report.into_bytes()), untouched],
        ..Rows::default()
    };
    let erased = named(&rules, &survivor, &merged, Traces::default()).finish(rows);
    let reports: Vec<(ImportId, String)> = writes(&erased.changes)
        .into_iter()
        .filter_map(|w| match w {
            Write::Report { import, report } => Some((*import, String::from_utf8(report.clone()).unwrap())),
            _ => None,
        })
        .collect();
    let expected = format!("row,external_id,outcome,lead_id,errors\n2,,created,{},\n3,bob,created,L9,\n", merged.id);
    assert_eq!(reports, [(import, expected)]);
    assert_eq!(count(&erased.receipt, "imports"), (1, 0));
}
