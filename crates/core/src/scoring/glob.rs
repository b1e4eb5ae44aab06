//! Glob patterns for URLs and strings: `*` is any run of characters (also none), `?`
//! exactly one character, everything else itself, ignoring ASCII case. Matching never
//! allocates.
//!
//! Scoring runs URL globs against every page view, so the common pattern without `?`
//! (`*/pricing*`) is compiled into its literal pieces and matched by substring search;
//! patterns with `?` take the general backtracking matcher.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
    /// The pieces between `*`s, lower-cased; `None` when the pattern has a `?`.
    pieces: Option<Vec<Box<[u8]>>>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        let pieces = (!pattern.contains('?'))
            .then(|| pattern.split('*').map(|p| p.to_ascii_lowercase().into_bytes().into_boxed_slice()).collect());
        Self { pattern: pattern.into(), pieces }
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        match &self.pieces {
            Some(pieces) => matches_pieces(pieces, text.as_bytes()),
            None => self.backtrack(text),
        }
    }

    fn backtrack(&self, text: &str) -> bool {
        let (p, t) = (self.pattern.as_bytes(), text.as_bytes());
        let (mut pi, mut ti) = (0, 0);
        // The last `*` seen and the text position it currently stands for the end of:
        // on a mismatch it swallows one more character and matching resumes after it.
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if let Some(&c) = p.get(pi) {
                if c == b'*' {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                if c == b'?' {
                    pi += 1;
                    ti += char_width(t[ti]);
                    continue;
                }
                if c.eq_ignore_ascii_case(&t[ti]) {
                    pi += 1;
                    ti += 1;
                    continue;
                }
            }
            match star {
                Some((sp, st)) => {
                    let next = st + char_width(t[st]);
                    star = Some((sp, next));
                    pi = sp + 1;
                    ti = next;
                }
                None => return false,
            }
        }
        p[pi.min(p.len())..].iter().all(|&c| c == b'*')
    }
}

/// `pieces` is the pattern split at `*`: the first must start the text, the last must end
/// it, and the ones between must appear in order; taking each at its leftmost place is
/// then always right.
fn matches_pieces(pieces: &[Box<[u8]>], text: &[u8]) -> bool {
    let [first, middle @ .., last] = pieces else {
        return pieces.first().is_some_and(|only| only.eq_ignore_ascii_case(text));
    };
    if text.len() < first.len() + last.len()
        || !text[..first.len()].eq_ignore_ascii_case(first)
        || !text[text.len() - last.len()..].eq_ignore_ascii_case(last)
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in middle {
        match find_ignore_case(rest, piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The leftmost place of `needle` (lower case) in `haystack`, ignoring ASCII case.
/// Candidates for the first byte are found with `memchr` (vectorized), in both cases.
pub(crate) fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&head, tail)) = needle.split_first() else { return Some(0) };
    let mut from = 0;
    while from + needle.len() <= haystack.len() {
        let window = &haystack[from..=haystack.len() - needle.len()];
        let found = if head.is_ascii_lowercase() {
            memchr::memchr2(head, head.to_ascii_uppercase(), window)
        } else {
            memchr::memchr(head, window)
        };
        let at = from + found?;
        if haystack[at + 1..at + needle.len()].eq_ignore_ascii_case(tail) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

/// The length of the UTF-8 character starting with `lead`, so `?` and `*` step over
/// whole characters.
fn char_width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;
    use proptest::prelude::*;

    #[test]
    fn star_and_question_mark() {
        let g = Glob::new("*/pricing*");
        assert!(g.matches("https://example.com/pricing"));
        assert!(g.matches("https://example.com/PRICING?plan=pro"));
        assert!(!g.matches("https://example.com/docs"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(Glob::new("a?c").matches("aéc"));
        assert!(!Glob::new("a?c").matches("ac"));
        assert!(Glob::new("*").matches(""));
        assert!(!Glob::new("").matches("x"));
        assert!(Glob::new("*a*b*").matches("xxaxxbxx"));
        assert!(!Glob::new("*a*b").matches("xxaxxbxx"));
        assert!(Glob::new("a*a").matches("aa"));
        assert!(!Glob::new("aa*aa").matches("aaa"));
        assert!(Glob::new("*.edu").matches("kim@MIT.EDU"));
    }

    proptest! {
        #[test]
        fn a_literal_pattern_matches_itself_and_star_matches_anything(s in "\\PC{0,40}") {
            prop_assert!(Glob::new(&s.replace(['*', '?'], "")).matches(&s.replace(['*', '?'], "")));
            prop_assert!(Glob::new("*").matches(&s));
        }

        #[test]
        fn matching_never_panics(p in "[a-c*?é]{0,12}", s in "[a-cé]{0,20}") {
            let _ = Glob::new(&p).matches(&s);
        }

        #[test]
        fn piece_matching_agrees_with_backtracking(p in "[aAb*é]{0,10}", s in "[abBé]{0,16}") {
            let g = Glob::new(&p);
            prop_assert_eq!(g.matches(&s), g.backtrack(&s));
        }
    }
}
