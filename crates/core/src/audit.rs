//! The audit log: who did what administrative action to what, when, under which request.
//!
//! Entries form a hash chain: each carries the SHA-256 of the one before ([`chain`]), so
//! changing, inserting or removing an entry in the middle breaks every later link, which
//! [`Verifier`] finds and names. The store only loads the head and writes what [`chain`]
//! decided; it serializes appends so the chain never forks.
//!
//! What an entry's hash covers, in this order, each field as a length-prefixed byte string
//! (an 8-byte big-endian length, then the bytes; an absent request id is the single byte
//! `0`, a present one `1` followed by its length-prefixed bytes): the version tag
//! `leadflow-audit-v1`, the sequence number and the time in unix milliseconds (both in
//! decimal), the actor, the action, the target, the request id, the detail as canonical
//! JSON (object keys sorted by their UTF-8 bytes, no whitespace, strings escaped as
//! serde_json escapes them), and the previous entry's hash. Length prefixes make the
//! encoding unambiguous whatever the fields hold; canonical JSON makes the detail's hash
//! independent of how a database hands its JSON back.
//!
//! What a chain cannot show: entries removed from its start (retention deletes the oldest
//! on purpose, so the first entry a verification sees is its anchor and its `prev_hash`
//! cannot be checked unless it is entry 1) or from its end. Against the latter, keep the
//! head hash that `leadflow audit verify` prints somewhere the database's writers cannot
//! reach, and compare.
//!
//! Details never hold personal data: ids, counts, names of configured things, reasons.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The `prev_hash` of entry 1.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const VERSION: &[u8] = b"leadflow-audit-v1";

/// The administrative actions recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    KeyCreated,
    KeyRevoked,
    KeyRotated,
    ConfigLoaded,
    LeadAssigned,
    LeadStageMoved,
    LeadMerged,
    LeadUnmerged,
    LeadSplit,
    ReviewDecided,
    DeliveryReplayed,
    DeliveriesReplayed,
    DeliveriesBackfilled,
    LeadErased,
    SuppressionAdded,
    SuppressionLifted,
    ConsentRecorded,
    LeadsExported,
    PersonExported,
    RetentionRun,
    UiLogin,
}

