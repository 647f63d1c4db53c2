//! Currency, rounding, and the one place where exact amounts become printed amounts.
//!
//! Every figure is computed exactly and rounded once, here, with largest-remainder correction:
//! the printed lines of a column always add up to that column's printed total.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

/// An ISO 4217 currency and how many minor units (cents) it prints with.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Currency {
    code: String,
}

impl Currency {
    /// A currency from its three-letter code; `None` unless it is three ASCII capitals.
    pub fn new(code: &str) -> Option<Self> {
        (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())).then(|| Currency {
            code: code.to_string(),
        })
    }

    /// The three-letter code (`USD`).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Decimal places of the minor unit: 0 for yen-like currencies, 3 for dinar-like, else 2.
    pub fn minor_units(&self) -> u32 {
        match self.code.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

/// How a total is rounded to the minor unit (the rate card's `rounding`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Rounding {
    /// Banker's rounding: ties go to the even digit.
    #[default]
    HalfEven,
    /// Ties go away from zero.
    HalfUp,
}

impl Rounding {
    /// Parses `half-even` or `half-up`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "half-even" => Some(Rounding::HalfEven),
            "half-up" => Some(Rounding::HalfUp),
            _ => None,
        }
    }

    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        }
    }

    /// One amount rounded for print to `places` decimals, always written with them
    /// (`12.5` → `12.50`), once taken to [`SETTLED_PLACES`]: a sum of figures that is exactly
    /// half a unit (as many are: hours to the second) comes to a hair either side of it, the
    /// engine's figures being exact to 28 digits and a stored day's rows to 18 places, and is
    /// rounded as the half it is.
    pub fn money(self, amount: Decimal, places: u32) -> Decimal {
        let settled =
            amount.round_dp_with_strategy(SETTLED_PLACES, RoundingStrategy::MidpointNearestEven);
        fixed(
            settled.round_dp_with_strategy(places, self.strategy()),
            places,
        )
    }
}

/// A column rounded for print: each line and the total, at a fixed number of decimals.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Apportioned {
    /// The rounded lines, in the order given; `None` stays `None` (an empty cell).
    pub lines: Vec<Option<Decimal>>,
    /// The rounded total of the known lines; `None` when every line is unknown.
    pub total: Option<Decimal>,
}

/// Rounds a column to `places` decimals so that the rounded lines add up exactly to the rounded
/// total (largest-remainder method).
///
/// The total is the exact sum rounded with `rounding`. Each line is first rounded down; the
/// units still missing from the total go, one each, to the lines with the largest remainders
/// (ranked to 14 places, earlier lines first on ties). Every printed line is within one unit
/// of its exact value.
pub fn apportion(values: &[Option<Decimal>], places: u32, rounding: Rounding) -> Apportioned {
    apportion_carried(values, places, rounding, &mut Carry::default())
}

/// A sum of decimals kept as integer sums, one per scale: adding a value is adding its mantissa
/// (where adding decimals of different scales rescales one of them every time), and the sums
/// become a decimal once, as [`Decimal`] addition would have made them.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExactSum {
    /// The sum of the mantissas of each scale's values.
    by_scale: [i128; 29],
    /// What was carried out of a scale's sum before it left 128 bits.
    spilled: Decimal,
}

impl ExactSum {
    /// Adds `value`.
    pub fn add(&mut self, value: Decimal) {
        let scale = value.scale();
        let sum = &mut self.by_scale[scale as usize];
        match sum.checked_add(value.mantissa()) {
            Some(added) => *sum = added,
            None => {
                self.spilled += decimal_of(*sum, scale);
                *sum = value.mantissa();
            }
        }
    }

    /// The sum of the values added.
    pub fn total(&self) -> Decimal {
        (0u32..)
            .zip(self.by_scale)
            .filter(|&(_, sum)| sum != 0)
            .fold(self.spilled, |total, (scale, sum)| {
                total + decimal_of(sum, scale)
            })
    }
}

/// `units` of the `scale`th decimal place as a decimal: past a decimal's 96-bit mantissa, its
/// leading digits at fewer places plus the rest, added (and so rounded) as decimals add.
fn decimal_of(units: i128, scale: u32) -> Decimal {
    Decimal::try_from_i128_with_scale(units, scale).unwrap_or_else(|_| {
        // 10¹⁰ takes any 128-bit integer under 2⁹⁶; a value too large even then (scale below
        // 10) overflows as adding it would.
        let cut = 10u32.min(scale);
        let (leading, rest) = (units / ten_to(cut), units % ten_to(cut));
        Decimal::from_i128_with_scale(leading, scale - cut)
            + Decimal::from_i128_with_scale(rest, scale)
    })
}

/// What the parts of a column printed so far add up to: exactly, and as printed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Carry {
    exact: Decimal,
    printed: Decimal,
    /// Where the next part's lines are each wholly held by another column's or wholly not
    /// (unpriced hours of hours, row by row), the exact sum so far of what is held and what
    /// that column printed of it: the printed sum so far is then the held sum's as printed and
    /// the rest's rounded.
    held: Option<(Decimal, Decimal)>,
    /// What the next part brings the printed sum so far to, in place of the exact sum so far
    /// rounded ([`Carry::aiming`]).
    aim: Option<Decimal>,
}

impl Carry {
    /// The carry after parts whose exact values add up to `exact`, printed to `places` by
    /// `rounding`: what the printed parts so far add up to is always the rounded exact sum so
    /// far, so it depends on nothing else (a part printed on its own, later, carries on from it).
    pub fn after(exact: Decimal, places: u32, rounding: Rounding) -> Self {
        Carry {
            exact,
            printed: rounding.money(exact, places),
            ..Carry::default()
        }
    }

    /// The carry after parts whose exact values add up to `exact` and were printed as
    /// `printed` (parts printed apart, each rounded on its own).
    pub fn printed_as(exact: Decimal, printed: Decimal) -> Self {
        Carry {
            exact,
            printed,
            ..Carry::default()
        }
    }

