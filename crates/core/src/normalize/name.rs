//! Person-name normalization.

use crate::normalize::text::collapse_ws;

/// Lower-case name particles. A particle token is written in lower case when
/// it is neither the first nor the last token of the name ("Ludwig van
/// Beethoven", "Juan de la Cruz"); as the first token it is capitalised
/// ("Van Morrison", "De Niro") and as the last token too ("Joe Le").
const PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "de", "del", "della", "dello", "degli", "la", "le", "les", "da", "das", "dos", "do",
    "di", "du", "ten", "ter", "zu", "zur",
];

/// Generational suffixes / roman numerals written in upper case.
const UPPER_TOKENS: &[&str] = &["ii", "iii", "iv", "vi", "vii", "viii"];

/// Surnames beginning with "Mac" that are *not* Mac+Capital (after the usual
/// heuristic; see [`mac_rest_capitalised`]).
const MAC_EXCEPTIONS: &[&str] = &[
    "macevicius",
    "machar",
    "machin",
    "machlin",
    "macias",
    "maciulis",
    "mackie",
    "mackle",
    "macklin",
    "mackmin",
    "macquarie",
    "macomber",
    "macey",
    "macken",
    "mackey",
    "macedo",
    "machen",
    "macher",
    "mackin",
    "macnab",
];

/// Normalize a person's name (a full name, a first name or a last name).
///
/// * Trims, turns whitespace/control characters into single spaces.
/// * Returns `None` when nothing alphabetic is left.
/// * Each space-separated token is recased **only** when it is entirely upper
///   case or entirely lower case; a token with both ("DeShawn", "McKenzie",
///   "iPhone-like") is kept exactly as typed. Tokens without cased letters
///   (CJK, digits) are kept.
/// * Recasing lower-cases the token and capitalises the first letter of each
///   part separated by `-` or an apostrophe (`'` or `’`): "smith-jones" →
///   "Smith-Jones", "o'brien" → "O'Brien", "d'angelo" → "D'Angelo".
/// * "Mc" is followed by a capital ("McDonald"); "Mac" is followed by a
///   capital when at least three letters follow and the last letter is not one
///   of a, c, i, o, z, j (the Lingua::EN::NameCase heuristic) and the name is
///   not a known exception: "MacDonald", but "Mack", "Macy", "Machado",
///   "Mackie".
/// * Particles (van, von, der, de, la, le, da, di, du, dos, ten, ter, …) are
///   lower case unless first or last token: "ludwig van beethoven" →
///   "Ludwig van Beethoven", "VAN MORRISON" → "Van Morrison".
/// * Roman numerals ii–viii are upper-cased ("John Smith III").
pub fn person_name(raw: &str) -> Option<String> {
    let collapsed = collapse_ws(raw);
    if !collapsed.chars().any(char::is_alphabetic) {
        return None;
    }
    let count = collapsed.split(' ').count();
    let mut out = String::with_capacity(collapsed.len() + 4);
    for (i, token) in collapsed.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let has_upper = token.chars().any(char::is_uppercase);
        let has_lower = token.chars().any(char::is_lowercase);
        if has_upper == has_lower {
            // Mixed case (respect the writer) or no cased letter at all.
            out.push_str(token);
            continue;
        }
        recase_token(token, i == 0, i + 1 == count, &mut out);
    }
    Some(out)
}

fn recase_token(token: &str, first: bool, last: bool, out: &mut String) {
    let lower = token.to_lowercase();
    let bare = lower.trim_end_matches(['.', ',']);
    if !first && !last && PARTICLES.contains(&bare) {
        out.push_str(&lower);
        return;
    }
    if !first && UPPER_TOKENS.contains(&bare) {
        out.push_str(&lower.to_uppercase());
        return;
    }
    // Split into parts at '-' and apostrophes, keeping the separators.
    let mut part = String::new();
    for c in lower.chars() {
        if matches!(c, '-' | '\'' | '’' | '‐') {
            capitalise_part(&part, out);
            part.clear();
            out.push(c);
        } else {
            part.push(c);
        }
    }
    capitalise_part(&part, out);
}

fn capitalise_part(part: &str, out: &mut String) {
    if part.is_empty() {
        return;
    }
    if let Some(rest) = part.strip_prefix("mc")
        && rest.chars().next().is_some_and(char::is_alphabetic)
    {
        out.push_str("Mc");
        capitalise_first(rest, out);
        return;
    }
    if let Some(rest) = part.strip_prefix("mac")
        && mac_rest_capitalised(part, rest)
    {
        out.push_str("Mac");
        capitalise_first(rest, out);
        return;
    }
    capitalise_first(part, out);
}

