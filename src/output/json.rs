//! The chargeback as JSON: the CSV's rows as objects, plus totals and warnings.

use serde_json::{Map, Value};

use super::{figure_columns, json_document, json_line};
use crate::cost::{Chargeback, Figures};

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
    let columns: Vec<&str> = request.group_by.keys().iter().map(|k| k.as_str()).collect();
    let lines: Vec<Value> = chargeback
        .lines
        .iter()
        .map(|line| {
            let mut row = json_line(line.period, &columns, line.group.iter());
            figures_json(&line.figures, &mut row);
            row.insert("currency".into(), currency.into());
            Value::Object(row)
        })
        .collect();
    let mut total = Map::new();
    figures_json(&chargeback.total, &mut total);
    Value::Object(json_document(
        request,
        &columns,
        currency,
        (lines, total),
        &chargeback.warnings,
    ))
}
