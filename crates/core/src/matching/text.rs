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

/// Street types written in full that a typo in the last word of a street name is read as
/// (at least 5 letters, so that a one-letter slip cannot turn a short name word into one), with
/// their folded abbreviation.
const STREET_TYPES: [(&str, &str); 17] = [
    ("street", "st"),
    ("avenue", "ave"),
    ("boulevard", "blvd"),
    ("drive", "dr"),
    ("court", "ct"),
    ("place", "pl"),
    ("square", "sq"),
    ("parkway", "pkwy"),
    ("highway", "hwy"),
    ("crescent", "cres"),
    ("circuit", "cct"),
    ("terrace", "tce"),
    ("parade", "pde"),
    ("close", "cl"),
    ("grove", "gr"),
    ("esplanade", "esp"),
    ("circle", "cir"),
];

/// The abbreviation of the one street type `word` is a typo of ("xtreet", "plvace",
/// "cdrescent"), if exactly one is one edit away.
fn street_type_typo(word: &str) -> Option<&'static str> {
    if word.len() < 4 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut near = STREET_TYPES.iter().filter(|(full, _)| strsim::osa_distance(word, full) == 1);
    match (near.next(), near.next()) {
        (Some((_, abbreviation)), None) => Some(abbreviation),
        _ => None,
    }
}

