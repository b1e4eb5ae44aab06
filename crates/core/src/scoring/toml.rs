//! Reading a TOML section whose parts may be written as `[tables]`, `[[arrays of
//! tables]]` or `{ inline = tables }`: [`Node`] hides the difference, [`Problems`]
//! collects every error with its byte span and turns them into located [`ConfigError`]s.

use crate::scoring::error::ConfigError;
use std::ops::Range;
use toml_edit::{ArrayOfTables, Document, Item, Table, Value};

/// A value with where it was written.
pub(crate) type Spanned<T> = (T, Option<Range<usize>>);

/// A value, table or array of tables in the parsed document.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Value(&'a Value),
    Table(&'a Table),
    Tables(&'a ArrayOfTables),
}

impl<'a> Node<'a> {
    pub(crate) fn from_item(item: &'a Item) -> Option<Self> {
        match item {
            Item::None => None,
            Item::Value(v) => Some(Self::Value(v)),
            Item::Table(t) => Some(Self::Table(t)),
            Item::ArrayOfTables(a) => Some(Self::Tables(a)),
        }
    }

    pub(crate) fn span(&self) -> Option<Range<usize>> {
        match self {
            Self::Value(v) => v.span(),
            Self::Table(t) => t.span(),
            Self::Tables(a) => a.span().or_else(|| a.iter().next().and_then(Table::span)),
        }
    }

    fn value(&self) -> Option<&'a Value> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&'a str> {
        self.value().and_then(Value::as_str)
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        self.value().and_then(Value::as_bool)
    }

    pub(crate) fn as_integer(&self) -> Option<i64> {
        self.value().and_then(Value::as_integer)
    }

    /// An integer or a float.
    pub(crate) fn as_number(&self) -> Option<f64> {
        let v = self.value()?;
        v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
    }

    /// The entries of a table or inline table, in document order.
    pub(crate) fn entries(&self) -> Option<Vec<(&'a str, Node<'a>)>> {
        match self {
            Self::Table(t) => Some(t.iter().filter_map(|(k, i)| Node::from_item(i).map(|n| (k, n))).collect()),
            Self::Value(Value::InlineTable(t)) => Some(t.iter().map(|(k, v)| (k, Node::Value(v))).collect()),
            _ => None,
        }
    }

    /// The elements of an array or array of tables.
    pub(crate) fn elements(&self) -> Option<Vec<Node<'a>>> {
        match self {
            Self::Value(Value::Array(a)) => Some(a.iter().map(Node::Value).collect()),
            Self::Tables(a) => Some(a.iter().map(Node::Table).collect()),
            _ => None,
        }
    }

    /// A string, or a list of strings; `None` (and nothing pushed) when it is neither.
    pub(crate) fn strings(&self) -> Option<Vec<Spanned<&'a str>>> {
        if let Some(s) = self.as_str() {
            return Some(vec![(s, self.span())]);
        }
        self.elements()?.iter().map(|n| n.as_str().map(|s| (s, n.span()))).collect()
    }
}

/// Errors found so far, each with the span it points at.
pub(crate) struct Problems {
    /// Where a problem with no span of its own is reported: the section's header.
    fallback: Option<Range<usize>>,
    list: Vec<(Option<Range<usize>>, String, String)>,
}

impl Problems {
    pub(crate) fn new(fallback: Option<Range<usize>>) -> Self {
        Self { fallback, list: Vec::new() }
    }

    pub(crate) fn push(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.list.push((span.or_else(|| self.fallback.clone()), key.to_owned(), message.into()));
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Turns the spans into lines and columns of `text`, in document order.
    pub(crate) fn locate(self, text: &str) -> Vec<ConfigError> {
        let mut errors: Vec<(usize, ConfigError)> = self
            .list
            .into_iter()
            .map(|(span, key, message)| {
                let offset = span.map_or(0, |s| s.start);
                let (line, column) = line_col(text, offset);
                (offset, ConfigError { line, column, key, message })
            })
            .collect();
        errors.sort_by_key(|(offset, _)| *offset);
        errors.into_iter().map(|(_, e)| e).collect()
    }
}

/// Parses a whole document and hands its `section` (if present) to `read`.
pub(crate) fn parse_section<T>(
    text: &str,
    section: &str,
    read: impl FnOnce(Option<&Item>, &str) -> Result<T, Vec<ConfigError>>,
) -> Result<T, Vec<ConfigError>> {
    let doc = Document::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        vec![ConfigError { line, column, key: String::new(), message: e.message().to_owned() }]
    })?;
    read(doc.as_table().get(section), text)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Stage, rule and reason names: lower-case ASCII letters, digits and `_`, starting with
/// a letter, so they are safe as metric labels and API values.
pub(crate) fn is_snake_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
