//! Maps the lead JSON (leadflow's lead contract: standard fields at the top level,
//! `owner`, `attribution`, `custom`) to each provider's record shape. Only fields with
//! a value are sent, so an upsert never blanks what the CRM already holds.
//!
//! A CRM record is the built-in table ([`leadflow_core::deliver::crm`]), then the
//! destination's field map (`[destinations.fields]`, which may also redirect a built-in
//! field), then the owner through `[destinations.owners]`, then the picklist value maps
//! (`[destinations.values.FIELD]`). What could not be sent (a rep with no CRM user) is
//! returned as a note for the attempt's log, never as a failure.

use crate::delivery::preflight::lookup;
use leadflow_core::deliver::crm::{self, owner_field};
use leadflow_core::feedback::CrmKind;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A field as trimmed text: strings, and numbers rendered as written.
fn text(lead: &Value, path: &str) -> Option<String> {
    match lookup(lead, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(lead: &Value, path: &str) -> Option<f64> {
    match lookup(lead, path)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', "").parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

fn table(lead: &Value, fields: &[(&str, &str)]) -> Map<String, Value> {
    fields.iter().filter_map(|(from, to)| Some(((*to).to_owned(), Value::String(text(lead, from)?)))).collect()
}

/// HubSpot contact properties (CRM v3; every value is sent as a string).
pub fn hubspot_properties(lead: &Value, lead_status: Option<&str>) -> Map<String, Value> {
    let mut props = table(lead, crm::HUBSPOT_FIELDS);
    if let Some(status) = lead_status {
        props.insert("hs_lead_status".to_owned(), Value::String(status.to_owned()));
    }
    props
}

/// The lead's consent per purpose, written to the properties `fields` names (purpose →
/// property): each purpose's current status (`granted`, `denied`, `withdrawn`); a purpose
/// the person never spoke of is not sent.
pub fn consent_values(lead: &Value, fields: &BTreeMap<String, String>) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|(purpose, property)| {
            let status = lookup(lead, &format!("consent.purposes.{purpose}.status"))?.as_str()?;
            Some((property.clone(), Value::String(status.to_owned())))
        })
        .collect()
}

/// Salesforce Lead fields. `LastName` and `Company` are required by Salesforce; the
/// destination's pre-flight holds back leads without them, so no placeholder is sent.
pub fn salesforce_lead(lead: &Value, lead_source: Option<&str>) -> Map<String, Value> {
    let mut record = table(lead, crm::SALESFORCE_FIELDS);
    // NumberOfEmployees is an integer field; a count kept as unreadable text is left out
    // rather than sent to fail the whole record.
    if let Some(n) = number(lead, "employee_count").filter(|n| *n >= 0.0 && n.fract() == 0.0) {
        record.insert("NumberOfEmployees".to_owned(), json!(n as u64));
    }
    if let Some(n) = number(lead, "annual_revenue").filter(|n| *n >= 0.0) {
        record.insert("AnnualRevenue".to_owned(), json!(n));
    }
    let source = lead_source.map(str::to_owned).or_else(|| text(lead, "attribution.original.source"));
    if let Some(source) = source {
        record.insert("LeadSource".to_owned(), Value::String(source));
    }
    record
}

/// A destination's own maps, as configured.
#[derive(Clone, Copy, Debug)]
pub struct Maps<'a> {
    /// leadflow path → CRM field.
    pub fields: &'a BTreeMap<String, String>,
    /// CRM field → leadflow value → CRM value.
    pub values: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// rep → CRM user id.
    pub owners: &'a BTreeMap<String, String>,
}

/// A CRM record and what was left out of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    pub record: Map<String, Value>,
    /// For the attempt's log: what was not sent, and why.
    pub notes: Vec<String>,
}

