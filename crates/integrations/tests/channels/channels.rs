//! Specification tests: one documented payload per provider, signed per the provider's
//! scheme, plus the refusals every adapter owes (tampered, stale, missing secret,
//! malformed) and replays that must map to the same idempotency key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failing test

use base64::Engine;
use hmac::{Hmac, Mac};
use leadflow_core::source::Adapter;
use leadflow_integrations::channels::{
    Activity, Fetch, Handled, HookError, HookRequest, Item, Secrets, SpamReason, handle, standardize,
};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;
use time::OffsetDateTime;

const SECRET: &str = "whsec_test_secret";
const URL: &str = "https://leadflow.example/v1/hooks/demo";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn mac256(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An owned request, so tests can build and tweak it.
#[derive(Clone)]
struct Req {
    method: &'static str,
    query: String,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    body: Vec<u8>,
    now: OffsetDateTime,
}

impl Req {
    fn post(body: impl Into<Vec<u8>>) -> Self {
        Req {
            method: "POST",
            query: String::new(),
            headers: vec![],
            content_type: Some("application/json".into()),
            body: body.into(),
            now: now(),
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn run(&self, adapter: Adapter, secrets: &Secrets) -> Result<Handled, HookError> {
        let url = if self.query.is_empty() { URL.to_owned() } else { format!("{URL}?{}", self.query) };
        let req = HookRequest {
            method: self.method,
            url: &url,
            query: &self.query,
            headers: &self.headers,
            content_type: self.content_type.as_deref(),
            body: &self.body,
            now: self.now,
        };
        handle(adapter, &req, secrets)
    }
}

mod email;
mod signed_json;

fn fixture_path(name: &str) -> String {
    format!("{}/tests/channels/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn secrets() -> Secrets {
    Secrets { secret: Some(SECRET.into()), previous: None, verify_token: Some("vt-123".into()) }
}

/// Signs `body` the way `adapter`'s provider does, with the signed timestamp `at`.
fn signed(adapter: Adapter, body: &[u8], at: OffsetDateTime) -> Req {
    let secs = at.unix_timestamp().to_string();
    let millis = (at.unix_timestamp() * 1000).to_string();
    let r = Req::post(body.to_vec());
    match adapter {
        Adapter::FacebookLeadAds => r.header("x-hub-signature-256", format!("sha256={}", hex::encode(mac256(&[body])))),
        Adapter::LinkedinLeadGen => r.header("x-li-signature", hex::encode(mac256(&[b"hmacsha256=", body]))),
        Adapter::Typeform => r.header("typeform-signature", format!("sha256={}", b64(&mac256(&[body])))),
        Adapter::Tally => r.header("tally-signature", b64(&mac256(&[body]))),
        Adapter::Calendly => {
            let v1 = hex::encode(mac256(&[secs.as_bytes(), b".", body]));
            r.header("calendly-webhook-signature", format!("t={secs},v1={v1}"))
        }
        Adapter::ZoomWebinar => {
            let v0 = hex::encode(mac256(&[b"v0:", secs.as_bytes(), b":", body]));
            r.header("x-zm-signature", format!("v0={v0}")).header("x-zm-request-timestamp", secs)
        }
        Adapter::Webflow => {
            let s = hex::encode(mac256(&[millis.as_bytes(), b":", body]));
            r.header("x-webflow-signature", s).header("x-webflow-timestamp", millis)
        }
        Adapter::HubspotForms => {
            let s = b64(&mac256(&[b"POST", URL.as_bytes(), body, millis.as_bytes()]));
            r.header("x-hubspot-signature-v3", s).header("x-hubspot-request-timestamp", millis)
        }
        Adapter::Intercom => {
            let mut m = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
            m.update(body);
            r.header("x-hub-signature", format!("sha1={}", hex::encode(m.finalize().into_bytes())))
        }
        Adapter::SignedJson => r.header("x-signature", hex::encode(mac256(&[body]))),
        // Drift signs nothing: its verification token comes in the body or this header.
        Adapter::Drift => r.header("x-verification-token", SECRET),
        // Postmark (a JSON body) does not sign: its URL carries the shared key.
        Adapter::Email => Req { query: format!("key={SECRET}"), ..r },
        // Google checks google_key in the body; the others do not sign (json: bearer keys).
        Adapter::GoogleAdsLeadForm | Adapter::WebForm | Adapter::Unbounce | Adapter::Jotform | Adapter::Json => r,
    }
}

fn items(h: Result<Handled, HookError>) -> Vec<Item> {
    match h {
        Ok(Handled::Items(items) | Handled::Activity { items, .. }) => items,
        other => panic!("expected items, got {other:?}"),
    }
}

fn only(h: Result<Handled, HookError>) -> Item {
    let mut v = items(h);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

// ---------------------------------------------------------------- documented payloads

/// Graph API Webhooks for Leadgen: the `leadgen` notification example.
fn facebook_body() -> Vec<u8> {
    json!({"object": "page", "entry": [{"id": "153125381133", "time": 1438292065, "changes": [{"field": "leadgen", "value": {
        "leadgen_id": "123123123123", "page_id": "123123123", "form_id": "12312312312",
        "adgroup_id": "12312312312", "ad_id": "12312312312", "created_time": 1440120384}}]}]})
    .to_string()
    .into_bytes()
}

/// Google Ads lead form webhook "Samples": Name, Email, Phone, Postal code, test lead.
fn google_body(key: &str) -> Vec<u8> {
    json!({
        "lead_id": "Cj0KCQjwit_8BRCoARIsAIx3Rj7g-AeL6z35IWb6VYiZUygtTfwD3hDlgSGmY-XTTlK3lfV1wcuIwIAaAmMxEALw_wcB",
        "campaign_id": 123456,
        "gcl_id": "Cj0KCQjwit_8BRCoARIsAIx3Rj7g-AeL6z35IWb6VYiZUygtTfwD3hDlgSGmY-XTTlK3lfV1wcuIwIAaAmMxEALw_wcB",
        "adgroup_id": 20000000000u64, "creative_id": 30000000000u64,
        "user_column_data": [
            {"column_name": "Full Name", "string_value": "John Doe", "column_id": "FULL_NAME"},
            {"column_name": "User Email", "string_value": "john@doe.com", "column_id": "EMAIL"},
            {"column_name": "User Phone", "string_value": "+11234567890", "column_id": "PHONE_NUMBER"},
            {"column_name": "Postal Code", "string_value": "94043", "column_id": "POSTAL_CODE"},
            {"column_name": "What is your preferred dealership?", "string_value": "Mountain View", "column_id": "dealership"}
        ],
        "api_version": "1.0", "form_id": 1234, "google_key": key, "is_test": true
    })
    .to_string()
    .into_bytes()
}

#[test]
fn facebook_leadgen_notification_becomes_a_fetch_item() {
    let body = facebook_body();
    let item = only(signed(Adapter::FacebookLeadAds, &body, now()).run(Adapter::FacebookLeadAds, &secrets()));
    assert_eq!(item.idempotency_key, "fb:leadgen:123123123123");
    assert_eq!(item.fetch, Some(Fetch::FacebookLead { leadgen_id: "123123123123".into() }));
    // Not standardizable before the Graph API answer is merged in.
    assert!(matches!(
        standardize(Adapter::FacebookLeadAds, &item.payload),
        Err(HookError::Missing { path, .. }) if path == "fetched"
    ));
    let mut payload = item.payload.clone();
    // "Retrieving leads" example answer.
    let lead = json!({"created_time": "2015-02-28T08:49:14+0000", "id": "123123123123", "ad_id": "12312312312",
        "form_id": "12312312312", "campaign_id": "555", "adset_id": "444",
        "field_data": [{"name": "car_make", "values": ["Honda"]}, {"name": "full_name", "values": ["Joe Example"]},
                       {"name": "email", "values": ["joe@example.com"]}, {"name": "selected_dealer", "values": ["99213450"]}],
        "custom_disclaimer_responses": [{"checkbox_key": "optin", "is_checked": "1"}]});
    Fetch::merge_into(&mut payload, lead.as_object().unwrap().clone());
    let s = standardize(Adapter::FacebookLeadAds, &payload).unwrap();
    assert_eq!(s.fields["first_name"], "Joe");
    assert_eq!(s.fields["last_name"], "Example");
    assert_eq!(s.fields["email"], "joe@example.com");
    assert_eq!(s.custom["car_make"], "Honda");
    assert_eq!(s.touchpoint["page_id"], "123123123");
    assert_eq!(s.touchpoint["campaign_id"], "555");
    assert_eq!(s.touchpoint["adset_id"], "444");
    assert_eq!(s.consent.as_ref().unwrap()["granted"], true);
}

#[test]
fn facebook_verification_answers_the_challenge_only_with_the_verify_token() {
    let mut r = Req::post(Vec::new());
    r.method = "GET";
    r.query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=vt-123".into();
    assert_eq!(
        r.run(Adapter::FacebookLeadAds, &secrets()).unwrap(),
        Handled::Challenge { status: 200, content_type: "text/plain", body: "1158201444".into() }
    );
    r.query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong".into();
    assert!(matches!(r.run(Adapter::FacebookLeadAds, &secrets()), Err(HookError::Unauthorized(_))));
    let no_token = Secrets { verify_token: None, ..secrets() };
    r.query = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=".into();
    assert!(matches!(r.run(Adapter::FacebookLeadAds, &no_token), Err(HookError::Unauthorized(_))));
}

#[test]
fn google_lead_checks_google_key_and_keeps_it_out_of_the_payload() {
    let item = only(Req::post(google_body(SECRET)).run(Adapter::GoogleAdsLeadForm, &secrets()));
    assert!(item.idempotency_key.starts_with("google:lead:Cj0KCQjwit"));
    assert!(item.is_test);
    assert!(!item.payload.contains_key("google_key"));
    let s = standardize(Adapter::GoogleAdsLeadForm, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "John");
    assert_eq!(s.fields["last_name"], "Doe");
    assert_eq!(s.fields["email"], "john@doe.com");
    assert_eq!(s.fields["phone"], "+11234567890");
    assert_eq!(s.fields["postal_code"], "94043");
    assert_eq!(s.custom["What is your preferred dealership?"], "Mountain View");
    assert_eq!(s.touchpoint["campaign_id"], "123456");
    assert_eq!(s.touchpoint["creative_id"], "30000000000");
    assert!(s.touchpoint["gclid"].as_str().unwrap().starts_with("Cj0KCQ"));
    assert!(s.is_test);
    let wrong = Req::post(google_body("xfdgdgsgfchgvhgfchg")).run(Adapter::GoogleAdsLeadForm, &secrets());
    assert!(matches!(wrong, Err(HookError::Unauthorized(_))));
}

fn linkedin_note() -> Vec<u8> {
    json!({"type": "LEAD_ACTION", "leadGenFormResponse": "urn:li:leadGenFormResponse:6a1c0b5e-5c1b-4b0e-8f4a-5d2b1c3d4e5f",
        "leadGenForm": "urn:li:leadGenForm:123", "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:522529623"},
        "leadAction": "CREATED", "occuredAt": 1_700_000_000_000u64})
    .to_string()
    .into_bytes()
}

/// Lead Sync API `leadFormResponses` element shape, with the form's questions.
fn linkedin_response() -> Value {
    json!({"owner": {"sponsoredAccount": "urn:li:sponsoredAccount:522529623"}, "submitter": "urn:li:person:abc",
        "leadType": "SPONSORED", "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:1234"}},
        "versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123,1)",
        "id": "6a1c0b5e-5c1b-4b0e-8f4a-5d2b1c3d4e5f", "submittedAt": 1_700_000_000_000u64, "testLead": false,
        "associatedEntity": {"associatedCreative": "urn:li:sponsoredCreative:999"},
        "formResponse": {"consentResponses": [{"accepted": true, "consentId": 1}], "answers": [
            {"answerDetails": {"textQuestionAnswer": {"answer": "Grace"}}, "questionId": 1},
            {"answerDetails": {"textQuestionAnswer": {"answer": "Hopper"}}, "questionId": 2},
            {"answerDetails": {"textQuestionAnswer": {"answer": "grace@navy.example"}}, "questionId": 3},
            {"answerDetails": {"textQuestionAnswer": {"answer": "COBOL"}}, "questionId": 4}]}})
}

#[test]
fn linkedin_notification_validation_and_pull_share_one_key() {
    let body = linkedin_note();
    let item = only(signed(Adapter::LinkedinLeadGen, &body, now()).run(Adapter::LinkedinLeadGen, &secrets()));
    assert_eq!(item.idempotency_key, "li:lead:6a1c0b5e-5c1b-4b0e-8f4a-5d2b1c3d4e5f");
    assert!(matches!(item.fetch, Some(Fetch::LinkedinFormResponse { .. })));
    let pulled =
        leadflow_integrations::channels::linkedin_pull_item(linkedin_response().as_object().unwrap().clone()).unwrap();
    assert_eq!(pulled.idempotency_key, item.idempotency_key);
    let mut payload = pulled.payload;
    payload.insert(
        "form".into(),
        json!({"content": {"questions": [
        {"questionId": 1, "predefinedField": "FIRST_NAME"}, {"questionId": 2, "predefinedField": "LAST_NAME"},
        {"questionId": 3, "predefinedField": "EMAIL"}, {"questionId": 4, "name": "favourite_language"}]}}),
    );
    let s = standardize(Adapter::LinkedinLeadGen, &payload).unwrap();
    assert_eq!(s.fields["first_name"], "Grace");
    assert_eq!(s.fields["last_name"], "Hopper");
    assert_eq!(s.fields["email"], "grace@navy.example");
    assert_eq!(s.custom["favourite_language"], "COBOL");
    assert_eq!(s.touchpoint["campaign_id"], "urn:li:sponsoredCampaign:1234");
    assert_eq!(s.touchpoint["creative_id"], "urn:li:sponsoredCreative:999");
    assert_eq!(s.consent.unwrap()["granted"], true);

    // Endpoint validation: hex HMAC-SHA256 of the challenge code.
    let mut r = Req::post(Vec::new());
    r.method = "GET";
    r.query = "challengeCode=890e4665-4dfe-4ab1-b689-ed553bceeed9".into();
    let Ok(Handled::Challenge { status: 200, body, .. }) = r.run(Adapter::LinkedinLeadGen, &secrets()) else {
        panic!()
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["challengeResponse"], hex::encode(mac256(&[b"890e4665-4dfe-4ab1-b689-ed553bceeed9"])));
    r.query = "challengeCode=%7B%22forged%22%3Atrue%7D".into();
    assert!(r.run(Adapter::LinkedinLeadGen, &secrets()).is_err(), "only UUID challenges are signed");
}

/// Typeform "Example payload" (abridged), with hidden UTM fields.
fn typeform_body() -> Vec<u8> {
    json!({"event_id": "LtWXD3crgy", "event_type": "form_response", "form_response": {
        "form_id": "lT4Z3j", "token": "a3a12ec67a1365927098a606107fac15",
        "submitted_at": "2018-01-18T18:17:02Z", "landed_at": "2018-01-18T18:07:02Z",
        "hidden": {"utm_source": "newsletter", "utm_campaign": "spring", "gclid": "Tg123"},
        "definition": {"id": "lT4Z3j", "title": "Webhooks example", "fields": [
            {"id": "DlXFaesGBpoF", "title": "What is your first name?", "type": "short_text", "ref": "first_name"},
            {"id": "SMEUb7VJz92Q", "title": "What is your email?", "type": "email", "ref": "email"},
            {"id": "JwWggjAKtOkA", "title": "Company", "type": "short_text", "ref": "company"},
            {"id": "k6TP9oLGgHjl", "title": "How many seats?", "type": "number", "ref": "seats"},
            {"id": "PNe8ZKBK8C2Q", "title": "Pick a plan", "type": "multiple_choice", "ref": "plan"}]},
        "answers": [
            {"type": "text", "text": "Laura", "field": {"id": "DlXFaesGBpoF", "type": "short_text", "ref": "first_name"}},
            {"type": "email", "email": "laura@example.com", "field": {"id": "SMEUb7VJz92Q", "type": "email"}},
            {"type": "text", "text": "Typeform", "field": {"id": "JwWggjAKtOkA", "type": "short_text", "ref": "company"}},
            {"type": "number", "number": 5, "field": {"id": "k6TP9oLGgHjl", "type": "number"}},
            {"type": "choice", "choice": {"label": "Pro"}, "field": {"id": "PNe8ZKBK8C2Q", "type": "multiple_choice"}}]}})
    .to_string()
    .into_bytes()
}

#[test]
fn typeform_response_maps_answers_by_type_and_hidden_fields() {
    let item = only(signed(Adapter::Typeform, &typeform_body(), now()).run(Adapter::Typeform, &secrets()));
    assert_eq!(item.idempotency_key, "typeform:a3a12ec67a1365927098a606107fac15");
    let s = standardize(Adapter::Typeform, &item.payload).unwrap();
    assert_eq!(s.fields["email"], "laura@example.com");
    assert_eq!(s.fields["company"], "Typeform");
    assert_eq!(s.fields["utm_source"], "newsletter");
    assert_eq!(s.fields["utm_campaign"], "spring");
    assert_eq!(s.touchpoint["gclid"], "Tg123");
    assert_eq!(s.touchpoint["form_id"], "lT4Z3j");
    // Custom answers are keyed by the question's ref (from the definition when the answer
    // does not carry it), their titles kept as labels.
    assert_eq!(s.custom["seats"], 5);
    assert_eq!(s.custom["plan"], "Pro");
    assert_eq!(s.labels["seats"], "How many seats?");
    // A title wrapped around a field name ("What is your …?") finds the field.
    assert_eq!(s.fields["first_name"], "Laura");
}

/// HubSpot Forms API submission shape.
fn hubspot_body() -> Vec<u8> {
    json!({"submittedAt": "1700000000000", "fields": [
            {"objectTypeId": "0-1", "name": "email", "value": "example@example.com"},
            {"objectTypeId": "0-1", "name": "firstname", "value": "Jeff"},
            {"objectTypeId": "0-1", "name": "jobtitle", "value": "CTO"},
            {"objectTypeId": "0-1", "name": "favorite_color", "value": "green"}],
        "context": {"hutk": "2f3ee8ac9b8aa7d8f2e1c0b1a0a1b2c3", "pageUri": "https://www.example.com/page", "pageName": "Example page"},
        "legalConsentOptions": {"consent": {"consentToProcess": true, "text": "I agree to allow Example Company to store and process my personal data.",
            "communications": [{"value": true, "subscriptionTypeId": 999, "text": "I agree to receive marketing communications from Example Company."}]}}})
    .to_string()
    .into_bytes()
}

#[test]
fn hubspot_v3_signature_covers_method_url_body_and_timestamp() {
    let body = hubspot_body();
    let item = only(signed(Adapter::HubspotForms, &body, now()).run(Adapter::HubspotForms, &secrets()));
    assert!(item.idempotency_key.starts_with("hubspot:sha256:"));
    let s = standardize(Adapter::HubspotForms, &item.payload).unwrap();
    assert_eq!(s.fields["email"], "example@example.com");
    assert_eq!(s.fields["first_name"], "Jeff");
    assert_eq!(s.fields["job_title"], "CTO");
    assert_eq!(s.fields["landing_page_url"], "https://www.example.com/page");
    assert_eq!(s.custom["favorite_color"], "green");
    assert_eq!(s.touchpoint["hubspotutk"], "2f3ee8ac9b8aa7d8f2e1c0b1a0a1b2c3");
    assert_eq!(s.consent.unwrap()["granted"], true);
    // The URL is signed: the same signature for another path is refused.
    let mut moved = signed(Adapter::HubspotForms, &body, now());
    moved.query = "x=1".into();
    assert!(matches!(moved.run(Adapter::HubspotForms, &secrets()), Err(HookError::Unauthorized(_))));
}

fn calendly_body(event: &str) -> Vec<u8> {
    json!({"created_at": "2023-11-14T18:45:52.000000Z", "created_by": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA",
        "event": event, "payload": {
            "uri": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/7c6ff5bd",
            "email": "test@example.com", "name": "John Doe", "first_name": null, "last_name": null,
            "text_reminder_number": "+1 404-555-1234", "timezone": "America/New_York", "status": "active",
            "questions_and_answers": [{"question": "Company", "answer": "Acme", "position": 0},
                                      {"question": "Anything to prepare?", "answer": "Pricing", "position": 1}],
            "tracking": {"utm_campaign": "spring", "utm_source": "google", "utm_medium": "cpc", "utm_content": null,
                         "utm_term": null, "salesforce_uuid": null},
            "scheduled_event": {"uri": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2", "name": "15 Minute Meeting",
                                "start_time": "2019-08-24T14:15:22.123456Z"}}})
    .to_string()
    .into_bytes()
}

#[test]
fn calendly_invitee_created_is_a_lead_and_canceled_is_ignored() {
    let item =
        only(signed(Adapter::Calendly, &calendly_body("invitee.created"), now()).run(Adapter::Calendly, &secrets()));
    assert_eq!(
        item.idempotency_key,
        "calendly:https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/7c6ff5bd"
    );
    let s = standardize(Adapter::Calendly, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "John");
    assert_eq!(s.fields["last_name"], "Doe");
    assert_eq!(s.fields["email"], "test@example.com");
    assert_eq!(s.fields["phone"], "+1 404-555-1234");
    assert_eq!(s.fields["company"], "Acme");
    assert_eq!(s.fields["utm_source"], "google");
    assert_eq!(s.custom["Anything to prepare?"], "Pricing");
    let canceled =
        signed(Adapter::Calendly, &calendly_body("invitee.canceled"), now()).run(Adapter::Calendly, &secrets());
    assert!(matches!(canceled, Ok(Handled::Ignored { .. })));
}

fn zoom_registration() -> Vec<u8> {
    json!({"event": "webinar.registration_created", "event_ts": 1_700_000_000_000u64, "payload": {
        "account_id": "AAAAAABBBB", "object": {"uuid": "dj12vck6sdTn6yy7mf7/2w==", "id": 85746065432u64,
            "host_id": "z8yBXksaQ", "topic": "My webinar", "type": 5, "start_time": "2023-11-20T15:00:00Z",
            "registrant": {"id": "abcdefghij0-klmnopq23456", "first_name": "Jill", "last_name": "Chill",
                "email": "jchill@example.com", "org": "Example Inc", "job_title": "Engineer", "country": "US",
                "phone": "+1 800-555-0100", "no_of_employees": "1-20",
                "custom_questions": [{"title": "utm_source", "value": "partner"}, {"title": "Topic of interest", "value": "APIs"}],
                "join_url": "https://example.zoom.us/w/85746065432?tk=x"}}}})
    .to_string()
    .into_bytes()
}

#[test]
fn zoom_registration_and_url_validation() {
    let item = only(signed(Adapter::ZoomWebinar, &zoom_registration(), now()).run(Adapter::ZoomWebinar, &secrets()));
    assert_eq!(item.idempotency_key, "zoom:webinar:85746065432:registrant:abcdefghij0-klmnopq23456");
    let s = standardize(Adapter::ZoomWebinar, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "Jill");
    assert_eq!(s.fields["company"], "Example Inc");
    assert_eq!(s.fields["employee_count"], "1-20");
    assert_eq!(s.fields["utm_source"], "partner");
    assert_eq!(s.custom["Topic of interest"], "APIs");
    assert_eq!(s.touchpoint["webinar_id"], "85746065432");

    // The registration is attendance too; the webinar's end tells a no-show later.
    let Ok(Handled::Activity { activity, .. }) =
        signed(Adapter::ZoomWebinar, &zoom_registration(), now()).run(Adapter::ZoomWebinar, &secrets())
    else {
        panic!()
    };
    let [a] = &activity[..] else { panic!("{activity:?}") };
    assert_eq!((a.kind.as_str(), a.email.as_deref()), ("attendance.registered", Some("jchill@example.com")));
    assert_eq!(a.properties["event"], "zoom:webinar:85746065432");
    assert_eq!(a.properties["starts_at"], "2023-11-20T15:00:00Z");

    // "Validate your webhook endpoint" request example.
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let Ok(Handled::Challenge { status: 200, content_type: "application/json", body }) =
        signed(Adapter::ZoomWebinar, body, now()).run(Adapter::ZoomWebinar, &secrets())
    else {
        panic!()
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(v["encryptedToken"], hex::encode(mac256(&[b"qgg8vlvZRS6UYooatFL8Aw"])));
}

/// Zoom's `meeting.participant_left` example (Meetings webhooks reference), and a meeting
/// event that names no person.
#[test]
fn zoom_meeting_participants_are_attendance_and_other_events_are_acknowledged() {
    let left = json!({"event": "meeting.participant_left", "event_ts": 1_626_230_691_572u64, "payload": {
        "account_id": "AAAAAABBBB", "object": {"id": "1234567890", "uuid": "4444AAAiAAAAAiAiAiiAii==",
            "host_id": "x1yCzABCDEfg23HiJKl4mN", "topic": "My Meeting", "type": 2,
            "start_time": "2021-07-13T21:44:51Z", "timezone": "America/Los_Angeles", "duration": 60,
            "participant": {"user_id": "1234567890", "user_name": "Jill Chill", "id": "iFxeBPYun6SAiWUzBcEkX",
                "participant_uuid": "55555AAAiAAAAAiAiAiiAii", "leave_time": "2021-07-13T22:40:51Z",
                "join_time": "2021-07-13T21:45:51Z", "leave_reason": "left the meeting",
                "email": "jchill@example.com", "registrant_id": "abcdefghij0-klmnopq23456"}}}})
    .to_string()
    .into_bytes();
    let Ok(Handled::Activity { items, activity }) =
        signed(Adapter::ZoomWebinar, &left, now()).run(Adapter::ZoomWebinar, &secrets())
    else {
        panic!()
    };
    assert!(items.is_empty(), "a leave makes no lead");
    let [a] = &activity[..] else { panic!("{activity:?}") };
    assert_eq!(a.kind, "attendance.left");
    assert_eq!(a.occurred_at, time::macros::datetime!(2021-07-13 22:40:51 UTC));
    assert_eq!(a.properties["event"], "zoom:meeting:1234567890");
    assert_eq!(a.properties["session"], "55555AAAiAAAAAiAiAiiAii");
    assert_eq!(a.properties["joined_at"], "2021-07-13T21:45:51Z");
    assert_eq!(
        a.idempotency_key,
        "zoom:meeting:1234567890:participant:55555AAAiAAAAAiAiAiiAii:participant_left:2021-07-13T22:40:51Z"
    );

    let ended = json!({"event": "meeting.ended", "payload": {"object": {"id": "1234567890"}}}).to_string();
    let r = signed(Adapter::ZoomWebinar, ended.as_bytes(), now()).run(Adapter::ZoomWebinar, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })), "{r:?}");
    let other = json!({"event": "recording.completed", "payload": {}}).to_string();
    let r = signed(Adapter::ZoomWebinar, other.as_bytes(), now()).run(Adapter::ZoomWebinar, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })), "{r:?}");
}

