//! Paths into a JSON record, as written in a mapping spec.
//!
//! ```text
//! contact.email                      key, then nested key
//! answers[2].text                    array index (0-based); [-1] is the last element
//! data.fields."Work Email"           quoted key: needed for dots, brackets, quotes
//! data.fields["Work Email"]          the same, bracket form
//! "No. of employees"                 a top-level key with a dot in it
//! answers[field.ref=email].email     the first element whose field.ref is "email"
//! user_column_data[column_id="FULL_NAME"].string_value
//! ```
//!
//! * A **bare key** is any text up to the next `.`, `[`, `]` or `"`; it may contain spaces
//!   (`Work Email`) but may not start or end with whitespace — quote it for that.
//! * A **quoted key** is `"…"`, with `\"` for a quote and `\\` for a backslash.
//! * `[n]` picks element `n` of an array, counting from 0; `[-n]` counts from the end.
//! * `[sub.path=value]` picks the first array element whose `sub.path` (keys and indexes
//!   only) holds `value`; the value is bare (up to `]`) or quoted, and matches a string
//!   equal to it, or a number or boolean written the same way.
//! * Keys are matched exactly (case-sensitive).

use serde_json::Value;
use std::fmt;

/// One step of a [`Path`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(i64),
    /// The first array element whose `path` (keys and indexes only) equals `value`.
    Select {
        path: Vec<Step>,
        value: String,
    },
}

/// A parsed path; displays as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    text: String,
    steps: Vec<Step>,
}

/// A path that could not be parsed: the message and the character offset in the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)
    }
}

impl std::error::Error for PathError {}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

