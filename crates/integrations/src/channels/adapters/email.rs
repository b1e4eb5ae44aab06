//! Inquiries by email: directories, marketplaces and review sites forward them, or a
//! contact-form mailer sends them.
//!
//! Four ways in, told apart by content type and shape unless the source pins one with
//! `email_provider`:
//! * **raw**: the message itself, `Content-Type: message/rfc822`, parsed with
//!   `mail-parser`. Nothing signs it; with a secret the post must carry it (below).
//! * **Mailgun** routes (`forward()`): a form post (urlencoded, or multipart with
//!   attachments) with `from`, `subject`, `body-plain`, `body-html`, `message-headers` (a
//!   JSON list of `[name, value]`), `Message-Id`, `attachment-N` files, or `body-mime`
//!   for a route whose URL asks for MIME. Mailgun signs: `signature` is hex
//!   HMAC-SHA256(signing key, `timestamp` + `token`), and a timestamp more than five
//!   minutes away is refused as stale.
//! * **SendGrid** Inbound Parse: multipart with `from`, `to`, `subject`, `text`, `html`,
//!   `headers` (the raw header block), `attachment-info`, files; or `email` holding the
//!   raw message when "POST the raw, full MIME message" is on. SendGrid does not sign.
//! * **Postmark** inbound: JSON with `FromFull`, `ReplyTo`, `Subject`, `TextBody`,
//!   `HtmlBody`, `Headers`, `Attachments` (base64 `Content`). Postmark does not sign; its
//!   webhook URL carries basic-auth credentials.
//!
//! For the providers that do not sign, a configured secret is a shared key the post must
//! carry: `?key=SECRET` in the URL, or the password of HTTP Basic auth
//! (`https://any:SECRET@host/v1/hooks/NAME`, which Postmark and SendGrid both send as an
//! `Authorization` header). Without a secret such posts are accepted as they come.
//!
//! `handle` reduces every way in to one stored shape (`email/1`): `provider`,
//! `message_id`, `from` and `reply_to` (`{address, name}`), `to`, `subject`, `date`,
//! `text` (the text part; the HTML part as text when there is none, `text_from_html`
//! says so) and `attachments` (`name`, `content_type`, `size`; their bytes as
//! `content_base64` only when the source sets `keep_attachments`). The message as
//! received is not kept: it holds the attachments a lead must not carry by default.
//!
//! `standardize` reads the lead with the source's extraction rules (labels and patterns
//! over the text, `[sources.extract]`, default English and German labels): the values it
//! finds come first; then the sender: the From, or its Reply-To when the From is a relay
//! (`no-reply@…`, `notifications@…`, or a domain in `relay_domains`), whose display name
//! gives the first and last name. The subject, the text (`message`) and the attachment
//! list are kept in custom (the text as `email_text` when a rule filled `message`). A
//! message with no sender address (neither From nor Reply-To) is refused by
//! `standardize` naming `from`, so it is quarantined, not lost.
//! Key: `email:{Message-ID}`, else a digest of the stored shape.

use super::{digest, item, one, require_post};
use crate::channels::standard::{Standard, split_name};
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use base64::Engine;
use leadflow_core::mapping::STANDARD_FIELDS;
use leadflow_core::source::inbound::{EmailProvider, EmailSettings, ExtractRule};
use mail_parser::decoders::html::html_to_text;
use mail_parser::{Address, Message, MessageParser, MimeHeaders};
use serde_json::{Map, Value, json};

/// The largest message this adapter reads, whatever the server's limit: the server's
/// per-source limit (10 MiB for email by default) refuses larger bodies first.
pub const MAX_MESSAGE: usize = 64 << 20;

/// The text kept from a message (and searched by the extraction rules): a forwarded
/// inquiry is a few kilobytes; a 10 MiB newsletter is not a lead's message.
const MAX_TEXT: usize = 256 << 10;

