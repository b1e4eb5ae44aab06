//! What one erasure writes, decided in steps over what the store loaded; the store loads
//! between the steps and applies the returned [`Change`]s in the same transaction:
//!
//! 1. [`Erase::family`]: the merge tree holding the lead (each lead with the one it was
//!    merged into) → the family to erase ([`family_of`]): the survivor the lead was merged
//!    into, through every hop, and every lead merged into it. A lead erased before is
//!    answered at once and nothing is written.
//! 2. [`Family::named`]: the family's history, visitor ids and CRM records, and the
//!    oldest unfinished import → refused while an import is unfinished (its stored file
//!    may hold the person's row); else every way the person was named, and
//!    [`Named::lookup`] says what to load next.
//! 3. [`Named::finish`]: the rows found ([`Rows`]) → the writes, in an order the foreign
//!    keys accept, and the receipt that counts them per table.
//!
//! A lookup may find more than the rules take (an email compared loosely, a text search
//! over payloads): each row found is judged here again, and only what names the person is
//! scrubbed or deleted. CRM links stay: they hold only ids, and a destination that made a
//! record for the person must still be told to delete it.

use super::{CrmRecord, Identifiers, blank_report, scrub_event, scrub_feedback, scrub_touchpoint, tombstone};
use crate::attribute::Touchpoint;
use crate::changes::{self, Change};
use crate::feedback::{Feedback, FeedbackResult};
use crate::ids::{AccountId, EventId, ImportId, LeadId, ReviewId, SubmissionId};
use crate::lead::Lead;
use crate::pipeline::{HistoryEntry, LeadEvent, Rules};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// The tables an erasure looks at, in the order a receipt lists them.
pub const TABLES: [&str; 15] = [
    "leads",
    "submissions",
    "lead_history",
    "lead_keys",
    "lead_visitors",
    "events",
    "touchpoints",
    "duplicate_reviews",
    "feedback",
    "outbox",
    "delivery_attempts",
    "accounts",
    "account_keys",
    "imports",
    "consent_ledger",
];

/// What an erasure did, for the person who asked (and their records).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Receipt {
    /// The lead erased (the surviving lead, when the id asked for was merged into it).
    pub lead_id: LeadId,
    /// When it was erased; for a lead erased before, when that was.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
    /// The leads merged into it, erased with it.
    pub merged_ids: Vec<LeadId>,
    /// The lead was erased before: nothing was done this time.
    pub already_erased: bool,
    /// Per table, the rows kept without their personal data and the rows deleted.
    pub tables: Vec<TableCount>,
    /// The destinations that get a `lead.erased` delivery.
    pub destinations: Vec<String>,
}

/// What an erasure did to one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows kept (the tombstone, the audit) with their personal data removed.
    pub scrubbed: u64,
    pub deleted: u64,
}

/// Refused: an import is not finished, and its stored file may hold the person's row,
/// which would bring them back once it runs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("import {0} is not finished and its stored file may hold this person's row; erase once it has finished")]
pub struct Refused(pub ImportId);

