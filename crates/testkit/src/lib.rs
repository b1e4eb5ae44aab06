//! What the tests of several crates share, kept out of the libraries they test: the
//! conformance suite every store backend passes ([`conformance_suite!`]) and fresh
//! PostgreSQL databases ([`postgres::TestDatabase`]).
//!
//! Only ever a dev-dependency: nothing a release build links depends on it.
#![forbid(unsafe_code)]

pub mod conformance;
pub mod postgres;
