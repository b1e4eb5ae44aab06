//! The standard shape every adapter maps onto, and the shared field-name mapping.
//!
//! A provider value lands in exactly one place: a standard field, the touchpoint
//! (attribution ids), or `custom` under the provider's own key. Nothing is dropped: when a
//! standard field is already filled (say `mobile` after `phone`), the later value is kept in
//! `custom`.

use serde_json::{Map, Value};

/// The standard lead fields of the contract, in contract order.
pub use leadflow_core::mapping::STANDARD_FIELDS;

/// Click ids and other attribution keys that go to the touchpoint when a form carries them.
const TOUCHPOINT_KEYS: &[&str] = &["gclid", "fbclid", "li_fat_id", "msclkid", "wbraid", "gbraid", "dclid", "ttclid"];

/// One lead in leadflow's shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Standard {
    /// Only standard field names, string values.
    pub fields: Map<String, Value>,
    /// Everything else the provider sent.
    pub custom: Map<String, Value>,
    pub consent: Option<Value>,
    /// Attribution ids: page_id, form_id, ad_id, adset_id, campaign_id, creative_id, gclid,
    /// provider lead id, ...
    pub touchpoint: Map<String, Value>,
    pub is_test: bool,
}

impl Standard {
    /// One JSON object in the shape leadflow's JSON API accepts: the standard fields at top
    /// level plus `custom`, `consent` and `touchpoint` (which carries `is_test` when set).
    pub fn into_payload(self) -> Map<String, Value> {
        let mut out = self.fields;
        let mut touchpoint = self.touchpoint;
        if self.is_test {
            touchpoint.insert("is_test".into(), Value::Bool(true));
        }
        out.insert("custom".into(), Value::Object(self.custom));
        if let Some(c) = self.consent {
            out.insert("consent".into(), c);
        }
        out.insert("touchpoint".into(), Value::Object(touchpoint));
        out
    }

    /// Sets a standard field unless it is already set; returns whether it was taken.
    pub(crate) fn set(&mut self, field: &str, value: &Value) -> bool {
        debug_assert!(STANDARD_FIELDS.contains(&field));
        if self.fields.contains_key(field) {
            return false;
        }
        match text(value) {
            Some(t) => {
                self.fields.insert(field.to_owned(), Value::String(t));
                true
            }
            None => false,
        }
    }

    pub(crate) fn custom(&mut self, key: &str, value: Value) {
        if !value.is_null() {
            self.custom.insert(key.to_owned(), value);
        }
    }

    pub(crate) fn touch(&mut self, key: &str, value: &Value) {
        if let Some(t) = text(value) {
            self.touchpoint.insert(key.to_owned(), Value::String(t));
        }
    }

    /// Splits a full name into first and last (first word, then the rest) and sets both.
    pub(crate) fn set_full_name(&mut self, key: &str, value: &Value) {
        let Some(full) = text(value) else { return };
        let (first, last) = split_name(&full);
        let took_first = self.set("first_name", &Value::String(first.to_owned()));
        let took_last = !last.is_empty() && self.set("last_name", &Value::String(last.to_owned()));
        if !took_first && !took_last {
            self.custom(key, value.clone());
        }
    }

    /// Routes one provider key/value: synonyms of a standard field, a full name, a click id
    /// or first-touch value (touchpoint), otherwise `custom` under the original key.
    pub(crate) fn assign(&mut self, key: &str, value: &Value) {
        let norm = normalize_key(key);
        if norm.starts_with("first_") && (norm.contains("utm_") || is_touch_key(&norm[6..]) || norm.ends_with("_url")) {
            self.touch(&norm, value);
            return;
        }
        if is_touch_key(&norm) {
            self.touch(&norm, value);
            return;
        }
        if matches!(norm.as_str(), "name" | "full_name" | "fullname" | "your_name" | "contact_name") {
            self.set_full_name(key, value);
            return;
        }
        match synonym(&norm) {
            Some(field) if self.set(field, value) => {}
            _ => self.custom(key, value.clone()),
        }
    }

