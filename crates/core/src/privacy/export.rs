//! export: the subject access document, everything leadflow holds about one person.
//!
//! The app loads, a page at a time, what the store keeps about a lead and every lead
//! merged into it (directly or through others); [`assemble`] puts it in one document
//! in a fixed order, oldest first in each section. A merged-away id exports its survivor
//! (`requested_id` says which id was asked for, `lead.id` which lead answers). An erased
//! lead has nothing left to export: [`Refused::Erased`].
//!
//! Nothing is dropped silently: a section whose read stopped at [`MAX_SECTION_ROWS`] is
//! named in `incomplete` with the limit, so the reader knows to ask for the rest.

use crate::attribute::Touchpoint;
use crate::engagement::Event;
use crate::error::FieldError;
use crate::feedback::{Feedback, FeedbackResult};
use crate::ids::{FeedbackId, LeadId, ReviewId, SubmissionId};
use crate::lead::Lead;
use crate::merges::Review;
use crate::pipeline::HistoryEntry;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// The document's shape; raised when a field changes meaning or goes.
pub const FORMAT_VERSION: u32 = 1;

/// The most rows one section holds: far above any real person's history, it keeps one
/// export from exhausting the server's memory. A section that reaches it is listed in
/// `incomplete`.
pub const MAX_SECTION_ROWS: usize = 100_000;

/// The sections that are read a page at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Submissions,
    Events,
    Deliveries,
    Feedback,
}

impl Section {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Submissions => "submissions",
            Self::Events => "events",
            Self::Deliveries => "deliveries",
            Self::Feedback => "feedback",
        }
    }
}

/// A raw submission of the person, as received, with what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Submission {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: SubmissionId,
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: OffsetDateTime,
    /// `processed`, `pending` or `rejected` (quarantined).
    pub status: String,
    /// The lead it settled into (a merged record's id, if it later merged).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub lead_id: Option<LeadId>,
    /// Why it was quarantined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The payload as received; `{}` once retention cleared it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Map<String, Value>,
}

/// One try at a delivery.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub attempt: u32,
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Bounded excerpts, without credentials.
    pub request: Option<String>,
    pub response: Option<String>,
}

/// A delivery to a destination: what was sent, and each try.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: String,
    pub destination: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub lead_id: LeadId,
    pub event_type: String,
    pub status: String,
    /// What was (or is to be) sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    pub attempts: Vec<Attempt>,
}

/// A possible duplicate review naming one of the person's leads.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SubjectReview))]
pub struct ReviewOut {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: ReviewId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub lead_id: LeadId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub candidate_id: LeadId,
    pub score: f64,
    pub status: String,
    /// The per-field comparison that proposed it.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub evidence: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<OffsetDateTime>,
}

/// What a CRM said about the person, as received, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SubjectFeedback))]
pub struct FeedbackOut {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: FeedbackId,
    pub source: String,
    pub event_id: Option<String>,
    pub status: Option<String>,
    pub crm_status: Option<String>,
    pub reason: Option<String>,
    pub owner: Option<String>,
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: OffsetDateTime,
    /// The item as the CRM sent it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
}

/// A section that reached [`MAX_SECTION_ROWS`]: the document holds the oldest rows only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incomplete {
    pub section: String,
    pub limit: usize,
}

/// What the store loaded about the person.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub requested_id: Option<LeadId>,
    /// The lead the requested id names, followed through merges.
    pub lead: Option<Lead>,
    /// Every lead merged into it, directly or through others.
    pub merged_records: Vec<Lead>,
    pub submissions: Vec<Submission>,
    /// The history of the lead and of each merged record.
    pub history: Vec<HistoryEntry>,
    pub events: Vec<Event>,
    pub touchpoints: Vec<Touchpoint>,
    pub deliveries: Vec<Delivery>,
    pub reviews: Vec<Review>,
    pub feedback: Vec<(Feedback, FeedbackResult)>,
    /// The consent ledger of the lead and its merged records, each entry with its record.
    pub consent: Vec<(LeadId, crate::consent::Entry)>,
    /// Sections whose reading stopped at [`MAX_SECTION_ROWS`].
    pub capped: BTreeSet<Section>,
}