pub fn handle(req: &HookRequest, secret: Option<&str>, settings: &EmailSettings) -> Result<Handled, HookError> {
    require_post(req)?;
    if req.body.len() > MAX_MESSAGE {
        return Err(HookError::Malformed("body too large".into()));
    }
    let provider = match settings.provider {
        Some(p) => p,
        None => detect(req)?,
    };
    let mail = match provider {
        EmailProvider::Raw => {
            check_shared_key(req, secret)?;
            from_mime(req.body, "raw", settings)?
        }
        EmailProvider::Postmark => {
            check_shared_key(req, secret)?;
            from_postmark(req.body, settings)?
        }
        EmailProvider::Mailgun => {
            let form = Form::read(req)?;
            if let Some(secret) = secret.filter(|s| !s.is_empty()) {
                check_mailgun(&form, secret.as_bytes(), req)?;
            }
            from_mailgun(&form, settings)?
        }
        EmailProvider::Sendgrid => {
            check_shared_key(req, secret)?;
            let form = Form::read(req)?;
            from_sendgrid(&form, settings)?
        }
    };
    let key = match mail.get("message_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!("email:{id}"),
        _ => {
            let bytes = serde_json::to_vec(&mail).unwrap_or_default();
            format!("email:sha256:{}", digest(&[&bytes]))
        }
    };
    Ok(one(item(key, mail, false)))
}

/// The provider, from the content type and the fields present.
fn detect(req: &HookRequest) -> Result<EmailProvider, HookError> {
    let mime = media_type(req.content_type);
    match mime.as_str() {
        "" | "message/rfc822" | "text/plain" => return Ok(EmailProvider::Raw),
        "application/json" => return Ok(EmailProvider::Postmark),
        "multipart/form-data" | "application/x-www-form-urlencoded" => {}
        other => {
            return Err(HookError::Malformed(format!(
                "an email source takes message/rfc822, a provider's form post or Postmark's JSON, not {other}"
            )));
        }
    }
    let form = Form::read(req)?;
    let has = |k: &str| form.text(k).is_some();
    if has("signature") && has("token") || has("body-plain") || has("body-mime") {
        Ok(EmailProvider::Mailgun)
    } else if has("email") || has("envelope") || has("charsets") || has("headers") {
        Ok(EmailProvider::Sendgrid)
    } else {
        Err(HookError::Malformed("not a Mailgun or SendGrid inbound post".into()))
    }
}

fn media_type(content_type: Option<&str>) -> String {
    content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// The shared key of a provider that does not sign: `?key=` or the Basic password.
fn check_shared_key(req: &HookRequest, secret: Option<&str>) -> Result<(), HookError> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else { return Ok(()) };
    let given = req.query_param("key").or_else(|| basic_password(req));
    match given {
        Some(k) if sig::ct_eq(secret.as_bytes(), k.as_bytes()) => Ok(()),
        Some(_) => Err(HookError::Unauthorized("wrong key".into())),
        None => Err(HookError::Unauthorized("missing key: ?key= or basic auth".into())),
    }
}

