//! Classify lines from stdin: `input[\texpected]` → `input\texpected\tresult`.
//!
//! `cargo run --example classify < file.tsv`
use std::io::{self, BufRead, Write};

use leadflow_core::geo::{Lookup, lookup};

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut out = io::BufWriter::new(io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        let (input, expected) = line.rsplit_once('\t').unwrap_or((line.as_str(), ""));
        let res = match lookup(input) {
            Lookup::Found(c) => c.to_string(),
            Lookup::Ambiguous(v) => format!("?{}", v.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("|")),
            Lookup::Unknown => "-".to_string(),
            Lookup::Empty => "".to_string(),
        };
        writeln!(out, "{input}\t{expected}\t{res}")?;
    }
    Ok(())
}
