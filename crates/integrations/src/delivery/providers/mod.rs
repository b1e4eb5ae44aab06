//! One module per destination kind: build the request from the lead, send it, and read
//! the answer in that provider's documented terms.

pub(crate) mod hubspot;
pub(crate) mod salesforce;
pub(crate) mod slack;
pub(crate) mod webhook;

use crate::delivery::http::truncate;

/// `METHOD target` then the body, bounded. Callers pass a target without credentials.
pub(crate) fn request_excerpt(method: &str, target: &str, extra: &[(&str, &str)], body: &[u8], max: usize) -> String {
    let mut text = format!("{method} {target}\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(body));
    truncate(&text, max)
}

/// A short, bounded summary for a reason or error line.
pub(crate) fn summary(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() { "(empty body)".to_owned() } else { truncate(&one_line, 300) }
}