/// Street folding: `fold_words` plus the usual USPS/UK/DE/AU abbreviations, so that
/// "12 Main Street, Suite 4" and "12 main st ste 4" are equal, and so are "Ramsay Place" and
/// "ramsay pl". The last word of a street name of two or more words that is one typo from a
/// street type written in full is that type ("medley xtreet" is "medley st"): the type word is
/// as often mistyped as any other, and left as it is it would make the name differ.
pub(crate) fn fold_street(s: &str) -> String {
    let words = fold_words(s);
    let parts: Vec<&str> = words.split(' ').filter(|w| !w.is_empty()).collect();
    let is_name_word = |w: &str| !w.starts_with(|c: char| c.is_ascii_digit());
    let last_name_word = parts.iter().rposition(|w| is_name_word(w));
    let name_words = parts.iter().filter(|w| is_name_word(w)).count();
    let mut out = String::with_capacity(words.len());
    for (i, w) in parts.iter().copied().enumerate() {
        let w = match w {
            "street" => "st",
            "avenue" | "av" => "ave",
            "road" => "rd",
            "boulevard" | "boulevarde" => "blvd",
            "drive" => "dr",
            "lane" => "ln",
            "court" => "ct",
            "place" => "pl",
            "square" => "sq",
            "parkway" => "pkwy",
            "highway" => "hwy",
            "crescent" => "cres",
            "circuit" => "cct",
            "terrace" => "tce",
            "parade" => "pde",
            "close" => "cl",
            "grove" => "gr",
            "esplanade" => "esp",
            "circle" => "cir",
            "suite" => "ste",
            "floor" => "fl",
            "north" => "n",
            "south" => "s",
            "east" => "e",
            "west" => "w",
            "strasse" | "str" => "str",
            other if name_words >= 2 && Some(i) == last_name_word => street_type_typo(other).unwrap_or(other),
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

/// A folded street split into its house number (the first word starting with a digit, at the
/// start or, as in "Hauptstr 5", at the end) and its street name with the spaces removed
/// ("12 goldfinch cct" → `("12", "goldfinchcct")`), so that a word break typed or lost
/// ("langdoneavenue") does not change the name. Either part may be empty.
pub(crate) fn split_street(folded: &str) -> (&str, String) {
    let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let numeric = |w: &&str| w.starts_with(|c: char| c.is_ascii_digit());
    let at = match (words.first(), words.last()) {
        (Some(w), _) if numeric(w) => Some(0),
        (_, Some(w)) if numeric(w) && words.len() > 1 => Some(words.len() - 1),
        _ => None,
    };
    let number = at.and_then(|i| words.get(i).copied()).unwrap_or("");
    let name = words.iter().enumerate().filter(|(i, _)| Some(*i) != at).map(|(_, w)| *w).collect();
    (number, name)
}

/// Values typed where a name is required but that name nobody: "Unknown", "Test", "N/A", "-",
/// "none", "x", "asdf", "first", ... (compared folded: letters only, lowercase). They weigh
/// nothing and make no blocking keys, as if the name were missing. "Na" is a surname, so "N/A"
/// is recognised by its slash, not by its letters.
pub(crate) fn is_placeholder_name(raw: &str) -> bool {
    const PLACEHOLDERS: &[&str] = &[
        "unknown",
        "unk",
        "unkown",
        "test",
        "testing",
        "tester",
        "nn",
        "none",
        "null",
        "nil",
        "nobody",
        "noname",
        "anonymous",
        "anon",
        "x",
        "xx",
        "xxx",
        "xxxx",
        "asdf",
        "asd",
        "qwerty",
        "first",
        "last",
        "firstname",
        "lastname",
        "name",
        "surname",
        "fname",
        "lname",
        "tbd",
        "tba",
        "dummy",
        "sample",
        "fake",
        "abc",
        "aaa",
        "foo",
        "blah",
        "notgiven",
        "notprovided",
    ];
    let lower = raw.trim().to_lowercase();
    let folded = fold_name(&lower);
    folded.is_empty()
        || matches!(lower.as_str(), "n/a" | "n.a." | "n.a" | "n / a")
        || PLACEHOLDERS.contains(&folded.as_str())
}

/// The trimmed name when it is present and not a placeholder ([`is_placeholder_name`]).
pub(crate) fn person_name(s: &Option<String>) -> Option<&str> {
    present(s).filter(|n| !is_placeholder_name(n))
}

/// Postal codes: uppercase ASCII alphanumerics only ("sw1a 1aa" → "SW1A1AA").
pub(crate) fn fold_postal(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
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
    fn a_mistyped_street_type_is_the_type() {
        assert_eq!(fold_street("28 Medley Xtreet"), "28 medley st");
        assert_eq!(fold_street("26 yampi plvace"), "26 yampi pl");
        assert_eq!(fold_street("29 paul coe cdrescent"), "29 paul coe cres");
        // Only the last word of a name of two or more words, and only one type away.
        assert_eq!(fold_street("5 Xtreet"), "5 xtreet");
        assert_eq!(fold_street("7 grace lame"), "7 grace lame");
        assert_eq!(fold_street("3 drove"), "3 drove");
        assert_eq!(fold_street("3 old drove"), "3 old drove", "one edit from both drive and grove");
        assert_eq!(fold_street("9 placer hill"), "9 placer hill");
    }

    #[test]
    fn folding() {
        assert_eq!(fold_name("O'Brien-Müller"), "obrienmuller");
        assert_eq!(fold_words("  Acme,  Robotics!! "), "acme robotics");
        assert_eq!(fold_street("12 Main Street, Suite 4"), "12 main st ste 4");
        assert_eq!(fold_postal("sw1a 1aa"), "SW1A1AA");
        assert_eq!(prefix("émile", 2), "ém");
    }

    #[test]
    fn a_street_splits_into_number_and_name() {
        assert_eq!(split_street(&fold_street("48 Goldfinch Circuit")), ("48", "goldfinchcct".to_owned()));
        assert_eq!(split_street(&fold_street("48 goldfinch cct")), ("48", "goldfinchcct".to_owned()));
        assert_eq!(split_street(&fold_street("Hauptstr. 5")), ("5", "hauptstr".to_owned()));
        assert_eq!(split_street(&fold_street("brigalow street")), ("", "brigalowst".to_owned()));
        assert_eq!(split_street("13"), ("13", String::new()));
    }

    #[test]
    fn placeholders_are_not_names() {
        for p in ["Unknown", "TEST", "N/A", "-", "none", "null", "x", "asdf", "?", "First", "last"] {
            assert!(is_placeholder_name(p), "{p}");
            assert_eq!(person_name(&Some(p.to_owned())), None, "{p}");
        }
        for n in ["Jo", "Ng", "Na", "Xu", "Nadia", "Lastra"] {
            assert_eq!(person_name(&Some(n.to_owned())), Some(n), "{n}");
        }
    }
}
