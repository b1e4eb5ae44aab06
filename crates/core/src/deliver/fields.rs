//! `[destinations.fields]`, `[destinations.values.FIELD]` and `[destinations.owners]`:
//! what a CRM destination receives beyond its built-in table, and how reps become the
//! destination's users. Each problem is reported at the key that has it.

use super::DestinationConfig;
use super::crm::{bad_crm_name, owner_field, sends_by_default, unmappable};
use crate::config::read::{Problems, span};
use crate::feedback::CrmKind;
use std::collections::BTreeMap;
use toml_edit::{Item, TableLike};

/// `fields`: leadflow path → CRM property. Dotted keys written bare (`custom.budget =
/// "budget__c"`) nest in TOML; they are read back as the path they spell.
pub(super) fn read_fields(p: &mut Problems, item: &Item, path: &str, kind: Option<&str>, d: &mut DestinationConfig) {
    let Some(table) = item.as_table_like() else {
        p.push(span(item), path, "must be a table of leadflow_field = \"crm_property\"");
        return;
    };
    if CrmKind::parse(kind.unwrap_or_default()).is_none() {
        p.push(span(item), path, "only hubspot and salesforce destinations take fields");
        return;
    }
    let mut flat = Vec::new();
    flatten(table, "", &mut flat);
    let mut by_target: BTreeMap<String, String> = BTreeMap::new();
    for (leadflow, value) in flat {
        let at = format!("{path}.{leadflow}");
        if let Some(why) = unmappable(&leadflow) {
            p.push(span(value), &at, why);
            continue;
        }
        let Some(target) = value.as_str().map(str::trim) else {
            p.push(span(value), &at, "must be the name of a CRM property, as a string");
            continue;
        };
        if let Some(why) = bad_crm_name(target) {
            p.push(span(value), &at, why);
            continue;
        }
        if let Some(first) = by_target.get(target) {
            p.push(span(value), &at, format!("{target} already receives {first}"));
            continue;
        }
        by_target.insert(target.to_owned(), leadflow.clone());
        d.fields.insert(leadflow, target.to_owned());
    }
}

fn flatten<'i>(table: &'i dyn TableLike, prefix: &str, out: &mut Vec<(String, &'i Item)>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
        match value.as_table_like() {
            Some(nested) => flatten(nested, &path, out),
            None => out.push((path, value)),
        }
    }
}

/// `values`: CRM field → (leadflow value → CRM value).
pub(super) fn read_values(p: &mut Problems, item: &Item, path: &str, kind: Option<&str>, d: &mut DestinationConfig) {
    let Some(table) = item.as_table_like() else {
        p.push(span(item), path, "must be tables of values per CRM field: [destinations.values.lifecyclestage]");
        return;
    };
    if CrmKind::parse(kind.unwrap_or_default()).is_none() {
        p.push(span(item), path, "only hubspot and salesforce destinations take values");
        return;
    }
    for (field, map) in table.iter() {
        let at = format!("{path}.{field}");
        if let Some(why) = bad_crm_name(field) {
            p.push(span(map), &at, why);
            continue;
        }
        let Some(map) = map.as_table_like() else {
            p.push(span(map), &at, "must be a table of leadflow_value = \"crm_value\"");
            continue;
        };
        let mut values = BTreeMap::new();
        for (from, to) in map.iter() {
            match to.as_str() {
                Some(to) if !to.trim().is_empty() && !from.trim().is_empty() => {
                    values.insert(from.trim().to_owned(), to.trim().to_owned());
                }
                _ => p.push(span(to), &format!("{at}.{from}"), "must be the CRM's value, a non-empty string"),
            }
        }
        d.values.insert(field.to_owned(), values);
    }
}

/// `owners`: rep → the destination's user id.
pub(super) fn read_owners(p: &mut Problems, item: &Item, path: &str, kind: Option<&str>, d: &mut DestinationConfig) {
    let Some(table) = item.as_table_like() else {
        p.push(span(item), path, "must be a table of rep = \"user id\"");
        return;
    };
    if !matches!(kind, Some("hubspot" | "salesforce" | "slack")) {
        p.push(
            span(item),
            path,
            "only hubspot, salesforce and slack destinations take owners: a webhook has no owner field and \
             receives the lead's owner as it is",
        );
        return;
    }
    for (rep, id) in table.iter() {
        match id.as_str().map(str::trim) {
            Some(id) if !id.is_empty() && !rep.trim().is_empty() => {
                d.owners.insert(rep.trim().to_owned(), id.to_owned());
            }
            _ => p.push(span(id), &format!("{path}.{rep}"), "must be the user's id in the destination, a string"),
        }
    }
}

/// Checks that need the whole destination: the owner is sent only through `owners`, and
/// a value map needs a field that is sent.
pub(super) fn check(p: &mut Problems, at: &str, t: &toml_edit::Table, d: &DestinationConfig) {
    let Some(crm) = CrmKind::parse(&d.kind) else { return };
    let field_span = |key: &str| {
        let fields = t.get("fields")?;
        fields.as_table_like()?.get(key).and_then(span).or_else(|| span(fields))
    };
    if d.fields.contains_key("owner") && d.owners.is_empty() {
        p.push(
            field_span("owner"),
            &format!("{at}.fields.owner"),
            "the owner is sent through [destinations.owners] (rep = CRM user id), which this destination lacks",
        );
    }
    let owner_target = d.fields.get("owner").map_or(owner_field(crm), String::as_str);
    for field in d.values.keys() {
        let sent = sends_by_default(crm, field) || d.fields.values().any(|f| f == field);
        let why = if field == owner_target {
            format!("{field} is the owner field: reps become its ids through [destinations.owners]")
        } else if !sent {
            format!(
                "no field of this destination is sent to {field}: map one first, e.g. [destinations.fields] \
                 lifecycle_stage = \"{field}\""
            )
        } else {
            continue;
        };
        let span = t.get("values").and_then(|v| v.as_table_like()?.get(field).and_then(span));
        p.push(span, &format!("{at}.values.{field}"), why);
    }
}
