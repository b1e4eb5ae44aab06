//! Merge: folds a new submission into the lead it matched.
//!
//! Survivorship today: existing values are kept and empty fields are filled; custom fields
//! are added, never overwritten; consent follows the most recent explicit choice; the
//! original touch stays, the latest touch moves. The report says what changed, for the
//! lead's history.

use crate::attribute::Touchpoint;
use crate::lead::Lead;
use crate::normalize::Candidate;
use time::OffsetDateTime;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub filled: Vec<String>,
    pub consent_updated: bool,
}

pub fn merge(lead: &mut Lead, candidate: Candidate, touch: Touchpoint, now: OffsetDateTime) -> MergeReport {
    let mut report = MergeReport::default();
    let filled = lead.fields.fill_empty_from(&candidate.fields);
    for field in &filled {
        if let Some(raw) = candidate.raw.get(*field) {
            lead.raw.insert((*field).to_owned(), raw.clone());
        }
        lead.issues.retain(|i| i.field != *field);
        lead.issues.extend(candidate.issues.iter().filter(|i| i.field == *field).cloned());
    }
    let extension =
        if filled.contains(&"phone") { candidate.derived.phone_extension } else { lead.derived.phone_extension.take() };
    report.filled = filled.into_iter().map(str::to_owned).collect();
    for (key, value) in candidate.custom {
        if !lead.custom.contains_key(&key) {
            report.filled.push(format!("custom.{key}"));
            lead.custom.insert(key, value);
        }
    }
    if let Some(new) = candidate.consent {
        let newer = match (&lead.consent, new.at) {
            (None, _) => true,
            (Some(old), Some(at)) => old.at.is_none_or(|old_at| at >= old_at),
            // An undated choice arriving now is the most recent one.
            (Some(_), None) => true,
        };
        if newer && lead.consent.as_ref() != Some(&new) {
            lead.consent = Some(new);
            report.consent_updated = true;
        }
    }
    lead.derived = crate::normalize::derive(&lead.fields, extension);
    lead.attribution.record(touch);
    lead.version += 1;
    lead.updated_at = now;
    report
}
