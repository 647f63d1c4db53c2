//! Reading pods into allocations, given the cluster's nodes, namespaces and DRA devices.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rustc_hash::FxHashMap;

use super::claims::{DeviceIndex, claim_devices};
use super::cost_center::cost_center;
use super::demand::gpu_demand;
use super::device::{classify, units_per_item};
use super::lifetime::pod_interval;
use super::node::{NodeFacts, node_facts};
use super::{
    Allocation, AllocationKind, AllocationSet, BuildOptions, ClusterObjects, NodeCapacity, Sym,
};
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};
use crate::units::GpuUnits;

/// Turns pods into allocations. Nodes, namespaces and slices are read once up front; pods (with
/// the claims they use) can then be added in as many batches as convenient, so a very large
/// fleet never has to be held in memory as Kubernetes objects all at once.
///
/// Objects are borrowed, never cloned: a watcher's stores can be read in place. A node or pod
/// comes with the time a watcher saw it deleted, if it did (`Some` ends its interval there).
pub struct AllocationBuilder<'a> {
    card: &'a RateCard,
    options: BuildOptions,
    nodes: FxHashMap<String, NodeFacts>,
    namespaces: FxHashMap<String, ObjectMeta>,
    devices: DeviceIndex,
    set: AllocationSet,
}

/// A pod's view of where it runs.
struct Placement<'n> {
    node: &'n NodeFacts,
    node_sym: Sym,
    interval: Interval,
}

impl<'a> AllocationBuilder<'a> {
    /// Reads nodes (each with the time it was seen deleted, if it was), namespaces and DRA
    /// slices, and records every node's GPU capacity.
    pub fn new<'o>(
        card: &'a RateCard,
        options: BuildOptions,
        nodes: impl IntoIterator<Item = (&'o Node, Option<UnixSeconds>)>,
        namespaces: impl IntoIterator<Item = &'o Namespace>,
        slices: impl IntoIterator<Item = &'o ResourceSlice>,
    ) -> Self {
        let devices = DeviceIndex::from_slices(slices);
        let mut set = AllocationSet::default();
        let mut warnings = Vec::new();
        let mut facts_by_name = FxHashMap::default();
        for (node, deleted) in nodes {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            let facts = node_facts(node, &devices, card, &mut warnings);
            let node_sym = set.names.intern(&name);
            let start = facts.created.unwrap_or(UnixSeconds::MIN);
            let end = deleted.map_or(options.as_of, |d| d.min(options.as_of));
            for (product, units) in &facts.capacity {
                if start >= end {
                    continue;
                }
                set.capacity.push(NodeCapacity {
                    node: node_sym,
                    product: set.names.intern(product),
                    units: *units,
                    interval: Interval::new(start, end),
                    tier: facts.tier,
                    price_override: facts.price_override,
                });
            }
            facts_by_name.insert(name, facts);
        }
        let namespaces = namespaces
            .into_iter()
            .filter_map(|ns| Some((ns.metadata.name.clone()?, ns.metadata.clone())))
            .collect();
        set.warnings.extend(warnings);
        AllocationBuilder {
            card,
            options,
            nodes: facts_by_name,
            namespaces,
            devices,
            set,
        }
    }

    /// Reads all the objects of `cluster`.
    pub fn for_cluster(
        card: &'a RateCard,
        options: BuildOptions,
        cluster: &ClusterObjects,
    ) -> Self {
        let mut builder = Self::new(
            card,
            options,
            cluster.nodes.iter().map(|n| (n, None)),
            &cluster.namespaces,
            &cluster.slices,
        );
        builder.add_pods(cluster.pods.iter().map(|p| (p, None)), &cluster.claims);
        builder
    }

    /// Adds the allocations of `pods` (each with the time it was seen deleted, if it was);
    /// `claims` must hold the `ResourceClaim`s they reference.
    pub fn add_pods<'o>(
        &mut self,
        pods: impl IntoIterator<Item = (&'o Pod, Option<UnixSeconds>)>,
        claims: impl IntoIterator<Item = &'o ResourceClaim>,
    ) {
        let claims: FxHashMap<(&str, &str), &ResourceClaim> = claims
            .into_iter()
            .filter_map(|c| {
                Some((
                    (
                        c.metadata.namespace.as_deref()?,
                        c.metadata.name.as_deref()?,
                    ),
                    c,
                ))
            })
            .collect();
        let unknown_node = NodeFacts {
            replicas: 1,
            ..NodeFacts::default()
        };
        let mut warnings = Vec::new();
        for (pod, deleted) in pods {
            let Some(interval) = pod_interval(pod, self.options.as_of, deleted) else {
                continue;
            };
            let node_name = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or_default();
            let node = self.nodes.get(node_name).unwrap_or_else(|| {
                warnings.push(format!(
                    "node {node_name} is not among the nodes read: GPU model, tier and sharing of its pods are unknown"
                ));
                &unknown_node
            });
            let placement = Placement {
                node,
                node_sym: self.set.names.intern(node_name),
                interval,
            };
            let held = pod_holdings(
                pod,
                &placement,
                &claims,
                &self.devices,
                self.card,
                &mut warnings,
            );
            push_allocations(
                &mut self.set,
                &self.namespaces,
                &self.options,
                pod,
                &placement,
                held,
            );
        }
        self.set.warnings.extend(warnings);
    }

