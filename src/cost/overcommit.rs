//! Over-commit: pods holding more of a node's GPUs than the node has.
//!
//! Unallocated capacity is what a node has less what its pods hold. When the pods hold more —
//! a shared claim still counting a pod that left it, MIG overrides summing past one GPU, a
//! device plugin advertising more than the node's labels say — that difference would go
//! negative and quietly cancel idle capacity elsewhere. Instead it is clamped at zero, instant
//! by instant, and the excess is reported (node, model, GPU-hours) so someone can fix the cause.
//! The pods are still charged in full: what they held is what the cluster said they held.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::resolver::Resolver;
use super::sums::{CostOverflow, UnitSeconds};
use crate::allocation::Sym;
use crate::time::Interval;
use crate::units::{GpuUnits, common_denominator};

/// What pods held, per key (a node's GPUs of one product, numbered from 0), as changes over
/// time.
pub(super) struct Holdings {
    changes: Vec<Vec<(i64, GpuUnits)>>,
}

/// A piece of time during which pods held `units` more than capacity segment `segment` of `key`
/// has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Excess {
    pub key: usize,
    pub segment: usize,
    pub during: Interval,
    pub units: GpuUnits,
}

impl Holdings {
    pub fn new() -> Self {
        Holdings {
            changes: Vec::new(),
        }
    }

    /// Records that `units` were held under `key` over `during`.
    pub fn hold(&mut self, key: usize, during: Interval, units: GpuUnits) {
        if self.changes.len() <= key {
            self.changes.resize_with(key + 1, Vec::new);
        }
        let changes = &mut self.changes[key];
        changes.push((during.start, units));
        changes.push((during.end, -units));
    }

    /// Every piece of time where what was held under a key exceeds the capacity in force,
    /// against `capacity(key)`: its segments, each a stretch of time and the units it has.
    /// `None` when a sum does not fit in 128-bit integers.
    pub fn excess<'c>(
        self,
        capacity: impl Fn(usize) -> &'c [(Interval, GpuUnits)],
    ) -> Option<Vec<Excess>> {
        let mut found = Vec::new();
        for (key, changes) in self.changes.into_iter().enumerate() {
            if changes.is_empty() {
                continue;
            }
            let segments = capacity(key);
            // Summed as integers over one common denominator: no fraction arithmetic per change.
            let mut denom: i64 = 1;
            for units in changes
                .iter()
                .map(|c| c.1)
                .chain(segments.iter().map(|s| s.1))
            {
                let d = units.denom();
                if d != 1 && denom % d != 0 {
                    denom = common_denominator(denom, d)?;
                }
            }
            let (mut last_denom, mut factor) = (1, denom);
            let mut scaled = |units: GpuUnits| -> Option<i64> {
                if units.denom() != last_denom {
                    (last_denom, factor) = (units.denom(), denom / units.denom());
                }
                units.numer().checked_mul(factor)
            };
            let mut steps: Vec<(i64, i64)> = Vec::with_capacity(changes.len());
            for (at, units) in changes {
                steps.push((at, scaled(units)?));
            }
            steps.sort_unstable_by_key(|&(at, _)| at);
            for (segment, &(life, has)) in segments.iter().enumerate() {
                let has = i128::from(scaled(has)?);
                let mut held: i128 = 0;
                let mut next = 0;
                // What was held when the segment begins.
                while next < steps.len() && steps[next].0 <= life.start {
                    held += i128::from(steps[next].1);
                    next += 1;
                }
                let mut at = life.start;
                while at < life.end {
                    let until = steps.get(next).map_or(life.end, |c| c.0.min(life.end));
                    if until > at && held > has {
                        let over = i64::try_from(held - has).ok()?;
                        found.push(Excess {
                            key,
                            segment,
                            during: Interval::new(at, until),
                            units: GpuUnits::ratio(over, denom)?,
                        });
                    }
                    at = until;
                    while next < steps.len() && steps[next].0 == at {
                        held += i128::from(steps[next].1);
                        next += 1;
                    }
                }
            }
        }
        Some(found)
    }
}

/// GPU-hours of an excess.
pub(super) fn excess_hours(excess: &Excess) -> Decimal {
    excess.units.to_decimal() * Decimal::from(excess.during.seconds()) / Decimal::from(3600)
}

/// A node's capacity of one product over one stretch: (line, schedule, interval).
pub(super) type CapacitySegment = (u32, u32, Interval, GpuUnits);