/// Everything held about one person.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub format_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub generated_at: OffsetDateTime,
    /// The id asked for; `lead.id` differs when it was merged into another lead.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub requested_id: LeadId,
    pub lead: Lead,
    /// Every lead merged into it, directly or through others, as stored.
    pub merged_records: Vec<Lead>,
    /// Every raw submission of the lead and of its merged records, oldest first.
    pub submissions: Vec<Submission>,
    /// The lead's and its merged records' history, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Behavioural events, oldest first.
    pub events: Vec<Event>,
    pub touchpoints: Vec<Touchpoint>,
    /// Deliveries to destinations with what was sent, oldest first.
    pub deliveries: Vec<Delivery>,
    /// Duplicate reviews naming the lead or a merged record.
    pub reviews: Vec<ReviewOut>,
    /// What CRMs said about the person.
    pub feedback: Vec<FeedbackOut>,
    /// The consent ledger: the current state per purpose and every choice recorded.
    pub consent: ConsentSection,
    /// Sections cut at the row limit; empty when the document is complete.
    pub incomplete: Vec<Incomplete>,
}

/// The person's consent: as it stands per purpose, and the ledger behind it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentSection {
    pub current: std::collections::BTreeMap<String, crate::consent::State>,
    /// Oldest first, each choice with the lead (or merged record) it was recorded on.
    pub history: Vec<ConsentEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentEntry {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub lead_id: LeadId,
    #[serde(flatten)]
    pub entry: crate::consent::Entry,
}

/// Why there is no document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Nothing was loaded: no such lead.
    NotFound,
    /// The lead was erased: only its tombstone is kept, and it describes nobody.
    Erased(LeadId),
}

/// The document, from what was loaded; every section oldest first, and only what names
/// the person's leads (the lead and its merged records).
pub fn assemble(loaded: Loaded, now: OffsetDateTime) -> Result<Document, Refused> {
    let Loaded {
        requested_id,
        lead,
        mut merged_records,
        mut submissions,
        mut history,
        mut events,
        touchpoints,
        mut deliveries,
        reviews,
        mut feedback,
        consent,
        capped,
    } = loaded;
    let lead = lead.ok_or(Refused::NotFound)?;
    if lead.erased_at.is_some() {
        return Err(Refused::Erased(lead.id));
    }
    merged_records.retain(|m| m.id != lead.id);
    merged_records.sort_by_key(|m| (m.created_at, m.id));
    merged_records.dedup_by_key(|m| m.id);
    let family: BTreeSet<LeadId> = std::iter::once(lead.id).chain(merged_records.iter().map(|m| m.id)).collect();
    let ours = |id: &Option<LeadId>| id.is_some_and(|id| family.contains(&id));

    submissions.retain(|s| ours(&s.lead_id));
    submissions.sort_by_key(|s| (s.received_at, s.id));
    history.retain(|h| family.contains(&h.lead_id));
    // Stable: entries at one instant keep the order they were written in.
    history.sort_by_key(|h| h.at);
    events.retain(|e| ours(&e.lead_id));
    events.sort_by_key(|e| (e.occurred_at, e.id));
    deliveries.retain(|d| family.contains(&d.lead_id));
    deliveries.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    feedback.retain(|(_, r)| ours(&r.lead_id));
    feedback.sort_by_key(|(f, _)| (f.received_at, f.id));
    let mut reviews: Vec<ReviewOut> = reviews
        .into_iter()
        .filter(|r| family.contains(&r.lead_id) || family.contains(&r.candidate_id))
        .map(review_out)
        .collect();
    reviews.sort_by_key(|r| (r.created_at, r.id));
    reviews.dedup_by_key(|r| r.id);

    let current = lead.consent.as_ref().map(|c| c.purposes.clone()).unwrap_or_default();
    Ok(Document {
        format_version: FORMAT_VERSION,
        generated_at: now,
        requested_id: requested_id.unwrap_or(lead.id),
        lead,
        merged_records,
        submissions,
        history,
        events,
        touchpoints,
        deliveries,
        reviews,
        feedback: feedback.into_iter().map(feedback_out).collect(),
        consent: ConsentSection {
            current,
            history: consent
                .into_iter()
                .filter(|(id, _)| family.contains(id))
                .map(|(lead_id, entry)| ConsentEntry { lead_id, entry })
                .collect(),
        },
        incomplete: capped
            .into_iter()
            .map(|s| Incomplete { section: s.as_str().to_owned(), limit: MAX_SECTION_ROWS })
            .collect(),
    })
}

fn review_out(r: Review) -> ReviewOut {
    ReviewOut {
        id: r.id,
        lead_id: r.lead_id,
        candidate_id: r.candidate_id,
        score: r.score,
        status: r.status.as_str().to_owned(),
        evidence: serde_json::to_value(&r.evidence).unwrap_or(Value::Null),
        created_at: r.created_at,
        decided_at: r.decided_at,
    }
}

