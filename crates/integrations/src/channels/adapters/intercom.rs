//! Intercom webhooks (contacts and new conversations).
//!
//! Documented behaviour followed (Intercom "Webhooks"): `X-Hub-Signature:
//! sha1=<hex HMAC-SHA1(app client_secret, raw body)>`; no timestamp is signed. Notification
//! `{type: "notification_event", id, topic, created_at, data: {item}}`. Leads come from
//! `contact.user.created`, `contact.lead.created`, `contact.created` (a contact item) and
//! `conversation.user.created` (a conversation whose `source.author` is the person);
//! `ping` and every other topic are acknowledged and ignored. Idempotency key
//! `intercom:{notification id}`.
//!
//! Where the person is, by topic and API version ("Webhook models" 1.x and 2.x; the
//! conversation and contact schemas of `intercom/Intercom-OpenAPI`):
//! - `contact.*.created` (2.x) and `contact.created` / `user.created` (1.x): the item is
//!   the person (2.x `contact` with `email`, `phone`, `external_id`, `location`; 1.x
//!   `user`/`contact` with `user_id` and `location_data`).
//! - `conversation.user.created`: 2.x puts the person as the first message's author,
//!   `data.item.source.author` (`type` user or lead, with `email`), and lists them in
//!   `data.item.contacts.contacts[]` as references that carry only `id` and
//!   `external_id`; 1.x puts them under `data.item.user`. Every shape is tried; the
//!   first with an email or a phone wins. A notification whose only person is an id
//!   reference is not readable without a call to Intercom's API, and says so: its
//!   quarantine entry names `data.item.contacts.contacts[0].email` and the contact id.
//!
//! Version 2 reads all of these (version 1 read `source.author` only for conversations)
//! and reports the missing path when no person with an email or phone is found.
//!
//! Conversations (version 3): the messages of a conversation notification are recorded
//! as `conversation.message` events of its person (see
//! [`leadflow_core::engagement::conversation`]): `conversation.user.created` gives the
//! first message (`data.item.source`, by the person), and every `conversation.*` topic
//! that carries `data.item.conversation_parts.conversation_parts[]` (`user.replied`,
//! `admin.replied`, `operator.replied`, `admin.single.created`, …) gives its parts
//! (`id, part_type, body` HTML, `created_at` Unix seconds, `author {type, name}`).
//! Authors `user`, `lead`, `contact` are the visitor, `admin` and `team` an agent,
//! `bot` and `operator` a bot; internal notes (`part_type` `note`) and parts without a
//! body (assignments, state changes) are not messages. Keys `intercom:{conversation
//! id}:source` and `intercom:{conversation id}:part:{part id}`: the same part sent under
//! two topics (a bot's reply comes as `admin.replied` and `operator.replied`) is
//! recorded once. The person is named by the email of the shapes above; without one
//! the messages are not recorded (the lead item path is unchanged). The conversation's
//! `custom_attributes` (where a bot's qualification answers land) are read through the
//! source's qualification table.

use super::{arr, header, ignored, item, missing, one, require_post, str_of};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Activity, Fetch, Handled, HookError, HookRequest, body, sig};
use leadflow_core::engagement::conversation::{self, Author, NewMessage, plain_text};
use leadflow_core::source::qualification::Qualification;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

const LEAD_TOPICS: &[&str] =
    &["contact.user.created", "contact.lead.created", "contact.created", "user.created", "conversation.user.created"];

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "intercom")?;
    let got = header(req, "x-hub-signature")?;
    let hex_sig = got.strip_prefix("sha1=").ok_or_else(|| HookError::Unauthorized("bad signature format".into()))?;
    if !sig::verify_hex(&sig::hmac_sha1(key, &[req.body]), hex_sig) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let note = body::json_object(req.body)?;
    let v = Value::Object(note.clone());
    let topic = str_of(&v, "topic").ok_or_else(|| HookError::Malformed("missing topic".into()))?;
    let is_lead = LEAD_TOPICS.contains(&topic);
    if !is_lead && !topic.starts_with("conversation.") {
        return Ok(ignored(format!("topic {topic} is not a lead")));
    }
    let id = str_of(&v, "id").ok_or_else(|| HookError::Malformed("notification without id".into()))?;
    let Some(it) = v.get("data").and_then(|d| d.get("item")) else {
        return Err(HookError::Malformed("notification without data.item".into()));
    };
    let activity = messages(it, topic == "conversation.user.created");
    if !is_lead {
        return Ok(if activity.is_empty() {
            ignored(format!("topic {topic} carries no message of a person with an email"))
        } else {
            Handled::Activity { items: Vec::new(), activity }
        });
    }
    let mut found = item(format!("intercom:{id}"), note.clone(), false);
    found.fetch = contact_to_fetch(&note).map(|contact_id| Fetch::IntercomContact { contact_id });
    Ok(if activity.is_empty() { one(found) } else { Handled::Activity { items: vec![found], activity } })
}

