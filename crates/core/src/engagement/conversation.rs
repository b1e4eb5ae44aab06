//! Conversations: chat transcripts (Intercom, Drift, any chat tool posting the generic
//! shape) kept on the lead as behavioural events, one `conversation.message` event per
//! message, so merges, erasure, encryption at rest, the change feed, scoring rules and
//! "events wait until the person becomes a lead" apply to them as to any event.
//!
//! Contract: [`properties`] is the one way a message becomes an event's properties
//! (`conversation`, `channel`, `author`, `author_name`, `text`, `message_id`), with the
//! text clipped to [`MAX_TEXT_CHARS`] characters; [`plain_text`] turns a provider's HTML
//! body into that text. [`conversations`] reads a lead's events back as conversations:
//! grouped by conversation id, messages in time order, a `message_id` seen twice kept
//! once, the newest conversation first. Events that are not messages, or lack a
//! conversation id, a known author or text (a custom `conversation.message` posted to
//! `/v1/events` by hand), are skipped: nothing here fails or panics on what is stored.
//! [`parse_post`] reads the generic `POST /v1/conversations` body, every problem at once.

use crate::engagement::{Event, Identity};
use crate::ids::LeadId;
use crate::{FieldError, FieldErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The event type of one chat message.
pub const KIND: &str = "conversation.message";

/// A message's text is clipped to this many characters: a transcript is evidence for a
/// person reading the lead, not an archive, and one pasted log must not bloat every
/// event read for scoring.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// At most this many messages in one `POST /v1/conversations`.
pub const MAX_POSTED_MESSAGES: usize = 1000;

/// At most this many qualification answers in one post.
pub const MAX_ANSWERS: usize = 200;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Author {
    /// The person the lead is about.
    Visitor,
    /// A person of the team (an Intercom admin, a Drift user).
    Agent,
    /// A chat bot or an automated workflow.
    Bot,
}

impl Author {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visitor" => Some(Self::Visitor),
            "agent" => Some(Self::Agent),
            "bot" => Some(Self::Bot),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Agent => "agent",
            Self::Bot => "bot",
        }
    }
}

/// One conversation of a lead, as read back from its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    /// Stable across providers' retries, e.g. `intercom:215469234`.
    pub id: String,
    /// `intercom`, `drift`, `chat`, …
    pub channel: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_message_at: OffsetDateTime,
    /// Oldest first.
    pub messages: Vec<Message>,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    pub author: Author,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    /// Plain text, at most [`MAX_TEXT_CHARS`] characters.
    pub text: String,
}

/// A message to record, as an adapter or the generic shape read it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub conversation: String,
    pub channel: String,
    pub author: Author,
    pub author_name: Option<String>,
    /// Plain text (see [`plain_text`] for HTML bodies); clipped by [`properties`].
    pub text: String,
    pub message_id: Option<String>,
}

/// The properties of the `conversation.message` event that records `m`.
pub fn properties(m: &NewMessage) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("conversation".into(), Value::String(m.conversation.clone()));
    out.insert("channel".into(), Value::String(m.channel.clone()));
    out.insert("author".into(), Value::String(m.author.as_str().to_owned()));
    if let Some(name) = m.author_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        out.insert("author_name".into(), Value::String(clip(name, 200)));
    }
    out.insert("text".into(), Value::String(clip(&m.text, MAX_TEXT_CHARS)));
    if let Some(id) = &m.message_id {
        out.insert("message_id".into(), Value::String(id.clone()));
    }
    out
}

/// `text` without NUL (PostgreSQL refuses it), trimmed, at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    text.replace('\0', "").trim().chars().take(max).collect::<String>().trim_end().to_owned()
}

/// A message with its `message_id` and its place among the events read.
type Numbered = (Option<String>, usize, Message);

