//! Unit-seconds summed per line, then priced (SPEC §3). Cost is linear in unit-seconds, so each
//! line first sums, in integers, the unit-seconds of every (period, price schedule, price
//! segment, unit denominator) it holds; only then is each sum multiplied by its price and
//! divided by `denominator × 3600`, once. No figure is rounded here.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::report::Figures;
use crate::allocation::Sym;
use crate::pricing::PriceSchedule;
use crate::time::Interval;
use crate::units::{GpuUnits, common_denominator};

/// A sum too large for exact decimal arithmetic (over 7.9 × 10²⁸).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cost sum is too large to compute exactly")]
pub struct CostOverflow;

/// A report with more lines than its asker makes at once: it was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the report has more than {0} lines, the most this service makes at once \
     (server.max_report_lines): ask for a longer step, a shorter window or fewer group-by keys; \
     the FOCUS export (format=focus) is made a day at a time"
)]
pub struct TooManyLines(pub usize);

impl TooManyLines {
    /// Whether `lines` are more than `most` (none: no bound).
    pub fn check(lines: usize, most: Option<usize>) -> Result<(), TooManyLines> {
        match most {
            Some(most) if lines > most => Err(TooManyLines(most)),
            _ => Ok(()),
        }
    }
}

/// Why the engine made no report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// A sum overflowed.
    #[error(transparent)]
    Overflow(#[from] CostOverflow),
    /// More lines than asked for at most.
    #[error(transparent)]
    TooManyLines(#[from] TooManyLines),
}

/// A price schedule (a model's and tier's, or an override's) and the label its lines print.
pub(super) struct Schedule {
    pub(super) prices: PriceSchedule,
    pub(super) label: Sym,
}

/// Where a line's unit-seconds accumulate: (period, schedule, segment, denominator).
type SumPoint = (u32, u32, u32, i64);

/// What a line holds at one point.
#[derive(Clone, Copy)]
struct Sum {
    point: SumPoint,
    /// Integer unit-seconds.
    unit_seconds: i128,
    /// Where usage is known (`measured`): the unit-seconds it covers, and their
    /// utilization-weighted sum.
    covered: i128,
    used: Decimal,
    measured: bool,
}

/// Each line's (by number) sums.
pub(super) struct UnitSeconds {
    periods: Vec<Interval>,
    /// Each line's sums, in the order their points were first met (put in point order when
    /// priced): read line after line as the report's lines are met.
    sums: Vec<LineSumList>,
    /// Where the sum at each point of a line with more than [`WALKED`] sums is (a line of a
    /// group and day: a point for each day, model and tier).
    index: FxHashMap<(u32, SumPoint), u32>,
    /// How many sums the lines hold: at least one for each (period, group) line the report
    /// will have, and what the report's memory grows with.
    made: usize,
}

/// A line's sums: most lines (a pod's in a day) have one, held in place rather than allocated.
type LineSumList = SmallVec<[Sum; 1]>;

/// Lines with up to this many sums are searched by walking them; longer ones by [`UnitSeconds`]'
/// index.
const WALKED: usize = 8;

/// One line's sums, to add to.
struct LineSums<'a> {
    line: u32,
    sums: &'a mut LineSumList,
    index: &'a mut FxHashMap<(u32, SumPoint), u32>,
    made: &'a mut usize,
}

const HOUR: i64 = 3600;

/// Calls `visit(point, seconds)` for each piece of `during` (inside the window) cut at period
/// and price boundaries, in point order.
fn walk(
    periods: &[Interval],
    schedule: u32,
    schedules: &[Schedule],
    during: Interval,
    denom: i64,
    mut visit: impl FnMut(SumPoint, i64),
) {
    let prices = &schedules[schedule as usize].prices;
    let segments = prices.segments();
    let mut segment = prices.segment_at(during.start);
    let mut period = periods.partition_point(|p| p.end <= during.start);
    let mut at = during.start;
    while at < during.end && period < periods.len() {
        let segment_end = segments[segment].during.end;
        let period_end = periods[period].end;
        let until = during.end.min(segment_end).min(period_end);
        visit((period as u32, schedule, segment as u32, denom), until - at);
        at = until;
        if at == segment_end {
            segment += 1;
        }
        if at == period_end {
            period += 1;
        }
    }
}

