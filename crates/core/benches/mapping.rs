//! `cargo bench --bench map`: records/s for a typical 15-key form record, without and with
//! a mapping spec. Plain `std::time` timing (no bench framework): several rounds, median.

use leadflow_core::mapping::{MappingSpec, map_record, match_header, parse_spec};
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn form_record() -> Map<String, Value> {
    let v = json!({
        "First Name": "Ada",
        "Last Name": "Lovelace",
        "Work Email": "ada@analytical.example",
        "Phone Number": "+44 20 7946 0958",
        "Company Name": "Analytical Engines Ltd",
        "Job Title": "Head of Computing",
        "Website": "https://analytical.example",
        "Company Size": "51-200",
        "Country": "GB",
        "City": "London",
        "Zip Code": "SW1Y 4JH",
        "utm_source": "linkedin",
        "utm_campaign": "q3-launch",
        "How did you hear about us?": "A colleague",
        "consent": {"granted": true, "channels": {"email": true}}
    });
    v.as_object().cloned().unwrap_or_default()
}

fn webhook_record() -> Map<String, Value> {
    let v = json!({
        "event_id": "evt_01J9Z",
        "submitted_at": "2025-05-01T10:00:00Z",
        "contact": {"email": "ada@analytical.example", "name": "Ada Lovelace", "phones": ["+44 20 7946 0958"]},
        "org_name": "Analytical Engines Ltd",
        "job": "Head of Computing",
        "addr1": "12 St James's Square",
        "addr2": "Floor 2",
        "zip": "SW1Y 4JH",
        "country": "GB",
        "meta": {"plan": "pro", "ua": "Mozilla/5.0"},
        "answers": [{"field": {"ref": "size"}, "text": "51-200"}, {"field": {"ref": "budget"}, "text": "10k"}],
        "utm_source": "linkedin",
        "utm_medium": "paid",
        "password": "hunter2",
        "csrf_token": "abc123"
    });
    v.as_object().cloned().unwrap_or_default()
}

fn spec() -> Option<MappingSpec> {
    let text = r#"
email = "contact.email"
full_name = "contact.name"
phone = "contact.phones[0]"
company = "org_name"
street = { join = ["addr1", "addr2"], separator = ", " }
employee_count = "answers[field.ref=size].text"
"custom.plan" = "meta.plan"
ignore = ["password", "csrf_token"]
"#;
    let doc = toml_edit::Document::parse(text).ok()?;
    parse_spec(doc.as_table()).ok()
}

/// (fastest, median) time per call over `rounds` rounds of `iters` calls. The machine is
/// shared: the fastest round is the one least disturbed by other work.
fn measure(rounds: usize, iters: u32, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..iters {
        f();
    }
    let mut per_call: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters
        })
        .collect();
    per_call.sort();
    (per_call.first().copied().unwrap_or_default(), per_call.get(rounds / 2).copied().unwrap_or_default())
}

/// Measures and prints one case; `cargo bench --bench map -- FILTER` runs the matching ones.
fn run(name: &str, f: impl FnMut()) {
    if std::env::args().skip(1).find(|a| !a.starts_with("--")).is_some_and(|filter| !name.contains(&filter)) {
        return;
    }
    let (fastest, median) = measure(60, 5_000, f);
    let (min, med) = (fastest.as_nanos().max(1), median.as_nanos().max(1));
    println!(
        "{name:<44} {min:>6} ns {:>10.0} rec/s (fastest round)   {med:>6} ns {:>10.0} rec/s (median)",
        1e9 / min as f64,
        1e9 / med as f64
    );
}

fn main() {
    let Some(spec) = spec() else {
        eprintln!("bench spec did not parse");
        std::process::exit(1);
    };
    let form = form_record();
    let webhook = webhook_record();
    assert_eq!(form.len(), 15);
    assert_eq!(webhook.len(), 15);
    let m = map_record(&form, None);
    assert_eq!(m.standard.len(), 13, "{:?}", m.standard);
    let m = map_record(&webhook, Some(&spec));
    assert_eq!(m.standard.len(), 12, "{:?}", m.standard);

    run("form record, 15 keys, synonyms only", || {
        black_box(map_record(black_box(&form), None));
    });
    run("webhook record, 15 keys, spec (8 entries)", || {
        black_box(map_record(black_box(&webhook), Some(black_box(&spec))));
    });
    run("form record, 15 keys, with the same spec", || {
        black_box(map_record(black_box(&form), Some(black_box(&spec))));
    });
    let headers: Vec<&String> = form.keys().collect();
    run("match_header x15 (one CSV header row)", || {
        for h in &headers {
            black_box(match_header(black_box(h)));
        }
    });
}