#[test]
fn intercom_contact_created_maps_the_contact_and_ping_is_ignored() {
    let body = json!({"type": "notification_event", "app_id": "abc123", "id": "notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3",
        "topic": "contact.lead.created", "created_at": 1_700_000_000, "data": {"type": "notification_event_data", "item": {
            "type": "contact", "id": "6762f0a51bb69f9f2193bb7e", "role": "lead", "email": "ada@example.com",
            "name": "Ada Lovelace", "phone": "+44 20 7946 0000", "external_id": "crm-42",
            "location": {"type": "location", "country": "United Kingdom", "region": "England", "city": "London"},
            "custom_attributes": {"plan": "pro", "company_size": "11-50"}}}})
    .to_string()
    .into_bytes();
    let item = only(signed(Adapter::Intercom, &body, now()).run(Adapter::Intercom, &secrets()));
    assert_eq!(item.idempotency_key, "intercom:notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3");
    let s = standardize(Adapter::Intercom, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "Ada");
    assert_eq!(s.fields["last_name"], "Lovelace");
    assert_eq!(s.fields["city"], "London");
    assert_eq!(s.fields["external_id"], "crm-42");
    assert_eq!(s.fields["employee_count"], "11-50");
    assert_eq!(s.custom["plan"], "pro");
    let ping =
        json!({"type": "notification_event", "topic": "ping", "id": "notif_1", "data": {"item": {}}}).to_string();
    let r = signed(Adapter::Intercom, ping.as_bytes(), now()).run(Adapter::Intercom, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })));
}

