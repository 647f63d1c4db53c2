//! Ledger segments: one thing held (a pod's allocation) or offered (a node's capacity), with
//! unchanged attributes, over a stretch of time. Stored with plain strings so the log does not
//! depend on any in-memory name table.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocation::{
    Allocation, AllocationKind, AllocationSet, CostCenterSource, NodeCapacity,
};
use crate::pricing::PriceTier;
use crate::time::Interval;
use crate::units::GpuUnits;

/// What a segment is about. Two segments with the same key never overlap in time.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "of", rename_all = "snake_case")]
pub enum SegmentKey {
    /// Units a pod holds one way (device plugin or one claim) of one product.
    Pod {
        /// Pod UID.
        uid: String,
        /// Pod UID or claim UID.
        resource_id: String,
        /// How it is held.
        kind: AllocationKind,
        /// GPU product.
        product: String,
    },
    /// A node's GPUs of one product.
    Node {
        /// Node name.
        name: String,
        /// GPU product.
        product: String,
    },
}

/// Everything about a segment that may change over its key's life; a change splits it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SegmentAttrs {
    /// Pod namespace (empty for a node).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Pod name (empty for a node).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Node name.
    pub node: String,
    /// Units as `[numerator, denominator]`.
    pub units: [i64; 2],
    /// Price tier of the node.
    pub tier: PriceTier,
    /// The node's price annotation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub price_override: Option<Decimal>,
    /// Cost center (empty for a node).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cost_center: String,
    /// Where the cost center came from (absent for a node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center_source: Option<CostCenterSource>,
    /// The DRA claim's name, for a claim.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub claim: String,
}

/// A change to time the store already holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Correction {
    /// `key` held nothing over `during`, though the stored days count it as running then.
    Cut {
        /// What.
        key: SegmentKey,
        /// From its real end to the rolled-up boundary.
        during: Interval,
    },
    /// `key` held `attrs` over `during`, which the stored days do not know.
    Add {
        /// What.
        key: SegmentKey,
        /// With which attributes.
        attrs: SegmentAttrs,
        /// When, up to the rolled-up boundary.
        during: Interval,
    },
}

impl Correction {
    /// The stretch of stored time it changes.
    pub fn during(&self) -> Interval {
        match self {
            Correction::Cut { during, .. } | Correction::Add { during, .. } => *during,
        }
    }

    /// Applies the correction to `set`, the archived records of the stored `day`. An addition
    /// adds only what the archive does not hold of `key` already: a segment learnt a second
    /// time (a ledger that lost what it had recorded, say) is never counted twice.
    pub fn apply(&self, set: &mut AllocationSet, day: Interval) {
        let Some(change) = self.during().clip(day) else {
            return;
        };
        match self {
            Correction::Add { key, attrs, .. } => {
                let known: Vec<Interval> = match Holder::of(set, key) {
                    Holder::Pod(mine) => set
                        .allocations
                        .iter()
                        .filter(|a| mine(a))
                        .map(|a| a.interval)
                        .collect(),
                    Holder::Node(mine) => set
                        .capacity
                        .iter()
                        .filter(|c| mine(c))
                        .map(|c| c.interval)
                        .collect(),
                };
                for gap in uncovered(change, known) {
                    push_segment(set, key, attrs, gap);
                }
            }
            Correction::Cut { key, .. } => match Holder::of(set, key) {
                Holder::Pod(mine) => {
                    cut_out(&mut set.allocations, |a| &mut a.interval, mine, change)
                }
                Holder::Node(mine) => cut_out(&mut set.capacity, |c| &mut c.interval, mine, change),
            },
        }
    }
}

/// Which records of a set are a key's: its pod's allocations or its node's capacity. The
/// predicate reads the set's names as they were when it was made.
enum Holder {
    Pod(Box<dyn Fn(&Allocation) -> bool>),
    Node(Box<dyn Fn(&NodeCapacity) -> bool>),
}

impl Holder {
    fn of(set: &AllocationSet, key: &SegmentKey) -> Holder {
        let sym = |text: &str| set.names.get(text);
        match key {
            SegmentKey::Pod {
                uid,
                resource_id,
                kind,
                product,
            } => {
                let (kind, uid, resource_id, product) =
                    (*kind, sym(uid), sym(resource_id), sym(product));
                Holder::Pod(Box::new(move |a| {
                    a.kind == kind
                        && uid == Some(a.pod_uid)
                        && resource_id == Some(a.resource_id)
                        && product == Some(a.product)
                }))
            }
            SegmentKey::Node { name, product } => {
                let (name, product) = (sym(name), sym(product));
                Holder::Node(Box::new(move |c| {
                    name == Some(c.node) && product == Some(c.product)
                }))
            }
        }
    }
}

