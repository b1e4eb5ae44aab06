//! `[feedback]` and a CRM destination's `[destinations.feedback]`: which stage each CRM
//! status moves a lead to, how one CRM's own values read as statuses and reasons, and
//! the secret its notifications are checked with. Stages and reasons are checked
//! against the lifecycle contract.

use super::{CrmKind, CrmMapping, FeedbackRules, FeedbackStatus, MappedStatus};
use crate::config::read::{Problems, span};
use crate::scoring::LifecycleContract;
use std::collections::BTreeMap;
use std::ops::Range;
use toml_edit::{Item, Table, TableLike};

/// `[feedback]`: `stages = { STATUS = "stage" }`, `reasons = { "CRM text" = "reason" }`.
pub(crate) fn read(p: &mut Problems, t: &Table, contract: &LifecycleContract) -> FeedbackRules {
    let mut rules = FeedbackRules::default();
    for (key, item) in t.iter() {
        let path = format!("feedback.{key}");
        match key {
            "stages" => {
                let Some(table) = item.as_table_like() else {
                    p.push(span(item), &path, "must be a table of status = \"stage\"");
                    continue;
                };
                for (status, stage) in table.iter() {
                    let at = format!("{path}.{status}");
                    let Some(status) = FeedbackStatus::parse(status) else {
                        let names: Vec<&str> = FeedbackStatus::ALL.iter().map(FeedbackStatus::as_str).collect();
                        p.push(span(stage), &at, format!("not a feedback status ({})", names.join(", ")));
                        continue;
                    };
                    match stage.as_str() {
                        Some(s) if contract.has_stage(s) => {
                            rules.stages.insert(status, s.to_owned());
                        }
                        _ => p.push(span(stage), &at, "must name a stage of the lifecycle contract"),
                    }
                }
            }
            "reasons" => rules.reasons = reason_map(p, item, &path, contract),
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    rules
}

/// `{ "CRM text" = "picklist reason" }`, keys compared lower-cased.
fn reason_map(p: &mut Problems, item: &Item, path: &str, contract: &LifecycleContract) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(table) = item.as_table_like() else {
        p.push(span(item), path, "must be a table of \"CRM reason\" = \"reason\"");
        return out;
    };
    let picklist = contract.disqualify_reasons();
    for (text, reason) in table.iter() {
        match reason.as_str() {
            Some(r) if !r.trim().is_empty() && (picklist.is_empty() || picklist.iter().any(|known| known == r)) => {
                out.insert(text.trim().to_lowercase(), r.to_owned());
            }
            _ => p.push(
                span(reason),
                &format!("{path}.{text}"),
                format!("must be one of the disqualify_reasons: {}", picklist.join(", ")),
            ),
        }
    }
    out
}

/// `[destinations.feedback]` of a HubSpot or Salesforce destination.
pub(crate) fn read_crm(
    p: &mut Problems,
    t: &dyn TableLike,
    t_span: Option<Range<usize>>,
    kind: CrmKind,
    at: &str,
    contract: &LifecycleContract,
) -> Option<CrmMapping> {
    let mut mapping = CrmMapping::defaults(kind, String::new());
    let mut secret = None;
    for (key, item) in t.iter() {
        let path = format!("{at}.{key}");
        match key {
            "secret_env" => secret = p.env_name(item, &path),
            "organization_id" if kind == CrmKind::Salesforce => match p.string(item, &path) {
                Some(s) if (s.len() == 15 || s.len() == 18) && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    mapping.organization_id = Some(s.to_owned())
                }
                Some(_) => p.push(span(item), &path, "must be a Salesforce organization id (15 or 18 characters)"),
                None => {}
            },
            "portal_id" if kind == CrmKind::HubSpot => {
                match item.as_integer().map(|n| n.to_string()).or_else(|| item.as_str().map(str::to_owned)) {
                    Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                        mapping.portal_id = Some(id)
                    }
                    _ => p.push(span(item), &path, "must be the HubSpot account (portal) id, digits"),
                }
            }
            "status_fields" => match item
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            {
                Some(Some(fields)) if !fields.is_empty() => mapping.status_fields = fields,
                _ => p.push(span(item), &path, "must be a non-empty list of field names"),
            },
            "reason_field" | "owner_field" => {
                if let Some(s) = p.string(item, &path) {
                    let value = (!s.trim().is_empty()).then(|| s.trim().to_owned());
                    if key == "reason_field" { mapping.reason_field = value } else { mapping.owner_field = value }
                }
            }
            "statuses" => match item.as_table_like() {
                Some(table) => {
                    for (value, meaning) in table.iter() {
                        match meaning.as_str().and_then(MappedStatus::parse) {
                            Some(m) => {
                                mapping.statuses.insert(value.trim().to_lowercase(), m);
                            }
                            None => p.push(
                                span(meaning),
                                &format!("{path}.{value}"),
                                "must be \"ignore\", a feedback status, or STATUS:REASON (e.g. \"lost:bad_timing\")",
                            ),
                        }
                    }
                }
                None => p.push(span(item), &path, "must be a table of \"CRM value\" = \"status\""),
            },
            "reasons" => mapping.reasons = reason_map(p, item, &path, contract),
            _ => p.push(span(item), &path, "unknown key"),
        }
    }
    let Some(secret) = secret else {
        let what = match kind {
            CrmKind::HubSpot => "the app's client secret (v3 signatures)",
            CrmKind::Salesforce => "the ?token= shared with the outbound message URL",
        };
        p.push(t_span, at, format!("feedback needs secret_env: the variable holding {what}"));
        return None;
    };
    if kind == CrmKind::Salesforce && mapping.organization_id.is_none() {
        p.push(t_span, at, "salesforce feedback needs organization_id: outbound messages are checked against it");
        return None;
    }
    mapping.secret_env = secret;
    Some(mapping)
}
