//! A port of libphonenumber's `parse` / `is_valid_number` / `region_code_for_number`
//! (as in Python's `phonenumbers`), restricted to what E.164 normalisation needs.

use crate::phone::metadata::{Database, FIXED_LINE, MOBILE, Meta, NON_GEO, SPECIAL_TYPES};
use regex::Regex;
use std::sync::OnceLock;

const MIN_LENGTH_FOR_NSN: usize = 2;
const MAX_LENGTH_FOR_NSN: usize = 17;
const MAX_LENGTH_COUNTRY_CODE: usize = 3;
const MAX_INPUT_STRING_LENGTH: usize = 250;

const RFC3966_PREFIX: &str = "tel:";
const RFC3966_PHONE_CONTEXT: &str = ";phone-context=";
const RFC3966_ISDN_SUBADDRESS: &str = ";isub=";

/// libphonenumber's `NumberParseException` error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Missing/unsupported default region for a national number, or an
    /// unknown country calling code.
    InvalidCountryCode {
        no_region: bool,
    },
    NotANumber,
    TooShortAfterIdd,
    TooShortNsn,
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub country_code: u32,
    /// National significant number (ASCII digits, leading zeros kept).
    pub nsn: String,
    pub extension: Option<String>,
}

struct Patterns {
    valid_start_char: Regex,
    second_number_start: Regex,
    valid_phone_number: Regex,
    extn: Regex,
    rfc3966_global_number_digits: Regex,
    rfc3966_domainname: Regex,
}

// Character classes from phonenumberutil.py, written for Rust's regex syntax
// (where `-`, `[`, `]`, `~` and `&` need escaping inside classes).
const VALID_PUNCTUATION: &str = r"\-x\x{2010}-\x{2015}\x{2212}\x{30FC}\x{FF0D}-\x{FF0F} \x{00A0}\x{00AD}\x{200B}\x{2060}\x{3000}()\x{FF08}\x{FF09}\x{FF3B}\x{FF3D}.\[\]/\~\x{2053}\x{223C}\x{FF5E}";
const PLUS_CHARS: &str = r"+\x{FF0B}";
// Python's case-insensitive `[A-Za-z]` also matches U+0130/U+0131 (dotted /
// dotless i); Rust's simple case folding covers U+017F and U+212A itself.
const VALID_ALPHA: &str = r"A-Za-z\x{0130}\x{0131}";
/// Case-insensitive `i` as Python's `re.IGNORECASE` reads it.
const I: &str = r"[i\x{0130}\x{0131}]";

fn extn_patterns_for_parsing() -> String {
    let extn_digits = |max: usize| format!(r"(\d{{1,{max}}})");
    let sep_to_label = r"[ \x{00A0}\t,]*";
    let after_label = r"[:\.\x{FF0E}]?[ \x{00A0}\t,\-]*";
    let optional_suffix = "#?";
    let explicit_labels = format!(
        r"(?:e?xt(?:ens{I}(?:o\x{{0301}}?|\x{{00F3}}))?n?|\x{{FF45}}?\x{{FF58}}\x{{FF54}}\x{{FF4E}}?|\x{{0434}}\x{{043E}}\x{{0431}}|anexo)"
    );
    let ambiguous_labels = format!(r"(?:[x\x{{FF58}}#\x{{FF03}}\~\x{{FF5E}}]|{I}nt|\x{{FF49}}\x{{FF4E}}\x{{FF54}})");
    let ambiguous_separator = r"[\- ]+";

    let rfc = format!(";ext={}", extn_digits(20));
    let explicit = format!("{sep_to_label}{explicit_labels}{after_label}{}{optional_suffix}", extn_digits(20));
    let ambiguous = format!("{sep_to_label}{ambiguous_labels}{after_label}{}{optional_suffix}", extn_digits(9));
    let american = format!("{ambiguous_separator}{}#", extn_digits(6));
    let sep_no_comma = r"[ \x{00A0}\t]*";
    let auto_dialling = format!("{sep_no_comma}(?:,{{2}}|;){after_label}{}{optional_suffix}", extn_digits(15));
    let only_commas = format!("{sep_no_comma}(?:,)+{after_label}{}{optional_suffix}", extn_digits(9));
    format!("{rfc}|{explicit}|{ambiguous}|{american}|{auto_dialling}|{only_commas}")
}

fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        let extn = extn_patterns_for_parsing();
        let valid_phone_number = format!(
            r"\d{{{MIN_LENGTH_FOR_NSN}}}|[{PLUS_CHARS}]*(?:[{VALID_PUNCTUATION}\*]*\d){{3,}}[{VALID_PUNCTUATION}\*{VALID_ALPHA}\d]*"
        );
        let phone_digit = r"(\d|[\-\.\(\)]?)";
        // Compiled without IGNORECASE in libphonenumber: ASCII letters only.
        let ascii_alpha = "A-Za-z";
        let alphanum = format!(r"{ascii_alpha}\d");
        Some(Patterns {
            valid_start_char: Regex::new(&format!(r"[{PLUS_CHARS}\d]")).ok()?,
            second_number_start: Regex::new(r"[\\/] *x").ok()?,
            valid_phone_number: Regex::new(&format!(
                "(?i)^(?:{valid_phone_number}(?:{extn})?)$"
            ))
            .ok()?,
            extn: Regex::new(&format!("(?i)(?:{extn})$")).ok()?,
            rfc3966_global_number_digits: Regex::new(&format!(
                r"^\+{phone_digit}*\d{phone_digit}*$"
            ))
            .ok()?,
            rfc3966_domainname: Regex::new(&format!(
                r"^([{alphanum}]+((\-)*[{alphanum}])*\.)*[{ascii_alpha}]+((\-)*[{alphanum}])*\.?$"
            ))
            .ok()?,
        })
    })
    .as_ref()
}

fn is_plus(c: char) -> bool {
    c == '+' || c == '\u{FF0B}'
}

/// Length of the leading run of plus signs (`_PLUS_CHARS_PATTERN.match`), in bytes.
fn leading_plus_len(s: &str) -> usize {
    s.char_indices().find(|&(_, c)| !is_plus(c)).map_or(s.len(), |(i, _)| i)
}

/// `_extract_possible_number`.
fn extract_possible_number<'a>(p: &Patterns, number: &'a str) -> &'a str {
    let Some(m) = p.valid_start_char.find(number) else {
        return "";
    };
    let mut number = &number[m.start()..];
    // _UNWANTED_END_CHAR_PATTERN: trailing run of `_` or chars that are neither
    // alphanumeric nor '#'.
    let end = number
        .char_indices()
        .rev()
        .find(|&(_, c)| c != '_' && (c.is_alphanumeric() || c == '#'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    number = &number[..end];
    if let Some(m) = p.second_number_start.find(number) {
        number = &number[..m.start()];
    }
    number
}

/// `_is_viable_phone_number`.
fn is_viable(p: &Patterns, number: &str) -> bool {
    number.chars().count() >= MIN_LENGTH_FOR_NSN && p.valid_phone_number.is_match(number)
}

/// `_is_phone_context_valid`.
fn is_phone_context_valid(p: &Patterns, ctx: Option<&str>) -> bool {
    match ctx {
        None => true,
        Some("") => false,
        Some(c) => p.rfc3966_global_number_digits.is_match(c) || p.rfc3966_domainname.is_match(c),
    }
}

/// `_build_national_number_for_parsing`.
fn build_national_number_for_parsing(p: &Patterns, number: &str) -> Result<String, ParseError> {
    let ctx_index = number.find(RFC3966_PHONE_CONTEXT);
    let phone_context = ctx_index.map(|i| {
        let start = i + RFC3966_PHONE_CONTEXT.len();
        let rest = &number[start..];
        match rest.find(';') {
            Some(end) => &rest[..end],
            None => rest,
        }
    });
    if !is_phone_context_valid(p, phone_context) {
        return Err(ParseError::NotANumber);
    }
    let mut national = match (ctx_index, phone_context) {
        (Some(ctx_index), Some(ctx)) => {
            let mut n = if ctx.starts_with('+') { ctx.to_string() } else { String::new() };
            let start = number.find(RFC3966_PREFIX).map_or(0, |i| i + RFC3966_PREFIX.len());
            // Python slicing with start > end yields "".
            if start <= ctx_index {
                n.push_str(&number[start..ctx_index]);
            }
            n
        }
        _ => extract_possible_number(p, number).to_string(),
    };
    if let Some(i) = national.find(RFC3966_ISDN_SUBADDRESS)
        && i > 0
    {
        national.truncate(i);
    }
    Ok(national)
}

/// `_maybe_strip_extension`: returns (extension, number before it).
fn maybe_strip_extension<'a>(p: &Patterns, number: &'a str) -> (Option<String>, &'a str) {
    if let Some(caps) = p.extn.captures(number)
        && let Some(whole) = caps.get(0)
    {
        let before = &number[..whole.start()];
        if is_viable(p, before) {
            let ext = caps.iter().skip(1).flatten().next().map(|m| m.as_str().to_string()).unwrap_or_default();
            return (Some(ext), before);
        }
    }
    (None, number)
}

