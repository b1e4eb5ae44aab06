//! One module per API resource.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod changes;
pub mod conversations;
pub mod deliveries;
pub mod erasure;
pub mod events;
pub mod feedback;
pub mod health;
pub mod hooks;
pub mod imports;
pub mod leads;
pub mod meta;
pub mod privacy;
pub mod quarantine;
pub mod reports;
pub mod reviews;
pub mod sources;
pub mod stages;
pub mod subject;
