//! GPU units: how much of a physical GPU an allocation holds, as an exact fraction.
//!
//! Sharing makes units fractional in ways decimals cannot write down: a quarter of a time-sliced
//! L4 is `1/4`, a `3g.40gb` MIG slice of an A100 is `3/7`, a claim shared by three pods gives each
//! `1/3`. Keeping units as a reduced fraction lets the cost engine sum unit-seconds in integers
//! and divide only once, at the very end.

use std::fmt;

use rust_decimal::Decimal;

/// A non-negative or negative fraction of a whole GPU, always stored reduced with a positive
/// denominator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct GpuUnits {
    numer: i64,
    denom: i64,
}

impl GpuUnits {
    /// No GPU at all.
    pub const ZERO: GpuUnits = GpuUnits { numer: 0, denom: 1 };
    /// One whole GPU.
    pub const ONE: GpuUnits = GpuUnits { numer: 1, denom: 1 };

    /// `count` whole GPUs.
    pub fn whole(count: i64) -> Self {
        GpuUnits {
            numer: count,
            denom: 1,
        }
    }

    /// `numer / denom`, reduced; `None` when the denominator is zero.
    pub fn ratio(numer: i64, denom: i64) -> Option<Self> {
        if denom == 0 {
            return None;
        }
        let sign = if denom < 0 { -1 } else { 1 };
        let g = gcd(numer.unsigned_abs(), denom.unsigned_abs()).max(1) as i64;
        Some(GpuUnits {
            numer: sign * numer / g,
            denom: sign * denom / g,
        })
    }

    /// The exact fraction a decimal stands for (`0.125` is `1/8`); `None` if it does not fit.
    pub fn from_decimal(value: Decimal) -> Option<Self> {
        let value = value.normalize();
        let numer = i64::try_from(value.mantissa()).ok()?;
        let denom = 10_i64.checked_pow(value.scale())?;
        Self::ratio(numer, denom)
    }

    /// The numerator of the reduced fraction.
    pub fn numer(self) -> i64 {
        self.numer
    }

    /// The (positive) denominator of the reduced fraction.
    pub fn denom(self) -> i64 {
        self.denom
    }

    /// True when no GPU is held.
    pub fn is_zero(self) -> bool {
        self.numer == 0
    }

    /// `self × other`, or `None` on overflow.
    pub fn checked_mul(self, other: GpuUnits) -> Option<Self> {
        let numer = i128::from(self.numer) * i128::from(other.numer);
        let denom = i128::from(self.denom) * i128::from(other.denom);
        reduce_wide(numer, denom)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: GpuUnits) -> Option<Self> {
        let numer = i128::from(self.numer) * i128::from(other.denom)
            + i128::from(other.numer) * i128::from(self.denom);
        let denom = i128::from(self.denom) * i128::from(other.denom);
        reduce_wide(numer, denom)
    }

    /// `self ÷ parts`, for splitting a shared device equally; `None` when `parts` is zero.
    pub fn split(self, parts: i64) -> Option<Self> {
        reduce_wide(
            i128::from(self.numer),
            i128::from(self.denom) * i128::from(parts),
        )
    }

    /// The value as a decimal (exact when the denominator divides a power of ten, otherwise to
    /// 28 significant digits). Use only for display and metrics, never inside a cost sum.
    pub fn to_decimal(self) -> Decimal {
        Decimal::from(self.numer) / Decimal::from(self.denom)
    }
}

impl std::ops::Neg for GpuUnits {
    type Output = GpuUnits;

    /// The same amount taken away (the denominator stays positive).
    fn neg(self) -> GpuUnits {
        GpuUnits {
            numer: -self.numer,
            denom: self.denom,
        }
    }
}

impl fmt::Display for GpuUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.denom == 1 {
            write!(f, "{}", self.numer)
        } else {
            write!(f, "{}/{}", self.numer, self.denom)
        }
    }
}

fn reduce_wide(numer: i128, denom: i128) -> Option<GpuUnits> {
    if denom == 0 {
        return None;
    }
    let g = gcd_wide(numer.unsigned_abs(), denom.unsigned_abs()).max(1) as i128;
    let sign = if denom < 0 { -1 } else { 1 };
    Some(GpuUnits {
        numer: i64::try_from(sign * numer / g).ok()?,
        denom: i64::try_from(sign * denom / g).ok()?,
    })
}

/// The least common multiple of two positive denominators, if it fits: the denominator over
/// which fractions of both can be summed as integers.
pub(crate) fn common_denominator(a: i64, b: i64) -> Option<i64> {
    let g = gcd(a.unsigned_abs(), b.unsigned_abs()).max(1) as i64;
    (a / g).checked_mul(b)
}

fn gcd(a: u64, b: u64) -> u64 {
    gcd_wide(u128::from(a), u128::from(b)) as u64
}

fn gcd_wide(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod test {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn fractions_stay_reduced_and_exact() {
        let quarter = GpuUnits::ratio(2, 8).unwrap();
        assert_eq!((quarter.numer(), quarter.denom()), (1, 4));
        let three_sevenths = GpuUnits::ratio(3, 7).unwrap();
        let sum = three_sevenths.checked_add(quarter).unwrap();
        assert_eq!(sum, GpuUnits::ratio(19, 28).unwrap());
        assert_eq!(GpuUnits::whole(2).split(3).unwrap().to_string(), "2/3");
        assert_eq!(
            GpuUnits::from_decimal(dec!(0.125)).unwrap(),
            GpuUnits::ratio(1, 8).unwrap()
        );
        assert_eq!(
            GpuUnits::ratio(1, -2).unwrap(),
            GpuUnits::ratio(-1, 2).unwrap()
        );
        assert_eq!(GpuUnits::ratio(1, 0), None);
        assert_eq!(
            GpuUnits::whole(4).checked_mul(quarter).unwrap(),
            GpuUnits::ONE
        );
        assert_eq!(GpuUnits::ratio(1, 4).unwrap().to_decimal(), dec!(0.25));
    }
}
