//! Matching weights learned from the stored leads: Fellegi-Sunter m and u probabilities,
//! u from random pairs and m by expectation-maximisation
//! ([`leadflow_core::matching::train`]). They are stored beside the leads, so every
//! instance and every restart decides with the same weights, and are trained by
//! `leadflow dedupe --train` and, once a day, by the frequencies worker on one instance.
//!
//! EM needs data: below [`MIN_LEADS`] stored leads the scheduled training does not run and
//! the configured (hand-set) weights stand. A level too rare in the sample keeps its
//! configured weight whatever the store's size (the trainer's own guard rails).

use crate::App;
use leadflow_core::matching::{Record, TrainOptions, Trained, train as em};
use leadflow_core::resolve;
use leadflow_store::StoreError;

/// The cursor the learned weights are stored under (JSON of [`Trained`]).
pub const STORED: &str = "matching_weights";
/// Fewest stored leads the scheduled training runs on.
pub const MIN_LEADS: u64 = 10_000;
/// Most leads one training reads: an even sample of the store beyond that, so memory and
/// time stay bounded (about ten seconds and 50 MB here for 100,000).
pub const SAMPLE: u64 = 100_000;
/// Leads read per page.
const PAGE: usize = 1_000;

/// Learns weights from (a sample of) the stored leads, stores them and decides with them
/// from now on.
pub async fn train(app: &App) -> Result<Trained, StoreError> {
    let records = sample(app).await?;
    let model = app.config.matching.model.clone();
    let trained = tokio::task::spawn_blocking(move || em(&records, &model, &TrainOptions::default()))
        .await
        .map_err(|e| StoreError::Internal(format!("training stopped: {e}")))?;
    app.store.set_cursor(STORED, &serde_json::to_string(&trained)?).await?;
    app.config.matching.use_trained(Some(trained.clone()));
    Ok(trained)
}

/// Decides with the stored weights, if any; `true` when some were found. Weights stored by
/// a version whose format no longer reads are ignored (the next training replaces them).
pub async fn load(app: &App) -> Result<bool, StoreError> {
    let Some(stored) = app.store.get_cursor(STORED).await? else { return Ok(false) };
    match serde_json::from_str::<Trained>(&stored) {
        Ok(trained) => {
            app.config.matching.use_trained(Some(trained));
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(error = %e, "stored matching weights do not read; the configured ones stand");
            Ok(false)
        }
    }
}

/// Every lead's match record, or an even sample of [`SAMPLE`] of them.
async fn sample(app: &App) -> Result<Vec<Record>, StoreError> {
    let stride = app.store.count_leads().await?.div_ceil(SAMPLE).max(1);
    let (mut records, mut after, mut seen) = (Vec::new(), None, 0u64);
    loop {
        let page = app.store.list_leads(after, PAGE).await?;
        for lead in &page {
            if seen % stride == 0 {
                records.push(resolve::match_record(&lead.fields, &lead.derived));
            }
            seen += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.id),
            _ => return Ok(records),
        }
    }
}