fn unbounce_req() -> Req {
    let data = json!({"name": ["Ada Lovelace"], "email": ["ada@example.com"], "company": ["Engines Ltd"],
        "utm_source": ["newsletter"], "ip_address": ["203.0.113.7"], "page_uuid": ["a0b1c2d3"],
        "page_url": ["http://unbouncepages.com/spring-offer/"], "date_submitted": ["2023-11-14"], "time_submitted": ["04:34 PM UTC"]});
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("page_id", "a0b1c2d3-e4f5")
        .append_pair("page_name", "Spring offer")
        .append_pair("page_url", "http://unbouncepages.com/spring-offer/")
        .append_pair("variant", "a")
        .append_pair("data.json", &data.to_string())
        .finish();
    let mut r = Req::post(body);
    r.content_type = Some("application/x-www-form-urlencoded".into());
    r.query = format!("token={SECRET}");
    r
}

#[test]
fn unbounce_form_post_with_data_json() {
    let item = only(unbounce_req().run(Adapter::Unbounce, &secrets()));
    assert!(item.idempotency_key.starts_with("unbounce:a0b1c2d3-e4f5:"));
    let s = standardize(Adapter::Unbounce, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "Ada");
    assert_eq!(s.fields["company"], "Engines Ltd");
    assert_eq!(s.fields["utm_source"], "newsletter");
    assert_eq!(s.fields["landing_page_url"], "http://unbouncepages.com/spring-offer/");
    assert_eq!(s.custom["ip_address"], "203.0.113.7");
    assert_eq!(s.touchpoint["variant"], "a");
    let mut wrong = unbounce_req();
    wrong.query = "token=nope".into();
    assert!(matches!(wrong.run(Adapter::Unbounce, &secrets()), Err(HookError::Unauthorized(_))));
}

