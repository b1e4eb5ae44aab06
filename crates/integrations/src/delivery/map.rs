//! Maps the lead JSON (leadflow's lead contract: standard fields at the top level,
//! `owner`, `attribution`, `custom`) to each provider's record shape. Only fields with
//! a value are sent, so an upsert never blanks what the CRM already holds.

use crate::delivery::preflight::lookup;
use serde_json::{Map, Value, json};

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

/// HubSpot contact properties (CRM v3; every value is sent as a string).
pub fn hubspot_properties(lead: &Value, lead_status: Option<&str>) -> Map<String, Value> {
    const FIELDS: &[(&str, &str)] = &[
        ("email", "email"),
        ("first_name", "firstname"),
        ("last_name", "lastname"),
        ("phone", "phone"),
        ("company", "company"),
        ("job_title", "jobtitle"),
        ("website", "website"),
        ("industry", "industry"),
        ("city", "city"),
        ("state", "state"),
        ("country", "country"),
        ("postal_code", "zip"),
        ("street", "address"),
    ];
    let mut props: Map<String, Value> =
        FIELDS.iter().filter_map(|(from, to)| Some(((*to).to_owned(), Value::String(text(lead, from)?)))).collect();
    if let Some(status) = lead_status {
        props.insert("hs_lead_status".to_owned(), Value::String(status.to_owned()));
    }
    props
}

/// The lead's consent per purpose, written to the properties `fields` names (purpose →
/// property): each purpose's current status (`granted`, `denied`, `withdrawn`); a purpose
/// the person never spoke of is not sent.
pub fn consent_values(lead: &Value, fields: &std::collections::BTreeMap<String, String>) -> Map<String, Value> {
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
    const FIELDS: &[(&str, &str)] = &[
        ("first_name", "FirstName"),
        ("last_name", "LastName"),
        ("email", "Email"),
        ("phone", "Phone"),
        ("company", "Company"),
        ("job_title", "Title"),
        ("website", "Website"),
        ("industry", "Industry"),
        ("city", "City"),
        ("state", "State"),
        ("country", "Country"),
        ("postal_code", "PostalCode"),
        ("street", "Street"),
    ];
    let mut record: Map<String, Value> =
        FIELDS.iter().filter_map(|(from, to)| Some(((*to).to_owned(), Value::String(text(lead, from)?)))).collect();
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

/// Slack mrkdwn needs only `&`, `<` and `>` escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Slack user or workspace-user id (`U…`/`W…`) becomes a mention; anything else is
/// shown as text.
fn owner_label(owner: Option<String>) -> String {
    match owner {
        Some(o)
            if o.len() > 2
                && (o.starts_with('U') || o.starts_with('W'))
                && o.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            format!("<@{o}>")
        }
        Some(o) => escape(&o),
        None => "nobody yet".to_owned(),
    }
}

/// The notification for the lead's owner: name, company and email only, never the rest
/// of the lead (phone, address, custom fields, consent). An erasure names the lead's id
/// and nothing else, whatever the payload holds: earlier messages may have named the
/// person, and this one asks for them to be removed.
pub fn slack_message(lead: &Value, event_type: &str) -> Value {
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
    let company = text(lead, "company").map(|c| format!(" at {}", escape(&c))).unwrap_or_default();
    let email = text(lead, "email").map(|e| format!(" ({})", escape(&e))).unwrap_or_default();
    let owner = owner_label(text(lead, "owner"));
    let line = format!("{name}{company}{email} is assigned to {owner} ({}).", escape(event_type));
    json!({
        "text": line,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("*New lead* {line}")}}]
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

    #[test]
    fn slack_names_the_lead_and_mentions_the_owner_without_other_personal_data() {
        let msg = slack_message(&lead(), "lead.assigned");
        let text = msg["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Ada Lovelace at Analytical Engines (ada@example.com) is assigned to <@U024BE7LH> (lead.assigned)."
        );
        let all = msg.to_string();
        for private in ["+442071234567", "Engine Way", "N1 9GU", "5000"] {
            assert!(!all.contains(private), "{private} leaked into the Slack message");
        }
    }

    #[test]
    fn slack_escapes_control_characters_and_handles_missing_owner() {
        let msg = slack_message(&json!({"first_name": "<!channel>", "company": "A&B"}), "lead.created");
        assert_eq!(msg["text"], "&lt;!channel&gt; at A&amp;B is assigned to nobody yet (lead.created).");
    }

    #[test]
    fn slack_hears_of_an_erasure_by_the_lead_id_alone() {
        let m = slack_message(&lead(), "lead.erased");
        let text = m.to_string();
        assert!(text.contains("0190f3a4-0000-7000-8000-000000000001"), "{text}");
        for personal in ["Ada", "Lovelace", "ada@example.com", "Analytical", "U024BE7LH"] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
    }
}
