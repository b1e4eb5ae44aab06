//! Small, allocation-light text folding helpers shared by comparison and blocking.

/// Maps one (lower-cased) Latin character to its ASCII base letters.
fn fold_char(c: char, out: &mut String) {
    let mapped = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => "",
    };
    out.push_str(mapped);
}

/// Folds a name to lowercase ASCII letters only (`"O'Brien-Müller"` → `"obrienmuller"`).
pub(crate) fn fold_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        for l in c.to_lowercase() {
            if l.is_ascii_lowercase() {
                out.push(l);
            } else if !l.is_ascii() {
                fold_char(l, &mut out);
            }
        }
    }
    out
}

/// Folds free text (street, city, company key) to lowercase ASCII letters and digits, with words
/// separated by single spaces.
pub(crate) fn fold_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        for l in c.to_lowercase() {
            let before = out.len();
            if l.is_ascii_alphanumeric() {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                out.push(l);
            } else if !l.is_ascii() {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                fold_char(l, &mut out);
            }
            if out.len() > before {
                pending_space = false;
            } else if l.is_whitespace() || l.is_ascii_punctuation() {
                pending_space = true;
            }
        }
    }
    out
}

/// Street folding: `fold_words` plus the usual USPS/UK/DE abbreviations, so that
/// "12 Main Street, Suite 4" and "12 main st ste 4" are equal.
pub(crate) fn fold_street(s: &str) -> String {
    let words = fold_words(s);
    let mut out = String::with_capacity(words.len());
    for w in words.split(' ') {
        let w = match w {
            "street" => "st",
            "avenue" | "av" => "ave",
            "road" => "rd",
            "boulevard" => "blvd",
            "drive" => "dr",
            "lane" => "ln",
            "court" => "ct",
            "place" => "pl",
            "square" => "sq",
            "parkway" => "pkwy",
            "highway" => "hwy",
            "suite" => "ste",
            "floor" => "fl",
            "north" => "n",
            "south" => "s",
            "east" => "e",
            "west" => "w",
            "strasse" | "str" => "str",
            other => other,
        };
        if w.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Postal codes: uppercase ASCII alphanumerics only ("sw1a 1aa" → "SW1A1AA").
pub(crate) fn fold_postal(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// Leading house number of a folded street, if any.
pub(crate) fn house_number(folded_street: &str) -> Option<&str> {
    let first = folded_street.split(' ').next()?;
    first.starts_with(|c: char| c.is_ascii_digit()).then_some(first)
}

/// Returns the trimmed value when the option holds a non-blank string.
pub(crate) fn present(s: &Option<String>) -> Option<&str> {
    match s.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Some(v),
        _ => None,
    }
}

/// First `n` characters (not bytes) of `s`.
pub(crate) fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_name("O'Brien-Müller"), "obrienmuller");
        assert_eq!(fold_words("  Acme,  Robotics!! "), "acme robotics");
        assert_eq!(fold_street("12 Main Street, Suite 4"), "12 main st ste 4");
        assert_eq!(fold_postal("sw1a 1aa"), "SW1A1AA");
        assert_eq!(house_number("12 main st"), Some("12"));
        assert_eq!(prefix("émile", 2), "ém");
    }
}
