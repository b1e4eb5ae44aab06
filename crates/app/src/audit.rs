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

/// [`record`] for callers with a store but no application.
pub async fn record_in(store: &DynStore, entry: NewEntry) -> Result<(), StoreError> {
    store.append_audit(vec![entry]).await.map(drop)
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
