//! Reading pods into allocations, given the cluster's nodes, namespaces and DRA devices.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::claims::{DeviceIndex, claim_devices};
use super::cost_center::cost_center;
use super::demand::asks_for_gpus;
use super::demand::gpu_demand;
use super::device::classify;
use super::lifetime::{NotHeld, pod_interval};
use super::node::units_per_item;
use super::node::{NodeFacts, node_facts};
use super::{
    Allocation, AllocationKind, AllocationSet, BuildOptions, ClusterObjects, NodeCapacity, Sym,
};
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};
use crate::units::GpuUnits;

/// What pods are read against: the facts of each node, the namespaces (for cost centers) and
/// the DRA devices of every slice. Built once for a batch read ([`AllocationBuilder`]), or kept
/// and updated object by object by a watcher's live allocations.
#[derive(Clone, Debug, Default)]
pub struct ClusterContext {
    nodes: FxHashMap<String, NodeFacts>,
    namespaces: FxHashMap<String, ObjectMeta>,
    devices: DeviceIndex,
}

/// The claims of a read, by namespace and name.
pub type ClaimLookup<'o> = FxHashMap<(&'o str, &'o str), &'o ResourceClaim>;

/// Indexes `claims` by namespace and name.
pub fn claim_lookup<'o>(claims: impl IntoIterator<Item = &'o ResourceClaim>) -> ClaimLookup<'o> {
    claims
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
        .collect()
}

impl ClusterContext {
    /// Replaces the DRA devices with those of `slices`. Nodes read before keep the products
    /// they took from the old ones until read again.
    pub fn set_slices<'o>(&mut self, slices: impl IntoIterator<Item = &'o ResourceSlice>) {
        self.devices = DeviceIndex::from_slices(slices);
    }

    /// Replaces the namespaces.
    pub fn set_namespaces<'o>(&mut self, namespaces: impl IntoIterator<Item = &'o Namespace>) {
        self.namespaces = namespaces
            .into_iter()
            .filter_map(|ns| Some((ns.metadata.name.clone()?, ns.metadata.clone())))
            .collect();
    }

    /// Reads a node (with the time it was seen deleted, if it was): remembers its facts for its
    /// pods, and adds its GPU capacity until `as_of` to `set`.
    pub fn add_node(
        &mut self,
        node: &Node,
        deleted: Option<UnixSeconds>,
        card: &RateCard,
        as_of: UnixSeconds,
        set: &mut AllocationSet,
    ) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let mut warnings = Vec::new();
        let facts = node_facts(node, &self.devices, card, &mut warnings);
        set.warnings.extend(warnings);
        let node_sym = set.names.intern(&name);
        let start = facts.created.unwrap_or(UnixSeconds::MIN);
        let end = deleted.map_or(as_of, |d| d.min(as_of));
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
        self.nodes.insert(name, facts);
    }

    /// Forgets a node.
    pub fn remove_node(&mut self, name: &str) {
        self.nodes.remove(name);
    }

    /// Adds the allocations of `pod` (with the time it was seen deleted, if it was) to `set`;
    /// `claims` must hold the `ResourceClaim`s it references.
    pub fn add_pod(
        &self,
        pod: &Pod,
        deleted: Option<UnixSeconds>,
        claims: &ClaimLookup<'_>,
        card: &RateCard,
        options: &BuildOptions,
        set: &mut AllocationSet,
    ) {
        let interval = match pod_interval(pod, options.as_of, deleted) {
            Ok(interval) => interval,
            Err(NotHeld::Yet) => return,
            Err(unread) => {
                if pod.spec.as_ref().is_some_and(asks_for_gpus) {
                    let why = match unread {
                        NotHeld::NoStart => "it runs or has run, but has no start time",
                        _ => "it has succeeded, but has no finish time at or after its start",
                    };
                    set.warnings.insert(format!(
                        "pod {}/{}: {why}; its GPUs are not counted",
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ));
                }
                return;
            }
        };
        let mut warnings = Vec::new();
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        let unknown_node = NodeFacts {
            replicas: 1,
            ..NodeFacts::default()
        };
        let node = self.nodes.get(node_name).unwrap_or_else(|| {
            warnings.push(format!(
                "node {node_name} is not among the nodes read: GPU model, tier and sharing of its pods are unknown"
            ));
            &unknown_node
        });
        let placement = Placement {
            node,
            node_sym: set.names.intern(node_name),
            interval,
        };
        let held = pod_holdings(pod, &placement, claims, &self.devices, card, &mut warnings);
        push_allocations(set, &self.namespaces, options, pod, &placement, held);
        set.warnings.extend(warnings);
    }
}

