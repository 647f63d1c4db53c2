//! A price over time: the piecewise-constant hourly price of one GPU model in one tier.

use rust_decimal::Decimal;

use crate::time::{Interval, UnixSeconds};

/// A stretch of time with one hourly price per whole GPU, or none (unpriced).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PriceSegment {
    /// When this price holds.
    pub during: Interval,
    /// Price per whole GPU-hour; `None` where the rate card has no price.
    pub price: Option<Decimal>,
}

/// Contiguous segments covering all of time, ordered by start.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PriceSchedule {
    segments: Vec<PriceSegment>,
}

impl PriceSchedule {
    /// One price (or none) for all time.
    pub fn constant(price: Option<Decimal>) -> Self {
        PriceSchedule {
            segments: vec![PriceSegment {
                during: Interval::new(UnixSeconds::MIN, UnixSeconds::MAX),
                price,
            }],
        }
    }

    /// Builds a schedule from non-overlapping priced periods; the gaps are unpriced.
    pub fn from_periods(mut periods: Vec<(Interval, Decimal)>) -> Self {
        periods.sort_by_key(|(during, _)| during.start);
        let mut segments = Vec::with_capacity(periods.len() * 2 + 1);
        let mut cursor = UnixSeconds::MIN;
        for (during, price) in periods {
            if during.start > cursor {
                segments.push(PriceSegment {
                    during: Interval::new(cursor, during.start),
                    price: None,
                });
            }
            segments.push(PriceSegment {
                during,
                price: Some(price),
            });
            cursor = during.end;
        }
        if cursor < UnixSeconds::MAX {
            segments.push(PriceSegment {
                during: Interval::new(cursor, UnixSeconds::MAX),
                price: None,
            });
        }
        PriceSchedule { segments }
    }

    /// The segments, in time order.
    pub fn segments(&self) -> &[PriceSegment] {
        &self.segments
    }

    /// Index of the segment holding `at`.
    pub fn segment_at(&self, at: UnixSeconds) -> usize {
        self.segments
            .partition_point(|s| s.during.end <= at)
            .min(self.segments.len() - 1)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn gaps_between_periods_are_unpriced() {
        let s = PriceSchedule::from_periods(vec![
            (Interval::new(100, 200), dec!(2)),
            (Interval::new(0, 100), dec!(1)),
        ]);
        let prices: Vec<_> = s.segments().iter().map(|s| s.price).collect();
        assert_eq!(prices, vec![None, Some(dec!(1)), Some(dec!(2)), None]);
        assert_eq!(s.segment_at(150), 2);
        assert_eq!(s.segment_at(-5), 0);
        assert_eq!(s.segment_at(10_000), 3);
        assert_eq!(PriceSchedule::constant(None).segment_at(0), 0);
    }
}
