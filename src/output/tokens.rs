//! The token report as CSV and JSON (`tollgate report --tokens`, `GET /api/v1/tokens`): the
//! chargeback's periods and group columns, then GPU hours, cost, idle cost, tokens and the cost
//! per million tokens. Figures come rounded from [`TokenReport::printed`].

use std::io::Write;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value};

use super::{csv_row, csv_text, json_document, json_line, json_text};
use crate::tokens::report::{PrintedLine, TokenReport};

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
fn figures_json(line: &PrintedLine, weighted: bool, into: &mut Map<String, Value>) {
    for (name, value) in figure_columns(line, weighted) {
        let value = match value {
            Some(tokens) if matches!(name, "input_tokens" | "output_tokens") => {
                tokens.to_u64().map_or(Value::Null, Value::from)
            }
            Some(v) => Value::String(v.to_string()),
            None => Value::Null,
        };
        into.insert(name.into(), value);
    }
}

/// The JSON document: `from`, `to`, `step`, `group_by`, `currency`, `lines`, `total`,
/// `warnings`, `input_weight`.
pub fn tokens_json(report: &TokenReport) -> Value {
    let printed = report.printed();
    let weighted = report.input_weight.is_some();
    let columns = report.request.columns();
    let currency = report.currency.code();
    let lines: Vec<Value> = printed
        .lines
        .iter()
        .map(|line| {
            let mut row = json_line(line.period, &columns, line.group.iter().map(String::as_str));
            figures_json(line, weighted, &mut row);
            row.insert("currency".into(), currency.into());
            Value::Object(row)
        })
        .collect();
    let mut total = Map::new();
    figures_json(&printed.total, weighted, &mut total);
    let mut document = json_document(
        &report.request.report,
        &columns,
        currency,
        (lines, total),
        &report.warnings,
    );
    let weight = report.input_weight.map(|w| w.to_string());
    document.insert("input_weight".into(), weight.into());
    Value::Object(document)
}

/// The report as CSV or JSON text (`json`: JSON).
pub fn render_tokens(report: &TokenReport, json: bool) -> String {
    match json {
        true => json_text(&tokens_json(report)),
        false => csv_text(|out| write_tokens_csv(report, out)),
    }
}
