//! The Fellegi-Sunter model: fields, comparison levels, m/u probabilities, weights, thresholds.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::matching::email::EmailRules;
use crate::matching::frequency::NameFrequencies;
use crate::matching::nicknames::NicknameGroups;

/// A compared field (plus the synthetic [`Field::Context`] used for the context cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    FirstName,
    LastName,
    Email,
    Phone,
    CompanyKey,
    /// Business email domain (and website domain); only compared when neither side is free-mail.
    EmailDomain,
    Street,
    PostalCode,
    City,
    /// House number of the street line (the street name is [`Field::Street`]).
    HouseNumber,
    /// Second address line (building, unit, property name).
    Street2,
    /// Suburb, district or neighbourhood (or, across the two shapes, a city naming it).
    Locality,
    /// State, province or region.
    State,
    /// Adjustment that caps the summed weight of the correlated organisation/location fields.
    Context,
}

impl Field {
    /// Number of variants.
    pub const COUNT: usize = 14;
    /// All variants, in declaration order.
    pub const ALL: [Field; Field::COUNT] = [
        Field::FirstName,
        Field::LastName,
        Field::Email,
        Field::Phone,
        Field::CompanyKey,
        Field::EmailDomain,
        Field::Street,
        Field::PostalCode,
        Field::City,
        Field::HouseNumber,
        Field::Street2,
        Field::Locality,
        Field::State,
        Field::Context,
    ];

    /// Organisation/location fields: colleagues (and a household) share them, so their sum is
    /// capped.
    pub fn is_context(self) -> bool {
        self.is_organisation() || self.is_address()
    }

    /// Fields naming an organisation.
    pub fn is_organisation(self) -> bool {
        matches!(self, Field::CompanyKey | Field::EmailDomain)
    }

    /// Fields of a postal address.
    pub fn is_address(self) -> bool {
        matches!(
            self,
            Field::Street
                | Field::HouseNumber
                | Field::Street2
                | Field::Locality
                | Field::PostalCode
                | Field::City
                | Field::State
        )
    }
}

/// Outcome of comparing one field of two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// Equal after folding (emails: equal match keys).
    Exact,
    /// First names equivalent through the nickname table.
    Nickname,
    /// Jaro-Winkler ≥ the "similar" threshold (typo-level difference).
    Similar,
    /// Jaro-Winkler ≥ the "close" threshold, or one edit apart: weak, possibly different.
    Close,
    /// One first name is an initial of the other.
    Initial,
    /// Emails: same personal local part at different domains (work → gmail).
    SameLocalPart,
    /// Emails: different addresses at the same business domain (usually two colleagues).
    DifferentSameDomain,
    /// Both present and disagree.
    Different,
    /// Present but not comparable (e.g. a free-mail domain): weight 0.
    NotComparable,
    /// Absent on at least one side: weight 0.
    Missing,
    /// [`Field::Context`] only: the context sum was capped/floored.
    Capped,
    /// Emails: the same role mailbox (`info@`, `sales@`, ...): shared by an organisation, so
    /// organisation evidence, not a person's.
    SharedMailbox,
}

impl Level {
    /// Number of variants.
    pub const COUNT: usize = 12;
}

/// m- and u-probability of one comparison level of one field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelProbability {
    pub field: Field,
    pub level: Level,
    /// P(level | records are the same person).
    pub m: f64,
    /// P(level | records are different people).
    pub u: f64,
}

impl LevelProbability {
    /// `log2(m / u)`; 0 when either probability is not a finite positive number.
    pub fn weight(&self) -> f64 {
        if self.m.is_finite() && self.u.is_finite() && self.m > 0.0 && self.u > 0.0 {
            (self.m / self.u).log2()
        } else {
            0.0
        }
    }
}

/// Score thresholds (in bits, i.e. log2 likelihood ratio).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Score ≥ this → [`Verdict::Merge`].
    pub auto_merge: f64,
    /// Score ≥ this (and below `auto_merge`) → [`Verdict::Review`]; below → [`Verdict::Distinct`].
    pub review: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { auto_merge: 16.0, review: 10.0 }
    }
}

