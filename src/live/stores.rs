//! In-memory copies of the cluster's objects, fed by watch events, with the deletions seen
//! since the last reconcile kept aside (with when they were seen) so the ledger can end those
//! pods and nodes exactly there.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, Namespace, Node,
    NodeSpec, NodeStatus, Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate, ResourceSlice};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::allocation::{is_gpu_resource, unpriced_accelerator};
use crate::time::UnixSeconds;

/// Annotation `kubectl apply` leaves: a full copy of the object, never needed here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what Tollgate never reads, so that watching 10,000 pods stays small.
pub trait Strip {
    /// Removes bulk in place.
    fn strip(&mut self);

    /// Whether a stripped object can hold or offer a GPU at all (a pod asking for none is not
    /// kept).
    fn matters(&self) -> bool {
        true
    }
}

fn strip_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    meta.resource_version = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
    }
}

/// Only the GPU entries of a resource list.
fn gpu_only(list: &mut Option<BTreeMap<String, Quantity>>) {
    if let Some(entries) = list {
        entries.retain(|name, _| is_gpu_resource(name));
    }
    if list.as_ref().is_some_and(BTreeMap::is_empty) {
        *list = None;
    }
}

/// A container reduced to what sets GPU demand.
fn demand_only(container: &mut Container) {
    let mut resources = container.resources.take();
    if let Some(r) = &mut resources {
        gpu_only(&mut r.requests);
        gpu_only(&mut r.limits);
        r.claims = None;
    }
    *container = Container {
        name: std::mem::take(&mut container.name),
        resources,
        restart_policy: container.restart_policy.take(),
        ..Container::default()
    };
}

impl Strip for Pod {
    fn matters(&self) -> bool {
        pod_matters(self)
    }

    /// Keeps what allocations are read from: identity, labels and annotations, node, GPU
    /// demand, claims, phase, start, scheduling and finish times.
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
        if let Some(spec) = &mut self.spec {
            let mut containers = std::mem::take(&mut spec.containers);
            let mut init_containers = spec.init_containers.take();
            containers
                .iter_mut()
                .chain(init_containers.iter_mut().flatten())
                .for_each(demand_only);
            *spec = PodSpec {
                node_name: spec.node_name.take(),
                containers,
                init_containers,
                resource_claims: spec.resource_claims.take(),
                ..PodSpec::default()
            };
        }
        if let Some(status) = &mut self.status {
            let finished = |statuses: Option<Vec<ContainerStatus>>| {
                statuses.map(|list| {
                    list.into_iter()
                        .map(|s| ContainerStatus {
                            name: s.name,
                            state: s.state.and_then(|state| state.terminated).map(|t| {
                                ContainerState {
                                    terminated: Some(ContainerStateTerminated {
                                        finished_at: t.finished_at,
                                        ..ContainerStateTerminated::default()
                                    }),
                                    ..ContainerState::default()
                                }
                            }),
                            ..ContainerStatus::default()
                        })
                        .collect()
                })
            };
            *status = PodStatus {
                phase: status.phase.take(),
                start_time: status.start_time.take(),
                conditions: status.conditions.take().map(|conditions| {
                    conditions
                        .into_iter()
                        .map(|c| PodCondition {
                            type_: c.type_,
                            status: c.status,
                            last_transition_time: c.last_transition_time,
                            ..PodCondition::default()
                        })
                        .collect()
                }),
                container_statuses: finished(status.container_statuses.take()),
                init_container_statuses: finished(status.init_container_statuses.take()),
                resource_claim_statuses: status.resource_claim_statuses.take(),
                extended_resource_claim_status: status.extended_resource_claim_status.take(),
                ..PodStatus::default()
            };
        }
    }
}

/// A pod matters when it asks for a GPU resource or holds DRA claims.
fn pod_matters(pod: &Pod) -> bool {
    let asks = |c: &Container| {
        c.resources
            .as_ref()
            .is_some_and(|r| r.requests.is_some() || r.limits.is_some())
    };
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    spec.is_some_and(|s| {
        s.containers.iter().any(asks)
            || s.init_containers.iter().flatten().any(asks)
            || s.resource_claims.as_ref().is_some_and(|c| !c.is_empty())
    }) || status.is_some_and(|s| s.extended_resource_claim_status.is_some())
}

impl Strip for Node {
    /// Keeps labels, annotations, creation time, taints and the capacity of GPUs and of
    /// accelerators Tollgate warns about.
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
        let taints = self.spec.take().and_then(|spec| spec.taints);
        self.spec = taints.map(|taints| NodeSpec {
            taints: Some(taints),
            ..NodeSpec::default()
        });
        if let Some(status) = &mut self.status {
            let mut capacity = status.capacity.take();
            if let Some(entries) = &mut capacity {
                entries.retain(|name, _| is_gpu_resource(name) || unpriced_accelerator(name));
            }
            *status = NodeStatus {
                capacity,
                ..NodeStatus::default()
            };
        }
    }
}

impl Strip for Namespace {
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
    }
}

impl Strip for ResourceClaim {
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
    }
}

impl Strip for ResourceSlice {
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
    }
}

impl Strip for ResourceClaimTemplate {
    /// Keeps the claim spec: its device requests are what the quota check prices.
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
        self.spec.metadata = None;
    }
}

/// An object kept compact: its stripped JSON, a few hundred bytes where the typed object
/// takes several kilobytes (a `Container` alone is 2 KiB of fields), read back when needed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Packed(Box<[u8]>);

