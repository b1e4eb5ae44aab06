//! The `email` adapter: raw MIME and the Mailgun, SendGrid and Postmark inbound posts,
//! from the providers' published examples (see `fixtures/README.md`), read with the
//! source's extraction rules.

use super::*;
use leadflow_core::config::SourceConfig;
use leadflow_core::source::inbound::{EmailProvider, EmailSettings, ExtractRule, Pattern};
use leadflow_integrations::channels::{handle_source, standardize_source};
use serde_json::Map;

fn email_source(settings: EmailSettings) -> SourceConfig {
    SourceConfig { adapter: Adapter::Email, email: settings, ..SourceConfig::api() }
}

fn run(r: &Req, source: &SourceConfig, secrets: &Secrets) -> Result<Handled, HookError> {
    let url = format!("{URL}?{}", r.query);
    let req = HookRequest {
        method: r.method,
        url: &url,
        query: &r.query,
        headers: &r.headers,
        content_type: r.content_type.as_deref(),
        body: &r.body,
        now: r.now,
    };
    handle_source(source, &req, secrets, &Default::default())
}

/// The lead's payload as the pipeline would read it.
fn lead(source: &SourceConfig, item: &Item) -> Map<String, Value> {
    standardize_source(source, &item.payload).unwrap().into_payload()
}

fn eml() -> Vec<u8> {
    std::fs::read(fixture_path("directory_inquiry.eml")).unwrap()
}

fn raw(body: Vec<u8>) -> Req {
    Req { content_type: Some("message/rfc822".into()), ..Req::post(body) }
}

fn form_urlencoded_of(fields: &Value) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields.as_object().unwrap() {
        s.append_pair(k, v.as_str().unwrap());
    }
    s.finish().into_bytes()
}