/// The lead's conversations, newest (by last message) first. See the module docs.
pub fn conversations(events: &[Event]) -> Vec<Conversation> {
    let mut grouped: BTreeMap<String, (String, Vec<Numbered>)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind != KIND {
            continue;
        }
        let text_of = |k: &str| e.properties.get(k).and_then(Value::as_str);
        let (Some(id), Some(author), Some(text)) =
            (text_of("conversation"), text_of("author").and_then(Author::parse), text_of("text"))
        else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        let message = Message {
            at: e.occurred_at,
            author,
            author_name: text_of("author_name").map(str::to_owned),
            text: clip(text, MAX_TEXT_CHARS),
        };
        let entry = grouped
            .entry(id.to_owned())
            .or_insert_with(|| (text_of("channel").unwrap_or("chat").to_owned(), Vec::new()));
        entry.1.push((text_of("message_id").map(str::to_owned), i, message));
    }
    let mut out: Vec<Conversation> = grouped
        .into_iter()
        .filter_map(|(id, (channel, mut messages))| {
            // Time, then the text, so the order does not depend on how the store listed
            // events of the same second; the input order last.
            messages.sort_by(|a, b| (a.2.at, &a.2.text, a.1).cmp(&(b.2.at, &b.2.text, b.1)));
            let mut seen = HashSet::new();
            let messages: Vec<Message> = messages
                .into_iter()
                .filter(|(mid, _, _)| mid.as_ref().is_none_or(|m| seen.insert(m.clone())))
                .map(|(_, _, m)| m)
                .collect();
            let started_at = messages.first()?.at;
            let last_message_at = messages.last()?.at;
            Some(Conversation { id, channel, started_at, last_message_at, messages })
        })
        .collect();
    out.sort_by(|a, b| b.last_message_at.cmp(&a.last_message_at).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Plain text of a provider's HTML body (Intercom's `<p>…</p>`): tags dropped, block ends
/// and `<br>` made line breaks, `script` and `style` content dropped, the common entities
/// and numeric references decoded, blank runs collapsed, clipped to [`MAX_TEXT_CHARS`].
/// Text that holds no `<` or `&` comes back trimmed with its spaces collapsed.
pub fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(MAX_TEXT_CHARS * 4));
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(c) = rest.chars().next() {
        if out.len() > MAX_TEXT_CHARS * 4 {
            break;
        }
        if c == '<' {
            let end = rest.find('>').map_or(rest.len(), |i| i + 1);
            let tag = rest[1..end.max(1)].trim_end_matches('>').trim().to_ascii_lowercase();
            let name: String = tag.trim_start_matches('/').chars().take_while(char::is_ascii_alphanumeric).collect();
            let closing = tag.starts_with('/');
            match skip_until {
                Some(until) if closing && name == until => skip_until = None,
                Some(_) => {}
                None if !closing && (name == "script" || name == "style") => {
                    skip_until = Some(if name == "script" { "script" } else { "style" })
                }
                None if name == "br" || (closing && BLOCKS.contains(&name.as_str())) => out.push('\n'),
                None => {}
            }
            rest = &rest[end..];
            continue;
        }
        let len = c.len_utf8();
        if skip_until.is_some() {
            rest = &rest[len..];
            continue;
        }
        if c == '&'
            && let Some((decoded, used)) = entity(rest)
        {
            out.push(decoded);
            rest = &rest[used..];
            continue;
        }
        out.push(c);
        rest = &rest[len..];
    }
    tidy(&out)
}

const BLOCKS: &[&str] = &["p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "pre"];

/// `&amp;` and friends at the start of `s`: the character and the bytes it used.
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.char_indices().take(12).find(|(_, c)| *c == ';').map(|(i, _)| i)?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" | "#39" => '\'',
        "nbsp" => ' ',
        _ => {
            let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => name.strip_prefix('#')?.parse::<u32>().ok()?,
            };
            char::from_u32(code).filter(|c| *c != '\0')?
        }
    };
    Some((c, end + 1))
}

/// Collapses blank runs within lines and more than one empty line, trims, clips.
fn tidy(s: &str) -> String {
    let lines: Vec<String> = s.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>();
    let mut out = String::new();
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&line);
    }
    clip(&out, MAX_TEXT_CHARS)
}