const ALPHA_KEYPAD: &[u8; 26] = b"22233344455566677778889999";

/// `_normalize`: vanity numbers (3+ ASCII letters) keep only digits/letters
/// mapped to keypad digits; other numbers keep every (Unicode) digit.
fn normalize(db: &Database, number: &str) -> String {
    let letters = number.bytes().filter(u8::is_ascii_alphabetic).count();
    let mut out = String::with_capacity(number.len());
    if letters >= 3 && !number.contains('\n') {
        for c in number.chars() {
            let mut up = c.to_uppercase();
            let (Some(u), None) = (up.next(), up.next()) else {
                continue;
            };
            if u.is_ascii_digit() {
                out.push(u);
            } else if u.is_ascii_uppercase() {
                out.push(char::from(ALPHA_KEYPAD[usize::from(u as u8 - b'A')]));
            }
        }
    } else {
        for c in number.chars() {
            if let Some(d) = db.digit_value(c) {
                out.push(char::from(b'0' + d));
            }
        }
    }
    out
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Source {
    Plus,
    Idd,
    Default,
}

/// `_maybe_strip_i18n_prefix_and_normalize`.
fn strip_i18n_prefix_and_normalize(db: &Database, number: &str, idd: Option<&Regex>) -> (Source, String) {
    if number.is_empty() {
        return (Source::Default, String::new());
    }
    let plus = leading_plus_len(number);
    if plus > 0 {
        return (Source::Plus, normalize(db, &number[plus..]));
    }
    let normalized = normalize(db, number);
    if let Some(m) = idd.and_then(|r| r.find(&normalized)) {
        let rest = &normalized[m.end()..];
        // Country calling codes cannot begin with 0.
        if rest.starts_with('0') {
            return (Source::Default, normalized);
        }
        return (Source::Idd, rest.to_string());
    }
    (Source::Default, normalized)
}

/// `_extract_country_code`.
fn extract_country_code<'a>(db: &Database, number: &'a str) -> (u32, &'a str) {
    if number.is_empty() || number.starts_with('0') {
        return (0, number);
    }
    for i in 1..=number.len().min(MAX_LENGTH_COUNTRY_CODE) {
        if let Ok(cc) = number[..i].parse::<u32>()
            && db.regions_for_code.contains_key(&cc)
        {
            return (cc, &number[i..]);
        }
    }
    (0, number)
}

fn matches_general(meta: &Meta, number: &str) -> bool {
    meta.general().is_some_and(|d| d.matches_pattern(number))
}

