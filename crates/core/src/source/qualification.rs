//! A source's qualification table: which standard field (or custom field) a chat bot's
//! question fills, e.g. `qualification = { "What's your team size?" = "employee_count" }`.
//!
//! Questions are matched case-insensitively with their blank runs collapsed and a
//! trailing `?`, `:` or `*` ignored, so "what's your team size" finds the entry above.
//! A target is a standard field or `custom.NAME`; anything else is a configuration error
//! at `sources[i].qualification."QUESTION"`. Questions the table does not name are left
//! to the label table every adapter uses (synonyms such as "Company size"), and stay
//! custom fields under their question otherwise.

use crate::config::read::{Problems, span};
use crate::mapping::{STANDARD_FIELDS, standard_field};
use toml_edit::Item;

/// Where an answer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerTarget {
    /// A standard field.
    Field(&'static str),
    /// `custom.NAME`.
    Custom(String),
}

/// Question → target, as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Qualification {
    entries: Vec<(String, AnswerTarget)>,
}

impl Qualification {
    /// A table from (question, target) pairs; `None` when a target is neither a
    /// standard field nor `custom.NAME`.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let entries = pairs.into_iter().map(|(q, t)| Some((fold(q), target(t)?))).collect::<Option<Vec<_>>>()?;
        Some(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the answer to `question` goes, if the table says.
    pub fn target(&self, question: &str) -> Option<&AnswerTarget> {
        let q = fold(question);
        self.entries.iter().find(|(k, _)| *k == q).map(|(_, t)| t)
    }
}

fn target(name: &str) -> Option<AnswerTarget> {
    if let Some(field) = standard_field(name) {
        return Some(AnswerTarget::Field(field));
    }
    name.strip_prefix("custom.").filter(|n| !n.trim().is_empty()).map(|n| AnswerTarget::Custom(n.to_owned()))
}

/// Lowercase, blank runs collapsed, a trailing `?`, `:` or `*` dropped.
fn fold(question: &str) -> String {
    let words: Vec<&str> = question.split_whitespace().collect();
    words.join(" ").trim_end_matches(['?', ':', '*', ' ']).to_lowercase()
}

/// Reads `qualification = { "QUESTION" = "TARGET", … }` (or a `[sources.qualification]`
/// table), every bad entry reported at its path.
pub(crate) fn read(p: &mut Problems, item: &Item, path: &str) -> Qualification {
    let Some(table) = item.as_table_like() else {
        p.push(span(item), path, "must be a table of \"question\" = \"standard field or custom.NAME\"");
        return Qualification::default();
    };
    let mut entries = Vec::new();
    for (question, value) in table.iter() {
        let at = format!("{path}.{question:?}");
        match value.as_str().and_then(target) {
            Some(t) if !fold(question).is_empty() => entries.push((fold(question), t)),
            Some(_) => p.push(span(value), &at, "the question is empty"),
            None => p.push(
                span(value),
                &at,
                format!("must be a standard field ({}) or \"custom.NAME\"", STANDARD_FIELDS.join(", ")),
            ),
        }
    }
    Qualification { entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_match_loosely_and_targets_are_fields_or_custom() {
        let q =
            Qualification::new([("What's your team size?", "employee_count"), ("Budget", "custom.budget")]).unwrap();
        assert_eq!(q.target("what's  your TEAM size"), Some(&AnswerTarget::Field("employee_count")));
        assert_eq!(q.target("Budget:"), Some(&AnswerTarget::Custom("budget".into())));
        assert_eq!(q.target("Timeline?"), None);
        assert_eq!(Qualification::new([("x", "team_size")]), None);
        assert_eq!(Qualification::new([("x", "custom.")]), None);
    }
}
