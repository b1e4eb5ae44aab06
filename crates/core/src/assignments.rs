//! Assignments: routing, SLA timers and a person's choice of owner, decided over what
//! the store loaded. [`route`] holds the rules (when a lead is routed, what an SLA
//! does); this module walks them once for both stores.
//!
//! Three ways in, each returning a [`Step`]:
//! - [`queued`]: a lead taken off the routing queue, followed through merges.
//! - [`sla`]: an assignment whose timer ran out.
//! - [`manual`]: a person gives the lead to someone, or asks for it to be routed again.
//!
//! A [`Step::Route`] reads the store's routing state before it decides: the queue's
//! position ([`Route::queue`]), for an account-based rule the owners of the account and
//! of its other leads ([`Route::account`]), then today's counts of the people
//! [`Route::reps`] names; [`Route::decide`] then chooses. Every step ends in an
//! [`Outcome`]: the changes to apply in order (the turn taken, the day's count, the
//! account's first owner, the assignment, the lead with its history and deliveries; or
//! only the timer stopped).
//!
//! Only a manual assignment can be refused (the lead was erased). A lead nobody can
//! take stays unassigned, and the outcome says why.

use crate::changes::{self, Change};
use crate::ids::{AccountId, LeadId};
use crate::lead::Lead;
use crate::pipeline::Rules;
use crate::route::{self, Assignment, SlaStep, Trigger};
use crate::scoring::routing::{Context, Decision, Plan, Via};
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

/// How many owners of an account's other leads an account-based rule reads, most
/// recently assigned first: the recent ones say who works the account now.
pub const RELATED_OWNERS: usize = 5;

/// A manual assignment of a lead that was erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("lead {0} was erased")]
pub struct Erased(pub LeadId);

/// What a step came to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// For the store to apply in order.
    pub changes: Vec<Change>,
    /// The lead as it now stands, when the step had one.
    pub lead: Option<Box<Lead>>,
    pub assigned: Option<Assigned>,
    /// Nobody could take the lead: the explanation, for the log.
    pub unrouted: Option<Vec<String>>,
}

/// Who got the lead, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Assigned {
    pub owner: String,
    pub rule: Option<String>,
    pub via: Via,
    pub trigger: Trigger,
}

/// Where a way in leads.
#[derive(Debug)]
pub enum Step<'r> {
    /// Decided: nothing more to load.
    Done(Outcome),
    /// Routing decides once the store read its state.
    Route(Box<Route<'r>>),
}

/// Why and how a lead is routed.
#[derive(Clone, Debug, PartialEq)]
struct How {
    trigger: Trigger,
    /// The source whose touch set routing off.
    source: Option<String>,
    /// Earlier owners an SLA reassignment leaves out.
    exclude: Vec<String>,
    /// The first step of the explanation, before the rule's.
    note: Option<String>,
}

impl How {
    fn plain(trigger: Trigger, source: Option<String>) -> Self {
        Self { trigger, source, exclude: Vec::new(), note: None }
    }
}

/// A lead about to be routed, waiting for the store's routing state.
#[derive(Debug)]
pub struct Route<'r> {
    lead: Lead,
    current: Option<Assignment>,
    how: How,
    plan: Plan<'r>,
    rules: &'r Rules,
    now: OffsetDateTime,
}

/// The store's routing state for a [`Route`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// Where the queue's walk goes on (0 for a queue never walked).
    pub position: u64,
    /// Empty unless [`Route::account`] named an account.
    pub account: AccountOwners,
    /// Leads assigned today to the people [`Route::reps`] named; one missing has none.
    pub assigned_today: HashMap<String, u32>,
}

/// Who works an account, as an account-based rule reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountOwners {
    pub owner: Option<String>,
    /// The owners of the account's other surviving leads, most recently assigned first,
    /// at most [`RELATED_OWNERS`].
    pub related: Vec<String>,
}

/// A lead taken off the routing queue: `lead` as loaded following merges (`None`: it is
/// gone), `current` its assignment. A lead erased, or one routing does not call for
/// again ([`route::should_route`]), is done with nothing to write.
pub fn queued<'r>(
    lead: Option<Lead>,
    current: Option<Assignment>,
    trigger: Trigger,
    source: Option<String>,
    rules: &'r Rules,
    now: OffsetDateTime,
) -> Step<'r> {
    // An erased lead is routed to nobody.
    let Some(lead) = lead.filter(|l| l.erased_at.is_none()) else { return Step::Done(Outcome::default()) };
    let routed_by = current.as_ref().and_then(|a| a.source.as_deref());
    if !route::should_route(&lead, trigger, source.as_deref(), routed_by, &rules.routing) {
        return Step::Done(Outcome { lead: Some(Box::new(lead)), ..Outcome::default() });
    }
    Step::Route(Box::new(Route::new(lead, current, How::plain(trigger, source), rules, now)))
}