/// `_maybe_strip_national_prefix_carrier_code` (carrier code dropped).
fn strip_national_prefix(meta: &Meta, number: &str) -> (String, bool) {
    let unchanged = || (number.to_string(), false);
    if number.is_empty() {
        return unchanged();
    }
    let Some(npp) = meta.compiled().national_prefix_for_parsing.as_ref() else {
        return unchanged();
    };
    let Some(caps) = npp.captures(number) else {
        return unchanged();
    };
    let Some(whole) = caps.get(0) else {
        return unchanged();
    };
    let viable_original = matches_general(meta, number);
    let num_groups = caps.len() - 1;
    let rule = meta.national_prefix_transform_rule.as_deref().filter(|r| !r.is_empty());
    let last_group_matched = num_groups > 0 && caps.get(num_groups).is_some();
    match rule {
        Some(rule) if last_group_matched => {
            let mut transformed = String::new();
            caps.expand(rule, &mut transformed);
            transformed.push_str(&number[whole.end()..]);
            if viable_original && !matches_general(meta, &transformed) {
                return unchanged();
            }
            (transformed, true)
        }
        _ => {
            let rest = &number[whole.end()..];
            if viable_original && !matches_general(meta, rest) {
                return unchanged();
            }
            (rest.to_string(), true)
        }
    }
}

#[derive(PartialEq, Eq)]
enum LengthResult {
    IsPossible,
    IsPossibleLocalOnly,
    TooShort,
    TooLong,
    InvalidLength,
}

/// `_test_number_length` for type UNKNOWN (the general description).
fn test_number_length(meta: &Meta, number: &str) -> LengthResult {
    let Some(general) = meta.general() else {
        return LengthResult::InvalidLength;
    };
    let lengths = &general.lengths;
    let len = i32::try_from(number.len()).unwrap_or(i32::MAX);
    if lengths.local_only.contains(&len) {
        return LengthResult::IsPossibleLocalOnly;
    }
    let (Some(&min), Some(&max)) = (lengths.list.first(), lengths.list.last()) else {
        return LengthResult::InvalidLength;
    };
    if min == len {
        LengthResult::IsPossible
    } else if min > len {
        LengthResult::TooShort
    } else if max < len {
        LengthResult::TooLong
    } else if lengths.list[1..].contains(&len) {
        LengthResult::IsPossible
    } else {
        LengthResult::InvalidLength
    }
}

/// `_maybe_extract_country_code`: (country code or 0, national number or "").
fn maybe_extract_country_code(db: &Database, number: &str, meta: Option<&Meta>) -> Result<(u32, String), ParseError> {
    if number.is_empty() {
        return Ok((0, String::new()));
    }
    let idd = meta.and_then(|m| m.compiled().international_prefix.as_ref());
    let (source, full) = strip_i18n_prefix_and_normalize(db, number, idd);
    if source != Source::Default {
        if full.len() <= MIN_LENGTH_FOR_NSN {
            return Err(ParseError::TooShortAfterIdd);
        }
        let (cc, rest) = extract_country_code(db, &full);
        if cc != 0 {
            return Ok((cc, rest.to_string()));
        }
        return Err(ParseError::InvalidCountryCode { no_region: false });
    }
    if let Some(meta) = meta
        && let Some(potential) = full.strip_prefix(meta.country_code_str.as_str())
    {
        let (potential, _) = strip_national_prefix(meta, potential);
        if (!matches_general(meta, &full) && matches_general(meta, &potential))
            || test_number_length(meta, &full) == LengthResult::TooLong
        {
            return Ok((meta.country_code, potential));
        }
    }
    Ok((0, String::new()))
}

/// Upper-cased supported region for a hint (`_is_valid_region_code`).
pub(crate) fn supported_region<'a>(db: &'a Database, hint: Option<&str>) -> Option<&'a Meta> {
    let hint = hint?.trim();
    if hint.len() != 2 {
        return None;
    }
    db.region(&hint.to_ascii_uppercase())
}

