//! The chargeback CSV (SPEC §4.1): RFC 4180, CRLF line ends, one row per group per period.

use std::io::Write;

use super::cell;
use crate::cost::Chargeback;
use crate::time::format_time;

/// Writes the header and one row per line.
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
    header.extend([
        "gpu_hours",
        "used_gpu_hours",
        "cost",
        "idle_cost",
        "unpriced_gpu_hours",
        "currency",
    ]);
    writer.write_record(&header)?;
    for line in &chargeback.lines {
        let mut row = vec![format_time(line.period.start), format_time(line.period.end)];
        row.extend(line.group.iter().cloned());
        row.extend([
            cell(Some(line.gpu_hours)),
            cell(line.used_gpu_hours),
            cell(line.cost),
            cell(line.idle_cost),
            cell(Some(line.unpriced_gpu_hours)),
            chargeback.currency.code().to_string(),
        ]);
        writer.write_record(&row)?;
    }
    writer.flush()
}
