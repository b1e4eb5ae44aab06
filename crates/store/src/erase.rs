//! What both backends do alike when erasing a person, beside their SQL: blanking the
//! person's lines in finished import reports, and finding a JSON string in stored text.

use std::collections::BTreeSet;

/// An import report (`row,external_id,outcome,lead_id,errors`, as the import writes it)
/// with the external id blanked on every line about one of `leads` or naming one of
/// `external_ids`; the line stays, so the report still adds up. `None` when no line is
/// about the person. The errors column names fields, never their values, and stays.
pub(crate) fn blank_report(
    report: &[u8],
    leads: &BTreeSet<String>,
    external_ids: &BTreeSet<String>,
) -> Option<(Vec<u8>, u64)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(report);
    let mut records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().ok()?;
    let header = records.first()?;
    let column = |name: &str| header.iter().position(|h| h == name);
    let (external, lead) = (column("external_id")?, column("lead_id")?);
    let mut blanked = 0;
    for record in records.iter_mut().skip(1) {
        let about_lead = record.get(lead).is_some_and(|l| leads.contains(l));
        let names_person = record.get(external).is_some_and(|e| {
            // The report neutralizes cells a spreadsheet would run: `'=x` was `=x`.
            let plain = e.strip_prefix('\'').filter(|rest| rest.starts_with(['=', '+', '-', '@', '\t', '\r']));
            external_ids.contains(plain.unwrap_or(e))
        });
        if (about_lead || names_person) && record.get(external).is_some_and(|e| !e.is_empty()) {
            *record = record.iter().enumerate().map(|(i, cell)| if i == external { "" } else { cell }).collect();
            blanked += 1;
        }
    }
    if blanked == 0 {
        return None;
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in &records {
        writer.write_record(record).ok()?;
    }
    Some((writer.into_inner().ok()?, blanked))
}

/// `value` as a JSON string literal, to find a stored document that holds exactly that
/// string (a payload's email) without also finding longer ones that contain it.
pub(crate) fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_persons_lines_lose_their_external_id() {
        let report = "row,external_id,outcome,lead_id,errors\n\
                      2,crm-1,created,L1,\n\
                      3,crm-2,created,L2,\n\
                      4,'=crm-3,rejected,,email: not a valid email address\n";
        let leads = BTreeSet::from(["L1".to_owned()]);
        let external = BTreeSet::from(["=crm-3".to_owned()]);
        let (blanked, n) = blank_report(report.as_bytes(), &leads, &external).expect("changed");
        assert_eq!(n, 2);
        assert_eq!(
            String::from_utf8(blanked).unwrap(),
            "row,external_id,outcome,lead_id,errors\n2,,created,L1,\n3,crm-2,created,L2,\n4,,rejected,,email: not a valid email address\n"
        );
        assert!(blank_report(report.as_bytes(), &BTreeSet::from(["L9".to_owned()]), &BTreeSet::new()).is_none());
    }

    #[test]
    fn json_strings_are_quoted_and_escaped() {
        assert_eq!(json_string("ada@example.com"), "\"ada@example.com\"");
        assert_eq!(json_string("a\"b"), "\"a\\\"b\"");
    }
}
