//! The standard shape every adapter maps onto, and the shared field-name mapping.
//!
//! A provider value lands in exactly one place: a standard field, the touchpoint
//! (attribution ids), or `custom` under the provider's own key. Nothing is dropped: when a
//! standard field is already filled (say `mobile` after `phone`), the later value is kept in
//! `custom`.
//!
//! Labels are matched by this module's provider names, then by the core's synonym table
//! ([`classify_header`]), so decorated and numbered labels (`Your Email *`, `Email 2`)
//! find their field. A custom key is never longer than
//! [`leadflow_core::mapping::MAX_CUSTOM_KEY_LEN`]: a longer one is shortened by
//! [`fit_custom_key`], and the label it came from is kept under `custom.field_labels`
//! (custom key → label), as are the question titles of custom fields an adapter keys by
//! the provider's stable id.

use leadflow_core::Email;
use leadflow_core::mapping::{HeaderMatch, classify_header, fit_custom_key, label_number};
use leadflow_core::source::qualification::{AnswerTarget, Qualification};
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
    /// Custom key → the provider's label for it, where they differ (a question keyed by
    /// its stable ref, a label too long to be a key). Kept as `custom.field_labels`.
    pub labels: Map<String, Value>,
}

/// Where [`Standard::into_payload`] keeps the labels of custom fields.
pub const FIELD_LABELS_KEY: &str = "field_labels";