/// A write only an erasure makes ([`Change::Erase`]). Each names its rows by id (or a
/// lead's rows by the lead's id) and says what they lose; applying one is a statement or
/// two that decide nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// The lead's row becomes its tombstone: the document, `erased_at`, and the columns it
    /// was found by (email and its match key, external id, account) from the tombstone.
    Tombstone(Box<Lead>),
    /// An account only the person's leads held goes, with its keys: its name and domains
    /// came from their company and email.
    DeleteAccount(AccountId),
    /// Submissions settled into the person's leads keep their row (touchpoints and history
    /// name it) without the payload, idempotency key, fingerprint and error.
    ScrubSubmissions(Vec<SubmissionId>),
    /// Submissions never tied to a lead (quarantined, or not settled yet) go.
    DeleteSubmissions(Vec<SubmissionId>),
    /// A history entry, by row id, replaced with its scrubbed self.
    History {
        row: i64,
        entry: Box<HistoryEntry>,
    },
    /// The lead's match keys go.
    DeleteLeadKeys(LeadId),
    /// These visitor ids no longer name anybody.
    DeleteVisitors(Vec<String>),
    DeleteEvents(Vec<EventId>),
    /// A touchpoint, by row id, replaced with its scrubbed self.
    Touchpoint {
        row: i64,
        touch: Box<Touchpoint>,
    },
    DeleteReviews(Vec<ReviewId>),
    /// A feedback row's document replaced with the scrubbed feedback (its columns stay).
    Feedback {
        feedback: Box<Feedback>,
        result: Box<FeedbackResult>,
    },
    /// Deliveries not delivered are cancelled: their tries go, then they do.
    CancelDeliveries(Vec<String>),
    /// A delivered event keeps its row for the audit, with `payload` instead of what it
    /// carried and without the last error and response.
    Delivered {
        id: String,
        payload: serde_json::Value,
        at: OffsetDateTime,
    },
    /// Tries, by row id, keep their outcome and times without the request, response and
    /// error texts.
    ScrubAttempts(Vec<i64>),
    /// The lead leaves routing's queue.
    Unqueue(LeadId),
    /// An import's report, replaced.
    Report {
        import: ImportId,
        report: Vec<u8>,
    },
    /// The person goes on the suppression list, so no channel captures them again.
    Suppress(Vec<crate::suppress::Suppression>),
    /// The leads' consent ledgers go (the suppression list stands for their refusal now).
    DeleteConsent(Vec<LeadId>),
    /// The delivery is not tried before `at`.
    NotBefore {
        delivery: String,
        at: OffsetDateTime,
    },
}

/// The suppression hashes of every way the person was named: each lead's email and
/// E.164 phone, and the emails the history kept of earlier states.
fn suppression_hashes(
    survivor: &Lead,
    merged: &[Lead],
    who: &super::Identifiers,
    key: &crate::suppress::SuppressionKey,
    matching: &crate::resolve::Matching,
) -> Vec<crate::suppress::Hash> {
    let mut out: Vec<crate::suppress::Hash> = std::iter::once(survivor)
        .chain(merged)
        .flat_map(|l| crate::suppress::Identity::of(&l.fields).hashes(key, matching))
        .collect();
    for email in who.emails.iter().filter_map(|e| crate::Email::parse(e).ok()) {
        out.extend(crate::suppress::Identity { email: Some(&email), phone: None }.hashes(key, matching));
    }
    out.sort();
    out.dedup();
    out
}

/// A lead of the merge tree, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub lead: Lead,
    pub merged_into: Option<LeadId>,
}

/// The family `lead` belongs to in `tree`: the survivor it was merged into (through every
/// hop; itself when it was not merged), then every lead merged into the survivor directly
/// or through others, in id order. `None` when the lead is not in the tree, or its merges
/// lead nowhere (a loop, which no merge writes).
pub fn family_of(lead: LeadId, tree: &[Member]) -> Option<Vec<LeadId>> {
    let into: BTreeMap<LeadId, Option<LeadId>> = tree.iter().map(|m| (m.lead.id, m.merged_into)).collect();
    let survivor = |mut id: LeadId| {
        for _ in 0..=into.len() {
            match into.get(&id)? {
                None => return Some(id),
                Some(next) => id = *next,
            }
        }
        None
    };
    let root = survivor(lead)?;
    let others = into.keys().copied().filter(|&id| id != root && survivor(id) == Some(root));
    Some(std::iter::once(root).chain(others).collect())
}

/// An erasure, before anything is loaded.
#[derive(Debug)]
pub struct Erase<'r> {
    lead: LeadId,
    actor: String,
    reason: Option<String>,
    rules: &'r Rules,
    now: OffsetDateTime,
}

/// What the merge tree says.
#[derive(Debug)]
pub enum Found<'r> {
    /// No such lead.
    Missing,
    /// Erased before: the answer, with nothing to write.
    AlreadyErased(Receipt),
    Family(Box<Family<'r>>),
}

impl<'r> Erase<'r> {
    pub fn new(lead: LeadId, actor: String, reason: Option<String>, rules: &'r Rules, now: OffsetDateTime) -> Self {
        Self { lead, actor, reason, rules, now }
    }

    /// The lead to erase: the store loads the merge tree holding it, every lead with the
    /// one it was merged into.
    pub fn lead(&self) -> LeadId {
        self.lead
    }