/// "Working with webhooks" form_submission example.
fn webflow_body() -> Vec<u8> {
    json!({"triggerType": "form_submission", "payload": {"name": "Contact Us", "siteId": "65427cf400e02b306eaa049c",
        "data": {"First Name": "Zaphod", "Last Name": "Beeblebrox", "email": "zaphod@heartofgold.ai", "Phone Number": 15550000000u64},
        "schema": [{"fieldName": "First Name", "fieldType": "FormTextInput", "fieldElementId": "285042f7-d554-dc7f-102c-aa10d6a2d2c4"}],
        "submittedAt": "2022-09-14T12:35:16.117Z", "id": "6321ca84df3949bfc6752327",
        "formId": "65429eadebe8a9f3a30f62d0", "formElementId": "4e038d2c-6a1e-4953-7be9-a59a2b453177"}})
    .to_string()
    .into_bytes()
}

#[test]
fn webflow_form_submission_signed_over_timestamp_and_body() {
    let item = only(signed(Adapter::Webflow, &webflow_body(), now()).run(Adapter::Webflow, &secrets()));
    assert_eq!(item.idempotency_key, "webflow:6321ca84df3949bfc6752327");
    let s = standardize(Adapter::Webflow, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "Zaphod");
    assert_eq!(s.fields["last_name"], "Beeblebrox");
    assert_eq!(s.fields["phone"], "15550000000");
    assert_eq!(s.touchpoint["form_id"], "65429eadebe8a9f3a30f62d0");
    assert_eq!(s.custom["form_name"], "Contact Us");
}

