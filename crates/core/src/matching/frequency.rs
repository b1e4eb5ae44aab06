//! Value frequencies for term-frequency-adjusted weights (Winkler's "frequency-based matching").
//!
//! Agreeing on a common value is weaker evidence than agreeing on a rare one: two "John Smith"s
//! at a 2,000-person company are often two people, two "Florian Kingsington"s almost never. The
//! fixed `u` of a level is the average over all values (Σ f_v²); for the value `v` actually shared,
//! `u_v = f_v`. [`compare`](crate::matching::compare) therefore adds `log2(ū / f_v)` to the weight of an
//! `Exact` (or `Nickname`) first name, an `Exact` last name and an `Exact` company, with `ū = Σ f_v²`
//! measured on the same table, clamped to `[-max_penalty, +max_bonus]` bits (see
//! [`NameFrequencies::adjustment`]). A negative company adjustment also lowers the context cap:
//! at a very large company, sharing the organisation's fields says little about the person.
//!
//! Build it from the records the store already holds ([`NameFrequencies::from_records`] or
//! [`NameFrequencies::add`]) and attach it with [`Model::with_frequencies`](crate::matching::Model::with_frequencies).
//! Without a table (the default), weights are the fixed ones.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::matching::Record;
use crate::matching::text::{fold_name, present};

/// Counts of one field's values.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    counts: HashMap<Box<str>, u32>,
    total: u64,
}

impl Counts {
    fn add(&mut self, value: String) {
        if value.is_empty() {
            return;
        }
        *self.counts.entry(value.into_boxed_str()).or_default() += 1;
        self.total += 1;
    }

    fn freq(&self, value: &str) -> f64 {
        let c = self.counts.get(value).copied().unwrap_or(0).max(1);
        f64::from(c) / self.total.max(1) as f64
    }

    /// Σ f_v²: probability that two random values agree. Summed as integers (Σ c²) so that the
    /// result does not depend on the map's iteration order: scores are the same in every process.
    fn mean_agreement(&self) -> f64 {
        let t = self.total.max(1) as f64;
        let squares: u128 = self.counts.values().map(|&c| u128::from(c) * u128::from(c)).sum();
        squares as f64 / (t * t)
    }
}

fn full_key(first: &str, last: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (first, last).hash(&mut h);
    h.finish()
}

/// Which field a frequency is looked up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrequencyField {
    FirstName,
    LastName,
    /// The company key with spaces removed (or, without a key, the business-domain label).
    Company,
}

/// Frequencies of first names, last names and companies in a table of leads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameFrequencies {
    first: Counts,
    last: Counts,
    /// Full names (hash of folded first + last), for the correlation of first and last names.
    full: HashMap<u64, u32>,
    full_total: u64,
    company: Counts,
    /// Cached Σ f² per field (first, last, company); recomputed by [`NameFrequencies::finish`].
    mean: [f64; 3],
    /// Largest positive adjustment, bits (default 2).
    pub max_bonus: f64,
    /// Largest negative adjustment, bits, as a positive number (default 5).
    pub max_penalty: f64,
    /// Fewer values than this in a field → no adjustment for it (default 1,000).
    pub min_total: u64,
}

impl NameFrequencies {
    /// An empty table with the default clamps.
    pub fn new() -> Self {
        NameFrequencies { max_bonus: 2.0, max_penalty: 5.0, min_total: 1_000, ..NameFrequencies::default() }
    }

