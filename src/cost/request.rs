//! What a report asks for, and reading it from text the same way for command-line flags and
//! query strings.

use super::group::{GroupBy, GroupKey};
use crate::time::{Interval, Step, UnixSeconds, month_start, parse_time};

/// What to report.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReportRequest {
    /// The report window; allocations are clipped to it.
    pub window: Interval,
    /// How the window is cut into rows.
    pub step: Step,
    /// The group-by keys, in column order.
    pub group_by: GroupBy,
    /// Spread unallocated capacity over the groups that used the same model, in proportion to
    /// their cost, instead of reporting it under `__unallocated__`.
    pub share_unallocated: bool,
    /// Keep only the lines of one cost center or namespace (each a group-by key).
    pub only: LineFilter,
}

impl ReportRequest {
    /// Where the `cluster` key sits among the group-by keys, if it is one.
    pub fn cluster_column(&self) -> Option<usize> {
        self.group_by
            .keys()
            .iter()
            .position(|k| *k == GroupKey::Cluster)
    }

    /// The request less its `cluster` key: what the engine and the store compute, the same
    /// lines (one Tollgate reads one cluster), to which
    /// [`CostReport::with_cluster`](super::CostReport::with_cluster) adds it.
    pub fn without_cluster(&self) -> ReportRequest {
        let keys = self.group_by.keys().iter().copied();
        ReportRequest {
            group_by: GroupBy::new(keys.filter(|k| *k != GroupKey::Cluster).collect())
                .unwrap_or_else(|_| unreachable!("a subset of distinct keys")),
            ..self.clone()
        }
    }
}

/// Which lines a report keeps: those whose `cost_center` and `namespace` (where given, each a
/// group-by key of the report) are these. The figures kept are those of the whole report: the
/// engine makes no line it would leave out, but every pod's holdings still come off its
/// node's free capacity (and all lines are made where free capacity is shared out over them).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct LineFilter {
    /// The cost center to keep.
    pub cost_center: Option<String>,
    /// The namespace to keep.
    pub namespace: Option<String>,
}

impl LineFilter {
    /// Each key filtered on, with the value kept.
    pub fn wanted(&self) -> impl Iterator<Item = (GroupKey, &str)> {
        [
            (GroupKey::CostCenter, self.cost_center.as_deref()),
            (GroupKey::Namespace, self.namespace.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
    }

    /// Whether it keeps every line.
    pub fn keeps_all(&self) -> bool {
        self.wanted().next().is_none()
    }

    /// Whether the lines of this cost center and namespace are kept.
    pub fn keeps_group(&self, cost_center: &str, namespace: &str) -> bool {
        self.cost_center
            .as_deref()
            .is_none_or(|kept| kept == cost_center)
            && self
                .namespace
                .as_deref()
                .is_none_or(|kept| kept == namespace)
    }

    /// Whether a line grouped by `keys` with these group values is kept.
    pub fn keeps<'a>(&self, keys: &[GroupKey], values: impl Iterator<Item = &'a str>) -> bool {
        let values: Vec<&str> = values.collect();
        self.wanted().all(|(key, value)| {
            keys.iter()
                .position(|k| *k == key)
                .is_none_or(|at| values[at] == value)
        })
    }
}

/// The parameters of a report as text (a flag or query parameter each, all optional).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestText<'a> {
    /// Window start (default: start of the month of `to`).
    pub from: Option<&'a str>,
    /// Window end, exclusive (default: now).
    pub to: Option<&'a str>,
    /// Group-by keys, comma-separated (default `cost_center,namespace`).
    pub group_by: Option<&'a str>,
    /// `hour`, `day`, `month` or `window` (default).
    pub step: Option<&'a str>,
    /// Share unallocated capacity out.
    pub share_unallocated: bool,
    /// Keep only this cost center's lines (`cost_center` must be a group-by key); empty keeps
    /// every cost center's.
    pub cost_center: Option<&'a str>,
    /// Keep only this namespace's lines (`namespace` must be a group-by key); empty keeps every
    /// namespace's.
    pub namespace: Option<&'a str>,
}

/// A parameter that could not be read; `field` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    /// The parameter (`from`, `to`, `group_by`, `step`).
    pub field: &'static str,
    /// What is wrong and what to write instead.
    pub message: String,
}

fn field<T, E: ToString>(name: &'static str, result: Result<T, E>) -> Result<T, RequestError> {
    result.map_err(|e| RequestError {
        field: name,
        message: e.to_string(),
    })
}

/// The most rows per group one request may ask for: 10,000 periods (over a year of hours).
pub const MAX_PERIODS: usize = 10_000;

impl ReportRequest {
    /// Reads a request; `now` is the default end of the window.
    pub fn parse(text: RequestText<'_>, now: UnixSeconds) -> Result<Self, RequestError> {
        let group_by = field("group_by", text.group_by.unwrap_or("").parse::<GroupBy>())?;
        Self::parse_grouped(text, group_by, now)
    }

    /// Reads a request grouped by `group_by` (read by the caller from `text.group_by`, which
    /// is not read here).
    pub fn parse_grouped(
        text: RequestText<'_>,
        group_by: GroupBy,
        now: UnixSeconds,
    ) -> Result<Self, RequestError> {
        let to = match text.to {
            Some(t) => field("to", parse_time(t))?,
            None => now,
        };
        let from = match text.from {
            Some(t) => field("from", parse_time(t))?,
            None => month_start(to - 1).unwrap_or(to),
        };
        if from >= to {
            return Err(RequestError {
                field: "from",
                message: "must be before the end of the window (to)".into(),
            });
        }
        let window = Interval::new(from, to);
        let step = field("step", text.step.unwrap_or("window").parse::<Step>())?;
        if step.period_count(window) > MAX_PERIODS {
            return Err(RequestError {
                field: "step",
                message: format!(
                    "{step} over this window is more than {MAX_PERIODS} periods: use a longer step or a shorter window"
                ),
            });
        }
        // A parameter left empty (a form's cleared field) keeps every line, as an empty
        // `group_by` groups by default: no cost center or namespace is named "".
        let named = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_string);
        let only = LineFilter {
            cost_center: named(text.cost_center),
            namespace: named(text.namespace),
        };
        for (key, _) in only.wanted() {
            if !group_by.keys().contains(&key) {
                return Err(RequestError {
                    field: key.as_str(),
                    message: format!("keeps the lines of one {key}: add {key} to group_by"),
                });
            }
        }
        Ok(ReportRequest {
            window,
            step,
            group_by,
            share_unallocated: text.share_unallocated,
            only,
        })
    }
}