fn basic_password(req: &HookRequest) -> Option<String> {
    let value = req.header("authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, password)| password.to_owned())
}

fn check_mailgun(form: &Form, key: &[u8], req: &HookRequest) -> Result<(), HookError> {
    let field = |k: &str| form.text(k).ok_or_else(|| HookError::Unauthorized(format!("missing {k}")));
    let (timestamp, token, signature) = (field("timestamp")?, field("token")?, field("signature")?);
    if !sig::verify_hex(&sig::hmac_sha256(key, &[timestamp.as_bytes(), token.as_bytes()]), &signature) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    sig::check_fresh(&timestamp, false, req.now)
}

/// A form post's text fields and files.
struct Form {
    fields: Map<String, Value>,
    files: Vec<Attachment>,
}

impl Form {
    fn read(req: &HookRequest) -> Result<Self, HookError> {
        let ct = req.content_type.unwrap_or("application/x-www-form-urlencoded");
        if media_type(Some(ct)) != "multipart/form-data" {
            let mut fields = Map::new();
            for (k, v) in form_urlencoded::parse(req.body) {
                fields.entry(k.into_owned()).or_insert(Value::String(v.into_owned()));
            }
            return Ok(Self { fields, files: Vec::new() });
        }
        let mut fields = Map::new();
        let mut files = Vec::new();
        for part in body::multipart_parts(req.body, ct, MAX_MESSAGE)? {
            match part.filename {
                Some(name) => files.push(Attachment {
                    name: Some(name),
                    content_type: part.content_type,
                    data: part.data.to_vec(),
                }),
                None => {
                    let text = String::from_utf8_lossy(part.data).into_owned();
                    fields.entry(part.name).or_insert(Value::String(text));
                }
            }
        }
        Ok(Self { fields, files })
    }

    /// A non-blank text field; names are matched exactly, then case-insensitively
    /// (Mailgun sends both `from` and `From`).
    fn text(&self, key: &str) -> Option<String> {
        let v = self
            .fields
            .get(key)
            .or_else(|| self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v));
        v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    }
}

struct Attachment {
    name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

impl Attachment {
    fn to_json(&self, keep: bool) -> Value {
        let mut a = Map::new();
        a.insert("name".into(), self.name.clone().map_or(Value::Null, Value::String));
        a.insert("content_type".into(), self.content_type.clone().map_or(Value::Null, Value::String));
        a.insert("size".into(), json!(self.data.len()));
        if keep {
            a.insert("content_base64".into(), json!(base64::engine::general_purpose::STANDARD.encode(&self.data)));
        }
        Value::Object(a)
    }
}

/// The stored shape's parts, filled by each way in.
#[derive(Default)]
struct Mail {
    message_id: Option<String>,
    from: Option<(String, Option<String>)>,
    reply_to: Option<(String, Option<String>)>,
    to: Vec<String>,
    subject: Option<String>,
    date: Option<String>,
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<Value>,
}

impl Mail {
    fn into_payload(self, provider: &str) -> Map<String, Value> {
        let person = |p: Option<(String, Option<String>)>| {
            p.map_or(Value::Null, |(address, name)| json!({"address": address, "name": name}))
        };
        let text = self.text.filter(|t| !t.trim().is_empty());
        let from_html = text.is_none() && self.html.is_some();
        let text = text.or_else(|| self.html.as_deref().map(html_to_text)).unwrap_or_default();
        let mut m = Map::new();
        m.insert("provider".into(), json!(provider));
        m.insert("message_id".into(), self.message_id.map_or(Value::Null, Value::String));
        m.insert("from".into(), person(self.from));
        m.insert("reply_to".into(), person(self.reply_to));
        m.insert("to".into(), json!(self.to));
        m.insert("subject".into(), self.subject.map_or(Value::Null, Value::String));
        m.insert("date".into(), self.date.map_or(Value::Null, Value::String));
        m.insert("text".into(), Value::String(truncate(text, MAX_TEXT)));
        m.insert("text_from_html".into(), Value::Bool(from_html));
        m.insert("attachments".into(), Value::Array(self.attachments));
        m
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn first_addr(a: Option<&Address>) -> Option<(String, Option<String>)> {
    let addr = a?.iter().find(|a| a.address().is_some_and(|x| x.contains('@')))?;
    let address = addr.address()?.trim().to_owned();
    let name = addr.name().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
    Some((address, name))
}

fn all_addrs(a: Option<&Address>) -> Vec<String> {
    a.map(|a| a.iter().filter_map(|x| x.address()).map(|x| x.trim().to_owned()).collect()).unwrap_or_default()
}

fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= 500).then(|| id.to_owned())
}

/// Parses a raw message; malformed when it has none of the headers every message has.
fn parse_mime(raw: &[u8]) -> Result<Message<'_>, HookError> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| HookError::Malformed("not an email message: no header found".into()))?;
    let looks_like_mail = msg.from().is_some()
        || msg.to().is_some()
        || msg.subject().is_some()
        || msg.date().is_some()
        || msg.message_id().is_some()
        || msg.reply_to().is_some();
    if !looks_like_mail {
        return Err(HookError::Malformed("not an email message: none of From, To, Subject, Date, Message-ID".into()));
    }
    Ok(msg)
}

