//! erase: what is left of a person once they asked to be forgotten.
//!
//! Erasure keeps a tombstone of each lead (its id, when it was created, its stage, score
//! and owner, and the source and campaign that brought it) so reports still count it and
//! anything naming the lead gets a clear answer; everything that describes or identifies
//! the person goes. This module says what each kind of row keeps; [`plan`] decides, over
//! what the store loaded, which rows an erasure touches and returns the writes, which the
//! store applies in the one transaction that erases the lead, every lead merged into it
//! and every row that holds their data.
//!
//! Pure and total: nothing here can fail, and applying a function twice changes nothing
//! more than applying it once.

use crate::attribute::{Attribution, Touchpoint};
use crate::feedback::{Feedback, FeedbackIdentity};
use crate::ids::LeadId;
use crate::lead::{Derived, Lead, LeadFields};
use crate::pipeline::LeadEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub mod plan;

/// A CRM's own id of a record a destination made for the lead: the destination deletes
/// it when it hears of the erasure.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrmRecord {
    /// The destination's configured name.
    pub destination: String,
    pub crm_id: String,
}

/// The lead as a tombstone: no field, custom value, consent, raw value, derived value or
/// score breakdown is left; the stage, score and owner stay, and the attribution keeps
/// the sources and campaigns ([`scrub_touchpoint`]). The lead leaves its account: which
/// company a person worked for is theirs. `custom.test` survives when set, so a test lead
/// stays out of the reports once erased.
pub fn tombstone(lead: &Lead, now: OffsetDateTime) -> Lead {
    let mut custom = Map::new();
    if lead.custom.get("test") == Some(&Value::Bool(true)) {
        custom.insert("test".to_owned(), Value::Bool(true));
    }
    let a = &lead.attribution;
    Lead {
        id: lead.id,
        fields: LeadFields::default(),
        custom,
        consent: None,
        raw: Map::new(),
        issues: Vec::new(),
        derived: Derived::default(),
        attribution: Attribution {
            original: scrub_touchpoint(&a.original),
            latest: scrub_touchpoint(&a.latest),
            touch_count: a.touch_count,
        },
        lifecycle_stage: lead.lifecycle_stage.clone(),
        stage_entered_at: lead.stage_entered_at,
        score: lead.score,
        score_detail: None,
        owner: lead.owner.clone(),
        provenance: BTreeMap::new(),
        account_id: None,
        attendance: Vec::new(),
        version: lead.version + 1,
        created_at: lead.created_at,
        updated_at: now,
        erased_at: Some(lead.erased_at.unwrap_or(now)),
    }
}

/// A touchpoint without what the person's own browser or inbox put in it: the referrer
/// and landing URLs (their query strings carry emails and tokens), click ids (each names
/// one person's click), and `utm_content` and `utm_term`, where per-recipient values
/// end up in practice. The source, channel, campaign and ad ids stay for the reports.
pub fn scrub_touchpoint(t: &Touchpoint) -> Touchpoint {
    Touchpoint {
        source: t.source.clone(),
        channel: t.channel.clone(),
        submission_id: t.submission_id,
        at: t.at,
        utm_source: t.utm_source.clone(),
        utm_medium: t.utm_medium.clone(),
        utm_campaign: t.utm_campaign.clone(),
        utm_content: None,
        utm_term: None,
        referrer_url: None,
        landing_page_url: None,
        ad_ids: t.ad_ids.clone(),
        click_ids: BTreeMap::new(),
    }
}

/// A history entry's event without personal data: the snapshots kept to undo a merge
/// (whole leads) go, and so do routing's step-by-step explanations (they quote the
/// lead's territory). Kinds, ids, sources, stages, owners and match explanations (field
/// names and weights, never values) stay.
pub fn scrub_event(event: LeadEvent) -> LeadEvent {
    match event {
        LeadEvent::Merged { submission_id, source, explanation, filled, replaced, consent_updated, .. } => {
            LeadEvent::Merged { submission_id, source, explanation, filled, replaced, consent_updated, before: None }
        }
        LeadEvent::Absorbed { absorbed, explanation, filled, .. } => {
            LeadEvent::Absorbed { absorbed, explanation, filled, before: None }
        }
        LeadEvent::Assigned { owner, previous, trigger, rule, via, sla_due_at, .. } => {
            LeadEvent::Assigned { owner, previous, trigger, rule, via, steps: Vec::new(), sla_due_at }
        }
        other => other,
    }
}