    /// Counts the first name, last name and company of every record, then [`finish`](Self::finish)es.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut f = NameFrequencies::new();
        for r in records {
            f.add(r);
        }
        f.finish();
        f
    }

    /// Counts one record. Call [`finish`](Self::finish) after a batch of additions.
    pub fn add(&mut self, r: &Record) {
        let first = present(&r.first_name).map(fold_name);
        let last = present(&r.last_name).map(fold_name);
        if let (Some(f), Some(l)) = (&first, &last)
            && !f.is_empty()
            && !l.is_empty()
        {
            *self.full.entry(full_key(f, l)).or_default() += 1;
            self.full_total += 1;
        }
        if let Some(f) = first {
            self.first.add(f);
        }
        if let Some(l) = last {
            self.last.add(l);
        }
        if let Some(c) = crate::matching::blocking::company_token(r) {
            self.company.add(c);
        }
    }

    /// Recomputes the cached averages (Σ f²).
    pub fn finish(&mut self) {
        self.mean = [self.first.mean_agreement(), self.last.mean_agreement(), self.company.mean_agreement()];
    }

    /// Relative frequency of an already folded value (a value never seen counts once).
    pub fn frequency(&self, field: FrequencyField, folded: &str) -> f64 {
        self.counts(field).freq(folded)
    }

    /// Extra adjustment (≤ 0) when first *and* last names agree exactly: `log2(f_first · f_last /
    /// f_full)`, i.e. how much more common the full name is than independent first and last names
    /// predict ("Michael Johnson"). Clamped to `[-max_penalty, 0]`.
    pub fn full_name_adjustment(&self, first: &str, last: &str) -> f64 {
        if self.full_total < self.min_total || self.first.total == 0 || self.last.total == 0 {
            return 0.0;
        }
        let count = self.full.get(&full_key(first, last)).copied().unwrap_or(0).max(1);
        let full = f64::from(count) / self.full_total as f64;
        let expected = self.first.freq(first) * self.last.freq(last);
        (expected / full).log2().clamp(-self.max_penalty.abs(), 0.0)
    }

    fn counts(&self, field: FrequencyField) -> &Counts {
        match field {
            FrequencyField::FirstName => &self.first,
            FrequencyField::LastName => &self.last,
            FrequencyField::Company => &self.company,
        }
    }

    /// `log2(Σf² / f_v)` for the folded value, clamped to `[-max_penalty, max_bonus]`; 0 when the
    /// field has fewer than `min_total` values or [`finish`](Self::finish) was not called.
    pub fn adjustment(&self, field: FrequencyField, folded: &str) -> f64 {
        let counts = self.counts(field);
        let mean = self.mean[field as usize];
        if counts.total < self.min_total || mean <= 0.0 {
            return 0.0;
        }
        let a = (mean / counts.freq(folded)).log2();
        a.clamp(-self.max_penalty.abs(), self.max_bonus.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(first: &str, last: &str, company: &str) -> Record {
        Record {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            company_key: Some(company.into()),
            ..Record::default()
        }
    }

    #[test]
    fn common_values_weigh_less_than_rare_ones() {
        let mut records = Vec::new();
        for i in 0..2_000 {
            if i % 4 == 0 {
                records.push(person("John", "Smith", "acme"));
            }
            // fold_name keeps letters only: spell the index in letters
            let w: String = [i % 26, (i / 26) % 26, i / 676].iter().map(|&d| char::from(b'a' + d as u8)).collect();
            records.push(person(&format!("N{w}"), &format!("L{w}"), &format!("c{w}")));
        }
        records.push(person("Florian", "Kingsington", "acme"));
        let f = NameFrequencies::from_records(&records);
        assert!(f.adjustment(FrequencyField::LastName, "smith") < -1.0);
        assert!(f.adjustment(FrequencyField::LastName, "kingsington") > 1.0);
        assert!(f.adjustment(FrequencyField::Company, "acme") < -1.0);
        assert!(f.adjustment(FrequencyField::LastName, "smith") >= -f.max_penalty);
        // too few values: no adjustment
        let small = NameFrequencies::from_records(&records[..10]);
        assert_eq!(small.adjustment(FrequencyField::LastName, "smith"), 0.0);
        // the full name "john smith" is exactly as common as its parts predict here
        assert!(f.full_name_adjustment("john", "smith") <= 0.0);

        // Namesakes at one large company: merged with fixed weights, not with frequencies.
        let a = person("John", "Smith", "acme");
        let b = Record { city: Some("Boston".into()), ..person("John", "Smith", "acme") };
        let fixed = crate::matching::Model::default();
        let tf = crate::matching::Model::default().with_frequencies(f);
        let s_fixed = crate::matching::compare(&a, &b, &fixed);
        let s_tf = crate::matching::compare(&a, &b, &tf);
        assert!(s_tf.score < s_fixed.score);
        assert_eq!(s_tf.score, crate::matching::compare(&b, &a, &tf).score);
    }
}