    /// The allocations and capacity read so far.
    pub fn finish(self) -> AllocationSet {
        self.set
    }
}

/// What one pod holds: units per `(kind, product, resource id, claim name)`.
type Holdings = BTreeMap<(AllocationKind, String, String, String), GpuUnits>;

fn pod_holdings(
    pod: &Pod,
    placement: &Placement<'_>,
    claims: &FxHashMap<(&str, &str), &ResourceClaim>,
    devices: &DeviceIndex,
    card: &RateCard,
    warnings: &mut Vec<String>,
) -> Holdings {
    let mut held = Holdings::new();
    let mut hold = |kind, product: &str, resource_id: &str, claim: &str, units: GpuUnits| {
        let entry = held
            .entry((
                kind,
                product.to_string(),
                resource_id.to_string(),
                claim.to_string(),
            ))
            .or_insert(GpuUnits::ZERO);
        *entry = entry.checked_add(units).unwrap_or(*entry);
    };
    let pod_name = pod_label(&pod.metadata);
    let pod_uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let Some(spec) = &pod.spec else { return held };
    let status = pod.status.as_ref();

    // DRA claims: named, from templates (generated names in status), and the scheduler-made
    // claim behind plain extended-resource requests.
    let generated: BTreeMap<&str, Option<&str>> = status
        .and_then(|s| s.resource_claim_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.as_str(), s.resource_claim_name.as_deref()))
        .collect();
    let mut claim_names: BTreeSet<&str> = spec
        .resource_claims
        .iter()
        .flatten()
        .filter_map(|c| {
            c.resource_claim_name
                .as_deref()
                .or_else(|| generated.get(c.name.as_str()).copied().flatten())
        })
        .collect();
    let extended = status.and_then(|s| s.extended_resource_claim_status.as_ref());
    if let Some(extended) = extended {
        claim_names.insert(extended.resource_claim_name.as_str());
    }
    for claim_name in claim_names {
        let Some(claim) = claims.get(&(namespace, claim_name)) else {
            warnings.push(format!(
                "pod {pod_name}: ResourceClaim {namespace}/{claim_name} was not found; its devices are not counted"
            ));
            continue;
        };
        let Some(found) = claim_devices(
            claim,
            pod_uid,
            devices,
            card,
            &placement.node.product,
            warnings,
        ) else {
            continue;
        };
        let claim_uid = claim.metadata.uid.as_deref().unwrap_or(claim_name);
        for (product, units) in found.units {
            let product = if product.is_empty() {
                placement.node.product.as_str()
            } else {
                &product
            };
            match units.split(found.consumers) {
                Some(share) => hold(AllocationKind::Dra, product, claim_uid, claim_name, share),
                None => warnings.push(format!(
                    "pod {pod_name}: claim {claim_name} cannot be split"
                )),
            }
        }
    }

    // Device-plugin resources, minus those an extended-resource claim already serves.
    let excluded: Vec<(String, String)> = extended
        .into_iter()
        .flat_map(|e| &e.request_mappings)
        .map(|m| (m.container_name.clone(), m.resource_name.clone()))
        .collect();
    let demand = match gpu_demand(spec, &excluded) {
        Ok(demand) => demand,
        Err(e) => {
            warnings.push(format!(
                "pod {pod_name}: {e}; its device-plugin GPUs are not counted"
            ));
            return held;
        }
    };
    for (resource, count) in demand {
        let Some(kind_of) = classify(&resource) else {
            continue;
        };
        let sized = units_per_item(&kind_of, placement.node, card).and_then(|(kind, per_item)| {
            Some((kind, GpuUnits::from_decimal(count)?.checked_mul(per_item)?))
        });
        match sized {
            Some((kind, units)) => hold(kind, &placement.node.product, pod_uid, "", units),
            None => warnings.push(format!(
                "pod {pod_name}: {resource}={count} cannot be sized; not counted"
            )),
        }
    }
    held
}

fn pod_label(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

fn push_allocations(
    set: &mut AllocationSet,
    namespaces: &FxHashMap<String, ObjectMeta>,
    options: &BuildOptions,
    pod: &Pod,
    placement: &Placement<'_>,
    held: Holdings,
) {
    if held.is_empty() {
        return;
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let (center, source) = cost_center(
        &pod.metadata,
        namespaces.get(namespace),
        &options.cost_center_key,
    );
    let cost_center = set.names.intern(center);
    let namespace = set.names.intern(namespace);
    let pod_sym = set
        .names
        .intern(pod.metadata.name.as_deref().unwrap_or_default());
    let pod_uid = set
        .names
        .intern(pod.metadata.uid.as_deref().unwrap_or_default());
    for ((kind, product, resource_id, claim), units) in held {
        if units.is_zero() {
            continue;
        }
        set.allocations.push(Allocation {
            namespace,
            pod: pod_sym,
            pod_uid,
            resource_id: set.names.intern(&resource_id),
            claim: set.names.intern(&claim),
            node: placement.node_sym,
            product: set.names.intern(&product),
            kind,
            units,
            interval: placement.interval,
            tier: placement.node.tier,
            price_override: placement.node.price_override,
            cost_center,
            cost_center_source: source,
        });
    }
}