/// The ways a person was named, gathered from their leads (and the earlier states the
/// history kept of them, their visitor ids and CRM records), to find what was stored
/// before it was tied to a lead: events waiting for the person, quarantined or pending
/// submissions, unmatched CRM feedback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identifiers {
    /// Lowercased and trimmed, as normalized emails are.
    pub emails: BTreeSet<String>,
    pub external_ids: BTreeSet<String>,
    /// Browser visitor ids the leads converted from.
    pub visitors: BTreeSet<String>,
    /// The CRM records linked to the leads.
    pub crm_records: BTreeSet<CrmRecord>,
}

impl Identifiers {
    /// Adds the lead's email and external id, normalized and as received.
    pub fn add_lead(&mut self, lead: &Lead) {
        if let Some(email) = &lead.fields.email {
            self.emails.insert(email.as_str().to_owned());
        }
        if let Some(Value::String(raw)) = lead.raw.get("email") {
            let raw = raw.trim().to_lowercase();
            if raw.contains('@') {
                self.emails.insert(raw);
            }
        }
        let raw_external = match lead.raw.get("external_id") {
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        for external in lead.fields.external_id.iter().cloned().chain(raw_external) {
            if !external.is_empty() {
                self.external_ids.insert(external);
            }
        }
    }

    /// Adds the earlier states a history entry kept of the lead.
    pub fn add_event(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::Merged { before: Some(lead), .. } | LeadEvent::Absorbed { before: Some(lead), .. } => {
                self.add_lead(lead);
            }
            _ => {}
        }
    }

    /// An event's identity names the person: its email as received (any case, stray
    /// spaces), its external id or its visitor id.
    pub fn name(&self, email: Option<&str>, external_id: Option<&str>, anonymous_id: Option<&str>) -> bool {
        email.is_some_and(|e| self.emails.contains(&e.trim().to_lowercase()))
            || external_id.is_some_and(|e| self.external_ids.contains(e))
            || anonymous_id.is_some_and(|a| self.visitors.contains(a))
    }

    /// Feedback names the person by email, external id or one of their CRM records (the
    /// record id alone is not enough: another CRM may use the same one).
    pub fn name_feedback(&self, identity: &FeedbackIdentity) -> bool {
        let record = match (&identity.crm_destination, &identity.crm_id) {
            (Some(destination), Some(crm_id)) => {
                Some(CrmRecord { destination: destination.clone(), crm_id: crm_id.clone() })
            }
            _ => None,
        };
        self.name(identity.email.as_ref().map(|e| e.as_str()), identity.external_id.as_deref(), None)
            || record.is_some_and(|r| self.crm_records.contains(&r))
    }

    /// How a stored payload mentions one of the emails: each as a JSON string literal, so
    /// that a longer address that contains it (`xada@…` for `ada@…`) is not taken for it.
    pub fn mentions(&self) -> Vec<String> {
        self.emails.iter().map(|e| Value::String(e.clone()).to_string()).collect()
    }

    /// A payload as stored (JSON text) mentions one of the emails, in any case.
    pub fn mentioned_in(&self, payload: &str) -> bool {
        let payload = payload.to_lowercase();
        self.mentions().iter().any(|m| payload.contains(m.as_str()))
    }
}

/// Feedback as kept once its lead is erased, or when it names an erased lead: what became
/// of it, the status, reason and owner, and the lead and CRM record ids; not the email,
/// the external id or anything else the CRM sent.
pub fn scrub_feedback(fb: &Feedback) -> Feedback {
    let identity = FeedbackIdentity {
        lead_id: fb.identity.lead_id,
        crm_id: fb.identity.crm_id.clone(),
        crm_destination: fb.identity.crm_destination.clone(),
        email: None,
        external_id: None,
    };
    Feedback { identity, payload: Value::Null, ..fb.clone() }
}

