//! The cost engine: allocations and capacity → exact cost lines per period and group (SPEC §3).
//!
//! Cost is linear in unit-seconds, so the engine first sums, in integers, the unit-seconds of
//! every (period, line, price schedule, price segment, unit denominator) and only then multiplies
//! each sum by its price and divides by `denominator × 3600` once. No figure is rounded here.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::group::{GroupBy, GroupKey};
use super::overcommit::{Holdings, excess_hours};
use super::report::{CostLine, CostReport, Figures};
use super::values::{GroupValues, KEY_DIMS, LineKey, LineNames, ReportNames, UNALLOCATED_ID};
use crate::allocation::{Allocation, AllocationSet, CostCenterSource, Names, Sym};
use crate::prefetch::{AHEAD, prefetch};
use crate::pricing::{ModelId, PriceSchedule, PriceTier, ProductIdentity, RateCard};
use crate::time::{Interval, Step};
use crate::units::GpuUnits;
use crate::usage::{UsageKey, Utilization};

/// What to report.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReportRequest {
    /// The report window; allocations are clipped to it.
    pub window: Interval,
    /// How the window is cut into rows.
    pub step: Step,
    /// The group-by keys, in column order.
    pub group_by: GroupBy,
    /// Spread unallocated capacity over the groups that used the same model, in proportion to
    /// their cost, instead of reporting it under `__unallocated__`.
    pub share_unallocated: bool,
    /// Keep only the lines of one cost center or namespace (each a group-by key).
    pub only: LineFilter,
}

impl ReportRequest {
    /// Where the `cluster` key sits among the group-by keys, if it is one.
    pub fn cluster_column(&self) -> Option<usize> {
        self.group_by
            .keys()
            .iter()
            .position(|k| *k == GroupKey::Cluster)
    }

    /// The request less its `cluster` key: what the engine and the store compute, the same
    /// lines (one Tollgate reads one cluster), to which [`CostReport::with_cluster`] adds it.
    pub fn without_cluster(&self) -> ReportRequest {
        let keys = self.group_by.keys().iter().copied();
        ReportRequest {
            group_by: GroupBy::new(keys.filter(|k| *k != GroupKey::Cluster).collect())
                .unwrap_or_else(|_| unreachable!("a subset of distinct keys")),
            ..self.clone()
        }
    }
}

/// Which lines a report keeps: those whose `cost_center` and `namespace` (where given, each a
/// group-by key of the report) are these. Lines are computed as without it, then left out, so
/// the figures kept are the figures of the whole report.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct LineFilter {
    /// The cost center to keep.
    pub cost_center: Option<String>,
    /// The namespace to keep.
    pub namespace: Option<String>,
}

