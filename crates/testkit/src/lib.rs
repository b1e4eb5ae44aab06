//! What the tests of several crates share, kept out of the libraries they test: the
//! conformance suite every store backend passes ([`conformance_suite!`]), fresh
//! PostgreSQL databases ([`postgres::TestDatabase`]) and the encrypted stores' test
//! helpers ([`encryption`]).
//!
//! Only ever a dev-dependency: nothing a release build links depends on it.
#![forbid(unsafe_code)]

pub mod conformance;
pub mod encryption;
pub mod postgres;
