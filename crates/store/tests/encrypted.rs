//! The SQLite store with personal data encrypted at rest: the whole conformance suite, and
//! what encryption itself promises (nothing personal in the files, lookups and matching
//! through blind indexes, rotation with re-encryption, switching it on for a database that
//! held data in clear).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_core::Email;
use leadflow_core::encryption::MasterKeys;
use leadflow_core::pipeline::Rules;
use leadflow_store::sqlite::SqliteStore;
use leadflow_store::{Captured, DynStore};
use leadflow_testkit::conformance::{Raw, TestStore};
use leadflow_testkit::encryption::{PLAIN, capture, lead_id, masters, person, reencrypt_all};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn open(path: &Path, keys: Option<&MasterKeys>) -> Result<DynStore, leadflow_store::StoreError> {
    Ok(Arc::new(SqliteStore::open_encrypted(path, Rules::default(), keys)?))
}

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("leadflow.db");
    let store = open(&path, Some(&masters(1, &[]))).expect("opens");
    TestStore { store, guard: Box::new(dir), raw: Raw::Sqlite(path) }
}

leadflow_testkit::conformance_suite!(fresh());

/// Every byte of the database, its WAL and shared-memory file, lowercased.
fn file_bytes(path: &Path) -> String {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", path.display())) {
            all.extend(bytes);
        }
    }
    String::from_utf8_lossy(&all).to_lowercase()
}

fn found_in(path: &Path) -> Vec<&'static str> {
    let bytes = file_bytes(path);
    PLAIN.into_iter().filter(|p| bytes.contains(p)).collect()
}

#[tokio::test]
async fn no_personal_data_reaches_the_files_and_lookups_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = open(&path, Some(&masters(1, &[]))).unwrap();
    let first = lead_id(&capture(&store, person(1)).await);
    // The same person again, with their address written differently: matched through the
    // blind mailbox index, not created twice.
    let mut again = person(1);
    again["email"] = json!("Wilhelmina.Zabrowski1@Quixotic-Example.com");
    match capture(&store, again).await {
        Captured::Settled { lead, outcome, .. } => {
            assert_eq!(lead.id, first);
            assert_eq!(outcome, leadflow_core::pipeline::Outcome::Merged);
        }
        other => panic!("{other:?}"),
    }
    capture(&store, person(2)).await;
    let email = Email::parse("wilhelmina.zabrowski1@quixotic-example.com").unwrap();
    let found = store.find_leads_by_email(&email).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].fields.first_name.as_deref(), Some("Wilhelmina"));
    assert_eq!(store.known_emails(vec![email.clone()]).await.unwrap(), vec![email]);
    assert_eq!(store.lead_history(first).await.unwrap().len(), 2);
    assert!(!store.list_leads(None, 10).await.unwrap().is_empty());
    // Still there, before and after the log is copied into the database file.
    assert_eq!(found_in(&path), Vec::<&str>::new());
    store.close().await.unwrap();
    assert_eq!(found_in(&path), Vec::<&str>::new());
    // The search is able to find what it looks for: in clear, the same data shows.
    let clear = dir.path().join("clear.db");
    let plain = open(&clear, None).unwrap();
    capture(&plain, person(1)).await;
    plain.close().await.unwrap();
    assert_eq!(found_in(&clear).len(), PLAIN.len(), "{:?}", found_in(&clear));
}

#[tokio::test]
async fn a_database_with_keys_refuses_to_open_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = open(&path, Some(&masters(1, &[]))).unwrap();
    capture(&store, person(1)).await;
    store.close().await.unwrap();
    drop(store);
    let refused = open(&path, None).err().expect("refused").to_string();
    assert!(refused.contains("key_env"), "{refused}");
    let refused = open(&path, Some(&masters(2, &[]))).err().expect("refused").to_string();
    assert!(refused.contains("previous_key_envs"), "{refused}");
}

