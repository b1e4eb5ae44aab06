//! Pairwise comparison (Fellegi-Sunter scoring), exact rules, hard safety rules and decisions.

use serde::{Deserialize, Serialize};

use crate::matching::Record;
use crate::matching::email::{EmailRules, email_match_key, is_role_local_part, split_email};
use crate::matching::model::{Field, Level, Model, Similarity, Thresholds, Verdict};
use crate::matching::nicknames::NicknameTable;
use crate::matching::text::{fold_name, fold_postal, fold_street, fold_words, person_name, present, split_street};

/// One piece of evidence: how a field compared and what it weighed (bits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub field: Field,
    pub level: Level,
    /// `log2(m/u)` of the level (0 for missing / not comparable); for [`Field::Context`] the
    /// (negative or positive) cap adjustment.
    pub weight: f64,
}

/// A safety rule that overrides the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HardRule {
    /// Different non-empty emails at the same non-free-mail domain: two mailboxes at one company
    /// are usually two colleagues (the issue requires this for different first names; it is
    /// applied whatever the first names): never auto-merge (ceiling: Review).
    SameDomainDifferentMailbox,
    /// Neither an exact contact (email, person-level phone) nor agreeing first *and* last names
    /// backed by some other agreeing field (email local part, phone, company, business domain,
    /// street or postal code): first name + company, or a full name alone, is a colleague or a
    /// namesake as often as the same person (ceiling: Review).
    InsufficientIdentity,
    /// Names agree, companies differ, and nothing else (email, phone, street, business domain)
    /// agrees: a namesake at another company (ceiling: Distinct).
    NameOnlyDifferentCompany,
    /// Same last name at the same company with different first names that are not
    /// nickname-equivalent: relatives or namesakes' family (ceiling: Distinct).
    RelativesAtCompany,
    /// The same role mailbox (`info@`, `sales@`) and names that do not agree: two people
    /// writing from their organisation's shared address (ceiling: Distinct).
    SharedMailboxDifferentNames,
}

impl HardRule {
    /// Highest verdict allowed while this rule fires.
    pub fn ceiling(self) -> Verdict {
        match self {
            HardRule::SameDomainDifferentMailbox | HardRule::InsufficientIdentity => Verdict::Review,
            HardRule::NameOnlyDifferentCompany
            | HardRule::RelativesAtCompany
            | HardRule::SharedMailboxDifferentNames => Verdict::Distinct,
        }
    }
}

/// Result of [`compare`]: the summed score and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchScore {
    /// Sum of the evidence weights (bits).
    pub score: f64,
    /// One entry per field, in [`Field`] order, plus a [`Field::Context`] entry when the
    /// organisation/location sum was capped.
    pub parts: Vec<Evidence>,
    /// Hard rules that fired; [`decide`] applies their ceilings.
    pub rules: Vec<HardRule>,
}

impl MatchScore {
    /// Highest verdict the fired hard rules allow.
    pub fn ceiling(&self) -> Verdict {
        self.rules.iter().map(|r| r.ceiling()).min().unwrap_or(Verdict::Merge)
    }

    /// Highest verdict the fired rules that report a *conflict* allow: every rule but
    /// [`HardRule::InsufficientIdentity`], which reports missing evidence. Two records that
    /// each matched a third confidently are one person unless they contradict each other.
    pub fn conflict_ceiling(&self) -> Verdict {
        self.rules
            .iter()
            .filter(|r| **r != HardRule::InsufficientIdentity)
            .map(|r| r.ceiling())
            .min()
            .unwrap_or(Verdict::Merge)
    }

    /// Evidence for `field`, if present.
    pub fn part(&self, field: Field) -> Option<&Evidence> {
        self.parts.iter().find(|e| e.field == field)
    }

    /// Human-readable one-line explanation, e.g.
    /// `22.4 = FirstName:Nickname(+5.3) LastName:Exact(+8.8) ...`.
    pub fn explain(&self) -> String {
        let mut s = format!("{:.1} =", self.score);
        for e in &self.parts {
            s.push_str(&format!(" {:?}:{:?}({:+.1})", e.field, e.level, e.weight));
        }
        for r in &self.rules {
            s.push_str(&format!(" rule:{r:?}"));
        }
        s
    }
}

/// Which exact rule identified a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExactRule {
    /// Equal [`email_match_key`]s.
    Email,
    /// Equal E.164 phone numbers.
    Phone,
}

/// Exact identity rules: equal email match keys, else equal phones.
///
/// This is the store's fast path for *finding* a candidate, not a merge decision on its own:
/// shared mailboxes (`info@`) and switchboard numbers exist, so [`compare`] scores these as its
/// strongest levels and the names can still veto the merge.
///
/// A role mailbox (`info@`, `sales@`, [`is_role_mailbox`]) is not a person's: an equal one is
/// not the exact rule, and [`compare`] scores it as organisation evidence.
pub fn exact_match(a: &Record, b: &Record, rules: &EmailRules) -> Option<ExactRule> {
    if let (Some(x), Some(y)) = (present(&a.email), present(&b.email))
        && !is_role_mailbox(x)
        && email_match_key(x, rules) == email_match_key(y, rules)
    {
        return Some(ExactRule::Email);
    }
    match (phone_of(a), phone_of(b)) {
        (Some(x), Some(y)) if x == y => Some(ExactRule::Phone),
        _ => None,
    }
}

/// Whether the address is a role or shared mailbox (`info@`, `sales@`, `contact@`, `hello@`,
/// `noreply@`, ...): one an organisation's people share, so it does not identify one of them.
pub fn is_role_mailbox(email: &str) -> bool {
    split_email(email.trim()).is_some_and(|(local, _)| is_role_local_part(&local.to_ascii_lowercase()))
}

/// Verdict from a score alone (no hard rules): `Merge` at/above `auto_merge`, `Review` at/above
/// `review`, else `Distinct`. A NaN score is `Distinct`.
pub fn decide_score(score: f64, thresholds: &Thresholds) -> Verdict {
    if score >= thresholds.auto_merge {
        Verdict::Merge
    } else if score >= thresholds.review {
        Verdict::Review
    } else {
        Verdict::Distinct
    }
}

/// Verdict for a compared pair: the threshold verdict, lowered to the ceiling of any fired
/// [`HardRule`].
pub fn decide(score: &MatchScore, thresholds: &Thresholds) -> Verdict {
    decide_score(score.score, thresholds).min(score.ceiling())
}

/// Bits the other organisation/location fields may add beyond an agreeing company's own
/// (frequency-adjusted) weight when the model has value frequencies.
const SITE_BONUS: f64 = 1.0;

/// Symmetric Jaro-Winkler (inputs ordered first, so `jw(a, b) == jw(b, a)` bit for bit).
fn jw(a: &str, b: &str) -> f64 {
    if a <= b { strsim::jaro_winkler(a, b) } else { strsim::jaro_winkler(b, a) }
}