/// A concrete step of a resolved location: no selectors, no negative indexes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum At<'v> {
    Index(usize),
    Key(&'v str),
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, PathError> {
    Err(PathError { offset, message: message.into() })
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn quoted(&mut self) -> Result<String, PathError> {
        let start = self.pos;
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return err(start, "unterminated quoted key: add the closing \""),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    match self.chars.get(self.pos + 1) {
                        Some(c @ ('"' | '\\')) => out.push(*c),
                        _ => return err(self.pos, "only \\\" and \\\\ may follow a backslash"),
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A bare run up to one of `stops`.
    fn bare(&mut self, stops: &[char], what: &str) -> Result<String, PathError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if stops.contains(&c) {
                break;
            }
            self.pos += 1;
        }
        let s: String = self.chars.get(start..self.pos).unwrap_or_default().iter().collect();
        if s.is_empty() {
            return err(start, format!("expected {what}"));
        }
        if s.trim() != s {
            return err(start, format!("{what} `{s}` starts or ends with a space: quote it, e.g. \"{s}\""));
        }
        Ok(s)
    }

    fn key(&mut self, stops: &[char]) -> Result<String, PathError> {
        if self.peek() == Some('"') { self.quoted() } else { self.bare(stops, "a key") }
    }

    /// Steps after the first key: `.key`, `[n]`, `["key"]`, `[sub=value]`.
    fn steps(&mut self, stops: &[char], in_selector: bool) -> Result<Vec<Step>, PathError> {
        let key_stops: &[char] = if in_selector { &['.', '[', ']', '"', '='] } else { &['.', '[', ']', '"'] };
        let mut steps = vec![Step::Key(self.key(key_stops)?)];
        loop {
            match self.peek() {
                None => return Ok(steps),
                Some(c) if stops.contains(&c) => return Ok(steps),
                Some('.') => {
                    self.pos += 1;
                    steps.push(Step::Key(self.key(key_stops)?));
                }
                Some('[') => {
                    let open = self.pos;
                    self.pos += 1;
                    steps.push(self.bracket(open, in_selector)?);
                    if self.peek() != Some(']') {
                        return err(self.pos, "expected `]`");
                    }
                    self.pos += 1;
                }
                Some(c) => return err(self.pos, format!("unexpected `{c}`: expected `.` or `[`")),
            }
        }
    }

    fn bracket(&mut self, open: usize, in_selector: bool) -> Result<Step, PathError> {
        let start = self.pos;
        match self.peek() {
            None | Some(']') => err(open, "empty brackets: write an index such as [0]"),
            Some('"') => {
                let key = self.quoted()?;
                if self.peek() == Some('=') {
                    self.pos = start;
                    self.selector(in_selector)
                } else {
                    Ok(Step::Key(key))
                }
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let mut end = self.pos + 1;
                while self.chars.get(end).is_some_and(char::is_ascii_digit) {
                    end += 1;
                }
                if self.chars.get(end) == Some(&']') {
                    let digits: String = self.chars.get(start..end).unwrap_or_default().iter().collect();
                    self.pos = end;
                    match digits.parse::<i64>() {
                        Ok(n) => Ok(Step::Index(n)),
                        Err(_) => err(start, format!("`{digits}` is not an index")),
                    }
                } else {
                    self.selector(in_selector)
                }
            }
            Some(_) => self.selector(in_selector),
        }
    }

    fn selector(&mut self, in_selector: bool) -> Result<Step, PathError> {
        if in_selector {
            return err(self.pos, "a selector's path may not contain another selector");
        }
        let start = self.pos;
        let path = self.steps(&['=', ']'], true)?;
        if self.peek() != Some('=') {
            return err(start, "expected an index such as [0] or a selector such as [type=email]");
        }
        self.pos += 1;
        let value = match self.peek() {
            Some('"') => self.quoted()?,
            _ => {
                let s = self.pos;
                while self.peek().is_some_and(|c| c != ']') {
                    self.pos += 1;
                }
                let v: String = self.chars.get(s..self.pos).unwrap_or_default().iter().collect();
                if v.is_empty() {
                    return err(s, "expected a value after `=`");
                }
                v
            }
        };
        Ok(Step::Select { path, value })
    }
}

impl Path {
    /// Parses a path; see the module documentation for the syntax.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let mut p = Parser { chars: text.chars().collect(), pos: 0, text };
        if p.chars.is_empty() {
            return err(0, "empty path");
        }
        let steps = p.steps(&[], false)?;
        if p.pos != p.chars.len() {
            return err(p.pos, "unexpected text");
        }
        Ok(Self { text: p.text.to_owned(), steps })
    }

    /// A path of one top-level key, taken literally.
    pub fn key(key: &str) -> Self {
        Self { text: quote_if_needed(key), steps: vec![Step::Key(key.to_owned())] }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The top-level key the path starts at.
    pub fn top_key(&self) -> &str {
        match self.steps.first() {
            Some(Step::Key(k)) => k,
            _ => "",
        }
    }

    /// The value the path points at, if there is one.
    pub fn get<'v>(&self, root: &'v serde_json::Map<String, Value>) -> Option<&'v Value> {
        self.resolve(root, None)
    }

    /// Like [`Path::get`], also recording the concrete location.
    pub(crate) fn resolve<'v>(
        &self,
        root: &'v serde_json::Map<String, Value>,
        mut at: Option<&mut Vec<At<'v>>>,
    ) -> Option<&'v Value> {
        let (first, rest) = self.steps.split_first()?;
        let Step::Key(k) = first else { return None };
        let (k, mut cur) = root.get_key_value(k)?;
        if let Some(at) = at.as_deref_mut() {
            at.clear();
            at.push(At::Key(k));
        }
        for step in rest {
            let (next, loc) = step_into(cur, step)?;
            cur = next;
            if let Some(at) = at.as_deref_mut() {
                at.push(loc);
            }
        }
        Some(cur)
    }
}

fn index_of(len: usize, i: i64) -> Option<usize> {
    if i >= 0 {
        let i = usize::try_from(i).ok()?;
        (i < len).then_some(i)
    } else {
        let back = usize::try_from(i.checked_neg()?).ok()?;
        len.checked_sub(back)
    }
}

