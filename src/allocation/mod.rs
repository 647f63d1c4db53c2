//! Allocations: which pod held how much of which GPU, on which node, when (SPEC §1).
//!
//! Built by pure functions from the Kubernetes objects a cluster (or a snapshot, or the demo
//! fleet) holds: pods, nodes, namespaces, DRA `ResourceClaim`s and `ResourceSlice`s. Nothing here
//! reads a file or talks to a server.

mod builder;
mod claim_asks;
mod claims;
mod cost_center;
mod demand;
mod device;
mod instance;
mod lifetime;
mod names;
mod node;
mod placement;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate, ResourceSlice};
use rust_decimal::Decimal;

use crate::pricing::PriceTier;
use crate::time::{Interval, UnixSeconds};
use crate::units::GpuUnits;

pub use builder::{AllocationBuilder, ClaimLookup, ClusterContext, claim_lookup, claim_names};
pub use claim_asks::{ClaimAsk, ClaimAsks, DeviceAsk, DeviceClass, DeviceCount, RequestAsk};
pub use claims::ShareableGpu;
pub(crate) use claims::{AMD_DRIVER, ConsumedShare, DeviceIndex, consumed_share};
pub(crate) use cost_center::{cost_center, first_cost_center};
pub use demand::asks_for_gpus;
pub(crate) use demand::gpu_demand;
pub use device::is_gpu_resource;
pub(crate) use device::{
    AmdPartitionMode, GpuResource, classify, mig, mig_replicas_label, unpriced_accelerator,
};
pub(crate) use instance::{INSTANCE_TYPE_LABELS, instance_product};
pub use lifetime::{NotHeld, pod_interval};
pub(crate) use names::Texts;
pub use names::{Names, Sym};
pub(crate) use node::{
    AMD_PARTITION_LABELS, AMD_PRODUCT_LABELS, CLOUD_GPU_LABELS, GKE_PARTITION_LABEL, NodeFacts,
    PRICE_ANNOTATION, PRODUCT_LABEL, REPLICAS_LABELS, SHARED_PRODUCT_SUFFIX, capacity_tier,
    cloud_gpu, cloud_product, first_label, node_facts, read_replicas, split_product_label,
    units_per_item,
};
pub(crate) use placement::required_terms;
pub use placement::{PlacementNode, PlacementNodes, admits, placement_key, placement_nodes};

/// How a pod came to hold its GPU units (the `kind` label of `tollgate_gpu_allocated_units`).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AllocationKind {
    /// Whole GPUs through `nvidia.com/gpu`.
    Gpu,
    /// MIG instances through `nvidia.com/mig-*` (or `nvidia.com/gpu` under the single strategy).
    Mig,
    /// Time-sliced or MPS shares (`nvidia.com/gpu.shared`, or `nvidia.com/gpu` on a node with
    /// `nvidia.com/gpu.replicas` > 1).
    Shared,
    /// Devices of a DRA `ResourceClaim`.
    Dra,
}

impl fmt::Display for AllocationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocationKind::Gpu => "gpu",
            AllocationKind::Mig => "mig",
            AllocationKind::Shared => "shared",
            AllocationKind::Dra => "dra",
        })
    }
}

/// Where a cost center came from, first found wins (SPEC §1.3).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CostCenterSource {
    /// The pod's annotation.
    PodAnnotation,
    /// The pod's label.
    PodLabel,
    /// The namespace's annotation.
    NamespaceAnnotation,
    /// The namespace's label.
    NamespaceLabel,
    /// Nothing said: `unassigned`.
    Default,
    /// Capacity no pod held (`__unallocated__`).
    Unallocated,
}

impl CostCenterSource {
    /// Every source, in chain order.
    pub const ALL: [CostCenterSource; 6] = [
        CostCenterSource::PodAnnotation,
        CostCenterSource::PodLabel,
        CostCenterSource::NamespaceAnnotation,
        CostCenterSource::NamespaceLabel,
        CostCenterSource::Default,
        CostCenterSource::Unallocated,
    ];

    /// The name printed in the `cost_center_source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CostCenterSource::PodAnnotation => "pod-annotation",
            CostCenterSource::PodLabel => "pod-label",
            CostCenterSource::NamespaceAnnotation => "namespace-annotation",
            CostCenterSource::NamespaceLabel => "namespace-label",
            CostCenterSource::Default => "default",
            CostCenterSource::Unallocated => "unallocated",
        }
    }
}

