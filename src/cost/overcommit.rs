//! Over-commit: pods holding more of a node's GPUs than the node has.
//!
//! Unallocated capacity is what a node has less what its pods hold. When the pods hold more —
//! a shared claim still counting a pod that left it, MIG overrides summing past one GPU, a
//! device plugin advertising more than the node's labels say — that difference would go
//! negative and quietly cancel idle capacity elsewhere. Instead it is clamped at zero, instant
//! by instant, and the excess is reported (node, model, GPU-hours) so someone can fix the cause.
//! The pods are still charged in full: what they held is what the cluster said they held.

use std::hash::Hash;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::time::Interval;
use crate::units::GpuUnits;

/// What pods held, per key (a node and GPU product), as changes over time.
pub(super) struct Holdings<K> {
    changes: FxHashMap<K, Vec<(i64, GpuUnits)>>,
}

/// A piece of time during which pods held `units` more than capacity segment `segment` of `key`
/// has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Excess<K> {
    pub key: K,
    pub segment: usize,
    pub during: Interval,
    pub units: GpuUnits,
}

impl<K: Copy + Eq + Hash> Holdings<K> {
    pub fn new() -> Self {
        Holdings {
            changes: FxHashMap::default(),
        }
    }

    /// Records that `units` were held under `key` over `during`.
    pub fn hold(&mut self, key: K, during: Interval, units: GpuUnits) {
        let changes = self.changes.entry(key).or_default();
        changes.push((during.start, units));
        changes.push((during.end, -units));
    }

    /// Every piece of time where what was held under a key exceeds the capacity in force,
    /// against `capacity(key)`: its segments, each a stretch of time and the units it has.
    /// `None` when a sum does not fit in a fraction of 64-bit integers.
    pub fn excess<'c>(
        self,
        capacity: impl Fn(&K) -> &'c [(Interval, GpuUnits)],
    ) -> Option<Vec<Excess<K>>> {
        let mut found = Vec::new();
        for (key, mut changes) in self.changes {
            changes.sort_unstable_by_key(|&(at, _)| at);
            for (segment, &(life, has)) in capacity(&key).iter().enumerate() {
                let mut held = GpuUnits::ZERO;
                let mut next = 0;
                // What was held when the segment begins.
                while next < changes.len() && changes[next].0 <= life.start {
                    held = held.checked_add(changes[next].1)?;
                    next += 1;
                }
                let mut at = life.start;
                while at < life.end {
                    let until = changes.get(next).map_or(life.end, |c| c.0.min(life.end));
                    let over = held.checked_add(-has)?;
                    if until > at && over.numer() > 0 {
                        found.push(Excess {
                            key,
                            segment,
                            during: Interval::new(at, until),
                            units: over,
                        });
                    }
                    at = until;
                    while next < changes.len() && changes[next].0 == at {
                        held = held.checked_add(changes[next].1)?;
                        next += 1;
                    }
                }
            }
        }
        Some(found)
    }
}

/// GPU-hours of an excess.
pub(super) fn excess_hours<K>(excess: &Excess<K>) -> Decimal {
    excess.units.to_decimal() * Decimal::from(excess.during.seconds()) / Decimal::from(3600)
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
        holdings.hold("n", Interval::new(0, hours(6)), GpuUnits::ONE);
        holdings.hold(
            "n",
            Interval::new(hours(4), hours(8)),
            GpuUnits::ratio(1, 2).unwrap(),
        );
        holdings.hold("n", Interval::new(hours(5), hours(7)), GpuUnits::ONE);
        let mut excess = holdings.excess(|_| &capacity[..]).unwrap();
        excess.sort_by_key(|e| e.during.start);
        let half = GpuUnits::ratio(1, 2).unwrap();
        let three_halves = GpuUnits::ratio(3, 2).unwrap();
        assert_eq!(
            excess,
            [
                Excess {
                    key: "n",
                    segment: 0,
                    during: Interval::new(hours(4), hours(5)),
                    units: half
                },
                Excess {
                    key: "n",
                    segment: 0,
                    during: Interval::new(hours(5), hours(6)),
                    units: three_halves
                },
                Excess {
                    key: "n",
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
        holdings.hold(7, Interval::new(0, hours(4)), GpuUnits::whole(2));
        let excess = holdings.excess(|_| &capacity[..]).unwrap();
        assert_eq!(
            excess,
            [Excess {
                key: 7,
                segment: 1,
                during: Interval::new(hours(2), hours(4)),
                units: GpuUnits::ONE
            }]
        );
    }
}
