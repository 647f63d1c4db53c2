//! Printing a report: the chargeback CSV of SPEC §4.1, JSON with the same content, and the
//! FOCUS export of §4.2.
//!
//! Outputs only format; every figure comes already rounded from [`crate::cost::Chargeback`].

mod cells;
mod csv;
mod file;
mod focus;
mod json;
mod parquet;
mod parts;
mod tokens;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

pub use self::csv::write_csv;
pub use self::file::{Container, OutputFile};
pub use self::focus::{
    ALLOCATED_METHOD, COLUMNS as FOCUS_COLUMNS, COLUMNS_1_2 as FOCUS_1_2_COLUMNS, CsvRows,
    FocusRow, FocusSettings, FocusSink, FocusVersion, FocusWriter, SpareBuffers, focus_request,
    write_focus,
};
pub use self::json::write_json;
pub use self::parquet::{ParquetRows, decimal_column, write_chargeback_parquet};
pub use self::parts::{FocusEncoding, FocusFile, FocusPart, FocusParts, FocusPiece};
pub use self::tokens::{write_tokens_csv, write_tokens_json};

use crate::cost::{CostReport, Figures, ReportRequest, RequestError};
use crate::time::{Interval, format_time};

/// A report format.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Format {
    /// RFC 4180 CSV, SPEC §4.1.
    #[default]
    Csv,
    /// JSON with money as decimal strings.
    Json,
    /// FinOps FOCUS rows (1.3, or 1.2 by `focus.version`), SPEC §4.2.
    Focus,
}

/// A format name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: use csv, json or focus")]
pub struct FormatError(pub String);

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "focus" => Ok(Format::Focus),
            other => Err(FormatError(other.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Focus => "focus",
        })
    }
}

impl Format {
    /// The request to compute for `request` in this format. FOCUS rows are one per resource,
    /// so a group-by asked for (`group_by_given`) is refused rather than ignored.
    pub fn request(
        self,
        request: &ReportRequest,
        group_by_given: bool,
    ) -> Result<ReportRequest, RequestError> {
        match self {
            Format::Focus if group_by_given => Err(RequestError {
                field: "group_by",
                message: "FOCUS rows are one per resource and charge period: leave it out".into(),
            }),
            Format::Focus => Ok(focus_request(request)),
            Format::Csv | Format::Json => Ok(request.clone()),
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv | Format::Focus => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Writes `report` (computed for [`Format::request`]) in `format`, rounded, into `out` as it
/// goes. The report is taken: its lines become the chargeback's, not copied.
pub fn write_report(
    report: CostReport,
    format: Format,
    focus: &FocusSettings,
    out: impl std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Csv => write_csv(&report.into_chargeback(), out),
        Format::Focus => write_focus(&report, focus, out),
        Format::Json => write_json(&report.into_chargeback(), out),
    }
}

/// [`write_report`] of a copy of `report`, as text.
pub fn render(report: &CostReport, format: Format, focus: &FocusSettings) -> String {
    text_of(|out| write_report(report.clone(), format, focus, out))
}

/// The first cells of a CSV row: the period's bounds, then the group values (spreadsheet-safe).
fn csv_row<'a>(period: Interval, group: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut row = vec![format_time(period.start), format_time(period.end)];
    row.extend(group.map(|v| spreadsheet_safe(v).into_owned()));
    row
}

/// What `write` writes, as text.
fn text_of(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).unwrap_or_else(|e| unreachable!("writing to memory: {e}"));
    String::from_utf8(out).unwrap_or_else(|e| unreachable!("CSV and JSON of UTF-8 text: {e}"))
}

/// The figure columns of SPEC §4.1, in order, with their rounded values (`None`: unknown).
fn figure_columns(figures: &Figures) -> [(&'static str, Option<Decimal>); 5] {
    [
        ("gpu_hours", Some(figures.gpu_hours)),
        ("used_gpu_hours", figures.used_gpu_hours),
        ("cost", figures.cost),
        ("idle_cost", figures.idle_cost),
        ("unpriced_gpu_hours", Some(figures.unpriced_gpu_hours)),
    ]
}

/// A CSV cell as a spreadsheet will show it, never run it. Values come from annotations and
/// labels anyone with access to a namespace can write; a cell a spreadsheet would take for a
/// formula (OWASP "CSV injection": it starts with `=`, `+`, `-`, `@`, a tab or a carriage return
/// and is not a number) gets a leading `'`, which spreadsheets show as text.
pub(crate) fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if cell.parse::<Decimal>().is_err() => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_become_text_and_numbers_stay_numbers() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-12.50", "-12.50"),
            ("cc-100", "cc-100"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), shown, "{cell:?}");
        }
    }
}
