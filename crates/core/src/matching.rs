//! Lead matching for leadflow: one person must be one lead.
//!
//! Pipeline: [`blocking_keys`] (index / look up candidates) → [`compare`] (Fellegi-Sunter score
//! with per-field [`Evidence`]) → [`decide`] ([`Verdict::Merge`] / `Review` / `Distinct`, with the
//! [`HardRule`] ceilings). [`exact_match`] and [`email_match_key`] are the exact rules.
//!
//! # Model (defaults in [`ModelParams::default`])
//!
//! Each field is compared into a level; a level weighs `log2(m/u)` bits, where `m` = P(level | same
//! person) and `u` = P(level | different people). Missing / not comparable weigh 0. The m/u values
//! are hand-set estimates (not EM-fitted), then checked against the labelled synthetic set
//! (`tests/evaluation.rs`, `examples/evaluate.rs`):
//!
//! | field | level | m | u | weight |
//! | --- | --- | --- | --- | --- |
//! | FirstName | Exact | 0.86 | 0.012 | +6.16 |
//! | FirstName | Nickname (vendored table) | 0.06 | 0.0015 | +5.32 |
//! | FirstName | Similar (JW ≥ 0.90) | 0.04 | 0.004 | +3.32 |
//! | FirstName | Close (JW ≥ 0.85 or 1 edit) | 0.03 | 0.02 | +0.58 |
//! | FirstName | Initial | 0.01 | 0.05 | −2.32 |
//! | FirstName | Different | 0.015 | 0.9125 | −5.93 |
//! | LastName | Exact | 0.9 | 0.002 | +8.81 |
//! | LastName | Similar (JW ≥ 0.90) | 0.06 | 0.003 | +4.32 |
//! | LastName | Close (JW ≥ 0.85, 1 edit, or containment) | 0.02 | 0.01 | +1.00 |
//! | LastName | Different | 0.02 | 0.985 | −5.62 |
//! | Email | Exact (equal match keys) | 0.55 | 0.00005 | +13.43 |
//! | Email | SameLocalPart (one side free-mail) | 0.06 | 0.001 | +5.91 |
//! | Email | DifferentSameDomain (conditional on the domain already counted) | 0.03 | 0.99 | −5.04 |
//! | Email | Different | 0.35 | 0.9997 | −1.51 |
//! | Email | NotComparable (a free-mail address against a business one) | — | — | 0 |
//! | Phone | Exact | 0.45 | 0.00005 | +13.14 |
//! | Phone | Different | 0.35 | 0.9996 | −1.51 |
//! | CompanyKey | Exact (or key = other side's domain label) | 0.8 | 0.005 | +7.32 |
//! | CompanyKey | Similar (JW ≥ 0.92 or word prefix) | 0.06 | 0.004 | +3.91 |
//! | CompanyKey | Different | 0.14 | 0.9965 | −2.83 |
//! | EmailDomain | Exact (business email/website domains intersect) | 0.85 | 0.005 | +7.41 |
//! | EmailDomain | Different | 0.15 | 0.9985 | −2.73 |
//! | Email | SharedMailbox (the same role mailbox; organisation evidence) | 0.02 | 0.0005 | +5.32 |
//! | Street | Exact (street name, words joined, type folded) | 0.75 | 0.002 | +8.55 |
//! | Street | Similar (JW ≥ 0.90 or a typo apart) | 0.13 | 0.002 | +6.02 |
//! | Street | Different | 0.12 | 0.996 | −3.05 |
//! | HouseNumber | Exact | 0.85 | 0.03 | +4.82 |
//! | HouseNumber | Close (one digit off or two swapped) | 0.04 | 0.02 | +1.00 |
//! | HouseNumber | Different | 0.11 | 0.95 | −3.11 |
//! | Street2 | Exact | 0.7 | 0.001 | +9.45 |
//! | Street2 | Similar (JW ≥ 0.90 or a typo apart) | 0.15 | 0.002 | +6.23 |
//! | Street2 | Different | 0.15 | 0.997 | −2.73 |
//! | PostalCode | Exact (same country) | 0.8 | 0.003 | +8.06 |
//! | PostalCode | Close (one character off or two swapped, ≥ 4 characters) | 0.1 | 0.02 | +2.32 |
//! | PostalCode | Different | 0.1 | 0.977 | −3.29 |
//! | City | Exact | 0.85 | 0.03 | +4.82 |
//! | City | Similar (JW ≥ 0.92 or a typo apart) | 0.07 | 0.005 | +3.81 |
//! | City | Different | 0.08 | 0.965 | −3.59 |
//! | Locality | Exact (or a city naming the other's locality) | 0.85 | 0.01 | +6.41 |
//! | Locality | Similar | 0.07 | 0.002 | +5.13 |
//! | Locality | Different (locality against locality only) | 0.08 | 0.988 | −3.63 |
//! | State | Exact | 0.9 | 0.25 | +1.85 |
//! | State | Different | 0.1 | 0.75 | −2.91 |
//!
//! Why: names and contacts identify a *person*; company, domain, street, postal code and city
//! identify an *organisation/site* that colleagues share. Fellegi-Sunter assumes independent
//! fields, which is badly false for the organisation fields (same company ⇒ same domain, street,
//! postal code, city), so their positive sum is **capped at +10 bits** and their negative sum
//! **floored at −6** (an [`Evidence`] with [`Field::Context`] / [`Level::Capped`] shows the
//! adjustment). When **neither record names an organisation** (no company, no business email or
//! website domain) the address is a home, not an office, and the cap is
//! [`ModelParams::household_cap`] (**+16 bits**): an agreeing full address plus agreeing names is
//! then enough to merge, while colleagues at one office stay under the +10 cap and the
//! organisation rules below. When the two homes are one **dwelling** — the same house number on
//! an agreeing street (or on an agreeing second line where one record gives only the number) in
//! an agreeing postal code, locality or city, and no second line (unit, building) that differs;
//! or, where one record gives no house number, an agreeing street and an agreeing surname — the
//! cap is [`ModelParams::dwelling_cap`] (**+20 bits**): different
//! people share a dwelling about as often as two leads belong to one household (about 2 in N for
//! a table of N people, 2⁻¹⁹ at a million), so one agreeing name there outweighs one replaced
//! or misspelt beyond recognition. The minimum-evidence rule below still holds: both names
//! different, or a differing email or phone, never merge on the address. A phone shared by two records of one organisation whose names conflict is treated
//! as a switchboard and joins that capped group. Email "different address at the same business
//! domain" is scored conditionally on the domain evidence, hence negative. A free-mail address
//! against a business one is not compared (`NotComparable`, 0): most people have both, and two
//! different addresses of different kinds say nothing about whether the records are one person
//! (the `Different` weight assumes addresses that could have been equal).
//!
//! Name levels beyond Jaro-Winkler (each rule a property of names, not of one data set):
//! * a first name of at least 3 letters that the other starts with is a truncated short form
//!   ("Kat" / Katherine, "Vale" / Valentina, "Max" / Maximilian): `Similar`. Truncation is the
//!   commonest way nicknames are made and the table cannot list them all; it weighs like a typo,
//!   not like a table nickname, because a masculine name inside a feminine one (Max / Maxine) is a
//!   relative as often as a nickname;
//! * first names that are `Different` but where one is a misspelling of a nickname-equivalent of
//!   the other ("Billl" / William; both at least 4 letters) are scored `Similar` when the last
//!   names agree. The misspelt side must be a name the table does not know ("Mary" is one edit
//!   from Margaret's "Marg", "John" from Hannah's "Joan": real, different names), unless the two
//!   differ only in the diminutive ending (-ie/-y/-i/-ey/-e: Robbie / Robby, Terri / Terry);
//! * a first name the nickname table does not know one edit from one it does ("Jqdy" / Judy,
//!   "Jkm" / Jim) is that name misspelt: `Similar`. Two names the table knows one edit apart
//!   ("Jon" / Jan, "Mary" / Mark) stay `Close`: they are two names;
//! * a surname that is the start of the other with two or more letters glued on is another surname
//!   ("John" / "Johnson", "Black" / "Blackson"): `Close`, not `Similar` (a typo adds one letter).
//!   A second surname in its own word ("Garcia" / "Garcia Lopez", "Smith" / "Smith-Jones") keeps
//!   its Jaro-Winkler level;
//! * company keys that differ only in word breaks are `Exact` ("horizon cobalt" / "horizoncobalt");
//! * a typo anywhere, the first letter included: a surname of at least 5 letters one edit away (two
//!   at 8 letters) and a first name of at least 6 letters one edit away are `Similar`, whatever
//!   Jaro-Winkler (which favours a shared start) says;
//! * first and last name swapped: when neither agrees as given and both agree crosswise (one of
//!   them may be only `Close`: swapped and each misspelt, "Vanessa Reid" / "Rwid Vanesda"), the
//!   crosswise levels count, an exact one as `Similar`; when only one name is equal crosswise
//!   (written in the other field, "Lavis Henry" / "Jordan Lavis"), the last name is `Similar`
//!   and the first names are compared as given;
//! * a missing name is no evidence, never a disagreement; so is a **placeholder** ("Unknown",
//!   "Test", "N/A", "-", "none", "null", "x", "asdf", "?", "first", "last", …), which also makes
//!   no blocking keys.
//!
//! Address levels: the street line is split into its house number and its street name (words
//! joined, so a lost or typed word break does not matter; St/Street, Rd/Road, Ave/Avenue,
//! Dr/Drive, Pl/Place, Cres/Crescent, Cct/Circuit, Ct/Court, Ln/Lane, Hwy/Highway, Pde/Parade,
//! Tce/Terrace, Blvd/Boulevard, … folded; the last word of a name of two or more words one typo
//! from a street type written in full, "Medley Xtreet", "Yampi Plvace", is that type). When neither the street nor the second line agrees
//! as given but both agree crosswise, the two lines were swapped and the crosswise levels count;
//! so they do when one record has no second line and its street name is the other's second line
//! (a form that moved the street there: "6 Ponderossa" / "Max Henry Crescent" against "6 Max
//! Henry Crescent").
//! A locality is compared with a locality, or with the other's city when that is all it has (one
//! source maps a suburb to the city): there a mismatch is no evidence.
//!
//! **Role mailboxes** (`info@`, `sales@`, `contact@`, `hello@`, `admin@`, `support@`, `office@`,
//! `marketing@`, `team@`, `noreply@`, …; [`is_role_mailbox`]) belong to an organisation: an equal
//! one is not the exact-email rule ([`exact_match`] and `resolve::decide`), it weighs
//! `SharedMailbox` in the capped organisation group, and with names that do not agree it is
//! [`HardRule::SharedMailboxDifferentNames`] (Distinct).
//!
//! **Term-frequency adjustment** (optional, [`Model::with_frequencies`] + [`NameFrequencies`]
//! counted over the store's table): an `Exact`/`Nickname` first name, an `Exact` last name and an
//! `Exact` company gain `log2(Σf² / f_value)` bits, clamped to [−5, +2]; an exact full name that is
//! more common than its first and last names predict ("Michael Johnson") loses
//! `log2(f_first·f_last / f_full)` more; and an agreeing company bounds the whole context sum to
//! its own adjusted weight + 1 bit, so namesakes at a very large company are not merged on
//! name + company alone. Without frequencies the fixed weights above apply (as before).
//!
//! Thresholds ([`Thresholds::default`]): **Merge ≥ 16 bits, Review ≥ 10, else Distinct**. From
//! the threshold sweep over record pairs (frequencies attached, 0.5-bit grid): the highest-recall
//! point with pairwise precision ≥ 0.99 at 20,000 entities is 13.5 (0.9900), but at 50,000
//! entities 14.0 already falls to 0.9875 / 0.9859 (seeds 7 / 11: namesake density grows with the
//! table). 15.5 holds by about 0.001 (0.9912 / 0.9916); 16.0 is kept (0.9922 / 0.9928 over record
//! pairs, 0.9942 / 0.9944 over the final leads) and was not re-tuned; see `BENCHMARKS.md`.
//!
//! Hard rules ([`HardRule`], applied by [`decide`] as ceilings):
//! * `SameDomainDifferentMailbox` — different emails at one non-free-mail domain → at most Review
//!   (the issue asks this for different first names; applied to all, two mailboxes at one company
//!   are usually two colleagues), **except** when the first names agree exactly or as nicknames,
//!   the last names exactly, and both local parts are spelt from those names alone and spell out
//!   the same part in full (`emily.caldstone@` / `ecaldstone@`, `james@` / `james.salazar@`): one
//!   person's alias or an address-pattern change. Colleagues sharing a full name get addresses
//!   that tell them apart (a digit, a middle initial), which are not spelt from the names and keep
//!   the ceiling; `jon@` / `jsmith@` keeps it too (it could be a Jon and a J. Smith). The email
//!   still weighs `DifferentSameDomain`, so a common name at a large company stays in Review
//!   through the frequency adjustment;
//! * `NameOnlyDifferentCompany` — names agree, companies differ, no email/phone/street/domain
//!   agreement → Distinct;
//! * `RelativesAtCompany` — same last name, same company (or business domain), first names
//!   `Different` (not nickname-equivalent, not a typo) and no exact email → Distinct;
//! * `InsufficientIdentity` (the **minimum evidence** for a merge) — none of: an exact personal
//!   email or a person-level phone; first and last names agreeing plus one agreeing field that is
//!   not an area (email, phone, company, business domain, street name, postal code, second line:
//!   city, locality and state are areas); or, when neither record names an organisation, one
//!   agreeing name (the other missing or different) at one **dwelling** (as for the cap above,
//!   or two of street name, house number and second line agreeing) in an agreeing postal code,
//!   locality or city, with no email or phone that differs. → at most Review. A badge scan with a last name, or a last name
//!   and a city, never merges; first name + company, or a full name alone, is a colleague or a
//!   namesake as often as not;
//! * `SharedMailboxDifferentNames` — the same role mailbox, names not agreeing → Distinct.
//!
//! # Training
//!
//! [`train`] learns the m/u values from a store's own leads instead (`train.rs`: u from random
//! pairs, m by expectation-maximisation over the blocked candidate pairs with u fixed, as Splink
//! does; too-rare levels and out-of-order fields keep the hand-set values), and
//! [`Model::with_trained`] applies the result, which combines with [`Model::with_frequencies`].
//! Thresholds and hard rules stay as configured. Configured nickname groups
//! (`[matching] nicknames`, [`NicknameGroups`]) are carried in [`ModelParams::nicknames`].
//!
//! # Evaluation
//!
//! `tests/evaluation.rs` and `examples/evaluate.rs` measure two things on a labelled synthetic set
//! (`tests/support/generator.rs`): *record pairs* (each record against the earlier records sharing
//! a key) and the *leads capture ends with* (`tests/support/clusters.rs`: each submission against
//! the stored leads, one merged record per lead with the default `keep_existing` survivorship and
//! keys rewritten after every merge, the store's stop-key and candidate limits, exact email first;
//! then pairwise precision/recall over the final leads, every pair inside one lead a predicted
//! match). The second is what users see and what the target is checked on; figures and
//! commands are in `BENCHMARKS.md`.
//!
//! FEBRL data sets 1 and 2 shaped as leads (`tests/matching/febrl.rs`, `examples/matching_febrl.rs`,
//! `data/matching/febrl/PROVENANCE.md`) measure address-only people: no email, phone or company.
//!
//! Known limits: one agreeing name at one dwelling merges, so two members of one household who
//! share a surname, give no email or phone that differs and whose first names differ are merged
//! (an address list cannot tell them apart either), and so are two with one first name and
//! different surnames; so are two of one surname on one street when one gives no house number
//! (a relative living elsewhere in the street is rarer than one household). At one street where
//! the house numbers differ, or with only a first name agreeing and a number left out, one
//! agreeing name stays in review (a neighbour), and so do two records of which no name agrees
//! at one address, which is most of what FEBRL recall still lacks. Without a [`NameFrequencies`] table, two people with a common name at one large
//! company and no conflicting contact data are merged — capture attaches none today, and its
//! lead-level precision measured with fixed weights is 0.9901 at 20k entities and 0.9881 at 50k,
//! below the target (with frequencies: 0.9974 / 0.9942). Job changes without a shared contact are
//! (deliberately) kept apart. A lead is matched through its merged record only: once a person is
//! split over two leads (a submission no field could tie to the first), a later submission that
//! matches both joins one of them and the pairs with the other are lost — the largest remaining
//! loss at the lead level.

