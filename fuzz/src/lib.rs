//! The bodies of leadflow's fuzz targets, one `pub fn(&[u8])` per target.
//!
//! `fuzz_targets/*.rs` wrap each in `libfuzzer_sys::fuzz_target!`; `tests/run.rs` drives
//! the same functions over the seed corpus, the saved artifacts and a deterministic
//! generator with plain `cargo test`, so they are exercised even without libFuzzer.
//! A target "fails" by panicking: every property below is an `assert!`.

use arbitrary::{Arbitrary, Unstructured};
use leadflow_core::geo::CountryCode;
use serde_json::{Map, Value};

/// Target `lead_payload`: JSON bytes → `pipeline::prepare` with the `api` source and the
/// default picklists.
///
/// Properties: never panics; a candidate that prepared, re-submitted as a payload of
/// its own standard fields, prepares again to the same fields (normalization is
/// idempotent).
pub fn lead_payload(data: &[u8]) {
    let payload = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(payload)) => payload,
        Ok(_) => return,
        // Bytes that are not JSON build a structured lead instead (see `StructuredLead`),
        // so the mutations the JSON parser rejects still reach normalization.
        Err(_) => match StructuredLead::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(lead) => lead.into_payload(),
            Err(_) => return,
        },
    };
    check_prepare(&payload);
}

fn check_prepare(payload: &Map<String, Value>) {
    let source = leadflow_core::config::SourceConfig::api();
    let picklists = leadflow_core::config::Picklists::default();
    let Ok(first) = leadflow_core::pipeline::prepare(payload, &source, &picklists) else {
        return;
    };
    let resubmitted = match serde_json::to_value(&first.fields) {
        Ok(Value::Object(map)) => map,
        other => panic!("LeadFields must serialize to an object, got {other:?}"),
    };
    match leadflow_core::pipeline::prepare(&resubmitted, &source, &picklists) {
        Ok(again) => assert_eq!(
            again.fields, first.fields,
            "normalization is not idempotent\n first payload: {payload:?}\n resubmitted: {resubmitted:?}"
        ),
        Err(errors) => panic!(
            "a prepared lead's own fields were rejected: {errors:?}\n first payload: {payload:?}\n resubmitted: {resubmitted:?}"
        ),
    }
}

/// Realistic keys: the standard fields, synonyms and envelope keys.
const KEYS: &[&str] = &[
    "Work Email", "E-Mail", "Company Name", "organization", "full_name", "name", "Contact Name", "Zip", "mobile",
    "Phone Number", "custom", "consent", "source", "utm source", "utmSource", "Country", "Province", "title",
    "address1", "id", "lead id", "employees", "revenue",
];

/// Realistic values, so the structured leads get past the parsers.
const VALUES: &[&str] = &[
    "ada@example.com", " ADA@Example.COM ", "(415) 555-2671 x12", "+44 20 7946 0958", "030 901820", "+49 30 901820",
    "1-800-FLOWERS", "tel:+1-202-555-0123;ext=7", "United States of America", "UK", "Deutschland", "Korea",
    "Georgia", "calif.", "N.S.W.", "Québec", "QC", "US-CA", "Ada Lovelace", "Lovelace, Ada", "1,200", "about 5M",
    "5e3", "https://example.com/landing?utm_source=x", "  spaced   out  ", "",
];

