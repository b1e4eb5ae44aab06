//! What every section's reader shares: [`Problems`] collects each problem with the byte
//! span it points at and locates them all at the end; [`Node`] hides whether a part was
//! written as a `[table]`, an `[[array of tables]]` or an `{ inline = table }`; and the
//! readers for the values several sections take (strings, counts, durations, the names
//! of environment variables).

use super::error::ConfigError;
use std::ops::Range;
use std::time::Duration;
use toml_edit::{ArrayOfTables, Item, Table, Value};

/// A value with where it was written.
pub(crate) type Spanned<T> = (T, Option<Range<usize>>);

/// Problems found so far, and the environment variables the file names.
#[derive(Default)]
pub(crate) struct Problems {
    /// Where a problem with no span of its own is reported: the section's header.
    fallback: Option<Range<usize>>,
    list: Vec<(Option<Range<usize>>, String, String)>,
    variables: Vec<Variable>,
}

/// An environment variable named in the file, with the key that names it.
pub(crate) struct Variable {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub name: String,
}

impl Problems {
    pub(crate) fn push(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.list.push((span.or_else(|| self.fallback.clone()), key.to_owned(), message.into()));
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Runs `read` with problems that have no span reported at `fallback`.
    pub(crate) fn within<T>(&mut self, fallback: Option<Range<usize>>, read: impl FnOnce(&mut Self) -> T) -> T {
        let outer = std::mem::replace(&mut self.fallback, fallback);
        let value = read(self);
        self.fallback = outer;
        value
    }

    /// The environment variables named so far (for checking that each is set).
    pub(crate) fn take_variables(&mut self) -> Vec<Variable> {
        std::mem::take(&mut self.variables)
    }

    /// Turns the spans into lines and columns of `text`, in document order (problems at
    /// one place keep the order they were found in).
    pub(crate) fn locate(self, text: &str) -> Vec<ConfigError> {
        let mut errors: Vec<(usize, ConfigError)> = self
            .list
            .into_iter()
            .map(|(span, key, message)| {
                (span.as_ref().map_or(0, |s| s.start), ConfigError::at(text, span, key, message))
            })
            .collect();
        errors.sort_by_key(|(offset, _)| *offset);
        errors.into_iter().map(|(_, e)| e).collect()
    }

    pub(crate) fn table<'i>(&mut self, item: &'i Item, key: &str) -> Option<&'i Table> {
        let table = item.as_table();
        if table.is_none() {
            self.push(item.span(), key, "must be a table, e.g. [server]");
        }
        table
    }

    pub(crate) fn string<'i>(&mut self, item: &'i Item, key: &str) -> Option<&'i str> {
        let s = item.as_str();
        if s.is_none() {
            self.push(span(item), key, "must be a string");
        }
        s
    }

    pub(crate) fn positive_integer(&mut self, item: &Item, key: &str) -> Option<u64> {
        match item.as_integer() {
            Some(n) if n > 0 => u64::try_from(n).ok(),
            _ => {
                self.push(span(item), key, "must be a positive integer");
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, item: &Item, key: &str) -> Option<Duration> {
        let parsed = item.as_str().and_then(parse_duration);
        if parsed.is_none() {
            self.push(span(item), key, "must be a duration such as \"500ms\", \"5s\", \"5m\" or \"2h\"");
        }
        parsed
    }

    /// The name of the environment variable that holds a secret. Secrets are never
    /// written in the file, so a value that does not look like a variable's name is
    /// refused rather than taken as the secret.
    pub(crate) fn env_name(&mut self, item: &Item, key: &str) -> Option<String> {
        let s = self.string(item, key)?;
        if is_env_name(s) {
            self.variables.push(Variable { span: span(item), key: key.to_owned(), name: s.to_owned() });
            Some(s.to_owned())
        } else {
            self.push(span(item), key, "must name an environment variable (A-Z, 0-9, _), not hold the secret");
            None
        }
    }
}

/// The span of a value, or of its table: a bare `Item::Value` carries the span.
pub(crate) fn span(item: &Item) -> Option<Range<usize>> {
    item.span().or_else(|| item.as_value().and_then(Value::span))
}

pub(crate) fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Reads `500ms`, `0s`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let per = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(per).map(Duration::from_secs)
}

/// The shortest text [`parse_duration`] reads back as `d` (whole milliseconds).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// Where `key` (`destinations[1].url`) is written in the document, or the nearest
/// enclosing key that is.
pub(crate) fn span_of(root: &Table, key: &str) -> Option<Range<usize>> {
    let mut node = Node::Table(root);
    let mut found = None;
    for segment in key.split('.') {
        let (name, indexes) = match segment.split_once('[') {
            Some((name, indexes)) => (name, Some(indexes)),
            None => (segment, None),
        };
        let Some(next) = node.entries().and_then(|e| e.into_iter().find(|(k, _)| *k == name).map(|(_, n)| n)) else {
            break;
        };
        node = next;
        found = node.span().or(found);
        for index in indexes.into_iter().flat_map(|i| i.split('[')).map(|i| i.trim_end_matches(']')) {
            let Some(next) = index.parse::<usize>().ok().and_then(|i| node.elements()?.into_iter().nth(i)) else {
                return found;
            };
            node = next;
            found = node.span().or(found);
        }
    }
    found
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_read_in_every_unit() {
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 10h "), Some(Duration::from_secs(36_000)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        for bad in ["", "s", "5", "5x", "-5s", "5 minutes", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad} should be rejected");
        }
    }

    #[test]
    fn a_key_path_finds_its_line_or_the_nearest_written_parent() {
        let text = "[[destinations]]\nname = \"a\"\n\n[[destinations]]\nname = \"b\"\nurl = \"http://x\"\nevents = [\"created\", \"mql\"]\n";
        let doc = toml_edit::Document::parse(text).unwrap();
        let at = |key: &str| span_of(doc.as_table(), key).map(|s| super::super::error::line_col(text, s.start));
        assert_eq!(at("destinations[1].url"), Some((6, 7)));
        assert_eq!(at("destinations[1].events[1]"), Some((7, 22)));
        assert_eq!(at("destinations[1].secret_env"), Some((4, 1)), "a key not written: its table");
        assert_eq!(at("destinations[0]"), Some((1, 1)));
        assert_eq!(at("destinations[7].url"), Some((1, 1)), "no such destination: the array");
        assert_eq!(at("nowhere"), None);
    }

    proptest! {
        #[test]
        fn formatted_durations_parse_back(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
    }
}
