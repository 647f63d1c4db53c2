//! The token report as CSV and JSON (`tollgate report --tokens`, `GET /api/v1/tokens`): the
//! chargeback's periods and group columns, then GPU hours, cost, idle cost, tokens and the cost
//! per million tokens. Figures come rounded from [`TokenReport::printed`].

use std::io::Write;

use super::csv_row;
use super::json::{JsonDocument, JsonValue, Members, each_line, line_members};
use crate::tokens::report::{PrintedLine, TokenReport};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The figure columns of a printed line, in order: every column of a weighted report, or all
/// but the weighted split. Integers are tokens; `None` is an empty cell.
fn figure_columns(line: &PrintedLine, weighted: bool) -> Vec<(&'static str, Option<Decimal>)> {
    let per = &line.per_million;
    let mut columns = vec![
        ("gpu_hours", Some(line.figures.gpu_hours)),
        ("cost", line.figures.cost),
        ("idle_cost", line.figures.idle_cost),
        ("input_tokens", Some(Decimal::from(line.input))),
        ("output_tokens", Some(Decimal::from(line.output))),
        ("cost_per_1m_tokens", per.tokens),
        ("cost_per_1m_output_tokens", per.output_tokens),
    ];
    if weighted {
        columns.push(("cost_per_1m_input", per.input));
        columns.push(("cost_per_1m_output", per.output));
    }
    columns
}

/// Writes the CSV: a header, then a row per line (RFC 4180, CRLF).
pub fn write_tokens_csv(report: &TokenReport, out: impl Write) -> std::io::Result<()> {
    let printed = report.printed();
    let weighted = report.input_weight.is_some();
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    let mut header = vec!["period_start", "period_end"];
    header.extend(report.request.columns());
    header.extend(
        figure_columns(&printed.total, weighted)
            .into_iter()
            .map(|(name, _)| name),
    );
    header.push("currency");
    writer.write_record(&header)?;
    for line in &printed.lines {
        let mut row = csv_row(line.period, line.group.iter().map(String::as_str));
        row.extend(
            figure_columns(line, weighted)
                .into_iter()
                .map(|(_, v)| v.map(|v| v.to_string()).unwrap_or_default()),
        );
        row.push(report.currency.code().to_string());
        writer.write_record(&row)?;
    }
    writer.flush()
}

/// The figure columns as JSON members: tokens as numbers, money and hours as decimal strings,
/// `null` when empty.
fn figure_members(line: &PrintedLine, weighted: bool) -> Members<'static> {
    figure_columns(line, weighted)
        .into_iter()
        .map(|(name, value)| {
            let value = match name {
                "input_tokens" | "output_tokens" => {
                    JsonValue::Count(value.and_then(|tokens| tokens.to_u64()))
                }
                _ => JsonValue::Figure(value),
            };
            (name, value)
        })
        .collect()
}

/// Writes the JSON document: `from`, `to`, `step`, `group_by`, `currency`, `lines`, `total`,
/// `warnings`, `input_weight`.
pub fn write_tokens_json(report: &TokenReport, out: impl Write) -> std::io::Result<()> {
    let printed = report.printed();
    let weighted = report.input_weight.is_some();
    let columns = report.request.columns();
    let currency = report.currency.code();
    let members = each_line(|line: &PrintedLine| {
        let group = line.group.iter().map(String::as_str);
        let mut members = line_members(line.period, &columns, group);
        members.extend(figure_members(line, weighted));
        members.push(("currency", JsonValue::Text(currency.into())));
        members
    });
    let weight = report.input_weight.map(|w| w.to_string().into());
    JsonDocument {
        request: &report.request.report,
        columns: &columns,
        currency,
        lines: &printed.lines,
        members: &members,
        total: figure_members(&printed.total, weighted),
        warnings: &report.warnings,
        more: vec![(
            "input_weight",
            weight.map_or(JsonValue::Figure(None), JsonValue::Text),
        )],
    }
    .write(out)
}