impl LineFilter {
    /// Each key filtered on, with the value kept.
    pub fn wanted(&self) -> impl Iterator<Item = (GroupKey, &str)> {
        [
            (GroupKey::CostCenter, self.cost_center.as_deref()),
            (GroupKey::Namespace, self.namespace.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
    }

    /// Whether it keeps every line.
    pub fn keeps_all(&self) -> bool {
        self.wanted().next().is_none()
    }

    /// Whether a line grouped by `keys` with these group values is kept.
    pub fn keeps<'a>(&self, keys: &[GroupKey], values: impl Iterator<Item = &'a str>) -> bool {
        let values: Vec<&str> = values.collect();
        self.wanted().all(|(key, value)| {
            keys.iter()
                .position(|k| *k == key)
                .is_none_or(|at| values[at] == value)
        })
    }
}

/// A sum too large for exact decimal arithmetic (over 7.9 × 10²⁸).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cost sum is too large to compute exactly")]
pub struct CostOverflow;

/// Prices every allocation and all unallocated capacity of `sets` over the request's window.
///
/// The sets are read as one: a live ledger passes its frozen history chunks and its live tail
/// without copying them together. Each set has its own names; they are matched by text.
pub fn cost_report(
    sets: &[&AllocationSet],
    card: &RateCard,
    request: &ReportRequest,
) -> Result<CostReport, CostOverflow> {
    cost_report_with_usage(sets, card, request, None)
}

/// [`cost_report`], with `used_gpu_hours` and `idle_cost` from DCGM usage where `usage` knows
/// an allocation's hours. Unallocated capacity counts as wholly idle.
pub fn cost_report_with_usage(
    sets: &[&AllocationSet],
    card: &RateCard,
    request: &ReportRequest,
    usage: Option<&dyn Utilization>,
) -> Result<CostReport, CostOverflow> {
    let mut resolver = Resolver::new(sets, card, request.group_by.keys());
    // Pod names and UIDs are nearly all distinct: translate them only when they are group keys.
    let keyed = |key| request.group_by.keys().contains(&key);
    let (by_pod, by_resource, by_claim) = (
        keyed(GroupKey::Pod),
        keyed(GroupKey::ResourceId),
        keyed(GroupKey::Claim),
    );
    let mut sums = UnitSeconds::new(request.step.periods(request.window));
    if by_pod || by_resource {
        // A line (nearly) per allocation, and one per node's capacity: room made once, not
        // as they come (a vector outgrowing its room near the end copies all of it).
        let allocations = sets.iter().map(|s| s.allocations.len()).sum();
        let lines = allocations + sets.iter().map(|s| s.capacity.len()).sum::<usize>();
        resolver.line_index.reserve(lines);
        resolver.lines.reserve(lines);
        resolver.shared.names.reserve(allocations);
        sums.sums.reserve(lines);
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
            if let Some(during) = capacity.interval.clip(request.window) {
                sums.add(line, schedule, &resolver, during, capacity.units);
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
            let schedule = resolver.schedule(product, allocation.tier, allocation.price_override);
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
            sums.add(line, schedule, &resolver, during, allocation.units);
            if let Some(usage) = usage {
                let key = UsageKey::of(set, allocation);
                let hours =
                    |each: &mut dyn FnMut(i64, Decimal)| usage.each_hour(&key, during, each);
                sums.add_used(line, schedule, &resolver, during, allocation.units, hours);
            }
            // What a pod holds is no longer unallocated capacity of its node.
            let identity = resolver.identity(product);
            if let Some(&at) = capacity_index.get(&(node, identity)) {
                holdings.hold(at, during, allocation.units);
                for &(free_line, free_schedule, lifetime, _) in &capacity_lines[at].1 {
                    if let Some(held) = during.clip(lifetime) {
                        sums.add(free_line, free_schedule, &resolver, held, -allocation.units);
                    }
                }
            }
        }
    }
    let overcommitted = clamp_overcommit(
        holdings,
        &capacity_lines,
        request.window,
        &mut sums,
        &resolver,
    )?;

    let mut parts = sums.price(&resolver, usage.is_some())?;
    if request.share_unallocated {
        share_unallocated(&mut parts, &resolver);
    }
    let mut report = resolver.report(request, parts, card);
    report.warnings.extend(overcommitted);
    let read_warnings: std::collections::BTreeSet<&String> =
        sets.iter().flat_map(|s| &s.warnings).collect();
    report
        .warnings
        .splice(0..0, read_warnings.into_iter().cloned());
    Ok(report)
}

/// Values of a group key ranked before lines are sorted; a key with more (the pods of a
/// day at 10,000 GPUs) is compared by text within runs of lines whose keys before it tie.
pub(super) const RANKED_VALUES: usize = 4096;

/// Bits of a line's sort key that hold the ranks of its leading group values, below its
/// period's 32.
const PACKED_RANK_BITS: u32 = 96;

/// Where a group key's value `id` sits in a table indexed by ids (the unallocated cost center
/// first).
fn rank_slot(id: u32) -> usize {
    if id == UNALLOCATED_ID {
        0
    } else {
        id as usize + 1
    }
}

/// A node's capacity of one product over one stretch: (line, schedule, interval).
type CapacitySegment = (u32, u32, Interval, GpuUnits);

/// Where pods held more of a node's GPUs than it has, gives the excess back to the node's
/// unallocated line (which stays at zero there, never below) and says so: one warning per node
/// and model, in order.
fn clamp_overcommit(
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
        sums.add(line, schedule, resolver, piece.during, piece.units);
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

struct LineFields {
    cost_center: u32,
    namespace: Sym,
    model_label: Sym,
    node: Sym,
    pod: Sym,
    resource: Sym,
    claim: Sym,
    tier: PriceTier,
    source: CostCenterSource,
    unallocated: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ModelRef {
    Priced(ModelId),
    Unknown(Sym),
}

struct Schedule {
    prices: PriceSchedule,
    label: Sym,
}

/// Turns allocation fields into line and price-schedule indexes, caching every lookup.
struct Resolver<'a> {
    sets: &'a [&'a AllocationSet],
    /// Each set's symbols, translated into `shared.names` (`u32::MAX`: not yet).
    translations: Vec<Vec<u32>>,
    /// The names the lines' keys number, which the report's lines will share.
    shared: LineNames,
    card: &'a RateCard,
    products: Vec<Option<(ModelRef, Sym)>>,
    /// Each product symbol's identity (`u32::MAX`: not yet), numbered in `identity_index`.
    identities: Vec<u32>,
    identity_index: FxHashMap<ProductIdentity, u32>,
    schedule_index: FxHashMap<(ModelRef, PriceTier, Option<Decimal>), u32>,
    schedules: Vec<Schedule>,
    line_index: FxHashMap<LineKey, u32>,
    lines: Vec<LineKey>,
}

impl<'a> Resolver<'a> {
    fn new(sets: &'a [&'a AllocationSet], card: &'a RateCard, keys: &[GroupKey]) -> Self {
        Resolver {
            sets,
            translations: sets
                .iter()
                .map(|s| {
                    let mut translation = vec![u32::MAX; s.names.len()];
                    // The empty name is symbol 0 everywhere.
                    translation[Sym::EMPTY.index()] = Sym::EMPTY.index() as u32;
                    translation
                })
                .collect(),
            shared: LineNames {
                keys: keys.to_vec(),
                names: ReportNames::for_sets(sets),
                labels: Names::default(),
            },
            card,
            products: Vec::new(),
            identities: Vec::new(),
            identity_index: FxHashMap::default(),
            schedule_index: FxHashMap::default(),
            schedules: Vec::new(),
            line_index: FxHashMap::default(),
            lines: Vec::new(),
        }
    }

