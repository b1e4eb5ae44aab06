//! The built-in synonym table and header matching.
//!
//! Keys are compared *folded*: lowercased, with every character that is not a letter or a
//! digit removed. That makes `companyName`, `company_name`, `Company Name`, `COMPANY-NAME`
//! and `company.name` the same key (camelCase needs no splitting once separators are gone).
//! A key that does not match is tried once more with common form-label wrappers removed:
//! a leading `your` / `what is your` / `please enter your` … and a trailing `required` /
//! `optional`, so `What is your email address?` and `Work email (required)` match too; and
//! Jotform's generated names (`q4_email`, `q3_fullName3`) are read without their `qN_`
//! prefix and trailing question number.
//!
//! Numbered labels, which form builders give a repeated field (Webflow's `Email 2`,
//! `Name 3`; `email-2`, `Phone (2)`), are read without their number, so they match the
//! same field as the first one; [`label_number`] gives the number so that a mapper can let
//! the first of several such fields win. Address lines are the exception: `Address 3` is
//! a third line, not the street, and stays unmatched.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// leadflow's standard lead fields, in contract order.
pub const STANDARD_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "job_title",
    "website",
    "linkedin_url",
    "x_url",
    "industry",
    "employee_count",
    "annual_revenue",
    "country",
    "state",
    "city",
    "postal_code",
    "street",
    "street2",
    "locality",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer_url",
    "landing_page_url",
    "external_id",
];

/// What a header or key means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderMatch {
    /// A standard field. `exact` is true when the key *is* the field's name up to case
    /// and separators (`Email`, `FirstName`, `POSTAL-CODE`), false for a synonym.
    Field { field: &'static str, exact: bool },
    /// A full name (`full_name`, `name`, `contact name`, …), split into `first_name` and
    /// `last_name` when those are missing.
    FullName,
}