/// The cost center of capacity nobody held.
pub const UNALLOCATED: &str = "__unallocated__";
/// The cost center of pods whose chain found nothing.
pub const UNASSIGNED: &str = "unassigned";

/// Some GPU units, of one product, held by one pod on one node over an interval.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Allocation {
    /// The pod's namespace.
    pub namespace: Sym,
    /// The pod's name.
    pub pod: Sym,
    /// The pod's UID.
    pub pod_uid: Sym,
    /// What is billed: the pod UID, or the claim UID for DRA.
    pub resource_id: Sym,
    /// For DRA, the claim's name (DCGM labels its series with it); empty otherwise.
    pub claim: Sym,
    /// The node the pod ran on.
    pub node: Sym,
    /// The GPU product name as Kubernetes reports it (empty when unknown).
    pub product: Sym,
    /// How the units are held.
    pub kind: AllocationKind,
    /// How much of a GPU.
    pub units: GpuUnits,
    /// When.
    pub interval: Interval,
    /// The node's price tier.
    pub tier: PriceTier,
    /// The node's `tollgate.dev/gpu-hourly-price`, if any.
    pub price_override: Option<Decimal>,
    /// Who pays.
    pub cost_center: Sym,
    /// Where `cost_center` came from.
    pub cost_center_source: CostCenterSource,
}

/// The physical GPUs of one product on one node, over the node's lifetime (for unallocated
/// cost and full cost recovery).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeCapacity {
    /// The node.
    pub node: Sym,
    /// The GPU product (empty when unknown).
    pub product: Sym,
    /// Whole physical GPUs (a fraction only when derived from partial MIG advertisements).
    pub units: GpuUnits,
    /// `[creationTimestamp, as-of)`.
    pub interval: Interval,
    /// The node's price tier.
    pub tier: PriceTier,
    /// The node's `tollgate.dev/gpu-hourly-price`, if any.
    pub price_override: Option<Decimal>,
}

/// Everything the cost engine needs: allocations, node capacity, the names they use, and what
/// could not be read cleanly.
#[derive(Clone, Debug, Default)]
pub struct AllocationSet {
    /// Interned names used by the records below.
    pub names: Names,
    /// GPU allocations of pods.
    pub allocations: Vec<Allocation>,
    /// GPU capacity of nodes.
    pub capacity: Vec<NodeCapacity>,
    /// Problems found while reading objects, one line each, deduplicated.
    pub warnings: BTreeSet<String>,
}

impl AllocationSet {
    /// Forgets everything before `from`: records that ended by then go, records that straddle
    /// it start there. (Days before `from` are kept elsewhere: the rollup store.)
    pub fn drop_before(&mut self, from: UnixSeconds) {
        let keep = |interval: &mut Interval| {
            interval.start = interval.start.max(from);
            !interval.is_empty()
        };
        self.allocations.retain_mut(|a| keep(&mut a.interval));
        self.capacity.retain_mut(|c| keep(&mut c.interval));
    }

    /// For each of `periods` (in order, not overlapping), the allocations that overlap it, by
    /// their place in `allocations`: found in one pass, so that a report read a period at a
    /// time does not scan every allocation for each period.
    pub fn by_period(&self, periods: &[Interval]) -> Vec<Vec<u32>> {
        let mut overlapping = vec![Vec::new(); periods.len()];
        for (index, allocation) in self.allocations.iter().enumerate() {
            let first = periods.partition_point(|p| p.end <= allocation.interval.start);
            for (period, members) in periods[first..].iter().zip(&mut overlapping[first..]) {
                if period.start >= allocation.interval.end {
                    break;
                }
                if allocation.interval.clip(*period).is_some() {
                    members.push(index as u32);
                }
            }
        }
        overlapping
    }