fn one_edit(a: &str, b: &str) -> bool {
    a.len().min(b.len()) >= 3 && strsim::osa_distance(a, b) == 1
}

fn phone_of(r: &Record) -> Option<String> {
    let p = present(&r.phone)?;
    let digits: String = p.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
    (digits.chars().filter(char::is_ascii_digit).count() >= 5).then_some(digits)
}

fn first_name_level(a: &str, b: &str, sim: &Similarity) -> Level {
    let (a, b) = (fold_name(a), fold_name(b));
    if a.is_empty() || b.is_empty() {
        return Level::Missing;
    }
    if a == b {
        return Level::Exact;
    }
    if NicknameTable::global().equivalent_folded(&a, &b) {
        return Level::Nickname;
    }
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if short.len() == 1 {
        return if long.starts_with(short.as_str()) { Level::Initial } else { Level::Different };
    }
    // A short form cut from the other ("Kat" / Katherine, "Vale" / Valentina): truncation is the
    // commonest way nicknames are made, in most languages, and the table cannot list them all.
    // Scored like a typo-level difference; long prefixes ("Joseph" / "Josephine") already are.
    if short.len() >= 3 && long.starts_with(short.as_str()) {
        return Level::Similar;
    }
    // A typo anywhere, the first letter included ("Kristen" / "Christen" is not one, "Isabekle"
    // / "Isabelle" is): Jaro-Winkler favours a shared start, so longer names one edit apart
    // are Similar whatever letter changed.
    let s = jw(&a, &b);
    // A name the table does not know one edit from one it does ("Jqdy" / Judy, "Jkm" / Jim) is
    // that name misspelt; two names it knows ("Lea" / Leo, "Jon" / Jan) are two names.
    let table = NicknameTable::global();
    let misspelt_known = one_edit(&a, &b) && table.contains(&a) != table.contains(&b);
    if s >= sim.name_similar
        || (short.len() >= 6 && typo_apart(&a, &b) && strsim::osa_distance(&a, &b) == 1)
        || misspelt_known
    {
        Level::Similar
    } else if s >= sim.name_close || one_edit(&a, &b) {
        Level::Close
    } else {
        Level::Different
    }
}

/// Whether one folded first name is a misspelling of a name nickname-equivalent to the other
/// (both at least 4 letters): one edit away with the same initial ("Billl" / William), or the
/// same stem with another diminutive ending ("Robbie" / Robert, whose table entry is "Robby").
fn nickname_typo(a: &str, b: &str) -> bool {
    if a.len() < 4 || b.len() < 4 {
        return false;
    }
    let table = NicknameTable::global();
    // Cheap filters first (same initial, length within one) before the edit distance.
    let near = |x: &str, y: &str| {
        x.as_bytes().first() == y.as_bytes().first() && x.len().abs_diff(y.len()) <= 1 && y.len() >= 4 && one_edit(x, y)
    };
    let same_stem = |x: &str, y: &str| {
        let (sx, sy) = (diminutive_stem(x), diminutive_stem(y));
        sx.len() >= 3 && sx.len() < x.len() && sy.len() < y.len() && sx == sy
    };
    // A name the table knows is not a typo ("John" is one edit from "Joan", in Hannah's group;
    // "Mary" from "Marg", in Margaret's), unless the two differ only in the diminutive ending.
    let typo_of =
        |x: &str, y: &str| table.equivalents(y).iter().any(|n| same_stem(x, n) || (near(x, n) && !table.contains(x)));
    typo_of(a, b) || typo_of(b, a)
}

/// A folded first name without its diminutive ending (-ie, -ey, -y, -i, -e), if a stem of at
/// least two letters remains.
fn diminutive_stem(name: &str) -> &str {
    ["ie", "ey", "y", "i", "e"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix).filter(|stem| stem.len() >= 2))
        .unwrap_or(name)
}

fn last_name_level(raw_a: &str, raw_b: &str, sim: &Similarity) -> Level {
    let (a, b) = (fold_name(raw_a), fold_name(raw_b));
    if a.is_empty() || b.is_empty() {
        return Level::Missing;
    }
    if a == b {
        return Level::Exact;
    }
    let s = jw(&a, &b);
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    // A surname glued to a longer one is another surname ("John" / "Johnson", "Black" /
    // "Blackson", "Richard" / "Richards" + 1 is left to the typo levels): a typo adds one
    // letter, not two. A second surname in its own word ("Garcia" / "Garcia Lopez",
    // "Smith" / "Smith-Jones") is the same person's fuller name and keeps Jaro-Winkler's level.
    if long.len() >= short.len() + 2 && long.starts_with(short.as_str()) {
        let raw_long = if a.len() <= b.len() { raw_b } else { raw_a };
        let own_word = raw_long.split(|c: char| c.is_whitespace() || c == '-').any(|w| fold_name(w) == *short);
        if !own_word {
            return Level::Close;
        }
    }
    // A typo anywhere, the first letter included: one edit in a surname of at least 5 letters,
    // two in one of at least 8 ("Gryosler" / "Grosser" is not, "Culbetson" / "Culbertson" is).
    if s >= sim.name_similar || (short.len() >= 5 && typo_apart(&a, &b)) {
        Level::Similar
    } else if s >= sim.name_close || one_edit(&a, &b) || (short.len() >= 4 && long.contains(short.as_str())) {
        Level::Close
    } else {
        Level::Different
    }
}

fn email_level(a: &Record, b: &Record, rules: &EmailRules) -> Level {
    let (Some(x), Some(y)) = (present(&a.email), present(&b.email)) else {
        return Level::Missing;
    };
    let (kx, ky) = (email_match_key(x, rules), email_match_key(y, rules));
    if kx == ky {
        return if is_role_mailbox(&kx) { Level::SharedMailbox } else { Level::Exact };
    }
    let (Some((lx, dx)), Some((ly, dy))) = (split_email(&kx), split_email(&ky)) else {
        return Level::Different;
    };
    if lx == ly && dx != dy && (a.free_mail || b.free_mail) && lx.len() >= 4 && !is_role_local_part(lx) {
        Level::SameLocalPart
    } else if dx == dy && !a.free_mail && !b.free_mail {
        Level::DifferentSameDomain
    } else if a.free_mail != b.free_mail {
        // A personal address against a work one: most people have both, so that they differ
        // says nothing about whether the two records are one person.
        Level::NotComparable
    } else {
        Level::Different
    }
}

