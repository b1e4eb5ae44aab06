//! CRM feedback webhooks: HubSpot's webhooks API and Salesforce outbound messages,
//! verified and read into [`CrmNotification`]s, one per changed CRM record.
//!
//! Contract: a parser verifies the request first (HubSpot's v3 signature with a ±5 min
//! timestamp window; Salesforce's shared `?token=` and organization id, since outbound
//! messages cannot carry custom headers), then reads the documented payload. It never
//! interprets values: which field is the status and what `OPEN_DEAL` means is the
//! destination's mapping, applied by the caller. Failure modes are [`HookError`]s, as for
//! lead webhooks; nothing here panics on hostile input (see the proptests and
//! [`fuzz_entry`]).

pub mod hubspot;
pub mod salesforce;

use crate::channels::{HookError, HookRequest};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// One changed CRM record, as the provider reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct CrmNotification {
    /// The provider's id for this notification, stable across its retries: the
    /// idempotency key.
    pub event_id: String,
    /// The CRM's id of the record (HubSpot contact id, Salesforce Lead id).
    pub object_id: String,
    /// Field (property) name → new value, as sent.
    pub fields: Vec<(String, String)>,
    /// Other fields of the same record changed in the same request (HubSpot sends one
    /// event per property): where a reason sent beside a status is found.
    pub context: Vec<(String, String)>,
    /// When the change happened, if the provider says.
    pub occurred_at: Option<OffsetDateTime>,
    /// The notification as received, for the audit.
    pub payload: Map<String, Value>,
}

/// Runs both parsers over arbitrary bytes (see the `feedback` fuzz target). Must never
/// panic.
pub fn fuzz_entry(data: &[u8]) {
    let (head, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let query = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let req = HookRequest {
        method: "POST",
        url: "https://leadflow.example/v1/feedback/fuzz",
        query: &query,
        headers: &headers,
        content_type: Some("text/xml"),
        body,
        now: OffsetDateTime::UNIX_EPOCH,
    };
    let _ = hubspot::parse(&req, Some("s"), None);
    let _ = hubspot::read_events(body, None);
    let _ = salesforce::parse(&req, Some("s"), "00D000000000001AAA");
    let _ = salesforce::read_message(body);
}

fn malformed(detail: impl Into<String>) -> HookError {
    HookError::Malformed(detail.into())
}
