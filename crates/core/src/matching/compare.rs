//! Pairwise comparison (Fellegi-Sunter scoring), exact rules, hard safety rules and decisions.

use serde::{Deserialize, Serialize};

use crate::matching::Record;
use crate::matching::email::{EmailRules, email_match_key, is_role_local_part, split_email};
use crate::matching::model::{Field, Level, Model, Similarity, Thresholds, Verdict};
use crate::matching::nicknames::NicknameTable;
use crate::matching::text::{fold_name, fold_postal, fold_street, fold_words, house_number, present};

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
}

impl HardRule {
    /// Highest verdict allowed while this rule fires.
    pub fn ceiling(self) -> Verdict {
        match self {
            HardRule::SameDomainDifferentMailbox | HardRule::InsufficientIdentity => Verdict::Review,
            HardRule::NameOnlyDifferentCompany | HardRule::RelativesAtCompany => Verdict::Distinct,
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
pub fn exact_match(a: &Record, b: &Record, rules: &EmailRules) -> Option<ExactRule> {
    if let (Some(x), Some(y)) = (present(&a.email), present(&b.email))
        && email_match_key(x, rules) == email_match_key(y, rules)
    {
        return Some(ExactRule::Email);
    }
    match (phone_of(a), phone_of(b)) {
        (Some(x), Some(y)) if x == y => Some(ExactRule::Phone),
        _ => None,
    }
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
    let s = jw(&a, &b);
    if s >= sim.name_similar {
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
    if s >= sim.name_similar {
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
        return Level::Exact;
    }
    let (Some((lx, dx)), Some((ly, dy))) = (split_email(&kx), split_email(&ky)) else {
        return Level::Different;
    };
    if lx == ly && dx != dy && (a.free_mail || b.free_mail) && lx.len() >= 4 && !is_role_local_part(lx) {
        Level::SameLocalPart
    } else if dx == dy && !a.free_mail && !b.free_mail {
        Level::DifferentSameDomain
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
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    let word_prefix =
        long.starts_with(short.as_str()) && long.as_bytes().get(short.len()) == Some(&b' ') && short.len() >= 3;
    if word_prefix || jw(&a, &b) >= sim.company_similar { Level::Similar } else { Level::Different }
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

fn street_level(a: &str, b: &str, sim: &Similarity) -> Level {
    let (a, b) = (fold_street(a), fold_street(b));
    if a.is_empty() || b.is_empty() {
        return Level::Missing;
    }
    if a == b {
        return Level::Exact;
    }
    if let (Some(x), Some(y)) = (house_number(&a), house_number(&b))
        && x != y
    {
        return Level::Different;
    }
    if jw(&a, &b) >= sim.street_similar { Level::Similar } else { Level::Different }
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
    if x == y && !countries_differ { Level::Exact } else { Level::Different }
}

fn city_level(a: &str, b: &str, sim: &Similarity) -> Level {
    let (a, b) = (fold_words(a), fold_words(b));
    if a.is_empty() || b.is_empty() {
        return Level::Missing;
    }
    if a == b {
        Level::Exact
    } else if jw(&a, &b) >= sim.city_similar {
        Level::Similar
    } else {
        Level::Different
    }
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
    let levels = [
        (Field::FirstName, both(&a.first_name, &b.first_name, |x, y| first_name_level(x, y, sim))),
        (Field::LastName, both(&a.last_name, &b.last_name, |x, y| last_name_level(x, y, sim))),
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
        (Field::Street, both(&a.street, &b.street, |x, y| street_level(x, y, sim))),
        (Field::PostalCode, postal_level(a, b)),
        (Field::City, both(&a.city, &b.city, |x, y| city_level(x, y, sim))),
    ];

    // A phone number shared within one organisation may be its switchboard: then it is
    // organisation evidence and joins the capped context group.
    // ... unless the first names agree and the last names do not conflict: two different people
    // with the same first name behind one switchboard are rare.
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
        && let (Some(x), Some(y)) = (present(&a.first_name), present(&b.first_name))
        && nickname_typo(&fold_name(x), &fold_name(y))
    {
        levels[0].1 = Level::Similar;
    }
    // Term-frequency adjustments (bits) per field, when the model has value frequencies.
    let mut tf = [0.0f64; Field::COUNT];
    if let Some(freq) = model.frequencies() {
        use crate::matching::frequency::FrequencyField as F;
        if let (Level::Exact | Level::Nickname, Some(x), Some(y)) =
            (levels[0].1, present(&a.first_name), present(&b.first_name))
        {
            let (x, y) = (fold_name(x), fold_name(y));
            tf[Field::FirstName as usize] = freq.adjustment(F::FirstName, &x).min(freq.adjustment(F::FirstName, &y));
        }
        if levels[1].1 == Level::Exact
            && let Some(x) = present(&a.last_name)
        {
            let last = fold_name(x);
            tf[Field::LastName as usize] = freq.adjustment(F::LastName, &last);
            if levels[0].1 == Level::Exact
                && let Some(f) = present(&a.first_name)
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
    let same_org = matches!(levels[4].1, Level::Exact | Level::Similar) || levels[5].1 == Level::Exact;
    let names_conflict = !matches!(levels[0].1, Level::Exact | Level::Nickname | Level::Similar)
        || !matches!(levels[1].1, Level::Exact | Level::Similar | Level::Missing);
    let shared_line = same_org && names_conflict;
    let mut parts = Vec::with_capacity(levels.len() + 1);
    let (mut person, mut ctx_pos, mut ctx_neg) = (0.0, 0.0, 0.0);
    for (field, level) in levels {
        let weight = model.weight(field, level) + tf[field as usize];
        if field.is_context() || (field == Field::Phone && level == Level::Exact && shared_line) {
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
    let params = model.params();
    let mut adjustment = 0.0;
    // With value frequencies, an agreeing company bounds the context: its fields add at most
    // `site_bonus` bits beyond the (frequency-adjusted) company weight, so a very large
    // organisation (where colleagues share everything) counts for little.
    let mut cap = params.context_cap.max(0.0);
    if model.frequencies().is_some() && levels[4].1 == Level::Exact {
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

    let level = |f: Field| levels.iter().find(|(g, _)| *g == f).map(|(_, l)| *l);
    let first = level(Field::FirstName);
    let last = level(Field::LastName);
    let email = level(Field::Email);
    let company = level(Field::CompanyKey);
    let positive = |f: Field| model.weight(f, level(f).unwrap_or(Level::Missing)) > 0.0;

    let mut rules = Vec::new();
    if email == Some(Level::DifferentSameDomain)
        && !(matches!(first, Some(Level::Exact | Level::Nickname))
            && last == Some(Level::Exact)
            && aliases_of_one_name(a, b))
    {
        rules.push(HardRule::SameDomainDifferentMailbox);
    }
    let names_agree = matches!(first, Some(Level::Exact | Level::Nickname | Level::Similar))
        && matches!(last, Some(Level::Exact | Level::Similar));
    let person_phone = level(Field::Phone) == Some(Level::Exact) && !shared_line;
    // Names alone (nothing else but possibly the city agrees) are a namesake as often as not.
    let names_only =
        ![Field::Email, Field::Phone, Field::CompanyKey, Field::EmailDomain, Field::Street, Field::PostalCode]
            .into_iter()
            .any(positive);
    if (!names_agree || names_only) && email != Some(Level::Exact) && !person_phone {
        rules.push(HardRule::InsufficientIdentity);
    }
    if names_agree
        && company == Some(Level::Different)
        && email != Some(Level::Exact)
        && ![Field::Phone, Field::Street, Field::EmailDomain].into_iter().any(positive)
    {
        rules.push(HardRule::NameOnlyDifferentCompany);
    }
    if first == Some(Level::Different)
        && email != Some(Level::Exact)
        && matches!(last, Some(Level::Exact | Level::Similar))
        && same_org
    {
        rules.push(HardRule::RelativesAtCompany);
    }

    MatchScore { score, parts, rules }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn company_word_breaks_do_not_matter() {
        let sim = Similarity::default();
        assert_eq!(company_level("horizon cobalt", "horizoncobalt", &sim), Level::Exact);
        assert_eq!(company_level("horizon cobalt", "horizon", &sim), Level::Similar);
    }
}
