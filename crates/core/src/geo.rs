//! Country and subdivision normalisation for leadflow.
//!
//! Maps the messy free text found in web forms and CRM exports to
//! ISO 3166-1 alpha-2 country codes and ISO 3166-2 subdivision codes.
//!
//! # Example
//!
//! ```
//! use leadflow_core::geo::{country, country_with_context, lookup, subdivision, CountryCode, Lookup};
//!
//! let us = country("u.s.a.").expect("known");
//! assert_eq!(us.as_str(), "US");
//! assert_eq!(country("Deutschland").map(|c| c.as_str()), Some("DE"));
//! assert_eq!(country(" the Netherlands ").map(|c| c.as_str()), Some("NL"));
//! assert_eq!(country("Korea"), None);
//! assert!(matches!(lookup("Korea"), Lookup::Ambiguous(_)));
//! assert_eq!(country("Georgia").map(|c| c.as_str()), Some("GE"));
//! assert_eq!(country_with_context("Georgia", us), None);
//! assert_eq!(subdivision(&us, "Calif."), Some("US-CA"));
//! assert_eq!(CountryCode::parse_code("GB").map(|c| c.name()), Some("United Kingdom"));
//! ```
//!
//! # Contract
//!
//! * **Precision first.** A lookup returns a code only when the input
//!   matches, after normalisation, exactly one known key. There is no fuzzy
//!   or prefix matching: `U.S.` is the United States (never the Virgin
//!   Islands), `New Jersey` is not Jersey, `Nigeria` is not Niger.
//!   Unknown input gives [`Lookup::Unknown`]; input that names several
//!   countries gives [`Lookup::Ambiguous`] with the candidates. [`country`]
//!   maps both to `None`. A wrong code is treated as worse than no code.
//! * **Accepted forms.** All 249 ISO 3166-1 entries by alpha-2 code,
//!   alpha-3 code and English short name (also the ISO official name and
//!   the comma-inverted form, so `Korea, Republic of` and `Republic of
//!   Korea` both work); English aliases (`USA`, `U.K.`, `Holland`,
//!   `Ivory Coast`, `UAE`, …); native names and common exonyms
//!   (`Deutschland`, `España`, `Österreich`, `日本`, `Россия`, …); a
//!   handful of unambiguous misspellings (`Phillipines`, `Untied States`);
//!   a flag emoji alone or next to a name that agrees with it.
//! * **Normalisation.** Case, surrounding or repeated whitespace,
//!   punctuation, dots (`u.s.a.`, `U. S.`), apostrophes, accents (`Espana`,
//!   `Turkiye`), the words `the`, `and`, `of` (so `Ireland, Republic of`
//!   = `Republic of Ireland`), `&` for `and`, `St.` for `Saint`, full-width
//!   Latin letters. Codes are recognised only when written as one plain
//!   ASCII token (`de`, `DEU `, `NA.`); dotted letters such as `N.A.` or
//!   `D.E.` and accented tokens such as `Mỹ` are never read as a code (so
//!   `n.a.` and `n/a` are not Namibia, while `NA` is).
//! * **Fallbacks** (only when the whole input matches nothing):
//!   1. the state-form words `republic`, `kingdom`, `commonwealth`,
//!      `federal`, `federation` are dropped and the rest looked up again
//!      (`Nigeria Republic`, `Australia, Commonwealth of`); `state` is
//!      kept on purpose (`State of Georgia` stays unknown), and
//!      `Republic of China` is listed as ambiguous (CN/TW);
//!   2. input made of several parts separated by `/ \ , ; : ( ) [ ] | -`
//!      or dashes is found only when every part resolves and the parts'
//!      candidate sets intersect in exactly one country (`Germany (DE)`,
//!      `England, UK`, `Korea (ROK)`); `USA/Canada` and `Georgia (US)` are
//!      ambiguous, `Berlin, Germany` is unknown.
//! * **Ambiguity decisions.** `Korea`, `Congo`, `Virgin Islands`,
//!   `Saint Martin`, `Guiana`, `Columbia` and `Dominican` stay ambiguous.
//!   `Guinea`, `Niger`, `Dominica`, `Samoa`, `Sudan` and `Jersey` are the
//!   exact ISO short names of GN, NE, DM, WS, SD and JE and resolve to
//!   them. `Georgia` is the country GE unless a context country is given
//!   whose subdivisions include the same input: with
//!   [`lookup_with_context`]`(…, Some(US))`, `Georgia` (and equally `CA`,
//!   `IN`, `DE`, `GA`, … which are also US state codes) become ambiguous.
//!   The context never turns an input into the context country itself.
//!   `Island` (German for Iceland, but also an English word) is unknown.
//!   Historical states that split (`USSR`, `Yugoslavia`,
//!   `Czechoslovakia`, `Netherlands Antilles`), regions (`Europe`,
//!   `Scandinavia`) and codes outside ISO 3166-1 (`EU`, `EL`, `XK`/Kosovo)
//!   are unknown; `UK` is accepted as an alias of GB.
//! * **Subdivisions.** [`subdivision`] covers the US (50 states, DC and the
//!   six outlying areas), Canada (13 provinces and territories) and
//!   Australia (8 states and territories). It returns the full ISO 3166-2
//!   code (`US-CA`, `CA-QC`, `AU-NSW`); the bare part is `&code[3..]`.
//!   Other countries give `None`.
//! * **Failure modes.** Never panics, never allocates more than a few small
//!   strings per call. Tables are built once, on first use, behind
//!   [`LazyLock`]; lookups are hash-map probes on the folded key.