/// An import report (`row,external_id,outcome,lead_id,errors`, as the import writes it)
/// with the external id blanked on every line about one of `leads` or naming one of
/// `external_ids`; the line stays, so the report still adds up. `None` when no line is
/// about the person (or the report cannot be read as one). The errors column names
/// fields, never their values, and stays.
pub fn blank_report(
    report: &[u8],
    leads: &BTreeSet<String>,
    external_ids: &BTreeSet<String>,
) -> Option<(Vec<u8>, u64)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(report);
    let mut records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().ok()?;
    let header = records.first()?;
    let column = |name: &str| header.iter().position(|h| h == name);
    let (external, lead) = (column("external_id")?, column("lead_id")?);
    let mut blanked = 0;
    for record in records.iter_mut().skip(1) {
        let about_lead = record.get(lead).is_some_and(|l| leads.contains(l));
        let names_person = record.get(external).is_some_and(|e| {
            // The report neutralizes cells a spreadsheet would run: `'=x` was `=x`.
            let plain = e.strip_prefix('\'').filter(|rest| rest.starts_with(['=', '+', '-', '@', '\t', '\r']));
            external_ids.contains(plain.unwrap_or(e))
        });
        if (about_lead || names_person) && record.get(external).is_some_and(|e| !e.is_empty()) {
            *record = record.iter().enumerate().map(|(i, cell)| if i == external { "" } else { cell }).collect();
            blanked += 1;
        }
    }
    if blanked == 0 {
        return None;
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in &records {
        writer.write_record(record).ok()?;
    }
    Some((writer.into_inner().ok()?, blanked))
}

/// What an `erased` delivery carries: the lead's id, the ids merged into it, the CRM
/// records known for them and the destinations that received the person's data, so a
/// destination can erase its own copies (or say that it cannot). Nothing personal. `None`
/// for any other event.
pub fn payload(lead: LeadId, erased_at: OffsetDateTime, event: &LeadEvent) -> Option<Value> {
    let LeadEvent::Erased { merged, crm_records, delivered_to, .. } = event else { return None };
    Some(json!({
        "id": lead,
        "erased_at": erased_at.format(&Rfc3339).unwrap_or_default(),
        "merged_ids": merged,
        "crm_records": crm_records,
        "delivered_to": delivered_to,
    }))
}

/// Adds a CRM record learnt after the erasure to an erased payload; `false` when it was
/// there already.
pub fn add_crm_record(payload: &mut Value, record: &CrmRecord) -> bool {
    let Some(records) = payload.get_mut("crm_records").and_then(Value::as_array_mut) else { return false };
    let value = json!({"destination": record.destination, "crm_id": record.crm_id});
    if records.contains(&value) {
        return false;
    }
    records.push(value);
    true
}