/// Synonyms per standard field, written as people write them; they are folded when the
/// table is built. The field's own name is always included.
const FIELD_SYNONYMS: &[(&str, &[&str])] = &[
    (
        "first_name",
        &[
            "firstname",
            "first name",
            "given name",
            "givenname",
            "fname",
            "first",
            "forename",
            "contact first name",
            "vorname",
            "prénom",
            "prenom",
        ],
    ),
    (
        "last_name",
        &[
            "lastname",
            "last name",
            "surname",
            "family name",
            "familyname",
            "lname",
            "last",
            "contact last name",
            "nachname",
            "apellido",
            "apellidos",
        ],
    ),
    (
        "email",
        &[
            "e-mail",
            "email address",
            "emailaddress",
            "e-mail address",
            "work email",
            "work e-mail",
            "work email address",
            "business email",
            "business email address",
            "company email",
            "corporate email",
            "contact email",
            "email addr",
            "email id",
            "mail",
            "mail address",
            "primary email",
            "e-mail-adresse",
            "emailadresse",
            "courriel",
            "adresse email",
            "adresse e-mail",
            "correo",
            "correo electrónico",
            "correo electronico",
        ],
    ),
    (
        "phone",
        &[
            "phone number",
            "phonenumber",
            "phone no",
            "phone no.",
            "mobile",
            "mobile phone",
            "mobilephone",
            "mobile number",
            "mobile no",
            "tel",
            "tel.",
            "telephone",
            "telephone number",
            "cell",
            "cellphone",
            "cell phone",
            "cell phone number",
            "work phone",
            "work phone number",
            "business phone",
            "office phone",
            "direct phone",
            "main phone",
            "mainphone",
            "contact number",
            "contact phone",
            "primary phone",
            "telefon",
            "telefonnummer",
            "handy",
            "téléphone",
            "telephone",
            "teléfono",
            "telefono",
        ],
    ),
    (
        "company",
        &[
            "company name",
            "companyname",
            "organization",
            "organisation",
            "organization name",
            "organisation name",
            "org",
            "org name",
            "org_name",
            "employer",
            "account",
            "account name",
            "business name",
            "company/organization",
            "company/organisation",
            "company or organisation",
            "company or organization",
            "firma",
            "unternehmen",
            "entreprise",
            "société",
            "societe",
            "empresa",
        ],
    ),
    (
        "job_title",
        &[
            "jobtitle",
            "job title",
            "title",
            "position",
            "position title",
            "role",
            "job role",
            "job",
            "job position",
            "designation",
            "professional title",
        ],
    ),
    (
        "website",
        &[
            "url",
            "web site",
            "company website",
            "company url",
            "company domain",
            "website url",
            "domain",
            "homepage",
            "home page",
            "web",
            "webseite",
            "site web",
        ],
    ),
    (
        "linkedin_url",
        &[
            "linkedin",
            "linked in",
            "linkedin url",
            "linkedin profile",
            "linkedin profile url",
            "linkedin profile link",
            "linkedin link",
            "linkedin page",
            "linkedin account",
            "personal linkedin",
            "personal linkedin url",
            "hs linkedin url",
            "linkedinurl",
        ],
    ),
    (
        "x_url",
        &[
            "twitter",
            "twitter url",
            "twitter profile",
            "twitter profile url",
            "twitter link",
            "twitter handle",
            "twitter username",
            "twitter account",
            "twitter name",
            "x handle",
            "x username",
            "x profile",
            "x profile url",
            "x link",
            "x account",
            "x (twitter)",
            "x / twitter",
            "twitter / x",
            "twitter (x)",
            "x (formerly twitter)",
        ],
    ),
    ("industry", &["sector", "vertical", "industry type", "branche"]),
    (
        "employee_count",
        &[
            "employees",
            "numemployees",
            "number of employees",
            "numberofemployees",
            "no. of employees",
            "nb employees",
            "num employees",
            "employee count",
            "company size",
            "companysize",
            "company headcount",
            "headcount",
            "team size",
            "size of company",
            "mitarbeiter",
            "anzahl mitarbeiter",
        ],
    ),
    (
        "annual_revenue",
        &[
            "revenue",
            "annual revenue",
            "annualrevenue",
            "company revenue",
            "yearly revenue",
            "annual turnover",
            "turnover",
            "umsatz",
        ],
    ),
    (
        "country",
        &[
            "country code",
            "country_code",
            "countrycode",
            "country name",
            "country/region",
            "nation",
            "land",
            "pays",
            "país",
            "pais",
        ],
    ),
    (
        "state",
        &[
            "province",
            "region",
            "state/province",
            "state or province",
            "stateorprovince",
            "province/state",
            "state/region",
            "state code",
            "bundesland",
        ],
    ),
    ("city", &["town", "city name", "town/city", "stadt", "ort", "ville", "ciudad"]),
    (
        "postal_code",
        &[
            "zip",
            "zipcode",
            "zip code",
            "zip_code",
            "zip/postal code",
            "postal/zip code",
            "postal/zip",
            "postcode",
            "post code",
            "postalcode",
            "postal code",
            "plz",
            "postleitzahl",
            "code postal",
            "código postal",
            "codigo postal",
        ],
    ),
    (
        "street",
        &[
            "address",
            "address1",
            "address 1",
            "address_1",
            "address line 1",
            "address line1",
            "addressline1",
            "street address",
            "street_address",
            "street1",
            "street 1",
            "street line 1",
            "straße",
            "strasse",
            "adresse",
            "dirección",
            "direccion",
        ],
    ),
    (
        "street2",
        &[
            "address_2",
            "address2",
            "address 2",
            "address line 2",
            "street 2",
            "street_2",
            "address_line_2",
            "street line 2",
        ],
    ),
    ("locality", &["suburb", "district", "neighbourhood", "neighborhood"]),
    ("utm_source", &["utm source", "utmsource"]),
    ("utm_medium", &["utm medium", "utmmedium"]),
    ("utm_campaign", &["utm campaign", "utmcampaign"]),
    ("utm_content", &["utm content", "utmcontent"]),
    ("utm_term", &["utm term", "utmterm"]),
    (
        "referrer_url",
        &[
            "referrer",
            "referer",
            "referrer url",
            "referer url",
            "referring url",
            "referral url",
            "http referer",
            "http referrer",
            "document referrer",
        ],
    ),
    (
        "landing_page_url",
        &[
            "landing page",
            "landing_page",
            "landing page url",
            "landing url",
            "page url",
            "page uri",
            "pageuri",
            "page link",
        ],
    ),
    (
        "external_id",
        &[
            "external id",
            "externalid",
            "lead id",
            "leadid",
            "leadgen id",
            "crm id",
            "crm lead id",
            "external lead id",
            "record id",
        ],
    ),
];