#[derive(Debug, Arbitrary)]
enum Key {
    Standard(u8),
    Known(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Val {
    Known(u8),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Consent { granted: Option<bool>, at: Option<String>, channels: Vec<(String, bool)> },
    Object(Vec<(Key, Val)>),
    List(Vec<Val>),
}

/// A lead built from known keys and values by `arbitrary`, for `lead_payload`.
#[derive(Debug, Arbitrary)]
struct StructuredLead(Vec<(Key, Val)>);

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Standard(i) => pick(leadflow_core::mapping::STANDARD_FIELDS, *i).to_owned(),
            Key::Known(i) => pick(KEYS, *i).to_owned(),
            Key::Raw(s) => s.clone(),
        }
    }
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Known(i) => Value::from(pick(VALUES, *i)),
            Val::Str(s) => Value::from(s.as_str()),
            Val::Int(n) => Value::from(*n),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Bool(b) => Value::Bool(*b),
            Val::Null => Value::Null,
            Val::Consent { granted, at, channels } => {
                let mut m = Map::new();
                m.insert("granted".into(), granted.map_or(Value::Null, Value::Bool));
                if let Some(at) = at {
                    m.insert("at".into(), Value::from(at.as_str()));
                }
                m.insert("channels".into(), channels.iter().map(|(k, v)| (k.clone(), Value::Bool(*v))).collect());
                Value::Object(m)
            }
            Val::Object(kv) => Value::Object(kv.iter().map(|(k, v)| (k.text(), v.json())).collect()),
            Val::List(vs) => Value::Array(vs.iter().map(Val::json).collect()),
        }
    }
}

impl StructuredLead {
    fn into_payload(self) -> Map<String, Value> {
        self.0.iter().map(|(k, v)| (k.text(), v.json())).collect()
    }
}

/// Target `config`: text → `config::parse` (`leadflow.toml`).
///
/// Properties: never panics; every error is located at line ≥ 1, column ≥ 1, within
/// the text's lines.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(errors) = leadflow_core::config::parse(&text) {
        assert!(!errors.is_empty(), "Err with no error");
        let lines = text.split('\n').count();
        for e in &errors {
            assert!(e.line >= 1 && e.column >= 1, "error not located: {e:?}");
            assert!(e.line <= lines, "error line {} beyond the text's {lines} lines: {e:?}", e.line);
        }
    }
}

fn code_at(i: u8) -> CountryCode {
    let all: Vec<CountryCode> = CountryCode::all().collect();
    all[usize::from(i) % all.len()]
}

/// The `phone` target's input: the hint is drawn from the leading bytes, the rest is the
/// raw number. First byte `% 4`: 0 no hint; 1 the next two bytes, upper-cased (`1US…`);
/// 2 the next two bytes, lower-cased (`2gb…`); 3 the next `byte % 8` bytes as they are
/// (`33USA…`). So seeds stay readable: `1US(415) 555-2671 x12`.
#[derive(Debug)]
struct PhoneInput {
    hint: Option<String>,
    raw: String,
}

impl PhoneInput {
    fn take(mut u: Unstructured<'_>) -> arbitrary::Result<Self> {
        let hint = match u.arbitrary::<u8>()? % 4 {
            0 => None,
            1 => Some(String::from_utf8_lossy(u.bytes(2)?).to_uppercase()),
            2 => Some(String::from_utf8_lossy(u.bytes(2)?).to_lowercase()),
            _ => {
                let n = usize::from(u.arbitrary::<u8>()? % 8);
                Some(String::from_utf8_lossy(u.bytes(n.min(u.len()))?).into_owned())
            }
        };
        let raw = String::from_utf8_lossy(u.take_rest()).into_owned();
        Ok(Self { hint, raw })
    }
}

