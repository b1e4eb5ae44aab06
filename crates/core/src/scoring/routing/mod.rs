//! Routing: which rep a lead goes to, and why. Pure, like the rest of this crate: the
//! caller passes the state that lives in the store (round-robin positions, today's
//! assignment counts, the account's owner) and stores what the [`Decision`] says.
//!
//! # `[routing]`
//! ```toml
//! [routing]
//! fallback_owner = "sales-queue@acme.com"   # when no rule matches or nobody can take it
//! # High-intent sources, highest first: their leads route at capture, before MQL, and a
//! # renewed touch from a source ranked above the one that routed the lead re-routes it.
//! priority_sources = ["demo-request", "contact-sales", "chat"]
//!
//! [[routing.reps]]
//! id = "ana@acme.com"          # as the CRM knows the user: an email or a user id
//! weight = 2                   # for weighted rules; default 1
//! daily_cap = 25               # assignments per UTC day; default none
//! territories = ["US-CA", "US-OR", "DE"]   # country, or country-state, for territory rules
//! away = [{ from = "2026-12-20", to = "2027-01-02" }]   # out of office, inclusive
//! active = true                # false: takes no new leads
//!
//! [[routing.rules]]            # the first rule whose `when` holds routes the lead
//! name = "enterprise"
//! when = { field = "employee_count", gte = 1000 }   # a scoring condition; absent: always
//! strategy = "round_robin"     # or "weighted", "territory"
//! reps = ["ana@acme.com", "ben@acme.com"]
//! account_based = true         # the account's owner first, then an owner of its other leads
//! fallback_owner = "ent-queue@acme.com"   # overrides the global one for this rule
//! sla_minutes = 30             # not accepted within 30 minutes: the SLA action
//! sla_action = "reassign"      # or "escalate", with escalate_to = "manager@acme.com"
//! ```
//! Conditions read what scoring rules read, plus `source`, `latest_source`, `score` and
//! `lifecycle_stage` ([`ROUTING_FACTS`]).
//!
//! # How a rep is chosen
//! 1. The first matching rule names a team; none matching goes to the fallback owner.
//! 2. With `account_based`, the account's owner takes the lead if available, else the
//!    most recent owner of another lead of the same account.
//! 3. Otherwise the strategy: `round_robin` walks the team in order from where the last
//!    lead of this rule stopped; `weighted` walks a smooth weighted cycle (weights 2 and
//!    1 give A, B, A); `territory` round-robins among the reps whose territories cover
//!    the lead's country and state, state-level reps first.
//! 4. A rep is skipped when inactive, away today, at the daily cap, or (on an SLA
//!    reassignment) one who already had the lead; every skip is a step of the
//!    explanation. Nobody left: the rule's fallback owner, else the global one.

mod parse;

use crate::scoring::rules::Condition;
use crate::scoring::view::LeadView;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::Date;

/// What routing conditions may test beyond the lead attributes scoring reads.
pub const ROUTING_FACTS: &[&str] = &["source", "latest_source", "score", "lifecycle_stage"];

/// The most a weight counts: it bounds the weighted cycle's length.
pub const MAX_WEIGHT: u32 = 100;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutingConfig {
    pub reps: Vec<Rep>,
    pub rules: Vec<RoutingRule>,
    pub fallback_owner: Option<Arc<str>>,
    /// Highest first.
    pub priority_sources: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rep {
    pub id: Arc<str>,
    pub weight: u32,
    pub daily_cap: Option<u32>,
    /// Upper-case `CC` or `CC-SS` codes.
    pub territories: Vec<String>,
    pub active: bool,
    /// Inclusive date ranges.
    pub away: Vec<(Date, Date)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    Weighted,
    Territory,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RoutingRule {
    pub name: Arc<str>,
    pub when: Option<Condition>,
    pub strategy: Strategy,
    /// Indices into [`RoutingConfig::reps`], in the configured order.
    pub reps: Vec<usize>,
    pub account_based: bool,
    pub fallback_owner: Option<Arc<str>>,
    pub sla: Option<Sla>,
    /// The order reps are offered in: the team, or for `weighted` its smooth weighted cycle.
    cycle: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sla {
    pub after: Duration,
    pub action: SlaAction,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SlaAction {
    /// Route again, leaving out everyone who already had the lead.
    Reassign,
    /// Hand the lead to this person; the timer stops.
    Escalate(Arc<str>),
}

/// How the owner was chosen: stored in the lead's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    AccountOwner,
    RelatedLead,
    RoundRobin,
    Weighted,
    Territory,
    Fallback,
    Escalation,
    /// A person chose the owner.
    Manual,
}

impl Via {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AccountOwner => "account_owner",
            Self::RelatedLead => "related_lead",
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
            Self::Territory => "territory",
            Self::Fallback => "fallback",
            Self::Escalation => "escalation",
            Self::Manual => "manual",
        }
    }
}

/// A lead's route before the store's state is read: the rule, the queue whose position
/// the strategy walks, and the reps it offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<'a> {
    pub rule: Option<&'a RoutingRule>,
    /// The round-robin position's key: the rule's name, with the territory for territory rules.
    pub queue: String,
    /// The reps in the order the strategy offers them (with repeats for `weighted`).
    pub offer: Vec<&'a Rep>,
    pub steps: Vec<String>,
    /// Every configured rep, for people who are not in the offer (an account's owner).
    all: &'a [Rep],
}

