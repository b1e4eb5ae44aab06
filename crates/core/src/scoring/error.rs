//! Configuration errors, located by line, column and dotted key like the rest of
//! `leadflow.toml`'s errors.

use serde::Serialize;
use std::fmt;

/// One problem in the `[scoring]` or `[lifecycle]` section, located.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    /// The dotted key, e.g. `scoring.rules[2].when.in[1]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.line, self.column, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}
