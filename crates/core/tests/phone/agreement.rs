//! Agreement with libphonenumber (Python `phonenumbers`) on tests/data/phone_cases.tsv,
//! plus regression tests for the gaps found in the `phonenumber` crate.

use leadflow_core::phone::{Normalized, PhoneError, normalize};

const CASES: &str = include_str!("data/phone_cases.tsv");

/// Our answer in the TSV's vocabulary: (status, e164, extension, region).
fn answer(raw: &str, hint: Option<&str>) -> (String, String, String, String) {
    let full = |status: &str, n: &Normalized| {
        (
            status.to_string(),
            n.e164.clone(),
            n.extension.clone().unwrap_or_default(),
            n.region.clone().unwrap_or_default(),
        )
    };
    let error = |name: &str| (format!("error:{name}"), String::new(), String::new(), String::new());
    match normalize(raw, hint) {
        Ok(n) => full("valid", &n),
        Err(PhoneError::Invalid(n)) => full("invalid", &n),
        Err(PhoneError::NoRegion | PhoneError::InvalidCountryCode) => error("INVALID_COUNTRY_CODE"),
        Err(PhoneError::Empty | PhoneError::NotANumber) => error("NOT_A_NUMBER"),
        Err(PhoneError::TooShort) => error("TOO_SHORT"),
        Err(PhoneError::TooLong) => error("TOO_LONG"),
    }
}

/// Lines after the header (which ends with the `# input<TAB>…` column line);
/// inputs themselves may start with `#`.
fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().skip_while(|l| !l.starts_with("# input\t")).skip(1).filter(|l| !l.is_empty())
}

#[test]
fn agreement_with_libphonenumber() {
    let mut total = 0usize;
    let mut agree = 0usize;
    let mut disagreements = Vec::new();
    let mut regions = std::collections::BTreeSet::new();
    for line in data_lines(CASES) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "bad line {line:?}");
        let hint = (!f[1].is_empty()).then_some(f[1]);
        // libphonenumber's TOO_SHORT_AFTER_IDD / TOO_SHORT_NSN are one error here.
        let status = if f[2].starts_with("error:TOO_SHORT") { "error:TOO_SHORT" } else { f[2] };
        // Non-geographic numbers (region "001") have no alpha-2 region.
        let region = if f[5] == "001" { "" } else { f[5] };
        let expected = (status, f[3], f[4], region);
        let got = answer(f[0], hint);
        total += 1;
        if !f[5].is_empty() && f[5] != "001" {
            regions.insert(f[5].to_string());
        }
        if (got.0.as_str(), got.1.as_str(), got.2.as_str(), got.3.as_str()) == expected {
            agree += 1;
        } else {
            disagreements.push(format!("{:?} hint={:?}: libphonenumber {:?}, ours {:?}", f[0], f[1], expected, got));
        }
    }
    let rate = agree as f64 / total as f64;
    println!("agreement: {agree}/{total} = {:.3}% over {} regions", rate * 100.0, regions.len());
    for d in disagreements.iter().take(50) {
        println!("  DISAGREE {d}");
    }
    assert!(total >= 5000, "test set too small: {total}");
    assert!(regions.len() >= 40, "only {} regions", regions.len());
    assert!(rate >= 0.995, "agreement {:.3}% < 99.5%", rate * 100.0);
}

fn ok(raw: &str, hint: Option<&str>) -> Normalized {
    match normalize(raw, hint) {
        Ok(n) => n,
        Err(e) => panic!("{raw:?} hint {hint:?}: {e:?}"),
    }
}

#[test]
fn rfc3966_extension() {
    let n = ok("+1 202-555-0123;ext=123", None);
    assert_eq!(n.e164, "+12025550123");
    assert_eq!(n.extension.as_deref(), Some("123"));
    let n = ok("tel:+44-20-7946-0018;ext=45", None);
    assert_eq!(n.e164, "+442079460018");
    assert_eq!(n.extension.as_deref(), Some("45"));
    let n = ok("(202) 555-0123 ext. 45", Some("US"));
    assert_eq!(n.extension.as_deref(), Some("45"));
    let n = ok("202 555 0123 x123", Some("US"));
    assert_eq!(n.extension.as_deref(), Some("123"));
}

#[test]
fn idd_011_with_us_and_ca_hint() {
    for hint in ["US", "CA"] {
        let n = ok("011 44 20 7946 0018", Some(hint));
        assert_eq!(n.e164, "+442079460018", "{hint}");
        assert_eq!(n.region.as_deref(), Some("GB"));
    }
    // Without a hint, 011 is not known to be an international prefix.
    assert_eq!(normalize("011 44 20 7946 0018", None), Err(PhoneError::NoRegion));
    // 00 from a region that uses 00.
    assert_eq!(ok("0044 20 7946 0018", Some("DE")).e164, "+442079460018");
}

#[test]
fn russian_plus_7() {
    let n = ok("+7 912 345-67-89", None);
    assert_eq!(n.e164, "+79123456789");
    assert_eq!(n.region.as_deref(), Some("RU"));
    assert_eq!(ok("8 (912) 345-67-89", Some("RU")).e164, "+79123456789");
    assert_eq!(ok("+7 495 123-45-67", None).region.as_deref(), Some("RU"));
    // Kazakhstan shares +7.
    assert_eq!(ok("+7 701 123 4567", None).region.as_deref(), Some("KZ"));
}

#[test]
fn danish_number_starting_with_45() {
    // A Danish national number that starts with the country code 45.
    let n = ok("45 12 34 56", Some("DK"));
    assert_eq!(n.e164, "+4545123456");
    assert_eq!(n.region.as_deref(), Some("DK"));
    assert_eq!(ok("+45 45 12 34 56", None).e164, "+4545123456");
}

#[test]
fn recently_added_range() {
    // US area code 274 (Wisconsin) is in metadata 9.0.43 but not in 9.0.33
    // (the `phonenumber` crate 0.3.10's metadata).
    let n = ok("+1 274 455 5507", None);
    assert_eq!(n.e164, "+12744555507");
    assert_eq!(n.region.as_deref(), Some("US"));
}

#[test]
fn invalid_numbers_are_flagged_not_discarded() {
    match normalize("+44 20 7946 001", None) {
        Err(PhoneError::Invalid(n)) => {
            assert_eq!(n.e164, "+44207946001");
            // Like libphonenumber: no region of +44 accepts it.
            assert_eq!(n.region, None);
        }
        other => panic!("{other:?}"),
    }
}