/// The store's state a decision needs.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    pub account_owner: Option<&'a str>,
    /// Owners of the account's other leads, most recent first.
    pub related_owners: &'a [String],
    /// Where the queue's walk goes on; any value (it is taken modulo the offer's length).
    pub position: u64,
    /// Leads assigned today, by rep id.
    pub assigned_today: HashMap<String, u32>,
    /// Who may not get the lead (an SLA reassignment leaves out its earlier owners).
    pub exclude: &'a [String],
    pub today: Option<Date>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub owner: Arc<str>,
    pub rule: Option<Arc<str>>,
    pub via: Via,
    /// Why, in order: the rule that matched, each rep passed over and why, the choice.
    pub steps: Vec<String>,
    /// The queue's position after this lead, when the walk moved.
    pub next_position: Option<u64>,
}

/// No rule matched and no fallback owner is configured: the lead stays unassigned.
#[derive(Clone, Debug, PartialEq)]
pub struct Unrouted {
    pub steps: Vec<String>,
}

impl RoutingConfig {
    /// Routing is on when it can assign anybody.
    pub fn is_enabled(&self) -> bool {
        !self.rules.is_empty() || self.fallback_owner.is_some()
    }

    pub fn rule(&self, name: &str) -> Option<&RoutingRule> {
        self.rules.iter().find(|r| &*r.name == name)
    }

    /// A source's rank among the priority sources: 0 is the highest; `None` if unlisted.
    pub fn source_rank(&self, source: &str) -> Option<usize> {
        self.priority_sources.iter().position(|s| s == source)
    }