mod aliases;
mod data;
mod fold;
mod subdivision;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use data::{COUNTRIES, SUBDIVISIONS};
use fold::fold;

/// An assigned ISO 3166-1 alpha-2 country code.
///
/// Only the 249 officially assigned codes can be represented; values are
/// created by [`CountryCode::parse_code`] or by the lookups.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(u8);

impl CountryCode {
    fn row(&self) -> Option<&'static data::CountryRow> {
        COUNTRIES.get(usize::from(self.0))
    }

    /// The alpha-2 code, two ASCII upper-case letters (`"DE"`).
    pub fn as_str(&self) -> &'static str {
        self.row().map_or("", |r| r.alpha2)
    }

    /// The alpha-3 code (`"DEU"`).
    pub fn alpha3(&self) -> &'static str {
        self.row().map_or("", |r| r.alpha3)
    }

    /// The ISO 3166-1 English short name (`"Korea, Republic of"`).
    pub fn name(&self) -> &'static str {
        self.row().map_or("", |r| r.name)
    }

    /// A common English name where ISO's short name is awkward
    /// (`"South Korea"`, `"Iran"`), else the short name.
    pub fn common_name(&self) -> &'static str {
        match self.row() {
            Some(r) if !r.common_name.is_empty() => r.common_name,
            Some(r) => r.name,
            None => "",
        }
    }

    /// Strict alpha-2 parse: exactly two ASCII upper-case letters forming
    /// an assigned code. No trimming, no lower case, no aliases (`"UK"` →
    /// `None`). Use [`country`] for free text.
    pub fn parse_code(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        let i = COUNTRIES.binary_search_by(|r| r.alpha2.cmp(s)).ok()?;
        u8::try_from(i).ok().map(CountryCode)
    }

    /// Every assigned code, in alphabetical order.
    pub fn all() -> impl Iterator<Item = CountryCode> {
        (0..COUNTRIES.len()).filter_map(|i| u8::try_from(i).ok().map(CountryCode))
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a country lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one country matches.
    Found(CountryCode),
    /// The input names several countries (`Korea`, `USA/Canada`); the
    /// candidates are sorted and distinct.
    Ambiguous(Vec<CountryCode>),
    /// Nothing matches (`Europe`, `n/a`, `Berlin`, `XX`).
    Unknown,
    /// The input is empty or only whitespace/punctuation.
    Empty,
}

impl Lookup {
    /// The code when [`Lookup::Found`], else `None`.
    pub fn code(&self) -> Option<CountryCode> {
        match self {
            Lookup::Found(c) => Some(*c),
            _ => None,
        }
    }
}

