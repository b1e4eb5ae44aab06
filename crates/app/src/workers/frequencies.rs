//! Name frequencies for fuzzy matching at capture: counted over the stored leads at
//! start-up and again every hour, so "Michael Johnson at a 5,000-person company" needs
//! more than name and company to merge, as it does in `leadflow dedupe`. Without them the
//! lead-level precision of the labelled set falls below 0.99 from 20,000 leads on
//! (docs/BENCHMARKS.md). Each instance counts for itself; a count is a read of every
//! lead, a page at a time.

use leadflow_core::resolve::{self, Matching, NameFrequencies};
use leadflow_store::{DynStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(3600);
const PAGE: usize = 1_000;

pub(super) async fn run(store: DynStore, matching: Arc<Matching>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match count(&store).await {
            Ok((frequencies, leads)) => {
                matching.use_frequencies(frequencies);
                tracing::info!(leads, "counted name frequencies for matching");
            }
            Err(e) => tracing::warn!(error = %e, "could not count name frequencies"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

/// The frequencies over every stored lead, and how many leads that was.
pub async fn count(store: &DynStore) -> Result<(NameFrequencies, usize), StoreError> {
    let mut frequencies = NameFrequencies::new();
    let (mut after, mut leads) = (None, 0);
    loop {
        let page = store.list_leads(after, PAGE).await?;
        for lead in &page {
            frequencies.add(&resolve::match_record(&lead.fields, &lead.derived));
        }
        leads += page.len();
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.id),
            _ => break,
        }
    }
    frequencies.finish();
    Ok((frequencies, leads))
}
