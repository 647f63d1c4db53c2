//! Cost: pricing allocations over a window, grouping them, and rounding once for print
//! (SPEC §3).

mod carries;
mod engine;
mod group;
mod order;
mod overcommit;
mod report;
mod request;
mod resolver;
mod share;
mod sums;
mod values;
mod warnings;

#[cfg(test)]
mod tests;

pub use carries::{Carries, GroupLines, GroupTotals};
pub use engine::{cost_report, cost_report_with_usage};
pub use group::{GroupBy, GroupByError, GroupKey};
pub use report::{Carried, Chargeback, CostLine, CostReport, Figures, HOUR_PLACES, Rounded};
pub use request::{LineFilter, MAX_PERIODS, ReportRequest, RequestError, RequestText};
pub use sums::{CostError, CostOverflow, TooManyLines};
pub use values::GroupValues;
pub use warnings::Warnings;
