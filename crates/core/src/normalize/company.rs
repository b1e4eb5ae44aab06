//! Company names: display form and match key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::normalize::text::{collapse_ws, push_folded};

/// A normalized company name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Company {
    /// The name as entered, trimmed, with whitespace runs collapsed to one
    /// space. Case and punctuation are kept.
    pub display: String,
    /// Match key: see [`company`].
    pub key: String,
}

/// Legal-form suffixes, as folded key tokens (after dots, apostrophes and
/// slashes are removed: "L.L.C." → `llc`, "A/S" → `as`, "S.p.A." → `spa`).
/// Longer sequences are tried first.
const LEGAL_SUFFIXES: &[&[&str]] = &[
    &["gmbh", "and", "co", "kgaa"],
    &["gmbh", "and", "co", "kg"],
    &["ag", "and", "co", "kg"],
    &["sp", "z", "oo"],
    &["sa", "de", "cv"],
    &["s", "de", "rl"],
    &["pty", "ltd"],
    &["pty", "limited"],
    &["pvt", "ltd"],
    &["private", "limited"],
    &["pte", "ltd"],
    &["sdn", "bhd"],
    &["co", "ltd"],
    &["public", "limited", "company"],
    &["limited", "liability", "company"],
    &["inc"],
    &["incorporated"],
    &["corp"],
    &["corporation"],
    &["co"],
    &["company"],
    &["cos"],
    &["llc"],
    &["pllc"],
    &["ltd"],
    &["limited"],
    &["llp"],
    &["lp"],
    &["plc"],
    &["gmbh"],
    &["mbh"],
    &["ag"],
    &["kg"],
    &["kgaa"],
    &["ohg"],
    &["ug"],
    &["ev"],
    &["se"],
    &["sa"],
    &["sas"],
    &["sarl"],
    &["sl"],
    &["sll"],
    &["srl"],
    &["spa"],
    &["sro"],
    &["bv"],
    &["nv"],
    &["vof"],
    &["pty"],
    &["oy"],
    &["oyj"],
    &["ab"],
    &["as"],
    &["asa"],
    &["aps"],
    &["kk"],
    &["gk"],
    &["bhd"],
    &["pte"],
    &["pvt"],
    &["ltda"],
    &["kft"],
    &["zrt"],
    &["doo"],
];

/// Legal-form suffixes a deployment adds to `LEGAL_SUFFIXES` (`[matching] legal_suffixes`),
/// as folded key tokens. Cheap to clone: normalization (through
/// [`Picklists`](crate::normalize::Picklists)) and merges (through
/// [`Matching`](crate::resolve::Matching)) hold the same list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegalSuffixes(Arc<[Vec<String>]>);

