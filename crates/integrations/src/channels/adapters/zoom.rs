//! Zoom webinars and meetings: registrations become leads; registrations, cancellations
//! and participants joining and leaving become the lead's attendance.
//!
//! Documented behaviour followed ("Using webhooks": verify webhook events, validate your
//! webhook endpoint): `x-zm-signature: v0=<hex HMAC-SHA256(secret token,
//! "v0:{x-zm-request-timestamp}:{raw body}")>`. `endpoint.url_validation` is answered 200
//! with JSON `{plainToken, encryptedToken: hex(HMAC-SHA256(secret token, plainToken))}`;
//! like Zoom's own sample it is answered only after the signature checks, so the endpoint
//! is no signing oracle.
//!
//! `webinar.registration_created` (and `meeting.`) carries `payload.object` (the webinar:
//! `id, uuid, topic, start_time, duration` in minutes) and `payload.object.registrant`
//! (`id, email, first_name, last_name, address, city, country, zip, state, phone,
//! industry, org, job_title, no_of_employees, comments, custom_questions[{title, value}],
//! join_url`): a lead keyed `zoom:webinar:{webinar id}:registrant:{registrant id}`, and an
//! `attendance.registered` event whose `ends_at` (start plus duration) later tells a
//! no-show. `registration_cancelled` and `registration_denied` cancel it.
//! `participant_joined` and `participant_left` carry `payload.object.participant`
//! (`user_id, user_name, id, participant_uuid, email, join_time` or `leave_time`,
//! `registrant_id`): `attendance.joined` and `attendance.left`, paired by the participant's
//! uuid (else its id, else its user id) into minutes attended. A participant who did not
//! register is a lead too (keyed by webinar and email); one without an email is
//! acknowledged and not recorded: nobody can be named.
//!
//! The event an attendance names is `zoom:webinar:{id}` or `zoom:meeting:{id}`: the
//! occurrences of a recurring webinar share it.

use super::{arr, header, ignored, item, obj, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Activity, Handled, HookError, HookRequest, Item, body, sig};
use leadflow_core::engagement::attendance::kinds;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "zoom_webinar")?;
    let got = header(req, "x-zm-signature")?;
    let ts = header(req, "x-zm-request-timestamp")?;
    sig::check_fresh(ts, false, req.now)?;
    let hex_sig = got.strip_prefix("v0=").ok_or_else(|| HookError::Unauthorized("bad signature format".into()))?;
    let mac = sig::hmac_sha256(key, &[b"v0:", ts.as_bytes(), b":", req.body]);
    if !sig::verify_hex(&mac, hex_sig) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let event = body::json_object(req.body)?;
    let v = Value::Object(event.clone());
    let Some(name) = str_of(&v, "event") else { return Err(HookError::Malformed("missing event".into())) };
    if name == "endpoint.url_validation" {
        let plain = v
            .get("payload")
            .and_then(|p| str_of(p, "plainToken"))
            .ok_or_else(|| HookError::Malformed("url_validation without plainToken".into()))?;
        let encrypted = hex::encode(sig::hmac_sha256(key, &[plain.as_bytes()]));
        let body = json!({"plainToken": plain, "encryptedToken": encrypted}).to_string();
        return Ok(Handled::Challenge { status: 200, content_type: "application/json", body });
    }
    let Some((scope, topic)) = name.split_once('.').filter(|(s, _)| matches!(*s, "webinar" | "meeting")) else {
        return Ok(ignored(format!("{name} is not about a webinar or meeting")));
    };
    let object = v.get("payload").and_then(|p| p.get("object")).unwrap_or(&Value::Null);
    let id =
        id_text(object.get("id")).ok_or_else(|| HookError::Malformed(format!("{name} without payload.object.id")))?;
    let session = Session { event: format!("zoom:{scope}:{id}"), object, sent_at: event_ts(&v).unwrap_or(req.now) };
    match topic {
        "registration_created" => {
            let registrant = object.get("registrant");
            let rid = registrant
                .and_then(|r| id_text(r.get("id")).or_else(|| id_text(r.get("email"))))
                .ok_or_else(|| HookError::Malformed("registration without registrant".into()))?;
            let key = format!("{}:registrant:{rid}", session.event);
            let lead = item(key.clone(), event.clone(), false);
            let activity = registrant
                .and_then(|r| session.activity(r, kinds::REGISTERED, &format!("{key}:registered"), session.sent_at))
                .into_iter()
                .collect();
            Ok(Handled::Activity { items: vec![lead], activity })
        }
        "registration_cancelled" | "registration_denied" => {
            let registrant = object.get("registrant").unwrap_or(&Value::Null);
            let rid = id_text(registrant.get("id")).or_else(|| id_text(registrant.get("email"))).unwrap_or_default();
            let key = format!("{}:registrant:{rid}:{topic}:{}", session.event, stamp(session.sent_at));
            Ok(with_activity(Vec::new(), session.activity(registrant, kinds::CANCELLED, &key, session.sent_at)))
        }
        "participant_joined" | "participant_left" => {
            let p = object.get("participant").unwrap_or(&Value::Null);
            let joined = topic == "participant_joined";
            let at = time_of(p, if joined { "join_time" } else { "leave_time" }).unwrap_or(session.sent_at);
            let who = participant_id(p);
            let kind = if joined { kinds::JOINED } else { kinds::LEFT };
            let key = format!("{}:participant:{who}:{topic}:{}", session.event, stamp(at));
            let Some(mut activity) = session.activity(p, kind, &key, at) else {
                return Ok(ignored(format!("{name} without the participant's email")));
            };
            activity.properties.insert("session".into(), Value::String(who));
            if let (false, Some(from)) = (joined, time_of(p, "join_time")) {
                activity.properties.insert("joined_at".into(), Value::String(stamp(from)));
            }
            // A registrant is a lead already; anyone else who joins becomes one.
            let registered = id_text(p.get("registrant_id")).is_some();
            let items = if joined && !registered {
                let email = activity.email.as_deref().unwrap_or_default();
                vec![item(format!("{}:participant:{email}", session.event), event.clone(), false)]
            } else {
                Vec::new()
            };
            Ok(with_activity(items, Some(activity)))
        }
        _ => Ok(ignored(format!("{name} carries no registration or attendance"))),
    }
}