/// The messages of a conversation item, as events of its person; none when the item is
/// no conversation or its person has no email. `first`: the item's `source` is the
/// person's opening message (`conversation.user.created`).
fn messages(it: &Value, first: bool) -> Vec<Activity> {
    if str_of(it, "type").is_some_and(|t| t != "conversation") {
        return Vec::new();
    }
    let Some(conversation) = id_text(it.get("id")) else { return Vec::new() };
    let email = find_person(it).ok().and_then(|p| str_of(p, "email")).map(str::trim).filter(|e| !e.is_empty());
    let Some(email) = email.map(str::to_lowercase) else { return Vec::new() };
    let mut parts: Vec<(String, &Value, Option<&Value>)> = Vec::new();
    if first && let Some(source) = it.get("source") {
        parts.push((format!("intercom:{conversation}:source"), source, it.get("created_at")));
    }
    for part in arr(it.get("conversation_parts").unwrap_or(&Value::Null), "conversation_parts") {
        if str_of(part, "part_type") == Some("note") {
            continue;
        }
        if let Some(pid) = id_text(part.get("id")) {
            parts.push((format!("intercom:{conversation}:part:{pid}"), part, part.get("created_at")));
        }
    }
    parts
        .into_iter()
        .filter_map(|(key, part, at)| {
            let author = part.get("author").unwrap_or(&Value::Null);
            let who = match str_of(author, "type") {
                // The opening message of a customer-initiated conversation is the person's.
                None if first && key.ends_with(":source") => Author::Visitor,
                Some("user" | "lead" | "contact") => Author::Visitor,
                Some("admin" | "team") => Author::Agent,
                Some("bot" | "operator") => Author::Bot,
                _ => return None,
            };
            let text = plain_text(str_of(part, "body")?);
            if text.is_empty() {
                return None;
            }
            let occurred_at = at
                .and_then(Value::as_i64)
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let message = NewMessage {
                conversation: format!("intercom:{conversation}"),
                channel: "intercom".into(),
                author: who,
                author_name: str_of(author, "name").map(str::to_owned),
                text,
                message_id: id_text(part.get("id")),
            };
            Some(Activity {
                idempotency_key: key,
                kind: conversation::KIND.to_owned(),
                occurred_at,
                email: Some(email.clone()),
                visitor: None,
                properties: conversation::properties(&message),
            })
        })
        .collect()
}

/// Where a person can sit in a notification's item, in the order they are tried.
const PERSON_PATHS: &[&[&str]] = &[&["source", "author"], &["user"], &["contacts", "contacts", "0"]];

/// Authors that are not the person a lead is about.
const NOT_A_PERSON: &[&str] = &["admin", "bot", "team", "operator", "campaign"];

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, step| match step.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(*step),
    })
}

fn has_text(v: &Value, key: &str) -> bool {
    str_of(v, key).is_some_and(|t| !t.trim().is_empty())
}

/// `data.item.` + a path in the item, `contacts.contacts[0]` style.
fn item_path(path: &[&str], last: &str) -> String {
    let mut out = String::from("data.item");
    for step in path {
        if step.parse::<usize>().is_ok() {
            out.push_str(&format!("[{step}]"));
        } else {
            out.push('.');
            out.push_str(step);
        }
    }
    format!("{out}.{last}")
}

