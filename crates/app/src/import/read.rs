//! Reading import files: a first pass over the file computes its SHA-256 and, for CSV,
//! whether it is valid UTF-8 (else it is read as Windows-1252, the encoding spreadsheets
//! on Windows write); the delimiter is sniffed from the header line. Rows are then
//! streamed by a reader thread in chunks over a bounded channel, so memory stays flat
//! whatever the file's size.

use super::ImportError;
use calamine::{DataRef, Reader, Xlsx};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Rows per chunk: large enough to amortize a commit, small enough to keep memory and
/// latency low.
pub const CHUNK_ROWS: usize = 1000;
/// Chunks read ahead of the ones being settled.
pub(super) const READ_AHEAD: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1252,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Csv { delimiter: u8, encoding: Encoding },
    Xlsx { sheet: String },
}

/// What the first pass learned about the file.
#[derive(Clone, Debug)]
pub struct FileInfo {
    pub path: PathBuf,
    pub format: Format,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// One data row: its number (1 = the first row after the header) and cell texts.
pub type Row = (u64, Vec<String>);

/// The rows, a chunk at a time, as the reader thread produces them.
pub type Chunks = mpsc::Receiver<Result<Vec<Row>, ImportError>>;

/// Inspects the file: format, encoding, delimiter and hash.
pub fn inspect(path: &Path, sheet: Option<&str>) -> Result<FileInfo, ImportError> {
    let io = |source| ImportError::Io { path: path.to_owned(), source };
    let mut file = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut utf8 = Utf8Check::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        utf8.feed(&buf[..n]);
        if head.len() < 1 << 16 {
            head.extend_from_slice(&buf[..n.min((1 << 16) - head.len())]);
        }
    }
    let sha256 = hex(&hasher.finalize());
    // XLSX files are zip archives.
    let format = if head.starts_with(b"PK\x03\x04") {
        let mut book: Xlsx<_> =
            calamine::open_workbook(path).map_err(|e: calamine::XlsxError| ImportError::Xlsx(e.to_string()))?;
        let names = book.sheet_names();
        let sheet = match sheet {
            Some(name) => names
                .iter()
                .find(|n| n.as_str() == name)
                .cloned()
                .ok_or_else(|| ImportError::NoSheet(name.to_owned()))?,
            None => names.first().cloned().ok_or(ImportError::NoHeader)?,
        };
        let _ = book.worksheet_cells_reader(&sheet).map_err(|e| ImportError::Xlsx(e.to_string()))?;
        Format::Xlsx { sheet }
    } else {
        let encoding = if utf8.valid() { Encoding::Utf8 } else { Encoding::Windows1252 };
        let text = decode(&head, encoding);
        Format::Csv { delimiter: sniff_delimiter(&text), encoding }
    };
    Ok(FileInfo { path: path.to_owned(), format, sha256 })
}

/// Streaming UTF-8 validation across chunk boundaries.
#[derive(Default)]
struct Utf8Check {
    carry: Vec<u8>,
    invalid: bool,
}

impl Utf8Check {
    fn feed(&mut self, chunk: &[u8]) {
        if self.invalid {
            return;
        }
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        match std::str::from_utf8(&bytes) {
            Ok(_) => {}
            // An incomplete character at the end continues in the next chunk.
            Err(e) if e.error_len().is_none() => self.carry = bytes[e.valid_up_to()..].to_vec(),
            Err(_) => self.invalid = true,
        }
    }

    fn valid(&self) -> bool {
        !self.invalid && self.carry.is_empty()
    }
}

fn decode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).into_owned(),
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// The candidate that splits the header line into the most fields, outside quotes;
/// comma on a tie or when none occurs.
pub fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            c if !quoted => {
                if let Some(slot) = counts.iter_mut().find(|(d, _)| char::from(*d) == c) {
                    slot.1 += 1;
                }
            }
            _ => {}
        }
    }
    counts.iter().fold((b',', 0), |best, &(d, n)| if n > best.1 { (d, n) } else { best }).0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the reader thread; returns the header and the chunks of rows.
pub fn read_rows(info: &FileInfo) -> Result<(Vec<String>, Chunks), ImportError> {
    let (header_tx, header_rx) = mpsc::sync_channel(1);
    let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
    let info = info.clone();
    let path = info.path.clone();
    std::thread::Builder::new()
        .name("leadflow-import-reader".into())
        .spawn(move || {
            let result = match &info.format {
                Format::Csv { delimiter, encoding } => read_csv(&info.path, *delimiter, *encoding, &header_tx, &tx),
                Format::Xlsx { sheet } => read_xlsx(&info.path, sheet, &header_tx, &tx),
            };
            // The caller waits for the header first, then for rows: tell whichever it is
            // waiting for.
            if let Err(ReadFailure { error, after_header }) = result {
                if after_header {
                    let _ = tx.send(Err(error));
                } else {
                    let _ = header_tx.send(Err(error));
                }
            }
        })
        .map_err(|source| ImportError::Io { path, source })?;
    let header = header_rx.recv().map_err(|_| ImportError::NoHeader)??;
    Ok((header, rx))
}

/// An error in the reader thread, and whether the header had been sent.
struct ReadFailure {
    error: ImportError,
    after_header: bool,
}

type HeaderTx = mpsc::SyncSender<Result<Vec<String>, ImportError>>;
type RowsTx = mpsc::SyncSender<Result<Vec<Row>, ImportError>>;

