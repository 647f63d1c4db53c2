//! Every kind Tollgate watches, each in its store, and the allocations read from them: what the
//! watchers feed and each reconcile reads.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate, ResourceSlice};

use super::allocations::{Changed, LiveAllocations, LiveRead, Watched};
use super::stores::KindStore;
use crate::allocation::{BuildOptions, ClaimAsks, PlacementNode, PlacementNodes, placement_nodes};
use crate::pricing::RateCard;

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
    /// DRA claim templates.
    pub templates: KindStore<ResourceClaimTemplate>,
    /// Allocations read so far, reused while their objects do not change.
    live: LiveAllocations,
    /// What the claims and templates ask for, read again only when one of them changed.
    asks: Arc<ClaimAsks>,
    /// The nodes' labels and taints, read again only for nodes that changed.
    placement: Arc<PlacementNodes>,
}

impl ClusterStores {
    /// True when every kind has been listed (or is not served).
    pub fn is_synced(&self) -> bool {
        self.pods.is_synced()
            && self.nodes.is_synced()
            && self.namespaces.is_synced()
            && self.claims.is_synced()
            && self.slices.is_synced()
            && self.templates.is_synced()
    }

    /// What the claims and claim templates ask for, and which GPUs claims may share (the quota
    /// check's pricing of a pod's claims): only claims and templates that changed are read
    /// again, the slices' shareable GPUs when a slice changed. Call before
    /// [`allocations`](Self::allocations), which takes the claims' and slices' changes.
    pub fn claim_asks(&mut self) -> Arc<ClaimAsks> {
        let templates = self.templates.take_changes();
        let claims = self.claims.changes();
        let slices = self.slices.changes();
        let slices_changed = slices.relisted || !slices.keys.is_empty();
        if claims.relisted || templates.relisted {
            let claims: Vec<ResourceClaim> = self.claims.objects().collect();
            let templates: Vec<ResourceClaimTemplate> = self.templates.objects().collect();
            self.asks = Arc::new(ClaimAsks::new(&claims, &templates));
        } else if !claims.keys.is_empty() || !templates.keys.is_empty() {
            let asks = Arc::make_mut(&mut self.asks);
            for (namespace, name) in &claims.keys {
                let claim = self.claims.named(namespace, name);
                asks.set_claim(namespace, name, claim.as_ref());
            }
            for (namespace, name) in &templates.keys {
                let template = self.templates.named(namespace, name);
                asks.set_template(namespace, name, template.as_ref());
            }
        }
        if slices_changed || claims.relisted || templates.relisted {
            let slices: Vec<ResourceSlice> = self.slices.objects().collect();
            Arc::make_mut(&mut self.asks).set_slices(&slices);
        }
        self.asks.clone()
    }

    /// The nodes' labels and taints (where the quota check tells which nodes a pod not
    /// scheduled yet may run on): only nodes that changed are read again. Call before
    /// [`allocations`](Self::allocations), which takes the nodes' changes.
    pub fn placement_nodes(&mut self) -> Arc<PlacementNodes> {
        let changes = self.nodes.changes();
        if changes.relisted {
            self.placement = Arc::new(placement_nodes(self.nodes.objects()));
        } else if !changes.keys.is_empty() {
            let placement = Arc::make_mut(&mut self.placement);
            for (namespace, name) in &changes.keys {
                match self.nodes.named(namespace, name) {
                    Some(node) => placement.insert(name.clone(), PlacementNode::of(node)),
                    None => placement.remove(name),
                };
            }
        }
        self.placement.clone()
    }

    /// Allocations and capacity as of `options.as_of`, including pods and nodes deleted since
    /// the last [`forget_deleted`](Self::forget_deleted), ended when they were seen deleted.
    /// Claims deleted in that time still resolve the devices of the pods that used them. Only
    /// what changed since the last call is read again.
    pub fn allocations(&mut self, card: &RateCard, options: BuildOptions) -> LiveRead {
        let changed = Changed {
            pods: self.pods.take_changes(),
            nodes: self.nodes.take_changes(),
            namespaces: self.namespaces.take_changes(),
            claims: self.claims.take_changes(),
            slices: self.slices.take_changes(),
        };
        let watched = Watched {
            pods: &self.pods,
            nodes: &self.nodes,
            namespaces: &self.namespaces,
            claims: &self.claims,
            slices: &self.slices,
        };
        self.live.read(&watched, changed, card, &options)
    }

    /// Drops the deletions a reconcile has recorded.
    pub fn forget_deleted(&mut self) {
        self.pods.deleted.clear();
        self.nodes.deleted.clear();
        self.namespaces.deleted.clear();
        self.claims.deleted.clear();
        self.slices.deleted.clear();
        self.templates.deleted.clear();
    }
}
