//! Controlled-value picklists with synonyms.

use std::collections::HashMap;
use std::fmt;

use crate::normalize::text::push_folded;

/// A set of controlled values, each reachable through its own spelling and a
/// list of synonyms. Matching is exact on a *folded key*: lower case, Latin
/// diacritics folded, `&`/`+` read as "and", and every character that is not a
/// letter or digit (spaces, punctuation) removed. So "Health-care",
/// "HEALTH CARE" and "healthcare" are the same key. There is no fuzzy
/// matching: an unknown spelling returns `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picklist {
    values: Vec<String>,
    index: HashMap<String, usize>,
}

/// Why a [`Picklist`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PicklistError {
    /// A value or synonym has no letter or digit, so it has no key.
    EmptyKey {
        /// The value the offending spelling belongs to.
        value: String,
        /// The offending spelling.
        spelling: String,
    },
    /// Two different values claim the same folded key.
    Conflict {
        /// The folded key.
        key: String,
        /// The value that claimed it first.
        first: String,
        /// The value that claimed it second.
        second: String,
    },
}

impl fmt::Display for PicklistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyKey { value, spelling } => {
                write!(f, "picklist value {value:?}: spelling {spelling:?} has no letters or digits")
            }
            Self::Conflict { key, first, second } => {
                write!(f, "picklist key {key:?} maps to both {first:?} and {second:?}")
            }
        }
    }
}

impl std::error::Error for PicklistError {}

/// Folded matching key (see [`Picklist`]).
pub(crate) fn picklist_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '&' || c == '+' {
            out.push_str("and");
        } else if c.is_alphanumeric() {
            let start = out.len();
            push_folded(c, &mut out);
            // Folding may yield non-alphanumerics (combining marks): drop them.
            if !out[start..].chars().all(char::is_alphanumeric) {
                let kept: String = out[start..].chars().filter(|c| c.is_alphanumeric()).collect();
                out.truncate(start);
                out.push_str(&kept);
            }
        }
    }
    out
}

impl Picklist {
    /// Build a picklist from `(value, synonyms)` pairs. Each value also
    /// matches itself. The same key listed twice for one value is fine; a key
    /// shared by two different values, or a spelling without letters/digits,
    /// is an error.
    ///
    /// ```
    /// use leadflow_core::normalize::Picklist;
    /// let sizes = Picklist::new([
    ///     ("1-10", vec!["micro", "1 to 10"]),
    ///     ("11-50", vec!["small"]),
    /// ])
    /// .unwrap();
    /// assert_eq!(sizes.match_value(" Micro "), Some("1-10"));
    /// assert_eq!(sizes.match_value("1 to 10"), Some("1-10"));
    /// assert_eq!(sizes.match_value("tiny"), None);
    /// ```
    pub fn new<I, V, S>(entries: I) -> Result<Self, PicklistError>
    where
        I: IntoIterator<Item = (V, S)>,
        V: Into<String>,
        S: IntoIterator,
        S::Item: AsRef<str>,
    {
        let mut list = Self::default();
        for (value, synonyms) in entries {
            let value: String = value.into();
            let idx = list.values.len();
            list.values.push(value.clone());
            list.insert(idx, &value, &value)?;
            for syn in synonyms {
                list.insert(idx, &value, syn.as_ref())?;
            }
        }
        Ok(list)
    }

    fn insert(&mut self, idx: usize, value: &str, spelling: &str) -> Result<(), PicklistError> {
        let key = picklist_key(spelling);
        if key.is_empty() {
            return Err(PicklistError::EmptyKey { value: value.to_owned(), spelling: spelling.to_owned() });
        }
        match self.index.get(&key) {
            Some(&other) if other != idx => Err(PicklistError::Conflict {
                first: self.values.get(other).cloned().unwrap_or_default(),
                second: value.to_owned(),
                key,
            }),
            Some(_) => Ok(()),
            None => {
                self.index.insert(key, idx);
                Ok(())
            }
        }
    }