/// Keys that hold a person's full name.
const FULL_NAME_SYNONYMS: &[&str] = &[
    "full_name",
    "fullname",
    "full name",
    "name",
    "contact name",
    "contact full name",
    "lead name",
    "person name",
    "your name",
    "first and last name",
    "first & last name",
    "name (first and last)",
    "vollständiger name",
    "nom complet",
    "nombre completo",
];

/// Folded prefixes that form labels wrap around a field name.
const LABEL_PREFIXES: &[&str] =
    &["whatisyour", "whatsyour", "pleaseenteryour", "pleaseprovideyour", "enteryour", "provideyour", "your"];
/// Folded suffixes that form labels add to a field name.
const LABEL_SUFFIXES: &[&str] = &["required", "optional"];

/// Appends the folded form of `s` to `out`: lowercase letters and digits only.
pub fn fold_into(s: &str, out: &mut String) {
    for c in s.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            }
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        }
    }
}

/// The folded form of `s`: lowercase letters and digits only, so that `companyName`,
/// `company_name` and `Company Name` are all `companyname`.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(s, &mut out);
    out
}

/// FxHash: the table is fixed and its keys are ours, so a fast non-keyed hash is fine.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Table = HashMap<String, HeaderMatch, BuildHasherDefault<FxHasher>>;

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut table = Table::default();
    for name in FULL_NAME_SYNONYMS {
        table.insert(fold(name), HeaderMatch::FullName);
    }
    for (field, synonyms) in FIELD_SYNONYMS {
        for s in synonyms.iter() {
            table.insert(fold(s), HeaderMatch::Field { field, exact: false });
        }
    }
    // The fields' own names last, so nothing can shadow them.
    for field in STANDARD_FIELDS {
        table.insert(fold(field), HeaderMatch::Field { field, exact: true });
    }
    table
});

/// Looks up an already folded key, trying the label wrappers if it does not match as is.
pub(crate) fn lookup_folded(folded: &str) -> Option<HeaderMatch> {
    if folded.is_empty() {
        return None;
    }
    if let Some(m) = TABLE.get(folded) {
        return Some(*m);
    }
    let mut core = folded;
    for suffix in LABEL_SUFFIXES {
        if let Some(rest) = core.strip_suffix(suffix) {
            core = rest;
            break;
        }
    }
    for prefix in LABEL_PREFIXES {
        if let Some(rest) = core.strip_prefix(prefix) {
            core = rest;
            break;
        }
    }
    if core.len() == folded.len() || core.is_empty() {
        return None;
    }
    TABLE.get(core).map(|m| match *m {
        HeaderMatch::Field { field, .. } => HeaderMatch::Field { field, exact: false },
        other => other,
    })
}

/// Jotform names its fields `q<number>_<name><number>`; returns `<name>`.
fn jotform_core(key: &str) -> Option<&str> {
    let rest = key.strip_prefix('q')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = rest.get(digits..)?.strip_prefix('_')?;
    let core = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    (!core.is_empty()).then_some(core)
}

/// Folded bases whose trailing number is a line number, not a repeat of the field.
const NUMBERED_LINES: &[&str] = &["address", "addressline", "street", "streetline", "line"];