impl Action {
    pub const ALL: [Self; 21] = [
        Self::KeyCreated,
        Self::KeyRevoked,
        Self::KeyRotated,
        Self::ConfigLoaded,
        Self::LeadAssigned,
        Self::LeadStageMoved,
        Self::LeadMerged,
        Self::LeadUnmerged,
        Self::LeadSplit,
        Self::ReviewDecided,
        Self::DeliveryReplayed,
        Self::DeliveriesReplayed,
        Self::DeliveriesBackfilled,
        Self::LeadErased,
        Self::SuppressionAdded,
        Self::SuppressionLifted,
        Self::ConsentRecorded,
        Self::LeadsExported,
        Self::PersonExported,
        Self::RetentionRun,
        Self::UiLogin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::KeyCreated => "key.created",
            Self::KeyRevoked => "key.revoked",
            Self::KeyRotated => "key.rotated",
            Self::ConfigLoaded => "config.loaded",
            Self::LeadAssigned => "lead.assigned",
            Self::LeadStageMoved => "lead.stage_moved",
            Self::LeadMerged => "lead.merged",
            Self::LeadUnmerged => "lead.unmerged",
            Self::LeadSplit => "lead.split",
            Self::ReviewDecided => "review.decided",
            Self::DeliveryReplayed => "delivery.replayed",
            Self::DeliveriesReplayed => "deliveries.replayed",
            Self::DeliveriesBackfilled => "deliveries.backfilled",
            Self::LeadErased => "lead.erased",
            Self::SuppressionAdded => "suppression.added",
            Self::SuppressionLifted => "suppression.lifted",
            Self::ConsentRecorded => "consent.recorded",
            Self::LeadsExported => "leads.exported",
            Self::PersonExported => "person.exported",
            Self::RetentionRun => "retention.run",
            Self::UiLogin => "ui.login",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action to record, before the chain numbers and hashes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    /// `key:<key id>`, `cli` or `system`.
    pub actor: String,
    pub action: String,
    /// What was acted on: a lead, review, delivery or key id, a destination, `config`.
    pub target: String,
    /// The request's `x-request-id`, when it came over HTTP.
    pub request_id: Option<String>,
    /// Ids, counts, names of configured things, reasons; never personal data.
    pub detail: Value,
}

impl NewEntry {
    pub fn new(actor: impl Into<String>, action: Action, target: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action: action.as_str().to_owned(),
            target: target.into(),
            request_id: None,
            detail: Value::Object(serde_json::Map::new()),
        }
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// An entry as the log holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub detail: Value,
    /// Lowercase hex SHA-256; [`GENESIS`] for entry 1.
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// The hash this entry's fields call for (see the module's documentation).
    pub fn computed_hash(&self) -> String {
        let mut h = Sha256::new();
        field(&mut h, VERSION);
        field(&mut h, self.seq.to_string().as_bytes());
        field(&mut h, millis(self.at).to_string().as_bytes());
        field(&mut h, self.actor.as_bytes());
        field(&mut h, self.action.as_bytes());
        field(&mut h, self.target.as_bytes());
        match &self.request_id {
            None => h.update([0u8]),
            Some(id) => {
                h.update([1u8]);
                field(&mut h, id.as_bytes());
            }
        }
        field(&mut h, canonical_json(&self.detail).as_bytes());
        field(&mut h, self.prev_hash.as_bytes());
        hex(&h.finalize())
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn millis(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos().div_euclid(1_000_000)
}

/// `t` without its sub-millisecond part: what both stores keep exactly (SQLite as integer
/// milliseconds), so an entry read back hashes as it was written.
pub fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(millis(t) * 1_000_000).unwrap_or(t)
}

/// JSON with object keys sorted and no whitespace, whatever order the value holds them in.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(value) = map.get(k) {
                    write_canonical(value, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Numbers and hashes `entries` after `head` (the last entry's seq and hash; `None` for an
/// empty log), all at `at` (truncated to the millisecond).
pub fn chain(head: Option<(u64, &str)>, entries: Vec<NewEntry>, at: OffsetDateTime) -> Vec<Entry> {
    let at = truncate_to_millis(at);
    let (mut seq, mut prev) = head.map_or((0, GENESIS.to_owned()), |(s, h)| (s, h.to_owned()));
    entries
        .into_iter()
        .map(|e| {
            seq += 1;
            let mut entry = Entry {
                seq,
                at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                request_id: e.request_id,
                detail: e.detail,
                prev_hash: std::mem::take(&mut prev),
                hash: String::new(),
            };
            entry.hash = entry.computed_hash();
            prev.clone_from(&entry.hash);
            entry
        })
        .collect()
}

/// The first entry that breaks the chain, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {reason}")]
pub struct Broken {
    pub seq: u64,
    pub reason: String,
}

/// Checks entries handed to it in ascending order, page by page, without holding them.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    /// The seq and hash of the last entry accepted.
    last: Option<(u64, String)>,
    first: Option<u64>,
    count: u64,
}

/// What a verification that found nothing broken saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    /// The anchor: the oldest entry seen (retention may have deleted older ones).
    pub first_seq: Option<u64>,
    /// The newest entry's seq and hash.
    pub head: Option<(u64, String)>,
}

impl Verifier {
    /// Checks the entry's own hash, then its place: the seq right after the last entry's
    /// and its `prev_hash` equal to that entry's hash. The first entry pushed is the
    /// anchor: only as entry 1 can its `prev_hash` be checked (against [`GENESIS`]).
    pub fn push(&mut self, e: &Entry) -> Result<(), Broken> {
        let broken = |reason: String| Broken { seq: e.seq, reason };
        let computed = e.computed_hash();
        if computed != e.hash {
            return Err(broken(format!(
                "hash mismatch: the entry's fields hash to {computed}, it says {} (changed after it was written)",
                e.hash
            )));
        }
        match &self.last {
            None if e.seq == 1 && e.prev_hash != GENESIS => {
                return Err(broken("link broken: entry 1 must follow the genesis hash (64 zeros)".into()));
            }
            None => self.first = Some(e.seq),
            Some((seq, _)) if e.seq <= *seq => {
                return Err(broken(format!("out of order: it comes after entry {seq}")));
            }
            Some((seq, _)) if e.seq != seq + 1 => {
                let missing = if e.seq == seq + 2 {
                    format!("entry {} is missing", seq + 1)
                } else {
                    format!("entries {} to {} are missing", seq + 1, e.seq - 1)
                };
                return Err(broken(format!("gap: {missing}")));
            }
            Some((seq, hash)) if e.prev_hash != *hash => {
                return Err(broken(format!(
                    "link broken: its prev_hash {} is not entry {seq}'s hash {hash} (an entry was changed or replaced)",
                    e.prev_hash
                )));
            }
            Some(_) => {}
        }
        self.last = Some((e.seq, e.hash.clone()));
        self.count += 1;
        Ok(())
    }

    pub fn finish(self) -> Verified {
        Verified { entries: self.count, first_seq: self.first, head: self.last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_789).unwrap()
    }

    fn new(i: usize) -> NewEntry {
        NewEntry::new(format!("key:{i}"), Action::LeadErased, format!("lead-{i}"))
            .detail(json!({"merged": i, "reason": "ticket 7"}))
            .request_id(i.is_multiple_of(2).then(|| format!("req-{i}")))
    }

    fn verify(entries: &[Entry]) -> Result<Verified, Broken> {
        let mut v = Verifier::default();
        for e in entries {
            v.push(e)?;
        }
        Ok(v.finish())
    }