fn jotform_req() -> Req {
    let raw = json!({"slug": "submit/230000000000000/", "q3_name": {"first": "Ada", "last": "Lovelace"},
        "q4_email": "ada@example.com", "q5_phoneNumber": {"full": "(555) 555-1234"}, "q6_companyName": "Engines Ltd",
        "q7_utm_source": "linkedin", "q8_comments": "Call me"});
    let mut body = String::new();
    for (k, v) in [
        ("formID", "230000000000000"),
        ("submissionID", "5700000000000000000"),
        ("formTitle", "Contact"),
        ("ip", "203.0.113.9"),
        ("rawRequest", &raw.to_string()),
    ] {
        body.push_str(&format!("--b0undary\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    body.push_str("--b0undary--\r\n");
    let mut r = Req::post(body);
    r.content_type = Some("multipart/form-data; boundary=b0undary".into());
    r
}

#[test]
fn jotform_multipart_with_raw_request() {
    let item = only(jotform_req().run(Adapter::Jotform, &Secrets::default()));
    assert_eq!(item.idempotency_key, "jotform:5700000000000000000");
    let s = standardize(Adapter::Jotform, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "Ada");
    assert_eq!(s.fields["last_name"], "Lovelace");
    assert_eq!(s.fields["email"], "ada@example.com");
    assert_eq!(s.fields["phone"], "(555) 555-1234");
    assert_eq!(s.fields["company"], "Engines Ltd");
    assert_eq!(s.fields["utm_source"], "linkedin");
    assert_eq!(s.custom["q8_comments"], "Call me");
    assert_eq!(s.touchpoint["form_id"], "230000000000000");
}

/// Tally "Webhooks" example payload (abridged).
fn tally_body() -> Vec<u8> {
    json!({"eventId": "a4cb511e-d513-4fa5-baee-b815d718dfd1", "eventType": "FORM_RESPONSE", "createdAt": "2023-06-28T15:00:21.889Z",
        "data": {"responseId": "2wgx4n", "submissionId": "2wgx4n", "respondentId": "dwQKYm", "formId": "VwbNEw",
            "formName": "Webhook payload", "createdAt": "2023-06-28T15:00:21.000Z", "fields": [
            {"key": "question_3EKz4n", "label": "First name", "type": "INPUT_TEXT", "value": "Alice"},
            {"key": "question_w4Q4Xn", "label": "Your email", "type": "INPUT_EMAIL", "value": "alice@example.com"},
            {"key": "question_3jZaa7", "label": "utm_source", "type": "HIDDEN_FIELDS", "value": "newsletter"},
            {"key": "question_nPRx1q", "label": "Interest", "type": "MULTIPLE_CHOICE", "value": ["5c3ef6c8"],
             "options": [{"id": "5c3ef6c8", "text": "Demo"}, {"id": "8a1b2c3d", "text": "Pricing"}]}]}})
    .to_string()
    .into_bytes()
}

#[test]
fn tally_form_response_by_field_type() {
    let item = only(signed(Adapter::Tally, &tally_body(), now()).run(Adapter::Tally, &secrets()));
    assert_eq!(item.idempotency_key, "tally:2wgx4n");
    let s = standardize(Adapter::Tally, &item.payload).unwrap();
    assert_eq!(s.fields["first_name"], "Alice");
    assert_eq!(s.fields["email"], "alice@example.com");
    assert_eq!(s.fields["utm_source"], "newsletter");
    // Custom answers are keyed by the field's stable key, the label kept beside it.
    assert_eq!(s.custom["question_nPRx1q"], json!(["Demo"]));
    assert_eq!(s.labels["question_nPRx1q"], "Interest");
    assert_eq!(s.touchpoint["form_id"], "VwbNEw");
}

fn web_form_req(extra: &str) -> Req {
    let mut r = Req::post(format!(
        "oid=00D000000000062&retURL=https%3A%2F%2Fexample.com%2Fthanks&first_name=Marc&last_name=Benioff&email=marc%40example.com\
         &company=Acme&title=CEO&phone=%2B1+415+555+0100&mobile=%2B1+415+555+0199&URL=https%3A%2F%2Facme.example&city=SF&state=CA\
         &zip=94105&country=US&street=1+Market+St&industry=Software&employees=50&lead_source=Web&description=Hello\
         &00N3000000AbCdE=Gold&utm_source=google&gclid=EAIaIQ&first_utm_source=bing&_lf_hp=&_lf_sid=s-1{extra}"
    ));
    r.content_type = Some("application/x-www-form-urlencoded".into());
    r
}

#[test]
fn web_form_accepts_salesforce_web_to_lead_names() {
    let item = only(web_form_req("").run(Adapter::WebForm, &Secrets::default()));
    assert_eq!(item.idempotency_key, "web:s-1");
    let s = standardize(Adapter::WebForm, &item.payload).unwrap();
    for (k, v) in [
        ("first_name", "Marc"),
        ("last_name", "Benioff"),
        ("email", "marc@example.com"),
        ("company", "Acme"),
        ("job_title", "CEO"),
        ("phone", "+1 415 555 0100"),
        ("website", "https://acme.example"),
        ("city", "SF"),
        ("state", "CA"),
        ("postal_code", "94105"),
        ("country", "US"),
        ("street", "1 Market St"),
        ("industry", "Software"),
        ("employee_count", "50"),
        ("utm_source", "google"),
    ] {
        assert_eq!(s.fields[k], v, "{k}");
    }
    for k in ["mobile", "lead_source", "description", "00N3000000AbCdE", "retURL", "oid"] {
        assert!(s.custom.contains_key(k), "{k} kept in custom");
    }
    assert_eq!(s.touchpoint["gclid"], "EAIaIQ");
    assert_eq!(s.touchpoint["first_utm_source"], "bing");
    assert!(!s.custom.contains_key("_lf_hp"));
    let payload = s.into_payload();
    assert_eq!(payload["first_name"], "Marc");
    assert!(payload["custom"].is_object() && payload["touchpoint"].is_object());
}

#[test]
fn a_web_form_consent_box_carries_its_page_policy_and_purposes() {
    let plain = only(
        web_form_req("&gdpr_consent=on&consent_policy_version=v7&consent_page_url=https%3A%2F%2Fexample.com%2Fdemo")
            .run(Adapter::WebForm, &Secrets::default()),
    );
    let s = standardize(Adapter::WebForm, &plain.payload).unwrap();
    assert_eq!(
        s.consent,
        Some(
            json!({"granted": true, "source": "web_form", "policy_version": "v7", "page_url": "https://example.com/demo"})
        )
    );
    let named = only(
        web_form_req("&consent=&consent_purposes=sales_contact%2C+phone").run(Adapter::WebForm, &Secrets::default()),
    );
    let s = standardize(Adapter::WebForm, &named.payload).unwrap();
    assert_eq!(s.consent, Some(json!({"purposes": {"sales_contact": "denied", "phone": "denied"}})));
    let none = only(web_form_req("&consent_policy_version=v7").run(Adapter::WebForm, &Secrets::default()));
    assert_eq!(standardize(Adapter::WebForm, &none.payload).unwrap().consent, None, "no box, no choice");
}

#[test]
fn web_form_spam_is_reported_never_stored() {
    let hp = web_form_req("").run(Adapter::WebForm, &Secrets::default());
    assert!(matches!(hp, Ok(Handled::Items(_))));
    let mut bot = web_form_req("");
    bot.body = String::from_utf8(bot.body).unwrap().replace("_lf_hp=", "_lf_hp=x").into_bytes();
    assert_eq!(bot.run(Adapter::WebForm, &Secrets::default()), Ok(Handled::Spam(SpamReason::Honeypot)));
    let fast = web_form_req(&format!("&_lf_t={}", 1_700_000_000_000i64 - 500));
    assert_eq!(
        fast.run(Adapter::WebForm, &Secrets::default()),
        Ok(Handled::Spam(SpamReason::TooFast { elapsed_ms: 500 }))
    );
    let slow = web_form_req(&format!("&_lf_t={}", 1_700_000_000_000i64 - 60_000));
    assert!(matches!(slow.run(Adapter::WebForm, &Secrets::default()), Ok(Handled::Items(_))));
}

// ---------------------------------------------------------------- what every adapter owes

fn valid(adapter: Adapter) -> Req {
    match adapter {
        Adapter::FacebookLeadAds => signed(adapter, &facebook_body(), now()),
        Adapter::GoogleAdsLeadForm => Req::post(google_body(SECRET)),
        Adapter::LinkedinLeadGen => signed(adapter, &linkedin_note(), now()),
        Adapter::Typeform => signed(adapter, &typeform_body(), now()),
        Adapter::HubspotForms => signed(adapter, &hubspot_body(), now()),
        Adapter::Calendly => signed(adapter, &calendly_body("invitee.created"), now()),
        Adapter::ZoomWebinar => signed(adapter, &zoom_registration(), now()),
        Adapter::Intercom => {
            let body = json!({"type": "notification_event", "id": "notif_1", "topic": "contact.user.created",
                "data": {"item": {"type": "contact", "email": "a@example.com"}}});
            signed(adapter, body.to_string().as_bytes(), now())
        }
        Adapter::Drift => signed(adapter, fixture("drift_contact_identified.json").to_string().as_bytes(), now()),
        Adapter::Unbounce => unbounce_req(),
        Adapter::Webflow => signed(adapter, &webflow_body(), now()),
        Adapter::Jotform => Req { query: format!("token={SECRET}"), ..jotform_req() },
        Adapter::Tally => signed(adapter, &tally_body(), now()),
        Adapter::WebForm => Req { query: format!("token={SECRET}"), ..web_form_req("") },
        Adapter::Email => {
            signed(adapter, &std::fs::read(fixture_path("postmark_inbound_example.json")).unwrap(), now())
        }
        Adapter::SignedJson => signed(adapter, br#"{"Email": "zap@example.com", "Company Name": "Zapier Inc"}"#, now()),
        Adapter::Json => panic!("a json source takes no provider request"),
    }
}

#[test]
fn every_valid_delivery_standardizes_and_replays_to_the_same_key() {
    for adapter in Adapter::providers() {
        let first = items(valid(adapter).run(adapter, &secrets()));
        let again = items(valid(adapter).run(adapter, &secrets()));
        let keys = |v: &[Item]| v.iter().map(|i| i.idempotency_key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&first), keys(&again), "{adapter:?} replay");
        // A signed_json lead is read by the generic mapper, not by its adapter.
        for item in first.iter().filter(|i| i.fetch.is_none() && adapter.standardizes()) {
            let s = standardize(adapter, &item.payload).unwrap_or_else(|e| panic!("{adapter:?}: {e}"));
            assert!(
                s.fields.keys().all(|k| leadflow_integrations::channels::STANDARD_FIELDS.contains(&k.as_str())),
                "{adapter:?}"
            );
            // Re-standardizing a stored payload is deterministic.
            assert_eq!(standardize(adapter, &item.payload).unwrap(), s);
        }
    }
}

#[test]
fn a_signed_retry_with_a_fresh_timestamp_keeps_the_key() {
    for adapter in [Adapter::Calendly, Adapter::HubspotForms, Adapter::ZoomWebinar, Adapter::Webflow] {
        let body = valid(adapter).body;
        let later = now() + time::Duration::seconds(120);
        let mut retry = signed(adapter, &body, later);
        retry.now = later;
        assert_eq!(
            only(valid(adapter).run(adapter, &secrets())).idempotency_key,
            only(retry.run(adapter, &secrets())).idempotency_key,
            "{adapter:?}"
        );
    }
}

#[test]
fn tampered_bodies_are_unauthorized() {
    // Drift sends a verification token, not a signature of the body: its token is
    // checked by `drift_requires_its_verification_token`.
    let unsigned = [Adapter::GoogleAdsLeadForm, Adapter::Drift];
    for adapter in Adapter::providers().filter(|a| a.needs_secret() && !unsigned.contains(a)) {
        let mut r = valid(adapter);
        let i = r.body.iter().position(|b| *b == b'@' || *b == b'1').unwrap();
        r.body[i] = if r.body[i] == b'@' { b'A' } else { b'2' };
        assert!(matches!(r.run(adapter, &secrets()), Err(HookError::Unauthorized(_))), "{adapter:?}");
        let mut no_sig = valid(adapter);
        no_sig.headers.clear();
        assert!(matches!(no_sig.run(adapter, &secrets()), Err(HookError::Unauthorized(_))), "{adapter:?} unsigned");
    }
}

#[test]
fn stale_signed_timestamps_are_refused() {
    for adapter in [Adapter::Calendly, Adapter::HubspotForms, Adapter::ZoomWebinar, Adapter::Webflow] {
        let body = valid(adapter).body;
        let old = signed(adapter, &body, now() - time::Duration::minutes(6));
        assert!(matches!(old.run(adapter, &secrets()), Err(HookError::Stale(_))), "{adapter:?}");
        let future = signed(adapter, &body, now() + time::Duration::minutes(6));
        assert!(matches!(future.run(adapter, &secrets()), Err(HookError::Stale(_))), "{adapter:?}");
    }
}

#[test]
fn a_missing_secret_refuses_signed_providers() {
    for adapter in Adapter::providers().filter(Adapter::needs_secret) {
        let r = valid(adapter).run(adapter, &Secrets::default());
        assert!(matches!(r, Err(HookError::Unauthorized(_))), "{adapter:?}: {r:?}");
    }
}

#[test]
fn malformed_bodies_are_reported() {
    for adapter in Adapter::providers() {
        let mut r = signed(adapter, b"{not json", now());
        if matches!(adapter, Adapter::WebForm | Adapter::Unbounce | Adapter::Jotform) {
            // A multipart body without its boundary.
            r.content_type = Some("multipart/form-data".into());
            r.query = format!("token={SECRET}");
        }
        let got = r.run(adapter, &Secrets { secret: None, ..secrets() });
        let got = if matches!(got, Err(HookError::Unauthorized(_))) { r.run(adapter, &secrets()) } else { got };
        assert!(matches!(got, Err(HookError::Malformed(_))), "{adapter:?}: {got:?}");
    }
}

#[test]
fn other_methods_are_unsupported() {
    for adapter in Adapter::providers() {
        let mut r = valid(adapter);
        r.method = "PUT";
        assert!(
            matches!(r.run(adapter, &secrets()), Err(HookError::Unsupported(_) | HookError::Unauthorized(_))),
            "{adapter:?}"
        );
    }
}

#[test]
fn a_json_source_speaks_no_provider_protocol_and_secrets_never_print() {
    let req = Req::post(json!({"email": "a@example.com"}).to_string().into_bytes());
    assert!(matches!(req.run(Adapter::Json, &secrets()), Err(HookError::Unsupported(_))));
    let payload = json!({"email": "a@example.com"}).as_object().cloned().unwrap();
    assert!(matches!(standardize(Adapter::Json, &payload), Err(HookError::Unsupported(_))));
    assert!(!format!("{:?}", secrets()).contains(SECRET));
}

// ---------------------------------------------------------------- never panic

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z_ @.]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("payload".to_owned()),
                        Just("data".to_owned()),
                        Just("fields".to_owned()),
                        Just("fetched".to_owned()),
                        Just("form_response".to_owned()),
                        Just("answers".to_owned()),
                        Just("rawRequest".to_owned()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn handle_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
            leadflow_integrations::channels::fuzz_entry(&data);
        }

        #[test]
        fn handle_never_panics_on_arbitrary_json(v in json_value()) {
            let body = v.to_string();
            for adapter in Adapter::providers() {
                let _ = signed(adapter, body.as_bytes(), now()).run(adapter, &secrets());
            }
        }

        #[test]
        fn standardize_never_panics_on_arbitrary_json(v in json_value()) {
            let map = match v { Value::Object(m) => m, other => [("payload".to_owned(), other)].into_iter().collect() };
            for adapter in Adapter::providers() {
                if let Ok(s) = standardize(adapter, &map) {
                    let _ = s.into_payload();
                }
            }
        }
    }
}

