//! Free-mail and disposable-mail domain flags (vendored lists, see
//! `data/PROVENANCE.md`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

static FREE_MAIL: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| load(include_str!("../../data/normalize/free_mail_domains.txt")));
static DISPOSABLE: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| load(include_str!("../../data/normalize/disposable_domains.txt")));

fn load(text: &'static str) -> HashSet<&'static str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// `true` when the domain belongs to a free consumer mailbox provider
/// (gmail.com, yahoo.co.uk, gmx.de, qq.com, …).
///
/// Disposable (throw-away) domains are **not** free-mail here: the free list
/// was vendored minus every domain on the disposable list; test those with
/// [`is_disposable`]. A business address is `!is_free_mail(d) && !is_disposable(d)`.
///
/// Input handling (shared with [`is_disposable`]): trimmed, lower-cased, one
/// trailing dot removed; an e-mail address is accepted (the part after the
/// last `@` is used). Sub-domains count: a domain matches when it or any
/// parent domain down to (and including) its registrable domain is listed, so
/// "mail.yahoo.co.uk" matches via "yahoo.co.uk"; a bare public suffix
/// ("co.uk") is never looked up. For hosts whose suffix is unknown to the
/// Public Suffix List only the exact name is checked.
pub fn is_free_mail(domain: &str) -> bool {
    lookup(&FREE_MAIL, domain)
}

/// `true` when the domain is a known disposable / temporary mail domain
/// (mailinator.com, yopmail.com, 10minutemail.com, …). Same input handling
/// and sub-domain rule as [`is_free_mail`].
pub fn is_disposable(domain: &str) -> bool {
    lookup(&DISPOSABLE, domain)
}

fn lookup(set: &HashSet<&'static str>, raw: &str) -> bool {
    let s = raw.trim();
    let s = match s.rfind('@') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return false;
    }
    let host: Cow<'_, str> = if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    };
    if set.contains(host.as_ref()) {
        return true;
    }
    // Walk up the parents, stopping at the registrable domain.
    let Some(reg_len) = crate::normalize::domain::known_registrable_len(&host) else {
        return false;
    };
    let mut rest: &str = host.as_ref();
    while rest.len() > reg_len {
        match rest.find('.') {
            Some(i) => rest = &rest[i + 1..],
            None => return false,
        }
        if rest.len() < reg_len {
            return false;
        }
        if set.contains(rest) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free() {
        for d in [
            "gmail.com",
            "GMAIL.COM",
            " gmail.com. ",
            "yahoo.co.uk",
            "mail.yahoo.co.uk",
            "jane@Hotmail.com",
            "gmx.de",
            "web.de",
            "qq.com",
            "icloud.com",
            "proton.me",
        ] {
            assert!(is_free_mail(d), "{d}");
        }
        for d in ["acme.com", "co.uk", "", "com", "mailinator.com", "notgmail.com"] {
            assert!(!is_free_mail(d), "{d}");
        }
    }

    #[test]
    fn disposable() {
        for d in ["mailinator.com", "yopmail.com", "foo.mailinator.com", "x@10minutemail.com", "guerrillamail.com"] {
            assert!(is_disposable(d), "{d}");
        }
        for d in ["gmail.com", "acme.com", "", "com", "dynv6.net"] {
            assert!(!is_disposable(d), "{d}");
        }
    }

    #[test]
    fn lists_are_lowercase_and_disjoint() {
        assert!(FREE_MAIL.len() > 4000);
        assert!(DISPOSABLE.len() > 9000);
        for d in FREE_MAIL.iter().chain(DISPOSABLE.iter()) {
            assert_eq!(*d, d.to_ascii_lowercase());
        }
        assert!(FREE_MAIL.is_disjoint(&DISPOSABLE));
    }
}
