//! Mapping: turns a lead record — a JSON object from an API or webhook, or a CSV/XLSX row
//! (column header → string) — into leadflow's standard fields, still raw (normalization
//! comes later), keeping every other key in `custom`.
//!
//! # Order of work ([`map_record`])
//! 1. **Spec** ([`MappingSpec`], per source, optional): `ignore` paths are dropped; each
//!    entry reads its path(s) and fills its target. A spec entry beats everything else
//!    for its target. What a spec entry read, or `ignore` dropped, is taken out of the
//!    record: a top-level key read whole is used up; a key read in part (`contact.email`)
//!    keeps the rest of its value, which goes to `custom` under the key (rule `rest`),
//!    with containers the removal left empty pruned (an array element read whole is
//!    removed from the array). A path that is absent (or null) sets nothing, so the
//!    synonym table may still fill the field.
//! 2. **Top-level keys** left, in key order:
//!    * `source` is skipped: it belongs to the API envelope (a spec may still read it).
//!    * A null value is skipped: it is no value (rule `empty`).
//!    * `custom` (an object) is merged into `custom`; its keys win over loose keys of the
//!      same name. A `custom` that is not an object is kept as the custom key `custom`.
//!    * `consent` is passed through as it is (to `custom` if the spec set consent).
//!    * Every other key is matched by the built-in synonym table ([`match_header`]).
//! 3. **Several keys for one field** (`email` and `Work Email`): a non-blank value beats a
//!    blank one (null, `""`, whitespace, `[]`, `{}`); then the field's own name beats a
//!    synonym (`email` exactly first, then `Email`/`EMAIL`); then an unnumbered label
//!    beats a numbered one and a lower number a higher one (`Email` before `Email 2`
//!    before `Email 10`); then the earlier key wins.
//!    serde_json keeps object keys sorted (leadflow does not enable `preserve_order`), so
//!    "earlier" means earlier in that order. The losers go to `custom` under their own key
//!    (rule `duplicate`); nothing is dropped.
//! 4. **Full names** (`full_name`, `name`, `contact name`, …) fill `first_name` and/or
//!    `last_name` when those are still missing, by the rules of [`split_full_name`]; a
//!    full name that is not needed or not a name (not a string, nor a
//!    `{"first": …, "last": …}` object) goes to `custom`.
//! 5. **Everything else** goes to `custom` under its key, as received (nested objects
//!    kept as they are). When a custom key is already taken (the spec's `custom.NAME`
//!    comes first, then the input's `custom` object, then loose keys), the later one is
//!    stored as `NAME#2`, `NAME#3`, …. A name longer than [`MAX_CUSTOM_KEY_LEN`]
//!    characters is shortened by [`fit_custom_key`] (a prefix and a hash of the whole
//!    name), never refused: a long question title must not cost the lead.
//!
//! Nothing is dropped except paths listed in the spec's `ignore`, the envelope key
//! `source`, and nulls. Every top-level key gets at least one [`Decision`].
//!
//! # Ambiguous names, decided
//! * `id` alone is **not** mapped to `external_id`: webhook payloads use it for their own
//!   event, submission or row ids. `lead id`, `crm id`, `external id`, `record id` are.
//!   Map `id` with a spec (`external_id = "id"`) when it is the lead's id.
//! * `source`, `medium`, `campaign`, `lead_source` are not UTM fields: `source` is the
//!   API envelope, and Salesforce's `lead_source` is a picklist, not a UTM source. Only
//!   `utm_*` spellings (`utm source`, `UTM_Source`, `utmSource`) map to `utm_*`.
//! * `title`, `position`, `role` are the job title (Salesforce, Marketo, HubSpot usage),
//!   not a salutation. `url` and `domain` are the website; page URLs are `page url`.
//! * `county` is not mapped to `state` (in the US it is a different thing); `region` and
//!   `province` are.
//! * `address`, `address1`, `address line 1` are the street; `address2`, `address line 2`
//!   the second line (`street2`); `suburb`, `district`, `neighbourhood` and `locality` the
//!   locality, a part of a city (`city` stays the town or city).
//! * `mobile` and `phone` both mean phone; with both present `phone` wins and `mobile`
//!   stays in custom.

//!
//! # Example
//! ```
//! use leadflow_core::mapping::{map_record, parse_spec};
//! use serde_json::json;
//!
//! let doc = toml_edit::Document::parse(r#"
//! email = "contact.email"
//! full_name = "contact.name"
//! street = { join = ["addr1", "addr2"], separator = ", " }
//! "custom.plan" = "meta.plan"
//! ignore = ["password"]
//! "#).map_err(|e| e.to_string())?;
//! let spec = parse_spec(doc.as_table()).map_err(|e| format!("{e:?}"))?;
//! let record = json!({
//!     "contact": {"email": "ada@example.com", "name": "Ada Lovelace"},
//!     "addr1": "12 St James's Square", "addr2": "London",
//!     "meta": {"plan": "pro"}, "password": "hunter2", "Company Name": "AE", "colour": "teal"
//! });
//! let record = record.as_object().cloned().unwrap_or_default();
//! let mapped = map_record(&record, Some(&spec));
//! assert_eq!(mapped.standard["first_name"], "Ada");
//! assert_eq!(mapped.standard["street"], "12 St James's Square, London");
//! assert_eq!(mapped.standard["company"], "AE");
//! assert_eq!(mapped.custom["plan"], "pro");
//! assert_eq!(mapped.custom["colour"], "teal");
//! for d in &mapped.decisions {
//!     println!("{d}"); // e.g. "Company Name → company (synonym)"
//! }
//! # Ok::<(), String>(())
//! ```

mod custom_key;
mod map;
mod name;
mod path;
mod spec;
mod synonyms;

pub use custom_key::{MAX_CUSTOM_KEY_LEN, fit_custom_key};
pub use map::{Decision, Mapped, Rule, Target, map_record};
pub use name::{NameParts, split_full_name};
pub use path::{Path, PathError, Step, quote_if_needed};
pub use spec::{MappingSpec, SpecEntry, SpecError, SpecSource, SpecTarget, parse_spec};
pub use synonyms::{HeaderMatch, STANDARD_FIELDS, classify_header, fold, label_number, match_header, standard_field};