/// `parse(number, region)`.
pub(crate) fn parse(raw: &str, region: Option<&Meta>) -> Result<Parsed, ParseError> {
    let db = Database::get();
    let p = patterns().ok_or(ParseError::NotANumber)?;
    if raw.chars().count() > MAX_INPUT_STRING_LENGTH {
        return Err(ParseError::TooLong);
    }
    let national = build_national_number_for_parsing(p, raw)?;
    if !is_viable(p, &national) {
        return Err(ParseError::NotANumber);
    }
    if region.is_none() && leading_plus_len(&national) == 0 {
        return Err(ParseError::InvalidCountryCode { no_region: true });
    }
    let (extension, national) = maybe_strip_extension(p, &national);

    let mut meta = region;
    let (mut country_code, mut nnn) = match maybe_extract_country_code(db, national, meta) {
        Ok(r) => r,
        Err(ParseError::InvalidCountryCode { .. }) if leading_plus_len(national) > 0 => {
            let r = maybe_extract_country_code(db, &national[leading_plus_len(national)..], meta)?;
            if r.0 == 0 {
                return Err(ParseError::InvalidCountryCode { no_region: false });
            }
            r
        }
        Err(e) => return Err(e),
    };

    if country_code != 0 {
        let number_region = db.main_region(country_code).unwrap_or("ZZ");
        if region.map(|m| m.id.as_str()) != Some(number_region) {
            meta = db.region_or_code(country_code, number_region);
        }
    } else {
        nnn.push_str(&normalize(db, national));
        if let Some(m) = region {
            country_code = m.country_code;
        }
    }
    if nnn.len() < MIN_LENGTH_FOR_NSN {
        return Err(ParseError::TooShortNsn);
    }
    if let Some(meta) = meta {
        let (potential, _) = strip_national_prefix(meta, &nnn);
        match test_number_length(meta, &potential) {
            LengthResult::TooShort | LengthResult::IsPossibleLocalOnly | LengthResult::InvalidLength => {}
            LengthResult::IsPossible | LengthResult::TooLong => nnn = potential,
        }
    }
    if nnn.len() < MIN_LENGTH_FOR_NSN {
        return Err(ParseError::TooShortNsn);
    }
    if nnn.len() > MAX_LENGTH_FOR_NSN {
        return Err(ParseError::TooLong);
    }
    // A national number of up to 17 digits is stored as an integer plus a
    // count of leading zeros; its string form is the digits themselves.
    Ok(Parsed { country_code, nsn: nnn, extension: extension.filter(|e| !e.is_empty()) })
}

/// `_number_type_helper(...) != UNKNOWN`.
fn is_valid_for(meta: &Meta, nsn: &str) -> bool {
    let c = meta.compiled();
    let matches = |i: usize| c.descs[i].as_ref().is_some_and(|d| d.matches(nsn));
    if !meta.general().is_some_and(|d| d.matches(nsn)) {
        return false;
    }
    SPECIAL_TYPES.clone().any(matches)
        || matches(FIXED_LINE)
        || (!meta.same_mobile_and_fixed_line_pattern && matches(MOBILE))
}

/// `region_code_for_number`.
pub(crate) fn region_for_number(parsed: &Parsed) -> Option<&'static str> {
    let db = Database::get();
    let regions = db.regions_for_code.get(&parsed.country_code)?;
    if let [only] = regions.as_slice() {
        return Some(only.as_str());
    }
    regions
        .iter()
        .find(|r| {
            db.region(r).is_some_and(|meta| match meta.compiled().leading_digits.as_ref() {
                Some(ld) => ld.is_match(&parsed.nsn),
                None => is_valid_for(meta, &parsed.nsn),
            })
        })
        .map(String::as_str)
}

/// `is_valid_number`, given the region from [`region_for_number`].
pub(crate) fn is_valid(parsed: &Parsed, region: Option<&str>) -> bool {
    let db = Database::get();
    let Some(region) = region else {
        return false;
    };
    let Some(meta) = db.region_or_code(parsed.country_code, region) else {
        return false;
    };
    if region != NON_GEO && meta.country_code != parsed.country_code {
        return false;
    }
    is_valid_for(meta, &parsed.nsn)
}
