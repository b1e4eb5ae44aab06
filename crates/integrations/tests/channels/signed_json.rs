//! The generic signed-JSON webhook: the signature in every configured shape, and bodies
//! of one lead or several.

use super::*;
use leadflow_core::config::SourceConfig;
use leadflow_core::source::inbound::{SignatureAlgorithm, SignatureEncoding, SignedJsonSettings};
use leadflow_integrations::channels::handle_source;
use sha2::Sha512;

fn source(settings: SignedJsonSettings) -> SourceConfig {
    SourceConfig { adapter: Adapter::SignedJson, signed_json: settings, ..SourceConfig::api() }
}

fn run(r: &Req, source: &SourceConfig) -> Result<Handled, HookError> {
    let req = HookRequest {
        method: r.method,
        url: URL,
        query: &r.query,
        headers: &r.headers,
        content_type: r.content_type.as_deref(),
        body: &r.body,
        now: r.now,
    };
    handle_source(source, &req, &secrets(), &Default::default())
}

const LEAD: &str = r#"{"Email": "zap@example.com", "First Name": "Zed"}"#;

#[test]
fn a_good_hex_sha256_signature_stores_the_lead_as_sent() {
    let r = Req::post(LEAD).header("x-signature", hex::encode(mac256(&[LEAD.as_bytes()])));
    let item = only(run(&r, &source(SignedJsonSettings::default())));
    assert_eq!(item.payload["Email"], "zap@example.com");
    assert!(item.idempotency_key.starts_with("signed_json:sha256:"));
    // Upper-case hex is the same signature.
    let upper = Req::post(LEAD).header("x-signature", hex::encode_upper(mac256(&[LEAD.as_bytes()])));
    assert_eq!(only(run(&upper, &source(SignedJsonSettings::default()))).idempotency_key, item.idempotency_key);
}

#[test]
fn wrong_and_missing_signatures_are_unauthorized() {
    let s = source(SignedJsonSettings::default());
    let wrong = Req::post(LEAD).header("x-signature", hex::encode(mac256(&[b"other"])));
    assert!(matches!(run(&wrong, &s), Err(HookError::Unauthorized(_))));
    assert!(matches!(run(&Req::post(LEAD), &s), Err(HookError::Unauthorized(_))));
    let garbage = Req::post(LEAD).header("x-signature", "not hex at all");
    assert!(matches!(run(&garbage, &s), Err(HookError::Unauthorized(_))));
}

#[test]
fn base64_sha512_with_a_prefix_in_a_custom_header() {
    let settings = SignedJsonSettings {
        header: "X-Zapier-Signature".into(),
        algorithm: SignatureAlgorithm::Sha512,
        encoding: SignatureEncoding::Base64,
        prefix: Some("sha512=".into()),
        ..SignedJsonSettings::default()
    };
    let mut m = Hmac::<Sha512>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(LEAD.as_bytes());
    let sig = b64(&m.finalize().into_bytes());
    let good = Req::post(LEAD).header("x-zapier-signature", format!("sha512={sig}"));
    assert!(run(&good, &source(settings.clone())).is_ok());
    let no_prefix = Req::post(LEAD).header("x-zapier-signature", sig.clone());
    assert!(matches!(run(&no_prefix, &source(settings.clone())), Err(HookError::Unauthorized(_))));
    // Unpadded and URL-safe spellings of the same bytes are accepted.
    let unpadded = sig.trim_end_matches('=').replace('+', "-").replace('/', "_");
    let url_safe = Req::post(LEAD).header("x-zapier-signature", format!("sha512={unpadded}"));
    assert!(run(&url_safe, &source(settings)).is_ok());
}

#[test]
fn sha1_hex_is_accepted_when_configured() {
    let settings = SignedJsonSettings { algorithm: SignatureAlgorithm::Sha1, ..SignedJsonSettings::default() };
    let mut m = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(LEAD.as_bytes());
    let r = Req::post(LEAD).header("x-signature", hex::encode(m.finalize().into_bytes()));
    assert!(run(&r, &source(settings)).is_ok());
    // A SHA-256 signature is not a SHA-1 one.
    let r = Req::post(LEAD).header("x-signature", hex::encode(mac256(&[LEAD.as_bytes()])));
    let settings = SignedJsonSettings { algorithm: SignatureAlgorithm::Sha1, ..SignedJsonSettings::default() };
    assert!(matches!(run(&r, &source(settings)), Err(HookError::Unauthorized(_))));
}

#[test]
fn a_signed_timestamp_is_required_and_checked_when_configured() {
    let settings = SignedJsonSettings { timestamp_header: Some("X-Timestamp".into()), ..SignedJsonSettings::default() };
    let at = |t: OffsetDateTime| {
        let ts = t.unix_timestamp().to_string();
        Req::post(LEAD)
            .header("x-timestamp", ts.clone())
            .header("x-signature", hex::encode(mac256(&[ts.as_bytes(), b".", LEAD.as_bytes()])))
    };
    assert!(run(&at(now()), &source(settings.clone())).is_ok());
    let stale = at(now() - time::Duration::minutes(6));
    assert!(matches!(run(&stale, &source(settings.clone())), Err(HookError::Stale(_))));
    let body_only = Req::post(LEAD).header("x-signature", hex::encode(mac256(&[LEAD.as_bytes()])));
    assert!(matches!(run(&body_only, &source(settings)), Err(HookError::Unauthorized(_))));
}

#[test]
fn an_array_body_is_several_leads_keyed_by_the_idempotency_key() {
    let body = r#"[{"email": "a@example.com"}, {"email": "b@example.com"}]"#;
    let r = Req::post(body)
        .header("x-signature", hex::encode(mac256(&[body.as_bytes()])))
        .header("idempotency-key", "zap-run-7");
    let got = items(run(&r, &source(SignedJsonSettings::default())));
    let keys: Vec<&str> = got.iter().map(|i| i.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["signed_json:zap-run-7:0", "signed_json:zap-run-7:1"]);
    assert_eq!(got[1].payload["email"], "b@example.com");

    for bad in [r#"[1, 2]"#, r#""text""#, "{not json"] {
        let r = Req::post(bad).header("x-signature", hex::encode(mac256(&[bad.as_bytes()])));
        assert!(matches!(run(&r, &source(SignedJsonSettings::default())), Err(HookError::Malformed(_))), "{bad}");
    }
    let empty = Req::post("[]").header("x-signature", hex::encode(mac256(&[b"[]"])));
    assert!(matches!(run(&empty, &source(SignedJsonSettings::default())), Ok(Handled::Ignored { .. })));
}

mod never_panics {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_signed_json_adapter_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            leadflow_integrations::channels::fuzz_signed_json(&data);
        }
    }
}