impl Standard {
    /// One JSON object in the shape leadflow's JSON API accepts: the standard fields at top
    /// level plus `custom`, `consent` and `touchpoint` (which carries `is_test` when set).
    pub fn into_payload(self) -> Map<String, Value> {
        let mut out = self.fields;
        let mut touchpoint = self.touchpoint;
        if self.is_test {
            touchpoint.insert("is_test".into(), Value::Bool(true));
        }
        let mut custom = self.custom;
        if !self.labels.is_empty() {
            // A form field literally named `field_labels` keeps its place.
            let key = if custom.contains_key(FIELD_LABELS_KEY) { "field_labels#labels" } else { FIELD_LABELS_KEY };
            custom.insert(key.to_owned(), Value::Object(self.labels));
        }
        out.insert("custom".into(), Value::Object(custom));
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

    /// Keeps `value` in custom under `key`, shortened when over the length limit (the
    /// full key is then kept as its label).
    pub(crate) fn custom(&mut self, key: &str, value: Value) {
        if value.is_null() {
            return;
        }
        let fitted = fit_custom_key(key);
        if fitted.len() != key.len() {
            self.labels.insert(fitted.clone().into_owned(), Value::String(key.to_owned()));
        }
        self.custom.insert(fitted.into_owned(), value);
    }

    /// Keeps `value` in custom under the provider's stable id `key`, with `label` (the
    /// question title) kept beside it.
    pub(crate) fn custom_labelled(&mut self, key: &str, label: Option<&str>, value: Value) {
        if value.is_null() {
            return;
        }
        let fitted = fit_custom_key(key).into_owned();
        if let Some(label) = label.filter(|l| *l != fitted) {
            self.labels.insert(fitted.clone(), Value::String(label.to_owned()));
        }
        self.custom.insert(fitted, value);
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
        if !self.assign_known(key, value) {
            self.custom(key, value.clone());
        }
    }

    /// [`Standard::assign`] for a field the provider identifies by a stable id: matched by
    /// its label, kept in custom under the id with the label beside it.
    pub(crate) fn assign_labelled(&mut self, label: &str, id: &str, value: &Value) {
        if !self.assign_known(label, value) {
            self.custom_labelled(id, Some(label), value.clone());
        }
    }

    /// A chat bot's answer to `question`: where the source's qualification table says
    /// (a standard field, else custom under the question when the field is taken; or
    /// `custom.NAME` with the question as its label), otherwise as [`Standard::assign`]
    /// routes a label (synonyms such as "Company size"; custom under the question).
    pub(crate) fn answer(&mut self, question: &str, value: &Value, table: &Qualification) {
        match table.target(question) {
            Some(AnswerTarget::Field(field)) => {
                if !self.set(field, value) {
                    self.custom(question, value.clone());
                }
            }
            Some(AnswerTarget::Custom(name)) => self.custom_labelled(name, Some(question), value.clone()),
            None => self.assign(question, value),
        }
    }

    /// [`Standard::answer`] for every answer of an object, the table's questions first so
    /// that a synonym never takes the field a configured question names.
    pub(crate) fn answer_all(&mut self, answers: &Map<String, Value>, table: &Qualification) {
        let (named, rest): (Vec<_>, Vec<_>) = answers.iter().partition(|(q, _)| table.target(q).is_some());
        for (q, v) in named {
            self.answer(q, v, table);
        }
        self.assign_all(rest);
    }

    /// Puts the value where its key says (standard field, name, touchpoint); false when
    /// the key names nothing known or the field is already filled.
    fn assign_known(&mut self, key: &str, value: &Value) -> bool {
        let norm = normalize_key(key);
        let touch_first = norm.strip_prefix("first_").is_some_and(is_touch_key);
        if norm.starts_with("first_") && (norm.contains("utm_") || touch_first || norm.ends_with("_url")) {
            self.touch(&norm, value);
            return true;
        }
        if is_touch_key(&norm) {
            self.touch(&norm, value);
            return true;
        }
        if matches!(norm.as_str(), "name" | "full_name" | "fullname" | "your_name" | "contact_name") {
            self.set_full_name(key, value);
            return true;
        }
        // Provider names first (they include a few the general table leaves out on
        // purpose, such as `county`), then the core's table with its label wrappers and
        // numbered labels.
        let field = match synonym(&norm) {
            Some(field) => field,
            None => match classify_header(key) {
                Some(HeaderMatch::Field { field, .. }) => field,
                Some(HeaderMatch::FullName) if !self.fields.contains_key("first_name") => {
                    self.set_full_name(key, value);
                    return true;
                }
                _ => return false,
            },
        };
        self.set(field, value)
    }

    /// Assigns every pair of an object: exact standard names first, so a synonym never
    /// takes a field its exact name also sends (`mobile` vs `phone`), whatever the key
    /// order; then unnumbered labels before numbered ones, lower numbers first, so of
    /// `Email`, `Email 2` and `Email 10` the first fills `email` and the others stay custom.
    pub(crate) fn assign_all<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a String, &'a Value)>) {
        let mut ordered: Vec<((bool, u32, usize), &String, &Value)> = pairs
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let exact = STANDARD_FIELDS.contains(&normalize_key(k).as_str());
                ((!exact, label_number(k).unwrap_or(0), i), k, v)
            })
            .collect();
        ordered.sort_by_key(|(rank, _, _)| *rank);
        for (_, k, v) in ordered {
            self.assign(k, v);
        }
    }

    /// A form whose email field has an unhelpful label (`Field 3`) still yields the email:
    /// when no field filled `email` and exactly one custom value (a string, at the top
    /// level) is a valid email address, it moves to `email`. With two or more candidates
    /// nothing is guessed.
    pub(crate) fn email_from_lone_value(&mut self) {
        if self.fields.contains_key("email") {
            return;
        }
        let mut found = self
            .custom
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|t| t.contains('@') && Email::parse(t).is_ok()))
            .map(|(k, _)| k.clone());
        let (Some(key), None) = (found.next(), found.next()) else { return };
        if let Some(value) = self.custom.remove(&key) {
            self.set("email", &value);
            self.labels.remove(&key);
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
    fn crm_and_form_names_of_social_profiles_find_their_fields() {
        for (key, field) in [
            ("hs_linkedin_url", "linkedin_url"),
            ("twitterhandle", "x_url"),
            ("LinkedIn Profile", "linkedin_url"),
            ("linkedin_profile_url", "linkedin_url"),
            ("X (Twitter)", "x_url"),
        ] {
            let mut s = Standard::default();
            s.assign(key, &json!("value"));
            assert_eq!(s.fields.get(field), Some(&json!("value")), "{key}");
        }
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

    #[test]
    fn decorated_and_numbered_labels_find_their_field_and_the_first_wins() {
        let data = json!({"Email 2": "two@example.com", "Your Email *": "one@example.com",
            "E-mail address:": "three@example.com", "Phone (2)": "+1 555", "Name 3": "Ada Lovelace"});
        let mut s = Standard::default();
        s.assign_all(data.as_object().unwrap());
        // Unnumbered before numbered; among those, the earlier key.
        assert_eq!(s.fields["email"], "three@example.com");
        assert_eq!(s.custom["Your Email *"], "one@example.com");
        assert_eq!(s.custom["Email 2"], "two@example.com");
        assert_eq!(s.fields["phone"], "+1 555");
        assert_eq!((&s.fields["first_name"], &s.fields["last_name"]), (&json!("Ada"), &json!("Lovelace")));
        let mut s = Standard::default();
        s.assign_all(json!({"Email 10": "ten@example.com", "Email 2": "two@example.com"}).as_object().unwrap());
        assert_eq!(s.fields["email"], "two@example.com");
    }

    #[test]
    fn a_lone_email_shaped_value_is_the_email_and_two_are_not_guessed() {
        let mut s = Standard::default();
        s.assign_all(
            json!({"Field 3": " ada@example.com ", "Field 4": "hello", "Field 5": "a@b"}).as_object().unwrap(),
        );
        s.email_from_lone_value();
        assert_eq!(s.fields["email"], "ada@example.com");
        assert!(!s.custom.contains_key("Field 3"));
        let mut s = Standard::default();
        s.assign_all(json!({"Field 3": "ada@example.com", "Field 4": "bob@example.com"}).as_object().unwrap());
        s.email_from_lone_value();
        assert!(!s.fields.contains_key("email"));
        assert_eq!(s.custom.len(), 2);
    }

    #[test]
    fn long_labels_are_shortened_and_kept_as_labels() {
        let title = "I consent to the processing of my personal data ".repeat(4);
        let mut s = Standard::default();
        s.assign(&title, &json!(true));
        s.assign_labelled("What is your budget?", "budget_ref", &json!("10k"));
        let (key, value) = s.custom.iter().find(|(_, v)| **v == json!(true)).unwrap();
        assert!(key.chars().count() <= leadflow_core::mapping::MAX_CUSTOM_KEY_LEN);
        assert_eq!(value, &json!(true));
        assert_eq!(s.labels[key.as_str()], title.as_str());
        assert_eq!(s.custom["budget_ref"], "10k");
        let payload = s.into_payload();
        assert_eq!(payload["custom"]["field_labels"]["budget_ref"], "What is your budget?");
    }
}