/// Up to this many trailing digits are read as a field number (`Email 2`, `Name 12`).
const MAX_NUMBER_DIGITS: usize = 3;

/// The folded key without a trailing field number, when it has one.
fn without_number(folded: &str) -> Option<&str> {
    let base = folded.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = folded.len() - base.len();
    let plausible = (1..=MAX_NUMBER_DIGITS).contains(&digits) && !base.is_empty();
    (plausible && !NUMBERED_LINES.contains(&base)).then_some(base)
}

/// The number a form builder appended to a repeated field's label (`Email 2` → 2,
/// `Phone (3)` → 3, `email-10` → 10); `None` for an unnumbered label.
pub fn label_number(key: &str) -> Option<u32> {
    let trimmed = key.trim_end_matches(|c: char| !c.is_alphanumeric());
    let base = trimmed.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = trimmed.get(base.len()..)?;
    if digits.is_empty() || digits.len() > MAX_NUMBER_DIGITS || base.is_empty() {
        return None;
    }
    digits.parse().ok()
}

fn as_synonym(m: HeaderMatch) -> HeaderMatch {
    match m {
        HeaderMatch::Field { field, .. } => HeaderMatch::Field { field, exact: false },
        other => other,
    }
}

/// Classifies a key with a reusable buffer for the folded form.
pub(crate) fn classify_with(key: &str, buf: &mut String) -> Option<HeaderMatch> {
    buf.clear();
    fold_into(key, buf);
    if let Some(m) = lookup_folded(buf) {
        return Some(m);
    }
    if let Some(m) = without_number(buf).and_then(lookup_folded) {
        return Some(as_synonym(m));
    }
    let core = jotform_core(key)?;
    buf.clear();
    fold_into(core, buf);
    lookup_folded(buf).map(as_synonym)
}

/// What a CSV/XLSX column header or a JSON key means, if it is known.
pub fn classify_header(header: &str) -> Option<HeaderMatch> {
    let mut buf = String::with_capacity(header.len());
    classify_with(header, &mut buf)
}

/// The standard field a CSV/XLSX column header (or JSON key) stands for, by the built-in
/// synonym table. Full-name headers (`Full Name`, `name`) are not a single field: see
/// [`classify_header`]. A standard field name always maps to itself.
pub fn match_header(header: &str) -> Option<&'static str> {
    match classify_header(header)? {
        HeaderMatch::Field { field, .. } => Some(field),
        HeaderMatch::FullName => None,
    }
}

