//! FOCUS 1.3's split-cost allocation columns: `AllocatedMethodId`, each row's `AllocatedRatio`
//! of its origin charge (a node's capacity of one model and tier in the charge period), and the
//! `AllocatedMethodDetails` JSON that carries it.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::Resource;
use crate::cost::{CostLine, Figures};
use crate::output::cells::{push_decimal, push_normalized};
use crate::time::Interval;

/// `AllocatedMethodId`: a node's GPU capacity for a charge period, split over the pods and DRA
/// claims that held its GPUs by GPU-hours held, the rest to the node's unallocated row.
pub const ALLOCATED_METHOD: &str = "tollgate-gpu-hours";

/// Places `AllocatedRatio` is given to; the ratios of one origin charge add up to exactly 1.
pub(super) const RATIO_PLACES: u32 = 10;

/// `AllocatedMethodDetails` around its two numbers: the row's `AllocatedRatio`, then its
/// GPU-hours.
const DETAILS: [&str; 3] = [
    "{\"Elements\":[{\"AllocatedRatio\":",
    ",\"UsageUnit\":\"GPU-Hours\",\"UsageQuantity\":",
    "}]}",
];

/// [`DETAILS`] as a CSV cell: quoted, its quotes doubled.
pub(super) const DETAILS_QUOTED: [&str; 3] = [
    "\"{\"\"Elements\"\":[{\"\"AllocatedRatio\"\":",
    ",\"\"UsageUnit\"\":\"\"GPU-Hours\"\",\"\"UsageQuantity\"\":",
    "}]}\"",
];

/// Appends the `AllocatedMethodDetails` JSON of a row with this ratio and GPU-hours.
pub(in crate::output) fn allocated_details(ratio: Decimal, hours: Decimal, out: &mut Vec<u8>) {
    push_details(out, DETAILS, ratio, hours);
}

/// Appends the `AllocatedMethodDetails` of a row around `pieces`: [`DETAILS`], or
/// [`DETAILS_QUOTED`] for its CSV cell.
pub(super) fn push_details(out: &mut Vec<u8>, pieces: [&str; 3], ratio: Decimal, hours: Decimal) {
    let [open, between, close] = pieces;
    out.extend_from_slice(open.as_bytes());
    push_normalized(out, ratio);
    out.extend_from_slice(between.as_bytes());
    push_decimal(out, hours);
    out.extend_from_slice(close.as_bytes());
}