    /// Whether a touch from `new` outranks the one from `current`, which routed the lead.
    pub fn outranks(&self, new: &str, current: Option<&str>) -> bool {
        match (self.source_rank(new), current.and_then(|c| self.source_rank(c))) {
            (Some(n), Some(c)) => n < c,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The first rule whose condition holds, and what it offers. `lead` is the routing
    /// view: the lead's attributes plus [`ROUTING_FACTS`].
    pub fn plan<L: LeadView + ?Sized>(&self, lead: &L) -> Plan<'_> {
        let Some(rule) = self.rules.iter().find(|r| r.when.as_ref().is_none_or(|c| c.eval(lead))) else {
            let steps = vec!["no rule matched".into()];
            return Plan { rule: None, queue: String::new(), offer: Vec::new(), steps, all: &self.reps };
        };
        let mut steps = vec![format!("rule {:?} matched", &*rule.name)];
        let mut queue = rule.name.to_string();
        let offer: Vec<&Rep> = match rule.strategy {
            Strategy::RoundRobin | Strategy::Weighted => rule.cycle.iter().map(|&i| &self.reps[i]).collect(),
            Strategy::Territory => {
                let (country, state) = (text(lead, "country"), text(lead, "state"));
                let state_code = country.as_ref().zip(state).map(|(c, s)| format!("{c}-{s}"));
                let covering = |code: &str| -> Vec<&Rep> {
                    rule.reps
                        .iter()
                        .map(|&i| &self.reps[i])
                        .filter(|r| r.territories.iter().any(|t| t == code))
                        .collect()
                };
                let by_state = state_code.as_deref().map(covering).unwrap_or_default();
                let (territory, reps) = match (state_code, by_state.is_empty()) {
                    (Some(code), false) => (Some(code), by_state),
                    _ => match country {
                        Some(c) => {
                            let reps = covering(&c);
                            (Some(c), reps)
                        }
                        None => (None, Vec::new()),
                    },
                };
                match territory {
                    Some(t) if !reps.is_empty() => {
                        steps.push(format!("territory {t}: {}", ids(&reps)));
                        queue = format!("{}/{t}", rule.name);
                    }
                    Some(t) => steps.push(format!("no rep covers territory {t}")),
                    None => steps.push("the lead has no country: no territory".into()),
                }
                reps
            }
        };
        Plan { rule: Some(rule), queue, offer, steps, all: &self.reps }
    }
}

impl Plan<'_> {
    /// Chooses the owner. `fallback` is the global fallback owner.
    pub fn decide(&self, ctx: &Context<'_>, fallback: Option<&Arc<str>>) -> Result<Decision, Unrouted> {
        let mut steps = self.steps.clone();
        let rule_name = self.rule.map(|r| r.name.clone());
        let decision = |owner: Arc<str>, via, steps, next_position| Decision {
            owner,
            rule: rule_name.clone(),
            via,
            steps,
            next_position,
        };
        let Some(rule) = self.rule else {
            return match fallback {
                Some(owner) => {
                    steps.push(format!("fallback owner {owner}"));
                    Ok(decision(owner.clone(), Via::Fallback, steps, None))
                }
                None => Err(Unrouted { steps }),
            };
        };
        let available = |id: &str, steps: &mut Vec<String>| -> bool {
            match self.why_not(id, ctx) {
                None => true,
                Some(why) => {
                    steps.push(format!("{id}: {why}"));
                    false
                }
            }
        };
        if rule.account_based {
            match ctx.account_owner {
                Some(owner) if available(owner, &mut steps) => {
                    steps.push(format!("account owner {owner}"));
                    return Ok(decision(Arc::from(owner), Via::AccountOwner, steps, None));
                }
                Some(_) => {}
                None => steps.push("the account has no owner".into()),
            }
            for owner in ctx.related_owners.iter().filter(|o| Some(o.as_str()) != ctx.account_owner) {
                if available(owner, &mut steps) {
                    steps.push(format!("owner of another lead of the account: {owner}"));
                    return Ok(decision(Arc::from(owner.as_str()), Via::RelatedLead, steps, None));
                }
            }
        }
        let n = self.offer.len() as u64;
        let mut passed = Vec::new();
        for k in 0..n {
            let at = (ctx.position % n + k) % n;
            let rep = self.offer[at as usize];
            if passed.contains(&&*rep.id) {
                continue;
            }
            if available(&rep.id, &mut steps) {
                let via = match rule.strategy {
                    Strategy::RoundRobin => Via::RoundRobin,
                    Strategy::Weighted => Via::Weighted,
                    Strategy::Territory => Via::Territory,
                };
                steps.push(format!("{}: {} (turn {} of {n})", via.as_str(), rep.id, at + 1));
                return Ok(decision(rep.id.clone(), via, steps, Some(at + 1)));
            }
            passed.push(&*rep.id);
        }
        match rule.fallback_owner.as_ref().or(fallback) {
            Some(owner) => {
                steps.push(format!("nobody in the team can take it: fallback owner {owner}"));
                Ok(decision(owner.clone(), Via::Fallback, steps, None))
            }
            None => {
                steps.push("nobody in the team can take it and there is no fallback owner".into());
                Err(Unrouted { steps })
            }
        }
    }

    /// Why a person cannot take the lead now, if they cannot. People who are not
    /// configured reps (a CRM user owning an account) are always available.
    fn why_not(&self, id: &str, ctx: &Context<'_>) -> Option<String> {
        if ctx.exclude.iter().any(|e| e == id) {
            return Some("had this lead before".into());
        }
        let rep = self.all.iter().find(|r| &*r.id == id)?;
        if !rep.active {
            return Some("inactive".into());
        }
        if let Some(today) = ctx.today
            && let Some((_, to)) = rep.away.iter().find(|(from, to)| *from <= today && today <= *to)
        {
            return Some(format!("away until {to}"));
        }
        if let Some(cap) = rep.daily_cap
            && ctx.assigned_today.get(&*rep.id).copied().unwrap_or(0) >= cap
        {
            return Some(format!("reached the daily cap of {cap}"));
        }
        None
    }
}

fn ids(reps: &[&Rep]) -> String {
    reps.iter().map(|r| &*r.id).collect::<Vec<_>>().join(", ")
}

fn text<L: LeadView + ?Sized>(lead: &L, field: &str) -> Option<String> {
    match lead.field(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_ascii_uppercase()),
        _ => None,
    }
}

/// Smooth weighted round robin (as in nginx): each turn every rep gains its weight and
/// the leader, after being chosen, loses the total; the cycle repeats after `Σ weights`
/// turns and spreads each rep's turns evenly instead of in runs.
fn weighted_cycle(reps: &[usize], weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; reps.len()];
    let mut cycle = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += i64::from(w);
        }
        let Some(best) = (0..reps.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i))) else { break };
        current[best] -= total;
        cycle.push(reps[best]);
    }
    cycle
}