    /// The set holding only these `allocations` (places in `self.allocations`), with all of
    /// the capacity: over a period they are every overlapping allocation of, a report reads it
    /// exactly as it reads the whole set.
    pub fn with_only(&self, allocations: &[u32]) -> AllocationSet {
        AllocationSet {
            names: self.names.clone(),
            allocations: allocations
                .iter()
                .enumerate()
                .map(|(n, &i)| {
                    // Read out of a month of them: the one a few ahead is loaded meanwhile.
                    if let Some(&ahead) = allocations.get(n + crate::prefetch::AHEAD) {
                        crate::prefetch::prefetch(&self.allocations[ahead as usize]);
                    }
                    self.allocations[i as usize].clone()
                })
                .collect(),
            capacity: self.capacity.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// Adds the records of `other`, ending those still running at `until` (and leaving out
    /// those that start only then).
    pub fn extend_from(&mut self, other: &AllocationSet, until: UnixSeconds) {
        let AllocationSet {
            names,
            allocations,
            capacity,
            warnings,
        } = self;
        let mut translated: Vec<Option<Sym>> = vec![None; other.names.len()];
        let mut sym = |s: Sym| -> Sym {
            *translated[s.index()].get_or_insert_with(|| names.intern(other.names.resolve(s)))
        };
        let cut = |interval: Interval| {
            let cut = Interval::new(interval.start, interval.end.min(until));
            (!cut.is_empty()).then_some(cut)
        };
        for a in &other.allocations {
            let Some(interval) = cut(a.interval) else {
                continue;
            };
            allocations.push(Allocation {
                namespace: sym(a.namespace),
                pod: sym(a.pod),
                pod_uid: sym(a.pod_uid),
                resource_id: sym(a.resource_id),
                claim: sym(a.claim),
                node: sym(a.node),
                product: sym(a.product),
                interval,
                cost_center: sym(a.cost_center),
                ..a.clone()
            });
        }
        for c in &other.capacity {
            let Some(interval) = cut(c.interval) else {
                continue;
            };
            capacity.push(NodeCapacity {
                node: sym(c.node),
                product: sym(c.product),
                interval,
                ..c.clone()
            });
        }
        warnings.extend(other.warnings.iter().cloned());
    }

    /// When its earliest allocation or capacity record starts (`None` when it has none).
    pub fn earliest_start(&self) -> Option<UnixSeconds> {
        let starts = self.allocations.iter().map(|a| a.interval.start);
        starts
            .chain(self.capacity.iter().map(|c| c.interval.start))
            .min()
    }

    /// The number of allocation and capacity records.
    pub fn len(&self) -> usize {
        self.allocations.len() + self.capacity.len()
    }

    /// True when there is no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The Kubernetes objects allocations are built from, as `kubectl get -o json` lists them.
#[derive(Clone, Debug, Default)]
pub struct ClusterObjects {
    /// Pods, in any phase.
    pub pods: Vec<Pod>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// DRA claims (`resource.k8s.io/v1`).
    pub claims: Vec<ResourceClaim>,
    /// DRA slices (`resource.k8s.io/v1`).
    pub slices: Vec<ResourceSlice>,
    /// DRA claim templates (`resource.k8s.io/v1`): what a pod's claims will ask for, read by
    /// the quota check.
    pub templates: Vec<ResourceClaimTemplate>,
}

impl ClusterObjects {
    /// The UID of the `kube-system` namespace: what names a cluster for as long as it exists.
    pub fn kube_system_uid(&self) -> Option<&str> {
        self.namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some("kube-system"))
            .and_then(|n| n.metadata.uid.as_deref())
    }

    /// What its claims and claim templates ask for.
    pub fn claim_asks(&self) -> ClaimAsks {
        let mut asks = ClaimAsks::new(&self.claims, &self.templates);
        asks.set_slices(&self.slices);
        asks
    }
}

/// How allocations are read from objects.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// "Now": running pods hold their GPUs until this time; capacity ends here too.
    pub as_of: UnixSeconds,
    /// The annotation/label key holding the cost center (`cost-center`).
    pub cost_center_key: String,
}

impl BuildOptions {
    /// Options with the default cost-center key.
    pub fn new(as_of: UnixSeconds) -> Self {
        BuildOptions {
            as_of,
            cost_center_key: "cost-center".to_string(),
        }
    }
}

/// Reads every allocation and all node capacity from a set of objects.
pub fn allocations(
    objects: &ClusterObjects,
    card: &crate::pricing::RateCard,
    options: &BuildOptions,
) -> AllocationSet {
    AllocationBuilder::for_cluster(card, options.clone(), objects).finish()
}
