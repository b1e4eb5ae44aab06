//! Custom field names that always fit.
//!
//! Providers build custom field names from question titles and labels, and a title can be
//! a whole consent statement. A name's length must never cost a lead, so a name over
//! [`MAX_CUSTOM_KEY_LEN`] characters is shortened here instead of being refused later:
//! the first characters are kept (cut on a character boundary, trailing spaces and
//! separators dropped) and `~` plus ten hex digits of the SHA-256 of the *whole* name are
//! appended. Two long names that share a prefix therefore stay apart, and the same name
//! always gives the same key, across runs and versions (keys are stored with the lead;
//! changing the scheme would split one field into two).
//!
//! A name within the limit is returned unchanged.

use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The longest custom field name, in characters (a column name every CRM accepts).
pub const MAX_CUSTOM_KEY_LEN: usize = 128;

/// Hex digits of the hash suffix: 40 bits, so two long titles on one form colliding is
/// not a practical concern (and a collision still loses nothing: the mapper numbers it).
const HASH_HEX: usize = 10;

/// `name` when it fits, else its shortened form (see the module documentation).
pub fn fit_custom_key(name: &str) -> Cow<'_, str> {
    if name.chars().count() <= MAX_CUSTOM_KEY_LEN {
        return Cow::Borrowed(name);
    }
    let keep = MAX_CUSTOM_KEY_LEN - 1 - HASH_HEX;
    let cut = name.char_indices().nth(keep).map_or(name.len(), |(i, _)| i);
    let prefix = name.get(..cut).unwrap_or_default();
    let prefix = prefix.trim_end_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
    let digest = Sha256::digest(name.as_bytes());
    let mut out = String::with_capacity(prefix.len() + 1 + HASH_HEX);
    out.push_str(prefix);
    out.push('~');
    for b in digest.iter().take(HASH_HEX / 2) {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONSENT: &str = "I agree that Example Ltd may store and process the personal data I submit on this \
        form to contact me about its products and services, as described in the privacy policy.";

    #[test]
    fn short_names_are_unchanged() {
        assert!(matches!(fit_custom_key("plan"), Cow::Borrowed("plan")));
        let exactly = "x".repeat(MAX_CUSTOM_KEY_LEN);
        assert_eq!(fit_custom_key(&exactly), exactly);
    }

    #[test]
    fn a_long_title_is_cut_and_suffixed_with_its_hash() {
        assert!(CONSENT.chars().count() > MAX_CUSTOM_KEY_LEN);
        let key = fit_custom_key(CONSENT);
        // Pinned: the key is stored with the lead, so the scheme must not drift.
        assert_eq!(
            key,
            "I agree that Example Ltd may store and process the personal data I submit on this form to contact \
             me about its produc~b7d35da067"
        );
        assert_eq!(key.chars().count(), MAX_CUSTOM_KEY_LEN);
        // A cut that falls after a space drops it rather than ending the prefix in blank.
        let spaced = format!("{} tail", "a".repeat(116));
        assert!(fit_custom_key(&format!("{spaced}{}", "x".repeat(50))).contains(&format!("{}~", "a".repeat(116))));
    }

    #[test]
    fn multibyte_titles_are_cut_on_a_character_boundary() {
        let title = "Ich stimme zu, dass meine Daten gespeichert werden 🙂 ".repeat(5);
        let key = fit_custom_key(&title);
        assert!(key.chars().count() <= MAX_CUSTOM_KEY_LEN);
        assert!(title.starts_with(key.split('~').next().unwrap_or_default()));
    }

    proptest! {
        #[test]
        fn never_over_the_limit_and_stable(name in "\\PC{0,400}") {
            let key = fit_custom_key(&name);
            prop_assert!(key.chars().count() <= MAX_CUSTOM_KEY_LEN);
            prop_assert_eq!(&key, &fit_custom_key(&name));
            if name.chars().count() <= MAX_CUSTOM_KEY_LEN {
                prop_assert_eq!(key.as_ref(), name.as_str());
            }
        }

        #[test]
        fn long_names_sharing_a_prefix_stay_distinct(
            prefix in "\\PC{120,200}",
            a in "\\PC{1,40}",
            b in "\\PC{1,40}",
        ) {
            prop_assume!(a != b);
            let (x, y) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            prop_assert_ne!(fit_custom_key(&x), fit_custom_key(&y));
        }
    }
}
