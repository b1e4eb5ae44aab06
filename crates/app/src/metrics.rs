//! The counters the use cases and workers emit, through the `metrics` facade (the server
//! installs the Prometheus recorder; without one, as in the CLI, they cost nothing).
//! Names follow `leadflow_<stage>_<what>_total`; labels are bounded (configured source
//! names, fixed outcomes).

pub fn lead_outcomes(source: &str, outcome: &'static str, n: u64) {
    metrics::counter!("leadflow_capture_leads_total", "source" => source.to_owned(), "outcome" => outcome).increment(n);
}

/// Web-form posts judged to be spam, by reason (`honeypot`, `too_fast`, …).
pub fn spam(source: &str, reason: &'static str) {
    metrics::counter!("leadflow_capture_spam_total", "source" => source.to_owned(), "reason" => reason).increment(1);
}

pub fn events(n: usize) {
    metrics::counter!("leadflow_events_total").increment(n as u64);
}

/// Feedback items by where they came from (`generic`, `hubspot`, `salesforce`) and outcome.
pub fn feedback(kind: &'static str, outcome: &'static str) {
    metrics::counter!("leadflow_feedback_items_total", "kind" => kind, "outcome" => outcome).increment(1);
}

/// A person erased: the lead and `merged` leads merged into it.
pub fn erased(merged: usize) {
    metrics::counter!("leadflow_erase_leads_total").increment(1 + merged as u64);
}

/// A delivery try by destination and outcome; a failed one also by error class.
pub fn delivery_attempt(destination: &str, outcome: &'static str, class: Option<&'static str>) {
    metrics::counter!("leadflow_deliver_attempts_total", "destination" => destination.to_owned(), "outcome" => outcome)
        .increment(1);
    if let Some(class) = class {
        metrics::counter!("leadflow_deliver_failures_total", "destination" => destination.to_owned(), "class" => class)
            .increment(1);
    }
}

/// A provider request refused before anything was stored: `refused` (credentials,
/// signature, stale timestamp) or `rejected` (malformed).
pub fn hook_refused(source: &str, why: &'static str) {
    metrics::counter!("leadflow_capture_refused_total", "source" => source.to_owned(), "reason" => why).increment(1);
}

/// The health backlogs as last read: per destination its pending, dead and needs-data
/// deliveries and the age of its oldest pending one; per source its quarantine.
pub fn backlogs(b: &leadflow_core::health::Backlogs, now: time::OffsetDateTime) {
    for (destination, backlog) in &b.destinations {
        let d = destination.to_owned();
        metrics::gauge!("leadflow_deliver_backlog", "destination" => d.clone(), "status" => "pending")
            .set(backlog.pending as f64);
        metrics::gauge!("leadflow_deliver_backlog", "destination" => d.clone(), "status" => "dead")
            .set(backlog.dead as f64);
        metrics::gauge!("leadflow_deliver_backlog", "destination" => d.clone(), "status" => "needs_data")
            .set(backlog.needs_data as f64);
        let age = backlog.oldest_pending_at.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        metrics::gauge!("leadflow_deliver_oldest_pending_seconds", "destination" => d).set(age);
    }
    for (source, n) in &b.quarantine {
        metrics::gauge!("leadflow_quarantine_backlog", "source" => source.to_owned()).set(*n as f64);
    }
    for (source, n) in &b.pending {
        metrics::gauge!("leadflow_capture_pending", "source" => source.to_owned()).set(*n as f64);
    }
}

/// A lead routed (`metric` names why: a queued lead or an SLA timer), by how and what set it off.
pub fn routed(metric: &'static str, via: String, trigger: String) {
    metrics::counter!(metric, "via" => via, "trigger" => trigger).increment(1);
}

/// One resolver batch: leads resolved, merges made, possible duplicates queued for review.
pub fn resolved(leads: usize, merges: usize, reviews: usize) {
    metrics::counter!("leadflow_resolve_leads_total").increment(leads as u64);
    metrics::counter!("leadflow_resolve_merges_total").increment(merges as u64);
    metrics::counter!("leadflow_resolve_reviews_total").increment(reviews as u64);
}

/// Queue rows waiting for the resolver, as last seen.
pub fn resolve_backlog(n: u64) {
    metrics::gauge!("leadflow_resolve_backlog").set(n as f64);
}
