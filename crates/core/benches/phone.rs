//! Throughput of `normalize` on one thread over the inputs of
//! tests/data/phone_cases.tsv. Run with `cargo bench --bench phone`.
//!
//! Prints the cold first pass (includes parsing the metadata and compiling
//! the regexes of every region touched) and the warm steady state.

use std::hint::black_box;
use std::time::{Duration, Instant};

const CASES: &str = include_str!("../tests/phone/data/phone_cases.tsv");

fn main() {
    let inputs: Vec<(&str, Option<&str>)> = CASES
        .lines()
        .skip_while(|l| !l.starts_with("# input\t"))
        .skip(1)
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut f = l.split('\t');
            let raw = f.next()?;
            let hint = f.next()?;
            Some((raw, (!hint.is_empty()).then_some(hint)))
        })
        .collect();
    let n = inputs.len();

    let start = Instant::now();
    let mut ok = 0usize;
    for (raw, hint) in &inputs {
        ok += usize::from(leadflow_core::phone::normalize(black_box(raw), *hint).is_ok());
    }
    let cold = start.elapsed();
    println!(
        "cold first pass: {n} inputs in {:.1} ms ({ok} valid), {:.0} numbers/s",
        cold.as_secs_f64() * 1e3,
        n as f64 / cold.as_secs_f64()
    );

    let mut best = f64::MAX;
    let mut total = Duration::ZERO;
    let mut passes = 0usize;
    while total < Duration::from_secs(5) || passes < 5 {
        let t = Instant::now();
        for (raw, hint) in &inputs {
            black_box(leadflow_core::phone::normalize(black_box(raw), black_box(*hint)).is_ok());
        }
        let e = t.elapsed();
        best = best.min(e.as_secs_f64());
        total += e;
        passes += 1;
    }
    let mean = total.as_secs_f64() / passes as f64;
    println!(
        "warm: {passes} passes x {n} inputs; mean {:.0} numbers/s ({:.2} us/number), best pass {:.0} numbers/s",
        n as f64 / mean,
        mean / n as f64 * 1e6,
        n as f64 / best
    );
}
