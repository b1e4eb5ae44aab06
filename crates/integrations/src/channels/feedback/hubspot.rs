//! HubSpot webhooks API (legacy and project apps, "Webhooks API" guide): a JSON array of
//! up to 100 events per request, each
//! `{eventId, subscriptionId, portalId, appId, occurredAt (ms), subscriptionType,
//! attemptNumber, objectId, propertyName, propertyValue, changeSource, sourceId}`.
//!
//! Verified as "Validating requests from HubSpot" (v3) documents it: reject when
//! `X-HubSpot-Request-Timestamp` (ms) is more than 5 minutes away; the signed string is
//! `method + uri + body + timestamp`, `uri` being the full URL called with HubSpot's
//! listed percent-encodings decoded; HMAC-SHA256 with the app's client secret, base64, in
//! `X-HubSpot-Signature-v3`; compared in constant time.
//!
//! Taken: `contact.propertyChange`, and the generic `object.propertyChange` for contacts
//! (`objectTypeId` `0-1`). Other subscription types, and events of another portal when a
//! portal id is configured, are skipped. HubSpot says `eventId` is not guaranteed unique,
//! so the idempotency key also holds the object, property and time, which a retry of the
//! same event repeats (`attemptNumber` does not count).

use super::{CrmNotification, malformed};
use crate::channels::adapters::hubspot::verify_v3;
use crate::channels::adapters::require_post;
use crate::channels::standard::id_text;
use crate::channels::{HookError, HookRequest, body};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// HubSpot sends at most 100 events per request; anything far beyond is not HubSpot.
const MAX_EVENTS: usize = 1000;

/// What a request carried: the notifications to act on and how many events were skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Events {
    pub notifications: Vec<CrmNotification>,
    pub skipped: usize,
}

/// Verifies the request and reads its events.
pub fn parse(req: &HookRequest, secret: Option<&str>, portal_id: Option<&str>) -> Result<Events, HookError> {
    require_post(req)?;
    verify_v3(req, secret, "hubspot feedback")?;
    read_events(req.body, portal_id)
}