/// Target `phone`: `leadflow_core::phone::normalize(raw, hint)`, the hint drawn from the input.
///
/// Properties: never panics; on success the E.164 form is `+` and ASCII digits, the
/// extension digits (Unicode, not only ASCII), the region an assigned alpha-2 code (or AC, TA, XK), and the E.164 form
/// normalizes again to itself (with no hint, and with its own region as the hint).
pub fn phone(data: &[u8]) {
    let Ok(input) = PhoneInput::take(Unstructured::new(data)) else {
        return;
    };
    let Ok(n) = leadflow_core::phone::normalize(&input.raw, input.hint.as_deref()) else {
        return;
    };
    let digits = n.e164.strip_prefix('+').unwrap_or_else(|| panic!("E.164 without '+': {n:?} from {input:?}"));
    assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "E.164 not digits: {n:?} from {input:?}");
    if let Some(ext) = &n.extension {
        // Digits, but not necessarily ASCII ones: like libphonenumber, the extension keeps
        // the digits as written (N'Ko, Arabic-Indic, full-width …), while the E.164 form is
        // converted. Found by this target (regressions/phone/extension_nko_digit).
        assert!(!ext.is_empty() && ext.chars().all(char::is_numeric), "extension not digits: {n:?} from {input:?}");
    }
    if let Some(region) = &n.region {
        // libphonenumber's regions are alpha-2 codes, but not all are assigned ISO 3166-1
        // codes: AC (Ascension), TA (Tristan da Cunha) and XK (Kosovo) are its own. Found
        // by this target (regressions/phone/region_ac); leadflow-core then leaves the
        // lead's country empty, as `CountryCode::parse_code` refuses them.
        assert!(
            region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase()),
            "region not an alpha-2 code: {n:?} from {input:?}"
        );
        assert!(
            CountryCode::parse_code(region).is_some() || ["AC", "TA", "XK"].contains(&region.as_str()),
            "region neither assigned nor a known libphonenumber-only region: {n:?} from {input:?}"
        );
    }
    for again_hint in [None, n.region.as_deref()] {
        match leadflow_core::phone::normalize(&n.e164, again_hint) {
            Ok(again) => {
                assert_eq!(again.e164, n.e164, "E.164 does not normalize to itself (hint {again_hint:?}) from {input:?}");
                assert_eq!(again.extension, None, "extension out of nowhere from {input:?}");
                assert_eq!(again.region, n.region, "region changed on re-normalizing, from {input:?}");
            }
            Err(e) => panic!("E.164 {} (from {input:?}) fails to normalize again (hint {again_hint:?}): {e:?}", n.e164),
        }
    }
}

/// The `country` target's input: two bytes naming the context country (an assigned
/// code when they spell one, e.g. `US`, else one chosen by their value), then the
/// country text, then optionally `\n` and a state text (else the country text is
/// tried as a state too). Seed: `USUnited States\ncalif.`.
#[derive(Debug)]
struct CountryInput {
    context: CountryCode,
    raw: String,
    state: String,
}

impl CountryInput {
    fn parse(data: &[u8]) -> Option<Self> {
        let (ctx, rest) = data.split_at_checked(2)?;
        let context = std::str::from_utf8(ctx)
            .ok()
            .and_then(|s| CountryCode::parse_code(&s.to_ascii_uppercase()))
            .unwrap_or_else(|| code_at(ctx[0] ^ ctx[1]));
        let text = String::from_utf8_lossy(rest);
        let (raw, state) = text.split_once('\n').unwrap_or((&text, &text));
        Some(Self { context, raw: raw.to_owned(), state: state.to_owned() })
    }
}

/// Target `country`: `leadflow_core::geo::{lookup, country, country_with_context, subdivision}`.
///
/// Properties: never panics; a found country's `as_str()` looks up to itself (as free
/// text and as a strict code); a found subdivision belongs to the country, has a name,
/// and both its full code and the part after the dash (what leadflow stores) look up to
/// it again.
pub fn country(data: &[u8]) {
    let Some(input) = CountryInput::parse(data) else {
        return;
    };
    let ctx = input.context;
    let _ = leadflow_core::geo::lookup(&input.raw);
    let _ = leadflow_core::geo::lookup_with_context(&input.raw, Some(ctx));
    if let Some(code) = leadflow_core::geo::country(&input.raw) {
        let s = code.as_str();
        assert_eq!(leadflow_core::geo::country(s), Some(code), "{s:?} (found for {:?}) does not look up to itself", input.raw);
        assert_eq!(CountryCode::parse_code(s), Some(code), "{s:?} is not a strict code");
    }
    if let Some(code) = leadflow_core::geo::country_with_context(&input.raw, ctx) {
        assert_eq!(leadflow_core::geo::country(code.as_str()), Some(code));
    }
    // Subdivisions: both under the drawn context and under the country the text names.
    let mut countries = vec![ctx];
    countries.extend(leadflow_core::geo::country(&input.raw));
    for c in countries {
        for raw in [&input.state, &input.raw] {
            let Some(sub) = leadflow_core::geo::subdivision(&c, raw) else {
                continue;
            };
            let (prefix, part) =
                sub.split_once('-').unwrap_or_else(|| panic!("subdivision code {sub:?} without '-' for {raw:?}"));
            assert_eq!(prefix, c.as_str(), "{sub:?} is not a subdivision of {c:?} (input {raw:?})");
            assert!(leadflow_core::geo::subdivision_name(sub).is_some(), "{sub:?} has no name");
            assert_eq!(leadflow_core::geo::subdivision(&c, sub), Some(sub), "{sub:?} (for {raw:?}) does not look up to itself");
            assert_eq!(
                leadflow_core::geo::subdivision(&c, part),
                Some(sub),
                "{part:?}, the stored part of {sub:?} (for {raw:?}), does not look up to it"
            );
        }
    }
}