fn mac_rest_capitalised(whole: &str, rest: &str) -> bool {
    let n = rest.chars().count();
    n >= 3
        && rest.chars().all(|c| c.is_ascii_lowercase())
        && !rest.ends_with(['a', 'c', 'i', 'o', 'z', 'j'])
        && !MAC_EXCEPTIONS.contains(&whole)
}

/// Upper-case the first alphabetic character of `s` (characters before it,
/// e.g. digits or brackets, are copied) and copy the rest.
fn capitalise_first(s: &str, out: &mut String) {
    let mut done = false;
    for c in s.chars() {
        if !done && c.is_alphabetic() {
            // Title case: "ß" → "Ss", not "SS" (which would read as ALL CAPS).
            let mut up = c.to_uppercase();
            if let Some(first) = up.next() {
                out.push(first);
            }
            for rest in up {
                out.extend(rest.to_lowercase());
            }
            done = true;
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::person_name as p;

    fn n(s: &str) -> String {
        p(s).unwrap_or_default()
    }

    #[test]
    fn basic() {
        assert_eq!(n("  john   SMITH "), "John Smith");
        assert_eq!(n("JOHN SMITH"), "John Smith");
        assert_eq!(n("john smith"), "John Smith");
        assert_eq!(p(""), None);
        assert_eq!(p("   "), None);
        assert_eq!(p("123 -"), None);
    }

    #[test]
    fn irish_scottish() {
        assert_eq!(n("o'brien"), "O'Brien");
        assert_eq!(n("PATRICK O’NEILL"), "Patrick O’Neill");
        assert_eq!(n("mcdonald"), "McDonald");
        assert_eq!(n("MACDONALD"), "MacDonald");
        assert_eq!(n("macleod"), "MacLeod");
        assert_eq!(n("mack"), "Mack");
        assert_eq!(n("MACY"), "Macy");
        assert_eq!(n("machado"), "Machado");
        assert_eq!(n("mackie"), "Mackie");
        assert_eq!(n("macias"), "Macias");
        assert_eq!(n("mace"), "Mace");
        assert_eq!(n("mc"), "Mc");
    }

    #[test]
    fn particles() {
        assert_eq!(n("ludwig van beethoven"), "Ludwig van Beethoven");
        assert_eq!(n("VAN MORRISON"), "Van Morrison");
        assert_eq!(n("van morrison"), "Van Morrison");
        assert_eq!(n("juan de la cruz"), "Juan de la Cruz");
        assert_eq!(n("anna van der berg"), "Anna van der Berg");
        assert_eq!(n("JOHANN VON NEUMANN"), "Johann von Neumann");
        assert_eq!(n("maria da silva"), "Maria da Silva");
        assert_eq!(n("leonardo di caprio"), "Leonardo di Caprio");
        assert_eq!(n("jean le pen"), "Jean le Pen");
        assert_eq!(n("de niro"), "De Niro");
        assert_eq!(n("robert de"), "Robert De");
    }

    #[test]
    fn hyphen_apostrophe() {
        assert_eq!(n("smith-jones"), "Smith-Jones");
        assert_eq!(n("MARY-KATE SMITH-JONES"), "Mary-Kate Smith-Jones");
        assert_eq!(n("d'angelo"), "D'Angelo");
        assert_eq!(n("jean-luc d'arcy"), "Jean-Luc D'Arcy");
    }

    #[test]
    fn mixed_case_untouched() {
        assert_eq!(n("DeShawn"), "DeShawn");
        assert_eq!(n("McKenzie"), "McKenzie");
        assert_eq!(n("iPhone-like"), "iPhone-like");
        assert_eq!(n("Ludwig Van Beethoven"), "Ludwig Van Beethoven");
        assert_eq!(n("DeShawn JONES"), "DeShawn Jones");
        assert_eq!(n("  Mary   Ann  "), "Mary Ann");
    }

    #[test]
    fn unicode() {
        assert_eq!(n("josé garcía"), "José García");
        assert_eq!(n("ÅSA"), "Åsa");
        assert_eq!(n("ÅSA ÖSTLUND"), "Åsa Östlund");
        assert_eq!(n("ŁUKASZ ŻÓŁW"), "Łukasz Żółw");
        assert_eq!(n("ΟΔΥΣΣΕΑΣ"), "Οδυσσεας");
        assert_eq!(n("山田 太郎"), "山田 太郎");
        assert_eq!(n("SØREN KIERKEGAARD"), "Søren Kierkegaard");
        assert_eq!(n("ßenz"), "Ssenz");
    }

    #[test]
    fn suffixes_and_initials() {
        assert_eq!(n("JOHN SMITH III"), "John Smith III");
        assert_eq!(n("j. r. r. tolkien"), "J. R. R. Tolkien");
        assert_eq!(n("MARY E SMITH"), "Mary E Smith");
        assert_eq!(n("martin luther king jr."), "Martin Luther King Jr.");
    }
}