/// `record` (the built-in fields) with the destination's maps applied.
pub fn apply_maps(kind: CrmKind, lead: &Value, mut record: Map<String, Value>, maps: Maps<'_>) -> Mapped {
    let mut notes = Vec::new();
    for (path, target) in maps.fields.iter().filter(|(path, _)| *path != "owner") {
        // A built-in field the map sends elsewhere is not sent twice.
        if let Some((_, built_in)) = crm::default_fields(kind).iter().find(|(from, _)| from == path)
            && built_in != target
        {
            record.remove(*built_in);
        }
        match lookup(lead, path).and_then(|v| typed(kind, v)) {
            Some(value) => {
                record.insert(target.clone(), value);
            }
            // Nothing to send: the CRM keeps what it holds.
            None => {
                record.remove(target);
            }
        }
    }
    if !maps.owners.is_empty() {
        let target = maps.fields.get("owner").map_or(owner_field(kind), String::as_str);
        if let Some(rep) = text(lead, "owner") {
            match owner_id(&rep, maps.owners) {
                Some(id) => {
                    record.insert(target.to_owned(), Value::String(id.to_owned()));
                }
                None => notes.push(format!("owner {rep:?} has no user in [destinations.owners]: {target} not sent")),
            }
        }
    }
    for (field, map) in maps.values {
        if let Some(value) = record.get_mut(field) {
            map_value(value, map);
        }
    }
    Mapped { record, notes }
}

/// The destination's user id for `rep`: its entry in `owners`, or the rep itself when it
/// already is one of those ids (an owner the CRM's own feedback set).
pub fn owner_id<'a>(rep: &'a str, owners: &'a BTreeMap<String, String>) -> Option<&'a str> {
    owners.get(rep).map(String::as_str).or_else(|| owners.values().any(|id| id == rep).then_some(rep))
}

/// A lead value as the CRM takes it: HubSpot takes every value as a string, Salesforce
/// numbers and booleans as they are; a list of plain values is a multi-select
/// (`a;b`, as both CRMs write one). Objects, nulls and blank strings are not sent.
fn typed(kind: CrmKind, value: &Value) -> Option<Value> {
    let scalar = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (kind, value) {
        (CrmKind::Salesforce, Value::Number(_) | Value::Bool(_)) => Some(value.clone()),
        (_, Value::Array(items)) => {
            let parts: Vec<String> = items.iter().filter_map(scalar).collect();
            (!parts.is_empty()).then(|| Value::String(parts.join(";")))
        }
        _ => scalar(value).map(Value::String),
    }
}

/// Replaces a value (each part of a multi-select) by its entry in `map`, compared exactly
/// first, then regardless of case; a value not listed passes through unchanged.
fn map_value(value: &mut Value, map: &BTreeMap<String, String>) {
    let one = |v: &str| -> String {
        map.get(v)
            .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(v)).map(|(_, to)| to))
            .cloned()
            .unwrap_or_else(|| v.to_owned())
    };
    if let Value::String(s) = value {
        *s = if s.contains(';') { s.split(';').map(one).collect::<Vec<_>>().join(";") } else { one(s) };
    }
}

