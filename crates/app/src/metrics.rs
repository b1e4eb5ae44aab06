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

pub fn delivery_attempt(outcome: &'static str) {
    metrics::counter!("leadflow_deliver_attempts_total", "outcome" => outcome).increment(1);
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
