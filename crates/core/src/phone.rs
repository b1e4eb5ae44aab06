//! Phone number → E.164 normalisation for leadflow, following
//! [libphonenumber](https://github.com/google/libphonenumber)'s parsing and
//! validation rules and its metadata.
//!
//! # Contract
//!
//! [`normalize`]`(raw, default_region)` reads one free-form phone number the
//! way libphonenumber's `parse(raw, default_region)` does, then checks it with
//! `is_valid_number`:
//!
//! * `raw` may be international (`+44 20 7946 0018`, `0044 …` or any other
//!   international prefix of the default region, e.g. `011 …` from US/CA,
//!   `810 …` from RU) or national (with or without the trunk prefix, e.g.
//!   `020 7946 0018` / `20 7946 0018` with hint `GB`), written with spaces,
//!   dots, dashes, slashes or parentheses, an RFC 3966 `tel:` URI, or a vanity
//!   number (`1-800-FLOWERS`). Leading text such as `Tel:` is skipped.
//! * An extension (`x123`, `ext. 45`, `;ext=123`, `,,123`, `#`-terminated, …)
//!   is split off and returned in [`Normalized::extension`], digits only.
//! * `default_region` is an ISO 3166-1 alpha-2 code (case-insensitive), e.g.
//!   the lead's country. It is only used when the number is not written in
//!   international form with `+`; an unknown code counts as no hint.
//! * On success, [`Normalized::e164`] is `+` + country calling code +
//!   national significant number, and [`Normalized::region`] the region the
//!   number belongs to (which may differ from the hint; `None` for
//!   non-geographic codes such as +800).
//!
//! # Failure modes
//!
//! * [`PhoneError::Invalid`]: the input was read as a phone number but does
//!   not match any valid range of its country. The candidate is **kept** in
//!   the error (flagged, not discarded) so a caller can store it for review.
//! * [`PhoneError::NoRegion`]: a national-format number without a usable
//!   `default_region` (the country cannot be known).
//! * [`PhoneError::InvalidCountryCode`]: `+`/international prefix followed by
//!   an unknown country calling code.
//! * [`PhoneError::Empty`], [`PhoneError::NotANumber`],
//!   [`PhoneError::TooShort`], [`PhoneError::TooLong`]: nothing usable.
//!
//! # Example
//!
//! ```
//! use leadflow_core::phone::{normalize, PhoneError};
//!
//! let n = normalize("(202) 555-0123 ext. 45", Some("US")).unwrap();
//! assert_eq!(n.e164, "+12025550123");
//! assert_eq!(n.extension.as_deref(), Some("45"));
//! assert_eq!(n.region.as_deref(), Some("US"));
//!
//! assert_eq!(normalize("011 44 20 7946 0018", Some("CA")).unwrap().e164, "+442079460018");
//! assert_eq!(normalize("020 7946 0018", None), Err(PhoneError::NoRegion));
//! match normalize("+1 202 555 012", None) {
//!     Err(PhoneError::Invalid(candidate)) => assert_eq!(candidate.e164, "+1202555012"),
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! The function never panics; metadata regular expressions are compiled once
//! per region on first use and shared between threads.
//!
//! Metadata: `data/metadata.tsv`, exported from libphonenumber's metadata as
//! shipped by Python's `phonenumbers` (see `data/PROVENANCE.md`).

mod metadata;
mod parse;

use std::fmt;

/// A phone number read successfully (or, inside [`PhoneError::Invalid`], a
/// candidate that did not validate).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Normalized {
    /// E.164 form, e.g. `+442079460018`. Never contains the extension.
    pub e164: String,
    /// Extension digits, e.g. `123` for `… ext. 123`.
    pub extension: Option<String>,
    /// ISO 3166-1 alpha-2 region of the number (not of the hint), if the
    /// number's calling code and leading digits identify one.
    pub region: Option<String>,
}

