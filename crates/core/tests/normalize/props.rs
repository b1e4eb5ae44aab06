//! Property tests: no panics, idempotence, suffix-variant key equality.

use leadflow_core::normalize::*;
use proptest::prelude::*;

const SUFFIXES: &[&str] = &[
    "Inc",
    "Inc.",
    ", Inc.",
    ", inc",
    "INC",
    "Incorporated",
    "Corp",
    "Corp.",
    "Corporation",
    "Co",
    "Co.",
    "Company",
    "LLC",
    "L.L.C.",
    "llc",
    "Ltd",
    "Ltd.",
    "Limited",
    "LLP",
    "PLC",
    "GmbH",
    "AG",
    "KG",
    "SE",
    "S.A.",
    "SA",
    "S.L.",
    "S.R.L.",
    "SRL",
    "S.p.A.",
    "B.V.",
    "BV",
    "N.V.",
    "NV",
    "Pty Ltd",
    "Pty. Ltd.",
    "Oy",
    "AB",
    "AS",
    "A/S",
    "ApS",
    "K.K.",
    "Sdn Bhd",
    "Sdn. Bhd.",
    "Co., Ltd.",
    "GmbH & Co. KG",
    "S.A. de C.V.",
    "Sp. z o.o.",
];

const NOT_NAMES: &[&str] = &["the", "and"];

fn base_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{2,10}", 1..4).prop_map(|w| w.join(" "))
}