/// A `POST /v1/conversations` body, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Posted {
    /// Who the conversation was with: a lead id, an email (lowercased) or an external id.
    pub who: Identity,
    pub conversation: String,
    pub channel: String,
    /// Each with the part of its idempotency key that names it: the message id, else
    /// `#index`.
    pub messages: Vec<(String, OffsetDateTime, NewMessage)>,
    /// Qualification answers: question → answer, as sent.
    pub answers: Map<String, Value>,
    /// The `source` member as sent (checked against the configuration by the caller).
    pub source: Option<Value>,
}

/// Reads the generic conversation body; every problem at once, each at its path. A
/// message time more than a day ahead of `now` is refused (a clock in milliseconds).
pub fn parse_post(body: &Value, now: OffsetDateTime) -> Result<Posted, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new("", FieldErrorCode::WrongType, "the body must be a JSON object")]);
    };
    for key in obj.keys() {
        if !["email", "lead_id", "external_id", "conversation", "answers", "source"].contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.clone(),
                FieldErrorCode::UnknownField,
                "not a member of a conversation post",
            ));
        }
    }
    let mut who = Identity::default();
    if let Some(e) = text(&mut errors, obj, "email", "email", 320) {
        let e = e.to_lowercase();
        if crate::Email::parse(&e).is_err() {
            errors.push(FieldError::new("email", FieldErrorCode::InvalidEmail, "not an email address"));
        }
        who.email = Some(e);
    }
    if let Some(id) = text(&mut errors, obj, "lead_id", "lead_id", 64) {
        match id.parse::<LeadId>() {
            Ok(id) => who.lead_id = Some(id),
            Err(_) => errors.push(FieldError::new("lead_id", FieldErrorCode::Invalid, "lead_id must be a lead's id")),
        }
    }
    who.external_id = text(&mut errors, obj, "external_id", "external_id", 320);
    if who.is_empty() && !errors.iter().any(|e| ["email", "lead_id", "external_id"].contains(&e.field.as_str())) {
        errors.push(FieldError::new(
            "email",
            FieldErrorCode::Required,
            "a conversation names its person: email, lead_id or external_id",
        ));
    }
    let empty = Map::new();
    let conv = match obj.get("conversation") {
        Some(Value::Object(c)) => c,
        Some(_) => {
            errors.push(FieldError::new("conversation", FieldErrorCode::WrongType, "conversation must be an object"));
            &empty
        }
        None => {
            errors.push(FieldError::new("conversation", FieldErrorCode::Required, "conversation is required"));
            &empty
        }
    };
    let conversation = id_text(&mut errors, conv.get("id"), "conversation.id", true).unwrap_or_default();
    let channel = match text(&mut errors, conv, "channel", "conversation.channel", 64) {
        None => "chat".to_owned(),
        Some(c) if c.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) => c.to_ascii_lowercase(),
        Some(_) => {
            errors.push(FieldError::new(
                "conversation.channel",
                FieldErrorCode::Invalid,
                "a channel is letters, digits, '_', '-' and '.'",
            ));
            String::new()
        }
    };
    for key in conv.keys() {
        if !["id", "channel", "messages"].contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("conversation.{key}"),
                FieldErrorCode::UnknownField,
                "a conversation has id, channel and messages",
            ));
        }
    }
    let mut messages = Vec::new();
    match conv.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_POSTED_MESSAGES => {
            for (i, m) in list.iter().enumerate() {
                if let Some(m) = message(&mut errors, i, m, &conversation, &channel, now) {
                    messages.push(m);
                }
            }
        }
        _ if conv.is_empty() && errors.iter().any(|e| e.field == "conversation") => {}
        _ => errors.push(FieldError::new(
            "conversation.messages",
            FieldErrorCode::Required,
            format!("messages must be a list of 1 to {MAX_POSTED_MESSAGES} messages"),
        )),
    }
    let answers = match obj.get("answers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) if a.len() <= MAX_ANSWERS => {
            for (q, v) in a {
                let ok = matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null);
                if q.trim().is_empty() || q.len() > 500 || !ok {
                    errors.push(FieldError::new(
                        format!("answers.{q}"),
                        FieldErrorCode::Invalid,
                        "an answer is a question (1 to 500 bytes) and a string, number or boolean",
                    ));
                }
            }
            crate::capture::without_nul(a.clone())
        }
        Some(_) => {
            errors.push(FieldError::new(
                "answers",
                FieldErrorCode::WrongType,
                format!("answers must be an object of at most {MAX_ANSWERS} questions and their answers"),
            ));
            Map::new()
        }
    };
    if errors.is_empty() {
        Ok(Posted { who, conversation, channel, messages, answers, source: obj.get("source").cloned() })
    } else {
        Err(errors)
    }
}

