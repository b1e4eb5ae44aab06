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

/// [`request_excerpt`] followed by what the mapping left out (`notes`), which the bound
/// never cuts: the body gives way first. Each note is also logged, by count only (a
/// note names a rep, the log names no person).
pub(crate) fn noted_excerpt(
    method: &str,
    target: &str,
    body: &[u8],
    notes: &[String],
    ctx: &crate::delivery::client::Ctx<'_>,
) -> String {
    let max = ctx.settings.max_excerpt_bytes;
    if notes.is_empty() {
        return request_excerpt(method, target, &[], body, max);
    }
    tracing::info!(
        delivery_id = %ctx.delivery.id,
        destination = %ctx.delivery.destination,
        left_out = notes.len(),
        "mapped fields left out of the record; see the attempt's request excerpt"
    );
    let tail: String = notes.iter().map(|n| format!("\n# not sent: {n}")).collect();
    let tail = truncate(&tail, max / 2);
    let head = request_excerpt(method, target, &[], body, max.saturating_sub(tail.len()));
    format!("{head}\n{tail}")
}

/// A short, bounded summary for a reason or error line.
pub(crate) fn summary(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() { "(empty body)".to_owned() } else { truncate(&one_line, 300) }
}