/// Whether both email local parts are spelt from the (agreeing) names alone — `jane.doe`,
/// `jdoe`, `janed`, `jane`, `doe.jane`, … with `.`, `_` or `-` between the parts — and spell out
/// a common part in full (the first name in both, or the surname in both): the way one person's
/// addresses at one company look (an alias, a pattern change). Colleagues who share a name are
/// told apart by their addresses: a digit (`jane.doe2`) or a middle initial (`jane.m.doe`) is not
/// spelt from the names and keeps the pair in review, and so do `jon@` / `jsmith@`, which could
/// be a Jon and a J. Smith whatever the records say.
fn aliases_of_one_name(a: &Record, b: &Record) -> bool {
    let names = |r: &Record| -> Option<(String, String)> {
        Some((fold_name(present(&r.first_name)?), fold_name(present(&r.last_name)?)))
    };
    let (Some((fa, la)), Some((fb, lb))) = (names(a), names(b)) else {
        return false;
    };
    let table = NicknameTable::global();
    let mut firsts: Vec<String> = vec![fa.clone(), fb.clone()];
    for f in [&fa, &fb] {
        firsts.extend(table.formal_names(f).map(str::to_owned));
    }
    firsts.retain(|f| !f.is_empty());
    let lasts: Vec<&String> = [&la, &lb].into_iter().filter(|l| !l.is_empty()).collect();
    // The name parts a local part spells out in full, if it is spelt from the names alone.
    let spelt = |local: &str| -> Option<Vec<String>> {
        let local: String = local.chars().filter(|c| !matches!(c, '.' | '_' | '-')).collect();
        if local.is_empty() || !local.bytes().all(|c| c.is_ascii_lowercase()) {
            return None;
        }
        let mut parts = Vec::new();
        for f in &firsts {
            for l in &lasts {
                let (fi, li) = (&f[..1], &l[..1]);
                let full: [(String, &[&String]); 7] = [
                    (format!("{f}{l}"), &[f, l]),
                    (format!("{fi}{l}"), &[l]),
                    (format!("{f}{li}"), &[f]),
                    (f.clone(), &[f]),
                    (format!("{l}{f}"), &[f, l]),
                    (format!("{l}{fi}"), &[l]),
                    ((*l).clone(), &[l]),
                ];
                for (pattern, spelt_out) in full {
                    if pattern == local {
                        parts.extend(spelt_out.iter().map(|p| (*p).clone()));
                    }
                }
            }
        }
        (!parts.is_empty()).then_some(parts)
    };
    let local = |r: &Record| present(&r.email).and_then(split_email).map(|(l, _)| l.to_ascii_lowercase());
    match (local(a).as_deref().and_then(spelt), local(b).as_deref().and_then(spelt)) {
        (Some(x), Some(y)) => x.iter().any(|p| y.contains(p)),
        _ => false,
    }
}

/// Business domains of a record: its email domain unless free-mail, and its website domain.
pub(crate) fn business_domains(r: &Record) -> [Option<String>; 2] {
    let email_domain = if r.free_mail {
        None
    } else {
        present(&r.email_domain)
            .map(str::to_owned)
            .or_else(|| present(&r.email).and_then(split_email).map(|(_, d)| d.to_owned()))
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
    };
    let website = present(&r.website_domain).map(|d| {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        d.strip_prefix("www.").map(str::to_owned).unwrap_or(d)
    });
    [email_domain, website]
}

fn domain_level(a: &Record, b: &Record) -> Level {
    let (da, db) = (business_domains(a), business_domains(b));
    let has = |d: &[Option<String>; 2]| d.iter().any(Option::is_some);
    if !has(&da) || !has(&db) {
        let free = |r: &Record| r.free_mail && present(&r.email).is_some();
        return if free(a) || free(b) { Level::NotComparable } else { Level::Missing };
    }
    let shared = da.iter().flatten().any(|x| db.iter().flatten().any(|y| x == y));
    if shared { Level::Exact } else { Level::Different }
}

fn company_level(a: &str, b: &str, sim: &Similarity) -> Level {
    let (a, b) = (fold_words(a), fold_words(b));
    if a.is_empty() || b.is_empty() {
        return Level::Missing;
    }
    // Word breaks are spelling, not identity ("Pricewaterhouse Coopers" / "PricewaterhouseCoopers").
    let compact = |s: &str| s.chars().filter(|c| *c != ' ').collect::<String>();
    if a == b || compact(&a) == compact(&b) {
        return Level::Exact;
    }
    // Numbers in a name name different entities ("Studio 54" / "Studio 57", "Company 12" /
    // "Company 1234", "3M" / "4M"): no spelling of one is the other.
    if digits(&a) != digits(&b) {
        return Level::Different;
    }
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    let word_prefix =
        long.starts_with(short.as_str()) && long.as_bytes().get(short.len()) == Some(&b' ') && short.len() >= 3;
    if word_prefix || jw(&a, &b) >= sim.company_similar { Level::Similar } else { Level::Different }
}

/// The digits of a value, in order.
fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Company key, or — when a record has none — the company label of its business domain
/// (`jenkinssilver.fr` → `jenkinssilver`), compared with spaces removed.
fn company_level_of(a: &Record, b: &Record, sim: &Similarity) -> Level {
    match (present(&a.company_key), present(&b.company_key)) {
        (Some(x), Some(y)) => company_level(x, y, sim),
        (None, None) => Level::Missing,
        (Some(key), None) | (None, Some(key)) => {
            let other = if present(&a.company_key).is_some() { b } else { a };
            let compact: String = fold_words(key).chars().filter(|c| *c != ' ').collect();
            let labels = business_domains(other);
            let mut any = false;
            for d in labels.iter().flatten() {
                any = true;
                if domain_label(d) == compact && !compact.is_empty() {
                    return Level::Exact;
                }
            }
            if any { Level::Different } else { Level::Missing }
        }
    }
}

/// First label of a domain, without `www.` (`www.acme.co.uk` → `acme`).
pub(crate) fn domain_label(domain: &str) -> &str {
    let d = domain.strip_prefix("www.").unwrap_or(domain);
    d.split('.').next().unwrap_or(d)
}

/// Whether two folded values (at least 4 characters) are a typo apart: Damerau-Levenshtein
/// (optimal string alignment) distance 1, or 2 when both have at least 8 characters.
fn typo_apart(a: &str, b: &str) -> bool {
    let n = a.len().min(b.len());
    n >= 4 && a.len().abs_diff(b.len()) <= 2 && strsim::osa_distance(a, b) <= if n >= 8 { 2 } else { 1 }
}

/// Free-text place values (street name, second line, locality, city) compared with the word
/// breaks removed: `Exact`, `Similar` (Jaro-Winkler ≥ `similar` or a typo apart), else
/// `Different`.
fn place_level(a: &str, b: &str, similar: f64) -> Level {
    if a.is_empty() || b.is_empty() {
        return Level::Missing;
    }
    if a == b {
        Level::Exact
    } else if jw(a, b) >= similar || typo_apart(a, b) {
        Level::Similar
    } else {
        Level::Different
    }
}