/// The person a notification is about. A contact item is
/// the person; a conversation carries them as its first message's author (API 2.x), as
/// `user` (API 1.x), or as a reference in `contacts` (2.x, often an id only). The first
/// that has an email or a phone wins; else the first that is there, to explain.
fn find_person(it: &Value) -> Result<&Value, HookError> {
    if str_of(it, "type") != Some("conversation") {
        return if has_text(it, "email") || has_text(it, "phone") {
            Ok(it)
        } else {
            let who = str_of(it, "role").or_else(|| str_of(it, "type")).unwrap_or("contact");
            Err(missing(
                "data.item.email",
                format!(
                    "the {who} has no email or phone yet (Intercom id {}); it becomes a lead when one is added",
                    str_of(it, "id").unwrap_or("unknown")
                ),
            ))
        };
    }
    let found: Vec<(&[&str], &Value)> = PERSON_PATHS
        .iter()
        .filter_map(|p| at(it, p).filter(|v| v.is_object()).map(|v| (*p, v)))
        .filter(|(_, v)| !str_of(v, "type").is_some_and(|t| NOT_A_PERSON.contains(&t)))
        .collect();
    if let Some((_, person)) = found.iter().find(|(_, v)| has_text(v, "email") || has_text(v, "phone")) {
        return Ok(person);
    }
    Err(match found.last() {
        Some((path, person)) if *path == ["contacts", "contacts", "0"] => missing(
            item_path(path, "email"),
            format!(
                "the conversation names its contact by id only (Intercom id {}); Intercom sends no email in this \
                 shape, and no author or user with an email came with it",
                str_of(person, "id").unwrap_or("unknown")
            ),
        ),
        Some((path, _)) => missing(item_path(path, "email"), "the conversation's person has no email or phone"),
        None => missing(
            "data.item.source.author",
            "the conversation has no contact author, user or contacts (an admin- or bot-initiated conversation?)",
        ),
    })
}

/// The Intercom id of the contact a conversation names by reference only, when nothing
/// else in the notification says who the person is: what the API is asked for. `None`
/// once the contact was read (it is kept in the payload) or when no call is needed.
pub fn contact_to_fetch(payload: &Map<String, Value>) -> Option<String> {
    if payload.contains_key(Fetch::FETCHED_KEY) {
        return None;
    }
    let it = payload.get("data")?.get("item")?;
    if str_of(it, "type") != Some("conversation") || find_person(it).is_ok() {
        return None;
    }
    str_of(at(it, &["contacts", "contacts", "0"])?, "id").map(str::to_owned)
}

pub fn standardize(payload: &Map<String, Value>, qualification: &Qualification) -> Result<Standard, HookError> {
    let v = Value::Object(payload.clone());
    let it = v.get("data").and_then(|d| d.get("item")).ok_or_else(|| missing("data.item", "an object"))?;
    // A contact read back from the API (see `contact_to_fetch`) is the person.
    let fetched =
        payload.get(crate::channels::Fetch::FETCHED_KEY).filter(|c| has_text(c, "email") || has_text(c, "phone"));
    let person = match fetched {
        Some(contact) => contact,
        None => find_person(it)?,
    };
    let mut s = Standard::default();
    for k in ["email", "phone", "external_id"] {
        if let Some(x) = person.get(k) {
            s.set(k, x);
        }
    }
    // API 1.x calls your own id for a user `user_id`.
    if let Some(x) = person.get("user_id") {
        s.set("external_id", x);
    }
    if let Some(n) = person.get("name") {
        s.set_full_name("name", n);
    }
    if let Some(loc) = person.get("location").or_else(|| person.get("location_data")) {
        for (k, field) in [
            ("country", "country"),
            ("region", "state"),
            ("city", "city"),
            ("region_name", "state"),
            ("city_name", "city"),
            ("country_name", "country"),
        ] {
            if let Some(x) = loc.get(k) {
                s.set(field, x);
            }
        }
    }
    for k in ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "referrer"] {
        if let Some(x) = person.get(k) {
            s.assign(k, x);
        }
    }
    if let Some(attrs) = person.get("custom_attributes").and_then(Value::as_object) {
        s.answer_all(attrs, qualification);
    }
    // A conversation's own attributes hold what a bot asked (Fin, custom bots).
    if str_of(it, "type") == Some("conversation")
        && let Some(attrs) = it.get("custom_attributes").and_then(Value::as_object)
    {
        s.answer_all(attrs, qualification);
    }
    if let Some(companies) = person.get("companies") {
        s.custom("companies", companies.clone());
    }
    if str_of(it, "type") == Some("conversation")
        && let Some(body) = at(it, &["source", "body"]).or_else(|| at(it, &["conversation_message", "body"]))
    {
        s.custom("first_message", body.clone());
    }
    s.touch("provider", &json!("intercom"));
    if let Some(id) = person.get("id") {
        s.touch("lead_id", id);
    }
    if let Some(topic) = v.get("topic") {
        s.custom("topic", topic.clone());
    }
    if let Some(role) = person.get("role").or_else(|| person.get("type")) {
        s.custom("intercom_role", role.clone());
    }
    Ok(s)
}