// ---------------------------------------------------------------- provider API clients

mod fetch_clients {
    use leadflow_integrations::channels::fetch::{Client, FetchError, RetryPolicy, facebook, linkedin};
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-thread HTTP/1.1 server on 127.0.0.1:0 that answers each request with the next
    /// scripted (status, body) and records the request heads.
    async fn serve(script: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for (status, body) in script {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                log.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (base, seen)
    }

    fn client() -> Client {
        Client::new(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn fb_lead() -> String {
        json!({"created_time": "2015-02-28T08:49:14+0000", "id": "444", "ad_id": "1", "form_id": "2",
            "field_data": [{"name": "email", "values": ["joe@example.com"]}]})
        .to_string()
    }

    #[tokio::test]
    async fn facebook_lead_is_read_with_token_and_fields_after_a_500() {
        let (base, seen) = serve(vec![(500, "{}".into()), (200, fb_lead())]).await;
        let lead = facebook::fetch_lead(&client(), &base, "tok en", "444").await.unwrap();
        assert_eq!(lead["id"], "444");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "one retry");
        let line = seen[1].lines().next().unwrap().to_owned();
        assert!(
            line.starts_with(&format!("GET /{}/444?access_token=tok+en&fields=", facebook::GRAPH_API_VERSION)),
            "{line}"
        );
        assert!(line.contains("field_data"), "{line}");
    }

    #[tokio::test]
    async fn facebook_client_errors_are_final_and_retries_are_bounded() {
        let (base, seen) = serve(vec![(400, r#"{"error":{"message":"bad token"}}"#.into())]).await;
        let err = facebook::fetch_lead(&client(), &base, "t", "1").await.unwrap_err();
        assert!(matches!(err, FetchError::Status { status: 400, .. }), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        let (base, seen) =
            serve(vec![(503, "{}".into()), (429, "{}".into()), (500, "{}".into()), (200, fb_lead())]).await;
        let err = facebook::fetch_lead(&client(), &base, "t", "1").await.unwrap_err();
        assert!(matches!(err, FetchError::Status { status: 500, .. }), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 3, "max_attempts");
    }

    #[tokio::test]
    async fn linkedin_pages_through_lead_form_responses() {
        let full: Vec<_> =
            (0..linkedin::PAGE_SIZE).map(|i| json!({"id": format!("r{i}"), "formResponse": {"answers": []}})).collect();
        let page1 = json!({"elements": full, "paging": {"start": 0, "count": 100, "total": 101}}).to_string();
        let page2 =
            json!({"elements": [{"id": "r100"}], "paging": {"start": 100, "count": 100, "total": 101}}).to_string();
        let (base, seen) = serve(vec![(500, "{}".into()), (200, page1), (200, page2)]).await;
        let owner = linkedin::Owner::SponsoredAccount("urn:li:sponsoredAccount:522529623".into());
        let first = linkedin::fetch_form_responses(&client(), &base, "tok", &owner, None).await.unwrap();
        assert_eq!(first.responses.len(), 100);
        assert_eq!(first.next_cursor.as_deref(), Some("100"));
        let second = linkedin::fetch_form_responses(&client(), &base, "tok", &owner, first.next_cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(second.responses.len(), 1);
        assert_eq!(second.next_cursor, None);
        let seen = seen.lock().unwrap();
        let head = &seen[1];
        assert!(head.starts_with("GET /rest/leadFormResponses?q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A522529623)&leadType=(leadType:SPONSORED)"), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("authorization: bearer tok"));
        assert!(lower.contains("linkedin-version: "));
        assert!(lower.contains("x-restli-protocol-version: 2.0.0"));
        assert!(seen[2].contains("start=100&count=100"));
    }
}

/// Provider APIs (Graph, LinkedIn) are HTTPS: the client must speak TLS. Against a closed
/// local port an HTTPS request fails by a refused connection; a client built without TLS
/// refuses the scheme before connecting (and one without a crypto provider panics).
#[tokio::test]
async fn the_provider_clients_speak_https() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = leadflow_integrations::channels::fetch::http_client().build().unwrap();
    let err = http.get(format!("https://127.0.0.1:{port}/")).send().await.unwrap_err();
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    let chain = chain.join(" / ");
    assert!(err.is_connect() && chain.to_lowercase().contains("refused"), "{chain}");
}

#[test]
fn during_a_rotation_a_request_signed_with_the_previous_secret_is_accepted() {
    let request = signed(Adapter::Typeform, &typeform_body(), now());
    let rotated = Secrets { secret: Some("the-new-secret".into()), previous: Some(SECRET.into()), ..secrets() };
    assert!(request.run(Adapter::Typeform, &rotated).is_ok(), "signed with the previous secret");
    let done = Secrets { previous: None, ..rotated.clone() };
    assert!(matches!(request.run(Adapter::Typeform, &done), Err(HookError::Unauthorized(_))), "once it is gone");
    let unrelated = Secrets { previous: Some("another".into()), ..done };
    assert!(matches!(request.run(Adapter::Typeform, &unrelated), Err(HookError::Unauthorized(_))));
    let current = Secrets { previous: Some("the-old-secret".into()), ..secrets() };
    assert!(request.run(Adapter::Typeform, &current).is_ok(), "the current secret still works");
}

/// A provider's published example payload (see `fixtures/README.md`).
fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/channels/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn standardized(adapter: Adapter, body: &Value) -> Result<leadflow_integrations::channels::Standard, HookError> {
    let item = only(signed(adapter, body.to_string().as_bytes(), now()).run(adapter, &secrets()));
    standardize(adapter, &item.payload)
}

const LONG_CONSENT: &str = "I agree that Example Ltd may store and process the personal data I submit on this form, \
    and contact me by email or phone about its products, services and events, as described in its privacy policy. \
    I can withdraw this consent at any time.";

#[test]
fn typeforms_published_example_keys_custom_answers_by_ref_and_keeps_long_titles_as_labels() {
    let s = standardized(Adapter::Typeform, &fixture("typeform_example_payload.json")).unwrap();
    assert_eq!(s.fields["email"], "laura@example.com");
    assert_eq!(s.fields["first_name"], "Laura");
    assert!(!s.fields.contains_key("website"), "a Calendly booking URL is not the website");
    // The legal question's title is 155 characters: keyed by ref, the title kept as label.
    assert_eq!(s.custom["readable_ref_legal"], true);
    assert!(s.labels["readable_ref_legal"].as_str().unwrap().starts_with("By submitting this form"));
    assert_eq!(s.custom["readable_ref_picture_choice"], json!(["London", "Sydney"]));
    assert_eq!(s.custom["readable_ref_calendly"], "https://calendly.com/scheduled_events/EVENT_TYPE/invitees/INVITEE");
    assert_eq!(s.custom["user_id"], "abc123456", "hidden fields keep their own names");
    let payload = s.into_payload();
    for key in payload["custom"].as_object().unwrap().keys() {
        assert!(key.chars().count() <= 128, "{key}");
    }
}

#[test]
fn a_typeform_consent_title_over_the_limit_never_costs_the_lead() {
    let mut body = fixture("typeform_example_payload.json");
    let fields = body["form_response"]["definition"]["fields"].as_array_mut().unwrap();
    let yes_no = fields.iter_mut().find(|f| f["ref"] == "readable_ref_yes_no").unwrap();
    yes_no["title"] = json!(LONG_CONSENT);
    assert!(LONG_CONSENT.chars().count() > 128);
    // Without a ref the field id keys the answer.
    let legal = fields.iter_mut().find(|f| f["ref"] == "readable_ref_legal").unwrap();
    legal.as_object_mut().unwrap().remove("ref");
    let s = standardized(Adapter::Typeform, &body).unwrap();
    assert_eq!(s.custom["readable_ref_yes_no"], false);
    assert_eq!(s.labels["readable_ref_yes_no"], LONG_CONSENT);
    assert_eq!(s.custom["gFFf3xAkJKsr"], true);
    // The same title on a form with no refs at all, as a loose label: shortened, kept.
    let loose = vec![
        ("Email".to_owned(), json!("zaphod@heartofgold.ai")),
        (LONG_CONSENT.to_owned(), json!(true)),
        (format!("{LONG_CONSENT} Also by SMS."), json!(false)),
    ];
    let web = standardized(Adapter::Webflow, &webflow_with(loose)).unwrap();
    let keys: Vec<&String> = web.custom.keys().filter(|k| k.starts_with("I agree")).collect();
    assert_eq!(keys.len(), 2, "two long labels sharing a prefix stay two fields: {keys:?}");
    assert!(keys.iter().all(|k| k.chars().count() <= 128));
}

/// Webflow's example with its `data` replaced, as Webflow sends a form with these labels.
fn webflow_with(data: Vec<(String, Value)>) -> Value {
    let mut body = fixture("webflow_form_submission.json");
    body["payload"]["data"] = Value::Object(data.into_iter().collect());
    body
}

#[test]
fn webflows_published_example_maps_its_labels() {
    let s = standardized(Adapter::Webflow, &fixture("webflow_form_submission.json")).unwrap();
    assert_eq!(s.fields["email"], "zaphod@heartofgold.ai");
    assert_eq!(s.fields["first_name"], "Zaphod");
    assert_eq!(s.fields["phone"], "15550000000");
}

#[test]
fn webflow_numbered_and_decorated_labels_the_first_wins_and_the_rest_stay_custom() {
    let data = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<Vec<_>>();
    let s = standardized(
        Adapter::Webflow,
        &webflow_with(data(&[
            ("Name", "Zaphod Beeblebrox"),
            ("Name 3", "Ford Prefect"),
            ("Email 2", "ford@heartofgold.ai"),
            ("Email", "zaphod@heartofgold.ai"),
            ("Phone (2)", "+1 555 0100"),
        ])),
    )
    .unwrap();
    assert_eq!(s.fields["email"], "zaphod@heartofgold.ai");
    assert_eq!(s.custom["Email 2"], "ford@heartofgold.ai");
    assert_eq!((s.fields["first_name"].as_str(), s.fields["last_name"].as_str()), (Some("Zaphod"), Some("Beeblebrox")));
    assert_eq!(s.custom["Name 3"], "Ford Prefect");
    assert_eq!(s.fields["phone"], "+1 555 0100");

    // Only a second field, numbered: it is the email.
    let s = standardized(Adapter::Webflow, &webflow_with(data(&[("Email 2", "ford@heartofgold.ai")]))).unwrap();
    assert_eq!(s.fields["email"], "ford@heartofgold.ai");
    for label in ["Your Email *", "E-mail address:", "Work email (required)", "email-2"] {
        let s = standardized(Adapter::Webflow, &webflow_with(data(&[(label, "ford@heartofgold.ai")]))).unwrap();
        assert_eq!(s.fields.get("email"), Some(&json!("ford@heartofgold.ai")), "{label}");
    }
}

#[test]
fn a_webflow_form_whose_only_email_field_is_unnamed_is_still_read() {
    let data = vec![("Field 3".to_owned(), json!("arthur@example.com")), ("Field 4".to_owned(), json!("Hi"))];
    let s = standardized(Adapter::Webflow, &webflow_with(data)).unwrap();
    assert_eq!(s.fields["email"], "arthur@example.com");
    assert_eq!(s.custom["Field 4"], "Hi");
    // Two email-shaped values and no label: nothing is guessed, both are kept.
    let data =
        vec![("Field 3".to_owned(), json!("arthur@example.com")), ("Field 4".to_owned(), json!("ford@example.com"))];
    let s = standardized(Adapter::Webflow, &webflow_with(data)).unwrap();
    assert!(!s.fields.contains_key("email"));
    assert_eq!(
        (&s.custom["Field 3"], &s.custom["Field 4"]),
        (&json!("arthur@example.com"), &json!("ford@example.com"))
    );
}

#[test]
fn intercom_conversation_user_created_is_read_in_every_api_versions_shape() {
    // 2.x: the person is the first message's author; contacts carry a reference.
    let s = standardized(Adapter::Intercom, &fixture("intercom_conversation_user_created_2x.json")).unwrap();
    assert_eq!(s.fields["email"], "joe@example.com");
    assert_eq!((s.fields["first_name"].as_str(), s.fields["last_name"].as_str()), (Some("Joe"), Some("Bloggs")));
    assert_eq!(s.custom["first_message"], "<p>Hi, can I get a demo for my team?</p>");
    assert_eq!(s.touchpoint["lead_id"], "667d60d88a68186f43bafde1");
    // 1.x: the person is `user`; the message is `conversation_message`.
    let s = standardized(Adapter::Intercom, &fixture("intercom_conversation_user_created_1x.json")).unwrap();
    assert_eq!(s.fields["email"], "darrag@example.com");
    assert_eq!(s.fields["external_id"], "9e3b3310-7810-4417-be3d-ab96d7976eac");
    assert_eq!(s.custom["first_message"], "<p>I need help!</p>");
    // A 2.x conversation whose author carries no email but whose contact does (a full
    // contact object, as some API versions embed): the contact is read.
    let mut body = fixture("intercom_conversation_user_created_2x.json");
    body["data"]["item"]["source"]["author"] = json!({"type": "lead", "id": "667d60d88a68186f43bafde1", "email": ""});
    body["data"]["item"]["contacts"]["contacts"][0]["email"] = json!("joe@example.com");
    let s = standardized(Adapter::Intercom, &body).unwrap();
    assert_eq!(s.fields["email"], "joe@example.com");
    assert_eq!(s.fields["external_id"], "70");
    // An admin-initiated conversation's author is no lead.
    let mut body = fixture("intercom_conversation_user_created_2x.json");
    body["data"]["item"]["source"]["author"] =
        json!({"type": "admin", "id": "991267553", "name": "Ciaran153 Lee", "email": "admin153@email.com"});
    let err = standardized(Adapter::Intercom, &body).unwrap_err();
    assert!(matches!(&err, HookError::Missing { path, .. } if path == "data.item.contacts.contacts[0].email"), "{err}");
}

#[test]
fn an_intercom_contact_known_only_by_id_says_so_with_the_path() {
    let err =
        standardized(Adapter::Intercom, &fixture("intercom_conversation_contact_reference_only.json")).unwrap_err();
    let HookError::Missing { path, reason } = &err else { panic!("{err:?}") };
    assert_eq!(path, "data.item.contacts.contacts[0].email");
    assert!(reason.contains("by id only") && reason.contains("667d60d88a68186f43bafde1"), "{reason}");
    // A contact notification without email or phone says which contact.
    let body = json!({"type": "notification_event", "id": "notif_9", "topic": "contact.lead.created",
        "data": {"item": {"type": "contact", "id": "6762f0a51bb69f9f2193bb7e", "role": "lead", "email": null}}});
    let err = standardized(Adapter::Intercom, &body).unwrap_err();
    assert!(
        matches!(&err, HookError::Missing { path, reason } if path == "data.item.email" && reason.contains("lead"))
    );
}

#[test]
fn every_adapter_has_a_version_and_missing_parts_are_named_by_path() {
    for adapter in Adapter::providers() {
        let v = leadflow_integrations::channels::adapter_version(adapter);
        assert!(v.starts_with(adapter.as_str()) && v.contains('/'), "{v}");
    }
    assert_eq!(leadflow_integrations::channels::adapter_version(Adapter::Typeform), "typeform/2");
    let empty = serde_json::Map::new();
    for (adapter, path) in [
        (Adapter::Typeform, "form_response"),
        (Adapter::Webflow, "payload"),
        (Adapter::Intercom, "data.item"),
        (Adapter::Tally, "data"),
    ] {
        let err = standardize(adapter, &empty).unwrap_err();
        assert!(matches!(&err, HookError::Missing { path: p, .. } if p == path), "{adapter:?}: {err}");
    }
}

// ---------------------------------------------------------------- conversations

fn activity(h: Result<Handled, HookError>) -> (Vec<Item>, Vec<Activity>) {
    match h {
        Ok(Handled::Activity { items, activity }) => (items, activity),
        other => panic!("expected activity, got {other:?}"),
    }
}

fn prop<'a>(a: &'a Activity, key: &str) -> &'a str {
    a.properties.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("{key} missing from {a:?}"))
}

#[test]
fn an_intercom_conversation_gives_its_lead_and_its_messages_as_the_persons_events() {
    let body = fixture("intercom_conversation_user_created_2x.json").to_string();
    let (items, messages) =
        activity(signed(Adapter::Intercom, body.as_bytes(), now()).run(Adapter::Intercom, &secrets()));
    assert_eq!(items.len(), 1, "the lead item is still there");
    let [first] = &messages[..] else { panic!("{messages:?}") };
    assert_eq!((first.kind.as_str(), first.email.as_deref()), ("conversation.message", Some("joe@example.com")));
    assert_eq!(first.idempotency_key, "intercom:367:source");
    assert_eq!(first.occurred_at, OffsetDateTime::from_unix_timestamp(1_719_492_825).unwrap());
    assert_eq!((prop(first, "conversation"), prop(first, "author")), ("intercom:367", "visitor"));
    assert_eq!(prop(first, "text"), "Hi, can I get a demo for my team?", "HTML is stripped");

    // A reply: the admin's comment is an agent's message; the internal note is not one.
    let reply = fixture("intercom_conversation_admin_replied.json");
    let (items, messages) =
        activity(signed(Adapter::Intercom, reply.to_string().as_bytes(), now()).run(Adapter::Intercom, &secrets()));
    assert!(items.is_empty(), "a reply is no new lead");
    let [answer] = &messages[..] else { panic!("{messages:?}") };
    assert_eq!(answer.idempotency_key, "intercom:367:part:45763812690");
    assert_eq!((prop(answer, "author"), prop(answer, "author_name")), ("agent", "Ciaran Lee"));
    assert_eq!(prop(answer, "text"), "Happy to help!\n\nHow many people are on your team?");
    assert_eq!(answer.email.as_deref(), Some("joe@example.com"), "the person, not the admin");

    // The same part under another topic (a bot's reply comes twice) has the same key.
    let mut again = reply.clone();
    again["topic"] = json!("conversation.operator.replied");
    again["id"] = json!("notif_other");
    let (_, twice) =
        activity(signed(Adapter::Intercom, again.to_string().as_bytes(), now()).run(Adapter::Intercom, &secrets()));
    assert_eq!(twice[0].idempotency_key, answer.idempotency_key);

    // Without the person's email nothing is recorded, and the reply is acknowledged.
    let mut anonymous = reply;
    anonymous["data"]["item"]["source"]["author"]["email"] = json!("");
    let r = signed(Adapter::Intercom, anonymous.to_string().as_bytes(), now()).run(Adapter::Intercom, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })), "{r:?}");
}