/// Checks that hold for any `map_record` output.
fn check_mapped(record: &Map<String, Value>, mapped: &leadflow_core::mapping::Mapped) {
    for key in mapped.standard.keys() {
        assert!(leadflow_core::mapping::STANDARD_FIELDS.contains(&key.as_str()), "non-standard key {key:?} in standard");
    }
    for value in mapped.standard.values() {
        assert!(!value.is_null(), "a null in standard: {mapped:?}");
    }
    for key in record.keys() {
        assert!(mapped.decisions.iter().any(|d| &d.key == key), "no decision for top-level key {key:?}: {mapped:?}");
    }
}

/// Target `mapping`. The first byte selects the mode (ASCII `'0'`, `'1'`, `'2'` in the
/// seeds), the rest is text:
/// * 0: a JSON object → `map_record` with no spec;
/// * 1: TOML → `toml_edit` → `parse_spec` on the root table;
/// * 2: TOML, a line `%%`, then a JSON object: the spec, if it parses, maps the object.
///
/// Properties: never panics; `standard` holds only standard fields and no nulls; every
/// top-level key of the record gets a decision; spec errors name a key or a span inside
/// the text.
pub fn mapping(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(rest) {
                let mapped = leadflow_core::mapping::map_record(&record, None);
                check_mapped(&record, &mapped);
            }
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            let _ = parse_spec(&text);
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let (toml, json) = text.split_once("\n%%\n").unwrap_or((&text, "{}"));
            let Some(Ok(spec)) = parse_spec(toml) else {
                return;
            };
            if let Ok(Value::Object(record)) = serde_json::from_str::<Value>(json) {
                let mapped = leadflow_core::mapping::map_record(&record, Some(&spec));
                check_mapped(&record, &mapped);
            }
        }
    }
}

fn parse_spec(text: &str) -> Option<Result<leadflow_core::mapping::MappingSpec, Vec<leadflow_core::mapping::SpecError>>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let result = leadflow_core::mapping::parse_spec(doc.as_table());
    if let Err(errors) = &result {
        assert!(!errors.is_empty(), "Err with no error");
        for e in errors {
            if let Some(span) = &e.span {
                assert!(span.start <= span.end && span.end <= text.len(), "span {span:?} outside the text: {e:?}");
            }
        }
    }
    Some(result)
}

/// Target `csv_sniff` (feature `app`): `import::sniff_delimiter` on any text.
///
/// Properties: never panics; returns one of `,` `;` TAB `|`.
#[cfg(feature = "app")]
pub fn csv_sniff(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let d = leadflow_app::import::sniff_delimiter(&text);
    assert!([b',', b';', b'\t', b'|'].contains(&d), "unexpected delimiter {d:?}");
}

/// Target `channels`: the provider-webhook adapters over arbitrary requests (see
/// `leadflow_integrations::channels::fuzz_entry` for how the bytes become a query, headers and a body).
///
/// Property: never panics, for every adapter, with and without secrets.
pub fn channels(data: &[u8]) {
    leadflow_integrations::channels::fuzz_entry(data);
}

