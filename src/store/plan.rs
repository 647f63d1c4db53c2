//! Which part of a report the store answers, and putting the parts back together.

use std::collections::BTreeSet;

use crate::cost::{CostLine, CostReport, GroupBy, GroupKey, ReportRequest};
use crate::time::{Interval, Step, UnixSeconds};

/// The group-by keys hourly and daily rollups are kept by (every key but `pod`, and the
/// node's price tier).
pub const ROLLUP_KEYS: [GroupKey; 6] = [
    GroupKey::CostCenter,
    GroupKey::Namespace,
    GroupKey::GpuModel,
    GroupKey::Node,
    GroupKey::CostCenterSource,
    GroupKey::PricingTier,
];

/// The group-by keys of the pod rollups: [`ROLLUP_KEYS`] and `pod`, one row per pod (and
/// node, model, tier) and day.
pub const POD_KEYS: [GroupKey; 7] = {
    let mut keys = [GroupKey::Pod; 7];
    let mut i = 0;
    while i < ROLLUP_KEYS.len() {
        keys[i] = ROLLUP_KEYS[i];
        i += 1;
    }
    keys
};

/// Which rollup of a stored day answers a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Grain {
    /// `YYYY-MM-DD.parquet`: a row per hour and group of [`ROLLUP_KEYS`].
    Hourly,
    /// `daily/`: the day's sum per group of [`ROLLUP_KEYS`].
    Daily,
    /// `pods/`: the day's sum per group of [`POD_KEYS`].
    Pods,
}

impl Grain {
    /// The finest-kept rollup that answers `request`, if one does: none for requests grouped
    /// by resource or claim, sharing unallocated capacity across groups, or by pod hour by hour.
    pub fn of(request: &ReportRequest) -> Option<Grain> {
        let keys = request.group_by.keys();
        let hourly = request.step == Step::Hour;
        if request.share_unallocated {
            None
        } else if keys.iter().all(|k| ROLLUP_KEYS.contains(k)) {
            Some(if hourly { Grain::Hourly } else { Grain::Daily })
        } else if !hourly && keys.iter().all(|k| POD_KEYS.contains(k)) {
            Some(Grain::Pods)
        } else {
            None
        }
    }
}

const DAY: i64 = 86_400;

/// The requests whose lines are the rollups of the day starting at `day`: hour by hour, and
/// by pod over the day.
pub fn rollup_requests(day: UnixSeconds) -> [ReportRequest; 2] {
    let request = |step, keys: &[GroupKey]| ReportRequest {
        window: Interval::new(day, day + DAY),
        step,
        group_by: GroupBy::new(keys.to_vec()).unwrap_or_default(),
        share_unallocated: false,
        only: Default::default(),
    };
    [
        request(Step::Hour, &ROLLUP_KEYS),
        request(Step::Window, &POD_KEYS),
    ]
}

/// A report split between stored days and the rest, which the engine computes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Plan {
    /// Runs of whole stored days inside the window.
    pub stored: Vec<Interval>,
    /// Everything else of the window.
    pub rest: Vec<Interval>,
    /// The rollup that answers the request ([`Grain::of`]); `None`: the engine answers all of
    /// it.
    pub grain: Option<Grain>,
}

impl Plan {
    /// Splits `request` over the `days` whose rollup of the request's [`Grain`] the store
    /// holds. Requests no rollup answers go wholly to the engine.
    pub fn new(request: &ReportRequest, days: &BTreeSet<UnixSeconds>) -> Self {
        let window = request.window;
        let grain = Grain::of(request);
        let mut stored: Vec<Interval> = Vec::new();
        if grain.is_some() {
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
            grain,
        }
    }
}

/// The whole report from its parts: stored lines and the engine's reports of the rest. Each
/// line goes under the period of the request's step that holds it, and lines of one period and
/// group are summed (sorted once, then merged: a month by pod is over a million lines).
/// `template` holds the report's currency and rounding and the stored days' warnings, to which
/// the parts' are added.
pub fn compose(
    request: &ReportRequest,
    stored: Vec<CostLine>,
    rest: Vec<CostReport>,
    mut template: CostReport,
) -> CostReport {
    let periods = request.step.periods(request.window);
    let mut lines = stored;
    for part in rest {
        lines.extend(part.lines);
        template.warnings.absorb(part.warnings);
    }
    for line in &mut lines {
        let index = periods.partition_point(|p| p.end <= line.period.start);
        if let Some(period) = periods.get(index) {
            line.period = *period;
        }
    }
    merge_same_lines(&mut lines);
    lines.retain(|line| !line.figures.is_empty());
    CostReport {
        request: request.clone(),
        lines,
        ..template
    }
}

/// `lines` in order of period and group values, those of one period and group made one (their
/// figures summed), in place: a month by pod is over a million lines.
pub(super) fn merge_same_lines(lines: &mut Vec<CostLine>) {
    lines.sort_unstable_by(|a, b| (a.period, &a.group).cmp(&(b.period, &b.group)));
    lines.dedup_by(|line, kept| {
        let same = line.period == kept.period && line.group == kept.group;
        if same {
            kept.figures.absorb(&line.figures);
        }
        same
    });
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
            only: Default::default(),
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
        let by_pod = Plan::new(&request(0, 5 * DAY, "namespace,pod"), &days);
        assert_eq!(by_pod.grain, Some(Grain::Pods));
        assert_eq!(by_pod.stored.len(), 2);
        let hourly_pods = ReportRequest {
            step: Step::Hour,
            ..request(0, 5 * DAY, "pod")
        };
        let by_pod_hour = Plan::new(&hourly_pods, &days);
        assert_eq!(by_pod_hour.grain, None);
        assert!(by_pod_hour.stored.is_empty());
        assert_eq!(by_pod_hour.rest, vec![Interval::new(0, 5 * DAY)]);
        let shared = ReportRequest {
            share_unallocated: true,
            ..request(0, 5 * DAY, "cost_center")
        };
        assert_eq!(Plan::new(&shared, &days).grain, None);
        assert_eq!(
            Plan::new(&request(0, DAY, "cost_center,gpu_model"), &days).grain,
            Some(Grain::Daily)
        );
    }
}
