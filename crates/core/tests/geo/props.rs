//! Property tests: no panics, idempotence.
use leadflow_core::geo::{CountryCode, country, lookup, lookup_with_context, subdivision, subdivision_codes};
use proptest::prelude::*;

fn arb_text() -> impl Strategy<Value = String> {
    // Mix arbitrary chars with characters the fold treats specially.
    let special = prop::sample::select(vec![
        '.',
        ',',
        '\'',
        '’',
        '-',
        '(',
        ')',
        '/',
        '&',
        ' ',
        'é',
        'ß',
        'İ',
        'ﬀ',
        '\u{0301}',
        '\u{1F1E9}',
        '\u{1F1EA}',
        '\u{1F3F4}',
        '\u{E0067}',
        '\u{E007F}',
        'Ａ',
        'u',
        's',
        'a',
    ]);
    let ch = prop_oneof![any::<char>(), special];
    prop::collection::vec(ch, 0..40).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn never_panics(s in arb_text()) {
        let _ = lookup(&s);
        for c in CountryCode::all().take(3) {
            let _ = lookup_with_context(&s, Some(c));
        }
        for c in ["US", "CA", "AU", "DE"] {
            if let Some(c) = CountryCode::parse_code(c) {
                let _ = subdivision(&c, &s);
            }
        }
    }

    #[test]
    fn found_code_round_trips(s in arb_text()) {
        if let Some(c) = country(&s) {
            prop_assert_eq!(country(c.as_str()), Some(c));
            prop_assert_eq!(CountryCode::parse_code(c.as_str()), Some(c));
        }
    }
}

#[test]
fn every_code_is_idempotent() {
    let mut n = 0;
    for c in CountryCode::all() {
        n += 1;
        assert_eq!(country(c.as_str()), Some(c), "{c}");
        assert_eq!(country(&c.as_str().to_lowercase()), Some(c), "{c}");
        assert_eq!(country(&format!(" {} ", c.as_str())), Some(c), "{c}");
        assert_eq!(country(c.alpha3()), Some(c), "{c}");
        assert_eq!(CountryCode::parse_code(c.as_str()), Some(c));
        if c.as_str() != "CG" {
            // "Congo" is deliberately ambiguous (CG/CD).
            assert_eq!(country(c.name()), Some(c), "{}", c.name());
        }
        assert!(country(c.common_name()).is_none_or(|x| x == c), "{}", c.common_name());
    }
    assert_eq!(n, 249);
}

#[test]
fn subdivision_output_is_a_fixed_point() {
    for c in CountryCode::all() {
        for code in subdivision_codes(&c) {
            let out = subdivision(&c, code);
            assert_eq!(out, Some(code));
            if let Some(out) = out {
                assert_eq!(subdivision(&c, out), Some(out));
            }
        }
    }
}

proptest! {
    #[test]
    fn subdivision_fixed_point_on_arbitrary(s in arb_text()) {
        for c in ["US", "CA", "AU"] {
            if let Some(c) = CountryCode::parse_code(c)
                && let Some(out) = subdivision(&c, &s) {
                    prop_assert_eq!(subdivision(&c, out), Some(out));
                }
        }
    }
}