#[tokio::test]
async fn a_new_master_key_writes_at_once_and_reencryption_retires_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = open(&path, Some(&masters(1, &[]))).unwrap();
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(lead_id(&capture(&store, person(n)).await));
    }
    store.close().await.unwrap();
    drop(store);
    let key_ids = |path: &Path| -> Vec<String> {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.prepare("SELECT id FROM encryption_keys WHERE purpose = 'data' ORDER BY created_at, id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let old = key_ids(&path);
    assert_eq!(old.len(), 1);

    // Rotated: the new master key is active, the old one readable.
    let store = open(&path, Some(&masters(2, &[1]))).unwrap();
    let keys = key_ids(&path);
    assert_eq!(keys.len(), 2);
    let new = keys.iter().find(|k| !old.contains(k)).unwrap().clone();
    assert_eq!(store.get_lead(ids[0]).await.unwrap().unwrap().fields.first_name.as_deref(), Some("Wilhelmina"));
    let late = lead_id(&capture(&store, person(99)).await);
    let docs_under = |path: &Path, key: &str| -> usize {
        let conn = rusqlite::Connection::open(path).unwrap();
        // The header of a sealed text: `lf2t` and the data key id.
        let prefix = format!("lf2t{key}").into_bytes();
        let docs: Vec<Vec<u8>> = conn
            .prepare("SELECT doc FROM leads")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        docs.iter().filter(|d| d.starts_with(&prefix)).count()
    };
    assert_eq!(docs_under(&path, &new), 1, "the new lead is sealed under the new key at once");
    assert_eq!(docs_under(&path, &old[0]), 30);

    // Re-encryption, in small steps, resumable: a store reopened halfway goes on.
    let step = store.reencrypt(7).await.unwrap();
    assert!(!step.done && step.rows > 0);
    store.close().await.unwrap();
    drop(store);
    let store = open(&path, Some(&masters(2, &[1]))).unwrap();
    let rows = step.rows + reencrypt_all(&store, 7).await;
    assert!(rows >= 31, "{rows}");
    assert_eq!(docs_under(&path, &old[0]), 0);
    assert_eq!(key_ids(&path), vec![new.clone()], "the old data key is dropped");
    store.close().await.unwrap();
    drop(store);

    // The old master key is no longer needed; everything reads, lookups still work.
    let store = open(&path, Some(&masters(2, &[]))).unwrap();
    for id in ids.iter().chain([&late]) {
        assert!(store.get_lead(*id).await.unwrap().is_some());
    }
    let email = Email::parse("wilhelmina.zabrowski3@quixotic-example.com").unwrap();
    assert_eq!(store.find_leads_by_email(&email).await.unwrap().len(), 1);
    assert!(store.reencrypt(100).await.unwrap().done);
}

/// Fuzzy matching on, so the resolver indexes leads under their matching keys.
fn open_fuzzy(path: &Path) -> DynStore {
    let rules = Rules {
        matching: Arc::new(leadflow_core::resolve::Matching { fuzzy: true, ..Default::default() }),
        ..Rules::default()
    };
    Arc::new(SqliteStore::open_encrypted(path, rules, Some(&masters(1, &[]))).unwrap())
}

async fn resolve_all(store: &DynStore) -> leadflow_store::ResolveBatch {
    let mut all = leadflow_store::ResolveBatch::default();
    loop {
        let batch = store.resolve_queued(100, time::OffsetDateTime::now_utc()).await.unwrap();
        let done = batch.taken < 100;
        all.extend(batch);
        if done {
            return all;
        }
    }
}

/// A store written before the current format holds `lf1` values (XChaCha20-Poly1305, a
/// 24-byte nonce), matching keys as full blind indexes (base64url of the whole hash) and no
/// format marker. Made here byte for byte the way the earlier code made them, with the data
/// key unwrapped from the key ring.
#[tokio::test]
async fn a_store_written_the_earlier_way_is_read_and_moved_to_the_current_way() {
    use aes_gcm_siv::Aes256GcmSiv;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = open_fuzzy(&path);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(lead_id(&capture(&store, person(n)).await));
    }
    resolve_all(&store).await;
    store.close().await.unwrap();
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let (key_id, wrapped): (String, String) = conn
        .query_row("SELECT id, wrapped FROM encryption_keys WHERE purpose = 'data'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let wrapped = URL_SAFE_NO_PAD.decode(wrapped).unwrap();
    let master = XChaCha20Poly1305::new(&[1u8; 32].into());
    let (nonce, body) = wrapped.split_at(24);
    let data_key = master.decrypt(nonce.into(), body).unwrap();
    let siv = Aes256GcmSiv::new_from_slice(&data_key).unwrap();
    let xchacha = XChaCha20Poly1305::new_from_slice(&data_key).unwrap();
    let docs: Vec<(String, Vec<u8>)> = conn
        .prepare("SELECT id, doc FROM leads")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(docs.len(), 5);
    for (id, doc) in docs {
        let header = format!("lf2t{key_id}").into_bytes();
        assert!(doc.starts_with(&header), "sealed the current way");
        let (nonce, body) = doc[header.len()..].split_at(12);
        let plain = siv.decrypt(nonce.into(), Payload { msg: body, aad: &header }).unwrap();
        let header = format!("lf1t{key_id}").into_bytes();
        let nonce = [7u8; 24];
        let mut old = header.clone();
        old.extend_from_slice(&nonce);
        old.extend(xchacha.encrypt(&nonce.into(), Payload { msg: &plain, aad: &header }).unwrap());
        conn.execute("UPDATE leads SET doc = ?2 WHERE id = ?1", rusqlite::params![id, old]).unwrap();
    }
    // Matching keys as full blind indexes: 32 bytes of hash whose first 8 are the key's.
    let keys: Vec<(Vec<u8>, String)> = conn
        .prepare("SELECT key, lead_id FROM lead_keys")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(keys.len() >= 5 && keys.iter().all(|(k, _)| k.len() == 8), "64-bit keys: {}", keys.len());
    for (key, lead) in &keys {
        let mut full = key.clone();
        full.extend_from_slice(&[0xa5; 24]);
        conn.execute(
            "UPDATE lead_keys SET key = ?3 WHERE key = ?1 AND lead_id = ?2",
            rusqlite::params![key, lead, URL_SAFE_NO_PAD.encode(&full)],
        )
        .unwrap();
    }
    conn.execute("DELETE FROM cursors WHERE name LIKE 'encryption.%'", []).unwrap();
    drop(conn);

    let store = open_fuzzy(&path);
    for id in &ids {
        let lead = store.get_lead(*id).await.unwrap().unwrap();
        assert_eq!(lead.fields.first_name.as_deref(), Some("Wilhelmina"));
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM lead_keys WHERE typeof(key) = 'blob' AND length(key) = 8"),
        keys.len() as i64
    );
    // Found by its matching keys: the same person without an email joins the stored lead.
    let mut again = person(3);
    again.as_object_mut().unwrap().remove("email");
    capture(&store, again).await;
    let merged = resolve_all(&store).await.merges;
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0].0, ids[3]);

    let rows = reencrypt_all(&store, 2).await;
    assert!(rows >= 5, "{rows}");
    store.close().await.unwrap();
    drop(store);
    assert_eq!(count("SELECT count(*) FROM leads WHERE substr(doc, 1, 3) = 'lf1'"), 0, "every value moved over");
    drop(conn);
    // Marked as moved: opening again starts no new run.
    let store = open_fuzzy(&path);
    assert_eq!(store.reencrypt(100).await.unwrap().rows, 0);
    assert_eq!(store.get_lead(ids[0]).await.unwrap().unwrap().fields.first_name.as_deref(), Some("Wilhelmina"));
}

#[tokio::test]
async fn switching_encryption_on_converts_what_was_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = open(&path, None).unwrap();
    let first = lead_id(&capture(&store, person(1)).await);
    capture(&store, person(2)).await;
    store.close().await.unwrap();
    drop(store);
    assert!(!found_in(&path).is_empty());

    let store = open(&path, Some(&masters(1, &[]))).unwrap();
    let email = Email::parse("wilhelmina.zabrowski1@quixotic-example.com").unwrap();
    assert_eq!(store.find_leads_by_email(&email).await.unwrap()[0].id, first);
    // Matching finds the converted lead: the same person merges into it.
    match capture(&store, person(1)).await {
        Captured::Settled { lead, .. } => assert_eq!(lead.id, first),
        other => panic!("{other:?}"),
    }
    assert!(store.reencrypt(100).await.unwrap().done, "the conversion finished before the store served");
    store.close().await.unwrap();
    assert_eq!(found_in(&path), Vec::<&str>::new());
}