fn compact(s: &str) -> String {
    fold_words(s).replace(' ', "")
}

/// House number and street name of both records.
fn street_levels(a: &Record, b: &Record, sim: &Similarity) -> (Level, Level) {
    let (Some(x), Some(y)) = (present(&a.street), present(&b.street)) else {
        return (Level::Missing, Level::Missing);
    };
    let (x, y) = (fold_street(x), fold_street(y));
    let ((nx, sx), (ny, sy)) = (split_street(&x), split_street(&y));
    let number = if nx.is_empty() || ny.is_empty() {
        Level::Missing
    } else if nx == ny {
        Level::Exact
    } else if nx.len() == ny.len() && strsim::osa_distance(nx, ny) == 1 {
        // One digit off or two swapped: a typo as often as another house.
        Level::Close
    } else {
        Level::Different
    };
    (number, place_level(&sx, &sy, sim.street_similar))
}

fn postal_level(a: &Record, b: &Record) -> Level {
    let (Some(x), Some(y)) = (present(&a.postal_code), present(&b.postal_code)) else {
        return Level::Missing;
    };
    let (x, y) = (fold_postal(x), fold_postal(y));
    if x.is_empty() || y.is_empty() {
        return Level::Missing;
    }
    let countries_differ = match (present(&a.country), present(&b.country)) {
        (Some(c), Some(d)) => !c.eq_ignore_ascii_case(d),
        _ => false,
    };
    if countries_differ {
        Level::Different
    } else if x == y {
        Level::Exact
    } else if x.len() == y.len() && x.len() >= 4 && strsim::osa_distance(&x, &y) == 1 {
        // One character off or two swapped: a typo, or the next district.
        Level::Close
    } else {
        Level::Different
    }
}

/// Locality against locality; when one record has only a locality and the other only a city
/// (one source maps the suburb to the city), the two are compared too, but there a mismatch is
/// no evidence (a suburb lies in a city of another name).
fn locality_level(a: &Record, b: &Record, sim: &Similarity) -> Level {
    let place = |v: &Option<String>| present(v).map(compact).unwrap_or_default();
    let (la, lb) = (place(&a.locality), place(&b.locality));
    if !la.is_empty() && !lb.is_empty() {
        return place_level(&la, &lb, sim.city_similar);
    }
    let (ca, cb) = (place(&a.city), place(&b.city));
    let cross = match (la.is_empty(), lb.is_empty()) {
        (false, true) if !cb.is_empty() && ca.is_empty() => place_level(&la, &cb, sim.city_similar),
        (true, false) if !ca.is_empty() && cb.is_empty() => place_level(&ca, &lb, sim.city_similar),
        _ => Level::Missing,
    };
    if cross == Level::Different { Level::Missing } else { cross }
}

fn state_level(a: &Record, b: &Record) -> Level {
    match (present(&a.state).map(compact), present(&b.state).map(compact)) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => {
            if x == y {
                Level::Exact
            } else {
                Level::Different
            }
        }
        _ => Level::Missing,
    }
}

fn city_level(a: &str, b: &str, sim: &Similarity) -> Level {
    place_level(&compact(a), &compact(b), sim.city_similar)
}

fn both<'a>(a: &'a Option<String>, b: &'a Option<String>, f: impl FnOnce(&'a str, &'a str) -> Level) -> Level {
    match (present(a), present(b)) {
        (Some(x), Some(y)) => f(x, y),
        _ => Level::Missing,
    }
}

