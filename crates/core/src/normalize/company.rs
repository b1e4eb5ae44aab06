//! Company names: display form and match key.

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
    let display = collapse_ws(raw);
    let key = company_key(&display)?;
    Some(Company { display, key })
}

fn company_key(display: &str) -> Option<String> {
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
    let mut tokens: Vec<&str> = folded.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).collect();
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
        for suffix in LEGAL_SUFFIXES {
            if tokens.len() > suffix.len() && tokens.ends_with(suffix) {
                tokens.truncate(tokens.len() - suffix.len());
                break;
            }
        }
        if tokens.len() == before {
            break;
        }
    }
    Some(tokens.join(" "))
}

#[cfg(test)]
mod tests {
    use super::company;

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
