//! Personal data at rest: sealed per value with AES-256-GCM-SIV under envelope data keys,
//! and looked up through keyed blind indexes.
//!
//! A store keeps its keys in `encryption_keys`: data keys, each wrapped (sealed) by a master
//! key from the environment, and one blind-index key. New values are sealed under the data
//! key of the active master key; older data keys stay readable for as long as their master
//! key is configured, and the re-encryption job moves every value onto the active one, then
//! drops the rest. The blind-index key outlives master keys (it is re-wrapped, never
//! replaced), so a rotation never has to rebuild the lookup columns.
//!
//! A sealed value is stored as a blob: `lf2`, `t` (it was text) or `b` (a blob), the
//! 12-character data key id, the 12-byte nonce and the ciphertext with its tag. Binary,
//! since base64 cost as much time as the cipher and a third more bytes in every commit. The
//! prefix and key id are the associated data, so a value cannot be passed off as sealed
//! under another key or as the other kind. GCM-SIV, because random 96-bit nonces are safe
//! with it for any number of values (a repeated nonce reveals only that two values are
//! equal), and because AES-NI seals a match record three times faster than the ChaCha20
//! code did. `lf1` values (XChaCha20-Poly1305, a 24-byte nonce), written before, stay
//! readable; re-encryption moves them to `lf2`. A value without a prefix is plaintext, read
//! as it is: what a database held before encryption was switched on, until it has been
//! converted.

use aes_gcm_siv::Aes256GcmSiv;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, AeadInPlace, KeyInit, Payload};
use hmac::{Hmac, Mac};
use leadflow_core::encryption::{MasterKey, MasterKeys};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;

const TEXT: u8 = b't';
const BLOB: u8 = b'b';
const KEY_ID_LEN: usize = 12;
/// Bytes of a matching key's blind index ([`Cipher::blind_key`]).
pub const KEY_BLIND_LEN: usize = 8;
/// The prefix, the kind and the key id.
const HEADER_LEN: usize = 3 + 1 + KEY_ID_LEN;

/// The two ways a value may be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aead {
    /// `lf2`: AES-256-GCM-SIV, what values are sealed with.
    Siv,
    /// `lf1`: XChaCha20-Poly1305, what values were sealed with before; still what wraps keys.
    XChaCha,
}

impl Aead {
    fn prefix(self) -> &'static [u8] {
        match self {
            Self::Siv => b"lf2",
            Self::XChaCha => b"lf1",
        }
    }

    fn nonce_len(self) -> usize {
        match self {
            Self::Siv => 12,
            Self::XChaCha => 24,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("a value is sealed under data key {0}, which this store does not hold")]
    UnknownKey(String),
    #[error("a sealed value is damaged or was sealed under another key")]
    Damaged,
    #[error(
        "data key {key} is wrapped by master key {master}, which is not configured: add it to [encryption] previous_key_envs until re-encryption has finished"
    )]
    MissingMaster { key: String, master: String },
    #[error("this database holds encrypted data: configure [encryption] key_env with its master key")]
    KeyRequired,
    #[error("cannot draw random bytes: {0}")]
    Random(String),
}

/// What a sealed value or a wrapped key is made with.
struct DataKey {
    id: String,
    siv: Aes256GcmSiv,
    xchacha: XChaCha20Poly1305,
}

impl DataKey {
    fn new(id: String, bytes: &[u8; 32]) -> Self {
        Self { id, siv: Aes256GcmSiv::new(bytes.into()), xchacha: XChaCha20Poly1305::new(bytes.into()) }
    }

