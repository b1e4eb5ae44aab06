//! Social profile URLs → one canonical URL per profile.
//!
//! Accepts what people type and what providers send: a full URL with or without its
//! scheme, `www.`, mobile and country subdomains (`uk.linkedin.com`, `mobile.twitter.com`),
//! tracking query strings, fragments and trailing slashes; for X also `@handle`, a bare
//! handle and `twitter.com`. The canonical forms are
//!
//! * LinkedIn: `https://www.linkedin.com/in/<handle>` for a person, and
//!   `https://www.linkedin.com/company/<slug>` for a company page (the kind of page is
//!   kept: a company is not a person). A sub-page of the profile (`/about`, a language
//!   such as `/en`, `/recent-activity/…`) names the same profile and is reduced to it.
//! * X: `https://x.com/<handle>`. A profile tab (`/media`, `/likes`, …) is reduced to the
//!   profile; a post (`/status/…`) is not a profile.
//!
//! Both sites treat handles case-insensitively, so handles are lower-cased. A LinkedIn
//! slug may hold letters outside ASCII (`/in/jürgen-müller`, or the same percent-encoded);
//! it is decoded, lower-cased and written back percent-encoded with upper-case hex
//! (`/in/j%C3%BCrgen-m%C3%BCller`), the form LinkedIn itself links to: the canonical value
//! is then an ASCII URI any consumer parses and compares byte for byte.
//!
//! `None` for anything that is not a profile of that site: another domain, a post, a
//! search or other site page, an empty or malformed handle, an X reserved path (`/home`,
//! `/search`, `/intent/…`), user info or a port in the URL, a scheme other than HTTP(S).
//! Shorteners (`lnkd.in`, `t.co`) are not followed, so they are not profiles either.
//! Total: never panics; a canonical value normalizes to itself.

use url::{Host, Url};

/// Canonical LinkedIn profile or company page URL, if `raw` is one.
pub fn linkedin_url(raw: &str) -> Option<String> {
    let url = parse_web_url(raw)?;
    let sub = site_subdomain(&url, "linkedin.com")?;
    // www, the mobile hosts and the two-letter country or language subdomains.
    let known =
        matches!(sub, "" | "www" | "m" | "mobile") || (sub.len() == 2 && sub.bytes().all(|b| b.is_ascii_lowercase()));
    if !known {
        return None;
    }
    let mut segments = segments(&url);
    let kind = match segments.next()?.to_ascii_lowercase().as_str() {
        "in" => "in",
        "company" => "company",
        _ => return None,
    };
    let slug = linkedin_slug(segments.next()?)?;
    Some(format!("https://www.linkedin.com/{kind}/{slug}"))
}

/// Canonical X (Twitter) profile URL, if `raw` is an X profile URL or a handle.
pub fn x_url(raw: &str) -> Option<String> {
    let s = raw.trim();
    if let Some(handle) = s.strip_prefix('@') {
        return x_handle(handle).map(|h| format!("https://x.com/{h}"));
    }
    if !s.contains(['/', '.', ':']) {
        return x_handle(s).map(|h| format!("https://x.com/{h}"));
    }
    let url = parse_web_url(s)?;
    let sub = site_subdomain(&url, "x.com").or_else(|| site_subdomain(&url, "twitter.com"))?;
    if !matches!(sub, "" | "www" | "m" | "mobile") {
        return None;
    }
    // The old hash-bang links: `twitter.com/#!/ada`.
    let hashbang = url.fragment().and_then(|f| f.strip_prefix("!/")).filter(|_| url.path() == "/");
    let path: Vec<&str> = match hashbang {
        Some(rest) => rest.split(['/', '?']).filter(|s| !s.is_empty()).collect(),
        None => segments(&url).collect(),
    };
    let (handle, rest) = path.split_first()?;
    match rest.first() {
        None => {}
        Some(tab) if X_PROFILE_TABS.contains(&tab.to_ascii_lowercase().as_str()) => {}
        Some(_) => return None,
    }
    x_handle(handle).map(|h| format!("https://x.com/{h}"))
}

/// Paths of x.com that look like a handle but are the site's own pages. Handles cannot
/// take them, so one of these is never a profile.
const X_RESERVED: &[&str] = &[
    "about",
    "account",
    "compose",
    "download",
    "explore",
    "hashtag",
    "home",
    "i",
    "intent",
    "jobs",
    "login",
    "logout",
    "messages",
    "notifications",
    "privacy",
    "search",
    "settings",
    "share",
    "signup",
    "tos",
];

/// A profile's tabs: they show the same profile.
const X_PROFILE_TABS: &[&str] =
    &["with_replies", "media", "likes", "highlights", "articles", "followers", "following", "verified_followers"];