    /// [`Carry::after`] for parts printed [holding](Carry::holding) `held` of their `exact`
    /// sum: what they add up to is `held` rounded and the rest rounded.
    pub fn after_held(exact: Decimal, held: Decimal, places: u32, rounding: Rounding) -> Self {
        let held = Carry {
            exact,
            held: Some((held, rounding.money(held, places))),
            ..Carry::default()
        };
        Carry {
            printed: held.printed_so_far(places, rounding),
            held: None,
            ..held
        }
    }

    /// The exact sum of the parts so far.
    pub fn exact(&self) -> Decimal {
        self.exact
    }

    /// What the parts so far printed.
    pub fn printed(&self) -> Decimal {
        self.printed
    }

    /// The next part brings what is printed so far to `aim` (a line of a report the parts
    /// make up together, rounded with the others), whatever its exact sum rounds to.
    pub fn aiming(self, aim: Decimal) -> Self {
        Carry {
            aim: Some(aim),
            ..self
        }
    }

    /// The next part is printed holding `held`, the exact sum so far (that part's included)
    /// of what another column holds of this one and what that column printed of it, apart
    /// from the rest ([`Carry::after_held`]);
    /// `None`: as one sum.
    pub fn holding(&mut self, held: Option<(Decimal, Decimal)>) {
        self.held = held;
    }

    /// What the printed parts add up to once the exact sum so far is printed.
    fn printed_so_far(&self, places: u32, rounding: Rounding) -> Decimal {
        if let Some(aim) = self.aim {
            return aim;
        }
        match self.held {
            Some((held, printed)) => printed + rounding.money(self.exact - held, places),
            None => rounding.money(self.exact, places),
        }
    }
}

/// [`apportion`] for one part of a column printed in parts (a report streamed a period at a
/// time): the part's total is what brings the printed sum of every part so far to the rounded
/// exact sum so far. However many parts, the printed lines of all of them add up to the rounded
/// total of the whole column.
pub fn apportion_carried(
    values: &[Option<Decimal>],
    places: u32,
    rounding: Rounding,
    carry: &mut Carry,
) -> Apportioned {
    apportion_within(values, None, places, rounding, carry)
}

/// Another column, line by line: each line's exact value and its printed one.
#[derive(Clone, Copy, Debug)]
pub struct Column<'a> {
    pub exact: &'a [Option<Decimal>],
    pub printed: &'a [Option<Decimal>],
}

/// How a column's lines are tied to another column's, besides adding up to their total.
#[derive(Clone, Copy, Debug)]
pub enum Within<'a> {
    /// Each line is part of the same line of another column, printed before (idle cost of
    /// cost, used hours of hours).
    PartOf(Column<'a>),
    /// Each line holds the same line of another column, printed before (hours hold their
    /// unpriced hours).
    Holds(Column<'a>),
}

/// Where a line starts and how far it may move, in units of the last place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Bound {
    /// Rounded down: a line started above it (at its part) has had its unit.
    floor: i128,
    /// Not below this (a whole's part), nor zero.
    low: i128,
    /// Not above this (a part's whole).
    high: Option<i128>,
    /// Tied: none or all of the other column's line, moved only if the other lines cannot
    /// make the total.
    fixed: bool,
}

const UNBOUND: Bound = Bound {
    floor: i128::MAX,
    low: i128::MIN,
    high: None,
    fixed: false,
};

/// A line with none of a column: tied at zero, like a part that is none of its whole. Without a
/// carry it never takes a unit (the units are fewer than the lines with a remainder); carried,
/// a part can need more units than its lines' remainders give (the parts before printed less),
/// and the lines with some of the column take them, a second unit each if need be, before a
/// line of none prints a unit it has none of (unpriced hours on a priced line).
const NONE_OF_IT: Bound = Bound {
    floor: 0,
    low: 0,
    high: None,
    fixed: true,
};

impl Within<'_> {
    /// Where line `i`, of exact `value` rounded down to `floor` units, starts, and its bound.
    fn bound(&self, i: usize, value: Decimal, floor: i128, places: u32) -> (i128, Bound) {
        let units = |printed: Option<Decimal>| printed.map(|v| floor_units(v, places).0);
        // A tied line starts where the other column says and moves only as a last resort,
        // and then within the same bounds as long as that can make the total.
        let tied = |at: i128, low: i128, high: Option<i128>| {
            let bound = Bound {
                floor,
                low,
                high,
                fixed: true,
            };
            (at, bound)
        };
        match *self {
            Within::PartOf(whole) => {
                let high = units(whole.printed[i]);
                if value.is_zero() {
                    tied(0, 0, high)
                } else if let (true, Some(at)) = (whole.exact[i] == Some(value), high) {
                    tied(at, 0, high)
                } else {
                    let bound = Bound {
                        floor,
                        low: 0,
                        high,
                        fixed: false,
                    };
                    (floor, bound)
                }
            }
            Within::Holds(part) => match units(part.printed[i]) {
                Some(at) if part.exact[i] == Some(value) => tied(at, at, None),
                Some(low) => {
                    let bound = Bound {
                        floor,
                        low,
                        high: None,
                        fixed: false,
                    };
                    (floor.max(low), bound)
                }
                None => (floor, UNBOUND),
            },
        }
    }
}