impl LineSums<'_> {
    /// The sum at `point`, made where there is none. A holding's pieces come in point order:
    /// `near` is where the piece before was, and the piece is looked for there (the hours of
    /// one period are one point) and just after it before it is searched for.
    fn at(&mut self, point: SumPoint, near: &mut Option<usize>) -> &mut Sum {
        let sums = &mut *self.sums;
        let at = near.unwrap_or(sums.len().saturating_sub(1));
        let found = [at, at + 1]
            .into_iter()
            .find(|&at| sums.get(at).is_some_and(|sum| sum.point == point))
            .or_else(|| {
                if sums.len() <= WALKED {
                    sums.iter().position(|sum| sum.point == point)
                } else {
                    self.index.get(&(self.line, point)).map(|&at| at as usize)
                }
            });
        let at = found.unwrap_or_else(|| {
            sums.push(Sum::at(point));
            *self.made += 1;
            let at = sums.len() - 1;
            if sums.len() > WALKED {
                // A line growing past walking distance is indexed, its first sums with it.
                let first = if sums.len() == WALKED + 1 { 0 } else { at };
                for (place, sum) in sums.iter().enumerate().skip(first) {
                    self.index.insert((self.line, sum.point), place as u32);
                }
            }
            at
        });
        *near = Some(at);
        &mut sums[at]
    }
}

impl Sum {
    fn at(point: SumPoint) -> Self {
        Sum {
            point,
            unit_seconds: 0,
            covered: 0,
            used: Decimal::ZERO,
            measured: false,
        }
    }
}

impl UnitSeconds {
    pub(super) fn new(periods: Vec<Interval>) -> Self {
        UnitSeconds {
            periods,
            sums: Vec::new(),
            index: FxHashMap::default(),
            made: 0,
        }
    }

    /// How many sums the lines hold so far ([`UnitSeconds::made`]).
    pub(super) fn made(&self) -> usize {
        self.made
    }

    /// Makes room for `lines` lines at once (a vector outgrowing its room copies all of it).
    pub(super) fn reserve(&mut self, lines: usize) {
        self.sums.reserve(lines);
    }

    /// The sums of `line` (none yet where it has none), and the periods.
    fn line(&mut self, line: u32) -> (&[Interval], LineSums<'_>) {
        let at = line as usize;
        if self.sums.len() <= at {
            self.sums.resize_with(at + 1, SmallVec::new);
        }
        let sums = LineSums {
            line,
            sums: &mut self.sums[at],
            index: &mut self.index,
            made: &mut self.made,
        };
        (&self.periods, sums)
    }

    /// Adds `units` held over `during`.
    pub(super) fn add(
        &mut self,
        line: u32,
        schedule: u32,
        schedules: &[Schedule],
        during: Interval,
        units: GpuUnits,
    ) {
        let numer = i128::from(units.numer());
        let (periods, mut sums) = self.line(line);
        let mut near = None;
        walk(
            periods,
            schedule,
            schedules,
            during,
            units.denom(),
            |point, seconds| sums.at(point, &mut near).unit_seconds += numer * i128::from(seconds),
        );
    }

    /// Records the utilization of `units` held over `during`, hour by hour as `hours` hands
    /// each hour's start and ratio to what it is given.
    pub(super) fn add_used(
        &mut self,
        line: u32,
        schedule: u32,
        schedules: &[Schedule],
        during: Interval,
        units: GpuUnits,
        hours: impl FnOnce(&mut dyn FnMut(i64, Decimal)),
    ) {
        let numer = i128::from(units.numer());
        let (periods, mut sums) = self.line(line);
        let mut near = None;
        hours(&mut |hour, utilization| {
            let Some(piece) = during.clip(Interval::new(hour, hour + HOUR)) else {
                return;
            };
            walk(
                periods,
                schedule,
                schedules,
                piece,
                units.denom(),
                |point, seconds| {
                    let unit_seconds = numer * i128::from(seconds);
                    let sum = sums.at(point, &mut near);
                    sum.covered += unit_seconds;
                    sum.used += Decimal::from_i128_with_scale(unit_seconds, 0) * utilization;
                    sum.measured = true;
                },
            );
        });
    }