/// Target `conversation`: JSON bytes → `engagement::conversation::parse_post` (the body
/// of `POST /v1/conversations`); the bytes as lossy UTF-8 → `plain_text` (the HTML
/// stripping of chat bodies); a parsed post's messages, as stored events, →
/// `conversations`.
///
/// Properties: never panics; a refused post names at least one problem; the stripped
/// text holds no NUL and at most `MAX_TEXT_CHARS` characters; grouping a post's messages
/// yields one conversation holding each message id once, in time order.
pub fn conversation(data: &[u8]) {
    use leadflow_core::engagement::conversation::{self as c, MAX_TEXT_CHARS};
    let text = c::plain_text(&String::from_utf8_lossy(data));
    assert!(!text.contains('\0') && text.chars().count() <= MAX_TEXT_CHARS, "{text:?}");
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    match c::parse_post(&body, now) {
        Err(errors) => assert!(!errors.is_empty(), "a refused post names its problems"),
        Ok(posted) => {
            let events: Vec<leadflow_core::engagement::Event> = posted
                .messages
                .iter()
                .map(|(_, at, m)| leadflow_core::engagement::Event {
                    id: leadflow_core::ids::EventId::new(),
                    kind: c::KIND.to_owned(),
                    occurred_at: *at,
                    url: None,
                    properties: c::properties(m),
                    lead_id: None,
                    identity: posted.who.clone(),
                })
                .collect();
            let grouped = c::conversations(&events);
            assert_eq!(grouped.len(), usize::from(!events.is_empty()), "one post is one conversation");
            if let Some(conv) = grouped.first() {
                assert!(conv.messages.windows(2).all(|w| w[0].at <= w[1].at), "in time order");
                let ids: std::collections::HashSet<_> =
                    posted.messages.iter().filter_map(|(_, _, m)| m.message_id.clone()).collect();
                let anonymous = posted.messages.iter().filter(|(_, _, m)| m.message_id.is_none()).count();
                assert_eq!(conv.messages.len(), ids.len() + anonymous, "each message id once");
            }
        }
    }
}

/// Target `email`: the bytes as a raw message and as the body of each inbound-email
/// provider's post (`leadflow_integrations::channels::fuzz_email`), then the stored item
/// standardized with the default extraction rules.
pub fn email(data: &[u8]) {
    leadflow_integrations::channels::fuzz_email(data);
}

/// Target `signed_json`: first line the signature header, the rest the body, checked in
/// every algorithm, encoding, prefix and timestamp configuration
/// (`leadflow_integrations::channels::fuzz_signed_json`).
pub fn signed_json(data: &[u8]) {
    leadflow_integrations::channels::fuzz_signed_json(data);
}

/// Target `feedback`: the head/body split of `channels` → the HubSpot and Salesforce
/// feedback parsers (verifying, then reading the body unverified), and each notification
/// read through both CRMs' default mappings.
///
/// Properties: never panics; a Salesforce message holds at most 100 notifications, each
/// with its own id and the record's id; a mapped status comes with the value it was read
/// from and is never also "ignored".
pub fn feedback(data: &[u8]) {
    use leadflow_integrations::channels::feedback::{hubspot, salesforce};
    use leadflow_core::feedback::{CrmKind, CrmMapping};
    leadflow_integrations::channels::feedback::fuzz_entry(data);
    let body = data.iter().position(|b| *b == 0).map_or(data, |i| &data[i + 1..]);
    let mut notifications = Vec::new();
    if let Ok(events) = hubspot::read_events(body, None) {
        notifications.extend(events.notifications);
    }
    if let Ok(message) = salesforce::read_message(body) {
        assert!(message.notifications.len() <= 100, "more notifications than the WSDL allows");
        for n in &message.notifications {
            assert!(!n.event_id.is_empty() && !n.object_id.is_empty(), "a notification without ids: {n:?}");
        }
        notifications.extend(message.notifications);
    }
    for kind in [CrmKind::HubSpot, CrmKind::Salesforce] {
        let mapping = CrmMapping::defaults(kind, "FUZZ".into());
        for n in &notifications {
            let read = mapping.interpret(&n.fields);
            if read.status.is_some() {
                assert!(read.crm_status.is_some() && read.ignored.is_none(), "{read:?}");
            }
            let _ = mapping.reason_in(&n.context);
        }
    }
}
