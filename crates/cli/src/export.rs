//! `leadflow export`: every surviving lead, a page at a time, as CSV or JSON lines.

use crate::ExportFormat;
use leadflow_core::Lead;
use leadflow_core::lead::STANDARD_FIELDS;
use leadflow_store::DynStore;
use std::io::Write;
use std::path::Path;

const PAGE: usize = 1000;

/// Returns how many leads were written. With `consent`, only the leads that grant every
/// one of those purposes now.
pub async fn export(
    store: &DynStore,
    format: ExportFormat,
    out: Option<&Path>,
    consent: &[String],
) -> Result<u64, String> {
    let sink: Box<dyn Write> = match out {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let sink = std::io::BufWriter::new(sink);
    let mut out = match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(sink);
            w.write_record(header()).map_err(|e| e.to_string())?;
            Out::Csv(Box::new(w))
        }
        ExportFormat::Jsonl => Out::Jsonl(sink),
        ExportFormat::Parquet => return Err("parquet is exported as files of the change feed".into()),
    };
    let mut after = None;
    let mut count = 0u64;
    loop {
        let page = store.list_leads(after, PAGE).await.map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for lead in page.iter().filter(|l| leadflow_core::consent::missing(l.consent.as_ref(), consent).is_empty()) {
            match &mut out {
                Out::Csv(w) => w.write_record(row(lead).iter().map(|c| neutralize(c))).map_err(|e| e.to_string())?,
                Out::Jsonl(w) => {
                    serde_json::to_writer(&mut *w, lead).map_err(|e| e.to_string())?;
                    w.write_all(b"\n").map_err(|e| e.to_string())?;
                }
            }
            count += 1;
        }
    }
    match &mut out {
        Out::Csv(w) => w.flush(),
        Out::Jsonl(w) => w.flush(),
    }
    .map_err(|e| e.to_string())?;
    Ok(count)
}

enum Out {
    Csv(Box<csv::Writer<std::io::BufWriter<Box<dyn Write>>>>),
    Jsonl(std::io::BufWriter<Box<dyn Write>>),
}

pub(crate) fn header() -> Vec<&'static str> {
    let mut h = vec!["id"];
    h.extend_from_slice(STANDARD_FIELDS);
    h.extend_from_slice(&[
        "custom",
        "lifecycle_stage",
        "score",
        "owner",
        "original_source",
        "latest_source",
        "created_at",
        "updated_at",
    ]);
    h
}

pub(crate) fn row(lead: &Lead) -> Vec<String> {
    let mut r = vec![lead.id.to_string()];
    r.extend(STANDARD_FIELDS.iter().map(|f| lead.fields.text(f).unwrap_or_default()));
    let timestamp =
        |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    r.extend([
        if lead.custom.is_empty() { String::new() } else { serde_json::Value::Object(lead.custom.clone()).to_string() },
        lead.lifecycle_stage.as_str().to_owned(),
        lead.score.map(|s| s.to_string()).unwrap_or_default(),
        lead.owner.clone().unwrap_or_default(),
        lead.attribution.original.source.to_string(),
        lead.attribution.latest.source.to_string(),
        timestamp(lead.created_at),
        timestamp(lead.updated_at),
    ]);
    r
}

pub use leadflow_app::import::neutralize;

#[cfg(test)]
mod tests {
    use super::neutralize;

    #[test]
    fn formula_cells_are_neutralized_and_others_untouched() {
        for risky in ["=HYPERLINK(\"http://x\")", "+1 555", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize(risky), format!("'{risky}"));
        }
        for safe in ["Ada", "", "ada@example.com", "'quoted", "1-2"] {
            assert_eq!(neutralize(safe), safe);
        }
    }
}