/// What a delivered event is replaced with once its lead is erased: the audit keeps that
/// it was sent, and to whom, but not what it said.
pub fn delivered_payload(lead: LeadId) -> Value {
    json!({"id": lead, "erased": true})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Picklists, SourceConfig};
    use crate::ids::SubmissionId;
    use crate::pipeline::{SubmissionMeta, prepare, resolve_and_settle};
    use crate::resolve::Model;
    use crate::source::SourceName;

    fn lead() -> Lead {
        let payload = json!({
            "email": "Ada.Lovelace@Example.com", "first_name": "Ada", "last_name": "Lovelace",
            "phone": "+44 20 7123 4567", "company": "Analytical Engines", "city": "London",
            "external_id": "crm-77", "utm_source": "google", "utm_campaign": "spring",
            "utm_term": "ada lovelace", "landing_page_url": "https://example.com/?email=ada@example.com",
            "custom": {"gclid": "abc123", "test": true, "notes": "prefers tea"},
            "consent": {"granted": true, "source": "form"},
        });
        let candidate =
            prepare(payload.as_object().unwrap(), &SourceConfig::api(), &Picklists::default()).expect("valid");
        let meta = SubmissionMeta {
            id: SubmissionId::new(),
            source: SourceName::api(),
            received_at: OffsetDateTime::now_utc(),
        };
        let mut lead = resolve_and_settle(candidate, &meta, vec![], &Model::default(), OffsetDateTime::now_utc()).lead;
        lead.score = Some(42);
        lead.owner = Some("rep-1".into());
        lead
    }

    #[test]
    fn a_tombstone_keeps_stage_score_owner_and_campaign_and_nothing_personal() {
        let lead = lead();
        let now = OffsetDateTime::now_utc();
        let t = tombstone(&lead, now);
        assert_eq!(
            (t.id, t.created_at, t.score, t.owner.as_deref()),
            (lead.id, lead.created_at, Some(42), Some("rep-1"))
        );
        assert_eq!(t.lifecycle_stage, lead.lifecycle_stage);
        assert_eq!(t.attribution.original.utm_campaign.as_deref(), Some("spring"));
        assert_eq!(t.attribution.original.source, SourceName::api());
        assert_eq!((t.version, t.erased_at), (lead.version + 1, Some(now)));
        let text = serde_json::to_string(&t).unwrap().to_lowercase();
        for personal in ["ada", "lovelace", "7123", "analytical", "london", "crm-77", "abc123", "tea", "email="] {
            assert!(!text.contains(personal), "{personal} is left in {text}");
        }
        assert_eq!(t.custom.get("test"), Some(&Value::Bool(true)), "a test lead stays out of reports");
    }

    #[test]
    fn erasing_twice_keeps_the_first_time() {
        let first = tombstone(&lead(), OffsetDateTime::UNIX_EPOCH);
        let again = tombstone(&first, OffsetDateTime::now_utc());
        assert_eq!(again.erased_at, Some(OffsetDateTime::UNIX_EPOCH));
        assert_eq!(again.fields, first.fields);
    }

    #[test]
    fn history_keeps_kinds_and_explanations_but_not_snapshots_or_steps() {
        let lead = lead();
        let merged = LeadEvent::Absorbed {
            absorbed: LeadId::new(),
            explanation: crate::resolve::Explanation {
                rule: crate::resolve::MatchRule::Reviewed,
                score: Some(0.9),
                evidence: vec![],
            },
            filled: vec!["phone".into()],
            before: Some(Box::new(lead)),
        };
        let scrubbed = scrub_event(merged);
        assert!(matches!(&scrubbed, LeadEvent::Absorbed { before: None, filled, .. } if filled == &["phone"]));
        assert!(!serde_json::to_string(&scrubbed).unwrap().contains("Lovelace"));
        let assigned = LeadEvent::Assigned {
            owner: "rep-1".into(),
            previous: None,
            trigger: "handoff".into(),
            rule: Some("emea".into()),
            via: "territory".into(),
            steps: vec!["territory GB-LND: rep-1".into()],
            sla_due_at: None,
        };
        assert!(matches!(scrub_event(assigned), LeadEvent::Assigned { steps, rule: Some(_), .. } if steps.is_empty()));
    }

    #[test]
    fn identifiers_come_from_the_lead_and_its_earlier_states() {
        let lead = lead();
        let mut ids = Identifiers::default();
        let mut earlier = lead.clone();
        earlier.fields.email = Some(crate::Email::parse("ada@old.example").unwrap());
        ids.add_lead(&lead);
        ids.add_event(&LeadEvent::Absorbed {
            absorbed: LeadId::new(),
            explanation: crate::resolve::Explanation {
                rule: crate::resolve::MatchRule::Reviewed,
                score: None,
                evidence: vec![],
            },
            filled: vec![],
            before: Some(Box::new(earlier)),
        });
        assert_eq!(
            ids.emails.iter().map(String::as_str).collect::<Vec<_>>(),
            ["ada.lovelace@example.com", "ada@old.example"]
        );
        assert_eq!(ids.external_ids.iter().map(String::as_str).collect::<Vec<_>>(), ["crm-77"]);
    }

    #[test]
    fn events_and_feedback_name_the_person_loosely_by_email_and_exactly_by_ids() {
        let mut who = Identifiers::default();
        who.add_lead(&lead());
        who.visitors.insert("vid-1".into());
        who.crm_records.insert(CrmRecord { destination: "crm".into(), crm_id: "51".into() });
        assert!(who.name(Some(" ADA.Lovelace@example.com "), None, None));
        assert!(who.name(None, Some("crm-77"), None) && who.name(None, None, Some("vid-1")));
        assert!(!who.name(Some("grace@example.com"), Some("CRM-77"), Some("vid-2")));
        let record = |destination: &str| FeedbackIdentity {
            crm_destination: Some(destination.into()),
            crm_id: Some("51".into()),
            ..FeedbackIdentity::default()
        };
        assert!(who.name_feedback(&record("crm")));
        assert!(!who.name_feedback(&record("other-crm")), "the same record id in another CRM is someone else");
        let by_email = FeedbackIdentity {
            email: Some(crate::Email::parse("ada.lovelace@example.com").unwrap()),
            ..FeedbackIdentity::default()
        };
        assert!(who.name_feedback(&by_email));
    }

    #[test]
    fn a_payload_mentions_the_email_only_as_a_whole_value() {
        let who = Identifiers { emails: BTreeSet::from(["ada@example.com".to_owned()]), ..Identifiers::default() };
        assert_eq!(who.mentions(), ["\"ada@example.com\""]);
        assert!(who.mentioned_in(r#"{"email":"ADA@example.com","first_name":"Ada"}"#));
        assert!(!who.mentioned_in(r#"{"email":"xada@example.com"}"#));
    }

    #[test]
    fn scrubbed_feedback_keeps_its_outcome_fields_and_ids_only() {
        let fb = Feedback {
            id: crate::FeedbackId::new(),
            source: "crm".into(),
            event_id: Some("e1".into()),
            identity: FeedbackIdentity {
                lead_id: Some(LeadId::new()),
                crm_id: Some("51".into()),
                crm_destination: Some("crm".into()),
                email: Some(crate::Email::parse("ada@example.com").unwrap()),
                external_id: Some("crm-77".into()),
            },
            status: Some(crate::feedback::FeedbackStatus::Won),
            crm_status: Some("closed".into()),
            target: Some("customer".into()),
            reason: None,
            owner: Some("rep-1".into()),
            ignored: None,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            received_at: OffsetDateTime::UNIX_EPOCH,
            payload: json!({"email": "ada@example.com"}),
        };
        let s = scrub_feedback(&fb);
        assert_eq!(
            (s.identity.email.as_ref(), s.identity.external_id.as_ref(), &s.payload),
            (None, None, &Value::Null)
        );
        assert_eq!((s.identity.lead_id, s.identity.crm_id.as_deref()), (fb.identity.lead_id, Some("51")));
        assert_eq!((s.status, s.owner.as_deref(), s.event_id.as_deref()), (fb.status, Some("rep-1"), Some("e1")));
        assert_eq!(scrub_feedback(&s), s, "scrubbing twice changes nothing more");
    }

    #[test]
    fn only_the_persons_report_lines_lose_their_external_id() {
        let report = "row,external_id,outcome,lead_id,errors\n\
                      2,crm-1,created,L1,\n\
                      3,crm-2,created,L2,\n\
                      4,'=crm-3,rejected,,email: not a valid email address\n";
        let leads = BTreeSet::from(["L1".to_owned()]);
        let external = BTreeSet::from(["=crm-3".to_owned()]);
        let (blanked, n) = blank_report(report.as_bytes(), &leads, &external).expect("changed");
        assert_eq!(n, 2);
        assert_eq!(
            String::from_utf8(blanked).unwrap(),
            "row,external_id,outcome,lead_id,errors\n2,,created,L1,\n3,crm-2,created,L2,\n4,,rejected,,email: not a valid email address\n"
        );
        assert!(blank_report(report.as_bytes(), &BTreeSet::from(["L9".to_owned()]), &BTreeSet::new()).is_none());
    }

    #[test]
    fn the_erased_payload_names_ids_only() {
        let (id, merged) = (LeadId::new(), LeadId::new());
        let records = [CrmRecord { destination: "hubspot-main".into(), crm_id: "51".into() }];
        let event = LeadEvent::Erased {
            actor: Some("dpo".into()),
            reason: Some("ticket 1".into()),
            merged: vec![merged],
            crm_records: records.to_vec(),
            delivered_to: vec!["hubspot-main".into()],
        };
        let p = payload(id, OffsetDateTime::UNIX_EPOCH, &event).expect("an erasure");
        assert_eq!(p["id"], id.to_string());
        assert_eq!(p["merged_ids"][0], merged.to_string());
        assert_eq!(p["crm_records"][0], json!({"destination": "hubspot-main", "crm_id": "51"}));
        assert_eq!(p["erased_at"], "1970-01-01T00:00:00Z");
        assert_eq!(p["delivered_to"], json!(["hubspot-main"]));
        assert!(p.get("reason").is_none() && p.get("actor").is_none(), "who asked and why stay here");
        assert!(payload(id, OffsetDateTime::UNIX_EPOCH, &LeadEvent::EventsAttached { count: 1 }).is_none());
        let mut p = p;
        let late = CrmRecord { destination: "salesforce".into(), crm_id: "00Q1".into() };
        assert!(add_crm_record(&mut p, &late));
        assert!(!add_crm_record(&mut p, &late));
        assert_eq!(p["crm_records"].as_array().map(Vec::len), Some(2));
    }
}