    /// The global symbol of symbol `sym` of set `set`.
    fn global(&mut self, set: usize, sym: Sym) -> Sym {
        let slot = &mut self.translations[set][sym.index()];
        if *slot == u32::MAX {
            *slot = self.shared.names.add(&self.sets[set].names, sym).index() as u32;
        }
        Sym::from_raw(*slot)
    }

    /// Starts loading what translating the names of `allocations[at + 2 × AHEAD]` reads:
    /// their translation slots and where their texts end; and for `allocations[at + AHEAD]`
    /// (whose ends are in cache by now), the texts themselves.
    fn warm(&self, set: usize, allocations: &[Allocation], at: usize) {
        let names = &self.sets[set].names;
        let translation = &self.translations[set];
        if let Some(ahead) = allocations.get(at + 2 * AHEAD) {
            for sym in [ahead.pod, ahead.resource_id] {
                prefetch(&translation[sym.index()]);
                names.warm_place(sym);
            }
        }
        if let Some(ahead) = allocations.get(at + AHEAD) {
            for sym in [ahead.pod, ahead.resource_id] {
                names.warm_text(sym);
            }
        }
    }

    /// [`Resolver::global`] when `wanted`, else the empty symbol.
    fn global_if(&mut self, wanted: bool, set: usize, sym: Sym) -> Sym {
        if wanted {
            self.global(set, sym)
        } else {
            Sym::EMPTY
        }
    }

