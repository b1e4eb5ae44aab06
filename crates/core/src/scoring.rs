//! Lead scoring and the lifecycle contract: pure functions over a lead's attributes and
//! events, with no I/O, clock or storage. The caller passes `now`, stores the results
//! and emits the handoff event.
//!
//! # The pipeline
//! 1. [`score()`] turns a lead ([`LeadView`]) and its events ([`EventView`]) into a
//!    [`Score`]: a total, a breakdown per rule, and the data-quality gate. Run it on
//!    every lead change and event.
//! 2. [`LifecycleContract::advance`] takes the automatic transitions the score allows
//!    (`new → engaged` on the first event, `→ mql` at the threshold with the gate
//!    passed). A transition into the handoff stage has `handoff: true`: routing must
//!    be told.
//! 3. [`LifecycleContract::transition`] checks a person's move (actor, reason) and
//!    refuses what the contract does not allow, listing what it does.
//! 4. [`rescore_dry_run`] shows what new rules would change before they are applied.
//!
//! # `[scoring]`
//! ```toml
//! [scoring]
//! mql_threshold = 60          # default 60
//! decay_half_life_days = 30   # default 30
//! gate = ["email", "company", "country|phone"]   # a|b: either will do; default ["email"]
//!
//! # A lead rule: `points` once when the condition holds.
//! [[scoring.rules]]
//! name = "target industry"
//! when = { field = "industry", in = ["software", "financial_services"] }
//! points = 15
//!
//! [[scoring.rules]]
//! name = "decision maker"
//! when = { all = [
//!     { derived = "seniority", in = ["c_level", "vp", "director"] },
//!     { not = { field = "country", in = ["KP", "IR"] } },
//! ] }
//! points = 10
//!
//! [[scoring.rules]]
//! name = "free mail"
//! when = { derived = "free_mail", is = true }
//! points = -20                # negative rules take points away
//!
//! # An event rule: `points` per matching event.
//! [[scoring.rules]]
//! name = "pricing page visits"
//! when = { event = "page_view", url_matches = "*/pricing*", within_days = 30 }
//! points = 5
//! cap = 20                    # at most 20 from this rule (for negative points: at most -20)
//! decay = true                # each event's points × 0.5^(age / half-life)
//!
//! [[scoring.rules]]
//! name = "webinar regular"
//! when = { event = ["webinar_attended", "webinar_replay"], min_count = 2, where = { field = "duration_min", gte = 20 } }
//! points = 15
//! once = true                 # 15 once, when 2 events match
//! ```
//!
//! **Lead conditions** test one attribute, named by `field` (a standard field, a
//! derived fact or `custom.NAME`) or `derived` (derived facts only: `free_mail`,
//! `disposable_email`, `email_domain`, `website_domain`, `company_domain`,
//! `company_key`, `seniority`, `department`, `phone_extension`), with one operator:
//!
//! | operator | holds when the attribute … |
//! | --- | --- |
//! | `is = v` | equals `v` (string, number or boolean) |
//! | `in = [..]` / `not_in = [..]` | is / is present and is not one of the values |
//! | `gte = n`, `lte = n` (one or both) | is a number (or numeric text) in range |
//! | `exists = true/false` | is / is not filled in (blank text and `[]` are not) |
//! | `contains = "s"` | is text containing `s` |
//! | `matches = "glob"` | is text matching the glob (`*` any run, `?` one character) |
//!
//! Text comparisons ignore ASCII case. A list value (a multi-select custom field) holds
//! when any element does. An absent or null attribute fails every test but
//! `exists = false`. Conditions combine with `all = [..]`, `any = [..]` and `not = {..}`.
//!
//! **Event conditions** are a rule's whole `when`: `event` (a type, a list, or `"*"`),
//! and optionally `url_matches` (glob on the event's URL), `within_days` (only events at
//! most that old count), `min_count` (nothing until that many match; then `points` per
//! event, or once with `once = true`) and `where` (a lead-style condition on the
//! event's properties). `cap`, `decay` and `once` apply to event rules only.
//!
//! **Arithmetic.** An event rule sums `points × 0.5^(age / half-life)` (factor 1 without
//! `decay`) over its matching events, then caps the sum; with `once = true` it gives
//! `points` times the newest matching event's factor. The total is the sum of all
//! rules' unrounded points, rounded half away from zero; the breakdown shows each rule's
//! points to two decimals. The gate does not change the score: a lead at the threshold
//! that fails it is `flagged` and is not moved to MQL.
//!
//! # `[lifecycle]`
//! Without the section, [`LifecycleContract::default`] applies:
//! `new → engaged` (automatic, first event), `new|engaged → mql` (automatic, score),
//! `mql → sal → sql → opportunity → customer` (manual), `mql|sal|sql|opportunity →
//! recycled` (reason), every open stage `→ disqualified` (reason from the picklist),
//! `recycled → engaged`, `disqualified → recycled` (reason). Its TOML form is
//! [`LifecycleContract::to_toml`]; a custom contract restates stages and transitions:
//! ```toml
//! [lifecycle]
//! stages = ["new", "mql", "customer", "lost"]
//! initial = "new"               # default: the first stage
//! handoff = "mql"               # default: "mql"; entering it emits the handoff
//! disqualified = "lost"         # default: "disqualified" when listed
//! disqualify_reasons = ["spam", "no_budget"]
//!
//! [[lifecycle.transitions]]
//! from = ["new"]
//! to = "mql"
//! automatic = "score"           # or "first_event" (from the initial stage only)
//!
//! [[lifecycle.transitions]]
//! from = ["mql"]
//! to = "customer"
//!
//! [[lifecycle.transitions]]
//! from = "*"                    # every other stage
//! to = "lost"                   # reason required, from disqualify_reasons
//! ```
//! Validation at start reports, located: unknown stages anywhere, self-transitions,
//! a transition declared twice, stages unreachable from the initial one, no automatic
//! score transition into the handoff stage, a score trigger into another stage, a
//! first-event trigger from a later stage, an automatic transition that needs a reason,
//! and a disqualified stage without reasons.
//!
//! # Example
//! ```
//! use leadflow_core::scoring::{LifecycleContract, ScoringConfig, lifecycle::Actor, score};
//! use serde_json::json;
//! use time::macros::datetime;
//!
//! let config = ScoringConfig::parse(r#"
//! [scoring]
//! mql_threshold = 20
//! gate = ["email"]
//! [[scoring.rules]]
//! name = "big company"
//! when = { field = "employee_count", gte = 200 }
//! points = 25
//! "#).map_err(|e| format!("{e:?}"))?;
//! let lead = json!({"email": "ada@example.com", "employee_count": 500});
//! let lead = lead.as_object().cloned().unwrap_or_default();
//! let now = datetime!(2025-06-01 12:00 UTC);
//!
//! let s = score(&config, &lead, &[], now);
//! assert_eq!((s.total, s.gate.passed), (25, true));
//!
//! let contract = LifecycleContract::default();
//! let moved = contract.advance("new", &s, &config, now);
//! assert_eq!(moved.last().map(|t| (t.to.as_str(), t.handoff)), Some(("mql", true)));
//!
//! let refused = contract.transition("mql", "customer", Actor::User("bo".into()), None, now).unwrap_err();
//! assert_eq!(refused.allowed, ["sal", "disqualified", "recycled"]);
//! # Ok::<(), String>(())
//! ```

pub mod dry_run;
mod glob;
pub mod lifecycle;
pub mod routing;
pub mod rules;
pub mod score;
pub mod view;

pub use dry_run::{DryRunSummary, StageChange, rescore_dry_run};
pub use glob::Glob;
pub use lifecycle::{LifecycleContract, Transition, TransitionError};
pub use rules::ScoringConfig;
pub use score::{GateResult, RuleScore, Score, score};
pub use view::{EventView, LeadView};

/// Stage, rule and reason names: lower-case ASCII letters, digits and `_`, starting with
/// a letter, so they are safe as metric labels and API values.
pub(crate) fn is_snake_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
