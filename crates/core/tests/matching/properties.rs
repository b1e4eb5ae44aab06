//! Property tests: symmetry, totality, self-match, deterministic blocking keys.

use leadflow_core::matching::{Field, Level, Model, Record, Verdict, blocking_keys, compare, decide, email_match_key};
use proptest::prelude::*;

fn opt(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(s)
}

fn any_text() -> impl Strategy<Value = String> {
    // Arbitrary Unicode, including empty, whitespace, '@', '+', digits and combining marks.
    "\\PC{0,12}"
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        (opt(any_text()), opt(any_text()), opt(any_text()), opt(any_text())),
        (opt(any_text()), opt(any_text()), opt(any_text()), any::<bool>()),
        (opt(any_text()), opt(any_text()), opt(any_text()), opt(any_text())),
        (opt(any_text()), opt(any_text()), opt(any_text())),
    )
        .prop_map(|((f, l, e, p), (c, ed, wd, free), (st, ci, pc, co), (st2, lo, sta))| Record {
            first_name: f,
            last_name: l,
            email: e,
            phone: p,
            company_key: c,
            email_domain: ed,
            website_domain: wd,
            free_mail: free,
            street: st,
            street2: st2,
            locality: lo,
            city: ci,
            postal_code: pc,
            state: sta,
            country: co,
        })
}

/// Plausible records drawn from a small vocabulary, so that fields often agree.
fn small_record() -> impl Strategy<Value = Record> {
    let names = prop::sample::select(vec!["Bob", "Robert", "Rob", "Jon", "John", "Mary", "Mark"]);
    let lasts = prop::sample::select(vec!["Smith", "Smyth", "Jones", "Müller", "O'Brien"]);
    let emails = prop::sample::select(vec![
        "bob.smith@acme.com",
        "bobsmith@gmail.com",
        "bob.smith+x@googlemail.com",
        "mary@acme.com",
        "info@acme.com",
    ]);
    let phones = prop::sample::select(vec!["+15550100", "+15550101", "+4930123456"]);
    let companies = prop::sample::select(vec!["acme", "acme robotics", "globex"]);
    (
        proptest::option::of(names),
        proptest::option::of(lasts),
        proptest::option::of(emails),
        proptest::option::of(phones),
        proptest::option::of(companies),
        any::<bool>(),
    )
        .prop_map(|(f, l, e, p, c, free)| Record {
            first_name: f.map(str::to_owned),
            last_name: l.map(str::to_owned),
            email: e.map(str::to_owned),
            email_domain: e.and_then(|e| e.split_once('@')).map(|(_, d)| d.to_owned()),
            free_mail: free,
            phone: p.map(str::to_owned),
            company_key: c.map(str::to_owned),
            ..Record::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn compare_is_symmetric_and_total(a in arb_record(), b in arb_record()) {
        let m = Model::default();
        let ab = compare(&a, &b, &m);
        let ba = compare(&b, &a, &m);
        prop_assert_eq!(ab.score.to_bits(), ba.score.to_bits());
        prop_assert_eq!(&ab.parts, &ba.parts);
        prop_assert_eq!(&ab.rules, &ba.rules);
        prop_assert!(ab.score.is_finite());
        let _ = decide(&ab, m.thresholds());
    }

    #[test]
    fn compare_is_symmetric_on_plausible_records(a in small_record(), b in small_record()) {
        let m = Model::default();
        let ab = compare(&a, &b, &m);
        let ba = compare(&b, &a, &m);
        prop_assert_eq!(ab.score.to_bits(), ba.score.to_bits());
        prop_assert_eq!(decide(&ab, m.thresholds()), decide(&ba, m.thresholds()));
    }

    #[test]
    fn self_comparison_merges_with_name_and_contact(
        first in "[A-Z][a-z]{1,10}",
        last in "[A-Z][a-z]{1,12}",
        local in "[a-z][a-z0-9.]{0,10}",
        domain in "[a-z]{2,10}\\.(com|de|io)",
        phone in proptest::option::of("\\+[1-9][0-9]{7,13}"),
        with_email in any::<bool>(),
        free in any::<bool>(),
        extra in arb_record(),
    ) {
        let email = with_email.then(|| format!("{local}@{domain}"));
        let phone = if email.is_none() && phone.is_none() { Some("+15550100".to_owned()) } else { phone };
        let r = Record {
            first_name: Some(first),
            last_name: Some(last),
            email,
            phone,
            free_mail: free,
            ..extra
        };
        let m = Model::default();
        let s = compare(&r, &r, &m);
        // A generated name that is a placeholder ("Xx", "Test") is no name: nothing to merge on.
        let named = |f: Field| s.part(f).is_some_and(|e| e.level != Level::Missing);
        prop_assume!(named(Field::FirstName) && named(Field::LastName));
        prop_assert_eq!(decide(&s, m.thresholds()), Verdict::Merge, "{}", s.explain());
    }

    #[test]
    fn blocking_keys_are_deterministic(r in arb_record()) {
        let k1 = blocking_keys(&r);
        let k2 = blocking_keys(&r.clone());
        prop_assert_eq!(&k1, &k2);
        let mut sorted = k1.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(k1, sorted);
    }

    #[test]
    fn email_key_never_panics_and_is_idempotent(e in any_text()) {
        let rules = leadflow_core::matching::EmailRules::default();
        let k = email_match_key(&e, &rules);
        prop_assert_eq!(email_match_key(&k, &rules), k);
    }
}
