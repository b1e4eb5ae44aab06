//! Per-source mapping specs: parsed from the `[sources.mapping]` table of `leadflow.toml`.

use crate::mapping::path::{Path, PathError};
use crate::mapping::synonyms::{HeaderMatch, STANDARD_FIELDS, classify_header, standard_field};
use std::fmt;
use std::ops::Range;
use toml_edit::{Item, Table, TableLike, Value};

/// Where a spec entry puts its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecTarget {
    /// A standard field.
    Field(&'static str),
    /// A full name, split into `first_name` and `last_name` (those not set by the spec).
    FullName,
    /// `custom.NAME`.
    Custom(String),
    /// The consent object.
    Consent,
}

impl fmt::Display for SpecTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => f.write_str(name),
            Self::FullName => f.write_str("full_name"),
            Self::Custom(name) => write!(f, "custom.{name}"),
            Self::Consent => f.write_str("consent"),
        }
    }
}

/// Where a spec entry reads its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecSource {
    /// `field = "path"`.
    Path(Path),
    /// `field = ["path", "other.path"]`: the first that is present and not blank.
    FirstOf(Vec<Path>),
    /// `field = { join = ["a", "b"], separator = ", " }`: the scalar, non-blank values
    /// found, as text, joined.
    Join { paths: Vec<Path>, separator: String },
}

/// One `target = source` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecEntry {
    pub target: SpecTarget,
    pub source: SpecSource,
}

/// A source's mapping: explicit entries, deliberately dropped paths, and whether the
/// built-in synonym table applies to the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingSpec {
    /// In file order.
    pub entries: Vec<SpecEntry>,
    /// Paths dropped on purpose: the only way anything leaves a record unrecorded.
    pub ignore: Vec<Path>,
    /// `synonyms = false` restricts automatic matching to keys that are a standard field's
    /// own name (up to case and separators) and turns off full-name splitting of keys.
    pub synonyms: bool,
}

impl Default for MappingSpec {
    fn default() -> Self {
        Self { entries: Vec::new(), ignore: Vec::new(), synonyms: true }
    }
}

/// One problem in a mapping table, located in the configuration text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Byte range in the parsed document, when toml_edit knows it.
    pub span: Option<Range<usize>>,
    /// The key inside the mapping table, e.g. `street.join[1]` or `ignore[0]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for SpecError {}

const SOURCE_HELP: &str = r#"must be a path ("contact.email"), a list of paths (first non-blank wins) or { join = ["a", "b"], separator = " " }"#;

struct Parser {
    errors: Vec<SpecError>,
}

impl Parser {
    fn error(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.errors.push(SpecError { span, key: key.to_owned(), message: message.into() });
    }

    /// Parses a path held by a TOML string; errors point at the offending character when
    /// the string is written without escapes.
    fn path(&mut self, text: &str, span: Option<Range<usize>>, key: &str) -> Option<Path> {
        match Path::parse(text) {
            Ok(p) => Some(p),
            Err(PathError { offset, message }) => {
                let span = span.map(|s| narrow(s, text, offset));
                self.error(span, key, format!("bad path `{text}`: {message}"));
                None
            }
        }
    }

    fn string_path(&mut self, v: &Value, key: &str) -> Option<Path> {
        match v.as_str() {
            Some(s) => self.path(s, v.span(), key),
            None => {
                self.error(v.span(), key, "must be a path string");
                None
            }
        }
    }

