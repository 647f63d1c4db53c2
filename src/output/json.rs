//! The chargeback as JSON: the CSV's rows as objects, plus totals and warnings. A report's
//! JSON document is written as its lines are read, never built as a tree of values first: a
//! month by pod at 10,000 GPUs is 1.4 million lines, which as `serde_json::Value`s took ten
//! times the memory of the text.

use std::borrow::Cow;
use std::io::{BufWriter, Write};

use rust_decimal::Decimal;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::figure_columns;
use crate::cost::{Chargeback, CostLine, Figures, ReportRequest};
use crate::time::{Interval, format_time};

/// A member's value: a text, a figure (a decimal string, `null` when unknown) or a count.
pub(super) enum JsonValue<'a> {
    Text(Cow<'a, str>),
    Figure(Option<Decimal>),
    Count(Option<u64>),
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonValue::Text(text) => serializer.serialize_str(text),
            JsonValue::Figure(Some(value)) => serializer.collect_str(value),
            JsonValue::Count(Some(count)) => serializer.serialize_u64(*count),
            JsonValue::Figure(None) | JsonValue::Count(None) => serializer.serialize_unit(),
        }
    }
}

/// An object's members, in order.
pub(super) type Members<'a> = Vec<(&'a str, JsonValue<'a>)>;

struct Object<'b, 'a>(&'b [(&'a str, JsonValue<'a>)]);

impl Serialize for Object<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The first members of a line: the period's bounds, then each group column's value.
pub(super) fn line_members<'a>(
    period: Interval,
    columns: &[&'a str],
    group: impl Iterator<Item = &'a str>,
) -> Members<'a> {
    let mut members = vec![
        (
            "period_start",
            JsonValue::Text(format_time(period.start).into()),
        ),
        (
            "period_end",
            JsonValue::Text(format_time(period.end).into()),
        ),
    ];
    members.extend(
        columns
            .iter()
            .zip(group)
            .map(|(column, value)| (*column, JsonValue::Text(value.into()))),
    );
    members
}

/// A report as a JSON document: `from`, `to`, `step`, `group_by` (the group `columns`),
/// `currency`, `lines` (each line's members made as it is written), `total`, `warnings`, and
/// any `more` members after them.
pub(super) struct JsonDocument<'d, 'a, T> {
    pub request: &'d ReportRequest,
    pub columns: &'d [&'d str],
    pub currency: &'d str,
    pub lines: &'a [T],
    pub members: &'d dyn Fn(&'a T) -> Members<'a>,
    pub total: Members<'d>,
    pub warnings: &'d [String],
    pub more: Members<'d>,
}

struct Lines<'d, 'a, T> {
    lines: &'a [T],
    members: &'d dyn Fn(&'a T) -> Members<'a>,
}

impl<T> Serialize for Lines<'_, '_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.lines.len()))?;
        for line in self.lines {
            seq.serialize_element(&Object(&(self.members)(line)))?;
        }
        seq.end()
    }
}

impl<T> Serialize for JsonDocument<'_, '_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let window = self.request.window;
        let mut map = serializer.serialize_map(Some(8 + self.more.len()))?;
        map.serialize_entry("from", &format_time(window.start))?;
        map.serialize_entry("to", &format_time(window.end))?;
        map.serialize_entry("step", &self.request.step.to_string())?;
        map.serialize_entry("group_by", self.columns)?;
        map.serialize_entry("currency", self.currency)?;
        let lines = Lines {
            lines: self.lines,
            members: self.members,
        };
        map.serialize_entry("lines", &lines)?;
        map.serialize_entry("total", &Object(&self.total))?;
        map.serialize_entry("warnings", self.warnings)?;
        for (name, value) in &self.more {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<T> JsonDocument<'_, '_, T> {
    /// Writes the document as indented text with a final newline.
    pub(super) fn write(&self, out: impl Write) -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 16, out);
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// The figure columns as members: decimal strings, `null` when unknown.
fn figure_members(figures: &Figures) -> [(&'static str, JsonValue<'static>); 5] {
    figure_columns(figures).map(|(name, value)| (name, JsonValue::Figure(value)))
}

/// `members`, which makes a line's members from a line living as long as they do (a closure
/// taking any line would be asked for members outliving every line).
pub(super) fn each_line<'a, T: 'a, F: Fn(&'a T) -> Members<'a>>(members: F) -> F {
    members
}

/// Writes the JSON document: `from`, `to`, `step`, `group_by`, `currency`, `lines`, `total`,
/// `warnings`. Figures are decimal strings; unknown figures are `null`.
pub fn write_json(chargeback: &Chargeback, out: impl Write) -> std::io::Result<()> {
    let request = &chargeback.request;
    let currency = chargeback.currency.code();
    let columns: Vec<&'static str> = request.group_by.keys().iter().map(|k| k.as_str()).collect();
    let members = each_line(|line: &CostLine| {
        let mut members = line_members(line.period, &columns, line.group.iter());
        members.extend(figure_members(&line.figures));
        members.push(("currency", JsonValue::Text(currency.into())));
        members
    });
    JsonDocument {
        request,
        columns: &columns,
        currency,
        lines: &chargeback.lines,
        members: &members,
        total: figure_members(&chargeback.total).into(),
        warnings: &chargeback.warnings,
        more: Vec::new(),
    }
    .write(out)
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::money::Currency;
    use crate::time::{Step, parse_time};

    /// The document as it is written, member by member: texts escaped, figures as decimal
    /// strings, unknown figures `null`, indented by two spaces, a newline at the end.
    #[test]
    fn a_chargeback_is_written_as_indented_json_line_by_line() {
        let time = |t| parse_time(t).unwrap();
        let window = Interval::new(time("2026-11-01T00:00:00Z"), time("2026-11-02T00:00:00Z"));
        let figures = crate::cost::Figures {
            gpu_hours: dec!(24.0000),
            used_gpu_hours: None,
            cost: Some(dec!(181.68)),
            idle_cost: None,
            unpriced_gpu_hours: dec!(0.0000),
        };
        let chargeback = Chargeback {
            request: ReportRequest {
                window,
                step: Step::Window,
                group_by: "cost_center".parse().unwrap(),
                share_unallocated: false,
                only: Default::default(),
            },
            currency: Currency::new("EUR").unwrap(),
            lines: vec![CostLine {
                period: window,
                group: vec!["team \"a\"\n".to_string()].into(),
                figures: figures.clone(),
            }],
            total: figures,
            warnings: vec!["a warning".into()],
        };
        let mut out = Vec::new();
        write_json(&chargeback, &mut out).unwrap();
        let expected = r#"{
  "from": "2026-11-01T00:00:00Z",
  "to": "2026-11-02T00:00:00Z",
  "step": "window",
  "group_by": [
    "cost_center"
  ],
  "currency": "EUR",
  "lines": [
    {
      "period_start": "2026-11-01T00:00:00Z",
      "period_end": "2026-11-02T00:00:00Z",
      "cost_center": "team \"a\"\n",
      "gpu_hours": "24.0000",
      "used_gpu_hours": null,
      "cost": "181.68",
      "idle_cost": null,
      "unpriced_gpu_hours": "0.0000",
      "currency": "EUR"
    }
  ],
  "total": {
    "gpu_hours": "24.0000",
    "used_gpu_hours": null,
    "cost": "181.68",
    "idle_cost": null,
    "unpriced_gpu_hours": "0.0000"
  },
  "warnings": [
    "a warning"
  ]
}
"#;
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