mod blocking;
mod compare;
mod email;
mod frequency;
mod model;
mod nicknames;
mod text;
pub mod train;

use serde::{Deserialize, Serialize};

pub use blocking::{CandidateIndex, blocking_keys, blocking_keys_with};
pub use compare::{
    Evidence, ExactRule, HardRule, MatchScore, compare, decide, decide_score, exact_match, is_role_mailbox,
};
pub use email::{EmailRules, ProviderRule, email_match_key};
pub use frequency::{FrequencyField, NameFrequencies};
pub use model::{Field, Level, LevelProbability, Model, ModelParams, Similarity, Thresholds, Verdict};
pub use nicknames::{NicknameGroups, NicknameTable};
pub use train::{Origin, PassReport, TrainOptions, TrainReport, Trained, TrainedLevel, train};

/// A lead as it reaches matching. Every field is optional and already normalized upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    /// Title-cased first name.
    pub first_name: Option<String>,
    /// Title-cased last name.
    pub last_name: Option<String>,
    /// Lowercased email address.
    pub email: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Company match key: lowercase, legal suffixes removed (`"acme"`).
    pub company_key: Option<String>,
    /// Domain of `email`.
    pub email_domain: Option<String>,
    /// Company website domain.
    pub website_domain: Option<String>,
    /// The email domain is free-mail or disposable.
    pub free_mail: bool,
    /// Street line.
    pub street: Option<String>,
    /// Second address line (building, unit, property name).
    #[serde(default)]
    pub street2: Option<String>,
    /// Locality: suburb, district or neighbourhood.
    #[serde(default)]
    pub locality: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// State, province or region.
    #[serde(default)]
    pub state: Option<String>,
    /// Country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
}