fn title_like() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "Senior",
        "VP",
        "Director",
        "of",
        "Marketing",
        "Sales",
        "&",
        "Ops",
        "Head",
        "CEO",
        "Assistant",
        "to",
        "the",
        "Engineer",
        "Manager",
        "Chief",
        "Officer",
        "Leiter",
        "Geschäftsführer",
        "Gerente",
        "de",
        "Ventas",
        "Lead",
        "Owner",
        "Product",
        ",",
        "-",
        "Partner",
        "Intern",
        "Sr.",
        "Mgr",
        "General",
    ]);
    prop::collection::vec(words, 0..7).prop_map(|w| w.join(" "))
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=n raises it for a longer soak.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn never_panics(s in any::<String>()) {
        let _ = person_name(&s);
        let _ = company(&s);
        let _ = domain_of_url(&s);
        let _ = registrable_domain(&s);
        let _ = is_free_mail(&s);
        let _ = is_disposable(&s);
        let _ = default_industries().match_value(&s);
        let _ = classify_title(&s);
        let _ = linkedin_url(&s);
        let _ = x_url(&s);
    }

    #[test]
    fn person_name_idempotent(s in any::<String>()) {
        if let Some(a) = person_name(&s) {
            prop_assert_eq!(person_name(&a), Some(a.clone()));
        }
    }

    #[test]
    fn person_name_idempotent_namelike(s in "[A-Za-zÀ-ÿ'’ .-]{0,40}") {
        if let Some(a) = person_name(&s) {
            prop_assert_eq!(person_name(&a), Some(a.clone()));
        }
    }

    #[test]
    fn company_idempotent(s in any::<String>()) {
        if let Some(c) = company(&s) {
            let again = company(&c.display);
            prop_assert_eq!(again.map(|x| x.display), Some(c.display.clone()));
            let from_key = company(&c.key);
            prop_assert_eq!(from_key.map(|x| x.key), Some(c.key.clone()));
            prop_assert!(!c.key.is_empty());
        }
    }

    #[test]
    fn company_idempotent_namelike(s in "[A-Za-zé&.,' /-]{0,40}") {
        if let Some(c) = company(&s) {
            let from_key = company(&c.key);
            prop_assert_eq!(from_key.map(|x| x.key), Some(c.key.clone()));
        }
    }

    #[test]
    fn company_suffix_variants_share_key(
        base in base_name(),
        sfx in prop::sample::select(SUFFIXES),
        the in any::<bool>(),
        upper in any::<bool>(),
    ) {
        let base_key = company(&base).map(|c| c.key);
        // Skip bases that themselves end in a suffix word or are only stop words.
        let last = base.rsplit(' ').next().unwrap_or("");
        let suffix_words: Vec<String> = SUFFIXES
            .iter()
            .flat_map(|s| s.split([' ', ',']))
            .map(|w| w.replace(['.', '/'], "").to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        prop_assume!(!suffix_words.iter().any(|w| w == last));
        prop_assume!(!NOT_NAMES.iter().any(|w| base.split(' ').next() == Some(*w) || last == *w));
        let mut variant = if the { format!("The {base}") } else { base.clone() };
        if sfx.starts_with(',') { variant.push_str(sfx) } else { variant.push(' '); variant.push_str(sfx) }
        if upper { variant = variant.to_uppercase() }
        prop_assert_eq!(company(&variant).map(|c| c.key), base_key, "variant {:?}", variant);
    }

    #[test]
    fn domain_idempotent(s in any::<String>()) {
        if let Some(d) = domain_of_url(&s) {
            prop_assert_eq!(domain_of_url(&d), Some(d.clone()));
            prop_assert_eq!(registrable_domain(&d), Some(d.clone()));
        }
    }

    #[test]
    fn domain_idempotent_urllike(
        scheme in prop::sample::select(vec!["", "http://", "https://", "//"]),
        sub in "([a-z0-9]{1,8}\\.){0,3}",
        // leading q + 4..12 chars: avoids private-section suffixes such as za.com
        label in "q[a-zA-Z0-9]{3,11}",
        tld in prop::sample::select(vec!["com", "co.uk", "de", "com.au", "io", "github.io", "xyz", "jp", "invalidtld"]),
        path in "(/[a-z0-9?=&#]{0,10}){0,2}",
    ) {
        let url = format!("{scheme}{sub}{label}.{tld}{path}");
        let d = domain_of_url(&url);
        if tld != "invalidtld" {
            prop_assert_eq!(d.clone(), Some(format!("{}.{}", label.to_lowercase(), tld)), "url {:?}", url);
        }
        if let Some(d) = d {
            prop_assert_eq!(domain_of_url(&d), Some(d.clone()));
        }
    }

    #[test]
    fn picklist_idempotent(s in any::<String>()) {
        let p = default_industries();
        if let Some(v) = p.match_value(&s) {
            prop_assert_eq!(p.match_value(v), Some(v));
        }
    }

    #[test]
    fn picklist_ignores_case_and_punctuation(
        idx in 0usize..1000,
        pad in prop::sample::select(vec!["", " ", "  ", "-", "."]),
        upper in any::<bool>(),
    ) {
        let p = default_industries();
        let values: Vec<&str> = p.values().collect();
        let v = values[idx % values.len()];
        let mut spelled = format!("{pad}{v}{pad}");
        if upper { spelled = spelled.to_uppercase(); }
        prop_assert_eq!(p.match_value(&spelled), Some(v));
    }

    #[test]
    fn classify_title_stable(s in any::<String>()) {
        let a = classify_title(&s);
        prop_assert_eq!(classify_title(&s), a);
        prop_assert_eq!(classify_title(&format!("  {s}\t")), a);
    }

    #[test]
    fn classify_title_case_insensitive(s in title_like()) {
        let a = classify_title(&s);
        prop_assert_eq!(classify_title(&s.to_uppercase()), a, "{:?}", s);
        prop_assert_eq!(classify_title(&s.to_lowercase()), a, "{:?}", s);
        prop_assert_eq!(classify_title(&s.replace(' ', "  ")), a, "{:?}", s);
    }

    #[test]
    fn social_urls_are_idempotent_and_parse_again(
        s in prop_oneof![
            any::<String>(),
            (
                prop::sample::select(vec![
                    "", "@", "https://", "linkedin.com/in/", "https://uk.linkedin.com/company/", "x.com/",
                    "https://twitter.com/", "https://twitter.com/#!/",
                ]),
                "\\PC{0,30}",
            )
                .prop_map(|(prefix, rest)| format!("{prefix}{rest}")),
        ]
    ) {
        for (canonical, origin) in [(linkedin_url(&s), "https://www.linkedin.com"), (x_url(&s), "https://x.com")] {
            if let Some(c) = canonical {
                prop_assert_eq!(linkedin_url(&c).or_else(|| x_url(&c)), Some(c.clone()), "from {:?}", s);
                prop_assert!(c.is_ascii(), "{:?}", c);
                let parsed = url::Url::parse(&c);
                prop_assert!(parsed.is_ok(), "{:?}", c);
                if let Ok(u) = parsed {
                    prop_assert_eq!(u.origin().ascii_serialization(), origin);
                    prop_assert_eq!(u.as_str(), c.as_str(), "the URL parser leaves it as it is");
                }
            }
        }
    }

    #[test]
    fn linkedin_urls_as_typed_become_the_canonical_one(
        scheme in prop::sample::select(vec!["", "http://", "https://", "HTTPS://", "//"]),
        sub in prop::sample::select(vec!["", "www.", "uk.", "de.", "m.", "WWW."]),
        kind in prop::sample::select(vec!["in", "company", "IN"]),
        slug in "[a-zA-Z0-9äöüßéñ中][a-zA-Z0-9äöüßéñ中_.-]{0,40}",
        encode in any::<bool>(),
        tail in prop::sample::select(vec!["", "/", "/en", "/about/", "?trk=public_profile", "/?utm_source=share#x", "#top"]),
    ) {
        let typed_slug = if encode { utf8_encoded(&slug) } else { slug.clone() };
        let typed = format!("{scheme}{sub}linkedin.com/{kind}/{typed_slug}{tail}");
        let expected = format!(
            "https://www.linkedin.com/{}/{}",
            kind.to_lowercase(),
            utf8_encoded(&slug.to_lowercase())
        );
        prop_assert_eq!(linkedin_url(&typed), Some(expected), "typed {:?}", typed);
    }

    #[test]
    fn x_handles_as_typed_become_the_canonical_url(
        form in prop::sample::select(vec!["@", "", "x.com/", "https://x.com/", "twitter.com/", "http://mobile.twitter.com/", "https://www.x.com/"]),
        handle in "[a-zA-Z0-9_]{1,15}",
        tail in prop::sample::select(vec!["", "/", "?lang=en", "/media", "#top"]),
    ) {
        let reserved = ["about", "account", "compose", "download", "explore", "hashtag", "home", "i", "intent",
            "jobs", "login", "logout", "messages", "notifications", "privacy", "search", "settings", "share",
            "signup", "tos"];
        prop_assume!(!reserved.contains(&handle.to_lowercase().as_str()));
        let tail = if form.contains('/') { tail } else { "" };
        let typed = format!("{form}{handle}{tail}");
        prop_assert_eq!(x_url(&typed), Some(format!("https://x.com/{}", handle.to_lowercase())), "typed {:?}", typed);
    }
}

/// A slug as LinkedIn writes it in links: non-ASCII bytes percent-encoded, upper-case hex.
fn utf8_encoded(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}
