//! Bulk import of legacy consent records, and CSV export. An import is JSON Lines or CSV; every
//! line is validated first, and only if all are valid are they appended — as one batch, in one
//! transaction, so nothing is ever half-written. Imported events keep what they import: their
//! original time (`occurred_at`, required, which `since` and the retention clock count from) and
//! their original `method` (`paper`, `web_form`, …; `import` where the old system does not
//! know it), and their leaves are marked `imported: true`.
//!
//! CSV columns (header row required, any order): `event`, `email`, `purposes` (`;`-separated, or
//! `all`), `basis`, `method`, `occurred_at`, `received_by_role`, `received_by_name`,
//! `collection_point`, and the evidence: `ip`, `user_agent`, `note`, `notified_by`,
//! `notified_on`, `transaction_reference`, `transaction_date`, `published_in`,
//! `published_checked_on`, `no_refusal_published` (`true` or `false`). Only the first six are
//! required; an empty cell is no value.
//!
//! The CSV export is made for spreadsheets, so no cell of it starts a formula: a cell beginning
//! with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe (`'=1+2@…`), and
//! every cell is quoted (so one holding `;=…` stays whole where `;` separates), as OWASP's "CSV
//! Injection" sheet recommends. An import reads cells literally; JSON and JSON
//! Lines carry every value unchanged (use them to move records between systems).

use serde::Deserialize;

use super::model::*;
use super::ConsentEventEntry;
use crate::error::DomainError;
use crate::store::Store;

/// Most lines in one import.
pub const MAX_IMPORT_LINES: usize = 100_000;

/// The format of an import or export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// One imported record (JSON Lines form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    event: EventKind,
    email: String,
    purposes: Purposes,
    basis: Option<Basis>,
    /// The original method; `import` where it is not known.
    method: Option<Method>,
    occurred_at: String,
    received_by: Receiver,
    collection_point: Option<String>,
    evidence: Option<Evidence>,
}

impl ImportLine {
    fn into_event(self) -> NewEvent {
        NewEvent {
            event: self.event,
            email: self.email,
            purposes: self.purposes,
            basis: self.basis,
            method: self.method.unwrap_or(Method::Import),
            collection_point: self.collection_point,
            received_by: self.received_by,
            occurred_at: Some(self.occurred_at),
            confirmation_required: false,
            evidence: self.evidence,
        }
    }
}

/// The CSV columns of an import line's evidence (the names of `Evidence`'s members).
const EVIDENCE_COLUMNS: [&str; 10] = [
    "ip",
    "user_agent",
    "note",
    "notified_by",
    "notified_on",
    "transaction_reference",
    "transaction_date",
    "published_in",
    "published_checked_on",
    "no_refusal_published",
];

/// A parsed line: its number, and the event or why it is not one.
type ParsedLine = (usize, Result<NewEvent, String>);

