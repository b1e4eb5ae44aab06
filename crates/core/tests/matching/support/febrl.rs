//! FEBRL data sets 1 and 2 (`data/matching/febrl/`, see its PROVENANCE.md) shaped as leads.
//!
//! Each row becomes an API submission — `first_name` = given_name, `last_name` = surname,
//! `street` = "street_number address_1", `street2` = address_2, the suburb in `city` or in
//! `locality` ([`Shape`]), `postal_code` = postcode, `state` = state; date of birth and
//! social-security id are dropped (leads have neither) — and goes through the normal
//! preparation (`pipeline::prepare`, the default API source without its email-or-phone
//! requirement), so normalization applies. The
//! entity of a row is the number in its `rec_id` (`rec-223-org`, `rec-223-dup-0`).
// The vendored files are fixed: a row that does not read is a broken checkout, and the run
// should stop there.
#![allow(dead_code, clippy::unwrap_used)]

use leadflow_core::config::{Picklists, SourceConfig};
use leadflow_core::pipeline::prepare;
use leadflow_core::resolve::match_record;
use serde_json::{Map, Value};

use super::generator::{Lead, Truth};

/// Which lead field the FEBRL suburb goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `city` = suburb (the common CRM shape: one town field).
    SuburbAsCity,
    /// `locality` = suburb, no city.
    SuburbAsLocality,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::SuburbAsCity, Shape::SuburbAsLocality];

    pub fn name(self) -> &'static str {
        match self {
            Shape::SuburbAsCity => "suburb as city",
            Shape::SuburbAsLocality => "suburb as locality",
        }
    }
}

/// FEBRL data set 1 (1,000 records) or 2 (5,000).
pub fn dataset(n: u8) -> &'static str {
    match n {
        1 => include_str!("../../../data/matching/febrl/dataset1.csv"),
        _ => include_str!("../../../data/matching/febrl/dataset2.csv"),
    }
}

/// The rows of a FEBRL CSV as leads, in file order.
pub fn leads(csv: &str, shape: Shape) -> Vec<Lead> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').map(str::trim).collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (id, given, surname, number, address_1, address_2, suburb, postcode, state) = (
        column("rec_id"),
        column("given_name"),
        column("surname"),
        column("street_number"),
        column("address_1"),
        column("address_2"),
        column("suburb"),
        column("postcode"),
        column("state"),
    );
    // The default API source, less its contact requirement: these are address lists.
    let source = SourceConfig { required: Vec::new(), ..SourceConfig::api() };
    let picklists = Picklists::default();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let entity: u32 = cells[id].split('-').nth(1).and_then(|n| n.parse().ok()).unwrap();
            let mut payload = Map::new();
            let mut put = |key: &str, value: &str| {
                if !value.is_empty() {
                    payload.insert(key.to_owned(), Value::String(value.to_owned()));
                }
            };
            put("first_name", cells[given]);
            put("last_name", cells[surname]);
            put("street", format!("{} {}", cells[number], cells[address_1]).trim());
            put("street2", cells[address_2]);
            put(if shape == Shape::SuburbAsCity { "city" } else { "locality" }, cells[suburb]);
            put("postal_code", cells[postcode]);
            put("state", cells[state]);
            let prepared = prepare(&payload, &source, &picklists).unwrap();
            Lead { entity, record: match_record(&prepared.fields, &prepared.derived), truth: Truth::default() }
        })
        .collect()
}