    /// The controlled value `raw` stands for, if any.
    pub fn match_value(&self, raw: &str) -> Option<&str> {
        let key = picklist_key(raw);
        if key.is_empty() {
            return None;
        }
        self.index.get(&key).and_then(|&i| self.values.get(i)).map(String::as_str)
    }

    /// The controlled values, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }

    /// Number of controlled values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` when there are no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The built-in industry table used by [`default_industries`]: `(value,
/// synonyms)`.
pub const DEFAULT_INDUSTRIES: &[(&str, &[&str])] = &[
    (
        "Technology",
        &[
            "Tech",
            "IT",
            "Information Technology",
            "Information Technology and Services",
            "IT Services",
            "Software",
            "Computer Software",
            "SaaS",
            "Internet",
            "Computer Hardware",
            "Hardware",
            "Electronics",
            "Semiconductors",
            "Cloud",
            "Cybersecurity",
            "Computer & Network Security",
            "High Tech",
        ],
    ),
    (
        "Financial Services",
        &[
            "Finance",
            "Financial",
            "Banking",
            "Bank",
            "FinTech",
            "Investment Banking",
            "Investment Management",
            "Asset Management",
            "Capital Markets",
            "Venture Capital",
            "Private Equity",
            "Accounting",
        ],
    ),
    ("Insurance", &["InsurTech", "Insurer", "Reinsurance"]),
    (
        "Healthcare",
        &[
            "Health Care",
            "Health",
            "Medical",
            "Hospital",
            "Hospitals",
            "Hospital & Health Care",
            "HealthTech",
            "Medical Devices",
            "Health, Wellness and Fitness",
        ],
    ),
    (
        "Pharmaceuticals & Biotech",
        &[
            "Pharmaceuticals",
            "Pharmaceutical",
            "Pharma",
            "Biotech",
            "Biotechnology",
            "Life Sciences",
            "Pharma & Biotech",
        ],
    ),
    (
        "Manufacturing",
        &[
            "Industrial",
            "Industrials",
            "Industrial Manufacturing",
            "Machinery",
            "Automotive",
            "Aerospace",
            "Aerospace & Defense",
            "Chemicals",
        ],
    ),
    ("Retail", &["E-commerce", "Ecommerce", "Consumer Goods", "CPG", "Wholesale", "Retailer"]),
    (
        "Education",
        &[
            "EdTech",
            "Higher Education",
            "Education Management",
            "E-Learning",
            "K-12",
            "Primary/Secondary Education",
            "University",
            "Schools",
        ],
    ),
    (
        "Government",
        &[
            "Public Sector",
            "Government Administration",
            "Gov",
            "Federal Government",
            "Local Government",
            "Public Administration",
            "Defense",
        ],
    ),
    (
        "Professional Services",
        &[
            "Consulting",
            "Management Consulting",
            "Business Services",
            "Staffing",
            "Staffing & Recruiting",
            "Outsourcing",
            "Marketing & Advertising",
            "Advertising",
        ],
    ),
    ("Legal", &["Law", "Law Practice", "Legal Services", "Law Firm", "LegalTech"]),
    (
        "Media",
        &[
            "Media & Entertainment",
            "Entertainment",
            "Publishing",
            "Broadcast Media",
            "Online Media",
            "Newspapers",
            "Gaming",
            "Computer Games",
        ],
    ),
    ("Telecommunications", &["Telecom", "Telco", "Telecoms", "Wireless"]),
    (
        "Energy",
        &["Oil & Gas", "Oil and Energy", "Utilities", "Renewables", "Renewable Energy", "Mining", "Energy & Utilities"],
    ),
    ("Real Estate", &["Property", "Commercial Real Estate", "PropTech", "Real-Estate"]),
    (
        "Transportation & Logistics",
        &[
            "Transportation",
            "Logistics",
            "Logistics and Supply Chain",
            "Supply Chain",
            "Shipping",
            "Trucking",
            "Airlines",
            "Airlines/Aviation",
            "Transport",
        ],
    ),
    (
        "Non-profit",
        &["Nonprofit", "Not-for-profit", "NPO", "NGO", "Charity", "Non-profit Organization Management", "Philanthropy"],
    ),
    (
        "Hospitality",
        &[
            "Hotels",
            "Travel",
            "Leisure, Travel & Tourism",
            "Tourism",
            "Restaurants",
            "Food & Beverages",
            "Food and Beverage",
        ],
    ),
    (
        "Construction",
        &["Building Materials", "Civil Engineering", "Architecture & Planning", "Engineering & Construction"],
    ),
    ("Agriculture", &["Farming", "AgTech", "Agribusiness", "Food Production"]),
    ("Other", &["Misc", "Miscellaneous", "N/A", "Not Applicable"]),
];

/// A picklist of industries built from [`DEFAULT_INDUSTRIES`].
pub fn default_industries() -> Picklist {
    let mut list = Picklist::default();
    for (value, synonyms) in DEFAULT_INDUSTRIES {
        let idx = list.values.len();
        list.values.push((*value).to_owned());
        // The table is checked conflict-free by a unit test; should it ever
        // not be, the first claim wins rather than panicking.
        let _ = list.insert(idx, value, value);
        for syn in *synonyms {
            let _ = list.insert(idx, value, syn);
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_is_conflict_free() {
        let built = Picklist::new(DEFAULT_INDUSTRIES.iter().map(|(v, s)| (*v, s.iter())));
        assert!(built.is_ok(), "{built:?}");
        assert_eq!(built.ok(), Some(default_industries()));
    }

    #[test]
    fn industries() {
        let p = default_industries();
        let m = |s: &str| p.match_value(s);
        assert_eq!(m("Tech"), Some("Technology"));
        assert_eq!(m("it"), Some("Technology"));
        assert_eq!(m("Information-Technology"), Some("Technology"));
        assert_eq!(m("SaaS"), Some("Technology"));
        assert_eq!(m("software"), Some("Technology"));
        assert_eq!(m("FINANCE"), Some("Financial Services"));
        assert_eq!(m("Banking"), Some("Financial Services"));
        assert_eq!(m("fintech"), Some("Financial Services"));
        assert_eq!(m("Health Care"), Some("Healthcare"));
        assert_eq!(m("health-care"), Some("Healthcare"));
        assert_eq!(m("Hospital"), Some("Healthcare"));
        assert_eq!(m("EdTech"), Some("Education"));
        assert_eq!(m("higher education"), Some("Education"));
        assert_eq!(m("Public Sector"), Some("Government"));
        assert_eq!(m("consulting"), Some("Professional Services"));
        assert_eq!(m("Transportation and Logistics"), Some("Transportation & Logistics"));
        assert_eq!(m("nonprofit"), Some("Non-profit"));
        assert_eq!(m("Non Profit"), Some("Non-profit"));
        assert_eq!(m("Pharma"), Some("Pharmaceuticals & Biotech"));
        assert_eq!(m("Manufacturing"), Some("Manufacturing"));
        assert_eq!(m("Techn"), None);
        assert_eq!(m(""), None);
        assert_eq!(m("!!"), None);
        for v in p.values() {
            assert_eq!(m(v), Some(v));
        }
    }

    #[test]
    fn custom_and_errors() {
        let p = Picklist::new([("Köln", vec!["Cologne", "koeln"])]);
        let p = p.unwrap_or_default();
        assert_eq!(p.match_value("KOLN"), Some("Köln"));
        assert_eq!(p.match_value("cologne"), Some("Köln"));
        assert_eq!(p.len(), 1);

        let e = Picklist::new([("A", vec!["x"]), ("B", vec!["X"])]);
        assert!(matches!(e, Err(PicklistError::Conflict { .. })));
        let e = Picklist::new([("A", vec!["--"])]);
        assert!(matches!(e, Err(PicklistError::EmptyKey { .. })));
        let ok = Picklist::new([("A", vec!["a", "A "])]);
        assert!(ok.is_ok());
        let owned: Vec<(String, Vec<String>)> = vec![("Z".into(), vec!["zed".into()])];
        assert!(Picklist::new(owned).is_ok());
    }
}