/// A person gives `lead` (as loaded following merges, with its `current` assignment) to
/// `owner`, or with `None` asks for it to be routed again.
pub fn manual<'r>(
    lead: Lead,
    current: Option<Assignment>,
    owner: Option<&str>,
    actor: &str,
    rules: &'r Rules,
    now: OffsetDateTime,
) -> Result<Step<'r>, Erased> {
    if lead.erased_at.is_some() {
        return Err(Erased(lead.id));
    }
    Ok(match owner {
        Some(owner) => {
            let decision = route::manual(owner, actor);
            let source = current.and_then(|c| c.source);
            let terms = Terms { trigger: Trigger::Manual, source, tried: Vec::new(), sla_due_at: None };
            Step::Done(commit(lead, decision, terms, rules, now))
        }
        None => Step::Route(Box::new(Route::new(lead, current, How::plain(Trigger::Manual, None), rules, now))),
    })
}

/// An assignment whose timer may have run out by `now`: `current` as kept under
/// `assigned`, and `lead` that lead followed through merges (`None`: it is gone). An
/// owner who took the lead up (it left the stage it was assigned in), or lost it
/// meanwhile, stops the timer; otherwise the rule's SLA action runs.
pub fn sla<'r>(
    assigned: LeadId,
    lead: Option<Lead>,
    current: Option<Assignment>,
    rules: &'r Rules,
    now: OffsetDateTime,
) -> Step<'r> {
    // Acted on meanwhile (another instance, or the owner took the lead up): nothing to do.
    let Some(current) = current.filter(|c| c.sla_due_at.is_some_and(|due| due <= now)) else {
        return Step::Done(Outcome::default());
    };
    let stopped = |lead: Option<Lead>| Outcome {
        changes: vec![Change::SlaStopped { lead: assigned, owner: None }],
        lead: lead.map(Box::new),
        ..Outcome::default()
    };
    let Some(lead) = lead.filter(|l| l.erased_at.is_none()) else { return Step::Done(stopped(None)) };
    match route::sla_step(&lead, assigned, &current, &rules.routing) {
        SlaStep::Stop => Step::Done(stopped(Some(lead))),
        SlaStep::Escalate(decision) => {
            let terms = Terms { trigger: Trigger::Sla, source: current.source, tried: current.tried, sla_due_at: None };
            Step::Done(commit(lead, decision, terms, rules, now))
        }
        SlaStep::Reassign { exclude, note } => {
            let how = How { trigger: Trigger::Sla, source: None, exclude, note: Some(note) };
            Step::Route(Box::new(Route::new(lead, Some(current), how, rules, now)))
        }
    }
}

/// The CRM reported on the lead: its owner has taken it up, so the SLA timer stops, and
/// the assignment follows an owner the CRM set.
pub fn taken_up(lead: LeadId, owner: Option<&str>) -> Change {
    Change::SlaStopped { lead, owner: owner.map(str::to_owned) }
}

impl<'r> Route<'r> {
    fn new(lead: Lead, current: Option<Assignment>, how: How, rules: &'r Rules, now: OffsetDateTime) -> Self {
        let plan = rules.routing.plan(&route::view(&lead));
        Self { lead, current, how, plan, rules, now }
    }

    pub fn lead(&self) -> &Lead {
        &self.lead
    }

    /// The round-robin queue whose position the rule walks.
    pub fn queue(&self) -> &str {
        &self.plan.queue
    }

    /// The account whose owners to read, when the rule is account-based.
    pub fn account(&self) -> Option<AccountId> {
        self.plan.rule.filter(|r| r.account_based).and(self.lead.account_id)
    }

    /// The day whose counts a daily cap reads.
    pub fn day(&self) -> Date {
        self.now.date()
    }

    /// Whose counts of today the decision reads: the reps offered and the account's
    /// owners, sorted, each once (PostgreSQL locks their rows in this order).
    pub fn reps(&self, account: &AccountOwners) -> Vec<String> {
        let mut people: Vec<String> = self.plan.offer.iter().map(|r| r.id.to_string()).collect();
        people.extend(account.owner.iter().chain(&account.related).cloned());
        people.sort_unstable();
        people.dedup();
        people
    }

