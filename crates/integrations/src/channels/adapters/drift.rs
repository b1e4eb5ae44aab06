//! Drift chat: messages become the conversation of the person's lead; an identified
//! contact (with its bot's qualification answers) becomes a lead.
//!
//! Documented behaviour followed (Drift developer docs, "Webhooks: Subscribing to Drift
//! Events", "Message Model", "Contact Model"): every event is a POST of
//! `{type, token, orgId, data}`, `token` being the app's verification token, also sent as
//! the `X-Verification-Token` header. Drift signs nothing: the token (the source's
//! `secret_env`) is compared in constant time, the body's first, else the header's.
//!
//! - `new_message`: `data` is a message `{id, orgId, body, author {type contact|user, id,
//!   bot}, type chat|private_note, conversationId, createdAt}` (Unix milliseconds):
//!   a `conversation.message` event (conversation `drift:{conversationId}`, key
//!   `drift:message:{id}`). A contact's message is the visitor's, a user's an agent's,
//!   a bot user's the bot's; private notes are not messages. The person is named by
//!   the email of a `data.contact` when the payload carries one, else by Drift's contact
//!   id as the visitor id `drift:{contact id}` (the author's id for a contact's message;
//!   `data.contactId` or `data.conversation.contactId` otherwise). An event under a
//!   visitor id waits until a lead carries the same `custom.anonymous_id`, which is what
//!   `contact_identified` gives the lead it makes; so the messages before and after the
//!   email was given join the lead. A message naming no contact is acknowledged, not
//!   recorded.
//! - `contact_identified` (a contact gave an email in chat), and `playbook_goal_met` or
//!   `new_conversation` when they carry a contact with an email: a lead item keyed
//!   `drift:contact:{id}:{digest of the body}` (a retry is the same body; a later
//!   identification with new answers is a new submission). `data` is the contact
//!   `{id, createdAt, attributes {email, name, phone, …}}`, or carries it as
//!   `data.contact`. The attributes are the bot's answers too: they are read through
//!   the source's qualification table, then the label table (`"Company size"` →
//!   `employee_count`); Drift's own `_`-prefixed attributes are skipped.
//! - every other type is acknowledged and ignored.

use super::{digest, header, ignored, item, missing, require_post, str_of};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Activity, Handled, HookError, HookRequest, body, sig};
use leadflow_core::engagement::conversation::{self, Author, NewMessage, plain_text};
use leadflow_core::source::qualification::Qualification;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// Types that may carry an identified contact.
const CONTACT_TYPES: &[&str] = &["contact_identified", "playbook_goal_met", "new_conversation"];

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let expected = sig::require_secret(secret, "drift")?;
    let event = body::json_object(req.body)?;
    let v = Value::Object(event.clone());
    let token = match str_of(&v, "token") {
        Some(t) => t,
        None => header(req, "x-verification-token")?,
    };
    if !sig::ct_eq(expected, token.as_bytes()) {
        return Err(HookError::Unauthorized("verification token mismatch".into()));
    }
    let kind = str_of(&v, "type").ok_or_else(|| HookError::Malformed("missing type".into()))?;
    let data =
        v.get("data").filter(|d| d.is_object()).ok_or_else(|| HookError::Malformed(format!("{kind} without data")))?;
    if kind == "new_message" {
        return Ok(match message(data) {
            Some(activity) => Handled::Activity { items: Vec::new(), activity: vec![activity] },
            None => ignored("a private note, or a message that names no contact or has no text"),
        });
    }
    if CONTACT_TYPES.contains(&kind) {
        let contact = contact_of(data);
        if let (Some(id), Some(_)) = (id_text(contact.get("id")), email_of(contact)) {
            let key = format!("drift:contact:{id}:{}", &digest(&[req.body])[..16]);
            // The token is a secret: the stored payload does not keep it.
            let mut stored = event;
            stored.remove("token");
            return Ok(super::one(item(key, stored, false)));
        }
        return Ok(ignored(format!("{kind} names no contact with an email")));
    }
    Ok(ignored(format!("{kind} carries no message or identified contact")))
}

/// The contact an event is about: `data.contact`, else `data` itself.
fn contact_of(data: &Value) -> &Value {
    data.get("contact").filter(|c| c.is_object()).unwrap_or(data)
}

fn email_of(contact: &Value) -> Option<String> {
    let attrs = contact.get("attributes").unwrap_or(contact);
    str_of(attrs, "email")
        .or_else(|| str_of(contact, "email"))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_lowercase)
}

/// The event a `new_message` records; `None` for a private note, a message without text
/// or one that names nobody.
fn message(m: &Value) -> Option<Activity> {
    if str_of(m, "type") == Some("private_note") {
        return None;
    }
    let id = id_text(m.get("id"))?;
    let conversation_id = id_text(m.get("conversationId"))?;
    let author = m.get("author").unwrap_or(&Value::Null);
    let who = match str_of(author, "type") {
        Some("contact") => Author::Visitor,
        Some("user") if author.get("bot").and_then(Value::as_bool) == Some(true) => Author::Bot,
        Some("user") => Author::Agent,
        _ => return None,
    };
    let text = plain_text(str_of(m, "body")?);
    if text.is_empty() {
        return None;
    }
    let email = m.get("contact").filter(|c| c.is_object()).and_then(email_of);
    let contact_id = match who {
        Author::Visitor => id_text(author.get("id")),
        _ => None,
    }
    .or_else(|| id_text(m.get("contactId")))
    .or_else(|| m.get("conversation").and_then(|c| id_text(c.get("contactId"))))
    .or_else(|| m.get("contact").and_then(|c| id_text(c.get("id"))));
    let visitor = contact_id.map(|c| format!("drift:{c}"));
    if email.is_none() && visitor.is_none() {
        return None;
    }
    let occurred_at = m
        .get("createdAt")
        .and_then(Value::as_i64)
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let message = NewMessage {
        conversation: format!("drift:{conversation_id}"),
        channel: "drift".into(),
        author: who,
        author_name: None,
        text,
        message_id: Some(id.clone()),
    };
    Some(Activity {
        idempotency_key: format!("drift:message:{id}"),
        kind: conversation::KIND.to_owned(),
        occurred_at,
        email,
        visitor,
        properties: conversation::properties(&message),
    })
}

pub fn standardize(payload: &Map<String, Value>, qualification: &Qualification) -> Result<Standard, HookError> {
    let data = payload.get("data").ok_or_else(|| missing("data", "an object"))?;
    let contact = contact_of(data);
    let attrs = contact
        .get("attributes")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("data.attributes", "the contact's attributes (email, name, the bot's answers)"))?;
    let mut s = Standard::default();
    let answers: Map<String, Value> = attrs
        .iter()
        .filter(|(k, v)| !k.starts_with('_') && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    s.answer_all(&answers, qualification);
    if !s.fields.contains_key("email") && !s.fields.contains_key("phone") {
        return Err(missing("data.attributes.email", "the contact has no email or phone yet"));
    }
    if let Some(id) = id_text(contact.get("id")) {
        // The visitor id the contact's messages were recorded under: they join this lead.
        s.custom("anonymous_id", Value::String(format!("drift:{id}")));
        s.touch("lead_id", &Value::String(id));
    }
    s.touch("provider", &json!("drift"));
    if let Some(kind) = payload.get("type") {
        s.custom("drift_event", kind.clone());
    }
    Ok(s)
}