impl LegalSuffixes {
    /// The suffixes as written ("Pty Ltd", "Kft.", "S.A.S."), folded like a key; `Err` holds
    /// the first one with no letter or digit.
    pub fn new<'a>(suffixes: impl IntoIterator<Item = &'a str>) -> Result<LegalSuffixes, &'a str> {
        let mut out = Vec::new();
        for suffix in suffixes {
            let tokens = key_tokens(suffix);
            if tokens.is_empty() {
                return Err(suffix);
            }
            if !out.contains(&tokens) {
                out.push(tokens);
            }
        }
        // Longer sequences first, as in the vendored list.
        out.sort_by_key(|t| std::cmp::Reverse(t.len()));
        Ok(LegalSuffixes(out.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Normalize a company name.
///
/// Returns `None` when the input has no letter or digit.
///
/// `key` is built as follows:
/// 1. lower-case, Latin diacritics folded ("Société" → "societe");
/// 2. `&` and `+` become the word `and`;
/// 3. dots, apostrophes, `’` and `/` are deleted (so "L.L.C." → `llc`,
///    "A/S" → `as`, "McDonald's" → `mcdonalds`); every other non-alphanumeric
///    character separates words;
/// 4. repeated until nothing changes: a leading `the` is dropped, a trailing
///    legal-form suffix (Inc, Corp, LLC, Ltd, GmbH, S.A., Pty Ltd, Sdn Bhd,
///    …; see `LEGAL_SUFFIXES`) is dropped, a dangling trailing `and`/`the` is
///    dropped;
/// 5. words are joined with single spaces.
///
/// No step may remove the last remaining word, so the key is never empty: a
/// name that is only a suffix keeps it ("Inc." → `inc`, "Pty Ltd" → `pty`),
/// and such keys only match the same bare suffix, never every company.
pub fn company(raw: &str) -> Option<Company> {
    company_with(raw, &LegalSuffixes::default())
}

/// [`company`], with the configured suffixes stripped as well (tried before the built-in ones,
/// so that "Holding AG" is removed whole rather than "AG" alone).
pub fn company_with(raw: &str, extra: &LegalSuffixes) -> Option<Company> {
    let display = collapse_ws(raw);
    let key = company_key(&display, extra)?;
    Some(Company { display, key })
}

/// Steps 1–3 of the key: folded words.
fn key_tokens(display: &str) -> Vec<String> {
    let mut folded = String::with_capacity(display.len() + 8);
    for c in display.chars() {
        match c {
            '&' | '+' => folded.push_str(" and "),
            '.' | '\'' | '’' | '/' | '`' | '´' => {}
            c if c.is_alphanumeric() => push_folded(c, &mut folded),
            _ => folded.push(' '),
        }
    }
    // push_folded can emit non-alphanumeric chars (e.g. combining marks).
    folded.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

fn company_key(display: &str, extra: &LegalSuffixes) -> Option<String> {
    let owned = key_tokens(display);
    let mut tokens: Vec<&str> = owned.iter().map(String::as_str).collect();
    if tokens.is_empty() {
        return None;
    }
    loop {
        let before = tokens.len();
        if tokens.len() > 1 && tokens[0] == "the" {
            tokens.remove(0);
        }
        if tokens.len() > 1 && matches!(tokens.last(), Some(&"and") | Some(&"the")) {
            tokens.pop();
        }
        let configured = extra
            .0
            .iter()
            .find(|s| tokens.len() > s.len() && tokens.iter().rev().zip(s.iter().rev()).all(|(t, x)| *t == x))
            .map(Vec::len);
        let built_in =
            || LEGAL_SUFFIXES.iter().find(|s| tokens.len() > s.len() && tokens.ends_with(s)).map(|s| s.len());
        if let Some(n) = configured.or_else(built_in) {
            tokens.truncate(tokens.len() - n);
        }
        if tokens.len() == before {
            break;
        }
    }
    Some(tokens.join(" "))
}

#[cfg(test)]
mod tests {
    use super::{LegalSuffixes, company, company_with};

    fn key(s: &str) -> String {
        company(s).map(|c| c.key).unwrap_or_default()
    }

    #[test]
    fn shared_keys() {
        assert_eq!(key("Acme, Inc."), "acme");
        assert_eq!(key("ACME Incorporated"), "acme");
        assert_eq!(key("The Acme Corp."), "acme");
        assert_eq!(key("acme"), "acme");
        assert_eq!(key("Acme Co., Ltd."), "acme");
        assert_eq!(key("Acme L.L.C."), "acme");
        assert_eq!(key("Acme GmbH & Co. KG"), "acme");
        assert_eq!(key("Acme Pty Ltd"), "acme");
        assert_eq!(key("Acme Sdn. Bhd."), "acme");
        assert_eq!(key("Acme A/S"), "acme");
        assert_eq!(key("Acme S.p.A."), "acme");
        assert_eq!(key("Acme S.A. de C.V."), "acme");
        assert_eq!(key("Acme B.V."), "acme");
        assert_eq!(key("Acme K.K."), "acme");
        assert_eq!(key("Acme Sp. z o.o."), "acme");
        assert_eq!(key("Acme Company, The"), "acme");
    }

    #[test]
    fn and_and_accents() {
        assert_eq!(key("Procter & Gamble Co."), "procter and gamble");
        assert_eq!(key("Procter and Gamble"), "procter and gamble");
        assert_eq!(key("Smith & Co."), "smith");
        assert_eq!(key("Société Générale S.A."), "societe generale");
        assert_eq!(key("Nestlé"), "nestle");
        assert_eq!(key("McDonald's Corporation"), "mcdonalds");
        assert_eq!(key("Coca-Cola Company"), "coca cola");
        assert_eq!(key("AT&T Inc."), "at and t");
    }

    #[test]
    fn only_suffix() {
        assert_eq!(key("Inc"), "inc");
        assert_eq!(key("Inc."), "inc");
        assert_eq!(key("The"), "the");
        assert_eq!(key("LLC Inc"), "llc");
        assert_eq!(key("Pty Ltd"), "pty");
        assert_ne!(key("Inc"), key("Acme Inc"));
        assert!(company("!!!").is_none());
        assert!(company("   ").is_none());
    }

    #[test]
    fn configured_suffixes_are_stripped_too() {
        let extra = LegalSuffixes::new(["e.h.f.", "Holding AG", "Kft"]).unwrap();
        let key = |s: &str| company_with(s, &extra).map(|c| c.key).unwrap_or_default();
        assert_eq!(super::company("Acme ehf").map(|c| c.key).as_deref(), Some("acme ehf"));
        assert_eq!(key("Acme ehf."), "acme");
        assert_eq!(key("ACME Holding AG"), "acme");
        assert_eq!(key("Acme Kft."), "acme");
        // Never the last word, and the built-in list still applies.
        assert_eq!(key("Ehf"), "ehf");
        assert_eq!(key("Acme Inc. ehf"), "acme");
        assert_eq!(LegalSuffixes::new(["Oy", " .. "]), Err(" .. "));
    }

    #[test]
    fn display() {
        let c = company("  The   Acme\tCorp. ");
        assert_eq!(c.map(|c| c.display).as_deref(), Some("The Acme Corp."));
    }

    #[test]
    fn key_is_idempotent_on_examples() {
        for s in ["The The Acme", "co inc", "Acme the Inc", "and", "& Co"] {
            let k = key(s);
            assert_eq!(key(&k), k, "{s}");
        }
    }
}
