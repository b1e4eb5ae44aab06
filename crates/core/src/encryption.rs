//! encryption: the master keys personal data at rest is sealed under.
//!
//! `[encryption] key_env` names the environment variable holding the active master key (32
//! bytes, base64); `previous_key_envs` lists the keys being rotated away from, readable
//! until the store's re-encryption has moved everything onto the active key. The master
//! keys never touch the database: each store keeps its own data keys, wrapped by a master
//! key (envelope encryption), and the ciphers themselves live with the store.

use crate::config::read::{Problems, span};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use toml_edit::Table;

/// `[encryption]` as written: where the keys come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionConfig {
    /// The variable holding the active master key; encryption is off without it.
    pub key_env: Option<String>,
    /// Variables holding the keys being rotated away from, still needed to read.
    pub previous_key_envs: Vec<String>,
}

impl EncryptionConfig {
    /// Reads the keys the section names from the environment (`env`). `Ok(None)`: off.
    pub fn master_keys(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<MasterKeys>, String> {
        let Some(name) = &self.key_env else { return Ok(None) };
        let read = |name: &str| {
            let text = env(name).ok_or_else(|| format!("the environment variable {name} is not set"))?;
            MasterKey::from_base64(&text).map_err(|e| format!("{name}: {e}"))
        };
        let active = read(name)?;
        // A previous key left unset is skipped: once re-encryption has finished nothing
        // needs it, and until then the store names the key it lacks.
        let previous = self
            .previous_key_envs
            .iter()
            .filter(|n| env(n).is_some())
            .map(|n| read(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(MasterKeys { active, previous }))
    }
}

pub(crate) fn read_config(p: &mut Problems, t: &Table) -> EncryptionConfig {
    let mut out = EncryptionConfig::default();
    for (key, item) in t.iter() {
        let path = format!("encryption.{key}");
        match key {
            "key_env" => out.key_env = p.env_name(item, &path),
            "previous_key_envs" => match item.as_array() {
                Some(list) => {
                    for value in list.iter() {
                        let name = value.as_str().filter(|n| crate::config::read::is_env_name(n));
                        match name {
                            Some(n) if !out.previous_key_envs.iter().any(|e| e == n) => {
                                out.previous_key_envs.push(n.to_owned());
                            }
                            Some(_) => {}
                            None => p.push(span(item), &path, "must list environment variable names (A-Z, 0-9, _)"),
                        }
                    }
                }
                None => p.push(span(item), &path, "must be a list of environment variable names"),
            },
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    if out.key_env.is_none() && !out.previous_key_envs.is_empty() {
        p.push(t.span(), "encryption", "previous_key_envs needs key_env: the key new data is written under");
    }
    out
}

/// A 32-byte master key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    id: String,
    bytes: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        // A public name derived from the key: stored beside what it wraps, so the store
        // can say which key it needs without the key itself being guessable from it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap_or_else(|_| unreachable!());
        mac.update(b"leadflow master key id");
        let id = mac.finalize().into_bytes()[..6].iter().map(|b| format!("{b:02x}")).collect();
        Self { id, bytes }
    }

    /// Standard base64 (padding optional, surrounding whitespace ignored) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = decode_base64(text.trim()).ok_or("is not base64")?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| format!("holds {} bytes, not 32", b.len()))?;
        Ok(Self::new(bytes))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

/// The active master key and those being rotated away from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeys {
    pub active: MasterKey,
    pub previous: Vec<MasterKey>,
}

impl MasterKeys {
    pub fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.active).chain(&self.previous).find(|k| k.id == id)
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_key_is_32_bytes_of_base64() {
        let key = MasterKey::from_base64(KEY).unwrap();
        assert_eq!(key.bytes()[31], 31);
        assert_eq!(key.id().len(), 12);
        assert!(MasterKey::from_base64("AAEC").unwrap_err().contains("3 bytes"));
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(!format!("{key:?}").contains("AAEC"));
    }

    #[test]
    fn keys_come_from_the_variables_named() {
        let config = EncryptionConfig { key_env: Some("K".into()), previous_key_envs: vec!["OLD".into()] };
        let other = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
        let env = |n: &str| match n {
            "K" => Some(KEY.to_owned()),
            "OLD" => Some(other.to_owned()),
            _ => None,
        };
        let keys = config.master_keys(env).unwrap().unwrap();
        assert_ne!(keys.active.id(), keys.previous[0].id());
        assert!(keys.find(keys.previous[0].id()).is_some());
        let missing = EncryptionConfig { key_env: Some("NOPE".into()), previous_key_envs: vec![] };
        assert!(missing.master_keys(env).unwrap_err().contains("NOPE"));
        let done = EncryptionConfig { key_env: Some("K".into()), previous_key_envs: vec!["GONE".into()] };
        assert!(done.master_keys(env).unwrap().unwrap().previous.is_empty());
        assert_eq!(EncryptionConfig::default().master_keys(env), Ok(None));
    }

    #[test]
    fn the_section_is_read_and_checked() {
        let config =
            crate::config::parse("[encryption]\nkey_env = \"LEADFLOW_KEY\"\nprevious_key_envs = [\"OLD_KEY\"]\n")
                .unwrap();
        assert_eq!(config.encryption.key_env.as_deref(), Some("LEADFLOW_KEY"));
        assert_eq!(config.encryption.previous_key_envs, ["OLD_KEY"]);
        let errors = crate::config::parse("[encryption]\nkey_env = \"c2VjcmV0\"\n").unwrap_err();
        assert!(errors[0].to_string().contains("environment variable"), "{errors:?}");
        let errors = crate::config::parse("[encryption]\nprevious_key_envs = [\"OLD\"]\n").unwrap_err();
        assert!(errors[0].to_string().contains("needs key_env"), "{errors:?}");
    }
}
