//! privacy: what leadflow tells a person it holds about them, and how long it keeps what.
//!
//! [`export`] assembles the subject access document from what the store loaded about a
//! lead and the leads merged into it; [`retention`] reads the `[retention]` section and
//! decides, from it and the time, the cutoff of each kind of data. Both are pure: the app
//! loads and applies, the store runs the statements.

pub mod export;
pub mod retention;
