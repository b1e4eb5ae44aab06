//! Erasure, the right to be forgotten: the person behind a lead, and every lead merged
//! into it, lose all personal data wherever leadflow keeps it, in one transaction; a
//! tombstone stays for the reports, and each destination subscribed to `erased` gets a
//! `lead.erased` delivery with ids only (`leadflow_core::erase` decides what each row
//! keeps). Asked again, it answers with the earlier erasure and does nothing.

use crate::{App, metrics as m};
use leadflow_core::LeadId;
use leadflow_store::{ErasureReceipt, StoreError};

/// Who asks for an erasure, and why; both are kept in the lead's history, so never
/// personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub actor: String,
    pub reason: Option<String>,
}

/// Erases the person behind `lead` (a merged-away id erases its survivor). `None` when
/// there is no such lead; a conflict while an import job is unfinished (its stored file
/// may hold the person's row).
pub async fn erase(app: &App, lead: LeadId, request: Request) -> Result<Option<ErasureReceipt>, StoreError> {
    let Some(receipt) = app.store.erase_lead(lead, request.actor, request.reason).await? else {
        return Ok(None);
    };
    if !receipt.already_erased {
        app.wake.written();
        tracing::info!(lead_id = %receipt.lead_id, merged = receipt.merged_ids.len(), "lead erased");
        m::erased(receipt.merged_ids.len());
    }
    Ok(Some(receipt))
}
