//! The lead: the standard fields of the contract, custom fields, consent, the values as
//! received, data-quality issues, attribution and the lead's place in the lifecycle.

use crate::attribute::Attribution;
use crate::email::Email;
use crate::ids::{AccountId, LeadId};
use crate::source::SourceName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A number as the contract promises it: normalized when it could be, otherwise the text
/// as received (never dropped), with an issue on the lead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Numeric {
    Number(serde_json::Number),
    Text(String),
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Numeric {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("as received, when it could not be read as a number")),
            )
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Numeric {}

impl Numeric {
    pub fn to_plain_string(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

/// Declares the standard fields once: the struct, the field list and the per-field helpers
/// all follow from it, so adding a field cannot leave one of them behind.
macro_rules! standard_fields {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty ),* $(,)?) => {
        /// The standard lead fields of the contract, each optional.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct LeadFields {
            $(
                $(#[$doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        /// The names of the standard fields, in contract order.
        pub const STANDARD_FIELDS: &[&str] = &[$(stringify!($name)),*];

        impl LeadFields {
            /// Copies every field that is empty here and set in `other`; returns the names
            /// of the fields it filled.
            pub fn fill_empty_from(&mut self, other: &LeadFields) -> Vec<&'static str> {
                let mut filled = Vec::new();
                $(
                    if self.$name.is_none() && other.$name.is_some() {
                        self.$name.clone_from(&other.$name);
                        filled.push(stringify!($name));
                    }
                )*
                filled
            }

            /// The field's value as plain text, for flat exports.
            /// Folds `other` in: empty fields are filled; a field both have is replaced
            /// when `replace` says so. Returns the fields filled and those replaced.
            pub fn survive_from(
                &mut self,
                other: &LeadFields,
                mut replace: impl FnMut(&'static str) -> bool,
            ) -> (Vec<&'static str>, Vec<&'static str>) {
                let (mut filled, mut replaced) = (Vec::new(), Vec::new());
                $(
                    match (&self.$name, &other.$name) {
                        (None, Some(_)) => {
                            self.$name.clone_from(&other.$name);
                            filled.push(stringify!($name));
                        }
                        (Some(mine), Some(theirs)) if mine != theirs && replace(stringify!($name)) => {
                            self.$name = Some(theirs.clone());
                            replaced.push(stringify!($name));
                        }
                        _ => {}
                    }
                )*
                (filled, replaced)
            }

            pub fn text(&self, field: &str) -> Option<String> {
                match field {
                    $(stringify!($name) => self.$name.as_ref().map(FieldText::field_text),)*
                    _ => None,
                }
            }
        }
    };
}

/// Plain-text rendering of a field value.
pub trait FieldText {
    fn field_text(&self) -> String;
}

impl FieldText for String {
    fn field_text(&self) -> String {
        self.clone()
    }
}

impl FieldText for Email {
    fn field_text(&self) -> String {
        self.as_str().to_owned()
    }
}

impl FieldText for Numeric {
    fn field_text(&self) -> String {
        self.to_plain_string()
    }
}

standard_fields! {
    first_name: String,
    last_name: String,
    email: Email,
    phone: String,
    company: String,
    job_title: String,
    website: String,
    /// A LinkedIn profile, `https://www.linkedin.com/in/<handle>`, or company page,
    /// `https://www.linkedin.com/company/<slug>`: lower case, letters outside ASCII
    /// percent-encoded. A value that is neither is kept as received, with the issue
    /// `invalid_linkedin_url`.
    linkedin_url: String,
    /// An X (Twitter) profile, `https://x.com/<handle>`, lower case. A value that is none
    /// is kept as received, with the issue `invalid_x_url`.
    x_url: String,
    industry: String,
    employee_count: Numeric,
    annual_revenue: Numeric,
    country: String,
    state: String,
    city: String,
    postal_code: String,
    street: String,
    street2: String,
    locality: String,
    utm_source: String,
    utm_medium: String,
    utm_campaign: String,
    utm_content: String,
    utm_term: String,
    referrer_url: String,
    landing_page_url: String,
    external_id: String,
}

/// Consent as given, with when, where and under which policy; per-channel opt-ins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Consent {
    pub granted: bool,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// Opt-in per channel, e.g. `{"email": true, "phone": false}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, bool>,
    /// The current state per purpose (`marketing_email`, `sales_contact`, ...), derived
    /// from the consent ledger ([`crate::consent`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purposes: BTreeMap<String, crate::consent::State>,
}

/// Values derived from a lead's fields; recomputed whenever the fields change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Derived {
    /// The part of the email after the `@`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_domain: Option<String>,
    /// The email domain is a free-mail provider's (gmail.com, outlook.com, ...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free_mail: bool,
    /// The email domain is a disposable-mail service's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disposable_email: bool,
    /// The registrable domain of the website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_domain: Option<String>,
    /// The company's domain: the business email's, else the website's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_domain: Option<String>,
    /// The company name with legal suffixes and punctuation removed, for matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_key: Option<String>,
    /// From the job title: `c_level`, `vp`, `director`, `manager` or `individual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub seniority: Option<crate::normalize::Seniority>,
    /// From the job title: `engineering`, `marketing`, `sales`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub department: Option<crate::normalize::Department>,
    /// The phone's extension, kept apart from the E.164 number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_extension: Option<String>,
}