/// Reads a (verified) body.
pub fn read_events(raw: &[u8], portal_id: Option<&str>) -> Result<Events, HookError> {
    let events = match body::json_value(raw)? {
        Value::Array(events) => events,
        _ => return Err(malformed("expected the webhooks API's JSON array of events")),
    };
    if events.len() > MAX_EVENTS {
        return Err(malformed(format!("more than {MAX_EVENTS} events in one request")));
    }
    let mut out = Events::default();
    let mut taken: Vec<(String, Map<String, Value>)> = Vec::new();
    for event in events {
        let Value::Object(event) = event else { return Err(malformed("every event must be an object")) };
        let text = |k: &str| id_text(event.get(k));
        let kind = event.get("subscriptionType").and_then(Value::as_str).unwrap_or_default();
        let contact_change = kind.eq_ignore_ascii_case("contact.propertyChange")
            || (kind.eq_ignore_ascii_case("object.propertyChange") && text("objectTypeId").as_deref() == Some("0-1"));
        let other_portal = portal_id.is_some_and(|p| text("portalId").as_deref() != Some(p));
        let property = event.get("propertyName").and_then(Value::as_str).unwrap_or_default();
        if !contact_change || other_portal || property.is_empty() || text("objectId").is_none() {
            out.skipped += 1;
            continue;
        }
        taken.push((property.to_owned(), event));
    }
    for (i, (property, event)) in taken.iter().enumerate() {
        let text = |e: &Map<String, Value>, k: &str| id_text(e.get(k));
        let object = text(event, "objectId").unwrap_or_default();
        let value = event.get("propertyValue").map(value_text).unwrap_or_default();
        let occurred_ms = event.get("occurredAt").and_then(Value::as_i64);
        let event_id = format!(
            "{}/{object}/{property}/{}",
            text(event, "eventId").unwrap_or_default(),
            occurred_ms.map(|ms| ms.to_string()).unwrap_or_default()
        );
        let context = taken
            .iter()
            .enumerate()
            .filter(|(j, (_, other))| *j != i && text(other, "objectId").as_deref() == Some(object.as_str()))
            .map(|(_, (p, other))| (p.clone(), other.get("propertyValue").map(value_text).unwrap_or_default()))
            .collect();
        out.notifications.push(CrmNotification {
            event_id,
            object_id: object,
            fields: vec![(property.clone(), value)],
            context,
            occurred_at: occurred_ms.and_then(from_millis),
            payload: event.clone(),
        });
    }
    Ok(out)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms).checked_mul(1_000_000)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::sig;
    use base64::Engine;
    use proptest::prelude::*;

    const SECRET: &str = "hubspot-client-secret";
    const URL: &str = "https://leadflow.example/v1/feedback/hubspot-main";

    /// The example of HubSpot's webhooks guide, with a second event for the same contact.
    const DOCUMENTED: &str = r#"[
      {"objectId": 1246965, "propertyName": "lifecyclestage", "propertyValue": "subscriber",
       "changeSource": "ACADEMY", "eventId": 3816279340, "subscriptionId": 25, "portalId": 33,
       "appId": 1160452, "occurredAt": 1462216307945, "subscriptionType": "contact.propertyChange",
       "attemptNumber": 0},
      {"objectId": 1246965, "propertyName": "hs_lead_status", "propertyValue": "UNQUALIFIED",
       "changeSource": "CRM_UI", "eventId": 3816279341, "subscriptionId": 26, "portalId": 33,
       "appId": 1160452, "occurredAt": 1462216307946, "subscriptionType": "contact.propertyChange",
       "attemptNumber": 0},
      {"objectId": 1246966, "eventId": 3816279342, "subscriptionId": 27, "portalId": 33, "appId": 1160452,
       "occurredAt": 1462216307947, "subscriptionType": "contact.creation", "attemptNumber": 0}
    ]"#;

    fn signed<'a>(body: &'a [u8], headers: &'a mut Vec<(String, String)>, ts_ms: i64) -> HookRequest<'a> {
        let ts = ts_ms.to_string();
        let mac = sig::hmac_sha256(SECRET.as_bytes(), &[b"POST", URL.as_bytes(), body, ts.as_bytes()]);
        headers.push(("x-hubspot-signature-v3".into(), base64::engine::general_purpose::STANDARD.encode(mac)));
        headers.push(("x-hubspot-request-timestamp".into(), ts));
        HookRequest {
            method: "POST",
            url: URL,
            query: "",
            headers,
            content_type: Some("application/json"),
            body,
            now: OffsetDateTime::from_unix_timestamp(1_462_216_310).unwrap(),
        }
    }

    #[test]
    fn documented_events_are_read_with_their_siblings_as_context() {
        let mut headers = Vec::new();
        let req = signed(DOCUMENTED.as_bytes(), &mut headers, 1_462_216_309_000);
        let events = parse(&req, Some(SECRET), None).unwrap();
        assert_eq!(events.skipped, 1, "the creation event is not a property change");
        let [first, second] = &events.notifications[..] else { panic!("{events:?}") };
        assert_eq!(first.event_id, "3816279340/1246965/lifecyclestage/1462216307945");
        assert_eq!(first.object_id, "1246965");
        assert_eq!(first.fields, [("lifecyclestage".to_owned(), "subscriber".to_owned())]);
        assert_eq!(first.context, [("hs_lead_status".to_owned(), "UNQUALIFIED".to_owned())]);
        assert_eq!(first.occurred_at.unwrap().unix_timestamp(), 1_462_216_307);
        assert_eq!(second.fields[0].1, "UNQUALIFIED");
        assert_eq!(parse(&req, Some(SECRET), Some("34")).unwrap().notifications.len(), 0, "another portal");
    }

    #[test]
    fn tampered_stale_unsigned_and_wrongly_keyed_requests_are_refused() {
        let mut headers = Vec::new();
        let req = signed(DOCUMENTED.as_bytes(), &mut headers, 1_462_216_309_000);
        let tampered = DOCUMENTED.replace("UNQUALIFIED", "OPEN_DEAL");
        let forged = HookRequest { body: tampered.as_bytes(), ..req.clone() };
        assert!(matches!(parse(&forged, Some(SECRET), None), Err(HookError::Unauthorized(_))));
        assert!(matches!(parse(&req, Some("other"), None), Err(HookError::Unauthorized(_))));
        assert!(matches!(parse(&req, None, None), Err(HookError::Unauthorized(_))));
        let mut headers = Vec::new();
        let stale = signed(DOCUMENTED.as_bytes(), &mut headers, 1_462_215_000_000);
        assert!(matches!(parse(&stale, Some(SECRET), None), Err(HookError::Stale(_))));
        let unsigned = HookRequest { headers: &[], ..req.clone() };
        assert!(matches!(parse(&unsigned, Some(SECRET), None), Err(HookError::Unauthorized(_))));
        let get = HookRequest { method: "GET", ..req };
        assert!(matches!(parse(&get, Some(SECRET), None), Err(HookError::Unsupported(_))));
    }

    #[test]
    fn a_signature_vector_computed_by_hand_verifies() {
        // HMAC-SHA256("secret", "POST" + "https://x.example/h" + "[]" + "1700000000000"), base64.
        let mac = sig::hmac_sha256(b"secret", &[b"POSThttps://x.example/h[]1700000000000"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&mac);
        assert_eq!(b64, "AAyjmD2XRxhwg4GGnSxcnGsJJZJ63OKXABO6dv45wpk=");
        let headers = vec![
            ("x-hubspot-signature-v3".to_owned(), b64),
            ("x-hubspot-request-timestamp".to_owned(), "1700000000000".to_owned()),
        ];
        let req = HookRequest {
            method: "POST",
            url: "https://x.example/h",
            query: "",
            headers: &headers,
            content_type: None,
            body: b"[]",
            now: OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap(),
        };
        assert_eq!(parse(&req, Some("secret"), None).unwrap(), Events::default());
    }

    #[test]
    fn bodies_that_are_not_an_event_array_are_malformed() {
        for body in ["{}", "[1]", "not json", ""] {
            assert!(matches!(read_events(body.as_bytes(), None), Err(HookError::Malformed(_))), "{body}");
        }
    }

    proptest! {
        #[test]
        fn reading_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_events(&body, Some("33"));
        }

        #[test]
        fn reading_event_shaped_json_never_panics(
            object in any::<i64>(), property in ".{0,12}", value in prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from), ".{0,12}".prop_map(Value::from)],
            occurred in any::<i64>(), event_id in any::<u64>(),
        ) {
            let body = serde_json::json!([{"objectId": object, "propertyName": property, "propertyValue": value,
                "occurredAt": occurred, "eventId": event_id, "subscriptionType": "contact.propertyChange", "portalId": 33}]);
            let read = read_events(body.to_string().as_bytes(), None).unwrap();
            prop_assert!(read.notifications.len() + read.skipped == 1);
        }
    }
}