    fn path_list(
        &mut self,
        item: Option<&Value>,
        key: &str,
        span: Option<Range<usize>>,
        allow_empty: bool,
    ) -> Option<Vec<Path>> {
        let Some(arr) = item.and_then(Value::as_array) else {
            self.error(span, key, r#"must be a list of paths, e.g. ["addr1", "addr2"]"#);
            return None;
        };
        if arr.is_empty() && !allow_empty {
            self.error(arr.span().or(span), key, "must list at least one path");
            return None;
        }
        let before = self.errors.len();
        let paths: Vec<Path> =
            arr.iter().enumerate().filter_map(|(i, v)| self.string_path(v, &format!("{key}[{i}]"))).collect();
        (self.errors.len() == before).then_some(paths)
    }

    fn source(&mut self, item: &Item, key: &str, key_span: Option<Range<usize>>) -> Option<SpecSource> {
        let span = item.span().or(key_span.clone());
        if let Some(s) = item.as_str() {
            return self.path(s, span, key).map(SpecSource::Path);
        }
        if let Some(arr) = item.as_array() {
            let v = Value::Array(arr.clone());
            return self.path_list(Some(&v), key, span, false).map(SpecSource::FirstOf);
        }
        if let Some(t) = item.as_table_like() {
            return self.join(t, key, span);
        }
        self.error(span, key, SOURCE_HELP);
        None
    }

    fn join(&mut self, t: &dyn TableLike, key: &str, span: Option<Range<usize>>) -> Option<SpecSource> {
        let mut paths = None;
        let mut separator = Some(" ".to_owned());
        let mut saw_join = false;
        for (k, item) in t.iter() {
            let sub = format!("{key}.{k}");
            let k_span = t.key(k).and_then(|k| k.span());
            match k {
                "join" => {
                    saw_join = true;
                    paths = self.path_list(item.as_value(), &sub, item.span().or(k_span), false);
                }
                "separator" => {
                    separator = item.as_str().map(str::to_owned);
                    if separator.is_none() {
                        self.error(item.span().or(k_span), &sub, r#"must be a string, e.g. ", ""#);
                    }
                }
                _ => self.error(k_span, &sub, "unknown key: a join takes `join` and `separator`"),
            }
        }
        if !saw_join {
            self.error(span, key, SOURCE_HELP);
        }
        Some(SpecSource::Join { paths: paths?, separator: separator? })
    }

    fn target(&mut self, name: &str, span: Option<Range<usize>>) -> Option<SpecTarget> {
        if let Some(field) = standard_field(name) {
            return Some(SpecTarget::Field(field));
        }
        match name {
            "full_name" => return Some(SpecTarget::FullName),
            "consent" => return Some(SpecTarget::Consent),
            _ => {}
        }
        if let Some(custom) = name.strip_prefix("custom.") {
            if custom.is_empty() {
                self.error(span, name, "empty custom field name: write \"custom.NAME\"");
                return None;
            }
            return Some(SpecTarget::Custom(custom.to_owned()));
        }
        let hint = match classify_header(name) {
            Some(HeaderMatch::Field { field, .. }) => format!("; did you mean `{field}`?"),
            Some(HeaderMatch::FullName) => "; did you mean `full_name`?".to_owned(),
            None if name == "source" => "; `source` is the API envelope, not a lead field".to_owned(),
            None => format!(
                "; write a standard field ({}), full_name, consent, \"custom.NAME\", ignore or synonyms",
                STANDARD_FIELDS.join(", ")
            ),
        };
        self.error(span, name, format!("unknown standard field `{name}`{hint}"));
        None
    }
}

/// Narrows a string value's span to the character at `offset` when the TOML string is
/// written without escapes (its span is the text plus one quote each side).
fn narrow(span: Range<usize>, text: &str, offset: usize) -> Range<usize> {
    if span.len() != text.len() + 2 {
        return span;
    }
    let byte = text.char_indices().nth(offset).map_or(text.len(), |(b, _)| b);
    let width = text.get(byte..).and_then(|r| r.chars().next()).map_or(1, char::len_utf8);
    let start = span.start + 1 + byte;
    start..(start + width).min(span.end)
}

/// Parses a `[sources.mapping]` table. Every problem is reported, each with the span of
/// the offending key or value.
///
/// Keys: a standard field name, `full_name`, `consent`, `"custom.NAME"` (or a `custom`
/// table of `NAME = source`), `ignore` (a list of paths) and `synonyms` (a boolean). A
/// source is a path string, a list of paths (first non-blank wins) or
/// `{ join = [paths…], separator = " " }`.
pub fn parse_spec(table: &Table) -> Result<MappingSpec, Vec<SpecError>> {
    let mut p = Parser { errors: Vec::new() };
    let mut spec = MappingSpec::default();
    let mut seen: Vec<(SpecTarget, String)> = Vec::new();
    let mut add = |p: &mut Parser, target: SpecTarget, source: SpecSource, key: &str, span: Option<Range<usize>>| {
        if let Some((_, first)) = seen.iter().find(|(t, _)| *t == target) {
            p.error(span, key, format!("`{target}` is already mapped by `{first}`"));
            return;
        }
        seen.push((target.clone(), key.to_owned()));
        spec.entries.push(SpecEntry { target, source });
    };
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        match key {
            "ignore" => {
                let v = item.as_value();
                if let Some(paths) = p.path_list(v, "ignore", item.span().or(key_span), true) {
                    spec.ignore = paths;
                }
            }
            "synonyms" => match item.as_bool() {
                Some(b) => spec.synonyms = b,
                None => p.error(item.span().or(key_span), key, "must be true or false"),
            },
            "custom" if item.is_table_like() => {
                let Some(t) = item.as_table_like() else { continue };
                for (name, sub) in t.iter() {
                    let sub_key = format!("custom.{name}");
                    let sub_span = t.key(name).and_then(|k| k.span());
                    if let Some(source) = p.source(sub, &sub_key, sub_span.clone()) {
                        add(&mut p, SpecTarget::Custom(name.to_owned()), source, &sub_key, sub_span);
                    }
                }
            }
            "custom" => p.error(
                item.span().or(key_span),
                key,
                r#"must be a table of NAME = path, e.g. [sources.mapping.custom] plan = "meta.plan""#,
            ),
            _ => {
                let target = p.target(key, key_span.clone());
                let source = p.source(item, key, key_span.clone());
                if let (Some(target), Some(source)) = (target, source) {
                    add(&mut p, target, source, key, key_span);
                }
            }
        }
    }
    if p.errors.is_empty() { Ok(spec) } else { Err(p.errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml_edit::Document;

    fn parse(text: &str) -> Result<MappingSpec, Vec<SpecError>> {
        let doc = Document::parse(text).unwrap();
        parse_spec(doc.as_table())
    }

    fn errors(text: &str) -> Vec<(String, String, String)> {
        parse(text)
            .unwrap_err()
            .into_iter()
            .map(|e| {
                let at = e.span.clone().map(|s| text[s].to_owned()).unwrap_or_default();
                (e.key, at, e.message)
            })
            .collect()
    }

    fn path(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn parses_every_form() {
        let spec = parse(
            r#"
email = "contact.email"
company = "org_name"
phone = ["phones[0].number", "mobile"]
full_name = "applicant.name"
street = { join = ["addr1", "addr2"], separator = ", " }
city = { join = ["a", "b"] }
"custom.plan" = "meta.plan"
consent = "gdpr"
ignore = ["password", "csrf_token", "meta.secret"]
synonyms = false

[custom]
tier = 'meta."tier.level"'
"#,
        )
        .unwrap();
        assert!(!spec.synonyms);
        assert_eq!(spec.ignore, vec![path("password"), path("csrf_token"), path("meta.secret")]);
        let targets: Vec<String> = spec.entries.iter().map(|e| e.target.to_string()).collect();
        assert_eq!(
            targets,
            ["email", "company", "phone", "full_name", "street", "city", "custom.plan", "consent", "custom.tier"]
        );
        assert_eq!(spec.entries[0].source, SpecSource::Path(path("contact.email")));
        assert_eq!(spec.entries[2].source, SpecSource::FirstOf(vec![path("phones[0].number"), path("mobile")]));
        assert_eq!(
            spec.entries[4].source,
            SpecSource::Join { paths: vec![path("addr1"), path("addr2")], separator: ", ".into() }
        );
        assert_eq!(
            spec.entries[5].source,
            SpecSource::Join { paths: vec![path("a"), path("b")], separator: " ".into() }
        );
        assert_eq!(spec.entries[8].source, SpecSource::Path(path(r#"meta."tier.level""#)));
    }

    #[test]
    fn dotted_and_inline_custom_tables() {
        let spec = parse("custom.plan = \"meta.plan\"\n").unwrap();
        assert_eq!(spec.entries[0].target, SpecTarget::Custom("plan".into()));
        let spec = parse("custom = { plan = \"meta.plan\" }\n").unwrap();
        assert_eq!(spec.entries[0].target, SpecTarget::Custom("plan".into()));
    }

    #[test]
    fn empty_table_is_a_default_spec() {
        assert_eq!(parse("").unwrap(), MappingSpec::default());
    }

    #[test]
    fn every_error_is_reported_with_its_span() {
        let text = r#"
zip = "postcode"
colour = "x"
source = "utm.source"
email = "contact..email"
phone = 5
street = { join = "addr1" }
city = { join = [], separator = 3 }
state = { joinn = ["a"] }
country = ["ok", 7]
"custom." = "x"
custom = "meta"
ignore = "password"
synonyms = "yes"
name = "n"
"#;
        let first = parse(text).unwrap_err().remove(0);
        assert_eq!(first.to_string(), "zip: unknown standard field `zip`; did you mean `postal_code`?");
        let errs = errors(text);
        let expect: &[(&str, &str, &str)] = &[
            ("zip", "zip", "did you mean `postal_code`?"),
            ("colour", "colour", "unknown standard field `colour`"),
            ("source", "source", "API envelope"),
            ("email", ".", "bad path `contact..email`: expected a key"),
            ("phone", "5", "must be a path"),
            ("street.join", "\"addr1\"", "must be a list of paths"),
            ("city.join", "[]", "at least one path"),
            ("city.separator", "3", "must be a string"),
            ("state.joinn", "joinn", "unknown key"),
            ("state", "{ joinn = [\"a\"] }", "must be a path"),
            ("country[1]", "7", "must be a path string"),
            ("custom.", "\"custom.\"", "empty custom field name"),
            ("custom", "\"meta\"", "must be a table"),
            ("ignore", "\"password\"", "must be a list of paths"),
            ("synonyms", "\"yes\"", "true or false"),
            ("name", "name", "did you mean `full_name`?"),
        ];
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        for ((key, at, msg), (ek, eat, emsg)) in errs.iter().zip(expect) {
            assert_eq!(key, ek);
            assert_eq!(at, eat, "span of {key}");
            assert!(msg.contains(emsg), "{key}: {msg}");
        }
    }

    #[test]
    fn path_errors_point_into_the_string() {
        let text = "email = \"a[x=]\"\nphone = \"\"\"a..b\"\"\"\n";
        let errs = parse(text).unwrap_err();
        let s0 = errs[0].span.clone().unwrap();
        assert_eq!(s0.start, text.find("]").unwrap());
        assert_eq!(errs[1].key, "phone");
        assert_eq!(&text[errs[1].span.clone().unwrap()], "\"\"\"a..b\"\"\"");
    }

    #[test]
    fn duplicate_targets_are_errors() {
        let errs = errors("\"custom.plan\" = \"a\"\n[custom]\nplan = \"b\"\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "custom.plan");
        assert_eq!(errs[0].1, "plan");
        assert!(errs[0].2.contains("already mapped"));
    }
}
