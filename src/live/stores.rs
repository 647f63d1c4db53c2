//! In-memory copies of the cluster's objects, fed by watch events, with the deletions seen
//! since the last reconcile kept aside (with when they were seen) so the ledger can end those
//! pods and nodes exactly there.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;

use crate::allocation::{AllocationBuilder, AllocationSet, BuildOptions};
use crate::pricing::RateCard;
use crate::time::UnixSeconds;

/// Annotation `kubectl apply` leaves: a full copy of the object, never needed here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what Tollgate never reads, so that watching 10,000 pods stays small.
pub trait Strip {
    /// Removes bulk in place.
    fn strip(&mut self);
}

fn strip_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
    }
}

impl Strip for Pod {
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
        if let Some(spec) = &mut self.spec {
            spec.volumes = None;
            spec.affinity = None;
            spec.tolerations = None;
            spec.topology_spread_constraints = None;
            for container in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                container.env = None;
                container.env_from = None;
                container.volume_mounts = None;
                container.command = None;
                container.args = None;
                container.liveness_probe = None;
                container.readiness_probe = None;
                container.startup_probe = None;
                container.lifecycle = None;
                container.ports = None;
                container.security_context = None;
            }
            spec.ephemeral_containers = None;
        }
        if let Some(status) = &mut self.status {
            status.pod_ips = None;
            status.host_ips = None;
            for s in status
                .container_statuses
                .iter_mut()
                .flatten()
                .chain(status.init_container_statuses.iter_mut().flatten())
            {
                s.last_state = None;
                s.image_id.clear();
                s.volume_mounts = None;
                s.resources = None;
                s.allocated_resources = None;
            }
            status.ephemeral_container_statuses = None;
        }
    }
}

impl Strip for Node {
    fn strip(&mut self) {
        strip_meta(&mut self.metadata);
        if let Some(status) = &mut self.status {
            status.images = None;
            status.volumes_attached = None;
            status.volumes_in_use = None;
            status.conditions = None;
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

/// The objects of one kind, by UID.
#[derive(Debug)]
pub struct KindStore<K> {
    objects: BTreeMap<String, K>,
    listing: Option<BTreeMap<String, K>>,
    deleted: Vec<(K, UnixSeconds)>,
    synced: bool,
    absent: bool,
}

impl<K> Default for KindStore<K> {
    fn default() -> Self {
        KindStore {
            objects: BTreeMap::new(),
            listing: None,
            deleted: Vec::new(),
            synced: false,
            absent: false,
        }
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

impl<K: kube::Resource + Strip> KindStore<K> {
    /// Applies one watch event seen at `now`. A relist replaces the objects when it is
    /// complete; objects it no longer has vanished unseen (the ledger closes them at its last
    /// heartbeat).
    pub fn handle(&mut self, event: Event<K>, now: UnixSeconds) {
        match event {
            Event::Apply(mut object) => {
                object.strip();
                self.objects.insert(uid(&object), object);
            }
            Event::Delete(mut object) => {
                object.strip();
                self.objects.remove(&uid(&object));
                self.deleted.push((object, now));
            }
            Event::Init => self.listing = Some(BTreeMap::new()),
            Event::InitApply(mut object) => {
                object.strip();
                self.listing
                    .get_or_insert_default()
                    .insert(uid(&object), object);
            }
            Event::InitDone => {
                self.objects = self.listing.take().unwrap_or_default();
                self.synced = true;
                self.absent = false;
            }
        }
    }

    /// Marks the kind as not served by this cluster (an older cluster without DRA).
    pub fn mark_absent(&mut self) {
        self.absent = true;
    }

    /// True once a full list has been read, or the kind is not served.
    pub fn is_synced(&self) -> bool {
        self.synced || self.absent
    }

    /// Live objects.
    pub fn objects(&self) -> impl Iterator<Item = &K> {
        self.objects.values()
    }

    /// Live objects, then the deleted ones with when they were seen deleted.
    fn with_deleted(&self) -> impl Iterator<Item = (&K, Option<UnixSeconds>)> {
        self.objects
            .values()
            .map(|o| (o, None))
            .chain(self.deleted.iter().map(|(o, at)| (o, Some(*at))))
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

/// Every kind Tollgate watches.
#[derive(Debug, Default)]
pub struct ClusterStores {
    /// Pods.
    pub pods: KindStore<Pod>,
    /// Nodes.
    pub nodes: KindStore<Node>,
    /// Namespaces.
    pub namespaces: KindStore<Namespace>,
    /// DRA claims.
    pub claims: KindStore<ResourceClaim>,
    /// DRA slices.
    pub slices: KindStore<ResourceSlice>,
}

impl ClusterStores {
    /// True when every kind has been listed (or is not served).
    pub fn is_synced(&self) -> bool {
        self.pods.is_synced()
            && self.nodes.is_synced()
            && self.namespaces.is_synced()
            && self.claims.is_synced()
            && self.slices.is_synced()
    }

    /// Allocations and capacity as of `options.as_of`, including pods and nodes deleted since
    /// the last [`forget_deleted`](Self::forget_deleted), ended when they were seen deleted.
    /// Claims deleted in that time still resolve the devices of the pods that used them.
    pub fn allocations(&self, card: &RateCard, options: BuildOptions) -> AllocationSet {
        let mut builder = AllocationBuilder::new(
            card,
            options,
            self.nodes.with_deleted(),
            self.namespaces.objects(),
            self.slices.objects(),
        );
        builder.add_pods(
            self.pods.with_deleted(),
            self.claims.with_deleted().map(|(c, _)| c),
        );
        builder.finish()
    }

    /// Drops the deletions a reconcile has recorded.
    pub fn forget_deleted(&mut self) {
        self.pods.deleted.clear();
        self.nodes.deleted.clear();
        self.namespaces.deleted.clear();
        self.claims.deleted.clear();
        self.slices.deleted.clear();
    }
}
