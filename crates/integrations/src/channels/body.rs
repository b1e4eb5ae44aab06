//! Body decoding: JSON, `application/x-www-form-urlencoded` and `multipart/form-data`.
//!
//! Form bodies become a JSON object of strings; a name sent more than once becomes an
//! array of its values, in order. Multipart is decoded here (text parts only; a file part
//! keeps its file name, not its bytes) because pulling in an async multipart crate for
//! two adapters is not worth its weight.

use crate::channels::HookError;
use serde_json::{Map, Value};

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY: usize = 1 << 20;

pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, HookError> {
    match json_value(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(HookError::Malformed("expected a JSON object".into())),
    }
}

pub fn json_value(body: &[u8]) -> Result<Value, HookError> {
    if body.len() > MAX_BODY {
        return Err(HookError::Malformed("body too large".into()));
    }
    serde_json::from_slice(body).map_err(|e| HookError::Malformed(format!("invalid JSON: {e}")))
}

fn push(map: &mut Map<String, Value>, key: String, value: String) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Value::String(value));
        }
        Some(Value::Array(a)) => a.push(Value::String(value)),
        Some(other) => {
            let first = other.take();
            *other = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

pub fn urlencoded(body: &[u8]) -> Result<Map<String, Value>, HookError> {
    if body.len() > MAX_BODY {
        return Err(HookError::Malformed("body too large".into()));
    }
    let mut map = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        push(&mut map, k.into_owned(), v.into_owned());
    }
    Ok(map)
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// The value of `param="…"` in a Content-Disposition header.
fn disposition_param(header: &str, param: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(param).then(|| v.trim().trim_matches('"').to_owned())
    })
}

pub fn multipart(body: &[u8], content_type: &str) -> Result<Map<String, Value>, HookError> {
    let mut map = Map::new();
    for part in multipart_parts(body, content_type, MAX_BODY)? {
        let value = match part.filename {
            Some(file) => file,
            None => String::from_utf8_lossy(part.data).into_owned(),
        };
        push(&mut map, part.name, value);
    }
    Ok(map)
}

/// One named part of a `multipart/form-data` body.
#[derive(Debug)]
pub struct Part<'a> {
    pub name: String,
    /// Set for a file part.
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

/// The named parts of a `multipart/form-data` body no larger than `limit`, in order.
pub fn multipart_parts<'a>(body: &'a [u8], content_type: &str, limit: usize) -> Result<Vec<Part<'a>>, HookError> {
    if body.len() > limit {
        return Err(HookError::Malformed("body too large".into()));
    }
    let b = boundary(content_type).filter(|b| !b.is_empty() && b.len() <= 200);
    let b = b.ok_or_else(|| HookError::Malformed("multipart body without boundary".into()))?;
    let delim = format!("--{b}").into_bytes();
    let next_delim = [b"\r\n".as_slice(), &delim].concat();
    let mut parts = Vec::new();
    let mut pos = find(body, &delim, 0).ok_or_else(|| HookError::Malformed("multipart boundary not found".into()))?;
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            break;
        }
        // The part starts after the delimiter line's CRLF.
        let Some(head_start) = find(body, b"\r\n", after).map(|i| i + 2) else { break };
        let Some(head_end) = find(body, b"\r\n\r\n", head_start) else {
            return Err(HookError::Malformed("multipart part without header end".into()));
        };
        let Some(next) = find(body, &next_delim, head_end + 4) else {
            return Err(HookError::Malformed("multipart part not terminated".into()));
        };
        let headers = String::from_utf8_lossy(&body[head_start..head_end]);
        let header = |name: &str| {
            headers
                .split("\r\n")
                .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.trim().to_owned())
        };
        if let Some(d) = header("content-disposition")
            && let Some(name) = disposition_param(&d, "name")
        {
            parts.push(Part {
                name,
                filename: disposition_param(&d, "filename"),
                content_type: header("content-type"),
                data: &body[head_end + 4..next],
            });
        }
        pos = next + 2;
    }
    Ok(parts)
}

/// Decodes a form post by its content type (urlencoded when none is given).
pub fn form(body: &[u8], content_type: Option<&str>) -> Result<Map<String, Value>, HookError> {
    let ct = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => multipart(body, ct),
        "application/json" => json_object(body),
        _ => urlencoded(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_form_names_become_arrays() {
        let m = urlencoded(b"a=1&b=x+y&a=2").unwrap();
        assert_eq!(m["a"], serde_json::json!(["1", "2"]));
        assert_eq!(m["b"], "x y");
    }

    #[test]
    fn multipart_text_and_file_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"formID\"\r\n\r\n123\r\n--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"cv.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--XyZ--\r\n";
        let m = multipart(body, "multipart/form-data; boundary=XyZ").unwrap();
        assert_eq!(m["formID"], "123");
        assert_eq!(m["up"], "cv.pdf");
    }

    #[test]
    fn multipart_without_boundary_is_malformed() {
        assert!(multipart(b"x", "multipart/form-data").is_err());
        assert!(
            multipart(b"--a\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv", "multipart/form-data; boundary=a")
                .is_err()
        );
    }
}