/// A name-table entry: one country or a deliberate/automatic ambiguity.
enum Entry {
    One(CountryCode),
    Many(Vec<CountryCode>),
}

struct Tables {
    /// Folded alpha-2 and alpha-3 codes.
    codes: HashMap<String, CountryCode>,
    /// Folded names, aliases and native names.
    names: HashMap<String, Entry>,
    /// (country, folded subdivision key) → ISO 3166-2 code; `None` when two
    /// subdivisions of one country share the key.
    subdivisions: HashMap<(CountryCode, String), Option<&'static str>>,
}

fn add_name(names: &mut HashMap<String, Entry>, raw: &str, code: CountryCode) {
    let key = fold(raw).key;
    if key.is_empty() {
        return;
    }
    match names.get_mut(&key) {
        None => {
            names.insert(key, Entry::One(code));
        }
        Some(Entry::One(c)) if *c == code => {}
        Some(e) => {
            let mut v = match e {
                Entry::One(c) => vec![*c],
                Entry::Many(v) => v.clone(),
            };
            v.push(code);
            v.sort();
            v.dedup();
            *e = Entry::Many(v);
        }
    }
}

/// `"Korea, Republic of"` → `"Republic of Korea"`.
fn comma_inverted(name: &str) -> Option<String> {
    let (head, tail) = name.split_once(", ")?;
    Some(format!("{tail} {head}"))
}

/// `"Republic of Ireland"` → `"Ireland, Republic of"`.
fn of_inverted(name: &str) -> Option<String> {
    let (head, tail) = name.split_once(" of ")?;
    Some(format!("{tail}, {head} of"))
}

/// A name plus its comma- and of-inverted forms.
fn add_name_forms(names: &mut HashMap<String, Entry>, raw: &str, code: CountryCode) {
    add_name(names, raw, code);
    if let Some(inv) = comma_inverted(raw) {
        add_name(names, &inv, code);
    }
    if !raw.contains(", ")
        && let Some(inv) = of_inverted(raw)
    {
        add_name(names, &inv, code);
    }
}

fn build() -> Tables {
    let mut codes = HashMap::new();
    let mut names = HashMap::new();
    for code in CountryCode::all() {
        let Some(r) = code.row() else { continue };
        codes.insert(fold(r.alpha2).key, code);
        codes.insert(fold(r.alpha3).key, code);
        for n in [r.name, r.official_name, r.common_name] {
            if n.is_empty() {
                continue;
            }
            add_name_forms(&mut names, n, code);
        }
    }
    for (alias, a2) in aliases::ALIASES {
        if let Some(code) = CountryCode::parse_code(a2) {
            add_name_forms(&mut names, alias, code);
        }
    }
    for (alias, cands) in aliases::AMBIGUOUS {
        let mut v: Vec<CountryCode> = cands.iter().filter_map(|c| CountryCode::parse_code(c)).collect();
        v.sort();
        v.dedup();
        names.insert(fold(alias).key, Entry::Many(v));
    }

    let mut subdivisions = HashMap::new();
    let mut add_sub = |code: &'static str, raw: &str| {
        let Some(country) = code.get(..2).and_then(CountryCode::parse_code) else {
            return;
        };
        let key = fold(raw).key;
        if key.is_empty() {
            return;
        }
        let slot = subdivisions.entry((country, key)).or_insert(Some(code));
        if *slot != Some(code) {
            *slot = None;
        }
    };
    for (code, name) in SUBDIVISIONS.iter() {
        add_sub(code, name);
        add_sub(code, code);
        if let Some(bare) = code.get(3..) {
            add_sub(code, bare);
        }
        if let Some(inv) = comma_inverted(name) {
            add_sub(code, &inv);
        }
    }
    for (code, alias) in subdivision::SUBDIVISION_ALIASES {
        add_sub(code, alias);
    }

    Tables { codes, names, subdivisions }
}

static TABLES: LazyLock<Tables> = LazyLock::new(build);

