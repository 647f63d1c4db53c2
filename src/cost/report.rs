//! Cost reports: exact lines from the engine, and the rounded chargeback every output prints.

use rust_decimal::Decimal;

use super::engine::ReportRequest;
use crate::money::{Currency, Rounding, apportion};

/// Hours print with four decimals.
pub const HOUR_PLACES: u32 = 4;

/// One group in one period.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CostLine {
    /// The row's period (the whole window unless stepped).
    pub period: crate::time::Interval,
    /// Values of the group-by keys, in the order asked.
    pub group: Vec<String>,
    /// All GPU-hours, priced or not.
    pub gpu_hours: Decimal,
    /// GPU-hours actually busy (`gpu_hours × utilization`); `None` without usage data.
    pub used_gpu_hours: Option<Decimal>,
    /// Cost of the priced hours; `None` when no hour of the line has a price.
    pub cost: Option<Decimal>,
    /// Cost of the idle part (`cost × (1 − utilization)`); `None` without usage data.
    pub idle_cost: Option<Decimal>,
    /// The part of `gpu_hours` with no price.
    pub unpriced_gpu_hours: Decimal,
}

/// Exact cost lines, sorted by period then group values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CostReport {
    /// What was asked.
    pub request: ReportRequest,
    /// The rate card's currency.
    pub currency: Currency,
    /// The rate card's rounding.
    pub rounding: Rounding,
    /// Exact figures, never rounded.
    pub lines: Vec<CostLine>,
    /// Things the reader must know (unpriced models, unreadable objects).
    pub warnings: Vec<String>,
}

/// Column totals, rounded like the lines.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Totals {
    /// Total GPU-hours.
    pub gpu_hours: Decimal,
    /// Total busy GPU-hours, if any line has usage.
    pub used_gpu_hours: Option<Decimal>,
    /// Total cost, if any line is priced.
    pub cost: Option<Decimal>,
    /// Total idle cost, if any line has usage.
    pub idle_cost: Option<Decimal>,
    /// Total unpriced GPU-hours.
    pub unpriced_gpu_hours: Decimal,
}

/// A report rounded for print: each column's lines add up exactly to its total.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Chargeback {
    /// What was asked.
    pub request: ReportRequest,
    /// The currency of every money figure.
    pub currency: Currency,
    /// Rounded lines, in the report's order.
    pub lines: Vec<CostLine>,
    /// Rounded totals.
    pub total: Totals,
    /// Things the reader must know.
    pub warnings: Vec<String>,
}

impl CostReport {
    /// Rounds once: hours to 4 decimals, money to the currency's minor unit, each column with
    /// largest-remainder correction so that the printed lines add up to the printed total.
    pub fn chargeback(&self) -> Chargeback {
        let money = self.currency.minor_units();
        let column = |pick: &dyn Fn(&CostLine) -> Option<Decimal>, places| {
            let values: Vec<Option<Decimal>> = self.lines.iter().map(pick).collect();
            apportion(&values, places, self.rounding)
        };
        let gpu_hours = column(&|l| Some(l.gpu_hours), HOUR_PLACES);
        let used = column(&|l| l.used_gpu_hours, HOUR_PLACES);
        let cost = column(&|l| l.cost, money);
        let idle = column(&|l| l.idle_cost, money);
        let unpriced = column(&|l| Some(l.unpriced_gpu_hours), HOUR_PLACES);
        let lines = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| CostLine {
                period: line.period,
                group: line.group.clone(),
                gpu_hours: gpu_hours.lines[i].unwrap_or_default(),
                used_gpu_hours: used.lines[i],
                cost: cost.lines[i],
                idle_cost: idle.lines[i],
                unpriced_gpu_hours: unpriced.lines[i].unwrap_or_default(),
            })
            .collect();
        let zero_hours = crate::money::fixed(Decimal::ZERO, HOUR_PLACES);
        Chargeback {
            request: self.request.clone(),
            currency: self.currency.clone(),
            lines,
            total: Totals {
                gpu_hours: gpu_hours.total.unwrap_or(zero_hours),
                used_gpu_hours: used.total,
                cost: cost.total,
                idle_cost: idle.total,
                unpriced_gpu_hours: unpriced.total.unwrap_or(zero_hours),
            },
            warnings: self.warnings.clone(),
        }
    }
}