/// Turns pods into allocations. Nodes, namespaces and slices are read once up front; pods (with
/// the claims they use) can then be added in as many batches as convenient, so a very large
/// fleet never has to be held in memory as Kubernetes objects all at once.
///
/// Objects are borrowed, never cloned: a watcher's stores can be read in place. A node or pod
/// comes with the time a watcher saw it deleted, if it did (`Some` ends its interval there).
pub struct AllocationBuilder<'a> {
    card: &'a RateCard,
    options: BuildOptions,
    context: ClusterContext,
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
        let mut context = ClusterContext::default();
        context.set_slices(slices);
        context.set_namespaces(namespaces);
        let mut set = AllocationSet::default();
        for (node, deleted) in nodes {
            context.add_node(node, deleted, card, options.as_of, &mut set);
        }
        AllocationBuilder {
            card,
            options,
            context,
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
        let claims = claim_lookup(claims);
        for (pod, deleted) in pods {
            self.add_pod(pod, deleted, &claims);
        }
    }

    /// Adds the allocations of one pod (with the time it was seen deleted, if it was), whose
    /// `ResourceClaim`s `claims` holds.
    pub fn add_pod(&mut self, pod: &Pod, deleted: Option<UnixSeconds>, claims: &ClaimLookup<'_>) {
        self.context.add_pod(
            pod,
            deleted,
            claims,
            self.card,
            &self.options,
            &mut self.set,
        );
    }

    /// The allocations and capacity read so far.
    pub fn finish(self) -> AllocationSet {
        self.set
    }
}

/// What one pod holds: units per `(kind, product, resource id, claim name)`, in that order (a
/// pod holds one or two: kept beside each other, their texts borrowed from the objects read).
type Holdings<'a> = SmallVec<[(Holding<'a>, GpuUnits); 2]>;

/// The key of one of a pod's holdings: kind, product, resource id and claim name.
type Holding<'a> = (AllocationKind, Cow<'a, str>, &'a str, &'a str);

fn pod_holdings<'a>(
    pod: &'a Pod,
    placement: &Placement<'a>,
    claims: &ClaimLookup<'a>,
    devices: &DeviceIndex,
    card: &RateCard,
    warnings: &mut Vec<String>,
) -> Holdings<'a> {
    let mut held = Holdings::new();
    let mut hold = |key: Holding<'a>, units: GpuUnits| match held.iter_mut().find(|h| h.0 == key) {
        Some((_, total)) => *total = total.checked_add(units).unwrap_or(*total),
        None => held.push((key, units)),
    };
    // Only warnings name the pod: made when one is written.
    let pod_name = || pod_label(&pod.metadata);
    let pod_uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let Some(spec) = &pod.spec else { return held };
    let status = pod.status.as_ref();

    let claim_names = claim_names(pod);
    let extended = status.and_then(|s| s.extended_resource_claim_status.as_ref());
    for claim_name in claim_names {
        let Some(claim) = claims.get(&(namespace, claim_name)) else {
            warnings.push(format!(
                "pod {}: ResourceClaim {namespace}/{claim_name} was not found; its devices are not counted",
                pod_name()
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
        if found.reserved_for_others {
            warnings.push(format!(
                "pod {}: ResourceClaim {namespace}/{claim_name} is reserved for other pods, not this one; its devices are counted for the pods it lists",
                pod_name()
            ));
            continue;
        }
        let claim_uid = claim.metadata.uid.as_deref().unwrap_or(claim_name);
        for (product, units) in found.units {
            let product = if product.is_empty() {
                Cow::Borrowed(placement.node.product.as_str())
            } else {
                Cow::Owned(product)
            };
            match units.split(found.consumers) {
                Some(share) => hold((AllocationKind::Dra, product, claim_uid, claim_name), share),
                None => warnings.push(format!(
                    "pod {}: claim {claim_name} cannot be split",
                    pod_name()
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
                "pod {}: {e}; its device-plugin GPUs are not counted",
                pod_name()
            ));
            return held;
        }
    };
    for (resource, count) in demand {
        let Some(kind_of) = classify(resource) else {
            continue;
        };
        let sized = units_per_item(&kind_of, placement.node, card).and_then(|(kind, per_item)| {
            Some((kind, GpuUnits::from_decimal(count)?.checked_mul(per_item)?))
        });
        match sized {
            Some((kind, units)) => hold(
                (kind, Cow::Borrowed(&placement.node.product), pod_uid, ""),
                units,
            ),
            None => warnings.push(format!(
                "pod {}: {resource}={count} cannot be sized; not counted",
                pod_name()
            )),
        }
    }
    held
}

/// The names of the `ResourceClaim`s (in the pod's namespace) a pod holds devices through:
/// named claims, claims generated from templates (their names in the status), and the
/// scheduler-made claim behind plain extended-resource requests.
pub fn claim_names(pod: &Pod) -> BTreeSet<&str> {
    let status = pod.status.as_ref();
    let generated: BTreeMap<&str, Option<&str>> = status
        .and_then(|s| s.resource_claim_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.as_str(), s.resource_claim_name.as_deref()))
        .collect();
    let mut names: BTreeSet<&str> = pod
        .spec
        .iter()
        .flat_map(|spec| spec.resource_claims.iter().flatten())
        .filter_map(|c| {
            c.resource_claim_name
                .as_deref()
                .or_else(|| generated.get(c.name.as_str()).copied().flatten())
        })
        .collect();
    if let Some(extended) = status.and_then(|s| s.extended_resource_claim_status.as_ref()) {
        names.insert(extended.resource_claim_name.as_str());
    }
    names
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
    mut held: Holdings<'_>,
) {
    if held.is_empty() {
        return;
    }
    held.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let chosen = cost_center(
        &pod.metadata,
        namespaces.get(namespace),
        &options.cost_center_key,
    );
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let (center, source) = (chosen.name, chosen.source);
    if let Some(warning) =
        chosen.warning(&format!("{namespace}/{pod_name}"), &options.cost_center_key)
    {
        set.warnings.insert(warning);
    }
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
            resource_id: set.names.intern(resource_id),
            claim: set.names.intern(claim),
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