/// Look up one text fragment without flags or part splitting.
fn lookup_text(raw: &str) -> Lookup {
    let f = fold(raw);
    if f.key.is_empty() {
        return Lookup::Empty;
    }
    let t = &*TABLES;
    if f.code_like
        && let Some(c) = t.codes.get(&f.key)
    {
        return Lookup::Found(*c);
    }
    let entry = t.names.get(&f.key).or_else(|| without_state_form(&f.key).and_then(|k| t.names.get(&k)));
    match entry {
        Some(Entry::One(c)) => Lookup::Found(*c),
        Some(Entry::Many(v)) => Lookup::Ambiguous(v.clone()),
        None => Lookup::Unknown,
    }
}

fn is_part_separator(c: char) -> bool {
    matches!(c, '/' | '\\' | ',' | ';' | '(' | ')' | '[' | ']' | '|' | '-' | '\u{2013}' | '\u{2014}' | ':')
}

/// Whole-input lookup, then, if unknown, a lookup of every part: the
/// result is found only when every part resolves and the candidate sets
/// of all parts intersect in exactly one country (`Germany (DE)`,
/// `Korea (ROK)`).
fn lookup_parts(raw: &str) -> Lookup {
    let whole = lookup_text(raw);
    if whole != Lookup::Unknown || !raw.contains(is_part_separator) {
        return whole;
    }
    let mut union: Vec<CountryCode> = Vec::new();
    let mut common: Option<Vec<CountryCode>> = None;
    let mut parts = 0usize;
    let mut any_unknown = false;
    for part in raw.split(is_part_separator) {
        let cands = match lookup_text(part) {
            Lookup::Empty => continue,
            Lookup::Found(c) => vec![c],
            Lookup::Ambiguous(v) => v,
            Lookup::Unknown => {
                any_unknown = true;
                Vec::new()
            }
        };
        parts += 1;
        union.extend_from_slice(&cands);
        common = Some(match common {
            None => cands,
            Some(prev) => prev.into_iter().filter(|c| cands.contains(c)).collect(),
        });
    }
    union.sort();
    union.dedup();
    match common.as_deref() {
        Some([one]) if !any_unknown && parts >= 2 => Lookup::Found(*one),
        _ if union.len() >= 2 => Lookup::Ambiguous(union),
        _ => Lookup::Unknown,
    }
}

/// Words naming a form of state, dropped as a last resort
/// (`Nigeria Republic`, `Australia, Commonwealth of`). Deliberately not
/// `state` (`State of Georgia`) nor `democratic`, `people's`, `united`.
const STATE_FORM_WORDS: &[&str] = &["republic", "kingdom", "commonwealth", "federal", "federation"];

/// The key without state-form words, when that removes something and
/// leaves something.
fn without_state_form(key: &str) -> Option<String> {
    let kept: Vec<&str> = key.split(' ').filter(|t| !STATE_FORM_WORDS.contains(t)).collect();
    if kept.is_empty() || kept.len() == key.split(' ').count() {
        return None;
    }
    Some(kept.join(" "))
}

/// Flag emoji in the input: regional-indicator pairs (🇩🇪) and the
/// England/Scotland/Wales tag flags (→ GB). `Err(())` when the flags are
/// malformed or name an unassigned code.
fn flags(raw: &str) -> Result<Vec<CountryCode>, ()> {
    let mut out = Vec::new();
    if raw.is_ascii() {
        return Ok(out);
    }
    let mut pending: Option<u8> = None;
    let mut tag = String::new();
    for c in raw.chars() {
        let u = u32::from(c);
        if (0x1F1E6..=0x1F1FF).contains(&u) {
            let letter = b'A' + u8::try_from(u - 0x1F1E6).map_err(|_| ())?;
            match pending.take() {
                None => pending = Some(letter),
                Some(first) => {
                    let pair = [first, letter];
                    let s = std::str::from_utf8(&pair).map_err(|_| ())?;
                    out.push(CountryCode::parse_code(s).ok_or(())?);
                }
            }
        } else if (0xE0061..=0xE007A).contains(&u) {
            if let Some(ch) = char::from_u32(u - 0xE0000) {
                tag.push(ch);
            }
        } else if u == 0xE007F {
            if tag.starts_with("gb") {
                out.extend(CountryCode::parse_code("GB"));
            } else {
                return Err(());
            }
            tag.clear();
        }
    }
    if pending.is_some() {
        return Err(());
    }
    Ok(out)
}