fn message(
    errors: &mut Vec<FieldError>,
    i: usize,
    m: &Value,
    conversation: &str,
    channel: &str,
    now: OffsetDateTime,
) -> Option<(String, OffsetDateTime, NewMessage)> {
    let at_path = |f: &str| format!("conversation.messages[{i}].{f}");
    let Some(m) = m.as_object() else {
        errors.push(FieldError::new(
            format!("conversation.messages[{i}]"),
            FieldErrorCode::WrongType,
            "must be an object",
        ));
        return None;
    };
    let before = errors.len();
    for key in m.keys() {
        if !["id", "at", "author", "author_name", "text"].contains(&key.as_str()) {
            errors.push(FieldError::new(
                at_path(key),
                FieldErrorCode::UnknownField,
                "a message has id, at, author, author_name and text",
            ));
        }
    }
    let id = id_text(errors, m.get("id"), &at_path("id"), false);
    let at = match m.get("at").and_then(Value::as_str).map(|s| OffsetDateTime::parse(s, &Rfc3339)) {
        Some(Ok(t)) if t <= now + time::Duration::days(1) => Some(t),
        Some(Ok(_)) => {
            errors.push(FieldError::new(at_path("at"), FieldErrorCode::InvalidTimestamp, "in the future"));
            None
        }
        _ => {
            errors.push(FieldError::new(at_path("at"), FieldErrorCode::InvalidTimestamp, "at is required: RFC 3339"));
            None
        }
    };
    let author = m.get("author").and_then(Value::as_str).and_then(Author::parse);
    if author.is_none() {
        errors.push(FieldError::new(at_path("author"), FieldErrorCode::Invalid, "author is visitor, agent or bot"));
    }
    let author_name = text(errors, m, "author_name", &at_path("author_name"), 200);
    let text = match m.get("text") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) | None => {
            errors.push(FieldError::new(at_path("text"), FieldErrorCode::Required, "text is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(at_path("text"), FieldErrorCode::WrongType, "text must be a string"));
            None
        }
    };
    if errors.len() != before {
        return None;
    }
    let (at, author, text) = (at?, author?, text?);
    let key = id.clone().unwrap_or_else(|| format!("#{i}"));
    let message = NewMessage {
        conversation: conversation.to_owned(),
        channel: channel.to_owned(),
        author,
        author_name,
        text,
        message_id: id,
    };
    Some((key, at, message))
}

/// A string member, trimmed, `None` when absent, null or blank; a wrong type or a
/// longer one is an error at `path`.
fn text(errors: &mut Vec<FieldError>, obj: &Map<String, Value>, key: &str, path: &str, max: usize) -> Option<String> {
    match obj.get(key)? {
        Value::Null => None,
        Value::String(s) if s.len() > max => {
            errors.push(FieldError::new(path, FieldErrorCode::TooLong, format!("at most {max} bytes")));
            None
        }
        Value::String(s) => Some(s.replace('\0', "").trim().to_owned()).filter(|s| !s.is_empty()),
        _ => {
            errors.push(FieldError::new(path, FieldErrorCode::WrongType, format!("{key} must be a string")));
            None
        }
    }
}

