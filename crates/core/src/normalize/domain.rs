//! Website / host → registrable domain, via the Public Suffix List (`psl`).

/// Registrable domain ("eTLD+1") of a website address or bare host.
///
/// Accepts "https://www.Example.co.uk/path", "example.com",
/// "www.example.com/", "//cdn.example.com", "example.com:8080",
/// "user@example.com" (the part after the last `@` of the authority is used).
/// The scheme (anything before `://`), user info, port, path, query and
/// fragment are dropped, then [`registrable_domain`] is applied.
///
/// Returns `None` for blank input, inputs with inner whitespace, IP
/// addresses, hosts with invalid characters, hosts whose public suffix is not
/// on the list (e.g. "intranet", "acme.local", "acme.con") and bare public
/// suffixes ("co.uk").
pub fn domain_of_url(raw: &str) -> Option<String> {
    let s = raw.trim();
    let after_scheme = match s.find("://") {
        Some(i) => &s[i + 3..],
        None => s.strip_prefix("//").unwrap_or(s),
    };
    let authority_end = after_scheme.find(['/', '?', '#', '\\']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let host_port = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    if host_port.starts_with('[') {
        return None; // IPv6 literal
    }
    let host = match host_port.rfind(':') {
        Some(i) => {
            let port = &host_port[i + 1..];
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &host_port[..i]
        }
        None => host_port,
    };
    registrable_domain(host)
}

/// Registrable domain of a host name: "www.example.co.uk" → "example.co.uk",
/// "Example.COM." → "example.com", "blog.acme.github.io" → "acme.github.io"
/// (private-section suffixes such as github.io count as public suffixes).
///
/// The host is trimmed and lower-cased and one trailing dot is removed.
/// Labels must be 1–63 bytes of letters, digits or `-` (not at either end);
/// non-ASCII letters are allowed (the list carries both Unicode and punycode
/// forms), the whole host at most 253 bytes.
/// Returns `None` for anything else, for hosts whose suffix is not on the
/// list and for bare public suffixes.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim();
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let lower = host.to_lowercase();
    if lower.len() > 253 || !lower.split('.').all(valid_label) {
        return None;
    }
    let len = known_registrable_len(&lower)?;
    let bytes = lower.as_bytes().get(lower.len().checked_sub(len)?..)?;
    let last_label_numeric = lower.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if last_label_numeric {
        return None;
    }
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// Length in bytes of the registrable domain at the end of `host` (already
/// lower-cased), when its public suffix is on the list. The only call into
/// `psl`, whose generated lookup is generic and so is compiled in this crate:
/// one instantiation keeps the build time down.
#[inline(never)]
pub(crate) fn known_registrable_len(host: &str) -> Option<usize> {
    let domain = psl::domain(host.as_bytes())?;
    domain.suffix().is_known().then(|| domain.as_bytes().len())
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<String> {
        domain_of_url(s)
    }

    #[test]
    fn urls() {
        assert_eq!(d("https://www.Example.co.uk/path").as_deref(), Some("example.co.uk"));
        assert_eq!(d("example.com").as_deref(), Some("example.com"));
        assert_eq!(d("www.example.com/").as_deref(), Some("example.com"));
        assert_eq!(d("  HTTP://WWW.EXAMPLE.COM:8080/a?b#c ").as_deref(), Some("example.com"));
        assert_eq!(d("//cdn.example.com/x.js").as_deref(), Some("example.com"));
        assert_eq!(d("https://user:pw@shop.example.de").as_deref(), Some("example.de"));
        assert_eq!(d("jane@acme.io").as_deref(), Some("acme.io"));
        assert_eq!(d("example.com.").as_deref(), Some("example.com"));
        assert_eq!(d("example.com?utm=1").as_deref(), Some("example.com"));
        assert_eq!(d("a.b.c.example.com.au").as_deref(), Some("example.com.au"));
        assert_eq!(d("https://münchen.de/").as_deref(), Some("münchen.de"));
        assert_eq!(d("http://xn--mnchen-3ya.de").as_deref(), Some("xn--mnchen-3ya.de"));
        assert_eq!(d("blog.acme.github.io").as_deref(), Some("acme.github.io"));
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "   ",
            "co.uk",
            "com",
            "localhost",
            "acme.local",
            "192.168.0.1",
            "http://[::1]/",
            "exa mple.com",
            "example..com",
            "-example.com",
            "exam_ple.com",
            "example.com:http",
            "https://",
            "mailto:",
        ] {
            assert_eq!(d(s), None, "{s:?}");
        }
    }

    #[test]
    fn registrable() {
        assert_eq!(registrable_domain("www.example.co.uk").as_deref(), Some("example.co.uk"));
        assert_eq!(registrable_domain("Example.COM.").as_deref(), Some("example.com"));
        assert_eq!(registrable_domain("example.com/path"), None);
        assert_eq!(registrable_domain("co.uk"), None);
    }
}
