//! What both backends read alike when erasing a person, beside their SQL. Every decision
//! is the core's ([`leadflow_core::erase::plan`]); each backend's `erase` module loads
//! what a step asks for and applies the writes it returns.

use crate::{DeliveryStatus, StoreError};
use leadflow_core::erase::plan::{OutboxState, Refused};

/// The core refused to erase while an import is unfinished.
impl From<Refused> for StoreError {
    fn from(refused: Refused) -> Self {
        Self::Conflict(refused.to_string())
    }
}

/// An outbox row's stored status, as erasure tells them apart.
pub(crate) fn outbox_state(status: &str) -> Result<OutboxState, StoreError> {
    match DeliveryStatus::parse(status) {
        Some(DeliveryStatus::Pending) => Ok(OutboxState::Pending),
        Some(DeliveryStatus::Delivered) => Ok(OutboxState::Delivered),
        Some(DeliveryStatus::Dead | DeliveryStatus::NeedsData | DeliveryStatus::BlockedConsent) => {
            Ok(OutboxState::Stopped)
        }
        None => Err(StoreError::Corrupt(format!("outbox status {status:?}"))),
    }
}
