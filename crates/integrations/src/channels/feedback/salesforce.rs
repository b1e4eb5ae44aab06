//! Salesforce outbound messages (SOAP API Developer Guide, "Understanding Outbound
//! Messaging" and "Understanding the Outbound Messaging WSDL"): a SOAP 1.1 envelope whose
//! body is `notifications` (namespace `http://soap.sforce.com/2005/09/outbound`) with
//! `OrganizationId`, `ActionId`, `SessionId`, `EnterpriseUrl`, `PartnerUrl` and up to 100
//! `Notification`s, each an `Id` (stable across Salesforce's retries: the idempotency key)
//! and an `sObject` (`xsi:type="sf:Lead"`) holding the fields chosen for the message
//! (`sf:Id`, `sf:Email`, `sf:Status`, …). The listener answers [`ACK`], the documented
//! `notificationsResponse` with `<Ack>true</Ack>`; anything else makes Salesforce retry.
//!
//! Outbound messages cannot carry custom headers, so a message is authenticated by the
//! shared `?token=` of the endpoint URL (compared in constant time) and its organization
//! id, which must be the configured one (the 15-character prefix of an 18-character id is
//! the same id). Salesforce signs nothing else one could check without a client
//! certificate. Parsing uses quick-xml's streaming reader: no DTD or entity expansion
//! beyond XML's five predefined entities and character references, nesting bounded.

use super::{CrmNotification, malformed};
use crate::channels::adapters::require_post;
use crate::channels::{HookError, HookRequest, sig};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The acknowledgement Salesforce expects once every notification of a message is safe.
pub const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
);

/// The WSDL allows 100 notifications per message.
const MAX_NOTIFICATIONS: usize = 100;
/// The envelope nests five deep; anything much deeper is not an outbound message.
const MAX_DEPTH: usize = 16;

/// A message as read, before the organization is checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    pub organization_id: String,
    pub notifications: Vec<CrmNotification>,
}

/// Checks the token, reads the message and checks its organization id.
pub fn parse(req: &HookRequest, token: Option<&str>, organization_id: &str) -> Result<Message, HookError> {
    require_post(req)?;
    let expected = sig::require_secret(token, "salesforce feedback")?;
    match req.query_param("token") {
        Some(t) if sig::ct_eq(expected, t.as_bytes()) => {}
        Some(_) => return Err(HookError::Unauthorized("wrong token".into())),
        None => return Err(HookError::Unauthorized("missing token".into())),
    }
    let message = read_message(req.body)?;
    if !same_org(&message.organization_id, organization_id) {
        return Err(HookError::Unauthorized("the message is from another Salesforce organization".into()));
    }
    Ok(message)
}

/// Salesforce ids come in a case-sensitive 15-character form and an 18-character form
/// that adds a checksum: the same organization either way.
fn same_org(got: &str, configured: &str) -> bool {
    let short = |s: &str| s.get(..15).map(str::to_owned);
    got.len() >= 15 && configured.len() >= 15 && short(got) == short(configured)
}

/// Where the reader is in the envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Outside,
    OrganizationId,
    Notification,
    NotificationId,
    SObject,
    Field,
}

