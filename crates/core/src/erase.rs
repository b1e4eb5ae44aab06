//! erase: what is left of a person once they asked to be forgotten.
//!
//! Erasure keeps a tombstone of each lead (its id, when it was created, its stage, score
//! and owner, and the source and campaign that brought it) so reports still count it and
//! anything naming the lead gets a clear answer; everything that describes or identifies
//! the person goes. The store applies these functions inside the one transaction that
//! erases the lead, every lead merged into it and every row that holds their data.
//!
//! Pure and total: nothing here can fail, and applying a function twice changes nothing
//! more than applying it once.

use crate::attribute::{Attribution, Touchpoint};
use crate::ids::LeadId;
use crate::lead::{Derived, Lead, LeadFields};
use crate::pipeline::LeadEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
/// history kept of them), to find what was stored before it was tied to a lead: events
/// waiting for the person, quarantined or pending submissions, unmatched CRM feedback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identifiers {
    /// Lowercased and trimmed, as normalized emails are.
    pub emails: BTreeSet<String>,
    pub external_ids: BTreeSet<String>,
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