/// Decision for a pair of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// Different people (or not enough evidence): keep as separate leads.
    Distinct,
    /// Possibly the same person: queue for a human.
    Review,
    /// Same person: merge automatically.
    Merge,
}

/// Jaro-Winkler thresholds for the fuzzy levels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// Names: JW ≥ this → [`Level::Similar`].
    pub name_similar: f64,
    /// Names: JW ≥ this (or Damerau-Levenshtein distance 1) → [`Level::Close`].
    pub name_close: f64,
    /// Company keys: JW ≥ this → [`Level::Similar`].
    pub company_similar: f64,
    /// Street names and second address lines: JW ≥ this → [`Level::Similar`].
    pub street_similar: f64,
    /// Cities and localities: JW ≥ this → [`Level::Similar`].
    pub city_similar: f64,
}

impl Default for Similarity {
    fn default() -> Self {
        Similarity {
            name_similar: 0.90,
            name_close: 0.85,
            company_similar: 0.92,
            street_similar: 0.90,
            city_similar: 0.92,
        }
    }
}

/// Everything configurable about matching; (de)serializable as a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    pub thresholds: Thresholds,
    pub email_rules: EmailRules,
    pub similarity: Similarity,
    /// m/u probabilities per (field, level); a missing entry weighs 0.
    pub probabilities: Vec<LevelProbability>,
    /// Upper bound (bits) of the summed positive weights of the context fields
    /// (company, email domain, street, postal code, city).
    pub context_cap: f64,
    /// Lower bound (bits, ≤ 0) of the summed negative weights of the context fields.
    pub context_floor: f64,
    /// Nickname groups added to the vendored table (`[matching] nicknames`): the names of one
    /// group are the same person's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nicknames: Vec<Vec<String>>,
    /// Upper bound (bits) of the context sum when neither record names an organisation
    /// (company, business domain): then the fields are one household's address, not an
    /// office many colleagues share.
    #[serde(default = "default_household_cap")]
    pub household_cap: f64,
    /// Upper bound (bits) of that household context sum when the two records name one
    /// *dwelling*: the same house number on an agreeing street in an agreeing postal code,
    /// locality or city, and no second line that differs. Two different people share a dwelling
    /// about as often as two leads are members of one household (about 2 in a table of N
    /// people, 2⁻¹⁹ at a million), far rarer than sharing a street or a postal code.
    #[serde(default = "default_dwelling_cap")]
    pub dwelling_cap: f64,
}

fn default_household_cap() -> f64 {
    16.0
}

fn default_dwelling_cap() -> f64 {
    20.0
}

impl Default for ModelParams {
    fn default() -> Self {
        use Field::*;
        use Level::*;
        let p = |field, level, m, u| LevelProbability { field, level, m, u };
        ModelParams {
            thresholds: Thresholds::default(),
            email_rules: EmailRules::default(),
            similarity: Similarity::default(),
            probabilities: vec![
                p(FirstName, Exact, 0.86, 0.012),
                p(FirstName, Nickname, 0.06, 0.0015),
                p(FirstName, Similar, 0.04, 0.004),
                p(FirstName, Close, 0.03, 0.02),
                p(FirstName, Initial, 0.01, 0.05),
                p(FirstName, Different, 0.015, 0.9125),
                p(LastName, Exact, 0.90, 0.002),
                p(LastName, Similar, 0.06, 0.003),
                p(LastName, Close, 0.02, 0.01),
                p(LastName, Different, 0.02, 0.985),
                p(Email, Exact, 0.55, 0.000_05),
                p(Email, SameLocalPart, 0.06, 0.001),
                p(Email, DifferentSameDomain, 0.03, 0.99),
                p(Email, Different, 0.35, 0.9997),
                p(Phone, Exact, 0.45, 0.000_05),
                p(Phone, Different, 0.35, 0.9996),
                p(CompanyKey, Exact, 0.80, 0.005),
                p(CompanyKey, Similar, 0.06, 0.004),
                p(CompanyKey, Different, 0.14, 0.9965),
                p(EmailDomain, Exact, 0.85, 0.005),
                p(EmailDomain, Different, 0.15, 0.9985),
                p(Email, SharedMailbox, 0.02, 0.0005),
                p(Street, Exact, 0.75, 0.002),
                p(Street, Similar, 0.13, 0.002),
                p(Street, Different, 0.12, 0.996),
                p(HouseNumber, Exact, 0.85, 0.03),
                p(HouseNumber, Close, 0.04, 0.02),
                p(HouseNumber, Different, 0.11, 0.95),
                p(Street2, Exact, 0.70, 0.001),
                p(Street2, Similar, 0.15, 0.002),
                p(Street2, Different, 0.15, 0.997),
                p(PostalCode, Exact, 0.80, 0.003),
                p(PostalCode, Close, 0.10, 0.02),
                p(PostalCode, Different, 0.10, 0.977),
                p(City, Exact, 0.85, 0.03),
                p(City, Similar, 0.07, 0.005),
                p(City, Different, 0.08, 0.965),
                p(Locality, Exact, 0.85, 0.01),
                p(Locality, Similar, 0.07, 0.002),
                p(Locality, Different, 0.08, 0.988),
                p(State, Exact, 0.90, 0.25),
                p(State, Different, 0.10, 0.75),
            ],
            context_cap: 10.0,
            context_floor: -6.0,
            nicknames: Vec::new(),
            household_cap: default_household_cap(),
            dwelling_cap: default_dwelling_cap(),
        }
    }
}