/// Reads an outbound message body.
pub fn read_message(body: &[u8]) -> Result<Message, HookError> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("the message is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut at = At::Outside;
    let mut message = Message::default();
    let mut saw_notifications = false;
    let mut current: Option<CrmNotification> = None;
    let mut field = String::new();
    let mut value = String::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(format!("invalid XML: {e}")))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().into_inner().to_owned();
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed("the XML nests too deep"));
                }
                let parent = stack.last().map(String::as_str);
                at = match (at, parent, name.as_str()) {
                    (At::Outside, None, "Envelope") | (At::Outside, Some("Envelope"), "Body") => At::Outside,
                    (At::Outside, Some("Body"), "notifications") => {
                        saw_notifications = true;
                        At::Outside
                    }
                    (At::Outside, Some("notifications"), "OrganizationId") => {
                        value.clear();
                        At::OrganizationId
                    }
                    (At::Outside, Some("notifications"), "Notification") => {
                        if message.notifications.len() >= MAX_NOTIFICATIONS {
                            return Err(malformed(format!("more than {MAX_NOTIFICATIONS} notifications")));
                        }
                        current = Some(empty_notification());
                        At::Notification
                    }
                    (At::Notification, Some("Notification"), "Id") => {
                        value.clear();
                        At::NotificationId
                    }
                    (At::Notification, Some("Notification"), "sObject") => {
                        if let (Some(n), Some(kind)) = (current.as_mut(), attribute(&e, "type")) {
                            n.payload.insert("type".into(), Value::String(kind));
                        }
                        At::SObject
                    }
                    (At::SObject, Some("sObject"), _) => {
                        field.clone_from(&name);
                        value.clear();
                        At::Field
                    }
                    (At::Outside, None, _) => return Err(malformed("not a SOAP envelope")),
                    // Elements the listener has no use for (SessionId, a field's own
                    // structure) are skipped whole.
                    (state, _, _) => state,
                };
                stack.push(name);
            }
            Event::Empty(e) => {
                // `<sf:Email xsi:nil="true"/>`: the field is empty.
                if at == At::SObject
                    && let Some(n) = current.as_mut()
                {
                    let name = e.local_name().into_inner().to_owned();
                    n.payload.insert(name.clone(), Value::Null);
                    n.fields.push((name, String::new()));
                }
            }
            Event::Text(t) => value.push_str(&t.xml10_content()),
            Event::CData(t) => value.push_str(&t),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| malformed("an undeclared entity"))?
                        .to_owned(),
                };
                value.push_str(&resolved);
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                at = match (at, name.as_str()) {
                    (At::OrganizationId, "OrganizationId") => {
                        message.organization_id = value.trim().to_owned();
                        At::Outside
                    }
                    (At::NotificationId, "Id") => {
                        if let Some(n) = current.as_mut() {
                            n.event_id = value.trim().to_owned();
                        }
                        At::Notification
                    }
                    (At::Field, _) if name == field => {
                        if let Some(n) = current.as_mut() {
                            let v = value.trim().to_owned();
                            n.payload.insert(field.clone(), Value::String(v.clone()));
                            n.fields.push((field.clone(), v));
                        }
                        At::SObject
                    }
                    (At::SObject, "sObject") => At::Notification,
                    (At::Notification, "Notification") => {
                        if let Some(n) = current.take() {
                            message.notifications.push(finish(n)?);
                        }
                        At::Outside
                    }
                    (state, _) => state,
                };
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(malformed("a DOCTYPE has no place in an outbound message")),
        }
    }
    if !saw_notifications {
        return Err(malformed("no notifications element"));
    }
    if message.organization_id.is_empty() {
        return Err(malformed("no OrganizationId"));
    }
    Ok(message)
}

fn empty_notification() -> CrmNotification {
    CrmNotification {
        event_id: String::new(),
        object_id: String::new(),
        fields: Vec::new(),
        context: Vec::new(),
        occurred_at: None,
        payload: Map::new(),
    }
}

/// Checks a notification is complete: its `Id` and the record's `Id` are required; the
/// time is the record's `LastModifiedDate` (or `SystemModstamp`) when the message has it.
fn finish(mut n: CrmNotification) -> Result<CrmNotification, HookError> {
    let get = |name: &str| n.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    n.object_id =
        get("Id").filter(|id| !id.is_empty()).ok_or_else(|| malformed("a notification's sObject has no Id"))?;
    if n.event_id.is_empty() {
        return Err(malformed("a notification has no Id"));
    }
    n.occurred_at = get("LastModifiedDate")
        .or_else(|| get("SystemModstamp"))
        .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok());
    n.payload.insert("notification_id".into(), Value::String(n.event_id.clone()));
    Ok(n)
}