fn from_mime(raw: &[u8], provider: &str, settings: &EmailSettings) -> Result<Map<String, Value>, HookError> {
    let msg = parse_mime(raw)?;
    let attachments = msg
        .attachments()
        .map(|part| {
            let content_type = part.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{sub}", ct.ctype()),
                None => ct.ctype().to_owned(),
            });
            Attachment { name: part.attachment_name().map(str::to_owned), content_type, data: part.contents().to_vec() }
                .to_json(settings.keep_attachments)
        })
        .collect();
    // `body_text` gives an HTML-only message's body as text already.
    let text_from_html = msg.text_body_count() == 0 && msg.html_body_count() > 0;
    let text = msg.body_text(0).map(|t| t.into_owned());
    let mail = Mail {
        message_id: msg.message_id().and_then(clean_id),
        from: first_addr(msg.from()),
        reply_to: first_addr(msg.reply_to()),
        to: all_addrs(msg.to()),
        subject: msg.subject().map(str::to_owned),
        date: msg.date().map(|d| d.to_rfc3339()),
        text,
        html: None,
        attachments,
    };
    let mut payload = mail.into_payload(provider);
    payload.insert("text_from_html".into(), Value::Bool(text_from_html));
    Ok(payload)
}

/// Addresses written as in a header (`"Bob" <bob@example.com>, eve@example.com`), read
/// by the MIME parser so quoting and encoded words are decoded as in a message.
fn header_addresses(value: &str) -> (Option<(String, Option<String>)>, Vec<String>) {
    let raw = format!("From: {}\r\n\r\n", value.replace(['\r', '\n'], " "));
    match MessageParser::default().parse_headers(raw.as_bytes()) {
        Some(msg) => (first_addr(msg.from()), all_addrs(msg.from())),
        None => (None, Vec::new()),
    }
}

fn header_address(value: Option<String>) -> Option<(String, Option<String>)> {
    header_addresses(&value?).0
}