    /// `header` (authenticated, not encrypted), the nonce, the ciphertext and its tag.
    fn seal(&self, aead: Aead, header: &[u8], plain: &[u8]) -> Result<Vec<u8>, CipherError> {
        let nonce_len = aead.nonce_len();
        let mut out = Vec::with_capacity(header.len() + nonce_len + plain.len() + 16);
        out.extend_from_slice(header);
        out.resize(header.len() + nonce_len, 0);
        getrandom::fill(&mut out[header.len()..]).map_err(|e| CipherError::Random(e.to_string()))?;
        let body = out.len();
        out.extend_from_slice(plain);
        let (head, body) = out.split_at_mut(body);
        let (header, nonce) = head.split_at(header.len());
        let tag = match aead {
            Aead::Siv => self.siv.encrypt_in_place_detached(nonce.into(), header, body),
            Aead::XChaCha => self.xchacha.encrypt_in_place_detached(nonce.into(), header, body),
        }
        .map_err(|_| CipherError::Damaged)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The plaintext of what [`Self::seal`] made with a header of `header_len` bytes.
    fn open(&self, aead: Aead, sealed: &[u8], header_len: usize) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < header_len + aead.nonce_len() {
            return Err(CipherError::Damaged);
        }
        let (header, rest) = sealed.split_at(header_len);
        let (nonce, body) = rest.split_at(aead.nonce_len());
        let payload = Payload { msg: body, aad: header };
        match aead {
            Aead::Siv => self.siv.decrypt(nonce.into(), payload),
            Aead::XChaCha => self.xchacha.decrypt(nonce.into(), payload),
        }
        .map_err(|_| CipherError::Damaged)
    }
}

fn master_aead(master: &MasterKey) -> DataKey {
    DataKey::new(format!("master:{}", master.id()), master.bytes())
}

/// What one step of re-encryption did ([`crate::Store::reencrypt`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reencrypted {
    /// Rows rewritten.
    pub rows: u64,
    /// Nothing is left under an older key (or in clear); older data keys were dropped.
    pub done: bool,
}

/// Where re-encryption stands, kept in the store's `cursors` row [`PROGRESS_CURSOR`]: the
/// step (table) it is at and the last key done there. `convert`: the database held data in
/// clear when encryption was switched on, so the lookup columns become blind indexes too
/// (only then: the index key never changes).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Progress {
    pub step: usize,
    pub after: Option<String>,
    pub convert: bool,
}

pub(crate) const PROGRESS_CURSOR: &str = "encryption.reencrypt";

impl Progress {
    /// The run a key ring just opened needs when none is under way: converting what the
    /// database held in clear when its ring was made now (`fresh`), or moving values off
    /// older data keys; `None` when neither.
    pub(crate) fn needed(fresh: bool, cipher: &Cipher) -> Option<Self> {
        (fresh || !cipher.older_keys().is_empty()).then_some(Self { step: 0, after: None, convert: fresh })
    }
}

impl From<CipherError> for crate::StoreError {
    fn from(e: CipherError) -> Self {
        match e {
            CipherError::Random(_) => Self::Internal(e.to_string()),
            _ => Self::Unavailable(e.to_string()),
        }
    }
}

/// A row of `encryption_keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub purpose: Purpose,
    pub master_id: String,
    /// The key sealed by its master key, base64url.
    pub wrapped: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Data,
    Index,
}

impl Purpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Index => "index",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Data, Self::Index].into_iter().find(|p| p.as_str() == s)
    }
}

/// What opening a store's key ring asks it to write: new keys, and keys re-wrapped under
/// the active master key.
#[derive(Debug, Default)]
pub struct KeyringChanges {
    pub insert: Vec<StoredKey>,
    pub rewrap: Vec<StoredKey>,
}

/// The keys a store seals and looks up with. Never printed.
pub struct Cipher {
    active: DataKey,
    data: HashMap<String, DataKey>,
    index: Hmac<Sha256>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cipher(active data key {})", self.active.id)
    }
}