    pub fn family(self, tree: Vec<Member>) -> Found<'r> {
        let Some(ids) = family_of(self.lead, &tree) else { return Found::Missing };
        let mut by_id: BTreeMap<LeadId, Lead> = tree.into_iter().map(|m| (m.lead.id, m.lead)).collect();
        let mut leads = ids.iter().filter_map(|id| by_id.remove(id));
        let Some(survivor) = leads.next() else { return Found::Missing };
        let merged: Vec<Lead> = leads.collect();
        if let Some(erased_at) = survivor.erased_at {
            return Found::AlreadyErased(Receipt {
                lead_id: survivor.id,
                erased_at,
                merged_ids: merged.iter().map(|l| l.id).collect(),
                already_erased: true,
                tables: Vec::new(),
                destinations: Vec::new(),
            });
        }
        Found::Family(Box::new(Family { erase: self, survivor, merged }))
    }
}

/// The leads to erase.
#[derive(Debug)]
pub struct Family<'r> {
    erase: Erase<'r>,
    survivor: Lead,
    /// In id order.
    merged: Vec<Lead>,
}

/// The family's own traces of the person, and the oldest unfinished import.
#[derive(Clone, Debug, Default)]
pub struct Traces {
    pub unfinished_import: Option<ImportId>,
    /// The family's history entries, with their row ids.
    pub history: Vec<(i64, HistoryEntry)>,
    /// The visitor ids that name a lead of the family.
    pub visitors: Vec<String>,
    /// The CRM records linked to a lead of the family.
    pub crm_records: Vec<CrmRecord>,
}

impl<'r> Family<'r> {
    /// The survivor, then the leads merged into it: the store locks them, where it runs
    /// beside other writers, and loads their [`Traces`].
    pub fn ids(&self) -> Vec<LeadId> {
        self.leads().map(|l| l.id).collect()
    }

    fn leads(&self) -> impl Iterator<Item = &Lead> {
        std::iter::once(&self.survivor).chain(&self.merged)
    }

    pub fn named(self, traces: Traces) -> Result<Named<'r>, Refused> {
        if let Some(import) = traces.unfinished_import {
            return Err(Refused(import));
        }
        let mut who = Identifiers::default();
        for lead in self.leads() {
            who.add_lead(lead);
        }
        for (_, entry) in &traces.history {
            who.add_event(&entry.event);
        }
        who.visitors.extend(traces.visitors);
        who.crm_records.extend(traces.crm_records);
        Ok(Named { family: self, history: traces.history, who })
    }
}

/// The family and every way the person was named.
#[derive(Debug)]
pub struct Named<'r> {
    family: Family<'r>,
    history: Vec<(i64, HistoryEntry)>,
    who: Identifiers,
}

/// What to load for [`Named::finish`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lookup {
    /// The family: the rows about these leads (submissions, match keys, events,
    /// touchpoints, reviews on either side, feedback, deliveries and their tries).
    pub leads: Vec<LeadId>,
    /// The accounts the family held: each that still exists, with how many leads (the
    /// family's included) and keys hold it.
    pub accounts: Vec<AccountId>,
    /// Events with no lead and feedback with no lead that may name the person: an email,
    /// compared trimmed and lowercased; an external id; a visitor id (events); a CRM
    /// record (feedback).
    pub emails: Vec<String>,
    pub external_ids: Vec<String>,
    pub visitors: Vec<String>,
    pub crm_records: Vec<CrmRecord>,
    /// Submissions with no lead whose payload, lowercased, contains one of these.
    pub mentions: Vec<String>,
    /// Import reports that contain one of these (the family's ids, the external ids).
    pub report_needles: Vec<String>,
}