fn from_mailgun(form: &Form, settings: &EmailSettings) -> Result<Map<String, Value>, HookError> {
    if let Some(mime) = form.text("body-mime") {
        return from_mime(mime.as_bytes(), "mailgun", settings);
    }
    // `message-headers`: a JSON list of [name, value] pairs, in order.
    let headers: Vec<(String, String)> = form
        .text("message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(&h).ok())
        .unwrap_or_default();
    let h = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let html = form.text("body-html").or_else(|| form.text("stripped-html"));
    let mail = Mail {
        message_id: form.text("Message-Id").or_else(|| h("Message-Id")).as_deref().and_then(clean_id),
        from: header_address(form.text("from").or_else(|| h("From"))).or_else(|| header_address(form.text("sender"))),
        reply_to: header_address(h("Reply-To")),
        to: header_addresses(&form.text("To").or_else(|| form.text("recipient")).unwrap_or_default()).1,
        subject: form.text("subject"),
        date: h("Date").or_else(|| form.text("Date")),
        text: form.text("body-plain"),
        html,
        attachments: form.files.iter().map(|a| a.to_json(settings.keep_attachments)).collect(),
    };
    Ok(mail.into_payload("mailgun"))
}

fn from_sendgrid(form: &Form, settings: &EmailSettings) -> Result<Map<String, Value>, HookError> {
    if let Some(raw) = form.text("email") {
        let mut payload = from_mime(raw.as_bytes(), "sendgrid", settings)?;
        if payload.get("attachments").and_then(Value::as_array).is_some_and(Vec::is_empty) && !form.files.is_empty() {
            let files = form.files.iter().map(|a| a.to_json(settings.keep_attachments)).collect();
            payload.insert("attachments".into(), Value::Array(files));
        }
        return Ok(payload);
    }
    // `headers` is the message's raw header block: Reply-To and Message-ID are there.
    let raw_headers = form.text("headers").map(|h| format!("{}\r\n\r\n", h.trim_end()));
    let parsed = raw_headers.as_deref().and_then(|h| MessageParser::default().parse_headers(h.as_bytes()));
    let from = header_address(form.text("from")).or_else(|| parsed.as_ref().and_then(|m| first_addr(m.from())));
    let mail = Mail {
        message_id: parsed.as_ref().and_then(|m| m.message_id()).and_then(clean_id),
        from,
        reply_to: parsed.as_ref().and_then(|m| first_addr(m.reply_to())),
        to: header_addresses(&form.text("to").unwrap_or_default()).1,
        subject: form.text("subject"),
        date: parsed.as_ref().and_then(|m| m.date()).map(|d| d.to_rfc3339()),
        text: form.text("text"),
        html: form.text("html"),
        attachments: form.files.iter().map(|a| a.to_json(settings.keep_attachments)).collect(),
    };
    Ok(mail.into_payload("sendgrid"))
}

fn from_postmark(raw: &[u8], settings: &EmailSettings) -> Result<Map<String, Value>, HookError> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| HookError::Malformed(format!("invalid JSON: {e}")))?;
    if !v.is_object() {
        return Err(HookError::Malformed("expected a JSON object".into()));
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned);
    let full = |o: &Value| {
        let address = o.get("Email").and_then(Value::as_str).map(str::trim).filter(|a| a.contains('@'))?;
        let name = o.get("Name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty());
        Some((address.to_owned(), name.map(str::to_owned)))
    };
    let headers = v.get("Headers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.get("Name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|h| h.get("Value").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let attachments = v
        .get("Attachments")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let content = a.get("Content").and_then(Value::as_str).unwrap_or_default();
            let data = base64::engine::general_purpose::STANDARD.decode(content.trim()).unwrap_or_default();
            let mut out = Attachment {
                name: a.get("Name").and_then(Value::as_str).map(str::to_owned),
                content_type: a.get("ContentType").and_then(Value::as_str).map(str::to_owned),
                data,
            }
            .to_json(settings.keep_attachments);
            // Postmark states the length; it wins over what decoding made of the content.
            if let (Some(n), Some(o)) = (a.get("ContentLength").and_then(Value::as_u64), out.as_object_mut()) {
                o.insert("size".into(), json!(n));
            }
            out
        })
        .collect();
    let to = match v.get("ToFull").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(full).map(|(a, _)| a).collect(),
        None => header_addresses(&s("To").unwrap_or_default()).1,
    };
    let mail = Mail {
        // The message's own id when Postmark passes the header, else Postmark's.
        message_id: header("Message-ID")
            .as_deref()
            .and_then(clean_id)
            .or_else(|| s("MessageID").map(|id| format!("postmark:{id}"))),
        from: v.get("FromFull").and_then(full).or_else(|| header_address(s("From"))),
        reply_to: header_address(s("ReplyTo")),
        to,
        subject: s("Subject"),
        date: s("Date"),
        text: s("TextBody"),
        html: s("HtmlBody"),
        attachments,
    };
    Ok(mail.into_payload("postmark"))
}

/// Local parts of the addresses that send on someone's behalf and read no answer.
const RELAY_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "notification",
    "notifications",
    "notify",
    "mailer",
    "mailer-daemon",
    "bounce",
    "bounces",
    "postmaster",
    "inquiries",
    "leads",
];