/// The longest handle X allows.
const X_HANDLE_MAX: usize = 15;
/// The longest LinkedIn public profile URL slug (the "custom URL"), in characters.
const LINKEDIN_SLUG_MAX: usize = 100;

/// A lower-cased X handle: 1–15 ASCII letters, digits or `_`, not a reserved path.
fn x_handle(raw: &str) -> Option<String> {
    let handle = raw.to_ascii_lowercase();
    let valid = !handle.is_empty()
        && handle.len() <= X_HANDLE_MAX
        && handle.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !X_RESERVED.contains(&handle.as_str());
    valid.then_some(handle)
}

/// A LinkedIn slug as it appears in a URL path (possibly percent-encoded), decoded,
/// lower-cased, checked and encoded again.
fn linkedin_slug(segment: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
    let lower = decoded.to_lowercase();
    let chars = lower.chars().count();
    let valid = (1..=LINKEDIN_SLUG_MAX).contains(&chars)
        && lower.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && lower.chars().any(char::is_alphanumeric);
    valid.then(|| percent_encoding::utf8_percent_encode(&lower, SLUG_ENCODE).to_string())
}

/// Every byte but ASCII letters, digits, `-`, `_` and `.` is encoded: after the checks
/// above that means exactly the bytes of non-ASCII letters.
const SLUG_ENCODE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `raw` read as an http(s) URL, `https://` assumed when it has no scheme. Whitespace
/// inside, user info and an explicit port are refused: a profile link has none of them.
fn parse_web_url(raw: &str) -> Option<Url> {
    let s = raw.trim();
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    let url = if s.contains("://") {
        Url::parse(s).ok()?
    } else if let Some(rest) = s.strip_prefix("//") {
        Url::parse(&format!("https://{rest}")).ok()?
    } else {
        Url::parse(&format!("https://{s}")).ok()?
    };
    let plain = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.port().is_none();
    plain.then_some(url)
}

/// The subdomain part of the URL's host under `site` (`""` for the site itself), when the
/// host is `site` or one label under it.
fn site_subdomain<'u>(url: &'u Url, site: &str) -> Option<&'u str> {
    let Some(Host::Domain(host)) = url.host() else { return None };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host == site {
        return Some("");
    }
    let sub = host.strip_suffix(site)?.strip_suffix('.')?;
    (!sub.is_empty() && !sub.contains('.')).then_some(sub)
}