fn read_csv(
    path: &Path,
    delimiter: u8,
    encoding: Encoding,
    header_tx: &HeaderTx,
    tx: &RowsTx,
) -> Result<(), ReadFailure> {
    let before = |error| ReadFailure { error, after_header: false };
    let file = File::open(path).map_err(|source| before(ImportError::Io { path: path.to_owned(), source }))?;
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(match encoding {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }))
        .bom_override(true)
        .build(BufReader::with_capacity(1 << 16, file));
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(decoded);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| before(ImportError::Csv(e.to_string())))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(before(ImportError::NoHeader));
    }
    if header_tx.send(Ok(header)).is_err() {
        return Ok(());
    }
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let mut record = csv::StringRecord::new();
    let mut number = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                number += 1;
                chunk.push((number, record.iter().map(str::to_owned).collect()));
                if chunk.len() == CHUNK_ROWS
                    && tx.send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ROWS)))).is_err()
                {
                    return Ok(());
                }
            }
            Err(e) => {
                return Err(ReadFailure {
                    error: ImportError::Csv(format!("after row {number}: {e}")),
                    after_header: true,
                });
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    Ok(())
}

fn read_xlsx(path: &Path, sheet: &str, header_tx: &HeaderTx, tx: &RowsTx) -> Result<(), ReadFailure> {
    let before = |error| ReadFailure { error, after_header: false };
    let mut book: Xlsx<_> =
        calamine::open_workbook(path).map_err(|e: calamine::XlsxError| before(ImportError::Xlsx(e.to_string())))?;
    let mut cells = book.worksheet_cells_reader(sheet).map_err(|e| before(ImportError::Xlsx(e.to_string())))?;
    let mut header: Option<(u32, Vec<String>)> = None;
    let mut current: Option<(u32, Vec<String>)> = None;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let flush_row = |row: (u32, Vec<String>), header: &mut Option<(u32, Vec<String>)>, chunk: &mut Vec<Row>| -> bool {
        match header {
            None => {
                *header = Some((row.0, row.1.iter().map(|h| h.trim().to_owned()).collect()));
                header_tx.send(Ok(header.as_ref().map(|h| h.1.clone()).unwrap_or_default())).is_ok()
            }
            Some((header_row, _)) => {
                chunk.push((u64::from(row.0 - *header_row), row.1));
                chunk.len() < CHUNK_ROWS
                    || tx.send(Ok(std::mem::replace(chunk, Vec::with_capacity(CHUNK_ROWS)))).is_ok()
            }
        }
    };
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                return Err(ReadFailure { error: ImportError::Xlsx(e.to_string()), after_header: header.is_some() });
            }
        };
        let (row, col) = cell.get_position();
        if current.as_ref().is_some_and(|(r, _)| *r != row)
            && let Some(done) = current.take()
            && !flush_row(done, &mut header, &mut chunk)
        {
            return Ok(());
        }
        let entry = current.get_or_insert_with(|| (row, Vec::new()));
        let col = usize::try_from(col).unwrap_or(usize::MAX);
        if col < 16_384 {
            if entry.1.len() <= col {
                entry.1.resize(col + 1, String::new());
            }
            entry.1[col] = cell_text(cell.get_value());
        }
    }
    if let Some(done) = current.take()
        && !flush_row(done, &mut header, &mut chunk)
    {
        return Ok(());
    }
    if header.is_none() {
        return Err(before(ImportError::NoHeader));
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk));
    }
    Ok(())
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(i) => i.to_string(),
        // Spreadsheets store every number as a float; whole ones are written without ".0"
        // so that phone numbers, postal codes and counts read as typed.
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        DataRef::Float(f) => f.to_string(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => d.to_string(),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// A row as a payload: header → cell text, empty cells left out.
pub fn row_payload(header: &[String], cells: Vec<String>) -> Map<String, Value> {
    let mut payload = Map::new();
    for (i, cell) in cells.into_iter().enumerate() {
        if cell.trim().is_empty() {
            continue;
        }
        let name = header.get(i).filter(|h| !h.is_empty()).cloned().unwrap_or_else(|| format!("column_{}", i + 1));
        payload.entry(name).or_insert(Value::String(cell));
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_one_that_splits_the_header_most() {
        assert_eq!(sniff_delimiter("email;first_name;company\na;b;c"), b';');
        assert_eq!(sniff_delimiter("email\tfirst_name\n"), b'\t');
        assert_eq!(sniff_delimiter("email|name|x"), b'|');
        assert_eq!(sniff_delimiter("\"a;b\",c,d\n"), b',', "quoted delimiters do not count");
        assert_eq!(sniff_delimiter("email"), b',');
    }

    #[test]
    fn utf8_check_follows_characters_across_chunks() {
        let text = "Zoë Ångström, 東京".as_bytes();
        for split in 0..text.len() {
            let mut check = Utf8Check::default();
            check.feed(&text[..split]);
            check.feed(&text[split..]);
            assert!(check.valid(), "split at {split}");
        }
        let mut latin1 = Utf8Check::default();
        latin1.feed(b"Zo\xeb");
        assert!(!latin1.valid());
    }

    #[test]
    fn whole_spreadsheet_numbers_read_as_typed() {
        assert_eq!(cell_text(&DataRef::Float(4930901820.0)), "4930901820");
        assert_eq!(cell_text(&DataRef::Float(1.5)), "1.5");
        assert_eq!(cell_text(&DataRef::Int(10115)), "10115");
    }

    #[test]
    fn empty_cells_are_left_out_and_nameless_columns_named() {
        let header = vec!["email".to_owned(), String::new()];
        let p = row_payload(&header, vec!["a@example.com".into(), "x".into(), " ".into()]);
        assert_eq!(p.get("email"), Some(&Value::String("a@example.com".into())));
        assert_eq!(p.get("column_2"), Some(&Value::String("x".into())));
        assert_eq!(p.len(), 2);
    }
}
