//! The cost engine: allocations and capacity → exact cost lines per period and group (SPEC §3).
//!
//! Each allocation and each node's capacity is resolved into a line ([`super::resolver`]), its
//! unit-seconds summed per period and price and then priced ([`super::sums`]); pods holding more
//! than a node has are clamped ([`super::overcommit`]), unallocated capacity shared out where
//! asked ([`super::share`]), and the lines put in print order ([`super::order`]). No figure is
//! rounded here.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::group::GroupKey;
use super::overcommit::{CapacitySegment, Holdings, clamp_overcommit};
use super::report::CostReport;
use super::request::{LineFilter, ReportRequest};
use super::resolver::{LineFields, Resolver};
use super::share::share_unallocated;
use super::sums::{CostError, CostOverflow, TooManyLines, UnitSeconds};
use super::values::UNALLOCATED_ID;
use super::warnings::Warnings;
use crate::allocation::{Allocation, AllocationSet, CostCenterSource, Sym, UNALLOCATED};
use crate::pricing::RateCard;
use crate::usage::{UsageKey, Utilization};

/// Prices every allocation and all unallocated capacity of `sets` over the request's window.
///
/// The sets are read as one: a live ledger passes its frozen history chunks and its live tail
/// without copying them together. Each set has its own names; they are matched by text.
pub fn cost_report(
    sets: &[&AllocationSet],
    card: &RateCard,
    request: &ReportRequest,
) -> Result<CostReport, CostOverflow> {
    priced(sets, card, request, None, |_| Ok(()))
}

/// [`cost_report`], with `used_gpu_hours` and `idle_cost` from DCGM usage where `usage` knows
/// an allocation's hours (unallocated capacity counts as wholly idle), and made only while it
/// has at most `most_lines` lines: past them the engine stops, before its memory grows with
/// them any further.
pub fn cost_report_with_usage(
    sets: &[&AllocationSet],
    card: &RateCard,
    request: &ReportRequest,
    usage: Option<&dyn Utilization>,
    most_lines: Option<usize>,
) -> Result<CostReport, CostError> {
    priced(sets, card, request, usage, |made| {
        Ok(TooManyLines::check(made, most_lines)?)
    })
}

