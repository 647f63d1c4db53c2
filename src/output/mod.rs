//! Printing a chargeback: the CSV of SPEC §4.1 and JSON with the same content.
//!
//! Outputs only format; every figure comes already rounded from [`Chargeback`].

mod csv;
mod json;

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

pub use self::csv::write_csv;
pub use self::json::to_json;

use crate::cost::{Chargeback, Figures};

/// A report format.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Format {
    /// RFC 4180 CSV, SPEC §4.1.
    #[default]
    Csv,
    /// JSON with money as decimal strings.
    Json,
}

/// A format name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: use csv or json")]
pub struct FormatError(pub String);

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(FormatError(other.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Json => "json",
        })
    }
}

/// Renders a chargeback in `format`.
pub fn render(chargeback: &Chargeback, format: Format) -> String {
    match format {
        Format::Csv => {
            let mut out = Vec::new();
            write_csv(chargeback, &mut out)
                .unwrap_or_else(|e| unreachable!("writing to memory: {e}"));
            String::from_utf8(out).unwrap_or_else(|e| unreachable!("CSV of UTF-8 text: {e}"))
        }
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&to_json(chargeback))
                .unwrap_or_else(|e| unreachable!("JSON of plain values: {e}"));
            text.push('\n');
            text
        }
    }
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