/// Parses an import into numbered lines.
fn parse(format: Format, body: &[u8]) -> Result<Vec<ParsedLine>, DomainError> {
    let mut lines = Vec::new();
    match format {
        Format::Jsonl => {
            for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let parsed = serde_json::from_slice::<ImportLine>(line)
                    .map(ImportLine::into_event)
                    .map_err(|e| e.to_string());
                lines.push((i + 1, parsed));
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(false)
                .from_reader(body);
            let headers = reader
                .headers()
                .map_err(|e| DomainError::Invalid(format!("CSV header: {e}")))?
                .clone();
            let column = |name: &str| headers.iter().position(|h| h.trim() == name);
            let required = [
                "event",
                "email",
                "purposes",
                "occurred_at",
                "received_by_role",
                "received_by_name",
            ];
            if let Some(missing) = required.iter().find(|name| column(name).is_none()) {
                return Err(DomainError::Invalid(format!(
                    "the CSV header lacks the column {missing:?}"
                )));
            }
            for record in reader.records() {
                let parsed = match record {
                    Err(e) => (
                        e.position().map_or(0, |p| p.line() as usize),
                        Err(e.to_string()),
                    ),
                    Ok(record) => {
                        let line = record.position().map_or(0, |p| p.line() as usize);
                        let get = |name: &str| {
                            column(name)
                                .and_then(|i| record.get(i))
                                .map(str::trim)
                                .filter(|v| !v.is_empty())
                        };
                        let purposes = match get("purposes") {
                            Some("all") => serde_json::json!("all"),
                            Some(list) => serde_json::json!(list
                                .split(';')
                                .map(str::trim)
                                .collect::<Vec<_>>()),
                            None => serde_json::json!([]),
                        };
                        let mut evidence = serde_json::Map::new();
                        for name in EVIDENCE_COLUMNS {
                            if let Some(value) = get(name) {
                                let value = match (name, value) {
                                    ("no_refusal_published", "true") => serde_json::json!(true),
                                    ("no_refusal_published", "false") => serde_json::json!(false),
                                    _ => serde_json::json!(value),
                                };
                                evidence.insert(name.to_string(), value);
                            }
                        }
                        let line_json = serde_json::json!({
                            "event": get("event"), "email": get("email").unwrap_or_default(), "purposes": purposes,
                            "basis": get("basis"), "method": get("method"), "occurred_at": get("occurred_at").unwrap_or_default(),
                            "received_by": {"role": get("received_by_role"), "name": get("received_by_name").unwrap_or_default()},
                            "collection_point": get("collection_point"),
                            "evidence": (!evidence.is_empty()).then_some(evidence),
                        });
                        (
                            line,
                            serde_json::from_value::<ImportLine>(line_json)
                                .map(ImportLine::into_event)
                                .map_err(|e| e.to_string()),
                        )
                    }
                };
                lines.push(parsed);
            }
        }
    }
    if lines.is_empty() || lines.len() > MAX_IMPORT_LINES {
        return Err(DomainError::Invalid(format!(
            "an import holds 1–{MAX_IMPORT_LINES} records"
        )));
    }
    Ok(lines)
}

/// Validates a whole import; the entries to append only if every line is valid, otherwise every
/// invalid line with its number (`InvalidItems`), and nothing is written.
pub fn prepare_import(
    store: &Store,
    tenant_id: &str,
    format: Format,
    body: &[u8],
) -> Result<Vec<ConsentEventEntry>, DomainError> {
    let lines = parse(format, body)?
        .into_iter()
        .map(|(line, parsed)| (line, parsed.map_err(DomainError::Invalid)));
    super::prepare_all(store, tenant_id, lines, true)
}

/// A cell a spreadsheet will not evaluate: one that would start a formula gets a leading `'`.
pub(crate) fn inert(cell: String) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell,
    }
}

/// Events as CSV (the export's `format=csv`), with a header row; no cell starts a formula.
pub fn to_csv(events: &[EventRecord]) -> String {
    // Every cell quoted, so a spreadsheet that splits on `;` (or tabs) keeps each one whole.
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let header = [
        "event_id",
        "email",
        "event",
        "purposes",
        "basis",
        "method",
        "collection_point",
        "received_by_role",
        "received_by_name",
        "occurred_at",
        "recorded_at",
        "leaf_index",
        "prev_leaf_index",
    ];
    writer.write_record(header).expect("in memory");
    for e in events {
        let purposes = match &e.purposes {
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let record = [
            e.event_id.clone(),
            e.email.clone().unwrap_or_default(),
            e.event.clone(),
            purposes,
            e.basis.clone().unwrap_or_default(),
            e.method.clone(),
            e.collection_point.clone().unwrap_or_default(),
            text(&e.received_by["role"]),
            text(&e.received_by["name"]),
            e.occurred_at.clone(),
            e.recorded_at.clone(),
            e.leaf_index.to_string(),
            e.prev_leaf_index.map(|i| i.to_string()).unwrap_or_default(),
        ];
        writer.write_record(record.map(inert)).expect("in memory");
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn cells_that_would_start_a_formula_get_an_apostrophe() {
        for (cell, out) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1+1", "'+1+1"),
            ("-1+1", "'-1+1"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("=1+2@example.jp", "'=1+2@example.jp"),
            ("taro@example.jp", "taro@example.jp"),
            ("", ""),
            ("2019-04-01T09:00:00Z", "2019-04-01T09:00:00Z"),
        ] {
            assert_eq!(inert(cell.to_string()), out);
        }
    }
}
