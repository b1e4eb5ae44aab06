//! What a CRM destination is sent: the built-in field tables for HubSpot and Salesforce,
//! the leadflow paths a `[destinations.fields]` map may name, and the field each CRM
//! keeps the record's owner in. Shared by the configuration check (which names a wrong
//! key) and the delivery crate's mapping (which builds the record), so the two never
//! disagree about what is sent.
//!
//! The built-in tables hold only fields every HubSpot portal and Salesforce org has.
//! Score, stage and attribution have no standard home in either CRM, so they are sent
//! only where a field map names the custom property that receives them: HubSpot answers
//! 400 `PROPERTY_DOESNT_EXIST` for a property the portal lacks, which would turn every
//! lead into a dead letter for a user who had not created it yet.

use crate::feedback::CrmKind;

/// HubSpot contact properties (internal names) for the standard lead fields.
pub const HUBSPOT_FIELDS: &[(&str, &str)] = &[
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

/// Salesforce Lead fields (API names) for the standard lead fields sent as text.
pub const SALESFORCE_FIELDS: &[(&str, &str)] = &[
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

/// Fields a CRM destination sends besides its table, from settings or typed values:
/// HubSpot's `hs_lead_status` (`lead_status`), Salesforce's numbers and `LeadSource`.
const HUBSPOT_EXTRA: &[&str] = &["hs_lead_status"];
const SALESFORCE_EXTRA: &[&str] = &["NumberOfEmployees", "AnnualRevenue", "LeadSource"];

/// The built-in (leadflow path, CRM field) table of a CRM.
pub fn default_fields(kind: CrmKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        CrmKind::HubSpot => HUBSPOT_FIELDS,
        CrmKind::Salesforce => SALESFORCE_FIELDS,
    }
}

/// The standard field holding a record's owner: HubSpot's `hubspot_owner_id` (an owner
/// id from `/crm/v3/owners`), Salesforce's `OwnerId` (a User or Queue id).
pub fn owner_field(kind: CrmKind) -> &'static str {
    match kind {
        CrmKind::HubSpot => "hubspot_owner_id",
        CrmKind::Salesforce => "OwnerId",
    }
}

/// Whether the destination sends something to `field` without a field map naming it.
pub fn sends_by_default(kind: CrmKind, field: &str) -> bool {
    let extra = match kind {
        CrmKind::HubSpot => HUBSPOT_EXTRA,
        CrmKind::Salesforce => SALESFORCE_EXTRA,
    };
    default_fields(kind).iter().any(|(_, f)| *f == field) || extra.contains(&field)
}

/// The lead's own keys a field map may name, besides the standard fields.
const LEAD_KEYS: &[&str] =
    &["id", "owner", "score", "lifecycle_stage", "stage_entered_at", "created_at", "updated_at", "account_id"];

/// A touchpoint's keys (`attribution.original.*`, `attribution.latest.*`).
const TOUCH_KEYS: &[&str] = &[
    "source",
    "channel",
    "at",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer_url",
    "landing_page_url",
];

/// Why `path` cannot be mapped, or `None` when it names something a lead carries: a
/// standard field, `owner`, `score`, `lifecycle_stage`, …, `custom.NAME`,
/// `attribution.touch_count`, `attribution.{original,latest}.{source,utm_campaign,…}` and
/// their `ad_ids.NAME` / `click_ids.NAME`.
pub fn unmappable(path: &str) -> Option<String> {
    if path.split('.').any(|segment| segment.trim().is_empty()) {
        return Some("must be a leadflow field path such as score or custom.budget".to_owned());
    }
    if crate::lead::STANDARD_FIELDS.contains(&path) || LEAD_KEYS.contains(&path) {
        return None;
    }
    let mut parts = path.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("custom"), Some(_), _) => None,
        (Some("attribution"), Some("touch_count"), None) => None,
        (Some("attribution"), Some("original" | "latest"), Some(rest)) => {
            let known = TOUCH_KEYS.contains(&rest)
                || rest.strip_prefix("ad_ids.").or_else(|| rest.strip_prefix("click_ids.")).is_some();
            (!known).then(|| format!("unknown attribution field: use one of {}", TOUCH_KEYS.join(", ")))
        }
        (Some("consent"), _, _) => Some("consent is written through consent_fields".to_owned()),
        _ => Some(format!(
            "unknown leadflow field: use a standard field, {}, custom.NAME or attribution.original.* / \
             attribution.latest.*",
            LEAD_KEYS.join(", ")
        )),
    }
}

/// Why `name` cannot be a CRM field or property name, if it cannot: HubSpot internal
/// names and Salesforce API names are letters, digits and underscores.
pub fn bad_crm_name(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        return Some("must be the name of a CRM field, not empty");
    }
    let valid = name.len() <= 100 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (!valid).then_some("must be a CRM field's API name: up to 100 letters, digits or _")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_a_lead_carries_can_be_mapped_and_others_are_named_wrong() {
        for ok in [
            "score",
            "lifecycle_stage",
            "owner",
            "industry",
            "custom.budget",
            "custom.a.b",
            "attribution.original.source",
            "attribution.latest.utm_campaign",
            "attribution.latest.click_ids.gclid",
            "attribution.touch_count",
        ] {
            assert_eq!(unmappable(ok), None, "{ok}");
        }
        for wrong in ["scor", "custom.", "attribution.first.source", "attribution.latest.utm", "consent.x", ""] {
            assert!(unmappable(wrong).is_some(), "{wrong}");
        }
    }

    #[test]
    fn crm_names_are_api_names() {
        assert_eq!(bad_crm_name("budget__c"), None);
        assert_eq!(bad_crm_name("hubspot_owner_id"), None);
        assert!(bad_crm_name(" ").is_some());
        assert!(bad_crm_name("lead score").is_some());
    }

    #[test]
    fn built_in_fields_are_known_per_crm() {
        assert!(sends_by_default(CrmKind::Salesforce, "LeadSource"));
        assert!(sends_by_default(CrmKind::Salesforce, "Industry"));
        assert!(!sends_by_default(CrmKind::Salesforce, "Status"));
        assert!(sends_by_default(CrmKind::HubSpot, "hs_lead_status"));
        assert!(!sends_by_default(CrmKind::HubSpot, "lifecyclestage"));
    }
}