    /// Chooses the owner over the store's state, and what that writes.
    pub fn decide(self, state: State) -> Outcome {
        let Self { lead, current, how, plan, rules, now } = self;
        let ctx = Context {
            account_owner: state.account.owner.as_deref(),
            related_owners: &state.account.related,
            position: state.position,
            assigned_today: state.assigned_today,
            exclude: &how.exclude,
            today: Some(now.date()),
        };
        let decided = plan.decide(&ctx, rules.routing.fallback_owner.as_ref());
        let How { trigger, source, exclude, note } = how;
        let sla = trigger == Trigger::Sla;
        // A reassignment that finds nobody else leaves the lead with its owner and stops
        // the timer: it would only run out again.
        let stopped = |lead: Lead, unrouted| Outcome {
            changes: if sla { vec![Change::SlaStopped { lead: lead.id, owner: None }] } else { Vec::new() },
            lead: Some(Box::new(lead)),
            assigned: None,
            unrouted,
        };
        let mut decision = match decided {
            Ok(d) => d,
            Err(unrouted) => return stopped(lead, Some(unrouted.steps)),
        };
        if sla && lead.owner.as_deref() == Some(&*decision.owner) {
            return stopped(lead, None);
        }
        if let Some(note) = note {
            decision.steps.insert(0, note);
        }
        let mut out = Vec::new();
        if let Some(position) = decision.next_position {
            out.push(Change::RoutingPosition { queue: plan.queue.clone(), position });
        }
        let sla_due_at = route::sla_due(&rules.routing, &decision, now);
        // An SLA reassignment remembers everyone who had the lead; any other routing
        // starts the round afresh.
        let tried = if sla { exclude } else { Vec::new() };
        // A routing no touch set off (an SLA, a person) keeps the source that routed it.
        let source = source.or_else(|| current.and_then(|c| c.source));
        let mut outcome = commit(lead, decision, Terms { trigger, source, tried, sla_due_at }, rules, now);
        out.append(&mut outcome.changes);
        outcome.changes = out;
        outcome
    }
}

/// What an assignment records beside the decision.
struct Terms {
    trigger: Trigger,
    source: Option<String>,
    tried: Vec<String>,
    sla_due_at: Option<OffsetDateTime>,
}