    /// Multiplies each sum by its price and divides once per denominator, line after line.
    /// Lines `wholly_idle` names (unallocated capacity, where usage is measured) are wholly
    /// covered and wholly idle.
    pub(super) fn price(
        mut self,
        schedules: &[Schedule],
        wholly_idle: impl Fn(u32) -> bool,
    ) -> Result<Parts, CostOverflow> {
        /// Sums of one (period, model label, unit denominator) of a line.
        #[derive(Default)]
        struct Exact {
            seconds: i128,
            priced: Decimal,
            unpriced: i128,
            has_price: bool,
            used: Decimal,
            covered_cost: Decimal,
            used_cost: Decimal,
            has_usage: bool,
            has_priced_usage: bool,
        }
        let mut parts = Parts::with_capacity(self.sums.len());
        // One line's sums at a time, in point order: a period's are a few, looked up by
        // walking them from where the period's begin.
        let mut exact: Vec<((u32, u32, i64), Exact)> = Vec::new();
        for (line, sums) in self.sums.iter_mut().enumerate() {
            let line = line as u32;
            if !sums.is_sorted_by_key(|sum| sum.point) {
                sums.sort_unstable_by_key(|sum| sum.point);
            }
            exact.clear();
            let mut period_from = 0;
            for sum in sums.iter() {
                let (unit_seconds, point) = (sum.unit_seconds, sum.point);
                let (period, schedule_index, segment, denom) = point;
                if unit_seconds == 0 {
                    continue;
                }
                let schedule = &schedules[schedule_index as usize];
                let price = schedule.prices.segments()[segment as usize].price;
                let key = (period, schedule.label.index() as u32, denom);
                if exact.last().is_some_and(|((last, ..), _)| *last != period) {
                    period_from = exact.len();
                }
                let found = exact[period_from..].iter().position(|(k, _)| *k == key);
                let at = match found {
                    Some(at) => period_from + at,
                    None => {
                        exact.push((key, Exact::default()));
                        exact.len() - 1
                    }
                };
                let entry = &mut exact[at].1;
                entry.seconds += unit_seconds;
                match price {
                    Some(price) => {
                        let cost = decimal(unit_seconds)?
                            .checked_mul(price)
                            .ok_or(CostOverflow)?;
                        entry.priced += cost;
                        entry.has_price = true;
                    }
                    None => entry.unpriced += unit_seconds,
                }
                let free = wholly_idle(line);
                let (covered, used) = if free {
                    (unit_seconds, Decimal::ZERO)
                } else if sum.measured {
                    (sum.covered, sum.used)
                } else {
                    continue;
                };
                entry.has_usage = true;
                entry.used += used;
                if let Some(price) = price {
                    entry.has_priced_usage = true;
                    entry.covered_cost += decimal(covered)? * price;
                    entry.used_cost += used * price;
                }
            }
            // The denominators of one (period, label) side by side.
            exact.sort_unstable_by_key(|(key, _)| *key);
            // The unit-seconds of the (period, label) being absorbed, over a common
            // denominator: held against capacity over several denominators, they can add up
            // to exactly nothing where each denominator's hours, divided apart, leave a
            // residue in the 28th digit.
            let mut net: Option<(i128, i64)> = None;
            for (n, &((period, label, denom), ref sums)) in exact.iter().enumerate() {
                let hours = |unit_seconds| per_hour(decimal(unit_seconds)?, denom);
                let part = Figures {
                    gpu_hours: hours(sums.seconds)?,
                    cost: sums
                        .has_price
                        .then(|| per_hour(sums.priced, denom))
                        .transpose()?,
                    unpriced_gpu_hours: hours(sums.unpriced)?,
                    used_gpu_hours: sums
                        .has_usage
                        .then(|| per_hour(sums.used, denom))
                        .transpose()?,
                    idle_cost: sums
                        .has_priced_usage
                        .then(|| {
                            Ok::<_, CostOverflow>(
                                per_hour(sums.covered_cost, denom)?
                                    - per_hour(sums.used_cost, denom)?,
                            )
                        })
                        .transpose()?,
                };
                // Most lines have one unit denominator: their figures are moved in, not added.
                match parts.last_mut() {
                    Some((key, sum)) if *key == (period, line, label) => {
                        sum.absorb(&part);
                        net = net.and_then(|net| add_over(net, sums.seconds, denom));
                    }
                    _ => {
                        parts.push(((period, line, label), part));
                        net = Some((sums.seconds, denom));
                    }
                }
                let run_ends = exact
                    .get(n + 1)
                    .is_none_or(|&((p, l, _), _)| (p, l) != (period, label));
                if run_ends && net.is_some_and(|(seconds, _)| seconds == 0) {
                    let (_, figures) = parts.last_mut().expect("a part was just absorbed");
                    *figures = Figures::default();
                }
            }
        }
        parts.retain(|(_, part)| !part.is_empty());
        Ok(parts)
    }
}

/// `seconds / denom` added to `sum` (unit-seconds over its denominator), over their common
/// denominator; `None` past 128 bits.
fn add_over(sum: (i128, i64), seconds: i128, denom: i64) -> Option<(i128, i64)> {
    let common = common_denominator(sum.1, denom)?;
    let scaled = |value: i128, of: i64| value.checked_mul(i128::from(common / of));
    Some((
        scaled(sum.0, sum.1)?.checked_add(scaled(seconds, denom)?)?,
        common,
    ))
}

fn decimal(n: i128) -> Result<Decimal, CostOverflow> {
    Decimal::try_from_i128_with_scale(n, 0).map_err(|_| CostOverflow)
}

/// `value / (denom × 3600)`: unit-seconds (or their cost) over a unit denominator, in hours.
fn per_hour(value: Decimal, denom: i64) -> Result<Decimal, CostOverflow> {
    let seconds = denom.checked_mul(HOUR).ok_or(CostOverflow)?;
    value
        .checked_div(Decimal::from(seconds))
        .ok_or(CostOverflow)
}

/// Exact figures per (period, line, model label), line after line.
pub(super) type Parts = Vec<((u32, u32, u32), Figures)>;