/// The store's answer to a [`Lookup`].
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Each account of the lookup that still exists.
    pub accounts: Vec<AccountUse>,
    /// The submissions settled into the family.
    pub submissions: Vec<SubmissionId>,
    /// Submissions with no lead the lookup found, with their payloads as stored.
    pub unsettled: Vec<(SubmissionId, String)>,
    /// How many match keys the family holds.
    pub lead_keys: u64,
    /// How many consent ledger entries the family holds.
    pub consent: u64,
    /// The family's events.
    pub events: Vec<EventId>,
    /// Events with no lead the lookup found.
    pub waiting: Vec<WaitingEvent>,
    /// The family's touchpoints, with their row ids.
    pub touchpoints: Vec<(i64, Touchpoint)>,
    pub reviews: Vec<ReviewId>,
    /// The family's feedback and feedback with no lead the lookup found.
    pub feedback: Vec<(Feedback, FeedbackResult)>,
    /// The family's deliveries.
    pub deliveries: Vec<OutboxRow>,
    /// The tries of the family's deliveries.
    pub attempts: Vec<AttemptRow>,
    /// Import reports the lookup found.
    pub reports: Vec<(ImportId, Vec<u8>)>,
}

/// How many leads and keys hold an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountUse {
    pub id: AccountId,
    pub leads: u64,
    pub keys: u64,
}

/// An event with no lead, as its identity columns hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitingEvent {
    pub id: EventId,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub anonymous_id: Option<String>,
}

/// One outbox row of the family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub lead: LeadId,
    pub destination: String,
    pub state: OutboxState,
    pub attempts: u32,
    /// A worker's claim: a try may be under way until then.
    pub lease_until: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Delivered,
    /// Dead, or waiting for data: no try is due.
    Stopped,
}

/// One try at a delivery of the family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery: String,
    /// It kept a request, response or error text.
    pub holds_text: bool,
}

/// What an erasure writes, and the receipt for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Erased {
    pub receipt: Receipt,
    /// To apply in order.
    pub changes: Vec<Change>,
}