    #[test]
    fn the_first_entry_follows_genesis_and_each_links_to_the_one_before() {
        let entries = chain(None, (0..3).map(new).collect(), at());
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(entries[0].prev_hash, GENESIS);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert_eq!(entries[2].prev_hash, entries[1].hash);
        assert!(entries.iter().all(|e| e.hash.len() == 64 && e.hash.bytes().all(|b| b.is_ascii_hexdigit())));
        assert_eq!(entries[0].at.nanosecond(), 123_000_000, "kept to the millisecond");
        let more = chain(Some((3, &entries[2].hash)), vec![new(4)], at());
        assert_eq!((more[0].seq, more[0].prev_hash.as_str()), (4, entries[2].hash.as_str()));
        let all: Vec<Entry> = entries.into_iter().chain(more).collect();
        let verified = verify(&all).unwrap();
        assert_eq!((verified.entries, verified.first_seq), (4, Some(1)));
        assert_eq!(verified.head, Some((4, all[3].hash.clone())));
    }

    #[test]
    fn the_hash_ignores_key_order_but_not_where_a_field_ends() {
        let mut a = chain(None, vec![new(1).detail(json!({"a": 1, "b": [true, null]}))], at()).remove(0);
        let reordered: Value = serde_json::from_str(r#"{"b": [true, null], "a": 1}"#).unwrap();
        a.detail = reordered;
        assert_eq!(a.computed_hash(), a.hash);
        // Moving text from one field to the next keeps the concatenation, not the hash.
        let (mut b, mut c) = (a.clone(), a.clone());
        b.actor = "key:1lead".into();
        b.action = "".into();
        c.actor = "key:1".into();
        c.action = "lead".into();
        assert_ne!(b.computed_hash(), c.computed_hash());
        let (mut none, mut empty) = (a.clone(), a.clone());
        none.request_id = None;
        empty.request_id = Some(String::new());
        assert_ne!(none.computed_hash(), empty.computed_hash());
    }

    #[test]
    fn a_changed_entry_is_named_with_a_hash_mismatch() {
        let mut entries = chain(None, (0..5).map(new).collect(), at());
        entries[2].detail = json!({"merged": 99, "reason": "ticket 7"});
        let broken = verify(&entries).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.reason.starts_with("hash mismatch"), "{}", broken.reason);
        assert!(broken.to_string().starts_with("entry 3: hash mismatch"));
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let mut entries = chain(None, (0..5).map(new).collect(), at());
        entries[2].target = "lead-other".into();
        entries[2].hash = entries[2].computed_hash();
        let broken = verify(&entries).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.reason.starts_with("link broken"), "{}", broken.reason);
    }

    #[test]
    fn a_removed_entry_is_a_gap() {
        let mut entries = chain(None, (0..5).map(new).collect(), at());
        entries.remove(2);
        let broken = verify(&entries).unwrap_err();
        assert_eq!(broken, Broken { seq: 4, reason: "gap: entry 3 is missing".into() });
        entries.remove(2);
        assert_eq!(verify(&entries).unwrap_err().reason, "gap: entries 3 to 4 are missing");
    }

    #[test]
    fn a_chain_whose_oldest_entries_were_deleted_verifies_from_its_anchor() {
        let entries = chain(None, (0..5).map(new).collect(), at());
        let verified = verify(&entries[2..]).unwrap();
        assert_eq!((verified.entries, verified.first_seq), (3, Some(3)));
        assert_eq!(verify(&[]).unwrap(), Verified { entries: 0, first_seq: None, head: None });
    }

    #[test]
    fn entry_one_must_follow_genesis() {
        let mut entries = chain(Some((0, "f".repeat(64).as_str())), vec![new(1)], at());
        assert_eq!(entries[0].seq, 1);
        entries[0].hash = entries[0].computed_hash();
        assert!(verify(&entries).unwrap_err().reason.starts_with("link broken"));
    }

    #[test]
    fn action_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("lead.created"), None);
        assert_eq!(Action::UiLogin.to_string(), "ui.login");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_json_is_json_that_reads_back_as_the_value(v in json_value()) {
            let text = canonical_json(&v);
            prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v.clone());
            let reread: Value = serde_json::from_str(&serde_json::to_string_pretty(&v).unwrap()).unwrap();
            prop_assert_eq!(canonical_json(&reread), text);
        }

        #[test]
        fn any_chain_verifies_and_any_single_change_is_found_at_or_after_it(
            details in prop::collection::vec(json_value(), 1..8),
            pick in any::<prop::sample::Index>(),
            actor in ".{0,6}",
        ) {
            let news: Vec<NewEntry> =
                details.into_iter().map(|d| NewEntry::new("cli", Action::KeyCreated, "key:1").detail(d)).collect();
            let mut entries = chain(None, news, at());
            prop_assert!(verify(&entries).is_ok());
            let i = pick.index(entries.len());
            if entries[i].actor != actor {
                entries[i].actor = actor;
                let broken = verify(&entries).unwrap_err();
                prop_assert_eq!(broken.seq, entries[i].seq);
            }
        }
    }
}