/// Each line's `AllocatedRatio`: its GPU-hours (as printed) over those of every line of the same
/// origin charge (the node's capacity of one model and tier in the period), to [`RATIO_PLACES`]
/// places, the largest line taking what rounding left so that each origin's ratios add up to
/// exactly 1. Lines that are not FOCUS resources get 0.
pub(super) fn allocated_ratios(
    lines: &[CostLine],
    resources: &[Option<Resource<'_>>],
    rounded: &[Figures],
) -> Vec<Decimal> {
    // Each line's origin, numbered as met; then each origin's lines side by side, in line
    // order (counted first: no list per origin).
    let mut numbers: FxHashMap<(Interval, &str, &str, &str), u32> = FxHashMap::default();
    let origins: Vec<Option<u32>> = lines
        .iter()
        .zip(resources)
        .map(|(line, resource)| {
            let r = resource.as_ref()?;
            let next = numbers.len() as u32;
            Some(
                *numbers
                    .entry((line.period, r.node, r.gpu_model, r.tier))
                    .or_insert(next),
            )
        })
        .collect();
    let mut starts = vec![0; numbers.len() + 1];
    for &origin in origins.iter().flatten() {
        starts[origin as usize + 1] += 1;
    }
    for at in 1..starts.len() {
        starts[at] += starts[at - 1];
    }
    let mut members = vec![0; starts[numbers.len()]];
    let mut next = starts.clone();
    for (i, origin) in origins.iter().enumerate() {
        if let Some(origin) = origin {
            members[next[*origin as usize]] = i;
            next[*origin as usize] += 1;
        }
    }
    let mut ratios = vec![Decimal::ZERO; lines.len()];
    for bounds in starts.windows(2) {
        let members = &members[bounds[0]..bounds[1]];
        let hours = |i: usize| rounded[i].gpu_hours;
        let total: Decimal = members.iter().map(|&i| hours(i)).sum();
        if total.is_zero() {
            let share = (Decimal::ONE / Decimal::from(members.len())).round_dp(RATIO_PLACES);
            members.iter().for_each(|&i| ratios[i] = share);
        } else {
            members
                .iter()
                .for_each(|&i| ratios[i] = ratio(hours(i), total));
        }
        let sum: Decimal = members.iter().map(|&i| ratios[i]).sum();
        if let Some(&largest) = members
            .iter()
            .max_by_key(|&&i| (hours(i), std::cmp::Reverse(i)))
        {
            ratios[largest] += Decimal::ONE - sum;
        }
    }
    ratios
}

/// `part / whole` rounded to [`RATIO_PLACES`] places, ties to even: in integers where the
/// figures fit (hours printed to a few places), else in decimals.
fn ratio(part: Decimal, whole: Decimal) -> Decimal {
    let scale = part.scale().max(whole.scale());
    let at_scale = |d: Decimal| d.mantissa().checked_mul(10i128.pow(scale - d.scale()));
    let integers = (|| {
        (whole > Decimal::ZERO).then_some(())?;
        let part = at_scale(part)?.checked_mul(10i128.pow(RATIO_PLACES))?;
        let whole = at_scale(whole)?;
        // Hours of a node's day fit 64 bits: their division is the quicker one.
        let (quotient, remainder) = match (u64::try_from(part), u64::try_from(whole)) {
            (Ok(part), Ok(whole)) => (i128::from(part / whole), i128::from(part % whole)),
            _ => (part.div_euclid(whole), part.rem_euclid(whole)),
        };
        // Ties to even: up past the midpoint, or at it when the quotient is odd.
        let up = match (2 * remainder).cmp(&whole.abs()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => quotient % 2 != 0,
            std::cmp::Ordering::Less => false,
        };
        Decimal::try_from_i128_with_scale(quotient + i128::from(up), RATIO_PLACES).ok()
    })();
    integers.unwrap_or_else(|| (part / whole).round_dp(RATIO_PLACES))
}

#[cfg(test)]
mod tests {
    use super::super::Cell;
    use super::*;
    use crate::output::cells::push_text;

    proptest::proptest! {
        /// A ratio of printed hours in integers is the decimal quotient rounded (ties to even).
        #[test]
        fn ratios_of_hours_are_their_decimal_quotients_rounded(
            part in 0i64..=100_000_000,
            whole in 1i64..=100_000_000,
            part_scale in 0u32..=4,
        ) {
            let (part, whole) = (Decimal::new(part, part_scale), Decimal::new(whole, 4));
            proptest::prop_assert_eq!(ratio(part, whole), (part / whole).round_dp(RATIO_PLACES));
        }
    }

    #[test]
    fn allocation_details_are_json_and_their_csv_cell_is_that_json_quoted() {
        let (ratio, hours) = (Decimal::new(1_324_574_299, 10), Decimal::new(254_318, 4));
        let details = |ratio, hours| {
            let mut json = Vec::new();
            allocated_details(ratio, hours, &mut json);
            String::from_utf8(json).expect("UTF-8")
        };
        assert_eq!(
            details(ratio, hours),
            r#"{"Elements":[{"AllocatedRatio":0.1324574299,"UsageUnit":"GPU-Hours","UsageQuantity":25.4318}]}"#
        );
        let mut cell = Vec::new();
        Cell::Details(ratio, hours).push(&mut cell);
        assert_eq!(
            String::from_utf8(cell).expect("UTF-8"),
            r#""{""Elements"":[{""AllocatedRatio"":0.1324574299,""UsageUnit"":""GPU-Hours"",""UsageQuantity"":25.4318}]}""#
        );
        // The quoted pieces are the JSON's as any text cell prints it, whatever the numbers.
        for (ratio, hours) in [
            (Decimal::ZERO, Decimal::new(0, 4)),
            (Decimal::new(5, 1), Decimal::new(123_456_789, 4)),
        ] {
            let (mut quoted, mut cell) = (Vec::new(), Vec::new());
            push_text(&mut quoted, &details(ratio, hours));
            Cell::Details(ratio, hours).push(&mut cell);
            assert_eq!(cell, quoted);
        }
        // A whole ratio prints without its places.
        assert_eq!(
            details(Decimal::new(10_000_000_000, 10), Decimal::new(240_000, 4)),
            r#"{"Elements":[{"AllocatedRatio":1,"UsageUnit":"GPU-Hours","UsageQuantity":24.0000}]}"#
        );
    }

    #[test]
    fn a_ratio_on_a_midpoint_goes_to_the_even_place() {
        // 1/2^11 = 0.00048828125: eleven places, the last a 5.
        let whole = Decimal::from(2048);
        assert_eq!(ratio(Decimal::ONE, whole).to_string(), "0.0004882812");
        assert_eq!(ratio(Decimal::from(3), whole).to_string(), "0.0014648438");
    }
}