/// Look up a free-text country. See the crate docs for what is accepted.
pub fn lookup(raw: &str) -> Lookup {
    let Ok(mut fl) = flags(raw) else {
        return Lookup::Unknown;
    };
    fl.sort();
    fl.dedup();
    let text = lookup_parts(raw);
    match (fl.as_slice(), text) {
        ([], text) => text,
        ([f], Lookup::Empty) => Lookup::Found(*f),
        ([f], Lookup::Found(c)) if *f == c => Lookup::Found(c),
        ([f], Lookup::Ambiguous(v)) if v.contains(f) => Lookup::Found(*f),
        (_, Lookup::Unknown) => Lookup::Unknown,
        (fs, Lookup::Found(c)) => {
            let mut v = fs.to_vec();
            v.push(c);
            v.sort();
            v.dedup();
            Lookup::Ambiguous(v)
        }
        (fs, Lookup::Ambiguous(mut v)) => {
            v.extend_from_slice(fs);
            v.sort();
            v.dedup();
            Lookup::Ambiguous(v)
        }
        (fs, Lookup::Empty) => Lookup::Ambiguous(fs.to_vec()),
    }
}

/// Like [`lookup`], with the country the rest of the record points to
/// (e.g. from a state field or a +1 phone number).
///
/// If the input resolves to another country but is also a subdivision
/// name or code of `context` (`Georgia`, `CA`, `IN` with context US), the
/// result is [`Lookup::Ambiguous`] with both. A territory that is both
/// (`Puerto Rico` = `PR` = `US-PR`) stays found.
pub fn lookup_with_context(raw: &str, context: Option<CountryCode>) -> Lookup {
    let res = lookup(raw);
    let (Some(h), Lookup::Found(c)) = (context, &res) else {
        return res;
    };
    if *c == h {
        return res;
    }
    // A territory that is also an ISO 3166-1 entry (US-PR, "Puerto Rico")
    // names the same place either way.
    let same_place = |sub: &str| {
        sub.get(3..) == Some(c.as_str()) && subdivision_name(sub).map(lookup_text) == Some(Lookup::Found(*c))
    };
    match subdivision(&h, raw) {
        Some(sub) if !same_place(sub) => {
            let mut v = vec![*c, h];
            v.sort();
            Lookup::Ambiguous(v)
        }
        _ => res,
    }
}

/// Free-text country → alpha-2 code; `None` when unknown, ambiguous or
/// empty.
pub fn country(raw: &str) -> Option<CountryCode> {
    lookup(raw).code()
}

/// [`country`] with a context country; see [`lookup_with_context`].
pub fn country_with_context(raw: &str, context: CountryCode) -> Option<CountryCode> {
    lookup_with_context(raw, Some(context)).code()
}

/// Free-text state/province/territory of `country` → ISO 3166-2 code
/// (`"US-CA"`, `"CA-QC"`, `"AU-NSW"`). Accepts names (`new york`,
/// `Québec`), postal and traditional abbreviations (`NY`, `N.Y.`,
/// `Calif.`, `NSW`) and the full code itself. `None` for unknown input and
/// for countries other than US, CA and AU.
pub fn subdivision(country: &CountryCode, raw: &str) -> Option<&'static str> {
    let key = fold(raw).key;
    if key.is_empty() {
        return None;
    }
    TABLES.subdivisions.get(&(*country, key)).copied().flatten()
}

/// The English name of an ISO 3166-2 code known to [`subdivision`]
/// (`"US-CA"` → `"California"`).
pub fn subdivision_name(code: &str) -> Option<&'static str> {
    SUBDIVISIONS.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The ISO 3166-2 codes [`subdivision`] knows for `country`, sorted
