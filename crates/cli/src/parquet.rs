//! `leadflow export --format parquet --out DIR`: the change feed and the leads it names,
//! as Parquet files for a warehouse, one pair per run, incremental from a cursor.
//!
//! Each run reads the feed after the cursor the last run left in `DIR/_cursor` (or
//! `--after`) up to its head, and writes `changes-FROM-TO.parquet` (every change, with
//! its details as columns: stage changes, events and deliveries included) and
//! `leads-FROM-TO.parquet` (each lead those changes name, as it stands now). The names
//! come from the cursor range, so a run repeated after a crash writes the same files
//! again rather than new ones. A `lead.erased` rewrites every earlier leads file holding
//! that lead without it: what was exported of the person goes too. The cursor moves
//! last, once every file is in place.

use leadflow_core::feed::{Cursor, FeedChange};
use leadflow_core::{Lead, LeadId};
use leadflow_store::{DynStore, StoreError};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PAGE: usize = 10_000;
const CURSOR_FILE: &str = "_cursor";

/// What one run wrote.
#[derive(Debug, Default)]
pub struct Exported {
    pub changes: usize,
    pub leads: usize,
    /// Earlier leads files rewritten without erased people.
    pub rewritten: usize,
    pub from: String,
    pub to: String,
}

pub async fn export(store: &DynStore, dir: &Path, after: Option<&str>) -> Result<Exported, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let from = match after {
        Some(text) => text.to_owned(),
        None => match std::fs::read_to_string(dir.join(CURSOR_FILE)) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "0".to_owned(),
            Err(e) => return Err(format!("cannot read {}: {e}", dir.join(CURSOR_FILE).display())),
        },
    };
    let start = Cursor::parse(&from).ok_or_else(|| format!("{from:?} is not a change feed cursor"))?;
    let mut changes = Vec::new();
    let mut at = start.clone();
    loop {
        let page = store.changes(&at, PAGE).await.map_err(|e| match e {
            StoreError::UnknownCursor(detail) => detail,
            other => other.to_string(),
        })?;
        if page.changes.is_empty() {
            break;
        }
        at = page.next;
        changes.extend(page.changes);
    }
    let to = at.to_string();
    let mut out = Exported { from: start.to_string(), to: to.clone(), ..Exported::default() };
    if changes.is_empty() {
        return Ok(out);
    }

    let mut named = Vec::new();
    let mut seen = HashSet::new();
    for change in &changes {
        if seen.insert(change.lead_id) {
            named.push(change.lead_id);
        }
    }
    let erased: HashSet<LeadId> = changes.iter().filter(|c| c.kind == "lead.erased").map(|c| c.lead_id).collect();
    let mut leads = Vec::new();
    let mut kept = HashSet::new();
    for id in named {
        match store.get_lead(id).await {
            // A lead merged away reads as its survivor: one row per lead that stands.
            Ok(Some(lead)) if lead.erased_at.is_none() && kept.insert(lead.id) => leads.push(lead),
            Ok(_) | Err(StoreError::Erased(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }

    let range = format!("{}-{}", out.from, to);
    let changes_file = dir.join(format!("changes-{range}.parquet"));
    let leads_file = dir.join(format!("leads-{range}.parquet"));
    write(&changes_file, &changes_table(&changes))?;
    write(&leads_file, &leads_table(&leads))?;
    if !erased.is_empty() {
        out.rewritten = forget(dir, &leads_file, &erased)?;
    }
    let cursor_tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
    std::fs::write(&cursor_tmp, format!("{to}\n")).map_err(|e| e.to_string())?;
    std::fs::rename(&cursor_tmp, dir.join(CURSOR_FILE)).map_err(|e| e.to_string())?;
    out.changes = changes.len();
    out.leads = leads.len();
    Ok(out)
}

/// Rewrites every leads file in `dir` but `current` that holds one of `erased`, without
/// their rows; returns how many it rewrote.
fn forget(dir: &Path, current: &Path, erased: &HashSet<LeadId>) -> Result<usize, String> {
    let erased: HashSet<String> = erased.iter().map(LeadId::to_string).collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("leads-") && n.ends_with(".parquet"))
        })
        .filter(|p| p != current)
        .collect();
    files.sort();
    let mut rewritten = 0;
    for file in files {
        let table = read(&file)?;
        let Some(ids) = table.columns.first().map(|c| &c.values) else { continue };
        let keep: Vec<bool> = ids.iter().map(|v| !matches!(v, Value::Text(id) if erased.contains(id))).collect();
        if keep.iter().all(|k| *k) {
            continue;
        }
        let columns = table
            .columns
            .into_iter()
            .map(|c| Column {
                values: c.values.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v).collect(),
                ..c
            })
            .collect();
        write(&file, &Table { columns })?;
        rewritten += 1;
    }
    Ok(rewritten)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Int,
    /// Milliseconds since the epoch, UTC.
    Time,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Null,
    Text(String),
    Int(i64),
}

struct Column {
    name: String,
    kind: Kind,
    values: Vec<Value>,
}

struct Table {
    columns: Vec<Column>,
}

impl Table {
    fn with(names: &[(&str, Kind)]) -> Self {
        Table {
            columns: names
                .iter()
                .map(|(name, kind)| Column { name: (*name).to_owned(), kind: *kind, values: Vec::new() })
                .collect(),
        }
    }

