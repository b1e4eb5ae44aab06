//! Calendly webhook subscriptions (API v2).
//!
//! Documented behaviour followed ("Webhook signatures"): `Calendly-Webhook-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256(signing key, "{t}.{raw body}")>`, and reject stale
//! `t` (Calendly's examples use 3 minutes; leadflow uses its 5-minute window).
//! Payload `{event, created_at, created_by, payload: {uri, email, name, first_name,
//! last_name, text_reminder_number, timezone, questions_and_answers[{question, answer}],
//! tracking: {utm_*, salesforce_uuid}, scheduled_event}}`. Only `invitee.created` is a
//! lead; `invitee.canceled` and other events are acknowledged and ignored. Idempotency key
//! `calendly:{payload.uri}` (the invitee's URI; a reschedule creates a new invitee).

use super::{arr, header, ignored, item, obj, one, require_post, str_of, touch_ids};
use crate::channels::standard::Standard;
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

pub fn handle(req: &HookRequest, secret: Option<&str>) -> Result<Handled, HookError> {
    require_post(req)?;
    let key = sig::require_secret(secret, "calendly")?;
    let got = header(req, "calendly-webhook-signature")?;
    let mut t = None;
    let mut v1 = None;
    for part in got.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(HookError::Unauthorized("signature header without t and v1".into()));
    };
    sig::check_fresh(t, false, req.now)?;
    if !sig::verify_hex(&sig::hmac_sha256(key, &[t.as_bytes(), b".", req.body]), v1) {
        return Err(HookError::Unauthorized("signature mismatch".into()));
    }
    let event = body::json_object(req.body)?;
    let v = Value::Object(event.clone());
    match str_of(&v, "event") {
        Some("invitee.created") => {}
        Some(other) => return Ok(ignored(format!("{other} is not a new lead"))),
        None => return Err(HookError::Malformed("missing event".into())),
    }
    let uri = v
        .get("payload")
        .and_then(|p| str_of(p, "uri"))
        .ok_or_else(|| HookError::Malformed("invitee without uri".into()))?;
    Ok(one(item(format!("calendly:{uri}"), event.clone(), false)))
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let p = Value::Object(obj(payload, "payload")?.clone());
    let mut s = Standard::default();
    for k in ["email", "first_name", "last_name"] {
        if let Some(x) = p.get(k) {
            s.set(k, x);
        }
    }
    if let Some(name) = p.get("name") {
        s.set_full_name("name", name);
    }
    if let Some(n) = p.get("text_reminder_number") {
        s.set("phone", n);
    }
    for qa in arr(&p, "questions_and_answers") {
        if let Some(q) = str_of(qa, "question") {
            s.assign(q, qa.get("answer").unwrap_or(&Value::Null));
        }
    }
    if let Some(tracking) = p.get("tracking").and_then(Value::as_object) {
        for (k, x) in tracking {
            if k.starts_with("utm_") {
                s.assign(k, x);
            } else {
                s.touch(k, x);
            }
        }
    }
    s.touch("provider", &json!("calendly"));
    touch_ids(&mut s, &p, &[("uri", "lead_id"), ("event", "scheduled_event_id")]);
    if let Some(ev) = p.get("scheduled_event") {
        touch_ids(&mut s, ev, &[("uri", "scheduled_event_id"), ("event_type", "event_type")]);
        s.custom("scheduled_event", ev.clone());
    }
    for k in ["timezone", "status", "rescheduled", "old_invitee", "routing_form_submission", "payment"] {
        if let Some(x) = p.get(k) {
            s.custom(k, x.clone());
        }
    }
    Ok(s)
}
