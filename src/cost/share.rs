//! Unallocated capacity shared out over the lines that used it (`share_unallocated`, SPEC §3).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::report::Figures;
use super::resolver::Resolver;
use super::sums::Parts;

/// Moves each period's unallocated capacity of a model onto the lines that used that model in
/// that period, in proportion to their cost (or their GPU-hours where the model is unpriced).
/// Capacity of a model nobody used in a period stays unallocated.
pub(super) fn share_unallocated(parts: &mut Parts, resolver: &Resolver<'_>) {
    // Places in `parts`, per (period, label).
    let mut free: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    let mut users: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for (at, &((period, line, label), _)) in parts.iter().enumerate() {
        let side = if resolver.is_unallocated(line) {
            &mut free
        } else {
            &mut users
        };
        side.entry((period, label)).or_default().push(at);
    }
    for ((period, label), free_places) in free {
        let Some(user_places) = users.get(&(period, label)) else {
            continue;
        };
        let weights: Vec<(usize, Decimal, Decimal)> = user_places
            .iter()
            .map(|&at| {
                let part = &parts[at].1;
                (at, part.cost.unwrap_or_default(), part.gpu_hours)
            })
            .collect();
        let cost_total: Decimal = weights.iter().map(|w| w.1).sum();
        let hours_total: Decimal = weights.iter().map(|w| w.2).sum();
        let by_cost = !cost_total.is_zero();
        let total = if by_cost { cost_total } else { hours_total };
        if total.is_zero() {
            continue;
        }
        let mut unallocated = Figures::default();
        for at in free_places {
            unallocated.absorb(&std::mem::take(&mut parts[at].1));
        }
        for (at, cost, hours) in weights {
            let weight = if by_cost { cost } else { hours };
            // A line with nothing to weigh takes nothing: not even a zero cost, which would
            // print 0.00 on a line without a price (one of a model priced only on some nodes).
            if weight.is_zero() {
                continue;
            }
            parts[at].1.absorb(&unallocated.scaled(weight / total));
        }
    }
    parts.retain(|(_, part)| !part.is_empty());
}
