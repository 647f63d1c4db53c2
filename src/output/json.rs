//! The chargeback as JSON: the CSV's rows as objects, plus totals and warnings.

use serde_json::{Map, Value, json};

use super::cell;
use crate::cost::Chargeback;
use crate::time::format_time;

fn money(value: Option<rust_decimal::Decimal>) -> Value {
    match value {
        Some(v) => Value::String(cell(Some(v))),
        None => Value::Null,
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
            row.insert("gpu_hours".into(), money(Some(line.gpu_hours)));
            row.insert("used_gpu_hours".into(), money(line.used_gpu_hours));
            row.insert("cost".into(), money(line.cost));
            row.insert("idle_cost".into(), money(line.idle_cost));
            row.insert(
                "unpriced_gpu_hours".into(),
                money(Some(line.unpriced_gpu_hours)),
            );
            row.insert("currency".into(), currency.into());
            Value::Object(row)
        })
        .collect();
    let total = &chargeback.total;
    json!({
        "from": format_time(request.window.start),
        "to": format_time(request.window.end),
        "step": request.step.to_string(),
        "group_by": request.group_by.keys().iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "currency": currency,
        "lines": lines,
        "total": {
            "gpu_hours": money(Some(total.gpu_hours)),
            "used_gpu_hours": money(total.used_gpu_hours),
            "cost": money(total.cost),
            "idle_cost": money(total.idle_cost),
            "unpriced_gpu_hours": money(Some(total.unpriced_gpu_hours)),
        },
        "warnings": chargeback.warnings,
    })
}
