//! The chargeback CSV (SPEC §4.1): RFC 4180, CRLF line ends, one row per group per period.

use std::io::Write;

use super::{csv_row, figure_columns};
use crate::cost::{Chargeback, Figures};

/// Writes the header and one row per line. Unknown figures are empty cells.
pub fn write_csv(chargeback: &Chargeback, out: impl Write) -> std::io::Result<()> {
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    let mut header = vec!["period_start", "period_end"];
    header.extend(
        chargeback
            .request
            .group_by
            .keys()
            .iter()
            .map(|k| k.as_str()),
    );
    header.extend(figure_columns(&Figures::default()).map(|(name, _)| name));
    header.push("currency");
    writer.write_record(&header)?;
    for line in &chargeback.lines {
        let mut row = csv_row(line.period, line.group.iter());
        row.extend(
            figure_columns(&line.figures)
                .map(|(_, v)| v.map(|v| v.to_string()).unwrap_or_default()),
        );
        row.push(chargeback.currency.code().to_string());
        writer.write_record(&row)?;
    }
    writer.flush()
}
