//! Per-call cost of each normalizer over realistic inputs.
//!
//! `cargo bench --bench normalize` (harness = false, std only). For each
//! function, the input set is run repeatedly for ~0.3 s per round, 7 rounds;
//! the median and fastest round are reported as ns per call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use leadflow_core::normalize::*;

const NAMES: &[&str] = &[
    "JOHN SMITH",
    "mary o'brien",
    "  Ludwig   van Beethoven ",
    "DeShawn Jones",
    "ÅSA LINDQVIST",
    "angus macdonald",
    "mary-kate smith-jones",
    "José García",
    "leonardo d'angelo",
    "juan de la cruz",
];

const COMPANIES: &[&str] = &[
    "Acme, Inc.",
    "ACME Incorporated",
    "The Acme Corp.",
    "Procter & Gamble Co.",
    "Société Générale S.A.",
    "Globex GmbH & Co. KG",
    "Initech LLC",
    "Wayne Enterprises Pty Ltd",
    "Umbrella Corporation",
    "Stark Industries",
];

const URLS: &[&str] = &[
    "https://www.Example.co.uk/path",
    "example.com",
    "www.example.com/",
    "http://shop.acme.de:8080/cart?x=1",
    "acme.io",
    "https://blog.initech.com.au/2024/post",
    "globex.fr",
    "https://user@login.microsoft.com",
    "jane@acme.org",
    "not a url",
];

const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "acme.com",
    "mail.yahoo.co.uk",
    "mailinator.com",
    "GMX.DE",
    "initech.io",
    "outlook.com",
    "yopmail.com",
    "globex.co.jp",
    "hotmail.fr",
];

const INDUSTRIES: &[&str] = &[
    "Tech",
    "Information Technology",
    "banking",
    "Health Care",
    "Manufacturing",
    "EdTech",
    "public sector",
    "Consulting",
    "Non-profit",
    "Underwater basket weaving",
];

const TITLES: &[&str] = &[
    "VP, Marketing",
    "Director - Sales & Ops",
    "Head of Growth",
    "Senior Software Engineer",
    "Chief Executive Officer",
    "Assistant to the CEO",
    "Sr. Mgr, IT",
    "Geschäftsführer",
    "Gerente de Ventas",
    "Customer Success Manager",
];

fn bench<T: ?Sized, R>(name: &str, inputs: &[&T], f: impl Fn(&T) -> R) {
    // Warm up (also builds lazily-initialised tables).
    for x in inputs {
        black_box(f(black_box(x)));
    }
    let round = Duration::from_millis(300);
    let mut per_call = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let mut calls: u64 = 0;
        while start.elapsed() < round {
            for _ in 0..100 {
                for x in inputs {
                    black_box(f(black_box(x)));
                }
            }
            calls += 100 * inputs.len() as u64;
        }
        per_call.push(start.elapsed().as_nanos() as f64 / calls as f64);
    }
    per_call.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<28} median {:>7.1} ns/call   min {:>7.1} ns/call   ({} inputs)",
        per_call[per_call.len() / 2],
        per_call[0],
        inputs.len()
    );
}

fn main() {
    let industries = default_industries();
    bench("person_name", NAMES, person_name);
    bench("company", COMPANIES, company);
    bench("domain_of_url", URLS, domain_of_url);
    bench("registrable_domain", &["www.example.co.uk", "a.b.example.com", "example.de"], registrable_domain);
    bench("is_free_mail", EMAIL_DOMAINS, is_free_mail);
    bench("is_disposable", EMAIL_DOMAINS, is_disposable);
    bench("Picklist::match_value", INDUSTRIES, |s| industries.match_value(s).map(str::len));
    bench("default_industries (build)", &["x"], |_: &str| default_industries().len());
    bench("classify_title", TITLES, classify_title);
}