/// Why a raw phone number could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    /// Blank input, or input without any digit.
    Empty,
    /// Not a phone number (fewer than 3 digits with punctuation, stray
    /// characters, invalid `tel:` phone-context, …).
    NotANumber,
    /// National number without a usable default region.
    NoRegion,
    /// Unknown country calling code after `+` or an international prefix.
    InvalidCountryCode,
    /// Too few digits (after an international prefix, or overall).
    TooShort,
    /// More than 250 input characters or more than 17 national digits.
    TooLong,
    /// Parsed, but not a valid number for its country; the candidate is kept.
    Invalid(Normalized),
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Empty => f.write_str("no phone number given"),
            PhoneError::NotANumber => f.write_str("not a phone number"),
            PhoneError::NoRegion => f.write_str("national phone number without a usable default region"),
            PhoneError::InvalidCountryCode => f.write_str("unknown country calling code"),
            PhoneError::TooShort => f.write_str("phone number too short"),
            PhoneError::TooLong => f.write_str("phone number too long"),
            PhoneError::Invalid(n) => write!(f, "invalid phone number {}", n.e164),
        }
    }
}

impl std::error::Error for PhoneError {}

/// Normalise `raw` to E.164, reading national numbers as from
/// `default_region` (ISO 3166-1 alpha-2, case-insensitive). See the crate
/// documentation for the contract and failure modes.
pub fn normalize(raw: &str, default_region: Option<&str>) -> Result<Normalized, PhoneError> {
    use parse::ParseError;
    let db = metadata::Database::get();
    let region = parse::supported_region(db, default_region);
    let parsed = parse::parse(raw, region).map_err(|e| match e {
        ParseError::InvalidCountryCode { no_region: true } => PhoneError::NoRegion,
        ParseError::InvalidCountryCode { no_region: false } => PhoneError::InvalidCountryCode,
        ParseError::NotANumber if !raw.chars().any(|c| db.digit_value(c).is_some()) => PhoneError::Empty,
        ParseError::NotANumber => PhoneError::NotANumber,
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => PhoneError::TooShort,
        ParseError::TooLong => PhoneError::TooLong,
    })?;
    let number_region = parse::region_for_number(&parsed);
    let valid = parse::is_valid(&parsed, number_region);
    let normalized = Normalized {
        e164: format!("+{}{}", parsed.country_code, parsed.nsn),
        extension: parsed.extension,
        region: number_region.filter(|r| *r != metadata::NON_GEO).map(str::to_string),
    };
    if valid { Ok(normalized) } else { Err(PhoneError::Invalid(normalized)) }
}

/// Version of the libphonenumber metadata in use (e.g. `9.0.43`).
pub fn metadata_version() -> &'static str {
    metadata::Database::get().version.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, hint: Option<&str>) -> Normalized {
        match normalize(raw, hint) {
            Ok(n) => n,
            Err(e) => panic!("{raw:?} {hint:?}: {e:?}"),
        }
    }

    #[test]
    fn basic_formats() {
        let n = ok("+44 20 7946 0018", None);
        assert_eq!(n.e164, "+442079460018");
        assert_eq!(n.region.as_deref(), Some("GB"));
        assert_eq!(ok("020 7946 0018", Some("GB")).e164, "+442079460018");
        assert_eq!(ok("(202) 555-0123", Some("us")).e164, "+12025550123");
        assert_eq!(ok("202.555.0123", Some("US")).e164, "+12025550123");
    }

    #[test]
    fn errors() {
        assert_eq!(normalize("", Some("US")), Err(PhoneError::Empty));
        assert_eq!(normalize("   ", None), Err(PhoneError::Empty));
        assert_eq!(normalize("020 7946 0018", None), Err(PhoneError::NoRegion));
        assert_eq!(normalize("020 7946 0018", Some("XX")), Err(PhoneError::NoRegion));
        assert_eq!(normalize("+999 1234 5678", None), Err(PhoneError::InvalidCountryCode));
        assert_eq!(normalize(&"1".repeat(300), None), Err(PhoneError::TooLong));
        match normalize("+1 202 555 012", None) {
            Err(PhoneError::Invalid(n)) => assert_eq!(n.e164, "+1202555012"),
            other => panic!("{other:?}"),
        }
    }
}