/// The engine: [`cost_report_with_usage`], `within` told how many sums the lines hold after
/// each allocation and node's capacity is added, and failing the report when it fails.
fn priced<E: From<CostOverflow>>(
    sets: &[&AllocationSet],
    card: &RateCard,
    request: &ReportRequest,
    usage: Option<&dyn Utilization>,
    within: impl Fn(usize) -> Result<(), E>,
) -> Result<CostReport, E> {
    let mut resolver = Resolver::new(sets, card, request.group_by.keys());
    // Pod names and UIDs are nearly all distinct: translate them only when they are group keys.
    let keyed = |key| request.group_by.keys().contains(&key);
    let (by_pod, by_resource, by_claim) = (
        keyed(GroupKey::Pod),
        keyed(GroupKey::ResourceId),
        keyed(GroupKey::Claim),
    );
    let kept = Kept::of(request, sets);
    let mut sums = UnitSeconds::new(request.step.periods(request.window));
    if by_pod || by_resource {
        // A line (nearly) per allocation, and one per node's capacity: room made once, not
        // as they come (a vector outgrowing its room near the end copies all of it).
        let allocations = sets.iter().map(|s| s.allocations.len()).sum();
        let lines = allocations + sets.iter().map(|s| s.capacity.len()).sum::<usize>();
        resolver.line_index.reserve(lines);
        resolver.lines.reserve(lines);
        resolver.shared.names.reserve(allocations);
        sums.reserve(lines);
    }

    // Capacity segments per (node, product identity), numbered in `capacity_lines`: a node
    // relabelled mid-window has several.
    let mut capacity_index: FxHashMap<(Sym, u32), usize> = FxHashMap::default();
    let mut capacity_lines: Vec<(Sym, Vec<CapacitySegment>)> = Vec::new();
    let mut holdings = Holdings::new();
    for (set_index, set) in sets.iter().enumerate() {
        for capacity in &set.capacity {
            let node = resolver.global(set_index, capacity.node);
            let product = resolver.global(set_index, capacity.product);
            let identity = resolver.identity(product);
            let schedule = resolver.schedule(product, capacity.tier, capacity.price_override);
            let fields = LineFields {
                cost_center: UNALLOCATED_ID,
                namespace: Sym::EMPTY,
                model_label: resolver.label_of(schedule),
                node,
                pod: Sym::EMPTY,
                resource: node,
                claim: Sym::EMPTY,
                tier: capacity.tier,
                source: CostCenterSource::Unallocated,
                unallocated: true,
            };
            let line = resolver.line(fields);
            let at = *capacity_index.entry((node, identity)).or_insert_with(|| {
                capacity_lines.push((node, Vec::new()));
                capacity_lines.len() - 1
            });
            capacity_lines[at]
                .1
                .push((line, schedule, capacity.interval, capacity.units));
            let during = capacity.interval.clip(request.window);
            if let Some(during) = during.filter(|_| kept.capacity) {
                sums.add(line, schedule, &resolver.schedules, during, capacity.units);
                within(sums.made())?;
            }
        }
    }

    for (set_index, set) in sets.iter().enumerate() {
        for (at, allocation) in set.allocations.iter().enumerate() {
            // The names a line per pod copies lie all over the set's table: the loads of
            // allocations a few ahead are started now, so that they overlap.
            if by_pod || by_resource {
                resolver.warm(set_index, &set.allocations, at);
            }
            let Some(during) = allocation.interval.clip(request.window) else {
                continue;
            };
            let node = resolver.global(set_index, allocation.node);
            let product = resolver.global(set_index, allocation.product);
            if kept.allocation(set_index, allocation) {
                let schedule =
                    resolver.schedule(product, allocation.tier, allocation.price_override);
                let fields = LineFields {
                    cost_center: resolver.global(set_index, allocation.cost_center).index() as u32,
                    namespace: resolver.global(set_index, allocation.namespace),
                    model_label: resolver.label_of(schedule),
                    node,
                    pod: resolver.global_if(by_pod, set_index, allocation.pod),
                    resource: resolver.global_if(by_resource, set_index, allocation.resource_id),
                    claim: resolver.global_if(by_claim, set_index, allocation.claim),
                    tier: allocation.tier,
                    source: allocation.cost_center_source,
                    unallocated: false,
                };
                let line = resolver.line(fields);
                sums.add(
                    line,
                    schedule,
                    &resolver.schedules,
                    during,
                    allocation.units,
                );
                if let Some(usage) = usage {
                    let key = UsageKey::of(set, allocation);
                    let hours =
                        |each: &mut dyn FnMut(i64, Decimal)| usage.each_hour(&key, during, each);
                    sums.add_used(
                        line,
                        schedule,
                        &resolver.schedules,
                        during,
                        allocation.units,
                        hours,
                    );
                }
                within(sums.made())?;
            }
            // What a pod holds is no longer unallocated capacity of its node.
            let identity = resolver.identity(product);
            if let Some(&at) = capacity_index.get(&(node, identity)) {
                holdings.hold(at, during, allocation.units);
                let free = capacity_lines[at].1.iter().filter(|_| kept.capacity);
                for &(free_line, free_schedule, lifetime, _) in free {
                    if let Some(held) = during.clip(lifetime) {
                        sums.add(
                            free_line,
                            free_schedule,
                            &resolver.schedules,
                            held,
                            -allocation.units,
                        );
                    }
                }
            }
        }
    }
    // Every line is made: their index goes before the lines are priced, whose figures can
    // take its room (at a line per pod, a month of them is ~100 MB).
    drop(std::mem::take(&mut resolver.line_index));
    let overcommitted = clamp_overcommit(
        holdings,
        &capacity_lines,
        request.window,
        &mut sums,
        &resolver,
    )?;

    let measured = usage.is_some();
    let mut parts = sums.price(&resolver.schedules, |line| {
        measured && resolver.is_unallocated(line)
    })?;
    if request.share_unallocated {
        share_unallocated(&mut parts, &resolver);
    }
    let mut report = resolver.report(request, parts, card);
    // What reading the objects found comes first, in text order, then pods holding more
    // than their node, then the models without a price.
    let read_warnings: std::collections::BTreeSet<&String> =
        sets.iter().flat_map(|s| &s.warnings).collect();
    let mut warnings: Warnings = read_warnings.into_iter().cloned().collect();
    warnings.extend(overcommitted);
    warnings.absorb(std::mem::take(&mut report.warnings));
    report.warnings = warnings;
    Ok(report)
}

/// What of the fleet makes lines a report keeps ([`ReportRequest::only`]), known before any
/// line is made: a cost center's or namespace's report makes its own lines, and is bound by
/// them (`server.max_report_lines`), not by the whole fleet's. What pods hold still comes off
/// their nodes' unallocated capacity, and counts toward over-commit, whoever's lines are kept.
/// Unallocated capacity shared out is shared over every line first: a report sharing it makes
/// them all, and leaves out the rest at the end.
struct Kept {
    /// Per set, the cost center and the namespace kept, as that set's names: `None` keeps any,
    /// `Some(None)` none of its allocations (the set has no such name).
    names: Vec<[Option<Option<Sym>>; 2]>,
    /// Whether the nodes' unallocated capacity is kept (cost center `__unallocated__`, no
    /// namespace).
    capacity: bool,
}

impl Kept {
    fn of(request: &ReportRequest, sets: &[&AllocationSet]) -> Self {
        // The filter of the group-by keys, as the lines are left out at the end.
        let keys = request.group_by.keys();
        let wanted = |key: GroupKey| {
            let mut wanted = request.only.wanted();
            let value = wanted.find(|&(k, _)| k == key && keys.contains(&k));
            value
                .map(|(_, value)| value.to_string())
                .filter(|_| !request.share_unallocated)
        };
        let only = LineFilter {
            cost_center: wanted(GroupKey::CostCenter),
            namespace: wanted(GroupKey::Namespace),
        };
        let kept = [&only.cost_center, &only.namespace];
        Kept {
            names: sets
                .iter()
                .map(|set| kept.map(|kept| kept.as_deref().map(|text| set.names.get(text))))
                .collect(),
            capacity: only.keeps_group(UNALLOCATED, ""),
        }
    }

    /// Whether the lines of `allocation` (of set `set`) are kept.
    fn allocation(&self, set: usize, allocation: &Allocation) -> bool {
        let [cost_center, namespace] = self.names[set];
        cost_center.is_none_or(|kept| kept == Some(allocation.cost_center))
            && namespace.is_none_or(|kept| kept == Some(allocation.namespace))
    }
}