/// Compares two records field by field and sums the Fellegi-Sunter weights.
///
/// Symmetric (`compare(a, b) == compare(b, a)`), total (never panics) and allocation-light.
/// See the crate documentation for the model, the context cap and the hard rules.
pub fn compare(a: &Record, b: &Record, model: &Model) -> MatchScore {
    let sim = &model.params().similarity;
    let (house, street) = street_levels(a, b, sim);
    let line2 = |x: &Option<String>, y: &Option<String>| {
        both(x, y, |x, y| place_level(&compact(x), &compact(y), sim.street_similar))
    };
    let mut street2 = line2(&a.street2, &b.street2);
    // The two address lines swapped ("30 Learmonth Drive" / "Wallace Heights" against "30
    // Wallace Heights" / "Learmonth Drive"): forms order them differently. When neither line
    // agrees as given and they agree crosswise (the street name against the other's second
    // line), the crosswise levels count. One crosswise pair may be missing: a form that kept
    // only the street in its second line ("6 Ponderossa" / "Max Henry Crescent" against "6
    // Max Henry Crescent"); a street name is not a unit or a building, so equal to the other's
    // second line it is the same street, not a coincidence.
    let (mut house, mut street) = (house, street);
    let line_agrees = |l: Level| matches!(l, Level::Exact | Level::Similar);
    if !line_agrees(street) && !line_agrees(street2) {
        let name_of = |r: &Record| present(&r.street).map(|s| split_street(&fold_street(s)).1).unwrap_or_default();
        let line_of = |r: &Record| present(&r.street2).map(|s| split_street(&fold_street(s)).1).unwrap_or_default();
        let (ab, ba) = (
            place_level(&name_of(a), &line_of(b), sim.street_similar),
            place_level(&line_of(a), &name_of(b), sim.street_similar),
        );
        let crosswise =
            (line_agrees(ab) && (line_agrees(ba) || ba == Level::Missing)) || (line_agrees(ba) && ab == Level::Missing);
        if crosswise {
            let number = |r: &Record| {
                [&r.street, &r.street2]
                    .into_iter()
                    .filter_map(|l| present(l).map(|s| split_street(&fold_street(s)).0.to_owned()))
                    .find(|n| !n.is_empty())
            };
            house = match (number(a), number(b)) {
                (Some(x), Some(y)) if x == y => Level::Exact,
                (Some(_), Some(_)) => Level::Different,
                _ => Level::Missing,
            };
            // The better level as the street, whichever direction it came from, so that the
            // comparison stays symmetric.
            (street, street2) = (ab.min(ba), ab.max(ba));
        }
    }
    let names = |x: Option<&str>, y: Option<&str>, f: fn(&str, &str, &Similarity) -> Level| match (x, y) {
        (Some(x), Some(y)) => f(x, y, sim),
        _ => Level::Missing,
    };
    let (fa, la, fb, lb) =
        (person_name(&a.first_name), person_name(&a.last_name), person_name(&b.first_name), person_name(&b.last_name));
    let mut first = names(fa, fb, first_name_level);
    let mut last = names(la, lb, last_name_level);
    // First and last name swapped ("Beazley Anthony" / "Anthony Beazley"): when neither agrees
    // as given but both agree crosswise, the crosswise levels count, an exact one as Similar
    // (a name that is both a given and a family name, "Thomas James", is the odd exception).
    let agrees = |l: Level| matches!(l, Level::Exact | Level::Nickname | Level::Similar);
    if !agrees(first) && !agrees(last) {
        let (cf, cl) = (names(fa, lb, first_name_level), names(la, fb, last_name_level));
        // One of the two crosswise may be only close ("Vanessa Reid" / "Rwid Vanesda": swapped
        // and each misspelt), as long as the other agrees: two names each near the other's
        // swapped name by chance are rarer than one swap with a typo.
        let near = |l: Level| agrees(l) || l == Level::Close;
        if (agrees(cf) && near(cl)) || (near(cf) && agrees(cl)) {
            let soften = |l: Level| if l == Level::Exact { Level::Similar } else { l };
            (first, last) = (soften(cf), soften(cl));
        } else if (cf == Level::Exact) != (cl == Level::Exact) {
            // One name written in the other field ("Lavis Henry" / "Jordan Lavis"): that name
            // agrees, scored as a misspelt surname whichever side holds it (so that the score
            // is symmetric), and the first names are compared as given.
            last = Level::Similar;
        }
    }
    let levels = [
        (Field::FirstName, first),
        (Field::LastName, last),
        (Field::Email, email_level(a, b, model.email_rules())),
        (
            Field::Phone,
            match (phone_of(a), phone_of(b)) {
                (Some(x), Some(y)) if x == y => Level::Exact,
                (Some(_), Some(_)) => Level::Different,
                _ => Level::Missing,
            },
        ),
        (Field::CompanyKey, company_level_of(a, b, sim)),
        (Field::EmailDomain, domain_level(a, b)),
        (Field::Street, street),
        (Field::PostalCode, postal_level(a, b)),
        (Field::City, both(&a.city, &b.city, |x, y| city_level(x, y, sim))),
        (Field::HouseNumber, house),
        (Field::Street2, street2),
        (Field::Locality, locality_level(a, b, sim)),
        (Field::State, state_level(a, b)),
    ];

    let mut levels = levels;
    // Nickname groups the deployment configured add to the vendored table.
    if let Some(groups) = model.nickname_groups()
        && !matches!(levels[0].1, Level::Exact | Level::Nickname | Level::Missing)
        && let (Some(x), Some(y)) = (present(&a.first_name), present(&b.first_name))
        && groups.equivalent(x, y)
    {
        levels[0].1 = Level::Nickname;
    }
    // A typo in a nickname ("Billl" / William, "Jacck" / John): when the last names agree, a
    // first name one edit from a nickname-equivalent of the other counts as Similar.
    if levels[0].1 == Level::Different
        && matches!(levels[1].1, Level::Exact | Level::Similar)
        && let (Some(x), Some(y)) = (fa, fb)
        && nickname_typo(&fold_name(x), &fold_name(y))
    {
        levels[0].1 = Level::Similar;
    }
    // Term-frequency adjustments (bits) per field, when the model has value frequencies.
    let mut tf = [0.0f64; Field::COUNT];
    if let Some(freq) = model.frequencies() {
        use crate::matching::frequency::FrequencyField as F;
        if let (Level::Exact | Level::Nickname, Some(x), Some(y)) = (levels[0].1, fa, fb) {
            let (x, y) = (fold_name(x), fold_name(y));
            tf[Field::FirstName as usize] = freq.adjustment(F::FirstName, &x).min(freq.adjustment(F::FirstName, &y));
        }
        if levels[1].1 == Level::Exact
            && let Some(x) = la
        {
            let last = fold_name(x);
            tf[Field::LastName as usize] = freq.adjustment(F::LastName, &last);
            if levels[0].1 == Level::Exact
                && let Some(f) = fa
            {
                tf[Field::LastName as usize] += freq.full_name_adjustment(&fold_name(f), &last);
            }
        }
        if levels[4].1 == Level::Exact
            && let (Some(x), Some(y)) =
                (crate::matching::blocking::company_token(a), crate::matching::blocking::company_token(b))
        {
            tf[Field::CompanyKey as usize] = freq.adjustment(F::Company, &x).min(freq.adjustment(F::Company, &y));
        }
    }
    let level = |f: Field| levels.iter().find(|(g, _)| *g == f).map_or(Level::Missing, |(_, l)| *l);
    let first = level(Field::FirstName);
    let last = level(Field::LastName);
    let email = level(Field::Email);
    let company = level(Field::CompanyKey);
    let same_org = matches!(company, Level::Exact | Level::Similar) || level(Field::EmailDomain) == Level::Exact;
    let names_conflict = !agrees(first) || !matches!(last, Level::Exact | Level::Similar | Level::Missing);
    let shared_line = same_org && names_conflict;
    // Neither record names an organisation: their address is a home, not an office that many
    // colleagues share.
    let household = !has_organisation(a) && !has_organisation(b);
    let mut parts = Vec::with_capacity(levels.len() + 1);
    let (mut person, mut ctx_pos, mut ctx_neg) = (0.0, 0.0, 0.0);
    for (field, level) in levels {
        let weight = model.weight(field, level) + tf[field as usize];
        // A phone number shared within one organisation by two people whose names conflict is
        // its switchboard, and a role mailbox is the organisation's: both are organisation
        // evidence and join the capped context group.
        let organisational = (field == Field::Phone && level == Level::Exact && shared_line)
            || (field == Field::Email && level == Level::SharedMailbox);
        if field.is_context() || organisational {
            if weight > 0.0 {
                ctx_pos += weight;
            } else {
                ctx_neg += weight;
            }
        } else {
            person += weight;
        }
        parts.push(Evidence { field, level, weight });
    }
    let positive = |f: Field| model.weight(f, level(f)) > 0.0;
    let street_agrees = matches!(street, Level::Exact | Level::Similar);
    let line2_agrees = line_agrees(street2);
    let area_agrees = [Field::PostalCode, Field::Locality, Field::City].into_iter().any(positive);
    // One dwelling: the same house number on an agreeing street (or, where one record gives
    // only the number, an agreeing second line) in an agreeing area, and no second line (unit,
    // building) that tells two homes apart. Where one record gives no house number, the street
    // is one dwelling for one family name: a surname that agrees on one street is that home's
    // household far more often than a neighbour, while a first name shared on a street is
    // common (many Thomases live in a street, few Petersens).
    let surname_agrees = matches!(last, Level::Exact | Level::Similar);
    let one_dwelling = area_agrees
        && (house == Level::Exact || (house == Level::Missing && (line2_agrees || surname_agrees)))
        && (street_agrees || (street == Level::Missing && line2_agrees && house == Level::Exact))
        && street2 != Level::Different;
    let params = model.params();
    let mut adjustment = 0.0;
    // With value frequencies, an agreeing company bounds the context: its fields add at most
    // `site_bonus` bits beyond the (frequency-adjusted) company weight, so a very large
    // organisation (where colleagues share everything) counts for little.
    let mut cap = match (household, one_dwelling) {
        (true, true) => params.dwelling_cap.max(params.household_cap).max(params.context_cap),
        (true, false) => params.household_cap.max(params.context_cap),
        (false, _) => params.context_cap,
    }
    .max(0.0);
    if model.frequencies().is_some() && company == Level::Exact {
        let company = model.weight(Field::CompanyKey, Level::Exact) + tf[Field::CompanyKey as usize];
        cap = cap.min((company + SITE_BONUS).max(0.0));
    }
    if ctx_pos > cap {
        adjustment -= ctx_pos - cap;
    }
    if ctx_neg < params.context_floor.min(0.0) {
        adjustment += params.context_floor.min(0.0) - ctx_neg;
    }
    if adjustment != 0.0 {
        parts.push(Evidence { field: Field::Context, level: Level::Capped, weight: adjustment });
    }
    let score = person + ctx_pos + ctx_neg + adjustment;

    let mut rules = Vec::new();
    if email == Level::DifferentSameDomain
        && !(matches!(first, Level::Exact | Level::Nickname) && last == Level::Exact && aliases_of_one_name(a, b))
    {
        rules.push(HardRule::SameDomainDifferentMailbox);
    }
    let names_agree = agrees(first) && matches!(last, Level::Exact | Level::Similar);
    let person_phone = level(Field::Phone) == Level::Exact && !shared_line;
    let person_contact = email == Level::Exact || person_phone;
    // Full names need one more agreeing field that is not an area (city, locality, state): names
    // alone are a namesake as often as not.
    let backed = [
        Field::Email,
        Field::Phone,
        Field::CompanyKey,
        Field::EmailDomain,
        Field::Street,
        Field::PostalCode,
        Field::Street2,
    ]
    .into_iter()
    .any(positive);
    // Enough of a home for one agreeing name: one dwelling, or two of the street name, the
    // house number and the second line agreeing in the same area (postal code, locality or
    // city).
    let dwelling = one_dwelling
        || (area_agrees
            && ((street_agrees && (house == Level::Exact || line2_agrees)) || (line2_agrees && house == Level::Exact)));
    // A contact both records give and that differs tells two members of one household apart.
    let contact_conflict = matches!(email, Level::Different | Level::DifferentSameDomain | Level::SameLocalPart)
        || level(Field::Phone) == Level::Different;
    // At one home, one agreeing name is enough when the other is missing or was typed another
    // way: the address identifies the few people living there.
    let one_name_at_home =
        household && (agrees(first) || matches!(last, Level::Exact | Level::Similar)) && dwelling && !contact_conflict;
    let sufficient = person_contact || (names_agree && backed) || one_name_at_home;
    if !sufficient {
        rules.push(HardRule::InsufficientIdentity);
    }
    if names_agree
        && company == Level::Different
        && email != Level::Exact
        && ![Field::Phone, Field::Street, Field::EmailDomain].into_iter().any(positive)
    {
        rules.push(HardRule::NameOnlyDifferentCompany);
    }
    if first == Level::Different && email != Level::Exact && matches!(last, Level::Exact | Level::Similar) && same_org {
        rules.push(HardRule::RelativesAtCompany);
    }
    if email == Level::SharedMailbox && names_conflict && !person_phone {
        rules.push(HardRule::SharedMailboxDifferentNames);
    }

    MatchScore { score, parts, rules }
}