/// An id given as a string or an integer (providers use both), 1 to 200 bytes of
/// printable characters.
fn id_text(errors: &mut Vec<FieldError>, v: Option<&Value>, path: &str, required: bool) -> Option<String> {
    let s = match v {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        None | Some(Value::Null) if !required => return None,
        _ => String::new(),
    };
    if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
        errors.push(FieldError::new(
            path,
            if v.is_none() { FieldErrorCode::Required } else { FieldErrorCode::Invalid },
            "an id is a string or an integer of 1 to 200 printable bytes",
        ));
        return None;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;
    use serde_json::json;
    use time::macros::datetime;

    fn at(minute: i64) -> OffsetDateTime {
        datetime!(2026-06-01 16:00 UTC) + time::Duration::minutes(minute)
    }

    fn msg(conversation: &str, minute: i64, author: Author, text: &str, id: Option<&str>) -> Event {
        let m = NewMessage {
            conversation: conversation.into(),
            channel: "intercom".into(),
            author,
            author_name: None,
            text: text.into(),
            message_id: id.map(str::to_owned),
        };
        Event {
            id: EventId::new(),
            kind: KIND.into(),
            occurred_at: at(minute),
            url: None,
            properties: properties(&m),
            lead_id: None,
            identity: Identity::default(),
        }
    }

    #[test]
    fn messages_group_by_conversation_in_time_order_newest_conversation_first() {
        let events = [
            msg("intercom:1", 5, Author::Agent, "Hi Ada, how can we help?", Some("p2")),
            msg("intercom:2", 60, Author::Visitor, "Back again", None),
            msg("intercom:1", 0, Author::Visitor, "Do you have an EU region?", Some("p1")),
            // A page view is no message; a message without a conversation is skipped.
            Event { kind: "page_view".into(), ..msg("intercom:1", 1, Author::Bot, "x", None) },
            Event { properties: Map::new(), ..msg("intercom:1", 2, Author::Bot, "x", None) },
        ];
        let got = conversations(&events);
        assert_eq!(got.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["intercom:2", "intercom:1"]);
        let first = &got[1];
        assert_eq!((first.started_at, first.last_message_at, first.channel.as_str()), (at(0), at(5), "intercom"));
        let texts: Vec<_> = first.messages.iter().map(|m| (m.author, m.text.as_str())).collect();
        assert_eq!(
            texts,
            [(Author::Visitor, "Do you have an EU region?"), (Author::Agent, "Hi Ada, how can we help?")]
        );
    }

    #[test]
    fn a_message_id_seen_twice_is_kept_once_and_text_is_clipped() {
        let long = "a".repeat(MAX_TEXT_CHARS + 50);
        let events = [
            msg("c", 0, Author::Visitor, "hello", Some("m1")),
            msg("c", 0, Author::Visitor, "hello", Some("m1")),
            msg("c", 1, Author::Bot, &long, Some("m2")),
        ];
        let got = conversations(&events);
        assert_eq!(got[0].messages.len(), 2);
        assert_eq!(got[0].messages[1].text.chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn html_bodies_become_plain_text() {
        assert_eq!(
            plain_text("<p>Hi <b>there</b>,</p><p>Pricing&nbsp;&amp; plans?</p>"),
            "Hi there,\nPricing & plans?"
        );
        assert_eq!(plain_text("line<br>next<br/>last"), "line\nnext\nlast");
        assert_eq!(plain_text("<script>alert(1)</script><style>p{}</style>ok"), "ok");
        assert_eq!(plain_text("&lt;b&gt; is &#39;bold&#39; &#x41;&unknown; &"), "<b> is 'bold' A&unknown; &");
        assert_eq!(plain_text("  plain   text  "), "plain text");
        assert_eq!(plain_text("unterminated <p class=\"x"), "unterminated");
        assert_eq!(plain_text("&#0;&#xD800;"), "&#0;&#xD800;", "no NUL or surrogate is decoded");
    }

    #[test]
    fn the_generic_post_is_read_with_every_problem_at_its_path() {
        let body = json!({"email": "Ada@Example.com", "conversation": {"id": 42, "channel": "crisp", "messages": [
            {"id": "m1", "at": "2026-06-01T16:00:00Z", "author": "visitor", "text": "Hi"},
            {"at": "2026-06-01T16:01:00Z", "author": "bot", "author_name": "Qualibot", "text": "Team size?"}
        ]}, "answers": {"Team size?": "51-200"}});
        let p = parse_post(&body, at(10)).unwrap();
        assert_eq!(
            (p.who.email.as_deref(), p.conversation.as_str(), p.channel.as_str()),
            (Some("ada@example.com"), "42", "crisp")
        );
        let keys: Vec<_> = p.messages.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["m1", "#1"]);
        assert_eq!(p.answers.get("Team size?"), Some(&json!("51-200")));

        let bad = json!({"conversation": {"messages": [{"at": "yesterday", "author": "ghost", "text": 3}], "x": 1}, "answers": [1], "extra": true});
        let errors = parse_post(&bad, at(10)).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "extra",
            "email",
            "conversation.id",
            "conversation.x",
            "conversation.messages[0].at",
            "conversation.messages[0].author",
            "conversation.messages[0].text",
            "answers",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(parse_post(&json!([]), at(0)).is_err());
        let future = json!({"email": "a@x.com", "conversation": {"id": "c", "messages": [{"at": "2030-01-01T00:00:00Z", "author": "visitor", "text": "hi"}]}});
        assert_eq!(parse_post(&future, at(0)).unwrap_err()[0].field, "conversation.messages[0].at");
    }

    proptest::proptest! {
        #[test]
        fn html_stripping_never_panics_and_stays_within_the_cap(s in ".{0,300}", tags in proptest::collection::vec("<[a-z/]{0,6}>|&[a-z#0-9]{0,6};?", 0..20)) {
            let html: String = tags.iter().fold(s.clone(), |acc, t| format!("{acc}{t}{s}"));
            let out = plain_text(&html);
            proptest::prop_assert!(out.chars().count() <= MAX_TEXT_CHARS);
            proptest::prop_assert!(!out.contains('\0'));
        }

        #[test]
        fn text_without_markup_passes_with_its_spaces_collapsed(s in "[a-zA-Z0-9 .,!?]{0,200}") {
            proptest::prop_assert_eq!(plain_text(&s), s.split_whitespace().collect::<Vec<_>>().join(" "));
        }

        #[test]
        fn grouping_never_panics_and_a_retried_list_groups_the_same(
            picks in proptest::collection::vec((0usize..3, 0i64..50, 0usize..3, ".{0,20}", proptest::option::of(0u8..6)), 0..25),
            junk in proptest::collection::vec((".{0,8}", ".{0,8}"), 0..4),
        ) {
            let authors = [Author::Visitor, Author::Agent, Author::Bot];
            let mut events: Vec<Event> = picks
                .iter()
                .map(|(c, m, a, t, id)| msg(&format!("c{c}"), *m, authors[*a], t, id.map(|i| format!("m{c}-{i}")).as_deref()))
                .collect();
            // Arbitrary properties on a conversation.message: skipped, never a panic.
            events.push(Event { properties: junk.into_iter().map(|(k, v)| (k, Value::String(v))).collect(), ..msg("c0", 0, Author::Bot, "x", None) });
            let once = conversations(&events);
            let with_ids: Vec<Event> = events.iter().filter(|e| e.properties.contains_key("message_id")).cloned().collect();
            let mut retried = events.clone();
            retried.extend(with_ids);
            proptest::prop_assert_eq!(conversations(&retried), once.clone());
            for c in &once {
                proptest::prop_assert!(c.messages.windows(2).all(|w| w[0].at <= w[1].at));
                proptest::prop_assert!(c.started_at <= c.last_message_at);
            }
            proptest::prop_assert!(once.windows(2).all(|w| w[0].last_message_at >= w[1].last_message_at));
        }
    }
}
