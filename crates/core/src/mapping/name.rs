//! Splitting a full name into first and last name.
//!
//! Rules, in order:
//! 1. Whitespace is trimmed and runs of it collapsed to one space.
//! 2. With a comma, the name is read as `Last, First …` (`Lovelace, Ada` → `Ada` +
//!    `Lovelace`) — unless everything after the comma is suffixes (`Ada Lovelace, Jr.`),
//!    in which case the suffixes join the last name and the rest is read as below.
//!    Parts after a second comma that are suffixes join the last name too.
//! 3. Leading honorifics are dropped: Mr, Mrs, Ms, Miss, Mx, Dr, Prof (with or without a
//!    dot, any case, several in a row: `Prof. Dr. Ada Lovelace`), unless nothing else is left.
//! 4. Without a comma the first token is the first name and everything after it the last
//!    name, so middle names, particles and suffixes stay with the last name
//!    (`Dr. Ada King Lovelace` → `Ada` + `King Lovelace`, `Ludwig van Beethoven` →
//!    `Ludwig` + `van Beethoven`, `Martin Luther King Jr.` → `Martin` + `Luther King Jr.`).
//! 5. A single token is a first name only.
//!
//! Suffixes recognised: Jr, Sr, II, III, IV, V, PhD, MD, Esq (with or without a dot).
//! Tokens keep their spelling; only whitespace changes.

const HONORIFICS: &[&str] = &["mr", "mrs", "ms", "miss", "mx", "dr", "prof"];
const SUFFIXES: &[&str] = &["jr", "sr", "ii", "iii", "iv", "v", "phd", "md", "esq"];

fn bare(token: &str) -> String {
    token.trim_end_matches('.').to_ascii_lowercase()
}

fn is_honorific(token: &str) -> bool {
    HONORIFICS.contains(&bare(token).as_str())
}

fn is_suffix(token: &str) -> bool {
    SUFFIXES.contains(&bare(token).as_str())
}

/// A full name split into its parts; either may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameParts {
    pub first: Option<String>,
    pub last: Option<String>,
}

fn tokens(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn drop_honorifics<'a>(mut t: &'a [&'a str]) -> &'a [&'a str] {
    while t.len() > 1 && t.first().is_some_and(|x| is_honorific(x)) {
        t = t.get(1..).unwrap_or_default();
    }
    t
}

fn join(t: &[&str]) -> Option<String> {
    (!t.is_empty()).then(|| t.join(" "))
}

/// Splits a full name by the rules in the module documentation.
pub fn split_full_name(name: &str) -> NameParts {
    let mut parts = name.split(',').map(str::trim).filter(|p| !p.is_empty());
    let Some(head) = parts.next() else { return NameParts::default() };
    let rest: Vec<&str> = parts.collect();
    let rest_is_suffixes = rest.iter().all(|p| tokens(p).iter().all(|t| is_suffix(t)));
    if rest.is_empty() || rest_is_suffixes {
        let all = tokens(head);
        let t = drop_honorifics(&all);
        let (first, last) = match t.split_first() {
            Some((first, last)) => (Some((*first).to_owned()), last.to_vec()),
            None => (None, Vec::new()),
        };
        let mut last = last;
        if last.is_empty() && !rest.is_empty() {
            // `Ada, Jr.`: the suffix has nothing to attach to but the first name.
            return NameParts { first: join(&[first.as_deref().unwrap_or_default()]), last: None }
                .with_suffixes(&rest, true);
        }
        for p in &rest {
            last.extend(tokens(p));
        }
        return NameParts { first, last: join(&last) };
    }
    // `Last, First …[, Suffix]`
    let first_part = rest.first().copied().unwrap_or_default();
    let first_tokens = tokens(first_part);
    let first = join(drop_honorifics(&first_tokens));
    let mut last = tokens(head);
    for p in rest.iter().skip(1) {
        last.extend(tokens(p));
    }
    NameParts { first, last: join(&last) }
}

impl NameParts {
    fn with_suffixes(mut self, suffixes: &[&str], onto_first: bool) -> Self {
        let target = if onto_first { &mut self.first } else { &mut self.last };
        let mut all: Vec<&str> = target.as_deref().map(tokens).unwrap_or_default();
        for s in suffixes {
            all.extend(tokens(s));
        }
        *target = join(&all);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (Option<&'static str>, Option<&'static str>) {
        let p = split_full_name(s);
        (p.first.map(|s| &*s.leak()), p.last.map(|s| &*s.leak()))
    }

    #[test]
    fn first_last() {
        assert_eq!(split("Ada Lovelace"), (Some("Ada"), Some("Lovelace")));
        assert_eq!(split("  Ada   Lovelace "), (Some("Ada"), Some("Lovelace")));
    }

    #[test]
    fn comma_form() {
        assert_eq!(split("Lovelace, Ada"), (Some("Ada"), Some("Lovelace")));
        assert_eq!(split("King Lovelace, Ada Augusta"), (Some("Ada Augusta"), Some("King Lovelace")));
        assert_eq!(split("Lovelace, Ada, Jr."), (Some("Ada"), Some("Lovelace Jr.")));
        assert_eq!(split("Lovelace, Dr. Ada"), (Some("Ada"), Some("Lovelace")));
    }

    #[test]
    fn honorifics_and_middle_names() {
        assert_eq!(split("Dr. Ada King Lovelace"), (Some("Ada"), Some("King Lovelace")));
        assert_eq!(split("prof. dr. Ada Lovelace"), (Some("Ada"), Some("Lovelace")));
        assert_eq!(split("Mrs Ada Lovelace"), (Some("Ada"), Some("Lovelace")));
        assert_eq!(split("Ms. Lovelace"), (Some("Lovelace"), None));
        assert_eq!(split("Dr"), (Some("Dr"), None));
        assert_eq!(split("Ludwig van Beethoven"), (Some("Ludwig"), Some("van Beethoven")));
    }

    #[test]
    fn suffixes_stay_with_the_last_name() {
        assert_eq!(split("Martin Luther King Jr."), (Some("Martin"), Some("Luther King Jr.")));
        assert_eq!(split("Ada Lovelace, Jr."), (Some("Ada"), Some("Lovelace Jr.")));
        assert_eq!(split("Ada Lovelace, III"), (Some("Ada"), Some("Lovelace III")));
        assert_eq!(split("Ada, Jr."), (Some("Ada Jr."), None));
    }

    #[test]
    fn single_token_and_empty() {
        assert_eq!(split("Ada"), (Some("Ada"), None));
        assert_eq!(split(""), (None, None));
        assert_eq!(split(" , , "), (None, None));
        assert_eq!(split(", Ada"), (Some("Ada"), None));
    }
}