/// Whether a record names an organisation: a company, or a business email or website domain.
fn has_organisation(r: &Record) -> bool {
    present(&r.company_key).is_some() || business_domains(r).iter().any(Option::is_some)
}

#[cfg(test)]
mod tests {

    #[test]
    fn companies_whose_numbers_differ_are_different_companies() {
        let sim = Similarity::default();
        assert_eq!(company_level("company 123", "company 1234", &sim), Level::Different);
        assert_eq!(company_level("studio 54", "studio 57", &sim), Level::Different);
        assert_eq!(company_level("studio 54", "studio", &sim), Level::Different, "a number is part of the name");
        assert_eq!(company_level("acme labs", "acme lab", &sim), Level::Similar, "a typo without numbers still is");
        assert_eq!(company_level("7 eleven", "7eleven", &sim), Level::Exact);
    }

    use super::*;

    #[test]
    fn a_truncated_first_name_is_similar() {
        let sim = Similarity::default();
        assert_eq!(first_name_level("Kat", "Katherine", &sim), Level::Similar);
        assert_eq!(first_name_level("Valentina", "Vale", &sim), Level::Similar);
        // Two letters are an initial pair, not a short form; a different start is different.
        assert_eq!(first_name_level("Ka", "Katherine", &sim), Level::Different);
        assert_eq!(first_name_level("Kat", "Catherine", &sim), Level::Different);
    }

    #[test]
    fn an_unknown_name_one_edit_from_a_known_one_is_its_typo() {
        let sim = Similarity::default();
        assert_eq!(first_name_level("Jqdy", "Judy", &sim), Level::Similar);
        assert_eq!(first_name_level("Jim", "Jkm", &sim), Level::Similar);
        // Two names the table knows are two names.
        assert_eq!(first_name_level("Jon", "Jan", &sim), Level::Close);
        assert_eq!(first_name_level("Mary", "Mark", &sim), Level::Close);
    }

    #[test]
    fn a_personal_address_against_a_work_one_is_no_evidence() {
        let person = |email: &str, free: bool| Record {
            first_name: Some("Michael".into()),
            email: Some(email.into()),
            free_mail: free,
            ..Record::default()
        };
        let rules = EmailRules::default();
        let work = person("michael.dunmann@tidalsolutions.io", false);
        assert_eq!(email_level(&work, &person("mikey1984@yahoo.com", true), &rules), Level::NotComparable);
        assert_eq!(email_level(&work, &person("m.dunmann@othercorp.io", false), &rules), Level::Different);
        let home = person("michaeld@gmail.com", true);
        assert_eq!(email_level(&home, &person("mikey1984@yahoo.com", true), &rules), Level::Different);
    }

    #[test]
    fn a_surname_glued_to_a_longer_one_is_not_similar() {
        let sim = Similarity::default();
        assert_eq!(last_name_level("Black", "Blackson", &sim), Level::Close);
        assert_eq!(last_name_level("Johnson", "John", &sim), Level::Close);
        assert_eq!(last_name_level("Garcia", "Garcia Lopez", &sim), Level::Similar);
        assert_eq!(last_name_level("Smith-Jones", "Smith", &sim), Level::Similar);
        // One added letter is a typo.
        assert_eq!(last_name_level("Hall", "Halll", &sim), Level::Similar);
    }

    #[test]
    fn a_known_name_is_not_a_typo_of_a_nickname() {
        // "joan" is in Hannah's group (Johannah) and one edit from "john".
        assert!(!nickname_typo("hannah", "john"));
        assert!(!nickname_typo("margaret", "mary"));
        assert!(nickname_typo("billl", "william"));
        // ... but another spelling of the same nickname is.
        assert!(nickname_typo("kate", "kathleen"));
        assert!(nickname_typo("robbie", "robert"));
    }

