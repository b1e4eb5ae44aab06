//! Spam checks for plain web forms that do not annoy people: no captcha, only signals a
//! person never produces. A honeypot field a person cannot see, a page-load time that is
//! too recent (set by `assets/embed.js`; absent means not judged), and names that carry
//! links or markup. Spam is reported with its reason and is never a lead.

use crate::channels::standard::{normalize_key, synonym, text};
use serde_json::{Map, Value};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpamRules {
    /// Hidden field that must stay empty.
    pub honeypot_field: String,
    /// Field holding the page-load time in ms since the epoch.
    pub loaded_at_field: String,
    /// A submit sooner than this after page load is a bot.
    pub min_fill_ms: i64,
    /// Reject names (first, last, company) containing URLs or HTML.
    pub check_names: bool,
}

impl Default for SpamRules {
    fn default() -> Self {
        Self { honeypot_field: "_lf_hp".into(), loaded_at_field: "_lf_t".into(), min_fill_ms: 3_000, check_names: true }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpamReason {
    Honeypot,
    TooFast { elapsed_ms: i64 },
    LinkInName { field: String },
    HtmlInName { field: String },
}

impl SpamReason {
    /// A stable code for logs and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            SpamReason::Honeypot => "honeypot",
            SpamReason::TooFast { .. } => "too_fast",
            SpamReason::LinkInName { .. } => "link_in_name",
            SpamReason::HtmlInName { .. } => "html_in_name",
        }
    }
}

impl std::fmt::Display for SpamReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpamReason::Honeypot => write!(f, "honeypot field was filled"),
            SpamReason::TooFast { elapsed_ms } => write!(f, "submitted {elapsed_ms} ms after page load"),
            SpamReason::LinkInName { field } => write!(f, "{field} contains a link"),
            SpamReason::HtmlInName { field } => write!(f, "{field} contains HTML"),
        }
    }
}

fn has_link(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.contains("://") || l.contains("www.") || l.contains("[url") || l.contains("href=")
}

fn has_html(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
        || s.to_ascii_lowercase().contains("&lt;")
}

/// Checks one decoded form; `None` means it looks like a person.
pub fn check_spam(form: &Map<String, Value>, rules: &SpamRules, now: OffsetDateTime) -> Option<SpamReason> {
    if form.get(&rules.honeypot_field).and_then(text).is_some() {
        return Some(SpamReason::Honeypot);
    }
    // Unreadable or future times (a visitor's clock may be off) are not judged.
    if let Some(loaded) = form.get(&rules.loaded_at_field).and_then(text).and_then(|t| t.parse::<i64>().ok()) {
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let elapsed_ms = now_ms.saturating_sub(loaded);
        if (0..rules.min_fill_ms).contains(&elapsed_ms) {
            return Some(SpamReason::TooFast { elapsed_ms });
        }
    }
    if rules.check_names {
        for (key, value) in form {
            let norm = normalize_key(key);
            let is_name = matches!(synonym(&norm), Some("first_name" | "last_name" | "company"))
                || matches!(norm.as_str(), "name" | "full_name" | "fullname" | "your_name");
            let Some(v) = is_name.then(|| text(value)).flatten() else { continue };
            if has_html(&v) {
                return Some(SpamReason::HtmlInName { field: key.clone() });
            }
            if has_link(&v) {
                return Some(SpamReason::LinkInName { field: key.clone() });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap()
    }

    #[test]
    fn a_person_passes() {
        let f = form(json!({"first_name": "Ada", "company": "Analytical Engines", "_lf_hp": "", "_lf_t": "1000"}));
        assert_eq!(check_spam(&f, &SpamRules::default(), at(20_000)), None);
    }

    #[test]
    fn filled_honeypot_is_spam() {
        let f = form(json!({"first_name": "Ada", "_lf_hp": "x"}));
        assert_eq!(check_spam(&f, &SpamRules::default(), at(0)), Some(SpamReason::Honeypot));
    }

    #[test]
    fn instant_submit_is_spam_but_missing_or_future_time_is_not_judged() {
        let rules = SpamRules::default();
        assert_eq!(
            check_spam(&form(json!({"_lf_t": "10000"})), &rules, at(11_000)),
            Some(SpamReason::TooFast { elapsed_ms: 1000 })
        );
        assert_eq!(check_spam(&form(json!({})), &rules, at(11_000)), None);
        assert_eq!(check_spam(&form(json!({"_lf_t": "99999"})), &rules, at(11_000)), None);
        assert_eq!(check_spam(&form(json!({"_lf_t": "soon"})), &rules, at(11_000)), None);
    }

    #[test]
    fn links_or_html_in_names_are_spam() {
        let rules = SpamRules::default();
        let now = at(0);
        assert_eq!(
            check_spam(&form(json!({"last_name": "buy at https://x.example"})), &rules, now),
            Some(SpamReason::LinkInName { field: "last_name".into() })
        );
        assert_eq!(
            check_spam(&form(json!({"company": "<a href=x>cheap</a>"})), &rules, now),
            Some(SpamReason::HtmlInName { field: "company".into() })
        );
        // Ordinary punctuation in names is fine; links elsewhere (website) are fine.
        assert_eq!(check_spam(&form(json!({"company": "AT&T <3", "URL": "https://ok.example"})), &rules, now), None);
    }
}
