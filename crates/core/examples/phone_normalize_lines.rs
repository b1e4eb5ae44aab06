//! Reads `input<TAB>hint` lines on stdin and prints
//! `input<TAB>hint<TAB>status<TAB>e164<TAB>extension<TAB>region` (the test-set format,
//! with errors named as in libphonenumber where they map one-to-one).
//! Used to cross-check against libphonenumber on ad-hoc inputs:
//! `cargo run --release --example normalize_lines < inputs.tsv`.

use leadflow_core::phone::{PhoneError, normalize};
use std::io::{BufRead, Write};

fn main() {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines().map_while(Result::ok) {
        let (raw, hint) = line.split_once('\t').unwrap_or((line.as_str(), ""));
        let h = (!hint.is_empty()).then_some(hint);
        let (status, n) = match normalize(raw, h) {
            Ok(n) => ("valid", Some(n)),
            Err(PhoneError::Invalid(n)) => ("invalid", Some(n)),
            Err(PhoneError::NoRegion | PhoneError::InvalidCountryCode) => ("error:INVALID_COUNTRY_CODE", None),
            Err(PhoneError::Empty | PhoneError::NotANumber) => ("error:NOT_A_NUMBER", None),
            Err(PhoneError::TooShort) => ("error:TOO_SHORT", None),
            Err(PhoneError::TooLong) => ("error:TOO_LONG", None),
        };
        let (e164, ext, region) =
            n.map(|n| (n.e164, n.extension.unwrap_or_default(), n.region.unwrap_or_default())).unwrap_or_default();
        let _ = writeln!(out, "{raw}\t{hint}\t{status}\t{e164}\t{ext}\t{region}");
    }
}