    fn model(&mut self, product: Sym) -> (ModelRef, Sym) {
        if self.products.len() <= product.index() {
            self.products.resize(product.index() + 1, None);
        }
        if let Some(found) = self.products[product.index()] {
            return found;
        }
        let text = self.shared.names.resolve(product);
        let model = match self.card.model_for(text) {
            Some(id) => ModelRef::Priced(id),
            None => ModelRef::Unknown(product),
        };
        let found = (
            model,
            self.shared.labels.intern(&self.card.model_label(text)),
        );
        self.products[product.index()] = Some(found);
        found
    }

    /// The number of `product`'s identity: the same for every spelling of one GPU
    /// ([`RateCard::product_identity`]).
    fn identity(&mut self, product: Sym) -> u32 {
        if self.identities.len() <= product.index() {
            self.identities.resize(product.index() + 1, u32::MAX);
        }
        if self.identities[product.index()] == u32::MAX {
            let identity = self
                .card
                .product_identity(self.shared.names.resolve(product));
            let next = self.identity_index.len() as u32;
            self.identities[product.index()] = *self.identity_index.entry(identity).or_insert(next);
        }
        self.identities[product.index()]
    }

    fn schedule(&mut self, product: Sym, tier: PriceTier, price_override: Option<Decimal>) -> u32 {
        let (model, label) = self.model(product);
        let key = (model, tier, price_override);
        if let Some(&index) = self.schedule_index.get(&key) {
            return index;
        }
        let prices = match (price_override, model) {
            (Some(price), _) => PriceSchedule::constant(Some(price)),
            (None, ModelRef::Priced(id)) => self.card.schedule(id, tier),
            (None, ModelRef::Unknown(_)) => PriceSchedule::constant(None),
        };
        let index = self.schedules.len() as u32;
        self.schedules.push(Schedule { prices, label });
        self.schedule_index.insert(key, index);
        index
    }

    fn line(&mut self, fields: LineFields) -> u32 {
        let mut key: LineKey = [0; KEY_DIMS];
        for (slot, group_key) in key.iter_mut().zip(&self.shared.keys) {
            *slot = match group_key {
                GroupKey::CostCenter => fields.cost_center,
                GroupKey::Namespace => fields.namespace.index() as u32,
                GroupKey::GpuModel => fields.model_label.index() as u32,
                GroupKey::Node => fields.node.index() as u32,
                GroupKey::Pod => fields.pod.index() as u32,
                GroupKey::CostCenterSource => fields.source as u32,
                GroupKey::ResourceId => fields.resource.index() as u32,
                GroupKey::Claim => fields.claim.index() as u32,
                GroupKey::PricingTier => fields.tier as u32,
                // One value for every line: the cluster's name, which reports fill in.
                GroupKey::Cluster => 0,
            };
        }
        key[KEY_DIMS - 1] = u32::from(fields.unallocated);
        if let Some(&index) = self.line_index.get(&key) {
            return index;
        }
        let index = self.lines.len() as u32;
        self.lines.push(key);
        self.line_index.insert(key, index);
        index
    }

    fn label_of(&self, schedule: u32) -> Sym {
        self.schedules[schedule as usize].label
    }

    fn is_unallocated(&self, line: u32) -> bool {
        self.lines[line as usize][KEY_DIMS - 1] == 1
    }

    /// The printed value of one group key of a line.
    fn group_value(&self, group_key: GroupKey, id: u32) -> &str {
        self.shared.value(group_key, id)
    }

    /// The printed group values of a line, without copying them.
    fn group_values(&self, line: u32) -> impl Iterator<Item = &str> {
        let key = &self.lines[line as usize];
        self.shared
            .keys
            .iter()
            .zip(key)
            .map(|(&group_key, &id)| self.group_value(group_key, id))
    }