impl Cipher {
    /// Opens the key ring a store holds with the configured master keys, creating what is
    /// missing: a data key under the active master key (so writes move to a new master key
    /// at once) and, the first time, the blind-index key.
    pub fn from_keyring(stored: &[StoredKey], masters: &MasterKeys) -> Result<(Self, KeyringChanges), CipherError> {
        let mut changes = KeyringChanges::default();
        let unwrap = |key: &StoredKey| -> Result<[u8; 32], CipherError> {
            let master = masters
                .find(&key.master_id)
                .ok_or_else(|| CipherError::MissingMaster { key: key.id.clone(), master: key.master_id.clone() })?;
            let sealed = URL_SAFE_NO_PAD.decode(&key.wrapped).map_err(|_| CipherError::Damaged)?;
            let plain = master_aead(master).open(Aead::XChaCha, &sealed, 0)?;
            plain.try_into().map_err(|_| CipherError::Damaged)
        };
        let active_master = &masters.active;
        let mut data = HashMap::new();
        let mut active = None;
        let mut index = None;
        for key in stored {
            let bytes = unwrap(key)?;
            match key.purpose {
                Purpose::Data => {
                    if key.master_id == active_master.id() {
                        active = Some(key.id.clone());
                    }
                    data.insert(key.id.clone(), DataKey::new(key.id.clone(), &bytes));
                }
                Purpose::Index => {
                    if key.master_id != active_master.id() {
                        changes.rewrap.push(wrap(&key.id, Purpose::Index, &bytes, active_master)?);
                    }
                    index = Some(bytes);
                }
            }
        }
        let active = match active {
            Some(id) => id,
            None => {
                let bytes = random_key()?;
                let id = new_key_id()?;
                changes.insert.push(wrap(&id, Purpose::Data, &bytes, active_master)?);
                data.insert(id.clone(), DataKey::new(id.clone(), &bytes));
                id
            }
        };
        let index = match index {
            Some(bytes) => bytes,
            None => {
                let bytes = random_key()?;
                changes.insert.push(wrap(&new_key_id()?, Purpose::Index, &bytes, active_master)?);
                bytes
            }
        };
        let active = data.remove(&active).ok_or(CipherError::Damaged)?;
        let index = <Hmac<Sha256> as Mac>::new_from_slice(&index).map_err(|_| CipherError::Damaged)?;
        Ok((Self { active, data, index }, changes))
    }

    /// The id of the data key new values are sealed under.
    pub fn active_key(&self) -> &str {
        &self.active.id
    }

    /// The ids of the data keys held besides the active one: those re-encryption retires.
    pub fn older_keys(&self) -> Vec<String> {
        self.data.keys().cloned().collect()
    }

    fn key(&self, id: &str) -> Result<&DataKey, CipherError> {
        if id == self.active.id {
            return Ok(&self.active);
        }
        self.data.get(id).ok_or_else(|| CipherError::UnknownKey(id.to_owned()))
    }

    /// Seals a value; `text` says whether it was text (opened back as text).
    pub fn seal(&self, plain: &[u8], text: bool) -> Result<Vec<u8>, CipherError> {
        self.seal_with(Aead::Siv, plain, text)
    }

    fn seal_with(&self, aead: Aead, plain: &[u8], text: bool) -> Result<Vec<u8>, CipherError> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(aead.prefix());
        header.push(if text { TEXT } else { BLOB });
        header.extend_from_slice(self.active.id.as_bytes());
        self.active.seal(aead, &header, plain)
    }

    /// The plaintext of a stored value and whether it was text; `None` when the value is
    /// not sealed (plaintext, read as it is).
    pub fn open(&self, stored: &[u8]) -> Result<Option<(bool, Vec<u8>)>, CipherError> {
        let Some((aead, text)) = kind(stored) else { return Ok(None) };
        let id = stored.get(HEADER_LEN - KEY_ID_LEN..HEADER_LEN).ok_or(CipherError::Damaged)?;
        let id = std::str::from_utf8(id).map_err(|_| CipherError::Damaged)?;
        Ok(Some((text, self.key(id)?.open(aead, stored, HEADER_LEN)?)))
    }

    /// Whether a stored value is sealed the current way under the active data key
    /// (re-encryption leaves those alone).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        kind(stored).is_some_and(|(aead, _)| aead == Aead::Siv)
            && stored.get(HEADER_LEN - KEY_ID_LEN..HEADER_LEN) == Some(self.active.id.as_bytes())
    }

    /// The blind index of a matching key: the first 64 bits of [`Self::blind`]'s hash, as
    /// bytes. A lead writes eight of them and the resolver looks each up, and uniformly
    /// random keys each dirty their own index page: the full 43-character index made an
    /// encrypted import a fifth slower than this one. A collision is harmless, since the key
    /// only proposes a candidate that the core then compares on its opened record.
    pub fn blind_key(&self, value: &str) -> [u8; KEY_BLIND_LEN] {
        let mut mac = self.index.clone();
        mac.update(value.as_bytes());
        let mut key = [0u8; KEY_BLIND_LEN];
        key.copy_from_slice(&mac.finalize().into_bytes()[..KEY_BLIND_LEN]);
        key
    }

    /// The blind index of a value: a keyed hash, equal for equal values, that tells nothing
    /// about the value without the key.
    pub fn blind(&self, value: &str) -> String {
        let mut mac = self.index.clone();
        mac.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// A matching key's blind index from the full one an earlier version stored (base64url of
/// the whole hash): its first bytes are the same hash's. `None` for anything else.
pub fn blind_key_of_full(full: &str) -> Option<[u8; KEY_BLIND_LEN]> {
    let hash = URL_SAFE_NO_PAD.decode(full).ok().filter(|h| h.len() == 32)?;
    let mut key = [0u8; KEY_BLIND_LEN];
    key.copy_from_slice(&hash[..KEY_BLIND_LEN]);
    Some(key)
}

/// Whether a stored value is sealed, and if so how and whether it was text.
fn kind(stored: &[u8]) -> Option<(Aead, bool)> {
    let aead = [Aead::Siv, Aead::XChaCha].into_iter().find(|a| stored.starts_with(a.prefix()))?;
    match *stored.get(aead.prefix().len())? {
        TEXT => Some((aead, true)),
        BLOB => Some((aead, false)),
        _ => None,
    }
}

fn wrap(id: &str, purpose: Purpose, bytes: &[u8; 32], master: &MasterKey) -> Result<StoredKey, CipherError> {
    let sealed = master_aead(master).seal(Aead::XChaCha, &[], bytes)?;
    Ok(StoredKey {
        id: id.to_owned(),
        purpose,
        master_id: master.id().to_owned(),
        wrapped: URL_SAFE_NO_PAD.encode(sealed),
    })
}

fn random_key() -> Result<[u8; 32], CipherError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CipherError::Random(e.to_string()))?;
    Ok(bytes)
}

