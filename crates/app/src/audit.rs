//! Recording administrative actions in the audit log ([`leadflow_core::audit`]).
//!
//! Callers record after the action succeeded, naming who acted with [`key_actor`],
//! [`CLI`] or [`SYSTEM`]. The store numbers, hashes and writes the entry in a transaction
//! of its own: the action is already committed then, so a failure to record is the
//! caller's to report (the server logs it and still answers with the action's outcome).

use crate::App;
use leadflow_core::KeyId;
use leadflow_store::{DynStore, StoreError};
use serde_json::json;

pub use leadflow_core::audit::{Action, Entry, NewEntry};

/// The actor of a command run on the machine (`leadflow keys create`, `leadflow export`).
pub const CLI: &str = "cli";
/// The actor of what leadflow does by itself (loading its configuration, retention).
pub const SYSTEM: &str = "system";

/// The actor of a request made with an API key: `key:<key id>`.
pub fn key_actor(id: KeyId) -> String {
    format!("key:{id}")
}

pub async fn record(app: &App, entry: NewEntry) -> Result<(), StoreError> {
    record_in(&app.store, entry).await
}

/// Several entries in one append: consecutive in the chain.
pub async fn record_all(app: &App, entries: Vec<NewEntry>) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    app.store.append_audit(entries).await.map(drop)
}

/// [`record`] for callers with a store but no application.
pub async fn record_in(store: &DynStore, entry: NewEntry) -> Result<(), StoreError> {
    store.append_audit(vec![entry]).await.map(drop)
}

/// What an erasure's entry says: ids and counts, and the reason given (a ticket number,
/// which the erasure keeps in the history too).
pub fn erased(receipt: &leadflow_store::ErasureReceipt, reason: Option<String>) -> serde_json::Value {
    json!({
        "merged_ids": receipt.merged_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "already_erased": receipt.already_erased,
        "reason": reason,
    })
}

/// A review's decision, made by the actor of `base` under its request id; a merge is
/// also recorded as `lead.merged` on the surviving lead (the review's candidate).
pub fn review_decided(review: &leadflow_store::Review, base: NewEntry) -> Vec<NewEntry> {
    let decided = NewEntry { target: review.id.to_string(), ..base.clone() }.detail(json!({
        "decision": review.status.as_str(),
        "lead_id": review.lead_id.to_string(),
        "candidate_id": review.candidate_id.to_string(),
    }));
    let mut entries = vec![decided];
    if review.status == leadflow_store::ReviewStatus::Merged {
        entries.push(
            NewEntry {
                action: Action::LeadMerged.as_str().to_owned(),
                target: review.candidate_id.to_string(),
                ..base
            }
            .detail(json!({"absorbed": review.lead_id.to_string(), "review_id": review.id.to_string()})),
        );
    }
    entries
}

/// A replayed delivery's entry: its destination, lead and status now.
pub fn replayed_one(base: NewEntry, d: &leadflow_store::OutboxDelivery) -> NewEntry {
    base.detail(json!({
        "destination": d.destination,
        "lead_id": d.lead_id.to_string(),
        "event_type": d.event_type,
        "status": d.status.as_str(),
    }))
}

/// A bulk replay's entry: the destination (or `*`), and how many went again.
pub fn replayed_many(base: NewEntry, filter: &leadflow_store::ReplayFilter, replayed: u64) -> NewEntry {
    let rfc3339 =
        |t: Option<time::OffsetDateTime>| t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    NewEntry { target: filter.destination.clone().unwrap_or_else(|| "*".into()), ..base }.detail(json!({
        "replayed": replayed,
        "from": rfc3339(filter.from),
        "to": rfc3339(filter.to),
    }))
}

/// The configuration `serve` starts with: the file's path and the SHA-256 of its bytes,
/// or the embedded defaults when no file was read.
pub fn config_loaded(file: Option<(&std::path::Path, &[u8])>) -> NewEntry {
    use sha2::{Digest, Sha256};
    match file {
        Some((path, bytes)) => {
            let sha256: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
            NewEntry::new(SYSTEM, Action::ConfigLoaded, "config")
                .detail(json!({"file": path.display().to_string(), "sha256": sha256}))
        }
        None => NewEntry::new(SYSTEM, Action::ConfigLoaded, "config")
            .detail(json!({"file": null, "sha256": "embedded default"})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_file_is_named_with_the_hash_of_its_bytes() {
        let entry = config_loaded(Some((std::path::Path::new("leadflow.toml"), b"abc")));
        assert_eq!(
            (entry.action.as_str(), entry.target.as_str(), entry.actor.as_str()),
            ("config.loaded", "config", "system")
        );
        assert_eq!(entry.detail["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(entry.detail["file"], "leadflow.toml");
        assert_eq!(config_loaded(None).detail["sha256"], "embedded default");
    }
}
