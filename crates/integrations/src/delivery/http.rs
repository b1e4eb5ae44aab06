//! HTTP plumbing shared by the providers: bounded excerpts of what went over the wire,
//! `Retry-After`, and the default reading of a status code.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::{Duration, SystemTime};

/// What a provider made of one exchange, before the retry schedule is applied.
#[derive(Debug)]
pub(crate) enum Verdict {
    Delivered,
    /// Worth another try; `retry_after` is what the server asked for, if anything.
    Retryable {
        retry_after: Option<Duration>,
        error: String,
    },
    Permanent {
        reason: String,
    },
}

/// One exchange as a provider reports it.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub status: Option<u16>,
    pub verdict: Verdict,
    pub request_excerpt: Option<String>,
    pub response_excerpt: Option<String>,
}

/// The default reading of a status, after the Standard Webhooks guidance: 2xx is
/// success; 408, 425, 429 and 5xx are worth retrying; redirects are not followed
/// (update the URL instead) and, like any other 4xx (410 Gone included), go to the
/// dead letters.
pub(crate) fn classify_status(status: u16, headers: &HeaderMap, summary: String) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 | 500..=599 => Verdict::Retryable {
            retry_after: retry_after(headers, SystemTime::now()),
            error: format!("HTTP {status}: {summary}"),
        },
        _ => Verdict::Permanent { reason: format!("HTTP {status}: {summary}") },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated]", &text[..end])
}

/// Reads at most `max` bytes of the body: a huge or endless answer costs no more.
pub(crate) async fn read_excerpt(mut response: reqwest::Response, max: usize) -> String {
    let mut buf: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max.saturating_sub(buf.len());
                if chunk.len() > room {
                    buf.extend_from_slice(&chunk[..room]);
                    cut = true;
                    break;
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    if cut { format!("{text}…[truncated]") } else { text }
}

/// Describes a transport failure without the URL (which may carry a credential).
pub(crate) fn transport_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "failed reading the response"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind}: {detail}") }
}

/// A response as far as the providers need it.
#[derive(Debug)]
pub(crate) struct Received {
    pub status: u16,
    pub headers: HeaderMap,
    /// At most the configured excerpt size.
    pub body: String,
}

/// Sends and reads a bounded excerpt of the answer; `Err` describes a transport failure.
pub(crate) async fn send(request: reqwest::RequestBuilder, max: usize) -> Result<Received, String> {
    let response = request.send().await.map_err(|e| transport_error(&e))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_excerpt(response, max).await;
    Ok(Received { status, headers, body })
}

/// An exchange that never got an answer.
pub(crate) fn unanswered(request_excerpt: String, error: String) -> Exchange {
    Exchange {
        status: None,
        verdict: Verdict::Retryable { retry_after: None, error },
        request_excerpt: Some(request_excerpt),
        response_excerpt: None,
    }
}

/// `scheme://host[:port]` and nothing else: for URLs whose path or query may hold a
/// credential (incoming-webhook URLs do).
pub(crate) fn origin_only(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?"));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str("/…");
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after(&headers("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:30:00 GMT"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn statuses_read_as_the_specification_suggests() {
        let h = HeaderMap::new();
        assert!(matches!(classify_status(204, &h, String::new()), Verdict::Delivered));
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(matches!(classify_status(s, &h, String::new()), Verdict::Retryable { .. }), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 422] {
            assert!(matches!(classify_status(s, &h, String::new()), Verdict::Permanent { .. }), "{s}");
        }
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…[truncated]");
        assert_eq!(truncate("hello", 5), "hello");
    }
}