    /// For each group key, the rank of every value `lines` print for it in text order (equal
    /// texts share a rank), indexed by [`rank_slot`]; `None` for a key with more than
    /// [`RANKED_VALUES`] values (pod names, resource IDs), whose texts are compared where the
    /// keys before it tie instead of all being sorted.
    fn ranks(&self, lines: impl Iterator<Item = u32> + Clone) -> Vec<Option<Vec<u32>>> {
        // Which values each key has met, by [`rank_slot`]: the key's place plus one where met
        // (values are numbered densely, so a table serves where a hash set would hash each).
        let mut met: Vec<u32> = Vec::new();
        self.shared
            .keys
            .iter()
            .enumerate()
            .map(|(at, &group_key)| {
                // Values counted as met, given up on past the ranked many.
                let mark = at as u32 + 1;
                let mut column: Vec<u32> = Vec::new();
                for line in lines.clone() {
                    let id = self.lines[line as usize][at];
                    let slot = rank_slot(id);
                    if met.len() <= slot {
                        met.resize(slot + 1, 0);
                    }
                    if met[slot] != mark {
                        met[slot] = mark;
                        column.push(id);
                        if column.len() > RANKED_VALUES {
                            return None;
                        }
                    }
                }
                column.sort_unstable();
                let size = column.iter().map(|&id| rank_slot(id)).max().unwrap_or(0) + 1;
                // The texts are copied side by side first: sorting them where they were
                // interned (one allocation each, all over the heap) waits on memory at every
                // comparison.
                let mut texts = String::new();
                let mut spans: Vec<(usize, usize, u32)> = column
                    .iter()
                    .map(|&id| {
                        let start = texts.len();
                        texts.push_str(self.group_value(group_key, id));
                        (start, texts.len(), id)
                    })
                    .collect();
                spans.sort_unstable_by(|a, b| texts[a.0..a.1].cmp(&texts[b.0..b.1]));
                let mut ranks = vec![0; size];
                let mut rank = 0;
                let mut previous = None;
                for (start, end, id) in spans {
                    let text = &texts[start..end];
                    if previous.is_some_and(|p| p != text) {
                        rank += 1;
                    }
                    previous = Some(text);
                    ranks[rank_slot(id)] = rank;
                }
                Some(ranks)
            })
            .collect()
    }

    fn report(self, request: &ReportRequest, mut parts: Parts, card: &RateCard) -> CostReport {
        let periods = request.step.periods(request.window);
        if !request.only.keeps_all() {
            parts.retain(|&((_, line, _), _)| {
                request
                    .only
                    .keeps(&self.shared.keys, self.group_values(line))
            });
        }
        let mut unpriced_by_model: BTreeMap<String, Decimal> = BTreeMap::new();
        for ((_, _, label), part) in &parts {
            if part.unpriced_gpu_hours > Decimal::ZERO {
                *unpriced_by_model
                    .entry(
                        self.shared
                            .labels
                            .resolve(Sym::from_raw(*label))
                            .to_string(),
                    )
                    .or_default() += part.unpriced_gpu_hours;
            }
        }
        let order = self.ordered(&mut parts);
        let Resolver {
            shared,
            lines: keys,
            ..
        } = self;
        let shared = Arc::new(shared);
        // Room for every line made at once: most are kept, and they are large.
        let mut kept = Vec::with_capacity(order.len());
        kept.extend(order.iter().enumerate().filter_map(|(n, &(at, line))| {
            // Lines are taken in print order, not in the order they were numbered and priced
            // in: the figures and key of the one a few ahead are loaded meanwhile.
            if let Some(&(ahead, ahead_line)) = order.get(n + AHEAD) {
                prefetch(&parts[ahead as usize]);
                prefetch(&keys[ahead_line as usize]);
            }
            let ((period, ..), figures) = &mut parts[at as usize];
            // Each line's figures are moved once, from where they were priced.
            let figures = std::mem::take(figures);
            (!figures.is_empty()).then(|| CostLine {
                period: periods[*period as usize],
                group: GroupValues::named(shared.clone(), keys[line as usize]),
                figures,
            })
        }));
        let warnings = unpriced_by_model
            .into_iter()
            .map(|(model, hours)| {
                format!(
                    "GPU model {model:?} has no price in {} for {} GPU-hours; they are reported as unpriced_gpu_hours, with no cost",
                    card.origin(),
                    hours.round_dp(4).normalize()
                )
            })
            .collect();
        CostReport {
            request: request.clone(),
            currency: card.currency().clone(),
            rounding: card.rounding(),
            lines: kept,
            warnings,
        }
    }

