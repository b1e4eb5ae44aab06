//! Normalisation fold shared by the table builder and the lookups.
//!
//! The same function folds the table's names and the caller's input, so any
//! quirk of the fold applies equally to both sides.

/// The folded form of one input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Folded {
    /// Space-separated lower-case ASCII-folded tokens.
    pub(crate) key: String,
    /// True when the input was one plain token of two or three ASCII
    /// letters (e.g. `DE`, `deu `), so it may be read as an ISO code.
    /// Dotted letters (`D.E.`) are never code-like.
    pub(crate) code_like: bool,
}

/// Token synonyms applied in multi-token keys only.
fn synonym(tok: &str) -> &str {
    match tok {
        "st" => "saint",
        "ste" => "sainte",
        "mt" => "mount",
        "rep" => "republic",
        "dem" => "democratic",
        "fed" => "federated",
        "utd" => "united",
        "isl" | "is" | "isls" => "islands",
        other => other,
    }
}

/// Characters deleted outright (they never separate tokens).
fn is_deleted(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '`' | '\u{00B4}'
            | '\u{00AD}' // soft hyphen
            | '\u{200B}'..='\u{200D}' // zero-width space / (non-)joiner
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{0300}'..='\u{036F}' // combining diacritical marks (NFD input)
            | '\u{E0000}'..='\u{E007F}' // tag characters (subdivision flags)
    )
}

/// Fold one lower-case char to ASCII where a Latin base letter exists.
/// Pushes the replacement onto `out` and returns true, or returns false
/// when the char is kept as is.
fn fold_latin(c: char, out: &mut String) -> bool {
    let s: &str = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ǎ' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' | 'ə' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' | 'ĸ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ơ' | 'ǒ' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' | 'ſ' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ư' | 'ǔ' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        // Latin Extended Additional: Vietnamese vowels with two marks.
        '\u{1EA0}'..='\u{1EB7}' => "a",
        '\u{1EB8}'..='\u{1EC7}' => "e",
        '\u{1EC8}'..='\u{1ECB}' => "i",
        '\u{1ECC}'..='\u{1EE3}' => "o",
        '\u{1EE4}'..='\u{1EF1}' => "u",
        '\u{1EF2}'..='\u{1EF9}' => "y",
        // Greek tonos / dialytika and final sigma.
        'ά' => "α",
        'έ' => "ε",
        'ή' => "η",
        'ί' | 'ϊ' | 'ΐ' => "ι",
        'ό' => "ο",
        'ύ' | 'ϋ' | 'ΰ' => "υ",
        'ώ' => "ω",
        'ς' => "σ",
        // Cyrillic yo.
        'ё' => "е",
        _ => return false,
    };
    out.push_str(s);
    true
}

/// Push the folded form of one alphanumeric char.
fn push_folded(c: char, out: &mut String) {
    // Full-width ASCII (U+FF01..U+FF5E) maps onto ASCII.
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for lc in c.to_lowercase() {
        if !fold_latin(lc, out) {
            out.push(lc);
        }
    }
}

/// Fold `raw` into a lookup key.
///
/// * case-folded, accents removed (Latin, Vietnamese, Greek tonos);
/// * apostrophes and combining marks deleted (`d'Ivoire` → `divoire`);
/// * every other non-alphanumeric char separates tokens (`.`, `,`, `-`,
///   `(`, spaces, emoji, …); `&` and `+` become the token `and`;
/// * runs of two or more single-letter tokens are joined (`U. S. A.` →
///   `usa`), which makes the result non-code-like;
/// * in multi-token keys, `the`, `and` and `of` are dropped and a few
///   abbreviations expanded (`st` → `saint`, `rep` → `republic`, …).
pub(crate) fn fold(raw: &str) -> Folded {
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    // Set when a letter outside ASCII (and full-width ASCII) was folded in:
    // "Mỹ" folds to "my" but is not the code MY.
    let mut folded_non_ascii = false;
    for c in raw.chars() {
        if is_deleted(c) {
            continue;
        }
        let wide_alnum = matches!(c, '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}');
        if c.is_alphanumeric() || wide_alnum {
            if !c.is_ascii() && !wide_alnum {
                folded_non_ascii = true;
            }
            push_folded(c, &mut cur);
        } else {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            if c == '&' || c == '+' {
                tokens.push("and".to_string());
            }
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }

    // Join runs of single ASCII letters: "u s a" -> "usa".
    let mut joined: Vec<String> = Vec::with_capacity(tokens.len());
    let mut run: Vec<String> = Vec::new();
    let mut any_join = false;
    let flush = |run: &mut Vec<String>, joined: &mut Vec<String>, any_join: &mut bool| {
        if run.len() >= 2 {
            *any_join = true;
            joined.push(run.concat());
            run.clear();
        } else {
            joined.append(run);
        }
    };
    for t in tokens {
        if t.len() == 1 && t.bytes().all(|b| b.is_ascii_alphabetic()) {
            run.push(t);
        } else {
            flush(&mut run, &mut joined, &mut any_join);
            joined.push(t);
        }
    }
    flush(&mut run, &mut joined, &mut any_join);

    if let [t] = joined.as_mut_slice() {
        let code_like = !any_join
            && !folded_non_ascii
            && (t.len() == 2 || t.len() == 3)
            && t.bytes().all(|b| b.is_ascii_alphabetic());
        return Folded { key: std::mem::take(t), code_like };
    }

    let mut key = String::new();
    for t in &joined {
        if t == "the" || t == "and" || t == "of" {
            continue;
        }
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(synonym(t));
    }
    Folded { key, code_like: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> String {
        fold(s).key
    }

    #[test]
    fn folds() {
        assert_eq!(k("U.S.A."), "usa");
        assert_eq!(k("U. S."), "us");
        assert_eq!(k(" the United States "), "united states");
        assert_eq!(k("Côte d’Ivoire"), "cote divoire");
        assert_eq!(k("Korea, Republic of"), "korea republic");
        assert_eq!(k("St. Lucia"), "saint lucia");
        assert_eq!(k("Bosnia & Herzegovina"), "bosnia herzegovina");
        assert_eq!(k("ÖSTERREICH"), "osterreich");
        assert_eq!(k("Việt Nam"), "viet nam");
        assert_eq!(k("ＵＳＡ"), "usa");
        assert_eq!(k("Ελλάδα"), "ελλαδα");
        assert_eq!(k("Cote\u{0302} d'Ivoire"), "cote divoire");
        assert!(fold("de ").code_like);
        assert!(!fold("D.E.").code_like);
        assert!(!fold("Germany").code_like);
        assert!(!fold("Mỹ").code_like);
        assert!(fold("ＤＥ").code_like);
    }
}
