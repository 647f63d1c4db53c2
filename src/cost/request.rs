//! Reading a report request from text, the same way for command-line flags and query strings.

use super::engine::{LineFilter, ReportRequest};
use super::group::GroupBy;
use crate::time::{Interval, Step, UnixSeconds, month_start, parse_time};

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
    /// Keep only this cost center's lines (`cost_center` must be a group-by key).
    pub cost_center: Option<&'a str>,
    /// Keep only this namespace's lines (`namespace` must be a group-by key).
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
        let only = LineFilter {
            cost_center: text.cost_center.map(str::to_string),
            namespace: text.namespace.map(str::to_string),
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
