//! Time as the cost engine sees it: whole UTC seconds, half-open intervals, and report steps.
//!
//! Kubernetes timestamps carry whole seconds, so an allocation's interval is two Unix-second
//! integers. Hours are derived (seconds / 3600) only when a figure is printed.

use std::fmt;
use std::str::FromStr;

use jiff::{Timestamp, ToSpan, civil::Date, tz::TimeZone};

/// Seconds since the Unix epoch, UTC.
pub type UnixSeconds = i64;

/// The half-open interval `[start, end)` in Unix seconds (empty by default).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Default)]
pub struct Interval {
    /// First second inside the interval.
    pub start: UnixSeconds,
    /// First second after the interval.
    pub end: UnixSeconds,
}

impl Interval {
    /// `[start, end)`.
    pub fn new(start: UnixSeconds, end: UnixSeconds) -> Self {
        Interval { start, end }
    }

    /// Length in seconds (zero when `end <= start`).
    pub fn seconds(self) -> i64 {
        (self.end - self.start).max(0)
    }

    /// True when the interval holds no second.
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// True when `second` is inside.
    pub fn contains(self, second: UnixSeconds) -> bool {
        self.start <= second && second < self.end
    }

    /// The part of `self` inside `other`, if any.
    pub fn clip(self, other: Interval) -> Option<Interval> {
        let clipped = Interval::new(self.start.max(other.start), self.end.min(other.end));
        (!clipped.is_empty()).then_some(clipped)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            format_time(self.start),
            format_time(self.end)
        )
    }
}

/// A time argument the user gave that is neither RFC 3339 nor a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a time: use RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, midnight UTC)"
)]
pub struct TimeError {
    /// The text as given.
    pub value: String,
}

/// Parses an RFC 3339 timestamp, or a `YYYY-MM-DD` date meaning its midnight UTC.
pub fn parse_time(text: &str) -> Result<UnixSeconds, TimeError> {
    let fail = || TimeError {
        value: text.to_string(),
    };
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    let date: Date = text.parse().map_err(|_| fail())?;
    date_start(date).ok_or_else(fail)
}

/// RFC 3339 in UTC with a `Z` (`2026-11-01T00:00:00Z`).
pub fn format_time(seconds: UnixSeconds) -> String {
    Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |ts| ts.to_string())
}

fn date_start(date: Date) -> Option<UnixSeconds> {
    Some(date.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second())
}

fn utc_date(seconds: UnixSeconds) -> Option<Date> {
    Some(
        Timestamp::from_second(seconds)
            .ok()?
            .to_zoned(TimeZone::UTC)
            .date(),
    )
}

/// Start of the UTC calendar month holding `seconds`.
pub fn month_start(seconds: UnixSeconds) -> Option<UnixSeconds> {
    date_start(utc_date(seconds)?.first_of_month())
}

/// Start of the UTC calendar month after the one holding `seconds`.
pub fn next_month_start(seconds: UnixSeconds) -> Option<UnixSeconds> {
    date_start(
        utc_date(seconds)?
            .first_of_month()
            .checked_add(1.month())
            .ok()?,
    )
}

/// How a report window is cut into rows.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Step {
    /// One row per group for the whole window.
    #[default]
    Window,
    /// UTC clock hours.
    Hour,
    /// UTC calendar days.
    Day,
    /// UTC calendar months.
    Month,
}

/// A step name that is not `hour`, `day`, `month` or `window`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step {0:?}: use hour, day, month, or window for the whole window")]
pub struct StepError(pub String);

impl FromStr for Step {
    type Err = StepError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "window" | "" => Ok(Step::Window),
            "hour" => Ok(Step::Hour),
            "day" => Ok(Step::Day),
            "month" => Ok(Step::Month),
            other => Err(StepError(other.to_string())),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Window => "window",
            Step::Hour => "hour",
            Step::Day => "day",
            Step::Month => "month",
        })
    }
}

impl Step {
    /// How many periods [`Step::periods`] gives, counted without making them where that
    /// could take long.
    pub fn period_count(self, window: Interval) -> usize {
        if window.is_empty() {
            return 0;
        }
        let cuts = |size: i64| {
            let first = window.start.div_euclid(size);
            let last = (window.end - 1).div_euclid(size);
            usize::try_from(last - first + 1).unwrap_or(usize::MAX)
        };
        match self {
            Step::Window => 1,
            Step::Hour => cuts(3600),
            Step::Day => cuts(86_400),
            // Months are at least 28 days: a bound that avoids walking the calendar.
            Step::Month if window.seconds() > 28 * 86_400 * 100_000 => usize::MAX,
            Step::Month => self.periods(window).len(),
        }
    }

    /// The rows' periods: `window` cut at UTC hour, day or month boundaries, first and last
    /// clipped to the window. Empty when the window is empty.
    pub fn periods(self, window: Interval) -> Vec<Interval> {
        if window.is_empty() {
            return Vec::new();
        }
        let mut periods = Vec::new();
        let mut start = window.start;
        while start < window.end {
            let boundary = match self {
                Step::Window => window.end,
                Step::Hour => start.div_euclid(3600) * 3600 + 3600,
                Step::Day => start.div_euclid(86_400) * 86_400 + 86_400,
                Step::Month => next_month_start(start).unwrap_or(window.end),
            };
            let end = boundary.min(window.end);
            periods.push(Interval::new(start, end));
            start = end;
        }
        periods
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_rfc3339_and_dates() {
        assert_eq!(parse_time("2026-11-01").unwrap(), 1_793_491_200);
        assert_eq!(parse_time("2026-11-01T00:00:00Z").unwrap(), 1_793_491_200);
        assert_eq!(
            parse_time("2026-11-01T01:00:00+01:00").unwrap(),
            1_793_491_200
        );
        // Whole seconds: a fraction is dropped, never rounded up into the next second.
        assert_eq!(
            parse_time("2026-11-01T00:00:00.999Z").unwrap(),
            1_793_491_200
        );
        let err = parse_time("last tuesday").unwrap_err();
        assert!(err.to_string().contains("\"last tuesday\""));
        assert_eq!(format_time(1_793_491_200), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn steps_cut_at_calendar_boundaries() {
        let from = parse_time("2026-10-31T22:30:00Z").unwrap();
        let to = parse_time("2026-11-02T01:00:00Z").unwrap();
        let window = Interval::new(from, to);
        assert_eq!(Step::Window.periods(window), vec![window]);
        let days = Step::Day.periods(window);
        assert_eq!(days.len(), 3);
        assert_eq!(format_time(days[0].end), "2026-11-01T00:00:00Z");
        let months = Step::Month.periods(window);
        assert_eq!(months.len(), 2);
        assert_eq!(format_time(months[1].start), "2026-11-01T00:00:00Z");
        assert_eq!(Step::Hour.periods(window).len(), 27);
        assert_eq!(
            format_time(Step::Hour.periods(window)[0].end),
            "2026-10-31T23:00:00Z"
        );
        assert!(Step::Day.periods(Interval::new(to, from)).is_empty());
    }

    #[test]
    fn clipping_is_half_open() {
        let a = Interval::new(0, 10);
        assert_eq!(a.clip(Interval::new(5, 20)), Some(Interval::new(5, 10)));
        assert_eq!(a.clip(Interval::new(10, 20)), None);
        assert_eq!("fortnight".parse::<Step>().unwrap_err().0, "fortnight");
    }
}