fn new_key_id() -> Result<String, CipherError> {
    let mut bytes = [0u8; KEY_ID_LEN / 2];
    getrandom::fill(&mut bytes).map_err(|e| CipherError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masters(active: u8, previous: &[u8]) -> MasterKeys {
        MasterKeys {
            active: MasterKey::new([active; 32]),
            previous: previous.iter().map(|b| MasterKey::new([*b; 32])).collect(),
        }
    }

    fn ring(masters: &MasterKeys, stored: &mut Vec<StoredKey>) -> Cipher {
        let (cipher, changes) = Cipher::from_keyring(stored, masters).unwrap();
        for key in changes.rewrap {
            stored.retain(|k| k.id != key.id);
            stored.push(key);
        }
        stored.extend(changes.insert);
        cipher
    }

    fn opened(cipher: &Cipher, stored: &[u8]) -> Result<Option<(bool, Vec<u8>)>, CipherError> {
        cipher.open(stored)
    }

    #[test]
    fn values_round_trip_and_carry_their_key() {
        let mut stored = Vec::new();
        let cipher = ring(&masters(1, &[]), &mut stored);
        assert_eq!(stored.len(), 2);
        let sealed = cipher.seal(b"ada@example.com", true).unwrap();
        assert!(sealed.starts_with(format!("lf2t{}", cipher.active_key()).as_bytes()));
        assert_eq!(sealed.len(), HEADER_LEN + 12 + b"ada@example.com".len() + 16);
        assert!(!sealed.windows(3).any(|w| w == b"ada"));
        assert_eq!(opened(&cipher, &sealed).unwrap(), Some((true, b"ada@example.com".to_vec())));
        assert_ne!(cipher.seal(b"ada@example.com", true).unwrap(), sealed, "a fresh nonce each time");
        let blob = cipher.seal(b"email\nada@example.com\n", false).unwrap();
        assert_eq!(opened(&cipher, &blob).unwrap(), Some((false, b"email\nada@example.com\n".to_vec())));
        assert!(cipher.is_current(&sealed) && cipher.is_current(&blob));
        assert_eq!(opened(&cipher, b"plain text").unwrap(), None);
        assert_eq!(cipher.blind("ada@example.com"), cipher.blind("ada@example.com"));
        assert_ne!(cipher.blind("ada@example.com"), cipher.blind("ada@example.org"));
    }

    proptest::proptest! {
        /// Whatever a column holds, opening it answers (a value, or an error): never a panic.
        #[test]
        fn opening_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let cipher = ring(&masters(3, &[]), &mut Vec::new());
            let _ = cipher.open(&bytes);
            for prefix in [&b"lf1t"[..], b"lf1b", b"lf2t", b"lf2b"] {
                let mut stored = prefix.to_vec();
                stored.extend_from_slice(&bytes);
                let _ = cipher.open(&stored);
                let mut keyed = prefix.to_vec();
                keyed.extend_from_slice(cipher.active_key().as_bytes());
                keyed.extend_from_slice(&bytes);
                proptest::prop_assert!(cipher.open(&keyed).is_err());
            }
        }

        /// Every value comes back as it went in, with its kind.
        #[test]
        fn sealing_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), text: bool) {
            let cipher = ring(&masters(4, &[]), &mut Vec::new());
            let sealed = cipher.seal(&bytes, text).unwrap();
            proptest::prop_assert_eq!(cipher.open(&sealed).unwrap(), Some((text, bytes)));
        }
    }

    /// Values sealed before GCM-SIV (`lf1`, XChaCha20-Poly1305) open as they did, and are
    /// not current, so re-encryption rewrites them.
    #[test]
    fn values_sealed_the_earlier_way_stay_readable() {
        let cipher = ring(&masters(1, &[]), &mut Vec::new());
        for (plain, text) in [(&b"ada@example.com"[..], true), (b"\x00\x01record", false)] {
            let old = cipher.seal_with(Aead::XChaCha, plain, text).unwrap();
            assert!(old.starts_with(b"lf1"));
            assert_eq!(old.len(), HEADER_LEN + 24 + plain.len() + 16);
            assert_eq!(cipher.open(&old).unwrap(), Some((text, plain.to_vec())));
            assert!(!cipher.is_current(&old));
            // The way a value was sealed is authenticated: relabelled, it does not open.
            let mut relabelled = old.clone();
            relabelled[2] = b'2';
            assert_eq!(cipher.open(&relabelled), Err(CipherError::Damaged));
        }
    }

    #[test]
    fn matching_keys_are_the_blind_index_cut_short() {
        let cipher = ring(&masters(1, &[]), &mut Vec::new());
        let key = cipher.blind_key("n:SM0:j");
        assert_eq!(key, cipher.blind_key("n:SM0:j"));
        assert_ne!(key, cipher.blind_key("n:SM0:k"));
        assert_eq!(blind_key_of_full(&cipher.blind("n:SM0:j")), Some(key));
        assert_eq!(blind_key_of_full("n:SM0:j"), None);
        assert_eq!(blind_key_of_full(""), None);
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let mut stored = Vec::new();
        let cipher = ring(&masters(1, &[]), &mut stored);
        let mut sealed = cipher.seal(b"ada", true).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(cipher.open(&sealed), Err(CipherError::Damaged));
        // The kind is authenticated too: a text cannot be passed off as a blob.
        let mut kind = cipher.seal(b"ada", true).unwrap();
        kind[3] = b'b';
        assert_eq!(cipher.open(&kind), Err(CipherError::Damaged));
        let other = ring(&masters(2, &[]), &mut Vec::new());
        let foreign = other.seal(b"ada", true).unwrap();
        assert!(matches!(cipher.open(&foreign), Err(CipherError::UnknownKey(_))));
    }

    #[test]
    fn a_new_master_key_writes_at_once_and_old_data_stays_readable() {
        let mut stored = Vec::new();
        let first = ring(&masters(1, &[]), &mut stored);
        let old = first.seal(b"ada", true).unwrap();
        let blind = first.blind("ada");
        let second = ring(&masters(2, &[1]), &mut stored);
        assert_ne!(second.active_key(), first.active_key());
        assert_eq!(second.older_keys(), vec![first.active_key().to_owned()]);
        assert_eq!(second.open(&old).unwrap(), Some((true, b"ada".to_vec())));
        assert!(!second.is_current(&old));
        assert_eq!(second.blind("ada"), blind, "the index key survives the rotation");
        assert!(stored.iter().all(|k| k.purpose == Purpose::Data || k.master_id == masters(2, &[]).active.id()));
        // Without the old master key, its data key cannot be opened: the store says which.
        let refused = Cipher::from_keyring(&stored, &masters(2, &[])).unwrap_err();
        assert!(matches!(refused, CipherError::MissingMaster { .. }), "{refused}");
        // Once re-encryption has retired the old data key, the old master is not needed.
        stored.retain(|k| k.id != first.active_key());
        let third = ring(&masters(2, &[]), &mut stored);
        assert_eq!(third.blind("ada"), blind);
    }
}
