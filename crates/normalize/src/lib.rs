//! Pure normalizers for lead data captured by leadflow.
//!
//! * [`person_name`]: recase ALL CAPS / all lower names, keep mixed case.
//! * [`company`]: display form and a match key without legal suffixes.
//! * [`domain_of_url`] / [`registrable_domain`]: eTLD+1 via the Public Suffix List.
//! * [`is_free_mail`] / [`is_disposable`]: vendored domain lists (see `data/PROVENANCE.md`).
//! * [`Picklist`] / [`default_industries`]: controlled values with synonyms.
//! * [`classify_title`]: job title → [`Seniority`] and [`Department`].
//!
//! Every function is total: it never panics and does no I/O; data is compiled
//! in with `include_str!`, lookup tables are built once on first use.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod company;
mod domain;
mod email;
mod name;
mod picklist;
mod text;
mod title;

pub use company::{Company, company};
pub use domain::{domain_of_url, registrable_domain};
pub use email::{is_disposable, is_free_mail};
pub use name::person_name;
pub use picklist::{DEFAULT_INDUSTRIES, Picklist, PicklistError, default_industries};
pub use title::{Department, Seniority, TitleClass, classify_title};