/// Where pods held more of a node's GPUs than it has, gives the excess back to the node's
/// unallocated line (which stays at zero there, never below) and says so: one warning per node
/// and model, in order.
pub(super) fn clamp_overcommit(
    holdings: Holdings,
    capacity_lines: &[(Sym, Vec<CapacitySegment>)],
    window: Interval,
    sums: &mut UnitSeconds,
    resolver: &Resolver<'_>,
) -> Result<Vec<String>, CostOverflow> {
    let capacity: Vec<Vec<(Interval, GpuUnits)>> = capacity_lines
        .iter()
        .map(|(_, segments)| {
            segments
                .iter()
                .map(|&(_, _, life, units)| {
                    let empty = Interval::new(window.start, window.start);
                    (life.clip(window).unwrap_or(empty), units)
                })
                .collect()
        })
        .collect();
    let excess = holdings.excess(|key| &capacity[key]).ok_or(CostOverflow)?;
    let mut by_node: BTreeMap<(&str, &str), Decimal> = BTreeMap::new();
    for piece in &excess {
        let (node, segments) = &capacity_lines[piece.key];
        let (line, schedule, ..) = segments[piece.segment];
        sums.add(
            line,
            schedule,
            &resolver.schedules,
            piece.during,
            piece.units,
        );
        let model = resolver.shared.labels.resolve(resolver.label_of(schedule));
        *by_node
            .entry((resolver.shared.names.resolve(*node), model))
            .or_default() += excess_hours(piece);
    }
    Ok(by_node
        .into_iter()
        .map(|((node, model), hours)| {
            format!(
                "node {node}: pods held more {model} GPUs than the node has, for {} GPU-hours beyond its capacity; its unallocated capacity counts as zero there and the pods are charged in full",
                hours.round_dp(4).normalize()
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(h: i64) -> i64 {
        h * 3600
    }

    #[test]
    fn only_instants_held_beyond_capacity_are_excess() {
        // One GPU from hour 0 to 10. A pod holds it 0–6, another 4–8 (half), a third 5–7:
        // held 1 (0–4), 1.5 (4–5), 2.5 (5–6), 1.5 (6–7), 0.5 (7–8), 0 (8–10).
        let capacity = [(Interval::new(0, hours(10)), GpuUnits::ONE)];
        let mut holdings = Holdings::new();
        holdings.hold(0, Interval::new(0, hours(6)), GpuUnits::ONE);
        holdings.hold(
            0,
            Interval::new(hours(4), hours(8)),
            GpuUnits::ratio(1, 2).unwrap(),
        );
        holdings.hold(0, Interval::new(hours(5), hours(7)), GpuUnits::ONE);
        let mut excess = holdings.excess(|_| &capacity[..]).unwrap();
        excess.sort_by_key(|e| e.during.start);
        let half = GpuUnits::ratio(1, 2).unwrap();
        let three_halves = GpuUnits::ratio(3, 2).unwrap();
        assert_eq!(
            excess,
            [
                Excess {
                    key: 0,
                    segment: 0,
                    during: Interval::new(hours(4), hours(5)),
                    units: half
                },
                Excess {
                    key: 0,
                    segment: 0,
                    during: Interval::new(hours(5), hours(6)),
                    units: three_halves
                },
                Excess {
                    key: 0,
                    segment: 0,
                    during: Interval::new(hours(6), hours(7)),
                    units: half
                },
            ]
        );
        // 0.5 + 1.5 + 0.5 GPU-hours.
        let total: Decimal = excess.iter().map(excess_hours).sum();
        assert_eq!(total, Decimal::new(25, 1));
    }

    #[test]
    fn each_capacity_segment_is_its_own_limit() {
        // Two GPUs until hour 2, then one (relabelled); two GPUs held throughout.
        let capacity = [
            (Interval::new(0, hours(2)), GpuUnits::whole(2)),
            (Interval::new(hours(2), hours(4)), GpuUnits::ONE),
        ];
        let mut holdings = Holdings::new();
        holdings.hold(0, Interval::new(0, hours(4)), GpuUnits::whole(2));
        let excess = holdings.excess(|_| &capacity[..]).unwrap();
        assert_eq!(
            excess,
            [Excess {
                key: 0,
                segment: 1,
                during: Interval::new(hours(2), hours(4)),
                units: GpuUnits::ONE
            }]
        );
    }
}