fn step_into<'v>(cur: &'v Value, step: &Step) -> Option<(&'v Value, At<'v>)> {
    match (step, cur) {
        (Step::Key(k), Value::Object(m)) => m.get_key_value(k).map(|(k, v)| (v, At::Key(k))),
        (Step::Index(i), Value::Array(a)) => {
            let i = index_of(a.len(), *i)?;
            Some((a.get(i)?, At::Index(i)))
        }
        (Step::Select { path, value }, Value::Array(a)) => {
            a.iter().enumerate().find(|(_, el)| selects(el, path, value)).map(|(i, el)| (el, At::Index(i)))
        }
        _ => None,
    }
}

fn selects(el: &Value, path: &[Step], want: &str) -> bool {
    let mut cur = el;
    for step in path {
        match step_into(cur, step) {
            Some((next, _)) => cur = next,
            None => return false,
        }
    }
    match cur {
        Value::String(s) => s == want,
        Value::Number(n) => n.to_string() == want,
        Value::Bool(b) => (if *b { "true" } else { "false" }) == want,
        _ => false,
    }
}

/// Removes the value at `at` (relative to `v`) and prunes containers that the removal left
/// empty; returns whether `v` itself is now an empty container because of it.
pub(crate) fn remove_at(v: &mut Value, at: &[At]) -> bool {
    let Some((first, rest)) = at.split_first() else { return false };
    let removed = match (&mut *v, first) {
        (Value::Object(m), At::Key(k)) => {
            let remove = rest.is_empty() || m.get_mut(*k).is_some_and(|child| remove_at(child, rest));
            remove && m.remove(*k).is_some()
        }
        (Value::Array(a), At::Index(i)) => {
            let remove = *i < a.len() && (rest.is_empty() || a.get_mut(*i).is_some_and(|child| remove_at(child, rest)));
            if remove {
                a.remove(*i);
            }
            remove
        }
        _ => return false,
    };
    removed && is_empty_container_of(v)
}

