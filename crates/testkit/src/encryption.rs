//! What the encrypted store tests of both backends share: master keys, a person whose
//! every personal value is distinctive enough to be searched for in the raw database, and
//! the calls they repeat.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use leadflow_core::LeadId;
use leadflow_core::SourceName;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Picklists, SourceConfig};
use leadflow_core::encryption::{MasterKey, MasterKeys};
use leadflow_core::pipeline::prepare;
use leadflow_store::{CaptureItem, Captured, DynStore};
use serde_json::{Value, json};

/// Master keys of fixed bytes: `active`, and the `previous` ones still readable.
pub fn masters(active: u8, previous: &[u8]) -> MasterKeys {
    MasterKeys {
        active: MasterKey::new([active; 32]),
        previous: previous.iter().map(|b| MasterKey::new([*b; 32])).collect(),
    }
}

/// A submission of the `api` source, prepared.
fn item(v: Value) -> CaptureItem {
    let Value::Object(payload) = v else { panic!("an object") };
    let submission = RawSubmission::new(SourceName::api(), None, payload);
    let candidate = prepare(&submission.payload, &SourceConfig::api(), &Picklists::default()).unwrap();
    CaptureItem { submission, candidate }
}

/// Person `n`: their values appear nowhere else, so finding one in the raw database means
/// it was stored in clear.
pub fn person(n: usize) -> Value {
    json!({
        "email": format!("wilhelmina.zabrowski{n}@quixotic-example.com"),
        "first_name": "Wilhelmina",
        "last_name": format!("Zabrowski{n}"),
        "phone": format!("+1 415 555 {:04}", 1000 + n),
        "company": "Quixotic Widgets",
        "street": "77 Marzipan Boulevard",
        "custom": {"favourite_fruit": "rambutan"},
        "external_id": format!("crm-zz-{n}"),
    })
}

/// What must not be in the raw database with encryption on, of person 1: names, the email
/// (its mailbox; the domain is the company's, kept in clear on its account), the phone
/// either way, the street and a custom value.
pub const PLAIN: [&str; 7] = ["wilhelmina", "zabrowski", "zabrowski1@", "555 10", "5551001", "marzipan", "rambutan"];

pub async fn capture(store: &DynStore, v: Value) -> Captured {
    store.capture(vec![item(v)]).await.unwrap().remove(0)
}

pub fn lead_id(c: &Captured) -> LeadId {
    match c {
        Captured::Settled { lead, .. } => lead.id,
        other => panic!("{other:?}"),
    }
}

/// Runs re-encryption in steps of `limit` rows until it is done; the rows rewritten.
pub async fn reencrypt_all(store: &DynStore, limit: usize) -> u64 {
    let mut rows = 0;
    loop {
        let step = store.reencrypt(limit).await.unwrap();
        rows += step.rows;
        if step.done {
            return rows;
        }
    }
}
