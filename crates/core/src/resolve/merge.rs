//! Merge: folds a new submission into the lead it matched.
//!
//! Survivorship is configured per field ([`Survivorship`]): by default existing values are
//! kept and empty fields are filled; `newest` lets the newer value win; `source_priority`
//! lets the value from the more trusted source win. Custom fields are added, never
//! overwritten; consent follows the most recent explicit choice; the original touch stays,
//! the latest touch moves. The report says what changed, for the lead's history.

use crate::attribute::Touchpoint;
use crate::lead::Lead;
use crate::normalize::{Candidate, LegalSuffixes};
use crate::source::SourceName;
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub filled: Vec<String>,
    /// Fields whose value a newer or more trusted one replaced.
    pub replaced: Vec<String>,
    pub consent_updated: bool,
}

/// How a field that both the lead and the newcomer have is settled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rule {
    /// The lead keeps its value; only empty fields are filled.
    #[default]
    KeepExisting,
    /// The newest non-empty value wins.
    Newest,
    /// The value from the source ranked higher in `source_priority` wins; between equal
    /// ranks the lead keeps its value.
    SourcePriority,
}

impl Rule {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep_existing" => Some(Self::KeepExisting),
            "newest" => Some(Self::Newest),
            "source_priority" => Some(Self::SourcePriority),
            _ => None,
        }
    }
}

/// Field survivorship rules, from `[matching.survivorship]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survivorship {
    pub default: Rule,
    pub fields: BTreeMap<String, Rule>,
    /// Most trusted first; unlisted sources rank below every listed one.
    pub source_priority: Vec<SourceName>,
}

impl Survivorship {
    pub fn rule(&self, field: &str) -> Rule {
        self.fields.get(field).copied().unwrap_or(self.default)
    }

    fn rank(&self, source: &SourceName) -> usize {
        self.source_priority.iter().position(|s| s == source).unwrap_or(self.source_priority.len())
    }

    /// Whether `incoming`'s value replaces the one `held_by` gave.
    fn replaces(&self, field: &str, held_by: &SourceName, incoming: &SourceName) -> bool {
        match self.rule(field) {
            Rule::KeepExisting => false,
            Rule::Newest => true,
            Rule::SourcePriority => self.rank(incoming) < self.rank(held_by),
        }
    }
}

/// The source that gave a field its current value.
fn held_by<'a>(lead: &'a Lead, field: &str) -> &'a SourceName {
    lead.provenance.get(field).unwrap_or(&lead.attribution.original.source)
}

fn record_provenance(lead: &mut Lead, fields: &[&str], source: &SourceName) {
    for field in fields {
        if *source == lead.attribution.original.source {
            lead.provenance.remove(*field);
        } else {
            lead.provenance.insert((*field).to_owned(), source.clone());
        }
    }
}

pub fn merge(
    lead: &mut Lead,
    candidate: Candidate,
    touch: Touchpoint,
    now: OffsetDateTime,
    rules: &Survivorship,
    legal_suffixes: &LegalSuffixes,
) -> MergeReport {
    let mut report = MergeReport::default();
    let incoming = touch.source.clone();
    let holders: BTreeMap<&'static str, SourceName> =
        crate::lead::STANDARD_FIELDS.iter().map(|f| (*f, held_by(lead, f).clone())).collect();
    let (filled, replaced) = lead.fields.survive_from(&candidate.fields, |field| {
        holders.get(field).is_some_and(|held| rules.replaces(field, held, &incoming))
    });
    record_provenance(lead, &filled, &incoming);
    record_provenance(lead, &replaced, &incoming);
    for field in filled.iter().chain(&replaced) {
        if let Some(raw) = candidate.raw.get(*field) {
            lead.raw.insert((*field).to_owned(), raw.clone());
        }
        lead.issues.retain(|i| i.field != *field);
        lead.issues.extend(candidate.issues.iter().filter(|i| i.field == *field).cloned());
    }
    let extension = if filled.contains(&"phone") || replaced.contains(&"phone") {
        candidate.derived.phone_extension
    } else {
        lead.derived.phone_extension.take()
    };
    report.filled = filled.into_iter().map(str::to_owned).collect();
    report.replaced = replaced.into_iter().map(str::to_owned).collect();
    for (key, value) in candidate.custom {
        if !lead.custom.contains_key(&key) {
            report.filled.push(format!("custom.{key}"));
            lead.custom.insert(key, value);
        }
    }
    if let Some(new) = candidate.consent {
        report.consent_updated = crate::consent::merge_submission(&mut lead.consent, new);
    }
    lead.derived = crate::normalize::derive_with(&lead.fields, extension, legal_suffixes);
    lead.attribution.record(touch);
    lead.version += 1;
    lead.updated_at = now;
    report
}

/// Folds `absorbed`, another stored lead, into `survivor` (a review decision): the
/// survivor keeps its values and gains the ones it lacked, custom fields are added,
/// consent takes the least permissive choice per purpose ([`crate::consent::combine`]), the earlier original touch and the
/// later latest touch are kept, and touches add up.
pub fn absorb(
    survivor: &mut Lead,
    absorbed: &Lead,
    now: OffsetDateTime,
    legal_suffixes: &LegalSuffixes,
) -> MergeReport {
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
    crate::engagement::attendance::combine(&mut survivor.attendance, &absorbed.attendance);
    for (key, value) in &absorbed.custom {
        if !survivor.custom.contains_key(key) {
            report.filled.push(format!("custom.{key}"));
            survivor.custom.insert(key.clone(), value.clone());
        }
    }
    if let Some(theirs) = &absorbed.consent {
        report.consent_updated = crate::consent::combine(&mut survivor.consent, theirs);
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
    survivor.derived = crate::normalize::derive_with(&survivor.fields, extension, legal_suffixes);
    survivor.version += 1;
    survivor.updated_at = now;
    report
}
