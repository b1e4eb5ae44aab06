//! Reports over a period: the funnel (how many leads of each source, or source and
//! campaign, reached each stage, with the conversion from stage to stage and from the
//! handoff stage) and disqualifications by source, campaign and reason. The store counts;
//! this puts the counts in the lifecycle contract's order and works out the rates.

use crate::App;
use leadflow_core::scoring::LifecycleContract;
use leadflow_store::{AttendanceCount, ReasonCount, StageCount, StoreError};
use time::OffsetDateTime;

/// The funnel of the leads created in a period.
#[derive(Clone, Debug, PartialEq)]
pub struct Funnel {
    /// The stage leads are handed off to sales in.
    pub handoff: String,
    pub rows: Vec<FunnelRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FunnelRow {
    pub source: String,
    /// `None` when grouped by source only.
    pub campaign: Option<String>,
    /// In the contract's stage order (stages it does not know last).
    pub stages: Vec<FunnelStage>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FunnelStage {
    pub stage: String,
    /// Leads that reached this stage.
    pub leads: u64,
    /// `leads` over the previous stage's in the row.
    pub conversion: Option<f64>,
    /// `leads` over the handoff stage's, for the stages after it.
    pub from_handoff: Option<f64>,
}

/// The funnel of the leads created in `[from, to)`, a row per source and campaign, or per
/// source when `by_source`.
pub async fn funnel(
    app: &App,
    from: OffsetDateTime,
    to: OffsetDateTime,
    by_source: bool,
) -> Result<Funnel, StoreError> {
    let counts = app.store.report_stages(from, to).await?;
    Ok(funnel_of(counts, &app.config.engagement.contract, by_source))
}

fn funnel_of(counts: Vec<StageCount>, contract: &LifecycleContract, by_source: bool) -> Funnel {
    let order: Vec<&str> = contract.stages().collect();
    let handoff = contract.handoff_stage().to_owned();
    let handoff_at = order.iter().position(|s| *s == handoff);
    let mut rows: Vec<FunnelRow> = Vec::new();
    for c in counts {
        // A lead has one original campaign, so per-source counts are sums.
        let campaign = if by_source { None } else { c.campaign };
        let row = match rows.iter().position(|r| r.source == c.source && r.campaign == campaign) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(FunnelRow { source: c.source.clone(), campaign, stages: Vec::new() });
                let last = rows.len() - 1;
                &mut rows[last]
            }
        };
        match row.stages.iter_mut().find(|s| s.stage == c.stage) {
            Some(stage) => stage.leads += c.leads,
            None => {
                row.stages.push(FunnelStage { stage: c.stage, leads: c.leads, conversion: None, from_handoff: None })
            }
        }
    }
    let position = |stage: &str| order.iter().position(|o| *o == stage).unwrap_or(usize::MAX);
    for row in &mut rows {
        row.stages.sort_by_key(|s| position(&s.stage));
        let handed_off = row.stages.iter().find(|s| s.stage == handoff).map_or(0, |s| s.leads);
        let mut previous: Option<u64> = None;
        for stage in &mut row.stages {
            stage.conversion = previous.filter(|p| *p > 0).map(|p| stage.leads as f64 / p as f64);
            previous = Some(stage.leads);
            let after_handoff =
                handoff_at.is_some_and(|h| position(&stage.stage) > h && position(&stage.stage) != usize::MAX);
            stage.from_handoff = (after_handoff && handed_off > 0).then(|| stage.leads as f64 / handed_off as f64);
        }
    }
    Funnel { handoff, rows }
}

/// The leads disqualified in a period.
#[derive(Clone, Debug, PartialEq)]
pub struct Disqualifications {
    /// The contract's disqualified stage.
    pub stage: String,
    pub total: u64,
    /// By original source, campaign and reason.
    pub rows: Vec<ReasonCount>,
    /// By reason over every source; most leads first.
    pub by_reason: Vec<(Option<String>, u64)>,
}