/// The URL's non-empty path segments: `//in//ada/` is `in`, `ada`.
fn segments(url: &Url) -> impl Iterator<Item = &str> {
    url.path_segments().into_iter().flatten().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn li(s: &str) -> Option<String> {
        linkedin_url(s)
    }

    fn x(s: &str) -> Option<String> {
        x_url(s)
    }

    #[test]
    fn linkedin_profiles_in_every_common_spelling_become_one_url() {
        let ada = Some("https://www.linkedin.com/in/ada-lovelace".to_owned());
        for s in [
            "https://www.linkedin.com/in/ada-lovelace",
            "https://www.linkedin.com/in/ada-lovelace/",
            "http://linkedin.com/in/ada-lovelace",
            "linkedin.com/in/ada-lovelace",
            "www.linkedin.com/in/Ada-Lovelace/",
            "  https://uk.linkedin.com/in/ada-lovelace  ",
            "https://de.linkedin.com/in/ada-lovelace?trk=public_profile_browsemap&originalSubdomain=uk",
            "https://www.linkedin.com/in/ada-lovelace/?utm_source=share&utm_medium=member_ios#experience",
            "https://m.linkedin.com/in/ada-lovelace",
            "HTTPS://WWW.LINKEDIN.COM/IN/ADA-LOVELACE",
            "//www.linkedin.com/in/ada-lovelace",
            "https://www.linkedin.com//in//ada-lovelace//",
            "https://www.linkedin.com/in/ada-lovelace/en",
            "https://www.linkedin.com/in/ada-lovelace/recent-activity/all/",
            "https://www.linkedin.com./in/ada-lovelace",
        ] {
            assert_eq!(li(s), ada, "{s:?}");
        }
    }

    #[test]
    fn linkedin_company_pages_stay_company_pages() {
        let acme = Some("https://www.linkedin.com/company/acme-corp".to_owned());
        assert_eq!(li("https://www.linkedin.com/company/acme-corp/"), acme);
        assert_eq!(li("linkedin.com/company/Acme-Corp/about/?viewAsMember=true"), acme);
        assert_eq!(li("https://www.linkedin.com/company/3m").as_deref(), Some("https://www.linkedin.com/company/3m"));
    }

    #[test]
    fn non_ascii_linkedin_slugs_survive_percent_encoded() {
        let canonical = Some("https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller".to_owned());
        assert_eq!(li("https://www.linkedin.com/in/jürgen-müller"), canonical);
        assert_eq!(li("https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller/"), canonical);
        assert_eq!(li("https://de.linkedin.com/in/J%c3%9crgen-M%C3%BCLLER"), canonical, "decoded, lower-cased");
        assert_eq!(
            li("linkedin.com/in/%E5%BC%A0%E4%BC%9F").as_deref(),
            Some("https://www.linkedin.com/in/%E5%BC%A0%E4%BC%9F")
        );
    }

    #[test]
    fn what_is_no_linkedin_profile_is_refused() {
        for s in [
            "",
            "   ",
            "ada-lovelace",
            "@ada",
            "https://www.linkedin.com/",
            "https://www.linkedin.com/in/",
            "https://www.linkedin.com/in//",
            "https://www.linkedin.com/in/---",
            "https://www.linkedin.com/posts/ada-lovelace_analytical-engine-activity-1234",
            "https://www.linkedin.com/feed/update/urn:li:activity:1234/",
            "https://www.linkedin.com/jobs/view/1234",
            "https://www.linkedin.com/school/oxford",
            "https://www.linkedin.com/pub/dir/ada/lovelace",
            "https://www.linkedin.com/in/ada%2Flovelace",
            "https://www.linkedin.com/in/ada%20lovelace",
            "https://www.linkedin.com/in/ada%FF",
            "https://www.linkedin.com/in/ada lovelace",
            "https://linkedin.example.com/in/ada",
            "https://notlinkedin.com/in/ada",
            "https://www.linkedin.com.evil.io/in/ada",
            "https://www.linkedin.com@evil.io/in/ada",
            "https://user@www.linkedin.com/in/ada",
            "https://www.linkedin.com:8443/in/ada",
            "ftp://www.linkedin.com/in/ada",
            "javascript:alert(1)//linkedin.com/in/ada",
            "https://lnkd.in/abc123",
            "https://help.linkedin.com/in/ada",
            "https://x.com/ada",
        ] {
            assert_eq!(li(s), None, "{s:?}");
        }
        let long = format!("https://www.linkedin.com/in/{}", "a".repeat(101));
        assert_eq!(li(&long), None);
    }

    #[test]
    fn x_handles_and_urls_in_every_common_spelling_become_one_url() {
        let ada = Some("https://x.com/ada_lovelace".to_owned());
        for s in [
            "https://x.com/ada_lovelace",
            "@ada_lovelace",
            " @Ada_Lovelace ",
            "ada_lovelace",
            "ADA_LOVELACE",
            "x.com/ada_lovelace",
            "https://twitter.com/Ada_Lovelace",
            "http://www.twitter.com/ada_lovelace/",
            "https://mobile.twitter.com/ada_lovelace?lang=en",
            "https://x.com/ada_lovelace?s=21&t=abc",
            "https://twitter.com/#!/ada_lovelace",
            "https://www.x.com/ada_lovelace/media",
            "https://x.com/ada_lovelace/with_replies",
            "twitter.com/ada_lovelace#top",
        ] {
            assert_eq!(x(s), ada, "{s:?}");
        }
    }

    #[test]
    fn what_is_no_x_profile_is_refused() {
        for s in [
            "",
            "@",
            " @ ",
            "https://x.com/",
            "https://x.com/home",
            "https://x.com/search?q=ada",
            "https://twitter.com/intent/tweet?text=hi",
            "https://x.com/i/flow/login",
            "https://x.com/explore",
            "@home",
            "https://x.com/ada_lovelace/status/1234567890",
            "ada lovelace",
            "@ada-lovelace",
            "a_handle_longer_than_fifteen",
            "https://x.com/ada%20lovelace",
            "https://help.x.com/en/using-x",
            "https://api.twitter.com/ada",
            "https://t.co/abc",
            "https://xx.com/ada",
            "https://x.com.evil.io/ada",
            "https://www.linkedin.com/in/ada",
            "mailto:ada@x.com",
        ] {
            assert_eq!(x(s), None, "{s:?}");
        }
    }

    #[test]
    fn canonical_values_normalize_to_themselves() {
        for s in [
            "https://www.linkedin.com/in/ada-lovelace",
            "https://www.linkedin.com/company/acme-corp",
            "https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller",
        ] {
            assert_eq!(li(s).as_deref(), Some(s));
        }
        assert_eq!(x("https://x.com/ada_lovelace").as_deref(), Some("https://x.com/ada_lovelace"));
    }
}