/// A value that was kept as received because it could not be normalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Issue {
    pub field: String,
    /// A stable code such as `invalid_number`.
    pub code: String,
}

/// One person, deduplicated, as the rest of the pipeline and the API see them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lead {
    pub id: LeadId,
    #[serde(flatten)]
    pub fields: LeadFields,
    /// Everything that is not a standard field, as received.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// The standard fields' values as they were received, before normalization.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub raw: Map<String, Value>,
    pub issues: Vec<Issue>,
    /// Values derived from the fields, for matching, routing and scoring.
    #[serde(default)]
    pub derived: Derived,
    pub attribution: Attribution,
    /// The stage in the lifecycle contract: `new`, `engaged`, `mql`, … as configured.
    pub lifecycle_stage: String,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub stage_entered_at: Option<OffsetDateTime>,
    /// Not scored yet: `null`.
    pub score: Option<i64>,
    /// The score's breakdown (which rule gave how many points), its data-quality gate and
    /// whether a high score is held back by that gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub score_detail: Option<Box<crate::scoring::Score>>,
    /// Not routed yet: `null`.
    pub owner: Option<String>,
    /// Which source gave each field its value, where that is not the original source:
    /// survivorship by source priority compares against it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub provenance: BTreeMap<String, SourceName>,
    /// The company account the lead belongs to; `null` for a personal contact.
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// The webinars, meetings and events the lead registered for or attended (see
    /// [`crate::engagement::attendance`]); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendance: Vec<crate::engagement::attendance::Attendance>,
    /// Incremented on every change, for optimistic concurrency.
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
    /// Set when the person was erased: the lead is a tombstone that keeps only what is
    /// not personal (see [`crate::erase`]). The API answers 410 Gone for it.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub erased_at: Option<OffsetDateTime>,
}

impl Lead {
    /// A test lead (`custom.test` is `true`): kept out of reports.
    pub fn is_test(&self) -> bool {
        self.custom.get("test") == Some(&Value::Bool(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Touchpoint;
    use crate::ids::SubmissionId;
    use crate::source::SourceName;
    use proptest::prelude::*;

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("\\PC{0,30}")
    }

    prop_compose! {
        fn arb_lead()(
            first_name in opt_text(),
            company in opt_text(),
            phone in opt_text(),
            employees in proptest::option::of(prop_oneof![
                any::<u32>().prop_map(|n| Numeric::Number(n.into())),
                "\\PC{0,10}".prop_map(Numeric::Text),
            ]),
            custom_key in "[a-z_]{1,10}",
            custom_val in "\\PC{0,20}",
            granted in any::<bool>(),
            secs in 0i64..4_000_000_000,
        ) -> Lead {
            let at = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let mut custom = Map::new();
            custom.insert(custom_key, Value::String(custom_val));
            let touch = Touchpoint::bare(SourceName::api(), SubmissionId::new(), at);
            Lead {
                id: LeadId::new(),
                fields: LeadFields {
                    first_name, company, phone, employee_count: employees,
                    email: Some(Email::parse("a@example.com").unwrap()),
                    ..LeadFields::default()
                },
                custom,
                consent: Some(Consent { granted, at: Some(at), ..Consent::default() }),
                raw: Map::new(),
                issues: vec![],
                derived: Derived { email_domain: Some("example.com".into()), ..Derived::default() },
                attribution: Attribution::first(touch),
                lifecycle_stage: "new".into(),
                stage_entered_at: None,
                score: None,
                score_detail: None,
                owner: None,
                provenance: BTreeMap::new(),
                account_id: None,
                attendance: Vec::new(),
                version: 1,
                created_at: at,
                updated_at: at,
                erased_at: None,
            }
        }
    }

    proptest! {
        #[test]
        fn a_lead_survives_a_json_round_trip(lead in arb_lead()) {
            let json = serde_json::to_string(&lead).unwrap();
            let back: Lead = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, lead);
        }
    }

    #[test]
    fn the_schema_and_the_shared_field_list_agree() {
        assert_eq!(STANDARD_FIELDS, crate::mapping::STANDARD_FIELDS);
    }

    #[test]
    fn fill_empty_keeps_existing_values() {
        let mut a = LeadFields { first_name: Some("Ada".into()), ..Default::default() };
        let b = LeadFields { first_name: Some("Bob".into()), company: Some("Acme".into()), ..Default::default() };
        assert_eq!(a.fill_empty_from(&b), vec!["company"]);
        assert_eq!(a.first_name.as_deref(), Some("Ada"));
        assert_eq!(a.company.as_deref(), Some("Acme"));
    }
}