/// The leads that entered the disqualified stage in `[from, to)`; `None` when the
/// contract has no such stage.
pub async fn disqualifications(
    app: &App,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Option<Disqualifications>, StoreError> {
    let Some(stage) = app.config.engagement.contract.disqualified_stage().map(str::to_owned) else {
        return Ok(None);
    };
    let rows = app.store.report_disqualifications(from, to, &stage).await?;
    Ok(Some(disqualifications_of(stage, rows)))
}

fn disqualifications_of(stage: String, rows: Vec<ReasonCount>) -> Disqualifications {
    let mut by_reason: Vec<(Option<String>, u64)> = Vec::new();
    for c in &rows {
        match by_reason.iter_mut().find(|(reason, _)| *reason == c.reason) {
            Some((_, leads)) => *leads += c.leads,
            None => by_reason.push((c.reason.clone(), c.leads)),
        }
    }
    by_reason.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total = rows.iter().map(|r| r.leads).sum();
    Disqualifications { stage, total, rows, by_reason }
}

/// Attendance of one event, segmented by status: how many leads registered, came, did
/// not show up or cancelled, their minutes, and where each segment stands in the funnel.
#[derive(Clone, Debug, PartialEq)]
pub struct EventAttendance {
    pub event: String,
    pub name: Option<String>,
    /// In the order registered, attended, no_show, cancelled (present ones only).
    pub segments: Vec<AttendanceSegment>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttendanceSegment {
    pub status: String,
    pub leads: u64,
    pub minutes: u64,
    /// Leads by their stage now, in the contract's order.
    pub stages: Vec<(String, u64)>,
}

/// The attendance of `event`, or of every event, segmented by status.
pub async fn attendance(app: &App, event: Option<String>) -> Result<Vec<EventAttendance>, StoreError> {
    let counts = app.store.report_attendance(event).await?;
    Ok(attendance_of(counts, &app.config.engagement.contract))
}

fn attendance_of(counts: Vec<AttendanceCount>, contract: &LifecycleContract) -> Vec<EventAttendance> {
    const ORDER: [&str; 4] = ["registered", "attended", "no_show", "cancelled"];
    let order: Vec<&str> = contract.stages().collect();
    let mut events: Vec<EventAttendance> = Vec::new();
    for c in counts {
        let at = match events.iter().position(|e| e.event == c.event) {
            Some(i) => i,
            None => {
                events.push(EventAttendance { event: c.event.clone(), name: None, segments: Vec::new() });
                events.len() - 1
            }
        };
        let event = &mut events[at];
        event.name = event.name.take().or(c.name);
        let segment = match event.segments.iter().position(|s| s.status == c.status) {
            Some(i) => &mut event.segments[i],
            None => {
                event.segments.push(AttendanceSegment { status: c.status, leads: 0, minutes: 0, stages: Vec::new() });
                let last = event.segments.len() - 1;
                &mut event.segments[last]
            }
        };
        segment.leads += c.leads;
        segment.minutes += c.minutes;
        segment.stages.push((c.stage, c.leads));
    }
    let rank = |list: &[&str], x: &str| list.iter().position(|o| *o == x).unwrap_or(usize::MAX);
    for event in &mut events {
        event.segments.sort_by_key(|s| rank(&ORDER, &s.status));
        for segment in &mut event.segments {
            segment.stages.sort_by(|a, b| rank(&order, &a.0).cmp(&rank(&order, &b.0)).then_with(|| a.0.cmp(&b.0)));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(source: &str, campaign: Option<&str>, stage: &str, leads: u64) -> StageCount {
        StageCount { source: source.into(), campaign: campaign.map(Into::into), stage: stage.into(), leads }
    }

    #[test]
    fn the_funnel_follows_the_contract_and_rates_each_stage_against_the_last_and_the_handoff() {
        let contract = LifecycleContract::default();
        let order: Vec<&str> = contract.stages().collect();
        let handoff = contract.handoff_stage();
        let at = order.iter().position(|s| *s == handoff).unwrap();
        let (before, after) = (order[at - 1], order[at + 1]);
        // Out of order on purpose, and split over two campaigns.
        let counts = vec![
            count("web", Some("spring"), after, 2),
            count("web", Some("spring"), handoff, 5),
            count("web", Some("spring"), before, 10),
            count("web", Some("autumn"), before, 10),
        ];
        let funnel = funnel_of(counts.clone(), &contract, false);
        assert_eq!(funnel.handoff, handoff);
        assert_eq!(funnel.rows.len(), 2, "a row per source and campaign");
        let spring = &funnel.rows[0].stages;
        let stages: Vec<&str> = spring.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(stages, [before, handoff, after]);
        assert_eq!(spring[0].conversion, None, "the first stage has nothing to convert from");
        assert_eq!(spring[1].conversion, Some(0.5));
        assert_eq!(spring[2].conversion, Some(0.4));
        assert_eq!((spring[1].from_handoff, spring[2].from_handoff), (None, Some(0.4)));

        let by_source = funnel_of(counts, &contract, true);
        assert_eq!(by_source.rows.len(), 1);
        assert_eq!(by_source.rows[0].campaign, None);
        assert_eq!(by_source.rows[0].stages[0].leads, 20, "campaigns add up");
    }

    #[test]
    fn attendance_is_segmented_by_status_with_stages_in_contract_order() {
        let contract = LifecycleContract::default();
        let order: Vec<&str> = contract.stages().collect();
        let row = |status: &str, stage: &str, leads, minutes| AttendanceCount {
            event: "w1".into(),
            name: (status == "attended").then(|| "Launch".to_owned()),
            status: status.into(),
            stage: stage.into(),
            leads,
            minutes,
        };
        let counts = vec![
            row("no_show", order[0], 4, 0),
            row("attended", order[2], 1, 30),
            row("attended", order[0], 2, 90),
            row("registered", order[0], 3, 0),
        ];
        let got = attendance_of(counts, &contract);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name.as_deref(), Some("Launch"));
        let statuses: Vec<&str> = got[0].segments.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(statuses, ["registered", "attended", "no_show"]);
        let attended = &got[0].segments[1];
        assert_eq!((attended.leads, attended.minutes), (3, 120));
        assert_eq!(attended.stages, [(order[0].to_owned(), 2), (order[2].to_owned(), 1)]);
    }

    #[test]
    fn disqualifications_add_up_by_reason_most_first() {
        let reason = |source: &str, reason: Option<&str>, leads| ReasonCount {
            source: source.into(),
            campaign: None,
            reason: reason.map(Into::into),
            leads,
        };
        let rows = vec![
            reason("web", Some("no_budget"), 1),
            reason("ads", Some("spam"), 2),
            reason("ads", Some("no_budget"), 3),
        ];
        let d = disqualifications_of("disqualified".into(), rows);
        assert_eq!(d.total, 6);
        assert_eq!(d.by_reason, [(Some("no_budget".to_owned()), 4), (Some("spam".to_owned()), 2)]);
    }
}