fn is_empty_container_of(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Renders a concrete location in path syntax, e.g. `answers[2].text`.
pub(crate) fn render(at: &[At]) -> String {
    let mut out = String::new();
    for (n, step) in at.iter().enumerate() {
        match step {
            At::Key(k) => {
                if n > 0 {
                    out.push('.');
                }
                out.push_str(&quote_if_needed(k));
            }
            At::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// A key as a path segment: bare when it can be, quoted otherwise.
pub fn quote_if_needed(key: &str) -> String {
    let plain =
        !key.is_empty() && key.trim() == key && !key.chars().any(|c| matches!(c, '.' | '[' | ']' | '"' | '\\' | '='));
    if plain {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for c in key.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(s: &str) -> Step {
        Step::Key(s.to_owned())
    }

    fn p(s: &str) -> Vec<Step> {
        Path::parse(s).unwrap().steps
    }

    #[test]
    fn parses_keys_indexes_quotes_and_selectors() {
        assert_eq!(p("email"), vec![key("email")]);
        assert_eq!(p("contact.email"), vec![key("contact"), key("email")]);
        assert_eq!(p("answers[2].text"), vec![key("answers"), Step::Index(2), key("text")]);
        assert_eq!(p("a[-1]"), vec![key("a"), Step::Index(-1)]);
        assert_eq!(p(r#"data.fields."Work Email""#), vec![key("data"), key("fields"), key("Work Email")]);
        assert_eq!(p(r#"data.fields["Work Email"]"#), vec![key("data"), key("fields"), key("Work Email")]);
        assert_eq!(p("Work Email"), vec![key("Work Email")]);
        assert_eq!(p(r#""No. of employees""#), vec![key("No. of employees")]);
        assert_eq!(p(r#""a\"b\\c""#), vec![key("a\"b\\c")]);
        assert_eq!(
            p("answers[field.ref=email].email"),
            vec![
                key("answers"),
                Step::Select { path: vec![key("field"), key("ref")], value: "email".into() },
                key("email")
            ]
        );
        assert_eq!(
            p(r#"cols[column_id="FULL NAME"].v"#),
            vec![key("cols"), Step::Select { path: vec![key("column_id")], value: "FULL NAME".into() }, key("v")]
        );
        assert_eq!(p("rows[0=x]"), vec![key("rows"), Step::Select { path: vec![key("0")], value: "x".into() }]);
    }

    #[test]
    fn rejects_bad_syntax_with_offsets() {
        for (text, offset) in [
            ("", 0),
            ("a.", 2),
            (".a", 0),
            ("a..b", 2),
            ("a[", 1),
            ("a[]", 1),
            ("a[0", 2),
            ("a]", 1),
            (r#""abc"#, 0),
            (r#"a."b"c"#, 5),
            (" a", 0),
            ("a. b", 2),
            ("a[x]", 2),
            ("a[x=]", 4),
            ("a[b[c=1]=2]", 4),
            (r#""a\n""#, 2),
            ("a[99999999999999999999]", 2),
        ] {
            let e = Path::parse(text).unwrap_err();
            assert_eq!(e.offset, offset, "{text:?}: {e}");
        }
    }

    #[test]
    fn resolves_nested_values() {
        let rec = json!({
            "contact": {"email": "a@example.com", "tags": ["x", "y"]},
            "answers": [
                {"field": {"ref": "name"}, "text": "Ada"},
                {"field": {"ref": "email"}, "email": "ada@example.com"},
                {"field": {"ref": 7}, "number": 7}
            ],
            "No. of employees": 50
        });
        let rec = rec.as_object().unwrap();
        let get = |s: &str| Path::parse(s).unwrap().get(rec).cloned();
        assert_eq!(get("contact.email"), Some(json!("a@example.com")));
        assert_eq!(get("contact.tags[1]"), Some(json!("y")));
        assert_eq!(get("contact.tags[-1]"), Some(json!("y")));
        assert_eq!(get("contact.tags[-3]"), None);
        assert_eq!(get("contact.tags[2]"), None);
        assert_eq!(get("answers[0].text"), Some(json!("Ada")));
        assert_eq!(get("answers[field.ref=email].email"), Some(json!("ada@example.com")));
        assert_eq!(get("answers[field.ref=7].number"), Some(json!(7)));
        assert_eq!(get("answers[field.ref=phone].phone"), None);
        assert_eq!(get(r#""No. of employees""#), Some(json!(50)));
        assert_eq!(get("contact[0]"), None);
        assert_eq!(get("contact.email.x"), None);
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn removal_prunes_emptied_containers() {
        let mut v = json!({"a": {"b": 1}, "c": [{"d": 1}, {"d": 2, "e": 3}], "f": {}});
        assert!(!remove_at(&mut v, &[At::Key("a"), At::Key("b")]));
        assert_eq!(v, json!({"c": [{"d": 1}, {"d": 2, "e": 3}], "f": {}}));
        assert!(!remove_at(&mut v, &[At::Key("c"), At::Index(1), At::Key("d")]));
        assert!(!remove_at(&mut v, &[At::Key("c"), At::Index(0), At::Key("d")]));
        assert_eq!(v, json!({"c": [{"e": 3}], "f": {}}));
        assert!(!remove_at(&mut v, &[At::Key("nope")]));
    }

    #[test]
    fn renders_and_quotes() {
        assert_eq!(render(&[At::Key("a"), At::Index(2), At::Key("Work Email")]), "a[2].Work Email");
        assert_eq!(render(&[At::Key("a.b")]), r#""a.b""#);
        assert_eq!(quote_if_needed(" x"), r#"" x""#);
        assert_eq!(Path::key("a.b").steps(), &[key("a.b")]);
    }
}