    /// Assigns every pair of an object, exact standard names first, so a synonym never
    /// takes a field its exact name also sends (`mobile` vs `phone`), whatever the key order.
    pub(crate) fn assign_all<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a String, &'a Value)> + Clone) {
        let exact = |k: &String| STANDARD_FIELDS.contains(&normalize_key(k).as_str());
        for (k, v) in pairs.clone().into_iter().filter(|(k, _)| exact(k)) {
            self.assign(k, v);
        }
        for (k, v) in pairs.into_iter().filter(|(k, _)| !exact(k)) {
            self.assign(k, v);
        }
    }
}

fn is_touch_key(norm: &str) -> bool {
    TOUCHPOINT_KEYS.contains(&norm)
}

/// `"First Name"` → `first_name`; `"E-mail"` → `e_mail`.
pub(crate) fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The standard field a normalized provider key means, if any.
pub(crate) fn synonym(norm: &str) -> Option<&'static str> {
    if let Some(f) = STANDARD_FIELDS.iter().find(|f| **f == norm) {
        return Some(f);
    }
    Some(match norm {
        "firstname" | "fname" | "given_name" | "first" | "your_first_name" => "first_name",
        "lastname" | "lname" | "surname" | "family_name" | "last" | "your_last_name" => "last_name",
        "email_address" | "e_mail" | "emailaddress" | "work_email" | "your_email" | "business_email" => "email",
        "phone_number" | "phonenumber" | "mobile" | "mobile_phone" | "mobilephone" | "telephone" | "tel"
        | "work_phone" | "work_phone_number" | "cell" | "cell_phone" => "phone",
        "company_name" | "companyname" | "organization" | "organisation" | "org" | "business_name" | "account" => {
            "company"
        }
        "title" | "jobtitle" | "position" | "role" | "your_job_title" => "job_title",
        "url" | "web_site" | "company_website" | "site" | "website_url" => "website",
        "employees"
        | "no_of_employees"
        | "number_of_employees"
        | "numberofemployees"
        | "numemployees"
        | "company_size"
        | "employee_range" => "employee_count",
        "revenue" | "annualrevenue" => "annual_revenue",
        "country_code" | "countrycode" | "country_region" => "country",
        "region" | "province" | "state_province" | "state_region" | "county" => "state",
        "town" | "locality" => "city",
        "zip" | "zip_code" | "zipcode" | "postcode" | "post_code" | "postal" | "postalcode" => "postal_code",
        "address" | "street_address" | "address_line_1" | "address1" | "streetaddress" => "street",
        "referrer" | "referer" | "referer_url" | "http_referer" => "referrer_url",
        "landing_page" | "landing_url" | "landingpage" => "landing_page_url",
        _ => return None,
    })
}

/// The plain text of a scalar (arrays of scalars are joined with ", "); `None` when empty.
pub(crate) fn text(value: &Value) -> Option<String> {
    let t = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => a.iter().filter_map(text).collect::<Vec<_>>().join(", "),
        Value::Null | Value::Object(_) => return None,
    };
    (!t.is_empty()).then_some(t)
}

/// `"Ada King Lovelace"` → `("Ada", "King Lovelace")`.
pub(crate) fn split_name(full: &str) -> (&str, &str) {
    let full = full.trim();
    match full.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, rest.trim()),
        None => (full, ""),
    }
}

/// A JSON scalar id as text (`123` and `"123"` alike).
pub(crate) fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_split_on_first_whitespace() {
        assert_eq!(split_name("John Doe"), ("John", "Doe"));
        assert_eq!(split_name(" Ada  King Lovelace "), ("Ada", "King Lovelace"));
        assert_eq!(split_name("Cher"), ("Cher", ""));
    }

    #[test]
    fn second_value_for_a_filled_field_stays_in_custom() {
        let mut s = Standard::default();
        s.assign("phone", &json!("+1 555"));
        s.assign("mobile", &json!("+1 666"));
        s.assign("First Name", &json!("Zaphod"));
        s.assign("gclid", &json!("abc"));
        s.assign("first_utm_source", &json!("news"));
        assert_eq!(s.fields["phone"], "+1 555");
        assert_eq!(s.custom["mobile"], "+1 666");
        assert_eq!(s.fields["first_name"], "Zaphod");
        assert_eq!(s.touchpoint["gclid"], "abc");
        assert_eq!(s.touchpoint["first_utm_source"], "news");
    }
}
