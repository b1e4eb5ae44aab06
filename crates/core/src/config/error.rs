//! The one error type of the configuration: a problem, where it is, and under which key.

use std::fmt;
use std::ops::Range;

/// One problem with the configuration, located in the file.
///
/// Every section reports through this type, and so does the delivery client when it
/// refuses a destination, so `check-config` lists every problem the same way:
/// `LINE:COLUMN: KEY: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based; 0 while the problem is not located (see [`ConfigError::locate`]).
    pub line: usize,
    /// 1-based, in characters; 0 while the problem is not located.
    pub column: usize,
    /// The dotted key, e.g. `sources[1].adapter`; empty for a syntax error.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    /// A problem found away from the text (a destination the delivery client refuses):
    /// [`ConfigError::locate`] places it once the text is at hand.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { line: 0, column: 0, key: key.into(), message: message.into() }
    }

    pub(crate) fn at(text: &str, span: Option<Range<usize>>, key: String, message: String) -> Self {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        Self { line, column, key, message }
    }

    /// Places the problem at its key in `text`, or at the nearest enclosing key written
    /// there (a destination's table when the key names a field read from the
    /// environment). Already located problems, and keys not in `text` at all, are left
    /// as they are.
    pub fn locate(self, text: &str) -> Self {
        if self.line > 0 {
            return self;
        }
        let Ok(doc) = toml_edit::Document::parse(text) else { return self };
        match super::read::span_of(doc.as_table(), &self.key) {
            Some(span) => Self::at(text, Some(span), self.key, self.message),
            None => self,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