#[test]
fn intercom_conversation_attributes_are_read_through_the_qualification_table() {
    use leadflow_core::config::SourceConfig;
    use leadflow_core::source::qualification::Qualification;
    let mut body = fixture("intercom_conversation_user_created_2x.json");
    body["data"]["item"]["custom_attributes"] =
        json!({"How many people are on your team?": "51-200", "Company size": "11-50", "Use case": "Routing"});
    let item = only(signed(Adapter::Intercom, body.to_string().as_bytes(), now()).run(Adapter::Intercom, &secrets()));
    let source = SourceConfig {
        adapter: Adapter::Intercom,
        qualification: Qualification::new([("How many people are on your team?", "employee_count")]).unwrap(),
        ..SourceConfig::api()
    };
    let s = leadflow_integrations::channels::standardize_source(&source, &item.payload).unwrap();
    assert_eq!(s.fields["employee_count"], "51-200", "the configured question wins over the synonym");
    assert_eq!(s.custom["Company size"], "11-50");
    assert_eq!(s.custom["Use case"], "Routing", "an unmapped answer stays custom under its question");
}

#[test]
fn a_drift_message_is_the_visitors_event_under_drifts_contact_id() {
    let body = fixture("drift_new_message.json").to_string();
    let (items, messages) = activity(signed(Adapter::Drift, body.as_bytes(), now()).run(Adapter::Drift, &secrets()));
    assert!(items.is_empty());
    let [m] = &messages[..] else { panic!("{messages:?}") };
    assert_eq!(m.idempotency_key, "drift:message:2371960542");
    assert_eq!((m.email.as_deref(), m.visitor.as_deref()), (None, Some("drift:21761149107")));
    assert_eq!(m.occurred_at, OffsetDateTime::from_unix_timestamp(1_700_000_400).unwrap());
    assert_eq!(
        (prop(m, "conversation"), prop(m, "channel"), prop(m, "author")),
        ("drift:1865424318", "drift", "visitor")
    );
    assert_eq!(prop(m, "text"), "Hi! Do you integrate with Salesforce & HubSpot?");

    // A bot user's message is the bot's; a private note is no message.
    let mut bot = fixture("drift_new_message.json");
    bot["data"]["author"] = json!({"type": "user", "id": 42, "bot": true});
    bot["data"]["contactId"] = json!(21761149107_u64);
    let (_, messages) =
        activity(signed(Adapter::Drift, bot.to_string().as_bytes(), now()).run(Adapter::Drift, &secrets()));
    assert_eq!((prop(&messages[0], "author"), messages[0].visitor.as_deref()), ("bot", Some("drift:21761149107")));
    let mut note = fixture("drift_new_message.json");
    note["data"]["type"] = json!("private_note");
    let r = signed(Adapter::Drift, note.to_string().as_bytes(), now()).run(Adapter::Drift, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })), "{r:?}");
    // An agent's message that names no contact cannot be placed.
    let mut agent = fixture("drift_new_message.json");
    agent["data"]["author"] = json!({"type": "user", "id": 42, "bot": false});
    let r = signed(Adapter::Drift, agent.to_string().as_bytes(), now()).run(Adapter::Drift, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })), "{r:?}");
}

