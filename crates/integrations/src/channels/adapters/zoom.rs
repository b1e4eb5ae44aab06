//! Zoom webinar registrations.
//!
//! Documented behaviour followed ("Using webhooks": verify webhook events, validate your
//! webhook endpoint): `x-zm-signature: v0=<hex HMAC-SHA256(secret token,
//! "v0:{x-zm-request-timestamp}:{raw body}")>`. `endpoint.url_validation` is answered 200
//! with JSON `{plainToken, encryptedToken: hex(HMAC-SHA256(secret token, plainToken))}`;
//! like Zoom's own sample it is answered only after the signature checks, so the endpoint
//! is no signing oracle. `webinar.registration_created` carries `payload.object` (the
//! webinar: `id, uuid, topic`) and `payload.object.registrant` (`id, email, first_name,
//! last_name, address, city, country, zip, state, phone, industry, org, job_title,
//! no_of_employees, comments, custom_questions[{title, value}], join_url`). Idempotency
//! key `zoom:webinar:{webinar id}:registrant:{registrant id}`.

use super::{arr, header, ignored, item, obj, one, require_post, str_of, touch_ids};
use crate::channels::standard::{Standard, id_text};
use crate::channels::{Handled, HookError, HookRequest, body, sig};
use serde_json::{Map, Value, json};

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
    match str_of(&v, "event") {
        Some("endpoint.url_validation") => {
            let plain = v
                .get("payload")
                .and_then(|p| str_of(p, "plainToken"))
                .ok_or_else(|| HookError::Malformed("url_validation without plainToken".into()))?;
            let encrypted = hex::encode(sig::hmac_sha256(key, &[plain.as_bytes()]));
            let body = json!({"plainToken": plain, "encryptedToken": encrypted}).to_string();
            Ok(Handled::Challenge { status: 200, content_type: "application/json", body })
        }
        Some("webinar.registration_created") => {
            let object = v.get("payload").and_then(|p| p.get("object"));
            let webinar = object.and_then(|o| id_text(o.get("id"))).unwrap_or_default();
            let registrant = object.and_then(|o| o.get("registrant"));
            let rid = registrant
                .and_then(|r| id_text(r.get("id")).or_else(|| id_text(r.get("email"))))
                .ok_or_else(|| HookError::Malformed("registration without registrant".into()))?;
            Ok(one(item(format!("zoom:webinar:{webinar}:registrant:{rid}"), event.clone(), false)))
        }
        Some(other) => Ok(ignored(format!("{other} is not a registration"))),
        None => Err(HookError::Malformed("missing event".into())),
    }
}

pub fn standardize(payload: &Map<String, Value>) -> Result<Standard, HookError> {
    let object = Value::Object(obj(obj(payload, "payload")?, "object")?.clone());
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
