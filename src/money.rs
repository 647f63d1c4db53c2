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
/// (earlier lines first on ties). Every printed line is within one unit of its exact value.
pub fn apportion(values: &[Option<Decimal>], places: u32, rounding: Rounding) -> Apportioned {
    apportion_carried(values, places, rounding, &mut Carry::default())
}

/// What the parts of a column printed so far add up to: exactly, and as printed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Carry {
    exact: Decimal,
    printed: Decimal,
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
    let known: Vec<(usize, Decimal)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    if known.is_empty() {
        return Apportioned {
            lines: values.to_vec(),
            total: None,
        };
    }
    let exact_total: Decimal = known.iter().map(|&(_, v)| v).sum();
    carry.exact += exact_total;
    let printed_so_far = fixed(
        carry
            .exact
            .round_dp_with_strategy(places, rounding.strategy()),
        places,
    );
    let total = fixed(printed_so_far - carry.printed, places);
    carry.printed = printed_so_far;
    let unit = Decimal::new(1, places);
    let mut lines = values.to_vec();
    let mut remainders: Vec<(Decimal, usize)> = Vec::with_capacity(known.len());
    let mut floor_sum = Decimal::ZERO;
    for &(i, v) in &known {
        let floor = v.round_dp_with_strategy(places, RoundingStrategy::ToNegativeInfinity);
        floor_sum += floor;
        remainders.push((v - floor, i));
        lines[i] = Some(floor);
    }
    let missing = ((total - floor_sum) / unit).round();
    let missing = usize::try_from(missing.mantissa().max(0)).unwrap_or(0);
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(missing) {
        if let Some(v) = lines[i].as_mut() {
            *v += unit;
        }
    }
    for v in lines.iter_mut().flatten() {
        *v = fixed(*v, places);
    }
    Apportioned {
        lines,
        total: Some(total),
    }
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

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::new("USD").unwrap().minor_units(), 2);
        assert_eq!(Currency::new("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::new("KWD").unwrap().minor_units(), 3);
        assert!(Currency::new("usd").is_none());
    }
}