/// Gives the lead to the decision's owner: the day's count, the account's first owner,
/// the assignment, and the lead with its history and deliveries.
fn commit(mut lead: Lead, decision: Decision, terms: Terms, rules: &Rules, now: OffsetDateTime) -> Outcome {
    let owner = decision.owner.to_string();
    let rule = decision.rule.as_deref().map(str::to_owned);
    let via = decision.via;
    let trigger = terms.trigger;
    let mut out = vec![Change::AssignedToday { rep: owner.clone(), day: now.date() }];
    if let Some(account) = lead.account_id {
        // The account's first owner is its first lead's: later leads of it follow.
        out.push(Change::AccountOwner { account, owner: owner.clone(), at: now });
    }
    let assignment = Assignment {
        owner: owner.clone(),
        rule: rule.clone(),
        source: terms.source,
        stage: lead.lifecycle_stage.clone(),
        tried: terms.tried,
        sla_due_at: terms.sla_due_at,
    };
    out.push(Change::Assignment { lead: lead.id, assignment, at: now });
    let expected = lead.version;
    let event = route::assign(&mut lead, decision, trigger, terms.sla_due_at, now);
    lead.version += 1;
    out.extend(changes::updated(&lead, expected, vec![event], rules, now));
    Outcome {
        changes: out,
        lead: Some(Box::new(lead)),
        assigned: Some(Assigned { owner, rule, via, trigger }),
        unrouted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::LeadEvent;
    use crate::scoring::routing::RoutingConfig;
    use crate::testing::lead;
    use std::sync::Arc;
    use time::Duration;

    const TEAM: &str = r#"
[routing]
fallback_owner = "queue"
priority_sources = ["demo", "chat"]
[[routing.reps]]
id = "ana"
daily_cap = 3
[[routing.reps]]
id = "ben"
[[routing.rules]]
name = "everyone"
strategy = "round_robin"
reps = ["ana", "ben"]
sla_minutes = 30
"#;

    fn rules(toml: &str) -> Rules {
        Rules { routing: Arc::new(RoutingConfig::parse(toml).unwrap()), ..Rules::default() }
    }

    fn route(step: Step<'_>) -> Route<'_> {
        match step {
            Step::Route(r) => *r,
            Step::Done(o) => panic!("decided without the routing state: {o:?}"),
        }
    }

    fn done(step: Step<'_>) -> Outcome {
        match step {
            Step::Done(o) => o,
            Step::Route(r) => panic!("asked for the routing state of {}", r.lead().id),
        }
    }

    /// `lead` as routed to `owner` under "everyone" from `source`, its timer due at `due`.
    fn owned(owner: &str, source: Option<&str>, due: OffsetDateTime) -> (Lead, Assignment) {
        let mut lead = lead("a@example.com");
        lead.owner = Some(owner.into());
        let current = Assignment {
            owner: owner.into(),
            rule: Some("everyone".into()),
            source: source.map(Into::into),
            stage: lead.lifecycle_stage.clone(),
            tried: Vec::new(),
            sla_due_at: Some(due),
        };
        (lead, current)
    }

    fn assignment(outcome: &Outcome) -> &Assignment {
        outcome
            .changes
            .iter()
            .find_map(|c| match c {
                Change::Assignment { assignment, .. } => Some(assignment),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no assignment in {:?}", outcome.changes))
    }

    fn steps(outcome: &Outcome) -> &[String] {
        outcome
            .changes
            .iter()
            .find_map(|c| match c {
                Change::History {
                    entry: crate::pipeline::HistoryEntry { event: LeadEvent::Assigned { steps, .. }, .. },
                    ..
                } => Some(steps.as_slice()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no assignment in the history: {:?}", outcome.changes))
    }

    #[test]
    fn a_queued_lead_takes_the_next_turn_and_its_timer_starts() {
        let (rules, now) = (rules(TEAM), OffsetDateTime::now_utc());
        let lead = lead("a@example.com");
        let id = lead.id;
        let r = route(queued(Some(lead), None, Trigger::PrioritySource, Some("demo".into()), &rules, now));
        assert_eq!((r.queue(), r.account()), ("everyone", None));
        assert_eq!(r.reps(&AccountOwners::default()), ["ana", "ben"]);
        let outcome = r.decide(State { position: 1, ..State::default() });
        let assigned = outcome.assigned.clone().unwrap();
        assert_eq!(
            (assigned.owner.as_str(), assigned.via, assigned.trigger),
            ("ben", Via::RoundRobin, Trigger::PrioritySource)
        );
        assert!(matches!(&outcome.changes[..3], [
            Change::RoutingPosition { queue, position: 2 },
            Change::AssignedToday { rep, day },
            Change::Assignment { lead, .. },
        ] if queue == "everyone" && rep == "ben" && *day == now.date() && *lead == id));
        let row = assignment(&outcome);
        assert_eq!((row.source.as_deref(), row.sla_due_at), (Some("demo"), Some(now + Duration::minutes(30))));
        assert!(row.tried.is_empty());
        assert!(
            outcome.changes.iter().any(|c| matches!(c,
            Change::Lead { lead, expected: Some(1), .. } if lead.owner.as_deref() == Some("ben") && lead.version == 2))
        );
        assert_eq!(outcome.lead.unwrap().owner.as_deref(), Some("ben"));
    }

    #[test]
    fn a_rep_at_the_daily_cap_is_passed_over() {
        let (rules, now) = (rules(TEAM), OffsetDateTime::now_utc());
        let r = route(queued(Some(lead("a@example.com")), None, Trigger::Handoff, None, &rules, now));
        let state = State { assigned_today: HashMap::from([("ana".into(), 3)]), ..State::default() };
        let outcome = r.decide(state);
        assert_eq!(outcome.assigned.as_ref().unwrap().owner, "ben");
        assert!(steps(&outcome).iter().any(|s| s == "ana: reached the daily cap of 3"), "{:?}", steps(&outcome));
    }

    #[test]
    fn erased_gone_and_already_routed_leads_leave_the_queue_unrouted() {
        let (rules, now) = (rules(TEAM), OffsetDateTime::now_utc());
        let mut erased = lead("a@example.com");
        erased.erased_at = Some(now);
        let nothing = |step| done(step).changes;
        assert!(nothing(queued(Some(erased), None, Trigger::PrioritySource, None, &rules, now)).is_empty());
        assert!(nothing(queued(None, None, Trigger::PrioritySource, None, &rules, now)).is_empty());
        let (lead, current) = owned("ana", Some("chat"), now);
        let handoff = queued(Some(lead.clone()), Some(current.clone()), Trigger::Handoff, None, &rules, now);
        assert!(nothing(handoff).is_empty(), "routed once already");
        let same =
            queued(Some(lead.clone()), Some(current.clone()), Trigger::RenewedTouch, Some("chat".into()), &rules, now);
        assert!(nothing(same).is_empty(), "the same source does not re-route");
        let higher = queued(Some(lead), Some(current), Trigger::RenewedTouch, Some("demo".into()), &rules, now);
        let outcome = route(higher).decide(State::default());
        assert_eq!(assignment(&outcome).source.as_deref(), Some("demo"), "the new source routed it");
    }

    #[test]
    fn an_account_based_rule_prefers_the_accounts_owner_and_founds_it_with_the_first() {
        let rules = rules(
            "[routing]\n[[routing.reps]]\nid = \"ana\"\n[[routing.reps]]\nid = \"ben\"\n[[routing.rules]]\nname = \"ent\"\nstrategy = \"round_robin\"\nreps = [\"ana\", \"ben\"]\naccount_based = true\n",
        );
        let now = OffsetDateTime::now_utc();
        let mut lead = lead("a@example.com");
        assert_eq!(route(queued(Some(lead.clone()), None, Trigger::Handoff, None, &rules, now)).account(), None);
        let account = AccountId::new();
        lead.account_id = Some(account);
        let r = route(queued(Some(lead), None, Trigger::Handoff, None, &rules, now));
        assert_eq!(r.account(), Some(account));
        let owners = AccountOwners { owner: Some("carl".into()), related: vec!["ben".into(), "carl".into()] };
        assert_eq!(r.reps(&owners), ["ana", "ben", "carl"], "sorted, each once");
        let outcome = r.decide(State { account: owners, ..State::default() });
        assert_eq!(outcome.assigned.as_ref().map(|a| (a.owner.as_str(), a.via)), Some(("carl", Via::AccountOwner)));
        assert!(!outcome.changes.iter().any(|c| matches!(c, Change::RoutingPosition { .. })), "no turn taken");
        assert!(outcome.changes.iter().any(|c| matches!(c,
            Change::AccountOwner { account: a, owner, .. } if *a == account && owner == "carl")));
    }

    #[test]
    fn an_sla_that_ran_out_reassigns_to_someone_else_and_remembers_who_had_it() {
        let (rules, now) = (rules(TEAM), OffsetDateTime::now_utc());
        let (lead, current) = owned("ana", Some("chat"), now - Duration::minutes(1));
        let r = route(sla(lead.id, Some(lead), Some(current), &rules, now));
        let outcome = r.decide(State::default());
        let assigned = outcome.assigned.clone().unwrap();
        assert_eq!((assigned.owner.as_str(), assigned.trigger), ("ben", Trigger::Sla));
        let row = assignment(&outcome);
        assert_eq!((row.tried.as_slice(), row.source.as_deref()), (&["ana".to_owned()][..], Some("chat")));
        assert!(steps(&outcome)[0].starts_with("ana did not accept within 30 minutes"), "{:?}", steps(&outcome));
    }

    #[test]
    fn an_sla_not_due_or_taken_up_only_stops_its_timer() {
        let (rules, now) = (rules(TEAM), OffsetDateTime::now_utc());
        let (lead, current) = owned("ana", None, now - Duration::minutes(1));
        let stop = [Change::SlaStopped { lead: lead.id, owner: None }];
        let later = Assignment { sla_due_at: Some(now + Duration::minutes(1)), ..current.clone() };
        assert!(done(sla(lead.id, Some(lead.clone()), Some(later), &rules, now)).changes.is_empty(), "not yet");
        let stopped = Assignment { sla_due_at: None, ..current.clone() };
        assert!(done(sla(lead.id, Some(lead.clone()), Some(stopped), &rules, now)).changes.is_empty());
        assert!(done(sla(lead.id, Some(lead.clone()), None, &rules, now)).changes.is_empty());
        assert_eq!(done(sla(lead.id, None, Some(current.clone()), &rules, now)).changes, stop, "gone");
        let mut moved_on = lead.clone();
        moved_on.lifecycle_stage = "sql".into();
        assert_eq!(done(sla(lead.id, Some(moved_on), Some(current.clone()), &rules, now)).changes, stop, "taken up");
        let mut handed = lead.clone();
        handed.owner = Some("zoe".into());
        assert_eq!(done(sla(lead.id, Some(handed), Some(current), &rules, now)).changes, stop, "someone else has it");
    }

    #[test]
    fn a_reassignment_that_finds_only_the_owner_or_nobody_stops_the_timer() {
        let now = OffsetDateTime::now_utc();
        let alone = "[[routing.reps]]\nid = \"ana\"\n[[routing.rules]]\nname = \"everyone\"\nstrategy = \"round_robin\"\nreps = [\"ana\"]\nsla_minutes = 30\n";
        let (lead, current) = owned("ana", None, now);
        let stop = [Change::SlaStopped { lead: lead.id, owner: None }];
        let keeps = rules(&format!("[routing]\nfallback_owner = \"ana\"\n{alone}"));
        let outcome =
            route(sla(lead.id, Some(lead.clone()), Some(current.clone()), &keeps, now)).decide(State::default());
        assert_eq!((outcome.changes.as_slice(), outcome.assigned, outcome.unrouted), (&stop[..], None, None));
        let nobody = rules(&format!("[routing]\n{alone}"));
        let outcome = route(sla(lead.id, Some(lead), Some(current), &nobody, now)).decide(State::default());
        assert_eq!((outcome.changes.as_slice(), outcome.assigned), (&stop[..], None));
        assert!(outcome.unrouted.is_some());
    }

    #[test]
    fn an_escalation_hands_the_lead_over_and_ends_the_timer() {
        let rules = rules(
            "[routing]\n[[routing.reps]]\nid = \"ana\"\n[[routing.rules]]\nname = \"everyone\"\nstrategy = \"round_robin\"\nreps = [\"ana\"]\nsla_minutes = 5\nsla_action = \"escalate\"\nescalate_to = \"boss\"\n",
        );
        let now = OffsetDateTime::now_utc();
        let (lead, current) = owned("ana", Some("demo"), now);
        let outcome = done(sla(lead.id, Some(lead), Some(current), &rules, now));
        assert_eq!(outcome.assigned.as_ref().map(|a| (a.owner.as_str(), a.via)), Some(("boss", Via::Escalation)));
        let row = assignment(&outcome);
        assert_eq!((row.sla_due_at, row.source.as_deref()), (None, Some("demo")));
        assert_eq!(steps(&outcome), ["ana did not accept within 5 minutes: escalated to boss"]);
    }

    #[test]
    fn a_person_assigns_without_a_timer_keeping_the_source_and_never_an_erased_lead() {
        let (rules, now) = (rules(TEAM), OffsetDateTime::now_utc());
        let (lead, current) = owned("ana", Some("chat"), now);
        let outcome = done(manual(lead.clone(), Some(current.clone()), Some("zoe"), "admin", &rules, now).unwrap());
        assert_eq!(outcome.assigned.as_ref().map(|a| (a.owner.as_str(), a.via)), Some(("zoe", Via::Manual)));
        let row = assignment(&outcome);
        assert_eq!((row.sla_due_at, row.source.as_deref()), (None, Some("chat")));
        assert_eq!(steps(&outcome), ["assigned to zoe by admin"]);
        let again = route(manual(lead.clone(), Some(current), None, "admin", &rules, now).unwrap());
        assert_eq!(again.decide(State::default()).assigned.map(|a| a.trigger), Some(Trigger::Manual));
        let mut erased = lead;
        erased.erased_at = Some(now);
        assert_eq!(manual(erased.clone(), None, Some("zoe"), "admin", &rules, now).err(), Some(Erased(erased.id)));
    }

    #[test]
    fn with_no_rule_and_no_fallback_the_lead_stays_unassigned_and_says_why() {
        let rules = rules(
            "[routing]\n[[routing.reps]]\nid = \"ana\"\n[[routing.rules]]\nname = \"acme\"\nwhen = { field = \"company\", is = \"Acme\" }\nstrategy = \"round_robin\"\nreps = [\"ana\"]\n",
        );
        let now = OffsetDateTime::now_utc();
        let outcome = route(queued(Some(lead("a@example.com")), None, Trigger::Handoff, None, &rules, now))
            .decide(State::default());
        assert!(outcome.changes.is_empty() && outcome.assigned.is_none());
        assert_eq!(outcome.unrouted, Some(vec!["no rule matched".to_owned()]));
    }

    #[test]
    fn the_crm_taking_a_lead_up_stops_its_timer_and_names_its_owner() {
        let id = LeadId::new();
        assert_eq!(taken_up(id, Some("zoe")), Change::SlaStopped { lead: id, owner: Some("zoe".into()) });
    }
}