/// The parts of `change` none of `known` covers, in time order.
fn uncovered(change: Interval, mut known: Vec<Interval>) -> Vec<Interval> {
    known.sort_by_key(|i| i.start);
    let mut gaps = Vec::new();
    let mut from = change.start;
    for interval in known {
        if interval.start > from {
            gaps.push(Interval::new(from, interval.start.min(change.end)));
        }
        from = from.max(interval.end);
        if from >= change.end {
            break;
        }
    }
    gaps.push(Interval::new(from, change.end));
    gaps.retain(|gap| !gap.is_empty());
    gaps
}

/// Removes `change` from the intervals of the `records` that are `mine`.
fn cut_out<T: Clone>(
    records: &mut Vec<T>,
    interval: fn(&mut T) -> &mut Interval,
    mine: Box<dyn Fn(&T) -> bool>,
    change: Interval,
) {
    let mut after = Vec::new();
    records.retain_mut(|record| {
        if !mine(record) {
            return true;
        }
        let whole = *interval(record);
        let tail = Interval::new(whole.start.max(change.end), whole.end);
        if !tail.is_empty() {
            let mut rest = record.clone();
            *interval(&mut rest) = tail;
            after.push(rest);
        }
        let head = Interval::new(whole.start, whole.end.min(change.start));
        *interval(record) = head;
        !head.is_empty()
    });
    records.extend(after);
}

/// A segment as read from an allocation set: key, attributes, interval.
pub type Segment = (SegmentKey, SegmentAttrs, Interval);

/// The segments of every allocation and capacity record of `set`.
pub fn all_segments(set: &AllocationSet) -> impl Iterator<Item = Segment> + '_ {
    segments(set, set.allocations.iter(), set.capacity.iter())
}

/// The segments of `allocations` and `capacity`, records of `set`.
pub fn segments<'s>(
    set: &'s AllocationSet,
    allocations: impl Iterator<Item = &'s Allocation> + 's,
    capacity: impl Iterator<Item = &'s NodeCapacity> + 's,
) -> impl Iterator<Item = Segment> + 's {
    let name = |sym| set.names.resolve(sym).to_string();
    let pods = allocations.map(move |a| {
        (
            SegmentKey::Pod {
                uid: name(a.pod_uid),
                resource_id: name(a.resource_id),
                kind: a.kind,
                product: name(a.product),
            },
            SegmentAttrs {
                namespace: name(a.namespace),
                pod: name(a.pod),
                node: name(a.node),
                units: [a.units.numer(), a.units.denom()],
                tier: a.tier,
                price_override: a.price_override,
                cost_center: name(a.cost_center),
                cost_center_source: Some(a.cost_center_source),
                claim: name(a.claim),
            },
            a.interval,
        )
    });
    let nodes = capacity.map(move |c| {
        (
            SegmentKey::Node {
                name: name(c.node),
                product: name(c.product),
            },
            SegmentAttrs {
                namespace: String::new(),
                pod: String::new(),
                node: name(c.node),
                units: [c.units.numer(), c.units.denom()],
                tier: c.tier,
                price_override: c.price_override,
                cost_center: String::new(),
                cost_center_source: None,
                claim: String::new(),
            },
            c.interval,
        )
    });
    pods.chain(nodes)
}

/// Adds a segment to `set` as an allocation or a capacity record.
pub fn push_segment(
    set: &mut AllocationSet,
    key: &SegmentKey,
    attrs: &SegmentAttrs,
    interval: Interval,
) {
    let units = GpuUnits::ratio(attrs.units[0], attrs.units[1]).unwrap_or(GpuUnits::ZERO);
    let names = &mut set.names;
    match key {
        SegmentKey::Pod {
            uid,
            resource_id,
            kind,
            product,
        } => {
            let allocation = Allocation {
                namespace: names.intern(&attrs.namespace),
                pod: names.intern(&attrs.pod),
                pod_uid: names.intern(uid),
                resource_id: names.intern(resource_id),
                claim: names.intern(&attrs.claim),
                node: names.intern(&attrs.node),
                product: names.intern(product),
                kind: *kind,
                units,
                interval,
                tier: attrs.tier,
                price_override: attrs.price_override,
                cost_center: names.intern(&attrs.cost_center),
                cost_center_source: attrs
                    .cost_center_source
                    .unwrap_or(CostCenterSource::Default),
            };
            set.allocations.push(allocation);
        }
        SegmentKey::Node { name, product } => {
            let capacity = NodeCapacity {
                node: names.intern(name),
                product: names.intern(product),
                units,
                interval,
                tier: attrs.tier,
                price_override: attrs.price_override,
            };
            set.capacity.push(capacity);
        }
    }
}
