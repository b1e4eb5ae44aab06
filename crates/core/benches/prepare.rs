//! Normalization cost per lead: `pipeline::prepare` (map with synonyms → normalize every
//! field → validate) over realistic form, CRM and ad-platform payloads, one thread.
//!
//! Run: `cargo bench -p leadflow-core --bench prepare`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_core::config::{Picklists, SourceConfig};
use leadflow_core::pipeline::prepare;
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::Instant;

fn payloads() -> Vec<Map<String, Value>> {
    [
        json!({"email": " Ada.Lovelace@Example.co.uk ", "first_name": "ADA", "last_name": "lovelace", "phone": "020 7946 0958",
               "country": "United Kingdom", "company": "Analytical Engines, Ltd.", "job_title": "Head of Research",
               "industry": "IT", "website": "https://www.example.co.uk/about", "utm_source": "google", "utm_campaign": "q4"}),
        json!({"Work Email": "grace@navy.mil", "First Name": "Grace", "Last Name": "Hopper", "Mobile Phone": "(415) 555-2671 x12",
               "Company Name": "US Navy", "Job Title": "VP, Engineering", "Country": "USA", "State": "calif.", "Zip Code": "94105",
               "Employees": "1,200", "Annual Revenue": "5000000"}),
        json!({"full_name": "José de la Cruz", "email": "jose@gmail.com", "phone_number": "+34 612 34 56 78", "country": "España",
               "company_name": "Acme S.L.", "job_title": "Gerente de Ventas", "custom_question": "demo next week"}),
        json!({"email": "k@mailinator.com", "firstname": "kim", "lastname": "o'neil", "jobtitle": "Marketing Manager",
               "numemployees": "51-200", "industry": "Financial Services", "city": "köln", "country": "Deutschland", "zip": "50667"}),
    ]
    .into_iter()
    .map(|v| v.as_object().cloned().unwrap())
    .collect()
}

fn main() {
    let payloads = payloads();
    let source = SourceConfig::api();
    let picklists = Picklists::default();
    // Warm up: the first phone of each region compiles its patterns.
    for p in &payloads {
        prepare(p, &source, &picklists).unwrap();
    }
    let rounds = 20_000;
    let mut best = f64::MAX;
    let mut total = 0.0;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..rounds {
            for p in &payloads {
                black_box(prepare(black_box(p), &source, &picklists).unwrap());
            }
        }
        let per = started.elapsed().as_secs_f64() / (rounds * payloads.len()) as f64;
        best = best.min(per);
        total += per;
    }
    println!("prepare (map + normalize + validate), {} payload shapes:", payloads.len());
    println!(
        "  mean {:.2} µs per lead, best round {:.2} µs ({:.0} leads/s on one thread)",
        total / 5.0 * 1e6,
        best * 1e6,
        1.0 / best
    );
}