fn multipart_of(fields: &Value, files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields.as_object().unwrap() {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{}\r\n", v.as_str().unwrap())
                .as_bytes(),
        );
    }
    for (name, file, data) in files {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

/// Mailgun's example, signed at `at` with the test key.
fn mailgun(at: OffsetDateTime) -> Value {
    let mut fields = fixture("mailgun_route_forward_example.json");
    let timestamp = at.unix_timestamp().to_string();
    let token = "c6a0d0a7f5a2c0b3e4d1f6a9b8c7d6e5f4a3b2c1d0e9f8a7b6";
    let signature = hex::encode(mac256(&[timestamp.as_bytes(), token.as_bytes()]));
    let o = fields.as_object_mut().unwrap();
    o.insert("timestamp".into(), json!(timestamp));
    o.insert("token".into(), json!(token));
    o.insert("signature".into(), json!(signature));
    fields
}

#[test]
fn a_directory_inquiry_reads_the_person_from_reply_to_and_the_labelled_lines() {
    let source = email_source(EmailSettings::default());
    let item = only(run(&raw(eml()), &source, &Secrets::default()));
    assert_eq!(item.idempotency_key, "email:inquiry-20240611-0042@notifications.directory.example");
    // Attachments are noted, never stored by default.
    let attachment = &item.payload["attachments"][0];
    assert_eq!(attachment["name"], "requirements.pdf");
    assert_eq!(attachment["content_type"], "application/pdf");
    assert!(attachment["size"].as_u64().unwrap() > 0);
    assert!(attachment.get("content_base64").is_none());
    let p = lead(&source, &item);
    assert_eq!(p["email"], "ada.lovelace@analytical.example");
    assert_eq!(p["phone"], "+49 30 1234567");
    assert_eq!(p["company"], "Analytical Engines GmbH");
    assert_eq!((&p["first_name"], &p["last_name"]), (&json!("Ada"), &json!("Lovelace")));
    assert_eq!(p["custom"]["subject"], "New inquiry via Industry Directory – Analytical Engines");
    assert_eq!(p["custom"]["relayed_by"], "no-reply@notifications.directory.example");
    assert!(p["custom"]["message"].as_str().unwrap().contains("quote for 40 seats"));
    assert_eq!(p["custom"]["attachments"][0]["name"], "requirements.pdf");
    assert_eq!(p["touchpoint"]["provider"], "email");
}

#[test]
fn configured_labels_and_patterns_replace_the_defaults() {
    let settings = EmailSettings {
        extract: vec![
            ("phone".into(), ExtractRule { labels: vec!["Telefon:".into()], pattern: None }),
            (
                "message".into(),
                ExtractRule {
                    labels: vec![],
                    pattern: Some(Pattern(regex::Regex::new(r"(?s)Message:\s*(.*?)\r?\n\r?\n").unwrap())),
                },
            ),
        ],
        keep_attachments: true,
        ..EmailSettings::default()
    };
    let source = email_source(settings);
    let item = only(run(&raw(eml()), &source, &Secrets::default()));
    assert!(item.payload["attachments"][0]["content_base64"].as_str().unwrap().starts_with("JVBER"));
    let p = lead(&source, &item);
    assert_eq!(p["phone"], "+49 30 1234567");
    // Company has no rule now: only what was configured is read.
    assert!(p.get("company").is_none());
    // The pattern's target is no standard field: it is kept in custom, the whole text
    // beside it.
    assert_eq!(p["custom"]["message"], "We would like a quote for 40 seats, starting in July.");
    assert!(p["custom"]["email_text"].as_str().unwrap().starts_with("You have a new inquiry"));
}

#[test]
fn postmarks_example_is_read_with_basic_auth_or_a_key() {
    let source = email_source(EmailSettings::default());
    let body = std::fs::read(fixture_path("postmark_inbound_example.json")).unwrap();
    let basic = format!("Basic {}", b64(format!("postmark:{SECRET}").as_bytes()));
    let item = only(run(&Req::post(body.clone()).header("authorization", basic), &source, &secrets()));
    assert_eq!(item.payload["provider"], "postmark");
    assert_eq!(item.idempotency_key, "email:postmark:73e6d360-66eb-11e1-8e72-a8904824019b");
    let p = lead(&source, &item);
    // support@ is no relay: the From is the person, Reply-To a second address.
    assert_eq!(p["email"], "support@postmarkapp.com");
    assert_eq!((&p["first_name"], &p["last_name"]), (&json!("Postmarkapp"), &json!("Support")));
    assert_eq!(p["custom"]["message"], "This is a test text body.");
    assert_eq!(p["custom"]["attachments"][0], json!({"name": "test.txt", "content_type": "text/plain", "size": 45}));

    let wrong = Req::post(body.clone()).header("authorization", format!("Basic {}", b64(b"postmark:nope")));
    assert!(matches!(run(&wrong, &source, &secrets()), Err(HookError::Unauthorized(_))));
    assert!(matches!(run(&Req::post(body.clone()), &source, &secrets()), Err(HookError::Unauthorized(_))));
    let keyed = Req { query: format!("key={SECRET}"), ..Req::post(body) };
    assert!(run(&keyed, &source, &secrets()).is_ok());
}

#[test]
fn an_html_only_postmark_message_keeps_its_text() {
    let source = email_source(EmailSettings::default());
    let mut v = fixture("postmark_inbound_example.json");
    v["TextBody"] = json!("");
    let item = only(run(&Req::post(v.to_string()), &source, &Secrets::default()));
    assert_eq!(item.payload["text_from_html"], true);
    assert!(item.payload["text"].as_str().unwrap().contains("This is a test html body."));
}

#[test]
fn mailguns_example_is_verified_by_its_signature_and_timestamp() {
    let source = email_source(EmailSettings::default());
    let form = |fields: &Value| Req {
        content_type: Some("application/x-www-form-urlencoded".into()),
        ..Req::post(form_urlencoded_of(fields))
    };
    let item = only(run(&form(&mailgun(now())), &source, &secrets()));
    assert_eq!(item.payload["provider"], "mailgun");
    assert_eq!(item.idempotency_key, "email:517ACC75.5010709@mailgun.net");
    let p = lead(&source, &item);
    assert_eq!(p["email"], "bob@mailgun.net");
    assert_eq!(p["first_name"], "Bob");
    assert_eq!(p["custom"]["subject"], "Re: Sample POST request");
    assert!(p["custom"]["message"].as_str().unwrap().starts_with("Hi Alice,"));

    // Re-signed later (Mailgun's retry): the same message, the same key.
    let later = now() + time::Duration::seconds(60);
    let retry = Req { now: later, ..form(&mailgun(later)) };
    assert_eq!(only(run(&retry, &source, &secrets())).idempotency_key, item.idempotency_key);

    let mut tampered = mailgun(now());
    tampered["signature"] = json!("00".repeat(32));
    assert!(matches!(run(&form(&tampered), &source, &secrets()), Err(HookError::Unauthorized(_))));
    let mut unsigned = mailgun(now());
    unsigned.as_object_mut().unwrap().remove("signature");
    let pinned = email_source(EmailSettings { provider: Some(EmailProvider::Mailgun), ..EmailSettings::default() });
    assert!(matches!(run(&form(&unsigned), &pinned, &secrets()), Err(HookError::Unauthorized(_))));
    let stale = form(&mailgun(now() - time::Duration::minutes(10)));
    assert!(matches!(run(&stale, &source, &secrets()), Err(HookError::Stale(_))));
}

#[test]
fn mailgun_multipart_attachments_are_named_with_their_size() {
    let source = email_source(EmailSettings::default());
    let body = multipart_of(&mailgun(now()), &[("attachment-1", "quote.pdf", b"%PDF-1.4 tiny")]);
    let r = Req { content_type: Some("multipart/form-data; boundary=XyZ".into()), ..Req::post(body) };
    let item = only(run(&r, &source, &secrets()));
    assert_eq!(
        item.payload["attachments"],
        json!([{"name": "quote.pdf", "content_type": "application/pdf", "size": 13}])
    );
}

#[test]
fn sendgrids_parsed_and_raw_posts_are_read_and_a_key_is_required_when_set() {
    let source = email_source(EmailSettings::default());
    let fields = fixture("sendgrid_inbound_parse_example.json");
    let post = |fields: &Value, query: &str| Req {
        content_type: Some("multipart/form-data; boundary=XyZ".into()),
        query: query.to_owned(),
        ..Req::post(multipart_of(fields, &[]))
    };
    let item = only(run(&post(&fields, &format!("key={SECRET}")), &source, &secrets()));
    assert_eq!(item.payload["provider"], "sendgrid");
    let p = lead(&source, &item);
    assert_eq!(p["email"], "test@example.com");
    assert_eq!((&p["first_name"], &p["last_name"]), (&json!("Example"), &json!("User")));
    assert_eq!(p["custom"]["message"], "Hello SendGrid!");
    assert_eq!(p["custom"]["subject"], "Testing non-raw");
    // SendGrid does not sign: without the key the post is refused.
    assert!(matches!(run(&post(&fields, ""), &source, &secrets()), Err(HookError::Unauthorized(_))));
    assert!(matches!(run(&post(&fields, "key=wrong"), &source, &secrets()), Err(HookError::Unauthorized(_))));

    // "Send raw": the message under `email`.
    let raw_fields = json!({"email": String::from_utf8(eml()).unwrap(), "envelope": fields["envelope"], "charsets": fields["charsets"]});
    let item = only(run(&post(&raw_fields, ""), &source, &Secrets::default()));
    assert_eq!(item.payload["provider"], "sendgrid");
    assert_eq!(lead(&source, &item)["email"], "ada.lovelace@analytical.example");
}

#[test]
fn a_message_without_sender_is_stored_and_refused_by_standardize_naming_from() {
    let source = email_source(EmailSettings::default());
    let msg = b"To: sales@leadflow.example\r\nSubject: Call me\r\n\r\nPhone: +1 555 0100\r\n".to_vec();
    let item = only(run(&raw(msg), &source, &Secrets::default()));
    let err = standardize_source(&source, &item.payload).unwrap_err();
    assert!(matches!(&err, HookError::Missing { path, .. } if path == "from"), "{err}");
}

#[test]
fn malformed_messages_and_unknown_posts_are_malformed() {
    let source = email_source(EmailSettings::default());
    for body in [&b""[..], b"\x00\x01\x02 binary", b"just some words without headers"] {
        let got = run(&raw(body.to_vec()), &source, &Secrets::default());
        assert!(matches!(got, Err(HookError::Malformed(_))), "{body:?}: {got:?}");
    }
    let form = Req { content_type: Some("application/x-www-form-urlencoded".into()), ..Req::post(b"a=1".to_vec()) };
    assert!(matches!(run(&form, &source, &Secrets::default()), Err(HookError::Malformed(_))));
    let xml = Req { content_type: Some("application/xml".into()), ..Req::post(b"<a/>".to_vec()) };
    assert!(matches!(run(&xml, &source, &Secrets::default()), Err(HookError::Malformed(_))));
}

mod never_panics {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_email_parsers_never_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            leadflow_integrations::channels::fuzz_email(&data);
        }

        #[test]
        fn the_email_parsers_never_panic_on_message_like_text(
            headers in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,60}", 0..8),
            body in "[ -~\r\n]{0,400}",
        ) {
            let msg = format!("{}\r\n\r\n{body}", headers.join("\r\n"));
            leadflow_integrations::channels::fuzz_email(msg.as_bytes());
        }
    }
}
