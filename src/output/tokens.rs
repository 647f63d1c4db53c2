//! The token report as CSV and JSON (`tollgate report --tokens`, `GET /api/v1/tokens`): the
//! chargeback's periods and group columns, then GPU hours, cost, idle cost, tokens and the cost
//! per million tokens. Figures come rounded from [`TokenReport::printed`].

use std::io::Write;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};

use super::{csv_text, json_text, spreadsheet_safe};
use crate::time::format_time;
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
        let mut row = vec![format_time(line.period.start), format_time(line.period.end)];
        row.extend(line.group.iter().map(|v| spreadsheet_safe(v).into_owned()));
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

/// The JSON document: `from`, `to`, `step`, `group_by`, `currency`, `input_weight`, `lines`,
/// `total`, `warnings`.
pub fn tokens_json(report: &TokenReport) -> Value {
    let printed = report.printed();
    let weighted = report.input_weight.is_some();
    let columns = report.request.columns();
    let currency = report.currency.code();
    let lines: Vec<Value> = printed
        .lines
        .iter()
        .map(|line| {
            let mut row = Map::new();
            row.insert("period_start".into(), format_time(line.period.start).into());
            row.insert("period_end".into(), format_time(line.period.end).into());
            for (column, value) in columns.iter().zip(&line.group) {
                row.insert((*column).into(), value.clone().into());
            }
            figures_json(line, weighted, &mut row);
            row.insert("currency".into(), currency.into());
            Value::Object(row)
        })
        .collect();
    let mut total = Map::new();
    figures_json(&printed.total, weighted, &mut total);
    let request = &report.request.report;
    json!({
        "from": format_time(request.window.start),
        "to": format_time(request.window.end),
        "step": request.step.to_string(),
        "group_by": columns,
        "currency": currency,
        "input_weight": report.input_weight.map(|w| w.to_string()),
        "lines": lines,
        "total": total,
        "warnings": report.warnings,
    })
}

/// The report as CSV or JSON text (`json`: JSON).
pub fn render_tokens(report: &TokenReport, json: bool) -> String {
    match json {
        true => json_text(&tokens_json(report)),
        false => csv_text(|out| write_tokens_csv(report, out)),
    }
}
