//! The pure core: the lead schema, the stages of the pipeline and the rules that settle a
//! submission.
//!
//! Nothing here performs I/O or depends on an async runtime, a database or a web
//! framework: every stage is a function from explicit input to explicit output, so it can
//! be read, tested and benchmarked alone. The store and the server call into this crate.
//! [`audit`] numbers and hashes the audit log's entries and verifies the chain.
//!
//! The stages, in the order [`pipeline`] runs them: [`capture`] → [`map`] → [`normalize`]
//! → [`validate`] → [`resolve`] → [`attribute`] → [`lifecycle`]. Beside them, [`erase`]
//! decides what is left of a person who asked to be forgotten: a tombstone and history
//! without personal data, and a `lead.erased` payload of ids.
//!
//! The reference-data normalizers ([`phone`], [`geo`], the text normalizers in
//! [`normalize`]), field mapping ([`mapping`]), identity matching ([`matching`]) and the
//! scoring rules and lifecycle contract ([`scoring`]) are modules of this crate too: they
//! are as pure as the stages that call them.
#![forbid(unsafe_code)]

pub mod account;
pub mod assignments;
pub mod attribute;
pub mod audit;
pub mod capture;
pub mod changes;
pub mod config;
pub mod consent;
pub mod deliver;
pub mod email;
pub mod encryption;
pub mod engagement;
pub mod erase;
pub mod error;
pub mod feed;
pub mod feedback;
pub mod geo;
pub mod health;
pub mod ids;
pub mod keys;
pub mod lead;
pub mod lifecycle;
pub mod map;
pub mod mapping;
pub mod matching;
pub mod merges;
pub mod normalize;
pub mod phone;
pub mod pipeline;
pub mod privacy;
pub mod region;
pub mod resolve;
pub mod route;
pub mod scoring;
pub mod settle;
pub mod source;
pub mod suppress;
pub mod validate;

#[cfg(test)]
mod testing;

pub use email::Email;
pub use error::{FieldError, FieldErrorCode};
pub use ids::{AccountId, EventId, FeedbackId, ImportId, KeyId, LeadId, ReviewId, SubmissionId};
pub use lead::{Lead, LeadFields};
pub use source::SourceName;
