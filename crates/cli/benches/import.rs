//! Import benchmark: a generated CSV (1,000,000 rows by default) through the release
//! `leadflow import` on a fresh SQLite file: end-to-end rows/s (mapping, normalization,
//! matching, storage, the per-row report), the process's peak memory, and the ratio to
//! plain batched inserts of the rows each lead produces.
//!
//! Run: `cargo bench -p leadflow --bench import` (BENCH_ROWS=N to change the size;
//! BENCH_CSV=FILE imports that file instead, e.g. one made by
//! `python3 ../shared/bench/make_import_csv.py 300000 leads.csv`). The import ends with
//! the resolver's queue drained (fuzzy matching is on by default), so the time includes
//! resolving every lead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("leads.csv");
    let rows = match std::env::var("BENCH_CSV") {
        Ok(file) => {
            std::fs::copy(&file, &csv).unwrap();
            std::fs::read_to_string(&csv).unwrap().lines().count() as u64 - 1
        }
        Err(_) => generate(&csv, std::env::var("BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)),
    };
    let size = std::fs::metadata(&csv).unwrap().len();
    // BENCH_ENCRYPTED=1 encrypts personal data at rest.
    let toml = common::encryption_toml();
    if !toml.is_empty() {
        std::fs::write(dir.path().join("leadflow.toml"), toml).unwrap();
    }

    let (elapsed, peak_kib, out) =
        measure(dir.path(), &["import", "leads.csv", "--source", "api", "--report", "report.csv"]);
    let summary = out.trim().to_owned();
    let rate = rows as f64 / elapsed;
    // BENCH_DEDUPE=1 also times a dry-run batch search for duplicates over the imported leads.
    let dedupe = std::env::var_os("BENCH_DEDUPE").map(|_| measure(dir.path(), &["dedupe", "--dry-run"]));
    let storage = common::sqlite_baseline(dir.path(), Duration::from_secs(10));

    println!("\n{summary}");
    println!("| measurement | figure |");
    println!("|---|---|");
    println!("| rows | {rows} ({:.0} MB of CSV) |", size as f64 / 1e6);
    println!("| wall time | {elapsed:.1} s |");
    println!("| import rate, end to end | {rate:.0} rows/s |");
    println!("| peak resident memory of `leadflow import` | {:.0} MB |", peak_kib as f64 / 1024.0);
    println!("| plain batched SQLite inserts of the same rows | {storage:.0} leads/s |");
    println!("| import / plain inserts | {:.2} |", rate / storage);
    if let Some((seconds, peak_kib, out)) = dedupe {
        println!(
            "| `leadflow dedupe --dry-run` over the imported leads | {seconds:.1} s, peak {:.0} MB |",
            peak_kib as f64 / 1024.0
        );
        println!("\n{}", out.lines().last().unwrap_or_default());
    }
}

const FIRST: [&str; 12] =
    ["Ada", "Grace", "Alan", "Linus", "Ken", "Dennis", "Margaret", "Barbara", "John", "Frances", "Edsger", "Radia"];
const SYLLABLES: [&str; 16] =
    ["ka", "lo", "mi", "ne", "su", "ra", "to", "vi", "de", "ba", "gu", "fe", "po", "zi", "ha", "ju"];

/// A made-up word from `n`, scrambled so that neighbouring numbers give unrelated words
/// (numbered names such as "Engines 12" and "Engines 13" look alike to fuzzy matching).
fn word(n: u64) -> String {
    let mut h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d;
    let mut w = String::new();
    for _ in 0..5 {
        w.push_str(SYLLABLES[(h % 16) as usize]);
        h /= 16;
    }
    let mut chars = w.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// `rows` rows of distinct people (a tenth repeating an earlier one, as real lists do);
/// each person's surname, company, email domain and phone are their own, so fuzzy
/// matching finds only the repeats. Returns the number of rows.
fn generate(csv: &std::path::Path, rows: u64) -> u64 {
    let mut w = BufWriter::new(std::fs::File::create(csv).unwrap());
    writeln!(w, "Email,First Name,Last Name,Company,Job Title,Phone,Country,City,utm_source,utm_campaign,Plan")
        .unwrap();
    for i in 0..rows {
        let person = if i % 10 == 9 { i - 5 } else { i };
        writeln!(
            w,
            "imp-{person}@{}.com,{},{},\"{} Engines, Ltd\",Head of Research,020 7{:03} {:04},United Kingdom,London,google,q4-launch,pro",
            word(person + (1 << 40)).to_lowercase(),
            FIRST[(person % 12) as usize],
            word(person),
            word(person + (1 << 40)),
            person / 10_000 % 1000,
            person % 10_000
        )
        .unwrap();
    }
    w.flush().unwrap();
    rows
}

/// Runs the release binary with `args` in `dir`; returns seconds, peak resident KiB and stdout.
fn measure(dir: &std::path::Path, args: &[&str]) -> (f64, u64, String) {
    let started = Instant::now();
    let mut child = Command::new(common::binary())
        .current_dir(dir)
        .env("LEADFLOW_LOG", "warn")
        .env(common::KEY_ENV.0, common::KEY_ENV.1)
        .args(args)
        // A file, not a pipe: nothing reads while the command runs, and a full pipe would
        // block it.
        .stdout(std::fs::File::create(dir.join("measured.out")).unwrap())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        // VmHWM is the high-water mark of resident memory so far.
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").trim().to_owned()))
            })
            .and_then(|v| v.parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(child.wait().unwrap().success());
    (seconds, peak_kib, std::fs::read_to_string(dir.join("measured.out")).unwrap())
}