    #[test]
    fn two_addresses_spelt_from_one_name_are_aliases() {
        let person = |first: &str, email: &str| Record {
            first_name: Some(first.into()),
            last_name: Some("Caldstone".into()),
            email: Some(email.into()),
            email_domain: Some("pixel.fr".into()),
            company_key: Some("pixel".into()),
            ..Record::default()
        };
        let a = person("Emily", "emily.caldstone@pixel.fr");
        assert!(aliases_of_one_name(&a, &person("Emily", "ecaldstone@pixel.fr")));
        assert!(aliases_of_one_name(&person("Jim", "james@pixel.fr"), &person("James", "james_caldstone@pixel.fr")));
        // Nothing spelt out in both: a Jon and a J. Caldstone, as far as the addresses go.
        assert!(!aliases_of_one_name(&person("Jon", "jon@pixel.fr"), &person("Jonathan", "jcaldstone@pixel.fr")));
        // A digit or a middle initial tells namesakes apart; so does another first name.
        assert!(!aliases_of_one_name(&a, &person("Emily", "emily.caldstone2@pixel.fr")));
        assert!(!aliases_of_one_name(&a, &person("Emily", "emily.r.caldstone@pixel.fr")));
        let model = Model::default();
        let ruled =
            |x: &Record, y: &Record| compare(x, y, &model).rules.contains(&HardRule::SameDomainDifferentMailbox);
        assert!(!ruled(&a, &person("Emily", "ecaldstone@pixel.fr")));
        assert!(ruled(&a, &person("Laura", "lcaldstone@pixel.fr")));
    }

    fn home(first: Option<&str>, last: &str, street: &str, street2: Option<&str>) -> Record {
        Record {
            first_name: first.map(Into::into),
            last_name: Some(last.into()),
            street: Some(street.into()),
            street2: street2.map(Into::into),
            city: Some("Canterbury".into()),
            postal_code: Some("2776".into()),
            state: Some("nsw".into()),
            ..Record::default()
        }
    }

    fn verdict(a: &Record, b: &Record) -> Verdict {
        let model = Model::default();
        decide(&compare(a, b, &model), model.thresholds())
    }

    #[test]
    fn an_address_only_duplicate_merges_with_typos_a_missing_name_or_swapped_names() {
        let a = home(Some("Deakin"), "Sondergeld", "48 Goldfinch Circuit", Some("Kooltuo"));
        // Typos in the surname and the street, the type abbreviated.
        assert_eq!(
            verdict(&a, &home(Some("Deakin"), "Sondergelt", "48 goldfinch cct", Some("Kooltuo"))),
            Verdict::Merge
        );
        // The first name missing: no evidence either way.
        assert_eq!(verdict(&a, &home(None, "Sondergeld", "48 Goldfinch Circuit", Some("Kooltuo"))), Verdict::Merge);
        // First and last name swapped.
        assert_eq!(
            verdict(&a, &home(Some("Sondergeld"), "Deakin", "48 Goldfinch Circuit", Some("Kooltuo"))),
            Verdict::Merge
        );
        // The address lines in the other order.
        assert_eq!(
            verdict(&a, &home(Some("Deakin"), "Sondergeld", "48 Kooltuo", Some("Goldfinch Circuit"))),
            Verdict::Merge
        );
        // Another house in the street is another household.
        assert_ne!(verdict(&a, &home(None, "Sondergeld", "231 Goldfinch Circuit", None)), Verdict::Merge);
    }

    #[test]
    fn a_name_written_in_the_other_field_agrees() {
        let a = home(Some("Lavis"), "Henry", "12 Ranken Place", Some("Rosebery Hill"));
        let b = home(Some("Jordan"), "Lavis", "12 Ranken Place", Some("Rosebery Hill"));
        let model = Model::default();
        let (ab, ba) = (compare(&a, &b, &model), compare(&b, &a, &model));
        assert_eq!(ab.part(Field::LastName).map(|e| e.level), Some(Level::Similar));
        assert_eq!(ab.score.to_bits(), ba.score.to_bits());
        assert_eq!(verdict(&a, &b), Verdict::Merge);
        // Elsewhere on the street it is a neighbour.
        assert_ne!(verdict(&a, &home(Some("Jordan"), "Lavis", "14 Ranken Place", None)), Verdict::Merge);
    }

    #[test]
    fn one_replaced_name_at_one_dwelling_merges_but_not_at_one_street() {
        let a = home(Some("Thomas"), "Petersen", "16 Couvreur Street", Some("Kimberley Park"));
        // The surname replaced, the first name kept, the whole address agreeing.
        assert_eq!(
            verdict(&a, &home(Some("Thomas"), "Tuckwell", "16 couvreur st", Some("Kimberley Park"))),
            Verdict::Merge
        );
        // The first name replaced, the surname misspelt.
        assert_eq!(
            verdict(&a, &home(Some("Ashley"), "Peterson", "16 Couvreur Street", Some("Kimberley Park"))),
            Verdict::Merge
        );
        // Without the house number, or at another unit, it is a street, not one dwelling.
        assert_ne!(verdict(&a, &home(Some("Thomas"), "Tuckwell", "Couvreur Street", None)), Verdict::Merge);
        assert_ne!(
            verdict(&a, &home(Some("Thomas"), "Tuckwell", "16 Couvreur Street", Some("Unit 4"))),
            Verdict::Merge
        );
        // Both names replaced: another person living there.
        assert_ne!(
            verdict(&a, &home(Some("Rosie"), "Reid", "16 Couvreur Street", Some("Kimberley Park"))),
            Verdict::Merge
        );
        // At an office the dwelling means nothing more than the site.
        let office = |first: &str, last: &str| Record {
            company_key: Some("acme".into()),
            ..home(Some(first), last, "16 Couvreur Street", Some("Kimberley Park"))
        };
        assert_ne!(verdict(&office("Thomas", "Petersen"), &office("Thomas", "Tuckwell")), Verdict::Merge);
    }

