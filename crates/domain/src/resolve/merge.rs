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

/// Folds `absorbed`, another stored lead, into `survivor` (a review decision): the
/// survivor keeps its values and gains the ones it lacked, custom fields are added,
/// consent follows the most recent explicit choice, the earlier original touch and the
/// later latest touch are kept, and touches add up.
pub fn absorb(survivor: &mut Lead, absorbed: &Lead, now: OffsetDateTime) -> MergeReport {
    let mut report = MergeReport::default();
    let filled = survivor.fields.fill_empty_from(&absorbed.fields);
    for field in &filled {
        if let Some(raw) = absorbed.raw.get(*field) {
            survivor.raw.insert((*field).to_owned(), raw.clone());
        }
        survivor.issues.retain(|i| i.field != *field);
        survivor.issues.extend(absorbed.issues.iter().filter(|i| i.field == *field).cloned());
    }
    let extension = if filled.contains(&"phone") {
        absorbed.derived.phone_extension.clone()
    } else {
        survivor.derived.phone_extension.take()
    };
    report.filled = filled.into_iter().map(str::to_owned).collect();
    for (key, value) in &absorbed.custom {
        if !survivor.custom.contains_key(key) {
            report.filled.push(format!("custom.{key}"));
            survivor.custom.insert(key.clone(), value.clone());
        }
    }
    if let Some(theirs) = &absorbed.consent {
        let newer = match &survivor.consent {
            None => true,
            Some(ours) => {
                matches!((ours.at, theirs.at), (Some(a), Some(b)) if b > a)
                    || (ours.at.is_none() && theirs.at.is_some())
            }
        };
        if newer {
            survivor.consent = Some(theirs.clone());
            report.consent_updated = true;
        }
    }
    let (mine, theirs) = (&mut survivor.attribution, &absorbed.attribution);
    if theirs.original.at < mine.original.at {
        mine.original = theirs.original.clone();
    }
    if theirs.latest.at > mine.latest.at {
        mine.latest = theirs.latest.clone();
    }
    mine.touch_count = mine.touch_count.saturating_add(theirs.touch_count);
    if survivor.account_id.is_none() {
        survivor.account_id = absorbed.account_id;
    }
    survivor.derived = crate::normalize::derive(&survivor.fields, extension);
    survivor.version += 1;
    survivor.updated_at = now;
    report
}