fn is_relay(address: &str, relay_domains: &[String]) -> bool {
    let lower = address.to_ascii_lowercase();
    let (local, domain) = lower.rsplit_once('@').unwrap_or((lower.as_str(), ""));
    let local = local.split('+').next().unwrap_or_default();
    RELAY_LOCAL_PARTS.contains(&local)
        || local.starts_with("noreply")
        || local.starts_with("no-reply")
        || relay_domains.iter().any(|d| domain == d || domain.ends_with(&format!(".{d}")))
}

fn person(payload: &Map<String, Value>, key: &str) -> Option<(String, Option<String>)> {
    let p = payload.get(key)?;
    let address = p.get("address").and_then(Value::as_str).map(str::trim).filter(|a| a.contains('@'))?;
    let name = p.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty() && !n.contains('@'));
    Some((address.to_owned(), name.map(str::to_owned)))
}

/// `Lovelace, Ada` → (`Ada`, `Lovelace`); otherwise the first word, then the rest.
fn split_display_name(name: &str) -> (String, String) {
    let name = name.trim().trim_matches('"').trim();
    match name.split_once(',') {
        Some((last, first)) if !first.trim().is_empty() && !last.trim().is_empty() => {
            (first.trim().to_owned(), last.trim().to_owned())
        }
        _ => {
            let (first, last) = split_name(name);
            (first.to_owned(), last.to_owned())
        }
    }
}

pub fn standardize(payload: &Map<String, Value>, settings: &EmailSettings) -> Result<Standard, HookError> {
    let from = person(payload, "from");
    let reply_to = person(payload, "reply_to");
    if from.is_none() && reply_to.is_none() {
        return Err(super::missing("from", "the message has no sender address (neither From nor Reply-To)"));
    }
    let relayed = from.as_ref().is_some_and(|(a, _)| is_relay(a, &settings.relay_domains));
    // The person who wrote: the Reply-To of a relay's message, else the From.
    let sender = if relayed { reply_to.clone() } else { from.clone().or_else(|| reply_to.clone()) };
    let text = payload.get("text").and_then(Value::as_str).unwrap_or_default();
    let mut s = Standard::default();
    for (target, value) in extract(text, &settings.extract) {
        let v = Value::String(value);
        match target.as_str() {
            "name" | "full_name" => s.set_full_name(&target, &v),
            "email" => {
                let address = v.as_str().map(clean_address).unwrap_or_default();
                if !s.set("email", &json!(address)) {
                    s.custom("email_in_text", v);
                }
            }
            t if STANDARD_FIELDS.contains(&t) => {
                if !s.set(t, &v) {
                    s.custom(t, v);
                }
            }
            other => s.custom(other, v),
        }
    }
    if let Some((address, name)) = &sender {
        if !s.set("email", &json!(address)) && s.fields.get("email").and_then(Value::as_str) != Some(address.as_str()) {
            s.custom("sender_email", json!(address));
        }
        if let Some(name) = name.as_deref().filter(|_| !s.fields.contains_key("first_name")) {
            let (first, last) = split_display_name(name);
            s.set("first_name", &json!(first));
            if !last.is_empty() {
                s.set("last_name", &json!(last));
            }
        }
    }
    if relayed && let Some((address, _)) = &from {
        s.custom("relayed_by", json!(address));
    }
    for (key, as_) in [("subject", "subject"), ("date", "email_date")] {
        if let Some(v) = payload.get(key).filter(|v| !v.is_null()) {
            s.custom(as_, v.clone());
        }
    }
    if !text.trim().is_empty() {
        // A rule may read the inquiry itself into `message`; the whole text then goes
        // beside it.
        let key = if s.custom.contains_key("message") { "email_text" } else { "message" };
        s.custom(key, json!(text.trim()));
    }
    if let Some(list) = payload.get("attachments").and_then(Value::as_array).filter(|l| !l.is_empty()) {
        s.custom("attachments", Value::Array(list.clone()));
    }
    s.touch("provider", &json!("email"));
    if let Some(p) = payload.get("provider") {
        s.touch("email_provider", p);
    }
    if let Some(id) = payload.get("message_id") {
        s.touch("message_id", id);
    }
    Ok(s)
}

