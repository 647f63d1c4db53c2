//! The chargeback as JSON: the CSV's rows as objects, plus totals and warnings.

use serde_json::{Map, Value, json};

use super::figure_columns;
use crate::cost::{Chargeback, Figures};
use crate::time::format_time;

/// The figure columns as JSON members: decimal strings, `null` when unknown.
fn figures_json(figures: &Figures, into: &mut Map<String, Value>) {
    for (name, value) in figure_columns(figures) {
        into.insert(
            name.into(),
            value.map_or(Value::Null, |v| Value::String(v.to_string())),
        );
    }
}

/// The JSON document: `from`, `to`, `step`, `group_by`, `currency`, `lines`, `total`,
/// `warnings`. Figures are decimal strings; unknown figures are `null`.
pub fn to_json(chargeback: &Chargeback) -> Value {
    let request = &chargeback.request;
    let currency = chargeback.currency.code();
    let lines: Vec<Value> = chargeback
        .lines
        .iter()
        .map(|line| {
            let mut row = Map::new();
            row.insert("period_start".into(), format_time(line.period.start).into());
            row.insert("period_end".into(), format_time(line.period.end).into());
            for (key, value) in request.group_by.keys().iter().zip(&line.group) {
                row.insert(key.as_str().into(), value.clone().into());
            }
            figures_json(&line.figures, &mut row);
            row.insert("currency".into(), currency.into());
            Value::Object(row)
        })
        .collect();
    let mut total = Map::new();
    figures_json(&chargeback.total, &mut total);
    json!({
        "from": format_time(request.window.start),
        "to": format_time(request.window.end),
        "step": request.step.to_string(),
        "group_by": request.group_by.keys().iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "currency": currency,
        "lines": lines,
        "total": total,
        "warnings": chargeback.warnings,
    })
}