impl Named<'_> {
    pub fn lookup(&self) -> Lookup {
        let accounts: BTreeSet<AccountId> = self.family.leads().filter_map(|l| l.account_id).collect();
        let who = &self.who;
        let ids = self.family.leads().map(|l| l.id.to_string());
        Lookup {
            leads: self.family.ids(),
            accounts: accounts.into_iter().collect(),
            emails: who.emails.iter().cloned().collect(),
            external_ids: who.external_ids.iter().cloned().collect(),
            visitors: who.visitors.iter().cloned().collect(),
            crm_records: who.crm_records.iter().cloned().collect(),
            mentions: who.mentions(),
            report_needles: ids.chain(who.external_ids.iter().cloned()).collect(),
        }
    }

    /// Tombstones, then the rows table by table, then the `erased` history entry and its
    /// deliveries.
    pub fn finish(self, rows: Rows) -> Erased {
        let family_ids = self.family.ids();
        let Named { family: Family { erase, survivor, merged }, history, who } = self;
        let Erase { actor, reason, rules, now, .. } = erase;
        let family: BTreeSet<LeadId> = family_ids.iter().copied().collect();
        let mut out = Writes::default();

        let erased = tombstone(&survivor, now);
        out.write(Write::Tombstone(Box::new(erased.clone())));
        for lead in &merged {
            out.write(Write::Tombstone(Box::new(tombstone(lead, now))));
        }
        out.scrubbed("leads", family.len() as u64);
        // An account no lead outside the family holds existed only for this person.
        for account in &rows.accounts {
            let held = std::iter::once(&survivor).chain(&merged).filter(|l| l.account_id == Some(account.id));
            if account.leads <= held.count() as u64 {
                out.write(Write::DeleteAccount(account.id));
                out.deleted("accounts", 1);
                out.deleted("account_keys", account.keys);
            }
        }

        let settled = distinct(rows.submissions);
        out.scrubbed("submissions", settled.len() as u64);
        out.write_unless_empty(settled, Write::ScrubSubmissions);
        let unsettled = distinct(rows.unsettled.into_iter().filter(|(_, p)| who.mentioned_in(p)).map(|(id, _)| id));
        out.deleted("submissions", unsettled.len() as u64);
        out.write_unless_empty(unsettled, Write::DeleteSubmissions);

        for (row, entry) in history {
            let scrubbed = HistoryEntry { event: scrub_event(entry.event.clone()), ..entry.clone() };
            if scrubbed != entry {
                out.write(Write::History { row, entry: Box::new(scrubbed) });
                out.scrubbed("lead_history", 1);
            }
        }

        for lead in &family {
            out.write(Write::DeleteLeadKeys(*lead));
        }
        out.deleted("lead_keys", rows.lead_keys);
        out.deleted("lead_visitors", who.visitors.len() as u64);
        out.write_unless_empty(who.visitors.iter().cloned().collect(), Write::DeleteVisitors);
        let waiting = rows
            .waiting
            .into_iter()
            .filter(|e| who.name(e.email.as_deref(), e.external_id.as_deref(), e.anonymous_id.as_deref()));
        let events = distinct(rows.events.into_iter().chain(waiting.map(|e| e.id)));
        out.deleted("events", events.len() as u64);
        out.write_unless_empty(events, Write::DeleteEvents);

        for (row, touch) in rows.touchpoints {
            let scrubbed = scrub_touchpoint(&touch);
            if scrubbed != touch {
                out.write(Write::Touchpoint { row, touch: Box::new(scrubbed) });
                out.scrubbed("touchpoints", 1);
            }
        }
        let reviews = distinct(rows.reviews);
        out.deleted("duplicate_reviews", reviews.len() as u64);
        out.write_unless_empty(reviews, Write::DeleteReviews);

        let mut seen = BTreeSet::new();
        for (feedback, result) in rows.feedback {
            let about = match result.lead_id {
                Some(lead) => family.contains(&lead),
                None => who.name_feedback(&feedback.identity),
            };
            let scrubbed = scrub_feedback(&feedback);
            if about && seen.insert(feedback.id) && scrubbed != feedback {
                out.write(Write::Feedback { feedback: Box::new(scrubbed), result: Box::new(result) });
                out.scrubbed("feedback", 1);
            }
        }

        let deliveries = Deliveries::of(&rows.deliveries, now);
        deliveries.cancel_and_scrub(&rows.deliveries, &rows.attempts, now, &mut out);
        for lead in &family {
            out.write(Write::Unqueue(*lead));
            out.change(Change::SlaStopped { lead: *lead, owner: None });
        }

        let ids: BTreeSet<String> = family.iter().map(LeadId::to_string).collect();
        for (import, report) in rows.reports.into_iter().collect::<BTreeMap<_, _>>() {
            if let Some((report, lines)) = blank_report(&report, &ids, &who.external_ids) {
                out.write(Write::Report { import, report });
                out.scrubbed("imports", lines);
            }
        }

        out.deleted("consent_ledger", rows.consent);
        out.write(Write::DeleteConsent(family.iter().copied().collect()));
        if let Some(key) = &rules.suppression {
            let hashes = suppression_hashes(&survivor, &merged, &who, key, &rules.matching);
            let reason = reason.as_deref().map(|r| format!("erasure: {r}"));
            let entries = crate::suppress::Suppression::entries(
                hashes,
                key,
                Some(reason.as_deref().unwrap_or("erasure")),
                Some(&actor),
                now,
            );
            out.write_unless_empty(entries, Write::Suppress);
        }

        let merged: Vec<LeadId> = merged.iter().map(|l| l.id).collect();
        let event = LeadEvent::Erased {
            actor: Some(actor),
            reason,
            merged: merged.clone(),
            crm_records: who.crm_records.into_iter().collect(),
            delivered_to: deliveries.delivered_to.into_iter().collect(),
        };
        let destinations = rules.outbox.deliveries(&event).into_iter().map(|(d, _)| d.to_owned()).collect();
        let follow = changes::follow_up(&erased, &event, rules, now);
        out.change(Change::History { entry: HistoryEntry { lead_id: erased.id, at: now, event }, submission: None });
        for change in follow {
            // A try in flight when the lead was erased ends before its lease does; the
            // erasure reaches the destination after it, not before.
            let after = match &change {
                Change::Delivery(d) => deliveries.leases.get(&d.destination).map(|&at| (d.id.clone(), at)),
                _ => None,
            };
            out.change(change);
            if let Some((delivery, at)) = after {
                out.write(Write::NotBefore { delivery, at });
            }
        }
        Erased { receipt: out.receipt(erased.id, now, merged, destinations), changes: out.changes }
    }
}

