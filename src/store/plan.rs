//! Which part of a report the store answers, and putting the parts back together.

use std::collections::{BTreeMap, BTreeSet};

use crate::cost::{CostLine, CostReport, Figures, GroupBy, GroupKey, ReportRequest};
use crate::time::{Interval, Step, UnixSeconds};

/// The group-by keys rollups are kept by (every key but `pod`).
pub const ROLLUP_KEYS: [GroupKey; 5] = [
    GroupKey::CostCenter,
    GroupKey::Namespace,
    GroupKey::GpuModel,
    GroupKey::Node,
    GroupKey::CostCenterSource,
];

const DAY: i64 = 86_400;

/// The request whose lines are the rollup of the day starting at `day`.
pub fn rollup_request(day: UnixSeconds) -> ReportRequest {
    ReportRequest {
        window: Interval::new(day, day + DAY),
        step: Step::Hour,
        group_by: GroupBy::new(ROLLUP_KEYS.to_vec()).unwrap_or_default(),
        share_unallocated: false,
    }
}

/// A report split between stored days and the rest, which the engine computes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Plan {
    /// Runs of whole stored days inside the window.
    pub stored: Vec<Interval>,
    /// Everything else of the window.
    pub rest: Vec<Interval>,
    /// Whether the rollups can answer the request at all (not grouped by pod or resource, not
    /// sharing unallocated capacity across groups).
    pub storable: bool,
}

impl Plan {
    /// Splits `request` over the `days` the store holds. Requests the store cannot answer
    /// (grouped by pod, or sharing unallocated capacity across groups) go wholly to the engine.
    pub fn new(request: &ReportRequest, days: &BTreeSet<UnixSeconds>) -> Self {
        let window = request.window;
        let storable = !request.share_unallocated
            && request
                .group_by
                .keys()
                .iter()
                .all(|k| ROLLUP_KEYS.contains(k));
        let mut stored: Vec<Interval> = Vec::new();
        if storable {
            for &day in days.range(window.start..) {
                if day + DAY > window.end {
                    break;
                }
                match stored.last_mut() {
                    Some(run) if run.end == day => run.end += DAY,
                    _ => stored.push(Interval::new(day, day + DAY)),
                }
            }
        }
        let mut rest = Vec::new();
        let mut at = window.start;
        for run in &stored {
            if run.start > at {
                rest.push(Interval::new(at, run.start));
            }
            at = run.end;
        }
        if at < window.end {
            rest.push(Interval::new(at, window.end));
        }
        Plan {
            stored,
            rest,
            storable,
        }
    }
}

/// Adds `lines` (computed over part of `window`) into `into`, each under the period of `step`
/// over the whole window that holds it.
pub fn merge_into(
    into: &mut BTreeMap<(Interval, Vec<String>), Figures>,
    lines: Vec<CostLine>,
    step: Step,
    window: Interval,
) {
    let periods = step.periods(window);
    for line in lines {
        let index = periods.partition_point(|p| p.end <= line.period.start);
        let period = periods.get(index).copied().unwrap_or(line.period);
        into.entry((period, line.group))
            .or_default()
            .absorb(&line.figures);
    }
}

/// The whole report from its parts: stored lines and the engine's reports of the rest.
pub fn compose(
    request: &ReportRequest,
    stored: Vec<CostLine>,
    rest: Vec<CostReport>,
    template: CostReport,
) -> CostReport {
    let mut lines = BTreeMap::new();
    merge_into(&mut lines, stored, request.step, request.window);
    let mut warnings: Vec<String> = Vec::new();
    for part in rest {
        merge_into(&mut lines, part.lines, request.step, request.window);
        for warning in part.warnings {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    }
    CostReport {
        request: request.clone(),
        lines: CostLine::collect(lines),
        warnings,
        ..template
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn request(from: i64, to: i64, group_by: &str) -> ReportRequest {
        ReportRequest {
            window: Interval::new(from, to),
            step: Step::Day,
            group_by: group_by.parse().unwrap(),
            share_unallocated: false,
        }
    }

    #[test]
    fn stored_days_inside_the_window_come_from_the_store() {
        let days: BTreeSet<i64> = [0, DAY, 2 * DAY, 4 * DAY].into_iter().collect();
        let plan = Plan::new(&request(3600, 5 * DAY, "cost_center"), &days);
        assert_eq!(
            plan.stored,
            vec![Interval::new(DAY, 3 * DAY), Interval::new(4 * DAY, 5 * DAY)]
        );
        assert_eq!(
            plan.rest,
            vec![Interval::new(3600, DAY), Interval::new(3 * DAY, 4 * DAY)]
        );
        let by_pod = Plan::new(&request(0, 5 * DAY, "pod"), &days);
        assert!(by_pod.stored.is_empty());
        assert_eq!(by_pod.rest, vec![Interval::new(0, 5 * DAY)]);
    }
}