impl Packed {
    fn of<K: Serialize>(object: &K) -> Self {
        Packed(
            serde_json::to_vec(object)
                .unwrap_or_default()
                .into_boxed_slice(),
        )
    }

    fn open<K: DeserializeOwned>(&self) -> Option<K> {
        serde_json::from_slice(&self.0).ok()
    }
}

/// An object's namespace (empty when cluster-scoped) and name.
type NameKey = (String, String);

fn name_key(meta: &ObjectMeta) -> NameKey {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The objects of one kind, by UID, kept stripped and packed.
#[derive(Debug)]
pub struct KindStore<K> {
    objects: BTreeMap<String, Packed>,
    names: FxHashMap<NameKey, String>,
    listing: Option<BTreeMap<String, (Packed, NameKey)>>,
    pub(super) deleted: Vec<(K, UnixSeconds)>,
    synced: bool,
    absent: bool,
    changes: Changes,
}

impl<K> Default for KindStore<K> {
    fn default() -> Self {
        KindStore {
            objects: BTreeMap::new(),
            names: FxHashMap::default(),
            listing: None,
            deleted: Vec::new(),
            synced: false,
            absent: false,
            changes: Changes::default(),
        }
    }
}

/// What changed in one kind since the changes were last taken.
#[derive(Debug, Default)]
pub struct Changes {
    /// A relist replaced the objects: anything may have changed.
    pub relisted: bool,
    /// UIDs of objects applied (with a difference that matters) or deleted.
    pub uids: FxHashSet<String>,
    /// Their namespaces (empty for cluster-scoped kinds) and names.
    pub keys: FxHashSet<NameKey>,
}

impl Changes {
    fn record(&mut self, uid: String, key: NameKey) {
        self.uids.insert(uid);
        self.keys.insert(key);
    }

    /// The names of the objects that changed.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(_, name)| name.as_str())
    }
}

fn uid<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    meta.uid.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        )
    })
}

impl<K: kube::Resource + Strip + Serialize + DeserializeOwned> KindStore<K> {
    /// Applies one watch event seen at `now`. A relist replaces the objects when it is
    /// complete; objects it no longer has vanished unseen (the ledger closes them at its last
    /// heartbeat). Objects that hold no GPU are not kept; an update that changes nothing
    /// Tollgate reads (a status heartbeat, a ready flag) is not a change.
    pub fn handle(&mut self, event: Event<K>, now: UnixSeconds) {
        match event {
            Event::Apply(mut object) => {
                object.strip();
                let (uid, key) = (uid(&object), name_key(object.meta()));
                if !object.matters() {
                    if self.objects.remove(&uid).is_some() {
                        self.forget_name(&key, &uid);
                        self.changes.record(uid, key);
                    }
                    return;
                }
                let packed = Packed::of(&object);
                if self.objects.get(&uid) != Some(&packed) {
                    self.changes.record(uid.clone(), key.clone());
                    self.names.insert(key, uid.clone());
                    self.objects.insert(uid, packed);
                }
            }
            Event::Delete(mut object) => {
                object.strip();
                let (uid, key) = (uid(&object), name_key(object.meta()));
                if self.objects.remove(&uid).is_some() || object.matters() {
                    self.forget_name(&key, &uid);
                    self.changes.record(uid, key);
                    self.deleted.push((object, now));
                }
            }
            Event::Init => self.listing = Some(BTreeMap::new()),
            Event::InitApply(mut object) => {
                object.strip();
                if object.matters() {
                    let key = name_key(object.meta());
                    self.listing
                        .get_or_insert_default()
                        .insert(uid(&object), (Packed::of(&object), key));
                }
            }
            Event::InitDone => {
                let listing = self.listing.take().unwrap_or_default();
                self.names = listing
                    .iter()
                    .map(|(uid, (_, key))| (key.clone(), uid.clone()))
                    .collect();
                self.objects = listing
                    .into_iter()
                    .map(|(uid, (packed, _))| (uid, packed))
                    .collect();
                self.synced = true;
                self.absent = false;
                self.changes.relisted = true;
            }
        }
    }

    /// Drops the name of `uid` (a later object of the same name keeps it).
    fn forget_name(&mut self, key: &NameKey, uid: &str) {
        if self.names.get(key).is_some_and(|named| named == uid) {
            self.names.remove(key);
        }
    }

    /// What changed since the changes were last taken, left to be taken.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// What changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// The live object with this UID.
    pub fn get(&self, uid: &str) -> Option<K> {
        self.objects.get(uid)?.open()
    }

    /// The live object of this namespace (empty for cluster-scoped kinds) and name.
    pub fn named(&self, namespace: &str, name: &str) -> Option<K> {
        let key = (namespace.to_string(), name.to_string());
        self.get(self.names.get(&key)?)
    }

    /// UIDs of the live objects.
    pub fn uids(&self) -> impl Iterator<Item = &str> {
        self.objects.keys().map(String::as_str)
    }

    /// Objects deleted since the last [`ClusterStores::forget_deleted`], with when.
    pub fn deleted(&self) -> &[(K, UnixSeconds)] {
        &self.deleted
    }

    /// Marks the kind as not served by this cluster (an older cluster without DRA).
    pub fn mark_absent(&mut self) {
        self.absent = true;
    }

    /// True once a full list has been read, or the kind is not served.
    pub fn is_synced(&self) -> bool {
        self.synced || self.absent
    }

    /// Live objects, read back.
    pub fn objects(&self) -> impl Iterator<Item = K> + '_ {
        self.objects.values().filter_map(Packed::open)
    }

    /// How many live objects there are.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when there are no live objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}