    fn push(&mut self, row: Vec<Value>) {
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.values.push(value);
        }
    }

    fn schema(&self) -> String {
        let fields: String = self
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::Text => format!("OPTIONAL BYTE_ARRAY {} (UTF8);\n", c.name),
                Kind::Int => format!("OPTIONAL INT64 {};\n", c.name),
                Kind::Time => format!("OPTIONAL INT64 {} (TIMESTAMP(MILLIS,true));\n", c.name),
            })
            .collect();
        format!("message leadflow {{\n{fields}}}")
    }
}

fn text(value: Option<String>) -> Value {
    value.filter(|v| !v.is_empty()).map_or(Value::Null, Value::Text)
}

fn millis(t: time::OffsetDateTime) -> Value {
    Value::Int(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

fn changes_table(changes: &[FeedChange]) -> Table {
    use Kind::{Int, Text, Time};
    let mut table = Table::with(&[
        ("cursor", Text),
        ("type", Text),
        ("lead_id", Text),
        ("at", Time),
        ("version", Int),
        ("stage", Text),
        ("score", Int),
        ("into", Text),
        ("from_stage", Text),
        ("to_stage", Text),
        ("actor", Text),
        ("reason", Text),
        ("event_id", Text),
        ("event_type", Text),
        ("delivery_id", Text),
        ("destination", Text),
    ]);
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    for c in changes {
        let d = &c.detail;
        table.push(vec![
            Value::Text(c.cursor.clone()),
            Value::Text(c.kind.clone()),
            Value::Text(c.lead_id.to_string()),
            millis(c.at),
            int(d.version.map(|v| i64::try_from(v).unwrap_or(i64::MAX))),
            text(d.stage.clone()),
            int(d.score),
            text(d.into.map(|l| l.to_string())),
            text(d.from.clone()),
            text(d.to.clone()),
            text(d.actor.clone()),
            text(d.reason.clone()),
            text(d.event_id.clone()),
            text(d.event_type.clone()),
            text(d.delivery_id.clone()),
            text(d.destination.clone()),
        ]);
    }
    table
}

fn leads_table(leads: &[Lead]) -> Table {
    let header = crate::export::header();
    let kinds: Vec<(&str, Kind)> = header
        .iter()
        .map(|name| match *name {
            "score" => (*name, Kind::Int),
            "created_at" | "updated_at" => (*name, Kind::Time),
            _ => (*name, Kind::Text),
        })
        .collect();
    let mut table = Table::with(&kinds);
    for lead in leads {
        let row = crate::export::row(lead)
            .into_iter()
            .zip(&kinds)
            .map(|(cell, (name, kind))| match (kind, *name) {
                (Kind::Int, _) => lead.score.map_or(Value::Null, Value::Int),
                (Kind::Time, "created_at") => millis(lead.created_at),
                (Kind::Time, _) => millis(lead.updated_at),
                (Kind::Text, _) => text(Some(cell)),
            })
            .collect();
        table.push(row);
    }
    table
}

/// Writes `table` to `path` through a temporary file, so a reader never finds half a file.
fn write(path: &Path, table: &Table) -> Result<(), String> {
    let fail = |e: parquet::errors::ParquetError| format!("cannot write {}: {e}", path.display());
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&table.schema()).map_err(fail)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(concat!("leadflow ", env!("CARGO_PKG_VERSION")).to_owned())
            .build(),
    );
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(fail)?;
    let mut group = writer.next_row_group().map_err(fail)?;
    let mut columns = table.columns.iter();
    while let Some(mut out) = group.next_column().map_err(fail)? {
        let column =
            columns.next().ok_or_else(|| format!("cannot write {}: more columns than data", path.display()))?;
        let levels: Vec<i16> = column.values.iter().map(|v| i16::from(*v != Value::Null)).collect();
        match column.kind {
            Kind::Text => {
                let values: Vec<ByteArray> = column
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        Value::Text(s) => Some(ByteArray::from(s.as_str())),
                        _ => None,
                    })
                    .collect();
                out.typed::<ByteArrayType>().write_batch(&values, Some(&levels), None).map_err(fail)?;
            }
            Kind::Int | Kind::Time => {
                let values: Vec<i64> = column
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect();
                out.typed::<Int64Type>().write_batch(&values, Some(&levels), None).map_err(fail)?;
            }
        }
        out.close().map_err(fail)?;
    }
    group.close().map_err(fail)?;
    writer.close().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a file this module wrote back into a table.
fn read(path: &Path) -> Result<Table, String> {
    let fail = |e: parquet::errors::ParquetError| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let reader = SerializedFileReader::new(file).map_err(fail)?;
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let mut table = Table {
        columns: descr
            .columns()
            .iter()
            .map(|c| {
                let kind = match c.physical_type() {
                    parquet::basic::Type::BYTE_ARRAY => Kind::Text,
                    _ if c.converted_type() == parquet::basic::ConvertedType::TIMESTAMP_MILLIS => Kind::Time,
                    _ => Kind::Int,
                };
                Column { name: c.name().to_owned(), kind, values: Vec::new() }
            })
            .collect(),
    };
    for row in reader.get_row_iter(None).map_err(fail)? {
        let row = row.map_err(fail)?;
        let values = row
            .get_column_iter()
            .map(|(_, field)| match field {
                Field::Str(s) => Value::Text(s.clone()),
                Field::Long(i) | Field::TimestampMillis(i) => Value::Int(*i),
                _ => Value::Null,
            })
            .collect();
        table.push(values);
    }
    Ok(table)
}