    #[test]
    fn a_street_moved_to_the_second_line_is_still_the_street() {
        // One form kept the street in its second line, the other has no second line.
        let a = home(Some("Jamesr"), "Potempa", "6 Max Henry Crescent", None);
        let b = home(Some("Oscar"), "Potempa", "6 Ponderossa", Some("Max Henry Crescent"));
        let model = Model::default();
        let score = compare(&a, &b, &model);
        assert_eq!(score.part(Field::Street).map(|e| e.level), Some(Level::Exact));
        assert_eq!(score.part(Field::HouseNumber).map(|e| e.level), Some(Level::Exact));
        assert_eq!(compare(&b, &a, &model).score.to_bits(), score.score.to_bits());
        assert_eq!(verdict(&a, &b), Verdict::Merge);
        // A second line that names another street is not that.
        let c = home(Some("Oscar"), "Potempa", "6 Ponderossa", Some("Henry Lawson Drive"));
        assert_ne!(verdict(&a, &c), Verdict::Merge);
        // Both lines swapped, one misspelt: the same levels whichever record comes first.
        let e = home(Some("Oscar"), "Potempa", "6 Ponderossa", Some("Max Henry Crescnt"));
        let f = home(Some("Oscar"), "Potempa", "6 Max Henry Crescent", Some("Ponderossa"));
        let levels = |x: &Record, y: &Record| compare(x, y, &model).parts.iter().map(|p| p.level).collect::<Vec<_>>();
        assert_eq!(levels(&e, &f), levels(&f, &e));
        assert_eq!(compare(&e, &f, &model).part(Field::Street).map(|p| p.level), Some(Level::Exact));
    }

    #[test]
    fn swapped_names_each_misspelt_agree() {
        let a = home(Some("Vanessa"), "Reid", "6 Battersby Circuit", Some("Ashleigh House"));
        let b = home(Some("Rwid"), "Vanesda", "6 Battersby Circuit", Some("Ashleigh House"));
        let model = Model::default();
        let score = compare(&a, &b, &model);
        assert_eq!(score.part(Field::FirstName).map(|e| e.level), Some(Level::Similar));
        assert_eq!(score.part(Field::LastName).map(|e| e.level), Some(Level::Close));
        assert_eq!(verdict(&a, &b), Verdict::Merge);
        // Both only close crosswise is two other names.
        let d = home(Some("Vanissa"), "Reid", "6 Battersby Circuit", Some("Ashleigh House"));
        let score = compare(&b, &d, &model);
        assert_eq!(score.part(Field::FirstName).map(|e| e.level), Some(Level::Different));
        assert_eq!(score.part(Field::LastName).map(|e| e.level), Some(Level::Different));
    }

    #[test]
    fn one_family_on_one_street_is_one_dwelling_when_a_number_is_left_out() {
        let a = home(Some("Tayulah"), "Stanley", "Bungonia Street", None);
        // The first name replaced, the surname kept, one record without a house number.
        assert_eq!(verdict(&a, &home(Some("Mitchell"), "Stanley", "10 Bungonia Street", None)), Verdict::Merge);
        // A number on both sides that differs is a neighbour.
        let b = home(Some("Tayulah"), "Stanley", "12 Bungonia Street", None);
        assert_ne!(verdict(&b, &home(Some("Mitchell"), "Stanley", "10 Bungonia Street", None)), Verdict::Merge);
        // Only the first name shared on a street is not enough: many people share one there.
        assert_ne!(verdict(&a, &home(Some("Tayulah"), "Donaldson", "10 Bungonia Street", None)), Verdict::Merge);
    }

    #[test]
    fn a_number_and_a_second_line_are_one_dwelling_without_the_street() {
        let a = home(Some("Kirr"), "Gaskin", "15", Some("Jodayne"));
        let b = home(Some("Kirra"), "Stubbs", "15 Dampier Crescent", Some("Jodayfne"));
        assert_eq!(verdict(&a, &b), Verdict::Merge);
        // Another number there is another home.
        assert_ne!(verdict(&home(Some("Kirr"), "Gaskin", "17", Some("Jodayne")), &b), Verdict::Merge);
    }

    #[test]
    fn colleagues_at_one_office_do_not_merge() {
        let office = |first: &str, last: &str| Record {
            company_key: Some("acme".into()),
            ..home(Some(first), last, "12 Main Street", Some("Suite 400"))
        };
        assert_eq!(verdict(&office("Laura", "Jones"), &office("Peter", "Jones")), Verdict::Distinct);
        assert_ne!(verdict(&office("Laura", "Jones"), &office("Laura", "Smith")), Verdict::Merge);
        assert_eq!(verdict(&office("Laura", "Jones"), &office("Mark", "Evans")), Verdict::Distinct);
        // At home, two people with their own differing phones are two people.
        let mut a = home(Some("Amelia"), "Ryan", "35 Sidaway Street", None);
        let mut b = home(Some("Edward"), "Ryan", "35 Sidaway Street", None);
        a.phone = Some("+61255501234".into());
        b.phone = Some("+61255509876".into());
        assert_ne!(verdict(&a, &b), Verdict::Merge);
    }

    #[test]
    fn placeholder_names_weigh_nothing() {
        let a = home(Some("Unknown"), "Sondergeld", "48 Goldfinch Circuit", Some("Kooltuo"));
        let b = home(Some("Test"), "Sondergeld", "48 Goldfinch Circuit", Some("Kooltuo"));
        let score = compare(&a, &b, &Model::default());
        assert_eq!(score.part(Field::FirstName).map(|e| e.level), Some(Level::Missing));
        let nobody = |first: &str, last: &str| Record {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            city: Some("Boston".into()),
            ..Record::default()
        };
        let (x, y) = (nobody("N/A", "-"), nobody("test", "test"));
        assert_eq!(compare(&x, &y, &Model::default()).part(Field::LastName).map(|e| e.level), Some(Level::Missing));
        assert_eq!(verdict(&x, &y), Verdict::Distinct);
        assert!(crate::matching::blocking_keys(&x).is_empty());
        assert!(crate::matching::blocking_keys(&nobody("Asdf", "Unknown")).is_empty());
    }

    #[test]
    fn a_role_mailbox_is_not_a_person() {
        let person = |first: &str, last: &str| Record {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some("info@pixel.fr".into()),
            email_domain: Some("pixel.fr".into()),
            company_key: Some("pixel".into()),
            ..Record::default()
        };
        let rules = EmailRules::default();
        let (anna, marc) = (person("Anna", "Kowalski"), person("Marc", "Dubois"));
        assert!(is_role_mailbox("Sales@Pixel.fr") && !is_role_mailbox("anna.kowalski@pixel.fr"));
        assert_eq!(exact_match(&anna, &marc, &rules), None);
        let score = compare(&anna, &marc, &Model::default());
        assert!(score.rules.contains(&HardRule::SharedMailboxDifferentNames), "{}", score.explain());
        assert_eq!(verdict(&anna, &marc), Verdict::Distinct);
        // The same person writing from it again merges on the names and the mailbox.
        assert_eq!(verdict(&anna, &person("Anna", "Kowalski")), Verdict::Merge);
    }

    #[test]
    fn company_word_breaks_do_not_matter() {
        let sim = Similarity::default();
        assert_eq!(company_level("horizon cobalt", "horizoncobalt", &sim), Level::Exact);
        assert_eq!(company_level("horizon cobalt", "horizon", &sim), Level::Similar);
    }
}
