//! Property tests: no panics, idempotence of the E.164 output, extensions kept.

use leadflow_core::phone::{PhoneError, normalize};
use proptest::prelude::*;
use proptest::sample::select;

const CASES: &str = include_str!("data/phone_cases.tsv");

/// (input, hint) of test-set rows libphonenumber reads as valid, without an
/// extension and written only with digits, `+` and the usual separators (so
/// that an appended extension is always recognised as one).
fn valid_inputs() -> Vec<(String, Option<String>)> {
    CASES
        .lines()
        .skip_while(|l| !l.starts_with("# input\t"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let plain = f.len() == 6
                && f[2] == "valid"
                && f[4].is_empty()
                && f[0].chars().all(|c| c.is_ascii_digit() || "+ -.()/".contains(c));
            plain.then(|| (f[0].to_string(), (!f[1].is_empty()).then(|| f[1].to_string())))
        })
        .collect()
}

fn hints() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        select(vec!["US", "CA", "GB", "DE", "RU", "DK", "BR", "IN", "JP", "xx", "us", ""])
            .prop_map(|h| Some(h.to_string())),
        any::<String>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_on_arbitrary_strings(raw in any::<String>(), hint in hints()) {
        let _ = normalize(&raw, hint.as_deref());
    }

    #[test]
    fn never_panics_on_phone_like_strings(
        raw in "[0-9+()\\-. /xX#;,=~*extnsiódoб\u{FF10}-\u{FF19}\u{0660}-\u{0669}\u{00A0}]{0,60}",
        hint in hints(),
    ) {
        let _ = normalize(&raw, hint.as_deref());
        let _ = normalize(&format!("tel:{raw};phone-context=+1"), hint.as_deref());
    }

    #[test]
    fn e164_output_is_idempotent(
        case in select(valid_inputs()),
        hint in hints(),
    ) {
        for (raw, h) in [(case.0.as_str(), case.1.as_deref()), (case.0.as_str(), hint.as_deref())] {
            if let Ok(n) = normalize(raw, h) {
                let again = normalize(&n.e164, None);
                prop_assert_eq!(again.as_ref().map(|m| &m.e164), Ok(&n.e164), "{:?} {:?}", raw, h);
                // Any hint gives the same answer for an E.164 input.
                let hinted = normalize(&n.e164, hint.as_deref());
                prop_assert_eq!(hinted, again);
            }
        }
    }

    #[test]
    fn keeps_extensions(
        case in select(valid_inputs()),
        ext in "[0-9]{1,6}",
        label in select(vec![" x", " ext. ", " ext ", ";ext=", " extension ", " #", ",,"]),
    ) {
        let (raw, hint) = (&case.0, case.1.as_deref());
        let plain = normalize(raw, hint);
        prop_assert!(plain.is_ok(), "{:?} {:?}: {:?}", raw, hint, plain);
        let with_ext = normalize(&format!("{raw}{label}{ext}"), hint);
        let expected = plain.map(|mut n| { n.extension = Some(ext.clone()); n });
        prop_assert_eq!(&with_ext, &expected, "{:?}{}{}", raw, label, ext);
        // And the extension survives a round trip through the E.164 form.
        if let Ok(n) = with_ext {
            let again = normalize(&format!("{};ext={}", n.e164, ext), None);
            prop_assert_eq!(again.map(|m| m.extension), Ok(Some(ext.clone())));
        }
    }
}

#[test]
fn invalid_is_not_an_ok() {
    assert!(matches!(normalize("+1 202 555", None), Err(PhoneError::Invalid(_))));
}