/// `<ada@example.com>`, `mailto:ada@example.com` → `ada@example.com`.
fn clean_address(v: &str) -> String {
    let v = v.trim();
    let v = v.strip_prefix("mailto:").unwrap_or(v);
    let v = match (v.find('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    v.split_whitespace().next().unwrap_or_default().to_owned()
}

/// The value of each rule found in `text`, in rule order; the first match of a rule wins.
pub fn extract(text: &str, rules: &[(String, ExtractRule)]) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (target, rule) in rules {
        let found = rule.labels.iter().find_map(|label| by_label(&lines, label)).or_else(|| {
            let re = &rule.pattern.as_ref()?.0;
            let caps = re.captures(text)?;
            caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str().trim().to_owned())
        });
        if let Some(value) = found.filter(|v| !v.is_empty()) {
            out.push((target.clone(), truncate(value, 4096)));
        }
    }
    out
}

/// The rest of the first line that starts with `label` (case-insensitively, after
/// spaces, quote marks and list bullets); when the label ends its line, the next
/// non-blank line.
fn by_label(lines: &[&str], label: &str) -> Option<String> {
    let label = label.trim().to_lowercase();
    if label.is_empty() {
        return None;
    }
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '>' | '*' | '-' | '•' | '|'));
        let lower = line.to_lowercase();
        // Lower-casing can change byte lengths (rare letters); such a line is skipped.
        if lower.len() != line.len() || !lower.starts_with(&label) {
            continue;
        }
        let rest = line[label.len()..].trim_start_matches(|c: char| c == ':' || c == '*' || c.is_whitespace());
        let rest = rest.trim().trim_matches('*').trim();
        // `Name` must not match `Names:` or `Namespace`: a label without a colon ends at
        // a separator.
        let boundary =
            label.ends_with(':') || line[label.len()..].chars().next().is_none_or(|c| c == ':' || c.is_whitespace());
        if !boundary {
            continue;
        }
        if !rest.is_empty() {
            return Some(rest.to_owned());
        }
        let next = lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty())?;
        return (!next.ends_with(':')).then(|| next.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::source::inbound::default_extract_rules;

    #[test]
    fn labels_read_the_rest_of_their_line_or_the_next_one() {
        let text = "Hello,\n\n* Name: Ada Lovelace\nFirma: Analytical Engines GmbH\nTelefon:\n  +49 30 1234567\nNamespace: x\n";
        let found = extract(text, &default_extract_rules());
        let get = |k: &str| found.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
        assert_eq!(get("name"), Some("Ada Lovelace"));
        assert_eq!(get("company"), Some("Analytical Engines GmbH"));
        assert_eq!(get("phone"), Some("+49 30 1234567"));
        assert_eq!(get("email"), None);
    }

    #[test]
    fn relays_are_told_by_local_part_or_configured_domain() {
        assert!(is_relay("no-reply@directory.example", &[]));
        assert!(is_relay("NoReply+x@directory.example", &[]));
        assert!(is_relay("inquiries@mail.directory.example", &["directory.example".into()]));
        assert!(!is_relay("ada@example.com", &["directory.example".into()]));
    }

    #[test]
    fn display_names_split_either_way() {
        assert_eq!(split_display_name("Lovelace, Ada"), ("Ada".into(), "Lovelace".into()));
        assert_eq!(split_display_name("\"Ada King Lovelace\""), ("Ada".into(), "King Lovelace".into()));
    }

    #[test]
    fn addresses_lose_their_wrapping() {
        assert_eq!(clean_address("mailto:ada@example.com"), "ada@example.com");
        assert_eq!(clean_address("Ada <ada@example.com>"), "ada@example.com");
    }
}