/// Slack mrkdwn needs only `&`, `<` and `>` escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Whether `s` is a Slack user or workspace-user id (`U…`/`W…`).
fn is_slack_user(s: &str) -> bool {
    s.len() > 2
        && (s.starts_with('U') || s.starts_with('W'))
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The owner as Slack shows them: a mention of the member `owners` maps the rep to (or of
/// the rep, when it is a member id itself), else the rep's name as text.
fn owner_label(owner: Option<String>, owners: &BTreeMap<String, String>) -> String {
    match owner {
        Some(rep) => match owners.get(&rep).map(String::as_str).or(Some(rep.as_str()).filter(|r| is_slack_user(r))) {
            Some(id) if is_slack_user(id) => format!("<@{id}>"),
            _ => escape(&rep),
        },
        None => "nobody yet".to_owned(),
    }
}

/// The notification for the lead's owner, worded for its event: name, company and email
/// only, never the rest of the lead (phone, address, custom fields, consent). An erasure
/// names the lead's id and nothing else, whatever the payload holds: earlier messages may
/// have named the person, and this one asks for them to be removed.
pub fn slack_message(lead: &Value, event_type: &str, owners: &BTreeMap<String, String>) -> Value {
    if event_type == crate::delivery::erased::EVENT_TYPE {
        let id = text(lead, "id").map_or_else(|| "?".to_owned(), |id| escape(&id));
        let line = format!(
            "Lead {id} was erased at the person's request: please delete what earlier messages here said about them."
        );
        return json!({
            "text": line,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("*Lead erased* {line}")}}]
        });
    }
    let name = [text(lead, "first_name"), text(lead, "last_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let name = if name.is_empty() { "A lead".to_owned() } else { escape(&name) };
    let company = text(lead, "company").map(|c| format!(" from {}", escape(&c))).unwrap_or_default();
    let email = text(lead, "email").map(|e| format!(" ({})", escape(&e))).unwrap_or_default();
    let who = format!("{name}{company}{email}");
    let owner = owner_label(text(lead, "owner"), owners);
    let field = |path: &str| text(lead, path).map(|v| escape(&v));
    let (title, line) = match event_type {
        "lead.created" => ("New lead", format!("{who} — owner {owner}.")),
        "lead.returned" => match (field("returned.via").as_deref(), field("returned.source")) {
            (Some("engagement"), _) => {
                let scores = match (field("returned.previous_score"), field("returned.score")) {
                    (Some(from), Some(to)) => format!(" (score {from} → {to})"),
                    _ => String::new(),
                };
                ("Renewed interest", format!("{who} is active again{scores} — owner {owner}."))
            }
            (_, Some(source)) => ("Returning lead", format!("{who} submitted {source} again — owner {owner}.")),
            _ => ("Returning lead", format!("{who} came back — owner {owner}.")),
        },
        "lead.merged" => ("Lead updated", format!("{who}: new details were merged in — owner {owner}.")),
        "lead.mql" => {
            let score = field("score").map(|s| format!(" (score {s})")).unwrap_or_default();
            ("Lead qualified", format!("{who} reached MQL{score} — owner {owner}."))
        }
        "lead.assigned" => ("Lead assigned", format!("{who} is assigned to {owner}.")),
        "lead.stage_changed" => {
            let stage = field("lifecycle_stage").unwrap_or_else(|| "a new stage".to_owned());
            ("Stage changed", format!("{who} is now {stage} — owner {owner}."))
        }
        "lead.consent_changed" => {
            ("Consent changed", format!("{who} changed their consent: check it before reaching out — owner {owner}."))
        }
        other => ("Lead update", format!("{who} ({}) — owner {owner}.", escape(other))),
    };
    json!({
        "text": format!("{title}: {line}"),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("*{title}:* {line}")}}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_values_go_to_the_configured_properties_for_purposes_spoken_of() {
        let lead = json!({"consent": {"purposes": {"marketing_email": {"status": "withdrawn"}}}});
        let fields = std::collections::BTreeMap::from([
            ("marketing_email".to_owned(), "hs_marketing_consent".to_owned()),
            ("phone".to_owned(), "phone_consent".to_owned()),
        ]);
        let values = consent_values(&lead, &fields);
        assert_eq!(Value::Object(values), json!({"hs_marketing_consent": "withdrawn"}));
    }

    fn lead() -> Value {
        json!({
            "id": "0190f3a4-0000-7000-8000-000000000001",
            "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
            "phone": "+442071234567", "company": "Analytical Engines", "job_title": "CTO",
            "website": "https://example.com", "industry": "Computing",
            "employee_count": 120, "annual_revenue": "2500000",
            "country": "GB", "state": "London", "city": "London", "postal_code": "N1 9GU",
            "street": "1 Engine Way", "owner": "U024BE7LH",
            "custom": {"budget": 5000},
            "attribution": {"original": {"source": "webinar"}}
        })
    }

    #[test]
    fn hubspot_gets_its_contact_property_names() {
        let p = hubspot_properties(&lead(), Some("NEW"));
        assert_eq!(p["email"], "ada@example.com");
        assert_eq!(p["firstname"], "Ada");
        assert_eq!(p["lastname"], "Lovelace");
        assert_eq!(p["jobtitle"], "CTO");
        assert_eq!(p["zip"], "N1 9GU");
        assert_eq!(p["address"], "1 Engine Way");
        assert_eq!(p["hs_lead_status"], "NEW");
        assert!(!p.contains_key("budget"));
    }

    #[test]
    fn hubspot_leaves_out_empty_fields() {
        let p = hubspot_properties(&json!({"email": "a@example.com", "phone": " ", "city": null}), None);
        assert_eq!(p.keys().collect::<Vec<_>>(), ["email"]);
    }

    #[test]
    fn salesforce_gets_lead_fields_with_numbers_typed() {
        let r = salesforce_lead(&lead(), None);
        assert_eq!(r["LastName"], "Lovelace");
        assert_eq!(r["Company"], "Analytical Engines");
        assert_eq!(r["Title"], "CTO");
        assert_eq!(r["NumberOfEmployees"], 120);
        assert_eq!(r["AnnualRevenue"], 2_500_000.0);
        assert_eq!(r["PostalCode"], "N1 9GU");
        assert_eq!(r["LeadSource"], "webinar");
        assert_eq!(salesforce_lead(&lead(), Some("Web"))["LeadSource"], "Web");
    }

    #[test]
    fn salesforce_drops_numbers_it_cannot_read() {
        let r = salesforce_lead(&json!({"employee_count": "about fifty", "annual_revenue": "n/a"}), None);
        assert!(!r.contains_key("NumberOfEmployees"));
        assert!(!r.contains_key("AnnualRevenue"));
    }

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn slack_names_the_lead_and_mentions_the_owner_without_other_personal_data() {
        let msg = slack_message(&lead(), "lead.assigned", &none());
        let text = msg["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Lead assigned: Ada Lovelace from Analytical Engines (ada@example.com) is assigned to <@U024BE7LH>."
        );
        let all = msg.to_string();
        for private in ["+442071234567", "Engine Way", "N1 9GU", "5000"] {
            assert!(!all.contains(private), "{private} leaked into the Slack message");
        }
    }

    #[test]
    fn slack_escapes_control_characters_and_handles_missing_owner() {
        let msg = slack_message(&json!({"first_name": "<!channel>", "company": "A&B"}), "lead.created", &none());
        assert_eq!(msg["text"], "New lead: &lt;!channel&gt; from A&amp;B — owner nobody yet.");
    }

    #[test]
    fn slack_words_each_event_and_mentions_the_owner_through_the_owners_map() {
        let mut l = lead();
        l["owner"] = json!("ana@example.com");
        l["score"] = json!(42);
        l["lifecycle_stage"] = json!("sql");
        let owners = BTreeMap::from([("ana@example.com".to_owned(), "U0ANA1234".to_owned())]);
        let who = "Ada Lovelace from Analytical Engines (ada@example.com)";
        let text = |l: &Value, event: &str, owners: &BTreeMap<String, String>| {
            slack_message(l, event, owners)["text"].as_str().unwrap().to_owned()
        };
        assert_eq!(text(&l, "lead.created", &owners), format!("New lead: {who} — owner <@U0ANA1234>."));
        assert_eq!(
            text(&l, "lead.mql", &owners),
            format!("Lead qualified: {who} reached MQL (score 42) — owner <@U0ANA1234>.")
        );
        assert_eq!(
            text(&l, "lead.stage_changed", &owners),
            format!("Stage changed: {who} is now sql — owner <@U0ANA1234>.")
        );
        assert_eq!(
            text(&l, "lead.merged", &owners),
            format!("Lead updated: {who}: new details were merged in — owner <@U0ANA1234>.")
        );
        // Without a Slack id for the rep, the rep's name.
        assert_eq!(text(&l, "lead.created", &none()), format!("New lead: {who} — owner ana@example.com."));

        l["returned"] = json!({"via": "submission", "source": "pricing-form"});
        assert_eq!(
            text(&l, "lead.returned", &owners),
            format!("Returning lead: {who} submitted pricing-form again — owner <@U0ANA1234>.")
        );
        l["returned"] = json!({"via": "engagement", "previous_score": 30, "score": 45});
        assert_eq!(
            text(&l, "lead.returned", &owners),
            format!("Renewed interest: {who} is active again (score 30 → 45) — owner <@U0ANA1234>.")
        );
        let blocks = slack_message(&l, "lead.returned", &owners)["blocks"][0]["text"]["text"].clone();
        assert!(blocks.as_str().unwrap().starts_with("*Renewed interest:* "), "{blocks}");
    }

    fn maps<'a>(
        fields: &'a BTreeMap<String, String>,
        values: &'a BTreeMap<String, BTreeMap<String, String>>,
        owners: &'a BTreeMap<String, String>,
    ) -> Maps<'a> {
        Maps { fields, values, owners }
    }

    fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn field_maps_add_redirect_and_type_values_per_crm() {
        let mut l = lead();
        l["score"] = json!(42);
        l["custom"] = json!({"budget": 5000, "tools": ["Slack", "Jira"], "nested": {"a": 1}});
        let fields = strings(&[
            ("score", "leadflow_score__c"),
            ("custom.budget", "Budget__c"),
            ("custom.tools", "Tools__c"),
            ("custom.nested", "Nested__c"),
            ("industry", "Sector__c"),
        ]);
        let (values, owners) = (BTreeMap::new(), BTreeMap::new());
        let sf = apply_maps(CrmKind::Salesforce, &l, salesforce_lead(&l, None), maps(&fields, &values, &owners));
        assert_eq!(sf.record["leadflow_score__c"], 42);
        assert_eq!(sf.record["Budget__c"], 5000);
        assert_eq!(sf.record["Tools__c"], "Slack;Jira");
        assert_eq!(sf.record["Sector__c"], "Computing");
        assert!(!sf.record.contains_key("Industry"), "redirected, not sent twice");
        assert!(!sf.record.contains_key("Nested__c"), "an object has no CRM shape");
        let hs = apply_maps(CrmKind::HubSpot, &l, hubspot_properties(&l, None), maps(&fields, &values, &owners));
        assert_eq!(hs.record["leadflow_score__c"], "42", "HubSpot takes strings");
        assert!(hs.notes.is_empty());
    }

    #[test]
    fn owners_become_crm_ids_and_a_rep_without_one_is_a_note_not_a_failure() {
        let mut l = lead();
        l["owner"] = json!("ana@example.com");
        let (fields, values) = (BTreeMap::new(), BTreeMap::new());
        let owners = strings(&[("ana@example.com", "71234567")]);
        let m = apply_maps(CrmKind::HubSpot, &l, Map::new(), maps(&fields, &values, &owners));
        assert_eq!(m.record["hubspot_owner_id"], "71234567");
        // An owner the CRM itself set (its own id, through feedback) is sent as it is.
        l["owner"] = json!("71234567");
        let m = apply_maps(CrmKind::HubSpot, &l, Map::new(), maps(&fields, &values, &owners));
        assert_eq!(m.record["hubspot_owner_id"], "71234567");
        l["owner"] = json!("ben@example.com");
        let m = apply_maps(CrmKind::Salesforce, &l, Map::new(), maps(&fields, &values, &owners));
        assert!(!m.record.contains_key("OwnerId"));
        assert_eq!(m.notes, ["owner \"ben@example.com\" has no user in [destinations.owners]: OwnerId not sent"]);
        // No owners map: the owner is not part of the handoff, and nothing is noted.
        let m = apply_maps(CrmKind::Salesforce, &l, Map::new(), maps(&fields, &values, &BTreeMap::new()));
        assert!(m.record.is_empty() && m.notes.is_empty());
    }

    #[test]
    fn value_maps_translate_picklists_and_pass_the_rest_through() {
        let mut l = lead();
        l["lifecycle_stage"] = json!("mql");
        l["industry"] = json!("SaaS");
        let fields = strings(&[("lifecycle_stage", "Status")]);
        let values = BTreeMap::from([
            ("Status".to_owned(), strings(&[("mql", "Working - Contacted")])),
            ("Industry".to_owned(), strings(&[("saas", "Technology")])),
            ("LeadSource".to_owned(), strings(&[("partner", "Partner Referral")])),
        ]);
        let owners = BTreeMap::new();
        let m = apply_maps(CrmKind::Salesforce, &l, salesforce_lead(&l, None), maps(&fields, &values, &owners));
        assert_eq!(m.record["Status"], "Working - Contacted");
        assert_eq!(m.record["Industry"], "Technology", "matched regardless of case");
        assert_eq!(m.record["LeadSource"], "webinar", "not listed: unchanged");
    }

    #[test]
    fn slack_hears_of_an_erasure_by_the_lead_id_alone() {
        let m = slack_message(&lead(), "lead.erased", &none());
        let text = m.to_string();
        assert!(text.contains("0190f3a4-0000-7000-8000-000000000001"), "{text}");
        for personal in ["Ada", "Lovelace", "ada@example.com", "Analytical", "U024BE7LH"] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
    }
}