fn feedback_out((f, r): (Feedback, FeedbackResult)) -> FeedbackOut {
    let status = f.status.and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_owned));
    FeedbackOut {
        id: f.id,
        source: f.source,
        event_id: f.event_id,
        status,
        crm_status: f.crm_status,
        reason: f.reason,
        owner: f.owner,
        outcome: r.outcome.as_str().to_owned(),
        occurred_at: f.occurred_at,
        received_at: f.received_at,
        payload: f.payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::Identity;
    use crate::ids::EventId;
    use time::macros::datetime;

    fn lead(created: OffsetDateTime) -> Lead {
        let mut lead = crate::testing::lead("ada@example.com");
        lead.id = LeadId::new();
        lead.created_at = created;
        lead
    }

    fn submission(lead: LeadId, at: OffsetDateTime) -> Submission {
        Submission {
            id: SubmissionId::new(),
            source: "api".into(),
            received_at: at,
            status: "processed".into(),
            lead_id: Some(lead),
            errors: Vec::new(),
            payload: Map::new(),
        }
    }

    fn event(lead: LeadId, at: OffsetDateTime) -> Event {
        Event {
            id: EventId::new(),
            kind: "page_view".into(),
            occurred_at: at,
            url: None,
            properties: Map::new(),
            lead_id: Some(lead),
            identity: Identity::default(),
        }
    }

    #[test]
    fn a_merged_away_id_exports_its_survivor_with_every_record_oldest_first() {
        let survivor = lead(datetime!(2025-01-01 0:00 UTC));
        let absorbed = lead(datetime!(2025-02-01 0:00 UTC));
        let stranger = LeadId::new();
        let loaded = Loaded {
            requested_id: Some(absorbed.id),
            lead: Some(survivor.clone()),
            merged_records: vec![absorbed.clone(), survivor.clone(), absorbed.clone()],
            submissions: vec![
                submission(absorbed.id, datetime!(2025-02-01 0:00 UTC)),
                submission(survivor.id, datetime!(2025-01-01 0:00 UTC)),
                submission(stranger, datetime!(2025-01-15 0:00 UTC)),
            ],
            events: vec![
                event(survivor.id, datetime!(2025-03-01 0:00 UTC)),
                event(absorbed.id, datetime!(2025-02-02 0:00 UTC)),
            ],
            ..Loaded::default()
        };
        let doc = assemble(loaded, datetime!(2025-04-01 0:00 UTC)).unwrap();
        assert_eq!((doc.requested_id, doc.lead.id), (absorbed.id, survivor.id));
        assert_eq!(
            doc.merged_records.iter().map(|m| m.id).collect::<Vec<_>>(),
            [absorbed.id],
            "itself and repeats left out"
        );
        let received: Vec<_> = doc.submissions.iter().map(|s| (s.lead_id, s.received_at)).collect();
        assert_eq!(
            received,
            [(Some(survivor.id), datetime!(2025-01-01 0:00 UTC)), (Some(absorbed.id), datetime!(2025-02-01 0:00 UTC))],
            "another person's submission is not theirs to see"
        );
        assert_eq!(doc.events[0].lead_id, Some(absorbed.id));
        assert_eq!(
            (doc.format_version, doc.consent.clone(), doc.incomplete.clone()),
            (FORMAT_VERSION, ConsentSection::default(), vec![])
        );
    }

    #[test]
    fn an_erased_lead_has_nothing_to_export() {
        let mut erased = lead(datetime!(2025-01-01 0:00 UTC));
        erased.erased_at = Some(datetime!(2025-03-01 0:00 UTC));
        let loaded = Loaded { lead: Some(erased.clone()), ..Loaded::default() };
        assert_eq!(assemble(loaded, datetime!(2025-04-01 0:00 UTC)), Err(Refused::Erased(erased.id)));
        assert_eq!(assemble(Loaded::default(), datetime!(2025-04-01 0:00 UTC)), Err(Refused::NotFound));
    }

    #[test]
    fn a_section_cut_at_the_limit_is_named_in_the_document() {
        let l = lead(datetime!(2025-01-01 0:00 UTC));
        let loaded = Loaded { lead: Some(l), capped: [Section::Events].into(), ..Loaded::default() };
        let doc = assemble(loaded, datetime!(2025-04-01 0:00 UTC)).unwrap();
        assert_eq!(doc.incomplete, [Incomplete { section: "events".into(), limit: MAX_SECTION_ROWS }]);
    }
}