/// (empty for countries other than US, CA and AU).
pub fn subdivision_codes(country: &CountryCode) -> impl Iterator<Item = &'static str> {
    let prefix = country.as_str();
    SUBDIVISIONS.iter().map(|(c, _)| *c).filter(move |c| c.get(..2) == Some(prefix) && c.get(2..3) == Some("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::parse_code(s).unwrap()
    }

    #[test]
    fn table_is_sorted_and_complete() {
        assert_eq!(COUNTRIES.len(), 249);
        assert!(COUNTRIES.windows(2).all(|w| w[0].alpha2 < w[1].alpha2));
        assert_eq!(CountryCode::all().count(), 249);
    }

    #[test]
    fn code_like_aliases_do_not_shadow_codes() {
        let t = &*TABLES;
        for (key, entry) in &t.names {
            if let (Some(code), Entry::One(c)) = (t.codes.get(key), entry) {
                assert_eq!(code, c, "name key {key:?} disagrees with code");
            }
        }
    }

    #[test]
    fn automatic_ambiguities_are_reviewed() {
        // Every multi-candidate key must be one we listed on purpose.
        let listed: Vec<String> = aliases::AMBIGUOUS.iter().map(|(a, _)| fold(a).key).collect();
        let t = &*TABLES;
        let mut surprises: Vec<&String> = t
            .names
            .iter()
            .filter(|(k, e)| matches!(e, Entry::Many(_)) && !listed.contains(k))
            .map(|(k, _)| k)
            .collect();
        surprises.sort();
        assert!(surprises.is_empty(), "unreviewed ambiguities: {surprises:?}");
        let sub_conflicts: Vec<_> = t.subdivisions.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k).collect();
        assert!(sub_conflicts.is_empty(), "{sub_conflicts:?}");
    }

    #[test]
    fn basics() {
        assert_eq!(country("U.S."), Some(cc("US")));
        assert_eq!(country("n/a"), None);
        assert_eq!(country("N.A."), None);
        assert_eq!(country("NA"), Some(cc("NA")));
        assert_eq!(lookup("Korea"), Lookup::Ambiguous(vec![cc("KP"), cc("KR")]));
        assert_eq!(lookup(" - "), Lookup::Empty);
        assert_eq!(country("🇰🇷 Korea"), Some(cc("KR")));
        assert_eq!(country("🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}"), Some(cc("GB")));
        assert_eq!(cc("KR").name(), "Korea, Republic of");
        assert_eq!(cc("KR").common_name(), "South Korea");
        assert_eq!(cc("DE").alpha3(), "DEU");
        assert_eq!(format!("{:?}", cc("DE")), "CountryCode(DE)");
    }

    #[test]
    fn georgia_context() {
        let us = cc("US");
        assert_eq!(country("Georgia"), Some(cc("GE")));
        assert_eq!(country_with_context("Georgia", us), None);
        assert_eq!(lookup_with_context("Georgia", Some(us)), Lookup::Ambiguous(vec![cc("GE"), us]));
        assert_eq!(country_with_context("Georgia", cc("DE")), Some(cc("GE")));
        assert_eq!(country_with_context("Puerto Rico", us), Some(cc("PR")));
        assert_eq!(country_with_context("USA", us), Some(us));
        assert_eq!(country_with_context("Germany", us), Some(cc("DE")));
        assert_eq!(country_with_context("CA", us), None);
    }

    #[test]
    fn subdivisions() {
        let us = cc("US");
        assert_eq!(subdivision(&us, "calif."), Some("US-CA"));
        assert_eq!(subdivision(&us, "N.Y."), Some("US-NY"));
        assert_eq!(subdivision(&us, "US-CA"), Some("US-CA"));
        assert_eq!(subdivision(&cc("CA"), "Québec"), Some("CA-QC"));
        assert_eq!(subdivision(&cc("AU"), "nsw"), Some("AU-NSW"));
        assert_eq!(subdivision(&cc("DE"), "Bayern"), None);
        assert_eq!(subdivision_name("US-CA"), Some("California"));
    }
}