/// A ready-to-use model: parameters plus the precomputed weight table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ModelParams", into = "ModelParams")]
pub struct Model {
    params: ModelParams,
    weights: [[f64; Level::COUNT]; Field::COUNT],
    /// Optional value frequencies (not serialized: rebuild them from the table).
    frequencies: Option<Arc<NameFrequencies>>,
    /// `params.nicknames`, indexed; `None` when there are none.
    nicknames: Option<Arc<NicknameGroups>>,
}

impl Model {
    /// Builds the weight table `log2(m/u)` from the parameters.
    pub fn new(params: ModelParams) -> Model {
        let mut weights = [[0.0; Level::COUNT]; Field::COUNT];
        for lp in &params.probabilities {
            if let Some(row) = weights.get_mut(lp.field as usize)
                && let Some(cell) = row.get_mut(lp.level as usize)
            {
                *cell = lp.weight();
            }
        }
        let nicknames = (!params.nicknames.is_empty())
            .then(|| Arc::new(NicknameGroups::new(params.nicknames.iter().map(Vec::as_slice))));
        Model { params, weights, frequencies: None, nicknames }
    }

    /// The same model with term-frequency-adjusted name and company weights (see
    /// [`NameFrequencies`]). Frequencies are not part of the serialized [`ModelParams`].
    pub fn with_frequencies(mut self, frequencies: NameFrequencies) -> Model {
        self.frequencies = Some(Arc::new(frequencies));
        self
    }

    /// The same model with other parameters; the attached value frequencies stay.
    pub(crate) fn with_params(&self, params: ModelParams) -> Model {
        Model { frequencies: self.frequencies.clone(), ..Model::new(params) }
    }

    /// The configured nickname groups, if any (the vendored table is
    /// [`NicknameTable::global`](crate::matching::NicknameTable::global)).
    pub fn nickname_groups(&self) -> Option<&NicknameGroups> {
        self.nicknames.as_deref()
    }

    /// The attached value frequencies, if any.
    pub fn frequencies(&self) -> Option<&NameFrequencies> {
        self.frequencies.as_deref()
    }

    /// Weight (bits) of `level` for `field`; 0 for unknown combinations, `Missing` and `NotComparable`.
    pub fn weight(&self, field: Field, level: Level) -> f64 {
        self.weights.get(field as usize).and_then(|row| row.get(level as usize)).copied().unwrap_or(0.0)
    }

    pub fn params(&self) -> &ModelParams {
        &self.params
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.params.thresholds
    }

    pub fn email_rules(&self) -> &EmailRules {
        &self.params.email_rules
    }
}

impl Default for Model {
    fn default() -> Self {
        Model::new(ModelParams::default())
    }
}

impl From<ModelParams> for Model {
    fn from(params: ModelParams) -> Self {
        Model::new(params)
    }
}

impl From<Model> for ModelParams {
    fn from(model: Model) -> Self {
        model.params
    }
}