/// What the family's deliveries say, read before they are cancelled.
struct Deliveries {
    /// Where the person's data went, or may have (a try failed, or is in flight): a
    /// destination that cannot find its record says so.
    delivered_to: BTreeSet<String>,
    /// Per destination, when the last try still in flight loses its lease.
    leases: BTreeMap<String, OffsetDateTime>,
}

impl Deliveries {
    fn of(rows: &[OutboxRow], now: OffsetDateTime) -> Self {
        let in_flight = |row: &OutboxRow| row.lease_until.filter(|&until| until > now);
        let mut leases: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.state == OutboxState::Pending) {
            if let Some(until) = in_flight(row) {
                let known = leases.entry(row.destination.clone()).or_insert(until);
                *known = (*known).max(until);
            }
        }
        let delivered_to = rows
            .iter()
            .filter(|r| r.state == OutboxState::Delivered || r.attempts > 0 || in_flight(r).is_some())
            .map(|r| r.destination.clone())
            .collect();
        Self { delivered_to, leases }
    }

    /// Undelivered deliveries would carry the person to the destinations: cancelled, with
    /// their tries. Delivered ones stay for the audit, without what they carried.
    fn cancel_and_scrub(&self, rows: &[OutboxRow], attempts: &[AttemptRow], now: OffsetDateTime, out: &mut Writes) {
        let cancelled: BTreeSet<&str> =
            rows.iter().filter(|r| r.state != OutboxState::Delivered).map(|r| r.id.as_str()).collect();
        let (gone, kept): (Vec<&AttemptRow>, Vec<&AttemptRow>) =
            attempts.iter().partition(|a| cancelled.contains(a.delivery.as_str()));
        out.deleted("delivery_attempts", gone.len() as u64);
        out.deleted("outbox", cancelled.len() as u64);
        out.write_unless_empty(cancelled.iter().map(|id| (*id).to_owned()).collect(), Write::CancelDeliveries);
        let scrubbed: Vec<i64> = distinct(kept.iter().filter(|a| a.holds_text).map(|a| a.id));
        out.scrubbed("delivery_attempts", scrubbed.len() as u64);
        out.write_unless_empty(scrubbed, Write::ScrubAttempts);
        for row in rows.iter().filter(|r| r.state == OutboxState::Delivered) {
            let payload = super::delivered_payload(row.lead);
            out.write(Write::Delivered { id: row.id.clone(), payload, at: now });
            out.scrubbed("outbox", 1);
        }
    }
}

/// The writes in order, counted per table as they are decided.
#[derive(Default)]
struct Writes {
    changes: Vec<Change>,
    counts: BTreeMap<&'static str, (u64, u64)>,
}

impl Writes {
    fn change(&mut self, change: Change) {
        self.changes.push(change);
    }

    fn write(&mut self, write: Write) {
        self.changes.push(Change::Erase(write));
    }

    fn write_unless_empty<T>(&mut self, ids: Vec<T>, write: impl FnOnce(Vec<T>) -> Write) {
        if !ids.is_empty() {
            self.write(write(ids));
        }
    }

    fn scrubbed(&mut self, table: &'static str, n: u64) {
        debug_assert!(TABLES.contains(&table), "{table} is not in TABLES");
        self.counts.entry(table).or_default().0 += n;
    }

    fn deleted(&mut self, table: &'static str, n: u64) {
        debug_assert!(TABLES.contains(&table), "{table} is not in TABLES");
        self.counts.entry(table).or_default().1 += n;
    }

    fn receipt(
        &self,
        lead_id: LeadId,
        now: OffsetDateTime,
        merged_ids: Vec<LeadId>,
        destinations: Vec<String>,
    ) -> Receipt {
        let tables = TABLES
            .iter()
            .map(|table| {
                let (scrubbed, deleted) = self.counts.get(table).copied().unwrap_or_default();
                TableCount { table, scrubbed, deleted }
            })
            .collect();
        Receipt { lead_id, erased_at: now, merged_ids, already_erased: false, tables, destinations }
    }
}

/// Each id once, in order: two lookups may find one row.
fn distinct<T: Ord + Clone>(ids: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(id.clone())).collect()
}

#[cfg(test)]
mod tests;