    /// The places in `parts` of their lines in print order (with each line's number): by
    /// period, then group values as text. Lines that print the same (one line of several
    /// models, or unallocated capacity and pods of one model grouped by model) become one: the
    /// first in print order takes the others' figures.
    fn ordered(&self, parts: &mut Parts) -> Vec<(u32, u32)> {
        // Compared as ranks, each key's values ranked once.
        let ranks = self.ranks(parts.iter().map(|&((_, line, _), _)| line));
        // The leading ranked keys that fit are packed with the period into one integer, the
        // next key's first bytes (or rank) into another: most lines are told apart by
        // comparing two integers. Lines that tie on both are compared key by key from there.
        let widths: Vec<u32> = ranks
            .iter()
            .map_while(|r| r.as_ref())
            .map(|ids| {
                ids.iter()
                    .max()
                    .map_or(0, |&r| u32::BITS - r.leading_zeros())
            })
            .scan(0, |used, width| {
                *used += width;
                (*used <= PACKED_RANK_BITS).then_some(width)
            })
            .collect();
        let packed = widths.len();
        let line_key = |line: u32| &self.lines[line as usize];
        let value_rank = |at: usize, id: u32| ranks[at].as_ref().map(|ids| ids[rank_slot(id)]);
        let packed_order = |period: u32, line: u32| -> u128 {
            widths.iter().zip(line_key(line)).enumerate().fold(
                u128::from(period),
                |order, (at, (&width, &id))| {
                    (order << width) | u128::from(value_rank(at, id).unwrap_or(0))
                },
            )
        };
        // The keys from the first not packed, each by rank or else by text.
        let rest = |a: u32, b: u32| -> std::cmp::Ordering {
            let (a, b) = (line_key(a), line_key(b));
            (packed..self.shared.keys.len())
                .filter(|&at| a[at] != b[at])
                .map(|at| match (value_rank(at, a[at]), value_rank(at, b[at])) {
                    (Some(a), Some(b)) => a.cmp(&b),
                    _ => {
                        let key = self.shared.keys[at];
                        self.group_value(key, a[at])
                            .cmp(self.group_value(key, b[at]))
                    }
                })
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        // Sorted as (place, line, place of its figures): small to move, quick to compare.
        // First by the packed keys alone; then each run that ties on them by the next key: its
        // rank, or the eight bytes of its text after those all the run's texts begin with (pods
        // of one workload on one node share all but the last few), then key by key.
        let mut keyed: Vec<((u128, u64), u32, u32)> = parts
            .iter()
            .enumerate()
            .map(|(at, &((period, line, _), _))| ((packed_order(period, line), 0), line, at as u32))
            .collect();
        keyed.sort_unstable_by_key(|&((order, _), ..)| order);
        let next_key = self.shared.keys.get(packed).copied();
        for run in keyed.chunk_by_mut(|a, b| a.0.0 == b.0.0) {
            let Some(group_key) = next_key else {
                break;
            };
            if run.len() == 1 {
                continue;
            }
            let text = |line: u32| {
                self.group_value(group_key, line_key(line)[packed])
                    .as_bytes()
            };
            let shared = match ranks[packed] {
                Some(_) => 0,
                None => {
                    let first = text(run[0].1);
                    run[1..].iter().fold(first.len(), |shared, &(_, line, _)| {
                        let other = text(line);
                        first[..shared]
                            .iter()
                            .zip(other)
                            .take_while(|(a, b)| a == b)
                            .count()
                    })
                }
            };
            for ((_, next), line, _) in run.iter_mut() {
                let id = line_key(*line)[packed];
                *next = match value_rank(packed, id) {
                    Some(rank) => u64::from(rank),
                    None => {
                        let text = text(*line);
                        let mut eight = [0; 8];
                        let after = &text[shared.min(text.len())..];
                        let len = after.len().min(8);
                        eight[..len].copy_from_slice(&after[..len]);
                        u64::from_be_bytes(eight)
                    }
                };
            }
            run.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| rest(a.1, b.1)));
        }
        let mut order: Vec<(u32, u32)> = Vec::with_capacity(keyed.len());
        let mut last = None;
        for &(place, line, at) in &keyed {
            match order.last() {
                Some(&(first, first_line))
                    if last == Some(place) && rest(first_line, line).is_eq() =>
                {
                    let merged = std::mem::take(&mut parts[at as usize].1);
                    parts[first as usize].1.absorb(&merged);
                }
                _ => {
                    order.push((at, line));
                    last = Some(place);
                }
            }
        }
        order
    }
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
struct UnitSeconds {
    periods: Vec<Interval>,
    /// Each line's sums, in the order their points were first met (put in point order when
    /// priced): read line after line as the report's lines are met.
    sums: Vec<LineSumList>,
    /// Where the sum at each point of a line with more than [`WALKED`] sums is (a line of a
    /// group and day: a point for each day, model and tier).
    index: FxHashMap<(u32, SumPoint), u32>,
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
}

