//! Lookup throughput. Run with `cargo bench --bench lookup`.
use std::hint::black_box;
use std::time::Instant;

use leadflow_core::geo::{CountryCode, country, subdivision};

const INPUTS: &[&str] = &[
    "United States",
    "USA",
    "u.s.a.",
    "Germany",
    "DE",
    "Deutschland",
    "United Kingdom",
    "U.K.",
    "France",
    "  the Netherlands ",
    "España",
    "Korea, Republic of",
    "Côte d'Ivoire",
    "日本",
    "Россия",
    "n/a",
    "Europe",
    "Georgia",
    "🇩🇪",
    "Germany (DE)",
];

const STATES: &[&str] = &["CA", "calif.", "New York", "N.Y.", "Texas", "US-WA"];

fn main() {
    // Build the tables outside the timed region.
    let start = Instant::now();
    black_box(country("warm-up"));
    let init = start.elapsed();

    let rounds = 200_000u32;
    let start = Instant::now();
    let mut hits = 0u64;
    for _ in 0..rounds {
        for s in INPUTS {
            if country(black_box(s)).is_some() {
                hits += 1;
            }
        }
    }
    let el = start.elapsed();
    let n = f64::from(rounds) * INPUTS.len() as f64;
    println!(
        "country():     {:>6.2} M lookups/s  ({:.0} ns/lookup, {} hits, table init {:?})",
        n / el.as_secs_f64() / 1e6,
        el.as_nanos() as f64 / n,
        hits,
        init
    );

    let us = CountryCode::parse_code("US");
    let start = Instant::now();
    let mut hits = 0u64;
    if let Some(us) = us {
        for _ in 0..rounds {
            for s in STATES {
                if subdivision(&us, black_box(s)).is_some() {
                    hits += 1;
                }
            }
        }
    }
    let el = start.elapsed();
    let n = f64::from(rounds) * STATES.len() as f64;
    println!(
        "subdivision(): {:>6.2} M lookups/s  ({:.0} ns/lookup, {} hits)",
        n / el.as_secs_f64() / 1e6,
        el.as_nanos() as f64 / n,
        hits
    );
}