/// The webinar or meeting a notification is about.
struct Session<'a> {
    event: String,
    object: &'a Value,
    sent_at: OffsetDateTime,
}

impl Session<'_> {
    /// An attendance event of the person `who` names by email; `None` without one.
    fn activity(&self, who: &Value, kind: &str, key: &str, at: OffsetDateTime) -> Option<Activity> {
        let email = str_of(who, "email").map(str::trim).filter(|e| !e.is_empty())?.to_lowercase();
        let mut properties = Map::new();
        properties.insert("event".into(), Value::String(self.event.clone()));
        if let Some(topic) = str_of(self.object, "topic") {
            properties.insert("event_name".into(), Value::String(topic.to_owned()));
        }
        if let Some(start) = time_of(self.object, "start_time") {
            properties.insert("starts_at".into(), Value::String(stamp(start)));
            let minutes = self.object.get("duration").and_then(Value::as_i64).filter(|m| *m > 0);
            if let Some(end) = minutes.and_then(|m| start.checked_add(time::Duration::minutes(m))) {
                properties.insert("ends_at".into(), Value::String(stamp(end)));
            }
        }
        properties.insert("provider".into(), Value::String("zoom".into()));
        Some(Activity {
            idempotency_key: key.to_owned(),
            kind: kind.to_owned(),
            occurred_at: at,
            email: Some(email),
            visitor: None,
            properties,
        })
    }
}

fn with_activity(items: Vec<Item>, activity: Option<Activity>) -> Handled {
    match activity {
        Some(a) => Handled::Activity { items, activity: vec![a] },
        None if items.is_empty() => ignored("no email names the person"),
        None => Handled::Items(items),
    }
}

/// The participant's id for pairing a leave with its join: the uuid Zoom added in 2023,
/// else the participant id, else the user id.
fn participant_id(p: &Value) -> String {
    ["participant_uuid", "id", "user_id"].iter().find_map(|k| id_text(p.get(*k))).unwrap_or_default()
}

fn time_of(v: &Value, key: &str) -> Option<OffsetDateTime> {
    str_of(v, key).and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// `event_ts` is milliseconds since the epoch.
fn event_ts(v: &Value) -> Option<OffsetDateTime> {
    let ms = v.get("event_ts").and_then(Value::as_i64)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn stamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let object = Value::Object(obj(obj(payload, "payload")?, "object")?.clone());
    if let (None, Some(p)) = (object.get("registrant"), object.get("participant")) {
        return Ok(participant(&object, p));
    }
    let reg = object.get("registrant").ok_or_else(|| HookError::Malformed("missing registrant".into()))?;
    let mut s = Standard::default();
    let pairs = [
        ("email", "email"),
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("phone", "phone"),
        ("org", "company"),
        ("job_title", "job_title"),
        ("industry", "industry"),
        ("no_of_employees", "employee_count"),
        ("address", "street"),
        ("city", "city"),
        ("state", "state"),
        ("zip", "postal_code"),
        ("country", "country"),
    ];
    for (k, field) in pairs {
        if let Some(x) = reg.get(k)
            && !s.set(field, x)
        {
            s.custom(k, x.clone());
        }
    }
    for q in arr(reg, "custom_questions") {
        if let Some(title) = str_of(q, "title") {
            s.assign(title, q.get("value").unwrap_or(&Value::Null));
        }
    }
    for k in ["comments", "purchasing_time_frame", "role_in_purchase_process", "status", "join_url", "create_time"] {
        if let Some(x) = reg.get(k) {
            s.custom(k, x.clone());
        }
    }
    s.touch("provider", &json!("zoom"));
    touch_ids(&mut s, &object, &[("id", "webinar_id"), ("uuid", "webinar_uuid")]);
    touch_ids(&mut s, reg, &[("id", "lead_id")]);
    if let Some(topic) = object.get("topic") {
        s.custom("webinar_topic", topic.clone());
    }
    Ok(s)
}

/// Someone who joined without registering: the email and display name Zoom knows.
fn participant(object: &Value, p: &Value) -> Standard {
    let mut s = Standard::default();
    if let Some(email) = p.get("email") {
        s.set("email", email);
    }
    if let Some(name) = p.get("user_name") {
        s.set_full_name("user_name", name);
    }
    if let Some(phone) = p.get("phone_number") {
        s.set("phone", phone);
    }
    s.touch("provider", &json!("zoom"));
    touch_ids(&mut s, object, &[("id", "webinar_id"), ("uuid", "webinar_uuid")]);
    if let Some(topic) = object.get("topic") {
        s.custom("webinar_topic", topic.clone());
    }
    s
}