#[test]
fn drift_requires_its_verification_token() {
    let mut body = fixture("drift_new_message.json");
    // In the body, as Drift sends it, the header is not needed.
    body["token"] = json!(SECRET);
    assert!(activity(Req::post(body.to_string()).run(Adapter::Drift, &secrets())).1.len() == 1);
    body["token"] = json!("not-the-token");
    let wrong = Req::post(body.to_string()).header("x-verification-token", SECRET);
    assert!(
        matches!(wrong.run(Adapter::Drift, &secrets()), Err(HookError::Unauthorized(_))),
        "the body's token counts"
    );
    let none = Req::post(fixture("drift_new_message.json").to_string());
    assert!(matches!(none.run(Adapter::Drift, &secrets()), Err(HookError::Unauthorized(_))));
    let no_data = signed(Adapter::Drift, br#"{"type": "new_message", "orgId": 1}"#, now());
    assert!(matches!(no_data.run(Adapter::Drift, &secrets()), Err(HookError::Malformed(_))));
}

#[test]
fn a_drift_contact_identified_is_a_lead_with_its_bots_answers_mapped() {
    use leadflow_core::config::SourceConfig;
    use leadflow_core::source::qualification::Qualification;
    let mut body = fixture("drift_contact_identified.json");
    body["token"] = json!(SECRET);
    let item = only(Req::post(body.to_string()).run(Adapter::Drift, &secrets()));
    assert!(item.idempotency_key.starts_with("drift:contact:21761149107:"), "{}", item.idempotency_key);
    assert!(!item.payload.contains_key("token"), "the verification token is not stored");
    let source = SourceConfig {
        adapter: Adapter::Drift,
        qualification: Qualification::new([("What's your timeline?", "custom.timeline")]).unwrap(),
        ..SourceConfig::api()
    };
    let s = leadflow_integrations::channels::standardize_source(&source, &item.payload).unwrap();
    assert_eq!(s.fields["email"], "ada@acme.example");
    assert_eq!((s.fields["first_name"].as_str(), s.fields["last_name"].as_str()), (Some("Ada"), Some("Lovelace")));
    assert_eq!(s.fields["company"], "Acme Analytics");
    assert_eq!(s.fields["employee_count"], "51-200", "Company size by the label table");
    assert_eq!(s.custom["timeline"], "This quarter");
    assert_eq!(s.labels["timeline"], "What's your timeline?");
    assert_eq!(s.custom["anonymous_id"], "drift:21761149107", "its messages join this lead");
    assert!(!s.custom.contains_key("_END_USER_VERSION"));
    // A contact without an email is no lead yet.
    let mut anonymous = fixture("drift_contact_identified.json");
    anonymous["data"]["attributes"]["email"] = json!(null);
    let r = signed(Adapter::Drift, anonymous.to_string().as_bytes(), now()).run(Adapter::Drift, &secrets());
    assert!(matches!(r, Ok(Handled::Ignored { .. })), "{r:?}");
}

#[test]
fn generic_answers_make_a_lead_payload_by_the_same_tables() {
    use leadflow_core::source::qualification::Qualification;
    let answers = json!({"What's your team size?": 120, "Job title": "CTO", "Favourite colour": "green"});
    let table = Qualification::new([("What's your team size?", "employee_count")]).unwrap();
    let lead = leadflow_integrations::channels::answers_lead("ada@example.com", answers.as_object().unwrap(), &table);
    assert_eq!(
        Value::Object(lead),
        json!({"email": "ada@example.com", "employee_count": "120", "job_title": "CTO",
            "custom": {"Favourite colour": "green"}})
    );
}
