//! Subdivision accuracy: every case right, never a wrong code.
use leadflow_core::geo::{CountryCode, subdivision};

#[test]
fn messy_subdivision_inputs() {
    let text = include_str!("data/subdivision_cases.tsv");
    let (mut total, mut correct) = (0usize, 0usize);
    let mut wrong = Vec::new();
    let mut missed = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut cols = line.splitn(3, '\t');
        let (Some(c), Some(input), Some(expected)) = (cols.next(), cols.next(), cols.next()) else {
            panic!("line {}: need three columns", n + 1);
        };
        let country = CountryCode::parse_code(c).expect("valid country column");
        let want = Some(expected.trim()).filter(|e| !e.is_empty());
        let got = subdivision(&country, input);
        total += 1;
        if got == want {
            correct += 1;
        } else if got.is_some() {
            wrong.push(format!("line {}: {c} {input:?} -> {got:?}, want {want:?}", n + 1));
        } else {
            missed.push(format!("line {}: {c} {input:?} -> None, want {want:?}", n + 1));
        }
    }
    println!("subdivisions: {correct}/{total} correct, {} wrong, {} missed", wrong.len(), missed.len());
    for m in missed.iter().chain(&wrong) {
        println!("  {m}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(correct * 100 >= total * 99, "{correct}/{total}");
}

#[test]
fn every_subdivision_by_name_and_code() {
    for c in ["US", "CA", "AU"] {
        let country = CountryCode::parse_code(c).expect("code");
        let mut n = 0;
        for code in leadflow_core::geo::subdivision_codes(&country) {
            n += 1;
            assert_eq!(subdivision(&country, code), Some(code));
            let bare = &code[3..];
            assert_eq!(subdivision(&country, bare), Some(code));
            assert_eq!(subdivision(&country, &bare.to_lowercase()), Some(code));
            let name = leadflow_core::geo::subdivision_name(code).expect("name");
            assert_eq!(subdivision(&country, name), Some(code), "{name}");
            assert_eq!(subdivision(&country, &name.to_uppercase()), Some(code), "{name}");
        }
        let want = match c {
            "US" => 57, // 50 states + DC + 6 outlying areas
            "CA" => 13,
            _ => 8,
        };
        assert_eq!(n, want, "{c}");
    }
}