const HOUR: i64 = 3600;

/// Calls `visit(point, seconds)` for each piece of `during` (inside the window) cut at period
/// and price boundaries, in point order.
fn walk(
    periods: &[Interval],
    schedule: u32,
    resolver: &Resolver<'_>,
    during: Interval,
    denom: i64,
    mut visit: impl FnMut(SumPoint, i64),
) {
    let prices = &resolver.schedules[schedule as usize].prices;
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
    fn new(periods: Vec<Interval>) -> Self {
        UnitSeconds {
            periods,
            sums: Vec::new(),
            index: FxHashMap::default(),
        }
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
        };
        (&self.periods, sums)
    }

    /// Adds `units` held over `during`.
    fn add(
        &mut self,
        line: u32,
        schedule: u32,
        resolver: &Resolver<'_>,
        during: Interval,
        units: GpuUnits,
    ) {
        let numer = i128::from(units.numer());
        let (periods, mut sums) = self.line(line);
        let mut near = None;
        walk(
            periods,
            schedule,
            resolver,
            during,
            units.denom(),
            |point, seconds| sums.at(point, &mut near).unit_seconds += numer * i128::from(seconds),
        );
    }

    /// Records the utilization of `units` held over `during`, hour by hour as `hours` hands
    /// each hour's start and ratio to what it is given.
    fn add_used(
        &mut self,
        line: u32,
        schedule: u32,
        resolver: &Resolver<'_>,
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
                resolver,
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
    /// With `usage`, lines of unallocated capacity are wholly covered and wholly idle.
    fn price(mut self, resolver: &Resolver<'_>, usage: bool) -> Result<Parts, CostOverflow> {
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
                let schedule = &resolver.schedules[schedule_index as usize];
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
                let free = usage && resolver.is_unallocated(line);
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
            for &((period, label, denom), ref sums) in &exact {
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
                    Some((key, sum)) if *key == (period, line, label) => sum.absorb(&part),
                    _ => parts.push(((period, line, label), part)),
                }
            }
        }
        parts.retain(|(_, part)| !part.is_empty());
        Ok(parts)
    }
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
type Parts = Vec<((u32, u32, u32), Figures)>;

/// Moves each period's unallocated capacity of a model onto the lines that used that model in
/// that period, in proportion to their cost (or their GPU-hours where the model is unpriced).
/// Capacity of a model nobody used in a period stays unallocated.
fn share_unallocated(parts: &mut Parts, resolver: &Resolver<'_>) {
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
            let share = unallocated.scaled(if by_cost { cost } else { hours } / total);
            parts[at].1.absorb(&share);
        }
    }
    parts.retain(|(_, part)| !part.is_empty());
}
