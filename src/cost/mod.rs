//! Cost: pricing allocations over a window, grouping them, and rounding once for print
//! (SPEC §3).

mod engine;
mod group;
mod overcommit;
mod report;
mod request;
mod values;

#[cfg(test)]
mod tests;

pub use engine::{CostOverflow, LineFilter, ReportRequest, cost_report, cost_report_with_usage};
pub use group::{GroupBy, GroupByError, GroupKey};
pub use report::{Carried, Chargeback, CostLine, CostReport, Figures, HOUR_PLACES, Rounded};
pub use request::{MAX_PERIODS, RequestError, RequestText};
pub use values::GroupValues;
