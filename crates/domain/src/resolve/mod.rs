//! Resolve: decides whether a candidate is a new person or one we already know.
//!
//! The store looks candidates up by their match keys (indexed, so a lookup never scans
//! all leads) and hands the found leads to [`decide`]. Today the rule is exact email,
//! compared after normalization (case and surrounding space ignored). A wrong merge mixes
//! two people's data and consent, so every rule must be certain or leave the lead alone.

pub mod merge;

use crate::email::Email;
use crate::ids::LeadId;
use crate::lead::Lead;
use crate::normalize::Candidate;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    ExactEmail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Create,
    Merge { into: LeadId, rule: MatchRule },
}

/// The exact key the store indexes leads by, if the candidate has one.
pub fn email_key(c: &Candidate) -> Option<&Email> {
    c.fields.email.as_ref()
}

/// Picks the lead the candidate belongs to among those the store found by its keys.
pub fn decide(candidate: &Candidate, found: &[Lead]) -> Decision {
    let Some(email) = email_key(candidate) else {
        return Decision::Create;
    };
    found
        .iter()
        .find(|lead| lead.fields.email.as_ref() == Some(email))
        .map_or(Decision::Create, |lead| Decision::Merge { into: lead.id, rule: MatchRule::ExactEmail })
}