/// [`apportion_carried`] for a column whose lines are tied to another column's (`within`): a
/// part (idle cost of cost) is never printed above its whole, a whole (hours) never below its
/// part (unpriced hours); a line that is none of its whole prints zero, and a line that is all
/// of it prints as the other column does (the idle cost of capacity nobody held is its cost; a
/// model without a price has all its hours unpriced). The other lines start rounded down (or
/// at their part) and take the units that make the total, largest remainders first, or give
/// units back, smallest remainders first, when the lines tied to the other column came to
/// more. Only when those lines cannot make the total does a second unit go to a line, then a
/// tied line move within the bounds (a part that is none of its whole takes a unit under it
/// rather than a part going above its whole), then a line past its bounds: the lines always
/// add up to the total.
pub fn apportion_within(
    values: &[Option<Decimal>],
    within: Option<Within<'_>>,
    places: u32,
    rounding: Rounding,
    carry: &mut Carry,
) -> Apportioned {
    // In whole units of the last place: rounding down, summing and ranking remainders are
    // integer operations, not decimal ones.
    let mut lines: Vec<Option<i128>> = vec![None; values.len()];
    // The lines that may take a first unit: free, at their floor, with room above it.
    let mut eligible: Vec<(i128, usize)> = Vec::with_capacity(values.len());
    let (mut floor_sum, mut remainder_sum, mut start_sum) = (0, Some(0i128), 0);
    let bound_of = |i: usize, value: Decimal, floor: i128| match within {
        Some(within) => within.bound(i, value, floor, places),
        None if value.is_zero() => (floor, NONE_OF_IT),
        None => (floor, UNBOUND),
    };
    for (i, value) in values.iter().enumerate() {
        if let &Some(value) = value {
            let (floor, remainder) = floor_units(value, places);
            floor_sum += floor;
            remainder_sum = remainder_sum.and_then(|sum| sum.checked_add(remainder));
            let (start, bound) = bound_of(i, value, floor);
            if !bound.fixed && start == floor && bound.high.is_none_or(|high| floor < high) {
                eligible.push((ranked_at(remainder), i));
            }
            start_sum += start;
            lines[i] = Some(start);
        }
    }
    if lines.iter().all(Option::is_none) {
        return Apportioned {
            lines: values.to_vec(),
            total: None,
        };
    }
    let exact_total = remainder_sum
        .and_then(|remainders| sum_of_units(floor_sum, remainders, places))
        .unwrap_or_else(|| values.iter().flatten().sum());
    carry.exact += exact_total;
    let printed_so_far = carry.printed_so_far(places, rounding);
    let total = fixed(printed_so_far - carry.printed, places);
    carry.printed = printed_so_far;
    carry.aim = None;
    let total_units = floor_units(total, places).0;
    let missing = total_units - start_sum;
    // Largest remainders first, the earlier line first among equals.
    let order = |a: &(i128, usize), b: &(i128, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    let wanted = usize::try_from(missing).unwrap_or(0);
    if missing > 0 && wanted <= eligible.len() {
        // The usual way: a first unit to each of the `wanted` largest remainders that may
        // take one, found without ranking the rest.
        if wanted < eligible.len() {
            eligible.select_nth_unstable_by(wanted - 1, order);
        }
        for &(_, i) in &eligible[..wanted] {
            *lines[i].as_mut().expect("an eligible line has a value") += 1;
        }
    } else if missing != 0 {
        // The rare way: every line ranked, with its bounds, moved pass after pass.
        let mut ranked: Vec<(i128, usize)> = Vec::with_capacity(values.len());
        let mut bounds = vec![UNBOUND; values.len()];
        for (i, value) in values.iter().enumerate() {
            if let &Some(value) = value {
                let (floor, remainder) = floor_units(value, places);
                bounds[i] = bound_of(i, value, floor).1;
                ranked.push((ranked_at(remainder), i));
            }
        }
        let below_high = |i: usize, line: i128| bounds[i].high.is_none_or(|high| line < high);
        let above_low = |i: usize, line: i128| line > bounds[i].low.max(0);
        let free = |i: usize| !bounds[i].fixed;
        if missing > 0 {
            ranked.sort_by(order);
            let first_unit =
                |i: usize, line: i128| free(i) && below_high(i, line) && line <= bounds[i].floor;
            move_units(&mut lines, &ranked, wanted, 1, |i, line, pass| match pass {
                0 => first_unit(i, line),
                1 => free(i) && below_high(i, line),
                2 => below_high(i, line),
                3 => free(i),
                _ => true,
            });
        } else {
            // Smallest remainders first, the later line first among equals.
            ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            let surplus = usize::try_from(-missing).unwrap_or(usize::MAX);
            move_units(
                &mut lines,
                &ranked,
                surplus,
                -1,
                |i, line, pass| match pass {
                    0 | 1 => free(i) && above_low(i, line),
                    2 => above_low(i, line),
                    _ => line > 0,
                },
            );
        }
    }
    let lines = lines
        .into_iter()
        .map(|units| units.map(|units| from_units(units, places)))
        .collect();
    Apportioned {
        lines,
        total: Some(total),
    }
}

/// Lines of a whole column printed holding their parts ([`Within::Holds`]) past their exact
/// value rounded down or up: (above, below) counts.
pub fn strays(whole: Column<'_>, places: u32) -> (usize, usize) {
    let (mut above, mut below) = (0, 0);
    for (exact, printed) in whole.exact.iter().zip(whole.printed) {
        if let (Some(exact), Some(printed)) = (exact, printed) {
            let (floor, remainder) = floor_units(*exact, places);
            let at = floor_units(*printed, places).0;
            if at > floor + i128::from(remainder != 0) {
                above += 1;
            } else if at < floor {
                below += 1;
            }
        }
    }
    (above, below)
}

/// Where the whole column holding `part` ([`Within::Holds`]: hours holding their unpriced
/// hours) has lines past their exact value rounded (`strays`), moves one of the part's units
/// between lines, keeping the part's total, so that rounding the whole again can keep every
/// line within a unit: a line's part that pins its whole above its floor (all of the line, or
/// its unit in the whole's last unit) takes or gives back the unit another line's part had
/// (or needed). Lines above their ceiling mean the pinned lines left the whole more units than
/// the free lines have room for: a unit goes from a free line's part to a pinned one, largest
/// remainder first. Lines below their floor mean the reverse. Returns whether a unit moved.
pub fn move_held_unit(
    whole: Column<'_>,
    part_exact: &[Option<Decimal>],
    part: &mut [Option<Decimal>],
    places: u32,
    (above, below): (usize, usize),
) -> bool {
    // Each line with a part: its part's floor and remainder, whether it has its unit, and
    // whether that unit pins the whole above the whole's floor.
    struct Line {
        at: usize,
        remainder: i128,
        has_unit: bool,
        pins: bool,
    }
    let lines: Vec<Line> = (0..part.len())
        .filter_map(|at| {
            let (exact, printed) = (part_exact[at]?, part[at]?);
            let whole = whole.exact[at]?;
            let (floor, remainder) = floor_units(exact, places);
            let whole_floor = floor_units(whole, places).0;
            let has_unit = floor_units(printed, places).0 > floor;
            // With its unit, the part reaches above the whole's floor (all of the line, or
            // its last unit shared with the whole's).
            let pins = exact == whole || floor + 1 > whole_floor;
            (remainder != 0).then_some(Line {
                at,
                remainder: ranked_at(remainder),
                has_unit,
                pins,
            })
        })
        .collect();
    let (from, to) = if above > 0 {
        // Free lines give their part's unit (smallest remainder first) to pinned lines
        // without one (largest first).
        (
            lines
                .iter()
                .filter(|l| l.has_unit && !l.pins)
                .min_by_key(|l| (l.remainder, std::cmp::Reverse(l.at))),
            lines
                .iter()
                .filter(|l| !l.has_unit && l.pins)
                .max_by_key(|l| (l.remainder, std::cmp::Reverse(l.at))),
        )
    } else if below > 0 {
        (
            lines
                .iter()
                .filter(|l| l.has_unit && l.pins)
                .min_by_key(|l| (l.remainder, std::cmp::Reverse(l.at))),
            lines
                .iter()
                .filter(|l| !l.has_unit && !l.pins)
                .max_by_key(|l| (l.remainder, std::cmp::Reverse(l.at))),
        )
    } else {
        (None, None)
    };
    let (Some(from), Some(to)) = (from, to) else {
        return false;
    };
    let unit = Decimal::new(1, places);
    for (at, by) in [(from.at, -unit), (to.at, unit)] {
        if let Some(printed) = part[at].as_mut() {
            *printed = fixed(*printed + by, places);
        }
    }
    true
}

/// Moves `count` units, one a line a pass, by `step` (+1 or −1), over the lines in `ranked`
/// order, each pass moving the lines `may(line, units, pass)` lets move, until the units are
/// placed or a pass past the fourth (the last, which any line may take) moves nothing.
fn move_units(
    lines: &mut [Option<i128>],
    ranked: &[(i128, usize)],
    mut count: usize,
    step: i128,
    may: impl Fn(usize, i128, usize) -> bool,
) {
    for pass in 0.. {
        let before = count;
        for &(_, i) in ranked {
            if count == 0 {
                return;
            }
            let Some(line) = lines[i].as_mut() else {
                continue;
            };
            if may(i, *line, pass) {
                *line += step;
                count -= 1;
            }
        }
        // Past the passes that keep lines within their bounds, a pass that moves nothing has
        // no line left to move.
        if pass >= 4 && count == before {
            return;
        }
    }
}

/// The most decimals a column is rounded to (hours print 4, money at most 3).
const MAX_PLACES: u32 = 9;

/// Every remainder of [`floor_units`] is counted in units of this place: the finest a
/// `Decimal` has.
const REMAINDER_PLACES: u32 = 28;

/// Where figures are taken to when a rounding is decided: a total's half (see
/// [`Rounding::money`]) and the rank of remainders. The engine's figures are exact to 28
/// digits and a stored day's rows to 18 places, so figures that are equal (two lines of the
/// same hours to the second), or a sum that is exactly half a unit, differ in their last
/// digits by how they were made; to 14 places they are what they are, and a report over
/// stored days prints what the engine alone prints.
const SETTLED_PLACES: u32 = 14;

/// A remainder of [`floor_units`] as it is ranked: to the nearest unit of the
/// [`SETTLED_PLACES`]th place. Lines whose remainders rank alike tie, and the earlier line
/// goes first.
fn ranked_at(remainder: i128) -> i128 {
    let unit = ten_to(REMAINDER_PLACES - SETTLED_PLACES);
    (remainder + unit / 2) / unit
}

/// `value` rounded down to `places` decimals, counted in units of its last place, and what
/// rounding down left, counted in units of the [`REMAINDER_PLACES`]th place (so that the
/// remainders of values of any scale compare as integers). Both are exact: a `Decimal`'s
/// mantissa is under 2⁹⁶, so with at most [`MAX_PLACES`] places neither overflows.
fn floor_units(value: Decimal, places: u32) -> (i128, i128) {
    debug_assert!(
        places <= MAX_PLACES,
        "figures print at most {MAX_PLACES} places"
    );
    let (mantissa, scale) = (value.mantissa(), value.scale());
    if scale <= places {
        (mantissa * ten_to(places - scale), 0)
    } else {
        let below = ten_to(scale - places);
        // One division: what rounding down leaves is what the floor's units fall short by.
        let floor = mantissa.div_euclid(below);
        (
            floor,
            (mantissa - floor * below) * ten_to(REMAINDER_PLACES - scale),
        )
    }
}

/// 10 to the `n` (at most [`REMAINDER_PLACES`]), looked up rather than multiplied out for each
/// of a column's values.
fn ten_to(n: u32) -> i128 {
    const POWERS: [i128; REMAINDER_PLACES as usize + 1] = {
        let mut powers = [1; REMAINDER_PLACES as usize + 1];
        let mut n = 1;
        while n < powers.len() {
            powers[n] = powers[n - 1] * 10;
            n += 1;
        }
        powers
    };
    POWERS[n as usize]
}

/// The sum of values whose [`floor_units`] add up to `floors` (units of the `places`th place)
/// and `remainders` (units of the [`REMAINDER_PLACES`]th): exact, but rounded as a `Decimal`
/// rounds a sum past its 96 bits, once. `None` where the whole units do not fit a `Decimal`.
fn sum_of_units(floors: i128, remainders: i128, places: u32) -> Option<Decimal> {
    let unit = ten_to(REMAINDER_PLACES - places);
    let whole = floors.checked_add(remainders.div_euclid(unit))?;
    let fraction =
        Decimal::try_from_i128_with_scale(remainders.rem_euclid(unit), REMAINDER_PLACES).ok()?;
    Decimal::try_from_i128_with_scale(whole, places)
        .ok()?
        .checked_add(fraction)
}

/// `units` of the `places`th decimal place as a printed figure, as [`fixed`] prints it.
fn from_units(units: i128, places: u32) -> Decimal {
    match Decimal::try_from_i128_with_scale(units, places) {
        // Exactly `places` decimals, and never a negative zero (an integer has no sign of zero).
        Ok(value) => value,
        // Over 28 digits: whole and fraction added as decimals, with the places that fit.
        Err(_) => {
            let one = 10i128.pow(places);
            let whole = Decimal::from_i128_with_scale(units.div_euclid(one), 0);
            fixed(
                whole + Decimal::from_i128_with_scale(units.rem_euclid(one), places),
                places,
            )
        }
    }
}

/// True when `a` and `b` are one figure made two ways (summed from a day's rows, or from the
/// window's at once; by the engine, or from a stored day's rows): apart by less than a unit of
/// the [`SETTLED_PLACES`]th place, far under any figure a line holds (a second of a 48th of a
/// GPU at a cent an hour is 6·10⁻⁸) and far over how they part (the engine's 28 digits, a stored
/// day's 18 places, summed over a window's rows).
pub fn settled_alike(a: Decimal, b: Decimal) -> bool {
    a.checked_sub(b)
        .is_some_and(|apart| apart.abs() < Decimal::new(1, SETTLED_PLACES))
}

/// What the parts of a column printed so far add up to, their exact sum so far being `so_far`,
/// where all of them are to add up to `line` for an exact sum of `whole` (a group's line of a
/// chargeback printed in parts, known before the first): the sum so far rounded so that it
/// ends at `line` without a jump. Where `line` is `whole` rounded to the nearest unit the sum so
/// far is too (half up); where the line is below that, the sum so far is rounded down; where
/// above, up once it is within the line's distance of the next unit (`so_far` plus `line −
/// whole`, rounded down). Each is the sum so far plus a constant rounded down, so every part
/// prints its exact sum rounded down or up (a part of whole units, exactly them), whatever the
/// parts before: the line is reached by the part where the column's figures end, not forced
/// on it. Taken to [`SETTLED_PLACES`], as the lines are decided. A line a unit or more from
/// `whole` (hours whose priced part is the line's hours less its unpriced hours, each rounded
/// apart) is reached as far as a unit allows, and wholly once the sum so far is all of `whole`.
pub fn toward_line(so_far: Decimal, (whole, line): (Decimal, Decimal), places: u32) -> Decimal {
    if settled_alike(so_far, whole) {
        return fixed(line, places);
    }
    let settled = |v: Decimal| v.round_dp(SETTLED_PLACES);
    let (unit, half) = (Decimal::new(1, places), Decimal::new(5, places + 1));
    let above = line - settled(whole);
    let lift = if above > half {
        above.min(unit - Decimal::new(1, SETTLED_PLACES))
    } else if above <= -half {
        Decimal::ZERO
    } else {
        half
    };
    let printed = (settled(so_far) + lift)
        .round_dp_with_strategy(places, rust_decimal::RoundingStrategy::ToNegativeInfinity);
    fixed(printed, places)
}

/// `value` with exactly `places` decimals and no negative zero, ready to print.
pub fn fixed(value: Decimal, places: u32) -> Decimal {
    let mut value = value.round_dp(places);
    if value.is_zero() {
        value = Decimal::ZERO;
    }
    value.rescale(places);
    value
}

#[cfg(test)]
mod test {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn thirds_add_up_to_the_total() {
        let third = dec!(10) / dec!(3);
        let out = apportion(
            &[Some(third), Some(third), Some(third)],
            2,
            Rounding::HalfEven,
        );
        assert_eq!(out.total, Some(dec!(10.00)));
        assert_eq!(
            out.lines,
            vec![Some(dec!(3.34)), Some(dec!(3.33)), Some(dec!(3.33))]
        );
    }

    #[test]
    fn remainders_equal_to_fourteen_places_tie_and_the_earlier_line_goes_first() {
        // Two half cents, the second read back from stored rows a hair (10⁻²¹) above: one cent
        // to print, and it goes to the first line, as it does when both are exactly 0.005
        // (by remainder alone it went to the second).
        let hair = [Some(dec!(0.005)), Some(dec!(0.005000000000000000001))];
        let exact = [Some(dec!(0.005)), Some(dec!(0.005))];
        for values in [hair, exact] {
            let out = apportion(&values, 2, Rounding::HalfEven);
            assert_eq!(out.total, Some(dec!(0.01)));
            assert_eq!(out.lines, vec![Some(dec!(0.01)), Some(dec!(0.00))]);
        }
        // Apart at the 13th place, the larger remainder takes it.
        let apart = [Some(dec!(0.005)), Some(dec!(0.0050000000001))];
        let out = apportion(&apart, 2, Rounding::HalfEven);
        assert_eq!(out.lines, vec![Some(dec!(0.00)), Some(dec!(0.01))]);
    }

    #[test]
    fn a_column_holding_a_part_prints_the_part_and_the_rest_each_rounded() {
        // 0.00004 h held (unpriced) and 0.00004 h not: as one sum, 0.00008 prints 0.0001; as
        // the held hours and the rest each rounded, 0.0000 and 0.0000.
        let hours = [Some(dec!(0.00004)), Some(dec!(0.00004))];
        let total = |carry: &mut Carry| apportion_carried(&hours, 4, Rounding::HalfEven, carry);
        assert_eq!(total(&mut Carry::default()).total, Some(dec!(0.0001)));
        let mut holding = Carry::default();
        holding.holding(Some((dec!(0.00004), dec!(0.0000))));
        assert_eq!(total(&mut holding).total, Some(dec!(0.0000)));
        // The held part printed as 0.0001 by its column (brought to a line): 0.0001 and the
        // rest 0.0000.
        let mut held_up = Carry::default();
        held_up.holding(Some((dec!(0.00004), dec!(0.0001))));
        assert_eq!(total(&mut held_up).total, Some(dec!(0.0001)));
        // What a part after them carries on from, told their exact sums.
        let after = Carry::after_held(dec!(0.00008), dec!(0.00004), 4, Rounding::HalfEven);
        assert_eq!(
            (after.exact, after.printed),
            (holding.exact, holding.printed)
        );
        assert_eq!(after.printed, dec!(0.0000));
        // 0.00006 and 0.00003: 0.0001 and 0.0000, where as one sum 0.00009 prints 0.0001 too.
        let after = Carry::after_held(dec!(0.00009), dec!(0.00006), 4, Rounding::HalfEven);
        assert_eq!(after.printed, dec!(0.0001));
    }

    #[test]
    fn a_total_of_exactly_half_a_unit_rounds_as_a_half() {
        // Thirds and sixths of half a cent, each divided to 28 digits: three make
        // 0.0050000000000000000000000001 and six 0.0049999999999999999999999998, which rounded
        // as they are gave 0.01 half-even and 0.00 half-up. Both are half a cent.
        let thirds = vec![Some(dec!(0.005) / dec!(3)); 3];
        let sixths = vec![Some(dec!(0.005) / dec!(6)); 6];
        assert_eq!(
            thirds.iter().flatten().sum::<Decimal>(),
            dec!(0.0050000000000000000000000001)
        );
        assert_eq!(
            sixths.iter().flatten().sum::<Decimal>(),
            dec!(0.0049999999999999999999999998)
        );
        for (values, rounding, cents) in [
            (&thirds, Rounding::HalfEven, dec!(0.00)),
            (&sixths, Rounding::HalfEven, dec!(0.00)),
            (&thirds, Rounding::HalfUp, dec!(0.01)),
            (&sixths, Rounding::HalfUp, dec!(0.01)),
        ] {
            let out = apportion(values, 2, rounding);
            assert_eq!(out.total, Some(cents), "{rounding:?} {values:?}");
            // The lines tie, and the first takes the cent.
            assert_eq!(out.lines[0], Some(cents));
            assert_eq!(out.lines.iter().flatten().sum::<Decimal>(), cents);
        }
    }

    #[test]
    fn unknown_lines_stay_unknown_and_totals_follow_the_rounding_mode() {
        let out = apportion(&[Some(dec!(0.125)), None], 2, Rounding::HalfEven);
        assert_eq!(out.total, Some(dec!(0.12)));
        assert_eq!(out.lines, vec![Some(dec!(0.12)), None]);
        let out = apportion(&[Some(dec!(0.125)), None], 2, Rounding::HalfUp);
        assert_eq!(out.total, Some(dec!(0.13)));
        assert_eq!(out.lines, vec![Some(dec!(0.13)), None]);
        assert_eq!(apportion(&[None], 2, Rounding::HalfUp).total, None);
    }

    #[test]
    fn negative_lines_round_consistently() {
        let out = apportion(
            &[Some(dec!(-0.004)), Some(dec!(1.006))],
            2,
            Rounding::HalfEven,
        );
        assert_eq!(out.total, Some(dec!(1.00)));
        let sum: Decimal = out.lines.iter().flatten().sum();
        assert_eq!(sum, dec!(1.00));
        assert_eq!(fixed(dec!(-0.0001), 2).to_string(), "0.00");
    }

    /// `values` rounded to cents half-even as parts of a whole exactly `exact`, printed as
    /// `printed`.
    fn part_of(
        values: &[Option<Decimal>],
        exact: &[Option<Decimal>],
        printed: &[Option<Decimal>],
    ) -> Apportioned {
        let whole = Column { exact, printed };
        let within = Some(Within::PartOf(whole));
        apportion_within(values, within, 2, Rounding::HalfEven, &mut Carry::default())
    }

    #[test]
    fn a_unit_beyond_the_remainders_goes_to_a_line_with_some_of_the_column() {
        // A part of two lines, none and one unit (0.0001), brought to two units: their floors
        // make one and neither has a remainder. The unit goes to the line with some of the
        // column, a second unit on it, not to the first line, which has none (it did: 0.0001
        // unpriced hours on a priced line).
        let mut carry = Carry::default().aiming(dec!(0.0002));
        let values = [Some(dec!(0)), Some(dec!(0.0001))];
        let out = apportion_carried(&values, 4, Rounding::HalfEven, &mut carry);
        assert_eq!(out.lines, vec![Some(dec!(0.0000)), Some(dec!(0.0002))]);
        // Where no line has any, a line takes it all the same: the lines add up to the total.
        let mut carry = Carry::default().aiming(dec!(0.0001));
        let out = apportion_carried(&[Some(dec!(0)); 2], 4, Rounding::HalfEven, &mut carry);
        assert_eq!(out.lines, vec![Some(dec!(0.0001)), Some(dec!(0.0000))]);
    }

    #[test]
    fn sums_so_far_rounded_toward_a_line_end_at_it_and_each_part_rounds_its_own_sum() {
        // In cents. A whole of 1.006 whose line is 1.00 (below its nearest, 1.01: the
        // chargeback gave the cent to others): rounded down all along, a part of 0.006 prints
        // 0.00 and one of a whole 1.00 prints 1.00, where the nearest rounding printed 0.01
        // and left 0.99 for the whole part.
        let toward = |so_far, line| toward_line(so_far, (dec!(1.006), line), 2);
        assert_eq!(toward(dec!(0.006), dec!(1.00)), dec!(0.00));
        assert_eq!(toward(dec!(1.006), dec!(1.00)), dec!(1.00));
        // Its line 1.01, the nearest: rounded to the nearest all along.
        assert_eq!(toward(dec!(0.006), dec!(1.01)), dec!(0.01));
        assert_eq!(toward(dec!(0.004), dec!(1.01)), dec!(0.00));
        // A whole of 1.004 whose line is 1.01 (above its nearest): up once the sum so far is
        // within 0.006 of the next cent, so 0.004 prints 0.01 and the whole part 1.00.
        let above = |so_far| toward_line(so_far, (dec!(1.004), dec!(1.01)), 2);
        assert_eq!(above(dec!(0.003)), dec!(0.00));
        assert_eq!(above(dec!(0.004)), dec!(0.01));
        assert_eq!(above(dec!(1.004)), dec!(1.01));
        // A line two cents from its whole is reached where the sum so far is all of it.
        let far = |so_far| toward_line(so_far, (dec!(1.004), dec!(0.98)), 2);
        assert_eq!(far(dec!(0.504)), dec!(0.50));
        assert_eq!(far(dec!(1.004)), dec!(0.98));
    }

    #[test]
    fn a_part_is_never_printed_above_its_whole() {
        // Cost: 0.0045 + 0.0055 = 0.01, and the unit goes to the second line (remainder 0.0055).
        let cost = apportion(
            &[Some(dec!(0.0045)), Some(dec!(0.0055))],
            2,
            Rounding::HalfEven,
        );
        assert_eq!(cost.lines, vec![Some(dec!(0.00)), Some(dec!(0.01))]);
        // Idle: 0.0046 + 0.0005 = 0.0051 → 0.01. By remainder alone it would go to the first
        // line, idle 0.01 against a printed cost of 0.00; within the caps it goes to the second.
        let idle = [Some(dec!(0.0046)), Some(dec!(0.0005))];
        let alone = apportion(&idle, 2, Rounding::HalfEven);
        assert_eq!(alone.lines, vec![Some(dec!(0.01)), Some(dec!(0.00))]);
        let cost_exact = [Some(dec!(0.0045)), Some(dec!(0.0055))];
        let within = part_of(&idle, &cost_exact, &cost.lines);
        assert_eq!(within.total, Some(dec!(0.01)));
        assert_eq!(within.lines, vec![Some(dec!(0.00)), Some(dec!(0.01))]);
    }

    #[test]
    fn a_part_that_is_all_or_none_of_its_whole_prints_as_such() {
        // Cost: A (capacity nobody held) 0.0165, B 0.0134: 0.0299 → 0.03, floors 0.01 each,
        // the unit to A's larger remainder: A 0.02, B 0.01.
        let cost_exact = [Some(dec!(0.0165)), Some(dec!(0.0134))];
        let cost = apportion(&cost_exact, 2, Rounding::HalfEven);
        assert_eq!(cost.lines, vec![Some(dec!(0.02)), Some(dec!(0.01))]);
        // Idle: all of A's (0.0165), 0.0070 of B's: 0.0235 → 0.02. By remainder alone the
        // unit above the floors (0.01 + 0.00) goes to B (0.70 against 0.65): A would show
        // 0.01 idle of 0.02. A is all idle, so it prints its cost, 0.02, and B its floor.
        let idle = [Some(dec!(0.0165)), Some(dec!(0.0070))];
        let printed = |values: &[Option<Decimal>]| part_of(values, &cost_exact, &cost.lines);
        let within = printed(&idle);
        assert_eq!(within.total, Some(dec!(0.02)));
        assert_eq!(within.lines, vec![Some(dec!(0.02)), Some(dec!(0.00))]);
        // None of A's and all of B's (idle 0.0134 → 0.01): A prints zero and B its cost.
        let within = printed(&[Some(dec!(0)), Some(dec!(0.0134))]);
        assert_eq!(within.total, Some(dec!(0.01)));
        assert_eq!(within.lines, vec![Some(dec!(0.00)), Some(dec!(0.01))]);
    }

    #[test]
    fn a_whole_holds_its_printed_part() {
        // Unpriced hours, rounded first (to 2 places here): A 0.55556, all of A's hours, and
        // none of B's: A 0.56, B 0.00.
        let part_exact = [Some(dec!(0.55556)), Some(dec!(0))];
        let part = apportion(&part_exact, 2, Rounding::HalfEven);
        assert_eq!(part.lines, vec![Some(dec!(0.56)), Some(dec!(0.00))]);
        // Hours: A 0.55556, B 0.27778: 0.83334 → 0.83. By remainder alone A 0.55, B 0.28, A
        // below its 0.56 unpriced. A is all unpriced, so it prints 0.56; B starts at its
        // floor, 0.27, and 0.56 + 0.27 is the total.
        let hours = apportion_within(
            &[Some(dec!(0.55556)), Some(dec!(0.27778))],
            Some(Within::Holds(Column {
                exact: &part_exact,
                printed: &part.lines,
            })),
            2,
            Rounding::HalfEven,
            &mut Carry::default(),
        );
        assert_eq!(hours.total, Some(dec!(0.83)));
        assert_eq!(hours.lines, vec![Some(dec!(0.56)), Some(dec!(0.27))]);
    }

    #[test]
    fn an_exact_sum_adds_values_of_every_scale_and_past_a_mantissa() {
        let mut sum = ExactSum::default();
        for value in [dec!(0.1), dec!(2), dec!(-0.003), dec!(1.25)] {
            sum.add(value);
        }
        // 0.1 + 2 − 0.003 + 1.25, by hand.
        assert_eq!(sum.total(), dec!(3.347));
        // Three values whose mantissas (at 28 places) add up past 2⁹⁶: 3 × 7.5 = 22.5.
        let mut large = ExactSum::default();
        for _ in 0..3 {
            large.add(dec!(7.5000000000000000000000000000));
        }
        assert_eq!(large.total(), dec!(22.5));
        // 25 × 7.9 = 197.5: a sum of 28 places 25 times past a decimal's mantissa.
        let mut larger = ExactSum::default();
        for _ in 0..25 {
            larger.add(dec!(7.9000000000000000000000000000));
        }
        assert_eq!(larger.total(), dec!(197.5));
        // A sum about to leave 128 bits (i128::MAX − 10²⁸ + 1 units at 28 places) is carried
        // out before 2.5 is added: 17014118345.0469231731687303715884105728 + 2.5, to the
        // ~29 digits a decimal holds.
        let mut near = ExactSum::default();
        near.by_scale[28] = i128::MAX - 10i128.pow(28) + 1;
        near.add(dec!(2.5000000000000000000000000000));
        let off = near.total() - dec!(17014118347.546923173168730372);
        assert!(off.abs() < dec!(0.000000000000000002), "{off}");
        assert_eq!(ExactSum::default().total(), Decimal::ZERO);
    }

    proptest::proptest! {
        #[test]
        fn parts_stay_within_wholes_and_add_up(
            lines in proptest::collection::vec((0i64..100_000, proptest::prop_oneof![proptest::strategy::Just(0u32), proptest::strategy::Just(1000), 0u32..=1000]), 1..40),
            parts in 1usize..4,
        ) {
            // Wholes in 1/10,000 units and each part a fraction (per mille) of its whole,
            // printed in parts as a streamed report is.
            let whole: Vec<Option<Decimal>> =
                lines.iter().map(|&(w, _)| Some(Decimal::new(w, 4))).collect();
            let part: Vec<Option<Decimal>> = lines
                .iter()
                .map(|&(w, per_mille)| Some(Decimal::new(w * i64::from(per_mille), 7)))
                .collect();
            let (mut whole_carry, mut part_carry) = (Carry::default(), Carry::default());
            let mut printed = Decimal::ZERO;
            let chunk = lines.len().div_ceil(parts);
            for (wholes, parts) in whole.chunks(chunk).zip(part.chunks(chunk)) {
                let w = apportion_carried(wholes, 2, Rounding::HalfEven, &mut whole_carry);
                let within = Within::PartOf(Column { exact: wholes, printed: &w.lines });
                let p = apportion_within(parts, Some(within), 2, Rounding::HalfEven, &mut part_carry);
                let sum: Decimal = p.lines.iter().flatten().sum();
                proptest::prop_assert_eq!(sum, p.total.unwrap());
                printed += sum;
                // In one part a part always fits under its whole (the exact parts' total is
                // at most the wholes'); across parts, rounding running totals can move a unit
                // into a part whose wholes have no room left, and the total wins.
                if chunk == lines.len() {
                    for (p, w) in p.lines.iter().zip(&w.lines) {
                        proptest::prop_assert!(p <= w, "part {:?} above whole {:?}", p, w);
                    }
                    // None of a whole prints zero and all of it prints the whole, unless the
                    // other lines, two units up or down each (not past their whole or
                    // zero), cannot make the total: then the total wins.
                    let cents = |v: Decimal| (v * dec!(100)).floor();
                    let (mut tied, mut low, mut high) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
                    for ((exact, w), &(_, per_mille)) in part.iter().zip(&w.lines).zip(&lines) {
                        let (exact, w) = (exact.unwrap(), cents(w.unwrap()));
                        if exact.is_zero() {
                            continue;
                        } else if per_mille == 1000 {
                            tied += w;
                        } else {
                            let floor = cents(exact);
                            low += (floor - dec!(2)).max(Decimal::ZERO);
                            high += (floor + dec!(2)).min(w);
                        }
                    }
                    let total = cents(p.total.unwrap());
                    if tied + low <= total && total <= tied + high {
                        for ((p, w), &(_, per_mille)) in p.lines.iter().zip(&w.lines).zip(&lines) {
                            if per_mille == 0 {
                                proptest::prop_assert_eq!(*p, Some(Decimal::new(0, 2)));
                            }
                            if per_mille == 1000 {
                                proptest::prop_assert_eq!(p, w);
                            }
                        }
                    }
                }
            }
            let exact: Decimal = part.iter().flatten().sum();
            proptest::prop_assert_eq!(printed, exact.round_dp(2));
        }
    }

    #[test]
    fn a_column_is_summed_exactly_where_a_running_decimal_sum_rounds() {
        // 5.0000000000000000000000000001 twice is 10.0000000000000000000000000002: 30 digits,
        // which a `Decimal` rounds to 10 before the -10 comes. In units: 500 + 500 - 1000
        // cents, and two units of the 28th place left over.
        let tiny = Decimal::new(1, 28);
        let five = dec!(5) + tiny;
        let values = [Some(five), Some(five), Some(dec!(-10))];
        let running: Decimal = values.iter().flatten().sum();
        assert_eq!(running, Decimal::ZERO);
        let (floors, remainders) = values
            .iter()
            .flatten()
            .map(|&v| floor_units(v, 2))
            .fold((0, 0), |(f, r), (floor, rest)| (f + floor, r + rest));
        assert_eq!((floors, remainders), (0, 2));
        assert_eq!(sum_of_units(floors, remainders, 2), Some(tiny + tiny));
        // 10²⁵ units of the 28th place are 0.001: 12.34 + 0.001 = 12.341.
        assert_eq!(sum_of_units(1234, 10i128.pow(25), 2), Some(dec!(12.341)));
        // 10²⁶ of them are a whole cent, carried into the cents: 12.34 + 0.0125 = 12.3525.
        assert_eq!(
            sum_of_units(1234, 125 * 10i128.pow(24), 2),
            Some(dec!(12.3525))
        );
        // Whole units past a `Decimal`'s 96 bits have no sum here.
        assert_eq!(sum_of_units(i128::MAX / 2, 0, 2), None);
    }

    proptest::proptest! {
        /// Where a running `Decimal` sum of a column is exact (under 2⁴⁰ at 14 places, 50 of
        /// them stay within 96 bits), the sum of its units is that sum.
        #[test]
        fn units_add_up_to_the_decimal_sum(
            values in proptest::collection::vec((-(1i64 << 40)..(1i64 << 40), 0u32..=14), 1..50),
            places in 0u32..=4,
        ) {
            let values: Vec<Decimal> = values.iter().map(|&(m, scale)| Decimal::new(m, scale)).collect();
            let (floors, remainders) = values
                .iter()
                .map(|&v| floor_units(v, places))
                .fold((0, 0), |(f, r), (floor, rest)| (f + floor, r + rest));
            let sum: Decimal = values.iter().sum();
            proptest::prop_assert_eq!(sum_of_units(floors, remainders, places), Some(sum));
        }
    }

    proptest::proptest! {
        /// Rounding down in whole units is `Decimal`'s rounding toward negative infinity, and
        /// the remainder is exactly what it leaves, for decimals of every sign, size and scale.
        #[test]
        fn units_round_down_as_decimals_do(
            lo in proptest::prelude::any::<u32>(),
            mid in proptest::prelude::any::<u32>(),
            hi in proptest::prelude::any::<u32>(),
            negative in proptest::prelude::any::<bool>(),
            scale in 0u32..=28,
            places in 0u32..=4,
        ) {
            let value = Decimal::from_parts(lo, mid, hi, negative, scale);
            let floor = value.round_dp_with_strategy(places, RoundingStrategy::ToNegativeInfinity);
            let (units, remainder) = floor_units(value, places);
            proptest::prop_assert_eq!(from_units(units, places), fixed(floor, places));
            proptest::prop_assert_eq!(
                Decimal::from_i128_with_scale(remainder, REMAINDER_PLACES),
                value - floor
            );
        }
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::new("USD").unwrap().minor_units(), 2);
        assert_eq!(Currency::new("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::new("KWD").unwrap().minor_units(), 3);
        assert!(Currency::new("usd").is_none());
    }
}