/// The standard field whose name `name` is exactly, as a `'static` string.
pub fn standard_field(name: &str) -> Option<&'static str> {
    STANDARD_FIELDS.iter().copied().find(|f| *f == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(field: &str, headers: &[&str]) {
        for h in headers {
            assert_eq!(match_header(h), Some(field), "header {h:?}");
        }
    }

    #[test]
    fn folding_ignores_case_spaces_separators_and_camel_case() {
        assert_eq!(fold("companyName"), "companyname");
        assert_eq!(fold("Company Name"), "companyname");
        assert_eq!(fold("company_name"), "companyname");
        assert_eq!(fold("COMPANY-NAME"), "companyname");
        assert_eq!(fold("company.name"), "companyname");
        assert_eq!(fold("Straße"), "straße");
        assert_eq!(fold("  "), "");
    }

    #[test]
    fn every_standard_field_maps_to_itself_exactly() {
        for f in STANDARD_FIELDS {
            assert_eq!(classify_header(f), Some(HeaderMatch::Field { field: f, exact: true }));
        }
        assert_eq!(classify_header("FirstName"), Some(HeaderMatch::Field { field: "first_name", exact: true }));
        assert_eq!(classify_header("UTM_Source"), Some(HeaderMatch::Field { field: "utm_source", exact: true }));
    }

    #[test]
    fn company() {
        check(
            "company",
            &[
                "organization",
                "Organisation",
                "employer",
                "org",
                "company_name",
                "companyName",
                "Company Name",
                "account",
                "Account Name",
                "business name",
                "COMPANY_NAME",
                "org_name",
                "Company",
            ],
        );
    }

    #[test]
    fn email() {
        check(
            "email",
            &[
                "e-mail",
                "E-Mail",
                "email_address",
                "Work Email",
                "work_email",
                "WORK_EMAIL",
                "mail",
                "business email",
                "emailaddress",
                "emailAddress",
                "EMAIL",
                "Email",
                "What is your email address?",
                "Email *",
                "Work email (required)",
                "Your email",
            ],
        );
    }

    #[test]
    fn phone() {
        check(
            "phone",
            &[
                "mobile",
                "phone_number",
                "PHONE_NUMBER",
                "phoneNumber",
                "tel",
                "telephone",
                "mobile phone",
                "mobilephone",
                "MobilePhone",
                "cell",
                "work phone",
                "WORK_PHONE",
                "phone number",
                "Phone",
            ],
        );
    }

    #[test]
    fn postal_code() {
        check(
            "postal_code",
            &[
                "zip",
                "zipcode",
                "zip code",
                "zip_code",
                "ZIP_CODE",
                "postcode",
                "post code",
                "plz",
                "PLZ",
                "PostalCode",
                "POSTAL_CODE",
            ],
        );
    }

    #[test]
    fn names() {
        check("first_name", &["firstname", "FirstName", "given name", "fname", "first", "first_name", "FIRST_NAME"]);
        check("last_name", &["surname", "family name", "lname", "last", "LastName", "lastname", "LAST_NAME"]);
        for h in ["full_name", "FULL_NAME", "name", "Name", "contact name", "Full Name", "fullName", "Your name"] {
            assert_eq!(classify_header(h), Some(HeaderMatch::FullName), "{h}");
            assert_eq!(match_header(h), None);
        }
    }

    #[test]
    fn second_address_line_and_locality() {
        check(
            "street2",
            &[
                "address_2",
                "address2",
                "Address 2",
                "address line 2",
                "Street 2",
                "street2",
                "street_2",
                "ADDRESS_LINE_2",
            ],
        );
        check("locality", &["locality", "suburb", "Suburb", "district", "neighbourhood", "Neighborhood"]);
        // The first line stays the street, the town stays the city.
        check("street", &["address_1", "address line 1"]);
        check("city", &["town", "city"]);
    }

    #[test]
    fn job_title_website_and_location() {
        check("job_title", &["title", "Title", "position", "role", "job", "jobtitle", "JOB_TITLE", "Job Title"]);
        check("website", &["url", "URL", "web site", "company website", "domain", "Website"]);
        check("country", &["country_code", "nation", "COUNTRY", "Country/Region"]);
        check("state", &["province", "region", "state/province", "State", "STATE", "REGION"]);
        check("city", &["town", "CITY"]);
        check("street", &["address", "address1", "street address", "address line 1", "Address", "STREET_ADDRESS"]);
    }

    #[test]
    fn social_profile_labels() {
        check(
            "linkedin_url",
            &[
                "LinkedIn",
                "LinkedIn URL",
                "LinkedIn Profile",
                "linkedin_profile_url",
                "LinkedIn profile link",
                "Your LinkedIn profile (optional)",
                "LinkedIn 2",
                "linkedinUrl",
                "hs_linkedin_url",
                "q7_linkedinProfile7",
            ],
        );
        check(
            "x_url",
            &[
                "Twitter",
                "Twitter handle",
                "twitterhandle",
                "X handle",
                "X (Twitter)",
                "Twitter / X",
                "X profile URL",
                "x_url",
                "Your Twitter username *",
            ],
        );
        // A lone `X` is too short to mean anything, and a LinkedIn bio is no link.
        assert_eq!(match_header("X"), None);
        assert_eq!(match_header("LinkedIn bio"), None);
    }

    #[test]
    fn company_figures_and_industry() {
        check(
            "employee_count",
            &[
                "employees",
                "company size",
                "number of employees",
                "headcount",
                "no. of employees",
                "numemployees",
                "NumberOfEmployees",
                "COMPANY_SIZE",
            ],
        );
        check("annual_revenue", &["revenue", "annual revenue", "annualrevenue", "AnnualRevenue"]);
        check("industry", &["sector", "vertical", "Industry", "INDUSTRY"]);
    }

    #[test]
    fn ids_utm_and_urls() {
        check("external_id", &["lead id", "lead_id", "crm id", "external_id", "externalId"]);
        assert_eq!(match_header("id"), None, "bare `id` is ambiguous and stays custom");
        assert_eq!(match_header("ID"), None);
        check("utm_source", &["utm source", "UTM_Source", "utmSource", "utm-source"]);
        check("utm_medium", &["utm medium", "UTM_MEDIUM"]);
        check("utm_campaign", &["utm_campaign", "UTM Campaign"]);
        check("utm_content", &["utm content"]);
        check("utm_term", &["utmTerm"]);
        assert_eq!(match_header("source"), None, "`source` belongs to the API envelope");
        assert_eq!(match_header("lead_source"), None);
        assert_eq!(match_header("medium"), None);
        check("referrer_url", &["referrer", "referer", "referring url", "Referrer URL"]);
        check("landing_page_url", &["landing page", "page url", "landing_page", "pageUri"]);
    }

    #[test]
    fn crm_and_lead_form_names() {
        // Salesforce Web-to-Lead
        for (h, f) in [
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("company", "company"),
            ("email", "email"),
            ("phone", "phone"),
            ("mobile", "phone"),
            ("title", "job_title"),
            ("URL", "website"),
            ("street", "street"),
            ("city", "city"),
            ("state", "state"),
            ("zip", "postal_code"),
            ("country", "country"),
            ("industry", "industry"),
            ("employees", "employee_count"),
            ("revenue", "annual_revenue"),
        ] {
            assert_eq!(match_header(h), Some(f), "salesforce {h}");
        }
        assert_eq!(match_header("00N5e00000AbCdE"), None);
        // HubSpot
        check("first_name", &["firstname"]);
        check("last_name", &["lastname"]);
        check("job_title", &["jobtitle"]);
        check("employee_count", &["numemployees"]);
        check("annual_revenue", &["annualrevenue"]);
        check("postal_code", &["zip"]);
        check("phone", &["mobilephone"]);
        // Marketo
        for (h, f) in [
            ("FirstName", "first_name"),
            ("LastName", "last_name"),
            ("Company", "company"),
            ("Title", "job_title"),
            ("NumberOfEmployees", "employee_count"),
            ("AnnualRevenue", "annual_revenue"),
            ("PostalCode", "postal_code"),
        ] {
            assert_eq!(match_header(h), Some(f), "marketo {h}");
        }
        // Pipedrive
        check("company", &["org_name"]);
        // Facebook / LinkedIn / Google lead forms
        for (h, f) in [
            ("work_email", "email"),
            ("phone_number", "phone"),
            ("job_title", "job_title"),
            ("company_name", "company"),
            ("zip_code", "postal_code"),
            ("EMAIL", "email"),
            ("PHONE_NUMBER", "phone"),
            ("COMPANY_NAME", "company"),
            ("POSTAL_CODE", "postal_code"),
            ("WORK_EMAIL", "email"),
            ("WORK_PHONE", "phone"),
            ("street_address", "street"),
        ] {
            assert_eq!(match_header(h), Some(f), "lead form {h}");
        }
        // Jotform generated names
        check("email", &["q4_email", "q12_workEmail12"]);
        assert_eq!(classify_header("q3_fullName3"), Some(HeaderMatch::FullName));
        // Typeform / Tally style labels
        check("company", &["What's your company name?", "Company name (optional)"]);
    }

    #[test]
    fn no_synonym_is_claimed_twice() {
        let mut seen: HashMap<String, &str> = HashMap::new();
        let all = FIELD_SYNONYMS
            .iter()
            .flat_map(|(f, syns)| syns.iter().map(move |s| (*f, *s)))
            .chain(FULL_NAME_SYNONYMS.iter().map(|s| ("full name", *s)))
            .chain(STANDARD_FIELDS.iter().map(|f| (*f, *f)));
        for (target, synonym) in all {
            let folded = fold(synonym);
            assert!(!folded.is_empty(), "{synonym:?} folds to nothing");
            if let Some(other) = seen.insert(folded.clone(), target) {
                assert_eq!(other, target, "{synonym:?} ({folded}) is claimed by {other} and {target}");
            }
        }
    }

    #[test]
    fn numbered_labels_match_their_field() {
        check("email", &["Email 2", "email-2", "E-mail 3", "Email Address 2", "work_email_2"]);
        check("phone", &["Phone (2)", "Phone 2", "Mobile 3"]);
        check("company", &["Company 2"]);
        for h in ["Name 3", "Full Name 2"] {
            assert_eq!(classify_header(h), Some(HeaderMatch::FullName), "{h}");
        }
        assert_eq!(classify_header("Email 2"), Some(HeaderMatch::Field { field: "email", exact: false }));
        // Address lines keep their meaning; a third line is no street.
        check("street2", &["Address 2", "address_2"]);
        assert_eq!(match_header("Address 3"), None);
        assert_eq!(match_header("Address Line 3"), None);
        // A number alone, or a label that is not a field, stays unmatched.
        for h in ["Field 3", "2", "Question 12", "Email 12345"] {
            assert_eq!(match_header(h), None, "{h}");
        }
    }

    #[test]
    fn decorated_labels_match_their_field() {
        check("email", &["Your Email *", "E-mail address:", "Work email (required)", "Email (optional)"]);
        check("phone", &["Phone number *", "Your phone:"]);
    }

    #[test]
    fn label_numbers() {
        assert_eq!(label_number("Email 2"), Some(2));
        assert_eq!(label_number("email-10"), Some(10));
        assert_eq!(label_number("Phone (3)"), Some(3));
        assert_eq!(label_number("Email"), None);
        assert_eq!(label_number("2"), None);
        assert_eq!(label_number("Email 12345"), None);
        assert_eq!(label_number("Téléphone 4 "), Some(4));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Every field synonym whose meaning does not depend on a number of its own.
        fn plain_synonyms() -> Vec<(&'static str, &'static str)> {
            FIELD_SYNONYMS
                .iter()
                .filter(|(f, _)| !matches!(*f, "street" | "street2"))
                .flat_map(|(f, syns)| syns.iter().map(move |s| (*f, *s)))
                .filter(|(_, s)| !fold(s).ends_with(|c: char| c.is_ascii_digit()))
                .collect()
        }

        const DECORATIONS: &[(&str, &str)] = &[
            ("", " 2"),
            ("", "-3"),
            ("", " (4)"),
            ("", " *"),
            ("", ":"),
            ("", " (required)"),
            ("Your ", ""),
            ("Your ", " *"),
            ("  ", "  "),
        ];

        proptest! {
            #[test]
            fn classifying_never_panics_and_is_stable(key in "\\PC{0,200}") {
                prop_assert_eq!(classify_header(&key), classify_header(&key));
                let _ = label_number(&key);
            }

            #[test]
            fn a_decorated_or_numbered_synonym_keeps_its_field(
                i in any::<prop::sample::Index>(),
                d in any::<prop::sample::Index>(),
            ) {
                let all = plain_synonyms();
                let (field, synonym) = all[i.index(all.len())];
                let (before, after) = DECORATIONS[d.index(DECORATIONS.len())];
                let label = format!("{before}{synonym}{after}");
                prop_assert_eq!(match_header(&label), Some(field), "{:?}", label);
            }
        }
    }

    #[test]
    fn unknown_headers_do_not_match() {
        for h in ["", "   ", "favourite colour", "notes", "county", "campaign"] {
            assert_eq!(match_header(h), None, "{h:?}");
        }
    }
}