fn attribute(e: &quick_xml::events::BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.local_name().into_inner() == local).and_then(|a| {
        let v = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok()?;
        Some(v.into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An outbound message as the WSDL describes it, for a Lead with the fields chosen
    /// for the message (two notifications, one field empty, an entity in a value).
    const DOCUMENTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000062EAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D000000000062</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D000000000062</PartnerUrl>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q000000000001AAA</sf:Id>
     <sf:Email>ada@acme.example</sf:Email>
     <sf:LastModifiedDate>2026-06-01T12:00:00.000Z</sf:LastModifiedDate>
     <sf:OwnerId>005000000000001AAA</sf:OwnerId>
     <sf:Status>Closed - Not Converted</sf:Status>
     <sf:Disqualification_Reason__c>No budget &amp; no plan</sf:Disqualification_Reason__c>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l000000000002AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q000000000002AAA</sf:Id>
     <sf:Email xsi:nil="true"/>
     <sf:Status><![CDATA[Working - Contacted]]></sf:Status>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    fn request<'a>(body: &'a [u8], query: &'a str) -> HookRequest<'a> {
        HookRequest {
            method: "POST",
            url: "https://leadflow.example/v1/feedback/sf",
            query,
            headers: &[],
            content_type: Some("text/xml; charset=utf-8"),
            body,
            now: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_documented_message_is_read_field_by_field() {
        let m = parse(&request(DOCUMENTED.as_bytes(), "token=tok"), Some("tok"), "00D000000000062").unwrap();
        assert_eq!(m.organization_id, "00D000000000062EAA");
        let [first, second] = &m.notifications[..] else { panic!("{m:?}") };
        assert_eq!((first.event_id.as_str(), first.object_id.as_str()), ("04l000000000001AAA", "00Q000000000001AAA"));
        let field = |n: &CrmNotification, k: &str| n.fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        assert_eq!(field(first, "Status").as_deref(), Some("Closed - Not Converted"));
        assert_eq!(field(first, "Disqualification_Reason__c").as_deref(), Some("No budget & no plan"));
        assert_eq!(first.occurred_at.unwrap().unix_timestamp(), 1_780_315_200);
        assert_eq!(first.payload["type"], "sf:Lead");
        assert_eq!(field(second, "Email").as_deref(), Some(""));
        assert_eq!(field(second, "Status").as_deref(), Some("Working - Contacted"));
        assert!(second.occurred_at.is_none());
    }

    #[test]
    fn the_token_and_the_organization_are_checked() {
        let body = DOCUMENTED.as_bytes();
        let refused = |query: &str, token: Option<&str>, org: &str| {
            matches!(parse(&request(body, query), token, org), Err(HookError::Unauthorized(_)))
        };
        assert!(refused("", Some("tok"), "00D000000000062EAA"), "missing token");
        assert!(refused("token=nope", Some("tok"), "00D000000000062EAA"), "wrong token");
        assert!(refused("token=tok", None, "00D000000000062EAA"), "no token configured");
        assert!(refused("token=tok", Some("tok"), "00D000000000063EAA"), "another organization");
        assert!(parse(&request(body, "token=tok"), Some("tok"), "00D000000000062EAA").is_ok());
    }

    #[test]
    fn the_ack_is_the_documented_response() {
        let ack = read_ack(ACK);
        assert_eq!(ack, "true");
    }

    fn read_ack(xml: &str) -> String {
        let mut r = Reader::from_str(xml);
        let mut in_ack = false;
        loop {
            match r.read_event().unwrap() {
                Event::Start(e) if e.local_name().into_inner() == "Ack" => in_ack = true,
                Event::Text(t) if in_ack => return t.xml10_content().into_owned(),
                Event::Eof => return String::new(),
                _ => {}
            }
        }
    }

    #[test]
    fn hostile_or_foreign_xml_is_malformed() {
        let cases = [
            "",
            "not xml",
            "<a><b></a>",
            r#"<!DOCTYPE x [<!ENTITY e "boom">]><soapenv:Envelope xmlns:soapenv="s"><soapenv:Body/></soapenv:Envelope>"#,
            "<Envelope><Body><notifications><OrganizationId>x</OrganizationId><Notification><Id>1</Id><sObject><Status>&e;</Status></sObject></Notification></notifications></Body></Envelope>",
            "<Envelope><Body><notifications><Notification><Id>1</Id></Notification></notifications></Body></Envelope>",
            "<Envelope><Body><other/></Body></Envelope>",
            "<html><body>hi</body></html>",
        ];
        for body in cases {
            assert!(matches!(read_message(body.as_bytes()), Err(HookError::Malformed(_))), "{body}");
        }
        let deep = format!("<Envelope>{}{}</Envelope>", "<a>".repeat(100), "</a>".repeat(100));
        assert!(matches!(read_message(deep.as_bytes()), Err(HookError::Malformed(_))));
        let many = format!(
            "<Envelope><Body><notifications><OrganizationId>00D000000000062</OrganizationId>{}</notifications></Body></Envelope>",
            "<Notification><Id>1</Id><sObject><Id>2</Id></sObject></Notification>".repeat(101)
        );
        assert!(matches!(read_message(many.as_bytes()), Err(HookError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn reading_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_message(&body);
        }

        #[test]
        fn mutated_messages_never_panic(cut in 0usize..2000, insert in ".{0,8}") {
            let mut text = DOCUMENTED.to_owned();
            let at = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.insert_str(at, &insert);
            let _ = read_message(text.as_bytes());
            let _ = read_message(&DOCUMENTED.as_bytes()[..cut.min(DOCUMENTED.len())]);
        }
    }
}
